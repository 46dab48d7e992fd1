import { readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { REPO_ROOT } from '../support/app';
import {
  KubeApiServer,
  KubeDeployment,
  requestStatus,
  startKubeApiServer,
} from '../support/kube-apiserver';
import { RbacRequest, rbacAuthorizer } from '../support/kube-rbac';
import {
  K8S,
  find,
  kustomize,
  ofKind,
  relativePath,
  removeTempDirs,
  tempDir,
  templateLabels,
} from './kubectl';

afterAll(removeTempDirs);

// Who may do what: the deployer's Roles under Kubernetes' RBAC rules (test/support/kube-rbac.ts,
// and the in-test API server enforcing them), and who may reach the deployer under
// NetworkPolicy's rules.

const BASE = path.join(K8S, 'deployer', 'base');
const base = kustomize(BASE);
/** The user a pod of ServiceAccount ship-deployer in namespace ship-deployer is. */
const DEPLOYER_SA = 'system:serviceaccount:ship-deployer:ship-deployer';
const authorize = rbacAuthorizer(base);
const config = parse(
  (ofKind(base, 'ConfigMap')[0]!.data as Record<string, string>)['config.yaml']!,
) as { environments: { namespace: string }[] };
const ENVIRONMENT_NAMESPACES = config.environments.map((e) => e.namespace);

function req(
  verb: string,
  resource: string,
  name: string | undefined,
  namespace: string | undefined,
  user = DEPLOYER_SA,
): RbacRequest {
  const apiGroup = ['deployments', 'replicasets'].includes(resource) ? 'apps' : '';
  return { user, verb, apiGroup, resource, namespace, name };
}

describe('the deployer’s Roles', () => {
  test('Given the base, when rendered, then each environment namespace of config.yaml has a Role ship-deployer whose rules equal k8s/rbac/deployer’s, bound to the ServiceAccount only', () => {
    const aws = find(kustomize(path.join(K8S, 'rbac', 'deployer')), 'Role', 'dockercoins-deployer');
    const roles = ofKind(base, 'Role');
    const bindings = ofKind(base, 'RoleBinding');
    expect(roles.map((r) => r.metadata.namespace).sort()).toEqual(
      [...ENVIRONMENT_NAMESPACES].sort(),
    );
    expect(bindings.map((b) => b.metadata.namespace).sort()).toEqual(
      [...ENVIRONMENT_NAMESPACES].sort(),
    );
    for (const role of roles) {
      expect(role.metadata.name).toBe('ship-deployer');
      expect(role.rules).toEqual(aws.rules);
    }
    for (const binding of bindings) {
      expect(binding.roleRef).toEqual({
        apiGroup: 'rbac.authorization.k8s.io',
        kind: 'Role',
        name: 'ship-deployer',
      });
      expect(binding.subjects).toEqual([
        { kind: 'ServiceAccount', name: 'ship-deployer', namespace: 'ship-deployer' },
      ]);
    }
    expect(ofKind(base, 'ClusterRole')).toEqual([]);
    expect(ofKind(base, 'ClusterRoleBinding')).toEqual([]);
  });

  const cases: [string, RbacRequest, boolean][] = [];
  for (const ns of ['dockercoins', 'dockercoins-staging']) {
    cases.push(
      [`get hasher in ${ns}`, req('get', 'deployments', 'hasher', ns), true],
      [`patch hasher in ${ns}`, req('patch', 'deployments', 'hasher', ns), true],
      [`patch webui in ${ns}`, req('patch', 'deployments', 'webui', ns), true],
      [`get redis in ${ns}`, req('get', 'deployments', 'redis', ns), false],
      [`patch redis in ${ns}`, req('patch', 'deployments', 'redis', ns), false],
      [`list Deployments in ${ns}`, req('list', 'deployments', undefined, ns), false],
      [`update hasher in ${ns}`, req('update', 'deployments', 'hasher', ns), false],
      [`list ReplicaSets in ${ns}`, req('list', 'replicasets', undefined, ns), true],
      [`list pods in ${ns}`, req('list', 'pods', undefined, ns), true],
      [`list events in ${ns}`, req('list', 'events', undefined, ns), true],
      [`get a Secret in ${ns}`, req('get', 'secrets', 'registry-pull', ns), false],
      [`list Secrets in ${ns}`, req('list', 'secrets', undefined, ns), false],
      [`exec into a pod in ${ns}`, req('create', 'pods/exec', 'hasher-1', ns), false],
    );
  }
  cases.push(
    ['get hasher in kube-system', req('get', 'deployments', 'hasher', 'kube-system'), false],
    ['get hasher in ship-deployer', req('get', 'deployments', 'hasher', 'ship-deployer'), false],
    [
      'read its own Secrets',
      req('get', 'secrets', 'ship-deployer-registry', 'ship-deployer'),
      false,
    ],
    ['patch the registry', req('patch', 'deployments', 'registry', 'registry'), false],
    ['list pods cluster-wide', req('list', 'pods', undefined, undefined), false],
    [
      'a ServiceAccount of the same name in another namespace',
      req(
        'patch',
        'deployments',
        'hasher',
        'dockercoins',
        'system:serviceaccount:dockercoins:ship-deployer',
      ),
      false,
    ],
    [
      'the default ServiceAccount of ship-deployer',
      req(
        'patch',
        'deployments',
        'hasher',
        'dockercoins',
        'system:serviceaccount:ship-deployer:default',
      ),
      false,
    ],
  );

  test.each(cases.map(([name, r, allowed]) => [name, allowed, r] as const))(
    '%s: allowed is %s',
    (_name, allowed, r) => {
      expect(authorize(r)).toBe(allowed);
    },
  );
});

describe('the deployer’s Roles enforced by the in-test API server, with the ServiceAccount’s token', () => {
  let server: KubeApiServer;
  beforeAll(async () => {
    server = await startKubeApiServer({
      clusterName: 'dockercoins',
      staticTokens: { 'sa-token': DEPLOYER_SA },
      authorize: (attributes) => authorize(attributes),
    });
    const fixture = parse(
      readFileSync(
        path.join(REPO_ROOT, 'test', 'fixtures', 'kube', 'hasher-deployment.yaml'),
        'utf8',
      ),
    ) as KubeDeployment;
    fixture.metadata = { ...fixture.metadata, namespace: undefined };
    for (const namespace of ['dockercoins-staging', 'kube-system']) {
      server.putDeployment(fixture, { namespace });
    }
    server.putDeployment(
      { ...fixture, metadata: { ...fixture.metadata, name: 'redis' } },
      { namespace: 'dockercoins-staging' },
    );
  });
  afterAll(() => server.stop());

  const call = (method: string, urlPath: string, body?: unknown): Promise<number> =>
    requestStatus(server, 'sa-token', method, urlPath, body);

  const apps = '/apis/apps/v1/namespaces';
  test.each([
    ['GET', `${apps}/dockercoins-staging/deployments/hasher`, undefined, 200],
    [
      'PATCH',
      `${apps}/dockercoins-staging/deployments/hasher`,
      { metadata: { annotations: { 'kubernetes.io/change-cause': 'test' } } },
      200,
    ],
    ['GET', `${apps}/dockercoins-staging/replicasets`, undefined, 200],
    ['GET', `${apps}/dockercoins-staging/deployments/redis`, undefined, 403],
    ['GET', `${apps}/kube-system/deployments/hasher`, undefined, 403],
  ])('%s %s %j → %s', async (method, urlPath, body, status) => {
    expect(await call(method, urlPath, body)).toBe(status);
  });
});

// ---------------------------------------------------------------------------------------------
// NetworkPolicy, evaluated as https://kubernetes.io/docs/concepts/services-networking/network-policies/
// defines it: a pod selected by no Ingress policy accepts everything; a selected pod accepts a
// connection when one rule of one policy selecting it matches both the peer and the port. In a
// peer, namespaceSelector and podSelector together mean both; namespaceSelector alone means any
// pod of those namespaces; podSelector alone means pods of the policy's own namespace. Every
// namespace carries the label kubernetes.io/metadata.name (set by the API server).

interface Pod {
  readonly namespace: string;
  readonly labels: Record<string, string>;
}
interface LabelSelector {
  matchLabels?: Record<string, string>;
  matchExpressions?: unknown[];
}
interface Peer {
  podSelector?: LabelSelector;
  namespaceSelector?: LabelSelector;
  ipBlock?: unknown;
}
interface PolicySpec {
  podSelector: LabelSelector;
  policyTypes?: string[];
  ingress?: { from?: Peer[]; ports?: { protocol?: string; port?: number | string }[] }[];
}

function selects(selector: LabelSelector, labels: Record<string, string>): boolean {
  if (selector.matchExpressions !== undefined) throw new Error('matchExpressions: not evaluated');
  return Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
}

function peerMatches(peer: Peer, policyNamespace: string, from: Pod): boolean {
  if (peer.ipBlock !== undefined) throw new Error('ipBlock: not evaluated');
  const namespaceLabels = { 'kubernetes.io/metadata.name': from.namespace };
  const namespaceOk =
    peer.namespaceSelector === undefined
      ? from.namespace === policyNamespace
      : selects(peer.namespaceSelector, namespaceLabels);
  const podOk = peer.podSelector === undefined || selects(peer.podSelector, from.labels);
  return namespaceOk && podOk;
}

function ingressAllowed(
  objects: readonly KubernetesObject[],
  to: Pod,
  from: Pod,
  port: number,
): boolean {
  const policies = ofKind(objects, 'NetworkPolicy').filter(
    (p) =>
      p.metadata.namespace === to.namespace &&
      selects((p.spec as PolicySpec).podSelector, to.labels) &&
      ((p.spec as PolicySpec).policyTypes ?? ['Ingress']).includes('Ingress'),
  );
  if (policies.length === 0) return true;
  return policies.some((p) =>
    ((p.spec as PolicySpec).ingress ?? []).some(
      (rule) =>
        (rule.from === undefined ||
          rule.from.some((peer) => peerMatches(peer, p.metadata.namespace!, from))) &&
        (rule.ports === undefined ||
          rule.ports.some((p2) => (p2.protocol ?? 'TCP') === 'TCP' && p2.port === port)),
    ),
  );
}

describe('the deployer’s NetworkPolicy', () => {
  const deployerPod: Pod = {
    namespace: 'ship-deployer',
    labels: templateLabels(find(base, 'Deployment', 'ship-deployer')),
  };
  // The registry's pods as k8s/registry renders them.
  const registryPod: Pod = {
    namespace: 'registry',
    labels: templateLabels(
      find(
        kustomize(path.join(K8S, 'registry', 'overlays', 'notifications')),
        'Deployment',
        'registry',
      ),
    ),
  };
  const prometheus: Pod = {
    namespace: 'monitoring',
    labels: { 'app.kubernetes.io/name': 'prometheus' },
  };

  function withMetricsComponent(): KubernetesObject[] {
    const dir = tempDir('deployer-netpol');
    writeFileSync(
      path.join(dir, 'kustomization.yaml'),
      [
        'apiVersion: kustomize.config.k8s.io/v1beta1',
        'kind: Kustomization',
        `resources: [${relativePath(dir, BASE)}]`,
        `components: [${relativePath(dir, path.join(K8S, 'deployer', 'components', 'metrics-scraping'))}]`,
        '',
      ].join('\n'),
    );
    return kustomize(dir);
  }

  test('Given the base, when rendered, then the policy selects the deployer’s pods', () => {
    const policy = find(base, 'NetworkPolicy', 'ship-deployer');
    expect(selects((policy.spec as PolicySpec).podSelector, deployerPod.labels)).toBe(true);
    expect(
      selects((policy.spec as PolicySpec).podSelector, { 'app.kubernetes.io/name': 'hasher' }),
    ).toBe(false);
  });

  const peers: [string, Pod, number, boolean][] = [
    ['the registry on 8080', registryPod, 8080, true],
    ['the registry on another port', registryPod, 9090, false],
    [
      'another pod of namespace registry',
      { namespace: 'registry', labels: { app: 'debug' } },
      8080,
      false,
    ],
    [
      'a pod labelled as the registry in another namespace',
      { namespace: 'dockercoins', labels: registryPod.labels },
      8080,
      false,
    ],
    [
      'a DockerCoins pod',
      { namespace: 'dockercoins', labels: { 'app.kubernetes.io/name': 'webui' } },
      8080,
      false,
    ],
    [
      'another pod of ship-deployer',
      { namespace: 'ship-deployer', labels: { app: 'x' } },
      8080,
      false,
    ],
    ['Prometheus in monitoring (no component)', prometheus, 8080, false],
  ];
  test.each(peers.map(([name, from, port, allowed]) => [name, allowed, from, port] as const))(
    'Given the base, when %s connects, then allowed is %s',
    (_name, allowed, from, port) => {
      expect(ingressAllowed(base, deployerPod, from, port)).toBe(allowed);
    },
  );

  test('Given the metrics-scraping component, when Prometheus in monitoring connects to 8080, then it is admitted, and still nothing else new is', () => {
    const objects = withMetricsComponent();
    expect(ingressAllowed(objects, deployerPod, prometheus, 8080)).toBe(true);
    expect(ingressAllowed(objects, deployerPod, registryPod, 8080)).toBe(true);
    expect(
      ingressAllowed(objects, deployerPod, { ...prometheus, namespace: 'default' }, 8080),
    ).toBe(false);
    expect(ingressAllowed(objects, deployerPod, prometheus, 9090)).toBe(false);
  });
});
