/**
 * README.md and docs/: the reference stays true to the code (the configuration table), the README
 * keeps the commands and picture a newcomer needs, and every relative link lands somewhere.
 * test/docs-commands.test.ts runs or checks the shell examples themselves.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONTEXT_KEYS } from '../lib/config';
import { REPO_ROOT } from './support/app';

const read = (file: string): string => readFileSync(path.join(REPO_ROOT, file), 'utf8');
const readme = read('README.md');
const markdownFiles = [
  'README.md',
  ...readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`),
];

/**
 * Pages other branches are writing (the lead merges them). Until they land, a link to one is not
 * checked; once the file exists its links and anchors are checked like any other.
 */
const PENDING_DOCS = [
  'docs/cli.md',
  'docs/deploys.md',
  'docs/getting-started.md',
  'docs/registry-lifecycle.md',
  'docs/security.md',
];

function configurationTableKeys(): string[] {
  const page = read('docs/configuration.md');
  const section = `\n${page}`.split('\n# Configuration\n')[1]?.split('\n## What')[0];
  if (section === undefined) throw new Error('docs/configuration.md has no "# Configuration" part');
  return [...section.matchAll(/^\| `([A-Za-z]+)`\s*\|/gm)].map((m) => m[1]!);
}

test('the configuration table lists exactly the context keys the app reads', () => {
  expect(configurationTableKeys().sort()).toEqual([...CONTEXT_KEYS].sort());
});

test.each(['npm ci', 'npm test', 'npx cdk synth', 'npx cdk deploy', 'npx cdk destroy'])(
  'the README gives the command `%s`',
  (command) => {
    expect(readme).toContain(command);
  },
);

test('the README diagram is mermaid', () => {
  expect(readme).toMatch(/```mermaid\nflowchart/);
});

test('the README is a front door: short, no line wider than a terminal but the picture', () => {
  const lines = readme.split('\n');
  expect(lines.length).toBeLessThan(320);
  const mermaid = readme.slice(
    readme.indexOf('```mermaid'),
    readme.indexOf('```\n', readme.indexOf('```mermaid') + 3),
  );
  const wide = lines.filter((line) => line.length > 100 && !mermaid.includes(line));
  expect(wide).toEqual([]);
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens. */
function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N} _-]/gu, '')
    .replace(/ /g, '-');
}

function anchors(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const result = new Set<string>();
  let fence = false;
  for (const line of markdown.split('\n')) {
    if (/^ *```/.test(line)) fence = !fence;
    const heading = !fence && /^#{1,6} (.*)$/.exec(line);
    if (!heading) continue;
    const base = slug(heading[1]!);
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    result.add(n === 0 ? base : `${base}-${n}`);
  }
  return result;
}

/** Relative links outside code: [text](target), not http(s) or mailto. */
function relativeLinks(markdown: string): string[] {
  const prose = markdown
    .replace(/^ *```[\s\S]*?^ *```/gm, '')
    .replace(/`[^`\n]*`/g, (m) => (m.includes('](') ? m : ''));
  return [...prose.matchAll(/\]\(([^)\s]+)\)/g)]
    .map((m) => m[1]!)
    .filter((target) => !/^[a-z]+:/.test(target));
}

const links = markdownFiles.flatMap((file) =>
  relativeLinks(read(file)).map((target) => [file, target] as const),
);

test('the pages link to each other (the link check below has something to check)', () => {
  expect(links.length).toBeGreaterThan(20);
  expect(links.some(([, target]) => target.includes('#'))).toBe(true);
});

test.each(links)('%s links to %s, which exists', (file, target) => {
  const [filePart, anchor] = target.split('#') as [string, string | undefined];
  const resolved = filePart === '' ? file : path.normalize(path.join(path.dirname(file), filePart));
  if (PENDING_DOCS.includes(resolved) && !existsSync(path.join(REPO_ROOT, resolved))) return;
  expect(existsSync(path.join(REPO_ROOT, resolved))).toBe(true);
  if (anchor !== undefined && resolved.endsWith('.md')) {
    expect([...anchors(read(resolved))]).toContain(anchor);
  }
});
