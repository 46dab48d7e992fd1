/**
 * `ship tags`: the tags the current git checkout would get, computed by the very functions the
 * buildspec runs (core/image-tags.js), with the app's release tag pattern.
 */
import * as path from 'node:path';
import { TagInputError, classifyTag, computeTags, inputsFromGit } from '../../core/image-tags';
import type { ShipContext } from '../context';
import { EXIT, ShipError, UsageError, formatJson } from '../output';
import { formatTable } from '../table';

/** What each kind of tag means, for the table. */
const MEANING: Record<string, string> = {
  commit: 'immutable: exactly this commit; what branch deploys run',
  release: 'immutable: the release; what release deploys run',
  branch: 'sortable <branch>-<sha7>-<build>: for Flux/Argo CD policies',
  'pull-request': 'immutable: the pull request at this commit; never deployed',
  other: 'not one of ours',
};

export function tagsCommand(
  ctx: ShipContext,
  values: { 'git-dir'?: string; 'build-number'?: string },
): number {
  const pattern = ctx.settings().releaseTagPattern;
  let buildNumber: number | undefined;
  if (values['build-number'] !== undefined) {
    const text = values['build-number'];
    if (!/^[1-9][0-9]{0,15}$/.test(text)) {
      throw new UsageError(
        `--build-number ${JSON.stringify(text)} is not a build number (a positive integer such as 42).`,
        'tags',
      );
    }
    buildNumber = Number(text);
  }
  const dir = path.resolve(ctx.deps.cwd, values['git-dir'] ?? '.');
  let result: ReturnType<typeof computeTags>;
  try {
    result = computeTags({
      ...inputsFromGit(dir),
      releaseTagPattern: pattern,
      ...(buildNumber === undefined ? {} : { buildNumber }),
    });
  } catch (error) {
    if (error instanceof TagInputError) throw new ShipError(error.message);
    throw error;
  }
  if (ctx.options.json) {
    ctx.io.stdout.write(formatJson(result));
    return EXIT.ok;
  }
  for (const note of result.notes) ctx.io.stderr.write(`note: ${note}\n`);
  const ref = result.ref === '' ? 'no branch (detached HEAD)' : result.ref;
  ctx.io.stdout.write(`commit ${result.commit}, ${ref}\n\n`);
  ctx.io.stdout.write(
    formatTable(
      [{ header: 'TAG' }, { header: 'KIND' }, { header: 'MEANING' }],
      result.tags.map((tag) => {
        const kind = classifyTag(tag, pattern);
        return [tag, kind, MEANING[kind] ?? ''];
      }),
    ),
  );
  return EXIT.ok;
}
