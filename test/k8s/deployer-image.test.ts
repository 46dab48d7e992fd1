import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { builtinModules } from 'node:module';
import * as path from 'node:path';
import { REPO_ROOT } from '../support/app';
import { K8S, containers, find, kustomize, podSpec, removeTempDirs, tempDir } from './kubectl';

afterAll(removeTempDirs);

// incluster/Dockerfile, read statically: no base image can be pulled here, so it is not built.
// What can be checked is checked: its stages and pins, the user against the Deployment's, the
// entry point against the bundle the build stage writes (the contract's /app/ship-deployer.js
// from incluster/main.ts), the .dockerignore against what the build copies, and the esbuild
// command itself, run on this checkout.

const DOCKERFILE = path.join(REPO_ROOT, 'incluster', 'Dockerfile');
const BUNDLE = '/app/ship-deployer.js';
const ENTRY = 'incluster/main.ts';

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly stage: number;
}

/** Dockerfile instructions: comments dropped, `\` continuations joined, each with its stage. */
function instructions(text: string): Instruction[] {
  const joined = text
    .split('\n')
    .filter((line) => !/^\s*#/.test(line))
    .join('\n')
    .replace(/\\\n/g, ' ');
  const found: Instruction[] = [];
  let stage = -1;
  for (const line of joined.split('\n')) {
    const match = /^\s*([A-Za-z]+)\s+(.*)$/.exec(line);
    if (match === null) continue;
    const keyword = match[1]!.toUpperCase();
    if (keyword === 'FROM') stage++;
    found.push({ keyword, args: match[2]!.replace(/\s+/g, ' ').trim(), stage });
  }
  return found;
}

const all = instructions(readFileSync(DOCKERFILE, 'utf8'));
const froms = all.filter((i) => i.keyword === 'FROM');
const finalStage = froms.length - 1;
const inFinal = (keyword: string): Instruction[] =>
  all.filter((i) => i.stage === finalStage && i.keyword === keyword);
const esbuildRun = all.find((i) => i.keyword === 'RUN' && i.args.includes('esbuild'));
const deployment = find(
  kustomize(path.join(K8S, 'deployer', 'base')),
  'Deployment',
  'ship-deployer',
);

describe('incluster/Dockerfile', () => {
  test('Given the Dockerfile, when parsed, then it has a Node.js 20 build stage and a distroless Node.js 20 runtime stage', () => {
    expect(froms.map((f) => f.args)).toEqual([
      expect.stringMatching(/^docker\.io\/library\/node:20[\w.-]* AS build$/),
      expect.stringMatching(/^gcr\.io\/distroless\/nodejs20-debian12:nonroot$/),
    ]);
  });

  test('Given every FROM, when parsed, then it names its registry host and a tag, never latest', () => {
    for (const from of froms) {
      const image = from.args.split(' ')[0]!;
      expect(image).toMatch(/^[a-z0-9.-]+\.[a-z]+\/[^:@]+(:[\w.-]+)?(@sha256:[0-9a-f]{64})?$/);
      expect(image).toMatch(/:[\w.-]+/);
      expect(image.toLowerCase()).not.toMatch(/:latest(@|$)/);
    }
  });

  test('Given the build stage, when parsed, then npm ci installs from the lock file and esbuild bundles the contract’s entry point into the bundle the runtime stage copies', () => {
    expect(all.some((i) => i.stage === 0 && i.keyword === 'RUN' && /^npm ci\b/.test(i.args))).toBe(
      true,
    );
    expect(esbuildRun).toBeDefined();
    const words = esbuildRun!.args.split(' ');
    expect(words).toContain(ENTRY);
    expect(words).toContain('--bundle');
    expect(words).toContain('--platform=node');
    expect(words).toContain(`--outfile=${BUNDLE}`);
    expect(inFinal('COPY').map((c) => c.args)).toEqual([
      `--from=build ${path.dirname(BUNDLE)}/ ${path.dirname(BUNDLE)}/`,
    ]);
  });

  test('Given the runtime stage, when parsed, then it runs as the numeric non-root user the Deployment runs as, the bundle with Node.js, nothing else (no RUN: no shell there)', () => {
    const users = inFinal('USER').map((u) => u.args);
    expect(users).toHaveLength(1);
    const [uid, gid] = users[0]!.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    const security = podSpec(deployment).securityContext as {
      runAsUser: number;
      runAsGroup: number;
    };
    expect([uid, gid]).toEqual([security.runAsUser, security.runAsGroup]);
    const entrypoint = JSON.parse(inFinal('ENTRYPOINT')[0]!.args) as string[];
    expect(entrypoint[0]).toMatch(/\/node$/);
    expect(entrypoint.at(-1)).toBe(BUNDLE);
    expect(inFinal('CMD')).toEqual([]);
    expect(inFinal('RUN')).toEqual([]);
    const port = (containers(deployment)[0]!.ports as { containerPort: number }[])[0]!
      .containerPort;
    expect(inFinal('EXPOSE').map((e) => e.args)).toEqual([String(port)]);
  });
});

/**
 * Whether the build context leaves `file` out, as Docker reads .dockerignore: patterns in order,
 * the last one matching the path or one of its parent folders decides; `!` re-includes; `*` and
 * `?` stay within a path component, `**` crosses them.
 */
function ignored(patterns: readonly string[], file: string): boolean {
  const toRegExp = (pattern: string): RegExp => {
    let source = '';
    for (let k = 0; k < pattern.length; k++) {
      const c = pattern[k]!;
      if (pattern.startsWith('**/', k)) {
        source += '(.*/)?';
        k += 2;
      } else if (pattern.startsWith('**', k)) {
        source += '.*';
        k += 1;
      } else if (c === '*') source += '[^/]*';
      else if (c === '?') source += '[^/]';
      else source += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
    }
    return new RegExp(`^${source}$`);
  };
  const parts = file.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let out = false;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const pattern = path.posix.normalize(negated ? raw.slice(1) : raw).replace(/\/$/, '');
    if (candidates.some((c) => toRegExp(pattern).test(c))) out = !negated;
  }
  return out;
}

describe('.dockerignore', () => {
  const patterns = readFileSync(path.join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));

  test('Given every COPY of the build stage, when its sources are looked up, then the context keeps them', () => {
    const sources = all
      .filter((i) => i.stage === 0 && i.keyword === 'COPY')
      .flatMap((i) => i.args.split(' ').slice(0, -1));
    expect(sources.sort()).toEqual(
      ['core', 'incluster', 'lib', 'package-lock.json', 'package.json', 'tsconfig.json'].sort(),
    );
    for (const file of [
      'package.json',
      'package-lock.json',
      'tsconfig.json',
      'core/registry.js',
      'lib/config.ts',
      ENTRY,
    ]) {
      expect([file, ignored(patterns, file)]).toEqual([file, false]);
    }
  });

  test.each([
    'node_modules/yaml/package.json',
    'cdk.out/manifest.json',
    '.git/HEAD',
    'test/k8s/deployer.test.ts',
    'core/plan.test.ts',
    '.bench/x.json',
    'README.md',
  ])('Given %s, when the context is made, then it is left out', (file) => {
    expect(ignored(patterns, file)).toBe(true);
  });
});

const hasEntry = existsSync(path.join(REPO_ROOT, ENTRY));
// incluster/main.ts is written by another part of issue 17; until it is on this branch there is
// nothing to bundle, and this test says so rather than pass.
(hasEntry ? test : test.skip)(
  'Given the build stage’s esbuild command, when run on this checkout, then it bundles incluster/main.ts into one file that requires only Node.js built-ins (the runtime stage has no node_modules)',
  () => {
    const out = path.join(tempDir('deployer-bundle'), path.basename(BUNDLE));
    const args = esbuildRun!.args
      .split(' ')
      .slice(3) // npx --no-install esbuild
      .map((a) => (a === `--outfile=${BUNDLE}` ? `--outfile=${out}` : a));
    expect(esbuildRun!.args.startsWith('npx --no-install esbuild ')).toBe(true);
    const result = spawnSync(path.join(REPO_ROOT, 'node_modules', '.bin', 'esbuild'), args, {
      cwd: REPO_ROOT,
      encoding: 'utf8',
    });
    expect(result.stderr).not.toMatch(/error/i);
    expect(result.status).toBe(0);
    const bundle = readFileSync(out, 'utf8');
    const required = [...bundle.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]!);
    const builtins = new Set([...builtinModules, ...builtinModules.map((m) => `node:${m}`)]);
    expect(required.filter((m) => !builtins.has(m))).toEqual([]);
  },
);
