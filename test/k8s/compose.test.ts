import { spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from '../support/app';
import { relativePath, removeTempDirs, tempDir } from './kubectl';

// The real docker-compose (Debian's docker-compose 1.29) resolves the file offline with
// `config`: no Docker daemon is involved. CI installs it with apt-get.

afterAll(removeTempDirs);

const COMPOSE_FILE = path.join(REPO_ROOT, 'compose', 'dockercoins.yml');
const SERVICES = ['hasher', 'rng', 'webui', 'worker'];

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** `docker-compose -f compose/dockercoins.yml config` with exactly these variables. */
function config(vars: Record<string, string | undefined>): Run {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', HOME: tempDir('home') };
  for (const [key, value] of Object.entries(vars)) if (value !== undefined) env[key] = value;
  const result = spawnSync('docker-compose', ['-f', COMPOSE_FILE, 'config'], {
    encoding: 'utf8',
    env,
    cwd: tempDir('cwd'),
  });
  if (result.error !== undefined) {
    throw new Error(
      `docker-compose could not run (${result.error.message}): apt-get install -y docker-compose.`,
    );
  }
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** A DockerCoins checkout as compose needs it: dockercoins/<service>/Dockerfile. */
function checkout(): string {
  const dir = tempDir('dockercoins-src');
  for (const service of SERVICES) {
    mkdirSync(path.join(dir, 'dockercoins', service), { recursive: true });
    writeFileSync(path.join(dir, 'dockercoins', service, 'Dockerfile'), 'FROM scratch\n');
  }
  return dir;
}

type Services = Record<string, { image: string; build: { context: string } }>;

describe('compose/dockercoins.yml', () => {
  test('Given REGISTRY, TAG and DOCKERCOINS_SRC, when compose resolves the file, then the four images are $REGISTRY/<service>:$TAG built from $DOCKERCOINS_SRC/dockercoins/<service>', () => {
    const src = checkout();
    const run = config({ REGISTRY: '127.0.0.1:30500', TAG: '6e0de7938dda', DOCKERCOINS_SRC: src });
    expect(run.stderr).toBe('');
    const services = (parse(run.stdout) as { services: Services }).services;
    expect(Object.keys(services).sort()).toEqual(SERVICES);
    for (const service of SERVICES) {
      expect(services[service]).toEqual({
        image: `127.0.0.1:30500/${service}:6e0de7938dda`,
        build: { context: path.join(src, 'dockercoins', service) },
      });
    }
  });

  test.each([
    ['TAG unset', { TAG: undefined }, 'set TAG to a commit or release tag'],
    ['TAG empty', { TAG: '' }, 'set TAG to a commit or release tag'],
    ['REGISTRY unset', { REGISTRY: undefined }, 'set REGISTRY to the registry host'],
    ['REGISTRY empty', { REGISTRY: '' }, 'set REGISTRY to the registry host'],
    [
      'DOCKERCOINS_SRC unset',
      { DOCKERCOINS_SRC: undefined },
      'set DOCKERCOINS_SRC to the absolute path',
    ],
  ])(
    'Given %s, when compose resolves the file, then it stops with the hint instead of defaulting (to latest)',
    (_case, change, hint) => {
      const run = config({
        REGISTRY: '127.0.0.1:30500',
        TAG: '6e0de7938dda',
        DOCKERCOINS_SRC: checkout(),
        ...change,
      });
      expect(run.status).not.toBe(0);
      expect(run.stdout).toBe('');
      expect(run.stderr).toContain(hint);
      expect(run.stdout + run.stderr).not.toMatch(/:latest/);
    },
  );

  test('Given a relative DOCKERCOINS_SRC, when compose resolves the file, then it is taken from the compose/ folder, not the working directory (why the file asks for an absolute path)', () => {
    const src = checkout();
    const relative = relativePath(path.dirname(COMPOSE_FILE), src);
    const run = config({ REGISTRY: '127.0.0.1:30500', TAG: 'v1', DOCKERCOINS_SRC: relative });
    const services = (parse(run.stdout) as { services: Services }).services;
    expect(services.rng!.build.context).toBe(path.join(src, 'dockercoins', 'rng'));
  });

  test('Given the file, when read, then every image and build uses required variables (":?"), never a default', () => {
    const raw = parse(readFileSync(COMPOSE_FILE, 'utf8')) as {
      services: Record<string, { image: string; build: string }>;
    };
    for (const [service, { image, build }] of Object.entries(raw.services)) {
      expect(image).toMatch(
        new RegExp(`^\\$\\{REGISTRY:\\?[^}]+\\}/${service}:\\$\\{TAG:\\?[^}]+\\}$`),
      );
      expect(build).toMatch(
        new RegExp(`^\\$\\{DOCKERCOINS_SRC:\\?[^}]+\\}/dockercoins/${service}$`),
      );
      expect(`${image} ${build}`).not.toMatch(/:-|\$\{[A-Z_]+-/);
    }
  });
});
