import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import { differences, kubectlPatch, removeTempDirs } from '../k8s/kubectl';
import { REPO_ROOT } from './app';
import { JsonObject, StrategicMergeError, jsonMergePatch, strategicMerge } from './strategic-merge';

// The in-test API server applies patches with strategicMerge; the reference is the real
// kubectl, whose `patch --local` runs the same apimachinery code as the API server.

const FIXTURE = path.join(REPO_ROOT, 'test', 'fixtures', 'kube', 'hasher-deployment.yaml');
const live = parse(readFileSync(FIXTURE, 'utf8')) as JsonObject;

afterAll(removeTempDirs);

const template = (spec: JsonObject): JsonObject => ({ spec: { template: { spec } } });
const IMAGE = `123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher:0123456789ab@sha256:${'a1'.repeat(32)}`;

const PATCHES: [string, JsonObject][] = [
  [
    'the image of one container, by name',
    template({ containers: [{ name: 'hasher', image: IMAGE }] }),
  ],
  [
    'a container name that does not exist (added, ahead of the others)',
    template({ containers: [{ name: 'hasher-typo', image: IMAGE }] }),
  ],
  [
    'annotations added and changed',
    {
      metadata: {
        annotations: { 'kubernetes.io/change-cause': 'new cause', 'example.com/new': 'x' },
      },
    },
  ],
  [
    'annotations deleted with null (one present, one absent)',
    {
      metadata: {
        annotations: { 'ship.dockercoins.io/build-number': null, 'example.com/absent': null },
      },
    },
  ],
  [
    'env merged by name: one changed, one added',
    template({
      containers: [
        {
          name: 'hasher',
          env: [
            { name: 'LOG_LEVEL', value: 'debug' },
            { name: 'NEW', value: '1' },
          ],
        },
      ],
    }),
  ],
  [
    'an env entry deleted with $patch: delete',
    template({ containers: [{ name: 'hasher', env: [{ name: 'REDIS_HOST', $patch: 'delete' }] }] }),
  ],
  ['replicas', { spec: { replicas: 5 } }],
  [
    'args, a list without a patch strategy, replaced',
    template({ containers: [{ name: 'hasher', args: ['--port', '8080'] }] }),
  ],
  ['tolerations, replaced', template({ tolerations: [{ key: 'spot', operator: 'Exists' }] })],
  [
    'a nested map deleted, a nested key deleted',
    template({
      containers: [
        {
          name: 'hasher',
          resources: { limits: null },
          securityContext: { readOnlyRootFilesystem: null },
        },
      ],
    }),
  ],
  [
    'metadata.resourceVersion in the patch (a precondition for the server, a plain field here)',
    {
      metadata: { resourceVersion: '48000' },
      ...template({ containers: [{ name: 'hasher', image: IMAGE }] }),
    },
  ],
  [
    'ports merged by containerPort',
    template({
      containers: [
        {
          name: 'hasher',
          ports: [
            { containerPort: 80, name: 'web' },
            { containerPort: 9090, name: 'metrics' },
          ],
        },
      ],
    }),
  ],
  [
    'volumeMounts merged by mountPath, volumes by name',
    template({
      containers: [
        {
          name: 'log-shipper',
          volumeMounts: [
            { mountPath: '/var/log/app', readOnly: true },
            { name: 'config', mountPath: '/etc/fluent' },
          ],
        },
      ],
      volumes: [
        { name: 'config', configMap: { name: 'other-config' } },
        { name: 'cache', emptyDir: { medium: 'Memory' } },
      ],
    }),
  ],
  ['imagePullSecrets merged by name', template({ imagePullSecrets: [{ name: 'dockerhub' }] })],
  [
    'an init container image, by name',
    template({ initContainers: [{ name: 'wait-for-redis', image: 'busybox:1.36' }] }),
  ],
  [
    'containers named in another order (the patch order wins)',
    template({
      containers: [
        { name: 'log-shipper', image: 'docker.io/fluent/fluent-bit:3.2' },
        { name: 'hasher', image: IMAGE },
      ],
    }),
  ],
  [
    'a container deleted with $patch: delete',
    template({ containers: [{ name: 'log-shipper', $patch: 'delete' }] }),
  ],
  [
    'the container list replaced with $patch: replace',
    template({ containers: [{ name: 'only', image: 'busybox:1.36' }, { $patch: 'replace' }] }),
  ],
  [
    'a map replaced with $patch: replace',
    template({ securityContext: { $patch: 'replace', runAsUser: 1 } }),
  ],
  [
    'the strategy switched with $retainKeys',
    { spec: { strategy: { $retainKeys: ['type'], type: 'Recreate' } } },
  ],
  [
    'finalizers merged as a set',
    { metadata: { finalizers: ['example.com/other', 'example.com/keep-history'] } },
  ],
  [
    'a finalizer deleted with $deleteFromPrimitiveList',
    { metadata: { '$deleteFromPrimitiveList/finalizers': ['example.com/keep-history'] } },
  ],
  [
    'a new map with nulls in it (dropped)',
    template({
      hostname: 'h',
      dnsConfig: { options: [{ name: 'ndots', value: '2' }], searches: null },
    }),
  ],
  ['a map replaced by a scalar', template({ nodeSelector: 'none' })],
  [
    'template labels and annotations',
    {
      spec: {
        template: {
          metadata: { labels: { tier: 'x' }, annotations: { 'prometheus.io/scrape': null } },
        },
      },
    },
  ],
  [
    'status conditions merged by type',
    {
      status: {
        conditions: [{ type: 'Progressing', status: 'False', reason: 'ProgressDeadlineExceeded' }],
      },
    },
  ],
  [
    'the deployer patch: image, change-cause, our annotations, resourceVersion',
    {
      metadata: {
        resourceVersion: '48213',
        annotations: {
          'kubernetes.io/change-cause': 'hasher 0123456789ab via CodeBuild DockerCoins-hasher #42',
          'ship.dockercoins.io/build-number': '42',
          'ship.dockercoins.io/digest': `sha256:${'a1'.repeat(32)}`,
        },
      },
      ...template({ containers: [{ name: 'hasher', image: IMAGE }] }),
    },
  ],
  ['an empty patch', {}],
];

describe('strategicMerge, compared with kubectl patch --local --type strategic', () => {
  test('Given the fixture, when kubectl applies an empty patch, then it prints it back unchanged (nothing to strip)', () => {
    const result = kubectlPatch(live, {});
    expect('object' in result && differences(live, result.object)).toEqual([]);
  });

  test.each(PATCHES)(
    'Given the live hasher Deployment, when patched with %s, then the result is what kubectl gives',
    (_, patch) => {
      const expected = kubectlPatch(live, patch);
      if ('error' in expected) throw new Error(`kubectl refused the patch:\n${expected.error}`);
      const actual = strategicMerge(live, patch);
      expect(differences(expected.object, actual)).toEqual([]);
      expect(actual).toEqual(expected.object);
    },
  );

  test('Given the table, then each patch changes the object (no row passes by doing nothing) but the empty one', () => {
    const unchanged = PATCHES.filter(
      ([, patch]) => differences(live, strategicMerge(live, patch)).length === 0,
    );
    expect(unchanged.map(([name]) => name)).toEqual(['an empty patch']);
  });

  test('Given a patch, when applied, then neither the object nor the patch is changed', () => {
    const before = structuredClone(live);
    const patch = PATCHES[5]![1];
    const patchBefore = structuredClone(patch);
    strategicMerge(live, patch);
    expect(live).toEqual(before);
    expect(patch).toEqual(patchBefore);
  });

  test.each<[string, JsonObject, RegExp]>([
    [
      'a container without its merge key',
      template({ containers: [{ image: IMAGE }] }),
      /does not contain declared merge key: name/,
    ],
    [
      '$patch: merge on a list element',
      template({ containers: [{ name: 'hasher', $patch: 'merge' }] }),
      /merging lists cannot yet be specified/,
    ],
    [
      'an unknown $patch directive on a map',
      template({ securityContext: { $patch: 'explode' } }),
      /unknown patch type/,
    ],
  ])(
    'Given %s, when applied, then kubectl refuses it and so does strategicMerge',
    (_, patch, message) => {
      expect(kubectlPatch(live, patch)).toHaveProperty('error');
      expect(() => strategicMerge(live, patch)).toThrow(StrategicMergeError);
      expect(() => strategicMerge(live, patch)).toThrow(message);
    },
  );
});

describe('jsonMergePatch, compared with kubectl patch --local --type merge', () => {
  test.each<[string, JsonObject]>([
    [
      'a container list (replaced whole)',
      template({ containers: [{ name: 'hasher', image: IMAGE }] }),
    ],
    [
      'annotations changed and deleted',
      {
        metadata: {
          annotations: { 'kubernetes.io/change-cause': 'x', 'ship.dockercoins.io/commit': null },
        },
      },
    ],
    [
      'a new map with nulls in it (dropped)',
      template({ dnsConfig: { searches: null, options: [{ name: 'ndots', value: null }] } }),
    ],
    [
      'replicas and a nested deletion',
      { spec: { replicas: 0, strategy: { rollingUpdate: null } } },
    ],
    ['a list replacing a map (its nulls kept)', template({ nodeSelector: [{ a: null }] })],
    ['a map replacing a list (its nulls dropped)', template({ tolerations: { a: null, b: '1' } })],
  ])(
    'Given the live hasher Deployment, when merge-patched with %s, then the result is what kubectl gives',
    (_, patch) => {
      const expected = kubectlPatch(live, patch, 'merge');
      if ('error' in expected) throw new Error(`kubectl refused the patch:\n${expected.error}`);
      expect(jsonMergePatch(live, patch)).toEqual(expected.object);
    },
  );
});
