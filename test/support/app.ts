import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { App, AppProps } from 'aws-cdk-lib';

/** The repository root, resolved from this file, never from the working directory. */
export const REPO_ROOT = path.resolve(__dirname, '..', '..');

/**
 * How cdk.json ran the app before bin/cdk-app.js (ts-node, transpile-only per tsconfig.json, and
 * CDK's built-in template validation on): the bench's baseline for the whole `npx cdk synth`, and
 * the way test/bin.test.ts checks that the templates are the same either way.
 */
export const TS_NODE_APP = 'npx ts-node --prefer-ts-exts bin/app.ts';

/** The feature flags in cdk.json: tests synthesize what `cdk synth` synthesizes. */
export const CDK_JSON_CONTEXT = (
  JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    context: Record<string, unknown>;
  }
).context;

/**
 * The context key naming the stacks whose assets are bundled (`cdk synth` bundles all). An empty
 * list stages the deployer Lambda's source as it is, without running esbuild.
 */
export const BUNDLING_STACKS = 'aws:cdk:bundling-stacks';

/**
 * A fresh App with cdk.json's context, plus any extra context the test gives. It does not bundle
 * the deployer Lambda (esbuild would run once per App): a test that looks at the bundle asks for
 * it with `{ [BUNDLING_STACKS]: ['**'] }`, and `npx cdk synth` (test/bin.test.ts) always bundles.
 */
export function newApp(context: Record<string, unknown> = {}, props: AppProps = {}): App {
  return new App({
    ...props,
    context: { ...CDK_JSON_CONTEXT, [BUNDLING_STACKS]: [], ...context },
  });
}

/** What `<account>.dkr.ecr.<region>.<suffix><path>` resolves to in an environment-agnostic stack. */
export function expectedEcrUri(pathPart: string): object {
  return {
    'Fn::Join': [
      '',
      [
        { Ref: 'AWS::AccountId' },
        '.dkr.ecr.',
        { Ref: 'AWS::Region' },
        '.',
        { Ref: 'AWS::URLSuffix' },
        pathPart,
      ],
    ],
  };
}
