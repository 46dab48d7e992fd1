// The Deployment and ReplicaSet controllers and the kubelet, simulated on a fake clock for the
// in-test API server (kube-apiserver.ts), so that verification can be judged against pods and
// statuses shaped as Kubernetes shapes them. Written from the documented behaviour of
// kubernetes/kubernetes pkg/controller/deployment (sync.go, rolling.go, progress.go,
// util/deployment_util.go), pkg/controller/replicaset and pkg/kubelet (images, kuberuntime), and
// checked by kube-controller.test.ts.
//
// Time moves only when a test calls tick(): each simulated second runs, in order, the Deployment
// controller (scaling ReplicaSets by the RollingUpdate or Recreate rules from the statuses of the
// second before), the ReplicaSet controller (creating and deleting pods), the kubelet (each
// container's state by its fate), then the ReplicaSet and Deployment statuses (counts from the
// pods, observedGeneration, the Available and Progressing conditions, ProgressDeadlineExceeded).
//
// Modelled: pod-template-hash pods owned by their ReplicaSet; maxSurge/maxUnavailable (25%
// defaults, percentages rounded as the controller rounds them); minReadySeconds; paused
// Deployments (status only, Progressing Unknown DeploymentPaused); image pull back-off (10 s
// doubling to 300 s) and crash-loop back-off (first restart at once, then 10 s doubling to
// 300 s); events with the kubelet's and controllers' reasons and messages, counted as the event
// recorder aggregates them.
// Not modelled: scheduling (every pod is bound at once to one node), graceful termination (a
// deleted pod is gone at once), probes (a fate says when a container is ready), init containers,
// proportional scaling of a paused or mid-rollout Deployment whose replicas change, the
// ReplicaSet controller's slow-start batches, revisionHistoryLimit clean-up.

import { createHash } from 'node:crypto';
import type { DeploymentCondition, KubeDeployment, KubeReplicaSet } from './kube-apiserver';

// ---- fates ----

/**
 * What becomes of a container whose image (or Deployment) a test gave this fate. Ticks are
 * simulated seconds, counted from the pod's creation (or from the tick the fate was set, for a
 * pod that already existed).
 */
export type PodFate =
  /** Running from its first second, Ready after `afterTicks` (0: at creation). */
  | { readonly kind: 'ready'; readonly afterTicks: number }
  /**
   * The kubelet cannot pull the image: ErrImagePull at each attempt (the first one second after
   * creation), ImagePullBackOff in between (its message, as from Kubernetes 1.32, ends with the
   * last pull error), attempts 10 s apart doubling to 300 s.
   * @param message the container runtime's error (the waiting message of ErrImagePull).
   * @default - containerd's answer for a manifest the registry does not have
   */
  | { readonly kind: 'image-pull-failure'; readonly message?: string }
  /**
   * The container exits as soon as it starts: terminated (reason Error, `exitCode`), restarted at
   * once, then CrashLoopBackOff with back-off 10 s doubling to 300 s; restartCount grows.
   * @param exitCode @default 1
   */
  | { readonly kind: 'crash-loop'; readonly exitCode?: number }
  /** Running, never Ready (a readiness probe that never passes). */
  | { readonly kind: 'never-ready' }
  /** Waiting for ever with this reason from the first second on (the pod stays Pending). */
  | {
      readonly kind: 'config-error';
      readonly reason: 'CreateContainerConfigError' | 'CreateContainerError' | 'InvalidImageName';
      /** @default - a typical message of the kubelet for that reason */
      readonly message?: string;
    };

/**
 * Whose containers a fate applies to: an image (the container's `image` exactly as in the pod
 * template), or a Deployment's containers (optionally only those running `image`).
 * The most specific fate wins: Deployment and image, then Deployment, then image.
 */
export type FateTarget =
  string | { readonly namespace: string; readonly deployment: string; readonly image?: string };

/** Without a fate, a container is Ready one second after its pod is created. */
export const DEFAULT_FATE: PodFate = { kind: 'ready', afterTicks: 1 };

// ---- objects ----

export interface KubeContainerState {
  waiting?: { reason: string; message?: string };
  running?: { startedAt: string };
  terminated?: {
    exitCode: number;
    reason: string;
    startedAt: string;
    finishedAt: string;
    containerID: string;
    message?: string;
  };
}

export interface KubeContainerStatus {
  name: string;
  state: KubeContainerState;
  lastState: KubeContainerState;
  ready: boolean;
  restartCount: number;
  image: string;
  imageID: string;
  containerID?: string;
  started: boolean;
}

export interface KubePodCondition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  lastProbeTime: null;
  lastTransitionTime: string;
  reason?: string;
  message?: string;
}

/** A core/v1 Pod, with the fields the controllers and the kubelet write. */
export interface KubePod {
  apiVersion: 'v1';
  kind: 'Pod';
  metadata: {
    name: string;
    generateName: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels: Record<string, string>;
    annotations?: Record<string, string>;
    ownerReferences: {
      apiVersion: string;
      kind: string;
      name: string;
      uid: string;
      controller: boolean;
      blockOwnerDeletion: boolean;
    }[];
  };
  spec: Record<string, unknown> & { containers: { name: string; image?: string }[] };
  status: {
    phase: 'Pending' | 'Running';
    conditions: KubePodCondition[];
    hostIP: string;
    podIP?: string;
    podIPs?: { ip: string }[];
    startTime: string;
    /** Init containers (not fated): completed, exit code 0, when the pod is created. */
    initContainerStatuses?: KubeContainerStatus[];
    containerStatuses: KubeContainerStatus[];
    qosClass: 'BestEffort' | 'Burstable' | 'Guaranteed';
  };
}

/** A core/v1 Event, as the event recorder writes it (with its aggregation count). */
export interface KubeEvent {
  metadata: {
    name: string;
    namespace: string;
    uid: string;
    resourceVersion: string;
    creationTimestamp: string;
    labels?: Record<string, string>;
  };
  involvedObject: {
    kind: string;
    namespace: string;
    name: string;
    uid: string;
    apiVersion: string;
    resourceVersion?: string;
    fieldPath?: string;
  };
  reason: string;
  message: string;
  source: { component: string; host?: string };
  firstTimestamp: string;
  lastTimestamp: string;
  count: number;
  type: 'Normal' | 'Warning';
  eventTime: null;
  reportingComponent: string;
  reportingInstance: string;
}

/** What the controllers read and write in the server's store. */
export interface ControllerStore {
  /** Every Deployment (the stored objects: read only, write through writeDeployment). */
  deployments(): readonly KubeDeployment[];
  /** The ReplicaSets whose controller is this Deployment. */
  replicaSetsOf(deployment: KubeDeployment): readonly KubeReplicaSet[];
  writeDeployment(next: KubeDeployment, old: KubeDeployment): void;
  writeReplicaSet(next: KubeReplicaSet, old: KubeReplicaSet): void;
  nextResourceVersion(): string;
}

// ---- constants, as Kubernetes names them ----

const PROGRESSING = 'Progressing';
const AVAILABLE = 'Available';
const NODE = 'ip-10-0-1-23.eu-west-1.compute.internal';
const HOST_IP = '10.0.1.23';
const IMAGE_BACKOFF_INITIAL = 10;
const CRASH_BACKOFF_INITIAL = 10;
const BACKOFF_MAX = 300;
const DEFAULT_PROGRESS_DEADLINE = 600;
/** The safe alphabet of pod name suffixes (k8s.io/apimachinery rand.SafeEncodeString). */
const SUFFIX_ALPHABET = 'bcdfghjklmnpqrstvwxz2456789';

const timestamp = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const clone = <T>(value: T): T => structuredClone(value);
const sha256 = (text: string): string => createHash('sha256').update(text).digest('hex');

/** A Go time.Duration as String() prints whole seconds: 10s, 1m20s, 5m0s. */
export function goDuration(seconds: number): string {
  if (seconds < 60) return `${seconds}s`;
  const m = Math.floor(seconds / 60);
  const s = seconds % 60;
  if (m < 60) return `${m}m${s}s`;
  return `${Math.floor(m / 60)}h${m % 60}m${s}s`;
}

/** The seconds after the first attempt at which attempt k happens: 0, then back-offs. */
function attemptTimes(firstGap: number, initial: number, upTo: number): number[] {
  // firstGap: the gap between attempt 0 and 1 before back-off starts (crash loops restart once
  // at once); initial: the first back-off, doubled each time up to BACKOFF_MAX.
  const times = [0];
  let next = firstGap;
  let backoff = initial;
  if (firstGap === 0) {
    next = initial;
    backoff = Math.min(initial * 2, BACKOFF_MAX);
  }
  while (next <= upTo) {
    times.push(next);
    next += backoff;
    backoff = Math.min(backoff * 2, BACKOFF_MAX);
  }
  return times;
}

/** An intstr value (`3` or `"25%"`) of `total`, rounded up or down as the controller does. */
function scaledValue(value: unknown, total: number, roundUp: boolean): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string' && /^\d+%$/.test(value)) {
    const exact = (total * Number.parseInt(value, 10)) / 100;
    return roundUp ? Math.ceil(exact) : Math.floor(exact);
  }
  if (typeof value === 'string' && /^\d+$/.test(value)) return Number.parseInt(value, 10);
  return roundUp ? Math.ceil(total * 0.25) : Math.floor(total * 0.25);
}

interface Strategy {
  readonly recreate: boolean;
  readonly maxSurge: number;
  readonly maxUnavailable: number;
}

/** deploymentutil.ResolveFenceposts: both zero means one may be unavailable. */
export function resolveStrategy(deployment: KubeDeployment): Strategy {
  const replicas = desiredReplicas(deployment);
  const strategy = deployment.spec.strategy as
    { type?: string; rollingUpdate?: { maxSurge?: unknown; maxUnavailable?: unknown } } | undefined;
  if (strategy?.type === 'Recreate') return { recreate: true, maxSurge: 0, maxUnavailable: 0 };
  const maxSurge = scaledValue(strategy?.rollingUpdate?.maxSurge ?? '25%', replicas, true);
  let maxUnavailable = scaledValue(
    strategy?.rollingUpdate?.maxUnavailable ?? '25%',
    replicas,
    false,
  );
  if (maxSurge === 0 && maxUnavailable === 0) maxUnavailable = 1;
  return { recreate: false, maxSurge, maxUnavailable: Math.min(maxUnavailable, replicas) };
}

const desiredReplicas = (d: KubeDeployment): number => d.spec.replicas ?? 1;
const specReplicas = (rs: KubeReplicaSet): number => rs.spec.replicas ?? 0;
const count = (value: unknown): number => (typeof value === 'number' ? value : 0);

/** The kubelet's view of one container between ticks: what its fate has done so far. */
interface ContainerSim {
  /** The fate's identity when this state began (a new fate starts the container over). */
  fateKey: string;
  /** Simulated second at which the current fate started to apply. */
  since: number;
  /** completeRollout() made it Ready whatever its fate. */
  forced: boolean;
  /** Events already recorded, by step (each attempt, run or back-off recorded once). */
  recorded: Set<string>;
}

interface PodSim {
  readonly createdAt: number;
  readonly deployment: string;
  readonly containers: Map<string, ContainerSim>;
  /** When the Ready condition last became True (simulated second), for minReadySeconds. */
  readySince: number | undefined;
  /** Each container's fate and stage when the status was last written: unchanged, nothing to do. */
  signature?: string;
}

/** One Deployment's controller memory between syncs. */
interface DeploymentSim {
  /** A new ReplicaSet was created for the current template at this time (ms). */
  createdReplicaSet?: { name: string; atMs: number };
  /** The resourceVersions (Deployment, ReplicaSets) the last scaling and status syncs saw. */
  scaledAt?: string;
  statusAt?: string;
}

/**
 * The controllers and the kubelet. The server owns one and delegates tick(), setFate(), pods
 * and events to it.
 */
export class ClusterSimulation {
  private readonly pods = new Map<string, KubePod>();
  /** Pod keys by their controller's uid: the ReplicaSet controller's informer index. */
  private readonly podsByOwner = new Map<string, Set<string>>();
  /** Templates without the hash label, canonical: ReplicaSets by uid (their template never changes). */
  private readonly replicaSetTemplates = new Map<string, string>();
  /** The same for Deployments, by uid and generation (a template change bumps the generation). */
  private readonly deploymentTemplates = new Map<string, string>();
  private readonly podSims = new Map<string, PodSim>();
  private readonly events = new Map<string, KubeEvent>();
  private readonly deploymentSims = new Map<string, DeploymentSim>();
  private readonly fates = new Map<string, PodFate>();
  private seconds = 0;
  private serial = 0;

  constructor(
    private readonly store: ControllerStore,
    private readonly startMs: number,
  ) {}

  /** The simulated clock. */
  now(): Date {
    return new Date(this.nowMs());
  }

  private nowMs(): number {
    return this.startMs + this.seconds * 1000;
  }

  // ---- the test's API ----

  setFate(target: FateTarget, fate: PodFate | undefined): void {
    validateFate(fate);
    const k = fateKey(target);
    if (fate === undefined) this.fates.delete(k);
    else this.fates.set(k, fate);
  }

  /** Runs `seconds` simulated seconds, one at a time. */
  tick(seconds: number): void {
    if (!Number.isInteger(seconds) || seconds < 0) {
      throw new Error(
        `tick: seconds must be a whole number of simulated seconds, at least 0; got ${String(seconds)}`,
      );
    }
    for (let i = 0; i < seconds; i += 1) {
      this.seconds += 1;
      this.step();
    }
  }

  /** The controller noticed a new ReplicaSet for a Deployment's template (at PATCH or create). */
  noteReplicaSetCreated(namespace: string, deployment: string, name: string, atMs: number): void {
    this.deploymentSim(namespace, deployment).createdReplicaSet = { name, atMs };
  }

  /** Forgets a Deployment's pods (the Deployment was deleted: garbage collection). */
  forgetDeployment(namespace: string, deployment: string): void {
    for (const [k, sim] of this.podSims) {
      if (sim.deployment === deployment && this.pods.get(k)?.metadata.namespace === namespace) {
        this.unindex(this.pods.get(k)!);
        this.pods.delete(k);
        this.podSims.delete(k);
      }
    }
    this.deploymentSims.delete(`${namespace}/${deployment}`);
  }

  listPods(namespace: string): KubePod[] {
    return [...this.pods.values()]
      .filter((p) => p.metadata.namespace === namespace)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
      .map(clone);
  }

  getPod(namespace: string, name: string): KubePod | undefined {
    const found = this.pods.get(`${namespace}/${name}`);
    return found === undefined ? undefined : clone(found);
  }

  listEvents(namespace: string): KubeEvent[] {
    return [...this.events.values()]
      .filter((e) => e.metadata.namespace === namespace)
      .sort((a, b) => Number(a.metadata.resourceVersion) - Number(b.metadata.resourceVersion))
      .map(clone);
  }

  /** completeRollout(): the controller has seen the current ReplicaSet (no NewReplicaSetCreated to come). */
  settle(namespace: string, deployment: string): void {
    this.deploymentSim(namespace, deployment).createdReplicaSet = undefined;
  }

  /**
   * completeRollout(): the current ReplicaSet's pods exist and are Ready whatever their fate,
   * the other ReplicaSets' pods are gone.
   */
  completePods(
    deployment: KubeDeployment,
    current: KubeReplicaSet,
    others: KubeReplicaSet[],
  ): void {
    const namespace = deployment.metadata.namespace!;
    for (const rs of others) {
      for (const pod of this.podsOf(rs)) this.deletePod(pod, rs, false);
    }
    const owned = this.podsOf(current);
    for (let i = owned.length; i < specReplicas(current); i += 1) {
      owned.push(this.createPod(current, deployment.metadata.name, false));
    }
    for (const pod of owned) {
      const sim = this.podSims.get(`${namespace}/${pod.metadata.name}`)!;
      for (const c of sim.containers.values()) c.forced = true;
      this.runKubelet(pod);
    }
  }

  // ---- one simulated second ----

  private step(): void {
    // The Deployment controller's sync: scale, then the status from the ReplicaSets as they
    // stand (their controller has not acted yet: a new ReplicaSet still counts 0).
    for (const d of this.store.deployments()) {
      this.syncDeploymentScale(d);
      const fresh = this.store.deployments().find((x) => x.metadata.uid === d.metadata.uid);
      if (fresh !== undefined) this.syncDeploymentStatus(fresh);
    }
    for (const d of this.store.deployments()) {
      for (const rs of this.store.replicaSetsOf(d)) this.syncReplicaSetPods(rs, d.metadata.name);
    }
    for (const pod of [...this.pods.values()]) this.runKubelet(pod);
    for (const d of this.store.deployments()) {
      for (const rs of this.store.replicaSetsOf(d)) this.syncReplicaSetStatus(rs, d);
    }
    // The sync that the ReplicaSets' status changes trigger.
    for (const d of this.store.deployments()) this.syncDeploymentStatus(d);
  }

  private deploymentSim(namespace: string, name: string): DeploymentSim {
    const k = `${namespace}/${name}`;
    let sim = this.deploymentSims.get(k);
    if (sim === undefined) {
      sim = {};
      this.deploymentSims.set(k, sim);
    }
    return sim;
  }

  /** The new ReplicaSet (template equal ignoring the hash label) and the old ones. */
  private split(d: KubeDeployment): { newRS: KubeReplicaSet | undefined; old: KubeReplicaSet[] } {
    const all = [...this.store.replicaSetsOf(d)].sort(byCreation);
    const at = `${d.metadata.uid}/${d.metadata.generation}`;
    let wanted = this.deploymentTemplates.get(at);
    if (wanted === undefined) {
      wanted = templateWithoutHash(d.spec.template);
      this.deploymentTemplates.set(at, wanted);
    }
    const newRS = all.find((rs) => {
      const uid = rs.metadata.uid ?? '';
      let text = this.replicaSetTemplates.get(uid);
      if (text === undefined) {
        text = templateWithoutHash(rs.spec.template);
        this.replicaSetTemplates.set(uid, text);
      }
      return text === wanted;
    });
    return { newRS, old: all.filter((rs) => rs !== newRS) };
  }

  private scale(d: KubeDeployment, rs: KubeReplicaSet, to: number): void {
    const from = specReplicas(rs);
    if (from === to) return;
    const next = clone(rs);
    next.spec.replicas = to;
    next.metadata.generation = (rs.metadata.generation ?? 1) + 1;
    this.store.writeReplicaSet(next, rs);
    this.record(d, 'Normal', 'ScalingReplicaSet', {
      component: 'deployment-controller',
      message: `Scaled ${to > from ? 'up' : 'down'} replica set ${rs.metadata.name} to ${to} from ${from}`,
    });
  }

  /** rolloutRolling / rolloutRecreate: the ReplicaSets' sizes. */
  private syncDeploymentScale(d: KubeDeployment): void {
    if (d.spec.paused === true) return;
    // The same objects as at the last sync: the same decision (nothing to scale).
    const sim = this.deploymentSim(d.metadata.namespace!, d.metadata.name);
    const seen = this.versions(d);
    if (sim.scaledAt === seen) return;
    sim.scaledAt = seen;
    const { newRS, old } = this.split(d);
    if (newRS === undefined) return;
    const replicas = desiredReplicas(d);
    const strategy = resolveStrategy(d);
    const fresh = (rs: KubeReplicaSet): KubeReplicaSet =>
      this.store.replicaSetsOf(d).find((r) => r.metadata.uid === rs.metadata.uid) ?? rs;
    if (strategy.recreate) {
      const running = old.filter((rs) => specReplicas(rs) > 0);
      for (const rs of running) this.scale(d, rs, 0);
      const oldPods = old.some((rs) => this.podsOf(rs).length > 0);
      if (running.length === 0 && !oldPods) this.scale(d, newRS, replicas);
      return;
    }
    // reconcileNewReplicaSet
    const newSize = specReplicas(newRS);
    if (newSize > replicas) {
      this.scale(d, newRS, replicas);
      return; // a scaling of the new ReplicaSet ends this sync, as in rolloutRolling
    } else if (newSize < replicas) {
      const current = [newRS, ...old].reduce((sum, rs) => sum + specReplicas(rs), 0);
      const maxTotal = replicas + strategy.maxSurge;
      if (current < maxTotal) {
        const up = Math.min(maxTotal - current, replicas - newSize);
        this.scale(d, newRS, newSize + up);
        return; // a scale-up ends this sync, as in rolloutRolling
      }
    }
    // reconcileOldReplicaSets
    const olds = old.map(fresh);
    const oldPods = olds.reduce((sum, rs) => sum + specReplicas(rs), 0);
    if (oldPods === 0) return;
    const nrs = fresh(newRS);
    const all = [nrs, ...olds];
    const allPods = all.reduce((sum, rs) => sum + specReplicas(rs), 0);
    const minAvailable = replicas - strategy.maxUnavailable;
    const newUnavailable = specReplicas(nrs) - count(nrs.status?.availableReplicas);
    let maxScaledDown = allPods - minAvailable - newUnavailable;
    if (maxScaledDown <= 0) return;
    // cleanupUnhealthyReplicas: old ReplicaSets' unavailable pods first
    let cleaned = 0;
    for (const rs of olds) {
      if (cleaned >= maxScaledDown) break;
      const size = specReplicas(rs);
      const available = count(rs.status?.availableReplicas);
      if (size === 0 || size === available) continue;
      const down = Math.min(maxScaledDown - cleaned, size - available);
      this.scale(d, rs, size - down);
      cleaned += down;
    }
    maxScaledDown -= cleaned;
    // scaleDownOldReplicaSetsForRollingUpdate
    const now = [fresh(newRS), ...old.map(fresh)];
    const availablePods = now.reduce((sum, rs) => sum + count(rs.status?.availableReplicas), 0);
    if (availablePods <= minAvailable) return;
    const total = availablePods - minAvailable;
    let scaled = 0;
    for (const rs of old.map(fresh)) {
      if (scaled >= total) break;
      const size = specReplicas(rs);
      if (size === 0) continue;
      const down = Math.min(size, total - scaled);
      this.scale(d, rs, size - down);
      scaled += down;
    }
  }

  private podsOf(rs: KubeReplicaSet): KubePod[] {
    const keys = this.podsByOwner.get(rs.metadata.uid ?? '');
    if (keys === undefined) return [];
    return [...keys]
      .map((k) => this.pods.get(k)!)
      .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1));
  }

  private unindex(pod: KubePod): void {
    for (const owner of pod.metadata.ownerReferences) {
      this.podsByOwner.get(owner.uid)?.delete(podKey(pod));
    }
  }

  /** The ReplicaSet controller: as many pods as spec.replicas. */
  private syncReplicaSetPods(rs: KubeReplicaSet, deployment: string): void {
    const pods = this.podsOf(rs);
    const want = specReplicas(rs);
    for (let i = pods.length; i < want; i += 1) this.createPod(rs, deployment, true);
    if (pods.length > want) {
      // getPodsToDelete (ActivePods ranking): Pending before Running, not Ready before Ready,
      // more restarts before fewer, then the most recently created first.
      const restarts = (p: KubePod): number =>
        p.status.containerStatuses.reduce((sum, c) => sum + c.restartCount, 0);
      const ranked = [...pods].sort((a, b) => {
        const pa = a.status.phase === 'Pending' ? 0 : 1;
        const pb = b.status.phase === 'Pending' ? 0 : 1;
        if (pa !== pb) return pa - pb;
        const ra = isPodReady(a) ? 1 : 0;
        const rb = isPodReady(b) ? 1 : 0;
        if (ra !== rb) return ra - rb;
        if (restarts(a) !== restarts(b)) return restarts(b) - restarts(a);
        const sa = this.podSims.get(podKey(a))!.createdAt;
        const sb = this.podSims.get(podKey(b))!.createdAt;
        return sb - sa;
      });
      for (const pod of ranked.slice(0, pods.length - want)) this.deletePod(pod, rs, true);
    }
  }

  private createPod(rs: KubeReplicaSet, deployment: string, withEvent: boolean): KubePod {
    const namespace = rs.metadata.namespace!;
    this.serial += 1;
    const digest = sha256(`${rs.metadata.uid}/${this.serial}`);
    const suffix = [...digest.slice(0, 5)]
      .map((c) => SUFFIX_ALPHABET[Number.parseInt(c, 16) % SUFFIX_ALPHABET.length]!)
      .join('');
    const name = `${rs.metadata.name}-${suffix}`;
    const template = clone(rs.spec.template);
    const now = timestamp(this.nowMs());
    const uid = [8, 4, 4, 4, 12]
      .reduce<string[]>((parts, n, i) => {
        const at = [0, 8, 12, 16, 20][i]!;
        return [...parts, digest.slice(8 + at, 8 + at + n)];
      }, [])
      .join('-');
    const pod: KubePod = {
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name,
        generateName: `${rs.metadata.name}-`,
        namespace,
        uid,
        resourceVersion: this.store.nextResourceVersion(),
        creationTimestamp: now,
        labels: { ...(template.metadata?.labels ?? {}) },
        ...(template.metadata?.annotations === undefined
          ? {}
          : { annotations: { ...template.metadata.annotations } }),
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'ReplicaSet',
            name: rs.metadata.name,
            uid: rs.metadata.uid!,
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: {
        restartPolicy: 'Always',
        terminationGracePeriodSeconds: 30,
        dnsPolicy: 'ClusterFirst',
        serviceAccountName: 'default',
        schedulerName: 'default-scheduler',
        ...template.spec,
        nodeName: NODE,
      },
      status: {
        phase: 'Pending',
        conditions: [],
        hostIP: HOST_IP,
        startTime: now,
        ...(template.spec.initContainers === undefined
          ? {}
          : {
              initContainerStatuses: template.spec.initContainers.map((c, i) => ({
                name: c.name,
                state: {
                  terminated: {
                    exitCode: 0,
                    reason: 'Completed',
                    startedAt: now,
                    finishedAt: now,
                    containerID: `containerd://${sha256(`${uid}/init/${i}`)}`,
                  },
                },
                lastState: {},
                ready: true,
                restartCount: 0,
                image: c.image ?? '',
                imageID: imageIdOf(c.image ?? ''),
                containerID: `containerd://${sha256(`${uid}/init/${i}`)}`,
                started: false,
              })),
            }),
        containerStatuses: [],
        qosClass: qosClassOf(template.spec),
      },
    };
    this.pods.set(podKey(pod), pod);
    const owner = rs.metadata.uid!;
    if (!this.podsByOwner.has(owner)) this.podsByOwner.set(owner, new Set());
    this.podsByOwner.get(owner)!.add(podKey(pod));
    this.podSims.set(podKey(pod), {
      createdAt: this.seconds,
      deployment,
      containers: new Map(),
      readySince: undefined,
    });
    if (withEvent) {
      this.record(rs, 'Normal', 'SuccessfulCreate', {
        component: 'replicaset-controller',
        message: `Created pod: ${name}`,
      });
      this.record(pod, 'Normal', 'Scheduled', {
        component: 'default-scheduler',
        message: `Successfully assigned ${namespace}/${name} to ${NODE}`,
      });
    }
    this.runKubelet(pod);
    return pod;
  }

  private deletePod(pod: KubePod, rs: KubeReplicaSet, withEvent: boolean): void {
    this.unindex(pod);
    this.pods.delete(podKey(pod));
    this.podSims.delete(podKey(pod));
    if (withEvent) {
      this.record(rs, 'Normal', 'SuccessfulDelete', {
        component: 'replicaset-controller',
        message: `Deleted pod: ${pod.metadata.name}`,
      });
      for (const status of pod.status.containerStatuses) {
        if (status.state.running === undefined) continue;
        this.record(pod, 'Normal', 'Killing', {
          component: 'kubelet',
          host: NODE,
          message: `Stopping container ${status.name}`,
          fieldPath: `spec.containers{${status.name}}`,
        });
      }
    }
  }

  private fateOf(namespace: string, deployment: string, image: string | undefined): PodFate {
    return (
      this.fates.get(
        fateKey({ namespace, deployment, ...(image === undefined ? {} : { image }) }),
      ) ??
      this.fates.get(fateKey({ namespace, deployment })) ??
      (image === undefined ? undefined : this.fates.get(fateKey(image))) ??
      DEFAULT_FATE
    );
  }

  /** The kubelet: every container's state at this second, then the pod's phase and conditions. */
  private runKubelet(pod: KubePod): void {
    const k = podKey(pod);
    const sim = this.podSims.get(k);
    if (sim === undefined) return;
    const prepared = pod.spec.containers.map((container) => ({
      container,
      ...this.prepare(pod, sim, container),
    }));
    const signature = prepared
      .map((p) => `${p.container.name}=${p.c.fateKey}|${stageOf(p.fate, p.age, p.c.forced)}`)
      .join(';');
    if (signature === sim.signature) return;
    sim.signature = signature;
    const before = JSON.stringify(pod.status);
    const statuses = prepared.map((p) =>
      this.containerStatus(pod, p.container, p.c, p.fate, p.age),
    );
    statuses.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    const started = statuses.some(
      (s) =>
        s.state.running !== undefined || s.restartCount > 0 || s.state.terminated !== undefined,
    );
    const ready = statuses.every((s) => s.ready);
    const unready = statuses.filter((s) => !s.ready).map((s) => s.name);
    const now = timestamp(this.nowMs());
    const previous = new Map(pod.status.conditions.map((c) => [c.type, c]));
    const condition = (
      type: string,
      status: 'True' | 'False',
      reason?: string,
      message?: string,
    ): KubePodCondition => {
      const was = previous.get(type);
      return {
        type,
        status,
        lastProbeTime: null,
        lastTransitionTime:
          was !== undefined && was.status === status ? was.lastTransitionTime : now,
        ...(reason === undefined ? {} : { reason }),
        ...(message === undefined ? {} : { message }),
      };
    };
    const notReady = `containers with unready status: [${unready.join(' ')}]`;
    pod.status.conditions = [
      condition('PodReadyToStartContainers', 'True'),
      condition('Initialized', 'True'),
      ready
        ? condition('Ready', 'True')
        : condition('Ready', 'False', 'ContainersNotReady', notReady),
      ready
        ? condition('ContainersReady', 'True')
        : condition('ContainersReady', 'False', 'ContainersNotReady', notReady),
      condition('PodScheduled', 'True'),
    ];
    pod.status.phase = started ? 'Running' : 'Pending';
    const ip = `10.0.1.${(Number.parseInt(pod.metadata.uid.slice(0, 2), 16) % 200) + 30}`;
    pod.status.podIP = ip;
    pod.status.podIPs = [{ ip }];
    pod.status.containerStatuses = statuses;
    if (ready && sim.readySince === undefined) sim.readySince = this.seconds;
    if (!ready) sim.readySince = undefined;
    if (JSON.stringify(pod.status) !== before) {
      pod.metadata.resourceVersion = this.store.nextResourceVersion();
    }
  }

  /** A container's fate now, and its age in it (a new fate starts over). */
  private prepare(
    pod: KubePod,
    sim: PodSim,
    container: { name: string; image?: string },
  ): { c: ContainerSim; fate: PodFate; age: number } {
    const fate = this.fateOf(pod.metadata.namespace, sim.deployment, container.image);
    let fk = fateKeys.get(fate);
    if (fk === undefined) {
      fk = JSON.stringify(fate);
      fateKeys.set(fate, fk);
    }
    let c = sim.containers.get(container.name);
    if (c === undefined) {
      c = { fateKey: fk, since: sim.createdAt, forced: false, recorded: new Set() };
      sim.containers.set(container.name, c);
    } else if (c.fateKey !== fk && !c.forced) {
      c.fateKey = fk;
      c.since = this.seconds;
      c.recorded = new Set();
    }
    return { c, fate, age: this.seconds - c.since };
  }

  private containerStatus(
    pod: KubePod,
    container: { name: string; image?: string },
    c: ContainerSim,
    fate: PodFate,
    age: number,
  ): KubeContainerStatus {
    const image = container.image ?? '';
    const at = (second: number): string => timestamp(this.startMs + second * 1000);
    const containerID = (run: number): string =>
      `containerd://${sha256(`${pod.metadata.uid}/${container.name}/${run}`)}`;
    const imageID = imageIdOf(image);
    const base = { name: container.name, image, lastState: {} as KubeContainerState };
    const fieldPath = `spec.containers{${container.name}}`;
    const once = (key: string, f: () => void): void => {
      if (c.recorded.has(key)) return;
      c.recorded.add(key);
      f();
    };
    const kubelet = (type: 'Normal' | 'Warning', reason: string, message: string): void =>
      this.record(pod, type, reason, { component: 'kubelet', host: NODE, message, fieldPath });
    const creating = (): KubeContainerStatus => ({
      ...base,
      state: { waiting: { reason: 'ContainerCreating' } },
      ready: false,
      restartCount: 0,
      imageID: '',
      started: false,
    });
    const running = (startSecond: number, isReady: boolean): KubeContainerStatus => {
      once('started', () => {
        kubelet('Normal', 'Pulled', `Container image "${image}" already present on machine`);
        kubelet('Normal', 'Created', `Created container: ${container.name}`);
        kubelet('Normal', 'Started', `Started container ${container.name}`);
      });
      return {
        ...base,
        state: { running: { startedAt: at(startSecond) } },
        ready: isReady,
        restartCount: 0,
        imageID,
        containerID: containerID(0),
        started: true,
      };
    };

    if (c.forced) return running(c.since, true);
    switch (fate.kind) {
      case 'ready': {
        const start = c.since + Math.min(fate.afterTicks, 1);
        if (this.seconds < start) return creating();
        return running(start, age >= fate.afterTicks);
      }
      case 'never-ready': {
        if (age < 1) return creating();
        once('unhealthy', () =>
          kubelet(
            'Warning',
            'Unhealthy',
            'Readiness probe failed: HTTP probe failed with statuscode: 503',
          ),
        );
        return running(c.since + 1, false);
      }
      case 'config-error': {
        if (age < 1) return creating();
        const message =
          fate.message ??
          defaultConfigErrorMessage(fate.reason, image, this.podSims.get(podKey(pod))!.deployment);
        once('error', () => {
          if (fate.reason === 'InvalidImageName') kubelet('Warning', 'InspectFailed', message);
          kubelet(
            'Warning',
            'Failed',
            `Error: ${fate.reason === 'InvalidImageName' ? fate.reason : message}`,
          );
        });
        return {
          ...base,
          state: { waiting: { reason: fate.reason, message } },
          ready: false,
          restartCount: 0,
          imageID: '',
          started: false,
        };
      }
      case 'image-pull-failure': {
        if (age < 1) return creating();
        const attempts = attemptTimes(IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_INITIAL * 2, age - 1);
        const last = attempts.length - 1;
        const lastAt = attempts[last]!;
        const message =
          fate.message ??
          `rpc error: code = NotFound desc = failed to pull and unpack image "${image}": failed to resolve reference "${image}": ${image}: not found`;
        const pulling = age - 1 === lastAt;
        if (pulling) {
          once(`pull-${last}`, () => {
            kubelet('Normal', 'Pulling', `Pulling image "${image}"`);
            kubelet('Warning', 'Failed', `Failed to pull image "${image}": ${message}`);
            kubelet('Warning', 'Failed', 'Error: ErrImagePull');
          });
        } else {
          once(`backoff-${last}`, () => {
            kubelet('Normal', 'BackOff', `Back-off pulling image "${image}"`);
            kubelet('Warning', 'Failed', 'Error: ImagePullBackOff');
          });
        }
        return {
          ...base,
          state: {
            waiting: pulling
              ? { reason: 'ErrImagePull', message }
              : {
                  reason: 'ImagePullBackOff',
                  // Kubernetes 1.32+ (kubernetes/kubernetes#127918): the last pull error follows.
                  message: `Back-off pulling image "${image}": ErrImagePull: ${message}`,
                },
          },
          ready: false,
          restartCount: 0,
          imageID: '',
          started: false,
        };
      }
      case 'crash-loop': {
        if (age < 1) return creating();
        const exitCode = fate.exitCode ?? 1;
        // Runs: the first at once, the first restart at once, then 10 s doubling to 300 s.
        const runs = attemptTimes(1, CRASH_BACKOFF_INITIAL, age - 1);
        const k = runs.length - 1;
        const lastRun = runs[k]!;
        const terminated = (run: number): KubeContainerState => ({
          terminated: {
            exitCode,
            reason: 'Error',
            startedAt: at(c.since + 1 + runs[run]!),
            finishedAt: at(c.since + 1 + runs[run]!),
            containerID: containerID(run),
          },
        });
        const lastState = k === 0 ? {} : terminated(k - 1);
        once(`run-${k}`, () => {
          if (k === 0) {
            kubelet('Normal', 'Pulled', `Container image "${image}" already present on machine`);
          }
          kubelet('Normal', 'Created', `Created container: ${container.name}`);
          kubelet('Normal', 'Started', `Started container ${container.name}`);
        });
        if (age - 1 === lastRun) {
          return {
            ...base,
            state: terminated(k),
            lastState,
            ready: false,
            restartCount: k,
            imageID,
            containerID: containerID(k),
            started: false,
          };
        }
        const backoff =
          attemptTimes(1, CRASH_BACKOFF_INITIAL, lastRun + BACKOFF_MAX * 2)[k + 1]! - lastRun;
        const podRef = `${pod.metadata.name}_${pod.metadata.namespace}(${pod.metadata.uid})`;
        once(`backoff-${k}`, () =>
          kubelet(
            'Warning',
            'BackOff',
            `Back-off restarting failed container ${container.name} in pod ${podRef}`,
          ),
        );
        return {
          ...base,
          state: {
            waiting: {
              reason: 'CrashLoopBackOff',
              message: `back-off ${goDuration(backoff)} restarting failed container=${container.name} pod=${podRef}`,
            },
          },
          lastState: terminated(k),
          ready: false,
          restartCount: k,
          imageID,
          containerID: containerID(k),
          started: false,
        };
      }
    }
  }

  /** ReplicaSet status from its pods (replicas, ready, available after minReadySeconds). */
  private syncReplicaSetStatus(rs: KubeReplicaSet, d: KubeDeployment): void {
    const pods = this.podsOf(rs);
    if (
      pods.length === 0 &&
      rs.status?.replicas === 0 &&
      rs.status.readyReplicas === undefined &&
      rs.status.observedGeneration === (rs.metadata.generation ?? 1)
    ) {
      return; // scaled to zero and said so
    }
    const minReady = count(d.spec.minReadySeconds);
    const ready = pods.filter(isPodReady).length;
    const available = pods.filter((p) => {
      const since = this.podSims.get(podKey(p))?.readySince;
      return since !== undefined && this.seconds - since >= minReady;
    }).length;
    const status = {
      replicas: pods.length,
      ...(pods.length > 0 ? { fullyLabeledReplicas: pods.length } : {}),
      ...(ready > 0 ? { readyReplicas: ready } : {}),
      ...(available > 0 ? { availableReplicas: available } : {}),
      observedGeneration: rs.metadata.generation ?? 1,
    };
    if (JSON.stringify(status) === JSON.stringify(rs.status)) return;
    const next = clone(rs);
    next.status = status;
    this.store.writeReplicaSet(next, rs);
  }

  /** The resourceVersions of a Deployment and its ReplicaSets: what its syncs read. */
  private versions(d: KubeDeployment): string {
    return [d, ...this.store.replicaSetsOf(d)].map((o) => o.metadata.resourceVersion).join(',');
  }

  /** calculateStatus + syncRolloutStatus (+ checkPausedConditions). */
  private syncDeploymentStatus(d: KubeDeployment): void {
    // The same objects as at the last sync give the same status, but for the clock: the
    // progress deadline of a Progressing condition that can still time out.
    const memo = this.deploymentSim(d.metadata.namespace!, d.metadata.name);
    const seen = this.versions(d);
    if (memo.statusAt === seen) {
      const cond = d.status?.conditions?.find((c) => c.type === PROGRESSING);
      const timed =
        cond !== undefined &&
        !['NewReplicaSetAvailable', 'ProgressDeadlineExceeded', 'DeploymentPaused'].includes(
          cond.reason ?? '',
        );
      const limit =
        (d.spec.progressDeadlineSeconds as number | undefined) ?? DEFAULT_PROGRESS_DEADLINE;
      if (
        !timed ||
        d.spec.paused === true ||
        Date.parse(cond.lastUpdateTime as string) + limit * 1000 >= this.nowMs()
      )
        return;
    }
    const namespace = d.metadata.namespace!;
    const name = d.metadata.name;
    const { newRS, old } = this.split(d);
    const all = newRS === undefined ? old : [newRS, ...old];
    const replicas = desiredReplicas(d);
    const strategy = resolveStrategy(d);
    const deadline = d.spec.progressDeadlineSeconds as number | undefined;
    const hasDeadline = deadline !== 2147483647;
    const deadlineSeconds = deadline ?? DEFAULT_PROGRESS_DEADLINE;
    const sum = (f: (rs: KubeReplicaSet) => number): number => all.reduce((s, rs) => s + f(rs), 0);
    const actual = sum((rs) => count(rs.status?.replicas));
    const updated = newRS === undefined ? 0 : count(newRS.status?.replicas);
    const ready = sum((rs) => count(rs.status?.readyReplicas));
    const available = sum((rs) => count(rs.status?.availableReplicas));
    const unavailable = Math.max(0, sum(specReplicas) - available);
    const nowIso = timestamp(this.nowMs());
    const conditions: DeploymentCondition[] = clone(d.status?.conditions ?? []);
    const sim = this.deploymentSim(namespace, name);

    const set = (
      type: string,
      status: string,
      reason: string,
      message: string,
      at = nowIso,
    ): void => {
      // SetDeploymentCondition: a no-op for the same status and reason; the transition time kept
      // when only the reason changes; the condition moves to the end.
      const i = conditions.findIndex((c) => c.type === type);
      const current = i < 0 ? undefined : conditions[i]!;
      if (current !== undefined && current.status === status && current.reason === reason) return;
      const transition =
        current !== undefined && current.status === status
          ? (current.lastTransitionTime as string)
          : at;
      if (i >= 0) conditions.splice(i, 1);
      conditions.push({
        type,
        status,
        lastUpdateTime: at,
        lastTransitionTime: transition,
        reason,
        message,
      });
    };
    const progressingCondition = (): DeploymentCondition | undefined =>
      conditions.find((c) => c.type === PROGRESSING);

    // sync.go getNewReplicaSet: the Progressing condition when the new ReplicaSet appeared.
    if (
      sim.createdReplicaSet !== undefined &&
      newRS?.metadata.name === sim.createdReplicaSet.name
    ) {
      if (hasDeadline && d.spec.paused !== true) {
        set(
          PROGRESSING,
          'True',
          'NewReplicaSetCreated',
          `Created new replica set "${newRS.metadata.name}"`,
          timestamp(sim.createdReplicaSet.atMs),
        );
      }
      sim.createdReplicaSet = undefined;
    } else if (
      newRS !== undefined &&
      hasDeadline &&
      progressingCondition() === undefined &&
      d.spec.paused !== true
    ) {
      set(
        PROGRESSING,
        'True',
        'FoundNewReplicaSet',
        `Found new replica set "${newRS.metadata.name}"`,
      );
    }

    // checkPausedConditions
    const cond = progressingCondition();
    if (hasDeadline) {
      if (
        d.spec.paused === true &&
        cond?.reason !== 'DeploymentPaused' &&
        cond?.reason !== 'ProgressDeadlineExceeded'
      ) {
        set(PROGRESSING, 'Unknown', 'DeploymentPaused', 'Deployment is paused');
      } else if (d.spec.paused !== true && cond?.reason === 'DeploymentPaused') {
        set(PROGRESSING, 'Unknown', 'DeploymentResumed', 'Deployment is resumed');
      }
    }

    const status: Record<string, unknown> = {
      observedGeneration: d.metadata.generation ?? 1,
      ...(actual > 0 ? { replicas: actual } : {}),
      ...(updated > 0 ? { updatedReplicas: updated } : {}),
      ...(ready > 0 ? { readyReplicas: ready } : {}),
      ...(available > 0 ? { availableReplicas: available } : {}),
      ...(unavailable > 0 ? { unavailableReplicas: unavailable } : {}),
    };
    if (available >= replicas - strategy.maxUnavailable) {
      set(AVAILABLE, 'True', 'MinimumReplicasAvailable', 'Deployment has minimum availability.');
    } else {
      set(
        AVAILABLE,
        'False',
        'MinimumReplicasUnavailable',
        'Deployment does not have minimum availability.',
      );
    }

    // syncRolloutStatus (not run for a paused Deployment: sync() only)
    if (!hasDeadline) {
      const i = conditions.findIndex((c) => c.type === PROGRESSING);
      if (i >= 0) conditions.splice(i, 1);
    } else if (d.spec.paused !== true) {
      const current = progressingCondition();
      const complete = actual === updated && current?.reason === 'NewReplicaSetAvailable';
      if (!complete) {
        const rsName = newRS === undefined ? undefined : `ReplicaSet "${newRS.metadata.name}"`;
        const subject = rsName ?? `Deployment "${name}"`;
        const was = d.status ?? {};
        const isComplete =
          updated === replicas &&
          actual === replicas &&
          available === replicas &&
          (d.metadata.generation ?? 1) <= (status.observedGeneration as number);
        const progressing =
          updated > count(was.updatedReplicas) ||
          actual - updated < count(was.replicas) - count(was.updatedReplicas) ||
          ready > count(was.readyReplicas) ||
          available > count(was.availableReplicas);
        if (isComplete) {
          set(
            PROGRESSING,
            'True',
            'NewReplicaSetAvailable',
            `${subject} has successfully progressed.`,
          );
        } else if (progressing) {
          // Removed then set: every bit of progress refreshes lastUpdateTime (the deadline's clock).
          const i = conditions.findIndex((c) => c.type === PROGRESSING);
          const transition =
            i >= 0 && conditions[i]!.status === 'True'
              ? (conditions[i]!.lastTransitionTime as string)
              : nowIso;
          if (i >= 0) conditions.splice(i, 1);
          conditions.push({
            type: PROGRESSING,
            status: 'True',
            lastUpdateTime: nowIso,
            lastTransitionTime: transition,
            reason: 'ReplicaSetUpdated',
            message: `${subject} is progressing.`,
          });
        } else if (current !== undefined && current.reason !== 'NewReplicaSetAvailable') {
          const from = Date.parse(current.lastUpdateTime as string);
          if (
            current.reason === 'ProgressDeadlineExceeded' ||
            from + deadlineSeconds * 1000 < this.nowMs()
          ) {
            set(
              PROGRESSING,
              'False',
              'ProgressDeadlineExceeded',
              `${subject} has timed out progressing.`,
            );
          }
        }
      }
    }
    if (conditions.length > 0) status.conditions = conditions;
    if (d.status?.collisionCount !== undefined) status.collisionCount = d.status.collisionCount;
    if (JSON.stringify(status) !== JSON.stringify(d.status)) {
      const next = clone(d);
      next.status = status;
      this.store.writeDeployment(next, d);
    }
    const written = this.store.deployments().find((x) => x.metadata.uid === d.metadata.uid);
    if (written !== undefined) memo.statusAt = this.versions(written);
  }

  // ---- events ----

  private record(
    object: {
      metadata: { name: string; namespace?: string; uid?: string; resourceVersion?: string };
      kind?: string;
      apiVersion?: string;
    },
    type: 'Normal' | 'Warning',
    reason: string,
    what: { component: string; message: string; host?: string; fieldPath?: string },
  ): void {
    const namespace = object.metadata.namespace!;
    const kind = object.kind ?? 'Deployment';
    // The recorder's aggregation key: source, involved object, type, reason, message.
    const k = [
      namespace,
      object.metadata.uid,
      what.component,
      what.fieldPath ?? '',
      type,
      reason,
      what.message,
    ].join('\u0000');
    const now = timestamp(this.nowMs());
    const existing = this.events.get(k);
    if (existing !== undefined) {
      existing.count += 1;
      existing.lastTimestamp = now;
      existing.metadata.resourceVersion = this.store.nextResourceVersion();
      return;
    }
    this.serial += 1;
    const hex = sha256(`event/${this.serial}`);
    this.events.set(k, {
      metadata: {
        name: `${object.metadata.name}.${hex.slice(0, 16)}`,
        namespace,
        uid: `${hex.slice(16, 24)}-${hex.slice(24, 28)}-${hex.slice(28, 32)}-${hex.slice(32, 36)}-${hex.slice(36, 48)}`,
        resourceVersion: this.store.nextResourceVersion(),
        creationTimestamp: now,
      },
      involvedObject: {
        kind,
        namespace,
        name: object.metadata.name,
        uid: object.metadata.uid ?? '',
        apiVersion: object.apiVersion ?? 'apps/v1',
        ...(object.metadata.resourceVersion === undefined
          ? {}
          : { resourceVersion: object.metadata.resourceVersion }),
        ...(what.fieldPath === undefined ? {} : { fieldPath: what.fieldPath }),
      },
      reason,
      message: what.message,
      source: {
        component: what.component,
        ...(what.host === undefined ? {} : { host: what.host }),
      },
      firstTimestamp: now,
      lastTimestamp: now,
      count: 1,
      type,
      eventTime: null,
      reportingComponent: what.component === 'kubelet' ? 'kubelet' : what.component,
      reportingInstance: what.host ?? '',
    });
  }
}

/** The runtime's image id: the repository at the digest (one made up for a tag). */
function imageIdOf(image: string): string {
  return image.includes('@')
    ? image.replace(/:[^:/@]+@/, '@')
    : `${image.replace(/:[^:/]+$/, '')}@sha256:${sha256(image)}`;
}

/** The pod's QoS class from its containers' requests and limits (v1 qos.GetPodQOS, cpu and memory). */
function qosClassOf(spec: {
  containers: { [field: string]: unknown }[];
  initContainers?: { [field: string]: unknown }[];
}): 'BestEffort' | 'Burstable' | 'Guaranteed' {
  type Resources = { requests?: Record<string, unknown>; limits?: Record<string, unknown> };
  const all = [...(spec.initContainers ?? []), ...spec.containers].map(
    (c) => (c.resources ?? {}) as Resources,
  );
  const any = all.some(
    (r) => Object.keys(r.requests ?? {}).length > 0 || Object.keys(r.limits ?? {}).length > 0,
  );
  if (!any) return 'BestEffort';
  const guaranteed = all.every((r) =>
    ['cpu', 'memory'].every(
      (k) =>
        r.limits?.[k] !== undefined &&
        (r.requests?.[k] === undefined ||
          JSON.stringify(r.requests[k]) === JSON.stringify(r.limits[k])),
    ),
  );
  return guaranteed ? 'Guaranteed' : 'Burstable';
}

/** A fate's text, computed once per fate object. */
const fateKeys = new WeakMap<PodFate, string>();

/** What a container's status depends on besides its fate: equal stages, equal statuses. */
function stageOf(fate: PodFate, age: number, forced: boolean): string {
  if (forced) return 'forced';
  if (fate.kind === 'ready') {
    if (age < Math.min(fate.afterTicks, 1)) return 'creating';
    return age >= fate.afterTicks ? 'ready' : 'running';
  }
  if (age < 1) return 'creating';
  if (fate.kind === 'image-pull-failure') {
    const attempts = attemptTimes(IMAGE_BACKOFF_INITIAL, IMAGE_BACKOFF_INITIAL * 2, age - 1);
    return `${attempts.length}:${attempts.at(-1) === age - 1}`;
  }
  if (fate.kind === 'crash-loop') {
    const runs = attemptTimes(1, CRASH_BACKOFF_INITIAL, age - 1);
    return `${runs.length}:${runs.at(-1) === age - 1}`;
  }
  return 'on';
}

const podKey = (pod: KubePod): string => `${pod.metadata.namespace}/${pod.metadata.name}`;

export function isPodReady(pod: KubePod): boolean {
  return pod.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True');
}

function byCreation(a: KubeReplicaSet, b: KubeReplicaSet): number {
  const ta = a.metadata.creationTimestamp ?? '';
  const tb = b.metadata.creationTimestamp ?? '';
  if (ta !== tb) return ta < tb ? -1 : 1;
  return a.metadata.name < b.metadata.name ? -1 : a.metadata.name > b.metadata.name ? 1 : 0;
}

/** A template's identity ignoring the pod-template-hash label (EqualIgnoreHash). */
function templateWithoutHash(template: KubeDeployment['spec']['template']): string {
  const t = clone(template);
  if (t.metadata?.labels !== undefined) delete t.metadata.labels['pod-template-hash'];
  return canonical(t);
}

function canonical(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const o = value as Record<string, unknown>;
    return `{${Object.keys(o)
      .filter((k) => o[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(o[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

function fateKey(target: FateTarget): string {
  if (typeof target === 'string') {
    if (target === '')
      throw new Error('setFate: the image is empty; give the image as the pod template names it');
    return `image ${target}`;
  }
  if (target.namespace === '' || target.deployment === '') {
    throw new Error(`setFate: namespace and deployment must be set, got ${JSON.stringify(target)}`);
  }
  return `deployment ${target.namespace}/${target.deployment}${target.image === undefined ? '' : ` ${target.image}`}`;
}

function validateFate(fate: PodFate | undefined): void {
  if (fate === undefined) return;
  const bad = (why: string): never => {
    throw new Error(`setFate: ${why}, got ${JSON.stringify(fate)}`);
  };
  switch (fate.kind) {
    case 'ready':
      if (!Number.isInteger(fate.afterTicks) || fate.afterTicks < 0) {
        bad('afterTicks must be a whole number of ticks, at least 0');
      }
      return;
    case 'crash-loop':
      if (
        fate.exitCode !== undefined &&
        (!Number.isInteger(fate.exitCode) || fate.exitCode < 1 || fate.exitCode > 255)
      ) {
        bad('exitCode must be 1 to 255 (0 is a clean exit, not a crash)');
      }
      return;
    case 'config-error':
      if (
        !['CreateContainerConfigError', 'CreateContainerError', 'InvalidImageName'].includes(
          fate.reason,
        )
      ) {
        bad('reason must be CreateContainerConfigError, CreateContainerError or InvalidImageName');
      }
      return;
    case 'image-pull-failure':
    case 'never-ready':
      return;
    default:
      bad('kind must be ready, image-pull-failure, crash-loop, never-ready or config-error');
  }
}

function defaultConfigErrorMessage(
  reason: 'CreateContainerConfigError' | 'CreateContainerError' | 'InvalidImageName',
  image: string,
  deployment: string,
): string {
  switch (reason) {
    case 'CreateContainerConfigError':
      return `configmap "${deployment}-config" not found`;
    case 'CreateContainerError':
      return 'context deadline exceeded';
    case 'InvalidImageName':
      return `Failed to apply default image tag "${image}": couldn't parse image name "${image}": invalid reference format`;
  }
}
