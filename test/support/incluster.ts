import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { BuildOptions } from 'esbuild';
import { parse } from 'yaml';
import { REPO_ROOT } from './app';
import { freePort } from './registry';

/**
 * The in-cluster deployer as its container runs it: incluster/main.ts bundled by esbuild's
 * JavaScript API (as lib/constructs/lambda-bundle.ts bundles the Lambdas, and the Dockerfile the
 * service), started with `node` as a child process with the environment a test gives, listening
 * on a free port of 127.0.0.1. Its JSON log lines are kept for assertions.
 */
export const INCLUSTER_ENTRY = path.join(REPO_ROOT, 'incluster', 'main.ts');

/**
 * The registry configuration of k8s/registry/base/config.yml with the notifications endpoint of
 * the deployer, exactly as the contract gives it but for the URL (the deployer listens on
 * 127.0.0.1:`deployerPort` here). For startRegistry (test/support/registry.ts), which adapts the
 * listen address, storage and htpasswd path.
 */
export function registryConfigWithNotifications(
  deployerPort: number,
  token: string,
): Record<string, unknown> {
  const config = parse(
    readFileSync(path.join(REPO_ROOT, 'k8s/registry/base/config.yml'), 'utf8'),
  ) as Record<string, unknown> & { http: Record<string, unknown> };
  // The debug port serves health probes in the pod; registries started here must not share it.
  delete config.http.debug;
  config.log = { level: 'warn', formatter: 'text' };
  config.notifications = {
    endpoints: [
      {
        name: 'ship-deployer',
        url: `http://127.0.0.1:${deployerPort}/v1/registry-events`,
        headers: { Authorization: [`Bearer ${token}`] },
        ignoredmediatypes: ['application/octet-stream'],
      },
    ],
  };
  return config;
}

let bundled: string | undefined;

/** Bundles the entry point once per test file; returns the bundle's path. */
export function bundleDeployer(): string {
  if (bundled !== undefined) return bundled;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const esbuild = require('esbuild') as typeof import('esbuild');
  const outfile = path.join(mkdtempSync(path.join(tmpdir(), 'ship-deployer-')), 'ship-deployer.js');
  const options: BuildOptions = {
    entryPoints: [INCLUSTER_ENTRY],
    outfile,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    sourcemap: true,
    absWorkingDir: REPO_ROOT,
    logLevel: 'warning',
  };
  esbuild.buildSync(options);
  bundled = outfile;
  return outfile;
}

/** One JSON log line of the service. */
export type LogLine = Readonly<Record<string, unknown>> & { readonly msg: string };

export interface RunningDeployerProcess {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  readonly port: number;
  /** Every JSON log line so far, in order. */
  readonly logs: LogLine[];
  /** Lines of stdout/stderr that were not JSON (a crash's stack). */
  readonly output: () => string;
  /** Resolves with the first log line (from `from` on) that matches; rejects if the process exits first. */
  waitForLog(match: (line: LogLine) => boolean, what: string, from?: number): Promise<LogLine>;
  /** The value of a metric series in /metrics (`name{labels}` as exposed), 0 when absent. */
  metric(series: string): Promise<number>;
  /** Resolves with the exit code when the process ends by itself (or after stop()). */
  readonly exited: Promise<number | null>;
  /** SIGTERM and wait for the exit; resolves to the exit code. */
  stop(): Promise<number | null>;
  readonly child: ChildProcess;
}

export interface StartDeployerOptions {
  /** The environment (SHIP_DEPLOYER_CONFIG, token files, SHIP_KUBE_*, DOCKER_CONFIG, …). */
  readonly env: Readonly<Record<string, string>>;
  /** Wait for /readyz. @default true */
  readonly waitReady?: boolean;
  /** Gives up waiting after this many milliseconds (a safety net, not an assertion). @default 30000 */
  readonly readyTimeoutMs?: number;
  /** A fixed port (to start again where the registry's notifications go). @default - a free port */
  readonly port?: number;
}

export async function startDeployer(
  options: StartDeployerOptions,
): Promise<RunningDeployerProcess> {
  const bundle = bundleDeployer();
  const port = options.port ?? (await freePort());
  const child = spawn(process.execPath, ['--enable-source-maps', bundle], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? tmpdir(),
      HOSTNAME: 'ship-deployer-test',
      SHIP_LISTEN: `127.0.0.1:${port}`,
      ...options.env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: LogLine[] = [];
  let other = '';
  let pending = '';
  const waiters = new Set<() => void>();
  const wake = (): void => {
    for (const waiter of [...waiters]) waiter();
  };
  child.stdout?.on('data', (chunk: Buffer) => {
    pending += chunk.toString();
    let newline: number;
    while ((newline = pending.indexOf('\n')) >= 0) {
      const line = pending.slice(0, newline);
      pending = pending.slice(newline + 1);
      try {
        logs.push(JSON.parse(line) as LogLine);
      } catch {
        other += `${line}\n`;
      }
    }
    wake();
  });
  child.stderr?.on('data', (chunk: Buffer) => {
    other += chunk.toString();
  });
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  void exited.then(wake);
  const describe = (): string =>
    `logs:\n${logs.map((l) => JSON.stringify(l)).join('\n')}\nother output:\n${other}`;

  const waitForLog = (
    match: (line: LogLine) => boolean,
    what: string,
    from = 0,
  ): Promise<LogLine> =>
    new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`the deployer did not log ${what} within 60 s\n${describe()}`));
      }, 60_000);
      const check = (): void => {
        const found = logs.slice(from).find(match);
        if (found !== undefined) {
          waiters.delete(check);
          clearTimeout(timer);
          resolve(found);
        } else if (child.exitCode !== null || child.signalCode !== null) {
          waiters.delete(check);
          clearTimeout(timer);
          reject(
            new Error(
              `the deployer exited (${child.exitCode}) before logging ${what}\n${describe()}`,
            ),
          );
        }
      };
      waiters.add(check);
      check();
    });

  const url = `http://127.0.0.1:${port}`;
  const running: RunningDeployerProcess = {
    url,
    port,
    logs,
    output: () => other,
    child,
    exited,
    waitForLog,
    metric: async (series) => {
      const text = await (await fetch(`${url}/metrics`)).text();
      const line = text.split('\n').find((l) => l.startsWith(`${series} `));
      return line === undefined ? 0 : Number(line.slice(series.length + 1));
    },
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      return exited;
    },
  };
  if (options.waitReady ?? true) {
    const deadline = Date.now() + (options.readyTimeoutMs ?? 30_000);
    for (;;) {
      if (child.exitCode !== null) {
        throw new Error(`the deployer exited with ${child.exitCode} before ready\n${describe()}`);
      }
      try {
        if ((await fetch(`${url}/readyz`)).status === 200) break;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the deployer was not ready on ${url}\n${describe()}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  return running;
}
