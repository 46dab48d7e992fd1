import { KubectlV35Layer } from '@aws-cdk/lambda-layer-kubectl-v35';
import { Annotations, Arn, Aws, CfnElement, RemovalPolicy, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as eks from 'aws-cdk-lib/aws-eks-v2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { DEFAULTS, defaultPullThroughCachePrefix, SEED_IMAGES, ServiceConfig } from '../config';
import { deployerRbacManifests, dockerCoinsManifests } from '../k8s/dockercoins';
import { KubernetesObject } from '../k8s/kustomize';
import {
  REGISTRY_DEFAULT_NODE_PORT,
  REGISTRY_NAMESPACE,
  REGISTRY_S3_BUCKET_ACTIONS,
  REGISTRY_S3_OBJECT_ACTIONS,
  registryManifests,
} from '../k8s/registry';

/** Properties of a {@link DockerCoinsCluster}. */
export interface DockerCoinsClusterProps {
  /** Name of the EKS cluster (a physical name: kubeconfig, the deployer and people use it). */
  readonly clusterName: string;

  /** The services we build: each must run as a container of a Deployment in k8s/. */
  readonly services: readonly ServiceConfig[];

  /**
   * The tag DockerCoins is first installed with: a commit or release tag already pushed to every
   * service repository. After the first install the deployer owns the images (see the class doc).
   * @default - the seed's public images, `docker.io/dockercoins/<service>:v0.1` (SEED_IMAGES; only
   *   hasher, rng, webui and worker have one), until each service's first build deploys: what makes
   *   one `cdk deploy --all` work from an empty account
   */
  readonly initialImageTag?: string;

  /**
   * The namespaces DockerCoins is installed in, one copy in each, with the deployer's Role and
   * RoleBinding: one per environment that deploys to this cluster.
   *
   * The first namespace's manifest resources keep the construct ids of a one-namespace install
   * (`DockerCoins`, `Deployment-<name>`); every other namespace's live under
   * `Namespace-<namespace>`. So adding or removing a later namespace leaves the others untouched,
   * while making another namespace the first replaces resources: keep the first one first.
   * @default ['dockercoins']
   */
  readonly namespaces?: readonly string[];

  /**
   * ECR repositories are `<repositoryPrefix>/<service>`, in this account and region.
   * @default 'dockercoins'
   */
  readonly repositoryPrefix?: string;

  /**
   * ECR prefix of the pull-through cache rule for ECR Public; redis is pulled through it and the
   * node role may create repositories under it.
   * @default '<repositoryPrefix>-ecr-public'
   */
  readonly pullThroughCachePrefix?: string;

  /**
   * Tag of the official redis image (`docker/library/redis`), pulled through the cache.
   * @default '7.4'
   */
  readonly redisImageTag?: string;

  /**
   * Install the CNCF distribution registry in namespace `registry`, storing in an S3 bucket this
   * construct creates, with its IAM role through EKS Pod Identity.
   * @default false
   */
  readonly inClusterRegistry?: boolean;

  /**
   * The NodePort of the in-cluster registry (`127.0.0.1:<port>` on every node).
   * @default 30500
   */
  readonly registryNodePort?: number;

  /**
   * The IPv4 CIDR blocks that may reach the cluster's public API endpoint; the private endpoint
   * (nodes, the deployer in the VPC) is always on. Requests still need an IAM access entry.
   * @default ['0.0.0.0/0'] - any address
   */
  readonly endpointPublicCidrs?: readonly string[];

  /**
   * How long CloudWatch Logs keeps the VPC flow logs and the control-plane logs.
   * @default logs.RetentionDays.ONE_MONTH
   */
  readonly logRetention?: logs.RetentionDays;
}

/** DockerCoins in one namespace: the manifest resources that install it there. */
export interface DockerCoinsInstall {
  /** The Namespace, the Services and the deployer's Role and RoleBinding. */
  readonly baseManifest: eks.KubernetesManifest;
  /** One manifest resource per Deployment, by Deployment name. */
  readonly deploymentManifests: ReadonlyMap<string, eks.KubernetesManifest>;
}

/** The manifests refer to a Deployment or container that does not exist, or cannot be split. */
export class ClusterManifestError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ClusterManifestError';
  }
}

/** The Kubernetes version of the cluster; the kubectl layer must stay within one minor of it. */
const KUBERNETES_VERSION = eks.KubernetesVersion.V1_35;

/** Every control-plane log type: cdk-nag's EKS2 asks for all of them, and they are what an incident needs. */
const CONTROL_PLANE_LOGS = [
  eks.ClusterLoggingTypes.API,
  eks.ClusterLoggingTypes.AUDIT,
  eks.ClusterLoggingTypes.AUTHENTICATOR,
  eks.ClusterLoggingTypes.CONTROLLER_MANAGER,
  eks.ClusterLoggingTypes.SCHEDULER,
];

/** The ServiceAccount of the in-cluster registry (namespace `registry`), bound to its IAM role. */
export const REGISTRY_SERVICE_ACCOUNT = 'registry';

/**
 * An EKS Auto Mode cluster in its own VPC, with DockerCoins installed from our ECR repositories
 * and, optionally, the in-cluster registry.
 *
 * Image ownership: CDK installs each DockerCoins Deployment once, with `initialImageTag` (or,
 * without one, the seed's public image: the first successful build of each service replaces it,
 * as the deployer does for every build); from then on the deployer patches the images. CDK's kubectl handler runs `kubectl apply` whenever a
 * manifest resource's properties change, and a client-side apply sets every field the manifest
 * declares, the image included: it would roll back whatever the deployer rolled out. So each
 * Deployment is its own manifest resource whose properties are made from that Deployment alone
 * (its manifest in k8s/, its image, the namespace): changing anything else (builds, the registry,
 * the in-cluster registry, another Deployment) leaves its properties byte-identical, CloudFormation
 * issues no Update and kubectl never re-applies it.
 *
 * What does re-apply a Deployment, and so resets its image to `initialImageTag`: changing
 * `initialImageTag`, the Deployment's manifest in k8s/ (a probe, a limit, a label), the namespace,
 * the repository prefix, or for redis the redis tag or cache prefix. Before such a `cdk deploy`,
 * set `initialImageTag` to the tag that runs now (`kubectl get deploy -o wide`), so the re-apply
 * keeps it.
 */
export class DockerCoinsCluster extends Construct {
  public readonly vpc: ec2.Vpc;
  public readonly cluster: eks.Cluster;
  /** The role of the Auto Mode nodes (pulls from ECR and through the pull-through cache). */
  public readonly nodeRole: iam.Role;
  /** DockerCoins in each namespace, by namespace, the first namespace first. */
  public readonly installs: ReadonlyMap<string, DockerCoinsInstall>;
  /** The first namespace's Namespace, Services and the deployer's Role and RoleBinding. */
  public readonly baseManifest: eks.KubernetesManifest;
  /** The first namespace's Deployments, one manifest resource each, by Deployment name. */
  public readonly deploymentManifests: ReadonlyMap<string, eks.KubernetesManifest>;
  /** The in-cluster registry's bucket, when `inClusterRegistry` is on. */
  public readonly registryBucket?: s3.Bucket;
  /** The in-cluster registry's IAM role (EKS Pod Identity), when `inClusterRegistry` is on. */
  public readonly registryRole?: iam.Role;

  private readonly clusterName: string;

  constructor(scope: Construct, id: string, props: DockerCoinsClusterProps) {
    super(scope, id);
    const namespaces = props.namespaces ?? [DEFAULTS.namespace];
    checkNamespaces(namespaces);
    const repositoryPrefix = props.repositoryPrefix ?? DEFAULTS.repositoryPrefix;
    const pullThroughCachePrefix =
      props.pullThroughCachePrefix ?? defaultPullThroughCachePrefix(repositoryPrefix);
    const redisImageTag = props.redisImageTag ?? DEFAULTS.redisImageTag;
    const logRetention = props.logRetention ?? logs.RetentionDays.ONE_MONTH;
    this.clusterName = props.clusterName;

    // Render and check before creating anything: a refused configuration leaves no half-built tree.
    const registryHost = `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`;
    const registry = `${registryHost}/${repositoryPrefix}`;
    const imageOwners = new Map<string, string>();
    for (const service of props.services) {
      const where = `${service.deployment}/${service.container}`;
      const owner = imageOwners.get(where);
      if (owner !== undefined) {
        throw new ClusterManifestError(
          `Services "${owner}" and "${service.name}" both run in the container "${service.container}" of the ` +
            `Deployment "${service.deployment}", which has one image. Give each its own "deployment" or "container" ` +
            'in the services setting.',
        );
      }
      imageOwners.set(where, service.name);
    }
    // The deployer patches only the Deployments of built services: its Role names those alone.
    const patchedDeployments = [...new Set(props.services.map((s) => s.deployment))];
    const { initialImageTag } = props;
    const seeded = initialImageTag === undefined;
    if (seeded) {
      const unseeded = props.services.find(
        (s) => !(SEED_IMAGES.services as readonly string[]).includes(s.name),
      );
      if (unseeded !== undefined) {
        throw new ClusterManifestError(
          `Service "${unseeded.name}" has no public seed image (only ${SEED_IMAGES.services.join(', ')} do): ` +
            'give initialImageTag, a tag every service repository has.',
        );
      }
    }
    const imageOf = (service: string): string =>
      initialImageTag === undefined
        ? `${SEED_IMAGES.registry}/${service}:${SEED_IMAGES.tag}`
        : `${registry}/${service}:${initialImageTag}`;
    const rendered = namespaces.map((namespace) => {
      const { base, deployments } = splitManifests(
        dockerCoinsManifests({
          registry: seeded ? SEED_IMAGES.registry : registry,
          tag: initialImageTag ?? SEED_IMAGES.tag,
          redisImage: `${registryHost}/${pullThroughCachePrefix}/docker/library/redis:${redisImageTag}`,
          namespace,
        }),
      );
      for (const service of props.services) {
        containerOf(deployments, service).image = imageOf(service.name);
      }
      const rbac = deployerRbacManifests({ namespace, deployments: patchedDeployments });
      return { namespace, base: [...base, ...rbac], deployments };
    });
    for (const { deployment, image } of unbuiltImages(
      rendered[0]?.deployments ?? new Map<string, KubernetesObject>(),
      props.services,
      registryHost,
      repositoryPrefix,
    )) {
      Annotations.of(this).addWarningV2(
        'dockercoins-ship:cluster:unbuiltImage',
        `Deployment ${deployment} runs ${image} from this account's ECR, but no configured service builds ` +
          'that image: its repository does not exist, so its pods cannot start. Add the service to the services setting.',
      );
    }

    this.vpc = new ec2.Vpc(this, 'Vpc', {
      maxAzs: 2,
      // One NAT gateway keeps the cost down; the price is that nodes lose egress (ECR pulls,
      // AWS APIs) when its zone fails. Set one per zone for a production cluster.
      natGateways: 1,
      subnetConfiguration: [
        { name: 'Public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 },
        { name: 'Private', subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
      ],
    });
    this.vpc.addFlowLog('FlowLog', {
      destination: ec2.FlowLogDestination.toCloudWatchLogs(
        new logs.LogGroup(this, 'FlowLogs', {
          retention: logRetention,
          removalPolicy: RemovalPolicy.DESTROY,
        }),
      ),
      trafficType: ec2.FlowLogTrafficType.ALL,
    });

    this.nodeRole = new iam.Role(this, 'NodeRole', {
      description: `Nodes of the EKS Auto Mode cluster ${props.clusterName}`,
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      managedPolicies: [
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEKSWorkerNodeMinimalPolicy'),
        iam.ManagedPolicy.fromAwsManagedPolicyName('AmazonEC2ContainerRegistryPullOnly'),
      ],
      inlinePolicies: {
        PullThroughCache: new iam.PolicyDocument({
          statements: [
            new iam.PolicyStatement({
              sid: 'PullThroughCache',
              // The first pull of an upstream image creates its repository under the prefix.
              actions: ['ecr:BatchImportUpstreamImage', 'ecr:CreateRepository'],
              resources: [
                Arn.format(
                  {
                    service: 'ecr',
                    resource: 'repository',
                    resourceName: `${pullThroughCachePrefix}/*`,
                  },
                  Stack.of(this),
                ),
              ],
            }),
          ],
        }),
      },
    });

    Validations.of(this.nodeRole).acknowledge(
      ...['AmazonEKSWorkerNodeMinimalPolicy', 'AmazonEC2ContainerRegistryPullOnly'].map(
        (policy) => ({
          id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
          reason:
            'AWS documents exactly these two managed policies for the node role of EKS Auto Mode: what the ' +
            'node agent and image pulls need, kept current by AWS as Auto Mode changes.',
        }),
      ),
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ecr:<AWS::Region>:<AWS::AccountId>:repository/${pullThroughCachePrefix}/*]`,
        reason:
          'The pull-through cache creates one repository per upstream image under its prefix on the first pull; ' +
          'the wildcard covers that prefix only, for importing upstream images and creating their repositories.',
      },
    );

    // EKS writes control-plane logs to this group; creating it first bounds their retention
    // (EKS would create it without any). DESTROY: the cluster is recreatable, and a retained
    // group would make recreating it fail on the taken name.
    const controlPlaneLogs = new logs.LogGroup(this, 'ControlPlaneLogs', {
      logGroupName: `/aws/eks/${props.clusterName}/cluster`,
      retention: logRetention,
      removalPolicy: RemovalPolicy.DESTROY,
    });

    this.cluster = new eks.Cluster(this, 'Cluster', {
      clusterName: props.clusterName,
      version: KUBERNETES_VERSION,
      vpc: this.vpc,
      // Control-plane interfaces and Auto Mode nodes in the private subnets only; public subnets
      // hold the NAT gateway and internet-facing load balancers.
      vpcSubnets: [{ subnetType: ec2.SubnetType.PRIVATE_WITH_EGRESS }],
      endpointAccess: eks.EndpointAccess.PUBLIC_AND_PRIVATE.onlyFrom(
        ...(props.endpointPublicCidrs ?? ['0.0.0.0/0']),
      ),
      clusterLogging: CONTROL_PLANE_LOGS,
      defaultCapacityType: eks.DefaultCapacityType.AUTOMODE,
      compute: { nodePools: ['system', 'general-purpose'], nodeRole: this.nodeRole },
      // Whoever runs CloudFormation (CDK's deploy role) needs no Kubernetes rights: the kubectl
      // handler has its own admin access entry, people get theirs explicitly (README).
      bootstrapClusterCreatorAdminPermissions: false,
      kubectlProviderOptions: { kubectlLayer: new KubectlV35Layer(this, 'KubectlLayer') },
    });
    // The cluster resource only: its kubectl handler need not wait for the log group.
    this.cluster.node.defaultChild?.node.addDependency(controlPlaneLogs);
    acknowledgeClusterFindings(this.cluster);

    // Ids below are a contract: each is part of a resource's logical id and of its prune label.
    // The first namespace's resources sit directly in this construct (the ids of a one-namespace
    // install), every other namespace's in a scope of its own.
    const installs = new Map<string, DockerCoinsInstall>();
    rendered.forEach(({ namespace, base, deployments }, index) => {
      const scope = index === 0 ? this : new Construct(this, `Namespace-${namespace}`);
      const baseManifest = new eks.KubernetesManifest(scope, 'DockerCoins', {
        cluster: this.cluster,
        manifest: base,
      });
      const deploymentManifests = new Map<string, eks.KubernetesManifest>();
      for (const [name, deployment] of deployments) {
        const manifest = new eks.KubernetesManifest(scope, `Deployment-${name}`, {
          cluster: this.cluster,
          manifest: [deployment],
        });
        // The namespace must exist first. A dependency is not a property: adding one never
        // re-applies a Deployment.
        manifest.node.addDependency(baseManifest);
        deploymentManifests.set(name, manifest);
      }
      installs.set(namespace, { baseManifest, deploymentManifests });
    });
    this.installs = installs;
    const first = installs.get(namespaces[0] ?? '');
    if (first === undefined) throw new Error('unreachable: no first namespace');
    this.baseManifest = first.baseManifest;
    this.deploymentManifests = first.deploymentManifests;

    if (props.inClusterRegistry ?? false) {
      const { bucket, role } = this.addInClusterRegistry(
        props.registryNodePort ?? REGISTRY_DEFAULT_NODE_PORT,
      );
      this.registryBucket = bucket;
      this.registryRole = role;
    }
  }

  private addInClusterRegistry(nodePort: number): { bucket: s3.Bucket; role: iam.Role } {
    const bucket = new s3.Bucket(this, 'RegistryBucket', {
      encryption: s3.BucketEncryption.S3_MANAGED,
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      // Images are data: a deleted stack leaves them.
      removalPolicy: RemovalPolicy.RETAIN,
      // No versioning: blobs are content-addressed and never rewritten, and the registry's own
      // delete and garbage-collect are how space is freed; versions would keep every deleted
      // layer, billed, with nothing that could restore a consistent registry from them.
      versioned: false,
    });
    Validations.of(bucket).acknowledge({
      id: 'AwsSolutions-S1',
      reason:
        'Only the in-cluster registry reaches this bucket, through its Pod Identity role, and its own request ' +
        'log records who pushed and pulled what; server access logs would need a second bucket. Turn them (or ' +
        'CloudTrail S3 data events) on when an audit trail of the storage itself is required.',
    });

    const role = new iam.Role(this, 'RegistryRole', {
      description: `The in-cluster registry of ${this.clusterName} (EKS Pod Identity: ${REGISTRY_NAMESPACE}/${REGISTRY_SERVICE_ACCOUNT})`,
      // Pod Identity assumes the role with session tags (cluster, namespace, service account).
      assumedBy: new iam.ServicePrincipal('pods.eks.amazonaws.com').withSessionTags(),
    });
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RegistryBucket',
        actions: [...REGISTRY_S3_BUCKET_ACTIONS],
        resources: [bucket.bucketArn],
      }),
    );
    role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'RegistryObjects',
        actions: [...REGISTRY_S3_OBJECT_ACTIONS],
        resources: [bucket.arnForObjects('*')],
      }),
    );
    Validations.of(role).acknowledge({
      id: `AwsSolutions-IAM5[Resource::<${Stack.of(this).getLogicalId(bucket.node.defaultChild as s3.CfnBucket)}.Arn>/*]`,
      reason:
        'The registry names its objects (docker/registry/v2/blobs/…, repositories/…) as images arrive; the ' +
        'wildcard covers only objects of its own bucket.',
    });

    // Auto Mode runs the Pod Identity agent itself, so no add-on; the ServiceAccount comes with
    // the registry's manifests, so this only binds the role to it.
    new eks.CfnPodIdentityAssociation(this, 'RegistryPodIdentity', {
      clusterName: this.cluster.clusterName,
      namespace: REGISTRY_NAMESPACE,
      serviceAccount: REGISTRY_SERVICE_ACCOUNT,
      roleArn: role.roleArn,
    });

    // registryManifests names the generated ConfigMap after a hash of config.yml. Given tokens,
    // it would hash their placeholders, whose numbers shift with every token created before them
    // (another service, another stack): unrelated changes would rename the ConfigMap and restart
    // the registry. So it renders fixed stand-ins, replaced by the tokens afterwards; neither the
    // bucket nor the region ever changes for this stack, so the hash loses nothing.
    const manifest = replaceStandIns(
      registryManifests(
        {
          storage: 's3',
          bucket: BUCKET_STAND_IN,
          region: REGION_STAND_IN,
          serviceAccountName: REGISTRY_SERVICE_ACCOUNT,
        },
        { nodePort },
      ),
      new Map([
        [BUCKET_STAND_IN, bucket.bucketName],
        [REGION_STAND_IN, Aws.REGION],
      ]),
    );
    new eks.KubernetesManifest(this, 'Registry', { cluster: this.cluster, manifest });
    return { bucket, role };
  }
}

/** Valid for registryManifests' checks, and found nowhere else in its output. */
const BUCKET_STAND_IN = 'dockercoins-ship-registry-bucket-stand-in';
const REGION_STAND_IN = 'zz-standin-0';

/** Replaces each stand-in, which must occur exactly once, in every string of the objects. */
function replaceStandIns(
  objects: readonly object[],
  values: ReadonlyMap<string, string>,
): Record<string, unknown>[] {
  const found = new Map([...values.keys()].map((standIn) => [standIn, 0]));
  const walk = (value: unknown): unknown => {
    if (typeof value === 'string') {
      let text = value;
      for (const [standIn, replacement] of values) {
        const parts = text.split(standIn);
        found.set(standIn, (found.get(standIn) ?? 0) + parts.length - 1);
        text = parts.join(replacement);
      }
      return text;
    }
    if (Array.isArray(value)) return value.map(walk);
    if (value !== null && typeof value === 'object') {
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, walk(v)]));
    }
    return value;
  };
  const result = objects.map((object) => walk(object) as Record<string, unknown>);
  for (const [standIn, count] of found) {
    if (count !== 1) {
      throw new ClusterManifestError(
        `The in-cluster registry's manifests hold "${standIn}" ${count} times, not once: lib/k8s/registry.ts ` +
          'changed how it writes the bucket or region; update replaceStandIns in lib/constructs/dockercoins-cluster.ts.',
      );
    }
  }
  return result;
}

/** Refuses an empty list and a namespace given twice (dockerCoinsManifests checks each name). */
function checkNamespaces(namespaces: readonly string[]): void {
  if (namespaces.length === 0) {
    throw new ClusterManifestError(
      'namespaces is empty: DockerCoins would be installed nowhere. Give at least one namespace, e.g. ["dockercoins"].',
    );
  }
  const repeated = namespaces.find((n, i) => namespaces.indexOf(n) !== i);
  if (repeated !== undefined) {
    throw new ClusterManifestError(
      `namespaces lists "${repeated}" twice: one namespace holds one copy of DockerCoins. List it once.`,
    );
  }
}

/** The Deployments, each on its own, and every other object. */
function splitManifests(objects: KubernetesObject[]): {
  base: KubernetesObject[];
  deployments: Map<string, KubernetesObject>;
} {
  const base: KubernetesObject[] = [];
  const deployments = new Map<string, KubernetesObject>();
  for (const object of objects) {
    if (object.kind !== 'Deployment') base.push(object);
    else deployments.set(object.metadata.name, object);
  }
  return { base, deployments };
}

interface Container {
  readonly name: string;
  image: string;
}

function containersOf(deployment: KubernetesObject): Container[] {
  const podSpec = (
    deployment.spec as { template?: { spec?: { containers?: unknown } } } | undefined
  )?.template?.spec;
  return Array.isArray(podSpec?.containers) ? (podSpec.containers as Container[]) : [];
}

/** The container a service runs in; refuses a service without one. */
function containerOf(
  deployments: ReadonlyMap<string, KubernetesObject>,
  service: ServiceConfig,
): Container {
  const deployment = deployments.get(service.deployment);
  if (deployment === undefined) {
    throw new ClusterManifestError(
      `Service "${service.name}" runs in the Deployment "${service.deployment}", which k8s/overlays/ecr does not ` +
        `have (it has ${[...deployments.keys()].join(', ')}): the cluster could not run it. Add a Deployment for it ` +
        'to k8s/base, or set its "deployment" and "container" in the services setting to ones that exist.',
    );
  }
  const containers = containersOf(deployment);
  const container = containers.find((c) => c.name === service.container);
  if (container === undefined) {
    throw new ClusterManifestError(
      `Service "${service.name}" runs in the container "${service.container}" of the Deployment ` +
        `"${service.deployment}", which has only ${containers.map((c) => c.name).join(', ')}. Set its ` +
        '"container" in the services setting to one of them.',
    );
  }
  return container;
}

/**
 * Containers that run an image of our repositories that no configured service builds, with that
 * image as `<repositoryPrefix>/<name>:<tag>` (no token, so a person can read it).
 */
function unbuiltImages(
  deployments: ReadonlyMap<string, KubernetesObject>,
  services: readonly ServiceConfig[],
  registryHost: string,
  repositoryPrefix: string,
): { deployment: string; image: string }[] {
  const built = new Set(services.map((s) => `${s.deployment}/${s.container}`));
  const ours = `${registryHost}/${repositoryPrefix}/`;
  return [...deployments].flatMap(([name, deployment]) =>
    containersOf(deployment)
      .filter((c) => !built.has(`${name}/${c.name}`) && c.image.startsWith(ours))
      .map((c) => ({ deployment: name, image: c.image.slice(registryHost.length + 1) })),
  );
}

/**
 * cdk-nag findings on what aws-eks-v2 creates for the cluster and its kubectl handler, each with
 * why it stands. The rule ids name the exact policy or resource, so a new finding still fails.
 */
function acknowledgeClusterFindings(cluster: eks.Cluster): void {
  const validations = Validations.of(cluster);
  validations.acknowledge({
    id: 'AwsSolutions-EKS1',
    reason:
      'The API endpoint is public (and private) so that people and CI can run kubectl from outside the VPC; ' +
      'every request still needs an IAM identity with an access entry. A private-only endpoint, reached ' +
      'through a VPN or bastion, is the follow-up for production.',
  });
  for (const policy of [
    'AmazonEKSClusterPolicy',
    'AmazonEKSComputePolicy',
    'AmazonEKSBlockStoragePolicy',
    'AmazonEKSLoadBalancingPolicy',
    'AmazonEKSNetworkingPolicy',
  ]) {
    validations.acknowledge({
      id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
      reason:
        'These are the managed policies AWS documents for the cluster role of an EKS Auto Mode cluster; only ' +
        'EKS assumes the role, and AWS updates the policies as Auto Mode gains features.',
    });
  }
  for (const policy of [
    'service-role/AWSLambdaBasicExecutionRole',
    'service-role/AWSLambdaVPCAccessExecutionRole',
    'AmazonEC2ContainerRegistryReadOnly',
  ]) {
    validations.acknowledge({
      id: `AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/${policy}]`,
      reason:
        "The kubectl handler and its provider are aws-cdk-lib's own custom resource: their roles write logs, " +
        'attach to the private subnets they run in, and read ECR for Helm charts, as aws-cdk-lib defines them.',
    });
  }
  // aws-cdk-lib's own ids: if a release renames them, the acknowledgements below no longer
  // match and cdk-nag reports the findings, which is the safe way to fail.
  const handler = cluster.node.tryFindChild('KubectlProvider')?.node.tryFindChild('Handler');
  const hasEcrPublic = handler?.node.tryFindChild('HasEcrPublic');
  const stack = Stack.of(cluster);
  const logicalId = (element: unknown): string =>
    element instanceof CfnElement ? stack.getLogicalId(element) : '(not found)';
  validations.acknowledge(
    {
      id:
        `AwsSolutions-IAM4[Policy::{"Fn::If":["${logicalId(hasEcrPublic)}",{"Fn::Join":["",["arn:",` +
        '{"Ref":"AWS::Partition"},":iam::aws:policy/AmazonElasticContainerRegistryPublicReadOnly"]]},' +
        '{"Ref":"AWS::NoValue"}]}]',
      reason:
        'aws-cdk-lib lets its kubectl handler read ECR Public (where it finds Helm charts) in the aws partition; ' +
        'reading public images grants nothing private.',
    },
    {
      id: `AwsSolutions-IAM5[Resource::<${logicalId(handler?.node.defaultChild)}.Arn>:*]`,
      reason:
        "The custom-resource provider framework may invoke any version of the kubectl handler (its ARN with ':*'), " +
        'and no other function.',
    },
    {
      id: 'AwsSolutions-L1',
      reason:
        'aws-cdk-lib picks the Python runtime of its kubectl handler (the newest it has tested the handler with); ' +
        'upgrading aws-cdk-lib moves it forward.',
    },
  );
}
