import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { startDeployer, type LogLine } from '../support/incluster';

/**
 * The entry point refuses to start on a bad environment or file: exit status 1 and one log line
 * (`cannot start`) naming what is wrong and the fix, never a half-configured service.
 */
const dir = mkdtempSync(path.join(tmpdir(), 'ship-deployer-startup-'));
const CONFIG = {
  registry: { url: 'http://127.0.0.1:5000', pullHost: '127.0.0.1:30500' },
  services: [{ service: 'hasher' }],
  environments: [{ name: 'staging', namespace: 'dockercoins-staging', branches: ['main'] }],
};

function file(name: string, text: string): string {
  const full = path.join(dir, name);
  writeFileSync(full, text);
  return full;
}

async function refusal(env: Record<string, string>): Promise<LogLine> {
  const running = await startDeployer({ env, waitReady: false });
  const line = await running.waitForLog((l) => l.msg === 'cannot start', 'cannot start');
  expect(await running.exited).toBe(1);
  return line;
}

const base = (): Record<string, string> => ({
  SHIP_DEPLOYER_CONFIG: file('config.yaml', stringify(CONFIG)),
  SHIP_NOTIFICATION_TOKEN_FILE: file('token', 'a-token\n'),
  SHIP_WEBHOOK_URL_FILE: path.join(dir, 'absent'),
  SHIP_KUBE_URL: 'https://127.0.0.1:6443',
  SHIP_KUBE_CA_FILE: file('ca.crt', 'not read before the checks above'),
  SHIP_KUBE_TOKEN_FILE: file('sa-token', 'x'),
});

/** A registry reached over plain HTTP by its Service name, and a credential for it. */
function plainHttp(): Record<string, string> {
  mkdirSync(path.join(dir, 'docker'), { recursive: true });
  const auth = Buffer.from('ship-deployer:secret').toString('base64');
  file('docker/config.json', JSON.stringify({ auths: { 'registry.registry.svc:5000': { auth } } }));
  const registry = { url: 'http://registry.registry.svc:5000', pullHost: '127.0.0.1:30500' };
  return {
    ...base(),
    SHIP_DEPLOYER_CONFIG: file('plain.yaml', stringify({ ...CONFIG, registry })),
    DOCKER_CONFIG: path.join(dir, 'docker'),
  };
}

test.each<[string, () => Record<string, string>, RegExp, string | undefined]>([
  [
    'an invalid config file names the key',
    () => ({
      ...base(),
      SHIP_DEPLOYER_CONFIG: file('bad.yaml', stringify({ ...CONFIG, rollback: 'sometimes' })),
    }),
    /rollback: "sometimes" is not true or false/,
    'rollback',
  ],
  [
    'a missing config file names the variable and the ConfigMap',
    () => ({ ...base(), SHIP_DEPLOYER_CONFIG: path.join(dir, 'none.yaml') }),
    /none\.yaml \(SHIP_DEPLOYER_CONFIG\) cannot be read.*ConfigMap ship-deployer-config/,
    undefined,
  ],
  [
    'an empty notification token',
    () => ({ ...base(), SHIP_NOTIFICATION_TOKEN_FILE: file('empty', '\n') }),
    /the notification token in .*empty \(SHIP_NOTIFICATION_TOKEN_FILE\) is empty/,
    undefined,
  ],
  [
    'a listen address without a port',
    () => ({ ...base(), SHIP_LISTEN: '0.0.0.0' }),
    /SHIP_LISTEN is "0\.0\.0\.0": expected <address>:<port>/,
    undefined,
  ],
  [
    'no API server known',
    () => {
      const env = base();
      delete env.SHIP_KUBE_URL;
      return env;
    },
    /neither SHIP_KUBE_URL nor KUBERNETES_SERVICE_HOST is set/,
    undefined,
  ],
  [
    'a registry credential for plain HTTP off this machine, not allowed',
    () => plainHttp(),
    /plain HTTP, and .*config\.json holds a credential for registry\.registry\.svc:5000.*REGISTRY_PLAIN_HTTP_CREDENTIALS=allow/,
    undefined,
  ],
  [
    'the same, allowed: the credential check passes (the next check, the cluster CA, speaks)',
    () => ({ ...plainHttp(), REGISTRY_PLAIN_HTTP_CREDENTIALS: 'allow' }),
    /Kubernetes API client cannot be made/,
    undefined,
  ],
  [
    'no cluster CA',
    () => ({ ...base(), SHIP_KUBE_CA_FILE: path.join(dir, 'no-ca.crt') }),
    /Kubernetes API client cannot be made .*no-ca\.crt.*ENOENT/,
    undefined,
  ],
  [
    'a webhook URL that is not http(s)',
    () => ({ ...base(), SHIP_WEBHOOK_URL_FILE: file('hook', 'ftp://example.com\n') }),
    /webhook URL .* is not an http\(s\):\/\/ URL/,
    undefined,
  ],
])('%s: exit 1, one clear line', async (_name, env, message, key) => {
  const line = await refusal(env());
  expect(line.error).toMatch(message);
  expect(line.key).toBe(key);
});
