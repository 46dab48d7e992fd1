import { statusTable, type TargetStatus } from '../../cli/commands/status';
import type { ImageRecord } from '../../cli/images';
import type { EnvironmentSettings, ServiceSettings } from '../../lib/deployer-contract';
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
        'ENV   SERVICE         TAG           DIGEST               COMMIT        BUILD  DEPLOYED             ROLLOUT                                NEWEST        NOTES',
        'main  hasher          6e0de7938dda  sha256:aaaaaaaaaaaa  6e0de7938dda    #57  12m ago by deployer  ready                                  6e0de7938dda',
        'main  rng             v1.2.0        sha256:cccccccccccc  1234567890ab      -  3d ago by ship       progressing: 1/2 updated, 1 available  9f8e7d6c5b4a  paused; drift: newest is main-9f8e7d6-12',
        'main  webui (web/ui)  v0.1          -                    -                 -  -                    failed                                 -             not pinned by digest',
        'main  worker          -             -                    -                 -  -                    -                                      -             no such Deployment',
        'prod  worker          -             -                    -                 -  -                    -                                      -             cannot read (see below)',
        '',
      ].join('\n'),
    );
  });
});
