// `distill fetch`: every .deb that the locks of the given images (and their bases) pin, into the store.
import { ContentStore } from '../cas/store.js';
import { fetchDebs, type FetchDebsOptions, type FetchSummary } from './debs.js';
import { loadLockChain } from '../lock/load.js';
import type { Lockfile } from '../lock/lockfile.js';

export async function fetchImages(definitionFiles: readonly string[], opts: FetchDebsOptions & { cacheDir: string }): Promise<FetchSummary> {
  const locks = new Map<string, Lockfile>();
  for (const f of definitionFiles) {
    for (const li of await loadLockChain(f)) locks.set(li.lockPath, li.lock);
  }
  return fetchDebs(new ContentStore(opts.cacheDir), [...locks.values()], opts);
}
