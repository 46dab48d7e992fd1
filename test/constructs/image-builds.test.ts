import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { App, Stack } from 'aws-cdk-lib';
import { Match, Template } from 'aws-cdk-lib/assertions';
import * as ecr from 'aws-cdk-lib/aws-ecr';
import { parse } from 'yaml';
import {
  BUILD_ENV,
  BUILDKIT_IMAGE,
  EXPORTED_VARIABLES,
  TOOLS_SOURCE_IDENTIFIER,
} from '../../lib/build-contract';
import { ServiceConfig, SourceConfig } from '../../lib/config';
import {
  BUILDSPEC_FILE,
  BUILDKIT_PULL_ACTIONS,
  ECR_PUSH_ACTIONS,
  ImageBuilds,
  ImageBuildsProps,
  SHIP_TOOLS_DIR,
  SHIP_TOOLS_FILES,
  branchRefPattern,
  filePathPattern,
  tagRefPattern,
} from '../../lib/constructs/image-builds';
import { newApp } from '../support/app';
import { WebhookFilter, projectsTriggered } from '../support/webhook';

const SERVICES = ['hasher', 'rng', 'webui', 'worker'];
const GITHUB: SourceConfig = {
  provider: 'github',
  owner: 'acme',
  repo: 'container.training',
  connectionArn: undefined,
};
const CONNECTION =
  'arn:aws:codeconnections:eu-west-1:123456789012:connection/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0';

function service(name: string): ServiceConfig {
  return { name, buildContext: `dockercoins/${name}`, deployment: name, container: name };
}

function synth(props: Partial<ImageBuildsProps> = {}): { stack: Stack; template: Template } {
  const { stack, template } = synthWithConstruct(props);
  return { stack, template };
}

function synthWithConstruct(props: Partial<ImageBuildsProps> = {}): {
  stack: Stack & { builds: ImageBuilds };
  template: Template;
} {
  const stack = new Stack(newApp(), 'Test') as Stack & { builds: ImageBuilds };
  stack.builds = new ImageBuilds(stack, 'Builds', {
    services: SERVICES.map((name) => ({
      service: service(name),
      repository: new ecr.Repository(stack, `Repo-${name}`, {
        repositoryName: `dockercoins/${name}`,
      }),
      ...(props.pullRequestBuilds === true
        ? {
            pullRequestRepository: new ecr.Repository(stack, `PrRepo-${name}`, {
              repositoryName: `dockercoins/pr/${name}`,
            }),
          }
        : {}),
    })),
    source: GITHUB,
    branches: ['main'],
    buildCacheTag: 'buildcache',
    ...props,
  });
  return { stack, template: Template.fromStack(stack) };
}

interface ProjectProperties {
  Name: string;
  Environment: {
    Image: string;
    Type: string;
    ComputeType: string;
    PrivilegedMode: boolean;
    EnvironmentVariables: { Name: string; Value: unknown; Type: string }[];
  };
  Source: { Type: string; Location: unknown; BuildSpec: string; Auth?: unknown };
  SecondarySources: { SourceIdentifier: string; Type: string }[];
  Triggers?: { Webhook: boolean; FilterGroups: WebhookFilter[][] };
  TimeoutInMinutes: number;
  ConcurrentBuildLimit: number;
  ServiceRole: unknown;
}

function project(template: Template, name: string): ProjectProperties {
  const found = Object.values(
    template.findResources('AWS::CodeBuild::Project', { Properties: { Name: name } }),
  ) as { Properties: ProjectProperties }[];
  if (found.length !== 1)
    throw new Error(`expected one project named ${name}, found ${found.length}`);
  return found[0]!.Properties;
}

function envOf(p: ProjectProperties): Record<string, unknown> {
  return Object.fromEntries(p.Environment.EnvironmentVariables.map((v) => [v.Name, v.Value]));
}

describe('projects', () => {
  test('Given four services, When synthesized, Then one privileged project per service with bounded builds', () => {
    const { template } = synth();

    template.resourceCountIs('AWS::CodeBuild::Project', 4);
    for (const name of SERVICES) {
      const p = project(template, `DockerCoins-${name}`);
      expect(p.Environment).toMatchObject({
        Image: 'aws/codebuild/standard:7.0',
        Type: 'LINUX_CONTAINER',
        ComputeType: 'BUILD_GENERAL1_SMALL',
        PrivilegedMode: true,
      });
      expect(p.TimeoutInMinutes).toBe(30);
      expect(p.ConcurrentBuildLimit).toBe(10);
      expect(p.Environment.EnvironmentVariables.every((v) => v.Type === 'PLAINTEXT')).toBe(true);
    }
    template.resourceCountIs('AWS::Logs::LogGroup', 4);
    template.allResourcesProperties('AWS::Logs::LogGroup', { RetentionInDays: 30 });
  });

  test('Given a service, When synthesized, Then its project gets exactly the variables the buildspec reads', () => {
    const { template } = synth();

    const env = envOf(project(template, 'DockerCoins-rng'));
    expect(Object.keys(env).sort()).toEqual(Object.values(BUILD_ENV).sort());
    expect(env).toMatchObject({
      SERVICE: 'rng',
      BUILD_CONTEXT: 'dockercoins/rng',
      REGISTRY_AUTH: 'ecr',
      RELEASE_TAG_PATTERN: 'v*',
      BUILD_CACHE_TAG: 'buildcache',
      SOURCE_URL: 'https://github.com/acme/container.training',
      IMAGE_PLATFORM: 'linux/amd64',
    });
    // The repository URI is the rng repository's, not another service's.
    expect(JSON.stringify(env.IMAGE_REPOSITORY)).toContain('Reporng');
    expect(JSON.stringify(env.IMAGE_REPOSITORY)).not.toMatch(/Repohasher|Repowebui|Repoworker/);
  });

  test('Given no build cache tag, When synthesized, Then BUILD_CACHE_TAG is not set (no registry cache)', () => {
    const { template } = synth({ buildCacheTag: undefined });

    expect(envOf(project(template, 'DockerCoins-rng'))).not.toHaveProperty('BUILD_CACHE_TAG');
  });

  test('Given the buildspec file, When synthesized, Then every project names the one uploaded copy of it', () => {
    const { stack, template } = synthWithConstruct();

    const asset = stack.builds.buildSpecAsset;
    expect(readFileSync(path.join((stack.node.root as App).outdir, asset.assetPath), 'utf8')).toBe(
      readFileSync(BUILDSPEC_FILE, 'utf8'),
    );
    const arns = SERVICES.map(
      (name) => stack.resolve(project(template, `DockerCoins-${name}`).Source.BuildSpec) as unknown,
    );
    expect(new Set(arns.map((a) => JSON.stringify(a))).size).toBe(1);
    expect(JSON.stringify(arns[0])).toContain(asset.s3ObjectKey);
    const exported = (
      parse(readFileSync(BUILDSPEC_FILE, 'utf8')) as { env: { 'exported-variables': string[] } }
    ).env['exported-variables'];
    expect(exported).toEqual([...EXPORTED_VARIABLES]);
  });

  test('Given a file that is not a buildspec, When constructed, Then synth stops naming the file', () => {
    const file = path.join(mkdtempSync(path.join(tmpdir(), 'ship-bs-')), 'bad.yml');
    writeFileSync(file, 'phases: {}\n');

    expect(() => synth({ buildSpecFile: file })).toThrow(
      /bad\.yml is not a buildspec of version 0\.2/,
    );
  });

  test('Given the tools, When synthesized, Then buildspecs/ reaches every build as a secondary S3 source', () => {
    const { template } = synth();

    for (const name of SERVICES) {
      expect(project(template, `DockerCoins-${name}`).SecondarySources).toEqual([
        expect.objectContaining({ SourceIdentifier: TOOLS_SOURCE_IDENTIFIER, Type: 'S3' }),
      ]);
    }
  });

  test('Given the tools, When synthesized, Then the asset holds exactly the core scripts the buildspec runs', () => {
    const { stack } = synth();
    const assembly = (stack.node.root as App).synth();
    const folders = readdirSync(assembly.directory, { withFileTypes: true })
      .filter((entry) => entry.isDirectory() && entry.name.startsWith('asset.'))
      .map((entry) => entry.name);
    const tools = folders
      .map((name) => readdirSync(path.join(assembly.directory, name)).sort())
      .filter((files) => files.includes('image-tags.js'));

    expect(tools).toEqual([[...SHIP_TOOLS_FILES].sort()]);
    expect(SHIP_TOOLS_FILES).toContain('build.js');
  });

  test('Given the tools asset, Then its scripts require only node: builtins and each other (they run alone in CodeBuild)', () => {
    const shipped = new Set<string>(SHIP_TOOLS_FILES);
    for (const file of SHIP_TOOLS_FILES) {
      const text = readFileSync(path.join(SHIP_TOOLS_DIR, file), 'utf8');
      const required = [...text.matchAll(/require\('([^']+)'\)/g)].map((m) => m[1]!);
      expect(required.length).toBeGreaterThan(0);
      for (const name of required) {
        if (name.startsWith('node:')) continue;
        expect([file, name.replace(/^\.\//, '')]).toEqual([file, expect.stringMatching(/\.js$/)]);
        expect(shipped.has(name.replace(/^\.\//, ''))).toBe(true);
      }
    }
  });

  test('Given arm64, When synthesized, Then the projects run on Graviton and build linux/arm64 images', () => {
    const { template } = synth({ architecture: 'arm64' });

    const p = project(template, 'DockerCoins-rng');
    expect(p.Environment).toMatchObject({
      Image: 'aws/codebuild/amazonlinux-aarch64-standard:3.0',
      Type: 'ARM_CONTAINER',
    });
    expect(envOf(p).IMAGE_PLATFORM).toBe('linux/arm64');
  });

  test.each([
    [{ services: [] }, /services is empty/],
    [{ branches: [] }, /branches is empty/],
    [{ concurrentBuildLimit: 0 }, /concurrentBuildLimit is 0/],
  ])('Given %j, When constructed, Then it throws with the fix', (props, expected) => {
    expect(() => synth(props as Partial<ImageBuildsProps>)).toThrow(expected);
  });
});

describe('webhook filters', () => {
  test('Given branch main, When synthesized, Then branch pushes need the service path and release tags need none', () => {
    const { template } = synth();

    expect(project(template, 'DockerCoins-rng').Triggers).toEqual({
      Webhook: true,
      FilterGroups: [
        [
          { Type: 'EVENT', Pattern: 'PUSH' },
          { Type: 'HEAD_REF', Pattern: '^refs/heads/(main)$' },
          { Type: 'FILE_PATH', Pattern: '^(dockercoins/rng)(/|$)' },
        ],
        [
          { Type: 'EVENT', Pattern: 'PUSH' },
          { Type: 'HEAD_REF', Pattern: '^refs/tags/v.*$' },
        ],
      ],
    });
  });

  test.each([
    ['refs/heads/main', true],
    ['refs/heads/main-x', false],
    ['refs/heads/feature/main', false],
    ['refs/heads/release/1.x', true],
    ['refs/heads/release/1-x', false],
    ['refs/tags/main', false],
  ])('branch pattern for main and release/1.x: %s → %s', (ref, matches) => {
    expect(new RegExp(branchRefPattern(['main', 'release/1.x'])).test(ref)).toBe(matches);
  });

  test.each([
    ['v*', 'refs/tags/v1.2.0', true],
    ['v*', 'refs/tags/v', true],
    ['v*', 'refs/tags/release-v1', false],
    ['v*', 'refs/heads/v1', false],
    ['release-*.*', 'refs/tags/release-1.2', true],
    ['release-*.*', 'refs/tags/release-12', false],
  ])('tag pattern %s: %s → %s', (glob, ref, matches) => {
    expect(new RegExp(tagRefPattern(glob)).test(ref)).toBe(matches);
  });

  test.each([
    ['dockercoins/rng/rng.py', true],
    ['dockercoins/rng', true],
    ['dockercoins/rngx/rng.py', false],
    ['dockercoins/hasher/hasher.rb', false],
    ['libs/common/x.py', true],
    ['README.md', false],
  ])('file path pattern of rng with shared libs/common: %s → %s', (file, matches) => {
    expect(new RegExp(filePathPattern(['dockercoins/rng', 'libs/common'])).test(file)).toBe(
      matches,
    );
  });

  test('Given a push to main that changes only rng, When evaluated against the synthesized filters, Then only rng builds', () => {
    const { template } = synth();

    expect(
      projectsTriggered(template, {
        event: 'PUSH',
        headRef: 'refs/heads/main',
        files: ['dockercoins/rng/rng.py'],
      }),
    ).toEqual(['DockerCoins-rng']);
  });

  test('Given a push that changes two services, When evaluated, Then exactly those two build', () => {
    const { template } = synth();

    expect(
      projectsTriggered(template, {
        event: 'PUSH',
        headRef: 'refs/heads/main',
        files: ['dockercoins/rng/rng.py', 'dockercoins/webui/webui.js', 'README.md'],
      }),
    ).toEqual(['DockerCoins-rng', 'DockerCoins-webui']);
  });

  test('Given a push to another branch or of a non-release tag, When evaluated, Then nothing builds', () => {
    const { template } = synth();

    for (const headRef of ['refs/heads/feature', 'refs/heads/main2', 'refs/tags/nightly']) {
      expect(
        projectsTriggered(template, { event: 'PUSH', headRef, files: ['dockercoins/rng/a'] }),
      ).toEqual([]);
    }
  });

  test('Given a release tag push (no changed files), When evaluated, Then every service runs to retag', () => {
    const { template } = synth();

    expect(
      projectsTriggered(template, { event: 'PUSH', headRef: 'refs/tags/v1.2.0', files: [] }),
    ).toEqual(SERVICES.map((s) => `DockerCoins-${s}`));
  });

  test('Given a shared path, When it changes, Then every service builds', () => {
    const { template } = synth({ sharedPaths: ['dockercoins/common'] });

    expect(
      projectsTriggered(template, {
        event: 'PUSH',
        headRef: 'refs/heads/main',
        files: ['dockercoins/common/util.py'],
      }),
    ).toEqual(SERVICES.map((s) => `DockerCoins-${s}`));
  });

  test('Given pull request builds off (the default), When a pull request opens, Then nothing builds', () => {
    const { template } = synth();

    expect(
      projectsTriggered(template, {
        event: 'PULL_REQUEST_CREATED',
        headRef: 'refs/heads/feature',
        baseRef: 'refs/heads/main',
        files: ['dockercoins/rng/rng.py'],
      }),
    ).toEqual([]);
  });

  test('Given pull request builds on, When a pull request into main changes rng, Then only the rng pull-request project builds', () => {
    const { template } = synth({ pullRequestBuilds: true });

    expect(project(template, 'DockerCoins-rng-pr').Triggers).toEqual({
      Webhook: true,
      FilterGroups: [
        [
          {
            Type: 'EVENT',
            Pattern: 'PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED, PULL_REQUEST_REOPENED',
          },
          { Type: 'BASE_REF', Pattern: '^refs/heads/(main)$' },
          { Type: 'FILE_PATH', Pattern: '^(dockercoins/rng)(/|$)' },
        ],
      ],
    });
    expect(
      projectsTriggered(template, {
        event: 'PULL_REQUEST_UPDATED',
        headRef: 'refs/heads/feature',
        baseRef: 'refs/heads/main',
        files: ['dockercoins/rng/rng.py'],
      }),
    ).toEqual(['DockerCoins-rng-pr']);
  });

  test('Given pull request builds on, Then the service projects take no pull-request event and the pull-request projects no push', () => {
    const { template } = synth({ pullRequestBuilds: true });

    for (const name of SERVICES) {
      // The same two push groups as with pull requests off
      expect(project(template, `DockerCoins-${name}`).Triggers?.FilterGroups).toEqual(
        project(synth().template, `DockerCoins-${name}`).Triggers?.FilterGroups,
      );
    }
    expect(
      projectsTriggered(template, {
        event: 'PUSH',
        headRef: 'refs/heads/main',
        files: ['dockercoins/rng/rng.py'],
      }),
    ).toEqual(['DockerCoins-rng']);
    expect(
      projectsTriggered(template, { event: 'PUSH', headRef: 'refs/tags/v1.0.0', files: [] }),
    ).toEqual(SERVICES.map((s) => `DockerCoins-${s}`));
  });
});

describe('sources', () => {
  test('Given GitHub without a connection, When synthesized, Then the account credential is used (no Auth)', () => {
    const { template } = synth();

    const { Source } = project(template, 'DockerCoins-rng');
    expect(Source.Type).toBe('GITHUB');
    expect(Source.Location).toBe('https://github.com/acme/container.training.git');
    expect(Source.Auth).toBeUndefined();
  });

  test.each([
    ['codeconnections', CONNECTION],
    [
      'codestar-connections',
      'arn:aws:codestar-connections:eu-west-1:123456789012:connection/0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0',
    ],
  ])(
    'Given GitHub through a %s connection, When synthesized, Then Auth names it and the role may use only it',
    (prefix, arn) => {
      const { template } = synth({ source: { ...GITHUB, connectionArn: arn } });

      expect(project(template, 'DockerCoins-rng').Source.Auth).toEqual({
        Type: 'CODECONNECTIONS',
        Resource: arn,
      });
      template.hasResourceProperties('AWS::IAM::Policy', {
        PolicyDocument: {
          Statement: Match.arrayWith([
            {
              Sid: 'UseSourceConnection',
              Effect: 'Allow',
              Action: [`${prefix}:GetConnectionToken`, `${prefix}:UseConnection`],
              Resource: arn,
            },
          ]),
        },
      });
    },
  );

  test('Given GitLab through a connection, When synthesized, Then the source is GITLAB at gitlab.com with filters', () => {
    const { template } = synth({
      source: { provider: 'gitlab', owner: 'grp/sub', repo: 'dc', connectionArn: CONNECTION },
    });

    const p = project(template, 'DockerCoins-rng');
    expect(p.Source).toMatchObject({
      Type: 'GITLAB',
      Location: 'https://gitlab.com/grp/sub/dc.git',
      Auth: { Type: 'CODECONNECTIONS', Resource: CONNECTION },
    });
    expect(p.Triggers?.FilterGroups).toHaveLength(2);
  });

  test('Given Bitbucket with pull requests, When synthesized, Then the filters leave out the reopened event Bitbucket lacks', () => {
    const { template } = synth({
      source: { provider: 'bitbucket', owner: 'acme', repo: 'dc', connectionArn: CONNECTION },
      pullRequestBuilds: true,
    });

    const p = project(template, 'DockerCoins-rng-pr');
    expect(p.Source).toMatchObject({
      Type: 'BITBUCKET',
      Location: 'https://bitbucket.org/acme/dc.git',
    });
    expect(p.Triggers?.FilterGroups[0]?.[0]).toEqual({
      Type: 'EVENT',
      Pattern: 'PULL_REQUEST_CREATED, PULL_REQUEST_UPDATED',
    });
  });

  test('Given CodeCommit, When synthesized, Then EventBridge starts each project on a branch or release tag push, with the ref', () => {
    const { template } = synth({
      source: {
        provider: 'codecommit',
        owner: undefined,
        repo: 'dockercoins',
        connectionArn: undefined,
      },
      branches: ['main', 'release/1.x'],
    });

    const p = project(template, 'DockerCoins-rng');
    expect(p.Source.Type).toBe('CODECOMMIT');
    expect(p.Triggers).toBeUndefined();
    template.resourceCountIs('AWS::Events::Rule', 4);
    template.hasResourceProperties('AWS::Events::Rule', {
      EventPattern: {
        source: ['aws.codecommit'],
        'detail-type': ['CodeCommit Repository State Change'],
        detail: {
          event: ['referenceCreated', 'referenceUpdated'],
          $or: [
            { referenceType: ['branch'], referenceName: ['main', 'release/1.x'] },
            { referenceType: ['tag'], referenceName: [{ wildcard: 'v*' }] },
          ],
        },
      },
      Targets: [
        Match.objectLike({
          InputTransformer: Match.objectLike({
            InputPathsMap: { 'detail-referenceFullName': '$.detail.referenceFullName' },
          }),
          RetryPolicy: { MaximumRetryAttempts: 8, MaximumEventAgeInSeconds: 7200 },
        }),
      ],
    });
    template.hasResourceProperties('AWS::IAM::Policy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Sid: 'PullSource', Action: 'codecommit:GitPull' }),
        ]),
      },
    });
  });
});

describe('least privilege', () => {
  interface Statement {
    Sid: string;
    Action: string | string[];
    Resource: unknown;
  }

  function statementsOfRole(template: Template, serviceName: string): Statement[] {
    const roles = template.findResources('AWS::IAM::Role');
    const roleId = Object.keys(roles).find((id) => id.startsWith(`Builds${serviceName}Role`));
    if (roleId === undefined) throw new Error(`no role for ${serviceName}`);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles).includes(roleId),
    ) as { Properties: { PolicyDocument: { Statement: Statement[] } } }[];
    return policies.flatMap((p) => p.Properties.PolicyDocument.Statement);
  }

  test('Given the default pull-through cache prefix, When synthesized, Then BuildKit comes through it, pinned by digest, and the role may pull exactly that repository', () => {
    const { stack, template } = synth();

    const env = envOf(project(template, 'DockerCoins-rng'));
    expect(stack.resolve(env.BUILDKIT_IMAGE)).toEqual({
      'Fn::Join': [
        '',
        [
          { Ref: 'AWS::AccountId' },
          '.dkr.ecr.',
          { Ref: 'AWS::Region' },
          '.',
          { Ref: 'AWS::URLSuffix' },
          '/dockercoins-ecr-public/vend/moby/buildkit:v0.32.0@sha256:1f8167fcb0eca5b7126353d35299386945cbb8949cc516c592a49f80cfce4fa2',
        ],
      ],
    });
    expect(BUILDKIT_IMAGE.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const pull = statementsOfRole(template, 'rng').find(
      (s) => s.Sid === 'PullBuildKitThroughCache',
    )!;
    expect(pull.Action).toEqual([...BUILDKIT_PULL_ACTIONS]);
    expect(JSON.stringify(pull.Resource)).toMatch(
      /:repository\/dockercoins-ecr-public\/vend\/moby\/buildkit"\]\]\}$/,
    );
  });

  test('Given another pull-through cache prefix, When synthesized, Then BuildKit comes through that one', () => {
    const { template } = synth({ pullThroughCachePrefix: 'team-ecr-public' });

    const env = envOf(project(template, 'DockerCoins-rng'));
    expect(JSON.stringify(env.BUILDKIT_IMAGE)).toContain(
      '/team-ecr-public/vend/moby/buildkit:v0.32.0@sha256:',
    );
  });

  test('Given the rng project, When synthesized, Then its role may push only to the rng repository', () => {
    const { template } = synth();

    const statements = statementsOfRole(template, 'rng');
    expect(statements.map((s) => s.Sid).sort()).toEqual([
      'LocateBuildToolsBucket',
      'LogInToEcr',
      'PullBuildKitThroughCache',
      'PushOwnRepository',
      'ReadBuildTools',
      'WriteBuildLogs',
    ]);
    const push = statements.find((s) => s.Sid === 'PushOwnRepository')!;
    expect(push.Action).toEqual([...ECR_PUSH_ACTIONS]);
    expect(JSON.stringify(push.Resource)).toContain('Reporng');
    expect(JSON.stringify(push.Resource)).not.toMatch(/Repohasher|Repowebui|Repoworker/);
    const login = statements.find((s) => s.Sid === 'LogInToEcr')!;
    expect(login).toMatchObject({ Action: 'ecr:GetAuthorizationToken', Resource: '*' });
  });

  test('Given every project, When synthesized, Then no action is a wildcard and only the ECR login uses resource "*"', () => {
    const { template } = synth({ source: { ...GITHUB, connectionArn: CONNECTION } });

    for (const name of SERVICES) {
      for (const statement of statementsOfRole(template, name)) {
        for (const action of [statement.Action].flat()) expect(action).not.toContain('*');
        if (statement.Resource === '*') expect(statement.Sid).toBe('LogInToEcr');
      }
    }
  });

  test('Given a project, When synthesized, Then its role has no other policy (no CDK defaults such as report groups)', () => {
    const { template } = synth();

    const defaultPolicies = Object.keys(template.findResources('AWS::IAM::Policy')).filter((id) =>
      id.includes('DefaultPolicy'),
    );
    expect(defaultPolicies).toEqual([]);
    expect(JSON.stringify(template.toJSON())).not.toContain('codebuild:CreateReportGroup');
  });
});

describe('pull-request projects: an identity of their own', () => {
  interface Statement {
    Sid: string;
    Effect: string;
    Action: string | string[];
    Resource: unknown;
  }

  /** The statements of the one policy attached to the role whose logical id starts so. */
  function statementsOf(template: Template, stack: Stack, rolePrefix: string): Statement[] {
    const roleId = Object.keys(template.findResources('AWS::IAM::Role')).find((id) =>
      id.startsWith(rolePrefix),
    );
    if (roleId === undefined) throw new Error(`no role ${rolePrefix}`);
    const policies = Object.values(template.findResources('AWS::IAM::Policy')).filter((p) =>
      JSON.stringify((p as { Properties: { Roles: unknown } }).Properties.Roles).includes(roleId),
    ) as { Properties: { PolicyDocument: { Statement: Statement[] } } }[];
    expect(policies).toHaveLength(1);
    return stack.resolve(policies[0]!.Properties.PolicyDocument.Statement) as Statement[];
  }

  test('Given pull request builds on, Then each service has a pull-request project with its own role, logs and no cache', () => {
    const { stack, template } = synthWithConstruct({ pullRequestBuilds: true });

    template.resourceCountIs('AWS::CodeBuild::Project', 8);
    expect([...stack.builds.pullRequestProjects.keys()]).toEqual(SERVICES);
    const main = project(template, 'DockerCoins-rng');
    const pr = project(template, 'DockerCoins-rng-pr');
    expect(pr.ServiceRole).not.toEqual(main.ServiceRole);
    expect(pr.Environment).toMatchObject({
      PrivilegedMode: true,
      Image: 'aws/codebuild/standard:7.0',
    });
    const env = envOf(pr);
    // Every variable but the cache: no registry cache is read or written
    expect(Object.keys(env).sort()).toEqual(
      Object.values(BUILD_ENV)
        .filter((name) => name !== BUILD_ENV.buildCacheTag)
        .sort(),
    );
    expect(JSON.stringify(env.IMAGE_REPOSITORY)).toContain('PrReporng');
    expect(JSON.stringify(env.IMAGE_REPOSITORY)).not.toMatch(/"Reporng/);
    template.resourceCountIs('AWS::Logs::LogGroup', 8);
  });

  test('Given the rng pull-request role, Then its policy is exactly: its logs, the tools, the ECR login, push to dockercoins/pr/rng', () => {
    const { stack, template } = synthWithConstruct({ pullRequestBuilds: true });
    const logGroupId = Object.keys(template.findResources('AWS::Logs::LogGroup')).find((id) =>
      id.startsWith('BuildsrngPullRequestsLogs'),
    );
    const prRepoId = Object.keys(template.findResources('AWS::ECR::Repository')).find((id) =>
      id.startsWith('PrReporng'),
    );

    const statements = statementsOf(template, stack, 'BuildsrngPullRequestsRole');
    expect(statements.map((s) => s.Sid)).toEqual([
      'WriteBuildLogs',
      'ReadBuildTools',
      'LocateBuildToolsBucket',
      'LogInToEcr',
      'PushPullRequestRepository',
      'PullBuildKitThroughCache',
    ]);
    expect(statements.every((s) => s.Effect === 'Allow')).toBe(true);
    expect(statements[0]).toMatchObject({
      Action: ['logs:CreateLogStream', 'logs:PutLogEvents'],
      Resource: { 'Fn::GetAtt': [logGroupId, 'Arn'] },
    });
    expect(statements[3]).toMatchObject({ Action: 'ecr:GetAuthorizationToken', Resource: '*' });
    expect(statements[4]).toEqual({
      Sid: 'PushPullRequestRepository',
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
      Resource: { 'Fn::GetAtt': [prRepoId, 'Arn'] },
    });
    // Nothing of any service repository, nor of another service's pull-request repository
    expect(JSON.stringify(statements)).not.toMatch(
      /"Repo(hasher|rng|webui|worker)|PrRepo(hasher|webui|worker)/,
    );
  });

  test('Given pull request builds on, Then the service role still pushes to its own repository only', () => {
    const { stack, template } = synthWithConstruct({ pullRequestBuilds: true });

    const push = statementsOf(template, stack, 'BuildsrngRole').find(
      (s) => s.Sid === 'PushOwnRepository',
    );
    expect(JSON.stringify(push?.Resource)).toMatch(/"Reporng/);
    expect(JSON.stringify(push?.Resource)).not.toContain('PrRepo');
  });

  test('Given pull request builds on but a service without a pull-request repository, Then synth stops and says where they go', () => {
    const stack = new Stack(newApp(), 'Test');
    expect(
      () =>
        new ImageBuilds(stack, 'Builds', {
          services: [
            {
              service: service('rng'),
              repository: new ecr.Repository(stack, 'Repo', { repositoryName: 'dockercoins/rng' }),
            },
          ],
          source: GITHUB,
          branches: ['main'],
          pullRequestBuilds: true,
        }),
    ).toThrow(/pullRequestBuilds is on but rng has no pullRequestRepository/);
  });

  test('Given services rng and rng-pr with pull request builds on, Then synth stops: the project names would clash', () => {
    const stack = new Stack(newApp(), 'Test');
    const entry = (name: string) => ({
      service: service(name),
      repository: new ecr.Repository(stack, `Repo-${name}`, {
        repositoryName: `dockercoins/${name}`,
      }),
      pullRequestRepository: new ecr.Repository(stack, `PrRepo-${name}`, {
        repositoryName: `dockercoins/pr/${name}`,
      }),
    });
    expect(
      () =>
        new ImageBuilds(stack, 'Builds', {
          services: [entry('rng'), entry('rng-pr')],
          source: GITHUB,
          branches: ['main'],
          pullRequestBuilds: true,
        }),
    ).toThrow(/services "rng" and "rng-pr" would both have a project named <prefix>-rng-pr/);
  });
});
