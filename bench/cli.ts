/**
 * What a person waits for: the whole `npx cdk synth` process (CLI start, ts-node, the app, the
 * assembly), beside the CLI's own start-up as its baseline. In-process figures (measure.ts) show
 * how synth scales; these show where the seconds a user sees actually go.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import * as path from 'node:path';
import { median, Timing } from './measure';
import { REPO_ROOT, serviceNames } from './synth';
import { Column, formatTable } from './table';

export interface CliTiming {
  readonly command: string;
  readonly timing: Timing;
}

function timedRun(args: readonly string[]): number {
  const start = performance.now();
  const result = spawnSync('npx', ['--no-install', 'cdk', ...args], {
    cwd: REPO_ROOT,
    encoding: 'utf8',
    timeout: 120_000,
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
  const commands: { label: string; args: (outdir: string) => string[] }[] = [
    { label: 'npx cdk --version (CLI start-up only: the baseline)', args: () => ['--version'] },
    ...sizes.map((size) => ({
      label: `npx cdk synth, ${size} services`,
      args: (outdir: string) => [
        'synth',
        '--quiet',
        '--output',
        outdir,
        '-c',
        `services=${serviceNames(size).join(',')}`,
        '-c',
        'sourceOwner=bench',
      ],
    })),
  ];
  return commands.map(({ label, args }) => {
    const runsMs = Array.from({ length: runs }, () => {
      const outdir = mkdtempSync(path.join(scratchRoot, 'cli-'));
      try {
        return timedRun(args(outdir));
      } finally {
        rmSync(outdir, { recursive: true, force: true });
      }
    });
    return { command: label, timing: { medianMs: median(runsMs), runsMs } };
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
