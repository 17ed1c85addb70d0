// The one tar reader: every tar distill reads — a .deb's control.tar and data.tar, a definition's own
// tarball, an image layer (inspect, rebuild's compare, the SBOM) — goes through TarParser here. Format:
// POSIX ustar with GNU long names ('L'/'K'/'N') and pax extended headers ('x'), decoded as tar-stream
// 3 decodes them (same fields, same number and name rules, same checksum check — this parser replaced
// it on the read side because its stream-per-entry machinery cost more than the parsing). Every tar
// here is ATTACKER-CONTROLLED input (a package, a layer pulled from anywhere, a user's tarball), so:
// - every header's checksum is checked; a header without the ustar or GNU magic is refused unless
//   the caller allows old (v7) headers;
// - the archive ends at the first zero block, as in dpkg and GNU tar, and an entry after it is refused
//   rather than silently read (it would be invisible to `dpkg -c` and to other extractors); a missing
//   end marker, or input ending inside a header or an entry, is a truncated tar;
// - one long-name or pax header is capped (LONG_HEADER_MAX), and so are all of them together
//   (LONG_HEADERS_TOTAL_MAX), the entries per archive, and the padding after the end marker
//   (TRAILER_MAX): however small the compressed input, the work it can cause is bounded;
// - pax global headers ('g', which dpkg refuses) and GNU sparse files are refused; pax size/uid/gid/
//   mtime records are checked and applied; extended attributes are dropped with a warning;
// - numbers are checked (sizes, modes, ids, times are non-negative safe integers);
// - the compressed stream must end where the tar does (no data after it).
// It does not decide which paths or types are acceptable — that is the caller's policy (rootfs/
// sanitize.ts for what is installed; inspect and compare only look). Two drivers share the parser:
// readTar hands each body to an async handler as a Readable (with backpressure), readTarSync hands it
// chunk by chunk to a synchronous sink (the staging hot path: no stream or promise per entry). Nothing
// is held in memory beyond one header.
import { Readable } from 'node:stream';
import { decompressor, type Compression } from '../compress/decompress.js';
import { DistillError, messageOf } from '../errors.js';
import { Where } from '../util/where.js';

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

/**
 * The synchronous form of a body (readTarSync): `data` receives the entry's bytes in order as views of
 * the decompressed stream, valid only during the call (copy what is kept); `end` follows the last one.
 */
export interface TarBodySink {
  data(chunk: Buffer): void;
  end(): void;
}

/**
 * The synchronous form of OnTarEntry: called for each entry in archive order; returns a sink for the
 * entry's data, or undefined to have it skipped unread. Its errors (and the sink's) propagate unchanged.
 */
export type OnTarEntrySync = (entry: TarEntry) => TarBodySink | undefined;

/** The largest long-name or pax header read (tar-stream's own limit too); a larger one is refused. */
export const LONG_HEADER_MAX = 4 * 1024 * 1024;
/**
 * All long-name and pax headers of one archive together. Each is capped, but neither their number nor
 * the entries they precede are (a header without an entry after it counts for nothing), so a small
 * compressed member could make the parser chew through terabytes of them. A real archive has one of a
 * few hundred bytes per long-named entry: tens of MB for the largest package.
 */
export const LONG_HEADERS_TOTAL_MAX = 256 * 1024 * 1024;
/**
 * Bytes read after the end-of-archive marker (zero blocks, and what is skipped there). Writers pad to a
 * record (GNU tar and Python: 10 KiB; `tar -b` at most a few MiB); only a bomb has more — a small .xz
 * decodes to gigabytes of zeros, every one of which would otherwise be read.
 */
export const TRAILER_MAX = 16 * 1024 * 1024;
const DEFAULT_MAX_ENTRIES = 10_000_000;
const BLOCK = 512;

function prefixOf(opts: ReadTarOptions): string {
  return opts.member !== undefined ? `${opts.what}: ${opts.member}` : opts.what;
}

/** An error that is not the archive's (a handler's, the source's): it propagates unchanged. */
function isOwn(e: unknown, own: WeakSet<object>): boolean {
  return e instanceof DistillError || (typeof e === 'object' && e !== null && own.has(e));
}

function markOwn(e: unknown, own: WeakSet<object>): void {
  if (typeof e === 'object' && e !== null) own.add(e);
}

/**
 * Read the tar in `source` (consumed to its end). Errors: `opts.malformed(...)` for a malformed,
 * truncated or hostile archive (and for what the decompressor refuses, unless it throws a
 * DistillError, which propagates); errors of `source` and of `onEntry` propagate unchanged.
 * On error, `source` is destroyed.
 */
export async function readTar(source: Readable, opts: ReadTarOptions, onEntry: OnTarEntry): Promise<void> {
  const prefix = prefixOf(opts);
  const decoder = decompressor(opts.compression ?? 'none', prefix);
  const parser = new TarParser(prefix, opts);
  const own = opts.ownErrors ?? new WeakSet<object>();
  let failure: { error: unknown } | undefined;
  const fail = (e: unknown): void => {
    failure ??= { error: e };
    source.destroy();
    decoder.destroy();
  };
  source.on('error', (e) => {
    own.add(e);
    fail(e);
  });
  decoder.on('error', fail);
  source.pipe(decoder);
  const chunks = decoder[Symbol.asyncIterator]();
  // One read of the decompressed stream at a time, shared by the entry loop and a body being read.
  let pending: Promise<void> | undefined;
  const pull = (): Promise<void> =>
    (pending ??= chunks.next().then(
      (r) => {
        pending = undefined;
        if (r.done) parser.end();
        else parser.push(r.value as Buffer);
      },
      (e: unknown) => {
        pending = undefined;
        throw e;
      },
    ));
  try {
    for (;;) {
      const ev = parser.next();
      if (ev === NEED) {
        await pull();
        continue;
      }
      if (ev === DONE) break;
      if (ev !== ENTRY) throw new Error('internal: the tar parser is out of step');
      let body: EntryBody | undefined;
      try {
        await onEntry(parser.entry!, () => (body ??= new EntryBody(parser, pull)).readable);
      } catch (e) {
        // The handler's own error propagates unchanged; the archive's, rethrown through the body, does not.
        if (e !== (body as EntryBody | undefined)?.error) markOwn(e, own);
        throw e;
      }
      if (body !== undefined) await (body as EntryBody).drain();
      else await skipBody(parser, pull);
    }
    // The decompressed stream can only have ended after the whole input went in; anything else means
    // the compressed stream stopped short of its end.
    if (!source.readableEnded) throw opts.malformed(`${prefix}: data after the end of the compressed stream`);
  } catch (e) {
    fail(e);
  }
  if (failure === undefined) return;
  const e = failure.error;
  if (isOwn(e, own)) throw e;
  throw opts.malformed(`${prefix}: ${messageOf(e)}`, e);
}

/**
 * readTar for a synchronous handler: each body goes chunk by chunk to the sink the handler returns, as
 * the decompressed stream arrives — no stream, promise or tick per entry (the staging hot path: tens of
 * thousands of small files). The same parser, the same checks, the same errors as readTar.
 */
export function readTarSync(source: Readable, opts: ReadTarOptions, onEntry: OnTarEntrySync): Promise<void> {
  const prefix = prefixOf(opts);
  const decoder = decompressor(opts.compression ?? 'none', prefix);
  const parser = new TarParser(prefix, opts);
  const own = opts.ownErrors ?? new WeakSet<object>();
  return new Promise<void>((resolve, reject) => {
    let settled = false;
    let sink: TarBodySink | undefined;
    const fail = (e: unknown): void => {
      if (settled) return;
      settled = true;
      source.destroy();
      decoder.destroy();
      reject(isOwn(e, own) ? e : opts.malformed(`${prefix}: ${messageOf(e)}`, e));
    };
    const run = (): void => {
      for (;;) {
        const ev = parser.next();
        if (ev === DATA) {
          if (sink === undefined) continue;
          try {
            sink.data(parser.chunk);
          } catch (e) {
            markOwn(e, own);
            throw e;
          }
        } else if (ev === ENTRY) {
          try {
            sink = onEntry(parser.entry!);
          } catch (e) {
            markOwn(e, own);
            throw e;
          }
        } else if (ev === ENTRY_END) {
          const s = sink;
          sink = undefined;
          try {
            s?.end();
          } catch (e) {
            markOwn(e, own);
            throw e;
          }
        } else if (ev === NEED) {
          return;
        } else {
          if (!source.readableEnded) throw opts.malformed(`${prefix}: data after the end of the compressed stream`);
          settled = true;
          resolve();
          return;
        }
      }
    };
    source.on('error', (e) => {
      own.add(e);
      fail(e);
    });
    decoder.on('error', fail);
    decoder.on('data', (chunk: Buffer) => {
      if (settled) return;
      parser.push(chunk);
      try {
        run();
      } catch (e) {
        fail(e);
      }
    });
    decoder.on('end', () => {
      if (settled) return;
      parser.end();
      try {
        run();
      } catch (e) {
        fail(e);
      }
    });
    decoder.on('close', () => fail(new Error('the decompressed stream closed before its end')));
    source.pipe(decoder);
  });
}

/** Read and discard the rest of the current entry's data. */
async function skipBody(parser: TarParser, pull: () => Promise<void>): Promise<void> {
  for (;;) {
    const ev = parser.next();
    if (ev === ENTRY_END) return;
    if (ev === NEED) await pull();
    else if (ev !== DATA) throw new Error('internal: the tar parser is out of step');
  }
}

/** A node Readable over the current entry's data, with backpressure; drain() discards what the handler left. */
class EntryBody {
  readonly readable: Readable;
  /** The archive's error, if it failed while this entry was being read. */
  error: unknown;
  private abandoned = false;
  private ended = false;
  private pumping = false;

  constructor(
    private readonly parser: TarParser,
    private readonly pull: () => Promise<void>,
  ) {
    this.readable = new Readable({ read: () => void this.pump() });
  }

  private async pump(): Promise<void> {
    if (this.pumping) return;
    this.pumping = true;
    try {
      while (!this.abandoned) {
        const ev = this.parser.next();
        if (ev === DATA) {
          if (!this.readable.push(this.parser.chunk)) return;
        } else if (ev === ENTRY_END) {
          this.ended = true;
          this.readable.push(null);
          return;
        } else if (ev === NEED) {
          await this.pull();
        } else {
          throw new Error('internal: the tar parser is out of step');
        }
      }
    } catch (e) {
      this.error = e;
      this.readable.destroy(e as Error);
    } finally {
      this.pumping = false;
    }
  }

  async drain(): Promise<void> {
    this.abandoned = true;
    if (!this.readable.readableEnded) this.readable.destroy();
    if (!this.ended) await skipBody(this.parser, this.pull);
  }
}

// ---------------------------------------------------------------------------------------------------
// The parser: fed chunks of the decompressed tar (push/end), it answers next() with one event at a time.

/** More input is needed (push or end). */
const NEED = 0;
/** `entry` holds the next entry; its data (DATA events) and an ENTRY_END follow. */
const ENTRY = 1;
/** `chunk` holds the next piece of the current entry's data (a view of the input). */
const DATA = 2;
const ENTRY_END = 3;
/** The archive ended properly (end marker, then only padding, then the end of the input). */
const DONE = 4;

const S_HEADER = 0;
const S_LONG = 1;
const S_DATA = 2;
/** After the end-of-archive marker: zero blocks; anything that decodes as an entry is refused. */
const S_TRAILER = 3;
const S_DONE = 4;

/** tar-stream's header fields (null where it gives null), before the long-name and pax rules. */
interface RawHeader {
  /** The typeflag number as tar-stream computes it ('0'/NUL → 0, 'x' → 72, …). */
  typeflag: number;
  name: string;
  mode: number | null;
  uid: number | null;
  gid: number | null;
  size: number | null;
  mtime: number | null;
  linkname: string | null;
  uname: string;
  gname: string;
  devmajor: number | null;
  devminor: number | null;
}

const T_PAX = 72;
const T_PAX_GLOBAL = 55;
const T_LONG_LINK = 27;
const T_LONG_PATH = 28;
const T_LONG_PATH_OLD = 30;
const T_DIR = 5;

const TYPES: readonly TarEntryType[] = ['file', 'hardlink', 'symlink', 'char-device', 'block-device', 'dir', 'fifo', 'contiguous'];

/**
 * The one tar parser. Synchronous and incremental: it keeps the unconsumed input as a queue of chunks
 * and hands file data out as views of them (no copy); only a header that straddles two chunks, and a
 * long-name or pax header, is copied. An error is sticky: every later next() throws it again.
 */
class TarParser {
  /** The current entry (after ENTRY). */
  entry: TarEntry | undefined;
  /** The current data piece (after DATA). */
  chunk: Buffer = Buffer.alloc(0);
  private readonly bufs: Buffer[] = [];
  private head = 0;
  private off = 0;
  private avail = 0;
  /** Absolute offset of the next unconsumed byte. */
  private pos = 0;
  private inputEnded = false;
  private failed: { error: unknown } | undefined;
  private state = S_HEADER;
  /** S_DATA: data bytes left; S_LONG: the long header's size. */
  private left = 0;
  /** Bytes to discard before the next header (the padding of the last entry or long header). */
  private skip = 0;
  private longType = 0;
  private longPath: string | null = null;
  private longLink: string | null = null;
  private pax: Record<string, string> | null = null;
  private endAt = -1;
  private count = 0;
  /** Bytes of long-name and pax headers so far (LONG_HEADERS_TOTAL_MAX). */
  private longBytes = 0;
  private readonly maxEntries: number;

  constructor(
    private readonly prefix: string,
    private readonly opts: ReadTarOptions,
  ) {
    this.maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.head > 0) {
      this.bufs.splice(0, this.head);
      this.head = 0;
    }
    this.bufs.push(chunk);
    this.avail += chunk.length;
  }

  end(): void {
    this.inputEnded = true;
  }

  next(): number {
    if (this.failed !== undefined) throw this.failed.error;
    try {
      return this.step();
    } catch (e) {
      this.failed = { error: e };
      throw e;
    }
  }

  private step(): number {
    for (;;) {
      switch (this.state) {
        case S_DATA: {
          if (this.left === 0) {
            this.state = S_HEADER;
            return ENTRY_END;
          }
          if (this.avail === 0) return this.short('inside an entry');
          this.chunk = this.piece(this.left);
          this.left -= this.chunk.length;
          return DATA;
        }
        case S_LONG: {
          if (this.avail < this.left) return this.short('inside an extended header');
          const data = this.take(this.left);
          this.skip = padding(this.left);
          this.state = this.endAt < 0 ? S_HEADER : S_TRAILER;
          if (this.endAt < 0) this.applyLong(data);
          continue;
        }
        case S_HEADER:
        case S_TRAILER: {
          if (this.skip > 0) {
            this.discard();
            if (this.skip > 0) return this.short('inside an entry');
          }
          if (this.avail < BLOCK) {
            if (!this.inputEnded) return NEED;
            if (this.avail > 0) throw this.error('the tar archive is truncated (it ends inside a header)');
            if (this.state === S_HEADER) throw this.error('the tar archive is truncated (no end-of-archive marker)');
            this.state = S_DONE;
            return DONE;
          }
          const at = this.pos;
          if (this.state === S_TRAILER && at + BLOCK - this.endAt > TRAILER_MAX) {
            throw this.error(`more than ${TRAILER_MAX} bytes after the end-of-archive marker at offset ${this.endAt}`);
          }
          const block = this.take(BLOCK);
          if (this.state === S_HEADER ? this.header(block, at) : this.trailer(block, at)) return ENTRY;
          continue;
        }
        default:
          return DONE;
      }
    }
  }

  /** A header block where one belongs before the end marker; true when it is an entry's. */
  private header(block: Buffer, at: number): boolean {
    if (isZeroBlock(block)) {
      // dpkg and GNU tar stop at the first zero block: the archive ends here.
      this.endAt = at;
      this.state = S_TRAILER;
      return false;
    }
    const flag = block[156]!;
    if (flag === 0x67 /* g */) throw this.error('a pax global header (typeflag g), which dpkg refuses and distill does not apply');
    const long = flag === 0x78 /* x */ || flag === 0x4c /* L */ || flag === 0x4b /* K */ || flag === 0x4e; /* N */
    let strictSize = 0;
    if (long) {
      strictSize = tarNumber(block, 124, 12);
      // An empty one names nothing; tar-stream mis-stepped over one (misreading what followed), so it is refused.
      if (!(strictSize > 0 && strictSize <= LONG_HEADER_MAX)) throw this.error(`an extended header of ${strictSize} bytes at offset ${at}`);
      this.longBytes += strictSize;
      if (this.longBytes > LONG_HEADERS_TOTAL_MAX) throw this.error(`more than ${LONG_HEADERS_TOTAL_MAX} bytes of long-name and pax headers (at offset ${at})`);
    }
    const h = this.decode(block);
    // A block whose checksum is that of a zero block without being one: tar-stream skipped it as padding, dpkg reads a header.
    if (h === null) throw this.error(`tar structure mismatch at offset ${at}`);
    if (long) {
      if (h.size !== strictSize) throw this.error(`tar structure mismatch at offset ${at}`);
      this.longType = h.typeflag;
      this.left = strictSize;
      this.state = S_LONG;
      return false;
    }
    if (++this.count > this.maxEntries) throw this.error(`more than ${this.maxEntries} entries`);
    // tar-stream's rules for long names: GNU records, then pax path/linkpath/size.
    let name = h.name;
    let linkname = h.linkname;
    let size = h.size;
    if (this.longPath) {
      name = this.longPath;
      this.longPath = null;
    }
    if (this.longLink) {
      linkname = this.longLink;
      this.longLink = null;
    }
    const pax = this.pax;
    if (pax !== null) {
      if (pax.path) name = pax.path;
      if (pax.linkpath) linkname = pax.linkpath;
      if (pax.size) size = parseInt(pax.size, 10);
      this.pax = null;
    }
    if (size === null || !(size >= 0)) throw this.error('Invalid header');
    this.entry = tarEntry(h, name, linkname, size, pax, flag, new Where(this.opts.what, name, JSON.stringify), this.opts);
    this.state = S_DATA;
    // A directory carries no data whatever its size says (tar-stream reads the next header right after it).
    const length = h.typeflag === T_DIR ? 0 : size;
    this.left = length;
    this.skip = padding(length);
    return true;
  }

  /** A block after the end marker: padding is skipped; a header is decoded, and an entry refused. */
  private trailer(block: Buffer, at: number): boolean {
    if (isZeroBlock(block)) return false;
    const h = this.decode(block);
    if (h === null) return false;
    const t = h.typeflag;
    if (t === T_PAX || t === T_PAX_GLOBAL || t === T_LONG_LINK || t === T_LONG_PATH || t === T_LONG_PATH_OLD) {
      if (h.size === null || !(h.size >= 0)) throw this.error('Invalid header');
      if (h.size > LONG_HEADER_MAX) throw this.error('Header exceeds max size');
      this.left = h.size;
      this.state = S_LONG;
      return false;
    }
    throw this.error(`an entry follows the end-of-archive marker at offset ${this.endAt} (dpkg would not see it) — at offset ${at}`);
  }

  private applyLong(data: Buffer): void {
    switch (this.longType) {
      case T_LONG_PATH:
      case T_LONG_PATH_OLD:
        this.longPath = decodeStr(data, 0, data.length);
        break;
      case T_LONG_LINK:
        this.longLink = decodeStr(data, 0, data.length);
        break;
      case T_PAX:
        this.pax = decodePax(data);
        break;
    }
  }

  private decode(block: Buffer): RawHeader | null {
    try {
      return decodeHeader(block, this.opts.allowUnknownFormat === true);
    } catch (e) {
      throw this.error(messageOf(e));
    }
  }

  /** Input ran out: more is needed, or the archive is truncated. */
  private short(where: string): number {
    if (!this.inputEnded) return NEED;
    throw this.error(`the tar archive is truncated (it ends ${where})`);
  }

  /** Up to `max` bytes from the first chunk (avail > 0): the chunk itself or a view of it. */
  private piece(max: number): Buffer {
    const b = this.bufs[this.head]!;
    const n = Math.min(max, b.length - this.off);
    const out = this.off === 0 && n === b.length ? b : b.subarray(this.off, this.off + n);
    this.off += n;
    this.avail -= n;
    this.pos += n;
    if (this.off === b.length) {
      this.head++;
      this.off = 0;
      if (this.head === this.bufs.length) {
        this.bufs.length = 0;
        this.head = 0;
      }
    }
    return out;
  }

  /** Exactly `n` contiguous bytes (avail >= n): a view when they lie in one chunk, else a copy. */
  private take(n: number): Buffer {
    if (n === 0) return Buffer.alloc(0);
    const b = this.bufs[this.head]!;
    if (b.length - this.off >= n) return this.piece(n);
    const out = Buffer.allocUnsafe(n);
    for (let k = 0; k < n; ) {
      const p = this.piece(n - k);
      p.copy(out, k);
      k += p.length;
    }
    return out;
  }

  private discard(): void {
    while (this.skip > 0 && this.avail > 0) this.skip -= this.piece(this.skip).length;
  }

  private error(message: string): DistillError {
    return this.opts.malformed(`${this.prefix}: ${message}`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Header decoding, field by field as tar-stream 3 (headers.js) decodes it: what it accepted is accepted
// and what it refused is refused, so a tar means the same here as it did before.

function decodeHeader(buf: Buffer, allowUnknownFormat: boolean): RawHeader | null {
  const c = checksum(buf);
  // The checksum of a zero block: padding, not a header.
  if (c === 8 * 32) return null;
  if (c !== decodeOct(buf, 148, 8)) throw new Error('Invalid tar header. Maybe the tar is corrupted or it needs to be gunzipped?');
  const flag = buf[156]!;
  let name = decodeStr(buf, 0, 100);
  if (isUstar(buf)) {
    // POSIX ustar: a prefix field extends the name.
    if (buf[345] !== 0) name = decodeStr(buf, 345, 155) + '/' + name;
  } else if (!isGnu(buf) && !allowUnknownFormat) {
    throw new Error('Invalid tar header: unknown format.');
  }
  return {
    typeflag: flag === 0 ? 0 : flag - 48,
    name,
    mode: decodeOct(buf, 100, 8),
    uid: decodeOct(buf, 108, 8),
    gid: decodeOct(buf, 116, 8),
    size: decodeOct(buf, 124, 12),
    mtime: decodeOct(buf, 136, 12),
    linkname: buf[157] === 0 ? null : decodeStr(buf, 157, 100),
    uname: decodeStr(buf, 265, 32),
    gname: decodeStr(buf, 297, 32),
    devmajor: decodeOct(buf, 329, 8),
    devminor: decodeOct(buf, 337, 8),
  };
}

/** "ustar\0" at 257 (the version is not checked). */
function isUstar(b: Buffer): boolean {
  return b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 && b[261] === 0x72 && b[262] === 0;
}

/** "ustar " at 257 and " \0" at 263 (GNU and old GNU). */
function isGnu(b: Buffer): boolean {
  return b[257] === 0x75 && b[258] === 0x73 && b[259] === 0x74 && b[260] === 0x61 && b[261] === 0x72 && b[262] === 0x20 && b[263] === 0x20 && b[264] === 0;
}

function checksum(b: Buffer): number {
  let sum = 8 * 32;
  for (let i = 0; i < 148; i++) sum += b[i]!;
  for (let i = 156; i < BLOCK; i++) sum += b[i]!;
  return sum;
}

function isZeroBlock(b: Buffer): boolean {
  for (let i = 0; i < BLOCK; i++) if (b[i] !== 0) return false;
  return true;
}

/** A NUL-terminated field as UTF-8 (invalid bytes become U+FFFD, which the sanitiser refuses in paths). */
function decodeStr(b: Buffer, offset: number, length: number): string {
  let end = offset;
  const limit = offset + length;
  while (end < limit && b[end] !== 0) end++;
  return b.toString('utf8', offset, end);
}

/**
 * A numeric field: base-256 when the top bit is set (null for a first byte other than 0x80/0xff),
 * else octal text after leading spaces and NULs up to the first space, read as parseInt reads it.
 */
function decodeOct(b: Buffer, offset: number, length: number): number | null {
  const limit = offset + length;
  if ((b[offset]! & 0x80) !== 0) return parse256(b, offset, limit);
  let i = offset;
  while (i < limit && b[i] === 32) i++;
  let end = i;
  while (end < limit && b[end] !== 32) end++;
  while (i < end && b[i] === 0) i++;
  if (end === i) return 0;
  const first = b[i]!;
  if (first < 0x30 || first > 0x37) return parseInt(b.toString('utf8', i, end), 8);
  // The common case, as parseInt would read it: the octal digits up to the first other character.
  let n = 0;
  for (let j = i; j < end; j++) {
    const d = b[j]! - 0x30;
    if (d < 0 || d > 7) break;
    n = n * 8 + d;
  }
  return n;
}

function parse256(b: Buffer, start: number, end: number): number | null {
  const first = b[start];
  let positive: boolean;
  if (first === 0x80) positive = true;
  else if (first === 0xff) positive = false;
  else return null;
  let sum = 0;
  for (let i = end - 1, k = 0; i > start; i--, k++) sum += (positive ? b[i]! : 0xff - b[i]!) * Math.pow(256, k);
  return positive ? sum : -1 * sum;
}

/** pax records ("<len> <key>=<value>\n"), as tar-stream reads them (a malformed record ends the list). */
function decodePax(data: Buffer): Record<string, string> {
  const result: Record<string, string> = {};
  let buf = data;
  while (buf.length) {
    let i = 0;
    while (i < buf.length && buf[i] !== 32) i++;
    const len = parseInt(buf.toString('utf8', 0, i), 10);
    // tar-stream stops at a zero or unreadable length; a negative one it would read from the end, or forever.
    if (!(len > 0)) return result;
    const b = buf.subarray(i + 1, len - 1).toString('utf8');
    const k = b.indexOf('=');
    if (k === -1) return result;
    result[b.slice(0, k)] = b.slice(k + 1);
    buf = buf.subarray(len);
  }
  return result;
}

/** A header's fields as a TarEntry: numbers checked, pax uid/gid/uname/gname/mtime applied. */
function tarEntry(
  header: RawHeader,
  name: string,
  linkname: string | null,
  size: number,
  pax: Record<string, string> | null,
  typeflag: number,
  where: Where,
  opts: ReadTarOptions,
): TarEntry {
  const bad = (field: string, v: unknown) => opts.malformed(`${where}: bad ${field} ${JSON.stringify(String(v))}`);
  let uid = header.uid ?? 0;
  let gid = header.gid ?? 0;
  let uname = header.uname;
  let gname = header.gname;
  // As a Date, as tar-stream gave it: beyond a Date's range it is NaN (refused below).
  let mtime = Math.floor(new Date(1000 * (header.mtime as number)).getTime() / 1000);
  if (pax) {
    for (const [k, v] of Object.entries(pax)) {
      switch (k) {
        case 'path':
        case 'linkpath':
          break; // applied by the parser
        case 'size':
          if (!/^[0-9]+$/.test(v) || Number(v) !== size) throw bad('pax size', v);
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
  const mode = header.mode ?? 0;
  if (!Number.isSafeInteger(size) || size < 0) throw bad('size', size);
  if (!Number.isSafeInteger(mode) || mode < 0) throw bad('mode', mode);
  if (!Number.isSafeInteger(uid) || uid < 0 || uid > 0xffffffff) throw bad('uid', uid);
  if (!Number.isSafeInteger(gid) || gid < 0 || gid > 0xffffffff) throw bad('gid', gid);
  if (!Number.isSafeInteger(mtime)) throw bad('mtime', mtime);
  const t = header.typeflag;
  const type: TarEntryType = t >= 0 && t < TYPES.length ? TYPES[t]! : 'unknown';
  const raw: TarEntry = { name, type, mode, uid, gid, uname, gname, size, mtime, linkname: linkname ?? undefined };
  raw.typeflag = typeflag === 0 ? '\\0' : String.fromCharCode(typeflag);
  if (pax) raw.pax = pax;
  if (type === 'char-device' || type === 'block-device') {
    raw.devmajor = header.devmajor ?? 0;
    raw.devminor = header.devminor ?? 0;
  }
  return raw;
}

/** A numeric field read strictly (the extent of a long header): octal text, or base-256 when the top bit is set. */
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

function padding(n: number): number {
  return (BLOCK - (n % BLOCK)) % BLOCK;
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
