import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent } from 'node:https';
import { IncomingMessage } from 'node:http';
import { createServer, Server } from 'node:https';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { createKubeClient, type KubeClientOptions } from '../../core/kube';
import { RetryLaterError } from '../../core/retry';
import { ConflictError, PermanentError, TransientError } from '../../core/types';
import { REPO_ROOT } from '../support/app';
import { clientCertificate, selfSignedCertificate } from '../support/certificate';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';

// A small HTTPS server standing in for the API server: the status mapping, TLS and connection
// handling are what is tested here; Kubernetes semantics are the fake API server's (later).

interface Seen {
  readonly method: string;
  readonly url: string;
  readonly headers: IncomingMessage['headers'];
  readonly body: string;
}

type Reply =
  { status: number; body?: string; headers?: Record<string, string> } | 'hang' | 'destroy';

const DEPLOYMENT = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'hasher', namespace: 'dockercoins', resourceVersion: '42', generation: 3 },
  spec: { template: { spec: { containers: [{ name: 'hasher', image: 'hasher:1' }] } } },
};

function status(code: number, reason: string, message: string, extra: object = {}): string {
  return JSON.stringify({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message,
    reason,
    code,
    ...extra,
  });
}

let dir: string;
let caPem: string;
let otherCaPem: string;
let server: Server;
let endpoint: string;
let port: number;
let reply: (seen: Seen, index: number) => Reply;
let seen: Seen[];
let connections: number;
const sockets = new Set<Socket>();

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'ship-kube-'));
  const cert = selfSignedCertificate(dir, { commonName: 'kube-apiserver', ipAddress: '127.0.0.1' });
  const other = selfSignedCertificate(dir, {
    commonName: 'someone-else',
    ipAddress: '127.0.0.1',
    keyFile: 'other-key.pem',
    certFile: 'other-cert.pem',
  });
  caPem = readFileSync(cert.certPath, 'utf8');
  otherCaPem = readFileSync(other.certPath, 'utf8');
  server = createServer(
    { key: readFileSync(cert.keyPath), cert: readFileSync(cert.certPath) },
    (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const request: Seen = {
          method: req.method ?? '',
          url: req.url ?? '',
          headers: req.headers,
          body: Buffer.concat(chunks).toString('utf8'),
        };
        seen.push(request);
        const answer = reply(request, seen.length - 1);
        if (answer === 'hang') return;
        if (answer === 'destroy') {
          req.socket.destroy();
          return;
        }
        res.writeHead(answer.status, { 'content-type': 'application/json', ...answer.headers });
        res.end(answer.body ?? '');
      });
    },
  );
  server.on('secureConnection', (socket: Socket) => {
    connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
  endpoint = `https://127.0.0.1:${port}`;
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await new Promise((resolve) => server.close(resolve));
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  seen = [];
  connections = 0;
  reply = () => ({ status: 200, body: JSON.stringify(DEPLOYMENT) });
});

const clients: { close(): void }[] = [];
afterEach(() => {
  for (const client of clients.splice(0)) client.close();
});

function client(options: Partial<KubeClientOptions> = {}) {
  let issued = 0;
  const tokens: string[] = [];
  const invalidations: number[] = [];
  const unreachable: Error[] = [];
  const made = createKubeClient({
    endpoint,
    caPem,
    token: () => {
      issued += 1;
      const token = `k8s-aws-v1.token-${issued}`;
      tokens.push(token);
      return Promise.resolve(token);
    },
    invalidateToken: () => invalidations.push(issued),
    onUnreachable: (error) => unreachable.push(error),
    ...options,
  });
  clients.push(made);
  return { kube: made, tokens, invalidations, unreachable };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure, but the call succeeded');
}

describe('createKubeClient: requests', () => {
  test('Given a Deployment, when got, then GET of its apps/v1 path with the bearer token, JSON accepted, and the body parsed', async () => {
    const { kube, tokens } = client();
    expect(await kube.getDeployment('dockercoins', 'hasher')).toEqual(DEPLOYMENT);
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'GET',
      url: '/apis/apps/v1/namespaces/dockercoins/deployments/hasher',
    });
    expect(seen[0]?.headers).toMatchObject({
      authorization: `Bearer ${tokens[0]}`,
      accept: 'application/json',
      'user-agent': 'dockercoins-deployer',
    });
  });

  test('Given a strategic-merge patch, when sent, then one PATCH with its content type, the field manager and the JSON body', async () => {
    const { kube } = client({ userAgent: 'ship/1.0' });
    const patch = {
      metadata: { resourceVersion: '42', annotations: { 'kubernetes.io/change-cause': 'x' } },
      spec: { template: { spec: { containers: [{ name: 'hasher', image: 'hasher:2' }] } } },
    };
    const patched = await kube.patchDeployment('dockercoins', 'hasher', patch);
    expect(patched.metadata.resourceVersion).toBe('42');
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({
      method: 'PATCH',
      url: '/apis/apps/v1/namespaces/dockercoins/deployments/hasher?fieldManager=dockercoins-deployer',
    });
    expect(seen[0]?.headers).toMatchObject({
      'content-type': 'application/strategic-merge-patch+json',
      accept: 'application/json',
      'user-agent': 'ship/1.0',
    });
    expect(JSON.parse(seen[0]?.body ?? '')).toEqual(patch);
  });

  test('Given names with characters that mean something in a path, then each segment is percent-encoded', async () => {
    const { kube } = client();
    await kube.getDeployment('a/b', 'c?d#e f');
    expect(seen[0]?.url).toBe('/apis/apps/v1/namespaces/a%2Fb/deployments/c%3Fd%23e%20f');
  });

  test('Given several requests, then they share one kept-alive TLS connection', async () => {
    const { kube } = client();
    await kube.getDeployment('dockercoins', 'hasher');
    await kube.patchDeployment('dockercoins', 'hasher', { metadata: {} });
    await kube.getDeployment('dockercoins', 'rng');
    expect(seen).toHaveLength(3);
    expect(connections).toBe(1);
  });
});

describe('createKubeClient: answers', () => {
  test('Given GET answered 404, then undefined (the Deployment does not exist)', async () => {
    reply = () => ({
      status: 404,
      body: status(404, 'NotFound', 'deployments.apps "hasher" not found'),
    });
    expect(await client().kube.getDeployment('dockercoins', 'hasher')).toBeUndefined();
  });

  test.each<[string, 'GET' | 'PATCH', number, string, Record<string, string>, (e: Error) => void]>([
    [
      'PATCH 404',
      'PATCH',
      404,
      status(404, 'NotFound', 'deployments.apps "hasher" not found'),
      {},
      (e) => {
        expect(e).toBeInstanceOf(PermanentError);
        expect((e as PermanentError).reason).toBe('deployment-missing');
        expect(e.message).toMatch(/deployments.apps "hasher" not found/);
      },
    ],
    [
      '403',
      'PATCH',
      403,
      status(
        403,
        'Forbidden',
        'deployments.apps "hasher" is forbidden: User "arn:aws:sts::1:assumed-role/deployer/x" cannot patch resource "deployments"',
      ),
      {},
      (e) => {
        expect(e).toBeInstanceOf(PermanentError);
        expect((e as PermanentError).reason).toBe('forbidden');
        expect(e.message).toMatch(
          /cannot patch resource "deployments".*access entry.*allow get and patch/s,
        );
      },
    ],
    [
      '409',
      'PATCH',
      409,
      status(
        409,
        'Conflict',
        'the object has been modified; please apply your changes to the latest version and try again',
      ),
      {},
      (e) => {
        expect(e).toBeInstanceOf(ConflictError);
        expect(e.message).toMatch(/the object has been modified/);
      },
    ],
    ...[400, 415, 422].map(
      (
        code,
      ): [string, 'GET' | 'PATCH', number, string, Record<string, string>, (e: Error) => void] => [
        `${code}`,
        'PATCH',
        code,
        status(code, 'Invalid', `Deployment.apps "hasher" is invalid (${code})`),
        {},
        (e) => {
          expect(e).toBeInstanceOf(PermanentError);
          expect((e as PermanentError).reason).toBe('rejected');
          expect(e.message).toContain(`is invalid (${code})`);
        },
      ],
    ),
    ...[500, 502, 503, 504].map(
      (
        code,
      ): [string, 'GET' | 'PATCH', number, string, Record<string, string>, (e: Error) => void] => [
        `${code}`,
        'GET',
        code,
        status(code, 'InternalError', `etcd hiccup ${code}`),
        {},
        (e) => {
          expect(e).toBeInstanceOf(TransientError);
          expect(e).not.toBeInstanceOf(RetryLaterError);
          expect(e.message).toContain(`${code}: etcd hiccup ${code}`);
        },
      ],
    ),
    [
      '429 with Retry-After',
      'GET',
      429,
      status(429, 'TooManyRequests', 'too many requests'),
      { 'retry-after': '3' },
      (e) => {
        expect(e).toBeInstanceOf(RetryLaterError);
        expect((e as RetryLaterError).retryAfterMs).toBe(3000);
      },
    ],
    [
      '503 with details.retryAfterSeconds',
      'PATCH',
      503,
      status(503, 'ServiceUnavailable', 'apiserver is shutting down', {
        details: { retryAfterSeconds: 1 },
      }),
      {},
      (e) => {
        expect(e).toBeInstanceOf(RetryLaterError);
        expect((e as RetryLaterError).retryAfterMs).toBe(1000);
      },
    ],
    [
      '200 with a body that is not JSON',
      'GET',
      200,
      '<html>proxy</html>',
      {},
      (e) => {
        expect(e).toBeInstanceOf(PermanentError);
        expect((e as PermanentError).reason).toBe('rejected');
        expect(e.message).toMatch(/not JSON.*<html>proxy/);
      },
    ],
    [
      '200 with JSON that is not a Deployment',
      'PATCH',
      200,
      '{"kind":"Status"}',
      {},
      (e) => {
        expect(e).toBeInstanceOf(PermanentError);
        expect((e as PermanentError).reason).toBe('rejected');
        expect(e.message).toMatch(/no metadata.name/);
      },
    ],
  ])(
    'Given %s, then the error kind apply expects',
    async (_name, method, code, body, headers, check) => {
      reply = () => ({ status: code, body, headers });
      const { kube } = client();
      const error = await failure(
        method === 'GET'
          ? kube.getDeployment('dockercoins', 'hasher')
          : kube.patchDeployment('dockercoins', 'hasher', { metadata: {} }),
      );
      check(error);
      expect(seen).toHaveLength(1);
    },
  );

  test('Given a 401 once, then the token is renewed and the request sent again, once', async () => {
    reply = (_seen, index) =>
      index === 0
        ? { status: 401, body: status(401, 'Unauthorized', 'Unauthorized') }
        : { status: 200, body: JSON.stringify(DEPLOYMENT) };
    const { kube, tokens, invalidations } = client();
    expect(await kube.getDeployment('dockercoins', 'hasher')).toEqual(DEPLOYMENT);
    expect(seen.map((s) => s.headers.authorization)).toEqual(tokens.map((t) => `Bearer ${t}`));
    expect(tokens).toHaveLength(2);
    expect(invalidations).toEqual([1]);
  });

  test('Given 401 to the renewed token too, then PermanentError forbidden naming the access entry and authentication mode', async () => {
    reply = () => ({ status: 401, body: status(401, 'Unauthorized', 'Unauthorized') });
    const { kube, invalidations } = client();
    const error = await failure(kube.patchDeployment('dockercoins', 'hasher', {}));
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('forbidden');
    expect(error.message).toMatch(/access entry.*API or API_AND_CONFIG_MAP/s);
    expect(seen).toHaveLength(2);
    expect(invalidations).toHaveLength(1);
  });
});

describe('createKubeClient: connections', () => {
  test('Given a server that never answers, then TransientError after the timeout, not later', async () => {
    reply = () => 'hang';
    const { kube, unreachable } = client({ timeoutMs: 200 });
    const started = Date.now();
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/timed out.*200 ms/);
    expect(Date.now() - started).toBeGreaterThanOrEqual(190);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(unreachable).toHaveLength(1);
  });

  test('Given nothing listening, then TransientError ECONNREFUSED, with the hint', async () => {
    const closed = new (await import('node:net')).Server();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const freePort = (closed.address() as AddressInfo).port;
    await new Promise((resolve) => closed.close(resolve));
    const { kube } = client({
      endpoint: `https://127.0.0.1:${freePort}`,
      unreachableHint: 'The endpoint is private.',
    });
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/ECONNREFUSED.*The endpoint is private\./);
  });

  test('Given the server drops a fresh connection mid-request, then TransientError (socket hang up) and no second request', async () => {
    reply = () => 'destroy';
    const { kube } = client();
    const error = await failure(kube.patchDeployment('dockercoins', 'hasher', {}));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/ECONNRESET|socket hang up/);
    expect(seen).toHaveLength(1);
  });

  test('Given the server drops a kept-alive connection, then the request is sent again once on a new connection', async () => {
    reply = (_seen, index) =>
      index === 1 ? 'destroy' : { status: 200, body: JSON.stringify(DEPLOYMENT) };
    const { kube } = client();
    await kube.getDeployment('dockercoins', 'hasher');
    expect(await kube.getDeployment('dockercoins', 'hasher')).toEqual(DEPLOYMENT);
    expect(seen).toHaveLength(3);
    expect(connections).toBe(2);
  });

  test('Given a server certificate from another CA, then the request fails before any HTTP, as TransientError naming the cluster CA', async () => {
    const { kube, unreachable } = client({
      caPem: otherCaPem,
      clusterLabel: 'cluster "prod" (eu-west-1)',
    });
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(
      /cluster "prod" \(eu-west-1\).*does not verify against the cluster CA/,
    );
    expect(seen).toHaveLength(0);
    expect(unreachable).toHaveLength(1);
  });

  test('Given a host name the certificate does not name, then the request fails before any HTTP', async () => {
    const { kube } = client({ endpoint: `https://localhost:${port}` });
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/ERR_TLS_CERT_ALTNAME_INVALID/);
    expect(seen).toHaveLength(0);
  });

  test.each([
    ['http://127.0.0.1:6443', /not https:\/\/<host>\[:port\]/],
    ['not a url', /is not a URL/],
  ])('Given the endpoint %s, then construction fails saying what is expected', (bad, message) => {
    expect(() =>
      createKubeClient({ endpoint: bad, caPem, token: () => Promise.resolve('t') }),
    ).toThrow(message);
  });

  test('Given a CA that is not PEM, then construction fails saying to decode the base64', () => {
    expect(() =>
      createKubeClient({
        endpoint,
        caPem: Buffer.from(caPem).toString('base64'),
        token: () => Promise.resolve('t'),
      }),
    ).toThrow(/not a PEM certificate.*decoded from base64/);
  });
});

describe('createKubeClient with withRetries (the one retry place)', () => {
  test('Given 503, then 429 with Retry-After 1, then 200, then the call succeeds on the third request after waiting at least 1 s', async () => {
    const { withRetries } = await import('../../core/retry');
    reply = (_seen, index) =>
      index === 0
        ? { status: 503, body: status(503, 'ServiceUnavailable', 'unavailable') }
        : index === 1
          ? {
              status: 429,
              body: status(429, 'TooManyRequests', 'slow down'),
              headers: { 'retry-after': '1' },
            }
          : { status: 200, body: JSON.stringify(DEPLOYMENT) };
    const delays: number[] = [];
    const { kube } = client();
    const got = await withRetries(() => kube.getDeployment('dockercoins', 'hasher'), {
      sleep: (ms) => {
        delays.push(ms);
        return Promise.resolve();
      },
    });
    expect(got).toEqual(DEPLOYMENT);
    expect(seen).toHaveLength(3);
    expect(delays[0]).toBeLessThanOrEqual(100);
    expect(delays[1]).toBe(1000);
  });
});

describe('createKubeClient for ship: options of a kubeconfig user', () => {
  test.each([
    ['no fieldManager', {}, 'dockercoins-deployer'],
    ["ship's", { fieldManager: 'dockercoins-ship' }, 'dockercoins-ship'],
  ])(
    'Given %s, when a Deployment is patched, then the fieldManager query parameter names it',
    async (_, options, expected) => {
      await client(options).kube.patchDeployment('dockercoins', 'hasher', { metadata: {} });
      expect(new URL(seen[0]!.url, endpoint).searchParams.get('fieldManager')).toBe(expected);
    },
  );

  test('Given no token, when a Deployment is read, then no Authorization header; a 401 is final (nothing to renew) and says the access hint', async () => {
    const kube = createKubeClient({
      endpoint,
      caPem,
      accessHint: { unauthorized: 'Check your kubeconfig user.', forbidden: 'Ask for a Role.' },
    });
    clients.push(kube);
    await kube.getDeployment('dockercoins', 'hasher');
    expect(seen[0]?.headers.authorization).toBeUndefined();
    reply = () => ({ status: 401, body: status(401, 'Unauthorized', 'Unauthorized') });
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(
      /401 Unauthorized \(Unauthorized\)\. Check your kubeconfig user\.$/,
    );
    expect(seen).toHaveLength(2);
  });

  test("Given an accessHint, when the server answers 403, then the message gives that hint, not the deployer's", async () => {
    reply = () => ({
      status: 403,
      body: status(403, 'Forbidden', 'replicasets.apps is forbidden: User "alice" cannot list'),
    });
    const { kube } = client({
      accessHint: { unauthorized: 'Log in again.', forbidden: 'Apply k8s/rbac/ship.' },
    });
    const error = await failure(kube.listReplicaSets('dockercoins', 'app=hasher'));
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('forbidden');
    expect(error.message).toMatch(
      /403 Forbidden: .*User "alice" cannot list\. Apply k8s\/rbac\/ship\.$/,
    );
    expect(error.message).not.toMatch(/access entry/);
  });

  test.each([
    [
      'a Status, not a list',
      '{"kind":"Status","apiVersion":"v1"}',
      /not a ReplicaSetList \(no items array\)/,
    ],
    ['items that is not an array', '{"kind":"ReplicaSetList","items":{}}', /not a ReplicaSetList/],
    ['a body that is not JSON', '<html>proxy</html>', /not JSON.*<html>proxy/],
  ])(
    'Given a list answered 200 with %s, then PermanentError rejected',
    async (_, body, message) => {
      reply = () => ({ status: 200, body });
      const error = await failure(client().kube.listReplicaSets('dockercoins', 'app=hasher'));
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).reason).toBe('rejected');
      expect(error.message).toMatch(message);
    },
  );

  test.each([
    [
      'a Status, not a list',
      '{"kind":"Status","apiVersion":"v1"}',
      /not a PodList \(no items array\)/,
    ],
    ['items that is not an array', '{"kind":"PodList","items":{}}', /not a PodList/],
    ['a body that is not JSON', '<html>proxy</html>', /not JSON.*<html>proxy/],
  ])(
    'Given a pod list answered 200 with %s, then PermanentError rejected',
    async (_, body, message) => {
      reply = () => ({ status: 200, body });
      const error = await failure(client().kube.listPods('dockercoins', 'app=hasher'));
      expect(error).toBeInstanceOf(PermanentError);
      expect((error as PermanentError).reason).toBe('rejected');
      expect(error.message).toMatch(message);
    },
  );

  test('Given no CA (a kubeconfig without certificate-authority), when the server is self-signed, then the request fails before any HTTP, saying no CA was given and the hint', async () => {
    const { kube } = client({
      caPem: undefined,
      certificateHint: 'give the cluster certificate-authority-data in the kubeconfig.',
    });
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(
      /does not verify against Node\.js's trusted public CAs \(no cluster CA was given\) \((DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN):.*Verification is never turned off; give the cluster certificate-authority-data in the kubeconfig\.$/,
    );
    expect(seen).toHaveLength(0);
  });
});

describe('createKubeClient against the in-test API server: ReplicaSets and client certificates', () => {
  const NS = 'dockercoins';
  const SELECTOR = 'app.kubernetes.io/name=hasher,app.kubernetes.io/part-of=dockercoins';
  const FIXTURE = parse(
    readFileSync(
      path.join(REPO_ROOT, 'test', 'fixtures', 'kube', 'hasher-deployment.yaml'),
      'utf8',
    ),
  ) as object;
  const imagePatch = (tag: string) => ({
    spec: { template: { spec: { containers: [{ name: 'hasher', image: `hasher:${tag}` }] } } },
  });
  let kubeDir: string;
  let apiserver: KubeApiServer;
  let alice: { certPem: string; keyPem: string };
  let stranger: { certPem: string; keyPem: string };

  beforeAll(async () => {
    kubeDir = mkdtempSync(path.join(tmpdir(), 'ship-kube-client-'));
    const clientCa = selfSignedCertificate(kubeDir, { commonName: 'client-ca' });
    const otherCa = selfSignedCertificate(kubeDir, {
      commonName: 'other-ca',
      keyFile: 'other-key.pem',
      certFile: 'other-cert.pem',
    });
    const pems = (files: { certPath: string; keyPath: string }) => ({
      certPem: readFileSync(files.certPath, 'utf8'),
      keyPem: readFileSync(files.keyPath, 'utf8'),
    });
    alice = pems(clientCertificate(kubeDir, { ca: clientCa, commonName: 'alice' }));
    stranger = pems(clientCertificate(kubeDir, { ca: otherCa, commonName: 'alice' }));
    apiserver = await startKubeApiServer({
      clusterName: 'dockercoins',
      staticTokens: { 'bob-token': 'bob' },
      clientCa: { certPem: readFileSync(clientCa.certPath, 'utf8') },
    });
  });
  afterAll(async () => {
    await apiserver.stop();
    rmSync(kubeDir, { recursive: true, force: true });
  });
  beforeEach(() => {
    apiserver.putDeployment(FIXTURE);
    apiserver.resetRequests();
  });

  const kubeClient = (options: Partial<KubeClientOptions>) => {
    const made = createKubeClient({ endpoint: apiserver.url, caPem: apiserver.caPem, ...options });
    clients.push(made);
    return made;
  };

  test('Given a Deployment with three revisions, when its ReplicaSets are listed by its selector, then each of them, as the server holds them, from one GET with the selector encoded', async () => {
    apiserver.patchDeployment(NS, 'hasher', imagePatch('2'));
    apiserver.patchDeployment(NS, 'hasher', imagePatch('3'));
    const kube = kubeClient({ token: () => Promise.resolve('bob-token') });
    const listed = await kube.listReplicaSets(NS, SELECTOR);
    expect(listed).toHaveLength(3);
    expect(listed).toEqual(
      apiserver.replicaSetsOf(NS, 'hasher').map(({ apiVersion: _a, kind: _k, ...rest }) => rest),
    );
    expect(apiserver.requests).toHaveLength(1);
    expect(apiserver.requests[0]).toMatchObject({
      method: 'GET',
      path: `/apis/apps/v1/namespaces/${NS}/replicasets`,
      query: { labelSelector: SELECTOR },
      user: 'bob',
      status: 200,
    });
    expect(await kube.listReplicaSets(NS, 'app.kubernetes.io/name=rng')).toEqual([]);
  });

  test("Given a rollout on the simulated cluster, when the new ReplicaSet's pods are listed by selector and pod-template-hash, then those pods, from one GET with the selector encoded", async () => {
    apiserver.patchDeployment(NS, 'hasher', imagePatch('2'));
    apiserver.tick(2);
    const [current] = apiserver.replicaSetsOf(NS, 'hasher').slice(-1);
    const hash = current!.metadata.labels!['pod-template-hash']!;
    apiserver.resetRequests();
    const kube = kubeClient({ token: () => Promise.resolve('bob-token') });
    const selector = `${SELECTOR},pod-template-hash=${hash}`;
    const pods = await kube.listPods(NS, selector);
    expect(pods.map((p) => p.metadata.name).sort()).toEqual(
      apiserver
        .podsOf(NS, 'hasher')
        .map((p) => p.metadata.name)
        .sort(),
    );
    expect(pods.length).toBeGreaterThan(0);
    expect(pods.every((p) => p.metadata.labels?.['pod-template-hash'] === hash)).toBe(true);
    expect(apiserver.requests).toHaveLength(1);
    expect(apiserver.requests[0]).toMatchObject({
      method: 'GET',
      path: `/api/v1/namespaces/${NS}/pods`,
      query: { labelSelector: selector },
      user: 'bob',
      status: 200,
    });
  });

  test("Given a client certificate of the cluster's client CA and no token, when a Deployment is read and patched, then both as the certificate's CN, with ship's field manager", async () => {
    const kube = kubeClient({ clientCertificate: alice, fieldManager: 'dockercoins-ship' });
    expect((await kube.getDeployment(NS, 'hasher'))?.metadata.name).toBe('hasher');
    await kube.patchDeployment(NS, 'hasher', imagePatch('4'));
    expect(apiserver.requests.map((r) => [r.method, r.user, r.query.fieldManager])).toEqual([
      ['GET', 'alice', undefined],
      ['PATCH', 'alice', 'dockercoins-ship'],
    ]);
  });

  test("Given a caller's Agent without the certificate, then the client certificate is still presented (it is set on each request too)", async () => {
    const agent = new Agent({ keepAlive: true, ca: apiserver.caPem });
    try {
      const kube = kubeClient({ clientCertificate: alice, agent });
      await kube.getDeployment(NS, 'hasher');
      expect(apiserver.requests[0]?.user).toBe('alice');
    } finally {
      agent.destroy();
    }
  });

  test('Given a client certificate of another CA, when a Deployment is read, then 401 at once (no token to renew), PermanentError forbidden', async () => {
    const kube = kubeClient({ clientCertificate: stranger });
    const error = await failure(kube.getDeployment(NS, 'hasher'));
    expect(error).toBeInstanceOf(PermanentError);
    expect((error as PermanentError).reason).toBe('forbidden');
    expect(error.message).toMatch(/401 Unauthorized \(Unauthorized\)/);
    expect(apiserver.requests).toHaveLength(1);
    expect(apiserver.requests[0]?.authFailure).toMatch(/client certificate refused/);
  });
});
