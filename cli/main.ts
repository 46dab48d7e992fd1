/**
 * The `ship` command line: parses arguments (node:util parseArgs, strict), prints help, runs one
 * command and turns what happened into an exit code (0 done, 1 failure, 2 usage). bin/ship.js
 * calls {@link runShip} with the process's streams; tests call it with buffers.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { ConfigError } from '../lib/config';
import { DEFAULT_VERIFY_DEADLINE_SECONDS } from '../core/verify';
import { buildCommand } from './commands/build';
import { historyCommand } from './commands/history';
import { deployCommand, rollbackCommand } from './commands/deploy';
import { imagesCommand } from './commands/images';
import { pauseCommand } from './commands/pause';
import { statusCommand } from './commands/status';
import { tagsCommand } from './commands/tags';
import { REGISTRY_PASSWORD_ENV, ShipContext, type CliDeps, type GlobalOptions } from './context';
import { RegistryAccessError } from './images';
import { EXIT, ShipError, UsageError, type CliIo } from './output';
import { SettingsFileError } from './settings';

type Options = NonNullable<ParseArgsConfig['options']>;
type Values = Record<string, string | boolean | string[] | undefined>;

const CONFIG_OPTIONS: Options = {
  config: { type: 'string' },
  set: { type: 'string', short: 'c', multiple: true },
};
const REGISTRY_OPTIONS: Options = {
  region: { type: 'string' },
  registry: { type: 'string' },
  'registry-user': { type: 'string' },
  'repository-prefix': { type: 'string' },
};
const CLUSTER_OPTIONS: Options = {
  region: { type: 'string' },
  kubeconfig: { type: 'string' },
  context: { type: 'string' },
  env: { type: 'string' },
};
const ROLLOUT_OPTIONS: Options = {
  'no-wait': { type: 'boolean' },
  'no-rollback': { type: 'boolean' },
  timeout: { type: 'string' },
  'pull-registry': { type: 'string' },
};
const COMMON: Options = {
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
};

const CONFIG_HELP = `  --config <file>        the app's cdk.json (default: the one of this checkout)
  -c, --set <key=value>  override a configuration key, as \`cdk -c\` (repeatable)`;
const REGISTRY_HELP = `  --region <region>      AWS region of ECR and EKS (default: AWS_REGION, AWS_DEFAULT_REGION)
  --registry <url>       read images from this OCI registry instead of ECR, e.g. http://127.0.0.1:30500
  --registry-user <name> basic-auth user for --registry; password in ${REGISTRY_PASSWORD_ENV}
                         (default: the credentials \`docker login\` stored, if any)
  --repository-prefix <p> repositories in --registry are <p>/<service> (default: <service>)`;
const CLUSTER_HELP = `  --env <name>           the environment (default: the only one; status and history: all)
  --kubeconfig <file>    reach the cluster through a kubeconfig instead of EKS by name
  --context <name>       the kubeconfig context (default: its current-context)`;
const ROLLOUT_HELP = `  --no-wait              do not follow nor verify the rollout (default: verify it, as the deployer does)
  --no-rollback          leave a rollout that fails verification as it is (default: roll it back to
                         the last image verified Ready there, and verify that)
  --timeout <seconds>    the verify deadline, from the patch (default: ${DEFAULT_VERIFY_DEADLINE_SECONDS})
  --pull-registry <host[:port]>
                         with --registry: the registry as the nodes reach it, written in the image
                         (default: the address the Deployment already pulls from)`;
const COMMON_HELP = `  --json                 one JSON document on stdout, for scripts
  -h, --help             this help`;

interface Command {
  readonly summary: string;
  readonly usage: string;
  readonly details: string;
  readonly options: Options;
  readonly optionHelp: string;
  readonly positionals: number;
  run(ctx: ShipContext, positionals: string[], values: Values): Promise<number>;
}

const COMMANDS: Record<string, Command> = {
  tags: {
    summary: 'the tags the current git checkout would get',
    usage: 'ship tags [--git-dir <dir>] [--build-number <n>]',
    details:
      "Computes the tags with the buildspec's own code (core/image-tags.js) and the app's\n" +
      'release tag pattern: the commit tag, release tags at HEAD, and with --build-number the\n' +
      'sortable <branch>-<sha7>-<build> tag.',
    options: {
      'git-dir': { type: 'string' },
      'build-number': { type: 'string' },
      ...CONFIG_OPTIONS,
    },
    optionHelp: `  --git-dir <dir>        the checkout to read (default: the current directory)
  --build-number <n>     the build number for the sortable tag
${CONFIG_HELP}`,
    positionals: 0,
    run: (ctx, _p, values) =>
      Promise.resolve(
        tagsCommand(ctx, {
          ...(values['git-dir'] === undefined ? {} : { 'git-dir': values['git-dir'] as string }),
          ...(values['build-number'] === undefined
            ? {}
            : { 'build-number': values['build-number'] as string }),
        }),
      ),
  },
  images: {
    summary: 'images per service: tags by digest, commit, push (ECR) or build time, size, scans',
    usage: 'ship images [service]',
    details:
      'One row per image (manifest digest) with every tag that names it, newest first. From ECR,\n' +
      'or from any OCI distribution registry with --registry (catalog, tags lists, manifests; the\n' +
      "time is the image config's created, as the CREATED column says). Exit status 1 when a\n" +
      'repository is not there.',
    options: { ...CONFIG_OPTIONS, ...REGISTRY_OPTIONS },
    optionHelp: `${REGISTRY_HELP}\n${CONFIG_HELP}`,
    positionals: 1,
    run: (ctx, positionals) => imagesCommand(ctx, positionals[0]),
  },
  status: {
    summary: 'what runs where, its rollout, and the newest image built for it',
    usage: 'ship status [--env <name>]',
    details:
      'Per environment and service: the running tag, digest, commit, build and when it was\n' +
      'deployed; the rollout judged as `kubectl rollout status` judges it; the newest image built\n' +
      "for the environment's branches or releases. Flags drift and paused services.\n" +
      'Exit status 1 when a cluster or registry could not be read.',
    options: { ...CONFIG_OPTIONS, ...REGISTRY_OPTIONS, ...CLUSTER_OPTIONS },
    optionHelp: `${CLUSTER_HELP}\n${REGISTRY_HELP}\n${CONFIG_HELP}`,
    positionals: 0,
    run: (ctx) => statusCommand(ctx),
  },
  deploy: {
    summary: 'deploy a tag, pinned by the digest it names now',
    usage: 'ship deploy <service> <tag> [--env <name>] [--allow-older] [--allow-build-tag]',
    details:
      "Through the deployer's own plan: the image is <repository>:<tag>@<digest>, the Deployment\n" +
      'gets the same annotations, and the PATCH is conditional on what was read. An image older\n' +
      'than the running build is refused unless --allow-older (or use ship rollback). Only commit\n' +
      "and release tags deploy (the deployer's rule): --allow-build-tag lets a branch or pr- tag\n" +
      'deploy to an environment that takes no release tags. Automatic deploys stay as they are\n' +
      '(paused or not: a paused service is said to stay paused). The rollout is verified as the\n' +
      'deployer verifies it (Ready, or failed: image pull, crash loop, deadline); a failed one is\n' +
      'rolled back to the last image verified Ready there unless --no-rollback. Exit status 1 when\n' +
      'verification fails.',
    options: {
      ...CONFIG_OPTIONS,
      ...REGISTRY_OPTIONS,
      ...CLUSTER_OPTIONS,
      ...ROLLOUT_OPTIONS,
      'allow-older': { type: 'boolean' },
      'allow-build-tag': { type: 'boolean' },
    },
    optionHelp: `  --allow-older          deploy even if the running build is newer
  --allow-build-tag      deploy a branch or pr- tag (environments without release tags only)
${ROLLOUT_HELP}\n${CLUSTER_HELP}\n${REGISTRY_HELP}\n${CONFIG_HELP}`,
    positionals: 2,
    run: (ctx, positionals, values) =>
      deployCommand(ctx, positionals[0], positionals[1], {
        ...rolloutOptions(values, 'deploy'),
        allowOlder: values['allow-older'] === true,
        allowBuildTag: values['allow-build-tag'] === true,
      }),
  },
  rollback: {
    summary: 'deploy the image before the current one (or --to <tag>) and pause',
    usage: 'ship rollback <service> [--to <tag>] [--no-pause] [--env <name>]',
    details:
      "Without --to: the newest earlier revision in the Deployment's ReplicaSet history whose image\n" +
      'differs, pinned by its digest (which must still be in the registry). Automatic deploys of\n' +
      'the service are paused in the same PATCH, so the next build does not undo the rollback;\n' +
      '`ship resume` turns them back on. Verified as `ship deploy` is, with the same rollback rule.',
    options: {
      ...CONFIG_OPTIONS,
      ...REGISTRY_OPTIONS,
      ...CLUSTER_OPTIONS,
      ...ROLLOUT_OPTIONS,
      to: { type: 'string' },
      'no-pause': { type: 'boolean' },
    },
    optionHelp: `  --to <tag>             roll back to this tag instead
  --no-pause             leave automatic deploys on
${ROLLOUT_HELP}\n${CLUSTER_HELP}\n${REGISTRY_HELP}\n${CONFIG_HELP}`,
    positionals: 1,
    run: (ctx, positionals, values) =>
      rollbackCommand(ctx, positionals[0], {
        ...rolloutOptions(values, 'rollback'),
        to: values.to as string | undefined,
        pause: values['no-pause'] !== true,
      }),
  },
  pause: {
    summary: 'pause automatic deploys of a service',
    usage: 'ship pause <service> [--env <name>]',
    details:
      'Builds still push images; the deployer skips the service (reason "paused") until\n' +
      '`ship resume`. `ship deploy` still works.',
    options: { ...CONFIG_OPTIONS, ...CLUSTER_OPTIONS },
    optionHelp: `${CLUSTER_HELP}\n${CONFIG_HELP}`,
    positionals: 1,
    run: (ctx, positionals) => pauseCommand(ctx, positionals[0], true),
  },
  resume: {
    summary: 'resume automatic deploys of a service',
    usage: 'ship resume <service> [--env <name>]',
    details: 'The next successful build of the service deploys again.',
    options: { ...CONFIG_OPTIONS, ...CLUSTER_OPTIONS },
    optionHelp: `${CLUSTER_HELP}\n${CONFIG_HELP}`,
    positionals: 1,
    run: (ctx, positionals) => pauseCommand(ctx, positionals[0], false),
  },
  history: {
    summary: 'rollout history: revision, tag, commit, build, change-cause',
    usage: 'ship history <service> [--env <name>]',
    details:
      "From the Deployment's ReplicaSets (what `kubectl rollout history` reads), newest first,\n" +
      'with the commit and build the annotations recorded for each revision.',
    options: { ...CONFIG_OPTIONS, ...CLUSTER_OPTIONS },
    optionHelp: `${CLUSTER_HELP}\n${CONFIG_HELP}`,
    positionals: 1,
    run: (ctx, positionals) => historyCommand(ctx, positionals[0]),
  },
  build: {
    summary: 'build and push images as CodeBuild does, from any CI',
    usage: 'ship build [service…] --registry <host[:port]> [--repository-prefix <p>]',
    details:
      "Runs the buildspec's own build (core/build.js) for each service named (default: all of the\n" +
      'app): the same tags and labels; a commit already built is promoted (revision label checked),\n' +
      'not rebuilt; else the immutable tag alone is pushed and the others added through the registry\n' +
      'API; the digest every tag names is read back. Commit, ref, build number and build project come\n' +
      'from GitHub Actions, GitLab CI or Jenkins, else from the flags, else from the git checkout.\n' +
      'Every input of every service is checked before anything is pushed. docs/build.md has the rest.',
    options: {
      ...CONFIG_OPTIONS,
      ...REGISTRY_OPTIONS,
      commit: { type: 'string' },
      ref: { type: 'string' },
      'build-number': { type: 'string' },
      project: { type: 'string' },
      'build-context': { type: 'string' },
      dockerfile: { type: 'string' },
      'source-dir': { type: 'string' },
      'source-url': { type: 'string' },
      platform: { type: 'string' },
      builder: { type: 'string' },
      'cache-tag': { type: 'string' },
    },
    optionHelp: `  --registry <host[:port]> the registry to push to (http:// or https:// may prefix it)
  --repository-prefix <p> repositories are <p>/<service> (default: <service>)
  --registry-user <name> basic-auth user; password in ${REGISTRY_PASSWORD_ENV}
                         (default: the docker config's credentials, DOCKER_CONFIG)
  --builder <b>          auto (default: buildx if \`docker buildx version\` works, else buildah),
                         buildx or buildah
  --commit <40-hex>      the commit (default: the CI's, else HEAD of --source-dir)
  --ref <ref>            refs/heads/<b>, refs/tags/<t>, refs/pull/<n>/head (default: the CI's,
                         else the checkout's branch)
  --build-number <n>     the build number (default: the CI's run or pipeline number)
  --project <name>       what numbers the builds (default: github:…, gitlab:…, jenkins:…)
  --source-dir <dir>     the source checkout; services build from their buildContext in it (default: .)
  --build-context <dir>  the build context of the one image named (which may be outside the
                         app's services, e.g. ship-deployer)
  --dockerfile <file>    the Dockerfile of the one image named (default: the context's Dockerfile)
  --source-url <url>     the org.opencontainers.image.source label (default: the CI's, else the app's source)
  --platform <p>         linux/amd64 or linux/arm64 (default: this machine's)
  --cache-tag <tag>      buildx only: BuildKit's registry cache under this tag (default: none)
${CONFIG_HELP}`,
    positionals: 100,
    run: (ctx, positionals, values) =>
      buildCommand(ctx, positionals, {
        commit: values.commit as string | undefined,
        ref: values.ref as string | undefined,
        buildNumber: values['build-number'] as string | undefined,
        project: values.project as string | undefined,
        buildContext: values['build-context'] as string | undefined,
        dockerfile: values.dockerfile as string | undefined,
        sourceDir: values['source-dir'] as string | undefined,
        sourceUrl: values['source-url'] as string | undefined,
        platform: values.platform as string | undefined,
        builder: values.builder as string | undefined,
        cacheTag: values['cache-tag'] as string | undefined,
      }),
  },
};

export const USAGE = `ship: DockerCoins from commit to cluster. Which tag is which commit, what runs
where; deploy, roll back and pause, through the deployer's own code.

Usage: ship <command> [arguments] [options]

Commands:
${Object.entries(COMMANDS)
  .map(([name, c]) => `  ${name.padEnd(10)} ${c.summary}`)
  .join('\n')}

\`ship <command> --help\` tells more. Every command takes --json and --help.

Exit status: 0 done, 1 failure (the message names the value and the fix), 2 usage error.
`;

function commandHelp(command: Command): string {
  return `Usage: ${command.usage} [options]

${command.summary[0]!.toUpperCase()}${command.summary.slice(1)}.
${command.details}

Options:
${command.optionHelp}
${COMMON_HELP}
`;
}

/** `--pull-registry host[:port]`: with --registry only, a host as image references start with. */
function pullRegistryOption(values: Values, command: string): string | undefined {
  const text = values['pull-registry'] as string | undefined;
  if (text === undefined) return undefined;
  if (values.registry === undefined) {
    throw new UsageError(
      '--pull-registry applies to --registry only; images from ECR are pulled from ECR.',
      command,
    );
  }
  const label = '[a-zA-Z0-9]([a-zA-Z0-9-]*[a-zA-Z0-9])?';
  if (!new RegExp(`^${label}(\\.${label})*(:[0-9]{1,5})?$`).test(text)) {
    throw new UsageError(
      `--pull-registry ${JSON.stringify(text)} is not a registry host: give host[:port] as image ` +
        'references start with, no scheme, no path, e.g. 127.0.0.1:30500 or registry.example.com.',
      command,
    );
  }
  return text;
}

function rolloutOptions(
  values: Values,
  command: string,
): { wait: boolean; timeoutSeconds: number; rollback: boolean } {
  const text = values.timeout as string | undefined;
  let timeoutSeconds = DEFAULT_VERIFY_DEADLINE_SECONDS;
  if (text !== undefined) {
    if (!/^[1-9][0-9]{0,5}$/.test(text)) {
      throw new UsageError(
        `--timeout ${JSON.stringify(text)} is not a number of seconds (1 to 999999).`,
        command,
      );
    }
    timeoutSeconds = Number(text);
  }
  return {
    wait: values['no-wait'] !== true,
    timeoutSeconds,
    rollback: values['no-rollback'] !== true,
  };
}

/** Runs one command line; resolves to the exit status. Never throws for a user's mistake. */
export async function runShip(argv: readonly string[], io: CliIo, deps: CliDeps): Promise<number> {
  const { name, rest } = splitCommand(argv);
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    (name === undefined ? io.stderr : io.stdout).write(USAGE);
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS[name];
  if (command === undefined) {
    io.stderr.write(
      `ship: unknown command ${JSON.stringify(name)}; the commands are ${Object.keys(COMMANDS).join(', ')}. ` +
        'Run ship --help.\n',
    );
    return EXIT.usage;
  }
  let ctx: ShipContext | undefined;
  try {
    let parsed: { values: Values; positionals: string[] };
    try {
      parsed = parseArgs({
        args: [...rest],
        // Every command takes the global options, so one alias serves them all (as kubectl's flags);
        // each command's help lists those it uses.
        options: {
          ...CONFIG_OPTIONS,
          ...REGISTRY_OPTIONS,
          ...CLUSTER_OPTIONS,
          ...command.options,
          ...COMMON,
        },
        allowPositionals: true,
        strict: true,
      }) as { values: Values; positionals: string[] };
    } catch (error) {
      throw new UsageError(
        (error as Error).message.replace(/\. To specify a positional.*$/s, '.'),
        name,
      );
    }
    const { values, positionals } = parsed;
    if (values.help === true) {
      io.stdout.write(commandHelp(command));
      return EXIT.ok;
    }
    if (positionals.length > command.positionals) {
      throw new UsageError(
        `too many arguments: ${positionals
          .slice(command.positionals)
          .map((p) => JSON.stringify(p))
          .join(' ')}; usage: ${command.usage}`,
        name,
      );
    }
    for (const [key, value] of Object.entries(values)) {
      if (value === '') throw new UsageError(`--${key} needs a value.`, name);
    }
    const options: GlobalOptions = {
      config: values.config as string | undefined,
      context: (values.set as string[] | undefined) ?? [],
      region: values.region as string | undefined,
      registry: values.registry as string | undefined,
      registryUser: values['registry-user'] as string | undefined,
      repositoryPrefix: values['repository-prefix'] as string | undefined,
      pullRegistry: pullRegistryOption(values, name),
      kubeconfig: values.kubeconfig as string | undefined,
      kubeContext: values.context as string | undefined,
      environment: values.env as string | undefined,
      json: values.json === true,
    };
    ctx = new ShipContext(options, io, deps);
    return await command.run(ctx, positionals, values);
  } catch (error) {
    ctx?.progress.done();
    if (error instanceof UsageError) {
      io.stderr.write(
        `ship ${name}: ${error.message}\nRun ship ${error.command ?? name} --help for usage.\n`,
      );
      return EXIT.usage;
    }
    if (error instanceof ConfigError) {
      io.stderr.write(`ship ${name}: configuration: ${error.message}\n`);
      return EXIT.failure;
    }
    if (
      error instanceof ShipError ||
      error instanceof SettingsFileError ||
      error instanceof RegistryAccessError ||
      isKnownError(error)
    ) {
      io.stderr.write(`ship ${name}: ${(error as Error).message}\n`);
      return EXIT.failure;
    }
    io.stderr.write(
      `ship ${name}: unexpected error, please report it: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
    return EXIT.failure;
  } finally {
    ctx?.close();
  }
}

/** Every option of any command: which take a value, so that a value is never taken for the command. */
const ALL_OPTIONS: Options = Object.assign(
  {},
  COMMON,
  ...Object.values(COMMANDS).map((c) => c.options),
) as Options;

/**
 * The command and the rest of the arguments. Options may come before the command, as kubectl's
 * flags may (`ship --registry <url> images`): the command is the first argument that is neither an
 * option nor the value of an option that takes one. Whether an option is valid for the command is
 * for parseArgs to say, wherever it stands.
 */
export function splitCommand(argv: readonly string[]): {
  name: string | undefined;
  rest: string[];
} {
  const takesValue = (arg: string): boolean => {
    if (arg.startsWith('--')) {
      if (arg.includes('=')) return false;
      return ALL_OPTIONS[arg.slice(2)]?.type === 'string';
    }
    if (arg.length !== 2) return false; // -cKEY=VALUE carries its value
    return Object.values(ALL_OPTIONS).some((o) => o.short === arg[1] && o.type === 'string');
  };
  for (let i = 0; i < argv.length; i += 1) {
    const arg = argv[i]!;
    if (arg === '--' || !arg.startsWith('-') || arg === '-') {
      if (arg === '--') break;
      return { name: arg, rest: [...argv.slice(0, i), ...argv.slice(i + 1)] };
    }
    if (takesValue(arg)) i += 1;
  }
  // No command: `ship --help` (or only options) gets the general usage.
  const help = argv.find((a) => a === '--help' || a === '-h');
  return { name: help ?? undefined, rest: [] };
}

/** Errors of our own modules whose message is complete (named classes, not a TypeError). */
function isKnownError(error: unknown): boolean {
  return (
    error instanceof Error &&
    [
      'TransientError',
      'PermanentError',
      'RetryLaterError',
      'ConflictError',
      'KubeconfigError',
      'KubeCredentialError',
      'RegistryError',
      'NotFoundError',
      'TagInputError',
    ].includes(error.name)
  );
}
