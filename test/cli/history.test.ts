import { desiredFromRevision, previousImage, rolloutHistory } from '../../cli/history';
import { historyTable } from '../../cli/commands/history';
import { ANNOTATIONS } from '../../lib/deployer-contract';
import { planTarget } from '../../lambda/deployer/plan';
import type { Deployment, DesiredImage, ReplicaSet, TargetRef } from '../../lambda/deployer/types';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';

// The history as the Deployment controller leaves it: the in-test API server keeps ReplicaSets,
// revisions and copied annotations as the controller does; the patches are planTarget's own.

const NS = 'dockercoins';
const REPO = '127.0.0.1:30500/hasher';
const digest = (c: string): string => `sha256:${c.repeat(64)}`;
const A: DesiredImage = {
  image: `${REPO}:6e0de7938dda@${digest('a')}`,
  tag: '6e0de7938dda',
  digest: digest('a'),
  commit: '6e0de7938dda5363e2192fe2a2ec39987a3573b0',
  buildProject: 'DockerCoins-hasher',
  buildNumber: 41,
  buildArn: 'arn:aws:codebuild:eu-west-1:123456789012:build/DockerCoins-hasher:a',
  gitRef: 'refs/heads/main',
};
const B: DesiredImage = {
  ...A,
  image: `${REPO}:9f8e7d6c5b4a@${digest('b')}`,
  tag: '9f8e7d6c5b4a',
  digest: digest('b'),
  commit: '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432',
  buildNumber: 42,
  buildArn: 'arn:aws:codebuild:eu-west-1:123456789012:build/DockerCoins-hasher:b',
};
const REF: TargetRef = {
  environment: {
    name: 'main',
    clusterName: 'dockercoins',
    region: undefined,
    namespace: NS,
    branches: ['main'],
    releaseTags: false,
  },
  service: 'hasher',
  target: { deployment: 'hasher', container: 'hasher' },
};

function manifest(name: string): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas: 1,
      selector: { matchLabels: { app: 'hasher' } },
      template: {
        metadata: { labels: { app: 'hasher' } },
        spec: { containers: [{ name: 'hasher', image: `${REPO}:v0.1` }] },
      },
    },
  };
}

let kube: KubeApiServer;
beforeAll(async () => {
  kube = await startKubeApiServer({ clusterName: 'dockercoins', staticTokens: {} });
});
afterAll(() => kube.stop());

function deploy(image: DesiredImage, at: string, by: 'ship' | 'deployer'): void {
  const live = kube.deployment(NS, 'hasher') as unknown as Deployment;
  const step = planTarget(REF, image, live, new Date(at), { deployedBy: by, allowOlder: true });
  if (step.action !== 'patch') throw new Error(`expected a patch, got ${step.action}`);
  kube.patchDeployment(NS, 'hasher', step.patch);
}

function read(): { live: Deployment; replicaSets: ReplicaSet[] } {
  return {
    live: kube.deployment(NS, 'hasher') as unknown as Deployment,
    // every ReplicaSet of the namespace, as a list by label selector returns them
    replicaSets: [...kube.replicaSetsOf(NS, 'hasher'), ...kube.replicaSetsOf(NS, 'hasher-canary')],
  };
}

describe('rolloutHistory, previousImage, desiredFromRevision', () => {
  beforeEach(() => {
    kube.putDeployment(manifest('hasher'));
    kube.putDeployment(manifest('hasher-canary'));
  });

  test("Given deploys of A then B, when the history is read, then B is current, A before it, the manifest first; the canary's ReplicaSets are not ours", () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'ship');
    const { live, replicaSets } = read();
    const history = rolloutHistory(live, replicaSets, 'hasher');
    expect(history.map((r) => [r.revision, r.current, r.tag, r.buildNumber, r.deployedBy])).toEqual(
      [
        [3, true, '9f8e7d6c5b4a', 42, 'ship'],
        [2, false, '6e0de7938dda', 41, 'deployer'],
        [1, false, 'v0.1', undefined, undefined],
      ],
    );
    expect(history[1]).toMatchObject({
      digest: digest('a'),
      commit: A.commit,
      buildArn: A.buildArn,
      gitRef: 'refs/heads/main',
      deployedAt: new Date('2026-11-27T10:00:00Z'),
      changeCause: 'hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#41)',
    });
    const previous = previousImage(history, digest('b'));
    expect(previous?.revision).toBe(2);
    expect(desiredFromRevision(previous!)).toEqual({ ok: true, image: A });
  });

  test('Given a rollback to A (the controller brings its ReplicaSet back at a new revision), when read, then A is current and B is the previous image', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    deploy(A, '2026-11-28T11:00:00Z', 'ship');
    const { live, replicaSets } = read();
    const history = rolloutHistory(live, replicaSets, 'hasher');
    expect(history.map((r) => [r.revision, r.current, r.tag])).toEqual([
      [4, true, '6e0de7938dda'],
      [3, false, '9f8e7d6c5b4a'],
      [1, false, 'v0.1'],
    ]);
    expect(history[0]!.deployedBy).toBe('ship');
    expect(previousImage(history, digest('a'))?.tag).toBe('9f8e7d6c5b4a');
  });

  test('Given kubectl set image by hand after B, when read, then that revision shows its image without our commit, and cannot be deployed again by ship', () => {
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    kube.patchDeployment(NS, 'hasher', {
      spec: {
        template: {
          spec: { containers: [{ name: 'hasher', image: `${REPO}:hotfix@${digest('c')}` }] },
        },
      },
    });
    const { live, replicaSets } = read();
    const history = rolloutHistory(live, replicaSets, 'hasher');
    expect(history[0]).toMatchObject({
      current: true,
      tag: 'hotfix',
      digest: digest('c'),
      commit: undefined,
    });
    const refused = desiredFromRevision(history[0]!);
    expect(refused.ok).toBe(false);
    expect(!refused.ok && refused.reason).toMatch(
      /^revision 3 \(.*hotfix.*\) has no ship\.dockercoins\.io annotations describing it/,
    );
    // the rollback target skips to B, the newest other image with a digest
    expect(previousImage(history, digest('c'))?.tag).toBe('9f8e7d6c5b4a');
  });

  test("Given only one image ever, when asked for the previous one, then there is none (the manifest's is not pinned)", () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    const { live, replicaSets } = read();
    expect(previousImage(rolloutHistory(live, replicaSets, 'hasher'), digest('a'))).toBeUndefined();
  });

  test('Given a history, when tabulated, then the golden table', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'ship');
    const { live, replicaSets } = read();
    expect(live.metadata.annotations?.[ANNOTATIONS.paused]).toBeUndefined();
    expect(historyTable(rolloutHistory(live, replicaSets, 'hasher'))).toBe(
      [
        'REVISION           TAG           DIGEST               COMMIT        BUILD                  DEPLOYED              BY        CHANGE-CAUSE',
        '       3  current  9f8e7d6c5b4a  sha256:bbbbbbbbbbbb  9f8e7d6c5b4a  DockerCoins-hasher#42  2026-11-28T10:00:00Z  ship      hasher 9f8e7d6c5b4a (commit 9f8e7d6, build DockerCoins-hasher#42) by ship',
        '       2           6e0de7938dda  sha256:aaaaaaaaaaaa  6e0de7938dda  DockerCoins-hasher#41  2026-11-27T10:00:00Z  deployer  hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#41)',
        '       1           v0.1          -                    -             -                      -                     -         -',
        '',
      ].join('\n'),
    );
  });
});
