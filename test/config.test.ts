import { ConfigError, DEFAULTS, editDistance, resolveConfig, wildcardMatches } from '../lib/config';

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
      releaseTagPattern: 'v*',
      buildCacheTag: 'buildcache',
      removal: 'retain',
      pullAccountIds: [],
      pullThroughCachePrefix: 'dockercoins-ecr-public',
      redisImageTag: '7.4',
    });
    expect(config.source).toEqual({
      owner: 'jpetazzo',
      repo: 'container.training',
      branch: 'main',
    });
    expect(config.clusterName).toBe('dockercoins');
    expect(config.namespace).toBe('dockercoins');
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
    ['untaggedImageExpiryDays', 14, ' 14 '],
    ['encryption', 'KMS', 'kms'],
    ['removalPolicy', 'destroy', 'DESTROY'],
    ['buildCacheTag', false, 'none'],
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
    ['sourceBranch', 'refs/heads/main', /git branch name/],
    ['sourceBranch', 'feature..x', /git branch name/],
    ['sourceBranch', 'main.lock', /git branch name/],
    ['sourceBranch', 'a b', /git branch name/],
    ['sourceBranch', '.hidden', /git branch name/],
    ['clusterName', '-prod', /EKS cluster name/],
    ['clusterName', 'a'.repeat(101), /EKS cluster name/],
    ['namespace', 'Dockercoins', /DNS-1123 label/],
    ['namespace', 'a'.repeat(64), /DNS-1123 label/],
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
        "buildCacheTag",
        "clusterName",
        "commitImagesToKeep",
        "encryption",
        "namespace",
        "pullAccountIds",
        "pullThroughCachePrefix",
        "redisImageTag",
        "releaseTagPattern",
        "removalPolicy",
        "repositoryPrefix",
        "services",
        "sourceBranch",
        "sourceOwner",
        "sourceRepo",
        "stackNamePrefix",
        "untaggedImageExpiryDays",
      ]
    `);
  });
});
