import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { Annotations, Arn, Aws, Duration, Stack, Token, Validations } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as codecommit from 'aws-cdk-lib/aws-codecommit';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import { Construct } from 'constructs';
import { parse } from 'yaml';
import { BUILD_ENV, BUILDKIT_IMAGE, TOOLS_SOURCE_IDENTIFIER } from '../build-contract';
import {
  BuildArchitecture,
  ServiceConfig,
  SourceConfig,
  hostedSourceUrl,
  projectName,
} from '../config';

/** The folder with the buildspec. */
export const BUILDSPECS_DIR = path.resolve(__dirname, '..', '..', 'buildspecs');
/**
 * The core's scripts the buildspec runs (the build itself, CI detection, tags, registry client),
 * shipped to every build as they are in core/: plain Node with `// @ts-check`, no bundling, so
 * CodeBuild runs the very files `ship build` and the in-cluster deployer import.
 */
export const SHIP_TOOLS_DIR = path.resolve(__dirname, '..', '..', 'core');
export const SHIP_TOOLS_FILES = ['build.js', 'ci.js', 'image-tags.js', 'registry.js'] as const;
/** The one buildspec every service project runs. */
export const BUILDSPEC_FILE = path.join(BUILDSPECS_DIR, 'build-image.yml');

/** What one service project builds and where it pushes. */
export interface ImageBuildService {
  readonly service: ServiceConfig;
  /** The ECR repository this project, and only this project, pushes to. */
  readonly repository: ecr.IRepository;
  /**
   * The repository of this service's pull-request images (`<prefix>/pr/<service>`), the only one
   * its pull-request project may push to. Required with `pullRequestBuilds`.
   * @default - none
   */
  readonly pullRequestRepository?: ecr.IRepository;
}

export interface ImageBuildsProps {
  /** One CodeBuild project per entry. */
  readonly services: readonly ImageBuildService[];
  /** The git repository and how CodeBuild reaches it. */
  readonly source: SourceConfig;
  /** Pushes to these branches build. */
  readonly branches: readonly string[];
  /**
   * Glob of release tags (only `*` is special): pushing a matching git tag builds (or, for an
   * already built commit, only retags) every service.
   * @default 'v*'
   */
  readonly releaseTagPattern?: string;
  /**
   * Paths in the source repository whose change rebuilds every service.
   * @default - none: a service rebuilds only when its build context changes
   */
  readonly sharedPaths?: readonly string[];
  /**
   * Build pull requests (tags `pr-<n>-<sha7>` only) in a second project per service, with its own
   * role that may push to the service's `pullRequestRepository` only: it cannot read or write a
   * tag of the service repository, nor its build cache (pull-request builds use no registry
   * cache). The service projects never take pull-request events. The contributor's Dockerfile
   * still runs privileged on CodeBuild: keep this off for public repositories unless the host
   * restricts who can open pull requests.
   * @default false
   */
  readonly pullRequestBuilds?: boolean;
  /**
   * CPU architecture of the build hosts and therefore of the images: it must match the nodes.
   * @default 'x86_64'
   */
  readonly architecture?: BuildArchitecture;
  /** @default Duration.minutes(30) */
  readonly timeout?: Duration;
  /**
   * Builds of one service that may run at once. CodeBuild FAILS a build started beyond the
   * project's limit (it does not queue it), so keep it above the bursts of pushes you expect.
   * Concurrency is safe: a build that loses the race to push a commit's tag promotes the winner's
   * image, and the deployer never replaces a newer build with an older one.
   * @default 10
   */
  readonly concurrentBuildLimit?: number;
  /** @default logs.RetentionDays.ONE_MONTH */
  readonly logRetention?: logs.RetentionDays;
  /**
   * The moving tag of BuildKit's registry cache, excluded from tag immutability by the registry.
   * @default - no registry cache
   */
  readonly buildCacheTag?: string;
  /**
   * Prefix of the project names: `<prefix>-<service>`. GitHub shows the name on commit statuses.
   * @default 'DockerCoins'
   */
  readonly projectNamePrefix?: string;
  /**
   * The buildspec to run.
   * @default BUILDSPEC_FILE (buildspecs/build-image.yml)
   */
  readonly buildSpecFile?: string;
  /**
   * ECR prefix of the account's pull-through cache rule for ECR Public (the registry stack's):
   * builds run BuildKit ({@link BUILDKIT_IMAGE}) from there, pinned by digest.
   * @default 'dockercoins-ecr-public'
   */
  readonly pullThroughCachePrefix?: string;
}

/** Build hosts per architecture: current CodeBuild standard images that run Docker. */
const BUILD_IMAGES: Record<BuildArchitecture, { image: codebuild.IBuildImage; platform: string }> =
  {
    // aws/codebuild/standard:7.0, Ubuntu 22.04.
    x86_64: { image: codebuild.LinuxBuildImage.STANDARD_7_0, platform: 'linux/amd64' },
    // aws/codebuild/amazonlinux-aarch64-standard:3.0, Amazon Linux 2023.
    arm64: {
      image: codebuild.LinuxArmBuildImage.AMAZON_LINUX_2023_STANDARD_3_0,
      platform: 'linux/arm64',
    },
  };

/** ECR actions a push needs (docker push, BuildKit's cache export), on one repository. */
export const ECR_PUSH_ACTIONS = [
  'ecr:BatchCheckLayerAvailability',
  'ecr:BatchGetImage',
  'ecr:CompleteLayerUpload',
  'ecr:GetDownloadUrlForLayer',
  'ecr:InitiateLayerUpload',
  'ecr:PutImage',
  'ecr:UploadLayerPart',
] as const;

/** ECR actions pulling BuildKit through the pull-through cache needs, on its one repository. */
export const BUILDKIT_PULL_ACTIONS = [
  'ecr:BatchCheckLayerAvailability',
  'ecr:BatchGetImage',
  'ecr:BatchImportUpstreamImage',
  'ecr:CreateRepository',
  'ecr:GetDownloadUrlForLayer',
] as const;

/** `release/1.x` → `release/1\.x`: a literal inside a webhook regex. */
function escapeRegex(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** The anchored HEAD_REF regex for pushes to these branches: `^refs/heads/(main|release/1\.x)$`. */
export function branchRefPattern(branches: readonly string[]): string {
  return `^refs/heads/(${branches.map(escapeRegex).join('|')})$`;
}

/** The anchored HEAD_REF regex for pushed tags matching a glob: `v*` → `^refs/tags/v.*$`. */
export function tagRefPattern(glob: string): string {
  return `^refs/tags/${glob.split('*').map(escapeRegex).join('.*')}$`;
}

/**
 * The FILE_PATH regex of a service: its build context or a shared path, as a folder or a file:
 * `^(dockercoins/rng|libs)(/|$)`.
 */
export function filePathPattern(paths: readonly string[]): string {
  return `^(${paths.map(escapeRegex).join('|')})(/|$)`;
}

/** Web address of the source, for the OCI `source` label and the README. */
export function sourceUrl(source: SourceConfig): string {
  return (
    hostedSourceUrl(source) ??
    `https://git-codecommit.${Aws.REGION}.${Aws.URL_SUFFIX}/v1/repos/${source.repo}`
  );
}

/**
 * One CodeBuild project per service that builds its image on every push that concerns it and
 * pushes it to the service's ECR repository with meaningful tags (buildspecs/build-image.yml):
 *
 * - webhook filter groups with anchored refs: pushes to the configured branches that change the
 *   service's build context (or a shared path); pushes of release tags (every service: a release
 *   names the whole app, and a commit already built is only retagged); never pull requests, which
 *   (optionally) have a project, a role and a repository of their own;
 * - CodeCommit, which has no webhooks, triggers the projects through EventBridge instead;
 * - privileged (Docker needs it), with a timeout, a concurrent build limit and bounded logs;
 * - a role per project that may push only to its own repository.
 */
export class ImageBuilds extends Construct {
  /** The CodeBuild project of each service, by service name. */
  public readonly projects: ReadonlyMap<string, codebuild.Project>;
  /** The pull-request project of each service, by service name; empty without `pullRequestBuilds`. */
  public readonly pullRequestProjects: ReadonlyMap<string, codebuild.Project>;
  /** The buildspec every project runs, uploaded once. */
  public readonly buildSpecAsset: s3assets.Asset;

  constructor(scope: Construct, id: string, props: ImageBuildsProps) {
    super(scope, id);
    if (props.services.length === 0) {
      throw new Error('ImageBuilds: services is empty; give at least one service to build.');
    }
    if (props.branches.length === 0) {
      throw new Error('ImageBuilds: branches is empty; give at least one branch, e.g. ["main"].');
    }
    const concurrentBuildLimit = props.concurrentBuildLimit ?? 10;
    if (!Token.isUnresolved(concurrentBuildLimit) && concurrentBuildLimit < 1) {
      throw new Error(
        `ImageBuilds: concurrentBuildLimit is ${concurrentBuildLimit}; it must be 1 or more.`,
      );
    }
    if (props.pullRequestBuilds === true) {
      const missing = props.services.filter((s) => s.pullRequestRepository === undefined);
      if (missing.length > 0) {
        throw new Error(
          `ImageBuilds: pullRequestBuilds is on but ${missing.map((s) => s.service.name).join(', ')} ` +
            'has no pullRequestRepository: pull-request images go to a repository of their own ' +
            '(ImageRegistry with pullRequestRepositories: true).',
        );
      }
      const names = new Set(props.services.map((s) => s.service.name));
      const clash = props.services.find((s) => names.has(`${s.service.name}-pr`));
      if (clash !== undefined) {
        throw new Error(
          `ImageBuilds: services "${clash.service.name}" and "${clash.service.name}-pr" would both have a project ` +
            `named <prefix>-${clash.service.name}-pr with pullRequestBuilds on: rename one service.`,
        );
      }
    }
    const releaseTagPattern = props.releaseTagPattern ?? 'v*';
    const architecture = props.architecture ?? 'x86_64';
    const projectNamePrefix = props.projectNamePrefix ?? 'DockerCoins';
    const buildSpecFile = props.buildSpecFile ?? BUILDSPEC_FILE;
    checkBuildSpec(buildSpecFile);
    const stack = Stack.of(this);
    const buildkitRepository = `${props.pullThroughCachePrefix ?? 'dockercoins-ecr-public'}/${BUILDKIT_IMAGE.repository}`;
    const buildkitRepositoryArn = Arn.format(
      { service: 'ecr', resource: 'repository', resourceName: buildkitRepository },
      stack,
    );
    const buildkitImage = `${stack.account}.dkr.ecr.${stack.region}.${stack.urlSuffix}/${buildkitRepository}:${BUILDKIT_IMAGE.tag}@${BUILDKIT_IMAGE.digest}`;
    // One object in S3 that every project names by ARN: inlined, the buildspec would weigh about
    // 14 KB in each project and push 100 services past CloudFormation's 1 MB template limit.
    this.buildSpecAsset = new s3assets.Asset(this, 'BuildSpec', { path: buildSpecFile });
    const buildSpec = codebuild.BuildSpec.fromSourceFilename(
      `arn:${Aws.PARTITION}:s3:::${this.buildSpecAsset.s3BucketName}/${this.buildSpecAsset.s3ObjectKey}`,
    );

    // The core's scripts travel to every build as a secondary source, so the source repository
    // (the DockerCoins code) needs nothing of ours. Only those files: the rest of core/ is
    // TypeScript for the other runtimes.
    const tools = new s3assets.Asset(this, 'Tools', {
      path: SHIP_TOOLS_DIR,
      exclude: ['*', ...SHIP_TOOLS_FILES.map((file) => `!${file}`)],
    });

    const codeCommitRepository =
      props.source.provider === 'codecommit'
        ? codecommit.Repository.fromRepositoryName(this, 'SourceRepository', props.source.repo)
        : undefined;

    const projects = new Map<string, codebuild.Project>();
    const pullRequestProjects = new Map<string, codebuild.Project>();
    for (const { service, repository, pullRequestRepository } of props.services) {
      const scope = new Construct(this, service.name);
      const logGroup = new logs.LogGroup(scope, 'Logs', {
        retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
      });

      // The role's policy is written out in full below. `withoutPolicyUpdates` keeps the L2
      // constructs from adding their broader defaults (report groups, wildcard S3 reads).
      const role = new iam.Role(scope, 'Role', {
        assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'),
        description: `Builds the ${service.name} image and pushes it to its ECR repository only`,
      });
      const policy = new iam.Policy(scope, 'Policy', {
        roles: [role],
        statements: buildRoleStatements({
          logGroup,
          tools,
          buildSpecAsset: this.buildSpecAsset,
          repository,
          pushSid: 'PushOwnRepository',
          buildkitRepositoryArn,
          source: props.source,
          codeCommitRepository,
        }),
      });

      const project = new codebuild.Project(scope, 'Project', {
        projectName: projectName(projectNamePrefix, service.name),
        description: `Builds the ${service.name} image from ${service.buildContext} and pushes it to ECR with commit, branch and release tags`,
        role: role.withoutPolicyUpdates(),
        source: primarySource(props, service, releaseTagPattern, codeCommitRepository),
        secondarySources: [
          codebuild.Source.s3({
            bucket: tools.bucket,
            path: tools.s3ObjectKey,
            identifier: TOOLS_SOURCE_IDENTIFIER,
          }),
        ],
        buildSpec,
        environment: {
          buildImage: BUILD_IMAGES[architecture].image,
          computeType: codebuild.ComputeType.SMALL,
          // Docker (BuildKit) inside the build container needs it; nothing else runs there.
          privileged: true,
        },
        environmentVariables: buildEnvironment({
          service,
          repository,
          releaseTagPattern,
          source: props.source,
          architecture,
          buildkitImage,
          buildCacheTag: props.buildCacheTag,
        }),
        timeout: props.timeout ?? Duration.minutes(30),
        concurrentBuildLimit,
        logging: { cloudWatch: { logGroup } },
        grantReportGroupPermissions: false,
      });
      // The role must hold its permissions before CodeBuild validates the project's source.
      project.node.addDependency(policy);
      applySourceOverrides(project, props.source);

      if (codeCommitRepository !== undefined) {
        triggerOnCodeCommitPush(scope, project, codeCommitRepository, props, releaseTagPattern);
      }

      acknowledge(project, policy);
      projects.set(service.name, project);

      if (props.pullRequestBuilds === true && pullRequestRepository !== undefined) {
        pullRequestProjects.set(
          service.name,
          pullRequestProject(new Construct(scope, 'PullRequests'), {
            props,
            service,
            repository: pullRequestRepository,
            releaseTagPattern,
            architecture,
            concurrentBuildLimit,
            projectName: `${projectName(projectNamePrefix, service.name)}-pr`,
            buildSpec,
            buildSpecAsset: this.buildSpecAsset,
            tools,
            buildkit: { image: buildkitImage, repositoryArn: buildkitRepositoryArn },
          }),
        );
      }
    }
    this.projects = projects;
    this.pullRequestProjects = pullRequestProjects;

    if (props.source.provider === 'codecommit') {
      Annotations.of(this).addInfoV2(
        'dockercoins-ship:builds:codecommit-paths',
        'CodeCommit has no webhook path filters: every push to a build branch starts every service project; ' +
          'projects whose service did not change rebuild from the registry cache.',
      );
    }
  }
}

/** The variables the buildspec reads (lib/build-contract.ts), for one image of one service. */
function buildEnvironment(options: {
  service: ServiceConfig;
  repository: ecr.IRepository;
  releaseTagPattern: string;
  source: SourceConfig;
  architecture: BuildArchitecture;
  buildkitImage: string;
  /** undefined: no registry cache, read or written. */
  buildCacheTag: string | undefined;
}): ReturnType<typeof plain> {
  return plain({
    [BUILD_ENV.service]: options.service.name,
    [BUILD_ENV.buildContext]: options.service.buildContext,
    [BUILD_ENV.imageRepository]: options.repository.repositoryUri,
    [BUILD_ENV.registryAuth]: 'ecr',
    [BUILD_ENV.releaseTagPattern]: options.releaseTagPattern,
    [BUILD_ENV.sourceUrl]: sourceUrl(options.source),
    [BUILD_ENV.imagePlatform]: BUILD_IMAGES[options.architecture].platform,
    [BUILD_ENV.buildkitImage]: options.buildkitImage,
    ...(options.buildCacheTag === undefined
      ? {}
      : { [BUILD_ENV.buildCacheTag]: options.buildCacheTag }),
  });
}

/**
 * What a build role may do, and nothing more: write its own logs, read the build tools and the
 * buildspec, log in to ECR, push to its one repository, pull BuildKit through the cache, and read
 * its source. The service projects and the pull-request projects differ only in the repository.
 */
function buildRoleStatements(options: {
  logGroup: logs.ILogGroup;
  tools: s3assets.Asset;
  buildSpecAsset: s3assets.Asset;
  repository: ecr.IRepository;
  pushSid: 'PushOwnRepository' | 'PushPullRequestRepository';
  buildkitRepositoryArn: string;
  source: SourceConfig;
  codeCommitRepository: codecommit.IRepository | undefined;
}): iam.PolicyStatement[] {
  const { tools, buildSpecAsset } = options;
  return [
    new iam.PolicyStatement({
      sid: 'WriteBuildLogs',
      actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      resources: [options.logGroup.logGroupArn],
    }),
    new iam.PolicyStatement({
      sid: 'ReadBuildTools',
      actions: ['s3:GetObject', 's3:GetObjectVersion'],
      resources: [
        tools.bucket.arnForObjects(tools.s3ObjectKey),
        buildSpecAsset.bucket.arnForObjects(buildSpecAsset.s3ObjectKey),
      ],
    }),
    new iam.PolicyStatement({
      sid: 'LocateBuildToolsBucket',
      actions: ['s3:GetBucketAcl', 's3:GetBucketLocation'],
      resources: [tools.bucket.bucketArn],
    }),
    new iam.PolicyStatement({
      // ECR's authorization token is per registry, not per repository: `*` is the only
      // resource this action accepts.
      sid: 'LogInToEcr',
      actions: ['ecr:GetAuthorizationToken'],
      resources: ['*'],
    }),
    new iam.PolicyStatement({
      sid: options.pushSid,
      actions: [...ECR_PUSH_ACTIONS],
      resources: [options.repository.repositoryArn],
    }),
    new iam.PolicyStatement({
      // The first pull through the cache creates the repository and imports the image.
      sid: 'PullBuildKitThroughCache',
      actions: [...BUILDKIT_PULL_ACTIONS],
      resources: [options.buildkitRepositoryArn],
    }),
    ...sourceStatements(options.source, options.codeCommitRepository),
  ];
}

/**
 * The pull-request project of one service: its own log group, its own role, its own webhook (pull
 * requests only). The role may push to the pull-request repository and nothing else in ECR: ECR's
 * IAM has no condition on the image tag (PutImage cannot be limited to `pr-*`), so the boundary
 * is the repository. No registry cache: reading the service's cache would need pull rights on
 * the service repository, and writing it would let a pull request poison main's builds.
 */
function pullRequestProject(
  scope: Construct,
  options: {
    props: ImageBuildsProps;
    service: ServiceConfig;
    repository: ecr.IRepository;
    releaseTagPattern: string;
    architecture: BuildArchitecture;
    concurrentBuildLimit: number;
    projectName: string;
    buildSpec: codebuild.BuildSpec;
    buildSpecAsset: s3assets.Asset;
    tools: s3assets.Asset;
    /** BuildKit through the pull-through cache, pinned by digest, as the service projects run it. */
    buildkit: { image: string; repositoryArn: string };
  },
): codebuild.Project {
  const { props, service, repository, tools, buildSpecAsset } = options;
  const logGroup = new logs.LogGroup(scope, 'Logs', {
    retention: props.logRetention ?? logs.RetentionDays.ONE_MONTH,
  });
  const role = new iam.Role(scope, 'Role', {
    assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'),
    description: `Builds ${service.name} pull requests and pushes them to ${service.name}'s pull-request repository only`,
  });
  const policy = new iam.Policy(scope, 'Policy', {
    roles: [role],
    statements: buildRoleStatements({
      logGroup,
      tools,
      buildSpecAsset,
      repository,
      pushSid: 'PushPullRequestRepository',
      buildkitRepositoryArn: options.buildkit.repositoryArn,
      source: props.source,
      codeCommitRepository: undefined,
    }),
  });
  const project = new codebuild.Project(scope, 'Project', {
    projectName: options.projectName,
    description: `Builds pull requests that change ${service.buildContext} and pushes pr- images to ${service.name}'s pull-request repository`,
    role: role.withoutPolicyUpdates(),
    source: primarySource(
      props,
      service,
      options.releaseTagPattern,
      undefined,
      pullRequestWebhookFilters(props, service),
    ),
    secondarySources: [
      codebuild.Source.s3({
        bucket: tools.bucket,
        path: tools.s3ObjectKey,
        identifier: TOOLS_SOURCE_IDENTIFIER,
      }),
    ],
    buildSpec: options.buildSpec,
    environment: {
      buildImage: BUILD_IMAGES[options.architecture].image,
      computeType: codebuild.ComputeType.SMALL,
      privileged: true,
    },
    // No BUILD_CACHE_TAG: no registry cache, read or written.
    environmentVariables: buildEnvironment({
      service,
      repository,
      releaseTagPattern: options.releaseTagPattern,
      source: props.source,
      architecture: options.architecture,
      buildkitImage: options.buildkit.image,
      buildCacheTag: undefined,
    }),
    timeout: props.timeout ?? Duration.minutes(30),
    concurrentBuildLimit: options.concurrentBuildLimit,
    logging: { cloudWatch: { logGroup } },
    grantReportGroupPermissions: false,
  });
  project.node.addDependency(policy);
  applySourceOverrides(project, props.source);
  acknowledge(project, policy, 'pull-request');
  return project;
}

/** Fails synth early, naming the file, when the buildspec is not a version 0.2 YAML mapping. */
function checkBuildSpec(file: string): void {
  let parsed: unknown;
  try {
    parsed = parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new Error(`ImageBuilds: cannot read the buildspec ${file}: ${String(error)}`);
  }
  const version = (parsed as { version?: unknown } | null)?.version;
  if (version !== 0.2 && version !== '0.2') {
    throw new Error(
      `ImageBuilds: ${file} is not a buildspec of version 0.2 (version is ${String(version)}).`,
    );
  }
}

function plain(
  variables: Record<string, string>,
): Record<string, codebuild.BuildEnvironmentVariable> {
  return Object.fromEntries(
    Object.entries(variables).map(([name, value]) => [
      name,
      { type: codebuild.BuildEnvironmentVariableType.PLAINTEXT, value },
    ]),
  );
}

/** Webhook filter groups of a service project: branch pushes that touch the service, release tags. */
function webhookFilters(
  props: ImageBuildsProps,
  service: ServiceConfig,
  releaseTagPattern: string,
): codebuild.FilterGroup[] {
  const paths = filePathPattern([service.buildContext, ...(props.sharedPaths ?? [])]);
  return [
    codebuild.FilterGroup.inEventOf(codebuild.EventAction.PUSH)
      .andHeadRefIs(branchRefPattern(props.branches))
      .andFilePathIs(paths),
    // No FILE_PATH here: a tag push carries no changed files, so a path filter would never match.
    codebuild.FilterGroup.inEventOf(codebuild.EventAction.PUSH).andHeadRefIs(
      tagRefPattern(releaseTagPattern),
    ),
  ];
}

/** The one webhook filter group of a pull-request project: pull requests into a build branch. */
function pullRequestWebhookFilters(
  props: ImageBuildsProps,
  service: ServiceConfig,
): codebuild.FilterGroup[] {
  const paths = filePathPattern([service.buildContext, ...(props.sharedPaths ?? [])]);
  const actions = [
    codebuild.EventAction.PULL_REQUEST_CREATED,
    codebuild.EventAction.PULL_REQUEST_UPDATED,
    // Bitbucket has no "reopened" event (CodeBuild rejects it).
    ...(props.source.provider === 'bitbucket' ? [] : [codebuild.EventAction.PULL_REQUEST_REOPENED]),
  ];
  return [
    codebuild.FilterGroup.inEventOf(...actions)
      .andBaseRefIs(branchRefPattern(props.branches))
      .andFilePathIs(paths),
  ];
}

function primarySource(
  props: ImageBuildsProps,
  service: ServiceConfig,
  releaseTagPattern: string,
  codeCommitRepository: codecommit.IRepository | undefined,
  filters: codebuild.FilterGroup[] = webhookFilters(props, service, releaseTagPattern),
): codebuild.ISource {
  const { source } = props;
  if (source.provider === 'codecommit') {
    if (codeCommitRepository === undefined)
      throw new Error('unreachable: no CodeCommit repository');
    return codebuild.Source.codeCommit({ repository: codeCommitRepository, cloneDepth: 1 });
  }
  const common = {
    owner: source.owner ?? '',
    repo: source.repo,
    // Tags come from CodeBuild's variables, not from git history: one commit is enough.
    cloneDepth: 1,
    webhook: true,
    webhookFilters: filters,
    reportBuildStatus: true,
  };
  // GitLab has no L2 source; its CloudFormation shape is GitHub's with another type and
  // location, set in applySourceOverrides.
  return source.provider === 'bitbucket'
    ? codebuild.Source.bitBucket(common)
    : codebuild.Source.gitHub(common);
}

/** What the L2 source cannot say yet: CodeConnections auth and GitLab (aws/aws-cdk#31236, #31138). */
function applySourceOverrides(project: codebuild.Project, source: SourceConfig): void {
  const cfn = project.node.defaultChild as codebuild.CfnProject;
  if (source.provider === 'gitlab') {
    cfn.addPropertyOverride('Source.Type', 'GITLAB');
    cfn.addPropertyOverride('Source.Location', `${sourceUrl(source)}.git`);
  }
  if (source.connectionArn !== undefined) {
    cfn.addPropertyOverride('Source.Auth', {
      Type: 'CODECONNECTIONS',
      Resource: source.connectionArn,
    });
  }
}

/** Read access to the source: the connection, or the CodeCommit repository. */
function sourceStatements(
  source: SourceConfig,
  codeCommitRepository: codecommit.IRepository | undefined,
): iam.PolicyStatement[] {
  if (codeCommitRepository !== undefined) {
    return [
      new iam.PolicyStatement({
        sid: 'PullSource',
        actions: ['codecommit:GitPull'],
        resources: [codeCommitRepository.repositoryArn],
      }),
    ];
  }
  if (source.connectionArn === undefined) return [];
  // The service was renamed; IAM checks the prefix of the ARN it is given.
  const prefix = source.connectionArn.includes(':codestar-connections:')
    ? 'codestar-connections'
    : 'codeconnections';
  return [
    new iam.PolicyStatement({
      sid: 'UseSourceConnection',
      actions: [`${prefix}:GetConnectionToken`, `${prefix}:UseConnection`],
      resources: [source.connectionArn],
    }),
  ];
}

/**
 * CodeCommit has no webhooks: EventBridge starts the build on a push to a build branch or of a
 * release tag, with the pushed ref as the source version so the tags can name it.
 */
function triggerOnCodeCommitPush(
  scope: Construct,
  project: codebuild.Project,
  repository: codecommit.IRepository,
  props: ImageBuildsProps,
  releaseTagPattern: string,
): void {
  new events.Rule(scope, 'OnPush', {
    description: `Starts ${project.node.path} on a push to a build branch or of a release tag`,
    eventPattern: {
      source: ['aws.codecommit'],
      detailType: ['CodeCommit Repository State Change'],
      resources: [repository.repositoryArn],
      detail: {
        event: ['referenceCreated', 'referenceUpdated'],
        $or: [
          { referenceType: ['branch'], referenceName: [...props.branches] },
          { referenceType: ['tag'], referenceName: [{ wildcard: releaseTagPattern }] },
        ],
      },
    },
    targets: [
      new targets.CodeBuildProject(project, {
        event: events.RuleTargetInput.fromObject({
          sourceVersion: events.EventField.fromPath('$.detail.referenceFullName'),
        }),
        retryAttempts: 8,
        maxEventAge: Duration.hours(2),
      }),
    ],
  });
}

/** Findings that hold by design, each with its reason (written into the template too). */
function acknowledge(
  project: codebuild.Project,
  policy: iam.Policy,
  kind: 'service' | 'pull-request' = 'service',
): void {
  const validations = Validations.of(project);
  validations.acknowledge({
    id: 'AwsSolutions-CB3',
    reason:
      kind === 'service'
        ? 'Privileged mode is what Docker (BuildKit) needs to build images inside CodeBuild; the project runs ' +
          'only the buildspec of this app on the configured repository.'
        : "Privileged mode is what Docker (BuildKit) needs; a pull request's Dockerfile runs with a role of its " +
          'own that can push to the pull-request repository only (no service repository, no build cache).',
  });
  validations.acknowledge({
    id: 'AwsSolutions-CB4',
    reason:
      'The project produces no artifacts (images go to ECR, which encrypts them); CodeBuild encrypts its ' +
      'own temporary data with the AWS managed key for S3.',
  });
  Validations.of(policy).acknowledge({
    id: 'AwsSolutions-IAM5[Resource::*]',
    reason:
      'ecr:GetAuthorizationToken accepts only the resource "*" (the token is per registry); every other ' +
      'statement names its resource.',
  });
}
