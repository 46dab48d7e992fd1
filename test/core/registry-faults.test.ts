/**
 * registry.js (and so `ship`, which reads registries through it) against a registry that
 * misbehaves: the real distribution registry behind a loopback proxy that answers 5xx or 429,
 * hangs, or sends a body larger than any registry answer should be, on demand. A hung registry
 * must fail a build in seconds, a throttling one must be waited for as it asks, and credentials
 * must never travel in the clear to a host that is not this machine.
 */
import { execFile } from 'node:child_process';
import { createServer, IncomingMessage, request, Server, ServerResponse } from 'node:http';
import { AddressInfo, Socket } from 'node:net';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import {
  LIMITS,
  RegistryClient,
  RegistryError,
  RegistryUnreachableError,
  retryAfterMs,
} from '../../core/registry';
import { Buildah, fixtureContext } from '../support/buildah';
import { RegistryUser, RunningRegistry, startRegistry } from '../support/registry';

const REGISTRY_JS = path.resolve(__dirname, '..', '..', 'core', 'registry.js');
const USER: RegistryUser = { username: 'ship', password: 's3cret' };

/** What the proxy does with the next request that matches; `pass` forwards it untouched. */
type Fault =
  | { kind: 'status'; status: number; headers?: Record<string, string> }
  | { kind: 'hang' }
  | { kind: 'huge-announced'; bytes: number }
  | { kind: 'huge-streamed'; bytes: number };

interface FaultProxy {
  readonly host: string;
  /** Faults for the next requests whose path contains `match`, in order. */
  inject(match: string, ...faults: Fault[]): void;
  /** Every request seen: method and path. */
  readonly seen: string[];
  close(): Promise<void>;
}

async function startFaultProxy(upstream: RunningRegistry): Promise<FaultProxy> {
  const [upstreamHost, upstreamPort] = upstream.host.split(':');
  const queue: { match: string; fault: Fault }[] = [];
  const seen: string[] = [];
  const sockets = new Set<Socket>();
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = req.url ?? '/';
    seen.push(`${req.method} ${url}`);
    const index = queue.findIndex((entry) => url.includes(entry.match));
    const fault = index >= 0 ? queue.splice(index, 1)[0]!.fault : undefined;
    if (fault?.kind === 'status') {
      res.writeHead(fault.status, { 'content-type': 'text/plain', ...fault.headers });
      res.end(`injected ${fault.status}`);
      return;
    }
    if (fault?.kind === 'hang') return; // never answers; the socket stays open until close()
    if (fault?.kind === 'huge-announced') {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': fault.bytes });
      res.write('{"tags":[');
      return; // announces far more than it sends
    }
    if (fault?.kind === 'huge-streamed') {
      res.writeHead(200, { 'content-type': 'application/json' }); // chunked, no length
      const chunk = Buffer.alloc(1024 * 1024, 0x20);
      let sent = 0;
      const pump = (): void => {
        while (sent < fault.bytes) {
          sent += chunk.length;
          if (!res.write(chunk)) {
            res.once('drain', pump);
            return;
          }
        }
        res.end();
      };
      res.on('error', () => undefined);
      pump();
      return;
    }
    const forward = request(
      {
        host: upstreamHost,
        port: Number(upstreamPort),
        method: req.method,
        path: url,
        headers: { ...req.headers, host: upstream.host },
      },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, answer.headers);
        answer.pipe(res);
      },
    );
    req.pipe(forward);
  });
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    seen,
    inject: (match, ...faults) => faults.forEach((fault) => queue.push({ match, fault })),
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

let registry: RunningRegistry;
let proxy: FaultProxy;
let digest: string;

beforeAll(async () => {
  const buildah = new Buildah();
  const image = 'localhost/registry-faults:a';
  buildah.bud(fixtureContext(buildah.baseImage(), 'faults'), image, []);
  registry = await startRegistry({ users: [USER] });
  buildah.push(image, `${registry.host}/demo/app:a`, `${USER.username}:${USER.password}`);
  proxy = await startFaultProxy(registry);
  digest = await client().manifestDigest('demo/app', 'a');
});

afterAll(async () => {
  await proxy?.close();
  await registry?.stop();
});

beforeEach(() => {
  proxy.seen.length = 0;
});

/** A client of the proxy, with the test's credentials, recording the waits instead of sleeping. */
function client(
  options: { sleeps?: number[]; timeoutMs?: number; attempts?: number } = {},
): RegistryClient {
  return new RegistryClient(proxy?.host ?? registry.host, {
    credentials: { ...USER, source: 'the test' },
    env: {},
    timeoutMs: options.timeoutMs,
    attempts: options.attempts,
    sleep: (ms: number) => {
      options.sleeps?.push(ms);
      return Promise.resolve();
    },
  });
}

const manifestRequests = (): string[] => proxy.seen.filter((line) => line.includes('/manifests/'));

describe('retries on 429 and 5xx, bounded, with backoff', () => {
  test.each([500, 502, 503, 504])(
    '%i twice, then the answer: the third try gets it',
    async (status) => {
      proxy.inject('/manifests/a', { kind: 'status', status }, { kind: 'status', status });
      const sleeps: number[] = [];
      await expect(client({ sleeps }).manifestDigest('demo/app', 'a')).resolves.toBe(digest);
      // Each fault answered once; the retry then authenticated and got the digest.
      expect(
        manifestRequests().filter((line) => line.startsWith('HEAD')).length,
      ).toBeGreaterThanOrEqual(3);
      expect(sleeps).toHaveLength(2);
      // Full jitter within the doubling ceiling: 125–250 ms, then 250–500 ms.
      expect(sleeps[0]).toBeGreaterThanOrEqual(LIMITS.backoffMs / 2);
      expect(sleeps[0]).toBeLessThanOrEqual(LIMITS.backoffMs);
      expect(sleeps[1]).toBeGreaterThanOrEqual(LIMITS.backoffMs);
      expect(sleeps[1]).toBeLessThanOrEqual(LIMITS.backoffMs * 2);
    },
  );

  test('429 with Retry-After: waits exactly what the registry asked', async () => {
    proxy.inject('/manifests/a', {
      kind: 'status',
      status: 429,
      headers: { 'retry-after': '3' },
    });
    const sleeps: number[] = [];
    await expect(client({ sleeps }).manifestDigest('demo/app', 'a')).resolves.toBe(digest);
    expect(sleeps).toEqual([3000]);
  });

  test('a Retry-After longer than the client waits fails at once, saying when to come back', async () => {
    proxy.inject('/manifests/a', {
      kind: 'status',
      status: 503,
      headers: { 'retry-after': '3600' },
    });
    const sleeps: number[] = [];
    await expect(client({ sleeps }).manifestDigest('demo/app', 'a')).rejects.toThrow(
      /answered 503 and asks to retry after 3600 s, longer than the 30 s this client waits/,
    );
    expect(sleeps).toEqual([]);
  });

  test('5xx on every try: fails after the bounded number of tries, naming it', async () => {
    const failures = Array.from({ length: LIMITS.attempts }, () => ({
      kind: 'status' as const,
      status: 503,
    }));
    proxy.inject('/tags/list', ...failures);
    const sleeps: number[] = [];
    const error = await client({ sleeps })
      .listTags('demo/app')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).status).toBe(503);
    expect((error as Error).message).toMatch(/answered 503 Service Unavailable after 4 tries/);
    expect(proxy.seen.filter((line) => line.includes('/tags/list'))).toHaveLength(LIMITS.attempts);
    expect(sleeps).toHaveLength(LIMITS.attempts - 1);
  });

  test('4xx other than 429 is not retried', async () => {
    proxy.inject('/tags/list', { kind: 'status', status: 400 });
    const sleeps: number[] = [];
    await expect(client({ sleeps }).listTags('demo/app')).rejects.toThrow(/answered 400/);
    expect(proxy.seen.filter((line) => line.includes('/tags/list'))).toHaveLength(1);
    expect(sleeps).toEqual([]);
  });
});

describe('a registry that hangs', () => {
  test('times out each try and fails with the limit named, after the bounded tries', async () => {
    proxy.inject('/tags/list', { kind: 'hang' }, { kind: 'hang' });
    const sleeps: number[] = [];
    const error = await client({ sleeps, timeoutMs: 200, attempts: 2 })
      .listTags('demo/app')
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryUnreachableError);
    expect((error as Error).message).toMatch(
      /no answer within 0\.2 s \(REGISTRY_TIMEOUT_SECONDS sets the limit\).* \(2 tries\)/,
    );
    expect(sleeps).toHaveLength(1);
  });

  test('one hung try, then an answer: the retry gets it', async () => {
    proxy.inject('/manifests/a', { kind: 'hang' });
    await expect(client({ timeoutMs: 200 }).manifestDigest('demo/app', 'a')).resolves.toBe(digest);
  });

  test('registry.js as the buildspec runs it: REGISTRY_TIMEOUT_SECONDS bounds a hung registry', async () => {
    proxy.inject(
      '/tags/list',
      ...Array.from({ length: LIMITS.attempts }, () => ({ kind: 'hang' as const })),
    );
    const result = await new Promise<{ status: number; stderr: string }>((resolve) => {
      execFile(
        'node',
        [REGISTRY_JS, 'tags', `${proxy.host}/demo/app`],
        { env: { PATH: process.env.PATH, HOME: tmpdir(), REGISTRY_TIMEOUT_SECONDS: '0.2' } },
        (error, _stdout, stderr) =>
          resolve({ status: error === null ? 0 : Number(error.code), stderr }),
      );
    });
    expect(result.status).toBe(1);
    expect(result.stderr).toMatch(/no answer within 0\.2 s/);
    expect(result.stderr).toMatch(/\(4 tries\)/);
  });

  test.each(['0', '-1', 'abc', '5000'])(
    'REGISTRY_TIMEOUT_SECONDS=%s is refused, naming the value',
    (value) => {
      expect(
        () => new RegistryClient('127.0.0.1:5000', { env: { REGISTRY_TIMEOUT_SECONDS: value } }),
      ).toThrow(
        new RegExp(
          `REGISTRY_TIMEOUT_SECONDS is "${value}": expected the seconds one registry request may take`,
        ),
      );
    },
  );
});

describe('answers larger than a registry ever sends', () => {
  test('a body announced larger than the cap is refused before it is read', async () => {
    proxy.inject('/tags/list', { kind: 'huge-announced', bytes: LIMITS.listBytes + 1 });
    await expect(client().listTags('demo/app')).rejects.toThrow(
      new RegExp(
        `answer is ${LIMITS.listBytes + 1} bytes, more than the ${LIMITS.listBytes} this client reads`,
      ),
    );
  });

  test('a streamed body that grows past the cap is cut off there', async () => {
    proxy.inject('/tags/list', {
      kind: 'huge-streamed',
      bytes: LIMITS.listBytes + 4 * 1024 * 1024,
    });
    await expect(client().listTags('demo/app')).rejects.toThrow(
      new RegExp(
        `answer is over ${LIMITS.listBytes} bytes, more than the ${LIMITS.listBytes} this client reads`,
      ),
    );
  });

  test('a manifest over 4 MiB is refused', async () => {
    proxy.inject('/manifests/a', { kind: 'huge-announced', bytes: LIMITS.manifestBytes + 1 });
    await expect(client().getManifest('demo/app', 'a')).rejects.toThrow(
      /more than the 4194304 this client reads/,
    );
  });
});

describe('credentials never go in the clear to another machine', () => {
  const remote = (env: NodeJS.ProcessEnv, warnings: string[] = []): RegistryClient =>
    new RegistryClient('registry.internal:5000', {
      baseUrl: 'http://registry.internal:5000',
      credentials: { ...USER, source: 'the test' },
      env,
      warn: (line) => warnings.push(line),
    });

  test('Basic over plain HTTP to a host that is not loopback is refused, with the fixes', async () => {
    await expect(remote({}).authorize('Basic realm="Registry Realm"')).rejects.toThrow(
      /refusing to send the password of "ship" to http:\/\/registry\.internal:5000 over plain HTTP.*REGISTRY_PLAIN_HTTP_CREDENTIALS=allow/,
    );
  });

  test('REGISTRY_PLAIN_HTTP_CREDENTIALS=allow sends them, warning once', async () => {
    const warnings: string[] = [];
    const client = remote({ REGISTRY_PLAIN_HTTP_CREDENTIALS: 'allow' }, warnings);
    await expect(client.authorize('Basic realm="r"')).resolves.toBe(
      `Basic ${Buffer.from('ship:s3cret').toString('base64')}`,
    );
    await client.authorize('Basic realm="r"');
    expect(warnings).toEqual([
      'warning: sending the password of "ship" to http://registry.internal:5000 over plain HTTP (REGISTRY_PLAIN_HTTP_CREDENTIALS=allow): anyone on the path can read them',
    ]);
  });

  test('REGISTRY_PLAIN_HTTP_CREDENTIALS takes only "allow"', () => {
    expect(() => remote({ REGISTRY_PLAIN_HTTP_CREDENTIALS: 'yes' })).toThrow(
      /REGISTRY_PLAIN_HTTP_CREDENTIALS is "yes": expected "allow"/,
    );
  });

  test('a token service on plain HTTP elsewhere does not get the password either', async () => {
    await expect(
      remote({}).authorize('Bearer realm="http://auth.internal/token",service="registry"'),
    ).rejects.toThrow(
      /refusing to send the password of "ship" \(token service of registry\.internal:5000\) to http:\/\/auth\.internal/,
    );
  });

  test('loopback over plain HTTP is allowed: it never leaves the machine (the proxy is loopback)', async () => {
    await expect(client().manifestDigest('demo/app', 'a')).resolves.toBe(digest);
  });
});

describe('retryAfterMs', () => {
  const now = Date.parse('2026-12-06T12:00:00Z');
  test.each([
    [null, undefined],
    ['', undefined],
    ['0', 0],
    ['7', 7000],
    ['Sun, 06 Dec 2026 12:00:05 GMT', 5000],
    ['Sun, 06 Dec 2026 11:59:00 GMT', 0],
    ['soon', undefined],
  ])('Retry-After %p → %p ms', (header, expected) => {
    expect(retryAfterMs(header, now)).toBe(expected);
  });
});
