import {
  DeployedTemplate,
  evaluate,
  PolicyDocument,
  PolicyEvaluationError,
  Request,
  resolve,
  Statement,
  TEST_ENVIRONMENT,
  wildcardMatch,
} from './policy-eval';

const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:alerts';
const ALARM = 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:errors';

function request(overrides: Partial<Request> = {}): Request {
  return {
    principal: { service: 'cloudwatch.amazonaws.com' },
    action: 'sns:Publish',
    resource: TOPIC,
    context: {
      'aws:SourceArn': ALARM,
      'aws:SourceAccount': '123456789012',
      'aws:SecureTransport': true,
    },
    ...overrides,
  };
}

function allow(extra: Partial<Statement> = {}): Statement {
  return {
    Effect: 'Allow',
    Principal: { Service: 'cloudwatch.amazonaws.com' },
    Action: 'sns:Publish',
    Resource: TOPIC,
    ...extra,
  };
}

const DENY_WITHOUT_TLS: Statement = {
  Effect: 'Deny',
  Principal: '*',
  Action: 'sns:Publish',
  Resource: TOPIC,
  Condition: { Bool: { 'aws:SecureTransport': 'false' } },
};

describe('evaluate', () => {
  test.each<[string, Statement[], Request, string]>([
    ['no statement applies', [], request(), 'ImplicitDeny'],
    ['an Allow for the principal, action and resource', [allow()], request(), 'Allow'],
    [
      'an Allow for another service',
      [allow({ Principal: { Service: 'events.amazonaws.com' } })],
      request(),
      'ImplicitDeny',
    ],
    [
      'an Allow for another action',
      [allow({ Action: 'sns:Subscribe' })],
      request(),
      'ImplicitDeny',
    ],
    ['an action wildcard, any case', [allow({ Action: 'SNS:*' })], request(), 'Allow'],
    [
      'NotAction excluding the action',
      [allow({ Action: undefined, NotAction: 'sns:Publish' })],
      request(),
      'ImplicitDeny',
    ],
    [
      'NotAction excluding another',
      [allow({ Action: undefined, NotAction: 'sns:Delete*' })],
      request(),
      'Allow',
    ],
    ['another resource', [allow({ Resource: `${TOPIC}-2` })], request(), 'ImplicitDeny'],
    [
      'NotResource excluding it',
      [allow({ Resource: undefined, NotResource: TOPIC })],
      request(),
      'ImplicitDeny',
    ],
    [
      'an explicit Deny wins over an Allow',
      [allow(), { ...allow(), Effect: 'Deny' }],
      request(),
      'ExplicitDeny',
    ],
    ['a TLS-only Deny over TLS', [allow(), DENY_WITHOUT_TLS], request(), 'Allow'],
    [
      'a TLS-only Deny without TLS',
      [allow(), DENY_WITHOUT_TLS],
      request({ context: { ...request().context, 'aws:SecureTransport': false } }),
      'ExplicitDeny',
    ],
    ['Principal "*"', [allow({ Principal: '*' })], request(), 'Allow'],
    [
      'Principal AWS "*" also matches services',
      [allow({ Principal: { AWS: '*' } })],
      request(),
      'Allow',
    ],
    [
      'NotPrincipal naming the caller: the Deny does not apply',
      [
        allow(),
        {
          ...allow(),
          Effect: 'Deny',
          Principal: undefined,
          NotPrincipal: { Service: 'cloudwatch.amazonaws.com' },
        },
      ],
      request(),
      'Allow',
    ],
    [
      'NotPrincipal naming someone else: the Deny applies',
      [
        allow(),
        {
          ...allow(),
          Effect: 'Deny',
          Principal: undefined,
          NotPrincipal: { AWS: 'arn:aws:iam::123456789012:role/x' },
        },
      ],
      request(),
      'ExplicitDeny',
    ],
    [
      'an account principal covers its roles',
      [allow({ Principal: { AWS: 'arn:aws:iam::123456789012:root' } })],
      request({ principal: { arn: 'arn:aws:iam::123456789012:role/deployer' } }),
      'Allow',
    ],
    [
      'an account principal does not cover another account',
      [allow({ Principal: { AWS: '123456789012' } })],
      request({ principal: { arn: 'arn:aws:iam::999999999999:role/deployer' } }),
      'ImplicitDeny',
    ],
  ])('%s', (_name, statements, req, decision) => {
    expect(evaluate(req, { resource: [{ Statement: statements }] })).toBe(decision);
  });

  test('identity policies have no Principal and allow on their own (same account)', () => {
    const identity: PolicyDocument = {
      Statement: [{ Effect: 'Allow', Action: 'sqs:SendMessage', Resource: '*' }],
    };
    const req = request({
      principal: { arn: 'arn:aws:iam::123456789012:role/r' },
      action: 'sqs:SendMessage',
    });
    expect(evaluate(req, { identity: [identity] })).toBe('Allow');
    expect(
      evaluate(req, {
        identity: [identity],
        resource: [{ Statement: [{ ...DENY_WITHOUT_TLS, Action: 'sqs:*' }] }],
      }),
    ).toBe('Allow');
    expect(
      evaluate(
        { ...req, context: { 'aws:SecureTransport': false } },
        {
          identity: [identity],
          resource: [{ Statement: [{ ...DENY_WITHOUT_TLS, Action: 'sqs:*' }] }],
        },
      ),
    ).toBe('ExplicitDeny');
  });

  test('a resource policy statement without Principal or NotPrincipal is an error, not a pass', () => {
    expect(() =>
      evaluate(request(), { resource: [{ Statement: [{ ...allow(), Principal: undefined }] }] }),
    ).toThrow(PolicyEvaluationError);
  });
});

describe('conditions', () => {
  const OTHER_ALARM = 'arn:aws:cloudwatch:eu-west-1:123456789012:alarm:other';
  test.each<[string, Statement['Condition'], Request['context'], boolean]>([
    ['StringEquals matches', { StringEquals: { 'aws:SourceAccount': '123456789012' } }, {}, true],
    [
      'StringEquals, another value',
      { StringEquals: { 'aws:SourceAccount': '999999999999' } },
      {},
      false,
    ],
    [
      'keys are case-insensitive',
      { StringEquals: { 'AWS:SOURCEACCOUNT': '123456789012' } },
      {},
      true,
    ],
    [
      'values are case-sensitive',
      { StringEquals: { 'aws:SourceArn': ALARM.toUpperCase() } },
      {},
      false,
    ],
    [
      'StringEquals, one of several values',
      { StringEquals: { 'aws:SourceAccount': ['1', '123456789012'] } },
      {},
      true,
    ],
    [
      'a missing key fails StringEquals',
      { StringEquals: { 'aws:PrincipalOrgID': 'o-1' } },
      {},
      false,
    ],
    [
      'a missing key satisfies StringNotEquals',
      { StringNotEquals: { 'aws:PrincipalOrgID': 'o-1' } },
      {},
      true,
    ],
    [
      '…IfExists with the key missing',
      { StringEqualsIfExists: { 'aws:PrincipalOrgID': 'o-1' } },
      {},
      true,
    ],
    [
      '…IfExists with the key present',
      { StringEqualsIfExists: { 'aws:SourceAccount': '1' } },
      {},
      false,
    ],
    [
      'StringNotEquals with the value',
      { StringNotEquals: { 'aws:SourceAccount': '123456789012' } },
      {},
      false,
    ],
    ['StringLike with *', { StringLike: { 'aws:SourceArn': '*:alarm:err*' } }, {}, true],
    [
      'ArnLike matches',
      { ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:*:123456789012:alarm:*' } },
      {},
      true,
    ],
    [
      'ArnLike, another account',
      { ArnLike: { 'aws:SourceArn': 'arn:aws:cloudwatch:*:999999999999:alarm:*' } },
      {},
      false,
    ],
    ['ArnLike, one of a list', { ArnLike: { 'aws:SourceArn': [OTHER_ALARM, ALARM] } }, {}, true],
    ['ArnEquals, another alarm', { ArnEquals: { 'aws:SourceArn': OTHER_ALARM } }, {}, false],
    ['ArnNotLike, our alarm', { ArnNotLike: { 'aws:SourceArn': ALARM } }, {}, false],
    ['Bool true', { Bool: { 'aws:SecureTransport': 'true' } }, {}, true],
    ['Bool false', { Bool: { 'aws:SecureTransport': 'false' } }, {}, false],
    [
      'Bool, given false',
      { Bool: { 'aws:SecureTransport': 'false' } },
      { 'aws:SecureTransport': false },
      true,
    ],
    [
      'every block must hold',
      {
        StringEquals: { 'aws:SourceAccount': '123456789012' },
        ArnLike: { 'aws:SourceArn': OTHER_ALARM },
      },
      {},
      false,
    ],
  ])('%s', (_name, condition, context, allowed) => {
    const req = request({ context: { ...request().context, ...context } });
    expect(evaluate(req, { resource: [{ Statement: [allow({ Condition: condition })] }] })).toBe(
      allowed ? 'Allow' : 'ImplicitDeny',
    );
  });

  test('an unknown operator is an error', () => {
    expect(() =>
      evaluate(request(), {
        resource: [
          { Statement: [allow({ Condition: { NumericLessThan: { 'aws:EpochTime': '1' } } })] },
        ],
      }),
    ).toThrow(/NumericLessThan is not supported/);
  });
});

describe('wildcardMatch', () => {
  test.each([
    ['a*c', 'abbc', true],
    ['a?c', 'abc', true],
    ['a?c', 'abbc', false],
    ['a.c', 'abc', false],
    ['*', '', true],
  ])('%s ~ %s', (pattern, value, matches) => {
    expect(wildcardMatch(pattern, value)).toBe(matches);
  });
});

describe('resolve', () => {
  const t: DeployedTemplate = {
    env: { ...TEST_ENVIRONMENT, stackName: 'S' },
    template: {
      Resources: {
        Topic: { Type: 'AWS::SNS::Topic' },
        Named: { Type: 'AWS::SNS::Topic', Properties: { TopicName: 'named' } },
        Queue: { Type: 'AWS::SQS::Queue' },
        Fn: { Type: 'AWS::Lambda::Function' },
      },
      Parameters: { Suffix: { Default: 'x' } },
    },
  };
  test.each<[string, unknown, unknown]>([
    ['pseudo parameters', { Ref: 'AWS::AccountId' }, '123456789012'],
    ['a parameter default', { Ref: 'Suffix' }, 'x'],
    [
      'a topic Ref is its ARN, generated name',
      { Ref: 'Topic' },
      'arn:aws:sns:eu-west-1:123456789012:S-Topic-GENERATED1',
    ],
    ['a named topic', { Ref: 'Named' }, 'arn:aws:sns:eu-west-1:123456789012:named'],
    [
      'a queue Ref is its URL',
      { Ref: 'Queue' },
      'https://sqs.eu-west-1.amazonaws.com/123456789012/S-Queue-GENERATED1',
    ],
    [
      'GetAtt Arn',
      { 'Fn::GetAtt': ['Fn', 'Arn'] },
      'arn:aws:lambda:eu-west-1:123456789012:function:S-Fn-GENERATED1',
    ],
    [
      'Join',
      { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':sns:', { Ref: 'AWS::Region' }]] },
      'arn:aws:sns:eu-west-1',
    ],
    [
      'Sub with pseudo parameters and GetAtt',
      { 'Fn::Sub': '${AWS::StackName}/${Queue.Arn}' },
      'S/arn:aws:sqs:eu-west-1:123456789012:S-Queue-GENERATED1',
    ],
    [
      'Sub with variables',
      { 'Fn::Sub': ['${A}-${AWS::Region}', { A: { Ref: 'Suffix' } }] },
      'x-eu-west-1',
    ],
    ['Select and Split', { 'Fn::Select': [1, { 'Fn::Split': [':', 'a:b:c'] }] }, 'b'],
    ['nested objects', { Resource: [{ Ref: 'AWS::Region' }] }, { Resource: ['eu-west-1'] }],
  ])('%s', (_name, value, expected) => {
    expect(resolve(t, value)).toEqual(expected);
  });

  test.each([
    ['an unknown resource', { Ref: 'Nope' }, /no resource Nope/],
    ['an unknown attribute', { 'Fn::GetAtt': ['Topic', 'Nope'] }, /Topic.Nope/],
    ['an unsupported function', { 'Fn::If': ['c', 1, 2] }, /Fn::If is not supported/],
    ['an import nobody exports', { 'Fn::ImportValue': 'x' }, /no stack exports x/],
  ])('%s is an error', (_name, value, message) => {
    expect(() => resolve(t, value)).toThrow(message);
  });
});
