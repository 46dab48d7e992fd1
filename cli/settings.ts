/**
 * What `ship` knows about the app before asking any registry or cluster: the services, the
 * Deployments that run them, the environments and the release tag pattern, from the same
 * configuration `cdk deploy` reads (cdk.json's context plus `-c key=value`), validated by the same
 * code (lib/config.ts). So `ship` and the deployer agree on every name.
 */
import { readFileSync } from 'node:fs';
import {
  ConfigError,
  projectName,
  repositoryName,
  resolveConfig,
  type ShipConfig,
} from '../lib/config';
import type { EnvironmentSettings, ServiceSettings } from '../lib/deployer-contract';

export interface ShipSettings {
  readonly config: ShipConfig;
  /** The config file read, for messages. */
  readonly configPath: string;
  readonly releaseTagPattern: string;
  /** Repositories named as in ECR: `<repositoryPrefix>/<service>`. */
  readonly services: readonly ServiceSettings[];
  /** Regions are undefined: every environment is in the app's region (ECR's and EKS's). */
  readonly environments: readonly EnvironmentSettings[];
}

/** The configuration cannot be read: the message names the file or key and the fix. */
export class SettingsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'SettingsFileError';
  }
}

/**
 * Reads `configPath` (a cdk.json) and applies `overrides` (`-c key=value`, strings as the cdk CLI
 * passes them) over its `context`, then validates with lib/config.ts. Throws ConfigError (a key)
 * or SettingsFileError (the file).
 */
export function loadSettings(
  configPath: string,
  overrides: Readonly<Record<string, string>>,
): ShipSettings {
  let text: string;
  try {
    text = readFileSync(configPath, 'utf8');
  } catch (error) {
    throw new SettingsFileError(
      `cannot read the app configuration ${configPath} (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}): ` +
        'run ship from the dockercoins-ship checkout, or pass --config <path to its cdk.json>.',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new SettingsFileError(
      `${configPath} is not JSON (${(error as Error).message}); fix it (cdk deploy reads it too).`,
    );
  }
  const context = (parsed as { context?: unknown } | null)?.context ?? {};
  if (context === null || typeof context !== 'object' || Array.isArray(context)) {
    throw new SettingsFileError(`${configPath}: "context" is not an object; fix it.`);
  }
  const config = resolveConfig({ ...(context as Record<string, unknown>), ...overrides }).config;
  return settingsFromConfig(config, configPath);
}

/** The services and environments of a validated configuration. */
export function settingsFromConfig(config: ShipConfig, configPath: string): ShipSettings {
  return {
    config,
    configPath,
    releaseTagPattern: config.registry.releaseTagPattern,
    services: config.services.map((service) => ({
      service: service.name,
      project: projectName(config.stackNamePrefix, service.name),
      repository: repositoryName(config.registry.repositoryPrefix, service.name),
      targets: [{ deployment: service.deployment, container: service.container }],
    })),
    environments: config.environments.map((environment) => ({
      name: environment.name,
      clusterName: environment.clusterName,
      region: undefined,
      namespace: environment.namespace,
      branches: environment.branches,
      releaseTags: environment.releaseTags,
    })),
  };
}

export { ConfigError };
