/**
 * parse: what a "CodeBuild Build State Change" event says, checked against the real shape
 * (../shared/reference/aws-facts.md §1–§2) and against what our buildspec exports. Everything that
 * is not a successful build of one of our services, with usable variables, is an
 * {@link InvalidEventError} naming the field, the value and what was expected: such an event is
 * refused once and never retried (retrying cannot make it valid).
 *
 * Pure: no I/O. When the event carries no exported variables the result is a `lookup`, and the
 * handler reads them with BatchGetBuilds ({@link variablesFromBuild}) and calls
 * {@link buildFromVariables}.
 */
import type { Build } from '@aws-sdk/client-codebuild';
import { classifyTag, DOCKER_TAG, globToRegExp, isGitRefName, sanitizeTag } from './image-tags';
import { EXPORTED_VARIABLES, type ExportedVariable } from '../lib/build-contract';
import {
  CONTROL_CHARACTERS,
  quoteValue,
  type DeployerSettings,
  type ServiceSettings,
} from '../lib/deployer-contract';
import { InvalidEventError, type BuildIdentity, type BuildRecord, type ParsedEvent } from './types';

export const EVENT_SOURCE = 'aws.codebuild';
export const EVENT_DETAIL_TYPE = 'CodeBuild Build State Change';

/** Longer strings are refused: no field we read is near this, and logs must stay readable. */
export const MAX_STRING_LENGTH = 2048;
/** More exported variables than this is not our buildspec (it exports eight). */
export const MAX_VARIABLES = 200;
/** More tags than this in IMAGE_TAGS is not image-tags.js (it makes at most a handful). */
const MAX_IMAGE_TAGS = 50;

/** `arn:<partition>:codebuild:<region>:<account>:build/<project>:<build uuid>` */
const BUILD_ARN =
  /^arn:(aws(?:-[a-z]+)*):codebuild:([a-z]{2}(?:-[a-z]+)+-\d{1,2}):(\d{12}):build\/([A-Za-z0-9][A-Za-z0-9_-]{0,254}):([A-Za-z0-9-]{1,128})$/;
/** The envelope's `time`: ISO 8601 in UTC or with an offset (unlike the detail's times). */
const ISO_TIME =
  /^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,9})?(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$/;
const VARIABLE_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,254}$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;
const COMMIT = /^[0-9a-f]{40}$/;
const COMMIT_TAG_LENGTH = 12;
const SHORT_SHA_LENGTH = 7;
const PULL_REQUEST_TAG = /^pr-([1-9][0-9]*)-([0-9a-f]{7})$/;
const PULL_REQUEST_REF = /^refs\/pull\/([1-9][0-9]*)\/head$/;
/** `refs/heads/<branch>` or `refs/tags/<tag>`; the name is checked by {@link isGitRefName}. */
const NAMED_REF = /^refs\/(heads|tags)\/(.+)$/;

/** The variables of our buildspec, in the order they are checked. */
type Variables = Readonly<Record<string, string>>;

/**
 * What an event means: a successful build of one of our services, with its exported variables
 * (`build`), or without them (`lookup`: the handler asks CodeBuild).
 */
export function parseEvent(event: unknown, settings: DeployerSettings): ParsedEvent {
  const envelope = object(event, 'event', 'an EventBridge event (a JSON object)');
  equals(envelope, 'source', EVENT_SOURCE, 'source');
  equals(envelope, 'detail-type', EVENT_DETAIL_TYPE, 'detail-type');
  const detail = object(envelope.detail, 'detail', `the "${EVENT_DETAIL_TYPE}" detail object`);
  equals(
    detail,
    'build-status',
    'SUCCEEDED',
    'detail.build-status',
    'only successful builds deploy; the rule should not have sent this event',
  );

  const project = string(detail['project-name'], 'detail.project-name', 'a CodeBuild project name');
  const service = settings.services.find((s) => s.project === project);
  if (service === undefined) {
    invalid(
      'detail.project-name',
      project,
      `one of the deployer's projects (${listed(settings.services.map((s) => s.project))}): the rule should ` +
        'only send builds of these. Check the rule pattern and SHIP_PROJECT_PREFIX/SHIP_SERVICES',
    );
  }

  const buildArn = string(
    detail['build-id'],
    'detail.build-id',
    'a build ARN, arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>',
  );
  const arn = BUILD_ARN.exec(buildArn);
  if (arn === null) {
    invalid(
      'detail.build-id',
      buildArn,
      'a build ARN, arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>',
    );
  }
  const [, , arnRegion = '', arnAccount = '', arnProject = '', uuid = ''] = arn;
  if (arnProject !== project) {
    invalid(
      'detail.build-id',
      buildArn,
      `a build of project "${project}" (detail.project-name), not of "${arnProject}"`,
    );
  }
  const region = string(envelope.region, 'region', 'the AWS region of the build');
  if (region !== arnRegion) {
    invalid('region', region, `the build ARN's region, "${arnRegion}"`);
  }
  const account = string(envelope.account, 'account', 'the 12-digit AWS account of the build');
  if (account !== arnAccount) {
    invalid('account', account, `the build ARN's account, "${arnAccount}"`);
  }
  if (envelope.resources !== undefined) {
    const resources = envelope.resources;
    if (!Array.isArray(resources) || (resources.length > 0 && resources[0] !== buildArn)) {
      invalid(
        'resources',
        resources,
        `an array whose first element is the build ARN, "${buildArn}"`,
      );
    }
  }
  const finishedAt = time(envelope.time);

  const info = object(
    detail['additional-information'],
    'detail.additional-information',
    "CodeBuild's additional-information object (it carries the build number)",
  );
  const buildNumber = positiveInteger(
    info['build-number'],
    'detail.additional-information.build-number',
  );
  const identity: BuildIdentity = {
    buildArn,
    buildId: `${project}:${uuid}`,
    project,
    service: service.service,
    buildNumber,
    region,
    account,
    finishedAt,
    logsLink: logsLink(info.logs),
  };

  const exported = info['exported-environment-variables'];
  // Absent (an older buildspec) or empty: CodeBuild's own record may still have them.
  if (exported === undefined || (Array.isArray(exported) && exported.length === 0)) {
    return { kind: 'lookup', identity };
  }
  const field = 'detail.additional-information.exported-environment-variables';
  if (!Array.isArray(exported)) invalid(field, exported, 'an array of {"name", "value"}');
  const pairs = (exported as unknown[]).map((entry, index) => {
    const at = `${field}[${index}]`;
    const pair = object(entry, at, 'an object {"name", "value"}');
    return {
      name: string(pair.name, `${at}.name`, 'a variable name'),
      value: typeOf(pair.value, `${at}.value`),
    };
  });
  return {
    kind: 'build',
    build: buildFromVariables(identity, variableMap(pairs, field), settings),
  };
}

/**
 * A build record from the build's exported variables, every one checked: it must be what our
 * buildspec exports for this service into our registry. Throws {@link InvalidEventError} naming
 * the variable.
 */
export function buildFromVariables(
  identity: BuildIdentity,
  variables: Variables,
  settings: DeployerSettings,
): BuildRecord {
  const service = serviceOf(identity, settings);
  const read = (name: ExportedVariable): string => {
    const value = Object.prototype.hasOwnProperty.call(variables, name)
      ? variables[name]
      : undefined;
    if (value === undefined) {
      throw new InvalidEventError(
        name,
        `${name} is missing from build ${identity.buildId}'s exported variables: the buildspec must export ` +
          `${EXPORTED_VARIABLES.join(', ')} (env: exported-variables in buildspecs/build-image.yml). ` +
          'Rebuild with the current buildspec.',
      );
    }
    if (typeof value !== 'string') invalid(name, value, 'a string');
    checkString(value, name);
    return value;
  };

  const serviceName = read('SERVICE');
  if (serviceName !== service.service) {
    invalid(
      'SERVICE',
      serviceName,
      `"${service.service}", the service project ${identity.project} builds`,
    );
  }

  const repositoryUri = read('IMAGE_REPOSITORY');
  const expectedUri = `${settings.registry}/${service.repository}`;
  if (repositoryUri !== expectedUri) {
    invalid(
      'IMAGE_REPOSITORY',
      repositoryUri,
      `"${expectedUri}": the deployer only deploys images of the service's own repository in its registry`,
    );
  }

  const commit = read('GIT_COMMIT');
  if (!COMMIT.test(commit))
    invalid('GIT_COMMIT', commit, 'a full commit id, 40 lowercase hex digits');

  const pattern = settings.releaseTagPattern;
  const imageTag = read('IMAGE_TAG');
  const kind = classifyTag(imageTag, pattern);
  const pullRequest = PULL_REQUEST_TAG.exec(imageTag);
  if (kind === 'commit') {
    if (imageTag !== commit.slice(0, COMMIT_TAG_LENGTH)) {
      invalid(
        'IMAGE_TAG',
        imageTag,
        `the commit tag of GIT_COMMIT ${commit}, "${commit.slice(0, COMMIT_TAG_LENGTH)}" (its first 12 hex digits)`,
      );
    }
  } else if (kind === 'pull-request' && pullRequest !== null) {
    if (pullRequest[2] !== commit.slice(0, SHORT_SHA_LENGTH)) {
      invalid(
        'IMAGE_TAG',
        imageTag,
        `a pull-request tag of GIT_COMMIT ${commit}, "pr-${pullRequest[1]}-${commit.slice(0, SHORT_SHA_LENGTH)}"`,
      );
    }
  } else {
    invalid(
      'IMAGE_TAG',
      imageTag,
      'the immutable tag image-tags.js makes: a commit tag (12 lowercase hex) or a pull-request tag (pr-<n>-<sha7>)',
    );
  }

  const tagList = read('IMAGE_TAGS');
  const imageTags = tagList.split(',');
  if (imageTags[0] !== imageTag) {
    invalid(
      'IMAGE_TAGS',
      tagList,
      `a comma-separated list of tags whose first is IMAGE_TAG, "${imageTag}"`,
    );
  }
  if (imageTags.length > MAX_IMAGE_TAGS) {
    invalid('IMAGE_TAGS', tagList, `at most ${MAX_IMAGE_TAGS} tags`);
  }
  for (const tag of imageTags) {
    if (!DOCKER_TAG.test(tag)) {
      invalid(
        'IMAGE_TAGS',
        tag,
        'a Docker tag ([A-Za-z0-9_][A-Za-z0-9_.-], at most 128 characters)',
        tagList,
      );
    }
    if (tag.toLowerCase() === 'latest') {
      invalid(
        'IMAGE_TAGS',
        tag,
        'a tag other than "latest": nobody can tell what "latest" is',
        tagList,
      );
    }
  }
  if (new Set(imageTags).size !== imageTags.length) {
    invalid('IMAGE_TAGS', tagList, 'a list of distinct tags');
  }

  const digest = read('IMAGE_DIGEST');
  if (!DIGEST.test(digest)) {
    invalid('IMAGE_DIGEST', digest, 'a manifest digest, "sha256:" and 64 lowercase hex digits');
  }

  const gitRef = read('GIT_REF');
  checkGitRef(gitRef, imageTag, imageTags, pullRequest?.[1], pattern);

  const built = read('IMAGE_BUILT');
  if (built !== 'true' && built !== 'false') invalid('IMAGE_BUILT', built, '"true" or "false"');

  const registryId = /^(\d{12})\./.exec(settings.registry)?.[1];
  if (registryId === undefined) {
    // parseDeployerSettings checked the host; reaching this is a settings object made elsewhere.
    throw new Error(`the deployer's registry ${quoteValue(settings.registry)} is not an ECR host`);
  }
  return {
    ...identity,
    repositoryUri,
    repository: service.repository,
    registryId,
    imageTag,
    imageTags,
    digest,
    commit,
    gitRef,
    built: built === 'true',
  };
}

/**
 * The exported variables of a build as BatchGetBuilds returns it, by name; undefined when the
 * build exported none (a buildspec without `exported-variables`). A variable CodeBuild lists
 * without a value was exported empty.
 */
export function variablesFromBuild(build: Build): Record<string, string> | undefined {
  const exported = build.exportedEnvironmentVariables;
  if (exported === undefined || exported.length === 0) return undefined;
  const field = 'exportedEnvironmentVariables';
  return variableMap(
    exported.map((entry, index) => ({
      name: string(entry.name, `${field}[${index}].name`, 'a variable name'),
      value: typeOf(entry.value ?? '', `${field}[${index}].value`),
    })),
    field,
  );
}

// ---- checks ----

function serviceOf(identity: BuildIdentity, settings: DeployerSettings): ServiceSettings {
  const service = settings.services.find((s) => s.project === identity.project);
  if (service === undefined || service.service !== identity.service) {
    invalid(
      'detail.project-name',
      identity.project,
      `one of the deployer's projects (${listed(settings.services.map((s) => s.project))})`,
    );
  }
  return service;
}

function variableMap(pairs: readonly { name: string; value: string }[], field: string): Variables {
  if (pairs.length > MAX_VARIABLES) {
    invalid(field, `${pairs.length} variables`, `at most ${MAX_VARIABLES} exported variables`);
  }
  const variables: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const { name, value } of pairs) {
    if (!VARIABLE_NAME.test(name)) invalid(field, name, 'a variable name ([A-Za-z_][A-Za-z0-9_]*)');
    if (name in variables) invalid(field, name, 'a variable exported once');
    // Checked here for every variable, ours or not, and named by the variable.
    checkString(value, name);
    variables[name] = value;
  }
  return variables;
}

/**
 * GIT_REF is empty (no ref known), a branch, a release or other tag, or a pull request's head,
 * and agrees with the tags: a pull request gets its pr- tag alone, anything else a commit tag, and
 * a tag matching the release pattern is among the tags (image-tags.js pushes it sanitised).
 */
function checkGitRef(
  gitRef: string,
  imageTag: string,
  imageTags: readonly string[],
  pullRequest: string | undefined,
  releaseTagPattern: string,
): void {
  const expected =
    'empty, or a git ref under refs/: refs/heads/<branch>, refs/tags/<tag> or refs/pull/<n>/head';
  if (gitRef === '') {
    if (pullRequest !== undefined) {
      invalid(
        'GIT_REF',
        gitRef,
        `refs/pull/${pullRequest}/head, the pull request of IMAGE_TAG "${imageTag}"`,
      );
    }
    return;
  }
  const pull = PULL_REQUEST_REF.exec(gitRef);
  if (pull !== null) {
    if (pull[1] !== pullRequest) {
      invalid(
        'GIT_REF',
        gitRef,
        `a ref that agrees with IMAGE_TAG "${imageTag}": a pull request's build has the tag pr-${pull[1]}-<sha7>`,
      );
    }
    if (imageTags.length !== 1) {
      invalid(
        'IMAGE_TAGS',
        imageTags.join(','),
        `"${imageTag}" alone: a pull-request build pushes only its pr- tag`,
      );
    }
    return;
  }
  const named = NAMED_REF.exec(gitRef);
  if (named === null || !isGitRefName(named[2] ?? '')) invalid('GIT_REF', gitRef, expected);
  if (pullRequest !== undefined) {
    invalid(
      'GIT_REF',
      gitRef,
      `refs/pull/${pullRequest}/head, the pull request of IMAGE_TAG "${imageTag}"`,
    );
  }
  if (named[1] === 'tags') {
    const release = sanitizeTag(named[2] ?? '');
    if (globToRegExp(releaseTagPattern).test(release) && !imageTags.includes(release)) {
      invalid(
        'IMAGE_TAGS',
        imageTags.join(','),
        `a list that includes "${release}": GIT_REF ${gitRef} is a release (pattern "${releaseTagPattern}"), ` +
          'and image-tags.js pushes its tag',
      );
    }
  }
}

/** A value's type is string; its content is checked once its name is known. */
function typeOf(value: unknown, field: string): string {
  if (typeof value !== 'string') invalid(field, value, 'a string value');
  return value;
}

function time(value: unknown): Date {
  const text = string(value, 'time', 'an ISO 8601 time such as "2025-01-15T10:02:28Z"');
  const date = new Date(text);
  const [year = 0, month = 0, day = 0] = text.split(/[-T]/, 3).map(Number);
  // Date rolls 30 February over into March; a time that names no real day is malformed.
  const real = new Date(Date.UTC(year, month - 1, day)).getUTCDate() === day;
  if (!ISO_TIME.test(text) || Number.isNaN(date.getTime()) || !real) {
    invalid('time', text, 'an ISO 8601 time such as "2025-01-15T10:02:28Z"');
  }
  return date;
}

function positiveInteger(value: unknown, field: string): number {
  // JSON's 55.0 is the number 55: that is how CodeBuild writes build numbers.
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) {
    invalid(
      field,
      value,
      'a positive whole number (CodeBuild writes it as a JSON number such as 55.0)',
    );
  }
  return value;
}

function logsLink(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const logs = object(value, 'detail.additional-information.logs', 'an object');
  if (logs['deep-link'] === undefined) return undefined;
  const link = string(logs['deep-link'], 'detail.additional-information.logs.deep-link', 'a URL');
  if (!link.startsWith('https://')) {
    invalid(
      'detail.additional-information.logs.deep-link',
      link,
      'an https:// link to the build log',
    );
  }
  return link;
}

function object(value: unknown, field: string, expected: string): Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    invalid(field, value, expected);
  }
  return value as Record<string, unknown>;
}

function equals(
  container: Record<string, unknown>,
  key: string,
  expected: string,
  field: string,
  why = 'the deployer only handles these events; the rule should not have sent it',
): void {
  const value = container[key];
  if (value !== expected) invalid(field, value, `"${expected}": ${why}`);
}

function string(value: unknown, field: string, expected: string): string {
  if (typeof value !== 'string' || value === '')
    invalid(field, value, `${expected} (a non-empty string)`);
  checkString(value, field);
  return value;
}

/** Every string we keep: bounded, and one line in a log. */
function checkString(value: string, field: string): void {
  if (value.length > MAX_STRING_LENGTH) {
    invalid(field, value, `at most ${MAX_STRING_LENGTH} characters`);
  }
  if (CONTROL_CHARACTERS.test(value)) {
    invalid(field, value, 'free of control characters and line breaks');
  }
}

function listed(names: readonly string[]): string {
  const shown = names.slice(0, 5).join(', ');
  return names.length > 5 ? `${shown} and ${names.length - 5} more` : shown;
}

function invalid(field: string, value: unknown, expected: string, within?: string): never {
  const where = within === undefined ? '' : ` (in ${quoteValue(within)})`;
  throw new InvalidEventError(
    field,
    `${field} is ${quoteValue(value)}${where}: expected ${expected}.`,
  );
}
