// The one tar reader: every tar distill reads — a .deb's control.tar and data.tar, a definition's own
// tarball, an image layer (inspect, rebuild's compare, the SBOM) — goes through readTar. Format: POSIX
// ustar with GNU long names ('L'/'K') and pax extended headers ('x'), decoded by tar-stream; this module
// adds what tar-stream leaves to its caller, because every tar here is ATTACKER-CONTROLLED input (a
// package, a layer pulled from anywhere, a user's tarball):
// - the block structure is walked beside tar-stream (TarBoundary): the archive ends at the first zero
//   block, as in dpkg and GNU tar, and an entry after it is refused rather than silently read (it would
//   be invisible to `dpkg -c` and to other extractors); a missing end marker is a truncated tar;
// - one long-name or pax header is capped (LONG_HEADER_MAX), and so are the entries per archive;
// - pax global headers ('g', which dpkg refuses and tar-stream applies only sometimes) and GNU sparse
//   files are refused; pax size/uid/gid/mtime records are checked and applied; extended attributes are
//   dropped with a warning;
// - numbers are checked (sizes, modes, ids, times are non-negative safe integers);
// - the compressed stream must end where the tar does (no data after it).
// It does not decide which paths or types are acceptable — that is the caller's policy (rootfs/
// sanitize.ts for what is installed; inspect and compare only look). Bodies stream with backpressure;
// nothing is held in memory.
import { Readable, Transform, type TransformCallback } from 'node:stream';
import * as tar from 'tar-stream';
import { decompressor, type Compression } from '../compress/decompress.js';
import { DistillError, messageOf } from '../errors.js';

/** The entry types a tar can state; which ones a caller accepts is its own policy. */
export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink' | 'char-device' | 'block-device' | 'fifo' | 'socket' | 'contiguous' | 'unknown';

/** One archive member as the archive states it: decoded and its numbers checked, but not yet trusted. */
export interface TarEntry {
  /** The member name exactly as stored (after the long-name / pax rules). */
  name: string;
  type: TarEntryType;
  /** The typeflag character ('0', '5', '\\0', …), for messages about unknown types. */
  typeflag?: string;
  /** May carry file-type bits. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  size: number;
  /** Integer seconds. */
  mtime: number;
  /** Symlink or hardlink target as stored. */
  linkname?: string | undefined;
  /** The entry's pax records as stored (absent without a pax header); already applied above. */
  pax?: Readonly<Record<string, string>>;
  devmajor?: number;
  devminor?: number;
}

/**
 * Called for each entry in archive order. `body()` gives the data of a file entry as a node Readable
 * (with backpressure); it must be consumed, or the promise settled, before the next entry is read —
 * what is left unread when the promise settles is discarded. An entry whose body() is never called is
 * drained unread.
 */
export type OnTarEntry = (entry: TarEntry, body: () => Readable) => Promise<void>;

export interface ReadTarOptions {
  /** Names the archive in every message (a package, a layer digest). */
  what: string;
  /** The archive's place inside `what` (an ar member name), added to messages after `what`. */
  member?: string;
  /** How `source` is compressed (default: not at all). */
  compression?: Compression;
  /** The error for a malformed archive; `message` is complete (it names `what`). */
  malformed: (message: string, cause?: unknown) => DistillError;
  /** Notes on what was dropped (extended attributes). */
  onWarning?: (message: string) => void;
  /** Old (v7) headers without the ustar magic (default: refused, as tar-stream does). */
  allowUnknownFormat?: boolean;
  /** Entries before the archive is refused (default 10,000,000). */
  maxEntries?: number;
  /** Filled with the errors that propagate unchanged (the source's, the handler's), for a caller that wraps the rest. */
  ownErrors?: WeakSet<object>;
}

/** tar-stream's own limit on one long-name or pax header; a larger one is refused. */
export const LONG_HEADER_MAX = 4 * 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 10_000_000;
const BLOCK = 512;

/**
 * Read the tar in `source` (consumed to its end). Errors: `opts.malformed(...)` for a malformed,
 * truncated or hostile archive (and for what the decompressor or tar-stream refuse, unless they
 * throw a DistillError, which propagates); errors of `source` and of `onEntry` propagate unchanged.
 * On error, `source` is destroyed.
 */
export async function readTar(source: Readable, opts: ReadTarOptions, onEntry: OnTarEntry): Promise<void> {
  const prefix = opts.member !== undefined ? `${opts.what}: ${opts.member}` : opts.what;
  const decoder = decompressor(opts.compression ?? 'none', prefix);
  const tap = new TarBoundary(prefix, opts.malformed);
  const extract = tar.extract(opts.allowUnknownFormat ? ({ allowUnknownFormat: true } as Parameters<typeof tar.extract>[0]) : undefined);
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  /** Errors that are not the archive's: they propagate unchanged. */
  const own = opts.ownErrors ?? new WeakSet<object>();
  let failure: { error: unknown } | undefined;
  const fail = (e: unknown): void => {
    failure ??= { error: e };
    source.destroy();
    decoder.destroy();
    tap.destroy();
    extract.destroy(e instanceof Error ? e : new Error(String(e)));
  };
  source.on('error', (e) => {
    own.add(e);
    fail(e);
  });
  decoder.on('error', fail);
  tap.on('error', fail);
  extract.on('error', fail);
  source.pipe(decoder).pipe(tap).pipe(extract as unknown as NodeJS.WritableStream);
  let count = 0;
  try {
    for await (const entry of extract) {
      if (++count > maxEntries) throw opts.malformed(`${prefix}: more than ${maxEntries} entries`);
      const typeflag = tap.typeflag;
      tap.entered(entry.offset, dataLength(entry.header));
      const raw = tarEntry(entry.header, typeflag, `${opts.what}: ${JSON.stringify(entry.header.name)}`, opts);
      let body: EntryBody | undefined;
      try {
        await onEntry(raw, () => (body ??= new EntryBody(entry)).readable);
      } catch (e) {
        // The handler's own error propagates unchanged; the archive's, rethrown through the body, does not.
        if (typeof e === 'object' && e !== null && e !== (body as EntryBody | undefined)?.error) own.add(e);
        throw e;
      }
      if (body !== undefined) await (body as EntryBody).drain();
      else await drainEntry(entry);
    }
    tap.ended();
    // The decompressed stream can only have ended after the whole input went in; anything else means
    // the compressed stream stopped short of its end.
    if (!source.readableEnded) throw opts.malformed(`${prefix}: data after the end of the compressed stream`);
  } catch (e) {
    fail(e);
  }
  if (failure === undefined) return;
  const e = failure.error;
  if (e instanceof DistillError || (typeof e === 'object' && e !== null && own.has(e))) throw e;
  throw opts.malformed(`${prefix}: ${messageOf(e)}`, e);
}

const TYPES: Record<string, TarEntryType> = {
  file: 'file',
  link: 'hardlink',
  symlink: 'symlink',
  directory: 'dir',
  'character-device': 'char-device',
  'block-device': 'block-device',
  fifo: 'fifo',
  'contiguous-file': 'contiguous',
};

/** A tar-stream header as a TarEntry: numbers checked, pax uid/gid/uname/gname/mtime applied. */
function tarEntry(header: tar.Header, typeflag: number | undefined, where: string, opts: ReadTarOptions): TarEntry {
  const bad = (field: string, v: unknown) => opts.malformed(`${where}: bad ${field} ${JSON.stringify(String(v))}`);
  let uid = header.uid ?? 0;
  let gid = header.gid ?? 0;
  let uname = header.uname ?? '';
  let gname = header.gname ?? '';
  const ms = header.mtime?.getTime() ?? 0;
  let mtime = Math.floor(ms / 1000);
  const pax = (header as { pax?: Record<string, string> | null }).pax;
  if (pax) {
    for (const [k, v] of Object.entries(pax)) {
      switch (k) {
        case 'path':
        case 'linkpath':
          break; // applied by tar-stream
        case 'size':
          if (!/^[0-9]+$/.test(v) || Number(v) !== header.size) throw bad('pax size', v);
          break;
        case 'uid':
          if (!/^[0-9]+$/.test(v)) throw bad('pax uid', v);
          uid = Number(v);
          break;
        case 'gid':
          if (!/^[0-9]+$/.test(v)) throw bad('pax gid', v);
          gid = Number(v);
          break;
        case 'uname':
          uname = v;
          break;
        case 'gname':
          gname = v;
          break;
        case 'mtime':
          if (!/^-?[0-9]+(\.[0-9]*)?$/.test(v)) throw bad('pax mtime', v);
          mtime = Math.floor(Number(v));
          break;
        default:
          if (k.startsWith('GNU.sparse.')) throw opts.malformed(`${where}: a GNU sparse file (pax ${k}), which distill does not read`);
          if (k.startsWith('SCHILY.xattr.') || k.startsWith('LIBARCHIVE.xattr.')) {
            opts.onWarning?.(`${where}: extended attribute ${k.slice(k.indexOf('xattr.') + 6)} dropped`);
          }
        // atime, ctime, comment, charset, hdrcharset and vendor keywords: nothing an image keeps.
      }
    }
  }
  const size = header.size ?? 0;
  const mode = header.mode ?? 0;
  if (!Number.isSafeInteger(size) || size < 0) throw bad('size', size);
  if (!Number.isSafeInteger(mode) || mode < 0) throw bad('mode', mode);
  if (!Number.isSafeInteger(uid) || uid < 0 || uid > 0xffffffff) throw bad('uid', uid);
  if (!Number.isSafeInteger(gid) || gid < 0 || gid > 0xffffffff) throw bad('gid', gid);
  if (!Number.isSafeInteger(mtime)) throw bad('mtime', mtime);
  const raw: TarEntry = {
    name: header.name,
    type: (header.type && TYPES[header.type]) || 'unknown',
    mode,
    uid,
    gid,
    uname,
    gname,
    size,
    mtime,
    linkname: header.linkname ?? undefined,
  };
  if (typeflag !== undefined) raw.typeflag = typeflag === 0 ? '\\0' : String.fromCharCode(typeflag);
  if (pax) raw.pax = pax;
  if (raw.type === 'char-device' || raw.type === 'block-device') {
    raw.devmajor = header.devmajor ?? 0;
    raw.devminor = header.devminor ?? 0;
  }
  return raw;
}

/** tar-stream's entry stream (a streamx Readable with the header and the header's offset). */
type TarStreamEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

/**
 * Follows the tar block structure beside tar-stream, which skips zero blocks silently: the archive ends
 * at the first zero block where a header belongs (dpkg and GNU tar stop there), so an entry after it
 * would be invisible to `dpkg -c` yet read here — refused. A missing end marker means a truncated tar.
 * It walks long-name/pax headers itself (their sizes are in their own headers) and learns each real
 * entry's data length from tar-stream via entered(); any disagreement on where a header starts is an error.
 */
class TarBoundary extends Transform {
  private readonly held: Buffer[] = [];
  /** Offset of held[0][0]; held covers [heldStart, total). */
  private heldStart = 0;
  private total = 0;
  /** Where the next header starts. */
  private next = 0;
  /** A real entry header sits at `next`; its extent comes with tar-stream's entry. */
  private waiting = false;
  /** Offset of the end-of-archive zero block, once seen. */
  private endAt: number | undefined;
  /** The typeflag byte of the header at `next` while waiting. */
  typeflag: number | undefined;

  constructor(
    private readonly prefix: string,
    private readonly malformed: ReadTarOptions['malformed'],
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    const start = this.total;
    this.total += chunk.length;
    if (this.endAt === undefined && this.total > this.next) {
      const from = Math.max(0, this.next - start);
      if (this.held.length === 0) this.heldStart = start + from;
      this.held.push(from === 0 ? chunk : chunk.subarray(from));
    }
    try {
      this.walk();
    } catch (e) {
      cb(e as Error);
      return;
    }
    cb(null, chunk);
  }

  /** tar-stream produced an entry whose header starts at `offset` and whose data is `length` bytes. */
  entered(offset: number, length: number): void {
    if (this.endAt !== undefined && offset > this.endAt) {
      throw this.error(`an entry follows the end-of-archive marker at offset ${this.endAt} (dpkg would not see it)`);
    }
    if (!this.waiting || offset !== this.next) throw this.error(`tar structure mismatch at offset ${offset}`);
    this.waiting = false;
    this.typeflag = undefined;
    this.next = offset + BLOCK + padded(length);
    this.forget();
    this.walk();
  }

  /** The tar stream ended: it must have had its end-of-archive marker. */
  ended(): void {
    if (this.endAt === undefined) throw this.error('the tar archive is truncated (no end-of-archive marker)');
  }

  private walk(): void {
    while (!this.waiting && this.endAt === undefined) {
      const block = this.bytes(this.next, BLOCK);
      if (block === undefined) return;
      if (block.every((b) => b === 0)) {
        this.endAt = this.next;
        this.held.length = 0;
        return;
      }
      const flag = block[156]!;
      if (flag === 0x67 /* g */) throw this.error('a pax global header (typeflag g), which dpkg refuses and distill does not apply');
      if (flag === 0x78 /* x */ || flag === 0x4c /* L */ || flag === 0x4b /* K */ || flag === 0x4e /* N */) {
        const size = tarNumber(block, 124, 12);
        if (!(size >= 0 && size <= LONG_HEADER_MAX)) throw this.error(`an extended header of ${size} bytes at offset ${this.next}`);
        this.next += BLOCK + padded(size);
        this.forget();
        continue;
      }
      this.waiting = true;
      this.typeflag = flag;
      return;
    }
  }

  /** `len` bytes at absolute offset `at`, if they have arrived. */
  private bytes(at: number, len: number): Buffer | undefined {
    if (at < this.heldStart || at + len > this.total) return undefined;
    let skip = at - this.heldStart;
    const parts: Buffer[] = [];
    let need = len;
    for (const b of this.held) {
      if (skip >= b.length) {
        skip -= b.length;
        continue;
      }
      const piece = b.subarray(skip, skip + need);
      skip = 0;
      parts.push(piece);
      need -= piece.length;
      if (need === 0) break;
    }
    return parts.length === 1 ? parts[0] : Buffer.concat(parts);
  }

  /** Forget what lies before `next`. */
  private forget(): void {
    while (this.held.length > 0) {
      const first = this.held[0]!;
      const end = this.heldStart + first.length;
      if (end <= this.next) {
        this.held.shift();
        this.heldStart = end;
      } else {
        if (this.heldStart < this.next) {
          this.held[0] = first.subarray(this.next - this.heldStart);
          this.heldStart = this.next;
        }
        return;
      }
    }
    this.heldStart = Math.max(this.heldStart, Math.min(this.next, this.total));
  }

  private error(message: string): DistillError {
    return this.malformed(`${this.prefix}: ${message}`);
  }
}

/** A numeric tar header field as tar-stream reads it: octal text, or base-256 when the top bit is set. */
function tarNumber(block: Buffer, offset: number, length: number): number {
  const f = block.subarray(offset, offset + length);
  if ((f[0]! & 0x80) !== 0) {
    if (f[0] !== 0x80) return NaN; // negative or malformed
    let n = 0;
    for (let i = 1; i < f.length; i++) n = n * 256 + f[i]!;
    return n;
  }
  const text = f.toString('latin1').replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  return /^[0-7]+$/.test(text) ? parseInt(text, 8) : NaN;
}

function padded(n: number): number {
  return Math.ceil(n / BLOCK) * BLOCK;
}

/** How many data bytes tar-stream consumes after this header (none for directories, whatever the size says). */
function dataLength(header: tar.Header): number {
  return header.type === 'directory' ? 0 : (header.size ?? 0);
}

/** Read and discard an entry's data (tar-stream waits for it before the next header). */
function drainEntry(entry: TarStreamEntry): Promise<void> {
  return new Promise((resolve, reject) => {
    entry.on('error', reject);
    entry.on('end', () => resolve());
    entry.resume();
  });
}

/**
 * A node Readable over a tar-stream entry, with backpressure; drain() discards what the handler left.
 * (tar-stream's entries are streamx streams; destroying one destroys the whole archive, so handlers get
 * this wrapper instead.)
 */
class EntryBody {
  readonly readable: Readable;
  private abandoned = false;
  private readonly done: Promise<void>;
  /** The archive's error, if it failed while this entry was being read. */
  error: unknown;

  constructor(private readonly entry: TarStreamEntry) {
    this.readable = new Readable({ read: () => void entry.resume() });
    this.done = new Promise((resolve, reject) => {
      entry.on('end', () => {
        if (!this.abandoned) this.readable.push(null);
        resolve();
      });
      entry.on('error', (e: Error) => {
        this.error = e;
        this.readable.destroy(e);
        reject(e);
      });
    });
    this.done.catch(() => {}); // observed by drain(); the archive's iterator reports the error too
    entry.on('data', (c: unknown) => {
      if (this.abandoned) return;
      if (!this.readable.push(c)) entry.pause();
    });
  }

  async drain(): Promise<void> {
    if (!this.readable.readableEnded) {
      this.abandoned = true;
      this.readable.destroy();
      this.entry.resume();
    }
    await this.done;
  }
}

/** Read a (small, capped) body whole; more than `cap` bytes is `tooBig()`. */
export async function readBody(body: Readable, cap: number, tooBig: () => Error): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const c of body) {
    n += (c as Buffer).length;
    if (n > cap) throw tooBig();
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}
