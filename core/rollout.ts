/**
 * A Deployment's rollout judged as `kubectl rollout status deployment/<name>` judges it (kubectl's
 * DeploymentStatusViewer, k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go), with its
 * sentences, from the object alone. In kubectl's order:
 * 1. until the controller has observed the current generation (metadata.generation <=
 *    status.observedGeneration), the counts are of an older spec: "Waiting for deployment spec
 *    update to be observed...";
 * 2. the first `Progressing` condition with reason `ProgressDeadlineExceeded`: failed (kubectl
 *    returns it as an error and exits 1);
 * 3. status.updatedReplicas < spec.replicas, compared only when spec.replicas is set;
 * 4. status.replicas > status.updatedReplicas: old replicas pending termination;
 * 5. status.availableReplicas < status.updatedReplicas;
 * 6. otherwise successfully rolled out.
 * Counts and generations that are absent are 0, as Go's zero values in kubectl.
 *
 * kubectl ignores spec.paused (`kubectl rollout pause`): a paused Deployment whose template
 * changed waits at step 3 for ever, since the controller rolls nothing out. The result carries
 * `specPaused` so that `ship` can say why.
 */
import type { Deployment } from './types';

export interface RolloutStatus {
  /** `ready`: kubectl says "successfully rolled out"; `failed`: it exits with an error. */
  readonly state: 'ready' | 'progressing' | 'failed';
  /** kubectl's sentence, without its trailing newline. */
  readonly message: string;
  /**
   * spec.replicas. The API server defaults it to 1, so it is absent only from an object made by
   * hand; it counts as 1 here, while the judgement (as kubectl's) skips step 3.
   */
  readonly desired: number;
  /** status.updatedReplicas: replicas of the current pod template. */
  readonly updated: number;
  /** status.availableReplicas. */
  readonly available: number;
  /** status.replicas: replicas of the Deployment, old and new. */
  readonly replicas: number;
  /** spec.paused: the rollout itself is paused in Kubernetes (`kubectl rollout pause`), not by ship. */
  readonly specPaused: boolean;
  /** The controller has observed the current generation: until then the counts are of an older one. */
  readonly observed: boolean;
}

/** kubectl's `deploymentutil.TimedOutReason`. */
const PROGRESS_DEADLINE_EXCEEDED = 'ProgressDeadlineExceeded';

/** A status count or generation; absent (or not a number) is 0, as kubectl's zero values. */
const count = (value: unknown): number => (typeof value === 'number' ? value : 0);

export function rolloutStatus(deployment: Deployment): RolloutStatus {
  const name = deployment.metadata.name;
  const status = deployment.status ?? {};
  const specReplicas = deployment.spec?.replicas;
  const base = {
    desired: specReplicas ?? 1,
    updated: count(status.updatedReplicas),
    available: count(status.availableReplicas),
    replicas: count(status.replicas),
    specPaused: deployment.spec?.paused === true,
    observed: count(deployment.metadata.generation) <= count(status.observedGeneration),
  };
  const judged = (state: RolloutStatus['state'], message: string): RolloutStatus => ({
    state,
    message,
    ...base,
  });
  if (!base.observed) {
    return judged('progressing', 'Waiting for deployment spec update to be observed...');
  }
  // kubectl's GetDeploymentCondition: the first condition of the type.
  const conditions: unknown[] = Array.isArray(status.conditions) ? status.conditions : [];
  const progressing = conditions.find(
    (c): c is { reason?: unknown } =>
      typeof c === 'object' && c !== null && (c as { type?: unknown }).type === 'Progressing',
  );
  if (progressing?.reason === PROGRESS_DEADLINE_EXCEEDED) {
    return judged('failed', `deployment "${name}" exceeded its progress deadline`);
  }
  const waiting = `Waiting for deployment "${name}" rollout to finish: `;
  if (specReplicas !== undefined && base.updated < specReplicas) {
    return judged(
      'progressing',
      `${waiting}${base.updated} out of ${specReplicas} new replicas have been updated...`,
    );
  }
  if (base.replicas > base.updated) {
    return judged(
      'progressing',
      `${waiting}${base.replicas - base.updated} old replicas are pending termination...`,
    );
  }
  if (base.available < base.updated) {
    return judged(
      'progressing',
      `${waiting}${base.available} of ${base.updated} updated replicas are available...`,
    );
  }
  return judged('ready', `deployment "${name}" successfully rolled out`);
}

/**
 * Nothing more to wait for: the rollout is ready or has failed (where `kubectl rollout status`
 * returns). A wait loop must also know that the status is of its own change: the Deployment's
 * status.observedGeneration at least the generation its PATCH returned.
 */
export function isRolloutFinished(status: RolloutStatus): boolean {
  return status.state !== 'progressing';
}
