/**
 * plan: what a build means and what to do with each Deployment, decided from data alone. Pure: no
 * I/O and no clock (`now` is a parameter), so every rule is a table test, and the deployer and the
 * `ship` CLI decide the same way.
 *
 * Rules, in order:
 * - where: `refs/heads/<b>` deploys to the environments listing branch b; `refs/tags/<t>` with t
 *   a release tag to the environments with `releaseTags`; anything else (pull requests, other
 *   branches and tags, no ref) nowhere;
 * - what: the release tag for a tag ref, the commit tag for a branch, pinned by digest
 *   (`<repository>:<tag>@sha256:…`); never `latest`, never a pull-request or branch tag;
 * - per Deployment: missing Deployment or container fails (a strategic merge would add a
 *   container); paused skips (automatic deploys only); the same digest running skips (a duplicate
 *   event starts no rollout); a newer build of the same project running skips (out-of-order
 *   builds never downgrade); otherwise one patch of the image and our annotations, with the
 *   resourceVersion read as its precondition.
 */
import { classifyTag, sanitizeTag } from './image-tags';
import {
  ANNOTATIONS,
  type DeployerSettings,
  type EnvironmentSettings,
  type RejectedDigest,
  type VerificationRecord,
} from '../lib/deployer-contract';
import type {
  BuildPlan,
  BuildRecord,
  Container,
  Deployment,
  DesiredImage,
  RunningImage,
  StrategicMergePatch,
  TargetPlan,
  TargetRef,
} from './types';
import { readVerification } from './verify';

/** How a person's deploy differs from the Lambda's. */
export interface PlanOptions {
  /** Written as `deployed-by`. `deployer` is an automatic deploy: only it honours `paused`. */
  readonly deployedBy: 'deployer' | 'ship';
  /**
   * Deploy even when a newer build of the project runs: an explicit rollback (`ship rollback`,
   * `ship deploy` of an older tag). Never set by the Lambda.
   * @default false
   */
  readonly allowOlder?: boolean;
  /**
   * Pause automatic deploys in the same patch (`ship rollback`), so the next build does not undo
   * it and nothing is half-applied. Never set by the Lambda.
   * @default false - the paused annotation is left as it is
   */
  readonly pause?: boolean;
  /**
   * Verify the change: the PATCH that changes the image also writes the verification record
   * (`ship.dockercoins.io/verification`, state `verifying`) naming `execution` with a lease, and a
   * Deployment that already runs the digest unverified gets an annotation-only PATCH taking the
   * lease (plan action `lease`), unless another execution's lease holds (skip `verifying`) or the
   * digest's verification is decided (skip `already-running`).
   * @default - no record written; an already-running digest is skipped as before
   */
  readonly verification?: {
    /** The Step Functions execution id, or `ship:<user>`. */
    readonly execution: string;
    /** The service's verify deadline; the lease is {@link leaseSeconds} of it. */
    readonly deadlineSeconds: number;
  };
}

/** How long an execution owns a verification: the verify deadline, a rollback's, and a margin. */
export function leaseSeconds(deadlineSeconds: number): number {
  return 2 * deadlineSeconds + 120;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;
const BUILD_NUMBER = /^[1-9][0-9]{0,15}$/;
const SHORT_SHA = 7;

/** Where a build goes and with which image, or why nowhere. */
export function planBuild(build: BuildRecord, settings: DeployerSettings): BuildPlan {
  const service = settings.services.find((s) => s.service === build.service);
  if (service === undefined) {
    // parse only makes records of our services; this is a settings object from somewhere else.
    throw new Error(`planBuild: service "${build.service}" is not in the deployer's settings`);
  }
  const pattern = settings.releaseTagPattern;
  const ref = build.gitRef;
  const skip = (reason: 'not-a-deploy-ref' | 'tag-not-deployable', detail: string): BuildPlan => ({
    action: 'skip',
    build,
    reason,
    detail,
  });
  const nowhere = (why: string): BuildPlan =>
    skip(
      'not-a-deploy-ref',
      `${describeRef(ref)} ${why}; ${deployRules(settings)}. Nothing was deployed (image ` +
        `${build.repositoryUri}:${build.imageTag}).`,
    );

  let environments: EnvironmentSettings[];
  let tag: string;
  if (ref.startsWith('refs/heads/')) {
    const branch = ref.slice('refs/heads/'.length);
    environments = settings.environments.filter((e) => e.branches.includes(branch));
    if (environments.length === 0) return nowhere('deploys nowhere');
    tag = build.imageTag;
  } else if (ref.startsWith('refs/tags/')) {
    const release = sanitizeTag(ref.slice('refs/tags/'.length));
    if (classifyTag(release, pattern) !== 'release') {
      return nowhere(`is not a release tag (pattern "${pattern}")`);
    }
    environments = settings.environments.filter((e) => e.releaseTags);
    if (environments.length === 0)
      return nowhere('is a release, but no environment takes releases');
    if (!build.imageTags.includes(release)) {
      return skip(
        'tag-not-deployable',
        `${describeRef(ref)} is a release, but the build did not push the tag "${release}" (it pushed ` +
          `${build.imageTags.join(', ')}). Nothing was deployed; rebuild the tag.`,
      );
    }
    tag = release;
  } else {
    return nowhere('deploys nowhere');
  }

  const notDeployable = tagNotDeployable(tag, pattern);
  if (notDeployable !== undefined) {
    return skip('tag-not-deployable', `${notDeployable} Nothing was deployed.`);
  }

  const image: DesiredImage = {
    image: `${build.repositoryUri}:${tag}@${build.digest}`,
    tag,
    digest: build.digest,
    commit: build.commit,
    buildProject: build.project,
    buildNumber: build.buildNumber,
    buildArn: build.buildArn,
    gitRef: build.gitRef,
  };
  const targets: TargetRef[] = environments.flatMap((environment) =>
    service.targets.map((target) => ({ environment, service: service.service, target })),
  );
  return { action: 'deploy', build, image, targets };
}

/**
 * Why a tag is not one that deploys (`tag-not-deployable`), or undefined when it is: only commit
 * tags (12 hex) and release tags deploy; never a branch (sortable) or pull-request tag, never
 * `latest` or any other tag. The deployer's rule, which `ship deploy` applies too.
 */
export function tagNotDeployable(tag: string, releaseTagPattern: string): string | undefined {
  const kind = classifyTag(tag, releaseTagPattern);
  if (kind === 'commit' || kind === 'release') return undefined;
  return (
    `the tag to deploy, "${tag}", is a${kind === 'other' ? 'n unknown' : ` ${kind}`} tag; only commit tags ` +
    `(12 hex) and release tags (pattern "${releaseTagPattern}") deploy, never "latest".`
  );
}

/**
 * What to do with one Deployment, given what it is now (`live`, undefined when the API server
 * answered 404).
 *
 * An equal build number with a different digest (the project was recreated and its numbers
 * started again, or someone edited the annotations) is not proof of a downgrade: it deploys.
 */
export function planTarget(
  ref: TargetRef,
  image: DesiredImage,
  live: Deployment | undefined,
  now: Date,
  options: PlanOptions,
): TargetPlan {
  const where = describeTargetPlace(ref);
  if (live === undefined) {
    return {
      action: 'fail',
      ref,
      reason: 'deployment-missing',
      to: image,
      detail:
        `${where}: the Deployment does not exist. Create it (kubectl apply -k k8s/…), or correct which ` +
        'Deployment runs the service (config services; SHIP_SERVICES).',
    };
  }
  const containers = live.spec?.template?.spec?.containers ?? [];
  if (!containers.some((c) => c.name === ref.target.container)) {
    return {
      action: 'fail',
      ref,
      reason: 'container-missing',
      to: image,
      detail:
        `${where}: the Deployment has no container "${ref.target.container}" (it has ` +
        `${containers.map((c) => `"${c.name}"`).join(', ') || 'none'}); a patch would add one. Nothing was patched: ` +
        'correct the container name (config services; SHIP_SERVICES) or the Deployment.',
    };
  }
  const from = runningImage(live, ref.target.container);
  const annotations = live.metadata.annotations ?? {};
  const skip = (
    reason: 'paused' | 'already-running' | 'older-build' | 'digest-rejected' | 'verifying',
    detail: string,
  ): TargetPlan => ({
    action: 'skip',
    ref,
    reason,
    from,
    to: image,
    detail: `${where}: ${detail}`,
  });

  if (options.deployedBy === 'deployer' && annotations[ANNOTATIONS.paused] === 'true') {
    return skip(
      'paused',
      `automatic deploys are paused (${ANNOTATIONS.paused}: "true"); it keeps running ` +
        `${from?.image ?? 'what it runs'}. Resume with \`ship resume\`, or deploy by hand with \`ship deploy\`.`,
    );
  }
  const rejected = rejectedEntry(live, image.digest);
  if (options.deployedBy === 'deployer' && rejected !== undefined) {
    return skip(
      'digest-rejected',
      `${image.digest} failed verification here at ${rejected.at} (${rejected.reason}); it is never ` +
        `deployed again automatically. It keeps running ${from?.image ?? 'what it runs'}. Deploy a fixed ` +
        'build, or deploy this tag by hand with `ship deploy` (which takes it off the rejected list).',
    );
  }
  if (from?.digest === image.digest) {
    const running = `already runs ${image.digest} (${from.image}); no rollout started`;
    const verification = options.verification;
    if (verification === undefined) return skip('already-running', `${running}.`);
    const record = readVerification(live);
    if (record !== undefined && record.digest === image.digest) {
      if (record.state !== 'verifying') {
        return skip(
          'already-running',
          `${running}; its verification: ${record.state} (${record.reason}).`,
        );
      }
      const held = Date.parse(record.leaseUntil) > now.getTime();
      if (record.execution !== verification.execution && held) {
        return skip(
          'verifying',
          `${running}; ${record.execution} verifies it (lease until ${record.leaseUntil}): one verdict, by it.`,
        );
      }
    }
    const resourceVersion = live.metadata.resourceVersion;
    if (resourceVersion === undefined || resourceVersion === '') {
      return skip(
        'already-running',
        `${running}; without metadata.resourceVersion its verification cannot be taken.`,
      );
    }
    const why =
      record === undefined || record.digest !== image.digest
        ? 'never verified'
        : record.execution === verification.execution
          ? 'verification resumed by its own execution'
          : `the lease of ${record.execution} expired at ${record.leaseUntil}`;
    return {
      action: 'lease',
      ref,
      from,
      to: image,
      resourceVersion,
      generation: live.metadata.generation ?? 0,
      detail: `${where}: ${running}; ${why}: verifying it.`,
      patch: {
        metadata: {
          resourceVersion,
          annotations: {
            [ANNOTATIONS.verification]: JSON.stringify(
              verifyingRecord(
                image,
                verification,
                live.metadata.generation ?? 0,
                now,
                'verifying what runs',
              ),
            ),
          },
        },
      },
    };
  }
  if (
    !options.allowOlder &&
    from !== undefined &&
    image.buildProject !== undefined &&
    from.buildProject === image.buildProject &&
    from.buildNumber !== undefined &&
    image.buildNumber !== undefined &&
    from.buildNumber > image.buildNumber
  ) {
    return skip(
      'older-build',
      `runs build ${from.buildProject}#${from.buildNumber} (${from.tag ?? from.image}), newer than ` +
        `#${image.buildNumber}: never downgraded automatically. Roll back on purpose with \`ship rollback\`.`,
    );
  }
  const resourceVersion = live.metadata.resourceVersion;
  if (resourceVersion === undefined || resourceVersion === '') {
    return {
      action: 'fail',
      ref,
      reason: 'rejected',
      to: image,
      detail:
        `${where}: the API server returned the Deployment without metadata.resourceVersion, so the ` +
        'patch could not be made conditional on it. Nothing was patched.',
    };
  }
  return {
    action: 'patch',
    ref,
    from,
    to: image,
    resourceVersion,
    patch: imagePatch(ref, image, live, now, options),
  };
}

/** The record a verification starts with. */
function verifyingRecord(
  image: DesiredImage,
  verification: NonNullable<PlanOptions['verification']>,
  generation: number,
  now: Date,
  reason: string,
): VerificationRecord {
  return {
    state: 'verifying',
    image: image.image,
    digest: image.digest,
    ...(image.buildNumber === undefined ? {} : { build: image.buildNumber }),
    execution: verification.execution,
    generation,
    since: now.toISOString(),
    leaseUntil: new Date(
      now.getTime() + leaseSeconds(verification.deadlineSeconds) * 1000,
    ).toISOString(),
    reason,
  };
}

/** The rejected list on a Deployment, newest first; [] when absent or malformed. */
export function rejectedDigests(live: Deployment): RejectedDigest[] {
  const text = live.metadata.annotations?.[ANNOTATIONS.rejected];
  if (text === undefined) return [];
  try {
    const value: unknown = JSON.parse(text);
    return Array.isArray(value)
      ? value.filter(
          (e): e is RejectedDigest =>
            typeof e === 'object' && e !== null && typeof (e as RejectedDigest).digest === 'string',
        )
      : [];
  } catch {
    return [];
  }
}

function rejectedEntry(live: Deployment, digest: string): RejectedDigest | undefined {
  return rejectedDigests(live).find((e) => e.digest === digest);
}

/**
 * The one strategic-merge body: the container's image and our annotations, conditional on the
 * resourceVersion read. It names the container by its merge key (name) only, so every other
 * container and field stays as it is.
 */
function imagePatch(
  ref: TargetRef,
  image: DesiredImage,
  live: Deployment,
  now: Date,
  options: PlanOptions,
): StrategicMergePatch {
  const resourceVersion = live.metadata.resourceVersion;
  const rejected = rejectedDigests(live);
  // A person deploying a rejected digest by hand takes it off the list.
  const unrejected = rejected.some((e) => e.digest === image.digest)
    ? {
        [ANNOTATIONS.rejected]: JSON.stringify(rejected.filter((e) => e.digest !== image.digest)),
      }
    : {};
  const verification =
    options.verification === undefined
      ? {}
      : {
          // Changing the template raises metadata.generation by exactly one.
          [ANNOTATIONS.verification]: JSON.stringify(
            verifyingRecord(
              image,
              options.verification,
              (live.metadata.generation ?? 0) + 1,
              now,
              `verifying ${image.tag}`,
            ),
          ),
        };
  // null removes an annotation (strategic merge): one the image does not give must not stay
  // behind, describing the image this one replaces.
  const known = (value: string | undefined): string | null => value ?? null;
  return {
    metadata: {
      resourceVersion,
      annotations: {
        [ANNOTATIONS.changeCause]: changeCause(ref.service, image, options.deployedBy),
        [ANNOTATIONS.commit]: image.commit,
        [ANNOTATIONS.tag]: image.tag,
        [ANNOTATIONS.digest]: image.digest,
        [ANNOTATIONS.buildProject]: known(image.buildProject),
        [ANNOTATIONS.buildNumber]: known(image.buildNumber?.toString()),
        [ANNOTATIONS.buildArn]: known(image.buildArn),
        [ANNOTATIONS.gitRef]: known(image.gitRef),
        [ANNOTATIONS.deployedAt]: now.toISOString(),
        [ANNOTATIONS.deployedBy]: options.deployedBy,
        ...(options.pause === true ? { [ANNOTATIONS.paused]: 'true' } : {}),
        ...unrejected,
        ...verification,
      },
    },
    spec: {
      template: { spec: { containers: [{ name: ref.target.container, image: image.image }] } },
    },
  };
}

/** What `kubectl rollout history` shows for the revision. */
export function changeCause(
  service: string,
  image: DesiredImage,
  deployedBy: PlanOptions['deployedBy'],
): string {
  const build =
    image.buildProject === undefined || image.buildNumber === undefined
      ? ''
      : `, build ${image.buildProject}#${image.buildNumber}`;
  return (
    `${service} ${image.tag} (commit ${image.commit.slice(0, SHORT_SHA)}${build})` +
    `${deployedBy === 'ship' ? ' by ship' : ''}`
  );
}

/** What `ship pause` or `ship resume` does to one Deployment. */
export type PausePlan =
  | {
      readonly action: 'patch';
      readonly ref: TargetRef;
      readonly resourceVersion: string;
      readonly patch: StrategicMergePatch;
    }
  | { readonly action: 'skip'; readonly ref: TargetRef; readonly detail: string }
  | { readonly action: 'fail'; readonly ref: TargetRef; readonly detail: string };

/**
 * Pausing or resuming automatic deploys of one Deployment: only the paused annotation, conditional
 * on the resourceVersion read; nothing when it already is so. Resuming removes the annotation.
 */
export function planPause(
  ref: TargetRef,
  live: Deployment | undefined,
  paused: boolean,
): PausePlan {
  const where = describeTargetPlace(ref);
  if (live === undefined) {
    return {
      action: 'fail',
      ref,
      detail: `${where}: the Deployment does not exist. Create it (kubectl apply -k k8s/…), or correct which Deployment runs the service.`,
    };
  }
  const now = live.metadata.annotations?.[ANNOTATIONS.paused] === 'true';
  if (now === paused) {
    return {
      action: 'skip',
      ref,
      detail: `${where}: automatic deploys are already ${paused ? 'paused' : 'on (not paused)'}.`,
    };
  }
  const resourceVersion = live.metadata.resourceVersion;
  if (resourceVersion === undefined || resourceVersion === '') {
    return {
      action: 'fail',
      ref,
      detail: `${where}: the API server returned the Deployment without metadata.resourceVersion; nothing was patched.`,
    };
  }
  return {
    action: 'patch',
    ref,
    resourceVersion,
    patch: {
      metadata: {
        resourceVersion,
        annotations: { [ANNOTATIONS.paused]: paused ? 'true' : null },
      },
    },
  };
}

/**
 * What one container of a Deployment runs, as far as its image reference and our annotations
 * tell; undefined when the container is absent or has no image. The annotations are believed only
 * while they describe the running image (their digest is the one running), so a `kubectl set
 * image` by hand makes them stale, not authoritative. A reference without a digest takes the
 * digest of our annotations only when it still names their tag.
 */
export function runningImage(live: Deployment, container: string): RunningImage | undefined {
  const found: Container | undefined = live.spec?.template?.spec?.containers?.find(
    (c) => c.name === container,
  );
  const image = found?.image;
  if (image === undefined || image === '') return undefined;
  const reference = parseImageReference(image);
  const annotations = live.metadata.annotations ?? {};
  const annotated = {
    tag: annotations[ANNOTATIONS.tag],
    digest: annotations[ANNOTATIONS.digest],
  };
  const annotatedDigest =
    annotated.digest !== undefined && DIGEST.test(annotated.digest) ? annotated.digest : undefined;
  const digest =
    reference.digest ??
    (reference.tag !== undefined && reference.tag === annotated.tag ? annotatedDigest : undefined);
  const current = digest !== undefined && digest === annotatedDigest;
  const number = annotations[ANNOTATIONS.buildNumber];
  return {
    image,
    tag: reference.tag ?? (current ? annotated.tag : undefined),
    digest,
    commit: current ? annotations[ANNOTATIONS.commit] : undefined,
    buildProject: current ? annotations[ANNOTATIONS.buildProject] : undefined,
    buildNumber:
      current && number !== undefined && BUILD_NUMBER.test(number) ? Number(number) : undefined,
  };
}

/**
 * `[host[:port]/]path[:tag][@sha256:…]` → its tag and digest. A `:` before the last `/` is the
 * registry's port, not a tag; a digest that is not sha256 counts as none.
 */
export function parseImageReference(image: string): {
  name: string;
  tag: string | undefined;
  digest: string | undefined;
} {
  const at = image.indexOf('@');
  const named = at < 0 ? image : image.slice(0, at);
  const pinned = at < 0 ? undefined : image.slice(at + 1);
  const colon = named.lastIndexOf(':');
  const hasTag = colon > named.lastIndexOf('/');
  return {
    name: hasTag ? named.slice(0, colon) : named,
    tag: hasTag ? named.slice(colon + 1) : undefined,
    digest: pinned !== undefined && DIGEST.test(pinned) ? pinned : undefined,
  };
}

/** Which refs deploy where, for people: the skip message's second half. */
export function deployRules(settings: DeployerSettings): string {
  const rules = settings.environments.map((e) => {
    const refs = [
      ...e.branches.map((b) => `refs/heads/${b}`),
      ...(e.releaseTags ? [`release tags (refs/tags/${settings.releaseTagPattern})`] : []),
    ];
    return `${refs.join(' and ')} → ${e.name} (namespace ${e.namespace}, cluster ${e.clusterName})`;
  });
  return `only ${rules.join('; ')} deploy`;
}

function describeRef(ref: string): string {
  return ref === '' ? 'the build has no git ref (started from a commit, or retried) and' : ref;
}

/** `environment main: Deployment dockercoins/hasher (container hasher) on cluster dockercoins` */
export function describeTargetPlace(ref: TargetRef): string {
  const { environment, target } = ref;
  return (
    `environment ${environment.name}: Deployment ${environment.namespace}/${target.deployment} ` +
    `(container ${target.container}) on cluster ${environment.clusterName}`
  );
}
