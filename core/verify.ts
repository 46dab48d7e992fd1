/**
 * verify: did our change of a Deployment's image end Ready, fail, or stop being ours? One verdict
 * per check, judged from the Deployment, its ReplicaSets and the new ReplicaSet's pods. `judge` is
 * pure (the clock is a parameter); `check` reads the three and judges. The deployer's verify step
 * (Step Functions) and `ship deploy` / `ship rollback` call the same two, so they agree.
 *
 * The rules, in order:
 * 1. `superseded`: the container no longer runs our image (a newer deploy, ours or a person's);
 * 2. `changed`: the verification record on the Deployment no longer names our execution and image
 *    (someone else took it, or removed it); the rollout is paused (`spec.paused`, or for the
 *    deployer the `paused` annotation: a person said hands off); the spec was edited after our
 *    PATCH (metadata.generation above ours). Verification stops; nothing is rolled back;
 * 3. `ready`: `kubectl rollout status` says successfully rolled out (core/rollout.ts), on the
 *    status of our own change: status.observedGeneration ≥ our generation, never before;
 * 4. `failed` ProgressDeadlineExceeded: the controller's own verdict, on our generation;
 * 5. `failed` fast: a container of a pod of the new ReplicaSet waits with a reason that does not
 *    pass by itself (ErrImagePull/ImagePullBackOff, CrashLoopBackOff, CreateContainerConfigError,
 *    CreateContainerError, InvalidImageName), or has restarted `restartLimit` times: seen on
 *    `graceChecks` consecutive checks (the `strike` a progressing verdict carries is the next
 *    check's `previous`), so one transient pull error is not a failure;
 * 6. `failed` Deadline: the service's verify deadline passed since the PATCH;
 * 7. otherwise `progressing`, with kubectl's sentence.
 */
import { ANNOTATIONS, type VerificationRecord } from '../lib/deployer-contract';
import { rolloutStatus } from './rollout';
import type {
  ContainerStatus,
  Deployment,
  KubeReader,
  Pod,
  ReplicaSet,
  VerifyTarget,
} from './types';

export type { VerifyTarget } from './types';

/** A failing pod state seen on consecutive checks: carried from one check to the next. */
export interface FailureStrike {
  /** The waiting reason (`ImagePullBackOff`, …) or `RestartLoop`. */
  readonly reason: string;
  readonly pod: string;
  readonly container: string;
  /** The kubelet's message (or the last termination's). */
  readonly message: string;
  /** On how many consecutive checks a failure of this kind was seen (1 on the first). */
  readonly count: number;
}

export type FailureKind =
  | 'ErrImagePull'
  | 'ImagePullBackOff'
  | 'CrashLoopBackOff'
  | 'CreateContainerConfigError'
  | 'CreateContainerError'
  | 'InvalidImageName'
  | 'RestartLoop'
  | 'ProgressDeadlineExceeded'
  | 'Deadline';

export type Verdict =
  | { readonly state: 'progressing'; readonly message: string; readonly strike?: FailureStrike }
  | { readonly state: 'ready'; readonly message: string; readonly seconds: number }
  | {
      readonly state: 'failed';
      readonly kind: FailureKind;
      /** `pod hasher-5c9f… ImagePullBackOff: <the kubelet's message>` */
      readonly message: string;
      readonly pod?: string;
    }
  | { readonly state: 'superseded'; readonly message: string; readonly image: string }
  | { readonly state: 'changed'; readonly message: string };

export interface JudgeSettings {
  /** Consecutive checks a fast failure must be seen on. @default 2 */
  readonly graceChecks: number;
  /** A container restarted this many times is in a restart loop. @default 3 */
  readonly restartLimit: number;
}

export const DEFAULT_JUDGE_SETTINGS: JudgeSettings = { graceChecks: 2, restartLimit: 3 };

/**
 * The verify deadline when none is configured: well under Kubernetes' 600 s progress deadline,
 * above a normal rollout of a DockerCoins service (image pull and start, seconds to a minute).
 */
export const DEFAULT_VERIFY_DEADLINE_SECONDS = 180;

export interface JudgeInput {
  readonly target: VerifyTarget;
  readonly deployment: Deployment | undefined;
  readonly replicaSets: readonly ReplicaSet[];
  readonly pods: readonly Pod[];
  readonly now: Date;
  /** The strike of the previous check's progressing verdict. */
  readonly previous?: FailureStrike;
  /** @default DEFAULT_JUDGE_SETTINGS */
  readonly settings?: JudgeSettings;
}

/** Waiting reasons that do not pass by themselves (the kubelet's, k8s.io/kubernetes/pkg/kubelet). */
const FAST_FAILURES: ReadonlySet<string> = new Set([
  'ErrImagePull',
  'ImagePullBackOff',
  'CrashLoopBackOff',
  'CreateContainerConfigError',
  'CreateContainerError',
  'InvalidImageName',
]);

/**
 * The kubelet alternates ErrImagePull and ImagePullBackOff, and a crash-looping container
 * alternates CrashLoopBackOff and Running between restarts: each is one failure, seen twice.
 */
const family = (reason: string): string =>
  reason === 'ErrImagePull' || reason === 'ImagePullBackOff'
    ? 'image-pull'
    : reason === 'CrashLoopBackOff' || reason === 'RestartLoop'
      ? 'crash'
      : reason;

/** Kubernetes' `pod-template-hash` label on a ReplicaSet and its pods. */
export const POD_TEMPLATE_HASH = 'pod-template-hash';
const REVISION = 'deployment.kubernetes.io/revision';

export function judge(input: JudgeInput): Verdict {
  const { target, deployment, now } = input;
  const settings = input.settings ?? DEFAULT_JUDGE_SETTINGS;
  const where = `Deployment ${target.namespace}/${target.deployment}`;
  if (deployment === undefined) {
    return { state: 'changed', message: `${where} was deleted; verification stopped.` };
  }
  const container = deployment.spec?.template?.spec?.containers?.find(
    (c) => c.name === target.container,
  );
  if (container?.image !== target.image) {
    const image = container?.image ?? '';
    return {
      state: 'superseded',
      image,
      message:
        `${where} container ${target.container} now runs ${image === '' ? 'no image' : image}, not ` +
        `${target.image}: a newer deploy replaced it; verification stopped, nothing rolled back.`,
    };
  }
  const record = readVerification(deployment);
  if (record === undefined || record.execution !== target.execution) {
    return {
      state: 'changed',
      message:
        `${where}: the verification record ${record === undefined ? 'was removed' : `now names ${record.execution}`}` +
        `, not ${target.execution}; verification stopped, nothing rolled back.`,
    };
  }
  if (record.digest !== target.digest) {
    return {
      state: 'changed',
      message: `${where}: the verification record is about ${record.digest}, not ${target.digest}; verification stopped.`,
    };
  }
  if (deployment.spec?.paused === true) {
    return {
      state: 'changed',
      message: `${where}: the rollout was paused (kubectl rollout pause); verification stopped, nothing rolled back.`,
    };
  }
  if (
    !target.execution.startsWith('ship:') &&
    deployment.metadata.annotations?.[ANNOTATIONS.paused] === 'true'
  ) {
    return {
      state: 'changed',
      message: `${where}: automatic deploys were paused (ship pause); verification stopped, nothing rolled back.`,
    };
  }
  const generation = deployment.metadata.generation ?? 0;
  if (generation > target.generation) {
    return {
      state: 'changed',
      message:
        `${where} was edited after our change (generation ${generation}, ours ${target.generation}); ` +
        'verification stopped, nothing rolled back.',
    };
  }

  const observedGeneration = deployment.status?.observedGeneration;
  const observed =
    typeof observedGeneration === 'number' && observedGeneration >= target.generation;
  const rollout = rolloutStatus(deployment);
  const elapsed = Math.max(0, Math.round((now.getTime() - Date.parse(target.startedAt)) / 1000));
  if (observed && rollout.state === 'ready') {
    return { state: 'ready', seconds: elapsed, message: rollout.message };
  }
  if (observed && rollout.state === 'failed') {
    return {
      state: 'failed',
      kind: 'ProgressDeadlineExceeded',
      message: `${rollout.message} (ProgressDeadlineExceeded)`,
    };
  }

  const seen = observed ? podFailure(input, deployment, settings) : undefined;
  let strike: FailureStrike | undefined;
  if (seen !== undefined) {
    const previous = input.previous;
    const count =
      previous !== undefined && family(previous.reason) === family(seen.reason)
        ? previous.count + 1
        : 1;
    strike = { ...seen, count };
    if (count >= settings.graceChecks) {
      return {
        state: 'failed',
        kind: seen.reason as FailureKind,
        pod: seen.pod,
        message: `pod ${seen.pod} ${seen.reason}: ${seen.message}`,
      };
    }
  }
  if (elapsed >= target.deadlineSeconds) {
    const last =
      strike === undefined
        ? ''
        : `; last seen: pod ${strike.pod} ${strike.reason}: ${strike.message}`;
    return {
      state: 'failed',
      kind: 'Deadline',
      ...(strike === undefined ? {} : { pod: strike.pod }),
      message: `not Ready within the verify deadline of ${target.deadlineSeconds} s: ${rollout.message}${last}`,
    };
  }
  const message =
    strike === undefined
      ? rollout.message
      : `${rollout.message} (pod ${strike.pod} ${strike.reason}, seen ${strike.count} of ${settings.graceChecks})`;
  return strike === undefined
    ? { state: 'progressing', message }
    : { state: 'progressing', message, strike };
}

/**
 * The ReplicaSet of the Deployment's current template: owned by it (its controller reference),
 * with the revision the Deployment's controller wrote on it, and our image.
 */
export function newReplicaSet(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
  target: Pick<VerifyTarget, 'container' | 'image'>,
): ReplicaSet | undefined {
  const uid = deployment.metadata.uid;
  const owned = replicaSets.filter((rs) => {
    const owner = rs.metadata.ownerReferences?.find((o) => o.controller === true);
    return owner !== undefined && (typeof uid !== 'string' || owner.uid === uid);
  });
  const ours = owned.filter(
    (rs) =>
      rs.spec?.template?.spec?.containers?.find((c) => c.name === target.container)?.image ===
      target.image,
  );
  const revision = deployment.metadata.annotations?.[REVISION];
  const byRevision = ours.find((rs) => rs.metadata.annotations?.[REVISION] === revision);
  if (byRevision !== undefined) return byRevision;
  // Before the controller writes the Deployment's revision: the newest of ours.
  return [...ours].sort(
    (a, b) =>
      Number(b.metadata.annotations?.[REVISION] ?? 0) -
      Number(a.metadata.annotations?.[REVISION] ?? 0),
  )[0];
}

/** The first failing container of the new ReplicaSet's pods, by pod name for a stable answer. */
function podFailure(
  input: JudgeInput,
  deployment: Deployment,
  settings: JudgeSettings,
): Omit<FailureStrike, 'count'> | undefined {
  const previous = input.previous;
  const rs = newReplicaSet(deployment, input.replicaSets, input.target);
  if (rs === undefined) return undefined;
  const hash = rs.metadata.labels?.[POD_TEMPLATE_HASH];
  const pods = input.pods
    .filter((pod) => {
      const owner = pod.metadata.ownerReferences?.find((o) => o.controller === true);
      if (owner === undefined) return false;
      if (typeof rs.metadata.uid === 'string' && owner.uid !== rs.metadata.uid) return false;
      return hash === undefined || pod.metadata.labels?.[POD_TEMPLATE_HASH] === hash;
    })
    .filter((pod) => pod.metadata.deletionTimestamp === undefined)
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const pod of pods) {
    const statuses: ContainerStatus[] = [
      ...(pod.status?.initContainerStatuses ?? []),
      ...(pod.status?.containerStatuses ?? []),
    ];
    for (const status of statuses) {
      const waiting = status.state?.waiting;
      if (waiting?.reason !== undefined && FAST_FAILURES.has(waiting.reason)) {
        return {
          reason: waiting.reason,
          pod: pod.metadata.name,
          container: status.name,
          message: oneLine(waiting.message ?? lastTermination(status) ?? waiting.reason),
        };
      }
      const restarts = status.restartCount ?? 0;
      const crashed =
        status.ready !== true && restarts > 0 && status.lastState?.terminated !== undefined;
      if (
        crashed &&
        previous !== undefined &&
        family(previous.reason) === 'crash' &&
        restarts < settings.restartLimit
      ) {
        // Running between two crashes: the crash loop goes on, not a new start.
        return {
          reason: 'CrashLoopBackOff',
          pod: pod.metadata.name,
          container: status.name,
          message: oneLine(
            `container ${status.name} restarted ${restarts} times; last: ${lastTermination(status)}`,
          ),
        };
      }
      if (restarts >= settings.restartLimit && status.ready !== true) {
        return {
          reason: 'RestartLoop',
          pod: pod.metadata.name,
          container: status.name,
          message: oneLine(
            `container ${status.name} restarted ${status.restartCount} times` +
              (lastTermination(status) === undefined ? '' : `; last: ${lastTermination(status)}`),
          ),
        };
      }
    }
  }
  return undefined;
}

function lastTermination(status: ContainerStatus): string | undefined {
  const t = status.lastState?.terminated;
  if (t === undefined) return undefined;
  return `terminated with exit code ${t.exitCode ?? '?'}${t.reason === undefined ? '' : ` (${t.reason})`}${
    t.message === undefined ? '' : `: ${t.message}`
  }`;
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 400);

/**
 * Reads the Deployment and judges; lists its ReplicaSets and the new ReplicaSet's pods only when
 * they can change the verdict (our generation observed and not yet decided), so a check of a
 * rollout the controller has not picked up, or of one already Ready, is one GET. Reads only:
 * recording the verdict is rollback.ts's `recordVerdict`. Errors of the reads are thrown
 * (TransientError: the caller retries the check).
 */
export async function check(
  kube: KubeReader,
  target: VerifyTarget,
  now: Date,
  previous?: FailureStrike,
  settings: JudgeSettings = DEFAULT_JUDGE_SETTINGS,
): Promise<Verdict> {
  const deployment = await kube.getDeployment(target.namespace, target.deployment);
  const input = {
    target,
    deployment,
    now,
    settings,
    ...(previous === undefined ? {} : { previous }),
  };
  const first = judge({ ...input, replicaSets: [], pods: [] });
  const observed = (deployment?.status?.observedGeneration ?? 0) as number;
  const decided =
    first.state !== 'progressing' && !(first.state === 'failed' && first.kind === 'Deadline');
  if (deployment === undefined || decided || observed < target.generation) return first;
  const selector = labelSelector(deployment);
  if (selector === undefined) return first;
  const replicaSets = await kube.listReplicaSets(target.namespace, selector);
  const rs = newReplicaSet(deployment, replicaSets, target);
  const hash = rs?.metadata.labels?.[POD_TEMPLATE_HASH];
  const pods =
    hash === undefined
      ? []
      : await kube.listPods(target.namespace, `${selector},${POD_TEMPLATE_HASH}=${hash}`);
  return judge({ ...input, replicaSets, pods });
}

/** The Deployment's spec.selector.matchLabels as an equality selector; undefined without one. */
export function labelSelector(deployment: Deployment): string | undefined {
  const selector = deployment.spec?.selector as
    { matchLabels?: Record<string, unknown> } | undefined;
  const labels = Object.entries(selector?.matchLabels ?? {}).filter(
    (e): e is [string, string] => typeof e[1] === 'string',
  );
  if (labels.length === 0) return undefined;
  return labels.map(([k, v]) => `${k}=${v}`).join(',');
}

/** The verification record on a Deployment; undefined when absent or not one (never thrown). */
export function readVerification(deployment: Deployment): VerificationRecord | undefined {
  const text = deployment.metadata.annotations?.[ANNOTATIONS.verification];
  if (text === undefined) return undefined;
  try {
    const value = JSON.parse(text) as Partial<VerificationRecord> | null;
    if (
      value === null ||
      typeof value !== 'object' ||
      typeof value.state !== 'string' ||
      typeof value.execution !== 'string' ||
      typeof value.digest !== 'string' ||
      typeof value.image !== 'string'
    ) {
      return undefined;
    }
    return value as VerificationRecord;
  } catch {
    return undefined;
  }
}

/** The verdict's one line for records, notifications and `ship`. */
export function describeVerdict(verdict: Verdict): string {
  switch (verdict.state) {
    case 'ready':
      return `verified Ready in ${verdict.seconds} s`;
    case 'failed':
      return `FAILED verification: ${verdict.message}`;
    case 'progressing':
      return `verifying: ${verdict.message}`;
    case 'superseded':
      return `superseded: ${verdict.message}`;
    case 'changed':
      return `changed: ${verdict.message}`;
  }
}
