import { spawnSync, SpawnSyncReturns } from 'node:child_process';
import {
  existsSync,
  mkdtempSync,
  readdirSync,
  realpathSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { REPO_ROOT } from '../support/app';

/** The repository's k8s/ folder. */
export const K8S = path.join(REPO_ROOT, 'k8s');

/** A container as the tests read it. */
export interface Container {
  name: string;
  image: string;
  [field: string]: unknown;
}

/** Runs the real kubectl; fails the test with its stderr when it is missing. */
export function kubectl(args: readonly string[], input?: string): SpawnSyncReturns<string> {
  const result = spawnSync('kubectl', args, {
    encoding: 'utf8',
    input,
    // No cluster is involved: every command here is local (kustomize, --local).
    env: { ...process.env, KUBECONFIG: '/dev/null' },
  });
  if (result.error !== undefined) {
    throw new Error(
      `kubectl could not run (${result.error.message}): install kubectl 1.27 or later.`,
    );
  }
  return result;
}

/** Parses a YAML stream of Kubernetes objects. */
export function parseObjects(text: string): KubernetesObject[] {
  return parseAllDocuments(text)
    .map((document) => document.toJS() as KubernetesObject | null)
    .filter((object): object is KubernetesObject => object !== null);
}

/** `kubectl kustomize <dir>`, parsed; throws with kubectl's message when it fails. */
export function kustomize(dir: string): KubernetesObject[] {
  const result = kubectl(['kustomize', dir]);
  if (result.status !== 0) throw new Error(`kubectl kustomize ${dir} failed:\n${result.stderr}`);
  return parseObjects(result.stdout);
}

/** apiVersion/kind/namespace/name: an object's identity in a rendered set. */
export function keyOf(object: KubernetesObject): string {
  return `${object.apiVersion}/${object.kind}/${object.metadata.namespace ?? ''}/${object.metadata.name}`;
}

/** The objects as a map keyed by {@link keyOf}; fails on a duplicate key. */
export function byKey(objects: readonly KubernetesObject[]): Map<string, KubernetesObject> {
  const map = new Map<string, KubernetesObject>();
  for (const object of objects) {
    if (map.has(keyOf(object))) throw new Error(`duplicate object ${keyOf(object)}`);
    map.set(keyOf(object), object);
  }
  return map;
}

export function ofKind(objects: readonly KubernetesObject[], kind: string): KubernetesObject[] {
  return objects.filter((object) => object.kind === kind);
}

export function find(
  objects: readonly KubernetesObject[],
  kind: string,
  name: string,
): KubernetesObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (found === undefined) throw new Error(`no ${kind} ${name} among the rendered objects`);
  return found;
}

/** The pod template's spec of a Deployment. */
export function podSpec(deployment: KubernetesObject): Record<string, unknown> {
  const spec = (deployment.spec as { template?: { spec?: Record<string, unknown> } }).template
    ?.spec;
  if (spec === undefined) throw new Error(`Deployment ${deployment.metadata.name} has no pod spec`);
  return spec;
}

export function containers(deployment: KubernetesObject): Container[] {
  return (podSpec(deployment).containers as Container[] | undefined) ?? [];
}

export function templateLabels(deployment: KubernetesObject): Record<string, string> {
  return (
    (deployment.spec as { template?: { metadata?: { labels?: Record<string, string> } } }).template
      ?.metadata?.labels ?? {}
  );
}

/** Every image of every container (init containers included) of the objects. */
export function images(objects: readonly KubernetesObject[]): Map<string, string> {
  const found = new Map<string, string>();
  for (const deployment of ofKind(objects, 'Deployment')) {
    const spec = podSpec(deployment);
    for (const field of ['initContainers', 'containers']) {
      for (const container of (spec[field] as Container[] | undefined) ?? []) {
        found.set(container.name, container.image);
      }
    }
  }
  return found;
}

/**
 * Folders under k8s/ that hold a kustomization, k8s/registry and k8s/deployer excepted: they are
 * dockercoins-ship's own (not DockerCoins'), and their tests check them (registry*.test.ts,
 * deployer*.test.ts).
 */
export function kustomizationDirs(): string[] {
  const found: string[] = [];
  const skipped = [path.join(K8S, 'registry'), path.join(K8S, 'deployer')];
  const walk = (dir: string): void => {
    if (existsSync(path.join(dir, 'kustomization.yaml'))) found.push(dir);
    for (const entry of readdirSync(dir)) {
      const child = path.join(dir, entry);
      if (statSync(child).isDirectory() && !skipped.includes(child)) walk(child);
    }
  };
  walk(K8S);
  return found.sort();
}

/** A path from folder `from` to `to` (kustomize refuses absolute resource paths). */
export function relativePath(from: string, to: string): string {
  return path.relative(realpathSync(from), realpathSync(to));
}

/** A fresh temporary folder, removed by {@link removeTempDirs}. */
const made: string[] = [];
export function tempDir(prefix: string): string {
  const dir = realpathSync(mkdtempSync(path.join(tmpdir(), `ship-${prefix}-`)));
  made.push(dir);
  return dir;
}
export function removeTempDirs(): void {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/**
 * `kubectl patch --local -f <object> --type <type> -p <patch> -o json`: the object as the API
 * server would store it after the patch, or kubectl's error.
 */
export function kubectlPatch<T = unknown>(
  object: unknown,
  patch: unknown,
  type: 'strategic' | 'merge' = 'strategic',
): { object: T } | { error: string } {
  const file = path.join(tempDir('patch'), 'object.json');
  writeFileSync(file, JSON.stringify(object));
  const result = kubectl([
    'patch',
    '--local',
    '-f',
    file,
    '--type',
    type,
    '-p',
    JSON.stringify(patch),
    '-o',
    'json',
  ]);
  return result.status === 0
    ? { object: JSON.parse(result.stdout) as T }
    : { error: result.stderr };
}

/** {@link kubectlPatch} that fails the test when kubectl refuses the patch. */
export function kubectlPatched<T>(
  object: T,
  patch: unknown,
  type: 'strategic' | 'merge' = 'strategic',
): T {
  const result = kubectlPatch<T>(object, patch, type);
  if ('error' in result) throw new Error(`kubectl patch failed:\n${result.error}`);
  return result.object;
}

/**
 * The paths (`a.b[0].c`) where two JSON-like values differ: what a patch or a transformation
 * changed, and nothing else.
 */
export function differences(a: unknown, b: unknown, at = ''): string[] {
  if (Array.isArray(a) && Array.isArray(b)) {
    const out: string[] = [];
    for (let i = 0; i < Math.max(a.length, b.length); i++) {
      out.push(...differences(a[i], b[i], `${at}[${i}]`));
    }
    return out;
  }
  const isObject = (v: unknown): v is Record<string, unknown> =>
    v !== null && typeof v === 'object' && !Array.isArray(v);
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    return keys.flatMap((key) => differences(a[key], b[key], at === '' ? key : `${at}.${key}`));
  }
  return Object.is(a, b) ? [] : [at];
}
