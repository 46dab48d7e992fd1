/**
 * A small Kubernetes client over node:https: GET and strategic-merge PATCH of apps/v1 Deployments
 * (the deployer), and the list of a Deployment's ReplicaSets (`ship`'s history), with a bearer
 * token or a client certificate, verifying the server's certificate. No client library:
 * @kubernetes/client-node costs bundle size and cold start, and we need three calls.
 *
 * Retries: each call makes ONE request; the caller retries TransientError (apply wraps every call
 * in retry.ts's withRetries). Two exceptions, both not failures of the server: a 401 is sent again
 * once with a fresh token (the cached one may have expired), and a request that fails because the
 * kept-alive connection it reused had been closed by the server is sent again once on a new one.
 */
import { Agent, request as httpsRequest, type RequestOptions } from 'node:https';
import { isIP } from 'node:net';
import { RetryLaterError, isTransientNetworkCode } from './retry';
import {
  ConflictError,
  PermanentError,
  TransientError,
  type Deployment,
  type KubeReader,
  type Pod,
  type ReplicaSet,
  type StrategicMergePatch,
} from './types';

/** Who our PATCHes are attributed to in `metadata.managedFields`. */
export const FIELD_MANAGER = 'dockercoins-deployer';
export const STRATEGIC_MERGE_PATCH = 'application/strategic-merge-patch+json';
const DEFAULT_TIMEOUT_MS = 5000;
/** Far above any Deployment (etcd stores objects up to 1.5 MiB); a guard, not a limit we meet. */
const MAX_BODY_BYTES = 8 * 1024 * 1024;

export interface KubeClientOptions {
  /** The API server, `https://host[:port]`, as DescribeCluster's `cluster.endpoint`. */
  readonly endpoint: string;
  /**
   * The cluster CA bundle (PEM). The server certificate must chain to it; never skipped.
   * undefined: Node's trust store (a kubeconfig cluster with a publicly trusted certificate); the
   * deployer always passes DescribeCluster's CA.
   */
  readonly caPem: string | undefined;
  /**
   * The bearer token; called before each request, so it may cache.
   * @default - no Authorization header (a client certificate authenticates)
   */
  readonly token?: () => Promise<string>;
  /** TLS client authentication (a kubeconfig's client-certificate and client-key). @default - none */
  readonly clientCertificate?: { readonly certPem: string; readonly keyPem: string };
  /** Who PATCHes are attributed to in managedFields. @default 'dockercoins-deployer' */
  readonly fieldManager?: string;
  /**
   * What a 401 or 403 message tells the caller to fix.
   * @default - the deployer's access entry and Role
   */
  readonly accessHint?: { readonly unauthorized: string; readonly forbidden: string };
  /** Forgets the cached token, after a 401. @default - nothing: the retry gets whatever `token` gives */
  readonly invalidateToken?: () => void;
  /** Names the cluster in messages, e.g. `cluster "prod" (eu-west-1)`. @default - the endpoint */
  readonly clusterLabel?: string;
  /** Added to messages about an unreachable server (e.g. about a private endpoint). @default - nothing */
  readonly unreachableHint?: string;
  /**
   * What a message about a server certificate that does not verify tells the caller to fix.
   * @default - the deployer's: a retry describes the cluster again, so a recreated cluster's new CA is read
   */
  readonly certificateHint?: string;
  /** Told when the server could not be reached or its certificate not verified. @default - nothing */
  readonly onUnreachable?: (error: Error) => void;
  /** @default 'dockercoins-deployer' */
  readonly userAgent?: string;
  /** For the whole request, from connecting to the last byte of the answer. @default 5000 */
  readonly timeoutMs?: number;
  /**
   * The connection pool. @default - a keep-alive Agent of this client's own, so warm invocations
   * reuse the TLS connection
   */
  readonly agent?: Agent;
}

/** A {@link KubeReader} that also owns its connections. */
export interface HttpsKubeClient extends KubeReader {
  /** Closes the kept-alive connections (the client stays usable: it opens new ones). */
  close(): void;
}

/** A Kubernetes `Status` body, as far as we read it. */
interface KubeStatus {
  readonly message?: string;
  readonly reason?: string;
  readonly details?: { readonly retryAfterSeconds?: number };
}

interface Answer {
  readonly status: number;
  readonly headers: Readonly<Record<string, string | string[] | undefined>>;
  readonly body: string;
}

/** Builds a client for one cluster. Validates the endpoint at once. */
export function createKubeClient(options: KubeClientOptions): HttpsKubeClient {
  let base: URL;
  try {
    base = new URL(options.endpoint);
  } catch {
    throw new TypeError(
      `Kubernetes endpoint ${JSON.stringify(options.endpoint)} is not a URL; expected https://<host>[:port], ` +
        'as DescribeCluster reports it.',
    );
  }
  if (base.protocol !== 'https:' || base.search !== '' || base.username !== '') {
    throw new TypeError(
      `Kubernetes endpoint ${JSON.stringify(options.endpoint)} is not https://<host>[:port]; the deployer ` +
        'only talks to the API server over TLS verified against the cluster CA.',
    );
  }
  if (options.caPem !== undefined && !options.caPem.includes('-----BEGIN CERTIFICATE-----')) {
    throw new TypeError(
      'The cluster CA is not a PEM certificate (no "-----BEGIN CERTIFICATE-----"); pass ' +
        "DescribeCluster's certificateAuthority.data decoded from base64.",
    );
  }
  const hostname = base.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = base.port === '' ? 443 : Number(base.port);
  const basePath = base.pathname.replace(/\/+$/, '');
  const label = options.clusterLabel ?? base.origin;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  // SNI must not carry an IP address (RFC 6066); for an IP the certificate's IP SAN is checked.
  const servername = isIP(hostname) === 0 ? hostname : undefined;
  const tls = {
    ...(options.caPem === undefined ? {} : { ca: options.caPem }),
    ...(options.clientCertificate === undefined
      ? {}
      : { cert: options.clientCertificate.certPem, key: options.clientCertificate.keyPem }),
    ...(servername === undefined ? {} : { servername }),
  };
  const agent = options.agent ?? new Agent({ keepAlive: true, ...tls });
  const userAgent = options.userAgent ?? FIELD_MANAGER;
  const fieldManager = options.fieldManager ?? FIELD_MANAGER;
  const accessHint = options.accessHint ?? {
    unauthorized:
      "The cluster does not accept the deployer's IAM role: it needs an EKS access entry, and the " +
      "cluster's authentication mode must be API or API_AND_CONFIG_MAP.",
    forbidden:
      "The deployer's access entry (AmazonEKSEditPolicy on the namespace) or its Role must allow get and " +
      "patch on this Deployment's namespace's deployments.",
  };

  const deploymentPath = (namespace: string, name: string): string =>
    `${basePath}/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/deployments/${encodeURIComponent(name)}`;

  function send(
    method: 'GET' | 'PATCH',
    path: string,
    token: string | undefined,
    body: string | undefined,
  ): Promise<Answer> {
    const headers: Record<string, string | number> = {
      Accept: 'application/json',
      ...(token === undefined ? {} : { Authorization: `Bearer ${token}` }),
      'User-Agent': userAgent,
    };
    if (body !== undefined) {
      headers['Content-Type'] = STRATEGIC_MERGE_PATCH;
      headers['Content-Length'] = Buffer.byteLength(body);
    }
    const requestOptions: RequestOptions = {
      method,
      host: hostname,
      port,
      path,
      headers,
      agent,
      // Also here, not only on our Agent: a caller's Agent must not loosen verification.
      ...tls,
      rejectUnauthorized: true,
    };
    return new Promise<Answer>((resolve, reject) => {
      const req = httpsRequest(requestOptions, (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_BODY_BYTES) {
            req.destroy(
              new PermanentError(
                'rejected',
                `${method} ${path} on ${label}: the answer is over ${MAX_BODY_BYTES} bytes, more than ` +
                  'any Deployment or list of its ReplicaSets; not an API server answer.',
              ),
            );
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', (error) => fail(error));
      });
      const fail = (error: Error): void => {
        clearTimeout(timer);
        // Marks a request that went out on a connection kept from an earlier one.
        (error as Error & { reusedSocket?: boolean }).reusedSocket = req.reusedSocket;
        reject(error);
      };
      const timer = setTimeout(() => {
        req.destroy(
          Object.assign(new Error(`no complete answer within ${timeoutMs} ms`), {
            code: 'ETIMEDOUT',
          }),
        );
      }, timeoutMs);
      req.on('error', fail);
      req.end(body);
    });
  }

  /** One request, with the two documented second tries (fresh token, dead kept-alive socket). */
  async function call(
    method: 'GET' | 'PATCH',
    path: string,
    body: string | undefined,
  ): Promise<Answer> {
    let refreshed = false;
    let reconnected = false;
    for (;;) {
      const token = options.token === undefined ? undefined : await options.token();
      let answer: Answer;
      try {
        answer = await send(method, path, token, body);
      } catch (error) {
        if (error instanceof PermanentError) throw error;
        const e = error as Error & { code?: string; reusedSocket?: boolean };
        if (e.reusedSocket === true && e.code === 'ECONNRESET' && !reconnected) {
          reconnected = true;
          continue;
        }
        throw connectionFailure(method, path, e);
      }
      // Without a token there is nothing to renew: a client certificate is refused for good.
      if (answer.status === 401 && !refreshed && options.token !== undefined) {
        refreshed = true;
        options.invalidateToken?.();
        continue;
      }
      return answer;
    }
  }

  function connectionFailure(
    method: string,
    path: string,
    error: Error & { code?: string },
  ): Error {
    options.onUnreachable?.(error);
    const code = error.code ?? '';
    const where = `${method} ${path} on ${label}`;
    const hint = options.unreachableHint === undefined ? '' : ` ${options.unreachableHint}`;
    if (code === 'ETIMEDOUT') {
      return new TransientError(`${where}: timed out (${error.message}).${hint}`, {
        cause: error,
      });
    }
    if (isTransientNetworkCode(code) || error.message === 'socket hang up') {
      return new TransientError(
        `${where}: connection failed (${code === '' ? error.message : code}).${hint}`,
        { cause: error },
      );
    }
    if (/CERT|SELF_SIGNED|UNABLE_TO|ERR_TLS|ALTNAME/.test(code)) {
      // Retried, and the deployer's connector describes the cluster again: a recreated cluster
      // has a new CA.
      const against =
        options.caPem === undefined
          ? "Node.js's trusted public CAs (no cluster CA was given)"
          : 'the cluster CA';
      const fix =
        options.certificateHint ??
        'if the cluster was recreated, a retry reads its new CA from DescribeCluster.';
      return new TransientError(
        `${where}: the server's TLS certificate does not verify against ${against} ` +
          `(${code}: ${error.message}). Verification is never turned off; ${fix}`,
        { cause: error },
      );
    }
    return new TransientError(`${where}: ${code === '' ? '' : `${code}: `}${error.message}`, {
      cause: error,
    });
  }

  /** Maps an answer that is not 200/201 to the deployer's error kinds. */
  function failure(method: 'GET' | 'PATCH', path: string, answer: Answer): Error {
    const status = readStatus(answer.body);
    const said = status?.message ?? (answer.body.slice(0, 200) || '(empty body)');
    const where = `${method} ${path} on ${label}`;
    const code = answer.status;
    if (code === 401) {
      return new PermanentError(
        'forbidden',
        `${where}: 401 Unauthorized${options.token === undefined ? '' : ', also after renewing the token'} ` +
          `(${said}). ${accessHint.unauthorized}`,
      );
    }
    if (code === 403) {
      return new PermanentError(
        'forbidden',
        `${where}: 403 Forbidden: ${said}. ${accessHint.forbidden}`,
      );
    }
    if (code === 404 && method === 'PATCH') {
      return new PermanentError(
        'deployment-missing',
        `${where}: 404 Not Found: ${said}. The Deployment was deleted after it was read.`,
      );
    }
    if (code === 409) return new ConflictError(`${where}: 409 Conflict: ${said}`);
    if (code === 429 || code >= 500 || code === 408) {
      const message = `${where}: ${code}: ${said}`;
      const retryAfter = retryAfterMs(answer.headers['retry-after'], status);
      return retryAfter === undefined
        ? new TransientError(message)
        : new RetryLaterError(message, retryAfter);
    }
    return new PermanentError(
      'rejected',
      `${where}: ${code}${status?.reason === undefined ? '' : ` ${status.reason}`}: ${said}`,
    );
  }

  function parseJson(method: 'GET' | 'PATCH', path: string, answer: Answer): unknown {
    try {
      return JSON.parse(answer.body);
    } catch (error) {
      throw new PermanentError(
        'rejected',
        `${method} ${path} on ${label}: ${answer.status} with a body that is not JSON ` +
          `(${(error as Error).message}): ${JSON.stringify(answer.body.slice(0, 120))}`,
      );
    }
  }

  function parseDeployment(method: 'GET' | 'PATCH', path: string, answer: Answer): Deployment {
    const parsed = parseJson(method, path, answer);
    const metadata = (parsed as { metadata?: unknown } | null)?.metadata;
    if (
      parsed === null ||
      typeof parsed !== 'object' ||
      metadata === null ||
      typeof metadata !== 'object' ||
      typeof (metadata as { name?: unknown }).name !== 'string'
    ) {
      throw new PermanentError(
        'rejected',
        `${method} ${path} on ${label}: ${answer.status} with JSON that is not a Deployment ` +
          `(no metadata.name): ${JSON.stringify(answer.body.slice(0, 120))}`,
      );
    }
    return parsed as Deployment;
  }

  return {
    async getDeployment(namespace, name) {
      const path = deploymentPath(namespace, name);
      const answer = await call('GET', path, undefined);
      if (answer.status === 404) return undefined;
      if (answer.status !== 200) throw failure('GET', path, answer);
      return parseDeployment('GET', path, answer);
    },
    async patchDeployment(namespace, name, patch: StrategicMergePatch) {
      const path = `${deploymentPath(namespace, name)}?fieldManager=${encodeURIComponent(fieldManager)}`;
      const answer = await call('PATCH', path, JSON.stringify(patch));
      if (answer.status !== 200 && answer.status !== 201) throw failure('PATCH', path, answer);
      return parseDeployment('PATCH', path, answer);
    },
    async listReplicaSets(namespace, labelSelector) {
      const path =
        `${basePath}/apis/apps/v1/namespaces/${encodeURIComponent(namespace)}/replicasets` +
        `?labelSelector=${encodeURIComponent(labelSelector)}`;
      const answer = await call('GET', path, undefined);
      if (answer.status !== 200) throw failure('GET', path, answer);
      const items = (parseJson('GET', path, answer) as { items?: unknown } | null)?.items;
      if (!Array.isArray(items)) {
        throw new PermanentError(
          'rejected',
          `GET ${path} on ${label}: the answer is not a ReplicaSetList (no items array): ` +
            `${JSON.stringify(answer.body.slice(0, 120))}`,
        );
      }
      return items as ReplicaSet[];
    },
    async listPods(namespace, labelSelector) {
      const path =
        `${basePath}/api/v1/namespaces/${encodeURIComponent(namespace)}/pods` +
        `?labelSelector=${encodeURIComponent(labelSelector)}`;
      const answer = await call('GET', path, undefined);
      if (answer.status !== 200) throw failure('GET', path, answer);
      const items = (parseJson('GET', path, answer) as { items?: unknown } | null)?.items;
      if (!Array.isArray(items)) {
        throw new PermanentError(
          'rejected',
          `GET ${path} on ${label}: the answer is not a PodList (no items array): ` +
            `${JSON.stringify(answer.body.slice(0, 120))}`,
        );
      }
      return items as Pod[];
    },
    close() {
      agent.destroy();
    },
  };
}

function readStatus(body: string): KubeStatus | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      const status = parsed as Record<string, unknown>;
      const details = status.details as Record<string, unknown> | undefined;
      return {
        ...(typeof status.message === 'string' ? { message: status.message } : {}),
        ...(typeof status.reason === 'string' ? { reason: status.reason } : {}),
        ...(typeof details?.retryAfterSeconds === 'number'
          ? { details: { retryAfterSeconds: details.retryAfterSeconds } }
          : {}),
      };
    }
  } catch {
    // Not a Status (a proxy's HTML page, say): the caller quotes the body instead.
  }
  return undefined;
}

/** Retry-After in seconds (what the API server sends) or as an HTTP date; else the Status's. */
function retryAfterMs(
  header: string | string[] | undefined,
  status: KubeStatus | undefined,
): number | undefined {
  const value = Array.isArray(header) ? header[0] : header;
  if (value !== undefined && value.trim() !== '') {
    if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
    const date = Date.parse(value);
    if (!Number.isNaN(date)) return Math.max(0, date - Date.now());
  }
  const seconds = status?.details?.retryAfterSeconds;
  return seconds === undefined || seconds < 0 ? undefined : seconds * 1000;
}
