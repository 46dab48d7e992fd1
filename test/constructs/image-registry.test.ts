import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import {
  branchTagWildcard,
  ImageRegistry,
  ImageRegistryProps,
} from '../../lib/constructs/image-registry';
import { expectedEcrUri, newApp } from '../support/app';

function build(props: Partial<ImageRegistryProps> = {}): { stack: Stack; registry: ImageRegistry } {
  const stack = new Stack(newApp(), 'Test');
  const registry = new ImageRegistry(stack, 'Registry', {
    services: ['hasher', 'rng', 'webui', 'worker'],
    ...props,
  });
  return { stack, registry };
}

function synth(props: Partial<ImageRegistryProps> = {}): {
  stack: Stack;
  registry: ImageRegistry;
  template: Template;
} {
  const built = build(props);
  return { ...built, template: Template.fromStack(built.stack) };
}

interface LifecycleSelection {
  tagStatus: string;
  tagPatternList?: string[];
  countType: string;
  countNumber: number;
  countUnit?: string;
}
interface LifecyclePolicy {
  rules: { rulePriority: number; selection: LifecycleSelection; action: { type: string } }[];
}

function lifecycleOf(template: Template, repositoryName: string): LifecyclePolicy {
  const found = template.findResources('AWS::ECR::Repository', {
    Properties: { RepositoryName: repositoryName },
  });
  const [resource] = Object.values(found) as {
    Properties: { LifecyclePolicy: { LifecyclePolicyText: string } };
  }[];
  if (resource === undefined) throw new Error(`no repository ${repositoryName}`);
  return JSON.parse(resource.Properties.LifecyclePolicy.LifecyclePolicyText) as LifecyclePolicy;
}

describe('repositories', () => {
  test('one repository per service, named <prefix>/<service>, scanned on push', () => {
    const { template } = synth();

    template.resourceCountIs('AWS::ECR::Repository', 4);
    for (const service of ['hasher', 'rng', 'webui', 'worker']) {
      template.hasResourceProperties('AWS::ECR::Repository', {
        RepositoryName: `dockercoins/${service}`,
        ImageScanningConfiguration: { ScanOnPush: true },
      });
    }
  });

  test('a custom prefix names the repositories', () => {
    const { template } = synth({ repositoryPrefix: 'team/dc', services: ['rng'] });
    template.hasResourceProperties('AWS::ECR::Repository', { RepositoryName: 'team/dc/rng' });
  });

  const exclusion = (value: string) => ({
    ImageTagMutabilityExclusionFilterType: 'WILDCARD',
    ImageTagMutabilityExclusionFilterValue: value,
  });

  test("by default every tag is immutable except the deployer's marks, which move", () => {
    const { template } = synth();

    template.allResourcesProperties('AWS::ECR::Repository', {
      ImageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      ImageTagMutabilityExclusionFilters: [exclusion('deployed.*'), exclusion('previous.*')],
    });
  });

  test('a build-cache tag is the one other exclusion from immutability', () => {
    const { template } = synth({ buildCacheTag: 'buildcache' });

    template.allResourcesProperties('AWS::ECR::Repository', {
      ImageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      ImageTagMutabilityExclusionFilters: [
        exclusion('deployed.*'),
        exclusion('previous.*'),
        exclusion('buildcache'),
      ],
    });
  });

  test('pull-request repositories only when asked: <prefix>/pr/<service>, immutable, no exclusion', () => {
    expect(synth().registry.pullRequestRepositories.size).toBe(0);
    const { template, registry } = synth({ pullRequestRepositories: true, services: ['rng'] });

    template.resourceCountIs('AWS::ECR::Repository', 2);
    expect([...registry.pullRequestRepositories.keys()]).toEqual(['rng']);
    template.hasResourceProperties('AWS::ECR::Repository', {
      RepositoryName: 'dockercoins/pr/rng',
      ImageScanningConfiguration: { ScanOnPush: true },
      ImageTagMutability: 'IMMUTABLE',
      ImageTagMutabilityExclusionFilters: Match.absent(),
    });
  });

  test('by default images are encrypted with AES256 and no KMS key exists', () => {
    const { template, registry } = synth();

    // CDK leaves AES256 implicit: it is what ECR uses when EncryptionConfiguration is absent.
    template.allResourcesProperties('AWS::ECR::Repository', {
      EncryptionConfiguration: Match.absent(),
    });
    template.resourceCountIs('AWS::KMS::Key', 0);
    expect(registry.encryptionKey).toBeUndefined();
  });

  test('KMS encryption uses one customer managed key with rotation, retained by default', () => {
    const { template, stack, registry } = synth({ encryption: 'KMS' });

    template.resourceCountIs('AWS::KMS::Key', 1);
    template.hasResource('AWS::KMS::Key', {
      Properties: { EnableKeyRotation: true },
      DeletionPolicy: 'Retain',
      UpdateReplacePolicy: 'Retain',
    });
    const keyId = stack.getLogicalId(registry.encryptionKey!.node.defaultChild as never);
    template.allResourcesProperties('AWS::ECR::Repository', {
      EncryptionConfiguration: { EncryptionType: 'KMS', KmsKey: { 'Fn::GetAtt': [keyId, 'Arn'] } },
    });
  });

  test('by default repositories are retained and never emptied', () => {
    const { template } = synth();

    const repositories = template.findResources('AWS::ECR::Repository');
    for (const resource of Object.values(repositories)) {
      expect(resource).toMatchObject({ DeletionPolicy: 'Retain', UpdateReplacePolicy: 'Retain' });
      expect(resource).toHaveProperty('Properties.EmptyOnDelete', false);
    }
  });

  test('removalPolicy DESTROY empties and deletes repositories and key', () => {
    const { template } = synth({ removalPolicy: RemovalPolicy.DESTROY, encryption: 'KMS' });

    template.allResources('AWS::ECR::Repository', {
      DeletionPolicy: 'Delete',
      Properties: Match.objectLike({ EmptyOnDelete: true }),
    });
    template.hasResource('AWS::KMS::Key', { DeletionPolicy: 'Delete' });
    // Native EmptyOnDelete: no custom-resource Lambda is needed to empty the repositories.
    template.resourceCountIs('AWS::Lambda::Function', 0);
  });
});

describe('lifecycle rules bound storage however many commits arrive', () => {
  const keep = (
    rulePriority: number,
    description: string,
    pattern: string,
    countNumber = 9999,
  ) => ({
    rulePriority,
    description,
    selection: {
      tagStatus: 'tagged',
      tagPatternList: [pattern],
      countType: 'imageCountMoreThan',
      countNumber,
    },
    action: { type: 'expire' },
  });

  test('defaults: marks and releases kept, untagged after 3 days, pr- 20, each branch 50, other tagged 50', () => {
    const { template } = synth();

    expect(lifecycleOf(template, 'dockercoins/rng').rules).toEqual([
      keep(
        1,
        'Images running in an environment (deployed.*, moved by the deployer) are kept',
        'deployed.*',
      ),
      keep(2, 'Rollback targets (previous.*, moved by the deployer) are kept', 'previous.*'),
      keep(3, 'Release images (v*) are kept', 'v*'),
      {
        rulePriority: 5,
        description: 'Untagged images expire after 3 days',
        selection: {
          tagStatus: 'untagged',
          countType: 'sinceImagePushed',
          countUnit: 'days',
          countNumber: 3,
        },
        action: { type: 'expire' },
      },
      keep(6, 'Pull-request images beyond the newest 20 expire', 'pr-*', 20),
      keep(10, 'Images of branch main beyond the newest 50 expire', 'main-*-*', 50),
      keep(100, 'Other tagged (commit) images beyond the newest 50 expire', '*', 50),
    ]);
  });

  test('the build-cache image is shielded by a rule ahead of every count rule', () => {
    const { template } = synth({ buildCacheTag: 'buildcache' });

    const rules = lifecycleOf(template, 'dockercoins/rng').rules;
    const cacheRule = rules.find((r) => r.selection.tagPatternList?.includes('buildcache'));
    expect(cacheRule?.selection).toEqual({
      tagStatus: 'tagged',
      tagPatternList: ['buildcache'],
      countType: 'imageCountMoreThan',
      countNumber: 1,
    });
    for (const rule of rules.filter((r) => r.selection.countNumber < 9999 && r !== cacheRule)) {
      expect(cacheRule!.rulePriority).toBeLessThan(rule.rulePriority);
    }
  });

  test('custom release pattern, expiry, counts and branches are used', () => {
    const { template } = synth({
      releaseTagPattern: 'release-*',
      untaggedImageExpiry: Duration.days(10),
      commitImagesToKeep: 7,
      branchImagesToKeep: 8,
      pullRequestImagesToKeep: 9,
      branches: ['main', 'release/1.x', 'feature/ünïcode'],
    });

    const selections = lifecycleOf(template, 'dockercoins/hasher').rules.map((r) => r.selection);
    expect(selections).toEqual([
      expect.objectContaining({ tagPatternList: ['deployed.*'] }),
      expect.objectContaining({ tagPatternList: ['previous.*'] }),
      expect.objectContaining({ tagPatternList: ['release-*'] }),
      expect.objectContaining({ tagStatus: 'untagged', countNumber: 10 }),
      expect.objectContaining({ tagPatternList: ['pr-*'], countNumber: 9 }),
      expect.objectContaining({ tagPatternList: ['main-*-*'], countNumber: 8 }),
      // "release-1.x-<sha7>-<n>" would read as a release: image-tags.js prefixes it with branch-
      expect.objectContaining({ tagPatternList: ['branch-release-1.x-*-*'], countNumber: 8 }),
      expect.objectContaining({ tagPatternList: ['feature-n-code-*-*'], countNumber: 8 }),
      expect.objectContaining({ tagPatternList: ['*'], countNumber: 7 }),
    ]);
  });

  test('the keep rules come first, so ECR never lets a later rule expire a marked or released image', () => {
    const { template } = synth({ buildCacheTag: 'buildcache' });

    const rules = lifecycleOf(template, 'dockercoins/webui').rules;
    const priorities = rules.map((r) => r.rulePriority);
    expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
    expect(rules.slice(0, 3).map((r) => r.selection.tagPatternList)).toEqual([
      ['deployed.*'],
      ['previous.*'],
      ['v*'],
    ]);
  });

  test('branchTagWildcard follows image-tags.js for long branch names', () => {
    const long = 'x'.repeat(150);
    expect(branchTagWildcard(long, 'v*')).toBe(`${'x'.repeat(100)}*-*-*`);
    expect(branchTagWildcard('main', 'v*')).toBe('main-*-*');
  });
});

describe('access', () => {
  test('no repository policy by default: only this account, through IAM', () => {
    const { template } = synth();
    template.allResourcesProperties('AWS::ECR::Repository', {
      RepositoryPolicyText: Match.absent(),
    });
  });

  test('pullAccountIds grant exactly the three pull actions to those accounts', () => {
    const { template } = synth({ pullAccountIds: ['111122223333', '444455556666'] });

    template.allResourcesProperties('AWS::ECR::Repository', {
      RepositoryPolicyText: {
        Version: '2012-10-17',
        Statement: [
          {
            Effect: 'Allow',
            Action: [
              'ecr:BatchCheckLayerAvailability',
              'ecr:BatchGetImage',
              'ecr:GetDownloadUrlForLayer',
            ],
            Principal: {
              AWS: [
                {
                  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::111122223333:root']],
                },
                {
                  'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::444455556666:root']],
                },
              ],
            },
          },
        ],
      },
    });
  });

  test('grantPush lets a role push and pull one repository only, plus an auth token', () => {
    const { stack, registry } = build();
    const role = new iam.Role(stack, 'Builder', {
      assumedBy: new iam.ServicePrincipal('codebuild.amazonaws.com'),
    });

    registry.grantPush('rng', role);

    const template = Template.fromStack(stack);
    const rngId = stack.getLogicalId(registry.repositoryFor('rng').node.defaultChild as never);
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: [
          {
            Effect: 'Allow',
            Action: [
              'ecr:BatchCheckLayerAvailability',
              'ecr:BatchGetImage',
              'ecr:CompleteLayerUpload',
              'ecr:GetDownloadUrlForLayer',
              'ecr:InitiateLayerUpload',
              'ecr:PutImage',
              'ecr:UploadLayerPart',
            ],
            Resource: { 'Fn::GetAtt': [rngId, 'Arn'] },
          },
          { Effect: 'Allow', Action: 'ecr:GetAuthorizationToken', Resource: '*' },
        ],
      },
    });
  });

  test('grantPullAll lets a role pull every repository and nothing more', () => {
    const { stack, registry } = build({ services: ['rng', 'worker'] });
    const role = new iam.Role(stack, 'Nodes', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
    });

    registry.grantPullAll(role);

    const statements = (
      Object.values(Template.fromStack(stack).findResources('AWS::IAM::Policy'))[0] as {
        Properties: { PolicyDocument: { Statement: { Action: string | string[] }[] } };
      }
    ).Properties.PolicyDocument.Statement;
    const actions = new Set(statements.flatMap((s) => s.Action));
    expect([...actions].sort()).toEqual([
      'ecr:BatchCheckLayerAvailability',
      'ecr:BatchGetImage',
      'ecr:GetAuthorizationToken',
      'ecr:GetDownloadUrlForLayer',
    ]);
  });

  test('repositoryFor an unknown service names it and the known ones', () => {
    const { registry } = synth();
    expect(() => registry.repositoryFor('redis')).toThrow(
      /No ECR repository for service "redis". Known services: hasher, rng, webui, worker/,
    );
  });
});

describe('pull-through cache for ECR Public', () => {
  test('one rule for public.ecr.aws under the default prefix', () => {
    const { template } = synth();

    template.resourceCountIs('AWS::ECR::PullThroughCacheRule', 1);
    template.hasResourceProperties('AWS::ECR::PullThroughCacheRule', {
      EcrRepositoryPrefix: 'dockercoins-ecr-public',
      UpstreamRegistry: 'ecr-public',
      UpstreamRegistryUrl: 'public.ecr.aws',
      CredentialArn: Match.absent(),
    });
  });

  test('repositories the cache creates get mutable tags, AES256 and an expiry for superseded images', () => {
    const { template } = synth({ untaggedImageExpiry: Duration.days(5) });

    template.hasResourceProperties('AWS::ECR::RepositoryCreationTemplate', {
      Prefix: 'dockercoins-ecr-public',
      AppliedFor: ['PULL_THROUGH_CACHE'],
      ImageTagMutability: 'MUTABLE',
      EncryptionConfiguration: { EncryptionType: 'AES256' },
    });
    const [templateResource] = Object.values(
      template.findResources('AWS::ECR::RepositoryCreationTemplate'),
    ) as { Properties: { LifecyclePolicy: string } }[];
    expect(JSON.parse(templateResource!.Properties.LifecyclePolicy)).toEqual({
      rules: [
        expect.objectContaining({
          selection: {
            tagStatus: 'untagged',
            countType: 'sinceImagePushed',
            countUnit: 'days',
            countNumber: 5,
          },
        }),
      ],
    });
  });

  test('redisImageUri names the cached official image with its pinned tag', () => {
    const { registry, stack } = synth({ pullThroughCachePrefix: 'mirror', redisImageTag: '7.2.5' });

    expect(stack.resolve(registry.redisImageUri)).toEqual(
      expectedEcrUri('/mirror/docker/library/redis:7.2.5'),
    );
  });

  test("registryUri is the seed's $REGISTRY: host and repository prefix", () => {
    const { registry, stack } = synth({ repositoryPrefix: 'team/dc' });

    expect(stack.resolve(registry.registryUri)).toEqual(expectedEcrUri('/team/dc'));
  });
});

describe('validation at the construct boundary', () => {
  test.each([
    [{ services: [] }, /at least one service/],
    [{ services: ['rng', 'rng'] }, /duplicates: rng, rng/],
    [{ commitImagesToKeep: 0 }, /commitImagesToKeep.*from 1 to 9998, got 0/],
    [{ commitImagesToKeep: 2.5 }, /commitImagesToKeep.*got 2.5/],
    [{ branchImagesToKeep: 9999 }, /branchImagesToKeep.*from 1 to 9998, got 9999/],
    [{ pullRequestImagesToKeep: 0 }, /pullRequestImagesToKeep.*from 1 to 9998, got 0/],
    [
      { branches: Array.from({ length: 44 }, (_, i) => `b${i}`) },
      /44 branches.*at most 43 build branches/,
    ],
    [{ pullAccountIds: ['1234'] }, /12-digit AWS account ids, got "1234"/],
  ])('%j is refused', (props, message) => {
    expect(() => synth(props)).toThrow(message);
  });
});
