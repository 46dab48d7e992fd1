import {
  statusTable,
  verificationLines,
  verificationText,
  type TargetStatus,
} from '../../cli/commands/status';
import type { ImageRecord } from '../../cli/images';
import type {
  EnvironmentSettings,
  ServiceSettings,
  VerificationRecord,
} from '../../lib/deployer-contract';
import { settings } from '../fixtures/events/fixtures';

// The status table people read, golden: every kind of row.

const NOW = new Date('2026-11-28T12:00:00Z');
const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const MAIN: EnvironmentSettings = settings().environments[0]!;
const service = (name: string, deployment = name, container = name): ServiceSettings => ({
  service: name,
  project: `DockerCoins-${name}`,
  repository: `dockercoins/${name}`,
  targets: [{ deployment, container }],
});
const newest = (tags: string[], c: string): { image: ImageRecord; tag: string } => ({
  image: {
    repository: 'dockercoins/x',
    repositoryUri: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/x',
    digest: digest(c),
    tags,
    pushedAt: undefined,
    sizeBytes: undefined,
    revision: undefined,
    scan: undefined,
  },
  tag: tags[1]!,
});
const ready = {
  state: 'ready' as const,
  message: 'deployment "x" successfully rolled out',
  desired: 2,
  updated: 2,
  available: 2,
  replicas: 2,
  specPaused: false,
  observed: true,
};

function row(partial: Partial<TargetStatus> & { service: ServiceSettings }): TargetStatus {
  return {
    environment: MAIN,
    deployment: partial.service.targets[0]!.deployment,
    container: partial.service.targets[0]!.container,
    error: undefined,
    running: undefined,
    deployedAt: undefined,
    deployedBy: undefined,
    paused: false,
    rollout: ready,
    newest: undefined,
    drift: false,
    ...partial,
  };
}

describe('statusTable', () => {
  test('Given current, drifted and paused, rolling out, unpinned, missing and unreadable services, when tabulated, then the golden table', () => {
    const hasherImage = newest(['6e0de7938dda', 'main-6e0de79-57'], 'a');
    const rngImage = newest(['9f8e7d6c5b4a', 'main-9f8e7d6-12'], 'b');
    const rows: TargetStatus[] = [
      row({
        service: service('hasher'),
        running: {
          image: 'x',
          tag: '6e0de7938dda',
          digest: digest('a'),
          commit: '6e0de7938dda5363e2192fe2a2ec39987a3573b0',
          buildProject: 'DockerCoins-hasher',
          buildNumber: 57,
        },
        deployedAt: new Date('2026-11-28T11:48:00Z'),
        deployedBy: 'deployer',
        newest: hasherImage,
      }),
      row({
        service: service('rng'),
        running: {
          image: 'x',
          tag: 'v1.2.0',
          digest: digest('c'),
          commit: '1234567890abcdef1234567890abcdef12345678',
          buildProject: undefined,
          buildNumber: undefined,
        },
        deployedAt: new Date('2026-11-25T12:00:00Z'),
        deployedBy: 'ship',
        paused: true,
        newest: rngImage,
        drift: true,
        rollout: {
          ...ready,
          state: 'progressing',
          updated: 1,
          available: 1,
          message:
            'Waiting for deployment "rng" rollout to finish: 1 out of 2 new replicas have been updated...',
        },
      }),
      row({
        service: service('webui', 'web', 'ui'),
        running: {
          image: '127.0.0.1:30500/webui:v0.1',
          tag: 'v0.1',
          digest: undefined,
          commit: undefined,
          buildProject: undefined,
          buildNumber: undefined,
        },
        rollout: {
          ...ready,
          state: 'failed',
          message: 'deployment "web" exceeded its progress deadline',
        },
      }),
      row({ service: service('worker'), error: 'missing', rollout: undefined }),
      row({
        environment: { ...MAIN, name: 'prod', namespace: 'dockercoins-prod' },
        service: service('worker'),
        error: 'GET … 403 Forbidden',
        rollout: undefined,
      }),
    ];
    expect(statusTable(rows, 'v*', NOW)).toBe(
      [
        'ENV   SERVICE         TAG           DIGEST               COMMIT        BUILD  DEPLOYED             ROLLOUT                                VERIFIED  NEWEST        NOTES',
        'main  hasher          6e0de7938dda  sha256:aaaaaaaaaaaa  6e0de7938dda    #57  12m ago by deployer  ready                                  -         6e0de7938dda',
        'main  rng             v1.2.0        sha256:cccccccccccc  1234567890ab      -  3d ago by ship       progressing: 1/2 updated, 1 available  -         9f8e7d6c5b4a  paused; drift: newest is main-9f8e7d6-12',
        'main  webui (web/ui)  v0.1          -                    -                 -  -                    failed                                 -         -             not pinned by digest',
        'main  worker          -             -                    -                 -  -                    -                                      -         -             no such Deployment',
        'prod  worker          -             -                    -                 -  -                    -                                      -         -             cannot read (see below)',
        '',
      ].join('\n'),
    );
  });
});

describe('verification in ship status', () => {
  const running = {
    image: 'x',
    tag: '6e0de7938dda',
    digest: digest('a'),
    commit: '6e0de7938dda5363e2192fe2a2ec39987a3573b0',
    buildProject: 'DockerCoins-hasher',
    buildNumber: 57,
  };
  const record = (
    state: VerificationRecord['state'],
    changes: Partial<VerificationRecord> = {},
  ): VerificationRecord => ({
    state,
    image: `123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher:6e0de7938dda@${digest('a')}`,
    digest: digest('a'),
    build: 57,
    execution: 'arn:aws:states:eu-west-1:123456789012:execution:deploy:e1',
    generation: 4,
    since: '2026-11-28T11:48:00.000Z',
    leaseUntil: '2026-11-28T11:56:00.000Z',
    reason: 'verified Ready in 41 s',
    ...changes,
  });

  test.each<[string, VerificationRecord | undefined, string]>([
    ['no record', undefined, '-'],
    ['verified', record('verified'), 'verified'],
    [
      'verifying, lease held',
      record('verifying', { leaseUntil: '2026-11-28T12:05:00.000Z' }),
      'verifying',
    ],
    ['verifying, lease expired', record('verifying'), 'verifying (lease expired)'],
    ['failed', record('failed'), 'FAILED'],
    ['rolled back', record('rolled-back'), 'rolled back'],
    ['superseded', record('superseded'), 'superseded'],
    ['changed', record('changed'), 'stopped (changed)'],
    ['a record of another digest', record('verified', { digest: digest('b') }), 'unverified'],
  ])('Given %s, then the VERIFIED column says it', (_name, verification, text) => {
    expect(verificationText(row({ service: service('hasher'), running, verification }), NOW)).toBe(
      text,
    );
  });

  test('Given a rolled-back service with two rejected digests, then the lines under the table say the reason and each rejected digest, and how to clear one', () => {
    const rows = [
      row({
        service: service('hasher'),
        running,
        verification: record('rolled-back', {
          reason:
            'rolled back from 9f8e7d6c5b4a (pod hasher-5c9f ImagePullBackOff: Back-off pulling image); rollback verified Ready in 18 s',
        }),
        rejected: [
          {
            digest: digest('b'),
            build: 58,
            reason: 'ImagePullBackOff: pod hasher-5c9f…',
            at: '2026-11-28T11:50:00.000Z',
          },
          { digest: digest('c'), reason: 'Deadline: not Ready', at: '2026-11-27T11:50:00.000Z' },
        ],
      }),
      row({ service: service('rng') }),
    ];
    expect(verificationLines(rows).join('')).toBe(
      [
        '',
        `main/hasher: rolled-back hasher:6e0de7938dda@${digest('a')} (arn:aws:states:eu-west-1:123456789012:execution:deploy:e1, since 2026-11-28T11:48:00.000Z): rolled back from 9f8e7d6c5b4a (pod hasher-5c9f ImagePullBackOff: Back-off pulling image); rollback verified Ready in 18 s`,
        'main/hasher: rejected sha256:bbbbbbbbbbbb (build #58) at 2026-11-28T11:50:00.000Z: ImagePullBackOff: pod hasher-5c9f…',
        'main/hasher: rejected sha256:cccccccccccc at 2026-11-27T11:50:00.000Z: Deadline: not Ready',
        'A rejected digest is never deployed again automatically; `ship deploy <service> <tag>` deploys it by hand and takes it off the list.',
        '',
      ].join('\n'),
    );
    expect(statusTable(rows, 'v*', NOW)).toMatch(/rolled back +- +2 rejected digests\n/);
  });

  test('Given a Deployment stuck above every build, then the note and the way out under the table', () => {
    const stuck = row({
      service: service('hasher'),
      running,
      olderBuildLock: { running: 999999999999, highestKnown: 42 },
    });
    expect(verificationLines([stuck]).join('')).toBe(
      '\nmain/hasher: runs build #999999999999, above every build in the registry (the highest is #42): ' +
        'automatic deploys skip every build up to #999999999999 as older-build. Deploy the newest build by hand ' +
        'to clear it: ship deploy hasher <tag> --env main --allow-older\n',
    );
    expect(statusTable([stuck], 'v*', NOW)).toMatch(
      /STUCK above every build \(#999999999999 > #42\)/,
    );
  });

  test('Given no records, then nothing under the table', () => {
    expect(verificationLines([row({ service: service('hasher'), running })])).toEqual([]);
  });
});
