/**
 * The app's one configuration: its type, its defaults and its validation.
 *
 * Pure: no `process.env`, no file reads, no CDK constructs. `bin/app.ts` reads the CDK context
 * (cdk.json plus `-c key=value`) and hands it to {@link resolveConfig}, which returns a frozen,
 * validated {@link ShipConfig} or throws one {@link ConfigError} naming the key, the bad value and
 * the expected form.
 *
 * Every context key accepts two spellings: the JSON value written in cdk.json (`["a","b"]`, `5`,
 * `true`) and the string that `-c key=value` delivers (`a,b`, `5`, `true`).
 */

import { buildTagMatchedBy } from './release-tag-pattern';

/** A service that we build and push (hasher, rng, webui, worker). */
export interface ServiceConfig {
  /** Service name: the ECR repository suffix, the CodeBuild project suffix, the image name. */
  readonly name: string;
  /** Docker build context inside the source repository, e.g. `dockercoins/hasher`. */
  readonly buildContext: string;
  /** Name of the Kubernetes Deployment that runs this service. */
  readonly deployment: string;
  /** Name of the container, inside that Deployment, whose image we set. */
  readonly container: string;
  /**
   * Seconds a deploy of this service has to become Ready before it counts as failed (and is
   * rolled back); with an environment's own, the longer applies (docs/deploys.md).
   * @default - the environment's, or 180
   */
  readonly verifyDeadlineSeconds?: number;
}

/** The git host of the DockerCoins source. */
export type SourceProvider = 'github' | 'gitlab' | 'bitbucket' | 'codecommit';

/** Where the DockerCoins source lives. */
export interface SourceConfig {
  readonly provider: SourceProvider;
  /**
   * GitHub user or organisation, GitLab namespace (`group/subgroup`) or Bitbucket workspace;
   * `undefined` for CodeCommit, whose repositories belong to the account.
   */
  readonly owner: string | undefined;
  /** Repository name (for CodeCommit: the repository in this account and region). */
  readonly repo: string;
  /**
   * A CodeConnections connection (`codeconnections` or the older `codestar-connections` ARN), or
   * `undefined` to use the account's GitHub credential. Required for GitLab and Bitbucket.
   */
  readonly connectionArn: string | undefined;
}

/**
 * The web address of a hosted source (GitHub, GitLab, Bitbucket), for the OCI `source` label;
 * undefined for CodeCommit, whose address depends on the stack's region.
 */
export function hostedSourceUrl(source: SourceConfig): string | undefined {
  switch (source.provider) {
    case 'github':
      return `https://github.com/${source.owner}/${source.repo}`;
    case 'gitlab':
      return `https://gitlab.com/${source.owner}/${source.repo}`;
    case 'bitbucket':
      return `https://bitbucket.org/${source.owner}/${source.repo}`;
    case 'codecommit':
      return undefined;
  }
}

/** CPU architecture of the build hosts, and therefore of the images. */
export type BuildArchitecture = 'x86_64' | 'arm64';

/** The CodeBuild side: what triggers builds, and the build hosts. */
export interface BuildConfig {
  /** Pushes to these branches build (and, through the deployer, deploy). */
  readonly branches: readonly string[];
  /** Paths in the source repository whose change rebuilds every service. */
  readonly sharedPaths: readonly string[];
  /** Build pull requests too (they only ever get `pr-<n>-<sha7>` tags). */
  readonly pullRequests: boolean;
  readonly architecture: BuildArchitecture;
  readonly timeoutMinutes: number;
  /** Builds of one service that may run at once. */
  readonly concurrentBuildLimit: number;
  /** Days CloudWatch keeps build logs; one of the values CloudWatch Logs accepts. */
  readonly logRetentionDays: number;
}

export type RegistryEncryption = 'AES256' | 'KMS';
export type RegistryRemoval = 'retain' | 'destroy';

/** The ECR side: repositories, lifecycle, encryption, pull-through cache. */
export interface RegistryConfig {
  /** Repository names are `<repositoryPrefix>/<service>`. */
  readonly repositoryPrefix: string;
  readonly encryption: RegistryEncryption;
  /** Untagged images (superseded build caches, failed pushes) expire after this many days. */
  readonly untaggedImageExpiryDays: number;
  /**
   * Tagged images beyond the newest N expire, counted last: in practice the images with only a
   * commit tag. Running and rollback images (the deployer's marks) and releases never expire.
   */
  readonly commitImagesToKeep: number;
  /** Images with a branch tag beyond the newest N expire (unless marked or released). */
  readonly branchImagesToKeep: number;
  /** Images with a pull-request tag beyond the newest N expire. */
  readonly pullRequestImagesToKeep: number;
  /** ECR wildcard (`*` only) for release tags, which never expire. */
  readonly releaseTagPattern: string;
  /**
   * The one tag allowed to move (BuildKit's registry cache), or `undefined` when there is none:
   * then every tag is immutable.
   */
  readonly buildCacheTag: string | undefined;
  readonly removal: RegistryRemoval;
  /** Other AWS accounts allowed to pull (cross-account clusters). */
  readonly pullAccountIds: readonly string[];
  /** ECR prefix of the pull-through cache rule for ECR Public. */
  readonly pullThroughCachePrefix: string;
  /** Tag of the official redis image, pulled through the cache. */
  readonly redisImageTag: string;
}

/** An EKS cluster the app creates and installs DockerCoins on (off by default). */
export interface ClusterConfig {
  /** Create an EKS Auto Mode cluster named `clusterName`; otherwise `clusterName` names an existing one. */
  readonly create: boolean;
  /**
   * The tag the app installs DockerCoins with on the cluster it creates (a commit or release tag
   * already built into ECR). Unset, each service starts from the seed's public image
   * ({@link SEED_IMAGES}) and its first successful build replaces it through the deployer, so one
   * `cdk deploy --all` works from an empty account. Later deploys belong to the deployer.
   */
  readonly initialImageTag: string | undefined;
  /** Install the in-cluster registry (S3 storage, Pod Identity) on the created cluster. */
  readonly inClusterRegistry: boolean;
  /** The NodePort the in-cluster registry listens on, on every node (`127.0.0.1:<port>`). */
  readonly registryNodePort: number;
  /**
   * The IPv4 CIDR blocks that may reach the created cluster's public API endpoint (the private
   * endpoint is always on, for the nodes). `0.0.0.0/0` is everywhere, still behind IAM.
   */
  readonly endpointPublicCidrs: readonly string[];
}

/**
 * Where builds of some git refs deploy to: one namespace on one EKS cluster, in the region the app
 * is deployed to.
 */
export interface EnvironmentConfig {
  /** A DNS label naming the environment in logs, metrics and messages, e.g. `prod`. */
  readonly name: string;
  /** The EKS cluster's name. */
  readonly clusterName: string;
  /** The namespace whose Deployments the deployer patches. */
  readonly namespace: string;
  /** Pushes to these branches deploy here; each is one of the build branches. */
  readonly branches: readonly string[];
  /** Release tags (matching `releaseTagPattern`) deploy here. */
  readonly releaseTags: boolean;
  /** A deploy that fails verification here is rolled back (docs/deploys.md). @default true */
  readonly rollback?: boolean;
  /** Verify deadline of every service here, in seconds. @default - the service's, or 180 */
  readonly verifyDeadlineSeconds?: number;
  /** Seconds between two checks of a deploy here. @default 5 */
  readonly verifyPollSeconds?: number;
}

/**
 * What the deployer may do in the clusters. `rbac` (the default, least privilege): the access
 * entry only maps it to the Kubernetes group `dockercoins-deployer`, which k8s/rbac/deployer's
 * Role allows get and patch on the named Deployments and reading ReplicaSets, pods and events in
 * its namespaces, nothing else; a cluster the app creates gets that Role from the app, an existing
 * one needs it applied (synth warns). `edit-policy` (opt-in, warned): its EKS access entry carries
 * the AWS managed AmazonEKSEditPolicy, scoped to the environments' namespaces (Secrets, exec).
 */
export type DeployerAccess = 'edit-policy' | 'rbac';

/** The deployer Lambda inside the cluster's VPC, for clusters with a private API endpoint. */
export interface DeployerVpcConfig {
  readonly vpcId: string;
  readonly subnetIds: readonly string[];
  readonly securityGroupIds: readonly string[];
}

/** The deployer: the Lambda that updates the Deployments when a build succeeds. */
export interface DeployerConfig {
  readonly access: DeployerAccess;
  /** `undefined`: the Lambda runs outside any VPC (the cluster's endpoint is public). */
  readonly vpc: DeployerVpcConfig | undefined;
  /** An address subscribed to the deploy notifications, or `undefined` for none. */
  readonly notificationEmail: string | undefined;
  /** Days CloudWatch keeps the deployer's logs; one of the values CloudWatch Logs accepts. */
  readonly logRetentionDays: number;
}

export interface ShipConfig {
  /** Prefix of every stack name, e.g. `DockerCoins` → `DockerCoins-Registry`. */
  readonly stackNamePrefix: string;
  readonly services: readonly ServiceConfig[];
  readonly registry: RegistryConfig;
  readonly source: SourceConfig;
  readonly build: BuildConfig;
  /** The EKS cluster that runs DockerCoins; environments without a `clusterName` deploy to it. */
  readonly clusterName: string;
  readonly cluster: ClusterConfig;
  /** The namespace of the default environment (used only when `environments` is not set). */
  readonly namespace: string;
  /** Where builds deploy to; at least one. */
  readonly environments: readonly EnvironmentConfig[];
  readonly deployer: DeployerConfig;
}

/** A warning about a value that lets synth run but will not work for a real deploy. */
export interface ConfigWarning {
  readonly key: string;
  readonly message: string;
}

export interface ResolvedConfig {
  readonly config: ShipConfig;
  readonly warnings: readonly ConfigWarning[];
}

/** A configuration value is missing, malformed or contradicts another. */
/** The ECR repository of a service: `<repositoryPrefix>/<service>`, a name other stacks rely on. */
export function repositoryName(repositoryPrefix: string, service: string): string {
  return `${repositoryPrefix}/${service}`;
}

/**
 * The ECR repository of a service's pull-request images: `<repositoryPrefix>/pr/<service>`. Apart
 * from the service repository so that the pull-request builds' role cannot write any tag there.
 */
export function pullRequestRepositoryName(repositoryPrefix: string, service: string): string {
  return `${repositoryPrefix}/pr/${service}`;
}

/** The CodeBuild project of a service: `<stackNamePrefix>-<service>`, a name events carry. */
export function projectName(projectNamePrefix: string, service: string): string {
  return `${projectNamePrefix}-${service}`;
}

export class ConfigError extends Error {
  constructor(
    /** The context key at fault. */
    public readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Verification defaults: well under Kubernetes' 600 s progress deadline, polled often enough to see every back-off. */
export const VERIFY_DEFAULTS = {
  deadlineSeconds: 180,
  pollSeconds: 5,
  rollback: true,
} as const;

/** The bounds of the verification settings (the configuration, the construct and the Lambda's variable). */
export const VERIFY_LIMITS = {
  deadlineSeconds: { min: 30, max: 1800 },
  pollSeconds: { min: 1, max: 60 },
} as const;

/** Every context key this app reads, with its default, as written in README.md. */
export const DEFAULTS = {
  stackNamePrefix: 'DockerCoins',
  services: ['hasher', 'rng', 'webui', 'worker'],
  repositoryPrefix: 'dockercoins',
  encryption: 'AES256',
  untaggedImageExpiryDays: 3,
  commitImagesToKeep: 50,
  branchImagesToKeep: 50,
  pullRequestImagesToKeep: 20,
  releaseTagPattern: 'v*',
  buildCacheTag: 'buildcache',
  removalPolicy: 'retain',
  pullAccountIds: [] as string[],
  // Derived from repositoryPrefix when unset: `<repositoryPrefix>-ecr-public`.
  pullThroughCachePrefix: undefined as string | undefined,
  redisImageTag: '7.4',
  sourceProvider: 'github',
  sourceOwner: 'jpetazzo',
  sourceRepo: 'container.training',
  sourceConnectionArn: undefined as string | undefined,
  buildBranches: ['main'],
  sharedPaths: [] as string[],
  pullRequestBuilds: false,
  buildArchitecture: 'x86_64',
  buildTimeoutMinutes: 30,
  buildConcurrency: 10,
  buildLogRetentionDays: 30,
  clusterName: 'dockercoins',
  namespace: 'dockercoins',
  createCluster: false,
  initialImageTag: undefined as string | undefined,
  inClusterRegistry: false,
  registryNodePort: 30500,
  // The created cluster's public API endpoint answers these addresses only (IAM still applies).
  clusterEndpointCidrs: ['0.0.0.0/0'] as string[],
  // Derived when unset: one environment "main" that deploys buildBranches to namespace on
  // clusterName.
  environments: undefined as readonly object[] | undefined,
  deployerAccess: 'rbac',
  deployerLogRetentionDays: 90,
  deployerVpcId: undefined as string | undefined,
  deployerSubnetIds: [] as string[],
  deployerSecurityGroupIds: [] as string[],
  notificationEmail: undefined as string | undefined,
} as const;

export type ContextKey = keyof typeof DEFAULTS;

/** The pull-through cache prefix used when none is set: `<repositoryPrefix>-ecr-public`, "/" → "-". */
export function defaultPullThroughCachePrefix(repositoryPrefix: string): string {
  return `${repositoryPrefix.replace(/\//g, '-')}-ecr-public`;
}
export const CONTEXT_KEYS = Object.keys(DEFAULTS) as ContextKey[];

/** Keys that existed once and were replaced: naming the new key beats ignoring the old one. */
const REPLACED_KEYS: Readonly<Record<string, string>> = {
  sourceBranch:
    'sourceBranch was replaced by buildBranches, a list of branches whose pushes build and deploy: ' +
    'use `-c buildBranches=main` (or ["main", "release/1.x"] in cdk.json).',
};

/** The retention periods CloudWatch Logs accepts (PutRetentionPolicy). */
export const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288,
  3653,
] as const;

/** Keys of a service object in the JSON form of `services`. */
const SERVICE_OBJECT_KEYS = [
  'name',
  'buildContext',
  'deployment',
  'container',
  'verifyDeadlineSeconds',
] as const;

/** Keys of an environment object in `environments`. */
const ENVIRONMENT_OBJECT_KEYS = [
  'name',
  'namespace',
  'branches',
  'releaseTags',
  'clusterName',
  'rollback',
  'verifyDeadlineSeconds',
  'verifyPollSeconds',
] as const;

/** The environment used when `environments` is not set. */
export const DEFAULT_ENVIRONMENT_NAME = 'main';

/** The most tagged images one rule can meaningfully keep; release images are shielded up to this. */
export const MAX_IMAGES_KEPT = 9999;

// Grammars, each from the system that will reject the value later.
/** Kubernetes DNS-1123 label: Deployment, container, namespace and our service names. */
export const DNS_LABEL = /^(?=.{1,63}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
/** Kubernetes DNS-1123 subdomain: the names of Deployments and most other objects. */
export const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** ECR repository name (CreateRepository API), also used for prefixes. */
const ECR_REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
/** Docker/OCI tag grammar. */
export const IMAGE_TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
/** ECR lifecycle tag pattern and tag-mutability exclusion filter: `[0-9a-zA-Z._*-]`. */
const ECR_WILDCARD = /^[0-9a-zA-Z._*-]{1,128}$/;
/** EKS CreateCluster name. */
const EKS_CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
/** GitHub user or organisation login. */
const GITHUB_OWNER = /^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$/;
/** GitHub repository name. */
const GITHUB_REPO = /^[A-Za-z0-9._-]{1,100}$/;
/** GitLab namespace: a group or user, subgroups separated by "/". */
const GITLAB_NAMESPACE = /^[A-Za-z0-9_][A-Za-z0-9_.-]*(?:\/[A-Za-z0-9_][A-Za-z0-9_.-]*)*$/;
/** Bitbucket workspace id. */
const BITBUCKET_WORKSPACE = /^[a-z0-9_-]{1,62}$/;
/** CodeCommit repository name. */
const CODECOMMIT_REPO = /^[\w.-]{1,100}$/;
/** A CodeConnections connection; `codestar-connections` is the service's former name. */
const CONNECTION_ARN =
  /^arn:aws(?:-[a-z]+)*:(?:codeconnections|codestar-connections):[a-z0-9-]+:\d{12}:connection\/[0-9a-f-]{36}$/;
/** CloudFormation stack name prefix; we append `-Registry` and the like. */
const STACK_NAME_PREFIX = /^[A-Za-z][A-Za-z0-9-]{0,99}$/;
/** A path inside the source repository: relative, no `..`, no leading or trailing slash. */
const REPO_PATH = /^(?!.*(?:^|\/)\.\.?(?:\/|$))[A-Za-z0-9._-]+(?:\/[A-Za-z0-9._-]+)*$/;
const ACCOUNT_ID = /^\d{12}$/;
/** EC2 resource ids: the 8-hex form of older resources and the 17-hex form of newer ones. */
const VPC_ID = /^vpc-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const SUBNET_ID = /^subnet-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
const SECURITY_GROUP_ID = /^sg-(?:[0-9a-f]{8}|[0-9a-f]{17})$/;
/** Lambda's limits for a function's VpcConfig. */
const MAX_LAMBDA_SUBNETS = 16;
const MAX_LAMBDA_SECURITY_GROUPS = 5;
/** An address SNS can subscribe: something@domain.tld, no spaces. */
const EMAIL = /^[^\s@]+@[^\s@]+\.[^\s@.]+$/;
const MAX_SERVICE_NAME_LENGTH = 40;
/**
 * The seed's public images, `docker.io/dockercoins/<service>:v0.1` (the workshop's
 * `REGISTRY=dockercoins TAG=v0.1`): what a created cluster runs until a service's first build
 * deploys, when no initialImageTag is given. Pulled from Docker Hub directly: ECR's pull-through
 * cache for Docker Hub needs Docker Hub credentials in Secrets Manager, and four pulls per node
 * until the first builds land are far below Docker Hub's anonymous limit.
 */
export const SEED_IMAGES = {
  registry: 'docker.io/dockercoins',
  tag: 'v0.1',
  services: ['hasher', 'rng', 'webui', 'worker'],
} as const;

/**
 * Services one app holds. Measured by `npm run bench`: each CodeBuild project with its role, policy
 * and log group weighs about 8.5 KB of the Builds template, so CloudFormation's 1 MB template limit
 * bites near 115 services; 100 leaves room for the cdk-nag metadata of future acknowledgements. The
 * stacks check it again, but configuration errors are said here, as one line.
 */
export const MAX_SERVICES = 100;
const MAX_PREFIX_LENGTH = 256 - 1 - MAX_SERVICE_NAME_LENGTH;

/**
 * Turns raw CDK context into a validated configuration.
 *
 * @param context all context of the app (`app.node.getAllContext()`); keys that are not ours are
 *   ignored, except near-misses of ours (a typo would otherwise be silently dropped).
 * @throws ConfigError for the first invalid value, naming key, value and expected form.
 */
export function resolveConfig(context: Readonly<Record<string, unknown>>): ResolvedConfig {
  rejectNearMisses(context);
  const read = (key: ContextKey): unknown => (key in context ? context[key] : DEFAULTS[key]);

  const repositoryPrefix = readString(read('repositoryPrefix'), 'repositoryPrefix');
  check(
    'repositoryPrefix',
    repositoryPrefix,
    // ECR names are at most 256 characters: prefix, "/" and a service name of at most 40.
    ECR_REPOSITORY_NAME.test(repositoryPrefix) && repositoryPrefix.length <= MAX_PREFIX_LENGTH,
    `at most ${MAX_PREFIX_LENGTH} lowercase letters, digits and ._-/ separators, as ECR repository names allow, e.g. "dockercoins" or "team/dockercoins"`,
  );

  const services = readServices(read('services'));

  const pullThroughCachePrefix =
    read('pullThroughCachePrefix') === undefined
      ? defaultPullThroughCachePrefix(repositoryPrefix)
      : readString(read('pullThroughCachePrefix'), 'pullThroughCachePrefix');
  check(
    'pullThroughCachePrefix',
    pullThroughCachePrefix,
    ECR_REPOSITORY_NAME.test(pullThroughCachePrefix) &&
      pullThroughCachePrefix.length >= 2 &&
      pullThroughCachePrefix.length <= 30,
    '2 to 30 characters of an ECR repository name (ECR limits pull-through cache prefixes to 30)' +
      (read('pullThroughCachePrefix') === undefined
        ? '; it is derived from repositoryPrefix, so set pullThroughCachePrefix explicitly'
        : ''),
  );
  if (
    pullThroughCachePrefix === repositoryPrefix ||
    repositoryPrefix.startsWith(`${pullThroughCachePrefix}/`)
  ) {
    throw new ConfigError(
      'pullThroughCachePrefix',
      `pullThroughCachePrefix "${pullThroughCachePrefix}" overlaps repositoryPrefix "${repositoryPrefix}": ` +
        'ECR would try to pull our own images from ECR Public. Choose a prefix that is not the repository prefix.',
    );
  }

  const releaseTagPattern = readString(read('releaseTagPattern'), 'releaseTagPattern');
  check(
    'releaseTagPattern',
    releaseTagPattern,
    ECR_WILDCARD.test(releaseTagPattern) &&
      (releaseTagPattern.match(/\*/g) ?? []).length <= 4 &&
      releaseTagPattern !== '*',
    'an ECR wildcard of [0-9a-zA-Z._*-] with at most four "*" that does not match every tag, e.g. "v*"',
  );

  // Release tags must be told apart from the tags builds make: a pattern that also matched commit,
  // pull-request or branch tags would keep them forever and make every build stop (image-tags.js
  // refuses an ambiguous tag). Decided over every such tag, not a few examples.
  const buildBranches = readBranches(read('buildBranches'));
  const lookalike = buildTagMatchedBy(releaseTagPattern, buildBranches);
  if (lookalike !== undefined) {
    const examples = ['v*', 'release-*', 'rel-*']
      .filter((p) => buildTagMatchedBy(p, buildBranches) === undefined)
      .map((p) => `"${p}"`);
    throw new ConfigError(
      'releaseTagPattern',
      `releaseTagPattern "${releaseTagPattern}" also matches ${lookalike.kind} tags that builds make, such as ` +
        `"${lookalike.tag}"${lookalike.branch === undefined ? '' : ` (build branch "${lookalike.branch}")`}: ` +
        'release images would be indistinguishable from commit, pull-request or branch images. Use a pattern ' +
        `with a fixed prefix that none of those have${examples.length > 0 ? `, e.g. ${examples.join(' or ')}` : ''}.`,
    );
  }

  const buildCacheTag = readOptionalTag(read('buildCacheTag'));
  if (buildCacheTag !== undefined && wildcardMatches(releaseTagPattern, buildCacheTag)) {
    throw new ConfigError(
      'buildCacheTag',
      `buildCacheTag "${buildCacheTag}" matches releaseTagPattern "${releaseTagPattern}": the moving cache tag ` +
        'would be kept forever as a release. Choose a cache tag outside the release pattern.',
    );
  }

  const redisImageTag = readString(read('redisImageTag'), 'redisImageTag');
  check(
    'redisImageTag',
    redisImageTag,
    IMAGE_TAG.test(redisImageTag) && redisImageTag !== 'latest',
    'a pinned image tag such as "7.4" (never "latest": nobody knows what it points to)',
  );

  const registry: RegistryConfig = {
    repositoryPrefix,
    encryption: readEnum(read('encryption'), 'encryption', ['AES256', 'KMS'] as const),
    untaggedImageExpiryDays: readInteger(
      read('untaggedImageExpiryDays'),
      'untaggedImageExpiryDays',
      1,
      3650,
    ),
    commitImagesToKeep: readInteger(
      read('commitImagesToKeep'),
      'commitImagesToKeep',
      1,
      MAX_IMAGES_KEPT - 1,
    ),
    branchImagesToKeep: readInteger(
      read('branchImagesToKeep'),
      'branchImagesToKeep',
      1,
      MAX_IMAGES_KEPT - 1,
    ),
    pullRequestImagesToKeep: readInteger(
      read('pullRequestImagesToKeep'),
      'pullRequestImagesToKeep',
      1,
      MAX_IMAGES_KEPT - 1,
    ),
    releaseTagPattern,
    buildCacheTag,
    removal: readEnum(read('removalPolicy'), 'removalPolicy', ['retain', 'destroy'] as const),
    pullAccountIds: readAccountIds(read('pullAccountIds')),
    pullThroughCachePrefix,
    redisImageTag,
  };

  const source = readSource(context, read);

  const build: BuildConfig = {
    branches: buildBranches,
    sharedPaths: readPaths(read('sharedPaths'), 'sharedPaths'),
    pullRequests: readBoolean(read('pullRequestBuilds'), 'pullRequestBuilds'),
    architecture: readEnum(read('buildArchitecture'), 'buildArchitecture', [
      'x86_64',
      'arm64',
    ] as const),
    // CodeBuild accepts 5 to 2160 minutes; an image build that needs hours is stuck, not slow.
    timeoutMinutes: readInteger(read('buildTimeoutMinutes'), 'buildTimeoutMinutes', 5, 480),
    concurrentBuildLimit: readInteger(read('buildConcurrency'), 'buildConcurrency', 1, 100),
    logRetentionDays: readRetention(read('buildLogRetentionDays')),
  };
  if (source.provider === 'codecommit' && build.pullRequests) {
    throw new ConfigError(
      'pullRequestBuilds',
      'pullRequestBuilds is true but sourceProvider is "codecommit": CodeCommit has no pull-request webhooks. ' +
        'Set `-c pullRequestBuilds=false`, or use a GitHub, GitLab or Bitbucket source.',
    );
  }

  const clusterName = readClusterName(read('clusterName'), 'clusterName');
  const namespace = readDnsLabel(read('namespace'), 'namespace');
  const cluster = readCluster(read, services);
  const config: ShipConfig = {
    stackNamePrefix: readMatching(
      read('stackNamePrefix'),
      'stackNamePrefix',
      STACK_NAME_PREFIX,
      'a letter then letters, digits or hyphens (a CloudFormation stack name), e.g. "DockerCoins"',
    ),
    services,
    registry,
    source,
    build,
    clusterName,
    namespace,
    cluster,
    environments: readEnvironments(context, read, { clusterName, namespace, build, cluster }),
    deployer: readDeployer(read),
  };

  return { config: deepFreeze(config), warnings: collectWarnings(context) };
}

function readCluster(
  read: (key: ContextKey) => unknown,
  services: readonly ServiceConfig[],
): ClusterConfig {
  const create = readBoolean(read('createCluster'), 'createCluster');
  const inClusterRegistry = readBoolean(read('inClusterRegistry'), 'inClusterRegistry');
  const registryNodePort = readInteger(read('registryNodePort'), 'registryNodePort', 30000, 32767);
  const rawTag = read('initialImageTag');
  let initialImageTag: string | undefined;
  if (rawTag !== undefined) {
    initialImageTag = readMatching(
      rawTag,
      'initialImageTag',
      IMAGE_TAG,
      'an image tag that exists in every service repository, such as a 12-hex commit tag or "v1.2.0"',
    );
    check(
      'initialImageTag',
      rawTag,
      initialImageTag.toLowerCase() !== 'latest',
      'a commit or release tag, never "latest" (nobody knows what it points to)',
    );
  }
  const unseeded = services.find(
    (s) => !(SEED_IMAGES.services as readonly string[]).includes(s.name),
  );
  if (create && initialImageTag === undefined && unseeded !== undefined) {
    throw new ConfigError(
      'initialImageTag',
      `createCluster is true and initialImageTag is not set, so each service starts from the seed's public image ` +
        `(${SEED_IMAGES.registry}/<service>:${SEED_IMAGES.tag}), but service "${unseeded.name}" has none (only ` +
        `${SEED_IMAGES.services.join(', ')} do). Build every service once (\`aws codebuild start-build --project-name ` +
        '<prefix>-<service>`), then set `-c initialImageTag=<a tag every service repository has>`.',
    );
  }
  if (!create && initialImageTag !== undefined) {
    throw new ConfigError(
      'initialImageTag',
      'initialImageTag is set but createCluster is false: on an existing cluster, install with kubectl ' +
        '(README: "Run DockerCoins on any cluster"). Remove initialImageTag, or set `-c createCluster=true`.',
    );
  }
  if (inClusterRegistry && !create) {
    throw new ConfigError(
      'inClusterRegistry',
      'inClusterRegistry is true but createCluster is false: the app installs the registry only on a cluster it ' +
        'creates. On an existing cluster, apply k8s/registry with kubectl (k8s/registry/README.md), or set ' +
        '`-c createCluster=true`.',
    );
  }
  const endpointPublicCidrs = readEndpointCidrs(read('clusterEndpointCidrs'));
  if (!create && endpointPublicCidrs.join(',') !== DEFAULTS.clusterEndpointCidrs.join(',')) {
    throw new ConfigError(
      'clusterEndpointCidrs',
      'clusterEndpointCidrs is set but createCluster is false: the app restricts the endpoint only of a cluster it ' +
        'creates. For an existing cluster use `aws eks update-cluster-config --resources-vpc-config ' +
        'publicAccessCidrs=…`; remove clusterEndpointCidrs, or set `-c createCluster=true`.',
    );
  }
  return { create, initialImageTag, inClusterRegistry, registryNodePort, endpointPublicCidrs };
}

/** EKS accepts at most 40 public access CIDR blocks per cluster (its default quota). */
export const MAX_ENDPOINT_CIDRS = 40;

/**
 * IPv4 CIDR blocks in canonical form (the network address, no host bits), 1 to 40, no duplicates:
 * a block with host bits set is refused with its canonical form, rather than widened silently.
 */
function readEndpointCidrs(value: unknown): string[] {
  const key = 'clusterEndpointCidrs';
  const expected =
    `1 to ${MAX_ENDPOINT_CIDRS} IPv4 CIDR blocks such as "203.0.113.0/24", comma-separated with -c or a JSON array ` +
    '("0.0.0.0/0" for any address)';
  const list = readList(value, key, expected);
  if (list.length === 0 || list.length > MAX_ENDPOINT_CIDRS) fail(key, value, expected);
  const cidrs = list.map((raw) => {
    const match =
      typeof raw === 'string'
        ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/.exec(raw.trim())
        : null;
    const octets = match === null ? [] : match.slice(1, 5).map(Number);
    const bits = match === null ? NaN : Number(match[5]);
    if (match === null || octets.some((o) => o > 255) || bits > 32) fail(key, raw, expected);
    const address = octets.reduce((sum, o) => sum * 256 + o, 0);
    const size = 2 ** (32 - bits);
    const network = address - (address % size);
    if (network !== address) {
      const canonical = [24, 16, 8, 0]
        .map((shift) => Math.floor(network / 2 ** shift) % 256)
        .join('.');
      fail(
        key,
        raw,
        `a network address: ${String(raw).trim()} has host bits set; did you mean ${canonical}/${bits}?`,
      );
    }
    return `${octets.join('.')}/${bits}`;
  });
  return [...new Set(cidrs)];
}

/**
 * Where builds deploy to. Unset, one environment: pushes to the build branches deploy to
 * `namespace` on `clusterName`, which is what those two keys meant before environments existed.
 */
function readEnvironments(
  context: Readonly<Record<string, unknown>>,
  read: (key: ContextKey) => unknown,
  defaults: {
    clusterName: string;
    namespace: string;
    build: BuildConfig;
    cluster: ClusterConfig;
  },
): EnvironmentConfig[] {
  const { clusterName, namespace, build, cluster } = defaults;
  let environments: EnvironmentConfig[];
  if (read('environments') === undefined) {
    environments = [
      {
        name: DEFAULT_ENVIRONMENT_NAME,
        clusterName,
        namespace,
        branches: build.branches,
        releaseTags: false,
      },
    ];
  } else {
    if ('namespace' in context) {
      throw new ConfigError(
        'namespace',
        'namespace is set but so is environments: namespace only names the namespace of the default ' +
          'environment, which environments replaces. Remove namespace, and give each environment its "namespace".',
      );
    }
    const expected =
      'a JSON array of environment objects {"name", "namespace", "branches"?, "releaseTags"?, "clusterName"?}, ' +
      'e.g. [{"name":"main","namespace":"dockercoins","branches":["main"]},' +
      '{"name":"prod","namespace":"dockercoins-prod","releaseTags":true}] (with -c, the same JSON in quotes)';
    const entries = readList(read('environments'), 'environments', expected);
    if (entries.length === 0)
      fail('environments', read('environments'), `${expected}, at least one`);
    environments = entries.map((entry, index) =>
      readEnvironment(entry, index, expected, clusterName, build.branches),
    );
  }

  const names = new Map<string, number>();
  const places = new Map<string, string>();
  environments.forEach((environment, index) => {
    const sameName = names.get(environment.name);
    if (sameName !== undefined) {
      throw new ConfigError(
        'environments',
        `environments[${sameName}] and environments[${index}] are both named "${environment.name}": ` +
          'logs, metrics and notifications name environments, so each name must be unique. Rename one.',
      );
    }
    names.set(environment.name, index);
    const place = `${environment.clusterName}/${environment.namespace}`;
    const samePlace = places.get(place);
    if (samePlace !== undefined) {
      throw new ConfigError(
        'environments',
        `environments "${samePlace}" and "${environment.name}" both deploy to namespace "${environment.namespace}" ` +
          `on cluster "${environment.clusterName}": one build would patch the same Deployments twice. Merge them ` +
          '(one environment may list several branches and release tags), or give one another namespace.',
      );
    }
    places.set(place, environment.name);
  });

  if (cluster.create && !environments.some((e) => e.clusterName === clusterName)) {
    throw new ConfigError(
      'environments',
      `createCluster is true but no environment deploys to the cluster "${clusterName}" it creates, so ` +
        'DockerCoins would be installed nowhere on it. Give at least one environment that cluster (an ' +
        'environment without "clusterName" uses it).',
    );
  }
  return environments;
}

function readEnvironment(
  entry: unknown,
  index: number,
  expected: string,
  defaultClusterName: string,
  buildBranches: readonly string[],
): EnvironmentConfig {
  const key = 'environments';
  if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
    fail(key, entry, expected);
  }
  const object = entry as Record<string, unknown>;
  const at = `environments[${index}]`;
  if ('region' in object) {
    throw new ConfigError(
      key,
      `${at} sets "region", but every environment's cluster must be in the region the app is deployed to: ` +
        "the deployer's EKS access entry, which lets it into the cluster, can only be created there. Remove " +
        '"region", and deploy the app to the region of the cluster.',
    );
  }
  const unknownKey = Object.keys(object).find(
    (k) => !(ENVIRONMENT_OBJECT_KEYS as readonly string[]).includes(k),
  );
  if (unknownKey !== undefined) {
    fail(
      key,
      entry,
      `an environment object with only the keys ${ENVIRONMENT_OBJECT_KEYS.join(', ')} ("${unknownKey}" is not one)`,
    );
  }
  if (object.name === undefined) fail(key, entry, `${at} to have a "name", e.g. "prod"`);
  if (object.namespace === undefined) {
    fail(key, entry, `${at} to have a "namespace", e.g. "dockercoins-prod"`);
  }
  const name = readDnsLabel(object.name, key);
  const namespace = readDnsLabel(object.namespace, key);
  const clusterName =
    object.clusterName === undefined
      ? defaultClusterName
      : readClusterName(object.clusterName, key);
  const releaseTags =
    object.releaseTags === undefined ? false : readBoolean(object.releaseTags, key);
  const branches =
    object.branches === undefined
      ? []
      : readList(object.branches, key, `the "branches" of environment "${name}" as a JSON array`);
  for (const branch of branches) {
    if (typeof branch !== 'string' || !buildBranches.includes(branch.trim())) {
      throw new ConfigError(
        key,
        `Environment "${name}" deploys branch ${describe(branch)}, which is not a build branch ` +
          `(buildBranches: ${buildBranches.join(', ')}): pushes to it never build, so they could never deploy. ` +
          'Add the branch to buildBranches, or remove it from the environment.',
      );
    }
  }
  if (branches.length === 0 && !releaseTags) {
    throw new ConfigError(
      key,
      `Environment "${name}" has no "branches" and no "releaseTags": no build would ever deploy to it. ` +
        'Give it branches (e.g. ["main"]) or "releaseTags": true.',
    );
  }
  const rollback = object.rollback === undefined ? undefined : readBoolean(object.rollback, key);
  const deadline =
    object.verifyDeadlineSeconds === undefined
      ? undefined
      : readVerifySeconds(
          object.verifyDeadlineSeconds,
          key,
          `"verifyDeadlineSeconds" of environment "${name}"`,
          VERIFY_LIMITS.deadlineSeconds,
        );
  const poll =
    object.verifyPollSeconds === undefined
      ? undefined
      : readVerifySeconds(
          object.verifyPollSeconds,
          key,
          `"verifyPollSeconds" of environment "${name}"`,
          VERIFY_LIMITS.pollSeconds,
        );
  return {
    name,
    clusterName,
    namespace,
    branches: [...new Set((branches as string[]).map((b) => b.trim()))],
    releaseTags,
    ...(rollback === undefined ? {} : { rollback }),
    ...(deadline === undefined ? {} : { verifyDeadlineSeconds: deadline }),
    ...(poll === undefined ? {} : { verifyPollSeconds: poll }),
  };
}

function readDeployer(read: (key: ContextKey) => unknown): DeployerConfig {
  const access = readEnum(read('deployerAccess'), 'deployerAccess', [
    'edit-policy',
    'rbac',
  ] as const);
  const logRetentionDays = readRetention(
    read('deployerLogRetentionDays'),
    'deployerLogRetentionDays',
  );
  const rawEmail = read('notificationEmail');
  const notificationEmail =
    rawEmail === undefined
      ? undefined
      : readMatching(
          rawEmail,
          'notificationEmail',
          EMAIL,
          'an email address such as "ops@example.com" (SNS sends it a confirmation link first)',
        );
  return { access, vpc: readDeployerVpc(read), notificationEmail, logRetentionDays };
}

/** The Lambda in the cluster's VPC: all three keys, or none. */
function readDeployerVpc(read: (key: ContextKey) => unknown): DeployerVpcConfig | undefined {
  const ids = (
    key: 'deployerSubnetIds' | 'deployerSecurityGroupIds',
    pattern: RegExp,
    example: string,
    max: number,
  ): string[] => {
    const expected = `${max} or fewer ids such as "${example}", comma-separated with -c or a JSON array`;
    const list = readList(read(key), key, expected);
    for (const id of list) {
      if (typeof id !== 'string' || !pattern.test(id.trim())) fail(key, id, expected);
    }
    const unique = [...new Set((list as string[]).map((id) => id.trim()))];
    if (unique.length > max) fail(key, read(key), expected);
    return unique;
  };
  const subnetIds = ids(
    'deployerSubnetIds',
    SUBNET_ID,
    'subnet-0123456789abcdef0',
    MAX_LAMBDA_SUBNETS,
  );
  const securityGroupIds = ids(
    'deployerSecurityGroupIds',
    SECURITY_GROUP_ID,
    'sg-0123456789abcdef0',
    MAX_LAMBDA_SECURITY_GROUPS,
  );
  const vpcId =
    read('deployerVpcId') === undefined
      ? undefined
      : readMatching(
          read('deployerVpcId'),
          'deployerVpcId',
          VPC_ID,
          'a VPC id such as "vpc-0123456789abcdef0" (the cluster\'s VPC)',
        );
  const given = {
    deployerVpcId: vpcId !== undefined,
    deployerSubnetIds: subnetIds.length > 0,
    deployerSecurityGroupIds: securityGroupIds.length > 0,
  };
  const set = Object.keys(given).filter((k) => given[k as keyof typeof given]);
  const missing = Object.keys(given).filter((k) => !given[k as keyof typeof given]);
  if (set.length === 0) return undefined;
  if (vpcId !== undefined && missing.length === 0) return { vpcId, subnetIds, securityGroupIds };
  const verb = (keys: string[]): string => (keys.length === 1 ? 'is' : 'are');
  throw new ConfigError(
    missing[0] ?? 'deployerVpcId',
    `${set.join(' and ')} ${verb(set)} set but ${missing.join(' and ')} ${verb(missing)} not: the deployer runs ` +
      "in the cluster's VPC only with all three (the VPC, private subnets with a route to the AWS APIs, and " +
      "security groups that the cluster's API endpoint accepts on port 443). Set the missing ones, or none.",
  );
}

/** Warnings for defaults that synthesize but cannot work for a real `cdk deploy`. */
function collectWarnings(context: Readonly<Record<string, unknown>>): ConfigWarning[] {
  const warnings: ConfigWarning[] = [];
  const provider = 'sourceProvider' in context ? String(context.sourceProvider).trim() : 'github';
  if (!('sourceOwner' in context) && provider.toLowerCase() === 'github') {
    warnings.push({
      key: 'sourceOwner',
      message:
        `sourceOwner is the default "${DEFAULTS.sourceOwner}" (the upstream DockerCoins repository). ` +
        'CodeBuild can only create a webhook on a repository you administer: fork it and set ' +
        '`-c sourceOwner=<your GitHub user or org>` (and sourceRepo if you renamed it), or put them in cdk.json.',
    });
  }
  return warnings;
}

// ---- readers: one per value shape; each names the key and the expected form ----

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function fail(key: string, value: unknown, expected: string): never {
  throw new ConfigError(
    key,
    `Invalid value for context key "${key}": ${describe(value)}. Expected ${expected}. ` +
      `Set it in cdk.json under "context", or with \`-c ${key}=<value>\`.`,
  );
}

function check(key: string, value: unknown, ok: boolean, expected: string): void {
  if (!ok) fail(key, value, expected);
}

function readString(value: unknown, key: string): string {
  if (typeof value !== 'string' || value.trim() === '') fail(key, value, 'a non-empty string');
  return value.trim();
}

function readMatching(value: unknown, key: string, pattern: RegExp, expected: string): string {
  const text = readString(value, key);
  check(key, text, pattern.test(text), expected);
  return text;
}

function readDnsLabel(value: unknown, key: string): string {
  return readMatching(
    value,
    key,
    DNS_LABEL,
    'a Kubernetes DNS-1123 label: at most 63 lowercase letters, digits or "-", starting and ending with a letter or digit',
  );
}

function readEnum<T extends string>(value: unknown, key: string, allowed: readonly T[]): T {
  const found = allowed.find(
    (a) => typeof value === 'string' && a.toLowerCase() === value.trim().toLowerCase(),
  );
  if (found === undefined) fail(key, value, `one of ${allowed.map((a) => `"${a}"`).join(', ')}`);
  return found;
}

function readInteger(value: unknown, key: string, min: number, max: number): number {
  const n = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value) ? Number(value) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < min || n > max) {
    fail(key, value, `a whole number from ${min} to ${max}`);
  }
  return n;
}

/** A list from cdk.json (JSON array) or from `-c` (comma-separated string, or a JSON array string). */
function readList(value: unknown, key: string, expected: string): unknown[] {
  if (Array.isArray(value)) return value as unknown[];
  if (typeof value === 'string') {
    const text = value.trim();
    if (text.startsWith('[')) {
      try {
        const parsed: unknown = JSON.parse(text);
        if (Array.isArray(parsed)) return parsed as unknown[];
      } catch {
        // fall through to the error below
      }
      fail(key, value, `${expected}; this looks like JSON but is not a JSON array`);
    }
    if (text === '') return [];
    return text.split(',').map((part) => part.trim());
  }
  fail(key, value, expected);
}

function readServices(value: unknown): ServiceConfig[] {
  const expected =
    'a list of service names ("hasher,rng" with -c, or a JSON array), or JSON objects ' +
    '{"name", "buildContext"?, "deployment"?, "container"?}';
  const entries = readList(value, 'services', expected);
  if (entries.length === 0) fail('services', value, `${expected}, with at least one service`);
  const services = entries.map((entry): ServiceConfig => {
    if (typeof entry === 'string') return serviceFromName(entry);
    if (entry !== null && typeof entry === 'object' && !Array.isArray(entry)) {
      return serviceFromObject(entry as Record<string, unknown>);
    }
    return fail('services', entry, expected);
  });
  const seen = new Set<string>();
  for (const { name } of services) {
    if (seen.has(name)) fail('services', value, `${expected}, each name once ("${name}" repeats)`);
    seen.add(name);
  }
  if (services.length > MAX_SERVICES) {
    throw new ConfigError(
      'services',
      `${services.length} services is more than one app holds: at most ${MAX_SERVICES}, or the Builds stack ` +
        "goes over CloudFormation's 1 MB template limit. Split them over two apps (another stackNamePrefix " +
        'and repositoryPrefix).',
    );
  }
  const outputOwners = new Map<string, string>();
  for (const { name } of services) {
    const owner = outputOwners.get(outputIdPart(name));
    if (owner !== undefined) {
      throw new ConfigError(
        'services',
        `Services "${owner}" and "${name}" would share the stack outputs RepositoryUri${outputIdPart(name)} and ` +
          `BuildProject${outputIdPart(name)} (output ids keep letters and digits only). Rename one of them.`,
      );
    }
    outputOwners.set(outputIdPart(name), name);
  }
  return services;
}

/** `worker` → `Worker`, `hash-er` → `HashEr`: output logical ids allow letters and digits only. */
export function outputIdPart(service: string): string {
  return service
    .split('-')
    .map((part) => part.charAt(0).toUpperCase() + part.slice(1))
    .join('');
}

function serviceName(value: unknown): string {
  if (typeof value !== 'string') fail('services', value, 'a service name (a string)');
  const name = readDnsLabel(value, 'services');
  // CodeBuild project names (`<prefix>-<service>`) and construct ids stay short and readable.
  check(
    'services',
    name,
    name.length <= MAX_SERVICE_NAME_LENGTH,
    `a service name of at most ${MAX_SERVICE_NAME_LENGTH} characters`,
  );
  return name;
}

function serviceFromName(name: string): ServiceConfig {
  const valid = serviceName(name);
  return { name: valid, buildContext: `dockercoins/${valid}`, deployment: valid, container: valid };
}

function serviceFromObject(entry: Record<string, unknown>): ServiceConfig {
  const unknownKey = Object.keys(entry).find(
    (k) => !(SERVICE_OBJECT_KEYS as readonly string[]).includes(k),
  );
  if (unknownKey !== undefined) {
    fail(
      'services',
      entry,
      `a service object with only the keys ${SERVICE_OBJECT_KEYS.join(', ')} ("${unknownKey}" is not one)`,
    );
  }
  const base = serviceFromName(serviceName(entry.name));
  const buildContext =
    entry.buildContext === undefined
      ? base.buildContext
      : readMatching(
          entry.buildContext,
          'services',
          REPO_PATH,
          'a buildContext that is a relative path inside the source repository, without ".." or leading "/", e.g. "dockercoins/hasher"',
        );
  const deployment =
    entry.deployment === undefined
      ? base.deployment
      : readMatching(
          entry.deployment,
          'services',
          DNS_SUBDOMAIN,
          'a Deployment name: a Kubernetes DNS-1123 subdomain',
        );
  const container =
    entry.container === undefined ? base.container : readDnsLabel(entry.container, 'services');
  const deadline =
    entry.verifyDeadlineSeconds === undefined
      ? undefined
      : readVerifySeconds(
          entry.verifyDeadlineSeconds,
          'services',
          `"verifyDeadlineSeconds" of service "${base.name}"`,
          VERIFY_LIMITS.deadlineSeconds,
        );
  return {
    name: base.name,
    buildContext,
    deployment,
    container,
    ...(deadline === undefined ? {} : { verifyDeadlineSeconds: deadline }),
  };
}

/** Seconds of verification (deadline or poll interval), whole and within the limits. */
function readVerifySeconds(
  value: unknown,
  key: ContextKey,
  what: string,
  { min, max }: { min: number; max: number },
): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ConfigError(
      key,
      `${what} is ${describe(value)}; give whole seconds from ${min} to ${max} (docs/deploys.md).`,
    );
  }
  return value;
}

function readOptionalTag(value: unknown): string | undefined {
  if (value === false || value === null) return undefined;
  if (typeof value === 'string' && ['none', 'false'].includes(value.trim().toLowerCase())) {
    return undefined;
  }
  const tag = readString(value, 'buildCacheTag');
  check(
    'buildCacheTag',
    tag,
    IMAGE_TAG.test(tag) && ECR_WILDCARD.test(tag) && tag !== 'latest',
    'an image tag such as "buildcache" (letters, digits, "._-"; not "latest"), or "none" to make every tag immutable',
  );
  return tag;
}

function readAccountIds(value: unknown): string[] {
  const expected = 'AWS account ids of exactly 12 digits, comma-separated with -c or a JSON array';
  const ids = readList(value, 'pullAccountIds', expected).map((id) =>
    typeof id === 'number' ? String(id) : id,
  );
  for (const id of ids) {
    if (typeof id !== 'string' || !ACCOUNT_ID.test(id)) fail('pullAccountIds', id, expected);
  }
  return [...new Set(ids as string[])];
}

/** Is this a git branch name (`git check-ref-format --branch`), in the subset webhooks carry? */
export function isBranchName(branch: string): boolean {
  return (
    /^[A-Za-z0-9._/-]+$/.test(branch) &&
    !branch.startsWith('-') &&
    !branch.startsWith('/') &&
    !branch.endsWith('/') &&
    !branch.endsWith('.') &&
    !branch.endsWith('.lock') &&
    !branch.includes('..') &&
    !branch.includes('//') &&
    !branch.split('/').some((part) => part.startsWith('.')) &&
    branch !== 'HEAD' &&
    !branch.startsWith('refs/')
  );
}

function readBranches(value: unknown): string[] {
  const expected =
    'git branch names such as "main" or "release/1.x" (letters, digits, "._/-"; no "..", no "refs/" prefix), ' +
    'comma-separated with -c or a JSON array, at least one';
  const branches = readList(value, 'buildBranches', expected);
  if (branches.length === 0) fail('buildBranches', value, expected);
  for (const branch of branches) {
    if (typeof branch !== 'string' || !isBranchName(branch.trim())) {
      fail('buildBranches', branch, expected);
    }
  }
  return [...new Set((branches as string[]).map((b) => b.trim()))];
}

function readPaths(value: unknown, key: string): string[] {
  const expected =
    'relative paths inside the source repository (no "..", no leading "/"), e.g. "dockercoins/common", ' +
    'comma-separated with -c or a JSON array';
  const paths = readList(value, key, expected);
  for (const p of paths) {
    if (typeof p !== 'string' || !REPO_PATH.test(p.trim())) fail(key, p, expected);
  }
  return [...new Set((paths as string[]).map((p) => p.trim()))];
}

function readClusterName(value: unknown, key: string): string {
  return readMatching(
    value,
    key,
    EKS_CLUSTER_NAME,
    'an EKS cluster name: a letter or digit, then up to 99 letters, digits, "-" or "_"',
  );
}

function readBoolean(value: unknown, key: string): boolean {
  if (typeof value === 'boolean') return value;
  if (typeof value === 'string' && ['true', 'false'].includes(value.trim().toLowerCase())) {
    return value.trim().toLowerCase() === 'true';
  }
  fail(key, value, 'true or false');
}

function readRetention(value: unknown, key: ContextKey = 'buildLogRetentionDays'): number {
  const days = readInteger(value, key, 1, 3653);
  check(
    key,
    value,
    (LOG_RETENTION_DAYS as readonly number[]).includes(days),
    `one of the retention periods CloudWatch Logs accepts: ${LOG_RETENTION_DAYS.join(', ')}`,
  );
  return days;
}

/** The git host of the source, and what each one needs. */
function readSource(
  context: Readonly<Record<string, unknown>>,
  read: (key: ContextKey) => unknown,
): SourceConfig {
  const provider = readEnum(read('sourceProvider'), 'sourceProvider', [
    'github',
    'gitlab',
    'bitbucket',
    'codecommit',
  ] as const);
  const connectionArn =
    read('sourceConnectionArn') === undefined
      ? undefined
      : readMatching(
          read('sourceConnectionArn'),
          'sourceConnectionArn',
          CONNECTION_ARN,
          'a CodeConnections connection ARN, e.g. "arn:aws:codeconnections:eu-west-1:123456789012:connection/<uuid>" ' +
            '(create one in the console under Developer Tools > Settings > Connections)',
        );

  if (provider === 'codecommit') {
    if ('sourceOwner' in context) {
      throw new ConfigError(
        'sourceOwner',
        'sourceOwner is set but sourceProvider is "codecommit": CodeCommit repositories belong to the account. ' +
          'Remove sourceOwner, and set sourceRepo to the CodeCommit repository name.',
      );
    }
    if (connectionArn !== undefined) {
      throw new ConfigError(
        'sourceConnectionArn',
        'sourceConnectionArn is set but sourceProvider is "codecommit", which needs no connection. Remove it.',
      );
    }
    const repo = readMatching(
      read('sourceRepo'),
      'sourceRepo',
      CODECOMMIT_REPO,
      'a CodeCommit repository name: up to 100 letters, digits, ".", "_" or "-"',
    );
    return { provider, owner: undefined, repo, connectionArn };
  }

  if (provider !== 'github') {
    if (!('sourceOwner' in context)) {
      throw new ConfigError(
        'sourceOwner',
        `sourceProvider is "${provider}" but sourceOwner is not set: set \`-c sourceOwner=<${
          provider === 'gitlab' ? 'group or group/subgroup' : 'workspace'
        }>\` and sourceRepo.`,
      );
    }
    if (connectionArn === undefined) {
      throw new ConfigError(
        'sourceConnectionArn',
        `sourceProvider is "${provider}", which CodeBuild reaches only through a CodeConnections connection: ` +
          'create one (console: Developer Tools > Settings > Connections), then set `-c sourceConnectionArn=<its ARN>`.',
      );
    }
  }
  const owner = {
    github: () =>
      readMatching(
        read('sourceOwner'),
        'sourceOwner',
        GITHUB_OWNER,
        'a GitHub user or organisation name, e.g. "my-org"',
      ),
    gitlab: () =>
      readMatching(
        read('sourceOwner'),
        'sourceOwner',
        GITLAB_NAMESPACE,
        'a GitLab group or user, with subgroups separated by "/", e.g. "my-group/apps"',
      ),
    bitbucket: () =>
      readMatching(
        read('sourceOwner'),
        'sourceOwner',
        BITBUCKET_WORKSPACE,
        'a Bitbucket workspace id: lowercase letters, digits, "-" or "_"',
      ),
  }[provider]();
  const repo = readMatching(
    read('sourceRepo'),
    'sourceRepo',
    GITHUB_REPO,
    provider === 'github'
      ? 'a GitHub repository name, e.g. "container.training"'
      : 'a repository name: letters, digits, ".", "_" or "-"',
  );
  return { provider, owner, repo, connectionArn };
}

/** Does an ECR wildcard (only `*` is special) match a tag? */
export function wildcardMatches(pattern: string, tag: string): boolean {
  const regex = new RegExp(
    `^${pattern
      .split('*')
      .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
      .join('.*')}$`,
  );
  return regex.test(tag);
}

// ---- typo detection ----

/**
 * A key one or two edits away from one of ours (or differing only in case) is a typo: fail rather
 * than ignore it, since an ignored `-c clusterNmae=prod` would deploy to the default cluster.
 */
function rejectNearMisses(context: Readonly<Record<string, unknown>>): void {
  for (const key of Object.keys(context)) {
    const replacement = REPLACED_KEYS[key];
    if (replacement !== undefined) throw new ConfigError(key, replacement);
    if ((CONTEXT_KEYS as string[]).includes(key)) continue;
    const near = CONTEXT_KEYS.find(
      (ours) => ours.toLowerCase() === key.toLowerCase() || editDistance(ours, key) <= 2,
    );
    if (near !== undefined) {
      throw new ConfigError(
        key,
        `Unknown context key "${key}". Did you mean "${near}"? The keys this app reads are listed in README.md ` +
          `(Configuration).`,
      );
    }
  }
}

/** Levenshtein distance, small inputs only (context keys). */
export function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function deepFreeze<T>(value: T): T {
  if (value !== null && typeof value === 'object') {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}
