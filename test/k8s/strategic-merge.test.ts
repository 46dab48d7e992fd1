import * as path from 'node:path';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import {
  K8S,
  containers,
  differences,
  find,
  kubectlPatched,
  kustomize,
  removeTempDirs,
} from './kubectl';

// What the deployer Lambda relies on when it PATCHes a Deployment with
// `application/strategic-merge-patch+json`: `kubectl patch --local` applies the same strategic
// merge offline, so it is the reference for what the API server does with the deployer's body.

afterAll(removeTempDirs);

const DIGEST = `sha256:${'4f'.repeat(32)}`;
const NEW_RNG = `docker.io/dockercoins/rng:v0.2@${DIGEST}`;

let rendered: KubernetesObject[];
beforeAll(() => {
  rendered = kustomize(path.join(K8S, 'overlays', 'dockerhub'));
});

/** `kubectl patch --local` of one object with a patch body; returns the patched object. */
const patch = (
  object: KubernetesObject,
  body: unknown,
  type: 'strategic' | 'merge' = 'strategic',
): KubernetesObject => kubectlPatched(object, body, type);

const imagePatch = (container: string, image: string): unknown => ({
  spec: { template: { spec: { containers: [{ name: container, image }] } } },
});

describe.each(['hasher', 'redis', 'rng', 'webui', 'worker'])('Deployment %s', (name) => {
  test(`Given the rendered Deployment, when a strategic-merge patch names container ${name} with a digest-pinned image, then only that image changes`, () => {
    const deployment = find(rendered, 'Deployment', name);
    // kubectl prints an object with a few empty defaults (creationTimestamp: null, status: {});
    // an empty patch shows that serialisation, so the comparison sees only what the patch did.
    const unchanged = patch(deployment, {});
    expect(
      differences(deployment, unchanged).every((p) =>
        /creationTimestamp|status|strategy|resources/.test(p),
      ),
    ).toBe(true);
    const image = `docker.io/dockercoins/${name}:v0.2@${DIGEST}`;
    const patched = patch(deployment, imagePatch(name, image));
    expect(differences(unchanged, patched)).toEqual(['spec.template.spec.containers[0].image']);
    expect(containers(patched)[0]!.image).toBe(image);
  });
});

describe('the deployer patch on rng', () => {
  test('Given a Deployment with a second container, when the patch names rng, then rng alone gets the new image', () => {
    const rng = find(rendered, 'Deployment', 'rng');
    const withSidecar = patch(rng, {
      spec: {
        template: {
          spec: { containers: [{ name: 'sidecar', image: 'docker.io/library/busybox:1.36' }] },
        },
      },
    });
    expect(
      containers(withSidecar)
        .map((c) => c.name)
        .sort(),
    ).toEqual(['rng', 'sidecar']);
    const patched = patch(withSidecar, imagePatch('rng', NEW_RNG));
    const rngAt = containers(withSidecar).findIndex((c) => c.name === 'rng');
    expect(differences(withSidecar, patched)).toEqual([
      `spec.template.spec.containers[${rngAt}].image`,
    ]);
    expect(containers(patched).find((c) => c.name === 'sidecar')!.image).toBe(
      'docker.io/library/busybox:1.36',
    );
  });

  test('Given the patch the deployer sends (image and change-cause together), when applied, then exactly those two fields change', () => {
    const rng = find(rendered, 'Deployment', 'rng');
    const unchanged = patch(rng, {});
    const patched = patch(rng, {
      metadata: { annotations: { 'kubernetes.io/change-cause': 'rng v0.2 via CodeBuild #42' } },
      ...(imagePatch('rng', NEW_RNG) as object),
    });
    expect(differences(unchanged, patched)).toEqual([
      'metadata.annotations',
      'spec.template.spec.containers[0].image',
    ]);
    expect(patched.metadata.annotations).toEqual({
      'kubernetes.io/change-cause': 'rng v0.2 via CodeBuild #42',
    });
  });

  test('Given the same body as a JSON merge patch, when applied, then the container list is replaced: probes, ports, resources and security context are lost (why the deployer must use strategic merge)', () => {
    const rng = find(rendered, 'Deployment', 'rng');
    const merged = patch(rng, imagePatch('rng', NEW_RNG), 'merge');
    expect(containers(merged)).toEqual([{ name: 'rng', image: NEW_RNG }]);
  });

  test('Given a patch naming a container that does not exist, when applied, then strategic merge adds a container instead of failing (why the deployer checks the name first)', () => {
    const rng = find(rendered, 'Deployment', 'rng');
    const patched = patch(rng, imagePatch('rng-typo', NEW_RNG));
    expect(
      containers(patched)
        .map((c) => c.name)
        .sort(),
    ).toEqual(['rng', 'rng-typo']);
    expect(containers(patched).find((c) => c.name === 'rng')!.image).toBe(
      containers(rng)[0]!.image,
    );
  });
});
