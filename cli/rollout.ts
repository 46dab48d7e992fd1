/**
 * A Deployment's rollout judged as `kubectl rollout status deployment/<name>` judges it
 * (kubectl's DeploymentStatusViewer, k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go),
 * with its wording, from the object alone: the status is only believed once the controller has
 * observed the current generation.
 */
import type { Deployment } from '../lambda/deployer/types';

export interface RolloutStatus {
  readonly state: 'ready' | 'progressing' | 'failed';
  /** kubectl's sentence. */
  readonly message: string;
  /** spec.replicas (kubectl compares with it only when set; unset here means 1, the default). */
  readonly desired: number;
  readonly updated: number;
  readonly available: number;
  /** Replicas of the Deployment, old and new. */
  readonly replicas: number;
  /** spec.paused: the rollout itself is paused in Kubernetes (`kubectl rollout pause`). */
  readonly specPaused: boolean;
  /** The controller has seen the current generation: until then the counts are of the last one. */
  readonly observed: boolean;
}

interface Condition {
  readonly type?: string;
  readonly reason?: string;
}

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
    observed: (deployment.metadata.generation ?? 0) <= count(status.observedGeneration),
  };
  if (!base.observed) {
    return {
      ...base,
      state: 'progressing',
      message: 'Waiting for deployment spec update to be observed...',
    };
  }
  const conditions = Array.isArray(status.conditions) ? (status.conditions as Condition[]) : [];
  const progressing = conditions.find((c) => c.type === 'Progressing');
  if (progressing?.reason === 'ProgressDeadlineExceeded') {
    return {
      ...base,
      state: 'failed',
      message: `deployment "${name}" exceeded its progress deadline`,
    };
  }
  const waiting = `Waiting for deployment "${name}" rollout to finish: `;
  if (specReplicas !== undefined && base.updated < specReplicas) {
    return {
      ...base,
      state: 'progressing',
      message: `${waiting}${base.updated} out of ${specReplicas} new replicas have been updated...`,
    };
  }
  if (base.replicas > base.updated) {
    return {
      ...base,
      state: 'progressing',
      message: `${waiting}${base.replicas - base.updated} old replicas are pending termination...`,
    };
  }
  if (base.available < base.updated) {
    return {
      ...base,
      state: 'progressing',
      message: `${waiting}${base.available} of ${base.updated} updated replicas are available...`,
    };
  }
  return { ...base, state: 'ready', message: `deployment "${name}" successfully rolled out` };
}
