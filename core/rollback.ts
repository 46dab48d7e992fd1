/**
 * rollback: what a verdict leaves on the Deployment, and the one rollback a failed verification
 * gets. Every write is one strategic-merge PATCH conditional on the resourceVersion read (re-read
 * and re-decided on a 409), and only while the verification record names our execution: a
 * duplicate execution, a newer deploy or a person's edit is never undone.
 *
 * - planRollback (pure): back to the Deployment's last verified image (annotation
 *   `verified-image`, pinned by digest), only if the failed image still runs; the failed digest
 *   joins the bounded `rejected` list (newest first, at most MAX_REJECTED) in the same PATCH;
 * - applyRollback: reads, plans, PATCHes; with no verified image to go back to (a first deploy)
 *   it records the failure instead, and says so;
 * - recordVerdict: writes a final verdict: `verified` (and the verified-image annotations),
 *   `failed` (and the rejected digest), `rolled-back`, `superseded`, `changed`.
 */
import {
  ANNOTATIONS,
  MAX_REJECTED,
  type RejectedDigest,
  type VerificationRecord,
} from '../lib/deployer-contract';
import { leaseSeconds, parseImageReference, rejectedDigests } from './plan';
import {
  ConflictError,
  type Deployment,
  type KubeClient,
  type StrategicMergePatch,
  type VerifyTarget,
} from './types';
import { describeVerdict, readVerification, type Verdict } from './verify';

/** How many times a write is re-read and re-decided after a 409. */
const MAX_CONFLICT_ROUNDS = 4;

/** The list with `entry` first, no other entry of its digest, at most MAX_REJECTED. */
export function addRejected(
  list: readonly RejectedDigest[],
  entry: RejectedDigest,
): RejectedDigest[] {
  return [entry, ...list.filter((e) => e.digest !== entry.digest)].slice(0, MAX_REJECTED);
}

/** The last image verified Ready on the Deployment, with its build and commit, when recorded. */
export function verifiedImage(deployment: Deployment):
  | {
      image: string;
      digest: string;
      tag: string | undefined;
      build: number | undefined;
      commit: string | undefined;
    }
  | undefined {
  const annotations = deployment.metadata.annotations ?? {};
  const image = annotations[ANNOTATIONS.verifiedImage];
  if (image === undefined) return undefined;
  const reference = parseImageReference(image);
  if (reference.digest === undefined) return undefined;
  const build = annotations[ANNOTATIONS.verifiedBuild];
  return {
    image,
    digest: reference.digest,
    tag: reference.tag,
    build: build !== undefined && /^[1-9][0-9]{0,15}$/.test(build) ? Number(build) : undefined,
    commit: annotations[ANNOTATIONS.verifiedCommit],
  };
}

export type RollbackPlan =
  | {
      readonly action: 'patch';
      readonly patch: StrategicMergePatch;
      /** The image rolled back to. */
      readonly to: {
        image: string;
        digest: string;
        build: number | undefined;
        commit: string | undefined;
      };
    }
  | {
      readonly action: 'none';
      readonly reason:
        | 'not-failed'
        | 'superseded'
        | 'changed'
        | 'no-verified-image'
        | 'rollback-failed'
        | 'no-resource-version';
      readonly message: string;
    };

/**
 * The rollback of a failed verification, decided from the Deployment as read. Pure.
 * `deployedBy` is written as `deployed-by` (ship's rollbacks say `ship`).
 */
export function planRollback(
  deployment: Deployment | undefined,
  target: VerifyTarget,
  verdict: Verdict,
  now: Date,
  deployedBy: 'deployer' | 'ship' = 'deployer',
): RollbackPlan {
  const where = `Deployment ${target.namespace}/${target.deployment}`;
  if (verdict.state !== 'failed') {
    return {
      action: 'none',
      reason: 'not-failed',
      message: `${where}: the verdict is ${verdict.state}; nothing to roll back.`,
    };
  }
  if (target.phase === 'rollback') {
    return {
      action: 'none',
      reason: 'rollback-failed',
      message: `${where}: the rollback to ${target.image} failed verification too; nothing more is tried.`,
    };
  }
  if (deployment === undefined) {
    return {
      action: 'none',
      reason: 'changed',
      message: `${where} was deleted; nothing rolled back.`,
    };
  }
  const running = deployment.spec?.template?.spec?.containers?.find(
    (c) => c.name === target.container,
  )?.image;
  if (running !== target.image) {
    return {
      action: 'none',
      reason: 'superseded',
      message: `${where} no longer runs ${target.image} (it runs ${running ?? 'no image'}); nothing rolled back.`,
    };
  }
  const record = readVerification(deployment);
  if (record?.execution !== target.execution || record.digest !== target.digest) {
    return {
      action: 'none',
      reason: 'changed',
      message: `${where}: the verification is no longer ${target.execution}'s; nothing rolled back.`,
    };
  }
  const verified = verifiedImage(deployment);
  if (verified === undefined || verified.digest === target.digest) {
    return {
      action: 'none',
      reason: 'no-verified-image',
      message:
        `${where}: no image was verified Ready here before ${target.image} (a first deploy), so there ` +
        'is nothing to roll back to; it keeps running the failed image.',
    };
  }
  const resourceVersion = deployment.metadata.resourceVersion;
  if (resourceVersion === undefined || resourceVersion === '') {
    return {
      action: 'none',
      reason: 'no-resource-version',
      message: `${where}: the API server returned it without metadata.resourceVersion; nothing rolled back.`,
    };
  }
  const failedTag = parseImageReference(target.image).tag ?? target.digest;
  const toTag = verified.tag ?? verified.digest;
  const commit = verified.commit;
  const generation = (deployment.metadata.generation ?? target.generation) + 1;
  const record2: VerificationRecord = {
    state: 'verifying',
    image: verified.image,
    digest: verified.digest,
    ...(verified.build === undefined ? {} : { build: verified.build }),
    execution: target.execution,
    generation,
    since: now.toISOString(),
    leaseUntil: new Date(now.getTime() + leaseSeconds(target.deadlineSeconds) * 1000).toISOString(),
    reason: oneLine(`rolling back from ${failedTag}: ${verdict.message}`),
  };
  const rejected = addRejected(rejectedDigests(deployment), {
    digest: target.digest,
    ...(target.build > 0 ? { build: target.build } : {}),
    reason: oneLine(`${verdict.kind}: ${verdict.message}`),
    at: now.toISOString(),
  });
  const build = verified.build === undefined ? '' : `, build #${verified.build}`;
  return {
    action: 'patch',
    to: { image: verified.image, digest: verified.digest, build: verified.build, commit },
    patch: {
      metadata: {
        resourceVersion,
        annotations: {
          [ANNOTATIONS.changeCause]: oneLine(
            `${target.deployment} rolled back to ${toTag} (${commit === undefined ? 'commit unknown' : `commit ${commit.slice(0, 7)}`}${build}) ` +
              `from ${failedTag}: ${verdict.kind}`,
          ),
          [ANNOTATIONS.tag]: verified.tag ?? null,
          [ANNOTATIONS.digest]: verified.digest,
          [ANNOTATIONS.commit]: commit ?? null,
          [ANNOTATIONS.buildNumber]: verified.build?.toString() ?? null,
          [ANNOTATIONS.buildArn]: null,
          [ANNOTATIONS.gitRef]: null,
          [ANNOTATIONS.deployedAt]: now.toISOString(),
          [ANNOTATIONS.deployedBy]: deployedBy,
          [ANNOTATIONS.rolledBackFrom]: target.image,
          [ANNOTATIONS.verification]: JSON.stringify(record2),
          [ANNOTATIONS.rejected]: JSON.stringify(rejected),
        },
      },
      spec: {
        template: { spec: { containers: [{ name: target.container, image: verified.image }] } },
      },
    },
  };
}

export type RollbackOutcome =
  | {
      readonly status: 'rolled-back';
      /** What to verify next: phase `rollback`, the image rolled back to, the PATCH's generation. */
      readonly target: VerifyTarget;
      readonly message: string;
    }
  | {
      readonly status: 'none';
      readonly reason: Extract<RollbackPlan, { action: 'none' }>['reason'];
      readonly message: string;
      /** Whether the failure was recorded (state `failed`, digest rejected). */
      readonly recorded: boolean;
    };

/**
 * Rolls a failed verification back: read, planRollback, one conditional PATCH (again on a 409).
 * With nothing to roll back to (a first deploy) or after a failed rollback, it records the
 * failure instead. Errors other than 409 are thrown (TransientError: the caller retries).
 */
export async function applyRollback(
  kube: KubeClient,
  target: VerifyTarget,
  verdict: Verdict,
  now: Date,
  deployedBy: 'deployer' | 'ship' = 'deployer',
): Promise<RollbackOutcome> {
  for (let round = 1; round <= MAX_CONFLICT_ROUNDS; round += 1) {
    const live = await kube.getDeployment(target.namespace, target.deployment);
    const plan = planRollback(live, target, verdict, now, deployedBy);
    if (plan.action === 'none') {
      const recorded =
        plan.reason === 'no-verified-image' || plan.reason === 'rollback-failed'
          ? (await recordVerdict(kube, target, verdict, now)).recorded
          : false;
      return { status: 'none', reason: plan.reason, message: plan.message, recorded };
    }
    try {
      const patched = await kube.patchDeployment(target.namespace, target.deployment, plan.patch);
      const next: VerifyTarget = {
        ...target,
        image: plan.to.image,
        digest: plan.to.digest,
        build: plan.to.build ?? 0,
        generation: patched.metadata.generation ?? 0,
        previousImage: target.image,
        startedAt: now.toISOString(),
        phase: 'rollback',
      };
      return {
        status: 'rolled-back',
        target: next,
        message: `rolled back to ${plan.to.image} (${target.image} ${describeVerdict(verdict)})`,
      };
    } catch (error) {
      if (error instanceof ConflictError) continue;
      throw error;
    }
  }
  return {
    status: 'none',
    reason: 'changed',
    message: `Deployment ${target.namespace}/${target.deployment} changed under us ${MAX_CONFLICT_ROUNDS} times in a row (409 on every PATCH); nothing rolled back.`,
    recorded: false,
  };
}

export interface RecordOutcome {
  /** The record was written (false: not ours any more, or the verdict is not final). */
  readonly recorded: boolean;
  readonly record?: VerificationRecord;
}

/**
 * Writes a final verdict on the Deployment: one annotation-only PATCH, conditional on the
 * resourceVersion read, only while the record names our execution and digest. `progressing`
 * writes nothing.
 */
export async function recordVerdict(
  kube: KubeClient,
  target: VerifyTarget,
  verdict: Verdict,
  now: Date,
): Promise<RecordOutcome> {
  if (verdict.state === 'progressing') return { recorded: false };
  for (let round = 1; round <= MAX_CONFLICT_ROUNDS; round += 1) {
    const live = await kube.getDeployment(target.namespace, target.deployment);
    const patch = verdictPatch(live, target, verdict, now);
    if (patch === undefined) return { recorded: false };
    try {
      await kube.patchDeployment(target.namespace, target.deployment, patch.patch);
      return { recorded: true, record: patch.record };
    } catch (error) {
      if (error instanceof ConflictError) continue;
      throw error;
    }
  }
  return { recorded: false };
}

/** The annotation-only PATCH a final verdict writes; undefined when the record is not ours. Pure. */
export function verdictPatch(
  live: Deployment | undefined,
  target: VerifyTarget,
  verdict: Exclude<Verdict, { state: 'progressing' }>,
  now: Date,
): { patch: StrategicMergePatch; record: VerificationRecord } | undefined {
  if (live === undefined) return undefined;
  const current = readVerification(live);
  if (current?.execution !== target.execution || current.digest !== target.digest) return undefined;
  const resourceVersion = live.metadata.resourceVersion;
  if (resourceVersion === undefined || resourceVersion === '') return undefined;
  const rollback = target.phase === 'rollback';
  const from =
    target.previousImage === undefined
      ? ''
      : (parseImageReference(target.previousImage).tag ?? target.previousImage);
  let state: VerificationRecord['state'];
  let reason: string;
  const extra: Record<string, string | null> = {};
  switch (verdict.state) {
    case 'ready':
      state = rollback ? 'rolled-back' : 'verified';
      // The verdict first: the why after it may be cut to fit one line.
      reason = rollback
        ? `rolled back from ${from}, verified Ready in ${verdict.seconds} s; why: ${current.reason.replace(/^rolling back from [^:]*: /, '')}`
        : `verified Ready in ${verdict.seconds} s`;
      extra[ANNOTATIONS.verifiedImage] = target.image;
      extra[ANNOTATIONS.verifiedBuild] = target.build > 0 ? String(target.build) : null;
      extra[ANNOTATIONS.verifiedCommit] =
        live.metadata.annotations?.[ANNOTATIONS.digest] === target.digest
          ? (live.metadata.annotations[ANNOTATIONS.commit] ?? null)
          : null;
      if (rollback) {
        // The rollback target was verified before: its commit annotation is the verified one.
        delete extra[ANNOTATIONS.verifiedCommit];
        delete extra[ANNOTATIONS.verifiedBuild];
      }
      break;
    case 'failed':
      state = 'failed';
      reason = rollback
        ? `rollback to ${parseImageReference(target.image).tag ?? target.image} FAILED verification: ${verdict.message}`
        : describeVerdict(verdict);
      if (!rollback) {
        extra[ANNOTATIONS.rejected] = JSON.stringify(
          addRejected(rejectedDigests(live), {
            digest: target.digest,
            ...(target.build > 0 ? { build: target.build } : {}),
            reason: oneLine(`${verdict.kind}: ${verdict.message}`),
            at: now.toISOString(),
          }),
        );
      }
      break;
    case 'superseded':
      state = 'superseded';
      reason = verdict.message;
      break;
    case 'changed':
      state = 'changed';
      reason = verdict.message;
      break;
  }
  const record: VerificationRecord = {
    ...current,
    state,
    reason: oneLine(reason),
    leaseUntil: now.toISOString(),
  };
  return {
    record,
    patch: {
      metadata: {
        resourceVersion,
        annotations: { [ANNOTATIONS.verification]: JSON.stringify(record), ...extra },
      },
    },
  };
}

const oneLine = (text: string): string => text.replace(/\s+/g, ' ').trim().slice(0, 400);
