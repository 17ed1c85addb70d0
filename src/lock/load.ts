// Loading what a build needs from disk: a definition, its fresh lock, and the same for every base it
// extends (base first). A stale lock anywhere in the chain is refused.
import { readFile } from 'node:fs/promises';
import { sha256Hex } from '../digest.js';
import { DistillError } from '../errors.js';
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

/**
 * The definition and lock texts of a chain as they are now, checked against the digests it was loaded
 * with: what provenance records is read up front (not after minutes of work, when an edit could have
 * slipped in). `what` names the job in the error ("build", "join").
 */
export async function readChainTexts(chain: readonly LockedImage[], what: string): Promise<{ definition: string; lock: string }[]> {
  const texts = await Promise.all(chain.map(async (li) => ({ definition: await readFile(li.definition.file, 'utf8'), lock: await readFile(li.lockPath, 'utf8') })));
  chain.forEach((li, i) => {
    if (sha256Hex(texts[i]!.definition) !== li.definition.sha256 || sha256Hex(texts[i]!.lock) !== li.lockSha256) {
      throw new DistillError('LOCK_STALE', `${li.definition.file} or its lock changed while the ${what} started`, { hint: `run the ${what} again` });
    }
  });
  return texts;
}
