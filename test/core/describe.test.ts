import type { EnvironmentSettings } from '../../lib/deployer-contract';
import {
  describeVerifyLine,
  MAX_SUBJECT_LENGTH,
  buildConsoleLink,
  describeBuildPlan,
  describeOutcome,
  describeTargetPlan,
  formatNotification,
  formatReport,
} from '../../core/describe';
import { parseEvent } from '../../core/parse';
import { planBuild } from '../../core/plan';
import type {
  BuildRecord,
  DeployOutcome,
  DesiredImage,
  RunningImage,
  TargetOutcome,
  TargetPlan,
  TargetRef,
} from '../../core/types';
import { HASHER, event, setVariables, settings } from '../fixtures/events/fixtures';

const SETTINGS = settings();
const [MAIN, PROD] = SETTINGS.environments as [EnvironmentSettings, EnvironmentSettings];

function build(changes: Record<string, string> = {}): BuildRecord {
  const parsed = parseEvent(setVariables(event(), changes), SETTINGS);
  if (parsed.kind !== 'build') throw new Error('the fixture event lost its variables');
  return parsed.build;
}

const BUILD = build();
const TO: DesiredImage = {
  image: `${HASHER.repositoryUri}:${HASHER.commitTag}@${HASHER.digest}`,
  tag: HASHER.commitTag,
  digest: HASHER.digest,
  commit: HASHER.commit,
  buildProject: 'DockerCoins-hasher',
  buildNumber: 55,
  buildArn: BUILD.buildArn,
  gitRef: BUILD.gitRef,
};
const FROM: RunningImage = {
  image: `${HASHER.repositoryUri}:5a1b2c3d4e5f@sha256:${'0a'.repeat(32)}`,
  tag: '5a1b2c3d4e5f',
  digest: `sha256:${'0a'.repeat(32)}`,
  commit: '5a1b2c3d4e5f60718293a4b5c6d7e8f901234567',
  buildProject: 'DockerCoins-hasher',
  buildNumber: 50,
};
const IN_MAIN: TargetRef = {
  environment: MAIN,
  service: 'hasher',
  target: { deployment: 'hasher', container: 'hasher' },
};
const IN_PROD: TargetRef = {
  environment: PROD,
  service: 'hasher',
  target: { deployment: 'hasher', container: 'hasher' },
};
const CANARY: TargetRef = {
  environment: MAIN,
  service: 'hasher',
  target: { deployment: 'hasher-canary', container: 'app' },
};

const deployed: TargetOutcome = {
  status: 'deployed',
  ref: IN_MAIN,
  from: FROM,
  to: TO,
  generation: 8,
  latencyMs: 3100,
};
const skipped: TargetOutcome = {
  status: 'skipped',
  ref: IN_PROD,
  reason: 'paused',
  from: FROM,
  to: TO,
  detail: 'automatic deploys are paused; resume with `ship resume`.',
};
const failed: TargetOutcome = {
  status: 'failed',
  ref: CANARY,
  reason: 'container-missing',
  to: TO,
  detail: 'the Deployment has no container "app".',
};

describe('one-line forms for logs', () => {
  test('Given a deploy plan and a skip plan, when described, then each is one line naming build, tag, digest and targets', () => {
    const release = planBuild(
      build({ GIT_REF: 'refs/tags/v1.2.0', IMAGE_TAGS: `${HASHER.commitTag},v1.2.0` }),
      SETTINGS,
    );
    expect(describeBuildPlan(release)).toBe(
      'deploy DockerCoins-hasher#55 (hasher 6e0de7938dda, refs/tags/v1.2.0): v1.2.0@sha256:3b3b3b3b3b3b… → prod/hasher',
    );
    expect(describeBuildPlan(planBuild(build({ GIT_REF: '' }), SETTINGS))).toBe(
      'skip DockerCoins-hasher#55 (hasher 6e0de7938dda, no ref): not-a-deploy-ref',
    );
  });

  test.each<[TargetPlan, string]>([
    [
      { action: 'patch', ref: CANARY, from: FROM, to: TO, resourceVersion: '81235', patch: {} },
      'patch main/hasher-canary[app]: 5a1b2c3d4e5f → 6e0de7938dda (resourceVersion 81235)',
    ],
    [
      { action: 'patch', ref: IN_MAIN, from: undefined, to: TO, resourceVersion: '1', patch: {} },
      'patch main/hasher: unknown → 6e0de7938dda (resourceVersion 1)',
    ],
    [
      { action: 'skip', ref: IN_PROD, reason: 'older-build', from: FROM, to: TO, detail: '…' },
      'skip prod/hasher: older-build',
    ],
    [
      { action: 'fail', ref: IN_MAIN, reason: 'deployment-missing', to: TO, detail: '…' },
      'fail main/hasher: deployment-missing',
    ],
  ])('Given a target plan, when described, then it reads %#', (plan, expected) => {
    expect(describeTargetPlan(plan)).toBe(expected);
  });

  test.each<[string, DeployOutcome, string]>([
    [
      'targets deployed, skipped and failed',
      { kind: 'applied', build: BUILD, targets: [deployed, skipped, failed] },
      'DockerCoins-hasher#55 (hasher 6e0de7938dda, refs/heads/main): deployed main/hasher (5a1b2c3d4e5f → 6e0de7938dda); ' +
        'skipped prod/hasher (paused); failed main/hasher-canary[app] (container-missing)',
    ],
    [
      'a build that deploys nowhere',
      { kind: 'skipped', build: BUILD, reason: 'not-a-deploy-ref', detail: '…' },
      'DockerCoins-hasher#55 (hasher 6e0de7938dda, refs/heads/main): skipped (not-a-deploy-ref)',
    ],
  ])(
    'Given an outcome with %s, when described, then it is one line',
    (_name, outcome, expected) => {
      expect(describeOutcome(outcome)).toBe(expected);
      expect(describeOutcome(outcome)).not.toContain('\n');
    },
  );
});

describe('notifications', () => {
  const link =
    'https://us-west-2.console.aws.amazon.com/codesuite/codebuild/123456789012/projects/DockerCoins-hasher/build/' +
    'DockerCoins-hasher%3A8745a7a9-c340-456a-9166-edf953571bEX/';

  test('Given a build, when linked, then the console link names region, account, project and the URL-encoded build id', () => {
    expect(buildConsoleLink(BUILD)).toBe(link);
  });

  test('Given a build known from its image labels (no region, account or ARN), when notified, then no console link, the build still named', () => {
    const labelled: BuildRecord = {
      ...BUILD,
      buildArn: undefined,
      region: undefined,
      account: undefined,
      logsLink: undefined,
      buildId: 'github/dockercoins#55',
      project: 'github/dockercoins',
    };
    expect(buildConsoleLink(labelled)).toBeUndefined();
    const { message } = formatNotification({
      kind: 'skipped',
      build: labelled,
      reason: 'not-a-deploy-ref',
      detail: 'refs/heads/feature deploys nowhere.',
    });
    expect(message).toContain('Build: github/dockercoins#55, commit ');
    expect(message).not.toContain('console.aws.amazon.com');
  });

  test.each<[string, string[], string]>([
    ['all verified', ['verified', 'verified'], 'S: verified Ready'],
    ['one rolled back', ['verified', 'rolled-back'], 'S: FAILED, rolled back'],
    ['one failed', ['rolled-back', 'verify-failed'], 'S: FAILED verification'],
    ['one stopped', ['verified', 'stopped'], 'S'],
  ])(
    'Given verdicts %s, when reported, then the subject says it and each line follows',
    (_n, outcomes, subject) => {
      const report = formatReport(
        { subject: 'S', message: 'M\n' },
        outcomes as Parameters<typeof formatReport>[1],
        outcomes.map((o) => `line ${o}`),
      );
      expect(report.subject).toBe(subject);
      expect(report.message).toBe(
        `M\n\n\nVerification:\n${outcomes.map((o) => `- line ${o}`).join('\n')}`,
      );
    },
  );

  test('Given no verification, when reported, then the notification as it is', () => {
    expect(formatReport({ subject: 'S', message: 'M\n' }, [], [])).toEqual({
      subject: 'S',
      message: 'M\n',
    });
  });

  test('Given targets deployed, skipped and failed, when notified, then every target has its service, environment, from → to, and the reason', () => {
    const { subject, message } = formatNotification({
      kind: 'applied',
      build: BUILD,
      targets: [deployed, skipped, failed],
    });
    expect(subject).toBe('DockerCoins deploy FAILED: hasher 6e0de7938dda in main');
    expect(message).toBe(
      [
        'hasher 6e0de7938dda: 1 deployed, 1 skipped, 1 failed.',
        `Image: ${TO.image}`,
        '',
        'Deployed:',
        '- hasher in main (namespace dockercoins, cluster dockercoins), Deployment hasher, container hasher',
        '  from 5a1b2c3d4e5f (commit 5a1b2c3, build DockerCoins-hasher#50) → to 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#55)',
        '',
        'Skipped:',
        '- hasher in prod (namespace dockercoins-prod, cluster dockercoins), Deployment hasher, container hasher',
        '  from 5a1b2c3d4e5f (commit 5a1b2c3, build DockerCoins-hasher#50) → to 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#55)',
        '  Reason: paused. automatic deploys are paused; resume with `ship resume`.',
        '',
        'Failed:',
        '- hasher in main (namespace dockercoins, cluster dockercoins), Deployment hasher-canary, container app',
        '  not deployed: 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#55)',
        '  Reason: container-missing. the Deployment has no container "app".',
        '',
        'Build: DockerCoins-hasher#55, commit 6e0de79, refs/heads/main',
        `  ${link}`,
        'Log: https://console.aws.amazon.com/cloudwatch/home?region=us-west-2#logEvent:group=/aws/codebuild/DockerCoins-hasher;stream=8745a7a9-c340-456a-9166-edf953571bEX',
        '',
      ].join('\n'),
    );
  });

  test.each<[string, DeployOutcome, string]>([
    [
      'a deploy to two environments',
      { kind: 'applied', build: BUILD, targets: [deployed, { ...deployed, ref: IN_PROD }] },
      'DockerCoins deploy: hasher 6e0de7938dda to main, prod',
    ],
    [
      'nothing changed',
      {
        kind: 'applied',
        build: BUILD,
        targets: [skipped, { ...skipped, reason: 'already-running' }],
      },
      'DockerCoins deploy: hasher 6e0de7938dda unchanged (paused, already-running)',
    ],
    [
      'a build that deploys nowhere',
      {
        kind: 'skipped',
        build: BUILD,
        reason: 'not-a-deploy-ref',
        detail: 'refs/pull/3/head deploys nowhere.',
      },
      'DockerCoins deploy: hasher 6e0de7938dda not deployed (not-a-deploy-ref)',
    ],
  ])('Given %s, when notified, then the subject says so', (_name, outcome, expected) => {
    expect(formatNotification(outcome).subject).toBe(expected);
  });

  test('Given a build that deploys nowhere, when notified, then the message gives the reason, the detail, the build and its link', () => {
    const { message } = formatNotification({
      kind: 'skipped',
      build: BUILD,
      reason: 'not-a-deploy-ref',
      detail: 'refs/pull/3/head deploys nowhere.',
    });
    expect(message).toContain(
      'Build DockerCoins-hasher#55 of hasher was not deployed anywhere: not-a-deploy-ref.\n\nrefs/pull/3/head deploys nowhere.\n',
    );
    expect(message).toContain(link);
  });

  test('Given a 128-character release tag and long environment names, when notified, then the subject is printable ASCII under 100 characters', () => {
    const tag = `v1.${'9'.repeat(125)}`;
    const environment = (name: string): EnvironmentSettings => ({ ...PROD, name });
    const to = { ...TO, tag };
    const outcome: DeployOutcome = {
      kind: 'applied',
      build: BUILD,
      targets: [
        { ...failed, to, ref: { ...IN_PROD, environment: environment('a'.repeat(63)) } },
        { ...failed, to, ref: { ...IN_PROD, environment: environment('b'.repeat(63)) } },
      ],
    };
    const { subject } = formatNotification(outcome);
    expect(subject.length).toBeLessThanOrEqual(MAX_SUBJECT_LENGTH);
    expect(MAX_SUBJECT_LENGTH).toBeLessThan(100);
    expect(subject).toMatch(/^[\x20-\x7e]+$/);
    expect(subject).toMatch(/^DockerCoins deploy FAILED: hasher v1\.9+\.\.\.$/);
  });
});

describe('describeVerifyLine: one line per Deployment, the Lambda reporter and the in-cluster deployer alike', () => {
  const base = {
    environment: 'staging',
    deployment: 'hasher',
    seconds: 12,
    failure: 'ImagePullBackOff: not found',
    rollbackImage: 'r/hasher:aaaaaaaaaaaa@sha256:1',
    notRolledBack: 'rollback is off in staging',
    rollbackFailure: 'CrashLoopBackOff',
    stopped: { state: 'superseded', message: 'another image was deployed' },
  };
  test.each([
    ['verified', 'staging/hasher: verified Ready in 12 s'],
    [
      'rolled-back',
      'staging/hasher: FAILED verification: ImagePullBackOff: not found; rolled back to r/hasher:aaaaaaaaaaaa@sha256:1, verified Ready in 12 s',
    ],
    [
      'verify-failed',
      'staging/hasher: FAILED verification: ImagePullBackOff: not found; not rolled back: rollback is off in staging',
    ],
    [
      'rollback-failed',
      'staging/hasher: FAILED verification: ImagePullBackOff: not found; rollback to r/hasher:aaaaaaaaaaaa@sha256:1 FAILED too: CrashLoopBackOff',
    ],
    ['stopped', 'staging/hasher: verification stopped (superseded): another image was deployed'],
  ] as const)('%s', (outcome, line) => {
    expect(describeVerifyLine({ ...base, outcome })).toBe(line);
  });

  test('without seconds, no time is claimed', () => {
    expect(describeVerifyLine({ ...base, outcome: 'verified', seconds: undefined })).toBe(
      'staging/hasher: verified Ready',
    );
  });
});
