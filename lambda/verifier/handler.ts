/**
 * The verify function: the workflow's Check and Rollback steps for one deployed Deployment.
 * Thin: the judgement and the rollback rule are core/verify.ts and core/rollback.ts; this reads
 * the Map iteration's state, calls them, and returns the next state (lambda/workflow.ts).
 *
 * - `check`: reads the Deployment, its ReplicaSets and the new ReplicaSet's pods; the verdict
 *   (with the failure strike carried from the previous check) becomes `verdict`.
 * - `rollback`: one conditional PATCH back to the last verified image; on success the iteration
 *   goes on verifying the rollback (`phase: 'rollback'`), otherwise it ends failed with the reason.
 *   Never more than one rollback per iteration (`rollback` becomes false).
 *
 * A transient failure (the API server, EKS) throws `TransientError` after the core's bounded
 * retries: the Task retries it. Its bundle holds no ECR, CodeBuild or SNS client.
 */
import type { EnvironmentSettings } from '../../lib/deployer-contract';
import type { KubeReader } from '../../core/types';
import type { VerifyItem, VerifyStepInput, WorkflowTarget, WorkflowVerdict } from '../workflow';

/** What core/rollback.ts's applyRollback tells: patched back to `to`, or why not. */
export type RollbackResult =
  | { readonly action: 'patch'; readonly to: string; readonly generation: number; readonly digest: string }
  | { readonly action: 'none'; readonly reason: string };

/** The core functions the steps call (core/verify.ts `check`, core/rollback.ts `applyRollback`). */
export interface VerifierCore {
  check(kube: KubeReader, target: WorkflowTarget, now: Date, previous?: unknown): Promise<WorkflowVerdict>;
  applyRollback(
    kube: KubeReader,
    target: WorkflowTarget,
    verdict: WorkflowVerdict,
    now: Date,
  ): Promise<RollbackResult>;
}

export interface VerifierDeps {
  readonly core: VerifierCore;
  /** The client of a target's cluster (DescribeCluster and the EKS token, cached per container). */
  readonly connect: (environment: EnvironmentSettings) => Promise<KubeReader>;
  readonly now: () => Date;
  readonly log: (message: string, keys: Record<string, unknown>) => void;
}

/** The environment as the cluster connector needs it: the function's region, the target's cluster. */
function environmentOf(target: WorkflowTarget): EnvironmentSettings {
  return {
    name: target.environment,
    clusterName: target.clusterName,
    region: undefined,
    namespace: target.namespace,
    branches: [],
    releaseTags: false,
  };
}

/** Refuses a payload that is not the workflow's (a version mismatch is not retried). */
export class InvalidStepInputError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InvalidStepInputError';
  }
}

function readInput(input: unknown): VerifyStepInput {
  const object = (input ?? {}) as Partial<VerifyStepInput>;
  if (object.action !== 'check' && object.action !== 'rollback') {
    throw new InvalidStepInputError(
      `action is ${JSON.stringify(object.action)}; the workflow sends "check" or "rollback".`,
    );
  }
  const target = object.item?.target;
  if (target === undefined || typeof target.deployment !== 'string' || typeof target.execution !== 'string') {
    throw new InvalidStepInputError(
      'item.target is missing or incomplete; the workflow sends the Deploy step\'s targets unchanged.',
    );
  }
  return object as VerifyStepInput;
}

export function makeHandler(createDeps: () => VerifierDeps): (input: unknown) => Promise<VerifyItem> {
  let deps: VerifierDeps | undefined;
  return async (input) => {
    deps ??= createDeps();
    const { action, item } = readInput(input);
    const { target } = item;
    const kube = await deps.connect(environmentOf(target));
    const now = deps.now();
    const keys = {
      environment: target.environment,
      deployment: target.deployment,
      phase: target.phase,
      execution: target.execution,
    };
    if (action === 'check') {
      const verdict = await deps.core.check(kube, target, now, item.verdict?.strike);
      deps.log(`${target.environment}/${target.deployment}: ${verdict.state}: ${verdict.message}`, keys);
      return { ...item, verdict };
    }
    if (item.verdict?.state !== 'failed' || !item.rollback || target.phase !== 'verify') {
      return { ...item, rollback: false };
    }
    const result = await deps.core.applyRollback(kube, target, item.verdict, now);
    if (result.action === 'none') {
      deps.log(`${target.environment}/${target.deployment}: not rolled back: ${result.reason}`, keys);
      return { ...item, rollback: false, rollbackNote: result.reason };
    }
    deps.log(`${target.environment}/${target.deployment}: rolled back to ${result.to}`, keys);
    return {
      target: {
        ...target,
        phase: 'rollback',
        image: result.to,
        digest: result.digest,
        generation: result.generation,
        previousImage: target.image,
        startedAt: now.toISOString(),
      },
      pollSeconds: item.pollSeconds,
      rollback: false,
      failure: item.verdict,
      rollbackNote: result.to,
      verdict: { state: 'progressing', message: `rolled back to ${result.to}; verifying the rollback` },
    };
  };
}
