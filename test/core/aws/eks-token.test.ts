import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  createTokenCache,
  eksToken,
  stsHostname,
  EKS_TOKEN_PREFIX,
  type AwsCredentials,
} from '../../../core/aws/eks-token';
import { verifyEksToken } from '../../support/eks-token';

const SESSION: AwsCredentials = {
  accessKeyId: 'ASIAEXAMPLESESSION01',
  secretAccessKey: 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY',
  // Real session tokens carry "/", "+" and "=", which must survive URL encoding.
  sessionToken: 'IQoJb3JpZ2luX2VjE+/session/token==',
};
const LONG_TERM: AwsCredentials = {
  accessKeyId: 'AKIAEXAMPLELONGTERM1',
  secretAccessKey: 'bPxRfiCYEXAMPLEKEYwJalrXUtnFEMI/K7MDENG',
};

/**
 * `aws eks get-token` from the real AWS CLI (it signs locally, no network), with only these
 * credentials and empty config files. With `at`, the CLI's own code runs with its signing clock
 * fixed: botocore.auth.get_current_datetime is replaced before the CLI starts.
 */
function cliToken(options: {
  clusterName: string;
  region: string;
  credentials: AwsCredentials;
  at?: Date;
}): string {
  const home = mkdtempSync(path.join(tmpdir(), 'ship-token-home-'));
  try {
    writeFileSync(path.join(home, 'config'), '');
    writeFileSync(path.join(home, 'credentials'), '');
    const args = ['eks', 'get-token', '--cluster-name', options.clusterName];
    args.push('--region', options.region);
    const env = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      HOME: home,
      AWS_CONFIG_FILE: path.join(home, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_ACCESS_KEY_ID: options.credentials.accessKeyId,
      AWS_SECRET_ACCESS_KEY: options.credentials.secretAccessKey,
      ...(options.credentials.sessionToken === undefined
        ? {}
        : { AWS_SESSION_TOKEN: options.credentials.sessionToken }),
    };
    const run =
      options.at === undefined
        ? spawnSync('aws', args, { encoding: 'utf8', env })
        : spawnSync(
            'python3',
            [
              '-c',
              [
                'import datetime, sys',
                'import botocore.auth',
                `fixed = datetime.datetime.fromtimestamp(${options.at.getTime() / 1000}, datetime.timezone.utc).replace(tzinfo=None)`,
                'botocore.auth.get_current_datetime = lambda *a, **k: fixed',
                'from awscli.clidriver import main',
                'sys.exit(main())',
              ].join('\n'),
              ...args,
            ],
            { encoding: 'utf8', env },
          );
    if (run.error !== undefined || run.status !== 0) {
      throw new Error(
        `aws eks get-token failed (${run.error?.message ?? run.status}); the AWS CLI must be installed ` +
          `and importable by python3 (pip install awscli):\n${run.stderr}`,
      );
    }
    return (JSON.parse(run.stdout) as { status: { token: string } }).status.token;
  } finally {
    rmSync(home, { recursive: true, force: true });
  }
}

interface DecodedToken {
  readonly url: URL;
  readonly parameters: Map<string, string>;
}

function decode(token: string): DecodedToken {
  expect(token.startsWith(EKS_TOKEN_PREFIX)).toBe(true);
  const encoded = token.slice(EKS_TOKEN_PREFIX.length);
  expect(encoded).toMatch(/^[A-Za-z0-9_-]+$/);
  const url = new URL(Buffer.from(encoded, 'base64url').toString('utf8'));
  const parameters = new Map<string, string>();
  for (const [name, value] of url.searchParams) {
    expect(parameters.has(name)).toBe(false);
    parameters.set(name, value);
  }
  return { url, parameters };
}

describe('eksToken against the real AWS CLI (aws eks get-token)', () => {
  test.each([
    ['session credentials (a Lambda role)', SESSION],
    ['long-term credentials', LONG_TERM],
  ])(
    'Given %s and the CLI clock fixed, when both sign at the same second, then the URLs are the same, signature included',
    async (_name, credentials) => {
      const at = new Date('2026-03-01T12:34:56Z');
      const theirs = decode(
        cliToken({ clusterName: 'dockercoins', region: 'eu-west-1', credentials, at }),
      );
      const ours = decode(
        (await eksToken({ clusterName: 'dockercoins', region: 'eu-west-1', credentials, now: at }))
          .token,
      );
      expect(ours.url.origin + ours.url.pathname).toBe(theirs.url.origin + theirs.url.pathname);
      expect(ours.url.origin).toBe('https://sts.eu-west-1.amazonaws.com');
      expect(Object.fromEntries(ours.parameters)).toEqual(Object.fromEntries(theirs.parameters));
      expect(ours.parameters.get('X-Amz-Date')).toBe('20260301T123456Z');
      expect(ours.parameters.get('X-Amz-Signature')).toMatch(/^[0-9a-f]{64}$/);
    },
  );

  test('Given the CLI on its own clock, when both sign now, then host, path, parameter names, signed headers and credential scope agree', async () => {
    const before = new Date();
    const theirs = decode(
      cliToken({ clusterName: 'prod-cluster', region: 'ap-southeast-2', credentials: SESSION }),
    );
    const ours = decode(
      (
        await eksToken({
          clusterName: 'prod-cluster',
          region: 'ap-southeast-2',
          credentials: SESSION,
        })
      ).token,
    );
    expect(ours.url.host).toBe(theirs.url.host);
    expect(ours.url.pathname).toBe(theirs.url.pathname);
    expect([...ours.parameters.keys()].sort()).toEqual([...theirs.parameters.keys()].sort());
    for (const name of [
      'Action',
      'Version',
      'X-Amz-Algorithm',
      'X-Amz-Expires',
      'X-Amz-SignedHeaders',
      'X-Amz-Security-Token',
    ]) {
      expect([name, ours.parameters.get(name)]).toEqual([name, theirs.parameters.get(name)]);
    }
    expect(ours.parameters.get('X-Amz-SignedHeaders')).toBe('host;x-k8s-aws-id');
    expect(ours.parameters.get('X-Amz-Expires')).toBe('60');
    // <key>/<yyyymmdd>/<region>/sts/aws4_request; the date may differ only across midnight.
    const scope = (decoded: DecodedToken) =>
      (decoded.parameters.get('X-Amz-Credential') ?? '').split('/');
    expect(scope(ours).filter((_, i) => i !== 1)).toEqual(scope(theirs).filter((_, i) => i !== 1));
    expect(scope(ours)[1]).toBe(before.toISOString().slice(0, 10).replace(/-/g, ''));
  });
});

describe('eksToken in every partition', () => {
  const at = new Date('2026-05-04T08:00:00Z');

  test.each([
    ['eu-west-1', 'sts.eu-west-1.amazonaws.com'],
    ['us-gov-west-1', 'sts.us-gov-west-1.amazonaws.com'],
    ['cn-north-1', 'sts.cn-north-1.amazonaws.com.cn'],
    ['cn-northwest-1', 'sts.cn-northwest-1.amazonaws.com.cn'],
    ['us-iso-east-1', 'sts.us-iso-east-1.c2s.ic.gov'],
    ['us-isob-east-1', 'sts.us-isob-east-1.sc2s.sgov.gov'],
  ])(
    'Given region %s, then the token is presigned for %s, the host the AWS CLI signs for, and verifies there',
    async (region, host) => {
      expect(stsHostname(region)).toBe(host);
      const { token } = await eksToken({
        clusterName: 'dockercoins',
        region,
        credentials: SESSION,
        now: at,
      });
      expect(decode(token).url.host).toBe(host);
      expect(
        decode(cliToken({ clusterName: 'dockercoins', region, credentials: SESSION })).url.host,
      ).toBe(host);
      expect(
        verifyEksToken(token, {
          clusterName: 'dockercoins',
          credentials: SESSION,
          region,
          now: new Date(at.getTime() + 60_000),
        }),
      ).toMatchObject({ ok: true, region, host });
    },
  );

  test('Given a China region, then a token for the .com host (the old behaviour) is refused by the verifier', () => {
    const forged = `k8s-aws-v1.${Buffer.from(
      'https://sts.cn-north-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15',
    ).toString('base64url')}`;
    expect(
      verifyEksToken(forged, {
        clusterName: 'dockercoins',
        credentials: SESSION,
        region: 'cn-north-1',
      }),
    ).toMatchObject({ ok: false, reason: 'wrong-host' });
  });
});

describe('eksToken', () => {
  const at = new Date('2026-05-04T08:00:00Z');

  test('Given session credentials, when verified as EKS and STS would (independent SigV4 verifier), then it is valid for this cluster only', async () => {
    const { token } = await eksToken({
      clusterName: 'dockercoins',
      region: 'eu-west-1',
      credentials: SESSION,
      now: at,
    });
    const valid = verifyEksToken(token, {
      clusterName: 'dockercoins',
      credentials: SESSION,
      region: 'eu-west-1',
      now: new Date(at.getTime() + 60_000),
    });
    expect(valid).toMatchObject({
      ok: true,
      accessKeyId: SESSION.accessKeyId,
      region: 'eu-west-1',
    });
    const other = verifyEksToken(token, {
      clusterName: 'another',
      credentials: SESSION,
      region: 'eu-west-1',
      now: new Date(at.getTime() + 60_000),
    });
    expect(other).toMatchObject({ ok: false, reason: 'signature-mismatch' });
  });

  // A Lambda role's session token is about 1,100 characters of base64.
  const lambdaSessionToken = 'IQoJb3JpZ2luX2Vj/+=='.repeat(56);

  test('Given a Lambda-sized session token and the longest cluster name, then the token is unpadded base64url, at most 4096 bytes, with only the parameters EKS allows', async () => {
    const { token, signedAt, expiresAt } = await eksToken({
      clusterName: 'c'.repeat(100),
      region: 'us-gov-west-1',
      credentials: { ...SESSION, sessionToken: lambdaSessionToken },
      now: at,
    });
    expect(token).not.toContain('=');
    expect(Buffer.byteLength(token)).toBeLessThanOrEqual(4096);
    const { parameters } = decode(token);
    expect([...parameters.keys()].sort()).toEqual(
      [
        'Action',
        'Version',
        'X-Amz-Algorithm',
        'X-Amz-Credential',
        'X-Amz-Date',
        'X-Amz-Expires',
        'X-Amz-Security-Token',
        'X-Amz-Signature',
        'X-Amz-SignedHeaders',
      ].sort(),
    );
    expect(parameters.get('X-Amz-Security-Token')).toBe(lambdaSessionToken);
    expect(signedAt).toEqual(at);
    expect(expiresAt.getTime() - at.getTime()).toBe(14 * 60_000);
  });

  test('Given a session token too long for a 4096-byte token, then signing fails saying so, instead of a 401 later', async () => {
    await expect(
      eksToken({
        clusterName: 'dockercoins',
        region: 'eu-west-1',
        credentials: { ...SESSION, sessionToken: 'x/+='.repeat(300) },
        now: at,
      }),
    ).rejects.toThrow(
      /token for cluster dockercoins is \d+ bytes; EKS refuses tokens over 4096.*session token is 1200 characters/,
    );
  });

  test('Given credentials that expire in 5 minutes, then the token is said to expire with them', async () => {
    const expiration = new Date(at.getTime() + 5 * 60_000);
    const { expiresAt } = await eksToken({
      clusterName: 'dockercoins',
      region: 'eu-west-1',
      credentials: { ...SESSION, expiration },
      now: at,
    });
    expect(expiresAt).toEqual(expiration);
  });
});

describe('createTokenCache', () => {
  function clock(start: string) {
    let now = new Date(start);
    return {
      now: () => now,
      advance: (ms: number) => {
        now = new Date(now.getTime() + ms);
      },
    };
  }
  const key = { clusterName: 'dockercoins', region: 'eu-west-1' };

  test('Given a token, when asked again within 10 minutes, then the same token; at 10 minutes, a new one signed then', async () => {
    const time = clock('2026-05-04T08:00:00Z');
    const cache = createTokenCache({ now: time.now });
    const first = await cache.get(key, () => Promise.resolve(SESSION));
    time.advance(9 * 60_000 + 59_000);
    expect(await cache.get(key, () => Promise.resolve(SESSION))).toBe(first);
    time.advance(1000);
    const second = await cache.get(key, () => Promise.resolve(SESSION));
    expect(second).not.toBe(first);
    expect(decode(second).parameters.get('X-Amz-Date')).toBe('20260504T081000Z');
  });

  test('Given a token, when invalidated (after a 401), then the next get signs a new one; other clusters keep theirs', async () => {
    const time = clock('2026-05-04T08:00:00Z');
    const cache = createTokenCache({ now: time.now });
    const other = { clusterName: 'other', region: 'eu-west-1' };
    const first = await cache.get(key, () => Promise.resolve(SESSION));
    const otherFirst = await cache.get(other, () => Promise.resolve(SESSION));
    expect(otherFirst).not.toBe(first);
    time.advance(1000);
    cache.invalidate(key);
    const second = await cache.get(key, () => Promise.resolve(SESSION));
    expect(second).not.toBe(first);
    expect(await cache.get(other, () => Promise.resolve(SESSION))).toBe(otherFirst);
  });

  test('Given new credentials (another access key id), then a new token at once; a region is its own key', async () => {
    const time = clock('2026-05-04T08:00:00Z');
    const cache = createTokenCache({ now: time.now });
    const first = await cache.get(key, () => Promise.resolve(SESSION));
    const rotated = await cache.get(key, () => Promise.resolve(LONG_TERM));
    expect(decode(rotated).parameters.get('X-Amz-Credential')).toMatch(/^AKIAEXAMPLELONGTERM1\//);
    expect(rotated).not.toBe(first);
    const elsewhere = await cache.get({ ...key, region: 'us-east-1' }, () =>
      Promise.resolve(SESSION),
    );
    expect(decode(elsewhere).url.host).toBe('sts.us-east-1.amazonaws.com');
    expect(await cache.get(key, () => Promise.resolve(SESSION))).toBe(first);
  });

  test('Given credentials expiring in 2 minutes, when asked 2 minutes later, then a new token (the old one died with them)', async () => {
    const time = clock('2026-05-04T08:00:00Z');
    const cache = createTokenCache({ now: time.now });
    const credentials = { ...SESSION, expiration: new Date('2026-05-04T08:02:00Z') };
    const first = await cache.get(key, () => Promise.resolve(credentials));
    time.advance(60_000);
    expect(await cache.get(key, () => Promise.resolve(credentials))).toBe(first);
    time.advance(60_000);
    expect(await cache.get(key, () => Promise.resolve(credentials))).not.toBe(first);
  });
});
