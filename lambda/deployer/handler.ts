/**
 * The deployer Lambda: a "CodeBuild Build State Change" (SUCCEEDED) event in, the Deployments that
 * run the built service patched to exactly the digest built, every outcome logged, counted and
 * published. Thin: parse → plan → apply live in their own modules, collaborators come from a
 * factory (adapters/ in production, local emulators in tests).
 *
 * Two ways in:
 * - the deploy workflow's Deploy step (the state machine the build rule starts) passes
 *   `{ event, execution }` and gets a {@link DeployStepOutput}: the deployed Deployments to
 *   verify, and the deploy's notification, which the Report step sends with the verdicts. A
 *   transient failure throws `TransientError`, which the Task retries; nothing is published.
 * - a direct invocation with the event alone (a redrive of an old dead-letter message) deploys
 *   and publishes as before, without verification.
 *
 * Failure contract with Lambda's asynchronous invocation:
 * - an invalid event is refused, reported and NOT retried (returning normally);
 * - a transient failure (429, 5xx, timeouts, the API down) of any target, after bounded retries
 *   here, makes the invocation throw: Lambda retries the event, then puts it in the failure
 *   destination queue. Retries are safe: what was deployed is skipped as `already-running`.
 */
import type { DeployerSettings } from '../../lib/deployer-contract';
import { deadlineOf, pollOf, rollsBack, type VerifySettings } from '../../lib/verify-contract';
import type { DeployStepOutput, VerifyItem } from '../workflow';
import { applyBuild, needsRetry, verifyTargets, type Retry } from '../../core/apply';
import {
  describeBuildPlan,
  describeOutcome,
  describeTargetPlan,
  formatNotification,
} from '../../core/describe';
import { confirmBuild, UnconfirmedBuildError } from '../../core/confirm';
import { parseEvent } from '../../core/parse';
import type { ImageMarkReport } from './adapters/ecr';
import { productionDeps } from './production';
import type { Telemetry } from './telemetry';
import {
  InvalidEventError,
  TransientError,
  type BuildLookup,
  type BuildRecord,
  type ClusterConnector,
  type DeployOutcome,
  type ImageVerifier,
  type Notifier,
} from '../../core/types';

/** Everything the handler talks to. Built once per container. */
export interface DeployerDeps {
  readonly settings: DeployerSettings;
  readonly images: ImageVerifier;
  readonly clusters: ClusterConnector;
  readonly builds: BuildLookup;
  readonly notifier: Notifier;
  readonly telemetry: Telemetry;
  readonly retry: Retry;
  readonly now: () => Date;
  /**
   * Marks in ECR what now runs and what a rollback goes back to, so the lifecycle policy keeps
   * them (adapters/ecr.ts markDeployedImages). Never throws. Absent: nothing is marked.
   */
  readonly markImages?: (outcome: DeployOutcome) => Promise<ImageMarkReport>;
  /** Deadlines, poll interval, rollback per environment (the Deploy step's targets carry them). */
  readonly verify: VerifySettings;
}

/** What an invocation returns (visible to synchronous invokers and tests). */
export type DeployerResult =
  | { readonly status: 'invalid'; readonly field: string; readonly message: string }
  | { readonly status: 'unconfirmed'; readonly field: string; readonly message: string }
  | { readonly status: 'done'; readonly summary: string; readonly outcome: DeployOutcome };

/** The part of Lambda's context object we use. */
export interface InvocationContext {
  readonly awsRequestId?: string;
  readonly functionName?: string;
}

/**
 * A handler whose collaborators come from `createDeps`, called once, on the first invocation
 * (settings are validated then; a bad setting fails every invocation with its name, and the
 * events wait in the dead-letter queue until the configuration is fixed and they are redriven).
 */
export function makeHandler(createDeps: () => DeployerDeps): DeployerHandler {
  let deps: DeployerDeps | undefined;
  return (async (event: unknown, context?: InvocationContext) => {
    deps ??= createDeps();
    const { telemetry } = deps;
    const { logger } = telemetry;
    logger.resetKeys();
    if (context?.awsRequestId !== undefined) logger.appendKeys({ requestId: context.awsRequestId });
    try {
      const step = stepPayload(event);
      if (step !== undefined) {
        logger.appendKeys({ execution: step.execution });
        return await deployStep(step.event, step.execution, deps);
      }
      return await handle(event, deps);
    } finally {
      telemetry.flush();
    }
  }) as DeployerHandler;
}

/** The Deploy step's payload (lib/constructs/deploy-workflow.ts). */
export interface DeployStepInput {
  /** The EventBridge event that started the execution. */
  readonly event: unknown;
  /** `$$.Execution.Id`: the verification lease names it. */
  readonly execution: string;
}

/** The deploy function: a workflow step, or (a bare event) a direct deploy. */
export interface DeployerHandler {
  (input: DeployStepInput, context?: InvocationContext): Promise<DeployStepOutput>;
  (event: unknown, context?: InvocationContext): Promise<DeployerResult>;
}

/** The Lambda entry point (`handler` in the construct): production collaborators, from the environment. */
export const handler = makeHandler(() => productionDeps(process.env));

/** The Deploy step's payload, `{ event, execution }`; undefined for a bare event. */
function stepPayload(payload: unknown): { event: unknown; execution: string } | undefined {
  if (payload === null || typeof payload !== 'object') return undefined;
  const { event, execution } = payload as Record<string, unknown>;
  if (event === undefined || typeof execution !== 'string' || execution === '') return undefined;
  return { event, execution };
}

/**
 * An event CodeBuild's record contradicts: logged, counted (alarmed), and the notification that
 * says so, for the workflow's Report step or the direct path to publish.
 */
function refuseUnconfirmed(
  error: UnconfirmedBuildError,
  event: unknown,
  deps: DeployerDeps,
  path: 'workflow' | 'direct',
): { subject: string; message: string } {
  deps.telemetry.logger.error('event not confirmed by CodeBuild', {
    field: error.field,
    reason: error.message,
    event,
  });
  deps.telemetry.recordUnconfirmedBuild(error);
  const [arrived, kept] =
    path === 'workflow'
      ? ['started a deploy', "the execution's input"]
      : ['reached the deployer', "the deployer's log"];
  return {
    subject: 'DockerCoins deploy: event REFUSED, CodeBuild does not confirm it',
    message:
      `An event claiming a successful build ${arrived}, but CodeBuild's own record of ` +
      `the build says otherwise. Nothing was deployed, and it will not be retried.\n\n` +
      `Field: ${error.field}\nProblem: ${error.message}\n\nThe event is in ${kept}.`,
  };
}

/** The Deploy step: deploy, then hand the deployed Deployments to the Verify map. */
async function deployStep(
  event: unknown,
  execution: string,
  deps: DeployerDeps,
): Promise<DeployStepOutput> {
  const { telemetry } = deps;
  const { logger } = telemetry;
  let build: BuildRecord;
  try {
    build = await readBuild(event, deps);
  } catch (error) {
    if (error instanceof UnconfirmedBuildError) {
      return {
        status: 'unconfirmed',
        summary: `event refused, CodeBuild does not confirm it: ${error.field}: ${error.message}`,
        targets: [],
        notification: refuseUnconfirmed(error, event, deps, 'workflow'),
      };
    }
    if (!(error instanceof InvalidEventError)) {
      // The lookup failed (CodeBuild refused or did not answer): logged and counted; the Task's
      // retries, then the failed execution (alarmed, redrivable) take it from here.
      logger.error('build lookup failed', {
        reason: error instanceof Error ? error.message : String(error),
        event,
      });
      telemetry.recordBuildLookupFailure();
      throw error;
    }
    logger.error('event refused', { field: error.field, reason: error.message, event });
    telemetry.recordInvalidEvent(error);
    return {
      status: 'invalid',
      summary: `event refused: ${error.field}: ${error.message}`,
      targets: [],
      notification: {
        subject: 'DockerCoins deploy: event refused',
        message:
          `An event reached the deployer but was not deployed, and will not be retried.\n\n` +
          `Field: ${error.field}\nProblem: ${error.message}\n\nThe event is in the execution's input.`,
      },
    };
  }
  // Each PATCH takes the verification lease for this execution; a digest that already runs
  // unverified is leased too (resumable), one another execution verifies is skipped.
  const { outcome, summary } = await deployAndRecord(build, deps, {
    execution,
    deadlineSeconds: (ref) => deadlineOf(deps.verify, ref.service, ref.environment.name),
  });
  if (needsRetry(outcome)) {
    // The Task retries (what was deployed is then `already-running` under our own lease, and
    // verified); past its retries the execution fails, the alarm fires, a person redrives it.
    throw new TransientError(`deploy incomplete, will be retried: ${summary}`);
  }
  const targets: VerifyItem[] = verifyTargets(outcome).map((target) => ({
    target,
    pollSeconds: pollOf(deps.verify, target.environment),
    rollback: rollsBack(deps.verify, target.environment),
  }));
  return {
    status: 'done',
    summary,
    build: {
      service: build.service,
      buildNumber: build.buildNumber,
      commit: build.commit,
      imageTag: build.imageTag,
      buildArn: build.buildArn,
      finishedAt: build.finishedAt.toISOString(),
    },
    targets,
    notification: formatNotification(outcome),
  };
}

async function handle(event: unknown, deps: DeployerDeps): Promise<DeployerResult> {
  const { telemetry } = deps;
  const { logger } = telemetry;
  let build: BuildRecord;
  try {
    build = await readBuild(event, deps);
  } catch (error) {
    if (error instanceof InvalidEventError) {
      logger.error('event refused', { field: error.field, reason: error.message, event });
      telemetry.recordInvalidEvent(error);
      await publishSafely(
        deps,
        'DockerCoins deploy: event refused',
        `An event reached the deployer but was not deployed, and will not be retried.\n\n` +
          `Field: ${error.field}\nProblem: ${error.message}\n\nThe event is in the deployer's log.`,
      );
      return { status: 'invalid', field: error.field, message: error.message };
    }
    if (error instanceof UnconfirmedBuildError) {
      const { subject, message } = refuseUnconfirmed(error, event, deps, 'direct');
      await publishSafely(deps, subject, message);
      return { status: 'unconfirmed', field: error.field, message: error.message };
    }
    // The lookup itself failed (CodeBuild refused or did not answer, after retries): said, counted,
    // and thrown, so that Lambda retries the event and then keeps it in the dead-letter queue for
    // a redrive once the cause is fixed.
    const reason = error instanceof Error ? error.message : String(error);
    logger.error('build lookup failed', { reason, event });
    telemetry.recordBuildLookupFailure();
    await publishSafely(
      deps,
      'DockerCoins deploy FAILED: the build could not be confirmed with CodeBuild',
      `A build event reached the deployer, but CodeBuild could not be asked about the build, so ` +
        `nothing was deployed. The event is retried, then kept in the deployer's dead-letter queue ` +
        `for a redrive once this is fixed.\n\nProblem: ${reason}`,
    );
    throw error;
  }

  const { outcome, summary } = await deployAndRecord(build, deps, undefined);

  const { subject, message } = formatNotification(outcome);
  await publishSafely(deps, subject, message);

  if (needsRetry(outcome)) {
    // Throwing hands the event back to Lambda: retried, then kept in the failure queue.
    throw new TransientError(`deploy incomplete, will be retried: ${summary}`);
  }
  return { status: 'done', summary, outcome };
}

/**
 * Deploys a confirmed build and records it: each decision logged in its one-line form as it is
 * made (the build's, then each Deployment's), the outcome logged and counted, and what now runs
 * and what a rollback goes back to marked in ECR (a failed mark is logged and counted inside,
 * never fails the deploy). `verification`: the workflow's lease; undefined for a direct deploy.
 */
async function deployAndRecord(
  build: BuildRecord,
  deps: DeployerDeps,
  verification: Parameters<typeof applyBuild>[2]['verification'],
): Promise<{ outcome: DeployOutcome; summary: string }> {
  const { telemetry, settings } = deps;
  const { logger } = telemetry;
  logger.appendKeys({
    buildArn: build.buildArn,
    builtService: build.service,
    buildNumber: build.buildNumber,
    commit: build.commit,
  });
  const outcome = await applyBuild(build, settings, {
    images: deps.images,
    clusters: deps.clusters,
    retry: deps.retry,
    now: deps.now,
    deployedBy: 'deployer',
    onPlan: (plan) =>
      logger.info('ref' in plan ? describeTargetPlan(plan) : describeBuildPlan(plan), {
        event: 'plan',
      }),
    ...(verification === undefined ? {} : { verification }),
  });
  const summary = describeOutcome(outcome);
  logOutcome(outcome, summary, telemetry);
  telemetry.recordOutcome(outcome);
  if (deps.markImages !== undefined) telemetry.recordImageMarks(await deps.markImages(outcome));
  return { outcome, summary };
}

/**
 * The build to deploy: what the event says, confirmed by CodeBuild's own record of the build
 * (BatchGetBuilds, one request), and made from CodeBuild's variables. Throws InvalidEventError or
 * UnconfirmedBuildError (refused, never retried), or the lookup's own failure.
 */
async function readBuild(event: unknown, deps: DeployerDeps): Promise<BuildRecord> {
  const parsed = parseEvent(event, deps.settings);
  const identity = parsed.kind === 'build' ? parsed.build : parsed.identity;
  const facts = await deps.retry(() => deps.builds.describeBuild(identity.buildId));
  return confirmBuild(parsed, facts, deps.settings);
}

/**
 * Publishes a notification; a failure to publish (after retries) is logged and counted, never
 * thrown: it must not make a deploy that happened look failed, nor retry one that is done.
 */
async function publishSafely(deps: DeployerDeps, subject: string, message: string): Promise<void> {
  try {
    await deps.retry(() => deps.notifier.publish(subject, message));
  } catch (error) {
    deps.telemetry.logger.error('notification not published', {
      subject,
      reason: error instanceof Error ? error.message : String(error),
    });
    deps.telemetry.recordNotificationFailure();
  }
}

function logOutcome(outcome: DeployOutcome, summary: string, telemetry: Telemetry): void {
  const { logger } = telemetry;
  if (outcome.kind === 'skipped') {
    logger.info(summary, { outcome: 'skipped', reason: outcome.reason, detail: outcome.detail });
    return;
  }
  for (const target of outcome.targets) {
    const keys = {
      environment: target.ref.environment.name,
      namespace: target.ref.environment.namespace,
      cluster: target.ref.environment.clusterName,
      deployment: target.ref.target.deployment,
      container: target.ref.target.container,
      to: target.to.image,
    };
    if (target.status === 'deployed') {
      logger.info('deployed', {
        ...keys,
        from: target.from?.image,
        generation: target.generation,
        latencyMs: target.latencyMs,
      });
    } else if (target.status === 'skipped') {
      logger.info('skipped', { ...keys, reason: target.reason, detail: target.detail });
    } else {
      logger.error('failed', { ...keys, reason: target.reason, detail: target.detail });
    }
  }
  logger.info(summary);
}
