// A content-addressed store of blobs named by sha256 (.debs, Packages indexes; later layers), laid out
// as an OCI layout's blobs/sha256/<hex>. Ingest is containerd's: stream into a temp file in the same
// filesystem while counting and hashing, fsync, then rename into place and mark read-only — a blob
// path only ever holds verified bytes. A present blob is a hit; one whose bytes no longer match (disk
// corruption, tampering) is detected by `ensure`, removed and fetched again, never used.
import { createReadStream, createWriteStream } from 'node:fs';
import { access, chmod, lstat, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { VerifyingStream, type Expected, isSha256Hex } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { TransientError, isTransient } from '../http/retry.js';

export class ContentStore {
  constructor(readonly dir: string) {}

  blobPath(sha256: string): string {
    if (!isSha256Hex(sha256)) throw new DistillError('CACHE_IO', `not a sha256: ${JSON.stringify(sha256)}`);
    return join(this.dir, 'blobs', 'sha256', sha256);
  }

  /**
   * Make sure the store's directory exists and is writable (CACHE_IO otherwise: a read-only directory,
   * a file where the directory belongs), and sweep what killed runs left behind.
   */
  async prepare(): Promise<void> {
    try {
      await mkdir(this.dir, { recursive: true });
      const st = await stat(this.dir);
      if (!st.isDirectory()) throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
      await access(this.dir, constants.W_OK | constants.X_OK);
    } catch (err) {
      throw cacheIo(this.dir, err);
    }
    await this.sweep();
  }

  /** Present with the expected size (cheap; does not rehash). */
  async has(e: Pick<Expected, 'sha256' | 'size'>): Promise<boolean> {
    try {
      const st = await stat(this.blobPath(e.sha256));
      return st.isFile() && (e.size < 0 || st.size === e.size);
    } catch {
      return false;
    }
  }

  /**
   * Present and its bytes hash to the expected digest. A corrupt entry is removed — but one of another
   * size than expected is left alone: the expectation (a lock entry, a record) may be what is wrong,
   * and an intact blob is never deleted on its word. A verified download replaces a corrupt one.
   */
  async verify(e: Expected): Promise<boolean> {
    let st;
    try {
      st = await lstat(this.blobPath(e.sha256));
    } catch {
      return false;
    }
    if (!st.isFile()) {
      // A directory or link where a blob belongs (tampering, a broken tool): dropped, fetched again.
      await this.remove(e.sha256);
      return false;
    }
    if (e.size >= 0 && st.size !== e.size) return false;
    try {
      await pipeline(createReadStream(this.blobPath(e.sha256)), new VerifyingStream(e), devNull());
      return true;
    } catch {
      await this.remove(e.sha256);
      return false;
    }
  }

  /** Refuse (BLOB_SIZE_MISMATCH) a stored blob whose size is not the expected one, before reading it. */
  async assertSize(e: Pick<Expected, 'sha256' | 'size' | 'what'>): Promise<void> {
    let size: number;
    try {
      size = (await stat(this.blobPath(e.sha256))).size;
    } catch (err) {
      throw new DistillError('CACHE_IO', `${e.what}: not in the cache ${this.dir}: ${messageOf(err)}`, { cause: err, hint: 'run the command again; it fetches what is missing' });
    }
    if (size !== e.size) {
      throw new DistillError('BLOB_SIZE_MISMATCH', `${e.what}: the cached blob ${e.sha256.slice(0, 12)} has ${size} bytes, expected ${e.size}`, {
        hint: 'the lock and the blob disagree; run `distill lock` to rewrite the lock',
      });
    }
  }

  /**
   * Remove what killed runs left behind: ingest temp files (and other `*.tmp-*` files under the store)
   * not touched for `olderThanMs` — long enough that no live writer still owns them.
   */
  async sweep(olderThanMs = SWEEP_AGE_MS, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const sub of ['ingest', 'build', 'layers', 'sboms']) {
      let names: string[];
      try {
        names = await readdir(join(this.dir, sub));
      } catch {
        continue;
      }
      for (const n of names) {
        // ingest/ and build/ hold only temporaries; records beside their temp files only those.
        if ((sub === 'layers' || sub === 'sboms') && !TEMP_NAME.test(n)) continue;
        const p = join(this.dir, sub, n);
        try {
          const st = await lstat(p);
          if (now - st.mtimeMs < olderThanMs) continue;
          await rm(p, { recursive: true, force: true });
          removed += 1;
        } catch {
          // gone already, or not ours to remove: harmless
        }
      }
    }
    return removed;
  }

  /** Stream a blob out, verified as it is read: a blob corrupted on disk fails the read. */
  open(e: Expected): Readable {
    const v = new VerifyingStream(e);
    const src = createReadStream(this.blobPath(e.sha256));
    src.on('error', (err) => v.destroy(err));
    // A reader that stops early destroys v; the file must close with it.
    v.on('close', () => src.destroy());
    return src.pipe(v);
  }

  /** Ingest a stream whose size and digest are known in advance: temp → verify → fsync → rename. */
  async put(e: Expected, source: Readable): Promise<string> {
    // The source may fail while the directories are being made, before pipeline() listens: keep that
    // error from crashing the process; pipeline() then reports it from the stream's errored state.
    const early = (): void => {};
    source.on('error', early);
    const final = this.blobPath(e.sha256);
    const tmpDir = join(this.dir, 'ingest');
    try {
      await mkdir(tmpDir, { recursive: true });
      await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    } catch (err) {
      source.destroy();
      source.off('error', early);
      throw cacheIo(this.dir, err);
    }
    const tmp = join(tmpDir, `${e.sha256.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
    try {
      await pipeline(source, new VerifyingStream(e), createWriteStream(tmp, { mode: 0o600 }));
      const fh = await open(tmp, 'r');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
      await chmod(tmp, 0o444);
      // A directory (or link) where the blob belongs would make the rename fail: it is not a blob.
      const there = await lstat(final).catch(() => undefined);
      if (there !== undefined && !there.isFile()) await rm(final, { recursive: true, force: true });
      await rename(tmp, final);
      return final;
    } catch (err) {
      await rm(tmp, { force: true });
      if (err instanceof DistillError) throw err;
      // A connection that broke mid-body is worth another attempt; a full disk is not.
      if (isTransient(err)) throw new TransientError(`${e.what}: download interrupted: ${messageOf(err)}`, undefined, err);
      throw new DistillError('CACHE_IO', `cannot store ${e.what} in ${this.dir}: ${messageOf(err)}`, { cause: err, hint: CACHE_HINT });
    } finally {
      source.destroy();
      source.off('error', early);
    }
  }

  /**
   * Moves a file distill has just written — and hashed while writing it — into the store by rename,
   * without reading it again. Its size is re-checked; on another filesystem (EXDEV) it is copied
   * through put(), which verifies every byte.
   */
  async adopt(e: Expected, file: string): Promise<string> {
    const final = this.blobPath(e.sha256);
    await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
    try {
      const st = await stat(file);
      if (!st.isFile() || st.size !== e.size) throw new DistillError('CACHE_IO', `${e.what}: ${file} is ${st.size} bytes, expected ${e.size}`);
      await chmod(file, 0o444);
      // As in put(): a directory (or link) where the blob belongs is not a blob, and would fail the rename.
      const there = await lstat(final).catch(() => undefined);
      if (there !== undefined && !there.isFile()) await rm(final, { recursive: true, force: true });
      await rename(file, final);
      return final;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return this.put(e, createReadStream(file));
      if (err instanceof DistillError) throw err;
      throw new DistillError('CACHE_IO', `cannot store ${e.what} in ${this.dir}: ${messageOf(err)}`, { cause: err });
    }
  }

  async remove(sha256: string): Promise<void> {
    await rm(this.blobPath(sha256), { force: true, recursive: true });
  }
}

/** Temp files the store's writers name `<final>.tmp-<random>`; the sweeper removes stale ones. */
export const TEMP_NAME = /\.tmp-[0-9a-f]+$/;
/** A temp file untouched this long belongs to no live writer. */
export const SWEEP_AGE_MS = 60 * 60 * 1000;
export const CACHE_HINT = 'the cache directory must be a writable directory; pass another with --cache or fix its permissions';

export function cacheIo(dir: string, err: unknown): DistillError {
  return new DistillError('CACHE_IO', `cannot use the cache directory ${dir}: ${messageOf(err)}`, { cause: err, hint: CACHE_HINT });
}

function devNull() {
  return async function (source: AsyncIterable<unknown>): Promise<void> {
    for await (const _ of source) {
      // discard
    }
  };
}
