import {
  ANNOTATIONS,
  type DeployerSettings,
  type EnvironmentSettings,
} from '../../lib/deployer-contract';
import { parseEvent } from '../../core/parse';
import {
  changeCause,
  deployRules,
  parseImageReference,
  planBuild,
  planPause,
  planTarget,
  runningImage,
  type PlanOptions,
} from '../../core/plan';
import type {
  BuildPlan,
  BuildRecord,
  Container,
  Deployment,
  DesiredImage,
  RunningImage,
  TargetPlan,
  TargetRef,
} from '../../core/types';
import { HASHER, event, setVariables, settings } from '../fixtures/events/fixtures';
import { differences, kubectlPatched, removeTempDirs } from '../k8s/kubectl';

const SETTINGS = settings();
const [MAIN, PROD] = SETTINGS.environments as [EnvironmentSettings, EnvironmentSettings];
const NOW = new Date(Date.UTC(2025, 0, 15, 10, 2, 31, 500));
const DEPLOYER: PlanOptions = { deployedBy: 'deployer' };
const OLD_DIGEST = `sha256:${'0a'.repeat(32)}`;
const NEWER_DIGEST = `sha256:${'9f'.repeat(32)}`;
const OLD_COMMIT = '5a1b2c3d4e5f60718293a4b5c6d7e8f901234567';

/** A build as parse makes it from the fixture event, with these exported variables changed. */
function build(changes: Record<string, string | undefined> = {}, given = SETTINGS): BuildRecord {
  const parsed = parseEvent(setVariables(event(), changes), given);
  if (parsed.kind !== 'build') throw new Error('the fixture event lost its variables');
  return parsed.build;
}

const RELEASE = { GIT_REF: 'refs/tags/v1.2.0', IMAGE_TAGS: `${HASHER.commitTag},v1.2.0` };

function withEnvironments(...environments: EnvironmentSettings[]): DeployerSettings {
  return { ...SETTINGS, environments };
}

function environment(overrides: Partial<EnvironmentSettings>): EnvironmentSettings {
  return { ...MAIN, ...overrides };
}

function deployPlan(plan: BuildPlan): Extract<BuildPlan, { action: 'deploy' }> {
  if (plan.action !== 'deploy')
    throw new Error(`expected a deploy, got: ${plan.reason} ${plan.detail}`);
  return plan;
}

describe('planBuild: where a build goes', () => {
  test('Given a build of main, when planned, then it deploys the commit tag pinned by digest to the main environment', () => {
    expect(planBuild(build(), SETTINGS)).toEqual({
      action: 'deploy',
      build: build(),
      image: {
        image: `${HASHER.repositoryUri}:${HASHER.commitTag}@${HASHER.digest}`,
        tag: HASHER.commitTag,
        digest: HASHER.digest,
        commit: HASHER.commit,
        buildProject: 'DockerCoins-hasher',
        buildNumber: 55,
        buildArn: build().buildArn,
        gitRef: 'refs/heads/main',
      },
      targets: [
        {
          environment: MAIN,
          service: 'hasher',
          target: { deployment: 'hasher', container: 'hasher' },
        },
      ],
    });
  });

  test('Given a build of a release tag, when planned, then it deploys the release tag to the environment that takes releases', () => {
    const plan = deployPlan(planBuild(build(RELEASE), SETTINGS));
    expect(plan.image.image).toBe(`${HASHER.repositoryUri}:v1.2.0@${HASHER.digest}`);
    expect(plan.image.tag).toBe('v1.2.0');
    expect(plan.targets.map((t) => t.environment.name)).toEqual(['prod']);
  });

  test('Given a release tag with build metadata, when planned, then the sanitised tag the build pushed is deployed', () => {
    const plan = deployPlan(
      planBuild(
        build({ GIT_REF: 'refs/tags/v1.2.0+b.5', IMAGE_TAGS: `${HASHER.commitTag},v1.2.0_b.5` }),
        SETTINGS,
      ),
    );
    expect(plan.image.tag).toBe('v1.2.0_b.5');
  });

  test('Given two environments that take releases, when a release tag is planned, then it deploys to both', () => {
    const euProd = environment({
      name: 'prod-eu',
      clusterName: 'dockercoins-eu',
      namespace: 'dockercoins',
      branches: [],
      releaseTags: true,
    });
    const plan = deployPlan(planBuild(build(RELEASE), withEnvironments(MAIN, PROD, euProd)));
    expect(
      plan.targets.map(
        (t) => `${t.environment.name}:${t.environment.clusterName}/${t.environment.namespace}`,
      ),
    ).toEqual(['prod:dockercoins/dockercoins-prod', 'prod-eu:dockercoins-eu/dockercoins']);
    expect(plan.image.tag).toBe('v1.2.0');
  });

  test('Given a service run by two Deployments and main deployed to two environments, when planned, then every environment × Deployment is a target', () => {
    const given: DeployerSettings = {
      ...withEnvironments(MAIN, environment({ name: 'staging', namespace: 'staging' }), PROD),
      services: SETTINGS.services.map((s) =>
        s.service === 'hasher'
          ? {
              ...s,
              targets: [
                { deployment: 'hasher', container: 'hasher' },
                { deployment: 'hasher-canary', container: 'app' },
              ],
            }
          : s,
      ),
    };
    const plan = deployPlan(planBuild(build({}, given), given));
    expect(
      plan.targets.map(
        (t) => `${t.environment.name}/${t.target.deployment}[${t.target.container}]`,
      ),
    ).toEqual([
      'main/hasher[hasher]',
      'main/hasher-canary[app]',
      'staging/hasher[hasher]',
      'staging/hasher-canary[app]',
    ]);
    expect(plan.targets.every((t) => t.service === 'hasher')).toBe(true);
  });

  const rules =
    'only refs/heads/main → main (namespace dockercoins, cluster dockercoins); release tags (refs/tags/v*) → prod ' +
    '(namespace dockercoins-prod, cluster dockercoins) deploy';

  test.each<[string, Record<string, string>, RegExp]>([
    [
      'a pull request',
      { GIT_REF: 'refs/pull/12/head', IMAGE_TAG: 'pr-12-6e0de79', IMAGE_TAGS: 'pr-12-6e0de79' },
      /^refs\/pull\/12\/head deploys nowhere; /,
    ],
    [
      'a branch no environment lists',
      { GIT_REF: 'refs/heads/feature/x' },
      /^refs\/heads\/feature\/x deploys nowhere; /,
    ],
    [
      'a branch whose name only starts like main',
      { GIT_REF: 'refs/heads/main-old' },
      /^refs\/heads\/main-old deploys nowhere; /,
    ],
    [
      'no ref',
      { GIT_REF: '' },
      /^the build has no git ref \(started from a commit, or retried\) and deploys nowhere; /,
    ],
    [
      'a git tag that is not a release',
      { GIT_REF: 'refs/tags/nightly', IMAGE_TAGS: HASHER.commitTag },
      /^refs\/tags\/nightly is not a release tag \(pattern "v\*"\); /,
    ],
  ])(
    'Given a build of %s, when planned, then it is skipped as not-a-deploy-ref, saying which refs deploy where',
    (_name, changes, start) => {
      const plan = planBuild(build(changes), SETTINGS);
      expect(plan).toMatchObject({ action: 'skip', reason: 'not-a-deploy-ref' });
      const detail = plan.action === 'skip' ? plan.detail : '';
      expect(detail).toMatch(start);
      expect(detail).toContain(rules);
      expect(detail).toMatch(
        /Nothing was deployed \(image 123456789012\.dkr\.ecr\.us-west-2\.amazonaws\.com\/dockercoins\/hasher:(6e0de7938dda|pr-12-6e0de79)\)\.$/,
      );
    },
  );

  test('Given a release tag and no environment that takes releases, when planned, then it is skipped as not-a-deploy-ref', () => {
    const plan = planBuild(build(RELEASE), withEnvironments(MAIN));
    expect(plan).toMatchObject({ action: 'skip', reason: 'not-a-deploy-ref' });
    expect(plan.action === 'skip' && plan.detail).toMatch(
      /^refs\/tags\/v1\.2\.0 is a release, but no environment takes releases; only refs\/heads\/main → main/,
    );
  });

  // Records parse would refuse: plan must not rely on parse for what it deploys.
  test.each<[string, Partial<BuildRecord>, RegExp]>([
    [
      'a release whose tag the build did not push',
      { gitRef: 'refs/tags/v1.2.0' },
      /^refs\/tags\/v1\.2\.0 is a release, but the build did not push the tag "v1\.2\.0" \(it pushed 6e0de7938dda, main-6e0de79-55\)/,
    ],
    [
      'a branch build whose tag is a pull-request tag',
      { imageTag: 'pr-3-6e0de79' },
      /^the tag to deploy, "pr-3-6e0de79", is a pull-request tag; only commit tags \(12 hex\) and release tags \(pattern "v\*"\) deploy, never "latest"/,
    ],
    [
      'a branch build whose tag is latest',
      { imageTag: 'latest' },
      /^the tag to deploy, "latest", is an unknown tag; only commit tags/,
    ],
    [
      'a branch build whose tag is a branch tag',
      { imageTag: 'main-6e0de79-55' },
      /^the tag to deploy, "main-6e0de79-55", is a branch tag/,
    ],
  ])(
    'Given %s, when planned, then it is skipped as tag-not-deployable',
    (_name, changes, detail) => {
      const plan = planBuild({ ...build(), ...changes }, SETTINGS);
      expect(plan).toMatchObject({ action: 'skip', reason: 'tag-not-deployable' });
      expect(plan.action === 'skip' && plan.detail).toMatch(detail);
    },
  );

  test('Given a record of a service not in the settings, when planned, then it is a programming error, not a skip', () => {
    expect(() => planBuild({ ...build(), service: 'redis' }, SETTINGS)).toThrow(
      /service "redis" is not in the deployer's settings/,
    );
  });

  test('Given the fixture settings, when the deploy rules are described, then each environment says its refs', () => {
    expect(deployRules(SETTINGS)).toBe(rules);
  });
});

// ---- planTarget ----

const TARGET: TargetRef = {
  environment: MAIN,
  service: 'hasher',
  target: { deployment: 'hasher', container: 'hasher' },
};
const IMAGE: DesiredImage = deployPlan(planBuild(build(), SETTINGS)).image;

/** Annotations as our earlier deploy of `digest` from build `number` left them. */
function ours(
  digest: string,
  number: number,
  extra: Record<string, string> = {},
): Record<string, string> {
  return {
    [ANNOTATIONS.commit]: OLD_COMMIT,
    [ANNOTATIONS.tag]: OLD_COMMIT.slice(0, 12),
    [ANNOTATIONS.digest]: digest,
    [ANNOTATIONS.buildProject]: 'DockerCoins-hasher',
    [ANNOTATIONS.buildNumber]: String(number),
    ...extra,
  };
}

const pinned = (tag: string, digest: string): string => `${HASHER.repositoryUri}:${tag}@${digest}`;
const OLD_IMAGE = pinned(OLD_COMMIT.slice(0, 12), OLD_DIGEST);

/** A Deployment as the API server returns it. */
function live(
  options: {
    annotations?: Record<string, string>;
    containers?: Container[];
    resourceVersion?: string;
  } = {},
): Deployment {
  // Built untyped: the API returns fields (the template's labels) that Deployment does not type.
  const object = {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: 'hasher',
      namespace: 'dockercoins',
      uid: '0d3c6f1e-5b6a-4c1d-9e8f-7a6b5c4d3e2f',
      resourceVersion: 'resourceVersion' in options ? options.resourceVersion : '81235',
      generation: 7,
      labels: { app: 'hasher' },
      annotations: options.annotations ?? ours(OLD_DIGEST, 50),
    },
    spec: {
      replicas: 2,
      selector: { matchLabels: { app: 'hasher' } },
      template: {
        metadata: { labels: { app: 'hasher' } },
        spec: {
          containers: options.containers ?? [
            { name: 'hasher', image: OLD_IMAGE, ports: [{ containerPort: 80 }] },
            {
              name: 'log-shipper',
              image: 'public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0',
            },
          ],
        },
      },
    },
    status: { observedGeneration: 7, replicas: 2 },
  };
  return object as unknown as Deployment;
}

function plan(
  deployment: Deployment | undefined,
  options: PlanOptions = DEPLOYER,
  image = IMAGE,
): TargetPlan {
  return planTarget(TARGET, image, deployment, NOW, options);
}

describe('planTarget: what to do with one Deployment', () => {
  test('Given a Deployment running an older build, when planned, then one strategic-merge body sets the image and every annotation, conditional on the resourceVersion', () => {
    expect(plan(live())).toEqual({
      action: 'patch',
      ref: TARGET,
      from: {
        image: OLD_IMAGE,
        tag: '5a1b2c3d4e5f',
        digest: OLD_DIGEST,
        commit: OLD_COMMIT,
        buildProject: 'DockerCoins-hasher',
        buildNumber: 50,
      },
      to: IMAGE,
      resourceVersion: '81235',
      patch: {
        metadata: {
          resourceVersion: '81235',
          annotations: {
            'kubernetes.io/change-cause':
              'hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#55)',
            'ship.dockercoins.io/commit': HASHER.commit,
            'ship.dockercoins.io/tag': '6e0de7938dda',
            'ship.dockercoins.io/digest': HASHER.digest,
            'ship.dockercoins.io/build-project': 'DockerCoins-hasher',
            'ship.dockercoins.io/build-number': '55',
            'ship.dockercoins.io/build-arn': HASHER.buildArn,
            'ship.dockercoins.io/git-ref': 'refs/heads/main',
            'ship.dockercoins.io/deployed-at': '2025-01-15T10:02:31.500Z',
            'ship.dockercoins.io/deployed-by': 'deployer',
          },
        },
        spec: {
          template: {
            spec: {
              containers: [
                { name: 'hasher', image: `${HASHER.repositoryUri}:6e0de7938dda@${HASHER.digest}` },
              ],
            },
          },
        },
      },
    });
  });

  test('Given ship deploys, when planned, then deployed-by and the change cause say so', () => {
    const step = plan(live(), { deployedBy: 'ship' });
    if (step.action !== 'patch') throw new Error(step.detail);
    const annotations = (step.patch.metadata as { annotations: Record<string, string> })
      .annotations;
    expect(annotations[ANNOTATIONS.deployedBy]).toBe('ship');
    expect(annotations[ANNOTATIONS.changeCause]).toBe(
      'hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#55) by ship',
    );
    expect(changeCause('hasher', IMAGE, 'deployer')).toBe(
      'hasher 6e0de7938dda (commit 6e0de79, build DockerCoins-hasher#55)',
    );
  });

  const image = (digest: string, number: number, project = 'DockerCoins-hasher'): DesiredImage => ({
    ...IMAGE,
    digest,
    buildNumber: number,
    buildProject: project,
    image: pinned(IMAGE.tag, digest),
  });

  test.each<
    [string, Deployment | undefined, PlanOptions, DesiredImage, Partial<TargetPlan>, RegExp]
  >([
    [
      'no Deployment (404)',
      undefined,
      DEPLOYER,
      IMAGE,
      { action: 'fail', reason: 'deployment-missing' },
      /^environment main: Deployment dockercoins\/hasher \(container hasher\) on cluster dockercoins: the Deployment does not exist\. Create it/,
    ],
    [
      'no container of that name',
      live({
        containers: [
          { name: 'app', image: OLD_IMAGE },
          { name: 'sidecar', image: 'x' },
        ],
      }),
      DEPLOYER,
      IMAGE,
      { action: 'fail', reason: 'container-missing' },
      /the Deployment has no container "hasher" \(it has "app", "sidecar"\); a patch would add one\. Nothing was patched/,
    ],
    [
      'no containers at all',
      { metadata: { name: 'hasher', resourceVersion: '1' } },
      DEPLOYER,
      IMAGE,
      { action: 'fail', reason: 'container-missing' },
      /\(it has none\)/,
    ],
    [
      'no resourceVersion',
      live({ resourceVersion: undefined }),
      DEPLOYER,
      IMAGE,
      { action: 'fail', reason: 'rejected' },
      /without metadata\.resourceVersion, so the patch could not be made conditional on it\. Nothing was patched\.$/,
    ],
    [
      'paused automatic deploys',
      live({ annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.paused]: 'true' }) }),
      DEPLOYER,
      IMAGE,
      { action: 'skip', reason: 'paused' },
      /: automatic deploys are paused \(ship\.dockercoins\.io\/paused: "true"\); it keeps running .*5a1b2c3d4e5f@sha256:0a0a.*\. Resume with `ship resume`/,
    ],
    [
      'paused, and already running this digest',
      live({
        annotations: ours(HASHER.digest, 55, { [ANNOTATIONS.paused]: 'true' }),
        containers: [{ name: 'hasher', image: IMAGE.image }],
      }),
      DEPLOYER,
      IMAGE,
      { action: 'skip', reason: 'paused' },
      /automatic deploys are paused/,
    ],
    [
      'the digest already running (a duplicate event)',
      live({ containers: [{ name: 'hasher', image: IMAGE.image }] }),
      DEPLOYER,
      IMAGE,
      { action: 'skip', reason: 'already-running' },
      /: already runs sha256:3b3b.* \(123456789012.*:6e0de7938dda@sha256:3b.*\); no rollout started\.$/,
    ],
    [
      'the digest running under another tag (a promotion)',
      live({ containers: [{ name: 'hasher', image: pinned('v1.1.0', HASHER.digest) }] }),
      DEPLOYER,
      IMAGE,
      { action: 'skip', reason: 'already-running' },
      /already runs sha256:3b/,
    ],
    [
      'an unpinned tag our annotations say is this digest',
      live({
        annotations: { ...ours(HASHER.digest, 55), [ANNOTATIONS.tag]: '6e0de7938dda' },
        containers: [{ name: 'hasher', image: `${HASHER.repositoryUri}:6e0de7938dda` }],
      }),
      DEPLOYER,
      IMAGE,
      { action: 'skip', reason: 'already-running' },
      /already runs sha256:3b/,
    ],
    [
      'a newer build of the same project (out-of-order events)',
      live({
        annotations: ours(NEWER_DIGEST, 56),
        containers: [{ name: 'hasher', image: pinned('7777777777aa', NEWER_DIGEST) }],
      }),
      DEPLOYER,
      IMAGE,
      { action: 'skip', reason: 'older-build' },
      /: runs build DockerCoins-hasher#56 \(7777777777aa\), newer than #55: never downgraded automatically\. Roll back on purpose with `ship rollback`\.$/,
    ],
    [
      'a newer build, for ship deploying by hand without allowOlder',
      live({
        annotations: ours(NEWER_DIGEST, 56),
        containers: [{ name: 'hasher', image: pinned('7777777777aa', NEWER_DIGEST) }],
      }),
      { deployedBy: 'ship' },
      IMAGE,
      { action: 'skip', reason: 'older-build' },
      /newer than #55/,
    ],
  ])(
    'Given %s, when planned, then the plan says so and why',
    (_name, deployment, options, desired, expected, detail) => {
      const step = plan(deployment, options, desired);
      expect(step).toMatchObject({ ...expected, ref: TARGET, to: desired });
      expect(step.action !== 'patch' && step.detail).toMatch(detail);
    },
  );

  test.each<[string, Deployment, PlanOptions, DesiredImage]>([
    [
      'paused, for ship (a person deploys on purpose)',
      live({ annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.paused]: 'true' }) }),
      { deployedBy: 'ship' },
      IMAGE,
    ],
    [
      'a paused annotation other than "true"',
      live({ annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.paused]: 'True' }) }),
      DEPLOYER,
      IMAGE,
    ],
    [
      'a newer build, for an explicit rollback (allowOlder)',
      live({
        annotations: ours(NEWER_DIGEST, 56),
        containers: [{ name: 'hasher', image: pinned('7777777777aa', NEWER_DIGEST) }],
      }),
      { deployedBy: 'ship', allowOlder: true },
      IMAGE,
    ],
    [
      'the same build number with another digest (a recreated project)',
      live({ annotations: ours(OLD_DIGEST, 55) }),
      DEPLOYER,
      IMAGE,
    ],
    [
      'a higher build number of another project',
      live({ annotations: ours(OLD_DIGEST, 90, { [ANNOTATIONS.buildProject]: 'Other-hasher' }) }),
      DEPLOYER,
      IMAGE,
    ],
    [
      'our annotations of a newer build, but an image set by hand since (stale annotations)',
      live({
        annotations: ours(NEWER_DIGEST, 56),
        containers: [{ name: 'hasher', image: pinned('hotfix', OLD_DIGEST) }],
      }),
      DEPLOYER,
      IMAGE,
    ],
    [
      'an unpinned tag other than the one our annotations name',
      live({
        annotations: ours(HASHER.digest, 55),
        containers: [{ name: 'hasher', image: `${HASHER.repositoryUri}:hotfix` }],
      }),
      DEPLOYER,
      IMAGE,
    ],
    [
      'no annotations at all (installed by kubectl apply)',
      live({ annotations: {} }),
      DEPLOYER,
      IMAGE,
    ],
    ['a container without an image', live({ containers: [{ name: 'hasher' }] }), DEPLOYER, IMAGE],
    [
      'an older build number, deploying the newer',
      live({ annotations: ours(OLD_DIGEST, 54) }),
      DEPLOYER,
      image(HASHER.digest, 55),
    ],
  ])('Given %s, when planned, then it is patched', (_name, deployment, options, desired) => {
    expect(plan(deployment, options, desired)).toMatchObject({
      action: 'patch',
      resourceVersion: '81235',
      to: desired,
    });
  });
});

describe('runningImage and image references', () => {
  test.each<[string, string, ReturnType<typeof parseImageReference>]>([
    [
      'tag and digest',
      `${HASHER.repositoryUri}:v1@${HASHER.digest}`,
      { name: HASHER.repositoryUri, tag: 'v1', digest: HASHER.digest },
    ],
    [
      'digest only',
      `${HASHER.repositoryUri}@${HASHER.digest}`,
      { name: HASHER.repositoryUri, tag: undefined, digest: HASHER.digest },
    ],
    [
      'a registry port and no tag',
      'localhost:5000/dockercoins/hasher',
      { name: 'localhost:5000/dockercoins/hasher', tag: undefined, digest: undefined },
    ],
    [
      'a registry port and a tag',
      'localhost:5000/dockercoins/hasher:v2',
      { name: 'localhost:5000/dockercoins/hasher', tag: 'v2', digest: undefined },
    ],
    ['a Docker Hub short name', 'redis:7.4', { name: 'redis', tag: '7.4', digest: undefined }],
    [
      'a digest that is not sha256',
      'redis@sha512:abc',
      { name: 'redis', tag: undefined, digest: undefined },
    ],
  ])(
    'Given an image with %s, when parsed, then name, tag and digest are found',
    (_name, reference, expected) => {
      expect(parseImageReference(reference)).toEqual(expected);
    },
  );

  test.each<[string, Deployment, RunningImage | undefined]>([
    ['an absent container', live({ containers: [{ name: 'other', image: OLD_IMAGE }] }), undefined],
    [
      'a pinned image our annotations describe',
      live(),
      {
        image: OLD_IMAGE,
        tag: '5a1b2c3d4e5f',
        digest: OLD_DIGEST,
        commit: OLD_COMMIT,
        buildProject: 'DockerCoins-hasher',
        buildNumber: 50,
      },
    ],
    [
      'a pinned image set by hand after our deploy',
      live({ containers: [{ name: 'hasher', image: pinned('hotfix', NEWER_DIGEST) }] }),
      {
        image: pinned('hotfix', NEWER_DIGEST),
        tag: 'hotfix',
        digest: NEWER_DIGEST,
        commit: undefined,
        buildProject: undefined,
        buildNumber: undefined,
      },
    ],
    [
      'a digest-only image our annotations describe',
      live({ containers: [{ name: 'hasher', image: `${HASHER.repositoryUri}@${OLD_DIGEST}` }] }),
      {
        image: `${HASHER.repositoryUri}@${OLD_DIGEST}`,
        tag: '5a1b2c3d4e5f',
        digest: OLD_DIGEST,
        commit: OLD_COMMIT,
        buildProject: 'DockerCoins-hasher',
        buildNumber: 50,
      },
    ],
    [
      'a garbled build number annotation',
      live({ annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.buildNumber]: '50.5' }) }),
      {
        image: OLD_IMAGE,
        tag: '5a1b2c3d4e5f',
        digest: OLD_DIGEST,
        commit: OLD_COMMIT,
        buildProject: 'DockerCoins-hasher',
        buildNumber: undefined,
      },
    ],
  ])(
    'Given %s, when the running image is read, then it is what the image and our annotations tell',
    (_name, deployment, expected) => {
      expect(runningImage(deployment, 'hasher')).toEqual(expected);
    },
  );
});

describe('the patch, applied by kubectl', () => {
  afterAll(removeTempDirs);

  test('Given a Deployment with a second container and annotations of its own, when our patch is applied, then only the image and our annotations change', () => {
    const deployment = live({
      annotations: {
        ...ours(OLD_DIGEST, 50),
        'deployment.kubernetes.io/revision': '7',
        'team.example.com/owner': 'coins',
      },
      containers: [
        {
          name: 'log-shipper',
          image: 'public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0',
          args: ['-c', '/fluent-bit/etc/fluent-bit.conf'],
        },
        {
          name: 'hasher',
          image: OLD_IMAGE,
          ports: [{ containerPort: 80 }],
          env: [{ name: 'PORT', value: '80' }],
        },
      ],
    });
    const step = plan(deployment);
    if (step.action !== 'patch') throw new Error(`expected a patch: ${step.detail}`);
    // kubectl prints the object with a few defaults of its own; an empty patch shows them, so
    // the comparison sees only what our body did.
    const before = kubectlPatched(deployment, {});
    const after = kubectlPatched(deployment, step.patch);
    expect(differences(before, after).sort()).toEqual(
      [
        'spec.template.spec.containers[1].image',
        `metadata.annotations.${ANNOTATIONS.changeCause}`,
        `metadata.annotations.${ANNOTATIONS.commit}`,
        `metadata.annotations.${ANNOTATIONS.tag}`,
        `metadata.annotations.${ANNOTATIONS.digest}`,
        `metadata.annotations.${ANNOTATIONS.buildNumber}`,
        `metadata.annotations.${ANNOTATIONS.buildArn}`,
        `metadata.annotations.${ANNOTATIONS.gitRef}`,
        `metadata.annotations.${ANNOTATIONS.deployedAt}`,
        `metadata.annotations.${ANNOTATIONS.deployedBy}`,
      ].sort(),
    );
    const containers = after.spec?.template?.spec?.containers ?? [];
    expect(containers.map((c) => [c.name, c.image])).toEqual([
      ['log-shipper', 'public.ecr.aws/aws-observability/aws-for-fluent-bit:2.32.0'],
      ['hasher', IMAGE.image],
    ]);
    expect(after.metadata.annotations?.['team.example.com/owner']).toBe('coins');
    expect(after.metadata.resourceVersion).toBe('81235');
    // What the deployer reads back next time is what it wrote.
    expect(runningImage(after, 'hasher')).toEqual({
      image: IMAGE.image,
      tag: IMAGE.tag,
      digest: IMAGE.digest,
      commit: HASHER.commit,
      buildProject: 'DockerCoins-hasher',
      buildNumber: 55,
    });
    expect(plan(after)).toMatchObject({ action: 'skip', reason: 'already-running' });
  });
});

describe('what ship adds: unknown builds, rollback pauses, pause and resume', () => {
  afterAll(removeTempDirs);

  /** What `ship deploy` knows of an image pulled from ECR without a sortable tag: no build. */
  const UNKNOWN_BUILD: DesiredImage = {
    ...IMAGE,
    commit: IMAGE.commit.slice(0, 12),
    buildProject: undefined,
    buildNumber: undefined,
    buildArn: undefined,
    gitRef: undefined,
  };

  test('Given an image whose build ship does not know, when planned and applied by kubectl, then the old build annotations are removed, not left describing another image', () => {
    const deployment = live({
      annotations: {
        ...ours(OLD_DIGEST, 50),
        [ANNOTATIONS.buildArn]:
          'arn:aws:codebuild:eu-west-1:123456789012:build/DockerCoins-hasher:old',
        [ANNOTATIONS.gitRef]: 'refs/heads/main',
      },
    });
    const step = planTarget(TARGET, UNKNOWN_BUILD, deployment, NOW, { deployedBy: 'ship' });
    if (step.action !== 'patch') throw new Error(`expected a patch: ${step.detail}`);
    const after = kubectlPatched(deployment, step.patch);
    const annotations = after.metadata.annotations ?? {};
    for (const key of [
      ANNOTATIONS.buildProject,
      ANNOTATIONS.buildNumber,
      ANNOTATIONS.buildArn,
      ANNOTATIONS.gitRef,
    ]) {
      expect(annotations[key]).toBeUndefined();
    }
    expect(annotations[ANNOTATIONS.commit]).toBe(IMAGE.commit.slice(0, 12));
    expect(annotations[ANNOTATIONS.changeCause]).toBe(
      'hasher 6e0de7938dda (commit 6e0de79) by ship',
    );
    expect(runningImage(after, 'hasher')).toEqual({
      image: IMAGE.image,
      tag: IMAGE.tag,
      digest: IMAGE.digest,
      commit: IMAGE.commit.slice(0, 12),
      buildProject: undefined,
      buildNumber: undefined,
    });
  });

  test('Given a running build whose number is unknown, when the deployer plans a build, then it deploys (no number, no downgrade proof)', () => {
    const step = planTarget(TARGET, IMAGE, live({ annotations: {} }), NOW, DEPLOYER);
    expect(step.action).toBe('patch');
    const older = planTarget(
      TARGET,
      { ...UNKNOWN_BUILD, digest: OLD_DIGEST.replace(/.$/, '0'), image: pinned('0ld', OLD_DIGEST) },
      live(),
      NOW,
      { deployedBy: 'ship' },
    );
    expect(older.action).toBe('patch');
  });

  test('Given a rollback (pause: true), when planned and applied by kubectl, then the image and paused:"true" change in one patch', () => {
    const deployment = live();
    const step = planTarget(TARGET, IMAGE, deployment, NOW, {
      deployedBy: 'ship',
      allowOlder: true,
      pause: true,
    });
    if (step.action !== 'patch') throw new Error(`expected a patch: ${step.detail}`);
    const after = kubectlPatched(deployment, step.patch);
    expect(after.metadata.annotations?.[ANNOTATIONS.paused]).toBe('true');
    expect(after.spec?.template?.spec?.containers?.[0]?.image).toBe(IMAGE.image);
    // and the deployer then leaves it alone
    const next = planTarget(TARGET, { ...IMAGE, buildNumber: 99 }, after, NOW, DEPLOYER);
    expect(next).toMatchObject({ action: 'skip', reason: 'paused' });
  });

  test.each<[string, Record<string, string>, boolean, string, string | undefined]>([
    ['not paused, pause', ours(OLD_DIGEST, 50), true, 'patch', 'true'],
    [
      'paused, resume',
      ours(OLD_DIGEST, 50, { [ANNOTATIONS.paused]: 'true' }),
      false,
      'patch',
      undefined,
    ],
    [
      'paused, pause again',
      ours(OLD_DIGEST, 50, { [ANNOTATIONS.paused]: 'true' }),
      true,
      'skip',
      'true',
    ],
    ['not paused, resume', ours(OLD_DIGEST, 50), false, 'skip', undefined],
    [
      '"false" written by hand, resume',
      ours(OLD_DIGEST, 50, { [ANNOTATIONS.paused]: 'false' }),
      false,
      'skip',
      'false',
    ],
  ])(
    'Given %s, when planPause plans and kubectl applies it, then the action and the annotation after are as expected',
    (_name, annotations, paused, action, after) => {
      const deployment = live({ annotations });
      const step = planPause(TARGET, deployment, paused);
      expect(step.action).toBe(action);
      const result = step.action === 'patch' ? kubectlPatched(deployment, step.patch) : deployment;
      expect(result.metadata.annotations?.[ANNOTATIONS.paused]).toBe(after);
      if (step.action === 'patch') {
        expect(step.patch).toEqual({
          metadata: {
            resourceVersion: '81235',
            annotations: { [ANNOTATIONS.paused]: paused ? 'true' : null },
          },
        });
        // only the paused annotation changes
        expect(differences(kubectlPatched(deployment, {}), result)).toEqual([
          `metadata.annotations.${ANNOTATIONS.paused}`,
        ]);
      }
    },
  );

  test('Given no Deployment or no resourceVersion, when planPause plans, then it fails and says so', () => {
    const missing = planPause(TARGET, undefined, true);
    expect(missing.action).toBe('fail');
    expect(missing.action === 'fail' && missing.detail).toMatch(/the Deployment does not exist/);
    const unversioned = planPause(TARGET, live({ resourceVersion: undefined }), true);
    expect(unversioned.action).toBe('fail');
    expect(unversioned.action === 'fail' && unversioned.detail).toMatch(
      /without metadata\.resourceVersion/,
    );
  });
});

describe('planTarget with verification: rejected digests and the verification lease', () => {
  const EXECUTION = 'arn:aws:states:eu-west-1:123456789012:execution:deploy:e1';
  const VERIFY: PlanOptions = {
    deployedBy: 'deployer',
    verification: { execution: EXECUTION, deadlineSeconds: 180 },
  };
  const rejectedList = (digest: string): string =>
    JSON.stringify([
      {
        digest,
        build: 55,
        reason: 'ImagePullBackOff: pod hasher-5c9f… ',
        at: '2025-01-15T09:00:00.000Z',
      },
      { digest: NEWER_DIGEST, reason: 'Deadline', at: '2025-01-15T08:00:00.000Z' },
    ]);
  const running = (annotations: Record<string, string> = {}): Deployment =>
    live({
      annotations: ours(HASHER.digest, 55, annotations),
      containers: [{ name: 'hasher', image: IMAGE.image }],
    });
  const record = (changes: Record<string, unknown>): string =>
    JSON.stringify({
      state: 'verifying',
      image: IMAGE.image,
      digest: HASHER.digest,
      build: 55,
      execution: 'arn:other',
      generation: 7,
      since: '2025-01-15T10:00:00.000Z',
      leaseUntil: new Date(NOW.getTime() + 60_000).toISOString(),
      reason: 'verifying',
      ...changes,
    });

  test('Given the digest in the rejected list, when the deployer plans it, then it skips with digest-rejected and says how to clear it', () => {
    const step = plan(
      live({
        annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.rejected]: rejectedList(HASHER.digest) }),
      }),
      VERIFY,
    );
    expect(step).toMatchObject({ action: 'skip', reason: 'digest-rejected' });
    expect(step.action === 'skip' && step.detail).toMatch(
      /failed verification here at 2025-01-15T09:00:00.000Z \(ImagePullBackOff.*`ship deploy`/,
    );
  });

  test('Given the digest rejected, when ship deploys it, then it patches and takes the digest off the list, keeping the others', () => {
    const step = plan(
      live({
        annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.rejected]: rejectedList(HASHER.digest) }),
      }),
      { deployedBy: 'ship' },
    );
    expect(step.action).toBe('patch');
    const annotations = (
      step as unknown as { patch: { metadata: { annotations: Record<string, string> } } }
    ).patch.metadata.annotations;
    expect(JSON.parse(annotations[ANNOTATIONS.rejected]!)).toEqual([
      { digest: NEWER_DIGEST, reason: 'Deadline', at: '2025-01-15T08:00:00.000Z' },
    ]);
  });

  test('Given a rejected list without the digest, when planned, then it deploys and leaves the list alone', () => {
    const step = plan(
      live({
        annotations: ours(OLD_DIGEST, 50, { [ANNOTATIONS.rejected]: rejectedList(NEWER_DIGEST) }),
      }),
      VERIFY,
    );
    expect(step.action).toBe('patch');
    expect(JSON.stringify(step)).not.toContain(`"${ANNOTATIONS.rejected}"`);
  });

  test('Given verification, when a new image is planned, then the same PATCH writes the verifying record with the next generation and the lease', () => {
    const step = plan(live(), VERIFY);
    expect(step.action).toBe('patch');
    const annotations = (
      step as unknown as { patch: { metadata: { annotations: Record<string, string> } } }
    ).patch.metadata.annotations;
    expect(JSON.parse(annotations[ANNOTATIONS.verification]!)).toEqual({
      state: 'verifying',
      image: IMAGE.image,
      digest: HASHER.digest,
      build: 55,
      execution: EXECUTION,
      generation: 8,
      since: NOW.toISOString(),
      leaseUntil: new Date(NOW.getTime() + (2 * 180 + 120) * 1000).toISOString(),
      reason: `verifying ${IMAGE.tag}`,
    });
  });

  test('Given no verification, when a new image is planned, then no record is written (as before)', () => {
    expect(JSON.stringify(plan(live()))).not.toContain(ANNOTATIONS.verification);
  });

  test.each<[string, Record<string, string>, string, RegExp]>([
    ['no record (deployed by an older deployer)', {}, 'lease', /never verified: verifying it/],
    [
      'a record of another digest',
      { [ANNOTATIONS.verification]: record({ digest: OLD_DIGEST }) },
      'lease',
      /never verified/,
    ],
    [
      'another execution verifying, lease held',
      { [ANNOTATIONS.verification]: record({}) },
      'verifying',
      /arn:other verifies it \(lease until/,
    ],
    [
      'another execution verifying, lease expired',
      {
        [ANNOTATIONS.verification]: record({
          leaseUntil: new Date(NOW.getTime() - 1).toISOString(),
        }),
      },
      'lease',
      /the lease of arn:other expired/,
    ],
    [
      'our own execution (the Deploy task retried)',
      { [ANNOTATIONS.verification]: record({ execution: EXECUTION }) },
      'lease',
      /resumed by its own execution/,
    ],
    [
      'verified',
      {
        [ANNOTATIONS.verification]: record({ state: 'verified', reason: 'verified Ready in 41 s' }),
      },
      'already-running',
      /its verification: verified \(verified Ready in 41 s\)/,
    ],
    [
      'failed',
      { [ANNOTATIONS.verification]: record({ state: 'failed', reason: 'FAILED' }) },
      'already-running',
      /its verification: failed/,
    ],
    ['a malformed record', { [ANNOTATIONS.verification]: '{not json' }, 'lease', /never verified/],
  ])(
    'Given the digest already runs with %s, when planned with verification, then the lease or skip of the table',
    (_name, annotations, expected, detail) => {
      const step = plan(running(annotations), VERIFY);
      if (expected === 'lease') {
        expect(step).toMatchObject({ action: 'lease', resourceVersion: '81235', generation: 7 });
        const lease = step as Extract<TargetPlan, { action: 'lease' }>;
        expect(lease.patch).toEqual({
          metadata: {
            resourceVersion: '81235',
            annotations: { [ANNOTATIONS.verification]: expect.any(String) as unknown },
          },
        });
        expect(
          JSON.parse(
            (lease.patch.metadata as { annotations: Record<string, string> }).annotations[
              ANNOTATIONS.verification
            ]!,
          ),
        ).toMatchObject({
          state: 'verifying',
          execution: EXECUTION,
          digest: HASHER.digest,
          generation: 7,
        });
        expect(lease.detail).toMatch(detail);
      } else {
        expect(step).toMatchObject({ action: 'skip', reason: expected });
        expect(step.action === 'skip' && step.detail).toMatch(detail);
      }
    },
  );

  test('Given the digest already runs, when planned without verification, then it is skipped as before', () => {
    expect(plan(running())).toMatchObject({ action: 'skip', reason: 'already-running' });
  });

  test('Given paused and rejected, when the deployer plans, then paused wins (the person said so first)', () => {
    const step = plan(
      live({
        annotations: ours(OLD_DIGEST, 50, {
          [ANNOTATIONS.paused]: 'true',
          [ANNOTATIONS.rejected]: rejectedList(HASHER.digest),
        }),
      }),
      VERIFY,
    );
    expect(step).toMatchObject({ action: 'skip', reason: 'paused' });
  });
});
