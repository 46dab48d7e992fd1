import { Metrics } from '@aws-lambda-powertools/metrics';
import { DescribeImagesCommand } from '@aws-sdk/client-ecr';
import {
  imageMarksOf,
  markDeployedImages,
  newEcrClient,
} from '../../../../lambda/deployer/adapters/ecr';
import type {
  BuildRecord,
  DeployOutcome,
  DesiredImage,
  RunningImage,
  TargetOutcome,
} from '../../../../core/types';
import { createTelemetry } from '../../../../lambda/deployer/telemetry';
import { DEPLOYER_METRICS, type EnvironmentSettings } from '../../../../lib/deployer-contract';
import { putEcrImage, startMoto, useEnv, type RunningMoto } from '../../../support/moto';

// The marks of running and rollback images, put into moto_server's ECR by the production client.

let moto: RunningMoto;
let restoreEnv: () => void;

beforeAll(async () => {
  moto = await startMoto();
  restoreEnv = useEnv(moto.env);
});

afterAll(async () => {
  restoreEnv();
  await moto.stop();
});

const PROD: EnvironmentSettings = {
  name: 'prod',
  clusterName: 'dockercoins',
  region: undefined,
  namespace: 'dockercoins',
  branches: ['main'],
  releaseTags: true,
};
const STAGING: EnvironmentSettings = { ...PROD, name: 'staging', namespace: 'staging' };

function record(repositoryUri: string, registryId: string, digest: string): BuildRecord {
  const repository = repositoryUri.slice(repositoryUri.indexOf('/') + 1);
  return {
    buildArn: 'arn:aws:codebuild:eu-west-1:123456789012:build/DockerCoins-rng:1',
    buildId: 'DockerCoins-rng:1',
    project: 'DockerCoins-rng',
    service: 'rng',
    buildNumber: 7,
    region: 'eu-west-1',
    account: registryId,
    finishedAt: new Date('2026-12-06T12:00:00Z'),
    logsLink: undefined,
    repositoryUri,
    repository,
    registryId,
    imageTag: '6e0de7938dda',
    imageTags: ['6e0de7938dda'],
    digest,
    commit: '6e0de7938dda5363e2192fe2a2ec39987a3573b0',
    gitRef: 'refs/heads/main',
    built: true,
  };
}

function desired(build: BuildRecord): DesiredImage {
  return {
    image: `${build.repositoryUri}:${build.imageTag}@${build.digest}`,
    tag: build.imageTag,
    digest: build.digest,
    commit: build.commit,
    buildProject: build.project,
    buildNumber: build.buildNumber,
    buildArn: build.buildArn,
    gitRef: build.gitRef,
  };
}

function running(image: string, digest: string | undefined): RunningImage {
  return {
    image,
    tag: undefined,
    digest,
    commit: undefined,
    buildProject: undefined,
    buildNumber: undefined,
  };
}

function target(
  build: BuildRecord,
  environment: EnvironmentSettings,
  status: 'deployed' | 'already-running' | 'paused' | 'older-build' | 'failed',
  from: RunningImage | undefined,
  deployment = 'rng',
): TargetOutcome {
  const ref = { environment, service: 'rng', target: { deployment, container: 'rng' } };
  const to = desired(build);
  if (status === 'deployed') return { status, ref, from, to, generation: 2, latencyMs: 1 };
  if (status === 'failed') return { status, ref, reason: 'transient', to, detail: 'down' };
  return { status: 'skipped', ref, reason: status, from, to, detail: '' };
}

/** Every tag of the repository by digest, as DescribeImages reports them. */
async function tagsByDigest(repository: string): Promise<Record<string, string[]>> {
  const ecr = newEcrClient(moto.region);
  try {
    const answer = await ecr.send(new DescribeImagesCommand({ repositoryName: repository }));
    return Object.fromEntries(
      (answer.imageDetails ?? []).map((d) => [
        d.imageDigest ?? '',
        [...(d.imageTags ?? [])].sort(),
      ]),
    );
  } finally {
    ecr.destroy();
  }
}

function logger() {
  const warnings: { message: string; fields: Record<string, unknown> }[] = [];
  return {
    warnings,
    warn: (message: string, fields: Record<string, unknown>) => warnings.push({ message, fields }),
  };
}

describe('markDeployedImages (moto ECR)', () => {
  test('Given deploys over two environments, then the marks follow what runs and what ran before, and move on the next deploy', async () => {
    const repository = 'dockercoins/rng';
    const one = await putEcrImage(moto, { repository, tags: ['111111111111'] });
    const two = await putEcrImage(moto, { repository, tags: ['222222222222'] });
    const three = await putEcrImage(moto, { repository, tags: ['333333333333'] });
    const client = () => newEcrClient(moto.region);

    // When build two is deployed over one in prod, and is already running in staging
    const buildTwo = record(two.repositoryUri, two.registryId, two.digest);
    const first: DeployOutcome = {
      kind: 'applied',
      build: buildTwo,
      targets: [
        target(
          buildTwo,
          PROD,
          'deployed',
          running(`${one.repositoryUri}:111111111111@${one.digest}`, one.digest),
        ),
        target(
          buildTwo,
          STAGING,
          'already-running',
          running(`${two.repositoryUri}@${two.digest}`, two.digest),
        ),
      ],
    };
    const log = logger();
    const report = await markDeployedImages(client, first, { logger: log });

    // Then prod's rollback target is one, two runs in both; nothing failed
    expect(report.failed).toEqual([]);
    expect(report.marked.map((m) => m.tag)).toEqual([
      'previous.prod.rng.rng',
      'deployed.prod.rng.rng',
      'deployed.staging.rng.rng',
    ]);
    expect(await tagsByDigest(repository)).toEqual({
      [one.digest]: ['111111111111', 'previous.prod.rng.rng'],
      [two.digest]: ['222222222222', 'deployed.prod.rng.rng', 'deployed.staging.rng.rng'],
      [three.digest]: ['333333333333'],
    });

    // When build three is deployed over two in prod (staging paused)
    const buildThree = record(three.repositoryUri, three.registryId, three.digest);
    const second: DeployOutcome = {
      kind: 'applied',
      build: buildThree,
      targets: [
        target(
          buildThree,
          PROD,
          'deployed',
          running(`${two.repositoryUri}:222222222222@${two.digest}`, two.digest),
        ),
        target(
          buildThree,
          STAGING,
          'paused',
          running(`${two.repositoryUri}@${two.digest}`, two.digest),
        ),
      ],
    };
    expect((await markDeployedImages(client, second, { logger: log })).failed).toEqual([]);

    // Then both prod marks moved; staging's stays on two; one keeps only its commit tag
    expect(await tagsByDigest(repository)).toEqual({
      [one.digest]: ['111111111111'],
      [two.digest]: ['222222222222', 'deployed.staging.rng.rng', 'previous.prod.rng.rng'],
      [three.digest]: ['333333333333', 'deployed.prod.rng.rng'],
    });
    // And marking what is already marked again is no failure
    expect((await markDeployedImages(client, second, { logger: log })).failed).toEqual([]);
    expect(log.warnings).toEqual([]);
  });

  test('Given a digest the repository does not hold, then the mark fails, is logged, and nothing throws', async () => {
    const repository = 'dockercoins/hasher';
    const image = await putEcrImage(moto, { repository, tags: ['444444444444'] });
    const build = record(image.repositoryUri, image.registryId, `sha256:${'f'.repeat(64)}`);
    const outcome: DeployOutcome = {
      kind: 'applied',
      build,
      targets: [target(build, PROD, 'deployed', undefined)],
    };
    const log = logger();

    const report = await markDeployedImages(() => newEcrClient(moto.region), outcome, {
      logger: log,
    });

    expect(report.marked).toEqual([]);
    expect(report.failed).toHaveLength(1);
    expect(report.failed[0]?.reason).toMatch(
      /ECR has no image sha256:f{64} in 123456789012\/dockercoins\/hasher/,
    );
    expect(log.warnings).toEqual([
      {
        message: 'image mark not put: the lifecycle policy may expire this image',
        fields: expect.objectContaining({
          tag: 'deployed.prod.rng.rng',
          environment: 'prod',
        }) as unknown,
      },
    ]);
  });

  test('Given a repository whose tags are all immutable (the Registry stack not yet updated), then moving a mark fails and says what to deploy', async () => {
    // moto does not enforce tag immutability: ECR's answer to PutImage of an existing immutable
    // tag (ImageTagAlreadyExistsException) is injected into the production client; BatchGetImage
    // still goes to moto.
    const image = await putEcrImage(moto, {
      repository: 'dockercoins/immutable',
      tags: ['555555555555'],
    });
    const client = () => {
      const ecr = newEcrClient(moto.region);
      ecr.middlewareStack.add(
        (next, context) => (args) => {
          if (context.commandName === 'PutImageCommand') {
            throw Object.assign(
              new Error('The image tag already exists and cannot be overwritten'),
              {
                name: 'ImageTagAlreadyExistsException',
              },
            );
          }
          return next(args);
        },
        { step: 'initialize' },
      );
      return ecr;
    };
    const build = record(image.repositoryUri, image.registryId, image.digest);
    const outcome: DeployOutcome = {
      kind: 'applied',
      build,
      targets: [target(build, PROD, 'deployed', undefined)],
    };

    const report = await markDeployedImages(client, outcome);

    expect(report.failed.map((f) => f.reason)).toEqual([
      expect.stringMatching(
        /refused to move deployed\.prod\.rng\.rng .*immutable without the exclusions deployed\.\* and previous\.\*/,
      ),
    ]);
  });

  test('Given no ECR client can be made, then every mark fails and nothing throws', async () => {
    const build = record(
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/rng',
      '123456789012',
      `sha256:${'a'.repeat(64)}`,
    );
    const outcome: DeployOutcome = {
      kind: 'applied',
      build,
      targets: [target(build, PROD, 'deployed', undefined)],
    };
    const report = await markDeployedImages(() => {
      throw new Error('no region');
    }, outcome);
    expect(report.failed.map((f) => f.reason)).toEqual(['no ECR client: Error: no region']);
  });
});

describe('imageMarksOf: which marks a deploy outcome calls for', () => {
  const uri = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/rng';
  const build = record(uri, '123456789012', `sha256:${'b'.repeat(64)}`);
  const old = `sha256:${'c'.repeat(64)}`;

  test.each([
    [
      'deployed over an image of the repository',
      'deployed',
      running(`${uri}:x@${old}`, old),
      ['previous.prod.rng.rng', 'deployed.prod.rng.rng'],
    ],
    [
      'deployed over an image of another repository (no rollback mark there)',
      'deployed',
      running(`docker.io/library/rng@${old}`, old),
      ['deployed.prod.rng.rng'],
    ],
    [
      'deployed over an image without a known digest',
      'deployed',
      running(`${uri}:x`, undefined),
      ['deployed.prod.rng.rng'],
    ],
    ['deployed where nothing ran', 'deployed', undefined, ['deployed.prod.rng.rng']],
    [
      'already running',
      'already-running',
      running(`${uri}@${build.digest}`, build.digest),
      ['deployed.prod.rng.rng'],
    ],
    ['paused: what runs did not change', 'paused', running(`${uri}:x@${old}`, old), []],
    ['older build: what runs did not change', 'older-build', running(`${uri}:x@${old}`, old), []],
    ['failed', 'failed', undefined, []],
  ] as const)('%s', (_name, status, from, tags) => {
    const outcome: DeployOutcome = {
      kind: 'applied',
      build,
      targets: [target(build, PROD, status, from)],
    };
    expect(imageMarksOf(outcome).map((m) => m.tag)).toEqual(tags);
  });

  test('a skipped build marks nothing; each Deployment of a service has its own marks', () => {
    expect(
      imageMarksOf({ kind: 'skipped', build, reason: 'not-a-deploy-ref', detail: '' }),
    ).toEqual([]);
    const outcome: DeployOutcome = {
      kind: 'applied',
      build,
      targets: [
        target(build, PROD, 'deployed', undefined, 'rng'),
        target(build, PROD, 'deployed', undefined, 'rng-canary'),
      ],
    };
    expect(imageMarksOf(outcome)).toEqual([
      expect.objectContaining({
        tag: 'deployed.prod.rng.rng',
        digest: build.digest,
        repository: 'dockercoins/rng',
      }),
      expect.objectContaining({ tag: 'deployed.prod.rng-canary.rng', digest: build.digest }),
    ]);
  });
});

describe('telemetry.recordImageMarks: failures are counted', () => {
  test('Given two failed marks, then ImageMarkFailures counts 2; none failed, then no metric', () => {
    const metrics = new Metrics({ namespace: 'Test', serviceName: 'test' });
    // The per-environment breakdown goes out at once, as single metrics: keep it off the output.
    jest.spyOn(metrics, 'singleMetric').mockReturnValue(new Metrics({ namespace: 'Test' }));
    const telemetry = createTelemetry({ metrics });
    const mark = {
      registryId: '123456789012',
      repository: 'dockercoins/rng',
      kind: 'deployed' as const,
      environment: 'prod',
      tag: 'deployed.prod.rng.rng',
      digest: `sha256:${'d'.repeat(64)}`,
    };

    telemetry.recordImageMarks({ marked: [mark], failed: [] });
    expect(metrics.hasStoredMetrics()).toBe(false);
    telemetry.recordImageMarks({
      marked: [],
      failed: [
        { mark, reason: 'down' },
        { mark, reason: 'down' },
      ],
    });
    expect(metrics.serializeMetrics()).toMatchObject({ [DEPLOYER_METRICS.imageMarkFailures]: 2 });
  });
});
