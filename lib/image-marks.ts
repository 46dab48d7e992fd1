/**
 * Marks in the registry for the images that run and the images a rollback goes back to.
 *
 * An ECR lifecycle policy sees only tags and push times, never what a cluster runs. So the
 * deployer puts a moving tag on what it deployed (`deployed.<environment>.<deployment>.<container>`)
 * and on what ran there before (`previous.…`, the rollback target), and the registry's lifecycle
 * policy keeps every image carrying one, ahead of every rule that expires. The tags are excluded
 * from tag immutability (they move with each deploy); commit, branch and release tags stay
 * immutable. Shared by the registry construct (rules, exclusions) and the deployer (which writes
 * them), so the two cannot disagree.
 */
import { createHash } from 'node:crypto';

/** What a mark says about the image it is on. */
export type ImageMarkKind = 'deployed' | 'previous';

/**
 * The tag prefixes of the marks. No tag a build makes starts so (commit tags are hex, pull-request
 * tags start with `pr-`, release tags match the release pattern), except the branch tag of a
 * branch itself named `deployed.…` or `previous.…` (docs/registry-lifecycle.md says not to).
 * `.` separates the parts unambiguously: environments and containers are DNS labels (no `.`).
 */
export const IMAGE_MARK_PREFIX: Readonly<Record<ImageMarkKind, string>> = {
  deployed: 'deployed.',
  previous: 'previous.',
};

/** ECR wildcards of the marks: lifecycle keep rules and tag-mutability exclusion filters. */
export const IMAGE_MARK_WILDCARDS: readonly string[] = [
  `${IMAGE_MARK_PREFIX.deployed}*`,
  `${IMAGE_MARK_PREFIX.previous}*`,
];

/** Docker's tag length limit. */
const MAX_TAG_LENGTH = 128;

/**
 * The mark of one Deployment's container in one environment:
 * `deployed.prod.worker.worker`. When the names are too long for a tag (128 characters), the
 * Deployment and container are replaced by the first 16 hex of their SHA-256:
 * `deployed.prod.3f1c…` — still one tag per target, still under the same wildcard.
 */
export function imageMarkTag(
  kind: ImageMarkKind,
  environment: string,
  target: { readonly deployment: string; readonly container: string },
): string {
  const prefix = `${IMAGE_MARK_PREFIX[kind]}${environment}.`;
  const readable = `${prefix}${target.deployment}.${target.container}`;
  if (readable.length <= MAX_TAG_LENGTH) return readable;
  const digest = createHash('sha256')
    .update(`${target.deployment}/${target.container}`)
    .digest('hex');
  return `${prefix}${digest.slice(0, 16)}`;
}
