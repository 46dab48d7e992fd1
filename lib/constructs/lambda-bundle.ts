/**
 * The code of our Lambda functions: one esbuild bundle per handler, made in the synth's own
 * process with esbuild's JavaScript API (CDK's local bundling interface), never in Docker.
 *
 * Why not NodejsFunction: it runs esbuild through `npx --no-install esbuild`, a new npm process
 * per function, about 0.3 s each before esbuild starts (seen with strace here): with three
 * functions that was a third of `npx cdk synth`. The options are the ones NodejsFunction was
 * given, so the bundles are the same code.
 */
import * as path from 'node:path';
import { DockerImage, type ILocalBundling } from 'aws-cdk-lib';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import type { BuildOptions } from 'esbuild';

/** The repository root, resolved from this file. */
const REPO_ROOT = path.resolve(__dirname, '..', '..');

/** The SDK's default credential chain, which the functions' bundles replace. */
export const DEFAULT_CREDENTIAL_CHAIN = '@aws-sdk/credential-provider-node';
/** What replaces it in the bundles: the environment's credentials only. */
export const LAMBDA_CREDENTIALS_ENTRY = path.join(REPO_ROOT, 'lambda', 'env-credentials.ts');

/** esbuild's options for every function bundle (the entry and output are per function). */
export const DEPLOYER_BUNDLING = {
  bundle: true,
  platform: 'node',
  minify: true,
  sourcemap: true,
  // Stack traces need only the mappings; the sources would double what Node parses at start.
  sourcesContent: false,
  target: 'node22',
  format: 'cjs',
  // The SDK's and Powertools' ES module builds tree-shake far better than their CommonJS
  // ones: measured by `npm run bench`, a third less code to parse at cold start.
  mainFields: ['module', 'main'],
  // A Lambda's credentials are in its environment: the default chain's other providers (SSO,
  // STS, ini, IMDS and the clients they carry) would be dead weight (lambda/env-credentials.ts).
  // Nothing is external: the SDK clients are the versions in package-lock.json, tested here and
  // tree-shaken, rather than whatever the runtime ships that day.
  alias: { [DEFAULT_CREDENTIAL_CHAIN]: LAMBDA_CREDENTIALS_ENTRY },
  logLevel: 'warning',
} as const satisfies BuildOptions;

/**
 * The asset of one handler file: `index.js` (and its source map) exporting `handler`, so the
 * function's handler setting is `index.handler`.
 */
export function bundledCode(entry: string): lambda.Code {
  const local: ILocalBundling = {
    tryBundle(outputDir: string): boolean {
      // esbuild is a devDependency, as it was for NodejsFunction: loaded only when bundling.
      // eslint-disable-next-line @typescript-eslint/no-require-imports
      const esbuild = require('esbuild') as typeof import('esbuild');
      esbuild.buildSync({
        ...DEPLOYER_BUNDLING,
        mainFields: [...DEPLOYER_BUNDLING.mainFields],
        entryPoints: [entry],
        outfile: path.join(outputDir, 'index.js'),
        absWorkingDir: REPO_ROOT,
      });
      return true;
    },
  };
  return lambda.Code.fromAsset(path.dirname(entry), {
    bundling: {
      local,
      // Never used (local bundling always answers), but CDK asks for an image: the SAM build
      // image of the runtime, as NodejsFunction would.
      image: DockerImage.fromRegistry('public.ecr.aws/sam/build-nodejs22.x'),
    },
  });
}
