/**
 * The Report step: one notification per build with every Deployment's verdict, and the outcome
 * metrics (Verified, RolledBack, VerifyFailed, RollbackFailed, TimeToReady). Returns `failed`
 * when a Deployment was left failed (not rolled back, or its rollback failed): the workflow then
 * ends in its Fail state, so the ExecutionsFailed alarm fires.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DEPLOYER_ENV, DEPLOYER_METRICS } from '../../lib/deployer-contract';
import { VERIFY_METRICS } from '../../lib/verify-contract';
import type { Retry } from '../../core/apply';
import { createRetry } from '../../core/retry';
import { describeVerifyLine, formatReport, type VerifyOutcome } from '../../core/describe';
import type { Notifier } from '../../core/types';
import { createNotifier, newSnsClient } from '../deployer/adapters/sns';
import type { ReportStepInput, ReportStepOutput, VerifyItem } from '../workflow';

export interface ReporterDeps {
  readonly notifier: Notifier;
  readonly logger: Logger;
  readonly metrics: Metrics;
  readonly retry: Retry;
}

/** Which end an iteration reached, as the Judge choice routed it. */
export type { VerifyOutcome };

export function outcomeOf(item: VerifyItem): VerifyOutcome {
  const state = item.verdict?.state;
  const rollback = item.target.phase === 'rollback';
  if (state === 'ready') return rollback ? 'rolled-back' : 'verified';
  if (state === 'failed') return rollback ? 'rollback-failed' : 'verify-failed';
  return 'stopped';
}

const seconds = (verdict: VerifyItem['verdict']): number | undefined =>
  verdict?.state === 'ready' ? verdict.seconds : undefined;

/** One line per Deployment, for people (core/describe.ts words it). */
export function describeItem(item: VerifyItem): string {
  const { target, verdict } = item;
  const outcome = outcomeOf(item);
  return describeVerifyLine({
    environment: target.environment,
    deployment: target.deployment,
    outcome,
    seconds: seconds(verdict),
    failure: item.failure?.message ?? verdict?.message ?? '',
    rollbackImage: outcome === 'rolled-back' ? (item.rollbackNote ?? target.image) : target.image,
    notRolledBack: item.rollbackNote ?? `rollback is off in ${target.environment}`,
    rollbackFailure: verdict?.message ?? '',
    stopped: { state: verdict?.state ?? 'no verdict', message: verdict?.message ?? '' },
  });
}

/** Seconds from the build's end to Ready, when both are known. */
export function timeToReady(item: VerifyItem): number | undefined {
  const { buildEndedAt, startedAt } = item.target;
  const ready = seconds(item.verdict);
  if (buildEndedAt === undefined || ready === undefined) return undefined;
  return (Date.parse(startedAt) - Date.parse(buildEndedAt)) / 1000 + ready;
}

const METRIC_OF: Record<VerifyOutcome, string | undefined> = {
  verified: VERIFY_METRICS.verified,
  'rolled-back': VERIFY_METRICS.rolledBack,
  'verify-failed': VERIFY_METRICS.verifyFailed,
  'rollback-failed': VERIFY_METRICS.rollbackFailed,
  stopped: undefined,
};

export function makeHandler(
  createDeps: () => ReporterDeps,
): (input: ReportStepInput) => Promise<ReportStepOutput> {
  let deps: ReporterDeps | undefined;
  return async (input) => {
    deps ??= createDeps();
    const { logger, metrics } = deps;
    const verdicts = input.verdicts ?? [];
    const outcomes = verdicts.map(outcomeOf);
    const lines = verdicts.map(describeItem);
    for (const [i, item] of verdicts.entries()) {
      const name = METRIC_OF[outcomes[i]!];
      if (name !== undefined) metrics.addMetric(name, MetricUnit.Count, 1);
      const ttr = outcomes[i] === 'verified' ? timeToReady(item) : undefined;
      if (ttr !== undefined) metrics.addMetric(VERIFY_METRICS.timeToReady, MetricUnit.Seconds, ttr);
      logger.info(lines[i]!, { outcome: outcomes[i], environment: item.target.environment });
    }
    const failed = outcomes.some((o) => o === 'verify-failed' || o === 'rollback-failed');
    const { subject, message } = formatReport(input.notification, outcomes, lines);
    try {
      await deps.retry(() => deps!.notifier.publish(subject, message));
    } finally {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    }
    return { failed, subject, outcomes: lines };
  };
}

/** The Lambda entry point: the topic from the environment, SNS of the function's region. */
export const handler = makeHandler(() => {
  const region = process.env.AWS_REGION;
  const topicArn = process.env[DEPLOYER_ENV.topicArn];
  if (region === undefined || region === '' || topicArn === undefined || topicArn === '') {
    throw new Error(
      `AWS_REGION and ${DEPLOYER_ENV.topicArn} must be set (the Deployer construct sets them).`,
    );
  }
  const logger = new Logger({ serviceName: DEPLOYER_METRICS.serviceName });
  return {
    notifier: createNotifier({ client: () => newSnsClient(region), topicArn }),
    logger,
    metrics: new Metrics({
      namespace: DEPLOYER_METRICS.namespace,
      serviceName: DEPLOYER_METRICS.serviceName,
    }),
    retry: createRetry({
      onRetry: (error, attempt, delayMs) =>
        logger.warn('retrying', { attempt, delayMs, reason: error.message }),
    }),
  };
});
