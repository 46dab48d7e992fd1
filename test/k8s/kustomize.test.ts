import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import {
  KubernetesObject,
  KustomizeError,
  RenderOptions,
  renderKustomization,
  splitImage,
} from '../../lib/k8s/kustomize';
import {
  K8S,
  byKey,
  images,
  keyOf,
  kubectl,
  kustomizationDirs,
  kustomize,
  relativePath,
  removeTempDirs,
  tempDir,
} from './kubectl';

afterAll(removeTempDirs);

/** The same set of objects (keyed by apiVersion/kind/namespace/name, deep-equal), in the same order. */
function expectSameAsKubectl(dir: string, options?: RenderOptions): KubernetesObject[] {
  const ours = renderKustomization(dir, options);
  const theirs = kustomize(dir);
  const oursByKey = byKey(ours);
  const theirsByKey = byKey(theirs);
  expect([...oursByKey.keys()].sort()).toEqual([...theirsByKey.keys()].sort());
  for (const [key, object] of oursByKey) expect(object).toEqual(theirsByKey.get(key));
  expect(ours.map(keyOf)).toEqual(theirs.map(keyOf));
  return ours;
}

/** Writes files (path → text) into a fresh folder; returns it. */
function fixture(files: Record<string, string>): string {
  const dir = tempDir('kustomize-fixture');
  for (const [file, text] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, file)), { recursive: true });
    writeFileSync(path.join(dir, file), text);
  }
  return dir;
}

const deployment = (
  name: string,
  containerImages: string[],
  initImages: string[] = [],
): object => ({
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name, labels: { 'app.kubernetes.io/name': name } },
  spec: {
    selector: { matchLabels: { 'app.kubernetes.io/name': name } },
    template: {
      metadata: { labels: { 'app.kubernetes.io/name': name } },
      spec: {
        ...(initImages.length > 0
          ? { initContainers: initImages.map((image, i) => ({ name: `init${i}`, image })) }
          : {}),
        containers: containerImages.map((image, i) => ({ name: `c${i}`, image })),
      },
    },
  },
});

const yamlDocs = (...objects: object[]): string => objects.map((o) => stringify(o)).join('---\n');

describe('the kustomizations under k8s/', () => {
  const supported = kustomizationDirs().filter((dir) => {
    try {
      renderKustomization(dir);
      return true;
    } catch (error) {
      if (error instanceof KustomizeError) return false;
      throw error;
    }
  });

  test('Given k8s/, when each kustomization is rendered, then the three the CDK app needs are supported: base, overlays/ecr, rbac/deployer', () => {
    const names = supported.map((dir) => path.relative(K8S, dir));
    expect(names).toEqual(expect.arrayContaining(['base', 'overlays/ecr', 'rbac/deployer']));
  });

  test.each(supported.map((dir) => [path.relative(K8S, dir), dir]))(
    'Given %s, when rendered without kubectl, then the objects and their order equal kubectl kustomize',
    (_name, dir) => {
      expectSameAsKubectl(dir);
    },
  );

  test.each([
    ['overlays/in-cluster', /field "patches" is not supported/],
    ['components/webui-loadbalancer', /field "patches" is not supported|kind "Component"/],
  ])(
    'Given %s, which uses more than the subset, when rendered, then it is refused, naming the field',
    (name, message) => {
      expect(() => renderKustomization(path.join(K8S, name))).toThrow(message);
    },
  );
});

describe('images', () => {
  const d1 = 'sha256:' + '1'.repeat(64);
  const d2 = 'sha256:' + '2'.repeat(64);
  // Each row: the image in the manifest, the images: entries, as kustomize's updater sees them.
  const cases: [string, string[], object[]][] = [
    ['a new name', ['app'], [{ name: 'app', newName: 'x.io/team/app' }]],
    ['a new tag', ['app:1.0'], [{ name: 'app', newTag: '2.0' }]],
    ['a digest on a tagged image', ['app:1.0'], [{ name: 'app', digest: d1 }]],
    ['a new tag on a digest', [`app@${d1}`], [{ name: 'app', newTag: '2.0' }]],
    [
      'a new name only, tag and digest kept',
      [`app:1.0@${d1}`],
      [{ name: 'app', newName: 'x.io/app' }],
    ],
    [
      'a new tag and digest together',
      [`app:1.0@${d1}`],
      [{ name: 'app', newTag: '3', digest: d2 }],
    ],
    [
      'a registry with a port',
      ['127.0.0.1:30500/app:1'],
      [{ name: '127.0.0.1:30500/app', newTag: '2' }],
    ],
    ['a longer name that must not match', ['application:1'], [{ name: 'app', newTag: '2' }]],
    [
      'a name used as a pattern, as kustomize does',
      ['aXb/app:1'],
      [{ name: 'a.b/app', newTag: '2' }],
    ],
    [
      'entries applied in order (rename, then retag)',
      ['app:1'],
      [
        { name: 'app', newName: 'b' },
        { name: 'b', newTag: '9' },
      ],
    ],
    [
      'a full reference as newName on an untagged image',
      ['redis'],
      [{ name: 'redis', newName: 'x.io/mirror/redis:7.4' }],
    ],
    ['init containers too', ['app:1'], [{ name: 'app', newTag: '2' }]],
  ];

  test('Given each case in a kustomization of its own, when rendered, then each image equals what kubectl kustomize makes of it', () => {
    const objects = cases.map(([, imagesOfCase], i) =>
      deployment(`case${i}`, imagesOfCase, i === cases.length - 1 ? imagesOfCase : []),
    );
    const dirs = cases.map(([, , entries], i) =>
      fixture({
        'kustomization.yaml': stringify({ resources: ['d.yaml'], images: entries }),
        'd.yaml': yamlDocs(objects[i]!),
      }),
    );
    for (const dir of dirs) expectSameAsKubectl(dir);
    // And the rows really transform something (or, for the no-match row, really do not).
    const changed = dirs.map(
      (dir, i) => images(renderKustomization(dir)).get('c0') !== cases[i]![1][0],
    );
    expect(changed).toEqual(cases.map(([name]) => !name.includes('must not match')));
  });

  test.each([
    ['app', { name: 'app', tag: '', digest: '' }],
    ['app:1.0', { name: 'app', tag: '1.0', digest: '' }],
    [
      'x.io:5000/team/app:1.0@sha256:ab',
      { name: 'x.io:5000/team/app', tag: '1.0', digest: 'sha256:ab' },
    ],
    ['x.io:5000/team/app@sha256:ab', { name: 'x.io:5000/team/app', tag: '', digest: 'sha256:ab' }],
    ['localhost:5000/app', { name: 'localhost:5000/app', tag: '', digest: '' }],
  ])(
    'Given the image %s, when split, then name, tag and digest are where kustomize puts them',
    (image, expected) => {
      expect(splitImage(image)).toEqual(expected);
    },
  );
});

describe('namespace and labels', () => {
  test('Given a nested kustomization with a Namespace, a Role, a Group RoleBinding and labels, when rendered, then it equals kubectl kustomize', () => {
    const dir = fixture({
      'base/kustomization.yaml': stringify({
        resources: ['all.yaml'],
        labels: [{ pairs: { tier: 'inner' }, includeTemplates: true }],
      }),
      'base/all.yaml':
        '# a comment, and an empty document first\n---\n' +
        yamlDocs(
          deployment('web', ['web:1']),
          {
            apiVersion: 'v1',
            kind: 'Service',
            metadata: { name: 'web', namespace: 'elsewhere' },
            spec: { selector: { 'app.kubernetes.io/name': 'web' }, ports: [{ port: 80 }] },
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'Role',
            metadata: { name: 'r' },
            rules: [{ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get'] }],
          },
          {
            apiVersion: 'rbac.authorization.k8s.io/v1',
            kind: 'RoleBinding',
            metadata: { name: 'r' },
            roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'r' },
            subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'g' }],
          },
        ),
      'overlay/kustomization.yaml': stringify({
        namespace: 'target',
        resources: ['ns.yaml', '../base'],
        labels: [
          { pairs: { owner: 'team' }, includeSelectors: false },
          { pairs: { pod: 'templated' }, includeTemplates: true },
        ],
        images: [{ name: 'web', newName: 'x.io/web', newTag: '2' }],
      }),
      'overlay/ns.yaml': stringify({
        apiVersion: 'v1',
        kind: 'Namespace',
        metadata: { name: 'placeholder' },
      }),
    });
    const objects = expectSameAsKubectl(path.join(dir, 'overlay'));
    expect(
      objects.map((o) => `${o.kind}/${o.metadata.namespace ?? '-'}/${o.metadata.name}`),
    ).toEqual([
      'Namespace/-/target',
      'Role/target/r',
      'RoleBinding/target/r',
      'Service/target/web',
      'Deployment/target/web',
    ]);
  });
});

describe('a label set twice', () => {
  const files = (): Record<string, string> => ({
    'base/kustomization.yaml': stringify({
      resources: ['d.yaml'],
      labels: [{ pairs: { tier: 'inner' }, includeTemplates: true }],
    }),
    'base/d.yaml': yamlDocs(deployment('web', ['web:1'])),
    'overlay/kustomization.yaml': stringify({
      resources: ['../base'],
      labels: [{ pairs: { tier: 'outer' } }],
    }),
  });

  test('Given an overlay whose labels (without templates) repeat a key the base put on pod templates, when kubectl renders it, then the pod template changes too: the behaviour the renderer cannot reproduce', () => {
    const dir = fixture(files());
    const [web] = kustomize(path.join(dir, 'overlay'));
    expect(
      (web!.spec as { template: { metadata: { labels: Record<string, string> } } }).template
        .metadata.labels.tier,
    ).toBe('outer');
  });

  test('Given that overlay, when rendered without kubectl, then a KustomizeError names the label and both kustomizations', () => {
    const dir = fixture(files());
    expect(() => renderKustomization(path.join(dir, 'overlay'))).toThrow(
      /overlay\/kustomization.yaml: labels set "tier", which labels in .*base\/kustomization.yaml already set/,
    );
  });
});

describe('options', () => {
  test('Given images and namespace options, when the ecr overlay is rendered, then it equals kubectl kustomize of a copy of the overlay edited the same way', () => {
    const overlay = path.join(K8S, 'overlays', 'ecr');
    const options = {
      namespace: 'dockercoins-prod',
      images: [
        { name: 'rng', newName: 'x.io/team/rng', newTag: 'v9' },
        { name: 'redis', digest: 'sha256:' + '3'.repeat(64) },
        { name: 'not-in-the-overlay', newTag: 'x' },
      ],
    };
    const copy = tempDir('ecr-copy');
    const kustomization = parse(readFileSync(path.join(overlay, 'kustomization.yaml'), 'utf8')) as {
      resources: string[];
      images: { name: string }[];
      namespace: string;
    };
    kustomization.namespace = options.namespace;
    kustomization.images = [
      ...kustomization.images.map((e) => options.images.find((o) => o.name === e.name) ?? e),
      options.images[2]!,
    ];
    // namespace.yaml is copied (kustomize loads files only from inside the folder); the base is
    // a folder, reachable by a relative path.
    writeFileSync(
      path.join(copy, 'namespace.yaml'),
      readFileSync(path.join(overlay, 'namespace.yaml')),
    );
    kustomization.resources = kustomization.resources.map((r) =>
      r === 'namespace.yaml' ? r : relativePath(copy, path.join(overlay, r)),
    );
    writeFileSync(path.join(copy, 'kustomization.yaml'), stringify(kustomization));

    const ours = renderKustomization(overlay, options);
    const theirs = kustomize(copy);
    expect(byKey(ours)).toEqual(byKey(theirs));
    expect(images(ours).get('rng')).toBe('x.io/team/rng:v9');
    expect(ours.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('dockercoins-prod');
  });

  test('Given a render, when its objects are changed, then a second render is unaffected (plain copies)', () => {
    const first = renderKustomization(path.join(K8S, 'base'));
    first[0]!.metadata.name = 'changed';
    expect(renderKustomization(path.join(K8S, 'base'))[0]!.metadata.name).not.toBe('changed');
  });
});

describe('what the renderer refuses', () => {
  const ok = yamlDocs(deployment('web', ['web:1']));
  const refused: [string, Record<string, string>, RegExp][] = [
    [
      'patches',
      { 'kustomization.yaml': 'resources: [d.yaml]\npatches: []\n', 'd.yaml': ok },
      /field "patches" is not supported/,
    ],
    [
      'components',
      { 'kustomization.yaml': 'resources: [d.yaml]\ncomponents: []\n', 'd.yaml': ok },
      /field "components"/,
    ],
    [
      'configMapGenerator',
      { 'kustomization.yaml': 'configMapGenerator: []\n' },
      /field "configMapGenerator"/,
    ],
    ['commonLabels', { 'kustomization.yaml': 'commonLabels: {a: b}\n' }, /field "commonLabels"/],
    ['namePrefix', { 'kustomization.yaml': 'namePrefix: x-\n' }, /field "namePrefix"/],
    ['replicas', { 'kustomization.yaml': 'replicas: []\n' }, /field "replicas"/],
    [
      'a Component',
      { 'kustomization.yaml': 'apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n' },
      /apiVersion .* is not supported/,
    ],
    [
      'labels with includeSelectors',
      { 'kustomization.yaml': 'labels: [{pairs: {a: b}, includeSelectors: true}]\n' },
      /includeSelectors: true is not supported/,
    ],
    [
      'labels with fields',
      { 'kustomization.yaml': 'labels: [{pairs: {a: b}, fields: []}]\n' },
      /labels\[0\]: field "fields"/,
    ],
    [
      'an images entry with tagSuffix',
      { 'kustomization.yaml': 'images: [{name: a, tagSuffix: -x}]\n' },
      /images\[0\]: field "tagSuffix"/,
    ],
    [
      'an unquoted numeric newTag',
      { 'kustomization.yaml': 'images: [{name: a, newTag: 7.4}]\n' },
      /newTag must be a non-empty string, got 7.4\. Quote it/,
    ],
    [
      'a label value that is not a string',
      { 'kustomization.yaml': 'labels: [{pairs: {a: 1}}]\n' },
      /the value of "a" is 1, not a string/,
    ],
    [
      'an unquoted YAML 1.1 boolean',
      {
        'kustomization.yaml': 'resources: [d.yaml]\n',
        'd.yaml': ok.replace('web:1', 'web:1\n          tty: yes'),
      },
      /unquoted value yes .* Quote it/,
    ],
    [
      'an unquoted leading-zero number',
      {
        'kustomization.yaml': 'resources: [d.yaml]\n',
        'd.yaml':
          ok + '---\napiVersion: v1\nkind: Secret\nmetadata: {name: s}\ndata: {}\nmode: 0644\n',
      },
      /unquoted value 0644/,
    ],
    [
      'a kind it does not know the scope of',
      {
        'kustomization.yaml': 'resources: [s.yaml]\n',
        's.yaml': 'apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: s}\n',
      },
      /kind StatefulSet is not supported/,
    ],
    [
      'a List',
      {
        'kustomization.yaml': 'resources: [l.yaml]\n',
        'l.yaml': 'apiVersion: v1\nkind: List\nitems: []\n',
      },
      /kind List is not supported/,
    ],
    [
      'a ServiceAccount subject',
      {
        'kustomization.yaml': 'resources: [b.yaml]\n',
        'b.yaml':
          'apiVersion: rbac.authorization.k8s.io/v1\nkind: RoleBinding\nmetadata: {name: b}\nroleRef: {apiGroup: rbac.authorization.k8s.io, kind: Role, name: r}\nsubjects: [{kind: ServiceAccount, name: default}]\n',
      },
      /only Group and User subjects/,
    ],
    [
      'a remote resource',
      { 'kustomization.yaml': 'resources: [https://github.com/x/y//k8s]\n' },
      /is remote/,
    ],
    ['an absolute resource', { 'kustomization.yaml': 'resources: [/etc/hosts]\n' }, /is absolute/],
    [
      'a missing resource',
      { 'kustomization.yaml': 'resources: [gone.yaml]\n' },
      /"gone.yaml" does not exist/,
    ],
    [
      'a file outside the folder',
      { 'inner/kustomization.yaml': 'resources: [../d.yaml]\n', 'd.yaml': ok },
      /outside the kustomization's folder/,
    ],
    [
      'a folder without kustomization',
      { 'kustomization.yaml': 'resources: [sub]\n', 'sub/d.yaml': ok },
      /holds no kustomization/,
    ],
    [
      'two kustomization files',
      { 'kustomization.yaml': 'resources: []\n', 'kustomization.yml': 'resources: []\n' },
      /refuses more than one kustomization file/,
    ],
    [
      'a duplicate object',
      { 'kustomization.yaml': 'resources: [d.yaml, e.yaml]\n', 'd.yaml': ok, 'e.yaml': ok },
      /Deployment\.apps\/web comes from both/,
    ],
    [
      'a cycle',
      {
        'a/kustomization.yaml': 'resources: [../b]\n',
        'b/kustomization.yaml': 'resources: [../a]\n',
      },
      /Cycle in resources/,
    ],
    [
      'a YAML alias',
      { 'kustomization.yaml': 'namespace: &n x\nresources: []\nlabels: [{pairs: {a: *n}}]\n' },
      /aliases are not supported/,
    ],
  ];

  test.each(refused)(
    'Given a kustomization with %s, when rendered, then a KustomizeError names it',
    (_case, files, message) => {
      const dir = fixture(files);
      const start =
        files['inner/kustomization.yaml'] !== undefined
          ? path.join(dir, 'inner')
          : files['a/kustomization.yaml'] !== undefined
            ? path.join(dir, 'a')
            : dir;
      expect(() => renderKustomization(start)).toThrow(KustomizeError);
      expect(() => renderKustomization(start)).toThrow(message);
    },
  );

  test('Given the subset-breaking features kustomize itself accepts, when kubectl renders them, then it succeeds (the renderer refuses what it cannot reproduce, not what is invalid)', () => {
    for (const [name, files] of refused.slice(0, 6)) {
      const dir = fixture(files);
      const result = kubectl(['kustomize', dir]);
      expect({ name, status: result.status }).toEqual({ name, status: 0 });
    }
  });

  test.each([
    ['a relative folder', 'k8s/base', /needs an absolute folder, got "k8s\/base"/],
    ['a folder without kustomization', '/', /holds no kustomization/],
  ])('Given %s, when rendered, then a KustomizeError says what to pass', (_case, dir, message) => {
    expect(() => renderKustomization(dir)).toThrow(message);
  });

  test.each([
    ['a name with regex characters', { name: 'a(b)' }, /name "a\(b\)" is not an image name/],
    ['an empty newTag', { name: 'a', newTag: '' }, /newTag must be a non-empty string/],
    ['an unknown field', { name: 'a', tag: 'x' }, /field "tag" is not supported/],
  ])(
    'Given an image option with %s, when rendered, then a KustomizeError names it',
    (_case, image, message) => {
      expect(() => renderKustomization(path.join(K8S, 'base'), { images: [image] })).toThrow(
        message,
      );
    },
  );
});
