/**
 * The deploy workflow's graph (Amazon States Language, JSONPath), built from CDK states: one
 * execution per build, the picture of a deploy a person opens in the console.
 *
 *   Deploy ─▶ Verify (Map, one iteration per deployed Deployment) ─▶ Report ─▶ Outcome
 *               Check ─▶ Judge ─┬─ progressing ─▶ Wait ─▶ Check
 *                  ▲            ├─ failed, may roll back ─▶ Rollback ─▶ Judge
 *                  │            ├─ ready ─▶ Verified | RolledBack
 *                  │            ├─ failed ─▶ VerifyFailed | RollbackFailed
 *                  │            └─ superseded, changed ─▶ Stopped
 *
 * The state data is the Lambdas' I/O contract (lambda/*: `DeployStepOutput`, `VerifyItem`,
 * `ReportStepOutput`): each Lambda returns the whole next state, so no JSONPath here ever points
 * at a field that may be absent (a missing path fails the execution with States.Runtime).
 */
import { Duration } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import * as tasks from 'aws-cdk-lib/aws-stepfunctions-tasks';
import { Construct } from 'constructs';

/** The states' names: the console shows them, the tests and the local harness route by them. */
export const WORKFLOW_STATES = {
  deploy: 'Deploy',
  verify: 'Verify',
  check: 'Check',
  judge: 'Judge',
  wait: 'Wait',
  rollback: 'Rollback',
  verified: 'Verified',
  rolledBack: 'RolledBack',
  verifyFailed: 'VerifyFailed',
  rollbackFailed: 'RollbackFailed',
  stopped: 'Stopped',
  unknownVerdict: 'UnknownVerdict',
  report: 'Report',
  outcome: 'Outcome',
  done: 'Done',
  failed: 'Failed',
} as const;

/** The error a failed execution ends with when a Deployment is left failed (the alarm fires). */
export const WORKFLOW_FAILED_ERROR = 'DeployNotVerified';

/**
 * Errors a Task retries: the handlers' own `TransientError` (thrown after their bounded in-process
 * retries), Lambda throttling, and a Task that timed out (a hung connection). Lambda's service
 * errors are retried by CDK's default retrier (2 s, 6 attempts, backoff 2), kept as it is.
 */
export const TRANSIENT_ERRORS = [
  'TransientError',
  'Lambda.TooManyRequestsException',
  'States.Timeout',
] as const;

/** The three functions the workflow invokes, with the timeout each Task allows it. */
export interface WorkflowFunctions {
  readonly deploy: lambda.IFunction;
  readonly verify: lambda.IFunction;
  readonly report: lambda.IFunction;
  /** Each Task's TimeoutSeconds: a little over its function's own timeout. */
  readonly taskTimeouts: {
    readonly deploy: Duration;
    readonly verify: Duration;
    readonly report: Duration;
  };
}

/** Builds the graph in `scope`; returns its start. */
export function deployWorkflow(scope: Construct, fns: WorkflowFunctions): sfn.IChainable {
  const S = WORKFLOW_STATES;
  const invoke = (
    id: string,
    fn: lambda.IFunction,
    timeout: Duration,
    payload: Record<string, unknown> | undefined,
    /** undefined: the result replaces the state (ResultPath's default, `$`). */
    resultPath: string | undefined,
    comment: string,
  ): tasks.LambdaInvoke => {
    const task = new tasks.LambdaInvoke(scope, id, {
      lambdaFunction: fn,
      comment,
      // The function's answer is the task's output, with no {Payload, StatusCode…} wrapper.
      payloadResponseOnly: true,
      payload: payload === undefined ? undefined : sfn.TaskInput.fromObject(payload),
      // Left out rather than written `$`: the same in AWS, and aws-local-stepfunctions 3.0.0
      // would read an explicit `$` as a field named "$".
      ...(resultPath === undefined ? {} : { resultPath }),
      taskTimeout: sfn.Timeout.duration(timeout),
    });
    task.addRetry({
      errors: [...TRANSIENT_ERRORS],
      interval: Duration.seconds(5),
      maxAttempts: 3,
      backoffRate: 2,
      jitterStrategy: sfn.JitterType.FULL,
    });
    return task;
  };

  const deploy = invoke(
    S.deploy,
    fns.deploy,
    fns.taskTimeouts.deploy,
    {
      event: sfn.JsonPath.entirePayload,
      // The lease on each Deployment names this execution (duplicates verify only once).
      execution: sfn.JsonPath.stringAt('$$.Execution.Id'),
    },
    undefined,
    'Parse the build event, plan, patch each Deployment (taking its verification lease)',
  );

  const check = invoke(
    S.check,
    fns.verify,
    fns.taskTimeouts.verify,
    { action: 'check', item: sfn.JsonPath.entirePayload },
    undefined,
    "Read the Deployment, its new ReplicaSet and pods; judge this iteration's verdict",
  );
  const rollback = invoke(
    S.rollback,
    fns.verify,
    fns.taskTimeouts.verify,
    { action: 'rollback', item: sfn.JsonPath.entirePayload },
    undefined,
    'Patch back to the last verified image (conditional), record the failed digest as rejected',
  );
  const wait = new sfn.Wait(scope, S.wait, {
    comment: 'The poll interval of this service and environment',
    time: sfn.WaitTime.secondsPath('$.pollSeconds'),
  });
  const state = (value: string): sfn.Condition =>
    sfn.Condition.stringEquals('$.verdict.state', value);
  const phase = (value: string): sfn.Condition =>
    sfn.Condition.stringEquals('$.target.phase', value);
  const judge = new sfn.Choice(scope, S.judge, { comment: 'What the verdict means' })
    .when(state('progressing'), wait.next(check))
    .when(sfn.Condition.and(state('ready'), phase('verify')), new sfn.Succeed(scope, S.verified))
    .when(
      sfn.Condition.and(state('ready'), phase('rollback')),
      new sfn.Succeed(scope, S.rolledBack),
    )
    .when(
      sfn.Condition.and(
        state('failed'),
        phase('verify'),
        sfn.Condition.booleanEquals('$.rollback', true),
      ),
      rollback,
    )
    .when(
      sfn.Condition.and(state('failed'), phase('verify')),
      new sfn.Succeed(scope, S.verifyFailed),
    )
    .when(state('failed'), new sfn.Succeed(scope, S.rollbackFailed))
    .when(
      sfn.Condition.or(state('superseded'), state('changed')),
      new sfn.Succeed(scope, S.stopped, {
        comment: 'Someone else changed or paused the Deployment: nothing is rolled back',
      }),
    )
    .otherwise(
      new sfn.Fail(scope, S.unknownVerdict, {
        error: 'UnknownVerdict',
        cause:
          'The verify function returned a verdict this workflow does not know (a version mismatch).',
      }),
    );
  check.next(judge);
  rollback.next(judge);

  const verify = new sfn.Map(scope, S.verify, {
    comment: 'Each deployed Deployment, verified (and rolled back) on its own',
    itemsPath: '$.targets',
    maxConcurrency: 10,
    resultPath: '$.verdicts',
  }).itemProcessor(check);

  const report = invoke(
    S.report,
    fns.report,
    fns.taskTimeouts.report,
    undefined,
    '$.report',
    'One notification for the build, every verdict in it; the outcome metrics',
  );
  const outcome = new sfn.Choice(scope, S.outcome)
    .when(
      sfn.Condition.booleanEquals('$.report.failed', true),
      new sfn.Fail(scope, S.failed, {
        error: WORKFLOW_FAILED_ERROR,
        cause:
          'A Deployment failed verification and was not rolled back, or its rollback failed: the Report ' +
          "step's output and the notification say which and why.",
      }),
    )
    .otherwise(new sfn.Succeed(scope, S.done));

  return deploy.next(verify).next(report).next(outcome);
}
