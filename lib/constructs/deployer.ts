import * as path from 'node:path';
import {
  Arn,
  ArnFormat,
  CfnResource,
  Duration,
  RemovalPolicy,
  Stack,
  Token,
  Validations,
} from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cloudwatchActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as destinations from 'aws-cdk-lib/aws-lambda-destinations';
import { bundledCode } from './lambda-bundle';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import { Construct } from 'constructs';
import { DeployerAccess, ServiceConfig } from '../config';
import {
  DEPLOYER_ENV,
  DEPLOYER_METRICS,
  DeployerSettings,
  EnvironmentSettings,
  formatDeployerEnvironment,
} from '../deployer-contract';
import { DEPLOYER_GROUP } from '../k8s/dockercoins';
import {
  VERIFY_DEFAULTS,
  VERIFY_ENV,
  VERIFY_LIMITS,
  VERIFY_METRICS,
  formatVerifySettings,
  type VerifySettings,
} from '../verify-contract';
import { deployWorkflow } from './deploy-workflow';

const REPO_ROOT = path.resolve(__dirname, '..', '..');
/** The deployer Lambda's code; `handler` is its entry point. */
export const DEPLOYER_ENTRY = path.join(REPO_ROOT, 'lambda', 'deployer', 'handler.ts');
/** The verify function (the Check and Rollback steps); `handler` is its entry point. */
export const VERIFIER_ENTRY = path.join(REPO_ROOT, 'lambda', 'verifier', 'handler.ts');
/** The report function (the Report step); `handler` is its entry point. */
export const REPORTER_ENTRY = path.join(REPO_ROOT, 'lambda', 'reporter', 'handler.ts');

/** A service the deployer deploys: the project that builds it and the repository it pushes to. */
export interface DeployedService {
  /** Its name, and the Deployment and container that run it. */
  readonly service: ServiceConfig;
  /** Where its images are; the deployer confirms each image's digest there. */
  readonly repository: ecr.IRepository;
  /** The project whose successful builds trigger the deployer. */
  readonly project: codebuild.IProject;
}

/** Properties of a {@link Deployer}. */
export interface DeployerProps {
  /** The services whose builds deploy; at least one. Names must be literals (not tokens). */
  readonly services: readonly DeployedService[];

  /**
   * Where builds deploy to; at least one. Each cluster must be in this stack's region (the access
   * entry is created there): a `region` is accepted only when it is the stack's own, resolved one.
   */
  readonly environments: readonly EnvironmentSettings[];

  /**
   * Glob (only `*` is special) of git tags whose builds are releases.
   * @default 'v*'
   */
  readonly releaseTagPattern?: string;

  /**
   * What the deployer may do in each cluster: `rbac` only maps its role to the Kubernetes group
   * `dockercoins-deployer` (an access entry with kubernetesGroups and no access policy), which
   * needs k8s/rbac/deployer's Role and RoleBinding in each namespace (get and patch on the named
   * Deployments, reading ReplicaSets, pods and events); `edit-policy` associates
   * AmazonEKSEditPolicy scoped to the environments' namespaces (Secrets and exec included).
   * @default 'rbac'
   */
  readonly access?: DeployerAccess;

  /**
   * The VPC to run the Lambda in: needed when a cluster's API endpoint is private. Its subnets need
   * a route to ECR, EKS, STS, SNS and CodeBuild (a NAT gateway or VPC endpoints).
   * @default - not in a VPC
   */
  readonly vpc?: ec2.IVpc;

  /**
   * The subnets of `vpc` the Lambda uses.
   * @default - the private subnets of `vpc`
   */
  readonly vpcSubnets?: ec2.SubnetSelection;

  /**
   * Security groups of the Lambda; the cluster's must accept them on port 443.
   * @default - a new security group that allows all outbound traffic
   */
  readonly securityGroups?: readonly ec2.ISecurityGroup[];

  /**
   * An address to subscribe to every deploy outcome and alarm (SNS mails it a confirmation link).
   * @default - no subscription
   */
  readonly notificationEmail?: string;

  /** @default logs.RetentionDays.THREE_MONTHS */
  readonly logRetention?: logs.RetentionDays;

  /**
   * How each deployed Deployment is verified.
   * @default - every service gets 180 s to become Ready, checked every 5 s, rolled back on failure
   */
  readonly verification?: VerificationProps;
}

/** How deploys are verified (see docs/deploys.md). */
export interface VerificationProps {
  /**
   * Time from the PATCH to a verdict; past it, a rollout that is not Ready has failed. Whole
   * seconds from 30 s to 30 min.
   * @default Duration.seconds(180)
   */
  readonly deadline?: Duration;
  /**
   * Per service (by name), instead of `deadline`.
   * @default - `deadline` for every service
   */
  readonly serviceDeadlines?: Readonly<Record<string, Duration>>;
  /**
   * Per environment (by name); where a service has its own too, the longer of the two applies.
   * @default - the service's, or `deadline`
   */
  readonly environmentDeadlines?: Readonly<Record<string, Duration>>;
  /**
   * Time between two checks of one Deployment; whole seconds from 1 to 60.
   * @default Duration.seconds(5)
   */
  readonly pollInterval?: Duration;
  /**
   * Per environment (by name), instead of `pollInterval`.
   * @default - `pollInterval` everywhere
   */
  readonly environmentPollIntervals?: Readonly<Record<string, Duration>>;
  /**
   * Environments (by name) whose failed deploys are NOT rolled back (the alarm still fires).
   * @default - every environment rolls back
   */
  readonly noRollback?: readonly string[];
}

/**
 * EventBridge refuses an event pattern over 2,048 characters (the default quota): beyond that,
 * the project names are shared out over several rules, each with the same target.
 */
export const MAX_EVENT_PATTERN_CHARS = 2048;

/**
 * Characters the repository and project ARNs may take in the role's policy. IAM caps a role's
 * inline policies at 10,240 characters together; the rest of the policy is a fixed ~2,000.
 * Beyond this, the policy grants on the names' common prefix instead of listing each ARN.
 */
export const MAX_LISTED_ARN_CHARS = 6000;
/** An ARN's characters besides the name, for the longest partition and region, quoted, with a comma. */
const ARN_CHARS_BESIDES_NAME = '"arn:aws-us-gov:codebuild:ap-southeast-2:123456789012:project/",'
  .length;

/** How the deployer is bundled: esbuild, locally. `npm run bench` measures this very bundle. */
export {
  DEFAULT_CREDENTIAL_CHAIN,
  DEPLOYER_BUNDLING,
  LAMBDA_CREDENTIALS_ENTRY,
} from './lambda-bundle';

/** The AWS managed access policy of the `edit-policy` access mode. */
export const EDIT_POLICY_NAME = 'AmazonEKSEditPolicy';

/** The memory the Lambda gets; on arm64 this also buys its CPU share for TLS and JSON. */
const MEMORY_MB = 256;
/**
 * The handler's retries are bounded: a call is tried at most 4 times, each try given 5 s, with
 * under 7 s of waits between them (26 s at worst). A deploy is a chain of at most four such calls
 * (ECR, DescribeCluster, GET, PATCH; targets run side by side), so even an API server that hangs on
 * every try ends within this; past it, Lambda retries the event like any transient failure.
 */
const TIMEOUT = Duration.minutes(2);
/**
 * One check reads a Deployment, its ReplicaSets and pods (three bounded calls of at most 26 s
 * each); one rollback is a GET and a PATCH. Each Task allows its function 10 s more than the
 * function's own timeout, so Lambda's timeout (a Lambda error, retried) is what normally ends a
 * hung call, and the Task timeout only a lost invocation.
 */
const VERIFY_TIMEOUT = Duration.seconds(90);
/** One SNS Publish (bounded retries) and the metrics. */
const REPORT_TIMEOUT = Duration.seconds(30);
const TASK_MARGIN = Duration.seconds(10);

/**
 * Deploys on build success: an EventBridge rule on "CodeBuild Build State Change" (SUCCEEDED) of
 * our projects invokes a Lambda (lambda/deployer, bundled by esbuild locally) that patches the
 * Deployments running the built service to exactly the digest built, in the environments that
 * build deploys to.
 *
 * No event is lost: EventBridge retries delivery and then keeps the event in the
 * `undeliveredEvents` queue; Lambda retries a failed invocation twice and then keeps it in the
 * `failedInvocations` queue. Every outcome goes to `topic`; alarms on function errors, on the
 * deployer's `Failed` metric and on messages in either queue notify it too.
 *
 * Access: the role may call exactly what the Lambda calls, on exactly our resources; an EKS access
 * entry per cluster (by name, so existing clusters work) lets it into Kubernetes: by default through
 * RBAC (k8s/rbac/deployer), least privilege; as an opt-in, with AmazonEKSEditPolicy scoped to the
 * namespaces.
 */
export class Deployer extends Construct {
  public readonly function: lambda.Function;
  /** The Lambda's role; its access entries name it. */
  public readonly role: iam.Role;
  /** Every deploy outcome, and the alarms. Encrypted with {@link topicKey}. */
  public readonly topic: sns.Topic;
  /**
   * A customer managed key: CloudWatch alarms cannot publish to a topic encrypted with the AWS
   * managed key (its policy cannot be changed to let them).
   */
  public readonly topicKey: kms.Key;
  /** Events EventBridge could not deliver to the Lambda; each message is the original event. */
  public readonly undeliveredEvents: sqs.Queue;
  /**
   * Invocations that failed after Lambda's retries; each message is an invocation record whose
   * `requestPayload` is the original event.
   */
  public readonly failedInvocations: sqs.Queue;
  /** The rules that invoke the Lambda, one per slice of project names (usually one). */
  public readonly rules: readonly events.Rule[];
  /** The EKS access entry of the role, by cluster name. */
  public readonly accessEntries: ReadonlyMap<string, eks.CfnAccessEntry>;
  /** The alarms, each notifying {@link topic}. */
  public readonly alarms: readonly cloudwatch.Alarm[];
  /**
   * One execution per build: Deploy → Verify (per Deployment: Check, Wait, Rollback) → Report.
   * The rules start it; a failed one can be redriven (docs/deploys.md).
   */
  public readonly stateMachine: sfn.StateMachine;
  /** The Check and Rollback steps: reads and patches Deployments; no ECR, CodeBuild or SNS. */
  public readonly verifyFunction: lambda.Function;
  /** The Report step: one notification per build, the outcome metrics. */
  public readonly reportFunction: lambda.Function;
  /** The verify function's role; its own access entries name it. */
  public readonly verifyRole: iam.Role;
  /** The report function's role. */
  public readonly reportRole: iam.Role;
  /** The state machine's role: invokes our three functions, and nothing else. */
  public readonly stateMachineRole: iam.Role;
  /** The role the rules start executions with: states:StartExecution on our state machine only. */
  public readonly ruleRole: iam.Role;
  /** The verify function's EKS access entry, by cluster name. */
  public readonly verifyAccessEntries: ReadonlyMap<string, eks.CfnAccessEntry>;
  /** Outcomes, TimeToReady, failures and queue depths: what an operator opens. */
  public readonly dashboard: cloudwatch.Dashboard;

  constructor(scope: Construct, id: string, props: DeployerProps) {
    super(scope, id);
    const stack = Stack.of(this);
    const access = props.access ?? 'rbac';
    const releaseTagPattern = props.releaseTagPattern ?? 'v*';
    // Check everything before creating anything: a refused configuration leaves no half-built tree.
    checkProps(props, stack);
    const verification = verificationSettings(props);
    const projectNames = props.services.map((s) => s.project.projectName);
    const repositoryNames = props.services.map((s) => s.repository.repositoryName);
    const clusters = clustersOf(props.environments);

    this.topicKey = new kms.Key(this, 'TopicKey', {
      description: 'Encrypts the DockerCoins deploy notifications (SNS)',
      enableKeyRotation: true,
      // Notifications are delivered within seconds and kept nowhere: nothing needs the key later.
      removalPolicy: RemovalPolicy.DESTROY,
    });
    // The alarms are named, not left to CloudFormation: the key's policy (inside the key, which
    // the topic and so the alarms depend on) can then name each alarm without a cycle.
    const alarmArns = ALARM_IDS.map((alarmId) => alarmArn(stack, alarmName(stack, this, alarmId)));
    this.topicKey.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsPublishToTopic',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['kms:Decrypt', 'kms:GenerateDataKey*'],
        resources: ['*'],
        conditions: alarmConditions(stack, alarmArns),
      }),
    );
    this.topic = new sns.Topic(this, 'Topic', {
      displayName: 'DockerCoins deploys',
      masterKey: this.topicKey,
      enforceSSL: true,
    });
    // A topic policy replaces SNS's default one (which lets the account's own principals and
    // services publish): CloudWatch may publish only for this deployer's alarms (confused deputy).
    this.topic.addToResourcePolicy(
      new iam.PolicyStatement({
        sid: 'AlarmsPublish',
        principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
        actions: ['sns:Publish'],
        resources: [this.topic.topicArn],
        conditions: alarmConditions(stack, alarmArns),
      }),
    );
    if (props.notificationEmail !== undefined) {
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.notificationEmail));
    }

    this.undeliveredEvents = deadLetterQueue(this, 'UndeliveredEvents');
    this.failedInvocations = deadLetterQueue(this, 'FailedInvocations');

    const logGroup = new logs.LogGroup(this, 'Logs', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    });

    // The policy is written out in full; `withoutPolicyUpdates` keeps the Lambda L2 from adding
    // its defaults (the basic execution and VPC managed policies, destination grants).
    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description:
        'The DockerCoins deployer: reads builds and images, patches Deployments through EKS access entries',
    });
    const listArns = arnsFit([...projectNames, ...repositoryNames]);
    const repositoryArns = listArns
      ? props.services.map((s) => s.repository.repositoryArn)
      : [
          Arn.format(
            {
              service: 'ecr',
              resource: 'repository',
              resourceName: `${commonPrefix(repositoryNames)}*`,
            },
            stack,
          ),
        ];
    const projectArns = listArns
      ? props.services.map((s) => s.project.projectArn)
      : [
          Arn.format(
            {
              service: 'codebuild',
              resource: 'project',
              resourceName: `${commonPrefix(projectNames)}*`,
            },
            stack,
          ),
        ];
    const policy = new iam.Policy(this, 'Policy', {
      roles: [this.role],
      statements: [
        writeLogsStatement(logGroup),
        describeClustersStatement(clusters, stack),
        new iam.PolicyStatement({
          sid: 'ConfirmImageDigests',
          actions: ['ecr:DescribeImages'],
          resources: repositoryArns,
        }),
        new iam.PolicyStatement({
          // The moving marks of what runs and what a rollback goes back to (lib/image-marks.ts):
          // the manifest by digest, put again under the mark. The repositories keep every other
          // tag immutable, so PutImage can move only the marks (and the cache tag).
          sid: 'MarkRunningImages',
          actions: ['ecr:BatchGetImage', 'ecr:PutImage'],
          resources: repositoryArns,
        }),
        new iam.PolicyStatement({
          // Builds whose event lacks the exported variables are read back from CodeBuild.
          sid: 'ReadBuilds',
          actions: ['codebuild:BatchGetBuilds'],
          resources: projectArns,
        }),
        new iam.PolicyStatement({
          sid: 'PublishOutcomes',
          actions: ['sns:Publish'],
          resources: [this.topic.topicArn],
        }),
        new iam.PolicyStatement({
          sid: 'EncryptOutcomes',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.topicKey.keyArn],
        }),
        new iam.PolicyStatement({
          sid: 'KeepFailedInvocations',
          actions: ['sqs:SendMessage'],
          resources: [this.failedInvocations.queueArn],
        }),
        ...(props.vpc === undefined ? [] : [networkInterfaceStatement()]),
      ],
    });

    const settings: DeployerSettings = {
      registry: `${stack.account}.dkr.ecr.${stack.region}.${stack.urlSuffix}`,
      releaseTagPattern,
      services: props.services.map(({ service, repository, project }) => ({
        service: service.name,
        project: project.projectName,
        repository: repository.repositoryName,
        targets: [{ deployment: service.deployment, container: service.container }],
      })),
      environments: props.environments,
      topicArn: this.topic.topicArn,
    };

    this.function = new lambda.Function(this, 'Function', {
      description:
        'Deploys a successful DockerCoins build: patches the Deployments that run its service',
      code: bundledCode(DEPLOYER_ENTRY),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: MEMORY_MB,
      timeout: TIMEOUT,
      role: this.role.withoutPolicyUpdates(),
      logGroup,
      environment: {
        ...formatDeployerEnvironment(settings),
        POWERTOOLS_SERVICE_NAME: DEPLOYER_METRICS.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: DEPLOYER_METRICS.namespace,
        NODE_OPTIONS: '--enable-source-maps',
        [VERIFY_ENV]: formatVerifySettings(verification),
      },
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups && [...props.securityGroups],
      // No reserved concurrency: builds of different services deploy independently, and two
      // builds of one service are ordered by the resourceVersion precondition and the build
      // number, not by running one at a time.
    });
    // Lambda checks at creation that the role may manage network interfaces (in a VPC) and send
    // to the failure destination: the policy must be attached first.
    this.function.node.addDependency(policy);
    // The Lambda L2 always makes the function depend on its role, which the function's `Role`
    // GetAtt already orders: cfn-lint warns (W3005) about the redundancy, which is harmless.
    (this.function.node.defaultChild as CfnResource).addMetadata('cfn-lint', {
      config: { ignore_checks: ['W3005'] },
    });

    this.function.configureAsyncInvoke({
      retryAttempts: 2,
      maxEventAge: Duration.hours(1),
      onFailure: new destinations.SqsDestination(this.failedInvocations),
    });

    const verifyLogs = new logs.LogGroup(this, 'VerifierLogs', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    });
    this.verifyRole = new iam.Role(this, 'VerifierRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description:
        'The DockerCoins verifier: reads Deployments, ReplicaSets and pods, rolls back, through EKS access entries',
    });
    const verifyPolicy = new iam.Policy(this, 'VerifierPolicy', {
      roles: [this.verifyRole],
      statements: [
        writeLogsStatement(verifyLogs),
        describeClustersStatement(clusters, stack),
        ...(props.vpc === undefined ? [] : [networkInterfaceStatement()]),
      ],
    });
    this.verifyFunction = new lambda.Function(this, 'VerifierFunction', {
      description:
        "Verifies a DockerCoins deploy: judges one Deployment's rollout, rolls it back when it failed",
      code: bundledCode(VERIFIER_ENTRY),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: MEMORY_MB,
      timeout: VERIFY_TIMEOUT,
      role: this.verifyRole.withoutPolicyUpdates(),
      logGroup: verifyLogs,
      environment: {
        POWERTOOLS_SERVICE_NAME: DEPLOYER_METRICS.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: DEPLOYER_METRICS.namespace,
        NODE_OPTIONS: '--enable-source-maps',
      },
      vpc: props.vpc,
      vpcSubnets: props.vpcSubnets,
      securityGroups: props.securityGroups && [...props.securityGroups],
    });
    this.verifyFunction.node.addDependency(verifyPolicy);

    const reportLogs = new logs.LogGroup(this, 'ReporterLogs', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    });
    this.reportRole = new iam.Role(this, 'ReporterRole', {
      assumedBy: new iam.ServicePrincipal('lambda.amazonaws.com'),
      description: "The DockerCoins deploy reporter: publishes each build's verdicts",
    });
    const reportPolicy = new iam.Policy(this, 'ReporterPolicy', {
      roles: [this.reportRole],
      statements: [
        writeLogsStatement(reportLogs),
        new iam.PolicyStatement({
          sid: 'PublishOutcomes',
          actions: ['sns:Publish'],
          resources: [this.topic.topicArn],
        }),
        new iam.PolicyStatement({
          sid: 'EncryptOutcomes',
          actions: ['kms:Decrypt', 'kms:GenerateDataKey'],
          resources: [this.topicKey.keyArn],
        }),
      ],
    });
    // Not in the VPC: it calls SNS only, over the Lambda service's own network.
    this.reportFunction = new lambda.Function(this, 'ReporterFunction', {
      description: "Reports a DockerCoins deploy: every Deployment's verdict, in one notification",
      code: bundledCode(REPORTER_ENTRY),
      handler: 'index.handler',
      runtime: lambda.Runtime.NODEJS_22_X,
      architecture: lambda.Architecture.ARM_64,
      memorySize: MEMORY_MB,
      timeout: REPORT_TIMEOUT,
      role: this.reportRole.withoutPolicyUpdates(),
      logGroup: reportLogs,
      environment: {
        [DEPLOYER_ENV.topicArn]: this.topic.topicArn,
        POWERTOOLS_SERVICE_NAME: DEPLOYER_METRICS.serviceName,
        POWERTOOLS_METRICS_NAMESPACE: DEPLOYER_METRICS.namespace,
        NODE_OPTIONS: '--enable-source-maps',
      },
    });
    this.reportFunction.node.addDependency(reportPolicy);
    for (const fn of [this.function, this.verifyFunction, this.reportFunction]) {
      // See the deploy function: the L2's DependsOn on the role duplicates the GetAtt (W3005).
      (fn.node.defaultChild as CfnResource).addMetadata('cfn-lint', {
        config: { ignore_checks: ['W3005'] },
      });
    }

    const workflowLogs = new logs.LogGroup(this, 'WorkflowLogs', {
      retention: props.logRetention ?? logs.RetentionDays.THREE_MONTHS,
    });
    // Written out in full (`withoutPolicyUpdates`): the L2 would also grant each function's
    // versions and aliases (`<arn>:*`), which this machine never invokes.
    this.stateMachineRole = new iam.Role(this, 'WorkflowRole', {
      assumedBy: new iam.ServicePrincipal('states.amazonaws.com'),
      description: 'The DockerCoins deploy workflow: invokes its three functions',
    });
    const workflowPolicy = new iam.Policy(this, 'WorkflowPolicy', {
      roles: [this.stateMachineRole],
      statements: [
        new iam.PolicyStatement({
          sid: 'InvokeSteps',
          actions: ['lambda:InvokeFunction'],
          resources: [this.function, this.verifyFunction, this.reportFunction].map(
            (fn) => fn.functionArn,
          ),
        }),
        new iam.PolicyStatement({
          // What Step Functions needs to deliver execution logs to CloudWatch Logs (vended logs):
          // these actions name no log group.
          sid: 'DeliverLogs',
          actions: [
            'logs:CreateLogDelivery',
            'logs:DeleteLogDelivery',
            'logs:DescribeLogGroups',
            'logs:DescribeResourcePolicies',
            'logs:GetLogDelivery',
            'logs:ListLogDeliveries',
            'logs:PutResourcePolicy',
            'logs:UpdateLogDelivery',
          ],
          resources: ['*'],
        }),
      ],
    });
    const longestDeadline = Math.max(
      verification.deadlineSeconds,
      ...Object.values(verification.serviceDeadlines),
      ...Object.values(verification.environmentDeadlines),
    );
    this.stateMachine = new sfn.StateMachine(this, 'Workflow', {
      comment:
        'DockerCoins: deploy a build, verify every Deployment, roll back what failed, report',
      stateMachineType: sfn.StateMachineType.STANDARD,
      definitionBody: sfn.DefinitionBody.fromChainable(
        deployWorkflow(this, {
          deploy: this.function,
          verify: this.verifyFunction,
          report: this.reportFunction,
          taskTimeouts: {
            deploy: TIMEOUT.plus(TASK_MARGIN),
            verify: VERIFY_TIMEOUT.plus(TASK_MARGIN),
            report: REPORT_TIMEOUT.plus(TASK_MARGIN),
          },
        }),
      ),
      // A verification and the verification of its rollback, each within its deadline, plus
      // the Deploy and Report steps with all their retries: an execution past this is stuck.
      timeout: Duration.seconds(2 * longestDeadline).plus(Duration.minutes(30)),
      role: this.stateMachineRole.withoutPolicyUpdates(),
      logs: { destination: workflowLogs, level: sfn.LogLevel.ALL, includeExecutionData: true },
    });
    // Step Functions checks at creation that the role may deliver logs.
    this.stateMachine.node.addDependency(workflowPolicy);
    // As for the functions: the L2's DependsOn on its role duplicates the RoleArn GetAtt (W3005).
    (this.stateMachine.node.defaultChild as CfnResource).addMetadata('cfn-lint', {
      config: { ignore_checks: ['W3005'] },
    });

    this.ruleRole = new iam.Role(this, 'RuleRole', {
      assumedBy: new iam.ServicePrincipal('events.amazonaws.com'),
      description: 'Starts the DockerCoins deploy workflow on a successful build',
    });
    new iam.Policy(this, 'RulePolicy', {
      roles: [this.ruleRole],
      statements: [
        new iam.PolicyStatement({
          sid: 'StartDeploys',
          actions: ['states:StartExecution'],
          resources: [this.stateMachine.stateMachineArn],
        }),
      ],
    });
    this.rules = projectNameSlices(projectNames).map(
      (names, index) =>
        new events.Rule(this, index === 0 ? 'OnBuildSucceeded' : `OnBuildSucceeded${index + 1}`, {
          description: 'Deploys DockerCoins builds that succeeded',
          eventPattern: buildSucceededPattern(names),
          targets: [
            new targets.SfnStateMachine(this.stateMachine, {
              role: this.ruleRole.withoutPolicyUpdates(),
              retryAttempts: 8,
              maxEventAge: Duration.hours(2),
              deadLetterQueue: this.undeliveredEvents,
            }),
          ],
        }),
    );

    // One entry per cluster for each role. The verifier reads and rolls back the same
    // Deployments under its own role, so it gets the same access (the RBAC Role of
    // k8s/rbac/deployer, or the scoped edit policy) through its own entry.
    const entriesFor = (role: iam.IRole, idPrefix: string): Map<string, eks.CfnAccessEntry> =>
      new Map(
        clusters.map(({ clusterName, namespaces }) => [
          clusterName,
          new eks.CfnAccessEntry(this, `${idPrefix}-${clusterName}`, {
            clusterName,
            principalArn: role.roleArn,
            type: 'STANDARD',
            ...(access === 'rbac'
              ? { kubernetesGroups: [DEPLOYER_GROUP] }
              : {
                  accessPolicies: [
                    {
                      policyArn: `arn:${stack.partition}:eks::aws:cluster-access-policy/${EDIT_POLICY_NAME}`,
                      accessScope: { type: 'namespace', namespaces },
                    },
                  ],
                }),
          }),
        ]),
      );
    this.accessEntries = entriesFor(this.role, 'Access');
    this.verifyAccessEntries = entriesFor(this.verifyRole, 'VerifierAccess');

    this.alarms = [
      this.alarm(
        'ErrorsAlarm',
        this.function.metricErrors({ period: Duration.minutes(1), statistic: 'Sum' }),
        'The deployer Lambda failed (an invocation threw: transient failures are retried, then kept in the failed-invocations queue)',
      ),
      this.alarm(
        'FailedDeploysAlarm',
        new cloudwatch.Metric({
          namespace: DEPLOYER_METRICS.namespace,
          metricName: DEPLOYER_METRICS.failed,
          dimensionsMap: { service: DEPLOYER_METRICS.serviceName },
          period: Duration.minutes(1),
          statistic: 'Sum',
        }),
        'A Deployment was not deployed because of an error (see the notification or the deployer log)',
      ),
      this.alarm(
        'UnconfirmedBuildsAlarm',
        this.deployerMetric(DEPLOYER_METRICS.unconfirmedBuilds),
        "An event claimed a build that CodeBuild's own record contradicts: refused, nothing deployed. Find who sent it (CloudTrail PutEvents and Invoke)",
      ),
      this.alarm(
        'NotificationFailuresAlarm',
        this.deployerMetric(DEPLOYER_METRICS.notificationFailures),
        'The deployer could not publish a deploy notification to its topic (see the deployer log for the outcome)',
      ),
      this.alarm(
        'UndeliveredEventsAlarm',
        this.undeliveredEvents.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        'Build events EventBridge could not deliver to the deployer wait in the undelivered-events queue (README: redrive)',
      ),
      this.alarm(
        'FailedInvocationsAlarm',
        this.failedInvocations.metricApproximateNumberOfMessagesVisible({
          period: Duration.minutes(5),
          statistic: 'Maximum',
        }),
        'Build events the deployer failed on after retries wait in the failed-invocations queue (README: redrive)',
      ),
    ];

    const metric = (metricName: string, statistic: string, label: string): cloudwatch.Metric =>
      new cloudwatch.Metric({
        namespace: DEPLOYER_METRICS.namespace,
        metricName,
        dimensionsMap: { service: DEPLOYER_METRICS.serviceName },
        period: Duration.minutes(5),
        statistic,
        label,
      });
    this.alarms = [
      ...this.alarms,
      this.alarm(
        'ExecutionsFailedAlarm',
        this.stateMachine.metricFailed({ period: Duration.minutes(1), statistic: 'Sum' }),
        'A deploy execution failed: a Deployment failed verification and was not rolled back, its rollback ' +
          'failed, or a step failed after its retries (docs/deploys.md: read the execution, redrive it)',
      ),
      this.alarm(
        'ExecutionsTimedOutAlarm',
        this.stateMachine.metricTimedOut({ period: Duration.minutes(1), statistic: 'Sum' }),
        'A deploy execution ran past its timeout (docs/deploys.md: read the execution)',
      ),
    ];

    this.dashboard = new cloudwatch.Dashboard(this, 'Dashboard', {
      defaultInterval: Duration.days(7),
      widgets: [
        [
          new cloudwatch.GraphWidget({
            title: 'Deploy outcomes (per Deployment)',
            width: 12,
            stacked: true,
            left: [
              metric(VERIFY_METRICS.verified, 'Sum', 'Verified'),
              metric(VERIFY_METRICS.rolledBack, 'Sum', 'Rolled back'),
              metric(VERIFY_METRICS.verifyFailed, 'Sum', 'Failed, not rolled back'),
              metric(VERIFY_METRICS.rollbackFailed, 'Sum', 'Rollback failed'),
              metric(DEPLOYER_METRICS.skipped, 'Sum', 'Skipped'),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'Time to Ready (build end to Ready, seconds)',
            width: 12,
            left: [
              metric(VERIFY_METRICS.timeToReady, 'p50', 'p50'),
              metric(VERIFY_METRICS.timeToReady, 'p90', 'p90'),
            ],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Failures',
            width: 12,
            left: [
              this.stateMachine.metricFailed({
                period: Duration.minutes(5),
                label: 'Executions failed',
              }),
              this.stateMachine.metricTimedOut({
                period: Duration.minutes(5),
                label: 'Executions timed out',
              }),
              metric(DEPLOYER_METRICS.failed, 'Sum', 'Deployments not deployed'),
              metric(DEPLOYER_METRICS.invalidEvents, 'Sum', 'Events refused'),
              ...[this.function, this.verifyFunction, this.reportFunction].map((fn, i) =>
                fn.metricErrors({
                  period: Duration.minutes(5),
                  label: `${['Deploy', 'Verify', 'Report'][i]} function errors`,
                }),
              ),
            ],
          }),
          new cloudwatch.GraphWidget({
            title: 'Queue depths (messages waiting for a redrive)',
            width: 12,
            left: [
              this.undeliveredEvents.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(5),
                statistic: 'Maximum',
                label: 'Undelivered events',
              }),
              this.failedInvocations.metricApproximateNumberOfMessagesVisible({
                period: Duration.minutes(5),
                statistic: 'Maximum',
                label: 'Failed direct invocations',
              }),
            ],
          }),
        ],
        [
          new cloudwatch.GraphWidget({
            title: 'Executions',
            width: 24,
            left: [
              this.stateMachine.metricStarted({ period: Duration.minutes(5), label: 'Started' }),
              this.stateMachine.metricSucceeded({
                period: Duration.minutes(5),
                label: 'Succeeded',
              }),
              this.stateMachine.metricFailed({ period: Duration.minutes(5), label: 'Failed' }),
            ],
          }),
        ],
      ],
    });

    acknowledge(this, props, listArns ? [] : [...repositoryArns, ...projectArns], policy);
    acknowledgeWorkflow(this, props, verifyPolicy, workflowPolicy);
  }

  /** A count the deployer publishes (embedded metric format), summed per minute. */
  private deployerMetric(metricName: string): cloudwatch.Metric {
    return new cloudwatch.Metric({
      namespace: DEPLOYER_METRICS.namespace,
      metricName,
      dimensionsMap: { service: DEPLOYER_METRICS.serviceName },
      period: Duration.minutes(1),
      statistic: 'Sum',
    });
  }

  /** An alarm on any value above zero, notifying the topic. */
  private alarm(id: AlarmId, metric: cloudwatch.IMetric, description: string): cloudwatch.Alarm {
    const alarm = new cloudwatch.Alarm(this, id, {
      alarmName: alarmName(Stack.of(this), this, id),
      alarmDescription: description,
      metric,
      threshold: 0,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
      evaluationPeriods: 1,
      // No data means nothing happened: no build, no failure, an empty queue.
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    alarm.addAlarmAction(new cloudwatchActions.SnsAction(this.topic));
    return alarm;
  }
}

/** The deployer's alarms, by construct id; each notifies the topic. */
const ALARM_IDS = [
  'ErrorsAlarm',
  'FailedDeploysAlarm',
  'UnconfirmedBuildsAlarm',
  'NotificationFailuresAlarm',
  'ExecutionsFailedAlarm',
  'ExecutionsTimedOutAlarm',
  'UndeliveredEventsAlarm',
  'FailedInvocationsAlarm',
] as const;
type AlarmId = (typeof ALARM_IDS)[number];

/** `<stack>-<deployer id>-<alarm id>`: unique in the account and region, as the stack name is. */
function alarmName(stack: Stack, deployer: Construct, id: AlarmId): string {
  return `${stack.stackName}-${deployer.node.id}-${id}`;
}

function alarmArn(stack: Stack, name: string): string {
  return Arn.format(
    {
      service: 'cloudwatch',
      resource: 'alarm',
      resourceName: name,
      arnFormat: ArnFormat.COLON_RESOURCE_NAME,
    },
    stack,
  );
}

/** CloudWatch acts for these alarms of this account only (its aws:SourceArn and aws:SourceAccount). */
function alarmConditions(stack: Stack, alarmArns: readonly string[]): Record<string, unknown> {
  return {
    StringEquals: { 'aws:SourceAccount': stack.account },
    ArnLike: { 'aws:SourceArn': [...alarmArns] },
  };
}

/** The event pattern of successful builds of these projects (CodeBuild's documented shape). */
export function buildSucceededPattern(projectNames: readonly string[]): events.EventPattern {
  return {
    source: ['aws.codebuild'],
    detailType: ['CodeBuild Build State Change'],
    detail: { 'build-status': ['SUCCEEDED'], 'project-name': [...projectNames] },
  };
}

/**
 * The pattern's size as EventBridge counts it, its JSON text, with a space after every "," and ":"
 * (the widest form CloudFormation could pass it on in; project names contain neither).
 */
export function patternChars(projectNames: readonly string[]): number {
  const pattern = buildSucceededPattern(projectNames);
  const json = JSON.stringify({
    source: pattern.source,
    'detail-type': pattern.detailType,
    detail: pattern.detail,
  });
  return json.length + (json.match(/[,:]/g) ?? []).length;
}

/** The project names in as few slices as keep each rule's pattern within EventBridge's limit. */
export function projectNameSlices(projectNames: readonly string[]): string[][] {
  const slices: string[][] = [];
  let current: string[] = [];
  for (const name of projectNames) {
    if (current.length > 0 && patternChars([...current, name]) > MAX_EVENT_PATTERN_CHARS) {
      slices.push(current);
      current = [];
    }
    current.push(name);
  }
  if (current.length > 0) slices.push(current);
  return slices;
}

/** A queue that keeps what could not be processed: encrypted, TLS only, for SQS's longest 14 days. */
function deadLetterQueue(scope: Construct, id: string): sqs.Queue {
  const queue = new sqs.Queue(scope, id, {
    encryption: sqs.QueueEncryption.SQS_MANAGED,
    enforceSSL: true,
    retentionPeriod: Duration.days(14),
  });
  Validations.of(queue).acknowledge({
    id: 'AwsSolutions-SQS3',
    reason:
      'This queue is itself a dead-letter queue: it keeps deploy events that could not be processed until a ' +
      'person inspects and redrives them (README), and an alarm fires on its first message.',
  });
  return queue;
}

/** What Lambda needs to attach the function to the VPC's subnets. */
/** A function's own log group: create its streams and write to them. */
function writeLogsStatement(logGroup: logs.ILogGroup): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'WriteLogs',
    actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
    resources: [logGroup.logGroupArn],
  });
}

/**
 * Endpoint and CA of each cluster. The bearer token needs no permission: it is a presigned
 * sts:GetCallerIdentity request, which every principal may make and which EKS sends to STS itself.
 */
function describeClustersStatement(
  clusters: readonly { readonly clusterName: string }[],
  stack: Stack,
): iam.PolicyStatement {
  return new iam.PolicyStatement({
    sid: 'DescribeClusters',
    actions: ['eks:DescribeCluster'],
    resources: clusters.map((c) =>
      Arn.format({ service: 'eks', resource: 'cluster', resourceName: c.clusterName }, stack),
    ),
  });
}

function networkInterfaceStatement(): iam.PolicyStatement {
  return new iam.PolicyStatement({
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
}

/** Each cluster once (one access entry per principal per cluster), with its namespaces, sorted. */
function clustersOf(
  environments: readonly EnvironmentSettings[],
): { clusterName: string; namespaces: string[] }[] {
  const byCluster = new Map<string, Set<string>>();
  for (const { clusterName, namespace } of environments) {
    byCluster.set(clusterName, (byCluster.get(clusterName) ?? new Set()).add(namespace));
  }
  return [...byCluster].map(([clusterName, namespaces]) => ({
    clusterName,
    namespaces: [...namespaces].sort(),
  }));
}

/** Do the ARNs of resources with these names fit in the role's policy, listed one by one? */
function arnsFit(names: readonly string[]): boolean {
  const chars = names.reduce((sum, name) => sum + ARN_CHARS_BESIDES_NAME + name.length, 0);
  return chars <= MAX_LISTED_ARN_CHARS;
}

/** The longest prefix all names share; the policy's wildcard stays within it. */
function commonPrefix(names: readonly string[]): string {
  const [first = '', ...rest] = names;
  let prefix = first;
  for (const name of rest) {
    while (!name.startsWith(prefix)) prefix = prefix.slice(0, -1);
  }
  return prefix;
}

function checkProps(props: DeployerProps, stack: Stack): void {
  if (props.services.length === 0) {
    throw new Error('Deployer: services is empty; give at least one service whose builds deploy.');
  }
  if (props.environments.length === 0) {
    throw new Error('Deployer: environments is empty; give at least one place builds deploy to.');
  }
  for (const { service, repository, project } of props.services) {
    for (const [what, name] of [
      ['project name', project.projectName],
      ['repository name', repository.repositoryName],
    ] as const) {
      if (Token.isUnresolved(name)) {
        throw new Error(
          `Deployer: the ${what} of service "${service.name}" is a token; the rule and the Lambda's settings need ` +
            'it literally. Reference the resource by its name (Project.fromProjectName, Repository.fromRepositoryName).',
        );
      }
    }
  }
  for (const environment of props.environments) {
    if (environment.region !== undefined && environment.region !== stack.region) {
      throw new Error(
        `Deployer: environment "${environment.name}" is in region ${environment.region}, but this stack deploys to ` +
          `${Token.isUnresolved(stack.region) ? 'whichever region it is deployed to' : stack.region}, and an EKS access ` +
          "entry can only be created in the stack's own region. Leave its region unset and deploy the stack to the " +
          "cluster's region.",
      );
    }
  }
  const projectNames = props.services.map((s) => s.project.projectName);
  const repositoryNames = props.services.map((s) => s.repository.repositoryName);
  if (
    !arnsFit([...projectNames, ...repositoryNames]) &&
    (commonPrefix(projectNames) === '' || commonPrefix(repositoryNames) === '')
  ) {
    throw new Error(
      `Deployer: ${props.services.length} services' repository and project ARNs do not fit in the role's policy, ` +
        'and their names share no prefix to grant on instead. Name the repositories and projects with a common ' +
        'prefix (as the registry and builds stacks do), or deploy fewer services per app.',
    );
  }
  if (props.vpc === undefined && (props.vpcSubnets ?? props.securityGroups) !== undefined) {
    throw new Error(
      'Deployer: vpcSubnets or securityGroups is set without vpc; set vpc too (the VPC of those subnets).',
    );
  }
}

/** The verification settings the construct writes for the deploy function, validated. */
function verificationSettings(props: DeployerProps): VerifySettings {
  const v = props.verification ?? {};
  const seconds = (
    what: string,
    value: Duration,
    fallback: number,
    { min, max }: { min: number; max: number },
  ): number => {
    const s = value.toSeconds({ integral: false });
    if (Token.isUnresolved(s)) {
      throw new Error(`Deployer: verification ${what} is a token; give a literal Duration.`);
    }
    if (!Number.isInteger(s) || s < min || s > max) {
      throw new Error(
        `Deployer: verification ${what} is ${s} s; give whole seconds from ${min} to ${max} ` +
          `(e.g. Duration.seconds(${fallback})).`,
      );
    }
    return s;
  };
  const byName = (
    field: string,
    given: Readonly<Record<string, Duration>> | undefined,
    known: readonly string[],
    kind: string,
    fallback: number,
    limits: { min: number; max: number },
  ): Record<string, number> => {
    const out: Record<string, number> = {};
    for (const [name, value] of Object.entries(given ?? {})) {
      if (!known.includes(name)) {
        throw new Error(
          `Deployer: verification ${field} names "${name}", which is not ${kind} ` +
            `(${known.join(', ')}). Remove it or fix the name.`,
        );
      }
      out[name] = seconds(`${field} of "${name}"`, value, fallback, limits);
    }
    return out;
  };
  const services = props.services.map(({ service }) => service.name);
  const environments = props.environments.map((e) => e.name);
  for (const name of v.noRollback ?? []) {
    if (!environments.includes(name)) {
      throw new Error(
        `Deployer: verification noRollback names "${name}", which is not an environment ` +
          `(${environments.join(', ')}). Remove it or fix the name.`,
      );
    }
  }
  const { deadlineSeconds: deadline, pollSeconds: poll } = VERIFY_DEFAULTS;
  return {
    pollSeconds:
      v.pollInterval === undefined
        ? poll
        : seconds('pollInterval', v.pollInterval, poll, VERIFY_LIMITS.pollSeconds),
    deadlineSeconds:
      v.deadline === undefined
        ? deadline
        : seconds('deadline', v.deadline, deadline, VERIFY_LIMITS.deadlineSeconds),
    serviceDeadlines: byName(
      'serviceDeadlines',
      v.serviceDeadlines,
      services,
      'a deployed service',
      deadline,
      VERIFY_LIMITS.deadlineSeconds,
    ),
    environmentDeadlines: byName(
      'environmentDeadlines',
      v.environmentDeadlines,
      environments,
      'an environment',
      deadline,
      VERIFY_LIMITS.deadlineSeconds,
    ),
    environmentPollSeconds: byName(
      'environmentPollIntervals',
      v.environmentPollIntervals,
      environments,
      'an environment',
      poll,
      VERIFY_LIMITS.pollSeconds,
    ),
    noRollback: [...new Set(v.noRollback ?? [])],
  };
}

/** The workflow's findings that hold by design, each with its reason. */
function acknowledgeWorkflow(
  deployer: Deployer,
  props: DeployerProps,
  verifyPolicy: iam.Policy,
  workflowPolicy: iam.Policy,
): void {
  for (const fn of [deployer.verifyFunction, deployer.reportFunction]) {
    Validations.of(fn).acknowledge({
      id: 'AwsSolutions-L1',
      reason:
        'Node.js 22 is the runtime the deploy functions are built and tested for (esbuild target node22, ' +
        'Powertools 2); moving to a newer runtime is a deliberate upgrade with its own tests, not a drift.',
    });
  }
  Validations.of(workflowPolicy).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'Step Functions delivers execution logs through CloudWatch Logs log deliveries: CreateLogDelivery and the ' +
      'other delivery actions name no log group and accept only "*" (Step Functions developer guide, logging).',
  });
  Validations.of(deployer.stateMachine).acknowledge({
    id: 'AwsSolutions-SF2',
    reason:
      "Every state's input, output and error is in the execution history and in the ALL-level execution log; " +
      'X-Ray would add cost and a wildcard IAM grant without telling more about a deploy.',
  });
  if (props.vpc !== undefined) {
    Validations.of(verifyPolicy).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "Lambda creates, describes and deletes the function's network interfaces in the VPC; these EC2 actions " +
        'name no resource Lambda could be limited to before the interfaces exist, and Describe* accept only "*".',
    });
  }
}

/** Findings that hold by design, each with its reason (written into the template too). */
function acknowledge(
  deployer: Deployer,
  props: DeployerProps,
  wildcardArns: readonly string[],
  policy: iam.Policy,
): void {
  Validations.of(deployer.function).acknowledge({
    id: 'AwsSolutions-L1',
    reason:
      'Node.js 22 is the runtime the deployer is built and tested for (esbuild target node22, Powertools 2); ' +
      'moving to a newer runtime is a deliberate upgrade with its own tests, not a drift.',
  });
  const stack = Stack.of(deployer);
  const acknowledgements: { id: string; reason: string }[] = [];
  if (props.vpc !== undefined) {
    acknowledgements.push({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason:
        "Lambda creates, describes and deletes the function's network interfaces in the VPC; these EC2 actions " +
        'name no resource Lambda could be limited to before the interfaces exist, and Describe* accept only "*".',
    });
  }
  for (const arn of wildcardArns) {
    acknowledgements.push({
      id: `AwsSolutions-IAM5[Resource::${nagResource(stack, arn)}]`,
      reason:
        "Too many services to list each repository and project ARN within IAM's policy size limit: the grant " +
        "covers the names' common prefix, which only this app's repositories and projects carry, for read-only actions.",
    });
  }
  if (acknowledgements.length > 0) Validations.of(policy).acknowledge(...acknowledgements);
}

/** A resource as cdk-nag writes it in a finding id: pseudo parameters as `<AWS::Name>`. */
function nagResource(stack: Stack, arn: string): string {
  const resolved = stack.resolve(arn) as unknown;
  if (typeof resolved === 'string') return resolved;
  const join = (resolved as { 'Fn::Join': [string, unknown[]] })['Fn::Join'];
  return join[1]
    .map((part) => (typeof part === 'string' ? part : `<${(part as { Ref: string }).Ref}>`))
    .join(join[0]);
}
