import { CfnOutput, Duration, RemovalPolicy, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { outputIdPart, RegistryConfig, ServiceConfig } from '../config';
import { ImageRegistry } from '../constructs/image-registry';

export { outputIdPart };

/** CloudFormation's limit on outputs per stack. */
export const MAX_STACK_OUTPUTS = 200;
/** RegistryUri and RedisImage; every service adds one more. */
const FIXED_OUTPUTS = 2;

export interface RegistryStackProps extends StackProps {
  readonly services: readonly ServiceConfig[];
  readonly registry: RegistryConfig;
  /** Create the pull-request repositories (`<repositoryPrefix>/pr/<service>`) for PR builds. */
  readonly pullRequestBuilds?: boolean;
  /** The build branches: one lifecycle rule each. @default ['main'] */
  readonly branches?: readonly string[];
}

/**
 * The stateful stack: ECR repositories hold images, so they live apart from the stateless build
 * and deploy resources and are retained by default.
 */
export class RegistryStack extends Stack {
  public readonly imageRegistry: ImageRegistry;

  constructor(scope: Construct, id: string, props: RegistryStackProps) {
    super(scope, id, props);
    const { registry, services } = props;
    const outputCount = services.length + FIXED_OUTPUTS;
    if (outputCount > MAX_STACK_OUTPUTS) {
      throw new Error(
        `${services.length} services need ${outputCount} outputs in ${this.stackName}, over CloudFormation's ` +
          `limit of ${MAX_STACK_OUTPUTS} per stack. Deploy at most ${MAX_STACK_OUTPUTS - FIXED_OUTPUTS} services per app ` +
          '(use a second app with another repositoryPrefix and stackNamePrefix).',
      );
    }

    // The construct id is a contract: changing it would replace every repository.
    this.imageRegistry = new ImageRegistry(this, 'Registry', {
      services: services.map((s) => s.name),
      repositoryPrefix: registry.repositoryPrefix,
      encryption: registry.encryption,
      untaggedImageExpiry: Duration.days(registry.untaggedImageExpiryDays),
      commitImagesToKeep: registry.commitImagesToKeep,
      branchImagesToKeep: registry.branchImagesToKeep,
      pullRequestImagesToKeep: registry.pullRequestImagesToKeep,
      pullRequestRepositories: props.pullRequestBuilds === true,
      branches: props.branches,
      releaseTagPattern: registry.releaseTagPattern,
      buildCacheTag: registry.buildCacheTag,
      removalPolicy: registry.removal === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN,
      pullAccountIds: registry.pullAccountIds,
      pullThroughCachePrefix: registry.pullThroughCachePrefix,
      redisImageTag: registry.redisImageTag,
    });

    new CfnOutput(this, 'RegistryUri', {
      description: "The seed's $REGISTRY: images are $REGISTRY/<service>:$TAG",
      value: this.imageRegistry.registryUri,
    });
    new CfnOutput(this, 'RedisImage', {
      description: 'The official redis image, through the ECR Public pull-through cache',
      value: this.imageRegistry.redisImageUri,
    });
    const outputOwners = new Map<string, string>();
    for (const [service, repository] of this.imageRegistry.repositories) {
      const outputId = `RepositoryUri${outputIdPart(service)}`;
      const owner = outputOwners.get(outputId);
      if (owner !== undefined) {
        throw new Error(
          `Services "${owner}" and "${service}" would share the stack output ${outputId}. ` +
            'Rename one of them in the services setting.',
        );
      }
      outputOwners.set(outputId, service);
      new CfnOutput(this, outputId, {
        description: `ECR repository of the ${service} image`,
        value: repository.repositoryUri,
      });
    }
  }
}
