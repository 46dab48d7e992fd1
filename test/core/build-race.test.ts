import { tmpdir } from 'node:os';
import { ENV_NAMES, prepareBuild, runBuild, type BuildPlan } from '../../core/build';
import { RegistryClient, RevisionMismatchError } from '../../core/registry';
import { Buildah, fixtureContext } from '../support/buildah';
import { RunningRegistry, startRegistry } from '../support/registry';

// core/build.js with buildah, when another build of the same commit pushes the commit tag while
// this one builds: the distribution registry would take a second push (its tags are mutable), so
// the build looks again before pushing and promotes the other image, after the revision check.
// The builder is real (buildah); only the moment of the other push is staged, inside the build.

const COMMIT = '6e0de7938dda3b0c5d3c6b2e1d1f0a9b8c7d6e5f';
let buildah: Buildah;
let registry: RunningRegistry;
let base: string;

beforeAll(async () => {
  buildah = new Buildah();
  base = buildah.baseImage();
  registry = await startRegistry();
});

afterAll(async () => {
  await registry?.stop();
});

function plan(repository: string): BuildPlan {
  return prepareBuild(
    {
      service: 'rng',
      repository: `${registry.host}/${repository}`,
      context: fixtureContext(base, 'ours'),
      platform: 'linux/amd64',
      sourceUrl: 'https://example.com/acme/dockercoins',
      builder: 'buildah',
      buildProject: 'local:test',
      created: new Date(),
      cwd: tmpdir(),
      tagInputs: () => ({
        commit: COMMIT,
        ref: { kind: 'branch', name: 'main' },
        buildNumber: 3,
        releaseTagPattern: 'v*',
      }),
    },
    ENV_NAMES,
  );
}

/** Runs the build; during `buildah bud`, "another build" pushes its image of `revision`. */
function raceWith(
  repository: string,
  revision: string,
): { run: ReturnType<typeof runBuild>; commands: string[]; lines: string[] } {
  const image = `${registry.host}/${repository}:${COMMIT.slice(0, 12)}`;
  const commands: string[] = [];
  const env = { ...buildah.env, BUILDAH_ISOLATION: 'chroot' };
  const lines: string[] = [];
  const run = runBuild(plan(repository), {
    client: new RegistryClient(registry.host, { env }),
    env,
    log: (line) => lines.push(line),
    output: () => undefined,
    exec: (argv) => {
      commands.push(argv.slice(0, 2).join(' '));
      buildah.run(argv.slice(1));
      if (argv[1] === 'bud') {
        const other = `localhost/other-build:${revision.slice(0, 7)}`;
        buildah.bud(fixtureContext(base, 'theirs'), other, [
          '--label',
          `org.opencontainers.image.revision=${revision}`,
        ]);
        buildah.push(other, image);
      }
      return Promise.resolve(0);
    },
  });
  return { run, commands, lines };
}

test('Given another build of the commit pushing first, When buildah has built, Then nothing is pushed and the other image is promoted', async () => {
  const { run, commands, lines } = raceWith('race/same', COMMIT);
  const result = await run;

  expect(commands).toEqual(['buildah bud']);
  expect(result.built).toBe(false);
  expect(lines.join('\n')).toContain('was pushed by another build');
  const client = new RegistryClient(registry.host);
  expect(result.digest).toBe(await client.tagDigest('race/same', COMMIT.slice(0, 12)));
  expect(await client.tagDigest('race/same', 'main-6e0de79-3')).toBe(result.digest);
});

test('Given another image (of another commit) taking the commit tag meanwhile, When buildah has built, Then the revision mismatch fails the build and no other tag is added', async () => {
  const { run, commands } = raceWith('race/other', 'f'.repeat(40));

  await expect(run).rejects.toThrow(RevisionMismatchError);
  expect(commands).toEqual(['buildah bud']);
  const client = new RegistryClient(registry.host);
  expect(await client.tagDigest('race/other', 'main-6e0de79-3')).toBeUndefined();
});
