import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BuildInputError,
  ENV_NAMES,
  builderCommands,
  formatEnv,
  prepareBuild,
  resolveBuilder,
  type BuildRequest,
} from '../../core/build';
import { IMAGE_LABELS } from '../../core/image-tags';

// core/build.js, its pure parts: validation (every problem at once, named), the labels, the
// builders' command lines. The build against buildah and the registry is tested through its two
// runtimes: test/buildspecs/build-image.test.ts and test/cli/build.test.ts.

const SHA = '6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f';
const CONTEXT_ROOT = mkdtempSync(path.join(tmpdir(), 'ship-build-unit-'));

function request(overrides: Partial<BuildRequest> = {}): BuildRequest {
  return {
    service: 'rng',
    repository: 'registry.example.com:5000/dockercoins/rng',
    context: '.',
    platform: 'linux/amd64',
    sourceUrl: 'https://github.com/acme/container.training',
    cacheTag: undefined,
    builder: 'buildah',
    buildProject: 'github:acme/container.training/.github/workflows/ship.yml',
    created: new Date('2026-12-06T10:11:12.345Z'),
    cwd: CONTEXT_ROOT,
    tagInputs: () => ({
      commit: SHA,
      ref: { kind: 'branch', name: 'main' },
      buildNumber: 42,
      releaseTagPattern: 'v*',
    }),
    ...overrides,
  };
}

describe('prepareBuild', () => {
  test('Given a branch build, Then the tags are image-tags.js`s and the labels are every IMAGE_LABELS entry', () => {
    const plan = prepareBuild(request(), ENV_NAMES);
    expect(plan.tags.tags).toEqual(['6e0de7938dda', 'main-6e0de79-42']);
    expect(plan.labels).toEqual({
      [IMAGE_LABELS.revision]: SHA,
      [IMAGE_LABELS.source]: 'https://github.com/acme/container.training',
      [IMAGE_LABELS.version]: '6e0de7938dda',
      [IMAGE_LABELS.created]: '2026-12-06T10:11:12Z',
      [IMAGE_LABELS.buildNumber]: '42',
      [IMAGE_LABELS.buildProject]: 'github:acme/container.training/.github/workflows/ship.yml',
      [IMAGE_LABELS.gitRef]: 'refs/heads/main',
      [IMAGE_LABELS.service]: 'rng',
    });
    expect(Object.keys(plan.labels).sort()).toEqual(Object.values(IMAGE_LABELS).sort());
    expect([plan.host, plan.repositoryName]).toEqual([
      'registry.example.com:5000',
      'dockercoins/rng',
    ]);
  });

  test('Given no build number and no ref, Then those labels are empty strings, not missing', () => {
    const plan = prepareBuild(
      request({
        buildProject: undefined,
        tagInputs: () => ({ commit: SHA, ref: { kind: 'none' }, releaseTagPattern: 'v*' }),
      }),
      ENV_NAMES,
    );
    expect(plan.labels[IMAGE_LABELS.buildNumber]).toBe('');
    expect(plan.labels[IMAGE_LABELS.buildProject]).toBe('');
    expect(plan.labels[IMAGE_LABELS.gitRef]).toBe('');
  });

  test('Given several bad inputs, Then every one is reported at once, each naming its variable and the fix', () => {
    let error: unknown;
    try {
      prepareBuild(
        request({
          service: '',
          repository: 'registry.example.com/rng:latest',
          context: 'nope',
          platform: 'linux/386',
          sourceUrl: undefined,
          cacheTag: 'buildcache',
          buildProject: undefined,
        }),
        ENV_NAMES,
      );
    } catch (caught) {
      error = caught;
    }
    expect(error).toBeInstanceOf(BuildInputError);
    const problems = (error as BuildInputError).problems;
    expect(problems).toEqual([
      expect.stringMatching(/^SERVICE is not set: set it on the CodeBuild project/),
      expect.stringMatching(
        /^IMAGE_REPOSITORY is "registry.example.com\/rng:latest": expected <registry host>\/<repository> without a tag \(and never latest\)/,
      ),
      expect.stringMatching(/^BUILD_CONTEXT is "nope", which is not a folder of the source/),
      expect.stringMatching(
        /^IMAGE_PLATFORM is "linux\/386": set it to linux\/amd64 or linux\/arm64/,
      ),
      expect.stringMatching(/^SOURCE_URL is not set/),
      expect.stringMatching(
        /^BUILD_CACHE_TAG is "buildcache", but the registry cache is BuildKit's/,
      ),
      expect.stringMatching(/^the build number 42 has no build project \(CODEBUILD_BUILD_ID\)/),
    ]);
  });

  test('Given tag inputs that image-tags.js refuses, Then its message is one of the problems', () => {
    expect(() =>
      prepareBuild(
        request({
          tagInputs: () => ({
            commit: SHA,
            ref: { kind: 'tag', name: 'latest' },
            releaseTagPattern: 'l*',
          }),
        }),
        ENV_NAMES,
      ),
    ).toThrow(/would become the image tag "latest": never "latest"/);
  });
});

describe('builderCommands', () => {
  test('Given buildx with a cache tag, Then one build pushes the immutable tag only, with every label and the registry cache', () => {
    const plan = prepareBuild(request({ builder: 'buildx', cacheTag: 'buildcache' }), ENV_NAMES);
    const { build, push } = builderCommands(plan, {});
    expect(push).toBeUndefined();
    expect(build.slice(0, 7)).toEqual([
      'docker',
      'buildx',
      'build',
      '--platform',
      'linux/amd64',
      '--provenance=false',
      '--push',
    ]);
    expect(build.filter((arg) => arg === '--label')).toHaveLength(8);
    expect(build.filter((_arg, i) => build[i - 1] === '--tag')).toEqual([
      'registry.example.com:5000/dockercoins/rng:6e0de7938dda',
    ]);
    expect(build).toContain(
      'type=registry,ref=registry.example.com:5000/dockercoins/rng:buildcache',
    );
    expect(build.at(-1)).toBe(CONTEXT_ROOT);
  });

  test('Given buildah and a loopback registry, Then bud then push of the immutable tag, plain HTTP, with the docker config as authfile', () => {
    const dockerConfig = mkdtempSync(path.join(tmpdir(), 'ship-docker-config-'));
    writeFileSync(path.join(dockerConfig, 'config.json'), '{}');
    const plan = prepareBuild(request({ repository: '127.0.0.1:5000/rng' }), ENV_NAMES);
    const { build, push } = builderCommands(plan, { DOCKER_CONFIG: dockerConfig });
    expect(build.slice(0, 4)).toEqual(['buildah', 'bud', '--platform', 'linux/amd64']);
    expect(push).toEqual([
      'buildah',
      'push',
      '--authfile',
      path.join(dockerConfig, 'config.json'),
      '--tls-verify=false',
      '127.0.0.1:5000/rng:6e0de7938dda',
      'docker://127.0.0.1:5000/rng:6e0de7938dda',
    ]);
  });

  test('Given buildah and an HTTPS registry without a docker config, Then TLS is verified and no authfile is named', () => {
    const plan = prepareBuild(request(), ENV_NAMES);
    const { push } = builderCommands(plan, { DOCKER_CONFIG: path.join(CONTEXT_ROOT, 'none') });
    expect(push).toEqual([
      'buildah',
      'push',
      'registry.example.com:5000/dockercoins/rng:6e0de7938dda',
      'docker://registry.example.com:5000/dockercoins/rng:6e0de7938dda',
    ]);
  });
});

describe('resolveBuilder', () => {
  test.each<[string, string[], string]>([
    ['docker buildx works', ['docker buildx version', 'buildah --version'], 'buildx'],
    ['only buildah works', ['buildah --version'], 'buildah'],
  ])('Given auto and %s, Then %s', (_name, working, expected) => {
    expect(resolveBuilder('auto', {}, (argv) => working.includes(argv.join(' ')))).toBe(expected);
  });

  test('Given auto and no builder, Then it says what to install', () => {
    expect(() => resolveBuilder('auto', {}, () => false)).toThrow(
      /install docker with the buildx plugin, or buildah/,
    );
  });

  test('Given an unknown builder, Then it is refused naming it', () => {
    expect(() => resolveBuilder('kaniko', {}, () => true)).toThrow(/--builder is "kaniko"/);
  });
});

test('formatEnv: the exported variables of the contract, quoted for eval', () => {
  expect(
    formatEnv({
      service: 'rng',
      repository: 'r.example.com/rng',
      imageTag: '6e0de7938dda',
      tags: ['6e0de7938dda', "it's"],
      digest: `sha256:${'a'.repeat(64)}`,
      commit: SHA,
      ref: '',
      built: false,
      labels: {},
    }),
  ).toBe(
    [
      "export SERVICE='rng'",
      "export IMAGE_REPOSITORY='r.example.com/rng'",
      "export IMAGE_TAG='6e0de7938dda'",
      "export IMAGE_TAGS='6e0de7938dda,it'\\''s'",
      `export IMAGE_DIGEST='sha256:${'a'.repeat(64)}'`,
      `export GIT_COMMIT='${SHA}'`,
      "export GIT_REF=''",
      "export IMAGE_BUILT='false'",
      '',
    ].join('\n'),
  );
});
