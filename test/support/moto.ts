import { ChildProcess, spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, request as httpRequest, Server } from 'node:http';
import { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  BatchGetBuildsCommand,
  type Build,
  CodeBuildClient,
  CreateProjectCommand,
  StartBuildCommand,
} from '@aws-sdk/client-codebuild';
import {
  CreateRepositoryCommand,
  ECRClient,
  PutImageCommand,
  RepositoryAlreadyExistsException,
} from '@aws-sdk/client-ecr';
import { CreateTopicCommand, SNSClient, SubscribeCommand } from '@aws-sdk/client-sns';
import { Hash } from '@smithy/hash-node';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { freePort } from './registry';

// moto_server, the real AWS wire protocol on 127.0.0.1, for the deployer's SDK clients. The code
// under test finds it through the standard AWS_ENDPOINT_URL variables in `env`; the helpers here
// talk to it with explicit endpoints, so they work whatever the process environment says.

/** moto's account, the registry id of every ECR repository it holds. */
export const MOTO_ACCOUNT = '123456789012';
export const MOTO_REGION = 'eu-west-1';
const CREDENTIALS = { accessKeyId: 'testing', secretAccessKey: 'testing' };

export interface RunningMoto {
  /** `http://127.0.0.1:<port>` */
  readonly url: string;
  /**
   * Where CodeBuild calls go: moto behind a small proxy that writes the build timestamps moto
   * sends as ISO strings (`"startTime": "2026-…Z"`) as epoch seconds, as CodeBuild's JSON protocol
   * does; SDK v3 refuses the strings ("Expected real number"). Everything else is moto's.
   */
  readonly codebuildUrl: string;
  readonly port: number;
  readonly region: string;
  /**
   * What an SDK client needs to use this moto and nothing else: AWS_ENDPOINT_URL, fake
   * credentials, AWS_REGION, and empty AWS config files.
   */
  readonly env: Readonly<Record<string, string>>;
  /** Forgets every resource (moto's POST /moto-api/reset). */
  reset(): Promise<void>;
  /** Stops moto_server and its children, and waits for them to exit. */
  stop(): Promise<void>;
}

async function waitUntilAnswering(
  url: string,
  child: ChildProcess,
  log: () => string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`moto_server exited with ${child.exitCode}:\n${log()}`);
    }
    try {
      const response = await fetch(`${url}/moto-api/data.json`);
      if (response.ok) return;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) throw new Error(`moto_server did not answer on ${url}:\n${log()}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

/**
 * Starts `moto_server` on a free port of 127.0.0.1 and waits until it answers. Start it once per
 * test file (it takes a couple of seconds) and `stop()` it in `afterAll`.
 */
export async function startMoto(options: { region?: string } = {}): Promise<RunningMoto> {
  const probe = spawnSync('sh', ['-c', 'command -v moto_server'], { encoding: 'utf8' });
  if (probe.status !== 0) {
    throw new Error(
      'moto_server is not on PATH: pip install "moto[server]" (the CI image has it).',
    );
  }
  const region = options.region ?? MOTO_REGION;
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  // Its own process group, so stop() also ends whatever the pyenv shim or werkzeug started.
  const child = spawn('moto_server', ['-H', '127.0.0.1', '-p', String(port)], {
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  let output = '';
  const keep = (chunk: Buffer): void => {
    output = (output + chunk.toString()).slice(-20_000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (signal: NodeJS.Signals): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, signal);
    } catch {
      // Already gone.
    }
  };
  try {
    await waitUntilAnswering(url, child, () => output);
  } catch (error) {
    killGroup('SIGKILL');
    throw error;
  }

  let proxy: Server;
  try {
    proxy = await startEpochProxy(port);
  } catch (error) {
    killGroup('SIGKILL');
    throw error;
  }
  const codebuildUrl = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;

  const configDir = mkdtempSync(path.join(tmpdir(), 'ship-moto-'));
  writeFileSync(path.join(configDir, 'config'), '');
  writeFileSync(path.join(configDir, 'credentials'), '');
  return {
    url,
    codebuildUrl,
    port,
    region,
    env: {
      AWS_ENDPOINT_URL: url,
      AWS_ENDPOINT_URL_CODEBUILD: codebuildUrl,
      AWS_ACCESS_KEY_ID: CREDENTIALS.accessKeyId,
      AWS_SECRET_ACCESS_KEY: CREDENTIALS.secretAccessKey,
      AWS_REGION: region,
      AWS_DEFAULT_REGION: region,
      AWS_CONFIG_FILE: path.join(configDir, 'config'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(configDir, 'credentials'),
      AWS_EC2_METADATA_DISABLED: 'true',
    },
    async reset() {
      const response = await fetch(`${url}/moto-api/reset`, { method: 'POST' });
      if (!response.ok) throw new Error(`moto reset answered ${response.status}`);
    },
    async stop() {
      proxy.closeAllConnections();
      await new Promise((resolve) => proxy.close(resolve));
      if (child.exitCode !== null || child.signalCode !== null) return;
      killGroup('SIGTERM');
      const timer = setTimeout(() => killGroup('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    },
  };
}

/** Build and phase times in CodeBuild answers (epoch seconds on the wire; moto sends ISO). */
const CODEBUILD_TIMES = new Set(['startTime', 'endTime', 'created', 'lastModified']);

function epochTimes(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(epochTimes);
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value).map(([key, field]) => {
      if (
        CODEBUILD_TIMES.has(key) &&
        typeof field === 'string' &&
        !Number.isNaN(Date.parse(field))
      ) {
        return [key, Date.parse(field) / 1000];
      }
      return [key, epochTimes(field)];
    }),
  );
}

/** A proxy to moto on `motoPort` that rewrites ISO times in JSON answers as epoch seconds. */
async function startEpochProxy(motoPort: number): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const forward = httpRequest(
        {
          host: '127.0.0.1',
          port: motoPort,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            let body = Buffer.concat(parts);
            // moto labels its CodeBuild JSON text/html: whatever parses as JSON is rewritten.
            if ((answer.statusCode ?? 500) < 300 && body.length > 0) {
              try {
                const parsed: unknown = JSON.parse(body.toString('utf8'));
                body = Buffer.from(JSON.stringify(epochTimes(parsed)));
              } catch {
                // Not JSON: passed on as it is.
              }
            }
            const headers = { ...answer.headers, 'content-length': String(body.length) };
            delete headers['transfer-encoding'];
            res.writeHead(answer.statusCode ?? 500, headers);
            res.end(body);
          });
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`moto proxy: ${error.message}`);
      });
      forward.end(Buffer.concat(chunks));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

/**
 * Sets `env` in process.env for the code under test; the function returned puts back what was
 * there before (call it in afterAll).
 */
export function useEnv(env: Readonly<Record<string, string>>): () => void {
  const saved = Object.keys(env).map((name) => [name, process.env[name]] as const);
  Object.assign(process.env, env);
  return () => {
    for (const [name, value] of saved) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  };
}

/** One AWS call as a {@link RecordingProxy} saw it. */
export interface AwsCall {
  /** The service of the SigV4 credential scope (`ecr`, `sns`, …), or `unsigned`. */
  readonly service: string;
  /** `X-Amz-Target` (JSON protocols), else the form `Action` (query protocols), else method and path. */
  readonly target: string;
  /** The operation alone: `DescribeImages`, `Publish`. */
  readonly action: string;
}

/** A pass-through proxy that records every call, to count what the code under test asks AWS. */
export interface RecordingProxy {
  readonly url: string;
  readonly calls: AwsCall[];
  /**
   * The next `count` calls of `action` (e.g. `DescribeImages`) are answered with an AWS JSON
   * error instead of reaching moto, as AWS answers throttling (`ThrottlingException`, 400) or an
   * outage (`ServiceUnavailableException`, 503), which moto cannot be made to return. Still recorded.
   */
  failNext(
    action: string,
    count: number,
    error?: { status: number; type: string; message: string },
  ): void;
  /** Forgets the faults still pending. */
  resetFaults(): void;
  /**
   * What CodeBuild would record of a build moto ran, beyond what moto records: moto runs no
   * buildspec, so its builds have no exported variables, and their numbers are moto's. The
   * fields given replace those of the build with this id in every BatchGetBuilds answer that
   * passes through (moto's own record stays the base: id, ARN, project, status, phases).
   */
  recordBuild(id: string, fields: Readonly<Record<string, unknown>>): void;
  /** Forgets every recorded build. */
  resetBuilds(): void;
  stop(): Promise<void>;
}

/**
 * Starts a proxy in front of `upstream` (moto's URL): point the code under test at it with
 * `AWS_ENDPOINT_URL[_<SERVICE>]`, and set-up calls made directly to moto are not counted.
 */
export async function startRecordingProxy(upstream: string): Promise<RecordingProxy> {
  const to = new URL(upstream);
  const calls: AwsCall[] = [];
  const recorded = new Map<string, Readonly<Record<string, unknown>>>();
  const faults: {
    action: string;
    remaining: number;
    status: number;
    type: string;
    message: string;
  }[] = [];
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const scope = /Credential=[^/]+\/\d{8}\/[^/]+\/([^/]+)\//.exec(
        req.headers.authorization ?? '',
      );
      const amzTarget = req.headers['x-amz-target'];
      const formAction = /(?:^|&)Action=([^&]+)/.exec(body.toString('utf8'))?.[1];
      const target =
        typeof amzTarget === 'string'
          ? amzTarget
          : (formAction ?? `${req.method ?? ''} ${req.url ?? ''}`);
      calls.push({
        service: scope?.[1] ?? 'unsigned',
        target,
        action: typeof amzTarget === 'string' ? (amzTarget.split('.').pop() ?? amzTarget) : target,
      });
      const fault = faults.find((f) => f.remaining > 0 && f.action === calls.at(-1)?.action);
      if (fault !== undefined) {
        fault.remaining -= 1;
        res.writeHead(fault.status, {
          'content-type': 'application/x-amz-json-1.1',
          'x-amzn-errortype': fault.type,
        });
        res.end(JSON.stringify({ __type: fault.type, message: fault.message }));
        return;
      }
      const forward = httpRequest(
        {
          host: to.hostname,
          port: to.port,
          method: req.method,
          path: req.url,
          headers: req.headers,
        },
        (answer) => {
          if (calls.at(-1)?.action !== 'BatchGetBuilds' || recorded.size === 0) {
            res.writeHead(answer.statusCode ?? 502, answer.headers);
            answer.pipe(res);
            return;
          }
          const parts: Buffer[] = [];
          answer.on('data', (chunk: Buffer) => parts.push(chunk));
          answer.on('end', () => {
            const json = JSON.parse(Buffer.concat(parts).toString('utf8')) as {
              builds?: Record<string, unknown>[];
            };
            json.builds = (json.builds ?? []).map((build) => ({
              ...build,
              ...recorded.get(String(build.id)),
            }));
            const text = JSON.stringify(json);
            res.writeHead(answer.statusCode ?? 502, {
              ...answer.headers,
              'content-length': Buffer.byteLength(text),
            });
            res.end(text);
          });
        },
      );
      forward.on('error', (error) => {
        res.writeHead(502, { 'content-type': 'text/plain' });
        res.end(`recording proxy: ${error.message}`);
      });
      forward.end(body);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    calls,
    failNext: (
      action,
      count,
      error = { status: 400, type: 'ThrottlingException', message: 'Rate exceeded' },
    ) => faults.push({ action, remaining: count, ...error }),
    resetFaults: () => {
      faults.length = 0;
    },
    recordBuild: (id, fields) => recorded.set(id, fields),
    resetBuilds: () => recorded.clear(),
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

const clientConfig = (moto: RunningMoto, endpoint = moto.url) => ({
  endpoint,
  region: moto.region,
  credentials: CREDENTIALS,
});

// ---- ECR ----

export interface PutImageResult {
  readonly registryId: string;
  readonly repository: string;
  readonly repositoryUri: string;
  /** The digest moto assigned (moto computes it its own way: use this one). */
  readonly digest: string;
  /** The manifest put, as sent. */
  readonly manifest: string;
}

/** A Docker image manifest (schema 2) naming a config and a layer that differ on every call. */
export function imageManifest(): string {
  const blob = (mediaType: string, size: number) => ({
    mediaType,
    size,
    digest: `sha256:${randomBytes(32).toString('hex')}`,
  });
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
    config: blob('application/vnd.docker.container.image.v1+json', 1469),
    layers: [blob('application/vnd.docker.image.rootfs.diff.tar.gzip', 3208942)],
  });
}

/**
 * Puts an image into a moto ECR repository (created if need be) under each of `tags`, through
 * CreateRepository and PutImage, and returns the digest moto reports.
 */
export async function putEcrImage(
  moto: RunningMoto,
  options: { repository: string; tags: readonly string[]; manifest?: string },
): Promise<PutImageResult> {
  const ecr = new ECRClient(clientConfig(moto));
  try {
    let repositoryUri: string | undefined;
    let registryId: string | undefined;
    try {
      const created = await ecr.send(
        new CreateRepositoryCommand({ repositoryName: options.repository }),
      );
      repositoryUri = created.repository?.repositoryUri;
      registryId = created.repository?.registryId;
    } catch (error) {
      if (!(error instanceof RepositoryAlreadyExistsException)) throw error;
    }
    const manifest = options.manifest ?? imageManifest();
    let digest: string | undefined;
    for (const tag of options.tags) {
      const put = await ecr.send(
        new PutImageCommand({
          repositoryName: options.repository,
          imageManifest: manifest,
          imageTag: tag,
        }),
      );
      digest = put.image?.imageId?.imageDigest;
      registryId = put.image?.registryId ?? registryId;
    }
    if (digest === undefined) throw new Error('putEcrImage: give at least one tag');
    registryId ??= MOTO_ACCOUNT;
    return {
      registryId,
      repository: options.repository,
      repositoryUri:
        repositoryUri ?? `${registryId}.dkr.ecr.${moto.region}.amazonaws.com/${options.repository}`,
      digest,
      manifest,
    };
  } finally {
    ecr.destroy();
  }
}

// ---- SNS → SQS ----

/** What a subscribed queue received from SNS: the notification envelope, parsed. */
export interface Published {
  readonly subject: string | undefined;
  readonly message: string;
  readonly topicArn: string;
}

export interface TopicWithQueue {
  readonly topicArn: string;
  readonly queueUrl: string;
  /** Receives (and deletes) what reached the queue so far. */
  receive(): Promise<Published[]>;
}

/** An SQS call in the JSON protocol, signed (moto picks the service from the signature). */
async function sqs<T>(moto: RunningMoto, action: string, body: object): Promise<T> {
  const url = new URL(moto.url);
  const request = new HttpRequest({
    method: 'POST',
    protocol: 'http:',
    hostname: url.hostname,
    port: Number(url.port),
    path: '/',
    headers: {
      host: url.host,
      'content-type': 'application/x-amz-json-1.0',
      'x-amz-target': `AmazonSQS.${action}`,
    },
    body: JSON.stringify(body),
  });
  const signer = new SignatureV4({
    credentials: CREDENTIALS,
    region: moto.region,
    service: 'sqs',
    sha256: Hash.bind(null, 'sha256'),
  });
  const signed = await signer.sign(request);
  const response = await fetch(moto.url, {
    method: 'POST',
    headers: signed.headers,
    body: signed.body as string,
  });
  const text = await response.text();
  if (!response.ok) throw new Error(`SQS ${action} answered ${response.status}: ${text}`);
  return JSON.parse(text) as T;
}

/**
 * An SNS topic and an SQS queue subscribed to it (moto delivers for real), so a test reads what
 * was published.
 */
export async function createTopicWithQueue(
  moto: RunningMoto,
  name: string,
): Promise<TopicWithQueue> {
  const sns = new SNSClient(clientConfig(moto));
  try {
    const topic = await sns.send(new CreateTopicCommand({ Name: name }));
    const topicArn = topic.TopicArn;
    if (topicArn === undefined) throw new Error('CreateTopic returned no TopicArn');
    const { QueueUrl: queueUrl } = await sqs<{ QueueUrl: string }>(moto, 'CreateQueue', {
      QueueName: `${name}-inbox`,
    });
    const attributes = await sqs<{ Attributes: { QueueArn: string } }>(moto, 'GetQueueAttributes', {
      QueueUrl: queueUrl,
      AttributeNames: ['QueueArn'],
    });
    await sns.send(
      new SubscribeCommand({
        TopicArn: topicArn,
        Protocol: 'sqs',
        Endpoint: attributes.Attributes.QueueArn,
      }),
    );
    return {
      topicArn,
      queueUrl,
      async receive() {
        const received: Published[] = [];
        for (;;) {
          const batch = await sqs<{ Messages?: { Body: string; ReceiptHandle: string }[] }>(
            moto,
            'ReceiveMessage',
            { QueueUrl: queueUrl, MaxNumberOfMessages: 10, WaitTimeSeconds: 0 },
          );
          const messages = batch.Messages ?? [];
          if (messages.length === 0) return received;
          for (const message of messages) {
            const envelope = JSON.parse(message.Body) as {
              Subject?: string;
              Message: string;
              TopicArn: string;
            };
            received.push({
              subject: envelope.Subject,
              message: envelope.Message,
              topicArn: envelope.TopicArn,
            });
            await sqs(moto, 'DeleteMessage', {
              QueueUrl: queueUrl,
              ReceiptHandle: message.ReceiptHandle,
            });
          }
        }
      },
    };
  } finally {
    sns.destroy();
  }
}

// ---- CodeBuild ----

/** Creates a CodeBuild project in moto (source and environment as a real one would have). */
export async function createCodeBuildProject(moto: RunningMoto, name: string): Promise<string> {
  const codebuild = new CodeBuildClient(clientConfig(moto, moto.codebuildUrl));
  try {
    const created = await codebuild.send(
      new CreateProjectCommand({
        name,
        source: { type: 'GITHUB', location: 'https://github.com/example/dockercoins.git' },
        artifacts: { type: 'NO_ARTIFACTS' },
        environment: {
          type: 'ARM_CONTAINER',
          image: 'aws/codebuild/amazonlinux-aarch64-standard:3.0',
          computeType: 'BUILD_GENERAL1_SMALL',
        },
        serviceRole: `arn:aws:iam::${MOTO_ACCOUNT}:role/${name}-build`,
      }),
    );
    const arn = created.project?.arn;
    if (arn === undefined) throw new Error('CreateProject returned no project ARN');
    return arn;
  } finally {
    codebuild.destroy();
  }
}

/** Starts a build of the project; returns its id (`<project>:<uuid>`) and ARN. */
export async function startCodeBuild(
  moto: RunningMoto,
  project: string,
  sourceVersion?: string,
): Promise<{ id: string; arn: string }> {
  const codebuild = new CodeBuildClient(clientConfig(moto, moto.codebuildUrl));
  try {
    const started = await codebuild.send(
      new StartBuildCommand({
        projectName: project,
        ...(sourceVersion === undefined ? {} : { sourceVersion }),
      }),
    );
    const { id, arn } = started.build ?? {};
    if (id === undefined || arn === undefined) throw new Error('StartBuild returned no build id');
    return { id, arn };
  } finally {
    codebuild.destroy();
  }
}

/** The build as BatchGetBuilds returns it (to check what moto records). */
export async function getCodeBuild(moto: RunningMoto, id: string): Promise<Build | undefined> {
  const codebuild = new CodeBuildClient(clientConfig(moto, moto.codebuildUrl));
  try {
    const answer = await codebuild.send(new BatchGetBuildsCommand({ ids: [id] }));
    return answer.builds?.[0];
  } finally {
    codebuild.destroy();
  }
}
