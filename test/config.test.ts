import { ConfigError, DEFAULTS, editDistance, resolveConfig, wildcardMatches } from '../lib/config';
import { classifyTag, computeTags } from '../core/image-tags';

/** A context that silences the default-source warning, like a real user's cdk.json. */
const OWNED = { sourceOwner: 'acme' };

function errorOf(context: Record<string, unknown>): ConfigError {
  try {
    resolveConfig(context);
  } catch (error) {
    if (error instanceof ConfigError) return error;
    throw error;
  }
  throw new Error(`expected a ConfigError for ${JSON.stringify(context)}`);
}

describe('defaults', () => {
  test('Given no context, When resolved, Then every default serves DockerCoins', () => {
    const { config } = resolveConfig({});

    expect(config.stackNamePrefix).toBe('DockerCoins');
    expect(config.services).toEqual(
      ['hasher', 'rng', 'webui', 'worker'].map((name) => ({
        name,
        buildContext: `dockercoins/${name}`,
        deployment: name,
        container: name,
      })),
    );
    expect(config.registry).toEqual({
      repositoryPrefix: 'dockercoins',
      encryption: 'AES256',
      untaggedImageExpiryDays: 3,
      commitImagesToKeep: 50,
      branchImagesToKeep: 50,
      pullRequestImagesToKeep: 20,
      releaseTagPattern: 'v*',
      buildCacheTag: 'buildcache',
      removal: 'retain',
      pullAccountIds: [],
      pullThroughCachePrefix: 'dockercoins-ecr-public',
      redisImageTag: '7.4',
    });
    expect(config.source).toEqual({
      provider: 'github',
      owner: 'jpetazzo',
      repo: 'container.training',
      connectionArn: undefined,
    });
    expect(config.build).toEqual({
      branches: ['main'],
      sharedPaths: [],
      pullRequests: false,
      architecture: 'x86_64',
      timeoutMinutes: 30,
      concurrentBuildLimit: 10,
      logRetentionDays: 30,
    });
    expect(config.clusterName).toBe('dockercoins');
    expect(config.namespace).toBe('dockercoins');
    expect(config.cluster).toEqual({
      create: false,
      initialImageTag: undefined,
      inClusterRegistry: false,
      registryNodePort: 30500,
      endpointPublicCidrs: ['0.0.0.0/0'],
    });
    expect(config.environments).toEqual([
      {
        name: 'main',
        clusterName: 'dockercoins',
        namespace: 'dockercoins',
        branches: ['main'],
        releaseTags: false,
      },
    ]);
    expect(config.deployer).toEqual({
      access: 'rbac',
      vpc: undefined,
      notificationEmail: undefined,
      logRetentionDays: 90,
    });
  });

  test('Given the default source owner, When resolved, Then a warning names the key and the fix', () => {
    const { warnings } = resolveConfig({});

    expect(warnings).toHaveLength(1);
    expect(warnings[0]?.key).toBe('sourceOwner');
    expect(warnings[0]?.message).toMatch(/-c sourceOwner=/);
  });

  test('Given an explicit source owner, When resolved, Then there is no warning', () => {
    expect(resolveConfig(OWNED).warnings).toEqual([]);
  });

  test('the resolved configuration is frozen, so nothing downstream can change it', () => {
    const { config } = resolveConfig({});

    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.services[0])).toBe(true);
    expect(Object.isFrozen(config.registry.pullAccountIds)).toBe(true);
  });

  test('keys that are not ours (CDK feature flags) are ignored', () => {
    const { config } = resolveConfig({
      '@aws-cdk/core:target-partitions': ['aws'],
      'aws:cdk:enable-path-metadata': true,
      ...OWNED,
    });
    expect(config.services).toHaveLength(4);
  });
});

describe('values from cdk.json (JSON) and from -c (strings) mean the same', () => {
  test.each([
    ['services', ['hasher', 'rng'], 'hasher, rng'],
    ['services', ['hasher', 'rng'], '["hasher","rng"]'],
    ['pullAccountIds', ['111122223333'], '111122223333'],
    ['pullAccountIds', [111122223333], '111122223333'],
    ['commitImagesToKeep', 7, '7'],
    ['branchImagesToKeep', 12, '12'],
    ['pullRequestImagesToKeep', 5, ' 5'],
    ['untaggedImageExpiryDays', 14, ' 14 '],
    ['encryption', 'KMS', 'kms'],
    ['removalPolicy', 'destroy', 'DESTROY'],
    ['buildCacheTag', false, 'none'],
    ['deployerAccess', 'rbac', 'RBAC'],
    ['deployerAccess', 'edit-policy', ' Edit-Policy '],
    ['deployerLogRetentionDays', 365, '365'],
    [
      'environments',
      [{ name: 'prod', namespace: 'dc-prod', releaseTags: true }],
      '[{"name":"prod","namespace":"dc-prod","releaseTags":"true"}]',
    ],
  ])('%s: %j equals %j', (key, json, cli) => {
    expect(resolveConfig({ ...OWNED, [key]: json }).config).toEqual(
      resolveConfig({ ...OWNED, [key]: cli }).config,
    );
  });
});

describe('services', () => {
  test('Given service objects, When resolved, Then unset fields default from the name', () => {
    const { config } = resolveConfig({
      services: [
        { name: 'hasher', buildContext: 'apps/hasher', deployment: 'dc-hasher', container: 'main' },
        { name: 'rng' },
      ],
    });

    expect(config.services).toEqual([
      { name: 'hasher', buildContext: 'apps/hasher', deployment: 'dc-hasher', container: 'main' },
      { name: 'rng', buildContext: 'dockercoins/rng', deployment: 'rng', container: 'rng' },
    ]);
  });

  test.each([
    ['an empty list', [], /at least one service/],
    ['an empty string', '', /at least one service/],
    ['a number', 5, /list of service names/],
    ['uppercase', 'Hasher', /DNS-1123 label/],
    ['an underscore', 'hash_er', /DNS-1123 label/],
    ['a trailing hyphen', 'hasher-', /DNS-1123 label/],
    ['a 41-character name', 'a'.repeat(41), /at most 40 characters/],
    ['a duplicate', 'rng,rng', /"rng" repeats/],
    ['an empty entry', 'rng,,webui', /non-empty string/],
    ['broken JSON', '["rng",', /not a JSON array/],
    ['a nested array', [['rng']], /list of service names/],
    ['an object without name', [{ buildContext: 'x' }], /a service name/],
    ['an object with an unknown key', [{ name: 'rng', image: 'x' }], /"image" is not one/],
    ['a build context that climbs out', [{ name: 'rng', buildContext: '../rng' }], /buildContext/],
    ['an absolute build context', [{ name: 'rng', buildContext: '/rng' }], /buildContext/],
    ['a bad Deployment name', [{ name: 'rng', deployment: 'RNG' }], /Deployment name/],
    ['a bad container name', [{ name: 'rng', container: 'a.b' }], /DNS-1123 label/],
  ])('Given %s, When resolved, Then it fails naming services', (_case, services, message) => {
    const error = errorOf({ services });

    expect(error.key).toBe('services');
    expect(error.message).toMatch(message);
  });

  test('the longest prefix and service name still make a valid 256-character ECR name', () => {
    const { config } = resolveConfig({
      repositoryPrefix: 'a'.repeat(215),
      services: 'b'.repeat(40),
      pullThroughCachePrefix: 'cache',
    });
    expect(`${config.registry.repositoryPrefix}/${config.services[0]?.name}`).toHaveLength(256);
    expect(errorOf({ repositoryPrefix: 'a'.repeat(216) }).message).toMatch(/at most 215/);
  });
});

describe('every invalid value fails with the key, the value and the expected form', () => {
  test.each([
    ['stackNamePrefix', '1Dockercoins', /CloudFormation stack name/],
    ['stackNamePrefix', 'Docker_Coins', /CloudFormation stack name/],
    ['repositoryPrefix', 'DockerCoins', /ECR repository names/],
    ['repositoryPrefix', 'dockercoins/', /ECR repository names/],
    ['repositoryPrefix', '', /non-empty string/],
    ['encryption', 'aws:kms', /one of "AES256", "KMS"/],
    ['untaggedImageExpiryDays', 0, /from 1 to 3650/],
    ['untaggedImageExpiryDays', '2.5', /from 1 to 3650/],
    ['untaggedImageExpiryDays', 'three', /from 1 to 3650/],
    ['commitImagesToKeep', 9999, /from 1 to 9998/],
    ['commitImagesToKeep', -1, /from 1 to 9998/],
    ['branchImagesToKeep', 0, /branchImagesToKeep.*from 1 to 9998/],
    ['branchImagesToKeep', 'many', /branchImagesToKeep.*from 1 to 9998/],
    ['pullRequestImagesToKeep', 10000, /pullRequestImagesToKeep.*from 1 to 9998/],
    ['pullRequestImagesToKeep', 2.5, /pullRequestImagesToKeep.*from 1 to 9998/],
    ['releaseTagPattern', '*', /does not match every tag/],
    ['releaseTagPattern', 'v/*', /ECR wildcard/],
    ['releaseTagPattern', 'v*.*.*.*.*', /at most four/],
    ['buildCacheTag', 'latest', /not "latest"/],
    ['buildCacheTag', 'cache/x', /image tag/],
    ['buildCacheTag', '', /non-empty string/],
    ['removalPolicy', 'snapshot', /one of "retain", "destroy"/],
    ['pullAccountIds', '12345678901', /exactly 12 digits/],
    ['pullAccountIds', { a: 1 }, /exactly 12 digits/],
    ['pullThroughCachePrefix', 'x', /2 to 30 characters/],
    ['pullThroughCachePrefix', 'a'.repeat(31), /2 to 30 characters/],
    ['pullThroughCachePrefix', 'Public', /2 to 30 characters/],
    ['redisImageTag', 'latest', /never "latest"/],
    ['redisImageTag', '7.4 alpine', /pinned image tag/],
    ['sourceOwner', 'acme corp', /GitHub user or organisation/],
    ['sourceOwner', '-acme', /GitHub user or organisation/],
    ['sourceRepo', 'a/b', /GitHub repository name/],
    ['buildBranches', 'refs/heads/main', /git branch names/],
    ['buildBranches', 'feature..x', /git branch names/],
    ['buildBranches', 'main.lock', /git branch names/],
    ['buildBranches', 'a b', /git branch names/],
    ['buildBranches', '.hidden', /git branch names/],
    ['buildBranches', '', /at least one/],
    ['sharedPaths', '../outside', /relative paths/],
    ['sharedPaths', '/abs', /relative paths/],
    ['pullRequestBuilds', 'yes', /true or false/],
    ['buildArchitecture', 'amd64', /one of "x86_64", "arm64"/],
    ['buildTimeoutMinutes', 4, /from 5 to 480/],
    ['buildTimeoutMinutes', 481, /from 5 to 480/],
    ['buildConcurrency', 0, /from 1 to 100/],
    ['buildLogRetentionDays', 31, /retention periods CloudWatch Logs accepts/],
    ['sourceProvider', 'svn', /one of "github", "gitlab", "bitbucket", "codecommit"/],
    [
      'sourceConnectionArn',
      'arn:aws:codeconnections:eu-west-1:123:connection/x',
      /CodeConnections connection ARN/,
    ],
    ['clusterName', '-prod', /EKS cluster name/],
    ['clusterName', 'a'.repeat(101), /EKS cluster name/],
    ['namespace', 'Dockercoins', /DNS-1123 label/],
    ['namespace', 'a'.repeat(64), /DNS-1123 label/],
    ['deployerAccess', 'admin', /one of "edit-policy", "rbac"/],
    ['deployerLogRetentionDays', 2, /retention periods CloudWatch Logs accepts/],
    ['notificationEmail', 'ops at example.com', /email address/],
    ['notificationEmail', 'ops@localhost', /email address/],
    ['deployerVpcId', 'vpc-123', /VPC id/],
    ['deployerSubnetIds', 'subnet-xyz', /ids such as "subnet-0123456789abcdef0"/],
    ['deployerSecurityGroupIds', 'vpc-01234567', /ids such as "sg-0123456789abcdef0"/],
    ['environments', 'main', /JSON array of environment objects/],
    ['environments', '[{"name":"x",', /not a JSON array/],
    ['environments', [], /at least one/],
  ])('%s = %j', (key, value, expected) => {
    const error = errorOf({ [key]: value });

    expect(error.key).toBe(key);
    expect(error.message).toContain(`"${key}"`);
    expect(error.message).toContain(JSON.stringify(value));
    expect(error.message).toMatch(expected);
    expect(error.message).toContain(`-c ${key}=`);
  });

  test('a derived pull-through prefix that is too long tells the user to set it explicitly', () => {
    const error = errorOf({ repositoryPrefix: 'a-very-long-repository-prefix' });

    expect(error.key).toBe('pullThroughCachePrefix');
    expect(error.message).toMatch(/derived from repositoryPrefix, so set pullThroughCachePrefix/);
  });

  test('a pull-through prefix overlapping the repository prefix is refused', () => {
    const error = errorOf({ repositoryPrefix: 'team/dockercoins', pullThroughCachePrefix: 'team' });

    expect(error.key).toBe('pullThroughCachePrefix');
    expect(error.message).toMatch(/overlaps repositoryPrefix/);
  });

  // Decided over every tag builds make (lib/release-tag-pattern.ts), not over a few examples: the
  // shortest matching tag is named. Build numbers and pr- numbers never start with 0, the branch
  // part never holds "--" or "..", and no tag is longer than 128.
  test.each([
    ['0*', {}, 'commit', '000000000000'],
    ['*5', {}, 'commit', '000000000005'],
    ['**', {}, 'commit', '000000000000'],
    ['*a*', {}, 'commit', '00000000000a'],
    ['b*', {}, 'commit', 'b00000000000'],
    ['pr-*', {}, 'pull-request', 'pr-1-0000000'],
    ['pr-1*', {}, 'pull-request', 'pr-1-0000000'],
    ['*-*-*', {}, 'pull-request', 'pr-1-0000000'],
    ['m*', {}, 'branch', 'main-0000000-1'],
    ['*-1', {}, 'branch', 'main-0000000-1'],
    ['br*', {}, 'branch', 'branch-0000000-1'],
    ['branch-*', {}, 'branch', 'branch-0000000-1'],
    ['*-rc*', {}, 'branch', 'branch-rc-0000000-1'],
    ['release-*', { buildBranches: 'main,release/1.x' }, 'branch', 'release-1.x-0000000-1'],
    [`branch-${'a'.repeat(111)}*`, {}, 'branch', `branch-${'a'.repeat(111)}-0000000-1`],
  ])(
    'a release pattern %s (context %j) that can match a %s tag is refused, naming %s',
    (pattern, context, kind, tag) => {
      const error = errorOf({ ...context, releaseTagPattern: pattern });

      expect(error.key).toBe('releaseTagPattern');
      expect(error.message).toContain(`matches ${kind} tags that builds make, such as "${tag}"`);
      expect(error.message).toMatch(/fixed prefix/);
      // The named tag is real: the pattern matches it, and image-tags.js reads it as that kind.
      expect(wildcardMatches(pattern, tag)).toBe(true);
      expect(classifyTag(tag, 'Q*')).toBe(kind);
    },
  );

  test.each([
    ['v*', {}],
    ['V*', {}],
    ['v*-*', {}],
    ['release-*', {}],
    ['rel-*', { buildBranches: 'main,release/1.x' }],
    ['pr-0*', {}],
    ['*-0', {}],
    ['*--*', {}],
    ['*..*', {}],
    ['*x', {}],
    ['*.lock', {}],
    ['bra*ch', {}],
    ['branch.*', {}],
    ['branch-*-0000000-00', {}],
    [`branch-${'a'.repeat(113)}*`, {}],
  ])(
    'a release pattern %s (context %j) that no build tag can match is accepted',
    (pattern, context) => {
      expect(
        resolveConfig({ ...context, releaseTagPattern: pattern }).config.registry.releaseTagPattern,
      ).toBe(pattern);
    },
  );

  test('the suggested patterns are ones the configuration accepts', () => {
    const error = errorOf({ buildBranches: 'main,release/1.x', releaseTagPattern: 'r*' });

    expect(error.message).toContain('(build branch "release/1.x")');
    expect(error.message).toMatch(/e\.g\. "v\*" or "rel-\*"\.$/);
  });

  // The decision agrees with the tags image-tags.js really makes: every pattern the configuration
  // accepts matches none of them, for commits, pull requests and branches (build branches or not).
  test('an accepted pattern matches no tag image-tags.js makes, over many inputs', () => {
    const patterns = [
      'v*',
      'v*-*',
      '*-0',
      '*--*',
      '*x',
      'branch.*',
      'pr-0*',
      'rel*',
      '*.x',
      'ma*x',
    ];
    const branches = ['main', 'release/1.x', 'feature/ünïcode', 'v2', 'a--b', 'x.y', 'pr-1', 'b'];
    const commits = [
      '6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f',
      '0000000fffffffffffffffffffffffffffffffff',
    ];
    for (const pattern of patterns) {
      let accepted = true;
      try {
        resolveConfig({ buildBranches: 'main,release/1.x', releaseTagPattern: pattern });
      } catch {
        accepted = false;
      }
      const made: string[] = [];
      for (const commit of commits) {
        for (const ref of [
          { kind: 'none' as const },
          { kind: 'pull-request' as const, number: 7 },
          ...branches.map((name) => ({ kind: 'branch' as const, name })),
        ]) {
          try {
            made.push(
              ...computeTags({ commit, ref, buildNumber: 10, releaseTagPattern: pattern }).tags,
            );
          } catch {
            made.push('(refused by image-tags.js)');
          }
        }
      }
      const matched = made.filter(
        (tag) => tag === '(refused by image-tags.js)' || wildcardMatches(pattern, tag),
      );
      if (accepted) expect({ pattern, matched }).toEqual({ pattern, matched: [] });
    }
  });

  test('a cache tag that the release pattern would keep forever is refused', () => {
    const error = errorOf({ buildCacheTag: 'v-cache' });

    expect(error.key).toBe('buildCacheTag');
    expect(error.message).toMatch(/matches releaseTagPattern "v\*"/);
  });

  test('buildCacheTag "none" makes every tag immutable', () => {
    expect(resolveConfig({ buildCacheTag: 'none' }).config.registry.buildCacheTag).toBeUndefined();
  });

  test('a list with one bad account id names that id', () => {
    const error = errorOf({ pullAccountIds: '111122223333,abc' });

    expect(error.key).toBe('pullAccountIds');
    expect(error.message).toMatch(/"abc"\. Expected AWS account ids of exactly 12 digits/);
  });

  test('account ids given twice are kept once', () => {
    const { config } = resolveConfig({ pullAccountIds: '111122223333,111122223333' });
    expect(config.registry.pullAccountIds).toEqual(['111122223333']);
  });

  test('a nested repository prefix derives a valid pull-through prefix', () => {
    const { config } = resolveConfig({ repositoryPrefix: 'team/dc' });
    expect(config.registry.pullThroughCachePrefix).toBe('team-dc-ecr-public');
  });
});

describe('typos in context keys fail instead of being ignored', () => {
  test.each([
    ['clusterNmae', 'clusterName'],
    ['Namespace', 'namespace'],
    ['service', 'services'],
    ['sourceowner', 'sourceOwner'],
    ['removalPolcy', 'removalPolicy'],
  ])('%s → did you mean %s', (typo, intended) => {
    const error = errorOf({ [typo]: 'x' });

    expect(error.key).toBe(typo);
    expect(error.message).toContain(`Did you mean "${intended}"?`);
  });
});

describe('helpers', () => {
  test.each([
    ['v*', 'v1.2.0', true],
    ['v*', 'main-6e0de79-1', false],
    ['buildcache', 'buildcache', true],
    ['buildcache', 'buildcache2', false],
    ['release-*.x', 'release-1.x', true],
    ['a.b', 'axb', false],
  ])('wildcard %s matches %s: %s', (pattern, tag, expected) => {
    expect(wildcardMatches(pattern, tag)).toBe(expected);
  });

  test.each([
    ['clusterName', 'clusterName', 0],
    ['clusterName', 'clusterNmae', 2],
    ['', 'abc', 3],
    ['kitten', 'sitting', 3],
  ])('editDistance(%s, %s) = %d', (a, b, d) => {
    expect(editDistance(a, b)).toBe(d);
  });

  test('DEFAULTS lists exactly the keys the README documents', () => {
    // README.md's configuration table is checked against this list in test/readme.test.ts.
    expect(Object.keys(DEFAULTS).sort()).toMatchInlineSnapshot(`
      [
        "branchImagesToKeep",
        "buildArchitecture",
        "buildBranches",
        "buildCacheTag",
        "buildConcurrency",
        "buildLogRetentionDays",
        "buildTimeoutMinutes",
        "clusterEndpointCidrs",
        "clusterName",
        "commitImagesToKeep",
        "createCluster",
        "deployerAccess",
        "deployerLogRetentionDays",
        "deployerSecurityGroupIds",
        "deployerSubnetIds",
        "deployerVpcId",
        "encryption",
        "environments",
        "inClusterRegistry",
        "initialImageTag",
        "namespace",
        "notificationEmail",
        "pullAccountIds",
        "pullRequestBuilds",
        "pullRequestImagesToKeep",
        "pullThroughCachePrefix",
        "redisImageTag",
        "registryNodePort",
        "releaseTagPattern",
        "removalPolicy",
        "repositoryPrefix",
        "services",
        "sharedPaths",
        "sourceConnectionArn",
        "sourceOwner",
        "sourceProvider",
        "sourceRepo",
        "stackNamePrefix",
        "untaggedImageExpiryDays",
      ]
    `);
  });
});

describe('what one app holds', () => {
  const names = (n: number): string => Array.from({ length: n }, (_, i) => `svc${i}`).join(',');

  test('100 services fit; 101 are one configuration error naming the limit and the fix', () => {
    expect(resolveConfig({ ...OWNED, services: names(100) }).config.services).toHaveLength(100);
    const error = errorOf({ ...OWNED, services: names(101) });

    expect(error.key).toBe('services');
    expect(error.message).toMatch(
      /^101 services is more than one app holds: at most 100.*Split them/,
    );
  });

  test('two services whose stack output ids collide are one configuration error', () => {
    const error = errorOf({ ...OWNED, services: 'a-1,a1' });

    expect(error.key).toBe('services');
    expect(error.message).toContain(
      'Services "a-1" and "a1" would share the stack outputs RepositoryUriA1',
    );
  });
});

describe('sources and builds', () => {
  const CONNECTION =
    'arn:aws:codeconnections:eu-west-1:123456789012:connection/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

  test('Given several build branches and shared paths, When resolved, Then each is kept once', () => {
    const { config } = resolveConfig({
      ...OWNED,
      buildBranches: 'main, release/1.x,main',
      sharedPaths: ['dockercoins/common', 'requirements.txt'],
      pullRequestBuilds: 'true',
      buildArchitecture: 'ARM64',
    });

    expect(config.build).toMatchObject({
      branches: ['main', 'release/1.x'],
      sharedPaths: ['dockercoins/common', 'requirements.txt'],
      pullRequests: true,
      architecture: 'arm64',
    });
  });

  test('Given the removed key sourceBranch, When resolved, Then the error names its replacement', () => {
    const error = errorOf({ ...OWNED, sourceBranch: 'main' });

    expect(error.key).toBe('sourceBranch');
    expect(error.message).toMatch(/replaced by buildBranches/);
    expect(error.message).toContain('-c buildBranches=main');
  });

  test('Given GitHub through a connection, When resolved, Then the ARN is kept', () => {
    expect(resolveConfig({ ...OWNED, sourceConnectionArn: CONNECTION }).config.source).toEqual({
      provider: 'github',
      owner: 'acme',
      repo: 'container.training',
      connectionArn: CONNECTION,
    });
  });

  test('Given GitLab with a nested group and a connection, When resolved, Then there is no warning', () => {
    const { config, warnings } = resolveConfig({
      sourceProvider: 'gitlab',
      sourceOwner: 'platform/apps',
      sourceRepo: 'dockercoins',
      sourceConnectionArn: CONNECTION,
    });

    expect(config.source).toEqual({
      provider: 'gitlab',
      owner: 'platform/apps',
      repo: 'dockercoins',
      connectionArn: CONNECTION,
    });
    expect(warnings).toEqual([]);
  });

  test.each([
    [
      { sourceProvider: 'gitlab', sourceConnectionArn: CONNECTION },
      'sourceOwner',
      /sourceOwner is not set/,
    ],
    [
      { sourceProvider: 'bitbucket', sourceOwner: 'acme' },
      'sourceConnectionArn',
      /only through a CodeConnections/,
    ],
    [
      { sourceProvider: 'bitbucket', sourceOwner: 'Acme', sourceConnectionArn: CONNECTION },
      'sourceOwner',
      /Bitbucket workspace/,
    ],
    [{ sourceProvider: 'codecommit', sourceOwner: 'acme' }, 'sourceOwner', /belong to the account/],
    [
      { sourceProvider: 'codecommit', sourceConnectionArn: CONNECTION },
      'sourceConnectionArn',
      /needs no connection/,
    ],
    [
      { sourceProvider: 'codecommit', pullRequestBuilds: true },
      'pullRequestBuilds',
      /no pull-request webhooks/,
    ],
  ])('Given %j, When resolved, Then %s is refused with the fix', (context, key, expected) => {
    const error = errorOf(context);

    expect(error.key).toBe(key);
    expect(error.message).toMatch(expected);
  });

  test('Given CodeCommit, When resolved, Then there is no owner and no warning', () => {
    const { config, warnings } = resolveConfig({ sourceProvider: 'codecommit', sourceRepo: 'dc' });

    expect(config.source).toEqual({
      provider: 'codecommit',
      owner: undefined,
      repo: 'dc',
      connectionArn: undefined,
    });
    expect(warnings).toEqual([]);
  });
});

describe('the optional cluster', () => {
  test('Given createCluster with a commit tag, When resolved, Then the cluster is created with it', () => {
    const { config } = resolveConfig({
      ...OWNED,
      createCluster: 'true',
      initialImageTag: '6e0de7938dda',
      inClusterRegistry: true,
      registryNodePort: '31000',
    });

    expect(config.cluster).toEqual({
      create: true,
      initialImageTag: '6e0de7938dda',
      inClusterRegistry: true,
      registryNodePort: 31000,
      endpointPublicCidrs: ['0.0.0.0/0'],
    });
  });

  test.each<[string, unknown, string[]]>([
    [
      'comma-separated, from -c',
      ' 203.0.113.0/24, 198.51.100.7/32 ',
      ['203.0.113.0/24', '198.51.100.7/32'],
    ],
    ['a JSON array', '["203.0.113.0/24"]', ['203.0.113.0/24']],
    ['a list, from cdk.json, duplicates once', ['10.0.0.0/8', '10.0.0.0/8'], ['10.0.0.0/8']],
    ['anywhere', '0.0.0.0/0', ['0.0.0.0/0']],
  ])(
    'Given clusterEndpointCidrs as %s, Then the public endpoint answers exactly those',
    (_name, value, cidrs) => {
      const { config } = resolveConfig({
        ...OWNED,
        createCluster: true,
        initialImageTag: '6e0de7938dda',
        clusterEndpointCidrs: value,
      });
      expect(config.cluster.endpointPublicCidrs).toEqual(cidrs);
    },
  );

  test.each<[unknown, RegExp]>([
    ['203.0.113.0', /IPv4 CIDR blocks/],
    ['203.0.113.0/33', /IPv4 CIDR blocks/],
    ['256.0.0.0/8', /IPv4 CIDR blocks/],
    ['2001:db8::/32', /IPv4 CIDR blocks/],
    ['', /IPv4 CIDR blocks/],
    ['203.0.113.7/24', /"203.0.113.7\/24".*host bits set; did you mean 203.0.113.0\/24\?/],
    [Array.from({ length: 41 }, (_, i) => `10.0.${i}.0/24`), /1 to 40/],
  ])(
    'Given clusterEndpointCidrs %j, Then it is refused, naming the value and the form',
    (value, expected) => {
      const error = errorOf({
        ...OWNED,
        createCluster: true,
        initialImageTag: '6e0de7938dda',
        clusterEndpointCidrs: value,
      });
      expect(error.key).toBe('clusterEndpointCidrs');
      expect(error.message).toMatch(expected);
    },
  );

  test('Given clusterEndpointCidrs without createCluster, Then it is refused (an existing cluster is not ours to change)', () => {
    const error = errorOf({ ...OWNED, clusterEndpointCidrs: '203.0.113.0/24' });
    expect(error.key).toBe('clusterEndpointCidrs');
    expect(error.message).toMatch(/createCluster is false.*update-cluster-config/);
  });

  test("Given createCluster without initialImageTag, When resolved, Then DockerCoins starts from the seed's public images", () => {
    expect(resolveConfig({ ...OWNED, createCluster: 'true' }).config.cluster).toEqual({
      create: true,
      initialImageTag: undefined,
      inClusterRegistry: false,
      registryNodePort: expect.any(Number) as number,
      endpointPublicCidrs: ['0.0.0.0/0'],
    });
  });

  test.each([
    [
      { createCluster: true, services: 'hasher,rng,webui,worker,miner' },
      'initialImageTag',
      /service "miner" has none \(only hasher, rng, webui, worker do\).*-c initialImageTag=/,
    ],
    [{ createCluster: true, initialImageTag: 'latest' }, 'initialImageTag', /never "latest"/],
    [{ createCluster: true, initialImageTag: 'a/b' }, 'initialImageTag', /image tag/],
    [{ initialImageTag: '6e0de7938dda' }, 'initialImageTag', /createCluster is false/],
    [{ inClusterRegistry: true }, 'inClusterRegistry', /createCluster is false/],
    [{ registryNodePort: 5000 }, 'registryNodePort', /from 30000 to 32767/],
    [{ createCluster: 'yes' }, 'createCluster', /true or false/],
  ])('Given %j, When resolved, Then %s is refused with the fix', (context, key, expected) => {
    const error = errorOf({ ...OWNED, ...context });

    expect(error.key).toBe(key);
    expect(error.message).toMatch(expected);
  });
});

describe('verification: deadlines, poll interval, rollback', () => {
  test('Given none, When resolved, Then services and environments carry no verification keys (the defaults apply: 180 s, 5 s, rollback on)', () => {
    const { config } = resolveConfig(OWNED);
    expect(config.services.every((s) => s.verifyDeadlineSeconds === undefined)).toBe(true);
    expect(config.environments).toEqual([
      expect.not.objectContaining({ rollback: expect.anything() as unknown }),
    ]);
  });

  test('Given a service deadline and an environment without rollback, polled every 10 s, When resolved, Then each is kept', () => {
    const { config } = resolveConfig({
      ...OWNED,
      services: [{ name: 'webui', verifyDeadlineSeconds: 300 }, 'hasher'],
      environments: [
        { name: 'main', namespace: 'dockercoins', branches: ['main'] },
        {
          name: 'prod',
          namespace: 'dockercoins-prod',
          releaseTags: true,
          rollback: false,
          verifyDeadlineSeconds: 240,
          verifyPollSeconds: 10,
        },
      ],
    });
    expect(config.services.map((s) => [s.name, s.verifyDeadlineSeconds])).toEqual([
      ['webui', 300],
      ['hasher', undefined],
    ]);
    expect(config.environments[1]).toMatchObject({
      name: 'prod',
      rollback: false,
      verifyDeadlineSeconds: 240,
      verifyPollSeconds: 10,
    });
  });

  test.each([
    [
      { services: [{ name: 'webui', verifyDeadlineSeconds: 10 }] },
      'services',
      /"verifyDeadlineSeconds" of service "webui" is 10; give whole seconds from 30 to 1800/,
    ],
    [
      {
        environments: [
          { name: 'main', namespace: 'dc', branches: ['main'], verifyDeadlineSeconds: '300' },
        ],
      },
      'environments',
      /"verifyDeadlineSeconds" of environment "main" is "300"; give whole seconds from 30 to 1800/,
    ],
    [
      {
        environments: [
          { name: 'main', namespace: 'dc', branches: ['main'], verifyPollSeconds: 90 },
        ],
      },
      'environments',
      /"verifyPollSeconds" of environment "main" is 90; give whole seconds from 1 to 60/,
    ],
    [
      {
        environments: [
          { name: 'main', namespace: 'dc', branches: ['main'], rollback: 'sometimes' },
        ],
      },
      'environments',
      /sometimes/,
    ],
  ])(
    'Given %j, When resolved, Then %s is refused with the value and the bounds',
    (context, key, message) => {
      const error = errorOf({ ...OWNED, ...context });
      expect(error.key).toBe(key);
      expect(error.message).toMatch(message);
    },
  );
});

describe('environments: which builds deploy where', () => {
  const PROD = { name: 'prod', namespace: 'dockercoins-prod', releaseTags: true };

  test('Given unset environments, When resolved, Then the default one deploys every build branch to namespace on clusterName', () => {
    const { config } = resolveConfig({
      ...OWNED,
      buildBranches: 'main,release/1.x',
      namespace: 'dc',
      clusterName: 'prod-cluster',
    });

    expect(config.environments).toEqual([
      {
        name: 'main',
        clusterName: 'prod-cluster',
        namespace: 'dc',
        branches: ['main', 'release/1.x'],
        releaseTags: false,
      },
    ]);
  });

  test('Given a branch and a release environment, When resolved, Then unset fields take their defaults', () => {
    const { config } = resolveConfig({
      ...OWNED,
      clusterName: 'shared',
      environments: [
        { name: 'main', namespace: 'dockercoins', branches: ['main', 'main'] },
        { ...PROD, clusterName: 'prod-cluster' },
      ],
    });

    expect(config.environments).toEqual([
      {
        name: 'main',
        clusterName: 'shared',
        namespace: 'dockercoins',
        branches: ['main'],
        releaseTags: false,
      },
      {
        name: 'prod',
        clusterName: 'prod-cluster',
        namespace: 'dockercoins-prod',
        branches: [],
        releaseTags: true,
      },
    ]);
  });

  test.each<[string, Record<string, unknown>, RegExp]>([
    [
      'a branch that does not build',
      { environments: [{ name: 'x', namespace: 'x', branches: ['develop'] }] },
      /Environment "x" deploys branch "develop", which is not a build branch \(buildBranches: main\): pushes to it never build.*Add the branch to buildBranches/,
    ],
    [
      'neither branches nor release tags',
      { environments: [{ name: 'x', namespace: 'x', releaseTags: false }] },
      /Environment "x" has no "branches" and no "releaseTags": no build would ever deploy to it/,
    ],
    [
      'two environments of one name',
      { environments: [PROD, { ...PROD, namespace: 'other' }] },
      /environments\[0\] and environments\[1\] are both named "prod"/,
    ],
    [
      'two environments in one namespace of one cluster',
      { environments: [PROD, { ...PROD, name: 'prod2' }] },
      /environments "prod" and "prod2" both deploy to namespace "dockercoins-prod" on cluster "dockercoins"/,
    ],
    [
      'a region',
      { environments: [{ ...PROD, region: 'us-east-1' }] },
      /environments\[0\] sets "region".*can only be created there/,
    ],
    [
      'an unknown key',
      { environments: [{ ...PROD, namspace: 'x' }] },
      /only the keys name, namespace, branches, releaseTags, clusterName, rollback, verifyDeadlineSeconds, verifyPollSeconds \("namspace" is not one\)/,
    ],
    [
      'no namespace',
      { environments: [{ name: 'prod', releaseTags: true }] },
      /environments\[0\] to have a "namespace"/,
    ],
    [
      'no name',
      { environments: [{ namespace: 'dc', releaseTags: true }] },
      /environments\[0\] to have a "name"/,
    ],
    [
      'a name that is not a DNS label',
      { environments: [{ ...PROD, name: 'Prod' }] },
      /"Prod".*DNS-1123 label/,
    ],
    [
      'a cluster name that EKS refuses',
      { environments: [{ ...PROD, clusterName: 'prod cluster' }] },
      /"prod cluster".*EKS cluster name/,
    ],
    [
      'releaseTags that is not a boolean',
      { environments: [{ ...PROD, releaseTags: 'yes' }] },
      /"yes".*true or false/,
    ],
    ['an entry that is not an object', { environments: ['prod'] }, /environment objects/],
  ])(
    'Given %s, When resolved, Then environments is refused with the fix',
    (_name, context, expected) => {
      const error = errorOf({ ...OWNED, ...context });

      expect(error.key).toBe('environments');
      expect(error.message).toMatch(expected);
    },
  );

  test('Given namespace and environments, When resolved, Then namespace is refused: environments replaces it', () => {
    const error = errorOf({ ...OWNED, namespace: 'dc', environments: [PROD] });

    expect(error.key).toBe('namespace');
    expect(error.message).toMatch(/give each environment its "namespace"/);
  });

  test('Given createCluster and no environment on that cluster, When resolved, Then it is refused', () => {
    const error = errorOf({
      ...OWNED,
      createCluster: true,
      initialImageTag: '6e0de7938dda',
      environments: [{ ...PROD, clusterName: 'elsewhere' }],
    });

    expect(error.key).toBe('environments');
    expect(error.message).toMatch(
      /no environment deploys to the cluster "dockercoins" it creates, so DockerCoins would be installed nowhere/,
    );
  });
});

describe('the deployer', () => {
  const VPC = {
    deployerVpcId: 'vpc-0123456789abcdef0',
    deployerSubnetIds: 'subnet-0123456789abcdef0,subnet-0123456789abcdef1',
    deployerSecurityGroupIds: 'sg-0123456789abcdef0',
  };

  test('Given RBAC access, a VPC and an email, When resolved, Then each is kept', () => {
    const { config } = resolveConfig({
      ...OWNED,
      ...VPC,
      deployerAccess: 'rbac',
      notificationEmail: 'ops@example.com',
    });

    expect(config.deployer).toEqual({
      access: 'rbac',
      vpc: {
        vpcId: 'vpc-0123456789abcdef0',
        subnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
        securityGroupIds: ['sg-0123456789abcdef0'],
      },
      notificationEmail: 'ops@example.com',
      logRetentionDays: 90,
    });
  });

  test('Given the VPC keys as JSON (cdk.json), When resolved, Then they equal the -c strings', () => {
    const json = {
      ...VPC,
      deployerSubnetIds: ['subnet-0123456789abcdef0', 'subnet-0123456789abcdef1'],
      deployerSecurityGroupIds: ['sg-0123456789abcdef0'],
    };

    expect(resolveConfig({ ...OWNED, ...json }).config).toEqual(
      resolveConfig({ ...OWNED, ...VPC }).config,
    );
  });

  test('Given a bad subnet among good ones, When resolved, Then that subnet is named', () => {
    const error = errorOf({
      ...OWNED,
      ...VPC,
      deployerSubnetIds: 'subnet-0123456789abcdef0,subnet-1',
    });

    expect(error.key).toBe('deployerSubnetIds');
    expect(error.message).toMatch(/"subnet-1"\. Expected 16 or fewer ids such as "subnet-/);
  });

  test.each<[string, Record<string, unknown>, string, RegExp]>([
    [
      'subnets without a VPC or security groups',
      { deployerSubnetIds: VPC.deployerSubnetIds },
      'deployerVpcId',
      /^deployerSubnetIds is set but deployerVpcId and deployerSecurityGroupIds are not: .*Set the missing ones, or none/,
    ],
    [
      'a VPC and subnets without security groups',
      { deployerVpcId: VPC.deployerVpcId, deployerSubnetIds: VPC.deployerSubnetIds },
      'deployerSecurityGroupIds',
      /^deployerVpcId and deployerSubnetIds are set but deployerSecurityGroupIds is not: .*accepts on port 443/,
    ],
    [
      'more security groups than Lambda takes',
      {
        ...VPC,
        deployerSecurityGroupIds: Array.from(
          { length: 6 },
          (_, i) => `sg-0123456789abcdef${i}`,
        ).join(','),
      },
      'deployerSecurityGroupIds',
      /5 or fewer ids/,
    ],
  ])(
    'Given %s, When resolved, Then it is refused naming the key',
    (_name, context, key, expected) => {
      const error = errorOf({ ...OWNED, ...context });

      expect(error.key).toBe(key);
      expect(error.message).toMatch(expected);
    },
  );
});
