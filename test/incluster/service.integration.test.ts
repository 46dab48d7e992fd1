import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer, type Server as HttpServer } from 'node:http';
import { Socket, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { ANNOTATIONS } from '../../lib/deployer-contract';
import type { KubernetesObject } from '../../lib/k8s/kustomize';
import { K8S, kustomize } from '../k8s/kubectl';
import { REPO_ROOT } from '../support/app';
import { Buildah } from '../support/buildah';
import { RegistryReader, commitFiles, git, withoutCi } from '../support/build-source';
import {
  registryConfigWithNotifications,
  startDeployer,
  type LogLine,
  type RunningDeployerProcess,
} from '../support/incluster';
import {
  startKubeApiServer,
  type KubeApiServer,
  type KubeDeployment,
} from '../support/kube-apiserver';
import { rbacAuthorizer } from '../support/kube-rbac';
import { freePort, startRegistry, type RunningRegistry } from '../support/registry';

/**
 * The in-cluster deployer end to end, with real parts: the distribution registry (configured from
 * k8s/registry/base/config.yml, with htpasswd auth and a notifications endpoint to the deployer),
 * every image built and pushed by `ship build` itself (bin/ship.js as a GitHub Actions run starts
 * it, with buildah, from a git checkout: its tags, labels and push order), the deployer started
 * from its bundled entry point as a child process, and the in-test API server with its controller
 * simulation, enforcing the RBAC of k8s/deployer/base as `kubectl kustomize` renders it (the Role
 * ship-deployer bound to the service account ship-deployer/ship-deployer in each environment's
 * namespace). The simulated cluster's clock moves only while a case waits.
 */

const TOKEN = 'notification-token-for-tests-0123456789';
const SA_USER = 'system:serviceaccount:ship-deployer:ship-deployer';
const SA_TOKEN = 'service-account-token-for-tests';
const CI = { username: 'ci', password: 'ci-password' };
const DEPLOYER = { username: 'ship-deployer', password: 'deployer-password' };
const PULL_HOST = '127.0.0.1:30500';
const STAGING = 'dockercoins-staging';
const PRODUCTION = 'dockercoins';
const SERVICES = ['hasher', 'rng', 'webui', 'worker'];
/** The GitHub repository and workflow whose runs build the images (the build project). */
const GITHUB_REPOSITORY = 'example/dockercoins';
const WORKFLOW = `${GITHUB_REPOSITORY}/.github/workflows/ship.yml`;
const PROJECT = `github:${WORKFLOW}`;

let work: string;
let kube: KubeApiServer;
let registry: RunningRegistry;
let proxy: TcpProxy;
let deployer: RunningDeployerProcess | undefined;
let deployerPort: number;
let buildah: Buildah;
let ticker: NodeJS.Timeout | undefined;
/** The git checkout every image is built from, and the CI job's home folder. */
let source: string;
let ciHome: string;
/** The build the reconcile case deploys (the duplicate case sends its event again). */
let caughtUp: Built | undefined;
/** What the webhook receiver of the test got, in order. */
const webhooks: Record<string, unknown>[] = [];
let webhookServer: HttpServer;
let webhookUrl: string;

// ---- the registry: our config, plus the endpoint to the deployer ----

async function startOurRegistry(dataDir?: string): Promise<RunningRegistry> {
  return startRegistry({
    config: registryConfigWithNotifications(deployerPort, TOKEN),
    users: [CI, DEPLOYER],
    ...(dataDir === undefined ? {} : { dataDir }),
  });
}

/** A TCP proxy in front of the registry: the deployer reads through it, and a case takes it down. */
class TcpProxy {
  private server: Server | undefined;
  private readonly sockets = new Set<Socket>();
  constructor(
    readonly port: number,
    private target: () => number,
  ) {}
  async up(): Promise<void> {
    const server = createServer((client) => {
      const upstream = new Socket();
      this.sockets.add(client);
      this.sockets.add(upstream);
      upstream.connect(this.target(), '127.0.0.1');
      client.pipe(upstream).pipe(client);
      const close = (): void => {
        client.destroy();
        upstream.destroy();
        this.sockets.delete(client);
        this.sockets.delete(upstream);
      };
      client.on('error', close).on('close', close);
      upstream.on('error', close).on('close', close);
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', () => resolve()));
    this.server = server;
  }
  async down(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    if (server !== undefined) await new Promise<void>((resolve) => server.close(() => resolve()));
  }
}

// ---- the deployer ----

function deployerConfig(webhook: boolean, reconcileSeconds: number): string {
  return stringify({
    registry: { url: `http://127.0.0.1:${proxy.port}`, pullHost: PULL_HOST },
    repositoryPrefix: '',
    releaseTagPattern: 'v*',
    services: SERVICES.map((service) => ({ service })),
    environments: [
      { name: 'staging', namespace: STAGING, branches: ['main'] },
      { name: 'production', namespace: PRODUCTION, releaseTags: true },
    ],
    verify: { deadlineSeconds: 300, pollSeconds: 0.1 },
    rollback: true,
    reconcileSeconds,
    ...(webhook ? { webhook: { format: 'json' } } : {}),
  });
}

/**
 * Starts the deployer from its bundle. `reconcileSeconds` 3600: only the pass at start runs in
 * the cases that do not test the loop (a restarted deployer catches up at once).
 */
async function startOurDeployer(
  webhook: string | undefined,
  reconcileSeconds = 3600,
): Promise<RunningDeployerProcess> {
  const dir = mkdtempSync(path.join(work, 'deployer-'));
  writeFileSync(
    path.join(dir, 'config.yaml'),
    deployerConfig(webhook !== undefined, reconcileSeconds),
  );
  if (webhook !== undefined) writeFileSync(path.join(dir, 'webhook-url'), `${webhook}\n`);
  writeFileSync(path.join(dir, 'token'), `${TOKEN}\n`);
  writeFileSync(path.join(dir, 'ca.crt'), kube.caPem);
  writeFileSync(path.join(dir, 'sa-token'), SA_TOKEN);
  const dockerDir = path.join(dir, 'docker');
  writeDockerConfig(dockerDir, `127.0.0.1:${proxy.port}`, DEPLOYER);
  return startDeployer({
    port: deployerPort,
    env: {
      SHIP_DEPLOYER_CONFIG: path.join(dir, 'config.yaml'),
      SHIP_NOTIFICATION_TOKEN_FILE: path.join(dir, 'token'),
      SHIP_WEBHOOK_URL_FILE: path.join(dir, 'webhook-url'),
      SHIP_KUBE_URL: kube.url,
      SHIP_KUBE_CA_FILE: path.join(dir, 'ca.crt'),
      SHIP_KUBE_TOKEN_FILE: path.join(dir, 'sa-token'),
      DOCKER_CONFIG: dockerDir,
    },
  });
}

function writeDockerConfig(
  dir: string,
  host: string,
  user: { username: string; password: string },
): void {
  mkdirSync(dir, { recursive: true });
  const auth = Buffer.from(`${user.username}:${user.password}`).toString('base64');
  writeFileSync(path.join(dir, 'config.json'), JSON.stringify({ auths: { [host]: { auth } } }));
}

// ---- the cluster ----

function deploymentOf(service: string, annotations: Record<string, string> = {}): KubeDeployment {
  const labels = { 'app.kubernetes.io/name': service, 'app.kubernetes.io/part-of': 'dockercoins' };
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: service, annotations },
    spec: {
      replicas: 1,
      selector: { matchLabels: labels },
      template: {
        metadata: { labels },
        spec: { containers: [{ name: service, image: `dockercoins/${service}:v0.1` }] },
      },
    },
  };
}

/**
 * The RBAC of k8s/deployer/base as `kubectl kustomize` renders it: every Role, RoleBinding (and
 * ClusterRole, ClusterRoleBinding, were there any) the manifests apply, and nothing else.
 */
function renderedRbac(): KubernetesObject[] {
  const rbac = kustomize(path.join(K8S, 'deployer', 'base')).filter((o) =>
    o.apiVersion.startsWith('rbac.authorization.k8s.io/'),
  );
  // This cluster's namespaces are the environments of k8s/deployer/base/config.yaml: the Role and
  // its binding must be rendered in each, or every request of the deployer would be forbidden.
  for (const namespace of [STAGING, PRODUCTION]) {
    for (const kind of ['Role', 'RoleBinding']) {
      if (!rbac.some((o) => o.kind === kind && o.metadata.namespace === namespace)) {
        throw new Error(`k8s/deployer/base renders no ${kind} in namespace ${namespace}`);
      }
    }
  }
  return rbac;
}

/** Moves the simulated clock while a case waits for the deployer (one second per 20 ms). */
function startClock(): void {
  ticker ??= setInterval(() => kube.tick(1), 20);
}

function live(namespace: string, service: string): KubeDeployment {
  const found = kube.deployment(namespace, service);
  if (found === undefined) throw new Error(`no Deployment ${namespace}/${service}`);
  return found;
}

const imageOf = (namespace: string, service: string): string | undefined =>
  live(namespace, service).spec.template.spec.containers.find((c) => c.name === service)?.image;

// ---- builds: `ship build`, as a CI runs it ----

interface Built {
  readonly service: string;
  readonly commit: string;
  readonly commitTag: string;
  readonly tags: readonly string[];
  readonly digest: string;
}

/** What `ship build --json` prints for each service (docs/build.md). */
interface BuildOutput {
  readonly service: string;
  readonly imageTag: string;
  readonly tags: string[];
  readonly digest: string;
  readonly commit: string;
  readonly built: boolean;
}

/** A Dockerfile per service, FROM the base image made once for the whole file. */
function initSource(base: string): void {
  git(source, 'init', '--quiet');
  commitFiles(
    source,
    Object.fromEntries(
      SERVICES.flatMap((service) => [
        [`dockercoins/${service}/Dockerfile`, `FROM ${base}\nCOPY app.txt /app.txt\n`],
        [`dockercoins/${service}/app.txt`, `${service}\n`],
      ]),
    ),
    'the services',
  );
}

let changes = 0;
/** Commits a change to `service` on main: a commit no build has built yet. */
function commitChange(service: string): string {
  changes += 1;
  return commitFiles(
    source,
    { [`dockercoins/${service}/app.txt`]: `${service}, change ${changes}\n` },
    `${service}: change ${changes}`,
  );
}

/**
 * Builds and pushes `service` with `ship build`, as the GitHub Actions run number `run` of the
 * ship workflow does for a push of `ref` (refs/heads/<branch> or refs/tags/<tag>): the CLI's own
 * starter (bin/ship.js) in a child process, in the checkout at `commit` (default: a new commit on
 * main), with the CI's registry user and its password in SHIP_REGISTRY_PASSWORD, and buildah.
 * Tags, labels and the push order (the immutable tag, then the others through the registry API)
 * are ship build's own. Synchronous: nothing in this process (the API server, the proxy the
 * deployer reads the registry through) answers the deployer until the build is done.
 */
function build(service: string, ref: string, run: number, commit = commitChange(service)): Built {
  git(source, 'checkout', '--quiet', commit);
  let result;
  try {
    result = spawnSync(
      process.execPath,
      [
        path.join(REPO_ROOT, 'bin', 'ship.js'),
        'build',
        service,
        // The registry's port changes when a case restarts it.
        '--registry',
        registry.host,
        '--registry-user',
        CI.username,
        '--builder',
        'buildah',
        '--json',
      ],
      {
        cwd: source,
        encoding: 'utf8',
        env: {
          ...withoutCi(buildah.env),
          BUILDAH_ISOLATION: 'chroot',
          HOME: ciHome,
          SHIP_REGISTRY_PASSWORD: CI.password,
          GITHUB_ACTIONS: 'true',
          GITHUB_EVENT_NAME: 'push',
          GITHUB_REF: ref,
          GITHUB_SHA: commit,
          GITHUB_RUN_NUMBER: String(run),
          GITHUB_REPOSITORY,
          GITHUB_SERVER_URL: 'https://github.com',
          GITHUB_WORKFLOW: 'ship',
          GITHUB_WORKFLOW_REF: `${WORKFLOW}@${ref}`,
        },
      },
    );
  } finally {
    git(source, 'checkout', '--quiet', 'main');
  }
  if (result.status !== 0) {
    throw new Error(`ship build ${service} failed (${result.status}):\n${result.stderr}`);
  }
  const outputs = JSON.parse(result.stdout) as BuildOutput[];
  const [output] = outputs;
  // Every case pushes a commit never built: ship build must have built it, not promoted it.
  if (outputs.length !== 1 || output?.built !== true || output.commit !== commit) {
    throw new Error(`ship build ${service} did not build ${commit}:\n${result.stdout}`);
  }
  return {
    service,
    commit,
    commitTag: output.imageTag,
    tags: output.tags,
    digest: output.digest,
  };
}

const pinned = (built: Built, tag = built.commitTag): string =>
  `${PULL_HOST}/${built.service}:${tag}@${built.digest}`;

// ---- waiting on the deployer's decisions ----

const is =
  (msg: string, fields: Record<string, unknown> = {}) =>
  (line: LogLine): boolean =>
    line.msg === msg && Object.entries(fields).every(([k, v]) => line[k] === v);

async function waitFor(
  msg: string,
  fields: Record<string, unknown>,
  from: number,
): Promise<LogLine> {
  return deployer!.waitForLog(is(msg, fields), `"${msg}" ${JSON.stringify(fields)}`, from);
}

function notify(body: string, headers: Record<string, string>): Promise<Response> {
  return fetch(`${deployer!.url}/v1/registry-events`, { method: 'POST', headers, body });
}

/** Waits (on real time, as a safety net only) until `value()` gives something. */
async function until<T>(value: () => T | undefined, what: string): Promise<T> {
  for (let waited = 0; waited < 60_000; waited += 20) {
    const found = value();
    if (found !== undefined) return found;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${what} did not come within 60 s`);
}

const EVENTS_TYPE = 'application/vnd.docker.distribution.events.v1+json';

beforeAll(async () => {
  work = mkdtempSync(path.join(tmpdir(), 'ship-incluster-'));
  deployerPort = await freePort();
  kube = await startKubeApiServer({
    clusterName: 'in-cluster',
    staticTokens: { [SA_TOKEN]: SA_USER },
    authorize: rbacAuthorizer(renderedRbac()),
  });
  for (const namespace of [STAGING, PRODUCTION]) {
    for (const service of SERVICES) {
      const paused = namespace === STAGING && service === 'webui';
      kube.putDeployment(deploymentOf(service, paused ? { [ANNOTATIONS.paused]: 'true' } : {}), {
        namespace,
      });
    }
  }
  kube.tickUntil(
    () =>
      [STAGING, PRODUCTION].every((ns) =>
        SERVICES.every((s) => live(ns, s).status?.readyReplicas === 1),
      ),
    30,
    'the Deployments Ready before any build',
  );
  registry = await startOurRegistry();
  proxy = new TcpProxy(await freePort(), () => Number(registry.host.split(':')[1]));
  await proxy.up();
  buildah = new Buildah();
  source = mkdtempSync(path.join(work, 'source-'));
  initSource(buildah.baseImage());
  ciHome = mkdtempSync(path.join(work, 'ci-home-'));
  webhookServer = createHttpServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      webhooks.push(JSON.parse(body) as Record<string, unknown>);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => webhookServer.listen(0, '127.0.0.1', () => resolve()));
  const address = webhookServer.address();
  webhookUrl = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}/hook`;
  deployer = await startOurDeployer(webhookUrl);
  startClock();
});

afterAll(async () => {
  if (ticker !== undefined) clearInterval(ticker);
  await deployer?.stop();
  await proxy?.down();
  await registry?.stop();
  await kube?.stop();
  await new Promise((resolve) => webhookServer?.close(resolve));
});

// The cases run in order: each leaves the cluster as the next one expects (hasher verified in
// staging before it fails; worker's newer build before its older one).

test('a push to the build branch deploys to staging and is verified Ready; production is untouched', async () => {
  const from = deployer!.logs.length;
  const built = build('hasher', 'refs/heads/main', 1);
  const verdict = await waitFor('verdict', { deployment: 'hasher', environment: 'staging' }, from);
  expect(verdict.outcome).toBe('verified');
  expect(imageOf(STAGING, 'hasher')).toBe(pinned(built));
  const deployed = await waitFor('deploy', { source: 'notification', tag: built.commitTag }, from);
  expect(deployed.deployed).toEqual([
    { environment: 'staging', deployment: 'hasher', latencyMs: expect.any(Number) as number },
  ]);
  const annotations = live(STAGING, 'hasher').metadata.annotations ?? {};
  expect(annotations[ANNOTATIONS.verifiedImage]).toBe(pinned(built));
  expect(annotations[ANNOTATIONS.deployedBy]).toBe('deployer');
  expect(annotations[ANNOTATIONS.buildProject]).toBe(PROJECT);
  expect(annotations[ANNOTATIONS.buildNumber]).toBe('1');
  expect(JSON.parse(annotations[ANNOTATIONS.verification]!)).toMatchObject({
    state: 'verified',
    execution: 'incluster:ship-deployer-test',
    digest: built.digest,
  });
  expect(imageOf(PRODUCTION, 'hasher')).toBe('dockercoins/hasher:v0.1');
  // The sortable tag's own push was seen and left alone: the commit tag's push deploys.
  await waitFor('event ignored', { tag: built.tags[1], reason: 'tag-not-deployed' }, from);
  expect(
    await deployer!.metric('ship_deployer_deploys_total{environment="staging",service="hasher"}'),
  ).toBe(1);
  expect(
    await deployer!.metric('ship_deployer_verdicts_total{result="verified"}'),
  ).toBeGreaterThanOrEqual(1);
  expect(
    await deployer!.metric('ship_deployer_time_to_ready_seconds_count'),
  ).toBeGreaterThanOrEqual(1);
  // The webhook got the build's report: the SNS message's subject and text, and the verdict.
  const report = await until(() => webhooks.find((w) => w.commit === built.commit), 'the report');
  expect(report).toMatchObject({
    service: 'hasher',
    outcome: 'applied',
    verifications: ['verified'],
    digest: built.digest,
  });
  expect(report?.subject).toBe(
    `DockerCoins deploy: hasher ${built.commitTag} to staging: verified Ready`,
  );
  expect(report?.message).toContain(`Build: ${PROJECT}#1, commit `);
  expect(report?.message).toMatch(/Verification:\n- staging\/hasher: verified Ready/);
});

test('a release tag deploys to the release environment (production), pinned by digest', async () => {
  const from = deployer!.logs.length;
  // The release is a git tag on a new commit; the tag's workflow run builds it.
  const commit = commitChange('rng');
  git(source, 'tag', 'v1.0.0', commit);
  const built = build('rng', 'refs/tags/v1.0.0', 3, commit);
  const verdict = await waitFor('verdict', { deployment: 'rng', environment: 'production' }, from);
  expect(verdict.outcome).toBe('verified');
  expect(imageOf(PRODUCTION, 'rng')).toBe(pinned(built, 'v1.0.0'));
  expect(live(PRODUCTION, 'rng').metadata.annotations?.[ANNOTATIONS.gitRef]).toBe(
    'refs/tags/v1.0.0',
  );
  // The commit tag arrived first and waited for the release tag's push.
  await waitFor('push not deployed', { tag: built.commitTag, reason: 'not-the-deploy-tag' }, from);
  expect(imageOf(STAGING, 'rng')).toBe('dockercoins/rng:v0.1');
});

test('an older build pushed after a newer one is skipped (never downgraded)', async () => {
  let from = deployer!.logs.length;
  // Two commits of main; run 5 (of the newer) finishes first, then run 4 (of the older).
  const olderCommit = commitChange('worker');
  const newer = build('worker', 'refs/heads/main', 5);
  await waitFor(
    'verdict',
    { deployment: 'worker', environment: 'staging', outcome: 'verified' },
    from,
  );
  from = deployer!.logs.length;
  const older = build('worker', 'refs/heads/main', 4, olderCommit);
  const plan = await waitFor(
    'plan',
    { action: 'skip', deployment: 'worker', tag: older.commitTag },
    from,
  );
  expect(plan.reason).toBe('older-build');
  expect(imageOf(STAGING, 'worker')).toBe(pinned(newer));
  expect(await deployer!.metric('ship_deployer_skips_total{reason="older-build"}')).toBe(1);
});

test('a paused service is skipped', async () => {
  const from = deployer!.logs.length;
  const before = live(STAGING, 'webui').metadata.resourceVersion;
  const built = build('webui', 'refs/heads/main', 2);
  const plan = await waitFor(
    'plan',
    { action: 'skip', deployment: 'webui', tag: built.commitTag },
    from,
  );
  expect(plan.reason).toBe('paused');
  expect(live(STAGING, 'webui').metadata.resourceVersion).toBe(before);
  expect(imageOf(STAGING, 'webui')).toBe('dockercoins/webui:v0.1');
});

test('a failing image is rolled back to the last verified image and its digest rejected', async () => {
  const verified = live(STAGING, 'hasher').metadata.annotations?.[ANNOTATIONS.verifiedImage];
  expect(verified).toBeDefined();
  const from = deployer!.logs.length;
  const failing = build('hasher', 'refs/heads/main', 2);
  // build() ran synchronously: the API server in this process has not answered the deployer
  // yet, so the simulated kubelet crash-loops the image before any pod of it starts.
  kube.setFate(pinned(failing), { kind: 'crash-loop' });
  const verdict = await waitFor(
    'verdict',
    { deployment: 'hasher', environment: 'staging', tag: failing.commitTag },
    from,
  );
  expect(verdict.outcome).toBe('rolled-back');
  expect(imageOf(STAGING, 'hasher')).toBe(verified);
  const rejected = JSON.parse(
    live(STAGING, 'hasher').metadata.annotations?.[ANNOTATIONS.rejected] ?? '[]',
  ) as {
    digest: string;
  }[];
  expect(rejected.map((r) => r.digest)).toContain(failing.digest);
  expect(await deployer!.metric('ship_deployer_rollbacks_total{result="rolled-back"}')).toBe(1);
});

test('a bad secret, a malformed envelope, an oversized body, a pull event and a tag not ours are refused or ignored, nothing deployed', async () => {
  // What a deploy changes: the spec (generation) and our annotations. Status updates of rollouts
  // still settling move resourceVersion, so it is not compared.
  const state = (): unknown[] =>
    [STAGING, PRODUCTION].flatMap((ns) =>
      SERVICES.map((s) => [live(ns, s).metadata.generation, live(ns, s).metadata.annotations]),
    );
  const before = state();
  const push = JSON.stringify({
    events: [
      {
        id: 'forged-1',
        action: 'push',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: `sha256:${'a'.repeat(64)}`,
          repository: 'hasher',
          tag: 'abcdefabcdef',
        },
      },
    ],
  });
  const bad = await notify(push, {
    authorization: 'Bearer not-the-token',
    'content-type': EVENTS_TYPE,
  });
  expect(bad.status).toBe(401);
  const none = await notify(push, { 'content-type': EVENTS_TYPE });
  expect(none.status).toBe(401);
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': EVENTS_TYPE };
  const malformed = await notify('{"events": [{"action": "push"}]}', auth);
  expect(malformed.status).toBe(400);
  expect(((await malformed.json()) as { message: string }).message).toMatch(
    /events\[0\]\.id is missing/,
  );
  const notJson = await notify('{"events": [', auth);
  expect(notJson.status).toBe(400);
  const big = await notify(JSON.stringify({ events: [], pad: 'x'.repeat(2 * 1024 * 1024) }), auth);
  expect(big.status).toBe(413);
  const wrongType = await notify(push, {
    authorization: `Bearer ${TOKEN}`,
    'content-type': 'text/plain',
  });
  expect(wrongType.status).toBe(415);
  expect(
    await deployer!.metric('ship_deployer_notifications_refused_total{reason="unauthorized"}'),
  ).toBe(2);
  expect(
    await deployer!.metric('ship_deployer_notifications_refused_total{reason="malformed"}'),
  ).toBe(2);
  expect(
    await deployer!.metric('ship_deployer_notifications_refused_total{reason="too-large"}'),
  ).toBe(1);

  // Real pulls (GETs of a manifest: ship build's own read-back, the skopeo inspect below) and a
  // real push of a tag our builds never push.
  const from = deployer!.logs.length;
  const worker = build('worker', 'refs/heads/feature', 9);
  // `latest` is a tag ship build refuses to make: it comes from outside our builds (someone's
  // `docker push worker:latest`), so it is pushed here straight through the registry API, as the
  // CI's user, naming the image just built.
  await new RegistryReader(registry, CI).copyTag('worker', worker.commitTag, 'latest');
  const latest = await waitFor('event ignored', { reason: 'tag-not-ours' }, from);
  expect(latest.detail).toMatch(/worker:latest/);
  spawnSync('skopeo', [
    'inspect',
    '--tls-verify=false',
    '--creds',
    `${CI.username}:${CI.password}`,
    `docker://${registry.host}/worker:${worker.commitTag}`,
  ]);
  const pull = await waitFor('event ignored', { reason: 'not-a-push', actor: CI.username }, from);
  expect(pull.action).toBe('pull');
  const feature = await waitFor('deploy', { tag: worker.commitTag }, from);
  expect(feature.outcome).toBe('skipped');
  expect(feature.reason).toBe('not-a-deploy-ref');
  expect(state()).toEqual(before);
});

test('the registry down while labels are read: retried, then deployed', async () => {
  const from = deployer!.logs.length;
  await proxy.down();
  const built = build('worker', 'refs/heads/main', 6);
  await deployer!.waitForLog(
    (l) => l.msg === 'retrying' && l.what === 'registry',
    'a registry retry',
    from,
  );
  await proxy.up();
  const verdict = await waitFor(
    'verdict',
    { deployment: 'worker', environment: 'staging', tag: built.commitTag },
    from,
  );
  expect(verdict.outcome).toBe('verified');
  expect(imageOf(STAGING, 'worker')).toBe(pinned(built));
});

test('a notification lost (the deployer down at push time, the registry restarted) is caught up by the reconcile loop', async () => {
  const logs = deployer!.logs;
  expect(await deployer!.stop()).toBe(0);
  expect(logs.some(is('stopped', { signal: 'SIGTERM' }))).toBe(true);
  deployer = undefined;
  const built = build('rng', 'refs/heads/main', 7);
  caughtUp = built;
  // The registry keeps undelivered events in memory only: a restart drops them.
  const dataDir = registry.dataDir;
  await registry.stop();
  registry = await startOurRegistry(dataDir);
  // This time the webhook is down: counted and logged, no effect on the deploy.
  deployer = await startOurDeployer(`http://127.0.0.1:${await freePort()}/hook`);
  const reconcile = await waitFor('reconcile', { service: 'rng', environment: 'staging' }, 0);
  expect(reconcile.tag).toBe(built.commitTag);
  expect(reconcile.result).toBe('queued');
  const verdict = await waitFor(
    'verdict',
    { deployment: 'rng', environment: 'staging', tag: built.commitTag },
    0,
  );
  expect(verdict.outcome).toBe('verified');
  expect(verdict.source).toBe('reconcile');
  expect(imageOf(STAGING, 'rng')).toBe(pinned(built));
  // Everything else was up to date (or paused, rejected): nothing else was submitted.
  expect(deployer.logs.filter(is('reconcile'))).toHaveLength(1);
  await waitFor('webhook failed', { tag: built.commitTag }, 0);
  expect(await deployer.metric('ship_deployer_webhooks_total{result="failed"}')).toBe(1);
  expect(await deployer.metric('ship_deployer_reconciles_total{result="ok"}')).toBe(1);
  expect(await deployer.metric('ship_deployer_last_reconcile_timestamp_seconds')).toBeGreaterThan(
    0,
  );
});

test('/healthz, /readyz and /metrics answer as the probes and Prometheus expect', async () => {
  expect((await fetch(`${deployer!.url}/healthz`)).status).toBe(200);
  expect((await fetch(`${deployer!.url}/readyz`)).status).toBe(200);
  const metrics = await fetch(`${deployer!.url}/metrics`);
  expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
  const text = await metrics.text();
  for (const name of [
    'ship_deployer_events_received_total',
    'ship_deployer_deploys_total',
    'ship_deployer_skips_total',
    'ship_deployer_verdicts_total',
    'ship_deployer_rollbacks_total',
  ]) {
    expect(text).toContain(`# TYPE ${name} counter`);
  }
  expect(text).toContain('# TYPE ship_deployer_time_to_ready_seconds histogram');
  expect(text).toMatch(/^ship_deployer_time_to_ready_seconds_bucket\{le="\+Inf"\} 1$/m);
  expect((await fetch(`${deployer!.url}/v1/registry-events`)).status).toBe(405);
  expect((await fetch(`${deployer!.url}/nothing`)).status).toBe(404);
});

test('the same event twice: handled once; the build already running is skipped, nothing patched', async () => {
  const built = caughtUp!;
  const before = live(STAGING, 'rng').metadata.generation;
  const envelope = JSON.stringify({
    events: [
      {
        id: 'replayed-1',
        timestamp: new Date().toISOString(),
        action: 'push',
        target: {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: built.digest,
          repository: 'rng',
          tag: built.commitTag,
        },
      },
    ],
  });
  const auth = { authorization: `Bearer ${TOKEN}`, 'content-type': EVENTS_TYPE };
  const from = deployer!.logs.length;
  expect((await notify(envelope, auth)).status).toBe(202);
  const second = await notify(envelope, auth);
  expect(second.status).toBe(202);
  expect(await second.json()).toEqual({ accepted: 1, queued: 0, ignored: 1 });
  await waitFor('event ignored', { eventId: 'replayed-1', reason: 'duplicate' }, from);
  const plan = await waitFor(
    'plan',
    { eventId: 'replayed-1', deployment: 'rng', environment: 'staging' },
    from,
  );
  expect(plan).toMatchObject({ action: 'skip', reason: 'already-running' });
  expect(live(STAGING, 'rng').metadata.generation).toBe(before);
});

test('a deploy failed by a transient API error is retried by the periodic reconcile loop', async () => {
  await deployer!.stop();
  deployer = await startOurDeployer(undefined, 1);
  await waitFor('reconcile done', {}, 0);
  const from = deployer.logs.length;
  // Every PATCH try of the event path (4, core/retry.ts) gets 503: a transient failure.
  kube.failNext(4, 503, { method: 'PATCH', namespace: STAGING });
  const built = build('hasher', 'refs/heads/main', 3);
  // The notification's push fails (and, were the loop first, its own try would): either way the
  // failure says the loop retries, and a later pass of the loop deploys and verifies it.
  const failed = await deployer.waitForLog(
    (l) => l.msg === 'deploy' && l.tag === built.commitTag && l.retry !== undefined,
    'the transient failure',
    from,
  );
  expect(failed.summary).toMatch(/failed staging\/hasher \(transient\)/);
  expect(failed.retry).toMatch(/the reconcile loop tries again within 1 s/);
  const after = deployer.logs.indexOf(failed);
  const retried = await waitFor(
    'reconcile',
    { service: 'hasher', tag: built.commitTag, result: 'queued' },
    after,
  );
  expect(retried.environment).toBe('staging');
  const verdict = await waitFor(
    'verdict',
    { deployment: 'hasher', environment: 'staging', tag: built.commitTag },
    after,
  );
  expect(verdict.source).toBe('reconcile');
  expect(verdict.outcome).toBe('verified');
  expect(imageOf(STAGING, 'hasher')).toBe(pinned(built));
  expect(await deployer.metric('ship_deployer_deploy_failures_total{reason="transient"}')).toBe(1);
});

test('SIGTERM during a verification abandons it, keeping its lease; the same pod started again resumes it', async () => {
  await deployer!.stop();
  deployer = await startOurDeployer(undefined);
  const from = deployer.logs.length;
  const built = build('worker', 'refs/heads/main', 7);
  // Running, never Ready: the verification goes on until the deployer is stopped.
  kube.setFate(pinned(built), { kind: 'never-ready' });
  await waitFor('deploy', { source: 'notification', tag: built.commitTag }, from);
  const logs = deployer.logs;
  expect(await deployer.stop()).toBe(0);
  expect(
    logs.some(is('verification abandoned', { deployment: 'worker', tag: built.commitTag })),
  ).toBe(true);
  const record = JSON.parse(
    live(STAGING, 'worker').metadata.annotations?.[ANNOTATIONS.verification] ?? '{}',
  ) as Record<string, unknown>;
  expect(record).toMatchObject({
    state: 'verifying',
    execution: 'incluster:ship-deployer-test',
    digest: built.digest,
  });
  // The pods become Ready; the restarted deployer (same pod name, so the same owner) takes the
  // verification again at its first reconcile pass.
  kube.setFate(pinned(built), undefined);
  deployer = await startOurDeployer(undefined);
  const verdict = await waitFor('verdict', { deployment: 'worker', tag: built.commitTag }, 0);
  expect(verdict).toMatchObject({ source: 'reconcile', outcome: 'verified' });
  const plan = await waitFor('plan', { deployment: 'worker', tag: built.commitTag }, 0);
  expect(plan.action).toBe('lease');
});
