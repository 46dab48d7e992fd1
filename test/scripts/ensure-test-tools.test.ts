/**
 * scripts/ensure-test-tools.sh, which `npm test` runs first: on a machine without the Debian tools
 * the tests run, it installs their packages (as root, or through sudo), or stops at once with the
 * one command that fixes it. Proven without installing anything: the script runs with a PATH of
 * our own, where the tools are missing unless a stub stands in, and where apt-get, sudo and id
 * are fakes that record what they were asked.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from '../support/app';

const SCRIPT = path.join(REPO_ROOT, 'scripts', 'ensure-test-tools.sh');
/** Each tool the tests run, and the Debian package that brings it. */
const TOOLS: Record<string, string> = {
  'docker-registry': 'docker-registry',
  buildah: 'buildah',
  skopeo: 'skopeo',
  htpasswd: 'apache2-utils',
  openssl: 'openssl',
  shellcheck: 'shellcheck',
  'docker-compose': 'docker-compose',
};

const scratch = mkdtempSync(path.join(tmpdir(), 'ensure-tools-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function executable(file: string, text: string): void {
  writeFileSync(file, text);
  chmodSync(file, 0o755);
}

interface Machine {
  /** Tools already installed. */
  readonly present: readonly string[];
  readonly uid: number;
  readonly sudo: 'none' | 'passwordless' | 'password';
  readonly aptGet?: 'works' | 'fails' | 'none';
}

interface Run {
  readonly status: number | null;
  readonly stderr: string;
  /** What apt-get (and sudo) were asked, one call a line. */
  readonly calls: string[];
  readonly installed: string[];
}

/** Runs the script on a fake machine. */
function run(machine: Machine): Run {
  const dir = mkdtempSync(path.join(scratch, 'machine-'));
  const bin = path.join(dir, 'bin');
  const log = path.join(dir, 'calls.log');
  spawnSync('mkdir', [bin]);
  const stub = (tool: string): void => executable(path.join(bin, tool), '#!/bin/sh\nexit 0\n');
  machine.present.forEach(stub);
  // The script needs `env` (to pass DEBIAN_FRONTEND through sudo) and nothing else from PATH.
  symlinkSync(
    spawnSync('sh', ['-c', 'command -v env'], { encoding: 'utf8' }).stdout.trim(),
    path.join(bin, 'env'),
  );
  executable(path.join(bin, 'id'), `#!/bin/sh\n[ "$1" = -u ] && echo ${machine.uid}\n`);
  if (machine.sudo !== 'none') {
    executable(
      path.join(bin, 'sudo'),
      [
        '#!/bin/sh',
        machine.sudo === 'password' ? 'exit 1' : '',
        '[ "$1" = -n ] && shift',
        '[ "$1" = true ] && exit 0',
        `echo "sudo $*" >> '${log}'`,
        'exec "$@"',
        '',
      ].join('\n'),
    );
  }
  if (machine.aptGet !== 'none') {
    // Installing a package puts its tool on PATH, as dpkg would.
    const installs = Object.entries(TOOLS)
      .map(
        ([tool, pkg]) =>
          `[ "$p" = ${pkg} ] && : > '${bin}/${tool}' && /bin/chmod +x '${bin}/${tool}'`,
      )
      .join('\n    ');
    executable(
      path.join(bin, 'apt-get'),
      [
        '#!/bin/sh',
        `echo "DEBIAN_FRONTEND=$DEBIAN_FRONTEND apt-get $*" >> '${log}'`,
        machine.aptGet === 'fails' ? '[ "$1" = install ] && exit 100' : '',
        '[ "$1" = install ] && for p in "$@"; do',
        `    ${installs}`,
        '  done',
        'exit 0',
        '',
      ].join('\n'),
    );
  }
  const result = spawnSync('/bin/bash', [SCRIPT], {
    env: { PATH: bin, HOME: dir },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return {
    status: result.status,
    stderr: result.stderr,
    calls: existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n') : [],
    installed: Object.keys(TOOLS).filter(
      (tool) => !machine.present.includes(tool) && existsSync(path.join(bin, tool)),
    ),
  };
}

const ALL = Object.keys(TOOLS);
const ALL_BUT = (...missing: string[]): string[] => ALL.filter((t) => !missing.includes(t));

test('npm test runs the script first', () => {
  const pkg = JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
    scripts: Record<string, string>;
  };

  expect(pkg.scripts['pretest']).toBe('bash scripts/ensure-test-tools.sh');
});

test('with every tool present it does nothing and says nothing', () => {
  const result = run({ present: ALL, uid: 1000, sudo: 'none' });

  expect(result).toEqual({ status: 0, stderr: '', calls: [], installed: [] });
});

test('as root it installs the missing packages, docker-compose without recommends, saying why', () => {
  const result = run({
    present: ALL_BUT('buildah', 'htpasswd', 'docker-compose'),
    uid: 0,
    sudo: 'none',
  });

  expect(result.status).toBe(0);
  expect(result.calls).toEqual([
    'DEBIAN_FRONTEND=noninteractive apt-get update -q',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q buildah apache2-utils',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends docker-compose',
  ]);
  expect(result.installed).toEqual(['buildah', 'htpasswd', 'docker-compose']);
  expect(result.stderr).toContain(
    'htpasswd is missing (htpasswd -B writes the bcrypt password file',
  );
  expect(result.stderr).toContain('Debian package apache2-utils');
  expect(result.stderr).toContain('installed buildah apache2-utils docker-compose');
});

test('not root, with passwordless sudo, it installs through sudo', () => {
  const result = run({ present: ALL_BUT('skopeo'), uid: 1000, sudo: 'passwordless' });

  expect(result.status).toBe(0);
  expect(result.calls).toEqual([
    'sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q',
    'DEBIAN_FRONTEND=noninteractive apt-get update -q',
    'sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q skopeo',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q skopeo',
  ]);
  expect(result.installed).toEqual(['skopeo']);
  expect(result.stderr).toContain('installing skopeo with apt-get (through sudo)');
});

test.each([
  [
    'not root and no sudo',
    { sudo: 'none' as const },
    "su -c 'apt-get update && apt-get install -y docker-registry openssl'",
  ],
  [
    'sudo needs a password',
    { sudo: 'password' as const },
    "sudo sh -c 'apt-get update && apt-get install -y docker-registry openssl'",
  ],
  [
    'no apt-get',
    { sudo: 'passwordless' as const, aptGet: 'none' as const },
    "your package manager's equivalent of: apt-get update && apt-get install -y docker-registry openssl",
  ],
])('%s: it stops at once with the one command that fixes it', (_, machine, fix) => {
  const result = run({ present: ALL_BUT('docker-registry', 'openssl'), uid: 1000, ...machine });

  expect(result.status).toBe(1);
  expect(result.calls).toEqual([]);
  expect(result.stderr).toContain(`Install them with:\n\n  ${fix}\n\nthen run npm test again.`);
});

test('a failing apt-get stops the run with the command to run by hand', () => {
  const result = run({ present: ALL_BUT('shellcheck'), uid: 0, sudo: 'none', aptGet: 'fails' });

  expect(result.status).toBe(1);
  expect(result.calls).toEqual([
    'DEBIAN_FRONTEND=noninteractive apt-get update -q',
    'DEBIAN_FRONTEND=noninteractive apt-get install -y -q shellcheck',
  ]);
  expect(result.stderr).toContain('apt-get install shellcheck failed');
  expect(result.stderr).toContain('  apt-get update && apt-get install -y shellcheck\n');
});

test('shellcheck finds nothing in the script', () => {
  const result = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });

  expect({ status: result.status, stdout: result.stdout }).toEqual({ status: 0, stdout: '' });
});
