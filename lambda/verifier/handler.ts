/**
 * The verify function: the workflow's Check and Rollback steps for one deployed Deployment.
 * Thin: the judgement, the record and the rollback rule are core/verify.ts and core/rollback.ts;
 * this reads the Map iteration's state, calls them, and returns the next state
 * (lambda/workflow.ts).
 *
 * - `check`: reads the Deployment, its ReplicaSets and the new ReplicaSet's pods; the verdict
 *   (with the failure strike carried from the previous check) becomes `verdict`. A final verdict
 *   is recorded on the Deployment, except a failure the Rollback step is about to handle.
 * - `rollback`: one conditional PATCH back to the last verified image; on success the iteration
 *   goes on verifying the rollback (`phase: 'rollback'`), otherwise it ends with the reason.
 *   Never more than one rollback per iteration (`rollback` becomes false).
 *
 * A transient failure (the API server, EKS) throws `TransientError`: the Task retries it.
 * Its bundle holds no ECR, CodeBuild or SNS client.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import type { EnvironmentSettings } from '../../lib/deployer-contract';
import { DEPLOYER_METRICS } from '../../lib/deployer-contract';
import { createClusterConnector, newEksClient } from '../../core/aws/eks';
import { applyRollback, recordVerdict } from '../../core/rollback';
import type { KubeReader } from '../../core/types';
import { check, describeVerdict, type Verdict } from '../../core/verify';
import type { VerifyItem, VerifyStepInput, WorkflowTarget } from '../workflow';

export interface VerifierDeps {
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

/** A payload that is not the workflow's (a version mismatch): not retried. */
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
  if (
    target === undefined ||
    typeof target.deployment !== 'string' ||
    typeof target.execution !== 'string'
  ) {
    throw new InvalidStepInputError(
      "item.target is missing or incomplete; the workflow sends the Deploy step's targets unchanged.",
    );
  }
  return object as VerifyStepInput;
}

export function makeHandler(
  createDeps: () => VerifierDeps,
): (input: VerifyStepInput) => Promise<VerifyItem> {
  let deps: VerifierDeps | undefined;
  return async (input) => {
    deps ??= createDeps();
    const { action, item } = readInput(input);
    const { target } = item;
    const kube = await deps.connect(environmentOf(target));
    const now = deps.now();
    const where = `${target.environment}/${target.deployment}`;
    const keys = {
      environment: target.environment,
      deployment: target.deployment,
      phase: target.phase,
    };

    if (action === 'check') {
      const previous = item.verdict?.state === 'progressing' ? item.verdict.strike : undefined;
      const verdict = await check(kube, target, now, previous);
      deps.log(`${where}: ${describeVerdict(verdict)}`, keys);
      const rollsBackNext =
        verdict.state === 'failed' && target.phase === 'verify' && item.rollback;
      if (verdict.state !== 'progressing' && !rollsBackNext) {
        await recordVerdict(kube, target, verdict, now);
      }
      return { ...item, verdict };
    }

    const failed = item.verdict;
    if (failed?.state !== 'failed' || !item.rollback || target.phase !== 'verify') {
      return { ...item, rollback: false };
    }
    const result = await applyRollback(kube, target, failed, now);
    if (result.status === 'rolled-back') {
      deps.log(`${where}: ${result.message}`, keys);
      return {
        target: result.target,
        pollSeconds: item.pollSeconds,
        rollback: false,
        failure: failed,
        rollbackNote: result.target.image,
        verdict: { state: 'progressing', message: `${result.message}; verifying the rollback` },
      };
    }
    deps.log(`${where}: not rolled back (${result.reason}): ${result.message}`, keys);
    // Someone else changed the Deployment meanwhile: verification stops, as Check would say.
    const verdict: Verdict =
      result.reason === 'superseded' || result.reason === 'changed'
        ? { state: 'changed', message: result.message }
        : failed;
    return { ...item, verdict, rollback: false, rollbackNote: result.message, failure: failed };
  };
}

/** The Lambda entry point: clusters of the function's region. */
export const handler = makeHandler(() => {
  const region = process.env.AWS_REGION;
  if (region === undefined || region === '') {
    throw new Error('AWS_REGION is not set; Lambda sets it in every function.');
  }
  const logger = new Logger({ serviceName: DEPLOYER_METRICS.serviceName });
  const clusters = createClusterConnector({ eksClient: newEksClient, defaultRegion: region });
  return {
    connect: (environment) => clusters.connect(environment),
    now: () => new Date(),
    log: (message, keys) => logger.info(message, keys),
  };
});
