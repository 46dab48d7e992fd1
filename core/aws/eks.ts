/**
 * ClusterConnector: from an environment's cluster name and region to a {@link KubeClient}.
 * DescribeCluster gives the endpoint and CA; both, the client and its kept-alive connection are
 * cached for the container's life, so a warm deploy makes no EKS call. A connection or certificate
 * failure marks the description stale: a recreated cluster (new endpoint or CA) is read again.
 */
import { DescribeClusterCommand, EKSClient, type Cluster } from '@aws-sdk/client-eks';
import type { EnvironmentSettings } from '../../lib/deployer-contract';
import { PermanentError, TransientError, type ClusterConnector } from '../types';
import { createKubeClient, type HttpsKubeClient } from '../kube';
import { AWS_CLIENT_DEFAULTS, awsFailure } from '../retry';
import { createTokenCache, type TokenCache } from './eks-token';

/** The EKS client the deployer uses in `region` (SDK retries off: retry.ts retries). */
export function newEksClient(region: string): EKSClient {
  return new EKSClient({ region, ...AWS_CLIENT_DEFAULTS });
}

export interface ClusterConnectorOptions {
  /** Builds the EKS client of a region; called once per region, on first use. */
  readonly eksClient: (region: string) => EKSClient;
  /** The Lambda's own region (AWS_REGION), for environments that name none. */
  readonly defaultRegion: string;
  /** @default - a new {@link createTokenCache} */
  readonly tokens?: TokenCache;
  /** Per request to the API server. @default 5000 */
  readonly timeoutMs?: number;
  /** @default 'dockercoins-deployer' */
  readonly userAgent?: string;
  /** @default 'dockercoins-deployer' */
  readonly fieldManager?: string;
  /** What 401 and 403 messages say to fix. @default - the deployer's access entry and Role */
  readonly accessHint?: { readonly unauthorized: string; readonly forbidden: string };
}

/** A {@link ClusterConnector} that owns the connections it opened. */
export interface CachingClusterConnector extends ClusterConnector {
  connect(environment: EnvironmentSettings): Promise<HttpsKubeClient>;
  /** Closes every kept-alive connection. */
  close(): void;
}

/** What DescribeCluster tells us that connecting needs. */
interface ClusterAccess {
  readonly endpoint: string;
  readonly caPem: string;
  readonly privateOnly: boolean;
}

interface Connection {
  readonly access: ClusterAccess;
  readonly client: HttpsKubeClient;
  /** Set when the server could not be reached: describe the cluster again before next use. */
  stale: boolean;
}

const USABLE = new Set(['ACTIVE', 'UPDATING']);
const NOT_YET = new Set(['CREATING', 'PENDING']);

export function createClusterConnector(options: ClusterConnectorOptions): CachingClusterConnector {
  const tokens = options.tokens ?? createTokenCache();
  const eksClients = new Map<string, EKSClient>();
  const connections = new Map<string, Connection>();
  // Concurrent targets in one cluster share one DescribeCluster.
  const pending = new Map<string, Promise<Connection>>();

  const eksFor = (region: string): EKSClient => {
    let client = eksClients.get(region);
    if (client === undefined) {
      client = options.eksClient(region);
      eksClients.set(region, client);
    }
    return client;
  };

  async function open(
    environment: EnvironmentSettings,
    region: string,
    key: string,
  ): Promise<Connection> {
    const { clusterName } = environment;
    const eks = eksFor(region);
    const access = await describe(eks, environment, region);
    const previous = connections.get(key);
    if (
      previous !== undefined &&
      previous.access.endpoint === access.endpoint &&
      previous.access.caPem === access.caPem
    ) {
      previous.stale = false;
      return previous;
    }
    previous?.client.close();
    const tokenKey = { clusterName, region };
    const connection: Connection = {
      access,
      stale: false,
      client: createKubeClient({
        endpoint: access.endpoint,
        caPem: access.caPem,
        token: () => tokens.get(tokenKey, () => eks.config.credentials()),
        invalidateToken: () => tokens.invalidate(tokenKey),
        clusterLabel: `cluster "${clusterName}" (${region})`,
        onUnreachable: () => {
          connection.stale = true;
        },
        ...(access.privateOnly
          ? {
              unreachableHint:
                "The cluster's endpoint is private only: the deployer must run in the cluster's VPC, " +
                'with its security group allowed on 443 by the cluster security group.',
            }
          : {}),
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
        ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
        ...(options.fieldManager === undefined ? {} : { fieldManager: options.fieldManager }),
        ...(options.accessHint === undefined ? {} : { accessHint: options.accessHint }),
      }),
    };
    connections.set(key, connection);
    return connection;
  }

  return {
    async connect(environment): Promise<HttpsKubeClient> {
      const region = environment.region ?? options.defaultRegion;
      const key = `${region}\n${environment.clusterName}`;
      const known = connections.get(key);
      if (known !== undefined && !known.stale) return known.client;
      let opening = pending.get(key);
      if (opening === undefined) {
        opening = open(environment, region, key).finally(() => pending.delete(key));
        pending.set(key, opening);
      }
      return (await opening).client;
    },
    close() {
      for (const connection of connections.values()) connection.client.close();
      connections.clear();
    },
  };
}

async function describe(
  eks: EKSClient,
  environment: EnvironmentSettings,
  region: string,
): Promise<ClusterAccess> {
  const { clusterName } = environment;
  const which = `EKS cluster "${clusterName}" in ${region} (environment "${environment.name}")`;
  let cluster: Cluster | undefined;
  try {
    ({ cluster } = await eks.send(new DescribeClusterCommand({ name: clusterName })));
  } catch (error) {
    if ((error as { name?: unknown }).name === 'ResourceNotFoundException') {
      throw new PermanentError(
        'rejected',
        `${which} does not exist (DescribeCluster: ResourceNotFoundException). Fix the environment's ` +
          'clusterName or region in the app configuration and deploy the app again.',
      );
    }
    throw awsFailure(
      `DescribeCluster of ${which}`,
      error,
      `The deployer's role needs eks:DescribeCluster on arn:aws:eks:${region}:<account>:cluster/${clusterName}.`,
    );
  }
  const status = cluster?.status ?? '(none)';
  if (NOT_YET.has(status)) {
    throw new TransientError(`${which} is ${status}, not ready for deploys yet; retrying later.`);
  }
  if (!USABLE.has(status)) {
    throw new PermanentError(
      'rejected',
      `${which} is ${status}; the deployer only deploys to ACTIVE or UPDATING clusters.`,
    );
  }
  const endpoint = cluster?.endpoint;
  if (endpoint === undefined || endpoint === '') {
    throw new PermanentError(
      'rejected',
      `${which} is ${status} but DescribeCluster gave no endpoint, so its API server cannot be ` +
        'reached. Check the cluster in the EKS console.',
    );
  }
  const caData = cluster?.certificateAuthority?.data;
  const caPem = caData === undefined ? '' : Buffer.from(caData, 'base64').toString('utf8');
  if (!caPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new PermanentError(
      'rejected',
      `${which}: DescribeCluster's certificateAuthority.data is ${caData === undefined ? 'missing' : 'not a base64 PEM certificate'}, ` +
        "so the API server's certificate cannot be verified (and verification is never skipped).",
    );
  }
  return {
    endpoint,
    caPem,
    privateOnly: cluster?.resourcesVpcConfig?.endpointPublicAccess === false,
  };
}
