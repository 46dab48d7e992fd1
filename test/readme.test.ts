import { readFileSync } from 'node:fs';
import * as path from 'node:path';
import { CONTEXT_KEYS } from '../lib/config';
import { REPO_ROOT } from './support/app';

const readme = readFileSync(path.join(REPO_ROOT, 'README.md'), 'utf8');

function configurationTableKeys(): string[] {
  const section = readme.split('\n## Configuration\n')[1]?.split('\n## ')[0];
  if (section === undefined) throw new Error('README.md has no "## Configuration" section');
  return [...section.matchAll(/^\| `([A-Za-z]+)`\s*\|/gm)].map((m) => m[1]!);
}

test('the configuration table lists exactly the context keys the app reads', () => {
  expect(configurationTableKeys().sort()).toEqual([...CONTEXT_KEYS].sort());
});

test.each(['npm ci', 'npm test', 'npx cdk synth', 'npx cdk deploy', 'npm run bench'])(
  'the README gives the command `%s`',
  (command) => {
    expect(readme).toContain(command);
  },
);

test('the README diagram is mermaid', () => {
  expect(readme).toMatch(/```mermaid\nflowchart/);
});
