import { CfnOutput, Duration, Stack, StackProps } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import {
  BuildConfig,
  MAX_SERVICES,
  pullRequestRepositoryName,
  RegistryConfig,
  ServiceConfig,
  SourceConfig,
} from '../config';
import { ImageBuilds } from '../constructs/image-builds';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { repositoryName } from '../constructs/image-registry';
import { outputIdPart } from './registry-stack';

/** Services one Builds stack holds: the configuration's limit (see MAX_SERVICES), checked again here. */
export const MAX_BUILT_SERVICES = MAX_SERVICES;

export interface BuildsStackProps extends StackProps {
  readonly services: readonly ServiceConfig[];
  readonly registry: RegistryConfig;
  readonly source: SourceConfig;
  readonly build: BuildConfig;
  /** Prefix of the CodeBuild project names. */
  readonly projectNamePrefix: string;
}

/**
 * The stateless build side: one CodeBuild project per service. Safe to destroy and recreate.
 *
 * Repositories are referenced by their fixed names, not through cross-stack exports: the two
 * stacks stay independently updatable, and the app orders their deployment instead.
 */
export class BuildsStack extends Stack {
  public readonly imageBuilds: ImageBuilds;

  constructor(scope: Construct, id: string, props: BuildsStackProps) {
    super(scope, id, props);
    const { build, registry } = props;
    if (props.services.length > MAX_BUILT_SERVICES) {
      throw new Error(
        `${props.services.length} services would put ${this.stackName} over CloudFormation's 1 MB template limit: ` +
          `one Builds stack holds at most ${MAX_BUILT_SERVICES} services. Split them over two apps ` +
          '(another stackNamePrefix and repositoryPrefix).',
      );
    }

    // The construct id is part of every resource's logical id: keep it.
    this.imageBuilds = new ImageBuilds(this, 'Builds', {
      services: props.services.map((service) => ({
        service,
        repository: ecr.Repository.fromRepositoryName(
          this,
          `Repository-${service.name}`,
          repositoryName(registry.repositoryPrefix, service.name),
        ),
        ...(build.pullRequests
          ? {
              pullRequestRepository: ecr.Repository.fromRepositoryName(
                this,
                `PullRequestRepository-${service.name}`,
                pullRequestRepositoryName(registry.repositoryPrefix, service.name),
              ),
            }
          : {}),
      })),
      source: props.source,
      branches: build.branches,
      releaseTagPattern: registry.releaseTagPattern,
      sharedPaths: build.sharedPaths,
      pullRequestBuilds: build.pullRequests,
      architecture: build.architecture,
      timeout: Duration.minutes(build.timeoutMinutes),
      concurrentBuildLimit: build.concurrentBuildLimit,
      logRetention: build.logRetentionDays,
      buildCacheTag: registry.buildCacheTag,
      projectNamePrefix: props.projectNamePrefix,
      pullThroughCachePrefix: registry.pullThroughCachePrefix,
    });

    for (const [service, project] of this.imageBuilds.projects) {
      new CfnOutput(this, `BuildProject${outputIdPart(service)}`, {
        description: `CodeBuild project that builds the ${service} image (aws codebuild start-build --project-name …)`,
        value: project.projectName,
      });
    }
  }
}
