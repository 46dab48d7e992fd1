/**
 * `ship history <service>`: the rollout history of the service's Deployments, newest first, from
 * their ReplicaSets (what `kubectl rollout history` reads), with the commit and build our
 * annotations recorded for each revision.
 */
import type { ShipContext } from '../context';
import { rolloutHistory, type Revision } from '../history';
import { EXIT, ShipError, formatJson } from '../output';
import { formatTable, shortDigest } from '../table';

export async function historyCommand(
  ctx: ShipContext,
  serviceName: string | undefined,
): Promise<number> {
  const service = ctx.service(serviceName, 'history');
  const environments = ctx.environments('all', 'history');
  const sections: { title: string; key: Record<string, string>; revisions: Revision[] }[] = [];
  for (const environment of environments) {
    const client = await ctx.retry(() => ctx.clusters().connect(environment));
    for (const target of service.targets) {
      const where = `${environment.name}: Deployment ${environment.namespace}/${target.deployment}`;
      ctx.progress.update(`${where}: reading ReplicaSets…`);
      const live = await ctx.retry(() =>
        client.getDeployment(environment.namespace, target.deployment),
      );
      if (live === undefined) throw new ShipError(`${where} does not exist.`);
      const matchLabels = (
        live.spec?.selector as { matchLabels?: Record<string, string> } | undefined
      )?.matchLabels;
      if (matchLabels === undefined || Object.keys(matchLabels).length === 0) {
        throw new ShipError(
          `${where} has no spec.selector.matchLabels; its ReplicaSets cannot be listed.`,
        );
      }
      const selector = Object.entries(matchLabels)
        .map(([k, v]) => `${k}=${v}`)
        .join(',');
      const replicaSets = await ctx.retry(() =>
        client.listReplicaSets(environment.namespace, selector),
      );
      sections.push({
        title: `${where} (container ${target.container})`,
        key: {
          environment: environment.name,
          namespace: environment.namespace,
          deployment: target.deployment,
          container: target.container,
        },
        revisions: rolloutHistory(live, replicaSets, target.container),
      });
    }
  }
  ctx.progress.done();

  if (ctx.options.json) {
    ctx.io.stdout.write(
      formatJson(
        sections.map(({ key, revisions }) => ({ ...key, service: service.service, revisions })),
      ),
    );
    return EXIT.ok;
  }
  sections.forEach(({ title, revisions }, index) => {
    if (index > 0) ctx.io.stdout.write('\n');
    ctx.io.stdout.write(`${title}\n`);
    ctx.io.stdout.write(historyTable(revisions));
  });
  return EXIT.ok;
}

/** The table people read; exported for golden tests. */
export function historyTable(revisions: readonly Revision[]): string {
  return formatTable(
    [
      { header: 'REVISION', align: 'right' },
      { header: '' },
      { header: 'TAG' },
      { header: 'DIGEST' },
      { header: 'COMMIT' },
      { header: 'BUILD' },
      { header: 'DEPLOYED' },
      { header: 'BY' },
      { header: 'CHANGE-CAUSE' },
    ],
    revisions.map((r) => [
      String(r.revision),
      r.current ? 'current' : '',
      r.tag ?? '-',
      r.digest === undefined ? '-' : shortDigest(r.digest),
      r.commit?.slice(0, 12) ?? '-',
      r.buildProject === undefined || r.buildNumber === undefined
        ? '-'
        : `${r.buildProject}#${r.buildNumber}`,
      r.deployedAt === undefined ? '-' : r.deployedAt.toISOString().replace(/\.\d{3}Z$/, 'Z'),
      r.deployedBy ?? '-',
      r.changeCause ?? '-',
    ]),
  );
}
