import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, Server } from 'node:https';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { EnvironmentSettings } from '../../../lib/deployer-contract';
import {
  createClusterConnector,
  newEksClient,
  type CachingClusterConnector,
  type ClusterConnectorOptions,
} from '../../../core/aws/eks';
import { createTokenCache, eksToken } from '../../../core/aws/eks-token';
import { PermanentError, TransientError } from '../../../core/types';
import { selfSignedCertificate } from '../../support/certificate';
import { startEksStub, type EksStub } from '../../support/eks-stub';
import { verifyEksToken } from '../../support/eks-token';
import { useEnv } from '../../support/moto';

// The connector against the EKS stub (DescribeCluster over the SDK, found through
// AWS_ENDPOINT_URL_EKS) and an HTTPS API server that accepts only valid EKS tokens for its cluster.

const CREDENTIALS = {
  accessKeyId: 'ASIADEPLOYERTEST0001',
  secretAccessKey: 'deployer/secret/key/for/tests',
  sessionToken: 'IQoJb3JpZ2luX2VjEKn//////////wEaCWV1LXdlc3QtMSJHMEUCIQD=',
};

interface ApiServer {
  readonly endpoint: string;
  readonly caPem: string;
  /** Bearer tokens seen, and whether each verified. */
  readonly tokens: { token: string; valid: boolean; host?: string }[];
  /** The method and URL of each request. */
  readonly requests: string[];
  connections: number;
  /** Answers 401 to the next n requests whatever the token. */
  refuseNext: number;
  close(): Promise<void>;
}

let dir: string;
let stub: EksStub;
let restoreEnv: () => void;
const servers: ApiServer[] = [];
const connectors: CachingClusterConnector[] = [];

async function startApiServer(clusterName: string, certName: string): Promise<ApiServer> {
  const cert = selfSignedCertificate(dir, {
    commonName: certName,
    ipAddress: '127.0.0.1',
    keyFile: `${certName}-key.pem`,
    certFile: `${certName}-cert.pem`,
  });
  const sockets = new Set<Socket>();
  const api: ApiServer & { server?: Server } = {
    endpoint: '',
    caPem: readFileSync(cert.certPath, 'utf8'),
    tokens: [],
    requests: [],
    connections: 0,
    refuseNext: 0,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => server.close(resolve));
    },
  };
  const server = createServer(
    { key: readFileSync(cert.keyPath), cert: readFileSync(cert.certPath) },
    (req, res) => {
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      const verified = verifyEksToken(token, { clusterName, credentials: CREDENTIALS });
      api.tokens.push({
        token,
        valid: verified.ok,
        ...(verified.ok ? { host: verified.host } : {}),
      });
      api.requests.push(`${req.method} ${req.url}`);
      req.resume();
      if (!verified.ok || api.refuseNext > 0) {
        api.refuseNext = Math.max(0, api.refuseNext - 1);
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end(
          '{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}',
        );
        return;
      }
      const name = decodeURIComponent(req.url?.split('/').pop() ?? '');
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ metadata: { name, namespace: 'dockercoins', resourceVersion: '1' } }),
      );
    },
  );
  server.on('secureConnection', (socket: Socket) => {
    api.connections += 1;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  Object.assign(api, { endpoint: `https://127.0.0.1:${(server.address() as AddressInfo).port}` });
  servers.push(api);
  return api;
}

function environment(overrides: Partial<EnvironmentSettings> = {}): EnvironmentSettings {
  return {
    name: 'main',
    clusterName: 'dockercoins',
    region: undefined,
    namespace: 'dockercoins',
    branches: ['main'],
    releaseTags: false,
    ...overrides,
  };
}

function connector(
  options: { signs?: { count: number } } & Partial<ClusterConnectorOptions> = {},
): CachingClusterConnector {
  const { signs, ...rest } = options;
  const made = createClusterConnector({
    eksClient: newEksClient,
    defaultRegion: 'eu-west-1',
    timeoutMs: 1000,
    ...rest,
    ...(signs === undefined
      ? {}
      : {
          tokens: createTokenCache({
            sign: (o) => {
              signs.count += 1;
              return eksToken(o);
            },
          }),
        }),
  });
  connectors.push(made);
  return made;
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure, but the call succeeded');
}

let api: ApiServer;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'ship-eks-'));
  api = await startApiServer('dockercoins', 'apiserver');
  stub = await startEksStub({ clusters: {} });
  restoreEnv = useEnv({
    ...stub.env,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_SESSION_TOKEN: CREDENTIALS.sessionToken,
    AWS_REGION: 'eu-west-1',
    AWS_CONFIG_FILE: path.join(dir, 'no-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'no-credentials'),
  });
});

afterAll(async () => {
  restoreEnv();
  await stub.stop();
  for (const server of servers) await server.close();
  rmSync(dir, { recursive: true, force: true });
});

beforeEach(() => {
  stub.setCluster('dockercoins', { endpoint: api.endpoint, caPem: api.caPem });
  (stub.requests as unknown[]).length = 0;
  api.tokens.length = 0;
  api.requests.length = 0;
  api.connections = 0;
  api.refuseNext = 0;
});

afterEach(() => {
  for (const made of connectors.splice(0)) made.close();
});

describe('createClusterConnector', () => {
  test('Given a cluster, when connected twice and used, then one signed DescribeCluster, one TLS connection, and tokens EKS would accept', async () => {
    const clusters = connector();
    const kube = await clusters.connect(environment());
    expect(await kube.getDeployment('dockercoins', 'hasher')).toMatchObject({
      metadata: { name: 'hasher' },
    });
    const again = await clusters.connect(environment());
    expect(again).toBe(kube);
    await again.getDeployment('dockercoins', 'rng');
    expect(stub.requests).toEqual([
      {
        method: 'GET',
        path: '/clusters/dockercoins',
        clusterName: 'dockercoins',
        accessKeyId: CREDENTIALS.accessKeyId,
        region: 'eu-west-1',
        service: 'eks',
      },
    ]);
    expect(api.connections).toBe(1);
    expect(api.tokens.map((t) => [t.valid, t.host])).toEqual([
      [true, 'sts.eu-west-1.amazonaws.com'],
      [true, 'sts.eu-west-1.amazonaws.com'],
    ]);
    // The second request reused the cached token.
    expect(api.tokens[1]?.token).toBe(api.tokens[0]?.token);
  });

  test('Given an environment in another region, then DescribeCluster and the token are for that region', async () => {
    const kube = await connector().connect(environment({ region: 'us-west-2' }));
    await kube.getDeployment('dockercoins', 'hasher');
    expect(stub.requests.map((r) => r.region)).toEqual(['us-west-2']);
    expect(api.tokens.map((t) => t.host)).toEqual(['sts.us-west-2.amazonaws.com']);
  });

  test('Given two targets in one cluster connecting at once, then one DescribeCluster', async () => {
    const clusters = connector();
    const [a, b] = await Promise.all([
      clusters.connect(environment()),
      clusters.connect(environment({ name: 'other', namespace: 'other' })),
    ]);
    expect(a).toBe(b);
    expect(stub.requests).toHaveLength(1);
  });

  test('Given a 401 from the API server, then the token cache is invalidated and a new token signed', async () => {
    const signs = { count: 0 };
    const kube = await connector({ signs }).connect(environment());
    api.refuseNext = 1;
    await kube.getDeployment('dockercoins', 'hasher');
    expect(signs.count).toBe(2);
    expect(api.tokens).toHaveLength(2);
  });

  test("Given ship's fieldManager and accessHint, then its patches carry that field manager and a refusal gives that hint", async () => {
    const kube = await connector({
      fieldManager: 'dockercoins-ship',
      accessHint: { unauthorized: 'Map your IAM principal.', forbidden: 'Apply k8s/rbac/ship.' },
    }).connect(environment());
    await kube.patchDeployment('dockercoins', 'hasher', {});
    expect(api.requests).toEqual([
      'PATCH /apis/apps/v1/namespaces/dockercoins/deployments/hasher?fieldManager=dockercoins-ship',
    ]);
    api.refuseNext = 2;
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error.message).toMatch(
      /401 Unauthorized, also after renewing the token.*Map your IAM principal\.$/,
    );
  });

  test('Given a cluster that does not exist, then PermanentError naming cluster, region and environment; not cached', async () => {
    const clusters = connector();
    const error = await failure(clusters.connect(environment({ clusterName: 'nope' })));
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(
      /EKS cluster "nope" in eu-west-1 \(environment "main"\) does not exist.*clusterName or region/,
    );
    stub.setCluster('nope', { endpoint: api.endpoint, caPem: api.caPem });
    await clusters.connect(environment({ clusterName: 'nope' }));
    expect(stub.requests).toHaveLength(2);
  });

  test.each([
    ['UPDATING', 'ok'],
    ['CREATING', 'transient'],
    ['PENDING', 'transient'],
    ['DELETING', 'permanent'],
    ['FAILED', 'permanent'],
  ])('Given a cluster %s, then %s', async (status, expected) => {
    stub.setCluster('dockercoins', { endpoint: api.endpoint, caPem: api.caPem, status });
    const connecting = connector().connect(environment());
    if (expected === 'ok') {
      await expect(connecting).resolves.toBeDefined();
      return;
    }
    const error = await failure(connecting);
    expect(error).toBeInstanceOf(expected === 'transient' ? TransientError : PermanentError);
    expect(error.message).toContain(`is ${status}`);
  });

  test.each([
    [{ status: 500, errorType: 'ServerException' }, TransientError, /ServerException/],
    [
      { status: 503, errorType: 'ServiceUnavailableException' },
      TransientError,
      /ServiceUnavailable/,
    ],
    [
      {
        status: 403,
        errorType: 'AccessDeniedException',
        message: 'User is not authorized to perform: eks:DescribeCluster',
      },
      PermanentError,
      /not authorized.*needs eks:DescribeCluster on arn:aws:eks:eu-west-1:<account>:cluster\/dockercoins/,
    ],
  ])(
    'Given DescribeCluster failing with %j, then the matching error kind',
    async (fault, kind, message) => {
      stub.failNext(fault);
      const error = await failure(connector().connect(environment()));
      expect(error).toBeInstanceOf(kind);
      expect(error.message).toMatch(message);
      expect(stub.requests).toHaveLength(1);
    },
  );

  test('Given DescribeCluster with no endpoint or no CA, then PermanentError saying so', async () => {
    stub.setCluster('dockercoins', { endpoint: '', caPem: api.caPem });
    expect((await failure(connector().connect(environment()))).message).toMatch(/gave no endpoint/);
    stub.setCluster('dockercoins', { endpoint: api.endpoint, caPem: 'not a certificate' });
    expect((await failure(connector().connect(environment()))).message).toMatch(
      /certificateAuthority.data is not a base64 PEM certificate/,
    );
  });

  test('Given a CA that no longer matches (cluster recreated), when the API call fails, then the next connect describes the cluster again and works', async () => {
    const other = await startApiServer('dockercoins', 'other-apiserver');
    stub.setCluster('dockercoins', { endpoint: api.endpoint, caPem: other.caPem });
    const clusters = connector();
    const stale = await clusters.connect(environment());
    const error = await failure(stale.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/does not verify against the cluster CA/);
    stub.setCluster('dockercoins', { endpoint: api.endpoint, caPem: api.caPem });
    const fresh = await clusters.connect(environment());
    await fresh.getDeployment('dockercoins', 'hasher');
    expect(stub.requests).toHaveLength(2);
    expect(api.tokens).toHaveLength(1);
  });

  test('Given an unreachable endpoint that is private only, then the error says the deployer must run in the VPC', async () => {
    stub.setCluster('dockercoins', {
      endpoint: 'https://127.0.0.1:9',
      caPem: api.caPem,
      endpointPublicAccess: false,
    });
    const clusters = connector();
    const kube = await clusters.connect(environment());
    const error = await failure(kube.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(/private only: the deployer must run in the cluster's VPC/);
    // Unreachable: described again on the next connect; unchanged, so the same client is kept.
    expect(await clusters.connect(environment())).toBe(kube);
    expect(stub.requests).toHaveLength(2);
    expect(await clusters.connect(environment())).toBe(kube);
    expect(stub.requests).toHaveLength(2);
  });
});

describe('startEksStub', () => {
  test('Given an unsigned request, then 403 MissingAuthenticationTokenException, as EKS answers', async () => {
    const response = await fetch(`${stub.url}/clusters/dockercoins`);
    expect(response.status).toBe(403);
    expect(response.headers.get('x-amzn-errortype')).toMatch(
      /^MissingAuthenticationTokenException:/,
    );
    expect(stub.requests[0]).toMatchObject({ accessKeyId: undefined, service: undefined });
  });
});
