/**
 * The verification of one deploy, in-process: check every poll interval until a verdict; a failed
 * one is rolled back to the last verified image (when allowed) and the rollback is verified the
 * same way; every final verdict is recorded on the Deployment. What the deployer's state machine
 * does with Step Functions' Wait states, for the runtimes that stay up while they verify (`ship
 * deploy`, the in-cluster deployer). The decisions are verify.ts's and rollback.ts's.
 */
import type { Retry } from './apply';
import { applyRollback, recordVerdict } from './rollback';
import type { KubeReader, VerifyTarget } from './types';
import { check, type FailureStrike, type Verdict } from './verify';

export interface VerifyLoopDeps {
  /** The client of the Deployment's cluster. */
  readonly kube: KubeReader;
  readonly retry: Retry;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  /** Between two checks. */
  readonly pollMs: number;
  /** Roll a failed verification back to the last verified image. */
  readonly rollback: boolean;
  /** Written as `deployed-by` on a rollback. */
  readonly deployedBy: 'deployer' | 'ship';
  /** Told each progressing verdict (and the rollback's), before the wait. @default - nothing */
  readonly onProgress?: (target: VerifyTarget, verdict: Verdict) => void;
  /** Told a failed verdict before its rollback starts. @default - nothing */
  readonly onRollback?: (target: VerifyTarget, verdict: Verdict) => void;
  /**
   * Stops following between two checks (a shutdown): the loop throws {@link VerificationAbandoned}
   * and records nothing, so the verification record keeps its lease and whoever takes the lease
   * after it expires verifies again. @default - never abandoned
   */
  readonly signal?: AbortSignal;
}

/** What verifying one deploy came to, with the rollback it got. */
export interface Verification {
  readonly verdict: Verdict;
  /** The rollback after a failed verdict, with the rollback's own verdict. */
  readonly rollback:
    | {
        readonly status: 'rolled-back';
        readonly image: string;
        readonly verdict: Verdict;
      }
    | { readonly status: 'none'; readonly reason: string; readonly message: string }
    | undefined;
}

/** The loop was stopped by its signal before a verdict; nothing was recorded. */
export class VerificationAbandoned extends Error {
  constructor(readonly target: VerifyTarget) {
    super(
      `verification of ${target.image} on ${target.namespace}/${target.deployment} abandoned before a verdict; ` +
        'its record keeps the lease until it expires, then the next deployer verifies it',
    );
    this.name = 'VerificationAbandoned';
  }
}

/** Checks until a verdict other than `progressing`. */
export async function followRollout(
  target: VerifyTarget,
  deps: Pick<
    VerifyLoopDeps,
    'kube' | 'retry' | 'now' | 'sleep' | 'pollMs' | 'onProgress' | 'signal'
  >,
): Promise<Verdict> {
  let previous: FailureStrike | undefined;
  for (;;) {
    if (deps.signal?.aborted === true) throw new VerificationAbandoned(target);
    const verdict = await deps.retry(() => check(deps.kube, target, deps.now(), previous));
    if (verdict.state !== 'progressing') return verdict;
    previous = verdict.strike;
    deps.onProgress?.(target, verdict);
    await deps.sleep(deps.pollMs);
  }
}

/**
 * Verifies one deploy to its verdict, rolls a failure back when allowed and verifies the
 * rollback, recording every final verdict on the Deployment.
 */
export async function verifyDeploy(
  first: VerifyTarget,
  deps: VerifyLoopDeps,
): Promise<Verification> {
  const verdict = await followRollout(first, deps);
  if (verdict.state !== 'failed' || !deps.rollback) {
    await deps.retry(() => recordVerdict(deps.kube, first, verdict, deps.now()));
    return { verdict, rollback: undefined };
  }
  deps.onRollback?.(first, verdict);
  const rolled = await deps.retry(() =>
    applyRollback(deps.kube, first, verdict, deps.now(), deps.deployedBy),
  );
  if (rolled.status === 'none') {
    return {
      verdict,
      rollback: { status: 'none', reason: rolled.reason, message: rolled.message },
    };
  }
  const after = await followRollout(rolled.target, deps);
  await deps.retry(() => recordVerdict(deps.kube, rolled.target, after, deps.now()));
  return {
    verdict,
    rollback: {
      status: 'rolled-back',
      image: rolled.target.image,
      verdict: after,
    },
  };
}
