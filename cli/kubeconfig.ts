/**
 * Any cluster through a kubeconfig, read as kubectl reads one: the file from --kubeconfig, else the
 * `KUBECONFIG` list merged (the first file to define a name wins), else `~/.kube/config`; a
 * context's server, CA and namespace; and its user's credentials: a token, a token file, a client
 * certificate, or an exec plugin. Paths in a kubeconfig are relative to its file, as kubectl has it.
 *
 * `aws eks get-token --cluster-name <name>` (what `aws eks update-kubeconfig` writes) is not run
 * but signed in-process by the deployer's token code (core/aws/eks-token.ts): the same token, without
 * a second of Python start-up per command. Anything else it could be asked (`--role-arn`, another
 * flag, another environment variable) runs the command as written, so nothing is half-understood.
 *
 * Verification of the server's certificate is never turned off: `insecure-skip-tls-verify` is
 * refused, and without a CA only publicly trusted certificates verify.
 */
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import * as path from 'node:path';
import { EKSClient } from '@aws-sdk/client-eks';
import { parse as parseYaml } from 'yaml';
import { createKubeClient, type HttpsKubeClient } from '../core/kube';
import { PermanentError } from '../core/types';
import { createTokenCache, type TokenKey } from '../core/aws/eks-token';

/** A kubeconfig that cannot be read or used as written; the message names the file, key and fix. */
export class KubeconfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KubeconfigError';
  }
}

/**
 * A kubeconfig user's credentials could not be had when a request needed them: its exec plugin
 * failed or printed no usable ExecCredential, its token file is unreadable, or (for an in-process
 * `aws eks get-token`) there are no AWS credentials or region.
 */
export class KubeCredentialError extends PermanentError {
  constructor(message: string) {
    // Permanent for this command: its message says what to fix (log in, install the plugin).
    super('credentials', message);
    this.name = 'KubeCredentialError';
  }
}

/** Flag names whose value is a secret (`--oidc-client-secret`, `--token`, `--password`, …). */
const SECRET_FLAG = /(secret|token|passw(or)?d|passwd|key|credential|auth|cookie|session|cert)/i;
/** A value that looks like a secret whatever its flag: long runs of token or base64 characters. */
const SECRET_LOOKING = /^[A-Za-z0-9+/=_.~-]{32,}$/;
/** What a redacted value prints as. */
export const REDACTED = '<redacted>';

/**
 * The plugin's command line for messages, with every value that may be a secret replaced by
 * `<redacted>`: the value of a flag whose name says secret, token, password, key, credential,
 * auth, cookie, session or cert (`--flag=value` or `--flag value`), and any argument that looks
 * like a token. Flag names and the rest stay, so a person can still tell which plugin failed.
 */
export function redactCommandLine(command: string, args: readonly string[]): string {
  return [command, ...redactArgs(args)].join(' ');
}

/** `args`, one for one, with the values that may be secrets replaced (see redactCommandLine). */
function redactArgs(args: readonly string[]): string[] {
  const shown: string[] = [];
  let redactNext = false;
  for (const arg of args) {
    if (redactNext) {
      shown.push(REDACTED);
      redactNext = false;
      continue;
    }
    const flag = /^(--?[A-Za-z0-9][A-Za-z0-9_.-]*)(=(.*))?$/.exec(arg);
    if (flag !== null && SECRET_FLAG.test(flag[1]!)) {
      if (flag[2] === undefined) redactNext = true;
      shown.push(flag[2] === undefined ? arg : `${flag[1]}=${REDACTED}`);
      continue;
    }
    shown.push(flag === null && SECRET_LOOKING.test(arg) ? REDACTED : arg);
  }
  return shown;
}

/** The values `redactCommandLine` hides, so that a plugin's stderr echoing one is redacted too. */
function secretValues(args: readonly string[]): string[] {
  const redacted = redactArgs(args);
  return args.flatMap((arg, index) => {
    if (redacted[index] === arg) return [];
    const value = /^--?[^=]+=(.*)$/.exec(arg)?.[1] ?? arg;
    return value.length >= 4 ? [value] : [];
  });
}

type Mapping = Readonly<Record<string, unknown>>;

/** One named entry of a kubeconfig's `contexts`, `clusters` or `users`. */
export interface KubeconfigEntry {
  readonly value: Mapping;
  /** The file that defined it: relative paths in it are relative to that file's folder. */
  readonly file: string;
  /** Its key path in the file, e.g. `users[1].user`. */
  readonly at: string;
}

/** The kubeconfig files merged, as kubectl merges them. */
export interface Kubeconfig {
  /** The files read, first (winning) first. */
  readonly files: readonly string[];
  /** From the first file that sets one. */
  readonly currentContext: string | undefined;
  readonly contexts: ReadonlyMap<string, KubeconfigEntry>;
  readonly clusters: ReadonlyMap<string, KubeconfigEntry>;
  readonly users: ReadonlyMap<string, KubeconfigEntry>;
}

/** A user's `exec` credential plugin. */
export interface ExecConfig {
  /** As kubectl runs it: a command with a `/` is resolved against the kubeconfig's folder. */
  readonly command: string;
  readonly args: readonly string[];
  /** Added to the environment the plugin runs with. */
  readonly env: readonly { readonly name: string; readonly value: string }[];
  /** The ExecCredential version the plugin must print. */
  readonly apiVersion: string;
  /** Shown when the command is not installed. */
  readonly installHint: string | undefined;
  /** Pass the cluster's server and CA in KUBERNETES_EXEC_INFO. */
  readonly provideClusterInfo: boolean;
  /** Where it is defined, for messages: `<file>: users[0].user.exec`. */
  readonly at: string;
}

/** How a user authenticates: exactly one way, or none (anonymous). */
export type KubeAuth =
  | { readonly kind: 'token'; readonly token: string }
  /** Read at each use, as kubectl re-reads it: the file may be rotated. */
  | { readonly kind: 'token-file'; readonly tokenFile: string }
  | { readonly kind: 'client-certificate'; readonly certPem: string; readonly keyPem: string }
  | { readonly kind: 'exec'; readonly exec: ExecConfig }
  | { readonly kind: 'none' };

/** A context with its cluster and user, validated: everything a connection needs. */
export interface ResolvedContext {
  readonly contextName: string;
  /** The context's user; undefined for a context without one (anonymous requests). */
  readonly userName: string | undefined;
  /** `https://host[:port][/path]`. */
  readonly server: string;
  /** undefined: the cluster gives no CA, so only publicly trusted certificates verify. */
  readonly caPem: string | undefined;
  readonly namespace: string | undefined;
  readonly auth: KubeAuth;
}

/** The ExecCredential versions kubectl still speaks (v1alpha1 was removed in 1.24). */
export const EXEC_API_VERSIONS: readonly string[] = [
  'client.authentication.k8s.io/v1',
  'client.authentication.k8s.io/v1beta1',
];
/** A plugin waiting for a login nobody can give (ship runs it without a terminal) must end. */
const EXEC_TIMEOUT_MS = 60_000;

// ---- reading ----

export interface ReadKubeconfigOptions {
  /** --kubeconfig. @default - `$KUBECONFIG`, else `~/.kube/config` */
  readonly path?: string;
  /** Where KUBECONFIG is read. */
  readonly env: NodeJS.ProcessEnv;
  readonly homeDir: string;
}

/**
 * The kubeconfig kubectl would use: `path` (--kubeconfig), else the files of `$KUBECONFIG`
 * (those that exist, merged: for each context, cluster and user name, the first file that
 * defines it wins; current-context from the first file that sets one), else `~/.kube/config`.
 */
export function readKubeconfig(options: ReadKubeconfigOptions): Kubeconfig {
  const files = kubeconfigFiles(options);
  let currentContext: string | undefined;
  const lists = {
    contexts: new Map<string, KubeconfigEntry>(),
    clusters: new Map<string, KubeconfigEntry>(),
    users: new Map<string, KubeconfigEntry>(),
  };
  for (const file of files) {
    const document = readDocument(file);
    const current = document['current-context'];
    if (isSet(current) && typeof current !== 'string') {
      throw new KubeconfigError(
        `${file}: current-context is ${JSON.stringify(current)}, not a context name; fix it ` +
          '(kubectl config use-context <name>).',
      );
    }
    if (currentContext === undefined && isSet(current)) currentContext = current as string;
    for (const [key, inner] of [
      ['contexts', 'context'],
      ['clusters', 'cluster'],
      ['users', 'user'],
    ] as const) {
      const list = document[key] ?? [];
      if (!Array.isArray(list)) {
        throw new KubeconfigError(
          `${file}: ${key} is not a list (of "- name: <name>" and "${inner}:" entries); fix the file.`,
        );
      }
      const target = lists[key];
      (list as unknown[]).forEach((entry, index) => {
        const at = `${key}[${index}]`;
        const name = isMapping(entry) ? entry.name : undefined;
        const value = isMapping(entry) ? (entry[inner] ?? {}) : undefined;
        // The entry is not quoted: a user's may hold a token.
        if (typeof name !== 'string' || name === '' || !isMapping(value)) {
          throw new KubeconfigError(
            `${file}: ${at} needs a "name" (a string) and a "${inner}" mapping; fix the file.`,
          );
        }
        if (!target.has(name)) target.set(name, { value, file, at: `${at}.${inner}` });
      });
    }
  }
  return { files, currentContext, ...lists };
}

function kubeconfigFiles(options: ReadKubeconfigOptions): string[] {
  if (options.path !== undefined) {
    if (!existsSync(options.path)) {
      throw new KubeconfigError(
        `--kubeconfig ${options.path}: no such file; pass the path of a kubeconfig file.`,
      );
    }
    return [options.path];
  }
  const list = options.env.KUBECONFIG ?? '';
  if (list !== '') {
    // kubectl skips the files of the list that do not exist and reads a file named twice once.
    const files = [...new Set(list.split(path.delimiter))].filter((f) => f !== '' && existsSync(f));
    if (files.length === 0) {
      throw new KubeconfigError(
        `KUBECONFIG is ${JSON.stringify(list)}, and none of its files exists; fix KUBECONFIG or pass ` +
          '--kubeconfig <file>.',
      );
    }
    return files;
  }
  const fallback = path.join(options.homeDir, '.kube', 'config');
  if (!existsSync(fallback)) {
    throw new KubeconfigError(
      `no kubeconfig: KUBECONFIG is not set and ${fallback} does not exist; pass --kubeconfig <file>, ` +
        'or drop --context to reach EKS by cluster name.',
    );
  }
  return [fallback];
}

function readDocument(file: string): Mapping {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (error) {
    throw new KubeconfigError(`${file} cannot be read (${errorCode(error)}); check the path.`);
  }
  let document: unknown;
  try {
    document = parseYaml(text);
  } catch (error) {
    throw new KubeconfigError(
      `${file} is not YAML (${(error as Error).message.split('\n')[0]}); fix the file, or point ` +
        '--kubeconfig/KUBECONFIG at a kubeconfig.',
    );
  }
  // An empty file is an empty kubeconfig to kubectl.
  if (document === null || document === undefined) return {};
  if (!isMapping(document)) {
    throw new KubeconfigError(
      `${file} is not a kubeconfig (its top level is not a mapping of apiVersion, clusters, users, ` +
        'contexts); fix the file, or point --kubeconfig/KUBECONFIG at a kubeconfig.',
    );
  }
  return document;
}

// ---- resolving a context ----

/** The named context, or the current one, with its cluster and user, validated. */
export function resolveContext(
  kubeconfig: Kubeconfig,
  contextName: string | undefined,
): ResolvedContext {
  const files = kubeconfig.files.join(', ');
  const known = [...kubeconfig.contexts.keys()].join(', ') || 'none';
  const name = contextName ?? kubeconfig.currentContext;
  if (name === undefined) {
    throw new KubeconfigError(
      `${files} sets no current-context; pick one with --context <name> (contexts: ${known}).`,
    );
  }
  const context = kubeconfig.contexts.get(name);
  if (context === undefined) {
    throw new KubeconfigError(
      `context "${name}" is not in ${files}; the contexts there are: ${known}. Fix --context or ` +
        'the current-context.',
    );
  }
  const { cluster: clusterName, user: userName, namespace } = context.value;
  const cluster =
    typeof clusterName === 'string' ? kubeconfig.clusters.get(clusterName) : undefined;
  if (cluster === undefined) {
    throw new KubeconfigError(
      `${context.file}: ${context.at}.cluster is ${JSON.stringify(clusterName)}, which no file ` +
        `defines (clusters: ${[...kubeconfig.clusters.keys()].join(', ') || 'none'}); fix the context.`,
    );
  }
  let user: KubeconfigEntry | undefined;
  if (isSet(userName)) {
    user = typeof userName === 'string' ? kubeconfig.users.get(userName) : undefined;
    if (user === undefined) {
      throw new KubeconfigError(
        `${context.file}: ${context.at}.user is ${JSON.stringify(userName)}, which no file defines ` +
          `(users: ${[...kubeconfig.users.keys()].join(', ') || 'none'}); fix the context.`,
      );
    }
  }
  if (namespace !== undefined && typeof namespace !== 'string') {
    throw new KubeconfigError(
      `${context.file}: ${context.at}.namespace is ${JSON.stringify(namespace)}, not a name; fix the context.`,
    );
  }
  return {
    contextName: name,
    userName: user === undefined ? undefined : (userName as string),
    ...readCluster(cluster),
    namespace: namespace === '' ? undefined : namespace,
    auth: user === undefined ? { kind: 'none' } : readUser(user),
  };
}

/** Cluster keys kubectl honours that ship cannot, and what to do instead. */
const UNSUPPORTED_CLUSTER_KEYS: Readonly<Record<string, string>> = {
  'proxy-url': 'ship connects to the API server directly; remove it or use a kubeconfig without it',
  'tls-server-name':
    'ship verifies the certificate for the host of `server`; use a server URL whose host the certificate names',
};

function readCluster(cluster: KubeconfigEntry): { server: string; caPem: string | undefined } {
  const { value: c, file, at } = cluster;
  const server = c.server;
  let url: URL | undefined;
  try {
    url = typeof server === 'string' ? new URL(server) : undefined;
  } catch {
    url = undefined;
  }
  if (url === undefined || url.protocol !== 'https:') {
    throw new KubeconfigError(
      `${file}: ${at}.server is ${JSON.stringify(server)}; ship talks to API servers at an ` +
        'https://<host>[:port] URL only (TLS, verified). Fix the server.',
    );
  }
  if (c['insecure-skip-tls-verify'] === true) {
    throw new KubeconfigError(
      `${file}: ${at}.insecure-skip-tls-verify is true. ship never talks to an API server it cannot ` +
        'verify: anyone on the path could read your credentials and answer for the cluster. Remove ' +
        "it and give the cluster's CA: certificate-authority-data (base64 of the PEM) or " +
        'certificate-authority (a PEM file).',
    );
  }
  for (const [key, fix] of Object.entries(UNSUPPORTED_CLUSTER_KEYS)) {
    if (isSet(c[key])) {
      throw new KubeconfigError(
        `${file}: ${at}.${key} is ${JSON.stringify(c[key])}, which ship does not support: ${fix}.`,
      );
    }
  }
  return {
    server: server as string,
    caPem: readPem(cluster, 'certificate-authority', 'CERTIFICATE'),
  };
}

const BASIC_AUTH =
  'use a token, a client certificate or an exec plugin (Kubernetes dropped basic auth)';
const IMPERSONATION = 'ship acts as the user itself; remove the impersonation';
/** User keys kubectl honours that ship does not, and what to use instead. */
const UNSUPPORTED_USER_KEYS: Readonly<Record<string, string>> = {
  'auth-provider':
    'auth providers are gone from kubectl too; use the exec plugin that replaced yours (e.g. kubelogin, gke-gcloud-auth-plugin)',
  username: BASIC_AUTH,
  password: BASIC_AUTH,
  as: IMPERSONATION,
  'as-uid': IMPERSONATION,
  'as-groups': IMPERSONATION,
  'as-user-extra': IMPERSONATION,
};

function readUser(user: KubeconfigEntry): KubeAuth {
  const { value: u, file, at } = user;
  for (const [key, fix] of Object.entries(UNSUPPORTED_USER_KEYS)) {
    if (isSet(u[key])) {
      throw new KubeconfigError(
        `${file}: ${at}.${key} is set, which ship does not support: ${fix}.`,
      );
    }
  }
  const given = (key: string): boolean => isSet(u[key]);
  const methods = [
    ...(given('token') || given('tokenFile') ? ['token'] : []),
    ...(['client-certificate', 'client-certificate-data', 'client-key', 'client-key-data'].some(
      given,
    )
      ? ['client-certificate']
      : []),
    ...(given('exec') ? ['exec'] : []),
  ];
  if (methods.length > 1) {
    throw new KubeconfigError(
      `${file}: ${at} sets ${methods.join(' and ')}; ship authenticates with exactly one: keep the ` +
        'one this cluster expects and remove the others.',
    );
  }
  // kubectl: a token wins over a tokenFile.
  if (given('token')) return { kind: 'token', token: stringAt(user, 'token') };
  if (given('tokenFile')) {
    return {
      kind: 'token-file',
      tokenFile: path.resolve(path.dirname(file), stringAt(user, 'tokenFile')),
    };
  }
  if (methods[0] === 'client-certificate') {
    const certPem = readPem(user, 'client-certificate', 'CERTIFICATE');
    const keyPem = readPem(user, 'client-key', 'PRIVATE KEY');
    if (certPem === undefined || keyPem === undefined) {
      const missing = certPem === undefined ? 'client-certificate' : 'client-key';
      throw new KubeconfigError(
        `${file}: ${at} has no ${missing}(-data): a client certificate needs both the ` +
          'certificate and its key; add the missing one.',
      );
    }
    return { kind: 'client-certificate', certPem, keyPem };
  }
  if (methods[0] === 'exec') return { kind: 'exec', exec: readExec(user) };
  return { kind: 'none' };
}

function readExec(user: KubeconfigEntry): ExecConfig {
  const { file } = user;
  const exec = user.value.exec;
  const at = `${user.at}.exec`;
  const bad = (key: string, value: unknown, fix: string): KubeconfigError =>
    new KubeconfigError(`${file}: ${at}.${key} is ${JSON.stringify(value)}; ${fix}.`);
  if (!isMapping(exec)) {
    throw new KubeconfigError(`${file}: ${at} is not a mapping of command, args, env, apiVersion.`);
  }
  const { command, apiVersion, args = [], env = [], installHint, provideClusterInfo } = exec;
  if (typeof command !== 'string' || command === '') {
    throw bad('command', command, 'give the credential plugin to run');
  }
  if (typeof apiVersion !== 'string' || !EXEC_API_VERSIONS.includes(apiVersion)) {
    throw bad(
      'apiVersion',
      apiVersion,
      `it must be one of ${EXEC_API_VERSIONS.join(', ')} (aws eks update-kubeconfig writes v1beta1)`,
    );
  }
  if (exec.interactiveMode === 'Always') {
    throw bad(
      'interactiveMode',
      'Always',
      'ship runs credential plugins without a terminal; set IfAvailable or Never (and log in first)',
    );
  }
  // Not quoted: arguments and environment values may hold secrets.
  if (!Array.isArray(args) || !args.every((a) => typeof a === 'string')) {
    throw new KubeconfigError(`${file}: ${at}.args is not a list of strings; fix it.`);
  }
  if (
    !Array.isArray(env) ||
    !env.every((e) => isMapping(e) && typeof e.name === 'string' && typeof e.value === 'string')
  ) {
    throw new KubeconfigError(
      `${file}: ${at}.env is not a list of {name: <string>, value: <string>}; fix it.`,
    );
  }
  return {
    // kubectl's rule: a command with a path separator is a path relative to the kubeconfig.
    command: command.includes('/') ? path.resolve(path.dirname(file), command) : command,
    args,
    env: (env as Mapping[]).map((e) => ({ name: e.name as string, value: e.value as string })),
    apiVersion,
    installHint: typeof installHint === 'string' && installHint !== '' ? installHint : undefined,
    provideClusterInfo: provideClusterInfo === true,
    at: `${file}: ${at}`,
  };
}

/** `<key>-data` (base64 PEM; it wins, as in kubectl) or `<key>` (a file, relative to the kubeconfig). */
function readPem(entry: KubeconfigEntry, key: string, kind: string): string | undefined {
  const { value, file, at } = entry;
  const marker = new RegExp(`-----BEGIN [A-Z ]*${kind}-----`);
  const data = value[`${key}-data`];
  if (isSet(data)) {
    const pem = typeof data === 'string' ? Buffer.from(data, 'base64').toString('utf8') : '';
    if (!marker.test(pem)) {
      throw new KubeconfigError(
        `${file}: ${at}.${key}-data is not base64 of a PEM ${kind.toLowerCase()} (no "-----BEGIN ` +
          `${kind}-----" once decoded); put base64 -w0 <file.pem> there, or the file's path in ${key}.`,
      );
    }
    return pem;
  }
  const relative = value[key];
  if (!isSet(relative)) return undefined;
  if (typeof relative !== 'string') {
    throw new KubeconfigError(
      `${file}: ${at}.${key} is ${JSON.stringify(relative)}, not a file path; fix it.`,
    );
  }
  const resolved = path.resolve(path.dirname(file), relative);
  let pem: string;
  try {
    pem = readFileSync(resolved, 'utf8');
  } catch (error) {
    throw new KubeconfigError(
      `${file}: ${at}.${key} is ${resolved}, which cannot be read (${errorCode(error)}); fix the ` +
        `path (relative paths are relative to the kubeconfig's folder).`,
    );
  }
  if (!marker.test(pem)) {
    throw new KubeconfigError(
      `${file}: ${at}.${key} is ${resolved}, which is not a PEM ${kind.toLowerCase()} (no ` +
        `"-----BEGIN ${kind}-----"); point it at the PEM file.`,
    );
  }
  return pem;
}

// ---- connecting ----

/** How requests through a kubeconfig are authenticated. */
export type CredentialSource =
  | 'token'
  | 'token-file'
  | 'client-certificate'
  /** The exec plugin is run (and its token cached until it expires). */
  | 'exec'
  /** The user's `aws eks get-token` is signed here, by core/aws/eks-token.ts, and not run. */
  | 'aws-eks-in-process'
  | 'none';

/** What signing `aws eks get-token` in-process needs, as far as the kubeconfig and env say. */
export interface AwsEksGetToken {
  readonly clusterName: string;
  /** undefined: the profile's region, as the AWS CLI would read it. */
  readonly region: string | undefined;
  readonly profile: string | undefined;
}

const IN_PROCESS_FLAGS = new Set(['--cluster-name', '--region', '--profile']);
const IN_PROCESS_ENV = new Set(['AWS_PROFILE', 'AWS_REGION', 'AWS_DEFAULT_REGION']);

/**
 * The exec plugin read as `aws eks get-token --cluster-name <name>` with at most `--region` and
 * `--profile` (each `--flag value`, once) and exec env entries among AWS_PROFILE, AWS_REGION and
 * AWS_DEFAULT_REGION; undefined for anything else (and where the AWS CLI and the SDK would pick
 * different credentials), which must be run as written.
 */
export function awsEksGetToken(
  exec: ExecConfig,
  env: NodeJS.ProcessEnv,
): AwsEksGetToken | undefined {
  const [service, operation, ...rest] = exec.args;
  if (path.basename(exec.command) !== 'aws' || service !== 'eks' || operation !== 'get-token') {
    return undefined;
  }
  const flags = new Map<string, string>();
  for (let i = 0; i < rest.length; i += 2) {
    const flag = rest[i]!;
    const value = rest[i + 1];
    if (!IN_PROCESS_FLAGS.has(flag) || flags.has(flag) || value === undefined) return undefined;
    if (value.startsWith('-') || value === '') return undefined;
    flags.set(flag, value);
  }
  if (!exec.env.every((e) => IN_PROCESS_ENV.has(e.name))) return undefined;
  const clusterName = flags.get('--cluster-name');
  if (clusterName === undefined) return undefined;
  const merged = { ...env, ...Object.fromEntries(exec.env.map((e) => [e.name, e.value])) };
  const nonEmpty = (value: string | undefined): string | undefined =>
    value === '' ? undefined : value;
  // Keys and AWS_PROFILE both in the environment: the AWS CLI signs with the keys, the SDK with
  // the profile. Only the CLI can do what the CLI does.
  if (
    !flags.has('--profile') &&
    nonEmpty(merged.AWS_PROFILE) !== undefined &&
    nonEmpty(merged.AWS_ACCESS_KEY_ID) !== undefined
  ) {
    return undefined;
  }
  return {
    clusterName,
    // The AWS CLI v2's order: the flag, AWS_REGION, AWS_DEFAULT_REGION, then the profile's region.
    region:
      flags.get('--region') ?? nonEmpty(merged.AWS_REGION) ?? nonEmpty(merged.AWS_DEFAULT_REGION),
    profile: flags.get('--profile') ?? nonEmpty(merged.AWS_PROFILE),
  };
}

export interface KubeconfigConnectorOptions {
  /**
   * The environment exec plugins run in (kubectl gives them its own), and where AWS_PROFILE and
   * AWS_REGION are read for in-process signing (whose credentials the AWS SDK resolves from this
   * process, as for every other AWS call of ship).
   */
  readonly env: NodeJS.ProcessEnv;
  /** @default 'dockercoins-deployer' */
  readonly fieldManager?: string;
  /** @default 'dockercoins-deployer' */
  readonly userAgent?: string;
  /** What 401 and 403 messages say to fix. @default - check the kubeconfig user with kubectl auth */
  readonly accessHint?: { readonly unauthorized: string; readonly forbidden: string };
  /** Per request to the API server. @default 5000 */
  readonly timeoutMs?: number;
}

export interface KubeconfigConnector {
  /** How requests are authenticated (decided when the connector is made). */
  readonly credentialSource: CredentialSource;
  /** The context's client, made on first use. */
  connect(): Promise<HttpsKubeClient>;
  /** Closes the kept-alive connections. */
  close(): void;
}

interface Tokens {
  readonly token: () => Promise<string>;
  readonly invalidate?: () => void;
  readonly close?: () => void;
}

/** The cluster of a resolved context, through createKubeClient with its user's credentials. */
export function kubeconfigConnector(
  resolved: ResolvedContext,
  options: KubeconfigConnectorOptions,
): KubeconfigConnector {
  const { auth, contextName } = resolved;
  let credentialSource: CredentialSource = auth.kind;
  let tokens: Tokens | undefined;
  if (auth.kind === 'token') tokens = { token: () => Promise.resolve(auth.token) };
  else if (auth.kind === 'token-file') tokens = { token: () => readTokenFile(auth.tokenFile) };
  else if (auth.kind === 'exec') {
    const eks = awsEksGetToken(auth.exec, options.env);
    if (eks === undefined) tokens = execTokens(auth.exec, resolved, options.env);
    else {
      credentialSource = 'aws-eks-in-process';
      tokens = inProcessEksTokens(eks);
    }
  }
  const who = `kubeconfig user "${resolved.userName ?? '(none)'}"`;
  let client: HttpsKubeClient | undefined;
  return {
    credentialSource,
    connect() {
      client ??= createKubeClient({
        endpoint: resolved.server,
        caPem: resolved.caPem,
        ...(tokens === undefined ? {} : { token: tokens.token }),
        ...(tokens?.invalidate === undefined ? {} : { invalidateToken: tokens.invalidate }),
        ...(auth.kind === 'client-certificate'
          ? { clientCertificate: { certPem: auth.certPem, keyPem: auth.keyPem } }
          : {}),
        clusterLabel: `context "${contextName}" (${resolved.server})`,
        certificateHint:
          resolved.caPem === undefined
            ? `the kubeconfig gives no CA for context "${contextName}": add the cluster's CA as ` +
              'certificate-authority-data (base64 of the PEM) or certificate-authority (a PEM file).'
            : `if the cluster's CA changed, update the kubeconfig of context "${contextName}" ` +
              '(on EKS: aws eks update-kubeconfig).',
        accessHint: options.accessHint ?? {
          unauthorized:
            `The cluster does not accept the credentials of ${who}; check them with ` +
            `kubectl --context ${contextName} auth whoami.`,
          forbidden:
            `RBAC does not allow this to ${who}; see kubectl --context ${contextName} auth can-i ` +
            '--list, and ask for a Role that allows it.',
        },
        ...(options.fieldManager === undefined ? {} : { fieldManager: options.fieldManager }),
        ...(options.userAgent === undefined ? {} : { userAgent: options.userAgent }),
        ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
      });
      return Promise.resolve(client);
    },
    close() {
      client?.close();
      tokens?.close?.();
    },
  };
}

async function readTokenFile(tokenFile: string): Promise<string> {
  let token: string;
  try {
    token = (await readFile(tokenFile, 'utf8')).trim();
  } catch (error) {
    throw new KubeCredentialError(
      `the kubeconfig's tokenFile ${tokenFile} cannot be read (${errorCode(error)}); fix the path ` +
        'or the file.',
    );
  }
  if (token === '') {
    throw new KubeCredentialError(
      `the kubeconfig's tokenFile ${tokenFile} is empty; write the bearer token into it.`,
    );
  }
  return token;
}

/** Runs the plugin when there is no token or it expired; one run at a time; forgets it on 401. */
function execTokens(exec: ExecConfig, resolved: ResolvedContext, env: NodeJS.ProcessEnv): Tokens {
  let cached: { token: string; expiresAt: number } | undefined;
  let running: Promise<{ token: string; expiresAt: number }> | undefined;
  return {
    async token() {
      if (cached !== undefined && Date.now() < cached.expiresAt) return cached.token;
      running ??= runExec(exec, resolved, env).finally(() => {
        running = undefined;
      });
      cached = await running;
      return cached.token;
    },
    invalidate() {
      cached = undefined;
    },
  };
}

/** Runs an exec credential plugin as kubectl does (no shell) and reads its ExecCredential. */
async function runExec(
  exec: ExecConfig,
  resolved: ResolvedContext,
  env: NodeJS.ProcessEnv,
): Promise<{ token: string; expiresAt: number }> {
  const shown = `\`${redactCommandLine(exec.command, exec.args)}\` (${exec.at})`;
  const secrets = secretValues(exec.args);
  const info = {
    apiVersion: exec.apiVersion,
    kind: 'ExecCredential',
    spec: {
      interactive: false,
      ...(exec.provideClusterInfo
        ? {
            cluster: {
              server: resolved.server,
              ...(resolved.caPem === undefined
                ? {}
                : { 'certificate-authority-data': Buffer.from(resolved.caPem).toString('base64') }),
            },
          }
        : {}),
    },
  };
  const childEnv = {
    ...env,
    ...Object.fromEntries(exec.env.map((e) => [e.name, e.value])),
    KUBERNETES_EXEC_INFO: JSON.stringify(info),
  };
  const stdout = await new Promise<string>((resolve, reject) => {
    const child = execFile(
      exec.command,
      [...exec.args],
      { env: childEnv, timeout: EXEC_TIMEOUT_MS, maxBuffer: 1024 * 1024 },
      (error, out, stderr) => {
        if (error === null) {
          resolve(out);
          return;
        }
        const e = error as NodeJS.ErrnoException & { killed?: boolean };
        const said = secrets
          .reduce((text, secret) => text.split(secret).join(REDACTED), stderr)
          .trim()
          .slice(-1000);
        reject(
          new KubeCredentialError(
            e.code === 'ENOENT'
              ? `the credential plugin ${shown} is not installed (or not on PATH): ` +
                  (exec.installHint ?? "install it, or fix the kubeconfig user's exec.command.")
              : e.killed === true
                ? `the credential plugin ${shown} did not finish within ${EXEC_TIMEOUT_MS / 1000} s ` +
                  '(waiting for a login?); run it by hand, log in, and try again.'
                : `the credential plugin ${shown} failed (${e.code === undefined ? e.message : `exit ${e.code}`})` +
                  `${said === '' ? '' : `: ${said}`}. Fix what it says (run it by hand to see more).`,
          ),
        );
      },
    );
    // Not interactive: the plugin reads nothing from us (a login prompt fails instead of hanging).
    child.stdin?.end();
  });
  return parseExecCredential(stdout, exec, shown);
}

function parseExecCredential(
  stdout: string,
  exec: ExecConfig,
  shown: string,
): { token: string; expiresAt: number } {
  let credential: unknown;
  try {
    credential = JSON.parse(stdout);
  } catch {
    throw new KubeCredentialError(
      `the credential plugin ${shown} printed ${stdout.length} bytes that are not JSON (starting ` +
        `${JSON.stringify(stdout.slice(0, 40))}), not an ExecCredential; a plugin must print only ` +
        'its ExecCredential on stdout (check its output options).',
    );
  }
  const c = isMapping(credential) ? credential : {};
  if (c.kind !== 'ExecCredential' || c.apiVersion !== exec.apiVersion) {
    throw new KubeCredentialError(
      `the credential plugin ${shown} printed a ${String(c.kind)} of ${String(c.apiVersion)}, not ` +
        `the ExecCredential of ${exec.apiVersion} its exec.apiVersion asks for (kubectl refuses ` +
        'it too); set exec.apiVersion to what the plugin prints, or update the plugin.',
    );
  }
  const status = isMapping(c.status) ? c.status : {};
  if (typeof status.token !== 'string' || status.token === '') {
    throw new KubeCredentialError(
      `the credential plugin ${shown} printed an ExecCredential without status.token` +
        (status.clientCertificateData === undefined
          ? ''
          : ' (a client certificate instead, which ship does not take from plugins)') +
        '; use a plugin that gives a token, or a client certificate in the kubeconfig itself.',
    );
  }
  const expiry = status.expirationTimestamp;
  if (expiry === undefined || expiry === null) {
    return { token: status.token, expiresAt: Number.POSITIVE_INFINITY };
  }
  const expiresAt = typeof expiry === 'string' ? Date.parse(expiry) : NaN;
  if (Number.isNaN(expiresAt)) {
    throw new KubeCredentialError(
      `the credential plugin ${shown} printed status.expirationTimestamp ${JSON.stringify(expiry)}, ` +
        'which is not an RFC 3339 time; fix or update the plugin.',
    );
  }
  return { token: status.token, expiresAt };
}

/** `aws eks get-token`, signed here with the SDK's credentials: the deployer's code and cache. */
function inProcessEksTokens(eks: AwsEksGetToken): Tokens {
  const client = new EKSClient({
    ...(eks.region === undefined ? {} : { region: eks.region }),
    ...(eks.profile === undefined ? {} : { profile: eks.profile }),
  });
  const shown =
    `aws eks get-token --cluster-name ${eks.clusterName} (signed in-process` +
    `${eks.profile === undefined ? '' : `, profile ${eks.profile}`})`;
  const cache = createTokenCache();
  let region = eks.region;
  const key = (r: string): TokenKey => ({ clusterName: eks.clusterName, region: r });
  const profileRegion = async (): Promise<string> => {
    try {
      return await client.config.region();
    } catch (error) {
      throw new KubeCredentialError(
        `${shown}: no AWS region (${(error as Error).message}); add --region <region> to the ` +
          "kubeconfig user's exec args, or set AWS_REGION.",
      );
    }
  };
  const credentials = async () => {
    try {
      return await client.config.credentials();
    } catch (error) {
      throw new KubeCredentialError(
        `${shown}: no AWS credentials (${(error as Error).message}); set them up as for the AWS ` +
          'CLI (aws configure, aws sso login, AWS_PROFILE).',
      );
    }
  };
  return {
    async token() {
      region ??= await profileRegion();
      return cache.get(key(region), credentials);
    },
    invalidate() {
      if (region !== undefined) cache.invalidate(key(region));
    },
    close() {
      client.destroy();
    },
  };
}

function isMapping(value: unknown): value is Mapping {
  return value !== null && typeof value === 'object' && !Array.isArray(value);
}

function stringAt(entry: KubeconfigEntry, key: string): string {
  const value = entry.value[key];
  if (typeof value !== 'string') {
    // The value is not quoted: it may be a token.
    throw new KubeconfigError(
      `${entry.file}: ${entry.at}.${key} is a ${typeof value}, not a string; quote it.`,
    );
  }
  return value;
}

/** kubectl's "set": an empty string or null is as good as absent. */
function isSet(value: unknown): boolean {
  return value !== undefined && value !== null && value !== '';
}

function errorCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? (error as Error).message;
}
