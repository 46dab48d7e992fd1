/**
 * Turns measured results into growth rates and pass/fail verdicts. Only our app is judged: the
 * naive baseline is there for comparison, and its figures cannot fail the bench.
 */
import { CFN_LIMITS, Interval, isConstantGrowth, perServiceGrowth } from './limits';
import { AppName, AppResult } from './measure';
import { formatCount } from './table';

export type Metric = 'resources' | 'outputs';

export interface Growth {
  readonly app: AppName;
  readonly metric: Metric;
  readonly intervals: readonly Interval[];
  readonly constant: boolean;
  /** Whether this growth decides the exit code. */
  readonly gated: boolean;
}

export interface Verdict {
  readonly ok: boolean;
  readonly message: string;
}

export function growthOf(results: readonly AppResult[]): Growth[] {
  const combos: { app: AppName; metric: Metric }[] = [
    { app: 'ours', metric: 'resources' },
    { app: 'ours', metric: 'outputs' },
    { app: 'naive', metric: 'resources' },
  ];
  return combos.map(({ app, metric }) => {
    const points = results
      .filter((result) => result.app === app)
      .map((result) => ({ services: result.services, value: total(result, metric) }));
    const intervals = perServiceGrowth(points);
    return {
      app,
      metric,
      intervals,
      constant: isConstantGrowth(intervals),
      gated: app === 'ours' && metric === 'resources',
    };
  });
}

/** Summed over the app's stacks: a service may one day add resources to more than one stack. */
function total(result: AppResult, metric: Metric): number {
  return result.stacks.reduce((sum, stack) => sum + stack[metric], 0);
}

export function verdicts(results: readonly AppResult[], growth: readonly Growth[]): Verdict[] {
  const limitVerdicts = results
    .filter((result) => result.app === 'ours')
    .flatMap((result) => result.stacks.map((stack) => ({ result, stack })))
    .map(({ result, stack }): Verdict => {
      const figures =
        `${result.services} services: ${stack.stackName} has ${formatCount(stack.resources)} resources, ` +
        `${formatCount(stack.outputs)} outputs, ${formatCount(stack.templateBytes)} template bytes`;
      return stack.exceeded.length === 0
        ? { ok: true, message: `${figures} — within CloudFormation limits` }
        : { ok: false, message: `${figures} — EXCEEDS ${stack.exceeded.join(', ')}` };
    });
  return [...limitVerdicts, ...growth.filter((g) => g.gated).map(growthVerdict)];
}

function growthVerdict(growth: Growth): Verdict {
  const rates = growth.intervals
    .map((i) => `${formatRate(i.perService)} (${i.fromServices}→${i.toServices})`)
    .join(' and ');
  const what = `Resources added per additional service: ${rates}`;
  return growth.constant
    ? { ok: true, message: `${what} — constant` }
    : { ok: false, message: `${what} — NOT constant` };
}

/** Whole rates print as integers; anything else shows enough digits to see why it failed. */
export function formatRate(rate: number): string {
  return Number.isInteger(rate) ? String(rate) : rate.toFixed(3);
}

export const LIMITS_TEXT =
  `${formatCount(CFN_LIMITS.resources)} resources, ${formatCount(CFN_LIMITS.outputs)} outputs, ` +
  `${formatCount(CFN_LIMITS.templateBytes)} template bytes (body in S3), per stack`;
