import { readFileSync } from 'node:fs';
import { Agent, request } from 'node:https';
import * as path from 'node:path';
import { parse } from 'yaml';
import { eksToken } from '../../core/aws/eks-token';
import { rolloutStatus, type RolloutStatus } from '../../core/rollout';
import type { Deployment } from '../../core/types';
import { REPO_ROOT } from './app';
import {
  POD_TEMPLATE_HASH_LABEL,
  startKubeApiServer,
  type KubeApiServer,
  type KubeContainerStatus,
  type KubeDeployment,
  type KubePod,
  type PodFate,
} from './kube-apiserver';
import { goDuration } from './kube-controller';

// The Deployment controller, ReplicaSet controller and kubelet of the in-test API server, on its
// fake clock: rollouts judged by kubectl's rules (core/rollout.ts) at every simulated second, and
// pod states with the kubelet's reasons, messages and back-off timings.

const NS = 'dockercoins';
const START = new Date('2026-12-06T12:00:00Z');
const REPO = '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher';
const image = (n: number): string =>
  `${REPO}:${String(n).repeat(12)}@sha256:${String(n).repeat(64)}`;
const V1 = image(1);

const TOKEN = 'sim-token';

let kube: KubeApiServer;
let agent: Agent;
beforeAll(async () => {
  kube = await startKubeApiServer({
    clusterName: 'dockercoins',
    staticTokens: { [TOKEN]: 'deployer' },
    startTime: START,
  });
  agent = new Agent({ keepAlive: true, ca: kube.caPem });
});
afterAll(async () => {
  agent.destroy();
  await kube.stop();
});

let fateSerial = 0;
/** A Deployment of its own for each test (fates are per image: each test uses fresh images). */
function deploy(
  name: string,
  spec: Partial<KubeDeployment['spec']> = {},
  first = V1,
): KubeDeployment {
  kube.deleteDeployment(NS, name);
  kube.putDeployment({
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name, namespace: NS },
    spec: {
      replicas: 3,
      selector: { matchLabels: { app: name } },
      template: {
        metadata: { labels: { app: name } },
        spec: { containers: [{ name: 'hasher', image: first }] },
      },
      ...spec,
    },
  });
  kube.completeRollout(NS, name);
  return kube.deployment(NS, name)!;
}

/** A fresh image with `fate`, so that tests never share a fate. */
function imageWith(fate: PodFate | undefined): string {
  fateSerial += 1;
  const made = `${REPO}:fate-${fateSerial}@sha256:${fateSerial.toString(16).padStart(64, 'a')}`;
  if (fate !== undefined) kube.setFate(made, fate);
  return made;
}

const setImage = (name: string, to: string): KubeDeployment =>
  kube.patchDeployment(NS, name, {
    spec: { template: { spec: { containers: [{ name: 'hasher', image: to }] } } },
  });

const judge = (name: string): RolloutStatus =>
  rolloutStatus(kube.deployment(NS, name) as unknown as Deployment);

const newPods = (name: string): KubePod[] => kube.podsOf(NS, name);
const only = (pods: KubePod[]): KubeContainerStatus => {
  expect(pods).toHaveLength(1);
  return pods[0]!.status.containerStatuses[0]!;
};
const progressing = (name: string) =>
  kube.deployment(NS, name)!.status?.conditions?.find((c) => c.type === 'Progressing');

describe('the fake clock', () => {
  test('Given startTime, when ticked, then now() moves by whole simulated seconds and nothing else moves it', async () => {
    const before = kube.now().getTime();
    await new Promise((resolve) => setTimeout(resolve, 20));
    expect(kube.now().getTime()).toBe(before);
    kube.tick(5);
    expect(kube.now().getTime()).toBe(before + 5000);
    kube.tick();
    expect(kube.now().getTime()).toBe(before + 6000);
  });

  test.each([[-1], [0.5], [Number.NaN]])(
    'Given tick(%p), then an error naming the value',
    (seconds) => {
      expect(() => kube.tick(seconds)).toThrow(/tick: seconds must be a whole number/);
    },
  );

  test('Given a condition that never holds, when tickUntil, then it names the condition and the limit', () => {
    expect(() => kube.tickUntil(() => false, 3, 'the moon')).toThrow(
      'tickUntil: the moon did not happen in 3 simulated seconds',
    );
  });
});

describe('rollouts judged by kubectl rollout status rules at every simulated second', () => {
  test('Given the default fate (Ready one tick after creation), when the image changes, then observed → updating → old pending termination → ready, never ready early', () => {
    deploy('roll');
    const next = imageWith(undefined);
    const patched = setImage('roll', next);
    const seen: RolloutStatus['state'][] = [];
    const messages = new Set<string>();
    kube.tickUntil(
      () => {
        const status = judge('roll');
        seen.push(status.state);
        messages.add(status.message.replace(/\d+/g, 'N'));
        if (status.state === 'ready') {
          // kubectl's "ready" only once every pod runs the new template and is Ready.
          const pods = kube.pods(NS, 'app=roll');
          expect(pods.every((p) => p.spec.containers[0]!.image === next)).toBe(true);
          expect(
            pods.every((p) =>
              p.status.conditions.some((c) => c.type === 'Ready' && c.status === 'True'),
            ),
          ).toBe(true);
        }
        return status.state === 'ready';
      },
      60,
      'the rollout',
    );
    expect(seen[0]).toBe('progressing');
    expect(seen.filter((s) => s === 'failed')).toEqual([]);
    expect([...messages]).toEqual(
      expect.arrayContaining(['Waiting for deployment spec update to be observed...']),
    );
    const live = kube.deployment(NS, 'roll')!;
    expect(live.status?.observedGeneration).toBe(patched.metadata.generation);
    expect(live.status).toMatchObject({
      replicas: 3,
      updatedReplicas: 3,
      readyReplicas: 3,
      availableReplicas: 3,
    });
    expect(progressing('roll')).toMatchObject({
      status: 'True',
      reason: 'NewReplicaSetAvailable',
    });
    const sets = kube.replicaSetsOf(NS, 'roll');
    // the old pods: deleted by their ReplicaSet, their containers stopped by the kubelet
    const oldPods = kube
      .events(NS)
      .filter(
        (e) => e.reason === 'SuccessfulDelete' && e.involvedObject.name === sets[0]!.metadata.name,
      )
      .map((e) => e.message.replace('Deleted pod: ', ''));
    expect(oldPods).toHaveLength(3);
    const killed = kube.events(NS).filter((e) => e.reason === 'Killing');
    for (const pod of oldPods) {
      expect(killed.find((e) => e.involvedObject.name === pod)?.message).toBe(
        'Stopping container hasher',
      );
    }
    expect(sets.map((rs) => [rs.spec.replicas, rs.status?.replicas])).toEqual([
      [0, 0],
      [3, 3],
    ]);
  });

  test.each<[string, PodFate]>([
    ['image pull failure', { kind: 'image-pull-failure' }],
    ['crash loop', { kind: 'crash-loop' }],
    ['never ready', { kind: 'never-ready' }],
    ['config error', { kind: 'config-error', reason: 'CreateContainerConfigError' }],
  ])(
    'Given a %s, when the image changes, then progressing until the progress deadline, failed after it (ProgressDeadlineExceeded), the old pods still serving',
    (_name, fate) => {
      deploy('stuck', { progressDeadlineSeconds: 120 });
      setImage('stuck', imageWith(fate));
      kube.tick(1);
      const startedAt = Date.parse(progressing('stuck')!.lastUpdateTime as string);
      // No progress after the first surge pod: the deadline counts from the last progress.
      const waited = kube.tickUntil(() => judge('stuck').state !== 'progressing', 200, 'a verdict');
      const failedAt = kube.now().getTime();
      expect(judge('stuck')).toMatchObject({
        state: 'failed',
        message: 'deployment "stuck" exceeded its progress deadline',
      });
      expect((failedAt - startedAt) / 1000).toBe(121);
      expect(waited).toBeGreaterThan(100);
      const newRS = kube.replicaSetsOf(NS, 'stuck').at(-1)!;
      expect(progressing('stuck')).toMatchObject({
        status: 'False',
        reason: 'ProgressDeadlineExceeded',
        message: `ReplicaSet "${newRS.metadata.name}" has timed out progressing.`,
      });
      // maxUnavailable 25% of 3 rounds down to 0: the three old pods keep serving.
      expect(kube.deployment(NS, 'stuck')!.status).toMatchObject({
        replicas: 4,
        updatedReplicas: 1,
        availableReplicas: 3,
      });
      expect(
        kube.deployment(NS, 'stuck')!.status?.conditions?.find((c) => c.type === 'Available'),
      ).toMatchObject({ status: 'True', reason: 'MinimumReplicasAvailable' });
    },
  );
});

describe('pod states as the kubelet reports them', () => {
  test('Given an image that cannot be pulled, then ErrImagePull at each attempt (1, 11, 31, 71 s) with the runtime error, ImagePullBackOff between, the pod Pending', () => {
    deploy('pull', { replicas: 1 });
    const bad = imageWith({ kind: 'image-pull-failure' });
    setImage('pull', bad);
    const reasons: string[] = [];
    for (let second = 0; second < 75; second += 1) {
      kube.tick(1);
      const status = only(newPods('pull'));
      reasons.push(status.state.waiting?.reason ?? Object.keys(status.state)[0]!);
    }
    const attempts = reasons.flatMap((r, i) => (r === 'ErrImagePull' ? [i] : []));
    expect(attempts).toEqual([1, 11, 31, 71]);
    expect(reasons[0]).toBe('ContainerCreating');
    expect(new Set(reasons.slice(1))).toEqual(new Set(['ErrImagePull', 'ImagePullBackOff']));

    const pod = newPods('pull')[0]!;
    expect(pod.status.phase).toBe('Pending');
    expect(pod.status.containerStatuses[0]).toEqual({
      name: 'hasher',
      image: bad,
      imageID: '',
      lastState: {},
      ready: false,
      restartCount: 0,
      started: false,
      state: {
        waiting: {
          reason: 'ImagePullBackOff',
          message: `Back-off pulling image "${bad}": ErrImagePull: rpc error: code = NotFound desc = failed to pull and unpack image "${bad}": failed to resolve reference "${bad}": ${bad}: not found`,
        },
      },
    });
    kube.tick(151 - 74); // the pod is 74 s old: to the attempt at 151 s
    const err = only(newPods('pull')).state.waiting!;
    expect(err.reason).toBe('ErrImagePull');
    expect(err.message).toBe(
      `rpc error: code = NotFound desc = failed to pull and unpack image "${bad}": failed to resolve reference "${bad}": ${bad}: not found`,
    );
  });

  test('Given a crash loop, then terminated (Error, the exit code), restarted at once, then CrashLoopBackOff 10s, 20s, 40s with restartCount and lastState', () => {
    deploy('crash', { replicas: 1 });
    setImage('crash', imageWith({ kind: 'crash-loop', exitCode: 2 }));
    const timeline: string[] = [];
    for (let second = 0; second < 40; second += 1) {
      kube.tick(1);
      const s = only(newPods('crash'));
      const state = s.state.waiting?.reason ?? Object.keys(s.state)[0]!;
      const last = timeline.at(-1);
      const entry = `${state}#${s.restartCount}`;
      if (last?.split('@')[0] !== entry) timeline.push(`${entry}@${second}`);
    }
    expect(timeline).toEqual([
      'ContainerCreating#0@0',
      'terminated#0@1',
      'terminated#1@2',
      'CrashLoopBackOff#1@3',
      'terminated#2@12',
      'CrashLoopBackOff#2@13',
      'terminated#3@32',
      'CrashLoopBackOff#3@33',
    ]);
    const pod = newPods('crash')[0]!;
    const status = pod.status.containerStatuses[0]!;
    expect(pod.status.phase).toBe('Running');
    expect(status.state.waiting).toEqual({
      reason: 'CrashLoopBackOff',
      message: `back-off 40s restarting failed container=hasher pod=${pod.metadata.name}_${NS}(${pod.metadata.uid})`,
    });
    expect(status.lastState.terminated).toMatchObject({ exitCode: 2, reason: 'Error' });
    expect(status).toMatchObject({ ready: false, started: false, restartCount: 3 });
    expect(pod.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      reason: 'ContainersNotReady',
      message: 'containers with unready status: [hasher]',
    });
  });
});

// ---- over HTTP, as the verifier reads ----

function get<T>(path: string): Promise<{ status: number; body: T }> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${kube.url}${path}`,
      { agent, headers: { authorization: `Bearer ${TOKEN}`, accept: 'application/json' } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            body: JSON.parse(Buffer.concat(chunks).toString('utf8')) as T,
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('LIST pods, replicasets and events, under RBAC', () => {
  afterEach(() => {
    kube.authorize = undefined;
  });

  test('Given a rollout stuck pulling, when pods are listed by the new ReplicaSet pod-template-hash, then only its pods, as a PodList without kinds on the items', async () => {
    deploy('listed', { replicas: 2 });
    setImage('listed', imageWith({ kind: 'image-pull-failure' }));
    kube.tick(3);
    const newRS = kube.replicaSetsOf(NS, 'listed').at(-1)!;
    const hash = newRS.metadata.labels![POD_TEMPLATE_HASH_LABEL]!;
    const selector = encodeURIComponent(`app=listed,${POD_TEMPLATE_HASH_LABEL}=${hash}`);
    const reply = await get<{ kind: string; apiVersion: string; items: KubePod[] }>(
      `/api/v1/namespaces/${NS}/pods?labelSelector=${selector}`,
    );
    expect(reply.status).toBe(200);
    expect(reply.body.kind).toBe('PodList');
    expect(reply.body.apiVersion).toBe('v1');
    expect(reply.body.items).toHaveLength(1);
    expect(reply.body.items[0]).not.toHaveProperty('kind');
    expect(reply.body.items[0]!.metadata.ownerReferences[0]).toMatchObject({
      kind: 'ReplicaSet',
      name: newRS.metadata.name,
      uid: newRS.metadata.uid,
      controller: true,
    });
    const all = await get<{ items: KubePod[] }>(
      `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dlisted`,
    );
    expect(all.body.items).toHaveLength(3);

    const rsList = await get<{ kind: string; items: KubeDeployment[] }>(
      `/apis/apps/v1/namespaces/${NS}/replicasets?labelSelector=app%3Dlisted`,
    );
    expect(rsList.body.kind).toBe('ReplicaSetList');
    expect(rsList.body.items.map((rs) => rs.status?.replicas)).toEqual(
      kube
        .replicaSetsOf(NS, 'listed')
        .sort((a, b) => (a.metadata.name < b.metadata.name ? -1 : 1))
        .map((rs) => rs.status?.replicas),
    );

    const podName = reply.body.items[0]!.metadata.name;
    const events = await get<{
      kind: string;
      items: { reason: string; message: string; type: string }[];
    }>(
      `/api/v1/namespaces/${NS}/events?fieldSelector=${encodeURIComponent(`involvedObject.name=${podName},type=Warning`)}`,
    );
    expect(events.body.kind).toBe('EventList');
    expect(events.body.items.map((e) => `${e.reason}: ${e.message.split(':')[0]}`)).toEqual(
      expect.arrayContaining(['Failed: Error', 'Failed: Failed to pull image "' + REPO]),
    );
    expect(events.body.items.every((e) => e.type === 'Warning')).toBe(true);
  });

  test('Given a Role without list on pods, when pods are listed, then 403 in the core group, as the real server words it', async () => {
    kube.authorize = (r) => !(r.resource === 'pods' && r.verb === 'list');
    const reply = await get<{ message: string; details: unknown }>(
      `/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dlisted`,
    );
    expect(reply.status).toBe(403);
    expect(reply.body.message).toBe(
      `pods is forbidden: User "deployer" cannot list resource "pods" in API group "" in the namespace "${NS}"`,
    );
    expect(reply.body.details).toEqual({ kind: 'pods' });
  });

  test('Given the authorizer, when the verifier reads, then it is asked exactly about get deployments, list replicasets, list pods, list events', async () => {
    const asked: string[] = [];
    kube.authorize = (r) => {
      asked.push(
        `${r.verb} ${r.apiGroup === '' ? 'core' : r.apiGroup}/${r.resource} ${r.name ?? '*'}`,
      );
      return true;
    };
    await get(`/apis/apps/v1/namespaces/${NS}/deployments/listed`);
    await get(`/apis/apps/v1/namespaces/${NS}/replicasets?labelSelector=app%3Dlisted`);
    await get(`/api/v1/namespaces/${NS}/pods?labelSelector=app%3Dlisted`);
    await get(`/api/v1/namespaces/${NS}/events?fieldSelector=involvedObject.kind%3DPod`);
    expect(asked).toEqual([
      'get apps/deployments listed',
      'list apps/replicasets *',
      'list core/pods *',
      'list core/events *',
    ]);
  });

  test('Given a field the server cannot select by, then 400 with the real server words', async () => {
    const reply = await get<{ message: string }>(
      `/api/v1/namespaces/${NS}/pods?fieldSelector=spec.containers%3Dx`,
    );
    expect(reply.status).toBe(400);
    expect(reply.body.message).toBe('field label not supported: spec.containers');
  });

  test('Given a pod, when read by name, then it; an unknown one, then 404 in the core group', async () => {
    deploy('named', { replicas: 1 });
    const pod = kube.podsOf(NS, 'named')[0]!;
    const found = await get<KubePod>(`/api/v1/namespaces/${NS}/pods/${pod.metadata.name}`);
    expect(found.status).toBe(200);
    expect(found.body.metadata.uid).toBe(pod.metadata.uid);
    const missing = await get<{ message: string; details: unknown }>(
      `/api/v1/namespaces/${NS}/pods/nope`,
    );
    expect(missing.status).toBe(404);
    expect(missing.body.message).toBe('pods "nope" not found');
    expect(missing.body.details).toEqual({ name: 'nope', kind: 'pods' });
  });
});

describe('the controllers, rule by rule', () => {
  test('Given replicas 4 and the 25% defaults, when rolled, then never more than 5 pods nor fewer than 3 available, and the revision moves to the new ReplicaSet', () => {
    deploy('surge', { replicas: 4 });
    setImage('surge', imageWith({ kind: 'ready', afterTicks: 3 }));
    let most = 0;
    let fewest = Number.POSITIVE_INFINITY;
    kube.tickUntil(
      () => {
        const pods = kube.pods(NS, 'app=surge');
        most = Math.max(most, pods.length);
        fewest = Math.min(fewest, kube.deployment(NS, 'surge')!.status?.availableReplicas ?? 0);
        return judge('surge').state === 'ready';
      },
      120,
      'the rollout',
    );
    expect(most).toBe(5);
    expect(fewest).toBe(3);
    const sets = kube.replicaSetsOf(NS, 'surge');
    expect(
      sets.map((rs) => rs.metadata.annotations?.['deployment.kubernetes.io/revision']),
    ).toEqual(['1', '2']);
    expect(sets.map((rs) => rs.spec.replicas)).toEqual([0, 4]);
  });

  test('Given the Recreate strategy, when rolled, then the old pods are gone before any new pod exists', () => {
    deploy('recreate', { replicas: 2, strategy: { type: 'Recreate' } });
    const next = imageWith(undefined);
    setImage('recreate', next);
    let mixed = false;
    kube.tickUntil(
      () => {
        const images = new Set(
          kube.pods(NS, 'app=recreate').map((p) => p.spec.containers[0]!.image),
        );
        if (images.size > 1) mixed = true;
        return judge('recreate').state === 'ready';
      },
      30,
      'the rollout',
    );
    expect(mixed).toBe(false);
    expect(kube.pods(NS, 'app=recreate').map((p) => p.spec.containers[0]!.image)).toEqual([
      next,
      next,
    ]);
  });

  test('Given minReadySeconds 10, when a pod is Ready, then it counts as available only 10 s later', () => {
    deploy('minready', { replicas: 1, minReadySeconds: 10 });
    setImage('minready', imageWith({ kind: 'ready', afterTicks: 1 }));
    kube.tickUntil(
      () => newPods('minready')[0]?.status.containerStatuses[0]?.ready === true,
      10,
      'Ready',
    );
    const readyAt = kube.now().getTime();
    const newRS = (): KubeDeployment => kube.replicaSetsOf(NS, 'minready').at(-1)!;
    expect(newRS().status?.readyReplicas).toBe(1);
    kube.tickUntil(() => newRS().status?.availableReplicas === 1, 30, 'available');
    expect((kube.now().getTime() - readyAt) / 1000).toBe(10);
    // then the old ReplicaSet scales down (maxUnavailable 0 of 1) and kubectl calls it done
    expect(judge('minready').state).toBe('progressing');
    kube.tick(1);
    expect(judge('minready').state).toBe('ready');
  });

  test('Given a failed rollout, when the image is patched back, then the old ReplicaSet is reused at a new revision, scaled up, the failing one scaled to 0 and its pods gone, Ready', () => {
    deploy('undo', { replicas: 2 });
    const bad = imageWith({ kind: 'image-pull-failure' });
    setImage('undo', bad);
    kube.tick(30);
    expect(judge('undo').state).toBe('progressing');
    const [good, failing] = kube.replicaSetsOf(NS, 'undo');
    setImage('undo', V1);
    kube.tickUntil(() => judge('undo').state === 'ready', 30, 'the rollback');
    const sets = kube.replicaSetsOf(NS, 'undo');
    expect(sets.map((rs) => rs.metadata.name)).toEqual([
      failing!.metadata.name,
      good!.metadata.name,
    ]);
    expect(
      sets.map((rs) => [
        rs.metadata.annotations?.['deployment.kubernetes.io/revision'],
        rs.spec.replicas,
      ]),
    ).toEqual([
      ['2', 0],
      ['3', 2],
    ]);
    expect(kube.pods(NS, 'app=undo').every((p) => p.spec.containers[0]!.image === V1)).toBe(true);
    expect(
      kube
        .events(NS)
        .filter((e) => e.involvedObject.name === 'undo')
        .map((e) => e.message),
    ).toEqual(
      expect.arrayContaining([`Scaled down replica set ${failing!.metadata.name} to 0 from 1`]),
    );
  });

  test('Given a paused Deployment, when its image changes, then nothing rolls, Progressing is Unknown DeploymentPaused and the deadline never fires; resumed, it rolls out', () => {
    deploy('paused', { replicas: 2, progressDeadlineSeconds: 30 });
    kube.patchDeployment(NS, 'paused', { spec: { paused: true } });
    const next = imageWith(undefined);
    setImage('paused', next);
    kube.tick(60);
    expect(judge('paused')).toMatchObject({ state: 'progressing', specPaused: true });
    expect(progressing('paused')).toMatchObject({
      status: 'Unknown',
      reason: 'DeploymentPaused',
      message: 'Deployment is paused',
    });
    expect(kube.pods(NS, 'app=paused').map((p) => p.spec.containers[0]!.image)).toEqual([V1, V1]);
    kube.patchDeployment(NS, 'paused', { spec: { paused: null } });
    kube.tickUntil(() => judge('paused').state === 'ready', 30, 'the rollout');
    expect(kube.pods(NS, 'app=paused').map((p) => p.spec.containers[0]!.image)).toEqual([
      next,
      next,
    ]);
  });

  test('Given completeRollout, when ticked, then the simulation agrees with it: same counts, same conditions', () => {
    deploy('settled', { replicas: 2 });
    const done = kube.deployment(NS, 'settled')!;
    kube.tick(5);
    const after = kube.deployment(NS, 'settled')!;
    expect(after.status).toEqual(done.status);
    expect(kube.podsOf(NS, 'settled')).toHaveLength(2);
  });

  test('Given no progress deadline (MaxInt32), when stuck, then never failed and no Progressing condition', () => {
    deploy('nodeadline', { replicas: 1, progressDeadlineSeconds: 2147483647 });
    setImage('nodeadline', imageWith({ kind: 'crash-loop' }));
    kube.tick(700);
    expect(judge('nodeadline').state).toBe('progressing');
    expect(progressing('nodeadline')).toBeUndefined();
  });
});

describe('fates', () => {
  test('Given fates for the image, the Deployment, and the Deployment and image, then the most specific wins, and forgetting one falls back', () => {
    deploy('fated', { replicas: 1 });
    const next = imageWith({ kind: 'crash-loop' });
    kube.setFate({ namespace: NS, deployment: 'fated' }, { kind: 'never-ready' });
    kube.setFate(
      { namespace: NS, deployment: 'fated', image: next },
      { kind: 'config-error', reason: 'InvalidImageName' },
    );
    setImage('fated', next);
    const reason = (): string | undefined => {
      const s = only(newPods('fated'));
      return s.state.waiting?.reason ?? (s.state.running === undefined ? undefined : 'running');
    };
    kube.tick(3);
    expect(reason()).toBe('InvalidImageName');
    kube.setFate({ namespace: NS, deployment: 'fated', image: next }, undefined);
    kube.tick(3);
    expect(reason()).toBe('running');
    expect(only(newPods('fated')).ready).toBe(false);
    kube.setFate({ namespace: NS, deployment: 'fated' }, undefined);
    kube.tick(3);
    expect(only(newPods('fated')).restartCount).toBeGreaterThan(0);
  });

  test.each<[string, PodFate, string]>([
    ['ready', { kind: 'ready', afterTicks: -1 }, 'afterTicks must be a whole number'],
    ['crash-loop', { kind: 'crash-loop', exitCode: 0 }, 'exitCode must be 1 to 255'],
    [
      'config-error',
      { kind: 'config-error', reason: 'Nope' as 'CreateContainerError' },
      'reason must be',
    ],
    ['unknown', { kind: 'sleep' } as unknown as PodFate, 'kind must be'],
  ])('Given a bad %s fate, then setFate throws naming the value', (_kind, fate, why) => {
    expect(() => kube.setFate('x:1', fate)).toThrow(why);
    expect(() => kube.setFate('x:1', fate)).toThrow(JSON.stringify(fate));
  });

  test.each<['CreateContainerConfigError' | 'CreateContainerError' | 'InvalidImageName', RegExp]>([
    ['CreateContainerConfigError', /^configmap "cfg-config" not found$/],
    ['CreateContainerError', /^context deadline exceeded$/],
    [
      'InvalidImageName',
      /^Failed to apply default image tag ".*": couldn't parse image name ".*": invalid reference format$/,
    ],
  ])(
    'Given config-error %s, then the container waits with it, the pod Pending',
    (reason, message) => {
      deploy('cfg', { replicas: 1 });
      setImage('cfg', imageWith({ kind: 'config-error', reason }));
      kube.tick(4);
      const pod = newPods('cfg')[0]!;
      expect(pod.status.phase).toBe('Pending');
      expect(pod.status.containerStatuses[0]!.state.waiting?.reason).toBe(reason);
      expect(pod.status.containerStatuses[0]!.state.waiting?.message).toMatch(message);
    },
  );

  test('Given never-ready, then Running and started, never ready, and an Unhealthy event', () => {
    deploy('unready', { replicas: 1 });
    setImage('unready', imageWith({ kind: 'never-ready' }));
    kube.tick(30);
    const pod = newPods('unready')[0]!;
    expect(pod.status.phase).toBe('Running');
    expect(pod.status.containerStatuses[0]).toMatchObject({
      ready: false,
      started: true,
      restartCount: 0,
    });
    expect(pod.status.containerStatuses[0]!.state.running).toBeDefined();
    expect(
      kube
        .events(NS)
        .some((e) => e.involvedObject.name === pod.metadata.name && e.reason === 'Unhealthy'),
    ).toBe(true);
  });

  test('Given an image pull failure for 60 s, then its events are aggregated: one Failed ErrImagePull event counted per attempt', () => {
    deploy('counted', { replicas: 1 });
    setImage(
      'counted',
      imageWith({ kind: 'image-pull-failure', message: 'unauthorized: not allowed' }),
    );
    kube.tick(40);
    const pod = newPods('counted')[0]!;
    const mine = kube.events(NS).filter((e) => e.involvedObject.name === pod.metadata.name);
    const errImagePull = mine.filter((e) => e.message === 'Error: ErrImagePull');
    expect(errImagePull).toHaveLength(1);
    expect(errImagePull[0]!.count).toBe(3); // attempts at 1, 11, 31 s
    expect(errImagePull[0]).toMatchObject({
      type: 'Warning',
      reason: 'Failed',
      source: { component: 'kubelet' },
      involvedObject: { kind: 'Pod', apiVersion: 'v1', fieldPath: 'spec.containers{hasher}' },
    });
    expect(mine.some((e) => e.message.endsWith(': unauthorized: not allowed'))).toBe(true);
  });
});

describe('kubectl rollout status over a whole simulated rollout', () => {
  test("Given 4 replicas, the 25% defaults and pods Ready 3 s after creation, when rolled, then each of kubectl's waiting sentences in its order, then done", () => {
    deploy('sentences', { replicas: 4 });
    setImage('sentences', imageWith({ kind: 'ready', afterTicks: 3 }));
    const said: string[] = [];
    const record = (): boolean => {
      const { message, state } = judge('sentences');
      if (said.at(-1) !== message) said.push(message);
      return state === 'ready';
    };
    kube.tickUntil(record, 60, 'the rollout');
    const waiting = 'Waiting for deployment "sentences" rollout to finish: ';
    expect(said).toEqual([
      'Waiting for deployment spec update to be observed...',
      `${waiting}1 out of 4 new replicas have been updated...`,
      `${waiting}2 out of 4 new replicas have been updated...`,
      `${waiting}3 out of 4 new replicas have been updated...`,
      `${waiting}1 old replicas are pending termination...`,
      `${waiting}3 of 4 updated replicas are available...`,
      'deployment "sentences" successfully rolled out',
    ]);
  });
});

describe('pods of a real manifest', () => {
  const FIXTURE = parse(
    readFileSync(
      path.join(REPO_ROOT, 'test', 'fixtures', 'kube', 'hasher-deployment.yaml'),
      'utf8',
    ),
  ) as KubeDeployment;

  test('Given the hasher fixture (init container, sidecar, resources) and a sidecar that never gets Ready, when rolled, then the pod shows both containers by name, the init container Completed, Burstable, not Ready, naming only the sidecar', () => {
    kube.putDeployment(FIXTURE);
    kube.completeRollout(NS, 'hasher');
    const sidecar = 'docker.io/fluent/fluent-bit:3.2';
    kube.setFate(sidecar, { kind: 'never-ready' });
    kube.patchDeployment(NS, 'hasher', {
      spec: { template: { spec: { containers: [{ name: 'log-shipper', image: sidecar }] } } },
    });
    kube.tick(5);
    const pod = newPods('hasher')[0]!;
    expect(pod.status.containerStatuses.map((c) => [c.name, c.ready])).toEqual([
      ['hasher', true],
      ['log-shipper', false],
    ]);
    expect(pod.status.initContainerStatuses).toHaveLength(1);
    expect(pod.status.initContainerStatuses![0]).toMatchObject({
      name: 'wait-for-redis',
      ready: true,
      state: { terminated: { exitCode: 0, reason: 'Completed' } },
    });
    expect(pod.status.qosClass).toBe('Burstable');
    expect(pod.status.conditions.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'False',
      message: 'containers with unready status: [log-shipper]',
    });
    expect(pod.metadata.labels).toEqual({
      ...FIXTURE.spec.template.metadata!.labels,
      [POD_TEMPLATE_HASH_LABEL]: kube.replicaSetsOf(NS, 'hasher').at(-1)!.metadata.labels![
        POD_TEMPLATE_HASH_LABEL
      ],
    });
    expect(pod.metadata.annotations).toEqual(FIXTURE.spec.template.metadata!.annotations);
    expect(pod.spec.nodeName).toMatch(/compute\.internal$/);
    expect(pod.spec.imagePullSecrets).toEqual([{ name: 'ecr-pull' }]);
    kube.deleteDeployment(NS, 'hasher');
    expect(
      kube
        .pods(NS, `${POD_TEMPLATE_HASH_LABEL}`)
        .filter((p) => p.metadata.name.startsWith('hasher-')),
    ).toEqual([]);
  });
});

describe('tokens and the fake clock', () => {
  const CREDENTIALS = {
    accessKeyId: 'ASIASIMCLOCK0000001',
    secretAccessKey: 'sim/clock+secret/0001',
    sessionToken: 'FwoGZXIvYXdzSimClock//Token==',
  };

  test('Given a server whose token clock is its fake clock, when 600 s are ticked, then a token signed at the fake time is accepted and one signed before the clock started is refused', async () => {
    let shared: KubeApiServer | undefined = undefined;
    const server = await startKubeApiServer({
      clusterName: 'dockercoins',
      credentials: CREDENTIALS,
      startTime: START,
      now: () => shared?.now() ?? START,
    });
    shared = server;
    const tokenAgent = new Agent({ keepAlive: false, ca: server.caPem });
    try {
      server.tick(600);
      const read = async (signedAt: Date): Promise<number> => {
        const { token } = await eksToken({
          clusterName: 'dockercoins',
          region: 'eu-west-1',
          credentials: CREDENTIALS,
          now: signedAt,
        });
        return new Promise((resolve, reject) => {
          const req = request(
            `${server.url}/api/v1/namespaces/${NS}/pods`,
            { agent: tokenAgent, headers: { authorization: `Bearer ${token}` } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.on('error', reject);
          req.end();
        });
      };
      expect(await read(server.now())).toBe(200);
      expect(await read(new Date(START.getTime() - 3600_000))).toBe(401);
    } finally {
      tokenAgent.destroy();
      await server.stop();
    }
  });
});

describe('rollouts interrupted', () => {
  test('Given a rollout stuck pulling, when a newer image is patched over it, then the stuck ReplicaSet is scaled to 0 (unhealthy first) and the newest rolls out', () => {
    deploy('superseded', { replicas: 2 });
    setImage('superseded', imageWith({ kind: 'image-pull-failure' }));
    kube.tick(20);
    const newest = imageWith(undefined);
    const patched = setImage('superseded', newest);
    kube.tickUntil(() => judge('superseded').state === 'ready', 30, 'the newest rollout');
    expect(kube.deployment(NS, 'superseded')!.status?.observedGeneration).toBe(
      patched.metadata.generation,
    );
    expect(kube.replicaSetsOf(NS, 'superseded').map((rs) => rs.spec.replicas)).toEqual([0, 0, 2]);
    expect(kube.pods(NS, 'app=superseded').map((p) => p.spec.containers[0]!.image)).toEqual([
      newest,
      newest,
    ]);
  });

  test('Given a rollout past its progress deadline, when the image is patched back, then never failed again (the first sync sees progress), ready, and Progressing is True again', () => {
    deploy('late', { replicas: 2, progressDeadlineSeconds: 30 });
    setImage('late', imageWith({ kind: 'crash-loop' }));
    kube.tickUntil(() => judge('late').state === 'failed', 60, 'the deadline');
    setImage('late', V1);
    const states: string[] = [];
    kube.tickUntil(
      () => {
        states.push(judge('late').state);
        return states.at(-1) === 'ready';
      },
      10,
      'the rollback',
    );
    // The generation first (not observed yet), then the controller's first sync sees progress.
    expect(states[0]).toBe('progressing');
    expect(states).not.toContain('failed');
    expect(progressing('late')).toMatchObject({ status: 'True', reason: 'NewReplicaSetAvailable' });
  });

  test('Given a Deployment scaled to 0, when ticked, then no pods and kubectl says done', () => {
    deploy('zero', { replicas: 2 });
    kube.patchDeployment(NS, 'zero', { spec: { replicas: 0 } });
    kube.tickUntil(() => judge('zero').state === 'ready', 10, 'scaled down');
    expect(kube.pods(NS, 'app=zero')).toEqual([]);
    expect(kube.deployment(NS, 'zero')!.status).not.toHaveProperty('replicas');
  });
});

describe('every scenario the simulation produces, judged: kubectl says what the scenario implies', () => {
  const fates: [string, PodFate | undefined, 'ready' | 'failed'][] = [
    ['the default fate', undefined, 'ready'],
    ['Ready after 7 s', { kind: 'ready', afterTicks: 7 }, 'ready'],
    ['image pull failure', { kind: 'image-pull-failure' }, 'failed'],
    ['crash loop', { kind: 'crash-loop', exitCode: 137 }, 'failed'],
    ['never ready', { kind: 'never-ready' }, 'failed'],
    ['CreateContainerError', { kind: 'config-error', reason: 'CreateContainerError' }, 'failed'],
  ];
  const shapes: [string, Partial<KubeDeployment['spec']>][] = [
    ['1 replica', { replicas: 1 }],
    ['3 replicas', { replicas: 3 }],
    [
      '4 replicas, maxSurge 0',
      {
        replicas: 4,
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } },
      },
    ],
    ['2 replicas, Recreate', { replicas: 2, strategy: { type: 'Recreate' } }],
  ];
  const cases = fates.flatMap(([fateName, fate, outcome]) =>
    shapes.map(([shapeName, spec]) => [fateName, shapeName, fate, spec, outcome] as const),
  );

  test.each(cases)(
    'Given %s with %s, when rolled with a 60 s progress deadline, then kubectl is ready only once every pod runs the new image Ready, or failed only at the deadline',
    (_fateName, _shapeName, fate, spec, outcome) => {
      const name = 'scenario';
      deploy(name, { ...spec, progressDeadlineSeconds: 60 });
      const next = imageWith(fate);
      const patched = setImage(name, next);
      const replicas = spec.replicas ?? 1;
      let verdict: RolloutStatus | undefined;
      let lastProgress = Number.NaN;
      for (let second = 0; second <= 200 && verdict === undefined; second += 1) {
        const status = judge(name);
        const live = kube.deployment(NS, name)!;
        if (status.state === 'ready') {
          verdict = status;
          const pods = kube.pods(NS, `app=${name}`);
          expect(live.status?.observedGeneration).toBe(patched.metadata.generation);
          expect(pods).toHaveLength(replicas);
          for (const pod of pods) {
            expect(pod.spec.containers[0]!.image).toBe(next);
            expect(pod.status.conditions.find((c) => c.type === 'Ready')?.status).toBe('True');
          }
        } else if (status.state === 'failed') {
          verdict = status;
          expect(progressing(name)!.reason).toBe('ProgressDeadlineExceeded');
          // the first second with no progress for more than the 60 s deadline
          expect((kube.now().getTime() - lastProgress) / 1000).toBe(61);
        } else {
          lastProgress = Date.parse(progressing(name)!.lastUpdateTime as string);
          kube.tick(1);
        }
      }
      expect(verdict?.state).toBe(outcome);
      kube.deleteDeployment(NS, name);
    },
  );
});

describe('back-off durations as the kubelet prints them', () => {
  test.each([
    [10, '10s'],
    [80, '1m20s'],
    [160, '2m40s'],
    [300, '5m0s'],
    [3725, '1h2m5s'],
  ])('Given %p s, then Go prints %p', (seconds, text) => {
    expect(goDuration(seconds)).toBe(text);
  });

  test('Given a crash loop for 330 s, then the back-off has doubled to its 5 minute cap and restartCount is 6', () => {
    deploy('capped', { replicas: 1 });
    setImage('capped', imageWith({ kind: 'crash-loop' }));
    kube.tick(1 + 330); // the pod is created in the first tick
    const status = only(newPods('capped'));
    expect(status.restartCount).toBe(6); // runs at 1, 2, 12, 32, 72, 152, 312 s
    expect(status.state.waiting?.message).toMatch(
      /^back-off 5m0s restarting failed container=hasher /,
    );
  });
});
