/**
 * A Deployment's rollout history from its ReplicaSets, as `kubectl rollout history` reads it: each
 * ReplicaSet the Deployment controls is a revision (`deployment.kubernetes.io/revision`), carrying
 * the annotations the Deployment had when that revision was last made current, ours included
 * (the controller copies them; a rollback to an old pod template brings its ReplicaSet back at a
 * new revision with the Deployment's annotations of then).
 *
 * Our annotations are believed for a revision only while they describe its image: plan.ts's
 * runningImage decides that, applied to the ReplicaSet. So a `kubectl set image` by hand, whose
 * ReplicaSet is given the annotations of the image before it, shows its own image without our
 * commit or build. `kubernetes.io/change-cause` is shown whatever wrote it, as kubectl shows it.
 */
import { ANNOTATIONS, quoteValue } from '../lib/deployer-contract';
import { parseImageReference, runningImage } from '../core/plan';
import type { Deployment, DesiredImage, ReplicaSet } from '../core/types';

/** Where the Deployment controller keeps the revision, on the Deployment and on each ReplicaSet. */
export const REVISION_ANNOTATION = 'deployment.kubernetes.io/revision';
/** The label the controller adds to each ReplicaSet's pod template (and selector). */
const POD_TEMPLATE_HASH = 'pod-template-hash';
/** As the controller writes revisions: decimal, from 1; 15 digits stay exact in a number. */
const REVISION = /^[1-9][0-9]{0,14}$/;
/** A commit annotation `ship` can deploy again: 40 hex, or the 12-hex commit tag. */
const COMMIT = /^(?:[0-9a-f]{12}|[0-9a-f]{40})$/;
const COMMIT_TAG_LENGTH = 12;

/** One revision of a Deployment: one ReplicaSet it controls. */
export interface Revision {
  /** `deployment.kubernetes.io/revision` of the ReplicaSet. */
  readonly revision: number;
  /** The ReplicaSet's name. */
  readonly replicaSet: string;
  /**
   * The revision the Deployment is at: its own revision annotation names it; without one (the
   * controller has not synced it yet, or a hand-made object), the ReplicaSet whose pod template
   * is the Deployment's, pod-template-hash aside (how the controller finds its new ReplicaSet).
   */
  readonly current: boolean;
  /** status.replicas of the ReplicaSet: its pods now (0 for an old revision kept for rollback). */
  readonly replicas: number;
  /** The container's image reference; undefined when the container is absent or has none. */
  readonly image: string | undefined;
  // The next five are runningImage's, applied to the ReplicaSet.
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  readonly commit: string | undefined;
  readonly buildProject: string | undefined;
  readonly buildNumber: number | undefined;
  // The next four only when our digest annotation is the image's digest (runningImage's rule).
  readonly buildArn: string | undefined;
  readonly gitRef: string | undefined;
  readonly deployedAt: Date | undefined;
  /** `deployer` or `ship`, as the deployed-by annotation says. */
  readonly deployedBy: string | undefined;
  /** `kubernetes.io/change-cause`, shown whoever wrote it (kubectl does). */
  readonly changeCause: string | undefined;
}

/**
 * The revisions of `deployment` for one of its containers, newest first (ties, which the controller
 * never makes, by ReplicaSet name). Only ReplicaSets the Deployment controls count: the first owner
 * reference with `controller: true` carries its uid (kubectl's rule); a ReplicaSet of another
 * Deployment matched by the same label selector, or one merely referring to it, is ignored.
 *
 * A ReplicaSet without a revision the controller would write (a decimal from 1) is left out: it
 * cannot be placed in the order, so it is neither shown nor offered as a rollback target. kubectl
 * skips an unparsable one too (and lists one without the annotation as revision 0).
 *
 * Throws when the Deployment has no metadata.uid: ownership could not be told (every Deployment
 * the API server returns has one).
 */
export function rolloutHistory(
  deployment: Deployment,
  replicaSets: readonly ReplicaSet[],
  container: string,
): Revision[] {
  const uid = deployment.metadata.uid;
  if (typeof uid !== 'string' || uid === '') {
    throw new Error(
      `rolloutHistory: Deployment ${deployment.metadata.name} has no metadata.uid, so which ` +
        'ReplicaSets it controls cannot be told; pass the Deployment as the API server returned it.',
    );
  }
  const owned = replicaSets.filter(
    (rs) => rs.metadata.ownerReferences?.find((owner) => owner.controller === true)?.uid === uid,
  );
  const deploymentRevision = revisionOf(deployment.metadata.annotations);
  const revisions: Revision[] = [];
  for (const rs of owned) {
    const revision = revisionOf(rs.metadata.annotations);
    if (revision === undefined) continue;
    // runningImage reads metadata.annotations and spec.template.spec.containers, which a
    // ReplicaSet has where a Deployment has them.
    const running = runningImage(rs, container);
    const annotations = rs.metadata.annotations ?? {};
    // runningImage's rule for its own fields: a digest it found that our (valid) digest
    // annotation names. Equal to a digest runningImage accepted, the annotation is valid.
    const believed =
      running?.digest !== undefined && running.digest === annotations[ANNOTATIONS.digest];
    const ours = (key: string): string | undefined => (believed ? annotations[key] : undefined);
    revisions.push({
      revision,
      replicaSet: rs.metadata.name,
      current:
        deploymentRevision === undefined
          ? sameTemplate(rs, deployment)
          : revision === deploymentRevision,
      replicas: typeof rs.status?.replicas === 'number' ? rs.status.replicas : 0,
      image: running?.image,
      tag: running?.tag,
      digest: running?.digest,
      commit: running?.commit,
      buildProject: running?.buildProject,
      buildNumber: running?.buildNumber,
      buildArn: ours(ANNOTATIONS.buildArn),
      gitRef: ours(ANNOTATIONS.gitRef),
      deployedAt: date(ours(ANNOTATIONS.deployedAt)),
      deployedBy: ours(ANNOTATIONS.deployedBy),
      changeCause: annotations[ANNOTATIONS.changeCause],
    });
  }
  return revisions.sort(
    (a, b) =>
      b.revision - a.revision ||
      (a.replicaSet < b.replicaSet ? -1 : a.replicaSet > b.replicaSet ? 1 : 0),
  );
}

function revisionOf(annotations: Readonly<Record<string, string>> | undefined): number | undefined {
  const text = annotations?.[REVISION_ANNOTATION];
  return text !== undefined && REVISION.test(text) ? Number(text) : undefined;
}

function date(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const at = new Date(text);
  return Number.isNaN(at.getTime()) ? undefined : at;
}

/** kubectl's EqualIgnoreHash: the pod templates are equal once pod-template-hash is removed. */
function sameTemplate(rs: ReplicaSet, deployment: Deployment): boolean {
  const template = (value: unknown): unknown => {
    const t = (value ?? {}) as { metadata?: { labels?: Record<string, string> } };
    const labels = { ...t.metadata?.labels };
    delete labels[POD_TEMPLATE_HASH];
    return { ...t, metadata: { ...t.metadata, labels } };
  };
  return (
    canonicalJson(template(rs.spec?.template)) ===
    canonicalJson(template(deployment.spec?.template))
  );
}

/** JSON with sorted keys and undefined members left out: one text per value. */
function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    return `{${Object.keys(record)
      .filter((k) => record[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson(record[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(value);
}

/**
 * The rollback target: the newest revision older than the current one whose image has a known
 * digest, other than `runningDigest` (what the Deployment's container runs now).
 * - Revisions without a digest (an image not pinned, with no believed annotation) are passed
 *   over: ship deploys digests only, so the one before is the target.
 * - A revision of the running image (a template change that kept it, e.g. `kubectl set env`, or
 *   an older deploy of it) is passed over: rolling back to it would change nothing.
 * - undefined when no older revision holds another image with a digest: one distinct image in the
 *   history, or the older ones pruned (revisionHistoryLimit) or never pinned.
 * - With no revision marked current (the controller has not made the ReplicaSet of the current
 *   template yet), every revision counts as older.
 */
export function previousImage(
  history: readonly Revision[],
  runningDigest: string | undefined,
): Revision | undefined {
  const current = history.find((r) => r.current)?.revision ?? Number.POSITIVE_INFINITY;
  return [...history]
    .sort((a, b) => b.revision - a.revision)
    .find((r) => r.revision < current && r.digest !== undefined && r.digest !== runningDigest);
}

/** A revision as the image to deploy again, or a sentence saying why it cannot be. */
export type RevisionImage =
  | { readonly ok: true; readonly image: DesiredImage }
  | { readonly ok: false; readonly reason: string };

/**
 * A revision as the image the plan deploys (`ship rollback`): `<name>:<tag>@<digest>`, the name
 * from the revision's image reference. It needs:
 * - a digest (ship deploys digests only);
 * - a commit, which only our annotations give, and only while they describe the image;
 * - a tag: the reference's (or our believed tag annotation's, as runningImage reads it), else the
 *   commit tag (the commit's first 12 hex, a tag every build pushes).
 * The build's project, number, ARN and git ref are carried when known; the plan removes the
 * annotations of those it is not given. Otherwise `ok: false` with a sentence naming the revision,
 * its ReplicaSet and image, and what is missing (values quoted, control characters escaped); it
 * ends with a full stop, so a caller may append what to do.
 */
export function desiredFromRevision(revision: Revision): RevisionImage {
  const which =
    `revision ${revision.revision} (ReplicaSet ${quoteValue(revision.replicaSet)}, image ` +
    `${revision.image === undefined ? 'none' : quoteValue(revision.image)})`;
  const refuse = (why: string): RevisionImage => ({ ok: false, reason: `${which} ${why}` });
  if (revision.image === undefined) {
    return refuse('has no image in the container, so there is nothing to deploy again.');
  }
  if (revision.digest === undefined) {
    return refuse(
      'is not pinned by a digest, and no ship.dockercoins.io/digest annotation describes it, so ' +
        'what it ran cannot be deployed again exactly.',
    );
  }
  if (revision.commit === undefined) {
    return refuse(
      'has no commit: no ship.dockercoins.io annotations describe its image (it was set by hand, ' +
        'e.g. `kubectl set image`, or the annotations were removed), so its commit is unknown.',
    );
  }
  if (!COMMIT.test(revision.commit)) {
    return refuse(
      `has a ship.dockercoins.io/commit annotation that is not a commit: ${quoteValue(revision.commit)} ` +
        '(expected 40 hex, or the 12-hex commit tag).',
    );
  }
  const tag = revision.tag ?? revision.commit.slice(0, COMMIT_TAG_LENGTH);
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
