/**
 * CloudFormation's per-stack quotas and the checks that decide the bench's exit code.
 */
import { MAX_STACK_OUTPUTS } from '../lib/stacks/registry-stack';
import { StackFigures } from './synth';
import { formatCount } from './table';

/**
 * Per-stack quotas (CloudFormation User Guide, "Understand CloudFormation quotas"). The template
 * limit is the one for a template body in S3, because the default synthesizer uploads templates
 * to the bootstrap bucket; the 51,200-byte limit of an inline body never applies.
 */
export const CFN_LIMITS = {
  resources: 500,
  outputs: MAX_STACK_OUTPUTS,
  templateBytes: 1_000_000,
} as const;

/** The quotas a stack breaks, as short reasons; empty when it fits. */
export function exceededLimits(stack: StackFigures): string[] {
  const exceeded: string[] = [];
  if (stack.resources > CFN_LIMITS.resources) {
    exceeded.push(`resources ${stack.resources} > ${CFN_LIMITS.resources}`);
  }
  if (stack.outputs > CFN_LIMITS.outputs) {
    exceeded.push(`outputs ${stack.outputs} > ${CFN_LIMITS.outputs}`);
  }
  if (stack.templateBytes > CFN_LIMITS.templateBytes) {
    exceeded.push(
      `template ${formatCount(stack.templateBytes)} B > ${formatCount(CFN_LIMITS.templateBytes)} B`,
    );
  }
  return exceeded;
}

/** A total (resources, outputs) of an app at one service count. */
export interface SizePoint {
  readonly services: number;
  readonly value: number;
}

/** Growth of a total between two consecutive service counts. */
export interface Interval {
  readonly fromServices: number;
  readonly toServices: number;
  readonly perService: number;
}

/** Growth per added service between each pair of consecutive sizes, smallest first. */
export function perServiceGrowth(points: readonly SizePoint[]): Interval[] {
  const sorted = [...points].sort((a, b) => a.services - b.services);
  const intervals: Interval[] = [];
  for (let i = 1; i < sorted.length; i++) {
    const from = sorted[i - 1];
    const to = sorted[i];
    if (from === undefined || to === undefined) continue;
    intervals.push({
      fromServices: from.services,
      toServices: to.services,
      perService: (to.value - from.value) / (to.services - from.services),
    });
  }
  return intervals;
}

/**
 * Linear growth means the app has no hidden per-N cost (a policy per pair of services, say): the
 * rate must be the same whole number over every interval, so extrapolation is exact.
 */
export function isConstantGrowth(intervals: readonly Interval[]): boolean {
  const first = intervals[0];
  if (first === undefined || !Number.isInteger(first.perService)) return false;
  return intervals.every((interval) => interval.perService === first.perService);
}
