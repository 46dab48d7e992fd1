import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import type { RegistryUser, RunningRegistry } from './registry';

/**
 * A real git checkout of a DockerCoins-like source, and the registry seen directly through its API
 * (never through the code under test), for the tests of image builds (`ship build`, the templates).
 */

export function git(dir: string, ...args: string[]): string {
  const result = spawnSync(
    'git',
    [
      '-c',
      'user.name=Ship Test',
      '-c',
      'user.email=ship-test@example.com',
      '-c',
      'init.defaultBranch=main',
      ...args,
    ],
    { cwd: dir, encoding: 'utf8' },
  );
  if (result.status !== 0) throw new Error(`git ${args.join(' ')}: ${result.stderr}`);
  return result.stdout.trim();
}

/** Commits the files and returns the new HEAD commit id. */
export function commitFiles(dir: string, files: Record<string, string>, message: string): string {
  for (const [name, content] of Object.entries(files)) {
    mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    writeFileSync(path.join(dir, name), content);
  }
  git(dir, 'add', '-A');
  git(dir, 'commit', '--quiet', '-m', message);
  return git(dir, 'rev-parse', 'HEAD');
}

/**
 * The test process's environment without any CI's variables: a test run inside GitHub Actions or
 * GitLab CI must not leak its own commit and ref into the build under test.
 */
export function withoutCi(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  return Object.fromEntries(
    Object.entries(env).filter(
      ([key]) =>
        !/^(GITHUB_|GITLAB_|CI_|CODEBUILD_|JENKINS_|BUILD_NUMBER$|JOB_NAME$|GIT_COMMIT$|GIT_BRANCH$|GIT_URL$|BRANCH_NAME$|TAG_NAME$|CHANGE_ID$|DOCKER_CONFIG$|REGISTRY_)/.test(
          key,
        ),
    ),
  );
}

const MANIFEST_ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Reads a registry with one user's Basic credentials, straight through the HTTP API. */
export class RegistryReader {
  private readonly headers: Record<string, string>;

  constructor(
    private readonly registry: RunningRegistry,
    user: RegistryUser,
  ) {
    this.headers = {
      authorization: `Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`,
    };
  }

  async tags(repository: string): Promise<string[]> {
    const response = await fetch(`${this.registry.url}/v2/${repository}/tags/list`, {
      headers: this.headers,
    });
    if (response.status === 404) return [];
    if (!response.ok) throw new Error(`tags/list of ${repository}: ${response.status}`);
    return [...(((await response.json()) as { tags: string[] | null }).tags ?? [])].sort();
  }

  async catalog(): Promise<string[]> {
    const response = await fetch(`${this.registry.url}/v2/_catalog`, { headers: this.headers });
    if (!response.ok) throw new Error(`_catalog: ${response.status}`);
    return ((await response.json()) as { repositories: string[] | null }).repositories ?? [];
  }

  async manifest(
    repository: string,
    reference: string,
  ): Promise<{ digest: string; bytes: Buffer; mediaType: string; configDigest: string }> {
    const response = await fetch(`${this.registry.url}/v2/${repository}/manifests/${reference}`, {
      headers: { ...this.headers, accept: MANIFEST_ACCEPT },
    });
    if (!response.ok) throw new Error(`manifest ${repository}:${reference}: ${response.status}`);
    const bytes = Buffer.from(await response.arrayBuffer());
    const json = JSON.parse(bytes.toString('utf8')) as { config?: { digest: string } };
    return {
      digest: response.headers.get('docker-content-digest') ?? 'missing',
      bytes,
      mediaType: response.headers.get('content-type') ?? 'missing',
      configDigest: json.config?.digest ?? 'missing',
    };
  }

  async labels(repository: string, reference: string): Promise<Record<string, string>> {
    const manifest = await this.manifest(repository, reference);
    const config = await fetch(
      `${this.registry.url}/v2/${repository}/blobs/${manifest.configDigest}`,
      { headers: this.headers },
    );
    return ((await config.json()) as { config: { Labels: Record<string, string> } }).config.Labels;
  }

  /** Puts the manifest of one tag under another, as an outside push would. */
  async copyTag(repository: string, from: string, to: string): Promise<void> {
    const source = await this.manifest(repository, from);
    const response = await fetch(`${this.registry.url}/v2/${repository}/manifests/${to}`, {
      method: 'PUT',
      headers: { ...this.headers, 'content-type': source.mediaType },
      body: source.bytes,
    });
    if (response.status !== 201) throw new Error(`PUT ${repository}:${to}: ${response.status}`);
  }
}
