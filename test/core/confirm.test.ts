import { confirmBuild, UnconfirmedBuildError } from '../../core/confirm';
import { parseEvent } from '../../core/parse';
import { InvalidEventError, type BuildFacts, type ParsedEvent } from '../../core/types';
import {
  HASHER,
  event,
  infoOf,
  settings,
  variablesOf,
  type Json,
} from '../fixtures/events/fixtures';

// Given the fixture's hasher build event and what CodeBuild records of that build, when the
// event is confirmed, then the build comes from CodeBuild's record, or the event is refused
// naming what CodeBuild contradicts.

/** CodeBuild's record of the fixture's build, as the event describes it. */
function recordOf(json: Json, changes: Partial<BuildFacts> = {}): BuildFacts {
  return {
    id: HASHER.buildId,
    arn: HASHER.buildArn,
    project: 'DockerCoins-hasher',
    status: 'SUCCEEDED',
    buildNumber: HASHER.buildNumber,
    exportedVariables: variablesOf(json),
    ...changes,
  };
}

const parsed = (json: Json): ParsedEvent => parseEvent(json, settings());

test('Given an event CodeBuild confirms, then the build made from its record, the same as the event says', () => {
  const json = event();
  const build = confirmBuild(parsed(json), recordOf(json), settings());
  expect(build).toMatchObject({
    buildNumber: HASHER.buildNumber,
    digest: HASHER.digest,
    commit: HASHER.commit,
    imageTag: HASHER.commitTag,
  });
});

test('Given an event without variables, then the build comes from CodeBuild alone', () => {
  const json = event();
  const variables = variablesOf(json);
  delete infoOf(json)['exported-environment-variables'];
  const lookup = parsed(json);
  expect(lookup.kind).toBe('lookup');
  const build = confirmBuild(
    lookup,
    recordOf(event(), { exportedVariables: variables }),
    settings(),
  );
  expect(build.digest).toBe(HASHER.digest);
});

test.each<[string, (json: Json) => BuildFacts | undefined, string, RegExp]>([
  [
    'CodeBuild has no such build',
    () => undefined,
    'detail.build-id',
    /BatchGetBuilds found nothing/,
  ],
  [
    'another project',
    (json) => recordOf(json, { project: 'DockerCoins-rng' }),
    'detail.project-name',
    /is of project "DockerCoins-rng", not "DockerCoins-hasher"/,
  ],
  [
    'still running',
    (json) => recordOf(json, { status: 'IN_PROGRESS' }),
    'detail.build-status',
    /is IN_PROGRESS, not SUCCEEDED/,
  ],
  [
    'another build number (a forged high one)',
    (json) => recordOf(json, { buildNumber: 54 }),
    'detail.additional-information.build-number',
    /the event says build .* is number 55, CodeBuild says 54/,
  ],
  [
    'another digest',
    (json) =>
      recordOf(json, {
        exportedVariables: { ...variablesOf(json), IMAGE_DIGEST: `sha256:${'0a'.repeat(32)}` },
      }),
    'detail.additional-information.exported-environment-variables',
    /the event's IMAGE_DIGEST is "sha256:3b3b.*", CodeBuild's record of build .* says "sha256:0a0a/,
  ],
])(
  'Given %s, then UnconfirmedBuildError naming the field, and nothing to deploy',
  (_name, record, field, message) => {
    const json = event();
    let error: unknown;
    try {
      confirmBuild(parsed(json), record(json), settings());
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(UnconfirmedBuildError);
    expect((error as UnconfirmedBuildError).field).toBe(field);
    expect((error as Error).message).toMatch(message);
    expect((error as Error).message).toMatch(/Nothing was deployed/);
  },
);

test('Given CodeBuild recorded no variables for the build, then InvalidEventError naming the first missing one', () => {
  const json = event();
  expect(() =>
    confirmBuild(parsed(json), recordOf(json, { exportedVariables: undefined }), settings()),
  ).toThrow(InvalidEventError);
});
