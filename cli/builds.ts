/**
 * What an image's tags say about the build that made it, read with the tag rules of
 * core/image-tags.js: the commit tag names the commit, a sortable tag
 * `<branch>-<sha7>-<build number>` names the branch and the build, a release tag the release.
 * Pure: commands hand in what the registry answered.
 */
import { classifyTag, sanitizeTag } from '../core/image-tags';
import type { EnvironmentSettings, ServiceSettings } from '../lib/deployer-contract';
import type { DesiredImage } from '../core/types';
import type { ImageRecord } from './images';

const SORTABLE = /^(.+)-([0-9a-f]{7})-([1-9][0-9]{0,15})$/;
const COMMIT_ID = /^[0-9a-f]{40}$/;

/** What the tags of one image tell. */
export interface BuildFacts {
  /** The 12-hex commit tag, when the image has one. */
  readonly commitTag: string | undefined;
  /** The 40-hex revision label, else the commit tag; undefined when neither is there. */
  readonly commit: string | undefined;
  /** Release tags, newest version first. */
  readonly releases: readonly string[];
  /** Sortable tags of this commit: branch (as sanitised in the tag) and build number. */
  readonly builds: readonly {
    readonly tag: string;
    readonly branch: string;
    readonly number: number;
  }[];
  /** The highest build number of those: every later build of the project has a higher one. */
  readonly buildNumber: number | undefined;
}

export function buildFacts(image: ImageRecord, releaseTagPattern: string): BuildFacts {
  const kinds = image.tags.map((tag) => ({ tag, kind: classifyTag(tag, releaseTagPattern) }));
  const commitTag = kinds.find((k) => k.kind === 'commit')?.tag;
  const revision =
    image.revision !== undefined && COMMIT_ID.test(image.revision) ? image.revision : undefined;
  const commit = revision ?? commitTag;
  const sha7 = commit?.slice(0, 7);
  const builds = kinds
    .filter((k) => k.kind === 'branch')
    .map((k) => SORTABLE.exec(k.tag))
    .filter((m): m is RegExpExecArray => m !== null && (sha7 === undefined || m[2] === sha7))
    .map((m) => ({ tag: m[0], branch: m[1]!, number: Number(m[3]) }))
    .sort((a, b) => b.number - a.number);
  const releases = kinds
    .filter((k) => k.kind === 'release')
    .map((k) => k.tag)
    .sort(compareVersionsDescending);
  return {
    commitTag,
    commit,
    releases,
    builds,
    buildNumber: builds[0]?.number,
  };
}

/** `v1.10.0` after `v1.9.2`: digit runs compare as numbers, the rest as text. */
export function compareVersionsDescending(a: string, b: string): number {
  const parts = (text: string): (string | number)[] =>
    text.split(/(\d+)/).map((part) => (/^\d+$/.test(part) ? Number(part) : part));
  const left = parts(a);
  const right = parts(b);
  for (let i = 0; i < Math.max(left.length, right.length); i += 1) {
    const x = left[i];
    const y = right[i];
    if (x === y) continue;
    if (x === undefined) return 1;
    if (y === undefined) return -1;
    if (typeof x === 'number' && typeof y === 'number') return y - x;
    return String(y) < String(x) ? -1 : 1;
  }
  return 0;
}

/** Tags in the order people read them: commit, releases, builds (newest first), the rest. */
export function orderTags(tags: readonly string[], releaseTagPattern: string): string[] {
  const rank = { commit: 0, release: 1, branch: 2, 'pull-request': 3, other: 4 } as const;
  const build = (tag: string): number => Number(SORTABLE.exec(tag)?.[3] ?? 0);
  return [...tags].sort((a, b) => {
    const ka = classifyTag(a, releaseTagPattern);
    const kb = classifyTag(b, releaseTagPattern);
    if (ka !== kb) return rank[ka] - rank[kb];
    if (ka === 'release') return compareVersionsDescending(a, b);
    if (ka === 'branch') return build(b) - build(a) || (a < b ? -1 : 1);
    return a < b ? -1 : a > b ? 1 : 0;
  });
}

/** Why an image cannot be deployed by `ship`: the message names it and the fix. */
export class NotDeployableError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'NotDeployableError';
  }
}

/**
 * The image a person asked for, as the deployer's plan takes it: pinned by digest, with the
 * commit and build its tags prove. The build project and number are written only when a sortable
 * tag of this commit gives the number; the git ref only for a release tag, or when the sortable
 * tags name exactly one of the app's build branches. What is not known is left out (plan.ts then
 * removes the old annotation), never guessed.
 */
export function desiredFromImage(
  image: ImageRecord,
  tag: string,
  service: ServiceSettings,
  releaseTagPattern: string,
  buildBranches: readonly string[],
): DesiredImage {
  const facts = buildFacts(image, releaseTagPattern);
  const where = `${image.repositoryUri}:${tag} (${image.digest})`;
  if (facts.commit === undefined) {
    throw new NotDeployableError(
      `${where} has no commit tag (12 hex) and no org.opencontainers.image.revision label, so which commit it ` +
        'runs cannot be told; ship deploys only images the pipeline built. Build the commit (git push), then ' +
        'deploy its commit tag.',
    );
  }
  if (
    facts.commitTag !== undefined &&
    image.revision !== undefined &&
    COMMIT_ID.test(image.revision) &&
    !image.revision.startsWith(facts.commitTag)
  ) {
    throw new NotDeployableError(
      `${where}: its revision label says commit ${image.revision} but its commit tag is ${facts.commitTag}. ` +
        'The tags do not describe the image; nothing was deployed. Find out who pushed or retagged it.',
    );
  }
  const branches = [...new Set(facts.builds.map((b) => b.branch))];
  const matching = buildBranches.filter(
    (b) => branches.length === 1 && sanitizeTag(b) === branches[0],
  );
  const kind = classifyTag(tag, releaseTagPattern);
  const gitRef =
    kind === 'release'
      ? `refs/tags/${tag}`
      : matching.length === 1
        ? `refs/heads/${matching[0]}`
        : undefined;
  return {
    image: `${image.repositoryUri}:${tag}@${image.digest}`,
    tag,
    digest: image.digest,
    commit: facts.commit,
    buildProject: facts.buildNumber === undefined ? undefined : service.project,
    buildNumber: facts.buildNumber,
    buildArn: undefined,
    gitRef,
  };
}

/** The newest image built for an environment's refs, and the tag that makes it so. */
export interface NewestImage {
  readonly image: ImageRecord;
  /** The sortable tag (`main-6e0de79-57`) or the release tag. */
  readonly tag: string;
}

/**
 * For branches, the image with the highest build number among the sortable tags of those
 * branches; for release tags, the newest release (push time, then version). An environment with
 * both gets whichever of the two was pushed last.
 */
export function newestFor(
  environment: EnvironmentSettings,
  images: readonly ImageRecord[],
  releaseTagPattern: string,
): NewestImage | undefined {
  const wanted = new Set(environment.branches.map((b) => sanitizeTag(b)));
  let fromBranch: (NewestImage & { number: number }) | undefined;
  let fromRelease: NewestImage | undefined;
  for (const image of images) {
    const facts = buildFacts(image, releaseTagPattern);
    for (const build of facts.builds) {
      if (
        wanted.has(build.branch) &&
        (fromBranch === undefined || build.number > fromBranch.number)
      ) {
        fromBranch = { image, tag: build.tag, number: build.number };
      }
    }
    const release = facts.releases[0];
    if (environment.releaseTags && release !== undefined) {
      const newer =
        fromRelease === undefined ||
        (image.pushedAt?.getTime() ?? 0) > (fromRelease.image.pushedAt?.getTime() ?? 0) ||
        ((image.pushedAt?.getTime() ?? 0) === (fromRelease.image.pushedAt?.getTime() ?? 0) &&
          compareVersionsDescending(release, fromRelease.tag) < 0);
      if (newer) fromRelease = { image, tag: release };
    }
  }
  if (fromBranch === undefined) return fromRelease;
  const branchResult: NewestImage = { image: fromBranch.image, tag: fromBranch.tag };
  if (fromRelease === undefined) return branchResult;
  return (fromRelease.image.pushedAt?.getTime() ?? 0) > (fromBranch.image.pushedAt?.getTime() ?? 0)
    ? fromRelease
    : branchResult;
}

/**
 * A Deployment stuck above every real build: its build-number annotation is higher than any build
 * the registry knows of the service, and the image it runs does not carry that number in its own
 * sortable tags. Every later build then plans `older-build` and is skipped, silently, until
 * someone deploys by hand (a forged event, or an annotation edited by hand, can leave it there).
 * Undefined when nothing says so; an image whose tags hold no build number (a release built from
 * a tag push) is given the benefit of the doubt.
 */
export interface OlderBuildLock {
  /** The build number the Deployment's annotation claims. */
  readonly running: number;
  /** The highest build number among the service's images in the registry. */
  readonly highestKnown: number;
}

export function olderBuildLock(
  running: { readonly buildNumber?: number | undefined; readonly digest?: string | undefined },
  images: readonly ImageRecord[],
  releaseTagPattern: string,
): OlderBuildLock | undefined {
  const claimed = running.buildNumber;
  if (claimed === undefined) return undefined;
  let highestKnown: number | undefined;
  let own: BuildFacts | undefined;
  for (const image of images) {
    const facts = buildFacts(image, releaseTagPattern);
    for (const build of facts.builds) {
      if (highestKnown === undefined || build.number > highestKnown) highestKnown = build.number;
    }
    if (running.digest !== undefined && image.digest === running.digest) own = facts;
  }
  if (highestKnown === undefined || claimed <= highestKnown) return undefined;
  // The running image's own tags name its build: a claim they contradict is the lock.
  if (own !== undefined && own.builds.length === 0) return undefined;
  if (own !== undefined && own.builds.some((b) => b.number === claimed)) return undefined;
  return { running: claimed, highestKnown };
}
