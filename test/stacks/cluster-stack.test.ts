import { CfnElement, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { createStacks, ShipStacks } from '../../lib/app';
import { resolveConfig } from '../../lib/config';
import { ClusterStack } from '../../lib/stacks/cluster-stack';
import { newApp } from '../support/app';

const TAG = '6e0de7938dda';
/** A created cluster, everything else at its default. */
const CLUSTER = { sourceOwner: 'acme', createCluster: true, initialImageTag: TAG };

interface Resource {
  Type: string;
  Properties?: unknown;
}

interface Synthesized {
  stacks: ShipStacks;
  /** Every stack's resources by logical id, by stack name. */
  resources: Map<string, Record<string, Resource>>;
}

function synthApp(context: Record<string, unknown>): Synthesized {
  const app = newApp();
  const { config } = resolveConfig(context);
  const stacks = createStacks(app, config);
  const assembly = app.synth();
  return {
    stacks,
    resources: new Map(
      assembly.stacks.map((s) => [
        s.stackName,
        (s.template as { Resources: Record<string, Resource> }).Resources,
      ]),
    ),
  };
}

function clusterStack(s: Synthesized): ClusterStack {
  if (s.stacks.cluster === undefined) throw new Error('no cluster stack');
  return s.stacks.cluster;
}

function logicalId(stack: Stack, element: unknown): string {
  return stack.getLogicalId(element as CfnElement);
}

/**
 * The CloudFormation properties of each DockerCoins Deployment's manifest resource, as the text
 * CloudFormation compares, by Deployment name and logical id.
 */
function deploymentProperties(s: Synthesized): Map<string, string> {
  const stack = clusterStack(s);
  const resources = s.resources.get(stack.stackName) ?? {};
  return new Map(
    [...stack.dockerCoinsCluster.deploymentManifests].map(([name, manifest]) => {
      const id = logicalId(stack, manifest.node.defaultChild);
      return [`${name} (${id})`, JSON.stringify(resources[id]?.Properties)];
    }),
  );
}

/** Deployments whose manifest resource differs between two synths. */
function changedDeployments(a: Synthesized, b: Synthesized): string[] {
  const before = deploymentProperties(a);
  const after = deploymentProperties(b);
  expect([...after.keys()]).toEqual([...before.keys()]);
  return [...before].filter(([key, properties]) => after.get(key) !== properties).map(([k]) => k);
}

function registryManifestProperties(s: Synthesized): string | undefined {
  const stack = clusterStack(s);
  const manifest = stack.dockerCoinsCluster.node.tryFindChild('Registry');
  const resources = s.resources.get(stack.stackName) ?? {};
  return JSON.stringify(resources[logicalId(stack, manifest?.node.defaultChild)]?.Properties);
}

describe('createCluster from an empty account (no initialImageTag)', () => {
  test("one app: every stack synthesizes, DockerCoins runs the seed's public images, and builds still deploy to it", () => {
    const s = synthApp({ sourceOwner: 'acme', createCluster: true });

    expect([...s.resources.keys()].sort()).toEqual([
      'DockerCoins-Builds',
      'DockerCoins-Cluster',
      'DockerCoins-Deployer',
      'DockerCoins-Registry',
    ]);
    expect([...deploymentProperties(s).values()].join('\n')).toContain(
      'docker.io/dockercoins/hasher:v0.1',
    );
    // The deployer is deployed after the cluster, and so can patch the seeded Deployments.
    expect(s.stacks.deployer.dependencies).toContain(clusterStack(s));
  });

  test('setting initialImageTag later re-applies only the built Deployments, with it', () => {
    const seeded = synthApp({ sourceOwner: 'acme', createCluster: true });
    const tagged = synthApp(CLUSTER);

    expect(
      changedDeployments(seeded, tagged)
        .map((k) => k.split(' ')[0])
        .sort(),
    ).toEqual(['hasher', 'rng', 'webui', 'worker']);
  });
});

describe('createCluster off (the default)', () => {
  test("createStacks makes no Cluster stack, and nothing EKS but the deployer's access entries (deploy and verify roles)", () => {
    const s = synthApp({ sourceOwner: 'acme' });

    expect(s.stacks.cluster).toBeUndefined();
    expect([...s.resources.keys()].sort()).toEqual([
      'DockerCoins-Builds',
      'DockerCoins-Deployer',
      'DockerCoins-Registry',
    ]);
    const eksTypes = [...s.resources].flatMap(([stack, r]) =>
      Object.values(r)
        .filter((x) => /EKS/i.test(x.Type))
        .map((x) => `${stack} ${x.Type}`),
    );
    expect(eksTypes).toEqual([
      'DockerCoins-Deployer AWS::EKS::AccessEntry',
      'DockerCoins-Deployer AWS::EKS::AccessEntry',
    ]);
  });
});

describe('createCluster on', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synthApp(CLUSTER);
  });

  test('the stack is <prefix>-Cluster, deployed after the registry, without cross-stack references', () => {
    const stack = clusterStack(s);

    expect(stack.stackName).toBe('DockerCoins-Cluster');
    expect(stack.dependencies).toEqual([s.stacks.registry]);
    expect(JSON.stringify(Template.fromStack(stack).toJSON())).not.toMatch(
      /Fn::ImportValue|Fn::GetStackOutput/,
    );
  });

  test('outputs: the cluster name and a ready update-kubeconfig command, no bucket', () => {
    const stack = clusterStack(s);
    const template = Template.fromStack(stack);

    expect(Object.keys(template.toJSON().Outputs as object).sort()).toEqual([
      'ClusterName',
      'UpdateKubeconfigCommand',
    ]);
    template.hasOutput('ClusterName', {
      Value: { Ref: logicalId(stack, stack.dockerCoinsCluster.cluster.node.defaultChild) },
    });
    template.hasOutput('UpdateKubeconfigCommand', {
      Value: {
        'Fn::Join': [
          '',
          ['aws eks update-kubeconfig --name dockercoins --region ', { Ref: 'AWS::Region' }],
        ],
      },
    });
  });

  test('logical ids are pinned: a change would replace the cluster or re-create a Deployment', () => {
    const stack = clusterStack(s);
    const resources = s.resources.get(stack.stackName) ?? {};
    const pinned = Object.entries(resources)
      .filter(([, r]) =>
        ['AWS::EKS::Cluster', 'Custom::AWSCDK-EKS-KubernetesResource'].includes(r.Type),
      )
      .map(([id]) => id)
      .sort();

    // A new logical id makes CloudFormation create before it deletes: `kubectl create` of a
    // Deployment that exists fails, and the old resource's delete would remove it.
    expect(pinned).toEqual([
      'DockerCoinsCluster5EEDB8E0',
      'DockerCoinsDeploymenthasher1F1D691B',
      'DockerCoinsDeploymentredis80118702',
      'DockerCoinsDeploymentrng75B6DACA',
      'DockerCoinsDeploymentwebuiB694B018',
      'DockerCoinsDeploymentworkerD0EA12AA',
      'DockerCoinsED205B57',
    ]);
  });
});

describe('createCluster with several environments', () => {
  test("Given environments on the created cluster and on another, Then DockerCoins is installed in the created cluster's namespaces, in their order", () => {
    const s = synthApp({
      ...CLUSTER,
      environments: [
        { name: 'main', namespace: 'dockercoins', branches: ['main'] },
        { name: 'elsewhere', namespace: 'dc', clusterName: 'other', branches: ['main'] },
        { name: 'prod', namespace: 'dockercoins-prod', releaseTags: true },
      ],
    });

    expect([...clusterStack(s).dockerCoinsCluster.installs.keys()]).toEqual([
      'dockercoins',
      'dockercoins-prod',
    ]);
  });
});

describe('createCluster with the in-cluster registry', () => {
  test('the RegistryBucket output names the bucket, whose logical id is pinned', () => {
    const s = synthApp({ ...CLUSTER, inClusterRegistry: true });
    const stack = clusterStack(s);
    const template = Template.fromStack(stack);
    const bucket = stack.dockerCoinsCluster.registryBucket;

    expect(logicalId(stack, bucket?.node.defaultChild)).toBe('DockerCoinsRegistryBucket4862170B');
    template.hasOutput('RegistryBucket', { Value: { Ref: 'DockerCoinsRegistryBucket4862170B' } });
  });
});

describe('the stack refuses a configuration without a cluster to create', () => {
  test('createCluster off: it says what it needs', () => {
    const { config } = resolveConfig({ sourceOwner: 'acme' });

    expect(
      () =>
        new ClusterStack(newApp(), 'Cluster', {
          clusterName: config.clusterName,
          namespaces: [config.namespace],
          services: config.services,
          registry: config.registry,
          cluster: config.cluster,
        }),
    ).toThrow(/needs createCluster=true \(got createCluster=false/);
  });

  test('an extra service without a Deployment fails synth, naming it', () => {
    expect(() => synthApp({ ...CLUSTER, services: 'hasher,rng,webui,worker,miner' })).toThrow(
      /Service "miner" runs in the Deployment "miner", which k8s\/overlays\/ecr does not have/,
    );
  });
});

// The deployer owns the images after the first install. A Deployment's manifest resource whose
// CloudFormation properties are unchanged gets no Update, so kubectl never re-applies it and the
// image the deployer rolled out stays. Each row synthesizes the whole app, as `cdk deploy` does.
describe('image ownership: a later cdk deploy does not re-apply the Deployments', () => {
  let baseline: Synthesized;
  let withRegistry: Synthesized;
  beforeAll(() => {
    baseline = synthApp(CLUSTER);
    withRegistry = synthApp({ ...CLUSTER, inClusterRegistry: true });
  });

  test.each<[string, Record<string, unknown>]>([
    ['other build branches', { buildBranches: 'main,release/1.x' }],
    ['another build concurrency', { buildConcurrency: 5 }],
    [
      'another build timeout and log retention',
      { buildTimeoutMinutes: 60, buildLogRetentionDays: 90 },
    ],
    [
      'pull-request builds, shared paths and arm64 builds',
      { pullRequestBuilds: true, sharedPaths: 'libs', buildArchitecture: 'arm64' },
    ],
    ['another number of commit images to keep', { commitImagesToKeep: 10 }],
    [
      'other registry settings',
      {
        encryption: 'KMS',
        removalPolicy: 'destroy',
        untaggedImageExpiryDays: 7,
        pullAccountIds: '111122223333',
      },
    ],
    ['another source', { sourceOwner: 'other-org', sourceRepo: 'dockercoins' }],
    ['the in-cluster registry switched on', { inClusterRegistry: true }],
    [
      'a second environment, in another namespace of the cluster',
      {
        environments: [
          { name: 'main', namespace: 'dockercoins', branches: ['main'] },
          { name: 'prod', namespace: 'dockercoins-prod', releaseTags: true },
        ],
      },
    ],
    [
      'other deployer settings',
      { deployerAccess: 'rbac', notificationEmail: 'ops@example.com', deployerLogRetentionDays: 7 },
    ],
    [
      'the in-cluster registry on another NodePort',
      { inClusterRegistry: true, registryNodePort: 31000 },
    ],
  ])('Given %s, Then every Deployment resource is byte-identical', (_name, change) => {
    const changed = synthApp({ ...CLUSTER, ...change });

    expect(changedDeployments(baseline, changed)).toEqual([]);
  });

  test('Given a service that joins the builds (worker), Then every Deployment resource is byte-identical', () => {
    const without = synthApp({ ...CLUSTER, services: 'hasher,rng,webui' });

    expect(changedDeployments(without, baseline)).toEqual([]);
  });

  test.each<[string, Record<string, unknown>, string[]]>([
    [
      'another initialImageTag re-applies the four built Deployments',
      { initialImageTag: 'v1.2.0' },
      ['hasher', 'rng', 'webui', 'worker'],
    ],
    ['another redis tag re-applies redis only', { redisImageTag: '7.2' }, ['redis']],
    [
      'another namespace re-applies every Deployment',
      { namespace: 'dockercoins-prod' },
      ['hasher', 'redis', 'rng', 'webui', 'worker'],
    ],
  ])('Given %s (what the README warns about)', (_name, change, expected) => {
    const changed = synthApp({ ...CLUSTER, ...change });

    expect(changedDeployments(baseline, changed).map((key) => key.split(' ')[0])).toEqual(expected);
  });

  test.each<[string, Record<string, unknown>]>([
    ['one service fewer in the builds', { services: 'hasher,rng,webui' }],
    ['other build branches', { buildBranches: 'main,release/1.x' }],
    ['other registry settings', { encryption: 'KMS', commitImagesToKeep: 10 }],
  ])('Given %s, Then the in-cluster registry is not re-applied either', (_name, change) => {
    const changed = synthApp({ ...CLUSTER, inClusterRegistry: true, ...change });

    expect(registryManifestProperties(withRegistry)).toMatch(/registry-config-/);
    expect(registryManifestProperties(changed)).toBe(registryManifestProperties(withRegistry));
  });
});
