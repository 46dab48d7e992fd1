import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';

/** A free TCP port on 127.0.0.1 (the kernel picks it; the listener closes before we use it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      if (address === null || typeof address === 'string') {
        server.close();
        reject(new Error('freePort: the listener has no TCP address'));
        return;
      }
      server.close(() => resolve(address.port));
    });
  });
}

/** Basic-auth credentials for a registry started with htpasswd auth. */
export interface RegistryUser {
  readonly username: string;
  readonly password: string;
}

export interface StartRegistryOptions {
  /**
   * The distribution configuration (config.yml, parsed). Only what cannot work in a test is
   * adapted: `http.addr` (a free port on 127.0.0.1), `storage.filesystem.rootdirectory` (the data
   * folder) and `auth.htpasswd.path` (a file written from `users`). TLS settings are removed.
   * @default - filesystem storage, delete enabled, no auth
   */
  readonly config?: Record<string, unknown>;
  /** Users for htpasswd auth (bcrypt, made with the real `htpasswd -B`). @default - no auth */
  readonly users?: readonly RegistryUser[];
  /** The data folder; pass the one of a stopped registry to restart on the same data. @default - a new temporary folder */
  readonly dataDir?: string;
  /**
   * Environment variables added to the registry's (which inherits the test's): `REGISTRY_*`
   * variables override config.yml, as in the container. @default - none added
   */
  readonly env?: Readonly<Record<string, string>>;
}

/** A real distribution registry (Debian's `docker-registry`) listening on 127.0.0.1. */
export interface RunningRegistry {
  /** `127.0.0.1:<port>`, the registry part of an image reference. */
  readonly host: string;
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly dataDir: string;
  /** The config.yml the registry runs with, as written. */
  readonly configPath: string;
  /** What the registry has written to stdout and stderr so far. */
  log(): string;
  /** Stops the process and waits for it to exit. */
  stop(): Promise<void>;
}

const DEFAULT_CONFIG: Record<string, unknown> = {
  version: 0.1,
  log: { level: 'warn' },
  storage: { filesystem: { rootdirectory: '/var/lib/registry' }, delete: { enabled: true } },
  http: { addr: ':5000' },
};

function requireTool(tool: string, fix: string): void {
  const probe = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (probe.status !== 0) throw new Error(`${tool} is not on PATH: ${fix}`);
}

/** An htpasswd file's text for these users, made by the real `htpasswd -B` (bcrypt). */
export function htpasswdFile(users: readonly RegistryUser[]): string {
  requireTool(
    'htpasswd',
    'apt-get install -y apache2-utils (npm test does, through scripts/ensure-test-tools.sh)',
  );
  return users
    .map((user) => {
      const made = spawnSync('htpasswd', ['-Bbn', user.username, user.password], {
        encoding: 'utf8',
      });
      if (made.status !== 0) throw new Error(`htpasswd failed: ${made.stderr}`);
      return made.stdout.trim();
    })
    .join('\n')
    .concat('\n');
}

async function waitUntilServing(
  url: string,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`docker-registry exited with ${child.exitCode}:\n${log()}`);
    }
    try {
      const response = await fetch(`${url}/v2/`);
      // 200 without auth, 401 with it: either way the registry answers the API.
      if (response.status === 200 || response.status === 401) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline)
      throw new Error(`docker-registry did not answer on ${url}:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * Starts the real distribution registry on a free port of 127.0.0.1 and waits until it answers
 * `/v2/`. Callers must `stop()` it (in `afterAll`).
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RunningRegistry> {
  requireTool(
    'docker-registry',
    'apt-get install -y docker-registry (npm test does, through scripts/ensure-test-tools.sh)',
  );
  const work = mkdtempSync(path.join(tmpdir(), 'ship-registry-'));
  const dataDir = options.dataDir ?? path.join(work, 'data');
  mkdirSync(dataDir, { recursive: true });
  const port = await freePort();

  const config = structuredClone(options.config ?? DEFAULT_CONFIG) as {
    http?: Record<string, unknown>;
    storage?: Record<string, unknown>;
    auth?: Record<string, unknown>;
  };
  config.http = { ...(config.http ?? {}), addr: `127.0.0.1:${port}` };
  delete config.http.tls;
  delete config.http.host;
  const storage = config.storage ?? {};
  if ('filesystem' in storage) storage.filesystem = { rootdirectory: dataDir };
  config.storage = storage;
  if (options.users !== undefined) {
    const htpasswdPath = path.join(work, 'htpasswd');
    writeFileSync(htpasswdPath, htpasswdFile(options.users));
    config.auth = { htpasswd: { realm: 'ship-test', path: htpasswdPath } };
  } else if (config.auth !== undefined && 'htpasswd' in config.auth) {
    throw new Error('startRegistry: the config enables htpasswd auth; pass `users` for its file');
  }
  const configPath = path.join(work, 'config.yml');
  writeFileSync(configPath, stringify(config));

  const child = spawn('docker-registry', ['serve', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, ...options.env },
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntilServing(url, child, () => output);
  } catch (error) {
    child.kill('SIGKILL');
    throw error;
  }

  return {
    host: `127.0.0.1:${port}`,
    url,
    dataDir,
    configPath,
    log: () => output,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) {
          resolve();
          return;
        }
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
