/**
 * `ship pause <service>` and `ship resume <service>`: automatic deploys of a service on or off,
 * by the annotation the deployer reads (`ship.dockercoins.io/paused`), through apply.ts's
 * applyPause. A person's `ship deploy` still works while paused.
 */
import { applyPause, type PauseOutcome } from '../../core/apply';
import type { ShipContext } from '../context';
import { EXIT, formatJson } from '../output';

export async function pauseCommand(
  ctx: ShipContext,
  serviceName: string | undefined,
  paused: boolean,
): Promise<number> {
  const command = paused ? 'pause' : 'resume';
  const service = ctx.service(serviceName, command);
  const [environment] = ctx.environments('one', command);
  const outcomes: PauseOutcome[] = [];
  for (const target of service.targets) {
    const ref = { environment: environment!, service: service.service, target };
    ctx.progress.update(`${environment!.name}: ${environment!.namespace}/${target.deployment}…`);
    outcomes.push(await applyPause(ref, paused, { clusters: ctx.clusters(), retry: ctx.retry }));
  }
  ctx.progress.done();
  if (ctx.options.json) {
    ctx.io.stdout.write(
      formatJson(
        outcomes.map((o) => ({
          environment: o.ref.environment.name,
          namespace: o.ref.environment.namespace,
          service: o.ref.service,
          deployment: o.ref.target.deployment,
          status: o.status,
          paused: o.status === 'patched' ? o.paused : null,
          detail: o.status === 'patched' ? null : o.detail,
        })),
      ),
    );
  } else {
    for (const o of outcomes) {
      const where = `${o.ref.environment.name}: ${o.ref.environment.namespace}/${o.ref.target.deployment}`;
      if (o.status === 'patched') {
        ctx.io.stdout.write(
          paused
            ? `${where}: automatic deploys paused; builds still push images. \`ship resume ${o.ref.service}\` turns them back on.\n`
            : `${where}: automatic deploys resumed; the next successful build deploys.\n`,
        );
      } else if (o.status === 'unchanged') {
        ctx.io.stdout.write(`${where}: ${o.detail.replace(/^[^:]*: /, '')}\n`);
      } else {
        ctx.io.stdout.write(`${where}: FAILED: ${o.detail}\n`);
      }
    }
  }
  return outcomes.some((o) => o.status === 'failed') ? EXIT.failure : EXIT.ok;
}
