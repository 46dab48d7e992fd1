import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Stack } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { IMAGE_LABELS } from '../../core/image-tags';
import { BUILD_ENV, EXPORTED_VARIABLES } from '../../lib/build-contract';
import { ImageBuilds } from '../../lib/constructs/image-builds';
import { newApp } from '../support/app';
import { Buildah } from '../support/buildah';
import {
  BuildspecError,
  BuildspecRun,
  loadBuildspec,
  runBuildspec,
} from '../support/buildspec-runner';
import { RegistryUser, RunningRegistry, startRegistry } from '../support/registry';

const ROOT = path.resolve(__dirname, '..', '..');
const BUILDSPEC = path.join(ROOT, 'buildspecs', 'build-image.yml');
const TOOLS = path.join(ROOT, 'core');
const SHIMS = path.join(__dirname, 'shims');
const ECR_USER: RegistryUser = { username: 'AWS', password: `ecr-token-${randomUUID()}` };
const CI_USER: RegistryUser = { username: 'ci', password: 'ci-password' };
const SOURCE_URL = 'https://github.com/acme/container.training';
const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

// ---- the registry, seen directly through its API (never through the code under test) ----

const auth = {
  authorization: `Basic ${Buffer.from(`${CI_USER.username}:${CI_USER.password}`).toString('base64')}`,
};

async function tagsOf(registry: RunningRegistry, repository: string): Promise<string[]> {
  const response = await fetch(`${registry.url}/v2/${repository}/tags/list`, { headers: auth });
  if (response.status === 404) return [];
  if (!response.ok) throw new Error(`tags/list of ${repository}: ${response.status}`);
  return [...(((await response.json()) as { tags: string[] | null }).tags ?? [])].sort();
}

async function manifestOf(
  registry: RunningRegistry,
  repository: string,
  reference: string,
): Promise<{
  digest: string;
  bytes: Buffer;
  mediaType: string;
  json: { config?: { digest: string } };
}> {
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${reference}`, {
    headers: { ...auth, accept: MANIFEST_ACCEPT },
  });
  if (!response.ok) throw new Error(`manifest ${repository}:${reference}: ${response.status}`);
  const bytes = Buffer.from(await response.arrayBuffer());
  return {
    digest: response.headers.get('docker-content-digest') ?? 'missing',
    bytes,
    mediaType: response.headers.get('content-type') ?? 'missing',
    json: JSON.parse(bytes.toString('utf8')) as { config?: { digest: string } },
  };
}

async function labelsOf(
  registry: RunningRegistry,
  repository: string,
  tag: string,
): Promise<Record<string, string>> {
  const manifest = await manifestOf(registry, repository, tag);
  const config = await fetch(
    `${registry.url}/v2/${repository}/blobs/${manifest.json.config?.digest}`,
    { headers: auth },
  );
  return ((await config.json()) as { config: { Labels: Record<string, string> } }).config.Labels;
}

/** Puts the manifest of one tag under another, as an outside push would. */
async function copyTag(
  registry: RunningRegistry,
  repository: string,
  from: string,
  to: string,
): Promise<void> {
  const source = await manifestOf(registry, repository, from);
  const response = await fetch(`${registry.url}/v2/${repository}/manifests/${to}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': source.mediaType },
    body: source.bytes,
  });
  if (response.status !== 201) throw new Error(`PUT ${repository}:${to}: ${response.status}`);
}

// ---- the source checkout: a real git repository ----

function git(dir: string, ...args: string[]): string {
  const result = spawnSync(
    'git',
    [
      '-c',
      'user.name=Ship Test',
      '-c',
      'user.email=ship-test@example.com',
      '-c',
      'init.defaultBranch=main',
      ...args,
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

function writeFiles(dir: string, files: Record<string, string>): void {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
}

/** Commits the files and returns the new HEAD commit id. */
function commit(dir: string, files: Record<string, string>, message: string): string {
  writeFiles(dir, files);
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

// ---- one CodeBuild run ----

let buildah: Buildah;
let registry: RunningRegistry;
let source: string;
let shimLog: string;

function builds(): string[] {
  return existsSync(shimLog)
    ? readFileSync(shimLog, 'utf8')
        .split('\n')
        .filter((l) => l !== '')
    : [];
}

interface Trigger {
  readonly commit: string;
  readonly buildNumber: number;
  /** CODEBUILD_WEBHOOK_TRIGGER, e.g. `branch/main`, `tag/v1.2.0`. */
  readonly webhook: string;
}

/** What CodeBuild sets for a webhook build, plus the project's variables (the construct's). */
function variables(
  trigger: Trigger,
  overrides: Record<string, string | undefined> = {},
): Record<string, string> {
  const [kind, name] = trigger.webhook.split('/', 2) as [string, string];
  const all: Record<string, string | undefined> = {
    CODEBUILD_BUILD_ID: `dockercoins-rng:${randomUUID()}`,
    CODEBUILD_BUILD_NUMBER: String(trigger.buildNumber),
    CODEBUILD_RESOLVED_SOURCE_VERSION: trigger.commit,
    CODEBUILD_SOURCE_VERSION: trigger.commit,
    CODEBUILD_WEBHOOK_TRIGGER: trigger.webhook,
    CODEBUILD_WEBHOOK_HEAD_REF: `refs/${kind === 'tag' ? 'tags' : 'heads'}/${name}`,
    CODEBUILD_SRC_DIR_ship_tools: TOOLS,
    AWS_REGION: 'eu-west-1',
    SERVICE: 'rng',
    BUILD_CONTEXT: 'dockercoins/rng',
    IMAGE_REPOSITORY: `${registry.host}/dockercoins/rng`,
    REGISTRY_AUTH: 'ecr',
    RELEASE_TAG_PATTERN: 'v*',
    BUILD_CACHE_TAG: 'buildcache',
    SOURCE_URL,
    IMAGE_PLATFORM: 'linux/amd64',
    ...overrides,
  };
  return Object.fromEntries(
    Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined),
  );
}

/** A fresh build container: its own HOME (so its own ~/.docker), the shims first on PATH. */
function runBuild(vars: Record<string, string>): Promise<BuildspecRun> {
  // docker's own default (~/.docker), as in CodeBuild: no DOCKER_CONFIG from the test's shell.
  const base = Object.fromEntries(
    Object.entries(buildah.env).filter(([key]) => key !== 'DOCKER_CONFIG'),
  );
  return runBuildspec({
    buildspec: BUILDSPEC,
    sourceDir: source,
    baseEnv: {
      ...base,
      PATH: `${SHIMS}${path.delimiter}${process.env.PATH}`,
      HOME: mkdtempSync(path.join(tmpdir(), 'ship-codebuild-home-')),
      DOCKER_SHIM_LOG: shimLog,
      AWS_SHIM_ECR_PASSWORD: ECR_USER.password,
    },
    variables: vars,
  });
}

/** Fails with the build's output, which is what one needs to see when a build fails. */
function expectSucceeded(run: BuildspecRun): void {
  if (run.exitCode !== 0) throw new Error(`the build failed in ${run.failedPhase}:\n${run.output}`);
}

let commitA: string;
const tag12 = (c: string): string => c.slice(0, 12);
const sha7 = (c: string): string => c.slice(0, 7);

beforeAll(async () => {
  buildah = new Buildah();
  const base = buildah.baseImage();
  registry = await startRegistry({ users: [ECR_USER, CI_USER] });
  shimLog = path.join(mkdtempSync(path.join(tmpdir(), 'ship-shim-')), 'builds.log');
  source = mkdtempSync(path.join(tmpdir(), 'ship-source-'));
  git(source, 'init', '--quiet');
  commitA = commit(
    source,
    {
      'dockercoins/rng/Dockerfile': `FROM ${base}\nCOPY rng.txt /rng.txt\n`,
      'dockercoins/rng/rng.txt': 'rng, first version\n',
      'dockercoins/broken/Dockerfile': `FROM ${base}\nCOPY missing.txt /missing.txt\n`,
      'dockercoins/broken/present.txt': 'the Dockerfile copies a file that is not here\n',
    },
    'rng and a broken service',
  );
});

afterAll(async () => {
  await registry?.stop();
});

// The runs below share one registry and one git history, in order: a branch build, a re-run,
// a release tag, then the failures.
describe('buildspecs/build-image.yml, run locally with buildah and the distribution registry', () => {
  let builtDigest: string;

  test('Given a push to main, When built, Then exactly the commit and sortable tags name one image with the OCI labels', async () => {
    const run = await runBuild(
      variables({ commit: commitA, buildNumber: 42, webhook: 'branch/main' }),
    );
    expectSucceeded(run);

    const sortable = `main-${sha7(commitA)}-42`;
    expect(await tagsOf(registry, 'dockercoins/rng')).toEqual([tag12(commitA), sortable].sort());
    const [commitTag, sortableTag] = [
      await manifestOf(registry, 'dockercoins/rng', tag12(commitA)),
      await manifestOf(registry, 'dockercoins/rng', sortable),
    ];
    expect(sortableTag.digest).toBe(commitTag.digest);
    builtDigest = commitTag.digest;

    const labels = await labelsOf(registry, 'dockercoins/rng', tag12(commitA));
    // Every label of IMAGE_LABELS: OCI's, and ours that order builds without asking CodeBuild.
    expect(labels).toMatchObject({
      'org.opencontainers.image.revision': commitA,
      'org.opencontainers.image.source': SOURCE_URL,
      'org.opencontainers.image.version': tag12(commitA),
      'io.dockercoins.ship.build-number': '42',
      'io.dockercoins.ship.build-project': 'dockercoins-rng',
      'io.dockercoins.ship.git-ref': 'refs/heads/main',
      'io.dockercoins.ship.service': 'rng',
    });
    for (const name of Object.values(IMAGE_LABELS)) expect(labels).toHaveProperty([name]);
    expect(labels['org.opencontainers.image.created']).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);

    expect(run.exported).toEqual({
      SERVICE: 'rng',
      IMAGE_REPOSITORY: `${registry.host}/dockercoins/rng`,
      IMAGE_TAG: tag12(commitA),
      IMAGE_TAGS: `${tag12(commitA)},${sortable}`,
      IMAGE_DIGEST: builtDigest,
      GIT_COMMIT: commitA,
      GIT_REF: 'refs/heads/main',
      IMAGE_BUILT: 'true',
    });

    // What the buildspec asked docker for: one build, for the platform, with the registry cache.
    expect(builds()).toHaveLength(1);
    const call = builds()[0];
    expect(call).toContain('--platform linux/amd64 --provenance=false --push');
    expect(call).toContain(
      `--cache-from type=registry,ref=${registry.host}/dockercoins/rng:buildcache`,
    );
    expect(call).toContain(
      `--cache-to type=registry,ref=${registry.host}/dockercoins/rng:buildcache,mode=max,image-manifest=true,oci-mediatypes=true`,
    );
    expect(call).toMatch(new RegExp(` ${source}/dockercoins/rng$`));
    expect(run.output).toContain('runtime-versions {"nodejs":20} skipped');
  });

  test('Given the same commit again (build 43), When run, Then nothing is built and only the new sortable tag is added', async () => {
    const run = await runBuild(
      variables({ commit: commitA, buildNumber: 43, webhook: 'branch/main' }),
    );
    expectSucceeded(run);

    expect(builds()).toHaveLength(1);
    const tags = [tag12(commitA), `main-${sha7(commitA)}-42`, `main-${sha7(commitA)}-43`].sort();
    expect(await tagsOf(registry, 'dockercoins/rng')).toEqual(tags);
    for (const tag of tags)
      expect((await manifestOf(registry, 'dockercoins/rng', tag)).digest).toBe(builtDigest);
    expect(run.exported).toMatchObject({ IMAGE_BUILT: 'false', IMAGE_DIGEST: builtDigest });
  });

  test('Given BUILDKIT_IMAGE in the registry (the pull-through cache, by digest), When run, Then BuildKit is created from it after the login', async () => {
    const buildkit = `${registry.host}/dockercoins-ecr-public/vend/moby/buildkit:v0.32.0@sha256:${'1'.repeat(64)}`;
    const log = `${shimLog}.builders`;
    const before = existsSync(log) ? readFileSync(log, 'utf8') : '';
    const run = await runBuild(
      variables(
        { commit: commitA, buildNumber: 43, webhook: 'branch/main' },
        { BUILDKIT_IMAGE: buildkit },
      ),
    );
    expectSucceeded(run);

    const created = readFileSync(log, 'utf8').slice(before.length).trim().split('\n');
    expect(created).toEqual([
      `buildx create --name ship --driver docker-container --driver-opt image=${buildkit} --bootstrap --use`,
    ]);
    expect(run.output.indexOf('Login Succeeded')).toBeLessThan(
      run.output.indexOf('buildx create: BuildKit'),
    );
  });

  test('Given the release tag v1.2.0 on the built commit (basic auth), When run, Then it is retagged, not rebuilt', async () => {
    const run = await runBuild(
      variables(
        { commit: commitA, buildNumber: 44, webhook: 'tag/v1.2.0' },
        {
          REGISTRY_AUTH: 'basic',
          REGISTRY_USERNAME: CI_USER.username,
          REGISTRY_PASSWORD: CI_USER.password,
        },
      ),
    );
    expectSucceeded(run);

    expect(builds()).toHaveLength(1);
    expect((await manifestOf(registry, 'dockercoins/rng', 'v1.2.0')).digest).toBe(builtDigest);
    expect(await tagsOf(registry, 'dockercoins/rng')).toContain('v1.2.0');
    expect(run.exported).toEqual({
      SERVICE: 'rng',
      IMAGE_REPOSITORY: `${registry.host}/dockercoins/rng`,
      IMAGE_TAG: tag12(commitA),
      IMAGE_TAGS: `${tag12(commitA)},v1.2.0`,
      IMAGE_DIGEST: builtDigest,
      GIT_COMMIT: commitA,
      GIT_REF: 'refs/tags/v1.2.0',
      IMAGE_BUILT: 'false',
    });
  });

  test('Given a Dockerfile that copies a missing file, When run, Then the build phase fails, post_build never runs, nothing is pushed', async () => {
    const before = builds().length;
    const run = await runBuild(
      variables(
        { commit: commitA, buildNumber: 45, webhook: 'branch/main' },
        {
          SERVICE: 'broken',
          BUILD_CONTEXT: 'dockercoins/broken',
          IMAGE_REPOSITORY: `${registry.host}/dockercoins/broken`,
        },
      ),
    );

    expect(run.exitCode).not.toBe(0);
    expect(run.failedPhase).toBe('build');
    expect(run.phases).toEqual([
      { phase: 'install', status: 'SUCCEEDED' },
      { phase: 'pre_build', status: 'SUCCEEDED' },
      { phase: 'build', status: 'FAILED' },
    ]);
    expect(run.exported).toEqual({});
    expect(builds()).toHaveLength(before + 1);
    expect(await tagsOf(registry, 'dockercoins/broken')).toEqual([]);
  });

  test("Given the commit tag already naming another commit's image, When run, Then the build fails loudly before building and nothing is pushed", async () => {
    const commitB = commit(
      source,
      { 'dockercoins/rng/rng.txt': 'rng, second version\n' },
      'rng changes',
    );
    // A foreign image under B's commit tag: what a 12-hex prefix collision would look like.
    await copyTag(registry, 'dockercoins/rng', tag12(commitA), tag12(commitB));
    const tagsBefore = await tagsOf(registry, 'dockercoins/rng');
    const buildsBefore = builds().length;

    const run = await runBuild(
      variables({ commit: commitB, buildNumber: 46, webhook: 'branch/main' }),
    );

    expect(run.failedPhase).toBe('build');
    expect(run.phases.map((p) => p.phase)).toEqual(['install', 'pre_build', 'build']);
    expect(run.output).toContain(`org.opencontainers.image.revision=${commitA}`);
    expect(run.output).toContain(`expected to be the build of commit ${commitB}`);
    expect(await tagsOf(registry, 'dockercoins/rng')).toEqual(tagsBefore);
    expect(builds()).toHaveLength(buildsBefore);
    expect(run.exported).toEqual({});
  });

  test('Given another build of the same commit pushing first (branch and tag pushed at once), When run, Then it promotes that image instead of failing', async () => {
    const commitR = commit(
      source,
      { 'dockercoins/rng/rng.txt': 'rng, raced version\n' },
      'rng raced',
    );
    // The other build: the same commit built elsewhere, so another digest (its created label differs).
    const competitor = `localhost/rng-competitor:${tag12(commitR)}`;
    buildah.bud(path.join(source, 'dockercoins', 'rng'), competitor, [
      '--label',
      `org.opencontainers.image.revision=${commitR}`,
      '--label',
      'org.opencontainers.image.created=1970-01-01T00:00:00Z',
    ]);
    const target = `${registry.host}/dockercoins/rng:${tag12(commitR)}`;
    const buildsBefore = builds().length;

    const run = await runBuild(
      variables(
        { commit: commitR, buildNumber: 48, webhook: 'tag/v3.0.0' },
        {
          DOCKER_SHIM_IMMUTABLE: '1',
          DOCKER_SHIM_BEFORE_PUSH: `buildah push --quiet --tls-verify=false --creds ${CI_USER.username}:${CI_USER.password} ${competitor} docker://${target}`,
        },
      ),
    );
    expectSucceeded(run);

    expect(builds()).toHaveLength(buildsBefore + 1);
    expect(run.output).toContain('was pushed by another build');
    const winner = await manifestOf(registry, 'dockercoins/rng', tag12(commitR));
    expect((await manifestOf(registry, 'dockercoins/rng', 'v3.0.0')).digest).toBe(winner.digest);
    expect(
      (await labelsOf(registry, 'dockercoins/rng', tag12(commitR)))[
        'org.opencontainers.image.created'
      ],
    ).toBe('1970-01-01T00:00:00Z');
    expect(run.exported).toMatchObject({ IMAGE_BUILT: 'false', IMAGE_DIGEST: winner.digest });
  });

  test("Given a pull request, When run with the pull-request project's own environment (from the synthesized template), Then it pushes its pr- tag only, to the pull-request repository, with no registry cache", async () => {
    // The environment the construct gives the rng pull-request project, read from the template.
    const stack = new Stack(newApp(), 'Pr');
    const builds_ = new ImageBuilds(stack, 'Builds', {
      services: [
        {
          service: {
            name: 'rng',
            buildContext: 'dockercoins/rng',
            deployment: 'rng',
            container: 'rng',
          },
          repository: ecr.Repository.fromRepositoryName(stack, 'Repo', 'dockercoins/rng'),
          pullRequestRepository: ecr.Repository.fromRepositoryName(
            stack,
            'PrRepo',
            'dockercoins/pr/rng',
          ),
        },
      ],
      source: {
        provider: 'github',
        owner: 'acme',
        repo: 'container.training',
        connectionArn: undefined,
      },
      branches: ['main'],
      buildCacheTag: 'buildcache',
      pullRequestBuilds: true,
    });
    const cfn = builds_.pullRequestProjects.get('rng')!.node.defaultChild as codebuild.CfnProject;
    const projectEnv = Object.fromEntries(
      (
        stack.resolve(cfn.environment) as {
          environmentVariables: { name: string; value: unknown }[];
        }
      ).environmentVariables.map((v) => [v.name, v.value]),
    );
    // The repository URI is a token of the pull-request repository; here it is the local registry's.
    expect(JSON.stringify(projectEnv.IMAGE_REPOSITORY)).toContain('/dockercoins/pr/rng');
    const projectVariables: Record<string, string | undefined> = {};
    for (const name of Object.values(BUILD_ENV)) {
      const value = projectEnv[name];
      projectVariables[name] =
        name === BUILD_ENV.imageRepository
          ? `${registry.host}/dockercoins/pr/rng`
          : name === BUILD_ENV.buildkitImage
            ? // A token of the account's registry; here the local registry, pinned as synthesized.
              `${registry.host}/${String(JSON.stringify(value).match(/dockercoins-ecr-public[^"]*@sha256:[0-9a-f]{64}/)?.[0])}`
            : (value as string | undefined);
    }
    expect(projectVariables[BUILD_ENV.buildkitImage]).toMatch(/@sha256:[0-9a-f]{64}$/);

    const commitP = commit(
      source,
      { 'dockercoins/rng/rng.txt': 'rng, a contribution\n' },
      'rng from a PR',
    );
    const mainTagsBefore = await tagsOf(registry, 'dockercoins/rng');
    const buildsBefore = builds().length;
    const run = await runBuild(
      variables(
        { commit: commitP, buildNumber: 3, webhook: 'pr/7' },
        {
          ...projectVariables,
          CODEBUILD_SOURCE_VERSION: 'pr/7',
          CODEBUILD_WEBHOOK_HEAD_REF: 'refs/heads/feature',
          CODEBUILD_WEBHOOK_BASE_REF: 'refs/heads/main',
          CODEBUILD_WEBHOOK_EVENT: 'PULL_REQUEST_CREATED',
        },
      ),
    );
    expectSucceeded(run);

    expect(projectVariables.BUILD_CACHE_TAG).toBeUndefined();
    expect(builds()).toHaveLength(buildsBefore + 1);
    const call = builds().at(-1)!;
    expect(call).not.toContain('--cache-from');
    expect(call).not.toContain('--cache-to');
    expect(call).not.toContain('buildcache');
    const prTag = `pr-7-${sha7(commitP)}`;
    expect(await tagsOf(registry, 'dockercoins/pr/rng')).toEqual([prTag]);
    // The service repository, its tags and its cache are untouched
    expect(await tagsOf(registry, 'dockercoins/rng')).toEqual(mainTagsBefore);
    expect(run.exported).toMatchObject({
      IMAGE_REPOSITORY: `${registry.host}/dockercoins/pr/rng`,
      IMAGE_TAG: prTag,
      IMAGE_TAGS: prTag,
      IMAGE_BUILT: 'true',
    });
  });

  test('Given a release tag already naming another image, When a new commit would be built with it, Then the build fails before building and nothing is built', async () => {
    const commitC = commit(
      source,
      { 'dockercoins/rng/rng.txt': 'rng, third version\n' },
      'rng again',
    );
    const tagsBefore = await tagsOf(registry, 'dockercoins/rng');
    const buildsBefore = builds().length;

    const run = await runBuild(
      variables({ commit: commitC, buildNumber: 47, webhook: 'tag/v1.2.0' }),
    );

    expect(run.failedPhase).toBe('build');
    expect(run.output).toContain(
      `${registry.host}/dockercoins/rng:v1.2.0 (${builtDigest}) already exists`,
    );
    expect(await tagsOf(registry, 'dockercoins/rng')).toEqual(tagsBefore);
    expect(builds()).toHaveLength(buildsBefore);
  });

  test.each<[string, Record<string, string | undefined>, RegExp]>([
    ['SERVICE', { SERVICE: undefined }, /SERVICE is not set: set it on the CodeBuild project/],
    ['IMAGE_REPOSITORY', { IMAGE_REPOSITORY: undefined }, /IMAGE_REPOSITORY is not set/],
    ['SOURCE_URL', { SOURCE_URL: '' }, /SOURCE_URL is not set/],
    [
      'SHIP_TOOLS',
      { CODEBUILD_SRC_DIR_ship_tools: undefined },
      /SHIP_TOOLS is not set: .*CODEBUILD_SRC_DIR_ship_tools/,
    ],
    [
      'SHIP_TOOLS',
      { CODEBUILD_SRC_DIR_ship_tools: SHIMS },
      /SHIP_TOOLS is ".*shims", which does not hold build\.js, ci\.js, image-tags\.js and registry\.js/,
    ],
    [
      'REGISTRY_PASSWORD',
      { REGISTRY_AUTH: 'basic', REGISTRY_USERNAME: 'ci' },
      /REGISTRY_PASSWORD is not set/,
    ],
    [
      'REGISTRY_AUTH',
      { REGISTRY_AUTH: 'token' },
      /REGISTRY_AUTH is "token": set it to ecr .*, basic .* or none/,
    ],
    ['IMAGE_PLATFORM', { IMAGE_PLATFORM: 'linux/386' }, /IMAGE_PLATFORM is "linux\/386"/],
    [
      'IMAGE_REPOSITORY',
      { IMAGE_REPOSITORY: 'rng:latest' },
      /IMAGE_REPOSITORY is "rng:latest": expected <registry host>\/<repository>/,
    ],
    [
      'BUILD_CACHE_TAG',
      { BUILD_CACHE_TAG: 'latest' },
      /BUILD_CACHE_TAG is "latest": expected an image tag such as buildcache \(never latest\)/,
    ],
    [
      'BUILD_CONTEXT',
      { BUILD_CONTEXT: 'dockercoins/nope' },
      /BUILD_CONTEXT is "dockercoins\/nope", which is not a folder/,
    ],
  ])(
    'Given a bad or missing %s, When run, Then install fails naming it, before any login or build',
    async (_name, overrides, message) => {
      const buildsBefore = builds().length;
      const run = await runBuild(
        variables({ commit: commitA, buildNumber: 50, webhook: 'branch/main' }, overrides),
      );
      expect(run.failedPhase).toBe('install');
      expect(run.phases).toEqual([{ phase: 'install', status: 'FAILED' }]);
      expect(run.output).toMatch(message);
      expect(builds()).toHaveLength(buildsBefore);
    },
  );
});

// ---- the runner itself: CodeBuild's semantics, checked with tiny buildspecs ----

describe('test/support/buildspec-runner.ts', () => {
  function buildspecFile(text: string): string {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'ship-spec-')), 'buildspec.yml');
    writeFileSync(file, text);
    return file;
  }

  function run(text: string, vars: Record<string, string> = {}): Promise<BuildspecRun> {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-src-'));
    return runBuildspec({
      buildspec: buildspecFile(text),
      sourceDir: dir,
      baseEnv: { PATH: process.env.PATH, CODEBUILD_BUILD_ID: 'leak' },
      variables: vars,
    });
  }

  const phases = (build: string): string => `version: 0.2
env:
  shell: bash
  exported-variables: [A, B, SUCCEEDING, LEAK]
phases:
  pre_build:
    commands:
      - export A=from-pre-build; cd /
      - B=not-exported
  build:
    commands:
${build}
  post_build:
    commands:
      - export B="$B-then-exported" SUCCEEDING="$CODEBUILD_BUILD_SUCCEEDING" LEAK="\${CODEBUILD_BUILD_ID:-none}"; [ "$PWD" = / ]
`;

  test('Given variables set in one phase, When later phases run, Then they see them (one shell) and exports are read at the end', async () => {
    const result = await run(phases('      - echo "$A"'));
    expect(result.exitCode).toBe(0);
    expect(result.exported).toEqual({
      A: 'from-pre-build',
      B: 'not-exported-then-exported',
      SUCCEEDING: '1',
      LEAK: 'none',
    });
  });

  test('Given a failing build without on-failure, When run, Then post_build still runs (CodeBuild) and the build fails', async () => {
    const result = await run(phases('      - (exit 7)\n      - echo never'));
    expect(result.exitCode).toBe(7);
    expect(result.failedPhase).toBe('build');
    expect(result.phases.map((p) => `${p.phase} ${p.status}`)).toEqual([
      'pre_build SUCCEEDED',
      'build FAILED',
      'post_build SUCCEEDED',
    ]);
    expect(result.exported.SUCCEEDING).toBe('0');
    expect(result.output).not.toContain('never');
  });

  test('Given on-failure: ABORT on build, When it fails, Then post_build does not run', async () => {
    const text = phases('      - "false"').replace(
      '  build:\n',
      '  build:\n    on-failure: ABORT\n',
    );
    const result = await run(text);
    expect(result.failedPhase).toBe('build');
    expect(result.phases.map((p) => p.phase)).toEqual(['pre_build', 'build']);
    expect(result.exported).toEqual({});
  });

  test('Given a failing pre_build without on-failure, When run, Then nothing after it runs', async () => {
    const result = await run(
      phases('      - echo build-ran').replace('      - B=not-exported', '      - "false"'),
    );
    expect(result.failedPhase).toBe('pre_build');
    expect(result.phases.map((p) => p.phase)).toEqual(['pre_build']);
    expect(result.output).not.toContain('build-ran');
  });

  test('Given set -e in one command, When a later command has a failing step, Then set -e does not carry over (one script per command)', async () => {
    const result = await run(phases('      - set -e; true\n      - false; echo survived'));
    expect(result.exitCode).toBe(0);
    expect(result.output).toContain('survived');
  });

  test('Given a finally block, When the commands fail, Then finally still runs', async () => {
    const result = await run(
      phases('      - "false"').replace(
        '  build:\n    commands:\n      - "false"\n',
        '  build:\n    commands:\n      - "false"\n    finally:\n      - echo cleaned-up\n',
      ),
    );
    expect(result.failedPhase).toBe('build');
    expect(result.output).toContain('cleaned-up');
  });

  test.each([
    [
      'a command YAML reads as a mapping',
      'version: 0.2\nenv: {shell: bash}\nphases:\n  build:\n    commands:\n      - echo a: b\n',
      /commands\[0\] is not a string/,
    ],
    ['version 0.1', 'version: 0.1\nenv: {shell: bash}\nphases: {}\n', /only 0.2/],
    ['the default sh', 'version: 0.2\nphases: {}\n', /bash only/],
    [
      'on-failure RETRY',
      'version: 0.2\nenv: {shell: bash}\nphases:\n  build:\n    on-failure: RETRY\n    commands: [true]\n',
      /RETRY.*not emulated/,
    ],
    [
      'artifacts',
      'version: 0.2\nenv: {shell: bash}\nphases: {}\nartifacts: {files: [a]}\n',
      /"artifacts" not supported/,
    ],
  ])('Given %s, When loaded, Then the runner refuses it clearly', (_case, text, message) => {
    expect(() => loadBuildspec(buildspecFile(text))).toThrow(BuildspecError);
    expect(() => loadBuildspec(buildspecFile(text))).toThrow(message);
  });

  test("The real buildspec loads: every phase aborts on failure and the contract's variables are exported", () => {
    const spec = loadBuildspec(BUILDSPEC);
    expect(spec.phases.map((p) => [p.name, p.onFailure])).toEqual([
      ['install', 'ABORT'],
      ['pre_build', 'ABORT'],
      ['build', 'ABORT'],
      ['post_build', 'ABORT'],
    ]);
    // The contract the CodeBuild projects and the deployer share.
    expect(spec.exportedVariables).toEqual([...EXPORTED_VARIABLES]);
  });
});
