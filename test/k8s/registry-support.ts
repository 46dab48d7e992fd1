import { readFileSync, readdirSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { REGISTRY_KUSTOMIZE_DIR } from '../../lib/k8s/registry';
import { kustomize } from './kubectl';

// Shared by the registry tests: typed views of what `kubectl kustomize` renders.

export type K8sObject = KubernetesObject;

export interface Container {
  name: string;
  image: string;
  command?: string[];
  env?: { name: string; value?: string }[];
  ports?: { name?: string; containerPort: number }[];
  readinessProbe?: Probe;
  livenessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: Record<string, unknown> & {
    capabilities?: { drop?: string[]; add?: string[] };
  };
  volumeMounts?: { name: string; mountPath: string; readOnly?: boolean }[];
}

export interface Probe {
  httpGet?: { path: string; port: string | number; scheme?: string };
  tcpSocket?: { port: string | number };
  exec?: unknown;
}

export interface Volume {
  name: string;
  configMap?: { name: string };
  secret?: { secretName: string; optional?: boolean };
  persistentVolumeClaim?: { claimName: string };
}

export interface PodSpec {
  containers: Container[];
  volumes?: Volume[];
  securityContext?: Record<string, unknown>;
  serviceAccountName?: string;
  automountServiceAccountToken?: boolean;
  enableServiceLinks?: boolean;
}

/** The parsed config.yml of the registry (only what the tests read is typed). */
export interface RegistryConfig {
  storage: Record<string, Record<string, unknown> | undefined>;
  http: { addr: string; debug?: { addr: string } } & Record<string, unknown>;
  auth?: { htpasswd?: { realm: string; path: string } };
  health?: { storagedriver?: { enabled?: boolean; interval?: string; threshold?: number } };
  [key: string]: unknown;
}

/** `kubectl kustomize <dir>`, parsed. */
export const render = kustomize;

/** Every directory under k8s/registry with a kustomization.yaml, relative, with its kind. */
export function kustomizations(): { dir: string; kind: string }[] {
  const found: { dir: string; kind: string }[] = [];
  const walk = (dir: string): void => {
    for (const entry of readdirSync(dir)) {
      const full = path.join(dir, entry);
      if (statSync(full).isDirectory()) walk(full);
      else if (entry === 'kustomization.yaml') {
        const { kind } = parse(readFileSync(full, 'utf8')) as {
          kind?: string;
        };
        found.push({
          dir: path.relative(REGISTRY_KUSTOMIZE_DIR, dir),
          kind: kind ?? 'Kustomization',
        });
      }
    }
  };
  walk(REGISTRY_KUSTOMIZE_DIR);
  return found.sort((a, b) => a.dir.localeCompare(b.dir));
}

export function one(objects: K8sObject[], kind: string): K8sObject {
  const found = objects.filter((o) => o.kind === kind);
  if (found.length !== 1) throw new Error(`expected one ${kind}, found ${found.length}`);
  return found[0]!;
}

export function registryPodSpec(objects: K8sObject[]): PodSpec {
  const deployment = one(objects, 'Deployment') as K8sObject & {
    spec: { template: { spec: PodSpec } };
  };
  return deployment.spec.template.spec;
}

export function registryContainer(objects: K8sObject[]): Container {
  const container = registryPodSpec(objects).containers.find((c) => c.name === 'registry');
  if (container === undefined) throw new Error('no container "registry"');
  return container;
}

export function registryConfig(objects: K8sObject[]): RegistryConfig {
  const configMap = one(objects, 'ConfigMap') as K8sObject & { data: Record<string, string> };
  const text = configMap.data['config.yml'];
  if (text === undefined) throw new Error('the ConfigMap has no config.yml');
  return parse(text) as RegistryConfig;
}

/** The port number an `addr` such as ":5000" or "0.0.0.0:5001" listens on. */
export function portOf(addr: string): number {
  const match = /:(\d+)$/.exec(addr);
  if (match === null) throw new Error(`no port in ${addr}`);
  return Number(match[1]);
}

/** A container port given by name or number, as a number. */
export function containerPort(container: Container, port: string | number): number {
  if (typeof port === 'number') return port;
  const found = container.ports?.find((p) => p.name === port);
  if (found === undefined) throw new Error(`container ${container.name} has no port ${port}`);
  return found.containerPort;
}

export const RENDERED = {
  base: path.join(REGISTRY_KUSTOMIZE_DIR, 'base'),
  s3: path.join(REGISTRY_KUSTOMIZE_DIR, 'overlays', 's3'),
  tls: path.join(REGISTRY_KUSTOMIZE_DIR, 'overlays', 'tls'),
};
