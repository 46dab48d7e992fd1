import { writeFileSync } from 'node:fs';
import { createServer, IncomingHttpHeaders, Server } from 'node:http';
import * as path from 'node:path';
import { parse, stringify } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { REGISTRY_KUSTOMIZE_DIR } from '../../lib/k8s/registry';
import { Buildah, fixtureContext } from '../support/buildah';
import { RegistryUser, RunningRegistry, freePort, startRegistry } from '../support/registry';
import {
  K8S,
  differences,
  kustomize,
  ofKind,
  relativePath,
  removeTempDirs,
  tempDir,
} from './kubectl';
import { RENDERED, registryConfig, registryContainer } from './registry-support';

jest.setTimeout(120_000);
afterAll(removeTempDirs);

// The registry's notifications to the in-cluster deployer (k8s/registry/components/notifications),
// as `kubectl kustomize` renders them, run by the real distribution registry (Debian's
// docker-registry 2.8): an image pushed with buildah makes the registry POST the manifest's event,
// with the Authorization header from the Secret, to a receiver on 127.0.0.1 standing in for the
// deployer's Service; and no blob event.

const OVERLAY = path.join(REGISTRY_KUSTOMIZE_DIR, 'overlays', 'notifications');
/** The endpoint of the issue 17 contract: the deployer's Service. */
const DEPLOYER_URL = 'http://ship-deployer.ship-deployer.svc.cluster.local:8080/v1/registry-events';
const TOKEN_SECRET = { name: 'ship-deployer-notification', key: 'token' };

interface EnvVar {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string; optional?: boolean } };
}
interface Endpoint {
  name: string;
  url: string;
  headers: Record<string, string[]>;
  timeout: string;
  threshold: number;
  backoff: string;
  ignoredmediatypes: string[];
}

const rendered = kustomize(OVERLAY);
const base = kustomize(RENDERED.base);
const env = (registryContainer(rendered).env ?? []) as EnvVar[];
const endpointsVar = env.find((e) => e.name === 'REGISTRY_NOTIFICATIONS_ENDPOINTS');

/**
 * The container's environment as the kubelet makes it: `valueFrom.secretKeyRef` read from
 * `secrets`, then `$(NAME)` in a value replaced by the variable NAME defined earlier in the list
 * (left as it is when there is none), `$$` an escaped `$`
 * (k8s.io/kubernetes third_party/forked/golang/expansion).
 */
function kubeletEnv(
  vars: readonly EnvVar[],
  secrets: Record<string, Record<string, string>>,
): Record<string, string> {
  const made: Record<string, string> = {};
  for (const v of vars) {
    if (v.valueFrom?.secretKeyRef !== undefined) {
      const { name, key } = v.valueFrom.secretKeyRef;
      const value = secrets[name]?.[key];
      if (value === undefined)
        throw new Error(`Secret ${name} has no key ${key}: the pod would not start`);
      made[v.name] = value;
    } else {
      made[v.name] = (v.value ?? '').replace(
        /\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)/g,
        (all, ref?: string) => (ref === undefined ? '$' : (made[ref] ?? all)),
      );
    }
  }
  return made;
}

describe('the rendered notifications overlay', () => {
  test('Given the overlay, when compared with the base, then only the registry container’s environment differs', () => {
    const deployment = (objects: KubernetesObject[]): KubernetesObject =>
      ofKind(objects, 'Deployment')[0]!;
    expect(differences(deployment(base), deployment(rendered))).toEqual([
      'spec.template.spec.containers[0].env',
    ]);
    const others = (objects: KubernetesObject[]): KubernetesObject[] =>
      objects.filter((o) => o.kind !== 'Deployment');
    expect(others(rendered)).toEqual(others(base));
  });

  test('Given the environment, when read, then the token comes from the Secret ship-deployer-notification, before the endpoint that uses it, under a name the registry does not read', () => {
    expect(env.map((e) => e.name)).toEqual([
      'SHIP_NOTIFICATION_TOKEN',
      'REGISTRY_NOTIFICATIONS_ENDPOINTS',
    ]);
    expect(env[0]).toEqual({
      name: 'SHIP_NOTIFICATION_TOKEN',
      valueFrom: { secretKeyRef: TOKEN_SECRET },
    });
  });

  test('Given REGISTRY_NOTIFICATIONS_ENDPOINTS, when parsed as YAML, then it is one endpoint: the deployer’s URL, a Bearer header from the token, no blob events, bounded timeout and backoff', () => {
    const endpoints = parse(endpointsVar!.value!) as Endpoint[];
    expect(endpoints).toEqual([
      {
        name: 'ship-deployer',
        url: DEPLOYER_URL,
        headers: { Authorization: ['Bearer $(SHIP_NOTIFICATION_TOKEN)'] },
        timeout: '5s',
        threshold: 5,
        backoff: '10s',
        ignoredmediatypes: ['application/octet-stream'],
      },
    ]);
  });

  test('Given the overlay and the deployer, when rendered, then no Secret is among the objects and no ConfigMap holds a token, a header or a password', () => {
    const all = [...rendered, ...kustomize(path.join(K8S, 'deployer', 'base'))];
    expect(all.filter((o) => o.kind === 'Secret')).toEqual([]);
    // Every ConfigMap key holds YAML (config.yml, config.yaml): its keys and values, comments
    // aside, name no credential and carry no header value.
    const findings: string[] = [];
    const scan = (value: unknown, where: string): void => {
      if (Array.isArray(value)) value.forEach((v, i) => scan(v, `${where}[${i}]`));
      else if (value !== null && typeof value === 'object') {
        for (const [k, v] of Object.entries(value)) {
          if (/^(authorization|token|password|secret|credentials)$/i.test(k))
            findings.push(`${where}.${k}`);
          scan(v, `${where}.${k}`);
        }
      } else if (typeof value === 'string' && /^(bearer|basic) /i.test(value)) {
        findings.push(`${where} = ${value}`);
      }
    };
    const configMaps = ofKind(all, 'ConfigMap');
    expect(
      configMaps
        .map((c) => Object.keys(c.data as object))
        .flat()
        .sort(),
    ).toEqual(['config.yaml', 'config.yml']);
    for (const configMap of configMaps) {
      for (const [key, text] of Object.entries(configMap.data as Record<string, string>)) {
        scan(parse(text), `${configMap.metadata.name}/${key}`);
      }
    }
    expect(findings).toEqual([]);
    // The registry's config.yml is the base's: the endpoint lives in the environment only.
    expect(registryConfig(rendered)).toEqual(registryConfig(base));
    expect(registryConfig(rendered).notifications).toBeUndefined();
  });

  test('Given the component on the tls overlay (the combination docs/on-prem.md describes), when rendered, then the token is still defined before the endpoint that uses it, and TLS’s variables stay', () => {
    const dir = tempDir('registry-notifications-tls');
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${relativePath(dir, RENDERED.tls)}]`,
        `components: [${relativePath(dir, path.join(REGISTRY_KUSTOMIZE_DIR, 'components', 'notifications'))}]`,
        '',
      ].join('\n'),
    );
    const names = ((registryContainer(kustomize(dir)).env ?? []) as EnvVar[]).map((e) => e.name);
    expect(names).toEqual(
      expect.arrayContaining([
        'REGISTRY_HTTP_TLS_CERTIFICATE',
        'REGISTRY_HTTP_TLS_KEY',
        'SHIP_NOTIFICATION_TOKEN',
        'REGISTRY_NOTIFICATIONS_ENDPOINTS',
      ]),
    );
    expect(names.indexOf('SHIP_NOTIFICATION_TOKEN')).toBeLessThan(
      names.indexOf('REGISTRY_NOTIFICATIONS_ENDPOINTS'),
    );
  });

  test('Given the environment, when expanded as the kubelet does with a token, then the header carries it, and without the Secret the pod could not start', () => {
    const made = kubeletEnv(env, { [TOKEN_SECRET.name]: { token: 'abc123' } });
    const endpoints = parse(made.REGISTRY_NOTIFICATIONS_ENDPOINTS!) as Endpoint[];
    expect(endpoints[0]!.headers).toEqual({ Authorization: ['Bearer abc123'] });
    expect(() => kubeletEnv(env, {})).toThrow(/ship-deployer-notification has no key token/);
  });
});

interface Received {
  headers: IncomingHttpHeaders;
  url: string;
  body: {
    events: { action: string; target: { mediaType: string; repository: string; tag?: string } }[];
  };
}

/** A loopback HTTP server standing in for the deployer: it records every request and answers 200. */
async function receiver(): Promise<{ url: string; received: Received[]; server: Server }> {
  const received: Received[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({
        headers: req.headers,
        url: req.url ?? '',
        body: JSON.parse(body) as Received['body'],
      });
      res.writeHead(200).end();
    });
  });
  const port = await freePort();
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${port}/v1/registry-events`, received, server };
}

async function until(what: string, done: () => boolean, log: () => string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!done()) {
    if (Date.now() > deadline)
      throw new Error(`${what} did not happen within 30s; registry log:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

describe('the real registry with the rendered notifications', () => {
  const user: RegistryUser = { username: 'ci', password: 'a password for the test' };
  const token = 'f'.repeat(16) + '0123456789abcdef';
  const buildah = new Buildah();
  const baseImage = buildah.baseImage();
  const cleanup: (() => Promise<void>)[] = [];
  afterAll(async () => {
    for (const stop of cleanup) await stop();
  });

  /**
   * Runs docker-registry with the rendered config.yml and the environment the kubelet would give
   * it, the deployer's URL replaced by the receiver's (the only change besides startRegistry's
   * addresses and paths), pushes one image, and returns what the receiver got once the manifest's
   * event arrived.
   */
  async function pushAndReceive(
    vars: readonly EnvVar[],
    repository: string,
  ): Promise<{ received: Received[]; registry: RunningRegistry }> {
    const { url, received, server } = await receiver();
    cleanup.push(() => new Promise((resolve) => server.close(() => resolve())));
    const made = kubeletEnv(vars, { [TOKEN_SECRET.name]: { token } });
    expect(made.REGISTRY_NOTIFICATIONS_ENDPOINTS).toContain(DEPLOYER_URL);
    made.REGISTRY_NOTIFICATIONS_ENDPOINTS = made
      .REGISTRY_NOTIFICATIONS_ENDPOINTS!.split(DEPLOYER_URL)
      .join(url);
    const config = structuredClone(registryConfig(rendered));
    config.http.debug = { addr: `127.0.0.1:${await freePort()}` };
    const registry = await startRegistry({ config, users: [user], env: made });
    cleanup.push(() => registry.stop());

    const image = `${registry.host}/${repository}:6e0de7938dda`;
    buildah.bud(fixtureContext(baseImage, repository), image);
    buildah.push(image, image, `${user.username}:${user.password}`);
    // The endpoint's queue is sent in order: once the manifest's event (the push's last request)
    // is in, any blob event would have come before it.
    await until(
      'the manifest push event',
      () => received.some((r) => r.body.events.some((e) => e.target.tag === '6e0de7938dda')),
      () => registry.log(),
    );
    return { received, registry };
  }

  test('Given an image pushed, when the registry notifies, then the receiver gets the tagged manifest push with the Secret’s Bearer token, and no blob event', async () => {
    const { received, registry } = await pushAndReceive(env, 'hasher');
    const events = received.flatMap((r) => r.body.events);
    const pushes = events.filter((e) => e.action === 'push');
    const tagged = pushes.filter((e) => e.target.tag === '6e0de7938dda');
    expect(tagged.map((e) => [e.action, e.target.repository, e.target.tag])).toEqual([
      ['push', 'hasher', '6e0de7938dda'],
    ]);
    expect(tagged[0]!.target.mediaType).toMatch(/manifest/);
    expect(events.filter((e) => e.target.mediaType === 'application/octet-stream')).toEqual([]);
    for (const request of received) {
      expect(request.url).toBe('/v1/registry-events');
      expect(request.headers.authorization).toBe(`Bearer ${token}`);
      expect(request.headers['content-type']).toBe(
        'application/vnd.docker.distribution.events.v1+json',
      );
    }
    // What docs/on-prem.md warns about: the registry writes the header to its log at start.
    expect(registry.log()).toContain(token);
  });

  test('Given the same endpoint without ignoredmediatypes, when an image is pushed, then blob events arrive too (the filter is what keeps them out)', async () => {
    const endpoints = parse(endpointsVar!.value!) as Partial<Endpoint>[];
    delete endpoints[0]!.ignoredmediatypes;
    const unfiltered = env.map((e) =>
      e === endpointsVar ? { ...e, value: stringify(endpoints) } : e,
    );
    const { received } = await pushAndReceive(unfiltered, 'rng');
    const events = received.flatMap((r) => r.body.events);
    expect(events.some((e) => e.target.mediaType === 'application/octet-stream')).toBe(true);
  });
});
