import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { Aws, CfnElement, Stack, Token, Validations } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { AwsSolutionsChecks } from 'cdk-nag';
import { ServiceConfig } from '../../lib/config';
import {
  DEPLOYER_ENTRY,
  DeployedService,
  Deployer,
  DeployerProps,
  MAX_EVENT_PATTERN_CHARS,
  patternChars,
  projectNameSlices,
} from '../../lib/constructs/deployer';
import {
  DEPLOYER_METRICS,
  DeployerSettings,
  EnvironmentSettings,
  formatDeployerEnvironment,
} from '../../lib/deployer-contract';
import { DEPLOYER_GROUP } from '../../lib/k8s/dockercoins';
import { formatVerifySettings } from '../../lib/verify-contract';
import { BUNDLING_STACKS, newApp, REPO_ROOT } from '../support/app';

const MAIN: EnvironmentSettings = {
  name: 'main',
  clusterName: 'dockercoins',
  region: undefined,
  namespace: 'dockercoins',
  branches: ['main'],
  releaseTags: false,
};
const PROD: EnvironmentSettings = {
  ...MAIN,
  name: 'prod',
  namespace: 'dockercoins-prod',
  branches: [],
  releaseTags: true,
};

function service(name: string, deployment = name, container = deployment): ServiceConfig {
  return { name, buildContext: `dockercoins/${name}`, deployment, container };
}

/** Services as the Deployer stack gives them: repositories and projects by name. */
function deployed(stack: Stack, services: readonly ServiceConfig[]): DeployedService[] {
  return services.map((s) => ({
    service: s,
    repository: ecr.Repository.fromRepositoryName(stack, `Repo-${s.name}`, `dockercoins/${s.name}`),
    project: codebuild.Project.fromProjectName(stack, `Project-${s.name}`, `DockerCoins-${s.name}`),
  }));
}

const SERVICES = ['hasher', 'rng', 'webui', 'worker'].map((name) => service(name));

interface Built {
  stack: Stack;
  deployer: Deployer;
  template: Template;
}

/** Props of a test Deployer: services as configured, the rest as the construct takes them. */
type BuildProps = Partial<Omit<DeployerProps, 'services'>> & { services?: ServiceConfig[] };

function build(props: BuildProps = {}, stack: Stack = new Stack(newApp(), 'Test')): Built {
  const { services = SERVICES, ...rest } = props;
  const deployer = new Deployer(stack, 'Deployer', {
    services: deployed(stack, services),
    environments: [MAIN],
    ...rest,
  });
  return { stack, deployer, template: Template.fromStack(stack) };
}

/** A template value as text: Fn::Join concatenated, Ref and GetAtt written as `${…}`. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  const object = value as Record<string, unknown>;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(separator);
  }
  if ('Ref' in object) return `\${${String(object.Ref)}}`;
  if ('Fn::GetAtt' in object) return `\${${(object['Fn::GetAtt'] as string[]).join('.')}}`;
  throw new Error(`unexpected template value ${JSON.stringify(value)}`);
}

function id(stack: Stack, construct: { node: { defaultChild?: unknown } }): string {
  return stack.getLogicalId(construct.node.defaultChild as CfnElement);
}

/** The template's resource of this construct. */
function resourceOf(
  b: Built,
  construct: { node: { defaultChild?: unknown } } | CfnElement,
): {
  Properties: Record<string, unknown>;
} {
  const resources = b.template.toJSON().Resources as Record<
    string,
    { Properties: Record<string, unknown> }
  >;
  const logicalId =
    construct instanceof CfnElement ? b.stack.getLogicalId(construct) : id(b.stack, construct);
  return resources[logicalId]!;
}

function only<T>(record: Record<string, T>): T {
  const values = Object.values(record);
  expect(values).toHaveLength(1);
  return values[0]!;
}

interface Statement {
  Sid?: string;
  Effect: string;
  Action: string | string[];
  Resource: unknown;
}

/** The statements of the one policy attached to the deployer's role, resources as text. */
function roleStatements(b: Built): { sid?: string; actions: string[]; resources: string[] }[] {
  const policy = only(
    b.template.findResources('AWS::IAM::Policy', {
      Properties: { Roles: [{ Ref: id(b.stack, b.deployer.role) }] },
    }),
  ) as { Properties: { PolicyDocument: { Statement: Statement[] } } };
  return policy.Properties.PolicyDocument.Statement.map((s) => {
    expect(s.Effect).toBe('Allow');
    return {
      sid: s.Sid,
      actions: ([] as string[]).concat(s.Action),
      resources: ([] as unknown[]).concat(s.Resource).map(text),
    };
  });
}

const ARN = 'arn:${AWS::Partition}';
const REGION_ACCOUNT = '${AWS::Region}:${AWS::AccountId}';

describe('the function', () => {
  let b: Built;
  beforeAll(() => {
    b = build();
  });

  test('Node.js 22 on arm64, 256 MB, 120 s, handler `handler` of the bundle, no VPC, no reserved concurrency', () => {
    const fn = resourceOf(b, b.deployer.function);
    expect(fn.Properties).toMatchObject({
      Runtime: 'nodejs22.x',
      Architectures: ['arm64'],
      MemorySize: 256,
      Timeout: 120,
      Handler: 'index.handler',
      Role: { 'Fn::GetAtt': [id(b.stack, b.deployer.role), 'Arn'] },
    });
    expect(fn.Properties.VpcConfig).toBeUndefined();
    expect(fn.Properties.ReservedConcurrentExecutions).toBeUndefined();
  });

  test('its own log group, kept 90 days', () => {
    const fn = resourceOf(b, b.deployer.function) as unknown as {
      Properties: { LoggingConfig: { LogGroup: { Ref: string } } };
    };
    const groups = b.template.toJSON().Resources as Record<string, { Properties: unknown }>;
    expect(groups[fn.Properties.LoggingConfig.LogGroup.Ref]?.Properties).toEqual({
      RetentionInDays: 90,
    });
  });

  test('the environment: the contract variables for these settings, Powertools and source maps', () => {
    const settings: DeployerSettings = {
      registry: `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`,
      releaseTagPattern: 'v*',
      services: ['hasher', 'rng', 'webui', 'worker'].map((name) => ({
        service: name,
        project: `DockerCoins-${name}`,
        repository: `dockercoins/${name}`,
        targets: [{ deployment: name, container: name }],
      })),
      environments: [MAIN],
      topicArn: b.deployer.topic.topicArn,
    };

    const fn = resourceOf(b, b.deployer.function) as unknown as {
      Properties: { Environment: { Variables: Record<string, unknown> } };
    };
    expect(fn.Properties.Environment.Variables).toEqual(
      b.stack.resolve({
        ...formatDeployerEnvironment(settings),
        POWERTOOLS_SERVICE_NAME: 'dockercoins-deployer',
        POWERTOOLS_METRICS_NAMESPACE: 'DockerCoins/Deploy',
        NODE_OPTIONS: '--enable-source-maps',
        SHIP_VERIFY: formatVerifySettings({
          pollSeconds: 5,
          deadlineSeconds: 180,
          serviceDeadlines: {},
          environmentDeadlines: {},
          environmentPollSeconds: {},
          noRollback: [],
        }),
      }),
    );
  });

  test('a service run by another Deployment and container reaches the settings as such', () => {
    const miner = service('miner', 'worker', 'main');
    const { stack, deployer, template } = build({
      services: [miner],
      releaseTagPattern: 'release-*',
    });

    const expected = formatDeployerEnvironment({
      registry: `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`,
      releaseTagPattern: 'release-*',
      services: [
        {
          service: 'miner',
          project: 'DockerCoins-miner',
          repository: 'dockercoins/miner',
          targets: [{ deployment: 'worker', container: 'main' }],
        },
      ],
      environments: [MAIN],
      topicArn: deployer.topic.topicArn,
    });
    template.hasResourceProperties('AWS::Lambda::Function', {
      Environment: { Variables: Match.objectLike(stack.resolve(expected) as object) },
    });
  });
});

describe('the rule', () => {
  test('successful builds of exactly our projects start the workflow, retried 8 times over 2 hours, then kept', () => {
    const b = build();

    const rule = only(b.template.findResources('AWS::Events::Rule')) as {
      Properties: Record<string, unknown>;
    };
    expect(rule.Properties.EventPattern).toEqual({
      source: ['aws.codebuild'],
      'detail-type': ['CodeBuild Build State Change'],
      detail: {
        'build-status': ['SUCCEEDED'],
        'project-name': [
          'DockerCoins-hasher',
          'DockerCoins-rng',
          'DockerCoins-webui',
          'DockerCoins-worker',
        ],
      },
    });
    expect(rule.Properties.Targets).toEqual([
      {
        Id: 'Target0',
        Arn: { Ref: id(b.stack, b.deployer.stateMachine) },
        RoleArn: { 'Fn::GetAtt': [id(b.stack, b.deployer.ruleRole), 'Arn'] },
        RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
        DeadLetterConfig: {
          Arn: { 'Fn::GetAtt': [id(b.stack, b.deployer.undeliveredEvents), 'Arn'] },
        },
      },
    ]);
    // EventBridge no longer invokes a function: nothing grants it to.
    b.template.resourceCountIs('AWS::Lambda::Permission', 0);
  });

  test('Given more project names than one pattern holds, Then they are shared out over rules, each within the limit', () => {
    const services = Array.from({ length: 100 }, (_, i) =>
      service(`service-name-${String(i).padStart(3, '0')}`),
    );
    const b = build({ services });

    const rules = Object.values(b.template.findResources('AWS::Events::Rule')) as {
      Properties: { EventPattern: { detail: { 'project-name': string[] } }; Targets: unknown[] };
    }[];
    expect(rules.length).toBeGreaterThan(1);
    expect(rules).toHaveLength(b.deployer.rules.length);
    const names = rules.flatMap((r) => r.Properties.EventPattern.detail['project-name']);
    expect(names).toEqual(services.map((s) => `DockerCoins-${s.name}`));
    for (const rule of rules) {
      const chunk = rule.Properties.EventPattern.detail['project-name'];
      expect(JSON.stringify(rule.Properties.EventPattern).length).toBeLessThanOrEqual(
        MAX_EVENT_PATTERN_CHARS,
      );
      expect(patternChars(chunk)).toBeLessThanOrEqual(MAX_EVENT_PATTERN_CHARS);
      expect(rule.Properties.Targets).toHaveLength(1);
    }
    // The undelivered-events queue takes messages from every rule, and only from them.
    const policy = only(
      b.template.findResources('AWS::SQS::QueuePolicy', {
        Properties: { Queues: [{ Ref: id(b.stack, b.deployer.undeliveredEvents) }] },
      }),
    ) as {
      Properties: {
        PolicyDocument: {
          Statement: { Effect: string; Condition?: { ArnEquals: { 'aws:SourceArn': unknown } } }[];
        };
      };
    };
    expect(
      policy.Properties.PolicyDocument.Statement.filter((s) => s.Effect === 'Allow').map(
        (s) => s.Condition?.ArnEquals['aws:SourceArn'],
      ),
    ).toEqual(b.deployer.rules.map((r) => ({ 'Fn::GetAtt': [id(b.stack, r), 'Arn'] })));
  });

  test.each([
    ['one short name', ['DockerCoins-a'], 1],
    ['a slice exactly at the limit stays whole', fillTo(MAX_EVENT_PATTERN_CHARS), 1],
    ['one character more makes two slices', fillTo(MAX_EVENT_PATTERN_CHARS + 1), 2],
  ])('projectNameSlices: %s', (_name, names, slices) => {
    const result = projectNameSlices(names);

    expect(result).toHaveLength(slices);
    expect(result.flat()).toEqual(names);
    for (const slice of result)
      expect(patternChars(slice)).toBeLessThanOrEqual(MAX_EVENT_PATTERN_CHARS);
  });
});

/** Two project names whose one pattern is exactly `chars` long. */
function fillTo(chars: number): string[] {
  const first = 'DockerCoins-a';
  const base = patternChars([first, 'DockerCoins-']);
  return [first, `DockerCoins-${'b'.repeat(chars - base)}`];
}

describe('dead-letter queues and the failure destination', () => {
  let b: Built;
  beforeAll(() => {
    b = build();
  });

  test('both queues: SQS-managed encryption, 14 days, TLS only', () => {
    for (const queue of [b.deployer.undeliveredEvents, b.deployer.failedInvocations]) {
      const queueId = id(b.stack, queue);
      b.template.hasResource('AWS::SQS::Queue', {
        Properties: { SqsManagedSseEnabled: true, MessageRetentionPeriod: 1209600 },
      });
      const resources = b.template.toJSON().Resources as Record<string, { Properties: unknown }>;
      expect(resources[queueId]?.Properties).toEqual({
        SqsManagedSseEnabled: true,
        MessageRetentionPeriod: 1209600,
      });
      b.template.hasResourceProperties('AWS::SQS::QueuePolicy', {
        Queues: [{ Ref: queueId }],
        PolicyDocument: {
          Statement: Match.arrayWith([
            Match.objectLike({
              Effect: 'Deny',
              Action: 'sqs:*',
              Condition: { Bool: { 'aws:SecureTransport': 'false' } },
            }),
          ]),
        },
      });
    }
  });

  test('EventBridge may send to the undelivered-events queue from our rule only; nobody else is allowed anything', () => {
    const policies = b.template.findResources('AWS::SQS::QueuePolicy') as Record<
      string,
      {
        Properties: { Queues: unknown[]; PolicyDocument: { Statement: Record<string, unknown>[] } };
      }
    >;
    const allows = Object.values(policies).flatMap((p) =>
      p.Properties.PolicyDocument.Statement.filter((s) => s.Effect === 'Allow').map((s) => ({
        queue: p.Properties.Queues,
        principal: s.Principal,
        action: s.Action,
        condition: s.Condition,
      })),
    );
    expect(allows).toEqual([
      {
        queue: [{ Ref: id(b.stack, b.deployer.undeliveredEvents) }],
        principal: { Service: 'events.amazonaws.com' },
        action: 'sqs:SendMessage',
        condition: {
          ArnEquals: {
            'aws:SourceArn': { 'Fn::GetAtt': [id(b.stack, b.deployer.rules[0]!), 'Arn'] },
          },
        },
      },
    ]);
  });

  test('Lambda retries a failed invocation twice within an hour, then sends it to the failed-invocations queue', () => {
    const config = only(b.template.findResources('AWS::Lambda::EventInvokeConfig')) as {
      Properties: unknown;
    };
    expect(config.Properties).toEqual({
      FunctionName: { Ref: id(b.stack, b.deployer.function) },
      Qualifier: '$LATEST',
      MaximumRetryAttempts: 2,
      MaximumEventAgeInSeconds: 3600,
      DestinationConfig: {
        OnFailure: {
          Destination: { 'Fn::GetAtt': [id(b.stack, b.deployer.failedInvocations), 'Arn'] },
        },
      },
    });
  });
});

describe('IAM: exactly what the Lambda calls, on exactly our resources', () => {
  test('the role: only Lambda assumes it, no managed policy, one policy written out in full', () => {
    const b = build();

    const role = resourceOf(b, b.deployer.role);
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'lambda.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    });
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    expect(role.Properties.Policies).toBeUndefined();
    const logGroupId = id(b.stack, b.deployer.function.logGroup);
    expect(roleStatements(b)).toEqual([
      {
        sid: 'WriteLogs',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`\${${logGroupId}.Arn}`],
      },
      {
        sid: 'DescribeClusters',
        actions: ['eks:DescribeCluster'],
        resources: [`${ARN}:eks:${REGION_ACCOUNT}:cluster/dockercoins`],
      },
      {
        sid: 'ConfirmImageDigests',
        actions: ['ecr:DescribeImages'],
        resources: ['hasher', 'rng', 'webui', 'worker'].map(
          (s) => `${ARN}:ecr:${REGION_ACCOUNT}:repository/dockercoins/${s}`,
        ),
      },
      {
        // The marks of running and rollback images, on the service repositories only
        sid: 'MarkRunningImages',
        actions: ['ecr:BatchGetImage', 'ecr:PutImage'],
        resources: ['hasher', 'rng', 'webui', 'worker'].map(
          (s) => `${ARN}:ecr:${REGION_ACCOUNT}:repository/dockercoins/${s}`,
        ),
      },
      {
        sid: 'ReadBuilds',
        actions: ['codebuild:BatchGetBuilds'],
        resources: ['hasher', 'rng', 'webui', 'worker'].map(
          (s) => `${ARN}:codebuild:${REGION_ACCOUNT}:project/DockerCoins-${s}`,
        ),
      },
      {
        sid: 'PublishOutcomes',
        actions: ['sns:Publish'],
        resources: [`\${${id(b.stack, b.deployer.topic)}}`],
      },
      {
        sid: 'EncryptOutcomes',
        actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
        resources: [`\${${id(b.stack, b.deployer.topicKey)}.Arn}`],
      },
      {
        sid: 'KeepFailedInvocations',
        actions: ['sqs:SendMessage'],
        resources: [`\${${id(b.stack, b.deployer.failedInvocations)}.Arn}`],
      },
    ]);
  });

  test('the function is created after its policy (Lambda checks the destination and VPC permissions)', () => {
    const b = build();

    const policyId = Object.keys(b.template.findResources('AWS::IAM::Policy'))[0]!;
    b.template.hasResource('AWS::Lambda::Function', {
      DependsOn: Match.arrayWith([policyId]),
    });
  });

  test('Given environments on two clusters and two namespaces of one, Then DescribeCluster names each cluster once', () => {
    const b = build({
      environments: [MAIN, PROD, { ...PROD, name: 'eu', clusterName: 'eu-cluster' }],
    });

    expect(roleStatements(b).find((s) => s.sid === 'DescribeClusters')?.resources).toEqual([
      `${ARN}:eks:${REGION_ACCOUNT}:cluster/dockercoins`,
      `${ARN}:eks:${REGION_ACCOUNT}:cluster/eu-cluster`,
    ]);
  });

  test("Given too many services to list, Then the grants cover their names' longest common prefix only", () => {
    const services = Array.from({ length: 60 }, (_, i) =>
      service(`svc-${String(i).padStart(3, '0')}`),
    );
    const b = build({ services });

    const statements = roleStatements(b);
    expect(statements.find((s) => s.sid === 'ConfirmImageDigests')?.resources).toEqual([
      `${ARN}:ecr:${REGION_ACCOUNT}:repository/dockercoins/svc-0*`,
    ]);
    expect(statements.find((s) => s.sid === 'ReadBuilds')?.resources).toEqual([
      `${ARN}:codebuild:${REGION_ACCOUNT}:project/DockerCoins-svc-0*`,
    ]);
  });

  test('Given a VPC, Then the Lambda uses the given subnets and security groups, and may manage its network interfaces', () => {
    const stack = new Stack(newApp(), 'Test');
    const vpc = new ec2.Vpc(stack, 'Vpc', { maxAzs: 2, natGateways: 1 });
    const securityGroup = new ec2.SecurityGroup(stack, 'Sg', { vpc });
    const b = build({ vpc, securityGroups: [securityGroup] }, stack);

    b.template.hasResourceProperties('AWS::Lambda::Function', {
      VpcConfig: {
        SubnetIds: vpc.privateSubnets.map((s) => ({ Ref: id(stack, s) })),
        SecurityGroupIds: [{ 'Fn::GetAtt': [id(stack, securityGroup), 'GroupId'] }],
      },
    });
    expect(roleStatements(b).find((s) => s.sid === 'AttachToVpc')).toEqual({
      sid: 'AttachToVpc',
      actions: [
        'ec2:AssignPrivateIpAddresses',
        'ec2:CreateNetworkInterface',
        'ec2:DeleteNetworkInterface',
        'ec2:DescribeNetworkInterfaces',
        'ec2:DescribeSubnets',
        'ec2:UnassignPrivateIpAddresses',
      ],
      resources: ['*'],
    });
    // Still no managed policy: the L2 would attach AWSLambdaVPCAccessExecutionRole (logs on "*").
    b.template.hasResourceProperties('AWS::IAM::Role', { ManagedPolicyArns: Match.absent() });
  });
});

describe('EKS access entries', () => {
  test('edit-policy (opt-in): one entry per cluster, AmazonEKSEditPolicy scoped to its namespaces', () => {
    const b = build({
      access: 'edit-policy',
      environments: [PROD, MAIN, { ...MAIN, name: 'eu', clusterName: 'eu-cluster' }],
    });

    const entries = [...b.deployer.accessEntries.values()].map((e) => resourceOf(b, e).Properties);
    const policy = (namespaces: string[]): unknown => [
      {
        PolicyArn: {
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':eks::aws:cluster-access-policy/AmazonEKSEditPolicy',
            ],
          ],
        },
        AccessScope: { Type: 'namespace', Namespaces: namespaces },
      },
    ];
    const principal = { 'Fn::GetAtt': [id(b.stack, b.deployer.role), 'Arn'] };
    expect(entries).toEqual([
      {
        ClusterName: 'dockercoins',
        PrincipalArn: principal,
        Type: 'STANDARD',
        AccessPolicies: policy(['dockercoins', 'dockercoins-prod']),
      },
      {
        ClusterName: 'eu-cluster',
        PrincipalArn: principal,
        Type: 'STANDARD',
        AccessPolicies: policy(['dockercoins']),
      },
    ]);
  });

  test.each<[string, BuildProps]>([
    ['by default', {}],
    ['with rbac', { access: 'rbac' }],
  ])('%s: the entry maps the role to the deployer group, with no access policy', (_name, props) => {
    const b = build({ ...props, environments: [MAIN, PROD] });

    expect(b.deployer.accessEntries.size).toBe(1);
    const entry = resourceOf(b, [...b.deployer.accessEntries.values()][0]!);
    expect(entry.Properties).toEqual({
      ClusterName: 'dockercoins',
      PrincipalArn: { 'Fn::GetAtt': [id(b.stack, b.deployer.role), 'Arn'] },
      Type: 'STANDARD',
      KubernetesGroups: [DEPLOYER_GROUP],
    });
  });
});

describe('notifications and alarms', () => {
  let b: Built;
  beforeAll(() => {
    b = build();
  });

  test('the topic: encrypted with a rotated customer managed key that CloudWatch alarms may use, TLS only', () => {
    b.template.hasResourceProperties('AWS::KMS::Key', {
      EnableKeyRotation: true,
      KeyPolicy: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Allow',
            Principal: { Service: 'cloudwatch.amazonaws.com' },
            Action: ['kms:Decrypt', 'kms:GenerateDataKey*'],
          }),
        ]),
      },
    });
    b.template.hasResourceProperties('AWS::SNS::Topic', {
      KmsMasterKeyId: { 'Fn::GetAtt': [id(b.stack, b.deployer.topicKey), 'Arn'] },
    });
    b.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
    b.template.resourceCountIs('AWS::SNS::Subscription', 0);
  });

  test('Given an email, Then it is subscribed to the topic', () => {
    const { stack, deployer, template } = build({ notificationEmail: 'ops@example.com' });

    template.hasResourceProperties('AWS::SNS::Subscription', {
      Protocol: 'email',
      Endpoint: 'ops@example.com',
      TopicArn: { Ref: id(stack, deployer.topic) },
    });
  });

  test('six alarms, each on any value above zero, quiet without data, notifying the topic', () => {
    const alarms = Object.values(b.template.findResources('AWS::CloudWatch::Alarm')).map(
      (a) => (a as { Properties: Record<string, unknown> }).Properties,
    );
    const metric = (p: Record<string, unknown>): unknown => ({
      namespace: p.Namespace,
      name: p.MetricName,
      dimensions: p.Dimensions,
      statistic: p.Statistic,
    });
    expect(alarms.map(metric)).toEqual([
      {
        namespace: 'AWS/Lambda',
        name: 'Errors',
        dimensions: [{ Name: 'FunctionName', Value: { Ref: id(b.stack, b.deployer.function) } }],
        statistic: 'Sum',
      },
      ...[
        DEPLOYER_METRICS.failed,
        DEPLOYER_METRICS.unconfirmedBuilds,
        DEPLOYER_METRICS.notificationFailures,
      ].map((name) => ({
        namespace: DEPLOYER_METRICS.namespace,
        name,
        dimensions: [{ Name: 'service', Value: DEPLOYER_METRICS.serviceName }],
        statistic: 'Sum',
      })),
      ...[b.deployer.undeliveredEvents, b.deployer.failedInvocations].map((queue) => ({
        namespace: 'AWS/SQS',
        name: 'ApproximateNumberOfMessagesVisible',
        dimensions: [
          { Name: 'QueueName', Value: { 'Fn::GetAtt': [id(b.stack, queue), 'QueueName'] } },
        ],
        statistic: 'Maximum',
      })),
      ...['ExecutionsFailed', 'ExecutionsTimedOut'].map((name) => ({
        namespace: 'AWS/States',
        name,
        dimensions: [
          { Name: 'StateMachineArn', Value: { Ref: id(b.stack, b.deployer.stateMachine) } },
        ],
        statistic: 'Sum',
      })),
    ]);
    for (const alarm of alarms) {
      expect(alarm).toMatchObject({
        Threshold: 0,
        ComparisonOperator: 'GreaterThanThreshold',
        EvaluationPeriods: 1,
        TreatMissingData: 'notBreaching',
        AlarmActions: [{ Ref: id(b.stack, b.deployer.topic) }],
      });
      expect(alarm.AlarmDescription).toMatch(/\w+ .{40,}/);
    }
  });
});

describe('cdk-nag', () => {
  test.each<[string, BuildProps]>([
    ['the defaults', {}],
    ['rbac access and an email', { access: 'rbac', notificationEmail: 'ops@example.com' }],
    [
      'too many services to list (wildcards acknowledged)',
      {
        services: Array.from({ length: 60 }, (_, i) =>
          service(`svc-${String(i).padStart(3, '0')}`),
        ),
      },
    ],
  ])('AwsSolutions reports nothing unacknowledged for %s', (_name, props) => {
    const app = newApp();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
    build(props, new Stack(app, 'Test'));

    expect(() => app.synth()).not.toThrow();
  });

  test('AwsSolutions reports nothing unacknowledged in a VPC (the network interface wildcard acknowledged)', () => {
    const app = newApp();
    Validations.of(app).addPlugins(new AwsSolutionsChecks(app, { verbose: true }));
    const stack = new Stack(app, 'Test');
    const vpc = ec2.Vpc.fromVpcAttributes(stack, 'Vpc', {
      vpcId: 'vpc-0123456789abcdef0',
      availabilityZones: ['eu-west-1a'],
      privateSubnetIds: ['subnet-0123456789abcdef0'],
      privateSubnetRouteTableIds: ['rtb-0123456789abcdef0'],
    });
    build(
      {
        vpc,
        securityGroups: [
          ec2.SecurityGroup.fromSecurityGroupId(stack, 'Sg', 'sg-0123456789abcdef0'),
        ],
      },
      stack,
    );

    expect(() => app.synth()).not.toThrow();
  });
});

describe('validation: refused before anything is created', () => {
  const cases: [string, (stack: Stack) => BuildProps, RegExp][] = [
    ['no services', () => ({ services: [] }), /services is empty/],
    ['no environments', () => ({ environments: [] }), /environments is empty/],
    [
      'an environment in a region of its own',
      () => ({ environments: [{ ...PROD, region: 'us-east-1' }] }),
      /environment "prod" is in region us-east-1, but this stack deploys to whichever region it is deployed to.*access entry can only be created in the stack's own region/,
    ],
    [
      'vpcSubnets without a VPC',
      () => ({ vpcSubnets: { subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS } }),
      /vpcSubnets or securityGroups is set without vpc/,
    ],
  ];
  test.each(cases)('%s', (_name, props, expected) => {
    const stack = new Stack(newApp(), 'Test');

    expect(() => build(props(stack), stack)).toThrow(expected);
    expect(stack.node.findAll().filter((c) => c instanceof CfnElement)).toEqual([]);
  });

  test('a project named by a token', () => {
    const stack = new Stack(newApp(), 'Test');
    const project = new codebuild.Project(stack, 'Project', {
      buildSpec: codebuild.BuildSpec.fromObject({ version: '0.2' }),
    });

    expect(
      () =>
        new Deployer(stack, 'Deployer', {
          services: [
            {
              service: SERVICES[0]!,
              repository: ecr.Repository.fromRepositoryName(stack, 'Repo', 'dockercoins/hasher'),
              project,
            },
          ],
          environments: [MAIN],
        }),
    ).toThrow(/the project name of service "hasher" is a token; .*Project.fromProjectName/);
    expect(Token.isUnresolved(project.projectName)).toBe(true);
  });

  test('too many services to list, with names that share no prefix', () => {
    const stack = new Stack(newApp(), 'Test');
    const services = Array.from({ length: 60 }, (_, i) => ({
      service: service(`svc-${i}`),
      repository: ecr.Repository.fromRepositoryName(
        stack,
        `Repo-${i}`,
        `${String.fromCharCode(97 + (i % 26))}${i}/svc`,
      ),
      project: codebuild.Project.fromProjectName(stack, `Project-${i}`, `P${i}-svc`),
    }));

    expect(() => new Deployer(stack, 'Deployer', { services, environments: [MAIN] })).toThrow(
      /60 services' repository and project ARNs do not fit in the role's policy, and their names share no prefix/,
    );
  });

  test('an environment in the region of a region-specific stack is accepted', () => {
    const stack = new Stack(newApp(), 'Test', { env: { region: 'eu-west-1' } });

    expect(() => build({ environments: [{ ...MAIN, region: 'eu-west-1' }] }, stack)).not.toThrow();
  });
});

describe('the bundle (esbuild, locally)', () => {
  const outdir = mkdtempSync(path.join(tmpdir(), 'ship-deployer-bundle-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  test('is the minified handler with a source map and the AWS SDK inside, made without Docker', () => {
    // A Docker that always fails: if bundling tried Docker, synth would fail.
    const docker = process.env.CDK_DOCKER;
    process.env.CDK_DOCKER = '/bin/false';
    try {
      const app = newApp({ [BUNDLING_STACKS]: ['**'] }, { outdir });
      const stack = new Stack(app, 'Test');
      build({}, stack);
      app.synth();
    } finally {
      if (docker === undefined) delete process.env.CDK_DOCKER;
      else process.env.CDK_DOCKER = docker;
    }

    const bundles = readdirSync(outdir)
      .map((entry) => path.join(outdir, entry))
      .filter((dir) => existsSync(path.join(dir, 'index.js')));
    // The deploy, verify and report functions.
    expect(bundles).toHaveLength(3);
    const code = (dir: string): string => readFileSync(path.join(dir, 'index.js'), 'utf8');
    // Each client leaves its service's protocol name in the minified bundle.
    const ECR = 'AmazonEC2ContainerRegistry_V20150921';
    const CODEBUILD = 'BatchGetBuilds';
    const SNS = 'AmazonSimpleNotificationService';
    const EKS = '"DescribeCluster"';
    // The deploy function's bundle is the one with the ECR client.
    const assetDir = bundles.find((dir) => code(dir).includes(ECR))!;
    expect(assetDir).toBeDefined();
    // The verifier: EKS only (no ECR, CodeBuild or SNS client); it judges pods.
    const verifier = bundles.find((dir) => code(dir).includes('pod-template-hash'))!;
    expect(verifier).not.toBe(assetDir);
    expect(code(verifier)).toContain(EKS);
    for (const client of [ECR, CODEBUILD, SNS]) expect(code(verifier)).not.toContain(client);
    // The reporter: SNS only.
    const reporter = bundles.find((dir) => dir !== assetDir && dir !== verifier)!;
    expect(code(reporter)).toContain(SNS);
    for (const client of [ECR, CODEBUILD, EKS]) expect(code(reporter)).not.toContain(client);
    // The credentials come from the environment (lambda/env-credentials.ts): none of the default
    // chain's other providers, nor the STS and SSO clients they carry, is in any bundle.
    for (const dir of bundles) {
      for (const unused of [
        'AWSSecurityTokenServiceV20110615',
        'SWBPortalService',
        'AssumeRoleWithWebIdentity',
        'credential_process',
      ]) {
        expect(code(dir)).not.toContain(unused);
      }
    }
    const deployCode = code(assetDir);
    expect(existsSync(path.join(assetDir, 'index.js.map'))).toBe(true);
    expect(deployCode).toMatch(/sourceMappingURL=index\.js\.map/);
    // Minified: long lines (an unminified bundle averages under 50 characters a line).
    expect(deployCode.length / deployCode.split('\n').length).toBeGreaterThan(1000);
    // Bundled, not left to the runtime: no package the Lambda depends on is required at run time.
    // (The SDK's optional, uninstalled add-ons, such as @aws-sdk/signature-v4-crt, stay guarded
    // requires.)
    const dependencies = Object.keys(
      (
        JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
          dependencies: Record<string, string>;
        }
      ).dependencies,
    ).filter((name) => /^@(aws-sdk|smithy|aws-lambda-powertools)\//.test(name));
    expect(dependencies.length).toBeGreaterThan(0);
    for (const dir of bundles) {
      const required = [...code(dir).matchAll(/require\(["']([^"']+)["']\)/g)].map((m) => m[1]);
      expect(required.filter((name) => dependencies.includes(name!))).toEqual([]);
    }
    expect(DEPLOYER_ENTRY).toMatch(/lambda\/deployer\/handler\.ts$/);
    // The function's handler setting is `index.handler`: the bundle must export a function of
    // that name, and load on its own (in a child process, as Lambda's Node.js would).
    for (const dir of bundles) {
      const load = spawnSync(
        process.execPath,
        [
          '--enable-source-maps',
          '-e',
          `process.stdout.write(typeof require(${JSON.stringify(path.join(dir, 'index.js'))}).handler)`,
        ],
        { encoding: 'utf8', cwd: tmpdir() },
      );
      expect({ status: load.status, stdout: load.stdout, stderr: load.stderr }).toEqual({
        status: 0,
        stdout: 'function',
        stderr: '',
      });
    }
  });
});
