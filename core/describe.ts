/**
 * describe: plans and outcomes in words. One line each for logs (`describe*`), and the SNS
 * notification people read (`formatNotification`). Pure.
 */
import type {
  BuildPlan,
  BuildRecord,
  DeployOutcome,
  DesiredImage,
  RunningImage,
  TargetOutcome,
  TargetPlan,
  TargetRef,
} from './types';

/** SNS refuses a subject of 100 characters or more, or with anything but printable ASCII. */
export const MAX_SUBJECT_LENGTH = 99;
const SHORT_SHA = 7;
const SHORT_DIGEST = 'sha256:'.length + 12;

/** `DockerCoins-hasher#42 (hasher 6e0de7938dda, refs/heads/main)` */
export function describeBuild(build: BuildRecord): string {
  return `${build.project}#${build.buildNumber} (${build.service} ${build.imageTag}, ${build.gitRef || 'no ref'})`;
}

/** `deploy DockerCoins-hasher#42 (…): …:v1.2.0@sha256:… → main/hasher, prod/hasher` */
export function describeBuildPlan(plan: BuildPlan): string {
  if (plan.action === 'skip') {
    return `skip ${describeBuild(plan.build)}: ${plan.reason}`;
  }
  return (
    `deploy ${describeBuild(plan.build)}: ${plan.image.tag}@${shortDigest(plan.image.digest)} → ` +
    plan.targets.map(describeRef).join(', ')
  );
}

/** `patch main/hasher[hasher]: 5a1b2c3d4e5f → 6e0de7938dda`, `skip …: already-running` */
export function describeTargetPlan(plan: TargetPlan): string {
  const where = describeRef(plan.ref);
  switch (plan.action) {
    case 'patch':
      return `patch ${where}: ${fromTo(plan.from, plan.to)} (resourceVersion ${plan.resourceVersion})`;
    case 'lease':
      return `verify ${where}: runs ${plan.to.tag}@${shortDigest(plan.to.digest)} unverified (resourceVersion ${plan.resourceVersion})`;
    case 'skip':
      return `skip ${where}: ${plan.reason}`;
    case 'fail':
      return `fail ${where}: ${plan.reason}`;
  }
}

/**
 * `DockerCoins-hasher#42 (hasher 6e0de7938dda, refs/heads/main): deployed main/hasher
 * (5a1b2c3d4e5f → 6e0de7938dda); skipped prod/hasher (already-running)`
 */
export function describeOutcome(outcome: DeployOutcome): string {
  const build = describeBuild(outcome.build);
  if (outcome.kind === 'skipped') return `${build}: skipped (${outcome.reason})`;
  if (outcome.targets.length === 0) return `${build}: no targets`;
  const parts = outcome.targets.map((target) => {
    const where = describeRef(target.ref);
    switch (target.status) {
      case 'deployed':
        return `deployed ${where} (${fromTo(target.from, target.to)})`;
      case 'skipped':
        return `skipped ${where} (${target.reason})`;
      case 'failed':
        return `failed ${where} (${target.reason})`;
    }
  });
  return `${build}: ${parts.join('; ')}`;
}

/**
 * The SNS message for an outcome: a subject that says what happened at a glance, and a body with,
 * per Deployment, the service, the environment, what ran and what runs now, the build and a link
 * to it, and for skips and failures the reason and what to do.
 */
export function formatNotification(outcome: DeployOutcome): { subject: string; message: string } {
  const { build } = outcome;
  const lines: string[] = [];
  let subject: string;
  if (outcome.kind === 'skipped') {
    subject = `DockerCoins deploy: ${build.service} ${build.imageTag} not deployed (${outcome.reason})`;
    lines.push(
      `Build ${build.project}#${build.buildNumber} of ${build.service} was not deployed anywhere: ${outcome.reason}.`,
      '',
      outcome.detail,
    );
  } else {
    const count = (status: TargetOutcome['status']): TargetOutcome[] =>
      outcome.targets.filter((t) => t.status === status);
    const deployed = count('deployed');
    const skipped = count('skipped');
    const failed = count('failed');
    const to = outcome.targets[0]?.to;
    const tag = to?.tag ?? build.imageTag;
    const environments = (targets: readonly TargetOutcome[]): string =>
      [...new Set(targets.map((t) => t.ref.environment.name))].join(', ');
    if (failed.length > 0) {
      subject = `DockerCoins deploy FAILED: ${build.service} ${tag} in ${environments(failed)}`;
    } else if (deployed.length > 0) {
      subject = `DockerCoins deploy: ${build.service} ${tag} to ${environments(deployed)}`;
    } else {
      const reasons = skipped.flatMap((t) => (t.status === 'skipped' ? [t.reason] : []));
      subject = `DockerCoins deploy: ${build.service} ${tag} unchanged (${[...new Set(reasons)].join(', ')})`;
    }
    lines.push(
      `${build.service} ${tag}: ${deployed.length} deployed, ${skipped.length} skipped, ` +
        `${failed.length} failed.`,
    );
    if (to !== undefined) lines.push(`Image: ${to.image}`);
    for (const [title, targets] of [
      ['Deployed', deployed],
      ['Skipped', skipped],
      ['Failed', failed],
    ] as const) {
      if (targets.length === 0) continue;
      lines.push('', `${title}:`);
      for (const target of targets) lines.push(...describeTargetOutcome(target));
    }
  }
  lines.push('', ...describeBuildLinks(build));
  return { subject: subjectLine(subject), message: `${lines.join('\n')}\n` };
}

/** The console page of a build; undefined for a build outside CodeBuild (known from its image's labels). */
export function buildConsoleLink(build: BuildRecord): string | undefined {
  if (build.region === undefined || build.account === undefined) return undefined;
  return (
    `https://${build.region}.console.aws.amazon.com/codesuite/codebuild/${build.account}/projects/` +
    `${encodeURIComponent(build.project)}/build/${encodeURIComponent(build.buildId)}/`
  );
}

function describeTargetOutcome(target: TargetOutcome): string[] {
  const { environment, target: where, service } = target.ref;
  const head =
    `- ${service} in ${environment.name} (namespace ${environment.namespace}, cluster ` +
    `${environment.clusterName}${environment.region === undefined ? '' : `, ${environment.region}`}), ` +
    `Deployment ${where.deployment}, container ${where.container}`;
  switch (target.status) {
    case 'deployed':
      return [head, `  ${fromTo(target.from, target.to, true)}`];
    case 'skipped':
      return [
        head,
        `  ${fromTo(target.from, target.to, true)}`,
        `  Reason: ${target.reason}. ${target.detail}`,
      ];
    case 'failed':
      return [
        head,
        `  not deployed: ${describeImage(target.to)}`,
        `  Reason: ${target.reason}. ${target.detail}`,
      ];
  }
}

function describeBuildLinks(build: BuildRecord): string[] {
  const link = buildConsoleLink(build);
  return [
    `Build: ${build.project}#${build.buildNumber}, commit ${build.commit.slice(0, SHORT_SHA)}, ` +
      `${build.gitRef === '' ? 'no git ref' : build.gitRef}`,
    ...(link === undefined ? [] : [`  ${link}`]),
    ...(build.logsLink === undefined ? [] : [`Log: ${build.logsLink}`]),
  ];
}

function describeRef(ref: TargetRef): string {
  const { deployment, container } = ref.target;
  return `${ref.environment.name}/${deployment}${container === deployment ? '' : `[${container}]`}`;
}

function fromTo(from: RunningImage | undefined, to: DesiredImage, long = false): string {
  if (!long) return `${from?.tag ?? shortDigest(from?.digest) ?? 'unknown'} → ${to.tag}`;
  return `from ${from === undefined ? 'no image' : describeRunning(from)} → to ${describeImage(to)}`;
}

function describeImage(image: DesiredImage): string {
  const build =
    image.buildProject === undefined || image.buildNumber === undefined
      ? ''
      : `, build ${image.buildProject}#${image.buildNumber}`;
  return `${image.tag} (commit ${image.commit.slice(0, SHORT_SHA)}${build})`;
}

function describeRunning(from: RunningImage): string {
  const name = from.tag ?? shortDigest(from.digest) ?? from.image;
  const known = [
    from.commit === undefined ? undefined : `commit ${from.commit.slice(0, SHORT_SHA)}`,
    from.buildProject === undefined || from.buildNumber === undefined
      ? undefined
      : `build ${from.buildProject}#${from.buildNumber}`,
  ].filter((part) => part !== undefined);
  return known.length === 0 ? name : `${name} (${known.join(', ')})`;
}

function shortDigest(digest: string | undefined): string | undefined {
  return digest === undefined ? undefined : `${digest.slice(0, SHORT_DIGEST)}…`;
}

/** Printable ASCII only, at most {@link MAX_SUBJECT_LENGTH} characters. */
function subjectLine(text: string): string {
  const ascii = text.replace(/[^\x20-\x7e]/g, '?');
  return ascii.length <= MAX_SUBJECT_LENGTH
    ? ascii
    : `${ascii.slice(0, MAX_SUBJECT_LENGTH - 3)}...`;
}

/** Which end one Deployment's verification reached. */
export type VerifyOutcome =
  'verified' | 'rolled-back' | 'verify-failed' | 'rollback-failed' | 'stopped';

/** What one Deployment's verification came to, as every runtime reports it. */
export interface VerifyLine {
  readonly environment: string;
  readonly deployment: string;
  readonly outcome: VerifyOutcome;
  /** Seconds to Ready: of the new image (verified) or of the rollback (rolled-back). */
  readonly seconds: number | undefined;
  /** Why the new image failed (every outcome but verified and stopped). */
  readonly failure: string;
  /** The image rolled back to, or that the rollback tried (rolled-back, rollback-failed). */
  readonly rollbackImage: string;
  /** Why there was no rollback (verify-failed). */
  readonly notRolledBack: string;
  /** Why the rollback failed too (rollback-failed). */
  readonly rollbackFailure: string;
  /** The last verdict's state and message (stopped). */
  readonly stopped: { readonly state: string; readonly message: string };
}

/** One line per Deployment, for people: the Report step's and the in-cluster deployer's. */
export function describeVerifyLine(line: VerifyLine): string {
  const where = `${line.environment}/${line.deployment}`;
  const inSeconds = line.seconds === undefined ? '' : ` in ${line.seconds} s`;
  switch (line.outcome) {
    case 'verified':
      return `${where}: verified Ready${inSeconds}`;
    case 'rolled-back':
      return `${where}: FAILED verification: ${line.failure}; rolled back to ${line.rollbackImage}, verified Ready${inSeconds}`;
    case 'verify-failed':
      return `${where}: FAILED verification: ${line.failure}; not rolled back: ${line.notRolledBack}`;
    case 'rollback-failed':
      return `${where}: FAILED verification: ${line.failure}; rollback to ${line.rollbackImage} FAILED too: ${line.rollbackFailure}`;
    case 'stopped':
      return `${where}: verification stopped (${line.stopped.state}): ${line.stopped.message}`;
  }
}

/**
 * The notification of a deploy with its verification: the deploy's own (formatNotification)
 * with the verdicts added, one line per Deployment, and the subject saying how it ended.
 */
export function formatReport(
  notification: { readonly subject: string; readonly message: string },
  outcomes: readonly VerifyOutcome[],
  lines: readonly string[],
): { subject: string; message: string } {
  const failed = outcomes.some((o) => o === 'verify-failed' || o === 'rollback-failed');
  const rolledBack = outcomes.includes('rolled-back');
  const base = notification.subject;
  const subject =
    lines.length === 0
      ? base
      : failed
        ? `${base}: FAILED verification`
        : rolledBack
          ? `${base}: FAILED, rolled back`
          : outcomes.every((o) => o === 'verified')
            ? `${base}: verified Ready`
            : base;
  const message =
    lines.length === 0
      ? notification.message
      : `${notification.message}\n\nVerification:\n${lines.map((l) => `- ${l}`).join('\n')}`;
  return { subject, message };
}
