import { rolloutStatus } from '../../cli/rollout';
import type { Deployment } from '../../lambda/deployer/types';

// kubectl's DeploymentStatusViewer, case by case, with its sentences.

function deployment(
  generation: number,
  status: Record<string, unknown>,
  spec: { replicas?: number; paused?: boolean } = { replicas: 3 },
): Deployment {
  return { metadata: { name: 'hasher', generation }, spec, status };
}

const deadline = {
  conditions: [
    { type: 'Available', status: 'True', reason: 'MinimumReplicasAvailable' },
    { type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' },
  ],
};

describe('rolloutStatus: judged as kubectl rollout status judges', () => {
  test.each<[string, Deployment, string, string]>([
    [
      'a generation not observed yet',
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
      'the progress deadline exceeded',
      deployment(5, { observedGeneration: 5, replicas: 4, updatedReplicas: 1, ...deadline }),
      'failed',
      'deployment "hasher" exceeded its progress deadline',
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
      'Waiting for deployment "hasher" rollout to finish: 1 out of 3 new replicas have been updated...',
    ],
    [
      'old replicas still terminating',
      deployment(5, {
        observedGeneration: 5,
        replicas: 4,
        updatedReplicas: 3,
        availableReplicas: 3,
      }),
      'progressing',
      'Waiting for deployment "hasher" rollout to finish: 1 old replicas are pending termination...',
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
      'Waiting for deployment "hasher" rollout to finish: 2 of 3 updated replicas are available...',
    ],
    [
      'everything updated and available',
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
      'no status at all',
      { metadata: { name: 'hasher', generation: 1 }, spec: { replicas: 1 } },
      'progressing',
      'Waiting for deployment spec update to be observed...',
    ],
  ])("Given %s, when judged, then it is %s with kubectl's words", (_name, live, state, message) => {
    expect(rolloutStatus(live)).toMatchObject({ state, message });
  });

  test('Given a Deployment paused in Kubernetes, when judged, then the result says so (kubectl does not judge it otherwise)', () => {
    const live = deployment(
      3,
      { observedGeneration: 3, replicas: 2, updatedReplicas: 2, availableReplicas: 2 },
      { replicas: 2, paused: true },
    );
    expect(rolloutStatus(live)).toEqual({
      state: 'ready',
      message: 'deployment "hasher" successfully rolled out',
      desired: 2,
      updated: 2,
      available: 2,
      replicas: 2,
      specPaused: true,
      observed: true,
    });
  });
});
