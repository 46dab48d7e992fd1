import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import {
  Container,
  K8S,
  containers,
  differences,
  find,
  images,
  kustomizationDirs,
  kustomize,
  ofKind,
  podSpec,
  relativePath,
  removeTempDirs,
  tempDir,
  templateLabels,
} from './kubectl';

afterAll(removeTempDirs);

const DEPLOYMENTS = ['hasher', 'redis', 'rng', 'webui', 'worker'];
const SERVICES = ['hasher', 'redis', 'rng', 'webui'];
const HTTP_SERVERS = ['hasher', 'rng', 'webui'];
const OVERLAYS = ['dockerhub', 'ecr', 'in-cluster'] as const;

/** Where each overlay's images come from: the seed's $REGISTRY/<service>:$TAG, per registry. */
const EXPECTED_IMAGES: Record<(typeof OVERLAYS)[number], Record<string, string>> = {
  dockerhub: {
    hasher: 'docker.io/dockercoins/hasher:v0.1',
    rng: 'docker.io/dockercoins/rng:v0.1',
    webui: 'docker.io/dockercoins/webui:v0.1',
    worker: 'docker.io/dockercoins/worker:v0.1',
    redis: 'docker.io/library/redis:7.4',
  },
  ecr: {
    hasher: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/hasher:6e0de7938dda',
    rng: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/rng:6e0de7938dda',
    webui: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/webui:6e0de7938dda',
    worker: '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/worker:6e0de7938dda',
    redis:
      '123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins-ecr-public/docker/library/redis:7.4',
  },
  'in-cluster': {
    hasher: '127.0.0.1:30500/hasher:6e0de7938dda',
    rng: '127.0.0.1:30500/rng:6e0de7938dda',
    webui: '127.0.0.1:30500/webui:6e0de7938dda',
    worker: '127.0.0.1:30500/worker:6e0de7938dda',
    redis: 'docker.io/library/redis:7.4',
  },
};

const rendered = new Map<string, KubernetesObject[]>();
function render(relative: string): KubernetesObject[] {
  let objects = rendered.get(relative);
  if (objects === undefined) {
    objects = kustomize(path.join(K8S, relative));
    rendered.set(relative, objects);
  }
  return objects;
}

/** A temporary kustomization: `resources` and `components` are folders under k8s/. */
function wrapper(resources: string[], components: string[]): string {
  const dir = tempDir('k8s-wrapper');
  writeFileSync(
    path.join(dir, 'kustomization.yaml'),
    stringify({
      resources: resources.map((r) => relativePath(dir, path.join(K8S, r))),
      components: components.map((c) => relativePath(dir, path.join(K8S, c))),
    }),
  );
  return dir;
}

/** A quantity (`100m`, `64Mi`, `1`) in base units, for comparing requests with limits. */
function quantity(value: unknown): number {
  const match = /^(\d+(?:\.\d+)?)(m|Ki|Mi|Gi)?$/.exec(String(value));
  if (match === null) throw new Error(`not a quantity this test reads: ${String(value)}`);
  const factor = { m: 0.001, Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 }[match[2] ?? ''] ?? 1;
  return Number(match[1]) * factor;
}

function matches(selector: Record<string, string>, labels: Record<string, string>): boolean {
  return Object.entries(selector).every(([key, value]) => labels[key] === value);
}

/** The image's registry host: the part before the first "/", when it looks like a host. */
function registryHost(image: string): string | undefined {
  const first = image.split('/')[0] ?? '';
  return image.includes('/') &&
    (first.includes('.') || first.includes(':') || first === 'localhost')
    ? first
    : undefined;
}

describe('every kustomization under k8s/ (k8s/registry excepted)', () => {
  test('Given the k8s/ tree, when it is searched, then it holds the base, four overlays, the component, the deployer RBAC and the ship RBAC', () => {
    expect(kustomizationDirs().map((dir) => path.relative(K8S, dir))).toEqual([
      'base',
      'components/webui-loadbalancer',
      'overlays/dockerhub',
      'overlays/ecr',
      'overlays/in-cluster',
      'overlays/in-cluster-staging',
      'rbac/deployer',
      'rbac/ship',
    ]);
  });

  test.each(kustomizationDirs().map((dir) => [path.relative(K8S, dir), dir]))(
    'Given %s, when kubectl kustomize renders it (a component on top of the base), then it yields objects',
    (relative) => {
      const objects = relative.startsWith('components/')
        ? kustomize(wrapper(['base'], [relative]))
        : render(relative);
      expect(objects.length).toBeGreaterThan(0);
      for (const object of objects) {
        expect(object.metadata.labels?.['app.kubernetes.io/part-of']).toBe('dockercoins');
        expect(object.metadata.labels?.['app.kubernetes.io/managed-by']).toBe('kustomize');
      }
    },
  );
});

describe('k8s/base', () => {
  test('Given the base, when rendered, then every image is the bare placeholder its overlay replaces', () => {
    expect(Object.fromEntries(images(render('base')))).toEqual({
      hasher: 'hasher',
      redis: 'redis',
      rng: 'rng',
      webui: 'webui',
      worker: 'worker',
    });
  });

  test('Given the base, when rendered, then it sets no namespace (overlays do)', () => {
    for (const object of render('base')) expect(object.metadata.namespace).toBeUndefined();
  });
});

describe.each(OVERLAYS)('k8s/overlays/%s', (overlay) => {
  const objects = (): KubernetesObject[] => render(`overlays/${overlay}`);
  const deployment = (name: string): KubernetesObject => find(objects(), 'Deployment', name);
  const container = (name: string): Container => {
    const found = containers(deployment(name));
    expect(found).toHaveLength(1);
    return found[0]!;
  };

  test('Given the overlay, when rendered, then it holds the Namespace, five Deployments and four Services, nothing else', () => {
    const kinds = objects().map((o) => `${o.kind}/${o.metadata.name}`);
    expect(kinds.sort()).toEqual(
      [
        'Namespace/dockercoins',
        ...DEPLOYMENTS.map((d) => `Deployment/${d}`),
        ...SERVICES.map((s) => `Service/${s}`),
      ].sort(),
    );
  });

  test('Given the overlay, when rendered, then every namespaced object is in dockercoins, which enforces the restricted Pod Security Standard', () => {
    for (const object of objects()) {
      if (object.kind !== 'Namespace') expect(object.metadata.namespace).toBe('dockercoins');
    }
    const namespace = find(objects(), 'Namespace', 'dockercoins');
    expect(namespace.metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  test.each(DEPLOYMENTS)(
    'Given Deployment %s, when rendered, then it, its pods and its Service carry the app.kubernetes.io labels',
    (name) => {
      const labelled = [
        deployment(name).metadata.labels ?? {},
        templateLabels(deployment(name)),
        ...(SERVICES.includes(name)
          ? [find(objects(), 'Service', name).metadata.labels ?? {}]
          : []),
      ];
      for (const labels of labelled) {
        expect(labels).toMatchObject({
          'app.kubernetes.io/name': name,
          'app.kubernetes.io/part-of': 'dockercoins',
          'app.kubernetes.io/managed-by': 'kustomize',
        });
        expect(labels['app.kubernetes.io/component']).toMatch(/^[a-z]+$/);
      }
    },
  );

  test.each(DEPLOYMENTS)(
    'Given Deployment %s, when rendered, then its one container is named after it (kubectl set image and the deployer address it so)',
    (name) => {
      expect(container(name).name).toBe(name);
    },
  );

  test.each(DEPLOYMENTS)(
    'Given Deployment %s, when rendered, then its selector matches its own pod template',
    (name) => {
      const selector = (
        deployment(name).spec as { selector: { matchLabels: Record<string, string> } }
      ).selector.matchLabels;
      expect(Object.keys(selector).length).toBeGreaterThan(0);
      expect(matches(selector, templateLabels(deployment(name)))).toBe(true);
    },
  );

  test.each(SERVICES)(
    'Given Service %s, when rendered, then its selector matches the pods of exactly one Deployment, its namesake',
    (name) => {
      const selector = (
        find(objects(), 'Service', name).spec as { selector: Record<string, string> }
      ).selector;
      const selected = ofKind(objects(), 'Deployment').filter((d) =>
        matches(selector, templateLabels(d)),
      );
      expect(selected.map((d) => d.metadata.name)).toEqual([name]);
    },
  );

  test.each([
    ['hasher', 'ClusterIP', 80, 'http'],
    ['rng', 'ClusterIP', 80, 'http'],
    ['webui', 'NodePort', 80, 'http'],
    ['redis', 'ClusterIP', 6379, 'redis'],
  ])(
    'Given Service %s, when rendered, then it is a %s on port %d, targeting the container port named %s',
    (name, type, port, portName) => {
      const spec = find(objects(), 'Service', name).spec as {
        type: string;
        ports: { port: number; targetPort: string }[];
      };
      expect(spec.type).toBe(type);
      expect(spec.ports).toHaveLength(1);
      expect(spec.ports[0]).toMatchObject({ port, targetPort: portName });
      const containerPorts = container(name).ports as { name: string; containerPort: number }[];
      expect(containerPorts).toContainEqual({
        name: portName,
        containerPort: name === 'redis' ? 6379 : 80,
      });
    },
  );

  test('Given the worker, when rendered, then it exposes no port and has no Service', () => {
    expect(container('worker').ports).toBeUndefined();
    expect(objects().some((o) => o.kind === 'Service' && o.metadata.name === 'worker')).toBe(false);
  });

  test.each([
    ['hasher', '/'],
    ['rng', '/'],
    ['webui', '/index.html'],
  ])(
    'Given %s, when rendered, then its readiness and liveness probes GET %s on its HTTP port',
    (name, probePath) => {
      for (const probe of ['readinessProbe', 'livenessProbe']) {
        expect(container(name)[probe]).toMatchObject({
          httpGet: { path: probePath, port: 'http' },
        });
      }
    },
  );

  test('Given redis, when rendered, then readiness asks redis-cli for PONG and liveness checks the TCP port', () => {
    const readiness = container('redis').readinessProbe as { exec: { command: string[] } };
    expect(readiness.exec.command.join(' ')).toMatch(/redis-cli .*ping.*PONG/);
    expect(container('redis').livenessProbe).toMatchObject({ tcpSocket: { port: 'redis' } });
  });

  test('Given the worker, when rendered, then it has no probes (the reason is in its manifest)', () => {
    expect(container('worker').readinessProbe).toBeUndefined();
    expect(container('worker').livenessProbe).toBeUndefined();
  });

  test.each(DEPLOYMENTS)(
    'Given %s, when rendered, then it requests and limits CPU and memory, requests within limits',
    (name) => {
      const resources = container(name).resources as {
        requests: Record<string, string>;
        limits: Record<string, string>;
      };
      for (const resource of ['cpu', 'memory']) {
        expect(quantity(resources.requests[resource])).toBeGreaterThan(0);
        expect(quantity(resources.requests[resource])).toBeLessThanOrEqual(
          quantity(resources.limits[resource]),
        );
      }
    },
  );

  test.each(DEPLOYMENTS)(
    'Given %s, when rendered, then it runs non-root, seccomp RuntimeDefault, no privilege escalation, no capabilities, read-only root filesystem, no API token',
    (name) => {
      const pod = podSpec(deployment(name));
      const podSecurity = pod.securityContext as Record<string, unknown>;
      expect(podSecurity.runAsNonRoot).toBe(true);
      expect(podSecurity.runAsUser).toEqual(expect.any(Number));
      expect(podSecurity.runAsUser).not.toBe(0);
      expect(podSecurity.seccompProfile).toEqual({ type: 'RuntimeDefault' });
      expect(pod.automountServiceAccountToken).toBe(false);
      expect(pod.hostNetwork).toBeUndefined();
      expect(container(name).securityContext).toEqual({
        allowPrivilegeEscalation: false,
        readOnlyRootFilesystem: true,
        capabilities: { drop: ['ALL'] },
      });
    },
  );

  test.each(DEPLOYMENTS)(
    'Given %s, when rendered, then it may bind a port below 1024 as non-root exactly when it serves HTTP on port 80',
    (name) => {
      const sysctls = (podSpec(deployment(name)).securityContext as { sysctls?: unknown }).sysctls;
      expect(sysctls).toEqual(
        HTTP_SERVERS.includes(name)
          ? [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }]
          : undefined,
      );
    },
  );

  test('Given redis, when rendered, then only its data folder is writable, owned through fsGroup by the image user', () => {
    const pod = podSpec(deployment('redis'));
    expect(pod.securityContext).toMatchObject({ runAsUser: 999, runAsGroup: 999, fsGroup: 999 });
    expect(container('redis').volumeMounts).toEqual([{ name: 'data', mountPath: '/data' }]);
    expect(pod.volumes).toEqual([{ name: 'data', emptyDir: { sizeLimit: '256Mi' } }]);
  });

  test('Given the overlay, when rendered, then every image names its registry host and is pinned by a tag other than latest or by a digest', () => {
    for (const [name, image] of images(objects())) {
      expect({ name, host: registryHost(image) === undefined }).toEqual({ name, host: false });
      const lastPart = image.split('/').pop() ?? '';
      expect({ name, pinned: lastPart.includes(':') || image.includes('@sha256:') }).toEqual({
        name,
        pinned: true,
      });
      expect(image.toLowerCase()).not.toMatch(/:latest(@|$)/);
    }
  });

  test("Given the overlay, when rendered, then its images are the registry's $REGISTRY/<service>:$TAG and redis", () => {
    expect(Object.fromEntries(images(objects()))).toEqual(EXPECTED_IMAGES[overlay]);
  });

  test('Given the worker, when rendered, then it leaves replicas to kubectl scale (no replicas field)', () => {
    expect((deployment('worker').spec as { replicas?: number }).replicas).toBeUndefined();
  });
});

describe('k8s/overlays/in-cluster', () => {
  test('Given the in-cluster overlay, when rendered, then every pod names the registry pull secret, and nothing else but images differs from the dockerhub overlay', () => {
    const inCluster = render('overlays/in-cluster');
    const dockerhub = render('overlays/dockerhub');
    for (const deployment of ofKind(inCluster, 'Deployment')) {
      expect(podSpec(deployment).imagePullSecrets).toEqual([{ name: 'registry-pull' }]);
      const twin = find(dockerhub, 'Deployment', deployment.metadata.name);
      expect(differences(twin, deployment).filter((p) => !p.endsWith('.image'))).toEqual([
        'spec.template.spec.imagePullSecrets',
      ]);
    }
  });
});

describe('k8s/overlays/in-cluster-staging', () => {
  test('Given the staging overlay, when rendered, then it is the in-cluster overlay with every object (the Namespace too) in dockercoins-staging, nothing else changed', () => {
    const staging = render('overlays/in-cluster-staging');
    const inCluster = render('overlays/in-cluster');
    expect(staging).toHaveLength(inCluster.length);
    staging.forEach((object, i) => {
      const paths = differences(inCluster[i], object);
      expect(paths).toEqual([object.kind === 'Namespace' ? 'metadata.name' : 'metadata.namespace']);
      expect(object.metadata.namespace ?? object.metadata.name).toBe('dockercoins-staging');
    });
  });
});

describe('k8s/components/webui-loadbalancer', () => {
  test.each([
    ['inside an overlay, before the namespace is set', ['base'], 'base'],
    [
      'on top of an overlay, after the namespace is set',
      ['overlays/dockerhub'],
      'overlays/dockerhub',
    ],
  ])(
    'Given the component %s, when rendered, then webui is a LoadBalancer and nothing else changes',
    (_when, resources, plain) => {
      const withComponent = kustomize(wrapper(resources, ['components/webui-loadbalancer']));
      const without = render(plain);
      const webui = find(withComponent, 'Service', 'webui');
      expect((webui.spec as { type: string }).type).toBe('LoadBalancer');
      expect(withComponent.length).toBe(without.length);
      const changed = withComponent.flatMap((object) =>
        differences(find(without, object.kind, object.metadata.name), object).map(
          (p) => `${object.kind}/${object.metadata.name}:${p}`,
        ),
      );
      expect(changed).toEqual(['Service/webui:spec.type']);
    },
  );
});

describe('k8s/rbac/deployer', () => {
  const objects = (): KubernetesObject[] => render('rbac/deployer');

  test('Given the deployer RBAC, when rendered, then it is one Role and one RoleBinding in dockercoins', () => {
    expect(
      objects()
        .map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)
        .sort(),
    ).toEqual([
      'Role/dockercoins/dockercoins-deployer',
      'RoleBinding/dockercoins/dockercoins-deployer',
    ]);
  });

  test('Given the Role, when rendered, then it allows get and patch on exactly the four Deployments we build (not redis), and reading what verification needs, nothing else', () => {
    const rules = find(objects(), 'Role', 'dockercoins-deployer').rules as Record<
      string,
      string[]
    >[];
    const deploymentsOfTheBase = ofKind(render('base'), 'Deployment')
      .map((d) => d.metadata.name)
      .sort();
    expect(deploymentsOfTheBase).toEqual(DEPLOYMENTS);
    expect(rules).toEqual([
      {
        apiGroups: ['apps'],
        resources: ['deployments'],
        resourceNames: deploymentsOfTheBase.filter((name) => name !== 'redis'),
        verbs: ['get', 'patch'],
      },
      { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ]);
  });

  test('Given the RoleBinding, when rendered, then it binds that Role to the group dockercoins-deployer only', () => {
    const binding = find(objects(), 'RoleBinding', 'dockercoins-deployer');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'dockercoins-deployer',
    });
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dockercoins-deployer' },
    ]);
  });
});

describe('k8s/rbac/ship', () => {
  const objects = (): KubernetesObject[] => render('rbac/ship');

  test('Given the ship RBAC, when rendered, then it is one Role and one RoleBinding in dockercoins', () => {
    expect(
      objects()
        .map((o) => `${o.kind}/${o.metadata.namespace}/${o.metadata.name}`)
        .sort(),
    ).toEqual(['Role/dockercoins/dockercoins-ship', 'RoleBinding/dockercoins/dockercoins-ship']);
  });

  test('Given the Role, when rendered, then it allows get and patch on the four Deployments we build, list on replicasets and pods (verification), nothing else', () => {
    const rules = find(objects(), 'Role', 'dockercoins-ship').rules as Record<string, string[]>[];
    expect(rules).toEqual([
      {
        apiGroups: ['apps'],
        resources: ['deployments'],
        resourceNames: DEPLOYMENTS.filter((name) => name !== 'redis'),
        verbs: ['get', 'patch'],
      },
      { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['list'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['list'] },
    ]);
  });

  test('Given the RoleBinding, when rendered, then it binds that Role to the group dockercoins-ship only', () => {
    const binding = find(objects(), 'RoleBinding', 'dockercoins-ship');
    expect(binding.roleRef).toEqual({
      apiGroup: 'rbac.authorization.k8s.io',
      kind: 'Role',
      name: 'dockercoins-ship',
    });
    expect(binding.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'dockercoins-ship' },
    ]);
  });
});
