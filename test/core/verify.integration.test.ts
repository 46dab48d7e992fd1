/**
 * Verification and rollback against the in-test API server with its controller simulation (a
 * fake clock, pods whose fate each test sets), through core/kube.ts over HTTPS, as the deployer's
 * verify step and `ship` run them: deployTarget (with verification) → check every 5 simulated
 * seconds → recordVerdict, or applyRollback → check → recordVerdict. The server's authorizer
 * allows exactly what verification needs, and the test asserts nothing else was asked.
 */
import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import {
  ANNOTATIONS,
  type EnvironmentSettings,
  type RejectedDigest,
  type VerificationRecord,
} from '../../lib/deployer-contract';
import { deployTarget } from '../../core/apply';
import { createKubeClient, type HttpsKubeClient } from '../../core/kube';
import { applyRollback, recordVerdict } from '../../core/rollback';
import type { DesiredImage, TargetOutcome, TargetRef, VerifyTarget } from '../../core/types';
import { check, type FailureStrike, type Verdict } from '../../core/verify';
import {
  startKubeApiServer,
  type KubeApiServer,
  type KubeRequestAttributes,
} from '../support/kube-apiserver';

jest.setTimeout(60_000);

const NS = 'dockercoins';
const TOKEN = 'deployer-static-token-0123456789';
const REPO = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher';
const POLL_SECONDS = 5;
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:deploy:first';
const OTHER_EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:deploy:second';

const MAIN: EnvironmentSettings = {
  name: 'main',
  clusterName: 'dockercoins',
  region: undefined,
  namespace: NS,
  branches: ['main'],
  releaseTags: false,
};
const REF: TargetRef = {
  environment: MAIN,
  service: 'hasher',
  target: { deployment: 'hasher', container: 'hasher' },
};

function desired(hex: string, build: number): DesiredImage {
  const tag = hex.repeat(12).slice(0, 12);
  const digest = `sha256:${hex.repeat(64).slice(0, 64)}`;
  return {
    image: `${REPO}:${tag}@${digest}`,
    tag,
    digest,
    commit: hex.repeat(40).slice(0, 40),
    buildProject: 'DockerCoins-hasher',
    buildNumber: build,
    buildArn: undefined,
    gitRef: 'refs/heads/main',
  };
}

const V1 = desired('1', 41);
const V2 = desired('2', 42);
const V3 = desired('3', 43);

/** What verification may do: the deployer's verify identity in its namespace, nothing more. */
const ALLOWED = new Set([
  'get apps deployments',
  'patch apps deployments',
  'list apps replicasets',
  'list  pods',
]);

let kube: KubeApiServer;
let client: HttpsKubeClient;
let asked: KubeRequestAttributes[];

/** The hasher fixture running V1, which an earlier deploy verified (the rollback target). */
function seed(
  options: { verified?: boolean; progressDeadlineSeconds?: number; tick?: boolean } = {},
): void {
  const manifest = parse(
    readFileSync(path.join(__dirname, '../fixtures/kube/hasher-deployment.yaml'), 'utf8'),
  ) as {
    metadata: { annotations: Record<string, string> };
    spec: {
      progressDeadlineSeconds: number;
      template: { spec: { containers: { name: string; image: string }[] } };
    };
  };
  manifest.spec.template.spec.containers[0]!.image = V1.image;
  manifest.spec.progressDeadlineSeconds = options.progressDeadlineSeconds ?? 600;
  Object.assign(manifest.metadata.annotations, {
    [ANNOTATIONS.tag]: V1.tag,
    [ANNOTATIONS.digest]: V1.digest,
    [ANNOTATIONS.commit]: V1.commit,
    [ANNOTATIONS.buildProject]: 'DockerCoins-hasher',
    [ANNOTATIONS.buildNumber]: '41',
    ...(options.verified === false
      ? {}
      : {
          [ANNOTATIONS.verifiedImage]: V1.image,
          [ANNOTATIONS.verifiedBuild]: '41',
          [ANNOTATIONS.verifiedCommit]: V1.commit,
        }),
  });
  kube.deleteDeployment(NS, 'hasher');
  kube.putDeployment(manifest);
  if (options.tick === true) {
    // Pods that the simulated kubelet runs by their fate (completeRollout's are forced Ready).
    kube.tickUntil(
      () =>
        kube.podsOf(NS, 'hasher').length === 2 &&
        kube.deployment(NS, 'hasher')!.status?.readyReplicas === 2,
      30,
      'V1 Ready',
    );
  } else {
    kube.completeRollout(NS, 'hasher');
  }
  asked = [];
}

beforeAll(async () => {
  kube = await startKubeApiServer({
    clusterName: 'dockercoins',
    staticTokens: { [TOKEN]: 'deployer' },
    startTime: new Date('2026-12-06T10:00:00Z'),
    authorize: (request) => {
      asked.push(request);
      return (
        request.user === 'deployer' &&
        request.namespace === NS &&
        ALLOWED.has(`${request.verb} ${request.apiGroup} ${request.resource}`)
      );
    },
  });
  client = createKubeClient({
    endpoint: kube.url,
    caPem: kube.caPem,
    token: () => Promise.resolve(TOKEN),
  });
});

afterAll(async () => {
  client?.close();
  await kube?.stop();
});

afterEach(() => {
  kube.setFate(V1.image, undefined);
  kube.setFate(V2.image, undefined);
  // Verification asked for nothing outside its Role (the authorizer would have said 403).
  expect(asked.filter((r) => !ALLOWED.has(`${r.verb} ${r.apiGroup} ${r.resource}`))).toEqual([]);
});

const deps = {
  clusters: { connect: () => Promise.resolve(client) },
  retry: <T>(operation: () => Promise<T>) => operation(),
  now: () => kube.now(),
};

async function deploy(image: DesiredImage, execution = EXECUTION): Promise<TargetOutcome> {
  return deployTarget(
    REF,
    image,
    deps,
    { deployedBy: 'deployer', verification: { execution, deadlineSeconds: 180 } },
    kube.now(),
  );
}

function verifyTargetOf(outcome: TargetOutcome): VerifyTarget {
  if (outcome.status === 'failed' || outcome.verify === undefined) {
    throw new Error(`nothing to verify: ${JSON.stringify(outcome)}`);
  }
  return outcome.verify;
}

/** The state machine's loop: Wait 5 s, Check, until a verdict; with the simulated seconds taken. */
async function follow(
  target: VerifyTarget,
  onCheck: (checks: number) => void = () => undefined,
): Promise<{ verdict: Verdict; seconds: number; checks: number }> {
  let previous: FailureStrike | undefined;
  const start = kube.now().getTime();
  for (let checks = 1; checks <= 200; checks += 1) {
    kube.tick(POLL_SECONDS);
    onCheck(checks);
    const verdict = await check(client, target, kube.now(), previous);
    if (verdict.state !== 'progressing') {
      return { verdict, seconds: (kube.now().getTime() - start) / 1000, checks };
    }
    previous = verdict.strike;
  }
  throw new Error('no verdict after 200 checks');
}

function annotations(): Record<string, string> {
  return kube.deployment(NS, 'hasher')!.metadata.annotations ?? {};
}
const record = (): VerificationRecord =>
  JSON.parse(annotations()[ANNOTATIONS.verification]!) as VerificationRecord;
const rejected = (): RejectedDigest[] =>
  JSON.parse(annotations()[ANNOTATIONS.rejected] ?? '[]') as RejectedDigest[];
const imageNow = (): string | undefined =>
  kube.deployment(NS, 'hasher')!.spec.template.spec.containers.find((c) => c.name === 'hasher')
    ?.image;

describe('verify against the controller simulation', () => {
  test('Given a good image, when deployed and checked every 5 s, then ready, recorded verified, and it becomes the rollback target', async () => {
    seed();
    kube.setFate(V2.image, { kind: 'ready', afterTicks: 3 });
    const target = verifyTargetOf(await deploy(V2));
    expect(target).toMatchObject({
      image: V2.image,
      digest: V2.digest,
      previousImage: V1.image,
      build: 42,
      phase: 'verify',
      execution: EXECUTION,
      generation: kube.deployment(NS, 'hasher')!.metadata.generation,
    });
    expect(record()).toMatchObject({ state: 'verifying', execution: EXECUTION, digest: V2.digest });

    const { verdict } = await follow(target);
    expect(verdict).toMatchObject({
      state: 'ready',
      message: 'deployment "hasher" successfully rolled out',
    });
    expect(await recordVerdict(client, target, verdict, kube.now())).toMatchObject({
      recorded: true,
    });
    expect(record()).toMatchObject({
      state: 'verified',
      reason: expect.stringMatching(/^verified Ready in \d+ s$/) as unknown,
    });
    expect(annotations()).toMatchObject({
      [ANNOTATIONS.verifiedImage]: V2.image,
      [ANNOTATIONS.verifiedBuild]: '42',
      [ANNOTATIONS.verifiedCommit]: V2.commit,
    });
    // a duplicate event afterwards: nothing to verify
    expect(await deploy(V2, OTHER_EXECUTION)).toMatchObject({
      status: 'skipped',
      reason: 'already-running',
    });
    expect((await deploy(V2, OTHER_EXECUTION)) as { verify?: unknown }).not.toHaveProperty(
      'verify',
    );
  });

  test.each<[string, Parameters<KubeApiServer['setFate']>[1], string[]]>([
    [
      'an image that cannot be pulled',
      { kind: 'image-pull-failure' },
      ['ErrImagePull', 'ImagePullBackOff'],
    ],
    ['a crash loop', { kind: 'crash-loop', exitCode: 2 }, ['CrashLoopBackOff', 'RestartLoop']],
    [
      'a missing ConfigMap',
      { kind: 'config-error', reason: 'CreateContainerConfigError' },
      ['CreateContainerConfigError'],
    ],
    [
      'an invalid image name',
      { kind: 'config-error', reason: 'InvalidImageName' },
      ['InvalidImageName'],
    ],
  ])(
    'Given %s, when verified, then failed within 60 s with the kubelet reason, rolled back to the verified image, the rollback verified, the digest rejected',
    async (_name, fate, kinds) => {
      seed();
      kube.setFate(V2.image, fate);
      const target = verifyTargetOf(await deploy(V2));
      const { verdict, seconds } = await follow(target);
      expect(verdict.state).toBe('failed');
      expect(kinds).toContain((verdict as { kind: string }).kind);
      expect(verdict.message).toMatch(/^pod hasher-[a-z0-9]+-[a-z0-9]+ \w+: .+/);
      expect(seconds).toBeLessThanOrEqual(60);

      const rolled = await applyRollback(client, target, verdict, kube.now());
      if (rolled.status !== 'rolled-back') throw new Error(rolled.message);
      expect(imageNow()).toBe(V1.image);
      expect(rolled.target).toMatchObject({
        phase: 'rollback',
        image: V1.image,
        previousImage: V2.image,
        generation: kube.deployment(NS, 'hasher')!.metadata.generation,
        build: 41,
      });
      expect(annotations()).toMatchObject({
        [ANNOTATIONS.rolledBackFrom]: V2.image,
        [ANNOTATIONS.digest]: V1.digest,
        [ANNOTATIONS.tag]: V1.tag,
        [ANNOTATIONS.changeCause]: expect.stringMatching(
          /^hasher rolled back to 111111111111 \(commit 1111111, build #41\) from 222222222222: /,
        ) as unknown,
      });
      expect(rejected().map((e) => e.digest)).toEqual([V2.digest]);

      const after = await follow(rolled.target);
      expect(after.verdict.state).toBe('ready');
      await recordVerdict(client, rolled.target, after.verdict, kube.now());
      expect(record()).toMatchObject({
        state: 'rolled-back',
        digest: V1.digest,
        execution: EXECUTION,
        reason: expect.stringMatching(
          /^rolled back from 222222222222, verified Ready in \d+ s; why: pod hasher-/,
        ) as unknown,
      });

      // a retry or duplicate of the failed build's event never deploys it again
      expect(await deploy(V2, OTHER_EXECUTION)).toMatchObject({
        status: 'skipped',
        reason: 'digest-rejected',
      });
      expect(imageNow()).toBe(V1.image);
      // a new build (the fix) deploys normally
      expect(await deploy(V3, OTHER_EXECUTION)).toMatchObject({ status: 'deployed' });
    },
  );

  test('Given pods that never become Ready, when verified, then failed at the verify deadline (180 s), not at the 600 s progress deadline', async () => {
    seed();
    kube.setFate(V2.image, { kind: 'never-ready' });
    const target = verifyTargetOf(await deploy(V2));
    const { verdict, seconds } = await follow(target);
    expect(verdict).toMatchObject({ state: 'failed', kind: 'Deadline' });
    expect(verdict.message).toMatch(
      /^not Ready within the verify deadline of 180 s: Waiting for deployment "hasher" rollout to finish/,
    );
    expect(seconds).toBe(180);
  });

  test('Given a progress deadline shorter than the verify deadline, when stuck, then failed ProgressDeadlineExceeded', async () => {
    seed({ progressDeadlineSeconds: 30 });
    kube.setFate(V2.image, { kind: 'never-ready' });
    const target = verifyTargetOf(await deploy(V2));
    const { verdict, seconds } = await follow(target);
    expect(verdict).toMatchObject({ state: 'failed', kind: 'ProgressDeadlineExceeded' });
    expect(seconds).toBeGreaterThan(30);
    expect(seconds).toBeLessThan(60);
  });

  test('Given a first deploy that fails (nothing verified before), when rolled back, then nothing is patched, the failure is recorded and the digest rejected', async () => {
    seed({ verified: false });
    kube.setFate(V2.image, { kind: 'image-pull-failure' });
    const target = verifyTargetOf(await deploy(V2));
    const { verdict } = await follow(target);
    const generation = kube.deployment(NS, 'hasher')!.metadata.generation;
    const rolled = await applyRollback(client, target, verdict, kube.now());
    expect(rolled).toMatchObject({ status: 'none', reason: 'no-verified-image', recorded: true });
    expect(imageNow()).toBe(V2.image);
    expect(record()).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(/^FAILED verification: pod hasher-/) as unknown,
    });
    expect(rejected().map((e) => e.digest)).toEqual([V2.digest]);
    // only annotations changed: the generation moved by one (annotations are copied to ReplicaSets)
    expect(kube.deployment(NS, 'hasher')!.metadata.generation).toBe((generation ?? 0) + 1);
  });

  test('Given a newer deploy during verification, then superseded, and nothing is rolled back', async () => {
    seed();
    kube.setFate(V2.image, { kind: 'image-pull-failure' });
    const target = verifyTargetOf(await deploy(V2));
    const { verdict } = await follow(target, (checks) => {
      if (checks === 1) {
        kube.patchDeployment(NS, 'hasher', {
          spec: { template: { spec: { containers: [{ name: 'hasher', image: V3.image }] } } },
        });
      }
    });
    expect(verdict).toMatchObject({ state: 'superseded', image: V3.image });
    expect(
      await applyRollback(
        client,
        target,
        { state: 'failed', kind: 'Deadline', message: 'x' },
        kube.now(),
      ),
    ).toMatchObject({
      status: 'none',
      reason: 'superseded',
    });
    expect(imageNow()).toBe(V3.image);
  });

  test('Given a person pauses the rollout during verification, then changed, and nothing is rolled back', async () => {
    seed();
    kube.setFate(V2.image, { kind: 'image-pull-failure' });
    const target = verifyTargetOf(await deploy(V2));
    const { verdict } = await follow(target, (checks) => {
      if (checks === 1) kube.patchDeployment(NS, 'hasher', { spec: { paused: true } });
    });
    expect(verdict).toMatchObject({ state: 'changed' });
    expect(verdict.message).toMatch(/paused/);
    await recordVerdict(client, target, verdict, kube.now());
    expect(record()).toMatchObject({ state: 'changed' });
    expect(imageNow()).toBe(V2.image);
  });

  test('Given the rollback fails verification too, then failed, recorded, and nothing more is tried', async () => {
    seed({ tick: true });
    kube.setFate(V2.image, { kind: 'image-pull-failure' });
    const target = verifyTargetOf(await deploy(V2));
    const { verdict } = await follow(target);
    // V1 breaks meanwhile (a dependency it needs went away): its pods crash from now on
    kube.setFate(V1.image, { kind: 'crash-loop' });
    const rolled = await applyRollback(client, target, verdict, kube.now());
    if (rolled.status !== 'rolled-back') throw new Error(rolled.message);
    const after = await follow(rolled.target);
    expect(after.verdict).toMatchObject({ state: 'failed' });
    await recordVerdict(client, rolled.target, after.verdict, kube.now());
    expect(record()).toMatchObject({
      state: 'failed',
      reason: expect.stringMatching(
        /^rollback to 111111111111 FAILED verification: pod /,
      ) as unknown,
    });
    expect(await applyRollback(client, rolled.target, after.verdict, kube.now())).toMatchObject({
      status: 'none',
      reason: 'rollback-failed',
    });
    expect(rejected().map((e) => e.digest)).toEqual([V2.digest]);
  });

  test('Given the same event delivered twice while the first execution verifies, then the second skips (verifying), one verdict, one rollback', async () => {
    seed();
    kube.setFate(V2.image, { kind: 'image-pull-failure' });
    const first = verifyTargetOf(await deploy(V2, EXECUTION));
    expect(await deploy(V2, OTHER_EXECUTION)).toMatchObject({
      status: 'skipped',
      reason: 'verifying',
    });
    const { verdict } = await follow(first);
    const rolled = await applyRollback(client, first, verdict, kube.now());
    expect(rolled.status).toBe('rolled-back');
    // a third delivery, after the rollback: rejected, not deployed, not verified again
    expect(await deploy(V2, OTHER_EXECUTION)).toMatchObject({
      status: 'skipped',
      reason: 'digest-rejected',
    });
  });

  test('Given the digest runs unverified (an older deployer, or ship --no-wait), when its event comes again, then the lease is taken and it is verified', async () => {
    seed();
    kube.patchDeployment(NS, 'hasher', {
      spec: { template: { spec: { containers: [{ name: 'hasher', image: V2.image }] } } },
      metadata: { annotations: { [ANNOTATIONS.digest]: V2.digest, [ANNOTATIONS.tag]: V2.tag } },
    });
    const outcome = await deploy(V2, OTHER_EXECUTION);
    expect(outcome).toMatchObject({ status: 'skipped', reason: 'already-running' });
    const target = verifyTargetOf(outcome);
    expect(target).toMatchObject({ execution: OTHER_EXECUTION, image: V2.image });
    expect(record()).toMatchObject({ state: 'verifying', execution: OTHER_EXECUTION });
    const { verdict } = await follow(target);
    expect(verdict.state).toBe('ready');
  });

  test('Given the first execution died (its lease expired), when the event comes again, then the new execution takes over and the old one is told changed', async () => {
    seed();
    kube.setFate(V2.image, { kind: 'never-ready' });
    const first = verifyTargetOf(await deploy(V2, EXECUTION));
    kube.tick(2 * 180 + 121);
    const second = await deploy(V2, OTHER_EXECUTION);
    expect(verifyTargetOf(second).execution).toBe(OTHER_EXECUTION);
    expect(await check(client, first, kube.now())).toMatchObject({ state: 'changed' });
    expect(
      await recordVerdict(client, first, { state: 'ready', seconds: 1, message: 'x' }, kube.now()),
    ).toEqual({
      recorded: false,
    });
  });
});
