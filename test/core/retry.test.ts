import {
  backoffDelay,
  classifyAwsError,
  createRetry,
  RetryLaterError,
  withRetries,
} from '../../core/retry';
import { ConflictError, PermanentError, TransientError } from '../../core/types';

/** An operation failing with the given errors in turn, then returning 'done'. */
function flaky(errors: Error[]) {
  let calls = 0;
  return {
    operation: () => {
      calls += 1;
      const error = errors.shift();
      return error === undefined ? Promise.resolve('done') : Promise.reject(error);
    },
    calls: () => calls,
  };
}

function recorder() {
  const delays: number[] = [];
  return {
    delays,
    sleep: (ms: number) => {
      delays.push(ms);
      return Promise.resolve();
    },
  };
}

describe('withRetries', () => {
  test('Given two transient failures, then a third call succeeds after waits of 100 and 200 ms, half of each random', async () => {
    const { delays, sleep } = recorder();
    const op = flaky([new TransientError('503'), new TransientError('timeout')]);
    expect(await withRetries(op.operation, { sleep, random: () => 0 })).toBe('done');
    expect(op.calls()).toBe(3);
    expect(delays).toEqual([50, 100]);
    const high = recorder();
    const again = flaky([
      new TransientError('a'),
      new TransientError('b'),
      new TransientError('c'),
    ]);
    await withRetries(again.operation, { sleep: high.sleep, random: () => 0.999999 });
    expect(high.delays).toEqual([100, 200, 400]);
  });

  test('Given transient failures every time, then 4 calls by default and the last error is thrown', async () => {
    const { delays, sleep } = recorder();
    const errors = [1, 2, 3, 4].map((n) => new TransientError(`failure ${n}`));
    const op = flaky([...errors]);
    await expect(withRetries(op.operation, { sleep })).rejects.toBe(errors[3]);
    expect(op.calls()).toBe(4);
    expect(delays).toHaveLength(3);
  });

  test.each([
    ['PermanentError', new PermanentError('forbidden', 'no')],
    ['ConflictError', new ConflictError('409')],
    ['a plain Error', new Error('bug')],
  ])('Given %s, then it is thrown at once, never retried', async (_name, error) => {
    const { delays, sleep } = recorder();
    const op = flaky([error]);
    await expect(withRetries(op.operation, { sleep })).rejects.toBe(error);
    expect(op.calls()).toBe(1);
    expect(delays).toEqual([]);
  });

  test('Given Retry-After, then the wait is at least that, but at most the cap', async () => {
    const { delays, sleep } = recorder();
    const op = flaky([new RetryLaterError('429', 1500), new RetryLaterError('429', 30_000)]);
    await withRetries(op.operation, { sleep, random: () => 0 });
    expect(delays).toEqual([1500, 2000]);
    expect(backoffDelay(1, new RetryLaterError('429', 10), { random: () => 0 })).toBe(50);
  });

  test('Given the real clock, then the wait really happens', async () => {
    const op = flaky([new TransientError('once')]);
    const started = Date.now();
    await withRetries(op.operation, { baseDelayMs: 40, random: () => 0.999999 });
    expect(Date.now() - started).toBeGreaterThanOrEqual(35);
  });

  test('Given onRetry, then it hears of each retry with the attempt and the wait', async () => {
    const heard: [string, number, number][] = [];
    const op = flaky([new TransientError('x')]);
    await withRetries(op.operation, {
      sleep: () => Promise.resolve(),
      random: () => 0,
      onRetry: (error, attempt, delay) => heard.push([error.message, attempt, delay]),
    });
    expect(heard).toEqual([['x', 1, 50]]);
  });

  test.each([0, 1.5, -1])('Given attempts %p, then RangeError naming it', async (attempts) => {
    await expect(withRetries(() => Promise.resolve(1), { attempts })).rejects.toThrow(
      new RegExp(`attempts is ${attempts}; give a whole number`),
    );
  });

  test('Given createRetry, then a Retry (what apply takes) with those options', async () => {
    const { delays, sleep } = recorder();
    const retry = createRetry({ attempts: 2, sleep, random: () => 0 });
    const op = flaky([new TransientError('1'), new TransientError('2')]);
    await expect(retry(op.operation)).rejects.toThrow('2');
    expect(op.calls()).toBe(2);
    expect(delays).toEqual([50]);
  });
});

describe('classifyAwsError', () => {
  const sdkError = (name: string, status?: number, extra: object = {}) =>
    Object.assign(new Error(`${name} happened`), {
      name,
      ...(status === undefined ? {} : { $metadata: { httpStatusCode: status } }),
      ...extra,
    });

  test.each([
    [sdkError('ThrottlingException', 400), 'transient'],
    [sdkError('TooManyRequestsException', 429), 'transient'],
    [sdkError('ServerException', 500), 'transient'],
    [sdkError('Whatever', 503), 'transient'],
    [sdkError('SomethingRetryable', 400, { $retryable: {} }), 'transient'],
    [sdkError('TimeoutError'), 'transient'],
    [sdkError('Error', undefined, { code: 'ECONNRESET' }), 'transient'],
    [new Error('AWS SDK error wrapper for Error: connect ECONNREFUSED 127.0.0.1:9'), 'transient'],
    [sdkError('AccessDeniedException', 400), 'forbidden'],
    [sdkError('AuthorizationError', 403), 'forbidden'],
    [sdkError('Unknown', 403), 'forbidden'],
    [sdkError('InvalidParameterException', 400), 'other'],
    [sdkError('ValidationException', 400, { message: 'ECONNRESET in a parameter' }), 'other'],
    ['a string', 'other'],
  ])('Given %p, then %s', (error, kind) => {
    expect(classifyAwsError(error)).toBe(kind);
  });
});
