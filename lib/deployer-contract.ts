/**
 * The contract between the deployer construct (lib/constructs/deployer.ts), the deployer Lambda
 * (lambda/deployer/) and the `ship` CLI: the Lambda's environment variables, the settings they
 * carry, and the annotations written on every Deployment we patch. Names live here once.
 *
 * Pure: no CDK, no SDK, no I/O, so the Lambda bundle and the CLI import it as they are.
 */
import { DNS_LABEL, DNS_SUBDOMAIN, isBranchName } from './config';

/**
 * Environment variables of the deployer Lambda. Lambda caps all variables of a function at
 * 4 KB together, so the service list is a compact string (see {@link formatServices}).
 */
export const DEPLOYER_ENV = {
  /**
   * The ECR registry host images must come from, `<account>.dkr.ecr.<region>.amazonaws.com`.
   * An event naming another registry is refused.
   */
  registry: 'SHIP_REGISTRY',
  /** Prefix of every repository name, e.g. `dockercoins` for `dockercoins/hasher`. */
  repositoryPrefix: 'SHIP_REPOSITORY_PREFIX',
  /** Prefix of every CodeBuild project name, e.g. `DockerCoins` for `DockerCoins-hasher`. */
  projectPrefix: 'SHIP_PROJECT_PREFIX',
  /**
   * The services and the Deployments and containers that run them:
   * `hasher,rng,webui=web/webui,worker`. `service=deployment/container` where they differ from
   * the service name; `service=deployment` when only the Deployment does; several Deployments
   * of one service are separated by `+` (`webui=web/webui+web-canary/webui`).
   */
  services: 'SHIP_SERVICES',
  /**
   * JSON array of {@link EnvironmentSettings}: `{"name","clusterName","namespace"}` and, when
   * they are not the defaults, `"region"` (default: the Lambda's region), `"branches"` (default
   * none) and `"releaseTags": true` (default false).
   */
  environments: 'SHIP_ENVIRONMENTS',
  /** Glob (only `*` is special) of git tags that are releases, e.g. `v*`. */
  releaseTagPattern: 'SHIP_RELEASE_TAG_PATTERN',
  /** ARN of the SNS topic every outcome is published to. */
  topicArn: 'SHIP_TOPIC_ARN',
} as const;

/**
 * The deployer's CloudWatch metrics (Powertools, embedded metric format). Every metric carries
 * the one dimension `service` = {@link DEPLOYER_METRICS.serviceName}, so an alarm names it exactly;
 * per-environment and per-reason breakdowns are separate single metrics with more dimensions.
 */
export const DEPLOYER_METRICS = {
  namespace: 'DockerCoins/Deploy',
  /** POWERTOOLS_SERVICE_NAME, also the `service` dimension of every metric. */
  serviceName: 'dockercoins-deployer',
  /** Count: Deployments patched. */
  deployed: 'Deployed',
  /** Count: Deployments (or whole builds) left alone; breakdown by dimension `reason`. */
  skipped: 'Skipped',
  /** Count: Deployments not deployed because of an error (permanent or, after retries, transient). */
  failed: 'Failed',
  /** Count: events refused as invalid (never retried). */
  invalidEvents: 'InvalidEvents',
  /** Milliseconds from the build's end (event time) to the PATCH accepted. */
  deployLatency: 'DeployLatency',
} as const;

/** Lambda's limit on the total size of a function's environment variables, in bytes. */
export const LAMBDA_ENVIRONMENT_LIMIT_BYTES = 4096;

/** One Deployment and the container in it that runs a service. */
export interface DeployTarget {
  readonly deployment: string;
  readonly container: string;
}

/** A service we build, where its images live and what runs it. */
export interface ServiceSettings {
  /** e.g. `hasher`. */
  readonly service: string;
  /** The CodeBuild project that builds it, e.g. `DockerCoins-hasher`. */
  readonly project: string;
  /** The ECR repository name, e.g. `dockercoins/hasher`. */
  readonly repository: string;
  /** At least one. */
  readonly targets: readonly DeployTarget[];
}

/** Where builds of some refs deploy to. */
export interface EnvironmentSettings {
  /** A DNS label naming the environment in logs, metrics and messages, e.g. `staging`. */
  readonly name: string;
  /** The EKS cluster's name. */
  readonly clusterName: string;
  /** The cluster's region; `undefined` means the Lambda's own region. */
  readonly region: string | undefined;
  /** The namespace the Deployments live in. */
  readonly namespace: string;
  /** Pushes to these branches (exact names, e.g. `main`) deploy here. */
  readonly branches: readonly string[];
  /** Release tags (matching the release tag pattern) deploy here. */
  readonly releaseTags: boolean;
}

/** Everything the deployer knows besides the event, validated once at cold start. */
export interface DeployerSettings {
  readonly registry: string;
  readonly releaseTagPattern: string;
  readonly services: readonly ServiceSettings[];
  readonly environments: readonly EnvironmentSettings[];
  readonly topicArn: string;
}

/** A missing or malformed deployer environment variable. */
export class SettingsError extends Error {
  constructor(
    /** The environment variable at fault. */
    readonly variable: string,
    message: string,
  ) {
    super(message);
    this.name = 'SettingsError';
  }
}

/**
 * Annotations on every Deployment the deployer or `ship` patches, set in the same request as the
 * image. The Deployment controller copies a Deployment's annotations to the ReplicaSet it creates,
 * so each revision in the history keeps them too.
 */
export const ANNOTATION_PREFIX = 'ship.dockercoins.io';
export const ANNOTATIONS = {
  /** Read by `kubectl rollout history`: service, tag, short commit, build. */
  changeCause: 'kubernetes.io/change-cause',
  /** The 40-hex commit the running image was built from. */
  commit: `${ANNOTATION_PREFIX}/commit`,
  /** The tag deployed (a commit or release tag). */
  tag: `${ANNOTATION_PREFIX}/tag`,
  /** The manifest digest deployed, `sha256:…`. */
  digest: `${ANNOTATION_PREFIX}/digest`,
  /** The CodeBuild project that built it. */
  buildProject: `${ANNOTATION_PREFIX}/build-project`,
  /** The CodeBuild build number (decimal), which orders builds of one project. */
  buildNumber: `${ANNOTATION_PREFIX}/build-number`,
  /** The CodeBuild build ARN. */
  buildArn: `${ANNOTATION_PREFIX}/build-arn`,
  /** The git ref that triggered the build, e.g. `refs/heads/main`. */
  gitRef: `${ANNOTATION_PREFIX}/git-ref`,
  /** When the PATCH was sent, ISO 8601 UTC. */
  deployedAt: `${ANNOTATION_PREFIX}/deployed-at`,
  /** Who sent it: `deployer` (the Lambda) or `ship` (a person, with the CLI). */
  deployedBy: `${ANNOTATION_PREFIX}/deployed-by`,
  /**
   * `"true"`: automatic deploys of this Deployment are paused (`ship pause`, `ship rollback`);
   * the deployer skips it with reason `paused`. Absent or anything else: not paused.
   */
  paused: `${ANNOTATION_PREFIX}/paused`,
  /**
   * The verification of the image the Deployment runs (or rolled back to), JSON
   * ({@link VerificationRecord}): who verifies it (the Step Functions execution, or `ship:<user>`)
   * until when (its lease), and, once decided, the verdict and its reason. Written in the same
   * PATCH as the image, and by annotation-only PATCHes conditional on the resourceVersion read.
   */
  verification: `${ANNOTATION_PREFIX}/verification`,
  /** The last image verified Ready here, `repo:tag@sha256:…`: what a failed deploy rolls back to. */
  verifiedImage: `${ANNOTATION_PREFIX}/verified-image`,
  /** The build number (decimal) of the verified image. */
  verifiedBuild: `${ANNOTATION_PREFIX}/verified-build`,
  /** The 40-hex commit (or 12-hex commit tag) of the verified image. */
  verifiedCommit: `${ANNOTATION_PREFIX}/verified-commit`,
  /**
   * Digests that failed verification here, JSON array of {@link RejectedDigest}, newest first, at
   * most {@link MAX_REJECTED}: the deployer never deploys them again (skip `digest-rejected`);
   * `ship deploy` of the tag by a person does, and takes the digest off the list.
   */
  rejected: `${ANNOTATION_PREFIX}/rejected`,
  /** The image a rollback replaced (the failed one); the change-cause says why. */
  rolledBackFrom: `${ANNOTATION_PREFIX}/rolled-back-from`,
} as const;

/** How many rejected digests a Deployment keeps (the newest). */
export const MAX_REJECTED = 20;

/** What {@link ANNOTATIONS.verification} holds. */
export interface VerificationRecord {
  readonly state: 'verifying' | 'verified' | 'failed' | 'rolled-back' | 'superseded' | 'changed';
  /** The image verified (for `rolled-back`: the image rolled back to), `repo:tag@sha256:…`. */
  readonly image: string;
  readonly digest: string;
  /** The build number of the image, when known. */
  readonly build?: number;
  /** The Step Functions execution id (ARN), or `ship:<user>`. */
  readonly execution: string;
  /** The Deployment's generation after the PATCH that deployed the image. */
  readonly generation: number;
  /** When verification started (ISO 8601). */
  readonly since: string;
  /** Until when the execution owns the verification (ISO 8601); past it, another may take it. */
  readonly leaseUntil: string;
  /** One line: what was decided and why, or what is being verified. */
  readonly reason: string;
}

/** One entry of {@link ANNOTATIONS.rejected}. */
export interface RejectedDigest {
  readonly digest: string;
  readonly build?: number;
  readonly reason: string;
  /** ISO 8601. */
  readonly at: string;
}

// ---- the environment, written by the construct and read by the Lambda ----

/**
 * Bytes of the 4 KB left to the function's other variables (POWERTOOLS_*, NODE_OPTIONS and what
 * the Lambda L2 adds): {@link formatDeployerEnvironment} keeps its own within the rest.
 */
export const DEPLOYER_ENV_RESERVED_BYTES = 512;

/**
 * What an unresolved CDK token may become once CloudFormation resolves it, in characters, for the
 * size check at synth. The registry host is `<12 digits>.dkr.ecr-fips.<region>.<partition
 * suffix>`; an SNS topic ARN is at most `arn:<partition>:sns:<region>:<account>:` plus a 256
 * character name; any other token (a region) at most this.
 */
const RESOLVED_TOKEN_CHARS = {
  [DEPLOYER_ENV.registry]: 80,
  [DEPLOYER_ENV.topicArn]: 320,
  other: 64,
} as const;

/** How CDK writes an unresolved token into a string (`${Token[AWS.Region.12]}`). */
const CDK_TOKEN = /\$\{Token\[[^\]]*\]\}/g;

const isUnresolved = (value: string): boolean => value.search(CDK_TOKEN) >= 0;

/** `<account>.dkr.ecr[-fips].<region>.<partition's DNS suffix>` */
const REGISTRY_HOST =
  /^(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z]{2}(?:-[a-z]+)+-\d{1,2})\.((?:[a-z0-9-]+\.)+[a-z]{2,})$/;
const REGION = /^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/;
const TOPIC_ARN =
  /^arn:aws(?:-[a-z]+)*:sns:[a-z]{2}(?:-[a-z]+)+-\d{1,2}:\d{12}:[A-Za-z0-9_-]{1,256}(?:\.fifo)?$/;
/** ECR repository name, also the grammar of a repository prefix. */
const ECR_REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
/** CodeBuild project names start with a letter or digit; then letters, digits, `-` and `_`. */
const PROJECT_NAME = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;
const MAX_PROJECT_NAME = 255;
const MAX_REPOSITORY_NAME = 256;
const EKS_CLUSTER_NAME = /^[0-9A-Za-z][A-Za-z0-9_-]{0,99}$/;
/** What ECR accepts in a tag wildcard, and what image-tags.js's release pattern allows. */
const RELEASE_TAG_PATTERN = /^[0-9A-Za-z._*-]{1,128}$/;
const ENVIRONMENT_KEYS = ['name', 'clusterName', 'region', 'namespace', 'branches', 'releaseTags'];

/**
 * Every character a value shown in a message must not carry raw: C0 and C1 controls, DEL and the
 * two Unicode line separators (a log line must stay one line).
 */
// eslint-disable-next-line no-control-regex
export const CONTROL_CHARACTERS = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/;

/**
 * A value as messages show it: quoted, control characters escaped, cut after `max` characters
 * with the full length said.
 */
export function quoteValue(value: unknown, max = 120): string {
  if (typeof value === 'string') {
    const chars = [...value];
    const shown = chars.length > max ? chars.slice(0, max).join('') : value;
    const quoted = escapeControls(JSON.stringify(shown));
    return chars.length > max ? `${quoted}… (${chars.length} characters)` : quoted;
  }
  if (value === undefined || typeof value === 'function' || typeof value === 'symbol') {
    return value === undefined ? 'undefined' : typeof value;
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return String(value);
  }
  let text: string;
  try {
    text = JSON.stringify(value);
  } catch {
    text = Array.isArray(value) ? 'an array' : 'an object';
  }
  return escapeControls(
    text.length > max ? `${text.slice(0, max)}… (${text.length} characters)` : text,
  );
}

function escapeControls(text: string): string {
  return text.replace(
    new RegExp(CONTROL_CHARACTERS.source, 'g'),
    (char) => `\\u${char.charCodeAt(0).toString(16).padStart(4, '0')}`,
  );
}

/**
 * `SHIP_SERVICES` for these services: `service[=target[+target…]]`, `target` being
 * `deployment[/container]`. A service run by the Deployment and container of its own name is
 * its bare name; a container named like the service is left out. 100 services of 10 characters
 * take about 1.1 KB.
 */
export function formatServices(services: readonly ServiceSettings[]): string {
  return services
    .map(({ service, targets }) => {
      const only = targets.length === 1 ? targets[0] : undefined;
      if (only !== undefined && only.deployment === service && only.container === service) {
        return service;
      }
      const written = targets.map(({ deployment, container }) =>
        container === service ? deployment : `${deployment}/${container}`,
      );
      return `${service}=${written.join('+')}`;
    })
    .join(',');
}

/**
 * The deployer Lambda's environment variables for `settings`, validated as the Lambda will read
 * them (values that are unresolved CDK tokens, such as the account in the registry host or the
 * topic ARN, are checked once resolved, by the Lambda). Throws {@link SettingsError} when a value
 * is malformed, when the services' project and repository names do not follow
 * `<projectPrefix>-<service>` and `<repositoryPrefix>/<service>` (the variables carry only the
 * prefixes), or when the variables would not fit Lambda's 4 KB limit.
 */
export function formatDeployerEnvironment(settings: DeployerSettings): Record<string, string> {
  const [first] = settings.services;
  if (first === undefined) {
    throw new SettingsError(
      DEPLOYER_ENV.services,
      `${DEPLOYER_ENV.services}: no services; the deployer needs at least one service whose builds deploy.`,
    );
  }
  const projectPrefix = prefixOf(first.project, first.service, '-');
  const repositoryPrefix = prefixOf(first.repository, first.service, '/');
  for (const { service, project, repository, targets } of settings.services) {
    if (targets.length === 0) {
      throw new SettingsError(
        DEPLOYER_ENV.services,
        `${DEPLOYER_ENV.services}: service "${service}" has no Deployment to deploy to; give it at least one ` +
          '(deployment and container).',
      );
    }
    if (project !== `${projectPrefix}-${service}`) {
      throw new SettingsError(
        DEPLOYER_ENV.projectPrefix,
        `${DEPLOYER_ENV.projectPrefix}: service "${service}" is built by project ${quoteValue(project)}, but the ` +
          `variable carries one prefix for all projects ("${projectPrefix}", from service "${first.service}"), so ` +
          `it must be "${projectPrefix}-${service}". Name every project <prefix>-<service>, as the builds stack does.`,
      );
    }
    if (repository !== `${repositoryPrefix}/${service}`) {
      throw new SettingsError(
        DEPLOYER_ENV.repositoryPrefix,
        `${DEPLOYER_ENV.repositoryPrefix}: service "${service}" is pushed to repository ${quoteValue(repository)}, ` +
          `but the variable carries one prefix for all repositories ("${repositoryPrefix}", from service ` +
          `"${first.service}"), so it must be "${repositoryPrefix}/${service}". Name every repository ` +
          '<prefix>/<service>, as the registry stack does.',
      );
    }
  }
  const environment: Record<string, string> = {
    [DEPLOYER_ENV.registry]: settings.registry,
    [DEPLOYER_ENV.repositoryPrefix]: repositoryPrefix,
    [DEPLOYER_ENV.projectPrefix]: projectPrefix,
    [DEPLOYER_ENV.services]: formatServices(settings.services),
    [DEPLOYER_ENV.environments]: JSON.stringify(
      settings.environments.map((e) => ({
        name: e.name,
        clusterName: e.clusterName,
        ...(e.region === undefined ? {} : { region: e.region }),
        namespace: e.namespace,
        ...(e.branches.length === 0 ? {} : { branches: e.branches }),
        ...(e.releaseTags ? { releaseTags: true } : {}),
      })),
    ),
    [DEPLOYER_ENV.releaseTagPattern]: settings.releaseTagPattern,
    [DEPLOYER_ENV.topicArn]: settings.topicArn,
  };
  // The Lambda reads exactly this; what it would refuse is refused here, at synth.
  readSettings(environment, true);
  const bytes = environmentBytes(environment);
  const limit = LAMBDA_ENVIRONMENT_LIMIT_BYTES - DEPLOYER_ENV_RESERVED_BYTES;
  if (bytes > limit) {
    const sizes = Object.entries(environment)
      .map(([name, value]) => `${name} ${Buffer.byteLength(value)}`)
      .join(', ');
    throw new SettingsError(
      DEPLOYER_ENV.services,
      `The deployer's environment variables take ${bytes} bytes (${sizes}); Lambda allows ` +
        `${LAMBDA_ENVIRONMENT_LIMIT_BYTES} for all of a function's variables and ${DEPLOYER_ENV_RESERVED_BYTES} are ` +
        `kept for its others, so at most ${limit}. Use shorter service, Deployment and environment names, fewer ` +
        'environments, or split the services over two apps.',
    );
  }
  return environment;
}

function prefixOf(name: string, service: string, separator: '-' | '/'): string {
  const suffix = `${separator}${service}`;
  const variable = separator === '-' ? DEPLOYER_ENV.projectPrefix : DEPLOYER_ENV.repositoryPrefix;
  if (!name.endsWith(suffix) || name.length === suffix.length) {
    throw new SettingsError(
      variable,
      `${variable}: service "${service}" has the ${separator === '-' ? 'project' : 'repository'} name ` +
        `${quoteValue(name)}, which is not <prefix>${suffix}; the variable carries only the prefix. Name it so.`,
    );
  }
  return name.slice(0, -suffix.length);
}

/**
 * The size Lambda measures: the variables as one JSON object, in UTF-8. An unresolved token counts
 * as the longest value it can resolve to.
 */
function environmentBytes(environment: Readonly<Record<string, string>>): number {
  const sized = Object.fromEntries(
    Object.entries(environment).map(([name, value]) => {
      if (!isUnresolved(value)) return [name, value];
      const whole = (RESOLVED_TOKEN_CHARS as Record<string, number>)[name];
      return [
        name,
        whole !== undefined
          ? 'x'.repeat(whole)
          : value.replace(CDK_TOKEN, 'x'.repeat(RESOLVED_TOKEN_CHARS.other)),
      ];
    }),
  );
  return Buffer.byteLength(JSON.stringify(sized));
}

/**
 * Reads and validates the deployer's settings from its environment, once, at cold start. Throws
 * {@link SettingsError} naming the first variable at fault, its value and the expected form.
 */
export function parseDeployerSettings(
  env: Readonly<Record<string, string | undefined>>,
): DeployerSettings {
  return readSettings(env, false);
}

/** What the construct writes the variables from, for every message's fix. */
const WRITTEN_BY =
  'The Deployer construct (lib/constructs/deployer.ts) writes it from the app configuration: fix the ' +
  'configuration and deploy again.';

function readSettings(
  env: Readonly<Record<string, string | undefined>>,
  allowTokens: boolean,
): DeployerSettings {
  const read = (variable: string): string => {
    const value = env[variable];
    if (value === undefined || value === '') {
      throw new SettingsError(
        variable,
        `${variable} is ${value === undefined ? 'not set' : 'empty'}; the deployer cannot start without it. ${WRITTEN_BY}`,
      );
    }
    if (CONTROL_CHARACTERS.test(value)) {
      fail(variable, value, 'free of control characters and line breaks');
    }
    return value;
  };
  const token = (value: string): boolean => allowTokens && isUnresolved(value);

  const registry = read(DEPLOYER_ENV.registry);
  if (!token(registry) && !REGISTRY_HOST.test(registry)) {
    fail(
      DEPLOYER_ENV.registry,
      registry,
      'an ECR registry host, <account>.dkr.ecr.<region>.amazonaws.com (no scheme, no path)',
    );
  }

  const repositoryPrefix = read(DEPLOYER_ENV.repositoryPrefix);
  if (!ECR_REPOSITORY_NAME.test(repositoryPrefix)) {
    fail(
      DEPLOYER_ENV.repositoryPrefix,
      repositoryPrefix,
      'an ECR repository name prefix: lowercase letters and digits, separated by ".", "_", "-" or "/", e.g. "dockercoins"',
    );
  }
  const projectPrefix = read(DEPLOYER_ENV.projectPrefix);
  if (!PROJECT_NAME.test(projectPrefix)) {
    fail(
      DEPLOYER_ENV.projectPrefix,
      projectPrefix,
      'a CodeBuild project name prefix: a letter or digit, then letters, digits, "-" or "_", e.g. "DockerCoins"',
    );
  }

  const services = readServices(read(DEPLOYER_ENV.services), repositoryPrefix, projectPrefix);
  const environments = readEnvironments(read(DEPLOYER_ENV.environments), allowTokens);

  const releaseTagPattern = read(DEPLOYER_ENV.releaseTagPattern);
  if (!RELEASE_TAG_PATTERN.test(releaseTagPattern) || /^\*+$/.test(releaseTagPattern)) {
    fail(
      DEPLOYER_ENV.releaseTagPattern,
      releaseTagPattern,
      'a glob of [0-9A-Za-z._-] and "*" that does not match every tag, e.g. "v*"',
    );
  }

  const topicArn = read(DEPLOYER_ENV.topicArn);
  if (!token(topicArn) && !TOPIC_ARN.test(topicArn)) {
    fail(
      DEPLOYER_ENV.topicArn,
      topicArn,
      'an SNS topic ARN, arn:aws:sns:<region>:<account>:<topic name>',
    );
  }

  return { registry, releaseTagPattern, services, environments, topicArn };
}

function fail(variable: string, value: unknown, expected: string, context = ''): never {
  throw new SettingsError(
    variable,
    `${variable}${context}: ${quoteValue(value)} is not ${expected}. ${WRITTEN_BY}`,
  );
}

function readServices(
  text: string,
  repositoryPrefix: string,
  projectPrefix: string,
): ServiceSettings[] {
  const variable = DEPLOYER_ENV.services;
  const grammar =
    'an item service[=deployment[/container][+deployment[/container]…]] of a comma-separated list ' +
    'without spaces, e.g. "hasher,rng,webui=web/webui,worker"';
  const services: ServiceSettings[] = [];
  const claimed = new Map<string, string>();
  for (const item of text.split(',')) {
    const [service = '', targetList, extra] = item.split('=');
    if (extra !== undefined || service === '' || targetList === '') {
      fail(variable, item, grammar, ` in ${quoteValue(text)}`);
    }
    if (!DNS_LABEL.test(service)) {
      fail(
        variable,
        service,
        'a service name: a DNS label (lowercase letters, digits and "-", at most 63)',
        ` in ${quoteValue(text)}`,
      );
    }
    if (services.some((s) => s.service === service)) {
      throw new SettingsError(
        variable,
        `${variable}: service "${service}" is listed twice in ${quoteValue(text)}; list each service once, ` +
          `with all its Deployments after "=" separated by "+". ${WRITTEN_BY}`,
      );
    }
    const project = `${projectPrefix}-${service}`;
    const repository = `${repositoryPrefix}/${service}`;
    if (project.length > MAX_PROJECT_NAME || repository.length > MAX_REPOSITORY_NAME) {
      fail(
        variable,
        service,
        `a service name short enough for its project "${project}" (at most ${MAX_PROJECT_NAME} characters) and ` +
          `repository "${repository}" (at most ${MAX_REPOSITORY_NAME})`,
      );
    }
    const targets: DeployTarget[] = [];
    for (const written of targetList === undefined ? [service] : targetList.split('+')) {
      const [deployment = '', container = service, rest] = written.split('/');
      if (rest !== undefined || !DNS_SUBDOMAIN.test(deployment) || !DNS_LABEL.test(container)) {
        fail(
          variable,
          written,
          'deployment[/container]: a Deployment name (DNS subdomain) and optionally a container name (DNS label)',
          ` (service "${service}")`,
        );
      }
      const key = `${deployment}/${container}`;
      const owner = claimed.get(key);
      if (owner !== undefined) {
        throw new SettingsError(
          variable,
          `${variable}: container "${container}" of Deployment "${deployment}" is claimed by ` +
            `${owner === service ? `service "${service}" twice` : `services "${owner}" and "${service}"`}; ` +
            `each container runs one service, once. ${WRITTEN_BY}`,
        );
      }
      claimed.set(key, service);
      targets.push({ deployment, container });
    }
    services.push({ service, project, repository, targets });
  }
  return services;
}

function readEnvironments(text: string, allowTokens: boolean): EnvironmentSettings[] {
  const variable = DEPLOYER_ENV.environments;
  const grammar =
    'a JSON array of {"name", "clusterName", "namespace", "region"?, "branches"?, "releaseTags"?}, e.g. ' +
    '[{"name":"main","clusterName":"dockercoins","namespace":"dockercoins","branches":["main"]}]';
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    fail(variable, text, `${grammar} (${(error as Error).message})`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) fail(variable, text, grammar);
  const environments: EnvironmentSettings[] = [];
  const places = new Map<string, string>();
  for (const [index, entry] of (parsed as unknown[]).entries()) {
    const at = ` entry ${index}`;
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) {
      fail(variable, entry, grammar, at);
    }
    const object = entry as Record<string, unknown>;
    const unknown = Object.keys(object).filter((key) => !ENVIRONMENT_KEYS.includes(key));
    if (unknown.length > 0) {
      fail(
        variable,
        unknown.join(', '),
        `a key of an environment (${ENVIRONMENT_KEYS.join(', ')})`,
        at,
      );
    }
    const text = (key: string, pattern: RegExp, expected: string): string => {
      const value = object[key];
      if (typeof value !== 'string' || !pattern.test(value)) {
        fail(variable, value, expected, `${at} "${key}"`);
      }
      return value;
    };
    const name = text('name', DNS_LABEL, 'an environment name: a DNS label, e.g. "main"');
    const clusterName = text(
      'clusterName',
      EKS_CLUSTER_NAME,
      'an EKS cluster name: a letter or digit, then up to 99 letters, digits, "-" or "_"',
    );
    const namespace = text('namespace', DNS_LABEL, 'a namespace: a DNS label, e.g. "dockercoins"');
    let region: string | undefined;
    if (object.region !== undefined) {
      const value = object.region;
      if (
        typeof value !== 'string' ||
        !(REGION.test(value) || (allowTokens && isUnresolved(value)))
      ) {
        fail(
          variable,
          value,
          'an AWS region such as "eu-west-1", or no "region" for the Lambda\'s own',
          `${at} "region"`,
        );
      }
      region = value;
    }
    const branchList = object.branches ?? [];
    if (!Array.isArray(branchList))
      fail(variable, branchList, 'an array of branch names', `${at} "branches"`);
    const branches: string[] = [];
    for (const branch of branchList as unknown[]) {
      if (typeof branch !== 'string' || !isBranchName(branch)) {
        fail(
          variable,
          branch,
          'an exact git branch name such as "main" or "release/1.x" (letters, digits, "._/-"; no patterns, no "refs/")',
          `${at} "branches"`,
        );
      }
      if (branches.includes(branch))
        fail(variable, branch, 'a branch listed once', `${at} "branches"`);
      branches.push(branch);
    }
    const releaseTags = object.releaseTags ?? false;
    if (typeof releaseTags !== 'boolean')
      fail(variable, releaseTags, 'true or false', `${at} "releaseTags"`);
    if (branches.length === 0 && !releaseTags) {
      throw new SettingsError(
        variable,
        `${variable}: environment "${name}" has no branches and no releaseTags, so nothing would ever deploy to ` +
          `it. Give it branches or "releaseTags": true, or remove it. ${WRITTEN_BY}`,
      );
    }
    if (environments.some((e) => e.name === name)) {
      throw new SettingsError(
        variable,
        `${variable}: two environments are named "${name}"; names identify environments in logs, metrics and ` +
          `messages, so each must be unique. ${WRITTEN_BY}`,
      );
    }
    const place = `${clusterName} ${region ?? ''} ${namespace}`;
    const other = places.get(place);
    if (other !== undefined) {
      throw new SettingsError(
        variable,
        `${variable}: environments "${other}" and "${name}" are both namespace "${namespace}" of cluster ` +
          `"${clusterName}"${region === undefined ? '' : ` in ${region}`}; one place is one environment, which may ` +
          `list several branches and release tags. Merge them, or give one another namespace. ${WRITTEN_BY}`,
      );
    }
    places.set(place, name);
    environments.push({ name, clusterName, region, namespace, branches, releaseTags });
  }
  return environments;
}
