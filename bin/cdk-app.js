#!/usr/bin/env node
// The CDK app as `cdk synth` runs it (cdk.json "app"): bin/app.ts and the TypeScript it imports,
// each file transpiled by the pinned esbuild and kept in node_modules/.cache/cdk-app/ under the
// hash of its source. A file is transpiled again only when its text changes; an unchanged checkout
// loads no compiler at all. Files stay where they are, so __dirname and relative paths (the
// buildspec, the k8s manifests, the deployer's entry) mean what they mean in the sources.
// Same JavaScript semantics as ts-node's transpile-only mode, which this replaces (about 1 s of
// loading the TypeScript compiler at every synth). Types are checked by `npm test` (tsc).
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const Module = require('node:module');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cacheDir = path.join(root, 'node_modules', '.cache', 'cdk-app');
/** @type {unknown} */
const esbuildManifest = JSON.parse(
  fs.readFileSync(require.resolve('esbuild/package.json'), 'utf8'),
);
const esbuildVersion = /** @type {{ version: string }} */ (esbuildManifest).version;

/** @type {typeof import('esbuild') | undefined} */
let esbuild;

/** @type {import('esbuild').TransformOptions} */
const TRANSFORM = {
  loader: 'ts',
  format: 'cjs',
  platform: 'node',
  target: 'node20',
  sourcemap: 'inline',
  // tsconfig.json's semantics for what transpiling can see (isolatedModules, ES2022 classes).
  tsconfigRaw: { compilerOptions: { useDefineForClassFields: true } },
};

/**
 * The JavaScript of one TypeScript file, from the cache or transpiled now.
 * @param {string} filename
 * @param {string} source
 * @returns {string}
 */
function javascriptOf(filename, source) {
  const key = crypto
    .createHash('sha256')
    // Everything the output depends on: another esbuild or other options transpile again.
    .update(`${esbuildVersion}\0${JSON.stringify(TRANSFORM)}\0${filename}\0${source}`)
    .digest('hex');
  const cached = path.join(cacheDir, `${key}.js`);
  try {
    return fs.readFileSync(cached, 'utf8');
  } catch {
    // Not transpiled yet.
  }
  esbuild ??= /** @type {typeof import('esbuild')} */ (require('esbuild'));
  const { code } = esbuild.transformSync(source, { ...TRANSFORM, sourcefile: filename });
  fs.mkdirSync(cacheDir, { recursive: true });
  // Written beside and renamed into place: two synths starting at once never read half a file.
  const temporary = `${cached}.${process.pid}`;
  fs.writeFileSync(temporary, code);
  fs.renameSync(temporary, cached);
  return code;
}

/** @typedef {{ _compile(code: string, filename: string): void }} CompilableModule */
/** @typedef {(module: CompilableModule, filename: string) => void} Loader */
const extensions = /** @type {{ _extensions: Record<string, Loader> }} */ (
  /** @type {unknown} */ (Module)
)._extensions;
/** @type {Loader} */
const loadTypeScript = (module, filename) => {
  module._compile(javascriptOf(filename, fs.readFileSync(filename, 'utf8')), filename);
};
extensions['.ts'] = loadTypeScript;

// CDK's built-in CloudFormation validation (a WASM rule engine aws-cdk-lib runs by default) costs
// about three quarters of a synth's CPU. Here it is off unless asked for with
// `CDK_VALIDATION=true npx cdk synth`: the same rules still gate every template in `npm test` (the
// tests synthesize in-process, where it stays on) and in CI (.ci/run asks for it), and cfn-lint
// checks the synthesized templates with zero findings allowed. The templates are the same either way.
process.env['CDK_VALIDATION'] ??= 'false';

process.setSourceMapsEnabled(true);
// Its .ts name is for the hook above (Node would otherwise look for app.js first).
require(path.join(__dirname, 'app.ts'));
