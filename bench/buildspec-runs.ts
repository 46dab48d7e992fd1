/**
 * The buildspec's own commands, run locally (test/support/buildspec-runner.ts) against the real
 * distribution registry with buildah behind the test's docker shim: how many images each trigger
 * builds and how long a run takes, beside a naive pipeline that builds and pushes on every run.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Buildah } from '../test/support/buildah';
import { runBuildspec } from '../test/support/buildspec-runner';
import { RegistryUser, startRegistry } from '../test/support/registry';
import { median } from './measure';
import { Verdict } from './checks';
import { Column, formatTable } from './table';
import { REPO_ROOT } from './synth';

const BUILDSPEC = path.join(REPO_ROOT, 'buildspecs', 'build-image.yml');
const TOOLS = path.join(REPO_ROOT, 'core');
const SHIMS = path.join(REPO_ROOT, 'test', 'buildspecs', 'shims');
const USER: RegistryUser = { username: 'bench', password: 'bench-password' };

interface Trigger {
  readonly name: string;
  /** CODEBUILD_WEBHOOK_TRIGGER */
  readonly webhook: string;
  readonly headRef: string;
  /** Image builds our buildspec may run for it. */
  readonly expectedBuilds: number;
}

/** In order, on one commit: what happens to a commit in its life. */
const TRIGGERS: readonly Trigger[] = [
  {
    name: 'first push of a commit',
    webhook: 'branch/main',
    headRef: 'refs/heads/main',
    expectedBuilds: 1,
  },
  {
    name: 'same commit again (retried build)',
    webhook: 'branch/main',
    headRef: 'refs/heads/main',
    expectedBuilds: 0,
  },
  {
    name: 'release tag v1.0.0 on that commit',
    webhook: 'tag/v1.0.0',
    headRef: 'refs/tags/v1.0.0',
    expectedBuilds: 0,
  },
];

export interface BuildspecFigures {
  readonly trigger: string;
  readonly ours: { readonly builds: number; readonly medianMs: number; readonly runsMs: number[] };
  readonly naive: { readonly builds: number; readonly medianMs: number; readonly runsMs: number[] };
  readonly expectedBuilds: number;
}

function git(dir: string, ...args: string[]): string {
  const result = spawnSync(
    'git',
    ['-c', 'user.name=Bench', '-c', 'user.email=bench@example.com', ...args],
    { cwd: dir, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

function lines(file: string): number {
  return existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter((l) => l !== '').length
    : 0;
}

/** One round: a fresh registry and repository, the triggers in order, ours then naive. */
interface Round {
  readonly ours: number[];
  readonly oursBuilds: number[];
  readonly naive: number[];
  readonly naiveBuilds: number[];
}

async function round(
  scratch: string,
  buildah: Buildah,
  base: string,
  index: number,
): Promise<Round> {
  const registry = await startRegistry({ users: [USER] });
  try {
    const source = mkdtempSync(path.join(scratch, 'source-'));
    mkdirSync(path.join(source, 'dockercoins', 'rng'), { recursive: true });
    writeFileSync(
      path.join(source, 'dockercoins', 'rng', 'Dockerfile'),
      `FROM ${base}\nCOPY rng.txt /rng.txt\n`,
    );
    writeFileSync(path.join(source, 'dockercoins', 'rng', 'rng.txt'), `round ${index}\n`);
    git(source, 'init', '--quiet', '-b', 'main');
    git(source, 'add', '-A');
    git(source, 'commit', '--quiet', '-m', 'rng');
    const commit = git(source, 'rev-parse', 'HEAD');

    const env = (log: string): NodeJS.ProcessEnv => ({
      ...buildah.env,
      PATH: `${SHIMS}${path.delimiter}${process.env.PATH}`,
      HOME: mkdtempSync(path.join(scratch, 'home-')),
      DOCKER_SHIM_LOG: log,
    });
    const result: Round = { ours: [], oursBuilds: [], naive: [], naiveBuilds: [] };
    for (const [n, trigger] of TRIGGERS.entries()) {
      const log = path.join(scratch, `ours-${index}-${n}.log`);
      const start = performance.now();
      const run = await runBuildspec({
        buildspec: BUILDSPEC,
        sourceDir: source,
        baseEnv: env(log),
        variables: {
          CODEBUILD_BUILD_ID: `bench-rng:${index}-${n}`,
          CODEBUILD_BUILD_NUMBER: String(n + 1),
          CODEBUILD_RESOLVED_SOURCE_VERSION: commit,
          CODEBUILD_SOURCE_VERSION: commit,
          CODEBUILD_WEBHOOK_TRIGGER: trigger.webhook,
          CODEBUILD_WEBHOOK_HEAD_REF: trigger.headRef,
          CODEBUILD_SRC_DIR_ship_tools: TOOLS,
          SERVICE: 'rng',
          BUILD_CONTEXT: 'dockercoins/rng',
          IMAGE_REPOSITORY: `${registry.host}/dockercoins/rng`,
          REGISTRY_AUTH: 'basic',
          REGISTRY_USERNAME: USER.username,
          REGISTRY_PASSWORD: USER.password,
          RELEASE_TAG_PATTERN: 'v*',
          SOURCE_URL: 'https://github.com/bench/container.training',
          IMAGE_PLATFORM: 'linux/amd64',
        },
      });
      result.ours.push(performance.now() - start);
      if (run.exitCode !== 0)
        throw new Error(`bench build failed in ${run.failedPhase}:\n${run.output}`);
      result.oursBuilds.push(lines(log));

      // The naive pipeline: log in, build and push the tag, every time.
      const naiveLog = path.join(scratch, `naive-${index}-${n}.log`);
      const naiveEnv = env(naiveLog);
      const naiveStart = performance.now();
      const login = spawnSync(
        'docker',
        ['login', '--username', USER.username, '--password-stdin', registry.host],
        {
          env: naiveEnv,
          input: USER.password,
          encoding: 'utf8',
        },
      );
      const build = spawnSync(
        'docker',
        [
          'buildx',
          'build',
          '--push',
          '--tag',
          `${registry.host}/naive/rng:${commit.slice(0, 12)}-${n}`,
          'dockercoins/rng',
        ],
        { cwd: source, env: naiveEnv, encoding: 'utf8' },
      );
      result.naive.push(performance.now() - naiveStart);
      if (login.status !== 0 || build.status !== 0) {
        throw new Error(`naive build failed: ${login.stderr}${build.stderr}`);
      }
      result.naiveBuilds.push(lines(naiveLog));
    }
    return result;
  } finally {
    await registry.stop();
  }
}

/** Three rounds; per trigger, the median wall time and the image builds (the same every round). */
export async function measureBuildspecRuns(
  scratch: string,
  rounds = 3,
): Promise<BuildspecFigures[]> {
  const buildah = new Buildah(mkdtempSync(path.join(scratch, 'buildah-')));
  const base = buildah.baseImage();
  const all: Round[] = [];
  for (let i = 0; i < rounds; i++) all.push(await round(scratch, buildah, base, i));
  return TRIGGERS.map((trigger, n) => {
    const ours = all.map((r) => r.ours[n]!);
    const naive = all.map((r) => r.naive[n]!);
    return {
      trigger: trigger.name,
      ours: {
        builds: Math.max(...all.map((r) => r.oursBuilds[n]!)),
        medianMs: median(ours),
        runsMs: ours,
      },
      naive: {
        builds: Math.max(...all.map((r) => r.naiveBuilds[n]!)),
        medianMs: median(naive),
        runsMs: naive,
      },
      expectedBuilds: trigger.expectedBuilds,
    };
  });
}

export function buildspecTable(figures: readonly BuildspecFigures[]): string {
  const columns: Column[] = [
    { header: 'trigger (one commit, in order)', align: 'left' },
    { header: 'image builds, ours', align: 'right' },
    { header: 'run ms, ours', align: 'right' },
    { header: 'image builds, naive', align: 'right' },
    { header: 'run ms, naive', align: 'right' },
  ];
  return formatTable(
    columns,
    figures.map((f) => [
      f.trigger,
      String(f.ours.builds),
      f.ours.medianMs.toFixed(0),
      String(f.naive.builds),
      f.naive.medianMs.toFixed(0),
    ]),
  );
}

export function buildspecVerdicts(figures: readonly BuildspecFigures[]): Verdict[] {
  return figures.map((f) => ({
    ok: f.ours.builds === f.expectedBuilds,
    message: `${f.trigger}: ${f.ours.builds} image build(s), ${f.expectedBuilds} expected`,
  }));
}
