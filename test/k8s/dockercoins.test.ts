import { spawnSync } from 'node:child_process';
import { copyFileSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Aws, CfnParameter, Stack } from 'aws-cdk-lib';
import { parse, stringify } from 'yaml';
import {
  DEPLOYER_GROUP,
  DOCKERCOINS_BUILT_SERVICES,
  DOCKERCOINS_DEPLOYMENTS,
  DockerCoinsManifestsProps,
  K8S_DIR,
  ManifestValueError,
  deployerRbacManifests,
  dockerCoinsManifests,
} from '../../lib/k8s/dockercoins';
import type { ImageOverride, KubernetesObject } from '../../lib/k8s/kustomize';
import {
  K8S,
  byKey,
  find,
  images,
  keyOf,
  kustomize,
  ofKind,
  relativePath,
  removeTempDirs,
  tempDir,
} from './kubectl';

afterAll(removeTempDirs);

const PROPS: DockerCoinsManifestsProps = {
  registry: '210987654321.dkr.ecr.us-east-2.amazonaws.com/dockercoins',
  tag: 'v1.2.0',
  redisImage:
    '210987654321.dkr.ecr.us-east-2.amazonaws.com/dockercoins-ecr-public/docker/library/redis:7.4',
  namespace: 'dockercoins-prod',
};

/**
 * A copy of k8s/overlays/ecr whose `images:` and `namespace:` say what the props say: the
 * kustomization a person would write by hand for these values.
 */
function handWrittenOverlay(props: DockerCoinsManifestsProps): string {
  const overlay = path.join(K8S, 'overlays', 'ecr');
  const copy = tempDir('ecr-overlay');
  const kustomization = parse(readFileSync(path.join(overlay, 'kustomization.yaml'), 'utf8')) as {
    resources: string[];
    images: ImageOverride[];
    namespace: string;
  };
  kustomization.namespace = props.namespace;
  kustomization.images = [
    ...DOCKERCOINS_BUILT_SERVICES.map((service) => ({
      name: service,
      newName: `${props.registry}/${service}`,
      newTag: props.tag,
    })),
    { name: 'redis', newName: props.redisImage },
  ];
  kustomization.resources = kustomization.resources.map((resource) => {
    if (resource.endsWith('.yaml')) {
      copyFileSync(path.join(overlay, resource), path.join(copy, resource));
      return resource;
    }
    return relativePath(copy, path.join(overlay, resource));
  });
  writeFileSync(path.join(copy, 'kustomization.yaml'), stringify(kustomization));
  return copy;
}

describe('dockerCoinsManifests', () => {
  test('Given concrete values, when rendered without kubectl, then the objects and their order equal kubectl kustomize of the ecr overlay written with the same values', () => {
    const ours = dockerCoinsManifests(PROPS);
    const theirs = kustomize(handWrittenOverlay(PROPS));
    expect(byKey(ours)).toEqual(byKey(theirs));
    expect(ours.map(keyOf)).toEqual(theirs.map(keyOf));
  });

  test('Given concrete values, when rendered, then the built images are <registry>/<service>:<tag>, redis is redisImage, and every object is in the namespace', () => {
    const objects = dockerCoinsManifests(PROPS);
    const expected: Record<string, string> = { redis: PROPS.redisImage };
    for (const service of DOCKERCOINS_BUILT_SERVICES) {
      expected[service] = `${PROPS.registry}/${service}:${PROPS.tag}`;
    }
    expect(Object.fromEntries(images(objects))).toEqual(expected);
    expect(find(objects, 'Namespace', PROPS.namespace)).toBeDefined();
    for (const object of objects.filter((o) => o.kind !== 'Namespace')) {
      expect(object.metadata.namespace).toBe(PROPS.namespace);
    }
    expect(
      ofKind(objects, 'Deployment')
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual([...DOCKERCOINS_DEPLOYMENTS]);
  });

  test('Given CloudFormation tokens for registry, tag and redisImage, when rendered, then the images carry the tokens, which resolve to the account, region and parameter', () => {
    const stack = new Stack();
    const tag = new CfnParameter(stack, 'Tag', { type: 'String' }).valueAsString;
    const registry = `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}/dockercoins`;
    const redisImage = `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}/dockercoins-ecr-public/docker/library/redis:7.4`;
    const objects = dockerCoinsManifests({ registry, tag, redisImage, namespace: 'dockercoins' });
    const rng = images(objects).get('rng')!;
    expect(rng).toBe(`${registry}/rng:${tag}`);
    expect(JSON.stringify(stack.resolve(rng))).toContain('{"Ref":"AWS::AccountId"}');
    expect(JSON.stringify(stack.resolve(rng))).toContain('{"Ref":"Tag"}');
    expect(stack.resolve(images(objects).get('redis'))).toEqual(stack.resolve(redisImage));
  });

  test.each<[string, Partial<DockerCoinsManifestsProps>, RegExp]>([
    ['an empty tag', { tag: '' }, /^tag "" is empty\. Set tag to a commit or release tag/],
    [
      'the tag latest',
      { tag: 'latest' },
      /^tag "latest" is refused: nobody knows what latest points to/,
    ],
    ['the tag LATEST', { tag: 'LATEST' }, /^tag "LATEST" is refused/],
    ['a tag with a slash', { tag: 'feature/x' }, /^tag "feature\/x" is not an image tag/],
    ['an empty registry', { registry: '' }, /^registry "" is empty/],
    [
      'a registry with a scheme',
      { registry: 'https://x.io/dc' },
      /^registry "https:\/\/x.io\/dc" starts with a scheme \("https:\/\/"\).*"x.io\/dc"/,
    ],
    [
      'a registry with a trailing slash',
      { registry: 'x.io/dc/' },
      /^registry "x.io\/dc\/" ends with "\/".*"x.io\/dc"/,
    ],
    [
      'a registry without a host',
      { registry: 'dockercoins' },
      /^registry "dockercoins" does not start with a registry host/,
    ],
    [
      'a redis image without a tag',
      { redisImage: 'docker.io/library/redis' },
      /^redisImage "docker.io\/library\/redis" has no tag or digest/,
    ],
    [
      'a redis image tagged latest',
      { redisImage: 'docker.io/library/redis:latest' },
      /^redisImage .* is refused/,
    ],
    [
      'a redis image without a host',
      { redisImage: 'redis:7.4' },
      /^redisImage "redis:7.4" names no registry host/,
    ],
    [
      'a namespace with capitals',
      { namespace: 'DockerCoins' },
      /^namespace "DockerCoins" is not a Kubernetes namespace name/,
    ],
  ])(
    'Given %s, when rendered, then a ManifestValueError names the property, the value and the fix',
    (_case, change, message) => {
      const call = (): KubernetesObject[] => dockerCoinsManifests({ ...PROPS, ...change });
      expect(call).toThrow(ManifestValueError);
      expect(call).toThrow(message);
    },
  );

  test('Given a tag that is a token, when rendered, then it is not validated (its value is unknown until deploy)', () => {
    const stack = new Stack();
    const tag = new CfnParameter(stack, 'Tag', { type: 'String' }).valueAsString;
    expect(() => dockerCoinsManifests({ ...PROPS, tag })).not.toThrow();
  });

  test('Given the ecr overlay folder, when listed, then it holds only its kustomization and namespace.yaml (all that the hand-written copy copies)', () => {
    const overlay = path.join(K8S_DIR, 'overlays', 'ecr');
    expect(readdirSync(overlay).sort()).toEqual(['kustomization.yaml', 'namespace.yaml']);
  });
});

describe('the same rules as k8s/render.sh', () => {
  const renderSh = (registry: string, tag: string): boolean =>
    spawnSync(path.join(K8S, 'render.sh'), ['dockerhub'], {
      encoding: 'utf8',
      env: { PATH: process.env.PATH ?? '', KUBECONFIG: '/dev/null', REGISTRY: registry, TAG: tag },
    }).status === 0;
  const library = (registry: string, tag: string): boolean => {
    try {
      dockerCoinsManifests({ ...PROPS, registry, tag });
      return true;
    } catch (error) {
      if (error instanceof ManifestValueError) return false;
      throw error;
    }
  };

  test.each([
    ['docker.io/dockercoins', 'v0.1', true],
    ['127.0.0.1:30500', '6e0de7938dda', true],
    ['localhost:5000/team/app', 'main-6e0de79-42', true],
    ['dockercoins', 'v0.1', false],
    ['https://docker.io/dockercoins', 'v0.1', false],
    ['docker.io/dockercoins/', 'v0.1', false],
    ['docker.io/DockerCoins', 'v0.1', false],
    ['docker.io/dockercoins', 'latest', false],
    ['docker.io/dockercoins', 'Latest', false],
    ['docker.io/dockercoins', '', false],
    ['docker.io/dockercoins', '-v1', false],
  ])(
    'Given REGISTRY=%s TAG=%s, when render.sh and dockerCoinsManifests check them, then both give the same answer (accepted: %s)',
    (registry, tag, accepted) => {
      expect({ script: renderSh(registry, tag), library: library(registry, tag) }).toEqual({
        script: accepted,
        library: accepted,
      });
    },
  );
});

describe('deployerRbacManifests', () => {
  test('Given a namespace, when rendered without kubectl, then it equals kubectl kustomize of k8s/rbac/deployer with that namespace', () => {
    const copy = tempDir('rbac-copy');
    const source = path.join(K8S, 'rbac', 'deployer');
    for (const file of readdirSync(source))
      copyFileSync(path.join(source, file), path.join(copy, file));
    const kustomization = parse(readFileSync(path.join(copy, 'kustomization.yaml'), 'utf8')) as {
      namespace: string;
    };
    kustomization.namespace = 'dockercoins-prod';
    writeFileSync(path.join(copy, 'kustomization.yaml'), stringify(kustomization));

    const ours = deployerRbacManifests({ namespace: 'dockercoins-prod' });
    expect(byKey(ours)).toEqual(byKey(kustomize(copy)));
    expect(ours.map((o) => `${o.kind}/${o.metadata.namespace}`)).toEqual([
      'Role/dockercoins-prod',
      'RoleBinding/dockercoins-prod',
    ]);
    expect(find(ours, 'RoleBinding', 'dockercoins-deployer').subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: DEPLOYER_GROUP },
    ]);
  });

  test('Given an invalid namespace, when rendered, then a ManifestValueError names it', () => {
    expect(() => deployerRbacManifests({ namespace: 'prod_env' })).toThrow(/^namespace "prod_env"/);
  });
});
