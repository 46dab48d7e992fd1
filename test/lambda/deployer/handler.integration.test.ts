import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { ANNOTATIONS, DEPLOYER_METRICS } from '../../../lib/deployer-contract';
import { makeHandler, type DeployerResult } from '../../../lambda/deployer/handler';
import { productionDeps } from '../../../lambda/deployer/production';
import { createTelemetry } from '../../../lambda/deployer/telemetry';
import type { TargetOutcome } from '../../../core/types';
import {
  deployerEnvironment,
  detailOf,
  event,
  infoOf,
  setVariables,
  variablesOf,
  type Json,
} from '../../fixtures/events/fixtures';
import { startEksStub, type EksStub } from '../../support/eks-stub';
import { startKubeApiServer, type KubeApiServer } from '../../support/kube-apiserver';
import {
  createCodeBuildProject,
  createTopicWithQueue,
  getCodeBuild,
  imageManifest,
  putEcrImage,
  startCodeBuild,
  startMoto,
  startRecordingProxy,
  useEnv,
  MOTO_ACCOUNT,
  type Published,
  type RecordingProxy,
  type RunningMoto,
  type TopicWithQueue,
} from '../../support/moto';
import { parse as parseYaml } from 'yaml';

// The real handler with its production wiring (productionDeps: SDK clients, retry policy, EKS
// connector and token) against moto (ECR, CodeBuild, SNS → SQS), the EKS DescribeCluster stub and
// the in-test Kubernetes API server, which only accepts correctly presigned EKS tokens.

jest.setTimeout(20_000);

const CLUSTER = 'dockercoins';
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const PROJECT = 'DockerCoins-hasher';
const REPOSITORY = 'dockercoins/hasher';
/** The hasher Deployment of the fixture, without its namespace (each test puts it in two). */
const DEPLOYMENT = ((): Json => {
  const deployment = parseYaml(
    readFileSync(path.join(__dirname, '../../fixtures/kube/hasher-deployment.yaml'), 'utf8'),
  ) as { metadata: Json };
  delete deployment.metadata.namespace;
  return deployment;
})();

let moto: RunningMoto;
let kube: KubeApiServer;
let eks: EksStub;
let ecrProxy: RecordingProxy;
let codebuildProxy: RecordingProxy;
let restoreEnv: () => void;
let topic: TopicWithQueue;
let registry: string;

beforeAll(async () => {
  moto = await startMoto();
  kube = await startKubeApiServer({ clusterName: CLUSTER, credentials: CREDENTIALS });
  eks = await startEksStub({ clusters: { [CLUSTER]: { endpoint: kube.url, caPem: kube.caPem } } });
  ecrProxy = await startRecordingProxy(moto.url);
  codebuildProxy = await startRecordingProxy(moto.codebuildUrl);
  registry = `${MOTO_ACCOUNT}.dkr.ecr.${moto.region}.amazonaws.com`;
  restoreEnv = useEnv({
    ...moto.env,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_ECR: ecrProxy.url,
    AWS_ENDPOINT_URL_CODEBUILD: codebuildProxy.url,
    AWS_ENDPOINT_URL_SNS: moto.url,
    AWS_ENDPOINT_URL_EKS: eks.url,
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
}, 60_000);

afterAll(async () => {
  restoreEnv?.();
  await ecrProxy?.stop();
  await codebuildProxy?.stop();
  await eks?.stop();
  await kube?.stop();
  await moto?.stop();
});

beforeEach(async () => {
  await moto.reset();
  topic = await createTopicWithQueue(moto, 'deployer');
  kube.beforePatch = undefined;
  kube.putDeployment(DEPLOYMENT, { namespace: 'dockercoins' });
  kube.putDeployment(DEPLOYMENT, { namespace: 'dockercoins-prod' });
  kube.resetRequests();
  kube.resetFaults();
  ecrProxy.calls.length = 0;
  ecrProxy.resetFaults();
  codebuildProxy.resetBuilds();
  codebuildProxy.resetFaults();
  await createCodeBuildProject(moto, PROJECT);
  codebuildProxy.calls.length = 0;
});

// ---- helpers ----

interface LogLine {
  readonly level: string;
  readonly message: string;
  readonly extra: Record<string, unknown>;
}

/** The handler with production collaborators, its logs captured instead of written. */
function deployer(overrides: Record<string, string> = {}) {
  const logger = new Logger({ serviceName: DEPLOYER_METRICS.serviceName });
  const logs: LogLine[] = [];
  for (const level of ['info', 'warn', 'error', 'debug'] as const) {
    jest.spyOn(logger, level).mockImplementation(((message: string, extra?: object) => {
      logs.push({ level, message, extra: { ...extra } });
    }) as never);
  }
  const env = {
    ...deployerEnvironment(),
    AWS_REGION: moto.region,
    SHIP_REGISTRY: registry,
    SHIP_TOPIC_ARN: topic.topicArn,
    ...overrides,
  };
  const handler = makeHandler(() => productionDeps(env, createTelemetry({ logger })));
  return { handler, logs };
}

interface Build {
  readonly number: number;
  /** CodeBuild's id of the build, `<project>:<uuid>`. */
  readonly id: string;
  readonly commit: string;
  readonly tag: string;
  readonly digest: string;
  readonly event: Json;
}

let commitCounter = 0;

/** Pushes an image for a build of hasher to moto's ECR and returns its SUCCEEDED event. */
async function hasherBuild(
  number: number,
  options: { gitRef?: string; releaseTag?: string; push?: boolean } = {},
): Promise<Build> {
  commitCounter += 1;
  const commit = `${commitCounter.toString(16).padStart(4, '0')}${'ab12'.repeat(9)}`;
  const tag = commit.slice(0, 12);
  const tags = [tag, `main-${commit.slice(0, 7)}-${number}`];
  if (options.releaseTag !== undefined) tags.push(options.releaseTag);
  let digest = `sha256:${'5c'.repeat(32)}`;
  if (options.push !== false) {
    digest = (await putEcrImage(moto, { repository: REPOSITORY, tags })).digest;
  } else {
    // The repository exists (another image), but not the tags of this build.
    await putEcrImage(moto, { repository: REPOSITORY, tags: [`other-${number}`] });
  }
  const json = event();
  // A build CodeBuild (moto) knows, recorded as our buildspec's run leaves it: the deployer
  // confirms every event with BatchGetBuilds before it deploys.
  const started = await startCodeBuild(moto, PROJECT, commit);
  json.resources = [started.arn];
  json.region = moto.region;
  detailOf(json)['build-id'] = started.arn;
  infoOf(json)['build-number'] = number + 0.0;
  infoOf(json)['source-version'] = commit;
  setVariables(json, {
    IMAGE_REPOSITORY: `${registry}/${REPOSITORY}`,
    IMAGE_TAG: tag,
    IMAGE_TAGS: tags.join(','),
    IMAGE_DIGEST: digest,
    GIT_COMMIT: commit,
    GIT_REF: options.gitRef ?? 'refs/heads/main',
  });
  codebuildProxy.recordBuild(started.id, {
    buildNumber: number,
    exportedEnvironmentVariables: Object.entries(variablesOf(json)).map(([name, value]) => ({
      name,
      value,
    })),
  });
  return { number, commit, tag, digest, id: started.id, event: json };
}

const hasher = (namespace = 'dockercoins') => kube.deployment(namespace, 'hasher')!;
const imageOf = (namespace = 'dockercoins') =>
  hasher(namespace).spec.template.spec.containers.find((c) => c.name === 'hasher')?.image;
const patches = () => kube.requests.filter((r) => r.method === 'PATCH');
const gets = () => kube.requests.filter((r) => r.method === 'GET');

function done(result: DeployerResult) {
  if (result.status !== 'done') throw new Error(`expected done, got ${JSON.stringify(result)}`);
  return result;
}

function targetsOf(result: DeployerResult): readonly TargetOutcome[] {
  const { outcome } = done(result);
  if (outcome.kind !== 'applied') throw new Error(`expected applied, got ${outcome.kind}`);
  return outcome.targets;
}

/** The one element of a list (fails the test when there are none or several). */
function only<T>(items: readonly T[]): T {
  expect(items).toHaveLength(1);
  return items[0]!;
}

/** Why a target failed. */
function failure(target: TargetOutcome): string {
  if (target.status !== 'failed') throw new Error(`expected failed, got ${target.status}`);
  return target.detail;
}

async function published(): Promise<Published[]> {
  return topic.receive();
}

// ---- cases ----

test('Given a build of hasher on main, then the Deployment runs tag@digest with every annotation, in 1 ECR call, 1 GET and 1 PATCH, and SNS says so', async () => {
  const build = await hasherBuild(55);
  const { handler, logs } = deployer();
  const before = hasher();

  const result = await handler(build.event, { awsRequestId: 'req-1' });

  const target = only(targetsOf(result));
  expect(target.status).toBe('deployed');
  const after = hasher();
  expect(imageOf()).toBe(`${registry}/${REPOSITORY}:${build.tag}@${build.digest}`);
  expect(after.metadata.generation).toBe((before.metadata.generation ?? 0) + 1);
  const annotations = after.metadata.annotations ?? {};
  expect(annotations).toMatchObject({
    [ANNOTATIONS.changeCause]: `hasher ${build.tag} (commit ${build.commit.slice(0, 7)}, build ${PROJECT}#55)`,
    [ANNOTATIONS.commit]: build.commit,
    [ANNOTATIONS.tag]: build.tag,
    [ANNOTATIONS.digest]: build.digest,
    [ANNOTATIONS.buildProject]: PROJECT,
    [ANNOTATIONS.buildNumber]: '55',
    [ANNOTATIONS.buildArn]: `arn:aws:codebuild:${moto.region}:${MOTO_ACCOUNT}:build/${build.id}`,
    [ANNOTATIONS.gitRef]: 'refs/heads/main',
    [ANNOTATIONS.deployedBy]: 'deployer',
  });
  expect(Date.parse(annotations[ANNOTATIONS.deployedAt] ?? '')).toBeGreaterThan(
    Date.now() - 60_000,
  );
  // Untouched neighbours: the sidecar keeps its image.
  expect(after.spec.template.spec.containers.map((c) => c.image)).toContain(
    'docker.io/fluent/fluent-bit:3.1',
  );
  // One DescribeImages to confirm the digest; then the marks that keep what runs from expiring
  // (lib/image-marks.ts): the image it ran before is not in moto (BatchGetImage finds nothing, so
  // no rollback mark, logged), the deployed one is marked (BatchGetImage, PutImage).
  expect(ecrProxy.calls.map((c) => c.action)).toEqual([
    'DescribeImages',
    'BatchGetImage',
    'BatchGetImage',
    'PutImage',
  ]);
  // The build is confirmed with CodeBuild first: one BatchGetBuilds.
  expect(codebuildProxy.calls.map((c) => c.target)).toEqual(['CodeBuild_20161006.BatchGetBuilds']);
  expect(gets()).toHaveLength(1);
  expect(patches()).toHaveLength(1);
  expect(kube.requests.every((r) => r.status === 200 && r.user === CREDENTIALS.accessKeyId)).toBe(
    true,
  );
  expect(eks.requests.at(-1)).toMatchObject({ clusterName: CLUSTER, service: 'eks' });

  const notification = only(await published());
  expect(notification.subject).toBe(`DockerCoins deploy: hasher ${build.tag} to main`);
  expect(notification.message).toContain('hasher');
  expect(notification.message).toContain('main');
  expect(notification.message).toContain(build.tag);
  expect(notification.message).toContain('6e0de79a1b2c'); // the tag it ran before
  expect(notification.message).toContain(build.commit.slice(0, 7));
  expect(notification.message).toMatch(/https:\/\/[^\s]*codebuild[^\s]*/);
  const deployedLog = only(logs.filter((line) => line.message === 'deployed'));
  expect(deployedLog.level).toBe('info');
  expect(deployedLog.extra).toMatchObject({
    namespace: 'dockercoins',
    deployment: 'hasher',
    generation: after.metadata.generation,
  });
  // Each decision is logged in its one-line form as it is made: the build's, then the target's.
  const plans = logs.filter((line) => line.extra.event === 'plan').map((line) => line.message);
  expect(plans).toHaveLength(2);
  expect(plans[0]).toMatch(
    /^deploy DockerCoins-hasher#55 \(hasher [0-9a-f]{12}, refs\/heads\/main\): /,
  );
  expect(plans[0]).toContain('main/hasher');
  expect(plans[1]).toMatch(/^patch /);
});

test('Given the same event twice, then the second is skipped already-running: no PATCH, no new generation', async () => {
  const build = await hasherBuild(56);
  const { handler } = deployer();
  await handler(build.event);
  const generation = hasher().metadata.generation;
  kube.resetRequests();
  await published();

  const result = await handler(build.event);

  expect(targetsOf(result)).toEqual([
    expect.objectContaining({ status: 'skipped', reason: 'already-running' }),
  ]);
  expect(patches()).toHaveLength(0);
  expect(hasher().metadata.generation).toBe(generation);
  const notification = only(await published());
  expect(notification.subject).toMatch(/unchanged \(already-running\)/);
});

test('Given build 12 deployed, when build 11 arrives late, then it is skipped as older-build and the image stays', async () => {
  const newer = await hasherBuild(12);
  const older = await hasherBuild(11);
  const { handler, logs } = deployer();
  await handler(newer.event);
  const image = imageOf();
  kube.resetRequests();
  logs.length = 0;

  const result = await handler(older.event);

  const plans = logs.filter((line) => line.extra.event === 'plan').map((line) => line.message);
  expect(plans).toEqual([
    expect.stringMatching(/^deploy /),
    expect.stringMatching(/^skip .*older-build/),
  ]);

  expect(targetsOf(result)).toEqual([
    expect.objectContaining({ status: 'skipped', reason: 'older-build' }),
  ]);
  expect(imageOf()).toBe(image);
  expect(image).toContain(newer.digest);
  expect(patches()).toHaveLength(0);
});

test('Given builds 11 and 12 at once, when 12 lands between the GET and PATCH of 11, then 11 gets 409, re-reads, and yields to 12', async () => {
  const older = await hasherBuild(11);
  const newer = await hasherBuild(12);
  const first = deployer();
  const second = deployer();
  let newerResult: DeployerResult | undefined;
  kube.beforePatch = async () => {
    kube.beforePatch = undefined;
    // The other invocation runs to completion while build 11's PATCH is in flight.
    newerResult = await second.handler(newer.event);
  };

  const olderResult = await first.handler(older.event);

  expect(targetsOf(newerResult!)).toEqual([expect.objectContaining({ status: 'deployed' })]);
  expect(targetsOf(olderResult)).toEqual([
    expect.objectContaining({ status: 'skipped', reason: 'older-build' }),
  ]);
  expect(imageOf()).toBe(`${registry}/${REPOSITORY}:${newer.tag}@${newer.digest}`);
  expect(hasher().metadata.annotations?.[ANNOTATIONS.buildNumber]).toBe('12');
  // In order of arrival: 11's PATCH (answered 409 once 12's landed), 12's PATCH; GETs: 11, 12, 11.
  expect(patches().map((r) => r.status)).toEqual([409, 200]);
  expect(gets()).toHaveLength(3);
});

test('Given one 409 from someone else, then the handler re-reads, re-plans and deploys', async () => {
  const build = await hasherBuild(57);
  const { handler } = deployer();
  kube.conflictNext(1);

  const result = await handler(build.event);

  expect(targetsOf(result)).toEqual([expect.objectContaining({ status: 'deployed' })]);
  expect(patches().map((r) => r.status)).toEqual([409, 200]);
  expect(gets()).toHaveLength(2);
  expect(imageOf()).toContain(build.digest);
});

test.each([['GET' as const], ['PATCH' as const]])(
  'Given a 500 once on the %s, then it is retried and deployed',
  async (method) => {
    const build = await hasherBuild(58);
    const { handler, logs } = deployer();
    kube.failNext(1, 500, { method });

    const result = await handler(build.event);

    expect(targetsOf(result)).toEqual([expect.objectContaining({ status: 'deployed' })]);
    expect(imageOf()).toContain(build.digest);
    expect(kube.requests.filter((r) => r.method === method).map((r) => r.status)).toEqual([
      500, 200,
    ]);
    expect(logs.filter((l) => l.message === 'retrying')).toHaveLength(1);
  },
);

test('Given the API server down, then the handler throws (Lambda retries), nothing is patched, and SNS says FAILED', async () => {
  const build = await hasherBuild(59);
  const { handler } = deployer();
  const image = imageOf();
  await kube.down();
  try {
    await expect(handler(build.event)).rejects.toThrow(/deploy incomplete, will be retried/);
  } finally {
    await kube.up();
  }
  expect(imageOf()).toBe(image);
  expect(patches()).toHaveLength(0);
  const notification = only(await published());
  expect(notification.subject).toBe(`DockerCoins deploy FAILED: hasher ${build.tag} in main`);
  expect(notification.message).toMatch(/transient/);
});

test('Given no hasher Deployment (404), then the target fails deployment-missing, reported, not retried', async () => {
  kube.deleteDeployment('dockercoins', 'hasher');
  const build = await hasherBuild(60);
  const { handler } = deployer();

  const result = await handler(build.event);

  const target = only(targetsOf(result));
  expect(target).toMatchObject({ status: 'failed', reason: 'deployment-missing' });
  expect(failure(target)).toMatch(/Deployment dockercoins\/hasher .*does not exist/);
  expect(gets().map((r) => r.status)).toEqual([404]);
  expect(patches()).toHaveLength(0);
  const notification = only(await published());
  expect(notification.subject).toBe(`DockerCoins deploy FAILED: hasher ${build.tag} in main`);
});

test('Given a Deployment without the hasher container, then the target fails container-missing and nothing is patched', async () => {
  const renamed = structuredClone(DEPLOYMENT) as { spec: { template: { spec: Json } } };
  const [container] = renamed.spec.template.spec.containers as { name: string }[];
  container!.name = 'hash';
  kube.putDeployment(renamed, { namespace: 'dockercoins' });
  kube.resetRequests();
  const build = await hasherBuild(61);
  const { handler } = deployer();

  const result = await handler(build.event);

  const target = only(targetsOf(result));
  expect(target).toMatchObject({ status: 'failed', reason: 'container-missing' });
  expect(failure(target)).toMatch(/no container "hasher" \(it has "hash", "log-shipper"\)/);
  expect(patches()).toHaveLength(0);
});

test('Given the built tag is not in ECR, then image-missing, nothing patched, no request to the API server', async () => {
  const build = await hasherBuild(62, { push: false });
  const { handler } = deployer();
  const eksBefore = eks.requests.length;

  const result = await handler(build.event);

  const target = only(targetsOf(result));
  expect(target).toMatchObject({ status: 'failed', reason: 'image-missing' });
  expect(failure(target)).toContain(`${registry}/${REPOSITORY}:${build.tag} does not exist in ECR`);
  expect(kube.requests).toHaveLength(0);
  expect(eks.requests).toHaveLength(eksBefore);
  const notification = only(await published());
  expect(notification.subject).toBe(`DockerCoins deploy FAILED: hasher ${build.tag} in main`);
});

test('Given hasher paused, then skipped paused: no PATCH', async () => {
  kube.patchDeployment('dockercoins', 'hasher', {
    metadata: { annotations: { [ANNOTATIONS.paused]: 'true' } },
  });
  kube.resetRequests();
  const image = imageOf();
  const build = await hasherBuild(63);
  const { handler } = deployer();

  const result = await handler(build.event);

  expect(targetsOf(result)).toEqual([
    expect.objectContaining({ status: 'skipped', reason: 'paused' }),
  ]);
  expect(patches()).toHaveLength(0);
  expect(imageOf()).toBe(image);
});

describe('a release tag that two environments take', () => {
  const environments = JSON.stringify([
    { name: 'staging', clusterName: CLUSTER, namespace: 'dockercoins', releaseTags: true },
    { name: 'prod', clusterName: CLUSTER, namespace: 'dockercoins-prod', releaseTags: true },
  ]);

  test('Given v1.2.0, then both Deployments run v1.2.0@digest, each with its outcome', async () => {
    const build = await hasherBuild(64, { gitRef: 'refs/tags/v1.2.0', releaseTag: 'v1.2.0' });
    const { handler } = deployer({ SHIP_ENVIRONMENTS: environments });

    const result = await handler(build.event);

    const targets = targetsOf(result);
    expect(targets.map((t) => [t.ref.environment.name, t.status])).toEqual([
      ['staging', 'deployed'],
      ['prod', 'deployed'],
    ]);
    for (const namespace of ['dockercoins', 'dockercoins-prod']) {
      expect(imageOf(namespace)).toBe(`${registry}/${REPOSITORY}:v1.2.0@${build.digest}`);
      expect(hasher(namespace).metadata.annotations?.[ANNOTATIONS.tag]).toBe('v1.2.0');
    }
  });

  test('Given prod has no Deployment, then staging is still deployed and prod fails alone', async () => {
    kube.deleteDeployment('dockercoins-prod', 'hasher');
    const build = await hasherBuild(65, { gitRef: 'refs/tags/v1.3.0', releaseTag: 'v1.3.0' });
    const { handler } = deployer({ SHIP_ENVIRONMENTS: environments });

    const result = await handler(build.event);

    expect(targetsOf(result).map((t) => [t.ref.environment.name, t.status])).toEqual([
      ['staging', 'deployed'],
      ['prod', 'failed'],
    ]);
    expect(imageOf('dockercoins')).toBe(`${registry}/${REPOSITORY}:v1.3.0@${build.digest}`);
    const notification = only(await published());
    expect(notification.subject).toBe('DockerCoins deploy FAILED: hasher v1.3.0 in prod');
  });
});

describe('an event without exported variables', () => {
  test('Given a build CodeBuild knows but that exported nothing, then BatchGetBuilds is asked and the event refused naming the missing variable', async () => {
    const started = await startCodeBuild(moto, PROJECT);
    codebuildProxy.recordBuild(started.id, { buildNumber: 55 });
    const json = event();
    json.region = moto.region;
    json.resources = [started.arn];
    detailOf(json)['build-id'] = started.arn;
    delete infoOf(json)['exported-environment-variables'];
    const { handler } = deployer();
    codebuildProxy.calls.length = 0;

    const result = await handler(json);

    // moto records no exported variables for a build.
    expect((await getCodeBuild(moto, started.id))?.exportedEnvironmentVariables ?? []).toEqual([]);
    expect(result).toMatchObject({ status: 'invalid', field: 'SERVICE' });
    expect(result.status === 'invalid' && result.message).toMatch(
      new RegExp(`^SERVICE is missing from build ${started.id}'s exported variables`),
    );
    expect(codebuildProxy.calls.map((c) => c.target)).toEqual([
      'CodeBuild_20161006.BatchGetBuilds',
    ]);
    expect(kube.requests).toHaveLength(0);
    const notification = only(await published());
    expect(notification.subject).toBe('DockerCoins deploy: event refused');
    expect(notification.message).toContain('Field: SERVICE');
  });

  test('Given a build CodeBuild does not know, then refused as unconfirmed (not thrown) naming detail.build-id', async () => {
    const json = event();
    delete infoOf(json)['exported-environment-variables'];
    const { handler } = deployer();

    const result = await handler(json);

    expect(result).toMatchObject({ status: 'unconfirmed', field: 'detail.build-id' });
    expect(result.status === 'unconfirmed' && result.message).toMatch(
      /CodeBuild has no build .* \(BatchGetBuilds found nothing\)/,
    );
    expect(kube.requests).toHaveLength(0);
  });
});

describe('the deployer trusts what CodeBuild says, not what the event says', () => {
  test('Given a forged SUCCEEDED event naming an old digest with build number 999999999999, then it is refused, reported, nothing deployed, and the next real build deploys', async () => {
    const old = await hasherBuild(80);
    const forged = structuredClone(old.event);
    infoOf(forged)['build-number'] = 999999999999;
    const { handler, logs } = deployer();
    const image = imageOf();

    const refused = await handler(forged);

    expect(refused).toMatchObject({
      status: 'unconfirmed',
      field: 'detail.additional-information.build-number',
    });
    expect(refused.status === 'unconfirmed' && refused.message).toMatch(
      /the event says build .* is number 999999999999, CodeBuild says 80/,
    );
    expect(patches()).toHaveLength(0);
    expect(imageOf()).toBe(image);
    const notification = only(await published());
    expect(notification.subject).toBe(
      'DockerCoins deploy: event REFUSED, CodeBuild does not confirm it',
    );
    expect(notification.message).toContain('999999999999');
    expect(
      logs.some((l) => l.level === 'error' && l.message === 'event not confirmed by CodeBuild'),
    ).toBe(true);

    // The real builds after it are not skipped as older-build: nothing recorded build 999999999999.
    const next = await hasherBuild(81);
    expect(only(targetsOf(await handler(next.event))).status).toBe('deployed');
    expect(imageOf()).toContain(next.digest);
  });

  test.each<[string, Record<string, string>, RegExp]>([
    [
      'another digest',
      { IMAGE_DIGEST: `sha256:${'9e'.repeat(32)}` },
      /IMAGE_DIGEST is "sha256:9e9e.*", CodeBuild's record .* says "sha256:/,
    ],
    [
      'a retag as a build',
      { IMAGE_BUILT: 'false' },
      /IMAGE_BUILT is false, CodeBuild's record .* says true/,
    ],
    ['another ref', { GIT_REF: 'refs/heads/hotfix' }, /GIT_REF is "refs\/heads\/hotfix"/],
  ])(
    'Given an event whose variables name %s than CodeBuild recorded, then refused naming the variable',
    async (_name, changes, message) => {
      const build = await hasherBuild(82);
      setVariables(build.event, changes);
      const { handler } = deployer();

      const result = await handler(build.event);

      expect(result).toMatchObject({
        status: 'unconfirmed',
        field: 'detail.additional-information.exported-environment-variables',
      });
      expect(result.status === 'unconfirmed' && result.message).toMatch(message);
      expect(patches()).toHaveLength(0);
    },
  );

  test.each([
    ['FAILED', { buildStatus: 'FAILED' }, /is FAILED, not SUCCEEDED/, 'detail.build-status'],
    [
      'of another project',
      { projectName: 'DockerCoins-rng' },
      /is of project "DockerCoins-rng", not "DockerCoins-hasher"/,
      'detail.project-name',
    ],
  ])(
    'Given CodeBuild says the build is %s, then refused',
    async (_name, fields, message, field) => {
      const build = await hasherBuild(83);
      codebuildProxy.recordBuild(build.id, {
        buildNumber: 83,
        exportedEnvironmentVariables: Object.entries(variablesOf(build.event)).map(
          ([name, value]) => ({ name, value }),
        ),
        ...fields,
      });
      const { handler } = deployer();

      const result = await handler(build.event);

      expect(result).toMatchObject({ status: 'unconfirmed', field });
      expect(result.status === 'unconfirmed' && result.message).toMatch(message);
      expect(patches()).toHaveLength(0);
    },
  );

  test('Given CodeBuild refusing BatchGetBuilds (AccessDenied), then the failure is reported and logged, nothing deployed, and the invocation throws so the event is kept', async () => {
    const build = await hasherBuild(84);
    codebuildProxy.failNext('BatchGetBuilds', 10, {
      status: 400,
      type: 'AccessDeniedException',
      message: 'User is not authorized to perform: codebuild:BatchGetBuilds',
    });
    const { handler, logs } = deployer();

    await expect(handler(build.event)).rejects.toThrow(/codebuild:BatchGetBuilds/);

    expect(patches()).toHaveLength(0);
    expect(ecrProxy.calls).toEqual([]);
    const notification = only(await published());
    expect(notification.subject).toBe(
      'DockerCoins deploy FAILED: the build could not be confirmed with CodeBuild',
    );
    expect(notification.message).toMatch(/AccessDenied|not authorized/);
    expect(logs.some((l) => l.level === 'error' && l.message === 'build lookup failed')).toBe(true);
  });
});

describe('notifications that cannot be published', () => {
  test('Given SNS refusing the publish after a deploy, then the deploy stands (done, deployed), and the failure is logged, not thrown', async () => {
    const build = await hasherBuild(85);
    const { handler, logs } = deployer({
      SHIP_TOPIC_ARN: `arn:aws:sns:${moto.region}:${MOTO_ACCOUNT}:no-such-topic`,
    });

    const result = await handler(build.event);

    expect(only(targetsOf(result)).status).toBe('deployed');
    expect(imageOf()).toContain(build.digest);
    const failed = only(logs.filter((l) => l.message === 'notification not published'));
    expect(failed.level).toBe('error');
    expect(failed.extra.subject).toBe(`DockerCoins deploy: hasher ${build.tag} to main`);
  });
});

test.each([
  ['a FAILED build', (json: Json) => (detailOf(json)['build-status'] = 'FAILED')],
  ['another source', (json: Json) => (json.source = 'aws.codepipeline')],
])('Given %s, then invalid, and no AWS or Kubernetes call but the SNS one', async (_, change) => {
  const json = event();
  change(json);
  const { handler } = deployer();
  const eksBefore = eks.requests.length;

  const result = await handler(json);

  expect(result).toMatchObject({ status: 'invalid' });
  expect(ecrProxy.calls).toEqual([]);
  expect(codebuildProxy.calls).toEqual([]);
  expect(eks.requests).toHaveLength(eksBefore);
  expect(kube.requests).toHaveLength(0);
  const notification = only(await published());
  expect(notification.subject).toBe('DockerCoins deploy: event refused');
});

test('Given SHIP_SERVICES garbled, then every invocation rejects naming SHIP_SERVICES', async () => {
  const build = await hasherBuild(66);
  const { handler } = deployer({ SHIP_SERVICES: 'hasher,,Not A Service!' });

  await expect(handler(build.event)).rejects.toThrow(/SHIP_SERVICES/);
  await expect(handler(build.event)).rejects.toThrow(/SHIP_SERVICES/);
  expect(kube.requests).toHaveLength(0);
  expect(ecrProxy.calls).toEqual([]);
});

describe('faults between the deployer and what it talks to', () => {
  const environments = JSON.stringify([
    { name: 'staging', clusterName: CLUSTER, namespace: 'dockercoins', releaseTags: true },
    { name: 'prod', clusterName: CLUSTER, namespace: 'dockercoins-prod', releaseTags: true },
  ]);

  test('Given ECR throttling DescribeImages twice, then the retry gets through and the build deploys, in three ECR calls', async () => {
    const build = await hasherBuild(70);
    ecrProxy.failNext('DescribeImages', 2);
    const { handler } = deployer();

    const result = await handler(build.event);

    expect(only(targetsOf(result)).status).toBe('deployed');
    expect(ecrProxy.calls.map((c) => c.action)).toEqual([
      'DescribeImages',
      'DescribeImages',
      'DescribeImages',
      // then the marks of what runs and of the rollback target
      'BatchGetImage',
      'BatchGetImage',
      'PutImage',
    ]);
    expect(imageOf()).toBe(`${registry}/${REPOSITORY}:${build.tag}@${build.digest}`);
  });

  test('Given ECR throttling every call, then nothing is patched and the invocation throws, so Lambda retries the event and keeps it', async () => {
    const build = await hasherBuild(71);
    ecrProxy.failNext('DescribeImages', 100);
    const { handler } = deployer();
    const image = imageOf();

    await expect(handler(build.event)).rejects.toThrow(/deploy incomplete, will be retried/);

    expect(patches()).toHaveLength(0);
    expect(imageOf()).toBe(image);
    expect(ecrProxy.calls.length).toBeGreaterThan(1);
    const notification = only(await published());
    expect(notification.subject).toMatch(/FAILED/);
  });

  test('Given a tag that moved to another image since the build (image-mismatch), then nothing is patched and the failure names both digests', async () => {
    const build = await hasherBuild(72);
    // The build's commit tag now names another manifest in ECR (pushed after the build, as a
    // repository without tag immutability allows): not what was built.
    const moved = await putEcrImage(moto, {
      repository: REPOSITORY,
      tags: [build.tag],
      manifest: imageManifest(),
    });
    const { handler } = deployer();
    const image = imageOf();

    const result = await handler(build.event);

    const target = only(targetsOf(result));
    expect(target).toMatchObject({ status: 'failed', reason: 'image-mismatch' });
    expect(failure(target)).toContain(build.digest);
    expect(failure(target)).toContain(moved.digest);
    expect(patches()).toHaveLength(0);
    expect(imageOf()).toBe(image);
  });

  test('Given a transient failure in one of two environments, when the event is retried, then the deployed one is skipped and the other deployed', async () => {
    const build = await hasherBuild(73, { gitRef: 'refs/tags/v1.4.0', releaseTag: 'v1.4.0' });
    const { handler } = deployer({ SHIP_ENVIRONMENTS: environments });
    // staging's PATCH goes through; every try of prod's PATCH gets 503.
    kube.failNext(20, 503, { method: 'PATCH', namespace: 'dockercoins-prod' });

    await expect(handler(build.event)).rejects.toThrow(/deploy incomplete, will be retried/);
    // Each try of prod's PATCH got its 503 (a whole retry round); then the fault clears.
    expect(kube.requests.filter((r) => r.status === 503).length).toBeGreaterThan(1);
    kube.resetFaults();
    expect(imageOf('dockercoins')).toBe(`${registry}/${REPOSITORY}:v1.4.0@${build.digest}`);
    expect(imageOf('dockercoins-prod')).not.toContain(build.digest);

    // The fault clears; Lambda's retry delivers the same event again.
    kube.resetRequests();
    const retried = await handler(build.event);

    expect(targetsOf(retried).map((t) => [t.ref.environment.name, t.status])).toEqual([
      ['staging', 'skipped'],
      ['prod', 'deployed'],
    ]);
    expect(targetsOf(retried)[0]).toMatchObject({ reason: 'already-running' });
    expect(patches().map((r) => r.path)).toEqual([
      expect.stringContaining('/namespaces/dockercoins-prod/deployments/hasher'),
    ]);
    expect(imageOf('dockercoins-prod')).toBe(`${registry}/${REPOSITORY}:v1.4.0@${build.digest}`);
  });
});
