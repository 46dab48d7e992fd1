/**
 * How `ship` talks to people and scripts: results on stdout (aligned tables, or one JSON document
 * with `--json`), everything else on stderr (progress, warnings, errors), and exit codes that say
 * which of the three happened.
 */

/** The documented exit codes: docs/cli.md lists them. */
export const EXIT = {
  /** Done; a read-only command found what it was asked about. */
  ok: 0,
  /** A failure: an error (the message says which value and the fix), a failed rollout, a refusal. */
  failure: 1,
  /** The command line cannot be understood: unknown command or option, missing argument. */
  usage: 2,
} as const;

/** Where output goes; tests pass buffers, bin/ship.js the process's streams. */
export interface CliIo {
  readonly stdout: { write(text: string): unknown };
  readonly stderr: { write(text: string): unknown };
  /** Progress is drawn only on a terminal: a log file or a pipe gets no carriage returns. */
  readonly stderrIsTTY: boolean;
}

/** The command line is wrong; exit 2 with the message and a pointer to `--help`. */
export class UsageError extends Error {
  constructor(
    message: string,
    /** The command whose help to point at; undefined for `ship --help`. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A failure the message fully explains (no stack trace is printed); exit 1. */
export class ShipError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ShipError';
  }
}

/** Progress on one line of stderr, redrawn in place; silent when stderr is not a terminal. */
export class Progress {
  private shown = false;

  constructor(
    private readonly io: CliIo,
    private readonly enabled: boolean,
  ) {}

  /** Replaces the progress line. */
  update(text: string): void {
    if (!this.enabled || !this.io.stderrIsTTY) return;
    // \x1b[2K clears the line: a shorter text must not leave the end of a longer one.
    this.io.stderr.write(`\r\x1b[2K${text}`);
    this.shown = true;
  }

  /** Clears the progress line, before anything else is written. */
  done(): void {
    if (!this.shown) return;
    this.io.stderr.write('\r\x1b[2K');
    this.shown = false;
  }
}

/** JSON for scripts: stable key order as built, two-space indent, one trailing newline. */
export function formatJson(value: unknown): string {
  return `${JSON.stringify(value, (_key, v: unknown) => (v === undefined ? null : v), 2)}\n`;
}
