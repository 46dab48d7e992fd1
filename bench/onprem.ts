/**
 * The in-cluster deployer's reaction, with real parts: the distribution registry (our
 * k8s/registry config with the deployer's notification endpoint), the deployer started from its
 * bundled entry point as a child process (as its container runs it), and the in-test API server
 * with its controller simulation.
 *
 * - Event path, warm: a commit tag pushed (the manifest PUT the registry answers 201 for, as the
 *   last step of `ship build`'s push) → the registry's own notification dispatch → the deployer
 *   reads the labels, plans and PATCHes → the PATCH reaches the API server.
 * - Reconcile path: the same push into a registry whose notification never comes (a lost one),
 *   caught up by the reconcile loop at a short interval; each push lands at a random point of
 *   the interval, as a lost notification would.
 * - Baselines in the same run: pollers at Keel's default poll schedule (`@every 1m`) and Argo CD
 *   Image Updater's default interval (2 m). A poller notices a push only at its next poll, so its
 *   wait is the push's random phase in the interval; that wait is taken from the reconcile path
 *   measured here (our loop IS such a poller), scaled to their intervals, plus our measured PATCH.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { stringify } from 'yaml';
import { IMAGE_LABELS, computeTags } from '../core/image-tags';
import { Buildah } from '../test/support/buildah';
import {
  registryConfigWithNotifications,
  startDeployer,
  type RunningDeployerProcess,
} from '../test/support/incluster';
import {
  startKubeApiServer,
  type KubeApiServer,
  type KubeDeployment,
} from '../test/support/kube-apiserver';
import { freePort, startRegistry, type RunningRegistry } from '../test/support/registry';
import type { Verdict } from './checks';
import { median } from './measure';
import { formatTable } from './table';

/** Warm pushes measured (after one warm-up push, reported apart). */
export const ONPREM_WARM_PUSHES = 6;
/** Lost notifications caught up. */
export const ONPREM_CATCH_UPS = 3;
/** The reconcile interval of the catch-up runs, seconds (the shipped default is 60). */
export const CATCH_UP_INTERVAL_SECONDS = 3;
/** The goal of the issue: push accepted → PATCH accepted, registry dispatch included. */
export const EVENT_PATH_GOAL_MS = 1000;
/** Keel's default poll schedule (`keel.sh/pollSchedule`, `@every 1m`). */
const KEEL_INTERVAL_SECONDS = 60;
/** Argo CD Image Updater's default check interval (`--interval`, 2m). */
const ARGO_INTERVAL_SECONDS = 120;

const TOKEN = 'bench-notification-token-0123456789abcdef';
const SA_TOKEN = 'bench-service-account-token';
const SA_USER = 'system:serviceaccount:ship-deployer:ship-deployer';
const CI = { username: 'ci', password: 'ci-password' };
const DEPLOYER = { username: 'ship-deployer', password: 'deployer-password' };
const PULL_HOST = '127.0.0.1:30500';
const NAMESPACE = 'dockercoins-staging';
const SERVICE = 'hasher';
const PROJECT = 'bench/dockercoins';
const MANIFEST_TYPES = [
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

export interface OnpremFigures {
  /** Push accepted → PATCH received, ms, the warm event path. */
  readonly eventMs: readonly number[];
  /** The first push of the run (connections, caches cold), ms. */
  readonly firstEventMs: number;
  /** The deployer's own share: notification received → PATCH answered, ms (its log). */
  readonly deployerMs: readonly number[];
  /** Push accepted → PATCH received, ms, with the notification lost. */
  readonly catchUpMs: readonly number[];
  readonly catchUpIntervalSeconds: number;
  readonly pollers: readonly { name: string; intervalSeconds: number }[];
}

interface Staged {
  readonly stageTag: string;
  readonly commitTag: string;
  /** The build's other tags (the sortable branch tag), put after the commit tag as builds do. */
  readonly otherTags: readonly string[];
}

/** Builds `count` images of hasher with our labels, each a new commit and build number, pushed under a tag the deployer ignores. */
function stageImages(
  buildah: Buildah,
  registry: RunningRegistry,
  base: string,
  firstBuild: number,
  count: number,
): Staged[] {
  const staged: Staged[] = [];
  for (let i = 0; i < count; i += 1) {
    const buildNumber = firstBuild + i;
    const commit = buildNumber.toString(16).padStart(8, '0').repeat(5);
    const tags = computeTags({
      commit,
      ref: { kind: 'branch', name: 'main' },
      buildNumber,
      releaseTagPattern: 'v*',
    });
    const labels: Record<string, string> = {
      [IMAGE_LABELS.revision]: commit,
      [IMAGE_LABELS.source]: 'https://github.com/example/dockercoins',
      [IMAGE_LABELS.version]: tags.immutableTag,
      [IMAGE_LABELS.created]: new Date().toISOString(),
      [IMAGE_LABELS.buildNumber]: String(buildNumber),
      [IMAGE_LABELS.buildProject]: PROJECT,
      [IMAGE_LABELS.gitRef]: 'refs/heads/main',
      [IMAGE_LABELS.service]: SERVICE,
    };
    const container = buildah.run(['from', base]);
    buildah.run([
      'config',
      ...Object.entries(labels).flatMap(([k, v]) => ['--label', `${k}=${v}`]),
      container,
    ]);
    const local = `localhost/bench-${SERVICE}:${tags.immutableTag}`;
    buildah.run(['commit', '--quiet', container, local]);
    buildah.run(['rm', container]);
    const stageTag = `stage-${buildNumber}`;
    buildah.push(local, `${registry.host}/${SERVICE}:${stageTag}`, `${CI.username}:${CI.password}`);
    staged.push({
      stageTag,
      commitTag: tags.immutableTag,
      otherTags: tags.tags.filter((t) => t !== tags.immutableTag),
    });
  }
  return staged;
}

const basicAuth = `Basic ${Buffer.from(`${CI.username}:${CI.password}`).toString('base64')}`;

/**
 * Puts the staged manifest under its commit tag (what a push's last request is), then under the
 * build's other tags, as `ship build` retags; resolves with the moment of the commit tag's 201,
 * when the push is accepted.
 */
async function pushCommitTag(registry: RunningRegistry, image: Staged): Promise<number> {
  const got = await fetch(`${registry.url}/v2/${SERVICE}/manifests/${image.stageTag}`, {
    headers: { Accept: MANIFEST_TYPES, Authorization: basicAuth },
  });
  if (got.status !== 200) throw new Error(`GET manifest ${image.stageTag}: ${got.status}`);
  const bytes = Buffer.from(await got.arrayBuffer());
  const type = got.headers.get('content-type') ?? MANIFEST_TYPES.split(', ')[0]!;
  const put = await fetch(`${registry.url}/v2/${SERVICE}/manifests/${image.commitTag}`, {
    method: 'PUT',
    headers: { 'Content-Type': type, Authorization: basicAuth },
    body: bytes,
  });
  const accepted = performance.now();
  if (put.status !== 201) throw new Error(`PUT manifest ${image.commitTag}: ${put.status}`);
  for (const tag of image.otherTags) {
    const retag = await fetch(`${registry.url}/v2/${SERVICE}/manifests/${tag}`, {
      method: 'PUT',
      headers: { 'Content-Type': type, Authorization: basicAuth },
      body: bytes,
    });
    if (retag.status !== 201) throw new Error(`PUT manifest ${tag}: ${retag.status}`);
  }
  return accepted;
}

function deployment(): KubeDeployment {
  const labels = { 'app.kubernetes.io/name': SERVICE };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: SERVICE, annotations: {} },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: SERVICE, image: `dockercoins/${SERVICE}:v0.1` }] },
      },
    },
  };
}

async function startOurDeployer(
  work: string,
  kube: KubeApiServer,
  registry: RunningRegistry,
  port: number,
  reconcileSeconds: number,
): Promise<RunningDeployerProcess> {
  const dir = mkdtempSync(path.join(work, 'deployer-'));
  writeFileSync(
    path.join(dir, 'config.yaml'),
    stringify({
      registry: { url: registry.url, pullHost: PULL_HOST },
      repositoryPrefix: '',
      releaseTagPattern: 'v*',
      services: [{ service: SERVICE }],
      environments: [{ name: 'staging', namespace: NAMESPACE, branches: ['main'] }],
      verify: { deadlineSeconds: 120, pollSeconds: 0.1 },
      rollback: true,
      reconcileSeconds,
    }),
  );
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(path.join(dir, 'ca.crt'), kube.caPem);
  writeFileSync(path.join(dir, 'sa-token'), SA_TOKEN);
  const docker = path.join(dir, 'docker');
  mkdirSync(docker);
  const auth = Buffer.from(`${DEPLOYER.username}:${DEPLOYER.password}`).toString('base64');
  writeFileSync(
    path.join(docker, 'config.json'),
    JSON.stringify({ auths: { [registry.host]: { auth } } }),
  );
  return startDeployer({
    port,
    env: {
      SHIP_DEPLOYER_CONFIG: path.join(dir, 'config.yaml'),
      SHIP_NOTIFICATION_TOKEN_FILE: path.join(dir, 'token'),
      SHIP_WEBHOOK_URL_FILE: path.join(dir, 'no-webhook'),
      SHIP_KUBE_URL: kube.url,
      SHIP_KUBE_CA_FILE: path.join(dir, 'ca.crt'),
      SHIP_KUBE_TOKEN_FILE: path.join(dir, 'sa-token'),
      DOCKER_CONFIG: docker,
    },
  });
}

/** Resolves with the time the API server receives the next PATCH of the Deployment. */
function nextPatch(kube: KubeApiServer): Promise<number> {
  return new Promise((resolve) => {
    kube.beforePatch = ({ name }) => {
      if (name !== SERVICE) return;
      kube.beforePatch = undefined;
      resolve(performance.now());
    };
  });
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

export async function measureOnprem(scratchRoot: string): Promise<OnpremFigures> {
  const work = mkdtempSync(path.join(scratchRoot, 'onprem-'));
  const buildah = new Buildah(mkdtempSync(path.join(tmpdir(), 'ship-bench-buildah-')));
  const kube = await startKubeApiServer({
    clusterName: 'in-cluster',
    staticTokens: { [SA_TOKEN]: SA_USER },
  });
  kube.putDeployment(deployment(), { namespace: NAMESPACE });
  // The simulated cluster's clock: one second per 20 ms, so verifications end quickly.
  const ticker = setInterval(() => kube.tick(1), 20);
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const base = buildah.baseImage('localhost/ship-bench-base:1');

    // ---- the event path ----
    const port = await freePort();
    const registry = await startRegistry({
      config: registryConfigWithNotifications(port, TOKEN),
      users: [CI, DEPLOYER],
    });
    stops.push(() => registry.stop());
    const deployer = await startOurDeployer(work, kube, registry, port, 3600);
    stops.push(() => deployer.stop());
    const pushes = stageImages(buildah, registry, base, 1, ONPREM_WARM_PUSHES + 1);
    // The staging tags' notifications arrive and are ignored before the first measured push.
    await deployer.waitForLog(
      (l) => l.msg === 'event ignored' && l.tag === pushes[pushes.length - 1]!.stageTag,
      'the last staging tag ignored',
    );
    const eventMs: number[] = [];
    const deployerMs: number[] = [];
    for (const image of pushes) {
      const from = deployer.logs.length;
      const patched = nextPatch(kube);
      const accepted = await pushCommitTag(registry, image);
      eventMs.push((await patched) - accepted);
      const deployed = await deployer.waitForLog(
        (l) => l.msg === 'deploy' && l.tag === image.commitTag,
        `the deploy of ${image.commitTag}`,
        from,
      );
      const targets = (deployed.deployed ?? []) as { latencyMs?: number }[];
      const latency = Number(targets[0]?.latencyMs);
      if (Number.isFinite(latency)) deployerMs.push(latency);
      await deployer.waitForLog((l) => l.msg === 'verdict', 'its verdict', from);
    }
    const firstEventMs = eventMs.shift()!;
    deployerMs.shift();
    await deployer.stop();
    await registry.stop();
    stops.length = 0;

    // ---- the reconcile path: a registry that never notifies ----
    const silent = await startRegistry({
      config: { ...registryConfigWithNotifications(port, TOKEN), notifications: undefined },
      users: [CI, DEPLOYER],
    });
    stops.push(() => silent.stop());
    const reconciler = await startOurDeployer(
      work,
      kube,
      silent,
      await freePort(),
      CATCH_UP_INTERVAL_SECONDS,
    );
    stops.push(() => reconciler.stop());
    const lost = stageImages(buildah, silent, base, 100, ONPREM_CATCH_UPS);
    const catchUpMs: number[] = [];
    for (const image of lost) {
      const from = reconciler.logs.length;
      // A push lands anywhere in the interval.
      await sleep(Math.random() * CATCH_UP_INTERVAL_SECONDS * 1000);
      const patched = nextPatch(kube);
      const accepted = await pushCommitTag(silent, image);
      catchUpMs.push((await patched) - accepted);
      await reconciler.waitForLog((l) => l.msg === 'verdict', 'its verdict', from);
    }

    return {
      eventMs,
      firstEventMs,
      deployerMs,
      catchUpMs,
      catchUpIntervalSeconds: CATCH_UP_INTERVAL_SECONDS,
      pollers: [
        { name: "Keel's default poll (@every 1m)", intervalSeconds: KEEL_INTERVAL_SECONDS },
        {
          name: "Argo CD Image Updater's default interval (2m)",
          intervalSeconds: ARGO_INTERVAL_SECONDS,
        },
      ],
    };
  } finally {
    clearInterval(ticker);
    for (const stop of stops.reverse()) await stop().catch(() => undefined);
    await kube.stop();
    rmSync(buildah.root, { recursive: true, force: true });
  }
}

const max = (values: readonly number[]): number => Math.max(...values);
const ms = (value: number): string => value.toFixed(0);
const s = (valueMs: number): string => (valueMs / 1000).toFixed(1);

/**
 * A poller's push → PATCH, modelled: a push lands at a uniformly random point of the poll
 * interval, so the wait is half the interval on average and the whole interval at worst (the
 * reconcile rows measure exactly that on our own loop), plus the PATCH as our deployer makes it.
 */
function pollerMs(
  figures: OnpremFigures,
  intervalSeconds: number,
): { mean: number; worst: number } {
  const patch = median(figures.deployerMs);
  return { mean: (intervalSeconds * 1000) / 2 + patch, worst: intervalSeconds * 1000 + patch };
}

export function onpremTable(figures: OnpremFigures): string {
  const rows = [
    [
      `ours, the registry's notification (${figures.eventMs.length} warm pushes)`,
      ms(median(figures.eventMs)),
      ms(max(figures.eventMs)),
      `first push ${ms(figures.firstEventMs)} ms; the deployer's log, notification → PATCH answered: ${ms(median(figures.deployerMs))} ms`,
    ],
    [
      `ours, notification lost: reconcile every ${figures.catchUpIntervalSeconds} s (${figures.catchUpMs.length} pushes)`,
      ms(median(figures.catchUpMs)),
      ms(max(figures.catchUpMs)),
      `each: ${figures.catchUpMs.map(s).join(', ')} s; bound: one interval + one pass (shipped default: 60 s)`,
    ],
    ...figures.pollers.map((poller) => {
      const { mean, worst } = pollerMs(figures, poller.intervalSeconds);
      return [
        `poller, ${poller.name}`,
        ms(mean),
        ms(worst),
        'modelled: half the interval on average (mean, not median), the whole at worst, + our PATCH',
      ];
    }),
  ];
  return formatTable(
    [
      { header: 'push accepted → PATCH received', align: 'left' },
      { header: 'ms: median (pollers: mean)', align: 'right' },
      { header: 'ms: max (pollers: worst)', align: 'right' },
      { header: 'notes', align: 'left' },
    ],
    rows,
  );
}

export function onpremVerdicts(figures: OnpremFigures): Verdict[] {
  const event = median(figures.eventMs);
  const bound = figures.catchUpIntervalSeconds * 1000 + 2000;
  const pollers = figures.pollers.map((poller) => ({
    poller,
    expected: pollerMs(figures, poller.intervalSeconds).mean,
  }));
  return [
    {
      ok: event < EVENT_PATH_GOAL_MS,
      message:
        `On-prem push → PATCH through the registry's notification: median ${ms(event)} ms ` +
        `(goal under ${EVENT_PATH_GOAL_MS} ms) — ${event < EVENT_PATH_GOAL_MS ? 'met' : 'NOT met'}`,
    },
    {
      ok: max(figures.catchUpMs) <= bound,
      message:
        `On-prem lost notification caught up within ${s(max(figures.catchUpMs))} s at a ` +
        `${figures.catchUpIntervalSeconds} s reconcile interval (bound ${s(bound)} s: one interval + 2 s) — ` +
        `${max(figures.catchUpMs) <= bound ? 'met' : 'NOT met'}`,
    },
    ...pollers.map(({ poller, expected }) => ({
      ok: event < expected,
      message:
        `On-prem event path ${ms(event)} ms vs ${poller.name}: ${s(expected)} s ` +
        `— ${event < expected ? 'faster' : 'NOT faster'}`,
    })),
  ];
}
