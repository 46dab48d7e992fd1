import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { USAGE, splitCommand } from '../../cli/main';
import { REPO_ROOT, runShipCaptured, type ShipRun } from '../support/ship';

// The command line itself: help, usage errors (exit 2) and failures (exit 1) before any registry
// or cluster is asked; and `ship tags` against a real git checkout.

const dirs: string[] = [];
afterAll(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function ship(args: string[], env: NodeJS.ProcessEnv = {}, cwd = REPO_ROOT): Promise<ShipRun> {
  return runShipCaptured(args, {
    env,
    cwd,
    homeDir: cwd,
    now: () => new Date('2026-11-28T12:00:00Z'),
  });
}

describe('help', () => {
  test('Given no arguments, when run, then the usage goes to stderr and the exit status is 2', async () => {
    expect(await ship([])).toEqual({ status: 2, stdout: '', stderr: USAGE });
  });

  test('Given --help, when run, then the usage lists every command and the exit codes, on stdout', async () => {
    const { status, stdout } = await ship(['--help']);
    expect(status).toBe(0);
    for (const command of [
      'tags',
      'images',
      'status',
      'deploy',
      'rollback',
      'pause',
      'resume',
      'history',
    ]) {
      expect(stdout).toMatch(new RegExp(`^  ${command} `, 'm'));
    }
    expect(stdout).toContain(
      'Exit status: 0 done, 1 failure (the message names the value and the fix), 2 usage error.',
    );
  });

  test.each(['tags', 'images', 'status', 'deploy', 'rollback', 'pause', 'resume', 'history'])(
    'Given ship %s --help, when run, then its usage, options, --json and --help are shown and nothing else runs',
    async (command) => {
      const { status, stdout, stderr } = await ship([command, '--help']);
      expect(stderr).toBe('');
      expect(status).toBe(0);
      expect(stdout).toMatch(new RegExp(`^Usage: ship ${command}`));
      expect(stdout).toContain('--json');
      expect(stdout).toContain('-h, --help');
    },
  );
});

describe('usage errors: exit 2, the value named, the fix said', () => {
  test.each<[string, string[], NodeJS.ProcessEnv, RegExp]>([
    [
      'an unknown command',
      ['deploi'],
      {},
      /unknown command "deploi"; the commands are tags, images, status, deploy/,
    ],
    [
      'an unknown option',
      ['status', '--verbose'],
      {},
      /ship status: Unknown option '--verbose'[\s\S]*Run ship status --help/,
    ],
    ['a missing service', ['pause'], {}, /which service\? Name one of: hasher, rng, webui, worker/],
    [
      'an unknown service',
      ['history', 'redis'],
      {},
      /"redis" is not a service of this app .*the services are hasher, rng, webui, worker/,
    ],
    [
      'a missing tag',
      ['deploy', 'hasher'],
      {},
      /which tag of hasher\? `ship images hasher` lists them/,
    ],
    [
      'latest',
      ['deploy', 'hasher', 'latest'],
      {},
      /"latest" is not a tag the pipeline makes .*never "latest"/,
    ],
    [
      'too many arguments',
      ['deploy', 'hasher', '6e0de7938dda', 'extra'],
      {},
      /too many arguments: "extra"/,
    ],
    [
      'an unknown environment',
      ['status', '--env', 'prod'],
      {},
      /--env "prod" is not an environment of this app; the environments are main/,
    ],
    ['no region and no --registry', ['images'], {}, /no AWS region: pass --region <region>/],
    [
      'a malformed region',
      ['images', '--region', 'Frankfurt'],
      {},
      /--region "Frankfurt" is not an AWS region/,
    ],
    [
      '--registry-user without its password',
      ['images', '--registry', 'http://127.0.0.1:1', '--registry-user', 'ci'],
      {},
      /--registry-user ci needs the password in SHIP_REGISTRY_PASSWORD/,
    ],
    [
      'a bad timeout',
      ['deploy', 'hasher', '6e0de7938dda', '--timeout', '10m'],
      {},
      /--timeout "10m" is not a number of seconds/,
    ],
    [
      '-c without =',
      ['status', '-c', 'releaseTagPattern'],
      {},
      /-c "releaseTagPattern" is not key=value/,
    ],
    [
      'a bad build number',
      ['tags', '--build-number', '0'],
      {},
      /--build-number "0" is not a build number/,
    ],
  ])(
    'Given %s, when run, then exit 2 and the message says so',
    async (_name, args, env, message) => {
      const { status, stdout, stderr } = await ship(args, env);
      expect({ status, stdout }).toEqual({ status: 2, stdout: '' });
      expect(stderr).toMatch(message);
    },
  );
});

describe('failures before any registry or cluster is asked: exit 1', () => {
  test('Given a configuration value the app refuses, when run, then exit 1 naming the key', async () => {
    const { status, stderr } = await ship([
      'status',
      '-c',
      'releaseTagPattern=*',
      '--region',
      'eu-west-1',
    ]);
    expect(status).toBe(1);
    expect(stderr).toMatch(
      /^ship status: configuration: Invalid value for context key "releaseTagPattern": "\*"/,
    );
  });

  test('Given a --config that does not exist, when run, then exit 1 naming the file and the fix', async () => {
    const { status, stderr } = await ship(['status', '--config', 'nowhere/cdk.json']);
    expect(status).toBe(1);
    expect(stderr).toMatch(
      /cannot read the app configuration .*nowhere\/cdk\.json \(ENOENT\): run ship from the dockercoins-ship checkout, or pass --config/,
    );
  });
});

describe("ship tags: the buildspec's tags for a real checkout", () => {
  function checkout(): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-tags-'));
    dirs.push(dir);
    const git = (...args: string[]): string => {
      const result = spawnSync('git', ['-C', dir, ...args], {
        encoding: 'utf8',
        env: {
          ...process.env,
          GIT_AUTHOR_NAME: 't',
          GIT_AUTHOR_EMAIL: 't@example.com',
          GIT_COMMITTER_NAME: 't',
          GIT_COMMITTER_EMAIL: 't@example.com',
          GIT_AUTHOR_DATE: '2026-11-28T12:00:00Z',
          GIT_COMMITTER_DATE: '2026-11-28T12:00:00Z',
        },
      });
      if (result.status !== 0) throw new Error(result.stderr);
      return result.stdout.trim();
    };
    git('init', '-q', '-b', 'main');
    writeFileSync(path.join(dir, 'README'), 'dockercoins\n');
    git('add', 'README');
    git('commit', '-q', '-m', 'first');
    git('tag', 'v1.2.0');
    return dir;
  }

  test("Given a checkout of main tagged v1.2.0, when ship tags runs with a build number, then the table is the buildspec's tags", async () => {
    const dir = checkout();
    const commit = spawnSync('git', ['-C', dir, 'rev-parse', 'HEAD'], {
      encoding: 'utf8',
    }).stdout.trim();
    const { status, stdout, stderr } = await ship(['tags', '--build-number', '57'], {}, dir);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    // A fixed author, date and content make a fixed commit id: the table is a golden string.
    expect(commit).toBe('07fd946b33d9da0f1f4b6597e7fffb02ecb1cc84');
    expect(stdout).toBe(
      [
        'commit 07fd946b33d9da0f1f4b6597e7fffb02ecb1cc84, refs/heads/main',
        '',
        'TAG              KIND     MEANING',
        '07fd946b33d9     commit   immutable: exactly this commit; what branch deploys run',
        'v1.2.0           release  immutable: the release; what release deploys run',
        'main-07fd946-57  branch   sortable <branch>-<sha7>-<build>: for Flux/Argo CD policies',
        '',
      ].join('\n'),
    );
  });

  test("Given --json, when ship tags runs, then the JSON is image-tags.js's own result", async () => {
    const dir = checkout();
    const { status, stdout } = await ship(['tags', '--json'], {}, dir);
    expect(status).toBe(0);
    const result = JSON.parse(stdout) as { kind: string; tags: string[]; ref: string };
    expect(result.kind).toBe('release');
    expect(result.ref).toBe('refs/heads/main');
    expect(result.tags).toHaveLength(2);
  });

  test("Given a folder that is not a checkout, when ship tags runs, then exit 1 with git's reason and the fix", async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-nogit-'));
    dirs.push(dir);
    const { status, stderr } = await ship(['tags'], {}, dir);
    expect(status).toBe(1);
    expect(stderr).toMatch(
      /Run this inside a git checkout with at least one commit, or pass --git-dir <dir>/,
    );
  });
});

describe('npx ship: the bin entry of package.json', () => {
  test('Given the checkout, when npx ship runs (bundled on first use by the pinned esbuild), then help exits 0 and a usage error exits 2', () => {
    const run = (args: string[]) =>
      spawnSync('npx', ['--no-install', 'ship', ...args], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...process.env, AWS_REGION: 'eu-west-1' },
      });
    const help = run(['--help']);
    expect(help.stderr).toBe('');
    expect(help.status).toBe(0);
    expect(help.stdout).toBe(USAGE);
    const usage = run(['status', '--env', 'prod']);
    expect(usage.status).toBe(2);
    expect(usage.stderr).toMatch(/--env "prod" is not an environment of this app/);
  });
});

describe('global options before the command (issue 18)', () => {
  test.each([
    [
      ['--registry', 'http://127.0.0.1:1', 'images', 'hasher'],
      'images',
      ['--registry', 'http://127.0.0.1:1', 'hasher'],
    ],
    [['-c', 'a=b', '--json', 'status'], 'status', ['-c', 'a=b', '--json']],
    [['--config=x.json', 'tags'], 'tags', ['--config=x.json']],
    [['-ca=b', 'tags', '--json'], 'tags', ['-ca=b', '--json']],
    [['--json'], undefined, []],
    [['--kubeconfig', 'status'], undefined, []],
  ])('Given %j, then the command is %s and the rest %j', (argv, name, rest) => {
    expect(splitCommand(argv)).toEqual({ name, rest });
  });

  test('Given -h before any command, when run, then the general usage goes to stdout', async () => {
    expect(await ship(['--json', '-h'])).toEqual({ status: 0, stdout: USAGE, stderr: '' });
  });
});
