/**
 * The `ship` CLI's start-up, as a person feels it: `ship --help` and `ship tags` (which reads the
 * app configuration and the git checkout) as whole processes. Ours: bin/ship.js, which runs the
 * esbuild bundle it keeps in node_modules/.cache/ship (built once before timing). Baseline, in the
 * same run: the same CLI compiled on the fly by ts-node (transpile-only), the usual way to run a
 * TypeScript CLI from a checkout and what bin/ship.js did at first.
 */
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Verdict } from './checks';
import { median } from './measure';
import { REPO_ROOT } from './synth';
import { formatTable } from './table';

export type ShipVariant = 'bundled' | 'ts-node';
const COMMANDS = [['--help'], ['tags', '--git-dir', REPO_ROOT]] as const;

export interface ShipStartFigures {
  readonly variant: ShipVariant;
  readonly command: string;
  readonly medianMs: number;
  readonly runsMs: readonly number[];
}

function run(variant: ShipVariant, entry: string, args: readonly string[]): number {
  const started = process.hrtime.bigint();
  const result = spawnSync(process.execPath, [entry, ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
  });
  const ms = Number(process.hrtime.bigint() - started) / 1e6;
  if (result.status !== 0) {
    throw new Error(
      `ship (${variant}) ${args.join(' ')} failed (${result.status}): ${result.stderr}`,
    );
  }
  return ms;
}

export function measureShipStart(scratchRoot: string, runs: number): ShipStartFigures[] {
  const naiveEntry = path.join(scratchRoot, 'ship-ts-node.js');
  writeFileSync(
    naiveEntry,
    [
      `require(${JSON.stringify(require.resolve('ts-node'))}).register({ project: ${JSON.stringify(path.join(REPO_ROOT, 'tsconfig.json'))}, transpileOnly: true });`,
      `const { runShip } = require(${JSON.stringify(path.join(REPO_ROOT, 'cli/main.ts'))});`,
      `runShip(process.argv.slice(2), { stdout: process.stdout, stderr: process.stderr, stderrIsTTY: false },`,
      `  { env: process.env, cwd: process.cwd(), homeDir: require('os').homedir(), appDir: ${JSON.stringify(REPO_ROOT)},`,
      `    now: () => new Date(), sleep: (ms) => new Promise((r) => setTimeout(r, ms)) }).then((s) => { process.exitCode = s; });`,
      '',
    ].join('\n'),
  );
  const entries: Record<ShipVariant, string> = {
    bundled: path.join(REPO_ROOT, 'bin/ship.js'),
    'ts-node': naiveEntry,
  };
  // One run of each first: builds the bundle if the sources changed, warms the file cache.
  for (const variant of ['bundled', 'ts-node'] as const) run(variant, entries[variant], ['--help']);
  const figures: ShipStartFigures[] = [];
  for (const args of COMMANDS) {
    for (const variant of ['bundled', 'ts-node'] as const) {
      const runsMs = Array.from({ length: runs }, () => run(variant, entries[variant], args));
      figures.push({ variant, command: `ship ${args[0]}`, medianMs: median(runsMs), runsMs });
    }
  }
  return figures;
}

export function shipTable(figures: readonly ShipStartFigures[]): string {
  return formatTable(
    [
      { header: 'command', align: 'left' },
      { header: 'bundled (bin/ship.js) ms, median', align: 'right' },
      { header: 'ts-node on the fly ms, median', align: 'right' },
    ],
    [...new Set(figures.map((f) => f.command))].map((command) => {
      const of = (variant: ShipVariant): string =>
        (
          figures.find((f) => f.command === command && f.variant === variant)?.medianMs ?? NaN
        ).toFixed(0);
      return [command, of('bundled'), of('ts-node')];
    }),
  );
}

/** The bundled start must beat compiling on the fly, for every command measured. */
export function shipVerdicts(figures: readonly ShipStartFigures[]): Verdict[] {
  return [...new Set(figures.map((f) => f.command))].map((command) => {
    const ours = figures.find((f) => f.command === command && f.variant === 'bundled')!;
    const naive = figures.find((f) => f.command === command && f.variant === 'ts-node')!;
    const ok = ours.medianMs < naive.medianMs;
    return {
      ok,
      message:
        `ship start-up, ${command}: bundled ${ours.medianMs.toFixed(0)} ms, ts-node ${naive.medianMs.toFixed(0)} ms ` +
        `(medians) — ${ok ? 'faster' : 'NOT faster'}`,
    };
  });
}
