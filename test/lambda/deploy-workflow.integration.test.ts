import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Stack } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { parse as parseYaml } from 'yaml';
import { createClusterConnector, newEksClient } from '../../core/aws/eks';
import { createRetry } from '../../core/retry';
import { Deployer } from '../../lib/constructs/deployer';
import { WORKFLOW_STATES as S } from '../../lib/constructs/deploy-workflow';
import { ANNOTATIONS, DEPLOYER_METRICS } from '../../lib/deployer-contract';
import { formatVerifySettings, VERIFY_ENV } from '../../lib/verify-contract';
import { makeHandler as makeDeployHandler } from '../../lambda/deployer/handler';
import { productionDeps } from '../../lambda/deployer/production';
import { createTelemetry } from '../../lambda/deployer/telemetry';
import { createNotifier, newSnsClient } from '../../lambda/deployer/adapters/sns';
import { makeHandler as makeReportHandler } from '../../lambda/reporter/handler';
import { makeHandler as makeVerifyHandler } from '../../lambda/verifier/handler';
import type { VerifyItem } from '../../lambda/workflow';
import {
  deployerEnvironment,
  detailOf,
  event,
  infoOf,
  setVariables,
  variablesOf,
  type Json,
} from '../fixtures/events/fixtures';
import { newApp } from '../support/app';
import { startEksStub, type EksStub } from '../support/eks-stub';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';
import type { PodFate } from '../support/kube-controller';
import {
  createCodeBuildProject,
  createTopicWithQueue,
  putEcrImage,
  startCodeBuild,
  startMoto,
  startRecordingProxy,
  useEnv,
  MOTO_ACCOUNT,
  type RecordingProxy,
  type RunningMoto,
  type TopicWithQueue,
} from '../support/moto';
import { runWorkflow, synthesizedDefinition, type RunResult } from '../support/workflow';

// The SYNTHESIZED state machine definition run by aws-local-stepfunctions, its Lambda Tasks routed
// to the real handlers (production wiring) against moto (ECR, SNS → SQS), the EKS stub and the
// in-test Kubernetes API server with its Deployment controller and kubelet simulation, whose fake
// clock the Wait states move.

jest.setTimeout(60_000);

const CLUSTER = 'dockercoins';
const NAMESPACE = 'dockercoins';
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };
const PROJECT = 'DockerCoins-hasher';
const REPOSITORY = 'dockercoins/hasher';
const POLL_SECONDS = 5;
const DEADLINE_SECONDS = 180;
const DEPLOYMENT = ((): Json => {
  const deployment = parseYaml(
    readFileSync(path.join(__dirname, '../fixtures/kube/hasher-deployment.yaml'), 'utf8'),
  ) as { metadata: Json };
  delete deployment.metadata.namespace;
  return deployment;
})();

/** The definition, synthesized once (as `cdk synth` writes it into the template). */
const synthesized = (() => {
  const stack = new Stack(newApp(), 'Test');
  const deployer = new Deployer(stack, 'Deployer', {
    services: ['hasher', 'rng', 'webui', 'worker'].map((name) => ({
      service: { name, buildContext: `dockercoins/${name}`, deployment: name, container: name },
      repository: ecr.Repository.fromRepositoryName(stack, `Repo-${name}`, `dockercoins/${name}`),
      project: codebuild.Project.fromProjectName(stack, `Project-${name}`, `DockerCoins-${name}`),
    })),
    environments: [
      {
        name: 'main',
        clusterName: CLUSTER,
        region: undefined,
        namespace: NAMESPACE,
        branches: ['main'],
        releaseTags: false,
      },
    ],
  });
  return synthesizedDefinition(stack, deployer);
})();

let moto: RunningMoto;
let kube: KubeApiServer;
let eks: EksStub;
let restoreEnv: () => void;
let topic: TopicWithQueue;
let registry: string;
/** In front of moto's CodeBuild: the Deploy step confirms every build with BatchGetBuilds. */
let codebuildProxy: RecordingProxy;

beforeAll(async () => {
  moto = await startMoto();
  kube = await startKubeApiServer({ clusterName: CLUSTER, credentials: CREDENTIALS });
  eks = await startEksStub({ clusters: { [CLUSTER]: { endpoint: kube.url, caPem: kube.caPem } } });
  registry = `${MOTO_ACCOUNT}.dkr.ecr.${moto.region}.amazonaws.com`;
  codebuildProxy = await startRecordingProxy(moto.codebuildUrl);
  restoreEnv = useEnv({
    ...moto.env,
    AWS_ENDPOINT_URL_CODEBUILD: codebuildProxy.url,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_ECR: moto.url,
    AWS_ENDPOINT_URL_SNS: moto.url,
    AWS_ENDPOINT_URL_EKS: eks.url,
    POWERTOOLS_METRICS_DISABLED: 'true',
  });
}, 60_000);

afterAll(async () => {
  restoreEnv?.();
  await codebuildProxy?.stop();
  await eks?.stop();
  await kube?.stop();
  await moto?.stop();
});

let executions = 0;
let namespaceOfTest = NAMESPACE;

beforeEach(async () => {
  await moto.reset();
  codebuildProxy.resetBuilds();
  await createCodeBuildProject(moto, PROJECT);
  topic = await createTopicWithQueue(moto, 'deployer');
  kube.beforePatch = undefined;
  kube.putDeployment(DEPLOYMENT, { namespace: NAMESPACE });
  // The Deployment as it runs before the first build: its pods Ready.
  kube.tickUntil(
    () => (kube.deployment(NAMESPACE, 'hasher')?.status?.readyReplicas ?? 0) === 2,
    60,
  );
  kube.resetRequests();
  namespaceOfTest = NAMESPACE;
});

// ---- the handlers, with production wiring ----

function handlers() {
  const logger = new Logger({ serviceName: DEPLOYER_METRICS.serviceName });
  for (const level of ['info', 'warn', 'error', 'debug'] as const) {
    jest.spyOn(logger, level).mockImplementation(() => undefined);
  }
  const env = {
    ...deployerEnvironment(),
    AWS_REGION: moto.region,
    SHIP_REGISTRY: registry,
    SHIP_TOPIC_ARN: topic.topicArn,
    [VERIFY_ENV]: formatVerifySettings({
      pollSeconds: POLL_SECONDS,
      deadlineSeconds: DEADLINE_SECONDS,
      serviceDeadlines: {},
      environmentDeadlines: {},
      environmentPollSeconds: {},
      noRollback: [],
    }),
  };
  const connector = createClusterConnector({ eksClient: newEksClient, defaultRegion: moto.region });
  const metrics = new Metrics({
    namespace: DEPLOYER_METRICS.namespace,
    serviceName: DEPLOYER_METRICS.serviceName,
  });
  const counted = jest.spyOn(metrics, 'addMetric');
  return {
    connector,
    metrics: counted,
    deploy: makeDeployHandler(() => ({
      ...productionDeps(env, createTelemetry({ logger })),
      // The PATCH time, the lease and the deadline all read the cluster's fake clock.
      now: () => kube.now(),
    })),
    verify: makeVerifyHandler(() => ({
      connect: (environment) => connector.connect(environment),
      now: () => kube.now(),
      log: () => undefined,
    })),
    report: makeReportHandler(() => ({
      notifier: createNotifier({
        client: () => newSnsClient(moto.region),
        topicArn: topic.topicArn,
      }),
      logger,
      metrics,
      retry: createRetry(),
    })),
  };
}

let commitCounter = 0;

interface Build {
  readonly number: number;
  readonly commit: string;
  readonly tag: string;
  readonly digest: string;
  readonly image: string;
  readonly event: Json;
}

/** Pushes an image for a build of hasher to moto's ECR and returns its SUCCEEDED event. */
async function hasherBuild(number: number): Promise<Build> {
  commitCounter += 1;
  const commit = `${commitCounter.toString(16).padStart(4, '0')}${'cd34'.repeat(9)}`;
  const tag = commit.slice(0, 12);
  const tags = [tag, `main-${commit.slice(0, 7)}-${number}`];
  const { digest } = await putEcrImage(moto, { repository: REPOSITORY, tags });
  const json = event();
  // A build moto's CodeBuild ran, recorded as our buildspec's run leaves it (see moto.ts).
  const started = await startCodeBuild(moto, PROJECT, commit);
  const buildArn = started.arn;
  json.resources = [buildArn];
  json.region = moto.region;
  // The build ended a minute before the cluster's now: TimeToReady counts from it.
  json.time = new Date(kube.now().getTime() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  detailOf(json)['build-id'] = buildArn;
  infoOf(json)['build-number'] = number + 0.0;
  infoOf(json)['source-version'] = commit;
  setVariables(json, {
    IMAGE_REPOSITORY: `${registry}/${REPOSITORY}`,
    IMAGE_TAG: tag,
    IMAGE_TAGS: tags.join(','),
    IMAGE_DIGEST: digest,
    GIT_COMMIT: commit,
    GIT_REF: 'refs/heads/main',
  });
  codebuildProxy.recordBuild(started.id, {
    buildNumber: number,
    exportedEnvironmentVariables: Object.entries(variablesOf(json)).map(([name, value]) => ({
      name,
      value,
    })),
  });
  return {
    number,
    commit,
    tag,
    digest,
    image: `${registry}/${REPOSITORY}:${tag}@${digest}`,
    event: json,
  };
}

type Handlers = ReturnType<typeof handlers>;

async function run(
  build: Build,
  h: Handlers,
  beforeTask?: Parameters<typeof runWorkflow>[0]['beforeTask'],
): Promise<RunResult> {
  executions += 1;
  return runWorkflow({
    definition: synthesized.definition,
    arns: synthesized.arns,
    handlers: h,
    clock: kube,
    input: build.event,
    executionId: `arn:aws:states:${moto.region}:${MOTO_ACCOUNT}:execution:DeployerWorkflow:run-${executions}`,
    ...(beforeTask === undefined ? {} : { beforeTask }),
  });
}

const hasher = () => kube.deployment(namespaceOfTest, 'hasher')!;
const imageOf = () =>
  hasher().spec.template.spec.containers.find((c) => c.name === 'hasher')?.image;
const annotation = (name: string) => hasher().metadata.annotations?.[name];
const record = () => JSON.parse(annotation(ANNOTATIONS.verification) ?? 'null') as Json | null;
const rejected = () =>
  (JSON.parse(annotation(ANNOTATIONS.rejected) ?? '[]') as { digest: string }[]).map(
    (r) => r.digest,
  );
const imagePatches = () =>
  kube.requests.filter(
    (r) => r.method === 'PATCH' && JSON.stringify(r.body ?? '').includes('"containers"'),
  );
const verdicts = (result: RunResult): VerifyItem[] =>
  (result.output as { verdicts?: VerifyItem[] } | undefined)?.verdicts ??
  (result.entered.filter((e) => e.state === S.report).at(-1)?.input as { verdicts: VerifyItem[] })
    .verdicts;
/** The status, with the error and cause when it failed (what the console shows). */
const outcome = (result: RunResult): { status: string; error?: string; cause?: string } =>
  result.status === 'SUCCEEDED'
    ? { status: result.status }
    : { status: result.status, error: result.error ?? '', cause: result.cause ?? '' };
const ended = (result: RunResult): string[] =>
  result.entered
    .map((e) => e.state)
    .filter((s) =>
      (
        [S.verified, S.rolledBack, S.verifyFailed, S.rollbackFailed, S.stopped] as string[]
      ).includes(s),
    );

/** Runs a good build to its verified end: the Deployment then has a verified image to go back to. */
async function verifiedBuild(h: Handlers, number: number): Promise<Build> {
  const build = await hasherBuild(number);
  const result = await run(build, h);
  expect({ status: result.status, ended: ended(result) }).toEqual({
    status: 'SUCCEEDED',
    ended: [S.verified],
  });
  await topic.receive();
  kube.resetRequests();
  return build;
}

// ---- cases ----

test('happy path: deployed, verified Ready, recorded verified, one notification saying so, the outcome counted', async () => {
  const h = handlers();
  const build = await hasherBuild(100);

  const result = await run(build, h);

  expect(outcome(result)).toEqual({ status: 'SUCCEEDED' });
  expect(ended(result)).toEqual([S.verified]);
  expect(imageOf()).toBe(build.image);
  expect(record()).toMatchObject({ state: 'verified', digest: build.digest, build: 100 });
  expect(annotation(ANNOTATIONS.verifiedImage)).toBe(build.image);
  const [notification, ...more] = await topic.receive();
  expect(more).toEqual([]);
  expect(notification?.subject).toMatch(/verified Ready$/);
  expect(notification?.message).toMatch(/main\/hasher: verified Ready in \d+ s/);
  expect((result.output as { report: { failed: boolean } }).report.failed).toBe(false);
  expect(h.metrics).toHaveBeenCalledWith('Verified', 'Count', 1);
  const ttr = h.metrics.mock.calls.find(([name]) => name === 'TimeToReady');
  // The build ended 60 s before the PATCH; Ready takes a few simulated seconds more.
  expect(ttr?.[2]).toBeGreaterThanOrEqual(60);
  expect(ttr?.[2]).toBeLessThan(60 + 30);
  expect(result.invocations.deploy).toBe(1);
  expect(result.invocations.report).toBe(1);
});

test.each<[string, PodFate, RegExp]>([
  ['image pull failure', { kind: 'image-pull-failure' }, /ErrImagePull|ImagePullBackOff/],
  ['crash loop', { kind: 'crash-loop', exitCode: 2 }, /CrashLoopBackOff|RestartLoop|restart/i],
])(
  '%s → rolled back to the verified image → verified; the digest rejected; reported with the reason',
  async (_name, fate, reason) => {
    const h = handlers();
    const good = await verifiedBuild(h, 200);
    const bad = await hasherBuild(201);
    kube.setFate(bad.image, fate);
    const startedAt = kube.now().getTime() / 1000;

    const result = await run(bad, h);

    expect(outcome(result)).toEqual({ status: 'SUCCEEDED' });
    expect(ended(result)).toEqual([S.rolledBack]);
    expect(result.entered.filter((e) => e.state === S.rollback)).toHaveLength(1);
    expect(imageOf()).toBe(good.image);
    expect(annotation(ANNOTATIONS.rolledBackFrom)).toBe(bad.image);
    expect(rejected()).toEqual([bad.digest]);
    expect(record()).toMatchObject({ state: 'rolled-back' });
    const [item] = verdicts(result);
    expect(item?.failure).toMatchObject({
      state: 'failed',
      message: expect.stringMatching(reason) as unknown,
    });
    // Fast: well within the 180 s deadline (and Kubernetes' 600 s).
    expect(Date.parse(item!.target.startedAt) / 1000 - startedAt).toBeLessThan(90);
    const [notification] = await topic.receive();
    expect(notification?.subject).toMatch(/FAILED, rolled back$/);
    expect(notification?.message).toMatch(reason);
    expect(notification?.message).toContain(`rolled back to ${good.image}, verified Ready in`);
    expect(h.metrics).toHaveBeenCalledWith('RolledBack', 'Count', 1);
  },
);

test('first deploy fails (no verified image to go back to): not rolled back, recorded failed and rejected, the execution fails (the alarm fires)', async () => {
  const h = handlers();
  const bad = await hasherBuild(300);
  kube.setFate(bad.image, { kind: 'image-pull-failure' });

  const result = await run(bad, h);

  expect(result.status).toBe('FAILED');
  expect(result.error).toBe('DeployNotVerified');
  expect(ended(result)).toEqual([S.verifyFailed]);
  expect(imageOf()).toBe(bad.image);
  expect(record()).toMatchObject({ state: 'failed', digest: bad.digest });
  expect(rejected()).toEqual([bad.digest]);
  const [notification] = await topic.receive();
  expect(notification?.subject).toMatch(/FAILED verification$/);
  expect(notification?.message).toMatch(/not rolled back: .*verified/);
  expect(h.metrics).toHaveBeenCalledWith('VerifyFailed', 'Count', 1);
});

test('superseded during verify: a person deploys another image; verification stops, nothing is rolled back', async () => {
  const h = handlers();
  await verifiedBuild(h, 400);
  const slow = await hasherBuild(401);
  kube.setFate(slow.image, { kind: 'never-ready' });
  const other = `${registry}/${REPOSITORY}:manual@sha256:${'9a'.repeat(32)}`;

  const result = await run(slow, h, async (state, count) => {
    if (state === S.check && count === 3) {
      const client = await h.connector.connect({
        name: 'main',
        clusterName: CLUSTER,
        region: undefined,
        namespace: NAMESPACE,
        branches: [],
        releaseTags: false,
      });
      await client.patchDeployment(NAMESPACE, 'hasher', {
        spec: { template: { spec: { containers: [{ name: 'hasher', image: other }] } } },
      });
    }
  });

  expect(outcome(result)).toEqual({ status: 'SUCCEEDED' });
  expect(ended(result)).toEqual([S.stopped]);
  expect(verdicts(result)[0]?.verdict?.state).toBe('superseded');
  expect(result.entered.some((e) => e.state === S.rollback)).toBe(false);
  expect(imageOf()).toBe(other);
});

test('paused during verify: verification stops as changed, nothing is rolled back', async () => {
  const h = handlers();
  await verifiedBuild(h, 500);
  const slow = await hasherBuild(501);
  kube.setFate(slow.image, { kind: 'never-ready' });

  const result = await run(slow, h, async (state, count) => {
    if (state === S.check && count === 2) {
      const client = await h.connector.connect({
        name: 'main',
        clusterName: CLUSTER,
        region: undefined,
        namespace: NAMESPACE,
        branches: [],
        releaseTags: false,
      });
      await client.patchDeployment(NAMESPACE, 'hasher', { spec: { paused: true } });
    }
  });

  expect(outcome(result)).toEqual({ status: 'SUCCEEDED' });
  expect(ended(result)).toEqual([S.stopped]);
  expect(verdicts(result)[0]?.verdict?.state).toBe('changed');
  expect(result.entered.some((e) => e.state === S.rollback)).toBe(false);
  expect(imageOf()).toBe(slow.image);
});

test('rollback fails: the verified image fails too; nothing more is tried, the execution fails', async () => {
  const h = handlers();
  const good = await verifiedBuild(h, 600);
  const bad = await hasherBuild(601);
  kube.setFate(bad.image, { kind: 'image-pull-failure' });

  const result = await run(bad, h, (state) => {
    // By the time of the rollback, the verified image cannot start either (say, a config it needs went).
    if (state === S.rollback) {
      kube.setFate(
        { namespace: NAMESPACE, deployment: 'hasher', image: good.image },
        {
          kind: 'config-error',
          reason: 'CreateContainerConfigError',
        },
      );
    }
  });

  expect(result.status).toBe('FAILED');
  expect(result.error).toBe('DeployNotVerified');
  expect(ended(result)).toEqual([S.rollbackFailed]);
  expect(result.entered.filter((e) => e.state === S.rollback)).toHaveLength(1);
  expect(imageOf()).toBe(good.image);
  expect(record()).toMatchObject({ state: 'failed' });
  const [notification] = await topic.receive();
  expect(notification?.message).toMatch(/rollback to .* FAILED too/);
  expect(h.metrics).toHaveBeenCalledWith('RollbackFailed', 'Count', 1);
});

test('a duplicate event after its digest was rejected deploys nothing: skipped digest-rejected, no PATCH', async () => {
  const h = handlers();
  const good = await verifiedBuild(h, 700);
  const bad = await hasherBuild(701);
  kube.setFate(bad.image, { kind: 'image-pull-failure' });
  expect((await run(bad, h)).status).toBe('SUCCEEDED');
  await topic.receive();
  kube.resetRequests();

  const again = await run(bad, h);

  expect(outcome(again)).toEqual({ status: 'SUCCEEDED' });
  expect(ended(again)).toEqual([]);
  expect(imagePatches()).toEqual([]);
  expect(imageOf()).toBe(good.image);
  const [notification] = await topic.receive();
  expect(notification?.message).toMatch(/digest-rejected|rejected/);
});

test('the same event twice while the first execution verifies: the second skips (verifying), one verdict, at most one rollback', async () => {
  const h = handlers();
  const good = await verifiedBuild(h, 800);
  const bad = await hasherBuild(801);
  kube.setFate(bad.image, { kind: 'image-pull-failure' });
  let second: RunResult | undefined;

  const first = await run(bad, h, async (state, count) => {
    if (state === S.check && count === 2) second = await run(bad, h);
  });

  expect(second?.status).toBe('SUCCEEDED');
  expect(second && ended(second)).toEqual([]);
  expect(second?.invocations.verify).toBe(0);
  expect(outcome(first)).toEqual({ status: 'SUCCEEDED' });
  expect(ended(first)).toEqual([S.rolledBack]);
  expect(imageOf()).toBe(good.image);
  // One rollback PATCH (the deploy's and the rollback's image changes only).
  expect(imagePatches()).toHaveLength(2);
  const notifications = await topic.receive();
  expect(notifications.filter((n) => /rolled back/.test(n.subject ?? ''))).toHaveLength(1);
});

test('transient errors of a Lambda task are retried by the Task: the API server down for a Deploy, a 503 for a Check', async () => {
  const h = handlers();
  const build = await hasherBuild(900);
  // Deploy: every in-process retry of the GET fails (4 attempts), the Task retries the step.
  kube.failNext(4, 503, { method: 'GET' });

  const result = await run(build, h, (state, count) => {
    if (state === S.check && count === 2) kube.failNext(1, 503, { method: 'GET' });
  });

  expect(outcome(result)).toEqual({ status: 'SUCCEEDED' });
  expect(ended(result)).toEqual([S.verified]);
  const retried = result.events
    .filter((e) => e.type === 'StateRetried')
    .map((e) => (e as { state: { name: string } }).state.name);
  expect(retried).toEqual([S.deploy, S.check]);
  expect(result.invocations.deploy).toBe(2);
  expect(record()).toMatchObject({ state: 'verified', digest: build.digest });
});
