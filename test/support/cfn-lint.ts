import { spawnSync } from 'node:child_process';

/**
 * Runs the real cfn-lint over templates and returns its error and warning lines (informational
 * findings aside): CI fails on either, as cfn-lint exits non-zero for both. Throws if cfn-lint
 * cannot run: a missing linter is no pass.
 */
export function cfnLintFindings(templates: readonly string[]): string[] {
  if (templates.length === 0) throw new Error('cfnLintFindings: no templates given');
  const lint = spawnSync('cfn-lint', ['--format', 'parseable', '--', ...templates], {
    encoding: 'utf8',
  });
  if (lint.error !== undefined || lint.status === null) {
    throw new Error(
      `cfn-lint could not run (${lint.error?.message ?? `signal ${lint.signal}`}): it comes with this kind of machine (pip install cfn-lint).`,
    );
  }
  // Exit status is a bit field: 2 errors, 4 warnings, 8 informational; 1 is a crash.
  if ((lint.status & 1) !== 0) throw new Error(`cfn-lint failed: ${lint.stderr}`);
  // Parseable lines: file:line:col:endLine:endCol:RULE:message; errors start with E, warnings W.
  return lint.stdout.split('\n').filter((line) => /:[EW]\d{4}:/.test(line));
}
