import { isRolloutFinished, rolloutStatus, type RolloutStatus } from '../../core/rollout';
import type { Deployment } from '../../core/types';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';

// kubectl's DeploymentStatusViewer (k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go),
// case by case, with its sentences.

function deployment(
  generation: number | undefined,
  status: Record<string, unknown> | undefined,
  spec: { replicas?: number; paused?: boolean } = { replicas: 3 },
): Deployment {
  return {
    metadata: { name: 'hasher', ...(generation === undefined ? {} : { generation }) },
    spec,
    ...(status === undefined ? {} : { status }),
  };
}

const condition = (type: string, status: string, reason: string): Record<string, string> => ({
  type,
  status,
  reason,
});
const deadlineExceeded = condition('Progressing', 'False', 'ProgressDeadlineExceeded');
const WAITING = 'Waiting for deployment "hasher" rollout to finish: ';

describe('rolloutStatus: judged as kubectl rollout status judges', () => {
  test.each<[string, Deployment, RolloutStatus['state'], string]>([
    [
      'a generation not observed yet, whatever the counts say',
      deployment(5, {
        observedGeneration: 4,
        replicas: 3,
        updatedReplicas: 3,
        availableReplicas: 3,
      }),
      'progressing',
      'Waiting for deployment spec update to be observed...',
    ],
    [
      'a generation not observed yet and an old deadline exceeded (kubectl looks at conditions only once observed)',
      deployment(5, { observedGeneration: 4, replicas: 3, conditions: [deadlineExceeded] }),
      'progressing',
      'Waiting for deployment spec update to be observed...',
    ],
    [
      'the progress deadline exceeded, counts incomplete',
      deployment(5, {
        observedGeneration: 5,
        replicas: 4,
        updatedReplicas: 1,
        conditions: [condition('Available', 'True', 'MinimumReplicasAvailable'), deadlineExceeded],
      }),
      'failed',
      'deployment "hasher" exceeded its progress deadline',
    ],
    [
      'the progress deadline exceeded even with every count complete (the condition comes first)',
      deployment(5, {
        observedGeneration: 5,
        replicas: 3,
        updatedReplicas: 3,
        availableReplicas: 3,
        conditions: [deadlineExceeded],
      }),
      'failed',
      'deployment "hasher" exceeded its progress deadline',
    ],
    [
      'two Progressing conditions, the first not timed out (kubectl reads the first)',
      deployment(5, {
        observedGeneration: 5,
        replicas: 3,
        updatedReplicas: 3,
        availableReplicas: 3,
        conditions: [condition('Progressing', 'True', 'NewReplicaSetAvailable'), deadlineExceeded],
      }),
      'ready',
      'deployment "hasher" successfully rolled out',
    ],
    [
      'a ReplicaFailure condition (a quota): kubectl does not read it, the counts decide',
      deployment(5, {
        observedGeneration: 5,
        conditions: [
          condition('ReplicaFailure', 'True', 'FailedCreate'),
          condition('Progressing', 'True', 'ReplicaSetUpdated'),
        ],
      }),
      'progressing',
      `${WAITING}0 out of 3 new replicas have been updated...`,
    ],
    [
      'new replicas not all updated',
      deployment(5, {
        observedGeneration: 5,
        replicas: 4,
        updatedReplicas: 1,
        availableReplicas: 3,
      }),
      'progressing',
      `${WAITING}1 out of 3 new replicas have been updated...`,
    ],
    [
      'all updated, a surge replica of the old template still terminating',
      deployment(5, {
        observedGeneration: 5,
        replicas: 4,
        updatedReplicas: 3,
        availableReplicas: 3,
      }),
      'progressing',
      `${WAITING}1 old replicas are pending termination...`,
    ],
    [
      'updated replicas not yet available',
      deployment(5, {
        observedGeneration: 5,
        replicas: 3,
        updatedReplicas: 3,
        availableReplicas: 2,
      }),
      'progressing',
      `${WAITING}2 of 3 updated replicas are available...`,
    ],
    [
      'everything updated and available, observedGeneration ahead',
      deployment(5, {
        observedGeneration: 6,
        replicas: 3,
        updatedReplicas: 3,
        availableReplicas: 3,
      }),
      'ready',
      'deployment "hasher" successfully rolled out',
    ],
    [
      'no spec.replicas (kubectl skips the updated check) and nothing running',
      deployment(2, { observedGeneration: 2 }, {}),
      'ready',
      'deployment "hasher" successfully rolled out',
    ],
    [
      'no spec.replicas and old replicas still there',
      deployment(2, { observedGeneration: 2, replicas: 2, updatedReplicas: 1 }, {}),
      'progressing',
      `${WAITING}1 old replicas are pending termination...`,
    ],
    [
      'no status at all (generation 1 not observed)',
      deployment(1, undefined, { replicas: 1 }),
      'progressing',
      'Waiting for deployment spec update to be observed...',
    ],
    [
      'neither generation nor status (0 <= 0: observed, as in Go)',
      deployment(undefined, undefined, { replicas: 1 }),
      'progressing',
      `${WAITING}0 out of 1 new replicas have been updated...`,
    ],
    [
      'scaled to zero and done',
      deployment(7, { observedGeneration: 7 }, { replicas: 0 }),
      'ready',
      'deployment "hasher" successfully rolled out',
    ],
    [
      'scaled to zero, two pods still terminating',
      deployment(7, { observedGeneration: 7, replicas: 2 }, { replicas: 0 }),
      'progressing',
      `${WAITING}2 old replicas are pending termination...`,
    ],
    [
      'counts that are not numbers (count as 0)',
      deployment(3, { observedGeneration: 3, replicas: '3', updatedReplicas: null }),
      'progressing',
      `${WAITING}0 out of 3 new replicas have been updated...`,
    ],
  ])("Given %s, when judged, then it is %s with kubectl's words", (_name, live, state, message) => {
    expect(rolloutStatus(live)).toMatchObject({ state, message });
  });

  test('Given a Deployment paused in Kubernetes mid-rollout, when judged, then it waits as kubectl does and says the rollout is paused', () => {
    const live = deployment(
      4,
      { observedGeneration: 4, replicas: 2, updatedReplicas: 0, availableReplicas: 2 },
      { replicas: 2, paused: true },
    );
    expect(rolloutStatus(live)).toEqual({
      state: 'progressing',
      message: `${WAITING}0 out of 2 new replicas have been updated...`,
      desired: 2,
      updated: 0,
      available: 2,
      replicas: 2,
      specPaused: true,
      observed: true,
    });
  });

  test('Given a generation not yet observed, when judged, then the counts are reported as they stand, marked not observed', () => {
    expect(
      rolloutStatus(
        deployment(
          9,
          { observedGeneration: 8, replicas: 3, updatedReplicas: 3, availableReplicas: 1 },
          {},
        ),
      ),
    ).toEqual({
      state: 'progressing',
      message: 'Waiting for deployment spec update to be observed...',
      desired: 1,
      updated: 3,
      available: 1,
      replicas: 3,
      specPaused: false,
      observed: false,
    });
  });
});

describe('isRolloutFinished', () => {
  test.each<[RolloutStatus['state'], boolean]>([
    ['ready', true],
    ['failed', true],
    ['progressing', false],
  ])(
    'Given a rollout %s, when asked whether to wait on, then finished is %s',
    (state, finished) => {
      const status: RolloutStatus = {
        state,
        message: '',
        desired: 1,
        updated: 1,
        available: 1,
        replicas: 1,
        specPaused: false,
        observed: true,
      };
      expect(isRolloutFinished(status)).toBe(finished);
    },
  );
});

describe('rolloutStatus of Deployments as the API server keeps them', () => {
  const NS = 'dockercoins';
  let kube: KubeApiServer;
  beforeAll(async () => {
    kube = await startKubeApiServer({ clusterName: 'dockercoins', staticTokens: {} });
  });
  afterAll(() => kube.stop());

  test("Given a rollout from patch to completion, when judged at each step, then kubectl's sentences in order", () => {
    kube.putDeployment({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'hasher', namespace: NS },
      spec: {
        replicas: 2,
        selector: { matchLabels: { app: 'hasher' } },
        template: {
          metadata: { labels: { app: 'hasher' } },
          spec: { containers: [{ name: 'hasher', image: 'hasher:v0.1' }] },
        },
      },
    });
    const judge = (): RolloutStatus =>
      rolloutStatus(kube.deployment(NS, 'hasher') as unknown as Deployment);
    const seen: [string, string][] = [];
    const record = (): void => {
      const { state, message } = judge();
      seen.push([state, message]);
    };

    kube.completeRollout(NS, 'hasher');
    record();
    // the patch bumps the generation; the controller has not written a status for it yet
    kube.patchDeployment(NS, 'hasher', {
      spec: { template: { spec: { containers: [{ name: 'hasher', image: 'hasher:v0.2' }] } } },
    });
    record();
    const generation = kube.deployment(NS, 'hasher')!.metadata.generation;
    kube.setStatus(NS, 'hasher', {
      observedGeneration: generation,
      replicas: 3,
      updatedReplicas: 1,
      availableReplicas: 2,
    });
    record();
    kube.setStatus(NS, 'hasher', {
      observedGeneration: generation,
      replicas: 3,
      updatedReplicas: 2,
      availableReplicas: 2,
    });
    record();
    kube.setStatus(NS, 'hasher', {
      observedGeneration: generation,
      replicas: 2,
      updatedReplicas: 2,
      availableReplicas: 1,
    });
    record();
    kube.completeRollout(NS, 'hasher');
    record();

    expect(seen).toEqual([
      ['ready', 'deployment "hasher" successfully rolled out'],
      ['progressing', 'Waiting for deployment spec update to be observed...'],
      ['progressing', `${WAITING}1 out of 2 new replicas have been updated...`],
      ['progressing', `${WAITING}1 old replicas are pending termination...`],
      ['progressing', `${WAITING}1 of 2 updated replicas are available...`],
      ['ready', 'deployment "hasher" successfully rolled out'],
    ]);
  });
});
