import { spawnSync } from 'node:child_process';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';

// What EKS does with `Authorization: Bearer k8s-aws-v1.…`: aws-iam-authenticator checks the
// token's form (pkg/token/token.go), then forwards the presigned URL to STS with the header
// `x-k8s-aws-id: <cluster>`; STS checks the SigV4 signature. Both halves are here, written from
// the SigV4 specification with node:crypto alone: the deployer signs with @smithy/signature-v4,
// so a verifier built on that library would share its bugs.

/** AWS credentials: what signs a token, and what the verifier knows the secret of. */
export interface AwsCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** Temporary credentials (a Lambda role's) carry one; it must travel in the token. */
  readonly sessionToken?: string;
}

export interface VerifyEksTokenOptions {
  /** The cluster the token must be for: the value of the signed `x-k8s-aws-id` header. */
  readonly clusterName: string;
  /** Whose tokens are valid: one identity, or several (looked up by access key id). */
  readonly credentials: AwsCredentials | readonly AwsCredentials[];
  /**
   * When set, only `sts.<region>.<partition suffix>` is accepted (what the deployer promises).
   * @default - any regional STS host or the global `sts.amazonaws.com`, as the authenticator
   */
  readonly region?: string;
  /** @default - the current time */
  readonly now?: Date;
}

/** Why a token is refused; each check has its own reason. */
export type EksTokenFailure =
  | 'too-long'
  | 'missing-prefix'
  | 'padded'
  | 'not-base64url'
  | 'not-a-url'
  | 'not-https'
  | 'wrong-host'
  | 'wrong-path'
  | 'malformed-query'
  | 'unknown-parameter'
  | 'repeated-parameter'
  | 'wrong-action'
  | 'wrong-version'
  | 'cluster-id-not-signed'
  | 'host-not-signed'
  | 'unverifiable-signed-header'
  | 'bad-expires'
  | 'bad-date'
  | 'expired'
  | 'not-yet-valid'
  | 'wrong-algorithm'
  | 'bad-credential'
  | 'wrong-scope'
  | 'unknown-access-key'
  | 'security-token-mismatch'
  | 'signature-mismatch';

/** What a valid token says about its signer. */
export interface VerifiedEksToken {
  readonly ok: true;
  readonly accessKeyId: string;
  /** The region of the signature's credential scope. */
  readonly region: string;
  /** The STS host the URL was presigned for. */
  readonly host: string;
  /** X-Amz-Date. */
  readonly signedAt: Date;
  /** 15 minutes after X-Amz-Date, whatever X-Amz-Expires says (what STS enforces). */
  readonly expiresAt: Date;
  /** The presigned URL the token carries. */
  readonly url: string;
}

export interface RejectedEksToken {
  readonly ok: false;
  readonly reason: EksTokenFailure;
  /** What is wrong, with the offending value. */
  readonly message: string;
}

export type EksTokenVerification = VerifiedEksToken | RejectedEksToken;

/** The token prefix of aws-iam-authenticator's v1 tokens. */
export const EKS_TOKEN_PREFIX = 'k8s-aws-v1.';
/** The header that binds a token to one cluster. */
export const CLUSTER_ID_HEADER = 'x-k8s-aws-id';
/** aws-iam-authenticator's `maxTokenLenBytes`. */
export const MAX_TOKEN_BYTES = 4096;
/** Presigned STS URLs are good for 15 minutes after X-Amz-Date, regardless of X-Amz-Expires. */
export const TOKEN_LIFETIME_MS = 15 * 60 * 1000;
/**
 * How far in the future X-Amz-Date may be. STS allows 15 minutes of clock skew; 5 is enough
 * for a signer on this machine and catches a signer that gets its date wrong.
 */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

const ALLOWED_PARAMETERS = new Set([
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
const EMPTY_BODY_SHA256 = createHash('sha256').update('').digest('hex');
const REGION = /^[a-z]{2,4}(-[a-z]+)+-\d+$/;

/**
 * The DNS suffix of a region's partition, as the STS endpoints of each partition are named
 * (written here from the partitions' published endpoints, not taken from the SDK the deployer
 * signs with): China `amazonaws.com.cn`, the ISO partitions their own, the rest `amazonaws.com`.
 */
export function stsDnsSuffix(region: string): string {
  const byPrefix: [RegExp, string][] = [
    [/^cn-/, 'amazonaws.com.cn'],
    [/^us-isob-/, 'sc2s.sgov.gov'],
    [/^us-isof-/, 'csp.hci.ic.gov'],
    [/^us-iso-/, 'c2s.ic.gov'],
    [/^eu-isoe-/, 'cloud.adc-e.uk'],
    [/^eusc-/, 'amazonaws.eu'],
  ];
  return byPrefix.find(([prefix]) => prefix.test(region))?.[1] ?? 'amazonaws.com';
}

const reject = (reason: EksTokenFailure, message: string): RejectedEksToken => ({
  ok: false,
  reason,
  message,
});

/** SigV4 URI encoding: everything but the unreserved characters, as %XX with upper-case hex. */
function uriEncode(value: string): string {
  return encodeURIComponent(value).replace(
    /[!'()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
}

/** Query parsing as Go's url.ParseQuery: `&`-separated, `+` is a space, bad escapes are errors. */
function parseQuery(raw: string): [string, string][] | undefined {
  const pairs: [string, string][] = [];
  for (const part of raw.split('&')) {
    if (part === '') continue;
    if (part.includes(';')) return undefined;
    const at = part.indexOf('=');
    const [key, value] = at < 0 ? [part, ''] : [part.slice(0, at), part.slice(at + 1)];
    try {
      pairs.push([
        decodeURIComponent(key.replace(/\+/g, ' ')),
        decodeURIComponent(value.replace(/\+/g, ' ')),
      ]);
    } catch {
      return undefined;
    }
  }
  return pairs;
}

function hmac(key: Buffer | string, data: string): Buffer {
  return createHmac('sha256', key).update(data, 'utf8').digest();
}

function parseAmzDate(value: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(value);
  if (m === null) return undefined;
  const [year, month, day, hour, minute, second] = m.slice(1).map(Number) as [
    number,
    number,
    number,
    number,
    number,
    number,
  ];
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, second));
  // Date.UTC rolls 20260231 over into March; a real date reads back the same.
  return date.getUTCDate() === day && date.getUTCMonth() === month - 1 ? date : undefined;
}

/**
 * Verifies an EKS bearer token as aws-iam-authenticator and STS together would, for one cluster
 * and the given credentials. Never throws for a bad token: it says why it is refused.
 */
export function verifyEksToken(
  token: string,
  options: VerifyEksTokenOptions,
): EksTokenVerification {
  const now = options.now ?? new Date();
  const identities = Array.isArray(options.credentials)
    ? (options.credentials as readonly AwsCredentials[])
    : [options.credentials as AwsCredentials];

  // ---- aws-iam-authenticator: the token's form ----
  const bytes = Buffer.byteLength(token, 'utf8');
  if (bytes > MAX_TOKEN_BYTES) {
    return reject('too-long', `token is ${bytes} bytes, more than ${MAX_TOKEN_BYTES}`);
  }
  if (!token.startsWith(EKS_TOKEN_PREFIX)) {
    return reject(
      'missing-prefix',
      `token does not start with ${EKS_TOKEN_PREFIX}: ${token.slice(0, 16)}…`,
    );
  }
  const encoded = token.slice(EKS_TOKEN_PREFIX.length);
  if (encoded.includes('=')) {
    return reject(
      'padded',
      'token is padded with "=": base64url must be unpadded (RawURLEncoding)',
    );
  }
  if (
    !/^[A-Za-z0-9_-]*$/.test(encoded) ||
    encoded.length % 4 === 1 ||
    Buffer.from(encoded, 'base64url').toString('base64url') !== encoded
  ) {
    return reject('not-base64url', 'token is not unpadded base64url (A-Z a-z 0-9 - _)');
  }
  const url = Buffer.from(encoded, 'base64url').toString('utf8');
  const parts = /^([A-Za-z][A-Za-z0-9+.-]*):\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/.exec(url);
  if (parts === null) return reject('not-a-url', `token does not hold a URL: ${url.slice(0, 80)}`);
  const [, scheme, host = '', urlPath = '', rawQuery = ''] = parts;
  if (scheme !== 'https')
    return reject('not-https', `presigned URL scheme is ${scheme}, not https`);

  const regional = /^sts\.([a-z0-9-]+)\.([a-z0-9.-]+)$/.exec(host);
  const hostRegion =
    host === 'sts.amazonaws.com'
      ? 'us-east-1'
      : regional?.[1] !== undefined &&
          REGION.test(regional[1]) &&
          regional[2] === stsDnsSuffix(regional[1])
        ? regional[1]
        : undefined;
  if (hostRegion === undefined) {
    return reject(
      'wrong-host',
      `presigned URL host ${host} is not an STS endpoint (sts.<region>.<its partition's DNS suffix>)`,
    );
  }
  const expectedHost =
    options.region === undefined
      ? undefined
      : `sts.${options.region}.${stsDnsSuffix(options.region)}`;
  if (expectedHost !== undefined && host !== expectedHost) {
    return reject(
      'wrong-host',
      `presigned URL host ${host} is not the regional STS endpoint ${expectedHost}`,
    );
  }
  if (urlPath !== '/') return reject('wrong-path', `presigned URL path is "${urlPath}", not "/"`);

  const pairs = parseQuery(rawQuery);
  if (pairs === undefined) return reject('malformed-query', 'presigned URL query is malformed');
  const lower = new Map<string, string>();
  for (const [key, value] of pairs) {
    const name = key.toLowerCase();
    if (!ALLOWED_PARAMETERS.has(name)) {
      return reject('unknown-parameter', `query parameter ${key} is not allowed in a token`);
    }
    if (lower.has(name)) {
      return reject('repeated-parameter', `query parameter ${key} appears more than once`);
    }
    lower.set(name, value);
  }
  if (lower.get('action') !== 'GetCallerIdentity') {
    return reject('wrong-action', `Action is ${lower.get('action')}, not GetCallerIdentity`);
  }
  const signedHeaders = (lower.get('x-amz-signedheaders') ?? '').split(';');
  if (!signedHeaders.includes(CLUSTER_ID_HEADER)) {
    return reject(
      'cluster-id-not-signed',
      `client did not sign the ${CLUSTER_ID_HEADER} header (X-Amz-SignedHeaders=${lower.get('x-amz-signedheaders')})`,
    );
  }
  const expiresText = lower.get('x-amz-expires') ?? '';
  const expires = /^\d{1,6}$/.test(expiresText) ? Number(expiresText) : NaN;
  if (!(expires >= 0 && expires <= 900)) {
    return reject('bad-expires', `X-Amz-Expires is "${expiresText}", not 0 to 900`);
  }
  const dateText = lower.get('x-amz-date') ?? '';
  const signedAt = parseAmzDate(dateText);
  if (signedAt === undefined) {
    return reject('bad-date', `X-Amz-Date is "${dateText}", not YYYYMMDDTHHMMSSZ`);
  }
  const expiresAt = new Date(signedAt.getTime() + TOKEN_LIFETIME_MS);
  if (now > expiresAt) {
    return reject(
      'expired',
      `token expired at ${expiresAt.toISOString()} (15 minutes after X-Amz-Date ${dateText})`,
    );
  }

  // ---- STS: the signature ----
  if (signedAt.getTime() > now.getTime() + MAX_CLOCK_SKEW_MS) {
    return reject('not-yet-valid', `X-Amz-Date ${dateText} is in the future`);
  }
  if (lower.get('version') !== '2011-06-15') {
    return reject('wrong-version', `Version is ${lower.get('version')}, not 2011-06-15`);
  }
  if (lower.get('x-amz-algorithm') !== 'AWS4-HMAC-SHA256') {
    return reject(
      'wrong-algorithm',
      `X-Amz-Algorithm is ${lower.get('x-amz-algorithm')}, not AWS4-HMAC-SHA256`,
    );
  }
  if (!signedHeaders.includes('host')) {
    return reject('host-not-signed', 'the host header is not among X-Amz-SignedHeaders');
  }
  const extra = signedHeaders.filter((h) => h !== 'host' && h !== CLUSTER_ID_HEADER);
  if (extra.length > 0 || signedHeaders.join(';') !== [...signedHeaders].sort().join(';')) {
    return reject(
      'unverifiable-signed-header',
      `X-Amz-SignedHeaders=${signedHeaders.join(';')}: the authenticator sends only host and ${CLUSTER_ID_HEADER}, in that order`,
    );
  }
  const credential = (lower.get('x-amz-credential') ?? '').split('/');
  if (credential.length !== 5 || credential.some((part) => part === '')) {
    return reject(
      'bad-credential',
      `X-Amz-Credential is "${lower.get('x-amz-credential')}", not <key>/<date>/<region>/sts/aws4_request`,
    );
  }
  const [accessKeyId, scopeDate, scopeRegion, scopeService, terminator] = credential as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (
    scopeDate !== dateText.slice(0, 8) ||
    scopeRegion !== hostRegion ||
    scopeService !== 'sts' ||
    terminator !== 'aws4_request'
  ) {
    return reject(
      'wrong-scope',
      `credential scope ${credential.slice(1).join('/')} is not ${dateText.slice(0, 8)}/${hostRegion}/sts/aws4_request (host ${host})`,
    );
  }
  const identity = identities.find((c) => c.accessKeyId === accessKeyId);
  if (identity === undefined) {
    return reject('unknown-access-key', `access key ${accessKeyId} is not known to this verifier`);
  }
  if ((identity.sessionToken ?? undefined) !== lower.get('x-amz-security-token')) {
    return reject(
      'security-token-mismatch',
      identity.sessionToken === undefined
        ? `access key ${accessKeyId} has no session token, but the token carries one`
        : `the session token of access key ${accessKeyId} is missing or different`,
    );
  }

  const canonicalQuery = pairs
    .filter(([key]) => key.toLowerCase() !== 'x-amz-signature')
    .map(([key, value]) => [uriEncode(key), uriEncode(value)] as const)
    .sort(([ak, av], [bk, bv]) => (ak < bk ? -1 : ak > bk ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([key, value]) => `${key}=${value}`)
    .join('&');
  const headerValues: Record<string, string> = {
    host,
    [CLUSTER_ID_HEADER]: options.clusterName.trim().replace(/\s+/g, ' '),
  };
  const canonicalHeaders = signedHeaders.map((h) => `${h}:${headerValues[h]}\n`).join('');
  const scope = credential.slice(1).join('/');
  let key: Buffer | string = `AWS4${identity.secretAccessKey}`;
  for (const part of [scopeDate, scopeRegion, scopeService, terminator]) key = hmac(key, part);

  // Both real signers hash the (empty) body of the GET: botocore's SigV4QueryAuth uses
  // UNSIGNED-PAYLOAD for S3 only, and @smithy/signature-v4's presign hashes the body it has.
  const canonicalRequest = [
    'GET',
    '/',
    canonicalQuery,
    canonicalHeaders,
    signedHeaders.join(';'),
    EMPTY_BODY_SHA256,
  ].join('\n');
  const stringToSign = [
    'AWS4-HMAC-SHA256',
    dateText,
    scope,
    createHash('sha256').update(canonicalRequest, 'utf8').digest('hex'),
  ].join('\n');
  const expected = Buffer.from(hmac(key, stringToSign).toString('hex'), 'utf8');
  const given = Buffer.from(lower.get('x-amz-signature') ?? '', 'utf8');
  if (given.length === expected.length && timingSafeEqual(given, expected)) {
    return { ok: true, accessKeyId, region: scopeRegion, host, signedAt, expiresAt, url };
  }
  return reject(
    'signature-mismatch',
    `signature does not match for access key ${accessKeyId} and cluster ${options.clusterName}: ` +
      'the secret key or the signed x-k8s-aws-id differs, or the URL was changed after signing',
  );
}

/** `aws eks get-token`'s output (ExecCredential), and how long the process took. */
export interface AwsCliToken {
  readonly token: string;
  readonly expirationTimestamp: string;
  readonly milliseconds: number;
}

/**
 * A token made by the real AWS CLI, `aws eks get-token`: it presigns locally, no network. Runs
 * with only these credentials in the environment and an empty HOME, so no profile or config
 * file on the machine changes what it signs.
 */
export function awsEksGetToken(options: {
  clusterName: string;
  region: string;
  credentials: AwsCredentials;
}): AwsCliToken {
  const home = mkdtempSync(path.join(tmpdir(), 'ship-aws-home-'));
  try {
    const started = process.hrtime.bigint();
    const result = spawnSync(
      'aws',
      ['eks', 'get-token', '--cluster-name', options.clusterName, '--region', options.region],
      {
        encoding: 'utf8',
        env: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: home,
          AWS_ACCESS_KEY_ID: options.credentials.accessKeyId,
          AWS_SECRET_ACCESS_KEY: options.credentials.secretAccessKey,
          ...(options.credentials.sessionToken === undefined
            ? {}
            : { AWS_SESSION_TOKEN: options.credentials.sessionToken }),
          AWS_CONFIG_FILE: path.join(home, 'config'),
          AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
          AWS_EC2_METADATA_DISABLED: 'true',
        },
      },
    );
    const milliseconds = Number(process.hrtime.bigint() - started) / 1e6;
    if (result.error !== undefined) {
      throw new Error(
        `aws could not run (${result.error.message}): install the AWS CLI (pip install awscli, or AWS CLI v2).`,
      );
    }
    if (result.status !== 0) {
      throw new Error(`aws eks get-token failed with ${result.status}:\n${result.stderr}`);
    }
    const credential = JSON.parse(result.stdout) as {
      status?: { token?: string; expirationTimestamp?: string };
    };
    const token = credential.status?.token;
    if (typeof token !== 'string') {
      throw new Error(`aws eks get-token printed no status.token:\n${result.stdout}`);
    }
    return {
      token,
      expirationTimestamp: credential.status?.expirationTimestamp ?? '',
      milliseconds,
    };
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}
