/**
 * Aligned tables and the short forms of values in them. Cells come from registries and clusters,
 * so control characters are escaped: a tag or an annotation must not be able to move the cursor.
 */
import { CONTROL_CHARACTERS } from '../lib/deployer-contract';

export interface Column {
  readonly header: string;
  /** @default 'left' */
  readonly align?: 'left' | 'right';
}

const CONTROLS = new RegExp(CONTROL_CHARACTERS.source, 'g');

/** A cell as printed: control characters as `\uXXXX`. */
export function cell(text: string): string {
  return text.replace(CONTROLS, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** Width in code points (an emoji counts once, as a terminal mostly draws it). */
const width = (text: string): number => [...text].length;

/**
 * Columns separated by two spaces, padded to their widest cell, no trailing spaces, a newline
 * after every line. With no rows, the header alone.
 */
export function formatTable(
  columns: readonly Column[],
  rows: readonly (readonly string[])[],
): string {
  const cells = [columns.map((c) => cell(c.header)), ...rows.map((row) => row.map(cell))];
  const widths = columns.map((_, i) => Math.max(...cells.map((row) => width(row[i] ?? ''))));
  return cells
    .map((row) =>
      columns
        .map((column, i) => {
          const text = row[i] ?? '';
          const pad = ' '.repeat((widths[i] ?? 0) - width(text));
          return column.align === 'right' ? pad + text : text + pad;
        })
        .join('  ')
        .trimEnd(),
    )
    .map((line) => `${line}\n`)
    .join('');
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];

/** `512 B`, `1.5 KiB`, `12.3 MiB`, `120 MiB`: three significant digits at most. */
export function formatBytes(bytes: number): string {
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  const shown = value >= 100 ? value.toFixed(0) : value >= 10 ? value.toFixed(1) : value.toFixed(2);
  return `${shown.includes('.') ? shown.replace(/\.?0+$/, '') : shown} ${UNITS[unit]}`;
}

/** Age as kubectl's AGE column shows it: `45s`, `12m`, `3h`, `4d`; the future counts as `0s`. */
export function formatAge(date: Date, now: Date): string {
  const seconds = Math.max(0, Math.floor((now.getTime() - date.getTime()) / 1000));
  if (seconds < 120) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 120) return `${minutes}m`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours}h`;
  return `${Math.floor(hours / 24)}d`;
}

/** `sha256:3b3b3b3b3b3b`: the algorithm and 12 hex, enough to tell images apart on a screen. */
export function shortDigest(digest: string): string {
  const [algorithm, hex] = digest.split(':');
  return hex === undefined ? digest.slice(0, 12) : `${algorithm}:${hex.slice(0, 12)}`;
}
