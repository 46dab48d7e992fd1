#!/usr/bin/env node
// The `ship` command (`npx ship …` in this checkout). The CLI is TypeScript (cli/); this starter
// bundles it with the pinned esbuild into node_modules/.cache/ship/ on first use and again
// whenever any of its sources changed, then runs the bundle: no build step to forget, no stale
// output, and a start-up of a few hundred milliseconds instead of seconds of on-the-fly compiling.
'use strict';

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const root = path.join(__dirname, '..');
const cacheDir = path.join(root, 'node_modules', '.cache', 'ship');
const bundle = path.join(cacheDir, 'ship.js');
const metaFile = path.join(cacheDir, 'ship.meta.json');

/** True when the bundle is newer than every file it was built from. */
function isFresh() {
  try {
    const built = fs.statSync(bundle).mtimeMs;
    /** @type {unknown} */
    const parsed = JSON.parse(fs.readFileSync(metaFile, 'utf8'));
    const meta = /** @type {{ inputs: Record<string, unknown> }} */ (parsed);
    const inputs = Object.keys(meta.inputs);
    return inputs.every((input) => fs.statSync(path.join(root, input)).mtimeMs <= built);
  } catch {
    return false;
  }
}

if (!isFresh()) {
  fs.mkdirSync(cacheDir, { recursive: true });
  // Written beside and renamed into place: two ship processes starting at once never read half.
  const temporary = `${bundle}.${process.pid}`;
  const esbuild = /** @type {typeof import('esbuild')} */ (require('esbuild'));
  const result = esbuild.buildSync({
    absWorkingDir: root,
    entryPoints: ['cli/main.ts'],
    outfile: temporary,
    bundle: true,
    platform: 'node',
    target: 'node20',
    format: 'cjs',
    metafile: true,
    sourcemap: 'inline',
    logLevel: 'error',
  });
  fs.renameSync(temporary, bundle);
  fs.writeFileSync(metaFile, JSON.stringify({ inputs: result.metafile.inputs }));
}

process.setSourceMapsEnabled(true);
/** @type {unknown} */
const loaded = require(bundle);
const { runShip } = /** @type {typeof import('../cli/main')} */ (loaded);

runShip(
  process.argv.slice(2),
  { stdout: process.stdout, stderr: process.stderr, stderrIsTTY: process.stderr.isTTY === true },
  {
    env: process.env,
    cwd: process.cwd(),
    homeDir: os.homedir(),
    appDir: root,
    now: () => new Date(),
    sleep: (/** @type {number} */ ms) => new Promise((resolve) => setTimeout(resolve, ms)),
  },
).then(
  (status) => {
    process.exitCode = status;
  },
  (error) => {
    process.stderr.write(`ship: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
