import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { ANNOTATIONS } from '../../lib/deployer-contract';
import { K8S, ofKind, parseObjects } from '../k8s/kubectl';
import { Buildah, fixtureContext } from '../support/buildah';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';
import { startRegistry, type RunningRegistry } from '../support/registry';
import { runShipCaptured, type ShipRun } from '../support/ship';

// Issue 18, items 2 to 7: the traps a new user meets with `ship`, each against real parts: images
// built by buildah and pushed to the real distribution registry (htpasswd auth), DockerCoins
// installed with k8s/render.sh into the in-test API server, reached through a kubeconfig the test
// writes. `--registry` points at the registry's own (random) port, as a port-forward would, while
// the manifests name the address the nodes pull from, 127.0.0.1:30500.

jest.setTimeout(180_000);

const COMMIT_1 = '6e0de7938dda5363e2192fe2a2ec39987a3573b0';
const COMMIT_2 = '9f8e7d6c5b4a39281706f5e4d3c2b1a098765432';
const TAG_1 = COMMIT_1.slice(0, 12);
const TAG_2 = COMMIT_2.slice(0, 12);
const PR_TAG = `pr-7-${COMMIT_2.slice(0, 7)}`;
const USER = { username: 'ci', password: 'pushes-images' };
const TOKEN = 'alice-static-token-0123456789';
const NAMESPACE = 'dockercoins';
/** The address the in-cluster manifests name: what every node pulls from. */
const NODE_REGISTRY = '127.0.0.1:30500';

let registry: RunningRegistry;
let kube: KubeApiServer;
let work: string;
let kubeconfigPath: string;
let buildah: Buildah;
const digests: Record<string, string> = {};

function digestOf(reference: string): string {
  const inspect = spawnSync(
    'skopeo',
    [
      'inspect',
      '--tls-verify=false',
      '--creds',
      `${USER.username}:${USER.password}`,
      `docker://${reference}`,
    ],
    { encoding: 'utf8', env: buildah.env },
  );
  if (inspect.status !== 0) throw new Error(inspect.stderr);
  return (JSON.parse(inspect.stdout) as { Digest: string }).Digest;
}

/** Builds hasher at `commit` and pushes it as `repository:<tag>` for each tag. */
function buildAndPush(commit: string, repository: string, tags: readonly string[]): string {
  const context = fixtureContext(buildah.baseImage(), `${repository} at ${commit}`);
  const local = `localhost/${repository}:${commit.slice(0, 12)}`;
  buildah.bud(context, local, ['--label', `org.opencontainers.image.revision=${commit}`]);
  for (const tag of tags) {
    buildah.push(
      local,
      `${registry.host}/${repository}:${tag}`,
      `${USER.username}:${USER.password}`,
    );
  }
  return digestOf(`${registry.host}/${repository}:${tags[0]}`);
}

/** DockerCoins installed as a new user does: k8s/render.sh in-cluster, then (here) the API server. */
function installWithRenderScript(tag: string): void {
  const run = spawnSync(path.join(K8S, 'render.sh'), ['in-cluster'], {
    encoding: 'utf8',
    env: {
      PATH: process.env.PATH ?? '',
      KUBECONFIG: '/dev/null',
      REGISTRY: NODE_REGISTRY,
      TAG: tag,
    },
    cwd: work,
  });
  if (run.status !== 0) throw new Error(`render.sh failed (${run.status}):\n${run.stderr}`);
  for (const deployment of ofKind(parseObjects(run.stdout), 'Deployment')) {
    kube.putDeployment(deployment);
    kube.completeRollout(NAMESPACE, deployment.metadata.name);
  }
}

interface ShipOptions {
  readonly env?: NodeJS.ProcessEnv;
  /** Leave out `--kubeconfig`. */
  readonly noKubeconfig?: boolean;
  /** Put the global options before the command, as the README's alias does. */
  readonly optionsFirst?: boolean;
}

function ship(args: readonly string[], options: ShipOptions = {}): Promise<ShipRun> {
  const globals = [
    '--registry',
    registry.url,
    '--registry-user',
    USER.username,
    ...(options.noKubeconfig === true ? [] : ['--kubeconfig', kubeconfigPath]),
  ];
  return runShipCaptured(
    options.optionsFirst === true ? [...globals, ...args] : [...args, ...globals],
    {
      env: { PATH: process.env.PATH, SHIP_REGISTRY_PASSWORD: USER.password, ...options.env },
      homeDir: work,
      // Each poll of a rollout: the controller finishes it.
      sleep: () => {
        kube.completeRollout(NAMESPACE, 'hasher');
        return Promise.resolve();
      },
      pollIntervalMs: 10,
    },
  );
}

const hasherImage = (): string | undefined =>
  kube
    .deployment(NAMESPACE, 'hasher')!
    .spec.template.spec.containers.find((c) => c.name === 'hasher')?.image;

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'ship-new-user-'));
  registry = await startRegistry({ users: [USER] });
  buildah = new Buildah(path.join(work, 'buildah'));
  digests[COMMIT_1] = buildAndPush(COMMIT_1, 'hasher', [TAG_1, `main-${COMMIT_1.slice(0, 7)}-41`]);
  digests[COMMIT_2] = buildAndPush(COMMIT_2, 'hasher', [
    TAG_2,
    `main-${COMMIT_2.slice(0, 7)}-42`,
    `pr-7-${COMMIT_2.slice(0, 7)}`,
  ]);
  // worker exists only under a prefix, as in a registry shared by several projects.
  buildAndPush(COMMIT_1, 'team/worker', [TAG_1]);

  kube = await startKubeApiServer({
    clusterName: 'dockercoins',
    staticTokens: { [TOKEN]: 'alice' },
  });
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

beforeEach(() => installWithRenderScript(TAG_1));

afterAll(async () => {
  await kube?.stop();
  await registry?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

describe('item 2: global options anywhere', () => {
  test('Given the options before the command (the README alias), when ship images runs, then it lists the images', async () => {
    const run = await ship(['images', 'hasher'], { optionsFirst: true });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(`hasher: 2 images in ${registry.host}/hasher`);
  });

  test('Given an option before the command that the command does not know, when ship runs, then it is a usage error naming it', async () => {
    const run = await runShipCaptured(['--allow-older', 'images']);
    expect(run.status).toBe(2);
    expect(run.stderr).toContain("Unknown option '--allow-older'");
  });
});

describe('item 3: the Deployment keeps the address its nodes pull from', () => {
  test('Given --registry at a port-forward and a Deployment pulling from 127.0.0.1:30500, when ship deploys, then the image stays at 127.0.0.1:30500', async () => {
    const run = await ship(['deploy', 'hasher', TAG_2]);
    expect(run.status).toBe(0);
    expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${TAG_2}@${digests[COMMIT_2]}`);
    expect(run.stderr).toContain(
      `ship deploy: note: main: Deployment dockercoins/hasher keeps pulling from ${NODE_REGISTRY}/hasher; ` +
        `tags and digests were read from ${registry.host} (--registry)`,
    );
  });

  test('Given a Deployment pulling another repository, when ship deploys from --registry, then it refuses naming both addresses and --pull-registry, and changes nothing', async () => {
    const deployment = kube.deployment(NAMESPACE, 'hasher')!;
    deployment.spec.template.spec.containers[0]!.image = 'docker.io/dockercoins/hasher:v0.1';
    kube.putDeployment(deployment);
    const run = await ship(['deploy', 'hasher', TAG_2]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('docker.io/dockercoins/hasher');
    expect(run.stderr).toContain(`${registry.host}/hasher`);
    expect(run.stderr).toContain('--pull-registry');
    expect(hasherImage()).toBe('docker.io/dockercoins/hasher:v0.1');

    const forced = await ship(['deploy', 'hasher', TAG_2, '--pull-registry', NODE_REGISTRY]);
    expect(forced.status).toBe(0);
    expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${TAG_2}@${digests[COMMIT_2]}`);
  });
});

describe('item 4: KUBECONFIG alone', () => {
  test('Given only KUBECONFIG (no --kubeconfig, no AWS variable at all), when ship history runs, then it reads the cluster', async () => {
    const run = await ship(['history', 'hasher'], {
      noKubeconfig: true,
      env: { KUBECONFIG: kubeconfigPath },
    });
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(run.stdout).toContain(TAG_1);
  });
});

test('Given KUBECONFIG empty and no AWS region, when ship history runs, then it takes EKS by name and asks for the region', async () => {
  const run = await ship(['history', 'hasher'], { noKubeconfig: true, env: { KUBECONFIG: '' } });
  expect(run.status).toBe(2);
  expect(run.stderr).toContain('no AWS region');
});

describe('item 5: repositories under a prefix', () => {
  test('Given worker only as team/worker, when ship images worker runs, then it fails naming team/worker and --repository-prefix team', async () => {
    const run = await ship(['images', 'worker']);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('team/worker');
    expect(run.stderr).toContain('--repository-prefix team');
    const fixed = await ship(['images', 'worker', '--repository-prefix', 'team']);
    expect(fixed.status).toBe(0);
    expect(fixed.stdout).toContain(`worker: 1 image in ${registry.host}/team/worker`);
  });
});

describe('item 6: the first rollback after installing with render.sh', () => {
  test('Given the install at TAG_1 and one ship deploy of TAG_2, when ship rollback runs, then TAG_1 runs again, pinned by the digest the registry gives, and deploys are paused', async () => {
    expect((await ship(['deploy', 'hasher', TAG_2])).status).toBe(0);
    const run = await ship(['rollback', 'hasher']);
    expect(run.stderr).toBe('');
    expect(run.status).toBe(0);
    expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${TAG_1}@${digests[COMMIT_1]}`);
    expect(kube.deployment(NAMESPACE, 'hasher')!.metadata.annotations?.[ANNOTATIONS.paused]).toBe(
      'true',
    );
  });
});

describe('item 7: tags, paused, PUSHED, passwords', () => {
  test.each([[`pr-7-${COMMIT_2.slice(0, 7)}`], [`main-${COMMIT_2.slice(0, 7)}-42`]])(
    'Given the tag %s, when ship deploys it, then it is refused with the deployer rule and nothing changes',
    async (tag) => {
      const run = await ship(['deploy', 'hasher', tag]);
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('only commit tags (12 hex) and release tags');
      expect(run.stderr).toContain('--allow-build-tag');
      expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${TAG_1}`);
    },
  );

  test('Given --allow-build-tag, when ship deploys pr-7 to an environment without releases, then it deploys', async () => {
    const run = await ship(['deploy', 'hasher', PR_TAG, '--allow-build-tag']);
    expect(run.status).toBe(0);
    expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${PR_TAG}@${digests[COMMIT_2]}`);
  });

  test('Given --allow-build-tag and an environment that takes releases, when ship deploys pr-7, then it is refused', async () => {
    const environments = JSON.stringify([
      { name: 'prod', namespace: NAMESPACE, branches: ['main'], releaseTags: true },
    ]);
    const run = await ship([
      'deploy',
      'hasher',
      `pr-7-${COMMIT_2.slice(0, 7)}`,
      '--allow-build-tag',
      '-c',
      `environments=${environments}`,
    ]);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('prod takes release tags');
    expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${TAG_1}`);
  });

  test('Given a paused service, when ship deploys it, then the output says it stays paused', async () => {
    expect((await ship(['pause', 'hasher'])).status).toBe(0);
    const run = await ship(['deploy', 'hasher', TAG_2]);
    expect(run.status).toBe(0);
    expect(run.stdout).toContain('automatic deploys of hasher stay paused');
  });

  test('Given an OCI registry, when ship images runs, then the time column is CREATED (the image config) and --json says createdAt', async () => {
    const run = await ship(['images', 'hasher']);
    expect(run.stdout).toMatch(/ CREATED /);
    expect(run.stdout).not.toMatch(/ PUSHED /);
    const json = JSON.parse((await ship(['images', 'hasher', '--json'])).stdout) as {
      services: { images: { pushedAt: string | null; createdAt: string | null }[] }[];
    };
    const image = json.services[0]!.images[0]!;
    expect(image.pushedAt).toBeNull();
    expect(Number.isNaN(Date.parse(image.createdAt ?? ''))).toBe(false);
  });

  test('Given a wrong password, when images, status and deploy run, then each says the same one thing', async () => {
    const env = { SHIP_REGISTRY_PASSWORD: 'wrong' };
    const runs = [
      await ship(['images', 'hasher'], { env }),
      await ship(['status'], { env }),
      await ship(['deploy', 'hasher', TAG_2], { env }),
    ];
    const expected =
      `registry ${registry.host} refused the password of user "ci": check SHIP_REGISTRY_PASSWORD ` +
      '(or give another user with --registry-user <name>).';
    for (const run of runs) {
      expect(run.status).toBe(1);
      expect(run.stderr.split('\n')).toContainEqual(
        expect.stringMatching(/^ship (images|status|deploy): /),
      );
      expect(run.stderr).toContain(expected);
    }
    expect(hasherImage()).toBe(`${NODE_REGISTRY}/hasher:${TAG_1}`);
  });
});
