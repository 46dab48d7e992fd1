import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';

/**
 * Runs a CodeBuild buildspec (version 0.2) on this machine with CodeBuild's semantics, so a test
 * can run the real buildspec's own commands against real local parts:
 * - every command of every phase runs in ONE bash process, in order, so variables, the working
 *   directory and functions carry over (v0.2); shell options (`set -e`, pipefail) are reset after
 *   each command, since CodeBuild runs each command as its own script;
 * - a phase stops at its first failing command; its `finally` commands still run;
 * - after a failed phase: `on-failure: ABORT` ends the build; `CONTINUE` goes on; without it, a
 *   failed install or pre_build ends the build and a failed build still runs post_build
 *   (CodeBuild's phase transitions), with CODEBUILD_BUILD_SUCCEEDING=0;
 * - `env: exported-variables` are read from the environment when post_build ends.
 * Not emulated, and said so in the output: `runtime-versions` (this machine's tools are used).
 * Anything else the runner does not know (artifacts, reports, secrets, run-as, RETRY) is refused
 * rather than silently ignored.
 */

export const PHASES = ['install', 'pre_build', 'build', 'post_build'] as const;
export type Phase = (typeof PHASES)[number];

export interface RunBuildspecOptions {
  /** Path of the buildspec file. */
  readonly buildspec: string;
  /** The source checkout: the working directory and CODEBUILD_SRC_DIR. */
  readonly sourceDir: string;
  /**
   * The build image's environment (PATH, HOME, …). Its CODEBUILD_* entries are dropped: CodeBuild
   * sets its own, and a test run inside CodeBuild must not leak them into the build under test.
   */
  readonly baseEnv: NodeJS.ProcessEnv;
  /**
   * What the project and CodeBuild set: the project's environment variables and CODEBUILD_*.
   * They win over the buildspec's `env: variables`, which win over `baseEnv` (CodeBuild's order).
   */
  readonly variables: Readonly<Record<string, string>>;
  /** Kills the build after this long. @default 120000 */
  readonly timeoutMs?: number;
}

export interface PhaseResult {
  readonly phase: Phase;
  readonly status: 'SUCCEEDED' | 'FAILED';
}

export interface BuildspecRun {
  /** 0 when every phase succeeded, else the exit status of the first failing command. */
  readonly exitCode: number;
  /** The first phase that failed. */
  readonly failedPhase?: Phase;
  /** The phases that ran, in order. */
  readonly phases: readonly PhaseResult[];
  /** stdout and stderr of the build, interleaved as written. */
  readonly output: string;
  /** `env: exported-variables` as they were when post_build ended; empty if it never ran. */
  readonly exported: Record<string, string>;
}

/** The buildspec asks for something this runner does not emulate, or is malformed. */
export class BuildspecError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'BuildspecError';
  }
}

type OnFailure = 'ABORT' | 'CONTINUE' | undefined;

interface PhaseSpec {
  readonly name: Phase;
  readonly commands: readonly string[];
  readonly finally: readonly string[];
  readonly onFailure: OnFailure;
  readonly runtimeVersions?: Record<string, unknown>;
}

interface Buildspec {
  readonly variables: Record<string, string>;
  readonly exportedVariables: readonly string[];
  readonly phases: readonly PhaseSpec[];
}

const PHASE_KEYS = ['commands', 'finally', 'on-failure', 'runtime-versions'];
const ENV_KEYS = ['shell', 'variables', 'exported-variables'];

function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function refuseUnknownKeys(where: string, value: Record<string, unknown>, known: string[]): void {
  const unknown = Object.keys(value).filter((key) => !known.includes(key));
  if (unknown.length > 0) {
    throw new BuildspecError(
      `${where}: ${unknown.map((k) => `"${k}"`).join(', ')} not supported by the local runner (it knows ${known.join(', ')}); extend test/support/buildspec-runner.ts`,
    );
  }
}

function commandList(value: unknown, where: string): string[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new BuildspecError(`${where} must be a list of commands`);
  return value.map((command: unknown, index) => {
    if (typeof command !== 'string') {
      throw new BuildspecError(
        `${where}[${index}] is not a string but ${JSON.stringify(command)}: YAML read a ": " or "- " in it as structure; quote the command or use a "|" block`,
      );
    }
    return command;
  });
}

/** Reads and checks a buildspec: what CodeBuild would accept, within what this runner emulates. */
export function loadBuildspec(file: string): Buildspec {
  const doc: unknown = parse(readFileSync(file, 'utf8'));
  if (!isRecord(doc)) throw new BuildspecError(`${file} is not a YAML mapping`);
  refuseUnknownKeys(file, doc, ['version', 'env', 'phases']);
  if (doc.version !== 0.2 && doc.version !== '0.2') {
    throw new BuildspecError(
      `${file}: version is ${JSON.stringify(doc.version)}; only 0.2 is emulated`,
    );
  }
  const env = doc.env ?? {};
  if (!isRecord(env)) throw new BuildspecError(`${file}: env must be a mapping`);
  refuseUnknownKeys(`${file} env`, env, ENV_KEYS);
  if (env.shell !== 'bash') {
    throw new BuildspecError(
      `${file}: env.shell is ${JSON.stringify(env.shell)}; the runner runs bash only (set "shell: bash")`,
    );
  }
  const variables = env.variables ?? {};
  if (!isRecord(variables)) throw new BuildspecError(`${file}: env.variables must be a mapping`);
  const exported = env['exported-variables'] ?? [];
  if (!Array.isArray(exported) || !exported.every((name) => typeof name === 'string')) {
    throw new BuildspecError(`${file}: env.exported-variables must be a list of names`);
  }
  const phases = doc.phases;
  if (!isRecord(phases)) throw new BuildspecError(`${file}: phases must be a mapping`);
  refuseUnknownKeys(`${file} phases`, phases, [...PHASES]);
  return {
    variables: Object.fromEntries(Object.entries(variables).map(([k, v]) => [k, String(v)])),
    exportedVariables: exported,
    phases: PHASES.filter((name) => phases[name] !== undefined).map((name): PhaseSpec => {
      const phase = phases[name];
      if (!isRecord(phase)) throw new BuildspecError(`${file}: phases.${name} must be a mapping`);
      refuseUnknownKeys(`${file} phases.${name}`, phase, PHASE_KEYS);
      const onFailure = phase['on-failure'];
      if (onFailure !== undefined && onFailure !== 'ABORT' && onFailure !== 'CONTINUE') {
        throw new BuildspecError(
          `${file}: phases.${name}.on-failure ${JSON.stringify(onFailure)} is not emulated (ABORT or CONTINUE)`,
        );
      }
      const runtimeVersions = phase['runtime-versions'];
      if (runtimeVersions !== undefined && (name !== 'install' || !isRecord(runtimeVersions))) {
        throw new BuildspecError(
          `${file}: runtime-versions must be a mapping in the install phase`,
        );
      }
      return {
        name,
        commands: commandList(phase.commands, `${file} phases.${name}.commands`),
        finally: commandList(phase.finally, `${file} phases.${name}.finally`),
        onFailure,
        ...(runtimeVersions === undefined ? {} : { runtimeVersions }),
      };
    }),
  };
}

/** A bash single-quoted word. */
function quote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** What to do after a failed phase: CodeBuild's transitions, or what on-failure says. */
function afterFailure(phase: PhaseSpec): 'stop' | 'continue' {
  if (phase.onFailure === 'ABORT') return 'stop';
  if (phase.onFailure === 'CONTINUE') return 'continue';
  return phase.name === 'build' ? 'continue' : 'stop';
}

/** The bash script that runs the phases; each command is its own file, sourced in this shell. */
function script(spec: Buildspec, work: string): string {
  const state = quote(work);
  const lines = ['exec 2>&1', '__ship_failed=0', 'export CODEBUILD_BUILD_SUCCEEDING=1'];
  let fileNumber = 0;
  const runCommand = (phase: Phase, command: string, guard: boolean): string[] => {
    const file = path.join(work, `command-${fileNumber++}.sh`);
    writeFileSync(file, `${command}\n`);
    const shown = command.trim().split('\n')[0] ?? '';
    return [
      ...(guard ? ['if [ "$__ship_rc" -eq 0 ]; then'] : ['if true; then']),
      `  printf '[Container] Running command %s\\n' ${quote(shown)}`,
      `  printf '%s\\n' ${quote(phase)} > ${state}/running`,
      `  . ${quote(file)}`,
      '  __ship_status=$?',
      '  set +e +u +o pipefail',
      '  if [ "$__ship_status" -ne 0 ]; then',
      `    printf '[Container] Command did not exit successfully %s exit status %s\\n' ${quote(shown)} "$__ship_status"`,
      '    [ "$__ship_rc" -ne 0 ] || __ship_rc=$__ship_status',
      '  fi',
      'fi',
    ];
  };
  for (const phase of spec.phases) {
    lines.push(`printf '\\n[Container] Entering phase %s\\n' ${quote(phase.name.toUpperCase())}`);
    if (phase.runtimeVersions !== undefined) {
      const note = `[runner] runtime-versions ${JSON.stringify(phase.runtimeVersions)} skipped: this machine's tools are used`;
      lines.push(
        `printf '%s (node %s)\\n' ${quote(note)} "$(node --version 2>/dev/null || echo none)"`,
      );
    }
    lines.push('__ship_rc=0');
    for (const command of phase.commands) lines.push(...runCommand(phase.name, command, true));
    for (const command of phase.finally) lines.push(...runCommand(phase.name, command, false));
    if (phase.name === 'post_build') lines.push(`env -0 > ${state}/exported-env`);
    lines.push(
      `if [ "$__ship_rc" -eq 0 ]; then echo ${quote(`${phase.name} SUCCEEDED`)} >> ${state}/phases; else`,
      `  echo ${quote(`${phase.name} FAILED`)} >> ${state}/phases`,
      `  printf '[Container] Phase complete: %s State: FAILED\\n' ${quote(phase.name.toUpperCase())}`,
      '  export CODEBUILD_BUILD_SUCCEEDING=0',
      '  [ "$__ship_failed" -ne 0 ] || __ship_failed=$__ship_rc',
      afterFailure(phase) === 'stop' ? `  echo done > ${state}/done; exit "$__ship_failed"` : '  :',
      'fi',
    );
  }
  lines.push(`echo done > ${state}/done`, 'exit "$__ship_failed"');
  return `${lines.join('\n')}\n`;
}

function readLines(file: string): string[] {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

/** Runs the buildspec's phases in one bash process; resolves when the build ends. */
export async function runBuildspec(options: RunBuildspecOptions): Promise<BuildspecRun> {
  const spec = loadBuildspec(options.buildspec);
  const work = mkdtempSync(path.join(tmpdir(), 'ship-buildspec-'));
  const scriptPath = path.join(work, 'build.sh');
  writeFileSync(scriptPath, script(spec, work));

  const inherited = Object.fromEntries(
    Object.entries(options.baseEnv).filter(([key]) => !key.startsWith('CODEBUILD_')),
  );
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    ...spec.variables,
    ...options.variables,
    CODEBUILD_SRC_DIR: options.sourceDir,
  };

  const child = spawn('bash', ['--noprofile', '--norc', scriptPath], {
    cwd: options.sourceDir,
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
  const timeoutMs = options.timeoutMs ?? 120_000;
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    // The whole process group: the build's own children (buildah, node) too.
    if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
  }, timeoutMs);
  const exitCode = await new Promise<number>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', (code, signal) => resolve(code ?? (signal === null ? 1 : 128)));
  }).finally(() => clearTimeout(timer));
  if (timedOut) throw new Error(`the buildspec ran longer than ${timeoutMs} ms:\n${output}`);

  const phases: PhaseResult[] = readLines(path.join(work, 'phases')).map((line) => {
    const [phase, status] = line.split(' ') as [Phase, PhaseResult['status']];
    return { phase, status };
  });
  if (!existsSync(path.join(work, 'done'))) {
    // A command ended the shell itself (`exit`, or `set -e` and a failure): in CodeBuild that
    // ends only that command. Report it as that phase's failure, and say so.
    const running = readLines(path.join(work, 'running')).pop() as Phase | undefined;
    output += `\n[runner] the shell exited (status ${exitCode}) during a command of ${running ?? 'no phase'}: CodeBuild would end only that command; use a command that returns a status instead\n`;
    if (running !== undefined) phases.push({ phase: running, status: 'FAILED' });
    return {
      exitCode: exitCode === 0 ? 1 : exitCode,
      ...(running === undefined ? {} : { failedPhase: running }),
      phases,
      output,
      exported: {},
    };
  }

  const exported: Record<string, string> = {};
  const envFile = path.join(work, 'exported-env');
  if (existsSync(envFile)) {
    for (const entry of readFileSync(envFile, 'utf8').split('\0')) {
      const equals = entry.indexOf('=');
      const name = entry.slice(0, equals);
      if (equals > 0 && spec.exportedVariables.includes(name))
        exported[name] = entry.slice(equals + 1);
    }
  }
  const failedPhase = phases.find((p) => p.status === 'FAILED')?.phase;
  return {
    exitCode,
    ...(failedPhase === undefined ? {} : { failedPhase }),
    phases,
    output,
    exported,
  };
}
