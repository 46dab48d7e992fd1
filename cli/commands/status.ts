/**
 * `ship status`: per environment and service, what the Deployment runs (tag, digest, commit,
 * build, when and by whom it was deployed), whether its rollout is done (judged as
 * `kubectl rollout status` judges), and the newest image built for the environment's refs;
 * drift (running something else than that newest image) and paused services are flagged.
 */
import {
  ANNOTATIONS,
  type EnvironmentSettings,
  type RejectedDigest,
  type ServiceSettings,
  type VerificationRecord,
} from '../../lib/deployer-contract';
import { rejectedDigests, runningImage } from '../../core/plan';
import { readVerification } from '../../core/verify';
import type { Deployment, RunningImage } from '../../core/types';
import {
  buildFacts,
  newestFor,
  olderBuildLock,
  type NewestImage,
  type OlderBuildLock,
} from '../builds';
import type { ShipContext } from '../context';
import type { ImageRecord } from '../images';
import { EXIT, formatJson } from '../output';
import { rolloutStatus, type RolloutStatus } from '../../core/rollout';
import { formatAge, formatTable, shortDigest } from '../table';

export interface TargetStatus {
  readonly environment: EnvironmentSettings;
  readonly service: ServiceSettings;
  readonly deployment: string;
  readonly container: string;
  /** Why the Deployment could not be read, or `missing`. */
  readonly error: string | undefined;
  readonly running: RunningImage | undefined;
  readonly deployedAt: Date | undefined;
  readonly deployedBy: string | undefined;
  readonly paused: boolean;
  readonly rollout: RolloutStatus | undefined;
  readonly newest: NewestImage | undefined;
  /** Runs another digest than the newest image built for the environment. */
  readonly drift: boolean;
  /** The verification record on the Deployment (annotation `verification`), when there is one. */
  readonly verification?: VerificationRecord | undefined;
  /** Digests that failed verification there, newest first (annotation `rejected`). */
  readonly rejected?: readonly RejectedDigest[];
  /**
   * The Deployment claims a build above every build in the registry: every real build after it
   * is skipped as older-build until someone deploys by hand.
   */
  readonly olderBuildLock?: OlderBuildLock | undefined;
}

export async function statusCommand(ctx: ShipContext): Promise<number> {
  const settings = ctx.settings();
  const environments = ctx.environments('all', 'status');
  const pattern = settings.releaseTagPattern;
  let failed = false;

  // Both ends are set up first, so a wrong kubeconfig or region is said before any request.
  const clusters = ctx.clusters();
  const source = ctx.images();

  // Images once per service, whatever the number of environments. A registry that fails once is
  // not asked again for the other services: the cluster side is still reported.
  const images = new Map<string, ImageRecord[]>();
  for (const service of settings.services) {
    const repository = ctx.repositoryOf(service);
    ctx.progress.update(`${repository}: listing images in ${source.label}…`);
    try {
      images.set(service.service, (await source.listImages(repository)) ?? []);
    } catch (error) {
      failed = true;
      ctx.progress.done();
      ctx.io.stderr.write(`ship status: ${(error as Error).message} (newest images not shown)\n`);
      break;
    }
  }

  const rows: TargetStatus[] = [];
  for (const environment of environments) {
    ctx.progress.update(`${environment.name}: reading Deployments…`);
    let client: Awaited<ReturnType<typeof clusters.connect>> | undefined;
    let connectError: string | undefined;
    try {
      client = await ctx.retry(() => clusters.connect(environment));
    } catch (error) {
      connectError = `${clusters.describe(environment)}: ${(error as Error).message}`;
    }
    for (const service of settings.services) {
      const serviceImages = images.get(service.service);
      const newest =
        serviceImages === undefined ? undefined : newestFor(environment, serviceImages, pattern);
      for (const target of service.targets) {
        const base = {
          environment,
          service,
          deployment: target.deployment,
          container: target.container,
          newest,
        };
        let live: Deployment | undefined;
        let error = connectError;
        if (client !== undefined) {
          try {
            const reader = client;
            live = await ctx.retry(() =>
              reader.getDeployment(environment.namespace, target.deployment),
            );
            if (live === undefined) error = 'missing';
          } catch (e) {
            error = (e as Error).message;
          }
        }
        if (error !== undefined) {
          if (error !== 'missing') failed = true;
          rows.push({
            ...base,
            error,
            running: undefined,
            deployedAt: undefined,
            deployedBy: undefined,
            paused: false,
            rollout: undefined,
            drift: false,
          });
          continue;
        }
        const annotations = live!.metadata.annotations ?? {};
        const running = runningImage(live!, target.container);
        const current =
          running?.digest !== undefined && running.digest === annotations[ANNOTATIONS.digest];
        const deployedAtText = current ? annotations[ANNOTATIONS.deployedAt] : undefined;
        const deployedAt = deployedAtText === undefined ? undefined : new Date(deployedAtText);
        rows.push({
          ...base,
          error: undefined,
          running,
          deployedAt:
            deployedAt === undefined || Number.isNaN(deployedAt.getTime()) ? undefined : deployedAt,
          deployedBy: current ? annotations[ANNOTATIONS.deployedBy] : undefined,
          paused: annotations[ANNOTATIONS.paused] === 'true',
          rollout: rolloutStatus(live!),
          drift: newest !== undefined && running?.digest !== newest.image.digest,
          verification: readVerification(live!),
          rejected: rejectedDigests(live!),
          olderBuildLock:
            running === undefined || serviceImages === undefined
              ? undefined
              : olderBuildLock(running, serviceImages, pattern),
        });
      }
    }
  }
  ctx.progress.done();

  if (ctx.options.json) {
    ctx.io.stdout.write(formatJson(rows.map((row) => statusJson(row, pattern, ctx.deps.now()))));
  } else {
    ctx.io.stdout.write(statusTable(rows, pattern, ctx.deps.now()));
    ctx.io.stdout.write(verificationLines(rows).join(''));
    for (const row of rows) {
      if (row.error !== undefined && row.error !== 'missing') {
        ctx.io.stderr.write(`${row.environment.name}/${row.service.service}: ${row.error}\n`);
      }
    }
  }
  return failed ? EXIT.failure : EXIT.ok;
}

function statusJson(row: TargetStatus, pattern: string, now: Date): unknown {
  return {
    environment: row.environment.name,
    cluster: row.environment.clusterName,
    namespace: row.environment.namespace,
    service: row.service.service,
    deployment: row.deployment,
    container: row.container,
    error: row.error ?? null,
    running: row.running ?? null,
    deployedAt: row.deployedAt?.toISOString() ?? null,
    deployedBy: row.deployedBy ?? null,
    paused: row.paused,
    rollout: row.rollout ?? null,
    newest:
      row.newest === undefined
        ? null
        : {
            tag: row.newest.tag,
            digest: row.newest.image.digest,
            commit: buildFacts(row.newest.image, pattern).commit ?? null,
          },
    drift: row.drift,
    verification:
      row.verification === undefined
        ? null
        : { ...row.verification, label: verificationText(row, now) },
    rejected: row.rejected ?? [],
    olderBuildLock: row.olderBuildLock ?? null,
  };
}

/**
 * What the VERIFIED column says: the record's state, when it is about the digest that runs;
 * `unverified` when the record is about another image (someone deployed without verifying).
 */
export function verificationText(row: TargetStatus, now: Date): string {
  const record = row.verification;
  if (record === undefined) return '-';
  if (row.running?.digest !== record.digest) return 'unverified';
  switch (record.state) {
    case 'verified':
      return 'verified';
    case 'verifying':
      return Date.parse(record.leaseUntil) < now.getTime()
        ? 'verifying (lease expired)'
        : 'verifying';
    case 'failed':
      return 'FAILED';
    case 'rolled-back':
      return 'rolled back';
    case 'superseded':
      return 'superseded';
    case 'changed':
      return 'stopped (changed)';
  }
}

/**
 * Under the table: per Deployment with a verification record, the last verdict's reason, and
 * each rejected digest with its reason (what the deployer will not deploy again).
 */
export function verificationLines(rows: readonly TargetStatus[]): string[] {
  const lines: string[] = [];
  for (const row of rows) {
    const where = `${row.environment.name}/${row.service.service}`;
    const record = row.verification;
    if (record !== undefined) {
      lines.push(
        `${where}: ${record.state} ${record.image.slice(record.image.lastIndexOf('/') + 1)} ` +
          `(${record.execution}, since ${record.since}): ${record.reason}\n`,
      );
    }
    for (const entry of row.rejected ?? []) {
      lines.push(
        `${where}: rejected ${shortDigest(entry.digest)}${entry.build === undefined ? '' : ` (build #${entry.build})`} ` +
          `at ${entry.at}: ${entry.reason}\n`,
      );
    }
  }
  for (const row of rows) {
    const lock = row.olderBuildLock;
    if (lock === undefined) continue;
    lines.push(
      `${row.environment.name}/${row.service.service}: runs build #${lock.running}, above every build in the registry ` +
        `(the highest is #${lock.highestKnown}): automatic deploys skip every build up to #${lock.running} as older-build. ` +
        `Deploy the newest build by hand to clear it: ship deploy ${row.service.service} <tag> --env ${row.environment.name} --allow-older\n`,
    );
  }
  if (lines.length > 0 && rows.some((r) => (r.rejected ?? []).length > 0)) {
    lines.push(
      'A rejected digest is never deployed again automatically; `ship deploy <service> <tag>` deploys it by hand and takes it off the list.\n',
    );
  }
  return lines.length === 0 ? [] : ['\n', ...lines];
}

/** The table people read; exported for golden tests. */
export function statusTable(rows: readonly TargetStatus[], pattern: string, now: Date): string {
  return formatTable(
    [
      { header: 'ENV' },
      { header: 'SERVICE' },
      { header: 'TAG' },
      { header: 'DIGEST' },
      { header: 'COMMIT' },
      { header: 'BUILD', align: 'right' },
      { header: 'DEPLOYED' },
      { header: 'ROLLOUT' },
      { header: 'VERIFIED' },
      { header: 'NEWEST' },
      { header: 'NOTES' },
    ],
    rows.map((row) => {
      const name =
        row.deployment === row.service.service && row.container === row.service.service
          ? row.service.service
          : `${row.service.service} (${row.deployment}/${row.container})`;
      const newest =
        row.newest === undefined
          ? '-'
          : (buildFacts(row.newest.image, pattern).commitTag ?? row.newest.tag);
      if (row.error !== undefined) {
        const note = row.error === 'missing' ? 'no such Deployment' : 'cannot read (see below)';
        return [row.environment.name, name, '-', '-', '-', '-', '-', '-', '-', newest, note];
      }
      const running = row.running;
      const notes = [
        ...(row.olderBuildLock === undefined
          ? []
          : [
              `STUCK above every build (#${row.olderBuildLock.running} > #${row.olderBuildLock.highestKnown})`,
            ]),
        ...(row.paused ? ['paused'] : []),
        ...(row.drift && row.newest !== undefined ? [`drift: newest is ${row.newest.tag}`] : []),
        ...(running?.digest === undefined ? ['not pinned by digest'] : []),
        ...(row.rollout?.specPaused === true ? ['rollout paused in Kubernetes'] : []),
        ...((row.rejected ?? []).length > 0
          ? [`${row.rejected!.length} rejected digest${row.rejected!.length === 1 ? '' : 's'}`]
          : []),
      ];
      return [
        row.environment.name,
        name,
        running?.tag ?? '-',
        running?.digest === undefined ? '-' : shortDigest(running.digest),
        running?.commit?.slice(0, 12) ?? '-',
        running?.buildNumber === undefined ? '-' : `#${running.buildNumber}`,
        row.deployedAt === undefined
          ? '-'
          : `${formatAge(row.deployedAt, now)} ago${row.deployedBy === undefined ? '' : ` by ${row.deployedBy}`}`,
        row.rollout === undefined ? '-' : rolloutText(row.rollout),
        verificationText(row, now),
        newest,
        notes.join('; '),
      ];
    }),
  );
}

function rolloutText(status: RolloutStatus): string {
  if (status.state === 'progressing') {
    return status.observed
      ? `progressing: ${status.updated}/${status.desired} updated, ${status.available} available`
      : 'progressing: not yet observed';
  }
  return status.state;
}
