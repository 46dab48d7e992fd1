/**
 * A Deployment's rollout history from its ReplicaSets, as `kubectl rollout history` reads it: each
 * ReplicaSet the Deployment controls is a revision (`deployment.kubernetes.io/revision`), and
 * carries the annotations the Deployment had when the revision was made current, ours included.
 * Our annotations are believed for a revision only while they describe its image (plan.ts's
 * runningImage rule), so a `kubectl set image` by hand shows its image without our commit.
 */
import { ANNOTATIONS } from '../lib/deployer-contract';
import { parseImageReference, runningImage } from '../lambda/deployer/plan';
import type { Deployment, DesiredImage, ReplicaSet } from '../lambda/deployer/types';

export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
const POD_TEMPLATE_HASH = 'pod-template-hash';
const COMMIT_TAG = /^[0-9a-f]{12}$/;

export interface Revision {
  readonly revision: number;
  readonly replicaSet: string;
  /** The revision the Deployment runs now. */
  readonly current: boolean;
  readonly replicas: number;
  readonly image: string | undefined;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  readonly commit: string | undefined;
  readonly buildProject: string | undefined;
  readonly buildNumber: number | undefined;
  readonly buildArn: string | undefined;
  readonly gitRef: string | undefined;
  readonly deployedAt: Date | undefined;
  readonly deployedBy: string | undefined;
  /** `kubernetes.io/change-cause`, shown whoever wrote it (kubectl does). */
  readonly changeCause: string | undefined;
}

/**
 * The revisions of `deployment`, newest first: only ReplicaSets it controls (owner reference with
 * `controller: true` and its uid); ReplicaSets without a readable revision are left out (the
 * controller writes one on every ReplicaSet it makes).
 */
export function rolloutHistory(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
  container: string,
): Revision[] {
  const uid = deployment.metadata.uid;
  const currentRevision = Number(deployment.metadata.annotations?.[REVISION_ANNOTATION] ?? NaN);
  const revisions: Revision[] = [];
  for (const rs of replicaSets) {
    const owned = rs.metadata.ownerReferences?.some(
      (owner) => owner.controller === true && owner.uid === uid,
    );
    if (uid === undefined || !owned) continue;
    const text = rs.metadata.annotations?.[REVISION_ANNOTATION];
    if (text === undefined || !/^[1-9][0-9]*$/.test(text)) continue;
    const revision = Number(text);
    // runningImage reads metadata.annotations and spec.template.spec.containers: a ReplicaSet
    // has both where a Deployment has them.
    const running = runningImage(rs, container);
    const annotations = rs.metadata.annotations ?? {};
    const believed =
      running?.digest !== undefined && running.digest === annotations[ANNOTATIONS.digest];
    const ours = (key: string): string | undefined => (believed ? annotations[key] : undefined);
    const deployedAt = ours(ANNOTATIONS.deployedAt);
    const at = deployedAt === undefined ? undefined : new Date(deployedAt);
    revisions.push({
      revision,
      replicaSet: rs.metadata.name,
      current: Number.isNaN(currentRevision)
        ? rs.metadata.labels?.[POD_TEMPLATE_HASH] !== undefined &&
          rs.metadata.labels[POD_TEMPLATE_HASH] === currentHash(deployment, replicaSets)
        : revision === currentRevision,
      replicas: typeof rs.status?.replicas === 'number' ? rs.status.replicas : 0,
      image: running?.image,
      tag: running?.tag,
      digest: running?.digest,
      commit: running?.commit,
      buildProject: running?.buildProject,
      buildNumber: running?.buildNumber,
      buildArn: ours(ANNOTATIONS.buildArn),
      gitRef: ours(ANNOTATIONS.gitRef),
      deployedAt: at === undefined || Number.isNaN(at.getTime()) ? undefined : at,
      deployedBy: ours(ANNOTATIONS.deployedBy),
      changeCause: annotations[ANNOTATIONS.changeCause],
    });
  }
  return revisions.sort((a, b) => b.revision - a.revision);
}

/** Without a revision annotation on the Deployment, the newest revision is current. */
function currentHash(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
): string | undefined {
  const uid = deployment.metadata.uid;
  const newest = [...replicaSets]
    .filter((rs) =>
      rs.metadata.ownerReferences?.some((o) => o.controller === true && o.uid === uid),
    )
    .sort(
      (a, b) =>
        Number(b.metadata.annotations?.[REVISION_ANNOTATION] ?? 0) -
        Number(a.metadata.annotations?.[REVISION_ANNOTATION] ?? 0),
    )[0];
  return newest?.metadata.labels?.[POD_TEMPLATE_HASH];
}

/**
 * The rollback target: the newest revision older than the current one whose image has a known
 * digest other than the running one. Revisions without a digest are passed over (ship deploys
 * digests only); undefined when the history holds no other image.
 */
export function previousImage(
  history: readonly Revision[],
  runningDigest: string | undefined,
): Revision | undefined {
  const current = history.find((r) => r.current)?.revision ?? Number.POSITIVE_INFINITY;
  return history.find(
    (r) => r.revision < current && r.digest !== undefined && r.digest !== runningDigest,
  );
}

/**
 * A revision as the image the plan deploys, or why it cannot be: it needs a digest, a tag
 * (the commit tag when the reference has none) and a commit, which only our annotations give.
 */
export function desiredFromRevision(
  revision: Revision,
): { ok: true; image: DesiredImage } | { ok: false; reason: string } {
  const which = `revision ${revision.revision} (${revision.image ?? 'no image'})`;
  if (revision.digest === undefined || revision.image === undefined) {
    return {
      ok: false,
      reason: `${which} is not pinned by a digest, so what it ran cannot be deployed again exactly.`,
    };
  }
  if (revision.commit === undefined) {
    return {
      ok: false,
      reason: `${which} has no ship.dockercoins.io annotations describing it (it was set by hand), so its commit is unknown.`,
    };
  }
  const tag =
    revision.tag ??
    (COMMIT_TAG.test(revision.commit.slice(0, 12)) ? revision.commit.slice(0, 12) : undefined);
  if (tag === undefined) {
    return { ok: false, reason: `${which} has no tag and its commit gives none.` };
  }
  const { name } = parseImageReference(revision.image);
  return {
    ok: true,
    image: {
      image: `${name}:${tag}@${revision.digest}`,
      tag,
      digest: revision.digest,
      commit: revision.commit,
      buildProject: revision.buildProject,
      buildNumber: revision.buildNumber,
      buildArn: revision.buildArn,
      gitRef: revision.gitRef,
    },
  };
}
