// Downloading every .deb a set of locks pins into the content-addressed store: deduplicated by sha256
// (Architecture: all packages are pinned once per architecture), in parallel up to `concurrency`,
// each verified while it streams. The first failure stops new downloads and is rethrown after the
// ones in flight settle, so no temp file outlives the call.
import type { Lockfile } from '../lock/lockfile.js';
import { resolveMirror, type MirrorInputs } from '../debian/mirrors.js';
import { DistillError } from '../errors.js';
import type { OnProgress } from '../events.js';
import type { RetryPolicy } from '../http/retry.js';
import { fetchBlob } from '../cas/fetch.js';
import type { ContentStore } from '../cas/store.js';
import type { Expected } from '../digest.js';

export interface FetchDebsOptions {
  mirrors?: MirrorInputs;
  concurrency?: number;
  retry?: RetryPolicy;
  onProgress?: OnProgress;
  /** Only these architectures (default: all in the lock). */
  architectures?: readonly string[];
  /**
   * How a .deb already in the cache is taken: 'verify' (default) rehashes it (a corrupt one is removed
   * and fetched again); 'on-read' checks only its size and lists it in `deferred` — for a caller whose
   * every read of it is verifying (store.open, as the build's staging reads them), which then owns the
   * check: a read that fails must `verify` the deferred ones and fetch again (see build.ts).
   */
  cached?: 'verify' | 'on-read';
}

export interface FetchSummary {
  files: number;
  bytes: number;
  downloaded: number;
  downloadedBytes: number;
  /** With `cached: 'on-read'`: the cached .debs whose bytes were not hashed here (their size was checked). */
  deferred?: Expected[];
}

interface Job {
  archive: string;
  suite: string;
  filename: string;
  size: number;
  sha256: string;
}

export async function fetchDebs(store: ContentStore, locks: readonly Lockfile[], opts: FetchDebsOptions = {}): Promise<FetchSummary> {
  const jobs = new Map<string, Job>();
  const mirrorOf = new Map<string, string>();
  for (const lock of locks) {
    for (const arch of Object.keys(lock.architectures).sort()) {
      if (opts.architectures && !opts.architectures.includes(arch)) continue;
      for (const p of [...lock.architectures[arch]!.packages, ...(lock.architectures[arch]!.borrow ?? []), ...(lock.architectures[arch]!.debug ?? [])]) {
        if (jobs.has(p.sha256)) continue;
        const src = lock.sources[p.archive];
        if (src === undefined) throw new DistillError('LOCK_INVALID', `${lock.image}: ${p.name} names unknown source ${p.archive}`);
        jobs.set(p.sha256, { archive: p.archive, suite: src.suite, filename: p.filename, size: p.size, sha256: p.sha256 });
      }
    }
  }
  const queue = [...jobs.values()].sort((a, b) => b.size - a.size); // largest first: best wall time
  const onRead = opts.cached === 'on-read';
  const deferred: Expected[] = [];
  const summary: FetchSummary = { files: queue.length, bytes: 0, downloaded: 0, downloadedBytes: 0, ...(onRead ? { deferred } : {}) };
  let failure: unknown;
  const worker = async (): Promise<void> => {
    for (let job = queue.shift(); job !== undefined && failure === undefined; job = queue.shift()) {
      try {
        const expected = { size: job.size, sha256: job.sha256, what: job.filename };
        // A build from a full cache needs no mirror at all: resolve one only for a miss.
        if (onRead ? await store.has(expected) : await store.verify(expected)) {
          if (onRead) deferred.push(expected);
          summary.bytes += job.size;
          opts.onProgress?.({ type: 'download-done', what: job.filename, bytes: job.size, cached: true });
          continue;
        }
        const key = `${job.archive}\0${job.suite}`;
        let mirror = mirrorOf.get(key);
        if (mirror === undefined) {
          mirror = resolveMirror(job.archive, job.suite, undefined, opts.mirrors ?? {}).url;
          mirrorOf.set(key, mirror);
        }
        const { cached } = await fetchBlob(store, expected, `${mirror}/${job.filename}`, {
          ...(opts.retry ? { retry: opts.retry } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        });
        summary.bytes += job.size;
        if (!cached) {
          summary.downloaded++;
          summary.downloadedBytes += job.size;
        }
      } catch (e) {
        failure ??= e;
      }
    }
  };
  const c = opts.concurrency ?? 4;
  if (!Number.isInteger(c) || c < 1) throw new DistillError('USAGE', `concurrency ${c} is not a whole number ≥ 1`, { hint: 'e.g. --concurrency 4' });
  const n = Math.max(1, Math.min(c, queue.length));
  await Promise.all(Array.from({ length: n }, worker));
  if (failure !== undefined) throw failure;
  return summary;
}
