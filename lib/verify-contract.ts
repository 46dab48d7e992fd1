/**
 * How deploys are verified, as the construct writes it into the deploy function's environment and
 * the Deploy step reads it: each deployed Deployment's verify deadline, poll interval and whether
 * its environment rolls back. Kept apart from the deployer's settings (lib/deployer-contract.ts)
 * so a function that does not verify never reads it.
 */
import { VERIFY_DEFAULTS, VERIFY_LIMITS } from './config';
import { CONTROL_CHARACTERS, SettingsError, quoteValue } from './deployer-contract';

/** The variable (JSON, {@link VerifySettings}). */
export const VERIFY_ENV = 'SHIP_VERIFY';

/** Defaults and bounds: lib/config.ts (the configuration and the construct hold to them too). */
export { VERIFY_DEFAULTS, VERIFY_LIMITS } from './config';

export interface VerifySettings {
  /** Seconds between checks of one Deployment, in an environment not in {@link environmentPollSeconds}. */
  readonly pollSeconds: number;
  /** Seconds from the PATCH to a verdict, where neither the service nor the environment sets one. */
  readonly deadlineSeconds: number;
  /** Per service, by name. */
  readonly serviceDeadlines: Readonly<Record<string, number>>;
  /** Per environment, by name. */
  readonly environmentDeadlines: Readonly<Record<string, number>>;
  /** Per environment, by name. */
  readonly environmentPollSeconds: Readonly<Record<string, number>>;
  /** Environments (by name) where a failed verification is NOT rolled back; every other one is. */
  readonly noRollback: readonly string[];
}

/**
 * The deadline of a service in an environment: the longer of the service's and the
 * environment's when either is set (a deadline too short rolls back a healthy rollout; one too
 * long only delays the slow failures, not the fast ones), else the default.
 */
export function deadlineOf(settings: VerifySettings, service: string, environment: string): number {
  const given = [
    settings.serviceDeadlines[service],
    settings.environmentDeadlines[environment],
  ].filter((s): s is number => s !== undefined);
  return given.length === 0 ? settings.deadlineSeconds : Math.max(...given);
}

/** The poll interval in an environment. */
export function pollOf(settings: VerifySettings, environment: string): number {
  return settings.environmentPollSeconds[environment] ?? settings.pollSeconds;
}

/** Whether a failed verification in this environment is rolled back. */
export function rollsBack(settings: VerifySettings, environment: string): boolean {
  return !settings.noRollback.includes(environment);
}

/** The variable's value. */
export function formatVerifySettings(settings: VerifySettings): string {
  return JSON.stringify(settings);
}

const isInteger = (value: unknown, { min, max }: { min: number; max: number }): value is number =>
  typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;

/** Reads the variable; a missing one means the defaults (a deploy function from before verification). */
export function parseVerifySettings(
  env: Readonly<Record<string, string | undefined>>,
): VerifySettings {
  const raw = env[VERIFY_ENV];
  const defaults: VerifySettings = {
    pollSeconds: VERIFY_DEFAULTS.pollSeconds,
    deadlineSeconds: VERIFY_DEFAULTS.deadlineSeconds,
    serviceDeadlines: {},
    environmentDeadlines: {},
    environmentPollSeconds: {},
    noRollback: [],
  };
  if (raw === undefined || raw === '') return defaults;
  const refuse = (what: string): never => {
    throw new SettingsError(
      VERIFY_ENV,
      `${VERIFY_ENV} is ${quoteValue(raw)}; expected ${what}. The Deployer construct writes it from the ` +
        'configuration (the services\' and environments\' verifyDeadlineSeconds, verifyPollSeconds and "rollback"): fix that and deploy again.',
    );
  };
  if (CONTROL_CHARACTERS.test(raw)) refuse('one line of JSON');
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    return refuse('JSON');
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return refuse(
      'a JSON object {pollSeconds, deadlineSeconds, serviceDeadlines, environmentDeadlines, environmentPollSeconds, noRollback}',
    );
  }
  const object = value as Record<string, unknown>;
  const { deadlineSeconds: deadline, pollSeconds: poll } = VERIFY_LIMITS;
  if (!isInteger(object.pollSeconds, poll)) {
    refuse(`"pollSeconds" a whole number of seconds from ${poll.min} to ${poll.max}`);
  }
  if (!isInteger(object.deadlineSeconds, deadline)) {
    refuse(`"deadlineSeconds" a whole number of seconds from ${deadline.min} to ${deadline.max}`);
  }
  const secondsBy = (field: string, limits: { min: number; max: number }, of: string) => {
    const value = object[field];
    if (
      value === null ||
      typeof value !== 'object' ||
      Array.isArray(value) ||
      !Object.values(value).every((s) => isInteger(s, limits))
    ) {
      refuse(`"${field}" an object of ${of} → seconds (${limits.min}–${limits.max})`);
    }
    return value as Record<string, number>;
  };
  const serviceDeadlines = secondsBy('serviceDeadlines', deadline, 'service');
  const environmentDeadlines = secondsBy('environmentDeadlines', deadline, 'environment');
  const environmentPollSeconds = secondsBy('environmentPollSeconds', poll, 'environment');
  const noRollback = object.noRollback;
  if (!Array.isArray(noRollback) || !noRollback.every((e) => typeof e === 'string')) {
    refuse('"noRollback" an array of environment names');
  }
  return {
    pollSeconds: object.pollSeconds as number,
    deadlineSeconds: object.deadlineSeconds as number,
    serviceDeadlines,
    environmentDeadlines,
    environmentPollSeconds,
    noRollback: noRollback as string[],
  };
}

/**
 * The Report step's metrics, in the deployer's namespace with its one `service` dimension
 * (lib/deployer-contract.ts DEPLOYER_METRICS), so the dashboard and alarms name them exactly.
 */
export const VERIFY_METRICS = {
  /** Count: Deployments verified Ready. */
  verified: 'Verified',
  /** Count: Deployments rolled back and the rollback verified Ready. */
  rolledBack: 'RolledBack',
  /** Count: Deployments that failed verification and were not rolled back (none to go back to, or off). */
  verifyFailed: 'VerifyFailed',
  /** Count: rollbacks that failed their own verification, or could not be made. */
  rollbackFailed: 'RollbackFailed',
  /** Seconds from the build's end to the Deployment verified Ready. */
  timeToReady: 'TimeToReady',
} as const;
