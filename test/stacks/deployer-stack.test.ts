import { CfnElement, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { createStacks, ShipStacks } from '../../lib/app';
import { resolveConfig } from '../../lib/config';
import { DEPLOYER_ENV } from '../../lib/deployer-contract';
import { parseVerifySettings } from '../../lib/verify-contract';
import { newApp } from '../support/app';

const OWNED = { sourceOwner: 'acme' };

function compose(context: Record<string, unknown>): ShipStacks {
  const { config } = resolveConfig({ ...OWNED, ...context });
  return createStacks(newApp(), config);
}

function id(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

describe('the Deployer stack', () => {
  let stacks: ShipStacks;
  let template: Template;
  beforeAll(() => {
    stacks = compose({});
    template = Template.fromStack(stacks.deployer);
  });

  test('is <prefix>-Deployer, deployed after the builds and the registry it names, without cross-stack references', () => {
    expect(stacks.deployer.stackName).toBe('DockerCoins-Deployer');
    expect(stacks.deployer.dependencies).toEqual([stacks.builds, stacks.registry]);
    expect(JSON.stringify(template.toJSON())).not.toMatch(/Fn::ImportValue|Fn::GetStackOutput/);
  });

  test('the rule names the projects of the Builds stack', () => {
    const projects = [...stacks.builds.imageBuilds.projects.values()].map(
      (p) => (p.node.defaultChild as codebuild.CfnProject).name,
    );

    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: { detail: { 'project-name': projects } },
    });
    expect(projects).toEqual([
      'DockerCoins-hasher',
      'DockerCoins-rng',
      'DockerCoins-webui',
      'DockerCoins-worker',
    ]);
  });

  test("DescribeImages names the Registry stack's repositories", () => {
    const repositories = [...stacks.registry.imageRegistry.repositories.values()].map(
      (r) => (r.node.defaultChild as ecr.CfnRepository).repositoryName,
    );
    const statement = (
      Object.values(template.findResources('AWS::IAM::Policy'))[0] as {
        Properties: { PolicyDocument: { Statement: { Sid: string; Resource: unknown[] }[] } };
      }
    ).Properties.PolicyDocument.Statement.find((s) => s.Sid === 'ConfirmImageDigests');

    expect(
      statement?.Resource.map((arn) => {
        const parts = (arn as { 'Fn::Join': [string, unknown[]] })['Fn::Join'][1];
        return String(parts[parts.length - 1]).replace(/^:repository\//, '');
      }),
    ).toEqual(repositories);
  });

  test('the default environment: an access entry on cluster dockercoins for each role (deploy, verify) mapping it to the deployer group, no access policy', () => {
    const entries = Object.values(template.findResources('AWS::EKS::AccessEntry')).map(
      (e) => (e as { Properties: Record<string, unknown> }).Properties,
    );
    const { deployer } = stacks.deployer;
    expect(entries).toEqual(
      [deployer.role, deployer.verifyRole].map((role) => ({
        ClusterName: 'dockercoins',
        PrincipalArn: { 'Fn::GetAtt': [id(stacks.deployer, role), 'Arn'] },
        Type: 'STANDARD',
        KubernetesGroups: ['dockercoins-deployer'],
      })),
    );
  });

  test('outputs: the function, the state machine, the dashboard, the topic and both dead-letter queues', () => {
    const { deployer } = stacks.deployer;
    const stack = stacks.deployer;

    expect(template.toJSON().Outputs).toEqual({
      FunctionName: {
        Description: expect.any(String) as string,
        Value: { Ref: id(stack, deployer.function) },
      },
      StateMachineArn: {
        Description: expect.stringContaining('redrive') as string,
        Value: { Ref: id(stack, deployer.stateMachine) },
      },
      DashboardName: {
        Description: expect.any(String) as string,
        Value: { Ref: id(stack, deployer.dashboard) },
      },
      TopicArn: {
        Description: expect.any(String) as string,
        Value: { Ref: id(stack, deployer.topic) },
      },
      UndeliveredEventsQueueUrl: {
        Description: expect.stringContaining('redrive') as string,
        Value: { Ref: id(stack, deployer.undeliveredEvents) },
      },
      FailedInvocationsQueueUrl: {
        Description: expect.stringContaining('redrive') as string,
        Value: { Ref: id(stack, deployer.failedInvocations) },
      },
    });
  });

  test('synth warns once that the existing cluster needs the Role, naming cluster and namespace', () => {
    const warnings = Annotations.fromStack(stacks.deployer).findWarning('*', Match.anyValue());
    expect(warnings.map((w) => w.entry.data)).toEqual([
      expect.stringMatching(
        /^The deployer enters dockercoins\/dockercoins \(cluster\/namespace\).*apply k8s\/rbac\/deployer.*\[ack: dockercoins-ship:deployer:rbac-not-applied-by-the-app\]$/s,
      ),
    ]);
    for (const other of [stacks.registry, stacks.builds]) {
      expect(Annotations.fromStack(other).findWarning('*', Match.anyValue())).toEqual([]);
    }
  });
});

describe("the deployer's Kubernetes access warnings", () => {
  const warningsOf = (stacks: ShipStacks): string[] =>
    Annotations.fromStack(stacks.deployer)
      .findWarning('*', Match.anyValue())
      .map((w) => w.entry.data as string);

  test('Given a created cluster, Then no warning: the app applies the Role itself', () => {
    expect(warningsOf(compose({ createCluster: true, initialImageTag: '6e0de7938dda' }))).toEqual(
      [],
    );
  });

  test('Given a created cluster and an environment on another one, Then the warning names only the other', () => {
    const warnings = warningsOf(
      compose({
        createCluster: true,
        initialImageTag: '6e0de7938dda',
        environments: JSON.stringify([
          { name: 'main', namespace: 'dockercoins', branches: ['main'] },
          { name: 'prod', namespace: 'shop', clusterName: 'prod', releaseTags: true },
        ]),
      }),
    );
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/enters prod\/shop \(cluster/);
    expect(warnings[0]).not.toMatch(/dockercoins\/dockercoins/);
  });

  test('Given edit-policy, Then one warning that it is broader than needed, and how to go back', () => {
    const warnings = warningsOf(compose({ deployerAccess: 'edit-policy' }));
    expect(warnings).toEqual([
      expect.stringMatching(
        /AmazonEKSEditPolicy.*Secrets.*exec.*Remove the key.*\[ack: dockercoins-ship:deployer:edit-policy\]$/s,
      ),
    ]);
  });
});

describe('configuration reaches the deployer', () => {
  test('Given a created cluster, Then the deployer also waits for the Cluster stack', () => {
    const stacks = compose({ createCluster: true, initialImageTag: '6e0de7938dda' });

    expect(stacks.deployer.dependencies).toEqual(
      expect.arrayContaining([stacks.builds, stacks.registry, stacks.cluster]),
    );
    expect(stacks.deployer.dependencies).toHaveLength(3);
  });

  test('Given environments on two clusters and rbac access, Then one group-mapping entry per cluster for each role (deploy, verify)', () => {
    const stacks = compose({
      deployerAccess: 'rbac',
      environments: JSON.stringify([
        { name: 'main', namespace: 'dockercoins', branches: ['main'] },
        { name: 'prod', namespace: 'dockercoins', clusterName: 'prod', releaseTags: true },
      ]),
    });

    const entries = Object.values(
      Template.fromStack(stacks.deployer).findResources('AWS::EKS::AccessEntry'),
    ).map((e) => (e as { Properties: Record<string, unknown> }).Properties);
    expect(entries.map((e) => [e.ClusterName, e.KubernetesGroups, e.AccessPolicies])).toEqual([
      ['dockercoins', ['dockercoins-deployer'], undefined],
      ['prod', ['dockercoins-deployer'], undefined],
      ['dockercoins', ['dockercoins-deployer'], undefined],
      ['prod', ['dockercoins-deployer'], undefined],
    ]);
  });

  test('Given verification keys on a service and an environment, Then they reach the deploy function; the deployer settings stay as they were', () => {
    const stacks = compose({
      services: [{ name: 'webui', verifyDeadlineSeconds: 300 }, 'hasher'],
      environments: JSON.stringify([
        { name: 'main', namespace: 'dockercoins', branches: ['main'] },
        {
          name: 'prod',
          namespace: 'dockercoins-prod',
          releaseTags: true,
          rollback: false,
          verifyDeadlineSeconds: 240,
          verifyPollSeconds: 10,
        },
      ]),
    });

    const resources = Template.fromStack(stacks.deployer).toJSON().Resources as Record<
      string,
      unknown
    >;
    const fn = resources[id(stacks.deployer, stacks.deployer.deployer.function)] as {
      Properties: { Environment: { Variables: Record<string, string> } };
    };
    const variables = fn.Properties.Environment.Variables;
    expect(parseVerifySettings(variables)).toEqual({
      pollSeconds: 5,
      deadlineSeconds: 180,
      serviceDeadlines: { webui: 300 },
      environmentDeadlines: { prod: 240 },
      environmentPollSeconds: { prod: 10 },
      noRollback: ['prod'],
    });
    // The deployer's own settings (where to deploy) carry none of it.
    expect(variables[DEPLOYER_ENV.environments]).not.toMatch(/rollback|verify/);
  });

  test('Given the VPC keys, Then the Lambda runs in those subnets with those security groups, without warnings', () => {
    const stacks = compose({
      deployerVpcId: 'vpc-0123456789abcdef0',
      deployerSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
      deployerSecurityGroupIds: 'sg-0123456789abcdef0',
    });

    Template.fromStack(stacks.deployer).hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: {
        SubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        SecurityGroupIds: ['sg-0123456789abcdef0'],
      },
    });
    // Only the reminder that the existing cluster needs the Role (tested above): nothing about the VPC.
    expect(
      Annotations.fromStack(stacks.deployer)
        .findWarning('*', Match.anyValue())
        .map((w) => w.entry.data as string)
        .filter((w) => !w.includes('rbac-not-applied-by-the-app')),
    ).toEqual([]);
  });

  test('Given an email and a log retention, Then the topic mails it and the logs are kept that long', () => {
    const stacks = compose({ notificationEmail: 'ops@example.com', deployerLogRetentionDays: 365 });
    const template = Template.fromStack(stacks.deployer);

    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
    });
    template.hasResourceProperties('AWS::Logs::LogGroup', { RetentionInDays: 365 });
  });

  test('Given another release tag pattern and stack prefix, Then the rule and the settings follow them', () => {
    const stacks = compose({ stackNamePrefix: 'Staging', releaseTagPattern: 'release-*' });

    expect(stacks.deployer.stackName).toBe('Staging-Deployer');
    Template.fromStack(stacks.deployer).hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        detail: { 'project-name': Match.arrayWith(['Staging-hasher']) },
      },
    });
    Template.fromStack(stacks.deployer).hasResourceProperties('AWS::Lambda::Function', {
      Environment: {
        Variables: Match.objectLike({ [DEPLOYER_ENV.releaseTagPattern]: 'release-*' }),
      },
    });
  });
});
