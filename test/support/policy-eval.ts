/**
 * IAM policy evaluation as AWS documents it, for synthesized templates: resource policies (SNS
 * topic, SQS queue, KMS key, Lambda permissions), role trust and identity policies, and the
 * CloudFormation intrinsics they are written with, resolved against a fixed account and region.
 *
 * Evaluation (IAM user guide, "Policy evaluation logic", same account): an explicit Deny in any
 * applicable policy wins; otherwise an Allow in an applicable policy allows; otherwise the request
 * is implicitly denied. A statement applies when its principal (or NotPrincipal), action (or
 * NotAction), resource (or NotResource) and every condition match the request. Condition keys are
 * case-insensitive; a key absent from the request fails every operator except the negated ones
 * (`…Not…`), which it satisfies, and `…IfExists`, which it satisfies too. An operator this module
 * does not know is an error, never a silent pass or fail.
 */

/** Where the template is deployed: every pseudo parameter and generated name comes from here. */
export interface Environment {
  readonly account: string;
  readonly region: string;
  readonly partition: string;
  readonly urlSuffix: string;
  readonly stackName: string;
}

export const TEST_ENVIRONMENT: Omit<Environment, 'stackName'> = {
  account: '123456789012',
  region: 'eu-west-1',
  partition: 'aws',
  urlSuffix: 'amazonaws.com',
};

/** Who makes the request: an AWS service (its principal name) or an IAM principal ARN. */
export type Principal = { readonly service: string } | { readonly arn: string };

export interface Request {
  readonly principal: Principal;
  readonly action: string;
  readonly resource: string;
  /** Request context keys (any case) and their values. */
  readonly context: Readonly<Record<string, string | boolean | readonly string[]>>;
}

export interface Statement {
  Sid?: string;
  Effect: 'Allow' | 'Deny';
  Principal?: unknown;
  NotPrincipal?: unknown;
  Action?: string | string[];
  NotAction?: string | string[];
  Resource?: string | string[];
  NotResource?: string | string[];
  Condition?: Record<string, Record<string, unknown>>;
}

export interface PolicyDocument {
  Version?: string;
  Statement: Statement | Statement[];
}

export type Decision = 'Allow' | 'ExplicitDeny' | 'ImplicitDeny';

/** A policy or intrinsic this module cannot evaluate: a finding, not a pass. */
export class PolicyEvaluationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'PolicyEvaluationError';
  }
}

function list<T>(value: T | readonly T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? [...(value as T[])] : [value as T];
}

/** IAM's wildcard match: `*` any run of characters, `?` one character. */
export function wildcardMatch(pattern: string, value: string, ignoreCase = false): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('')
      .map((c) => (c === '*' ? '.*' : c === '?' ? '.' : c.replace(/[.+^${}()|[\]\\]/g, '\\$&')))
      .join('')}$`,
    ignoreCase ? 'is' : 's',
  );
  return regex.test(value);
}

/** ARN matching: six colon-separated parts, each matched on its own (ArnLike / ArnEquals). */
function arnMatch(pattern: string, value: string): boolean {
  const p = pattern.split(':');
  const v = value.split(':');
  if (p.length < 6 || v.length < 6) return false;
  const pHead = p.slice(0, 5);
  const vHead = v.slice(0, 5);
  if (!pHead.every((part, i) => wildcardMatch(part, vHead[i] ?? ''))) return false;
  return wildcardMatch(p.slice(5).join(':'), v.slice(5).join(':'));
}

type Operator = (pattern: string, value: string) => boolean;

const OPERATORS: Record<string, { match: Operator; negated: boolean }> = {
  StringEquals: { match: (p, v) => p === v, negated: false },
  StringNotEquals: { match: (p, v) => p === v, negated: true },
  StringEqualsIgnoreCase: { match: (p, v) => p.toLowerCase() === v.toLowerCase(), negated: false },
  StringLike: { match: (p, v) => wildcardMatch(p, v), negated: false },
  StringNotLike: { match: (p, v) => wildcardMatch(p, v), negated: true },
  ArnEquals: { match: arnMatch, negated: false },
  ArnLike: { match: arnMatch, negated: false },
  ArnNotEquals: { match: arnMatch, negated: true },
  ArnNotLike: { match: arnMatch, negated: true },
  Bool: { match: (p, v) => p.toLowerCase() === v.toLowerCase(), negated: false },
};

function contextValue(request: Request, key: string): string[] | undefined {
  const found = Object.entries(request.context).find(
    ([k]) => k.toLowerCase() === key.toLowerCase(),
  );
  if (found === undefined) return undefined;
  return list(found[1] as string | boolean | string[]).map(String);
}

/** Does one condition block (operator → key → values) hold for the request? */
export function conditionHolds(
  operator: string,
  key: string,
  patterns: unknown,
  request: Request,
): boolean {
  let name = operator;
  let set: 'ForAnyValue' | 'ForAllValues' | undefined;
  const qualified = /^(ForAnyValue|ForAllValues):(.+)$/.exec(name);
  if (qualified !== null) {
    set = qualified[1] as 'ForAnyValue' | 'ForAllValues';
    name = qualified[2] as string;
  }
  const ifExists = name.endsWith('IfExists');
  if (ifExists) name = name.slice(0, -'IfExists'.length);
  const op = OPERATORS[name];
  if (op === undefined) {
    throw new PolicyEvaluationError(
      `condition operator ${operator} is not supported by policy-eval: add it (with a test) before relying on it`,
    );
  }
  const values = list(patterns).map((p) => {
    if (typeof p !== 'string' && typeof p !== 'boolean') {
      throw new PolicyEvaluationError(
        `condition ${operator} ${key} has an unresolved value ${JSON.stringify(p)}`,
      );
    }
    return String(p);
  });
  const actual = contextValue(request, key);
  if (actual === undefined) return ifExists || op.negated || set === 'ForAllValues';
  const matchesOne = (v: string): boolean => values.some((p) => op.match(p, v));
  if (set === 'ForAllValues') {
    return actual.every((v) => (op.negated ? !matchesOne(v) : matchesOne(v)));
  }
  // Single-valued keys and ForAnyValue: one request value matching one policy value suffices
  // (negated operators: none may match).
  return op.negated ? !actual.some(matchesOne) : actual.some(matchesOne);
}

function principalMatches(policyPrincipal: unknown, principal: Principal): boolean {
  if (policyPrincipal === '*') return true;
  if (typeof policyPrincipal !== 'object' || policyPrincipal === null) {
    throw new PolicyEvaluationError(
      `principal ${JSON.stringify(policyPrincipal)} is not a principal block`,
    );
  }
  for (const [kind, value] of Object.entries(policyPrincipal)) {
    for (const entry of list(value as string | string[])) {
      if (typeof entry !== 'string') {
        throw new PolicyEvaluationError(`principal ${kind} ${JSON.stringify(entry)} is unresolved`);
      }
      if (kind === 'AWS' && entry === '*') return true;
      if (kind === 'Service' && 'service' in principal && entry === principal.service) return true;
      if (kind === 'AWS' && 'arn' in principal) {
        if (entry === principal.arn) return true;
        // An account principal stands for every principal of the account.
        const account = /^(?:arn:[^:]+:iam::)?(\d{12})(?::root)?$/.exec(entry)?.[1];
        if (account !== undefined && principal.arn.split(':')[4] === account) return true;
      }
    }
  }
  return false;
}

/** Does the statement apply to the request (its effect aside)? */
export function statementApplies(
  statement: Statement,
  request: Request,
  options: { identityPolicy?: boolean } = {},
): boolean {
  if (!options.identityPolicy) {
    if (statement.Principal !== undefined) {
      if (!principalMatches(statement.Principal, request.principal)) return false;
    } else if (statement.NotPrincipal !== undefined) {
      if (principalMatches(statement.NotPrincipal, request.principal)) return false;
    } else {
      throw new PolicyEvaluationError(
        `statement ${statement.Sid ?? '(no Sid)'} of a resource policy has neither Principal nor NotPrincipal`,
      );
    }
  }
  const actionIn = (patterns: string[]): boolean =>
    patterns.some((p) => wildcardMatch(p, request.action, true));
  if (statement.Action !== undefined) {
    if (!actionIn(list(statement.Action))) return false;
  } else if (statement.NotAction !== undefined) {
    if (actionIn(list(statement.NotAction))) return false;
  } else {
    throw new PolicyEvaluationError(`statement ${statement.Sid ?? '(no Sid)'} has no Action`);
  }
  const resourceIn = (patterns: string[]): boolean =>
    patterns.some((p) => {
      if (typeof p !== 'string') {
        throw new PolicyEvaluationError(`resource ${JSON.stringify(p)} is unresolved`);
      }
      return wildcardMatch(p, request.resource);
    });
  if (statement.Resource !== undefined) {
    if (!resourceIn(list(statement.Resource))) return false;
  } else if (statement.NotResource !== undefined) {
    if (resourceIn(list(statement.NotResource))) return false;
  } else if (options.identityPolicy) {
    throw new PolicyEvaluationError(`statement ${statement.Sid ?? '(no Sid)'} has no Resource`);
  }
  for (const [operator, block] of Object.entries(statement.Condition ?? {})) {
    for (const [key, patterns] of Object.entries(block)) {
      if (!conditionHolds(operator, key, patterns, request)) return false;
    }
  }
  return true;
}

/**
 * The decision of a set of policies for one request: explicit Deny wins, then any Allow.
 * `identity` policies are attached to the caller (no Principal element); `resource` ones to the
 * resource. Same-account evaluation: either kind may allow.
 */
export function evaluate(
  request: Request,
  policies: { resource?: readonly PolicyDocument[]; identity?: readonly PolicyDocument[] },
): Decision {
  const applicable: Statement[] = [];
  for (const [documents, identityPolicy] of [
    [policies.resource ?? [], false],
    [policies.identity ?? [], true],
  ] as const) {
    for (const document of documents) {
      for (const statement of list(document.Statement)) {
        if (statementApplies(statement, request, { identityPolicy })) applicable.push(statement);
      }
    }
  }
  if (applicable.some((s) => s.Effect === 'Deny')) return 'ExplicitDeny';
  if (applicable.some((s) => s.Effect === 'Allow')) return 'Allow';
  return 'ImplicitDeny';
}

// ---- CloudFormation templates ----

export interface CfnResource {
  Type: string;
  Properties?: Record<string, unknown>;
  DependsOn?: unknown;
}

export interface CfnTemplate {
  Resources: Record<string, CfnResource>;
  Outputs?: Record<string, { Value: unknown; Export?: { Name: unknown } }>;
  Parameters?: Record<string, { Default?: unknown }>;
}

/** A template with where it is deployed; `exports` holds every stack's exports, by name. */
export interface DeployedTemplate {
  readonly template: CfnTemplate;
  readonly env: Environment;
  readonly exports?: ReadonlyMap<string, string>;
}

/**
 * The physical name a resource gets when the template does not name it: CloudFormation's form
 * `<stack>-<logicalId>-<suffix>` with a fixed suffix, so that a policy written with the
 * stack-name prefix (as CloudFormation guarantees) matches and one naming another stack does not.
 */
export function generatedName(env: Environment, logicalId: string): string {
  return `${env.stackName}-${logicalId}-GENERATED1`;
}

function property(resource: CfnResource, name: string): unknown {
  return resource.Properties?.[name];
}

function nameOf(
  t: DeployedTemplate,
  logicalId: string,
  resource: CfnResource,
  key: string,
): string {
  const given = property(resource, key);
  if (given === undefined) return generatedName(t.env, logicalId);
  const resolved = resolve(t, given);
  if (typeof resolved !== 'string') {
    throw new PolicyEvaluationError(`${logicalId}.${key} does not resolve to a string`);
  }
  return resolved;
}

/** What Ref and Fn::GetAtt give for the resource types the edges involve. */
function attributes(t: DeployedTemplate, logicalId: string): Record<string, string> {
  const resource = t.template.Resources[logicalId];
  if (resource === undefined) {
    throw new PolicyEvaluationError(`no resource ${logicalId} in stack ${t.env.stackName}`);
  }
  const { account, region, partition, urlSuffix } = t.env;
  const prefix = (service: string): string => `arn:${partition}:${service}:${region}:${account}:`;
  switch (resource.Type) {
    case 'AWS::SNS::Topic': {
      const arn = prefix('sns') + nameOf(t, logicalId, resource, 'TopicName');
      return { Ref: arn, TopicArn: arn, TopicName: arn.split(':')[5] as string };
    }
    case 'AWS::SQS::Queue': {
      const name = nameOf(t, logicalId, resource, 'QueueName');
      return {
        Ref: `https://sqs.${region}.${urlSuffix}/${account}/${name}`,
        Arn: prefix('sqs') + name,
        QueueName: name,
        QueueUrl: `https://sqs.${region}.${urlSuffix}/${account}/${name}`,
      };
    }
    case 'AWS::Lambda::Function': {
      const name = nameOf(t, logicalId, resource, 'FunctionName');
      return { Ref: name, Arn: `${prefix('lambda')}function:${name}` };
    }
    case 'AWS::IAM::Role': {
      const name = nameOf(t, logicalId, resource, 'RoleName');
      return {
        Ref: name,
        Arn: `arn:${partition}:iam::${account}:role/${name}`,
        RoleId: `AROA${logicalId}`,
      };
    }
    case 'AWS::KMS::Key': {
      const id = `00000000-key-${logicalId}`;
      return { Ref: id, KeyId: id, Arn: `${prefix('kms')}key/${id}` };
    }
    case 'AWS::CloudWatch::Alarm': {
      const name = nameOf(t, logicalId, resource, 'AlarmName');
      return { Ref: name, Arn: `${prefix('cloudwatch')}alarm:${name}` };
    }
    case 'AWS::Events::Rule': {
      const name = nameOf(t, logicalId, resource, 'Name');
      return { Ref: name, Arn: `${prefix('events')}rule/${name}` };
    }
    case 'AWS::StepFunctions::StateMachine': {
      const name = nameOf(t, logicalId, resource, 'StateMachineName');
      const arn = `${prefix('states')}stateMachine:${name}`;
      return { Ref: arn, Arn: arn, Name: name };
    }
    case 'AWS::CodeBuild::Project': {
      const name = nameOf(t, logicalId, resource, 'Name');
      return { Ref: name, Arn: `${prefix('codebuild')}project/${name}` };
    }
    case 'AWS::Logs::LogGroup': {
      const name = nameOf(t, logicalId, resource, 'LogGroupName');
      return { Ref: name, Arn: `${prefix('logs')}log-group:${name}:*` };
    }
    case 'AWS::ECR::Repository': {
      const name = nameOf(t, logicalId, resource, 'RepositoryName');
      return { Ref: name, Arn: `${prefix('ecr')}repository/${name}` };
    }
    default:
      // Other resources: Ref is a stable stand-in id, so policies naming them still resolve.
      return { Ref: `${logicalId}-ref` };
  }
}

function pseudo(env: Environment, name: string): string | undefined {
  const values: Record<string, string> = {
    'AWS::AccountId': env.account,
    'AWS::Region': env.region,
    'AWS::Partition': env.partition,
    'AWS::URLSuffix': env.urlSuffix,
    'AWS::StackName': env.stackName,
    'AWS::StackId': `arn:${env.partition}:cloudformation:${env.region}:${env.account}:stack/${env.stackName}/id`,
    'AWS::NoValue': undefined as unknown as string,
  };
  return name in values ? values[name] : undefined;
}

function ref(t: DeployedTemplate, name: string): string {
  const value = pseudo(t.env, name);
  if (value !== undefined) return value;
  const parameter = t.template.Parameters?.[name];
  if (parameter !== undefined) {
    if (typeof parameter.Default !== 'string') {
      throw new PolicyEvaluationError(`parameter ${name} has no string default`);
    }
    return parameter.Default;
  }
  const attribute = attributes(t, name).Ref;
  if (attribute === undefined) throw new PolicyEvaluationError(`cannot resolve Ref ${name}`);
  return attribute;
}

function getAtt(t: DeployedTemplate, logicalId: string, attribute: string): string {
  const value = attributes(t, logicalId)[attribute];
  if (value === undefined) {
    throw new PolicyEvaluationError(
      `cannot resolve Fn::GetAtt ${logicalId}.${attribute} (${t.template.Resources[logicalId]?.Type ?? 'no such resource'})`,
    );
  }
  return value;
}

/** A template value with every intrinsic function resolved; throws on one it cannot resolve. */
export function resolve(t: DeployedTemplate, value: unknown): unknown {
  if (Array.isArray(value)) return value.map((v) => resolve(t, v));
  if (typeof value !== 'object' || value === null) return value;
  const entries = Object.entries(value as Record<string, unknown>);
  if (entries.length === 1) {
    const [fn, arg] = entries[0] as [string, unknown];
    switch (fn) {
      case 'Ref':
        return ref(t, arg as string);
      case 'Fn::GetAtt': {
        const [logicalId, attribute] =
          typeof arg === 'string'
            ? (arg.split(/\.(.*)/s) as [string, string])
            : (arg as [string, string]);
        return getAtt(t, logicalId, attribute);
      }
      case 'Fn::Join': {
        const [separator, parts] = arg as [string, unknown[]];
        return (resolve(t, parts) as unknown[]).map((p) => asString(p, 'Fn::Join')).join(separator);
      }
      case 'Fn::Sub': {
        const [text, variables] =
          typeof arg === 'string' ? [arg, {}] : (arg as [string, Record<string, unknown>]);
        const resolvedVariables = resolve(t, variables) as Record<string, unknown>;
        return text.replace(/\$\{([^}!][^}]*)\}/g, (_m, name: string) => {
          if (name in resolvedVariables) return asString(resolvedVariables[name], 'Fn::Sub');
          if (name.includes('.')) {
            const [logicalId, attribute] = name.split(/\.(.*)/s) as [string, string];
            return getAtt(t, logicalId, attribute);
          }
          return ref(t, name);
        });
      }
      case 'Fn::Select': {
        const [index, items] = arg as [unknown, unknown];
        const resolved = resolve(t, items) as unknown[];
        return resolved[Number(resolve(t, index))];
      }
      case 'Fn::Split': {
        const [separator, source] = arg as [string, unknown];
        return asString(resolve(t, source), 'Fn::Split').split(separator);
      }
      case 'Fn::ImportValue': {
        const name = asString(resolve(t, arg), 'Fn::ImportValue');
        const exported = t.exports?.get(name);
        if (exported === undefined) throw new PolicyEvaluationError(`no stack exports ${name}`);
        return exported;
      }
      default:
        if (fn.startsWith('Fn::') || fn === 'Condition') {
          throw new PolicyEvaluationError(`intrinsic ${fn} is not supported by policy-eval`);
        }
    }
  }
  return Object.fromEntries(entries.map(([k, v]) => [k, resolve(t, v)]));
}

function asString(value: unknown, where: string): string {
  if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
    throw new PolicyEvaluationError(`${where}: ${JSON.stringify(value)} is not a string`);
  }
  return String(value);
}

/** Every export of these templates, resolved in its own stack. */
export function exportsOf(templates: readonly DeployedTemplate[]): Map<string, string> {
  const exports = new Map<string, string>();
  for (const t of templates) {
    for (const output of Object.values(t.template.Outputs ?? {})) {
      if (output.Export === undefined) continue;
      try {
        exports.set(
          asString(resolve(t, output.Export.Name), 'Export'),
          asString(resolve(t, output.Value), 'Export'),
        );
      } catch (error) {
        if (!(error instanceof PolicyEvaluationError)) throw error;
      }
    }
  }
  return exports;
}
