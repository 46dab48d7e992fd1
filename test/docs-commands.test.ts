/**
 * Every shell example in README.md and docs/*.md, parsed from the Markdown (docs/testing.md,
 * "Examples in the documentation", describes the marks): `sh` blocks run here; blocks that need
 * AWS, a cluster, root or minutes are checked for their syntax and for commands and options the
 * tools they call actually know.
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, mkdirSync } from 'node:fs';
import { accessSync, constants } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { CONTEXT_KEYS } from '../lib/config';
import { REPO_ROOT } from './support/app';
import { startRegistry, type RunningRegistry } from './support/registry';
import { runShipCaptured } from './support/ship';

jest.setTimeout(120_000);

/** Marks a `sh` block may carry, and whether the block runs here. */
const MARKS: Record<string, string> = {
  aws: 'needs an AWS account',
  cluster: 'needs a Kubernetes cluster',
  registry:
    'needs the in-cluster registry at 127.0.0.1:30500, user ship (runs against the real one)',
  install: 'installs Debian packages (root, network)',
  self: 'runs this test suite itself (npm ci, npm test)',
  slow: 'takes minutes',
};

/** Programs an example may use that this machine does not have, and why that is fine. */
const NOT_ON_THIS_MACHINE: Record<string, string> = {
  docker: "there is no Docker engine here; the seed's `docker login` runs on the reader's machine",
};

/** Stacks the app synthesizes (`npx cdk deploy <stack>`). */
const STACKS = ['Registry', 'Builds', 'Deployer', 'Cluster'].map((s) => `DockerCoins-${s}`);

interface Block {
  readonly file: string;
  readonly line: number;
  readonly marks: readonly string[];
  readonly text: string;
}

function markdownFiles(): string[] {
  const docs = readdirSync(path.join(REPO_ROOT, 'docs'))
    .filter((name) => name.endsWith('.md'))
    .map((name) => `docs/${name}`);
  return ['README.md', ...docs.sort()];
}

/** The fenced blocks whose info string starts with `sh`, `bash` or `shell` (indented ones too). */
export function shellBlocks(file: string, markdown: string): Block[] {
  const blocks: Block[] = [];
  const lines = markdown.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const open = /^( *)(`{3,})(\S*)(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const [, indent, fence, lang, rest] = open;
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      if (lines[j]!.trimStart().startsWith(fence!) && lines[j]!.trim() === fence) break;
      body.push(lines[j]!.startsWith(indent!) ? lines[j]!.slice(indent!.length) : lines[j]!);
    }
    if (['sh', 'bash', 'shell'].includes(lang!)) {
      blocks.push({
        file,
        line: i + 1,
        marks: rest!.trim().split(/\s+/).filter(Boolean),
        text: body.join('\n'),
      });
    }
    i = j;
  }
  return blocks;
}

const PLACEHOLDER = /<[A-Za-z0-9][^<>\n]*>/g;

/** A block with each `<placeholder>` made one word, as the reader would type a value. */
function withPlaceholders(text: string): string {
  return text.replace(PLACEHOLDER, 'PLACEHOLDER');
}

const KEYWORDS = new Set([
  'if',
  'then',
  'else',
  'elif',
  'fi',
  'while',
  'until',
  'do',
  'done',
  '!',
  '{',
  '}',
  '(',
  ')',
]);

/**
 * Splits a script into simple commands (words, quotes removed), at pipes, `&&`, `||`, `;`, `&`
 * and line ends; `$(…)` is split out as scripts of its own. Redirections are dropped; `NAME=value`
 * assignments are remembered and `$NAME` substituted in later words. Enough for our examples;
 * `bash -n` checks the syntax itself.
 */
export function simpleCommands(script: string, vars: Map<string, string> = new Map()): string[][] {
  const commands: string[][] = [];
  let words: string[] = [];
  let word = '';
  let inWord = false;
  let dropNext = false;
  const endWord = (): void => {
    if (inWord) {
      if (dropNext) dropNext = false;
      else words.push(word);
    }
    word = '';
    inWord = false;
  };
  const endCommand = (): void => {
    endWord();
    if (words.length > 0) commands.push(...finish(words, vars));
    words = [];
  };
  const variable = (s: string, i: number): [string, number] => {
    const m = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(s.slice(i));
    if (!m) return ['$', i + 1];
    const name = m[1] ?? m[2]!;
    return [vars.get(name) ?? `$${name}`, i + m[0].length];
  };
  const s = script.replace(/\\\n/g, ' ');
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '$' && s[i + 1] === '(') {
      const end = matchingParen(s, i + 1);
      commands.push(...simpleCommands(s.slice(i + 2, end), vars));
      word += 'SUBST';
      inWord = true;
      i = end + 1;
    } else if (c === '$') {
      const [value, next] = variable(s, i);
      word += value;
      inWord = true;
      i = next;
    } else if (c === "'") {
      const end = s.indexOf("'", i + 1);
      word += s.slice(i + 1, end);
      inWord = true;
      i = end + 1;
    } else if (c === '"') {
      i++;
      inWord = true;
      while (s[i] !== '"') {
        if (s[i] === '\\') {
          word += s[i + 1];
          i += 2;
        } else if (s[i] === '$' && s[i + 1] === '(') {
          const end = matchingParen(s, i + 1);
          commands.push(...simpleCommands(s.slice(i + 2, end), vars));
          word += 'SUBST';
          i = end + 1;
        } else if (s[i] === '$') {
          const [value, next] = variable(s, i);
          word += value;
          i = next;
        } else word += s[i++];
      }
      i++;
    } else if (c === '#' && !inWord) {
      while (i < s.length && s[i] !== '\n') i++;
    } else if (c === '\n' || c === ';' || c === '|' || c === '&') {
      if (c === '&' && s[i + 1] === '>') {
        endWord();
        dropNext = true;
        i += 2;
        continue;
      }
      endCommand();
      i++;
    } else if (c === '<' || c === '>') {
      if (/^[0-9]+$/.test(word)) {
        word = '';
        inWord = false;
      } else endWord();
      while (s[i] === '<' || s[i] === '>') i++;
      if (s[i] === '&') i++;
      dropNext = true;
      while (s[i] === ' ') i++;
    } else if (c === ' ' || c === '\t') {
      endWord();
      i++;
    } else {
      word += c;
      inWord = true;
      i++;
    }
  }
  endCommand();
  return commands;
}

function matchingParen(s: string, open: number): number {
  let depth = 0;
  let quote: string | undefined;
  for (let i = open; i < s.length; i++) {
    const c = s[i]!;
    if (quote !== undefined) {
      if (c === quote) quote = undefined;
    } else if (c === "'" || c === '"') quote = c;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i;
  }
  throw new Error(`unbalanced $( in ${JSON.stringify(s.slice(open - 1, open + 40))}`);
}

/** Drops shell keywords, function heads and assignments (remembered); skips what checks nothing. */
function finish(words: string[], vars: Map<string, string>): string[][] {
  let w = [...words];
  for (;;) {
    if (KEYWORDS.has(w[0]!)) w = w.slice(1);
    else if (w[0]?.endsWith('()')) w = w.slice(1);
    else if (w[0] === 'export' || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w[0] ?? '')) {
      const rest = w[0] === 'export' ? w.slice(1) : w;
      let k = 0;
      while (k < rest.length && /^[A-Za-z_][A-Za-z0-9_]*=/.test(rest[k]!)) {
        const [name, ...value] = rest[k]!.split('=');
        vars.set(name!, value.join('='));
        k++;
      }
      w = w[0] === 'export' ? [] : rest.slice(k);
    } else break;
    if (w.length === 0) return [];
  }
  while (w.length > 0 && KEYWORDS.has(w[w.length - 1]!)) w = w.slice(0, -1);
  if (['for', '[', 'test', 'true', 'false'].includes(w[0]!)) return [];
  return w.length > 0 ? [w] : [];
}

/** A character and a backspace: how man pages (aws help) print bold text. */
const OVERSTRIKE = new RegExp(`.${String.fromCharCode(8)}`, 'g');

/** Runs a tool (asynchronously, so the checks of several blocks overlap); output as plain text. */
function run(command: string, args: readonly string[]): Promise<{ status: number; out: string }> {
  return new Promise((resolve) => {
    const child = spawn(command, args, {
      cwd: REPO_ROOT,
      env: { ...process.env, PAGER: 'cat', MANPAGER: 'cat' },
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (out += d.toString()));
    // aws help renders bold text by overstriking (c\bc): keep the plain text.
    child.on('close', (status) =>
      resolve({ status: status ?? 1, out: out.replace(OVERSTRIKE, '') }),
    );
  });
}

const cache = new Map<string, Promise<{ status: number; out: string }>>();
function cached(
  command: string,
  args: readonly string[],
): Promise<{ status: number; out: string }> {
  const key = [command, ...args].join('\0');
  if (!cache.has(key)) cache.set(key, run(command, args));
  return cache.get(key)!;
}

/** True when a help text names the option itself (`--all`, not `--al`; `--name`, not `--names`). */
function mentions(help: string, option: string): boolean {
  return new RegExp(`${option}(?![\\w-])`).test(help);
}

function optionsOf(words: readonly string[]): string[] {
  return words.filter((w) => w.startsWith('--') && w !== '--').map((w) => w.split('=')[0]!);
}

/** What is wrong with one command; nothing when a tool that would run it knows it. */
export async function problemsOf(
  words: readonly string[],
  marks: readonly string[],
): Promise<string[]> {
  const [program, ...args] = words;
  const shown = words.join(' ');
  if (program === 'sudo') return problemsOf(args, marks);
  if (program === 'npx') {
    const [tool, ...rest] = args.filter((a) => a !== '--no-install');
    if (tool === 'cdk') return await cdkProblems(rest, shown);
    if (tool === 'ship') return shipProblems(rest, shown);
    return [`${shown}: npx ${tool} is not a tool of this project`];
  }
  if (program === 'kubectl') {
    const problems: string[] = [];
    const help = await cached('kubectl', [...args, '--help']);
    if (help.status !== 0) problems.push(`${shown}: kubectl refuses it: ${help.out.trim()}`);
    const k = args.indexOf('-k');
    if (k >= 0) {
      const rendered = await cached('kubectl', ['kustomize', args[k + 1]!]);
      if (rendered.status !== 0)
        problems.push(`${shown}: kubectl kustomize ${args[k + 1]} fails: ${rendered.out}`);
    }
    return problems;
  }
  if (program === 'aws') return await awsProblems(args, shown);
  if (program === 'npm') {
    const scripts = (
      JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
        scripts: Record<string, string>;
      }
    ).scripts;
    const name = args[0] === 'run' ? args[1] : args[0] === 'test' ? 'test' : undefined;
    if (args[0] === 'ci' || args[0] === 'install') return [];
    return name !== undefined && name in scripts
      ? []
      : [`${shown}: package.json has no script ${name}`];
  }
  if (program === 'apt-get') {
    if (!marks.includes('install'))
      return [`${shown}: installs packages, so mark the block \`sh install\``];
    return [];
  }
  if (program!.includes('/')) {
    try {
      accessSync(path.join(REPO_ROOT, program!), constants.X_OK);
      return [];
    } catch {
      return [`${shown}: ${program} is not an executable file of this repository`];
    }
  }
  if (program! in NOT_ON_THIS_MACHINE) return [];
  const found = spawnSync('bash', ['-c', 'command -v "$1"', 'bash', program!]).status === 0;
  return found ? [] : [`${shown}: ${program} is not on PATH (nor listed in NOT_ON_THIS_MACHINE)`];
}

async function cdkProblems(args: readonly string[], shown: string): Promise<string[]> {
  const [command, ...rest] = args;
  const problems: string[] = [];
  const help = await cached(path.join(REPO_ROOT, 'node_modules', '.bin', 'cdk'), [
    command!,
    '--help',
  ]);
  // The CDK CLI prints its general help, exit 0, for a command it does not know.
  if (help.status !== 0 || !help.out.includes(`cdk ${command}`)) {
    return [`${shown}: npx cdk ${command} --help fails: ${help.out.slice(0, 300)}`];
  }
  for (const option of optionsOf(rest)) {
    if (!mentions(help.out, option)) {
      problems.push(`${shown}: npx cdk ${command} has no option ${option}`);
    }
  }
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '-c' || rest[i] === '--context') {
      const key = rest[++i]!.split('=')[0]!;
      if (!(CONTEXT_KEYS as string[]).includes(key))
        problems.push(`${shown}: ${key} is not a configuration key`);
    } else if (rest[i]!.startsWith('DockerCoins-') && !STACKS.includes(rest[i]!)) {
      problems.push(`${shown}: the app has no stack ${rest[i]}`);
    }
  }
  return problems;
}

async function awsProblems(args: readonly string[], shown: string): Promise<string[]> {
  const [service, operation] = args;
  const help = await cached('aws', [service!, operation!, 'help']);
  if (help.status !== 0)
    return [`${shown}: the AWS CLI has no aws ${service} ${operation}: ${help.out.slice(0, 300)}`];
  const global = await cached('aws', ['help']);
  return optionsOf(args)
    .filter((option) => !mentions(help.out, option) && !mentions(global.out, option))
    .map((option) => `${shown}: aws ${service} ${operation} takes no option ${option}`);
}

let shipOptions: Promise<Set<string>> | undefined;
/** Options that take a value, from every command's help (any command accepts the global ones). */
function shipValueOptions(): Promise<Set<string>> {
  shipOptions ??= (async () => {
    const usage = (await runShipCaptured(['--help'])).stdout;
    const commands = [...usage.matchAll(/^ {2}([a-z]+) /gm)].map((m) => m[1]!);
    const helps = await Promise.all(commands.map((c) => runShipCaptured([c, '--help'])));
    return new Set(
      helps.flatMap(({ stdout }) =>
        [...stdout.matchAll(/^ {2}(?:-(\w), )?--([\w-]+) </gm)].flatMap((m) =>
          m[1] === undefined ? [`--${m[2]}`] : [`-${m[1]}`, `--${m[2]}`],
        ),
      ),
    );
  })();
  return shipOptions;
}

/**
 * `ship`'s own parser, asked with --help appended: it refuses an unknown command or option before
 * it prints help. The help's usage line and option list then give the number of arguments.
 */
async function shipProblems(args: readonly string[], shown: string): Promise<string[]> {
  const result = await runShipCaptured([...args, '--help']);
  if (result.status !== 0) return [`${shown}: ship refuses it: ${result.stderr.trim()}`];
  const usage = /^Usage: ship \S+(.*)$/m.exec(result.stdout)?.[1] ?? '';
  const allowed = usage.replace(/\[--[^\]]*\]|\[options\]/g, '').match(/<[^>]+>|\[[^\]]+\]/g) ?? [];
  const takesValue = await shipValueOptions();
  const positionals: string[] = [];
  for (let i = 1; i < args.length; i++) {
    if (takesValue.has(args[i]!)) i++;
    else if (!args[i]!.startsWith('-')) positionals.push(args[i]!);
  }
  return positionals.length <= allowed.length
    ? []
    : [`${shown}: ship ${args[0]} takes ${allowed.length} arguments (${usage.trim()})`];
}

/** The Debian packages the project's own set-up (`npm test`'s pretest) installs when missing. */
function ciPackages(): string[] {
  const setup = readFileSync(path.join(REPO_ROOT, 'scripts', 'ensure-test-tools.sh'), 'utf8');
  return [...setup.matchAll(/^ {2}'[^|']+\|([^|']+)\|/gm)].map((m) => m[1]!).sort();
}

const blocks = markdownFiles().flatMap((file) =>
  shellBlocks(file, readFileSync(path.join(REPO_ROOT, file), 'utf8')),
);
const runsHere = (b: Block): boolean => b.marks.length === 0 || b.marks.join(' ') === 'registry';
const runnable = blocks.filter(runsHere);
const checked = blocks.filter((b) => !runsHere(b));
const name = (b: Block): string => `${b.file}:${b.line} (${b.marks.join(' ') || 'runs'})`;

test('the parser finds the examples: README.md runs some, and every kind of command is checked', () => {
  expect(runnable.some((b) => b.file === 'README.md')).toBe(true);
  const programs = new Set(
    checked
      .flatMap((b) => simpleCommands(withPlaceholders(b.text)))
      .map((w) => (w[0] === 'npx' ? w.slice(0, 2).join(' ') : w[0])),
  );
  expect([...programs]).toEqual(
    expect.arrayContaining(['npx cdk', 'npx ship', 'kubectl', 'aws', 'npm']),
  );
});

test.each(blocks.map((b) => [name(b), b] as const))(
  '%s is marked with known words',
  (_n, block) => {
    expect(block.marks.filter((m) => !(m in MARKS))).toEqual([]);
    expect(block.text.trim()).not.toBe('');
  },
);

test.concurrent.each(checked.map((b) => [name(b), b] as const))(
  '%s: bash -n accepts it, and the tools know every command and option',
  async (_n, block) => {
    const script = withPlaceholders(block.text);
    const syntax = spawnSync('bash', ['-n'], { input: script, encoding: 'utf8' });
    expect(syntax.stderr).toBe('');
    expect(syntax.status).toBe(0);
    const commands = simpleCommands(script);
    expect(commands.length).toBeGreaterThan(0);
    const functions = [...script.matchAll(/^\s*([A-Za-z_][\w-]*)\(\)/gm)].map((m) => m[1]!);
    const problems: string[] = [];
    const found = await Promise.all(
      commands
        .filter((words) => !functions.includes(words[0]!))
        .map((words) => problemsOf(words, block.marks)),
    );
    problems.push(...found.flat());
    expect(problems).toEqual([]);
    if (block.marks.includes('install')) {
      const installed = commands
        .filter((w) => w.includes('apt-get') && w.includes('install'))
        .flatMap((w) => w.slice(w.indexOf('install') + 1).filter((a) => !a.startsWith('-')));
      expect(installed.sort()).toEqual(ciPackages());
    }
  },
);

// The checks can fail: each wrong example below is one a reader could be given.
test.each([
  ['npx cdk deploy --all -c clusterNmae=prod', /clusterNmae is not a configuration key/],
  ['npx cdk deploy DockerCoins-Registri', /no stack DockerCoins-Registri/],
  ['npx cdk deploy --al', /no option --al/],
  ['npx cdk deplyo', /npx cdk deplyo --help fails/],
  ['npx ship images hasher --registri http://127.0.0.1:30500', /ship refuses it/],
  ['npx ship deplyo hasher v1.2.0', /ship refuses it/],
  ['npx ship rollback hasher 6e0de7938dda --env main', /ship rollback takes 1 arguments/],
  ['kubectl -n dockercoins get deploy --wide', /kubectl refuses it/],
  ['kubectl apply -k k8s/overlays/nowhere', /kubectl kustomize k8s\/overlays\/nowhere fails/],
  ['aws eks describe-cluster --nmae dockercoins', /takes no option --nmae/],
  ['aws eks describe-clusters --name dockercoins', /has no aws eks describe-clusters/],
  ['npm run benchmark', /no script benchmark/],
  ['k8s/render-all.sh ecr', /not an executable file/],
  ['sudo apt-get install -y buildah', /mark the block `sh install`/],
  ['dockr login', /not on PATH/],
])('a wrong example, %s, is caught', async (command, problem) => {
  const [words] = simpleCommands(command);
  expect((await problemsOf(words!, ['aws'])).join('\n')).toMatch(problem);
});

test('a block bash cannot parse is caught', () => {
  expect(
    spawnSync('bash', ['-n'], { input: 'echo "unclosed\n', encoding: 'utf8' }).status,
  ).not.toBe(0);
});

test.each([
  ['a | b && c; d & e', [['a'], ['b'], ['c'], ['d'], ['e']]],
  ['X=1 Y="two words"\nrun $X "$Y" ${X}', [['run', '1', 'two words', '1']]],
  [
    'Q=$(aws sts get-caller-identity) # note\nkubectl get pods 2>/dev/null <<<"$Q"',
    [
      ['aws', 'sts', 'get-caller-identity'],
      ['kubectl', 'get', 'pods'],
    ],
  ],
  [
    'while x=$(a --b \\\n  --c); do\n  f() { g "$@"; }\ndone',
    [
      ['a', '--b', '--c'],
      ['g', '$@'],
    ],
  ],
  ['for s in a b; do\n  echo "$s" >out.txt\ndone', [['echo', '$s']]],
])('simpleCommands(%j) splits as bash would', (script, expected) => {
  expect(simpleCommands(script)).toEqual(expected);
});

/** A scratch directory that links every top-level entry of the checkout, so outputs land there. */
function scratchCheckout(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'docs-commands-'));
  for (const entry of readdirSync(REPO_ROOT)) {
    if (['cdk.out', '.bench', 'coverage'].includes(entry)) continue;
    symlinkSync(path.join(REPO_ROOT, entry), path.join(dir, entry));
  }
  mkdirSync(path.join(dir, '.home'));
  return dir;
}

function runBlock(
  text: string,
  cwd: string,
  extra: Record<string, string> = {},
): Promise<{ status: number; output: string }> {
  // The scratch checkout links node_modules: `npm ci` there would empty the real one (and the
  // test would run the suite inside itself). Such a block must be marked `sh self`; never run it.
  const reinstall = /(^|[\s;&|(])npm\s+(ci|install|i|test|t|run\s+test)\b/m.exec(text);
  if (reinstall !== null) {
    return Promise.resolve({
      status: 1,
      output: `refused to run "${reinstall[0].trim()}": mark the block \`sh self\` (docs/testing.md)`,
    });
  }
  const env: NodeJS.ProcessEnv = { ...process.env, HOME: path.join(cwd, '.home') };
  for (const key of [
    'AWS_PROFILE',
    'AWS_ACCESS_KEY_ID',
    'AWS_SECRET_ACCESS_KEY',
    'AWS_SESSION_TOKEN',
    'KUBECONFIG',
    'SHIP_REGISTRY_PASSWORD',
  ]) {
    delete env[key];
  }
  Object.assign(env, extra);
  return new Promise((resolve) => {
    const child = spawn('bash', ['-c', `set -euo pipefail\n${text}`], { cwd, env });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    child.on('close', (status) => resolve({ status: status ?? 1, output }));
  });
}

/** Where `sh registry` blocks find the registry the reader forwarded: its address and user. */
const FORWARDED_REGISTRY = '127.0.0.1:30500';
const REGISTRY_USER = { username: 'ship', password: 'a-test-password-for-the-docs' };

// test.concurrent starts before beforeAll hooks run, so the scratch checkout and the registry are
// made on first use.
let scratch: string | undefined;
let registry: Promise<RunningRegistry> | undefined;
afterAll(async () => {
  if (scratch !== undefined) rmSync(scratch, { recursive: true, force: true });
  if (registry !== undefined) await (await registry).stop();
});

test.concurrent.each(runnable.map((b) => [name(b), b] as const))(
  '%s exits 0',
  async (_n, block) => {
    // A checkout of its own: blocks run at once, and two `cdk synth` in one folder would share
    // (and race on) its cdk.out.
    const own = scratchCheckout();
    let text = block.text;
    const env: Record<string, string> = {};
    if (block.marks.includes('registry')) {
      // The real distribution registry with htpasswd auth, in place of the forwarded one.
      registry ??= startRegistry({ users: [REGISTRY_USER] });
      text = text.split(FORWARDED_REGISTRY).join((await registry).host);
      env.SHIP_REGISTRY_PASSWORD = REGISTRY_USER.password;
    }
    const result = await runBlock(text, own, env).finally(() =>
      rmSync(own, { recursive: true, force: true }),
    );
    if (result.status !== 0) {
      throw new Error(`${name(block)} exited ${result.status}:\n${result.output}`);
    }
    expect(result.status).toBe(0);
  },
);

test('a `sh registry` block fails with a wrong password', async () => {
  const block = runnable.find((b) => b.marks.includes('registry'));
  expect(block).toBeDefined();
  registry ??= startRegistry({ users: [REGISTRY_USER] });
  const text = block!.text.split(FORWARDED_REGISTRY).join((await registry).host);
  scratch ??= scratchCheckout();
  const result = await runBlock(text, scratch, { SHIP_REGISTRY_PASSWORD: 'wrong' });
  expect(result.status).not.toBe(0);
});
