import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ANNOTATIONS } from '../../lib/deployer-contract';
import { startEksStub, type EksStub } from '../support/eks-stub';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';
import { REPO_ROOT, runShipCaptured, type ShipRun } from '../support/ship';
import { putEcrImage, startMoto, useEnv, MOTO_ACCOUNT, type RunningMoto } from '../support/moto';

// The AWS path with no AWS: ECR is moto_server, EKS DescribeCluster a local stub whose cluster is
// the in-test API server, which accepts only EKS tokens presigned with these credentials: the
// deployer's own token code, reached by `ship` through the cluster's name and region.

jest.setTimeout(60_000);

const CREDENTIALS = { accessKeyId: 'AKIDSHIPAWS', secretAccessKey: 'ship-aws-secret' };
const NOW = new Date('2026-11-28T12:00:00Z');
const DEPLOYMENT = ((): Record<string, unknown> => {
  const deployment = parseYaml(
    readFileSync(path.join(REPO_ROOT, 'test/fixtures/kube/hasher-deployment.yaml'), 'utf8'),
  ) as { metadata: Record<string, unknown> };
  delete deployment.metadata.namespace;
  return deployment;
})();

let moto: RunningMoto;
let kube: KubeApiServer;
let eks: EksStub;
let restoreEnv: () => void;

beforeAll(async () => {
  moto = await startMoto();
  kube = await startKubeApiServer({ clusterName: 'dockercoins', credentials: CREDENTIALS });
  eks = await startEksStub({
    clusters: { dockercoins: { endpoint: kube.url, caPem: kube.caPem } },
  });
  restoreEnv = useEnv({
    ...moto.env,
    AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
    AWS_ENDPOINT_URL_ECR: moto.url,
    AWS_ENDPOINT_URL_EKS: eks.url,
  });
});

afterAll(async () => {
  restoreEnv?.();
  await eks?.stop();
  await kube?.stop();
  await moto?.stop();
});

function ship(args: string[]): Promise<ShipRun> {
  return runShipCaptured([...args, '--region', moto.region], { now: () => NOW });
}

describe('ship against ECR (moto) and EKS by name (stub + in-test API server)', () => {
  test('Given two builds of hasher in ECR, when ship images, deploy --no-wait and status run, then the tags, the patch and the status are right', async () => {
    const first = await putEcrImage(moto, {
      repository: 'dockercoins/hasher',
      tags: ['6e0de7938dda', 'main-6e0de79-41', 'v1.2.0'],
    });
    // moto's push times have whole seconds: the second image must be later
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const second = await putEcrImage(moto, {
      repository: 'dockercoins/hasher',
      tags: ['9f8e7d6c5b4a', 'main-9f8e7d6-42'],
    });
    kube.putDeployment(DEPLOYMENT, { namespace: 'dockercoins' });

    const images = await ship(['images', 'hasher']);
    expect(images.stderr).toBe('');
    expect(images.status).toBe(0);
    const lines = images.stdout.split('\n');
    expect(lines[0]).toBe(
      `hasher: 2 images in ${MOTO_ACCOUNT}.dkr.ecr.${moto.region}.amazonaws.com/dockercoins/hasher`,
    );
    expect(lines[1]).toMatch(/^DIGEST +TAGS +COMMIT +BUILD +PUSHED +SIZE +SCAN$/);
    expect(lines[2]).toMatch(
      new RegExp(
        `^${second.digest.slice(0, 19)}  9f8e7d6c5b4a, main-9f8e7d6-42 +9f8e7d6c5b4a +#42 +\\S+ +\\S+ [KM]?i?B +-$`,
      ),
    );
    expect(lines[3]).toMatch(
      new RegExp(
        `^${first.digest.slice(0, 19)}  6e0de7938dda, v1\\.2\\.0, main-6e0de79-41  6e0de7938dda +#41 `,
      ),
    );

    // deploy the release tag: pinned by the digest ECR gives, through EKS by name
    const deploy = await ship(['deploy', 'hasher', 'v1.2.0', '--no-wait']);
    expect(deploy.stderr).toBe('');
    expect(deploy.status).toBe(0);
    const live = kube.deployment('dockercoins', 'hasher')!;
    expect(live.spec.template.spec.containers[0]!.image).toBe(
      `${first.repositoryUri}:v1.2.0@${first.digest}`,
    );
    expect(live.metadata.annotations).toMatchObject({
      [ANNOTATIONS.tag]: 'v1.2.0',
      [ANNOTATIONS.digest]: first.digest,
      [ANNOTATIONS.commit]: '6e0de7938dda',
      [ANNOTATIONS.buildNumber]: '41',
      [ANNOTATIONS.gitRef]: 'refs/tags/v1.2.0',
      [ANNOTATIONS.deployedBy]: 'ship',
      [ANNOTATIONS.deployedAt]: NOW.toISOString(),
      [ANNOTATIONS.changeCause]:
        'hasher v1.2.0 (commit 6e0de79, build DockerCoins-hasher#41) by ship',
    });
    // the fixture's old build-arn annotation described another image: removed, not kept
    expect(live.metadata.annotations?.[ANNOTATIONS.buildArn]).toBeUndefined();
    // every request to the cluster carried a token the server verified for these credentials
    expect(kube.requests.every((r) => r.user === CREDENTIALS.accessKeyId)).toBe(true);
    expect(eks.requests.map((r) => r.clusterName)).toContain('dockercoins');

    // an older build than the one running is refused unless asked for
    kube.completeRollout('dockercoins', 'hasher');
    await ship(['deploy', 'hasher', '9f8e7d6c5b4a', '--no-wait']);
    const older = await ship(['deploy', 'hasher', '6e0de7938dda', '--no-wait']);
    expect(older.status).toBe(1);
    expect(older.stderr).toMatch(
      /runs build DockerCoins-hasher#42 .* newer than #41: never downgraded automatically\..* Nothing was changed\. To go back on purpose: ship rollback hasher --to 6e0de7938dda/,
    );
    expect(kube.deployment('dockercoins', 'hasher')!.metadata.annotations?.[ANNOTATIONS.tag]).toBe(
      '9f8e7d6c5b4a',
    );

    // status: running 42, the newest main build, rollout not yet observed
    const status = await ship(['status', '--json']);
    // rng, webui and worker have neither images nor Deployments here: reported, not a failure
    expect(status.status).toBe(0);
    const rows = JSON.parse(status.stdout) as {
      service: string;
      running: { tag: string; buildNumber: number } | null;
      newest: { tag: string } | null;
      drift: boolean;
      error: string | null;
    }[];
    expect(rows.find((r) => r.service === 'hasher')).toMatchObject({
      running: { tag: '9f8e7d6c5b4a', buildNumber: 42 },
      newest: { tag: 'main-9f8e7d6-42' },
      drift: false,
      error: null,
    });
    expect(rows.find((r) => r.service === 'rng')).toMatchObject({ error: 'missing' });
  });

  test('Given a registry that cannot be reached, when ship status runs, then the clusters are still reported, the registry failure is said once, and the exit status is 1', async () => {
    const result = await ship(['status', '--registry', 'http://127.0.0.1:9']);
    expect(result.status).toBe(1);
    expect(result.stdout).toMatch(/^main {2}hasher +9f8e7d6c5b4a /m);
    expect(result.stderr.match(/newest images not shown/g)).toHaveLength(1);
    expect(result.stderr).toMatch(
      /registry 127\.0\.0\.1:9 is unreachable at http:\/\/127\.0\.0\.1:9/,
    );
  });

  test('Given a tag that is not in ECR, when deployed, then exit 1 and nothing is patched', async () => {
    kube.resetRequests();
    const result = await ship(['deploy', 'hasher', 'v9.9.9', '--no-wait']);
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(
      /dockercoins\/hasher:v9\.9\.9 does not exist in ECR .*`ship images hasher` lists the tags there are/,
    );
    expect(kube.requests.filter((r) => r.method === 'PATCH')).toEqual([]);
  });
});
