import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parse } from 'yaml';
import { IMAGE_LABELS } from '../../core/image-tags';
import { Buildah } from '../support/buildah';
import { RegistryReader, commitFiles, git, withoutCi } from '../support/build-source';
import { RegistryUser, RunningRegistry, startRegistry } from '../support/registry';
import { REPO_ROOT, runShipCaptured } from '../support/ship';

// The CI templates of examples/ci run the very `ship build` line they contain: it is read from
// the template, expanded by bash with the variables the template's job sets and those the CI sets
// (as GitHub Actions and GitLab CI set them), and run against the real distribution registry
// (htpasswd, the CI's own user) with buildah. The registry is then read through its own API.

const TEMPLATES = path.join(REPO_ROOT, 'examples', 'ci');
const CI_USER: RegistryUser = { username: 'ci-github', password: 'ci-secret' };
const SERVICES = ['hasher', 'rng', 'webui', 'worker'];

let buildah: Buildah;
let base: string;
let registry: RunningRegistry;
let reader: RegistryReader;
let source: string;
let shims: string;
const dirs: string[] = [];

interface GitHubWorkflow {
  jobs: Record<string, { env?: Record<string, string>; steps: { run?: string }[] }>;
}
type GitLabPipeline = Record<
  string,
  { script?: string[]; variables?: Record<string, string>; image?: string }
>;

/** The one line of a script that runs `ship build`. */
function shipLine(lines: readonly string[]): string {
  const found = lines.flatMap((text) => text.split('\n')).filter((l) => /^ship build\b/.test(l));
  expect(found).toHaveLength(1);
  return found[0]!;
}

/** The arguments bash gives `ship` on that line, with this environment. */
function expand(line: string, env: NodeJS.ProcessEnv): string[] {
  const result = spawnSync(
    'bash',
    ['-c', `set -euo pipefail; ship() { printf '%s\\0' "$@"; }; ${line}`],
    {
      env: { PATH: process.env.PATH, ...env },
      encoding: 'utf8',
    },
  );
  if (result.status !== 0) throw new Error(`bash: ${result.stderr}`);
  return result.stdout.split('\0').slice(0, -1);
}

/** The variables a job's own settings give the command (registry, user, password). */
const JOB_VALUES = (): Record<string, string> => ({
  SHIP_REGISTRY: registry.host,
  SHIP_REPOSITORY_PREFIX: '',
  SHIP_REGISTRY_USER: CI_USER.username,
  SHIP_REGISTRY_PASSWORD: CI_USER.password,
});

async function runTemplateCommand(
  line: string,
  ciEnv: NodeJS.ProcessEnv,
): Promise<{ status: number; stderr: string; stdout: string }> {
  const home = mkdtempSync(path.join(tmpdir(), 'ship-ci-home-'));
  dirs.push(home);
  const env: NodeJS.ProcessEnv = {
    ...withoutCi(buildah.env),
    // No docker buildx here, whatever this machine has: `--builder auto` must choose buildah.
    PATH: `${shims}${path.delimiter}${process.env.PATH}`,
    BUILDAH_ISOLATION: 'chroot',
    HOME: home,
    ...JOB_VALUES(),
    ...ciEnv,
  };
  const argv = expand(line, env);
  expect(argv[0]).toBe('build');
  return runShipCaptured(argv, { env, cwd: source, appDir: REPO_ROOT, now: () => new Date() });
}

beforeAll(async () => {
  buildah = new Buildah();
  base = buildah.baseImage();
  registry = await startRegistry({ users: [CI_USER] });
  reader = new RegistryReader(registry, CI_USER);
  shims = mkdtempSync(path.join(tmpdir(), 'ship-ci-shims-'));
  dirs.push(shims);
  writeFileSync(
    path.join(shims, 'docker'),
    '#!/bin/sh\necho "docker: no buildx here (the test builds with buildah)" >&2\nexit 1\n',
  );
  chmodSync(path.join(shims, 'docker'), 0o755);
  source = mkdtempSync(path.join(tmpdir(), 'ship-ci-source-'));
  dirs.push(source);
  git(source, 'init', '--quiet');
});

afterAll(async () => {
  await registry?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

function commitVersion(version: string): string {
  return commitFiles(
    source,
    Object.fromEntries(
      SERVICES.flatMap((service) => [
        [`dockercoins/${service}/Dockerfile`, `FROM ${base}\nCOPY v.txt /v.txt\n`],
        [`dockercoins/${service}/v.txt`, `${service} ${version}\n`],
      ]),
    ),
    version,
  );
}

describe('examples/ci/github-actions.yml', () => {
  const workflow = parse(
    readFileSync(path.join(TEMPLATES, 'github-actions.yml'), 'utf8'),
  ) as GitHubWorkflow;
  const job = workflow.jobs.build!;
  const line = shipLine(job.steps.flatMap((step) => (step.run === undefined ? [] : [step.run])));

  test('Its job gives the command exactly the registry, the CI user and its password (a secret)', () => {
    expect(job.env).toEqual({
      SHIP_REGISTRY: '${{ vars.SHIP_REGISTRY }}',
      SHIP_REPOSITORY_PREFIX: '${{ vars.SHIP_REPOSITORY_PREFIX }}',
      SHIP_REGISTRY_USER: '${{ vars.SHIP_REGISTRY_USER }}',
      SHIP_REGISTRY_PASSWORD: '${{ secrets.SHIP_REGISTRY_PASSWORD }}',
    });
  });

  test('Given a push to main, When its ship build line runs as GitHub Actions runs it, Then every service is built and tagged with the run`s labels', async () => {
    const commit = commitVersion('v1');
    const run = await runTemplateCommand(line, {
      GITHUB_ACTIONS: 'true',
      GITHUB_EVENT_NAME: 'push',
      GITHUB_REF: 'refs/heads/main',
      GITHUB_SHA: commit,
      GITHUB_RUN_NUMBER: '17',
      GITHUB_REPOSITORY: 'acme/container.training',
      GITHUB_SERVER_URL: 'https://github.com',
      GITHUB_WORKFLOW: 'ship',
      GITHUB_WORKFLOW_REF: 'acme/container.training/.github/workflows/ship.yml@refs/heads/main',
    });
    if (run.status !== 0) throw new Error(run.stderr);

    expect((await reader.catalog()).sort()).toEqual(SERVICES);
    for (const service of SERVICES) {
      const tags = [commit.slice(0, 12), `main-${commit.slice(0, 7)}-17`];
      expect(await reader.tags(service)).toEqual([...tags].sort());
      const digests = await Promise.all(
        tags.map(async (t) => (await reader.manifest(service, t)).digest),
      );
      expect(new Set(digests).size).toBe(1);
      expect(run.stdout).toMatch(
        new RegExp(`^${service} +built +${registry.host}/${service}@${digests[0]} `, 'm'),
      );
      expect(await reader.labels(service, tags[0]!)).toMatchObject({
        [IMAGE_LABELS.revision]: commit,
        [IMAGE_LABELS.source]: 'https://github.com/acme/container.training',
        [IMAGE_LABELS.version]: tags[0],
        [IMAGE_LABELS.buildNumber]: '17',
        [IMAGE_LABELS.buildProject]: 'github:acme/container.training/.github/workflows/ship.yml',
        [IMAGE_LABELS.gitRef]: 'refs/heads/main',
        [IMAGE_LABELS.service]: service,
      });
    }
  });
});

describe('examples/ci/gitlab-ci.yml', () => {
  const pipeline = parse(
    readFileSync(path.join(TEMPLATES, 'gitlab-ci.yml'), 'utf8'),
  ) as GitLabPipeline;
  const job = pipeline['ship-build']!;
  const line = shipLine(job.script ?? []);

  const gitlab = (commit: string): NodeJS.ProcessEnv => ({
    ...job.variables,
    GITLAB_CI: 'true',
    CI_COMMIT_SHA: commit,
    CI_PIPELINE_IID: '8',
    CI_PROJECT_PATH: 'acme/dockercoins',
    CI_PROJECT_URL: 'https://gitlab.example.com/acme/dockercoins',
  });

  test('Given a branch pipeline on a new commit, When its ship build line runs as GitLab CI runs it, Then every service is built with the pipeline`s labels', async () => {
    const commit = commitVersion('v2');
    const run = await runTemplateCommand(line, {
      ...gitlab(commit),
      CI_PIPELINE_SOURCE: 'push',
      CI_COMMIT_BRANCH: 'main',
      CI_COMMIT_REF_NAME: 'main',
    });
    if (run.status !== 0) throw new Error(run.stderr);

    for (const service of SERVICES) {
      const commitTag = commit.slice(0, 12);
      expect(await reader.tags(service)).toContain(`main-${commit.slice(0, 7)}-8`);
      expect(await reader.labels(service, commitTag)).toMatchObject({
        [IMAGE_LABELS.revision]: commit,
        [IMAGE_LABELS.buildNumber]: '8',
        [IMAGE_LABELS.buildProject]: 'gitlab:acme/dockercoins',
        [IMAGE_LABELS.source]: 'https://gitlab.example.com/acme/dockercoins',
        [IMAGE_LABELS.gitRef]: 'refs/heads/main',
      });
    }
  });

  test('Given the tag pipeline of a release on that commit, When the line runs, Then v2.0.0 names each built digest and nothing is rebuilt', async () => {
    const commit = git(source, 'rev-parse', 'HEAD');
    git(source, 'tag', 'v2.0.0');
    const before = await Promise.all(
      SERVICES.map(async (s) => (await reader.manifest(s, commit.slice(0, 12))).digest),
    );
    const run = await runTemplateCommand(line, {
      ...gitlab(commit),
      CI_PIPELINE_SOURCE: 'push',
      CI_PIPELINE_IID: '9',
      CI_COMMIT_TAG: 'v2.0.0',
      CI_COMMIT_REF_NAME: 'v2.0.0',
    });
    if (run.status !== 0) throw new Error(run.stderr);

    const after = await Promise.all(
      SERVICES.map(async (s) => (await reader.manifest(s, 'v2.0.0')).digest),
    );
    expect(after).toEqual(before);
    expect(run.stdout.match(/ promoted /g)).toHaveLength(SERVICES.length);
  });
});
