/**
 * apply: carries out a build's plan against the image registry and the clusters, one Deployment
 * at a time and each on its own, and says what happened to each. All decisions are plan.ts's;
 * this module only reads, asks plan, and writes, with the retries each failure kind allows.
 */
import type { DeployerSettings } from '../../lib/deployer-contract';
import { planBuild, planTarget } from './plan';
import {
  ConflictError,
  PermanentError,
  TransientError,
  type BuildPlan,
  type BuildRecord,
  type ClusterConnector,
  type DeployOutcome,
  type DesiredImage,
  type ImageVerifier,
  type TargetOutcome,
  type TargetPlan,
  type TargetRef,
} from './types';

/** Runs an operation again on TransientError, a bounded number of times, then rethrows. */
export type Retry = <T>(operation: () => Promise<T>) => Promise<T>;

export interface ApplyDeps {
  readonly images: ImageVerifier;
  readonly clusters: ClusterConnector;
  readonly retry: Retry;
  readonly now: () => Date;
  /** Who the annotations name as the deployer. */
  readonly deployedBy: 'deployer' | 'ship';
  /** Told each decision as it is made, the build's and each Deployment's (for logs). */
  readonly onPlan?: (plan: BuildPlan | TargetPlan) => void;
}

/**
 * How many times a Deployment is re-read and re-planned after a 409 before the attempt counts as
 * transient (and the event is retried by Lambda). Each 409 means someone else wrote in between.
 */
export const MAX_CONFLICT_ROUNDS = 4;

/**
 * Deploys one build everywhere its plan sends it. Never throws for a target: every Deployment gets
 * an outcome, and one failing does not stop the others; a failure of the image check becomes
 * every target's outcome.
 */
export async function applyBuild(
  build: BuildRecord,
  settings: DeployerSettings,
  deps: ApplyDeps,
): Promise<DeployOutcome> {
  const plan = planBuild(build, settings);
  deps.onPlan?.(plan);
  if (plan.action === 'skip') {
    return { kind: 'skipped', build, reason: plan.reason, detail: plan.detail };
  }

  // The registry must say, now, that the tags point at the digest the build reported: the tag is
  // what people read, the digest is what runs. Nothing is patched unless both agree.
  const imageProblem = await checkImage(build, plan.image, deps);
  if (imageProblem !== undefined) {
    return {
      kind: 'applied',
      build,
      targets: plan.targets.map((ref): TargetOutcome => ({
        status: 'failed',
        ref,
        to: plan.image,
        ...imageProblem,
      })),
    };
  }

  const targets = await Promise.all(
    plan.targets.map((ref) => deployTarget(ref, plan.image, build, deps)),
  );
  return { kind: 'applied', build, targets };
}

type ImageProblem = Pick<Extract<TargetOutcome, { status: 'failed' }>, 'reason' | 'detail'>;

async function checkImage(
  build: BuildRecord,
  image: DesiredImage,
  deps: ApplyDeps,
): Promise<ImageProblem | undefined> {
  const tags = [...new Set([image.tag, build.imageTag])];
  let digests: (string | undefined)[];
  try {
    digests = await deps.retry(() =>
      deps.images.digestsOf({ registryId: build.registryId, repository: build.repository }, tags),
    );
  } catch (error) {
    if (error instanceof PermanentError) return { reason: error.reason, detail: error.message };
    // Anything else is unexpected: treat it as passing, so the event is retried and, failing
    // again, kept in the dead-letter queue rather than dropped.
    return { reason: 'transient', detail: unexpected(error) };
  }
  for (const [index, tag] of tags.entries()) {
    const digest = digests[index];
    const where = `${build.repositoryUri}:${tag}`;
    if (digest === undefined) {
      return {
        reason: 'image-missing',
        detail:
          `${where} does not exist in ECR, although build ${build.buildId} reported pushing it ` +
          `(${build.digest}). Nothing was patched. Check the repository's lifecycle rules and the ` +
          `build's log; rebuild the commit to push it again.`,
      };
    }
    if (digest !== build.digest) {
      return {
        reason: 'image-mismatch',
        detail:
          `${where} points at ${digest} in ECR, but build ${build.buildId} pushed ${build.digest}. ` +
          `Nothing was patched: the tag no longer names what was built. Find out who retagged it ` +
          `(ECR is set to immutable tags for commits and releases).`,
      };
    }
  }
  return undefined;
}

async function deployTarget(
  ref: TargetRef,
  image: DesiredImage,
  build: BuildRecord,
  deps: ApplyDeps,
): Promise<TargetOutcome> {
  const { namespace } = ref.environment;
  const name = ref.target.deployment;
  const where = `${ref.environment.clusterName}/${namespace}/deployment/${name}`;
  try {
    const client = await deps.retry(() => deps.clusters.connect(ref.environment));
    for (let round = 1; round <= MAX_CONFLICT_ROUNDS; round += 1) {
      const live = await deps.retry(() => client.getDeployment(namespace, name));
      const step = planTarget(ref, image, build, live, deps.now(), { deployedBy: deps.deployedBy });
      deps.onPlan?.(step);
      switch (step.action) {
        case 'skip':
          return {
            status: 'skipped',
            ref,
            reason: step.reason,
            from: step.from,
            to: image,
            detail: step.detail,
          };
        case 'fail':
          return { status: 'failed', ref, reason: step.reason, to: image, detail: step.detail };
        case 'patch':
          try {
            const patched = await deps.retry(() =>
              client.patchDeployment(namespace, name, step.patch),
            );
            return {
              status: 'deployed',
              ref,
              from: step.from,
              to: image,
              generation: patched.metadata.generation,
              latencyMs: deps.now().getTime() - build.finishedAt.getTime(),
            };
          } catch (error) {
            // Someone wrote the Deployment between our GET and PATCH: read it again and decide
            // again (it may now run a newer build, or be paused).
            if (error instanceof ConflictError) continue;
            throw error;
          }
      }
    }
    return {
      status: 'failed',
      ref,
      reason: 'transient',
      to: image,
      detail:
        `${where} changed under us ${MAX_CONFLICT_ROUNDS} times in a row (409 Conflict on every ` +
        `PATCH); the event will be retried.`,
    };
  } catch (error) {
    if (error instanceof PermanentError) {
      return {
        status: 'failed',
        ref,
        reason: error.reason,
        to: image,
        detail: `${where}: ${error.message}`,
      };
    }
    const detail = error instanceof TransientError ? error.message : unexpected(error);
    return { status: 'failed', ref, reason: 'transient', to: image, detail: `${where}: ${detail}` };
  }
}

function unexpected(error: unknown): string {
  return `unexpected error: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`;
}

/** Did any target fail in a way a later attempt may fix? Then the event must be retried. */
export function needsRetry(outcome: DeployOutcome): boolean {
  return (
    outcome.kind === 'applied' &&
    outcome.targets.some((target) => target.status === 'failed' && target.reason === 'transient')
  );
}
