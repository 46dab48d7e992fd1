/**
 * confirm: an event is a claim; CodeBuild's own record of the build is the truth. Before anything
 * is deployed the build is read back (BatchGetBuilds) and must be ours, SUCCEEDED, of the same
 * number, with the same exported variables as the event says. Otherwise anyone allowed to put an
 * event on the bus or invoke the function could deploy any digest under any build number (and a
 * forged high number would make every real build afterwards skip as `older-build`).
 *
 * Pure: the caller does the lookup. The build deployed is the one made from CodeBuild's variables.
 */
import type { DeployerSettings } from '../lib/deployer-contract';
import { buildFromVariables } from './parse';
import type { BuildFacts, BuildRecord, ParsedEvent } from './types';

/**
 * CodeBuild does not confirm what the event says: refused, never retried, reported and alarmed
 * (someone or something is sending events that are not our builds').
 */
export class UnconfirmedBuildError extends Error {
  constructor(
    /** The event field that CodeBuild contradicts, e.g. `detail.additional-information.build-number`. */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'UnconfirmedBuildError';
  }
}

/** The build fields compared between the event's variables and CodeBuild's, with their variable. */
const COMPARED: readonly [keyof BuildRecord, string][] = [
  ['digest', 'IMAGE_DIGEST'],
  ['imageTag', 'IMAGE_TAG'],
  ['imageTags', 'IMAGE_TAGS'],
  ['repositoryUri', 'IMAGE_REPOSITORY'],
  ['commit', 'GIT_COMMIT'],
  ['gitRef', 'GIT_REF'],
  ['built', 'IMAGE_BUILT'],
];

/**
 * The build to deploy, as CodeBuild records it, when CodeBuild confirms the event; throws
 * {@link UnconfirmedBuildError} naming what differs, or InvalidEventError when CodeBuild's own
 * variables are not what our buildspec exports.
 */
export function confirmBuild(
  parsed: ParsedEvent,
  facts: BuildFacts | undefined,
  settings: DeployerSettings,
): BuildRecord {
  const identity = parsed.kind === 'build' ? parsed.build : parsed.identity;
  const build = `build ${identity.buildId}`;
  const refuse = (field: string, what: string): never => {
    throw new UnconfirmedBuildError(
      field,
      `CodeBuild does not confirm the event: ${what}. Nothing was deployed. If you did not send ` +
        "this event, find who can put events on the bus or invoke the deployer (CloudTrail's " +
        'PutEvents and Invoke records); a real build can be deployed by hand with `ship deploy`.',
    );
  };
  if (facts === undefined) {
    return refuse('detail.build-id', `CodeBuild has no ${build} (BatchGetBuilds found nothing)`);
  }
  if (facts.project !== identity.project) {
    refuse(
      'detail.project-name',
      `${build} is of project ${JSON.stringify(facts.project)}, not ${JSON.stringify(identity.project)}`,
    );
  }
  if (facts.status !== 'SUCCEEDED') {
    refuse('detail.build-status', `${build} is ${String(facts.status)}, not SUCCEEDED`);
  }
  if (facts.buildNumber !== identity.buildNumber) {
    refuse(
      'detail.additional-information.build-number',
      `the event says ${build} is number ${identity.buildNumber}, CodeBuild says ${String(facts.buildNumber)}`,
    );
  }
  const recorded = buildFromVariables(identity, facts.exportedVariables ?? {}, settings);
  if (parsed.kind === 'build') {
    for (const [field, variable] of COMPARED) {
      const said = JSON.stringify(parsed.build[field]);
      const truth = JSON.stringify(recorded[field]);
      if (said !== truth) {
        refuse(
          'detail.additional-information.exported-environment-variables',
          `the event's ${variable} is ${said}, CodeBuild's record of ${build} says ${truth}`,
        );
      }
    }
  }
  return recorded;
}
