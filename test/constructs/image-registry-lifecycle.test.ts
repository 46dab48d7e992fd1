/**
 * The registry's lifecycle policy, evaluated as ECR documents it (test/support/ecr-lifecycle.ts)
 * over a generated history of hundreds of images of every kind a repository holds: what runs and
 * what a rollback goes back to never expires, releases never do, pull-request and branch images
 * expire on their own counts, untagged ones after their days, and what is kept stays bounded.
 */
import { Duration, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { ImageRegistry, ImageRegistryProps } from '../../lib/constructs/image-registry';
import { imageMarkTag } from '../../lib/image-marks';
import { newApp } from '../support/app';
import {
  evaluateLifecycle,
  parsePolicyText,
  wildcardMatches,
  type RegistryImage,
} from '../support/ecr-lifecycle';

const NOW = new Date('2026-12-06T12:00:00Z');
const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

function policyOf(props: Partial<ImageRegistryProps>, repositoryName = 'dockercoins/rng') {
  const stack = new Stack(newApp(), 'Test');
  new ImageRegistry(stack, 'Registry', { services: ['rng'], ...props });
  const found = Template.fromStack(stack).findResources('AWS::ECR::Repository', {
    Properties: { RepositoryName: repositoryName },
  });
  const [resource] = Object.values(found) as {
    Properties: { LifecyclePolicy: { LifecyclePolicyText: string } };
  }[];
  if (resource === undefined) throw new Error(`no repository ${repositoryName}`);
  return parsePolicyText(resource.Properties.LifecyclePolicy.LifecyclePolicyText);
}

type Kind = 'branch' | 'pull-request' | 'release' | 'commit' | 'cache' | 'untagged';
interface HistoryImage extends RegistryImage {
  readonly kind: Kind;
}

/** A deterministic pseudo-random sequence (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), 1 | state);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Two years of one service repository: a busy main branch, a quiet one, pull requests (from
 * before they had their own repository), releases, commit-only builds, the build cache and the
 * untagged caches it left behind. Then the marks the deployer moved: running and rollback images
 * of a busy environment, of a paused one (old images), of a quiet branch's environment, and of a
 * second Deployment of the same image in one environment.
 */
function history(seed: number): { images: HistoryImage[]; marked: Set<string> } {
  const next = random(seed);
  const images: HistoryImage[] = [];
  let serial = 0;
  const hex = (length: number) =>
    Array.from({ length }, () => Math.floor(next() * 16).toString(16)).join('');
  const add = (kind: Kind, tags: string[], ageDays: number): HistoryImage => {
    serial += 1;
    const image: HistoryImage = {
      digest: `sha256:${serial.toString(16).padStart(64, '0')}`,
      tags,
      kind,
      // Distinct push times: ECR orders by push time, ties would make counts ambiguous.
      pushedAt: new Date(NOW.getTime() - ageDays * DAY_MS - serial * 1000),
    };
    images.push(image);
    return image;
  };
  const commit = () => hex(12);
  const main: HistoryImage[] = [];
  for (let n = 1; n <= 400; n += 1) {
    const sha = commit();
    main.push(add('branch', [sha, `main-${sha.slice(0, 7)}-${n}`], 700 - n * 1.7));
  }
  const stable: HistoryImage[] = [];
  for (let n = 1; n <= 6; n += 1) {
    const sha = commit();
    stable.push(add('branch', [sha, `stable-${sha.slice(0, 7)}-${n}`], 650 - n * 10));
  }
  for (let n = 1; n <= 300; n += 1) {
    add('pull-request', [`pr-${n}-${hex(7)}`], 600 - n * 2 + next());
  }
  const releases: HistoryImage[] = [];
  for (let n = 1; n <= 30; n += 1) {
    const sha = commit();
    releases.push(add('release', [sha, `v1.${n}.0`], 690 - n * 23));
  }
  const commits: HistoryImage[] = [];
  for (let n = 1; n <= 120; n += 1) commits.push(add('commit', [commit()], 700 * next()));
  add('cache', ['buildcache'], 0.1);
  for (let n = 1; n <= 200; n += 1) add('untagged', [], 30 * next());

  const marks: [HistoryImage | undefined, string][] = [
    // prod runs the latest release; its rollback target is an older release
    [releases[29], imageMarkTag('deployed', 'prod', { deployment: 'rng', container: 'rng' })],
    [releases[27], imageMarkTag('previous', 'prod', { deployment: 'rng', container: 'rng' })],
    // staging is paused on a main build of a year and a half ago
    [main[40], imageMarkTag('deployed', 'staging', { deployment: 'rng', container: 'rng' })],
    [main[38], imageMarkTag('previous', 'staging', { deployment: 'rng', container: 'rng' })],
    // a quiet branch's environment
    [stable[5], imageMarkTag('deployed', 'stable', { deployment: 'rng', container: 'rng' })],
    [stable[4], imageMarkTag('previous', 'stable', { deployment: 'rng', container: 'rng' })],
    // a second Deployment of the image in prod, deployed by hand from a commit-only build
    [commits[3], imageMarkTag('deployed', 'prod', { deployment: 'rng-canary', container: 'rng' })],
    [commits[7], imageMarkTag('previous', 'prod', { deployment: 'rng-canary', container: 'rng' })],
    // dev runs the newest main build; its rollback target is the one before
    [main[399], imageMarkTag('deployed', 'dev', { deployment: 'rng', container: 'rng' })],
    [main[398], imageMarkTag('previous', 'dev', { deployment: 'rng', container: 'rng' })],
  ];
  const marked = new Set<string>();
  for (const [image, tag] of marks) {
    if (image === undefined) throw new Error(`history: no image for ${tag}`);
    (image.tags as string[]).push(tag);
    marked.add(image.digest);
  }
  return { images, marked };
}

const newestFirst = (images: readonly HistoryImage[]) =>
  [...images].sort((a, b) => b.pushedAt.getTime() - a.pushedAt.getTime());

describe.each([
  { name: 'defaults', props: {}, keep: { pr: 20, branch: 50, commit: 50 }, untaggedDays: 3 },
  {
    name: 'custom counts',
    props: {
      pullRequestImagesToKeep: 5,
      branchImagesToKeep: 12,
      commitImagesToKeep: 30,
      untaggedImageExpiry: Duration.days(10),
    },
    keep: { pr: 5, branch: 12, commit: 30 },
    untaggedDays: 10,
  },
])('lifecycle over a generated history: $name', ({ props, keep, untaggedDays }) => {
  const policy = policyOf({ buildCacheTag: 'buildcache', branches: ['main', 'stable'], ...props });

  describe.each([1, 2, 3])('history seed %d', (seed) => {
    const { images, marked } = history(seed);
    test.each(['all', 'unclaimed'] as const)('as ECR evaluates it (view: %s)', (view) => {
      const { expired, kept } = evaluateLifecycle(policy, images, { now: NOW, view });
      const isExpired = (image: HistoryImage) => expired.has(image.digest);
      const ofKind = (kind: Kind) => newestFirst(images.filter((i) => i.kind === kind));

      // Nothing that runs or is a rollback target expires, in any environment
      expect(images.filter((i) => marked.has(i.digest) && isExpired(i)).map((i) => i.tags)).toEqual(
        [],
      );
      // Release images never expire
      const releases = images.filter((i) => i.tags.some((t) => wildcardMatches('v*', t)));
      expect(releases).toHaveLength(30);
      expect(releases.filter(isExpired)).toEqual([]);
      // The build cache is kept
      expect(ofKind('cache').filter(isExpired)).toEqual([]);
      // Untagged images expire after their days, not before
      for (const image of ofKind('untagged')) {
        const old = NOW.getTime() - image.pushedAt.getTime() > untaggedDays * DAY_MS;
        expect({
          age: NOW.getTime() - image.pushedAt.getTime(),
          expired: isExpired(image),
        }).toEqual({
          age: NOW.getTime() - image.pushedAt.getTime(),
          expired: old,
        });
      }
      // Pull-request images: exactly the newest N are kept, whatever else is pushed
      const pullRequests = ofKind('pull-request');
      expect(pullRequests.filter((i) => !isExpired(i))).toEqual(pullRequests.slice(0, keep.pr));
      // Branch images: the newest N of each branch are kept (on their own count, not competing
      // with pull requests, commits or a busier branch), and no more than N besides the marked
      for (const branch of ['main', 'stable']) {
        const branchImages = ofKind('branch').filter((i) =>
          i.tags.some((t) => t.startsWith(`${branch}-`)),
        );
        expect(branchImages.slice(0, keep.branch).filter(isExpired)).toEqual([]);
        expect(
          branchImages.filter((i) => !isExpired(i) && !marked.has(i.digest)).length,
        ).toBeLessThanOrEqual(keep.branch);
      }
      // Commit-only images: at most N besides the marked ones
      expect(
        ofKind('commit').filter((i) => !isExpired(i) && !marked.has(i.digest)).length,
      ).toBeLessThanOrEqual(keep.commit);
      // Bounded: marks + releases + cache + young untagged + the three counts
      const youngUntagged = ofKind('untagged').filter(
        (i) => NOW.getTime() - i.pushedAt.getTime() <= untaggedDays * DAY_MS,
      ).length;
      expect(kept.length).toBeLessThanOrEqual(
        marked.size + 30 + 1 + youngUntagged + keep.pr + 2 * keep.branch + keep.commit,
      );
      // And the history was big enough to need expiring
      expect(expired.size).toBeGreaterThan(600);
    });
  });
});

test('the pull-request repository keeps its newest N pull-request images and untagged ones for N days', () => {
  const policy = policyOf(
    { pullRequestRepositories: true, pullRequestImagesToKeep: 7 },
    'dockercoins/pr/rng',
  );
  const images: RegistryImage[] = [];
  for (let n = 1; n <= 100; n += 1) {
    images.push({
      digest: `sha256:${n}`,
      tags: [`pr-${n}-abcdef0`],
      pushedAt: new Date(NOW.getTime() - (100 - n) * HOUR_MS),
    });
  }
  images.push({ digest: 'sha256:u-old', tags: [], pushedAt: new Date(NOW.getTime() - 4 * DAY_MS) });
  images.push({ digest: 'sha256:u-new', tags: [], pushedAt: new Date(NOW.getTime() - DAY_MS) });
  const { kept } = evaluateLifecycle(policy, images, { now: NOW });
  expect(kept.map((i) => i.digest)).toEqual([
    'sha256:100',
    'sha256:99',
    'sha256:98',
    'sha256:97',
    'sha256:96',
    'sha256:95',
    'sha256:94',
    'sha256:u-new',
  ]);
});
