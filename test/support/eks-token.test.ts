import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import {
  AwsCredentials,
  EKS_TOKEN_PREFIX,
  EksTokenFailure,
  awsEksGetToken,
  verifyEksToken,
} from './eks-token';

// The verifier is checked against two real signers: the AWS CLI (botocore, what kubectl runs
// through `aws eks get-token`) and @smithy/signature-v4 (what the deployer signs with). Only
// this test file imports the latter; the verifier does not.

const CLUSTER = 'dockercoins';
const REGION = 'eu-west-1';
// Real session tokens are base64: `/`, `+` and `=` must survive query encoding on both sides.
const CREDENTIALS: AwsCredentials = {
  accessKeyId: 'ASIATESTKEY0000001',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYTESTKEY0001',
  sessionToken: 'FwoGZXIvYXdzE+/Test//Session+Token==',
};
const LONG_TERM: AwsCredentials = {
  accessKeyId: 'AKIATESTKEY00000002',
  secretAccessKey: 'second/secret+key',
};

interface SmithyTokenOptions {
  clusterName?: string | undefined;
  credentials?: AwsCredentials;
  /** Signing region (credential scope). @default REGION */
  region?: string;
  /** @default `sts.<region>.amazonaws.com` */
  hostname?: string;
  protocol?: string;
  path?: string;
  query?: Record<string, string>;
  /** Headers signed in addition to host and x-k8s-aws-id. */
  headers?: Record<string, string>;
  signHost?: boolean;
  signingDate?: Date;
  expiresIn?: number;
}

/** A token made as the deployer makes it: @smithy/signature-v4 presign, then base64url. */
async function smithyToken(options: SmithyTokenOptions = {}): Promise<string> {
  const region = options.region ?? REGION;
  const hostname = options.hostname ?? `sts.${region}.amazonaws.com`;
  const clusterName = 'clusterName' in options ? options.clusterName : CLUSTER;
  const request = new HttpRequest({
    method: 'GET',
    protocol: options.protocol ?? 'https:',
    hostname,
    path: options.path ?? '/',
    query: options.query ?? { Action: 'GetCallerIdentity', Version: '2011-06-15' },
    headers: {
      ...(options.signHost === false ? {} : { host: hostname }),
      ...(clusterName === undefined ? {} : { 'x-k8s-aws-id': clusterName }),
      ...options.headers,
    },
  });
  const signer = new SignatureV4({
    credentials: options.credentials ?? CREDENTIALS,
    region,
    service: 'sts',
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.presign(request, {
    expiresIn: options.expiresIn ?? 60,
    ...(options.signingDate === undefined ? {} : { signingDate: options.signingDate }),
  });
  const query = Object.entries(signed.query ?? {})
    .map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v as string)}`)
    .join('&');
  const url = `${signed.protocol}//${signed.hostname}${signed.path}?${query}`;
  return EKS_TOKEN_PREFIX + Buffer.from(url).toString('base64url');
}

/** The presigned URL inside a token, and a token made from a (changed) URL. */
const urlOf = (token: string): string =>
  Buffer.from(token.slice(EKS_TOKEN_PREFIX.length), 'base64url').toString('utf8');
const tokenOf = (url: string): string => EKS_TOKEN_PREFIX + Buffer.from(url).toString('base64url');

const verify = (token: string, extra: { now?: Date; region?: string } = {}) =>
  verifyEksToken(token, {
    clusterName: CLUSTER,
    credentials: [CREDENTIALS, LONG_TERM],
    ...extra,
  });

describe('verifyEksToken against the AWS CLI (aws eks get-token)', () => {
  test.each([
    ['session credentials', CREDENTIALS],
    ['long-term credentials', LONG_TERM],
  ])(
    'Given a token from aws eks get-token with %s, when verified, then it is valid, for the regional host',
    (_, credentials) => {
      const cli = awsEksGetToken({ clusterName: CLUSTER, region: REGION, credentials });
      const result = verify(cli.token, { region: REGION });
      expect(result).toMatchObject({
        ok: true,
        accessKeyId: credentials.accessKeyId,
        region: REGION,
        host: `sts.${REGION}.amazonaws.com`,
      });
      // The CLI's expirationTimestamp is 14 minutes out, inside the 15 the verifier allows.
      const lifetime = Date.parse(cli.expirationTimestamp) - Date.now();
      expect(lifetime).toBeGreaterThan(13 * 60_000);
      expect(lifetime).toBeLessThan(15 * 60_000);
    },
  );

  test('Given a token from aws eks get-token, when verified for another cluster, then the signature does not match', () => {
    const cli = awsEksGetToken({ clusterName: CLUSTER, region: REGION, credentials: CREDENTIALS });
    expect(
      verifyEksToken(cli.token, { clusterName: 'other', credentials: CREDENTIALS }),
    ).toMatchObject({ ok: false, reason: 'signature-mismatch' });
  });
});

describe('verifyEksToken against @smithy/signature-v4 presign', () => {
  test('Given a token presigned in-process, when verified, then it is valid', async () => {
    const result = verify(await smithyToken(), { region: REGION });
    expect(result).toMatchObject({ ok: true, region: REGION });
  });

  test('Given the global STS host signed for us-east-1, when verified without a region, then it is valid; with a region, it is refused', async () => {
    const token = await smithyToken({ region: 'us-east-1', hostname: 'sts.amazonaws.com' });
    expect(verify(token)).toMatchObject({ ok: true, region: 'us-east-1' });
    expect(verify(token, { region: REGION })).toMatchObject({ ok: false, reason: 'wrong-host' });
  });

  test('Given a valid token, when the clock is 14m59s or 15m01s past X-Amz-Date, then it is valid, then expired', async () => {
    const signingDate = new Date('2026-03-01T12:00:00Z');
    const token = await smithyToken({ signingDate });
    const at = (ms: number) => verify(token, { now: new Date(signingDate.getTime() + ms) });
    expect(at(14 * 60_000 + 59_000).ok).toBe(true);
    expect(at(15 * 60_000 + 1000)).toMatchObject({ ok: false, reason: 'expired' });
  });
});

describe('verifyEksToken refuses', () => {
  const signingDate = new Date('2026-03-01T12:00:00Z');
  const now = new Date('2026-03-01T12:01:00Z');
  const good = () => smithyToken({ signingDate });
  const edit = async (change: (url: string) => string) => tokenOf(change(urlOf(await good())));

  // Each check of the token's form, one case each; every reason different.
  const cases: [string, () => Promise<string>, EksTokenFailure][] = [
    [
      'a token over 4096 bytes',
      () =>
        smithyToken({
          signingDate,
          credentials: { ...CREDENTIALS, sessionToken: 'x'.repeat(3500) },
        }),
      'too-long',
    ],
    [
      'another prefix',
      async () => (await good()).replace('k8s-aws-v1.', 'k8s-aws-v2.'),
      'missing-prefix',
    ],
    ['base64 with padding', () => paddedToken(), 'padded'],
    [
      'a standard-base64 character (/)',
      async () => (await good()).replace(/^(.{40})./, '$1/'),
      'not-base64url',
    ],
    ['no URL inside', () => Promise.resolve(tokenOf('just some text')), 'not-a-url'],
    ['http', () => smithyToken({ signingDate, protocol: 'http:' }), 'not-https'],
    [
      'a host that is not STS',
      () => smithyToken({ signingDate, hostname: 'sts.eu-west-1.amazonaws.com.example.net' }),
      'wrong-host',
    ],
    ['a path other than /', () => smithyToken({ signingDate, path: '/admin' }), 'wrong-path'],
    [
      'a broken escape in the query',
      () => edit((u) => `${u}&X-Amz-Expires=%zz`),
      'malformed-query',
    ],
    [
      'an extra query parameter, signed',
      () =>
        smithyToken({
          signingDate,
          query: { Action: 'GetCallerIdentity', Version: '2011-06-15', DurationSeconds: '900' },
        }),
      'unknown-parameter',
    ],
    [
      'a parameter twice (names are case-insensitive)',
      () => edit((u) => `${u}&action=GetCallerIdentity`),
      'repeated-parameter',
    ],
    [
      'another action, signed',
      () =>
        smithyToken({ signingDate, query: { Action: 'GetSessionToken', Version: '2011-06-15' } }),
      'wrong-action',
    ],
    [
      'another version, signed',
      () =>
        smithyToken({ signingDate, query: { Action: 'GetCallerIdentity', Version: '2012-01-01' } }),
      'wrong-version',
    ],
    [
      'x-k8s-aws-id not signed',
      () => smithyToken({ signingDate, clusterName: undefined }),
      'cluster-id-not-signed',
    ],
    ['host not signed', () => smithyToken({ signingDate, signHost: false }), 'host-not-signed'],
    [
      'a header signed that the authenticator does not send',
      () => smithyToken({ signingDate, headers: { 'x-extra': '1' } }),
      'unverifiable-signed-header',
    ],
    ['X-Amz-Expires over 900', () => smithyToken({ signingDate, expiresIn: 901 }), 'bad-expires'],
    [
      'a garbled X-Amz-Date',
      () => edit((u) => u.replace(/X-Amz-Date=\w+/, 'X-Amz-Date=2026-03-01')),
      'bad-date',
    ],
    [
      'a token signed 16 minutes ago',
      () => smithyToken({ signingDate: new Date(now.getTime() - 16 * 60_000) }),
      'expired',
    ],
    [
      'a token signed 10 minutes in the future',
      () => smithyToken({ signingDate: new Date(now.getTime() + 10 * 60_000) }),
      'not-yet-valid',
    ],
    [
      'another algorithm',
      () => edit((u) => u.replace('AWS4-HMAC-SHA256', 'AWS4-ECDSA-P256-SHA256')),
      'wrong-algorithm',
    ],
    [
      'a garbled credential',
      () => edit((u) => u.replace(/X-Amz-Credential=[^&]+/, 'X-Amz-Credential=ASIATESTKEY0000001')),
      'bad-credential',
    ],
    [
      'a scope for another region than the host',
      () =>
        smithyToken({ signingDate, region: 'us-west-2', hostname: 'sts.eu-west-1.amazonaws.com' }),
      'wrong-scope',
    ],
    [
      'an unknown access key',
      () =>
        smithyToken({
          signingDate,
          credentials: { accessKeyId: 'AKIAUNKNOWN', secretAccessKey: 'x' },
        }),
      'unknown-access-key',
    ],
    [
      'session credentials without their session token',
      () =>
        smithyToken({
          signingDate,
          credentials: {
            accessKeyId: CREDENTIALS.accessKeyId,
            secretAccessKey: CREDENTIALS.secretAccessKey,
          },
        }),
      'security-token-mismatch',
    ],
    [
      'a wrong secret key',
      () =>
        smithyToken({
          signingDate,
          credentials: { ...CREDENTIALS, secretAccessKey: 'not-the-secret' },
        }),
      'signature-mismatch',
    ],
  ];

  /** A token whose base64url needs padding, padded as standard base64 would be. */
  async function paddedToken(): Promise<string> {
    for (const sessionToken of ['a', 'ab', 'abc']) {
      const url = urlOf(
        await smithyToken({ signingDate, credentials: { ...CREDENTIALS, sessionToken } }),
      );
      const padded = Buffer.from(url).toString('base64').replace(/\+/g, '-').replace(/\//g, '_');
      if (padded.endsWith('=')) return EKS_TOKEN_PREFIX + padded;
    }
    throw new Error('no session token length gave a padded encoding');
  }

  test.each(cases.map(([description, make, reason]) => ({ description, make, reason })))(
    'Given $description, when verified, then it is refused as $reason',
    async ({ make, reason }) => {
      const result = verify(await make(), { now });
      expect(result).toMatchObject({ ok: false, reason });
      expect(result.ok ? '' : result.message).not.toBe('');
    },
  );

  test('Given the table above, then every check is exercised by exactly one case', () => {
    const reasons = cases.map(([, , reason]) => reason);
    expect(new Set(reasons).size).toBe(reasons.length);
  });

  // Signature failures share one reason, as with STS (SignatureDoesNotMatch): the cluster name
  // travels as a header, not in the URL, so nothing tells a wrong cluster from a wrong key.
  test.each<[string, (url: string) => string]>([
    [
      'a tampered signature',
      (u) =>
        u.replace(
          /X-Amz-Signature=(.)/,
          (_, c: string) => `X-Amz-Signature=${c === 'a' ? 'b' : 'a'}`,
        ),
    ],
    ['a tampered X-Amz-Date (same day)', (u) => u.replace(/(X-Amz-Date=\d{8}T\d{4})\d\d/, '$159')],
  ])('Given %s, when verified, then the signature does not match', async (_, change) => {
    const token = tokenOf(change(urlOf(await good())));
    expect(verify(token, { now })).toMatchObject({ ok: false, reason: 'signature-mismatch' });
  });

  test('Given a token for another cluster, when verified for ours, then the signature does not match; for its own cluster it is valid', async () => {
    const token = await smithyToken({ signingDate, clusterName: 'staging' });
    expect(verify(token, { now })).toMatchObject({ ok: false, reason: 'signature-mismatch' });
    expect(
      verifyEksToken(token, { clusterName: 'staging', credentials: CREDENTIALS, now }).ok,
    ).toBe(true);
  });

  test('Given the good token of this table, when verified, then it is valid (the cases fail for their own reason)', async () => {
    expect(verify(await good(), { now }).ok).toBe(true);
  });
});
