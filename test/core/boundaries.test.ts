import { readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { REPO_ROOT } from '../support/app';

/**
 * One core, several runtimes: a runtime imports core/ and lib/ (and its own folder), never another
 * runtime's folder; core/ imports only core/ and lib/. Checked on every relative import and
 * require of the source files.
 */
const RUNTIMES = ['lambda', 'cli', 'incluster', 'buildspecs'];
const ALLOWED: Record<string, readonly string[]> = {
  core: ['core', 'lib'],
  ...Object.fromEntries(RUNTIMES.map((r) => [r, [r, 'core', 'lib']])),
};

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return name === 'node_modules' ? [] : sources(full);
    return /\.(ts|js)$/.test(name) && !name.endsWith('.d.ts') ? [full] : [];
  });
}

const IMPORT = /(?:from\s+|require\(|import\()\s*['"](\.{1,2}\/[^'"]+)['"]/g;

test.each(Object.keys(ALLOWED))('%s/ imports no other runtime folder', (folder) => {
  const root = path.join(REPO_ROOT, folder);
  const crossings: string[] = [];
  for (const file of sources(root)) {
    for (const match of readFileSync(file, 'utf8').matchAll(IMPORT)) {
      const target = path.relative(REPO_ROOT, path.resolve(path.dirname(file), match[1]!));
      const top = target.split(path.sep)[0]!;
      if (!ALLOWED[folder]!.includes(top)) {
        crossings.push(`${path.relative(REPO_ROOT, file)} imports ${match[1]} (${top}/)`);
      }
    }
  }
  expect(crossings).toEqual([]);
});
