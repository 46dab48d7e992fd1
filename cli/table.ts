/**
 * Aligned tables, and the short forms of the values in them. Cells come from registries and
 * clusters, so control characters are escaped: a tag or an annotation must not be able to move
 * the cursor, clear the screen or end a line.
 */
import { CONTROL_CHARACTERS } from '../lib/deployer-contract';

export interface Column {
  /** Printed as given: upper-case, as kubectl's headers (`REVISION`, `CHANGE-CAUSE`). */
  readonly header: string;
  /** @default 'left' - padded on the right; 'right' pads on the left (numbers, sizes, ages) */
  readonly align?: 'left' | 'right';
}

const CONTROLS = new RegExp(CONTROL_CHARACTERS.source, 'g');

/**
 * A value as a terminal may print it: every character of lib/deployer-contract.ts
 * CONTROL_CHARACTERS (C0, DEL, C1, U+2028/U+2029) as `\uXXXX`, as quoteValue escapes them, but
 * without quotes.
 */
export function printable(text: string): string {
  return text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * Display width in code points: an astral character (most emoji) is one, not two UTF-16 units.
 * East Asian wide characters and combining marks are not measured as a terminal draws them.
 */
const width = (text: string): number => [...text].length;

/**
 * Columns two spaces apart, each as wide as its widest cell (escaped first, so the width is of
 * what is printed), no spaces at the end of a line, a newline after every line; with no rows,
 * the header line alone. Every row has one cell per column: anything else is a bug in the
 * caller, and throws.
 */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
): string {
  rows.forEach((row, index) => {
    if (row.length !== columns.length) {
      throw new Error(
        `formatTable: row ${index} has ${row.length} cells for ${columns.length} columns ` +
          `(${columns.map((c) => c.header).join(', ')}); give one cell per column ('-' for none).`,
      );
    }
  });
  const lines = [columns.map((c) => c.header), ...rows].map((row) => row.map(printable));
  const widths = columns.map((_, i) => Math.max(...lines.map((line) => width(line[i]!))));
  return lines
    .map((line) => {
      const padded = line.map((text, i) => {
        const pad = ' '.repeat(widths[i]! - width(text));
        return columns[i]!.align === 'right' ? pad + text : text + pad;
      });
      return `${padded.join('  ').replace(/ +$/, '')}\n`;
    })
    .join('');
}

const BYTE_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;

/** Three significant digits, trailing zeros of the fraction dropped: `1.5`, `12.3`, `120`. */
function threeDigits(value: number): string {
  const fixed = value.toFixed(value >= 100 ? 0 : value >= 10 ? 1 : 2);
  return fixed.includes('.') ? fixed.replace(/\.?0+$/, '') : fixed;
}

/**
 * Binary units, three significant digits: `512 B`, `1.5 KiB`, `12.3 MiB`, `120 MiB`, `3 GiB`. A
 * value that rounds to 1024 of a unit is shown as 1 of the next (`1 MiB`, not `1024 KiB`).
 */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) {
    throw new RangeError(`formatBytes: ${bytes} is not a size in bytes (a finite number >= 0).`);
  }
  if (Math.round(bytes) < 1024) return `${Math.round(bytes)} B`;
  let value = bytes;
  let unit = 0;
  while (unit < BYTE_UNITS.length - 1 && Number(threeDigits(value)) >= 1024) {
    value /= 1024;
    unit += 1;
  }
  return `${threeDigits(value)} ${BYTE_UNITS[unit]}`;
}

/**
 * How long ago `date` was, as kubectl's AGE column says it (apimachinery's
 * duration.HumanDuration, which `kubectl get` uses): seconds below 2 minutes, then minutes with
 * seconds below 10 minutes, minutes below 3 hours, hours with minutes below 8 hours, hours below
 * 2 days, days with hours below 8 days, days below 2 years, then years with days below 8 years:
 * `45s`, `5m30s`, `12m`, `3h`, `7h20m`, `30h`, `4d`, `4d6h`, `300d`, `3y45d`, `9y`. Up to 2 s in
 * the future is clock skew (`0s`); further is `<invalid>`, and an invalid date `<unknown>`.
 */
export function formatAge(date: Date, now: Date): string {
  const ms = now.getTime() - date.getTime();
  if (Number.isNaN(ms)) return '<unknown>';
  const seconds = Math.trunc(ms / 1000);
  if (seconds < -1) return '<invalid>';
  if (seconds < 0) return '0s';
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  const both = (big: number, bigUnit: string, small: number, smallUnit: string): string =>
    small === 0 ? `${big}${bigUnit}` : `${big}${bigUnit}${small}${smallUnit}`;
  if (minutes < 10) return both(minutes, 'm', seconds % 60, 's');
  if (minutes < 180) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 8) return both(hours, 'h', minutes % 60, 'm');
  if (hours < 48) return `${hours}h`;
  const days = Math.floor(hours / 24);
  if (hours < 24 * 8) return both(days, 'd', hours % 24, 'h');
  if (hours < 24 * 365 * 2) return `${days}d`;
  const years = Math.floor(days / 365);
  if (hours < 24 * 365 * 8) return both(years, 'y', days % 365, 'd');
  return `${years}y`;
}

/** How many hex characters tell images and commits apart on a screen (as git's and Docker's). */
const SHORT = 12;

/**
 * `sha256:3b3b3b3b3b3b`: the algorithm and 12 hex. A value that is not `<algorithm>:<hex>` is
 * returned whole: a table must not hide what it was given.
 */
export function shortDigest(digest: string): string {
  const match = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([0-9a-f]{12,})$/.exec(digest);
  return match === null ? digest : `${match[1]}:${match[2]!.slice(0, SHORT)}`;
}

/** The 12-hex commit tag of a 40-hex commit; any other value whole. */
export function shortCommit(commit: string): string {
  return /^[0-9a-f]{40}$/.test(commit) ? commit.slice(0, SHORT) : commit;
}
