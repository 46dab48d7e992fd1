/**
 * Builds started per push, read from the synthesized webhook filters (what CodeBuild evaluates),
 * for our app and for the usual hand-written project (CDK's `andBranchIs('main')`, no path filter).
 */
import { App, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import * as codebuild from 'aws-cdk-lib/aws-codebuild';
import { createStacks } from '../lib/app';
import { resolveConfig } from '../lib/config';
import { CDK_JSON_CONTEXT } from '../test/support/app';
import { projectsTriggered, WebhookEvent } from '../test/support/webhook';
import { Verdict } from './checks';
import { Column, formatTable } from './table';

const SERVICES = ['hasher', 'rng', 'webui', 'worker'];

interface Scenario {
  readonly name: string;
  readonly event: WebhookEvent;
  /** What our app must start; `undefined` when the scenario only informs. */
  readonly expected?: number;
}

const SCENARIOS: readonly Scenario[] = [
  {
    name: 'push to main changing 1 of 4 services',
    event: { event: 'PUSH', headRef: 'refs/heads/main', files: ['dockercoins/rng/rng.py'] },
    expected: 1,
  },
  {
    name: 'push to main changing only README.md',
    event: { event: 'PUSH', headRef: 'refs/heads/main', files: ['README.md'] },
    expected: 0,
  },
  {
    name: 'push to main-hotfix (not a build branch)',
    event: { event: 'PUSH', headRef: 'refs/heads/main-hotfix', files: ['dockercoins/rng/a.py'] },
    expected: 0,
  },
  {
    // Every service runs to add the release tag; none builds an image (see the buildspec runs).
    name: 'push of release tag v1.2.0 (no changed files)',
    event: { event: 'PUSH', headRef: 'refs/tags/v1.2.0', files: [] },
    expected: 4,
  },
];

export interface WebhookResult {
  readonly scenario: string;
  readonly ours: number;
  readonly naive: number;
  readonly expected: number | undefined;
}

function ourTemplate(): Template {
  const app = new App({ context: CDK_JSON_CONTEXT });
  const { config } = resolveConfig({ sourceOwner: 'bench' });
  const { builds } = createStacks(app, config);
  return Template.fromStack(builds);
}

function naiveTemplate(): Template {
  const stack = new Stack(new App(), 'NaiveBuilds');
  for (const service of SERVICES) {
    new codebuild.Project(stack, service, {
      projectName: `naive-${service}`,
      source: codebuild.Source.gitHub({
        owner: 'bench',
        repo: 'container.training',
        webhookFilters: [
          codebuild.FilterGroup.inEventOf(codebuild.EventAction.PUSH).andBranchIs('main'),
          codebuild.FilterGroup.inEventOf(codebuild.EventAction.PUSH).andTagIs('v.*'),
        ],
      }),
      buildSpec: codebuild.BuildSpec.fromObject({ version: '0.2', phases: {} }),
    });
  }
  return Template.fromStack(stack);
}

export function measureWebhooks(): WebhookResult[] {
  const ours = ourTemplate();
  const naive = naiveTemplate();
  return SCENARIOS.map((scenario) => ({
    scenario: scenario.name,
    ours: projectsTriggered(ours, scenario.event).length,
    naive: projectsTriggered(naive, scenario.event).length,
    expected: scenario.expected,
  }));
}

export function webhookTable(results: readonly WebhookResult[]): string {
  const columns: Column[] = [
    { header: 'push', align: 'left' },
    { header: 'builds started, ours', align: 'right' },
    { header: 'naive (andBranchIs, no paths)', align: 'right' },
  ];
  return formatTable(
    columns,
    results.map((r) => [r.scenario, String(r.ours), String(r.naive)]),
  );
}

export function webhookVerdicts(results: readonly WebhookResult[]): Verdict[] {
  return results
    .filter((r) => r.expected !== undefined)
    .map((r) => ({
      ok: r.ours === r.expected,
      message: `${r.scenario}: ${r.ours} build(s) started, ${r.expected} expected`,
    }));
}
