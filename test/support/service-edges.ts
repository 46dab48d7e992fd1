import {
  DeployedTemplate,
  evaluate,
  exportsOf,
  PolicyDocument,
  PolicyEvaluationError,
  Principal,
  Request,
  resolve,
  Statement,
} from './policy-eval';

/**
 * Every service→resource edge of synthesized templates, each as the requests AWS makes and the
 * policies it evaluates them against. The edges are read from the templates (alarm actions,
 * EventBridge targets and their dead-letter queues, Lambda destinations, dead-letter and event
 * sources, state machine roles and the functions their definitions call), so an edge added later
 * is checked without touching the test.
 */
export interface EdgeCheck {
  /** `<stack>/<logicalId> → <what>`: where the edge is, for the test's failure message. */
  readonly edge: string;
  readonly request: Request;
  readonly resource: readonly PolicyDocument[];
  readonly identity: readonly PolicyDocument[];
}

interface Located {
  readonly t: DeployedTemplate;
  readonly logicalId: string;
  readonly type: string;
}

/** Resolved ARNs, Refs and URLs of every resource, to find what a target ARN names. */
class Index {
  private readonly byId = new Map<string, Located>();

  constructor(readonly templates: readonly DeployedTemplate[]) {
    for (const t of templates) {
      for (const [logicalId, resource] of Object.entries(t.template.Resources)) {
        const located = { t, logicalId, type: resource.Type };
        for (const attribute of ['Ref', 'Arn']) {
          try {
            const value = resolve(
              t,
              attribute === 'Ref' ? { Ref: logicalId } : { 'Fn::GetAtt': [logicalId, 'Arn'] },
            );
            if (typeof value === 'string') this.byId.set(value, located);
          } catch (error) {
            if (!(error instanceof PolicyEvaluationError)) throw error;
          }
        }
      }
    }
  }

  find(id: string): Located | undefined {
    return this.byId.get(id);
  }

  resources(type: string): Located[] {
    return this.templates.flatMap((t) =>
      Object.entries(t.template.Resources)
        .filter(([, r]) => r.Type === type)
        .map(([logicalId]) => ({ t, logicalId, type })),
    );
  }
}

function props(l: Located): Record<string, unknown> {
  return l.t.template.Resources[l.logicalId]?.Properties ?? {};
}

function str(l: Located, value: unknown, what: string): string {
  const resolved = resolve(l.t, value);
  if (typeof resolved !== 'string') {
    throw new PolicyEvaluationError(`${where(l)} ${what} resolves to ${JSON.stringify(resolved)}`);
  }
  return resolved;
}

function where(l: Located): string {
  return `${l.t.env.stackName}/${l.logicalId}`;
}

function arnOf(l: Located): string {
  return str(l, { 'Fn::GetAtt': [l.logicalId, 'Arn'] }, 'Arn');
}

/** The action a service takes on a target, by the target ARN's service. */
function deliveryAction(arn: string): string {
  const service = arn.split(':')[2];
  const actions: Record<string, string> = {
    lambda: 'lambda:InvokeFunction',
    sqs: 'sqs:SendMessage',
    sns: 'sns:Publish',
    states: 'states:StartExecution',
    codebuild: 'codebuild:StartBuild',
    codepipeline: 'codepipeline:StartPipelineExecution',
    events: 'events:PutEvents',
  };
  const action = service === undefined ? undefined : actions[service];
  if (action === undefined) {
    throw new PolicyEvaluationError(
      `no known delivery action for target ${arn}: add it to service-edges`,
    );
  }
  return action;
}

function documentsOf(l: Located, value: unknown): PolicyDocument[] {
  return value === undefined ? [] : [resolve(l.t, value) as PolicyDocument];
}

/** A resource's own policy: topic, queue, key, function permissions; none for other kinds. */
function resourcePolicies(index: Index, target: Located, arn: string): PolicyDocument[] {
  switch (target.type) {
    case 'AWS::SNS::TopicPolicy':
      return [];
    case 'AWS::SNS::Topic': {
      const policies = index
        .resources('AWS::SNS::TopicPolicy')
        .filter((p) => (resolve(p.t, props(p).Topics) as unknown[]).includes(arn));
      if (policies.length === 0) {
        // Without a topic policy SNS applies its default one: the owner account's principals.
        return [
          {
            Statement: [
              {
                Sid: '__default_statement_ID',
                Effect: 'Allow',
                Principal: { AWS: '*' },
                Action: ['SNS:Publish', 'SNS:Subscribe', 'SNS:GetTopicAttributes'],
                Resource: arn,
                Condition: { StringEquals: { 'AWS:SourceOwner': target.t.env.account } },
              },
            ],
          },
        ];
      }
      return policies.flatMap((p) => documentsOf(p, props(p).PolicyDocument));
    }
    case 'AWS::SQS::Queue': {
      const url = str(target, { Ref: target.logicalId }, 'Ref');
      return index
        .resources('AWS::SQS::QueuePolicy')
        .filter((p) => (resolve(p.t, props(p).Queues) as unknown[]).includes(url))
        .flatMap((p) => documentsOf(p, props(p).PolicyDocument));
    }
    case 'AWS::KMS::Key':
      return documentsOf(target, props(target).KeyPolicy);
    case 'AWS::Lambda::Function': {
      const name = str(target, { Ref: target.logicalId }, 'Ref');
      const statements: Statement[] = index
        .resources('AWS::Lambda::Permission')
        .filter((p) => [name, arn].includes(str(p, props(p).FunctionName, 'FunctionName')))
        .map((p) => lambdaPermissionStatement(p, arn));
      return statements.length === 0 ? [] : [{ Statement: statements }];
    }
    default:
      return [];
  }
}

/** A Lambda permission as the statement Lambda writes into the function's policy. */
function lambdaPermissionStatement(p: Located, functionArn: string): Statement {
  const principal = str(p, props(p).Principal, 'Principal');
  const condition: Record<string, Record<string, unknown>> = {};
  if (props(p).SourceArn !== undefined) {
    condition.ArnLike = { 'AWS:SourceArn': str(p, props(p).SourceArn, 'SourceArn') };
  }
  if (props(p).SourceAccount !== undefined) {
    condition.StringEquals = {
      'AWS:SourceAccount': str(p, props(p).SourceAccount, 'SourceAccount'),
    };
  }
  return {
    Sid: p.logicalId,
    Effect: 'Allow',
    Principal: principal.includes('.') ? { Service: principal } : { AWS: principal },
    Action: str(p, props(p).Action, 'Action'),
    Resource: functionArn,
    ...(Object.keys(condition).length > 0 ? { Condition: condition } : {}),
  };
}

/** A role's policies: inline, and the template's AWS::IAM::Policy / ManagedPolicy naming it. */
function identityPolicies(index: Index, role: Located): PolicyDocument[] {
  const name = str(role, { Ref: role.logicalId }, 'Ref');
  const inline = (
    (props(role).Policies as { PolicyDocument: unknown }[] | undefined) ?? []
  ).flatMap((p) => documentsOf(role, p.PolicyDocument));
  const attached = ['AWS::IAM::Policy', 'AWS::IAM::ManagedPolicy'].flatMap((type) =>
    index
      .resources(type)
      .filter((p) => ((resolve(p.t, props(p).Roles ?? []) as unknown[]) ?? []).includes(name))
      .flatMap((p) => documentsOf(p, props(p).PolicyDocument)),
  );
  return [...inline, ...attached];
}

function located(index: Index, arn: string, from: Located, what: string): Located {
  const target = index.find(arn);
  if (target === undefined) {
    throw new PolicyEvaluationError(
      `${where(from)} ${what} ${arn} is not a resource of the synthesized templates: its policy cannot be checked`,
    );
  }
  return target;
}

/** What a service's request carries: who, where from (confused deputy), over TLS. */
function serviceContext(from: Located, sourceArn: string): Request['context'] {
  return {
    'aws:SourceArn': sourceArn,
    'aws:SourceAccount': from.t.env.account,
    'aws:SecureTransport': true,
    // SNS's older key for the caller's account, which its default topic policy tests.
    'AWS:SourceOwner': from.t.env.account,
  };
}

/** The checks of a service (or role) sending to a target, its encryption key included. */
function deliveryChecks(
  index: Index,
  edge: string,
  from: Located,
  principal: Principal,
  identity: PolicyDocument[],
  targetArn: string,
  context: Request['context'],
): EdgeCheck[] {
  const target = located(index, targetArn, from, 'target');
  const action = deliveryAction(targetArn);
  const checks: EdgeCheck[] = [
    {
      edge,
      request: { principal, action, resource: targetArn, context },
      resource: resourcePolicies(index, target, targetArn),
      identity,
    },
  ];
  const keyId =
    target.type === 'AWS::SNS::Topic'
      ? props(target).KmsMasterKeyId
      : target.type === 'AWS::SQS::Queue'
        ? props(target).KmsMasterKeyId
        : undefined;
  if (keyId !== undefined) {
    const keyRef = str(target, keyId, 'KmsMasterKeyId');
    const key = index.find(keyRef);
    if (key === undefined || key.type !== 'AWS::KMS::Key') {
      throw new PolicyEvaluationError(
        `${where(target)} is encrypted with ${keyRef}, not a key of the templates: an AWS managed key refuses other services`,
      );
    }
    const keyArn = arnOf(key);
    for (const kmsAction of ['kms:GenerateDataKey', 'kms:Decrypt']) {
      checks.push({
        edge: `${edge} (key ${where(key)})`,
        request: { principal, action: kmsAction, resource: keyArn, context },
        resource: resourcePolicies(index, key, keyArn),
        identity,
      });
    }
  }
  return checks;
}

/** The checks of a service acting through a role: the role trusts it, and the role may act. */
function roleChecks(
  index: Index,
  edge: string,
  from: Located,
  service: string,
  roleArn: string,
  sourceArn: string,
  targets: { arn: string; action?: string }[],
): EdgeCheck[] {
  const role = located(index, roleArn, from, 'role');
  const context = serviceContext(from, sourceArn);
  const checks: EdgeCheck[] = [
    {
      edge: `${edge} (assume ${where(role)})`,
      request: { principal: { service }, action: 'sts:AssumeRole', resource: roleArn, context },
      resource: documentsOf(role, props(role).AssumeRolePolicyDocument),
      identity: [],
    },
  ];
  const identity = identityPolicies(index, role);
  const roleContext = { 'aws:SecureTransport': true };
  for (const target of targets) {
    if (target.action !== undefined) {
      const resource = located(index, target.arn, from, 'target');
      checks.push({
        edge,
        request: {
          principal: { arn: roleArn },
          action: target.action,
          resource: target.arn,
          context: roleContext,
        },
        resource: resourcePolicies(index, resource, target.arn),
        identity,
      });
    } else {
      checks.push(
        ...deliveryChecks(index, edge, from, { arn: roleArn }, identity, target.arn, roleContext),
      );
    }
  }
  return checks;
}

function alarmEdges(index: Index): EdgeCheck[] {
  return index.resources('AWS::CloudWatch::Alarm').flatMap((alarm) => {
    const alarmArn = arnOf(alarm);
    return ['AlarmActions', 'OKActions', 'InsufficientDataActions'].flatMap((key) =>
      ((props(alarm)[key] as unknown[] | undefined) ?? []).flatMap((action) => {
        const arn = str(alarm, action, key);
        if (!arn.includes(':sns:')) {
          throw new PolicyEvaluationError(
            `${where(alarm)} ${key} ${arn}: only SNS actions are modelled`,
          );
        }
        return deliveryChecks(
          index,
          `${where(alarm)} → ${arn}`,
          alarm,
          { service: 'cloudwatch.amazonaws.com' },
          [],
          arn,
          serviceContext(alarm, alarmArn),
        );
      }),
    );
  });
}

function ruleEdges(index: Index): EdgeCheck[] {
  return index.resources('AWS::Events::Rule').flatMap((rule) => {
    const ruleArn = arnOf(rule);
    const targets = (props(rule).Targets as Record<string, unknown>[] | undefined) ?? [];
    return targets.flatMap((target) => {
      const arn = str(rule, target.Arn, 'Targets.Arn');
      const edge = `${where(rule)} → ${arn}`;
      const checks =
        target.RoleArn !== undefined
          ? roleChecks(
              index,
              edge,
              rule,
              'events.amazonaws.com',
              str(rule, target.RoleArn, 'RoleArn'),
              ruleArn,
              [{ arn }],
            )
          : deliveryChecks(
              index,
              edge,
              rule,
              { service: 'events.amazonaws.com' },
              [],
              arn,
              serviceContext(rule, ruleArn),
            );
      const dlq = (target.DeadLetterConfig as { Arn?: unknown } | undefined)?.Arn;
      if (dlq !== undefined) {
        const dlqArn = str(rule, dlq, 'DeadLetterConfig.Arn');
        checks.push(
          ...deliveryChecks(
            index,
            `${where(rule)} → dead-letter ${dlqArn}`,
            rule,
            { service: 'events.amazonaws.com' },
            [],
            dlqArn,
            serviceContext(rule, ruleArn),
          ),
        );
      }
      return checks;
    });
  });
}

function functionRole(index: Index, fn: Located): { roleArn: string; role: Located } {
  const roleArn = str(fn, props(fn).Role, 'Role');
  return { roleArn, role: located(index, roleArn, fn, 'role') };
}

function lambdaEdges(index: Index): EdgeCheck[] {
  const checks: EdgeCheck[] = [];
  const fromFunction = (fn: Located, targetArn: string, edge: string, action?: string): void => {
    const { roleArn, role } = functionRole(index, fn);
    const identity = identityPolicies(index, role);
    const context = { 'aws:SecureTransport': true };
    if (action === undefined) {
      checks.push(
        ...deliveryChecks(index, edge, fn, { arn: roleArn }, identity, targetArn, context),
      );
    } else {
      const target = located(index, targetArn, fn, 'event source');
      checks.push({
        edge,
        request: { principal: { arn: roleArn }, action, resource: targetArn, context },
        resource: resourcePolicies(index, target, targetArn),
        identity,
      });
    }
  };
  for (const config of index.resources('AWS::Lambda::EventInvokeConfig')) {
    const fnName = str(config, props(config).FunctionName, 'FunctionName');
    const fn = located(index, fnName, config, 'function');
    const destinations = props(config).DestinationConfig as
      Record<string, { Destination: unknown } | undefined> | undefined;
    for (const kind of ['OnFailure', 'OnSuccess']) {
      const destination = destinations?.[kind]?.Destination;
      if (destination === undefined) continue;
      const arn = str(config, destination, `${kind}.Destination`);
      fromFunction(fn, arn, `${where(fn)} ${kind} → ${arn}`);
    }
  }
  for (const fn of index.resources('AWS::Lambda::Function')) {
    const dlq = (props(fn).DeadLetterConfig as { TargetArn?: unknown } | undefined)?.TargetArn;
    if (dlq !== undefined) {
      const arn = str(fn, dlq, 'DeadLetterConfig.TargetArn');
      fromFunction(fn, arn, `${where(fn)} dead-letter → ${arn}`);
    }
  }
  for (const mapping of index.resources('AWS::Lambda::EventSourceMapping')) {
    const fnName = str(mapping, props(mapping).FunctionName, 'FunctionName');
    const fn = located(index, fnName, mapping, 'function');
    const source = str(mapping, props(mapping).EventSourceArn, 'EventSourceArn');
    if (!source.includes(':sqs:')) {
      throw new PolicyEvaluationError(
        `${where(mapping)}: only SQS event sources are modelled (${source})`,
      );
    }
    for (const action of ['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:GetQueueAttributes']) {
      fromFunction(fn, source, `${where(mapping)} ${source} → ${where(fn)}`, action);
    }
  }
  return checks;
}

function stateMachineEdges(index: Index): EdgeCheck[] {
  return index.resources('AWS::StepFunctions::StateMachine').flatMap((machine) => {
    if (props(machine).RoleArn === undefined) return [];
    const machineArn = arnOf(machine);
    const definition = JSON.stringify(
      resolve(machine.t, props(machine).DefinitionString ?? props(machine).Definition ?? ''),
    );
    // Every function and topic the definition names, as Task resources or task parameters.
    const named = [
      ...new Set(
        [
          ...definition.matchAll(/arn:[\w-]+:(?:lambda|sns):[\w-]+:\d{12}:(?:function:)?[\w.-]+/g),
        ].map((m) => m[0]),
      ),
    ];
    return roleChecks(
      index,
      `${where(machine)} role`,
      machine,
      'states.amazonaws.com',
      str(machine, props(machine).RoleArn, 'RoleArn'),
      machineArn,
      named.map((arn) => ({ arn })),
    ).map((c) => ({ ...c, edge: `${c.edge} → ${c.request.resource}` }));
  });
}

/** Every service→resource edge of the templates, each as one or more checks. */
export function serviceEdges(templates: readonly DeployedTemplate[]): EdgeCheck[] {
  const exports = exportsOf(templates);
  const withExports = templates.map((t) => ({ ...t, exports }));
  const index = new Index(withExports);
  return [
    ...alarmEdges(index),
    ...ruleEdges(index),
    ...lambdaEdges(index),
    ...stateMachineEdges(index),
  ];
}

/** The decision of each check, for a test to expect every one to be Allow. */
export function decide(check: EdgeCheck): string {
  return evaluate(check.request, { resource: check.resource, identity: check.identity });
}
