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
import { parseImageReference, planTarget, runningImage, type PlanOptions } from '../../core/plan';
import { applyRollback, recordVerdict } from '../../core/rollback';
import type { DesiredImage, TargetOutcome, TargetRef, VerifyTarget } from '../../core/types';
import { check, describeVerdict, type FailureStrike, type Verdict } from '../../core/verify';
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

/** The outcome of one Deployment, with its verification after a patch. */
interface Result {
  readonly outcome: TargetOutcome;
  readonly verification: Verification | undefined;
}

/** What verifying one deploy came to, with the rollback it got. */
interface Verification {
  readonly verdict: Verdict;
  /** The rollback after a failed verdict, with the rollback's own verdict. */
  readonly rollback:
    | { readonly status: 'rolled-back'; readonly image: string; readonly verdict: Verdict }
    | { readonly status: 'none'; readonly reason: string; readonly message: string }
    | undefined;
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

  const verifiedOptions: PlanOptions = rollout.wait
    ? {
        ...planOptions,
        verification: { execution: shipExecution(ctx), deadlineSeconds: rollout.timeoutSeconds },
      }
    : planOptions;
  const results: Result[] = [];
  for (const step of steps) {
    ctx.progress.update(`${describeRef(step.ref)}: patching…`);
    const outcome = await deployTarget(step.ref, step.image, deps, verifiedOptions, started);
    const target =
      outcome.status === 'deployed' || outcome.status === 'skipped' ? outcome.verify : undefined;
    const verification =
      target === undefined ? undefined : await verify(ctx, step.ref, target, rollout.rollback);
    results.push({ outcome, verification });
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
    for (const { outcome, verification } of results) {
      ctx.io.stdout.write(`${describeOutcome(outcome, planOptions)}\n`);
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
 * Verifies one deploy as the deployer's state machine does, in-process: check every poll
 * interval (2 s) until a verdict; a failed one is rolled back to the last verified image (unless
 * `--no-rollback`) and the rollback is verified the same way; every final verdict is recorded on
 * the Deployment.
 */
async function verify(
  ctx: ShipContext,
  ref: TargetRef,
  first: VerifyTarget,
  rollbackAllowed: boolean,
): Promise<Verification> {
  const client = await ctx.retry(() => ctx.clusters().connect(ref.environment));
  const interval = ctx.deps.pollIntervalMs ?? 2000;
  const follow = async (target: VerifyTarget): Promise<Verdict> => {
    let previous: FailureStrike | undefined;
    for (;;) {
      const verdict = await ctx.retry(() => check(client, target, ctx.deps.now(), previous));
      if (verdict.state !== 'progressing') return verdict;
      previous = verdict.strike;
      ctx.progress.update(
        `${describeRef(ref)}: ${target.phase === 'rollback' ? 'rolling back: ' : ''}${verdict.message}`,
      );
      await ctx.deps.sleep(interval);
    }
  };
  const verdict = await follow(first);
  if (verdict.state !== 'failed' || !rollbackAllowed) {
    await ctx.retry(() => recordVerdict(client, first, verdict, ctx.deps.now()));
    return { verdict, rollback: undefined };
  }
  ctx.progress.update(`${describeRef(ref)}: ${describeVerdict(verdict)}; rolling back…`);
  const rolled = await ctx.retry(() =>
    applyRollback(client, first, verdict, ctx.deps.now(), 'ship'),
  );
  if (rolled.status === 'none') {
    return {
      verdict,
      rollback: { status: 'none', reason: rolled.reason, message: rolled.message },
    };
  }
  const after = await follow(rolled.target);
  await ctx.retry(() => recordVerdict(client, rolled.target, after, ctx.deps.now()));
  return {
    verdict,
    rollback: { status: 'rolled-back', image: rolled.target.image, verdict: after },
  };
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
