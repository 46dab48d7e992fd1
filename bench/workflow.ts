/**
 * The deploy workflow's figures, from the synthesized state machine run locally
 * (test/support/workflow.ts) against moto, the EKS stub and the simulated cluster:
 * - per failure kind, simulated seconds from the first failing pod state (the kubelet's first
 *   Warning event for a pod of the new ReplicaSet) to the verdict, beside Kubernetes' 600 s
 *   progress deadline;
 * - state transitions and Lambda invocations of one verified deploy, and their list price;
 * - the verify and report bundles beside the deploy one (the deploy one against the naive
 *   bundle is bench/deployer.ts's).
 */
// aws-local-stepfunctions needs Promise.withResolvers, which Node 20 lacks.
import '../test/setup/promise-with-resolvers';
import { mkdtempSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { Logger } from '@aws-lambda-powertools/logger';
import { Metrics } from '@aws-lambda-powertools/metrics';
import { Stack } from 'aws-cdk-lib';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import * as esbuild from 'esbuild';
import { parse as parseYaml } from 'yaml';
import { createClusterConnector, newEksClient } from '../core/aws/eks';
import { createRetry } from '../core/retry';
import {
  DEPLOYER_ENTRY,
  Deployer,
  REPORTER_ENTRY,
  VERIFIER_ENTRY,
} from '../lib/constructs/deployer';
import { WORKFLOW_STATES as S } from '../lib/constructs/deploy-workflow';
import { DEPLOYER_METRICS } from '../lib/deployer-contract';
import { formatVerifySettings, VERIFY_DEFAULTS, VERIFY_ENV } from '../lib/verify-contract';
import { createNotifier, newSnsClient } from '../lambda/deployer/adapters/sns';
import { makeHandler as makeDeployHandler } from '../lambda/deployer/handler';
import { productionDeps } from '../lambda/deployer/production';
import { createTelemetry } from '../lambda/deployer/telemetry';
import { makeHandler as makeReportHandler } from '../lambda/reporter/handler';
import { makeHandler as makeVerifyHandler } from '../lambda/verifier/handler';
import type { VerifyItem } from '../lambda/workflow';
import {
  deployerEnvironment,
  detailOf,
  event,
  infoOf,
  setVariables,
  variablesOf,
  type Json,
} from '../test/fixtures/events/fixtures';
import { newApp } from '../test/support/app';
import { startEksStub } from '../test/support/eks-stub';
import { startKubeApiServer } from '../test/support/kube-apiserver';
import type { PodFate } from '../test/support/kube-controller';
import {
  createCodeBuildProject,
  createTopicWithQueue,
  putEcrImage,
  startCodeBuild,
  startMoto,
  startRecordingProxy,
  useEnv,
  MOTO_ACCOUNT,
  type RecordingProxy,
} from '../test/support/moto';
import { runWorkflow, synthesizedDefinition, type RunResult } from '../test/support/workflow';
import type { Verdict } from './checks';
import { DEPLOYER_BUNDLE_OPTIONS } from './deployer';
import { REPO_ROOT } from './synth';
import { formatTable, type Column } from './table';

/** Kubernetes' default spec.progressDeadlineSeconds: what a rollout tool waiting for it takes. */
export const KUBERNETES_PROGRESS_DEADLINE_S = 600;
/** The issue's goal for pull and crash failures. */
export const FAST_FAILURE_GOAL_S = 60;
/** List prices, us-east-1 (Step Functions Standard; Lambda requests). */
const PRICE = { perTransition: 0.025 / 1000, perLambdaRequest: 0.2 / 1_000_000 } as const;

export interface FailureFigures {
  readonly kind: string;
  /** Simulated seconds from the first failing pod state to the failed verdict. */
  readonly toVerdictS: number | undefined;
  readonly verdict: string;
  readonly outcome: string;
}

export interface WorkflowFigures {
  readonly failures: readonly FailureFigures[];
  readonly verified: {
    readonly transitions: number;
    readonly invocations: number;
    readonly checks: number;
    readonly priceUsd: number;
  };
  readonly bundles: readonly { readonly fn: string; readonly codeBytes: number }[];
}

const FAILURES: readonly { kind: string; fate: PodFate }[] = [
  { kind: 'image pull failure', fate: { kind: 'image-pull-failure' } },
  { kind: 'crash loop', fate: { kind: 'crash-loop' } },
  {
    kind: 'CreateContainerConfigError',
    fate: { kind: 'config-error', reason: 'CreateContainerConfigError' },
  },
  { kind: 'never Ready (deadline)', fate: { kind: 'never-ready' } },
];

export async function measureWorkflow(scratchRoot: string): Promise<WorkflowFigures> {
  const bundles = await measureBundles(scratchRoot);
  const moto = await startMoto();
  const credentials = { accessKeyId: 'testing', secretAccessKey: 'testing' };
  const kube = await startKubeApiServer({ clusterName: 'dockercoins', credentials });
  const eks = await startEksStub({
    clusters: { dockercoins: { endpoint: kube.url, caPem: kube.caPem } },
  });
  const registry = `${MOTO_ACCOUNT}.dkr.ecr.${moto.region}.amazonaws.com`;
  // The Deploy step confirms every build with CodeBuild: moto runs the builds, the proxy adds
  // what our buildspec's run records (test/support/moto.ts).
  const codebuild = await startRecordingProxy(moto.codebuildUrl);
  await createCodeBuildProject(moto, 'DockerCoins-hasher');
  const restore = useEnv({
    ...moto.env,
    AWS_ENDPOINT_URL_CODEBUILD: codebuild.url,
    AWS_ACCESS_KEY_ID: credentials.accessKeyId,
    AWS_SECRET_ACCESS_KEY: credentials.secretAccessKey,
    AWS_ENDPOINT_URL_ECR: moto.url,
    AWS_ENDPOINT_URL_SNS: moto.url,
    AWS_ENDPOINT_URL_EKS: eks.url,
    POWERTOOLS_METRICS_DISABLED: 'true',
    POWERTOOLS_LOG_LEVEL: 'SILENT',
  });
  try {
    const { definition, arns } = synthesize();
    const topic = await createTopicWithQueue(moto, 'bench-workflow');
    const logger = new Logger({ serviceName: DEPLOYER_METRICS.serviceName, logLevel: 'SILENT' });
    const env = {
      ...deployerEnvironment(),
      AWS_REGION: moto.region,
      SHIP_REGISTRY: registry,
      SHIP_TOPIC_ARN: topic.topicArn,
      [VERIFY_ENV]: formatVerifySettings({
        pollSeconds: VERIFY_DEFAULTS.pollSeconds,
        deadlineSeconds: VERIFY_DEFAULTS.deadlineSeconds,
        serviceDeadlines: {},
        environmentDeadlines: {},
        environmentPollSeconds: {},
        noRollback: [],
      }),
    };
    const connector = createClusterConnector({
      eksClient: newEksClient,
      defaultRegion: moto.region,
    });
    let failedAt: number | undefined;
    const verify = makeVerifyHandler(() => ({
      connect: (environment) => connector.connect(environment),
      now: () => kube.now(),
      log: () => undefined,
    }));
    const handlers = {
      deploy: makeDeployHandler(() => ({
        ...productionDeps(env, createTelemetry({ logger })),
        now: () => kube.now(),
      })),
      verify: async (input: never): Promise<VerifyItem> => {
        const item = await verify(input);
        if (item.verdict?.state === 'failed' && failedAt === undefined) {
          failedAt = kube.now().getTime() / 1000;
        }
        return item;
      },
      report: makeReportHandler(() => ({
        notifier: createNotifier({
          client: () => newSnsClient(moto.region),
          topicArn: topic.topicArn,
        }),
        logger,
        metrics: new Metrics({ namespace: DEPLOYER_METRICS.namespace, serviceName: 'bench' }),
        retry: createRetry(),
      })),
    };
    const deployment = parseYaml(
      readFileSync(path.join(REPO_ROOT, 'test/fixtures/kube/hasher-deployment.yaml'), 'utf8'),
    ) as { metadata: Json };
    delete deployment.metadata.namespace;
    let runs = 0;
    let build = 1000;
    const run = async (fate?: PodFate): Promise<RunResult> => {
      build += 1;
      const { json, image } = await buildEvent(moto, codebuild, registry, build, kube.now());
      if (fate !== undefined) kube.setFate(image, fate);
      runs += 1;
      return runWorkflow({
        definition,
        arns,
        handlers: handlers,
        clock: kube,
        input: json,
        executionId: `arn:aws:states:${moto.region}:${MOTO_ACCOUNT}:execution:bench:${runs}`,
      });
    };

    const failures: FailureFigures[] = [];
    let verified: WorkflowFigures['verified'] | undefined;
    for (const { kind, fate } of [{ kind: 'verified', fate: undefined }, ...FAILURES]) {
      kube.putDeployment(deployment, { namespace: 'dockercoins' });
      kube.tickUntil(
        () => (kube.deployment('dockercoins', 'hasher')?.status?.readyReplicas ?? 0) === 2,
        60,
      );
      // A verified image to roll back to.
      const first = await run();
      if (fate === undefined) {
        const transitions =
          first.entered.length + first.events.filter((e) => e.type === 'StateRetried').length;
        const invocations = Object.values(first.invocations).reduce((a, b) => a + b, 0);
        verified = {
          transitions,
          invocations,
          checks: first.entered.filter((e) => e.state === S.check).length,
          priceUsd: transitions * PRICE.perTransition + invocations * PRICE.perLambdaRequest,
        };
        continue;
      }
      failedAt = undefined;
      const since = kube.now().getTime();
      const result = await run(fate);
      const warnings = kube
        .events('dockercoins')
        .filter(
          (e) =>
            e.type === 'Warning' &&
            e.involvedObject.kind === 'Pod' &&
            Date.parse(e.firstTimestamp) >= since,
        )
        .map((e) => Date.parse(e.firstTimestamp) / 1000);
      const firstFailing = warnings.length === 0 ? since / 1000 : Math.min(...warnings);
      const item = (
        result.entered.filter((e) => e.state === S.report).at(-1)?.input as
          { verdicts?: VerifyItem[] } | undefined
      )?.verdicts?.[0];
      failures.push({
        kind,
        toVerdictS: failedAt === undefined ? undefined : Math.round(failedAt - firstFailing),
        verdict: (item?.failure ?? item?.verdict)?.message ?? '(none)',
        outcome: result.entered
          .map((e) => e.state)
          .filter((s) =>
            [S.verified, S.rolledBack, S.verifyFailed, S.rollbackFailed, S.stopped].includes(
              s as never,
            ),
          )
          .join(', '),
      });
      kube.deleteDeployment('dockercoins', 'hasher');
    }
    return { failures, verified: verified!, bundles };
  } finally {
    restore();
    await codebuild.stop();
    await eks.stop();
    await kube.stop();
    await moto.stop();
  }
}

function synthesize(): ReturnType<typeof synthesizedDefinition> {
  const stack = new Stack(newApp(), 'Bench');
  const deployer = new Deployer(stack, 'Deployer', {
    services: ['hasher'].map((name) => ({
      service: { name, buildContext: `dockercoins/${name}`, deployment: name, container: name },
      repository: ecr.Repository.fromRepositoryName(stack, `Repo-${name}`, `dockercoins/${name}`),
      project: codebuild.Project.fromProjectName(stack, `Project-${name}`, `DockerCoins-${name}`),
    })),
    environments: [
      {
        name: 'main',
        clusterName: 'dockercoins',
        region: undefined,
        namespace: 'dockercoins',
        branches: ['main'],
        releaseTags: false,
      },
    ],
  });
  return synthesizedDefinition(stack, deployer);
}

async function buildEvent(
  moto: Awaited<ReturnType<typeof startMoto>>,
  codebuild: RecordingProxy,
  registry: string,
  number: number,
  now: Date,
): Promise<{ json: Json; image: string }> {
  const commit = `${number.toString(16).padStart(4, '0')}${'be7c'.repeat(9)}`;
  const tag = commit.slice(0, 12);
  const { digest } = await putEcrImage(moto, { repository: 'dockercoins/hasher', tags: [tag] });
  const json = event();
  const started = await startCodeBuild(moto, 'DockerCoins-hasher', commit);
  const buildArn = started.arn;
  json.resources = [buildArn];
  json.region = moto.region;
  json.time = new Date(now.getTime() - 60_000).toISOString().replace(/\.\d+Z$/, 'Z');
  detailOf(json)['build-id'] = buildArn;
  infoOf(json)['build-number'] = number;
  infoOf(json)['source-version'] = commit;
  setVariables(json, {
    IMAGE_REPOSITORY: `${registry}/dockercoins/hasher`,
    IMAGE_TAG: tag,
    IMAGE_TAGS: tag,
    IMAGE_DIGEST: digest,
    GIT_COMMIT: commit,
    GIT_REF: 'refs/heads/main',
  });
  codebuild.recordBuild(started.id, {
    buildNumber: number,
    exportedEnvironmentVariables: Object.entries(variablesOf(json)).map(([name, value]) => ({
      name,
      value,
    })),
  });
  return { json, image: `${registry}/dockercoins/hasher:${tag}@${digest}` };
}

async function measureBundles(scratchRoot: string): Promise<WorkflowFigures['bundles']> {
  const dir = mkdtempSync(path.join(scratchRoot, 'workflow-bundles-'));
  const entries = { deploy: DEPLOYER_ENTRY, verify: VERIFIER_ENTRY, report: REPORTER_ENTRY };
  const out: { fn: string; codeBytes: number }[] = [];
  for (const [fn, entry] of Object.entries(entries)) {
    const outfile = path.join(dir, fn, 'index.js');
    await esbuild.build({
      ...DEPLOYER_BUNDLE_OPTIONS,
      absWorkingDir: REPO_ROOT,
      logLevel: 'silent',
      entryPoints: [entry],
      outfile,
    });
    out.push({ fn, codeBytes: statSync(outfile).size });
  }
  return out;
}

const cols = (...specs: [string, 'L' | 'R'][]): Column[] =>
  specs.map(([header, a]) => ({ header, align: a === 'L' ? 'left' : 'right' }));

export function workflowTable(figures: WorkflowFigures): string {
  const failures = formatTable(
    cols(
      ['failure', 'L'],
      ['first failing pod state → verdict (simulated s)', 'R'],
      ['Kubernetes alone (s)', 'R'],
      ['ended', 'L'],
      ['verdict', 'L'],
    ),
    figures.failures.map((f) => [
      f.kind,
      f.toVerdictS === undefined ? 'no verdict' : `${f.toVerdictS}`,
      `${KUBERNETES_PROGRESS_DEADLINE_S}`,
      f.outcome,
      f.verdict.length > 70 ? `${f.verdict.slice(0, 67)}...` : f.verdict,
    ]),
  );
  const v = figures.verified;
  const cost = formatTable(
    cols(
      ['one verified deploy', 'L'],
      ['state transitions', 'R'],
      ['Lambda invocations', 'R'],
      ['checks', 'R'],
      ['list price (USD)', 'R'],
    ),
    [
      [
        '1 Deployment, Ready on the 2nd check',
        `${v.transitions}`,
        `${v.invocations}`,
        `${v.checks}`,
        v.priceUsd.toFixed(6),
      ],
    ],
  );
  const bundles = formatTable(
    cols(['function', 'L'], ['bundle (KB)', 'R']),
    figures.bundles.map((b) => [b.fn, (b.codeBytes / 1024).toFixed(0)]),
  );
  return [failures, cost, bundles].join('\n\n');
}

export function workflowVerdicts(figures: WorkflowFigures): Verdict[] {
  const fast = figures.failures.filter((f) => /pull|crash/.test(f.kind));
  const ok = fast.every((f) => f.toVerdictS !== undefined && f.toVerdictS <= FAST_FAILURE_GOAL_S);
  return [
    {
      ok,
      message:
        `Failure to verdict: ${fast.map((f) => `${f.kind} ${f.toVerdictS ?? '—'} s`).join(', ')} ` +
        `(simulated) — ${ok ? 'within' : 'NOT within'} the ${FAST_FAILURE_GOAL_S} s goal (Kubernetes alone: ${KUBERNETES_PROGRESS_DEADLINE_S} s)`,
    },
  ];
}
