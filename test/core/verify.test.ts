/**
 * judge(): every verdict and every failure reason, from Deployments, ReplicaSets and pods shaped
 * as the API server returns them (apps/v1, v1; the kubelet's waiting reasons and messages).
 */
import { ANNOTATIONS, type VerificationRecord } from '../../lib/deployer-contract';
import { verifyTargets } from '../../core/apply';
import type {
  BuildRecord,
  DeployOutcome,
  Deployment,
  DesiredImage,
  Pod,
  ReplicaSet,
  TargetRef,
  VerifyTarget,
} from '../../core/types';
import { describeVerdict, judge, newReplicaSet, type FailureStrike } from '../../core/verify';

const REPO = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher';
const NEW_DIGEST = `sha256:${'b'.repeat(64)}`;
const OLD_DIGEST = `sha256:${'a'.repeat(64)}`;
const NEW_IMAGE = `${REPO}:6e0de7938dda@${NEW_DIGEST}`;
const OLD_IMAGE = `${REPO}:5a1b2c3d4e5f@${OLD_DIGEST}`;
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:deploy:1f2e';
const DEPLOYMENT_UID = '7a1d6c7e-0000-4000-8000-000000000001';
const NEW_RS_UID = '7a1d6c7e-0000-4000-8000-000000000002';
const OLD_RS_UID = '7a1d6c7e-0000-4000-8000-000000000003';
const NEW_HASH = '5c9f7d8b6';
const OLD_HASH = '6d4b8c9f7';
const STARTED = new Date('2026-12-06T10:00:00Z');
const at = (seconds: number): Date => new Date(STARTED.getTime() + seconds * 1000);

const target: VerifyTarget = {
  environment: 'main',
  namespace: 'dockercoins',
  clusterName: 'dockercoins',
  deployment: 'hasher',
  container: 'hasher',
  image: NEW_IMAGE,
  digest: NEW_DIGEST,
  generation: 5,
  previousImage: OLD_IMAGE,
  build: 42,
  startedAt: STARTED.toISOString(),
  deadlineSeconds: 180,
  phase: 'verify',
  execution: EXECUTION,
};

function record(overrides: Partial<VerificationRecord> = {}): string {
  const value: VerificationRecord = {
    state: 'verifying',
    image: NEW_IMAGE,
    digest: NEW_DIGEST,
    build: 42,
    execution: EXECUTION,
    generation: 5,
    since: STARTED.toISOString(),
    leaseUntil: at(480).toISOString(),
    reason: 'verifying 6e0de7938dda',
    ...overrides,
  };
  return JSON.stringify(value);
}

interface DeploymentShape {
  image?: string;
  generation?: number;
  observedGeneration?: number | undefined;
  replicas?: number;
  updated?: number;
  ready?: number;
  available?: number;
  total?: number;
  paused?: boolean;
  annotations?: Record<string, string | undefined>;
  progressing?: { status: string; reason: string; message: string };
}

/** A Deployment mid-rollout of our image, as GET /apis/apps/v1/…/deployments/hasher returns it. */
function deployment(shape: DeploymentShape = {}): Deployment {
  const replicas = shape.replicas ?? 2;
  const annotations: Record<string, string> = {
    'deployment.kubernetes.io/revision': '3',
    [ANNOTATIONS.verification]: record(),
    [ANNOTATIONS.digest]: NEW_DIGEST,
  };
  for (const [key, value] of Object.entries(shape.annotations ?? {})) {
    if (value === undefined) delete annotations[key];
    else annotations[key] = value;
  }
  const progressing = shape.progressing ?? {
    status: 'True',
    reason: 'ReplicaSetUpdated',
    message: `ReplicaSet "hasher-${NEW_HASH}" is progressing.`,
  };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'hasher',
      namespace: 'dockercoins',
      uid: DEPLOYMENT_UID,
      resourceVersion: '1234',
      generation: shape.generation ?? 5,
      annotations,
    },
    spec: {
      replicas,
      selector: { matchLabels: { app: 'hasher' } },
      ...(shape.paused === undefined ? {} : { paused: shape.paused }),
      template: {
        metadata: { annotations: {} },
        spec: { containers: [{ name: 'hasher', image: shape.image ?? NEW_IMAGE }] },
      },
    },
    status: {
      ...('observedGeneration' in shape
        ? shape.observedGeneration === undefined
          ? {}
          : { observedGeneration: shape.observedGeneration }
        : { observedGeneration: 5 }),
      replicas: shape.total ?? replicas + 1,
      updatedReplicas: shape.updated ?? 1,
      readyReplicas: shape.ready ?? replicas,
      availableReplicas: shape.available ?? replicas,
      unavailableReplicas: 1,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          reason: 'MinimumReplicasAvailable',
          message: 'Deployment has minimum availability.',
        },
        { type: 'Progressing', ...progressing },
      ],
    },
  };
}

const ready = (shape: DeploymentShape = {}): Deployment =>
  deployment({ updated: 2, total: 2, available: 2, ready: 2, ...shape });

function replicaSet(uid: string, hash: string, image: string, revision: string): ReplicaSet {
  return {
    apiVersion: 'apps/v1',
    kind: 'ReplicaSet',
    metadata: {
      name: `hasher-${hash}`,
      namespace: 'dockercoins',
      uid,
      labels: { app: 'hasher', 'pod-template-hash': hash },
      annotations: {
        'deployment.kubernetes.io/desired-replicas': '2',
        'deployment.kubernetes.io/max-replicas': '3',
        'deployment.kubernetes.io/revision': revision,
      },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'Deployment',
          name: 'hasher',
          uid: DEPLOYMENT_UID,
          controller: true,
          blockOwnerDeletion: true,
        } as never,
      ],
    },
    spec: {
      replicas: 1,
      template: { spec: { containers: [{ name: 'hasher', image }] } },
    },
  };
}

const replicaSets = [
  replicaSet(OLD_RS_UID, OLD_HASH, OLD_IMAGE, '2'),
  replicaSet(NEW_RS_UID, NEW_HASH, NEW_IMAGE, '3'),
];

interface ContainerShape {
  waiting?: { reason: string; message?: string };
  running?: boolean;
  restartCount?: number;
  ready?: boolean;
  lastExit?: number;
}

/** A pod of a ReplicaSet, as GET /api/v1/namespaces/dockercoins/pods returns its items. */
function pod(name: string, container: ContainerShape, owner = NEW_RS_UID, hash = NEW_HASH): Pod {
  const state = container.waiting
    ? { waiting: container.waiting }
    : container.running === false
      ? { waiting: { reason: 'ContainerCreating' } }
      : { running: { startedAt: at(5).toISOString() } };
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name,
      namespace: 'dockercoins',
      uid: `pod-${name}`,
      labels: { app: 'hasher', 'pod-template-hash': hash },
      ownerReferences: [
        {
          apiVersion: 'apps/v1',
          kind: 'ReplicaSet',
          name: `hasher-${hash}`,
          uid: owner,
          controller: true,
          blockOwnerDeletion: true,
        } as never,
      ],
    },
    spec: { containers: [{ name: 'hasher', image: NEW_IMAGE }] },
    status: {
      phase: container.waiting?.reason === 'ContainerCreating' ? 'Pending' : 'Running',
      containerStatuses: [
        {
          name: 'hasher',
          image: NEW_IMAGE,
          imageID: '',
          ready: container.ready ?? false,
          started: container.ready ?? false,
          restartCount: container.restartCount ?? 0,
          state,
          lastState:
            container.lastExit === undefined
              ? {}
              : {
                  terminated: {
                    exitCode: container.lastExit,
                    reason: 'Error',
                    finishedAt: at(3).toISOString(),
                  },
                },
        },
      ],
    },
  };
}

const PULL_MESSAGE = `Back-off pulling image "${NEW_IMAGE}"`;
const ERR_PULL_MESSAGE = `rpc error: code = NotFound desc = failed to pull and unpack image "${NEW_IMAGE}": not found`;
const CRASH_MESSAGE = `back-off 20s restarting failed container=hasher pod=hasher-${NEW_HASH}-x7k2p_dockercoins(pod-uid)`;

const strike = (reason: string, count = 1): FailureStrike => ({
  reason,
  pod: `hasher-${NEW_HASH}-x7k2p`,
  container: 'hasher',
  message: 'seen before',
  count,
});

describe('judge: the verdicts', () => {
  test.each<{
    name: string;
    deployment: Deployment | undefined;
    pods?: Pod[];
    now?: Date;
    previous?: FailureStrike;
    state: string;
    kind?: string;
    message: RegExp;
  }>([
    {
      name: 'rolled out on our generation → ready, with the seconds since the PATCH',
      deployment: ready(),
      now: at(41),
      state: 'ready',
      message: /^deployment "hasher" successfully rolled out$/,
    },
    {
      name: 'observedGeneration below ours with counts that look done → never ready',
      deployment: ready({ observedGeneration: 4 }),
      now: at(10),
      state: 'progressing',
      message: /Waiting for deployment spec update to be observed/,
    },
    {
      name: 'observedGeneration absent (a status never written) → never ready',
      deployment: ready({ observedGeneration: undefined }),
      now: at(10),
      state: 'progressing',
      message: /./,
    },
    {
      name: 'still rolling → progressing with kubectl sentence',
      deployment: deployment(),
      now: at(10),
      state: 'progressing',
      message: /1 out of 2 new replicas have been updated/,
    },
    {
      name: 'image replaced by a newer deploy → superseded',
      deployment: deployment({ image: `${REPO}:0123456789ab@sha256:${'c'.repeat(64)}` }),
      state: 'superseded',
      message: /now runs .*0123456789ab.*a newer deploy/,
    },
    {
      name: 'Deployment deleted → changed',
      deployment: undefined,
      state: 'changed',
      message: /was deleted/,
    },
    {
      name: 'kubectl rollout pause → changed',
      deployment: deployment({ paused: true }),
      state: 'changed',
      message: /rollout was paused/,
    },
    {
      name: 'ship pause during verification → changed (the deployer keeps hands off)',
      deployment: deployment({ annotations: { [ANNOTATIONS.paused]: 'true' } }),
      state: 'changed',
      message: /automatic deploys were paused/,
    },
    {
      name: 'spec edited after our PATCH (generation above ours) → changed',
      deployment: deployment({ generation: 6, observedGeneration: 6 }),
      state: 'changed',
      message: /edited after our change \(generation 6, ours 5\)/,
    },
    {
      name: 'edited and already rolled out → still changed, not ready',
      deployment: ready({ generation: 6, observedGeneration: 6 }),
      state: 'changed',
      message: /generation 6/,
    },
    {
      name: 'verification taken by another execution → changed',
      deployment: deployment({
        annotations: { [ANNOTATIONS.verification]: record({ execution: 'arn:other' }) },
      }),
      state: 'changed',
      message: /now names arn:other/,
    },
    {
      name: 'verification record removed → changed',
      deployment: deployment({ annotations: { [ANNOTATIONS.verification]: undefined } }),
      state: 'changed',
      message: /was removed/,
    },
    {
      name: 'verification record about another digest → changed',
      deployment: deployment({
        annotations: { [ANNOTATIONS.verification]: record({ digest: OLD_DIGEST }) },
      }),
      state: 'changed',
      message: /is about sha256:a/,
    },
    {
      name: 'ProgressDeadlineExceeded on our generation → failed',
      deployment: deployment({
        progressing: {
          status: 'False',
          reason: 'ProgressDeadlineExceeded',
          message: `ReplicaSet "hasher-${NEW_HASH}" has timed out progressing.`,
        },
      }),
      state: 'failed',
      kind: 'ProgressDeadlineExceeded',
      message: /exceeded its progress deadline/,
    },
    {
      name: 'ProgressDeadlineExceeded of an older generation (not observed yet) → progressing',
      deployment: deployment({
        observedGeneration: 4,
        progressing: { status: 'False', reason: 'ProgressDeadlineExceeded', message: 'old' },
      }),
      now: at(10),
      state: 'progressing',
      message: /spec update to be observed/,
    },
    {
      name: 'the verify deadline passed → failed Deadline, with the rollout sentence',
      deployment: deployment(),
      pods: [pod(`hasher-${NEW_HASH}-x7k2p`, { running: true, ready: false })],
      now: at(180),
      state: 'failed',
      kind: 'Deadline',
      message: /not Ready within the verify deadline of 180 s: .*1 out of 2 new replicas/,
    },
    {
      name: 'one second before the deadline → progressing',
      deployment: deployment(),
      now: at(179),
      state: 'progressing',
      message: /new replicas/,
    },
    {
      name: 'ready at the deadline → ready (ready wins)',
      deployment: ready(),
      now: at(500),
      state: 'ready',
      message: /successfully rolled out/,
    },
  ])('$name', ({ deployment: d, pods, now, previous, state, kind, message }) => {
    const verdict = judge({
      target,
      deployment: d,
      replicaSets,
      pods: pods ?? [],
      now: now ?? at(10),
      ...(previous === undefined ? {} : { previous }),
    });
    expect(verdict.state).toBe(state);
    if (kind !== undefined) expect(verdict).toMatchObject({ kind });
    expect(verdict.message).toMatch(message);
  });
});

describe('judge: fast failures need graceChecks consecutive checks', () => {
  const pull = (reason: string, message: string): Pod =>
    pod(`hasher-${NEW_HASH}-x7k2p`, { waiting: { reason, message } });

  test.each([
    ['ErrImagePull', ERR_PULL_MESSAGE],
    ['ImagePullBackOff', PULL_MESSAGE],
    ['CrashLoopBackOff', CRASH_MESSAGE],
    ['CreateContainerConfigError', "couldn't find key PASSWORD in ConfigMap dockercoins/hasher"],
    ['CreateContainerError', 'failed to create containerd container: mount error'],
    [
      'InvalidImageName',
      `Failed to apply default image tag "${NEW_IMAGE}": invalid reference format`,
    ],
  ])(
    '%s: first sight progressing with a strike, second sight failed with the kubelet message',
    (reason, message) => {
      const first = judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [pull(reason, message)],
        now: at(10),
      });
      expect(first).toMatchObject({
        state: 'progressing',
        strike: { reason, pod: `hasher-${NEW_HASH}-x7k2p`, container: 'hasher', message, count: 1 },
      });
      const strikeOne = (first as { strike: FailureStrike }).strike;
      const second = judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [pull(reason, message)],
        now: at(15),
        previous: strikeOne,
      });
      expect(second).toEqual({
        state: 'failed',
        kind: reason,
        pod: `hasher-${NEW_HASH}-x7k2p`,
        message: `pod hasher-${NEW_HASH}-x7k2p ${reason}: ${message}`,
      });
      expect(describeVerdict(second)).toBe(
        `FAILED verification: pod hasher-${NEW_HASH}-x7k2p ${reason}: ${message}`,
      );
    },
  );

  test('ErrImagePull then ImagePullBackOff (the kubelet alternates them) counts as one failure', () => {
    const verdict = judge({
      target,
      deployment: deployment(),
      replicaSets,
      pods: [pull('ImagePullBackOff', PULL_MESSAGE)],
      now: at(15),
      previous: strike('ErrImagePull'),
    });
    expect(verdict).toMatchObject({ state: 'failed', kind: 'ImagePullBackOff' });
  });

  test('a transient pull error that clears resets the strike', () => {
    const verdict = judge({
      target,
      deployment: deployment(),
      replicaSets,
      pods: [pod(`hasher-${NEW_HASH}-x7k2p`, { running: true, ready: false })],
      now: at(15),
      previous: strike('ErrImagePull'),
    });
    expect(verdict.state).toBe('progressing');
    expect(verdict).not.toHaveProperty('strike');
  });

  test('a different failure kind starts its own count', () => {
    const verdict = judge({
      target,
      deployment: deployment(),
      replicaSets,
      pods: [pull('CreateContainerConfigError', 'no key')],
      now: at(15),
      previous: strike('ImagePullBackOff'),
    });
    expect(verdict).toMatchObject({ state: 'progressing', strike: { count: 1 } });
  });

  test('graceChecks 3 needs a third sight', () => {
    const settings = { graceChecks: 3, restartLimit: 3 };
    const input = {
      target,
      deployment: deployment(),
      replicaSets,
      pods: [pull('ImagePullBackOff', PULL_MESSAGE)],
      settings,
    };
    expect(judge({ ...input, now: at(15), previous: strike('ImagePullBackOff', 1) })).toMatchObject(
      {
        state: 'progressing',
        strike: { count: 2 },
      },
    );
    expect(judge({ ...input, now: at(20), previous: strike('ImagePullBackOff', 2) })).toMatchObject(
      {
        state: 'failed',
      },
    );
  });

  test('graceChecks 1 fails on first sight', () => {
    expect(
      judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [pull('ImagePullBackOff', PULL_MESSAGE)],
        now: at(10),
        settings: { graceChecks: 1, restartLimit: 3 },
      }),
    ).toMatchObject({ state: 'failed', kind: 'ImagePullBackOff' });
  });

  test('pods of the old ReplicaSet failing are not ours', () => {
    const old = pod(
      `hasher-${OLD_HASH}-aaaaa`,
      { waiting: { reason: 'CrashLoopBackOff', message: 'old' } },
      OLD_RS_UID,
      OLD_HASH,
    );
    expect(
      judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [old],
        now: at(10),
        previous: strike('CrashLoopBackOff'),
      }),
    ).toMatchObject({ state: 'progressing' });
  });

  test('a pod labelled with our hash but controlled by another ReplicaSet is not ours', () => {
    const stray = pod(
      `hasher-${NEW_HASH}-zzzzz`,
      { waiting: { reason: 'ImagePullBackOff', message: 'x' } },
      'another-uid',
    );
    expect(
      judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [stray],
        now: at(10),
        settings: { graceChecks: 1, restartLimit: 3 },
      }),
    ).toMatchObject({ state: 'progressing' });
  });

  test('ContainerCreating is progress, not failure', () => {
    const creating = pod(`hasher-${NEW_HASH}-x7k2p`, { waiting: { reason: 'ContainerCreating' } });
    expect(
      judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [creating],
        now: at(10),
        settings: { graceChecks: 1, restartLimit: 3 },
      }),
    ).toEqual({ state: 'progressing', message: expect.stringMatching(/new replicas/) as unknown });
  });

  test('pod failures of a generation not yet observed are not judged', () => {
    expect(
      judge({
        target,
        deployment: deployment({ observedGeneration: 4 }),
        replicaSets,
        pods: [pull('ImagePullBackOff', PULL_MESSAGE)],
        now: at(10),
        settings: { graceChecks: 1, restartLimit: 3 },
      }),
    ).toMatchObject({ state: 'progressing' });
  });

  test('the Deadline verdict names the last failure seen', () => {
    const verdict = judge({
      target,
      deployment: deployment(),
      replicaSets,
      pods: [pull('ImagePullBackOff', PULL_MESSAGE)],
      now: at(200),
      settings: { graceChecks: 5, restartLimit: 3 },
    });
    expect(verdict).toMatchObject({
      state: 'failed',
      kind: 'Deadline',
      pod: `hasher-${NEW_HASH}-x7k2p`,
    });
    expect(verdict.message).toMatch(
      /last seen: pod hasher-5c9f7d8b6-x7k2p ImagePullBackOff: Back-off pulling/,
    );
  });
});

describe('judge: restart loops', () => {
  test('restartCount at the limit, running but not ready → RestartLoop with the last exit', () => {
    const looping = pod(`hasher-${NEW_HASH}-x7k2p`, {
      running: true,
      restartCount: 3,
      lastExit: 1,
    });
    const first = judge({
      target,
      deployment: deployment(),
      replicaSets,
      pods: [looping],
      now: at(30),
    });
    expect(first).toMatchObject({
      state: 'progressing',
      strike: { reason: 'RestartLoop', count: 1 },
    });
    const second = judge({
      target,
      deployment: deployment(),
      replicaSets,
      pods: [looping],
      now: at(35),
      previous: (first as { strike: FailureStrike }).strike,
    });
    expect(second).toMatchObject({ state: 'failed', kind: 'RestartLoop' });
    expect(second.message).toMatch(
      /restarted 3 times; last: terminated with exit code 1 \(Error\)/,
    );
  });

  test('below the limit, running between two crashes, after a CrashLoopBackOff sight → the loop goes on', () => {
    const between = pod(`hasher-${NEW_HASH}-x7k2p`, {
      running: true,
      restartCount: 2,
      lastExit: 1,
    });
    expect(
      judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [between],
        now: at(30),
        previous: strike('CrashLoopBackOff'),
      }),
    ).toMatchObject({ state: 'failed', kind: 'CrashLoopBackOff' });
  });

  test('below the limit, restarted once and running, no earlier sight → not a failure', () => {
    const once = pod(`hasher-${NEW_HASH}-x7k2p`, { running: true, restartCount: 1, lastExit: 1 });
    expect(
      judge({ target, deployment: deployment(), replicaSets, pods: [once], now: at(30) }),
    ).toEqual({
      state: 'progressing',
      message: expect.any(String) as unknown,
    });
  });

  test('restarted often but ready → not a failure', () => {
    const fine = pod(`hasher-${NEW_HASH}-x7k2p`, {
      running: true,
      restartCount: 5,
      lastExit: 1,
      ready: true,
    });
    expect(
      judge({
        target,
        deployment: deployment(),
        replicaSets,
        pods: [fine],
        now: at(30),
        settings: { graceChecks: 1, restartLimit: 3 },
      }),
    ).toMatchObject({ state: 'progressing' });
  });
});

describe('newReplicaSet', () => {
  test('the one with the Deployment revision and our image', () => {
    expect(newReplicaSet(deployment(), replicaSets, target)?.metadata.name).toBe(
      `hasher-${NEW_HASH}`,
    );
  });

  test('before the controller writes the revision: the newest with our image', () => {
    const d = deployment({ annotations: { 'deployment.kubernetes.io/revision': '2' } });
    expect(newReplicaSet(d, replicaSets, target)?.metadata.name).toBe(`hasher-${NEW_HASH}`);
  });

  test('a ReplicaSet not controlled by the Deployment is ignored', () => {
    const foreign = {
      ...replicaSets[1]!,
      metadata: { ...replicaSets[1]!.metadata, ownerReferences: [] },
    };
    expect(newReplicaSet(deployment(), [replicaSets[0]!, foreign], target)).toBeUndefined();
  });
});

describe('who verifies', () => {
  test('Given ship verifies its own rollback (which pauses automatic deploys in the same PATCH), then the paused annotation does not stop it', () => {
    const shipTarget = { ...target, execution: 'ship:alice' };
    const d = ready({
      annotations: {
        [ANNOTATIONS.paused]: 'true',
        [ANNOTATIONS.verification]: record({ execution: 'ship:alice' }),
      },
    });
    expect(
      judge({ target: shipTarget, deployment: d, replicaSets, pods: [], now: at(12) }),
    ).toEqual({
      state: 'ready',
      seconds: 12,
      message: 'deployment "hasher" successfully rolled out',
    });
  });
});

describe('verifyTargets: the Deploy step output', () => {
  test('Given deployed, leased, skipped and failed targets, then only those with a verify, in order', () => {
    const ref = {} as TargetRef;
    const to = {} as DesiredImage;
    const leased = { ...target, execution: 'arn:lease' };
    const outcome: DeployOutcome = {
      kind: 'applied',
      build: {} as BuildRecord,
      targets: [
        {
          status: 'deployed',
          ref,
          from: undefined,
          to,
          generation: 5,
          latencyMs: 1,
          verify: target,
        },
        { status: 'deployed', ref, from: undefined, to, generation: 5, latencyMs: 1 },
        {
          status: 'skipped',
          ref,
          reason: 'already-running',
          from: undefined,
          to,
          detail: '',
          verify: leased,
        },
        { status: 'skipped', ref, reason: 'verifying', from: undefined, to, detail: '' },
        { status: 'failed', ref, reason: 'transient', to, detail: '' },
      ],
    };
    expect(verifyTargets(outcome)).toEqual([target, leased]);
    expect(
      verifyTargets({
        kind: 'skipped',
        build: {} as BuildRecord,
        reason: 'not-a-deploy-ref',
        detail: '',
      }),
    ).toEqual([]);
  });
});
