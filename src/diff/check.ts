// `distill lock --check`: lock without writing, and for every lock that would change, the same diff
// `distill diff` gives between the committed locks and the fresh ones (bases included in each image).
import { lockImages, type LockOptions, type LockResult } from '../lock/lock.js';
import { lockPathFor, readLock, type Lockfile } from '../lock/lockfile.js';
import type { ImageDefinition } from '../definition/types.js';
import { isDistillError } from '../errors.js';
import { diffLockChains, type DiffOptions, type DiffResult } from './diff.js';

export interface CheckLocksOptions extends LockOptions {
  /** Read the upgrades' changelogs (default true). */
  changelogs?: boolean;
  limits?: DiffOptions['limits'];
}

export interface CheckLocksResult {
  results: LockResult[];
  /** Committed locks → fresh locks, for the images whose lock would change. */
  diff: DiffResult;
}

async function onDisk(path: string): Promise<Lockfile | undefined> {
  try {
    return (await readLock(path)).lock;
  } catch (e) {
    // A missing or unreadable committed lock: every package of the fresh one counts as added.
    if (isDistillError(e, 'LOCK_NOT_FOUND') || isDistillError(e, 'LOCK_INVALID')) return undefined;
    throw e;
  }
}

export async function checkLocks(files: readonly string[], opts: CheckLocksOptions): Promise<CheckLocksResult> {
  const results = await lockImages(files, { ...opts, dryRun: true });
  const fresh = new Map(results.map((r) => [r.path, r.lock]));
  const olds: { image: string; chain: Lockfile[] }[] = [];
  const news: { image: string; chain: Lockfile[] }[] = [];
  for (const r of results.filter((x) => x.changed)) {
    const defs: ImageDefinition[] = [];
    for (let d: ImageDefinition | undefined = r.definition; d !== undefined; d = d.base) defs.unshift(d);
    const oldChain: Lockfile[] = [];
    const newChain: Lockfile[] = [];
    for (const d of defs) {
      const p = lockPathFor(d.file);
      const committed = await onDisk(p);
      if (committed) oldChain.push(committed);
      const now = fresh.get(p) ?? committed;
      if (now) newChain.push(now);
    }
    if (oldChain.length > 0 && (await onDisk(r.path)) !== undefined) olds.push({ image: r.lock.image, chain: oldChain });
    news.push({ image: r.lock.image, chain: newChain });
  }
  const diff = await diffLockChains(olds, news, { old: 'committed locks', new: 'fresh locks' }, {
    cacheDir: opts.cacheDir,
    ...(opts.mirrors ? { mirrors: opts.mirrors } : {}),
    ...(opts.changelogs !== undefined ? { changelogs: opts.changelogs } : {}),
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  return { results, diff };
}
