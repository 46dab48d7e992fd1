/**
 * What a person waits for: the whole `npx cdk synth` process (CLI start, the app, the assembly),
 * beside the CLI's own start-up as its baseline, and beside today's way of running the app before
 * bin/cdk-app.js (ts-node, CDK's built-in validation on: TS_NODE_APP), in the same run, runs
 * interleaved so that a busy machine slows both alike. In-process figures (measure.ts) show how
 * synth scales; these show where the seconds a user sees actually go.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import type { Verdict } from './checks';
import { median, Timing } from './measure';
import { REPO_ROOT, serviceNames } from './synth';
import { TS_NODE_APP } from '../test/support/app';
import { Column, formatTable } from './table';

export interface CliTiming {
  readonly command: string;
  readonly timing: Timing;
}

/** The most `npx cdk synth` may take, as a share of today's way: issue 18 asks for half. */
export const MAX_SYNTH_RATIO = 0.5;
const TODAYS_WAY = ', the way before (ts-node)';

function timedRun(args: readonly string[]): number {
  const start = performance.now();
  // Whatever the caller's shell says, each way runs as it does by default.
  const env = { ...process.env };
  delete env['CDK_VALIDATION'];
  const result = spawnSync('npx', ['--no-install', 'cdk', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 300_000,
    env,
  });
  const ms = performance.now() - start;
  if (result.status !== 0) {
    throw new Error(`npx cdk ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  }
  return ms;
}

/** Median of `runs` process runs per command, each synth writing to its own scratch outdir. */
export function measureCli(
  scratchRoot: string,
  sizes: readonly number[],
  runs: number,
): CliTiming[] {
  const synthArgs = (size: number, outdir: string): string[] => [
    'synth',
    '--quiet',
    '--output',
    outdir,
    '-c',
    `services=${serviceNames(size).join(',')}`,
    '-c',
    'sourceOwner=bench',
  ];
  const commands: { label: string; args: (outdir: string) => string[] }[] = [
    { label: 'npx cdk --version (CLI start-up only: the baseline)', args: () => ['--version'] },
    ...sizes.flatMap((size) => [
      { label: `npx cdk synth, ${size} services`, args: (o: string) => synthArgs(size, o) },
      {
        label: `npx cdk synth, ${size} services${TODAYS_WAY}`,
        args: (o: string) => [...synthArgs(size, o), '--app', TS_NODE_APP],
      },
    ]),
  ];
  // One unmeasured synth first: transpiles what changed (bin/cdk-app.js's cache), warms files.
  const warm = mkdtempSync(path.join(scratchRoot, 'cli-'));
  timedRun(synthArgs(sizes[0] ?? 4, warm));
  rmSync(warm, { recursive: true, force: true });
  const runsMs = commands.map(() => [] as number[]);
  for (let run = 0; run < runs; run += 1) {
    commands.forEach(({ args }, index) => {
      const outdir = mkdtempSync(path.join(scratchRoot, 'cli-'));
      try {
        runsMs[index]!.push(timedRun(args(outdir)));
      } finally {
        rmSync(outdir, { recursive: true, force: true });
      }
    });
  }
  return commands.map(({ label }, index) => ({
    command: label,
    timing: { medianMs: median(runsMs[index]!), runsMs: runsMs[index]! },
  }));
}

/** Each size's `npx cdk synth` against today's way, median to median: at most MAX_SYNTH_RATIO. */
export function cliVerdicts(timings: readonly CliTiming[]): Verdict[] {
  return timings
    .filter((t) => t.command.startsWith('npx cdk synth') && !t.command.endsWith(TODAYS_WAY))
    .map((ours) => {
      const before = timings.find((t) => t.command === `${ours.command}${TODAYS_WAY}`);
      const ratio = ours.timing.medianMs / (before?.timing.medianMs ?? NaN);
      const ok = ratio <= MAX_SYNTH_RATIO;
      return {
        ok,
        message:
          `${ours.command}, whole process: ${ours.timing.medianMs.toFixed(0)} ms, the way before (ts-node) ` +
          `${(before?.timing.medianMs ?? NaN).toFixed(0)} ms (medians): ratio ${ratio.toFixed(2)} — ` +
          (ok ? `at most ${MAX_SYNTH_RATIO}` : `NOT at most ${MAX_SYNTH_RATIO}`),
      };
    });
}

export function cliTable(timings: readonly CliTiming[]): string {
  const columns: Column[] = [
    { header: 'command', align: 'left' },
    { header: 'wall ms, median', align: 'right' },
    { header: 'runs ms', align: 'left' },
  ];
  return formatTable(
    columns,
    timings.map(({ command, timing }) => [
      command,
      timing.medianMs.toFixed(0),
      timing.runsMs.map((ms) => ms.toFixed(0)).join(', '),
    ]),
  );
}
