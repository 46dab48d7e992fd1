/**
 * The in-cluster deployer's entry point (`node /app/ship-deployer.js`, this file bundled by
 * esbuild): reads its environment and configuration file once, wires the core to the registry,
 * the Kubernetes API and the webhook, serves its port, runs the reconcile loop, and on SIGTERM
 * stops taking notifications, abandons verifications cleanly (their lease lets the next pod take
 * them) and exits. docs/incluster.md is the reference of everything read here.
 */
import { existsSync, readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { RegistryError, isLoopback, readDockerCredentials } from '../core/registry';
import { createRetry } from '../core/retry';
import {
  cachingLabels,
  createClusterConnector,
  createRegistryReader,
  createWebhookSender,
} from './adapters';
import { InclusterDeployer } from './deployer';
import { createLogger, type Logger } from './log';
import { Metrics } from './metrics';
import { createDeployerServer } from './server';
import { ConfigFileError, parseConfigFile } from './settings';

/** Every environment variable the deployer reads, with its default. */
export const INCLUSTER_ENV = {
  listen: 'SHIP_LISTEN',
  config: 'SHIP_DEPLOYER_CONFIG',
  tokenFile: 'SHIP_NOTIFICATION_TOKEN_FILE',
  webhookUrlFile: 'SHIP_WEBHOOK_URL_FILE',
  kubeUrl: 'SHIP_KUBE_URL',
  kubeCaFile: 'SHIP_KUBE_CA_FILE',
  kubeTokenFile: 'SHIP_KUBE_TOKEN_FILE',
} as const;

export const INCLUSTER_DEFAULTS = {
  listen: '0.0.0.0:8080',
  config: '/etc/ship-deployer/config.yaml',
  tokenFile: '/var/run/secrets/ship/notification/token',
  webhookUrlFile: '/var/run/secrets/ship/webhook/url',
  serviceAccount: '/var/run/secrets/kubernetes.io/serviceaccount',
} as const;

/** How long a SIGTERM waits for work in progress before exiting anyway (the pod's grace is 30 s). */
const SHUTDOWN_GRACE_MS = 20_000;

/** The environment is unusable: the variable, the value and the fix. */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'StartupError';
  }
}

function parseListen(value: string): { host: string; port: number } {
  const match = /^(.*):([0-9]{1,5})$/.exec(value);
  const port = Number(match?.[2]);
  if (match === null || port > 65535 || match[1] === '') {
    throw new StartupError(
      `${INCLUSTER_ENV.listen} is ${JSON.stringify(value)}: expected <address>:<port>, e.g. "0.0.0.0:8080".`,
    );
  }
  return { host: match[1]!.replace(/^\[(.*)\]$/, '$1'), port };
}

function readSecretFile(path: string, variable: string, what: string): string {
  let text: string;
  try {
    text = readFileSync(path, 'utf8').trim();
  } catch (error) {
    throw new StartupError(
      `${what} cannot be read from ${path} (${variable}): ${(error as Error).message}. Mount the Secret there or set ${variable}.`,
    );
  }
  if (text === '')
    throw new StartupError(
      `${what} in ${path} (${variable}) is empty; put the value in the Secret.`,
    );
  return text;
}

function kubeAccess(env: NodeJS.ProcessEnv): {
  endpoint: string;
  caFile: string;
  tokenFile: string;
} {
  const sa = INCLUSTER_DEFAULTS.serviceAccount;
  let endpoint = env[INCLUSTER_ENV.kubeUrl];
  if (endpoint === undefined || endpoint === '') {
    const host = env.KUBERNETES_SERVICE_HOST;
    const port = env.KUBERNETES_SERVICE_PORT ?? '443';
    if (host === undefined || host === '') {
      throw new StartupError(
        `neither ${INCLUSTER_ENV.kubeUrl} nor KUBERNETES_SERVICE_HOST is set: run the deployer in the cluster, ` +
          `or set ${INCLUSTER_ENV.kubeUrl}=https://<api server>, ${INCLUSTER_ENV.kubeCaFile} and ${INCLUSTER_ENV.kubeTokenFile}.`,
      );
    }
    endpoint = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  }
  return {
    endpoint,
    caFile: env[INCLUSTER_ENV.kubeCaFile] || `${sa}/ca.crt`,
    tokenFile: env[INCLUSTER_ENV.kubeTokenFile] || `${sa}/token`,
  };
}

/**
 * The registry credential, checked at start rather than at the first push: readable, and not to
 * be sent over plain HTTP off this machine unless REGISTRY_PLAIN_HTTP_CREDENTIALS=allow says so
 * (core/registry.js would refuse every request).
 */
function checkRegistryCredential(
  registry: { readonly url: string; readonly host: string },
  env: NodeJS.ProcessEnv,
): void {
  let credentials: ReturnType<typeof readDockerCredentials>;
  try {
    credentials = readDockerCredentials(registry.host, env);
  } catch (error) {
    if (!(error instanceof RegistryError)) throw error;
    throw new StartupError(`the registry credential (DOCKER_CONFIG): ${error.message}`);
  }
  if (
    credentials !== undefined &&
    registry.url.startsWith('http:') &&
    !isLoopback(registry.host) &&
    env.REGISTRY_PLAIN_HTTP_CREDENTIALS !== 'allow'
  ) {
    throw new StartupError(
      `registry.url is ${registry.url}, plain HTTP, and ${credentials.source} holds a credential for ${registry.host}: ` +
        'it would travel unencrypted, so the registry client refuses to send it. Set REGISTRY_PLAIN_HTTP_CREDENTIALS=allow ' +
        "on the deployer (the traffic stays on the cluster's pod network), or serve the registry with TLS and write https:// in registry.url.",
    );
  }
}

const abortableSleep = (ms: number, signal: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (signal.aborted) {
      resolve();
      return;
    }
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', done);
      resolve();
    }, ms);
    const done = (): void => {
      clearTimeout(timer);
      resolve();
    };
    signal.addEventListener('abort', done, { once: true });
  });

/** A running deployer: what main wires and what stop() undoes. */
export interface RunningDeployer {
  readonly server: Server;
  readonly deployer: InclusterDeployer;
  stop(): Promise<void>;
}

export async function start(env: NodeJS.ProcessEnv, log: Logger): Promise<RunningDeployer> {
  const configPath = env[INCLUSTER_ENV.config] || INCLUSTER_DEFAULTS.config;
  let configText: string;
  try {
    configText = readFileSync(configPath, 'utf8');
  } catch (error) {
    throw new StartupError(
      `the configuration file ${configPath} (${INCLUSTER_ENV.config}) cannot be read: ${(error as Error).message}. ` +
        'Mount the ConfigMap ship-deployer-config (key config.yaml) there.',
    );
  }
  const settings = parseConfigFile(configText, configPath);
  const listen = parseListen(env[INCLUSTER_ENV.listen] || INCLUSTER_DEFAULTS.listen);
  const tokenFile = env[INCLUSTER_ENV.tokenFile] || INCLUSTER_DEFAULTS.tokenFile;
  const token = readSecretFile(tokenFile, INCLUSTER_ENV.tokenFile, 'the notification token');
  const webhookFile = env[INCLUSTER_ENV.webhookUrlFile] || INCLUSTER_DEFAULTS.webhookUrlFile;
  const webhookUrl = existsSync(webhookFile)
    ? readSecretFile(webhookFile, INCLUSTER_ENV.webhookUrlFile, 'the webhook URL')
    : undefined;
  if (webhookUrl !== undefined && !/^https?:\/\//.test(webhookUrl)) {
    throw new StartupError(
      `the webhook URL in ${webhookFile} is not an http(s):// URL; fix the Secret ship-deployer-webhook (key url).`,
    );
  }
  const webhookFormat = settings.webhook?.format ?? 'json';
  if (webhookUrl === undefined && settings.webhook !== undefined) {
    log.warn('webhook configured without a URL: no webhook', {
      file: webhookFile,
      fix: 'create the Secret ship-deployer-webhook with key url, or remove webhook from the config',
    });
  }

  checkRegistryCredential(settings.registry, env);

  const metrics = new Metrics();
  const registry = cachingLabels(
    createRegistryReader({
      url: settings.registry.url,
      host: settings.registry.host,
      env,
      warn: (line) => log.warn('registry client', { detail: line }),
    }),
  );
  const access = kubeAccess(env);
  let clusters: Awaited<ReturnType<typeof createClusterConnector>>;
  try {
    clusters = await createClusterConnector(access);
  } catch (error) {
    throw new StartupError(
      `the Kubernetes API client cannot be made (${access.endpoint}, CA ${access.caFile}, ${INCLUSTER_ENV.kubeCaFile}): ` +
        `${(error as Error).message}. In the cluster, mount the service account token (automountServiceAccountToken); ` +
        `out of it, set ${INCLUSTER_ENV.kubeUrl}, ${INCLUSTER_ENV.kubeCaFile} and ${INCLUSTER_ENV.kubeTokenFile}.`,
    );
  }
  const onRetry =
    (what: string) =>
    (error: Error, attempt: number, delayMs: number): void =>
      log.warn('retrying', { what, attempt, delayMs, reason: error.message });
  const execution = `incluster:${env.HOSTNAME || 'ship-deployer'}`;
  // Waits between retries end at shutdown, so a retrying read cannot outlast the pod's grace.
  const stopping = new AbortController();
  const sleep = (ms: number): Promise<void> => abortableSleep(ms, stopping.signal);
  const deployer = new InclusterDeployer({
    settings,
    registry,
    clusters,
    retry: createRetry({ sleep, onRetry: onRetry('kubernetes') }),
    // The registry client retries each request itself (4 tries, about 2 s); these tries span a
    // registry restart (about half a minute).
    registryRetry: createRetry({
      attempts: 6,
      baseDelayMs: 1000,
      sleep,
      onRetry: onRetry('registry'),
    }),
    now: () => new Date(),
    sleep: abortableSleep,
    log,
    metrics,
    webhook: webhookUrl === undefined ? undefined : createWebhookSender(webhookUrl, webhookFormat),
    execution,
  });

  let ready = false;
  const server = createDeployerServer({
    token,
    filter: {
      repositoryPrefix: settings.repositoryPrefix,
      services: settings.deployer.services.map((s) => s.service),
      releaseTagPattern: settings.releaseTagPattern,
    },
    deployer,
    log,
    metrics,
    ready: () => ready,
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => resolve());
  });

  const stopReconcile = new AbortController();
  const reconcileLoop = async (): Promise<void> => {
    while (!stopReconcile.signal.aborted) {
      try {
        const { submitted } = await deployer.reconcile();
        metrics.inc('reconciles', { result: 'ok' });
        metrics.set('lastReconcile', Math.floor(Date.now() / 1000));
        log.info('reconcile done', { submitted });
      } catch (error) {
        metrics.inc('reconciles', { result: 'error' });
        log.error('reconcile failed', {
          error: error instanceof Error ? error.message : String(error),
          retry: `in ${settings.reconcileSeconds} s`,
        });
      }
      await abortableSleep(settings.reconcileSeconds * 1000, stopReconcile.signal);
    }
  };
  const loop = settings.reconcileSeconds > 0 ? reconcileLoop() : Promise.resolve();

  ready = true;
  const address = server.address();
  log.info('ready', {
    listen:
      typeof address === 'object' && address !== null
        ? `${address.address}:${address.port}`
        : listen,
    config: configPath,
    registry: settings.registry.url,
    pullHost: settings.registry.pullHost,
    environments: settings.deployer.environments.map((e) => e.name),
    services: settings.deployer.services.map((s) => s.service),
    reconcileSeconds: settings.reconcileSeconds,
    webhook: webhookUrl === undefined ? 'off' : webhookFormat,
    execution,
  });

  return {
    server,
    deployer,
    stop: async () => {
      ready = false;
      stopping.abort();
      stopReconcile.abort();
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      server.closeIdleConnections();
      await deployer.stop();
      await loop;
      server.closeAllConnections();
      await closed;
      clusters.close();
    },
  };
}

async function main(): Promise<void> {
  const log = createLogger();
  let running: RunningDeployer;
  try {
    running = await start(process.env, log);
  } catch (error) {
    const known = error instanceof StartupError || error instanceof ConfigFileError;
    log.error('cannot start', {
      error: error instanceof Error ? error.message : String(error),
      ...(error instanceof ConfigFileError ? { key: error.key } : {}),
      ...(known ? {} : { stack: (error as Error).stack }),
    });
    process.exitCode = 1;
    return;
  }
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info('stopping', {
      signal,
      detail: 'no more notifications; verifications in progress are abandoned with their lease',
    });
    const timer = setTimeout(() => {
      log.error('stopped before work ended', { graceMs: SHUTDOWN_GRACE_MS });
      process.exit(1);
    }, SHUTDOWN_GRACE_MS);
    timer.unref();
    running.stop().then(
      () => log.info('stopped', { signal }),
      (error: unknown) => {
        log.error('stop failed', { error: String(error) });
        process.exitCode = 1;
      },
    );
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}

if (require.main === module) {
  void main();
}
