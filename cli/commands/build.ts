/**
 * `ship build [service…]`: builds and pushes the images of the app's services exactly as the
 * CodeBuild buildspec does, by running the same code (core/build.js): the same tags, every label
 * of IMAGE_LABELS, the immutable tag pushed alone and the others added through the registry API,
 * a commit already built promoted without a build, the digest read back. For any CI: the commit,
 * ref, build number and build project come from the CI's environment (core/ci.js: GitHub Actions,
 * GitLab CI, Jenkins), from flags, or from the git checkout.
 */
import * as path from 'node:path';
import {
  BuildInputError,
  BuilderError,
  prepareBuild,
  resolveBuilder,
  runBuild,
  withDockerConfig,
  type BuildPlan,
  type BuildResult,
  type InputNames,
} from '../../core/build';
import { ciBuild, parseGitRef, type CiBuild } from '../../core/ci';
import { TagInputError, inputsFromGit } from '../../core/image-tags';
import { RegistryClient, RegistryError, isLoopback } from '../../core/registry';
import { hostedSourceUrl } from '../../lib/config';
import { REGISTRY_PASSWORD_ENV, type ShipContext } from '../context';
import { parseRegistryUrl } from '../registries';
import { EXIT, ShipError, UsageError, formatJson } from '../output';
import { formatTable } from '../table';

/** The flags of `ship build` (the global --registry, --registry-user, --repository-prefix too). */
export interface BuildFlags {
  readonly commit?: string;
  readonly ref?: string;
  readonly buildNumber?: string;
  readonly project?: string;
  readonly buildContext?: string;
  readonly dockerfile?: string;
  readonly sourceDir?: string;
  readonly sourceUrl?: string;
  readonly platform?: string;
  readonly builder?: string;
  readonly cacheTag?: string;
}

/** How `ship build` names its inputs in messages: the flag, and what to pass. */
const FLAG_NAMES: InputNames = {
  service: { name: 'the service', fix: 'name services of the app configuration' },
  repository: {
    name: 'the repository',
    fix: 'check --registry <host[:port]> and --repository-prefix <prefix>',
  },
  context: {
    name: 'the build context',
    fix: 'pass --source-dir <the source checkout> (services build from their buildContext in it) or, for one service, --build-context <dir>',
  },
  platform: { name: '--platform', fix: 'pass --platform linux/amd64 or linux/arm64' },
  sourceUrl: {
    name: 'the source URL',
    fix: "pass --source-url <the source repository's web address> (the org.opencontainers.image.source label)",
  },
  cacheTag: { name: '--cache-tag', fix: 'pass a tag such as buildcache, or none' },
  dockerfile: {
    name: '--dockerfile',
    fix: 'pass the Dockerfile to build with, e.g. incluster/Dockerfile',
  },
  buildProject: {
    name: '--project',
    fix: 'pass --project <name of what numbers the builds>, e.g. --project jenkins:dockercoins, or no --build-number',
  },
};

/** The platform of this machine, the builder's default. */
function hostPlatform(): string {
  return process.arch === 'arm64' ? 'linux/arm64' : 'linux/amd64';
}

function tagInputError(error: unknown): never {
  if (error instanceof TagInputError) throw new ShipError(error.message);
  throw error;
}

export async function buildCommand(
  ctx: ShipContext,
  serviceNames: readonly string[],
  flags: BuildFlags,
): Promise<number> {
  const { env, cwd } = ctx.deps;
  const settings = ctx.settings();
  const registryUrl = ctx.options.registry;
  if (registryUrl === undefined) {
    throw new UsageError(
      'where to push? Pass --registry <host[:port]>, e.g. --registry registry.example.com:30500 ' +
        '(repositories are <prefix>/<service> with --repository-prefix <prefix>, else <service>).',
      'build',
    );
  }
  const location = parseRegistryUrl(registryUrl, env);
  if (
    (flags.buildContext !== undefined || flags.dockerfile !== undefined) &&
    serviceNames.length !== 1
  ) {
    throw new UsageError(
      `--build-context and --dockerfile are those of one image: name exactly one service.`,
      'build',
    );
  }
  // An image the app's configuration does not name (the in-cluster deployer's own) builds with an
  // explicit --build-context; its repository is named as a service's would be.
  const services: { name: string; buildContext: string }[] =
    serviceNames.length === 0
      ? [...settings.config.services]
      : serviceNames.map((name) => {
          const known = settings.config.services.find((s) => s.name === name);
          if (known !== undefined) return known;
          if (flags.buildContext === undefined) ctx.service(name, 'build');
          return { name, buildContext: flags.buildContext ?? '' };
        });

  // The build's identity: flags, else the CI, else the checkout.
  let ci: CiBuild;
  try {
    ci = ciBuild(env);
  } catch (error) {
    tagInputError(error);
  }
  const sourceDir = path.resolve(cwd, flags.sourceDir ?? '.');
  let checkout: ReturnType<typeof inputsFromGit> | undefined;
  let checkoutProblem: string | undefined;
  try {
    checkout = inputsFromGit(sourceDir);
  } catch (error) {
    if (!(error instanceof TagInputError)) throw error;
    checkoutProblem = error.message;
  }
  const flagCommit = flags.commit?.toLowerCase();
  if (flagCommit !== undefined && !/^[0-9a-f]{40}$/.test(flagCommit)) {
    throw new UsageError(
      `--commit ${JSON.stringify(flags.commit)} is not a full commit id: give the 40-hex id (git rev-parse HEAD).`,
      'build',
    );
  }
  const commit = flagCommit ?? ci.commit ?? checkout?.commit;
  if (commit === undefined) {
    throw new ShipError(
      `which commit? No CI variable names it, no --commit, and ${sourceDir} is not a usable git checkout (${checkoutProblem ?? 'unknown'}). ` +
        'Run ship build in the checkout, or pass --commit <40-hex id>.',
    );
  }
  // The image is built from the files in the checkout: it must be the commit the labels name.
  if (checkout !== undefined && checkout.commit !== commit) {
    throw new ShipError(
      `${sourceDir} is checked out at ${checkout.commit}, but the build is of commit ${commit} ` +
        `(${flagCommit !== undefined ? '--commit' : `the ${ci.ci} environment`}): its image would carry a revision it was not built from. ` +
        `Check out ${commit} there, or pass --commit ${checkout.commit}.`,
    );
  }
  let ref;
  try {
    ref =
      flags.ref !== undefined
        ? parseGitRef(flags.ref, '--ref')
        : (ci.ref ?? (checkout?.commit === commit ? checkout.ref : { kind: 'none' as const }));
  } catch (error) {
    tagInputError(error);
  }
  let buildNumber = ci.buildNumber;
  if (flags.buildNumber !== undefined) {
    if (!/^[1-9][0-9]{0,15}$/.test(flags.buildNumber)) {
      throw new UsageError(
        `--build-number ${JSON.stringify(flags.buildNumber)} is not a build number (a positive integer such as 42).`,
        'build',
      );
    }
    buildNumber = Number(flags.buildNumber);
  }
  const buildProject = flags.project ?? ci.buildProject;
  // Tags at the commit make releases only locally: in a CI, the ref says whether this is a tag build.
  const tagsAtCommit = ci.ci === 'none' && flags.ref === undefined ? checkout?.tagsAtCommit : [];
  const notes = [
    ...ci.notes,
    ...(flags.ref === undefined && ci.ref === undefined ? (checkout?.notes ?? []) : []),
  ];
  const sourceUrl = flags.sourceUrl ?? ci.sourceUrl ?? hostedSourceUrl(settings.config.source);

  let builder: ReturnType<typeof resolveBuilder>;
  const created = ctx.deps.now();
  const plans: BuildPlan[] = [];
  const problems: string[] = [];
  try {
    builder = resolveBuilder(flags.builder ?? 'auto', env);
  } catch (error) {
    if (error instanceof BuildInputError) throw new UsageError(error.message, 'build');
    throw error;
  }
  // Every service is checked before anything is pushed: one bad input pushes nothing at all.
  for (const service of services) {
    const prefix = ctx.options.repositoryPrefix;
    const repository = `${location.host}/${prefix === undefined ? '' : `${prefix}/`}${service.name}`;
    try {
      plans.push(
        prepareBuild(
          {
            service: service.name,
            repository,
            context: flags.buildContext ?? path.join(sourceDir, service.buildContext),
            ...(flags.dockerfile === undefined ? {} : { dockerfile: flags.dockerfile }),
            platform: flags.platform ?? hostPlatform(),
            sourceUrl,
            cacheTag: flags.cacheTag,
            builder,
            buildProject,
            created,
            cwd,
            tagInputs: () => ({
              commit,
              ref,
              tagsAtCommit,
              buildNumber,
              releaseTagPattern: settings.releaseTagPattern,
              notes,
            }),
          },
          FLAG_NAMES,
        ),
      );
    } catch (error) {
      if (!(error instanceof BuildInputError)) throw error;
      problems.push(...error.problems.map((problem) => `${service.name}: ${problem}`));
    }
  }
  if (problems.length > 0) {
    throw new ShipError(
      `nothing was built or pushed:\n${[...new Set(problems)].map((p) => `  ${p}`).join('\n')}`,
    );
  }

  const log = (line: string): void => void ctx.io.stderr.write(`${line}\n`);
  const results: BuildResult[] = [];
  const run = async (buildEnv: NodeJS.ProcessEnv): Promise<void> => {
    const client = new RegistryClient(location.host, {
      env: buildEnv,
      ...(location.explicitScheme ? { baseUrl: location.baseUrl } : {}),
    });
    for (const plan of plans) {
      results.push(
        await runBuild(plan, {
          client,
          env: buildEnv,
          log,
          output: (text) => void ctx.io.stderr.write(text),
        }),
      );
    }
  };
  // The builder speaks plain HTTP where registry.js does: loopback, or an http:// --registry.
  const buildEnv: NodeJS.ProcessEnv =
    location.baseUrl.startsWith('http://') && !isLoopback(location.host)
      ? { ...env, REGISTRY_INSECURE: 'true' }
      : { ...env };
  const user = ctx.options.registryUser;
  try {
    if (user !== undefined) {
      const password = env[REGISTRY_PASSWORD_ENV];
      if (password === undefined || password === '') {
        throw new UsageError(
          `--registry-user ${user} needs the password in ${REGISTRY_PASSWORD_ENV} (never on the command line).`,
          'build',
        );
      }
      await withDockerConfig(location.host, { username: user, password }, (dir) =>
        run({ ...buildEnv, DOCKER_CONFIG: dir }),
      );
    } else {
      await run(buildEnv);
    }
  } catch (error) {
    if (error instanceof BuilderError || error instanceof RegistryError) {
      const done = results.map((r) => `${r.service} (${r.digest})`).join(', ');
      throw new ShipError(`${error.message}${done === '' ? '' : `. Done before it: ${done}`}`);
    }
    throw error;
  }

  if (ctx.options.json) {
    ctx.io.stdout.write(formatJson(results));
    return EXIT.ok;
  }
  ctx.io.stdout.write(
    formatTable(
      [{ header: 'SERVICE' }, { header: 'BUILT' }, { header: 'IMAGE' }, { header: 'TAGS' }],
      results.map((r) => [
        r.service,
        r.built ? 'built' : 'promoted',
        `${r.repository}@${r.digest}`,
        r.tags.join(','),
      ]),
    ),
  );
  return EXIT.ok;
}
