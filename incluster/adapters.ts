/**
 * The in-cluster deployer's collaborators: the registry (core/registry.js's RegistryClient, with
 * the deployer's own credential from DOCKER_CONFIG), the Kubernetes API with the pod's service
 * account token (core/kube.ts, the token file re-read on each request: it rotates), and the
 * optional webhook. Errors become the core's kinds: what may pass is a TransientError (retried),
 * the rest a PermanentError naming the fix.
 */
import { readFile } from 'node:fs/promises';
import {
  AuthenticationError,
  NotFoundError,
  RegistryClient,
  RegistryError,
  RegistryUnreachableError,
  imageConfig,
} from '../core/registry';
import { createKubeClient, type HttpsKubeClient } from '../core/kube';
import {
  PermanentError,
  TransientError,
  type ClusterConnector,
  type ImageVerifier,
  type KubeReader,
} from '../core/types';
import type { EnvironmentSettings } from '../lib/deployer-contract';
import type { WebhookFormat } from './settings';

/** What the deployer reads of the registry. */
export interface RegistryReader extends ImageVerifier {
  /** The image config's labels of a manifest (an index: its first image). */
  labels(repository: string, digest: string): Promise<Record<string, string>>;
  /** Every tag of a repository; [] when the repository does not exist yet. */
  tags(repository: string): Promise<string[]>;
  /** The digest a tag names now; undefined when it does not exist. */
  digest(repository: string, tag: string): Promise<string | undefined>;
}

const RETRIABLE = new Set([429, 500, 502, 503, 504]);

/** A registry failure in the core's words. */
export function classifyRegistryError(error: unknown, what: string): Error {
  if (error instanceof NotFoundError) {
    return new PermanentError('image-missing', `${what}: ${error.message}`);
  }
  if (error instanceof AuthenticationError) {
    return new PermanentError(
      'credentials',
      `${what}: ${error.message}. The deployer's registry credential is the Secret ship-deployer-registry ` +
        "(DOCKER_CONFIG); give it a user of the registry's htpasswd.",
    );
  }
  if (error instanceof RegistryUnreachableError) {
    return new TransientError(`${what}: ${error.message}`, { cause: error });
  }
  if (error instanceof RegistryError && error.status !== undefined && RETRIABLE.has(error.status)) {
    return new TransientError(`${what}: ${error.message}`, { cause: error });
  }
  if (error instanceof RegistryError)
    return new PermanentError('rejected', `${what}: ${error.message}`);
  return error instanceof Error ? error : new Error(String(error));
}

export function createRegistryReader(options: {
  readonly url: string;
  readonly host: string;
  readonly env: NodeJS.ProcessEnv;
  readonly warn: (line: string) => void;
}): RegistryReader {
  const client = new RegistryClient(options.host, {
    baseUrl: options.url,
    env: options.env,
    warn: options.warn,
  });
  const wrap = async <T>(what: string, call: () => Promise<T>): Promise<T> => {
    try {
      return await call();
    } catch (error) {
      throw classifyRegistryError(error, what);
    }
  };
  return {
    labels: (repository, digest) =>
      wrap(`labels of ${options.host}/${repository}@${digest}`, async () => {
        const what = `${options.host}/${repository}@${digest}`;
        const manifest = await client.getManifest(repository, digest);
        const config = await imageConfig(client, repository, manifest, { what });
        const labels = (config as { config?: { Labels?: Record<string, unknown> | null } }).config
          ?.Labels;
        return Object.fromEntries(
          Object.entries(labels ?? {}).filter(
            (e): e is [string, string] => typeof e[1] === 'string',
          ),
        );
      }),
    tags: (repository) =>
      wrap(`tags of ${options.host}/${repository}`, async () => {
        try {
          return await client.listTags(repository);
        } catch (error) {
          if (error instanceof NotFoundError) return [];
          throw error;
        }
      }),
    digest: (repository, tag) =>
      wrap(`digest of ${options.host}/${repository}:${tag}`, () =>
        client.tagDigest(repository, tag),
      ),
    digestsOf: (image, tags) =>
      wrap(`digests of ${options.host}/${image.repository}`, () =>
        Promise.all(tags.map((tag) => client.tagDigest(image.repository, tag))),
      ),
  };
}

/** How many images' labels {@link cachingLabels} keeps. */
export const LABEL_CACHE_ENTRIES = 1024;

/**
 * The reader with each image's labels read once: a digest names one manifest, hence one config
 * blob, so its labels never change. The reconcile loop then costs one tags list and one digest
 * per candidate tag a pass, not a manifest and a config blob each time. Only answers are kept
 * (a failure is asked again); the oldest entry goes past `entries`.
 */
export function cachingLabels(
  reader: RegistryReader,
  entries: number = LABEL_CACHE_ENTRIES,
): RegistryReader {
  const cache = new Map<string, Readonly<Record<string, string>>>();
  return {
    ...reader,
    labels: async (repository, digest) => {
      const key = `${repository}@${digest}`;
      const known = cache.get(key);
      if (known !== undefined) return { ...known };
      const labels = await reader.labels(repository, digest);
      cache.set(key, { ...labels });
      if (cache.size > entries) cache.delete(cache.keys().next().value!);
      return labels;
    },
  };
}

/** Where the Kubernetes API is and who the deployer is to it. */
export interface KubeAccess {
  readonly endpoint: string;
  readonly caFile: string;
  readonly tokenFile: string;
}

/**
 * One client for the deployer's own cluster: every environment is a namespace of it. The token
 * file is read before each request (the kubelet rotates projected tokens); the CA once.
 */
export async function createClusterConnector(
  access: KubeAccess,
): Promise<ClusterConnector & { readonly kube: KubeReader; close(): void }> {
  const caPem = await readFile(access.caFile, 'utf8');
  const client: HttpsKubeClient = createKubeClient({
    endpoint: access.endpoint,
    caPem,
    token: async () => (await readFile(access.tokenFile, 'utf8')).trim(),
    fieldManager: 'ship-deployer',
    userAgent: 'ship-deployer',
    clusterLabel: 'the cluster (in-cluster)',
    accessHint: {
      unauthorized:
        `the service account token (${access.tokenFile}) was refused: check the pod's service account ` +
        '(ship-deployer) and that its token is mounted',
      forbidden:
        'the service account ship-deployer/ship-deployer lacks a permission: apply the Role and RoleBinding ' +
        "ship-deployer in the environment's namespace (k8s/deployer)",
    },
    certificateHint: `the API server's certificate does not verify against ${access.caFile}`,
  });
  return {
    kube: client,
    connect: (_environment: EnvironmentSettings) => Promise.resolve(client),
    close: () => client.close(),
  };
}

/** Sends one build's report to the webhook; resolves to an error message, or undefined when sent. */
export type WebhookSender = (report: {
  readonly subject: string;
  readonly message: string;
  readonly fields: Readonly<Record<string, unknown>>;
}) => Promise<string | undefined>;

export const WEBHOOK_TIMEOUT_MS = 5000;

/**
 * `json`: `{subject, message, …fields}` (the SNS notification's subject and message); `slack`:
 * `{"text": "<subject>\n<message>"}`, what Slack's incoming webhooks (and Mattermost, Rocket.Chat)
 * take. A failure is returned, never thrown: a webhook never changes a deploy.
 */
export function createWebhookSender(url: string, format: WebhookFormat): WebhookSender {
  return async (report) => {
    const body =
      format === 'slack'
        ? { text: `*${report.subject}*\n${report.message}` }
        : { subject: report.subject, message: report.message, ...report.fields };
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
        redirect: 'error',
      });
      await response.arrayBuffer().catch(() => undefined);
      if (!response.ok) return `the webhook answered ${response.status} ${response.statusText}`;
      return undefined;
    } catch (error) {
      return `the webhook could not be reached: ${error instanceof Error ? error.message : String(error)}`;
    }
  };
}
