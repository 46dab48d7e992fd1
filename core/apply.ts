/**
 * apply: carries out a build's plan against the image registry and the clusters, one Deployment
 * at a time and each on its own, and says what happened to each. All decisions are plan.ts's;
 * this module only reads, asks plan, and writes, with the retries each failure kind allows.
 */
import type { DeployerSettings } from '../lib/deployer-contract';
import { planBuild, planPause, planTarget, type PlanOptions } from './plan';
import {
  ConflictError,
  PermanentError,
  TransientError,
  type BuildPlan,
  type BuildRecord,
  type ClusterConnector,
  type DeployOutcome,
  type Deployment,
  type DesiredImage,
  type ImageVerifier,
  type StrategicMergePatch,
  type TargetOutcome,
  type TargetPlan,
  type RunningImage,
  type TargetRef,
  type VerifyTarget,
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
  /**
   * Deploy with verification: each PATCH writes the verification record naming `execution`, and
   * each deployed (or leased) target's outcome carries the {@link VerifyTarget} to verify.
   * @default - no verification record; outcomes carry no `verify`
   */
  readonly verification?: ApplyVerification;
}

export interface ApplyVerification {
  /** The Step Functions execution id (`$$.Execution.Id`), or `ship:<user>`. */
  readonly execution: string;
  /** The verify deadline of a target's service and environment, in seconds. */
  readonly deadlineSeconds: (ref: TargetRef) => number;
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
    plan.targets.map((ref) =>
      deployTarget(
        ref,
        plan.image,
        deps,
        {
          deployedBy: deps.deployedBy,
          ...(deps.verification === undefined
            ? {}
            : {
                verification: {
                  execution: deps.verification.execution,
                  deadlineSeconds: deps.verification.deadlineSeconds(ref),
                },
              }),
        },
        build.finishedAt,
      ),
    ),
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
  // A build known from a registry's labels (no CodeBuild ARN) was read from that registry, not ECR.
  const registry = build.buildArn === undefined ? 'the registry' : 'ECR';
  for (const [index, tag] of tags.entries()) {
    const digest = digests[index];
    const where = `${build.repositoryUri}:${tag}`;
    if (digest === undefined) {
      return {
        reason: 'image-missing',
        detail:
          `${where} does not exist in ${registry}, although build ${build.buildId} reported pushing it ` +
          `(${build.digest}). Nothing was patched. Check the repository's lifecycle rules and the ` +
          `build's log; rebuild the commit to push it again.`,
      };
    }
    if (digest !== build.digest) {
      return {
        reason: 'image-mismatch',
        detail:
          `${where} points at ${digest} in ${registry}, but build ${build.buildId} pushed ${build.digest}. ` +
          `Nothing was patched: the tag no longer names what was built. Find out who retagged it ` +
          `(ECR is set to immutable tags for commits and releases).`,
      };
    }
  }
  return undefined;
}

/** What a decision about one Deployment is: an outcome now, or a PATCH and the outcome after it. */
type Decision<T> =
  | { readonly result: T }
  | { readonly patch: StrategicMergePatch; readonly then: (patched: Deployment) => T };

const CONFLICTS = Symbol('conflicts');

/**
 * Reads one Deployment, decides from what it read, and sends the decision's PATCH (which carries
 * the resourceVersion read as its precondition); on a 409 someone wrote in between, so it reads
 * and decides again, up to {@link MAX_CONFLICT_ROUNDS} times. Errors other than 409 are thrown.
 */
async function conditionalPatch<T>(
  ref: TargetRef,
  deps: Pick<ApplyDeps, 'clusters' | 'retry'>,
  decide: (live: Deployment | undefined) => Decision<T>,
): Promise<T | typeof CONFLICTS> {
  const { namespace } = ref.environment;
  const name = ref.target.deployment;
  const client = await deps.retry(() => deps.clusters.connect(ref.environment));
  for (let round = 1; round <= MAX_CONFLICT_ROUNDS; round += 1) {
    const live = await deps.retry(() => client.getDeployment(namespace, name));
    const decision = decide(live);
    if ('result' in decision) return decision.result;
    try {
      const patched = await deps.retry(() =>
        client.patchDeployment(namespace, name, decision.patch),
      );
      return decision.then(patched);
    } catch (error) {
      if (error instanceof ConflictError) continue;
      throw error;
    }
  }
  return CONFLICTS;
}

/** What deploying one Deployment needs: the deployer's collaborators without the registry. */
export type TargetDeps = Pick<ApplyDeps, 'clusters' | 'retry' | 'now' | 'onPlan'>;

/** The Deploy step's output per target: what Step Functions' Map verifies. */
export function verifyTargets(outcome: DeployOutcome): VerifyTarget[] {
  if (outcome.kind !== 'applied') return [];
  return outcome.targets.flatMap((t) =>
    (t.status === 'deployed' || t.status === 'skipped') && t.verify !== undefined ? [t.verify] : [],
  );
}

function verifyTarget(
  ref: TargetRef,
  image: DesiredImage,
  from: RunningImage | undefined,
  generation: number,
  startedAt: Date,
  since: Date,
  options: NonNullable<PlanOptions['verification']>,
): VerifyTarget {
  return {
    environment: ref.environment.name,
    namespace: ref.environment.namespace,
    clusterName: ref.environment.clusterName,
    deployment: ref.target.deployment,
    container: ref.target.container,
    image: image.image,
    digest: image.digest,
    generation,
    ...(from === undefined || from.image === image.image ? {} : { previousImage: from.image }),
    build: image.buildNumber ?? 0,
    startedAt: startedAt.toISOString(),
    buildEndedAt: since.toISOString(),
    deadlineSeconds: options.deadlineSeconds,
    phase: 'verify',
    execution: options.execution,
  };
}

/**
 * Deploys an image to one Deployment: read, plan, PATCH conditional on what was read, and on a
 * 409 read and plan again. The deployer calls it for each target of a build; `ship deploy` and
 * `ship rollback` call it with their own plan options. Never throws: the outcome says.
 * `since` is what the latency is measured from (the build's end; for a person, the command's start).
 */
export async function deployTarget(
  ref: TargetRef,
  image: DesiredImage,
  deps: TargetDeps,
  planOptions: PlanOptions,
  since: Date,
): Promise<TargetOutcome> {
  const { namespace } = ref.environment;
  const name = ref.target.deployment;
  const where = `${ref.environment.clusterName}/${namespace}/deployment/${name}`;
  try {
    const outcome = await conditionalPatch(ref, deps, (live): Decision<TargetOutcome> => {
      const step = planTarget(ref, image, live, deps.now(), planOptions);
      deps.onPlan?.(step);
      switch (step.action) {
        case 'skip':
          return {
            result: {
              status: 'skipped',
              ref,
              reason: step.reason,
              from: step.from,
              to: image,
              detail: step.detail,
            },
          };
        case 'fail':
          return {
            result: { status: 'failed', ref, reason: step.reason, to: image, detail: step.detail },
          };
        case 'lease':
          return {
            patch: step.patch,
            then: (patched) => ({
              status: 'skipped',
              ref,
              reason: 'already-running',
              from: step.from,
              to: image,
              detail: step.detail,
              verify: verifyTarget(
                ref,
                image,
                undefined,
                patched.metadata.generation ?? step.generation,
                deps.now(),
                since,
                planOptions.verification!,
              ),
            }),
          };
        case 'patch':
          return {
            patch: step.patch,
            then: (patched) => {
              const now = deps.now();
              return {
                status: 'deployed',
                ref,
                from: step.from,
                to: image,
                generation: patched.metadata.generation,
                latencyMs: now.getTime() - since.getTime(),
                ...(planOptions.verification === undefined
                  ? {}
                  : {
                      verify: verifyTarget(
                        ref,
                        image,
                        step.from,
                        patched.metadata.generation ?? 0,
                        now,
                        since,
                        planOptions.verification,
                      ),
                    }),
              };
            },
          };
      }
    });
    if (outcome !== CONFLICTS) return outcome;
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

/** What happened to one Deployment asked to pause or resume automatic deploys. */
export type PauseOutcome =
  | { readonly status: 'patched'; readonly ref: TargetRef; readonly paused: boolean }
  | { readonly status: 'unchanged'; readonly ref: TargetRef; readonly detail: string }
  | { readonly status: 'failed'; readonly ref: TargetRef; readonly detail: string };

/**
 * Pauses (or resumes) automatic deploys of one Deployment: read, planPause, PATCH conditional on
 * what was read, again on a 409. Never throws: the outcome says.
 */
export async function applyPause(
  ref: TargetRef,
  paused: boolean,
  deps: Pick<ApplyDeps, 'clusters' | 'retry'>,
): Promise<PauseOutcome> {
  const { namespace } = ref.environment;
  const name = ref.target.deployment;
  const where = `${ref.environment.clusterName}/${namespace}/deployment/${name}`;
  try {
    const outcome = await conditionalPatch(ref, deps, (live): Decision<PauseOutcome> => {
      const step = planPause(ref, live, paused);
      if (step.action === 'skip')
        return { result: { status: 'unchanged', ref, detail: step.detail } };
      if (step.action === 'fail') return { result: { status: 'failed', ref, detail: step.detail } };
      return { patch: step.patch, then: () => ({ status: 'patched', ref, paused }) };
    });
    if (outcome !== CONFLICTS) return outcome;
    return {
      status: 'failed',
      ref,
      detail: `${where} changed under us ${MAX_CONFLICT_ROUNDS} times in a row (409 Conflict on every PATCH); try again.`,
    };
  } catch (error) {
    const detail =
      error instanceof PermanentError || error instanceof TransientError
        ? error.message
        : unexpected(error);
    return { status: 'failed', ref, detail: `${where}: ${detail}` };
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
