/**
 * ImageVerifier over ECR DescribeImages: what each tag points to now. One call for all tags.
 * DescribeImages has no per-image `failures` (BatchGetImage has, but it returns whole manifests):
 * when any tag asked is missing, the whole call fails with ImageNotFoundException, and only then
 * is each tag asked on its own to tell which one.
 *
 * Also the marks of what runs (markDeployedImages): BatchGetImage and PutImage of a moving tag.
 */
import {
  BatchGetImageCommand,
  type BatchGetImageCommandOutput,
  DescribeImagesCommand,
  ECRClient,
  PutImageCommand,
  type ImageDetail,
} from '@aws-sdk/client-ecr';
import { imageMarkTag, type ImageMarkKind } from '../../../lib/image-marks';
import type { Retry } from '../../../core/apply';
import type { DeployOutcome, ImageVerifier } from '../../../core/types';
import { AWS_CLIENT_DEFAULTS, awsFailure } from '../../../core/retry';

/** The ECR client the deployer uses (SDK retries off: retry.ts retries). */
export function newEcrClient(region: string): ECRClient {
  return new ECRClient({ region, ...AWS_CLIENT_DEFAULTS });
}

/** Builds the verifier; `client` is called once, on first use. */
export function createImageVerifier(client: () => ECRClient): ImageVerifier {
  let ecr: ECRClient | undefined;

  async function describe(
    image: { registryId: string; repository: string },
    tags: readonly string[],
  ): Promise<ImageDetail[] | 'repository-missing' | 'image-missing'> {
    ecr ??= client();
    try {
      const answer = await ecr.send(
        new DescribeImagesCommand({
          registryId: image.registryId,
          repositoryName: image.repository,
          imageIds: tags.map((imageTag) => ({ imageTag })),
        }),
      );
      return answer.imageDetails ?? [];
    } catch (error) {
      const name = (error as { name?: unknown }).name;
      if (name === 'RepositoryNotFoundException') return 'repository-missing';
      if (name === 'ImageNotFoundException') return 'image-missing';
      throw awsFailure(
        `ECR DescribeImages of ${image.registryId}/${image.repository} (tags ${tags.join(', ')})`,
        error,
        `The deployer's role needs ecr:DescribeImages on arn:aws:ecr:<region>:${image.registryId}:repository/${image.repository}.`,
      );
    }
  }

  const digestOf = (details: readonly ImageDetail[], tag: string): string | undefined =>
    details.find((detail) => detail.imageTags?.includes(tag) === true)?.imageDigest;

  return {
    async digestsOf(image, tags) {
      if (tags.length === 0) return [];
      const all = await describe(image, tags);
      if (all === 'repository-missing') return tags.map(() => undefined);
      if (all !== 'image-missing') return tags.map((tag) => digestOf(all, tag));
      if (tags.length === 1) return [undefined];
      return Promise.all(
        tags.map(async (tag) => {
          const one = await describe(image, [tag]);
          return typeof one === 'string' ? undefined : digestOf(one, tag);
        }),
      );
    },
  };
}

// ---- marks of what runs and what a rollback goes back to (lib/image-marks.ts) ----

/** One moving tag to put on one image: `deployed.prod.rng.rng` → the digest that runs there. */
export interface ImageMark {
  readonly registryId: string;
  readonly repository: string;
  readonly kind: ImageMarkKind;
  readonly environment: string;
  readonly tag: string;
  readonly digest: string;
}

/** What marking did: every mark is either put (or already there) or failed, with why. */
export interface ImageMarkReport {
  readonly marked: readonly ImageMark[];
  readonly failed: readonly { readonly mark: ImageMark; readonly reason: string }[];
}

/** Where marking failures are told (the deployer's Powertools logger fits). */
export interface ImageMarkLogger {
  warn(message: string, fields: Record<string, unknown>): void;
}

/** Manifest types BatchGetImage may answer with: every one our builds and ECR produce. */
const MANIFEST_MEDIA_TYPES = [
  'application/vnd.docker.distribution.manifest.v2+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.oci.image.index.v1+json',
];

/**
 * The marks a deploy outcome calls for, in the order to put them. For each Deployment that now
 * runs the build's image (deployed, or skipped as already running): `deployed.<env>.<deployment>.
 * <container>` on the digest it runs; and, when it was deployed over another image of the same
 * repository with a known digest, first `previous.…` on that image (what `ship rollback` goes back
 * to). Nothing for a skipped build, a failed target, or a paused or older-build target (what runs
 * there did not change, and its marks stay where they are).
 */
export function imageMarksOf(outcome: DeployOutcome): ImageMark[] {
  if (outcome.kind !== 'applied') return [];
  const { build } = outcome;
  const marks: ImageMark[] = [];
  const mark = (
    kind: ImageMarkKind,
    target: (typeof outcome.targets)[number],
    digest: string,
  ): ImageMark => ({
    registryId: build.registryId,
    repository: build.repository,
    kind,
    environment: target.ref.environment.name,
    tag: imageMarkTag(kind, target.ref.environment.name, target.ref.target),
    digest,
  });
  for (const target of outcome.targets) {
    const runsBuild =
      target.status === 'deployed' ||
      (target.status === 'skipped' && target.reason === 'already-running');
    if (!runsBuild) continue;
    const before = target.from;
    if (
      target.status === 'deployed' &&
      before?.digest !== undefined &&
      before.digest !== target.to.digest &&
      sameRepository(before.image, build.repositoryUri)
    ) {
      marks.push(mark('previous', target, before.digest));
    }
    marks.push(mark('deployed', target, target.to.digest));
  }
  return marks;
}

/** Whether an image reference (`<repo>:<tag>@<digest>`, `<repo>@<digest>`) names this repository. */
function sameRepository(image: string, repositoryUri: string): boolean {
  return image.startsWith(`${repositoryUri}:`) || image.startsWith(`${repositoryUri}@`);
}

/**
 * Puts the marks of a deploy outcome into ECR, so that the lifecycle policy keeps what runs and
 * what a rollback goes back to (lib/constructs/image-registry.ts). Call it after the Deployments
 * were patched, with the outcome `applyBuild` returned:
 *
 *     const report = await markDeployedImages(() => ecrClient, outcome, { retry, logger });
 *
 * It never throws and never fails a deploy: each mark that cannot be put is logged (warn, with
 * the tag, digest, repository and reason) and returned in `failed`, for the caller to count
 * (`telemetry.recordImageMarks(report)`). Each mark is BatchGetImage (the manifest, by digest)
 * then PutImage of the same bytes under the mark's tag; an answer that the tag already names the
 * image counts as marked. Needs ecr:BatchGetImage and ecr:PutImage on the service repositories,
 * and the marks excluded from tag immutability (the registry construct does both).
 */
export async function markDeployedImages(
  client: () => ECRClient,
  outcome: DeployOutcome,
  options: { readonly retry?: Retry; readonly logger?: ImageMarkLogger } = {},
): Promise<ImageMarkReport> {
  const marks = imageMarksOf(outcome);
  const marked: ImageMark[] = [];
  const failed: { mark: ImageMark; reason: string }[] = [];
  if (marks.length === 0) return { marked, failed };
  const retry: Retry = options.retry ?? ((operation) => operation());
  let ecr: ECRClient;
  try {
    ecr = client();
  } catch (error) {
    for (const mark of marks) failed.push({ mark, reason: `no ECR client: ${String(error)}` });
    report(options.logger, failed);
    return { marked, failed };
  }
  for (const mark of marks) {
    try {
      await retry(() => putMark(ecr, mark));
      marked.push(mark);
    } catch (error) {
      failed.push({ mark, reason: error instanceof Error ? error.message : String(error) });
    }
  }
  report(options.logger, failed);
  return { marked, failed };
}

function report(
  logger: ImageMarkLogger | undefined,
  failed: readonly { mark: ImageMark; reason: string }[],
): void {
  for (const { mark, reason } of failed) {
    logger?.warn('image mark not put: the lifecycle policy may expire this image', {
      tag: mark.tag,
      digest: mark.digest,
      repository: `${mark.registryId}/${mark.repository}`,
      environment: mark.environment,
      reason,
    });
  }
}

async function putMark(ecr: ECRClient, mark: ImageMark): Promise<void> {
  const where = `${mark.registryId}/${mark.repository}`;
  const arn = `arn:aws:ecr:<region>:${mark.registryId}:repository/${mark.repository}`;
  let answer: BatchGetImageCommandOutput;
  try {
    answer = await ecr.send(
      new BatchGetImageCommand({
        registryId: mark.registryId,
        repositoryName: mark.repository,
        imageIds: [{ imageDigest: mark.digest }],
        acceptedMediaTypes: MANIFEST_MEDIA_TYPES,
      }),
    );
  } catch (error) {
    throw awsFailure(
      `ECR BatchGetImage of ${where}@${mark.digest}`,
      error,
      `The deployer's role needs ecr:BatchGetImage on ${arn}.`,
    );
  }
  const [image] = answer.images ?? [];
  const manifest = image?.imageManifest;
  if (manifest === undefined) {
    // BatchGetImage reports a missing image in `failures`, not as an error.
    const failure = answer.failures?.[0];
    throw new Error(
      `ECR has no image ${mark.digest} in ${where}` +
        (failure === undefined ? '' : ` (${failure.failureCode}: ${failure.failureReason})`),
    );
  }
  try {
    await ecr.send(
      new PutImageCommand({
        registryId: mark.registryId,
        repositoryName: mark.repository,
        imageManifest: manifest,
        imageManifestMediaType: image?.imageManifestMediaType,
        imageDigest: mark.digest,
        imageTag: mark.tag,
      }),
    );
  } catch (error) {
    const name = (error as { name?: unknown }).name;
    // The tag already names this image: nothing to move.
    if (name === 'ImageAlreadyExistsException') return;
    if (name === 'ImageTagAlreadyExistsException') {
      throw new Error(
        `ECR refused to move ${mark.tag} in ${where}: the repository's tags are immutable without ` +
          `the exclusions deployed.* and previous.*. Deploy the Registry stack of this version.`,
      );
    }
    throw awsFailure(
      `ECR PutImage of ${where}:${mark.tag}`,
      error,
      `The deployer's role needs ecr:PutImage on ${arn}.`,
    );
  }
}
