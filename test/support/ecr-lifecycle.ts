/**
 * ECR's lifecycle policy evaluator, as the ECR user guide documents it ("Lifecycle policy
 * evaluation rules" and "Examples of lifecycle policies"), for tests that must know which images a
 * policy expires over a long history. Pure: a policy text and a list of images in, the expired
 * images (with the rule that expired each) out. ECR's preview API (and moto, which has none) is
 * not needed.
 *
 * What ECR documents, and what this does:
 * - the policy is validated first (unique priorities, `any` evaluated last, one untagged rule,
 *   `tagged` needs exactly one of tagPrefixList / tagPatternList, at most four `*` per pattern,
 *   countNumber > 0, countUnit only with sinceImagePushed): a policy ECR would refuse throws;
 * - every rule selects its images (tag status, and every list entry matching at least one of the
 *   image's tags: entries are AND) and marks, by push time, the ones beyond its count or age;
 * - rules apply by priority, lowest number first; an image is expired by exactly one or zero
 *   rules, and an image that matches the tag selection of a rule cannot be expired by a rule of
 *   lower priority (a higher number), even if that rule keeps it;
 * - "rules can never mark images that are marked by higher priority rules, but can still identify
 *   them as if they haven't been expired": by default a rule counts every image it selects,
 *   including those a higher-priority rule selected (`view: 'all'`). The examples also read as if
 *   such images were left out of the count (`view: 'unclaimed'`); both agree on every documented
 *   example, so tests of safety properties should hold under both.
 */

export type TagStatus = 'tagged' | 'untagged' | 'any';

export interface LifecycleSelection {
  readonly tagStatus: TagStatus;
  readonly tagPrefixList?: readonly string[];
  readonly tagPatternList?: readonly string[];
  readonly countType: 'imageCountMoreThan' | 'sinceImagePushed';
  readonly countUnit?: 'days';
  readonly countNumber: number;
}

export interface LifecycleRule {
  readonly rulePriority: number;
  readonly description?: string;
  readonly selection: LifecycleSelection;
  readonly action: { readonly type: 'expire' };
}

export interface LifecyclePolicy {
  readonly rules: readonly LifecycleRule[];
}

export interface RegistryImage {
  readonly digest: string;
  /** Empty for an untagged image. */
  readonly tags: readonly string[];
  readonly pushedAt: Date;
}

export interface EvaluateOptions {
  /** When the evaluation runs (sinceImagePushed counts back from it). */
  readonly now: Date;
  /** See the module comment. @default 'all' */
  readonly view?: 'all' | 'unclaimed';
}

export interface Evaluation {
  /** Expired images' digests, each with the priority of the rule that expired it. */
  readonly expired: ReadonlyMap<string, number>;
  /** The images left, newest first. */
  readonly kept: readonly RegistryImage[];
}

/** A policy ECR would refuse (PutLifecyclePolicy's InvalidParameterException). */
export class LifecyclePolicyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LifecyclePolicyError';
  }
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Validates the policy as ECR does and returns its rules by priority. */
export function checkPolicy(policy: LifecyclePolicy): LifecycleRule[] {
  const rules = [...policy.rules].sort((a, b) => a.rulePriority - b.rulePriority);
  if (rules.length === 0) throw new LifecyclePolicyError('a policy needs at least one rule');
  if (rules.length > 50) throw new LifecyclePolicyError('at most 50 rules per policy');
  const priorities = new Set(rules.map((r) => r.rulePriority));
  if (priorities.size !== rules.length) {
    throw new LifecyclePolicyError('rulePriority values must be unique');
  }
  if (rules.filter((r) => r.selection.tagStatus === 'untagged').length > 1) {
    throw new LifecyclePolicyError('only one rule may select untagged images');
  }
  rules.forEach((rule, index) => {
    const { selection, rulePriority } = rule;
    const at = `rule ${rulePriority}`;
    if (!Number.isInteger(rulePriority) || rulePriority < 1) {
      throw new LifecyclePolicyError(`${at}: rulePriority must be a positive integer`);
    }
    if (selection.tagStatus === 'any' && index !== rules.length - 1) {
      throw new LifecyclePolicyError(
        `${at}: a tagStatus "any" rule must have the highest rulePriority`,
      );
    }
    const lists = [selection.tagPrefixList, selection.tagPatternList].filter(
      (list) => list !== undefined,
    );
    if (selection.tagStatus === 'tagged') {
      if (lists.length !== 1 || lists[0]?.length === 0) {
        throw new LifecyclePolicyError(
          `${at}: tagged needs exactly one non-empty tagPrefixList or tagPatternList`,
        );
      }
    } else if (lists.length > 0) {
      throw new LifecyclePolicyError(`${at}: tag lists are only allowed with tagStatus "tagged"`);
    }
    for (const pattern of selection.tagPatternList ?? []) {
      if ((pattern.match(/\*/g) ?? []).length > 4) {
        throw new LifecyclePolicyError(`${at}: "${pattern}" has more than four wildcards`);
      }
    }
    if (!Number.isInteger(selection.countNumber) || selection.countNumber < 1) {
      throw new LifecyclePolicyError(`${at}: countNumber must be a positive integer`);
    }
    if ((selection.countType === 'sinceImagePushed') !== (selection.countUnit === 'days')) {
      throw new LifecyclePolicyError(
        `${at}: countUnit "days" is required with sinceImagePushed and refused otherwise`,
      );
    }
    if (rule.action.type !== 'expire') {
      throw new LifecyclePolicyError(`${at}: the only action evaluated here is expire`);
    }
  });
  return rules;
}

/** ECR tag wildcard: `*` is any run of characters (none included); everything else is literal. */
export function wildcardMatches(pattern: string, tag: string): boolean {
  const body = pattern
    .split('*')
    .map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))
    .join('.*');
  return new RegExp(`^${body}$`).test(tag);
}

/** Whether a rule's tag selection (not its count) takes the image. */
export function selects(selection: LifecycleSelection, image: RegistryImage): boolean {
  const tagged = image.tags.length > 0;
  switch (selection.tagStatus) {
    case 'any':
      return true;
    case 'untagged':
      return !tagged;
    case 'tagged':
      if (!tagged) return false;
      if (selection.tagPrefixList !== undefined) {
        return selection.tagPrefixList.every((prefix) =>
          image.tags.some((tag) => tag.startsWith(prefix)),
        );
      }
      return (selection.tagPatternList ?? []).every((pattern) =>
        image.tags.some((tag) => wildcardMatches(pattern, tag)),
      );
  }
}

/** The images ECR would expire under this policy now. */
export function evaluateLifecycle(
  policy: LifecyclePolicy,
  images: readonly RegistryImage[],
  options: EvaluateOptions,
): Evaluation {
  const rules = checkPolicy(policy);
  const view = options.view ?? 'all';
  const newestFirst = [...images].sort((a, b) => b.pushedAt.getTime() - a.pushedAt.getTime());
  const expired = new Map<string, number>();
  // Images some higher-priority rule selected: no lower rule may expire them.
  const claimed = new Set<string>();
  for (const rule of rules) {
    const { selection } = rule;
    const seen = newestFirst.filter(
      (image) => selects(selection, image) && (view === 'all' || !claimed.has(image.digest)),
    );
    const marked =
      selection.countType === 'imageCountMoreThan'
        ? seen.slice(selection.countNumber)
        : seen.filter(
            (image) =>
              options.now.getTime() - image.pushedAt.getTime() > selection.countNumber * DAY_MS,
          );
    for (const image of marked) {
      if (!claimed.has(image.digest)) expired.set(image.digest, rule.rulePriority);
    }
    for (const image of newestFirst) {
      if (selects(selection, image)) claimed.add(image.digest);
    }
  }
  return { expired, kept: newestFirst.filter((image) => !expired.has(image.digest)) };
}

/** Reads the policy text ECR stores (the CloudFormation `LifecyclePolicyText`). */
export function parsePolicyText(text: string): LifecyclePolicy {
  const parsed = JSON.parse(text) as LifecyclePolicy;
  if (!Array.isArray(parsed.rules))
    throw new LifecyclePolicyError('the policy has no "rules" list');
  return parsed;
}
