import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  TagInputError,
  classifyTag,
  computeTags,
  globToRegExp,
  inputsFromCodeBuild,
  inputsFromGit,
  isGitRefName,
  isReleaseTag,
  sanitizeTag,
} from '../../core/image-tags';
import type { ImageTags, TagInputs } from '../../core/image-tags';
import { REPO_ROOT } from '../support/app';

const SCRIPT = path.join(REPO_ROOT, 'core', 'image-tags.js');
const SHA = '6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f';
const OTHER_SHA = 'aaaabbbbccccddddeeeeffff0000111122223333';
/** Docker's tag grammar, written out here rather than imported: the test states the contract. */
const DOCKER_TAG_GRAMMAR = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

type Env = Record<string, string | undefined>;

/** A CodeBuild build's environment: the build id marks CodeBuild mode, the rest is the case's. */
function codeBuildEnv(env: Env): Env {
  return { CODEBUILD_BUILD_ID: 'dockercoins-rng:0b4f3a52-2c1e-4c5e-9d0a-6a1f9c1d2e3f', ...env };
}

function tagsFor(env: Env): ImageTags {
  return computeTags(inputsFromCodeBuild(codeBuildEnv(env)));
}

/** Every produced tag is pushable and never `latest`; the first is the immutable one; no repeats. */
function expectValidTags(result: ImageTags): void {
  for (const tag of result.tags) {
    expect(tag).toMatch(DOCKER_TAG_GRAMMAR);
    expect(tag.toLowerCase()).not.toBe('latest');
  }
  expect(new Set(result.tags).size).toBe(result.tags.length);
  expect(result.tags[0]).toBe(result.immutableTag);
}

function tagInputErrorOf(fn: () => unknown): TagInputError {
  try {
    fn();
  } catch (error) {
    if (error instanceof TagInputError) return error;
    throw error;
  }
  throw new Error('expected a TagInputError');
}

/** A webhook push to a branch, as CodeBuild sets it (captured values, see aws-facts §3). */
function branchPush(branch: string, buildNumber = '42'): Env {
  return {
    CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
    CODEBUILD_SOURCE_VERSION: SHA,
    CODEBUILD_WEBHOOK_TRIGGER: `branch/${branch}`,
    CODEBUILD_WEBHOOK_HEAD_REF: `refs/heads/${branch}`,
    CODEBUILD_WEBHOOK_EVENT: 'PUSH',
    CODEBUILD_WEBHOOK_BASE_REF: '',
    CODEBUILD_BUILD_NUMBER: buildNumber,
  };
}

function tagPush(tag: string): Env {
  return {
    CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
    CODEBUILD_SOURCE_VERSION: SHA,
    CODEBUILD_WEBHOOK_TRIGGER: `tag/${tag}`,
    CODEBUILD_WEBHOOK_HEAD_REF: `refs/tags/${tag}`,
    CODEBUILD_WEBHOOK_EVENT: 'PUSH',
    CODEBUILD_BUILD_NUMBER: '42',
  };
}

/** A pull request from a fork whose source branch is called `main`. */
const PULL_REQUEST_12: Env = {
  CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
  CODEBUILD_SOURCE_VERSION: 'pr/12',
  CODEBUILD_WEBHOOK_TRIGGER: 'pr/12',
  CODEBUILD_WEBHOOK_HEAD_REF: 'refs/heads/main',
  CODEBUILD_WEBHOOK_BASE_REF: 'refs/heads/main',
  CODEBUILD_WEBHOOK_EVENT: 'PULL_REQUEST_CREATED',
  CODEBUILD_BUILD_NUMBER: '42',
};

function manual(sourceVersion: string | undefined, extra: Env = {}): Env {
  return {
    CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
    CODEBUILD_SOURCE_VERSION: sourceVersion,
    CODEBUILD_BUILD_NUMBER: '43',
    ...extra,
  };
}

describe('sanitizeTag', () => {
  test.each([
    ['main', 'main'],
    ['feature/login/form', 'feature-login-form'],
    ['Feature/ABC-12', 'Feature-ABC-12'],
    ['v1.2.0+build.5', 'v1.2.0_build.5'],
    ['a//b--c', 'a-b-c'],
    ['fix/çà-😀-naïve', 'fix-na-ve'],
    ['.hidden', 'hidden'],
    ['--.-x', 'x'],
    ['_private', '_private'],
    ["it's $(x)", 'it-s-x-'],
    ['日本', ''],
  ])('Given %j, When sanitised, Then it is %j', (input, expected) => {
    expect(sanitizeTag(input)).toBe(expected);
  });
});

describe('globToRegExp, isReleaseTag and classifyTag', () => {
  test.each([
    ['v*', 'v1.2.0', true],
    ['v*', '1.2.0', false],
    ['v*', 'av1', false],
    ['*-rc*', '1.0-rc1', true],
    ['v1.*', 'v1x2', false],
    ['release', 'release', true],
    ['release', 'release2', false],
  ])('Given glob %j, When matched against %j, Then the result is %s', (glob, tag, expected) => {
    expect(globToRegExp(glob).test(tag)).toBe(expected);
  });

  test.each([
    ['6e0de7938dda', 'commit'],
    ['6E0DE7938DDA', 'other'],
    ['pr-12-6e0de79', 'pull-request'],
    ['v1.2.0', 'release'],
    ['v1.2.0_build.5', 'release'],
    ['main-6e0de79-42', 'branch'],
    ['v2-dev-6e0de79-42', 'release'],
    ['branch-v2-dev-6e0de79-42', 'branch'],
    ['latest', 'other'],
    ['LaTeSt', 'other'],
    ['buildcache', 'other'],
    ['feature/x', 'other'],
    ['', 'other'],
    [`v${'1'.repeat(128)}`, 'other'],
  ])('Given tag %j and pattern v*, When classified, Then it is %s', (tag, expected) => {
    expect(classifyTag(tag, 'v*')).toBe(expected);
    expect(isReleaseTag(tag, 'v*')).toBe(expected === 'release');
  });
});

describe('CodeBuild builds: the tag table', () => {
  interface Case {
    readonly tags: readonly string[];
    readonly ref: string;
    readonly kind: ImageTags['kind'];
    readonly note?: RegExp;
  }
  const longBranch = `${'x'.repeat(116)}/${'y'.repeat(83)}`;
  const cases: [string, Env, Case][] = [
    [
      'a push to main, build 42',
      branchPush('main'),
      { tags: ['6e0de7938dda', 'main-6e0de79-42'], ref: 'refs/heads/main', kind: 'branch' },
    ],
    [
      'a push to a branch with slashes',
      branchPush('feature/login/form'),
      {
        tags: ['6e0de7938dda', 'feature-login-form-6e0de79-42'],
        ref: 'refs/heads/feature/login/form',
        kind: 'branch',
      },
    ],
    [
      'a push to an uppercase branch (case kept)',
      branchPush('Feature/ABC-12'),
      {
        tags: ['6e0de7938dda', 'Feature-ABC-12-6e0de79-42'],
        ref: 'refs/heads/Feature/ABC-12',
        kind: 'branch',
      },
    ],
    [
      'a push to a unicode branch',
      branchPush('fix/çà-😀-naïve'),
      {
        tags: ['6e0de7938dda', 'fix-na-ve-6e0de79-42'],
        ref: 'refs/heads/fix/çà-😀-naïve',
        kind: 'branch',
      },
    ],
    [
      'a push to a branch with no character a tag may hold',
      branchPush('日本'),
      { tags: ['6e0de7938dda', 'branch-6e0de79-42'], ref: 'refs/heads/日本', kind: 'branch' },
    ],
    [
      'a push to a 200-character branch',
      branchPush('a'.repeat(200)),
      {
        tags: ['6e0de7938dda', `${'a'.repeat(117)}-6e0de79-42`],
        ref: `refs/heads/${'a'.repeat(200)}`,
        kind: 'branch',
      },
    ],
    [
      'a push to a 200-character branch cut just after a slash',
      branchPush(longBranch),
      {
        tags: ['6e0de7938dda', `${'x'.repeat(116)}-6e0de79-42`],
        ref: `refs/heads/${longBranch}`,
        kind: 'branch',
      },
    ],
    [
      'a push to a v-prefixed branch',
      branchPush('v2-dev'),
      {
        tags: ['6e0de7938dda', 'branch-v2-dev-6e0de79-42'],
        ref: 'refs/heads/v2-dev',
        kind: 'branch',
        note: /"v2-dev-6e0de79-42" would read as a release tag/,
      },
    ],
    [
      'a push to a branch called latest',
      branchPush('latest'),
      { tags: ['6e0de7938dda', 'latest-6e0de79-42'], ref: 'refs/heads/latest', kind: 'branch' },
    ],
    [
      'a branch push whose build number is unknown',
      { ...branchPush('main'), CODEBUILD_BUILD_NUMBER: undefined },
      {
        tags: ['6e0de7938dda'],
        ref: 'refs/heads/main',
        kind: 'branch',
        note: /no build number .* sortable .* omitted/,
      },
    ],
    [
      'a push of the semver tag v1.2.0',
      tagPush('v1.2.0'),
      { tags: ['6e0de7938dda', 'v1.2.0'], ref: 'refs/tags/v1.2.0', kind: 'release' },
    ],
    [
      'a push of a semver tag with build metadata',
      tagPush('v1.2.0+build.5'),
      {
        tags: ['6e0de7938dda', 'v1.2.0_build.5'],
        ref: 'refs/tags/v1.2.0+build.5',
        kind: 'release',
        note: /pushed as "v1.2.0_build.5"/,
      },
    ],
    [
      'a push of a non-semver tag matching the pattern',
      tagPush('v2024.01-hotfix'),
      {
        tags: ['6e0de7938dda', 'v2024.01-hotfix'],
        ref: 'refs/tags/v2024.01-hotfix',
        kind: 'release',
      },
    ],
    [
      'a push of a tag outside the release pattern',
      tagPush('demo'),
      {
        tags: ['6e0de7938dda'],
        ref: 'refs/tags/demo',
        kind: 'commit',
        note: /"demo" does not match RELEASE_TAG_PATTERN "v\*"/,
      },
    ],
    [
      'a push of a semver tag without v under the default pattern',
      tagPush('1.2.0'),
      {
        tags: ['6e0de7938dda'],
        ref: 'refs/tags/1.2.0',
        kind: 'commit',
        note: /does not match RELEASE_TAG_PATTERN/,
      },
    ],
    [
      'a push of a semver tag without v under the pattern *.*.*',
      { ...tagPush('1.2.0'), RELEASE_TAG_PATTERN: '*.*.*' },
      { tags: ['6e0de7938dda', '1.2.0'], ref: 'refs/tags/1.2.0', kind: 'release' },
    ],
    [
      'a push of a git tag called latest, outside the pattern',
      tagPush('latest'),
      { tags: ['6e0de7938dda'], ref: 'refs/tags/latest', kind: 'commit', note: /does not match/ },
    ],
    [
      'pull request 12 from a fork whose branch is called main',
      PULL_REQUEST_12,
      {
        tags: ['pr-12-6e0de79'],
        ref: 'refs/pull/12/head',
        kind: 'pull-request',
        note: /never pushes them/,
      },
    ],
    [
      'a retried pull-request build that kept only its source version',
      manual('pr/12', { CODEBUILD_BUILD_NUMBER: '44' }),
      { tags: ['pr-12-6e0de79'], ref: 'refs/pull/12/head', kind: 'pull-request' },
    ],
    [
      'a retried pull-request build that lost its trigger but kept the head ref',
      { ...PULL_REQUEST_12, CODEBUILD_WEBHOOK_TRIGGER: undefined },
      { tags: ['pr-12-6e0de79'], ref: 'refs/pull/12/head', kind: 'pull-request' },
    ],
    [
      'a manual build of refs/pull/5/head',
      manual('refs/pull/5/head'),
      { tags: ['pr-5-6e0de79'], ref: 'refs/pull/5/head', kind: 'pull-request' },
    ],
    [
      'a manual build from a commit id',
      manual(SHA),
      { tags: ['6e0de7938dda'], ref: '', kind: 'commit', note: /commit id: only the commit tag/ },
    ],
    [
      'a manual build with no source version',
      manual(undefined),
      { tags: ['6e0de7938dda'], ref: '', kind: 'commit', note: /no CODEBUILD_SOURCE_VERSION/ },
    ],
    [
      'a manual build of the bare name main',
      manual('main'),
      {
        tags: ['6e0de7938dda'],
        ref: '',
        kind: 'commit',
        note: /"main", which may name a branch or a tag.*"refs\/heads\/main"/,
      },
    ],
    [
      'a manual build of refs/heads/x',
      manual('refs/heads/x'),
      { tags: ['6e0de7938dda', 'x-6e0de79-43'], ref: 'refs/heads/x', kind: 'branch' },
    ],
    [
      'a manual build of refs/tags/v1.2.0 pinned to its commit',
      manual(`refs/tags/v1.2.0^{${SHA}}`),
      { tags: ['6e0de7938dda', 'v1.2.0'], ref: 'refs/tags/v1.2.0', kind: 'release' },
    ],
    [
      'a retried branch build whose webhook variables are gone',
      manual(SHA, { CODEBUILD_BUILD_NUMBER: '44' }),
      { tags: ['6e0de7938dda'], ref: '', kind: 'commit', note: /retried build loses/ },
    ],
    [
      'a tag push that lost its trigger but kept the head ref',
      { ...tagPush('v1.2.0'), CODEBUILD_WEBHOOK_TRIGGER: undefined },
      { tags: ['6e0de7938dda', 'v1.2.0'], ref: 'refs/tags/v1.2.0', kind: 'release' },
    ],
    [
      'an uppercase commit id and no resolved version but a full source version',
      {
        CODEBUILD_SOURCE_VERSION: SHA.toUpperCase(),
        CODEBUILD_WEBHOOK_TRIGGER: 'branch/main',
        CODEBUILD_BUILD_NUMBER: '42',
      },
      { tags: ['6e0de7938dda', 'main-6e0de79-42'], ref: 'refs/heads/main', kind: 'branch' },
    ],
  ];

  test.each(cases)(
    'Given %s, When the tags are computed, Then they follow the table',
    (_name, env, expected) => {
      const result = tagsFor(env);

      expect(result.tags).toEqual(expected.tags);
      expect(result.ref).toBe(expected.ref);
      expect(result.kind).toBe(expected.kind);
      expect(result.commit).toBe(SHA);
      expectValidTags(result);
      if (expected.note !== undefined) {
        expect(result.notes.join('\n')).toMatch(expected.note);
      }
      if (expected.kind === 'pull-request') {
        // Never the commit tag, a release or a branch tag: those are what deploys select.
        expect(result.commitTag).toBeUndefined();
        expect(result.tags.some((tag) => classifyTag(tag, 'v*') !== 'pull-request')).toBe(false);
      } else {
        expect(result.commitTag).toBe('6e0de7938dda');
      }
    },
  );

  test('Given every sortable tag in the table, When measured, Then none exceeds 128 and the sha and build survive', () => {
    const sortable = cases
      .map(([, env]) => tagsFor(env).sortableTag)
      .filter((tag): tag is string => tag !== undefined);

    expect(sortable.length).toBeGreaterThan(5);
    for (const tag of sortable) {
      expect(tag.length).toBeLessThanOrEqual(128);
      expect(tag).toMatch(/-6e0de79-4[23]$/);
    }
  });
});

describe('CodeBuild builds: bad input is refused with the variable, the value and the fix', () => {
  test.each<[string, Env, string, RegExp]>([
    [
      'a short resolved commit id',
      { ...branchPush('main'), CODEBUILD_RESOLVED_SOURCE_VERSION: '6e0de79' },
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
      /CODEBUILD_RESOLVED_SOURCE_VERSION is "6e0de79": a full 40-hex commit id is needed/,
    ],
    [
      'a resolved commit id that is not hex',
      { ...branchPush('main'), CODEBUILD_RESOLVED_SOURCE_VERSION: 'abc' },
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
      /CODEBUILD_RESOLVED_SOURCE_VERSION is "abc": expected a 40-hex commit id/,
    ],
    [
      'a 40-character resolved version that is not hex',
      { ...branchPush('main'), CODEBUILD_RESOLVED_SOURCE_VERSION: 'g'.repeat(40) },
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
      /expected a 40-hex commit id/,
    ],
    [
      'an empty resolved commit id',
      {
        ...branchPush('main'),
        CODEBUILD_RESOLVED_SOURCE_VERSION: '',
        CODEBUILD_SOURCE_VERSION: 'main',
      },
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
      /CODEBUILD_RESOLVED_SOURCE_VERSION is empty: expected the 40-hex commit id/,
    ],
    [
      'no commit id anywhere',
      { CODEBUILD_WEBHOOK_TRIGGER: 'branch/main' },
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
      /CODEBUILD_RESOLVED_SOURCE_VERSION is not set/,
    ],
    [
      'only a short source version',
      { CODEBUILD_SOURCE_VERSION: '6e0de79' },
      'CODEBUILD_SOURCE_VERSION',
      /CODEBUILD_SOURCE_VERSION is "6e0de79": a full 40-hex commit id is needed/,
    ],
    [
      'a build number that is not a number',
      { ...branchPush('main'), CODEBUILD_BUILD_NUMBER: 'abc' },
      'CODEBUILD_BUILD_NUMBER',
      /CODEBUILD_BUILD_NUMBER is "abc": expected the build's number, a positive integer/,
    ],
    [
      'a build number of 0',
      { ...branchPush('main'), CODEBUILD_BUILD_NUMBER: '0' },
      'CODEBUILD_BUILD_NUMBER',
      /CODEBUILD_BUILD_NUMBER is "0"/,
    ],
    [
      'a fractional build number',
      { ...branchPush('main'), CODEBUILD_BUILD_NUMBER: '4.2' },
      'CODEBUILD_BUILD_NUMBER',
      /CODEBUILD_BUILD_NUMBER is "4.2"/,
    ],
    [
      'an unknown trigger form',
      { ...branchPush('main'), CODEBUILD_WEBHOOK_TRIGGER: 'push/main' },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /CODEBUILD_WEBHOOK_TRIGGER is "push\/main": expected "branch\/<name>"/,
    ],
    [
      'a trigger with an empty branch name',
      {
        ...branchPush('main'),
        CODEBUILD_WEBHOOK_TRIGGER: 'branch/',
        CODEBUILD_WEBHOOK_HEAD_REF: '',
      },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /names the branch ""/,
    ],
    [
      'a pull-request trigger without a number',
      { ...PULL_REQUEST_12, CODEBUILD_WEBHOOK_TRIGGER: 'pr/abc' },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /pull request "abc": expected a positive number/,
    ],
    [
      'a trigger and head ref that disagree',
      { ...branchPush('main'), CODEBUILD_WEBHOOK_HEAD_REF: 'refs/heads/dev' },
      'CODEBUILD_WEBHOOK_HEAD_REF',
      /CODEBUILD_WEBHOOK_HEAD_REF is "refs\/heads\/dev" \(expected "refs\/heads\/main"\)/,
    ],
    [
      'a branch trigger on a pull-request source version',
      { ...branchPush('main'), CODEBUILD_SOURCE_VERSION: 'pr/3' },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /CODEBUILD_WEBHOOK_TRIGGER is "branch\/main" but .*says pull request/,
    ],
    [
      'two different pull-request numbers',
      { ...PULL_REQUEST_12, CODEBUILD_SOURCE_VERSION: 'pr/13' },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /no single PR number/,
    ],
    [
      'a retried pull-request build that kept only the PR event and head branch',
      {
        CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
        CODEBUILD_SOURCE_VERSION: SHA,
        CODEBUILD_WEBHOOK_EVENT: 'PULL_REQUEST_UPDATED',
        CODEBUILD_WEBHOOK_HEAD_REF: 'refs/heads/main',
      },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /pull-request build \(CODEBUILD_WEBHOOK_EVENT="PULL_REQUEST_UPDATED".*never push/,
    ],
    [
      'a pull-request base ref and a head branch but no trigger',
      {
        CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
        CODEBUILD_WEBHOOK_BASE_REF: 'refs/heads/main',
        CODEBUILD_WEBHOOK_HEAD_REF: 'refs/heads/feature',
      },
      'CODEBUILD_WEBHOOK_TRIGGER',
      /no single PR number/,
    ],
    [
      'a head ref that is not a ref',
      { CODEBUILD_RESOLVED_SOURCE_VERSION: SHA, CODEBUILD_WEBHOOK_HEAD_REF: 'main' },
      'CODEBUILD_WEBHOOK_HEAD_REF',
      /CODEBUILD_WEBHOOK_HEAD_REF is "main": expected "refs\/heads\/<branch>"/,
    ],
    [
      'a pinned source version naming another commit',
      manual(`refs/heads/main^{${OTHER_SHA}}`),
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
      /which commit was built is unclear/,
    ],
    [
      'an empty release pattern',
      { ...branchPush('main'), RELEASE_TAG_PATTERN: '' },
      'RELEASE_TAG_PATTERN',
      /RELEASE_TAG_PATTERN is "": expected a glob/,
    ],
    [
      'a release pattern matching every tag',
      { ...branchPush('main'), RELEASE_TAG_PATTERN: '**' },
      'RELEASE_TAG_PATTERN',
      /RELEASE_TAG_PATTERN is "\*\*"/,
    ],
    [
      'a release pattern with characters ECR does not accept',
      { ...branchPush('main'), RELEASE_TAG_PATTERN: 'v[0-9]*' },
      'RELEASE_TAG_PATTERN',
      /RELEASE_TAG_PATTERN is "v\[0-9\]\*"/,
    ],
    [
      'a release tag that would be latest',
      { ...tagPush('latest'), RELEASE_TAG_PATTERN: 'l*' },
      'git tag',
      /git tag "latest" would become the image tag "latest": never "latest"/,
    ],
    [
      'a release tag that would be LATEST',
      { ...tagPush('LATEST'), RELEASE_TAG_PATTERN: 'L*' },
      'git tag',
      /never "latest"/,
    ],
    [
      'a release tag longer than 128 characters',
      tagPush(`v${'9'.repeat(130)}`),
      'git tag',
      /131 characters as an image tag; the limit is 128 and release tags are never truncated/,
    ],
    [
      'a release tag that reads as a commit tag',
      { ...tagPush('1234567890ab'), RELEASE_TAG_PATTERN: '1*' },
      'git tag',
      /reads as a commit tag, not a release/,
    ],
    [
      'a release pattern that matches branch tags even with the prefix',
      { ...branchPush('bugfix'), RELEASE_TAG_PATTERN: 'b*' },
      'RELEASE_TAG_PATTERN',
      /matches the branch tag "branch-bugfix-6e0de79-42", even with the "branch-" prefix/,
    ],
    [
      'a release pattern that matches pull-request tags',
      { ...PULL_REQUEST_12, RELEASE_TAG_PATTERN: 'p*' },
      'RELEASE_TAG_PATTERN',
      /matches the pull-request tag "pr-12-6e0de79"/,
    ],
  ])(
    'Given %s, When the tags are computed, Then a TagInputError names the input and the fix',
    (_name, env, input, message) => {
      const error = tagInputErrorOf(() => tagsFor(env));

      expect(error.input).toBe(input);
      expect(error.message).toMatch(message);
    },
  );
});

describe('computeTags on inputs a checkout gives', () => {
  const base: TagInputs = { commit: SHA, ref: { kind: 'none' }, releaseTagPattern: 'v*' };

  test.each<[string, Partial<TagInputs>, readonly string[], string, ImageTags['kind']]>([
    [
      'branch main with release tags and other tags at the commit, build 7',
      { ref: { kind: 'branch', name: 'main' }, tagsAtCommit: ['demo', 'v1.2.0'], buildNumber: 7 },
      ['6e0de7938dda', 'v1.2.0', 'main-6e0de79-7'],
      'refs/heads/main',
      'release',
    ],
    [
      'a detached HEAD at a release tag',
      { tagsAtCommit: ['v1.2.0'], buildNumber: 7 },
      ['6e0de7938dda', 'v1.2.0'],
      'refs/tags/v1.2.0',
      'release',
    ],
    [
      'two git tags that sanitise to one image tag',
      { tagsAtCommit: ['v1+a', 'v1_a'] },
      ['6e0de7938dda', 'v1_a'],
      'refs/tags/v1+a',
      'release',
    ],
    [
      'a branch whose sortable tag would read as a pull-request tag',
      {
        commit: `1234567${'a'.repeat(33)}`,
        ref: { kind: 'branch', name: 'pr' },
        buildNumber: 1234567,
      },
      ['1234567aaaaa', 'branch-pr-1234567-1234567'],
      'refs/heads/pr',
      'branch',
    ],
    [
      'a 200-character branch and the largest build number',
      { ref: { kind: 'branch', name: 'b'.repeat(200) }, buildNumber: Number.MAX_SAFE_INTEGER },
      ['6e0de7938dda', `${'b'.repeat(103)}-6e0de79-${Number.MAX_SAFE_INTEGER}`],
      `refs/heads/${'b'.repeat(200)}`,
      'branch',
    ],
  ])('Given %s, When the tags are computed, Then they are %j', (_name, inputs, tags, ref, kind) => {
    const result = computeTags({ ...base, ...inputs });

    expect(result.tags).toEqual(tags);
    expect(result.ref).toBe(ref);
    expect(result.kind).toBe(kind);
    expectValidTags(result);
  });

  test('Given a commit that is not 40 hex, When the tags are computed, Then the commit field is named', () => {
    const error = tagInputErrorOf(() => computeTags({ ...base, commit: 'HEAD' }));

    expect(error.input).toBe('commit');
    expect(error.message).toMatch(/commit is "HEAD": expected a 40-hex commit id/);
  });
});

// ---- the real executable ----

/** Git without the user's or the system's configuration. */
const GIT_ENV: Env = {
  HOME: tmpdir(),
  GIT_CONFIG_NOSYSTEM: '1',
  GIT_CONFIG_GLOBAL: '/dev/null',
};

function run(args: readonly string[], env: Env, cwd: string = REPO_ROOT): SpawnSyncReturns<string> {
  return spawnSync(process.execPath, [SCRIPT, ...args], {
    cwd,
    encoding: 'utf8',
    // Only what the case gives: no CODEBUILD_* variable leaks in from the machine running jest.
    env: { PATH: process.env['PATH'], ...GIT_ENV, ...env },
  });
}

/**
 * Runs a bash script the way the buildspec does (`set -euo pipefail`), with $NODE and $SCRIPT
 * set. stdin is /dev/null: Node's stdio pipes are sockets, and Debian's bash reads ~/.bashrc
 * when stdin is a socket (it takes that for sshd).
 */
function bash(script: string, env: Env, cwd: string = tmpdir()): SpawnSyncReturns<string> {
  return spawnSync('bash', ['-c', `set -euo pipefail; ${script}`], {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { PATH: process.env['PATH'], HOME: cwd, NODE: process.execPath, SCRIPT, ...env },
  });
}

/** `export NAME='value'` lines (values without quotes) as a record; anything else fails. */
function parseEnvOutput(stdout: string): Record<string, string> {
  const values: Record<string, string> = {};
  for (const line of stdout.trim().split('\n')) {
    const match = /^export ([A-Z_]+)='([^']*)'$/.exec(line);
    if (match?.[1] === undefined || match[2] === undefined)
      throw new Error(`not an assignment: ${line}`);
    values[match[1]] = match[2];
  }
  return values;
}

describe('the executable', () => {
  test('Given the file, When run directly, Then its shebang and mode make it a command', () => {
    expect(statSync(SCRIPT).mode & 0o111).not.toBe(0);
    const result = spawnSync(SCRIPT, ['--help'], { encoding: 'utf8' });

    expect(result.status).toBe(0);
    expect(result.stdout).toMatch(/^Usage: image-tags\.js/);
  });

  test('Given a push to main, When run with the default format, Then it prints one tag per line', () => {
    const result = run([], codeBuildEnv(branchPush('main')));

    expect(result.status).toBe(0);
    expect(result.stdout).toBe('6e0de7938dda\nmain-6e0de79-42\n');
    expect(result.stderr).toBe('');
  });

  test('Given a hostile branch name, When --format env is evaluated by bash, Then every variable is exact, exported, and nothing runs', () => {
    const work = mkdtempSync(path.join(tmpdir(), 'image-tags-env-'));
    try {
      const branch = "x'$(touch${IFS}PWNED)'`touch${IFS}PWNED2`\"$HOME";
      const result = bash(
        'tags="$("$NODE" "$SCRIPT" --format env)"; eval "$tags"; ' +
          'printf "%s\\n" "$GIT_COMMIT" "$GIT_REF" "$IMAGE_TAG" "$IMAGE_TAGS" "$TAG_KIND"; ' +
          'printenv IMAGE_TAGS',
        codeBuildEnv(branchPush(branch)),
        work,
      );

      expect(result.stderr).toBe('');
      expect(result.status).toBe(0);
      expect(result.stdout.split('\n')).toEqual([
        SHA,
        `refs/heads/${branch}`,
        '6e0de7938dda',
        '6e0de7938dda,x-touch-IFS-PWNED-touch-IFS-PWNED2-HOME-6e0de79-42',
        'branch',
        '6e0de7938dda,x-touch-IFS-PWNED-touch-IFS-PWNED2-HOME-6e0de79-42',
        '',
      ]);
      expect(existsSync(path.join(work, 'PWNED'))).toBe(false);
      expect(existsSync(path.join(work, 'PWNED2'))).toBe(false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  });

  test.each<[string, Env, Record<string, string>]>([
    [
      'a tag push of v1.2.0',
      tagPush('v1.2.0'),
      {
        GIT_REF: 'refs/tags/v1.2.0',
        IMAGE_TAG: '6e0de7938dda',
        IMAGE_TAGS: '6e0de7938dda,v1.2.0',
        TAG_KIND: 'release',
      },
    ],
    [
      'pull request 12',
      PULL_REQUEST_12,
      {
        GIT_REF: 'refs/pull/12/head',
        IMAGE_TAG: 'pr-12-6e0de79',
        IMAGE_TAGS: 'pr-12-6e0de79',
        TAG_KIND: 'pull-request',
      },
    ],
    [
      'a retried build',
      manual(SHA),
      { GIT_REF: '', IMAGE_TAG: '6e0de7938dda', IMAGE_TAGS: '6e0de7938dda', TAG_KIND: 'commit' },
    ],
  ])(
    'Given %s, When --format env is evaluated by bash, Then the variables are %j',
    (_name, env, expected) => {
      const result = bash(
        'tags="$("$NODE" "$SCRIPT" --format env)"; eval "$tags"; ' +
          'printf "%s=%s\\n" GIT_COMMIT "$GIT_COMMIT" GIT_REF "$GIT_REF" IMAGE_TAG "$IMAGE_TAG" ' +
          'IMAGE_TAGS "$IMAGE_TAGS" TAG_KIND "$TAG_KIND"',
        codeBuildEnv(env),
      );

      expect(result.status).toBe(0);
      expect(result.stdout).toBe(
        Object.entries({ GIT_COMMIT: SHA, ...expected })
          .map(([name, value]) => `${name}=${value}\n`)
          .join(''),
      );
    },
  );

  test('Given a tag push, When run with --format json, Then one object carries the same facts', () => {
    const result = run(['--format', 'json'], codeBuildEnv(tagPush('v1.2.0+build.5')));

    expect(result.status).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      commit: SHA,
      ref: 'refs/tags/v1.2.0+build.5',
      kind: 'release',
      tags: ['6e0de7938dda', 'v1.2.0_build.5'],
      immutableTag: '6e0de7938dda',
      commitTag: '6e0de7938dda',
      releaseTags: ['v1.2.0_build.5'],
      notes: ['git tag "v1.2.0+build.5" is pushed as "v1.2.0_build.5" (Docker\'s tag alphabet).'],
    });
    expect(result.stderr).toMatch(/^image-tags: git tag "v1\.2\.0\+build\.5" is pushed as/);
  });

  test('Given a bare branch name as source version, When run, Then it succeeds and says on stderr how to get a branch tag', () => {
    const result = run([], codeBuildEnv(manual('main')));

    expect(result.status).toBe(0);
    expect(result.stdout).toBe('6e0de7938dda\n');
    expect(result.stderr).toMatch(/start the build with source version "refs\/heads\/main"/);
  });

  test.each<[string, Env, RegExp]>([
    [
      'a short commit id',
      { ...branchPush('main'), CODEBUILD_RESOLVED_SOURCE_VERSION: '6e0de79' },
      /^image-tags: CODEBUILD_RESOLVED_SOURCE_VERSION is "6e0de79": a full 40-hex commit id is needed/,
    ],
    [
      'an empty resolved source version',
      { CODEBUILD_RESOLVED_SOURCE_VERSION: '' },
      /CODEBUILD_RESOLVED_SOURCE_VERSION is empty/,
    ],
    [
      'a bad build number',
      { ...branchPush('main'), CODEBUILD_BUILD_NUMBER: 'forty-two' },
      /CODEBUILD_BUILD_NUMBER is "forty-two"/,
    ],
    [
      'a release tag that would be latest',
      { ...tagPush('latest'), RELEASE_TAG_PATTERN: '*test' },
      /never "latest"/,
    ],
    [
      'a pull-request event with no number',
      { ...PULL_REQUEST_12, CODEBUILD_WEBHOOK_TRIGGER: '', CODEBUILD_SOURCE_VERSION: SHA },
      /no single PR number/,
    ],
  ])(
    'Given %s, When run, Then it exits 1, prints nothing to eval, and says why',
    (_name, env, message) => {
      const result = run(['--format', 'env'], codeBuildEnv(env));

      expect(result.status).toBe(1);
      expect(result.stdout).toBe('');
      expect(result.stderr).toMatch(message);
    },
  );

  test.each([
    [['--format', 'xml'], /--format "xml": expected lines, env or json/],
    [['--bogus'], /unknown argument "--bogus"/],
    [['--build-number'], /--build-number needs a value/],
    [['--format='], /--format needs a value/],
  ])('Given the arguments %j, When run, Then it exits 2 with the usage', (args, message) => {
    const result = run(args, codeBuildEnv(branchPush('main')));

    expect(result.status).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr).toMatch(message);
    expect(result.stderr).toMatch(/Usage: image-tags\.js/);
  });

  test('Given --build-number that is not a number, When run, Then it exits 1 naming the flag', () => {
    const result = run(['--build-number', '4x'], codeBuildEnv(branchPush('main')));

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/--build-number is "4x"/);
  });

  test('Given --build-number in CodeBuild, When run, Then it wins over CODEBUILD_BUILD_NUMBER', () => {
    const result = run(['--build-number', '99'], codeBuildEnv(branchPush('main')));

    expect(result.status).toBe(0);
    expect(result.stdout).toBe('6e0de7938dda\nmain-6e0de79-99\n');
  });
});

// ---- local checkouts: a real git repository ----

describe('local checkouts', () => {
  let root: string;
  /** Worktrees of one repository, each HEAD in the state the case needs. */
  const dirs = { main: '', feature: '', detachedAtTag: '', detachedUntagged: '', notARepo: '' };
  const commits = { tagged: '', feature: '' };

  function git(cwd: string, ...args: string[]): string {
    const result = spawnSync(
      'git',
      ['-c', 'user.name=Image Tags Test', '-c', 'user.email=image-tags@example.com', ...args],
      { cwd, encoding: 'utf8', env: { PATH: process.env['PATH'], ...GIT_ENV } },
    );
    if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
    return result.stdout.trim();
  }

  beforeAll(() => {
    root = mkdtempSync(path.join(tmpdir(), 'image-tags-git-'));
    dirs.main = path.join(root, 'main');
    dirs.feature = path.join(root, 'feature');
    dirs.detachedAtTag = path.join(root, 'at-tag');
    dirs.detachedUntagged = path.join(root, 'untagged');
    dirs.notARepo = path.join(root, 'plain');
    mkdirSync(dirs.main);
    mkdirSync(dirs.notARepo);
    git(dirs.main, 'init', '-q', '-b', 'main');
    writeFileSync(path.join(dirs.main, 'README'), 'one\n');
    git(dirs.main, 'add', 'README');
    git(dirs.main, 'commit', '-q', '-m', 'one');
    git(dirs.main, 'tag', '-a', 'v1.2.0', '-m', 'release 1.2.0');
    git(dirs.main, 'tag', 'v1.2.0+build.5');
    git(dirs.main, 'tag', 'demo');
    commits.tagged = git(dirs.main, 'rev-parse', 'HEAD');
    git(dirs.main, 'worktree', 'add', '-q', '-b', 'feature/x', dirs.feature);
    writeFileSync(path.join(dirs.feature, 'README'), 'two\n');
    git(dirs.feature, 'commit', '-q', '-am', 'two');
    commits.feature = git(dirs.feature, 'rev-parse', 'HEAD');
    git(dirs.main, 'worktree', 'add', '-q', '--detach', dirs.detachedAtTag, 'v1.2.0');
    git(dirs.main, 'worktree', 'add', '-q', '--detach', dirs.detachedUntagged, 'feature/x');
  });

  afterAll(() => {
    rmSync(root, { recursive: true, force: true });
  });

  const commitTag = (commit: string): string => commit.slice(0, 12);
  const sha7 = (commit: string): string => commit.slice(0, 7);

  test.each<
    [string, keyof typeof dirs, string[], Env, () => Record<string, string>, RegExp | undefined]
  >([
    [
      'branch main at a commit tagged v1.2.0, no build number',
      'main',
      [],
      {},
      () => ({
        GIT_COMMIT: commits.tagged,
        GIT_REF: 'refs/heads/main',
        IMAGE_TAG: commitTag(commits.tagged),
        IMAGE_TAGS: `${commitTag(commits.tagged)},v1.2.0,v1.2.0_build.5`,
        TAG_KIND: 'release',
      }),
      /"demo" does not match[\s\S]*sortable .* omitted/,
    ],
    [
      'branch main at a commit tagged v1.2.0, --build-number 7',
      'main',
      ['--build-number', '7'],
      {},
      () => ({
        GIT_COMMIT: commits.tagged,
        GIT_REF: 'refs/heads/main',
        IMAGE_TAG: commitTag(commits.tagged),
        IMAGE_TAGS: `${commitTag(commits.tagged)},v1.2.0,v1.2.0_build.5,main-${sha7(commits.tagged)}-7`,
        TAG_KIND: 'release',
      }),
      undefined,
    ],
    [
      'branch feature/x with CODEBUILD_BUILD_NUMBER only',
      'feature',
      [],
      { CODEBUILD_BUILD_NUMBER: '3' },
      () => ({
        GIT_COMMIT: commits.feature,
        GIT_REF: 'refs/heads/feature/x',
        IMAGE_TAG: commitTag(commits.feature),
        IMAGE_TAGS: `${commitTag(commits.feature)},feature-x-${sha7(commits.feature)}-3`,
        TAG_KIND: 'branch',
      }),
      undefined,
    ],
    [
      'a detached HEAD at v1.2.0',
      'detachedAtTag',
      ['--build-number', '5'],
      {},
      () => ({
        GIT_COMMIT: commits.tagged,
        GIT_REF: 'refs/tags/v1.2.0',
        IMAGE_TAG: commitTag(commits.tagged),
        IMAGE_TAGS: `${commitTag(commits.tagged)},v1.2.0,v1.2.0_build.5`,
        TAG_KIND: 'release',
      }),
      undefined,
    ],
    [
      'a detached HEAD at an untagged commit',
      'detachedUntagged',
      [],
      {},
      () => ({
        GIT_COMMIT: commits.feature,
        GIT_REF: '',
        IMAGE_TAG: commitTag(commits.feature),
        IMAGE_TAGS: commitTag(commits.feature),
        TAG_KIND: 'commit',
      }),
      /HEAD is detached/,
    ],
    [
      'the release pattern d*, which makes the demo tag a release',
      'main',
      [],
      { RELEASE_TAG_PATTERN: 'd*' },
      () => ({
        GIT_COMMIT: commits.tagged,
        GIT_REF: 'refs/heads/main',
        IMAGE_TAG: commitTag(commits.tagged),
        IMAGE_TAGS: `${commitTag(commits.tagged)},demo`,
        TAG_KIND: 'release',
      }),
      undefined,
    ],
  ])(
    'Given %s, When run in the checkout, Then the variables follow the table',
    (_name, dir, args, env, expected, note) => {
      const result = run(['--format', 'env', ...args], env, dirs[dir]);

      expect(result.status).toBe(0);
      const values = parseEnvOutput(result.stdout);
      expect(values).toEqual(expected());
      for (const tag of values['IMAGE_TAGS']?.split(',') ?? [])
        expect(tag).toMatch(DOCKER_TAG_GRAMMAR);
      if (note !== undefined) expect(result.stderr).toMatch(note);
    },
  );

  test('Given CodeBuild variables and --git-dir, When run, Then the checkout wins', () => {
    const result = run(
      ['--git-dir', dirs.feature, '--build-number', '8'],
      codeBuildEnv(branchPush('main')),
      dirs.notARepo,
    );

    expect(result.status).toBe(0);
    expect(result.stdout).toBe(
      `${commitTag(commits.feature)}\nfeature-x-${sha7(commits.feature)}-8\n`,
    );
  });

  test('Given a directory outside any checkout, When run, Then it exits 1 and says how to fix it', () => {
    const result = run([], {}, dirs.notARepo);

    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /git -C "\." rev-parse HEAD failed: .*not a git repository.*--git-dir/,
    );
  });

  test('Given the checkout, When read in-process, Then inputsFromGit reports what git says', () => {
    expect(inputsFromGit(dirs.main)).toEqual({
      commit: commits.tagged,
      ref: { kind: 'branch', name: 'main' },
      tagsAtCommit: ['demo', 'v1.2.0', 'v1.2.0+build.5'],
      notes: [],
    });
    expect(inputsFromGit(dirs.detachedUntagged)).toEqual({
      commit: commits.feature,
      ref: { kind: 'none' },
      tagsAtCommit: [],
      notes: ['HEAD is detached: no branch tag.'],
    });
  });

  test('Given git cannot be started, When a checkout is read, Then the error says to install git', () => {
    const error = tagInputErrorOf(() =>
      inputsFromGit(dirs.main, () => ({
        status: null,
        stdout: '',
        stderr: '',
        error: new Error('spawnSync git ENOENT'),
      })),
    );

    expect(error.message).toMatch(/could not run git \(spawnSync git ENOENT\): install git/);
  });
});

describe('isGitRefName: one definition of a branch or tag name, for the builds and the deployer', () => {
  /** What git itself says of `refs/heads/<name>`. */
  function gitAccepts(name: string): boolean {
    const run = spawnSync('git', ['check-ref-format', `refs/heads/${name}`], { encoding: 'utf8' });
    if (run.error !== undefined || run.status === null) throw new Error('git could not run');
    return run.status === 0;
  }

  test.each([
    'main',
    'release/1.x',
    'feature/JIRA-12_fix',
    'v1.2.0',
    'a@b',
    '@',
    'ünïcode',
    'x.lockx',
    '',
    'a b',
    'a\tb',
    'a\u007fb',
    'a~b',
    'a^b',
    'a:b',
    'a?b',
    'a*b',
    'a[b',
    'a\\b',
    'a..b',
    'a@{b',
    '/a',
    'a/',
    'a//b',
    'a.',
    '.a',
    'a/.b',
    'a.lock',
    'a/b.lock/c',
  ])('%j: as git check-ref-format decides', (name) => {
    expect(isGitRefName(name)).toBe(gitAccepts(name));
  });

  test('the deployer parses with the same definition (no copy of its own)', () => {
    const parse = readFileSync(path.join(REPO_ROOT, 'core', 'parse.ts'), 'utf8');
    expect(parse).toMatch(/import \{[^}]*\bisGitRefName\b[^}]*\} from '\.\/image-tags'/s);
    expect(parse).not.toMatch(/function isGitRefName/);
  });
});
