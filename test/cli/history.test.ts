import {
  REVISION_ANNOTATION,
  desiredFromRevision,
  previousImage,
  rolloutHistory,
  type Revision,
} from '../../cli/history';
import { historyTable } from '../../cli/commands/history';
import { ANNOTATIONS } from '../../lib/deployer-contract';
import { planPause, planTarget } from '../../core/plan';
import type { Deployment, DesiredImage, ReplicaSet, TargetRef } from '../../core/types';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';

// The history as the Deployment controller leaves it: the in-test API server keeps ReplicaSets,
// revisions and copied annotations as the controller does; the patches are planTarget's own, or
// what `kubectl set image` / `kubectl set env` send.

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
const CAUSE_A = 'hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#41)';
const CAUSE_B = 'hasher 9f8e7d6c5b4a (commit 9f8e7d6, build DockerCoins-hasher#42)';
const RS_NAME = expect.stringMatching(/^hasher-[a-z0-9]+$/) as unknown as string;

function manifest(name: string): object {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas: 2,
      // the canary's selector overlaps ours: listing by our selector returns its ReplicaSets too
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
beforeEach(() => {
  kube.putDeployment(manifest('hasher'));
  kube.putDeployment(manifest('hasher-canary'));
  kube.completeRollout(NS, 'hasher');
});

const live = (): Deployment => kube.deployment(NS, 'hasher') as unknown as Deployment;

/** A deploy as the deployer or `ship` sends it, then the controller finishing the rollout. */
function deploy(image: DesiredImage, at: string, by: 'ship' | 'deployer'): void {
  const step = planTarget(REF, image, live(), new Date(at), { deployedBy: by, allowOlder: true });
  if (step.action !== 'patch') throw new Error(`expected a patch, got ${step.action}`);
  kube.patchDeployment(NS, 'hasher', step.patch);
  kube.completeRollout(NS, 'hasher');
}

/** A change by hand to the container, without our annotations (`kubectl set image|env`). */
function byHand(container: Record<string, unknown>): void {
  kube.patchDeployment(NS, 'hasher', {
    spec: { template: { spec: { containers: [{ name: 'hasher', ...container }] } } },
  });
  kube.completeRollout(NS, 'hasher');
}

/** Every ReplicaSet the Deployment's selector lists: ours and the canary's. */
function listed(): ReplicaSet[] {
  return [...kube.replicaSetsOf(NS, 'hasher'), ...kube.replicaSetsOf(NS, 'hasher-canary')];
}

const history = (): Revision[] => rolloutHistory(live(), listed(), 'hasher');

describe('rolloutHistory from the ReplicaSets the controller keeps', () => {
  test("Given the manifest, then deploys of A then B, when read, then three revisions newest first with what each ran; the canary's ReplicaSets are not ours", () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'ship');
    expect(history()).toEqual([
      {
        revision: 3,
        replicaSet: RS_NAME,
        current: true,
        replicas: 2,
        image: B.image,
        tag: B.tag,
        digest: B.digest,
        commit: B.commit,
        buildProject: 'DockerCoins-hasher',
        buildNumber: 42,
        buildArn: B.buildArn,
        gitRef: 'refs/heads/main',
        deployedAt: new Date('2026-11-28T10:00:00Z'),
        deployedBy: 'ship',
        changeCause: `${CAUSE_B} by ship`,
      },
      {
        revision: 2,
        replicaSet: RS_NAME,
        current: false,
        replicas: 0,
        image: A.image,
        tag: A.tag,
        digest: A.digest,
        commit: A.commit,
        buildProject: 'DockerCoins-hasher',
        buildNumber: 41,
        buildArn: A.buildArn,
        gitRef: 'refs/heads/main',
        deployedAt: new Date('2026-11-27T10:00:00Z'),
        deployedBy: 'deployer',
        changeCause: CAUSE_A,
      },
      {
        revision: 1,
        replicaSet: RS_NAME,
        current: false,
        replicas: 0,
        image: `${REPO}:v0.1`,
        tag: 'v0.1',
        digest: undefined,
        commit: undefined,
        buildProject: undefined,
        buildNumber: undefined,
        buildArn: undefined,
        gitRef: undefined,
        deployedAt: undefined,
        deployedBy: undefined,
        changeCause: undefined,
      },
    ]);
    const names = kube.replicaSetsOf(NS, 'hasher').map((rs) => rs.metadata.name);
    expect(history().map((r) => r.replicaSet)).toEqual([...names].reverse());
  });

  test('Given a rollback to A with ship (the controller brings its ReplicaSet back at a new revision), when read, then that ReplicaSet is current at revision 4, deployed by ship, and revision 2 is gone', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    const aReplicaSet = history()[0]!.replicaSet;
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    deploy(A, '2026-11-28T11:00:00Z', 'ship');
    const revisions = history();
    expect(revisions.map((r) => [r.revision, r.current, r.tag, r.replicas])).toEqual([
      [4, true, A.tag, 2],
      [3, false, B.tag, 0],
      [1, false, 'v0.1', 0],
    ]);
    expect(revisions[0]).toMatchObject({
      replicaSet: aReplicaSet,
      deployedBy: 'ship',
      deployedAt: new Date('2026-11-28T11:00:00Z'),
      changeCause: `${CAUSE_A} by ship`,
    });
    expect(
      kube.replicaSetsOf(NS, 'hasher').find((rs) => rs.metadata.name === aReplicaSet)?.metadata
        .annotations?.['deployment.kubernetes.io/revision-history'],
    ).toBe('2');
  });

  test("Given `kubectl set image` by hand after B, when read, then that revision shows its image and digest, none of our facts (its ReplicaSet got B's annotations), and the change-cause as kubectl shows it", () => {
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    byHand({ image: `${REPO}:hotfix@${digest('c')}` });
    expect(history()[0]).toEqual({
      revision: 3,
      replicaSet: RS_NAME,
      current: true,
      replicas: 2,
      image: `${REPO}:hotfix@${digest('c')}`,
      tag: 'hotfix',
      digest: digest('c'),
      commit: undefined,
      buildProject: undefined,
      buildNumber: undefined,
      buildArn: undefined,
      gitRef: undefined,
      deployedAt: undefined,
      deployedBy: undefined,
      // copied from the Deployment, which still says B: kubectl rollout history shows the same
      changeCause: CAUSE_B,
    });
    const replicaSet = kube.replicaSetsOf(NS, 'hasher').at(-1)!;
    expect(replicaSet.metadata.annotations?.[ANNOTATIONS.digest]).toBe(B.digest);
  });

  test("Given `kubectl set image` by hand to B's own tag without a digest, when read, then runningImage's rule takes the digest of the annotations that still name that tag", () => {
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    byHand({ image: `${REPO}:${B.tag}` });
    expect(history()[0]).toMatchObject({
      revision: 3,
      tag: B.tag,
      digest: B.digest,
      commit: B.commit,
      buildArn: B.buildArn,
      deployedBy: 'deployer',
    });
  });

  test('Given a change to our annotations only (ship pause), when read, then no new revision: the current ReplicaSet just carries them', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    const plan = planPause(REF, live(), true);
    if (plan.action !== 'patch') throw new Error(`expected a patch, got ${plan.action}`);
    kube.patchDeployment(NS, 'hasher', plan.patch);
    expect(history().map((r) => [r.revision, r.current, r.tag])).toEqual([
      [2, true, A.tag],
      [1, false, 'v0.1'],
    ]);
  });

  test('Given ReplicaSets the Deployment does not control, when read, then only its own count', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    const [own] = kube.replicaSetsOf(NS, 'hasher').slice(-1) as unknown as ReplicaSet[];
    const uid = live().metadata.uid as string;
    const variant = (name: string, ownerReferences: unknown): ReplicaSet => ({
      ...own!,
      metadata: {
        ...own!.metadata,
        name,
        annotations: { ...own!.metadata.annotations, [REVISION_ANNOTATION]: '9' },
        ownerReferences: ownerReferences as ReplicaSet['metadata']['ownerReferences'],
      },
    });
    const strangers = [
      variant('orphan', undefined),
      variant('referring-not-controlled', [{ kind: 'Deployment', uid, controller: false }]),
      variant('other-controller-first', [
        { kind: 'Deployment', uid: 'another-uid', controller: true },
        { kind: 'Deployment', uid, controller: true },
      ]),
      variant('same-name-other-uid', [
        { kind: 'Deployment', name: 'hasher', uid: 'a-deleted-incarnation', controller: true },
      ]),
    ];
    expect(
      rolloutHistory(live(), [...listed(), ...strangers], 'hasher').map((r) => r.revision),
    ).toEqual([2, 1]);
  });

  test.each<[string, string | undefined]>([
    ['no revision annotation', undefined],
    ['an empty one', ''],
    ['a word', 'two'],
    ['zero', '0'],
    ['a negative one', '-3'],
    ['a leading zero', '07'],
    ['a fraction', '2.5'],
    ['more digits than a number holds exactly', '12345678901234567'],
  ])(
    'Given an owned ReplicaSet with %s, when read, then it is left out (it cannot be placed in the order)',
    (_name, text) => {
      deploy(A, '2026-11-27T10:00:00Z', 'deployer');
      const [own] = kube.replicaSetsOf(NS, 'hasher').slice(-1) as unknown as ReplicaSet[];
      const annotations: Record<string, string> = { ...own!.metadata.annotations };
      if (text === undefined) delete annotations[REVISION_ANNOTATION];
      else annotations[REVISION_ANNOTATION] = text;
      const odd: ReplicaSet = { ...own!, metadata: { ...own!.metadata, name: 'odd', annotations } };
      expect(
        rolloutHistory(live(), [...listed(), odd], 'hasher').map((r) => r.replicaSet),
      ).not.toContain('odd');
    },
  );

  test('Given a Deployment without its revision annotation, when read, then the ReplicaSet of its pod template (pod-template-hash aside) is current', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    const annotations: Record<string, string> = { ...live().metadata.annotations };
    delete annotations[REVISION_ANNOTATION];
    const unsynced: Deployment = { ...live(), metadata: { ...live().metadata, annotations } };
    expect(
      rolloutHistory(unsynced, listed(), 'hasher').map((r) => [r.revision, r.current]),
    ).toEqual([
      [3, true],
      [2, false],
      [1, false],
    ]);
  });

  test('Given a Deployment without its revision annotation whose template no ReplicaSet has yet, when read, then none is current and the rollback target is the newest other image', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    const annotations: Record<string, string> = { ...live().metadata.annotations };
    delete annotations[REVISION_ANNOTATION];
    const patched = live();
    const unsynced: Deployment = {
      ...patched,
      metadata: { ...patched.metadata, annotations },
      spec: {
        ...patched.spec,
        template: {
          ...patched.spec!.template,
          spec: { containers: [{ name: 'hasher', image: `${REPO}:hotfix@${digest('c')}` }] },
        },
      },
    };
    const revisions = rolloutHistory(unsynced, listed(), 'hasher');
    expect(revisions.map((r) => r.current)).toEqual([false, false, false]);
    expect(previousImage(revisions, digest('c'))?.revision).toBe(3);
  });

  test('Given a Deployment without metadata.uid, when read, then it throws: ownership cannot be told', () => {
    const metadata = { ...live().metadata };
    delete metadata.uid;
    expect(() => rolloutHistory({ ...live(), metadata }, listed(), 'hasher')).toThrow(
      /^rolloutHistory: Deployment hasher has no metadata\.uid/,
    );
  });

  test('Given a container the ReplicaSets do not have, when read, then the revisions are there without an image', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    expect(rolloutHistory(live(), listed(), 'sidecar').map((r) => [r.revision, r.image])).toEqual([
      [2, undefined],
      [1, undefined],
    ]);
  });
});

describe('previousImage: the rollback target, from histories the controller made', () => {
  test('Given deploys of A then B, when asked, then A', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    expect(previousImage(history(), B.digest)?.revision).toBe(2);
  });

  test('Given a rollback to A after B, when asked again, then B', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    deploy(A, '2026-11-28T11:00:00Z', 'ship');
    expect(previousImage(history(), A.digest)?.tag).toBe(B.tag);
  });

  test('Given `kubectl set image` by hand after B, when asked, then B (the hand-set image is what runs)', () => {
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    byHand({ image: `${REPO}:hotfix@${digest('c')}` });
    expect(previousImage(history(), digest('c'))?.tag).toBe(B.tag);
  });

  test('Given `kubectl set env` by hand after A then B (a new revision of the same image), when asked, then A: a revision of the running image is passed over', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    byHand({ env: [{ name: 'DEBUG', value: '1' }] });
    const revisions = history();
    expect(revisions.map((r) => [r.revision, r.digest])).toEqual([
      [4, B.digest],
      [3, B.digest],
      [2, A.digest],
      [1, undefined],
    ]);
    expect(previousImage(revisions, B.digest)?.revision).toBe(2);
  });

  test("Given only one image ever deployed, when asked, then none (the manifest's image is not pinned by a digest)", () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    expect(previousImage(history(), A.digest)).toBeUndefined();
  });
});

/** A Revision as rolloutHistory makes them, for the pure cases. */
function revision(fields: Partial<Revision> & Pick<Revision, 'revision'>): Revision {
  return {
    replicaSet: `hasher-${fields.revision}`,
    current: false,
    replicas: 0,
    image: undefined,
    tag: undefined,
    digest: undefined,
    commit: undefined,
    buildProject: undefined,
    buildNumber: undefined,
    buildArn: undefined,
    gitRef: undefined,
    deployedAt: undefined,
    deployedBy: undefined,
    changeCause: undefined,
    ...fields,
  };
}

describe('previousImage: the rule, case by case', () => {
  const r = (n: number, d: string | undefined, current = false): Revision =>
    revision({ revision: n, digest: d === undefined ? undefined : digest(d), current });
  // [case, the target's revision, the history, the running image]
  test.each<[string, number | undefined, Revision[], string | undefined]>([
    ['the one before the current', 2, [r(3, 'b', true), r(2, 'a')], 'b'],
    ['in any order', 2, [r(1, 'x'), r(3, 'b', true), r(2, 'a')], 'b'],
    ['one without a digest in between', 1, [r(3, 'b', true), r(2, undefined), r(1, 'a')], 'b'],
    ['one of the running image in between', 1, [r(3, 'b', true), r(2, 'b'), r(1, 'a')], 'b'],
    [
      'a newer revision than the current (never a target)',
      2,
      [r(4, 'c'), r(3, 'b', true), r(2, 'a')],
      'b',
    ],
    [
      'a running image not pinned (no digest to compare)',
      2,
      [r(3, undefined, true), r(2, 'a')],
      undefined,
    ],
    [
      'a current revision whose image was changed since (runs c)',
      1,
      [r(3, 'b', true), r(2, 'c'), r(1, 'a')],
      'c',
    ],
    ['no current revision: all count as older', 3, [r(3, 'b'), r(2, 'a')], 'c'],
    ['one distinct image only', undefined, [r(3, 'a', true), r(2, 'a'), r(1, undefined)], 'a'],
    ['the current revision alone', undefined, [r(7, 'a', true)], 'a'],
    ['an empty history', undefined, [], 'a'],
  ])(
    'Given %s, when asked, then the target is revision %s',
    (_name, expected, revisions, running) => {
      expect(
        previousImage(revisions, running === undefined ? undefined : digest(running))?.revision,
      ).toBe(expected);
    },
  );
});

describe('desiredFromRevision', () => {
  const full = revision({
    revision: 2,
    image: A.image,
    tag: A.tag,
    digest: A.digest,
    commit: A.commit,
    buildProject: A.buildProject,
    buildNumber: A.buildNumber,
    buildArn: A.buildArn,
    gitRef: A.gitRef,
  });

  test('Given a revision from the history of deploys, when turned into the image to deploy, then exactly the image that was deployed', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    expect(desiredFromRevision(previousImage(history(), B.digest)!)).toEqual({
      ok: true,
      image: A,
    });
  });

  test.each<[string, Revision, DesiredImage]>([
    ['all our annotations', full, A],
    [
      'a digest-only reference and no tag annotation: the commit tag',
      { ...full, image: `${REPO}@${A.digest}`, tag: undefined },
      { ...A, image: `${REPO}:6e0de7938dda@${A.digest}` },
    ],
    [
      'a release tag',
      { ...full, image: `${REPO}:v1.2.0@${A.digest}`, tag: 'v1.2.0', gitRef: 'refs/tags/v1.2.0' },
      { ...A, image: `${REPO}:v1.2.0@${A.digest}`, tag: 'v1.2.0', gitRef: 'refs/tags/v1.2.0' },
    ],
    [
      'a 12-hex commit only (ship deploy from ECR) and no build known',
      {
        ...full,
        commit: '6e0de7938dda',
        buildProject: undefined,
        buildNumber: undefined,
        buildArn: undefined,
        gitRef: undefined,
      },
      {
        ...A,
        commit: '6e0de7938dda',
        buildProject: undefined,
        buildNumber: undefined,
        buildArn: undefined,
        gitRef: undefined,
      },
    ],
    [
      'an image in Docker Hub, no registry host',
      { ...full, image: `dockercoins/hasher:${A.tag}@${A.digest}` },
      { ...A, image: `dockercoins/hasher:${A.tag}@${A.digest}` },
    ],
  ])(
    'Given a revision with %s, when turned into the image to deploy, then it is',
    (_name, given, image) => {
      expect(desiredFromRevision(given)).toEqual({ ok: true, image });
    },
  );

  test.each<[string, Revision, RegExp]>([
    [
      'no image',
      revision({ revision: 5 }),
      /^revision 5 \(ReplicaSet "hasher-5", image none\) has no image in the container/,
    ],
    [
      'no digest',
      { ...full, image: `${REPO}:v0.1`, tag: 'v0.1', digest: undefined },
      /^revision 2 \(ReplicaSet "hasher-2", image "127\.0\.0\.1:30500\/hasher:v0\.1"\) is not pinned by a digest.*cannot be deployed again exactly\.$/,
    ],
    [
      'no commit (set by hand)',
      { ...full, commit: undefined },
      /^revision 2 \(ReplicaSet "hasher-2", image ".*"\) has no commit: no ship\.dockercoins\.io annotations describe its image.*its commit is unknown\.$/,
    ],
    [
      'a commit annotation that is not one',
      { ...full, commit: 'main' },
      /^revision 2 .* has a ship\.dockercoins\.io\/commit annotation that is not a commit: "main" \(expected 40 hex, or the 12-hex commit tag\)\.$/,
    ],
    [
      'control characters in its image',
      { ...full, image: `${REPO}:x\u001b[2J`, digest: undefined },
      /^revision 2 \(ReplicaSet "hasher-2", image "127\.0\.0\.1:30500\/hasher:x\\u001b\[2J"\) is not pinned/,
    ],
  ])(
    'Given a revision with %s, when turned into the image to deploy, then a sentence says why not',
    (_name, given, reason) => {
      const result = desiredFromRevision(given);
      expect(result.ok).toBe(false);
      expect(!result.ok && result.reason).toMatch(reason);
    },
  );

  test('Given a hand-set revision from the controller, when turned into the image to deploy, then it is refused for its unknown commit', () => {
    deploy(B, '2026-11-28T10:00:00Z', 'deployer');
    byHand({ image: `${REPO}:hotfix@${digest('c')}` });
    const refused = desiredFromRevision(history()[0]!);
    expect(!refused.ok && refused.reason).toMatch(
      /^revision 3 \(ReplicaSet "hasher-[a-z0-9]+", image ".*:hotfix@sha256:c+"\) has no commit/,
    );
  });
});

describe("the history as `ship history` prints it (cli/commands/history.ts's table)", () => {
  test('Given deploys of A and B, when tabulated, then the golden table', () => {
    deploy(A, '2026-11-27T10:00:00Z', 'deployer');
    deploy(B, '2026-11-28T10:00:00Z', 'ship');
    expect(historyTable(history())).toBe(
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
