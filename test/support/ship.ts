import * as path from 'node:path';
import type { CliDeps } from '../../cli/context';
import { runShip } from '../../cli/main';

/** The repository: its cdk.json is the configuration `ship` reads in tests. */
export const REPO_ROOT = path.join(__dirname, '..', '..');

export interface ShipRun {
  readonly status: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs `ship` in-process as bin/ship.js does, with its output captured and stderr not a
 * terminal. Defaults: this checkout's configuration, an empty environment, no waiting.
 */
export async function runShipCaptured(
  args: readonly string[],
  deps: Partial<CliDeps> = {},
): Promise<ShipRun> {
  let stdout = '';
  let stderr = '';
  const status = await runShip(
    args,
    {
      stdout: { write: (text: string) => (stdout += text) },
      stderr: { write: (text: string) => (stderr += text) },
      stderrIsTTY: false,
    },
    {
      env: {},
      cwd: REPO_ROOT,
      homeDir: REPO_ROOT,
      appDir: REPO_ROOT,
      now: () => new Date(),
      sleep: () => Promise.resolve(),
      ...deps,
    },
  );
  return { status, stdout, stderr };
}
