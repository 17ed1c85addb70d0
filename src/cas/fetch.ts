// Getting a blob of known size and sha256 into the store: a verified hit costs one rehash; a miss or
// a corrupt entry is downloaded under the retry policy, each attempt starting from a clean temp file.
import { Transform } from 'node:stream';
import type { Expected } from '../digest.js';
import type { OnProgress } from '../events.js';
import { openUrl } from '../http/open.js';
import type { LowSpeedLimit } from '../http/low-speed.js';
import { defaultRetryPolicy, withRetry, type RetryPolicy } from '../http/retry.js';
import type { ContentStore } from './store.js';

export interface FetchBlobOptions {
  retry?: RetryPolicy;
  /** Below this rate a download is cut and retried (default DEFAULT_LOW_SPEED). */
  lowSpeed?: LowSpeedLimit;
  onProgress?: OnProgress;
}

export async function fetchBlob(store: ContentStore, expected: Expected, url: string, opts: FetchBlobOptions = {}): Promise<{ path: string; cached: boolean }> {
  const onProgress = opts.onProgress;
  if (await store.verify(expected)) {
    onProgress?.({ type: 'download-done', what: expected.what, bytes: expected.size, cached: true });
    return { path: store.blobPath(expected.sha256), cached: true };
  }
  onProgress?.({ type: 'download-start', what: expected.what, bytes: expected.size });
  const path = await withRetry(
    opts.retry ?? defaultRetryPolicy,
    async () => {
      const { body } = await openUrl(url, expected.what, opts.lowSpeed);
      let seen = 0;
      let last = 0;
      const counter = new Transform({
        transform(chunk: Buffer, _enc, cb) {
          seen += chunk.length;
          if (onProgress && seen - last >= 256 * 1024) {
            last = seen;
            onProgress({ type: 'download-progress', what: expected.what, bytes: seen, total: expected.size });
          }
          cb(null, chunk);
        },
      });
      body.on('error', (e) => counter.destroy(e));
      counter.on('close', () => body.destroy()); // a refused download closes its connection or file
      return store.put(expected, body.pipe(counter));
    },
    { onRetry: (attempt, delayMs, e) => onProgress?.({ type: 'retry', what: expected.what, attempt, delayMs, reason: (e as Error).message }) },
  );
  onProgress?.({ type: 'download-done', what: expected.what, bytes: expected.size, cached: false });
  return { path, cached: false };
}
