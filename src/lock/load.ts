// Loading what a build needs from disk: a definition, its fresh lock, and the same for every base it
// extends (base first). A stale lock anywhere in the chain is refused.
import { loadDefinition } from '../definition/load.js';
import type { ImageDefinition } from '../definition/types.js';
import { assertFresh, checkLockChain, lockPathFor, readLock, type Lockfile } from './lockfile.js';

export interface LockedImage {
  definition: ImageDefinition;
  lock: Lockfile;
  lockPath: string;
  lockSha256: string;
}

/** The image and its bases, outermost base first. */
export async function loadLockChain(definitionFile: string): Promise<LockedImage[]> {
  const def = await loadDefinition(definitionFile);
  const chain: ImageDefinition[] = [];
  for (let d: ImageDefinition | undefined = def; d !== undefined; d = d.base) chain.unshift(d);
  const out: LockedImage[] = [];
  for (const d of chain) {
    const lockPath = lockPathFor(d.file);
    const { lock, sha256 } = await readLock(lockPath);
    await assertFresh(d, lock, lockPath);
    out.push({ definition: d, lock, lockPath, lockSha256: sha256 });
  }
  checkLockChain(out);
  return out;
}
