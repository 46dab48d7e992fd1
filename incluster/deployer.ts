/**
 * The in-cluster deployer's work: pushes (from notifications or the reconcile loop) in a bounded
 * in-memory queue, each handled once at a time: the image's labels read from the registry, its
 * build record made (core/image-build.ts), decided and applied with the Lambda's rules
 * (core/apply.ts → core/plan.ts), each deployed Deployment verified and, failing, rolled back
 * (core/verify-loop.ts), the outcome logged, counted and sent to the webhook.
 *
 * Idempotent between the two sources: a push whose image and tag are queued or being handled is a
 * duplicate; a Deployment whose digest this process verifies now is not verified twice; and what
 * the cluster already says (the digest running, the verification record and its lease, paused,
 * rejected, newer builds) is decided by plan.ts as for the Lambda.
 */
import { applyBuild, needsRetry, verifyTargets, type Retry } from '../core/apply';
import {
  describeBuildPlan,
  describeOutcome,
  describeTargetPlan,
  formatNotification,
  describeVerifyLine,
  formatReport,
  type VerifyOutcome,
} from '../core/describe';
import { ImageLabelError, buildFromImage } from '../core/image-build';
import { classifyTag, computeTags } from '../core/image-tags';
import { planBuild, planTarget } from '../core/plan';
import { repositoryOf } from '../core/registry-events';
import {
  PermanentError,
  type BuildRecord,
  type ClusterConnector,
  type DeployOutcome,
  type KubeReader,
  type VerifyTarget,
} from '../core/types';
import { describeVerdict } from '../core/verify';
import { VerificationAbandoned, verifyDeploy, type Verification } from '../core/verify-loop';
import type { RegistryReader, WebhookSender } from './adapters';
import type { Logger } from './log';
import type { Metrics } from './metrics';
import type { InclusterSettings } from './settings';

/** One image pushed under one tag, to handle. */
export interface Push {
  readonly service: string;
  readonly repository: string;
  readonly tag: string;
  readonly digest: string;
  readonly source: 'notification' | 'reconcile';
  /**
   * When the notification arrived (or the reconcile pass found it): the build record's
   * `finishedAt`, so the deploy latency and time to Ready count from it.
   */
  readonly receivedAt: Date;
  /** The registry event's id (notifications). */
  readonly eventId?: string;
}

export type SubmitResult = 'queued' | 'duplicate' | 'queue-full' | 'shutting-down';

export interface DeployerDeps {
  readonly settings: InclusterSettings;
  readonly registry: RegistryReader;
  readonly clusters: ClusterConnector & { readonly kube: KubeReader };
  /** Kubernetes calls (apply, verify). */
  readonly retry: Retry;
  /** Registry reads (labels, tags): longer, a registry restarting takes seconds. */
  readonly registryRetry: Retry;
  readonly now: () => Date;
  readonly sleep: (ms: number, signal: AbortSignal) => Promise<void>;
  readonly log: Logger;
  readonly metrics: Metrics;
  readonly webhook: WebhookSender | undefined;
  /** `incluster:<pod name>`: the verification records' owner. */
  readonly execution: string;
  /** @default 256 */
  readonly queueLimit?: number;
  /** Pushes handled at once (each may verify for minutes). @default 4 */
  readonly concurrency?: number;
}

/** How many event ids are remembered for duplicates (the registry retries whole batches). */
const REMEMBERED_EVENTS = 4096;

export class InclusterDeployer {
  private readonly queue: Push[] = [];
  /** Keys of pushes queued or being handled. */
  private readonly pending = new Set<string>();
  /** Event ids seen, oldest first. */
  private readonly seenEvents = new Set<string>();
  /** `<namespace>/<deployment>@<digest>` verified by this process now. */
  private readonly verifying = new Set<string>();
  private readonly tasks = new Set<Promise<void>>();
  private readonly abort = new AbortController();
  private stopping = false;
  private running = 0;

  constructor(private readonly deps: DeployerDeps) {}

  private key(push: Pick<Push, 'repository' | 'digest' | 'tag'>): string {
    const kind = classifyTag(push.tag, this.deps.settings.releaseTagPattern);
    // The commit tag and a branch push of one image deploy the same; each release tag deploys on its own.
    return `${push.repository}@${push.digest}#${kind === 'release' ? push.tag : kind}`;
  }

  /** Takes a push into the queue, or says why not. Never blocks. */
  submit(push: Push): SubmitResult {
    if (this.stopping) return 'shutting-down';
    if (push.eventId !== undefined) {
      if (this.seenEvents.has(push.eventId)) return 'duplicate';
      this.seenEvents.add(push.eventId);
      if (this.seenEvents.size > REMEMBERED_EVENTS) {
        this.seenEvents.delete(this.seenEvents.values().next().value!);
      }
    }
    const key = this.key(push);
    if (this.pending.has(key)) return 'duplicate';
    if (this.queue.length >= (this.deps.queueLimit ?? 256)) return 'queue-full';
    this.pending.add(key);
    this.queue.push(push);
    this.deps.metrics.set('queued', this.queue.length);
    this.pump();
    return 'queued';
  }

  /**
   * Stops: takes nothing more, drops what is queued (the reconcile loop of the next pod finds
   * it), abandons verifications between two checks (their lease lets the next pod take them) and
   * waits for the work in progress to end.
   */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const push of this.queue.splice(0)) {
      this.pending.delete(this.key(push));
      this.deps.log.warn('push dropped at shutdown', {
        ...fieldsOf(push),
        reason: 'shutting-down',
      });
    }
    this.deps.metrics.set('queued', 0);
    this.abort.abort();
    await Promise.allSettled([...this.tasks]);
  }

  private pump(): void {
    while (!this.stopping && this.running < (this.deps.concurrency ?? 4) && this.queue.length > 0) {
      const push = this.queue.shift()!;
      this.deps.metrics.set('queued', this.queue.length);
      this.running += 1;
      const task = this.handle(push)
        .catch((error: unknown) => {
          this.deps.log.error('push failed unexpectedly', {
            ...fieldsOf(push),
            error: error instanceof Error ? `${error.name}: ${error.message}` : String(error),
          });
        })
        .finally(() => {
          this.running -= 1;
          this.pending.delete(this.key(push));
          this.tasks.delete(task);
          this.pump();
        });
      this.tasks.add(task);
    }
  }

  /** The build record of a push, or undefined (logged and counted) when its image is refused. */
  private async buildOf(push: Push): Promise<BuildRecord | undefined> {
    const { settings, registry, log, metrics } = this.deps;
    let labels: Record<string, string>;
    try {
      labels = await this.deps.registryRetry(() => registry.labels(push.repository, push.digest));
    } catch (error) {
      metrics.inc('imagesRefused', { reason: 'registry' });
      log.error('image not read', {
        ...fieldsOf(push),
        reason: error instanceof PermanentError ? error.reason : 'registry-unavailable',
        error: error instanceof Error ? error.message : String(error),
        retry:
          settings.reconcileSeconds > 0
            ? `the reconcile loop tries again within ${settings.reconcileSeconds} s`
            : 'no reconcile loop (reconcileSeconds: 0): push again',
      });
      return undefined;
    }
    try {
      return buildFromImage({
        service: push.service,
        repository: push.repository,
        registryHost: settings.registry.host,
        pullHost: settings.registry.pullHost,
        tag: push.tag,
        digest: push.digest,
        labels,
        seenAt: push.receivedAt,
        releaseTagPattern: settings.releaseTagPattern,
      });
    } catch (error) {
      if (!(error instanceof ImageLabelError)) throw error;
      metrics.inc('imagesRefused', { reason: 'labels' });
      log.warn('image refused', {
        ...fieldsOf(push),
        reason: 'labels',
        label: error.label,
        detail: error.message,
      });
      return undefined;
    }
  }

  private async handle(push: Push): Promise<void> {
    const { settings, log } = this.deps;
    const build = await this.buildOf(push);
    if (build === undefined) return;
    const fields = {
      ...fieldsOf(push),
      build: build.buildId,
      commit: build.commit,
      gitRef: build.gitRef,
    };
    // The build's other tags come in their own pushes; only the push of the tag the build deploys
    // acts (a tag build's commit tag arrives before its release tag, which is what deploys).
    const planned = planBuild(build, settings.deployer);
    if (planned.action === 'deploy' && planned.image.tag !== push.tag) {
      this.deps.metrics.inc('skips', { reason: 'not-the-deploy-tag' });
      log.info('push not deployed', {
        ...fields,
        reason: 'not-the-deploy-tag',
        detail: `build ${build.buildId} deploys as ${planned.image.tag}; that tag's push deploys it`,
      });
      return;
    }
    const outcome = await applyBuild(build, settings.deployer, {
      images: this.deps.registry,
      clusters: this.deps.clusters,
      retry: this.deps.retry,
      now: this.deps.now,
      deployedBy: 'deployer',
      onPlan: (plan) =>
        log.info('plan', {
          ...fields,
          action: plan.action,
          ...('reason' in plan ? { reason: plan.reason } : {}),
          ...('ref' in plan
            ? { environment: plan.ref.environment.name, deployment: plan.ref.target.deployment }
            : {}),
          plan: 'ref' in plan ? describeTargetPlan(plan) : describeBuildPlan(plan),
        }),
      verification: {
        execution: this.deps.execution,
        deadlineSeconds: () => settings.verify.deadlineSeconds,
      },
    });
    this.count(outcome);
    log.info('deploy', {
      ...fields,
      outcome: outcome.kind,
      ...(outcome.kind === 'skipped' ? { reason: outcome.reason } : {}),
      summary: describeOutcome(outcome),
      ...(outcome.kind === 'applied'
        ? {
            deployed: outcome.targets.flatMap((t) =>
              t.status === 'deployed'
                ? [
                    {
                      environment: t.ref.environment.name,
                      deployment: t.ref.target.deployment,
                      latencyMs: t.latencyMs,
                    },
                  ]
                : [],
            ),
          }
        : {}),
      ...(needsRetry(outcome)
        ? {
            retry: `a transient failure: the reconcile loop tries again within ${settings.reconcileSeconds} s`,
          }
        : {}),
    });

    const verifications = await Promise.all(
      verifyTargets(outcome).map((target) => this.verify(target, build, fields)),
    );
    await this.report(
      outcome,
      verifications.filter((v): v is Verified => v !== undefined),
      fields,
    );
  }

  private count(outcome: DeployOutcome): void {
    const { metrics } = this.deps;
    if (outcome.kind === 'skipped') {
      metrics.inc('skips', { reason: outcome.reason });
      return;
    }
    for (const target of outcome.targets) {
      if (target.status === 'deployed') {
        metrics.inc('deploys', {
          environment: target.ref.environment.name,
          service: target.ref.service,
        });
      } else if (target.status === 'skipped') {
        metrics.inc('skips', { reason: target.reason });
      } else {
        metrics.inc('failures', { reason: target.reason });
      }
    }
  }

  private async verify(
    target: VerifyTarget,
    build: BuildRecord,
    fields: Readonly<Record<string, unknown>>,
  ): Promise<Verified | undefined> {
    const { settings, log, metrics } = this.deps;
    const key = `${target.namespace}/${target.deployment}@${target.digest}`;
    const where = { ...fields, environment: target.environment, deployment: target.deployment };
    if (this.verifying.has(key)) {
      metrics.inc('skips', { reason: 'in-progress' });
      log.info('verification already in progress here', { ...where, reason: 'in-progress' });
      return undefined;
    }
    this.verifying.add(key);
    const signal = this.abort.signal;
    try {
      const verification = await verifyDeploy(target, {
        kube: this.deps.clusters.kube,
        retry: this.deps.retry,
        now: this.deps.now,
        sleep: (ms) => this.deps.sleep(ms, signal),
        pollMs: settings.verify.pollSeconds * 1000,
        rollback: settings.rollback,
        deployedBy: 'deployer',
        signal,
        onRollback: (_t, verdict) =>
          log.warn('rolling back', {
            ...where,
            image: target.image,
            verdict: describeVerdict(verdict),
          }),
      });
      const outcome = outcomeOf(verification);
      metrics.inc('verdicts', { result: verdictResult(verification) });
      if (verification.rollback !== undefined) {
        metrics.inc('rollbacks', { result: verification.rollback.status });
      }
      const ready =
        verification.verdict.state === 'ready' ? verification.verdict.seconds : undefined;
      if (ready !== undefined && target.buildEndedAt !== undefined) {
        metrics.observeTimeToReady(
          (Date.parse(target.startedAt) - Date.parse(target.buildEndedAt)) / 1000 + ready,
        );
      }
      const line = describeVerified(target, verification);
      log.log(outcome === 'verified' ? 'info' : 'warn', 'verdict', {
        ...where,
        image: target.image,
        outcome,
        verdict: verification.verdict.state,
        summary: line,
        build: build.buildId,
      });
      return { outcome, line };
    } catch (error) {
      if (error instanceof VerificationAbandoned) {
        metrics.inc('verdicts', { result: 'abandoned' });
        log.warn('verification abandoned', {
          ...where,
          reason: 'shutting-down',
          detail: error.message,
        });
        return {
          outcome: 'stopped',
          line: `${target.environment}/${target.deployment}: verification abandoned at shutdown`,
        };
      }
      metrics.inc('verdicts', { result: 'error' });
      log.error('verification failed to complete', {
        ...where,
        error: error instanceof Error ? error.message : String(error),
        retry: `its lease expires, then the reconcile loop verifies it again`,
      });
      return {
        outcome: 'stopped',
        line: `${target.environment}/${target.deployment}: verification stopped: ${String(error)}`,
      };
    } finally {
      this.verifying.delete(key);
    }
  }

  private async report(
    outcome: DeployOutcome,
    verified: readonly Verified[],
    fields: Readonly<Record<string, unknown>>,
  ): Promise<void> {
    const { webhook, log, metrics } = this.deps;
    if (webhook === undefined) return;
    const { subject, message } = formatReport(
      formatNotification(outcome),
      verified.map((v) => v.outcome),
      verified.map((v) => v.line),
    );
    const failure = await webhook({
      subject,
      message,
      fields: {
        service: outcome.build.service,
        commit: outcome.build.commit,
        build: outcome.build.buildId,
        gitRef: outcome.build.gitRef,
        digest: outcome.build.digest,
        outcome: outcome.kind,
        verifications: verified.map((v) => v.outcome),
      },
    });
    if (failure === undefined) {
      metrics.inc('webhooks', { result: 'sent' });
    } else {
      metrics.inc('webhooks', { result: 'failed' });
      log.warn('webhook failed', {
        ...fields,
        reason: failure,
        effect: 'none: the deploy stands as reported in these logs',
      });
    }
  }

  /**
   * One reconcile pass: per service and environment, the newest deployable build in the registry,
   * submitted when a Deployment of the environment would take it (patch or lease); nothing when
   * everything runs what it should (or is paused, rejected, newer). Throws when the registry or
   * the API server cannot be read (the caller counts and logs it).
   */
  async reconcile(): Promise<{ submitted: number }> {
    const { settings, registry, log } = this.deps;
    let submitted = 0;
    for (const service of settings.deployer.services) {
      const repository = repositoryOf(service.service, settings.repositoryPrefix);
      const tags = await this.deps.registryRetry(() => registry.tags(repository));
      for (const environment of settings.deployer.environments) {
        const candidate = await this.newest(service.service, repository, tags, environment);
        if (candidate === undefined) continue;
        const plan = planBuild(candidate.build, settings.deployer);
        if (plan.action === 'skip') continue;
        const targets = plan.targets.filter((t) => t.environment.name === environment.name);
        let wanted = false;
        for (const ref of targets) {
          const live = await this.deps.retry(() =>
            this.deps.clusters.kube.getDeployment(environment.namespace, ref.target.deployment),
          );
          const step = planTarget(ref, plan.image, live, this.deps.now(), {
            deployedBy: 'deployer',
            verification: {
              execution: this.deps.execution,
              deadlineSeconds: settings.verify.deadlineSeconds,
            },
          });
          if (step.action === 'patch' || step.action === 'lease') wanted = true;
        }
        if (!wanted) continue;
        if (
          this.verifying.has(
            `${environment.namespace}/${targets[0]?.target.deployment}@${candidate.digest}`,
          )
        )
          continue;
        const result = this.submit({
          service: service.service,
          repository,
          tag: candidate.tag,
          digest: candidate.digest,
          source: 'reconcile',
          receivedAt: candidate.build.finishedAt,
        });
        log.info('reconcile', {
          service: service.service,
          environment: environment.name,
          tag: candidate.tag,
          digest: candidate.digest,
          build: candidate.build.buildId,
          result,
          reason:
            'the registry has a newer deployable build than the environment runs (a notification was lost or failed)',
        });
        if (result === 'queued') submitted += 1;
      }
    }
    return { submitted };
  }

  /**
   * The newest build for an environment among a repository's tags: for its branches, the
   * sortable `<branch>-<sha7>-<build>` tags (the build number in the tag orders them; the labels
   * of the highest are read and must agree), deployed by its commit tag; for release
   * environments, the release tags, by build number then tag.
   */
  private async newest(
    service: string,
    repository: string,
    tags: readonly string[],
    environment: InclusterSettings['deployer']['environments'][number],
  ): Promise<{ tag: string; digest: string; build: BuildRecord } | undefined> {
    const { settings, registry } = this.deps;
    const candidates: { tag: string; build: BuildRecord; digest: string }[] = [];
    const consider = async (
      tag: string,
      deployTag?: (build: BuildRecord) => string,
    ): Promise<void> => {
      const digest = await this.deps.registryRetry(() => registry.digest(repository, tag));
      if (digest === undefined) return;
      const build = await this.buildOf({
        service,
        repository,
        tag,
        digest,
        source: 'reconcile',
        receivedAt: this.deps.now(),
      });
      if (build === undefined) return;
      candidates.push({ tag: deployTag?.(build) ?? tag, build, digest });
    };
    for (const branch of environment.branches) {
      const sortable = tags
        .map((tag) => ({ tag, number: sortableNumber(tag, branch, settings.releaseTagPattern) }))
        .filter((t): t is { tag: string; number: number } => t.number !== undefined)
        .sort((a, b) => b.number - a.number);
      const top = sortable[0];
      if (top !== undefined) await consider(top.tag, (build) => build.imageTag);
    }
    if (environment.releaseTags) {
      for (const tag of tags.filter(
        (t) => classifyTag(t, settings.releaseTagPattern) === 'release',
      )) {
        await consider(tag);
      }
    }
    candidates.sort(
      (a, b) =>
        b.build.buildNumber - a.build.buildNumber ||
        b.tag.localeCompare(a.tag, 'en', { numeric: true }),
    );
    return candidates[0];
  }
}

/** What one verification came to, for the report. */
interface Verified {
  readonly outcome: VerifyOutcome;
  readonly line: string;
}

function outcomeOf(verification: Verification): VerifyOutcome {
  const { verdict, rollback } = verification;
  if (verdict.state === 'ready') return 'verified';
  if (verdict.state !== 'failed') return 'stopped';
  if (rollback?.status === 'rolled-back') {
    return rollback.verdict.state === 'ready' ? 'rolled-back' : 'rollback-failed';
  }
  return 'verify-failed';
}

function verdictResult(verification: Verification): string {
  switch (verification.verdict.state) {
    case 'ready':
      return 'verified';
    case 'failed':
      return 'failed';
    default:
      return verification.verdict.state;
  }
}

/** One line per Deployment, in the Report step's words (core/describe.ts). */
function describeVerified(target: VerifyTarget, verification: Verification): string {
  const { verdict, rollback } = verification;
  const rolledBack = rollback?.status === 'rolled-back' ? rollback : undefined;
  const outcome = outcomeOf(verification);
  return describeVerifyLine({
    environment: target.environment,
    deployment: target.deployment,
    outcome,
    seconds:
      outcome === 'rolled-back' && rolledBack?.verdict.state === 'ready'
        ? rolledBack.verdict.seconds
        : verdict.state === 'ready'
          ? verdict.seconds
          : undefined,
    failure: verdict.message,
    rollbackImage: rolledBack?.image ?? '?',
    notRolledBack:
      rollback?.status === 'none' ? rollback.message : 'rollback is off (config rollback: false)',
    rollbackFailure: rolledBack?.verdict.message ?? '',
    stopped: { state: verdict.state, message: verdict.message },
  });
}

/**
 * The build number of a sortable tag of `branch` (image-tags.js's `<branch>-<sha7>-<build>`), or
 * undefined for any other tag. The branch part is what computeTags makes of the branch name.
 */
function sortableNumber(
  tag: string,
  branch: string,
  releaseTagPattern: string,
): number | undefined {
  if (classifyTag(tag, releaseTagPattern) !== 'branch') return undefined;
  const match = /^(.*)-[0-9a-f]{7}-([0-9]+)$/.exec(tag);
  if (match === null) return undefined;
  const probe = computeTags({
    commit: '0'.repeat(40),
    ref: { kind: 'branch', name: branch },
    buildNumber: 1,
    releaseTagPattern,
  }).sortableTag;
  const part = probe?.slice(0, -'-0000000-1'.length);
  return part === match[1] ? Number(match[2]) : undefined;
}

function fieldsOf(push: Push): Record<string, unknown> {
  return {
    source: push.source,
    ...(push.eventId === undefined ? {} : { eventId: push.eventId }),
    service: push.service,
    repository: push.repository,
    tag: push.tag,
    digest: push.digest,
  };
}
