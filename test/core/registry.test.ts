import { execFile } from 'node:child_process';
import { createHash, randomUUID, sign, X509Certificate } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, IncomingMessage, Server, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  ImmutableTagError,
  MEDIA_TYPES,
  NotFoundError,
  RegistryClient,
  RegistryError,
  RevisionMismatchError,
  UsageError,
  commonDigest,
  parseChallenge,
  parseReference,
  readDockerCredentials,
  registryBaseUrl,
  retag,
} from '../../core/registry';
import { selfSignedCertificate } from '../support/certificate';
import { Buildah, fixtureContext } from '../support/buildah';
import { RegistryUser, RunningRegistry, startRegistry } from '../support/registry';

const REGISTRY_JS = path.resolve(__dirname, '..', '..', 'core', 'registry.js');
const USER: RegistryUser = { username: 'ship', password: 's3cret' };
const COMMIT_A = 'a'.repeat(40);
const COMMIT_B = 'b'.repeat(40);
const MANIFEST_ACCEPT = Object.values(MEDIA_TYPES).join(', ');

interface CliResult {
  status: number;
  stdout: string;
  stderr: string;
}

/** Runs registry.js as the buildspec does, asynchronously (the token server answers in-process). */
function cli(args: string[], env: NodeJS.ProcessEnv): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('node', [REGISTRY_JS, ...args], { env, encoding: 'utf8' }, (error, stdout, stderr) => {
      const status = error === null ? 0 : typeof error.code === 'number' ? error.code : -1;
      resolve({ status, stdout, stderr });
    });
  });
}

/** A docker config folder as `docker login` leaves it: `auths[host].auth` = base64(user:password). */
function dockerConfig(auths: Record<string, RegistryUser>): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ship-docker-config-'));
  const entries = Object.fromEntries(
    Object.entries(auths).map(([host, user]) => [
      host,
      { auth: Buffer.from(`${user.username}:${user.password}`).toString('base64') },
    ]),
  );
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: entries }));
  return dir;
}

function envWith(dockerConfigDir: string, extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { PATH: process.env.PATH, HOME: tmpdir(), ...extra };
  env.DOCKER_CONFIG = dockerConfigDir;
  return env;
}

function basicAuth(user: RegistryUser): string {
  return `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`;
}

/** What the registry itself says a tag's digest is, and the manifest bytes (read without registry.js). */
async function registryView(
  registry: RunningRegistry,
  repository: string,
  tag: string,
  user: RegistryUser | undefined = USER,
): Promise<{ digest: string; bytes: Buffer; mediaType: string }> {
  const headers: Record<string, string> = { accept: MANIFEST_ACCEPT };
  if (user !== undefined) headers.authorization = basicAuth(user);
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${tag}`, { headers });
  if (!response.ok) throw new Error(`GET ${repository}:${tag} answered ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    digest: response.headers.get('docker-content-digest') ?? 'missing',
    bytes,
    mediaType: response.headers.get('content-type') ?? 'missing',
  };
}

async function registryTags(
  registry: RunningRegistry,
  repository: string,
  user: RegistryUser | undefined = USER,
): Promise<string[]> {
  const headers: Record<string, string> =
    user === undefined ? {} : { authorization: basicAuth(user) };
  const response = await fetch(`${registry.url}/v2/${repository}/tags/list`, { headers });
  if (response.status === 404) return [];
  const body = (await response.json()) as { tags: string[] | null };
  return [...(body.tags ?? [])].sort();
}

// ---- a token service for the Bearer flow: the real registry verifies its JWTs ----

interface TokenService {
  realm: string;
  service: string;
  issuer: string;
  certPath: string;
  /** Every scope asked for, in order, with the user who asked. */
  requests: { user: string | undefined; scopes: string[] }[];
  close(): Promise<void>;
}

function base64url(data: string | Buffer): string {
  return Buffer.from(data).toString('base64url');
}

/**
 * The token service the distribution registry's `auth.token` expects: Basic credentials in, an
 * RS256 JWT out whose `x5c` certificate is in the registry's rootcertbundle.
 */
async function startTokenService(user: RegistryUser): Promise<TokenService> {
  const dir = mkdtempSync(path.join(tmpdir(), 'ship-token-'));
  const { keyPath, certPath } = selfSignedCertificate(dir, { commonName: 'ship-test-token' });
  const key = readFileSync(keyPath, 'utf8');
  const x5c = new X509Certificate(readFileSync(certPath)).raw.toString('base64');
  const service = 'ship-test-registry';
  const issuer = 'ship-test-issuer';
  const requests: TokenService['requests'] = [];

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://token');
    const scopes = url.searchParams.getAll('scope');
    const header = req.headers.authorization ?? '';
    const [name, password] = header.startsWith('Basic ')
      ? Buffer.from(header.slice(6), 'base64').toString('utf8').split(':')
      : [undefined, undefined];
    requests.push({ user: name, scopes });
    if (name !== user.username || password !== user.password) {
      res.writeHead(401, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ details: 'incorrect username or password' }));
      return;
    }
    const now = Math.floor(Date.now() / 1000);
    const access = scopes.map((scope) => {
      const [type, repository, actions] = scope.split(':');
      return { type, name: repository, actions: (actions ?? '').split(',') };
    });
    const claims = {
      iss: issuer,
      sub: name,
      aud: service,
      iat: now,
      nbf: now - 5,
      exp: now + 300,
      jti: randomUUID(),
      access,
    };
    const signingInput = `${base64url(JSON.stringify({ alg: 'RS256', typ: 'JWT', x5c: [x5c] }))}.${base64url(JSON.stringify(claims))}`;
    const token = `${signingInput}.${base64url(sign('sha256', Buffer.from(signingInput), key))}`;
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ token, expires_in: 300 }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    realm: `http://127.0.0.1:${port}/token`,
    service,
    issuer,
    certPath,
    requests,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

// ---- the real parts, shared by the tests ----

let buildah: Buildah;
let secured: RunningRegistry;
let open: RunningRegistry;
let imageA: string;
let imageB: string;

beforeAll(async () => {
  buildah = new Buildah();
  const base = buildah.baseImage();
  imageA = 'localhost/registry-test:a';
  imageB = 'localhost/registry-test:b';
  buildah.bud(fixtureContext(base, 'A'), imageA, [
    '--label',
    `org.opencontainers.image.revision=${COMMIT_A}`,
  ]);
  buildah.bud(fixtureContext(base, 'B'), imageB, [
    '--label',
    `org.opencontainers.image.revision=${COMMIT_B}`,
  ]);
  [secured, open] = await Promise.all([startRegistry({ users: [USER] }), startRegistry()]);
  const creds = `${USER.username}:${USER.password}`;
  buildah.push(imageA, `${secured.host}/demo/app:a`, creds);
  buildah.push(imageB, `${secured.host}/demo/app:b`, creds);
  buildah.push(imageA, `${open.host}/demo/app:a`);

  // An index of two platforms, as a multi-platform build pushes it.
  buildah.run(['manifest', 'create', 'localhost/registry-test-list:1']);
  buildah.run([
    'manifest',
    'add',
    '--os',
    'linux',
    '--arch',
    'amd64',
    'localhost/registry-test-list:1',
    imageA,
  ]);
  buildah.run([
    'manifest',
    'add',
    '--os',
    'linux',
    '--arch',
    'arm64',
    'localhost/registry-test-list:1',
    imageB,
  ]);
  buildah.run([
    'manifest',
    'push',
    '--all',
    '--quiet',
    '--tls-verify=false',
    '--creds',
    creds,
    'localhost/registry-test-list:1',
    `docker://${secured.host}/demo/multi:both`,
  ]);
});

afterAll(async () => {
  await Promise.all([secured?.stop(), open?.stop()]);
});

// ---- pure parts ----

describe('parseReference', () => {
  test.each([
    [
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/rng:6e0de7938dda',
      {
        host: '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
        repository: 'dockercoins/rng',
        tag: '6e0de7938dda',
      },
    ],
    ['127.0.0.1:30500/rng:v1.2.0', { host: '127.0.0.1:30500', repository: 'rng', tag: 'v1.2.0' }],
    ['localhost:5000/a/b/c', { host: 'localhost:5000', repository: 'a/b/c' }],
    [
      `r.example/x@sha256:${'0'.repeat(64)}`,
      { host: 'r.example', repository: 'x', digest: `sha256:${'0'.repeat(64)}` },
    ],
  ])('Given %s, When parsed, Then the host is the first path segment', (text, expected) => {
    expect(parseReference(text)).toEqual(expected);
  });

  test.each([
    ['rng:latest', /not an image reference/],
    ['r.example/Dockercoins/rng:1', /repository name "Dockercoins\/rng"/],
    ['r.example/rng:-bad', /tag "-bad"/],
    ['r.example/rng@sha256:abc', /digest "sha256:abc"/],
  ])('Given %s, When parsed, Then a UsageError names the bad part', (text, message) => {
    expect(() => parseReference(text)).toThrow(UsageError);
    expect(() => parseReference(text)).toThrow(message);
  });

  test('Given a tag where only a repository fits, When parsed, Then it is refused', () => {
    expect(() => parseReference('r.example/rng:1', { allowTag: false })).toThrow(
      /give the repository only/,
    );
  });
});

describe('registryBaseUrl', () => {
  test.each([
    ['127.0.0.1:5000', {}, 'http://127.0.0.1:5000'],
    ['localhost:30500', {}, 'http://localhost:30500'],
    [
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com',
      {},
      'https://123456789012.dkr.ecr.eu-west-1.amazonaws.com',
    ],
    ['registry.internal:30500', { REGISTRY_INSECURE: 'true' }, 'http://registry.internal:30500'],
    ['registry.internal:30500', { REGISTRY_INSECURE: 'false' }, 'https://registry.internal:30500'],
  ])('Given %s and %j, Then the scheme is right', (host, env, url) => {
    expect(registryBaseUrl(host, env)).toBe(url);
  });

  test('Given REGISTRY_INSECURE=yes, Then the error names the variable and the values it takes', () => {
    expect(() => registryBaseUrl('r.example', { REGISTRY_INSECURE: 'yes' })).toThrow(
      /REGISTRY_INSECURE is "yes": expected "true"/,
    );
  });
});

describe('parseChallenge', () => {
  test('Given a Bearer challenge with a push scope, Then the quoted comma stays in the scope', () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:dockercoins/rng:pull,push"',
      ),
    ).toEqual({
      scheme: 'bearer',
      params: {
        realm: 'https://auth.example/token',
        service: 'registry.example',
        scope: 'repository:dockercoins/rng:pull,push',
      },
    });
  });

  test("Given ECR's Basic challenge, Then the scheme is basic", () => {
    expect(
      parseChallenge(
        'Basic realm="https://1.dkr.ecr.eu-west-1.amazonaws.com/",service="ecr.amazonaws.com"',
      ).scheme,
    ).toBe('basic');
  });
});

describe('readDockerCredentials', () => {
  test('Given a key written by an old client (https://host/v1/), Then it still matches the host', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-docker-config-'));
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({
        auths: {
          'https://r.example:5000/v1/': { auth: Buffer.from('u:p:with:colons').toString('base64') },
        },
      }),
    );
    expect(readDockerCredentials('r.example:5000', { DOCKER_CONFIG: dir })).toEqual({
      username: 'u',
      password: 'p:with:colons',
      source: path.join(dir, 'config.json'),
    });
    expect(readDockerCredentials('other.example', { DOCKER_CONFIG: dir })).toBeUndefined();
  });

  test('Given credentials kept by a credential helper, Then the error says so instead of going anonymous', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-docker-config-'));
    writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ credHelpers: { 'r.example': 'ecr-login' } }),
    );
    expect(() => readDockerCredentials('r.example', { DOCKER_CONFIG: dir })).toThrow(
      /docker-credential-ecr-login/,
    );
  });

  test('Given no config file, Then there are no credentials', () => {
    expect(
      readDockerCredentials('r.example', { DOCKER_CONFIG: mkdtempSync(path.join(tmpdir(), 'x-')) }),
    ).toBeUndefined();
  });
});

// ---- against the real registry ----

describe('digest', () => {
  test('Given a pushed tag and docker login credentials, When asked, Then it prints the digest the registry reports', async () => {
    const expected = await registryView(secured, 'demo/app', 'a');
    const result = await cli(
      ['digest', `${secured.host}/demo/app:a`],
      envWith(dockerConfig({ [secured.host]: USER })),
    );
    expect(result).toMatchObject({ status: 0, stderr: '' });
    expect(result.stdout.trim()).toBe(expected.digest);
    expect(expected.digest).toBe(
      `sha256:${createHash('sha256').update(expected.bytes).digest('hex')}`,
    );
  });

  test('Given a registry without auth and no docker config, When asked, Then it works anonymously', async () => {
    const expected = await registryView(open, 'demo/app', 'a', undefined);
    const result = await cli(
      ['digest', `${open.host}/demo/app:a`],
      envWith(mkdtempSync(path.join(tmpdir(), 'none-'))),
    );
    expect(result.status).toBe(0);
    expect(result.stdout.trim()).toBe(expected.digest);
  });

  test.each([
    ['a missing tag', 'demo/app:nope'],
    ['a missing repository', 'demo/absent:a'],
  ])(
    'Given %s, When asked, Then the exit status is 3 and the message names it',
    async (_case, ref) => {
      const result = await cli(
        ['digest', `${secured.host}/${ref}`],
        envWith(dockerConfig({ [secured.host]: USER })),
      );
      expect(result.status).toBe(3);
      expect(result.stdout).toBe('');
      expect(result.stderr).toContain(`${secured.host}/${ref}`);
      expect(result.stderr).toContain('does not exist');
    },
  );

  test('Given two tags of different images, When asked for their common digest, Then it fails naming both', async () => {
    const [a, b] = [
      await registryView(secured, 'demo/app', 'a'),
      await registryView(secured, 'demo/app', 'b'),
    ];
    const result = await cli(
      ['digest', `${secured.host}/demo/app:a`, 'b'],
      envWith(dockerConfig({ [secured.host]: USER })),
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`a → ${a.digest}`);
    expect(result.stderr).toContain(`b → ${b.digest}`);
  });

  test('Given a wrong password, When asked, Then exit 1 names the user, the config file and docker login', async () => {
    const config = dockerConfig({ [secured.host]: { username: USER.username, password: 'wrong' } });
    const result = await cli(['digest', `${secured.host}/demo/app:a`], envWith(config));
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`refused the credentials of user "${USER.username}"`);
    expect(result.stderr).toContain(path.join(config, 'config.json'));
    expect(result.stderr).toContain(`docker login ${secured.host}`);
  });

  test('Given no credentials for a registry that needs them, When asked, Then exit 1 says to log in', async () => {
    const result = await cli(
      ['digest', `${secured.host}/demo/app:a`],
      envWith(dockerConfig({ 'elsewhere.example': USER })),
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`requires authentication`);
    expect(result.stderr).toContain(`run docker login ${secured.host} first`);
  });

  test.each([
    [['digest'], /digest needs/],
    [['digest', 'no-host:1'], /not an image reference/],
    [['retag', '127.0.0.1:1/x:a'], /at least one new tag/],
    [['retag', '127.0.0.1:1/x:a', 'b', '--require-revision', 'abc'], /40-hex commit/],
    [['frobnicate'], /unknown command "frobnicate"/],
  ])('Given the arguments %j, Then the exit status is 2 with the usage', async (args, message) => {
    const result = await cli(args, envWith(mkdtempSync(path.join(tmpdir(), 'none-'))));
    expect(result.status).toBe(2);
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toContain('usage:');
  });
});

describe('retag', () => {
  test('Given a tag, When retagged to two new tags, Then both serve the very same bytes and digest', async () => {
    const before = await registryView(secured, 'demo/app', 'a');
    const result = await cli(
      ['retag', `${secured.host}/demo/app:a`, 'promoted-1', 'promoted-2', 'a'],
      envWith(dockerConfig({ [secured.host]: USER })),
    );
    expect(result).toMatchObject({ status: 0, stderr: '' });
    expect(result.stdout.trim().split('\n')).toEqual([
      `added   ${secured.host}/demo/app:promoted-1@${before.digest}`,
      `added   ${secured.host}/demo/app:promoted-2@${before.digest}`,
      `present ${secured.host}/demo/app:a@${before.digest}`,
    ]);
    for (const tag of ['promoted-1', 'promoted-2']) {
      const after = await registryView(secured, 'demo/app', tag);
      expect(after.digest).toBe(before.digest);
      expect(after.bytes.equals(before.bytes)).toBe(true);
      expect(after.mediaType).toBe(before.mediaType);
    }
  });

  test('Given one new tag already naming another image, When retagging, Then nothing is written and both digests are named', async () => {
    const client = new RegistryClient(secured.host, {
      env: envWith(dockerConfig({ [secured.host]: USER })),
    });
    const [a, b] = [
      await registryView(secured, 'demo/app', 'a'),
      await registryView(secured, 'demo/app', 'b'),
    ];
    const attempt = retag(client, parseReference(`${secured.host}/demo/app:a`), [
      'fresh-1',
      'b',
      'fresh-2',
    ]);
    await expect(attempt).rejects.toThrow(ImmutableTagError);
    await expect(
      retag(client, parseReference(`${secured.host}/demo/app:a`), ['fresh-1', 'b']),
    ).rejects.toThrow(`${secured.host}/demo/app:b already names ${b.digest}, not ${a.digest}`);
    expect(await registryTags(secured, 'demo/app')).not.toEqual(
      expect.arrayContaining(['fresh-1']),
    );
    expect(await registryTags(secured, 'demo/app')).not.toEqual(
      expect.arrayContaining(['fresh-2']),
    );
    expect((await registryView(secured, 'demo/app', 'b')).digest).toBe(b.digest);
  });

  test('Given --require-revision of another commit, When retagging, Then it fails naming both and adds no tag', async () => {
    const result = await cli(
      ['retag', `${secured.host}/demo/app:a`, 'must-not-exist', '--require-revision', COMMIT_B],
      envWith(dockerConfig({ [secured.host]: USER })),
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`org.opencontainers.image.revision=${COMMIT_A}`);
    expect(result.stderr).toContain(`build of commit ${COMMIT_B}`);
    expect(await registryTags(secured, 'demo/app')).not.toContain('must-not-exist');
  });

  test("Given --require-revision of the image's own commit, When retagging, Then the tag is added", async () => {
    const client = new RegistryClient(secured.host, {
      env: envWith(dockerConfig({ [secured.host]: USER })),
    });
    const result = await retag(
      client,
      parseReference(`${secured.host}/demo/app:b`),
      ['b-release'],
      {
        requireRevision: COMMIT_B,
      },
    );
    expect(result.changes).toEqual([{ tag: 'b-release', action: 'added' }]);
    expect((await registryView(secured, 'demo/app', 'b-release')).digest).toBe(result.digest);
  });

  test('Given an image without a revision label, When retagging with --require-revision, Then it is not promoted', async () => {
    buildah.bud(
      fixtureContext(buildah.baseImage('localhost/unlabelled-base:1'), 'C'),
      'localhost/registry-test:c',
    );
    buildah.push('localhost/registry-test:c', `${open.host}/demo/unlabelled:c`);
    const client = new RegistryClient(open.host, {
      env: envWith(mkdtempSync(path.join(tmpdir(), 'none-'))),
    });
    const attempt = retag(client, parseReference(`${open.host}/demo/unlabelled:c`), ['x'], {
      requireRevision: COMMIT_A,
    });
    await expect(attempt).rejects.toThrow(RevisionMismatchError);
    await expect(
      retag(client, parseReference(`${open.host}/demo/unlabelled:c`), ['x'], {
        requireRevision: COMMIT_A,
      }),
    ).rejects.toThrow(/has no org.opencontainers.image.revision label/);
    expect(await registryTags(open, 'demo/unlabelled', undefined)).toEqual(['c']);
  });
});

describe('absent', () => {
  test('Given tags none of which exists, Then exit 0; Given one that exists, Then exit 1 naming it and its digest', async () => {
    const env = envWith(dockerConfig({ [secured.host]: USER }));
    const free = await cli(['absent', `${secured.host}/demo/app:not-yet`, 'nor-this'], env);
    expect(free).toMatchObject({ status: 0, stdout: '', stderr: '' });
    const b = await registryView(secured, 'demo/app', 'b');
    const taken = await cli(['absent', `${secured.host}/demo/app:not-yet`, 'b'], env);
    expect(taken.status).toBe(1);
    expect(taken.stderr).toContain(`${secured.host}/demo/app:b (${b.digest}) already exists`);
    expect(taken.stderr).not.toContain('not-yet');
  });
});

describe('labels and indexes', () => {
  test('Given an image, When its labels are asked, Then the config labels come back as JSON', async () => {
    const result = await cli(
      ['labels', `${secured.host}/demo/app:a`],
      envWith(dockerConfig({ [secured.host]: USER })),
    );
    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toMatchObject({
      'org.opencontainers.image.revision': COMMIT_A,
    });
  });

  test("Given an index, When asked for the digest, Then it is the index's own digest", async () => {
    const index = await registryView(secured, 'demo/multi', 'both');
    expect(index.mediaType).toMatch(/index|list/);
    const result = await cli(
      ['digest', `${secured.host}/demo/multi:both`],
      envWith(dockerConfig({ [secured.host]: USER })),
    );
    expect(result.stdout.trim()).toBe(index.digest);
  });

  test.each([
    ['linux/arm64', COMMIT_B],
    ['linux/amd64', COMMIT_A],
    ['', COMMIT_A],
  ])(
    "Given an index and IMAGE_PLATFORM=%s, When labels are asked, Then they are that image's",
    async (platform, commit) => {
      const result = await cli(
        ['labels', `${secured.host}/demo/multi:both`],
        envWith(dockerConfig({ [secured.host]: USER }), { IMAGE_PLATFORM: platform }),
      );
      expect(result.status).toBe(0);
      expect(JSON.parse(result.stdout)).toMatchObject({
        'org.opencontainers.image.revision': commit,
      });
    },
  );

  test('Given an index without the platform asked for, Then the error lists the platforms it has', async () => {
    const result = await cli(
      ['labels', `${secured.host}/demo/multi:both`],
      envWith(dockerConfig({ [secured.host]: USER }), { IMAGE_PLATFORM: 'linux/s390x' }),
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(
      'without an image for linux/s390x (it has: linux/amd64, linux/arm64)',
    );
  });

  test('Given an index, When retagged, Then the new tag names the index (not one image) with the same bytes', async () => {
    const index = await registryView(secured, 'demo/multi', 'both');
    const result = await cli(
      ['retag', `${secured.host}/demo/multi:both`, 'both-again', '--require-revision', COMMIT_B],
      envWith(dockerConfig({ [secured.host]: USER }), { IMAGE_PLATFORM: 'linux/arm64' }),
    );
    expect(result.status).toBe(0);
    const copy = await registryView(secured, 'demo/multi', 'both-again');
    expect(copy.digest).toBe(index.digest);
    expect(copy.bytes.equals(index.bytes)).toBe(true);
    expect(copy.mediaType).toBe(index.mediaType);
  });
});

describe('tags', () => {
  test('Given more tags than a page holds, When listed, Then every page is followed', async () => {
    const client = new RegistryClient(secured.host, {
      env: envWith(dockerConfig({ [secured.host]: USER })),
    });
    const expected = await registryTags(secured, 'demo/app');
    expect(expected.length).toBeGreaterThan(2);
    expect((await client.listTags('demo/app', { pageSize: 1 })).sort()).toEqual(expected);
  });

  test('Given the CLI, When listing, Then one tag a line; a missing repository exits 3', async () => {
    const env = envWith(dockerConfig({ [secured.host]: USER }));
    const listed = await cli(['tags', `${secured.host}/demo/app`], env);
    expect(listed.status).toBe(0);
    expect(listed.stdout.trim().split('\n').sort()).toEqual(
      await registryTags(secured, 'demo/app'),
    );
    const missing = await cli(['tags', `${secured.host}/demo/nothing-here`], env);
    expect(missing.status).toBe(3);
    await expect(
      new RegistryClient(secured.host, { env }).listTags('demo/nothing-here'),
    ).rejects.toThrow(NotFoundError);
  });
});

describe('a registry behind a token service (Bearer)', () => {
  let tokens: TokenService;
  let tokenRegistry: RunningRegistry;

  beforeAll(async () => {
    tokens = await startTokenService(USER);
    tokenRegistry = await startRegistry({
      config: {
        version: 0.1,
        log: { level: 'warn' },
        storage: { filesystem: { rootdirectory: '/unused' }, delete: { enabled: true } },
        http: { addr: ':5000' },
        auth: {
          token: {
            realm: tokens.realm,
            service: tokens.service,
            issuer: tokens.issuer,
            rootcertbundle: tokens.certPath,
          },
        },
      },
    });
    // Asynchronously: buildah asks the token service, which answers from this process.
    await new Promise<void>((resolve, reject) => {
      execFile(
        'buildah',
        [
          'push',
          '--quiet',
          '--tls-verify=false',
          '--creds',
          `${USER.username}:${USER.password}`,
          imageA,
          `docker://${tokenRegistry.host}/demo/app:a`,
        ],
        { env: buildah.env },
        (error, _stdout, stderr) =>
          error === null ? resolve() : reject(new Error(`buildah push: ${stderr}`)),
      );
    });
  });

  afterAll(async () => {
    await Promise.all([tokenRegistry?.stop(), tokens?.close()]);
  });

  test('Given docker login credentials, When retagging, Then tokens are fetched for pull and for push', async () => {
    tokens.requests.length = 0;
    const env = envWith(dockerConfig({ [tokenRegistry.host]: USER }));
    const digest = await cli(['digest', `${tokenRegistry.host}/demo/app:a`], env);
    expect(digest.status).toBe(0);
    const result = await cli(['retag', `${tokenRegistry.host}/demo/app:a`, 'via-token'], env);
    expect(result).toMatchObject({ status: 0, stderr: '' });
    expect(result.stdout).toContain(`via-token@${digest.stdout.trim()}`);
    expect(tokens.requests.map((r) => r.user)).toEqual(tokens.requests.map(() => USER.username));
    // The registry lists the actions of a scope in no fixed order ("push,pull" or "pull,push").
    const scopes = tokens.requests.flatMap((r) => r.scopes);
    const sorted = scopes.map((scope) =>
      scope.replace(/[^:]+$/, (actions) => actions.split(',').sort().join(',')),
    );
    expect(sorted).toEqual(
      expect.arrayContaining(['repository:demo/app:pull', 'repository:demo/app:pull,push']),
    );
    const client = new RegistryClient(tokenRegistry.host, { env });
    expect(await commonDigest(client, 'demo/app', ['a', 'via-token'])).toBe(digest.stdout.trim());
  });

  test('Given a wrong password, When the token service refuses it, Then exit 1 names the service and docker login', async () => {
    const env = envWith(
      dockerConfig({ [tokenRegistry.host]: { username: USER.username, password: 'nope' } }),
    );
    const result = await cli(['digest', `${tokenRegistry.host}/demo/app:a`], env);
    expect(result.status).toBe(1);
    expect(result.stderr).toContain(`the token service ${tokens.realm} answered 401`);
    expect(result.stderr).toContain(`docker login ${tokenRegistry.host}`);
  });

  test('Given no credentials, When the anonymous token is refused, Then it is an error, not a "not found"', async () => {
    const result = await cli(
      ['digest', `${tokenRegistry.host}/demo/app:a`],
      envWith(mkdtempSync(path.join(tmpdir(), 'none-'))),
    );
    expect(result.status).toBe(1);
    expect(result.stderr).toContain('no credentials in the docker config');
    await expect(
      new RegistryClient(tokenRegistry.host, {
        env: envWith(mkdtempSync(path.join(tmpdir(), 'none-'))),
      }).manifestDigest('demo/app', 'a'),
    ).rejects.toThrow(RegistryError);
  });
});
