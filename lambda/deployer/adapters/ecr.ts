/**
 * ImageVerifier over ECR DescribeImages: what each tag points to now. One call for all tags.
 * DescribeImages has no per-image `failures` (that is BatchGetImage, which the deployer is not
 * allowed): when any tag asked is missing, the whole call fails with ImageNotFoundException, and
 * only then is each tag asked on its own to tell which one.
 */
import { DescribeImagesCommand, ECRClient, type ImageDetail } from '@aws-sdk/client-ecr';
import type { ImageVerifier } from '../../../core/types';
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
