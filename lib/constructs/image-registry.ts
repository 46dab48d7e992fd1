import { Aws, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import {
  DEFAULTS,
  defaultPullThroughCachePrefix,
  MAX_IMAGES_KEPT,
  pullRequestRepositoryName,
  RegistryEncryption,
  repositoryName,
} from '../config';
import { computeTags } from '../../core/image-tags';
import { IMAGE_MARK_PREFIX, IMAGE_MARK_WILDCARDS } from '../image-marks';

/** ECR wildcard of pull-request tags (`pr-<n>-<sha7>`, image-tags.js). */
export const PULL_REQUEST_TAG_WILDCARD = 'pr-*';
/** ECR lifecycle policies hold at most 50 rules; 7 are not per-branch. */
export const MAX_BRANCH_RULES = 43;

/**
 * ECR wildcard of one build branch's sortable tags (`<branch>-<sha7>-<build number>`), made as
 * image-tags.js makes them: sanitised, `branch-` in front when the plain form would read as a
 * release, cut when very long. `main` → `main-*-*`. It cannot match a commit tag (no dash) nor a
 * pull-request tag (`pr-<n>-…`, unless a branch is called `pr`).
 */
export function branchTagWildcard(branch: string, releaseTagPattern: string): string {
  // The sortable tag image-tags.js gives a build of this branch, with its suffix made a wildcard.
  const suffix = '-abcdef0-1';
  const { sortableTag } = computeTags({
    commit: 'abcdef0'.padEnd(40, '0'),
    ref: { kind: 'branch', name: branch },
    buildNumber: 1,
    releaseTagPattern,
  });
  if (sortableTag === undefined) {
    throw new Error(`ImageRegistry: branch "${branch}" gives no branch tag; check \`branches\`.`);
  }
  const part = sortableTag.slice(0, -suffix.length);
  // A very long name is cut to fit 128 characters, by a length that depends on the build number.
  return part.length >= 100 ? `${part.slice(0, 100)}*-*-*` : `${part}-*-*`;
}

/** Properties of an {@link ImageRegistry}. */
export interface ImageRegistryProps {
  /** Names of the services whose images we build; one repository each. */
  readonly services: readonly string[];

  /**
   * Repository names are `<repositoryPrefix>/<service>`.
   * @default 'dockercoins'
   */
  readonly repositoryPrefix?: string;

  /**
   * Server-side encryption of the images. `KMS` creates a customer managed key with yearly
   * rotation, kept (or destroyed) with the repositories. Chosen at creation: ECR cannot change a
   * repository's encryption afterwards.
   * @default 'AES256' - ECR's own AES-256 keys, no KMS cost
   */
  readonly encryption?: RegistryEncryption;

  /**
   * Untagged images expire this long after they were pushed.
   * @default Duration.days(3)
   */
  readonly untaggedImageExpiry?: Duration;

  /**
   * Tagged images beyond the newest N expire, counted by the last rule, after every other rule
   * (marks of running and rollback images, releases, the build cache, pull-request and branch
   * images) had its say: in practice the images with only a commit tag.
   * @default 50
   */
  readonly commitImagesToKeep?: number;

  /**
   * The build branches: each gets its own lifecycle rule, so a quiet branch's images do not
   * compete with a busy one's. At most {@link MAX_BRANCH_RULES}.
   * @default ['main']
   */
  readonly branches?: readonly string[];

  /**
   * Images with a branch tag (`main-6e0de79-42`) beyond the newest N of their branch expire,
   * unless a running or rollback mark or a release tag shields them.
   * @default 50
   */
  readonly branchImagesToKeep?: number;

  /**
   * Images with a pull-request tag (`pr-12-6e0de79`) beyond the newest N expire, in the service
   * repositories (images of before pull requests had their own) and in the pull-request ones.
   * @default 20
   */
  readonly pullRequestImagesToKeep?: number;

  /**
   * Also create one repository per service for pull-request images, `<repositoryPrefix>/pr/<service>`:
   * pull-request builds push there and only there, so they cannot touch a tag of the service
   * repositories (ECR's IAM cannot restrict PutImage to some tags).
   * @default false
   */
  readonly pullRequestRepositories?: boolean;

  /**
   * ECR wildcard of release tags: images carrying one are never expired by the count rule.
   * @default 'v*'
   */
  readonly releaseTagPattern?: string;

  /**
   * The one tag that may move (BuildKit's registry cache). The repositories are then
   * IMMUTABLE_WITH_EXCLUSION for this exact tag, and its image is kept by a lifecycle rule.
   * @default - no tag may move: repositories are IMMUTABLE
   */
  readonly buildCacheTag?: string;

  /**
   * What happens to the repositories (and the KMS key) when the stack is deleted. `DESTROY`
   * also sets CloudFormation's EmptyOnDelete, so deletion succeeds even with images inside: for
   * throwaway demos only.
   * @default RemovalPolicy.RETAIN - images are data
   */
  readonly removalPolicy?: RemovalPolicy;

  /**
   * Other AWS accounts (12-digit ids) granted pull on every repository, for clusters in
   * other accounts.
   * @default - no repository policy: only this account's principals, through IAM
   */
  readonly pullAccountIds?: readonly string[];

  /**
   * ECR prefix of a pull-through cache rule for ECR Public, through which redis (and any other
   * public image) is pulled, so clusters never meet Docker Hub's rate limits.
   * @default '<repositoryPrefix>-ecr-public'
   */
  readonly pullThroughCachePrefix?: string;

  /**
   * Tag of the official redis image (`docker/library/redis` on ECR Public).
   * @default '7.4'
   */
  readonly redisImageTag?: string;
}

// Other stacks import the name from here; it lives in config.ts so the CLI needs no CDK.
export { repositoryName };

/**
 * The ECR side of DockerCoins: one repository per built service, lifecycle rules that bound
 * storage however many commits arrive, immutable commit and release tags, and a pull-through
 * cache for the official redis image.
 */
export class ImageRegistry extends Construct {
  /** Repositories by service name. */
  public readonly repositories: ReadonlyMap<string, ecr.Repository>;
  /** Pull-request repositories by service name; empty unless `pullRequestRepositories`. */
  public readonly pullRequestRepositories: ReadonlyMap<string, ecr.Repository>;
  /**
   * `<account>.dkr.ecr.<region>.<suffix>/<repositoryPrefix>`: the seed's `$REGISTRY`, so that
   * `$REGISTRY/<service>:$TAG` names our images.
   */
  public readonly registryUri: string;
  /** The redis image through the pull-through cache, tag included. */
  public readonly redisImageUri: string;
  /** The customer managed key, when `encryption` is `KMS`. */
  public readonly encryptionKey?: kms.Key;
  /** The repository prefix the pull-through cache answers to. */
  public readonly pullThroughCachePrefix: string;

  constructor(scope: Construct, id: string, props: ImageRegistryProps) {
    super(scope, id);
    const repositoryPrefix = props.repositoryPrefix ?? DEFAULTS.repositoryPrefix;
    const encryption = props.encryption ?? DEFAULTS.encryption;
    const untaggedImageExpiry =
      props.untaggedImageExpiry ?? Duration.days(DEFAULTS.untaggedImageExpiryDays);
    const commitImagesToKeep = props.commitImagesToKeep ?? DEFAULTS.commitImagesToKeep;
    const branchImagesToKeep = props.branchImagesToKeep ?? DEFAULTS.branchImagesToKeep;
    const pullRequestImagesToKeep =
      props.pullRequestImagesToKeep ?? DEFAULTS.pullRequestImagesToKeep;
    const releaseTagPattern = props.releaseTagPattern ?? DEFAULTS.releaseTagPattern;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const pullAccountIds = props.pullAccountIds ?? [];
    this.pullThroughCachePrefix =
      props.pullThroughCachePrefix ?? defaultPullThroughCachePrefix(repositoryPrefix);
    const redisImageTag = props.redisImageTag ?? DEFAULTS.redisImageTag;
    const branches = props.branches ?? DEFAULTS.buildBranches;
    if (branches.length > MAX_BRANCH_RULES) {
      throw new Error(
        `ImageRegistry \`branches\` has ${branches.length} branches; the lifecycle policy holds one rule per branch ` +
          `and ECR allows 50 rules: give at most ${MAX_BRANCH_RULES} build branches.`,
      );
    }
    validate(
      props.services,
      { commitImagesToKeep, branchImagesToKeep, pullRequestImagesToKeep },
      pullAccountIds,
    );

    if (encryption === 'KMS') {
      this.encryptionKey = new kms.Key(this, 'Key', {
        description: `Encrypts the ${repositoryPrefix}/* ECR repositories`,
        enableKeyRotation: true,
        removalPolicy,
      });
    }

    const repositories = new Map<string, ecr.Repository>();
    for (const service of props.services) {
      // The construct id is the service name: renaming it would replace a repository full of images.
      const repository = new ecr.Repository(this, service, {
        // A physical name, because pushes, manifests and people address repositories by name.
        repositoryName: repositoryName(repositoryPrefix, service),
        imageScanOnPush: true,
        // Immutable, except the tags that move by design: the deployer's marks and the cache.
        imageTagMutability: ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION,
        imageTagMutabilityExclusionFilters: [
          ...IMAGE_MARK_WILDCARDS,
          ...(props.buildCacheTag === undefined ? [] : [props.buildCacheTag]),
        ].map((wildcard) => ecr.ImageTagMutabilityExclusionFilter.wildcard(wildcard)),
        ...(this.encryptionKey
          ? { encryption: ecr.RepositoryEncryption.KMS, encryptionKey: this.encryptionKey }
          : { encryption: ecr.RepositoryEncryption.AES_256 }),
        removalPolicy,
        emptyOnDelete: removalPolicy === RemovalPolicy.DESTROY,
        lifecycleRules: lifecycleRules({
          releaseTagPattern,
          buildCacheTag: props.buildCacheTag,
          untaggedImageExpiry,
          commitImagesToKeep,
          branchImagesToKeep,
          pullRequestImagesToKeep,
          branches,
        }),
      });
      for (const account of pullAccountIds) {
        repository.grantPull(new iam.AccountPrincipal(account));
      }
      repositories.set(service, repository);
    }
    this.repositories = repositories;

    const pullRequestRepositories = new Map<string, ecr.Repository>();
    if (props.pullRequestRepositories === true) {
      for (const service of props.services) {
        // Apart from the service repositories (the construct id is a contract too), scanned,
        // immutable: a pull request's tag names one commit of it.
        const repository = new ecr.Repository(this, `PullRequests-${service}`, {
          repositoryName: pullRequestRepositoryName(repositoryPrefix, service),
          imageScanOnPush: true,
          imageTagMutability: ecr.TagMutability.IMMUTABLE,
          ...(this.encryptionKey
            ? { encryption: ecr.RepositoryEncryption.KMS, encryptionKey: this.encryptionKey }
            : { encryption: ecr.RepositoryEncryption.AES_256 }),
          removalPolicy,
          emptyOnDelete: removalPolicy === RemovalPolicy.DESTROY,
          lifecycleRules: [
            {
              rulePriority: 1,
              description: `Untagged images expire after ${untaggedImageExpiry.toDays()} days`,
              tagStatus: ecr.TagStatus.UNTAGGED,
              maxImageAge: untaggedImageExpiry,
            },
            {
              rulePriority: 2,
              description: `Pull-request images beyond the newest ${pullRequestImagesToKeep} expire`,
              tagStatus: ecr.TagStatus.TAGGED,
              tagPatternList: ['*'],
              maxImageCount: pullRequestImagesToKeep,
            },
          ],
        });
        pullRequestRepositories.set(service, repository);
      }
    }
    this.pullRequestRepositories = pullRequestRepositories;

    const stack = Stack.of(this);
    const registryHost = `${Aws.ACCOUNT_ID}.dkr.ecr.${Aws.REGION}.${Aws.URL_SUFFIX}`;
    this.registryUri = `${registryHost}/${repositoryPrefix}`;

    const pullThroughCache = new ecr.CfnPullThroughCacheRule(this, 'EcrPublicPullThroughCache', {
      ecrRepositoryPrefix: this.pullThroughCachePrefix,
      upstreamRegistry: 'ecr-public',
      upstreamRegistryUrl: 'public.ecr.aws',
    });
    // Repositories that the cache creates on first pull get bounded storage too.
    const cacheTemplate = new ecr.CfnRepositoryCreationTemplate(this, 'PullThroughCacheTemplate', {
      prefix: this.pullThroughCachePrefix,
      appliedFor: ['PULL_THROUGH_CACHE'],
      description: `Repositories created by the ${this.pullThroughCachePrefix} pull-through cache`,
      // Upstream tags move (redis:7.4 follows patch releases), so the cache must be able to retag.
      imageTagMutability: 'MUTABLE',
      encryptionConfiguration: { encryptionType: 'AES256' },
      lifecyclePolicy: stack.toJsonString({
        rules: [
          {
            rulePriority: 1,
            description: 'Superseded upstream images expire',
            selection: {
              tagStatus: 'untagged',
              countType: 'sinceImagePushed',
              countUnit: 'days',
              countNumber: untaggedImageExpiry.toDays(),
            },
            action: { type: 'expire' },
          },
        ],
      }),
    });
    cacheTemplate.addResourceDependency(pullThroughCache);
    this.redisImageUri = `${registryHost}/${this.pullThroughCachePrefix}/docker/library/redis:${redisImageTag}`;
  }

  /** The repository of one service; throws if the service is not one of ours. */
  public repositoryFor(service: string): ecr.Repository {
    const repository = this.repositories.get(service);
    if (repository === undefined) {
      throw new Error(
        `No ECR repository for service "${service}". Known services: ${[...this.repositories.keys()].join(', ')}.`,
      );
    }
    return repository;
  }

  /** Lets a principal pull every service's image (and get an ECR auth token). */
  public grantPullAll(grantee: iam.IGrantable): void {
    for (const repository of this.repositories.values()) repository.grantPull(grantee);
  }

  /** Lets a principal push (and pull) one service's image, and nothing else. */
  public grantPush(service: string, grantee: iam.IGrantable): iam.Grant {
    return this.repositoryFor(service).grantPullPush(grantee);
  }
}

/**
 * Rules in ECR's evaluation order (lowest priority number first). An image that matches the tag
 * selection of a rule cannot be expired by a later one, even when that rule keeps it: so the keep
 * rules come first (marks of what runs and what a rollback goes back to, releases, the cache), and
 * each kind of image that expires has its own count after them (pull requests, then branches, then
 * whatever tagged image is left: commit-only images).
 */
function lifecycleRules(options: {
  releaseTagPattern: string;
  buildCacheTag: string | undefined;
  untaggedImageExpiry: Duration;
  commitImagesToKeep: number;
  branchImagesToKeep: number;
  pullRequestImagesToKeep: number;
  branches: readonly string[];
}): ecr.LifecycleRule[] {
  const deployedMarks = `${IMAGE_MARK_PREFIX.deployed}*`;
  const previousMarks = `${IMAGE_MARK_PREFIX.previous}*`;
  const rules: ecr.LifecycleRule[] = [
    {
      rulePriority: 1,
      description: `Images running in an environment (${deployedMarks}, moved by the deployer) are kept`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [deployedMarks],
      maxImageCount: MAX_IMAGES_KEPT,
    },
    {
      rulePriority: 2,
      description: `Rollback targets (${previousMarks}, moved by the deployer) are kept`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [previousMarks],
      maxImageCount: MAX_IMAGES_KEPT,
    },
    {
      rulePriority: 3,
      description: `Release images (${options.releaseTagPattern}) are kept`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [options.releaseTagPattern],
      maxImageCount: MAX_IMAGES_KEPT,
    },
  ];
  if (options.buildCacheTag !== undefined) {
    rules.push({
      rulePriority: 4,
      description: `The build cache (${options.buildCacheTag}) is kept`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [options.buildCacheTag],
      maxImageCount: 1,
    });
  }
  rules.push(
    {
      rulePriority: 5,
      description: `Untagged images expire after ${options.untaggedImageExpiry.toDays()} days`,
      tagStatus: ecr.TagStatus.UNTAGGED,
      maxImageAge: options.untaggedImageExpiry,
    },
    {
      rulePriority: 6,
      description: `Pull-request images beyond the newest ${options.pullRequestImagesToKeep} expire`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [PULL_REQUEST_TAG_WILDCARD],
      maxImageCount: options.pullRequestImagesToKeep,
    },
    // One rule per branch, each on its own count (priorities need not be consecutive).
    ...[...new Set(options.branches)].map((branch, index) => ({
      rulePriority: 10 + index,
      description: `Images of branch ${branch} beyond the newest ${options.branchImagesToKeep} expire`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [branchTagWildcard(branch, options.releaseTagPattern)],
      maxImageCount: options.branchImagesToKeep,
    })),
    {
      rulePriority: 100,
      description: `Other tagged (commit) images beyond the newest ${options.commitImagesToKeep} expire`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: ['*'],
      maxImageCount: options.commitImagesToKeep,
    },
  );
  return rules;
}

function validate(
  services: readonly string[],
  counts: Record<'commitImagesToKeep' | 'branchImagesToKeep' | 'pullRequestImagesToKeep', number>,
  pullAccountIds: readonly string[],
): void {
  if (services.length === 0) {
    throw new Error('ImageRegistry needs at least one service in `services`.');
  }
  if (new Set(services).size !== services.length) {
    throw new Error(`ImageRegistry \`services\` has duplicates: ${services.join(', ')}.`);
  }
  for (const [name, count] of Object.entries(counts)) {
    if (
      !Token.isUnresolved(count) &&
      (!Number.isInteger(count) || count < 1 || count >= MAX_IMAGES_KEPT)
    ) {
      throw new Error(
        `ImageRegistry \`${name}\` must be a whole number from 1 to ${MAX_IMAGES_KEPT - 1}, got ${count}.`,
      );
    }
  }
  for (const account of pullAccountIds) {
    if (!Token.isUnresolved(account) && !/^\d{12}$/.test(account)) {
      throw new Error(
        `ImageRegistry \`pullAccountIds\` must hold 12-digit AWS account ids, got "${account}".`,
      );
    }
  }
}
