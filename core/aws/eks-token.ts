/**
 * EKS bearer tokens, presigned in-process as `aws eks get-token` and aws-iam-authenticator make
 * them: an STS GetCallerIdentity URL presigned with SigV4 (service `sts`, the cluster's regional
 * STS host, `x-k8s-aws-id: <cluster>` signed), base64url without padding, after `k8s-aws-v1.`.
 * Signing is local: no STS call and no network path to STS are needed.
 */
import { partition } from '@aws-sdk/core/client';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';

/** AWS credentials as the SDK resolves them (a Lambda role's carry a session token). */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** When temporary credentials stop working; a token signed with them stops then too. */
  readonly expiration?: Date;
}

export interface EksToken {
  /** `k8s-aws-v1.<base64url of the presigned URL>`, for `Authorization: Bearer`. */
  readonly token: string;
  /** X-Amz-Date: when it was signed. */
  readonly signedAt: Date;
  /**
   * When to stop using it: 14 minutes after signing, as the AWS CLI advertises (the API server
   * accepts it 15), or when the credentials expire, if sooner.
   */
  readonly expiresAt: Date;
}

export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** The header that binds a token to one cluster; it must be among the signed headers. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** What the CLI and the authenticator put in X-Amz-Expires (STS ignores it for this call). */
const PRESIGN_EXPIRES_SECONDS = 60;
const TOKEN_LIFETIME_MS = 14 * 60 * 1000;
/** aws-iam-authenticator's limit on a token's length. */
const MAX_TOKEN_BYTES = 4096;
/** The query parameters aws-iam-authenticator allows (lower-cased), and no others. */
const TOKEN_QUERY_PARAMETERS = new Set([
  'action',
  'version',
  'x-amz-algorithm',
  'x-amz-credential',
  'x-amz-date',
  'x-amz-expires',
  'x-amz-security-token',
  'x-amz-signature',
  'x-amz-signedheaders',
]);

/** SigV4's URI encoding: all but the unreserved characters, upper-case hex. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/**
 * The regional STS endpoint of `region`, in its partition: `sts.<region>.<partition DNS suffix>`
 * (`amazonaws.com`, `amazonaws.com.cn` in China, the ISO partitions' own), from the SDK's
 * partition table, as `aws eks get-token` signs it.
 */
export function stsHostname(region: string): string {
  return `sts.${region}.${partition(region).dnsSuffix}`;
}

/** Presigns a token for `clusterName` in `region`, now (or at `now`, for tests). */
export async function eksToken(options: {
  clusterName: string;
  region: string;
  credentials: AwsCredentials;
  now?: Date;
}): Promise<EksToken> {
  const { clusterName, region, credentials } = options;
  const signedAt = options.now ?? new Date();
  const hostname = stsHostname(region);
  const request = new HttpRequest({
    method: 'GET',
    protocol: 'https:',
    hostname,
    path: '/',
    query: { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: { host: hostname, [CLUSTER_ID_HEADER]: clusterName },
  });
  const signer = new SignatureV4({
    credentials: {
      accessKeyId: credentials.accessKeyId,
      secretAccessKey: credentials.secretAccessKey,
      ...(credentials.sessionToken === undefined ? {} : { sessionToken: credentials.sessionToken }),
    },
    region,
    service: 'sts',
    sha256: Hash.bind(null, 'sha256'),
  });
  // Only `x-amz-*` headers are hoisted into the query by presign, so x-k8s-aws-id stays a header
  // and is listed in X-Amz-SignedHeaders, which the authenticator insists on.
  const signed = await signer.presign(request, {
    signingDate: signedAt,
    expiresIn: PRESIGN_EXPIRES_SECONDS,
  });
  const query = Object.entries(signed.query ?? {})
    .map(([name, value]) => {
      // aws-iam-authenticator refuses a token with any other parameter: fail here, not at the API.
      if (typeof value !== 'string' || !TOKEN_QUERY_PARAMETERS.has(name.toLowerCase())) {
        throw new Error(
          `eksToken: the presigned URL has the parameter ${name}=${JSON.stringify(value)}, which EKS ` +
            `does not accept (only ${[...TOKEN_QUERY_PARAMETERS].join(', ')}).`,
        );
      }
      return `${uriEncode(name)}=${uriEncode(value)}`;
    })
    .join('&');
  const url = `https://${hostname}/?${query}`;
  const lifetimeEnd = signedAt.getTime() + TOKEN_LIFETIME_MS;
  const expiresAt = new Date(
    credentials.expiration === undefined
      ? lifetimeEnd
      : Math.min(lifetimeEnd, credentials.expiration.getTime()),
  );
  const token = EKS_TOKEN_PREFIX + Buffer.from(url, 'utf8').toString('base64url');
  if (token.length > MAX_TOKEN_BYTES) {
    throw new Error(
      `eksToken: the token for cluster ${clusterName} is ${token.length} bytes; EKS refuses tokens over ` +
        `${MAX_TOKEN_BYTES} (a 401). The session token is ${credentials.sessionToken?.length ?? 0} ` +
        'characters: sign with credentials whose session token is shorter (a role session without ' +
        'large session policies or tags).',
    );
  }
  return {
    token,
    signedAt,
    expiresAt,
  };
}

/** Which token: one per cluster, region and signing identity. */
export interface TokenKey {
  readonly clusterName: string;
  readonly region: string;
}

/** Tokens kept per container, so warm invocations do not sign again. */
export interface TokenCache {
  /** A token younger than the reuse limit, or a new one. */
  get(key: TokenKey, credentials: () => Promise<AwsCredentials>): Promise<string>;
  /** Forgets the cluster's tokens (after a 401: the server no longer accepts them). */
  invalidate(key: TokenKey): void;
}

export interface TokenCacheOptions {
  /**
   * How long a token is reused. Under the CLI's 14 minutes, so a token is never sent close to the
   * server's 15-minute limit, even after a slow request or a clock a little off.
   * @default 600000 (10 minutes)
   */
  readonly maxAgeMs?: number;
  /** @default - the current time */
  readonly now?: () => Date;
  /** @default - {@link eksToken} */
  readonly sign?: typeof eksToken;
}

/**
 * A {@link TokenCache}. Keyed by cluster, region and access key id: new credentials (a rotated
 * role session) get a new token at once. A token is not reused past its credentials' expiry.
 */
export function createTokenCache(options: TokenCacheOptions = {}): TokenCache {
  const maxAgeMs = options.maxAgeMs ?? 10 * 60 * 1000;
  const now = options.now ?? (() => new Date());
  const sign = options.sign ?? eksToken;
  const tokens = new Map<string, EksToken>();
  const prefix = (key: TokenKey): string => `${key.region}\n${key.clusterName}\n`;
  return {
    async get(key, credentials) {
      const resolved = await credentials();
      const cacheKey = prefix(key) + resolved.accessKeyId;
      const at = now();
      const cached = tokens.get(cacheKey);
      if (
        cached !== undefined &&
        at.getTime() - cached.signedAt.getTime() < maxAgeMs &&
        at.getTime() < cached.expiresAt.getTime()
      ) {
        return cached.token;
      }
      const fresh = await sign({ ...key, credentials: resolved, now: at });
      tokens.set(cacheKey, fresh);
      return fresh.token;
    },
    invalidate(key) {
      const start = prefix(key);
      for (const cacheKey of [...tokens.keys()]) {
        if (cacheKey.startsWith(start)) tokens.delete(cacheKey);
      }
    },
  };
}
