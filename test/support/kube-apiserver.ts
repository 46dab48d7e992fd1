import { randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { IncomingMessage, ServerResponse } from 'node:http';
import { Server, createServer, request as httpsRequest } from 'node:https';
import type { TLSSocket } from 'node:tls';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { SelfSignedCertificate, selfSignedCertificate } from './certificate';
import { AwsCredentials, verifyEksToken } from './eks-token';
import {
  Json,
  StrategicMergeError,
  isJsonObject,
  jsonEqual,
  jsonMergePatch,
  strategicMerge,
} from './strategic-merge';
import {
  ClusterSimulation,
  type FateTarget,
  type KubeEvent,
  type KubePod,
  type PodFate,
} from './kube-controller';

export type {
  FateTarget,
  KubeContainerState,
  KubeContainerStatus,
  KubeEvent,
  KubePod,
  KubePodCondition,
  PodFate,
} from './kube-controller';
export { DEFAULT_FATE } from './kube-controller';

// A Kubernetes API server for tests, as much of one as deploying and rollout status need, and
// faithful there: EKS bearer tokens verified (SigV4 signature and signed cluster name), static
// tokens and client certificates (kubeconfig users) as the real authenticators take them, apps/v1
// Deployments read and patched (strategic merge as kubectl, JSON merge), resourceVersion
// preconditions, generation bumped as the real Deployment strategy does, validation answered with
// real Status bodies, and the Deployment controller's ReplicaSets and revision annotations.
// On a fake clock that only tick() moves, a cluster behind it (kube-controller.ts): rollouts,
// pods whose fate each test sets, statuses and events, listed over HTTP (replicasets, pods,
// events, with label and field selectors) under the same RBAC authorizer.
// Faults on demand: 429/5xx, 409, requests that hang, the listener down.

// ---- objects ----

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  generation?: number;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

export interface KubeContainer {
  name: string;
  image?: string;
  [field: string]: unknown;
}

export interface DeploymentCondition {
  type: string;
  status: string;
  reason?: string;
  message?: string;
  [field: string]: unknown;
}

export interface DeploymentStatus {
  observedGeneration?: number;
  replicas?: number;
  updatedReplicas?: number;
  readyReplicas?: number;
  availableReplicas?: number;
  unavailableReplicas?: number;
  conditions?: DeploymentCondition[];
  [field: string]: unknown;
}

/** An apps/v1 Deployment (a ReplicaSet has the same shape where this server uses it). */
export interface KubeDeployment {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec: {
    replicas?: number;
    selector: { matchLabels?: Record<string, string>; [field: string]: unknown };
    template: {
      metadata?: {
        labels?: Record<string, string>;
        annotations?: Record<string, string>;
        [field: string]: unknown;
      };
      spec: {
        containers: KubeContainer[];
        initContainers?: KubeContainer[];
        [field: string]: unknown;
      };
    };
    [field: string]: unknown;
  };
  status?: DeploymentStatus;
  [field: string]: unknown;
}

export type KubeReplicaSet = KubeDeployment;

/** A `kind: Status` body, as the real server sends with every error. */
export interface KubeStatus {
  kind: 'Status';
  apiVersion: 'v1';
  metadata: Record<string, never>;
  status: 'Failure';
  message: string;
  reason: string;
  details?: {
    name?: string;
    group?: string;
    kind?: string;
    causes?: { reason: string; message: string; field: string }[];
    retryAfterSeconds?: number;
  };
  code: number;
}

/** An error answer of {@link KubeApiServer.patchDeployment} and friends. */
export class KubeApiError extends Error {
  override readonly name = 'KubeApiError';
  constructor(readonly status: KubeStatus) {
    super(`${status.code} ${status.reason}: ${status.message}`);
  }
}

/** The annotation the Deployment controller keeps the revision in (Deployment and ReplicaSet). */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
const REVISION_HISTORY_ANNOTATION = 'deployment.kubernetes.io/revision-history';
const DESIRED_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/desired-replicas';
const MAX_REPLICAS_ANNOTATION = 'deployment.kubernetes.io/max-replicas';
/** The label the controller adds to a ReplicaSet, its selector and its pods. */
export const POD_TEMPLATE_HASH_LABEL = 'pod-template-hash';
/** Annotations the controller does not copy from a Deployment to its ReplicaSets. */
const NOT_COPIED = new Set([
  'kubectl.kubernetes.io/last-applied-configuration',
  REVISION_ANNOTATION,
  REVISION_HISTORY_ANNOTATION,
  DESIRED_REPLICAS_ANNOTATION,
  MAX_REPLICAS_ANNOTATION,
  'deprecated.deployment.rollback.to',
]);

export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
export const MERGE_PATCH = 'application/merge-patch+json';

// ---- requests ----

/** What RBAC would be asked about a request. */
export interface KubeRequestAttributes {
  /** Who: an EKS token's access key id, a static token's user, a client certificate's CN. */
  readonly user: string;
  readonly verb: 'get' | 'list' | 'patch';
  /** `apps` for deployments and replicasets; the empty string (the core group) for pods and events. */
  readonly apiGroup: 'apps' | '';
  readonly resource: 'deployments' | 'replicasets' | 'pods' | 'events';
  readonly namespace: string;
  /** undefined for a list. */
  readonly name: string | undefined;
}

/** Answers whether a request is allowed; false answers 403 Forbidden. */
export type Authorizer = (request: KubeRequestAttributes) => boolean;

/** Called before a PATCH is applied: the place to change the object under a client's feet. */
export type BeforePatchHook = (request: {
  readonly namespace: string;
  readonly name: string;
  readonly patch: unknown;
}) => void | Promise<void>;

/** One request as the server received it. */
export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: Readonly<Record<string, string>>;
  /** The Content-Type header, parameters included. */
  readonly contentType: string | undefined;
  /** JSON bodies parsed; other bodies as text; undefined when empty. */
  readonly body: unknown;
  /** The answer's status; undefined while unanswered (and for good, if it hung until closed). */
  status: number | undefined;
  /** Who, once authenticated: as {@link KubeRequestAttributes.user}. */
  user: string | undefined;
  /** Why the request was not authenticated, when the answer was 401. */
  authFailure: string | undefined;
}

export interface KubeApiServerOptions {
  /** The EKS cluster name tokens must be signed for (the `x-k8s-aws-id` header). */
  readonly clusterName: string;
  /** Whose EKS tokens are accepted. @default - none: only static tokens and client certificates */
  readonly credentials?: AwsCredentials | readonly AwsCredentials[];
  /**
   * Bearer tokens accepted as they are, each for a user name (a kube-apiserver --token-auth-file):
   * what a kubeconfig's `token` or `tokenFile` sends. @default - none
   */
  readonly staticTokens?: Readonly<Record<string, string>>;
  /**
   * Client certificates signed by this CA authenticate their subject CN (a kubeconfig's
   * client-certificate). @default - no client certificates asked for
   */
  readonly clientCa?: { readonly certPem: string };
  /**
   * When set, tokens must be presigned for `sts.<region>.amazonaws.com`.
   * @default - any STS host, as the authenticator
   */
  readonly region?: string;
  /**
   * The certificate to serve; pass one to several servers to run openssl once.
   * @default - a new self-signed certificate for 127.0.0.1, removed by stop()
   */
  readonly certificate?: SelfSignedCertificate;
  /** RBAC. @default - everything allowed (also settable later: `server.authorize = …`) */
  readonly authorize?: Authorizer;
  /** The clock tokens are checked against. @default - the system clock */
  readonly now?: () => Date;
  /**
   * Where the simulated clock starts (see {@link KubeApiServer.tick}): objects' timestamps,
   * condition times, pod states and the progress deadline read it; only tick() moves it.
   * @default - `now()` at start, to the second
   */
  readonly startTime?: Date;
}

interface Fault {
  remaining: number;
  readonly status: number;
  readonly retryAfterSeconds: number | undefined;
  readonly method: string | undefined;
  readonly namespace: string | undefined;
}

interface Hang {
  remaining: number;
  readonly ms: number | undefined;
}

type Answer = {
  readonly code: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
};

// ---- Status bodies, worded as the real server words them ----

const REASONS: Record<number, [string, string]> = {
  400: ['BadRequest', 'the request is invalid'],
  401: ['Unauthorized', 'Unauthorized'],
  403: ['Forbidden', 'forbidden'],
  404: ['NotFound', 'the server could not find the requested resource'],
  405: ['MethodNotAllowed', 'the server does not allow this method on the requested resource'],
  409: ['Conflict', 'the object has been modified'],
  413: ['RequestEntityTooLarge', 'the request is too large'],
  415: ['UnsupportedMediaType', 'the body of the request was in an unknown format'],
  422: ['Invalid', 'the request is invalid'],
  429: ['TooManyRequests', 'Too many requests, please try again later.'],
  500: ['InternalError', 'Internal error occurred: injected by the test'],
  502: ['', 'bad gateway'],
  503: ['ServiceUnavailable', 'the server is currently unable to handle the request'],
  504: ['Timeout', 'the server was unable to return a response in the time allotted'],
};

function status(
  code: number,
  message?: string,
  details?: KubeStatus['details'],
  reason?: string,
): KubeStatus {
  const [defaultReason, defaultMessage] = REASONS[code] ?? ['', `error ${code}`];
  return {
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    message: message ?? defaultMessage,
    reason: reason ?? defaultReason,
    ...(details === undefined ? {} : { details }),
    code,
  };
}

/** Resources of the core group (`/api/v1`); the others are of `apps`. */
const CORE_RESOURCES: ReadonlySet<string> = new Set(['pods', 'events']);
const groupOf = (resource: string): 'apps' | '' => (CORE_RESOURCES.has(resource) ? '' : 'apps');
const groupResource = (resource: string): string =>
  CORE_RESOURCES.has(resource) ? resource : `${resource}.apps`;

function notFound(resource: string, name: string): KubeStatus {
  return status(404, `${groupResource(resource)} "${name}" not found`, {
    name,
    ...(groupOf(resource) === '' ? {} : { group: 'apps' }),
    kind: resource,
  });
}

function conflict(resource: string, name: string): KubeStatus {
  return status(
    409,
    `Operation cannot be fulfilled on ${groupResource(resource)} "${name}": the object has been modified; please apply your changes to the latest version and try again`,
    { name, group: 'apps', kind: resource },
  );
}

interface FieldError {
  readonly field: string;
  readonly reason: 'FieldValueRequired' | 'FieldValueInvalid' | 'FieldValueDuplicate';
  readonly message: string;
}

function invalid(name: string, errors: readonly FieldError[]): KubeStatus {
  const texts = errors.map((e) => `${e.field}: ${e.message}`);
  return status(
    422,
    `Deployment.apps "${name}" is invalid: ${texts.length === 1 ? texts[0] : `[${texts.join(', ')}]`}`,
    {
      name,
      group: 'apps',
      kind: 'Deployment',
      causes: errors.map((e) => ({ reason: e.reason, message: e.message, field: e.field })),
    },
  );
}

// ---- the Deployment strategy's rules ----

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const required = (field: string): FieldError => ({
  field,
  reason: 'FieldValueRequired',
  message: 'Required value',
});
const invalidValue = (field: string, value: unknown, why: string): FieldError => ({
  field,
  reason: 'FieldValueInvalid',
  message: `Invalid value: ${JSON.stringify(value)}: ${why}`,
});

/** The checks of ValidateDeployment this server's clients can trip over. */
function validateDeployment(next: KubeDeployment, old: KubeDeployment | undefined): FieldError[] {
  const errors: FieldError[] = [];
  for (const field of ['labels', 'annotations'] as const) {
    const map = next.metadata[field] as unknown;
    if (map === undefined) continue;
    if (!isJsonObject(map) || Object.values(map).some((v) => typeof v !== 'string')) {
      errors.push(invalidValue(`metadata.${field}`, map, 'values must be strings'));
    }
  }
  const spec = next.spec as unknown;
  if (!isJsonObject(spec)) return [...errors, required('spec')];
  const replicas = spec.replicas;
  if (replicas !== undefined && !(Number.isInteger(replicas) && (replicas as number) >= 0)) {
    errors.push(invalidValue('spec.replicas', replicas, 'must be greater than or equal to 0'));
  }
  const selector = spec.selector;
  const matchLabels = isJsonObject(selector) ? selector.matchLabels : undefined;
  if (!isJsonObject(matchLabels) || Object.keys(matchLabels).length === 0) {
    errors.push(required('spec.selector'));
  }
  if (old !== undefined && !jsonEqual(selector, old.spec.selector)) {
    errors.push(invalidValue('spec.selector', selector, 'field is immutable'));
  }
  const template = isJsonObject(spec.template) ? spec.template : {};
  const labels = isJsonObject(template.metadata) ? template.metadata.labels : undefined;
  if (
    isJsonObject(matchLabels) &&
    !Object.entries(matchLabels).every(([k, v]) => isJsonObject(labels) && labels[k] === v)
  ) {
    errors.push(
      invalidValue(
        'spec.template.metadata.labels',
        labels ?? {},
        '`selector` does not match template `labels`',
      ),
    );
  }
  const podSpec = isJsonObject(template.spec) ? template.spec : {};
  const names = new Set<string>();
  for (const list of ['initContainers', 'containers'] as const) {
    const containers = podSpec[list];
    const at = `spec.template.spec.${list}`;
    if (containers === undefined || containers === null) {
      if (list === 'containers') errors.push(required(at));
      continue;
    }
    if (!Array.isArray(containers) || (list === 'containers' && containers.length === 0)) {
      errors.push(
        Array.isArray(containers) ? required(at) : invalidValue(at, containers, 'must be a list'),
      );
      continue;
    }
    containers.forEach((container, i) => {
      const c = isJsonObject(container) ? container : {};
      const name = c.name;
      if (typeof name !== 'string' || name === '') errors.push(required(`${at}[${i}].name`));
      else if (!DNS_LABEL.test(name) || name.length > 63) {
        errors.push(
          invalidValue(
            `${at}[${i}].name`,
            name,
            "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character",
          ),
        );
      } else if (names.has(name)) {
        errors.push({
          field: `${at}[${i}].name`,
          reason: 'FieldValueDuplicate',
          message: `Duplicate value: "${name}"`,
        });
      } else names.add(name);
      const image = c.image;
      if (typeof image !== 'string' || image === '') errors.push(required(`${at}[${i}].image`));
      else if (image.trim() !== image) {
        errors.push(
          invalidValue(`${at}[${i}].image`, image, 'must not have leading or trailing whitespace'),
        );
      }
    });
  }
  return errors;
}

/** FNV-1a, 32 bits: the hash family the controller's pod-template-hash uses. */
function fnv1a(text: string): number {
  let hash = 0x811c9dc5;
  for (const byte of Buffer.from(text, 'utf8')) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash;
}

/** JSON with sorted keys: one text per value, whatever the key order. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (isJsonObject(value)) {
    return `{${Object.keys(value)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(value[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A pod-template-hash as the controller spells it (rand.SafeEncodeString of the decimal hash). */
export function podTemplateHash(template: unknown): string {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789';
  return [...String(fnv1a(canonicalJson(template)))]
    .map((c) => alphabet[c.charCodeAt(0) % alphabet.length]!)
    .join('');
}

/** replicas + maxSurge, as the controller writes max-replicas. */
function maxReplicas(deployment: KubeDeployment): number {
  const replicas = deployment.spec.replicas ?? 1;
  const strategy = deployment.spec.strategy as
    { type?: string; rollingUpdate?: { maxSurge?: string | number } } | undefined;
  if (strategy?.type === 'Recreate') return replicas;
  const surge = strategy?.rollingUpdate?.maxSurge ?? '25%';
  const extra =
    typeof surge === 'number' ? surge : Math.ceil((replicas * Number.parseInt(surge, 10)) / 100);
  return replicas + extra;
}

const revisionOf = (object: KubeDeployment): number =>
  Number.parseInt(object.metadata.annotations?.[REVISION_ANNOTATION] ?? '0', 10) || 0;

/** A label selector of equality terms (`a=b`, `a==b`, `a!=b`, `a`, `!a`); undefined if not one. */
function parseSelector(text: string): ((labels: Record<string, string>) => boolean) | undefined {
  const terms: ((labels: Record<string, string>) => boolean)[] = [];
  for (const raw of text.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const m = /^(!?)([A-Za-z0-9][-A-Za-z0-9_./]*)(?:\s*(==|=|!=)\s*([-A-Za-z0-9_.]*))?$/.exec(term);
    if (m === null) return undefined;
    const [, not, key = '', op, value] = m;
    if (op === undefined) terms.push((l) => (not === '!') !== key in l);
    else if (not === '!') return undefined;
    else if (op === '!=') terms.push((l) => l[key] !== value);
    else terms.push((l) => l[key] === value);
  }
  return (labels) => terms.every((t) => t(labels));
}

/** The fields each resource can be selected by (the API server's field label conversions). */
const SELECTABLE_FIELDS: Readonly<Record<string, readonly string[]>> = {
  deployments: ['metadata.name', 'metadata.namespace'],
  replicasets: ['metadata.name', 'metadata.namespace', 'status.replicas'],
  pods: [
    'metadata.name',
    'metadata.namespace',
    'spec.nodeName',
    'spec.restartPolicy',
    'spec.schedulerName',
    'spec.serviceAccountName',
    'status.phase',
    'status.podIP',
  ],
  events: [
    'metadata.name',
    'metadata.namespace',
    'involvedObject.kind',
    'involvedObject.namespace',
    'involvedObject.name',
    'involvedObject.uid',
    'involvedObject.apiVersion',
    'involvedObject.resourceVersion',
    'involvedObject.fieldPath',
    'reason',
    'reportingComponent',
    'source',
    'type',
  ],
};

/**
 * A field selector (`a=b`, `a==b`, `a!=b`, comma-separated) for a resource: a predicate, or the
 * error text the real server answers 400 with.
 */
function parseFieldSelector(
  resource: string,
  text: string,
): ((object: unknown) => boolean) | string {
  const terms: ((object: unknown) => boolean)[] = [];
  for (const raw of text.split(',')) {
    const term = raw.trim();
    if (term === '') continue;
    const m = /^([A-Za-z.]+)\s*(==|=|!=)\s*(.*)$/.exec(term);
    if (m === null) return `invalid selector: '${text}'; can't understand '${term}'`;
    const [, field = '', op, value = ''] = m;
    if (!(SELECTABLE_FIELDS[resource] ?? []).includes(field)) {
      return `field label not supported: ${field}`;
    }
    const path = field === 'source' ? ['source', 'component'] : field.split('.');
    const read = (object: unknown): string => {
      let at: unknown = object;
      for (const part of path)
        at = isJsonObject(at) ? (at as Record<string, unknown>)[part] : undefined;
      return typeof at === 'string' || typeof at === 'number' || typeof at === 'boolean'
        ? String(at)
        : '';
    };
    terms.push(op === '!=' ? (o) => read(o) !== value : (o) => read(o) === value);
  }
  return (object) => terms.every((t) => t(object));
}

const key = (namespace: string, name: string): string => `${namespace}/${name}`;
const timestamp = (date: Date): string => date.toISOString().replace(/\.\d{3}Z$/, 'Z');
const clone = <T>(value: T): T => structuredClone(value);

/** A running in-test API server. Start one with {@link startKubeApiServer}. */
export class KubeApiServer {
  /** `https://127.0.0.1:<port>`: what DescribeCluster's `cluster.endpoint` would say. */
  readonly url: string;
  readonly host = '127.0.0.1';
  readonly port: number;
  /** The CA (the self-signed certificate itself), PEM. */
  readonly caPem: string;
  /** base64 of {@link caPem}: DescribeCluster's `cluster.certificateAuthority.data`. */
  readonly caData: string;
  readonly clusterName: string;
  /** Every request received, in order of arrival. */
  readonly requests: RecordedRequest[] = [];
  /** RBAC for the requests that follow; undefined allows everything. */
  authorize: Authorizer | undefined;
  /**
   * Runs before each PATCH request is applied (after authentication, authorization and
   * conflictNext), not for patchDeployment() calls: a hook may call patchDeployment itself.
   */
  beforePatch: BeforePatchHook | undefined;

  private readonly deployments = new Map<string, KubeDeployment>();
  private readonly replicaSets = new Map<string, KubeReplicaSet>();
  /** ReplicaSet keys by their owners' uids (the controller's informer index). */
  private readonly replicaSetsByOwner = new Map<string, Set<string>>();
  private resourceVersion = 0;
  /** The Deployment and ReplicaSet controllers and the kubelet, on the simulated clock. */
  private readonly simulation: ClusterSimulation;
  private readonly faults: Fault[] = [];
  private readonly hangs: Hang[] = [];
  private conflicts = 0;
  private readonly holds = new Set<() => void>();
  private listening = true;

  /** @internal use {@link startKubeApiServer} */
  constructor(
    private readonly server: Server,
    private readonly options: KubeApiServerOptions,
    private readonly removeOnStop: string | undefined,
    caPem: string,
  ) {
    this.port = (server.address() as AddressInfo).port;
    this.url = `https://${this.host}:${this.port}`;
    this.caPem = caPem;
    this.caData = Buffer.from(caPem).toString('base64');
    this.clusterName = options.clusterName;
    this.authorize = options.authorize;
    const start = options.startTime ?? options.now?.() ?? new Date();
    this.simulation = new ClusterSimulation(
      {
        deployments: () => [...this.deployments.values()],
        replicaSetsOf: (deployment) =>
          this.ownedReplicaSets(deployment.metadata.namespace!, deployment),
        writeDeployment: (next, old) => {
          this.store(next, old);
        },
        writeReplicaSet: (next, old) => this.storeReplicaSet(next, old),
        nextResourceVersion: () => this.nextResourceVersion(),
      },
      Math.floor(start.getTime() / 1000) * 1000,
    );
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      this.handle(req, res).catch((error: unknown) => {
        if (!res.headersSent && !res.destroyed) {
          res.writeHead(500, { 'content-type': 'application/json' });
          res.end(JSON.stringify(status(500, `in-test API server failed: ${String(error)}`)));
        }
      });
    });
  }

  /** The clock tokens are checked against (not the simulated one: tokens are signed by real clients). */
  private tokenNow(): Date {
    return this.options.now?.() ?? new Date();
  }

  // ---- the simulated cluster: fates, the fake clock, pods and events ----

  /**
   * The simulated clock: creation timestamps, conditions, pod states. It starts at
   * `options.startTime` and moves only with {@link tick}.
   */
  now(): Date {
    return this.simulation.now();
  }

  /**
   * Decides what becomes of the containers of `target` (an image exactly as the pod template
   * names it, or a Deployment's containers, optionally of one image); `undefined` forgets the
   * fate. Set it before or after the PATCH: a pod follows the most specific fate at each tick
   * (Deployment and image, then Deployment, then image; else {@link DEFAULT_FATE}: Ready one
   * tick after creation). A pod that changes fate starts that fate over from that tick.
   */
  setFate(target: FateTarget, fate: PodFate | undefined): void {
    this.simulation.setFate(target, fate);
  }

  /**
   * Advances the simulated clock by `seconds` (a whole number), one second at a time; each
   * second the Deployment controller scales ReplicaSets, the ReplicaSet controller creates and
   * deletes pods, the kubelet moves each container along its fate, and the ReplicaSet and
   * Deployment statuses are written from the pods. Nothing of this happens without a tick:
   * tests that drive statuses by hand (setStatus, completeRollout) never tick.
   */
  tick(seconds = 1): void {
    this.simulation.tick(seconds);
  }

  /**
   * Ticks one second at a time until `done()` holds, at most `maxSeconds`; returns the
   * simulated seconds it took. Throws, naming `what`, when it does not happen in time.
   */
  tickUntil(done: () => boolean, maxSeconds: number, what = 'the condition'): number {
    for (let waited = 0; ; waited += 1) {
      if (done()) return waited;
      if (waited >= maxSeconds) {
        throw new Error(`tickUntil: ${what} did not happen in ${maxSeconds} simulated seconds`);
      }
      this.tick(1);
    }
  }

  /** The pods of a namespace (copies), by name; with a label selector as the LIST takes it. */
  pods(namespace: string, labelSelector = ''): KubePod[] {
    const matches = parseSelector(labelSelector);
    if (matches === undefined) throw new Error(`pods: cannot parse selector ${labelSelector}`);
    return this.simulation.listPods(namespace).filter((p) => matches(p.metadata.labels));
  }

  /** The pods of a Deployment's current ReplicaSet (copies). */
  podsOf(namespace: string, deployment: string): KubePod[] {
    const stored = this.deployments.get(key(namespace, deployment));
    if (stored === undefined) return [];
    const current = this.ownedReplicaSets(namespace, stored).find(
      (rs) =>
        rs.metadata.labels?.[POD_TEMPLATE_HASH_LABEL] === podTemplateHash(stored.spec.template),
    );
    if (current === undefined) return [];
    return this.simulation
      .listPods(namespace)
      .filter((p) => p.metadata.ownerReferences.some((o) => o.uid === current.metadata.uid));
  }

  /** The events of a namespace (copies), oldest first. */
  events(namespace: string): KubeEvent[] {
    return this.simulation.listEvents(namespace);
  }

  private nextResourceVersion(): string {
    this.resourceVersion += 1;
    return String(this.resourceVersion);
  }

  // ---- seeding and reading, for tests ----

  /**
   * Creates (or re-creates, as delete then create) a Deployment: sets resourceVersion,
   * generation 1, uid and creationTimestamp; keeps a given status (observedGeneration, if
   * there, set to 1: the status describes the object as put). The controller then records
   * its first ReplicaSet, at the revision the object's `deployment.kubernetes.io/revision`
   * annotation gives, or 1. Returns the stored object.
   */
  putDeployment(deployment: object, options: { namespace?: string } = {}): KubeDeployment {
    const object = clone(deployment) as KubeDeployment;
    if (object.apiVersion !== 'apps/v1' || object.kind !== 'Deployment') {
      throw new Error(
        `putDeployment takes an apps/v1 Deployment, got ${object.apiVersion}/${object.kind}`,
      );
    }
    const name = object.metadata?.name;
    if (typeof name !== 'string' || name === '') {
      throw new Error('putDeployment: the Deployment has no metadata.name');
    }
    const given = object.metadata.namespace;
    if (given !== undefined && options.namespace !== undefined && given !== options.namespace) {
      throw new Error(
        `putDeployment: the Deployment says namespace ${given}, the option says ${options.namespace}; remove one`,
      );
    }
    const namespace = options.namespace ?? given ?? 'default';
    const errors = validateDeployment(object, undefined);
    if (errors.length > 0) throw new KubeApiError(invalid(name, errors));
    this.deleteDeployment(namespace, name);
    const initialRevision = revisionOf(object) || 1;
    object.metadata = {
      ...object.metadata,
      namespace,
      uid: randomUUID(),
      resourceVersion: this.nextResourceVersion(),
      generation: 1,
      creationTimestamp: timestamp(this.now()),
    };
    delete object.metadata.managedFields;
    // A seeded status describes the object as put, whatever generation it was copied at.
    if (object.status?.observedGeneration !== undefined) object.status.observedGeneration = 1;
    this.deployments.set(key(namespace, name), object);
    this.runController(namespace, name, initialRevision);
    return this.deployment(namespace, name)!;
  }

  /** The stored Deployment (a copy), or undefined. */
  deployment(namespace: string, name: string): KubeDeployment | undefined {
    const found = this.deployments.get(key(namespace, name));
    return found === undefined ? undefined : clone(found);
  }

  /** Removes a Deployment and its ReplicaSets; true if there was one. */
  deleteDeployment(namespace: string, name: string): boolean {
    const found = this.deployments.get(key(namespace, name));
    if (found === undefined) return false;
    for (const rs of this.ownedReplicaSets(namespace, found)) {
      this.replicaSets.delete(key(namespace, rs.metadata.name));
      this.replicaSetsByOwner.delete(found.metadata.uid ?? '');
    }
    this.simulation.forgetDeployment(namespace, name);
    return this.deployments.delete(key(namespace, name));
  }

  /** A Deployment's ReplicaSets (copies), oldest revision first. */
  replicaSetsOf(namespace: string, name: string): KubeReplicaSet[] {
    const deployment = this.deployments.get(key(namespace, name));
    if (deployment === undefined) return [];
    return this.ownedReplicaSets(namespace, deployment)
      .map(clone)
      .sort((a, b) => revisionOf(a) - revisionOf(b));
  }

  /**
   * Patches a Deployment as another client would (a person running `kubectl set image`), with
   * every rule of the HTTP PATCH but no token. Returns the stored object; throws
   * {@link KubeApiError} with the Status the server would answer.
   */
  patchDeployment(
    namespace: string,
    name: string,
    patch: unknown,
    contentType: string = STRATEGIC_MERGE_PATCH,
  ): KubeDeployment {
    const answer = this.applyPatch(namespace, name, patch, contentType, false);
    if (answer.code !== 200) throw new KubeApiError(answer.body as KubeStatus);
    return answer.body as KubeDeployment;
  }

  /** Replaces a Deployment's status, as the controller writes it (resourceVersion bumped). */
  setStatus(namespace: string, name: string, newStatus: DeploymentStatus): KubeDeployment {
    const stored = this.deployments.get(key(namespace, name));
    if (stored === undefined) throw new KubeApiError(notFound('deployments', name));
    const next = clone(stored);
    next.status = clone(newStatus);
    this.store(next, stored);
    return clone(this.deployments.get(key(namespace, name))!);
  }

  /**
   * What the controller writes when a rollout has finished: observedGeneration = generation,
   * every replica count = spec.replicas, conditions Available and Progressing
   * (NewReplicaSetAvailable); the current ReplicaSet scaled to spec.replicas, older ones to 0;
   * the current ReplicaSet's pods Ready whatever their fate, the others' pods gone. The clock
   * does not move.
   */
  completeRollout(namespace: string, name: string): KubeDeployment {
    const stored = this.deployments.get(key(namespace, name));
    if (stored === undefined) throw new KubeApiError(notFound('deployments', name));
    const replicas = stored.spec.replicas ?? 1;
    const hash = podTemplateHash(stored.spec.template);
    const now = timestamp(this.now());
    for (const rs of this.ownedReplicaSets(namespace, stored)) {
      const current = rs.metadata.labels?.[POD_TEMPLATE_HASH_LABEL] === hash;
      const count = current ? replicas : 0;
      const next = clone(rs);
      next.spec.replicas = count;
      next.status = {
        replicas: count,
        ...(count > 0
          ? { fullyLabeledReplicas: count, readyReplicas: count, availableReplicas: count }
          : {}),
        observedGeneration: rs.metadata.generation ?? 1,
      };
      this.storeReplicaSet(next, rs);
    }
    const owned = this.ownedReplicaSets(namespace, stored);
    const current = owned.find((rs) => rs.metadata.labels?.[POD_TEMPLATE_HASH_LABEL] === hash);
    this.simulation.settle(namespace, name);
    if (current !== undefined) {
      this.simulation.completePods(
        stored,
        current,
        owned.filter((rs) => rs !== current),
      );
    }
    const counts =
      replicas > 0
        ? {
            replicas,
            updatedReplicas: replicas,
            readyReplicas: replicas,
            availableReplicas: replicas,
          }
        : {};
    return this.setStatus(namespace, name, {
      observedGeneration: stored.metadata.generation ?? 1,
      ...counts,
      conditions: [
        {
          type: 'Available',
          status: 'True',
          lastUpdateTime: now,
          lastTransitionTime: now,
          reason: 'MinimumReplicasAvailable',
          message: 'Deployment has minimum availability.',
        },
        {
          type: 'Progressing',
          status: 'True',
          lastUpdateTime: now,
          lastTransitionTime: now,
          reason: 'NewReplicaSetAvailable',
          message: `ReplicaSet "${name}-${hash}" has successfully progressed.`,
        },
      ],
    });
  }

  // ---- faults ----

  /**
   * The next `count` requests (of `method` only, when given) are answered with `code` and a
   * Status body, before authentication, as an overloaded server or a load balancer would.
   * `retryAfterSeconds` adds the Retry-After header (and details.retryAfterSeconds); `namespace`
   * limits the fault to requests under /namespaces/<namespace>/ (one environment failing).
   */
  failNext(
    count: number,
    code: 429 | 500 | 502 | 503 | 504,
    options: { retryAfterSeconds?: number; method?: 'GET' | 'PATCH'; namespace?: string } = {},
  ): void {
    this.faults.push({
      remaining: count,
      status: code,
      retryAfterSeconds: options.retryAfterSeconds,
      method: options.method,
      namespace: options.namespace,
    });
  }

  /**
   * The next `count` PATCH requests get 409 Conflict, whatever their resourceVersion; nothing
   * changes (patchDeployment() calls are not counted).
   */
  conflictNext(count: number): void {
    this.conflicts += count;
  }

  /**
   * The next `count` requests get no answer for `ms` milliseconds, then are served; without
   * `ms`, none until the client gives up (or down()/stop()).
   */
  hangNext(count: number, ms?: number): void {
    this.hangs.push({ remaining: count, ms });
  }

  /** Stops listening and drops every connection: new requests get ECONNREFUSED. */
  async down(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.server.closeAllConnections();
    for (const release of [...this.holds]) release();
    await closed;
  }

  /** Listens again, on the same port. */
  async up(): Promise<void> {
    if (this.listening) return;
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.port, this.host, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
    this.listening = true;
  }

  /** Forgets every fault, conflict and hang still pending (the fault clears). */
  resetFaults(): void {
    this.faults.length = 0;
    this.hangs.length = 0;
    this.conflicts = 0;
  }

  /** Forgets the requests recorded so far. */
  resetRequests(): void {
    this.requests.length = 0;
  }

  /** Stops the server for good (and removes the certificate it made). */
  async stop(): Promise<void> {
    await this.down();
    if (this.removeOnStop !== undefined)
      rmSync(this.removeOnStop, { recursive: true, force: true });
  }

  // ---- the store and the controller ----

  private ownedReplicaSets(namespace: string, deployment: KubeDeployment): KubeReplicaSet[] {
    const keys = this.replicaSetsByOwner.get(deployment.metadata.uid ?? '');
    if (keys === undefined) return [];
    return [...keys]
      .map((k) => this.replicaSets.get(k))
      .filter((rs): rs is KubeReplicaSet => rs?.metadata.namespace === namespace);
  }

  /** Writes an object if it changed (etcd keeps a no-op update from bumping resourceVersion). */
  private store(next: KubeDeployment, old: KubeDeployment): boolean {
    next.metadata.resourceVersion = old.metadata.resourceVersion;
    if (jsonEqual(next, old)) return false;
    next.metadata.resourceVersion = this.nextResourceVersion();
    this.deployments.set(key(next.metadata.namespace!, next.metadata.name), next);
    return true;
  }

  private storeReplicaSet(next: KubeReplicaSet, old: KubeReplicaSet | undefined): void {
    if (old !== undefined) {
      next.metadata.resourceVersion = old.metadata.resourceVersion;
      if (jsonEqual(next, old)) return;
    }
    next.metadata.resourceVersion = this.nextResourceVersion();
    const at = key(next.metadata.namespace!, next.metadata.name);
    this.replicaSets.set(at, next);
    // ownerReferences of a ReplicaSet never change here: index it once, by owner uid.
    for (const owner of (next.metadata.ownerReferences as { uid: string }[] | undefined) ?? []) {
      if (!this.replicaSetsByOwner.has(owner.uid))
        this.replicaSetsByOwner.set(owner.uid, new Set());
      this.replicaSetsByOwner.get(owner.uid)!.add(at);
    }
  }

  /**
   * The Deployment controller's bookkeeping, at once: the ReplicaSet of the current pod
   * template (made, or an old one brought back at a new revision), the Deployment's annotations
   * copied to it, and the Deployment's revision annotation (a status write: no new generation).
   */
  private runController(namespace: string, name: string, initialRevision = 1): void {
    const deployment = this.deployments.get(key(namespace, name))!;
    const template = deployment.spec.template;
    const hash = podTemplateHash(template);
    const owned = this.ownedReplicaSets(namespace, deployment);
    const newest = Math.max(0, ...owned.map(revisionOf));
    const existing = owned.find((rs) => rs.metadata.labels?.[POD_TEMPLATE_HASH_LABEL] === hash);
    let revision: number;
    let rs: KubeReplicaSet;
    if (existing === undefined) {
      revision = owned.length === 0 ? initialRevision : newest + 1;
      const labels = { ...(template.metadata?.labels ?? {}), [POD_TEMPLATE_HASH_LABEL]: hash };
      rs = {
        apiVersion: 'apps/v1',
        kind: 'ReplicaSet',
        metadata: {
          name: `${name}-${hash}`,
          namespace,
          uid: randomUUID(),
          generation: 1,
          creationTimestamp: timestamp(this.now()),
          labels,
          annotations: {},
          ownerReferences: [
            {
              apiVersion: 'apps/v1',
              kind: 'Deployment',
              name,
              uid: deployment.metadata.uid,
              controller: true,
              blockOwnerDeletion: true,
            },
          ],
        },
        spec: {
          replicas: 0,
          selector: {
            ...deployment.spec.selector,
            matchLabels: {
              ...(deployment.spec.selector.matchLabels ?? {}),
              [POD_TEMPLATE_HASH_LABEL]: hash,
            },
          },
          template: {
            ...clone(template),
            metadata: { ...clone(template.metadata ?? {}), labels },
          },
        },
        status: { replicas: 0 },
      };
      this.simulation.noteReplicaSetCreated(
        namespace,
        name,
        rs.metadata.name,
        this.now().getTime(),
      );
    } else {
      rs = clone(existing);
      const was = revisionOf(existing);
      revision = was === newest ? was : newest + 1;
      if (revision !== was) {
        const history = rs.metadata.annotations?.[REVISION_HISTORY_ANNOTATION];
        rs.metadata.annotations = {
          ...rs.metadata.annotations,
          [REVISION_HISTORY_ANNOTATION]: history === undefined ? String(was) : `${history},${was}`,
        };
      }
    }
    const annotations = { ...(rs.metadata.annotations ?? {}) };
    for (const [k, v] of Object.entries(deployment.metadata.annotations ?? {})) {
      if (!NOT_COPIED.has(k)) annotations[k] = v;
    }
    annotations[REVISION_ANNOTATION] = String(revision);
    annotations[DESIRED_REPLICAS_ANNOTATION] = String(deployment.spec.replicas ?? 1);
    annotations[MAX_REPLICAS_ANNOTATION] = String(maxReplicas(deployment));
    rs.metadata.annotations = annotations;
    this.storeReplicaSet(rs, existing);

    const next = clone(deployment);
    next.metadata.annotations = {
      ...next.metadata.annotations,
      [REVISION_ANNOTATION]: String(revision),
    };
    this.store(next, deployment);
  }

  /** A PATCH, from the wire or from a test: every rule, one outcome. */
  private applyPatch(
    namespace: string,
    name: string,
    patch: unknown,
    contentType: string,
    dryRun: boolean,
  ): Answer {
    const old = this.deployments.get(key(namespace, name));
    if (old === undefined) return { code: 404, body: notFound('deployments', name) };

    let patched: KubeDeployment;
    try {
      patched =
        contentType === MERGE_PATCH ? jsonMergePatch(old, patch) : strategicMerge(old, patch);
    } catch (error) {
      if (!(error instanceof StrategicMergeError)) throw error;
      // The real handler passes the merge code's errors through unconverted: 500, no reason.
      return { code: 500, body: status(500, error.message, undefined, '') };
    }
    if (!isJsonObject(patched.metadata)) {
      return { code: 422, body: invalid(name, [required('metadata')]) };
    }
    const wanted = patched.metadata.resourceVersion as Json | undefined;
    if (wanted !== undefined && typeof wanted !== 'string') {
      return {
        code: 400,
        body: status(
          400,
          `metadata.resourceVersion must be a string, got ${JSON.stringify(wanted)}`,
        ),
      };
    }
    if (wanted !== undefined && wanted !== old.metadata.resourceVersion) {
      return { code: 409, body: conflict('deployments', name) };
    }
    for (const field of ['name', 'namespace'] as const) {
      const value = patched.metadata[field];
      const url = field === 'name' ? name : namespace;
      if (value !== url) {
        return {
          code: 400,
          body: status(
            400,
            `the ${field} of the object (${String(value)}) does not match the ${field} on the URL (${url})`,
          ),
        };
      }
    }
    // What the client cannot set: type, identity, bookkeeping and status (PATCH on the main
    // resource ignores status, as the real strategy does).
    patched.apiVersion = old.apiVersion;
    patched.kind = old.kind;
    for (const field of ['uid', 'creationTimestamp', 'generation', 'resourceVersion'] as const) {
      if (old.metadata[field] === undefined) delete patched.metadata[field];
      else patched.metadata[field] = old.metadata[field] as never;
    }
    if (old.status === undefined) delete patched.status;
    else patched.status = clone(old.status);

    const errors = validateDeployment(patched, old);
    if (errors.length > 0) return { code: 422, body: invalid(name, errors) };

    // The Deployment strategy's rule: spec changes and annotation changes (annotations are
    // copied to ReplicaSets) bump the generation; labels and the rest do not.
    if (
      !jsonEqual(patched.spec, old.spec) ||
      !jsonEqual(patched.metadata.annotations ?? {}, old.metadata.annotations ?? {})
    ) {
      patched.metadata.generation = (old.metadata.generation ?? 0) + 1;
    }
    // A dry run answers with the object as it would be, written nowhere.
    if (dryRun) return { code: 200, body: patched };
    if (this.store(patched, old)) {
      const answer = clone(patched);
      this.runController(namespace, name);
      return { code: 200, body: answer };
    }
    return { code: 200, body: clone(old) };
  }

  // ---- HTTP ----

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', this.url);
    const method = req.method ?? 'GET';
    const contentType = req.headers['content-type'];
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= 3 * 1024 * 1024) chunks.push(chunk);
    }
    const text = Buffer.concat(chunks).toString('utf8');
    let body: unknown = text === '' ? undefined : text;
    let bodyIsJson = false;
    if (text !== '') {
      try {
        body = JSON.parse(text) as unknown;
        bodyIsJson = true;
      } catch {
        // Recorded as text; PATCH answers 400.
      }
    }
    const record: RecordedRequest = {
      method,
      path: url.pathname,
      query: Object.fromEntries(url.searchParams),
      contentType,
      body,
      status: undefined,
      user: undefined,
      authFailure: undefined,
    };
    this.requests.push(record);
    const send = (answer: Answer): void => {
      if (res.destroyed || res.writableEnded || !this.listening) return;
      record.status = answer.code;
      res.writeHead(answer.code, { 'content-type': 'application/json', ...answer.headers });
      res.end(`${JSON.stringify(answer.body)}\n`);
    };

    const hang = this.hangs.find((h) => h.remaining > 0);
    if (hang !== undefined) {
      hang.remaining -= 1;
      if (!(await this.hold(res, hang.ms))) return;
    }
    const fault = this.faults.find(
      (f) =>
        f.remaining > 0 &&
        (f.method ?? method) === method &&
        (f.namespace === undefined || url.pathname.includes(`/namespaces/${f.namespace}/`)),
    );
    if (fault !== undefined) {
      fault.remaining -= 1;
      const retry = fault.retryAfterSeconds;
      return send({
        code: fault.status,
        body: status(
          fault.status,
          undefined,
          retry === undefined ? undefined : { retryAfterSeconds: retry },
        ),
        ...(retry === undefined ? {} : { headers: { 'retry-after': String(retry) } }),
      });
    }
    if (size > 3 * 1024 * 1024) return send({ code: 413, body: status(413) });

    const user = this.authenticate(req, record);
    if (user === undefined) return send({ code: 401, body: status(401) });
    record.user = user;

    const route =
      /^\/apis\/apps\/v1\/namespaces\/([^/]+)\/(deployments|replicasets)(?:\/([^/]+))?$/.exec(
        url.pathname,
      ) ?? /^\/api\/v1\/namespaces\/([^/]+)\/(pods|events)(?:\/([^/]+))?$/.exec(url.pathname);
    if (route === null) return send({ code: 404, body: status(404, undefined, {}) });
    const namespace = decodeURIComponent(route[1]!);
    const resource = route[2] as KubeRequestAttributes['resource'];
    const apiGroup = groupOf(resource);
    const name = route[3] === undefined ? undefined : decodeURIComponent(route[3]);
    const allowedMethods =
      name !== undefined && resource === 'deployments' ? ['GET', 'PATCH'] : ['GET'];
    if (!allowedMethods.includes(method)) return send({ code: 405, body: status(405) });
    const verb = method === 'PATCH' ? 'patch' : name === undefined ? 'list' : 'get';
    if (
      this.authorize !== undefined &&
      !this.authorize({ user, verb, apiGroup, resource, namespace, name })
    ) {
      const target =
        name === undefined ? groupResource(resource) : `${groupResource(resource)} "${name}"`;
      return send({
        code: 403,
        body: status(
          403,
          `${target} is forbidden: User "${user}" cannot ${verb} resource "${resource}" in API group "${apiGroup}" in the namespace "${namespace}"`,
          {
            ...(name === undefined ? {} : { name }),
            ...(apiGroup === '' ? {} : { group: apiGroup }),
            kind: resource,
          },
        ),
      });
    }
    if (url.searchParams.has('watch') && url.searchParams.get('watch') !== 'false') {
      return send({
        code: 400,
        body: status(400, 'watch is not implemented by the in-test API server'),
      });
    }

    if (method === 'GET' && name !== undefined) {
      const found: unknown =
        resource === 'deployments'
          ? this.deployments.get(key(namespace, name))
          : resource === 'replicasets'
            ? this.replicaSets.get(key(namespace, name))
            : resource === 'pods'
              ? this.simulation.getPod(namespace, name)
              : this.simulation.listEvents(namespace).find((e) => e.metadata.name === name);
      if (found === undefined) return send({ code: 404, body: notFound(resource, name) });
      return send({
        code: 200,
        body:
          resource === 'events'
            ? { kind: 'Event', apiVersion: 'v1', ...(found as KubeEvent) }
            : found,
      });
    }
    if (method === 'GET') {
      const selectorText = url.searchParams.get('labelSelector') ?? '';
      const matches = parseSelector(selectorText);
      if (matches === undefined) {
        return send({
          code: 400,
          body: status(
            400,
            `unable to parse requirement: ${JSON.stringify(selectorText)} (this server reads equality selectors only)`,
          ),
        });
      }
      const fields = parseFieldSelector(resource, url.searchParams.get('fieldSelector') ?? '');
      if (typeof fields === 'string') return send({ code: 400, body: status(400, fields) });
      const source: { metadata: { labels?: Record<string, string> } }[] =
        resource === 'deployments'
          ? [...this.deployments.values()].filter((o) => o.metadata.namespace === namespace)
          : resource === 'replicasets'
            ? [...this.replicaSets.values()].filter((o) => o.metadata.namespace === namespace)
            : resource === 'pods'
              ? this.simulation.listPods(namespace)
              : this.simulation.listEvents(namespace);
      const items = source
        .filter((o) => matches(o.metadata.labels ?? {}) && fields(o))
        .map((o) => {
          // List items carry no apiVersion or kind, as the real server sends them.
          const rest: Record<string, unknown> = { ...o };
          delete rest.apiVersion;
          delete rest.kind;
          return rest;
        });
      // etcd lists by key: by name within the namespace.
      items.sort((a, b) => {
        const an = (a.metadata as { name: string }).name;
        const bn = (b.metadata as { name: string }).name;
        return an < bn ? -1 : an > bn ? 1 : 0;
      });
      const LIST_KINDS = {
        deployments: ['DeploymentList', 'apps/v1'],
        replicasets: ['ReplicaSetList', 'apps/v1'],
        pods: ['PodList', 'v1'],
        events: ['EventList', 'v1'],
      } as const;
      const [kind, apiVersion] = LIST_KINDS[resource];
      return send({
        code: 200,
        body: {
          kind,
          apiVersion,
          metadata: { resourceVersion: String(this.resourceVersion) },
          items,
        },
      });
    }

    // PATCH a Deployment.
    const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
    if (mediaType !== STRATEGIC_MERGE_PATCH && mediaType !== MERGE_PATCH) {
      const known = ['application/json-patch+json', 'application/apply-patch+yaml'].includes(
        mediaType,
      );
      return send({
        code: 415,
        body: status(
          415,
          known
            ? `${mediaType} is a real patch type that the in-test API server does not implement`
            : `the body of the request was in an unknown format - accepted media types include: ${STRATEGIC_MERGE_PATCH}, ${MERGE_PATCH}`,
        ),
      });
    }
    const dryRun = url.searchParams.getAll('dryRun');
    if (dryRun.some((v) => v !== 'All')) {
      return send({
        code: 422,
        body: status(
          422,
          `PatchOptions.meta.k8s.io "" is invalid: dryRun: Unsupported value: ${JSON.stringify(dryRun)}: supported values: "All"`,
        ),
      });
    }
    const fieldManager = url.searchParams.get('fieldManager');
    if (
      fieldManager !== null &&
      (fieldManager.length > 128 || !/^[\x20-\x7e]*$/.test(fieldManager))
    ) {
      return send({
        code: 422,
        body: status(
          422,
          `PatchOptions.meta.k8s.io "" is invalid: fieldManager: Invalid value: ${JSON.stringify(fieldManager)}: must be printable and at most 128 characters`,
        ),
      });
    }
    if (!bodyIsJson || !isJsonObject(body)) {
      return send({
        code: 400,
        body: status(400, `the patch is not a JSON object: ${text.slice(0, 80)}`),
      });
    }
    if (this.conflicts > 0) {
      this.conflicts -= 1;
      return send({ code: 409, body: conflict('deployments', name!) });
    }
    await this.beforePatch?.({ namespace, name: name!, patch: body });
    return send(this.applyPatch(namespace, name!, body, mediaType, dryRun.length > 0));
  }

  /**
   * Who sent the request, as the real server's authenticators decide: a client certificate
   * verified against clientCa (its CN), a static token, or an EKS token; undefined (401) otherwise.
   */
  private authenticate(req: IncomingMessage, record: RecordedRequest): string | undefined {
    const socket = req.socket as TLSSocket;
    // An empty object when the client sent no certificate.
    const peer = this.options.clientCa === undefined ? {} : socket.getPeerCertificate();
    const presented = Object.keys(peer).length > 0;
    const commonName = (peer as { subject?: { CN?: string } }).subject?.CN;
    if (presented && socket.authorized && commonName !== undefined) return commonName;
    const bearer = /^bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '');
    if (bearer === null) {
      record.authFailure = !presented
        ? 'no bearer token'
        : socket.authorized
          ? 'no bearer token; the client certificate has no CN'
          : `no bearer token; client certificate refused: ${String(socket.authorizationError)}`;
      return undefined;
    }
    const token = bearer[1]!;
    const known = this.options.staticTokens?.[token];
    if (known !== undefined) return known;
    if (this.options.credentials === undefined) {
      record.authFailure = 'unknown static token';
      return undefined;
    }
    const verified = verifyEksToken(token, {
      clusterName: this.options.clusterName,
      credentials: this.options.credentials,
      now: this.tokenNow(),
      ...(this.options.region === undefined ? {} : { region: this.options.region }),
    });
    if (!verified.ok) {
      record.authFailure = `${verified.reason}: ${verified.message}`;
      return undefined;
    }
    return verified.accessKeyId;
  }

  /** Holds a request; true if it is still worth answering. */
  private hold(res: ServerResponse, ms: number | undefined): Promise<boolean> {
    return new Promise((resolve) => {
      const release = (): void => {
        if (timer !== undefined) clearTimeout(timer);
        res.off('close', release);
        this.holds.delete(release);
        resolve(!res.destroyed && this.listening);
      };
      const timer = ms === undefined ? undefined : setTimeout(release, ms);
      res.on('close', release);
      this.holds.add(release);
    });
  }
}

/**
 * Starts an in-test Kubernetes API server on a free port of 127.0.0.1, over TLS with a
 * self-signed certificate (its own CA). Callers must `stop()` it (in `afterAll`).
 */
export async function startKubeApiServer(options: KubeApiServerOptions): Promise<KubeApiServer> {
  if (options.clusterName === '') throw new Error('startKubeApiServer: clusterName is empty');
  if (
    options.credentials === undefined &&
    options.staticTokens === undefined &&
    options.clientCa === undefined
  ) {
    throw new Error(
      'startKubeApiServer: nobody could authenticate; give credentials (EKS tokens), staticTokens or clientCa',
    );
  }
  let made: string | undefined;
  let certificate = options.certificate;
  if (certificate === undefined) {
    made = mkdtempSync(path.join(tmpdir(), 'ship-kube-apiserver-'));
    certificate = selfSignedCertificate(made, {
      commonName: 'kube-apiserver',
      ipAddress: '127.0.0.1',
    });
  }
  const caPem = readFileSync(certificate.certPath, 'utf8');
  const server = createServer({
    key: readFileSync(certificate.keyPath),
    cert: caPem,
    // Asked for, not required: a request without one may still carry a token (as the real server).
    ...(options.clientCa === undefined
      ? {}
      : { ca: options.clientCa.certPem, requestCert: true, rejectUnauthorized: false }),
  });
  // Clients keep connections alive between requests; so does the real server (Go: minutes).
  server.keepAliveTimeout = 60_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return new KubeApiServer(server, options, made, caPem);
}

/**
 * One request to the server as a bearer-token client makes it (a strategic-merge PATCH when a body
 * is given); resolves with the answer's status. For tests of who may do what.
 */
export function requestStatus(
  server: Pick<KubeApiServer, 'url' | 'caPem'>,
  token: string,
  method: string,
  urlPath: string,
  body?: unknown,
): Promise<number> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const r = httpsRequest(
      `${server.url}${urlPath}`,
      {
        method,
        ca: server.caPem,
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(payload === undefined ? {} : { 'content-type': STRATEGIC_MERGE_PATCH }),
        },
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    r.on('error', reject);
    r.end(payload);
  });
}
