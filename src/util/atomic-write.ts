// The one way distill writes a file: into a temp file beside its final path (same filesystem, so the
// rename is atomic), fsync, rename — the final path only ever holds complete bytes, and a failure
// leaves it as it was (containerd's content-store ingest, applied to every writer). Plus the one check
// "is the blob at this path intact", used by every sink before it skips a write.
import { randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { chmod, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';

/** A temp path beside `final`: hidden, unique, recognisable as ours. */
export function tempPathFor(final: string): string {
  return join(dirname(final), `.${basename(final).slice(0, 80)}.${randomBytes(6).toString('hex')}.tmp`);
}

/**
 * `write(tmp)` fills a temp file beside `final`; it is fsynced and renamed into place. DistillErrors
 * thrown by `write` (a digest mismatch, say) pass through unchanged; anything else is LAYER_IO.
 */
export async function writeAtomic(final: string, write: (tmp: string) => Promise<void>, mode?: number): Promise<void> {
  const tmp = tempPathFor(final);
  try {
    await write(tmp);
    await fsyncFile(tmp);
    if (mode !== undefined) await chmod(tmp, mode);
    await rename(tmp, final);
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    if (e instanceof DistillError) throw e;
    throw new DistillError('LAYER_IO', `cannot write ${final}: ${messageOf(e)}`, { cause: e, hint: 'check that the directory exists, is writable and has free space' });
  }
}

/** Small bytes (index.json, oci-layout, a manifest) written atomically. */
export async function writeFileAtomic(final: string, bytes: Uint8Array | string, mode = 0o644): Promise<void> {
  await writeAtomic(final, (tmp) => writeFile(tmp, bytes, { mode }));
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** The file at `path` exists with exactly `size` bytes hashing to `sha256` (re-hashed, never trusted). */
export async function fileMatches(path: string, expected: { size: number; sha256: string }): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile() || st.size !== expected.size) return false;
    await pipeline(createReadStream(path), new VerifyingStream({ ...expected, what: path }), async (src: AsyncIterable<unknown>) => {
      for await (const _ of src) {
        // hashing is the point
      }
    });
    return true;
  } catch {
    return false;
  }
}
