import { Annotations, App, Stack, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ConfigWarning, ShipConfig } from './config';
import { RegistryStack } from './stacks/registry-stack';

/** The stacks of one DockerCoins app. */
export interface ShipStacks {
  readonly registry: RegistryStack;
}

/**
 * Composes the app's stacks from a validated configuration. Environment-agnostic: no account or
 * region is pinned and nothing is looked up, so synth needs no credentials.
 */
export function createStacks(
  app: App,
  config: ShipConfig,
  warnings: readonly ConfigWarning[] = [],
): ShipStacks {
  const registry = new RegistryStack(app, `${config.stackNamePrefix}-Registry`, {
    description:
      'DockerCoins images: ECR repositories and the ECR Public pull-through cache (stateful)',
    services: config.services,
    registry: config.registry,
  });
  const stacks: ShipStacks = { registry };
  for (const stack of Object.values(stacks) as Stack[]) {
    for (const warning of warnings) {
      Annotations.of(stack).addWarningV2(`dockercoins-ship:config:${warning.key}`, warning.message);
    }
  }
  return stacks;
}

/**
 * Runs cdk-nag's AwsSolutions pack over every stack when the app synthesizes (a CDK policy
 * validation plugin): an unacknowledged finding fails `cdk synth`. Acknowledgements live next to
 * the resources they concern, each with its reason, and are written into the template metadata so
 * that a reviewer of the template sees them too.
 */
export function addComplianceChecks(app: App): void {
  Validations.of(app).addPlugins(
    new AwsSolutionsChecks(app, { verbose: true, writeSuppressionsToCloudFormation: true }),
  );
}
