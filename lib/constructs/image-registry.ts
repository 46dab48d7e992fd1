import { Aws, Duration, RemovalPolicy, Stack, Token } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import {
  DEFAULTS,
  defaultPullThroughCachePrefix,
  MAX_IMAGES_KEPT,
  RegistryEncryption,
  repositoryName,
} from '../config';

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
   * Tagged images beyond the newest N expire, unless a release tag or the build-cache tag shields
   * them.
   * @default 50
   */
  readonly commitImagesToKeep?: number;

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
    const releaseTagPattern = props.releaseTagPattern ?? DEFAULTS.releaseTagPattern;
    const removalPolicy = props.removalPolicy ?? RemovalPolicy.RETAIN;
    const pullAccountIds = props.pullAccountIds ?? [];
    this.pullThroughCachePrefix =
      props.pullThroughCachePrefix ?? defaultPullThroughCachePrefix(repositoryPrefix);
    const redisImageTag = props.redisImageTag ?? DEFAULTS.redisImageTag;
    validate(props.services, commitImagesToKeep, pullAccountIds);

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
        ...(props.buildCacheTag === undefined
          ? { imageTagMutability: ecr.TagMutability.IMMUTABLE }
          : {
              imageTagMutability: ecr.TagMutability.IMMUTABLE_WITH_EXCLUSION,
              imageTagMutabilityExclusionFilters: [
                ecr.ImageTagMutabilityExclusionFilter.wildcard(props.buildCacheTag),
              ],
            }),
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
        }),
      });
      for (const account of pullAccountIds) {
        repository.grantPull(new iam.AccountPrincipal(account));
      }
      repositories.set(service, repository);
    }
    this.repositories = repositories;

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
 * Rules in ECR's evaluation order. An image that matches the tag selection of an earlier rule
 * cannot be expired by a later one, so the first two rules shield releases and the cache.
 */
function lifecycleRules(options: {
  releaseTagPattern: string;
  buildCacheTag: string | undefined;
  untaggedImageExpiry: Duration;
  commitImagesToKeep: number;
}): ecr.LifecycleRule[] {
  const rules: ecr.LifecycleRule[] = [
    {
      rulePriority: 1,
      description: `Release images (${options.releaseTagPattern}) are kept`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [options.releaseTagPattern],
      maxImageCount: MAX_IMAGES_KEPT,
    },
  ];
  if (options.buildCacheTag !== undefined) {
    rules.push({
      rulePriority: 2,
      description: `The build cache (${options.buildCacheTag}) is kept`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: [options.buildCacheTag],
      maxImageCount: 1,
    });
  }
  rules.push(
    {
      rulePriority: 3,
      description: `Untagged images expire after ${options.untaggedImageExpiry.toDays()} days`,
      tagStatus: ecr.TagStatus.UNTAGGED,
      maxImageAge: options.untaggedImageExpiry,
    },
    {
      rulePriority: 4,
      description: `Commit images beyond the newest ${options.commitImagesToKeep} expire`,
      tagStatus: ecr.TagStatus.TAGGED,
      tagPatternList: ['*'],
      maxImageCount: options.commitImagesToKeep,
    },
  );
  return rules;
}

function validate(
  services: readonly string[],
  commitImagesToKeep: number,
  pullAccountIds: readonly string[],
): void {
  if (services.length === 0) {
    throw new Error('ImageRegistry needs at least one service in `services`.');
  }
  if (new Set(services).size !== services.length) {
    throw new Error(`ImageRegistry \`services\` has duplicates: ${services.join(', ')}.`);
  }
  if (
    !Token.isUnresolved(commitImagesToKeep) &&
    (!Number.isInteger(commitImagesToKeep) ||
      commitImagesToKeep < 1 ||
      commitImagesToKeep >= MAX_IMAGES_KEPT)
  ) {
    throw new Error(
      `ImageRegistry \`commitImagesToKeep\` must be a whole number from 1 to ${MAX_IMAGES_KEPT - 1}, got ${commitImagesToKeep}.`,
    );
  }
  for (const account of pullAccountIds) {
    if (!Token.isUnresolved(account) && !/^\d{12}$/.test(account)) {
      throw new Error(
        `ImageRegistry \`pullAccountIds\` must hold 12-digit AWS account ids, got "${account}".`,
      );
    }
  }
}
