/**
 * What `ship` reads from an image registry, whichever it is: ECR through the AWS SDK (which alone
 * knows push times and scan findings) or any OCI distribution registry through its HTTP API
 * (catalog, tags lists, manifests and image configs). Commands speak only these types.
 */

/** ECR's scan-on-push result for one image. */
export interface ScanSummary {
  /** ECR's imageScanStatus.status: `COMPLETE`, `IN_PROGRESS`, `FAILED`, `UNSUPPORTED_IMAGE`, … */
  readonly status: string;
  /** Findings per severity (`CRITICAL`, `HIGH`, `MEDIUM`, `LOW`, `INFORMATIONAL`, `UNDEFINED`). */
  readonly findings: Readonly<Record<string, number>>;
}

/** One image of a repository: one manifest digest, with every tag that names it. */
export interface ImageRecord {
  /** The repository name, e.g. `dockercoins/hasher` (ECR) or `hasher` (in-cluster registry). */
  readonly repository: string;
  /** `<registry host>/<repository>`: what an image reference starts with. */
  readonly repositoryUri: string;
  /** The manifest digest, `sha256:…`. */
  readonly digest: string;
  /** Every tag that names this digest, sorted by code point (commands order them for people). */
  readonly tags: readonly string[];
  /** ECR: imagePushedAt. OCI: the image config's `created`. undefined when unknown. */
  readonly pushedAt: Date | undefined;
  /** Compressed size: config plus layers (ECR: imageSizeInBytes). undefined for an index. */
  readonly sizeBytes: number | undefined;
  /** The `org.opencontainers.image.revision` label (the 40-hex commit) when the registry gives it. */
  readonly revision: string | undefined;
  /** ECR only. */
  readonly scan: ScanSummary | undefined;
}

/** One registry, as `ship` reads it. Every method throws {@link RegistryAccessError} on failure. */
export interface ImageSource {
  /** For messages and table titles: `ECR 123456789012 (eu-west-1)`, `registry 127.0.0.1:30500`. */
  readonly label: string;
  /**
   * What {@link ImageRecord.pushedAt} is: ECR's push time (`pushed`), or the image config's
   * `created`, when the image was built (`created`): an OCI registry keeps no push time.
   */
  readonly imageTime: 'pushed' | 'created';
  /** The registry host of image references, `<account>.dkr.ecr.<region>.amazonaws.com` or `127.0.0.1:30500`. */
  host(): Promise<string>;
  /** Every repository name, sorted (OCI: `/v2/_catalog`, every page; ECR: DescribeRepositories). */
  listRepositories(): Promise<string[]>;
  /**
   * Every tagged image of a repository, one record per digest, newest first (pushedAt, then
   * digest); undefined when the repository does not exist. `onProgress` is told how many of the
   * requests a slow listing needs are done.
   */
  listImages(
    repository: string,
    onProgress?: (done: number, total: number) => void,
  ): Promise<ImageRecord[] | undefined>;
  /** The image a tag names now, with all its tags; undefined when the tag or repository is missing. */
  imageByTag(repository: string, tag: string): Promise<ImageRecord | undefined>;
  /** The image with this manifest digest, with all its tags; undefined when it is not there. */
  imageByDigest(repository: string, digest: string): Promise<ImageRecord | undefined>;
}

/** A registry could not be read: the message names the registry, the value and the fix. */
export class RegistryAccessError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RegistryAccessError';
  }
}
