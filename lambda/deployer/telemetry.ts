/**
 * Logs and metrics of the deployer, configured in one place (Powertools). Logs are JSON, keyed by
 * build ARN, service and environment; metrics go out in CloudWatch's embedded metric format, so
 * no API call and no permission is needed to publish them.
 */
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics, MetricUnit } from '@aws-lambda-powertools/metrics';
import { DEPLOYER_METRICS } from '../../lib/deployer-contract';
import type { UnconfirmedBuildError } from '../../core/confirm';
import type { DeployOutcome, InvalidEventError } from '../../core/types';
import type { ImageMarkReport } from './adapters/ecr';

export interface Telemetry {
  readonly logger: Logger;
  /** Counts and times one event's outcome; per-reason and per-environment breakdowns included. */
  recordOutcome(outcome: DeployOutcome): void;
  recordInvalidEvent(error: InvalidEventError): void;
  /** An event CodeBuild does not confirm (alarmed: someone sends events that are not builds'). */
  recordUnconfirmedBuild(error: UnconfirmedBuildError): void;
  /** BatchGetBuilds failed (refused, or no answer after retries). */
  recordBuildLookupFailure(): void;
  /** A notification could not be published. */
  recordNotificationFailure(): void;
  /** Counts the marks of running and rollback images that could not be put (0 is not sent). */
  recordImageMarks(report: ImageMarkReport): void;
  /** Writes the metrics of this invocation (call once, at its end, also when it fails). */
  flush(): void;
}

export interface TelemetryOptions {
  readonly logger?: Logger;
  readonly metrics?: Metrics;
}

export function createTelemetry(options: TelemetryOptions = {}): Telemetry {
  const logger = options.logger ?? new Logger({ serviceName: DEPLOYER_METRICS.serviceName });
  const metrics =
    options.metrics ??
    new Metrics({
      namespace: DEPLOYER_METRICS.namespace,
      serviceName: DEPLOYER_METRICS.serviceName,
    });

  const breakdown = (name: string, dimensions: Record<string, string>): void => {
    const single = metrics.singleMetric();
    single.addDimensions(dimensions);
    single.addMetric(name, MetricUnit.Count, 1);
  };

  return {
    logger,
    recordOutcome(outcome) {
      if (outcome.kind === 'skipped') {
        metrics.addMetric(DEPLOYER_METRICS.skipped, MetricUnit.Count, 1);
        breakdown(DEPLOYER_METRICS.skipped, { reason: outcome.reason });
        return;
      }
      for (const target of outcome.targets) {
        const environment = target.ref.environment.name;
        switch (target.status) {
          case 'deployed':
            metrics.addMetric(DEPLOYER_METRICS.deployed, MetricUnit.Count, 1);
            metrics.addMetric(
              DEPLOYER_METRICS.deployLatency,
              MetricUnit.Milliseconds,
              target.latencyMs,
            );
            breakdown(DEPLOYER_METRICS.deployed, { environment });
            break;
          case 'skipped':
            metrics.addMetric(DEPLOYER_METRICS.skipped, MetricUnit.Count, 1);
            breakdown(DEPLOYER_METRICS.skipped, { reason: target.reason });
            break;
          case 'failed':
            metrics.addMetric(DEPLOYER_METRICS.failed, MetricUnit.Count, 1);
            breakdown(DEPLOYER_METRICS.failed, { reason: target.reason, environment });
            break;
        }
      }
    },
    recordInvalidEvent(error) {
      metrics.addMetric(DEPLOYER_METRICS.invalidEvents, MetricUnit.Count, 1);
      breakdown(DEPLOYER_METRICS.invalidEvents, { field: error.field });
    },
    recordUnconfirmedBuild(error) {
      metrics.addMetric(DEPLOYER_METRICS.unconfirmedBuilds, MetricUnit.Count, 1);
      breakdown(DEPLOYER_METRICS.unconfirmedBuilds, { field: error.field });
    },
    recordBuildLookupFailure() {
      metrics.addMetric(DEPLOYER_METRICS.buildLookupFailures, MetricUnit.Count, 1);
    },
    recordNotificationFailure() {
      metrics.addMetric(DEPLOYER_METRICS.notificationFailures, MetricUnit.Count, 1);
    },
    recordImageMarks(report) {
      if (report.failed.length === 0) return;
      metrics.addMetric(DEPLOYER_METRICS.imageMarkFailures, MetricUnit.Count, report.failed.length);
      for (const { mark } of report.failed) {
        breakdown(DEPLOYER_METRICS.imageMarkFailures, { environment: mark.environment });
      }
    },
    flush() {
      if (metrics.hasStoredMetrics()) metrics.publishStoredMetrics();
    },
  };
}
