import { Annotations, CfnOutput, Duration, Fn, Stack, StackProps } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { Construct } from 'constructs';
import {
  DeployerConfig,
  DeployerVpcConfig,
  EnvironmentConfig,
  RegistryConfig,
  ServiceConfig,
  projectName,
  repositoryName,
} from '../config';
import { Deployer, DeployerProps } from '../constructs/deployer';

export interface DeployerStackProps extends StackProps {
  readonly services: readonly ServiceConfig[];
  readonly registry: RegistryConfig;
  readonly environments: readonly EnvironmentConfig[];
  readonly deployer: DeployerConfig;
  /** Prefix of the CodeBuild project names (`<prefix>-<service>`). */
  readonly projectNamePrefix: string;
  /**
   * The cluster the app creates, which applies the deployer's Role and RoleBinding itself.
   * @default - none: every cluster exists already
   */
  readonly createdClusterName?: string;
}

/** Ids of the synth warnings about the deployer's Kubernetes access (to acknowledge them). */
export const ACCESS_WARNINGS = {
  rbacNeeded: 'dockercoins-ship:deployer:rbac-not-applied-by-the-app',
  editPolicy: 'dockercoins-ship:deployer:edit-policy',
} as const;

/**
 * The deployer: the EventBridge rule, the Lambda that patches the Deployments, its queues, topic,
 * alarms and EKS access entries. Stateless.
 *
 * Repositories, projects and clusters are named, not referenced across stacks: the app deploys
 * this stack after the registry, the builds and (when the app creates it) the cluster.
 */
export class DeployerStack extends Stack {
  public readonly deployer: Deployer;

  constructor(scope: Construct, id: string, props: DeployerStackProps) {
    super(scope, id, props);
    const { deployer: config, registry } = props;
    const vpc = config.vpc === undefined ? undefined : this.clusterVpc(config.vpc);

    // The construct id is part of every resource's logical id: keep it.
    this.deployer = new Deployer(this, 'Deployer', {
      services: props.services.map((service) => ({
        service,
        repository: ecr.Repository.fromRepositoryName(
          this,
          `Repository-${service.name}`,
          repositoryName(registry.repositoryPrefix, service.name),
        ),
        project: codebuild.Project.fromProjectName(
          this,
          `Project-${service.name}`,
          projectName(props.projectNamePrefix, service.name),
        ),
      })),
      // The deployer's settings carry where to deploy; how to verify goes in `verification`.
      environments: props.environments.map(
        ({ rollback: _r, verifyDeadlineSeconds: _d, verifyPollSeconds: _p, ...environment }) => ({
          ...environment,
          region: undefined,
        }),
      ),
      verification: {
        serviceDeadlines: Object.fromEntries(
          props.services.flatMap((s) =>
            s.verifyDeadlineSeconds === undefined
              ? []
              : [[s.name, Duration.seconds(s.verifyDeadlineSeconds)]],
          ),
        ),
        environmentDeadlines: Object.fromEntries(
          props.environments.flatMap((e) =>
            e.verifyDeadlineSeconds === undefined
              ? []
              : [[e.name, Duration.seconds(e.verifyDeadlineSeconds)]],
          ),
        ),
        environmentPollIntervals: Object.fromEntries(
          props.environments.flatMap((e) =>
            e.verifyPollSeconds === undefined
              ? []
              : [[e.name, Duration.seconds(e.verifyPollSeconds)]],
          ),
        ),
        noRollback: props.environments.filter((e) => e.rollback === false).map((e) => e.name),
      },
      releaseTagPattern: registry.releaseTagPattern,
      access: config.access,
      ...(vpc ?? {}),
      notificationEmail: config.notificationEmail,
      logRetention: config.logRetentionDays,
    });

    this.warnAboutAccess(props);
    const { deployer } = this;
    new CfnOutput(this, 'FunctionName', {
      description: 'The deployer Lambda (its log group holds every decision, keyed by build ARN)',
      value: deployer.function.functionName,
    });
    new CfnOutput(this, 'StateMachineArn', {
      description:
        'The deploy workflow: one execution per build (docs/deploys.md: read an execution, redrive one)',
      value: deployer.stateMachine.stateMachineArn,
    });
    new CfnOutput(this, 'DashboardName', {
      description: 'CloudWatch dashboard: deploy outcomes, TimeToReady, failures, queue depths',
      value: deployer.dashboard.dashboardName,
    });
    new CfnOutput(this, 'TopicArn', {
      description:
        'SNS topic with every deploy outcome and alarm (aws sns subscribe --protocol email …)',
      value: deployer.topic.topicArn,
    });
    new CfnOutput(this, 'UndeliveredEventsQueueUrl', {
      description:
        'Build events EventBridge could not start the deploy workflow with (message = the event; docs/deploys.md: redrive)',
      value: deployer.undeliveredEvents.queueUrl,
    });
    new CfnOutput(this, 'FailedInvocationsQueueUrl', {
      description:
        'Build events the deployer failed on after retries (message.requestPayload = the event; README: redrive)',
      value: deployer.failedInvocations.queueUrl,
    });
  }

  /**
   * One warning, on this stack: with `rbac`, the namespaces of clusters the app does not create
   * need k8s/rbac/deployer applied before the first deploy; `edit-policy` is broader than needed.
   */
  private warnAboutAccess(props: DeployerStackProps): void {
    if (props.deployer.access === 'edit-policy') {
      Annotations.of(this).addWarningV2(
        ACCESS_WARNINGS.editPolicy,
        'deployerAccess is "edit-policy": the deployer gets AmazonEKSEditPolicy in its namespaces, which ' +
          'includes reading and writing Secrets, exec into pods and acting as any service account there. ' +
          'Remove the key (the default, "rbac") for the Role in k8s/rbac/deployer (docs/security.md).',
      );
      return;
    }
    const outside = props.environments.filter((e) => e.clusterName !== props.createdClusterName);
    if (outside.length === 0) return;
    const targets = [...new Set(outside.map((e) => `${e.clusterName}/${e.namespace}`))].sort();
    Annotations.of(this).addWarningV2(
      ACCESS_WARNINGS.rbacNeeded,
      `The deployer enters ${targets.join(', ')} (cluster/namespace) as the Kubernetes group ` +
        '"dockercoins-deployer": apply k8s/rbac/deployer in each of those namespaces before the first deploy ' +
        '(kubectl apply -k k8s/rbac/deployer, with an overlay setting the namespace: docs/security.md), or its ' +
        'patches are refused with 403 Forbidden. Acknowledge this warning once the Role is in place.',
    );
  }

  /** The cluster's VPC, its subnets and security groups, by id: nothing is looked up at synth. */
  private clusterVpc(
    config: DeployerVpcConfig,
  ): Required<Pick<DeployerProps, 'vpc' | 'vpcSubnets' | 'securityGroups'>> {
    const vpc = ec2.Vpc.fromVpcAttributes(this, 'ClusterVpc', {
      vpcId: config.vpcId,
      // The Lambda is given its subnets by id below, so the VPC's zones are never read; CDK only
      // insists on some list.
      availabilityZones: Fn.getAzs(),
    });
    Annotations.of(vpc).acknowledgeWarning(
      '@aws-cdk/aws-ec2:vpcAttributeIsListTokenavailabilityZones',
      'Only the subnets given by id are used, never a selection by zone.',
    );
    const subnets = config.subnetIds.map((subnetId) => {
      const subnet = ec2.Subnet.fromSubnetId(this, `Subnet-${subnetId}`, subnetId);
      Annotations.of(subnet).acknowledgeWarning(
        '@aws-cdk/aws-ec2:noSubnetRouteTableId',
        'Lambda needs only the subnet id; nothing here reads its route table.',
      );
      return subnet;
    });
    const securityGroups = config.securityGroupIds.map((securityGroupId) =>
      ec2.SecurityGroup.fromSecurityGroupId(
        this,
        `SecurityGroup-${securityGroupId}`,
        securityGroupId,
      ),
    );
    return { vpc, vpcSubnets: { subnets }, securityGroups };
  }
}
