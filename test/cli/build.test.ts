import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { IMAGE_LABELS } from '../../core/image-tags';
import { Buildah } from '../support/buildah';
import { RegistryReader, commitFiles, git, withoutCi } from '../support/build-source';
import { RegistryUser, RunningRegistry, startRegistry } from '../support/registry';
import { REPO_ROOT, runShipCaptured, type ShipRun } from '../support/ship';

// `ship build` for real: buildah builds, the distribution registry (htpasswd) receives, and the
// registry is then read through its own API. The runs share one registry and one git history, in
// order: a branch build, the same commit again, a release tag, a pull request, then refusals.

const CI_USER: RegistryUser = { username: 'ci', password: 'ci-password' };
const NOW = new Date('2026-12-06T12:00:00Z');

let buildah: Buildah;
let base: string;
let registry: RunningRegistry;
let reader: RegistryReader;
let source: string;
let commitA: string;
const dirs: string[] = [];
const tag12 = (c: string): string => c.slice(0, 12);
const sha7 = (c: string): string => c.slice(0, 7);

interface BuildOutput {
  service: string;
  repository: string;
  imageTag: string;
  tags: string[];
  digest: string;
  commit: string;
  ref: string;
  built: boolean;
}

/** `ship build` in the source checkout, with the registry user and any CI variables given. */
function shipBuild(args: string[], ciEnv: NodeJS.ProcessEnv = {}): Promise<ShipRun> {
  const home = mkdtempSync(path.join(tmpdir(), 'ship-build-home-'));
  dirs.push(home);
  return runShipCaptured(
    [
      'build',
      '--registry',
      registry.host,
      '--repository-prefix',
      'dockercoins',
      '--registry-user',
      CI_USER.username,
      '--builder',
      'buildah',
      ...args,
    ],
    {
      env: {
        ...withoutCi(buildah.env),
        BUILDAH_ISOLATION: 'chroot',
        HOME: home,
        SHIP_REGISTRY_PASSWORD: CI_USER.password,
        ...ciEnv,
      },
      cwd: source,
      appDir: REPO_ROOT,
      now: () => NOW,
    },
  );
}

function succeeded(run: ShipRun): BuildOutput[] {
  if (run.status !== 0) throw new Error(`ship build failed (${run.status}):\n${run.stderr}`);
  return JSON.parse(run.stdout) as BuildOutput[];
}

beforeAll(async () => {
  buildah = new Buildah();
  base = buildah.baseImage();
  registry = await startRegistry({ users: [CI_USER] });
  reader = new RegistryReader(registry, CI_USER);
  source = mkdtempSync(path.join(tmpdir(), 'ship-build-source-'));
  dirs.push(source);
  git(source, 'init', '--quiet');
  commitA = commitFiles(
    source,
    {
      'dockercoins/rng/Dockerfile': `FROM ${base}\nCOPY rng.txt /rng.txt\n`,
      'dockercoins/rng/rng.txt': 'rng, first version\n',
      'dockercoins/hasher/Dockerfile': `FROM ${base}\nCOPY hasher.txt /hasher.txt\n`,
      'dockercoins/hasher/hasher.txt': 'hasher\n',
    },
    'rng and hasher',
  );
});

afterAll(async () => {
  await registry?.stop();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('ship build, with buildah and the distribution registry', () => {
  let builtDigest: string;

  test('Given a Jenkins build of main, When ship build rng runs, Then the commit and sortable tags name one image with every label', async () => {
    const [result, ...rest] = succeeded(
      await shipBuild(['rng', '--json'], {
        JENKINS_URL: 'https://jenkins.example.com/',
        JOB_NAME: 'dockercoins',
        BUILD_NUMBER: '12',
        GIT_COMMIT: commitA,
        GIT_BRANCH: 'origin/main',
        GIT_URL: 'https://git.example.com/acme/dockercoins.git',
      }),
    );
    expect(rest).toEqual([]);
    const sortable = `main-${sha7(commitA)}-12`;
    expect(await reader.tags('dockercoins/rng')).toEqual([tag12(commitA), sortable].sort());
    const commitTag = await reader.manifest('dockercoins/rng', tag12(commitA));
    expect((await reader.manifest('dockercoins/rng', sortable)).digest).toBe(commitTag.digest);
    builtDigest = commitTag.digest;
    expect(result).toEqual({
      service: 'rng',
      repository: `${registry.host}/dockercoins/rng`,
      imageTag: tag12(commitA),
      tags: [tag12(commitA), sortable],
      digest: builtDigest,
      commit: commitA,
      ref: 'refs/heads/main',
      built: true,
      labels: expect.any(Object) as unknown,
    });
    const labels = await reader.labels('dockercoins/rng', tag12(commitA));
    expect(labels).toMatchObject({
      [IMAGE_LABELS.revision]: commitA,
      [IMAGE_LABELS.source]: 'https://git.example.com/acme/dockercoins',
      [IMAGE_LABELS.version]: tag12(commitA),
      [IMAGE_LABELS.created]: '2026-12-06T12:00:00Z',
      [IMAGE_LABELS.buildNumber]: '12',
      [IMAGE_LABELS.buildProject]: 'jenkins:dockercoins',
      [IMAGE_LABELS.gitRef]: 'refs/heads/main',
      [IMAGE_LABELS.service]: 'rng',
    });
    // Nothing but what was named was pushed.
    expect(await reader.catalog()).toEqual(['dockercoins/rng']);
  });

  test('Given the same commit built again (build 13), When run, Then nothing is built: the image is promoted with its new sortable tag', async () => {
    const [result] = succeeded(
      await shipBuild(['rng', '--json'], {
        JENKINS_URL: 'https://jenkins.example.com/',
        JOB_NAME: 'dockercoins',
        BUILD_NUMBER: '13',
        GIT_COMMIT: commitA,
        GIT_BRANCH: 'origin/main',
      }),
    );
    expect(result).toMatchObject({ built: false, digest: builtDigest });
    const tags = [tag12(commitA), `main-${sha7(commitA)}-12`, `main-${sha7(commitA)}-13`].sort();
    expect(await reader.tags('dockercoins/rng')).toEqual(tags);
    for (const tag of tags) {
      expect((await reader.manifest('dockercoins/rng', tag)).digest).toBe(builtDigest);
    }
    // The image is the first build's: a rebuild would carry this run's labels (build 13).
    expect((await reader.labels('dockercoins/rng', tag12(commitA)))[IMAGE_LABELS.buildNumber]).toBe(
      '12',
    );
  });

  test('Given the release tag v1.0.0 on the built commit (a local checkout, no CI), When run, Then the release tag names the same digest, nothing is built', async () => {
    git(source, 'tag', 'v1.0.0');
    const run = await shipBuild(['rng']);
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(
      new RegExp(
        `^rng +promoted +${registry.host}/dockercoins/rng@${builtDigest} +${tag12(commitA)},v1\\.0\\.0`,
        'm',
      ),
    );
    expect((await reader.manifest('dockercoins/rng', 'v1.0.0')).digest).toBe(builtDigest);
  });

  test('Given a GitLab merge request pipeline, When run, Then only its pr- tag is pushed, labelled with the pull-request ref', async () => {
    const commitP = commitFiles(
      source,
      { 'dockercoins/rng/rng.txt': 'rng, a contribution\n' },
      'pr',
    );
    const before = await reader.tags('dockercoins/rng');
    const [result] = succeeded(
      await shipBuild(['rng', '--json'], {
        GITLAB_CI: 'true',
        CI_COMMIT_SHA: commitP,
        CI_COMMIT_REF_NAME: 'feature',
        CI_MERGE_REQUEST_IID: '5',
        CI_PIPELINE_SOURCE: 'merge_request_event',
        CI_PIPELINE_IID: '31',
        CI_PROJECT_PATH: 'acme/dockercoins',
        CI_PROJECT_URL: 'https://gitlab.example.com/acme/dockercoins',
      }),
    );
    const prTag = `pr-5-${sha7(commitP)}`;
    expect(result).toMatchObject({ built: true, tags: [prTag], ref: 'refs/pull/5/head' });
    expect(await reader.tags('dockercoins/rng')).toEqual([...before, prTag].sort());
    expect(await reader.labels('dockercoins/rng', prTag)).toMatchObject({
      [IMAGE_LABELS.revision]: commitP,
      [IMAGE_LABELS.version]: prTag,
      [IMAGE_LABELS.buildNumber]: '31',
      [IMAGE_LABELS.buildProject]: 'gitlab:acme/dockercoins',
      [IMAGE_LABELS.gitRef]: 'refs/pull/5/head',
    });
  });

  test.each<[string, string[], NodeJS.ProcessEnv, RegExp]>([
    [
      'a git tag that would become "latest"',
      ['rng', '--ref', 'refs/tags/latest', '-c', 'releaseTagPattern=l*'],
      {},
      /would become the image tag "latest": never "latest"/,
    ],
    [
      'a cache tag "latest"',
      ['rng', '--cache-tag', 'latest'],
      {},
      /--cache-tag is "latest".*never latest/,
    ],
    [
      'a platform the nodes do not run',
      ['rng', '--platform', 'linux/386'],
      {},
      /--platform is "linux\/386": set it to linux\/amd64 or linux\/arm64/,
    ],
    [
      'a service whose build context is missing, next to a good one',
      ['rng', 'worker'],
      {},
      /worker: the build context is ".*dockercoins\/worker", which is not a folder/,
    ],
    [
      'a build number without a build project',
      ['rng', '--build-number', '7'],
      {},
      /the build number 7 has no build project \(--project\)/,
    ],
    [
      'a pull_request_target run (the base branch ref)',
      ['rng'],
      {
        GITHUB_ACTIONS: 'true',
        GITHUB_EVENT_NAME: 'pull_request_target',
        GITHUB_REF: 'refs/heads/main',
      },
      /GITHUB_EVENT_NAME is "pull_request_target" but GITHUB_REF is "refs\/heads\/main"/,
    ],
    [
      'a CI commit that is not the checkout',
      ['rng'],
      { GITHUB_ACTIONS: 'true', GITHUB_SHA: 'a'.repeat(40), GITHUB_REF: 'refs/heads/main' },
      /is checked out at [0-9a-f]{40}, but the build is of commit a{40}/,
    ],
  ])(
    'Given %s, When run, Then it fails naming it and nothing reaches the registry',
    async (_case, args, env, message) => {
      const head = git(source, 'rev-parse', 'HEAD');
      const catalog = await reader.catalog();
      const before = await Promise.all(catalog.map((repository) => reader.tags(repository)));

      const run = await shipBuild(args, env);

      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(message);
      expect(await reader.catalog()).toEqual(catalog);
      expect(await Promise.all(catalog.map((repository) => reader.tags(repository)))).toEqual(
        before,
      );
      expect(catalog).toContain('dockercoins/rng');
      expect(before.flat().some((tag) => tag.startsWith(tag12(head)))).toBe(false);
    },
  );

  test('Given the commit tag of a new commit already naming another commit`s image, When run, Then the revision mismatch is refused and no tag is added', async () => {
    const commitB = commitFiles(source, { 'dockercoins/rng/rng.txt': 'rng, second\n' }, 'B');
    await reader.copyTag('dockercoins/rng', tag12(commitA), tag12(commitB));
    const before = await reader.tags('dockercoins/rng');

    const run = await shipBuild(['rng', '--build-number', '20', '--project', 'local:test']);

    expect(run.status).toBe(1);
    expect(run.stderr).toContain(`${IMAGE_LABELS.revision}=${commitA}`);
    expect(run.stderr).toContain(`expected to be the build of commit ${commitB}`);
    expect(await reader.tags('dockercoins/rng')).toEqual(before);
  });

  test('Given an image outside the app`s services (the deployer`s), When built with --build-context and --dockerfile, Then it is pushed and labelled as a service`s', async () => {
    const head = commitFiles(
      source,
      {
        'deployer/Dockerfile.deployer': `FROM ${base}\nCOPY app.txt /app.txt\n`,
        'deployer/app.txt': 'the deployer\n',
      },
      'deployer',
    );
    const [result] = succeeded(
      await shipBuild([
        'ship-deployer',
        '--build-context',
        'deployer',
        '--dockerfile',
        'deployer/Dockerfile.deployer',
        '--json',
      ]),
    );
    expect(result).toMatchObject({ service: 'ship-deployer', built: true, tags: [tag12(head)] });
    expect(await reader.tags('dockercoins/ship-deployer')).toEqual([tag12(head)]);
    expect(await reader.labels('dockercoins/ship-deployer', tag12(head))).toMatchObject({
      [IMAGE_LABELS.service]: 'ship-deployer',
      [IMAGE_LABELS.revision]: head,
    });
  });

  test('Given a name that is no service and no --build-context, When run, Then a usage error lists the services', async () => {
    const run = await shipBuild(['deployer']);
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(
      /"deployer" is not a service of this app .*the services are hasher, rng, webui, worker/,
    );
  });

  test('Given ship build --help, Then its flags are listed', async () => {
    const run = await runShipCaptured(['build', '--help']);
    expect(run.status).toBe(0);
    for (const flag of [
      '--registry',
      '--builder',
      '--commit',
      '--ref',
      '--build-number',
      '--project',
      '--platform',
    ]) {
      expect(run.stdout).toContain(flag);
    }
  });

  test('Given no --registry, When run, Then a usage error says where to push', async () => {
    const run = await runShipCaptured(['build', 'rng'], { cwd: source });
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/where to push\? Pass --registry <host\[:port\]>/);
  });
});
