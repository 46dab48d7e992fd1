import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as iam from 'aws-cdk-lib/aws-iam';
import { ImageRegistry, ImageRegistryProps } from '../../lib/constructs/image-registry';
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

  test('by default every tag is immutable, with no exclusion', () => {
    const { template } = synth();

    template.allResourcesProperties('AWS::ECR::Repository', {
      ImageTagMutability: 'IMMUTABLE',
      ImageTagMutabilityExclusionFilters: Match.absent(),
    });
  });

  test('a build-cache tag is the one exclusion from immutability', () => {
    const { template } = synth({ buildCacheTag: 'buildcache' });

    template.allResourcesProperties('AWS::ECR::Repository', {
      ImageTagMutability: 'IMMUTABLE_WITH_EXCLUSION',
      ImageTagMutabilityExclusionFilters: [
        {
          ImageTagMutabilityExclusionFilterType: 'WILDCARD',
          ImageTagMutabilityExclusionFilterValue: 'buildcache',
        },
      ],
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
  test('defaults: releases kept, untagged expire after 3 days, tagged beyond the newest 50 expire', () => {
    const { template } = synth();

    expect(lifecycleOf(template, 'dockercoins/rng').rules).toEqual([
      {
        rulePriority: 1,
        description: 'Release images (v*) are kept',
        selection: {
          tagStatus: 'tagged',
          tagPatternList: ['v*'],
          countType: 'imageCountMoreThan',
          countNumber: 9999,
        },
        action: { type: 'expire' },
      },
      {
        rulePriority: 3,
        description: 'Untagged images expire after 3 days',
        selection: {
          tagStatus: 'untagged',
          countType: 'sinceImagePushed',
          countUnit: 'days',
          countNumber: 3,
        },
        action: { type: 'expire' },
      },
      {
        rulePriority: 4,
        description: 'Commit images beyond the newest 50 expire',
        selection: {
          tagStatus: 'tagged',
          tagPatternList: ['*'],
          countType: 'imageCountMoreThan',
          countNumber: 50,
        },
        action: { type: 'expire' },
      },
    ]);
  });

  test('the build-cache image is shielded by a rule ahead of the commit-count rule', () => {
    const { template } = synth({ buildCacheTag: 'buildcache' });

    const rules = lifecycleOf(template, 'dockercoins/rng').rules;
    const cacheRule = rules.find((r) => r.selection.tagPatternList?.includes('buildcache'));
    const countRule = rules.find((r) => r.selection.tagPatternList?.includes('*'));
    expect(cacheRule?.selection).toEqual({
      tagStatus: 'tagged',
      tagPatternList: ['buildcache'],
      countType: 'imageCountMoreThan',
      countNumber: 1,
    });
    expect(cacheRule!.rulePriority).toBeLessThan(countRule!.rulePriority);
  });

  test('custom release pattern, expiry and count are used', () => {
    const { template } = synth({
      releaseTagPattern: 'release-*',
      untaggedImageExpiry: Duration.days(10),
      commitImagesToKeep: 7,
    });

    const selections = lifecycleOf(template, 'dockercoins/hasher').rules.map((r) => r.selection);
    expect(selections).toEqual([
      expect.objectContaining({ tagPatternList: ['release-*'] }),
      expect.objectContaining({ tagStatus: 'untagged', countNumber: 10 }),
      expect.objectContaining({ tagPatternList: ['*'], countNumber: 7 }),
    ]);
  });

  test('the release rule comes first, so ECR never lets a later rule expire a release', () => {
    const { template } = synth({ buildCacheTag: 'buildcache' });

    const rules = lifecycleOf(template, 'dockercoins/webui').rules;
    const priorities = rules.map((r) => r.rulePriority);
    expect(priorities).toEqual([...priorities].sort((a, b) => a - b));
    expect(rules[0]?.selection.tagPatternList).toEqual(['v*']);
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
    [{ pullAccountIds: ['1234'] }, /12-digit AWS account ids, got "1234"/],
  ])('%j is refused', (props, message) => {
    expect(() => synth(props)).toThrow(message);
  });
});
