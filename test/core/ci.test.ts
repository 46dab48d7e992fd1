import { ciBuild, detectCi, parseGitRef, webAddress } from '../../core/ci';
import { TagInputError } from '../../core/image-tags';

// core/ci.js: what each CI's environment says about a build. Pure: tables of environments as each
// CI sets them, and what they must give (or how they must be refused).

const SHA = '6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f';

const GITHUB = {
  GITHUB_ACTIONS: 'true',
  GITHUB_SHA: SHA,
  GITHUB_RUN_NUMBER: '42',
  GITHUB_REPOSITORY: 'acme/container.training',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_WORKFLOW: 'ship',
  GITHUB_WORKFLOW_REF: 'acme/container.training/.github/workflows/ship.yml@refs/heads/main',
};
const GITLAB = {
  GITLAB_CI: 'true',
  CI_COMMIT_SHA: SHA,
  CI_PIPELINE_IID: '7',
  CI_PROJECT_PATH: 'acme/dockercoins',
  CI_PROJECT_URL: 'https://gitlab.example.com/acme/dockercoins',
};
const JENKINS = {
  JENKINS_URL: 'https://jenkins.example.com/',
  GIT_COMMIT: SHA,
  BUILD_NUMBER: '9',
  JOB_NAME: 'dockercoins/main',
  GIT_URL: 'https://git.example.com/acme/dockercoins.git',
};

describe('detectCi', () => {
  test.each<[string, NodeJS.ProcessEnv, string]>([
    ['CodeBuild', { CODEBUILD_BUILD_ID: 'p:1' }, 'codebuild'],
    ['GitHub Actions', { GITHUB_ACTIONS: 'true' }, 'github-actions'],
    ['GitLab CI', { GITLAB_CI: 'true' }, 'gitlab-ci'],
    ['Jenkins', { JENKINS_URL: 'https://j/' }, 'jenkins'],
    ['a workstation', { HOME: '/home/me', CI: 'true' }, 'none'],
    ['GITHUB_ACTIONS not "true"', { GITHUB_ACTIONS: '1' }, 'none'],
  ])('Given %s, Then it is %s', (_name, env, expected) => {
    expect(detectCi(env)).toBe(expected);
  });
});

describe('ciBuild: what each CI says', () => {
  test.each<[string, NodeJS.ProcessEnv, object]>([
    [
      'a GitHub push to main',
      { ...GITHUB, GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/heads/main' },
      {
        ci: 'github-actions',
        commit: SHA,
        ref: { kind: 'branch', name: 'main' },
        buildNumber: 42,
        buildProject: 'github:acme/container.training/.github/workflows/ship.yml',
        sourceUrl: 'https://github.com/acme/container.training',
      },
    ],
    [
      'a GitHub tag push',
      { ...GITHUB, GITHUB_EVENT_NAME: 'push', GITHUB_REF: 'refs/tags/v1.2.0' },
      { ref: { kind: 'tag', name: 'v1.2.0' } },
    ],
    [
      'a GitHub pull_request (the merge ref)',
      { ...GITHUB, GITHUB_EVENT_NAME: 'pull_request', GITHUB_REF: 'refs/pull/12/merge' },
      { ref: { kind: 'pull-request', number: 12 } },
    ],
    [
      'GitHub without GITHUB_WORKFLOW_REF (older servers)',
      { ...GITHUB, GITHUB_WORKFLOW_REF: undefined, GITHUB_REF: 'refs/heads/main' },
      { buildProject: 'github:acme/container.training/ship' },
    ],
    [
      'a GitLab branch pipeline',
      { ...GITLAB, CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'main' },
      {
        ci: 'gitlab-ci',
        commit: SHA,
        ref: { kind: 'branch', name: 'main' },
        buildNumber: 7,
        buildProject: 'gitlab:acme/dockercoins',
        sourceUrl: 'https://gitlab.example.com/acme/dockercoins',
      },
    ],
    [
      'a GitLab tag pipeline',
      { ...GITLAB, CI_COMMIT_TAG: 'v1.2.0', CI_COMMIT_REF_NAME: 'v1.2.0' },
      { ref: { kind: 'tag', name: 'v1.2.0' } },
    ],
    [
      'a GitLab merge request pipeline',
      {
        ...GITLAB,
        CI_MERGE_REQUEST_IID: '3',
        CI_PIPELINE_SOURCE: 'merge_request_event',
        CI_COMMIT_REF_NAME: 'feature',
      },
      { ref: { kind: 'pull-request', number: 3 } },
    ],
    [
      'a Jenkins multibranch branch',
      { ...JENKINS, BRANCH_NAME: 'main' },
      {
        ci: 'jenkins',
        commit: SHA,
        ref: { kind: 'branch', name: 'main' },
        buildNumber: 9,
        buildProject: 'jenkins:dockercoins/main',
        sourceUrl: 'https://git.example.com/acme/dockercoins',
      },
    ],
    [
      'a Jenkins multibranch tag',
      { ...JENKINS, BRANCH_NAME: 'v1.2.0', TAG_NAME: 'v1.2.0' },
      { ref: { kind: 'tag', name: 'v1.2.0' } },
    ],
    [
      'a Jenkins multibranch pull request',
      { ...JENKINS, BRANCH_NAME: 'PR-24', CHANGE_ID: '24' },
      { ref: { kind: 'pull-request', number: 24 } },
    ],
    [
      'a Jenkins freestyle job (git plugin)',
      { ...JENKINS, GIT_BRANCH: 'origin/release/1.x' },
      { ref: { kind: 'branch', name: 'release/1.x' } },
    ],
    [
      'a Jenkins SSH remote (no web address)',
      { ...JENKINS, GIT_URL: 'git@git.example.com:acme/dockercoins.git' },
      { sourceUrl: undefined },
    ],
    [
      'CodeBuild (read by image-tags.js)',
      {
        CODEBUILD_BUILD_ID: 'DockerCoins-rng:0b1c',
        CODEBUILD_BUILD_NUMBER: '5',
        CODEBUILD_RESOLVED_SOURCE_VERSION: SHA,
        CODEBUILD_WEBHOOK_TRIGGER: 'branch/main',
        SOURCE_URL: 'https://github.com/acme/container.training',
      },
      {
        ci: 'codebuild',
        commit: SHA,
        ref: { kind: 'branch', name: 'main' },
        buildNumber: 5,
        buildProject: 'DockerCoins-rng',
        sourceUrl: 'https://github.com/acme/container.training',
      },
    ],
    ['no CI', { HOME: '/home/me' }, { ci: 'none', notes: [] }],
  ])('Given %s, Then it reads as expected', (_name, env, expected) => {
    expect(ciBuild(env)).toMatchObject(expected);
  });

  test.each<[string, NodeJS.ProcessEnv, RegExp]>([
    [
      'a GitHub pull_request_target run (the base branch ref)',
      { ...GITHUB, GITHUB_EVENT_NAME: 'pull_request_target', GITHUB_REF: 'refs/heads/main' },
      /GITHUB_EVENT_NAME is "pull_request_target" but GITHUB_REF is "refs\/heads\/main"/,
    ],
    [
      'a short GITHUB_SHA',
      { ...GITHUB, GITHUB_SHA: '6e0de79', GITHUB_REF: 'refs/heads/main' },
      /GITHUB_SHA is "6e0de79": expected the 40-hex commit id/,
    ],
    [
      'an unknown GitHub ref',
      { ...GITHUB, GITHUB_REF: 'refs/notes/x' },
      /GITHUB_REF is "refs\/notes\/x": expected a full git ref/,
    ],
    [
      'a GitLab merge request event without its IID',
      { ...GITLAB, CI_PIPELINE_SOURCE: 'merge_request_event', CI_COMMIT_REF_NAME: 'feature' },
      /CI_MERGE_REQUEST_IID is not set/,
    ],
    [
      'GitLab branch and ref name disagreeing',
      { ...GITLAB, CI_COMMIT_BRANCH: 'main', CI_COMMIT_REF_NAME: 'other' },
      /CI_COMMIT_BRANCH is "main" but CI_COMMIT_REF_NAME is "other"/,
    ],
    [
      'a Jenkins build number that is not one',
      { ...JENKINS, BUILD_NUMBER: 'abc' },
      /BUILD_NUMBER is "abc": expected the build's number/,
    ],
    [
      'a Jenkins branch git cannot have',
      { ...JENKINS, BRANCH_NAME: 'a..b' },
      /BRANCH_NAME names the branch "a\.\.b", which git cannot have/,
    ],
  ])('Given %s, Then it is refused naming the variable', (_name, env, message) => {
    expect(() => ciBuild(env)).toThrow(TagInputError);
    expect(() => ciBuild(env)).toThrow(message);
  });
});

describe('parseGitRef and webAddress', () => {
  test.each<[string, object]>([
    ['refs/heads/feature/x', { kind: 'branch', name: 'feature/x' }],
    ['refs/tags/v1.2.0', { kind: 'tag', name: 'v1.2.0' }],
    ['refs/pull/12/head', { kind: 'pull-request', number: 12 }],
    ['', { kind: 'none' }],
  ])('Given --ref %j, Then it is %j', (text, expected) => {
    expect(parseGitRef(text, '--ref')).toEqual(expected);
  });

  test.each([['main'], ['refs/pull/0/head'], ['refs/heads/a b']])(
    'Given --ref %j, Then it is refused naming --ref',
    (text) => {
      expect(() => parseGitRef(text, '--ref')).toThrow(/--ref/);
    },
  );

  test.each<[string, string | undefined]>([
    ['https://git.example.com/a/b.git', 'https://git.example.com/a/b'],
    ['https://token:x@git.example.com/a/b.git', undefined],
    ['git@git.example.com:a/b.git', undefined],
    ['ssh://git@git.example.com/a/b.git', undefined],
  ])('Given the remote %s, Then the source label is %s', (remote, expected) => {
    expect(webAddress(remote)).toBe(expected);
  });
});
