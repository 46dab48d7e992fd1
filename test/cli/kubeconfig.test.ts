import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import {
  KubeCredentialError,
  KubeconfigError,
  awsEksGetToken,
  kubeconfigConnector,
  readKubeconfig,
  redactCommandLine,
  resolveContext,
  type ExecConfig,
  type KubeconfigConnector,
  type KubeconfigConnectorOptions,
} from '../../cli/kubeconfig';
import { PermanentError, TransientError } from '../../core/types';
import { clientCertificate, selfSignedCertificate } from '../support/certificate';
import type { AwsCredentials } from '../support/eks-token';
import { startKubeApiServer, type KubeApiServer } from '../support/kube-apiserver';
import { useEnv } from '../support/moto';
import { runShipCaptured } from '../support/ship';

// Kubeconfigs written by the test, read as kubectl reads them, and used against the in-test API
// server, which authenticates static tokens, client certificates of its client CA, and EKS tokens
// of these credentials (for eu-west-1: a token signed for another region is refused).

jest.setTimeout(60_000);

const REGION = 'eu-west-1';
/** What the in-process signer finds in this process's environment. */
const ENV_CREDENTIALS: AwsCredentials = {
  accessKeyId: 'AKIDSHIPENVIRONMENT1',
  secretAccessKey: 'ship/env/secret',
};
/** The `ship` profile of the AWS config files this test writes. */
const PROFILE_CREDENTIALS: AwsCredentials = {
  accessKeyId: 'AKIDSHIPPROFILE00001',
  secretAccessKey: 'ship/profile/secret',
};
/** Only in the environment a spawned `aws` gets. */
const SPAWN_CREDENTIALS: AwsCredentials = {
  accessKeyId: 'AKIDSHIPSPAWNEDCLI01',
  secretAccessKey: 'ship/spawned/secret',
};
const TOKEN = 'static-token-of-alice';
const ROTATED_TOKEN = 'static-token-of-carol';
const V1 = 'client.authentication.k8s.io/v1';
const V1BETA1 = 'client.authentication.k8s.io/v1beta1';
const DEPLOYMENT = {
  apiVersion: 'apps/v1',
  kind: 'Deployment',
  metadata: { name: 'hasher', labels: { app: 'hasher' } },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: 'hasher' } },
    template: {
      metadata: { labels: { app: 'hasher' } },
      spec: { containers: [{ name: 'hasher', image: '127.0.0.1:30500/hasher:6e0de7938dda' }] },
    },
  },
};

let kube: KubeApiServer;
let work: string;
let bob: { certPath: string; keyPath: string };
let restoreEnv: () => void;
const connectors: KubeconfigConnector[] = [];

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'ship-kubeconfig-'));
  const clientCa = selfSignedCertificate(work, {
    commonName: 'kube-client-ca',
    keyFile: 'client-ca-key.pem',
    certFile: 'client-ca.pem',
  });
  bob = clientCertificate(work, { ca: clientCa, commonName: 'bob' });
  kube = await startKubeApiServer({
    clusterName: 'dockercoins',
    region: REGION,
    credentials: [ENV_CREDENTIALS, PROFILE_CREDENTIALS, SPAWN_CREDENTIALS],
    staticTokens: { [TOKEN]: 'alice', [ROTATED_TOKEN]: 'carol' },
    clientCa: { certPem: readFileSync(clientCa.certPath, 'utf8') },
  });
  kube.putDeployment(DEPLOYMENT, { namespace: 'dockercoins' });
  // The in-process signer resolves credentials as the SDK does, from this process: its config
  // files are these, and its keys (ENV_CREDENTIALS) are set by the tests that want them.
  writeFileSync(path.join(work, 'aws-config'), `[profile ship]\nregion = ${REGION}\n`);
  writeFileSync(
    path.join(work, 'aws-credentials'),
    `[ship]\naws_access_key_id = ${PROFILE_CREDENTIALS.accessKeyId}\n` +
      `aws_secret_access_key = ${PROFILE_CREDENTIALS.secretAccessKey}\n`,
  );
  restoreEnv = useEnv({
    AWS_CONFIG_FILE: path.join(work, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(work, 'aws-credentials'),
    AWS_EC2_METADATA_DISABLED: 'true',
  });
});

afterAll(async () => {
  restoreEnv?.();
  await kube?.stop();
  rmSync(work, { recursive: true, force: true });
});

beforeEach(() => {
  kube.authorize = undefined;
  kube.resetRequests();
});
afterEach(() => {
  for (const connector of connectors.splice(0)) connector.close();
});

let written = 0;
/** Writes a kubeconfig with one context `ctx` (cluster `c`, user `u`); returns its path. */
function kubeconfig(
  user: Record<string, unknown>,
  cluster: Record<string, unknown> = {
    server: kube.url,
    'certificate-authority-data': kube.caData,
  },
  dir = work,
): string {
  written += 1;
  const file = path.join(dir, `config-${written}`);
  writeFileSync(
    file,
    stringify({
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u', namespace: 'dockercoins' } }],
      'current-context': 'ctx',
    }),
  );
  return file;
}

function connect(
  file: string,
  options: Partial<KubeconfigConnectorOptions> = {},
): KubeconfigConnector {
  const connector = kubeconfigConnector(
    resolveContext(readKubeconfig({ path: file, env: {}, homeDir: work }), undefined),
    { env: {}, ...options },
  );
  connectors.push(connector);
  return connector;
}

/** Reads the Deployment through the kubeconfig; who the server says sent it, and how. */
async function whoAmI(
  file: string,
  options: Partial<KubeconfigConnectorOptions> = {},
): Promise<{ user: string | undefined; source: string }> {
  const connector = connect(file, options);
  const found = await (await connector.connect()).getDeployment('dockercoins', 'hasher');
  expect(found?.metadata.name).toBe('hasher');
  return { user: kube.requests.at(-1)?.user, source: connector.credentialSource };
}

async function failure(promise: Promise<unknown>): Promise<Error> {
  try {
    await promise;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a failure, but the call succeeded');
}

let scripts = 0;
/** An executable Node.js script (a credential plugin, or a fake `aws`) in `dir`. */
function script(body: string, dir = work, name = `plugin-${++scripts}.js`): string {
  const file = path.join(dir, name);
  writeFileSync(file, `#!${process.execPath}\n${body}\n`, { mode: 0o755 });
  return file;
}

/** A plugin that logs each run (KUBERNETES_EXEC_INFO and two variables) and prints `output`. */
function loggingPlugin(output: string, dir = work): { command: string; runs: () => unknown[] } {
  const log = path.join(dir, `runs-${++scripts}.jsonl`);
  writeFileSync(log, '');
  const command = script(
    `const fs = require('fs');
const runs = fs.readFileSync(${JSON.stringify(log)}, 'utf8').split('\\n').filter(Boolean).length;
fs.appendFileSync(${JSON.stringify(log)}, JSON.stringify({
  info: JSON.parse(process.env.KUBERNETES_EXEC_INFO),
  fromExecEnv: process.env.FROM_EXEC_ENV,
  fromParent: process.env.FROM_PARENT,
}) + '\\n');
const output = ${output};
process.stdout.write(typeof output === 'function' ? output(runs) : output);`,
    dir,
  );
  const runs = (): unknown[] =>
    readFileSync(log, 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => JSON.parse(line) as unknown);
  return { command, runs };
}

const credential = (token: string, extra: object = {}, apiVersion = V1BETA1): string =>
  JSON.stringify({ apiVersion, kind: 'ExecCredential', status: { token, ...extra } });

describe('credentials: each kind of kubeconfig user against the API server', () => {
  test('Given a static token, when a Deployment is read, then the server knows alice', async () => {
    expect(await whoAmI(kubeconfig({ token: TOKEN }))).toEqual({ user: 'alice', source: 'token' });
  });

  test('Given a tokenFile relative to the kubeconfig, when it is rotated between requests, then each request sends what the file holds then', async () => {
    const dir = mkdtempSync(path.join(work, 'token-file-'));
    writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
    const connector = connect(kubeconfig({ tokenFile: 'token' }, undefined, dir));
    const reader = await connector.connect();
    await reader.getDeployment('dockercoins', 'hasher');
    writeFileSync(path.join(dir, 'token'), ROTATED_TOKEN);
    await reader.getDeployment('dockercoins', 'hasher');
    expect(kube.requests.map((r) => r.user)).toEqual(['alice', 'carol']);
    expect(connector.credentialSource).toBe('token-file');
  });

  test('Given a tokenFile that is empty, when a Deployment is read, then KubeCredentialError naming the file, and no request', async () => {
    writeFileSync(path.join(work, 'empty-token'), '\n');
    const reader = await connect(kubeconfig({ tokenFile: 'empty-token' })).connect();
    const error = await failure(reader.getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(KubeCredentialError);
    expect(error.message).toMatch(/tokenFile .*empty-token is empty; write the bearer token/);
    expect(kube.requests).toHaveLength(0);
  });

  test.each([
    [
      'files, relative to the kubeconfig',
      () => ({
        'client-certificate': path.basename(bob.certPath),
        'client-key': path.basename(bob.keyPath),
      }),
    ],
    [
      '-data',
      () => ({
        'client-certificate-data': readFileSync(bob.certPath).toString('base64'),
        'client-key-data': readFileSync(bob.keyPath).toString('base64'),
      }),
    ],
  ])(
    "Given a client certificate as %s, when a Deployment is read, then the server knows bob (the certificate's CN)",
    async (_name, user) => {
      expect(await whoAmI(kubeconfig(user()))).toEqual({
        user: 'bob',
        source: 'client-certificate',
      });
    },
  );

  test('Given a context without a user, when a Deployment is read, then no credentials are sent and the 401 says to check the kubeconfig user', async () => {
    const file = path.join(work, 'anonymous');
    writeFileSync(
      file,
      stringify({
        clusters: [
          { name: 'c', cluster: { server: kube.url, 'certificate-authority-data': kube.caData } },
        ],
        contexts: [{ name: 'ctx', context: { cluster: 'c' } }],
        'current-context': 'ctx',
      }),
    );
    const connector = connect(file);
    const error = await failure((await connector.connect()).getDeployment('dockercoins', 'hasher'));
    expect(connector.credentialSource).toBe('none');
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(/401 Unauthorized .*kubectl --context ctx auth whoami/);
    expect(kube.requests.map((r) => r.authFailure)).toEqual(['no bearer token']);
  });
});

describe('credentials: exec plugins', () => {
  test.each([
    [V1BETA1, 'an expiry far ahead', 1, { expirationTimestamp: '2999-01-01T00:00:00Z' }],
    [V1, 'no expiry (kept for the life of the process)', 1, {}],
    // The two requests at once share one run; the third finds the token expired.
    [V1BETA1, 'an expiry already past', 2, { expirationTimestamp: '2000-01-01T00:00:00Z' }],
  ])(
    'Given a %s plugin (a relative command) giving a token with %s, when three requests are made (two at once), then it runs %i time(s)',
    async (apiVersion, _expiry, expectedRuns, extra) => {
      const dir = mkdtempSync(path.join(work, 'exec-'));
      const plugin = loggingPlugin(JSON.stringify(credential(TOKEN, extra, apiVersion)), dir);
      const file = kubeconfig(
        {
          exec: {
            apiVersion,
            command: `./${path.basename(plugin.command)}`,
            env: [{ name: 'FROM_EXEC_ENV', value: 'exec-entry' }],
          },
        },
        undefined,
        dir,
      );
      const connector = connect(file, { env: { FROM_PARENT: 'ship-env' } });
      const reader = await connector.connect();
      await Promise.all([
        reader.getDeployment('dockercoins', 'hasher'),
        reader.getDeployment('dockercoins', 'hasher'),
      ]);
      await reader.getDeployment('dockercoins', 'hasher');

      expect(connector.credentialSource).toBe('exec');
      expect(kube.requests.map((r) => r.user)).toEqual(['alice', 'alice', 'alice']);
      expect(plugin.runs()).toHaveLength(expectedRuns);
      expect(plugin.runs()[0]).toEqual({
        info: { apiVersion, kind: 'ExecCredential', spec: { interactive: false } },
        fromExecEnv: 'exec-entry',
        fromParent: 'ship-env',
      });
    },
  );

  test('Given provideClusterInfo, then KUBERNETES_EXEC_INFO carries the server and its CA', async () => {
    const plugin = loggingPlugin(JSON.stringify(credential(TOKEN)));
    await whoAmI(
      kubeconfig({
        exec: { apiVersion: V1BETA1, command: plugin.command, provideClusterInfo: true },
      }),
    );
    expect(plugin.runs()[0]).toMatchObject({
      info: {
        spec: {
          interactive: false,
          cluster: { server: kube.url, 'certificate-authority-data': kube.caData },
        },
      },
    });
  });

  test('Given a token the server no longer accepts, when a request answers 401, then the plugin runs again and the request is sent again with the new token', async () => {
    const plugin = loggingPlugin(
      `(runs) => ${JSON.stringify(credential('revoked-token'))}.replace('revoked-token', runs === 0 ? 'revoked-token' : ${JSON.stringify(TOKEN)})`,
    );
    expect(
      await whoAmI(kubeconfig({ exec: { apiVersion: V1BETA1, command: plugin.command } })),
    ).toEqual({
      user: 'alice',
      source: 'exec',
    });
    expect(kube.requests.map((r) => r.status)).toEqual([401, 200]);
    expect(plugin.runs()).toHaveLength(2);
  });

  test.each<[string, () => Record<string, unknown>, RegExp]>([
    [
      'is not installed',
      () => ({ command: 'ship-test-no-such-plugin', installHint: 'brew install ship-test-plugin' }),
      /plugin `ship-test-no-such-plugin` \(.*users\[0\]\.user\.exec\) is not installed \(or not on PATH\): brew install ship-test-plugin$/,
    ],
    [
      'exits 1',
      () => ({
        command: script('process.stderr.write("token expired, run login"); process.exit(1);'),
      }),
      /plugin `.*plugin-\d+\.js` \(.*\) failed \(exit 1\): token expired, run login\. Fix what it says/,
    ],
    [
      'prints garbage',
      () => ({ command: script('process.stdout.write("hello, world");') }),
      /printed 12 bytes that are not JSON \(starting "hello, world"\), not an ExecCredential/,
    ],
    [
      'answers another apiVersion than the kubeconfig asks for',
      () => ({
        command: script(`process.stdout.write(${JSON.stringify(credential('x', {}, V1))});`),
      }),
      /printed a ExecCredential of client\.authentication\.k8s\.io\/v1, not the ExecCredential of client\.authentication\.k8s\.io\/v1beta1 its exec\.apiVersion asks for.*set exec\.apiVersion/,
    ],
    [
      'prints another kind',
      () => ({
        command: script(
          `process.stdout.write(JSON.stringify({ apiVersion: "${V1BETA1}", kind: "Status" }));`,
        ),
      }),
      /printed a Status of client\.authentication\.k8s\.io\/v1beta1, not the ExecCredential/,
    ],
    [
      'gives a client certificate, no token',
      () => ({
        command: script(
          `process.stdout.write(JSON.stringify({ apiVersion: "${V1BETA1}", kind: "ExecCredential", status: { clientCertificateData: "x", clientKeyData: "y" } }));`,
        ),
      }),
      /without status\.token \(a client certificate instead, which ship does not take from plugins\)/,
    ],
    [
      'gives an expiry that is no time',
      () => ({
        command: script(
          `process.stdout.write(${JSON.stringify(credential('x', { expirationTimestamp: 'soon' }))});`,
        ),
      }),
      /status\.expirationTimestamp "soon", which is not an RFC 3339 time/,
    ],
  ])(
    'Given an exec plugin that %s, when a Deployment is read, then KubeCredentialError naming the plugin and the fix, and no request',
    async (_name, exec, message) => {
      const reader = await connect(kubeconfig({ exec: { apiVersion: V1BETA1, ...exec() } }), {
        env: { PATH: process.env.PATH },
      }).connect();
      const error = await failure(reader.getDeployment('dockercoins', 'hasher'));
      expect(error).toBeInstanceOf(KubeCredentialError);
      expect(error.message).toMatch(message);
      expect(kube.requests).toHaveLength(0);
    },
  );
});

describe("credentials: an exec plugin's secrets stay out of messages", () => {
  const SECRET = 'hunter2-oidc-client-secret';
  const TOKEN = 'eyJhbGciOiJSUzI1NiJ9abcdefghijklmnopqrstuvwxyz0123';

  test.each<[string[], string]>([
    [
      ['get-token', `--oidc-client-secret=${SECRET}`],
      'kubelogin get-token --oidc-client-secret=<redacted>',
    ],
    [['--token', 'abc123', '--verbose'], 'kubelogin --token <redacted> --verbose'],
    [
      ['--password=p', '--api-key', 'k', '--client-key=/k.pem'],
      'kubelogin --password=<redacted> --api-key <redacted> --client-key=<redacted>',
    ],
    [
      ['--cluster-name', 'prod', '--region', 'eu-west-1'],
      'kubelogin --cluster-name prod --region eu-west-1',
    ],
    [[TOKEN], 'kubelogin <redacted>'],
    [
      ['--oidc-issuer-url=https://issuer.example', 'get-token'],
      'kubelogin --oidc-issuer-url=https://issuer.example get-token',
    ],
  ])('redactCommandLine(kubelogin %j) → %s', (args, shown) => {
    expect(redactCommandLine('kubelogin', args)).toBe(shown);
  });

  test('Given a plugin that fails and echoes its arguments, when ship pauses a service, then neither the command line nor its stderr shows the secrets, and the failure is the plugin\'s, not "unexpected"', async () => {
    const command = script(
      'process.stderr.write("login failed for " + process.argv.slice(2).join(" ")); process.exit(1);',
    );
    const file = kubeconfig({
      exec: {
        apiVersion: V1BETA1,
        command,
        args: [`--oidc-client-secret=${SECRET}`, '--token', TOKEN],
      },
    });
    const run = await runShipCaptured(['pause', 'hasher', '--kubeconfig', file], {
      env: { PATH: process.env.PATH },
    });
    const said = run.stdout + run.stderr;
    expect(run.status).toBe(1);
    expect(said).not.toContain(SECRET);
    expect(said).not.toContain(TOKEN);
    expect(said).not.toMatch(/unexpected error/);
    expect(said).toMatch(
      /the credential plugin `.*plugin-\d+\.js --oidc-client-secret=<redacted> --token <redacted>` \(.*\) failed \(exit 1\): login failed for --oidc-client-secret=<redacted> --token <redacted>\. Fix what it says/,
    );
    expect(kube.requests).toHaveLength(0);
  });

  test('A KubeCredentialError is a permanent failure with its own reason, so deploys report it as it is', () => {
    const error = new KubeCredentialError('the plugin failed');
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.reason).toBe('credentials');
    expect(error.name).toBe('KubeCredentialError');
  });
});

describe('credentials: aws eks get-token', () => {
  /** A fake `aws` first on PATH, which leaves a mark when run: proof of no process, when absent. */
  let fakeBin: string;
  const ran = (): boolean => existsSync(path.join(fakeBin, 'ran'));
  beforeAll(() => {
    fakeBin = path.join(work, 'fake-bin');
    mkdirSync(fakeBin);
    script(
      `require('fs').writeFileSync(${JSON.stringify(path.join(work, 'fake-bin', 'ran'))}, ''); process.exit(3);`,
      fakeBin,
      'aws',
    );
  });
  beforeEach(() => rmSync(path.join(fakeBin, 'ran'), { force: true }));

  const ENV_KEYS = {
    AWS_ACCESS_KEY_ID: ENV_CREDENTIALS.accessKeyId,
    AWS_SECRET_ACCESS_KEY: ENV_CREDENTIALS.secretAccessKey,
  };

  test.each<[string, string[], { name: string; value: string }[], string, Record<string, string>]>([
    [
      'the line aws eks update-kubeconfig writes (--region), keys in the environment',
      ['eks', 'get-token', '--cluster-name', 'dockercoins', '--region', REGION],
      [],
      ENV_CREDENTIALS.accessKeyId,
      ENV_KEYS,
    ],
    [
      '--profile, whose region and credentials come from the AWS config files',
      ['eks', 'get-token', '--cluster-name', 'dockercoins', '--profile', 'ship'],
      [],
      PROFILE_CREDENTIALS.accessKeyId,
      {},
    ],
    [
      'AWS_PROFILE and AWS_REGION in the exec env',
      ['eks', 'get-token', '--cluster-name', 'dockercoins'],
      [
        { name: 'AWS_PROFILE', value: 'ship' },
        { name: 'AWS_REGION', value: REGION },
      ],
      PROFILE_CREDENTIALS.accessKeyId,
      {},
    ],
  ])(
    'Given %s, when a Deployment is read, then the token is signed in-process (no process runs) for the right region and identity, and the server accepts it',
    async (_name, args, env, user, processEnv) => {
      const restore = useEnv(processEnv);
      try {
        const file = kubeconfig({ exec: { apiVersion: V1BETA1, command: 'aws', args, env } });
        expect(
          await whoAmI(file, {
            env: { PATH: `${fakeBin}${path.delimiter}${process.env.PATH}`, ...processEnv },
          }),
        ).toEqual({ user, source: 'aws-eks-in-process' });
        expect(ran()).toBe(false);
      } finally {
        restore();
      }
    },
  );

  test('Given no region anywhere, when a Deployment is read, then KubeCredentialError saying to add --region', async () => {
    const file = kubeconfig({
      exec: {
        apiVersion: V1BETA1,
        command: 'aws',
        args: ['eks', 'get-token', '--cluster-name', 'dockercoins'],
      },
    });
    const error = await failure(
      (await connect(file).connect()).getDeployment('dockercoins', 'hasher'),
    );
    expect(error).toBeInstanceOf(KubeCredentialError);
    expect(error.message).toMatch(
      /aws eks get-token --cluster-name dockercoins \(signed in-process\): no AWS region .*add --region <region>/,
    );
  });

  test.each([V1BETA1, V1])(
    'Given an argument in-process signing does not take (--output json), when a Deployment is read, then the real aws CLI runs (%s), with the env ship was given, and the server accepts its token',
    async (apiVersion) => {
      const home = mkdtempSync(path.join(work, 'aws-home-'));
      const file = kubeconfig({
        exec: {
          apiVersion,
          command: 'aws',
          args: ['eks', 'get-token', '--cluster-name', 'dockercoins', '--output', 'json'],
        },
      });
      expect(
        await whoAmI(file, {
          env: {
            PATH: process.env.PATH,
            HOME: home,
            AWS_ACCESS_KEY_ID: SPAWN_CREDENTIALS.accessKeyId,
            AWS_SECRET_ACCESS_KEY: SPAWN_CREDENTIALS.secretAccessKey,
            AWS_DEFAULT_REGION: REGION,
            AWS_CONFIG_FILE: path.join(home, 'config'),
            AWS_SHARED_CREDENTIALS_FILE: path.join(home, 'credentials'),
            AWS_EC2_METADATA_DISABLED: 'true',
          },
        }),
      ).toEqual({ user: SPAWN_CREDENTIALS.accessKeyId, source: 'exec' });
    },
  );

  const exec = (args: string[], env: ExecConfig['env'] = [], command = 'aws'): ExecConfig => ({
    command,
    args,
    env,
    apiVersion: V1BETA1,
    installHint: undefined,
    provideClusterInfo: false,
    at: 'config: users[0].user.exec',
  });
  const GET_TOKEN = ['eks', 'get-token', '--cluster-name', 'c'];

  test.each<[string, ExecConfig, NodeJS.ProcessEnv, object | undefined]>([
    [
      'update-kubeconfig’s line',
      exec([...GET_TOKEN, '--region', 'eu-west-1']),
      {},
      { clusterName: 'c', region: 'eu-west-1', profile: undefined },
    ],
    [
      'an absolute path to aws, --profile',
      exec([...GET_TOKEN, '--profile', 'p'], [], '/usr/local/bin/aws'),
      {},
      { clusterName: 'c', region: undefined, profile: 'p' },
    ],
    [
      'the flag over the exec env over ship’s env; AWS_REGION over AWS_DEFAULT_REGION',
      exec(
        [...GET_TOKEN, '--profile', 'flag'],
        [{ name: 'AWS_DEFAULT_REGION', value: 'exec-region-1' }],
      ),
      { AWS_PROFILE: 'env', AWS_REGION: 'env-region-1' },
      { clusterName: 'c', region: 'env-region-1', profile: 'flag' },
    ],
    [
      'the exec env over ship’s env',
      exec(GET_TOKEN, [
        { name: 'AWS_PROFILE', value: 'exec' },
        { name: 'AWS_REGION', value: 'exec-region-1' },
      ]),
      { AWS_PROFILE: 'env', AWS_REGION: 'env-region-1' },
      { clusterName: 'c', region: 'exec-region-1', profile: 'exec' },
    ],
    [
      'AWS_PROFILE next to AWS_ACCESS_KEY_ID (the CLI would take the keys, the SDK the profile)',
      exec(GET_TOKEN, [{ name: 'AWS_PROFILE', value: 'p' }]),
      { AWS_ACCESS_KEY_ID: 'AKID', AWS_REGION: 'eu-west-1' },
      undefined,
    ],
    [
      '--profile next to AWS_ACCESS_KEY_ID (both take the profile)',
      exec([...GET_TOKEN, '--profile', 'p']),
      { AWS_ACCESS_KEY_ID: 'AKID', AWS_REGION: 'eu-west-1' },
      { clusterName: 'c', region: 'eu-west-1', profile: 'p' },
    ],
    [
      '--role-arn (an AssumeRole first)',
      exec([...GET_TOKEN, '--role-arn', 'arn:aws:iam::1:role/x']),
      {},
      undefined,
    ],
    ['--output json', exec([...GET_TOKEN, '--output', 'json']), {}, undefined],
    ['--region=<r> (one argument)', exec([...GET_TOKEN, '--region=eu-west-1']), {}, undefined],
    [
      '--region twice',
      exec([...GET_TOKEN, '--region', 'a-b-1', '--region', 'c-d-2']),
      {},
      undefined,
    ],
    ['a flag without its value', exec([...GET_TOKEN, '--region']), {}, undefined],
    [
      '--cluster-id instead of --cluster-name',
      exec(['eks', 'get-token', '--cluster-id', 'c']),
      {},
      undefined,
    ],
    ['another operation', exec(['sts', 'get-caller-identity']), {}, undefined],
    ['another command', exec(GET_TOKEN, [], 'aws-iam-authenticator'), {}, undefined],
    [
      'another exec env entry',
      exec(GET_TOKEN, [{ name: 'AWS_CONFIG_FILE', value: '/x' }]),
      {},
      undefined,
    ],
  ])(
    'Given %s, when classified, then in-process signing takes it only where it does what the CLI does',
    (_name, config, env, expected) => {
      expect(awsEksGetToken(config, env)).toEqual(expected);
    },
  );
});

describe('TLS', () => {
  test('Given a cluster without a CA, when its server is self-signed, then the request fails before any HTTP, saying to give the CA (verification is never skipped)', async () => {
    const connector = connect(kubeconfig({ token: TOKEN }, { server: kube.url }));
    const error = await failure((await connector.connect()).getDeployment('dockercoins', 'hasher'));
    expect(error).toBeInstanceOf(TransientError);
    expect(error.message).toMatch(
      /does not verify against Node\.js's trusted public CAs \(no cluster CA was given\).*Verification is never turned off; the kubeconfig gives no CA for context "ctx": add the cluster's CA as certificate-authority-data/,
    );
    expect(kube.requests).toHaveLength(0);
  });

  test('Given a certificate-authority path relative to the kubeconfig, when a Deployment is read, then the CA is read next to the kubeconfig and verifies the server', async () => {
    const dir = mkdtempSync(path.join(work, 'ca-'));
    writeFileSync(path.join(dir, 'ca.pem'), kube.caPem);
    const file = kubeconfig(
      { token: TOKEN },
      { server: kube.url, 'certificate-authority': 'ca.pem' },
      dir,
    );
    expect(
      resolveContext(readKubeconfig({ path: file, env: {}, homeDir: work }), 'ctx').caPem,
    ).toBe(kube.caPem);
    expect((await whoAmI(file)).user).toBe('alice');
  });
});

describe("the client ship uses: ReplicaSets, its field manager, and a 403's hint", () => {
  test("Given ship's field manager, when ReplicaSets are listed and the Deployment patched, then the controller's ReplicaSets come back and the patch carries the field manager", async () => {
    const reader = await connect(kubeconfig({ token: TOKEN }), {
      fieldManager: 'dockercoins-ship',
    }).connect();
    const listed = await reader.listReplicaSets('dockercoins', 'app=hasher');
    expect(listed.map((rs) => rs.metadata.name)).toEqual(
      kube.replicaSetsOf('dockercoins', 'hasher').map((rs) => rs.metadata.name),
    );
    expect(listed).not.toHaveLength(0);
    await reader.patchDeployment('dockercoins', 'hasher', {
      metadata: { annotations: { a: 'b' } },
    });
    expect(kube.requests.map((r) => [r.method, r.query])).toEqual([
      ['GET', { labelSelector: 'app=hasher' }],
      ['PATCH', { fieldManager: 'dockercoins-ship' }],
    ]);
  });

  test("Given RBAC that refuses the list, then PermanentError forbidden naming the kubeconfig user and kubectl auth can-i; a caller's accessHint replaces it", async () => {
    kube.authorize = (request) => request.verb !== 'list';
    const file = kubeconfig({ token: TOKEN });
    const error = await failure(
      (await connect(file).connect()).listReplicaSets('dockercoins', 'app=hasher'),
    );
    expect(error).toBeInstanceOf(PermanentError);
    expect(error.message).toMatch(
      /403 Forbidden: .*User "alice" cannot list.*RBAC does not allow this to kubeconfig user "u"; see kubectl --context ctx auth can-i --list/,
    );
    const hinted = connect(file, {
      accessHint: { unauthorized: 'x', forbidden: 'Apply k8s/rbac/ship.' },
    });
    expect(
      (await failure((await hinted.connect()).listReplicaSets('dockercoins', 'app=hasher')))
        .message,
    ).toMatch(/cannot list.*\. Apply k8s\/rbac\/ship\.$/);
  });
});

describe('reading kubeconfig files as kubectl does', () => {
  test('Given KUBECONFIG with two files in two folders (and a missing one), when read, then the first to define a name wins, current-context comes from the first that sets it, and relative paths are relative to the file that says them', () => {
    const [one, two] = ['merge-1', 'merge-2'].map((d) => mkdtempSync(path.join(work, d)));
    writeFileSync(path.join(two!, 'ca.pem'), kube.caPem);
    writeFileSync(
      path.join(one!, 'config'),
      stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://first.example' } }],
        users: [{ name: 'u', user: { token: 'first' } }],
        contexts: [{ name: 'a', context: { cluster: 'c', user: 'u' } }],
      }),
    );
    writeFileSync(
      path.join(two!, 'config'),
      stringify({
        'current-context': 'b',
        clusters: [
          { name: 'c', cluster: { server: 'https://second.example' } },
          {
            name: 'd',
            cluster: { server: 'https://d.example:6443', 'certificate-authority': 'ca.pem' },
          },
        ],
        users: [{ name: 'u', user: { token: 'second' } }],
        contexts: [
          { name: 'a', context: { cluster: 'd' } },
          { name: 'b', context: { cluster: 'c', user: 'u', namespace: 'ns' } },
          { name: 'd', context: { cluster: 'd' } },
        ],
      }),
    );
    const config = readKubeconfig({
      env: {
        KUBECONFIG: [
          path.join(one!, 'config'),
          path.join(work, 'missing'),
          path.join(two!, 'config'),
        ].join(path.delimiter),
      },
      homeDir: work,
    });
    expect(resolveContext(config, undefined)).toEqual({
      contextName: 'b',
      userName: 'u',
      server: 'https://first.example',
      caPem: undefined,
      namespace: 'ns',
      auth: { kind: 'token', token: 'first' },
    });
    expect(resolveContext(config, 'a').server).toBe('https://first.example');
    expect(resolveContext(config, 'd')).toMatchObject({
      server: 'https://d.example:6443',
      caPem: kube.caPem,
    });
  });

  test.each<[string, (home: string) => { path?: string; env: NodeJS.ProcessEnv }, string]>([
    [
      '--kubeconfig over KUBECONFIG',
      (home) => ({
        path: write(home, 'given', 'given'),
        env: { KUBECONFIG: write(home, 'env', 'env') },
      }),
      'given',
    ],
    [
      'KUBECONFIG over ~/.kube/config',
      (home) => ({ env: { KUBECONFIG: write(home, 'env', 'env') } }),
      'env',
    ],
    ['~/.kube/config, when neither is given', () => ({ env: { KUBECONFIG: '' } }), 'home'],
  ])('Given %s, when read, then that file is used', (_name, given, expected) => {
    const home = mkdtempSync(path.join(work, 'home-'));
    mkdirSync(path.join(home, '.kube'));
    write(home, path.join('.kube', 'config'), 'home');
    expect(
      resolveContext(readKubeconfig({ ...given(home), homeDir: home }), undefined).contextName,
    ).toBe(expected);
  });

  /** A kubeconfig in `dir` whose only context is named `context`. */
  function write(dir: string, name: string, context: string): string {
    const file = path.join(dir, name);
    writeFileSync(
      file,
      stringify({
        clusters: [{ name: 'c', cluster: { server: 'https://example' } }],
        contexts: [{ name: context, context: { cluster: 'c' } }],
        'current-context': context,
      }),
    );
    return file;
  }
});

describe('refusals: a KubeconfigError names the file, the key, the value and the fix', () => {
  /** Writes `document` (YAML unless a string) and resolves it as ship would. */
  const resolveDocument = (document: unknown, context?: string) => {
    const file = path.join(work, `refused-${++written}`);
    writeFileSync(file, typeof document === 'string' ? document : stringify(document));
    return () => resolveContext(readKubeconfig({ path: file, env: {}, homeDir: work }), context);
  };
  const withUser = (user: object, cluster: object = { server: 'https://example' }) =>
    resolveDocument({
      clusters: [{ name: 'c', cluster }],
      users: [{ name: 'u', user }],
      contexts: [{ name: 'ctx', context: { cluster: 'c', user: 'u' } }],
      'current-context': 'ctx',
    });

  test.each<[string, () => () => unknown, RegExp]>([
    [
      'insecure-skip-tls-verify',
      () =>
        withUser({ token: 't' }, { server: 'https://example', 'insecure-skip-tls-verify': true }),
      /refused-\d+: clusters\[0\]\.cluster\.insecure-skip-tls-verify is true\. ship never talks to an API server it cannot verify: .* give the cluster's CA: certificate-authority-data/,
    ],
    [
      'a plain-HTTP server',
      () => withUser({ token: 't' }, { server: 'http://127.0.0.1:8001' }),
      /clusters\[0\]\.cluster\.server is "http:\/\/127\.0\.0\.1:8001"; ship talks to API servers at an https:\/\/<host>\[:port\] URL only/,
    ],
    [
      'a proxy-url',
      () =>
        withUser(
          { token: 't' },
          { server: 'https://example', 'proxy-url': 'socks5://localhost:1080' },
        ),
      /clusters\[0\]\.cluster\.proxy-url is "socks5:\/\/localhost:1080", which ship does not support: ship connects to the API server directly/,
    ],
    [
      'certificate-authority-data that is not base64 PEM',
      () =>
        withUser(
          { token: 't' },
          { server: 'https://example', 'certificate-authority-data': 'bm90IGEgY2VydA==' },
        ),
      /certificate-authority-data is not base64 of a PEM certificate .*put base64 -w0 <file\.pem> there/,
    ],
    [
      'a certificate-authority file that is not there',
      () =>
        withUser(
          { token: 't' },
          { server: 'https://example', 'certificate-authority': 'nope/ca.crt' },
        ),
      /certificate-authority is .*nope\/ca\.crt, which cannot be read \(ENOENT\); fix the path \(relative paths are relative to the kubeconfig's folder\)/,
    ],
    [
      'an unknown context',
      () =>
        resolveDocument(
          {
            clusters: [{ name: 'c', cluster: { server: 'https://example' } }],
            contexts: [
              { name: 'dev', context: { cluster: 'c' } },
              { name: 'prod', context: { cluster: 'c' } },
            ],
          },
          'staging',
        ),
      /context "staging" is not in .*refused-\d+; the contexts there are: dev, prod\. Fix --context/,
    ],
    [
      'no current-context and no --context',
      () => resolveDocument({ contexts: [{ name: 'dev', context: { cluster: 'c' } }] }),
      /sets no current-context; pick one with --context <name> \(contexts: dev\)/,
    ],
    [
      'a context naming a cluster no file defines',
      () => resolveDocument({ contexts: [{ name: 'dev', context: { cluster: 'gone' } }] }, 'dev'),
      /contexts\[0\]\.context\.cluster is "gone", which no file defines \(clusters: none\)/,
    ],
    [
      'a context naming a user no file defines',
      () =>
        resolveDocument(
          {
            clusters: [{ name: 'c', cluster: { server: 'https://example' } }],
            contexts: [{ name: 'dev', context: { cluster: 'c', user: 'gone' } }],
          },
          'dev',
        ),
      /contexts\[0\]\.context\.user is "gone", which no file defines/,
    ],
    [
      'an auth-provider',
      () => withUser({ 'auth-provider': { name: 'gcp' } }),
      /users\[0\]\.user\.auth-provider is set, which ship does not support: .*use the exec plugin that replaced yours/,
    ],
    [
      'a username and password',
      () => withUser({ username: 'admin', password: 'secret' }),
      /users\[0\]\.user\.username is set, which ship does not support: use a token, a client certificate or an exec plugin/,
    ],
    [
      'impersonation',
      () => withUser({ token: 't', as: 'admin' }),
      /users\[0\]\.user\.as is set, which ship does not support: ship acts as the user itself/,
    ],
    [
      'a token and an exec plugin',
      () => withUser({ token: 't', exec: { command: 'aws', apiVersion: V1BETA1 } }),
      /users\[0\]\.user sets token and exec; ship authenticates with exactly one/,
    ],
    [
      'a client certificate without its key',
      () => withUser({ 'client-certificate-data': readFileSync(bob.certPath).toString('base64') }),
      /users\[0\]\.user has no client-key\(-data\): a client certificate needs both/,
    ],
    [
      'a client key that is not a PEM key',
      () => withUser({ 'client-certificate': bob.certPath, 'client-key': bob.certPath }),
      /client-key is .*, which is not a PEM private key/,
    ],
    [
      'an exec plugin of a removed apiVersion',
      () =>
        withUser({ exec: { command: 'x', apiVersion: 'client.authentication.k8s.io/v1alpha1' } }),
      /users\[0\]\.user\.exec\.apiVersion is "client\.authentication\.k8s\.io\/v1alpha1"; it must be one of client\.authentication\.k8s\.io\/v1, client\.authentication\.k8s\.io\/v1beta1/,
    ],
    [
      'an exec plugin that needs a terminal',
      () => withUser({ exec: { command: 'x', apiVersion: V1, interactiveMode: 'Always' } }),
      /exec\.interactiveMode is "Always"; ship runs credential plugins without a terminal/,
    ],
    [
      'exec env that is not name/value pairs',
      () => withUser({ exec: { command: 'x', apiVersion: V1, env: { AWS_PROFILE: 'p' } } }),
      /users\[0\]\.user\.exec\.env is not a list of \{name: <string>, value: <string>\}; fix it\.$/,
    ],
    [
      'a file that is not YAML',
      () => resolveDocument('clusters: [\n'),
      /refused-\d+ is not YAML \(.*\); fix the file/,
    ],
    [
      'a YAML list at the top',
      () => resolveDocument('- a\n- b\n'),
      /refused-\d+ is not a kubeconfig \(its top level is not a mapping/,
    ],
    [
      'users that is not a list',
      () => resolveDocument({ users: { u: { token: 't' } } }),
      /refused-\d+: users is not a list/,
    ],
    [
      'an entry without a name',
      () => resolveDocument({ clusters: [{ cluster: { server: 'https://example' } }] }),
      /refused-\d+: clusters\[0\] needs a "name" \(a string\) and a "cluster" mapping/,
    ],
    [
      'a missing --kubeconfig',
      () => () => readKubeconfig({ path: path.join(work, 'nope'), env: {}, homeDir: work }),
      /--kubeconfig .*nope: no such file/,
    ],
    [
      'KUBECONFIG naming only missing files',
      () => () =>
        readKubeconfig({
          env: { KUBECONFIG: [path.join(work, 'a'), path.join(work, 'b')].join(path.delimiter) },
          homeDir: work,
        }),
      /KUBECONFIG is ".*", and none of its files exists; fix KUBECONFIG or pass --kubeconfig <file>/,
    ],
    [
      'no kubeconfig anywhere',
      () => () => readKubeconfig({ env: {}, homeDir: path.join(work, 'empty-home') }),
      /no kubeconfig: KUBECONFIG is not set and .*empty-home\/\.kube\/config does not exist; pass --kubeconfig <file>/,
    ],
  ])('Given %s, then KubeconfigError', (_name, make, message) => {
    const run = make();
    expect(run).toThrow(KubeconfigError);
    expect(run).toThrow(message);
  });
});
