/**
 * `ship images [service]`: per service, its images (one row per digest) with every tag naming
 * it, the commit, push time, size and scan findings: which tag means which commit.
 */
import type { ServiceSettings } from '../../lib/deployer-contract';
import { buildFacts, orderTags } from '../builds';
import type { ShipContext } from '../context';
import type { ImageRecord } from '../images';
import { EXIT, formatJson } from '../output';
import { formatAge, formatBytes, formatTable, shortDigest } from '../table';

const SEVERITIES = ['CRITICAL', 'HIGH', 'MEDIUM', 'LOW', 'INFORMATIONAL', 'UNDEFINED'];

export async function imagesCommand(
  ctx: ShipContext,
  serviceName: string | undefined,
): Promise<number> {
  const settings = ctx.settings();
  const services =
    serviceName === undefined ? settings.services : [ctx.service(serviceName, 'images')];
  const source = ctx.images();
  const pattern = settings.releaseTagPattern;

  // A registry's catalog says at once which repositories exist (ECR: DescribeRepositories).
  ctx.progress.update(`listing the repositories of ${source.label}…`);
  const catalog = await source.listRepositories();
  const repositories = new Set(catalog);
  const results: {
    service: ServiceSettings;
    repository: string;
    images: ImageRecord[] | undefined;
  }[] = [];
  for (const service of services) {
    const repository = ctx.repositoryOf(service);
    if (!repositories.has(repository)) {
      results.push({ service, repository, images: undefined });
      continue;
    }
    ctx.progress.update(`${repository}: listing images…`);
    const images = await source.listImages(repository, (done, total) =>
      ctx.progress.update(`${repository}: ${done}/${total} requests`),
    );
    results.push({ service, repository, images });
  }
  ctx.progress.done();

  // A repository that is not there is no success: said on stderr, exit status 1.
  const missing = results.filter((r) => r.images === undefined);
  for (const { service } of missing) {
    ctx.io.stderr.write(`ship images: ${await ctx.missingRepository(service, catalog)}\n`);
  }
  const status = missing.length === 0 ? EXIT.ok : EXIT.failure;

  if (ctx.options.json) {
    ctx.io.stdout.write(
      formatJson({
        registry: source.label,
        services: results.map(({ service, repository, images }) => ({
          service: service.service,
          repository,
          exists: images !== undefined,
          images: (images ?? []).map((image) => {
            const facts = buildFacts(image, pattern);
            return {
              digest: image.digest,
              tags: orderTags(image.tags, pattern),
              commit: facts.commit ?? null,
              buildNumber: facts.buildNumber ?? null,
              pushedAt:
                source.imageTime === 'pushed' ? (image.pushedAt?.toISOString() ?? null) : null,
              createdAt:
                source.imageTime === 'created' ? (image.pushedAt?.toISOString() ?? null) : null,
              sizeBytes: image.sizeBytes ?? null,
              scan: image.scan ?? null,
            };
          }),
        })),
      }),
    );
    return status;
  }

  const now = ctx.deps.now();
  let first = true;
  for (const { service, repository, images } of results) {
    if (!first) ctx.io.stdout.write('\n');
    first = false;
    if (images === undefined) {
      ctx.io.stdout.write(`${service.service}: no repository ${repository} in ${source.label}\n`);
      continue;
    }
    ctx.io.stdout.write(
      `${service.service}: ${images.length} image${images.length === 1 ? '' : 's'} in ${images[0]?.repositoryUri ?? repository}\n`,
    );
    ctx.io.stdout.write(
      formatTable(
        [
          { header: 'DIGEST' },
          { header: 'TAGS' },
          { header: 'COMMIT' },
          { header: 'BUILD', align: 'right' },
          // ECR's push time; an OCI registry keeps none, so there the image config's `created`.
          { header: source.imageTime === 'pushed' ? 'PUSHED' : 'CREATED', align: 'right' },
          { header: 'SIZE', align: 'right' },
          { header: 'SCAN' },
        ],
        images.map((image) => {
          const facts = buildFacts(image, pattern);
          return [
            shortDigest(image.digest),
            orderTags(image.tags, pattern).join(', '),
            facts.commit?.slice(0, 12) ?? '-',
            facts.buildNumber === undefined ? '-' : `#${facts.buildNumber}`,
            image.pushedAt === undefined ? '-' : formatAge(image.pushedAt, now),
            image.sizeBytes === undefined ? '-' : formatBytes(image.sizeBytes),
            scanText(image),
          ];
        }),
      ),
    );
  }
  return status;
}

/** `2 high, 5 medium`, `none`, `in progress`, or `-` when the registry does not scan. */
export function scanText(image: ImageRecord): string {
  const scan = image.scan;
  if (scan === undefined) return '-';
  const counts = SEVERITIES.filter((s) => (scan.findings[s] ?? 0) > 0).map(
    (s) => `${scan.findings[s]} ${s.toLowerCase()}`,
  );
  if (scan.status === 'COMPLETE' || scan.status === 'ACTIVE') {
    return counts.length === 0 ? 'no findings' : counts.join(', ');
  }
  return scan.status.toLowerCase().replace(/_/g, ' ');
}
