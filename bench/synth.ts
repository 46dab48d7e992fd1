/**
 * Synthesizes one app into a scratch directory, timed, and reads back what CloudFormation will
 * judge: the stack templates.
 */
import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { addComplianceChecks, createStacks } from '../lib/app';
import { CDK_JSON_CONTEXT } from '../test/support/app';
import { resolveConfig } from '../lib/config';

// One loader of cdk.json for tests and bench: both must synthesize what `cdk synth` does.
export { REPO_ROOT } from '../test/support/app';

/** What one stack's template weighs against CloudFormation's quotas. */
export interface StackFigures {
  readonly stackName: string;
  /** Resources, not counting AWS::CDK::Metadata. */
  readonly resources: number;
  readonly outputs: number;
  /** Size of the .template.json file on disk. */
  readonly templateBytes: number;
  /** `resources` by resource type, in template order. */
  readonly resourceTypes: Readonly<Record<string, number>>;
}

export interface SynthRun {
  readonly ms: number;
  readonly stacks: readonly StackFigures[];
}

/** Adds an app's stacks to a fresh App; the part of the work a variant differs in. */
export type AppBuilder = (app: App, services: readonly string[]) => void;

/** Our app as bin/app.ts composes it, minus context reading (the bench supplies the context). */
export function ourApp(withNag: boolean): AppBuilder {
  return (app, services) => {
    const { config } = resolveConfig({ services: [...services], sourceOwner: 'bench' });
    createStacks(app, config);
    if (withNag) addComplianceChecks(app);
  };
}

/** The least anyone could write: what our constructs cost over plain ECR repositories. */
export const naiveApp: AppBuilder = (app, services) => {
  const stack = new Stack(app, 'Naive');
  for (const service of services) new ecr.Repository(stack, service);
};

/** `svc-001`, `svc-002`, …: valid service names whose output ids cannot collide. */
export function serviceNames(count: number): string[] {
  return Array.from({ length: count }, (_, i) => `svc-${String(i + 1).padStart(3, '0')}`);
}

/**
 * An App configured the way the cdk CLI configures bin/app.ts's: without version reporting and
 * path metadata, templates would be smaller than the ones actually deployed.
 */
function cliLikeApp(outdir: string): App {
  return new App({
    outdir,
    analyticsReporting: true,
    context: { ...CDK_JSON_CONTEXT, 'aws:cdk:enable-path-metadata': true },
  });
}

/**
 * One timed synth in its own outdir under `scratchRoot`, removed afterwards. The clock covers
 * everything `cdk synth` runs in-process (construction, validation plugins, writing the
 * assembly), not the reading back of templates.
 */
export function synthOnce(
  scratchRoot: string,
  build: AppBuilder,
  services: readonly string[],
): SynthRun {
  const outdir = mkdtempSync(path.join(scratchRoot, 'synth-'));
  try {
    const start = performance.now();
    const app = cliLikeApp(outdir);
    build(app, services);
    const assembly = app.synth();
    const ms = performance.now() - start;
    // stacksRecursively: a stack inside a Stage would live in a nested assembly.
    const stacks = assembly.stacksRecursively.map((stack) =>
      stackFigures(stack.stackName, stack.templateFullPath),
    );
    return { ms, stacks };
  } finally {
    rmSync(outdir, { recursive: true, force: true });
  }
}

interface Template {
  readonly Resources?: Record<string, { readonly Type?: string }>;
  readonly Outputs?: Record<string, unknown>;
}

function stackFigures(stackName: string, templatePath: string): StackFigures {
  const template = JSON.parse(readFileSync(templatePath, 'utf8')) as Template;
  // CDKMetadata is the CLI's version reporting, not the app's, and only exists in some regions.
  const counted = Object.values(template.Resources ?? {}).filter(
    (resource) => resource.Type !== 'AWS::CDK::Metadata',
  );
  const resourceTypes: Record<string, number> = {};
  for (const { Type: type = '(no Type)' } of counted) {
    resourceTypes[type] = (resourceTypes[type] ?? 0) + 1;
  }
  return {
    stackName,
    resources: counted.length,
    resourceTypes,
    outputs: Object.keys(template.Outputs ?? {}).length,
    // The default synthesizer uploads this very file to the bootstrap bucket, so its bytes count.
    templateBytes: statSync(templatePath).size,
  };
}
