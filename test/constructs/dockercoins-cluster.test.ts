import { CfnElement, Stack } from 'aws-cdk-lib';
import { Annotations, Match, Template } from 'aws-cdk-lib/assertions';
import { ServiceConfig } from '../../lib/config';
import {
  DockerCoinsCluster,
  DockerCoinsClusterProps,
  REGISTRY_SERVICE_ACCOUNT,
} from '../../lib/constructs/dockercoins-cluster';
import { DEPLOYER_GROUP } from '../../lib/k8s/dockercoins';
import { newApp } from '../support/app';

const TAG = '6e0de7938dda';
const ECR = '${AWS::AccountId}.dkr.ecr.${AWS::Region}.${AWS::URLSuffix}';

function service(name: string, deployment = name, container = deployment): ServiceConfig {
  return { name, buildContext: `dockercoins/${name}`, deployment, container };
}
const SERVICES = ['hasher', 'rng', 'webui', 'worker'].map((name) => service(name));

interface Synth {
  stack: Stack;
  construct: DockerCoinsCluster;
  template: Template;
}

function build(props: Partial<DockerCoinsClusterProps> = {}): {
  stack: Stack;
  construct: DockerCoinsCluster;
} {
  const stack = new Stack(newApp(), 'Test');
  const construct = new DockerCoinsCluster(stack, 'DockerCoins', {
    clusterName: 'dockercoins',
    services: SERVICES,
    initialImageTag: TAG,
    ...props,
  });
  return { stack, construct };
}

function synth(props: Partial<DockerCoinsClusterProps> = {}): Synth {
  const { stack, construct } = build(props);
  return { stack, construct, template: Template.fromStack(stack) };
}

/** A template value as text: Fn::Join concatenated, Ref and GetAtt written as `${…}`. */
function text(value: unknown): string {
  if (typeof value === 'string') return value;
  const object = value as Record<string, unknown>;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map(text).join(separator);
  }
  if ('Ref' in object) return `\${${String(object.Ref)}}`;
  if ('Fn::GetAtt' in object) return `\${${(object['Fn::GetAtt'] as string[]).join('.')}}`;
  throw new Error(`unexpected template value ${JSON.stringify(value)}`);
}

interface K8sObject {
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: { template?: { spec?: { containers?: { name: string; image: string }[] } } };
  [field: string]: unknown;
}

interface ManifestResource {
  id: string;
  objects: K8sObject[];
  dependsOn: string[];
}

/** Every Kubernetes manifest resource of the template, its manifest parsed. */
function manifests(template: Template): ManifestResource[] {
  const resources = template.findResources('Custom::AWSCDK-EKS-KubernetesResource') as Record<
    string,
    { Properties: { Manifest: unknown }; DependsOn?: string[] }
  >;
  return Object.entries(resources).map(([id, r]) => ({
    id,
    objects: JSON.parse(text(r.Properties.Manifest)) as K8sObject[],
    dependsOn: r.DependsOn ?? [],
  }));
}

function deploymentManifests(template: Template): Map<string, ManifestResource> {
  return new Map(
    manifests(template)
      .filter((m) => m.objects.length === 1 && m.objects[0]!.kind === 'Deployment')
      .map((m) => [m.objects[0]!.metadata.name, m]),
  );
}

function imageOf(resource: ManifestResource | undefined): string | undefined {
  return resource?.objects[0]?.spec?.template?.spec?.containers?.[0]?.image;
}

function resourceOf(template: Template, id: string): { Properties: Record<string, unknown> } {
  const resources = (
    template.toJSON() as { Resources: Record<string, { Properties: Record<string, unknown> }> }
  ).Resources;
  const found = resources[id];
  if (found === undefined) throw new Error(`no resource ${id} in the template`);
  return found;
}

function logicalIdOf(stack: Stack, element: unknown): string {
  return stack.getLogicalId(element as CfnElement);
}

describe('the cluster (registry off)', () => {
  let s: Synth;
  beforeAll(() => {
    s = synth();
  });

  test('an EKS Auto Mode cluster named clusterName, Kubernetes 1.35, every control-plane log on', () => {
    s.template.hasResourceProperties('AWS::EKS::Cluster', {
      Name: 'dockercoins',
      Version: '1.35',
      ComputeConfig: {
        Enabled: true,
        NodePools: ['system', 'general-purpose'],
        NodeRoleArn: {
          'Fn::GetAtt': [logicalIdOf(s.stack, s.construct.nodeRole.node.defaultChild), 'Arn'],
        },
      },
      Logging: {
        ClusterLogging: {
          EnabledTypes: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'].map(
            (type) => ({ Type: type }),
          ),
        },
      },
      AccessConfig: { AuthenticationMode: 'API', BootstrapClusterCreatorAdminPermissions: false },
    });
  });

  test('the API endpoint is public and private; control plane and nodes use the private subnets only', () => {
    const cluster = Object.values(s.template.findResources('AWS::EKS::Cluster'))[0] as {
      Properties: { ResourcesVpcConfig: Record<string, unknown> };
    };
    expect(cluster.Properties.ResourcesVpcConfig).toMatchObject({
      EndpointPrivateAccess: true,
      EndpointPublicAccess: true,
      PublicAccessCidrs: ['0.0.0.0/0'],
      SubnetIds: s.construct.vpc.privateSubnets.map((subnet) => ({
        Ref: logicalIdOf(s.stack, subnet.node.defaultChild),
      })),
    });
  });

  test('endpointPublicCidrs: the public endpoint answers exactly those blocks, the private one stays on', () => {
    const { template } = synth({ endpointPublicCidrs: ['203.0.113.0/24', '198.51.100.7/32'] });
    const cluster = Object.values(template.findResources('AWS::EKS::Cluster'))[0] as {
      Properties: { ResourcesVpcConfig: Record<string, unknown> };
    };
    expect(cluster.Properties.ResourcesVpcConfig).toMatchObject({
      EndpointPrivateAccess: true,
      EndpointPublicAccess: true,
      PublicAccessCidrs: ['203.0.113.0/24', '198.51.100.7/32'],
    });
  });

  test('a VPC over two zones with one NAT gateway and flow logs to CloudWatch Logs, kept 30 days', () => {
    s.template.resourceCountIs('AWS::EC2::Subnet', 4);
    s.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    s.template.hasResourceProperties('AWS::EC2::FlowLog', {
      ResourceType: 'VPC',
      TrafficType: 'ALL',
      LogDestinationType: 'cloud-watch-logs',
    });
    const flowLog = Object.values(s.template.findResources('AWS::EC2::FlowLog'))[0] as {
      Properties: { LogGroupName: { Ref: string } };
    };
    expect(resourceOf(s.template, flowLog.Properties.LogGroupName.Ref).Properties).toEqual({
      RetentionInDays: 30,
    });
  });

  test('control-plane logs go to a group with bounded retention that exists before the cluster', () => {
    const groups = s.template.findResources('AWS::Logs::LogGroup', {
      Properties: { LogGroupName: '/aws/eks/dockercoins/cluster' },
    });
    expect(Object.values(groups)).toEqual([
      expect.objectContaining({
        Properties: { LogGroupName: '/aws/eks/dockercoins/cluster', RetentionInDays: 30 },
      }),
    ]);
    s.template.hasResource('AWS::EKS::Cluster', {
      DependsOn: Match.arrayWith([Object.keys(groups)[0]!]),
    });
  });

  test('the node role: the two policies AWS documents for Auto Mode, plus the pull-through cache, nothing else', () => {
    const role = resourceOf(
      s.template,
      logicalIdOf(s.stack, s.construct.nodeRole.node.defaultChild),
    );
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        { Effect: 'Allow', Principal: { Service: 'ec2.amazonaws.com' }, Action: 'sts:AssumeRole' },
      ],
    });
    expect((role.Properties.ManagedPolicyArns as unknown[]).map((arn) => text(arn)).sort()).toEqual(
      [
        'arn:${AWS::Partition}:iam::aws:policy/AmazonEC2ContainerRegistryPullOnly',
        'arn:${AWS::Partition}:iam::aws:policy/AmazonEKSWorkerNodeMinimalPolicy',
      ],
    );
    const policies = role.Properties.Policies as {
      PolicyDocument: { Statement: { Action: string[]; Effect: string; Resource: unknown }[] };
    }[];
    expect(policies).toHaveLength(1);
    const statements = policies[0]!.PolicyDocument.Statement;
    expect(statements).toHaveLength(1);
    expect(statements[0]).toMatchObject({
      Effect: 'Allow',
      Action: ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
    });
    expect(text(statements[0]!.Resource)).toBe(
      'arn:${AWS::Partition}:ecr:${AWS::Region}:${AWS::AccountId}:repository/dockercoins-ecr-public/*',
    );
    // No other policy is attached to the node role.
    expect(
      Object.values(s.template.findResources('AWS::IAM::Policy')).filter((p) =>
        JSON.stringify(p).includes(logicalIdOf(s.stack, s.construct.nodeRole.node.defaultChild)),
      ),
    ).toEqual([]);
  });

  test('a kubectl handler with the kubectl 1.35 layer applies the manifests', () => {
    s.template.hasResourceProperties('AWS::Lambda::LayerVersion', {
      Description: Match.stringLikeRegexp('kubectl.*1\\.35'),
    });
    const handlers = s.template.findResources('AWS::Lambda::Function', {
      Properties: { Description: 'onEvent handler for EKS kubectl resource provider' },
    });
    expect(Object.keys(handlers)).toHaveLength(1);
    expect(manifests(s.template).length).toBeGreaterThan(0);
  });

  test('each Deployment is its own manifest resource, with the ECR image at the initial tag', () => {
    const deployments = deploymentManifests(s.template);
    expect([...deployments.keys()].sort()).toEqual(['hasher', 'redis', 'rng', 'webui', 'worker']);
    for (const resource of deployments.values()) {
      expect(resource.objects.map((o) => o.kind)).toEqual(['Deployment']);
      expect(resource.objects[0]!.metadata.namespace).toBe('dockercoins');
    }
    for (const name of ['hasher', 'rng', 'webui', 'worker']) {
      expect(imageOf(deployments.get(name))).toBe(`${ECR}/dockercoins/${name}:${TAG}`);
    }
  });

  test('redis is pulled through the ECR Public cache, at the configured tag', () => {
    expect(imageOf(deploymentManifests(s.template).get('redis'))).toBe(
      `${ECR}/dockercoins-ecr-public/docker/library/redis:7.4`,
    );
  });

  test('Namespace, Services and the deployer RBAC share one other manifest, which every Deployment waits for', () => {
    const others = manifests(s.template).filter(
      (m) => !m.objects.some((o) => o.kind === 'Deployment'),
    );
    expect(others).toHaveLength(1);
    const base = others[0]!;
    expect(base.objects.map((o) => `${o.kind}/${o.metadata.name}`)).toEqual([
      'Namespace/dockercoins',
      'Service/hasher',
      'Service/redis',
      'Service/rng',
      'Service/webui',
      'Role/dockercoins-deployer',
      'RoleBinding/dockercoins-deployer',
    ]);
    for (const deployment of deploymentManifests(s.template).values()) {
      expect(deployment.dependsOn).toContain(base.id);
    }
  });

  test("the RoleBinding names the group the deployer's access entry maps its role to (rbac mode)", () => {
    const binding = manifests(s.template)
      .flatMap((m) => m.objects)
      .find((o) => o.kind === 'RoleBinding');
    expect(binding?.subjects).toEqual([
      { apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: DEPLOYER_GROUP },
    ]);
  });

  test('the Role allows get and patch on the Deployments of built services only (not redis), and reading what verification needs', () => {
    const role = manifests(s.template)
      .flatMap((m) => m.objects)
      .find((o) => o.kind === 'Role');
    expect(role?.rules).toEqual([
      {
        apiGroups: ['apps'],
        resources: ['deployments'],
        resourceNames: ['hasher', 'rng', 'webui', 'worker'],
        verbs: ['get', 'patch'],
      },
      { apiGroups: ['apps'], resources: ['replicasets'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list'] },
      { apiGroups: [''], resources: ['events'], verbs: ['list'] },
    ]);
  });

  test('no in-cluster registry: no bucket, no Pod Identity, no registry namespace', () => {
    s.template.resourceCountIs('AWS::S3::Bucket', 0);
    s.template.resourceCountIs('AWS::EKS::PodIdentityAssociation', 0);
    expect(
      manifests(s.template).flatMap((m) => m.objects.map((o) => o.metadata.namespace)),
    ).not.toContain('registry');
    expect(s.construct.registryBucket).toBeUndefined();
  });
});

describe('from an empty account: no initialImageTag', () => {
  test("each built service starts from the seed's public image; redis still through the cache", () => {
    const { template } = synth({ initialImageTag: undefined });
    const deployments = deploymentManifests(template);

    expect(
      Object.fromEntries([...deployments].map(([name, resource]) => [name, imageOf(resource)])),
    ).toEqual({
      hasher: 'docker.io/dockercoins/hasher:v0.1',
      rng: 'docker.io/dockercoins/rng:v0.1',
      webui: 'docker.io/dockercoins/webui:v0.1',
      worker: 'docker.io/dockercoins/worker:v0.1',
      redis: `${ECR}/dockercoins-ecr-public/docker/library/redis:7.4`,
    });
    // No build annotations: the deployer's plan sees nothing to protect, and the first build
    // replaces the image (test/lambda/deployer/plan.test.ts).
    for (const resource of deployments.values()) {
      expect(resource.objects[0]!.metadata).not.toHaveProperty('annotations');
    }
  });

  test('a service with no public seed image is refused, naming it and the fix', () => {
    expect(() =>
      build({
        initialImageTag: undefined,
        services: [
          ...SERVICES,
          { name: 'miner', buildContext: 'miner', deployment: 'worker', container: 'miner' },
        ],
      }),
    ).toThrow(/Service "miner" has no public seed image .*give initialImageTag/);
  });
});

describe('DockerCoins in another namespace', () => {
  test('every object, the deployer Role and RoleBinding included, moves to that namespace', () => {
    const { template } = synth({ namespaces: ['dockercoins-prod'] });

    const objects = manifests(template).flatMap((m) => m.objects);
    expect(objects.find((o) => o.kind === 'Namespace')?.metadata.name).toBe('dockercoins-prod');
    const namespaced = objects.filter((o) => o.kind !== 'Namespace');
    expect(namespaced.map((o) => o.kind)).toEqual(
      expect.arrayContaining(['Role', 'RoleBinding', 'Service', 'Deployment']),
    );
    expect(new Set(namespaced.map((o) => o.metadata.namespace))).toEqual(
      new Set(['dockercoins-prod']),
    );
  });
});

describe('services and their Deployments', () => {
  test('a service built under another name runs in the Deployment it names', () => {
    const { template } = synth({
      services: [...SERVICES.slice(0, 3), service('miner', 'worker')],
    });

    expect(imageOf(deploymentManifests(template).get('worker'))).toBe(
      `${ECR}/dockercoins/miner:${TAG}`,
    );
    // The deployer patches the Deployment that runs miner: the Role names it.
    const role = manifests(template)
      .flatMap((m) => m.objects)
      .find((o) => o.kind === 'Role') as { rules: { resourceNames: string[] }[] } | undefined;
    expect(role?.rules[0]?.resourceNames).toEqual(['hasher', 'rng', 'webui', 'worker']);
  });

  test('a Deployment that runs no built service is left out of the Role', () => {
    const { template } = synth({ services: SERVICES.slice(0, 2) });

    const role = manifests(template)
      .flatMap((m) => m.objects)
      .find((o) => o.kind === 'Role') as { rules: { resourceNames: string[] }[] } | undefined;
    expect(role?.rules[0]?.resourceNames).toEqual(['hasher', 'rng']);
  });

  test('a configured service without a Deployment is refused, and nothing is created', () => {
    const stack = new Stack(newApp(), 'Test');
    expect(
      () =>
        new DockerCoinsCluster(stack, 'DockerCoins', {
          clusterName: 'dockercoins',
          services: [...SERVICES, service('miner')],
          initialImageTag: TAG,
        }),
    ).toThrow(
      /Service "miner" runs in the Deployment "miner", which k8s\/overlays\/ecr does not have \(it has hasher, redis, rng, webui, worker\)/,
    );
    expect(stack.node.findAll().filter((c) => c instanceof CfnElement)).toEqual([]);
  });

  test('two services in one container are refused: a container has one image', () => {
    expect(() => build({ services: [...SERVICES, service('miner', 'worker')] })).toThrow(
      /Services "worker" and "miner" both run in the container "worker" of the Deployment "worker"/,
    );
  });

  test('a configured service whose container is not in its Deployment is refused, naming the containers', () => {
    expect(() => build({ services: [service('hasher', 'hasher', 'sidecar')] })).toThrow(
      /container "sidecar" of the Deployment "hasher", which has only hasher/,
    );
  });

  test('a Deployment that runs one of our images that no service builds gets a warning', () => {
    const { stack } = build({ services: SERVICES.slice(0, 3) });

    Annotations.fromStack(stack).hasWarning(
      '/Test/DockerCoins',
      Match.stringLikeRegexp(
        "^Deployment worker runs dockercoins/worker:6e0de7938dda from this account's ECR, but no configured service builds",
      ),
    );
  });

  test('with every image built, there is no warning', () => {
    const { stack } = build();

    expect(Annotations.fromStack(stack).findWarning('*', Match.anyValue())).toEqual([]);
  });
});

describe('the in-cluster registry', () => {
  let s: Synth;
  beforeAll(() => {
    s = synth({ inClusterRegistry: true, registryNodePort: 31000 });
  });

  test('a bucket: S3-managed encryption, no public access, TLS only, retained, unversioned', () => {
    s.template.hasResource('AWS::S3::Bucket', {
      Properties: {
        BucketEncryption: {
          ServerSideEncryptionConfiguration: [
            { ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } },
          ],
        },
        PublicAccessBlockConfiguration: {
          BlockPublicAcls: true,
          BlockPublicPolicy: true,
          IgnorePublicAcls: true,
          RestrictPublicBuckets: true,
        },
        VersioningConfiguration: Match.absent(),
      },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({
            Effect: 'Deny',
            Action: 's3:*',
            Condition: { Bool: { 'aws:SecureTransport': 'false' } },
          }),
        ]),
      },
    });
  });

  test('a Pod Identity role that may do exactly what the S3 storage driver needs, on this bucket only', () => {
    const roleId = logicalIdOf(s.stack, s.construct.registryRole?.node.defaultChild);
    const bucketId = logicalIdOf(s.stack, s.construct.registryBucket?.node.defaultChild);
    const role = resourceOf(s.template, roleId);
    expect(role.Properties.AssumeRolePolicyDocument).toEqual({
      Version: '2012-10-17',
      Statement: [
        {
          Effect: 'Allow',
          Principal: { Service: 'pods.eks.amazonaws.com' },
          Action: ['sts:AssumeRole', 'sts:TagSession'],
        },
      ],
    });
    expect(role.Properties.ManagedPolicyArns).toBeUndefined();
    const policies = Object.values(
      s.template.findResources('AWS::IAM::Policy', {
        Properties: { Roles: [{ Ref: roleId }] },
      }),
    ) as { Properties: { PolicyDocument: { Statement: unknown[] } } }[];
    expect(policies).toHaveLength(1);
    expect(policies[0]!.Properties.PolicyDocument.Statement).toEqual([
      {
        Sid: 'RegistryBucket',
        Effect: 'Allow',
        Action: ['s3:GetBucketLocation', 's3:ListBucket', 's3:ListBucketMultipartUploads'],
        Resource: { 'Fn::GetAtt': [bucketId, 'Arn'] },
      },
      {
        Sid: 'RegistryObjects',
        Effect: 'Allow',
        Action: [
          's3:AbortMultipartUpload',
          's3:DeleteObject',
          's3:GetObject',
          's3:ListMultipartUploadParts',
          's3:PutObject',
        ],
        Resource: { 'Fn::Join': ['', [{ 'Fn::GetAtt': [bucketId, 'Arn'] }, '/*']] },
      },
    ]);
  });

  test('the role is bound to the registry ServiceAccount by Pod Identity, without an add-on (Auto Mode has the agent)', () => {
    s.template.hasResourceProperties('AWS::EKS::PodIdentityAssociation', {
      ClusterName: { Ref: logicalIdOf(s.stack, s.construct.cluster.node.defaultChild) },
      Namespace: 'registry',
      ServiceAccount: REGISTRY_SERVICE_ACCOUNT,
      RoleArn: {
        'Fn::GetAtt': [logicalIdOf(s.stack, s.construct.registryRole?.node.defaultChild), 'Arn'],
      },
    });
    s.template.resourceCountIs('AWS::EKS::Addon', 0);
  });

  test('the registry manifests: S3 storage in this bucket and region, the ServiceAccount, the NodePort', () => {
    const registry = manifests(s.template).find((m) =>
      m.objects.some((o) => o.metadata.namespace === 'registry'),
    );
    expect(registry).toBeDefined();
    const objects = registry!.objects;
    const bucketId = logicalIdOf(s.stack, s.construct.registryBucket?.node.defaultChild);
    expect(objects.map((o) => o.kind)).not.toContain('PersistentVolumeClaim');
    expect(objects.find((o) => o.kind === 'ServiceAccount')?.metadata.name).toBe(
      REGISTRY_SERVICE_ACCOUNT,
    );
    const config = (objects.find((o) => o.kind === 'ConfigMap')?.data as Record<string, string>)[
      'config.yml'
    ];
    expect(config).toMatch(
      new RegExp(`\\n\\s+bucket: \\$\\{${bucketId}\\}\\n\\s+region: \\$\\{AWS::Region\\}\\n`),
    );
    const service = objects.find((o) => o.kind === 'Service') as
      { spec: { ports: { nodePort: number }[] } } | undefined;
    expect(service?.spec.ports[0]?.nodePort).toBe(31000);
    // The registry's manifests are theirs: DockerCoins' Deployments are unchanged.
    expect(deploymentManifests(s.template).size).toBe(5);
  });
});

describe('DockerCoins in several namespaces (one per environment on the cluster)', () => {
  test('each namespace gets its own copy: Namespace, Services, RBAC and each Deployment, with the initial tag', () => {
    const { template } = synth({ namespaces: ['dockercoins', 'dockercoins-prod'] });

    const objects = manifests(template).flatMap((m) => m.objects);
    expect(
      objects
        .filter((o) => o.kind !== 'Namespace')
        .map((o) => `${o.metadata.namespace}/${o.kind}/${o.metadata.name}`)
        .sort(),
    ).toEqual(
      ['dockercoins', 'dockercoins-prod']
        .flatMap((ns) => [
          ...['hasher', 'redis', 'rng', 'webui', 'worker'].map((d) => `${ns}/Deployment/${d}`),
          ...['hasher', 'redis', 'rng', 'webui'].map((svc) => `${ns}/Service/${svc}`),
          `${ns}/Role/dockercoins-deployer`,
          `${ns}/RoleBinding/dockercoins-deployer`,
        ])
        .sort(),
    );
    const prodImages = manifests(template)
      .filter((m) => m.objects[0]?.metadata.namespace === 'dockercoins-prod')
      .filter((m) => m.objects[0]?.kind === 'Deployment')
      .map((m) => imageOf(m))
      .sort();
    expect(prodImages).toEqual([
      `${ECR}/dockercoins-ecr-public/docker/library/redis:7.4`,
      ...['hasher', 'rng', 'webui', 'worker'].map((name) => `${ECR}/dockercoins/${name}:${TAG}`),
    ]);
  });

  test('each Deployment waits for the base manifest of its own namespace', () => {
    const { template } = synth({ namespaces: ['dockercoins', 'dockercoins-prod'] });

    const all = manifests(template);
    const baseOf = new Map(
      all
        .filter((m) => m.objects.some((o) => o.kind === 'Namespace'))
        .map((m) => [m.objects.find((o) => o.kind === 'Namespace')!.metadata.name, m.id]),
    );
    const deployments = all.filter((m) => m.objects[0]?.kind === 'Deployment');
    expect(deployments).toHaveLength(10);
    for (const deployment of deployments) {
      expect(deployment.dependsOn).toContain(
        baseOf.get(deployment.objects[0]!.metadata.namespace!),
      );
    }
  });

  test('the first namespace keeps the logical ids and properties of a one-namespace install', () => {
    const one = synth({ namespaces: ['dockercoins'] });
    const two = synth({ namespaces: ['dockercoins', 'dockercoins-prod'] });

    const resources = (t: Template): Record<string, unknown> =>
      (t.toJSON() as { Resources: Record<string, unknown> }).Resources;
    const before = Object.fromEntries(
      manifests(one.template).map((m) => [m.id, resources(one.template)[m.id]]),
    );
    for (const [id, resource] of Object.entries(before)) {
      expect(resources(two.template)[id]).toEqual(resource);
    }
    expect(two.construct.installs.get('dockercoins')?.baseManifest).toBe(
      two.construct.baseManifest,
    );
    expect([...two.construct.installs.keys()]).toEqual(['dockercoins', 'dockercoins-prod']);
  });

  test.each<[string, string[], RegExp]>([
    ['an empty list', [], /namespaces is empty: DockerCoins would be installed nowhere/],
    ['a namespace twice', ['dc', 'dc'], /namespaces lists "dc" twice/],
    ['a name Kubernetes refuses', ['Prod'], /^namespace "Prod" is not a Kubernetes namespace name/],
  ])('%s is refused before anything is created', (_name, namespaces, expected) => {
    const stack = new Stack(newApp(), 'Test');

    expect(
      () =>
        new DockerCoinsCluster(stack, 'DockerCoins', {
          clusterName: 'dockercoins',
          services: SERVICES,
          initialImageTag: TAG,
          namespaces,
        }),
    ).toThrow(expected);
    expect(stack.node.findAll().filter((c) => c instanceof CfnElement)).toEqual([]);
  });
});
