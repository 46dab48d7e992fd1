#!/usr/bin/env node
// @ts-check
/**
 * A small client of the OCI distribution API (the registry HTTP API v2) for the buildspec and,
 * later, the `ship` CLI: the same code talks to ECR and to the open-source registry in a cluster,
 * so it uses the registry protocol and nothing ECR-only. Node 18+, no dependencies.
 *
 *   registry.js digest <repo>:<tag> [<tag>…]    the digest all these tags share (sha256:…)
 *   registry.js retag <repo>:<tag> <newtag>…    put the same manifest bytes under new tags
 *               [--require-revision <commit>]   …only if the image's revision label is <commit>
 *   registry.js absent <repo>:<tag> [<tag>…]    fail (1) if any of these tags exists
 *   registry.js labels <repo>:<tag>              the image config labels, as JSON
 *   registry.js tags <repo>                      every tag of the repository, one a line
 *
 * The `ship` CLI (cli/registries.ts) reads registries through the same RegistryClient: the
 * catalog (listRepositories), tags lists, manifests and image configs (imageConfig).
 *
 * Exit status: 0 done; 1 error (the message says what and what to do); 2 usage; 3 the repository,
 * tag or manifest does not exist (so a caller can tell "not there yet" from a failure).
 *
 * Credentials come from the docker config (`$DOCKER_CONFIG/config.json`, else
 * `~/.docker/config.json`) that `docker login` writes. The registry's 401 challenge decides how
 * they are used: `Basic` (ECR, htpasswd registries) or `Bearer` (a token service).
 */
'use strict';

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MEDIA_TYPES = Object.freeze({
  ociIndex: 'application/vnd.oci.image.index.v1+json',
  ociManifest: 'application/vnd.oci.image.manifest.v1+json',
  dockerManifestList: 'application/vnd.docker.distribution.manifest.list.v2+json',
  dockerManifest: 'application/vnd.docker.distribution.manifest.v2+json',
});
/** @type {readonly string[]} */
const INDEX_TYPES = [MEDIA_TYPES.ociIndex, MEDIA_TYPES.dockerManifestList];
/** @type {readonly string[]} */
const IMAGE_TYPES = [MEDIA_TYPES.ociManifest, MEDIA_TYPES.dockerManifest];
/** Every manifest type we read; without it registries may answer with an old schema 1 manifest. */
const MANIFEST_ACCEPT = [...INDEX_TYPES, ...IMAGE_TYPES].join(', ');

const REVISION_LABEL = 'org.opencontainers.image.revision';

// The distribution spec's grammar for repository names and tags.
const REPOSITORY_NAME =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const TAG = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;

const EXIT = Object.freeze({ ok: 0, error: 1, usage: 2, notFound: 3 });

/**
 * How long, how often and how much: a hung or misbehaving registry fails a build in seconds, not
 * at the build's 30-minute timeout, and cannot fill the memory of a build host or of `ship`.
 */
const LIMITS = Object.freeze({
  /** One request, headers and body (REGISTRY_TIMEOUT_SECONDS overrides it). */
  timeoutMs: 30_000,
  /** Tries of one request: the first and up to three retries on 429, 5xx or no answer. */
  attempts: 4,
  /** First backoff; it doubles each retry (full jitter), capped. */
  backoffMs: 250,
  maxBackoffMs: 8_000,
  /** A Retry-After longer than this is not waited for: the request fails instead. */
  maxRetryAfterMs: 30_000,
  /** distribution refuses manifests over 4 MiB; so do we. */
  manifestBytes: 4 * 1024 * 1024,
  /** An image config blob (labels, history); real ones are a few KiB. */
  blobBytes: 8 * 1024 * 1024,
  /** One page of a tags list or the catalog. */
  listBytes: 16 * 1024 * 1024,
  /** A token service's answer. */
  tokenBytes: 1024 * 1024,
  /** What an error answer's body contributes to a message. */
  errorBytes: 64 * 1024,
});

/** Answers worth asking again: throttling and the server's own failures. */
const RETRIABLE_STATUS = new Set([429, 500, 502, 503, 504]);

/** A failure the caller can act on; the message says what, the value, and what to do. */
class RegistryError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number }} [details] `status`: the HTTP status the registry answered with
   */
  constructor(message, details = {}) {
    super(message);
    this.name = 'RegistryError';
    /** @type {number | undefined} the HTTP status of the answer; undefined when there was none */
    this.status = details.status;
  }
}

/** The repository, tag or manifest does not exist (exit status 3). */
class NotFoundError extends RegistryError {
  /** @param {string} message */
  constructor(message) {
    super(message, { status: 404 });
    this.name = 'NotFoundError';
  }
}

/** No HTTP answer at all: refused connection, DNS, TLS handshake (plain HTTP asked over HTTPS). */
class RegistryUnreachableError extends RegistryError {
  /**
   * @param {string} message
   * @param {string} url the URL asked
   * @param {string} reason what the network said, e.g. `connect ECONNREFUSED 127.0.0.1:5000`
   */
  constructor(message, url, reason) {
    super(message);
    this.name = 'RegistryUnreachableError';
    this.url = url;
    this.reason = reason;
  }
}

/**
 * The registry wants credentials there are none of, or refused the ones sent (401, or a token
 * service refusing them). `username` and `source` say which were sent; undefined when none.
 */
class AuthenticationError extends RegistryError {
  /**
   * @param {string} message
   * @param {Credentials | undefined} credentials
   * @param {{ status?: number }} [details]
   */
  constructor(message, credentials, details = { status: 401 }) {
    super(message, details);
    this.name = 'AuthenticationError';
    /** @type {string | undefined} */
    this.username = credentials?.username;
    /** @type {string | undefined} */
    this.source = credentials?.source;
  }
}

/** A tag already names another digest: tags are immutable, so nothing was changed. */
class ImmutableTagError extends RegistryError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ImmutableTagError';
  }
}

/** The image is not the build of the commit it was expected to be. */
class RevisionMismatchError extends RegistryError {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'RevisionMismatchError';
  }
}

/** Bad command-line arguments (exit status 2). */
class UsageError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'UsageError';
  }
}

/**
 * @typedef {object} Reference
 * @property {string} host       registry host (and port), the first path segment
 * @property {string} repository repository name inside the registry
 * @property {string} [tag]
 * @property {string} [digest]   `sha256:…`
 */

/**
 * Parses `host/name[:tag][@digest]`. The registry host is always the first path segment, as in
 * every reference the buildspec builds (`<account>.dkr.ecr.<region>.amazonaws.com/dockercoins/rng`,
 * `127.0.0.1:30500/rng`).
 * @param {string} text
 * @param {{ allowTag?: boolean }} [options] `allowTag: false` for a bare repository
 * @returns {Reference}
 */
function parseReference(text, { allowTag = true } = {}) {
  const example = allowTag
    ? 'registry.example.com/dockercoins/rng:6e0de7938dda'
    : 'registry.example.com/dockercoins/rng';
  const slash = text.indexOf('/');
  if (slash <= 0) {
    throw new UsageError(
      `"${text}" is not an image reference: expected <registry host>/<repository>${allowTag ? '[:<tag>]' : ''}, e.g. ${example}`,
    );
  }
  const host = text.slice(0, slash);
  let rest = text.slice(slash + 1);
  /** @type {string | undefined} */
  let digest;
  /** @type {string | undefined} */
  let tag;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest))
      throw new UsageError(
        `"${text}" has the digest "${digest}": expected sha256: and 64 lowercase hex digits`,
      );
  }
  const colon = rest.lastIndexOf(':');
  if (colon >= 0) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag))
      throw new UsageError(
        `"${text}" has the tag "${tag}": a tag is 1 to 128 of [A-Za-z0-9_.-], not starting with "." or "-"`,
      );
  }
  if (!allowTag && (tag !== undefined || digest !== undefined)) {
    throw new UsageError(
      `"${text}" names a tag or digest: give the repository only, e.g. ${example}`,
    );
  }
  if (!REPOSITORY_NAME.test(rest)) {
    throw new UsageError(
      `"${text}" has the repository name "${rest}": expected lowercase path components of [a-z0-9] separated by ".", "_", "__" or "-", joined by "/"`,
    );
  }
  /** @type {Reference} */
  const reference = { host, repository: rest };
  if (tag !== undefined) reference.tag = tag;
  if (digest !== undefined) reference.digest = digest;
  return reference;
}

/** @param {Reference} ref */
function formatReference(ref) {
  return `${ref.host}/${ref.repository}${ref.tag === undefined ? '' : `:${ref.tag}`}${ref.digest === undefined ? '' : `@${ref.digest}`}`;
}

/** @param {string} host */
function isLoopback(host) {
  const name = host.replace(/:\d+$/, '').replace(/^\[|\]$/g, '');
  return name === 'localhost' || name === '::1' || /^127\.\d+\.\d+\.\d+$/.test(name);
}

/**
 * `http://` for loopback hosts (what docker allows without TLS) or when REGISTRY_INSECURE=true
 * (an in-cluster registry reached through its NodePort), `https://` otherwise.
 * @param {string} host
 * @param {NodeJS.ProcessEnv} [env]
 */
function registryBaseUrl(host, env = process.env) {
  const insecure = (env.REGISTRY_INSECURE ?? '').toLowerCase();
  if (insecure !== '' && insecure !== 'true' && insecure !== 'false') {
    throw new RegistryError(
      `REGISTRY_INSECURE is "${env.REGISTRY_INSECURE}": expected "true" (plain HTTP) or "false"/unset (HTTPS; loopback hosts always use HTTP)`,
    );
  }
  return `${isLoopback(host) || insecure === 'true' ? 'http' : 'https'}://${host}`;
}

/**
 * @typedef {object} Credentials
 * @property {string} username
 * @property {string} password
 * @property {string} source where they were read, for error messages
 */

/** @param {NodeJS.ProcessEnv} env */
function dockerConfigPath(env) {
  if (env.DOCKER_CONFIG) return path.join(env.DOCKER_CONFIG, 'config.json');
  return path.join(env.HOME || os.homedir(), '.docker', 'config.json');
}

/** docker keys `auths` by host, but older clients wrote `https://host/v1/` and the like. */
/** @param {string} key */
function authsKeyHost(key) {
  return key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
}

/**
 * The credentials `docker login <host>` stored, as docker reads them: `auths[host].auth`, the
 * base64 of `user:password`. `undefined` when there are none.
 * @param {string} host
 * @param {NodeJS.ProcessEnv} [env]
 * @returns {Credentials | undefined}
 */
function readDockerCredentials(host, env = process.env) {
  const file = dockerConfigPath(env);
  /** @type {string} */
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (error) {
    if (/** @type {NodeJS.ErrnoException} */ (error).code === 'ENOENT') return undefined;
    throw error;
  }
  /** @type {{ auths?: Record<string, { auth?: string }>, credsStore?: string, credHelpers?: Record<string, string> }} */
  let config;
  try {
    config = /** @type {typeof config} */ (parseJson(text));
  } catch (error) {
    throw new RegistryError(
      `${file} is not valid JSON (${/** @type {Error} */ (error).message}): fix or remove it, then run docker login again`,
    );
  }
  const entry = Object.entries(config.auths ?? {}).find(([key]) => authsKeyHost(key) === host)?.[1];
  if (entry?.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon <= 0) {
      throw new RegistryError(
        `${file}: auths["${host}"].auth is not base64 of "user:password": run docker login ${host} again`,
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1), source: file };
  }
  const helper = config.credHelpers?.[host] ?? config.credsStore;
  if (helper !== undefined) {
    throw new RegistryError(
      `${file} keeps the credentials for ${host} in the credential helper "docker-credential-${helper}", which this tool does not call: ` +
        `log in with a DOCKER_CONFIG whose config.json has no credsStore/credHelpers, so docker login stores them in the file`,
    );
  }
  return undefined;
}

/**
 * Parses a `WWW-Authenticate` header: the scheme and its parameters (quoted values may contain
 * commas, as in `scope="repository:a:pull,push"`).
 * @param {string} header
 * @returns {{ scheme: string, params: Record<string, string> }}
 */
function parseChallenge(header) {
  const match = /^\s*([A-Za-z]+)\s*(.*)$/.exec(header);
  if (match === null)
    throw new RegistryError(
      `the registry answered 401 with an unreadable WWW-Authenticate header "${header}"`,
    );
  /** @type {Record<string, string>} */
  const params = {};
  const pattern = /([A-Za-z_]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]*))/g;
  for (const param of (match[2] ?? '').matchAll(pattern)) {
    const name = (param[1] ?? '').toLowerCase();
    params[name] = param[2] !== undefined ? param[2].replace(/\\(.)/g, '$1') : (param[3] ?? '');
  }
  return { scheme: (match[1] ?? '').toLowerCase(), params };
}

/**
 * JSON.parse typed `unknown`, so every caller states the shape it expects.
 * @param {string} text
 * @returns {unknown}
 */
function parseJson(text) {
  return JSON.parse(text);
}

/** @param {Buffer} bytes */
function sha256(bytes) {
  return `sha256:${crypto.createHash('sha256').update(bytes).digest('hex')}`;
}

/**
 * @typedef {object} ClientOptions
 * @property {NodeJS.ProcessEnv} [env] for DOCKER_CONFIG, HOME and REGISTRY_INSECURE; default process.env
 * @property {Credentials} [credentials] instead of the docker config
 * @property {string} [baseUrl] `http://host[:port]` or `https://host[:port]`, when the caller was
 *   told the scheme; default registryBaseUrl(host, env)
 * @property {number} [timeoutMs] one request's limit; default REGISTRY_TIMEOUT_SECONDS or LIMITS.timeoutMs
 * @property {number} [attempts] tries of one request; default LIMITS.attempts
 * @property {(ms: number) => Promise<void>} [sleep] waits between tries (tests pass a recorder)
 * @property {boolean} [allowPlainHttpCredentials] send credentials over plain HTTP to a host that
 *   is not loopback (warned on stderr); default REGISTRY_PLAIN_HTTP_CREDENTIALS=allow, else refused
 * @property {(line: string) => void} [warn] where warnings go; default stderr
 */

/**
 * REGISTRY_TIMEOUT_SECONDS, validated: a positive number of seconds (fractions allowed).
 * @param {NodeJS.ProcessEnv} env
 * @returns {number | undefined} milliseconds, or undefined when unset
 */
function timeoutFromEnv(env) {
  const text = env.REGISTRY_TIMEOUT_SECONDS;
  if (text === undefined || text === '') return undefined;
  const seconds = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || !(seconds > 0) || seconds > 3600) {
    throw new RegistryError(
      `REGISTRY_TIMEOUT_SECONDS is "${text}": expected the seconds one registry request may take, a number above 0 and at most 3600 (default ${LIMITS.timeoutMs / 1000})`,
    );
  }
  return Math.round(seconds * 1000);
}

/**
 * REGISTRY_PLAIN_HTTP_CREDENTIALS, validated: `allow` or unset.
 * @param {NodeJS.ProcessEnv} env
 */
function plainHttpCredentialsFromEnv(env) {
  const text = env.REGISTRY_PLAIN_HTTP_CREDENTIALS;
  if (text === undefined || text === '') return false;
  if (text === 'allow') return true;
  throw new RegistryError(
    `REGISTRY_PLAIN_HTTP_CREDENTIALS is "${text}": expected "allow" (send registry credentials over plain HTTP, readable by anyone on the path) or unset`,
  );
}

/**
 * The delay a Retry-After header asks for (seconds, or an HTTP date), in milliseconds.
 * @param {string | null} header
 * @param {number} now
 * @returns {number | undefined}
 */
function retryAfterMs(header, now = Date.now()) {
  if (header === null || header.trim() === '') return undefined;
  const text = header.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return undefined;
  return Math.max(0, date - now);
}

/**
 * A response's body, at most `limit` bytes: a larger one (announced or received) fails with
 * the limit named, and the rest is not read.
 * @param {Response} response
 * @param {number} limit
 * @param {string} what for the message
 * @returns {Promise<Buffer>}
 */
async function readBody(response, limit, what) {
  const announced = Number(response.headers.get('content-length') ?? NaN);
  const tooLarge = (/** @type {string} */ size) =>
    new RegistryError(
      `${what}: the registry's answer is ${size} bytes, more than the ${limit} this client reads: the registry or a proxy in front of it is misbehaving`,
      { status: response.status },
    );
  if (Number.isFinite(announced) && announced > limit) {
    await response.body?.cancel().catch(() => undefined);
    throw tooLarge(String(announced));
  }
  if (response.body === null) return Buffer.alloc(0);
  const reader = /** @type {import('node:stream/web').ReadableStreamDefaultReader<Uint8Array>} */ (
    response.body.getReader()
  );
  /** @type {Buffer[]} */
  const chunks = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > limit) {
      await reader.cancel().catch(() => undefined);
      throw tooLarge(`over ${limit}`);
    }
    chunks.push(Buffer.from(value));
  }
  return Buffer.concat(chunks);
}

/**
 * Drops a body unread (redirects, 401s, answers about to be retried).
 * @param {Response} response
 */
async function discardBody(response) {
  await response.body?.cancel().catch(() => undefined);
}

/** @param {unknown} error */
function isTimeout(error) {
  const name = /** @type {{ name?: string }} */ (error)?.name;
  return name === 'TimeoutError' || name === 'AbortError';
}

/** @param {number} ms */
const defaultSleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * @typedef {object} Manifest
 * @property {Buffer} bytes the exact bytes the registry stores: re-putting them keeps the digest
 * @property {string} mediaType
 * @property {string} digest
 * @property {ManifestJson} json
 */

/**
 * The parts of a manifest or index this tool reads.
 * @typedef {object} ManifestJson
 * @property {string} [mediaType]
 * @property {Descriptor[]} [manifests] an index's entries
 * @property {Descriptor} [config] an image manifest's config blob
 * @property {Descriptor[]} [layers] an image manifest's layer blobs
 */

/**
 * @typedef {object} Descriptor
 * @property {string} digest
 * @property {string} [mediaType]
 * @property {number} [size] bytes of the blob or manifest, as stored (compressed)
 * @property {{ os?: string, architecture?: string, variant?: string }} [platform]
 * @property {Record<string, string>} [annotations]
 */

/**
 * @typedef {object} TagChange
 * @property {string} tag
 * @property {'added' | 'present'} action `present`: the tag already named this digest
 */

/** One registry host: authentication, the manifest, blob and tag calls. */
class RegistryClient {
  /**
   * @param {string} host
   * @param {ClientOptions} [options]
   */
  constructor(host, options = {}) {
    this.host = host;
    this.env = options.env ?? process.env;
    /** Whether the caller chose the scheme (then REGISTRY_INSECURE is no fix to suggest). */
    this.explicitBaseUrl = options.baseUrl !== undefined;
    this.baseUrl = options.baseUrl ?? registryBaseUrl(host, this.env);
    /** @type {Credentials | undefined | null} null: not looked up yet */
    this.credentials = options.credentials ?? null;
    /** @type {string | undefined} the Authorization header the last challenge asked for */
    this.authorization = undefined;
    this.timeoutMs = options.timeoutMs ?? timeoutFromEnv(this.env) ?? LIMITS.timeoutMs;
    this.attempts = options.attempts ?? LIMITS.attempts;
    this.sleep = options.sleep ?? defaultSleep;
    this.allowPlainHttpCredentials =
      options.allowPlainHttpCredentials ?? plainHttpCredentialsFromEnv(this.env);
    this.warn = options.warn ?? ((/** @type {string} */ line) => process.stderr.write(`${line}\n`));
    /** Whether the plain-HTTP credentials warning was printed (once per client). */
    this.warnedPlainHttp = false;
  }

  /**
   * Refuses to send credentials in the clear, except to loopback (never leaves the machine) or
   * with the explicit, warned REGISTRY_PLAIN_HTTP_CREDENTIALS=allow.
   * @param {string} url where the credentials would go
   * @param {string} what which credentials, for the message
   */
  assertCredentialsMayGo(url, what) {
    const target = new URL(url);
    if (target.protocol === 'https:' || isLoopback(target.host)) return;
    if (!this.allowPlainHttpCredentials) {
      throw new RegistryError(
        `refusing to send ${what} to ${target.origin} over plain HTTP, where anyone on the path can read them: ` +
          `serve the registry over HTTPS (k8s/registry has a TLS option), reach it through a loopback port-forward ` +
          `(kubectl port-forward … 5000 and 127.0.0.1:5000), or set REGISTRY_PLAIN_HTTP_CREDENTIALS=allow to accept the risk`,
      );
    }
    if (!this.warnedPlainHttp) {
      this.warnedPlainHttp = true;
      this.warn(
        `warning: sending ${what} to ${target.origin} over plain HTTP (REGISTRY_PLAIN_HTTP_CREDENTIALS=allow): anyone on the path can read them`,
      );
    }
  }

  /**
   * One request with bounded retries: 429 and 5xx answers and requests without an answer
   * (refused, reset, timed out) are tried again, up to `attempts` in all, after a backoff with
   * full jitter or the Retry-After the registry asked for. Every method this client sends is
   * idempotent (GET, HEAD, and PUT of the same manifest bytes under a tag).
   * @param {string} method
   * @param {string} url
   * @param {Record<string, string>} headers
   * @param {Buffer} [body]
   * @returns {Promise<Response>}
   */
  async send(method, url, headers, body) {
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= this.attempts;
      /** @type {Response} */
      let response;
      try {
        response = await this.fetchOnce(method, url, headers, body);
      } catch (error) {
        if (!(error instanceof RegistryUnreachableError) || last) {
          if (error instanceof RegistryUnreachableError && attempt > 1) {
            error.message += ` (${attempt} tries)`;
          }
          throw error;
        }
        await this.sleep(this.backoff(attempt));
        continue;
      }
      if (!RETRIABLE_STATUS.has(response.status) || last) {
        return response;
      }
      const asked = retryAfterMs(response.headers.get('retry-after'));
      await discardBody(response);
      if (asked !== undefined && asked > LIMITS.maxRetryAfterMs) {
        throw new RegistryError(
          `${method} ${url}: the registry answered ${response.status} and asks to retry after ${Math.ceil(asked / 1000)} s, ` +
            `longer than the ${LIMITS.maxRetryAfterMs / 1000} s this client waits: try again later`,
          { status: response.status },
        );
      }
      await this.sleep(asked ?? this.backoff(attempt));
    }
  }

  /**
   * Full-jitter exponential backoff before try `attempt + 1`.
   * @param {number} attempt
   */
  backoff(attempt) {
    const ceiling = Math.min(LIMITS.maxBackoffMs, LIMITS.backoffMs * 2 ** (attempt - 1));
    return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
  }

  /** @returns {Credentials | undefined} */
  loadCredentials() {
    if (this.credentials === null) this.credentials = readDockerCredentials(this.host, this.env);
    return this.credentials;
  }

  /**
   * Fetches, following redirects by hand so that credentials never go to another origin (ECR
   * redirects blob downloads to S3 with a presigned URL).
   * @param {string} method
   * @param {string} url
   * @param {Record<string, string>} headers
   * @param {Buffer} [body]
   * @returns {Promise<Response>}
   */
  async fetchOnce(method, url, headers, body) {
    let current = url;
    /** @type {Record<string, string>} */
    let currentHeaders = headers;
    for (let hop = 0; hop < 5; hop++) {
      /** @type {Response} */
      let response;
      try {
        response = await fetch(current, {
          method,
          headers: currentHeaders,
          body,
          redirect: 'manual',
          // Covers the headers and the body: a registry that stops sending fails here.
          signal: AbortSignal.timeout(this.timeoutMs),
        });
      } catch (error) {
        const cause = /** @type {{ cause?: { message?: string } }} */ (error).cause?.message;
        const reason = isTimeout(error)
          ? `no answer within ${this.timeoutMs / 1000} s (REGISTRY_TIMEOUT_SECONDS sets the limit)`
          : (cause ?? /** @type {Error} */ (error).message);
        const hint =
          this.baseUrl.startsWith('https') && !this.explicitBaseUrl
            ? ' over HTTPS (set REGISTRY_INSECURE=true for a plain-HTTP registry)'
            : '';
        throw new RegistryUnreachableError(
          `${method} ${current} failed: ${reason}. Is ${this.host} reachable${hint}?`,
          current,
          reason,
        );
      }
      const location = response.headers.get('location');
      if (![301, 302, 303, 307, 308].includes(response.status) || location === null)
        return response;
      await discardBody(response);
      const next = new URL(location, current);
      if (next.origin !== new URL(current).origin) {
        currentHeaders = Object.fromEntries(
          Object.entries(currentHeaders).filter(([name]) => name !== 'authorization'),
        );
      }
      current = next.toString();
    }
    throw new RegistryError(`${method} ${url}: more than 5 redirects`);
  }

  /**
   * A registry API call; answers one 401 challenge and retries once.
   * @param {string} method
   * @param {string} apiPath path under /v2/
   * @param {{ headers?: Record<string, string>, body?: Buffer }} [init]
   * @returns {Promise<Response>}
   */
  async request(method, apiPath, init = {}) {
    const url = `${this.baseUrl}/v2/${apiPath}`;
    const headers = { ...(init.headers ?? {}) };
    if (this.authorization !== undefined) headers.authorization = this.authorization;
    let response = await this.send(method, url, headers, init.body);
    if (response.status !== 401) return response;
    await discardBody(response);
    this.authorization = await this.authorize(response.headers.get('www-authenticate'));
    response = await this.send(
      method,
      url,
      { ...headers, authorization: this.authorization },
      init.body,
    );
    if (response.status === 401) {
      await discardBody(response);
      const credentials = this.loadCredentials();
      throw new AuthenticationError(
        credentials === undefined
          ? `${this.host} refused anonymous access for ${method} /v2/${apiPath} and ${dockerConfigPath(this.env)} has no credentials for it: run docker login ${this.host} first`
          : `${this.host} refused the credentials of user "${credentials.username}" (from ${credentials.source}) for ${method} /v2/${apiPath}: ` +
              `run docker login ${this.host} again with a valid password`,
        credentials,
      );
    }
    return response;
  }

  /**
   * The Authorization header for a 401 challenge.
   * @param {string | null} header
   * @returns {Promise<string>}
   */
  async authorize(header) {
    const credentials = this.loadCredentials();
    if (header === null)
      throw new RegistryError(`${this.host} answered 401 without a WWW-Authenticate challenge`);
    const challenge = parseChallenge(header);
    if (challenge.scheme === 'basic') {
      if (credentials === undefined) {
        throw new AuthenticationError(
          `${this.host} requires authentication and ${dockerConfigPath(this.env)} has no credentials for it: run docker login ${this.host} first`,
          undefined,
        );
      }
      this.assertCredentialsMayGo(this.baseUrl, `the password of "${credentials.username}"`);
      return `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    }
    if (challenge.scheme === 'bearer')
      return `Bearer ${await this.fetchToken(challenge.params, credentials)}`;
    throw new RegistryError(
      `${this.host} asks for the "${challenge.scheme}" authentication scheme; only Basic and Bearer are supported`,
    );
  }

  /**
   * Fetches a token from the challenge's realm, with the basic credentials when there are any
   * (anonymous otherwise: public repositories allow anonymous pulls).
   * @param {Record<string, string>} params
   * @param {Credentials | undefined} credentials
   * @returns {Promise<string>}
   */
  async fetchToken(params, credentials) {
    if (!params.realm)
      throw new RegistryError(`${this.host} sent a Bearer challenge without a realm`);
    const realm = new URL(params.realm);
    if (params.service) realm.searchParams.set('service', params.service);
    if (params.scope) realm.searchParams.set('scope', params.scope);
    /** @type {Record<string, string>} */
    const headers = { accept: 'application/json' };
    if (credentials !== undefined) {
      this.assertCredentialsMayGo(
        realm.toString(),
        `the password of "${credentials.username}" (token service of ${this.host})`,
      );
      headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64')}`;
    }
    const response = await this.send('GET', realm.toString(), headers);
    const text = (
      await readBody(
        response,
        response.ok ? LIMITS.tokenBytes : LIMITS.errorBytes,
        `the token service ${params.realm}`,
      )
    ).toString('utf8');
    if (!response.ok) {
      const message =
        `the token service ${params.realm} answered ${response.status} for scope "${params.scope ?? ''}"` +
        `${credentials === undefined ? ' (no credentials in the docker config)' : ` (user "${credentials.username}" from ${credentials.source})`}: ` +
        `run docker login ${this.host} with an account allowed that access. ${text.slice(0, 200)}`;
      if (response.status === 401 || response.status === 403)
        throw new AuthenticationError(message, credentials, { status: response.status });
      throw new RegistryError(message, { status: response.status });
    }
    /** @type {{ token?: string, access_token?: string }} */
    let body;
    try {
      body = /** @type {typeof body} */ (parseJson(text));
    } catch {
      throw new RegistryError(
        `the token service ${params.realm} answered something that is not JSON: ${text.slice(0, 200)}`,
      );
    }
    const token = body.token ?? body.access_token;
    if (!token)
      throw new RegistryError(`the token service ${params.realm} answered without a token`);
    return token;
  }

  /**
   * @param {Response} response
   * @param {string} what for the message, e.g. `manifest 127.0.0.1:5000/rng:abc`
   * @returns {Promise<never>}
   */
  async fail(response, what) {
    const text = (await readBody(response, LIMITS.errorBytes, what).catch(() => Buffer.alloc(0)))
      .toString('utf8')
      .slice(0, 300);
    const tries = RETRIABLE_STATUS.has(response.status) ? ` after ${this.attempts} tries` : '';
    if (response.status === 404)
      throw new NotFoundError(`${what} does not exist (404${text ? `: ${text.trim()}` : ''})`);
    if (response.status === 403) {
      throw new RegistryError(
        `${what}: access denied (403): the credentials for ${this.host} lack permission. ${text.trim()}`,
        { status: 403 },
      );
    }
    throw new RegistryError(
      `${what}: the registry answered ${response.status} ${response.statusText}${tries}. ${text.trim()}`,
      { status: response.status },
    );
  }

  /**
   * The digest of a manifest, from a HEAD request (it does not count as a pull on registries
   * with pull limits); falls back to GET and hashing when the header is missing.
   * @param {string} repository
   * @param {string} reference tag or digest
   * @returns {Promise<string>}
   */
  async manifestDigest(repository, reference) {
    const response = await this.request('HEAD', `${repository}/manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (response.status === 404)
      throw new NotFoundError(`manifest ${this.host}/${repository}:${reference} does not exist`);
    if (response.ok) {
      const digest = response.headers.get('docker-content-digest');
      if (digest !== null && DIGEST.test(digest)) return digest;
    } else if (response.status !== 405) {
      return this.fail(response, `manifest ${this.host}/${repository}:${reference}`);
    }
    return (await this.getManifest(repository, reference)).digest;
  }

  /**
   * The digest of a tag, or `undefined` when the tag (or the repository) does not exist.
   * @param {string} repository
   * @param {string} tag
   * @returns {Promise<string | undefined>}
   */
  async tagDigest(repository, tag) {
    try {
      return await this.manifestDigest(repository, tag);
    } catch (error) {
      if (error instanceof NotFoundError) return undefined;
      throw error;
    }
  }

  /**
   * The manifest's exact bytes and media type. The digest is computed from the bytes and must
   * match what the registry says (and the digest asked for).
   * @param {string} repository
   * @param {string} reference tag or digest
   * @returns {Promise<Manifest>}
   */
  async getManifest(repository, reference) {
    const what = `manifest ${this.host}/${repository}${reference.startsWith('sha256:') ? '@' : ':'}${reference}`;
    const response = await this.request('GET', `${repository}/manifests/${reference}`, {
      headers: { accept: MANIFEST_ACCEPT },
    });
    if (!response.ok) return this.fail(response, what);
    const bytes = await readBody(response, LIMITS.manifestBytes, what);
    const digest = sha256(bytes);
    const claimed = response.headers.get('docker-content-digest');
    if (
      (claimed !== null && DIGEST.test(claimed) && claimed !== digest) ||
      (reference.startsWith('sha256:') && reference !== digest)
    ) {
      throw new RegistryError(
        `${what}: the bytes received hash to ${digest}, not ${claimed ?? reference}: the transfer or the registry is broken; try again`,
      );
    }
    /** @type {ManifestJson} */
    let json;
    try {
      json = /** @type {ManifestJson} */ (parseJson(bytes.toString('utf8')));
    } catch {
      throw new RegistryError(`${what} is not JSON`);
    }
    const header = (response.headers.get('content-type') ?? '').split(';')[0]?.trim() ?? '';
    const mediaType = [...INDEX_TYPES, ...IMAGE_TYPES].includes(header)
      ? header
      : (json.mediaType ?? '');
    if (![...INDEX_TYPES, ...IMAGE_TYPES].includes(mediaType)) {
      throw new RegistryError(
        `${what} has the media type "${mediaType ?? header}", which is not an OCI or Docker v2 schema 2 manifest or index: push it with a current client`,
      );
    }
    return { bytes, mediaType, digest, json };
  }

  /**
   * Puts manifest bytes under a tag and checks the registry stored exactly them.
   * @param {string} repository
   * @param {string} tag
   * @param {Manifest} manifest
   */
  async putManifest(repository, tag, manifest) {
    const what = `PUT manifest ${this.host}/${repository}:${tag}`;
    const response = await this.request('PUT', `${repository}/manifests/${tag}`, {
      headers: { 'content-type': manifest.mediaType },
      body: manifest.bytes,
    });
    if (!response.ok) return this.fail(response, what);
    await discardBody(response);
    const stored = response.headers.get('docker-content-digest');
    if (stored !== null && stored !== manifest.digest) {
      throw new RegistryError(
        `${what}: the registry stored ${stored}, not ${manifest.digest}: it rewrote the manifest; retagging cannot keep the digest there`,
      );
    }
  }

  /**
   * A blob's bytes, checked against its digest.
   * @param {string} repository
   * @param {string} digest
   * @returns {Promise<Buffer>}
   */
  async getBlob(repository, digest) {
    const what = `blob ${this.host}/${repository}@${digest}`;
    const response = await this.request('GET', `${repository}/blobs/${digest}`);
    if (!response.ok) return this.fail(response, what);
    const bytes = await readBody(response, LIMITS.blobBytes, what);
    if (sha256(bytes) !== digest)
      throw new RegistryError(`${what}: the bytes received hash to ${sha256(bytes)}; try again`);
    return bytes;
  }

  /**
   * Every tag of a repository, following the `Link: <…>; rel="next"` pages.
   * @param {string} repository
   * @param {{ pageSize?: number }} [options]
   * @returns {Promise<string[]>}
   */
  async listTags(repository, { pageSize = 1000 } = {}) {
    return this.listPages(
      `${repository}/tags/list?n=${pageSize}`,
      'tags',
      `repository ${this.host}/${repository}`,
    );
  }

  /**
   * Every repository of the registry (`/v2/_catalog`), following the `Link: <…>; rel="next"`
   * pages. Registries may cap `n` (distribution: 1000) and may refuse the catalog (ECR has none).
   * @param {{ pageSize?: number }} [options]
   * @returns {Promise<string[]>}
   */
  async listRepositories({ pageSize = 1000 } = {}) {
    return this.listPages(`_catalog?n=${pageSize}`, 'repositories', `the catalog of ${this.host}`);
  }

  /**
   * The entries of a paginated list, every page: the first page's path, then each `rel="next"`
   * link, which must stay under this registry's /v2/ (credentials go with it).
   * @param {string} first path under /v2/
   * @param {'tags' | 'repositories'} key the array of each page's JSON
   * @param {string} what for messages
   * @returns {Promise<string[]>}
   */
  async listPages(first, key, what) {
    /** @type {string[]} */
    const entries = [];
    const seen = new Set();
    /** @type {string | undefined} */
    let next = first;
    while (next !== undefined) {
      seen.add(next);
      const response = await this.request('GET', next);
      if (!response.ok) return this.fail(response, what);
      const text = (await readBody(response, LIMITS.listBytes, what)).toString('utf8');
      /** @type {Record<string, unknown>} */
      let page;
      try {
        page = /** @type {Record<string, unknown>} */ (parseJson(text));
      } catch {
        throw new RegistryError(
          `${what}: GET /v2/${next} answered something that is not JSON: ${text.slice(0, 200)}`,
        );
      }
      const values = page?.[key] ?? [];
      const invalid = () =>
        new RegistryError(`${what}: GET /v2/${next} has no "${key}" list of strings`);
      if (!Array.isArray(values)) throw invalid();
      for (const value of /** @type {unknown[]} */ (values)) {
        if (typeof value !== 'string') throw invalid();
        entries.push(value);
      }
      const link = /<([^>]+)>\s*;\s*rel="?next"?/.exec(response.headers.get('link') ?? '')?.[1];
      if (link === undefined) break;
      const url = new URL(link, `${this.baseUrl}/v2/`);
      if (url.origin !== new URL(this.baseUrl).origin || !url.pathname.startsWith('/v2/'))
        throw new RegistryError(
          `${what}: the next page is ${link}, outside ${this.baseUrl}/v2/; refusing to follow it`,
        );
      next = `${url.pathname.slice('/v2/'.length)}${url.search}`;
      if (seen.has(next))
        throw new RegistryError(`${what}: the registry's next page ${link} was read already`);
    }
    return entries;
  }
}

/** @param {string} platform e.g. `linux/arm64` or `linux/arm/v7` */
function parsePlatform(platform) {
  const [osName, architecture, variant, ...extra] = platform.split('/');
  if (!osName || !architecture || extra.length > 0) {
    throw new UsageError(
      `IMAGE_PLATFORM is "${platform}": expected <os>/<architecture>[/<variant>], e.g. linux/amd64 or linux/arm64`,
    );
  }
  return { os: osName, architecture, variant };
}

/**
 * The image manifest an index stands for: the one for `platform` when given, else the first that
 * is not an attestation (BuildKit stores provenance as `unknown/unknown` entries).
 * @param {ManifestJson} index
 * @param {string | undefined} platform
 * @param {string} what
 * @returns {string} the chosen manifest's digest
 */
function pickFromIndex(index, platform, what) {
  const entries = Array.isArray(index.manifests) ? index.manifests : [];
  const images = entries.filter(
    (entry) =>
      entry.annotations?.['vnd.docker.reference.type'] !== 'attestation-manifest' &&
      entry.platform?.os !== 'unknown',
  );
  if (platform !== undefined) {
    const wanted = parsePlatform(platform);
    const found = images.find(
      (entry) =>
        entry.platform?.os === wanted.os &&
        entry.platform?.architecture === wanted.architecture &&
        (wanted.variant === undefined || entry.platform?.variant === wanted.variant),
    );
    if (found === undefined) {
      const have = images
        .map((e) =>
          [e.platform?.os, e.platform?.architecture, e.platform?.variant].filter(Boolean).join('/'),
        )
        .join(', ');
      throw new RegistryError(
        `${what} is an index without an image for ${platform} (it has: ${have || 'none'}): build for that platform or set IMAGE_PLATFORM to one it has`,
      );
    }
    return found.digest;
  }
  const first = images[0];
  if (first === undefined)
    throw new RegistryError(`${what} is an index without any image manifest`);
  return first.digest;
}

/**
 * The parts of an image config (OCI image spec "config", Docker image JSON) this tool reads.
 * @typedef {object} ImageConfig
 * @property {string} [created] RFC 3339: when the image was built
 * @property {{ Labels?: Record<string, string> | null }} [config]
 */

/**
 * The labels of the image config a manifest (or an index entry, see pickFromIndex) points at.
 * @param {RegistryClient} client
 * @param {string} repository
 * @param {Manifest} manifest
 * @param {{ platform?: string, what: string }} options
 * @returns {Promise<Record<string, string>>}
 */
async function manifestLabels(client, repository, manifest, options) {
  return (await imageConfig(client, repository, manifest, options)).config?.Labels ?? {};
}

/**
 * The image config a manifest (or an index entry, see pickFromIndex) points at.
 * @param {RegistryClient} client
 * @param {string} repository
 * @param {Manifest} manifest
 * @param {{ platform?: string, what: string }} options
 * @returns {Promise<ImageConfig>}
 */
async function imageConfig(client, repository, manifest, { platform, what }) {
  let image = manifest;
  if (INDEX_TYPES.includes(manifest.mediaType)) {
    image = await client.getManifest(repository, pickFromIndex(manifest.json, platform, what));
    if (!IMAGE_TYPES.includes(image.mediaType))
      throw new RegistryError(`${what}: the index entry ${image.digest} is not an image manifest`);
  }
  const configDigest = image.json.config?.digest;
  if (typeof configDigest !== 'string' || !DIGEST.test(configDigest))
    throw new RegistryError(`${what}: the image manifest has no config digest`);
  const bytes = await client.getBlob(repository, configDigest);
  /** @type {unknown} */
  let config;
  try {
    config = parseJson(bytes.toString('utf8'));
  } catch {
    throw new RegistryError(`${what}: the image config ${configDigest} is not JSON`);
  }
  return config !== null && typeof config === 'object' ? /** @type {ImageConfig} */ (config) : {};
}

// ---- the operations the CLI runs; each takes a parsed reference and a client ----

/**
 * Tags become URL path segments: refuse anything outside the tag grammar.
 * @param {string[]} tags
 */
function checkTags(tags) {
  for (const tag of tags) {
    if (!TAG.test(tag)) {
      throw new UsageError(
        `"${tag}" is not a valid tag: 1 to 128 of [A-Za-z0-9_.-], not starting with "." or "-"`,
      );
    }
  }
}

/**
 * The one digest every tag names. Fails (NotFoundError) when one is missing and (RegistryError)
 * when they name different digests, listing each.
 * @param {RegistryClient} client
 * @param {string} repository
 * @param {string[]} references tags or digests
 * @returns {Promise<string>}
 */
async function commonDigest(client, repository, references) {
  const unique = [...new Set(references)];
  if (unique.length === 0) throw new UsageError('no tag given');
  /** @type {Array<[string, string]>} */
  const found = [];
  for (const reference of unique)
    found.push([reference, await client.manifestDigest(repository, reference)]);
  const digests = new Set(found.map(([, digest]) => digest));
  if (digests.size > 1) {
    throw new RegistryError(
      `the tags of ${client.host}/${repository} name different images: ${found.map(([tag, digest]) => `${tag} → ${digest}`).join(', ')}. ` +
        'They were expected to name one digest: find out what pushed the other one before deploying any of them',
    );
  }
  return /** @type {string} */ (found[0]?.[1]);
}

/**
 * Puts the manifest of `source` under every new tag: the same bytes, hence the same digest (what
 * was tested is what gets promoted). Every tag is checked before anything is written: a tag that
 * already names another digest fails the whole call (tags are immutable) and nothing changes.
 * @param {RegistryClient} client
 * @param {Reference} source
 * @param {string[]} newTags
 * @param {{ requireRevision?: string, platform?: string }} [options]
 * @returns {Promise<{ digest: string, changes: TagChange[] }>}
 */
async function retag(client, source, newTags, options = {}) {
  const sourceName = formatReference(source);
  const sourceRef = source.digest ?? source.tag;
  if (sourceRef === undefined)
    throw new UsageError(`${sourceName}: name the source tag, e.g. ${sourceName}:6e0de7938dda`);
  checkTags(newTags);
  const manifest = await client.getManifest(source.repository, sourceRef);
  if (options.requireRevision !== undefined) {
    const labels = await manifestLabels(client, source.repository, manifest, {
      platform: options.platform,
      what: sourceName,
    });
    const revision = labels[REVISION_LABEL];
    if (revision !== options.requireRevision) {
      throw new RevisionMismatchError(
        `${sourceName} (${manifest.digest}) has ${revision === undefined ? `no ${REVISION_LABEL} label` : `${REVISION_LABEL}=${revision}`}, ` +
          `but it was expected to be the build of commit ${options.requireRevision}. It is not promoted and no tag was added. ` +
          'Either another image took this tag (a commit-prefix collision, or a push from outside the pipeline) or it was built without labels: ' +
          'inspect it, and delete that tag if it is not ours before building again',
      );
    }
  }
  /** @type {TagChange[]} */
  const changes = [];
  for (const tag of [...new Set(newTags)]) {
    const existing = await client.tagDigest(source.repository, tag);
    if (existing !== undefined && existing !== manifest.digest) {
      throw new ImmutableTagError(
        `${client.host}/${source.repository}:${tag} already names ${existing}, not ${manifest.digest} (${sourceName}): ` +
          'tags are immutable, so nothing was changed. Find out which build pushed it; use another tag, or delete that tag deliberately',
      );
    }
    changes.push({ tag, action: existing === undefined ? 'added' : 'present' });
  }
  for (const change of changes) {
    if (change.action === 'added')
      await client.putManifest(source.repository, change.tag, manifest);
  }
  return { digest: manifest.digest, changes };
}

/**
 * Fails when any of these tags exists. Before a build pushes a set of tags: a tag that exists
 * already names an image this build has not made yet, and tags are immutable.
 * @param {RegistryClient} client
 * @param {string} repository
 * @param {string[]} tags
 */
async function assertAbsent(client, repository, tags) {
  /** @type {string[]} */
  const taken = [];
  for (const tag of [...new Set(tags)]) {
    const digest = await client.tagDigest(repository, tag);
    if (digest !== undefined) taken.push(`${client.host}/${repository}:${tag} (${digest})`);
  }
  if (taken.length > 0) {
    throw new ImmutableTagError(
      `${taken.join(', ')} already exist${taken.length === 1 ? 's' : ''}, naming an image this build has not made: ` +
        'tags are immutable, so nothing was built or pushed. Find out which build pushed it; delete that tag deliberately if it is wrong',
    );
  }
}

// ---- command line ----

const USAGE = `usage:
  registry.js digest <host>/<repository>:<tag> [<tag>…]
  registry.js retag <host>/<repository>:<tag> <new tag>… [--require-revision <commit>]
  registry.js absent <host>/<repository>:<tag> [<tag>…]
  registry.js labels <host>/<repository>:<tag>
  registry.js tags <host>/<repository>
Environment: DOCKER_CONFIG (credentials, as docker login writes them), IMAGE_PLATFORM (the image
of an index that labels and --require-revision read), REGISTRY_INSECURE=true (plain HTTP).
Exit status: 0 ok, 1 error, 2 usage, 3 not found.`;

/**
 * Runs one command; returns what to print.
 * @param {string[]} argv arguments after the script name
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<string>}
 */
async function run(argv, env) {
  const [command, ...rest] = argv;
  /** @type {string | undefined} */
  let requireRevision;
  /** @type {string[]} */
  const args = [];
  for (let i = 0; i < rest.length; i++) {
    const arg = /** @type {string} */ (rest[i]);
    if (arg === '--require-revision' && command === 'retag') {
      requireRevision = rest[++i];
      if (requireRevision === undefined || !/^[0-9a-f]{40}$/.test(requireRevision)) {
        throw new UsageError(
          `--require-revision needs the 40-hex commit id, got "${requireRevision ?? ''}"`,
        );
      }
    } else if (arg.startsWith('-')) {
      throw new UsageError(`unknown option "${arg}"`);
    } else {
      args.push(arg);
    }
  }
  const platform = env.IMAGE_PLATFORM || undefined;
  const first = args[0];
  switch (command) {
    case 'digest': {
      if (first === undefined) throw new UsageError('digest needs <host>/<repository>:<tag>');
      const ref = parseReference(first);
      const head = ref.digest ?? ref.tag;
      if (head === undefined)
        throw new UsageError(`${first}: name a tag, e.g. ${first}:6e0de7938dda`);
      checkTags(args.slice(1));
      const client = new RegistryClient(ref.host, { env });
      return commonDigest(client, ref.repository, [head, ...args.slice(1)]);
    }
    case 'retag': {
      if (first === undefined || args.length < 2)
        throw new UsageError('retag needs <host>/<repository>:<tag> and at least one new tag');
      const ref = parseReference(first);
      const client = new RegistryClient(ref.host, { env });
      const options = requireRevision === undefined ? { platform } : { platform, requireRevision };
      const result = await retag(client, ref, args.slice(1), options);
      return result.changes
        .map(
          (c) =>
            `${c.action === 'added' ? 'added  ' : 'present'} ${ref.host}/${ref.repository}:${c.tag}@${result.digest}`,
        )
        .join('\n');
    }
    case 'absent': {
      if (first === undefined) throw new UsageError('absent needs <host>/<repository>:<tag>');
      const ref = parseReference(first);
      if (ref.tag === undefined) throw new UsageError(`${first}: name a tag, e.g. ${first}:v1.2.0`);
      checkTags(args.slice(1));
      await assertAbsent(new RegistryClient(ref.host, { env }), ref.repository, [
        ref.tag,
        ...args.slice(1),
      ]);
      return '';
    }
    case 'labels': {
      if (first === undefined || args.length !== 1)
        throw new UsageError('labels needs one <host>/<repository>:<tag>');
      const ref = parseReference(first);
      const head = ref.digest ?? ref.tag;
      if (head === undefined)
        throw new UsageError(`${first}: name a tag, e.g. ${first}:6e0de7938dda`);
      const client = new RegistryClient(ref.host, { env });
      const manifest = await client.getManifest(ref.repository, head);
      return JSON.stringify(
        await manifestLabels(client, ref.repository, manifest, { platform, what: first }),
        null,
        2,
      );
    }
    case 'tags': {
      if (first === undefined || args.length !== 1)
        throw new UsageError('tags needs one <host>/<repository>');
      const ref = parseReference(first, { allowTag: false });
      return (await new RegistryClient(ref.host, { env }).listTags(ref.repository)).join('\n');
    }
    case undefined:
    case '--help':
    case '-h':
      throw new UsageError('');
    default:
      throw new UsageError(`unknown command "${command}"`);
  }
}

/**
 * @param {string[]} argv
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<number>} the exit status
 */
async function main(argv, env) {
  try {
    const output = await run(argv, env);
    if (output !== '') process.stdout.write(`${output}\n`);
    return EXIT.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message ? `registry.js: ${error.message}\n` : ''}${USAGE}\n`);
      return argv[0] === '--help' || argv[0] === '-h' ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof NotFoundError) {
      process.stderr.write(`registry.js: ${error.message}\n`);
      return EXIT.notFound;
    }
    process.stderr.write(
      `registry.js: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return EXIT.error;
  }
}

module.exports = {
  MEDIA_TYPES,
  INDEX_TYPES,
  MANIFEST_ACCEPT,
  REVISION_LABEL,
  REPOSITORY_NAME,
  TAG,
  DIGEST,
  EXIT,
  LIMITS,
  RegistryError,
  NotFoundError,
  RegistryUnreachableError,
  AuthenticationError,
  ImmutableTagError,
  RevisionMismatchError,
  UsageError,
  RegistryClient,
  parseReference,
  formatReference,
  registryBaseUrl,
  readDockerCredentials,
  dockerConfigPath,
  isLoopback,
  retryAfterMs,
  parseChallenge,
  pickFromIndex,
  manifestLabels,
  imageConfig,
  commonDigest,
  retag,
  assertAbsent,
  main,
};

if (require.main === module) {
  void main(process.argv.slice(2), process.env).then((status) => {
    process.exitCode = status;
  });
}
