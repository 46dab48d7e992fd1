import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Stack, Validations } from 'aws-cdk-lib';
import { Annotations, Match } from 'aws-cdk-lib/assertions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { addComplianceChecks, createStacks } from '../lib/app';
import { resolveConfig } from '../lib/config';
import { newApp } from './support/app';
import { cfnLintFindings } from './support/cfn-lint';

/** Every optional feature switched on, so that checks see every resource the app can make. */
const ALL_OPTIONS = {
  sourceOwner: 'acme',
  encryption: 'KMS',
  removalPolicy: 'destroy',
  pullAccountIds: '111122223333,444455556666',
  services: 'hasher,rng,webui,worker,miner',
  sourceConnectionArn:
    'arn:aws:codeconnections:eu-west-1:123456789012:connection/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
  buildBranches: 'main,release/1.x',
  sharedPaths: 'dockercoins/common',
  pullRequestBuilds: true,
  buildArchitecture: 'arm64',
  environments: JSON.stringify([
    { name: 'main', namespace: 'dockercoins', branches: ['main', 'release/1.x'] },
    { name: 'prod', namespace: 'dockercoins', clusterName: 'prod', releaseTags: true },
  ]),
  deployerAccess: 'rbac',
  deployerVpcId: 'vpc-0123456789abcdef0',
  deployerSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
  deployerSecurityGroupIds: 'sg-0123456789abcdef0',
  notificationEmail: 'ops@example.com',
};

/**
 * The optional cluster with the in-cluster registry: every resource the Cluster stack can make.
 * Apart from ALL_OPTIONS because its extra service has no Deployment, which the cluster refuses.
 */
const CLUSTER = {
  sourceOwner: 'acme',
  createCluster: true,
  initialImageTag: '6e0de7938dda',
  inClusterRegistry: true,
  environments: [
    { name: 'main', namespace: 'dockercoins', branches: ['main'] },
    { name: 'prod', namespace: 'dockercoins-prod', releaseTags: true },
  ],
};

/** The other source that changes the resources: CodeCommit, triggered through EventBridge. */
const CODECOMMIT = { sourceProvider: 'codecommit', sourceRepo: 'dockercoins' };

const outdirs: string[] = [];
afterAll(() => outdirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function appWithChecks(context: Record<string, unknown>): App {
  const outdir = mkdtempSync(path.join(tmpdir(), 'ship-synth-'));
  outdirs.push(outdir);
  const app = newApp({}, { outdir });
  const { config } = resolveConfig(context);
  createStacks(app, config);
  addComplianceChecks(app);
  return app;
}

interface ValidationReport {
  pluginReports: { pluginName: string; conclusion: string; violations: { ruleName: string }[] }[];
}

/**
 * W3005 (a DependsOn that a Ref or GetAtt already implies) on resources aws-eks-v2 and ec2.Vpc
 * generate in the Cluster stack: harmless, and not ours to edit. Only that stack, only that rule:
 * every other warning counts, as in CI (whose default synth has no Cluster stack).
 */
function isGeneratedClusterWarning(line: string): boolean {
  return /-Cluster\.template\.json:.*:W3005:/.test(line);
}

function templatesIn(outdir: string): string[] {
  return readdirSync(outdir)
    .filter((f) => f.endsWith('.template.json'))
    .map((f) => path.join(outdir, f));
}

describe.each([
  ['default configuration', {}],
  ['every option on', ALL_OPTIONS],
  ['a CodeCommit source', CODECOMMIT],
  ['a created cluster with the in-cluster registry', CLUSTER],
])('the whole app, %s', (_name, context) => {
  let outdir: string;

  beforeAll(() => {
    const app = appWithChecks(context);
    // cdk-nag v3 is a policy-validation plugin: synth throws on any unacknowledged finding.
    outdir = app.synth().directory;
  });

  test('cdk-nag AwsSolutions reports no unacknowledged finding', () => {
    const report = JSON.parse(
      readFileSync(path.join(outdir, 'validation-report.json'), 'utf8'),
    ) as ValidationReport;
    const failures = report.pluginReports.filter((r) => r.conclusion !== 'success');
    expect(failures).toEqual([]);
  });

  test('every acknowledgement written into the templates carries a reason', () => {
    for (const file of templatesIn(outdir)) {
      const template = JSON.parse(readFileSync(file, 'utf8')) as {
        Resources: Record<
          string,
          { Metadata?: { cdk_nag?: { rules_to_suppress: { id: unknown; reason: unknown }[] } } }
        >;
      };
      for (const resource of Object.values(template.Resources)) {
        for (const rule of resource.Metadata?.cdk_nag?.rules_to_suppress ?? []) {
          expect(typeof rule.id).toBe('string');
          // A reason a reviewer accepts is a sentence, not "ok" or "n/a".
          expect(rule.reason).toMatch(/\w{3,}.{30,}/);
        }
      }
    }
  });

  test('cfn-lint reports no error and no warning on the synthesized templates', () => {
    const findings = cfnLintFindings(templatesIn(outdir)).filter(
      (line) => !isGeneratedClusterWarning(line),
    );
    expect(findings).toEqual([]);
  });
});

describe('compliance checks', () => {
  test('cfn-lint finds an error in a broken template, so its check is real', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-lint-'));
    outdirs.push(dir);
    const broken = path.join(dir, 'broken.template.json');
    writeFileSync(
      broken,
      JSON.stringify({
        Resources: {
          Repo: { Type: 'AWS::ECR::Repository', Properties: { ImageTagMutability: 'SOMETIMES' } },
        },
      }),
    );

    expect(cfnLintFindings([broken])).toEqual([expect.stringContaining('SOMETIMES')]);
  });

  test('cfn-lint warnings count too (CI fails on them), so a redundant DependsOn is caught', () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'ship-lint-'));
    outdirs.push(dir);
    const redundant = path.join(dir, 'redundant.template.json');
    writeFileSync(
      redundant,
      JSON.stringify({
        Resources: {
          Topic: { Type: 'AWS::SNS::Topic' },
          Queue: {
            Type: 'AWS::SQS::Queue',
            DependsOn: ['Topic'],
            Properties: { QueueName: { 'Fn::GetAtt': ['Topic', 'TopicName'] } },
          },
        },
      }),
    );

    expect(cfnLintFindings([redundant])).toEqual([expect.stringContaining(':W3005:')]);
  });

  test('a non-compliant resource fails synth, so the checks are really wired', () => {
    const app = appWithChecks({ sourceOwner: 'acme' });
    new sqs.Queue(new Stack(app, 'Planted'), 'QueueWithoutDlqOrSsl');

    expect(() => app.synth()).toThrow(/AwsSolutions-SQS3[\s\S]*AwsSolutions-SQS4/);
  });

  test('an acknowledgement with a reason lets synth pass and is written into the template', () => {
    const app = appWithChecks({ sourceOwner: 'acme' });
    const planted = new Stack(app, 'Planted');
    const queue = new sqs.Queue(planted, 'Queue', { enforceSSL: true });
    Validations.of(queue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself a dead-letter queue in the test scenario.',
    });

    const outdir = app.synth().directory;

    const template = readFileSync(path.join(outdir, 'Planted.template.json'), 'utf8');
    expect(template).toContain('This queue is itself a dead-letter queue in the test scenario.');
  });
});

describe('configuration warnings', () => {
  // The entry prints the warnings once per synth (test/bin.test.ts counts them): no stack repeats them.
  test('the default source owner leaves no warning on the stacks', () => {
    const app = newApp();
    const { config, warnings } = resolveConfig({});
    const stacks = createStacks(app, config);

    expect(warnings.map((w) => w.key)).toEqual(['sourceOwner']);
    for (const stack of [stacks.registry, stacks.builds, stacks.deployer]) {
      expect(
        Annotations.fromStack(stack).findWarning('*', Match.stringLikeRegexp('sourceOwner')),
      ).toEqual([]);
    }
    // The one warning a stack carries: the deployer's Role must be applied on an existing cluster.
    expect(
      Annotations.fromStack(stacks.deployer)
        .findWarning('*', Match.anyValue())
        .map((w) => JSON.stringify(w.entry.data)),
    ).toEqual([expect.stringContaining('apply k8s/rbac/deployer')]);
  });

  test('stack names follow stackNamePrefix', () => {
    const { config } = resolveConfig({ stackNamePrefix: 'Staging-DC' });
    const stacks = createStacks(newApp(), config);

    expect(stacks.registry.stackName).toBe('Staging-DC-Registry');
    expect(stacks.builds.stackName).toBe('Staging-DC-Builds');
    expect(stacks.deployer.stackName).toBe('Staging-DC-Deployer');
  });

  test('the builds stack deploys after the registry, without cross-stack exports', () => {
    const { config } = resolveConfig({ sourceOwner: 'acme' });
    const app = newApp();
    const stacks = createStacks(app, config);
    const assembly = app.synth();

    expect(stacks.builds.dependencies).toEqual([stacks.registry]);
    const builds = JSON.stringify(assembly.getStackByName(stacks.builds.stackName).template);
    expect(builds).not.toMatch(/Fn::ImportValue|Fn::GetStackOutput/);
  });
});
