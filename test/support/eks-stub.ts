import { randomUUID } from 'node:crypto';
import { createServer, IncomingMessage, ServerResponse } from 'node:http';
import { AddressInfo } from 'node:net';

// The EKS DescribeCluster REST call, answered from a table, for a test whose cluster must be
// reachable (moto's EKS invents its endpoint and CA). Point the SDK at it with
// AWS_ENDPOINT_URL_EKS (`env`). Answers as EKS does: `{"cluster": {...}}`, and errors as a JSON
// body with the error type in the `x-amzn-errortype` header.

export interface EksStubCluster {
  /** `https://…` of the API server (the in-test one). */
  readonly endpoint: string;
  /** The CA bundle the API server's certificate chains to (PEM; sent base64, as EKS does). */
  readonly caPem: string;
  /** @default 'ACTIVE' */
  readonly status?: string;
  /** @default true */
  readonly endpointPublicAccess?: boolean;
}

export interface EksStubRequest {
  readonly method: string;
  readonly path: string;
  /** The cluster asked for (decoded), when the path is `/clusters/<name>`. */
  readonly clusterName: string | undefined;
  /** From the SigV4 Authorization header's credential scope; undefined when unsigned. */
  readonly accessKeyId: string | undefined;
  readonly region: string | undefined;
  readonly service: string | undefined;
}

/** An error the stub answers with next, instead of the cluster. */
export interface EksStubFault {
  readonly status: number;
  /** e.g. `ServerException`, `ServiceUnavailableException`, `AccessDeniedException`. */
  readonly errorType: string;
  readonly message?: string;
}

export interface EksStub {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /** `{ AWS_ENDPOINT_URL_EKS: url }` */
  readonly env: Readonly<Record<string, string>>;
  /** Every request, in order. */
  readonly requests: readonly EksStubRequest[];
  /** Adds, replaces or (undefined) removes a cluster. */
  setCluster(name: string, cluster: EksStubCluster | undefined): void;
  /** The next `count` requests get this error. */
  failNext(fault: EksStubFault, count?: number): void;
  stop(): Promise<void>;
}

const CREDENTIAL_SCOPE =
  /^AWS4-HMAC-SHA256 Credential=([^/]+)\/(\d{8})\/([^/]+)\/([^/]+)\/aws4_request, SignedHeaders=[^,]+, Signature=[0-9a-f]{64}$/;

export async function startEksStub(options: {
  clusters: Readonly<Record<string, EksStubCluster>>;
  account?: string;
  region?: string;
}): Promise<EksStub> {
  const account = options.account ?? '123456789012';
  const clusters = new Map(Object.entries(options.clusters));
  const requests: EksStubRequest[] = [];
  const faults: EksStubFault[] = [];

  const error = (
    res: ServerResponse,
    status: number,
    errorType: string,
    message: string,
    extra: Record<string, unknown> = {},
  ): void => {
    res.writeHead(status, {
      'content-type': 'application/json',
      'x-amzn-errortype': `${errorType}:http://internal.amazon.com/coral/com.amazonaws.eks.model/`,
      'x-amzn-requestid': randomUUID(),
    });
    res.end(JSON.stringify({ message, ...extra }));
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://stub');
    const match = /^\/clusters\/([^/]+)$/.exec(url.pathname);
    const clusterName = match?.[1] === undefined ? undefined : decodeURIComponent(match[1]);
    const scope = CREDENTIAL_SCOPE.exec(req.headers.authorization ?? '');
    const record: EksStubRequest = {
      method: req.method ?? '',
      path: url.pathname,
      clusterName,
      accessKeyId: scope?.[1],
      region: scope?.[3],
      service: scope?.[4],
    };
    requests.push(record);
    req.resume();
    req.on('end', () => {
      if (scope === null) {
        error(res, 403, 'MissingAuthenticationTokenException', 'Missing Authentication Token');
        return;
      }
      if (record.service !== 'eks') {
        error(
          res,
          403,
          'InvalidSignatureException',
          `Credential should be scoped to correct service: 'eks'. `,
        );
        return;
      }
      if (req.headers['x-amz-date'] === undefined) {
        error(
          res,
          403,
          'IncompleteSignatureException',
          'Authorization header requires X-Amz-Date.',
        );
        return;
      }
      const fault = faults.shift();
      if (fault !== undefined) {
        error(res, fault.status, fault.errorType, fault.message ?? fault.errorType);
        return;
      }
      if (req.method !== 'GET' || clusterName === undefined) {
        error(res, 404, 'UnknownOperationException', `The stub answers only GET /clusters/<name>`);
        return;
      }
      const cluster = clusters.get(clusterName);
      if (cluster === undefined) {
        error(res, 404, 'ResourceNotFoundException', `No cluster found for name: ${clusterName}.`, {
          clusterName,
        });
        return;
      }
      const region = record.region ?? options.region ?? 'eu-west-1';
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          cluster: {
            name: clusterName,
            arn: `arn:aws:eks:${region}:${account}:cluster/${clusterName}`,
            createdAt: 1767225600.123,
            version: '1.32',
            endpoint: cluster.endpoint,
            roleArn: `arn:aws:iam::${account}:role/${clusterName}-cluster`,
            resourcesVpcConfig: {
              subnetIds: ['subnet-0a1b2c3d4e5f60718', 'subnet-0f1e2d3c4b5a69788'],
              securityGroupIds: [],
              clusterSecurityGroupId: 'sg-0123456789abcdef0',
              vpcId: 'vpc-0123456789abcdef0',
              endpointPublicAccess: cluster.endpointPublicAccess ?? true,
              endpointPrivateAccess: true,
              publicAccessCidrs: ['0.0.0.0/0'],
            },
            kubernetesNetworkConfig: { serviceIpv4Cidr: '172.20.0.0/16', ipFamily: 'ipv4' },
            logging: {
              clusterLogging: [
                {
                  types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'],
                  enabled: false,
                },
              ],
            },
            identity: {
              oidc: { issuer: `https://oidc.eks.${region}.amazonaws.com/id/0123456789ABCDEF` },
            },
            status: cluster.status ?? 'ACTIVE',
            certificateAuthority: { data: Buffer.from(cluster.caPem, 'utf8').toString('base64') },
            platformVersion: 'eks.9',
            tags: {},
            accessConfig: { authenticationMode: 'API_AND_CONFIG_MAP' },
          },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    env: { AWS_ENDPOINT_URL_EKS: url },
    requests,
    setCluster(name, cluster) {
      if (cluster === undefined) clusters.delete(name);
      else clusters.set(name, cluster);
    },
    failNext(fault, count = 1) {
      for (let i = 0; i < count; i += 1) faults.push(fault);
    },
    stop: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((err) => (err === undefined ? resolve() : reject(err)));
      }),
  };
}
