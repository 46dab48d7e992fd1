import {
  checkPolicy,
  evaluateLifecycle,
  LifecyclePolicyError,
  type LifecyclePolicy,
  type LifecycleSelection,
  type RegistryImage,
  wildcardMatches,
} from './ecr-lifecycle';

const NOW = new Date('2026-12-06T12:00:00Z');
const daysAgo = (days: number): Date => new Date(NOW.getTime() - days * 24 * 60 * 60 * 1000);
const image = (digest: string, tags: string[], days: number): RegistryImage => ({
  digest,
  tags,
  pushedAt: daysAgo(days),
});
const rule = (rulePriority: number, selection: LifecycleSelection) => ({
  rulePriority,
  selection,
  action: { type: 'expire' as const },
});
const count = (tagPrefixList: string[], countNumber: number): LifecycleSelection => ({
  tagStatus: 'tagged',
  tagPrefixList,
  countType: 'imageCountMoreThan',
  countNumber,
});

// The repositories and policies of the ECR user guide's "Examples of lifecycle policies".
const MULTIPLE_RULES_REPOSITORY = [
  image('A', ['beta-1', 'prod-1'], 10),
  image('B', ['beta-2', 'prod-2'], 9),
  image('C', ['beta-3'], 8),
];

describe('the ECR user guide examples, under both readings of a rule’s view', () => {
  test.each([
    {
      example: 'filtering on image age: untagged older than 14 days',
      policy: {
        rules: [
          rule(1, {
            tagStatus: 'untagged',
            countType: 'sinceImagePushed',
            countUnit: 'days',
            countNumber: 14,
          }),
        ],
      },
      images: [image('old', [], 15), image('young', [], 13), image('tagged', ['x'], 30)],
      expired: ['old'],
    },
    {
      example: 'filtering on image count: keep one untagged image',
      policy: {
        rules: [
          rule(1, { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 }),
        ],
      },
      images: [image('u1', [], 3), image('u2', [], 2), image('u3', [], 1), image('t', ['x'], 9)],
      expired: ['u1', 'u2'],
    },
    {
      example: 'multiple rules, example A (prod first): image A',
      policy: { rules: [rule(1, count(['prod'], 1)), rule(2, count(['beta'], 1))] },
      images: MULTIPLE_RULES_REPOSITORY,
      expired: ['A'],
    },
    {
      example: 'multiple rules, example B (beta first): images A and B',
      policy: { rules: [rule(1, count(['beta'], 1)), rule(2, count(['prod'], 1))] },
      images: MULTIPLE_RULES_REPOSITORY,
      expired: ['A', 'B'],
    },
    {
      example:
        'multiple tags in one rule, example A: all prefixes must match; C is older than 5 days',
      policy: {
        rules: [
          rule(1, {
            tagStatus: 'tagged',
            tagPrefixList: ['alpha', 'beta'],
            countType: 'sinceImagePushed',
            countUnit: 'days',
            countNumber: 5,
          }),
        ],
      },
      images: [
        image('A', ['alpha-1'], 12),
        image('B', ['beta-1'], 11),
        image('C', ['alpha-2', 'beta-2'], 10),
        image('D', ['alpha-3'], 4),
        image('E', ['beta-3'], 3),
        image('F', ['alpha-4', 'beta-4'], 2),
      ],
      expired: ['C'],
    },
    {
      example: 'multiple tags in one rule, example B: tags are not exclusive',
      policy: { rules: [rule(1, count(['alpha', 'beta'], 1))] },
      images: [
        image('A', ['alpha-1', 'beta-1', 'gamma-1'], 10),
        image('B', ['alpha-2', 'beta-2'], 9),
        image('C', ['alpha-3', 'beta-3', 'gamma-2'], 8),
      ],
      expired: ['A', 'B'],
    },
  ])('$example', ({ policy, images, expired }) => {
    for (const view of ['all', 'unclaimed'] as const) {
      const result = evaluateLifecycle(policy, images, { now: NOW, view });
      expect([...result.expired.keys()].sort()).toEqual(expired);
      expect(result.kept.map((i) => i.digest).sort()).toEqual(
        images
          .map((i) => i.digest)
          .filter((d) => !expired.includes(d))
          .sort(),
      );
    }
  });
});

describe('protection by a higher-priority rule', () => {
  test('a keep rule that matches an image shields it from every later rule', () => {
    // Given a rule that keeps up to 9999 images tagged keep-*, then a catch-all count of 1
    const policy: LifecyclePolicy = {
      rules: [
        rule(1, {
          tagStatus: 'tagged',
          tagPatternList: ['keep-*'],
          countType: 'imageCountMoreThan',
          countNumber: 9999,
        }),
        rule(2, { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 }),
      ],
    };
    const images = [
      image('old-kept', ['keep-a', 'c1'], 9),
      image('old', ['c2'], 8),
      image('new', ['c3'], 1),
    ];
    // Then only the unshielded old image expires, and by rule 2
    const result = evaluateLifecycle(policy, images, { now: NOW });
    expect([...result.expired]).toEqual([['old', 2]]);
  });

  test('the two views differ when a shielded image sits in a later rule’s count', () => {
    const policy: LifecyclePolicy = {
      rules: [rule(1, count(['keep'], 9999)), rule(2, count(['c'], 1))],
    };
    const images = [image('old', ['c1'], 9), image('new-kept', ['keep', 'c2'], 1)];
    // 'all': rule 2 counts new-kept, so old is beyond its count; 'unclaimed': old is alone
    expect([...evaluateLifecycle(policy, images, { now: NOW }).expired.keys()]).toEqual(['old']);
    expect(evaluateLifecycle(policy, images, { now: NOW, view: 'unclaimed' }).expired.size).toBe(0);
  });
});

describe('wildcards', () => {
  test.each([
    ['v*', 'v1.2.0', true],
    ['v*', 'xv1', false],
    ['*', 'anything', true],
    ['pr-*', 'pr-12-6e0de79', true],
    ['*-*-*', 'main-6e0de79-42', true],
    ['*-*-*', '6e0de7938dda', false],
    ['deployed.*', 'deployed.prod.rng.rng', true],
    ['a.b', 'aXb', false],
  ])('%s against %s: %s', (pattern, tag, expected) => {
    expect(wildcardMatches(pattern, tag)).toBe(expected);
  });
});

describe('policies ECR refuses', () => {
  const untagged = (priority: number) =>
    rule(priority, { tagStatus: 'untagged', countType: 'imageCountMoreThan', countNumber: 1 });
  test.each([
    ['no rules', { rules: [] }, /at least one rule/],
    [
      'duplicate priorities',
      { rules: [rule(1, count(['a'], 1)), rule(1, count(['b'], 1))] },
      /unique/,
    ],
    ['two untagged rules', { rules: [untagged(1), untagged(2)] }, /one rule may select untagged/],
    [
      'any not last',
      {
        rules: [
          rule(1, { tagStatus: 'any', countType: 'imageCountMoreThan', countNumber: 1 }),
          rule(2, count(['a'], 1)),
        ],
      },
      /highest rulePriority/,
    ],
    [
      'tagged without a list',
      {
        rules: [rule(1, { tagStatus: 'tagged', countType: 'imageCountMoreThan', countNumber: 1 })],
      },
      /exactly one/,
    ],
    [
      'both lists',
      {
        rules: [
          rule(1, {
            tagStatus: 'tagged',
            tagPrefixList: ['a'],
            tagPatternList: ['a*'],
            countType: 'imageCountMoreThan',
            countNumber: 1,
          }),
        ],
      },
      /exactly one/,
    ],
    [
      'untagged with a list',
      {
        rules: [
          rule(1, {
            tagStatus: 'untagged',
            tagPatternList: ['a*'],
            countType: 'imageCountMoreThan',
            countNumber: 1,
          }),
        ],
      },
      /only allowed with tagStatus "tagged"/,
    ],
    [
      'five wildcards',
      {
        rules: [
          rule(1, {
            tagStatus: 'tagged',
            tagPatternList: ['*a*b*c*d*'],
            countType: 'imageCountMoreThan',
            countNumber: 1,
          }),
        ],
      },
      /more than four wildcards/,
    ],
    ['count 0', { rules: [rule(1, count(['a'], 0))] }, /positive integer/],
    [
      'days without sinceImagePushed',
      { rules: [rule(1, { ...count(['a'], 1), countUnit: 'days' as const })] },
      /countUnit/,
    ],
  ])('%s', (_name, policy, message) => {
    expect(() => checkPolicy(policy as LifecyclePolicy)).toThrow(LifecyclePolicyError);
    expect(() => checkPolicy(policy as LifecyclePolicy)).toThrow(message);
  });
});
