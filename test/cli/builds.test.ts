import {
  buildFacts,
  compareVersionsDescending,
  desiredFromImage,
  newestFor,
  NotDeployableError,
  olderBuildLock,
  orderTags,
} from '../../cli/builds';
import type { ImageRecord } from '../../cli/images';
import type { EnvironmentSettings, ServiceSettings } from '../../lib/deployer-contract';
import { settings } from '../fixtures/events/fixtures';

const COMMIT_A = '6e0de7938dda5363e2192fe2a2ec39987a3573b0';
const COMMIT_B = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const HASHER: ServiceSettings = {
  service: 'hasher',
  project: 'DockerCoins-hasher',
  repository: 'dockercoins/hasher',
  targets: [{ deployment: 'hasher', container: 'hasher' }],
};
const URI = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher';

function image(tags: string[], options: Partial<ImageRecord> = {}): ImageRecord {
  return {
    repository: 'dockercoins/hasher',
    repositoryUri: URI,
    digest: digest('a'),
    tags: [...tags].sort(),
    pushedAt: new Date('2026-11-20T10:00:00Z'),
    sizeBytes: 1234,
    revision: undefined,
    scan: undefined,
    ...options,
  };
}

const environment = (e: Partial<EnvironmentSettings>): EnvironmentSettings => ({
  ...settings().environments[0]!,
  ...e,
});

describe('buildFacts: what the tags of an image say', () => {
  test('Given a commit tag and sortable tags of two branches, when read, then the highest build number of this commit wins and other commits are ignored', () => {
    const facts = buildFacts(
      image([
        '6e0de7938dda',
        'main-6e0de79-41',
        'release-1.x-6e0de79-44',
        'main-9f8e7d6-99',
        'v1.2.0',
      ]),
      'v*',
    );
    expect(facts).toEqual({
      commitTag: '6e0de7938dda',
      commit: '6e0de7938dda',
      releases: ['v1.2.0'],
      builds: [
        { tag: 'release-1.x-6e0de79-44', branch: 'release-1.x', number: 44 },
        { tag: 'main-6e0de79-41', branch: 'main', number: 41 },
      ],
      buildNumber: 44,
    });
  });

  test('Given a revision label, when read, then it is the commit (40 hex)', () => {
    expect(buildFacts(image(['6e0de7938dda'], { revision: COMMIT_A }), 'v*').commit).toBe(COMMIT_A);
    expect(buildFacts(image(['6e0de7938dda'], { revision: 'not-a-commit' }), 'v*').commit).toBe(
      '6e0de7938dda',
    );
  });
});

describe('orderTags and compareVersionsDescending', () => {
  test('Given tags of every kind, when ordered, then commit, releases (newest version first), builds (newest first), pull requests, the rest', () => {
    expect(
      orderTags(
        [
          'zz',
          'main-6e0de79-9',
          'v1.9.2',
          'pr-3-6e0de79',
          'v1.10.0',
          '6e0de7938dda',
          'main-6e0de79-10',
        ],
        'v*',
      ),
    ).toEqual([
      '6e0de7938dda',
      'v1.10.0',
      'v1.9.2',
      'main-6e0de79-10',
      'main-6e0de79-9',
      'pr-3-6e0de79',
      'zz',
    ]);
  });

  test.each([
    ['v1.10.0', 'v1.9.2', -1],
    ['v1.9.2', 'v1.10.0', 1],
    ['v2', 'v2', 0],
    ['v2.0.1', 'v2.0', -1],
  ])('Given %s and %s, when compared, then the sign is %d', (a, b, sign) => {
    expect(Math.sign(compareVersionsDescending(a, b))).toBe(sign);
  });
});

describe('desiredFromImage: the image ship deploys', () => {
  test('Given a commit tag with a sortable main tag and the revision label, when resolved, then everything known is there and the ref is the build branch', () => {
    expect(
      desiredFromImage(
        image(['6e0de7938dda', 'main-6e0de79-41'], { revision: COMMIT_A }),
        '6e0de7938dda',
        HASHER,
        'v*',
        ['main'],
      ),
    ).toEqual({
      image: `${URI}:6e0de7938dda@${digest('a')}`,
      tag: '6e0de7938dda',
      digest: digest('a'),
      commit: COMMIT_A,
      buildProject: 'DockerCoins-hasher',
      buildNumber: 41,
      buildArn: undefined,
      gitRef: 'refs/heads/main',
    });
  });

  test('Given a release tag on an image without sortable tags, when resolved, then the ref is the tag and the build is unknown', () => {
    expect(
      desiredFromImage(image(['6e0de7938dda', 'v1.2.0']), 'v1.2.0', HASHER, 'v*', ['main']),
    ).toMatchObject({
      tag: 'v1.2.0',
      commit: '6e0de7938dda',
      buildProject: undefined,
      buildNumber: undefined,
      gitRef: 'refs/tags/v1.2.0',
    });
  });

  test('Given sortable tags of a branch that is not a build branch, when resolved, then the git ref is left out', () => {
    expect(
      desiredFromImage(
        image(['6e0de7938dda', 'feature-x-6e0de79-7']),
        '6e0de7938dda',
        HASHER,
        'v*',
        ['main'],
      ).gitRef,
    ).toBeUndefined();
  });

  test.each([
    [
      'no commit tag and no label',
      image(['v1.2.0']),
      'v1.2.0',
      /has no commit tag \(12 hex\) and no org\.opencontainers\.image\.revision label/,
    ],
    [
      'a label that contradicts the commit tag',
      image(['6e0de7938dda'], { revision: COMMIT_B }),
      '6e0de7938dda',
      /its revision label says commit 9f8e7d6c.* but its commit tag is 6e0de7938dda/,
    ],
  ])(
    'Given %s, when resolved, then it is refused with the reason',
    (_name, record, tag, message) => {
      expect(() => desiredFromImage(record, tag, HASHER, 'v*', ['main'])).toThrow(
        NotDeployableError,
      );
      expect(() => desiredFromImage(record, tag, HASHER, 'v*', ['main'])).toThrow(message);
    },
  );
});

describe('newestFor: the newest image built for an environment', () => {
  const older = image(['6e0de7938dda', 'main-6e0de79-41'], { digest: digest('a') });
  const newer = image(['9f8e7d6c5b4a', 'main-9f8e7d6-42'], {
    digest: digest('b'),
    pushedAt: new Date('2026-11-19T10:00:00Z'),
  });
  const otherBranch = image(['1234567890ab', 'dev-1234567-50'], { digest: digest('c') });
  const releases = [
    image(['6e0de7938dda', 'v1.9.2'], {
      digest: digest('d'),
      pushedAt: new Date('2026-11-01T00:00:00Z'),
    }),
    image(['9f8e7d6c5b4a', 'v1.10.0'], {
      digest: digest('e'),
      pushedAt: new Date('2026-11-02T00:00:00Z'),
    }),
  ];

  test('Given builds of main and of another branch, when the main environment asks, then the highest main build number wins, whatever the push time', () => {
    expect(newestFor(environment({}), [older, newer, otherBranch], 'v*')).toEqual({
      image: newer,
      tag: 'main-9f8e7d6-42',
    });
  });

  test('Given releases, when a release environment asks, then the last pushed release wins', () => {
    expect(
      newestFor(environment({ branches: [], releaseTags: true }), [...releases, older], 'v*'),
    ).toEqual({ image: releases[1], tag: 'v1.10.0' });
  });

  test('Given nothing built for the environment, when asked, then undefined', () => {
    expect(newestFor(environment({ branches: ['prod'] }), [older, newer], 'v*')).toBeUndefined();
  });
});

describe('olderBuildLock: a Deployment stuck above every real build', () => {
  const registry = [
    image(['6e0de7938dda', 'main-6e0de79-41'], { digest: digest('a') }),
    image(['9f8e7d6c5b4a', 'main-9f8e7d6-42'], { digest: digest('b') }),
    image(['1111111111aa', 'v1.2.0'], { digest: digest('c') }),
  ];

  test.each<[string, { buildNumber?: number; digest?: string }, object | undefined]>([
    ['runs the newest build', { buildNumber: 42, digest: digest('b') }, undefined],
    ['runs an older build', { buildNumber: 41, digest: digest('a') }, undefined],
    [
      'claims build 999999999999 on an old image (a forged event)',
      { buildNumber: 999999999999, digest: digest('a') },
      { running: 999999999999, highestKnown: 42 },
    ],
    [
      'claims a build above all on an image the registry does not hold',
      { buildNumber: 500, digest: digest('f') },
      { running: 500, highestKnown: 42 },
    ],
    [
      'runs a release built from a tag push (no build number in its tags): given the benefit of the doubt',
      { buildNumber: 43, digest: digest('c') },
      undefined,
    ],
    ['claims no build number', { digest: digest('a') }, undefined],
  ])('Given a Deployment that %s, then %j', (_name, running, expected) => {
    expect(olderBuildLock(running, registry, 'v*')).toEqual(expected);
  });

  test('Given a registry with no sortable tags at all, then nothing is said', () => {
    expect(
      olderBuildLock({ buildNumber: 7, digest: digest('c') }, [registry[2]!], 'v*'),
    ).toBeUndefined();
  });
});
