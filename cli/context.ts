/**
 * Everything a command reaches through: the app's settings, the image registry (ECR, or any OCI
 * registry with `--registry`), and the clusters (EKS by name with the deployer's token code, or a
 * kubeconfig context with `--kubeconfig`/`--context`). Built lazily from the global options, so
 * `ship tags` needs no AWS and `ship status` with a kubeconfig and `--registry` needs none either.
 */
import * as path from 'node:path';
import { ECRClient } from '@aws-sdk/client-ecr';
import { EKSClient } from '@aws-sdk/client-eks';
import type { EnvironmentSettings, ServiceSettings } from '../lib/deployer-contract';
import { createClusterConnector } from '../core/aws/eks';
import type { HttpsKubeClient } from '../core/kube';
import { withRetries } from '../core/retry';
import type { Retry } from '../core/apply';
import type { ImageSource } from './images';
import { kubeconfigConnector, readKubeconfig, resolveContext } from './kubeconfig';
import { Progress, ShipError, UsageError, type CliIo } from './output';
import { createEcrImageSource, createOciImageSource } from './registries';
import { loadSettings, type ShipSettings } from './settings';

/** Who `ship`'s patches are attributed to in `metadata.managedFields`. */
export const SHIP_FIELD_MANAGER = 'dockercoins-ship';
const USER_AGENT = 'dockercoins-ship-cli';

/** What the process gives the CLI; tests pass their own. */
export interface CliDeps {
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
  readonly homeDir: string;
  /** The dockercoins-ship checkout the CLI runs from: its cdk.json is the default config. */
  readonly appDir: string;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  /** Between two reads of a rollout's status. @default 2000 */
  readonly pollIntervalMs?: number;
}

/** The options every command that reads the registry or the clusters takes. */
export interface GlobalOptions {
  readonly config: string | undefined;
  /** `key=value` pairs, as `cdk -c`. */
  readonly context: readonly string[];
  readonly region: string | undefined;
  readonly registry: string | undefined;
  readonly registryUser: string | undefined;
  readonly repositoryPrefix: string | undefined;
  readonly kubeconfig: string | undefined;
  readonly kubeContext: string | undefined;
  readonly environment: string | undefined;
  readonly json: boolean;
}

/** A cluster connector whose clients can also list ReplicaSets, and that closes them. */
export interface ShipClusters {
  connect(environment: EnvironmentSettings): Promise<HttpsKubeClient>;
  /** Says how the clusters are reached, for messages. */
  describe(environment: EnvironmentSettings): string;
  close(): void;
}

/** What 401 and 403 answers tell a person to fix. */
export const SHIP_ACCESS_HINT = {
  unauthorized:
    'The cluster does not accept your identity: on EKS your IAM principal needs an access entry on the ' +
    "cluster; with a kubeconfig, check its user's credentials (kubectl auth whoami).",
  forbidden:
    "ship needs get and patch on the service's Deployments and list on replicasets and pods in this namespace: " +
    'apply k8s/rbac/ship there and map yourself to the group dockercoins-ship.',
} as const;

/** Environment variable holding the password of `--registry-user` (never on the command line). */
export const REGISTRY_PASSWORD_ENV = 'SHIP_REGISTRY_PASSWORD';

export class ShipContext {
  readonly progress: Progress;
  private cachedSettings: ShipSettings | undefined;
  private cachedImages: ImageSource | undefined;
  private cachedClusters: ShipClusters | undefined;

  constructor(
    readonly options: GlobalOptions,
    readonly io: CliIo,
    readonly deps: CliDeps,
  ) {
    this.progress = new Progress(io, !options.json);
  }

  /** Three tries of each read and PATCH, as the deployer makes them (about 100, 200, 400 ms apart). */
  readonly retry: Retry = (operation) => withRetries(operation, { attempts: 3 });

  settings(): ShipSettings {
    if (this.cachedSettings === undefined) {
      const overrides: Record<string, string> = {};
      for (const pair of this.options.context) {
        const equals = pair.indexOf('=');
        if (equals <= 0) {
          throw new UsageError(
            `-c ${JSON.stringify(pair)} is not key=value; write it as cdk does, e.g. -c releaseTagPattern=v*`,
          );
        }
        overrides[pair.slice(0, equals)] = pair.slice(equals + 1);
      }
      const configPath =
        this.options.config === undefined
          ? path.join(this.deps.appDir, 'cdk.json')
          : path.resolve(this.deps.cwd, this.options.config);
      this.cachedSettings = loadSettings(configPath, overrides);
    }
    return this.cachedSettings;
  }

  /** The AWS region of ECR and EKS: --region, else AWS_REGION, else AWS_DEFAULT_REGION. */
  region(): string {
    const region =
      this.options.region ?? this.deps.env.AWS_REGION ?? this.deps.env.AWS_DEFAULT_REGION;
    if (region === undefined || region === '') {
      throw new UsageError(
        "no AWS region: pass --region <region> (the app's region, e.g. eu-west-1) or set AWS_REGION. " +
          'Without AWS, use --registry <url> for images and --kubeconfig/--context for clusters.',
      );
    }
    if (!/^[a-z]{2}(?:-[a-z]+)+-\d{1,2}$/.test(region)) {
      throw new UsageError(
        `--region ${JSON.stringify(region)} is not an AWS region such as eu-west-1.`,
      );
    }
    return region;
  }

  /** The service of this name, or a usage error listing the services there are. */
  service(name: string | undefined, command: string): ServiceSettings {
    const services = this.settings().services;
    const names = services.map((s) => s.service).join(', ');
    if (name === undefined) {
      throw new UsageError(`which service? Name one of: ${names}.`, command);
    }
    const found = services.find((s) => s.service === name);
    if (found === undefined) {
      throw new UsageError(
        `${JSON.stringify(name)} is not a service of this app (${this.settings().configPath}); the services are ${names}.`,
        command,
      );
    }
    return found;
  }

  /**
   * The environments a command acts on. `--env` picks one; without it, a command that changes
   * something needs the app to have exactly one, and one that reads takes them all.
   */
  environments(mode: 'one' | 'all', command: string): EnvironmentSettings[] {
    const all = this.settings().environments;
    const names = all.map((e) => e.name).join(', ');
    const wanted = this.options.environment;
    if (wanted !== undefined) {
      const found = all.find((e) => e.name === wanted);
      if (found === undefined) {
        throw new UsageError(
          `--env ${JSON.stringify(wanted)} is not an environment of this app; the environments are ${names}.`,
          command,
        );
      }
      return [found];
    }
    if (mode === 'one' && all.length > 1) {
      throw new UsageError(
        `this app has several environments (${names}): say which with --env <name>.`,
        command,
      );
    }
    return [...all];
  }

  /** The repository of a service in the registry in use. */
  repositoryOf(service: ServiceSettings): string {
    if (this.options.registry === undefined) return service.repository;
    // The in-cluster registry's manifests name images `<registry>/<service>` (k8s/overlays/in-cluster).
    const prefix = this.options.repositoryPrefix;
    return prefix === undefined || prefix === '' ? service.service : `${prefix}/${service.service}`;
  }

  images(): ImageSource {
    if (this.cachedImages === undefined) {
      const { registry, registryUser } = this.options;
      if (registry !== undefined) {
        const password = this.deps.env[REGISTRY_PASSWORD_ENV];
        if (registryUser !== undefined && (password === undefined || password === '')) {
          throw new UsageError(
            `--registry-user ${registryUser} needs the password in ${REGISTRY_PASSWORD_ENV} (never on the command line, ` +
              'where other users of the machine can see it).',
          );
        }
        this.cachedImages = createOciImageSource({
          url: registry,
          env: this.deps.env,
          ...(registryUser === undefined
            ? {}
            : { credentials: { username: registryUser, password: password! } }),
        });
      } else {
        if (this.options.repositoryPrefix !== undefined) {
          throw new UsageError(
            '--repository-prefix applies to --registry only; ECR repositories are named by the app configuration (repositoryPrefix).',
          );
        }
        const region = this.region();
        this.cachedImages = createEcrImageSource({
          region,
          client: () => new ECRClient({ region }),
        });
      }
    }
    return this.cachedImages;
  }

  clusters(): ShipClusters {
    if (this.cachedClusters === undefined) {
      const { kubeconfig, kubeContext } = this.options;
      if (kubeconfig !== undefined || kubeContext !== undefined) {
        const file = readKubeconfig({
          ...(kubeconfig === undefined ? {} : { path: path.resolve(this.deps.cwd, kubeconfig) }),
          env: this.deps.env,
          homeDir: this.deps.homeDir,
        });
        const resolved = resolveContext(file, kubeContext);
        const connector = kubeconfigConnector(resolved, {
          env: this.deps.env,
          fieldManager: SHIP_FIELD_MANAGER,
          userAgent: USER_AGENT,
          accessHint: SHIP_ACCESS_HINT,
        });
        this.cachedClusters = {
          connect: () => connector.connect(),
          describe: () => `kubeconfig context "${resolved.contextName}" (${resolved.server})`,
          close: () => connector.close(),
        };
      } else {
        const region = this.region();
        const connector = createClusterConnector({
          eksClient: (r) => new EKSClient({ region: r }),
          defaultRegion: region,
          fieldManager: SHIP_FIELD_MANAGER,
          userAgent: USER_AGENT,
          accessHint: SHIP_ACCESS_HINT,
        });
        this.cachedClusters = {
          connect: (environment) => connector.connect(environment),
          describe: (environment) =>
            `EKS cluster "${environment.clusterName}" (${environment.region ?? region})`,
          close: () => connector.close(),
        };
      }
    }
    return this.cachedClusters;
  }

  close(): void {
    this.progress.done();
    this.cachedClusters?.close();
  }
}

/** A failure that names where it happened; for errors of the SDK and the network. */
export function failure(where: string, error: unknown): ShipError {
  const message = error instanceof Error ? error.message : String(error);
  return new ShipError(`${where}: ${message}`);
}
