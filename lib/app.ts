import { App, Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ShipConfig } from './config';
import { BuildsStack } from './stacks/builds-stack';
import { ClusterStack } from './stacks/cluster-stack';
import { DeployerStack } from './stacks/deployer-stack';
import { RegistryStack } from './stacks/registry-stack';

/** The stacks of one DockerCoins app. */
export interface ShipStacks {
  readonly registry: RegistryStack;
  readonly builds: BuildsStack;
  /** Only with `createCluster`. */
  readonly cluster?: ClusterStack;
  readonly deployer: DeployerStack;
}

/**
 * Composes the app's stacks from a validated configuration. Environment-agnostic: no account or
 * region is pinned and nothing is looked up, so synth needs no credentials. Configuration warnings
 * are the entry's to print (once per synth, not once per stack): see bin/app.ts.
 */
export function createStacks(app: App, config: ShipConfig): ShipStacks {
  const registry = new RegistryStack(app, `${config.stackNamePrefix}-Registry`, {
    description:
      'DockerCoins images: ECR repositories and the ECR Public pull-through cache (stateful)',
    services: config.services,
    registry: config.registry,
    pullRequestBuilds: config.build.pullRequests,
    branches: config.build.branches,
  });
  const builds = new BuildsStack(app, `${config.stackNamePrefix}-Builds`, {
    description: 'DockerCoins builds: one CodeBuild project per service (stateless)',
    services: config.services,
    registry: config.registry,
    source: config.source,
    build: config.build,
    projectNamePrefix: config.stackNamePrefix,
  });
  // Builds push to the registry's repositories: deploy the registry first.
  builds.addStackDependency(registry);
  let cluster: ClusterStack | undefined;
  if (config.cluster.create) {
    cluster = new ClusterStack(app, `${config.stackNamePrefix}-Cluster`, {
      description:
        'DockerCoins cluster: an EKS Auto Mode cluster in its own VPC, DockerCoins installed',
      clusterName: config.clusterName,
      namespaces: [
        ...new Set(
          config.environments
            .filter((e) => e.clusterName === config.clusterName)
            .map((e) => e.namespace),
        ),
      ],
      services: config.services,
      registry: config.registry,
      cluster: config.cluster,
    });
    // Nodes pull from the registry's repositories and its pull-through cache: deploy it first.
    cluster.addStackDependency(registry);
  }
  const deployer = new DeployerStack(app, `${config.stackNamePrefix}-Deployer`, {
    description:
      'DockerCoins deployer: deploys each successful build to its environments on EKS (stateless)',
    services: config.services,
    registry: config.registry,
    environments: config.environments,
    deployer: config.deployer,
    projectNamePrefix: config.stackNamePrefix,
    ...(config.cluster.create ? { createdClusterName: config.clusterName } : {}),
  });
  // It names the projects and repositories it watches and reads, and the access entries it makes
  // need their cluster: deploy those first.
  deployer.addStackDependency(builds);
  deployer.addStackDependency(registry);
  if (cluster !== undefined) deployer.addStackDependency(cluster);
  return cluster === undefined
    ? { registry, builds, deployer }
    : { registry, builds, cluster, deployer };
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
