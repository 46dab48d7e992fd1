/**
 * How deploys are verified, as the construct writes it into the deploy function's environment and
 * the Deploy step reads it: each deployed Deployment's verify deadline, poll interval and whether
 * its environment rolls back. Kept apart from the deployer's settings (lib/deployer-contract.ts)
 * so a function that does not verify never reads it.
 */
import { CONTROL_CHARACTERS, SettingsError, quoteValue } from './deployer-contract';

/** The variable (JSON, {@link VerifySettings}). */
export const VERIFY_ENV = 'SHIP_VERIFY';

/** Defaults: well under Kubernetes' 600 s progress deadline, polled often enough to read every back-off. */
export const VERIFY_DEFAULTS = {
  deadlineSeconds: 180,
  pollSeconds: 5,
  rollback: true,
} as const;

/** The bounds the configuration and the variable are held to. */
export const VERIFY_LIMITS = {
  deadlineSeconds: { min: 30, max: 1800 },
  pollSeconds: { min: 1, max: 60 },
} as const;

export interface VerifySettings {
  /** Seconds between checks of one Deployment. */
  readonly pollSeconds: number;
  /** Seconds from the PATCH to a verdict, for a service not in {@link serviceDeadlines}. */
  readonly deadlineSeconds: number;
  /** Per service, by name. */
  readonly serviceDeadlines: Readonly<Record<string, number>>;
  /** Environments (by name) where a failed verification is NOT rolled back; every other one is. */
  readonly noRollback: readonly string[];
}

/** The deadline of one service. */
export function deadlineOf(settings: VerifySettings, service: string): number {
  return settings.serviceDeadlines[service] ?? settings.deadlineSeconds;
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
    noRollback: [],
  };
  if (raw === undefined || raw === '') return defaults;
  const refuse = (what: string): never => {
    throw new SettingsError(
      VERIFY_ENV,
      `${VERIFY_ENV} is ${quoteValue(raw)}; expected ${what}. The Deployer construct writes it from the ` +
        'configuration (verifyDeadlineSeconds, verifyPollSeconds, each environment\'s "rollback"): fix that and deploy again.',
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
    return refuse('a JSON object {pollSeconds, deadlineSeconds, serviceDeadlines, noRollback}');
  }
  const object = value as Record<string, unknown>;
  const { deadlineSeconds: deadline, pollSeconds: poll } = VERIFY_LIMITS;
  if (!isInteger(object.pollSeconds, poll)) {
    refuse(`"pollSeconds" a whole number of seconds from ${poll.min} to ${poll.max}`);
  }
  if (!isInteger(object.deadlineSeconds, deadline)) {
    refuse(`"deadlineSeconds" a whole number of seconds from ${deadline.min} to ${deadline.max}`);
  }
  const services = object.serviceDeadlines;
  if (
    services === null ||
    typeof services !== 'object' ||
    Array.isArray(services) ||
    !Object.values(services).every((s) => isInteger(s, deadline))
  ) {
    refuse(`"serviceDeadlines" an object of service → seconds (${deadline.min}–${deadline.max})`);
  }
  const noRollback = object.noRollback;
  if (!Array.isArray(noRollback) || !noRollback.every((e) => typeof e === 'string')) {
    refuse('"noRollback" an array of environment names');
  }
  return {
    pollSeconds: object.pollSeconds as number,
    deadlineSeconds: object.deadlineSeconds as number,
    serviceDeadlines: services as Record<string, number>,
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
