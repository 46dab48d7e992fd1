import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml, stringify } from 'yaml';
import { REPO_ROOT } from '../support/app';
import { ConfigFileError, IN_CLUSTER, parseConfigFile } from '../../incluster/settings';

/** The sample configuration the manifests ship (k8s/deployer/base/config.yaml), read as it is. */
const SAMPLE = parseYaml(
  readFileSync(path.join(REPO_ROOT, 'k8s', 'deployer', 'base', 'config.yaml'), 'utf8'),
) as Record<string, unknown> & { registry: Record<string, unknown> };

const parse = (config: unknown): ReturnType<typeof parseConfigFile> =>
  parseConfigFile(stringify(config));

describe('the configuration file', () => {
  test('the sample: every key read, the core settings made from it', () => {
    const settings = parse(SAMPLE);
    expect(settings).toMatchObject({
      registry: {
        url: 'http://registry.registry.svc.cluster.local:5000',
        host: 'registry.registry.svc.cluster.local:5000',
        pullHost: '127.0.0.1:30500',
      },
      repositoryPrefix: '',
      releaseTagPattern: 'v*',
      verify: { deadlineSeconds: 180, pollSeconds: 5 },
      rollback: true,
      reconcileSeconds: 60,
      webhook: { format: 'json' },
    });
    expect(settings.deployer.services.map((s) => [s.service, s.repository, s.targets])).toEqual([
      ['hasher', 'hasher', [{ deployment: 'hasher', container: 'hasher' }]],
      ['rng', 'rng', [{ deployment: 'rng', container: 'rng' }]],
      ['webui', 'webui', [{ deployment: 'webui', container: 'webui' }]],
      ['worker', 'worker', [{ deployment: 'worker', container: 'worker' }]],
    ]);
    expect(settings.deployer.environments).toEqual([
      {
        name: 'staging',
        clusterName: IN_CLUSTER,
        region: undefined,
        namespace: 'dockercoins-staging',
        branches: ['main'],
        releaseTags: false,
      },
      {
        name: 'production',
        clusterName: IN_CLUSTER,
        region: undefined,
        namespace: 'dockercoins',
        branches: [],
        releaseTags: true,
      },
    ]);
    expect(settings.deployer.registry).toBe('127.0.0.1:30500');
  });

  test('defaults: v*, verify 180/5, rollback on, reconcile 60 s, no webhook, no prefix', () => {
    const settings = parse({
      registry: SAMPLE.registry,
      services: SAMPLE.services,
      environments: SAMPLE.environments,
    });
    expect(settings).toMatchObject({
      repositoryPrefix: '',
      releaseTagPattern: 'v*',
      verify: { deadlineSeconds: 180, pollSeconds: 5 },
      rollback: true,
      reconcileSeconds: 60,
      webhook: undefined,
    });
  });

  test('a prefix makes repositories <prefix>/<service>', () => {
    const settings = parse({ ...SAMPLE, repositoryPrefix: 'dockercoins' });
    expect(settings.deployer.services[0]!.repository).toBe('dockercoins/hasher');
  });

  test.each<[string, unknown, string, RegExp]>([
    ['not a mapping', ['a'], '(file)', /not a mapping with the keys/],
    ['an unknown key', { ...SAMPLE, reconcile: 5 }, 'reconcile', /unknown key \(a typo\?\)/],
    [
      'no registry',
      { ...SAMPLE, registry: undefined },
      'registry',
      /registry: missing is not a mapping/,
    ],
    [
      'a registry url with a path',
      { ...SAMPLE, registry: { ...SAMPLE.registry, url: 'http://r:5000/v2' } },
      'registry.url',
      /"http:\/\/r:5000\/v2" is not the registry API's base URL/,
    ],
    [
      'a registry url without scheme',
      { ...SAMPLE, registry: { ...SAMPLE.registry, url: 'registry:5000' } },
      'registry.url',
      /is not the registry API's base URL/,
    ],
    [
      'a pullHost with a scheme',
      { ...SAMPLE, registry: { ...SAMPLE.registry, pullHost: 'http://x' } },
      'registry.pullHost',
      /host\[:port\] the nodes pull from/,
    ],
    [
      'a prefix in capitals',
      { ...SAMPLE, repositoryPrefix: 'DockerCoins' },
      'repositoryPrefix',
      /"DockerCoins" is not a repository path prefix/,
    ],
    [
      'a release pattern matching everything',
      { ...SAMPLE, releaseTagPattern: '*' },
      'releaseTagPattern',
      /does not match every tag/,
    ],
    ['no services', { ...SAMPLE, services: [] }, 'services', /non-empty list/],
    [
      'a service twice',
      { ...SAMPLE, services: [{ service: 'rng' }, { service: 'rng' }] },
      'services[1].service',
      /listed once/,
    ],
    [
      'a service not a DNS label',
      { ...SAMPLE, services: [{ service: 'Hasher' }] },
      'services[0].service',
      /"Hasher" is not a service name/,
    ],
    [
      'a container claimed twice',
      {
        ...SAMPLE,
        services: [
          { service: 'a', targets: [{ deployment: 'x', container: 'c' }] },
          { service: 'b', targets: [{ deployment: 'x', container: 'c' }] },
        ],
      },
      'services[1].targets[0]',
      /service "a" already deploys to x\/c/,
    ],
    [
      'empty targets',
      { ...SAMPLE, services: [{ service: 'a', targets: [] }] },
      'services[0].targets',
      /non-empty list/,
    ],
    [
      'a target key typo',
      { ...SAMPLE, services: [{ service: 'a', targets: [{ deploy: 'x' }] }] },
      'services[0].targets[0].deploy',
      /unknown key/,
    ],
    ['no environments', { ...SAMPLE, environments: undefined }, 'environments', /non-empty list/],
    [
      'an environment deploying nothing',
      { ...SAMPLE, environments: [{ name: 'a', namespace: 'a' }] },
      'environments[0]',
      /no branches and no releaseTags/,
    ],
    [
      'a branch pattern',
      { ...SAMPLE, environments: [{ name: 'a', namespace: 'a', branches: ['release/*'] }] },
      'environments[0].branches',
      /exact git branch name/,
    ],
    [
      'a branch as a ref',
      { ...SAMPLE, environments: [{ name: 'a', namespace: 'a', branches: ['refs/heads/main'] }] },
      'environments[0].branches',
      /no "refs\/"/,
    ],
    [
      'releaseTags not a boolean',
      { ...SAMPLE, environments: [{ name: 'a', namespace: 'a', releaseTags: 'yes' }] },
      'environments[0].releaseTags',
      /"yes" is not true or false/,
    ],
    [
      'two environments in one namespace',
      {
        ...SAMPLE,
        environments: [
          { name: 'a', namespace: 'n', branches: ['main'] },
          { name: 'b', namespace: 'n', releaseTags: true },
        ],
      },
      'environments[1].namespace',
      /environment "a" has it/,
    ],
    [
      'two environments of one name',
      {
        ...SAMPLE,
        environments: [
          { name: 'a', namespace: 'n', branches: ['main'] },
          { name: 'a', namespace: 'm', releaseTags: true },
        ],
      },
      'environments[1].name',
      /unique environment name/,
    ],
    [
      'a deadline of 0',
      { ...SAMPLE, verify: { deadlineSeconds: 0 } },
      'verify.deadlineSeconds',
      /0 is not a number of seconds from 1 to 3600/,
    ],
    [
      'a poll longer than the deadline',
      { ...SAMPLE, verify: { deadlineSeconds: 10, pollSeconds: 20 } },
      'verify.pollSeconds',
      /at most verify.deadlineSeconds \(10\)/,
    ],
    [
      'a poll as text',
      { ...SAMPLE, verify: { pollSeconds: '5s' } },
      'verify.pollSeconds',
      /"5s" is not a number of seconds/,
    ],
    ['rollback as text', { ...SAMPLE, rollback: 'no' }, 'rollback', /"no" is not true or false/],
    [
      'a negative reconcile',
      { ...SAMPLE, reconcileSeconds: -1 },
      'reconcileSeconds',
      /-1 is not a number of seconds from 0/,
    ],
    [
      'a reconcile under a second',
      { ...SAMPLE, reconcileSeconds: 0.5 },
      'reconcileSeconds',
      /0 \(off\) or at least 1 second/,
    ],
    [
      'a webhook format of no kind',
      { ...SAMPLE, webhook: { format: 'teams' } },
      'webhook.format',
      /"teams" is not "json"/,
    ],
    [
      'a webhook url in the ConfigMap',
      { ...SAMPLE, webhook: { format: 'json', url: 'https://x' } },
      'webhook.url',
      /unknown key/,
    ],
  ])('refuses %s, naming the key and the fix', (_name, config, key, message) => {
    let error: unknown;
    try {
      parse(config);
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigFileError);
    expect((error as ConfigFileError).key).toBe(key);
    expect((error as ConfigFileError).message).toMatch(message);
    expect((error as ConfigFileError).message).toMatch(/docs\/incluster\.md/);
  });

  test('YAML that does not parse names the file', () => {
    expect(() => parseConfigFile('services: [\n', '/etc/ship-deployer/config.yaml')).toThrow(
      /\/etc\/ship-deployer\/config\.yaml is not valid YAML/,
    );
  });

  test('reconcileSeconds 0 turns the loop off', () => {
    expect(parse({ ...SAMPLE, reconcileSeconds: 0 }).reconcileSeconds).toBe(0);
  });
});
