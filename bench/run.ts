/**
 * `npm run bench`: how synth time and template size grow with the number of services, for our app
 * and for a naive baseline, and whether every size fits CloudFormation's per-stack quotas; then
 * builds per push, the buildspec's runs and the deployer Lambda's figures, each beside a baseline.
 *
 * Exits 1 when our app breaks a quota at any measured size, adds a varying number of resources
 * per service, or misses a gate of the sections after (see Verdicts), so CI can run it as a check; the JSON in .bench/results.json is for comparisons
 * across commits.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import * as path from 'node:path';
import { growthOf, verdicts } from './checks';
import { cliTable, cliVerdicts, measureCli } from './cli';
import { CFN_LIMITS } from './limits';
import { measure, MeasureOptions, warmUp } from './measure';
import { Environment, renderReport } from './report';
import { REPO_ROOT } from './synth';
import { buildspecTable, buildspecVerdicts, measureBuildspecRuns } from './buildspec-runs';
import { measureWebhooks, webhookTable, webhookVerdicts } from './webhooks';
import { deployerTable, deployerVerdicts, measureDeployer } from './deployer';
import { measureShipStart, shipTable, shipVerdicts } from './ship';
import { measureWorkflow, workflowTable, workflowVerdicts } from './workflow';
import { measureOnprem, onpremTable, onpremVerdicts } from './onprem';

/** 4 is today's app; 25 and 100 give two intervals, so a non-linear cost cannot hide. */
const SIZES = [4, 25, 100] as const;
/** Odd, so the median is a real run; three keeps the whole bench well under a minute. */
const RUNS = 3;
const RESULTS_FILE = path.join(REPO_ROOT, '.bench', 'results.json');

async function main(): Promise<number> {
  const scratchRoot = mkdtempSync(path.join(tmpdir(), 'dockercoins-bench-'));
  try {
    return await bench({ sizes: SIZES, runs: RUNS, scratchRoot });
  } finally {
    rmSync(scratchRoot, { recursive: true, force: true });
  }
}

async function bench(options: MeasureOptions): Promise<number> {
  const warmUpSynths = warmUp(options);
  const results = measure(options);
  const cli = measureCli(options.scratchRoot, [SIZES[0], SIZES[SIZES.length - 1]!], RUNS);
  const growth = growthOf(results);
  const webhooks = measureWebhooks();
  const buildspecRuns = await measureBuildspecRuns(options.scratchRoot, RUNS);
  const deployer = await measureDeployer(options.scratchRoot, RUNS);
  const ship = measureShipStart(options.scratchRoot, 5);
  const workflow = await measureWorkflow(options.scratchRoot);
  const onprem = await measureOnprem(options.scratchRoot);
  const checks = [
    ...verdicts(results, growth),
    ...cliVerdicts(cli),
    ...webhookVerdicts(webhooks),
    ...buildspecVerdicts(buildspecRuns),
    ...deployerVerdicts(deployer),
    ...shipVerdicts(ship),
    ...workflowVerdicts(workflow),
    ...onpremVerdicts(onprem),
  ];
  const exitCode = checks.every((check) => check.ok) ? 0 : 1;
  const environment = describeEnvironment();

  mkdirSync(path.dirname(RESULTS_FILE), { recursive: true });
  const json = {
    generatedAt: new Date().toISOString(),
    environment,
    method: {
      runsPerCell: options.runs,
      statistic: 'median',
      warmUpSynthsExcluded: warmUpSynths,
      resourcesExclude: ['AWS::CDK::Metadata'],
    },
    limits: CFN_LIMITS,
    results,
    cli,
    webhooks,
    buildspecRuns,
    deployer,
    ship,
    workflow,
    onprem,
    growth,
    verdicts: checks,
    exitCode,
  };
  writeFileSync(RESULTS_FILE, `${JSON.stringify(json, null, 2)}\n`);

  const report = renderReport({
    environment,
    runs: options.runs,
    warmUpSynths,
    warmUpServices: Math.max(...options.sizes),
    results,
    growth,
    verdicts: checks,
    resultsFile: path.relative(process.cwd(), RESULTS_FILE),
    cliTable: cliTable(cli),
    webhookTable: webhookTable(webhooks),
    buildspecTable: buildspecTable(buildspecRuns),
    deployerTable: deployerTable(deployer),
    shipTable: shipTable(ship),
    workflowTable: workflowTable(workflow),
    onpremTable: onpremTable(onprem),
    exitCode,
  });
  process.stdout.write(`${report}\n`);
  return exitCode;
}

function describeEnvironment(): Environment {
  const model = cpus()[0]?.model.trim() ?? 'unknown CPU';
  return {
    node: process.version,
    awsCdkLib: installedVersion('aws-cdk-lib'),
    cdkNag: installedVersion('cdk-nag'),
    cpus: `${cpus().length} × ${model}`,
  };
}

/** The installed version, not package.json's range: the one that actually ran. */
function installedVersion(pkg: string): string {
  const manifest = JSON.parse(readFileSync(require.resolve(`${pkg}/package.json`), 'utf8')) as {
    version?: string;
  };
  return manifest.version ?? 'unknown';
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    process.stderr.write(`bench failed: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
