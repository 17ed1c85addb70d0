// The one local content store: every blob distill writes under its digest — .debs and Packages
// indexes, layers, derived entries (SBOMs) in the cache, and the blobs of an OCI layout it writes — goes
// through put(). Laid out as an OCI layout's blobs/sha256/<hex>. Ingest is containerd's: stream into a
// temp file in the same filesystem while counting and hashing (size and digest checked against what
// the caller expects, or learnt when it expects nothing), fsync, then rename into place — a blob path
// only ever holds verified bytes, a failed put leaves nothing, and a put of a blob already present and
// intact writes nothing (concurrent puts of one digest are safe: each renames identical bytes).
// A present blob is a hit; one whose bytes no longer match (disk corruption, tampering) is detected by
// `verify`, removed and fetched again, never used. Reads (`open`) are verifying: the directory is the
// user's, other processes write it, and every reader (a layout sink, a push, a layer read) streams
// what it reads on to somewhere that trusts it — one sha256 pass beside the read is the price.
//
// Two layouts of the temporaries: the cache keeps them in ingest/ (swept wholesale); an OCI layout
// (`{ layout: true }`) keeps them beside their blob as `.<hex>.<random>.tmp`, so that the directory
// stays a plain image layout (no extra directories) and blobs stay 0644 like every other tool's.
//
// Digests are ATTACKER-CONTROLLED (a descriptor, a lock, a registry's answer): only `sha256:` followed
// by 64 lowercase hex characters (or the bare hex) names a blob — no other algorithm, no uppercase, no
// path separators — so a digest can never name a path outside blobs/sha256.
import { createReadStream } from 'node:fs';
import { access, chmod, copyFile, lstat, mkdir, open as openFile, readdir, rename, rm, stat } from 'node:fs/promises';
import { constants } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HashingStream, UNKNOWN_SIZE_CAP, VerifyingStream, type Expected, type Sha256Hex, isSha256Hex } from '../digest.js';
import { fileDigest, fileMatches, fsyncDir, fsyncFile } from '../util/atomic-write.js';
import { DistillError, messageOf } from '../errors.js';
import { TransientError, isTransient } from '../http/retry.js';

export interface ContentStoreOptions {
  /** The directory is an OCI image layout: temporaries beside their blob, blobs 0644, errors LAYER_IO. */
  layout?: boolean;
}

/** What put() stored: the blob's digest (checked, or learnt), its size and its path. */
export interface StoredBlob {
  sha256: Sha256Hex;
  size: number;
  path: string;
  /** false when an intact blob of that digest was already there (the source was not read). */
  written: boolean;
}

/** What a put() may expect: both size and digest, a digest only (size -1), or nothing (learnt). */
export interface PutExpectation {
  what: string;
  sha256?: Sha256Hex;
  size?: number;
}

export class ContentStore {
  private readonly layout: boolean;

  constructor(
    readonly dir: string,
    opts: ContentStoreOptions = {},
  ) {
    this.layout = opts.layout === true;
  }

  /** The path of a blob; `digest` is `sha256:<hex>` or the bare hex, anything else is refused. */
  blobPath(digest: string): string {
    return join(this.dir, 'blobs', 'sha256', blobHex(digest));
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

  /**
   * Present (a regular file) with the expected size — cheap: it does not rehash. `e` is a digest
   * string (any size), or a digest with a size (-1: any).
   */
  async has(e: string | Pick<Expected, 'sha256' | 'size'>): Promise<boolean> {
    const { sha256, size } = typeof e === 'string' ? { sha256: e, size: -1 } : e;
    const path = this.blobPath(sha256); // a hostile digest is refused, not reported absent
    try {
      const st = await lstat(path);
      return st.isFile() && (size < 0 || st.size === size);
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
    if (await fileMatches(this.blobPath(e.sha256), e)) return true;
    await this.remove(e.sha256);
    return false;
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
   * Remove what killed runs left behind: ingest temp files, temporaries beside blobs, and other
   * temp-named files under the store not touched for `olderThanMs` — long enough that no live writer
   * still owns them.
   */
  async sweep(olderThanMs = SWEEP_AGE_MS, now = Date.now()): Promise<number> {
    let removed = 0;
    for (const sub of ['ingest', 'build', 'layers', 'sboms', join('blobs', 'sha256')]) {
      let names: string[];
      try {
        names = await readdir(join(this.dir, sub));
      } catch {
        continue;
      }
      for (const n of names) {
        // ingest/ and build/ hold only temporaries; elsewhere only temp-named files are ours to sweep.
        if (sub !== 'ingest' && sub !== 'build' && !TEMP_NAME.test(n)) continue;
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

  /**
   * Stream a blob out, verified as it is read: a blob corrupted on disk fails the read (at its end, as
   * every streamed check does — a consumer must not act on the bytes before the stream has ended).
   * `highWaterMark`: bytes per read (default 64 KiB).
   */
  open(expected: Expected | string, opts: { highWaterMark?: number } = {}): Readable {
    // A bare digest: the digest is checked, the size is whatever the file has (capped as any unsized blob).
    const e = typeof expected === 'string' ? { sha256: blobHex(expected), size: -1, what: `blob ${expected}` } : expected;
    const v = new VerifyingStream(e);
    const src = createReadStream(this.blobPath(e.sha256), opts.highWaterMark !== undefined ? { highWaterMark: opts.highWaterMark } : {});
    src.on('error', (err) => v.destroy(err));
    // A reader that stops early destroys v; the file must close with it.
    v.on('close', () => src.destroy());
    return src.pipe(v);
  }

  /** Ingest a stream whose size and digest are known in advance: temp → verify → fsync → rename. Returns the path. */
  async put(e: Expected, source: Readable | (() => Readable | Promise<Readable>)): Promise<string> {
    return (await this.putStream(source, e)).path;
  }

  /**
   * The one way a blob enters the store. `expected` gives the digest and size the bytes must have
   * (checked while they stream; a mismatch stores nothing), a digest only (size -1), or neither — then
   * the blob is named by the digest learnt from its bytes. When an intact blob of the expected digest
   * is already there, nothing is written and `source` is not read (a function is then not even called).
   */
  async putStream(source: Readable | (() => Readable | Promise<Readable>), expected: PutExpectation = { what: 'a blob' }): Promise<StoredBlob> {
    const known = expected.sha256 !== undefined ? { sha256: blobHex(expected.sha256), size: expected.size ?? -1, what: expected.what } : undefined;
    let stream: Readable | undefined = typeof source === 'function' ? undefined : source;
    // The source may fail before pipeline() listens: keep that error from crashing the process;
    // pipeline() then reports it from the stream's errored state.
    const early = (): void => {};
    stream?.on('error', early);
    const done = (): void => {
      stream?.destroy();
      stream?.off('error', early);
    };
    try {
      if (known !== undefined && (await this.has(known)) && (await this.verify(known))) {
        const path = this.blobPath(known.sha256);
        const size = known.size >= 0 ? known.size : (await stat(path)).size;
        return { sha256: known.sha256, size, path, written: false };
      }
      const tmpDir = this.layout ? join(this.dir, 'blobs', 'sha256') : join(this.dir, 'ingest');
      try {
        await mkdir(tmpDir, { recursive: true });
        await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      } catch (err) {
        throw this.ioError(expected.what, err);
      }
      const label = known?.sha256 ?? 'new';
      const tmp = this.layout
        ? join(tmpDir, `.${label.slice(0, 16)}.${randomBytes(6).toString('hex')}.tmp`)
        : join(tmpDir, `${label.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
      if (stream === undefined) {
        stream = await (source as () => Readable | Promise<Readable>)();
        stream.on('error', early);
      }
      const check = known !== undefined ? new VerifyingStream(known) : new HashingStream();
      try {
        // The temp file exists before any byte can fail: a write stream opens its file lazily, so after
        // an early source error it could appear after the cleanup below had removed it (seen under load).
        const fh = await openFile(tmp, 'wx', 0o600);
        await pipeline(stream, check, fh.createWriteStream());
        const sha256 = known?.sha256 ?? (check as HashingStream).sha256;
        const size = known !== undefined && known.size >= 0 ? known.size : (await stat(tmp)).size;
        if (known === undefined && size > UNKNOWN_SIZE_CAP) throw new DistillError('BLOB_SIZE_MISMATCH', `${expected.what}: more than ${UNKNOWN_SIZE_CAP} bytes`);
        await fsyncFile(tmp);
        await chmod(tmp, this.layout ? 0o644 : 0o444);
        const final = this.blobPath(sha256);
        // A directory (or link) where the blob belongs would make the rename fail: it is not a blob.
        const there = await lstat(final).catch(() => undefined);
        if (there !== undefined && !there.isFile()) await rm(final, { recursive: true, force: true });
        await rename(tmp, final);
        await fsyncDir(dirname(final));
        return { sha256, size, path: final, written: true };
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => {});
        throw err;
      }
    } catch (err) {
      if (err instanceof DistillError) throw err;
      // A connection that broke mid-body is worth another attempt; a full disk is not.
      if (isTransient(err)) throw new TransientError(`${expected.what}: download interrupted: ${messageOf(err)}`, undefined, err);
      throw this.ioError(expected.what, err);
    } finally {
      done();
    }
  }

  /**
   * Ingest a local file of known size and digest by a kernel copy (copy_file_range; a clone where the
   * filesystem has them) into the temp file, which is then hashed — the same check as put()'s stream,
   * without the bytes passing through JS streams (java's 80 MB layer into a layout: ~0.2 s of CPU
   * by put(), ~0.08 s this way). Then fsync and rename, as put().
   */
  async copyIn(e: Expected, file: string): Promise<StoredBlob> {
    const known = { sha256: blobHex(e.sha256), size: e.size, what: e.what };
    try {
      if (await this.verify(known)) {
        const path = this.blobPath(known.sha256);
        return { sha256: known.sha256, size: known.size >= 0 ? known.size : (await stat(path)).size, path, written: false };
      }
      const tmpDir = this.layout ? join(this.dir, 'blobs', 'sha256') : join(this.dir, 'ingest');
      await mkdir(tmpDir, { recursive: true });
      await mkdir(join(this.dir, 'blobs', 'sha256'), { recursive: true });
      const tmp = this.layout
        ? join(tmpDir, `.${known.sha256.slice(0, 16)}.${randomBytes(6).toString('hex')}.tmp`)
        : join(tmpDir, `${known.sha256.slice(0, 16)}-${randomBytes(6).toString('hex')}`);
      try {
        await copyFile(file, tmp, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE);
        const got = await fileDigest(tmp, known.size < 0 ? UNKNOWN_SIZE_CAP : known.size);
        if ((known.size >= 0 && got.size !== known.size) || got.size > UNKNOWN_SIZE_CAP) {
          throw new DistillError('BLOB_SIZE_MISMATCH', `${known.what}: got ${got.size} bytes, expected ${known.size}`, { hint: 'the file changed after it was written; rebuild' });
        }
        if (got.sha256 !== known.sha256) {
          throw new DistillError('BLOB_DIGEST_MISMATCH', `${known.what}: sha256 ${got.sha256} does not match the expected ${known.sha256}`, { hint: 'the content was altered or the descriptor is wrong; do not use it' });
        }
        await fsyncFile(tmp);
        await chmod(tmp, this.layout ? 0o644 : 0o444);
        const final = this.blobPath(known.sha256);
        const there = await lstat(final).catch(() => undefined);
        if (there !== undefined && !there.isFile()) await rm(final, { recursive: true, force: true });
        await rename(tmp, final);
        await fsyncDir(dirname(final));
        return { sha256: known.sha256, size: got.size, path: final, written: true };
      } catch (err) {
        await rm(tmp, { force: true }).catch(() => {});
        throw err;
      }
    } catch (err) {
      if (err instanceof DistillError) throw err;
      throw this.ioError(e.what, err);
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
      await chmod(file, this.layout ? 0o644 : 0o444);
      // A directory (or link) where the blob belongs would make the rename fail: it is not a blob.
      const there = await lstat(final).catch(() => undefined);
      if (there !== undefined && !there.isFile()) await rm(final, { recursive: true, force: true });
      await rename(file, final);
      return final;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EXDEV') return this.put(e, createReadStream(file));
      if (err instanceof DistillError) throw err;
      throw this.ioError(e.what, err);
    }
  }

  async remove(digest: string): Promise<void> {
    await rm(this.blobPath(digest), { force: true, recursive: true });
  }

  private ioError(what: string, err: unknown): DistillError {
    if (this.layout) return new DistillError('LAYER_IO', `cannot write ${what} to ${this.dir}: ${messageOf(err)}`, { cause: err, hint: 'check that the directory is writable and has free space' });
    return new DistillError('CACHE_IO', `cannot store ${what} in ${this.dir}: ${messageOf(err)}`, { cause: err, hint: CACHE_HINT });
  }
}

/** The size and sha256 of a file, read in large chunks; more than `cap` bytes stops the read (size cap + 1 reported). */
/**
 * The hex of a blob digest: `sha256:<64 lowercase hex>` or the bare hex. ATTACKER-CONTROLLED: anything
 * else — another algorithm, uppercase, a path — is refused, so no digest names a path outside the store.
 */
export function blobHex(digest: string): Sha256Hex {
  const hex = typeof digest === 'string' && digest.startsWith('sha256:') ? digest.slice('sha256:'.length) : digest;
  if (typeof hex !== 'string' || !isSha256Hex(hex)) {
    throw new DistillError('OCI_INVALID', `not a sha256 digest: ${JSON.stringify(String(digest).slice(0, 100))}`, {
      hint: 'blobs are named sha256:<64 lowercase hex characters>; the descriptor or record is malformed',
    });
  }
  return hex;
}

/**
 * Temp files: the atomic-write helper's `.<name>.<random>.tmp` (util/atomic-write.ts), and the older
 * `<final>.tmp-<random>` some runs may have left; the sweeper removes stale ones.
 */
export const TEMP_NAME = /(\.tmp-[0-9a-f]+|^\..+\.[0-9a-f]{12}\.tmp)$/;
/** A temp file untouched this long belongs to no live writer. */
export const SWEEP_AGE_MS = 60 * 60 * 1000;
export const CACHE_HINT = 'the cache directory must be a writable directory; pass another with --cache or fix its permissions';

export function cacheIo(dir: string, err: unknown): DistillError {
  return new DistillError('CACHE_IO', `cannot use the cache directory ${dir}: ${messageOf(err)}`, { cause: err, hint: CACHE_HINT });
}
