/**
 * The two {@link ImageSource}s `ship` reads images through:
 *
 * - ECR, through the AWS SDK: DescribeRepositories and DescribeImages give push times, sizes and
 *   scan findings in one call per page, but no image labels (those need a layer download).
 * - Any OCI distribution registry (the in-cluster registry of the on-prem path), through
 *   core/registry.js's RegistryClient: the catalog, the tags lists, the digest of each tag,
 *   then each digest's manifest (sizes) and image config (revision label, `created`). A registry
 *   has no "tags of a digest" call, so grouping tags by image costs one HEAD per tag.
 *
 * Both turn every failure into a {@link RegistryAccessError} that names the registry, the value
 * and the fix; "not there" is `undefined`, never an error.
 */
import {
  DescribeImagesCommand,
  type DescribeImagesCommandOutput,
  DescribeRegistryCommand,
  DescribeRepositoriesCommand,
  type DescribeRepositoriesCommandOutput,
  ECRClient,
  type ImageDetail,
  type ImageIdentifier,
} from '@aws-sdk/client-ecr';
import {
  AuthenticationError,
  DIGEST,
  INDEX_TYPES,
  NotFoundError,
  REPOSITORY_NAME,
  REVISION_LABEL,
  RegistryClient,
  RegistryError,
  RegistryUnreachableError,
  TAG,
  dockerConfigPath,
  imageConfig,
  isLoopback,
  registryBaseUrl,
} from '../core/registry';
import { classifyAwsError } from '../core/retry';
import { PermanentError, TransientError, type ImageVerifier } from '../core/types';
import {
  RegistryAccessError,
  type ImageRecord,
  type ImageSource,
  type ScanSummary,
} from './images';

/** How a person passes registry credentials to `ship` (cli/context.ts reads them). */
const REGISTRY_PASSWORD_VARIABLE = 'SHIP_REGISTRY_PASSWORD';
const CREDENTIALS_HINT =
  'give a user with --registry-user <name> and its password in SHIP_REGISTRY_PASSWORD';

const COMMIT_ID = /^[0-9a-f]{40}$/i;

// ---- shared ----

/**
 * Newest first: pushedAt descending (unknown last), then digest ascending, so that equal push
 * times (ECR and `created` have one-second resolution) still give one order.
 */
export function compareNewestFirst(a: ImageRecord, b: ImageRecord): number {
  const at = a.pushedAt?.getTime() ?? -Infinity;
  const bt = b.pushedAt?.getTime() ?? -Infinity;
  if (at !== bt) return at < bt ? 1 : -1;
  return a.digest < b.digest ? -1 : a.digest > b.digest ? 1 : 0;
}

/** Tags are ASCII, so JavaScript's default string order is code point order. */
const sortedTags = (tags: Iterable<string>): string[] => [...new Set(tags)].sort();

// ---- ECR ----

export interface EcrImageSourceProps {
  /**
   * Builds the ECR client; called once, on first use. The CLI keeps the SDK's standard retries
   * (unlike the deployer Lambda, which retries itself): a person waits, and throttling passes.
   */
  readonly client: () => ECRClient;
  /**
   * The registry (AWS account id) whose repositories are read.
   * @default - the registry of the account whose credentials the client uses
   */
  readonly registryId?: string;
  /** The AWS region of the registry: in the registry host, the label and the ARNs of messages. */
  readonly region: string;
}

/** The registry host of an ECR registry: `<account>.dkr.ecr.<region>.amazonaws.com[.cn]`. */
export function ecrRegistryHost(registryId: string, region: string): string {
  return `${registryId}.dkr.ecr.${region}.${region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com'}`;
}

/**
 * ECR's scan result of an image; undefined when ECR says nothing about scanning it (scan on
 * push off, or never scanned). A summary without a status (not seen from ECR) keeps the counts
 * under the status `UNKNOWN` rather than dropping them.
 */
export function ecrScanSummary(detail: ImageDetail): ScanSummary | undefined {
  const status = detail.imageScanStatus?.status;
  const counts = detail.imageScanFindingsSummary?.findingSeverityCounts;
  if (status === undefined && counts === undefined) return undefined;
  const findings: Record<string, number> = {};
  for (const [severity, count] of Object.entries(counts ?? {})) {
    if (typeof count === 'number') findings[severity] = count;
  }
  return { status: status ?? 'UNKNOWN', findings };
}

/**
 * One DescribeImages image detail as an ImageRecord. ECR gives no labels without a layer
 * download, so revision is undefined; an index's imageSizeInBytes is not an image size, so it is
 * left out as the contract says.
 */
export function ecrImageRecord(detail: ImageDetail, host: string): ImageRecord {
  const { repositoryName: repository, imageDigest: digest } = detail;
  if (repository === undefined || digest === undefined) {
    throw new RegistryAccessError(
      `ECR DescribeImages answered an image without ${repository === undefined ? 'repositoryName' : 'imageDigest'} ` +
        `(${JSON.stringify(detail)}): this is not ECR's API as documented; check AWS_ENDPOINT_URL_ECR.`,
    );
  }
  const isIndex =
    detail.imageManifestMediaType !== undefined &&
    INDEX_TYPES.includes(detail.imageManifestMediaType);
  return {
    repository,
    repositoryUri: `${host}/${repository}`,
    digest,
    tags: sortedTags(detail.imageTags ?? []),
    pushedAt: detail.imagePushedAt,
    sizeBytes: isIndex ? undefined : detail.imageSizeInBytes,
    revision: undefined,
    scan: ecrScanSummary(detail),
  };
}

/** What an ECR call was about, for the message of its failure. */
export interface EcrCall {
  /** The API operation, e.g. `DescribeImages`. */
  readonly operation: string;
  readonly region: string;
  /** The account, when known. */
  readonly registryId: string | undefined;
  /** The repository, for calls on one. */
  readonly repository?: string;
  /** The tags or digests asked for, for the message. */
  readonly asked?: string;
}

const THROTTLED = /throttl|toomanyrequests|requestlimitexceeded|slowdown/i;
const NO_CREDENTIALS = new Set(['CredentialsProviderError', 'TokenProviderError']);
/** ECR's answers to an unknown access key or a wrong secret (a signature that does not match). */
const REFUSED_CREDENTIALS = new Set([
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
]);
const EXPIRED = new Set(['ExpiredToken', 'ExpiredTokenException', 'ExpiredTokenError']);

function describeSdkError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status = (error as { $metadata?: { httpStatusCode?: unknown } }).$metadata?.httpStatusCode;
  return `${error.name}${typeof status === 'number' ? ` HTTP ${status}` : ''}: ${error.message}`;
}

/**
 * A failed ECR call as a RegistryAccessError: what was asked of which registry and repository,
 * what ECR said, and the fix (for a refusal, the IAM action and resource needed).
 */
export function ecrAccessError(call: EcrCall, error: unknown): RegistryAccessError {
  const account = call.registryId ?? '<account>';
  const resource =
    call.repository === undefined
      ? call.operation === 'DescribeRepositories'
        ? `arn:aws:ecr:${call.region}:${account}:repository/*`
        : '*'
      : `arn:aws:ecr:${call.region}:${account}:repository/${call.repository}`;
  const what =
    `ECR ${call.operation}` +
    (call.repository === undefined ? '' : ` of ${call.repository}`) +
    (call.asked === undefined ? '' : ` (${call.asked})`) +
    ` in registry ${account} (${call.region})`;
  const said = describeSdkError(error);
  const name = error instanceof Error ? error.name : '';
  if (REFUSED_CREDENTIALS.has(name)) {
    // The registry's "wrong password": one message, whichever call and command met it.
    return new RegistryAccessError(
      `ECR (${call.region}) refused your AWS credentials (${name}): the access key is unknown or its secret ` +
        'is wrong. Check AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (aws sts get-caller-identity ' +
        'tells whether they work).',
      { cause: error },
    );
  }
  let fix: string;
  if (NO_CREDENTIALS.has(name)) {
    fix =
      'No AWS credentials were found: set AWS_PROFILE (and run aws sso login for SSO), or ' +
      'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY. Without AWS, read an OCI registry with --registry <url>.';
  } else if (EXPIRED.has(name)) {
    fix = 'Your AWS session has expired: log in again (aws sso login, or new credentials).';
  } else if (classifyAwsError(error) === 'forbidden') {
    fix = `Your IAM identity needs ecr:${call.operation} on ${resource}.`;
  } else if (THROTTLED.test(name) || /\bHTTP 429\b/.test(said)) {
    fix =
      'ECR throttled the call, still after the SDK retried it: wait a minute and run the command again.';
  } else if (classifyAwsError(error) === 'transient') {
    fix =
      `ECR (or the network to it) failed, still after the SDK retried: check the connection to ECR in ${call.region} ` +
      '(and AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_ECR if set), then run the command again.';
  } else {
    fix = 'ECR did not accept the request: its message says what to change.';
  }
  return new RegistryAccessError(`${what} failed: ${said}. ${fix}`, { cause: error });
}

const errorName = (error: unknown): unknown => (error as { name?: unknown } | null)?.name;

/**
 * Reads ECR through the SDK. `host()` is the host of the first repository's repositoryUri (what
 * ECR itself says image references start with); in a registry without repositories it is built
 * from `registryId`, else from DescribeRegistry's registryId (the caller's account), as
 * {@link ecrRegistryHost}. It is asked once and kept.
 */
export function createEcrImageSource(props: EcrImageSourceProps): ImageSource {
  const { region } = props;
  let ecr: ECRClient | undefined;
  /** The registry id: given, or learned from the first answer that carries one. */
  let registryId = props.registryId;
  /** The registry host, once an answer has told it. */
  let knownHost: string | undefined;

  const client = (): ECRClient => (ecr ??= props.client());
  const learn = (id: string | undefined): void => {
    registryId ??= id;
  };

  async function send<T>(call: Omit<EcrCall, 'region' | 'registryId'>, run: () => Promise<T>) {
    try {
      return await run();
    } catch (error) {
      throw ecrAccessError({ ...call, region, registryId }, error);
    }
  }

  async function describeRepositories(input: {
    maxResults: number;
    nextToken?: string;
  }): Promise<DescribeRepositoriesCommandOutput> {
    const answer = await send({ operation: 'DescribeRepositories' }, () =>
      client().send(new DescribeRepositoriesCommand({ registryId: props.registryId, ...input })),
    );
    const first = answer.repositories?.[0];
    learn(first?.registryId);
    const uri = first?.repositoryUri;
    if (uri !== undefined && uri.includes('/')) knownHost ??= uri.slice(0, uri.indexOf('/'));
    return answer;
  }

  async function host(): Promise<string> {
    if (knownHost !== undefined) return knownHost;
    await describeRepositories({ maxResults: 1 });
    if (knownHost !== undefined) return knownHost;
    if (registryId === undefined) {
      const registry = await send({ operation: 'DescribeRegistry' }, () =>
        client().send(new DescribeRegistryCommand({})),
      );
      learn(registry.registryId);
    }
    if (registryId === undefined) {
      throw new RegistryAccessError(
        `ECR DescribeRegistry in ${region} gave no registryId: pass the registry (account) id explicitly.`,
      );
    }
    knownHost = ecrRegistryHost(registryId, region);
    return knownHost;
  }

  /** DescribeImages of some images; undefined when the repository or an image is missing. */
  async function describeImages(
    repository: string,
    imageIds: ImageIdentifier[],
    asked: string,
  ): Promise<ImageDetail[] | undefined> {
    try {
      const answer = await client().send(
        new DescribeImagesCommand({
          registryId: props.registryId,
          repositoryName: repository,
          imageIds,
        }),
      );
      learn(answer.imageDetails?.[0]?.registryId);
      return answer.imageDetails ?? [];
    } catch (error) {
      const name = errorName(error);
      if (name === 'RepositoryNotFoundException' || name === 'ImageNotFoundException')
        return undefined;
      throw ecrAccessError(
        { operation: 'DescribeImages', region, registryId, repository, asked },
        error,
      );
    }
  }

  async function oneImage(
    repository: string,
    imageId: ImageIdentifier,
    asked: string,
  ): Promise<ImageRecord | undefined> {
    const details = await describeImages(repository, [imageId], asked);
    const found = details?.[0];
    if (found === undefined) return undefined;
    return ecrImageRecord(found, await host());
  }

  return {
    get label() {
      return `ECR ${registryId ?? 'of the current account'} (${region})`;
    },
    imageTime: 'pushed',

    host,

    async listRepositories() {
      const names: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await describeRepositories({
          maxResults: 1000,
          ...(nextToken === undefined ? {} : { nextToken }),
        });
        for (const repository of page.repositories ?? []) {
          if (repository.repositoryName !== undefined) names.push(repository.repositoryName);
        }
        nextToken = page.nextToken;
      } while (nextToken !== undefined);
      return names.sort();
    },

    async listImages(repository, onProgress) {
      const byDigest = new Map<string, ImageDetail>();
      let nextToken: string | undefined;
      let pages = 0;
      do {
        let page: DescribeImagesCommandOutput;
        try {
          page = await client().send(
            new DescribeImagesCommand({
              registryId: props.registryId,
              repositoryName: repository,
              filter: { tagStatus: 'TAGGED' },
              maxResults: 1000,
              ...(nextToken === undefined ? {} : { nextToken }),
            }),
          );
        } catch (error) {
          if (errorName(error) === 'RepositoryNotFoundException') return undefined;
          throw ecrAccessError(
            {
              operation: 'DescribeImages',
              region,
              registryId,
              repository,
              asked: 'tagged images',
            },
            error,
          );
        }
        pages += 1;
        nextToken = page.nextToken;
        onProgress?.(pages, pages + (nextToken === undefined ? 0 : 1));
        for (const detail of page.imageDetails ?? []) {
          learn(detail.registryId);
          // The TAGGED filter is ECR's; an untagged image that slips through is no tagged image.
          if (detail.imageDigest === undefined || (detail.imageTags ?? []).length === 0) continue;
          const seen = byDigest.get(detail.imageDigest);
          byDigest.set(
            detail.imageDigest,
            seen === undefined
              ? detail
              : { ...seen, imageTags: [...(seen.imageTags ?? []), ...(detail.imageTags ?? [])] },
          );
        }
      } while (nextToken !== undefined);
      if (byDigest.size === 0) return [];
      const registryHost = await host();
      return [...byDigest.values()]
        .map((detail) => ecrImageRecord(detail, registryHost))
        .sort(compareNewestFirst);
    },

    async imageByTag(repository, tag) {
      return oneImage(repository, { imageTag: tag }, `tag ${tag}`);
    },

    async imageByDigest(repository, digest) {
      return oneImage(repository, { imageDigest: digest }, digest);
    },
  };
}

// ---- OCI distribution registries ----

export interface OciImageSourceProps {
  /**
   * The registry: `http://host:port`, `https://host[:port]`, or a bare `host[:port]`, which is
   * reached over plain HTTP when the host is loopback or REGISTRY_INSECURE=true, else HTTPS.
   */
  readonly url: string;
  /**
   * Basic credentials for the registry's 401 challenge (Basic, or a Bearer token service).
   * @default - the credentials `docker login <host>` stored in the docker config, else none
   */
  readonly credentials?: { readonly username: string; readonly password: string };
  /** For DOCKER_CONFIG, HOME and REGISTRY_INSECURE. */
  readonly env: NodeJS.ProcessEnv;
  /**
   * Requests in flight at once while listing (one HEAD per tag, a manifest and a config per image).
   * @default 8
   */
  readonly concurrency?: number;
  /**
   * Entries asked per page of the catalog and the tags lists (registries may give fewer).
   * @default 1000
   */
  readonly pageSize?: number;
}

/** An {@link ImageSource} over an OCI registry, with what {@link ociImageVerifier} needs. */
export interface OciImageSource extends ImageSource {
  /** The registry.js client it reads through (one authentication for every call). */
  readonly client: RegistryClient;
  /** Requests in flight at once. */
  readonly concurrency: number;
}

/** Where an OCI registry is: its host (of image references) and the URL its API is under. */
export interface RegistryLocation {
  /** `host[:port]`, the first part of image references. */
  readonly host: string;
  /** `http://host[:port]` or `https://host[:port]`. */
  readonly baseUrl: string;
  /** Whether the scheme was given (else registry.js's rule chose it). */
  readonly explicitScheme: boolean;
}

/**
 * Reads the `url` of {@link OciImageSourceProps}. A path, query, fragment or user:password in it
 * is refused: repositories are named separately, credentials never go in a URL.
 */
export function parseRegistryUrl(url: string, env: NodeJS.ProcessEnv): RegistryLocation {
  const example =
    'e.g. http://127.0.0.1:30500, https://registry.example.com or registry.example.com:5000';
  const text = url.trim();
  if (text === '')
    throw new RegistryAccessError(`registry URL ${JSON.stringify(url)} has no host: ${example}.`);
  const schemeMatch = /^([A-Za-z][A-Za-z0-9+.-]*):\/\//.exec(text);
  if (schemeMatch !== null && !/^https?$/i.test(schemeMatch[1]!)) {
    throw new RegistryAccessError(
      `registry URL ${JSON.stringify(url)} has the scheme ${schemeMatch[1]}: give http://, https:// or no scheme, ${example}.`,
    );
  }
  let parsed: URL;
  try {
    parsed = new URL(schemeMatch === null ? `http://${text}` : text);
  } catch {
    throw new RegistryAccessError(
      `registry URL ${JSON.stringify(url)} is not a URL: give [http[s]://]host[:port], ${example}.`,
    );
  }
  if (parsed.hostname === '') {
    throw new RegistryAccessError(`registry URL ${JSON.stringify(url)} has no host: ${example}.`);
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw new RegistryAccessError(
      `registry URL ${JSON.stringify(url)} carries credentials: remove them from the URL and ${CREDENTIALS_HINT}.`,
    );
  }
  if (
    (parsed.pathname !== '/' && parsed.pathname !== '') ||
    parsed.search !== '' ||
    parsed.hash !== '' ||
    /[?#]$/.test(text)
  ) {
    throw new RegistryAccessError(
      `registry URL ${JSON.stringify(url)} has a path, query or fragment: give the registry alone ` +
        `(${parsed.host}); repositories are named by the app configuration (and --repository-prefix).`,
    );
  }
  const host = parsed.host;
  if (schemeMatch === null) {
    let baseUrl: string;
    try {
      baseUrl = registryBaseUrl(host, env);
    } catch (error) {
      throw new RegistryAccessError((error as Error).message, { cause: error });
    }
    return { host, baseUrl, explicitScheme: false };
  }
  return { host, baseUrl: `${parsed.protocol}//${host}`, explicitScheme: true };
}

/** The compressed size of an image manifest: config plus layers; undefined when a size is missing. */
export function manifestSize(manifest: {
  config?: { size?: number };
  layers?: readonly { size?: number }[];
}): number | undefined {
  const sizes = [manifest.config?.size, ...(manifest.layers ?? []).map((layer) => layer.size)];
  if (manifest.config === undefined || sizes.some((size) => typeof size !== 'number' || size < 0))
    return undefined;
  return (sizes as number[]).reduce((sum, size) => sum + size, 0);
}

/**
 * Runs `work` on each item, at most `limit` at once, keeping the order. After a failure no new
 * item starts; the first failure is thrown once those running have ended.
 */
async function mapLimit<T, R>(
  items: readonly T[],
  limit: number,
  work: (item: T) => Promise<R>,
): Promise<R[]> {
  const results: R[] = new Array<R>(items.length);
  let next = 0;
  let failed = false;
  const worker = async (): Promise<void> => {
    while (!failed && next < items.length) {
      const index = next++;
      try {
        results[index] = await work(items[index]!);
      } catch (error) {
        failed = true;
        throw error;
      }
    }
  };
  const workers = Array.from({ length: Math.min(limit, items.length) }, worker);
  const settled = await Promise.allSettled(workers);
  const rejected = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (rejected !== undefined) throw rejected.reason;
  return results;
}

/**
 * Reads an OCI distribution registry through registry.js's RegistryClient. Credentials are the
 * ones given, else those `docker login` stored; the registry's 401 challenge says how they are
 * sent (Basic or a Bearer token).
 */
export function createOciImageSource(props: OciImageSourceProps): OciImageSource {
  const location = parseRegistryUrl(props.url, props.env);
  const { host, baseUrl } = location;
  const concurrency = props.concurrency ?? 8;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(
      `createOciImageSource: concurrency is ${concurrency}; give a whole number of 1 or more.`,
    );
  }
  const pageSize = props.pageSize ?? 1000;
  if (!Number.isInteger(pageSize) || pageSize < 1) {
    throw new RangeError(
      `createOciImageSource: pageSize is ${pageSize}; give a whole number of 1 or more.`,
    );
  }
  const given =
    props.credentials === undefined
      ? undefined
      : { ...props.credentials, source: `the user given for ${host}` };
  const client = new RegistryClient(host, {
    env: props.env,
    baseUrl,
    ...(given === undefined ? {} : { credentials: given }),
  });

  /** A registry.js failure as a RegistryAccessError whose fix fits how `ship` was called. */
  function accessError(error: unknown, what: string): unknown {
    if (error instanceof RegistryUnreachableError) {
      const https = baseUrl.startsWith('https:');
      const tried = https ? 'HTTPS' : 'plain HTTP';
      const why = location.explicitScheme
        ? 'as the URL says'
        : https
          ? 'the rule for a host that is not loopback without REGISTRY_INSECURE=true'
          : isLoopback(host)
            ? 'the rule for a loopback host'
            : 'REGISTRY_INSECURE=true';
      const other = https ? `http://${host}` : `https://${host}`;
      return new RegistryAccessError(
        `registry ${host} is unreachable at ${baseUrl} while reading ${what}: ${error.reason}. ` +
          `${tried} was tried (${why}). Check that the registry runs and is reachable from here ` +
          `(a port-forward or NodePort for an in-cluster registry); if it speaks ${https ? 'plain HTTP' : 'HTTPS'}, give ${other}.`,
        { cause: error },
      );
    }
    if (error instanceof AuthenticationError) {
      // One message per cause, whichever command and request met it (what was being read does
      // not change the fix).
      let message: string;
      if (error.username === undefined) {
        message =
          `registry ${host} requires credentials and none were given (${dockerConfigPath(props.env)} ` +
          `has none for ${host}): ${CREDENTIALS_HINT}, or run docker login ${host}.`;
      } else if (given !== undefined) {
        message =
          `registry ${host} refused the password of user "${error.username}": check ${REGISTRY_PASSWORD_VARIABLE} ` +
          '(or give another user with --registry-user <name>).';
      } else {
        message =
          `registry ${host} refused the credentials of user "${error.username}" that docker login stored ` +
          `(${error.source}): run docker login ${host} again (or ${CREDENTIALS_HINT}).`;
      }
      return new RegistryAccessError(message, { cause: error });
    }
    if (error instanceof RegistryError) {
      return new RegistryAccessError(`registry ${host}: ${error.message}`, { cause: error });
    }
    return error;
  }

  async function guarded<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw accessError(error, what);
    }
  }

  function checkRepository(repository: string): void {
    if (!REPOSITORY_NAME.test(repository)) {
      throw new RegistryAccessError(
        `${JSON.stringify(repository)} is not a repository name: lowercase path components of [a-z0-9] separated by ".", "_", "__" or "-", joined by "/".`,
      );
    }
  }

  /** The tags list; undefined when the repository does not exist. */
  async function tagsOf(repository: string): Promise<string[] | undefined> {
    try {
      return await client.listTags(repository, { pageSize });
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /** The digest of each tag (undefined for a tag gone meanwhile), `concurrency` at a time. */
  function digestsOf(
    repository: string,
    tags: readonly string[],
    tick: () => void = () => undefined,
  ): Promise<(string | undefined)[]> {
    return mapLimit(tags, concurrency, async (tag) => {
      const digest = await client.tagDigest(repository, tag);
      tick();
      return digest;
    });
  }

  /**
   * The record of one digest: its manifest (size) and image config (revision, created); for an
   * index, the config of its first image (the one pickFromIndex chooses without a platform).
   * undefined when the manifest is gone (deleted since its tags were read).
   */
  async function describe(
    repository: string,
    digest: string,
    tags: readonly string[],
    tick: () => void = () => undefined,
  ): Promise<ImageRecord | undefined> {
    const what = `${host}/${repository}@${digest}`;
    let manifest: Awaited<ReturnType<RegistryClient['getManifest']>>;
    try {
      manifest = await client.getManifest(repository, digest);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
    tick();
    const isIndex = INDEX_TYPES.includes(manifest.mediaType);
    const config = await imageConfig(client, repository, manifest, { what });
    tick();
    const revision = config.config?.Labels?.[REVISION_LABEL];
    const created = config.created === undefined ? Number.NaN : Date.parse(config.created);
    return {
      repository,
      repositoryUri: `${host}/${repository}`,
      digest,
      tags: sortedTags(tags),
      pushedAt: Number.isNaN(created) ? undefined : new Date(created),
      sizeBytes: isIndex ? undefined : manifestSize(manifest.json),
      revision:
        revision !== undefined && COMMIT_ID.test(revision) ? revision.toLowerCase() : undefined,
      scan: undefined,
    };
  }

  /** The image `digest` with every tag naming it; undefined when the repository is gone. */
  async function withAllTags(
    repository: string,
    digest: string,
    known: string | undefined,
  ): Promise<ImageRecord | undefined> {
    const tags = await tagsOf(repository);
    if (tags === undefined) return undefined;
    const others = tags.filter((tag) => tag !== known);
    const digests = await digestsOf(repository, others);
    const naming = others.filter((_, index) => digests[index] === digest);
    return describe(repository, digest, known === undefined ? naming : [known, ...naming]);
  }

  return {
    label: `registry ${host}`,
    imageTime: 'created',
    client,
    concurrency,

    host: () => Promise.resolve(host),

    async listRepositories() {
      return guarded('the catalog (/v2/_catalog)', async () =>
        (await client.listRepositories({ pageSize })).sort(),
      );
    },

    async listImages(repository, onProgress) {
      checkRepository(repository);
      return guarded(`the images of ${repository}`, async () => {
        const tags = await tagsOf(repository);
        if (tags === undefined) return undefined;
        // Requests: the tags list, a HEAD per tag, then a manifest and a config per digest.
        let done = 1;
        let total = 1 + tags.length;
        const tick = (): void => {
          done += 1;
          onProgress?.(done, total);
        };
        onProgress?.(done, total);
        const digests = await digestsOf(repository, tags, tick);
        const byDigest = new Map<string, string[]>();
        tags.forEach((tag, index) => {
          const digest = digests[index];
          if (digest === undefined) return;
          byDigest.set(digest, [...(byDigest.get(digest) ?? []), tag]);
        });
        total += 2 * byDigest.size;
        onProgress?.(done, total);
        const records = await mapLimit([...byDigest], concurrency, ([digest, named]) =>
          describe(repository, digest, named, tick),
        );
        return records
          .filter((record): record is ImageRecord => record !== undefined)
          .sort(compareNewestFirst);
      });
    },

    async imageByTag(repository, tag) {
      checkRepository(repository);
      if (!TAG.test(tag)) {
        throw new RegistryAccessError(
          `${JSON.stringify(tag)} is not a tag: 1 to 128 of [A-Za-z0-9_.-], not starting with "." or "-".`,
        );
      }
      return guarded(`${repository}:${tag}`, async () => {
        const digest = await client.tagDigest(repository, tag);
        if (digest === undefined) return undefined;
        return withAllTags(repository, digest, tag);
      });
    },

    async imageByDigest(repository, digest) {
      checkRepository(repository);
      if (!DIGEST.test(digest)) {
        throw new RegistryAccessError(
          `${JSON.stringify(digest)} is not a manifest digest: sha256: and 64 lowercase hex digits.`,
        );
      }
      return guarded(`${repository}@${digest}`, async () => {
        if ((await client.tagDigest(repository, digest)) === undefined) return undefined;
        return withAllTags(repository, digest, undefined);
      });
    },
  };
}

/**
 * The deployer's {@link ImageVerifier} over an OCI registry (the on-prem path): one HEAD per tag,
 * `concurrency` at a time. `registryId` is ECR's and is ignored: the registry is the source's.
 * Failures come as the deployer's kinds: refused credentials and 403 as PermanentError
 * 'forbidden', no answer, 429 and 5xx as TransientError (apply retries them), the rest as Error.
 */
export function ociImageVerifier(source: OciImageSource): ImageVerifier {
  const { client, concurrency } = source;
  return {
    async digestsOf(image, tags) {
      try {
        return await mapLimit(tags, concurrency, (tag) => client.tagDigest(image.repository, tag));
      } catch (error) {
        if (!(error instanceof RegistryError)) throw error;
        const what = `registry ${client.host}, ${image.repository} (tags ${tags.join(', ')}): ${error.message}`;
        const status = error.status ?? 0;
        if (error instanceof AuthenticationError || status === 403)
          throw new PermanentError('forbidden', what);
        if (error instanceof RegistryUnreachableError || status === 429 || status >= 500)
          throw new TransientError(what, { cause: error });
        throw new Error(what, { cause: error });
      }
    },
  };
}
