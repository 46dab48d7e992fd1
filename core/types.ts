/**
 * The deployer's vocabulary: what a finished build is, what a Deployment looks like to us, what a
 * plan and an outcome are, the narrow interfaces of its collaborators, and its error kinds.
 * parse, plan and apply speak only these types; adapters/ turns them into SDK and HTTP calls.
 * The `ship` CLI imports the same types.
 */
import type { DeployTarget, EnvironmentSettings } from '../lib/deployer-contract';

// ---- a finished build ----

/**
 * Which build an event is about, readable from any event that passed parse. A CodeBuild build has
 * all of it; a build known only from its image's labels (the in-cluster deployer, any CI) has no
 * ARN, region or account: those are undefined, never made up.
 */
export interface BuildIdentity {
  /** The build ARN, `arn:aws:codebuild:<region>:<account>:build/<project>:<uuid>`; undefined outside CodeBuild. */
  readonly buildArn: string | undefined;
  /**
   * `<project>:<uuid>`, what BatchGetBuilds and the console call the build id; for a build known
   * from its image's labels, `<project>#<number>`.
   */
  readonly buildId: string;
  /** The CodeBuild project, or the image's `io.dockercoins.ship.build-project` label. */
  readonly project: string;
  /** Our service built by that project. */
  readonly service: string;
  /** CodeBuild's build number for the project: orders builds of one project. */
  readonly buildNumber: number;
  /** The AWS region of the CodeBuild build; undefined outside CodeBuild. */
  readonly region: string | undefined;
  /** The AWS account of the CodeBuild build; undefined outside CodeBuild. */
  readonly account: string | undefined;
  /** When the build finished (the event's `time`; for a build known from labels, when its push was seen). */
  readonly finishedAt: Date;
  /** The CloudWatch Logs deep link of the build, when the event carries one. */
  readonly logsLink: string | undefined;
}

/** A successful build of one of our services, with everything the buildspec exported. */
export interface BuildRecord extends BuildIdentity {
  /** The full repository URI, `<registry>/<repository>`. */
  readonly repositoryUri: string;
  /** The repository name, e.g. `dockercoins/hasher`. */
  readonly repository: string;
  /** The registry of the repository: the ECR registry id (account), or the distribution registry's host. */
  readonly registryId: string;
  /** The immutable tag: 12-hex commit tag, or `pr-<n>-<sha7>`. */
  readonly imageTag: string;
  /** Every tag the build pushed or added, imageTag first. */
  readonly imageTags: readonly string[];
  /** `sha256:<64 hex>`. */
  readonly digest: string;
  /** 40 lowercase hex. */
  readonly commit: string;
  /** `refs/heads/…`, `refs/tags/…`, `refs/pull/<n>/head`, or `` for a build with no ref. */
  readonly gitRef: string;
  /** false when the build retagged an existing image instead of building one. */
  readonly built: boolean;
}

/** What parse makes of an event: a whole build, or an identity whose variables must be looked up. */
export type ParsedEvent =
  | { readonly kind: 'build'; readonly build: BuildRecord }
  | { readonly kind: 'lookup'; readonly identity: BuildIdentity };

// ---- Kubernetes, as little of it as we use ----

export interface Container {
  readonly name: string;
  readonly image?: string;
  readonly [field: string]: unknown;
}

/** An apps/v1 Deployment as the API server returns it; only the fields we read are typed. */
export interface Deployment {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly resourceVersion?: string;
    readonly generation?: number;
    readonly annotations?: Readonly<Record<string, string>>;
    readonly [field: string]: unknown;
  };
  readonly spec?: {
    readonly replicas?: number;
    readonly template?: {
      readonly metadata?: { readonly annotations?: Readonly<Record<string, string>> };
      readonly spec?: {
        readonly containers?: readonly Container[];
        readonly initContainers?: readonly Container[];
      };
    };
    readonly [field: string]: unknown;
  };
  readonly status?: Readonly<Record<string, unknown>>;
}

/** A strategic-merge patch body (`application/strategic-merge-patch+json`). */
export type StrategicMergePatch = Readonly<Record<string, unknown>>;

/**
 * The narrow view of one cluster's API that deploying needs. Implementations: core/kube.ts
 * (HTTPS with a bearer token), and whatever the CLI builds from a kubeconfig.
 */
export interface KubeClient {
  /** The Deployment, or undefined when the API server answers 404. */
  getDeployment(namespace: string, name: string): Promise<Deployment | undefined>;
  /** Sends one strategic-merge PATCH; resolves to the Deployment the server returned. */
  patchDeployment(namespace: string, name: string, patch: StrategicMergePatch): Promise<Deployment>;
}

/** An apps/v1 ReplicaSet as the API server returns it; only the fields history reads are typed. */
export interface ReplicaSet {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly creationTimestamp?: string;
    readonly labels?: Readonly<Record<string, string>>;
    /** Copied from the Deployment by its controller, plus `deployment.kubernetes.io/revision`. */
    readonly annotations?: Readonly<Record<string, string>>;
    readonly ownerReferences?: readonly {
      readonly uid: string;
      readonly kind?: string;
      readonly name?: string;
      readonly controller?: boolean;
    }[];
    readonly [field: string]: unknown;
  };
  readonly spec?: {
    readonly replicas?: number;
    readonly template?: {
      readonly spec?: { readonly containers?: readonly Container[] };
      readonly [field: string]: unknown;
    };
    readonly [field: string]: unknown;
  };
  readonly status?: Readonly<Record<string, unknown>>;
}

/** The state of one container of a pod, as the kubelet reports it (v1 ContainerState). */
export interface ContainerState {
  readonly waiting?: { readonly reason?: string; readonly message?: string };
  readonly running?: { readonly startedAt?: string };
  readonly terminated?: {
    readonly exitCode?: number;
    readonly reason?: string;
    readonly message?: string;
    readonly finishedAt?: string;
  };
}

/** v1 ContainerStatus: only the fields verification reads are typed. */
export interface ContainerStatus {
  readonly name: string;
  readonly ready?: boolean;
  readonly restartCount?: number;
  readonly image?: string;
  readonly state?: ContainerState;
  readonly lastState?: ContainerState;
  readonly [field: string]: unknown;
}

/** A v1 Pod as the API server returns it; only the fields verification reads are typed. */
export interface Pod {
  readonly apiVersion?: string;
  readonly kind?: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly uid?: string;
    readonly labels?: Readonly<Record<string, string>>;
    readonly deletionTimestamp?: string;
    readonly ownerReferences?: readonly {
      readonly uid: string;
      readonly kind?: string;
      readonly name?: string;
      readonly controller?: boolean;
    }[];
    readonly [field: string]: unknown;
  };
  readonly spec?: Readonly<Record<string, unknown>>;
  readonly status?: {
    readonly phase?: string;
    readonly containerStatuses?: readonly ContainerStatus[];
    readonly initContainerStatuses?: readonly ContainerStatus[];
    readonly [field: string]: unknown;
  };
}

/**
 * What reads a rollout besides one Deployment: the ReplicaSets that keep its history and the
 * pods of its new ReplicaSet (verification). `ship` and the deployer's verify step list them;
 * the deploy step only gets and patches.
 */
export interface KubeReader extends KubeClient {
  /** The ReplicaSets of a namespace matching an equality label selector (`a=b,c=d`). */
  listReplicaSets(namespace: string, labelSelector: string): Promise<ReplicaSet[]>;
  /** The pods of a namespace matching an equality label selector (`pod-template-hash=…`). */
  listPods(namespace: string, labelSelector: string): Promise<Pod[]>;
}

/**
 * One deployed Deployment to verify: the Deploy step's output per target (Step Functions' Map
 * items, JSON as is), and what `ship` verifies in-process.
 */
export interface VerifyTarget {
  /** The environment's name. */
  readonly environment: string;
  readonly namespace: string;
  readonly clusterName: string;
  readonly deployment: string;
  readonly container: string;
  /** The image deployed (for phase `rollback`: rolled back to), `repo:tag@sha256:…`. */
  readonly image: string;
  readonly digest: string;
  /** The Deployment's generation the PATCH returned: status of older generations is not ours. */
  readonly generation: number;
  /** The image the PATCH replaced (for phase `rollback`: the failed one), when there was one. */
  readonly previousImage?: string;
  /** The build number of `image`, when known (0 when not). */
  readonly build: number;
  /** When the PATCH was accepted (ISO 8601): the deadline counts from it. */
  readonly startedAt: string;
  /** When the build ended (ISO 8601): TimeToReady counts from it. */
  readonly buildEndedAt?: string;
  /** The service's verify deadline. */
  readonly deadlineSeconds: number;
  readonly phase: 'verify' | 'rollback';
  /** Who owns the verification: the Step Functions execution id, or `ship:<user>`. */
  readonly execution: string;
}

/** Gives the client for an environment's cluster (DescribeCluster and the token, cached). */
export interface ClusterConnector {
  connect(environment: EnvironmentSettings): Promise<KubeClient>;
}

/** Confirms what a tag points to in the image registry. */
export interface ImageVerifier {
  /**
   * The manifest digest each tag points to now, in the order asked; undefined for a tag that
   * does not exist (and for every tag when the repository does not).
   */
  digestsOf(
    image: { registryId: string; repository: string },
    tags: readonly string[],
  ): Promise<(string | undefined)[]>;
}

/** What CodeBuild itself records of a build (BatchGetBuilds): the truth an event is checked against. */
export interface BuildFacts {
  /** `<project>:<uuid>`. */
  readonly id: string;
  readonly arn: string | undefined;
  readonly project: string | undefined;
  /** `SUCCEEDED`, `FAILED`, `IN_PROGRESS`, … */
  readonly status: string | undefined;
  readonly buildNumber: number | undefined;
  /** The exported variables by name; undefined when the build exported none. */
  readonly exportedVariables: Readonly<Record<string, string>> | undefined;
}

/** Asks CodeBuild about a build (BatchGetBuilds), to confirm what an event says before deploying. */
export interface BuildLookup {
  /** CodeBuild's record of the build; undefined when CodeBuild does not know it. */
  describeBuild(buildId: string): Promise<BuildFacts | undefined>;
}

/** Publishes a readable outcome (SNS). */
export interface Notifier {
  publish(subject: string, message: string): Promise<void>;
}

// ---- plans and outcomes ----

/** Why a build deploys nowhere. */
export type BuildSkipReason =
  /** GIT_REF matches no environment (a pull request, a branch that only builds, no ref). */
  | 'not-a-deploy-ref'
  /** The tag to deploy is `latest`, or neither a commit nor a release tag. */
  | 'tag-not-deployable';

/** Why one Deployment is left as it is. */
export type TargetSkipReason =
  /** It already runs this digest: a duplicate event, or a promotion of what runs. */
  | 'already-running'
  /** It runs a newer build of the same project: never downgrade. */
  | 'older-build'
  /** Automatic deploys of it are paused (annotation `ship.dockercoins.io/paused`). */
  | 'paused'
  /**
   * The digest failed verification on this Deployment (annotation `ship.dockercoins.io/rejected`):
   * a retry or duplicate never deploys it again. Not `rejected`, which is a failure reason (the
   * API server refused an answer).
   */
  | 'digest-rejected'
  /** It already runs this digest and another execution verifies it now (its lease holds). */
  | 'verifying';

/** Why one Deployment could not be deployed to, permanently (retrying cannot help). */
export type TargetFailureReason =
  | 'deployment-missing'
  | 'container-missing'
  | 'image-missing'
  | 'image-mismatch'
  | 'forbidden'
  | 'credentials'
  | 'rejected';

/** The image a Deployment's container runs, as far as its image and annotations tell. */
export interface RunningImage {
  /** The container's image reference as it stands. */
  readonly image: string;
  readonly tag: string | undefined;
  readonly digest: string | undefined;
  readonly commit: string | undefined;
  readonly buildProject: string | undefined;
  readonly buildNumber: number | undefined;
}

/**
 * The image a build (or a person, with `ship`) deploys. The deployer always knows the whole
 * build; `ship` knows what the registry and the rollout history say, and leaves out what neither
 * does (its annotation is then removed, never left describing another image).
 */
export interface DesiredImage {
  /** `<repositoryUri>:<tag>@<digest>`. */
  readonly image: string;
  readonly tag: string;
  readonly digest: string;
  /** 40 hex; the 12-hex commit tag when only that is known (`ship deploy` from ECR). */
  readonly commit: string;
  readonly buildProject: string | undefined;
  readonly buildNumber: number | undefined;
  /** The CodeBuild build ARN, when known. */
  readonly buildArn: string | undefined;
  /** The git ref built (`refs/heads/main`, `refs/tags/v1.2.0`), when known. */
  readonly gitRef: string | undefined;
}

/** One Deployment in one environment that a build concerns. */
export interface TargetRef {
  readonly environment: EnvironmentSettings;
  readonly service: string;
  readonly target: DeployTarget;
}

/** What the build means: where it goes, with which image, or why nowhere. */
export type BuildPlan =
  | {
      readonly action: 'deploy';
      readonly build: BuildRecord;
      readonly image: DesiredImage;
      /** At least one. */
      readonly targets: readonly TargetRef[];
    }
  | {
      readonly action: 'skip';
      readonly build: BuildRecord;
      readonly reason: BuildSkipReason;
      /** A sentence for people: what was seen and what would have deployed. */
      readonly detail: string;
    };

/** What to do with one Deployment, decided from its live state. */
export type TargetPlan =
  | {
      readonly action: 'patch';
      readonly ref: TargetRef;
      readonly from: RunningImage | undefined;
      readonly to: DesiredImage;
      /** The resourceVersion read; the patch carries it as a precondition. */
      readonly resourceVersion: string;
      readonly patch: StrategicMergePatch;
    }
  | {
      /**
       * It already runs the digest, unverified (or its verifier's lease expired): take the
       * verification with an annotation-only PATCH conditional on `resourceVersion`.
       */
      readonly action: 'lease';
      readonly ref: TargetRef;
      readonly from: RunningImage | undefined;
      readonly to: DesiredImage;
      readonly resourceVersion: string;
      /** The Deployment's generation as read (an annotation-only PATCH leaves it). */
      readonly generation: number;
      readonly patch: StrategicMergePatch;
      readonly detail: string;
    }
  | {
      readonly action: 'skip';
      readonly ref: TargetRef;
      readonly reason: TargetSkipReason;
      readonly from: RunningImage | undefined;
      readonly to: DesiredImage;
      readonly detail: string;
    }
  | {
      readonly action: 'fail';
      readonly ref: TargetRef;
      readonly reason: TargetFailureReason;
      readonly to: DesiredImage;
      readonly detail: string;
    };

/** What happened to one Deployment. */
export type TargetOutcome =
  | {
      readonly status: 'deployed';
      readonly ref: TargetRef;
      readonly from: RunningImage | undefined;
      readonly to: DesiredImage;
      /** The Deployment's generation after the patch (what a rollout watch waits for). */
      readonly generation: number | undefined;
      /** PATCH accepted minus build finished, in ms. */
      readonly latencyMs: number;
      /** What to verify, when the deploy was made with verification (ApplyDeps.verification). */
      readonly verify?: VerifyTarget;
    }
  | {
      readonly status: 'skipped';
      readonly ref: TargetRef;
      readonly reason: TargetSkipReason;
      readonly from: RunningImage | undefined;
      readonly to: DesiredImage;
      readonly detail: string;
      /**
       * `already-running` whose verification this execution took (resumable: deployed by an
       * older deployer, by `ship --no-verify`, or its owner's lease expired): what to verify.
       */
      readonly verify?: VerifyTarget;
    }
  | {
      readonly status: 'failed';
      readonly ref: TargetRef;
      readonly reason: TargetFailureReason | 'transient';
      readonly to: DesiredImage;
      readonly detail: string;
    };

/** The result of one event. */
export type DeployOutcome =
  | {
      readonly kind: 'skipped';
      readonly build: BuildRecord;
      readonly reason: BuildSkipReason;
      readonly detail: string;
    }
  | {
      readonly kind: 'applied';
      readonly build: BuildRecord;
      readonly targets: readonly TargetOutcome[];
    };

// ---- errors ----

/** The event is not a successful build of ours, or its variables are unusable. Never retried. */
export class InvalidEventError extends Error {
  constructor(
    /** The field or variable at fault, e.g. `detail.build-status` or `IMAGE_DIGEST`. */
    readonly field: string,
    message: string,
  ) {
    super(message);
    this.name = 'InvalidEventError';
  }
}

/**
 * A failure that may pass (429, 5xx, timeouts, connection errors): the handler throws it after
 * its own bounded retries, so Lambda retries the event and then keeps it in the dead-letter queue.
 */
export class TransientError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'TransientError';
  }
}

/** The API server answered 409 Conflict: the resourceVersion precondition failed. */
export class ConflictError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConflictError';
  }
}

/** An answer that retrying cannot change (401, 403, 404 on patch, 422, a malformed body). */
export class PermanentError extends Error {
  constructor(
    readonly reason: TargetFailureReason,
    message: string,
  ) {
    super(message);
    this.name = 'PermanentError';
  }
}
