import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { connect } from 'node:net';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import { REGISTRY_HTPASSWD_SECRET, REGISTRY_KUSTOMIZE_DIR } from '../../lib/k8s/registry';
import { Buildah, fixtureContext } from '../support/buildah';
import { RegistryUser, freePort, htpasswdFile, startRegistry } from '../support/registry';
import {
  RENDERED,
  RegistryConfig,
  registryPodSpec,
  registryConfig,
  registryContainer,
  render,
} from './registry-support';
import { differences, removeTempDirs, tempDir } from './kubectl';
import { selfSignedCertificate } from '../support/certificate';

afterAll(removeTempDirs);

// The registry's config.yml as the manifests render it, run by the real distribution registry
// (Debian's docker-registry 2.8), with images built and pushed by buildah. Only what cannot work
// on a test machine is changed: listen addresses, and paths of data, htpasswd and certificates.

const base = render(RENDERED.base);
const baseConfig = registryConfig(base);
const readinessPath = registryContainer(base).readinessProbe?.httpGet?.path ?? '(none)';
const user: RegistryUser = { username: 'ship', password: 'correct horse battery staple' };
const basic = (u: RegistryUser): string =>
  `Basic ${Buffer.from(`${u.username}:${u.password}`).toString('base64')}`;
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** The rendered config with the debug server on a free loopback port (startRegistry keeps it). */
async function withDebugPort(
  config: RegistryConfig,
): Promise<{ config: RegistryConfig; debug: string }> {
  const adapted = structuredClone(config);
  const debug = `127.0.0.1:${await freePort()}`;
  adapted.http.debug = { addr: debug };
  return { config: adapted, debug: `http://${debug}` };
}

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

function canConnect(hostPort: string): Promise<boolean> {
  const [host, port] = hostPort.split(':');
  return new Promise((resolve) => {
    const socket = connect(Number(port), host);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

/** Builds an image whose one layer holds `content`, tagged `ref`; returns nothing, pushes nothing. */
function build(buildah: Buildah, baseImage: string, ref: string, content: string): void {
  buildah.bud(fixtureContext(baseImage, content), ref);
}

interface Served {
  readonly host: string;
  stop(): Promise<void>;
  log(): string;
}

/**
 * Runs docker-registry with this config and exactly this environment (startRegistry inherits the
 * test's environment and checks readiness over plain HTTP, which TLS and S3 cannot use).
 */
async function serve(
  config: RegistryConfig,
  env: NodeJS.ProcessEnv,
  ready: () => Promise<boolean>,
): Promise<Served> {
  const configPath = path.join(tempDir('serve'), 'config.yml');
  writeFileSync(configPath, stringify(config));
  const child: ChildProcess = spawn('docker-registry', ['serve', configPath], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const stop = (): Promise<void> =>
    new Promise((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGTERM');
    });
  const deadline = Date.now() + 15_000;
  while (!(await ready().catch(() => false))) {
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not become ready:\n${output}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  return { host: config.http.addr, stop, log: () => output };
}

/** The listen addresses and paths a test must change, on free loopback ports. */
async function adaptForTest(
  config: RegistryConfig,
  work: string,
  users: readonly RegistryUser[],
): Promise<RegistryConfig> {
  const adapted = structuredClone(config);
  adapted.http.addr = `127.0.0.1:${await freePort()}`;
  adapted.http.debug = { addr: `127.0.0.1:${await freePort()}` };
  if (adapted.storage.filesystem !== undefined) {
    adapted.storage.filesystem = { rootdirectory: path.join(work, 'data') };
  }
  const htpasswd = path.join(work, 'htpasswd');
  writeFileSync(htpasswd, htpasswdFile(users));
  adapted.auth = { htpasswd: { realm: config.auth!.htpasswd!.realm, path: htpasswd } };
  return adapted;
}

/** Only PATH (and what the test adds): no AWS_CA_BUNDLE or credentials from the test machine. */
const cleanEnv = (extra: Record<string, string> = {}): NodeJS.ProcessEnv => ({
  PATH: process.env.PATH,
  ...extra,
});

describe('the rendered config.yml, run by the real registry', () => {
  test('push with auth, the seed checks, delete by digest, restart, read-only garbage collection', async () => {
    const { config, debug } = await withDebugPort(baseConfig);
    let registry = await startRegistry({ config, users: [user] });
    const dataDir = registry.dataDir;
    try {
      // startRegistry changed only addresses, paths and the realm; everything else is as rendered.
      const written = parse(readFileSync(registry.configPath, 'utf8')) as RegistryConfig;
      expect(differences(baseConfig, written).sort()).toEqual([
        'auth.htpasswd.path',
        'auth.htpasswd.realm',
        'http.addr',
        'http.debug.addr',
        'storage.filesystem.rootdirectory',
      ]);

      // The probes: the readiness path answers on the debug server, the liveness port accepts.
      const health = await fetch(`${debug}${readinessPath}`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({});
      expect(await canConnect(registry.host)).toBe(true);
      // Why not /v2/: with auth on it answers 401. `/` answers without auth (README's node check).
      expect((await fetch(`${registry.url}/v2/`)).status).toBe(401);
      expect((await fetch(`${registry.url}/`)).status).toBe(200);

      const buildah = new Buildah();
      const baseImage = buildah.baseImage();
      const hasher = `${registry.host}/dockercoins/hasher:6e0de7938dda`;
      const rng = `${registry.host}/dockercoins/rng:6e0de7938dda`;
      build(buildah, baseImage, hasher, 'hasher');
      build(buildah, baseImage, rng, 'rng');

      // Auth on: an anonymous push is refused with 401; with the password it succeeds.
      expect(() => buildah.push(hasher)).toThrow(/unauthorized|authentication required/i);
      const upload = await fetch(`${registry.url}/v2/dockercoins/hasher/blobs/uploads/`, {
        method: 'POST',
      });
      expect(upload.status).toBe(401);
      expect(upload.headers.get('www-authenticate')).toMatch(/^Basic realm=/);
      buildah.push(hasher, hasher, `${user.username}:${user.password}`);
      buildah.push(rng, rng, `${user.username}:${user.password}`);

      const get = (url: string, init: RequestInit = {}): Promise<Response> =>
        fetch(`${registry.url}${url}`, {
          ...init,
          headers: { authorization: basic(user), accept: MANIFEST_TYPES, ...init.headers },
        });
      const seedChecks = async (): Promise<void> => {
        expect(
          (await json<{ repositories: string[] }>(await get('/v2/_catalog'))).repositories,
        ).toEqual(expect.arrayContaining(['dockercoins/hasher', 'dockercoins/rng']));
        expect(
          (await json<{ tags: string[] }>(await get('/v2/dockercoins/hasher/tags/list'))).tags,
        ).toEqual(['6e0de7938dda']);
      };
      await seedChecks();
      expect(
        (await json<{ tags: string[] }>(await get('/v2/dockercoins/rng/tags/list'))).tags,
      ).toEqual(['6e0de7938dda']);

      // Delete enabled: rng's manifest is deleted by digest (202), then gone (404).
      const head = await get('/v2/dockercoins/rng/manifests/6e0de7938dda', { method: 'HEAD' });
      const digest = head.headers.get('docker-content-digest') ?? '';
      expect(digest).toMatch(/^sha256:[0-9a-f]{64}$/);
      const layers = async (name: string, ref: string): Promise<string[]> =>
        (
          await json<{ layers: { digest: string }[] }>(await get(`/v2/${name}/manifests/${ref}`))
        ).layers.map((l) => l.digest);
      const hasherLayers = await layers('dockercoins/hasher', '6e0de7938dda');
      const rngOnly = (await layers('dockercoins/rng', digest)).filter(
        (d) => !hasherLayers.includes(d),
      );
      expect(rngOnly.length).toBeGreaterThan(0);
      expect(
        (await get(`/v2/dockercoins/rng/manifests/${digest}`, { method: 'DELETE' })).status,
      ).toBe(202);
      expect((await get(`/v2/dockercoins/rng/manifests/${digest}`)).status).toBe(404);

      // Data survives a restart on the same volume.
      await registry.stop();
      registry = await startRegistry({
        config: (await withDebugPort(baseConfig)).config,
        users: [user],
        dataDir,
      });
      await seedChecks();
      expect((await get(`/v2/dockercoins/rng/manifests/${digest}`)).status).toBe(404);

      // Garbage collection as README.md describes it: the registry read-only, then
      // `registry garbage-collect <config> --delete-untagged` in the same environment.
      await registry.stop();
      const readOnlyEnv = cleanEnv({ REGISTRY_STORAGE_MAINTENANCE_READONLY: '{"enabled": true}' });
      const gcConfig = await adaptForTest(baseConfig, tempDir('gc'), [user]);
      gcConfig.storage.filesystem = { rootdirectory: dataDir };
      const readOnly = await serve(
        gcConfig,
        readOnlyEnv,
        async () => (await fetch(`http://${gcConfig.http.addr}/v2/`)).status === 401,
      );
      try {
        const at = `http://${readOnly.host}`;
        const auth = { authorization: basic(user), accept: MANIFEST_TYPES };
        expect(
          (await fetch(`${at}/v2/dockercoins/hasher/manifests/6e0de7938dda`, { headers: auth }))
            .status,
        ).toBe(200);
        const refused = await fetch(`${at}/v2/dockercoins/hasher/blobs/uploads/`, {
          method: 'POST',
          headers: auth,
        });
        expect(refused.status).toBe(405);

        const blobFile = (d: string): string =>
          path.join(dataDir, 'docker/registry/v2/blobs/sha256', d.slice(7, 9), d.slice(7), 'data');
        expect(rngOnly.every((d) => existsSync(blobFile(d)))).toBe(true);
        const configFile = path.join(tempDir('gc-config'), 'config.yml');
        writeFileSync(configFile, stringify(gcConfig));
        const gc = spawnSync(
          'docker-registry',
          ['garbage-collect', configFile, '--delete-untagged'],
          {
            env: readOnlyEnv,
            encoding: 'utf8',
          },
        );
        if (gc.status !== 0)
          throw new Error(`garbage-collect failed (${gc.status}):\n${gc.stderr}`);
        // rng's own layer is freed; hasher (still tagged) keeps its manifest and every layer.
        expect(rngOnly.filter((d) => existsSync(blobFile(d)))).toEqual([]);
        expect(hasherLayers.every((d) => existsSync(blobFile(d)))).toBe(true);
        expect(
          (await fetch(`${at}/v2/dockercoins/hasher/manifests/6e0de7938dda`, { headers: auth }))
            .status,
        ).toBe(200);
        for (const d of hasherLayers) {
          expect(
            (await fetch(`${at}/v2/dockercoins/hasher/blobs/${d}`, { headers: auth })).status,
          ).toBe(200);
        }
      } finally {
        await readOnly.stop();
      }
    } finally {
      await registry.stop();
    }
  });

  test('the readiness endpoint turns 503 when storage fails, so the probe is real', async () => {
    // The one change beyond addresses and paths: the check runs every second and fails at the
    // first error, rather than after 3 × 10s, so the test takes seconds.
    const { config, debug } = await withDebugPort(baseConfig);
    config.health = { storagedriver: { enabled: true, interval: '1s', threshold: 1 } };
    const work = tempDir('broken');
    const registry = await startRegistry({
      config,
      users: [user],
      dataDir: path.join(work, 'disk', 'data'),
    });
    try {
      expect((await fetch(`${debug}${readinessPath}`)).status).toBe(200);
      // The disk goes away: the data directory's parent becomes a file.
      rmSync(path.join(work, 'disk'), { recursive: true });
      writeFileSync(path.join(work, 'disk'), 'not a directory\n');
      const deadline = Date.now() + 15_000;
      let response = await fetch(`${debug}${readinessPath}`);
      while (response.status === 200 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 200));
        response = await fetch(`${debug}${readinessPath}`);
      }
      expect(response.status).toBe(503);
      expect(await response.text()).toMatch(/storagedriver_filesystem/);
      // The liveness probe still passes: a restart would not bring the disk back.
      expect(await canConnect(registry.host)).toBe(true);
    } finally {
      await registry.stop();
    }
  });
});

describe('make-htpasswd.sh', () => {
  const script = path.join(REGISTRY_KUSTOMIZE_DIR, 'make-htpasswd.sh');
  // No cluster is consulted: an empty kubeconfig must not matter.
  const run = (args: string[], input: string): ReturnType<typeof spawnSync> =>
    spawnSync('bash', [script, ...args], {
      input,
      encoding: 'utf8',
      env: { ...process.env, KUBECONFIG: '/dev/null' },
    });

  test('prints the Secret the Deployment mounts, and its htpasswd authenticates with the registry', async () => {
    const made = run(['ship'], `${user.password}\n`);
    expect(made.stderr).toBe('');
    expect(made.status).toBe(0);
    const secret = parse(String(made.stdout)) as {
      kind: string;
      metadata: { name: string; namespace: string };
      data: Record<string, string>;
    };
    expect(secret.kind).toBe('Secret');
    const volume = registryPodSpec(base).volumes?.find((v) => v.secret !== undefined);
    expect(secret.metadata).toMatchObject({
      name: volume?.secret?.secretName,
      namespace: base.find((o) => o.kind === 'Deployment')?.metadata.namespace,
    });
    expect(Object.keys(secret.data)).toEqual([REGISTRY_HTPASSWD_SECRET.key]);
    const htpasswd = Buffer.from(
      secret.data[REGISTRY_HTPASSWD_SECRET.key] ?? '',
      'base64',
    ).toString();
    expect(htpasswd).toMatch(/^ship:\$2y\$\d\d\$/);
    expect(htpasswd).not.toContain(user.password);

    // Start with another user's file, then put the script's file in its place: the registry
    // rereads a changed htpasswd file, as it does when Kubernetes updates the mounted Secret.
    const placeholder: RegistryUser = { username: 'placeholder', password: 'placeholder' };
    const { config } = await withDebugPort(baseConfig);
    const registry = await startRegistry({ config, users: [placeholder] });
    try {
      expect(
        (await fetch(`${registry.url}/v2/`, { headers: { authorization: basic(placeholder) } }))
          .status,
      ).toBe(200);
      const written = parse(readFileSync(registry.configPath, 'utf8')) as RegistryConfig;
      writeFileSync(written.auth!.htpasswd!.path, htpasswd);
      const status = async (u: RegistryUser): Promise<number> =>
        (await fetch(`${registry.url}/v2/`, { headers: { authorization: basic(u) } })).status;
      expect(await status(user)).toBe(200);
      expect(await status(placeholder)).toBe(401);
      expect(await status({ username: 'ship', password: 'wrong' })).toBe(401);
    } finally {
      await registry.stop();
    }
  });

  test.each([
    ['no user', [], 'pw\n', 2, /usage/],
    ['an empty user', [''], 'pw\n', 2, /user name is empty/],
    ['a user with ":"', ['a:b'], 'pw\n', 2, /"a:b" contains ":"/],
    ['two users', ['a', 'b'], 'pw\n', 2, /usage/],
    ['an empty password', ['ship'], '', 1, /password is empty/],
    ['an empty password line', ['ship'], '\n', 1, /password is empty/],
  ])('refuses %s, printing nothing to apply', (_what, args, input, status, message) => {
    const made = run(args, input);
    expect(made.status).toBe(status);
    expect(made.stdout).toBe('');
    expect(String(made.stderr)).toMatch(message);
  });
});

describe('components/tls, run by the real registry', () => {
  test('the Secret keys named by the environment serve HTTPS; plain HTTP is refused', async () => {
    const tls = render(RENDERED.tls);
    const container = registryContainer(tls);
    const volume = registryPodSpec(tls).volumes?.find(
      (v) => v.secret?.secretName === 'registry-tls',
    );
    const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
    expect(mount).toBeDefined();

    // The Secret's files (kubernetes.io/tls: tls.crt, tls.key), where the test keeps them.
    const secretDir = tempDir('tls');
    selfSignedCertificate(secretDir, {
      commonName: '127.0.0.1',
      ipAddress: '127.0.0.1',
      keyFile: 'tls.key',
      certFile: 'tls.crt',
    });
    const ca = readFileSync(path.join(secretDir, 'tls.crt'));
    const env = Object.fromEntries(
      (container.env ?? []).map((e) => [
        e.name,
        (e.value ?? '').replace(`${mount!.mountPath}/`, `${secretDir}/`),
      ]),
    );
    expect(Object.values(env).every((file) => existsSync(file))).toBe(true);

    const config = await adaptForTest(registryConfig(tls), tempDir('tls-work'), [user]);
    const httpsStatus = (url: string, headers: Record<string, string> = {}): Promise<number> =>
      new Promise((resolve, reject) => {
        const req = httpsRequest(url, { ca, headers }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.once('error', reject);
        req.end();
      });
    const url = `https://${config.http.addr}`;
    const registry = await serve(
      config,
      cleanEnv(env),
      async () => (await httpsStatus(`${url}/v2/`)) === 401,
    );
    try {
      expect(await httpsStatus(`${url}/v2/`)).toBe(401);
      expect(await httpsStatus(`${url}/v2/`, { authorization: basic(user) })).toBe(200);
      const plain = await fetch(`http://${config.http.addr}/v2/`);
      expect(plain.status).toBe(400);
      expect(await plain.text()).toMatch(/HTTP request to an HTTPS server/);
      // The readiness probe is unchanged: plain HTTP on the debug server.
      expect((await fetch(`http://${config.http.debug!.addr}${readinessPath}`)).status).toBe(200);
    } finally {
      await registry.stop();
    }
  });
});

describe('overlays/s3, run by the real registry against moto', () => {
  let moto: ChildProcess | undefined;
  afterAll(() => {
    moto?.kill('SIGTERM');
  });

  test('images land in the bucket; credentials come from the environment, none from config.yml', async () => {
    const probe = spawnSync('sh', ['-c', 'command -v moto_server']);
    if (probe.status !== 0)
      throw new Error('moto_server is not on PATH: pip install "moto[server]"');
    const motoPort = await freePort();
    moto = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(motoPort)], { stdio: 'ignore' });
    const endpoint = `http://127.0.0.1:${motoPort}`;
    const deadline = Date.now() + 30_000;
    while (
      !(await fetch(endpoint).then(
        (r) => r.ok,
        () => false,
      ))
    ) {
      if (Date.now() > deadline) throw new Error('moto_server did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    const s3Config = registryConfig(render(RENDERED.s3));
    const bucket = String(s3Config.storage.s3?.bucket);
    expect((await fetch(`${endpoint}/${bucket}`, { method: 'PUT' })).status).toBe(200);

    const config = await adaptForTest(s3Config, tempDir('s3'), [user]);
    // Where S3 is: an address, as http.addr is.
    config.storage.s3 = { ...config.storage.s3, regionendpoint: endpoint };
    expect(differences(s3Config, config).sort()).toEqual([
      'auth.htpasswd.path',
      'http.addr',
      'http.debug.addr',
      'storage.s3.regionendpoint',
    ]);
    // On EKS the SDK finds the pod role (Pod Identity or IRSA); here, the environment's keys.
    const env = cleanEnv({ AWS_ACCESS_KEY_ID: 'testing', AWS_SECRET_ACCESS_KEY: 'testing' });
    const registry = await serve(
      config,
      env,
      async () => (await fetch(`http://${config.http.debug!.addr}${readinessPath}`)).status === 200,
    );
    try {
      const buildah = new Buildah();
      const image = `${registry.host}/dockercoins/worker:6e0de7938dda`;
      build(buildah, buildah.baseImage(), image, 'worker');
      buildah.push(image, image, `${user.username}:${user.password}`);
      const catalog = await fetch(`http://${registry.host}/v2/_catalog`, {
        headers: { authorization: basic(user) },
      });
      expect((await json<{ repositories: string[] }>(catalog)).repositories).toEqual([
        'dockercoins/worker',
      ]);
      const listing = await (
        await fetch(
          `${endpoint}/${bucket}?list-type=2&prefix=docker/registry/v2/repositories/dockercoins/worker/`,
        )
      ).text();
      expect(listing).toContain(
        '<Key>docker/registry/v2/repositories/dockercoins/worker/_manifests/tags/6e0de7938dda/current/link</Key>',
      );
    } catch (error) {
      throw new Error(`${String(error)}\nregistry log:\n${registry.log()}`);
    } finally {
      await registry.stop();
    }
  });
});
