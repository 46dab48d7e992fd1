import {
  DEPLOYER_ENV,
  DEPLOYER_ENV_RESERVED_BYTES,
  LAMBDA_ENVIRONMENT_LIMIT_BYTES,
  SettingsError,
  formatDeployerEnvironment,
  formatServices,
  parseDeployerSettings,
  type DeployerSettings,
  type EnvironmentSettings,
  type ServiceSettings,
} from '../../../lib/deployer-contract';
import { deployerEnvironment } from '../../fixtures/events/fixtures';

const REGISTRY = '123456789012.dkr.ecr.eu-west-1.amazonaws.com';
const TOPIC = 'arn:aws:sns:eu-west-1:123456789012:DockerCoins-Deployer-Topic-ABC123';
/** How CDK writes unresolved tokens into strings. */
const TOKEN_REGISTRY =
  '${Token[AWS.AccountId.4]}.dkr.ecr.${Token[AWS.Region.8]}.${Token[AWS.URLSuffix.3]}';
const TOKEN_TOPIC = '${Token[TOKEN.412]}';

function service(name: string, targets?: ServiceSettings['targets']): ServiceSettings {
  return {
    service: name,
    project: `DockerCoins-${name}`,
    repository: `dockercoins/${name}`,
    targets: targets ?? [{ deployment: name, container: name }],
  };
}

function environment(overrides: Partial<EnvironmentSettings> = {}): EnvironmentSettings {
  return {
    name: 'main',
    clusterName: 'dockercoins',
    region: undefined,
    namespace: 'dockercoins',
    branches: ['main'],
    releaseTags: false,
    ...overrides,
  };
}

function settings(overrides: Partial<DeployerSettings> = {}): DeployerSettings {
  return {
    registry: REGISTRY,
    releaseTagPattern: 'v*',
    services: ['hasher', 'rng', 'webui', 'worker'].map((name) => service(name)),
    environments: [environment()],
    topicArn: TOPIC,
    ...overrides,
  };
}

function settingsErrorOf(fn: () => unknown): SettingsError {
  try {
    fn();
  } catch (error) {
    if (error instanceof SettingsError) return error;
    throw error;
  }
  throw new Error('expected a SettingsError');
}

/** The size Lambda measures (the variables as one JSON object), computed here independently. */
const bytesOf = (env: Record<string, string>): number => Buffer.byteLength(JSON.stringify(env));

describe('round trip', () => {
  test.each<[string, DeployerSettings]>([
    ['the defaults: four services, one environment', settings()],
    [
      'services run by other Deployments and containers, several Deployments for one service',
      settings({
        services: [
          service('hasher'),
          service('webui', [
            { deployment: 'web', container: 'webui' },
            { deployment: 'web-canary', container: 'ui' },
            { deployment: 'webui.v2', container: 'webui' },
          ]),
          service('rng', [{ deployment: 'rng', container: 'main' }]),
        ],
      }),
    ],
    [
      'two environments, a region, several branches, release tags, a prefix with a slash',
      settings({
        releaseTagPattern: 'release-*',
        services: [
          {
            service: 'rng',
            project: 'Ship_2-rng',
            repository: 'team/dockercoins/rng',
            targets: [{ deployment: 'rng', container: 'rng' }],
          },
        ],
        environments: [
          environment({ branches: ['main', 'release/1.x'] }),
          environment({
            name: 'prod',
            region: 'eu-west-1',
            namespace: 'prod',
            branches: [],
            releaseTags: true,
          }),
          environment({
            name: 'both',
            clusterName: 'other_Cluster-2',
            branches: ['main'],
            releaseTags: true,
          }),
        ],
      }),
    ],
  ])('Given %s, when formatted and parsed, then the settings come back equal', (_name, given) => {
    const env = formatDeployerEnvironment(given);
    expect(Object.keys(env).sort()).toEqual(Object.values(DEPLOYER_ENV).sort());
    expect(parseDeployerSettings(env)).toEqual(given);
  });

  test('Given the fixture environment, when parsed and formatted, then the same variables come back', () => {
    const env = deployerEnvironment();
    expect(formatDeployerEnvironment(parseDeployerSettings(env))).toEqual(env);
  });

  test.each<[string, ServiceSettings[], string]>([
    ['default targets', [service('hasher'), service('rng')], 'hasher,rng'],
    [
      'another Deployment',
      [service('webui', [{ deployment: 'web', container: 'webui' }])],
      'webui=web',
    ],
    [
      'another Deployment and container, and a second Deployment',
      [
        service('webui', [
          { deployment: 'web', container: 'ui' },
          { deployment: 'web-canary', container: 'webui' },
        ]),
      ],
      'webui=web/ui+web-canary',
    ],
  ])(
    'Given services with %s, when formatted, then SHIP_SERVICES is compact',
    (_name, services, expected) => {
      expect(formatServices(services)).toBe(expected);
    },
  );

  test('Given SHIP_SERVICES with a target written in full, when parsed, then it is the same as the short form', () => {
    const env = { ...deployerEnvironment(), [DEPLOYER_ENV.services]: 'hasher=hasher/hasher' };
    expect(parseDeployerSettings(env).services).toEqual([service('hasher')]);
  });

  test('Given environments with defaults left out, when parsed, then region is undefined, branches empty, releaseTags false', () => {
    const env = {
      ...deployerEnvironment(),
      [DEPLOYER_ENV.environments]:
        '[{"name":"prod","clusterName":"c","namespace":"prod","releaseTags":true},{"name":"main","clusterName":"c","namespace":"dc","branches":["main"]}]',
    };
    expect(parseDeployerSettings(env).environments).toEqual([
      {
        name: 'prod',
        clusterName: 'c',
        region: undefined,
        namespace: 'prod',
        branches: [],
        releaseTags: true,
      },
      {
        name: 'main',
        clusterName: 'c',
        region: undefined,
        namespace: 'dc',
        branches: ['main'],
        releaseTags: false,
      },
    ]);
  });
});

describe('bad values', () => {
  const E = DEPLOYER_ENV;
  const env = (name: string, value: string | undefined): Record<string, string | undefined> => ({
    ...deployerEnvironment(),
    [name]: value,
  });
  const environments = (value: unknown): Record<string, string | undefined> =>
    env(E.environments, JSON.stringify(value));
  const one = (overrides: Record<string, unknown>): Record<string, unknown> => ({
    name: 'main',
    clusterName: 'dockercoins',
    namespace: 'dockercoins',
    branches: ['main'],
    ...overrides,
  });

  test.each<[string, Record<string, string | undefined>, string, RegExp]>([
    [
      'SHIP_REGISTRY unset',
      env(E.registry, undefined),
      E.registry,
      /SHIP_REGISTRY is not set.*Deployer construct/,
    ],
    ['SHIP_SERVICES empty', env(E.services, ''), E.services, /SHIP_SERVICES is empty/],
    ['SHIP_TOPIC_ARN unset', env(E.topicArn, undefined), E.topicArn, /SHIP_TOPIC_ARN is not set/],
    [
      'SHIP_RELEASE_TAG_PATTERN unset',
      env(E.releaseTagPattern, undefined),
      E.releaseTagPattern,
      /SHIP_RELEASE_TAG_PATTERN is not set/,
    ],
    [
      'a registry with a scheme',
      env(E.registry, `https://${REGISTRY}`),
      E.registry,
      /SHIP_REGISTRY: "https:\/\/123456789012\.dkr.*is not an ECR registry host/,
    ],
    [
      'a registry with a path',
      env(E.registry, `${REGISTRY}/dockercoins`),
      E.registry,
      /is not an ECR registry host/,
    ],
    [
      'Docker Hub as the registry',
      env(E.registry, 'docker.io'),
      E.registry,
      /SHIP_REGISTRY: "docker\.io" is not an ECR registry host, <account>\.dkr\.ecr/,
    ],
    [
      'an 11-digit account',
      env(E.registry, '12345678901.dkr.ecr.eu-west-1.amazonaws.com'),
      E.registry,
      /is not an ECR registry host/,
    ],
    [
      'an unresolved CDK token at run time',
      env(E.registry, TOKEN_REGISTRY),
      E.registry,
      /SHIP_REGISTRY: "\$\{Token\[AWS\.AccountId\.4\]\}.*is not an ECR registry host/,
    ],
    [
      'a line break in a value',
      env(E.registry, `${REGISTRY}\n`),
      E.registry,
      /SHIP_REGISTRY: ".*\\n" is not free of control characters/,
    ],
    [
      'an upper-case repository prefix',
      env(E.repositoryPrefix, 'DockerCoins'),
      E.repositoryPrefix,
      /SHIP_REPOSITORY_PREFIX: "DockerCoins" is not an ECR repository name prefix/,
    ],
    [
      'a repository prefix ending in a slash',
      env(E.repositoryPrefix, 'dockercoins/'),
      E.repositoryPrefix,
      /ECR repository name prefix/,
    ],
    [
      'a project prefix with a space',
      env(E.projectPrefix, 'Docker Coins'),
      E.projectPrefix,
      /SHIP_PROJECT_PREFIX: "Docker Coins" is not a CodeBuild project name prefix/,
    ],
    [
      'an empty service item',
      env(E.services, 'hasher,,rng'),
      E.services,
      /SHIP_SERVICES in "hasher,,rng": "" is not an item service\[=deployment/,
    ],
    [
      'a space after a comma',
      env(E.services, 'hasher, rng'),
      E.services,
      /SHIP_SERVICES in "hasher, rng": " rng" is not a service name: a DNS label/,
    ],
    [
      'an upper-case service',
      env(E.services, 'Hasher'),
      E.services,
      /"Hasher" is not a service name: a DNS label/,
    ],
    [
      'a service listed twice',
      env(E.services, 'hasher,rng,hasher'),
      E.services,
      /service "hasher" is listed twice.*"\+"/,
    ],
    [
      'a service with "=" and no target',
      env(E.services, 'webui='),
      E.services,
      /in "webui=": "webui=" is not an item service\[=/,
    ],
    [
      'two "=" in an item',
      env(E.services, 'webui=web=ui'),
      E.services,
      /"webui=web=ui" is not an item/,
    ],
    [
      'a target with two "/"',
      env(E.services, 'webui=web/ui/x'),
      E.services,
      /SHIP_SERVICES \(service "webui"\): "web\/ui\/x" is not deployment\[\/container\]/,
    ],
    [
      'an upper-case Deployment',
      env(E.services, 'webui=Web'),
      E.services,
      /"Web" is not deployment\[\/container\]/,
    ],
    [
      'a container with a dot',
      env(E.services, 'webui=web/web.ui'),
      E.services,
      /"web\/web\.ui" is not deployment\[\/container\]/,
    ],
    [
      'one target twice',
      env(E.services, 'webui=web+web'),
      E.services,
      /container "webui" of Deployment "web" is claimed by service "webui" twice/,
    ],
    [
      'two services on one container',
      env(E.services, 'webui=web/app,hasher=web/app'),
      E.services,
      /container "app" of Deployment "web" is claimed by services "webui" and "hasher"/,
    ],
    [
      'a project name over 255 characters',
      { ...env(E.projectPrefix, 'P'.repeat(200)), [E.services]: 'a'.repeat(60) },
      E.services,
      /"a{60}" is not a service name short enough for its project "P{200}-a{60}" \(at most 255/,
    ],
    [
      'environments that are not JSON',
      env(E.environments, '[{name:main}]'),
      E.environments,
      /SHIP_ENVIRONMENTS: "\[\{name:main\}\]" is not a JSON array.*\(.*JSON/,
    ],
    [
      'environments that are an object',
      environments(one({})),
      E.environments,
      /SHIP_ENVIRONMENTS: .* is not a JSON array/,
    ],
    [
      'no environments',
      environments([]),
      E.environments,
      /SHIP_ENVIRONMENTS: "\[\]" is not a JSON array/,
    ],
    [
      'an environment that is a string',
      environments(['main']),
      E.environments,
      /SHIP_ENVIRONMENTS entry 0: "main" is not a JSON array/,
    ],
    [
      'a misspelt key',
      environments([one({ branch: ['main'] })]),
      E.environments,
      /entry 0: "branch" is not a key of an environment \(name, clusterName, region/,
    ],
    [
      'an upper-case environment name',
      environments([one({ name: 'Main' })]),
      E.environments,
      /entry 0 "name": "Main" is not an environment name: a DNS label/,
    ],
    [
      'a missing namespace',
      environments([one({ namespace: undefined })]),
      E.environments,
      /entry 0 "namespace": undefined is not a namespace/,
    ],
    [
      'a namespace with an underscore',
      environments([one({ namespace: 'docker_coins' })]),
      E.environments,
      /"namespace": "docker_coins" is not a namespace: a DNS label/,
    ],
    [
      'a cluster name with a dot',
      environments([one({ clusterName: 'my.cluster' })]),
      E.environments,
      /"clusterName": "my\.cluster" is not an EKS cluster name/,
    ],
    [
      'a region that is not one',
      environments([one({ region: 'Europe' })]),
      E.environments,
      /"region": "Europe" is not an AWS region/,
    ],
    [
      'a null region',
      environments([one({ region: null })]),
      E.environments,
      /"region": null is not an AWS region/,
    ],
    [
      'branches as a string',
      environments([one({ branches: 'main' })]),
      E.environments,
      /"branches": "main" is not an array of branch names/,
    ],
    [
      'a branch pattern',
      environments([one({ branches: ['release/*'] })]),
      E.environments,
      /"branches": "release\/\*" is not an exact git branch name/,
    ],
    [
      'a full ref as a branch',
      environments([one({ branches: ['refs/heads/main'] })]),
      E.environments,
      /"refs\/heads\/main" is not an exact git branch name/,
    ],
    [
      'a branch listed twice',
      environments([one({ branches: ['main', 'main'] })]),
      E.environments,
      /"main" is not a branch listed once/,
    ],
    [
      'releaseTags as a string',
      environments([one({ releaseTags: 'yes' })]),
      E.environments,
      /"releaseTags": "yes" is not true or false/,
    ],
    [
      'an environment nothing deploys to',
      environments([one({ branches: [] })]),
      E.environments,
      /environment "main" has no branches and no releaseTags/,
    ],
    [
      'two environments of one name',
      environments([one({}), one({ namespace: 'other' })]),
      E.environments,
      /two environments are named "main"/,
    ],
    [
      'two environments in one namespace',
      environments([one({}), one({ name: 'prod', releaseTags: true, branches: [] })]),
      E.environments,
      /environments "main" and "prod" are both namespace "dockercoins" of cluster "dockercoins"; .*Merge them/,
    ],
    [
      'a release pattern matching everything',
      env(E.releaseTagPattern, '*'),
      E.releaseTagPattern,
      /SHIP_RELEASE_TAG_PATTERN: "\*" is not a glob .* that does not match every tag/,
    ],
    [
      'a release pattern with a character class',
      env(E.releaseTagPattern, 'v[0-9]*'),
      E.releaseTagPattern,
      /"v\[0-9\]\*" is not a glob/,
    ],
    [
      'a topic ARN of another service',
      env(E.topicArn, 'arn:aws:sqs:eu-west-1:123456789012:queue'),
      E.topicArn,
      /SHIP_TOPIC_ARN: "arn:aws:sqs:.*" is not an SNS topic ARN/,
    ],
    [
      'a topic name, not an ARN',
      env(E.topicArn, 'DockerCoins-Topic'),
      E.topicArn,
      /is not an SNS topic ARN/,
    ],
  ])(
    'Given %s, when parsed, then a SettingsError names the variable, the value and the form',
    (_name, given, variable, message) => {
      const error = settingsErrorOf(() => parseDeployerSettings(given));
      expect(error.variable).toBe(variable);
      expect(error.message).toMatch(message);
    },
  );

  test('Given a long bad value, when parsed, then the message shows its start and its length, not all of it', () => {
    const error = settingsErrorOf(() =>
      parseDeployerSettings({ ...deployerEnvironment(), [E.registry]: 'x'.repeat(5000) }),
    );
    expect(error.message).toMatch(/"x{120}"… \(5000 characters\)/);
    expect(error.message.length).toBeLessThan(600);
  });
});

describe('formatting', () => {
  test.each<[string, DeployerSettings, string, RegExp]>([
    ['no services', settings({ services: [] }), DEPLOYER_ENV.services, /no services/],
    [
      'a service without Deployments',
      settings({ services: [service('hasher', [])] }),
      DEPLOYER_ENV.services,
      /service "hasher" has no Deployment to deploy to/,
    ],
    [
      'a project not named <prefix>-<service>',
      settings({ services: [service('hasher'), { ...service('rng'), project: 'Other-rng' }] }),
      DEPLOYER_ENV.projectPrefix,
      /service "rng" is built by project "Other-rng".*must be "DockerCoins-rng"/,
    ],
    [
      'a repository not named <prefix>/<service>',
      settings({ services: [service('hasher'), { ...service('rng'), repository: 'rng' }] }),
      DEPLOYER_ENV.repositoryPrefix,
      /service "rng" is pushed to repository "rng".*must be "dockercoins\/rng"/,
    ],
    [
      'a first project without the service name',
      settings({ services: [{ ...service('hasher'), project: 'hasher-build' }] }),
      DEPLOYER_ENV.projectPrefix,
      /project name "hasher-build", which is not <prefix>-hasher/,
    ],
    [
      'a bad value the Lambda would refuse',
      settings({ environments: [environment({ namespace: 'Docker Coins' })] }),
      DEPLOYER_ENV.environments,
      /"namespace": "Docker Coins" is not a namespace/,
    ],
  ])(
    'Given %s, when formatted, then a SettingsError says so at synth',
    (_name, given, variable, message) => {
      const error = settingsErrorOf(() => formatDeployerEnvironment(given));
      expect(error.variable).toBe(variable);
      expect(error.message).toMatch(message);
    },
  );

  test('Given a registry host, topic ARN and region that are CDK tokens, when formatted, then they pass through for CloudFormation to resolve', () => {
    const given = settings({
      registry: TOKEN_REGISTRY,
      topicArn: TOKEN_TOPIC,
      environments: [environment({ region: '${Token[AWS.Region.8]}' })],
    });
    const env = formatDeployerEnvironment(given);
    expect(env[DEPLOYER_ENV.registry]).toBe(TOKEN_REGISTRY);
    expect(env[DEPLOYER_ENV.topicArn]).toBe(TOKEN_TOPIC);
    expect(JSON.parse(env[DEPLOYER_ENV.environments]!)).toEqual([
      {
        name: 'main',
        clusterName: 'dockercoins',
        region: '${Token[AWS.Region.8]}',
        namespace: 'dockercoins',
        branches: ['main'],
      },
    ]);
  });
});

describe('the 4 KB limit', () => {
  const limit = LAMBDA_ENVIRONMENT_LIMIT_BYTES - DEPLOYER_ENV_RESERVED_BYTES;
  const names = (count: number): string[] =>
    Array.from({ length: count }, (_, i) => `service-${String(i).padStart(3, '0')}`);
  const threeEnvironments = [
    environment({ name: 'main', branches: ['main', 'develop'] }),
    environment({
      name: 'staging',
      clusterName: 'dockercoins-staging',
      namespace: 'dockercoins-staging',
      branches: ['release/next'],
    }),
    environment({
      name: 'prod',
      clusterName: 'dockercoins-prod',
      region: 'eu-west-1',
      branches: [],
      releaseTags: true,
    }),
  ];

  test('Given 100 services run by Deployments of their name and three environments, when formatted, then the variables fit and read back', () => {
    const given = settings({
      services: names(100).map((n) => service(n)),
      environments: threeEnvironments,
    });
    const env = formatDeployerEnvironment(given);
    expect(bytesOf(env)).toBeLessThanOrEqual(limit);
    expect(parseDeployerSettings(env)).toEqual(given);
  });

  test('Given 100 services each run by two differently named Deployments, when formatted, then a SettingsError gives the size and the fix', () => {
    const given = settings({
      services: names(100).map((n) =>
        service(n, [
          { deployment: `${n}-deployment`, container: 'app' },
          { deployment: `${n}-canary`, container: 'app-canary' },
        ]),
      ),
      environments: threeEnvironments,
    });
    const error = settingsErrorOf(() => formatDeployerEnvironment(given));
    expect(error.variable).toBe(DEPLOYER_ENV.services);
    expect(error.message).toMatch(
      new RegExp(
        `take (\\d+) bytes \\(SHIP_REGISTRY \\d+, .*SHIP_SERVICES \\d+.*\\); Lambda allows 4096 .* at most ${limit}\\. Use shorter`,
      ),
    );
    const taken = Number(/take (\d+) bytes/.exec(error.message)?.[1]);
    expect(taken).toBeGreaterThan(limit);
  });

  test('Given a topic ARN that is a CDK token, when sized, then it counts as the longest ARN it can become, not as the token', () => {
    // The first service count at which the token version no longer fits must still fit with a
    // short literal ARN: the token was counted as more than its own characters.
    const at = (count: number, topicArn: string): boolean => {
      try {
        formatDeployerEnvironment(
          settings({ services: names(count).map((n) => service(n)), topicArn }),
        );
        return true;
      } catch (error) {
        if (error instanceof SettingsError) return false;
        throw error;
      }
    };
    let count = 1;
    while (at(count, TOKEN_TOPIC)) count += 1;
    expect(count).toBeGreaterThan(100);
    expect(at(count, TOPIC)).toBe(true);
    expect(TOPIC.length).toBeGreaterThan(TOKEN_TOPIC.length);
  });
});
