/**
 * planRollback and verdictPatch: pure, table-driven. The PATCHes they make are applied by
 * `kubectl patch --local` (strategic merge, as the API server applies it) to check what the
 * Deployment says afterwards.
 */
import {
  ANNOTATIONS,
  MAX_REJECTED,
  type RejectedDigest,
  type VerificationRecord,
} from '../../lib/deployer-contract';
import { addRejected, planRollback, verdictPatch, verifiedImage } from '../../core/rollback';
import type { Deployment, VerifyTarget } from '../../core/types';
import type { Verdict } from '../../core/verify';
import { kubectlPatched, removeTempDirs } from '../k8s/kubectl';

const REPO = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher';
const BAD_DIGEST = `sha256:${'b'.repeat(64)}`;
const GOOD_DIGEST = `sha256:${'a'.repeat(64)}`;
const BAD_IMAGE = `${REPO}:6e0de7938dda@${BAD_DIGEST}`;
const GOOD_IMAGE = `${REPO}:5a1b2c3d4e5f@${GOOD_DIGEST}`;
const GOOD_COMMIT = '5a1b2c3d4e5f60718293a4b5c6d7e8f901234567';
const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:deploy:1f2e';
const NOW = new Date('2026-12-06T10:01:00Z');

afterAll(removeTempDirs);

const target: VerifyTarget = {
  environment: 'main',
  namespace: 'dockercoins',
  clusterName: 'dockercoins',
  deployment: 'hasher',
  container: 'hasher',
  image: BAD_IMAGE,
  digest: BAD_DIGEST,
  generation: 5,
  previousImage: GOOD_IMAGE,
  build: 42,
  startedAt: '2026-12-06T10:00:00.000Z',
  deadlineSeconds: 180,
  phase: 'verify',
  execution: EXECUTION,
};

const FAILED: Verdict = {
  state: 'failed',
  kind: 'ImagePullBackOff',
  pod: 'hasher-5c9f7d8b6-x7k2p',
  message: `pod hasher-5c9f7d8b6-x7k2p ImagePullBackOff: Back-off pulling image "${BAD_IMAGE}"`,
};

function record(changes: Partial<VerificationRecord> = {}): string {
  return JSON.stringify({
    state: 'verifying',
    image: BAD_IMAGE,
    digest: BAD_DIGEST,
    build: 42,
    execution: EXECUTION,
    generation: 5,
    since: '2026-12-06T10:00:00.000Z',
    leaseUntil: '2026-12-06T10:08:00.000Z',
    reason: 'verifying 6e0de7938dda',
    ...changes,
  } satisfies VerificationRecord);
}

function live(
  annotations: Record<string, string | undefined> = {},
  image = BAD_IMAGE,
  resourceVersion = '2001',
): Deployment {
  const all: Record<string, string> = {
    [ANNOTATIONS.changeCause]: 'hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#42)',
    [ANNOTATIONS.tag]: '6e0de7938dda',
    [ANNOTATIONS.digest]: BAD_DIGEST,
    [ANNOTATIONS.commit]: '6e0de7938dda0000000000000000000000000000',
    [ANNOTATIONS.buildProject]: 'DockerCoins-hasher',
    [ANNOTATIONS.buildNumber]: '42',
    [ANNOTATIONS.verification]: record(),
    [ANNOTATIONS.verifiedImage]: GOOD_IMAGE,
    [ANNOTATIONS.verifiedBuild]: '41',
    [ANNOTATIONS.verifiedCommit]: GOOD_COMMIT,
  };
  for (const [key, value] of Object.entries(annotations)) {
    if (value === undefined) delete all[key];
    else all[key] = value;
  }
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'hasher',
      namespace: 'dockercoins',
      ...(resourceVersion === '' ? {} : { resourceVersion }),
      generation: 5,
      annotations: all,
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'hasher' } },
      template: {
        metadata: { labels: { app: 'hasher' } },
        spec: {
          containers: [
            { name: 'hasher', image },
            {
              name: 'log-shipper',
              image: 'public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0',
            },
          ],
        },
      },
    },
  } as Deployment;
}

describe('planRollback: when there is nothing to roll back', () => {
  test.each<[string, Deployment | undefined, VerifyTarget, Verdict, string, RegExp]>([
    [
      'the verdict is not failed',
      live(),
      target,
      { state: 'ready', message: 'ok', seconds: 3 },
      'not-failed',
      /verdict is ready/,
    ],
    [
      'the rollback itself failed',
      live(),
      { ...target, phase: 'rollback' },
      FAILED,
      'rollback-failed',
      /failed verification too; nothing more/,
    ],
    ['the Deployment is gone', undefined, target, FAILED, 'changed', /was deleted/],
    [
      'a newer image runs',
      live({}, `${REPO}:0123456789ab@sha256:${'c'.repeat(64)}`),
      target,
      FAILED,
      'superseded',
      /no longer runs/,
    ],
    [
      'another execution owns it',
      live({ [ANNOTATIONS.verification]: record({ execution: 'arn:other' }) }),
      target,
      FAILED,
      'changed',
      /no longer .*'s/,
    ],
    [
      'nothing was verified before (first deploy)',
      live({ [ANNOTATIONS.verifiedImage]: undefined }),
      target,
      FAILED,
      'no-verified-image',
      /first deploy.*keeps running the failed image/,
    ],
    [
      'the verified image is the failed one',
      live({ [ANNOTATIONS.verifiedImage]: BAD_IMAGE }),
      target,
      FAILED,
      'no-verified-image',
      /nothing to roll back to/,
    ],
    [
      'the verified image is not pinned by digest',
      live({ [ANNOTATIONS.verifiedImage]: `${REPO}:5a1b2c3d4e5f` }),
      target,
      FAILED,
      'no-verified-image',
      /first deploy/,
    ],
    [
      'no resourceVersion',
      live({}, BAD_IMAGE, ''),
      target,
      FAILED,
      'no-resource-version',
      /resourceVersion/,
    ],
  ])('Given %s, then none', (_name, deployment, t, verdict, reason, message) => {
    const plan = planRollback(deployment, t, verdict, NOW);
    expect(plan).toMatchObject({ action: 'none', reason });
    expect(plan.action === 'none' && plan.message).toMatch(message);
  });
});

describe('planRollback: the rollback PATCH', () => {
  test('Given a failed verification and a verified image, then one conditional PATCH back to it, with why', () => {
    const plan = planRollback(live(), target, FAILED, NOW);
    if (plan.action !== 'patch') throw new Error(plan.message);
    expect(plan.to).toEqual({
      image: GOOD_IMAGE,
      digest: GOOD_DIGEST,
      build: 41,
      commit: GOOD_COMMIT,
    });
    const metadata = plan.patch.metadata as {
      resourceVersion: string;
      annotations: Record<string, string | null>;
    };
    expect(metadata.resourceVersion).toBe('2001');
    expect(metadata.annotations).toMatchObject({
      [ANNOTATIONS.changeCause]:
        'hasher rolled back to 5a1b2c3d4e5f (commit 5a1b2c3, build #41) from 6e0de7938dda: ImagePullBackOff',
      [ANNOTATIONS.tag]: '5a1b2c3d4e5f',
      [ANNOTATIONS.digest]: GOOD_DIGEST,
      [ANNOTATIONS.commit]: GOOD_COMMIT,
      [ANNOTATIONS.buildNumber]: '41',
      [ANNOTATIONS.buildArn]: null,
      [ANNOTATIONS.gitRef]: null,
      [ANNOTATIONS.deployedAt]: NOW.toISOString(),
      [ANNOTATIONS.deployedBy]: 'deployer',
      [ANNOTATIONS.rolledBackFrom]: BAD_IMAGE,
    });
    expect(JSON.parse(metadata.annotations[ANNOTATIONS.verification]!)).toEqual({
      state: 'verifying',
      image: GOOD_IMAGE,
      digest: GOOD_DIGEST,
      build: 41,
      execution: EXECUTION,
      generation: 6,
      since: NOW.toISOString(),
      leaseUntil: new Date(NOW.getTime() + 480_000).toISOString(),
      reason: `rolling back from 6e0de7938dda: ${FAILED.message}`,
    });
    expect(JSON.parse(metadata.annotations[ANNOTATIONS.rejected]!)).toEqual([
      {
        digest: BAD_DIGEST,
        build: 42,
        reason: `ImagePullBackOff: ${FAILED.message}`,
        at: NOW.toISOString(),
      },
    ]);
  });

  test('Given the rollback PATCH, when kubectl applies it, then only our container image changes and the sidecar stays', () => {
    const before = live();
    const plan = planRollback(before, target, FAILED, NOW);
    if (plan.action !== 'patch') throw new Error(plan.message);
    const after = kubectlPatched<Deployment>(before, plan.patch);
    expect(after.spec?.template?.spec?.containers).toEqual([
      { name: 'hasher', image: GOOD_IMAGE },
      { name: 'log-shipper', image: 'public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0' },
    ]);
    expect(after.metadata.annotations?.[ANNOTATIONS.buildProject]).toBe('DockerCoins-hasher');
    expect(after.metadata.annotations?.[ANNOTATIONS.buildArn]).toBeUndefined();
    expect(verifiedImage(after)?.image).toBe(GOOD_IMAGE);
  });

  test('Given 20 rejected digests, when one more is rejected, then the newest 20 are kept, newest first, no duplicates', () => {
    const list: RejectedDigest[] = Array.from({ length: MAX_REJECTED }, (_, i) => ({
      digest: `sha256:${i.toString(16).padStart(64, '0')}`,
      reason: `r${i}`,
      at: NOW.toISOString(),
    }));
    const next = addRejected(list, { digest: BAD_DIGEST, reason: 'new', at: NOW.toISOString() });
    expect(next).toHaveLength(MAX_REJECTED);
    expect(next[0]!.digest).toBe(BAD_DIGEST);
    expect(next[MAX_REJECTED - 1]!.reason).toBe(`r${MAX_REJECTED - 2}`);
    const again = addRejected(next, {
      digest: list[3]!.digest,
      reason: 'again',
      at: NOW.toISOString(),
    });
    expect(again.filter((e) => e.digest === list[3]!.digest)).toEqual([
      { digest: list[3]!.digest, reason: 'again', at: NOW.toISOString() },
    ]);
  });

  test('Given ship rolls back, then deployed-by says ship', () => {
    const plan = planRollback(live(), target, FAILED, NOW, 'ship');
    expect(
      plan.action === 'patch' &&
        (plan.patch.metadata as { annotations: Record<string, string> }).annotations[
          ANNOTATIONS.deployedBy
        ],
    ).toBe('ship');
  });
});

describe('verdictPatch: what a final verdict writes', () => {
  const annotationsOf = (p: ReturnType<typeof verdictPatch>): Record<string, string | null> =>
    (p!.patch.metadata as { annotations: Record<string, string | null> }).annotations;

  test('ready → verified, and the verified image, build and commit are ours', () => {
    const p = verdictPatch(
      live({ [ANNOTATIONS.verifiedImage]: undefined }),
      target,
      { state: 'ready', seconds: 41, message: 'x' },
      NOW,
    );
    expect(p?.record).toMatchObject({
      state: 'verified',
      reason: 'verified Ready in 41 s',
      leaseUntil: NOW.toISOString(),
      execution: EXECUTION,
    });
    expect(annotationsOf(p)).toMatchObject({
      [ANNOTATIONS.verifiedImage]: BAD_IMAGE,
      [ANNOTATIONS.verifiedBuild]: '42',
      [ANNOTATIONS.verifiedCommit]: '6e0de7938dda0000000000000000000000000000',
    });
    expect(p?.patch.metadata).toMatchObject({ resourceVersion: '2001' });
    expect(p?.patch).not.toHaveProperty('spec');
  });

  test('failed → failed, the digest rejected, the verified image left', () => {
    const p = verdictPatch(live(), target, FAILED, NOW);
    expect(p?.record).toMatchObject({
      state: 'failed',
      reason: `FAILED verification: ${FAILED.message}`,
    });
    expect(JSON.parse(annotationsOf(p)[ANNOTATIONS.rejected]!)).toEqual([
      {
        digest: BAD_DIGEST,
        build: 42,
        reason: `ImagePullBackOff: ${FAILED.message}`,
        at: NOW.toISOString(),
      },
    ]);
    expect(annotationsOf(p)).not.toHaveProperty(ANNOTATIONS.verifiedImage);
  });

  test('rollback ready → rolled-back, with where from and why', () => {
    const rolled = live(
      {
        [ANNOTATIONS.verification]: record({
          image: GOOD_IMAGE,
          digest: GOOD_DIGEST,
          reason: 'rolling back from 6e0de7938dda: pod x ImagePullBackOff: y',
        }),
      },
      GOOD_IMAGE,
    );
    const t: VerifyTarget = {
      ...target,
      image: GOOD_IMAGE,
      digest: GOOD_DIGEST,
      previousImage: BAD_IMAGE,
      phase: 'rollback',
      build: 41,
    };
    const p = verdictPatch(rolled, t, { state: 'ready', seconds: 18, message: 'x' }, NOW);
    expect(p?.record).toMatchObject({
      state: 'rolled-back',
      reason:
        'rolled back from 6e0de7938dda, verified Ready in 18 s; why: pod x ImagePullBackOff: y',
    });
    expect(annotationsOf(p)[ANNOTATIONS.verifiedImage]).toBe(GOOD_IMAGE);
    expect(annotationsOf(p)).not.toHaveProperty(ANNOTATIONS.rejected);
  });

  test('rollback failed → failed, nothing more rejected', () => {
    const rolled = live(
      { [ANNOTATIONS.verification]: record({ image: GOOD_IMAGE, digest: GOOD_DIGEST }) },
      GOOD_IMAGE,
    );
    const t: VerifyTarget = {
      ...target,
      image: GOOD_IMAGE,
      digest: GOOD_DIGEST,
      phase: 'rollback',
    };
    const p = verdictPatch(rolled, t, FAILED, NOW);
    expect(p?.record.reason).toMatch(/^rollback to 5a1b2c3d4e5f FAILED verification: pod/);
    expect(annotationsOf(p)).not.toHaveProperty(ANNOTATIONS.rejected);
  });

  test.each(['superseded', 'changed'] as const)('%s → that state with the message', (state) => {
    const verdict: Verdict =
      state === 'superseded'
        ? { state, message: 'newer', image: 'x' }
        : { state, message: 'paused' };
    expect(verdictPatch(live(), target, verdict, NOW)?.record).toMatchObject({
      state,
      reason: verdict.message,
    });
  });

  test('not ours any more (another execution, another digest, no record) → nothing written', () => {
    const ready: Verdict = { state: 'ready', seconds: 1, message: 'x' };
    expect(
      verdictPatch(
        live({ [ANNOTATIONS.verification]: record({ execution: 'arn:other' }) }),
        target,
        ready,
        NOW,
      ),
    ).toBeUndefined();
    expect(
      verdictPatch(
        live({ [ANNOTATIONS.verification]: record({ digest: GOOD_DIGEST }) }),
        target,
        ready,
        NOW,
      ),
    ).toBeUndefined();
    expect(
      verdictPatch(live({ [ANNOTATIONS.verification]: undefined }), target, ready, NOW),
    ).toBeUndefined();
    expect(verdictPatch(undefined, target, ready, NOW)).toBeUndefined();
  });
});
