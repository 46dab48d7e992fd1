/**
 * The README's main command, for real: the pinned `npx cdk synth` runs bin/app.ts with no AWS
 * account, no credentials and an empty HOME, exactly as a newcomer would.
 */
import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { REPO_ROOT } from './support/app';

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

test('npx cdk synth works with no account and no credentials, and warns about the source owner', () => {
  const outdir = path.join(scratch, 'out');

  const result = cdk('synth', '--quiet', '--output', outdir);

  expect({ status: result.status, stderr: result.stderr }).toEqual({
    status: 0,
    stderr: expect.stringContaining('-c sourceOwner=') as string,
  });
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

test.each([
  [
    ['-c', 'encryption=BOGUS'],
    'Invalid value for context key "encryption": "BOGUS". Expected one of "AES256", "KMS".',
  ],
  [['-c', 'clusterNmae=prod'], 'Unknown context key "clusterNmae". Did you mean "clusterName"?'],
  [
    ['-c', 'pullAccountIds=12345'],
    'Invalid value for context key "pullAccountIds": "12345". Expected AWS account ids of exactly 12 digits',
  ],
])('npx cdk synth %j fails with one clear message and writes nothing', (args, message) => {
  const outdir = path.join(scratch, `bad-${args.join('')}`);

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
  // One for the deploy function's role, one for the verify function's: the same scope.
  const scoped = [
    expect.objectContaining({
      AccessScope: { Type: 'namespace', Namespaces: ['dc-prod', 'dockercoins'] },
    }),
  ];
  expect(entries.map((e) => e.Properties.AccessPolicies)).toEqual([scoped, scoped]);
});
