/**
 * `ship deploy <service> <tag>` and `ship rollback <service> [--to <tag>]`: a person's deploy,
 * through the deployer's own plan and apply (core/plan.ts, core/apply.ts): the image pinned
 * by the digest the registry gives for the tag now, the same annotations, the same conditional
 * PATCH. Every Deployment of the service is read and planned before any is patched, so a refusal
 * changes nothing; then each is patched and its rollout followed until it is done, failed or the
 * timeout passes.
 */
import { classifyTag } from '../../buildspecs/image-tags';
import type { ServiceSettings } from '../../lib/deployer-contract';
import { deployTarget } from '../../core/apply';
import { planTarget, runningImage, type PlanOptions } from '../../core/plan';
import type { DesiredImage, TargetOutcome, TargetRef } from '../../core/types';
import { desiredFromImage, NotDeployableError } from '../builds';
import type { ShipContext } from '../context';
import { desiredFromRevision, previousImage, rolloutHistory } from '../history';
import { EXIT, ShipError, UsageError, formatJson } from '../output';
import { rolloutStatus, type RolloutStatus } from '../../core/rollout';
import { shortDigest } from '../table';

export interface RolloutOptions {
  readonly wait: boolean;
  readonly timeoutSeconds: number;
}

/** A Deployment and the image chosen for it. */
interface Step {
  readonly ref: TargetRef;
  readonly image: DesiredImage;
}

export async function deployCommand(
  ctx: ShipContext,
  serviceName: string | undefined,
  tag: string | undefined,
  options: RolloutOptions & { allowOlder: boolean },
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
  const image = await resolveTag(ctx, service, tag);
  const steps = service.targets.map((target) => ({
    ref: { environment: environment!, service: service.service, target },
    image,
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
      throw new ShipError(
        `${where}: its rollout history (${history.length} revision${history.length === 1 ? '' : 's'} kept) has no ` +
          `earlier image with a known digest than the running one (${running?.image ?? 'none'}). Name the image ` +
          `with --to <tag> (\`ship images ${service.service}\` lists them).`,
      );
    }
    const desired = desiredFromRevision(previous);
    if (!desired.ok)
      throw new ShipError(`${where}: ${desired.reason} Name the image with --to <tag>.`);
    steps.push({ ref, image: desired.image });
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

/** The outcome of one Deployment, with the rollout followed after a patch. */
interface Result {
  readonly outcome: TargetOutcome;
  readonly rollout: RolloutStatus | undefined;
  /** The rollout did not end within the timeout. */
  readonly timedOut: boolean;
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
  for (const step of steps) {
    const { environment, target } = step.ref;
    const client = await ctx.retry(() => deps.clusters.connect(environment));
    const live = await ctx.retry(() =>
      client.getDeployment(environment.namespace, target.deployment),
    );
    const plan = planTarget(step.ref, step.image, live, started, planOptions);
    if (plan.action === 'fail') throw new ShipError(`${plan.detail}`);
    if (plan.action === 'skip' && plan.reason === 'older-build') {
      throw new ShipError(
        `${plan.detail} Nothing was changed. To go back on purpose: ship rollback ${step.ref.service} --to ${step.image.tag}` +
          `${command === 'deploy' ? ' (pauses automatic deploys), or ship deploy … --allow-older' : ''}.`,
      );
    }
  }

  const results: Result[] = [];
  for (const step of steps) {
    ctx.progress.update(`${describeRef(step.ref)}: patching…`);
    const outcome = await deployTarget(step.ref, step.image, deps, planOptions, started);
    let status: RolloutStatus | undefined;
    let timedOut = false;
    if (outcome.status === 'deployed' && rollout.wait) {
      ({ status, timedOut } = await waitForRollout(
        ctx,
        step.ref,
        outcome.generation,
        rollout.timeoutSeconds,
      ));
    }
    results.push({ outcome, rollout: status, timedOut });
  }
  ctx.progress.done();

  const failed = results.some(
    (r) => r.outcome.status === 'failed' || r.rollout?.state === 'failed' || r.timedOut,
  );
  if (ctx.options.json) {
    ctx.io.stdout.write(
      formatJson(
        results.map(({ outcome, rollout: status, timedOut }) => ({
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
          rollout: status ?? null,
          timedOut,
        })),
      ),
    );
  } else {
    for (const { outcome, rollout: status, timedOut } of results) {
      ctx.io.stdout.write(`${describeOutcome(outcome, planOptions)}\n`);
      if (status !== undefined) {
        ctx.io.stdout.write(
          `  rollout: ${status.message}${timedOut ? ` (still not done after ${rollout.timeoutSeconds} s; ship status follows it)` : ''}\n`,
        );
      } else if (outcome.status === 'deployed') {
        ctx.io.stdout.write('  rollout: not followed (--no-wait); `ship status` shows it.\n');
      }
    }
  }
  return failed ? EXIT.failure : EXIT.ok;
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

/** Reads the Deployment until its rollout of `generation` is done or failed, or time is up. */
export async function waitForRollout(
  ctx: ShipContext,
  ref: TargetRef,
  generation: number | undefined,
  timeoutSeconds: number,
): Promise<{ status: RolloutStatus | undefined; timedOut: boolean }> {
  const { environment, target } = ref;
  const deadline = ctx.deps.now().getTime() + timeoutSeconds * 1000;
  const interval = ctx.deps.pollIntervalMs ?? 2000;
  const client = await ctx.retry(() => ctx.clusters().connect(environment));
  let status: RolloutStatus | undefined;
  for (;;) {
    const live = await ctx.retry(() =>
      client.getDeployment(environment.namespace, target.deployment),
    );
    if (live === undefined) {
      throw new ShipError(`${describeRef(ref)}: the Deployment was deleted during its rollout.`);
    }
    status = rolloutStatus(live);
    // A status from before our patch says nothing about our rollout.
    const observed = (live.status?.observedGeneration as number | undefined) ?? 0;
    const ours = generation === undefined || observed >= generation;
    if (ours && status.state !== 'progressing') return { status, timedOut: false };
    ctx.progress.update(`${describeRef(ref)}: ${status.message}`);
    if (ctx.deps.now().getTime() + interval > deadline) return { status, timedOut: true };
    await ctx.deps.sleep(interval);
  }
}
