import { IncomingHttpHeaders } from 'node:http';
import { Agent, request } from 'node:https';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { REPO_ROOT } from './app';
import { clientCertificate, selfSignedCertificate } from './certificate';
import { AwsCredentials, awsEksGetToken } from './eks-token';
import {
  KubeApiError,
  KubeApiServer,
  KubeDeployment,
  KubeStatus,
  MERGE_PATCH,
  REVISION_ANNOTATION,
  STRATEGIC_MERGE_PATCH,
  startKubeApiServer,
} from './kube-apiserver';

// The server through plain node:https, with a token from the real `aws eks get-token`, the CA
// it serves, and keep-alive sockets, as the deployer's client will use it.

const CLUSTER = 'dockercoins-test';
const REGION = 'eu-west-1';
const NS = 'dockercoins';
const CREDENTIALS: AwsCredentials = {
  accessKeyId: 'ASIAKUBETEST000001',
  secretAccessKey: 'kube/test+secret/0001',
  sessionToken: 'FwoGZXIvYXdzEKube//Session+Token==',
};
const FIXTURE = parse(
  readFileSync(path.join(REPO_ROOT, 'test', 'fixtures', 'kube', 'hasher-deployment.yaml'), 'utf8'),
) as KubeDeployment;
const DEPLOYMENT_PATH = `/apis/apps/v1/namespaces/${NS}/deployments/hasher`;
const IMAGE = (n: number): string =>
  `123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher:${String(n).repeat(12)}@sha256:${String(n).repeat(64)}`;

interface Reply<T> {
  status: number;
  headers: IncomingHttpHeaders;
  body: T;
  reusedSocket: boolean;
}

interface CallOptions {
  body?: unknown;
  contentType?: string;
  /** null sends no Authorization header. @default the CLI's token */
  token?: string | null;
  /** @default the keep-alive agent that trusts the server's CA */
  agent?: Agent;
  /** Gives up (destroys the request) after this long. */
  timeoutMs?: number;
  /** @default the server all tests share */
  on?: KubeApiServer;
}

let server: KubeApiServer;
let token: string;
let agent: Agent;

beforeAll(async () => {
  server = await startKubeApiServer({
    clusterName: CLUSTER,
    credentials: CREDENTIALS,
    region: REGION,
  });
  token = awsEksGetToken({ clusterName: CLUSTER, region: REGION, credentials: CREDENTIALS }).token;
  agent = new Agent({ keepAlive: true, ca: server.caPem });
});
afterAll(async () => {
  agent.destroy();
  await server.stop();
});
beforeEach(() => {
  server.putDeployment(FIXTURE);
  server.authorize = undefined;
  server.beforePatch = undefined;
  server.resetRequests();
});

function call<T = KubeDeployment>(
  method: string,
  urlPath: string,
  options: CallOptions = {},
): Promise<Reply<T>> {
  return new Promise((resolve, reject) => {
    const sent = options.token === undefined ? token : options.token;
    const payload =
      options.body === undefined
        ? undefined
        : typeof options.body === 'string'
          ? options.body
          : JSON.stringify(options.body);
    const req = request(
      `${(options.on ?? server).url}${urlPath}`,
      {
        method,
        agent: options.agent ?? agent,
        headers: {
          accept: 'application/json',
          ...(sent === null ? {} : { authorization: `Bearer ${sent}` }),
          ...(payload === undefined
            ? {}
            : { 'content-type': options.contentType ?? STRATEGIC_MERGE_PATCH }),
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: JSON.parse(text) as T,
            reusedSocket: req.reusedSocket,
          });
        });
      },
    );
    req.on('error', reject);
    if (options.timeoutMs !== undefined) {
      req.setTimeout(options.timeoutMs, () =>
        req.destroy(new Error(`timed out after ${options.timeoutMs} ms`)),
      );
    }
    req.end(payload);
  });
}

const imagePatch = (image: string, extra: object = {}) => ({
  ...extra,
  spec: { template: { spec: { containers: [{ name: 'hasher', image }] } } },
});
const imageOf = (d: KubeDeployment | undefined): string | undefined =>
  d?.spec.template.spec.containers.find((c) => c.name === 'hasher')?.image;

describe('authentication: EKS bearer tokens', () => {
  test('Given no Authorization header, when a Deployment is read, then 401 with an Unauthorized Status', async () => {
    const reply = await call<KubeStatus>('GET', DEPLOYMENT_PATH, { token: null });
    expect(reply.status).toBe(401);
    expect(reply.body).toEqual({
      kind: 'Status',
      apiVersion: 'v1',
      metadata: {},
      status: 'Failure',
      message: 'Unauthorized',
      reason: 'Unauthorized',
      code: 401,
    });
  });

  test.each([
    [
      'a token for another cluster',
      () =>
        awsEksGetToken({ clusterName: 'other', region: REGION, credentials: CREDENTIALS }).token,
      /signature-mismatch/,
    ],
    [
      'a token for another region',
      () =>
        awsEksGetToken({ clusterName: CLUSTER, region: 'us-west-2', credentials: CREDENTIALS })
          .token,
      /wrong-host/,
    ],
    [
      'a token with its signature changed',
      () => token.slice(0, -2) + (token.endsWith('AA') ? 'BA' : 'AA'),
      /signature-mismatch|not-base64url/,
    ],
    ['a token that is not one', () => 'k8s-aws-v1.bm90IGEgdXJs', /not-a-url/],
  ])(
    'Given %s, when a Deployment is read, then 401, and the request log says why',
    async (_, make, why) => {
      const reply = await call<KubeStatus>('GET', DEPLOYMENT_PATH, { token: make() });
      expect(reply.status).toBe(401);
      expect(reply.body.reason).toBe('Unauthorized');
      expect(server.requests[0]!.authFailure).toMatch(why);
    },
  );

  test('Given the CLI token, when a Deployment is read, then the request is attributed to its access key', async () => {
    expect((await call('GET', DEPLOYMENT_PATH)).status).toBe(200);
    expect(server.requests[0]!.user).toBe(CREDENTIALS.accessKeyId);
  });
});

describe('authentication: static tokens and client certificates (kubeconfig users)', () => {
  let dir: string;
  let kubeconfigServer: KubeApiServer;
  const agents: Agent[] = [];
  /** A client of kubeconfigServer, presenting `files`' client certificate when given. */
  const agentWith = (files?: { keyPath: string; certPath: string }): Agent => {
    const made = new Agent({
      keepAlive: false,
      ca: kubeconfigServer.caPem,
      ...(files === undefined
        ? {}
        : { cert: readFileSync(files.certPath), key: readFileSync(files.keyPath) }),
    });
    agents.push(made);
    return made;
  };
  let bob: { keyPath: string; certPath: string };
  let mallory: { keyPath: string; certPath: string };

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'ship-kube-auth-'));
    const clientCa = selfSignedCertificate(dir, { commonName: 'kube-client-ca' });
    const otherCa = selfSignedCertificate(dir, {
      commonName: 'other-ca',
      keyFile: 'other-key.pem',
      certFile: 'other-cert.pem',
    });
    bob = clientCertificate(dir, { ca: clientCa, commonName: 'bob' });
    mallory = clientCertificate(dir, { ca: otherCa, commonName: 'mallory' });
    kubeconfigServer = await startKubeApiServer({
      clusterName: CLUSTER,
      credentials: CREDENTIALS,
      staticTokens: { 'alice-static-token': 'alice' },
      clientCa: { certPem: readFileSync(clientCa.certPath, 'utf8') },
    });
    kubeconfigServer.putDeployment(FIXTURE);
  });
  afterAll(async () => {
    for (const made of agents) made.destroy();
    await kubeconfigServer.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  beforeEach(() => kubeconfigServer.resetRequests());

  test.each<[string, () => CallOptions, string]>([
    ['a static token', () => ({ token: 'alice-static-token', agent: agentWith() }), 'alice'],
    ['an EKS token, on the same server', () => ({ agent: agentWith() }), CREDENTIALS.accessKeyId],
    [
      "a client certificate of the client CA, no token: the user is the certificate's CN",
      () => ({ token: null, agent: agentWith(bob) }),
      'bob',
    ],
  ])('Given %s, when a Deployment is read, then 200 as that user', async (_, options, user) => {
    const reply = await call('GET', DEPLOYMENT_PATH, { ...options(), on: kubeconfigServer });
    expect(reply.status).toBe(200);
    expect(kubeconfigServer.requests[0]!.user).toBe(user);
  });

  test.each<[string, () => CallOptions, RegExp]>([
    [
      'a token that is neither static nor EKS',
      () => ({ token: 'guessed-token', agent: agentWith() }),
      /missing-prefix/,
    ],
    [
      'a client certificate of another CA, no token',
      () => ({ token: null, agent: agentWith(mallory) }),
      /no bearer token; client certificate refused: .+/,
    ],
    ['neither', () => ({ token: null, agent: agentWith() }), /^no bearer token$/],
  ])(
    'Given %s, when a Deployment is read, then 401 and the log says why',
    async (_, options, why) => {
      const reply = await call<KubeStatus>('GET', DEPLOYMENT_PATH, {
        ...options(),
        on: kubeconfigServer,
      });
      expect(reply.status).toBe(401);
      expect(kubeconfigServer.requests[0]!.user).toBeUndefined();
      expect(kubeconfigServer.requests[0]!.authFailure).toMatch(why);
    },
  );

  test('Given a server with static tokens only, then an EKS token is refused as an unknown static token', async () => {
    const only = await startKubeApiServer({
      clusterName: CLUSTER,
      staticTokens: { 'alice-static-token': 'alice' },
    });
    try {
      const trusting = new Agent({ keepAlive: false, ca: only.caPem });
      agents.push(trusting);
      const reply = await call<KubeStatus>('GET', DEPLOYMENT_PATH, { agent: trusting, on: only });
      expect(reply.status).toBe(401);
      expect(only.requests[0]!.authFailure).toBe('unknown static token');
    } finally {
      await only.stop();
    }
  });

  test('Given no way to authenticate at all, then the server does not start, saying what to give', async () => {
    await expect(startKubeApiServer({ clusterName: CLUSTER })).rejects.toThrow(
      /nobody could authenticate; give credentials \(EKS tokens\), staticTokens or clientCa/,
    );
  });
});

describe('TLS: the server certificate is its own CA', () => {
  test('Given a client without the CA, when it connects, then TLS verification fails (never turned off)', async () => {
    const untrusting = new Agent({ keepAlive: false });
    await expect(call('GET', DEPLOYMENT_PATH, { agent: untrusting })).rejects.toMatchObject({
      code: expect.stringMatching(/SELF_SIGNED|UNABLE_TO_VERIFY/) as unknown,
    });
  });

  test('Given the CA as DescribeCluster gives it (base64 PEM), when a client trusts it, then the request succeeds', async () => {
    const trusting = new Agent({ ca: Buffer.from(server.caData, 'base64').toString('utf8') });
    expect((await call('GET', DEPLOYMENT_PATH, { agent: trusting })).status).toBe(200);
    trusting.destroy();
  });

  test('Given a keep-alive agent, when three requests are made in turn, then they share one socket', async () => {
    const reused = [];
    for (let i = 0; i < 3; i++) reused.push((await call('GET', DEPLOYMENT_PATH)).reusedSocket);
    expect(reused.slice(1)).toEqual([true, true]);
  });
});

describe('GET a Deployment', () => {
  test('Given a seeded Deployment, when read, then 200 with it, server fields set', async () => {
    const reply = await call('GET', DEPLOYMENT_PATH);
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(server.deployment(NS, 'hasher'));
    expect(reply.body.metadata).toMatchObject({
      namespace: NS,
      generation: 1,
      resourceVersion: expect.stringMatching(/^\d+$/) as unknown,
      uid: expect.stringMatching(/^[0-9a-f-]{36}$/) as unknown,
      creationTimestamp: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/) as unknown,
    });
    expect(reply.body.metadata.uid).not.toBe(FIXTURE.metadata.uid);
  });

  test('Given no such Deployment, when read, then 404 NotFound worded as the real server', async () => {
    const reply = await call<KubeStatus>('GET', `/apis/apps/v1/namespaces/${NS}/deployments/nope`);
    expect(reply.status).toBe(404);
    expect(reply.body).toMatchObject({
      reason: 'NotFound',
      message: 'deployments.apps "nope" not found',
      details: { name: 'nope', group: 'apps', kind: 'deployments' },
      code: 404,
    });
  });

  test('Given a path the server does not serve, or a method it does not allow, then 404 and 405', async () => {
    expect((await call<KubeStatus>('GET', '/api/v1/namespaces/x/secrets')).status).toBe(404);
    expect((await call<KubeStatus>('DELETE', DEPLOYMENT_PATH)).body.reason).toBe(
      'MethodNotAllowed',
    );
  });
});

describe('PATCH a Deployment', () => {
  test('Given an image change, when patched, then 200 with the image, generation +1 and a new resourceVersion; the controller then records revision 4', async () => {
    const before = server.deployment(NS, 'hasher')!;
    const reply = await call('PATCH', `${DEPLOYMENT_PATH}?fieldManager=ship-deployer`, {
      body: imagePatch(IMAGE(1)),
    });
    expect(reply.status).toBe(200);
    expect(imageOf(reply.body)).toBe(IMAGE(1));
    expect(reply.body.metadata.generation).toBe(2);
    expect(Number(reply.body.metadata.resourceVersion)).toBeGreaterThan(
      Number(before.metadata.resourceVersion),
    );
    // The sidecar is untouched: a strategic merge, not a replacement.
    expect(reply.body.spec.template.spec.containers.map((c) => c.name)).toEqual([
      'hasher',
      'log-shipper',
    ]);
    const after = server.deployment(NS, 'hasher')!;
    expect(after.metadata.annotations?.[REVISION_ANNOTATION]).toBe('4');
    expect(Number(after.metadata.resourceVersion)).toBeGreaterThan(
      Number(reply.body.metadata.resourceVersion),
    );
    expect(after.metadata.generation).toBe(2);
    expect(server.requests[0]).toMatchObject({
      method: 'PATCH',
      path: DEPLOYMENT_PATH,
      query: { fieldManager: 'ship-deployer' },
      contentType: STRATEGIC_MERGE_PATCH,
      body: imagePatch(IMAGE(1)),
      status: 200,
    });
  });

  test('Given an annotation-only patch, when patched, then resourceVersion and generation change (Deployments copy annotations to ReplicaSets); a label-only patch leaves the generation', async () => {
    const before = server.deployment(NS, 'hasher')!;
    const annotated = await call('PATCH', DEPLOYMENT_PATH, {
      body: { metadata: { annotations: { 'example.com/note': 'x' } } },
    });
    expect(annotated.body.metadata.generation).toBe(2);
    expect(annotated.body.metadata.resourceVersion).not.toBe(before.metadata.resourceVersion);
    const labelled = await call('PATCH', DEPLOYMENT_PATH, {
      body: { metadata: { labels: { tier: 'backend' } } },
    });
    expect(labelled.body.metadata.generation).toBe(2);
    expect(labelled.body.metadata.resourceVersion).not.toBe(
      annotated.body.metadata.resourceVersion,
    );
  });

  test('Given a patch that changes nothing, when patched, then 200 and the resourceVersion stays (no write)', async () => {
    const before = server.deployment(NS, 'hasher')!;
    const reply = await call('PATCH', DEPLOYMENT_PATH, { body: imagePatch(imageOf(before)!) });
    expect(reply.status).toBe(200);
    expect(reply.body).toEqual(before);
  });

  test('Given a stale resourceVersion in the patch, when patched, then 409 Conflict worded as the real server, and nothing changes', async () => {
    const before = server.deployment(NS, 'hasher')!;
    const stale = String(Number(before.metadata.resourceVersion) - 1);
    const reply = await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, {
      body: imagePatch(IMAGE(2), { metadata: { resourceVersion: stale } }),
    });
    expect(reply.status).toBe(409);
    expect(reply.body).toMatchObject({
      reason: 'Conflict',
      message:
        'Operation cannot be fulfilled on deployments.apps "hasher": the object has been modified; please apply your changes to the latest version and try again',
      details: { name: 'hasher', group: 'apps', kind: 'deployments' },
    });
    expect(server.deployment(NS, 'hasher')).toEqual(before);
    const current = await call('PATCH', DEPLOYMENT_PATH, {
      body: imagePatch(IMAGE(2), {
        metadata: { resourceVersion: before.metadata.resourceVersion },
      }),
    });
    expect(imageOf(current.body)).toBe(IMAGE(2));
  });

  test('Given another writer between the GET and the PATCH (beforePatch), when the client patches with the resourceVersion it read, then 409', async () => {
    const read = await call('GET', DEPLOYMENT_PATH);
    server.beforePatch = ({ namespace, name }) => {
      server.beforePatch = undefined;
      server.patchDeployment(namespace, name, imagePatch(IMAGE(7)));
    };
    const reply = await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, {
      body: imagePatch(IMAGE(3), {
        metadata: { resourceVersion: read.body.metadata.resourceVersion },
      }),
    });
    expect(reply.status).toBe(409);
    expect(imageOf(server.deployment(NS, 'hasher'))).toBe(IMAGE(7));
  });

  test.each([
    ['application/json-patch+json', /does not implement/],
    ['application/json', /unknown format/],
  ])('Given Content-Type %s, when patched, then 415', async (contentType, message) => {
    const reply = await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, { body: [], contentType });
    expect(reply.status).toBe(415);
    expect(reply.body.reason).toBe('UnsupportedMediaType');
    expect(reply.body.message).toMatch(message);
  });

  test('Given a JSON merge patch, when patched, then RFC 7386 applies (the container list is replaced)', async () => {
    const reply = await call('PATCH', DEPLOYMENT_PATH, {
      body: imagePatch(IMAGE(4)),
      contentType: MERGE_PATCH,
    });
    expect(reply.status).toBe(200);
    expect(reply.body.spec.template.spec.containers).toEqual([{ name: 'hasher', image: IMAGE(4) }]);
  });

  test.each<[string, unknown, string, RegExp]>([
    [
      'a container without an image (a typo in its name)',
      { spec: { template: { spec: { containers: [{ name: 'hashr' }] } } } },
      STRATEGIC_MERGE_PATCH,
      /spec\.template\.spec\.containers\[0\]\.image: Required value/,
    ],
    [
      'a container without a name (a merge patch can make one)',
      { spec: { template: { spec: { containers: [{ image: 'x' }] } } } },
      MERGE_PATCH,
      /containers\[0\]\.name: Required value/,
    ],
    [
      'negative replicas',
      { spec: { replicas: -1 } },
      STRATEGIC_MERGE_PATCH,
      /spec\.replicas: Invalid value: -1/,
    ],
    [
      'a changed selector',
      { spec: { selector: { matchLabels: { extra: 'x' } } } },
      STRATEGIC_MERGE_PATCH,
      /spec\.selector: Invalid value.*field is immutable/,
    ],
  ])(
    'Given %s, when patched, then 422 Invalid and nothing changes',
    async (_, body, contentType, message) => {
      const before = server.deployment(NS, 'hasher')!;
      const reply = await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, { body, contentType });
      expect(reply.status).toBe(422);
      expect(reply.body).toMatchObject({
        reason: 'Invalid',
        details: { name: 'hasher', kind: 'Deployment' },
      });
      expect(reply.body.message).toMatch(/^Deployment\.apps "hasher" is invalid: /);
      expect(reply.body.message).toMatch(message);
      expect(server.deployment(NS, 'hasher')).toEqual(before);
    },
  );

  test('Given a list element without its merge key, when patched, then 500 with the merge error (the real handler does not convert it)', async () => {
    const before = server.deployment(NS, 'hasher')!;
    const reply = await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, {
      body: { spec: { template: { spec: { containers: [{ image: 'x' }] } } } },
    });
    expect(reply.status).toBe(500);
    expect(reply.body.message).toMatch(/does not contain declared merge key: name/);
    expect(server.deployment(NS, 'hasher')).toEqual(before);
  });

  test('Given a body that is not JSON, when patched, then 400', async () => {
    expect((await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, { body: '{nope' })).status).toBe(400);
  });

  test('Given a patch of a missing Deployment, when patched, then 404', async () => {
    const reply = await call<KubeStatus>(
      'PATCH',
      `/apis/apps/v1/namespaces/${NS}/deployments/ghost`,
      { body: imagePatch(IMAGE(1)) },
    );
    expect(reply.status).toBe(404);
  });

  test('Given dryRun=All, when patched, then 200 with the result and nothing stored; another dryRun value is 422', async () => {
    const before = server.deployment(NS, 'hasher')!;
    const dry = await call('PATCH', `${DEPLOYMENT_PATH}?dryRun=All`, {
      body: imagePatch(IMAGE(5)),
    });
    expect(imageOf(dry.body)).toBe(IMAGE(5));
    expect(server.deployment(NS, 'hasher')).toEqual(before);
    expect(
      (await call('PATCH', `${DEPLOYMENT_PATH}?dryRun=Some`, { body: imagePatch(IMAGE(5)) }))
        .status,
    ).toBe(422);
  });

  test("Given status in a patch, when patched, then it is ignored (status is the controller's)", async () => {
    const before = server.deployment(NS, 'hasher')!;
    const reply = await call('PATCH', DEPLOYMENT_PATH, { body: { status: { replicas: 99 } } });
    expect(reply.body.status).toEqual(before.status);
  });
});

describe('authorization', () => {
  test('Given an authorizer that refuses patch, when the client reads and patches, then GET 200 and PATCH 403 Forbidden worded as RBAC', async () => {
    server.authorize = (r) => r.verb !== 'patch';
    expect((await call('GET', DEPLOYMENT_PATH)).status).toBe(200);
    const reply = await call<KubeStatus>('PATCH', DEPLOYMENT_PATH, { body: imagePatch(IMAGE(1)) });
    expect(reply.status).toBe(403);
    expect(reply.body.message).toBe(
      `deployments.apps "hasher" is forbidden: User "${CREDENTIALS.accessKeyId}" cannot patch resource "deployments" in API group "apps" in the namespace "${NS}"`,
    );
  });
});

describe('faults on demand', () => {
  test('Given failNext(2, 503), when three reads are made, then 503, 503, 200', async () => {
    server.failNext(2, 503);
    const codes = [];
    for (let i = 0; i < 3; i++) codes.push((await call<unknown>('GET', DEPLOYMENT_PATH)).status);
    expect(codes).toEqual([503, 503, 200]);
  });

  test('Given failNext(1, 429, retryAfterSeconds 2), when read, then 429 TooManyRequests with Retry-After', async () => {
    server.failNext(1, 429, { retryAfterSeconds: 2 });
    const reply = await call<KubeStatus>('GET', DEPLOYMENT_PATH);
    expect(reply.status).toBe(429);
    expect(reply.headers['retry-after']).toBe('2');
    expect(reply.body).toMatchObject({
      reason: 'TooManyRequests',
      details: { retryAfterSeconds: 2 },
    });
  });

  test('Given failNext(1, 500) for PATCH only, when the client reads then patches twice, then 200, 500, 200', async () => {
    server.failNext(1, 500, { method: 'PATCH' });
    const codes = [
      (await call('GET', DEPLOYMENT_PATH)).status,
      (await call('PATCH', DEPLOYMENT_PATH, { body: imagePatch(IMAGE(1)) })).status,
      (await call('PATCH', DEPLOYMENT_PATH, { body: imagePatch(IMAGE(1)) })).status,
    ];
    expect(codes).toEqual([200, 500, 200]);
  });

  test('Given conflictNext(1), when patched with the current resourceVersion, then 409 once, then 200', async () => {
    server.conflictNext(1);
    const rv = server.deployment(NS, 'hasher')!.metadata.resourceVersion;
    const body = imagePatch(IMAGE(1), { metadata: { resourceVersion: rv } });
    expect((await call('PATCH', DEPLOYMENT_PATH, { body })).status).toBe(409);
    expect((await call('PATCH', DEPLOYMENT_PATH, { body })).status).toBe(200);
  });

  test('Given hangNext(1), when the client gives up after 200 ms, then it times out; the next request is served', async () => {
    server.hangNext(1);
    await expect(call('GET', DEPLOYMENT_PATH, { timeoutMs: 200 })).rejects.toThrow(/timed out/);
    expect((await call('GET', DEPLOYMENT_PATH)).status).toBe(200);
  });

  test('Given hangNext(1, 150), when read, then the answer comes after 150 ms', async () => {
    server.hangNext(1, 150);
    const started = Date.now();
    expect((await call('GET', DEPLOYMENT_PATH)).status).toBe(200);
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
  });

  test('Given down(), when the client connects (fresh or kept-alive socket), then the connection fails; after up(), it succeeds', async () => {
    expect((await call('GET', DEPLOYMENT_PATH)).status).toBe(200);
    await server.down();
    await expect(call('GET', DEPLOYMENT_PATH)).rejects.toMatchObject({
      code: expect.stringMatching(/ECONNREFUSED|ECONNRESET/) as unknown,
    });
    await expect(
      call('GET', DEPLOYMENT_PATH, { agent: new Agent({ ca: server.caPem }) }),
    ).rejects.toMatchObject({
      code: 'ECONNREFUSED',
    });
    await server.up();
    expect((await call('GET', DEPLOYMENT_PATH)).status).toBe(200);
  });
});

describe('rollout emulation: ReplicaSets and revisions', () => {
  const selector = encodeURIComponent(
    'app.kubernetes.io/name=hasher,app.kubernetes.io/part-of=dockercoins',
  );
  const listPath = `/apis/apps/v1/namespaces/${NS}/replicasets?labelSelector=${selector}`;

  test("Given two image changes, when ReplicaSets are listed by the Deployment's selector, then three revisions, each with its change-cause", async () => {
    for (const n of [1, 2]) {
      const reply = await call('PATCH', DEPLOYMENT_PATH, {
        body: imagePatch(IMAGE(n), {
          metadata: { annotations: { 'kubernetes.io/change-cause': `build ${n}` } },
        }),
      });
      expect(reply.status).toBe(200);
    }
    const list = await call<{ kind: string; items: KubeDeployment[] }>('GET', listPath);
    expect(list.status).toBe(200);
    expect(list.body.kind).toBe('ReplicaSetList');
    const byRevision = [...list.body.items].sort(
      (a, b) =>
        Number(a.metadata.annotations![REVISION_ANNOTATION]) -
        Number(b.metadata.annotations![REVISION_ANNOTATION]),
    );
    expect(byRevision.map((rs) => rs.metadata.annotations![REVISION_ANNOTATION])).toEqual([
      '3',
      '4',
      '5',
    ]);
    expect(byRevision.map((rs) => rs.metadata.annotations!['kubernetes.io/change-cause'])).toEqual([
      FIXTURE.metadata.annotations!['kubernetes.io/change-cause'],
      'build 1',
      'build 2',
    ]);
    expect(byRevision.map((rs) => imageOf(rs))).toEqual([imageOf(FIXTURE), IMAGE(1), IMAGE(2)]);
    for (const rs of byRevision) {
      expect(rs.metadata.name).toBe(`hasher-${rs.metadata.labels!['pod-template-hash']}`);
      expect(rs.metadata.ownerReferences).toEqual([
        expect.objectContaining({
          kind: 'Deployment',
          name: 'hasher',
          uid: server.deployment(NS, 'hasher')!.metadata.uid,
          controller: true,
        }),
      ]);
    }
    expect(server.deployment(NS, 'hasher')!.metadata.annotations![REVISION_ANNOTATION]).toBe('5');
    // A selector that matches nothing lists nothing.
    const none = await call<{ items: unknown[] }>(
      'GET',
      `/apis/apps/v1/namespaces/${NS}/replicasets?labelSelector=app.kubernetes.io%2Fname%3Drng`,
    );
    expect(none.body.items).toEqual([]);
  });

  test('Given a rollback to the first image, when patched, then its old ReplicaSet comes back at a new revision, no new one is made', () => {
    server.patchDeployment(NS, 'hasher', imagePatch(IMAGE(1)));
    server.patchDeployment(NS, 'hasher', imagePatch(imageOf(FIXTURE)!));
    const sets = server.replicaSetsOf(NS, 'hasher');
    expect(sets.map((rs) => [imageOf(rs), rs.metadata.annotations![REVISION_ANNOTATION]])).toEqual([
      [IMAGE(1), '4'],
      [imageOf(FIXTURE), '5'],
    ]);
    expect(sets[1]!.metadata.annotations!['deployment.kubernetes.io/revision-history']).toBe('3');
  });

  test('Given an image change, when completeRollout is called, then status reads as kubectl rollout status\' "successfully rolled out"', () => {
    const patched = server.patchDeployment(NS, 'hasher', imagePatch(IMAGE(1)));
    expect(server.deployment(NS, 'hasher')!.status!.observedGeneration).toBeLessThan(
      patched.metadata.generation!,
    );
    const done = server.completeRollout(NS, 'hasher');
    expect(done.status).toMatchObject({
      observedGeneration: patched.metadata.generation,
      replicas: 2,
      updatedReplicas: 2,
      readyReplicas: 2,
      availableReplicas: 2,
    });
    expect(done.status!.conditions!.find((c) => c.type === 'Progressing')!.reason).toBe(
      'NewReplicaSetAvailable',
    );
    expect(server.replicaSetsOf(NS, 'hasher').map((rs) => rs.spec.replicas)).toEqual([0, 2]);
    expect(done.metadata.generation).toBe(patched.metadata.generation);
  });

  test('Given a direct patch by a test that the server refuses, then patchDeployment throws KubeApiError with the Status', () => {
    expect(() => server.patchDeployment(NS, 'hasher', { spec: { replicas: -1 } })).toThrow(
      KubeApiError,
    );
    expect(() => server.patchDeployment(NS, 'ghost', {})).toThrow(/404 NotFound/);
  });
});
