/**
 * The in-cluster deployer's configuration file (the ConfigMap `ship-deployer-config`, key
 * `config.yaml`): read once at start, validated whole, turned into the core's DeployerSettings.
 * Every refusal is a {@link ConfigFileError} naming the key, the value and the fix.
 */
import { parseDocument } from 'yaml';
import type {
  DeployTarget,
  DeployerSettings,
  EnvironmentSettings,
  ServiceSettings,
} from '../lib/deployer-contract';
import { isGitRefName } from '../core/image-tags';
import { repositoryOf } from '../core/registry-events';

/** The name environments' clusters get in messages: the deployer deploys to its own cluster. */
export const IN_CLUSTER = 'in-cluster';

export type WebhookFormat = 'json' | 'slack';

export interface InclusterSettings {
  readonly registry: {
    /** Where the deployer reads the registry API, `http(s)://host[:port]`. */
    readonly url: string;
    /** `host[:port]` of `url`: the registry part of references read from it. */
    readonly host: string;
    /** The registry host in the image references the nodes pull. */
    readonly pullHost: string;
  };
  readonly repositoryPrefix: string;
  readonly releaseTagPattern: string;
  readonly verify: { readonly deadlineSeconds: number; readonly pollSeconds: number };
  readonly rollback: boolean;
  /** 0: no reconcile loop. */
  readonly reconcileSeconds: number;
  readonly webhook: { readonly format: WebhookFormat } | undefined;
  /** What core/plan.ts and core/apply.ts decide with. */
  readonly deployer: DeployerSettings;
}

export class ConfigFileError extends Error {
  constructor(
    /** The key at fault, e.g. `environments[1].branches`. */
    readonly key: string,
    message: string,
  ) {
    super(message);
    this.name = 'ConfigFileError';
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_SUBDOMAIN =
  /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const HOST_PORT = /^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9a-fA-F:]+\](:[0-9]{1,5})?$/;
const REPOSITORY_PREFIX =
  /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;
const RELEASE_PATTERN = /^[0-9A-Za-z._*-]+$/;
const TOP_KEYS = [
  'registry',
  'repositoryPrefix',
  'releaseTagPattern',
  'services',
  'environments',
  'verify',
  'rollback',
  'reconcileSeconds',
  'webhook',
];
const SAMPLE = 'See docs/incluster.md, "Configuration file", for every key and an example.';

type Json = unknown;

const isObject = (value: Json): value is Record<string, Json> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

function show(value: Json): string {
  if (value === undefined) return 'missing';
  const text = (JSON.stringify(value) as string | undefined) ?? typeof value;
  return text.length > 120 ? `${text.slice(0, 117)}...` : text;
}

function fail(key: string, value: Json, expected: string): never {
  throw new ConfigFileError(key, `${key}: ${show(value)} is not ${expected}. ${SAMPLE}`);
}

function onlyKeys(key: string, object: Record<string, Json>, allowed: readonly string[]): void {
  for (const name of Object.keys(object)) {
    if (!allowed.includes(name)) {
      throw new ConfigFileError(
        key === '' ? name : `${key}.${name}`,
        `${key === '' ? name : `${key}.${name}`}: unknown key (a typo?); the keys here are ${allowed.join(', ')}. ${SAMPLE}`,
      );
    }
  }
}

function seconds(
  key: string,
  value: Json,
  fallback: number,
  min: number,
  max: number,
  expected: string,
): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    fail(key, value, expected);
  }
  return value;
}

/** Parses and validates the file's text; `source` names it in messages. */
export function parseConfigFile(text: string, source = 'config.yaml'): InclusterSettings {
  const document = parseDocument(text);
  if (document.errors.length > 0) {
    const first = document.errors[0]!;
    throw new ConfigFileError(
      '(file)',
      `${source} is not valid YAML: ${first.message.split('\n')[0]}. Fix the file (the ConfigMap ship-deployer-config, key config.yaml).`,
    );
  }
  return validateConfig(document.toJS() as Json);
}

/** Validates the parsed file. */
export function validateConfig(root: Json): InclusterSettings {
  if (!isObject(root)) fail('(file)', root, `a mapping with the keys ${TOP_KEYS.join(', ')}`);
  onlyKeys('', root, TOP_KEYS);

  const registry = root.registry;
  if (!isObject(registry)) {
    fail('registry', registry, 'a mapping { url: http(s)://host[:port], pullHost: host[:port] }');
  }
  onlyKeys('registry', registry, ['url', 'pullHost']);
  const urlText = registry.url;
  let url: URL | undefined;
  try {
    url = typeof urlText === 'string' ? new URL(urlText) : undefined;
  } catch {
    url = undefined;
  }
  if (
    url === undefined ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    (url.pathname !== '/' && url.pathname !== '') ||
    url.search !== '' ||
    url.username !== ''
  ) {
    fail(
      'registry.url',
      urlText,
      'the registry API\'s base URL, http(s)://host[:port] without a path, e.g. "http://registry.registry.svc.cluster.local:5000"',
    );
  }
  const pullHost = registry.pullHost;
  if (typeof pullHost !== 'string' || !HOST_PORT.test(pullHost)) {
    fail(
      'registry.pullHost',
      pullHost,
      'the registry host[:port] the nodes pull from (no scheme, no path), e.g. "127.0.0.1:30500"',
    );
  }

  const prefixValue = root.repositoryPrefix ?? '';
  if (
    typeof prefixValue !== 'string' ||
    (prefixValue !== '' && !REPOSITORY_PREFIX.test(prefixValue))
  ) {
    fail(
      'repositoryPrefix',
      prefixValue,
      'a repository path prefix (lowercase letters and digits separated by ".", "_", "-" or "/"), or "" for none',
    );
  }
  const repositoryPrefix = prefixValue;

  const pattern = root.releaseTagPattern ?? 'v*';
  if (typeof pattern !== 'string' || !RELEASE_PATTERN.test(pattern) || /^\*+$/.test(pattern)) {
    fail(
      'releaseTagPattern',
      pattern,
      'a glob of [0-9A-Za-z._-] and "*" that does not match every tag, e.g. "v*"',
    );
  }

  const services = readServices(root.services, repositoryPrefix);
  const environments = readEnvironments(root.environments);

  const verify = root.verify ?? {};
  if (!isObject(verify)) fail('verify', verify, 'a mapping { deadlineSeconds, pollSeconds }');
  onlyKeys('verify', verify, ['deadlineSeconds', 'pollSeconds']);
  const deadlineSeconds = seconds(
    'verify.deadlineSeconds',
    verify.deadlineSeconds,
    180,
    1,
    3600,
    'a number of seconds from 1 to 3600 (how long a rollout may take before it fails verification)',
  );
  const pollSeconds = seconds(
    'verify.pollSeconds',
    verify.pollSeconds,
    5,
    0.05,
    300,
    'a number of seconds from 0.05 to 300 (how often a rollout is checked)',
  );
  if (pollSeconds > deadlineSeconds) {
    fail('verify.pollSeconds', pollSeconds, `at most verify.deadlineSeconds (${deadlineSeconds})`);
  }

  const rollback = root.rollback ?? true;
  if (typeof rollback !== 'boolean') fail('rollback', rollback, 'true or false');

  const reconcileSeconds = seconds(
    'reconcileSeconds',
    root.reconcileSeconds,
    60,
    0,
    86_400,
    'a number of seconds from 0 (no reconcile loop) to 86400 (how often the registry is compared with the cluster)',
  );
  if (reconcileSeconds > 0 && reconcileSeconds < 1) {
    fail('reconcileSeconds', reconcileSeconds, '0 (off) or at least 1 second');
  }

  let webhook: InclusterSettings['webhook'];
  if (root.webhook !== undefined && root.webhook !== null) {
    if (!isObject(root.webhook))
      fail('webhook', root.webhook, 'a mapping { format: json | slack }');
    onlyKeys('webhook', root.webhook, ['format']);
    const format = root.webhook.format ?? 'json';
    if (format !== 'json' && format !== 'slack') {
      fail('webhook.format', format, '"json" (the notification as JSON) or "slack" ({"text": …})');
    }
    webhook = { format };
  }

  return {
    registry: { url: url.origin, host: url.host, pullHost },
    repositoryPrefix,
    releaseTagPattern: pattern,
    verify: { deadlineSeconds, pollSeconds },
    rollback,
    reconcileSeconds,
    webhook,
    deployer: {
      registry: pullHost,
      releaseTagPattern: pattern,
      services,
      environments,
      // The in-cluster deployer reports to its webhook, not to SNS.
      topicArn: '',
    },
  };
}

function readServices(value: Json, repositoryPrefix: string): ServiceSettings[] {
  if (!Array.isArray(value) || value.length === 0) {
    fail(
      'services',
      value,
      'a non-empty list of { service, targets? }, e.g. [{ service: hasher }]',
    );
  }
  const services: ServiceSettings[] = [];
  const claimed = new Map<string, string>();
  value.forEach((entry: Json, index) => {
    const at = `services[${index}]`;
    if (!isObject(entry)) fail(at, entry, 'a mapping { service, targets? }');
    onlyKeys(at, entry, ['service', 'targets']);
    const service = entry.service;
    if (typeof service !== 'string' || !DNS_LABEL.test(service)) {
      fail(`${at}.service`, service, 'a service name: a DNS label such as "hasher"');
    }
    if (services.some((s) => s.service === service)) {
      fail(`${at}.service`, service, 'a service listed once (it is listed twice)');
    }
    const targets: DeployTarget[] = [];
    const written = entry.targets ?? [{ deployment: service, container: service }];
    if (!Array.isArray(written) || written.length === 0) {
      fail(
        `${at}.targets`,
        written,
        'a non-empty list of { deployment, container }, or no key (a Deployment and container named as the service)',
      );
    }
    written.forEach((target: Json, t) => {
      const where = `${at}.targets[${t}]`;
      if (!isObject(target)) fail(where, target, 'a mapping { deployment, container }');
      onlyKeys(where, target, ['deployment', 'container']);
      const deployment = target.deployment ?? service;
      const container = target.container ?? service;
      if (typeof deployment !== 'string' || !DNS_SUBDOMAIN.test(deployment)) {
        fail(`${where}.deployment`, deployment, 'a Deployment name (DNS subdomain)');
      }
      if (typeof container !== 'string' || !DNS_LABEL.test(container)) {
        fail(`${where}.container`, container, 'a container name (DNS label)');
      }
      const key = `${deployment}/${container}`;
      const owner = claimed.get(key);
      if (owner !== undefined) {
        fail(where, key, `a container of its own (service "${owner}" already deploys to ${key})`);
      }
      claimed.set(key, service);
      targets.push({ deployment, container });
    });
    // The build project is the image's label (io.dockercoins.ship.build-project), not settings:
    // `project` is read only by the Lambda's event parser.
    services.push({
      service,
      project: '',
      repository: repositoryOf(service, repositoryPrefix),
      targets,
    });
  });
  return services;
}

function readEnvironments(value: Json): EnvironmentSettings[] {
  if (!Array.isArray(value) || value.length === 0) {
    fail(
      'environments',
      value,
      'a non-empty list of { name, namespace, branches?, releaseTags? }, e.g. [{ name: staging, namespace: dockercoins-staging, branches: [main] }]',
    );
  }
  const environments: EnvironmentSettings[] = [];
  value.forEach((entry: Json, index) => {
    const at = `environments[${index}]`;
    if (!isObject(entry)) fail(at, entry, 'a mapping { name, namespace, branches?, releaseTags? }');
    onlyKeys(at, entry, ['name', 'namespace', 'branches', 'releaseTags']);
    const name = entry.name;
    if (typeof name !== 'string' || !DNS_LABEL.test(name)) {
      fail(`${at}.name`, name, 'an environment name: a DNS label such as "staging"');
    }
    if (environments.some((e) => e.name === name)) {
      fail(`${at}.name`, name, 'a unique environment name (two environments have it)');
    }
    const namespace = entry.namespace;
    if (typeof namespace !== 'string' || !DNS_LABEL.test(namespace)) {
      fail(`${at}.namespace`, namespace, 'a namespace: a DNS label such as "dockercoins"');
    }
    const other = environments.find((e) => e.namespace === namespace);
    if (other !== undefined) {
      fail(
        `${at}.namespace`,
        namespace,
        `a namespace of its own (environment "${other.name}" has it; one namespace is one environment, which may list several branches and releaseTags)`,
      );
    }
    const branchList = entry.branches ?? [];
    if (!Array.isArray(branchList))
      fail(`${at}.branches`, branchList, 'a list of branch names, e.g. [main]');
    const branches: string[] = [];
    for (const branch of branchList as Json[]) {
      if (typeof branch !== 'string' || !isGitRefName(branch) || branch.startsWith('refs/')) {
        fail(
          `${at}.branches`,
          branch,
          'an exact git branch name such as "main" (no pattern, no "refs/")',
        );
      }
      if (branches.includes(branch)) fail(`${at}.branches`, branch, 'a branch listed once');
      branches.push(branch);
    }
    const releaseTags = entry.releaseTags ?? false;
    if (typeof releaseTags !== 'boolean') fail(`${at}.releaseTags`, releaseTags, 'true or false');
    if (branches.length === 0 && !releaseTags) {
      throw new ConfigFileError(
        at,
        `${at}: environment "${name}" has no branches and no releaseTags, so nothing would ever deploy to it; ` +
          `give it branches or releaseTags: true, or remove it. ${SAMPLE}`,
      );
    }
    environments.push({
      name,
      clusterName: IN_CLUSTER,
      region: undefined,
      namespace,
      branches,
      releaseTags,
    });
  });
  return environments;
}
