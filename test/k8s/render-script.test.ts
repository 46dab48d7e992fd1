import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import {
  K8S,
  byKey,
  differences,
  find,
  images,
  kustomize,
  parseObjects,
  relativePath,
  removeTempDirs,
  tempDir,
} from './kubectl';

afterAll(removeTempDirs);

const SCRIPT = path.join(K8S, 'render.sh');
const BUILT = ['hasher', 'rng', 'webui', 'worker'];
const DIGEST = `sha256:${'ab'.repeat(32)}`;

interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs k8s/render.sh with exactly these variables (plus PATH), from `cwd`. */
function render(args: string[], vars: Record<string, string | undefined>, cwd?: string): Run {
  const env: Record<string, string> = { PATH: process.env.PATH ?? '', KUBECONFIG: '/dev/null' };
  for (const [key, value] of Object.entries(vars)) if (value !== undefined) env[key] = value;
  const result = spawnSync(SCRIPT, args, { encoding: 'utf8', env, cwd: cwd ?? tempDir('cwd') });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

function rendered(run: Run): KubernetesObject[] {
  if (run.status !== 0) throw new Error(`render.sh failed (${run.status}):\n${run.stderr}`);
  return parseObjects(run.stdout);
}

/** A refusal: exit status 2, nothing on stdout, one line on stderr containing every `expected`. */
function expectRefusal(run: Run, ...expected: string[]): void {
  expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 2, stdout: '' });
  expect(run.stderr.trim().split('\n')).toHaveLength(1);
  for (const text of expected) expect(run.stderr).toContain(text);
}

describe('TAG', () => {
  test.each([
    ['unset', undefined, ['TAG is empty or not set', 'TAG=6e0de7938dda']],
    ['empty', '', ['TAG is empty or not set', 'TAG=6e0de7938dda']],
    ['latest', 'latest', ['TAG "latest" is refused', 'nobody knows', 'TAG=6e0de7938dda']],
    ['LATEST', 'LATEST', ['TAG "LATEST" is refused', 'TAG=6e0de7938dda']],
    ['Latest', 'Latest', ['TAG "Latest" is refused', 'TAG=6e0de7938dda']],
    ['lAtEsT', 'lAtEsT', ['TAG "lAtEsT" is refused', 'TAG=6e0de7938dda']],
    ['starting with "."', '.v1', ['TAG ".v1" is not an image tag', 'TAG=6e0de7938dda']],
    ['with a space', 'v 1', ['TAG "v 1" is not an image tag']],
    ['with a slash', 'feature/x', ['TAG "feature/x" is not an image tag']],
    ['129 characters long', 'a'.repeat(129), [`TAG "${'a'.repeat(129)}" is not an image tag`]],
  ])(
    'Given TAG %s, when render.sh runs, then it refuses, naming the value and the fix',
    (_case, tag, expected) => {
      expectRefusal(
        render(['dockerhub'], { REGISTRY: 'docker.io/dockercoins', TAG: tag }),
        ...expected,
      );
    },
  );
});

describe('REGISTRY', () => {
  test.each([
    ['unset', undefined, ['REGISTRY is empty or not set', 'REGISTRY=docker.io/dockercoins']],
    ['empty', '', ['REGISTRY is empty or not set']],
    [
      'with https://',
      'https://docker.io/dockercoins',
      ['"https://"', 'REGISTRY=docker.io/dockercoins.'],
    ],
    ['with http://', 'http://127.0.0.1:30500', ['"http://"', 'REGISTRY=127.0.0.1:30500.']],
    ['with oci://', 'oci://x.io/a/', ['"oci://"', 'REGISTRY=x.io/a.']],
    [
      'with a trailing slash',
      'docker.io/dockercoins/',
      ['ends with "/"', 'REGISTRY=docker.io/dockercoins.'],
    ],
    [
      'with two trailing slashes',
      '127.0.0.1:30500//',
      ['ends with "/"', 'REGISTRY=127.0.0.1:30500.'],
    ],
    [
      "without a registry host (the seed's value)",
      'dockercoins',
      ['REGISTRY "dockercoins"', 'registry host', 'REGISTRY=docker.io/dockercoins'],
    ],
    ['with an uppercase path', 'docker.io/DockerCoins', ['path component "DockerCoins"']],
    ['with an empty path component', 'docker.io//dockercoins', ['path component ""']],
    ['with a bad port', 'x.io:port/a', ['registry host']],
  ])(
    'Given REGISTRY %s, when render.sh runs, then it refuses, naming the value and the fix',
    (_case, registry, expected) => {
      expectRefusal(render(['dockerhub'], { REGISTRY: registry, TAG: 'v0.2' }), ...expected);
    },
  );
});

describe.each(['dockerhub', 'ecr', 'in-cluster'])('overlay %s', (overlay) => {
  const REGISTRY = '127.0.0.1:31000/team';
  const TAG = '1.10';
  const REDIS_IMAGE = 'registry.example.com/mirror/library/redis:7.4.1';

  test('Given REGISTRY and TAG (and REDIS_IMAGE), when render.sh runs, then the built images are $REGISTRY/<service>:$TAG, redis is REDIS_IMAGE, and nothing else differs from kubectl kustomize of the overlay', () => {
    const objects = rendered(render([overlay], { REGISTRY, TAG, REDIS_IMAGE }));
    const expected: Record<string, string> = { redis: REDIS_IMAGE };
    for (const service of BUILT) expected[service] = `${REGISTRY}/${service}:${TAG}`;
    // "1.10" would become 1.1 if the tag reached kustomize as a YAML number.
    expect(Object.fromEntries(images(objects))).toEqual(expected);

    const plain = byKey(kustomize(path.join(K8S, 'overlays', overlay)));
    const got = byKey(objects);
    expect([...got.keys()].sort()).toEqual([...plain.keys()].sort());
    for (const [key, object] of got) {
      const changed = differences(plain.get(key), object);
      expect(changed.every((p) => /^spec\.template\.spec\.containers\[0\]\.image$/.test(p))).toBe(
        true,
      );
    }
  });
});

describe('redis', () => {
  test('Given the ecr overlay without REDIS_IMAGE, when render.sh runs, then it refuses to render the example account and names REDIS_IMAGE', () => {
    expectRefusal(
      render(['ecr'], {
        REGISTRY: '210987654321.dkr.ecr.us-east-1.amazonaws.com/dockercoins',
        TAG: 'v1.2.0',
      }),
      '123456789012',
      'EXAMPLE',
      'REDIS_IMAGE',
      'RedisImage',
    );
  });

  test.each(['dockerhub', 'in-cluster'])(
    'Given the %s overlay without REDIS_IMAGE, when render.sh runs, then redis stays docker.io/library/redis:7.4',
    (overlay) => {
      const objects = rendered(
        render([overlay], { REGISTRY: 'docker.io/dockercoins', TAG: 'v0.1' }),
      );
      expect(images(objects).get('redis')).toBe('docker.io/library/redis:7.4');
    },
  );

  test.each([
    ['a tag', 'x.io/mirror/redis:7.4', 'x.io/mirror/redis:7.4'],
    ['a tag and a digest', `x.io/mirror/redis:7.4@${DIGEST}`, `x.io/mirror/redis:7.4@${DIGEST}`],
    ['a digest only', `x.io/mirror/redis@${DIGEST}`, `x.io/mirror/redis@${DIGEST}`],
    ['a registry port', '127.0.0.1:30500/library/redis:7.4', '127.0.0.1:30500/library/redis:7.4'],
  ])(
    'Given REDIS_IMAGE with %s, when render.sh runs, then redis runs exactly that image',
    (_case, redisImage, expected) => {
      const objects = rendered(
        render(['ecr'], { REGISTRY: 'x.io/dockercoins', TAG: 'v1', REDIS_IMAGE: redisImage }),
      );
      expect(images(objects).get('redis')).toBe(expected);
    },
  );

  test.each([
    [
      'without a registry host',
      'redis:7.4',
      ['REDIS_IMAGE "redis:7.4"', 'registry host', 'REDIS_IMAGE=docker.io/library/redis:7.4'],
    ],
    [
      'without a tag',
      'docker.io/library/redis',
      ['no tag or digest', 'REDIS_IMAGE=docker.io/library/redis:7.4'],
    ],
    [
      'tagged latest',
      'docker.io/library/redis:Latest',
      ['is refused', 'latest', 'REDIS_IMAGE=docker.io/library/redis:7.4'],
    ],
    ['with a bad digest', 'docker.io/library/redis@sha256:abc', ['invalid digest "sha256:abc"']],
  ])(
    'Given REDIS_IMAGE %s, when render.sh runs, then it refuses, naming the value and the fix',
    (_case, redisImage, expected) => {
      expectRefusal(
        render(['dockerhub'], {
          REGISTRY: 'docker.io/dockercoins',
          TAG: 'v0.1',
          REDIS_IMAGE: redisImage,
        }),
        ...expected,
      );
    },
  );
});

describe('arguments', () => {
  test('Given the component webui-loadbalancer, when render.sh runs, then webui is a LoadBalancer', () => {
    const objects = rendered(
      render(['dockerhub', 'webui-loadbalancer'], {
        REGISTRY: 'docker.io/dockercoins',
        TAG: 'v0.1',
      }),
    );
    expect((find(objects, 'Service', 'webui').spec as { type: string }).type).toBe('LoadBalancer');
  });

  test('Given a kustomization of ones own built on k8s/base, given by path from another folder, when render.sh runs, then it renders that one', () => {
    const mine = tempDir('my-overlay');
    writeFileSync(
      path.join(mine, 'kustomization.yaml'),
      stringify({
        namespace: 'dockercoins-staging',
        resources: [relativePath(mine, path.join(K8S, 'base'))],
        images: [{ name: 'redis', newName: 'docker.io/library/redis', newTag: '7.4' }],
      }),
    );
    const objects = rendered(render([mine], { REGISTRY: 'docker.io/dockercoins', TAG: 'v0.1' }));
    expect(find(objects, 'Deployment', 'rng').metadata.namespace).toBe('dockercoins-staging');
    expect(images(objects).get('rng')).toBe('docker.io/dockercoins/rng:v0.1');
  });

  test.each([
    ['no overlay', [], ['REGISTRY=<registry> TAG=<tag>']],
    ['an unknown overlay', ['prod'], ['overlay "prod"', 'dockerhub ecr in-cluster']],
    [
      'an unknown component',
      ['dockerhub', 'ingress'],
      ['component "ingress"', 'webui-loadbalancer'],
    ],
  ])(
    'Given %s, when render.sh runs, then it refuses and says what exists',
    (_case, args, expected) => {
      const run = render(args, { REGISTRY: 'docker.io/dockercoins', TAG: 'v0.1' });
      expect({ status: run.status, stdout: run.stdout }).toEqual({ status: 2, stdout: '' });
      for (const text of expected) expect(run.stderr).toContain(text);
    },
  );
});

describe('the script itself', () => {
  test('Given render.sh, when shellcheck reads it, then it reports nothing', () => {
    const result = spawnSync('shellcheck', [SCRIPT], { encoding: 'utf8' });
    if (result.error !== undefined) {
      throw new Error(
        `shellcheck could not run (${result.error.message}): apt-get install -y shellcheck.`,
      );
    }
    expect(result.stdout).toBe('');
    expect(result.status).toBe(0);
  });
});
