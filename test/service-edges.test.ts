import { Stack } from 'aws-cdk-lib';
import { createStacks } from '../lib/app';
import { resolveConfig } from '../lib/config';
import { newApp } from './support/app';
import { CfnTemplate, DeployedTemplate, TEST_ENVIRONMENT } from './support/policy-eval';
import { decide, serviceEdges } from './support/service-edges';

/**
 * Every service→resource edge the app's templates contain (alarm → topic and its key,
 * EventBridge rule → target and dead-letter queue, Lambda destinations, state machines → the
 * functions they call) is allowed by the synthesized policies, evaluated as AWS evaluates them.
 */
const CONFIGURATIONS: [string, Record<string, unknown>][] = [
  ['the default configuration', { sourceOwner: 'acme' }],
  [
    'a CodeCommit source and an email subscription',
    {
      sourceProvider: 'codecommit',
      sourceRepo: 'dockercoins',
      notificationEmail: 'ops@example.com',
    },
  ],
  [
    'a created cluster with the in-cluster registry',
    {
      sourceOwner: 'acme',
      createCluster: true,
      initialImageTag: '6e0de7938dda',
      inClusterRegistry: true,
    },
  ],
];

function deployedTemplates(context: Record<string, unknown>): DeployedTemplate[] {
  const app = newApp();
  const { config } = resolveConfig(context);
  const stacks = createStacks(app, config);
  const assembly = app.synth();
  return (Object.values(stacks) as Stack[]).map((stack) => ({
    template: assembly.getStackArtifact(stack.artifactId).template as CfnTemplate,
    env: { ...TEST_ENVIRONMENT, stackName: stack.stackName },
  }));
}

describe.each(CONFIGURATIONS)('service→resource edges, %s', (_name, context) => {
  const checks = serviceEdges(deployedTemplates(context));

  const alarmChecks = checks.filter(
    (c) =>
      'service' in c.request.principal &&
      c.request.principal.service === 'cloudwatch.amazonaws.com',
  );

  test('each of the deployer alarms is checked: publish, and the key for it', () => {
    const actions = alarmChecks.map((c) => `${c.edge.split(' ')[0]} ${c.request.action}`);
    for (const alarm of [
      'Errors',
      'FailedDeploys',
      'UnconfirmedBuilds',
      'NotificationFailures',
      'ExecutionsFailed',
      'ExecutionsTimedOut',
      'UndeliveredEvents',
      'FailedInvocations',
    ]) {
      for (const action of ['sns:Publish', 'kms:GenerateDataKey', 'kms:Decrypt']) {
        expect(actions).toContainEqual(
          expect.stringMatching(new RegExp(`Deployer${alarm}Alarm\\w* ${action}$`)),
        );
      }
    }
  });

  test("another account's alarm, or another alarm of ours, is refused (confused deputy)", () => {
    expect(alarmChecks.length).toBeGreaterThan(0);
    for (const check of alarmChecks) {
      const sourceArn = String(check.request.context['aws:SourceArn']);
      const foreign = sourceArn.replace(/:\d{12}:/, ':999999999999:');
      const otherAlarm = `${sourceArn.slice(0, sourceArn.lastIndexOf(':'))}:someone-elses-alarm`;
      for (const context of [
        { ...check.request.context, 'aws:SourceAccount': '999999999999', 'aws:SourceArn': foreign },
        { ...check.request.context, 'aws:SourceArn': otherAlarm },
      ]) {
        expect(decide({ ...check, request: { ...check.request, context } })).not.toBe('Allow');
      }
    }
  });

  test('every edge is allowed', () => {
    expect(checks.length).toBeGreaterThan(0);
    const denied = checks
      .map((c) => ({ edge: c.edge, action: c.request.action, decision: decide(c) }))
      .filter((c) => c.decision !== 'Allow');
    expect(denied).toEqual([]);
  });
});

describe('the edge checks can fail', () => {
  const templates = deployedTemplates({ sourceOwner: 'acme' });
  const without = (type: string): DeployedTemplate[] =>
    templates.map((t) => ({
      ...t,
      template: {
        ...t.template,
        Resources: Object.fromEntries(
          Object.entries(t.template.Resources).filter(([, r]) => r.Type !== type),
        ),
      },
    }));

  // The rule starts the state machine through a role (no Lambda permission any more); the state
  // machine invokes the functions through its role: without the IAM policies those are denied.
  test.each([
    ['AWS::SQS::QueuePolicy', 'sqs:SendMessage'],
    ['AWS::IAM::Policy', 'sqs:SendMessage'],
    ['AWS::IAM::Policy', 'states:StartExecution'],
    ['AWS::IAM::Policy', 'lambda:InvokeFunction'],
  ])('without any %s, a %s edge is denied', (type, action) => {
    const decisions = serviceEdges(without(type))
      .filter((c) => c.request.action === action)
      .map(decide);
    expect(decisions).toContain('ImplicitDeny');
  });
});
