/**
 * Turns measured results into growth rates and pass/fail verdicts. Only our app is judged: the
 * naive baseline is there for comparison, and its figures cannot fail the bench.
 */
import { resolveConfig } from '../lib/config';
import { MAX_EVENT_PATTERN_CHARS, patternChars } from '../lib/constructs/deployer';
import { CFN_LIMITS, Interval, isConstantGrowth, perServiceGrowth } from './limits';
import { AppName, AppResult } from './measure';
import { serviceNames, StackFigures } from './synth';
import { formatCount } from './table';

/**
 * `resources-less-rule-splits`: resources without the Deployer's documented step. An EventBridge
 * event pattern holds at most 2,048 characters, so past some number of services the Deployer
 * shares the project names out over more rules (all starting the one state machine through one
 * role: no per-rule permission). Those extra rules are left out of this total and checked on
 * their own ({@link ruleSplitVerdict}), so the growth gate still sees any other per-service cost.
 */
export type Metric = 'resources' | 'resources-less-rule-splits' | 'outputs';

const RULE = 'AWS::Events::Rule';
/** Would come with a rule that invokes a function directly; the rules start the state machine instead. */
const RULE_PERMISSION = 'AWS::Lambda::Permission';
/** The bench's app, as createStacks names its stacks. */
const STACK_NAME_PREFIX = resolveConfig({ sourceOwner: 'bench' }).config.stackNamePrefix;
const DEPLOYER_STACK = `${STACK_NAME_PREFIX}-Deployer`;

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
    { app: 'ours', metric: 'resources-less-rule-splits' },
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
      gated: app === 'ours' && metric === 'resources-less-rule-splits',
    };
  });
}

/** Summed over the app's stacks: a service may one day add resources to more than one stack. */
function total(result: AppResult, metric: Metric): number {
  if (metric === 'resources-less-rule-splits') {
    return total(result, 'resources') - ruleSplitResources(deployerStack(result));
  }
  return result.stacks.reduce((sum, stack) => sum + stack[metric], 0);
}

function deployerStack(result: AppResult): StackFigures | undefined {
  return result.stacks.find((stack) => stack.stackName === DEPLOYER_STACK);
}

/** The rules beyond the first (and invoke permissions beyond the first, were there any). */
function ruleSplitResources(stack: StackFigures | undefined): number {
  if (stack === undefined) return 0;
  const beyondFirst = (type: string): number => Math.max(0, (stack.resourceTypes[type] ?? 0) - 1);
  return beyondFirst(RULE) + beyondFirst(RULE_PERMISSION);
}

/**
 * How many of the bench's project names (`<prefix>-svc-NNN`, all of one length) one event pattern
 * holds, by the construct's own measure of a pattern.
 */
export function projectNamesPerRule(): number {
  const names = serviceNames(999).map((service) => `${STACK_NAME_PREFIX}-${service}`);
  let fits = 0;
  while (fits < names.length && patternChars(names.slice(0, fits + 1)) <= MAX_EVENT_PATTERN_CHARS) {
    fits += 1;
  }
  return fits;
}

/**
 * The step left out of the growth check, checked here: at every size, the Deployer has
 * ⌈services ÷ names per rule⌉ rules (no more: a rule per service would also grow linearly), and
 * no invoke permission (the rules start the state machine through one role).
 */
export function ruleSplitVerdict(results: readonly AppResult[]): Verdict {
  const perRule = projectNamesPerRule();
  const sizes = results
    .filter((result) => result.app === 'ours')
    .map((result) => {
      const stack = deployerStack(result);
      return {
        services: result.services,
        rules: stack?.resourceTypes[RULE] ?? 0,
        permissions: stack?.resourceTypes[RULE_PERMISSION] ?? 0,
        expected: Math.ceil(result.services / perRule),
      };
    });
  const ok = sizes.every((s) => s.rules === s.expected && s.permissions === 0);
  const list = (pick: (s: (typeof sizes)[number]) => number): string => sizes.map(pick).join(', ');
  return {
    ok,
    message:
      `${DEPLOYER_STACK} EventBridge rules at ${list((s) => s.services)} services: ` +
      `${list((s) => s.rules)}, invoke permissions ${list((s) => s.permissions)}; expected ` +
      `${list((s) => s.expected)} = ⌈services ÷ ${perRule}⌉ (project names per ` +
      `${formatCount(MAX_EVENT_PATTERN_CHARS)}-character pattern), no permission (one role starts the workflow) — ` +
      (ok ? 'as documented' : 'NOT as documented'),
  };
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
  return [
    ...limitVerdicts,
    ...growth.filter((g) => g.gated).map(growthVerdict),
    ruleSplitVerdict(results),
  ];
}

function growthVerdict(growth: Growth): Verdict {
  const rates = growth.intervals
    .map((i) => `${formatRate(i.perService)} (${i.fromServices}→${i.toServices})`)
    .join(' and ');
  const excluded = growth.metric === 'resources-less-rule-splits' ? ' (rule splits excluded)' : '';
  const what = `Resources added per additional service${excluded}: ${rates}`;
  return growth.constant
    ? { ok: true, message: `${what} — constant` }
    : { ok: false, message: `${what} — NOT constant` };
}

/** How each metric reads in the report. */
export const METRIC_LABELS: Readonly<Record<Metric, string>> = {
  resources: 'resources',
  'resources-less-rule-splits': 'resources, rule splits excluded',
  outputs: 'outputs',
};

/** Whole rates print as integers; anything else shows enough digits to see why it failed. */
export function formatRate(rate: number): string {
  return Number.isInteger(rate) ? String(rate) : rate.toFixed(3);
}

export const LIMITS_TEXT =
  `${formatCount(CFN_LIMITS.resources)} resources, ${formatCount(CFN_LIMITS.outputs)} outputs, ` +
  `${formatCount(CFN_LIMITS.templateBytes)} template bytes (body in S3), per stack`;
