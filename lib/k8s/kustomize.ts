import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { isScalar, parseAllDocuments, visit } from 'yaml';

/**
 * A strict subset of kustomize, enough to render k8s/base, k8s/overlays/ecr and k8s/rbac/deployer
 * at synth time without kubectl, with image names that may be CloudFormation tokens. For what it
 * accepts, its output equals `kubectl kustomize` (kustomize v5.5), which the tests check; anything
 * else it refuses, naming the field, rather than render something kustomize would not.
 *
 * Supported kustomization fields: `apiVersion`, `kind` (Kustomization), `resources` (YAML files
 * inside the kustomization's folder, and folders holding a kustomization), `namespace`, `labels`
 * (without `includeSelectors` or `fields`) and `images`. Supported object kinds: those in
 * {@link SUPPORTED_KINDS}, whose scope (namespaced or not) the namespace transformer must know.
 */

/** A Kubernetes object as plain data: what `kubectl kustomize` prints, parsed. */
export interface KubernetesObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> } & Record<
    string,
    unknown
  >;
  [field: string]: unknown;
}

/** One entry of a kustomization's `images:` list. */
export interface ImageOverride {
  /** The image name to match, without tag or digest (kustomize matches it as a pattern). */
  readonly name: string;
  /** Replaces the name; may hold a tag when the matched image has none. @default - the name stays */
  readonly newName?: string;
  /** Replaces the tag, and drops any digest. @default - the tag stays, unless `digest` is set */
  readonly newTag?: string;
  /** Replaces the digest (`sha256:…`), and drops the tag unless `newTag` is set. @default - the digest stays, unless `newTag` is set */
  readonly digest?: string;
}

export interface RenderOptions {
  /**
   * Entries for the top kustomization's `images:`: each replaces the entry of the same name, or
   * is added after the others, as `kustomize edit set image` would do to the file.
   * @default - the kustomization's own images
   */
  readonly images?: readonly ImageOverride[];
  /**
   * Replaces the top kustomization's `namespace:`, as `kustomize edit set namespace` would.
   * @default - the kustomization's own namespace, if any
   */
  readonly namespace?: string;
}

/** A kustomization this renderer cannot render exactly as kustomize would, or that kustomize refuses. */
export class KustomizeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KustomizeError';
  }
}

/** Kinds this renderer accepts, and whether each is cluster-scoped. */
export const SUPPORTED_KINDS: Readonly<Record<string, { readonly clusterScoped: boolean }>> = {
  Namespace: { clusterScoped: true },
  ServiceAccount: { clusterScoped: false },
  Role: { clusterScoped: false },
  RoleBinding: { clusterScoped: false },
  ConfigMap: { clusterScoped: false },
  Secret: { clusterScoped: false },
  Service: { clusterScoped: false },
  Deployment: { clusterScoped: false },
};

const KUSTOMIZATION_FILES = ['kustomization.yaml', 'kustomization.yml', 'Kustomization'];
const KUSTOMIZATION_API_VERSION = 'kustomize.config.k8s.io/v1beta1';
const SUPPORTED_FIELDS = ['apiVersion', 'kind', 'resources', 'namespace', 'labels', 'images'];
const LABELS_ENTRY_FIELDS = ['pairs', 'includeSelectors', 'includeTemplates'];
const IMAGE_ENTRY_FIELDS = ['name', 'newName', 'newTag', 'digest'];
// kustomize uses an image entry's name as a regular expression; names from this set mean the same
// thing to Go's regexp and JavaScript's, and nothing surprising to either.
const IMAGE_NAME = /^[A-Za-z0-9][A-Za-z0-9._:/-]*$/;
// Plain scalars that parts of kustomize read as YAML 1.1 (a kustomization's `yes` is a boolean,
// a resource's 0644 is octal) and this renderer reads as YAML 1.2.
const AMBIGUOUS_SCALAR = /^(?:y|Y|yes|Yes|YES|n|N|no|No|NO|on|On|ON|off|Off|OFF|[-+]?0[0-9_]+)$/;
// kustomize's resource order (its "legacy" sort): these kinds first, in this order.
const KIND_ORDER = [
  'Namespace',
  'ResourceQuota',
  'StorageClass',
  'CustomResourceDefinition',
  'ServiceAccount',
  'PodSecurityPolicy',
  'Role',
  'ClusterRole',
  'RoleBinding',
  'ClusterRoleBinding',
  'ConfigMap',
  'Secret',
  'Endpoints',
  'Service',
  'LimitRange',
  'PriorityClass',
  'PersistentVolume',
  'PersistentVolumeClaim',
  'Deployment',
  'StatefulSet',
  'CronJob',
  'PodDisruptionBudget',
];

interface LabelsEntry {
  readonly pairs: Readonly<Record<string, string>>;
  readonly includeTemplates: boolean;
}

interface Kustomization {
  readonly file: string;
  readonly resources: readonly string[];
  readonly namespace: string | undefined;
  readonly labels: readonly LabelsEntry[];
  readonly images: readonly ImageOverride[];
}

/**
 * Renders the kustomization in `dir` (an absolute path: nothing is read relative to the working
 * directory) to plain objects, in kustomize's order.
 */
export function renderKustomization(dir: string, options: RenderOptions = {}): KubernetesObject[] {
  if (!path.isAbsolute(dir)) {
    throw new KustomizeError(
      `renderKustomization needs an absolute folder, got "${dir}": build it from __dirname, e.g. path.join(__dirname, '..', 'k8s', 'base').`,
    );
  }
  const top = loadKustomization(dir);
  const images = [...top.images];
  for (const override of options.images ?? []) {
    const entry = checkImageEntry(override, 'options.images');
    const at = images.findIndex((existing) => existing.name === entry.name);
    if (at >= 0) images[at] = entry;
    else images.push(entry);
  }
  const namespace = options.namespace ?? top.namespace;
  if (namespace !== undefined && (typeof namespace !== 'string' || namespace === '')) {
    throw new KustomizeError(
      `options.namespace must be a non-empty string, got ${JSON.stringify(namespace)}.`,
    );
  }
  const { objects } = build({ ...top, images, namespace }, []);
  return sortLikeKustomize(objects);
}

interface Built {
  readonly objects: KubernetesObject[];
  /** Label keys that `labels:` entries of this kustomization or the ones below it have set. */
  readonly labelKeys: ReadonlyMap<string, string>;
}

function build(kustomization: Kustomization, stack: readonly string[]): Built {
  const root = path.dirname(kustomization.file);
  if (stack.includes(root)) {
    throw new KustomizeError(`Cycle in resources: ${[...stack, root].join(' -> ')}.`);
  }
  const objects: KubernetesObject[] = [];
  const labelKeys = new Map<string, string>();
  const seen = new Map<string, string>();
  const add = (object: KubernetesObject, from: string): void => {
    const id = identity(object);
    const earlier = seen.get(id);
    if (earlier !== undefined) {
      throw new KustomizeError(
        `${kustomization.file}: ${id} comes from both ${earlier} and ${from}; kustomize refuses duplicate objects.`,
      );
    }
    seen.set(id, from);
    objects.push(object);
  };

  for (const entry of kustomization.resources) {
    const where = `${kustomization.file}: resources entry "${entry}"`;
    if (/^[a-z][a-z0-9+.-]*:\/\//i.test(entry) || /^(git@|github\.com\/)/.test(entry)) {
      throw new KustomizeError(
        `${where} is remote; this renderer reads local files only. Vendor it into the repository.`,
      );
    }
    if (path.isAbsolute(entry)) {
      throw new KustomizeError(
        `${where} is absolute; kustomize needs paths relative to the kustomization.`,
      );
    }
    const target = path.resolve(root, entry);
    if (!existsSync(target)) {
      throw new KustomizeError(`${where} does not exist (looked for ${target}).`);
    }
    if (statSync(target).isDirectory()) {
      const nested = build(loadKustomization(target), [...stack, root]);
      for (const object of nested.objects) add(object, target);
      for (const [key, file] of nested.labelKeys) labelKeys.set(key, file);
      continue;
    }
    const real = realpathSync(target);
    const relative = path.relative(realpathSync(root), real);
    if (relative.startsWith('..') || path.isAbsolute(relative)) {
      throw new KustomizeError(
        `${where} is outside the kustomization's folder ${root}; kustomize only loads files from inside it. Move the file, or list the folder that holds it (with its own kustomization).`,
      );
    }
    for (const object of readObjects(target)) add(object, target);
  }

  if (kustomization.namespace !== undefined) setNamespace(objects, kustomization.namespace);
  for (const labels of kustomization.labels) {
    for (const key of Object.keys(labels.pairs)) {
      const earlier = labelKeys.get(key);
      if (earlier !== undefined) {
        // kubectl 1.32 (kustomize v5.5) then also rewrites the pod-template copies of the earlier
        // value, even where the later entry leaves templates alone; this renderer would not.
        throw new KustomizeError(
          `${kustomization.file}: labels set "${key}", which labels in ${earlier} already set. Set each label in one kustomization, once.`,
        );
      }
      labelKeys.set(key, kustomization.file);
    }
    addLabels(objects, labels);
  }
  for (const image of kustomization.images) setImages(objects, image);
  return { objects, labelKeys };
}

// ---- reading ----

function loadKustomization(dir: string): Kustomization {
  const found = KUSTOMIZATION_FILES.filter((name) => existsSync(path.join(dir, name)));
  if (found.length === 0) {
    throw new KustomizeError(
      `${dir} holds no kustomization (${KUSTOMIZATION_FILES.join(', ')}); a folder in resources must be a kustomization.`,
    );
  }
  if (found.length > 1) {
    throw new KustomizeError(
      `${dir} holds ${found.join(' and ')}; kustomize refuses more than one kustomization file. Keep one.`,
    );
  }
  const file = path.join(dir, found[0]!);
  const documents = parseYaml(file);
  if (documents.length !== 1 || !isMapping(documents[0])) {
    throw new KustomizeError(`${file} must hold exactly one YAML mapping.`);
  }
  const raw = documents[0];
  for (const key of Object.keys(raw)) {
    if (!SUPPORTED_FIELDS.includes(key)) {
      throw new KustomizeError(
        `${file}: field "${key}" is not supported by this renderer (it supports ${SUPPORTED_FIELDS.join(', ')}). Render this kustomization with \`kubectl kustomize\`, or keep it within those fields.`,
      );
    }
  }
  if (raw.apiVersion !== undefined && raw.apiVersion !== KUSTOMIZATION_API_VERSION) {
    throw new KustomizeError(
      `${file}: apiVersion ${JSON.stringify(raw.apiVersion)} is not supported; use ${KUSTOMIZATION_API_VERSION}.`,
    );
  }
  if (raw.kind !== undefined && raw.kind !== 'Kustomization') {
    throw new KustomizeError(
      `${file}: kind ${JSON.stringify(raw.kind)} is not supported (components are not); use Kustomization.`,
    );
  }
  return {
    file,
    resources: stringList(raw.resources, `${file}: resources`),
    namespace: optionalString(raw.namespace, `${file}: namespace`),
    labels: list(raw.labels, `${file}: labels`).map((entry, i) =>
      checkLabelsEntry(entry, `${file}: labels[${i}]`),
    ),
    images: list(raw.images, `${file}: images`).map((entry, i) =>
      checkImageEntry(entry, `${file}: images[${i}]`),
    ),
  };
}

function parseYaml(file: string): unknown[] {
  const documents = parseAllDocuments(readFileSync(file, 'utf8'), { prettyErrors: true });
  if (!Array.isArray(documents)) return [];
  return documents.map((document) => {
    const problem = document.errors[0];
    if (problem !== undefined) {
      throw new KustomizeError(`${file}: invalid YAML: ${problem.message}`);
    }
    visit(document, {
      Alias() {
        throw new KustomizeError(`${file}: YAML aliases are not supported; write the value out.`);
      },
      Scalar(_key, node) {
        if (isScalar(node) && node.type === 'PLAIN' && AMBIGUOUS_SCALAR.test(String(node.source))) {
          throw new KustomizeError(
            `${file}: the unquoted value ${String(node.source)} is read as YAML 1.1 by parts of kustomize (0644 becomes 420; yes becomes true) and as YAML 1.2 here. Quote it.`,
          );
        }
      },
    });
    return document.toJS() as unknown;
  });
}

function readObjects(file: string): KubernetesObject[] {
  const objects: KubernetesObject[] = [];
  for (const [i, document] of parseYaml(file).entries()) {
    if (document === null || document === undefined) continue;
    const where = `${file}: document ${i + 1}`;
    if (!isMapping(document)) throw new KustomizeError(`${where} is not a YAML mapping.`);
    const { apiVersion, kind, metadata } = document;
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      throw new KustomizeError(
        `${where} has no apiVersion or kind: it is not a Kubernetes object.`,
      );
    }
    if (!(kind in SUPPORTED_KINDS)) {
      throw new KustomizeError(
        `${where}: kind ${kind} is not supported by this renderer (it supports ${Object.keys(SUPPORTED_KINDS).join(', ')}), which must know whether a kind is namespaced.`,
      );
    }
    if (!isMapping(metadata) || typeof metadata.name !== 'string' || metadata.name === '') {
      throw new KustomizeError(`${where} (${kind}) has no metadata.name.`);
    }
    if (metadata.labels !== undefined) checkStringMap(metadata.labels, `${where}: metadata.labels`);
    if (
      (kind === 'RoleBinding' || kind === 'ClusterRoleBinding') &&
      Array.isArray(document.subjects)
    ) {
      for (const subject of document.subjects as unknown[]) {
        if (!isMapping(subject) || (subject.kind !== 'Group' && subject.kind !== 'User')) {
          throw new KustomizeError(
            `${where}: only Group and User subjects are supported; kustomize rewrites the namespace of some ServiceAccount subjects, which this renderer does not.`,
          );
        }
      }
    }
    if (kind === 'Deployment') {
      const spec = (document.spec as { template?: { spec?: { volumes?: unknown } } } | undefined)
        ?.template?.spec;
      if (Array.isArray(spec?.volumes) && spec.volumes.some((v) => isMapping(v) && 'image' in v)) {
        throw new KustomizeError(`${where}: image volumes are not supported by this renderer.`);
      }
    }
    objects.push(document as KubernetesObject);
  }
  return objects;
}

// ---- field checks ----

function isMapping(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function list(value: unknown, where: string): unknown[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new KustomizeError(`${where} must be a list.`);
  return value as unknown[];
}

function stringList(value: unknown, where: string): string[] {
  return list(value, where).map((entry) => {
    if (typeof entry !== 'string' || entry === '') {
      throw new KustomizeError(`${where} must list paths (strings), got ${JSON.stringify(entry)}.`);
    }
    return entry;
  });
}

function optionalString(value: unknown, where: string): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value === '') {
    throw new KustomizeError(`${where} must be a non-empty string, got ${JSON.stringify(value)}.`);
  }
  return value;
}

function checkStringMap(value: unknown, where: string): Record<string, string> {
  if (!isMapping(value)) throw new KustomizeError(`${where} must be a mapping.`);
  for (const [key, inner] of Object.entries(value)) {
    if (typeof inner !== 'string') {
      throw new KustomizeError(
        `${where}: the value of "${key}" is ${JSON.stringify(inner)}, not a string. Quote it.`,
      );
    }
  }
  return value as Record<string, string>;
}

function checkLabelsEntry(entry: unknown, where: string): LabelsEntry {
  if (!isMapping(entry)) throw new KustomizeError(`${where} must be a mapping.`);
  for (const key of Object.keys(entry)) {
    if (!LABELS_ENTRY_FIELDS.includes(key)) {
      throw new KustomizeError(
        `${where}: field "${key}" is not supported by this renderer (it supports ${LABELS_ENTRY_FIELDS.join(', ')}).`,
      );
    }
  }
  if (entry.includeSelectors !== undefined && entry.includeSelectors !== false) {
    throw new KustomizeError(
      `${where}: includeSelectors: ${JSON.stringify(entry.includeSelectors)} is not supported by this renderer; write selectors out in the resources.`,
    );
  }
  if (entry.includeTemplates !== undefined && typeof entry.includeTemplates !== 'boolean') {
    throw new KustomizeError(`${where}: includeTemplates must be true or false.`);
  }
  return {
    pairs: checkStringMap(entry.pairs ?? {}, `${where}: pairs`),
    includeTemplates: entry.includeTemplates === true,
  };
}

function checkImageEntry(entry: unknown, where: string): ImageOverride {
  if (!isMapping(entry)) throw new KustomizeError(`${where} must be a mapping.`);
  for (const key of Object.keys(entry)) {
    if (!IMAGE_ENTRY_FIELDS.includes(key)) {
      throw new KustomizeError(
        `${where}: field "${key}" is not supported by this renderer (it supports ${IMAGE_ENTRY_FIELDS.join(', ')}).`,
      );
    }
  }
  const { name, newName, newTag, digest } = entry;
  if (typeof name !== 'string' || !IMAGE_NAME.test(name)) {
    throw new KustomizeError(
      `${where}: name ${JSON.stringify(name)} is not an image name without tag or digest (letters, digits, ".", "_", "-", "/", ":").`,
    );
  }
  for (const [field, value] of Object.entries({ newName, newTag, digest })) {
    if (value !== undefined && (typeof value !== 'string' || value === '')) {
      throw new KustomizeError(
        `${where}: ${field} must be a non-empty string, got ${JSON.stringify(value)}. Quote it (newTag: "7.4").`,
      );
    }
  }
  return {
    name,
    ...(newName === undefined ? {} : { newName: newName as string }),
    ...(newTag === undefined ? {} : { newTag: newTag as string }),
    ...(digest === undefined ? {} : { digest: digest as string }),
  };
}

// ---- transformers ----

function identity(object: KubernetesObject): string {
  const group = object.apiVersion.includes('/') ? object.apiVersion.split('/')[0] : '';
  const namespace = object.metadata.namespace ?? '';
  return `${object.kind}.${group}/${namespace === '' ? '' : `${namespace}/`}${object.metadata.name}`;
}

function setNamespace(objects: KubernetesObject[], namespace: string): void {
  for (const object of objects) {
    if (SUPPORTED_KINDS[object.kind]?.clusterScoped === true) {
      // kustomize names the Namespace object after the namespace it sets.
      if (object.kind === 'Namespace' && object.apiVersion === 'v1')
        object.metadata.name = namespace;
    } else {
      object.metadata.namespace = namespace;
    }
  }
}

function mergeLabels(
  holder: Record<string, unknown>,
  pairs: Readonly<Record<string, string>>,
): void {
  const existing = isMapping(holder.labels) ? holder.labels : {};
  holder.labels = { ...existing, ...pairs };
}

function addLabels(objects: KubernetesObject[], entry: LabelsEntry): void {
  for (const object of objects) {
    mergeLabels(object.metadata, entry.pairs);
    if (entry.includeTemplates && object.kind === 'Deployment') {
      const spec = child(object, 'spec');
      const template = child(spec, 'template');
      mergeLabels(child(template, 'metadata'), entry.pairs);
    }
  }
}

/** The mapping under `key`, created when missing (kustomize's `create: true`). */
function child(holder: Record<string, unknown>, key: string): Record<string, unknown> {
  const value = holder[key];
  if (isMapping(value)) return value;
  const created: Record<string, unknown> = {};
  holder[key] = created;
  return created;
}

/** name, tag and digest of an image reference, split where kustomize splits it. */
export function splitImage(image: string): { name: string; tag: string; digest: string } {
  const slash = image.indexOf('/');
  const start = slash > 0 ? slash : 0;
  const rest = image.slice(start);
  const at = rest.indexOf('@');
  const colon = rest.indexOf(':');
  if (at < 0 && colon < 0) return { name: image, tag: '', digest: '' };
  if (at >= 0 && (colon < 0 || at < colon)) {
    return { name: image.slice(0, start + at), tag: '', digest: image.slice(start + at + 1) };
  }
  if (at >= 0) {
    return {
      name: image.slice(0, start + colon),
      tag: image.slice(start + colon + 1, start + at),
      digest: image.slice(start + at + 1),
    };
  }
  return { name: image.slice(0, start + colon), tag: image.slice(start + colon + 1), digest: '' };
}

function setImages(objects: KubernetesObject[], entry: ImageOverride): void {
  const matches = new RegExp(`^${entry.name}(:[a-zA-Z0-9_.{}-]*)?(@sha256:[a-zA-Z0-9_.{}-]*)?$`);
  for (const object of objects) {
    if (object.kind !== 'Deployment') continue;
    const podSpec = (object.spec as { template?: { spec?: Record<string, unknown> } } | undefined)
      ?.template?.spec;
    for (const field of ['initContainers', 'containers']) {
      const containers = podSpec?.[field];
      if (!Array.isArray(containers)) continue;
      for (const container of containers as unknown[]) {
        if (!isMapping(container) || typeof container.image !== 'string') continue;
        if (!matches.test(container.image)) continue;
        let { name, tag, digest } = splitImage(container.image);
        if (entry.newName !== undefined) name = entry.newName;
        // As kustomize: a new tag or digest replaces both the old tag and the old digest.
        if (entry.newTag !== undefined || entry.digest !== undefined) {
          tag = entry.newTag ?? '';
          digest = entry.digest ?? '';
        }
        container.image = `${name}${tag === '' ? '' : `:${tag}`}${digest === '' ? '' : `@${digest}`}`;
      }
    }
  }
}

function sortLikeKustomize(objects: KubernetesObject[]): KubernetesObject[] {
  const rank = (kind: string): number => {
    const at = KIND_ORDER.indexOf(kind);
    return at < 0 ? 0 : at - KIND_ORDER.length;
  };
  const gvk = (o: KubernetesObject): string => {
    const [group, version] = o.apiVersion.includes('/')
      ? o.apiVersion.split('/')
      : ['~G', o.apiVersion];
    return `${group}_${version}_${o.kind}`;
  };
  return [...objects].sort((a, b) => {
    if (rank(a.kind) !== rank(b.kind)) return rank(a.kind) - rank(b.kind);
    const byType = compare(gvk(a), gvk(b));
    if (byType !== 0) return byType;
    const byNamespace = compare(a.metadata.namespace ?? '', b.metadata.namespace ?? '');
    return byNamespace !== 0 ? byNamespace : compare(a.metadata.name, b.metadata.name);
  });
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
