/**
 * Runs every synth the bench needs and reduces the runs to one result per (size, app).
 */
import { exceededLimits } from './limits';
import {
  AppBuilder,
  naiveApp,
  ourApp,
  serviceNames,
  StackFigures,
  SynthRun,
  synthOnce,
} from './synth';

export type AppName = 'ours' | 'naive';

interface Variant {
  readonly app: AppName;
  readonly nag: boolean;
  readonly build: AppBuilder;
}

// The baseline runs without cdk-nag: it stands for the floor that CDK itself costs.
const VARIANTS: readonly Variant[] = [
  { app: 'ours', nag: true, build: ourApp(true) },
  { app: 'ours', nag: false, build: ourApp(false) },
  { app: 'naive', nag: false, build: naiveApp },
];

export interface Timing {
  readonly medianMs: number;
  readonly runsMs: readonly number[];
}

export interface StackResult extends StackFigures {
  /** Quotas this stack breaks; empty when it fits. */
  readonly exceeded: readonly string[];
}

export interface AppResult {
  readonly services: number;
  readonly app: AppName;
  readonly synthMs: { readonly nagOn: Timing | null; readonly nagOff: Timing | null };
  readonly stacks: readonly StackResult[];
}

export interface MeasureOptions {
  readonly sizes: readonly number[];
  readonly runs: number;
  /** Directory under which every synth gets (and removes) its own outdir. */
  readonly scratchRoot: string;
}

/**
 * The first synth of a variant pays for module loading (cdk-nag alone takes over a second) and
 * cold JIT; warming each variant at the largest size keeps that out of every measured cell.
 * Returns how many synths it ran, for the report.
 */
export function warmUp(options: MeasureOptions): number {
  const largest = serviceNames(Math.max(...options.sizes));
  for (const variant of VARIANTS) synthOnce(options.scratchRoot, variant.build, largest);
  return VARIANTS.length;
}

/** All measured runs, then one result per size and app, ours before the baseline. */
export function measure(options: MeasureOptions): AppResult[] {
  const runs = collectRuns(options);
  return options.sizes.flatMap((size) =>
    (['ours', 'naive'] as const).map((app) => summarize(size, app, runs)),
  );
}

type RunKey = `${AppName}:${boolean}:${number}`;

function runKey(app: AppName, nag: boolean, size: number): RunKey {
  return `${app}:${nag}:${size}`;
}

/**
 * Rounds outermost, so that drift (thermal, a neighbour on the machine) spreads over every cell
 * instead of landing on whichever cell ran last. The variant order rotates each round, because a
 * synth pays for the garbage its predecessor left: a fixed order would bill it to one variant.
 */
function collectRuns(options: MeasureOptions): Map<RunKey, SynthRun[]> {
  const runs = new Map<RunKey, SynthRun[]>();
  for (let round = 0; round < options.runs; round++) {
    for (const size of options.sizes) {
      const services = serviceNames(size);
      for (const variant of rotate(VARIANTS, round)) {
        const key = runKey(variant.app, variant.nag, size);
        const run = synthOnce(options.scratchRoot, variant.build, services);
        runs.set(key, [...(runs.get(key) ?? []), run]);
      }
    }
  }
  return runs;
}

function rotate<T>(items: readonly T[], by: number): T[] {
  const shift = by % items.length;
  return [...items.slice(shift), ...items.slice(0, shift)];
}

function summarize(size: number, app: AppName, runs: Map<RunKey, SynthRun[]>): AppResult {
  const nagOn = runs.get(runKey(app, true, size)) ?? [];
  const nagOff = runs.get(runKey(app, false, size)) ?? [];
  // The nag-on synth is what bin/app.ts deploys (suppressions land in template metadata).
  const figures = deterministicFigures(nagOn.length > 0 ? nagOn : nagOff, `${app} @ ${size}`);
  return {
    services: size,
    app,
    synthMs: { nagOn: timing(nagOn), nagOff: timing(nagOff) },
    stacks: figures.map((stack) => ({ ...stack, exceeded: exceededLimits(stack) })),
  };
}

/** Figures from repeated synths must agree; if they do not, no single row could be honest. */
function deterministicFigures(runs: readonly SynthRun[], label: string): readonly StackFigures[] {
  const first = runs[0];
  if (first === undefined) throw new Error(`No synth ran for ${label}.`);
  const expected = JSON.stringify(first.stacks);
  if (runs.some((run) => JSON.stringify(run.stacks) !== expected)) {
    throw new Error(`Templates of ${label} differ between identical synths; figures are unusable.`);
  }
  return first.stacks;
}

function timing(runs: readonly SynthRun[]): Timing | null {
  if (runs.length === 0) return null;
  const runsMs = runs.map((run) => run.ms);
  return { medianMs: median(runsMs), runsMs };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  const upper = sorted[middle] ?? Number.NaN;
  if (sorted.length % 2 === 1) return upper;
  return ((sorted[middle - 1] ?? Number.NaN) + upper) / 2;
}
