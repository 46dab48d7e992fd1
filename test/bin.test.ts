/**
 * The README's main command, for real: the pinned `npx cdk synth` runs bin/app.ts with no AWS
 * account, no credentials and an empty HOME, exactly as a newcomer would.
 */
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT, TS_NODE_APP } from './support/app';

const scratch = mkdtempSync(path.join(tmpdir(), 'ship-bin-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The environment of a machine with no AWS configuration at all. */
function credentialFreeEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!key.startsWith('AWS_') && !key.startsWith('CDK_')) env[key] = value;
  }
  return { ...env, HOME: mkdtempSync(path.join(scratch, 'home-')), CI: 'true' };
}

function cdk(...args: string[]): SpawnSyncReturns<string> {
  return spawnSync('npx', ['--no-install', 'cdk', ...args], {
    cwd: REPO_ROOT,
    env: credentialFreeEnv(),
    encoding: 'utf8',
    timeout: 120_000,
  });
}

test('npx cdk is the pinned devDependency, not a global one', () => {
  const pinned = (
    JSON.parse(readFileSync(path.join(REPO_ROOT, 'package.json'), 'utf8')) as {
      devDependencies: Record<string, string>;
    }
  ).devDependencies['aws-cdk'];

  const result = cdk('--version');

  expect(result.status).toBe(0);
  expect(result.stdout.trim().split(' ')[0]).toBe(pinned);
});

test('npx cdk synth works with no account and no credentials, and warns once about the source owner', () => {
  const outdir = path.join(scratch, 'out');

  const result = cdk('synth', '--quiet', '--output', outdir);

  expect({ status: result.status, stderr: result.stderr }).toEqual({
    status: 0,
    stderr: expect.stringContaining('-c sourceOwner=') as string,
  });
  // Once per synth, not once per stack (three stacks here).
  expect(result.stderr.match(/sourceOwner is the default/g)).toHaveLength(1);
  const template = JSON.parse(
    readFileSync(path.join(outdir, 'DockerCoins-Registry.template.json'), 'utf8'),
  ) as { Resources: Record<string, { Type: string }> };
  const types = Object.values(template.Resources).map((r) => r.Type);
  expect(types.filter((t) => t === 'AWS::ECR::Repository')).toHaveLength(4);
  expect(types).toContain('AWS::ECR::PullThroughCacheRule');

  // The deploy, verify and report functions were bundled, by the esbuild of devDependencies (no Docker here).
  const assets = JSON.parse(
    readFileSync(path.join(outdir, 'DockerCoins-Deployer.assets.json'), 'utf8'),
  ) as { files: Record<string, { source: { path: string; packaging?: string } }> };
  const bundles = Object.values(assets.files)
    .filter((file) => file.source.packaging === 'zip')
    .map((file) => path.join(outdir, file.source.path));
  expect(bundles).toHaveLength(3);
  for (const bundle of bundles) {
    expect(existsSync(path.join(bundle, 'index.js'))).toBe(true);
    expect(existsSync(path.join(bundle, 'index.js.map'))).toBe(true);
  }
});

test('cdk.json runs bin/cdk-app.js, and its templates are the very ones ts-node gave', () => {
  const cdkJson = JSON.parse(readFileSync(path.join(REPO_ROOT, 'cdk.json'), 'utf8')) as {
    app: string;
  };
  expect(cdkJson.app).toBe('node bin/cdk-app.js');
  // The cluster too, as one pass from an empty account synthesizes it (no initialImageTag): it
  // brings the most constructs and the kubectl layer.
  const context = ['-c', 'sourceOwner=acme', '-c', 'createCluster=true'];
  const fast = path.join(scratch, 'same-fast');
  const slow = path.join(scratch, 'same-ts-node');

  const results = [
    cdk('synth', '--quiet', '--output', fast, ...context),
    cdk('synth', '--quiet', '--output', slow, '--app', TS_NODE_APP, ...context),
  ];

  expect(results.map((r) => ({ status: r.status, stderr: r.stderr }))).toEqual(
    results.map(() => ({ status: 0, stderr: expect.not.stringMatching(/error/i) as string })),
  );
  const templates = (dir: string): Record<string, string> =>
    Object.fromEntries(
      readdirSync(dir)
        .filter((file) => file.endsWith('.template.json'))
        .map((file) => [file, readFileSync(path.join(dir, file), 'utf8')]),
    );
  expect(Object.keys(templates(fast)).sort()).toEqual([
    'DockerCoins-Builds.template.json',
    'DockerCoins-Cluster.template.json',
    'DockerCoins-Deployer.template.json',
    'DockerCoins-Registry.template.json',
  ]);
  expect(templates(fast)).toEqual(templates(slow));
});

test.each([
  [
    ['-c', 'encryption=BOGUS'],
    'Invalid value for context key "encryption": "BOGUS". Expected one of "AES256", "KMS".',
  ],
  [['-c', 'clusterNmae=prod'], 'Unknown context key "clusterNmae". Did you mean "clusterName"?'],
  [
    ['-c', `services=${Array.from({ length: 101 }, (_, i) => `svc${i}`).join(',')}`],
    '101 services is more than one app holds: at most 100',
  ],
  [
    ['-c', 'services=a-1,a1'],
    'Services "a-1" and "a1" would share the stack outputs RepositoryUriA1',
  ],
  [
    [
      '-c',
      'createCluster=true',
      '-c',
      'initialImageTag=6e0de7938dda',
      '-c',
      'services=hasher,miner',
    ],
    'Service "miner" runs in the Deployment "miner", which k8s/overlays/ecr does not have',
  ],
  [
    ['-c', 'pullAccountIds=12345'],
    'Invalid value for context key "pullAccountIds": "12345". Expected AWS account ids of exactly 12 digits',
  ],
])('npx cdk synth %j fails with one clear message and writes nothing', (args, message) => {
  const outdir = path.join(scratch, `bad-${args.join('').slice(0, 60)}`);

  const result = cdk('synth', '--quiet', '--output', outdir, ...args);

  expect(result.status).not.toBe(0);
  expect(result.stderr).toContain(`Configuration error: ${message}`);
  // A user error is not a crash: no stack trace.
  expect(result.stderr).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m);
  expect(existsSync(path.join(outdir, 'DockerCoins-Registry.template.json'))).toBe(false);
});

test('npx cdk synth -c environments=<JSON> deploys to each environment (the -c form of a list of objects)', () => {
  const outdir = path.join(scratch, 'environments');

  const result = cdk(
    'synth',
    '--quiet',
    '--output',
    outdir,
    '-c',
    'sourceOwner=acme',
    '-c',
    'environments=[{"name":"main","namespace":"dockercoins","branches":["main"]},' +
      '{"name":"prod","namespace":"dc-prod","releaseTags":true}]',
  );

  expect({ status: result.status, stderr: result.stderr }).toEqual({
    status: 0,
    stderr: expect.not.stringContaining('Configuration error') as string,
  });
  const template = JSON.parse(
    readFileSync(path.join(outdir, 'DockerCoins-Deployer.template.json'), 'utf8'),
  ) as { Resources: Record<string, { Type: string; Properties: Record<string, unknown> }> };
  const entries = Object.values(template.Resources).filter(
    (r) => r.Type === 'AWS::EKS::AccessEntry',
  );
  // One entry per role (the deploy function's, the verify function's) for the one cluster, each
  // mapping to the deployer's group (no access policy); synth says, once, that both namespaces
  // need the Role.
  expect(entries.map((e) => [e.Properties.KubernetesGroups, e.Properties.AccessPolicies])).toEqual([
    [['dockercoins-deployer'], undefined],
    [['dockercoins-deployer'], undefined],
  ]);
  expect(result.stderr).toContain(
    'The deployer enters dockercoins/dc-prod, dockercoins/dockercoins (cluster/namespace)',
  );
});
