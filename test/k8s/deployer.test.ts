import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import {
  K8S,
  containers,
  differences,
  find,
  kustomize,
  ofKind,
  podSpec,
  relativePath,
  removeTempDirs,
  tempDir,
  templateLabels,
} from './kubectl';

afterAll(removeTempDirs);

// k8s/deployer as `kubectl kustomize` renders it, against the names, paths and settings the
// in-cluster deployer's code expects (the issue 17 contract, written out here).

const BASE = path.join(K8S, 'deployer', 'base');
const IN_CLUSTER = path.join(K8S, 'deployer', 'overlays', 'in-cluster');
const METRICS = path.join(K8S, 'deployer', 'components', 'metrics-scraping');

const NAMESPACE = 'ship-deployer';
const LABELS = {
  'app.kubernetes.io/name': 'ship-deployer',
  'app.kubernetes.io/part-of': 'dockercoins-ship',
  'app.kubernetes.io/component': 'deployer',
};
const CONTRACT_ENV = {
  SHIP_LISTEN: '0.0.0.0:8080',
  SHIP_DEPLOYER_CONFIG: '/etc/ship-deployer/config.yaml',
  SHIP_NOTIFICATION_TOKEN_FILE: '/var/run/secrets/ship/notification/token',
  DOCKER_CONFIG: '/var/run/secrets/ship/registry',
  SHIP_WEBHOOK_URL_FILE: '/var/run/secrets/ship/webhook/url',
  // registry.url is the registry's plain-HTTP Service: without it the deployer refuses to start.
  REGISTRY_PLAIN_HTTP_CREDENTIALS: 'allow',
};
/** The sample configuration of the contract, key for key. */
const CONTRACT_CONFIG = {
  registry: {
    url: 'http://registry.registry.svc.cluster.local:5000',
    pullHost: '127.0.0.1:30500',
  },
  repositoryPrefix: '',
  releaseTagPattern: 'v*',
  services: [
    { service: 'hasher' },
    { service: 'rng' },
    { service: 'webui', targets: [{ deployment: 'webui', container: 'webui' }] },
    { service: 'worker' },
  ],
  environments: [
    { name: 'staging', namespace: 'dockercoins-staging', branches: ['main'] },
    { name: 'production', namespace: 'dockercoins', releaseTags: true },
  ],
  verify: { deadlineSeconds: 180, pollSeconds: 5 },
  rollback: true,
  reconcileSeconds: 60,
  webhook: { format: 'json' },
};

interface VolumeMount {
  name: string;
  mountPath: string;
  readOnly?: boolean;
  subPath?: string;
}
interface Volume {
  name: string;
  configMap?: { name: string; items?: { key: string; path: string }[] };
  secret?: {
    secretName: string;
    optional?: boolean;
    defaultMode?: number;
    items?: { key: string; path: string }[];
  };
  emptyDir?: Record<string, unknown>;
}

const base = kustomize(BASE);
const inCluster = kustomize(IN_CLUSTER);
const deployment = find(base, 'Deployment', 'ship-deployer');
const container = containers(deployment)[0]!;
const pod = podSpec(deployment);
const volumes = (pod.volumes as Volume[] | undefined) ?? [];
const mounts = (container.volumeMounts as VolumeMount[] | undefined) ?? [];
const env = (container.env as { name: string; value?: string }[] | undefined) ?? [];
const configMap = ofKind(base, 'ConfigMap')[0]!;

/**
 * What a file path inside the container is, read through the mounts and volumes the way the
 * kubelet lays them out: the ConfigMap or Secret and the key behind it, or nothing.
 */
function source(file: string): { kind: string; name: string; key: string; optional: boolean } {
  const mount = mounts.find((m) => file.startsWith(`${m.mountPath}/`));
  if (mount === undefined) throw new Error(`no volume is mounted above ${file}`);
  const inside = file.slice(mount.mountPath.length + 1);
  const volume = volumes.find((v) => v.name === mount.name);
  if (volume === undefined) throw new Error(`the mount ${mount.name} has no volume`);
  const projected = volume.secret ?? volume.configMap;
  if (projected === undefined)
    throw new Error(`volume ${volume.name} is neither Secret nor ConfigMap`);
  // With items, only the listed keys appear, at their paths; without, every key at its own name.
  const key =
    projected.items === undefined
      ? inside
      : projected.items.find((item) => item.path === inside)?.key;
  if (key === undefined) throw new Error(`${file}: volume ${volume.name} puts no key there`);
  return volume.secret !== undefined
    ? {
        kind: 'Secret',
        name: volume.secret.secretName,
        key,
        optional: volume.secret.optional === true,
      }
    : { kind: 'ConfigMap', name: volume.configMap!.name, key, optional: false };
}

describe('k8s/deployer/base: the objects', () => {
  test('Given the base, when rendered, then it holds exactly the namespace, ServiceAccount, Deployment, Service, NetworkPolicy, ConfigMap, and a Role and RoleBinding per environment', () => {
    const found = base.map(
      (o) =>
        `${o.kind}/${o.metadata.namespace ?? ''}/${o.kind === 'ConfigMap' ? o.metadata.name.replace(/-[a-z0-9]{10}$/, '-<hash>') : o.metadata.name}`,
    );
    expect(found.sort()).toEqual(
      [
        'Namespace//ship-deployer',
        'ServiceAccount/ship-deployer/ship-deployer',
        'Deployment/ship-deployer/ship-deployer',
        'Service/ship-deployer/ship-deployer',
        'NetworkPolicy/ship-deployer/ship-deployer',
        'ConfigMap/ship-deployer/ship-deployer-config-<hash>',
        'Role/dockercoins-staging/ship-deployer',
        'RoleBinding/dockercoins-staging/ship-deployer',
        'Role/dockercoins/ship-deployer',
        'RoleBinding/dockercoins/ship-deployer',
      ].sort(),
    );
  });

  test('Given the base, when rendered, then every object is part of dockercoins-ship and the deployer component, and the namespace enforces the restricted Pod Security Standard', () => {
    for (const object of base) {
      expect(object.metadata.labels).toMatchObject({
        'app.kubernetes.io/part-of': 'dockercoins-ship',
        'app.kubernetes.io/component': 'deployer',
      });
    }
    for (const object of [deployment, find(base, 'Service', 'ship-deployer')]) {
      expect(object.metadata.labels).toMatchObject(LABELS);
    }
    expect(templateLabels(deployment)).toMatchObject(LABELS);
    expect(find(base, 'Namespace', NAMESPACE).metadata.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
    });
  });

  test('Given the Service, when rendered, then it is a ClusterIP on 8080, named http, and selects exactly the Deployment’s pods', () => {
    const service = find(base, 'Service', 'ship-deployer') as KubernetesObject & {
      spec: {
        type: string;
        selector: Record<string, string>;
        ports: { name: string; port: number; targetPort: string | number }[];
      };
    };
    expect(service.spec.type).toBe('ClusterIP');
    expect(service.spec.ports).toEqual([
      { name: 'http', protocol: 'TCP', port: 8080, targetPort: 'http' },
    ]);
    expect(templateLabels(deployment)).toMatchObject(service.spec.selector);
    expect(
      (deployment.spec as { selector: { matchLabels: unknown } }).selector.matchLabels,
    ).toEqual(service.spec.selector);
  });

  test('Given the ConfigMap, when rendered, then its config.yaml has exactly the keys and values of the contract’s sample, and no credential', () => {
    const data = configMap.data as Record<string, string>;
    expect(Object.keys(data)).toEqual(['config.yaml']);
    const config = parse(data['config.yaml']!) as Record<string, unknown>;
    expect(config).toEqual(CONTRACT_CONFIG);
    // The webhook's URL and the token are Secrets: no key or value of the config is one, and the
    // one URL is the registry's.
    expect(JSON.stringify(config)).not.toMatch(/token|password|secret|auth/i);
    expect(JSON.stringify(config).match(/https?:\/\/[^"]*/g)).toEqual([
      'http://registry.registry.svc.cluster.local:5000',
    ]);
  });
});

describe('k8s/deployer/base: the Deployment', () => {
  test('Given the Deployment, when rendered, then one replica is replaced with Recreate, under its own ServiceAccount, with its token mounted (its Kubernetes identity)', () => {
    const spec = deployment.spec as { replicas: number; strategy: { type: string } };
    expect(spec.replicas).toBe(1);
    expect(spec.strategy.type).toBe('Recreate');
    expect(pod.serviceAccountName).toBe('ship-deployer');
    expect(pod.automountServiceAccountToken).toBe(true);
    expect(pod.enableServiceLinks).toBe(false);
  });

  test('Given the pod, when rendered, then it runs non-root (numeric user), seccomp RuntimeDefault, read-only root filesystem, every capability dropped, no privilege escalation', () => {
    expect(pod.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 65532,
      runAsGroup: 65532,
      fsGroup: 65532,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    expect(container.securityContext).toEqual({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      runAsNonRoot: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(containers(deployment)).toHaveLength(1);
    expect(pod.initContainers).toBeUndefined();
  });

  test('Given the container, when rendered, then it serves on the port named http, 8080, with liveness on /healthz and readiness on /readyz there', () => {
    expect(container.ports).toEqual([{ name: 'http', containerPort: 8080, protocol: 'TCP' }]);
    expect(container.livenessProbe).toMatchObject({ httpGet: { path: '/healthz', port: 'http' } });
    expect(container.readinessProbe).toMatchObject({ httpGet: { path: '/readyz', port: 'http' } });
    const listen = env.find((e) => e.name === 'SHIP_LISTEN')?.value ?? '';
    expect(Number(/:(\d+)$/.exec(listen)?.[1])).toBe(8080);
  });

  test('Given the container, when rendered, then it has requests and limits for CPU and memory', () => {
    const resources = container.resources as {
      requests: Record<string, string>;
      limits: Record<string, string>;
    };
    expect(Object.keys(resources.requests).sort()).toEqual(['cpu', 'memory']);
    expect(Object.keys(resources.limits).sort()).toEqual(['cpu', 'memory']);
  });

  test('Given the container, when rendered, then its environment is exactly the contract’s (literal values, no Secret in an env var)', () => {
    expect(Object.fromEntries(env.map((e) => [e.name, e.value]))).toEqual(CONTRACT_ENV);
    expect(env.every((e) => Object.keys(e).sort().join() === 'name,value')).toBe(true);
  });

  test.each([
    ['SHIP_DEPLOYER_CONFIG', { kind: 'ConfigMap', key: 'config.yaml', optional: false }],
    [
      'SHIP_NOTIFICATION_TOKEN_FILE',
      { kind: 'Secret', name: 'ship-deployer-notification', key: 'token', optional: false },
    ],
    [
      'SHIP_WEBHOOK_URL_FILE',
      { kind: 'Secret', name: 'ship-deployer-webhook', key: 'url', optional: true },
    ],
  ])(
    'Given the file %s names, when read through the mounts, then it is the contract’s object and key',
    (variable, expected) => {
      const file = CONTRACT_ENV[variable as keyof typeof CONTRACT_ENV];
      expect(source(file)).toMatchObject(expected);
    },
  );

  test('Given DOCKER_CONFIG, when config.json is read through the mounts, then it is the .dockerconfigjson of the Secret ship-deployer-registry', () => {
    expect(source(`${CONTRACT_ENV.DOCKER_CONFIG}/config.json`)).toEqual({
      kind: 'Secret',
      name: 'ship-deployer-registry',
      key: '.dockerconfigjson',
      optional: false,
    });
  });

  test('Given the config volume, when rendered, then it is the generated ConfigMap (its hashed name), which holds config.yaml', () => {
    const { name } = source(CONTRACT_ENV.SHIP_DEPLOYER_CONFIG);
    expect(name).toBe(configMap.metadata.name);
    expect(name).toMatch(/^ship-deployer-config-[a-z0-9]{10}$/);
  });

  test('Given the mounts, when rendered, then every one is read-only but /tmp, a small in-memory emptyDir, and Secrets are readable by the owner and group only', () => {
    expect(mounts.filter((m) => m.readOnly !== true).map((m) => m.mountPath)).toEqual(['/tmp']);
    const tmp = volumes.find((v) => v.name === mounts.find((m) => m.mountPath === '/tmp')!.name)!;
    expect(tmp.emptyDir).toEqual({ medium: 'Memory', sizeLimit: '16Mi' });
    for (const volume of volumes.filter((v) => v.secret !== undefined)) {
      expect(volume.secret!.defaultMode).toBe(0o440);
    }
    // The mounts stay clear of the ServiceAccount token's own folder.
    expect(mounts.some((m) => m.mountPath.startsWith('/var/run/secrets/kubernetes.io'))).toBe(
      false,
    );
  });

  test('Given the base, when rendered, then its image is the placeholder an overlay replaces', () => {
    expect(container.image).toBe('ship-deployer');
  });
});

describe('k8s/deployer/overlays/in-cluster', () => {
  const overlayDeployment = find(inCluster, 'Deployment', 'ship-deployer');

  test('Given the overlay, when rendered, then the image is the in-cluster registry’s ship-deployer at a tag (not latest), pulled with registry-pull', () => {
    const image = containers(overlayDeployment)[0]!.image;
    expect(image).toMatch(/^127\.0\.0\.1:30500\/ship-deployer:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/);
    expect(image.toLowerCase()).not.toMatch(/:latest$/);
    expect(podSpec(overlayDeployment).imagePullSecrets).toEqual([{ name: 'registry-pull' }]);
  });

  test('Given the overlay, when compared with the base, then only the image and the pull secret differ', () => {
    expect(inCluster.length).toBe(base.length);
    expect(differences(deployment, overlayDeployment).sort()).toEqual([
      'spec.template.spec.containers[0].image',
      'spec.template.spec.imagePullSecrets',
    ]);
    for (const object of inCluster.filter((o) => o.kind !== 'Deployment')) {
      const same = base.find(
        (b) =>
          b.kind === object.kind &&
          b.metadata.name === object.metadata.name &&
          b.metadata.namespace === object.metadata.namespace,
      );
      expect(same).toEqual(object);
    }
  });
});

describe('k8s/deployer/components/metrics-scraping', () => {
  test('Given the component on the base, when rendered, then it adds one NetworkPolicy and changes nothing else', () => {
    const dir = tempDir('deployer-metrics');
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${relativePath(dir, BASE)}]`,
        `components: [${relativePath(dir, METRICS)}]`,
        '',
      ].join('\n'),
    );
    const withMetrics = kustomize(dir);
    const added = withMetrics.filter(
      (o) => !base.some((b) => b.kind === o.kind && b.metadata.name === o.metadata.name),
    );
    expect(added.map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)).toEqual([
      'NetworkPolicy/ship-deployer/ship-deployer-metrics-scraping',
    ]);
    expect(withMetrics.length).toBe(base.length + 1);
  });
});
