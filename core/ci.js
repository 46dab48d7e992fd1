// @ts-check
'use strict';

/**
 * What the CI running a build says about it: the commit, the git ref, the build number and who
 * numbered it (the build project), and the source's web address. One reading per CI, each a pure
 * function of the environment, so `ship build` in GitHub Actions, GitLab CI or Jenkins labels and
 * tags an image as CodeBuild does (core/build.js), and the deployers can order those builds.
 *
 * A CI that says nothing about something leaves it undefined: the caller then asks its flags, or
 * the git checkout (commit and branch). Contradictions and pull-request builds that would push
 * deployable tags are refused with the variable named, never guessed around.
 *
 * Plain Node (`// @ts-check`, builtins only): CodeBuild runs it from the tools asset, as it runs
 * image-tags.js and registry.js.
 */

const {
  TagInputError,
  inputsFromCodeBuild,
  isCodeBuild,
  isGitRefName,
} = require('./image-tags.js');

const COMMIT_ID = /^[0-9a-fA-F]{40}$/;
const POSITIVE_INTEGER = /^[1-9][0-9]*$/;

/** @typedef {import('./image-tags.js').GitRef} GitRef */
/** @typedef {'codebuild' | 'github-actions' | 'gitlab-ci' | 'jenkins' | 'none'} CiName */

/**
 * @typedef {object} CiBuild
 * @property {CiName} ci which CI set the environment; `none` outside any we know
 * @property {string} [commit] the 40-hex commit, lowercase
 * @property {GitRef} [ref] undefined when the CI does not say (the checkout may)
 * @property {number} [buildNumber] the CI's run or pipeline number
 * @property {string} [buildProject] what numbers the builds: build numbers compare only within it
 * @property {string} [sourceUrl] the source repository's web address
 * @property {string[]} notes for people: what was not known and why
 */

/**
 * @param {Readonly<Record<string, string | undefined>>} env
 * @param {string} name
 * @returns {string | undefined} the value, undefined when unset or empty
 */
function variable(env, name) {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * Which CI set this environment. Each sets a variable meant for exactly this question.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {CiName}
 */
function detectCi(env) {
  if (isCodeBuild(env)) return 'codebuild';
  if (env['GITHUB_ACTIONS'] === 'true') return 'github-actions';
  if (env['GITLAB_CI'] === 'true') return 'gitlab-ci';
  if (variable(env, 'JENKINS_URL') !== undefined) return 'jenkins';
  return 'none';
}

/**
 * @param {string | undefined} value
 * @param {string} name
 * @returns {string | undefined}
 */
function commitFrom(value, name) {
  if (value === undefined) return undefined;
  if (!COMMIT_ID.test(value)) {
    throw new TagInputError(
      `${name} is ${JSON.stringify(value)}: expected the 40-hex commit id the CI checked out. ` +
        'Check the job, or pass --commit <40-hex commit id>.',
      name,
    );
  }
  return value.toLowerCase();
}

/**
 * @param {string | undefined} value
 * @param {string} name
 * @returns {number | undefined}
 */
function numberFrom(value, name) {
  if (value === undefined) return undefined;
  if (!POSITIVE_INTEGER.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new TagInputError(
      `${name} is ${JSON.stringify(value)}: expected the build's number, a positive integer such as "42". ` +
        'Check the job, or pass --build-number <n>.',
      name,
    );
  }
  return Number(value);
}

/**
 * @param {string} name
 * @param {'branch' | 'tag'} kind
 * @param {string} input
 * @returns {GitRef}
 */
function refName(name, kind, input) {
  if (!isGitRefName(name)) {
    throw new TagInputError(
      `${input} names the ${kind} ${JSON.stringify(name)}, which git cannot have (git check-ref-format). ` +
        'Check what started the build, or pass --ref refs/heads/<branch> or refs/tags/<tag>.',
      input,
    );
  }
  return { kind, name };
}

/**
 * A full git ref as `--ref` and GitHub's GITHUB_REF give it: `refs/heads/<branch>`,
 * `refs/tags/<tag>`, `refs/pull/<n>/head` or `refs/pull/<n>/merge`; the empty string is "no ref".
 * @param {string} value
 * @param {string} input the flag or variable, for messages
 * @returns {GitRef}
 */
function parseGitRef(value, input) {
  if (value === '') return { kind: 'none' };
  const pull = /^refs\/pull\/([^/]+)\/(head|merge)$/.exec(value);
  if (pull !== null) {
    const number = numberFrom(pull[1], input) ?? 0;
    return { kind: 'pull-request', number };
  }
  if (value.startsWith('refs/heads/')) return refName(value.slice(11), 'branch', input);
  if (value.startsWith('refs/tags/')) return refName(value.slice(10), 'tag', input);
  throw new TagInputError(
    `${input} is ${JSON.stringify(value)}: expected a full git ref, refs/heads/<branch>, ` +
      'refs/tags/<tag> or refs/pull/<number>/head, or "" for none.',
    input,
  );
}

/**
 * A web address fit for the `org.opencontainers.image.source` label: http(s), no credentials.
 * @param {string | undefined} value
 * @returns {string | undefined} undefined for anything else (an SSH remote, say)
 */
function webAddress(value) {
  if (value === undefined) return undefined;
  let url;
  try {
    url = new URL(value);
  } catch {
    return undefined;
  }
  if ((url.protocol !== 'https:' && url.protocol !== 'http:') || url.username !== '') {
    return undefined;
  }
  return `${url.origin}${url.pathname.replace(/\.git$/, '').replace(/\/$/, '')}`;
}

/**
 * CodeBuild: image-tags.js reads the webhook and source variables (one implementation); the
 * build project is the project's name, the first part of CODEBUILD_BUILD_ID
 * (`<project>:<uuid>`), as the AWS deployer reads it from the build's event.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {CiBuild}
 */
function fromCodeBuild(env) {
  const inputs = inputsFromCodeBuild(env);
  const id = variable(env, 'CODEBUILD_BUILD_ID');
  const project = id === undefined ? undefined : id.slice(0, Math.max(0, id.indexOf(':')));
  if (id !== undefined && (project === undefined || project === '')) {
    throw new TagInputError(
      `CODEBUILD_BUILD_ID is ${JSON.stringify(id)}: expected "<project name>:<build uuid>", as CodeBuild sets it.`,
      'CODEBUILD_BUILD_ID',
    );
  }
  return {
    ci: 'codebuild',
    commit: inputs.commit,
    ref: inputs.ref,
    buildNumber: inputs.buildNumber,
    buildProject: project,
    sourceUrl: variable(env, 'SOURCE_URL'),
    notes: [...(inputs.notes ?? [])],
  };
}

/**
 * GitHub Actions. GITHUB_REF is the ref that triggered the run; for `pull_request` it is
 * `refs/pull/<n>/merge` and GITHUB_SHA the merge commit checked out, which is what gets built.
 * `pull_request_target` runs with the BASE branch's ref: building it as a branch build would
 * push deployable tags for a pull request, so it is refused. Run numbers count per workflow, so
 * the build project names the workflow file: `github:<owner>/<repo>/.github/workflows/<file>`.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {CiBuild}
 */
function fromGitHubActions(env) {
  const event = variable(env, 'GITHUB_EVENT_NAME');
  const gitRef = variable(env, 'GITHUB_REF');
  const ref = gitRef === undefined ? undefined : parseGitRef(gitRef, 'GITHUB_REF');
  if (event !== undefined && event.startsWith('pull_request') && ref?.kind !== 'pull-request') {
    throw new TagInputError(
      `GITHUB_EVENT_NAME is ${JSON.stringify(event)} but GITHUB_REF is ${JSON.stringify(gitRef ?? '')}, not ` +
        'refs/pull/<n>/merge: this run would build a pull request as a branch (pull_request_target runs ' +
        "with the base branch's ref). Build pull requests on the pull_request event.",
      'GITHUB_REF',
    );
  }
  const repository = variable(env, 'GITHUB_REPOSITORY');
  const workflowRef = variable(env, 'GITHUB_WORKFLOW_REF');
  const workflow = variable(env, 'GITHUB_WORKFLOW');
  let buildProject;
  if (workflowRef !== undefined) {
    buildProject = `github:${workflowRef.replace(/@.*$/, '')}`;
  } else if (repository !== undefined && workflow !== undefined) {
    buildProject = `github:${repository}/${workflow}`;
  }
  const server = variable(env, 'GITHUB_SERVER_URL') ?? 'https://github.com';
  return {
    ci: 'github-actions',
    commit: commitFrom(variable(env, 'GITHUB_SHA'), 'GITHUB_SHA'),
    ref,
    buildNumber: numberFrom(variable(env, 'GITHUB_RUN_NUMBER'), 'GITHUB_RUN_NUMBER'),
    buildProject,
    sourceUrl: repository === undefined ? undefined : webAddress(`${server}/${repository}`),
    notes: [],
  };
}

/**
 * GitLab CI. A merge request pipeline (CI_MERGE_REQUEST_IID) is a pull request; a tag pipeline
 * sets CI_COMMIT_TAG; a branch pipeline CI_COMMIT_BRANCH (CI_COMMIT_REF_NAME is the branch or
 * tag name, read only when neither is set). CI_PIPELINE_IID counts per project:
 * `gitlab:<group>/<project>`.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {CiBuild}
 */
function fromGitLabCi(env) {
  const mergeRequest = variable(env, 'CI_MERGE_REQUEST_IID');
  const tag = variable(env, 'CI_COMMIT_TAG');
  const branch = variable(env, 'CI_COMMIT_BRANCH');
  const refName_ = variable(env, 'CI_COMMIT_REF_NAME');
  const source = variable(env, 'CI_PIPELINE_SOURCE');
  /** @type {GitRef | undefined} */
  let ref;
  if (mergeRequest !== undefined) {
    ref = { kind: 'pull-request', number: numberFrom(mergeRequest, 'CI_MERGE_REQUEST_IID') ?? 0 };
  } else if (source === 'merge_request_event') {
    throw new TagInputError(
      'CI_PIPELINE_SOURCE is "merge_request_event" but CI_MERGE_REQUEST_IID is not set: refusing, since a ' +
        'merge request build must never push branch or release tags. Check the pipeline.',
      'CI_MERGE_REQUEST_IID',
    );
  } else if (tag !== undefined) {
    ref = refName(tag, 'tag', 'CI_COMMIT_TAG');
  } else if (branch !== undefined) {
    if (refName_ !== undefined && refName_ !== branch) {
      throw new TagInputError(
        `CI_COMMIT_BRANCH is ${JSON.stringify(branch)} but CI_COMMIT_REF_NAME is ${JSON.stringify(refName_)}: ` +
          'which ref was built is unclear. Check the pipeline, or pass --ref.',
        'CI_COMMIT_BRANCH',
      );
    }
    ref = refName(branch, 'branch', 'CI_COMMIT_BRANCH');
  } else if (refName_ !== undefined) {
    ref = refName(refName_, 'branch', 'CI_COMMIT_REF_NAME');
  }
  const projectPath = variable(env, 'CI_PROJECT_PATH');
  return {
    ci: 'gitlab-ci',
    commit: commitFrom(variable(env, 'CI_COMMIT_SHA'), 'CI_COMMIT_SHA'),
    ref,
    buildNumber: numberFrom(variable(env, 'CI_PIPELINE_IID'), 'CI_PIPELINE_IID'),
    buildProject: projectPath === undefined ? undefined : `gitlab:${projectPath}`,
    sourceUrl: webAddress(variable(env, 'CI_PROJECT_URL')),
    notes: [],
  };
}

/**
 * Jenkins. A multibranch job sets CHANGE_ID for a pull request, TAG_NAME for a tag and
 * BRANCH_NAME otherwise; the git plugin sets GIT_COMMIT and GIT_BRANCH (`origin/main`).
 * BUILD_NUMBER counts per job (a multibranch job is one job per branch): `jenkins:<JOB_NAME>`.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {CiBuild}
 */
function fromJenkins(env) {
  const change = variable(env, 'CHANGE_ID');
  const tag = variable(env, 'TAG_NAME');
  const branchName = variable(env, 'BRANCH_NAME');
  const gitBranch = variable(env, 'GIT_BRANCH');
  /** @type {GitRef | undefined} */
  let ref;
  if (change !== undefined) {
    ref = { kind: 'pull-request', number: numberFrom(change, 'CHANGE_ID') ?? 0 };
  } else if (tag !== undefined) {
    ref = refName(tag, 'tag', 'TAG_NAME');
  } else if (branchName !== undefined) {
    ref = refName(branchName, 'branch', 'BRANCH_NAME');
  } else if (gitBranch !== undefined) {
    if (gitBranch.startsWith('refs/tags/')) ref = refName(gitBranch.slice(10), 'tag', 'GIT_BRANCH');
    else {
      const name = gitBranch
        .replace(/^refs\/heads\//, '')
        .replace(/^(refs\/remotes\/)?origin\//, '');
      ref = refName(name, 'branch', 'GIT_BRANCH');
    }
  }
  const job = variable(env, 'JOB_NAME');
  return {
    ci: 'jenkins',
    commit: commitFrom(variable(env, 'GIT_COMMIT'), 'GIT_COMMIT'),
    ref,
    buildNumber: numberFrom(variable(env, 'BUILD_NUMBER'), 'BUILD_NUMBER'),
    buildProject: job === undefined ? undefined : `jenkins:${job}`,
    sourceUrl: webAddress(variable(env, 'GIT_URL')),
    notes: [],
  };
}

/**
 * What the CI of this environment says about the build. Pure.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {CiBuild}
 */
function ciBuild(env) {
  switch (detectCi(env)) {
    case 'codebuild':
      return fromCodeBuild(env);
    case 'github-actions':
      return fromGitHubActions(env);
    case 'gitlab-ci':
      return fromGitLabCi(env);
    case 'jenkins':
      return fromJenkins(env);
    case 'none':
      return { ci: 'none', notes: [] };
  }
}

module.exports = { ciBuild, detectCi, parseGitRef, webAddress };
