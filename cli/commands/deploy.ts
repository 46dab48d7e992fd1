/**
 * `ship deploy <service> <tag>` and `ship rollback <service> [--to <tag>]`: a person's deploy,
 * through the deployer's own plan and apply (core/plan.ts, core/apply.ts): the image pinned
 * by the digest the registry gives for the tag now, the same annotations, the same conditional
 * PATCH. Every Deployment of the service is read and planned before any is patched, so a refusal
 * changes nothing; then each is patched and its rollout followed until it is done, failed or the
 * timeout passes.
 */
import { classifyTag } from '../../core/image-tags';
import { ANNOTATIONS, type ServiceSettings } from '../../lib/deployer-contract';
import { deployTarget } from '../../core/apply';
import {
  parseImageReference,
  planTarget,
  runningImage,
  tagNotDeployable,
  type PlanOptions,
} from '../../core/plan';
import type {
  Deployment,
  DesiredImage,
  TargetOutcome,
  TargetRef,
  VerifyTarget,
} from '../../core/types';
import { describeVerdict } from '../../core/verify';
import { verifyDeploy, type Verification } from '../../core/verify-loop';
import { desiredFromImage, NotDeployableError } from '../builds';
import type { ShipContext } from '../context';
import { desiredFromRevision, previousImage, rolloutHistory } from '../history';
import { EXIT, ShipError, UsageError, formatJson } from '../output';
import { shortDigest } from '../table';

export interface RolloutOptions {
  /** Follow and verify the rollout (false: `--no-wait`, nothing verified or recorded). */
  readonly wait: boolean;
  /** The verify deadline, from the PATCH. */
  readonly timeoutSeconds: number;
  /** Roll a failed verification back to the last verified image (false: `--no-rollback`). */
  readonly rollback: boolean;
}

/** A Deployment and the image chosen for it. */
interface Step {
  readonly ref: TargetRef;
  readonly image: DesiredImage;
  /**
   * The image was read from the registry (a tag), not from the Deployment's own history: its
   * repository address is the one `--registry` reaches, which may not be the nodes' (see
   * {@link pullAddress}).
   */
  readonly fromRegistry: boolean;
}

export async function deployCommand(
  ctx: ShipContext,
  serviceName: string | undefined,
  tag: string | undefined,
  options: RolloutOptions & { allowOlder: boolean; allowBuildTag: boolean },
): Promise<number> {
  const service = ctx.service(serviceName, 'deploy');
  if (tag === undefined) {
    throw new UsageError(
      `which tag of ${service.service}? \`ship images ${service.service}\` lists them.`,
      'deploy',
    );
  }
  const settings = ctx.settings();
  if (classifyTag(tag, settings.releaseTagPattern) === 'other') {
    throw new UsageError(
      `${JSON.stringify(tag)} is not a tag the pipeline makes (a 12-hex commit tag, a release tag matching ` +
        `"${settings.releaseTagPattern}", a <branch>-<sha7>-<build> or pr- tag); never "latest". ` +
        `\`ship images ${service.service}\` lists them.`,
      'deploy',
    );
  }
  const [environment] = ctx.environments('one', 'deploy');
  // The deployer's own rule (tag-not-deployable): commit and release tags only.
  const notDeployable = tagNotDeployable(tag, settings.releaseTagPattern);
  if (notDeployable !== undefined) {
    if (!options.allowBuildTag) {
      throw new ShipError(
        `${notDeployable} The deployer would refuse it (tag-not-deployable); nothing was changed. Deploy the ` +
          `commit tag of the same image (\`ship images ${service.service}\` lists it), or, for an environment ` +
          'that takes no release tags, pass --allow-build-tag.',
      );
    }
    if (environment!.releaseTags) {
      throw new ShipError(
        `${notDeployable} --allow-build-tag is refused: environment ${environment!.name} takes release tags, ` +
          'so only commit and release tags deploy there. Nothing was changed; deploy the commit tag of the ' +
          `same image (\`ship images ${service.service}\` lists it).`,
      );
    }
  }
  const image = await resolveTag(ctx, service, tag);
  const steps = service.targets.map((target) => ({
    ref: { environment: environment!, service: service.service, target },
    image,
    fromRegistry: true,
  }));
  return carryOut(
    ctx,
    steps,
    { deployedBy: 'ship', allowOlder: options.allowOlder },
    options,
    'deploy',
  );
}

export async function rollbackCommand(
  ctx: ShipContext,
  serviceName: string | undefined,
  options: RolloutOptions & { to: string | undefined; pause: boolean },
): Promise<number> {
  const service = ctx.service(serviceName, 'rollback');
  const [environment] = ctx.environments('one', 'rollback');
  const planOptions: PlanOptions = { deployedBy: 'ship', allowOlder: true, pause: options.pause };
  if (options.to !== undefined) {
    const image = await resolveTag(ctx, service, options.to);
    const steps = service.targets.map((target) => ({
      ref: { environment: environment!, service: service.service, target },
      image,
      fromRegistry: true,
    }));
    return carryOut(ctx, steps, planOptions, options, 'rollback');
  }

  // The image before the current one, per Deployment, from its ReplicaSets' annotations.
  const steps: Step[] = [];
  for (const target of service.targets) {
    const ref = { environment: environment!, service: service.service, target };
    const where = `${environment!.name}: Deployment ${environment!.namespace}/${target.deployment}`;
    const client = await ctx.retry(() => ctx.clusters().connect(environment!));
    const live = await ctx.retry(() =>
      client.getDeployment(environment!.namespace, target.deployment),
    );
    if (live === undefined) {
      throw new ShipError(`${where} does not exist; nothing to roll back.`);
    }
    const selector = (live.spec?.selector as { matchLabels?: Record<string, string> } | undefined)
      ?.matchLabels;
    if (selector === undefined || Object.keys(selector).length === 0) {
      throw new ShipError(
        `${where} has no spec.selector.matchLabels, so its ReplicaSets cannot be listed; roll back with --to <tag>.`,
      );
    }
    const labelSelector = Object.entries(selector)
      .map(([k, v]) => `${k}=${v}`)
      .join(',');
    const replicaSets = await ctx.retry(() =>
      client.listReplicaSets(environment!.namespace, labelSelector),
    );
    const history = rolloutHistory(live, replicaSets, target.container);
    const running = runningImage(live, target.container);
    const previous = previousImage(history, running?.digest);
    if (previous === undefined) {
      // Installed by k8s/render.sh (or kubectl): the earlier revision names a tag, not a digest.
      // The registry says which digest the tag names now; it is pinned by that digest.
      const unpinned = previousUnpinned(history, running?.image);
      if (unpinned !== undefined) {
        steps.push({
          ref,
          image: await imageOfUnpinned(ctx, service, where, unpinned),
          fromRegistry: false,
        });
        continue;
      }
      throw new ShipError(
        `${where}: its rollout history (${history.length} revision${history.length === 1 ? '' : 's'} kept) has no ` +
          `earlier image with a known digest than the running one (${running?.image ?? 'none'}). Name the image ` +
          `with --to <tag> (\`ship images ${service.service}\` lists them).`,
      );
    }
    const desired = desiredFromRevision(previous);
    if (!desired.ok)
      throw new ShipError(`${where}: ${desired.reason} Name the image with --to <tag>.`);
    steps.push({ ref, image: desired.image, fromRegistry: false });
  }
  // The digest must still be in the registry: lifecycle rules may have expired it.
  for (const step of steps) {
    const repository = ctx.repositoryOf(service);
    const found = await ctx.images().imageByDigest(repository, step.image.digest);
    if (found === undefined) {
      throw new ShipError(
        `${step.image.image} is no longer in ${ctx.images().label} (repository ${repository}): the nodes could not ` +
          'pull it. Nothing was changed. Roll back to an image that is there: --to <tag> (`ship images ' +
          `${service.service}\` lists them).`,
      );
    }
  }
  return carryOut(ctx, steps, planOptions, options, 'rollback');
}

/** The image a tag names now in the registry, as the plan takes it. */
async function resolveTag(
  ctx: ShipContext,
  service: ServiceSettings,
  tag: string,
): Promise<DesiredImage> {
  const repository = ctx.repositoryOf(service);
  const source = ctx.images();
  ctx.progress.update(`${repository}:${tag}: reading ${source.label}…`);
  const record = await source.imageByTag(repository, tag);
  ctx.progress.done();
  if (record === undefined) {
    const catalog = await source.listRepositories();
    if (!catalog.includes(repository)) {
      throw new ShipError(await ctx.missingRepository(service, catalog));
    }
    throw new ShipError(
      `${repository}:${tag} does not exist in ${source.label}. \`ship images ${service.service}\` lists the tags there are.`,
    );
  }
  try {
    return desiredFromImage(
      record,
      tag,
      service,
      ctx.settings().releaseTagPattern,
      ctx.settings().config.build.branches,
    );
  } catch (error) {
    if (error instanceof NotDeployableError) throw new ShipError(error.message);
    throw error;
  }
}

/** The outcome of one Deployment, with its verification after a patch. */
interface Result {
  readonly outcome: TargetOutcome;
  readonly verification: Verification | undefined;
  /** The automatic deploys of the Deployment were paused and stay so (not paused by this command). */
  readonly stillPaused: boolean;
}

async function carryOut(
  ctx: ShipContext,
  steps: readonly Step[],
  planOptions: PlanOptions,
  rollout: RolloutOptions,
  command: 'deploy' | 'rollback',
): Promise<number> {
  const started = ctx.deps.now();
  const deps = {
    clusters: ctx.clusters(),
    retry: ctx.retry,
    now: ctx.deps.now,
  };

  // Plan every Deployment first: one refusal means nothing is patched.
  const planned: Step[] = [];
  const stayPaused = new Set<Step>();
  for (const original of steps) {
    const { environment, target } = original.ref;
    const client = await ctx.retry(() => deps.clusters.connect(environment));
    const live = await ctx.retry(() =>
      client.getDeployment(environment.namespace, target.deployment),
    );
    const step = original.fromRegistry ? pullAddress(ctx, original, live, command) : original;
    planned.push(step);
    if (live?.metadata.annotations?.[ANNOTATIONS.paused] === 'true' && planOptions.pause !== true) {
      stayPaused.add(step);
    }
    const plan = planTarget(step.ref, step.image, live, started, planOptions);
    if (plan.action === 'fail') throw new ShipError(`${plan.detail}`);
    if (plan.action === 'skip' && plan.reason === 'older-build') {
      throw new ShipError(
        `${plan.detail} Nothing was changed. To go back on purpose: ship rollback ${step.ref.service} --to ${step.image.tag}` +
          `${command === 'deploy' ? ' (pauses automatic deploys), or ship deploy … --allow-older' : ''}.`,
      );
    }
  }

  const verifiedOptions: PlanOptions = rollout.wait
    ? {
        ...planOptions,
        verification: { execution: shipExecution(ctx), deadlineSeconds: rollout.timeoutSeconds },
      }
    : planOptions;
  const results: Result[] = [];
  for (const step of planned) {
    ctx.progress.update(`${describeRef(step.ref)}: patching…`);
    const outcome = await deployTarget(step.ref, step.image, deps, verifiedOptions, started);
    const target =
      outcome.status === 'deployed' || outcome.status === 'skipped' ? outcome.verify : undefined;
    const verification =
      target === undefined ? undefined : await verify(ctx, step.ref, target, rollout.rollback);
    results.push({ outcome, verification, stillPaused: stayPaused.has(step) });
  }
  ctx.progress.done();

  const failed = results.some(
    (r) => r.outcome.status === 'failed' || r.verification?.verdict.state === 'failed',
  );
  if (ctx.options.json) {
    ctx.io.stdout.write(
      formatJson(
        results.map(({ outcome, verification }) => ({
          environment: outcome.ref.environment.name,
          namespace: outcome.ref.environment.namespace,
          service: outcome.ref.service,
          deployment: outcome.ref.target.deployment,
          container: outcome.ref.target.container,
          status: outcome.status,
          reason: outcome.status === 'deployed' ? null : outcome.reason,
          detail: outcome.status === 'deployed' ? null : outcome.detail,
          from: outcome.status === 'failed' ? null : (outcome.from ?? null),
          to: outcome.to,
          paused: planOptions.pause === true,
          verification: verification ?? null,
        })),
      ),
    );
  } else {
    for (const { outcome, verification, stillPaused } of results) {
      ctx.io.stdout.write(`${describeOutcome(outcome, planOptions)}\n`);
      if (stillPaused) {
        ctx.io.stdout.write(
          `  note: automatic deploys of ${outcome.ref.service} stay paused: the next build will not deploy ` +
            `(ship resume ${outcome.ref.service} to resume them).\n`,
        );
      }
      if (verification !== undefined) {
        for (const line of describeVerification(verification, rollout)) {
          ctx.io.stdout.write(`  ${line}\n`);
        }
      } else if (outcome.status === 'deployed') {
        ctx.io.stdout.write(
          '  rollout: not followed nor verified (--no-wait); `ship status` shows it (VERIFIED: unverified or -).\n',
        );
      }
    }
  }
  return failed ? EXIT.failure : EXIT.ok;
}

/** The newest earlier revision whose image is named by a tag alone (an install by k8s/render.sh). */
function previousUnpinned(
  history: ReturnType<typeof rolloutHistory>,
  runningImageRef: string | undefined,
): ReturnType<typeof rolloutHistory>[number] | undefined {
  const current = history.find((r) => r.current)?.revision ?? Number.POSITIVE_INFINITY;
  return [...history]
    .sort((a, b) => b.revision - a.revision)
    .find(
      (r) =>
        r.revision < current &&
        r.image !== undefined &&
        r.digest === undefined &&
        r.tag !== undefined &&
        r.image !== runningImageRef,
    );
}

/**
 * An unpinned revision as the image to deploy again: its tag, read in the registry now, pinned by
 * the digest the registry gives, at the revision's own repository address. The revision must name
 * the service's repository (any host with --registry, where a port-forward reaches the nodes'
 * registry; ECR's exactly) and a tag the deployer deploys.
 */
async function imageOfUnpinned(
  ctx: ShipContext,
  service: ServiceSettings,
  where: string,
  revision: ReturnType<typeof rolloutHistory>[number],
): Promise<DesiredImage> {
  const { name, tag } = parseImageReference(revision.image!);
  const repository = ctx.repositoryOf(service);
  const registryName = `${await ctx.images().host()}/${repository}`;
  const sameRepository =
    ctx.options.registry === undefined
      ? name === registryName
      : splitRepositoryName(name).path === repository;
  const which = `revision ${revision.revision} (image ${revision.image})`;
  if (!sameRepository) {
    throw new ShipError(
      `${where}: ${which} is not from repository ${registryName}, where ship reads tags, so its digest ` +
        `cannot be looked up. Nothing was changed. Name the image with --to <tag> (\`ship images ${service.service}\` lists them).`,
    );
  }
  const notDeployable = tagNotDeployable(tag!, ctx.settings().releaseTagPattern);
  if (notDeployable !== undefined) {
    throw new ShipError(
      `${where}: ${which}: ${notDeployable} Nothing was changed. Name the image with --to <tag>.`,
    );
  }
  const image = await resolveTag(ctx, service, tag!);
  return { ...image, image: `${name}:${image.tag}@${image.digest}` };
}

/** `host[:port]/path` split as container runtimes read it: no host means Docker Hub. */
export function splitRepositoryName(name: string): { host: string; path: string } {
  const slash = name.indexOf('/');
  const first = slash < 0 ? '' : name.slice(0, slash);
  if (slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    return { host: first, path: name.slice(slash + 1) };
  }
  return { host: 'docker.io', path: slash < 0 ? `library/${name}` : name };
}

/**
 * The image at the address the Deployment's nodes pull from. With `--registry`, tags are read
 * wherever it points (a port-forward such as 127.0.0.1:5000), which nodes may not reach: the image
 * keeps the repository address the Deployment uses when it names the same repository, or takes
 * `--pull-registry`. A Deployment naming another repository is refused, naming both addresses.
 */
function pullAddress(
  ctx: ShipContext,
  step: Step,
  live: Deployment | undefined,
  command: 'deploy' | 'rollback',
): Step {
  const { registry, pullRegistry } = ctx.options;
  if (registry === undefined) return step;
  const readFrom = parseImageReference(step.image.image).name;
  const { host: readHost, path: repository } = splitRepositoryName(readFrom);
  const at = (name: string): Step => ({
    ...step,
    image: { ...step.image, image: `${name}:${step.image.tag}@${step.image.digest}` },
  });
  if (pullRegistry !== undefined) return at(`${pullRegistry}/${repository}`);
  const liveImage = live?.spec?.template?.spec?.containers?.find(
    (c) => c.name === step.ref.target.container,
  )?.image;
  // No Deployment or container: the plan says so.
  if (liveImage === undefined) return step;
  const liveName = parseImageReference(liveImage).name;
  if (liveName === readFrom) return step;
  const where = `${step.ref.environment.name}: Deployment ${step.ref.environment.namespace}/${step.ref.target.deployment}`;
  if (splitRepositoryName(liveName).path === repository) {
    ctx.io.stderr.write(
      `ship ${command}: note: ${where} keeps pulling from ${liveName}; tags and digests were read from ${readHost} ` +
        `(--registry). --pull-registry <host[:port]> sets another address.\n`,
    );
    return at(liveName);
  }
  throw new ShipError(
    `${where} pulls ${liveName}, but the image read from --registry ${registry} is ${readFrom}: deploying it ` +
      `would change the address the nodes pull from to ${readHost}, which they may not reach (a port-forward ` +
      'reaches this machine only; the pods would go to ImagePullBackOff). Nothing was changed. Pass ' +
      `--pull-registry <host[:port]>, the registry as the nodes reach it (e.g. 127.0.0.1:30500 for the ` +
      `in-cluster registry), to deploy <host[:port]>/${repository}.`,
  );
}

function describeRef(ref: TargetRef): string {
  return `${ref.environment.name}: ${ref.environment.namespace}/${ref.target.deployment}`;
}

function describeOutcome(outcome: TargetOutcome, planOptions: PlanOptions): string {
  const where = describeRef(outcome.ref);
  const to = `${outcome.to.tag} (${shortDigest(outcome.to.digest)}, commit ${outcome.to.commit.slice(0, 12)})`;
  switch (outcome.status) {
    case 'deployed': {
      const was = outcome.from;
      const from =
        was === undefined
          ? 'no image'
          : was.digest === undefined
            ? `${was.image} (not pinned)`
            : `${was.tag ?? '?'} (${shortDigest(was.digest)})`;
      return (
        `${where}: ${from} → ${to}` +
        `${planOptions.pause === true ? '; automatic deploys paused (ship resume ' + outcome.ref.service + ' to resume)' : ''}`
      );
    }
    case 'skipped':
      return `${where}: unchanged, ${outcome.detail.replace(/^[^:]*: /, '')}`;
    case 'failed':
      return `${where}: FAILED (${outcome.reason}): ${outcome.detail}`;
  }
}

/** Who verifies a person's deploy, in the verification record: `ship:<user>`. */
function shipExecution(ctx: ShipContext): string {
  const user = ctx.deps.env.USER ?? ctx.deps.env.LOGNAME ?? ctx.deps.env.USERNAME;
  return `ship:${user === undefined || user === '' ? 'unknown-user' : user}`;
}

/**
 * Verifies one deploy as the deployer's state machine does, in-process (core/verify-loop.ts):
 * check every poll interval (2 s) until a verdict; a failed one is rolled back to the last
 * verified image (unless `--no-rollback`) and the rollback is verified the same way; every final
 * verdict is recorded on the Deployment.
 */
async function verify(
  ctx: ShipContext,
  ref: TargetRef,
  first: VerifyTarget,
  rollbackAllowed: boolean,
): Promise<Verification> {
  const client = await ctx.retry(() => ctx.clusters().connect(ref.environment));
  return verifyDeploy(first, {
    kube: client,
    retry: ctx.retry,
    now: ctx.deps.now,
    sleep: ctx.deps.sleep,
    pollMs: ctx.deps.pollIntervalMs ?? 2000,
    rollback: rollbackAllowed,
    deployedBy: 'ship',
    onProgress: (target, verdict) =>
      ctx.progress.update(
        `${describeRef(ref)}: ${target.phase === 'rollback' ? 'rolling back: ' : ''}${verdict.message}`,
      ),
    onRollback: (_target, verdict) =>
      ctx.progress.update(`${describeRef(ref)}: ${describeVerdict(verdict)}; rolling back…`),
  });
}

function describeVerification(verification: Verification, options: RolloutOptions): string[] {
  const { verdict, rollback } = verification;
  const lines = [
    verdict.state === 'ready'
      ? `${describeVerdict(verdict)} (${verdict.message})`
      : describeVerdict(verdict),
  ];
  if (verdict.state !== 'failed') return lines;
  if (rollback === undefined) {
    lines.push(
      options.rollback
        ? 'not rolled back'
        : 'not rolled back (--no-rollback): it keeps running the failed image; the digest is rejected for automatic deploys.',
    );
  } else if (rollback.status === 'none') {
    lines.push(`not rolled back (${rollback.reason}): ${rollback.message}`);
  } else {
    const tag = parseImageReference(rollback.image).tag ?? rollback.image;
    lines.push(`rolled back to ${tag} (${rollback.image}): ${describeVerdict(rollback.verdict)}`);
  }
  return lines;
}
