import { CfnElement, Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import aslValidator from 'asl-validator';
import { StateMachine } from 'aws-local-stepfunctions';
import { ServiceConfig } from '../../lib/config';
import { Deployer, DeployerProps } from '../../lib/constructs/deployer';
import { TRANSIENT_ERRORS, WORKFLOW_STATES as S } from '../../lib/constructs/deploy-workflow';
import { EnvironmentSettings } from '../../lib/deployer-contract';
import { DEPLOYER_GROUP } from '../../lib/k8s/dockercoins';
import {
  deadlineOf,
  formatVerifySettings,
  parseVerifySettings,
  pollOf,
  rollsBack,
  VERIFY_ENV,
} from '../../lib/verify-contract';
import { newApp } from '../support/app';
import { allStates, predecessors, synthesizedDefinition } from '../support/workflow';

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
const service = (name: string): ServiceConfig => ({
  name,
  buildContext: `dockercoins/${name}`,
  deployment: name,
  container: name,
});

interface Built {
  stack: Stack;
  deployer: Deployer;
  template: Template;
}

function build(props: Partial<DeployerProps> = {}): Built {
  const stack = new Stack(newApp(), 'Test');
  const deployer = new Deployer(stack, 'Deployer', {
    services: ['hasher', 'rng', 'webui', 'worker'].map((name) => ({
      service: service(name),
      repository: ecr.Repository.fromRepositoryName(stack, `Repo-${name}`, `dockercoins/${name}`),
      project: codebuild.Project.fromProjectName(stack, `Project-${name}`, `DockerCoins-${name}`),
    })),
    environments: [MAIN],
    ...props,
  });
  return { stack, deployer, template: Template.fromStack(stack) };
}

const id = (b: Built, c: { node: { defaultChild?: unknown } }): string =>
  b.stack.getLogicalId(c.node.defaultChild as CfnElement);

function resources(
  b: Built,
): Record<string, { Type: string; Properties: Record<string, unknown> }> {
  return b.template.toJSON().Resources as Record<
    string,
    { Type: string; Properties: Record<string, unknown> }
  >;
}

/** The statements of the policy attached to this role, resources as given in the template. */
function statementsOf(b: Built, role: { node: { defaultChild?: unknown } }): unknown[] {
  const policies = Object.values(resources(b)).filter(
    (r) =>
      r.Type === 'AWS::IAM::Policy' &&
      JSON.stringify(r.Properties.Roles) === JSON.stringify([{ Ref: id(b, role) }]),
  );
  expect(policies).toHaveLength(1);
  return (policies[0]!.Properties.PolicyDocument as { Statement: unknown[] }).Statement;
}

function trustOf(b: Built, role: { node: { defaultChild?: unknown } }): unknown {
  const r = resources(b)[id(b, role)]!;
  expect(r.Properties.ManagedPolicyArns).toBeUndefined();
  expect(r.Properties.Policies).toBeUndefined();
  return r.Properties.AssumeRolePolicyDocument;
}

const arnOf = (b: Built, c: { node: { defaultChild?: unknown } }): unknown => ({
  'Fn::GetAtt': [id(b, c), 'Arn'],
});

describe('the synthesized definition', () => {
  const b = build();
  const { definition, text, arns } = synthesizedDefinition(b.stack, b.deployer);
  const states = allStates(definition);

  test('is valid States Language (asl-validator) and loads in aws-local-stepfunctions with ARN and path checks', () => {
    const result = aslValidator(JSON.parse(text));
    expect(result.errorsText('\n')).toBe('');
    expect(result.isValid).toBe(true);
    expect(
      () =>
        new StateMachine(definition as never, {
          validationOptions: { checkArn: true, checkPaths: true },
        }),
    ).not.toThrow();
  });

  test('Deploy → Verify (Map) → Report → Outcome; the Map runs Check → Judge in each iteration', () => {
    expect(definition.StartAt).toBe(S.deploy);
    expect(states.get(S.deploy)?.Next).toBe(S.verify);
    expect(states.get(S.verify)?.Next).toBe(S.report);
    expect(states.get(S.report)?.Next).toBe(S.outcome);
    const map = states.get(S.verify)!;
    expect(map).toMatchObject({
      Type: 'Map',
      ItemsPath: '$.targets',
      MaxConcurrency: 10,
      ResultPath: '$.verdicts',
    });
    expect(map.ItemProcessor?.StartAt).toBe(S.check);
    expect(states.get(S.check)?.Next).toBe(S.judge);
    expect(states.get(S.rollback)?.Next).toBe(S.judge);
    expect(states.get(S.wait)).toMatchObject({
      Type: 'Wait',
      SecondsPath: '$.pollSeconds',
      Next: S.check,
    });
    for (const end of [
      S.verified,
      S.rolledBack,
      S.verifyFailed,
      S.rollbackFailed,
      S.stopped,
      S.done,
    ]) {
      expect(states.get(end)?.Type).toBe('Succeed');
    }
    expect(states.get(S.failed)).toMatchObject({ Type: 'Fail', Error: 'DeployNotVerified' });
  });

  test('every way into Check passes one Wait (what the local run moves the fake clock on), and only Judge waits', () => {
    expect(predecessors(definition, S.check)).toEqual([S.wait]);
    expect(predecessors(definition, S.wait)).toEqual([S.judge]);
    expect(predecessors(definition, S.rollback)).toEqual([S.judge]);
  });

  test('each Task: our function by ARN, its response as the output, an explicit timeout above the function timeout, bounded retries', () => {
    const tasks = [...states].filter(([, s]) => s.Type === 'Task');
    expect(tasks.map(([name]) => name).sort()).toEqual(
      [S.check, S.deploy, S.report, S.rollback].sort(),
    );
    const expected: Record<string, { arn: string; timeout: number }> = {
      [S.deploy]: { arn: arns.deploy, timeout: 130 },
      [S.check]: { arn: arns.verify, timeout: 100 },
      [S.rollback]: { arn: arns.verify, timeout: 100 },
      [S.report]: { arn: arns.report, timeout: 40 },
    };
    for (const [name, state] of tasks) {
      expect({ name, resource: state.Resource, timeout: state.TimeoutSeconds }).toEqual({
        name,
        resource: expected[name]!.arn,
        timeout: expected[name]!.timeout,
      });
      expect(state.Retry).toEqual([
        {
          ErrorEquals: [
            'Lambda.ClientExecutionTimeoutException',
            'Lambda.ServiceException',
            'Lambda.AWSLambdaException',
            'Lambda.SdkClientException',
          ],
          IntervalSeconds: 2,
          MaxAttempts: 6,
          BackoffRate: 2,
        },
        {
          ErrorEquals: [...TRANSIENT_ERRORS],
          IntervalSeconds: 5,
          MaxAttempts: 3,
          BackoffRate: 2,
          JitterStrategy: 'FULL',
        },
      ]);
    }
    // The Deploy step is told its execution: the verification lease names it.
    expect(states.get(S.deploy)?.Parameters).toEqual({
      'event.$': '$',
      'execution.$': '$$.Execution.Id',
    });
    expect(states.get(S.check)?.Parameters).toEqual({ action: 'check', 'item.$': '$' });
    expect(states.get(S.rollback)?.Parameters).toEqual({ action: 'rollback', 'item.$': '$' });
  });

  test('the Judge: progressing waits; a failure rolls back only in phase verify with rollback allowed; an unknown verdict fails loudly', () => {
    const judge = states.get(S.judge) as unknown as {
      Choices: { Next: string }[];
      Default: string;
    };
    expect(judge.Choices.map((c) => c.Next)).toEqual([
      S.wait,
      S.verified,
      S.rolledBack,
      S.rollback,
      S.verifyFailed,
      S.rollbackFailed,
      S.stopped,
    ]);
    expect(JSON.stringify(judge.Choices[3])).toContain(
      '"Variable":"$.rollback","BooleanEquals":true',
    );
    expect(judge.Default).toBe(S.unknownVerdict);
    expect(states.get(S.unknownVerdict)?.Type).toBe('Fail');
  });
});

describe('the state machine', () => {
  test('Standard, every event logged with its data to its own log group, timed out after two deadlines and 30 minutes, run by its role', () => {
    const b = build();
    const machine = resources(b)[id(b, b.deployer.stateMachine)]!;
    expect(machine.Properties.StateMachineType).toBe('STANDARD');
    expect(machine.Properties.RoleArn).toEqual(arnOf(b, b.deployer.stateMachineRole));
    expect(machine.Properties.LoggingConfiguration).toMatchObject({
      Level: 'ALL',
      IncludeExecutionData: true,
    });
    const { definition } = synthesizedDefinition(b.stack, b.deployer);
    expect(definition.TimeoutSeconds).toBe(2 * 180 + 1800);
    // Created after its policy: Step Functions checks the log delivery permissions at creation.
    const dependsOn = (b.template.toJSON().Resources as Record<string, { DependsOn?: string[] }>)[
      id(b, b.deployer.stateMachine)
    ]!.DependsOn;
    expect(dependsOn?.some((d) => d.startsWith('DeployerWorkflowPolicy'))).toBe(true);
  });
});

describe('IAM: each edge allowed exactly', () => {
  const b = build({ environments: [MAIN, { ...PROD, clusterName: 'prod-cluster' }] });
  const fnArns = [b.deployer.function, b.deployer.verifyFunction, b.deployer.reportFunction].map(
    (fn) => arnOf(b, fn),
  );

  test('the rules start executions of our state machine only, through a role only EventBridge assumes', () => {
    expect(trustOf(b, b.deployer.ruleRole)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'events.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    });
    expect(statementsOf(b, b.deployer.ruleRole)).toEqual([
      {
        Sid: 'StartDeploys',
        Effect: 'Allow',
        Action: 'states:StartExecution',
        Resource: { Ref: id(b, b.deployer.stateMachine) },
      },
    ]);
  });

  test('the state machine invokes exactly our three functions (no versions, no aliases), and delivers its logs', () => {
    expect(trustOf(b, b.deployer.stateMachineRole)).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'states.amazonaws.com' },
          Action: 'sts:AssumeRole',
        },
      ],
    });
    expect(statementsOf(b, b.deployer.stateMachineRole)).toEqual([
      {
        Sid: 'InvokeSteps',
        Effect: 'Allow',
        Action: 'lambda:InvokeFunction',
        Resource: expect.arrayContaining(fnArns) as unknown,
      },
      {
        Sid: 'DeliverLogs',
        Effect: 'Allow',
        Action: [
          'logs:CreateLogDelivery',
          'logs:DeleteLogDelivery',
          'logs:DescribeLogGroups',
          'logs:DescribeResourcePolicies',
          'logs:GetLogDelivery',
          'logs:ListLogDeliveries',
          'logs:PutResourcePolicy',
          'logs:UpdateLogDelivery',
        ],
        Resource: '*',
      },
    ]);
    const invoke = statementsOf(b, b.deployer.stateMachineRole)[0] as { Resource: unknown[] };
    expect(invoke.Resource).toHaveLength(3);
    // No function grants anyone an invocation by resource policy.
    b.template.resourceCountIs('AWS::Lambda::Permission', 0);
  });

  test('the verify function: its logs and DescribeCluster of each cluster; no ECR, CodeBuild, SNS', () => {
    const logs = b.deployer.verifyFunction.logGroup.node.defaultChild as CfnElement;
    expect(statementsOf(b, b.deployer.verifyRole)).toEqual([
      {
        Sid: 'WriteLogs',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [b.stack.getLogicalId(logs), 'Arn'] },
      },
      {
        Sid: 'DescribeClusters',
        Effect: 'Allow',
        Action: 'eks:DescribeCluster',
        Resource: ['dockercoins', 'prod-cluster'].map((name) => ({
          'Fn::Join': [
            '',
            [
              'arn:',
              { Ref: 'AWS::Partition' },
              ':eks:',
              { Ref: 'AWS::Region' },
              ':',
              { Ref: 'AWS::AccountId' },
              `:cluster/${name}`,
            ],
          ],
        })),
      },
    ]);
  });

  test('the report function: its logs, Publish to our topic, its key', () => {
    const logs = b.deployer.reportFunction.logGroup.node.defaultChild as CfnElement;
    expect(statementsOf(b, b.deployer.reportRole)).toEqual([
      {
        Sid: 'WriteLogs',
        Effect: 'Allow',
        Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        Resource: { 'Fn::GetAtt': [b.stack.getLogicalId(logs), 'Arn'] },
      },
      {
        Sid: 'PublishOutcomes',
        Effect: 'Allow',
        Action: 'sns:Publish',
        Resource: { Ref: id(b, b.deployer.topic) },
      },
      {
        Sid: 'EncryptOutcomes',
        Effect: 'Allow',
        Action: ['kms:Decrypt', 'kms:GenerateDataKey'],
        Resource: arnOf(b, b.deployer.topicKey),
      },
    ]);
  });

  test('the verify role gets its own access entry per cluster, with the same access as the deploy role', () => {
    for (const access of ['edit-policy', 'rbac'] as const) {
      const built = build({ access, environments: [MAIN, PROD] });
      const entries = Object.values(resources(built))
        .filter((r) => r.Type === 'AWS::EKS::AccessEntry')
        .map((r) => r.Properties);
      expect(entries).toHaveLength(2);
      const [deploy, verify] = entries;
      expect(verify).toEqual({ ...deploy, PrincipalArn: arnOf(built, built.deployer.verifyRole) });
      if (access === 'rbac') expect(verify?.KubernetesGroups).toEqual([DEPLOYER_GROUP]);
    }
  });
});

describe('dashboard and the ExecutionsFailed alarm', () => {
  const b = build();

  test('the dashboard shows outcomes, TimeToReady p50 and p90, failures and queue depths', () => {
    const dashboard = Object.values(resources(b)).find(
      (r) => r.Type === 'AWS::CloudWatch::Dashboard',
    );
    const body = JSON.stringify(b.stack.resolve(dashboard?.Properties.DashboardBody));
    for (const text of [
      'Deploy outcomes',
      '\\"Verified\\"',
      '\\"RolledBack\\"',
      '\\"VerifyFailed\\"',
      '\\"RollbackFailed\\"',
      '\\"TimeToReady\\"',
      '\\"stat\\":\\"p50\\"',
      '\\"stat\\":\\"p90\\"',
      'ExecutionsFailed',
      'ApproximateNumberOfMessagesVisible',
    ]) {
      expect({ text, found: body.includes(text) }).toEqual({ text, found: true });
    }
  });

  test('an execution that fails alarms the topic', () => {
    b.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      Namespace: 'AWS/States',
      MetricName: 'ExecutionsFailed',
      Dimensions: [{ Name: 'StateMachineArn', Value: { Ref: id(b, b.deployer.stateMachine) } }],
      Threshold: 0,
      ComparisonOperator: 'GreaterThanThreshold',
      AlarmActions: [{ Ref: id(b, b.deployer.topic) }],
    });
  });
});

describe('stateful resources keep their logical ids', () => {
  test.each([
    ['topic', 'DeployerTopic20E1680A'],
    ['topicKey', 'DeployerTopicKey1A34BC65'],
    ['undeliveredEvents', 'DeployerUndeliveredEvents8730427D'],
    ['failedInvocations', 'DeployerFailedInvocations8AEEDB96'],
    ['function', 'DeployerFunction8445E917'],
    ['role', 'DeployerRole36024D4B'],
  ] as const)('%s is %s, as before the workflow', (name, logicalId) => {
    const b = build();
    expect(id(b, b.deployer[name])).toBe(logicalId);
  });

  test('the first rule keeps its id', () => {
    const b = build();
    expect(id(b, b.deployer.rules[0]!)).toBe('DeployerOnBuildSucceeded37D79760');
  });
});

describe('the deadline of a service in an environment', () => {
  const settings = {
    pollSeconds: 5,
    deadlineSeconds: 180,
    serviceDeadlines: { webui: 300 },
    environmentDeadlines: { prod: 240, eu: 600 },
    environmentPollSeconds: { prod: 10 },
    noRollback: ['eu'],
  };
  test.each([
    ['hasher', 'main', 180, 5, true],
    ['webui', 'main', 300, 5, true],
    ['hasher', 'prod', 240, 10, true],
    ['webui', 'prod', 300, 10, true],
    ['webui', 'eu', 600, 5, false],
  ])('%s in %s: %d s, polled every %d s, rolls back: %p', (svc, env, deadline, poll, rolls) => {
    expect(deadlineOf(settings, svc, env)).toBe(deadline);
    expect(pollOf(settings, env)).toBe(poll);
    expect(rollsBack(settings, env)).toBe(rolls);
  });

  test.each([
    ['not JSON', '{', /SHIP_VERIFY is .*; expected JSON\./],
    [
      'a poll of 0',
      JSON.stringify({ ...settings, pollSeconds: 0 }),
      /"pollSeconds" a whole number of seconds from 1 to 60/,
    ],
    [
      'a deadline as text',
      JSON.stringify({ ...settings, serviceDeadlines: { webui: '300' } }),
      /"serviceDeadlines" an object of service → seconds/,
    ],
    [
      'no noRollback',
      JSON.stringify({ ...settings, noRollback: undefined }),
      /"noRollback" an array of environment names/,
    ],
  ])('the variable refused: %s', (_what, raw, message) => {
    expect(() => parseVerifySettings({ [VERIFY_ENV]: raw })).toThrow(message);
  });

  test('the variable round-trips, and its absence means the defaults', () => {
    expect(parseVerifySettings({ [VERIFY_ENV]: formatVerifySettings(settings) })).toEqual(settings);
    expect(parseVerifySettings({})).toEqual({
      pollSeconds: 5,
      deadlineSeconds: 180,
      serviceDeadlines: {},
      environmentDeadlines: {},
      environmentPollSeconds: {},
      noRollback: [],
    });
  });
});

describe('verification settings', () => {
  const verifyEnv = (b: Built): string => {
    const fn = resources(b)[id(b, b.deployer.function)]!;
    return (fn.Properties.Environment as { Variables: Record<string, string> }).Variables[
      VERIFY_ENV
    ]!;
  };

  test('defaults: 180 s, every 5 s, every environment rolls back', () => {
    expect(parseVerifySettings({ [VERIFY_ENV]: verifyEnv(build()) })).toEqual({
      pollSeconds: 5,
      deadlineSeconds: 180,
      serviceDeadlines: {},
      environmentDeadlines: {},
      environmentPollSeconds: {},
      noRollback: [],
    });
  });

  test('given ones reach the deploy function, and the longest deadline sets the execution timeout', () => {
    const b = build({
      environments: [MAIN, PROD],
      verification: {
        deadline: Duration.seconds(120),
        serviceDeadlines: { webui: Duration.minutes(10) },
        environmentDeadlines: { prod: Duration.minutes(15) },
        pollInterval: Duration.seconds(10),
        environmentPollIntervals: { prod: Duration.seconds(20) },
        noRollback: ['prod'],
      },
    });
    expect(parseVerifySettings({ [VERIFY_ENV]: verifyEnv(b) })).toEqual({
      pollSeconds: 10,
      deadlineSeconds: 120,
      serviceDeadlines: { webui: 600 },
      environmentDeadlines: { prod: 900 },
      environmentPollSeconds: { prod: 20 },
      noRollback: ['prod'],
    });
    expect(synthesizedDefinition(b.stack, b.deployer).definition.TimeoutSeconds).toBe(
      2 * 900 + 1800,
    );
  });

  test.each([
    [{ deadline: Duration.seconds(10) }, /deadline is 10 s; give whole seconds from 30 to 1800/],
    [{ deadline: Duration.millis(30500) }, /deadline is 30.5 s/],
    [
      { pollInterval: Duration.minutes(2) },
      /pollInterval is 120 s; give whole seconds from 1 to 60/,
    ],
    [
      { serviceDeadlines: { miner: Duration.seconds(60) } },
      /serviceDeadlines names "miner", which is not a deployed service/,
    ],
    [{ noRollback: ['staging'] }, /noRollback names "staging", which is not an environment/],
    [
      { environmentDeadlines: { staging: Duration.seconds(60) } },
      /environmentDeadlines names "staging", which is not an environment/,
    ],
    [
      { environmentPollIntervals: { main: Duration.seconds(0) } },
      /environmentPollIntervals of "main" is 0 s; give whole seconds from 1 to 60/,
    ],
  ])('refused: %p', (verification, message) => {
    expect(() => build({ verification })).toThrow(message);
  });
});
