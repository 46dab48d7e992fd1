import * as path from 'node:path';
import { parse } from 'yaml';
import { readFileSync } from 'node:fs';
import { DEPLOYER_GROUP, deployerRbacManifests } from '../../lib/k8s/dockercoins';
import { REPO_ROOT } from '../support/app';
import {
  KubeApiServer,
  KubeDeployment,
  requestStatus,
  startKubeApiServer,
} from '../support/kube-apiserver';
import { RbacRequest, rbacAuthorizer } from '../support/kube-rbac';
import { K8S, kustomize } from './kubectl';

/**
 * The deployer's Role (k8s/rbac/deployer), as `kubectl kustomize` renders it, checked by RBAC's
 * own rules: what it allows the group the EKS access entry maps the deployer's role to, and what
 * it refuses (secrets, exec, other namespaces, anything cluster-wide).
 */
const DEPLOYER = 'arn:aws:sts::123456789012:assumed-role/deployer/fn';
const objects = kustomize(path.join(K8S, 'rbac', 'deployer'));
const authorize = rbacAuthorizer(objects, { [DEPLOYER]: [DEPLOYER_GROUP] });

function req(
  verb: string,
  resource: string,
  name?: string,
  options: { apiGroup?: string; namespace?: string | null; user?: string } = {},
): RbacRequest {
  const apiGroup =
    options.apiGroup ?? (['deployments', 'replicasets'].includes(resource) ? 'apps' : '');
  return {
    user: options.user ?? DEPLOYER,
    verb,
    apiGroup,
    resource,
    namespace: options.namespace === null ? undefined : (options.namespace ?? 'dockercoins'),
    name,
  };
}

describe('k8s/rbac/deployer under RBAC', () => {
  test.each<[string, RbacRequest, boolean]>([
    ['get a built Deployment', req('get', 'deployments', 'hasher'), true],
    ['patch a built Deployment', req('patch', 'deployments', 'worker'), true],
    ['get redis (no build of ours)', req('get', 'deployments', 'redis'), false],
    ['patch redis', req('patch', 'deployments', 'redis'), false],
    ['list Deployments', req('list', 'deployments'), false],
    ['update (PUT) a Deployment', req('update', 'deployments', 'hasher'), false],
    ['delete a Deployment', req('delete', 'deployments', 'hasher'), false],
    ['create a Deployment', req('create', 'deployments'), false],
    ['list ReplicaSets (verification)', req('list', 'replicasets'), true],
    [
      'get a ReplicaSet (rollback reads its template)',
      req('get', 'replicasets', 'hasher-5d4f'),
      true,
    ],
    ['watch ReplicaSets', req('watch', 'replicasets'), false],
    ['list pods (verification)', req('list', 'pods'), true],
    ['get a pod', req('get', 'pods', 'hasher-5d4f-abcde'), true],
    ['delete a pod', req('delete', 'pods', 'hasher-5d4f-abcde'), false],
    ['exec into a pod', req('create', 'pods/exec', 'hasher-5d4f-abcde'), false],
    ['read pod logs', req('get', 'pods/log', 'hasher-5d4f-abcde'), false],
    ['list events', req('list', 'events'), true],
    ['get secrets', req('get', 'secrets', 'registry-auth'), false],
    ['list secrets', req('list', 'secrets'), false],
    ['list configmaps', req('list', 'configmaps'), false],
    ['impersonate a service account', req('impersonate', 'serviceaccounts', 'default'), false],
    [
      'the same in another namespace',
      req('get', 'deployments', 'hasher', { namespace: 'kube-system' }),
      false,
    ],
    ['pods cluster-wide', req('list', 'pods', undefined, { namespace: null }), false],
    ['nodes', req('list', 'nodes', undefined, { namespace: null }), false],
    [
      'another user, not in the group',
      req('get', 'deployments', 'hasher', { user: 'someone' }),
      false,
    ],
  ])('%s: %s', (_name, request, allowed) => {
    expect(authorize(request)).toBe(allowed);
  });

  test('in another namespace, through the app (lib/k8s), it allows the same there and nothing in dockercoins', () => {
    const prod = rbacAuthorizer(deployerRbacManifests({ namespace: 'dockercoins-prod' }), {
      [DEPLOYER]: [DEPLOYER_GROUP],
    });
    expect(prod(req('patch', 'deployments', 'hasher', { namespace: 'dockercoins-prod' }))).toBe(
      true,
    );
    expect(prod(req('list', 'pods', undefined, { namespace: 'dockercoins-prod' }))).toBe(true);
    expect(prod(req('patch', 'deployments', 'hasher'))).toBe(false);
  });
});

describe('k8s/rbac/deployer enforced by the in-test API server', () => {
  let server: KubeApiServer;
  beforeAll(async () => {
    server = await startKubeApiServer({
      clusterName: 'dockercoins',
      staticTokens: { 'deployer-token': DEPLOYER },
      authorize: (attributes) => authorize(attributes),
    });
    const fixture = parse(
      readFileSync(
        path.join(REPO_ROOT, 'test', 'fixtures', 'kube', 'hasher-deployment.yaml'),
        'utf8',
      ),
    ) as KubeDeployment;
    server.putDeployment(fixture, { namespace: 'dockercoins' });
    server.putDeployment(
      { ...fixture, metadata: { ...fixture.metadata, name: 'redis' } },
      { namespace: 'dockercoins' },
    );
  });
  afterAll(() => server.stop());

  const call = (method: string, urlPath: string, body?: unknown): Promise<number> =>
    requestStatus(server, 'deployer-token', method, urlPath, body);

  test.each([
    ['GET', '/apis/apps/v1/namespaces/dockercoins/deployments/hasher', undefined, 200],
    [
      'PATCH',
      '/apis/apps/v1/namespaces/dockercoins/deployments/hasher',
      { metadata: { annotations: { 'kubernetes.io/change-cause': 'test' } } },
      200,
    ],
    ['GET', '/apis/apps/v1/namespaces/dockercoins/replicasets', undefined, 200],
    ['GET', '/apis/apps/v1/namespaces/dockercoins/deployments/redis', undefined, 403],
    [
      'PATCH',
      '/apis/apps/v1/namespaces/dockercoins/deployments/redis',
      { metadata: { annotations: { a: 'b' } } },
      403,
    ],
    ['GET', '/apis/apps/v1/namespaces/dockercoins/deployments', undefined, 403],
    ['GET', '/apis/apps/v1/namespaces/kube-system/deployments/hasher', undefined, 403],
  ])('%s %s → %s', async (method, urlPath, body, status) => {
    expect(await call(method, urlPath, body)).toBe(status);
  });
});
