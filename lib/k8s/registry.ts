import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Token } from 'aws-cdk-lib';
import { parse, parseAllDocuments, parseDocument } from 'yaml';
import type { KubernetesObject } from './kustomize';

/** The kustomize tree of the in-cluster registry, found from this file, never from the cwd. */
export const REGISTRY_KUSTOMIZE_DIR = path.resolve(__dirname, '..', '..', 'k8s', 'registry');

/** The namespace every registry object lives in. */
export const REGISTRY_NAMESPACE = 'registry';

/** The NodePort of the base manifests: nodes reach the registry as `127.0.0.1:30500`. */
export const REGISTRY_DEFAULT_NODE_PORT = 30500;

/**
 * The Secret that holds the registry's htpasswd file (bcrypt lines). The manifests only reference
 * it: whoever installs the registry creates it (`k8s/registry/make-htpasswd.sh`), so no password
 * ever sits in a template or a manifest file. The pod does not start until it exists.
 */
export const REGISTRY_HTPASSWD_SECRET = { name: 'registry-htpasswd', key: 'htpasswd' } as const;

/**
 * What the registry's IAM role needs on `arn:aws:s3:::<bucket>` (push, pull, delete, and
 * resuming multipart uploads), as the distribution S3 driver's documentation lists it.
 */
export const REGISTRY_S3_BUCKET_ACTIONS = [
  's3:ListBucket',
  's3:GetBucketLocation',
  's3:ListBucketMultipartUploads',
] as const;

/** What the registry's IAM role needs on `arn:aws:s3:::<bucket>/*`. */
export const REGISTRY_S3_OBJECT_ACTIONS = [
  's3:PutObject',
  's3:GetObject',
  's3:DeleteObject',
  's3:ListMultipartUploadParts',
  's3:AbortMultipartUpload',
] as const;

/** Layers and manifests on the PersistentVolumeClaim `registry-data` (`k8s/registry/base`). */
export interface FilesystemRegistryStorage {
  readonly storage: 'filesystem';
}

/** Layers and manifests in an S3 bucket, with the pod's IAM role (`k8s/registry/overlays/s3`). */
export interface S3RegistryStorage {
  readonly storage: 's3';
  /** The bucket's name (not its ARN). It must exist; the registry does not create it. */
  readonly bucket: string;
  /** The bucket's region, e.g. `eu-west-1`. */
  readonly region: string;
  /**
   * The ServiceAccount the registry pod runs as, in namespace `registry`. Bind the IAM role that
   * has {@link REGISTRY_S3_BUCKET_ACTIONS} and {@link REGISTRY_S3_OBJECT_ACTIONS} to it: an EKS
   * Pod Identity association for (`registry`, this name), or an IRSA role-arn annotation.
   */
  readonly serviceAccountName: string;
}

export type RegistryStorage = FilesystemRegistryStorage | S3RegistryStorage;

export interface RegistryManifestsOptions {
  /**
   * The port every node publishes the registry on, so that nodes pull `127.0.0.1:<nodePort>/…`.
   * @default 30500
   */
  readonly nodePort?: number;
}

/** A value given to {@link registryManifests} is invalid, or the manifests on disk are not what it can read. */
export class RegistryManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RegistryManifestError';
  }
}

/**
 * The in-cluster registry's manifests, as `kubectl kustomize` renders `k8s/registry/base`
 * (filesystem) or `k8s/registry/overlays/s3` (S3) with these values: the YAML files are read and
 * only the variant's changes are applied, so the CDK app installs what `kubectl apply -k` does.
 * The htpasswd Secret is not among them ({@link REGISTRY_HTPASSWD_SECRET}).
 *
 * When `bucket` or `region` is an unresolved token, validation is skipped and the ConfigMap's name
 * hash covers the token's placeholder, not its value: changing only the resolved value then does
 * not restart the registry.
 *
 * @returns plain objects in kustomize's order (the Namespace first).
 * @throws RegistryManifestError for an invalid value, naming it and the fix.
 */
export function registryManifests(
  storage: RegistryStorage,
  options: RegistryManifestsOptions = {},
): KubernetesObject[] {
  const nodePort = options.nodePort ?? REGISTRY_DEFAULT_NODE_PORT;
  validateNodePort(nodePort);
  const build = loadBase(path.join(REGISTRY_KUSTOMIZE_DIR, 'base'));
  const storageKind = (storage as { storage?: unknown } | undefined)?.storage;
  if (storageKind === 's3') {
    validateS3(storage as S3RegistryStorage);
    applyS3Overlay(
      build,
      storage as S3RegistryStorage,
      path.join(REGISTRY_KUSTOMIZE_DIR, 'overlays', 's3'),
    );
  } else if (storageKind !== 'filesystem') {
    throw new RegistryManifestError(
      `Invalid registry storage ${JSON.stringify(storageKind)}: expected { storage: 'filesystem' } or ` +
        `{ storage: 's3', bucket, region, serviceAccountName }.`,
    );
  }
  setNodePort(build, nodePort);
  return finish(build);
}

// ---- validation (skipped for unresolved tokens, as CDK's own constructs do) ----

function validateNodePort(nodePort: number): void {
  if (Token.isUnresolved(nodePort)) return;
  if (!Number.isInteger(nodePort) || nodePort < 30000 || nodePort > 32767) {
    throw new RegistryManifestError(
      `Invalid registry nodePort ${JSON.stringify(nodePort)}: EKS (like Kubernetes by default) allocates ` +
        `NodePorts from 30000-32767. Choose a free port in that range, e.g. ${REGISTRY_DEFAULT_NODE_PORT}.`,
    );
  }
}

const S3_BUCKET_NAME = /^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/;
const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-\d{1,2}$/;
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

function validateS3(s3: S3RegistryStorage): void {
  const { bucket, region, serviceAccountName } = s3;
  if (
    !Token.isUnresolved(bucket) &&
    (typeof bucket !== 'string' ||
      !S3_BUCKET_NAME.test(bucket) ||
      bucket.includes('..') ||
      /^\d+\.\d+\.\d+\.\d+$/.test(bucket))
  ) {
    throw new RegistryManifestError(
      `Invalid registry S3 bucket ${JSON.stringify(bucket)}: expected an S3 bucket name (3-63 lowercase ` +
        `letters, digits, "." and "-", starting and ending with a letter or digit), not an ARN or URL, ` +
        `e.g. "my-registry-bucket".`,
    );
  }
  if (!Token.isUnresolved(region) && (typeof region !== 'string' || !AWS_REGION.test(region))) {
    throw new RegistryManifestError(
      `Invalid registry S3 region ${JSON.stringify(region)}: expected the bucket's AWS region code, ` +
        `e.g. "us-east-1" or "eu-west-3".`,
    );
  }
  if (typeof serviceAccountName !== 'string' || !DNS_SUBDOMAIN.test(serviceAccountName)) {
    throw new RegistryManifestError(
      `Invalid registry serviceAccountName ${JSON.stringify(serviceAccountName)}: expected a Kubernetes ` +
        `object name (lowercase letters, digits, "-" and ".", at most 253), e.g. "registry".`,
    );
  }
}

// ---- reading the kustomize tree: exactly the features it uses, anything else is refused ----

type Json = Record<string, unknown>;

interface ConfigMapGenerator {
  readonly name: string;
  namespace: string;
  readonly labels: Record<string, string>;
  /** File name → content, as `files:` entries make them. */
  files: Map<string, string>;
}

interface Build {
  objects: Json[];
  readonly generators: Map<string, ConfigMapGenerator>;
}

function relative(file: string): string {
  return path.relative(path.resolve(REGISTRY_KUSTOMIZE_DIR, '..', '..'), file);
}

function readText(file: string): string {
  if (!existsSync(file)) {
    throw new RegistryManifestError(`${relative(file)} is missing: registryManifests reads it.`);
  }
  return readFileSync(file, 'utf8');
}

function readKustomization(dir: string, known: readonly string[]): Json {
  const file = path.join(dir, 'kustomization.yaml');
  const kustomization = parse(readText(file)) as Json;
  for (const key of Object.keys(kustomization)) {
    if (!known.includes(key)) {
      throw new RegistryManifestError(
        `${relative(file)} uses "${key}", which registryManifests (lib/k8s/registry.ts) does not apply: ` +
          'teach it to, or the CDK app would install something else than `kubectl apply -k` does.',
      );
    }
  }
  return kustomization;
}

/** Refuses fields this reader would silently ignore. */
function onlyKeys(record: Json, allowed: readonly string[], what: string): Json {
  const unknown = Object.keys(record).find((key) => !allowed.includes(key));
  if (unknown !== undefined) {
    throw new RegistryManifestError(
      `${what} uses "${unknown}", which registryManifests (lib/k8s/registry.ts) does not apply`,
    );
  }
  return record;
}

function asList(value: unknown, what: string): unknown[] {
  if (value === undefined) return [];
  if (!Array.isArray(value)) throw new RegistryManifestError(`${what} must be a list`);
  return value as unknown[];
}

function asRecord(value: unknown, what: string): Json {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new RegistryManifestError(`${what} must be a mapping`);
  }
  return value as Json;
}

function asString(value: unknown, what: string): string {
  if (typeof value !== 'string') throw new RegistryManifestError(`${what} must be a string`);
  return value;
}

function loadObjects(file: string): Json[] {
  return parseAllDocuments(readText(file))
    .map((doc) => doc.toJS() as unknown)
    .filter((value) => value !== null && value !== undefined)
    .map((value) => asRecord(value, relative(file)));
}

function loadBase(dir: string): Build {
  const kustomization = readKustomization(dir, [
    'apiVersion',
    'kind',
    'namespace',
    'resources',
    'configMapGenerator',
  ]);
  const namespace = asString(kustomization.namespace, `${relative(dir)}: namespace`);
  const objects = asList(kustomization.resources, 'resources').flatMap((entry) =>
    loadObjects(path.join(dir, asString(entry, 'resources entry'))),
  );
  const generators = new Map<string, ConfigMapGenerator>();
  for (const raw of asList(kustomization.configMapGenerator, 'configMapGenerator')) {
    const what = `${relative(dir)}: configMapGenerator`;
    const entry = onlyKeys(asRecord(raw, what), ['name', 'files', 'options'], what);
    const name = asString(entry.name, `${what} name`);
    const options = onlyKeys(asRecord(entry.options ?? {}, what), ['labels'], `${what} options`);
    generators.set(name, {
      name,
      namespace,
      labels: { ...(asRecord(options.labels ?? {}, 'labels') as Record<string, string>) },
      files: readFiles(dir, asList(entry.files, 'configMapGenerator files')),
    });
  }
  for (const object of objects) {
    if (object.kind !== 'Namespace') metadataOf(object).namespace = namespace;
  }
  return { objects, generators };
}

function readFiles(dir: string, entries: unknown[]): Map<string, string> {
  return new Map(
    entries.map((entry) => {
      const file = asString(entry, 'files entry');
      return [path.basename(file), readText(path.join(dir, file))] as const;
    }),
  );
}

function metadataOf(object: Json): Json {
  return asRecord(object.metadata, `metadata of a ${String(object.kind)}`);
}

function find(build: Build, kind: string): Json[] {
  return build.objects.filter((object) => object.kind === kind);
}

function podSpecs(build: Build): Json[] {
  return find(build, 'Deployment').map((deployment) =>
    asRecord(
      asRecord(asRecord(deployment.spec, 'Deployment spec').template, 'pod template').spec,
      'pod spec',
    ),
  );
}

function containersOf(podSpec: Json): Json[] {
  return [
    ...asList(podSpec.initContainers, 'initContainers'),
    ...asList(podSpec.containers, 'containers'),
  ].map((container) => asRecord(container, 'container'));
}

// ---- the S3 variant: what overlays/s3 changes, with the caller's values ----

function applyS3Overlay(build: Build, s3: S3RegistryStorage, dir: string): void {
  const kustomization = readKustomization(dir, [
    'apiVersion',
    'kind',
    'namespace',
    'resources',
    'configMapGenerator',
    'images',
    'patches',
  ]);

  // resources: the base, plus the ServiceAccount the IAM role is bound to.
  for (const entry of asList(kustomization.resources, 'resources')) {
    const target = path.resolve(dir, asString(entry, 'resources entry'));
    if (statSync(target).isDirectory()) {
      if (target !== path.join(REGISTRY_KUSTOMIZE_DIR, 'base')) {
        throw new RegistryManifestError(
          `${relative(dir)}: registryManifests builds on k8s/registry/base only, not ${relative(target)}`,
        );
      }
      continue;
    }
    for (const object of loadObjects(target)) {
      if (object.kind === 'ServiceAccount') metadataOf(object).name = s3.serviceAccountName;
      build.objects.push(object);
    }
  }

  if (kustomization.namespace !== undefined) {
    const namespace = asString(kustomization.namespace, `${relative(dir)}: namespace`);
    for (const object of build.objects) {
      if (object.kind !== 'Namespace') metadataOf(object).namespace = namespace;
    }
    for (const generator of build.generators.values()) generator.namespace = namespace;
  }

  // configMapGenerator (behavior: replace): config.yml with the bucket and region set.
  for (const raw of asList(kustomization.configMapGenerator, 'configMapGenerator')) {
    const what = `${relative(dir)}: configMapGenerator`;
    const entry = onlyKeys(asRecord(raw, what), ['name', 'behavior', 'files'], what);
    const generator = build.generators.get(asString(entry.name, `${what} name`));
    if (generator === undefined || entry.behavior !== 'replace') {
      throw new RegistryManifestError(
        `${relative(dir)}: registryManifests applies only configMapGenerator entries that replace one of the base`,
      );
    }
    generator.files = readFiles(dir, asList(entry.files, 'configMapGenerator files'));
    generator.files.set('config.yml', withBucket(generator.files.get('config.yml'), s3, dir));
  }

  // images: the tag whose S3 driver takes credentials from the pod's IAM role.
  for (const raw of asList(kustomization.images, 'images')) {
    const what = `${relative(dir)}: images`;
    const image = onlyKeys(asRecord(raw, what), ['name', 'newTag', 'digest'], what);
    const name = asString(image.name, 'images name');
    const newTag = asString(image.newTag, `images newTag of ${name}`);
    // kustomize writes `name:newTag@digest`; the registry is always pinned by digest.
    const digest = asString(image.digest, `images digest of ${name}`);
    if (!/^sha256:[0-9a-f]{64}$/.test(digest)) {
      throw new RegistryManifestError(
        `${what}: the digest of ${name} is "${digest}", not sha256:<64 hex digits>: pin the image by its digest.`,
      );
    }
    for (const container of podSpecs(build).flatMap(containersOf)) {
      const current = asString(container.image, 'container image');
      if (imageName(current) === name) container.image = `${name}:${newTag}@${digest}`;
    }
  }

  // patches: no PersistentVolumeClaim, no volume of it, and the pod runs as the ServiceAccount.
  const claims = new Set(find(build, 'PersistentVolumeClaim').map((pvc) => metadataOf(pvc).name));
  build.objects = build.objects.filter((object) => object.kind !== 'PersistentVolumeClaim');
  for (const podSpec of podSpecs(build)) {
    const volumes = asList(podSpec.volumes, 'volumes').map((v) => asRecord(v, 'volume'));
    const dropped = new Set(
      volumes
        .filter((volume) => {
          const claim = volume.persistentVolumeClaim as { claimName?: unknown } | undefined;
          return claim !== undefined && claims.has(claim.claimName);
        })
        .map((volume) => volume.name),
    );
    podSpec.volumes = volumes.filter((volume) => !dropped.has(volume.name));
    for (const container of containersOf(podSpec)) {
      if (container.volumeMounts === undefined) continue;
      container.volumeMounts = asList(container.volumeMounts, 'volumeMounts').filter(
        (mount) => !dropped.has(asRecord(mount, 'volumeMount').name),
      );
    }
    podSpec.serviceAccountName = s3.serviceAccountName;
  }
}

function withBucket(text: string | undefined, s3: S3RegistryStorage, dir: string): string {
  if (text === undefined) {
    throw new RegistryManifestError(
      `${relative(dir)}: the configMapGenerator must provide config.yml`,
    );
  }
  // A Document, not parse/stringify, so comments and layout (hence kustomize's hash) survive.
  const doc = parseDocument(text);
  for (const key of ['bucket', 'region'] as const) {
    if (!doc.hasIn(['storage', 's3', key])) {
      throw new RegistryManifestError(
        `${relative(path.join(dir, 'config.yml'))} has no storage.s3.${key} for registryManifests to set`,
      );
    }
    doc.setIn(['storage', 's3', key], s3[key]);
  }
  return doc.toString();
}

/** The image reference without tag or digest, as kustomize's `images:` matches it. */
function imageName(image: string): string {
  const withoutDigest = image.split('@')[0] ?? image;
  const colon = withoutDigest.lastIndexOf(':');
  return colon > withoutDigest.lastIndexOf('/') ? withoutDigest.slice(0, colon) : withoutDigest;
}

// ---- common to every variant ----

function setNodePort(build: Build, nodePort: number): void {
  const services = find(build, 'Service');
  const port = services
    .flatMap((service) => asList(asRecord(service.spec, 'Service spec').ports, 'ports'))
    .map((p) => asRecord(p, 'Service port'))
    .find((p) => p.nodePort !== undefined);
  if (port === undefined) {
    throw new RegistryManifestError('k8s/registry/base has no Service port with a nodePort to set');
  }
  port.nodePort = nodePort;
}

/** Kustomize's order of kinds ("legacy" sort): what must exist first is applied first. */
const KIND_ORDER = [
  'Namespace',
  'ServiceAccount',
  'ConfigMap',
  'Secret',
  'Service',
  'PersistentVolumeClaim',
  'Deployment',
  'NetworkPolicy',
];

function finish(build: Build): KubernetesObject[] {
  const hashedNames = new Map<string, string>();
  for (const generator of build.generators.values()) {
    const configMap = generatedConfigMap(generator);
    hashedNames.set(generator.name, (configMap.metadata as Json).name as string);
    build.objects.push(configMap);
  }
  for (const podSpec of podSpecs(build)) {
    for (const volume of asList(podSpec.volumes, 'volumes').map((v) => asRecord(v, 'volume'))) {
      const configMap = volume.configMap as { name?: string } | undefined;
      const hashed = configMap?.name === undefined ? undefined : hashedNames.get(configMap.name);
      if (configMap !== undefined && hashed !== undefined) configMap.name = hashed;
    }
  }
  for (const object of build.objects) {
    if (!KIND_ORDER.includes(String(object.kind))) {
      throw new RegistryManifestError(
        `k8s/registry has a ${String(object.kind)}, which registryManifests does not know where to order: ` +
          'add it to KIND_ORDER in lib/k8s/registry.ts.',
      );
    }
  }
  return build.objects
    .map((object, index) => ({ object, index }))
    .sort(
      (a, b) =>
        KIND_ORDER.indexOf(String(a.object.kind)) - KIND_ORDER.indexOf(String(b.object.kind)) ||
        a.index - b.index,
    )
    .map(({ object }) => object as unknown as KubernetesObject);
}

function generatedConfigMap(generator: ConfigMapGenerator): Json {
  const data = Object.fromEntries([...generator.files.entries()].sort(([a], [b]) => compare(a, b)));
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: `${generator.name}-${configMapHash(data)}`,
      namespace: generator.namespace,
      labels: { ...generator.labels },
    },
    data,
  };
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The name suffix kustomize gives a generated ConfigMap: SHA-256 of the Go JSON encoding of
 * {data, kind, name: ""} (keys sorted, `<`, `>`, `&`, U+2028 and U+2029 escaped as Go does), whose
 * first ten hex digits are made vowel-free (0→g, 1→h, 3→k, a→m, e→t).
 */
export function configMapHash(data: Readonly<Record<string, string>>): string {
  const sorted = Object.fromEntries(Object.entries(data).sort(([a], [b]) => compare(a, b)));
  const json = JSON.stringify({ data: sorted, kind: 'ConfigMap', name: '' }).replace(
    /[<>&\u2028\u2029]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
  const hex = createHash('sha256').update(json).digest('hex');
  const swap: Record<string, string> = { '0': 'g', '1': 'h', '3': 'k', a: 'm', e: 't' };
  return [...hex.slice(0, 10)].map((digit) => swap[digit] ?? digit).join('');
}
