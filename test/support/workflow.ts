/**
 * The deploy workflow run locally: the state machine definition as CloudFormation gets it
 * (synthesized by the Deployer construct, its function ARNs resolved to fake ones), executed by
 * aws-local-stepfunctions, each Lambda Task routed by its `Resource` ARN to the real handler
 * in-process, and each Wait driven by the test's fake clock instead of sleeping.
 *
 * The Wait override: aws-local-stepfunctions lets a test shorten a Wait, not observe it, so the
 * clock moves when the next Check starts. That is faithful because in the definition every way
 * into Check, other than the start of a Map iteration and a Task retry, passes through exactly
 * one Wait (test/constructs/deploy-workflow.test.ts asserts it on the synthesized graph). Each
 * Map iteration keeps its own time, and the simulated cluster's clock is moved to the latest
 * (iterations wait side by side, as they do in Step Functions).
 */
import { Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ExecutionError, StateMachine } from 'aws-local-stepfunctions';
import type { Deployer } from '../../lib/constructs/deployer';
import { WORKFLOW_STATES } from '../../lib/constructs/deploy-workflow';

/** One event of an execution's log (the package does not export the type). */
export type EventLog =
  ReturnType<StateMachine['run']>['eventLogs'] extends AsyncGenerator<infer E> ? E : never;

/** An ASL document, as far as the tests read it. */
export interface AslState {
  readonly Type: string;
  readonly Resource?: string;
  readonly Next?: string;
  readonly End?: boolean;
  readonly Default?: string;
  readonly Choices?: readonly { readonly Next: string }[];
  readonly TimeoutSeconds?: number;
  readonly Retry?: readonly {
    readonly ErrorEquals: readonly string[];
    readonly MaxAttempts?: number;
  }[];
  readonly Catch?: readonly { readonly Next: string }[];
  readonly ItemProcessor?: AslDefinition;
  readonly [field: string]: unknown;
}
export interface AslDefinition {
  readonly StartAt: string;
  readonly States: Readonly<Record<string, AslState>>;
  readonly TimeoutSeconds?: number;
  readonly [field: string]: unknown;
}

/** The fake ARN a function's `Fn::GetAtt [<logicalId>, Arn]` resolves to here. */
export const fakeFunctionArn = (logicalId: string): string =>
  `arn:aws:lambda:us-east-1:123456789012:function:${logicalId}`;

/**
 * The state machine's definition from the synthesized template: the `DefinitionString`
 * Fn::Join with each function ARN replaced by {@link fakeFunctionArn}. Anything else unresolved
 * is an error (the definition must not depend on what the tests cannot see).
 */
export function synthesizedDefinition(
  stack: Stack,
  deployer: Deployer,
): {
  definition: AslDefinition;
  text: string;
  arns: { deploy: string; verify: string; report: string };
} {
  const template = Template.fromStack(stack).toJSON() as {
    Resources: Record<string, { Type: string; Properties: Record<string, unknown> }>;
  };
  const logicalId = (c: { node: { defaultChild?: unknown } }): string =>
    stack.getLogicalId(c.node.defaultChild as never);
  const machine = template.Resources[logicalId(deployer.stateMachine)]!;
  const part = (value: unknown): string => {
    if (typeof value === 'string') return value;
    const getAtt = (value as { 'Fn::GetAtt'?: [string, string] })['Fn::GetAtt'];
    if (getAtt !== undefined && getAtt[1] === 'Arn') {
      const resource = template.Resources[getAtt[0]];
      if (resource?.Type === 'AWS::Lambda::Function') return fakeFunctionArn(getAtt[0]);
    }
    throw new Error(`the definition holds an unresolvable value ${JSON.stringify(value)}`);
  };
  const body = machine.Properties.DefinitionString as string | { 'Fn::Join': [string, unknown[]] };
  const text =
    typeof body === 'string' ? body : body['Fn::Join'][1].map(part).join(body['Fn::Join'][0]);
  return {
    definition: JSON.parse(text) as AslDefinition,
    text,
    arns: {
      deploy: fakeFunctionArn(logicalId(deployer.function)),
      verify: fakeFunctionArn(logicalId(deployer.verifyFunction)),
      report: fakeFunctionArn(logicalId(deployer.reportFunction)),
    },
  };
}

/** Every state of the definition, the Map's inner ones too, by name. */
export function allStates(definition: AslDefinition): Map<string, AslState> {
  const states = new Map<string, AslState>();
  const visit = (d: AslDefinition): void => {
    for (const [name, state] of Object.entries(d.States)) {
      states.set(name, state);
      if (state.ItemProcessor !== undefined) visit(state.ItemProcessor);
    }
  };
  visit(definition);
  return states;
}

/** The names of the states that can move to `name` (Next, Choices, Default, Catch). */
export function predecessors(definition: AslDefinition, name: string): string[] {
  const from: string[] = [];
  for (const [source, state] of allStates(definition)) {
    const targets = [
      state.Next,
      state.Default,
      ...(state.Choices ?? []).map((c) => c.Next),
      ...(state.Catch ?? []).map((c) => c.Next),
    ];
    if (targets.includes(name)) from.push(source);
  }
  return from;
}

/** A fake clock the simulated cluster runs on. */
export interface SimulatedClock {
  now(): Date;
  tick(seconds: number): void;
}

export type TaskHandler = (input: never) => Promise<unknown>;

export interface RunOptions {
  readonly definition: AslDefinition;
  readonly arns: { deploy: string; verify: string; report: string };
  /** The real handlers (makeHandler with deps pointed at the local parts). */
  readonly handlers: { deploy: TaskHandler; verify: TaskHandler; report: TaskHandler };
  readonly clock: SimulatedClock;
  /** The EventBridge event: the execution's input. */
  readonly input: unknown;
  /** `$$.Execution.Id`. */
  readonly executionId: string;
  /**
   * Called before each handler invocation, by state name, with the count of that state's
   * invocations so far (1 for the first): to inject a failure or a person's change.
   */
  readonly beforeTask?: (state: string, count: number, input: unknown) => void | Promise<void>;
}

export interface RunResult {
  readonly status: 'SUCCEEDED' | 'FAILED';
  readonly output?: unknown;
  readonly error?: string;
  readonly cause?: string;
  /** Each state entered, in order, with its input (Map iterations included). */
  readonly entered: { readonly state: string; readonly input: unknown }[];
  /** The events aws-local-stepfunctions logged (retries, failures…). */
  readonly events: EventLog[];
  /** Invocations per function. */
  readonly invocations: { deploy: number; verify: number; report: number };
}

/** Runs one execution to its end. */
export async function runWorkflow(options: RunOptions): Promise<RunResult> {
  const { definition, arns, handlers, clock } = options;
  const byArn = new Map<string, keyof RunOptions['handlers']>([
    [arns.deploy, 'deploy'],
    [arns.verify, 'verify'],
    [arns.report, 'report'],
  ]);
  const invocations = { deploy: 0, verify: 0, report: 0 };
  const byState = new Map<string, number>();
  // Per Map iteration (execution, environment, Deployment): its own simulated time.
  const iterations = new Map<string, { at: number; retry: boolean }>();

  const taskResourceLocalHandlers: Record<string, (input: never) => Promise<never>> = {};
  for (const [name, state] of allStates(definition)) {
    if (state.Type !== 'Task') continue;
    const fn = byArn.get(state.Resource ?? '');
    if (fn === undefined) {
      throw new Error(
        `Task ${name} invokes ${String(state.Resource)}, which is none of our functions`,
      );
    }
    taskResourceLocalHandlers[name] = async (input: never): Promise<never> => {
      if (name === WORKFLOW_STATES.check) advanceClock(input);
      invocations[fn] += 1;
      const count = (byState.get(name) ?? 0) + 1;
      byState.set(name, count);
      await options.beforeTask?.(name, count, input);
      try {
        return (await handlers[fn](input)) as never;
      } catch (error) {
        if (name === WORKFLOW_STATES.check) markRetry(input);
        throw error;
      }
    };
  }

  function iterationKey(input: unknown): string {
    const target = (
      input as { item: { target: { environment: string; namespace: string; deployment: string } } }
    ).item.target;
    return `${options.executionId}|${target.environment}|${target.namespace}/${target.deployment}`;
  }
  function advanceClock(input: unknown): void {
    const key = iterationKey(input);
    const seen = iterations.get(key);
    const nowSeconds = clock.now().getTime() / 1000;
    if (seen === undefined) {
      iterations.set(key, { at: nowSeconds, retry: false });
      return;
    }
    if (seen.retry) {
      seen.retry = false;
      return;
    }
    // This Check follows the iteration's Wait of `pollSeconds`.
    seen.at += (input as { item: { pollSeconds: number } }).item.pollSeconds;
    const ahead = Math.round(seen.at - nowSeconds);
    if (ahead > 0) clock.tick(ahead);
  }
  function markRetry(input: unknown): void {
    const seen = iterations.get(iterationKey(input));
    if (seen !== undefined) seen.retry = true;
  }

  const machine = new StateMachine(definition as never, {
    // The Resource of a Task is a function ARN: checked. JSONPaths are checked too.
    validationOptions: { checkArn: true, checkPaths: true },
  });
  const waitTimeOverrides: Record<string, number> = {};
  const retryIntervalOverrides: Record<string, number> = {};
  for (const [name, state] of allStates(definition)) {
    if (state.Type === 'Wait') waitTimeOverrides[name] = 0;
    if (state.Retry !== undefined) retryIntervalOverrides[name] = 0;
  }
  const execution = machine.run(options.input as never, {
    overrides: {
      taskResourceLocalHandlers: taskResourceLocalHandlers as never,
      waitTimeOverrides,
      retryIntervalOverrides,
    },
    context: {
      Execution: {
        Id: options.executionId,
        Input: options.input as never,
        StartTime: clock.now().toISOString(),
      },
    },
  });
  const events: EventLog[] = [];
  const entered: { state: string; input: unknown }[] = [];
  const logging = (async () => {
    for await (const event of execution.eventLogs) {
      events.push(event);
      if (event.type === 'StateEntered') {
        entered.push({ state: event.state.name, input: event.state.input });
      }
    }
  })();
  try {
    const output = await execution.result;
    await logging;
    return { status: 'SUCCEEDED', output, entered, events, invocations };
  } catch (error) {
    await logging;
    if (!(error instanceof ExecutionError)) throw error;
    const failed = events.find((e) => e.type === 'ExecutionFailed') as
      { Error?: string; Cause?: string } | undefined;
    return {
      status: 'FAILED',
      error: failed?.Error ?? error.name,
      cause: failed?.Cause ?? error.message,
      entered,
      events,
      invocations,
    };
  }
}
