import * as path from 'node:path';
import { Token } from 'aws-cdk-lib';
import { ImageOverride, KubernetesObject, renderKustomization, splitImage } from './kustomize';
import { DNS_LABEL, DNS_SUBDOMAIN, IMAGE_TAG } from '../config';

/** The repository's k8s/ folder, found from this file, never from the working directory. */
export const K8S_DIR = path.resolve(__dirname, '..', '..', 'k8s');

/** The DockerCoins images we build and push as `$REGISTRY/<service>:$TAG`. */
export const DOCKERCOINS_BUILT_SERVICES = ['hasher', 'rng', 'webui', 'worker'] as const;

/** Every DockerCoins Deployment; each has one container of the same name. */
export const DOCKERCOINS_DEPLOYMENTS = ['hasher', 'redis', 'rng', 'webui', 'worker'] as const;

/** The Kubernetes group that k8s/rbac/deployer binds; the deployer's EKS access entry maps to it. */
export const DEPLOYER_GROUP = 'dockercoins-deployer';

export interface DockerCoinsManifestsProps {
  /**
   * `$REGISTRY` of `$REGISTRY/<service>:$TAG`: a registry host and an optional path, without a
   * scheme or a trailing "/", e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins` (the
   * registry stack's `RegistryUri`). May contain CloudFormation tokens.
   */
  readonly registry: string;
  /** `$TAG`: the commit or release tag of hasher, rng, webui and worker. Never empty or `latest`. */
  readonly tag: string;
  /**
   * The redis image, registry host and tag (or digest) included, e.g. the pull-through cache's
   * `…/dockercoins-ecr-public/docker/library/redis:7.4` (the `RedisImage` output). May be a token.
   */
  readonly redisImage: string;
  /** The namespace of every object; the Namespace object is named after it. A DNS label. */
  readonly namespace: string;
}

export interface DeployerRbacManifestsProps {
  /** The namespace whose DockerCoins Deployments the deployer may read and patch. A DNS label. */
  readonly namespace: string;
  /**
   * The Deployments the Role allows get and patch on (its `resourceNames`): the ones that run the
   * services we build, since those are the only ones the deployer patches. At least one.
   * @default - the names in k8s/rbac/deployer/role.yaml (every DockerCoins Deployment)
   */
  readonly deployments?: readonly string[];
}

/** A value that cannot become a working manifest. */
export class ManifestValueError extends Error {
  constructor(
    /** The property at fault. */
    readonly property: string,
    message: string,
  ) {
    super(message);
    this.name = 'ManifestValueError';
  }
}

const REGISTRY_HOST =
  /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?$/;
const PATH_COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * DockerCoins for a cluster, from k8s/overlays/ecr with these values in place of its examples:
 * hasher, rng, webui and worker as `<registry>/<service>:<tag>`, redis as `redisImage`, every
 * object in `namespace`. Equal to `kubectl kustomize` of that overlay with the same `images:` and
 * `namespace:`.
 */
export function dockerCoinsManifests(props: DockerCoinsManifestsProps): KubernetesObject[] {
  checkRegistry(props.registry);
  checkTag(props.tag);
  checkImage('redisImage', props.redisImage);
  checkNamespace(props.namespace);

  const images: ImageOverride[] = [
    ...DOCKERCOINS_BUILT_SERVICES.map((service) => ({
      name: service,
      newName: `${props.registry}/${service}`,
      newTag: props.tag,
    })),
    // The base's redis image is the bare placeholder `redis`, without a tag, so kustomize writes
    // newName as given: a whole reference, tag included, token or not.
    { name: 'redis', newName: props.redisImage },
  ];
  const objects = renderKustomization(path.join(K8S_DIR, 'overlays', 'ecr'), {
    images,
    namespace: props.namespace,
  });

  const expected: Record<string, string> = { redis: props.redisImage };
  for (const service of DOCKERCOINS_BUILT_SERVICES) {
    expected[service] = `${props.registry}/${service}:${props.tag}`;
  }
  for (const object of objects) {
    for (const container of containersOf(object)) {
      if (container.image !== expected[container.name]) {
        throw new ManifestValueError(
          'registry',
          `k8s/overlays/ecr renders container ${container.name} of ${object.kind} ${object.metadata.name} with the image ${container.image}, not one of the given images: keep that overlay to the containers ${Object.keys(expected).join(', ')}.`,
        );
      }
    }
  }
  return objects;
}

/** The deployer's Role and RoleBinding (k8s/rbac/deployer) in `namespace`. */
export function deployerRbacManifests(props: DeployerRbacManifestsProps): KubernetesObject[] {
  checkNamespace(props.namespace);
  const deployments =
    props.deployments === undefined ? undefined : [...new Set(props.deployments)].sort();
  if (deployments !== undefined) checkDeployments(deployments);
  const objects = renderKustomization(path.join(K8S_DIR, 'rbac', 'deployer'), {
    namespace: props.namespace,
  });
  if (deployments === undefined) return objects;
  const role = objects.find((o) => o.kind === 'Role');
  const rules = role?.rules as { resources?: string[]; resourceNames?: string[] }[] | undefined;
  const deploymentRules = (rules ?? []).filter((rule) => rule.resources?.includes('deployments'));
  if (deploymentRules.length !== 1 || deploymentRules[0]?.resourceNames === undefined) {
    throw new ManifestValueError(
      'deployments',
      'k8s/rbac/deployer no longer has exactly one Role rule on deployments with resourceNames, so the ' +
        'configured Deployments cannot be set on it: keep role.yaml to that one rule, or update ' +
        'deployerRbacManifests in lib/k8s/dockercoins.ts.',
    );
  }
  deploymentRules[0].resourceNames = deployments;
  return objects;
}

function containersOf(object: KubernetesObject): { name: string; image: string }[] {
  const podSpec = (object.spec as { template?: { spec?: Record<string, unknown> } } | undefined)
    ?.template?.spec;
  return ['initContainers', 'containers'].flatMap((field) => {
    const containers = podSpec?.[field];
    return Array.isArray(containers) ? (containers as { name: string; image: string }[]) : [];
  });
}

// ---- validation: the same rules as k8s/render.sh; skipped where a token hides the value ----

function fail(property: string, value: string, problem: string, fix: string): never {
  throw new ManifestValueError(property, `${property} ${JSON.stringify(value)} ${problem}. ${fix}`);
}

/** Why `host/path…` is not a repository name with its registry host; undefined when it is. */
function nameProblem(name: string): string | undefined {
  const [host = '', ...components] = name.split('/');
  if (components.length === 0) {
    return 'names no registry host, so the cluster would pick one (Docker Hub)';
  }
  if (
    !REGISTRY_HOST.test(host) ||
    (!host.includes('.') && !host.includes(':') && host !== 'localhost')
  ) {
    return 'does not start with a registry host such as docker.io, 127.0.0.1:30500 or <account>.dkr.ecr.<region>.amazonaws.com';
  }
  const bad = components.find((component) => !PATH_COMPONENT.test(component));
  if (bad !== undefined) {
    return `has the path component "${bad}": lowercase letters and digits, separated by ".", "_" or "-"`;
  }
  return undefined;
}

function checkRegistry(registry: string): void {
  const fix = (value: string): string =>
    `Set registry to a registry host and an optional path, e.g. "${value}".`;
  if (registry === '') {
    fail(
      'registry',
      registry,
      'is empty',
      fix('123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins'),
    );
  }
  // Tokens never contain "://" or end with "/", so these two hold with or without them.
  const scheme = /^[A-Za-z][A-Za-z0-9+.-]*:\/\//.exec(registry);
  if (scheme !== null) {
    fail(
      'registry',
      registry,
      `starts with a scheme ("${scheme[0]}"); image names have none`,
      fix(registry.slice(scheme[0].length).replace(/\/+$/, '')),
    );
  }
  if (registry.endsWith('/')) {
    fail(
      'registry',
      registry,
      'ends with "/"; images are <registry>/<service>:<tag>',
      fix(registry.replace(/\/+$/, '')),
    );
  }
  if (Token.isUnresolved(registry)) return;
  const problem = nameProblem(`${registry}/hasher`);
  if (problem !== undefined) fail('registry', registry, problem, fix('docker.io/dockercoins'));
}

function checkTag(tag: string): void {
  if (Token.isUnresolved(tag)) return;
  const fix = 'Set tag to a commit or release tag, e.g. "6e0de7938dda" or "v1.2.0".';
  if (tag === '') fail('tag', tag, 'is empty', fix);
  if (tag.toLowerCase() === 'latest') {
    fail('tag', tag, 'is refused: nobody knows what latest points to', fix);
  }
  if (!IMAGE_TAG.test(tag)) {
    fail(
      'tag',
      tag,
      'is not an image tag (1 to 128 letters, digits, "_", "." or "-", not starting with "." or "-")',
      fix,
    );
  }
}

function checkImage(property: string, image: string): void {
  if (Token.isUnresolved(image)) return;
  const { name, tag, digest } = splitImage(image);
  const fix = `Set ${property} to a full image reference, e.g. "docker.io/library/redis:7.4".`;
  const problem = nameProblem(name);
  if (problem !== undefined) fail(property, image, problem, fix);
  if (tag === '' && digest === '')
    fail(property, image, 'has no tag or digest, which means latest', fix);
  if (tag.toLowerCase() === 'latest') {
    fail(property, image, 'is refused: nobody knows what latest points to', fix);
  }
  if (tag !== '' && !IMAGE_TAG.test(tag))
    fail(property, image, `has the invalid tag "${tag}"`, fix);
  if (digest !== '' && !DIGEST.test(digest)) {
    fail(
      property,
      image,
      `has the invalid digest "${digest}" (expected sha256: and 64 hex digits)`,
      fix,
    );
  }
}

function checkDeployments(deployments: readonly string[]): void {
  // An empty resourceNames means every Deployment of the namespace: the opposite of the intent.
  if (deployments.length === 0) {
    throw new ManifestValueError(
      'deployments',
      'deployments is empty, which in a Role means every Deployment of the namespace. Name at least one Deployment.',
    );
  }
  for (const deployment of deployments) {
    if (Token.isUnresolved(deployment) || !DNS_SUBDOMAIN.test(deployment)) {
      fail(
        'deployments',
        deployment,
        'is not a Deployment name',
        'Use a Kubernetes object name: lowercase letters, digits, "-" and ".", e.g. "hasher".',
      );
    }
  }
}

function checkNamespace(namespace: string): void {
  if (Token.isUnresolved(namespace)) return;
  if (!DNS_LABEL.test(namespace)) {
    fail(
      'namespace',
      namespace,
      'is not a Kubernetes namespace name',
      'Use at most 63 lowercase letters, digits or "-", starting and ending with a letter or digit, e.g. "dockercoins".',
    );
  }
}
