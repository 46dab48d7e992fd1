#!/usr/bin/env node
// @ts-check
'use strict';

/**
 * The image tags of one build, computed in ONE place for every image we push.
 *
 * Runs inside CodeBuild (`node "$SHIP_TOOLS/image-tags.js" --format env`, from the CodeBuild
 * environment variables) and against a local git checkout (the `ship tags` CLI imports these
 * functions). CodeBuild images only promise Node 18+ and git, so: node: builtins only.
 *
 * Rules (the README's tag table is the user-facing form):
 * - the first tag is immutable and names exactly one thing: the commit (`6e0de7938dda`, the
 *   first 12 hex of the commit id), or for a pull request `pr-12-6e0de79`;
 * - a branch build adds a sortable tag `<branch>-<sha7>-<build number>` for Flux/Argo policies;
 * - a git tag matching RELEASE_TAG_PATTERN adds that tag (a release);
 * - a pull-request build pushes its pr- tag and nothing else: commit, branch and release tags
 *   are what deploys select, and a PR's code is not reviewed yet;
 * - never `latest`, and every tag fits Docker's grammar.
 */

const { spawnSync } = require('node:child_process');

/** Docker's tag grammar (distribution/reference): what every registry accepts. */
const DOCKER_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const MAX_TAG_LENGTH = 128;
const COMMIT_ID = /^[0-9a-fA-F]{40}$/;
const SHORT_COMMIT_ID = /^[0-9a-fA-F]{7,39}$/;
// 12 hex: what `git log --abbrev=12` prints, and long enough that a prefix collision in one
// repository is practically impossible (the buildspec still verifies the revision label).
const COMMIT_TAG_LENGTH = 12;
const SHORT_SHA_LENGTH = 7;
const COMMIT_TAG = /^[0-9a-f]{12}$/;
const PULL_REQUEST_TAG = /^pr-[1-9][0-9]*-[0-9a-f]{7}$/;
const BRANCH_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]*-[0-9a-f]{7}-[0-9]+$/;
const POSITIVE_INTEGER = /^[1-9][0-9]*$/;
/** The characters ECR accepts in a tag wildcard (the config validates the same set). */
const RELEASE_PATTERN_CHARS = /^[0-9A-Za-z._*-]+$/;
const DEFAULT_RELEASE_TAG_PATTERN = 'v*';
const BRANCH_TAG_PREFIX = 'branch-';

/**
 * The labels every image we build carries: OCI's annotations plus our own, so that an image in any
 * registry says which commit, ref and build made it, and builds can be ordered without asking
 * CodeBuild. Build numbers compare only between images of the same build project.
 */
const IMAGE_LABELS = Object.freeze({
  /** The 40-hex commit. */
  revision: 'org.opencontainers.image.revision',
  /** The source repository's web address. */
  source: 'org.opencontainers.image.source',
  /** The immutable tag (12-hex commit tag, or `pr-<n>-<sha7>`). */
  version: 'org.opencontainers.image.version',
  /** RFC 3339 time of the build. */
  created: 'org.opencontainers.image.created',
  /** The build number (decimal), from CodeBuild or the CI's run number. */
  buildNumber: 'io.dockercoins.ship.build-number',
  /** Who numbered the build: the CodeBuild project, or the CI and its pipeline. */
  buildProject: 'io.dockercoins.ship.build-project',
  /** The git ref built: `refs/heads/…`, `refs/tags/…`, `refs/pull/<n>/head`; empty for none. */
  gitRef: 'io.dockercoins.ship.git-ref',
  /** Our service the image is of, e.g. `hasher`. */
  service: 'io.dockercoins.ship.service',
});

/** Input that cannot give meaningful tags: the message names the input, the value and the fix. */
class TagInputError extends Error {
  /**
   * @param {string} message
   * @param {string} input the variable, flag or field at fault, e.g. `CODEBUILD_BUILD_NUMBER`
   */
  constructor(message, input) {
    super(message);
    this.name = 'TagInputError';
    /** @readonly */
    this.input = input;
  }
}

/**
 * What the build is for. `none` when no ref is known (a build started from a commit id, a
 * retried build that lost its webhook variables, an ambiguous bare name, a detached HEAD).
 * @typedef {{ kind: 'branch', name: string }
 *   | { kind: 'tag', name: string }
 *   | { kind: 'pull-request', number: number }
 *   | { kind: 'none' }} GitRef
 */

/**
 * Everything `computeTags` needs; produced by `inputsFromCodeBuild` or `inputsFromGit`.
 * @typedef {object} TagInputs
 * @property {string} commit the full 40-hex commit id
 * @property {GitRef} ref
 * @property {readonly string[]} [tagsAtCommit] git tag names that also point at the commit
 *   (local checkouts; a CodeBuild tag push carries its tag in `ref`)
 * @property {number} [buildNumber] CodeBuild's build number; without it no sortable tag
 * @property {string} releaseTagPattern glob (only `*` is special) of release tags, e.g. `v*`
 * @property {readonly string[]} [notes] why an input gave no tag, carried to the result
 */

/**
 * What a checkout says, before the build number and release pattern are added.
 * @typedef {Pick<TagInputs, 'commit' | 'ref' | 'tagsAtCommit' | 'notes'>} GitCheckout
 */

/** @typedef {'commit' | 'release' | 'branch' | 'pull-request'} TagKind */
/** @typedef {TagKind | 'other'} TagClass */

/**
 * @typedef {object} ImageTags
 * @property {string} commit the 40-hex commit id (GIT_COMMIT)
 * @property {string} ref what the build is for (GIT_REF, unsanitised): `refs/heads/…`,
 *   `refs/tags/…`, `refs/pull/<n>/head`, or '' when unknown. A local checkout gives its branch;
 *   a detached HEAD at a release tag gives that tag.
 * @property {TagKind} kind `pull-request`; `release` when a release tag is pushed; `branch` for a
 *   branch build; `commit` when no ref gave a tag (commit tag only)
 * @property {string[]} tags every tag to push, the immutable one first, no duplicates
 * @property {string} immutableTag the first tag (IMAGE_TAG): commit tag, or the pr- tag
 * @property {string} [commitTag] absent for pull requests, which must never push it
 * @property {string} [sortableTag] `<branch>-<sha7>-<build number>`
 * @property {string[]} releaseTags release tags (a local checkout can have several)
 * @property {number} [pullRequest]
 * @property {string[]} notes for people: why a tag was not produced, and how to get it
 */

/**
 * @typedef {object} GitResult
 * @property {number | null} status
 * @property {string} stdout
 * @property {string} stderr
 * @property {Error} [error] set when git could not be started
 */

/** @typedef {(args: readonly string[]) => GitResult} RunGit */

// ---- pure helpers ----

/**
 * Makes any string fit Docker's tag alphabet: `+` (semver build metadata) becomes `_`, `/` and
 * every other character outside `[A-Za-z0-9_.-]` (unicode included) becomes `-`; runs of `-`
 * collapse; leading `.`/`-` go (a tag must start with `[A-Za-z0-9_]`). Case is kept: registries
 * are case-sensitive and `Feature-X` is what people will look for. Length is the caller's concern.
 * @param {string} value
 * @returns {string} possibly empty
 */
function sanitizeTag(value) {
  let out = '';
  // for…of walks code points, so one emoji becomes one '-', not two halves of a surrogate pair.
  for (const char of value) {
    out += char === '+' ? '_' : /^[A-Za-z0-9_.-]$/.test(char) ? char : '-';
  }
  return out.replace(/-{2,}/g, '-').replace(/^[.-]+/, '');
}

/**
 * An anchored regular expression for a glob in which only `*` is special (any run of chars,
 * including none): the meaning ECR gives its tag wildcards.
 * @param {string} glob
 * @returns {RegExp}
 */
function globToRegExp(glob) {
  const body = glob
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`);
}

/**
 * What a tag is, as a deployer must read it. Precedence matters and is the reason tags are
 * checked against it when they are made: commit tags (12 lowercase hex) and pr- tags are ours
 * by shape and win over the release pattern; a release tag wins over the branch shape (that
 * is why branch tags that match the pattern get the `branch-` prefix). `latest` (any case) and
 * anything outside Docker's grammar are `other`.
 * @param {string} tag
 * @param {string} releaseTagPattern
 * @returns {TagClass}
 */
function classifyTag(tag, releaseTagPattern) {
  if (!DOCKER_TAG.test(tag) || tag.toLowerCase() === 'latest') return 'other';
  if (COMMIT_TAG.test(tag)) return 'commit';
  if (PULL_REQUEST_TAG.test(tag)) return 'pull-request';
  if (globToRegExp(releaseTagPattern).test(tag)) return 'release';
  if (BRANCH_TAG.test(tag)) return 'branch';
  return 'other';
}

/**
 * @param {string} tag
 * @param {string} releaseTagPattern
 * @returns {boolean}
 */
function isReleaseTag(tag, releaseTagPattern) {
  return classifyTag(tag, releaseTagPattern) === 'release';
}

/**
 * @param {string} pattern
 * @returns {string}
 */
function checkReleaseTagPattern(pattern) {
  if (!RELEASE_PATTERN_CHARS.test(pattern) || /^\*+$/.test(pattern)) {
    throw new TagInputError(
      `RELEASE_TAG_PATTERN is ${JSON.stringify(pattern)}: expected a glob of [0-9A-Za-z._-] and "*" ` +
        'that does not match every tag, e.g. "v*". It comes from the config key releaseTagPattern.',
      'RELEASE_TAG_PATTERN',
    );
  }
  return pattern;
}

/**
 * @param {string} value
 * @param {string} input where the value came from, for the message
 * @returns {string} lowercase 40 hex
 */
function checkCommitId(value, input) {
  if (COMMIT_ID.test(value)) return value.toLowerCase();
  if (SHORT_COMMIT_ID.test(value)) {
    throw new TagInputError(
      `${input} is ${JSON.stringify(value)}: a full 40-hex commit id is needed, not a short one ` +
        '(a short id can name several commits, and image tags must name exactly one). ' +
        'Start the build from the full commit id, a branch or a tag.',
      input,
    );
  }
  throw new TagInputError(
    `${input} is ${JSON.stringify(value)}: expected a 40-hex commit id, e.g. ` +
      '"6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f".',
    input,
  );
}

/**
 * @param {string} value
 * @param {string} input
 * @returns {number}
 */
function parseBuildNumber(value, input) {
  const number = Number(value);
  if (!POSITIVE_INTEGER.test(value) || !Number.isSafeInteger(number)) {
    throw new TagInputError(
      `${input} is ${JSON.stringify(value)}: expected the build's number, a positive integer such as "42".`,
      input,
    );
  }
  return number;
}

/**
 * Whether `name` can be a branch or tag name: the rules of `git check-ref-format` for the part
 * after `refs/heads/` or `refs/tags/`. The one definition the builds and the deployer share.
 * @param {string} name
 * @returns {boolean}
 */
function isGitRefName(name) {
  return (
    name !== '' &&
    // ASCII control characters, space, and ~ ^ : ? * [ \ are never part of a ref name.
    // eslint-disable-next-line no-control-regex
    !/[\u0000-\u0020\u007f~^:?*[\\]/.test(name) &&
    !name.includes('..') &&
    !name.includes('@{') &&
    !name.startsWith('/') &&
    !name.endsWith('/') &&
    !name.endsWith('.') &&
    // No empty component (`a//b`), none starting with "." or ending with ".lock".
    name.split('/').every((part) => part !== '' && !part.startsWith('.') && !part.endsWith('.lock'))
  );
}

/**
 * @param {string} name
 * @param {'branch' | 'tag'} what
 * @param {string} input
 * @returns {string}
 */
function checkRefName(name, what, input) {
  if (!isGitRefName(name)) {
    throw new TagInputError(
      `${input} names the ${what} ${JSON.stringify(name)}, which git cannot have ` +
        '(git check-ref-format: empty, spaces, control characters, ~^:?*[\\, "..", "@{", a "." or "/" ' +
        'in the wrong place, or ".lock"). Check what started the build.',
      input,
    );
  }
  return name;
}

/**
 * @param {GitRef} ref
 * @returns {string}
 */
function refString(ref) {
  switch (ref.kind) {
    case 'branch':
      return `refs/heads/${ref.name}`;
    case 'tag':
      return `refs/tags/${ref.name}`;
    case 'pull-request':
      // Never the PR's source branch: a fork's `main` must not look like our main.
      return `refs/pull/${ref.number}/head`;
    case 'none':
      return '';
  }
}

// ---- the algorithm ----

/**
 * The tags for one build. Pure: no environment, no I/O. Throws `TagInputError` rather than
 * return a tag that could be mistaken for another kind (see `classifyTag`).
 * @param {TagInputs} inputs
 * @returns {ImageTags}
 */
function computeTags(inputs) {
  const pattern = checkReleaseTagPattern(inputs.releaseTagPattern);
  const commit = checkCommitId(inputs.commit, 'commit');
  const sha7 = commit.slice(0, SHORT_SHA_LENGTH);
  const notes = [...(inputs.notes ?? [])];
  const { ref } = inputs;

  if (ref.kind === 'pull-request') {
    const tag = `pr-${ref.number}-${sha7}`;
    if (globToRegExp(pattern).test(tag)) {
      throw new TagInputError(
        `RELEASE_TAG_PATTERN ${JSON.stringify(pattern)} matches the pull-request tag "${tag}": ECR ` +
          'would keep it forever and deployers could take it for a release. Choose a release ' +
          'pattern that "pr-" tags cannot match, e.g. "v*".',
        'RELEASE_TAG_PATTERN',
      );
    }
    return finish({
      commit,
      ref: refString(ref),
      kind: 'pull-request',
      tags: [tag],
      immutableTag: tag,
      releaseTags: [],
      pullRequest: ref.number,
      notes: [
        ...notes,
        `pull request ${ref.number}: only "${tag}" is pushed; commit, branch and release tags ` +
          'are what deploys select, so a pull-request build never pushes them.',
      ],
    });
  }

  const commitTag = commit.slice(0, COMMIT_TAG_LENGTH);
  if (globToRegExp(pattern).test(commitTag)) {
    notes.push(
      `RELEASE_TAG_PATTERN ${JSON.stringify(pattern)} matches the commit tag "${commitTag}": ` +
        'ECR will keep this image as if it were a release. Prefer a pattern such as "v*".',
    );
  }

  /** @type {{ name: string, tag: string }[]} */
  const releases = [];
  const gitTags = [...(ref.kind === 'tag' ? [ref.name] : []), ...(inputs.tagsAtCommit ?? [])];
  for (const name of gitTags) {
    const tag = releaseTagFor(name, pattern, notes);
    if (tag !== undefined && !releases.some((release) => release.tag === tag)) {
      releases.push({ name, tag });
    }
  }

  let sortableTag;
  if (ref.kind === 'branch') {
    if (inputs.buildNumber === undefined) {
      notes.push(
        `branch ${JSON.stringify(ref.name)}: no build number (CODEBUILD_BUILD_NUMBER or ` +
          '--build-number), so the sortable <branch>-<sha7>-<build> tag is omitted.',
      );
    } else {
      sortableTag = sortableTagFor(ref.name, sha7, inputs.buildNumber, pattern, notes);
    }
  }

  const releaseTags = releases.map((release) => release.tag);
  const firstRelease = releases[0];
  /** @type {TagKind} */
  const kind = firstRelease !== undefined ? 'release' : ref.kind === 'branch' ? 'branch' : 'commit';
  if (kind === 'commit' && ref.kind === 'none' && notes.length === 0) {
    notes.push('no branch, tag or pull request is known for this build: commit tag only.');
  }
  // A local detached HEAD at a release tag is that tag's checkout; otherwise the ref is unknown.
  const gitRef =
    ref.kind === 'none' && firstRelease !== undefined
      ? `refs/tags/${firstRelease.name}`
      : refString(ref);
  return finish({
    commit,
    ref: gitRef,
    kind,
    tags: [commitTag, ...releaseTags, ...(sortableTag === undefined ? [] : [sortableTag])],
    immutableTag: commitTag,
    commitTag,
    sortableTag,
    releaseTags,
    notes,
  });
}

/**
 * The release tag for a git tag, or undefined (with a note) when the tag is not a release.
 * Matching is done on the sanitised tag because that is what ECR's lifecycle rule and the
 * deployer see. A git tag that does not match is NOT pushed, in CodeBuild as locally: the
 * webhook filters only start builds for matching tags, so a non-matching one comes from a manual
 * build; pushed, it would look kept but expire with the commit images, and names like `latest`
 * or a 12-hex word would pose as other kinds of tags. One rule in both modes keeps `ship tags`
 * honest about what CodeBuild pushes.
 * @param {string} name the git tag name
 * @param {string} pattern
 * @param {string[]} notes
 * @returns {string | undefined}
 */
function releaseTagFor(name, pattern, notes) {
  const tag = sanitizeTag(name);
  if (!globToRegExp(pattern).test(tag)) {
    notes.push(
      `git tag ${JSON.stringify(name)} does not match RELEASE_TAG_PATTERN ${JSON.stringify(pattern)}: ` +
        'not pushed as a tag. Name releases to match the pattern (config key releaseTagPattern).',
    );
    return undefined;
  }
  if (tag.toLowerCase() === 'latest') {
    throw new TagInputError(
      `git tag ${JSON.stringify(name)} would become the image tag "${tag}": never "latest" ` +
        '(nobody knows what it points to). Tag the release with its version, e.g. "v1.2.0".',
      'git tag',
    );
  }
  if (tag.length > MAX_TAG_LENGTH) {
    throw new TagInputError(
      `git tag ${JSON.stringify(name)} is ${tag.length} characters as an image tag; the limit is ` +
        `${MAX_TAG_LENGTH} and release tags are never truncated (a cut name is another name). ` +
        'Use a shorter release tag.',
      'git tag',
    );
  }
  const reading = classifyTag(tag, pattern);
  if (reading !== 'release') {
    throw new TagInputError(
      `git tag ${JSON.stringify(name)} would become the image tag "${tag}", which reads as a ` +
        `${reading} tag, not a release. Use a release tag such as "v1.2.0".`,
      'git tag',
    );
  }
  if (tag !== name) {
    notes.push(`git tag ${JSON.stringify(name)} is pushed as "${tag}" (Docker's tag alphabet).`);
  }
  return tag;
}

/**
 * `<branch>-<sha7>-<build>`, at most 128 characters: the branch part is cut, never the sha or
 * the build number, which are what the tag is for. A branch tag must never read as a release
 * (ECR would keep it forever, a deployer would ship it as one) or as a commit or pr- tag, so
 * such a branch part gets the `branch-` prefix.
 * @param {string} branch
 * @param {string} sha7
 * @param {number} buildNumber
 * @param {string} pattern
 * @param {string[]} notes
 * @returns {string}
 */
function sortableTagFor(branch, sha7, buildNumber, pattern, notes) {
  const suffix = `-${sha7}-${buildNumber}`;
  /** @param {string} part */
  const fit = (part) => {
    const cut = part.slice(0, MAX_TAG_LENGTH - suffix.length).replace(/-+$/, '');
    return `${cut === '' ? 'branch' : cut}${suffix}`;
  };
  const part = sanitizeTag(branch);
  let tag = fit(part);
  const plain = tag;
  if (classifyTag(tag, pattern) !== 'branch') {
    tag = fit(BRANCH_TAG_PREFIX + part);
    notes.push(
      `branch ${JSON.stringify(branch)}: "${plain}" would read as a ${classifyTag(plain, pattern)} ` +
        `tag, so the branch tag is "${tag}".`,
    );
  }
  if (classifyTag(tag, pattern) !== 'branch') {
    throw new TagInputError(
      `RELEASE_TAG_PATTERN ${JSON.stringify(pattern)} matches the branch tag "${tag}", even with ` +
        `the "${BRANCH_TAG_PREFIX}" prefix: a branch build would look like a release. Choose a ` +
        'release pattern that branch tags cannot match, e.g. "v*".',
      'RELEASE_TAG_PATTERN',
    );
  }
  return tag;
}

/**
 * Last line of defence: a broken rule above must fail the build, not push a bad tag.
 * @param {ImageTags} result
 * @returns {ImageTags}
 */
function finish(result) {
  for (const tag of result.tags) {
    if (!DOCKER_TAG.test(tag) || tag.toLowerCase() === 'latest') {
      throw new Error(`image-tags produced the invalid tag ${JSON.stringify(tag)}: a bug`);
    }
  }
  if (new Set(result.tags).size !== result.tags.length || result.tags[0] !== result.immutableTag) {
    throw new Error(`image-tags produced ${JSON.stringify(result.tags)}: a bug`);
  }
  return result;
}

// ---- inputs ----

/**
 * Is this process a CodeBuild build?
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {boolean}
 */
function isCodeBuild(env) {
  return (
    env['CODEBUILD_BUILD_ID'] !== undefined ||
    env['CODEBUILD_RESOLVED_SOURCE_VERSION'] !== undefined
  );
}

/**
 * RELEASE_TAG_PATTERN, `v*` when unset. Set but empty is an error, not the default: the
 * construct always sets it, so an empty value is a bug to surface.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {string}
 */
function releaseTagPatternFromEnv(env) {
  const value = env['RELEASE_TAG_PATTERN'];
  return checkReleaseTagPattern(value === undefined ? DEFAULT_RELEASE_TAG_PATTERN : value);
}

/**
 * A CodeBuild variable, with '' read as unset: CodeBuild sets some webhook variables to ''
 * (e.g. CODEBUILD_WEBHOOK_BASE_REF on pushes).
 * @param {Readonly<Record<string, string | undefined>>} env
 * @param {string} name
 * @returns {string | undefined}
 */
function variable(env, name) {
  const value = env[name];
  return value === undefined || value === '' ? undefined : value;
}

/**
 * A source version as CodeBuild's start-build accepts it, parsed:
 * `refs/heads/x`, `refs/tags/x`, `pr/<n>`, `refs/pull/<n>/head|merge`, each optionally followed
 * by `^{<full commit id>}`; a commit id; or a bare name (branch or tag: ambiguous).
 * @param {string} value
 * @param {string} input the variable it came from, for messages
 * @returns {{ ref?: GitRef, commit?: string, bare?: string }}
 */
function parseSourceVersion(value, input) {
  const pinned = /^(.*)\^\{([^}]*)\}$/.exec(value);
  const name = pinned?.[1] ?? value;
  const commit = pinned?.[2] === undefined ? undefined : checkCommitId(pinned[2], input);
  const pr = /^(?:pr\/|refs\/pull\/)([^/]*)(?:\/(?:head|merge))?$/.exec(name);
  if (pr !== null) {
    return {
      ref: { kind: 'pull-request', number: parsePullRequestNumber(pr[1] ?? '', input) },
      commit,
    };
  }
  if (name.startsWith('refs/heads/')) {
    return { ref: { kind: 'branch', name: checkRefName(name.slice(11), 'branch', input) }, commit };
  }
  if (name.startsWith('refs/tags/')) {
    return { ref: { kind: 'tag', name: checkRefName(name.slice(10), 'tag', input) }, commit };
  }
  if (COMMIT_ID.test(name)) return { commit: name.toLowerCase() };
  return { bare: name, commit };
}

/**
 * @param {string} value
 * @param {string} input
 * @returns {number}
 */
function parsePullRequestNumber(value, input) {
  if (!POSITIVE_INTEGER.test(value) || !Number.isSafeInteger(Number(value))) {
    throw new TagInputError(
      `${input} names the pull request ${JSON.stringify(value)}: expected a positive number, as in "pr/12".`,
      input,
    );
  }
  return Number(value);
}

/**
 * Reads a CodeBuild build's environment. Pure (the environment is a parameter).
 *
 * The ref comes, in order, from CODEBUILD_WEBHOOK_TRIGGER, CODEBUILD_WEBHOOK_HEAD_REF, then
 * CODEBUILD_SOURCE_VERSION when it is unambiguous. Pull-request evidence in ANY variable is
 * checked first: a retried PR build can lose its trigger yet keep the PR's source branch in
 * HEAD_REF, and reading that as a branch push would push deployable tags for unreviewed code.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {TagInputs}
 */
function inputsFromCodeBuild(env) {
  /** @type {string[]} */
  const notes = [];
  const releaseTagPattern = releaseTagPatternFromEnv(env);
  const trigger = variable(env, 'CODEBUILD_WEBHOOK_TRIGGER');
  const headRef = variable(env, 'CODEBUILD_WEBHOOK_HEAD_REF');
  const event = variable(env, 'CODEBUILD_WEBHOOK_EVENT');
  const baseRef = variable(env, 'CODEBUILD_WEBHOOK_BASE_REF');
  const sourceVersion = variable(env, 'CODEBUILD_SOURCE_VERSION');
  const source =
    sourceVersion === undefined
      ? {}
      : parseSourceVersion(sourceVersion, 'CODEBUILD_SOURCE_VERSION');

  /** @type {GitRef | undefined} */
  let triggerRef;
  if (trigger !== undefined) {
    const match = /^(branch|tag|pr)\/(.*)$/.exec(trigger);
    const [, type, name = ''] = match ?? [];
    if (type === 'branch' || type === 'tag') {
      triggerRef = { kind: type, name: checkRefName(name, type, 'CODEBUILD_WEBHOOK_TRIGGER') };
    } else if (type === 'pr') {
      triggerRef = {
        kind: 'pull-request',
        number: parsePullRequestNumber(name, 'CODEBUILD_WEBHOOK_TRIGGER'),
      };
    } else {
      throw new TagInputError(
        `CODEBUILD_WEBHOOK_TRIGGER is ${JSON.stringify(trigger)}: expected "branch/<name>", ` +
          '"tag/<name>" or "pr/<number>", as CodeBuild sets it for webhook builds.',
        'CODEBUILD_WEBHOOK_TRIGGER',
      );
    }
  }

  const prNumbers = [triggerRef, source.ref].flatMap((ref) =>
    ref?.kind === 'pull-request' ? [ref.number] : [],
  );
  const prEvent = event !== undefined && event.startsWith('PULL_REQUEST');
  // BASE_REF is only set for pull requests; it counts only when the trigger is gone.
  const prBase = baseRef !== undefined && trigger === undefined;
  /** @type {GitRef} */
  let ref;
  if (prNumbers.length > 0 || prEvent || prBase) {
    const [number] = prNumbers;
    if (number === undefined || prNumbers.some((other) => other !== number)) {
      throw new TagInputError(
        'This is a pull-request build (' +
          describeVariables(env, [
            'CODEBUILD_WEBHOOK_TRIGGER',
            'CODEBUILD_WEBHOOK_EVENT',
            'CODEBUILD_WEBHOOK_BASE_REF',
            'CODEBUILD_SOURCE_VERSION',
          ]) +
          ') but no single PR number is known: expected CODEBUILD_WEBHOOK_TRIGGER or ' +
          'CODEBUILD_SOURCE_VERSION "pr/<number>". Refusing, since a PR build must never push ' +
          'commit, branch or release tags. Start the build with source version "pr/<number>".',
        'CODEBUILD_WEBHOOK_TRIGGER',
      );
    }
    if (triggerRef !== undefined && triggerRef.kind !== 'pull-request') {
      throw new TagInputError(
        `CODEBUILD_WEBHOOK_TRIGGER is ${JSON.stringify(trigger)} but ` +
          `${describeVariables(env, ['CODEBUILD_WEBHOOK_EVENT', 'CODEBUILD_SOURCE_VERSION'])} says pull ` +
          'request: the build is inconsistent. Start it again from its webhook or with an explicit source version.',
        'CODEBUILD_WEBHOOK_TRIGGER',
      );
    }
    ref = { kind: 'pull-request', number };
  } else if (triggerRef !== undefined) {
    ref = triggerRef;
    const expected = refString(triggerRef);
    if (headRef !== undefined && headRef !== expected) {
      throw new TagInputError(
        `CODEBUILD_WEBHOOK_TRIGGER is ${JSON.stringify(trigger)} but CODEBUILD_WEBHOOK_HEAD_REF is ` +
          `${JSON.stringify(headRef)} (expected ${JSON.stringify(expected)}): the build is inconsistent. ` +
          'Start it again from its webhook or with an explicit source version.',
        'CODEBUILD_WEBHOOK_HEAD_REF',
      );
    }
  } else if (headRef !== undefined) {
    const parsed = parseSourceVersion(headRef, 'CODEBUILD_WEBHOOK_HEAD_REF');
    if (parsed.ref === undefined || parsed.ref.kind === 'pull-request' || parsed.commit) {
      throw new TagInputError(
        `CODEBUILD_WEBHOOK_HEAD_REF is ${JSON.stringify(headRef)}: expected "refs/heads/<branch>" ` +
          'or "refs/tags/<tag>".',
        'CODEBUILD_WEBHOOK_HEAD_REF',
      );
    }
    ref = parsed.ref;
  } else if (source.ref !== undefined) {
    ref = source.ref;
  } else {
    ref = { kind: 'none' };
    const retry =
      "A retried build loses CodeBuild's webhook variables; to add the branch or release tag, " +
      'start a build with source version "refs/heads/<branch>" or "refs/tags/<tag>" ' +
      '(the commit is already built, so nothing is rebuilt).';
    if (source.bare !== undefined) {
      notes.push(
        `CODEBUILD_SOURCE_VERSION is ${JSON.stringify(source.bare)}, which may name a branch or a tag: ` +
          'only the commit tag is pushed. For a branch tag start the build with source version ' +
          `"refs/heads/${source.bare}", for a release "refs/tags/${source.bare}".`,
      );
    } else if (sourceVersion !== undefined) {
      notes.push(
        `no webhook variables and CODEBUILD_SOURCE_VERSION is a commit id: only the commit tag is pushed. ${retry}`,
      );
    } else {
      notes.push(
        `no webhook variables and no CODEBUILD_SOURCE_VERSION: only the commit tag is pushed. ${retry}`,
      );
    }
  }

  const resolved = env['CODEBUILD_RESOLVED_SOURCE_VERSION'];
  let commit;
  if (resolved !== undefined && resolved !== '') {
    commit = checkCommitId(resolved, 'CODEBUILD_RESOLVED_SOURCE_VERSION');
    if (source.commit !== undefined && source.commit !== commit) {
      throw new TagInputError(
        `CODEBUILD_RESOLVED_SOURCE_VERSION is "${commit}" but CODEBUILD_SOURCE_VERSION ` +
          `${JSON.stringify(sourceVersion)} names ${source.commit}: which commit was built is unclear.`,
        'CODEBUILD_RESOLVED_SOURCE_VERSION',
      );
    }
  } else if (source.commit !== undefined) {
    commit = source.commit;
  } else if (sourceVersion !== undefined && SHORT_COMMIT_ID.test(sourceVersion)) {
    commit = checkCommitId(sourceVersion, 'CODEBUILD_SOURCE_VERSION');
  } else {
    throw new TagInputError(
      `CODEBUILD_RESOLVED_SOURCE_VERSION is ${resolved === undefined ? 'not set' : 'empty'}: expected ` +
        'the 40-hex commit id CodeBuild sets after DOWNLOAD_SOURCE for git sources (GitHub, ' +
        'GitLab, Bitbucket, CodeCommit). Run this in a phase after the source download, with a git source.',
      'CODEBUILD_RESOLVED_SOURCE_VERSION',
    );
  }

  const buildNumber = env['CODEBUILD_BUILD_NUMBER'];
  return {
    commit,
    ref,
    releaseTagPattern,
    buildNumber:
      buildNumber === undefined
        ? undefined
        : parseBuildNumber(buildNumber, 'CODEBUILD_BUILD_NUMBER'),
    notes,
  };
}

/**
 * `NAME="value", …` for the variables that are set, for messages.
 * @param {Readonly<Record<string, string | undefined>>} env
 * @param {readonly string[]} names
 * @returns {string}
 */
function describeVariables(env, names) {
  const set = names.filter((name) => variable(env, name) !== undefined);
  return set.length === 0
    ? 'no webhook variables'
    : set.map((name) => `${name}=${JSON.stringify(env[name])}`).join(', ');
}

/** @type {RunGit} */
function runGitCommand(args) {
  const result = spawnSync('git', args, { encoding: 'utf8' });
  return {
    status: result.status,
    stdout: result.stdout,
    stderr: result.stderr,
    error: result.error,
  };
}

/**
 * Reads a local checkout: HEAD's commit, its branch (none when detached) and the tags pointing
 * at it. Whether those tags are releases is `computeTags`' decision, the same as in CodeBuild.
 * @param {string} dir any directory inside the checkout (passed to `git -C`)
 * @param {RunGit} [runGit]
 * @returns {GitCheckout}
 */
function inputsFromGit(dir, runGit = runGitCommand) {
  /**
   * @param {string[]} args
   * @param {number[]} okStatuses
   */
  const git = (args, okStatuses = [0]) => {
    const result = runGit(['-C', dir, ...args]);
    if (result.error !== undefined) {
      throw new TagInputError(
        `could not run git (${result.error.message}): install git and put it on PATH.`,
        'git',
      );
    }
    if (result.status === null || !okStatuses.includes(result.status)) {
      throw new TagInputError(
        `git -C ${JSON.stringify(dir)} ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.status}`}. ` +
          'Run this inside a git checkout with at least one commit, or pass --git-dir <dir>.',
        '--git-dir',
      );
    }
    return result;
  };
  const head = git(['rev-parse', 'HEAD']).stdout.trim();
  if (!COMMIT_ID.test(head)) {
    throw new TagInputError(
      `git rev-parse HEAD in ${JSON.stringify(dir)} gave ${JSON.stringify(head)}: expected a ` +
        '40-hex commit id (SHA-256 repositories are not supported).',
      '--git-dir',
    );
  }
  // Exit 1 with -q means "HEAD is detached", not an error.
  const symbolic = git(['symbolic-ref', '-q', '--short', 'HEAD'], [0, 1]);
  const branch = symbolic.status === 0 ? symbolic.stdout.trim() : undefined;
  const tagsAtCommit = git(['tag', '--points-at', 'HEAD'])
    .stdout.split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
  return {
    commit: head.toLowerCase(),
    ref: branch === undefined ? { kind: 'none' } : { kind: 'branch', name: branch },
    tagsAtCommit,
    notes: branch === undefined ? ['HEAD is detached: no branch tag.'] : [],
  };
}

// ---- output ----

/**
 * A value single-quoted for bash: nothing inside single quotes is expanded; a quote is closed,
 * escaped and reopened.
 * @param {string} value
 * @returns {string}
 */
function shellQuote(value) {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/**
 * Assignments to `eval` in bash. Exported, because CodeBuild's `exported-variables` and child
 * processes (the registry tool) read the environment, not shell variables.
 * @param {ImageTags} result
 * @returns {string}
 */
function formatEnv(result) {
  /** @type {[string, string][]} */
  const pairs = [
    ['GIT_COMMIT', result.commit],
    ['GIT_REF', result.ref],
    ['IMAGE_TAG', result.immutableTag],
    ['IMAGE_TAGS', result.tags.join(',')],
    ['TAG_KIND', result.kind],
  ];
  return pairs.map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join('');
}

const USAGE = `Usage: image-tags.js [--format lines|env|json] [--git-dir <dir>] [--build-number <n>]

Prints the image tags for this build, the immutable tag first.

Inside CodeBuild (CODEBUILD_BUILD_ID or CODEBUILD_RESOLVED_SOURCE_VERSION set) it reads
CODEBUILD_RESOLVED_SOURCE_VERSION, CODEBUILD_WEBHOOK_TRIGGER, CODEBUILD_WEBHOOK_HEAD_REF,
CODEBUILD_SOURCE_VERSION and CODEBUILD_BUILD_NUMBER; otherwise (or with --git-dir) the git
checkout: HEAD, its branch and the tags at HEAD. RELEASE_TAG_PATTERN (default "v*") selects the
git tags that are releases.

  --format lines   one tag per line (default)
  --format env     bash assignments to eval: GIT_COMMIT GIT_REF IMAGE_TAG IMAGE_TAGS TAG_KIND
  --format json    one JSON object
  --git-dir <dir>  read the git checkout that contains <dir>, even inside CodeBuild
  --build-number <n>  the build number for the sortable tag (default CODEBUILD_BUILD_NUMBER;
                   without one the sortable tag is omitted)

Exit status: 0 ok, 1 invalid input (the message says which and how to fix it), 2 usage error.
`;

/** A command line that cannot be understood. */
class UsageError extends Error {}

/**
 * @param {readonly string[]} argv
 * @returns {{ format: 'lines' | 'env' | 'json', gitDir?: string, buildNumber?: string, help: boolean }}
 */
function parseArgs(argv) {
  /** @type {{ format: 'lines' | 'env' | 'json', gitDir?: string, buildNumber?: string, help: boolean }} */
  const options = { format: 'lines', help: false };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i] ?? '';
    const [flag, inline] = arg.startsWith('--') && arg.includes('=') ? arg.split(/=(.*)/s) : [arg];
    const value = () => {
      const next = inline ?? argv[(i += 1)];
      if (next === undefined || next === '') throw new UsageError(`${flag} needs a value`);
      return next;
    };
    switch (flag) {
      case '--help':
      case '-h':
        options.help = true;
        break;
      case '--format': {
        const format = value();
        if (format !== 'lines' && format !== 'env' && format !== 'json') {
          throw new UsageError(`--format ${JSON.stringify(format)}: expected lines, env or json`);
        }
        options.format = format;
        break;
      }
      case '--git-dir':
        options.gitDir = value();
        break;
      case '--build-number':
        options.buildNumber = value();
        break;
      default:
        throw new UsageError(`unknown argument ${JSON.stringify(arg)}`);
    }
  }
  return options;
}

/**
 * @param {readonly string[]} argv
 * @param {Readonly<Record<string, string | undefined>>} env
 * @returns {number} the exit status
 */
function main(argv, env) {
  let options;
  try {
    options = parseArgs(argv);
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    process.stderr.write(`image-tags: ${error.message}\n\n${USAGE}`);
    return 2;
  }
  if (options.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  try {
    const buildNumber =
      options.buildNumber !== undefined
        ? parseBuildNumber(options.buildNumber, '--build-number')
        : undefined;
    /** @type {TagInputs} */
    let inputs;
    if (options.gitDir === undefined && isCodeBuild(env)) {
      const fromEnv = inputsFromCodeBuild(env);
      inputs = buildNumber === undefined ? fromEnv : { ...fromEnv, buildNumber };
    } else {
      const envNumber = env['CODEBUILD_BUILD_NUMBER'];
      inputs = {
        ...inputsFromGit(options.gitDir ?? '.'),
        releaseTagPattern: releaseTagPatternFromEnv(env),
        buildNumber:
          buildNumber ??
          (envNumber === undefined
            ? undefined
            : parseBuildNumber(envNumber, 'CODEBUILD_BUILD_NUMBER')),
      };
    }
    const result = computeTags(inputs);
    for (const note of result.notes) process.stderr.write(`image-tags: ${note}\n`);
    if (options.format === 'env') process.stdout.write(formatEnv(result));
    else if (options.format === 'json')
      process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    else process.stdout.write(result.tags.map((tag) => `${tag}\n`).join(''));
    return 0;
  } catch (error) {
    if (!(error instanceof TagInputError)) throw error;
    process.stderr.write(`image-tags: ${error.message}\n`);
    return 1;
  }
}

module.exports = {
  IMAGE_LABELS,
  TagInputError,
  DEFAULT_RELEASE_TAG_PATTERN,
  DOCKER_TAG,
  classifyTag,
  computeTags,
  formatEnv,
  globToRegExp,
  inputsFromCodeBuild,
  inputsFromGit,
  isCodeBuild,
  isGitRefName,
  isReleaseTag,
  sanitizeTag,
  shellQuote,
};

if (require.main === module) {
  process.exitCode = main(process.argv.slice(2), process.env);
}
