/**
 * The printed report. Everything here is formatting: the figures come from measure.ts and the
 * judgements from checks.ts, so the JSON file and the terminal cannot disagree.
 */
import {
  formatRate,
  Growth,
  LIMITS_TEXT,
  METRIC_LABELS,
  projectNamesPerRule,
  Verdict,
} from './checks';
import { AppResult, Timing } from './measure';
import { Column, formatCount, formatTable } from './table';

export interface Environment {
  readonly node: string;
  readonly awsCdkLib: string;
  readonly cdkNag: string;
  readonly cpus: string;
}

export interface ReportInput {
  readonly environment: Environment;
  readonly runs: number;
  readonly warmUpSynths: number;
  readonly warmUpServices: number;
  readonly results: readonly AppResult[];
  readonly growth: readonly Growth[];
  readonly verdicts: readonly Verdict[];
  readonly resultsFile: string;
  readonly exitCode: number;
  /** The whole-process table (cli.ts), already formatted. */
  readonly cliTable: string;
  /** Builds started per push (webhooks.ts), already formatted. */
  readonly webhookTable: string;
  /** The buildspec run locally per trigger (buildspec-runs.ts), already formatted. */
  readonly buildspecTable: string;
  /** The deployer Lambda's figures beside their baselines (deployer.ts), already formatted. */
  readonly deployerTable: string;
  /** The ship CLI's start-up beside ts-node (ship.ts), already formatted. */
  readonly shipTable: string;
  /** The deploy workflow run locally: failure to verdict, cost of a verified deploy, bundles (workflow.ts). */
  readonly workflowTable: string;
  /** The in-cluster deployer: push → PATCH by notification, by reconcile, beside pollers (onprem.ts). */
  readonly onpremTable: string;
}

export function renderReport(input: ReportInput): string {
  return [
    header(input),
    section('Synth time and CloudFormation quotas, per stack', resultsTable(input.results)),
    section('Growth per additional service', growthTable(input.growth)),
    section('Whole `npx cdk synth` process, as a user runs it', input.cliTable),
    section(
      'CodeBuild builds started per push (4 services), from the synthesized webhook filters',
      input.webhookTable,
    ),
    section(
      'The buildspec run locally (buildah + distribution registry), median of runs per trigger',
      input.buildspecTable,
    ),
    section(
      'The deployer Lambda: bundle, warm deploys against local emulators, requests, EKS token',
      input.deployerTable,
    ),
    section('The ship CLI start-up, whole process, median of 5', input.shipTable),
    section(
      'The deploy workflow, run locally on the simulated cluster: failure to verdict, one verified deploy, bundles',
      input.workflowTable,
    ),
    section(
      'On-prem: the in-cluster deployer, push accepted → PATCH received, beside pollers at their default intervals',
      input.onpremTable,
    ),
    section('Verdicts (our app only)', verdictLines(input.verdicts)),
    section('Notes', footnotes(input)),
    `Figures written to ${input.resultsFile}. Exit code ${input.exitCode}.`,
  ].join('\n\n');
}

function header(input: ReportInput): string {
  const env = input.environment;
  return [
    'DockerCoins synth bench',
    `node ${env.node}, aws-cdk-lib ${env.awsCdkLib}, cdk-nag ${env.cdkNag}, ${env.cpus}`,
    `Timing: median (min–max) of ${input.runs} synths per cell. ${input.warmUpSynths} warm-up synths ` +
      `(one per variant, ${input.warmUpServices} services; module loading and JIT) ran first ` +
      'and are EXCLUDED.',
  ].join('\n');
}

function section(title: string, body: string): string {
  return `${title}\n${'='.repeat(title.length)}\n${body}`;
}

const RESULT_COLUMNS: readonly Column[] = [
  { header: 'services', align: 'right' },
  { header: 'app', align: 'left' },
  { header: 'stack', align: 'left' },
  { header: 'synth ms, nag on', align: 'right' },
  { header: 'synth ms, nag off', align: 'right' },
  { header: 'resources*', align: 'right' },
  { header: 'outputs', align: 'right' },
  { header: 'template bytes', align: 'right' },
  { header: 'within limits', align: 'left' },
];

const APP_LABELS = { ours: 'ours', naive: 'naive baseline' } as const;

function resultsTable(results: readonly AppResult[]): string {
  const rows = results.flatMap((result) =>
    result.stacks.map((stack, index) => [
      String(result.services),
      APP_LABELS[result.app],
      stack.stackName,
      // Time is per app, not per stack: print it once, on the app's first stack.
      index === 0 ? timingCell(result.synthMs.nagOn) : '',
      index === 0 ? timingCell(result.synthMs.nagOff) : '',
      formatCount(stack.resources),
      formatCount(stack.outputs),
      formatCount(stack.templateBytes),
      stack.exceeded.length === 0 ? 'yes' : `NO (${stack.exceeded.join('; ')})`,
    ]),
  );
  return formatTable(RESULT_COLUMNS, rows);
}

/** Median with the spread beside it: with three runs, the spread says how far to trust it. */
function timingCell(timing: Timing | null): string {
  if (timing === null) return 'n/a';
  // Rounded outward, so the printed range always contains the median.
  const low = Math.floor(Math.min(...timing.runsMs));
  const high = Math.ceil(Math.max(...timing.runsMs));
  return `${timing.medianMs.toFixed(1)} (${low}–${high})`;
}

function growthTable(growth: readonly Growth[]): string {
  const intervals = growth[0]?.intervals ?? [];
  const columns: Column[] = [
    { header: 'app', align: 'left' },
    { header: 'per service', align: 'left' },
    ...intervals.map((i): Column => ({
      header: `${i.fromServices}→${i.toServices}`,
      align: 'right',
    })),
    { header: 'constant', align: 'left' },
  ];
  const rows = growth.map((g) => [
    APP_LABELS[g.app],
    g.gated ? `${METRIC_LABELS[g.metric]} (checked)†` : METRIC_LABELS[g.metric],
    ...g.intervals.map((i) => `+${formatRate(i.perService)}`),
    // Only the checked row can fail; the others show the raw growth, steps included.
    g.constant ? 'yes' : g.gated ? 'NO' : 'no (not checked)',
  ]);
  return formatTable(columns, rows);
}

function verdictLines(verdicts: readonly Verdict[]): string {
  return verdicts.map((v) => `${v.ok ? 'PASS' : 'FAIL'}  ${v.message}`).join('\n');
}

function footnotes(input: ReportInput): string {
  return [
    "* Resources exclude AWS::CDK::Metadata (the CLI's version reporting, one per stack, not part",
    '  of the app).',
    `- Limits checked: ${LIMITS_TEXT}.`,
    "† Without the Deployer's EventBridge rules beyond the first and their Lambda invoke",
    "  permissions: a rule's event pattern holds at most 2,048 characters, so past",
    `  ${projectNamesPerRule()} services (the bench's project names) the names are shared out over more`,
    '  rules, 2 resources per extra rule. The rule count is checked on its own (Verdicts).',
    '- Synth time is wall time of new App → (resolveConfig → createStacks → addComplianceChecks',
    '  for ours) → app.synth(), which writes the cloud assembly to a temp outdir (removed after each',
    `  run). Runs are interleaved: ${input.runs} rounds over every size and variant, the variant`,
    '  order rotating each round.',
    "- Apps get cdk.json's context, version reporting and path metadata, as under `cdk synth`, so",
    '  templates match what `cdk deploy` uploads. Template bytes are the .template.json file size.',
    '- Our stack figures come from the nag-on synth, the app bin/app.ts deploys. Context: {services:',
    "  ['svc-001', …], sourceOwner: 'bench'}.",
    '- Builds per push come from evaluating the synthesized FILE_PATH/HEAD_REF filters as CodeBuild',
    "  does; the naive projects use CDK's andBranchIs('main') (unanchored) and no path filter.",
    '- Buildspec runs: the real buildspec commands (test/support/buildspec-runner.ts), buildah behind',
    '  the docker shim (so BuildKit cache flags are ignored: times say nothing about BuildKit), the',
    '  real distribution registry on 127.0.0.1, a fresh registry per round. Naive: docker login +',
    '  buildx build --push of the same context on every run.',
    "- Deployer bundles: esbuild's JS API. Ours with the construct's own bundling options",
    '  (DEPLOYER_BUNDLING); naive: bench/naive-deployer-entry.ts (the aggregated ECR, EKS, CodeBuild',
    '  and SNS clients imported eagerly, plus the handler), esbuild defaults (minify, cjs, no',
    "  mainFields). Require time: a fresh `node --enable-source-maps` (the function's NODE_OPTIONS)",
    `  per run, hrtime around require(), runs interleaved; this machine's node ${process.version},`,
    '  Lambda runs node 22.',
    '- Warm deploys: the real handler (makeHandler + productionDeps) against moto_server (ECR, SNS),',
    '  the EKS stub (DescribeCluster) and the in-test TLS API server, in this process. Each event',
    '  is a new build (new commit, new image pushed to ECR first, higher build number) of hasher on',
    '  main, one Deployment. "PATCH accepted" is read in the API server\'s beforePatch hook (after',
    '  authentication, before the merge is applied). Logs and metrics are silenced. The AWS calls',
    '  pass a counting proxy in front of moto (both sides). Naive: a new handler and collaborators',
    '  per event (new SDK clients, DescribeCluster, token, TLS connection).',
    '- Requests: the minimum is 1 ECR DescribeImages + 1 GET + 1 PATCH per Deployment; the SNS',
    '  Publish of the outcome notification is outside it and shown apart.',
    '- EKS token: eksToken (core/aws/eks-token.ts) awaited in a loop, against',
    '  `aws eks get-token` as a process (no network: it presigns locally). Both tokens verified.',
    '- Naive baseline: one plain Stack with new ecr.Repository(stack, name) per service; no',
    '  options, no outputs, no cdk-nag (nag-on time n/a). It is shown for comparison, never judged.',
  ].join('\n');
}
