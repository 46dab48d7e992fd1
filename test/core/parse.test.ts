import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import type { Build } from '@aws-sdk/client-codebuild';
import { EXPORTED_VARIABLES } from '../../lib/build-contract';
import { CONTROL_CHARACTERS } from '../../lib/deployer-contract';
import {
  MAX_STRING_LENGTH,
  MAX_VARIABLES,
  buildFromVariables,
  parseEvent,
  variablesFromBuild,
} from '../../core/parse';
import { InvalidEventError, type BuildIdentity, type BuildRecord } from '../../core/types';
import {
  AWS_SAMPLE_EVENT,
  HASHER,
  HASHER_MAIN_EVENT,
  detailOf,
  event,
  infoOf,
  setVariables,
  settings,
  variablesOf,
  type Json,
} from '../fixtures/events/fixtures';

const SETTINGS = settings();
const OTHER_COMMIT = 'aaaabbbbccccddddeeeeffff0000111122223333';

function invalidEventErrorOf(fn: () => unknown): InvalidEventError {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidEventError) return error;
    throw error;
  }
  throw new Error('expected an InvalidEventError');
}

/** The record the fixture's hasher event must give, written out field by field. */
const HASHER_RECORD: BuildRecord = {
  buildArn: HASHER.buildArn,
  buildId: HASHER.buildId,
  project: 'DockerCoins-hasher',
  service: 'hasher',
  buildNumber: 55,
  region: 'us-west-2',
  account: '123456789012',
  finishedAt: new Date(Date.UTC(2025, 0, 15, 10, 2, 28)),
  logsLink:
    'https://console.aws.amazon.com/cloudwatch/home?region=us-west-2#logEvent:group=/aws/codebuild/DockerCoins-hasher;stream=8745a7a9-c340-456a-9166-edf953571bEX',
  repositoryUri: HASHER.repositoryUri,
  repository: 'dockercoins/hasher',
  registryId: '123456789012',
  imageTag: HASHER.commitTag,
  imageTags: [HASHER.commitTag, 'main-6e0de79-55'],
  digest: HASHER.digest,
  commit: HASHER.commit,
  gitRef: 'refs/heads/main',
  built: true,
};

/** The identity part of it: what a lookup carries. */
const HASHER_IDENTITY: BuildIdentity = {
  buildArn: HASHER_RECORD.buildArn,
  buildId: HASHER_RECORD.buildId,
  project: HASHER_RECORD.project,
  service: HASHER_RECORD.service,
  buildNumber: HASHER_RECORD.buildNumber,
  region: HASHER_RECORD.region,
  account: HASHER_RECORD.account,
  finishedAt: HASHER_RECORD.finishedAt,
  logsLink: HASHER_RECORD.logsLink,
};

describe('good events', () => {
  test('Given the fixture file, then its build number is written as CodeBuild writes it, a float', () => {
    const raw = readFileSync(path.join(__dirname, '../fixtures/events', HASHER_MAIN_EVENT), 'utf8');
    expect(raw).toMatch(/"build-number": 55\.0,/);
  });

  test('Given a successful build of hasher on main with its exported variables, when parsed, then every field of the record is read', () => {
    expect(parseEvent(event(), SETTINGS)).toEqual({ kind: 'build', build: HASHER_RECORD });
  });

  test.each<[string, (json: Json) => void]>([
    [
      'no exported-environment-variables',
      (json) => delete infoOf(json)['exported-environment-variables'],
    ],
    [
      'an empty exported-environment-variables',
      (json) => (infoOf(json)['exported-environment-variables'] = []),
    ],
  ])(
    'Given an event with %s, when parsed, then it is a lookup of the build identity',
    (_name, change) => {
      const json = event();
      change(json);
      expect(parseEvent(json, SETTINGS)).toEqual({ kind: 'lookup', identity: HASHER_IDENTITY });
    },
  );

  test.each<[string, Record<string, string | undefined>, Partial<BuildRecord>]>([
    [
      'a release tag',
      { GIT_REF: 'refs/tags/v1.2.0', IMAGE_TAGS: `${HASHER.commitTag},v1.2.0` },
      { gitRef: 'refs/tags/v1.2.0', imageTags: [HASHER.commitTag, 'v1.2.0'] },
    ],
    [
      'a release tag that is sanitised into the image tag',
      { GIT_REF: 'refs/tags/v1.2.0+build.5', IMAGE_TAGS: `${HASHER.commitTag},v1.2.0_build.5` },
      { gitRef: 'refs/tags/v1.2.0+build.5', imageTags: [HASHER.commitTag, 'v1.2.0_build.5'] },
    ],
    [
      'a git tag that is not a release (not pushed as a tag)',
      { GIT_REF: 'refs/tags/nightly', IMAGE_TAGS: HASHER.commitTag },
      { gitRef: 'refs/tags/nightly', imageTags: [HASHER.commitTag] },
    ],
    [
      'a pull request',
      { GIT_REF: 'refs/pull/12/head', IMAGE_TAG: 'pr-12-6e0de79', IMAGE_TAGS: 'pr-12-6e0de79' },
      { gitRef: 'refs/pull/12/head', imageTag: 'pr-12-6e0de79', imageTags: ['pr-12-6e0de79'] },
    ],
    [
      'no ref (a build started from a commit)',
      { GIT_REF: '', IMAGE_TAGS: HASHER.commitTag },
      { gitRef: '', imageTags: [HASHER.commitTag] },
    ],
    ['a retag of an existing image', { IMAGE_BUILT: 'false' }, { built: false }],
    ['a variable that is not ours', { CODEBUILD_EXTRA: 'anything' }, {}],
  ])('Given a build with %s, when parsed, then the record says so', (_name, changes, expected) => {
    const json = setVariables(event(), changes);
    expect(parseEvent(json, SETTINGS)).toEqual({
      kind: 'build',
      build: { ...HASHER_RECORD, ...expected },
    });
  });

  test.each<[string, (json: Json) => void, Partial<BuildRecord>]>([
    ['no logs', (json) => delete infoOf(json).logs, { logsLink: undefined }],
    [
      'logs without a deep link',
      (json) => (infoOf(json).logs = { 'group-name': '/aws/codebuild/x' }),
      { logsLink: undefined },
    ],
    [
      'a time with milliseconds and an offset',
      (json) => (json.time = '2025-01-15T11:02:28.250+01:00'),
      { finishedAt: new Date(Date.UTC(2025, 0, 15, 10, 2, 28, 250)) },
    ],
    ['no resources', (json) => delete json.resources, {}],
    [
      'a build number written as an integer',
      (json) => (infoOf(json)['build-number'] = 7),
      { buildNumber: 7 },
    ],
  ])('Given an event with %s, when parsed, then it is accepted', (_name, change, expected) => {
    const json = event();
    change(json);
    expect(parseEvent(json, SETTINGS)).toEqual({
      kind: 'build',
      build: { ...HASHER_RECORD, ...expected },
    });
  });
});

describe('bad events: each a clear InvalidEventError', () => {
  test("Given AWS's documented sample event, when parsed, then its project is refused by name, with ours listed", () => {
    const error = invalidEventErrorOf(() => parseEvent(event(AWS_SAMPLE_EVENT), SETTINGS));
    expect(error.field).toBe('detail.project-name');
    expect(error.message).toBe(
      'detail.project-name is "my-sample-project": expected one of the deployer\'s projects (DockerCoins-hasher, ' +
        'DockerCoins-rng, DockerCoins-webui, DockerCoins-worker): the rule should only send builds of these. Check ' +
        'the rule pattern and SHIP_PROJECT_PREFIX/SHIP_SERVICES.',
    );
  });

  const otherArn =
    'arn:aws:codebuild:us-west-2:123456789012:build/DockerCoins-rng:8745a7a9-c340-456a-9166-edf953571bEX';
  const vars = (changes: Record<string, string | undefined>) => (json: Json) =>
    setVariables(json, changes);
  const many = Array.from({ length: MAX_VARIABLES + 1 }, (_, i) => ({ name: `V${i}`, value: 'x' }));

  test.each<[string, unknown, string, RegExp]>([
    ['no event at all', null, 'event', /^event is null: expected an EventBridge event/],
    [
      'a string for an event',
      'CodeBuild',
      'event',
      /^event is "CodeBuild": expected an EventBridge event/,
    ],
    [
      'no detail',
      (json: Json) => delete json.detail,
      'detail',
      /^detail is undefined: expected the "CodeBuild Build State Change" detail object\.$/,
    ],
    [
      'a detail that is an array',
      (json: Json) => (json.detail = []),
      'detail',
      /^detail is \[\]: expected the "CodeBuild Build State Change" detail object/,
    ],
    [
      'a phase change',
      (json: Json) => (json['detail-type'] = 'CodeBuild Build Phase Change'),
      'detail-type',
      /^detail-type is "CodeBuild Build Phase Change": expected "CodeBuild Build State Change": the deployer only handles these events/,
    ],
    [
      'another source',
      (json: Json) => (json.source = 'aws.codepipeline'),
      'source',
      /^source is "aws\.codepipeline": expected "aws\.codebuild"/,
    ],
    [
      'a failed build',
      (json: Json) => (detailOf(json)['build-status'] = 'FAILED'),
      'detail.build-status',
      /^detail\.build-status is "FAILED": expected "SUCCEEDED": only successful builds deploy/,
    ],
    [
      'a project that is not ours',
      (json: Json) => (detailOf(json)['project-name'] = 'DockerCoins-hasher2'),
      'detail.project-name',
      /^detail\.project-name is "DockerCoins-hasher2": expected one of the deployer's projects/,
    ],
    [
      'a control character in the project name',
      (json: Json) => (detailOf(json)['project-name'] = 'DockerCoins-hasher\u0007'),
      'detail.project-name',
      /^detail\.project-name is "DockerCoins-hasher\\u0007": expected free of control characters/,
    ],
    [
      'a build ARN of another project',
      (json: Json) => (detailOf(json)['build-id'] = otherArn),
      'detail.build-id',
      /^detail\.build-id is "arn:.*build\/DockerCoins-rng:.*": expected a build of project "DockerCoins-hasher" \(detail\.project-name\), not of "DockerCoins-rng"/,
    ],
    [
      'a build id that is not an ARN',
      (json: Json) => (detailOf(json)['build-id'] = HASHER.buildId),
      'detail.build-id',
      /^detail\.build-id is "DockerCoins-hasher:8745.*": expected a build ARN, arn:aws:codebuild:<region>/,
    ],
    [
      "a region other than the ARN's",
      (json: Json) => (json.region = 'eu-west-1'),
      'region',
      /^region is "eu-west-1": expected the build ARN's region, "us-west-2"/,
    ],
    [
      "an account other than the ARN's",
      (json: Json) => (json.account = '210987654321'),
      'account',
      /^account is "210987654321": expected the build ARN's account, "123456789012"/,
    ],
    [
      'resources naming another build',
      (json: Json) => (json.resources = [otherArn]),
      'resources',
      /^resources is \["arn:.*DockerCoins-rng.*"\]: expected an array whose first element is the build ARN/,
    ],
    [
      "a time in CodeBuild's detail format",
      (json: Json) => (json.time = 'Jan 15, 2025 10:02:28 AM'),
      'time',
      /^time is "Jan 15, 2025 10:02:28 AM": expected an ISO 8601 time/,
    ],
    [
      'an impossible date',
      (json: Json) => (json.time = '2025-02-30T10:02:28Z'),
      'time',
      /^time is "2025-02-30T10:02:28Z": expected an ISO 8601 time/,
    ],
    [
      'no additional-information',
      (json: Json) => delete detailOf(json)['additional-information'],
      'detail.additional-information',
      /^detail\.additional-information is undefined: expected CodeBuild's additional-information object/,
    ],
    [
      'a fractional build number',
      (json: Json) => (infoOf(json)['build-number'] = 55.5),
      'detail.additional-information.build-number',
      /^detail\.additional-information\.build-number is 55\.5: expected a positive whole number/,
    ],
    [
      'a build number as a string',
      (json: Json) => (infoOf(json)['build-number'] = '55'),
      'detail.additional-information.build-number',
      /^detail\.additional-information\.build-number is "55": expected a positive whole number/,
    ],
    [
      'a NaN build number',
      (json: Json) => (infoOf(json)['build-number'] = NaN),
      'detail.additional-information.build-number',
      /build-number is NaN: expected a positive whole number/,
    ],
    [
      'a zero build number',
      (json: Json) => (infoOf(json)['build-number'] = 0),
      'detail.additional-information.build-number',
      /build-number is 0: expected a positive whole number/,
    ],
    [
      'no build number',
      (json: Json) => delete infoOf(json)['build-number'],
      'detail.additional-information.build-number',
      /build-number is undefined: expected a positive whole number/,
    ],
    [
      'a log link over http',
      (json: Json) => ((infoOf(json).logs as Json)['deep-link'] = 'http://example.com/'),
      'detail.additional-information.logs.deep-link',
      /deep-link is "http:\/\/example\.com\/": expected an https:\/\/ link/,
    ],
    [
      'exported variables that are an object',
      (json: Json) => (infoOf(json)['exported-environment-variables'] = { SERVICE: 'hasher' }),
      'detail.additional-information.exported-environment-variables',
      /exported-environment-variables is \{"SERVICE":"hasher"\}: expected an array of \{"name", "value"\}/,
    ],
    [
      'a variable without a value',
      (json: Json) => (infoOf(json)['exported-environment-variables'] = [{ name: 'SERVICE' }]),
      'detail.additional-information.exported-environment-variables[0].value',
      /\[0\]\.value is undefined: expected a string value\./,
    ],
    [
      `more than ${MAX_VARIABLES} variables`,
      (json: Json) => (infoOf(json)['exported-environment-variables'] = many),
      'detail.additional-information.exported-environment-variables',
      /is "201 variables": expected at most 200 exported variables/,
    ],
    [
      'a variable exported twice',
      (json: Json) =>
        (infoOf(json)['exported-environment-variables'] = [
          { name: 'SERVICE', value: 'a' },
          { name: 'SERVICE', value: 'b' },
        ]),
      'detail.additional-information.exported-environment-variables',
      /is "SERVICE": expected a variable exported once/,
    ],
    [
      'a missing exported variable',
      vars({ IMAGE_DIGEST: undefined }),
      'IMAGE_DIGEST',
      /^IMAGE_DIGEST is missing from build DockerCoins-hasher:8745a7a9-c340-456a-9166-edf953571bEX's exported variables: the buildspec must export SERVICE, IMAGE_REPOSITORY, .*IMAGE_BUILT/,
    ],
    [
      'a garbled digest',
      vars({ IMAGE_DIGEST: 'sha256:3b3b' }),
      'IMAGE_DIGEST',
      /^IMAGE_DIGEST is "sha256:3b3b": expected a manifest digest, "sha256:" and 64 lowercase hex digits/,
    ],
    [
      'an upper-case digest',
      vars({ IMAGE_DIGEST: `sha256:${'3B'.repeat(32)}` }),
      'IMAGE_DIGEST',
      /^IMAGE_DIGEST is "sha256:3B3B.*": expected a manifest digest/,
    ],
    [
      'a sha512 digest',
      vars({ IMAGE_DIGEST: `sha512:${'3b'.repeat(64)}` }),
      'IMAGE_DIGEST',
      /^IMAGE_DIGEST is "sha512:(3b)+3"… \(135 characters\): expected a manifest digest/,
    ],
    [
      'a ref not under refs/',
      vars({ GIT_REF: 'main' }),
      'GIT_REF',
      /^GIT_REF is "main": expected empty, or a git ref under refs\/: refs\/heads\/<branch>, refs\/tags\/<tag> or refs\/pull\/<n>\/head/,
    ],
    [
      'a remote-tracking ref',
      vars({ GIT_REF: 'refs/remotes/origin/main' }),
      'GIT_REF',
      /^GIT_REF is "refs\/remotes\/origin\/main": expected empty, or a git ref under refs\//,
    ],
    [
      'a branch with "..", which git forbids',
      vars({ GIT_REF: 'refs/heads/a..b' }),
      'GIT_REF',
      /^GIT_REF is "refs\/heads\/a\.\.b"/,
    ],
    [
      'an oversized variable',
      vars({ GIT_REF: `refs/heads/${'b'.repeat(MAX_STRING_LENGTH)}` }),
      'GIT_REF',
      /^GIT_REF is "refs\/heads\/b{109}"… \(2059 characters\): expected at most 2048 characters\.$/,
    ],
    [
      'an oversized project name',
      (json: Json) => (detailOf(json)['project-name'] = 'P'.repeat(5000)),
      'detail.project-name',
      /^detail\.project-name is "P{120}"… \(5000 characters\): expected at most 2048 characters/,
    ],
    [
      'a control character in a variable',
      vars({ GIT_REF: 'refs/heads/main\u0000' }),
      'GIT_REF',
      /^GIT_REF is "refs\/heads\/main\\u0000": expected free of control characters and line breaks/,
    ],
    [
      'a line separator in a variable',
      vars({ SERVICE: 'hasher\u2028' }),
      'SERVICE',
      /^SERVICE is "hasher\\u2028": expected free of control characters/,
    ],
    [
      'another service',
      vars({ SERVICE: 'rng' }),
      'SERVICE',
      /^SERVICE is "rng": expected "hasher", the service project DockerCoins-hasher builds/,
    ],
    [
      'an image repository in another registry',
      vars({ IMAGE_REPOSITORY: 'docker.io/dockercoins/hasher' }),
      'IMAGE_REPOSITORY',
      /^IMAGE_REPOSITORY is "docker\.io\/dockercoins\/hasher": expected "123456789012\.dkr\.ecr\.us-west-2\.amazonaws\.com\/dockercoins\/hasher": the deployer only deploys images of the service's own repository/,
    ],
    [
      "another service's repository",
      vars({ IMAGE_REPOSITORY: `${HASHER.registry}/dockercoins/rng` }),
      'IMAGE_REPOSITORY',
      /^IMAGE_REPOSITORY is ".*\/dockercoins\/rng": expected ".*\/dockercoins\/hasher"/,
    ],
    [
      'IMAGE_TAG latest',
      vars({ IMAGE_TAG: 'latest', IMAGE_TAGS: 'latest' }),
      'IMAGE_TAG',
      /^IMAGE_TAG is "latest": expected the immutable tag image-tags\.js makes: a commit tag \(12 lowercase hex\) or a pull-request tag/,
    ],
    [
      'a release tag as IMAGE_TAG',
      vars({ IMAGE_TAG: 'v1.2.0', IMAGE_TAGS: 'v1.2.0' }),
      'IMAGE_TAG',
      /^IMAGE_TAG is "v1\.2\.0": expected the immutable tag/,
    ],
    [
      'a commit tag of another commit',
      vars({ GIT_COMMIT: OTHER_COMMIT }),
      'IMAGE_TAG',
      /^IMAGE_TAG is "6e0de7938dda": expected the commit tag of GIT_COMMIT aaaabbbb.*, "aaaabbbbcccc" \(its first 12 hex digits\)/,
    ],
    [
      'a pull-request tag of another commit',
      vars({
        GIT_REF: 'refs/pull/12/head',
        IMAGE_TAG: 'pr-12-aaaabbb',
        IMAGE_TAGS: 'pr-12-aaaabbb',
      }),
      'IMAGE_TAG',
      /^IMAGE_TAG is "pr-12-aaaabbb": expected a pull-request tag of GIT_COMMIT 6e0de79.*, "pr-12-6e0de79"/,
    ],
    [
      'a short commit',
      vars({ GIT_COMMIT: '6e0de79' }),
      'GIT_COMMIT',
      /^GIT_COMMIT is "6e0de79": expected a full commit id, 40 lowercase hex digits/,
    ],
    [
      'latest among the tags',
      vars({ IMAGE_TAGS: `${HASHER.commitTag},latest` }),
      'IMAGE_TAGS',
      /^IMAGE_TAGS is "latest" \(in "6e0de7938dda,latest"\): expected a tag other than "latest"/,
    ],
    [
      'IMAGE_TAG not first in IMAGE_TAGS',
      vars({ IMAGE_TAGS: `main-6e0de79-55,${HASHER.commitTag}` }),
      'IMAGE_TAGS',
      /^IMAGE_TAGS is "main-6e0de79-55,6e0de7938dda": expected a comma-separated list of tags whose first is IMAGE_TAG, "6e0de7938dda"/,
    ],
    [
      'a tag Docker refuses',
      vars({ IMAGE_TAGS: `${HASHER.commitTag},-bad` }),
      'IMAGE_TAGS',
      /^IMAGE_TAGS is "-bad" \(in ".*"\): expected a Docker tag/,
    ],
    [
      'a tag listed twice',
      vars({ IMAGE_TAGS: `${HASHER.commitTag},x,x` }),
      'IMAGE_TAGS',
      /^IMAGE_TAGS is ".*,x,x": expected a list of distinct tags/,
    ],
    [
      'a release ref whose tag was not pushed',
      vars({ GIT_REF: 'refs/tags/v1.2.0' }),
      'IMAGE_TAGS',
      /^IMAGE_TAGS is "6e0de7938dda,main-6e0de79-55": expected a list that includes "v1\.2\.0": GIT_REF refs\/tags\/v1\.2\.0 is a release \(pattern "v\*"\)/,
    ],
    [
      'a pull-request ref with a commit tag',
      vars({ GIT_REF: 'refs/pull/12/head' }),
      'GIT_REF',
      /^GIT_REF is "refs\/pull\/12\/head": expected a ref that agrees with IMAGE_TAG "6e0de7938dda"/,
    ],
    [
      'a pull-request tag on a branch ref',
      vars({ IMAGE_TAG: 'pr-12-6e0de79', IMAGE_TAGS: 'pr-12-6e0de79' }),
      'GIT_REF',
      /^GIT_REF is "refs\/heads\/main": expected refs\/pull\/12\/head, the pull request of IMAGE_TAG "pr-12-6e0de79"/,
    ],
    [
      'a pull request that pushed more than its tag',
      vars({
        GIT_REF: 'refs/pull/12/head',
        IMAGE_TAG: 'pr-12-6e0de79',
        IMAGE_TAGS: 'pr-12-6e0de79,v1.0.0',
      }),
      'IMAGE_TAGS',
      /^IMAGE_TAGS is "pr-12-6e0de79,v1\.0\.0": expected "pr-12-6e0de79" alone/,
    ],
    [
      'IMAGE_BUILT neither true nor false',
      vars({ IMAGE_BUILT: 'yes' }),
      'IMAGE_BUILT',
      /^IMAGE_BUILT is "yes": expected "true" or "false"/,
    ],
  ])(
    'Given %s, when parsed, then the error names the field, the value and the form',
    (_name, given, field, message) => {
      let input: unknown = given;
      if (typeof given === 'function') {
        const json = event();
        (given as (json: Json) => unknown)(json);
        input = json;
      }
      const error = invalidEventErrorOf(() => parseEvent(input, SETTINGS));
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
      // One line for the log, whatever the event carried.
      expect(error.message).not.toMatch(CONTROL_CHARACTERS);
      expect(error.message.length).toBeLessThan(700);
    },
  );
});

describe('builds read back from CodeBuild (BatchGetBuilds)', () => {
  const fromApi = (variables: Record<string, string>): Build => ({
    id: HASHER.buildId,
    arn: HASHER.buildArn,
    buildNumber: 55,
    exportedEnvironmentVariables: Object.entries(variables).map(([name, value]) => ({
      name,
      value,
    })),
  });

  test('Given the build of the fixture event as BatchGetBuilds returns it, when its variables are read, then the record is the one the event gives', () => {
    const variables = variablesFromBuild(fromApi(variablesOf(event())));
    expect(variables).toEqual(variablesOf(event()));
    expect(buildFromVariables(HASHER_IDENTITY, variables!, SETTINGS)).toEqual(HASHER_RECORD);
  });

  test.each<[string, Build]>([
    ['no exportedEnvironmentVariables', { id: HASHER.buildId }],
    ['an empty list', { id: HASHER.buildId, exportedEnvironmentVariables: [] }],
  ])('Given a build with %s, when its variables are read, then there are none', (_name, build) => {
    expect(variablesFromBuild(build)).toBeUndefined();
  });

  test('Given a variable listed without a value, when read, then it is empty (GIT_REF of a build with no ref)', () => {
    expect(variablesFromBuild({ exportedEnvironmentVariables: [{ name: 'GIT_REF' }] })).toEqual({
      GIT_REF: '',
    });
  });

  test.each<[string, Build, string, RegExp]>([
    [
      'a variable without a name',
      { exportedEnvironmentVariables: [{ value: 'x' }] },
      'exportedEnvironmentVariables[0].name',
      /name is undefined: expected a variable name/,
    ],
    [
      'a variable listed twice',
      {
        exportedEnvironmentVariables: [
          { name: 'A', value: '1' },
          { name: 'A', value: '2' },
        ],
      },
      'exportedEnvironmentVariables',
      /is "A": expected a variable exported once/,
    ],
    [
      'a name that is no variable name',
      { exportedEnvironmentVariables: [{ name: 'A-B', value: '1' }] },
      'exportedEnvironmentVariables',
      /is "A-B": expected a variable name/,
    ],
  ])(
    'Given a build with %s, when read, then an InvalidEventError says so',
    (_name, build, field, message) => {
      const error = invalidEventErrorOf(() => variablesFromBuild(build));
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    },
  );

  test.each(EXPORTED_VARIABLES.map((name) => [name]))(
    'Given the variables without %s, when a record is made, then the error names it and the buildspec',
    (name) => {
      const variables = variablesOf(event());
      delete variables[name];
      const error = invalidEventErrorOf(() =>
        buildFromVariables(HASHER_IDENTITY, variables, SETTINGS),
      );
      expect(error.field).toBe(name);
      expect(error.message).toMatch(
        new RegExp(
          `^${name} is missing .* the buildspec must export .*buildspecs/build-image\\.yml`,
        ),
      );
    },
  );
});
