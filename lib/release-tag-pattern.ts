/**
 * Can a release tag pattern match a tag that builds make? Decided exactly, not by examples.
 *
 * A pattern is a glob where only `*` is special (ECR's tag wildcard). The tags builds make
 * (core/image-tags.js) form regular languages:
 * - commit tags: 12 lowercase hex;
 * - pull-request tags: `pr-<n>-<sha7>`, n a positive integer without leading zero;
 * - branch tags of the build branches: `<branch part>-<sha7>-<build number>`, the branch part
 *   being the branch name in Docker's tag alphabet;
 * - branch tags of ANY branch, with the `branch-` prefix image-tags.js falls back to when the
 *   plain form would read as a release: `branch-<part>-<sha7>-<n>` (or `branch-<sha7>-<n>` when
 *   the part is empty), where the part is what sanitizing a git branch name can give: letters,
 *   digits and `_.-`, not starting with `.` or `-`, no `--` (runs collapse), no `..` (git forbids
 *   it), not ending with `-` (trimmed before the suffix).
 * Each language is a small automaton; the glob is another. Their product is searched breadth
 * first, so the first accepted pair gives the SHORTEST common tag: when it is longer than the
 * 128 characters a tag may have, no real tag is matched.
 */

/** Docker's tag alphabet, which ECR wildcards and every tag above are drawn from. */
const ALPHABET = [...'0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_.-'] as const;
const HEX = '0123456789abcdef';
const DIGITS = '0123456789';
const NONZERO = '123456789';
const WORD = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_';
/** Docker's limit on a tag's length. */
const MAX_TAG_LENGTH = 128;
const SHA7 = 7;
const COMMIT_TAG_LENGTH = 12;

/** A nondeterministic automaton without empty moves. */
class Automaton {
  private readonly edges: [string, number][][] = [];
  public readonly accepting = new Set<number>();
  public readonly start = this.state();

  public state(): number {
    this.edges.push([]);
    return this.edges.length - 1;
  }

  public edge(from: number, chars: string, to: number): void {
    this.edges[from]!.push([chars, to]);
  }

  /** A new state reached from `from` by the literal text. */
  public literal(from: number, text: string): number {
    let at = from;
    for (const char of text) {
      const next = this.state();
      this.edge(at, char, next);
      at = next;
    }
    return at;
  }

  public repeat(from: number, chars: string, count: number): number {
    let at = from;
    for (let i = 0; i < count; i += 1) {
      const next = this.state();
      this.edge(at, chars, next);
      at = next;
    }
    return at;
  }

  /** A positive integer without leading zero. */
  public number(from: number): number {
    const at = this.state();
    this.edge(from, NONZERO, at);
    this.edge(at, DIGITS, at);
    return at;
  }

  /** `-<sha7>-<n>`, accepted at its end. */
  public branchSuffix(from: number): void {
    const sha = this.repeat(this.literal(from, '-'), HEX, SHA7);
    this.accepting.add(this.number(this.literal(sha, '-')));
  }

  public next(state: number, char: string): number[] {
    return this.edges[state]!.filter(([chars]) => chars.includes(char)).map(([, to]) => to);
  }
}

function commitTags(): Automaton {
  const a = new Automaton();
  a.accepting.add(a.repeat(a.start, HEX, COMMIT_TAG_LENGTH));
  return a;
}

function pullRequestTags(): Automaton {
  const a = new Automaton();
  const number = a.number(a.literal(a.start, 'pr-'));
  a.accepting.add(a.repeat(a.literal(number, '-'), HEX, SHA7));
  return a;
}

/** `<part>-<sha7>-<n>` for one branch part. */
function branchTags(part: string): Automaton {
  const a = new Automaton();
  a.branchSuffix(a.literal(a.start, part));
  return a;
}

/** `branch[-<part>]-<sha7>-<n>` for every part sanitizing a branch name can give. */
function prefixedBranchTags(): Automaton {
  const a = new Automaton();
  const prefix = a.literal(a.start, 'branch');
  a.branchSuffix(prefix);
  // The part: `word` ends on a letter, digit or `_`, `dot` on `.`, `dash` on `-`.
  const word = a.state();
  const dot = a.state();
  const dash = a.state();
  const first = a.literal(prefix, '-');
  a.edge(first, WORD, word);
  for (const from of [word, dot, dash]) a.edge(from, WORD, word);
  for (const from of [word, dash]) a.edge(from, '.', dot);
  for (const from of [word, dot]) a.edge(from, '-', dash);
  // The part never ends with `-`: the suffix follows a letter, digit, `_` or `.`.
  a.branchSuffix(word);
  a.branchSuffix(dot);
  return a;
}

/**
 * What image-tags.js makes of a branch name before the suffix (sanitizeTag, then the trailing
 * `-` trimmed; an empty part becomes `branch`). Long names are cut to fit 128 characters; the
 * build branches a configuration names are short enough for this not to matter.
 */
export function branchTagPart(branch: string): string {
  let out = '';
  for (const char of branch) {
    out += char === '+' ? '_' : /^[A-Za-z0-9_.-]$/.test(char) ? char : '-';
  }
  const part = out
    .replace(/-{2,}/g, '-')
    .replace(/^[.-]+/, '')
    .replace(/-+$/, '');
  return part === '' ? 'branch' : part;
}

/** The glob's positions that can be reached without reading: each `*` may match nothing. */
function closure(pattern: string, position: number): number[] {
  const positions = [position];
  let at = position;
  while (pattern[at] === '*') {
    at += 1;
    positions.push(at);
  }
  return positions;
}

/** The shortest tag both the glob and the automaton accept, or undefined. */
function shortestCommonTag(pattern: string, language: Automaton): string | undefined {
  const key = (position: number, state: number): string => `${position}:${state}`;
  interface Step {
    readonly from: string | undefined;
    readonly char: string;
  }
  const seen = new Map<string, Step>();
  let frontier: [number, number][] = [[0, language.start]];
  seen.set(key(0, language.start), { from: undefined, char: '' });
  while (frontier.length > 0) {
    const next: [number, number][] = [];
    for (const [position, state] of frontier) {
      const positions = closure(pattern, position);
      if (positions.includes(pattern.length) && language.accepting.has(state)) {
        let tag = '';
        for (let at: string | undefined = key(position, state); at !== undefined;) {
          const step: Step = seen.get(at)!;
          tag = step.char + tag;
          at = step.from;
        }
        return tag;
      }
      for (const char of ALPHABET) {
        const targets = language.next(state, char);
        if (targets.length === 0) continue;
        for (const at of positions) {
          const token = pattern[at];
          const moved = token === '*' ? at : token === char ? at + 1 : undefined;
          if (moved === undefined) continue;
          for (const target of targets) {
            const k = key(moved, target);
            if (seen.has(k)) continue;
            seen.set(k, { from: key(position, state), char });
            next.push([moved, target]);
          }
        }
      }
    }
    frontier = next;
  }
  return undefined;
}

/** A tag builds make that a release pattern also matches. */
export interface BuildTagMatch {
  readonly kind: 'commit' | 'pull-request' | 'branch';
  /** The shortest such tag, e.g. `000000000000` for `0*`. */
  readonly tag: string;
  /** The build branch whose plain branch tags match, if that is the match. */
  readonly branch?: string;
}

/**
 * The first kind of build tag (commit, pull-request, branch) that `pattern` can match, with the
 * shortest such tag; undefined when it can match none of them.
 * @param buildBranches the branches whose pushes build (their plain branch tags must not match)
 */
export function buildTagMatchedBy(
  pattern: string,
  buildBranches: readonly string[],
): BuildTagMatch | undefined {
  const languages: [Omit<BuildTagMatch, 'tag'>, Automaton][] = [
    [{ kind: 'commit' }, commitTags()],
    [{ kind: 'pull-request' }, pullRequestTags()],
    ...buildBranches.map((branch): [Omit<BuildTagMatch, 'tag'>, Automaton] => [
      { kind: 'branch', branch },
      branchTags(branchTagPart(branch)),
    ]),
    [{ kind: 'branch' }, prefixedBranchTags()],
  ];
  for (const [what, language] of languages) {
    const tag = shortestCommonTag(pattern, language);
    if (tag !== undefined && tag.length <= MAX_TAG_LENGTH) return { ...what, tag };
  }
  return undefined;
}
