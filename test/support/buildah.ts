import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

/**
 * Real image builds without a daemon: buildah with the vfs storage driver and chroot isolation,
 * in a storage of the test's own. `env` points every buildah and skopeo run (including any the
 * code under test starts) at that storage through CONTAINERS_STORAGE_CONF.
 */
export class Buildah {
  /** Environment for child processes: the test's storage, nothing else changed. */
  readonly env: NodeJS.ProcessEnv;
  readonly root: string;

  constructor(root: string = mkdtempSync(path.join(tmpdir(), 'ship-buildah-'))) {
    const probe = spawnSync('sh', ['-c', 'command -v buildah'], { encoding: 'utf8' });
    if (probe.status !== 0) {
      throw new Error(
        'buildah is not on PATH: apt-get install -y buildah (npm test does, through scripts/ensure-test-tools.sh)',
      );
    }
    this.root = root;
    mkdirSync(path.join(root, 'graph'), { recursive: true });
    mkdirSync(path.join(root, 'run'), { recursive: true });
    const storageConf = path.join(root, 'storage.conf');
    writeFileSync(
      storageConf,
      [
        '[storage]',
        'driver = "vfs"',
        `graphroot = "${path.join(root, 'graph')}"`,
        `runroot = "${path.join(root, 'run')}"`,
        '',
      ].join('\n'),
    );
    this.env = { ...process.env, CONTAINERS_STORAGE_CONF: storageConf };
  }

  /** Runs buildah with these arguments; throws with its output when it fails. */
  run(args: readonly string[]): string {
    const result = spawnSync('buildah', args, { env: this.env, encoding: 'utf8' });
    if (result.status !== 0) {
      throw new Error(`buildah ${args.join(' ')} failed (${result.status}):\n${result.stderr}`);
    }
    return result.stdout.trim();
  }

  /**
   * A base image made FROM scratch (no image can be pulled here): one file, `/base.txt`.
   * Returns the local name to use in `FROM`.
   */
  baseImage(name = 'localhost/ship-test-base:1'): string {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-base-'));
    writeFileSync(path.join(dir, 'base.txt'), `base image ${name}\n`);
    const container = this.run(['from', 'scratch']);
    this.run(['copy', container, path.join(dir, 'base.txt'), '/base.txt']);
    this.run(['config', '--label', 'org.opencontainers.image.title=ship-test-base', container]);
    this.run(['commit', '--quiet', container, name]);
    this.run(['rm', container]);
    return name;
  }

  /** Builds a context (Dockerfile inside) as `tag`, with chroot isolation. Returns the image id. */
  bud(context: string, tag: string, extraArgs: readonly string[] = []): string {
    return this.run(['bud', '--quiet', '--isolation', 'chroot', ...extraArgs, '-t', tag, context]);
  }

  /** Pushes a local image to a registry on 127.0.0.1 over plain HTTP. */
  push(image: string, destination: string = image, credentials?: string): void {
    const creds = credentials === undefined ? [] : ['--creds', credentials];
    this.run(['push', '--quiet', '--tls-verify=false', ...creds, image, `docker://${destination}`]);
  }
}

/** Writes a build context: a Dockerfile FROM `base` that copies one file with this content. */
export function fixtureContext(base: string, content: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ship-context-'));
  writeFileSync(path.join(dir, 'Dockerfile'), `FROM ${base}\nCOPY app.txt /app.txt\n`);
  writeFileSync(path.join(dir, 'app.txt'), `${content}\n`);
  return dir;
}
