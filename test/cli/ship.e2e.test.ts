import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { ociImageVerifier, createOciImageSource } from '../../cli/registries';
import { kubeconfigConnector, readKubeconfig, resolveContext } from '../../cli/kubeconfig';
import { ANNOTATIONS, type DeployerSettings } from '../../lib/deployer-contract';
import { applyBuild } from '../../core/apply';
import { withRetries } from '../../core/retry';
import { parseEvent } from '../../core/parse';
import type { BuildRecord, TargetOutcome } from '../../core/types';
import { event, setVariables, settings as fixtureSettings } from '../fixtures/events/fixtures';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { find, K8S, kustomize, ofKind } from '../k8s/kubectl';
import { Buildah, fixtureContext } from '../support/buildah';
import {
  startKubeApiServer,
  type KubeApiServer,
  type KubeDeployment,
  type KubeRequestAttributes,
} from '../support/kube-apiserver';
import { startRegistry, type RunningRegistry } from '../support/registry';
import { runShipCaptured, type ShipRun } from '../support/ship';

// The end-to-end path, on-prem style, with real parts only: images built by buildah and
// pushed to the real distribution registry (htpasswd auth), the in-test Kubernetes API server
// holding the Deployments of k8s/overlays/in-cluster and enforcing the Role of k8s/rbac/ship,
// reached through a kubeconfig the test writes. `ship deploy` → `ship status` → `ship rollback`
// → `ship status` (previous image, paused) → a new build is skipped as paused (the deployer's
// own applyBuild) → `ship resume` → the next build deploys.

jest.setTimeout(120_000);

const COMMIT_1 = '6e0de7938dda5363e2192fe2a2ec39987a3573b0';
const COMMIT_2 = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const USER = { username: 'ci', password: 'pushes-images' };
const TOKEN = 'alice-static-token-0123456789';
const NAMESPACE = 'dockercoins';

let registry: RunningRegistry;
let kube: KubeApiServer;
let work: string;
let kubeconfigPath: string;
let buildah: Buildah;
const digests: Record<string, string> = {};

/** The Role of k8s/rbac/ship, enforced for alice (group dockercoins-ship) as RBAC would. */
function rbacFromRole(role: KubernetesObject): (request: KubeRequestAttributes) => boolean {
  const rules = role.rules as {
    apiGroups: string[];
    resources: string[];
    verbs: string[];
    resourceNames?: string[];
  }[];
  return (request) =>
    request.user === 'alice' &&
    request.namespace === NAMESPACE &&
    rules.some(
      (rule) =>
        rule.apiGroups.includes(request.apiGroup) &&
        rule.resources.includes(request.resource) &&
        rule.verbs.includes(request.verb) &&
        (rule.resourceNames === undefined ||
          (request.name !== undefined && rule.resourceNames.includes(request.name))),
    );
}

function buildAndPush(commit: string, buildNumber: number): string {
  const base = buildah.baseImage();
  const context = fixtureContext(base, `hasher at ${commit}`);
  const local = `localhost/hasher:${commit.slice(0, 12)}`;
  buildah.bud(context, local, ['--label', `org.opencontainers.image.revision=${commit}`]);
  const credentials = `${USER.username}:${USER.password}`;
  for (const tag of [commit.slice(0, 12), `main-${commit.slice(0, 7)}-${buildNumber}`]) {
    buildah.push(local, `${registry.host}/hasher:${tag}`, credentials);
  }
  const inspect = spawnSync(
    'skopeo',
    [
      'inspect',
      '--tls-verify=false',
      '--creds',
      credentials,
      `docker://${registry.host}/hasher:${commit.slice(0, 12)}`,
    ],
    { encoding: 'utf8', env: buildah.env },
  );
  if (inspect.status !== 0) throw new Error(inspect.stderr);
  return (JSON.parse(inspect.stdout) as { Digest: string }).Digest;
}

function ship(
  args: string[],
  hooks: { onSleep?: () => void; now?: () => Date } = {},
): Promise<ShipRun> {
  return runShipCaptured(
    [
      ...args,
      '--registry',
      registry.url,
      '--registry-user',
      USER.username,
      '--kubeconfig',
      kubeconfigPath,
    ],
    {
      env: { PATH: process.env.PATH, SHIP_REGISTRY_PASSWORD: USER.password },
      homeDir: work,
      sleep: () => {
        hooks.onSleep?.();
        return Promise.resolve();
      },
      pollIntervalMs: 10,
      ...(hooks.now === undefined ? {} : { now: hooks.now }),
    },
  );
}

/** ship on the simulation's clock: each poll interval is 2 simulated seconds of the cluster. */
const simulated = { onSleep: () => kube.tick(2), now: () => kube.now() };

function hasher(): KubeDeployment {
  return kube.deployment(NAMESPACE, 'hasher')!;
}

const imageOf = (deployment: KubeDeployment): string | undefined =>
  deployment.spec.template.spec.containers.find((c) => c.name === 'hasher')?.image;

/** A build of hasher, as the deployer parses it from a CodeBuild event, pushed to our registry. */
function buildRecord(commit: string, digest: string, buildNumber: number): BuildRecord {
  const parsed = parseEvent(
    setVariables(event(), {
      GIT_COMMIT: commit,
      IMAGE_TAG: commit.slice(0, 12),
      IMAGE_TAGS: `${commit.slice(0, 12)},main-${commit.slice(0, 7)}-${buildNumber}`,
      IMAGE_DIGEST: digest,
    }),
    fixtureSettings(),
  );
  if (parsed.kind !== 'build') throw new Error('the fixture event lost its variables');
  return {
    ...parsed.build,
    buildNumber,
    repositoryUri: `${registry.host}/hasher`,
    repository: 'hasher',
  };
}

async function deployerRun(build: BuildRecord): Promise<TargetOutcome> {
  const settings: DeployerSettings = {
    ...fixtureSettings(),
    environments: [
      {
        name: 'main',
        clusterName: 'dockercoins',
        region: undefined,
        namespace: NAMESPACE,
        branches: ['main'],
        releaseTags: false,
      },
    ],
  };
  const connector = kubeconfigConnector(
    resolveContext(readKubeconfig({ path: kubeconfigPath, env: {}, homeDir: work }), undefined),
    {
      env: {},
    },
  );
  try {
    const outcome = await applyBuild(build, settings, {
      images: ociImageVerifier(
        createOciImageSource({ url: registry.url, credentials: USER, env: {} }),
      ),
      clusters: { connect: () => connector.connect() },
      retry: (operation) => withRetries(operation, { attempts: 2, baseDelayMs: 1 }),
      now: () => new Date(),
      deployedBy: 'deployer',
    });
    if (outcome.kind !== 'applied') throw new Error(`the build was not applied: ${outcome.detail}`);
    return outcome.targets[0]!;
  } finally {
    connector.close();
  }
}

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'ship-e2e-'));
  registry = await startRegistry({ users: [USER] });
  buildah = new Buildah(path.join(work, 'buildah'));
  digests[COMMIT_1] = buildAndPush(COMMIT_1, 41);
  digests[COMMIT_2] = buildAndPush(COMMIT_2, 42);

  const role = find(kustomize(path.join(K8S, 'rbac/ship')), 'Role', 'dockercoins-ship');
  kube = await startKubeApiServer({
    clusterName: 'dockercoins',
    staticTokens: { [TOKEN]: 'alice' },
    authorize: rbacFromRole(role),
  });
  for (const deployment of ofKind(kustomize(path.join(K8S, 'overlays/in-cluster')), 'Deployment')) {
    kube.putDeployment(deployment);
    kube.completeRollout(NAMESPACE, deployment.metadata.name);
  }
  kubeconfigPath = path.join(work, 'kubeconfig');
  writeFileSync(
    kubeconfigPath,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [
        {
          name: 'onprem',
          cluster: { server: kube.url, 'certificate-authority-data': kube.caData },
        },
      ],
      users: [{ name: 'alice', user: { token: TOKEN } }],
      contexts: [
        { name: 'onprem', context: { cluster: 'onprem', user: 'alice', namespace: NAMESPACE } },
      ],
      'current-context': 'onprem',
    }),
  );
});

afterAll(async () => {
  await kube?.stop();
  await registry?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('ship, end to end: build → deploy → status → rollback → paused → resume', () => {
  test('Given two builds in the registry, when a person deploys, rolls back and resumes, then every step shows in the cluster and in ship status', async () => {
    // deploy the first build; the rollout finishes while ship follows it
    const first = await ship(['deploy', 'hasher', COMMIT_1.slice(0, 12)], {
      onSleep: () => kube.completeRollout(NAMESPACE, 'hasher'),
    });
    expect(first.stderr).toBe('');
    expect(first.status).toBe(0);
    expect(imageOf(hasher())).toBe(
      `${registry.host}/hasher:${COMMIT_1.slice(0, 12)}@${digests[COMMIT_1]}`,
    );
    expect(first.stdout).toContain('successfully rolled out');

    // the second build, then status
    const second = await ship(['deploy', 'hasher', COMMIT_2.slice(0, 12)], {
      onSleep: () => kube.completeRollout(NAMESPACE, 'hasher'),
    });
    expect(second.status).toBe(0);
    expect(second.stdout).toContain('verified Ready in');
    // ship recorded the verdict (annotations only); the API server bumps the generation for an
    // annotation change too (annotations are copied to ReplicaSets), and the controller observes it.
    kube.completeRollout(NAMESPACE, 'hasher');
    const status = await ship(['status', '--json']);
    expect(status.status).toBe(0);
    const rows = JSON.parse(status.stdout) as {
      service: string;
      running: { tag: string; digest: string; commit: string; buildNumber: number } | null;
      rollout: { state: string } | null;
      newest: { tag: string } | null;
      paused: boolean;
      drift: boolean;
    }[];
    const row = rows.find((r) => r.service === 'hasher')!;
    expect(row).toMatchObject({
      running: {
        tag: COMMIT_2.slice(0, 12),
        digest: digests[COMMIT_2],
        commit: COMMIT_2,
        buildNumber: 42,
      },
      rollout: { state: 'ready' },
      newest: { tag: `main-${COMMIT_2.slice(0, 7)}-42` },
      paused: false,
      drift: false,
    });

    // roll back: the previous image, from the ReplicaSet history, paused in the same patch
    const rollback = await ship(['rollback', 'hasher'], {
      onSleep: () => kube.completeRollout(NAMESPACE, 'hasher'),
    });
    expect(rollback.stderr).toBe('');
    expect(rollback.status).toBe(0);
    expect(imageOf(hasher())).toBe(
      `${registry.host}/hasher:${COMMIT_1.slice(0, 12)}@${digests[COMMIT_1]}`,
    );
    expect(hasher().metadata.annotations?.[ANNOTATIONS.paused]).toBe('true');

    const after = JSON.parse((await ship(['status', '--json'])).stdout) as typeof rows;
    expect(after.find((r) => r.service === 'hasher')).toMatchObject({
      running: { tag: COMMIT_1.slice(0, 12), commit: COMMIT_1, buildNumber: 41 },
      paused: true,
      drift: true,
      newest: { tag: `main-${COMMIT_2.slice(0, 7)}-42` },
    });
    const table = (await ship(['status', '--env', 'main'])).stdout;
    expect(table).toMatch(/hasher .* paused; drift: newest is main-9f8e7d6-42/);

    // a new build of main arrives: the deployer skips it, paused
    const skipped = await deployerRun(buildRecord(COMMIT_2, digests[COMMIT_2]!, 43));
    expect(skipped).toMatchObject({ status: 'skipped', reason: 'paused' });
    expect(imageOf(hasher())).toContain(digests[COMMIT_1]);

    // resume: the next build deploys again
    const resume = await ship(['resume', 'hasher']);
    expect(resume.status).toBe(0);
    expect(hasher().metadata.annotations?.[ANNOTATIONS.paused]).toBeUndefined();
    const deployed = await deployerRun(buildRecord(COMMIT_2, digests[COMMIT_2]!, 44));
    expect(deployed).toMatchObject({ status: 'deployed' });
    expect(imageOf(hasher())).toBe(
      `${registry.host}/hasher:${COMMIT_2.slice(0, 12)}@${digests[COMMIT_2]}`,
    );

    // and the history tells the whole story
    const history = await ship(['history', 'hasher']);
    expect(history.status).toBe(0);
    expect(history.stdout).toContain(
      `hasher ${COMMIT_1.slice(0, 12)} (commit 6e0de79, build DockerCoins-hasher#41) by ship`,
    );
  });
});

describe('ship, end to end: a deploy that fails verification is rolled back', () => {
  const pinned = (commit: string): string =>
    `${registry.host}/hasher:${commit.slice(0, 12)}@${digests[commit]}`;

  test('Given an image whose pods cannot pull it, when ship deploys it, then ship says FAILED, rolls back to the verified image, verifies that, exits 1, and status shows it', async () => {
    // a verified starting point: build 41, verified Ready by ship on the simulated cluster
    const good = await ship(
      ['deploy', 'hasher', COMMIT_1.slice(0, 12), '--allow-older'],
      simulated,
    );
    expect(good.stderr).toBe('');
    expect(good.status).toBe(0);
    expect(good.stdout).toMatch(
      /verified Ready in \d+ s \(deployment "hasher" successfully rolled out\)/,
    );
    expect(hasher().metadata.annotations?.[ANNOTATIONS.verifiedImage]).toBe(pinned(COMMIT_1));

    // build 42's image cannot be pulled by the nodes
    kube.setFate(pinned(COMMIT_2), { kind: 'image-pull-failure' });
    const bad = await ship(['deploy', 'hasher', COMMIT_2.slice(0, 12)], simulated);
    expect(bad.status).toBe(1);
    expect(bad.stdout).toMatch(
      /FAILED verification: pod hasher-[a-z0-9]+-[a-z0-9]+ (ErrImagePull|ImagePullBackOff): /,
    );
    expect(bad.stdout).toMatch(/rolled back to 6e0de7938dda \(.*\): verified Ready in \d+ s/);
    expect(imageOf(hasher())).toBe(pinned(COMMIT_1));
    const annotations = hasher().metadata.annotations ?? {};
    expect(annotations[ANNOTATIONS.rolledBackFrom]).toBe(pinned(COMMIT_2));
    expect(annotations[ANNOTATIONS.deployedBy]).toBe('ship');
    expect(
      (JSON.parse(annotations[ANNOTATIONS.rejected]!) as { digest: string }[]).map((e) => e.digest),
    ).toEqual([digests[COMMIT_2]]);

    // the deployer never deploys the rejected digest again, even as a newer build number
    kube.tick(2);
    const retried = await deployerRun(buildRecord(COMMIT_2, digests[COMMIT_2]!, 45));
    expect(retried).toMatchObject({ status: 'skipped', reason: 'digest-rejected' });

    const status = await ship(['status', '--env', 'main'], simulated);
    expect(status.stdout).toMatch(/hasher +6e0de7938dda .* rolled back /);
    expect(status.stdout).toContain(`main/hasher: rejected ${digests[COMMIT_2]!.slice(0, 19)}`);

    // --no-rollback: a person deploys the rejected digest on purpose and keeps it running
    const kept = await ship(
      ['deploy', 'hasher', COMMIT_2.slice(0, 12), '--no-rollback'],
      simulated,
    );
    expect(kept.status).toBe(1);
    expect(kept.stdout).toContain('not rolled back (--no-rollback)');
    expect(imageOf(hasher())).toBe(pinned(COMMIT_2));
    kube.setFate(pinned(COMMIT_2), undefined);
  });
});
