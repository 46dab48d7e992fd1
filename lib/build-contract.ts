/**
 * The contract between the CodeBuild projects (lib/constructs/image-builds.ts), the buildspec
 * (buildspecs/build-image.yml) and whoever reads a finished build (the deployer, the CLI).
 * Names live here once; a test checks the buildspec against them.
 */

/** Environment variables the construct sets on every project; the buildspec reads only these. */
export const BUILD_ENV = {
  /** The service name, e.g. `rng`. */
  service: 'SERVICE',
  /** The Docker build context, relative to the source root, e.g. `dockercoins/rng`. */
  buildContext: 'BUILD_CONTEXT',
  /** The full repository URI, e.g. `123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/rng`. */
  imageRepository: 'IMAGE_REPOSITORY',
  /** How the buildspec logs in: `ecr`, `basic` (REGISTRY_USERNAME/REGISTRY_PASSWORD) or `none`. */
  registryAuth: 'REGISTRY_AUTH',
  /** Glob of release tags (only `*` is special), e.g. `v*`. */
  releaseTagPattern: 'RELEASE_TAG_PATTERN',
  /** The moving tag of BuildKit's registry cache; unset means no registry cache. */
  buildCacheTag: 'BUILD_CACHE_TAG',
  /** The source repository's web address, for the `org.opencontainers.image.source` label. */
  sourceUrl: 'SOURCE_URL',
  /** `linux/amd64` or `linux/arm64`: the platform the image is built for. */
  imagePlatform: 'IMAGE_PLATFORM',
  /** The BuildKit image buildx runs, `<registry>/<repository>:<tag>@sha256:…`; unset: buildx's default. */
  buildkitImage: 'BUILDKIT_IMAGE',
} as const;

/**
 * The BuildKit image builds run, pulled through the account's ECR pull-through cache for ECR
 * Public (not anonymously from Docker Hub, whose rate limits hit CodeBuild's shared addresses).
 * BuildKit's maintainers publish to Docker Hub only; ECR Public carries it as `vend/moby/buildkit`
 * (the mirror docker/setup-buildx-action used by default). The digest is the multi-platform index
 * of moby/buildkit v0.32.0 on Docker Hub: a mirror that served anything else fails the pull.
 */
export const BUILDKIT_IMAGE = {
  /** The repository on ECR Public, under the pull-through cache prefix in the account. */
  repository: 'vend/moby/buildkit',
  tag: 'v0.32.0',
  digest: 'sha256:1f8167fcb0eca5b7126353d35299386945cbb8949cc516c592a49f80cfce4fa2',
} as const;

/**
 * Variables the buildspec exports (`env: exported-variables`). They reach the "CodeBuild Build
 * State Change" event as `detail.additional-information.exported-environment-variables` and
 * `BatchGetBuilds` as `exportedEnvironmentVariables`.
 */
export const EXPORTED_VARIABLES = [
  /** The service built. */
  'SERVICE',
  /** The repository the image was pushed to. */
  'IMAGE_REPOSITORY',
  /** The immutable tag: the 12-hex commit tag, or `pr-<n>-<sha7>` for pull requests. */
  'IMAGE_TAG',
  /** Every tag pushed or added, comma-separated, IMAGE_TAG first. */
  'IMAGE_TAGS',
  /** The manifest digest every tag points at, `sha256:…`, read back from the registry. */
  'IMAGE_DIGEST',
  /** The 40-hex commit built. */
  'GIT_COMMIT',
  /** The git ref that triggered the build (`refs/heads/main`, `refs/tags/v1.2.0`, …), or empty. */
  'GIT_REF',
  /** `true` when this build built the image, `false` when it retagged an existing one. */
  'IMAGE_BUILT',
] as const;

export type ExportedVariable = (typeof EXPORTED_VARIABLES)[number];

/**
 * Identifier of the secondary source that carries the core's build scripts (core/build.js, ci.js,
 * image-tags.js, registry.js) into every build: CodeBuild unpacks it at
 * `$CODEBUILD_SRC_DIR_<identifier>`.
 */
export const TOOLS_SOURCE_IDENTIFIER = 'ship_tools';
