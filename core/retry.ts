/**
 * The one place where transient failures are retried. Adapters make one request per call and turn
 * what may pass (429, 5xx, timeouts, connection errors, AWS throttling) into TransientError; apply
 * and the handler wrap each call in a {@link Retry} made here. SDK clients are built with
 * `maxAttempts: 1` (see {@link AWS_CLIENT_DEFAULTS}) so that retries do not multiply.
 */
import type { Retry } from './apply';
import { PermanentError, TransientError } from './types';

/** A transient failure whose server said when to come back (`Retry-After`). */
export class RetryLaterError extends TransientError {
  constructor(
    message: string,
    /** What the server asked for, in milliseconds. */
    readonly retryAfterMs: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'RetryLaterError';
  }
}

export interface RetryOptions {
  /**
   * Calls in all, the first included.
   * @default 4 (waits of about 100, 200 and 400 ms between them)
   */
  readonly attempts?: number;
  /** The first wait; each next one doubles. @default 100 */
  readonly baseDelayMs?: number;
  /**
   * The longest wait a `Retry-After` may impose; a server asking for more gets this much, and the
   * event is retried by Lambda later if it still fails.
   * @default 2000
   */
  readonly maxRetryAfterMs?: number;
  /** @default - setTimeout */
  readonly sleep?: (ms: number) => Promise<void>;
  /** A number in [0, 1); spreads concurrent retries apart. @default Math.random */
  readonly random?: () => number;
  /** Told about each retry before its wait (for logs). @default - nothing */
  readonly onRetry?: (error: TransientError, attempt: number, delayMs: number) => void;
}

const sleepFor = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** The wait before attempt `attempt + 1`: exponential, half fixed and half random ("equal jitter"). */
export function backoffDelay(
  attempt: number,
  error: TransientError,
  options: Pick<RetryOptions, 'baseDelayMs' | 'maxRetryAfterMs' | 'random'> = {},
): number {
  const base = (options.baseDelayMs ?? 100) * 2 ** (attempt - 1);
  const jittered = Math.round(base / 2 + (base / 2) * (options.random ?? Math.random)());
  if (error instanceof RetryLaterError) {
    return Math.max(jittered, Math.min(error.retryAfterMs, options.maxRetryAfterMs ?? 2000));
  }
  return jittered;
}

/**
 * Runs `operation`, and again after a backoff each time it throws TransientError, up to
 * `attempts` calls; then rethrows the last TransientError. Any other error is rethrown at once.
 */
export async function withRetries<T>(
  operation: () => Promise<T>,
  options: RetryOptions = {},
): Promise<T> {
  const attempts = options.attempts ?? 4;
  if (!Number.isInteger(attempts) || attempts < 1) {
    throw new RangeError(`withRetries: attempts is ${attempts}; give a whole number of 1 or more.`);
  }
  const sleep = options.sleep ?? sleepFor;
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await operation();
    } catch (error) {
      if (!(error instanceof TransientError) || attempt >= attempts) throw error;
      const delay = backoffDelay(attempt, error, options);
      options.onRetry?.(error, attempt, delay);
      await sleep(delay);
    }
  }
}

/** A {@link Retry} (what apply and the handler take) with these options. */
export function createRetry(options: RetryOptions = {}): Retry {
  return (operation) => withRetries(operation, options);
}

// ---- AWS SDK errors ----

/**
 * Settings every SDK client of the deployer is built with: the SDK's own retries are off, because
 * retrying is {@link withRetries}'s job and two layers would multiply the attempts.
 */
export const AWS_CLIENT_DEFAULTS = { maxAttempts: 1 } as const;

/** Network failures after which the same request may well succeed. */
const TRANSIENT_NETWORK_CODES = new Set([
  'ECONNRESET',
  'ECONNREFUSED',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENETDOWN',
  'EAI_AGAIN',
  'ENOTFOUND',
]);

const NETWORK_CODE_IN_MESSAGE = new RegExp(`\\b(${[...TRANSIENT_NETWORK_CODES].join('|')})\\b`);

/** Is this error code one of a connection that failed, not an answer? */
export function isTransientNetworkCode(code: unknown): boolean {
  return typeof code === 'string' && TRANSIENT_NETWORK_CODES.has(code);
}

const THROTTLING_NAMES = new Set([
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestLimitExceeded',
  'RequestThrottled',
  'RequestThrottledException',
  'SlowDown',
]);

const TRANSIENT_NAMES = new Set([
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
  'ServiceUnavailable',
  'ServiceUnavailableException',
  'InternalFailure',
  'InternalServerError',
  'InternalServerException',
  'ServerException',
  'ExpiredToken',
  'ExpiredTokenException',
  'IDPCommunicationError',
]);

const FORBIDDEN_NAMES = new Set([
  'AccessDenied',
  'AccessDeniedException',
  'AuthorizationError',
  'AuthorizationErrorException',
  'UnrecognizedClientException',
  'InvalidClientTokenId',
  'InvalidSignatureException',
  'SignatureDoesNotMatch',
]);

interface SdkErrorShape {
  name?: unknown;
  code?: unknown;
  message?: unknown;
  $retryable?: unknown;
  $metadata?: { httpStatusCode?: unknown };
}

/** What kind of failure an error thrown by an AWS SDK client is. */
export function classifyAwsError(error: unknown): 'transient' | 'forbidden' | 'other' {
  if (error === null || typeof error !== 'object') return 'other';
  const e = error as SdkErrorShape;
  const name = typeof e.name === 'string' ? e.name : '';
  const status = typeof e.$metadata?.httpStatusCode === 'number' ? e.$metadata.httpStatusCode : 0;
  if (FORBIDDEN_NAMES.has(name)) return 'forbidden';
  if (
    e.$retryable !== undefined ||
    THROTTLING_NAMES.has(name) ||
    TRANSIENT_NAMES.has(name) ||
    status === 429 ||
    status >= 500 ||
    isTransientNetworkCode(e.code) ||
    // The SDK wraps a network error that is not an `Error` of its own realm (as under jest) in
    // "AWS SDK error wrapper for Error: connect ECONNREFUSED …": only the message keeps the code.
    (status === 0 && typeof e.message === 'string' && NETWORK_CODE_IN_MESSAGE.test(e.message))
  ) {
    return 'transient';
  }
  if (status === 403) return 'forbidden';
  return 'other';
}

function describeAwsError(error: unknown): string {
  if (!(error instanceof Error)) return String(error);
  const status = (error as SdkErrorShape).$metadata?.httpStatusCode;
  const code = (error as SdkErrorShape).code;
  return (
    `${error.name}${typeof code === 'string' && code !== error.name ? ` (${code})` : ''}` +
    `${typeof status === 'number' ? ` HTTP ${status}` : ''}: ${error.message}`
  );
}

/**
 * Turns an SDK failure of `action` into the deployer's kinds: TransientError for what may pass,
 * PermanentError 'forbidden' for a refused identity (with `fix` saying which permission), and an
 * Error naming the action for anything else.
 */
export function awsFailure(action: string, error: unknown, fix: string): Error {
  const what = `${action} failed: ${describeAwsError(error)}`;
  switch (classifyAwsError(error)) {
    case 'transient':
      return new TransientError(what, { cause: error });
    case 'forbidden':
      return new PermanentError('forbidden', `${what}. ${fix}`);
    default:
      return new Error(what, { cause: error });
  }
}
