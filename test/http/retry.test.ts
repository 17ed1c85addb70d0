import { test } from 'node:test';
import assert from 'node:assert/strict';
import { backoffDelay, parseRetryAfter, TransientError, withRetry, defaultRetryPolicy } from '../../src/http/retry.js';
import { DistillError } from '../../src/errors.js';

test('transient failures are retried with backoff, then succeed', async () => {
  const delays: number[] = [];
  let calls = 0;
  const r = await withRetry(
    { attempts: 4, baseDelayMs: 100, maxDelayMs: 1000 },
    async () => {
      calls++;
      if (calls < 3) throw new TransientError('503');
      return 'ok';
    },
    { sleep: async (ms) => void delays.push(ms), random: () => 0.999 },
  );
  assert.equal(r, 'ok');
  assert.equal(calls, 3);
  assert.deepEqual(delays, [99, 199]);
});

test('Retry-After wins over backoff and is capped', async () => {
  assert.equal(backoffDelay(defaultRetryPolicy, 1, 3000, () => 0.5), 3000);
  assert.equal(backoffDelay(defaultRetryPolicy, 1, 3_600_000, () => 0.5), defaultRetryPolicy.maxDelayMs);
  assert.equal(parseRetryAfter('7', 0), 7000);
  assert.equal(parseRetryAfter('Thu, 01 Jan 1970 00:00:10 GMT', 4000), 6000);
  assert.equal(parseRetryAfter('soon', 0), undefined);
});

test('permanent errors are not retried; attempts are bounded', async () => {
  let calls = 0;
  await assert.rejects(
    withRetry(defaultRetryPolicy, async () => {
      calls++;
      throw new DistillError('NOT_FOUND_IN_MIRROR', '404');
    }, { sleep: async () => {} }),
    (e: any) => e.code === 'NOT_FOUND_IN_MIRROR',
  );
  assert.equal(calls, 1);
  calls = 0;
  await assert.rejects(
    withRetry({ attempts: 3, baseDelayMs: 1, maxDelayMs: 1 }, async () => {
      calls++;
      throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
    }, { sleep: async () => {} }),
  );
  assert.equal(calls, 3);
});
