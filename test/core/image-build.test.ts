import { ImageLabelError, buildFromImage, type PushedImage } from '../../core/image-build';
import { IMAGE_LABELS } from '../../core/image-tags';
import { planBuild } from '../../core/plan';
import type { DeployerSettings } from '../../lib/deployer-contract';

const COMMIT = '6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f';
const DIGEST = `sha256:${'c'.repeat(64)}`;
const SEEN = new Date('2026-12-06T16:00:00Z');

/** The labels `ship build` writes for build 42 of main at COMMIT. */
const LABELS: Record<string, string> = {
  [IMAGE_LABELS.revision]: COMMIT,
  [IMAGE_LABELS.source]: 'https://github.com/example/dockercoins',
  [IMAGE_LABELS.version]: '6e0de7938dda',
  [IMAGE_LABELS.created]: '2026-12-06T15:59:00Z',
  [IMAGE_LABELS.buildNumber]: '42',
  [IMAGE_LABELS.buildProject]: 'github/dockercoins',
  [IMAGE_LABELS.gitRef]: 'refs/heads/main',
  [IMAGE_LABELS.service]: 'hasher',
};

function image(
  overrides: Partial<PushedImage> = {},
  labels: Record<string, string | undefined> = {},
): PushedImage {
  const merged = Object.fromEntries(
    Object.entries({ ...LABELS, ...labels }).filter(
      (e): e is [string, string] => e[1] !== undefined,
    ),
  );
  return {
    service: 'hasher',
    repository: 'hasher',
    registryHost: 'registry.registry.svc.cluster.local:5000',
    pullHost: '127.0.0.1:30500',
    tag: '6e0de7938dda',
    digest: DIGEST,
    labels: merged,
    seenAt: SEEN,
    releaseTagPattern: 'v*',
    ...overrides,
  };
}

describe('buildFromImage: the build record of a pushed image', () => {
  test('a commit tag of a branch build: the labels make the record, the nodes pull from pullHost', () => {
    expect(buildFromImage(image())).toEqual({
      buildArn: undefined,
      buildId: 'github/dockercoins#42',
      project: 'github/dockercoins',
      service: 'hasher',
      buildNumber: 42,
      region: undefined,
      account: undefined,
      finishedAt: SEEN,
      logsLink: undefined,
      repositoryUri: '127.0.0.1:30500/hasher',
      repository: 'hasher',
      registryId: 'registry.registry.svc.cluster.local:5000',
      imageTag: '6e0de7938dda',
      imageTags: ['6e0de7938dda', 'main-6e0de79-42'],
      digest: DIGEST,
      commit: COMMIT,
      gitRef: 'refs/heads/main',
      built: true,
    });
  });

  test.each<[string, Partial<PushedImage>, Record<string, string | undefined>, string, string]>([
    [
      'the sortable tag of the same build',
      { tag: 'main-6e0de79-42' },
      {},
      'refs/heads/main',
      '6e0de7938dda',
    ],
    [
      'a release tag added to a branch build (a release of a built commit)',
      { tag: 'v1.2.0' },
      {},
      'refs/tags/v1.2.0',
      '6e0de7938dda',
    ],
    [
      'the release tag of a tag build',
      { tag: 'v1.2.0' },
      { [IMAGE_LABELS.gitRef]: 'refs/tags/v1.2.0' },
      'refs/tags/v1.2.0',
      '6e0de7938dda',
    ],
    ['a build with no ref', {}, { [IMAGE_LABELS.gitRef]: '' }, '', '6e0de7938dda'],
    [
      'no service label (older builds)',
      {},
      { [IMAGE_LABELS.service]: undefined },
      'refs/heads/main',
      '6e0de7938dda',
    ],
  ])('accepts %s', (_name, overrides, labels, gitRef, imageTag) => {
    const build = buildFromImage(image(overrides, labels));
    expect(build.gitRef).toBe(gitRef);
    expect(build.imageTag).toBe(imageTag);
    expect(build.imageTags).toContain(overrides.tag ?? imageTag);
  });

  test.each<[string, Partial<PushedImage>, Record<string, string | undefined>, string, RegExp]>([
    [
      'no revision label',
      {},
      { [IMAGE_LABELS.revision]: undefined },
      IMAGE_LABELS.revision,
      /has no label org\.opencontainers\.image\.revision.*ship build/,
    ],
    [
      'a short revision',
      {},
      { [IMAGE_LABELS.revision]: '6e0de79' },
      IMAGE_LABELS.revision,
      /"6e0de79", not a 40-hex commit/,
    ],
    [
      'no build number',
      {},
      { [IMAGE_LABELS.buildNumber]: undefined },
      IMAGE_LABELS.buildNumber,
      /has no label io\.dockercoins\.ship\.build-number/,
    ],
    [
      'a build number 0',
      {},
      { [IMAGE_LABELS.buildNumber]: '0' },
      IMAGE_LABELS.buildNumber,
      /"0", not a positive integer/,
    ],
    [
      'no build project',
      {},
      { [IMAGE_LABELS.buildProject]: undefined },
      IMAGE_LABELS.buildProject,
      /build-project/,
    ],
    [
      'no git ref label',
      {},
      { [IMAGE_LABELS.gitRef]: undefined },
      IMAGE_LABELS.gitRef,
      /has no label io\.dockercoins\.ship\.git-ref/,
    ],
    [
      'a git ref of no kind',
      {},
      { [IMAGE_LABELS.gitRef]: 'main' },
      IMAGE_LABELS.gitRef,
      /"main", not refs\/heads/,
    ],
    [
      'another service',
      {},
      { [IMAGE_LABELS.service]: 'rng' },
      IMAGE_LABELS.service,
      /says "rng".*"hasher"/,
    ],
    [
      'a version that is not the commit tag',
      {},
      { [IMAGE_LABELS.version]: 'ffffffffffff' },
      IMAGE_LABELS.version,
      /contradict each other/,
    ],
    [
      'a commit tag of another commit',
      { tag: 'aaaaaaaaaaaa' },
      {},
      'tag',
      /"aaaaaaaaaaaa" is not one build github\/dockercoins#42.*contradict the tag/,
    ],
    [
      'a branch tag of another build number',
      { tag: 'main-6e0de79-41' },
      {},
      'tag',
      /contradict the tag/,
    ],
    ['a malformed digest', { digest: 'sha256:abc' }, {}, 'digest', /not sha256:<64 hex>/],
  ])('refuses %s, naming the label', (_name, overrides, labels, label, message) => {
    let error: unknown;
    try {
      buildFromImage(image(overrides, labels));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ImageLabelError);
    expect((error as ImageLabelError).label).toBe(label);
    expect((error as ImageLabelError).message).toMatch(message);
  });

  test('the record decides as the Lambda decides: a branch build to its branch environment, a release to releases', () => {
    const settings: DeployerSettings = {
      registry: '127.0.0.1:30500',
      releaseTagPattern: 'v*',
      services: [
        {
          service: 'hasher',
          project: '',
          repository: 'hasher',
          targets: [{ deployment: 'hasher', container: 'hasher' }],
        },
      ],
      environments: [
        {
          name: 'staging',
          clusterName: 'in-cluster',
          region: undefined,
          namespace: 'staging',
          branches: ['main'],
          releaseTags: false,
        },
        {
          name: 'production',
          clusterName: 'in-cluster',
          region: undefined,
          namespace: 'prod',
          branches: [],
          releaseTags: true,
        },
      ],
      topicArn: '',
    };
    const branch = planBuild(buildFromImage(image()), settings);
    expect(branch).toMatchObject({
      action: 'deploy',
      image: {
        image: `127.0.0.1:30500/hasher:6e0de7938dda@${DIGEST}`,
        buildProject: 'github/dockercoins',
        buildNumber: 42,
      },
    });
    expect(branch.action === 'deploy' && branch.targets.map((t) => t.environment.name)).toEqual([
      'staging',
    ]);
    const release = planBuild(buildFromImage(image({ tag: 'v1.2.0' })), settings);
    expect(release).toMatchObject({
      action: 'deploy',
      image: { image: `127.0.0.1:30500/hasher:v1.2.0@${DIGEST}` },
    });
    expect(release.action === 'deploy' && release.targets.map((t) => t.environment.name)).toEqual([
      'production',
    ]);
    const feature = planBuild(
      buildFromImage(
        image({ tag: 'feature-6e0de79-42' }, { [IMAGE_LABELS.gitRef]: 'refs/heads/feature' }),
      ),
      settings,
    );
    expect(feature).toMatchObject({ action: 'skip', reason: 'not-a-deploy-ref' });
  });
});
