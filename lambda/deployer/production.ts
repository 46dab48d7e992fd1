/**
 * The deployer's collaborators in AWS: settings from the environment the construct wrote, SDK
 * clients of the Lambda's own region (endpoints overridable by the standard
 * `AWS_ENDPOINT_URL_<SERVICE>` variables, which is how the integration tests point them at local
 * emulators), one retry policy for every call. Built once per container.
 */
import { parseDeployerSettings } from '../../lib/deployer-contract';
import { parseVerifySettings } from '../../lib/verify-contract';
import { createBuildLookup, newCodeBuildClient } from './adapters/codebuild';
import type { ECRClient } from '@aws-sdk/client-ecr';
import { createImageVerifier, markDeployedImages, newEcrClient } from './adapters/ecr';
import { createClusterConnector, newEksClient } from '../../core/aws/eks';
import { createRetry } from '../../core/retry';
import { createNotifier, newSnsClient } from './adapters/sns';
import type { DeployerDeps } from './handler';
import { createTelemetry, type Telemetry } from './telemetry';

/**
 * Reads and validates the configuration (throws SettingsError naming the variable at fault) and
 * wires the adapters. Clients are created on first use, so an event that needs no CodeBuild
 * lookup never builds a CodeBuild client.
 */
export function productionDeps(
  env: Readonly<Record<string, string | undefined>>,
  telemetry: Telemetry = createTelemetry(),
): DeployerDeps {
  const region = env.AWS_REGION;
  if (region === undefined || region === '') {
    throw new Error(
      'AWS_REGION is not set; Lambda sets it in every function. To run the deployer elsewhere, ' +
        'set AWS_REGION to the region of the builds and clusters.',
    );
  }
  const settings = parseDeployerSettings(env);
  const { logger } = telemetry;
  let ecrClient: ECRClient | undefined;
  const ecr = (): ECRClient => (ecrClient ??= newEcrClient(region));
  const retry = createRetry({
    onRetry: (error, attempt, delayMs) =>
      logger.warn('retrying', { attempt, delayMs, reason: error.message }),
  });
  return {
    settings,
    images: createImageVerifier(ecr),
    clusters: createClusterConnector({ eksClient: newEksClient, defaultRegion: region }),
    builds: createBuildLookup(() => newCodeBuildClient(region)),
    notifier: createNotifier({
      client: () => newSnsClient(region),
      topicArn: settings.topicArn,
    }),
    telemetry,
    retry,
    now: () => new Date(),
    markImages: (outcome) => markDeployedImages(ecr, outcome, { retry, logger }),
    verify: parseVerifySettings(env),
  };
}
