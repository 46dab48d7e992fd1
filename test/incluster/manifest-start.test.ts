import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { startDeployer } from '../support/incluster';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';
import { K8S, containers, find, kustomize, ofKind, podSpec } from '../k8s/kubectl';

/**
 * The pod k8s/deployer/base renders, started as the kubelet would start it: the bundled entry
 * point with the container's own environment and its ConfigMap and Secrets laid out at their
 * mount paths (under a scratch root, the one rewrite), the Kubernetes API given by the test's
 * overrides. The manifests and the service are written apart; this is where they must agree.
 */

interface Mount {
  name: string;
  mountPath: string;
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: { secretName: string; items?: { key: string; path: string }[] };
}

const objects = kustomize(path.join(K8S, 'deployer', 'base'));
const deployment = find(objects, 'Deployment', 'ship-deployer');
const container = containers(deployment)[0]!;
const env = (container.env as { name: string; value: string }[]).map((e) => ({ ...e }));
const mounts = (container.volumeMounts as Mount[]) ?? [];
const volumes = (podSpec(deployment).volumes as Volume[]) ?? [];
const configMap = ofKind(objects, 'ConfigMap')[0] as KubernetesObject & {
  data: Record<string, string>;
};

/** What the test's Secrets hold, by Secret name and key. */
const SECRETS: Record<string, Record<string, string>> = {
  'ship-deployer-notification': { token: 'a-notification-token-for-the-manifest-test' },
  'ship-deployer-registry': {
    '.dockerconfigjson': JSON.stringify({
      auths: {
        'registry.registry.svc.cluster.local:5000': {
          auth: Buffer.from('ship-deployer:password').toString('base64'),
        },
      },
    }),
  },
};

let root: string;
let kube: KubeApiServer;

beforeAll(async () => {
  root = mkdtempSync(path.join(tmpdir(), 'ship-deployer-pod-'));
  // Every mounted ConfigMap and Secret, key by key (or through items), as the kubelet lays them out.
  for (const mount of mounts) {
    const volume = volumes.find((v) => v.name === mount.name);
    const dir = path.join(root, mount.mountPath);
    mkdirSync(dir, { recursive: true });
    const data =
      volume?.configMap !== undefined
        ? configMap.data
        : volume?.secret !== undefined
          ? SECRETS[volume.secret.secretName]
          : undefined;
    if (data === undefined) continue; // an emptyDir, or an optional Secret the test leaves out
    const items =
      volume?.configMap?.items ??
      volume?.secret?.items ??
      [...Object.keys(data)].map((key) => ({ key, path: key }));
    for (const item of items) {
      if (data[item.key] !== undefined) writeFileSync(path.join(dir, item.path), data[item.key]!);
    }
  }
  kube = await startKubeApiServer({
    clusterName: 'in-cluster',
    staticTokens: { 'sa-token': 'system:serviceaccount:ship-deployer:ship-deployer' },
  });
  writeFileSync(path.join(root, 'ca.crt'), kube.caPem);
  writeFileSync(path.join(root, 'sa-token'), 'sa-token');
});

afterAll(async () => {
  await kube?.stop();
  rmSync(root, { recursive: true, force: true });
});

/** The container's environment with its file paths moved under the scratch root. */
function podEnv(without: readonly string[] = []): Record<string, string> {
  const entries = env
    .filter((e) => e.name !== 'SHIP_LISTEN' && !without.includes(e.name))
    .map((e): [string, string] => [
      e.name,
      e.value.startsWith('/') ? path.join(root, e.value) : e.value,
    ]);
  return {
    ...Object.fromEntries(entries),
    SHIP_KUBE_URL: kube.url,
    SHIP_KUBE_CA_FILE: path.join(root, 'ca.crt'),
    SHIP_KUBE_TOKEN_FILE: path.join(root, 'sa-token'),
  };
}

test('Given the rendered pod (its env, ConfigMap and Secrets at their mount paths), when started, then the deployer becomes ready and stops cleanly', async () => {
  const deployer = await startDeployer({ env: podEnv() });
  try {
    expect((await fetch(`${deployer.url}/readyz`)).status).toBe(200);
    expect((await fetch(`${deployer.url}/healthz`)).status).toBe(200);
  } finally {
    expect(await deployer.stop()).toBe(0);
  }
});

test('Given the rendered pod without REGISTRY_PLAIN_HTTP_CREDENTIALS, when started, then it refuses, naming the variable (so the manifest must carry it)', async () => {
  const deployer = await startDeployer({
    env: podEnv(['REGISTRY_PLAIN_HTTP_CREDENTIALS']),
    waitReady: false,
  });
  expect(await deployer.exited).toBe(1);
  expect(deployer.output() + JSON.stringify(deployer.logs)).toMatch(
    /REGISTRY_PLAIN_HTTP_CREDENTIALS=allow/,
  );
});
