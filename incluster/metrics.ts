/**
 * The deployer's metrics in the Prometheus text exposition format 0.0.4: counters with labels, one
 * gauge, one histogram. Small on purpose (no client library: a dozen series, no dependency).
 */

/** Every metric the deployer exposes, by name: docs/incluster.md lists the same. */
export const METRICS = {
  notificationsRefused: {
    name: 'ship_deployer_notifications_refused_total',
    help: 'Notification requests refused, by reason (unauthorized, too-large, unsupported-media-type, malformed).',
  },
  eventsReceived: {
    name: 'ship_deployer_events_received_total',
    help: 'Registry events received in accepted notifications.',
  },
  eventsIgnored: {
    name: 'ship_deployer_events_ignored_total',
    help: 'Registry events left alone, by reason (not-a-push, not-a-manifest, no-tag, repository-not-ours, tag-not-ours, tag-not-deployed, duplicate, queue-full, shutting-down).',
  },
  imagesRefused: {
    name: 'ship_deployer_images_refused_total',
    help: 'Pushed images not deployed because of their labels or the registry, by reason (labels, registry).',
  },
  deploys: {
    name: 'ship_deployer_deploys_total',
    help: 'Deployments patched to a new image, by environment and service.',
  },
  skips: {
    name: 'ship_deployer_skips_total',
    help: 'Builds or Deployments left as they are, by reason (not-a-deploy-ref, tag-not-deployable, already-running, older-build, paused, digest-rejected, verifying, in-progress, not-the-deploy-tag).',
  },
  failures: {
    name: 'ship_deployer_deploy_failures_total',
    help: 'Deployments that could not be deployed to, by reason.',
  },
  verdicts: {
    name: 'ship_deployer_verdicts_total',
    help: 'Verification verdicts, by result (verified, failed, superseded, changed, abandoned).',
  },
  rollbacks: {
    name: 'ship_deployer_rollbacks_total',
    help: 'Rollbacks after a failed verification, by result (rolled-back, none).',
  },
  timeToReady: {
    name: 'ship_deployer_time_to_ready_seconds',
    help: 'From the push seen (notification or reconcile) to the new pods Ready, for verified deploys.',
  },
  reconciles: {
    name: 'ship_deployer_reconciles_total',
    help: 'Reconcile passes, by result (ok, error).',
  },
  lastReconcile: {
    name: 'ship_deployer_last_reconcile_timestamp_seconds',
    help: 'When the last reconcile pass ended without error (Unix time).',
  },
  webhooks: {
    name: 'ship_deployer_webhooks_total',
    help: 'Webhook notifications, by result (sent, failed).',
  },
  queued: {
    name: 'ship_deployer_queue_depth',
    help: 'Pushes waiting to be handled.',
  },
} as const;

type MetricKey = keyof typeof METRICS;
type Labels = Readonly<Record<string, string>>;

/** Seconds: a rollout takes seconds to minutes; the verify deadline defaults to 180. */
export const TIME_TO_READY_BUCKETS = [1, 2, 5, 10, 20, 30, 60, 120, 180, 300, 600] as const;

const escape = (value: string): string =>
  value.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

function labelText(labels: Labels): string {
  const entries = Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
  return entries.length === 0
    ? ''
    : `{${entries.map(([k, v]) => `${k}="${escape(v)}"`).join(',')}}`;
}

export class Metrics {
  private readonly counters = new Map<MetricKey, Map<string, number>>();
  private readonly gauges = new Map<MetricKey, number>();
  private readonly histogram = {
    counts: TIME_TO_READY_BUCKETS.map(() => 0),
    sum: 0,
    count: 0,
  };

  inc(metric: MetricKey, labels: Labels = {}, by = 1): void {
    const series = this.counters.get(metric) ?? new Map<string, number>();
    const key = labelText(labels);
    series.set(key, (series.get(key) ?? 0) + by);
    this.counters.set(metric, series);
  }

  set(metric: MetricKey, value: number): void {
    this.gauges.set(metric, value);
  }

  observeTimeToReady(seconds: number): void {
    TIME_TO_READY_BUCKETS.forEach((bound, i) => {
      if (seconds <= bound) this.histogram.counts[i]! += 1;
    });
    this.histogram.sum += seconds;
    this.histogram.count += 1;
  }

  /** A counter's value (tests and the bench read it). */
  value(metric: MetricKey, labels: Labels = {}): number {
    return this.counters.get(metric)?.get(labelText(labels)) ?? 0;
  }

  /** The exposition text. */
  render(): string {
    const lines: string[] = [];
    for (const [key, { name, help }] of Object.entries(METRICS) as [
      MetricKey,
      { name: string; help: string },
    ][]) {
      if (key === 'timeToReady') {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} histogram`);
        TIME_TO_READY_BUCKETS.forEach((bound, i) => {
          lines.push(`${name}_bucket{le="${bound}"} ${this.histogram.counts[i]}`);
        });
        lines.push(`${name}_bucket{le="+Inf"} ${this.histogram.count}`);
        lines.push(`${name}_sum ${this.histogram.sum}`, `${name}_count ${this.histogram.count}`);
        continue;
      }
      if (key === 'lastReconcile' || key === 'queued') {
        lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
        lines.push(`${name} ${this.gauges.get(key) ?? 0}`);
        continue;
      }
      lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} counter`);
      for (const [labels, value] of this.counters.get(key) ?? []) {
        lines.push(`${name}${labels} ${value}`);
      }
    }
    return `${lines.join('\n')}\n`;
  }
}

/** What `/metrics` answers with. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';
