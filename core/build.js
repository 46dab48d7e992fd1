#!/usr/bin/env node
// @ts-check
'use strict';

/**
 * Builds and pushes the image of one service for one commit, or promotes the image already built
 * for that commit: THE build, for CodeBuild (buildspecs/build-image.yml runs this file from the
 * tools asset) and for any other CI (`ship build` imports it). One implementation:
 *
 * 1. prepare (no I/O but a folder check): every input validated, each problem one line naming the
 *    input and the fix; the tags (image-tags.js) and the labels (IMAGE_LABELS, all of them);
 * 2. the immutable tag exists: this commit was built before. Nothing is built; its revision label
 *    must be the commit, then every missing tag is added through the registry API (retag);
 * 3. it does not: none of the tags may exist; the builder builds and pushes the immutable tag
 *    ONLY; every other tag is then added through the registry API, after the same revision check.
 *    A concurrent build of the same commit that pushed first is promoted, not fought;
 * 4. the digest every tag names is read back from the registry: one digest, or a failure.
 *
 * Builders: `buildx` (docker buildx build --push: BuildKit, the registry cache) and `buildah`
 * (buildah bud, then buildah push; no daemon). Plain Node (`// @ts-check`, builtins only), like
 * image-tags.js and registry.js, so CodeBuild runs it as it is.
 *
 *   node build.js check   validate the inputs from the environment, print the tags
 *   node build.js run [--builder buildx|buildah|auto] [--format env]
 */

const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { IMAGE_LABELS, TagInputError, computeTags, shellQuote } = require('./image-tags.js');
const registry = require('./registry.js');
const { ciBuild } = require('./ci.js');

/** The builders this file drives. */
const BUILDERS = Object.freeze(['buildx', 'buildah']);
/** The architectures of our nodes: an image for another one would never run. */
const PLATFORMS = Object.freeze(['linux/amd64', 'linux/arm64']);
const REPOSITORY_FORM = /^[A-Za-z0-9.-]+(:[0-9]+)?(\/[a-z0-9]+([._-]+[a-z0-9]+)*)+$/;
const TAG_FORM = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;
const SERVICE_FORM = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?$/;

/** Inputs that cannot make a build: every problem found, one line each. Nothing was pushed. */
class BuildInputError extends Error {
  /** @param {readonly string[]} problems */
  constructor(problems) {
    super(problems.join('\n'));
    this.name = 'BuildInputError';
    /** @readonly */
    this.problems = [...problems];
  }
}

/** The builder failed (and no other build pushed the commit meanwhile). */
class BuilderError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'BuilderError';
  }
}

/** @typedef {import('./image-tags.js').TagInputs} TagInputs */
/** @typedef {import('./image-tags.js').ImageTags} ImageTags */
/** @typedef {'buildx' | 'buildah'} Builder */

/**
 * How one input is called where it came from, and how to fix it there: the buildspec names its
 * environment variables and the CodeBuild project, `ship build` its flags.
 * @typedef {{ name: string, fix: string }} InputName
 * @typedef {Record<'service' | 'repository' | 'context' | 'platform' | 'sourceUrl' | 'cacheTag' | 'buildProject', InputName> & { dockerfile?: InputName }} InputNames
 */

/**
 * What to build, as given (any field may be missing or wrong: prepareBuild says which).
 * @typedef {object} BuildRequest
 * @property {string | undefined} service
 * @property {string | undefined} repository `<registry host>/<repository>`, no tag
 * @property {string | undefined} context the build context folder (relative to `cwd`)
 * @property {string} [dockerfile] the Dockerfile (relative to `cwd`); default `Dockerfile` in the context
 * @property {string | undefined} platform
 * @property {string | undefined} sourceUrl
 * @property {string | undefined} [cacheTag] BuildKit's registry cache tag; buildx only
 * @property {Builder} builder
 * @property {() => TagInputs} tagInputs the tags' inputs; may throw TagInputError
 * @property {string | undefined} buildProject
 * @property {Date} created
 * @property {string} cwd
 */

/**
 * A build ready to run: validated, its tags and labels computed.
 * @typedef {object} BuildPlan
 * @property {string} service
 * @property {string} host the registry host
 * @property {string} repositoryName the repository inside the registry
 * @property {string} repository `<host>/<repositoryName>`
 * @property {string} context absolute path
 * @property {string | undefined} dockerfile absolute path; undefined: the context's Dockerfile
 * @property {string} platform
 * @property {Builder} builder
 * @property {string | undefined} cacheTag
 * @property {ImageTags} tags
 * @property {Record<string, string>} labels every IMAGE_LABELS entry
 * @property {string[]} notes
 */

/**
 * @typedef {object} BuildResult
 * @property {string} service
 * @property {string} repository
 * @property {string} imageTag
 * @property {string[]} tags
 * @property {string} digest read back from the registry: every tag names it
 * @property {string} commit
 * @property {string} ref
 * @property {boolean} built false: an image built before for this commit was promoted
 * @property {Record<string, string>} labels the labels of the image built (or to be, if promoted)
 */

/** RFC 3339 in UTC to the second, as `date -u +%Y-%m-%dT%H:%M:%SZ` prints it. */
/** @param {Date} date */
function rfc3339(date) {
  return `${date.toISOString().slice(0, 19)}Z`;
}

/**
 * Validates a request and computes its tags and labels. Every problem is reported at once
 * (BuildInputError); nothing is asked of any registry or builder.
 * @param {BuildRequest} request
 * @param {InputNames} names
 * @returns {BuildPlan}
 */
function prepareBuild(request, names) {
  /** @type {string[]} */
  const problems = [];
  /**
   * @param {InputName} input
   * @param {string} problem
   */
  const bad = (input, problem) => problems.push(`${input.name} ${problem}: ${input.fix}`);

  const { service, repository, context, platform, sourceUrl, cacheTag } = request;
  if (service === undefined || service === '') bad(names.service, 'is not set');
  else if (!SERVICE_FORM.test(service)) bad(names.service, `is ${JSON.stringify(service)}`);

  if (repository === undefined || repository === '') bad(names.repository, 'is not set');
  else if (!REPOSITORY_FORM.test(repository)) {
    const latest = /:latest$/i.test(repository) ? ' (and never latest)' : '';
    problems.push(
      `${names.repository.name} is ${JSON.stringify(repository)}: expected <registry host>/<repository> without a tag${latest}. ${names.repository.fix}`,
    );
  }

  let contextDir = '';
  if (context === undefined || context === '') bad(names.context, 'is not set');
  else {
    contextDir = path.resolve(request.cwd, context);
    let isDir = false;
    try {
      isDir = fs.statSync(contextDir).isDirectory();
    } catch {
      isDir = false;
    }
    if (!isDir) {
      problems.push(
        `${names.context.name} is ${JSON.stringify(context)}, which is not a folder of the source (${request.cwd}): ${names.context.fix}`,
      );
    }
  }

  let dockerfile;
  if (request.dockerfile !== undefined) {
    dockerfile = path.resolve(request.cwd, request.dockerfile);
    if (!fs.existsSync(dockerfile) || !fs.statSync(dockerfile).isFile()) {
      const input = names.dockerfile ?? { name: 'the Dockerfile', fix: 'name an existing file' };
      problems.push(
        `${input.name} is ${JSON.stringify(request.dockerfile)}, which is not a file: ${input.fix}`,
      );
    }
  }

  if (platform === undefined || platform === '') bad(names.platform, 'is not set');
  else if (!PLATFORMS.includes(platform)) {
    problems.push(
      `${names.platform.name} is ${JSON.stringify(platform)}: set it to ${PLATFORMS.join(' or ')} (the architecture of the nodes and of the build host)`,
    );
  }

  if (sourceUrl === undefined || sourceUrl === '') bad(names.sourceUrl, 'is not set');

  if (cacheTag !== undefined && cacheTag !== '') {
    if (!TAG_FORM.test(cacheTag) || cacheTag.toLowerCase() === 'latest') {
      problems.push(
        `${names.cacheTag.name} is ${JSON.stringify(cacheTag)}: expected an image tag such as buildcache (never latest), or empty for no registry cache`,
      );
    } else if (request.builder !== 'buildx') {
      problems.push(
        `${names.cacheTag.name} is ${JSON.stringify(cacheTag)}, but the registry cache is BuildKit's: use the buildx builder, or no cache tag with buildah`,
      );
    }
  }

  /** @type {ImageTags | undefined} */
  let tags;
  /** @type {TagInputs | undefined} */
  let inputs;
  try {
    inputs = request.tagInputs();
    tags = computeTags(inputs);
  } catch (error) {
    if (!(error instanceof TagInputError)) throw error;
    problems.push(error.message);
  }
  const buildProject = request.buildProject ?? '';
  if (inputs?.buildNumber !== undefined && buildProject === '') {
    problems.push(
      `the build number ${inputs.buildNumber} has no build project (${names.buildProject.name}): ` +
        `build numbers order builds only within one project. ${names.buildProject.fix}`,
    );
  }
  for (const tag of tags?.tags ?? []) {
    // image-tags.js never makes it; a second look costs nothing and guards every future rule.
    if (tag.toLowerCase() === 'latest') problems.push(`the tag "${tag}" is refused: never latest`);
  }

  if (
    problems.length > 0 ||
    tags === undefined ||
    service === undefined ||
    repository === undefined
  ) {
    throw new BuildInputError(problems);
  }
  const slash = repository.indexOf('/');
  return {
    service,
    host: repository.slice(0, slash),
    repositoryName: repository.slice(slash + 1),
    repository,
    context: contextDir,
    dockerfile,
    platform: /** @type {string} */ (platform),
    builder: request.builder,
    cacheTag: cacheTag === '' ? undefined : cacheTag,
    tags,
    labels: {
      [IMAGE_LABELS.revision]: tags.commit,
      [IMAGE_LABELS.source]: /** @type {string} */ (sourceUrl),
      [IMAGE_LABELS.version]: tags.immutableTag,
      [IMAGE_LABELS.created]: rfc3339(request.created),
      [IMAGE_LABELS.buildNumber]:
        inputs?.buildNumber === undefined ? '' : String(inputs.buildNumber),
      [IMAGE_LABELS.buildProject]: buildProject,
      [IMAGE_LABELS.gitRef]: tags.ref,
      [IMAGE_LABELS.service]: service,
    },
    notes: tags.notes,
  };
}

/**
 * Whether the registry is spoken to in plain HTTP (loopback, or REGISTRY_INSECURE=true): the
 * builder must then be told so, as registry.js is.
 * @param {string} host
 * @param {NodeJS.ProcessEnv} env
 */
function plainHttp(host, env) {
  return registry.registryBaseUrl(host, env).startsWith('http://');
}

/**
 * The builder's commands for a plan: the image is built with every label and pushed under the
 * immutable tag only. `buildx` pushes as it builds; `buildah` builds, then pushes.
 * @param {BuildPlan} plan
 * @param {NodeJS.ProcessEnv} env
 * @returns {{ build: string[], push: string[] | undefined }}
 */
function builderCommands(plan, env) {
  const image = `${plan.repository}:${plan.tags.immutableTag}`;
  const file = plan.dockerfile === undefined ? [] : ['--file', plan.dockerfile];
  const labels = Object.entries(plan.labels).flatMap(([key, value]) => [
    '--label',
    `${key}=${value}`,
  ]);
  if (plan.builder === 'buildx') {
    const cache =
      plan.cacheTag === undefined
        ? []
        : [
            '--cache-from',
            `type=registry,ref=${plan.repository}:${plan.cacheTag}`,
            '--cache-to',
            `type=registry,ref=${plan.repository}:${plan.cacheTag},mode=max,image-manifest=true,oci-mediatypes=true`,
          ];
    return {
      // --provenance=false: a plain image manifest, not an index with an attestation.
      build: [
        'docker',
        'buildx',
        'build',
        '--platform',
        plan.platform,
        '--provenance=false',
        '--push',
        ...labels,
        '--tag',
        image,
        ...cache,
        ...file,
        plan.context,
      ],
      push: undefined,
    };
  }
  const authfile = registry.dockerConfigPath(env);
  return {
    build: [
      'buildah',
      'bud',
      '--platform',
      plan.platform,
      ...labels,
      '--tag',
      image,
      ...file,
      plan.context,
    ],
    push: [
      'buildah',
      'push',
      ...(fs.existsSync(authfile) ? ['--authfile', authfile] : []),
      ...(plainHttp(plan.host, env) ? ['--tls-verify=false'] : []),
      image,
      `docker://${image}`,
    ],
  };
}

/**
 * Runs a command, its output going to `output`; resolves to its exit status.
 * @param {readonly string[]} argv
 * @param {NodeJS.ProcessEnv} env
 * @param {(text: string) => void} output
 * @returns {Promise<number>}
 */
function execCommand(argv, env, output) {
  return new Promise((resolve) => {
    const [command = '', ...args] = argv;
    const child = spawn(command, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.on('data', (chunk) => output(String(chunk)));
    child.stderr.on('data', (chunk) => output(String(chunk)));
    child.on('error', (error) => {
      output(`${command}: ${error.message}\n`);
      resolve(127);
    });
    child.on('close', (status) => resolve(status ?? 1));
  });
}

/**
 * `auto`: buildx where `docker buildx version` works, else buildah.
 * @param {string} choice `auto`, `buildx` or `buildah`
 * @param {NodeJS.ProcessEnv} env
 * @param {(argv: string[]) => boolean} [works] whether a command runs and exits 0
 * @returns {Builder}
 */
function resolveBuilder(choice, env, works) {
  const probe =
    works ??
    ((/** @type {string[]} */ argv) =>
      spawnSync(/** @type {string} */ (argv[0]), argv.slice(1), { env, stdio: 'ignore' }).status ===
      0);
  if (choice === 'buildx' || choice === 'buildah') return choice;
  if (choice !== 'auto') {
    throw new BuildInputError([
      `--builder is ${JSON.stringify(choice)}: expected auto, buildx (docker buildx: BuildKit) or buildah`,
    ]);
  }
  if (probe(['docker', 'buildx', 'version'])) return 'buildx';
  if (probe(['buildah', '--version'])) return 'buildah';
  throw new BuildInputError([
    '--builder auto found neither `docker buildx version` nor `buildah --version` working: install docker with the buildx plugin, or buildah',
  ]);
}

/**
 * @typedef {object} BuildDeps
 * @property {InstanceType<typeof registry.RegistryClient>} client of the plan's registry host
 * @property {NodeJS.ProcessEnv} env for the builder (DOCKER_CONFIG, CONTAINERS_STORAGE_CONF, …)
 * @property {(line: string) => void} log one line for people
 * @property {(text: string) => void} output the builder's own output
 * @property {(argv: readonly string[], env: NodeJS.ProcessEnv, output: (text: string) => void) => Promise<number>} [exec]
 */

/**
 * Builds (or promotes) and tags one image, then reads its digest back. See the file's comment.
 * @param {BuildPlan} plan
 * @param {BuildDeps} deps
 * @returns {Promise<BuildResult>}
 */
async function runBuild(plan, deps) {
  const { client, log } = deps;
  const exec = deps.exec ?? execCommand;
  const { tags } = plan;
  const source = { host: plan.host, repository: plan.repositoryName, tag: tags.immutableTag };
  const image = `${plan.repository}:${tags.immutableTag}`;
  const retagOptions = { requireRevision: tags.commit, platform: plan.platform };
  log(
    `${plan.service}: commit ${tags.commit} (${tags.ref || 'no ref'}, ${tags.kind}); tags ${tags.tags.join(' ')}`,
  );
  for (const note of plan.notes) log(`${plan.service}: note: ${note}`);

  let built = false;
  const existing = await client.tagDigest(plan.repositoryName, tags.immutableTag);
  if (existing !== undefined) {
    log(`${image} exists (${existing}): promoting it, nothing to build`);
  } else {
    // None of the tags may exist yet: a tag naming an image this build has not made fails here,
    // before anything is built or pushed.
    await registry.assertAbsent(client, plan.repositoryName, tags.tags);
    log(`${image} does not exist yet: building it with ${plan.builder}`);
    const commands = builderCommands(plan, deps.env);
    let status = await exec(commands.build, deps.env, deps.output);
    let pushed = status === 0;
    if (status === 0 && commands.push !== undefined) {
      // A registry without immutable tags would take a second push of the tag: look first.
      pushed = (await client.tagDigest(plan.repositoryName, tags.immutableTag)) === undefined;
      if (pushed) status = await exec(commands.push, deps.env, deps.output);
    }
    const after = await client.tagDigest(plan.repositoryName, tags.immutableTag);
    if (status !== 0 || !pushed || after === undefined) {
      // A branch push and a tag push of one commit start two builds at once; if the other one
      // pushed the immutable tag first, ours was refused (or not made). Its image is this
      // commit's build (the revision check below proves it): promote it. Anything else fails.
      if (after === undefined) {
        throw new BuilderError(
          `${plan.builder} failed (exit ${status}) building ${image} from ${plan.context}: nothing was pushed. Its output above says why`,
        );
      }
      log(`${image} was pushed by another build of ${tags.commit} meanwhile: promoting it`);
    } else {
      built = true;
    }
  }
  // Every other tag names the immutable tag's manifest, put through the registry API; tags already
  // naming it are left alone. The revision label is checked first, on either path.
  const retagged = await registry.retag(client, source, tags.tags, retagOptions);
  for (const change of retagged.changes) {
    if (change.action === 'added')
      log(`tagged ${plan.repository}:${change.tag}@${retagged.digest}`);
  }
  // Read back from the registry, not from the builder: every tag must name one digest.
  const digest = await registry.commonDigest(client, plan.repositoryName, tags.tags);
  log(
    `${built ? 'Built and pushed' : 'Promoted the image built before for'} ${plan.service} ${tags.commit}: ${plan.repository}@${digest} (${tags.tags.join(', ')})`,
  );
  return {
    service: plan.service,
    repository: plan.repository,
    imageTag: tags.immutableTag,
    tags: tags.tags,
    digest,
    commit: tags.commit,
    ref: tags.ref,
    built,
    labels: plan.labels,
  };
}

/**
 * A private docker config holding only these credentials for `host`, for the builder and
 * registry.js (DOCKER_CONFIG), removed when `use` ends. Basic credentials never go on a command
 * line, where `ps` shows them.
 * @template T
 * @param {string} host
 * @param {{ username: string, password: string }} credentials
 * @param {(dockerConfigDir: string) => Promise<T>} use
 * @returns {Promise<T>}
 */
async function withDockerConfig(host, credentials, use) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ship-build-auth-'));
  try {
    const auth = Buffer.from(`${credentials.username}:${credentials.password}`).toString('base64');
    fs.writeFileSync(
      path.join(dir, 'config.json'),
      JSON.stringify({ auths: { [host]: { auth } } }),
      {
        mode: 0o600,
      },
    );
    return await use(dir);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The exported variables of a build (lib/build-contract.ts EXPORTED_VARIABLES), as bash
 * assignments for `eval`.
 * @param {BuildResult} result
 * @returns {string}
 */
function formatEnv(result) {
  /** @type {[string, string][]} */
  const pairs = [
    ['SERVICE', result.service],
    ['IMAGE_REPOSITORY', result.repository],
    ['IMAGE_TAG', result.imageTag],
    ['IMAGE_TAGS', result.tags.join(',')],
    ['IMAGE_DIGEST', result.digest],
    ['GIT_COMMIT', result.commit],
    ['GIT_REF', result.ref],
    ['IMAGE_BUILT', String(result.built)],
  ];
  return pairs.map(([name, value]) => `export ${name}=${shellQuote(value)}\n`).join('');
}

// ---- the buildspec's command line: inputs from the CodeBuild project's environment ----

/** The CodeBuild project's variables (lib/build-contract.ts BUILD_ENV), for messages. */
const ENV_NAMES = Object.freeze({
  service: {
    name: 'SERVICE',
    fix: 'set it on the CodeBuild project to the service name, e.g. rng',
  },
  repository: {
    name: 'IMAGE_REPOSITORY',
    fix: 'set it on the CodeBuild project to the full repository, e.g. 123456789012.dkr.ecr.eu-west-1.amazonaws.com/dockercoins/rng',
  },
  context: {
    name: 'BUILD_CONTEXT',
    fix: "set it on the CodeBuild project to the service's folder inside the source, e.g. dockercoins/rng",
  },
  platform: {
    name: 'IMAGE_PLATFORM',
    fix: 'set it on the CodeBuild project to linux/amd64 or linux/arm64',
  },
  sourceUrl: {
    name: 'SOURCE_URL',
    fix: "set it on the CodeBuild project to the source repository's web address (the org.opencontainers.image.source label)",
  },
  cacheTag: {
    name: 'BUILD_CACHE_TAG',
    fix: 'set it to a tag such as buildcache, or leave it empty',
  },
  buildProject: { name: 'CODEBUILD_BUILD_ID', fix: 'CodeBuild sets it to <project>:<uuid>' },
});

/**
 * The request the environment describes: the CodeBuild project's variables, and the commit, ref
 * and build number from the CI (core/ci.js; CodeBuild's own variables in CodeBuild).
 * @param {NodeJS.ProcessEnv} env
 * @param {Builder} builder
 * @param {Date} created
 * @param {string} cwd
 * @returns {BuildRequest}
 */
function requestFromEnvironment(env, builder, created, cwd) {
  /** @type {ReturnType<typeof ciBuild> | undefined} */
  let ci;
  /** @type {TagInputError | undefined} */
  let ciError;
  try {
    ci = ciBuild(env);
  } catch (error) {
    if (!(error instanceof TagInputError)) throw error;
    ciError = error;
  }
  return {
    service: env.SERVICE,
    repository: env.IMAGE_REPOSITORY,
    context: env.BUILD_CONTEXT,
    platform: env.IMAGE_PLATFORM,
    sourceUrl: env.SOURCE_URL || ci?.sourceUrl,
    cacheTag: env.BUILD_CACHE_TAG,
    builder,
    buildProject: ci?.buildProject,
    created,
    cwd,
    tagInputs: () => {
      if (ciError !== undefined) throw ciError;
      if (ci === undefined || ci.commit === undefined) {
        throw new TagInputError(
          'no CI says which commit this is (CODEBUILD_RESOLVED_SOURCE_VERSION, GITHUB_SHA, CI_COMMIT_SHA, GIT_COMMIT): ' +
            'run build.js in CodeBuild, or `ship build` elsewhere',
          'commit',
        );
      }
      return {
        commit: ci.commit,
        ref: ci.ref ?? { kind: 'none' },
        buildNumber: ci.buildNumber,
        releaseTagPattern: env.RELEASE_TAG_PATTERN ?? 'v*',
        notes: ci.notes,
      };
    },
  };
}

const USAGE = `usage: build.js check | run [--builder auto|buildx|buildah] [--format env|json]

The image build of buildspecs/build-image.yml, from the CodeBuild project's environment:
SERVICE BUILD_CONTEXT IMAGE_REPOSITORY RELEASE_TAG_PATTERN SOURCE_URL IMAGE_PLATFORM
[BUILD_CACHE_TAG], and the commit, ref and build number CodeBuild sets.
  check   validate every input and print the tags; nothing is asked of the registry
  run     build and push (or promote) the image; with --format env, print the exported
          variables (SERVICE IMAGE_REPOSITORY IMAGE_TAG IMAGE_TAGS IMAGE_DIGEST GIT_COMMIT GIT_REF
          IMAGE_BUILT) as bash assignments on stdout; everything else goes to stderr
Exit status: 0 done, 1 error (what, the value, the fix), 2 usage.`;

/**
 * @param {string[]} argv
 * @param {NodeJS.ProcessEnv} env
 * @returns {Promise<number>}
 */
async function main(argv, env) {
  const [command, ...rest] = argv;
  let builderChoice = 'auto';
  let format = 'text';
  for (let i = 0; i < rest.length; i += 1) {
    const arg = rest[i];
    const value = rest[i + 1];
    if (arg === '--builder' && value !== undefined) builderChoice = value;
    else if (arg === '--format' && (value === 'env' || value === 'json')) format = value;
    else {
      process.stderr.write(`build.js: unknown argument ${JSON.stringify(arg)}\n${USAGE}\n`);
      return 2;
    }
    i += 1;
  }
  if (command !== 'check' && command !== 'run') {
    process.stderr.write(`${USAGE}\n`);
    return command === '--help' || command === '-h' ? 0 : 2;
  }
  const log = (/** @type {string} */ line) => process.stderr.write(`build: ${line}\n`);
  try {
    const builder = resolveBuilder(builderChoice, env);
    const plan = prepareBuild(
      requestFromEnvironment(env, builder, new Date(), process.cwd()),
      ENV_NAMES,
    );
    if (command === 'check') {
      for (const note of plan.notes) log(`note: ${note}`);
      log(`${plan.service}: ${plan.repository}, tags ${plan.tags.tags.join(' ')}`);
      return 0;
    }
    const client = new registry.RegistryClient(plan.host, { env });
    const result = await runBuild(plan, {
      client,
      env,
      log,
      output: (text) => process.stderr.write(text),
    });
    if (format === 'env') process.stdout.write(formatEnv(result));
    else if (format === 'json') process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
    return 0;
  } catch (error) {
    if (error instanceof BuildInputError) {
      for (const problem of error.problems) process.stderr.write(`build-image: ${problem}\n`);
      return 1;
    }
    if (error instanceof BuilderError || error instanceof registry.RegistryError) {
      process.stderr.write(`build-image: ${error.message}\n`);
      return 1;
    }
    throw error;
  }
}

module.exports = {
  BUILDERS,
  PLATFORMS,
  BuildInputError,
  BuilderError,
  ENV_NAMES,
  builderCommands,
  formatEnv,
  prepareBuild,
  requestFromEnvironment,
  resolveBuilder,
  runBuild,
  withDockerConfig,
};

if (require.main === module) {
  void main(process.argv.slice(2), process.env).then((status) => {
    process.exitCode = status;
  });
}
