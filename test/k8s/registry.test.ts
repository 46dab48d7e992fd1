import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { Lazy } from 'aws-cdk-lib';
import { parse, parseDocument } from 'yaml';
import {
  REGISTRY_DEFAULT_NODE_PORT,
  REGISTRY_HTPASSWD_SECRET,
  REGISTRY_KUSTOMIZE_DIR,
  REGISTRY_NAMESPACE,
  RegistryManifestError,
  registryManifests,
} from '../../lib/k8s/registry';
import {
  K8sObject,
  RENDERED,
  RegistryConfig,
  containerPort,
  kustomizations,
  one,
  registryPodSpec,
  portOf,
  registryConfig,
  registryContainer,
  render,
} from './registry-support';
import { byKey, relativePath, removeTempDirs, tempDir } from './kubectl';

afterAll(removeTempDirs);

const LABELS = {
  'app.kubernetes.io/name': 'registry',
  'app.kubernetes.io/instance': 'registry',
  'app.kubernetes.io/part-of': 'dockercoins-ship',
};

/** As `kubectl apply` would send them: plain JSON, keyed by apiVersion/kind/namespace/name. */
function keyed(objects: readonly object[]): Map<string, K8sObject> {
  return byKey(JSON.parse(JSON.stringify(objects)) as K8sObject[]);
}

function expectSameObjects(actual: readonly object[], expected: readonly object[]): void {
  const a = keyed(actual);
  const e = keyed(expected);
  expect([...a.keys()].sort()).toEqual([...e.keys()].sort());
  for (const [k, object] of e) expect({ [k]: a.get(k) }).toEqual({ [k]: object });
}

const base = render(RENDERED.base);
const s3 = render(RENDERED.s3);
const tls = render(RENDERED.tls);

describe('every kustomization under k8s/registry renders with kubectl kustomize', () => {
  const all = kustomizations();

  test('the tree holds the base, the notifications, s3 and tls overlays and the notifications and tls components', () => {
    expect(all).toEqual([
      { dir: 'base', kind: 'Kustomization' },
      { dir: 'components/notifications', kind: 'Component' },
      { dir: 'components/tls', kind: 'Component' },
      { dir: 'overlays/notifications', kind: 'Kustomization' },
      { dir: 'overlays/s3', kind: 'Kustomization' },
      { dir: 'overlays/tls', kind: 'Kustomization' },
    ]);
  });

  test.each(all.filter((k) => k.kind !== 'Component').map((k) => k.dir))(
    '%s: every object is in namespace "registry" and carries the app.kubernetes.io labels',
    (dir) => {
      const objects = render(path.join(REGISTRY_KUSTOMIZE_DIR, dir));
      expect(objects.length).toBeGreaterThan(0);
      for (const object of objects) {
        if (object.kind === 'Namespace') expect(object.metadata.name).toBe(REGISTRY_NAMESPACE);
        else expect(object.metadata.namespace).toBe(REGISTRY_NAMESPACE);
        expect(object.metadata.labels).toMatchObject(LABELS);
      }
      expect(one(objects, 'Namespace').metadata.name).toBe(REGISTRY_NAMESPACE);
    },
  );

  test.each(all.filter((k) => k.kind === 'Component').map((k) => k.dir))(
    'component %s is used by an overlay, so it is rendered and checked',
    (component) => {
      const users = all.filter((k) => {
        const kustomization = parse(
          readFileSync(path.join(REGISTRY_KUSTOMIZE_DIR, k.dir, 'kustomization.yaml'), 'utf8'),
        ) as { components?: string[] };
        return (kustomization.components ?? []).some(
          (c) =>
            path.join(k.dir, c) === component || path.normalize(path.join(k.dir, c)) === component,
        );
      });
      expect(users.length).toBeGreaterThan(0);
    },
  );

  test('no rendered manifest carries a credential: no Secret, no keys in config.yml, no key variables', () => {
    // In config.yml even `secret` is one (http.secret); in objects it is a volume's Secret reference.
    const configCredential =
      /^(accesskey|secretkey|sessiontoken|password|secret|accountkey|credentials)$/i;
    const objectCredential =
      /^(accesskey|secretkey|sessiontoken|password|accountkey|credentials)$/i;
    const credentialEnv = /(ACCESS_KEY|SECRET|PASSWORD|TOKEN|CREDENTIAL)/;
    const findings: string[] = [];
    const scan = (value: unknown, where: string, credential: RegExp): void => {
      if (Array.isArray(value)) value.forEach((v, i) => scan(v, `${where}[${i}]`, credential));
      else if (value !== null && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) {
          if (credential.test(k)) findings.push(`${where}.${k}`);
          scan(v, `${where}.${k}`, credential);
        }
      }
    };
    for (const [name, objects] of Object.entries({ base, s3, tls })) {
      expect(objects.filter((o) => o.kind === 'Secret')).toEqual([]);
      scan(registryConfig(objects), `${name} config.yml`, configCredential);
      for (const env of registryContainer(objects).env ?? []) {
        if (credentialEnv.test(env.name)) findings.push(`${name} env ${env.name}`);
      }
      scan(objects, name, objectCredential);
    }
    expect(findings).toEqual([]);
  });
});

describe('every rendering: images pinned by digest, a NetworkPolicy that opens 5000 only', () => {
  interface NetworkPolicyRule {
    from?: unknown[];
    ports?: { protocol?: string; port?: number | string }[];
  }

  /** Whether a pod-to-pod connection on this port is allowed by the policies selecting the pod. */
  function ingressAllowed(
    objects: readonly K8sObject[],
    podLabels: Record<string, string>,
    port: number,
  ): boolean {
    const policies = objects.filter((o) => o.kind === 'NetworkPolicy');
    const selecting = policies.filter((p) => {
      const spec = p.spec as {
        podSelector: { matchLabels?: Record<string, string> };
        policyTypes?: string[];
      };
      const labels = spec.podSelector.matchLabels ?? {};
      return (
        Object.entries(labels).every(([k, v]) => podLabels[k] === v) &&
        (spec.policyTypes ?? ['Ingress']).includes('Ingress')
      );
    });
    if (selecting.length === 0) return true;
    return selecting.some((p) =>
      ((p.spec as { ingress?: NetworkPolicyRule[] }).ingress ?? []).some(
        (rule) =>
          (rule.from === undefined || rule.from.length === 0) &&
          (rule.ports === undefined ||
            rule.ports.some(
              (r) => (r.protocol ?? 'TCP') === 'TCP' && (r.port === port || r.port === 'registry'),
            )),
      ),
    );
  }

  test.each([
    ['base', base],
    ['overlays/s3', s3],
    ['overlays/tls', tls],
  ])('%s: every image is name:tag@sha256:<digest>', (_name, objects) => {
    const images = registryPodSpec(objects).containers.map((c) => c.image);
    expect(images.length).toBeGreaterThan(0);
    for (const image of images) expect(image).toMatch(/^[^@\s]+:[\w.-]+@sha256:[0-9a-f]{64}$/);
  });

  test.each([
    ['base', base],
    ['overlays/s3', s3],
    ['overlays/tls', tls],
  ])(
    '%s: the registry pod takes 5000 (the API) from anywhere, and not 5001 (the debug server)',
    (_name, objects) => {
      const deployment = one(objects, 'Deployment');
      const podLabels = (
        deployment.spec as { template: { metadata: { labels: Record<string, string> } } }
      ).template.metadata.labels;
      const container = registryPodSpec(objects).containers[0]!;
      expect(containerPort(container, 'registry')).toBe(5000);
      expect(containerPort(container, 'debug')).toBe(5001);
      expect(ingressAllowed(objects, podLabels, 5000)).toBe(true);
      expect(ingressAllowed(objects, podLabels, 5001)).toBe(false);
      expect(one(objects, 'NetworkPolicy').metadata.namespace).toBe(REGISTRY_NAMESPACE);
    },
  );

  test('without the NetworkPolicy, the check sees the debug port open (it can fail)', () => {
    const deployment = one(base, 'Deployment');
    const podLabels = (
      deployment.spec as { template: { metadata: { labels: Record<string, string> } } }
    ).template.metadata.labels;
    expect(
      ingressAllowed(
        base.filter((o) => o.kind !== 'NetworkPolicy'),
        podLabels,
        5001,
      ),
    ).toBe(true);
  });
});

describe('base: filesystem storage, auth on, NodePort 30500', () => {
  const deployment = one(base, 'Deployment') as K8sObject & {
    spec: {
      replicas: number;
      strategy: { type: string };
      selector: { matchLabels: Record<string, string> };
      template: { metadata: { labels: Record<string, string> } };
    };
  };
  const pod = registryPodSpec(base);
  const container = registryContainer(base);
  const config = registryConfig(base);
  const service = one(base, 'Service') as K8sObject & {
    spec: {
      type: string;
      selector: Record<string, string>;
      ports: { name: string; port: number; targetPort: string | number; nodePort: number }[];
    };
  };

  test('the objects are the Namespace, the config, the volume claim, the Deployment, the Service and the NetworkPolicy', () => {
    expect(base.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'ConfigMap/' + one(base, 'ConfigMap').metadata.name,
        'Deployment/registry',
        'Namespace/registry',
        'NetworkPolicy/registry',
        'PersistentVolumeClaim/registry-data',
        'Service/registry',
      ].sort(),
    );
    // The generated name carries a hash of config.yml, so a changed config rolls the pod.
    expect(one(base, 'ConfigMap').metadata.name).toMatch(/^registry-config-[a-z0-9]{10}$/);
    expect(pod.volumes?.find((v) => v.name === 'config')?.configMap?.name).toBe(
      one(base, 'ConfigMap').metadata.name,
    );
  });

  test('one replica, Recreate: the ReadWriteOnce volume is released before the next pod mounts it', () => {
    expect(deployment.spec.replicas).toBe(1);
    expect(deployment.spec.strategy).toEqual({ type: 'Recreate' });
    const pvc = one(base, 'PersistentVolumeClaim') as K8sObject & {
      spec: { accessModes: string[]; resources: { requests: { storage: string } } };
    };
    expect(pvc.spec.accessModes).toEqual(['ReadWriteOnce']);
    expect(pvc.spec.resources.requests.storage).toMatch(/^\d+Gi$/);
  });

  test('the Service and the Deployment select exactly the pod, with the app.kubernetes.io labels', () => {
    const podLabels = deployment.spec.template.metadata.labels;
    expect(podLabels).toMatchObject(LABELS);
    expect(Object.keys(service.spec.selector).length).toBeGreaterThan(0);
    expect(podLabels).toMatchObject(service.spec.selector);
    expect(podLabels).toMatchObject(deployment.spec.selector.matchLabels);
    expect(service.spec.selector).toEqual(deployment.spec.selector.matchLabels);
  });

  test('the Service publishes the registry port on NodePort 30500', () => {
    expect(service.spec.type).toBe('NodePort');
    expect(service.spec.ports).toHaveLength(1);
    const [port] = service.spec.ports;
    expect(port?.port).toBe(5000);
    expect(port?.nodePort).toBe(REGISTRY_DEFAULT_NODE_PORT);
    expect(containerPort(container, port!.targetPort)).toBe(portOf(config.http.addr));
  });

  test('the readiness probe is the debug server /debug/health, the liveness probe the API port', () => {
    const readiness = container.readinessProbe?.httpGet;
    expect(readiness?.path).toBe('/debug/health');
    expect(containerPort(container, readiness!.port)).toBe(portOf(config.http.debug!.addr));
    expect(readiness?.scheme ?? 'HTTP').toBe('HTTP');
    expect(container.livenessProbe?.httpGet).toBeUndefined();
    expect(containerPort(container, container.livenessProbe!.tcpSocket!.port)).toBe(
      portOf(config.http.addr),
    );
    // The debug port is for the kubelet only: the Service does not publish it.
    expect(service.spec.ports.map((p) => containerPort(container, p.targetPort))).not.toContain(
      portOf(config.http.debug!.addr),
    );
  });

  test('non-root, no privileges, read-only root filesystem, RuntimeDefault seccomp', () => {
    expect(pod.securityContext).toMatchObject({
      runAsNonRoot: true,
      seccompProfile: { type: 'RuntimeDefault' },
    });
    for (const id of ['runAsUser', 'runAsGroup', 'fsGroup']) {
      expect(pod.securityContext?.[id]).toEqual(expect.any(Number));
      expect(pod.securityContext?.[id]).toBeGreaterThan(0);
    }
    expect(container.securityContext).toMatchObject({
      allowPrivilegeEscalation: false,
      readOnlyRootFilesystem: true,
      capabilities: { drop: ['ALL'] },
    });
    expect(container.securityContext?.capabilities?.add).toBeUndefined();
    expect(container.securityContext?.privileged).not.toBe(true);
    expect(pod.automountServiceAccountToken).toBe(false);
    // The Service is named "registry": service links would add REGISTRY_* variables, which the
    // registry reads as configuration.
    expect(pod.enableServiceLinks).toBe(false);
    expect(one(base, 'Namespace').metadata.labels?.['pod-security.kubernetes.io/enforce']).toBe(
      'restricted',
    );
  });

  test('the only writable path is the storage volume, mounted where config.yml stores data', () => {
    const writable = (container.volumeMounts ?? []).filter((m) => m.readOnly !== true);
    expect(writable.map((m) => m.mountPath)).toEqual([config.storage.filesystem?.rootdirectory]);
    const volume = pod.volumes?.find((v) => v.name === writable[0]?.name);
    expect(volume?.persistentVolumeClaim?.claimName).toBe('registry-data');
  });

  test('requests and limits for CPU and memory', () => {
    for (const c of pod.containers) {
      expect(Object.keys(c.resources?.requests ?? {}).sort()).toEqual(['cpu', 'memory']);
      expect(Object.keys(c.resources?.limits ?? {}).sort()).toEqual(['cpu', 'memory']);
    }
  });

  test('the image is the official distribution registry 2.8.3, pinned by the digest of its index', () => {
    expect(container.image).toBe(
      'docker.io/library/registry:2.8.3@sha256:a3d8aaa63ed8681a604f1dea0aa03f100d5895b6a58ace528858a7b332415373',
    );
    expect(container.command).toEqual(['registry', 'serve', '/etc/docker/registry/config.yml']);
    const configMount = container.volumeMounts?.find((m) => m.name === 'config');
    expect(configMount).toEqual({
      name: 'config',
      mountPath: '/etc/docker/registry',
      readOnly: true,
    });
  });

  test('htpasswd auth reads the Secret registry-htpasswd, which must exist', () => {
    const volume = pod.volumes?.find((v) => v.secret?.secretName === REGISTRY_HTPASSWD_SECRET.name);
    expect(volume?.secret?.optional).not.toBe(true);
    const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
    expect(mount?.readOnly).toBe(true);
    expect(config.auth?.htpasswd?.path).toBe(`${mount?.mountPath}/${REGISTRY_HTPASSWD_SECRET.key}`);
  });

  test('config.yml: delete enabled, storage-driver health checks, the debug server', () => {
    expect(config.storage.delete).toEqual({ enabled: true });
    expect(config.health?.storagedriver).toMatchObject({ enabled: true });
    expect(config.http.debug?.addr).toMatch(/:\d+$/);
    expect(config.http.tls).toBeUndefined();
  });
});

describe('overlays/s3: S3 storage with the pod IAM role, no volume claim', () => {
  const pod = registryPodSpec(s3);
  const container = registryContainer(s3);
  const config = registryConfig(s3);

  test('no PersistentVolumeClaim and nothing writable in the container', () => {
    expect(s3.filter((o) => o.kind === 'PersistentVolumeClaim')).toEqual([]);
    expect(pod.volumes?.filter((v) => v.persistentVolumeClaim !== undefined)).toEqual([]);
    expect((container.volumeMounts ?? []).filter((m) => m.readOnly !== true)).toEqual([]);
  });

  test('the pod runs as the ServiceAccount the IAM role is bound to', () => {
    const account = one(s3, 'ServiceAccount');
    expect(pod.serviceAccountName).toBe(account.metadata.name);
    expect(account.metadata.namespace).toBe(REGISTRY_NAMESPACE);
  });

  test('config.yml stores in a bucket with no credentials; blobs are served, not redirected', () => {
    expect(Object.keys(config.storage).sort()).toEqual(['delete', 'redirect', 's3']);
    expect(Object.keys(config.storage.s3 ?? {}).sort()).toEqual(['bucket', 'region']);
    expect(config.storage.s3?.bucket).toMatch(/^[a-z0-9][a-z0-9.-]+[a-z0-9]$/);
    expect(config.storage.s3?.region).toMatch(/^[a-z]{2}-[a-z]+-\d$/);
    expect(config.storage.redirect).toEqual({ disable: true });
  });

  test('config.yml is the base one apart from storage, so the two cannot drift apart', () => {
    const withoutStorage = (c: RegistryConfig): Partial<RegistryConfig> => ({ ...c, storage: {} });
    expect(withoutStorage(config)).toEqual(withoutStorage(registryConfig(base)));
    expect(config.storage.delete).toEqual(registryConfig(base).storage.delete);
  });

  test('the image is distribution 3 (2.8 cannot take credentials from a pod IAM role)', () => {
    expect(container.image).toBe(
      'docker.io/library/registry:3.0.0@sha256:6c5666b861f3505b116bb9aa9b25175e71210414bd010d92035ff64018f9457e',
    );
  });

  test('everything else is the base: same Deployment apart from the storage changes', () => {
    const strip = (objects: K8sObject[]): unknown =>
      JSON.parse(
        JSON.stringify(one(objects, 'Deployment'), (k, v: unknown) =>
          ['image', 'serviceAccountName', 'volumes', 'volumeMounts'].includes(k) ? undefined : v,
        ),
      );
    expect(strip(s3)).toEqual(strip(base));
  });
});

describe('overlays/tls (components/tls): HTTPS from a kubernetes.io/tls Secret', () => {
  const container = registryContainer(tls);
  const pod = registryPodSpec(tls);

  test('the certificate and key are the tls.crt and tls.key of the mounted Secret registry-tls', () => {
    const volume = pod.volumes?.find((v) => v.secret?.secretName === 'registry-tls');
    const mount = container.volumeMounts?.find((m) => m.name === volume?.name);
    expect(mount?.readOnly).toBe(true);
    const env = Object.fromEntries((container.env ?? []).map((e) => [e.name, e.value]));
    expect(env).toEqual({
      REGISTRY_HTTP_TLS_CERTIFICATE: `${mount?.mountPath}/tls.crt`,
      REGISTRY_HTTP_TLS_KEY: `${mount?.mountPath}/tls.key`,
    });
  });

  test('probes are unchanged: the debug server stays plain HTTP', () => {
    expect(container.readinessProbe).toEqual(registryContainer(base).readinessProbe);
    expect(container.livenessProbe).toEqual(registryContainer(base).livenessProbe);
  });
});

describe('registryManifests (lib/k8s/registry.ts) equals kubectl kustomize', () => {
  const committedS3 = (() => {
    const overlay = path.join(REGISTRY_KUSTOMIZE_DIR, 'overlays', 's3');
    const { storage } = parse(readFileSync(path.join(overlay, 'config.yml'), 'utf8')) as {
      storage: { s3: { bucket: string; region: string } };
    };
    const account = parse(readFileSync(path.join(overlay, 'serviceaccount.yaml'), 'utf8')) as {
      metadata: { name: string };
    };
    return {
      storage: 's3' as const,
      bucket: storage.s3.bucket,
      region: storage.s3.region,
      serviceAccountName: account.metadata.name,
    };
  })();

  test('filesystem: the objects of k8s/registry/base, Namespace first', () => {
    const manifests = registryManifests({ storage: 'filesystem' });
    expectSameObjects(manifests, base);
    expect(manifests[0]?.kind).toBe('Namespace');
  });

  test('s3 with the values committed in the overlay: the objects of k8s/registry/overlays/s3', () => {
    const manifests = registryManifests(committedS3);
    expectSameObjects(manifests, s3);
    expect(manifests[0]?.kind).toBe('Namespace');
  });

  test('overlays/s3/config.yml survives the yaml library unchanged (registryManifests edits it)', () => {
    const text = readFileSync(path.join(RENDERED.s3, 'config.yml'), 'utf8');
    expect(parseDocument(text).toString()).toBe(text);
  });

  test('other values equal a copy of the overlay edited by hand, plus the README nodePort patch', () => {
    const values = {
      storage: 's3' as const,
      bucket: 'acme-images.prod',
      region: 'eu-west-3',
      serviceAccountName: 'image-store',
    };
    const dir = tempDir('registry-overlay');
    // What a reader does to the overlay: bucket and region in config.yml, the account's name.
    const edit: Record<string, (text: string) => string> = {
      'config.yml': (text) =>
        text
          .replace(`bucket: ${committedS3.bucket}\n`, `bucket: ${values.bucket}\n`)
          .replace(`region: ${committedS3.region}\n`, `region: ${values.region}\n`),
      'serviceaccount.yaml': (text) => setIn(text, ['metadata', 'name'], values.serviceAccountName),
      'deployment-patch.yaml': (text) =>
        setIn(text, ['spec', 'template', 'spec', 'serviceAccountName'], values.serviceAccountName),
      'kustomization.yaml': (text) =>
        text.replace('- ../../base\n', `- ${relativePath(dir, RENDERED.base)}\n`),
    };
    expect(readdirSync(RENDERED.s3).sort()).toEqual(Object.keys(edit).sort());
    for (const [file, change] of Object.entries(edit)) {
      const text = readFileSync(path.join(RENDERED.s3, file), 'utf8');
      expect(change(text)).not.toBe(text);
      writeFileSync(path.join(dir, file), change(text));
    }
    const patched = tempDir('registry-port');
    writeFileSync(
      path.join(patched, 'kustomization.yaml'),
      readmeNodePortOverlay().replace('- ../../base\n', `- ${relativePath(patched, dir)}\n`),
    );
    const expected = render(patched);
    expect(one(expected, 'ServiceAccount').metadata.name).toBe('image-store');
    expect(registryConfig(expected).storage.s3).toEqual({
      bucket: 'acme-images.prod',
      region: 'eu-west-3',
    });
    expect(expectedNodePort(expected)).toBe(31500);

    expectSameObjects(registryManifests(values, { nodePort: 31500 }), expected);
  });

  test('filesystem with the README nodePort patch', () => {
    const dir = tempDir('registry-port');
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      readmeNodePortOverlay().replace('- ../../base\n', `- ${relativePath(dir, RENDERED.base)}\n`),
    );
    const expected = render(dir);
    expect(expectedNodePort(expected)).toBe(31500);
    expectSameObjects(registryManifests({ storage: 'filesystem' }, { nodePort: 31500 }), expected);
  });

  test('reads k8s/registry relative to its own file, whatever the working directory', () => {
    const cwd = process.cwd();
    process.chdir(tempDir('elsewhere'));
    try {
      expectSameObjects(registryManifests({ storage: 'filesystem' }), base);
    } finally {
      process.chdir(cwd);
    }
  });

  test('unresolved tokens skip validation and land in config.yml', () => {
    const bucket = Lazy.string({ produce: () => 'made-later' });
    const region = Lazy.string({ produce: () => 'us-west-2' });
    const manifests = registryManifests({ ...committedS3, bucket, region });
    const config = registryConfig(manifests);
    expect(config.storage.s3).toEqual({ bucket, region });
  });

  test.each([
    [{ storage: 'filesystem' }, { nodePort: 80 }, /nodePort 80.*30000-32767/],
    [{ storage: 'filesystem' }, { nodePort: 30500.5 }, /nodePort 30500\.5/],
    [{ storage: 'filesystem' }, { nodePort: 32768 }, /nodePort 32768/],
    [{ storage: 'disk' }, {}, /storage "disk".*'filesystem'.*'s3'/],
    [
      {
        ...{ storage: 's3', region: 'us-east-1', serviceAccountName: 'registry' },
        bucket: 'arn:aws:s3:::b',
      },
      {},
      /bucket "arn:aws:s3:::b".*not an ARN/,
    ],
    [
      { storage: 's3', bucket: 'Upper', region: 'us-east-1', serviceAccountName: 'registry' },
      {},
      /bucket "Upper"/,
    ],
    [
      { storage: 's3', bucket: 'a..b', region: 'us-east-1', serviceAccountName: 'registry' },
      {},
      /bucket "a\.\.b"/,
    ],
    [
      { storage: 's3', bucket: '10.0.0.1', region: 'us-east-1', serviceAccountName: 'registry' },
      {},
      /bucket "10\.0\.0\.1"/,
    ],
    [
      { storage: 's3', bucket: 'ok-bucket', region: 'US-EAST-1', serviceAccountName: 'registry' },
      {},
      /region "US-EAST-1".*"us-east-1"/,
    ],
    [
      {
        storage: 's3',
        bucket: 'ok-bucket',
        region: 'us-east-1',
        serviceAccountName: 'Registry_SA',
      },
      {},
      /serviceAccountName "Registry_SA"/,
    ],
  ] as [never, never, RegExp][])(
    'rejects %j %j naming the value and the fix',
    (storage, options, message) => {
      expect(() => registryManifests(storage, options)).toThrow(RegistryManifestError);
      expect(() => registryManifests(storage, options)).toThrow(message);
    },
  );
});

function setIn(text: string, where: string[], value: string): string {
  const doc = parseDocument(text);
  expect(doc.hasIn(where)).toBe(true);
  doc.setIn(where, value);
  return doc.toString();
}

/** The overlay that k8s/registry/README.md tells readers to write to change the NodePort. */
function readmeNodePortOverlay(): string {
  const readme = readFileSync(path.join(REGISTRY_KUSTOMIZE_DIR, 'README.md'), 'utf8');
  const block = [...readme.matchAll(/```yaml\n([\s\S]*?)```/g)]
    .map((m) => m[1] ?? '')
    .find((text) => text.includes('/spec/ports/0/nodePort'));
  if (block === undefined) throw new Error('k8s/registry/README.md shows no nodePort overlay');
  return block;
}

function expectedNodePort(objects: K8sObject[]): number | undefined {
  const service = one(objects, 'Service') as K8sObject & {
    spec: { ports: { nodePort?: number }[] };
  };
  return service.spec.ports[0]?.nodePort;
}
