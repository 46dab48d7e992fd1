/**
 * The deployer's one HTTP port: the registry's notifications (`POST /v1/registry-events`),
 * `/healthz`, `/readyz` and `/metrics`. A notification is checked (Bearer token in constant time,
 * size, content type, JSON, envelope), answered 202 at once, and its events handed to the
 * deployer's queue: the registry's sink waits for the answer, so nothing slow happens before it.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import {
  InvalidEnvelopeError,
  REGISTRY_EVENTS_MEDIA_TYPES,
  decideEvent,
  parseEnvelope,
  type EventFilter,
} from '../core/registry-events';
import type { InclusterDeployer } from './deployer';
import type { Logger } from './log';
import { METRICS_CONTENT_TYPE, type Metrics } from './metrics';

export const EVENTS_PATH = '/v1/registry-events';
/** Far above a batch of events (a few KiB each); the registry sends one batch per request. */
export const MAX_NOTIFICATION_BYTES = 1024 * 1024;

export interface ServerDeps {
  /** The token the registry's `Authorization: Bearer …` header must carry. */
  readonly token: string;
  readonly filter: EventFilter;
  readonly deployer: Pick<InclusterDeployer, 'submit'>;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** Whether /readyz answers 200. */
  readonly ready: () => boolean;
}

/** Constant-time comparison of the presented token with ours (hashes: equal lengths). */
export function tokenMatches(presented: string, expected: string): boolean {
  const a = createHash('sha256').update(presented).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b) && expected !== '';
}

function answer(res: ServerResponse, status: number, body: Record<string, unknown>): void {
  const text = `${JSON.stringify(body)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

export function createDeployerServer(deps: ServerDeps): Server {
  const { log, metrics } = deps;
  const refuse = (
    req: IncomingMessage,
    res: ServerResponse,
    status: number,
    reason: string,
    message: string,
  ): void => {
    metrics.inc('notificationsRefused', { reason });
    log.warn('notification refused', {
      reason,
      status,
      detail: message,
      remote: req.socket.remoteAddress,
    });
    if (status === 413) res.setHeader('connection', 'close');
    answer(res, status, { error: reason, message });
  };

  const receive = (req: IncomingMessage, res: ServerResponse): void => {
    const authorization = req.headers.authorization ?? '';
    const match = /^Bearer (.+)$/.exec(authorization);
    if (match === null || !tokenMatches(match[1]!, deps.token)) {
      // Read nothing of an unauthenticated body.
      res.setHeader('www-authenticate', 'Bearer realm="ship-deployer"');
      res.setHeader('connection', 'close');
      refuse(
        req,
        res,
        401,
        'unauthorized',
        match === null
          ? 'no "Authorization: Bearer <token>" header: the registry\'s notifications endpoint must send it (headers: { Authorization: [Bearer <token>] })'
          : "the bearer token is not the deployer's: the registry config and the Secret ship-deployer-notification must carry the same token",
      );
      req.resume();
      return;
    }
    const declared = Number(req.headers['content-length'] ?? '0');
    if (declared > MAX_NOTIFICATION_BYTES) {
      refuse(
        req,
        res,
        413,
        'too-large',
        `the body is ${declared} bytes; at most ${MAX_NOTIFICATION_BYTES} are read`,
      );
      req.resume();
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (!REGISTRY_EVENTS_MEDIA_TYPES.includes(type)) {
      refuse(
        req,
        res,
        415,
        'unsupported-media-type',
        `Content-Type "${type}" is not a registry notification (${REGISTRY_EVENTS_MEDIA_TYPES.join(', ')})`,
      );
      req.resume();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > MAX_NOTIFICATION_BYTES) {
        done = true;
        refuse(
          req,
          res,
          413,
          'too-large',
          `the body is over ${MAX_NOTIFICATION_BYTES} bytes; refused unread`,
        );
        req.resume();
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => {
      if (done) return;
      done = true;
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch (error) {
        refuse(req, res, 400, 'malformed', `the body is not JSON: ${(error as Error).message}`);
        return;
      }
      let events;
      try {
        events = parseEnvelope(body);
      } catch (error) {
        if (!(error instanceof InvalidEnvelopeError)) throw error;
        refuse(req, res, 400, 'malformed', error.message);
        return;
      }
      const receivedAt = new Date();
      const counts = { queued: 0, ignored: 0 };
      for (const event of events) {
        metrics.inc('eventsReceived');
        const decision = decideEvent(event, deps.filter);
        if (decision.kind === 'ignore') {
          counts.ignored += 1;
          metrics.inc('eventsIgnored', { reason: decision.reason });
          log.info('event ignored', {
            eventId: decision.id,
            action: decision.action,
            repository: decision.repository,
            tag: decision.tag,
            digest: decision.digest,
            actor: decision.actor,
            reason: decision.reason,
            detail: decision.detail,
          });
          continue;
        }
        const result = deps.deployer.submit({
          service: decision.service,
          repository: decision.repository,
          tag: decision.tag,
          digest: decision.digest,
          source: 'notification',
          receivedAt,
          eventId: decision.id,
        });
        const fields = {
          eventId: decision.id,
          service: decision.service,
          repository: decision.repository,
          tag: decision.tag,
          digest: decision.digest,
          actor: decision.actor,
        };
        if (result === 'queued') {
          counts.queued += 1;
          log.info('event queued', fields);
        } else {
          counts.ignored += 1;
          metrics.inc('eventsIgnored', { reason: result });
          log.info('event ignored', { ...fields, reason: result });
        }
      }
      answer(res, 202, { accepted: events.length, ...counts });
    });
    req.on('error', () => {
      done = true;
    });
  };

  return createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === EVENTS_PATH) {
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        answer(res, 405, {
          error: 'method-not-allowed',
          message: `${EVENTS_PATH} takes POST only`,
        });
        req.resume();
        return;
      }
      try {
        receive(req, res);
      } catch (error) {
        log.error('notification handling failed', { error: String(error) });
        if (!res.headersSent) answer(res, 500, { error: 'internal', message: String(error) });
      }
      return;
    }
    req.resume();
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      answer(res, 405, { error: 'method-not-allowed', message: `${path} takes GET` });
      return;
    }
    switch (path) {
      case '/healthz':
        answer(res, 200, { status: 'ok' });
        return;
      case '/readyz':
        if (deps.ready()) answer(res, 200, { status: 'ready' });
        else answer(res, 503, { status: 'not ready' });
        return;
      case '/metrics': {
        const text = metrics.render();
        res.writeHead(200, {
          'content-type': METRICS_CONTENT_TYPE,
          'content-length': Buffer.byteLength(text),
        });
        res.end(text);
        return;
      }
      default:
        answer(res, 404, {
          error: 'not-found',
          message: `no ${path} here: POST ${EVENTS_PATH}, GET /healthz, /readyz, /metrics`,
        });
    }
  });
}
