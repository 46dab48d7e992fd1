import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  CreateRepositoryCommand,
  DescribeImagesCommand,
  ECRClient,
  type ImageDetail,
  PutImageCommand,
} from '@aws-sdk/client-ecr';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { RegistryAccessError, type ImageRecord, type ImageSource } from '../../cli/images';
import {
  compareNewestFirst,
  createEcrImageSource,
  createOciImageSource,
  ecrAccessError,
  ecrImageRecord,
  ecrRegistryHost,
  manifestSize,
  ociImageVerifier,
  parseRegistryUrl,
} from '../../cli/registries';
import { PermanentError, TransientError } from '../../core/types';
import { Buildah, fixtureContext } from '../support/buildah';
import {
  imageManifest,
  MOTO_ACCOUNT,
  MOTO_REGION,
  putEcrImage,
  startMoto,
  useEnv,
  type PutImageResult,
  type RunningMoto,
} from '../support/moto';
import {
  freePort,
  startRegistry,
  type RegistryUser,
  type RunningRegistry,
} from '../support/registry';
import { startAwsErrorServer } from '../lambda/deployer/adapters/aws-error-server';

// Both ImageSources against real parts: ECR in moto_server (and, for a refused call, a second
// moto with IAM enforced), OCI in the distribution registry with images buildah built.

const COMMIT_A = '6e0de7938dda5363e2192fe2a2ec39987a3573b0';
const COMMIT_B = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const USER: RegistryUser = { username: 'ship', password: 's3cret' };
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');
const ECR_HOST = `${MOTO_ACCOUNT}.dkr.ecr.${MOTO_REGION}.amazonaws.com`;
const MOTO_CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function rejection(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

// ---- ECR ----

describe('createEcrImageSource (moto ECR)', () => {
  let moto: RunningMoto;
  let restoreEnv: () => void;
  let older: PutImageResult;
  let newer: PutImageResult;
  /** What moto's DescribeImages says, read without the code under test. */
  let raw: Map<string, ImageDetail>;

  /** The source as cli/context.ts builds it: the default SDK client, found through the env. */
  const source = (): ImageSource =>
    createEcrImageSource({
      region: moto.region,
      client: () => new ECRClient({ region: moto.region }),
    });

  beforeAll(async () => {
    moto = await startMoto();
    restoreEnv = useEnv(moto.env);
    older = await putEcrImage(moto, {
      repository: 'dockercoins/hasher',
      tags: ['v1.2.0', '6e0de7938dda', 'main-6e0de79-12'],
    });
    // moto keeps push times in whole seconds: the second image comes in the next second.
    await sleep(1000 - (Date.now() % 1000) + 50);
    newer = await putEcrImage(moto, { repository: 'dockercoins/hasher', tags: ['9f8e7d6c5b4a'] });
    const ecr = new ECRClient({
      endpoint: moto.url,
      region: moto.region,
      credentials: MOTO_CREDENTIALS,
    });
    try {
      // An untagged image (a tag moved away from it), and a repository without images.
      await ecr.send(
        new PutImageCommand({
          repositoryName: 'dockercoins/hasher',
          imageManifest: imageManifest(),
        }),
      );
      await ecr.send(new CreateRepositoryCommand({ repositoryName: 'dockercoins/empty' }));
      const described = await ecr.send(
        new DescribeImagesCommand({ repositoryName: 'dockercoins/hasher' }),
      );
      raw = new Map((described.imageDetails ?? []).map((d) => [d.imageDigest ?? '', d]));
    } finally {
      ecr.destroy();
    }
    await putEcrImage(moto, { repository: 'dockercoins/rng', tags: ['aaaaaaaaaaaa'] });
  });

  afterAll(async () => {
    restoreEnv?.();
    await moto?.stop();
  });

  test('Given three repositories, When listed, Then every name comes back sorted, and host() is the host of their URIs', async () => {
    const ecr = source();
    expect(await ecr.listRepositories()).toEqual([
      'dockercoins/empty',
      'dockercoins/hasher',
      'dockercoins/rng',
    ]);
    expect(older.repositoryUri).toBe(`${ECR_HOST}/dockercoins/hasher`);
    expect(await ecr.host()).toBe(ECR_HOST);
    expect(ecr.label).toBe(`ECR ${MOTO_ACCOUNT} (${MOTO_REGION})`);
  });

  test('Given one digest under three tags, a newer one and an untagged one, When listed, Then one record per tagged digest, newest first, with what ECR says', async () => {
    const progress: [number, number][] = [];
    const images = await source().listImages('dockercoins/hasher', (done, total) =>
      progress.push([done, total]),
    );
    expect(raw.size).toBe(3);
    expect(images).toEqual<ImageRecord[]>([
      {
        repository: 'dockercoins/hasher',
        repositoryUri: `${ECR_HOST}/dockercoins/hasher`,
        digest: newer.digest,
        tags: ['9f8e7d6c5b4a'],
        pushedAt: raw.get(newer.digest)?.imagePushedAt,
        sizeBytes: raw.get(newer.digest)?.imageSizeInBytes,
        revision: undefined,
        scan: undefined,
      },
      {
        repository: 'dockercoins/hasher',
        repositoryUri: `${ECR_HOST}/dockercoins/hasher`,
        digest: older.digest,
        tags: ['6e0de7938dda', 'main-6e0de79-12', 'v1.2.0'],
        pushedAt: raw.get(older.digest)?.imagePushedAt,
        sizeBytes: raw.get(older.digest)?.imageSizeInBytes,
        revision: undefined,
        scan: undefined,
      },
    ]);
    expect(images?.[0]?.pushedAt).toBeInstanceOf(Date);
    expect(images![0]!.pushedAt!.getTime()).toBeGreaterThan(images![1]!.pushedAt!.getTime());
    expect(typeof images?.[0]?.sizeBytes).toBe('number');
    expect(progress).toEqual([[1, 1]]);
  });

  test('Given a tag, When the image is asked by tag or by digest, Then it comes with every tag naming it', async () => {
    const ecr = source();
    const byTag = await ecr.imageByTag('dockercoins/hasher', 'v1.2.0');
    expect(byTag).toMatchObject({
      digest: older.digest,
      tags: ['6e0de7938dda', 'main-6e0de79-12', 'v1.2.0'],
      repositoryUri: `${ECR_HOST}/dockercoins/hasher`,
      pushedAt: raw.get(older.digest)?.imagePushedAt,
    });
    expect(await ecr.imageByDigest('dockercoins/hasher', older.digest)).toEqual(byTag);
  });

  test.each([
    ['a missing tag', 'dockercoins/hasher', { tag: 'nope' }],
    ['a missing digest', 'dockercoins/hasher', { digest: `sha256:${'0'.repeat(64)}` }],
    ['a tag of a missing repository', 'dockercoins/absent', { tag: 'v1.2.0' }],
    [
      'a digest of a missing repository',
      'dockercoins/absent',
      { digest: `sha256:${'0'.repeat(64)}` },
    ],
  ])('Given %s, When asked, Then undefined', async (_case, repository, ref) => {
    const ecr = source();
    const found =
      'tag' in ref
        ? await ecr.imageByTag(repository, ref.tag)
        : await ecr.imageByDigest(repository, ref.digest);
    expect(found).toBeUndefined();
  });

  test('Given a missing repository and an empty one, When listed, Then undefined and []', async () => {
    const ecr = source();
    expect(await ecr.listImages('dockercoins/absent')).toBeUndefined();
    expect(await ecr.listImages('dockercoins/empty')).toEqual([]);
  });

  describe('a call IAM refuses (IAM enforced from here on)', () => {
    let reader: { accessKeyId: string; secretAccessKey: string };

    /** One IAM Query API call, signed with moto's set-up keys. */
    async function iam(params: Record<string, string>): Promise<string> {
      const url = new URL(moto.url);
      const body = new URLSearchParams({ ...params, Version: '2010-05-08' }).toString();
      const request = new HttpRequest({
        method: 'POST',
        protocol: 'http:',
        hostname: url.hostname,
        port: Number(url.port),
        path: '/',
        headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded' },
        body,
      });
      const signed = await new SignatureV4({
        credentials: MOTO_CREDENTIALS,
        region: 'us-east-1',
        service: 'iam',
        sha256: Hash.bind(null, 'sha256'),
      }).sign(request);
      const response = await fetch(moto.url, { method: 'POST', headers: signed.headers, body });
      const text = await response.text();
      if (!response.ok)
        throw new Error(`IAM ${params.Action} answered ${response.status}: ${text}`);
      return text;
    }

    beforeAll(async () => {
      await iam({ Action: 'CreateUser', UserName: 'reader' });
      await iam({
        Action: 'PutUserPolicy',
        UserName: 'reader',
        PolicyName: 'list-only',
        PolicyDocument: JSON.stringify({
          Version: '2012-10-17',
          Statement: [{ Effect: 'Allow', Action: ['ecr:DescribeRepositories'], Resource: '*' }],
        }),
      });
      const key = await iam({ Action: 'CreateAccessKey', UserName: 'reader' });
      reader = {
        accessKeyId: /<AccessKeyId>([^<]+)</.exec(key)?.[1] ?? 'missing',
        secretAccessKey: /<SecretAccessKey>([^<]+)</.exec(key)?.[1] ?? 'missing',
      };
      // From here on moto checks IAM on every call: reset-auth sets how many pass unchecked.
      await motoAuth('0');
    });

    afterAll(async () => {
      await motoAuth('inf');
    });

    /** Sets how many more calls moto lets through without checking IAM. */
    async function motoAuth(count: string): Promise<void> {
      const response = await fetch(`${moto.url}/moto-api/reset-auth`, {
        method: 'POST',
        body: count,
      });
      if (!response.ok) throw new Error(`moto reset-auth answered ${response.status}`);
    }

    test('Given a user allowed DescribeRepositories only, When images are listed, Then the error names the call, the repository and the IAM action on its ARN', async () => {
      const ecr = createEcrImageSource({
        region: moto.region,
        client: () =>
          new ECRClient({ endpoint: moto.url, region: moto.region, credentials: reader }),
      });
      expect(await ecr.listRepositories()).toEqual([
        'dockercoins/empty',
        'dockercoins/hasher',
        'dockercoins/rng',
      ]);
      const error = await rejection(ecr.listImages('dockercoins/hasher'));
      expect(error).toBeInstanceOf(RegistryAccessError);
      expect(error.message).toContain(
        `ECR DescribeImages of dockercoins/hasher (tagged images) in registry ${MOTO_ACCOUNT} (${MOTO_REGION}) failed`,
      );
      expect(error.message).toContain('HTTP 403');
      expect(error.message).toContain(
        `Your IAM identity needs ecr:DescribeImages on arn:aws:ecr:${MOTO_REGION}:${MOTO_ACCOUNT}:repository/dockercoins/hasher.`,
      );
    });
  });
});

describe('createEcrImageSource: pages, and errors in the shape AWS sends them', () => {
  const detail = (n: number, tags: string[]) => ({
    registryId: MOTO_ACCOUNT,
    repositoryName: 'dockercoins/hasher',
    imageDigest: `sha256:${String(n).repeat(64).slice(0, 64)}`,
    imageTags: tags,
    imagePushedAt: 1_790_000_000 + n,
    imageSizeInBytes: 1000 + n,
  });

  test('Given ECR answering in pages (moto ignores maxResults), When listing, Then every page is asked with maxResults 1000 and the TAGGED filter', async () => {
    const pages: Record<string, { items: object[]; nextToken?: string }> = {
      DescribeImages: { items: [detail(1, ['a']), detail(2, ['b'])], nextToken: 'p2' },
      'DescribeImages p2': { items: [detail(3, ['c'])], nextToken: 'p3' },
      'DescribeImages p3': { items: [detail(4, ['d', 'c2'])] },
      DescribeRepositories: {
        items: [{ repositoryName: 'z', repositoryUri: `${ECR_HOST}/z`, registryId: MOTO_ACCOUNT }],
        nextToken: 'r2',
      },
      'DescribeRepositories r2': {
        items: [{ repositoryName: 'a', repositoryUri: `${ECR_HOST}/a` }],
      },
    };
    const requests: { action: string; body: { nextToken?: string } }[] = [];
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const action = String(req.headers['x-amz-target']).split('.').pop() ?? '';
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          nextToken?: string;
        };
        requests.push({ action, body });
        const page = pages[body.nextToken === undefined ? action : `${action} ${body.nextToken}`];
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(
          JSON.stringify({
            [action === 'DescribeImages' ? 'imageDetails' : 'repositories']: page?.items ?? [],
            ...(page?.nextToken === undefined ? {} : { nextToken: page.nextToken }),
          }),
        );
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const ecr = createEcrImageSource({
        region: MOTO_REGION,
        client: () =>
          new ECRClient({
            endpoint: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
            region: MOTO_REGION,
            credentials: MOTO_CREDENTIALS,
          }),
      });
      expect(await ecr.listRepositories()).toEqual(['a', 'z']);
      const progress: [number, number][] = [];
      const images = await ecr.listImages('dockercoins/hasher', (done, total) =>
        progress.push([done, total]),
      );
      expect(images?.map((image) => image.tags)).toEqual([['c2', 'd'], ['c'], ['b'], ['a']]);
      expect(images?.[0]).toMatchObject({
        pushedAt: new Date((1_790_000_000 + 4) * 1000),
        sizeBytes: 1004,
        repositoryUri: `${ECR_HOST}/dockercoins/hasher`,
      });
      expect(progress).toEqual([
        [1, 2],
        [2, 3],
        [3, 3],
      ]);
      const imageCalls = requests.filter((r) => r.action === 'DescribeImages');
      expect(imageCalls.map((r) => r.body.nextToken)).toEqual([undefined, 'p2', 'p3']);
      for (const call of imageCalls) {
        expect(call.body).toMatchObject({
          repositoryName: 'dockercoins/hasher',
          maxResults: 1000,
          filter: { tagStatus: 'TAGGED' },
        });
      }
      expect(requests.filter((r) => r.action === 'DescribeRepositories')).toHaveLength(2);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test.each([
    [
      'AccessDeniedException',
      {
        status: 400,
        type: 'AccessDeniedException',
        message: 'not authorized to perform: ecr:DescribeImages',
      },
      1,
      /DescribeImages of dockercoins\/hasher \(tag v1\.2\.0\) in registry 210987654321 \(eu-west-1\) failed: AccessDeniedException HTTP 400: not authorized.*needs ecr:DescribeImages on arn:aws:ecr:eu-west-1:210987654321:repository\/dockercoins\/hasher\./,
    ],
    [
      'ThrottlingException (the SDK retries it first)',
      { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' },
      2,
      /ThrottlingException HTTP 400: Rate exceeded\. ECR throttled the call, still after the SDK retried it: wait a minute/,
    ],
  ])(
    'Given ECR answering %s, Then a RegistryAccessError says what and the fix',
    async (_case, answer, calls, message) => {
      const server = await startAwsErrorServer(answer);
      try {
        const ecr = createEcrImageSource({
          region: 'eu-west-1',
          registryId: '210987654321',
          client: () =>
            new ECRClient({
              endpoint: server.url,
              region: 'eu-west-1',
              credentials: MOTO_CREDENTIALS,
              maxAttempts: 2,
            }),
        });
        const error = await rejection(ecr.imageByTag('dockercoins/hasher', 'v1.2.0'));
        expect(error).toBeInstanceOf(RegistryAccessError);
        expect(error.message).toMatch(message);
        expect(server.count()).toBe(calls);
      } finally {
        await server.stop();
      }
    },
  );
});

describe('ECR mapping (what moto cannot return)', () => {
  const base: ImageDetail = {
    registryId: MOTO_ACCOUNT,
    repositoryName: 'dockercoins/hasher',
    imageDigest: `sha256:${'a'.repeat(64)}`,
    imageTags: ['v1.2.0', 'main-6e0de79-12', '6e0de7938dda'],
    imagePushedAt: new Date('2026-11-20T10:00:00Z'),
    imageSizeInBytes: 3210411,
    imageManifestMediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  };

  // moto's DescribeImages never reports imageScanStatus or imageScanFindingsSummary (its
  // StartImageScan/DescribeImageScanFindings do not feed them), so scans are tested here.
  test.each<[string, Partial<ImageDetail>, ImageRecord['scan']]>([
    ['no scan', {}, undefined],
    [
      'a finished scan with findings',
      {
        imageScanStatus: { status: 'COMPLETE' },
        imageScanFindingsSummary: { findingSeverityCounts: { HIGH: 2, MEDIUM: 5 } },
      },
      { status: 'COMPLETE', findings: { HIGH: 2, MEDIUM: 5 } },
    ],
    [
      'a scan in progress',
      { imageScanStatus: { status: 'IN_PROGRESS' } },
      { status: 'IN_PROGRESS', findings: {} },
    ],
    [
      'an enhanced (Inspector) scan',
      {
        imageScanStatus: { status: 'ACTIVE' },
        imageScanFindingsSummary: { findingSeverityCounts: { CRITICAL: 1 } },
      },
      { status: 'ACTIVE', findings: { CRITICAL: 1 } },
    ],
    [
      'counts without a status',
      { imageScanFindingsSummary: { findingSeverityCounts: { LOW: 3 } } },
      { status: 'UNKNOWN', findings: { LOW: 3 } },
    ],
  ])('Given %s, When mapped, Then scan is as ECR says', (_case, extra, scan) => {
    expect(ecrImageRecord({ ...base, ...extra }, ECR_HOST).scan).toEqual(scan);
  });

  test("Given an image detail, When mapped, Then tags are sorted by code point, size and push time are ECR's, revision unknown", () => {
    expect(ecrImageRecord(base, ECR_HOST)).toEqual({
      repository: 'dockercoins/hasher',
      repositoryUri: `${ECR_HOST}/dockercoins/hasher`,
      digest: `sha256:${'a'.repeat(64)}`,
      tags: ['6e0de7938dda', 'main-6e0de79-12', 'v1.2.0'],
      pushedAt: new Date('2026-11-20T10:00:00Z'),
      sizeBytes: 3210411,
      revision: undefined,
      scan: undefined,
    });
  });

  test('Given an index (multi-platform image), When mapped, Then it has no size', () => {
    expect(
      ecrImageRecord(
        { ...base, imageManifestMediaType: 'application/vnd.oci.image.index.v1+json' },
        ECR_HOST,
      ).sizeBytes,
    ).toBeUndefined();
  });

  test.each([
    ['eu-west-1', 'eu-west-1.amazonaws.com'],
    ['cn-north-1', 'cn-north-1.amazonaws.com.cn'],
  ])('Given the region %s, Then the registry host ends in %s', (region, suffix) => {
    expect(ecrRegistryHost('123456789012', region)).toBe(`123456789012.dkr.ecr.${suffix}`);
  });

  const named = (name: string, message: string, status?: number): Error =>
    Object.assign(new Error(message), {
      name,
      ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
    });

  test.each([
    [
      'no credentials',
      named('CredentialsProviderError', 'Could not load credentials from any providers'),
      /No AWS credentials were found: set AWS_PROFILE/,
    ],
    ['an expired session', named('ExpiredTokenException', 'expired', 400), /session has expired/],
    [
      'a server error',
      named('ServerException', 'internal', 500),
      /ECR \(or the network to it\) failed/,
    ],
    [
      'no connection',
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }),
      /check the connection to ECR in eu-west-1 \(and AWS_ENDPOINT_URL/,
    ],
    [
      'a refused DescribeRepositories of an unknown account',
      named('AccessDeniedException', 'denied', 400),
      /needs ecr:DescribeRepositories on arn:aws:ecr:eu-west-1:<account>:repository\/\*\./,
    ],
  ])('Given %s, Then the message says the fix', (_case, error, fix) => {
    const mapped = ecrAccessError(
      { operation: 'DescribeRepositories', region: 'eu-west-1', registryId: undefined },
      error,
    );
    expect(mapped).toBeInstanceOf(RegistryAccessError);
    expect(mapped.message).toMatch(
      /^ECR DescribeRepositories in registry <account> \(eu-west-1\) failed: /,
    );
    expect(mapped.message).toMatch(fix);
    expect(mapped.cause).toBe(error);
  });

  test.each([['UnrecognizedClientException'], ['InvalidSignatureException']])(
    'Given %s (a wrong access key or secret), Then every call says the same one thing',
    (name) => {
      const error = named(name, 'The request signature we calculated does not match', 400);
      const messages = [
        ecrAccessError(
          { operation: 'DescribeRepositories', region: 'eu-west-1', registryId: undefined },
          error,
        ).message,
        ecrAccessError(
          {
            operation: 'DescribeImages',
            region: 'eu-west-1',
            registryId: '123456789012',
            repository: 'dockercoins/hasher',
            asked: 'tag v1',
          },
          error,
        ).message,
      ];
      expect(messages[0]).toBe(
        `ECR (eu-west-1) refused your AWS credentials (${name}): the access key is unknown or its secret is ` +
          'wrong. Check AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (aws sts get-caller-identity ' +
          'tells whether they work).',
      );
      expect(messages[1]).toBe(messages[0]);
    },
  );

  test('Given equal push times, Then records are ordered by digest; unknown times come last', () => {
    const record = (digest: string, at: string | undefined): ImageRecord => ({
      ...ecrImageRecord(base, ECR_HOST),
      digest,
      pushedAt: at === undefined ? undefined : new Date(at),
    });
    const sorted = [
      record('sha256:c', undefined),
      record('sha256:b', '2026-01-01T00:00:00Z'),
      record('sha256:a', '2026-01-01T00:00:00Z'),
      record('sha256:d', '2026-02-01T00:00:00Z'),
    ].sort(compareNewestFirst);
    expect(sorted.map((r) => r.digest)).toEqual(['sha256:d', 'sha256:a', 'sha256:b', 'sha256:c']);
  });
});

// ---- OCI distribution registry ----

describe('parseRegistryUrl', () => {
  test.each([
    ['http://127.0.0.1:30500', {}, '127.0.0.1:30500', 'http://127.0.0.1:30500', true],
    [
      'https://registry.example.com/',
      {},
      'registry.example.com',
      'https://registry.example.com',
      true,
    ],
    [
      'HTTPS://Registry.Example.com:5443',
      {},
      'registry.example.com:5443',
      'https://registry.example.com:5443',
      true,
    ],
    ['https://127.0.0.1:5000', {}, '127.0.0.1:5000', 'https://127.0.0.1:5000', true],
    [
      'http://registry.example.com',
      {},
      'registry.example.com',
      'http://registry.example.com',
      true,
    ],
    ['127.0.0.1:30500', {}, '127.0.0.1:30500', 'http://127.0.0.1:30500', false],
    ['localhost:5000', {}, 'localhost:5000', 'http://localhost:5000', false],
    [
      'registry.example.com:5000',
      {},
      'registry.example.com:5000',
      'https://registry.example.com:5000',
      false,
    ],
    [
      'registry.example.com',
      { REGISTRY_INSECURE: 'true' },
      'registry.example.com',
      'http://registry.example.com',
      false,
    ],
  ])('Given %s (env %j), Then host %s at %s', (url, env, host, baseUrl, explicitScheme) => {
    expect(parseRegistryUrl(url, env)).toEqual({ host, baseUrl, explicitScheme });
  });

  test.each([
    [
      'http://127.0.0.1:5000/v2/',
      /has a path, query or fragment: give the registry alone \(127\.0\.0\.1:5000\)/,
    ],
    ['registry.example.com/dockercoins', /has a path, query or fragment/],
    ['registry.example.com?n=1', /has a path, query or fragment/],
    ['ftp://registry.example.com', /has the scheme ftp: give http:\/\/, https:\/\/ or no scheme/],
    [
      'https://ship:secret@registry.example.com',
      /carries credentials: remove them from the URL and give a user with --registry-user/,
    ],
    ['', /has no host/],
    ['http://', /is not a URL|has no host/],
  ])('Given %j, Then it is refused saying why', (url, message) => {
    expect(() => parseRegistryUrl(url, {})).toThrow(RegistryAccessError);
    expect(() => parseRegistryUrl(url, {})).toThrow(message);
  });

  test('Given a bare host and REGISTRY_INSECURE=yes, Then the error names the variable', () => {
    expect(() => parseRegistryUrl('registry.example.com', { REGISTRY_INSECURE: 'yes' })).toThrow(
      /REGISTRY_INSECURE is "yes"/,
    );
  });
});

test('manifestSize: config plus layers; undefined when a size is missing', () => {
  expect(manifestSize({ config: { size: 10 }, layers: [{ size: 100 }, { size: 1000 }] })).toBe(
    1110,
  );
  expect(manifestSize({ config: { size: 10 } })).toBe(10);
  expect(manifestSize({ config: { size: 10 }, layers: [{}] })).toBeUndefined();
  expect(manifestSize({ layers: [{ size: 1 }] })).toBeUndefined();
});

describe('createOciImageSource (distribution registry, buildah images)', () => {
  let buildah: Buildah;
  let open: RunningRegistry;
  let secured: RunningRegistry;
  /** The image a tag names, as the registry itself says (read without registry.js). */
  const views = new Map<string, RegistryView>();

  interface RegistryView {
    digest: string;
    mediaType: string;
    json: {
      config?: { size: number; digest: string };
      layers?: { size: number }[];
      manifests?: { digest: string }[];
    };
    config?: { created: string; config?: { Labels?: Record<string, string> } };
  }

  function headers(user: RegistryUser | undefined): Record<string, string> {
    return user === undefined
      ? {}
      : {
          authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`,
        };
  }

  async function view(
    registry: RunningRegistry,
    repository: string,
    reference: string,
    user?: RegistryUser,
  ): Promise<RegistryView> {
    const base = `${registry.url}/v2/${repository}`;
    const response = await fetch(`${base}/manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT, ...headers(user) },
    });
    if (!response.ok) throw new Error(`GET ${repository}:${reference} answered ${response.status}`);
    const json = (await response.json()) as RegistryView['json'];
    const found: RegistryView = {
      digest: response.headers.get('docker-content-digest') ?? 'missing',
      mediaType: response.headers.get('content-type') ?? 'missing',
      json,
    };
    if (json.config !== undefined) {
      const blob = await fetch(`${base}/blobs/${json.config.digest}`, { headers: headers(user) });
      found.config = (await blob.json()) as RegistryView['config'];
    }
    return found;
  }

  /** Puts the manifest of `from` under `to` as well: the same bytes, so the same digest. */
  async function addTag(
    registry: RunningRegistry,
    repository: string,
    from: string,
    to: string,
  ): Promise<void> {
    const got = await fetch(`${registry.url}/v2/${repository}/manifests/${from}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    const put = await fetch(`${registry.url}/v2/${repository}/manifests/${to}`, {
      method: 'PUT',
      headers: { 'content-type': got.headers.get('content-type') ?? '' },
      body: Buffer.from(await got.arrayBuffer()),
    });
    if (put.status !== 201) throw new Error(`PUT ${repository}:${to} answered ${put.status}`);
  }

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

  /** An env without a docker config, so nothing outside the test lends credentials. */
  const noDockerConfig = (): NodeJS.ProcessEnv => ({
    HOME: tmpdir(),
    DOCKER_CONFIG: mkdtempSync(path.join(tmpdir(), 'ship-no-docker-config-')),
  });

  beforeAll(async () => {
    [open, secured] = await Promise.all([startRegistry(), startRegistry({ users: [USER] })]);
    buildah = new Buildah();
    const base = buildah.baseImage('localhost/ship-registries-base:1');
    const imageA = 'localhost/ship-registries:a';
    const imageB = 'localhost/ship-registries:b';
    buildah.bud(fixtureContext(base, 'A'), imageA, [
      '--label',
      `org.opencontainers.image.revision=${COMMIT_A}`,
    ]);
    buildah.bud(fixtureContext(base, 'B'), imageB, [
      '--label',
      `org.opencontainers.image.revision=${COMMIT_B}`,
    ]);
    // hasher: A under three tags, B, and the base (no revision label) as a third image.
    buildah.push(imageA, `${open.host}/dockercoins/hasher:6e0de7938dda`);
    await addTag(open, 'dockercoins/hasher', '6e0de7938dda', 'v1.2.0');
    await addTag(open, 'dockercoins/hasher', '6e0de7938dda', 'main-6e0de79-12');
    buildah.push(imageB, `${open.host}/dockercoins/hasher:9f8e7d6c5b4a`);
    buildah.push(base, `${open.host}/dockercoins/hasher:base`);
    buildah.push(imageA, `${open.host}/dockercoins/rng:6e0de7938dda`);
    buildah.push(base, `${open.host}/webui:latest`);
    // An index of two platforms, as a multi-platform build pushes it.
    const list = 'localhost/ship-registries-list:1';
    buildah.run(['manifest', 'create', list]);
    buildah.run(['manifest', 'add', '--os', 'linux', '--arch', 'amd64', list, imageA]);
    buildah.run(['manifest', 'add', '--os', 'linux', '--arch', 'arm64', list, imageB]);
    buildah.run([
      'manifest',
      'push',
      '--all',
      '--quiet',
      '--tls-verify=false',
      list,
      `docker://${open.host}/dockercoins/multi:both`,
    ]);
    buildah.push(
      imageA,
      `${secured.host}/dockercoins/hasher:6e0de7938dda`,
      `${USER.username}:${USER.password}`,
    );
    for (const tag of ['6e0de7938dda', '9f8e7d6c5b4a', 'base'])
      views.set(tag, await view(open, 'dockercoins/hasher', tag));
    views.set('both', await view(open, 'dockercoins/multi', 'both'));
  });

  afterAll(async () => {
    await Promise.all([open?.stop(), secured?.stop()]);
  });

  const source = (
    registry: RunningRegistry,
    extra: { pageSize?: number; concurrency?: number } = {},
  ) => createOciImageSource({ url: registry.url, env: noDockerConfig(), ...extra });

  /** The record the registry's own answers call for. */
  function expected(
    repository: string,
    tagKey: string,
    tags: string[],
    revision: string | undefined,
  ): ImageRecord {
    const v = views.get(tagKey)!;
    return {
      repository,
      repositoryUri: `${open.host}/${repository}`,
      digest: v.digest,
      tags,
      pushedAt: new Date(v.config!.created),
      sizeBytes: v.json.config!.size + (v.json.layers ?? []).reduce((sum, l) => sum + l.size, 0),
      revision,
      scan: undefined,
    };
  }

  test('Given the catalog in pages of one (the registry honours n), When listed, Then every Link page is followed and the names are sorted', async () => {
    const first = await fetch(`${open.url}/v2/_catalog?n=1`);
    expect(((await first.json()) as { repositories: string[] }).repositories).toHaveLength(1);
    expect(first.headers.get('link')).toMatch(/rel="next"/);
    const all = ['dockercoins/hasher', 'dockercoins/multi', 'dockercoins/rng', 'webui'];
    expect(await source(open, { pageSize: 1 }).listRepositories()).toEqual(all);
    expect(await source(open).listRepositories()).toEqual(all);
  });

  test('Given three images under five tags, When listed, Then one record per digest, newest first, with the manifest size, the revision label and created', async () => {
    const progress: [number, number][] = [];
    const images = await source(open, { concurrency: 2 }).listImages(
      'dockercoins/hasher',
      (done, total) => progress.push([done, total]),
    );
    const a = expected(
      'dockercoins/hasher',
      '6e0de7938dda',
      ['6e0de7938dda', 'main-6e0de79-12', 'v1.2.0'],
      COMMIT_A,
    );
    const b = expected('dockercoins/hasher', '9f8e7d6c5b4a', ['9f8e7d6c5b4a'], COMMIT_B);
    const base = expected('dockercoins/hasher', 'base', ['base'], undefined);
    expect(new Set([a.digest, b.digest, base.digest]).size).toBe(3);
    // buildah writes `created` when it commits: B was built after A, the base before both.
    expect(images).toEqual([b, a, base]);
    expect(images?.[0]?.sizeBytes).toBeGreaterThan(0);
    // 1 tags list + 5 HEADs + 2 per digest.
    expect(progress.at(-1)).toEqual([12, 12]);
    expect(progress.map(([done]) => done)).toEqual(
      [...progress.map(([done]) => done)].sort((x, y) => x - y),
    );
  });

  test('Given an index, When listed, Then it has no size and the revision and created of its first image', async () => {
    const images = await source(open).listImages('dockercoins/multi');
    const index = views.get('both')!;
    expect(index.json.manifests).toHaveLength(2);
    const a = views.get('6e0de7938dda')!;
    expect(images).toEqual([
      {
        repository: 'dockercoins/multi',
        repositoryUri: `${open.host}/dockercoins/multi`,
        digest: index.digest,
        tags: ['both'],
        pushedAt: new Date(a.config!.created),
        sizeBytes: undefined,
        revision: COMMIT_A,
        scan: undefined,
      },
    ]);
  });

  test('Given a tag, When the image is asked by tag or by digest, Then it comes with every tag naming it', async () => {
    const oci = source(open);
    const a = expected(
      'dockercoins/hasher',
      '6e0de7938dda',
      ['6e0de7938dda', 'main-6e0de79-12', 'v1.2.0'],
      COMMIT_A,
    );
    expect(await oci.imageByTag('dockercoins/hasher', 'v1.2.0')).toEqual(a);
    expect(await oci.imageByDigest('dockercoins/hasher', a.digest)).toEqual(a);
    const b = expected('dockercoins/hasher', '9f8e7d6c5b4a', ['9f8e7d6c5b4a'], COMMIT_B);
    expect(await oci.imageByDigest('dockercoins/hasher', b.digest)).toEqual(b);
    expect(await oci.host()).toBe(open.host);
    expect(oci.label).toBe(`registry ${open.host}`);
  });

  test('Given missing repositories, tags and digests, When asked, Then undefined', async () => {
    const oci = source(open);
    expect(await oci.listImages('dockercoins/absent')).toBeUndefined();
    expect(await oci.imageByTag('dockercoins/hasher', 'nope')).toBeUndefined();
    expect(await oci.imageByTag('dockercoins/absent', 'v1.2.0')).toBeUndefined();
    expect(
      await oci.imageByDigest('dockercoins/hasher', `sha256:${'0'.repeat(64)}`),
    ).toBeUndefined();
    expect(
      await oci.imageByDigest('dockercoins/absent', views.get('base')!.digest),
    ).toBeUndefined();
  });

  test('Given a tag or digest that cannot be one, Then the error says what one looks like', async () => {
    const oci = source(open);
    await expect(oci.imageByTag('dockercoins/hasher', '../x')).rejects.toThrow(
      /"\.\.\/x" is not a tag/,
    );
    await expect(oci.imageByDigest('dockercoins/hasher', 'sha256:abc')).rejects.toThrow(
      /is not a manifest digest/,
    );
    await expect(oci.listImages('Hasher')).rejects.toThrow(/"Hasher" is not a repository name/);
  });

  test('Given a URL with an explicit scheme, Then it is honoured: http://localhost works, https:// to a plain-HTTP registry fails saying HTTPS was tried', async () => {
    const port = open.host.split(':')[1]!;
    expect(
      await createOciImageSource({
        url: `http://localhost:${port}`,
        env: noDockerConfig(),
      }).listRepositories(),
    ).toContain('webui');
    const error = await rejection(
      createOciImageSource({
        url: `https://127.0.0.1:${port}`,
        env: noDockerConfig(),
      }).listRepositories(),
    );
    expect(error).toBeInstanceOf(RegistryAccessError);
    expect(error.message).toContain(
      `registry 127.0.0.1:${port} is unreachable at https://127.0.0.1:${port}`,
    );
    expect(error.message).toContain('HTTPS was tried (as the URL says)');
    expect(error.message).toContain(`give http://127.0.0.1:${port}`);
  });

  test('Given nothing listening on a bare loopback host, Then the error names the URL and that plain HTTP was tried', async () => {
    const port = await freePort();
    const error = await rejection(
      createOciImageSource({ url: `127.0.0.1:${port}`, env: noDockerConfig() }).listImages(
        'dockercoins/hasher',
      ),
    );
    expect(error).toBeInstanceOf(RegistryAccessError);
    expect(error.message).toContain(
      `is unreachable at http://127.0.0.1:${port} while reading the images of dockercoins/hasher`,
    );
    expect(error.message).toContain('ECONNREFUSED');
    expect(error.message).toContain('plain HTTP was tried (the rule for a loopback host)');
  });

  describe('a registry with htpasswd users', () => {
    const sourceWith = (
      credentials: RegistryUser | undefined,
      env: NodeJS.ProcessEnv = noDockerConfig(),
    ) =>
      createOciImageSource({
        url: secured.url,
        env,
        ...(credentials === undefined ? {} : { credentials }),
      });

    test('Given the right credentials, or a docker login for the host, Then the images are read', async () => {
      const digest = (await view(secured, 'dockercoins/hasher', '6e0de7938dda', USER)).digest;
      const given = await sourceWith(USER).listImages('dockercoins/hasher');
      expect(given?.map((image) => [image.digest, image.tags, image.revision])).toEqual([
        [digest, ['6e0de7938dda'], COMMIT_A],
      ]);
      const fromDockerConfig = sourceWith(undefined, {
        HOME: tmpdir(),
        DOCKER_CONFIG: dockerConfig({ [secured.host]: USER }),
      });
      expect(await fromDockerConfig.imageByTag('dockercoins/hasher', '6e0de7938dda')).toMatchObject(
        {
          digest,
        },
      );
      expect(await fromDockerConfig.listRepositories()).toEqual(['dockercoins/hasher']);
    });

    test('Given a wrong password, Then the error names the user and how to give another', async () => {
      const error = await rejection(
        sourceWith({ username: USER.username, password: 'wrong' }).listImages('dockercoins/hasher'),
      );
      expect(error).toBeInstanceOf(RegistryAccessError);
      // One message whatever was being read (issue 18): the same from the catalog as from a tags list.
      const expected =
        `registry ${secured.host} refused the password of user "ship": check SHIP_REGISTRY_PASSWORD ` +
        '(or give another user with --registry-user <name>).';
      expect(error.message).toBe(expected);
      const fromCatalog = await rejection(
        sourceWith({ username: USER.username, password: 'wrong' }).listRepositories(),
      );
      expect(fromCatalog.message).toBe(expected);
    });

    test('Given a wrong password in the docker config, Then the error names the user, the file and docker login', async () => {
      const config = dockerConfig({
        [secured.host]: { username: USER.username, password: 'wrong' },
      });
      const error = await rejection(
        sourceWith(undefined, { HOME: tmpdir(), DOCKER_CONFIG: config }).listRepositories(),
      );
      expect(error.message).toContain(
        `refused the credentials of user "ship" that docker login stored (${path.join(config, 'config.json')})`,
      );
      expect(error.message).toContain(`run docker login ${secured.host} again`);
    });

    test('Given no credentials at all, Then the error says none were given and how to give them', async () => {
      const env = noDockerConfig();
      const error = await rejection(
        sourceWith(undefined, env).imageByTag('dockercoins/hasher', 'v1'),
      );
      expect(error).toBeInstanceOf(RegistryAccessError);
      expect(error.message).toContain(
        `registry ${secured.host} requires credentials and none were given ` +
          `(${path.join(env.DOCKER_CONFIG!, 'config.json')} has none for ${secured.host})`,
      );
      expect(error.message).toContain(
        'give a user with --registry-user <name> and its password in SHIP_REGISTRY_PASSWORD',
      );
    });
  });

  describe('ociImageVerifier', () => {
    const image = { registryId: MOTO_ACCOUNT, repository: 'dockercoins/hasher' };

    test('Given tags that exist and one that does not, Then each digest in the order asked, undefined for the missing one', async () => {
      const verifier = ociImageVerifier(source(open));
      expect(await verifier.digestsOf(image, ['9f8e7d6c5b4a', 'nope', 'v1.2.0'])).toEqual([
        views.get('9f8e7d6c5b4a')!.digest,
        undefined,
        views.get('6e0de7938dda')!.digest,
      ]);
      expect(
        await verifier.digestsOf({ ...image, repository: 'dockercoins/absent' }, ['a', 'b']),
      ).toEqual([undefined, undefined]);
      expect(await verifier.digestsOf(image, [])).toEqual([]);
    });

    test('Given refused credentials, Then PermanentError forbidden; given no registry, Then TransientError', async () => {
      const refused = await rejection(
        ociImageVerifier(
          createOciImageSource({
            url: secured.url,
            env: noDockerConfig(),
            credentials: { username: USER.username, password: 'wrong' },
          }),
        ).digestsOf(image, ['6e0de7938dda']),
      );
      expect(refused).toBeInstanceOf(PermanentError);
      expect((refused as PermanentError).reason).toBe('forbidden');
      expect(refused.message).toContain(`refused the credentials of user "ship"`);
      const unreachable = await rejection(
        ociImageVerifier(
          createOciImageSource({ url: `127.0.0.1:${await freePort()}`, env: noDockerConfig() }),
        ).digestsOf(image, ['6e0de7938dda']),
      );
      expect(unreachable).toBeInstanceOf(TransientError);
      expect(unreachable.message).toContain('ECONNREFUSED');
    });
  });
});
