// The one way distill writes a file that is not a content-addressed blob (index.json, oci-layout, a
// lockfile, a cache record, a key, a docker archive): into a temp file beside its final path (same
// filesystem, so the rename is atomic), fsync, rename, fsync the directory — the final path only ever
// holds complete bytes, and a failure leaves it as it was (containerd's content-store ingest, applied
// to every writer). Blobs named by their digest go through the content store (cas/store.ts), which
// uses the same steps and verifies the bytes on the way. Plus the one check "is the blob at this path
// intact", for a reader that only looks.
import { createHash, randomBytes } from 'node:crypto';
import { chmod, open, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { UNKNOWN_SIZE_CAP } from '../digest.js';
import { DistillError, type ErrorCode, messageOf } from '../errors.js';

/** A temp path beside `final`: hidden, unique, recognisable as ours. */
export function tempPathFor(final: string): string {
  return join(dirname(final), `.${basename(final).slice(0, 80)}.${randomBytes(6).toString('hex')}.tmp`);
}

export interface AtomicWriteOptions {
  /** The final file's mode (default: whatever `write` created, 0644 for writeFileAtomic). */
  mode?: number;
  /** The error code of a failed write (default LAYER_IO), and its hint. */
  code?: ErrorCode;
  hint?: string;
}

/**
 * `write(tmp)` fills a temp file beside `final`; it is fsynced and renamed into place, and the
 * directory fsynced. DistillErrors thrown by `write` (a digest mismatch, say) pass through unchanged;
 * anything else is `opts.code` (LAYER_IO). `opts` may be a mode, as it once was.
 */
export async function writeAtomic(final: string, write: (tmp: string) => Promise<void>, opts: number | AtomicWriteOptions = {}): Promise<void> {
  const o = typeof opts === 'number' ? { mode: opts } : opts;
  const tmp = tempPathFor(final);
  try {
    await write(tmp);
    await fsyncFile(tmp);
    if (o.mode !== undefined) await chmod(tmp, o.mode);
    await rename(tmp, final);
    await fsyncDir(dirname(final));
  } catch (e) {
    await rm(tmp, { force: true }).catch(() => {});
    if (e instanceof DistillError) throw e;
    throw new DistillError(o.code ?? 'LAYER_IO', `cannot write ${final}: ${messageOf(e)}`, { cause: e, hint: o.hint ?? 'check that the directory exists, is writable and has free space' });
  }
}

/** Small bytes (index.json, oci-layout, a manifest, a record) written atomically. */
export async function writeFileAtomic(final: string, bytes: Uint8Array | string, opts: number | AtomicWriteOptions = 0o644): Promise<void> {
  const o = typeof opts === 'number' ? { mode: opts } : opts;
  // O_EXCL: the temp name is fresh, so this never follows a link planted at it.
  await writeAtomic(final, (tmp) => writeFile(tmp, bytes, { mode: o.mode ?? 0o644, flag: 'wx' }), { ...o, mode: o.mode ?? 0o644 });
}

/** Makes a rename durable; best effort (some filesystems refuse to fsync a directory). */
export async function fsyncDir(dir: string): Promise<void> {
  try {
    const fh = await open(dir, 'r');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
  } catch {
    // not supported here: the rename is still atomic, only its durability across a crash is weaker
  }
}

export async function fsyncFile(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/**
 * The file at `path` exists with exactly `size` bytes (any size up to UNKNOWN_SIZE_CAP when -1) hashing
 * to `sha256` — re-hashed, never trusted. A plain read loop into one reused 1 MiB buffer: on a 90 MB
 * layer this costs about half what a 64 KiB read stream through a Transform does (a no-change rebuild
 * checks every .deb, cached layer and layout blob this way).
 */
export async function fileMatches(path: string, expected: { size: number; sha256: string }): Promise<boolean> {
  try {
    const st = await stat(path);
    if (!st.isFile() || (expected.size >= 0 && st.size !== expected.size)) return false;
    const got = await fileDigest(path, expected.size < 0 ? UNKNOWN_SIZE_CAP : expected.size);
    return (expected.size < 0 || got.size === expected.size) && got.sha256 === expected.sha256;
  } catch {
    return false;
  }
}

/**
 * Size and sha256 of the file at `path`, read in 1 MiB chunks into one buffer. Past `cap` bytes it stops
 * reading and answers the size seen so far with an empty digest (the caller refuses an oversized file).
 */
export async function fileDigest(path: string, cap: number): Promise<{ size: number; sha256: string }> {
  const fh = await open(path, 'r');
  try {
    const hash = createHash('sha256');
    const buf = Buffer.allocUnsafe(1024 * 1024);
    let size = 0;
    for (;;) {
      const { bytesRead } = await fh.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      size += bytesRead;
      if (size > cap) return { size, sha256: '' };
      hash.update(buf.subarray(0, bytesRead));
    }
    return { size, sha256: hash.digest('hex') };
  } finally {
    await fh.close().catch(() => {});
  }
}
