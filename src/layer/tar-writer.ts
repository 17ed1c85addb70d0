// A deterministic tar writer (POSIX.1-1988 ustar headers, POSIX.1-2001 pax 'x' records only where ustar
// cannot say it). Every header byte comes from the caller's TarEntryHeader and the fixed rules below —
// never from the clock, the umask, the host's user database or the locale — so the same entries give
// the same bytes on any machine.
//
// Header layout and encodings follow GNU tar 1.34 `--format=ustar` byte for byte (checked by a test that
// compares against GNU tar's own output): numeric fields are zero-padded octal with a trailing NUL
// ("0000644\0"), the checksum is six octal digits, NUL, space ("007472\0 "), devmajor/devminor are
// "0000000\0", uname/gname are NUL-terminated (at most 31 bytes), directory names end in '/', and a name
// longer than 100 bytes is split at the last '/' that leaves a prefix of at most 155 bytes.
//
// The archive ends with two zero blocks and nothing more: no padding to GNU tar's 10240-byte records.
// Record padding is a tape-era blocking factor that only adds zeros to every layer (and to its diffId);
// Go's archive/tar — what Docker, BuildKit, containerd and go-containerregistry write and read — emits
// none, GNU tar and bsdtar read such archives without complaint (tested), and one fewer convention is
// one fewer thing a future reimplementation has to match.
import { open, type FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { DistillError, messageOf } from '../errors.js';
import { ChunkSink, SinkWriter, type BlockSink } from './block-sink.js';
import type { EntryType, FsEntry } from '../rootfs/entry.js';

/**
 * A tar entry is exactly a root-filesystem entry (src/rootfs/entry.ts): normalised path, permission
 * bits only, names written as given and never looked up, `size` 0 for anything but a file, `mtime` in
 * integer seconds (the build timestamp by the time it gets here), `linkTarget` for symlinks (any
 * target) and hardlinks (an earlier file entry's path).
 */
export type TarEntryHeader = FsEntry;
export type TarEntryType = EntryType;

/** Where the archive's bytes go as chunks of up to 64 KiB; awaited before the next chunk is produced (backpressure). */
export type TarSink = (chunk: Buffer) => void | Promise<void>;

/**
 * A file body read from a file (a staged body) straight into the output: the file must hold exactly
 * the header's size, as a stream body must yield it.
 */
export interface FileBody {
  file: string;
}

export type TarBody = Readable | Uint8Array | FileBody;

const BLOCK = 512;
const NAME_MAX = 100;
const PREFIX_MAX = 155;
const LINKNAME_MAX = 100;
/** uname/gname fields are 32 bytes, NUL-terminated. */
const OWNER_NAME_MAX = 31;
/** Largest values the octal fields hold: 7 digits (mode, uid, gid), 11 digits (size, mtime). */
const OCTAL7_MAX = 0o7777777;
const OCTAL11_MAX = 0o77777777777;

const ENTRY_TYPES: ReadonlySet<string> = new Set<TarEntryType>(['file', 'dir', 'symlink', 'hardlink']);
const TYPEFLAG: Record<TarEntryType | 'pax', string> = {
  file: '0',
  hardlink: '1',
  symlink: '2',
  dir: '5',
  pax: 'x',
};

function fail(message: string, hint?: string): never {
  throw new DistillError('LAYER_IO', message, hint === undefined ? {} : { hint });
}

const isAscii = (s: string): boolean => /^[\x01-\x7f]*$/.test(s);

/** UTF-8 bytes of a string that must not contain NUL or unpaired surrogates. */
function utf8(s: string, what: string): Buffer {
  if (s.includes('\0')) fail(`tar: ${what} contains a NUL byte: ${JSON.stringify(s)}`);
  const b = Buffer.from(s, 'utf8');
  if (b.toString('utf8') !== s) fail(`tar: ${what} is not valid Unicode (unpaired surrogate): ${JSON.stringify(s)}`);
  return b;
}

/** The longest prefix of `b` of at most `max` bytes that does not cut a UTF-8 sequence. */
function truncateUtf8(b: Buffer, max: number): Buffer {
  if (b.length <= max) return b;
  let end = max;
  while (end > 0 && (b[end]! & 0xc0) === 0x80) end--;
  return b.subarray(0, end);
}

function checkPath(path: string): void {
  if (typeof path !== 'string' || path === '') fail('tar: an entry has an empty path');
  if (path.startsWith('/') || path.endsWith('/')) {
    fail(`tar: path must be relative with no trailing '/': ${JSON.stringify(path)}`);
  }
  for (const part of path.split('/')) {
    if (part === '' || part === '.' || part === '..') {
      fail(`tar: path is not normalised (empty, '.' or '..' component): ${JSON.stringify(path)}`);
    }
  }
}

function checkInt(value: number, max: number, what: string, path: string): void {
  if (!Number.isSafeInteger(value) || value < 0 || value > max) {
    fail(`tar: ${what} of ${JSON.stringify(path)} must be an integer in 0..${max}, got ${value}`);
  }
}

/**
 * Splits a ustar name into (prefix, name) as GNU tar and Go's archive/tar do: the last '/' at or before
 * byte 155 (a trailing '/' of a directory is never the split point); undefined when it cannot fit.
 */
function splitUstar(name: Buffer): { prefix: Buffer; name: Buffer } | undefined {
  if (name.length <= NAME_MAX) return { prefix: Buffer.alloc(0), name };
  let length = name.length;
  if (length > PREFIX_MAX + 1) length = PREFIX_MAX + 1;
  else if (name[length - 1] === 0x2f) length--;
  const i = name.subarray(0, length).lastIndexOf(0x2f);
  if (i <= 0) return undefined;
  const rest = name.length - i - 1;
  if (rest === 0 || rest > NAME_MAX || i > PREFIX_MAX) return undefined;
  return { prefix: name.subarray(0, i), name: name.subarray(i + 1) };
}

/** One pax record: "<len> <key>=<value>\n", where <len> counts the whole record including itself. */
function paxRecord(key: string, value: string): Buffer {
  const body = Buffer.byteLength(` ${key}=${value}\n`, 'utf8');
  let len = body + String(body).length;
  if (String(len).length + body !== len) len = body + String(len).length;
  return Buffer.from(`${len} ${key}=${value}\n`, 'utf8');
}

interface HeaderFields {
  name: Buffer;
  prefix: Buffer;
  mode: number;
  uid: number;
  gid: number;
  size: number;
  mtime: number;
  typeflag: string;
  linkname: Buffer;
  uname: Buffer;
  gname: Buffer;
}

function writeOctal(block: Uint8Array, offset: number, fieldLen: number, value: number): void {
  // fieldLen-1 zero-padded octal digits and a NUL, as GNU tar writes them (the caller checked the value fits).
  block[offset + fieldLen - 1] = 0;
  for (let i = offset + fieldLen - 2; i >= offset; i--) {
    block[i] = 0x30 + (value % 8);
    value = Math.floor(value / 8);
  }
}

/** What every header has: the magic "ustar\0", version "00", devmajor and devminor "0000000\0", zeros elsewhere. */
const HEADER_TEMPLATE = (() => {
  const b = Buffer.alloc(BLOCK);
  b.write('ustar\0', 257, 6, 'ascii');
  b.write('00', 263, 2, 'ascii');
  writeOctal(b, 329, 8, 0); // devmajor
  writeOctal(b, 337, 8, 0); // devminor
  return b;
})();

/** Encodes one 512-byte ustar header into `b`. Fields must already fit (the caller routes overflow to pax). */
function encodeHeader(h: HeaderFields, b: Uint8Array = Buffer.alloc(BLOCK)): Uint8Array {
  b.set(HEADER_TEMPLATE); // unused bytes and padding are NUL
  b.set(h.name, 0);
  writeOctal(b, 100, 8, h.mode);
  writeOctal(b, 108, 8, h.uid);
  writeOctal(b, 116, 8, h.gid);
  writeOctal(b, 124, 12, h.size);
  writeOctal(b, 136, 12, h.mtime);
  b.fill(0x20, 148, 156); // checksum computed with its own field as spaces
  b[156] = h.typeflag.charCodeAt(0);
  b.set(h.linkname, 157);
  b.set(h.uname, 265);
  b.set(h.gname, 297);
  b.set(h.prefix, 345);
  let sum = 0;
  for (let i = 0; i < BLOCK; i++) sum += b[i]!;
  // six octal digits, NUL, space (the historical format GNU tar and POSIX readers accept)
  writeOctal(b, 148, 7, sum);
  b[155] = 0x20;
  return b;
}

/** The pax header's own name: ASCII, deterministic, derived from the entry's base name. */
function paxHeaderName(path: string): Buffer {
  const base = path.slice(path.lastIndexOf('/') + 1);
  const ascii = Array.from(base, (c) => (c >= ' ' && c <= '~' ? c : '_')).join('');
  return Buffer.from(`PaxHeaders/${ascii}`, 'ascii').subarray(0, NAME_MAX);
}

/** Zeros for padding and the end-of-archive marker (only ever read). */
const ZEROS = new Uint8Array(2 * BLOCK);
const EMPTY = Buffer.alloc(0);

/**
 * Writes a tar stream to a sink, one entry at a time, in the caller's order — which must be strictly
 * increasing by the UTF-8 bytes of the path (so a parent, a prefix of its children, comes first).
 * Anything it cannot write exactly as asked is refused with LAYER_IO; after an error the writer refuses
 * further use. Bytes are copied into the sink's regions (a file body is read into them), so a body
 * Buffer may be reused once add() has resolved.
 */
export class TarWriter {
  private readonly out: SinkWriter;
  /** The ustar header being written, reused for every entry. */
  private readonly header = Buffer.alloc(BLOCK);
  private readonly oneByte = Buffer.alloc(1);
  private lastPath: Buffer | undefined;
  private readonly files = new Set<string>();
  private busy = false;
  private failed: unknown;
  private finished = false;

  /** `sink`: a BlockSink (a compressor's blocks, filled in place) or a function given chunks. */
  constructor(sink: TarSink | BlockSink) {
    this.out = new SinkWriter(typeof sink === 'function' ? new ChunkSink(sink) : sink);
  }

  /** Bytes written so far (the archive's size once finish() has resolved). */
  get bytesWritten(): number {
    return this.out.written;
  }

  async add(h: TarEntryHeader, body?: TarBody): Promise<void> {
    this.enter();
    try {
      const { pax, pathBytes } = this.prepare(h, body);
      this.lastPath = pathBytes;
      if (pax !== undefined) await this.out.write(pax);
      const w = this.out.write(this.header);
      if (w !== undefined) await w;
      if (h.type === 'file') {
        await this.writeBody(h, body);
        this.files.add(h.path);
      }
      this.busy = false;
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }

  /** Writes the end-of-archive marker (two zero blocks) and ends the sink's data. */
  async finish(): Promise<void> {
    this.enter();
    try {
      await this.out.write(ZEROS);
      await this.out.end();
      this.finished = true;
      this.busy = false;
    } catch (e) {
      this.failed = e;
      throw e;
    }
  }

  private enter(): void {
    if (this.failed !== undefined) fail('tar: the writer failed earlier and cannot continue', 'see the first error');
    if (this.finished) fail('tar: the archive is already finished');
    if (this.busy) fail('tar: add() or finish() called before the previous call resolved');
    this.busy = true;
  }

  /**
   * Validates one entry and encodes its ustar header into this.header; where ustar cannot hold a field,
   * `pax` is the pax header, records and padding that go first.
   */
  private prepare(h: TarEntryHeader, body: TarBody | undefined): { pax: Buffer | undefined; pathBytes: Buffer } {
    checkPath(h.path);
    const pathBytes = utf8(h.path, 'path');
    if (this.lastPath !== undefined && Buffer.compare(this.lastPath, pathBytes) >= 0) {
      fail(
        `tar: entries out of order: ${JSON.stringify(h.path)} after ${JSON.stringify(this.lastPath.toString('utf8'))}`,
        'sort entries by the UTF-8 bytes of their paths, each path once',
      );
    }
    if (!ENTRY_TYPES.has(h.type)) fail(`tar: unknown entry type ${JSON.stringify(h.type)}`);
    checkInt(h.mode, 0o7777, 'mode', h.path);
    checkInt(h.uid, Number.MAX_SAFE_INTEGER, 'uid', h.path);
    checkInt(h.gid, Number.MAX_SAFE_INTEGER, 'gid', h.path);
    checkInt(h.size, Number.MAX_SAFE_INTEGER, 'size', h.path);
    checkInt(h.mtime, Number.MAX_SAFE_INTEGER, 'mtime', h.path);
    if (typeof h.uname !== 'string' || typeof h.gname !== 'string') fail(`tar: uname and gname of ${JSON.stringify(h.path)} must be strings`);

    let link: Buffer = EMPTY;
    if (h.type === 'symlink' || h.type === 'hardlink') {
      if (typeof h.linkTarget !== 'string' || h.linkTarget === '') fail(`tar: ${h.type} ${JSON.stringify(h.path)} has no linkTarget`);
      link = utf8(h.linkTarget, 'link target');
      if (h.type === 'hardlink' && !this.files.has(h.linkTarget)) {
        fail(
          `tar: hardlink ${JSON.stringify(h.path)} points to ${JSON.stringify(h.linkTarget)}, which is not an earlier file entry`,
          'a hardlink target must be a regular file written before the link',
        );
      }
    } else if (h.linkTarget !== undefined) {
      fail(`tar: ${h.type} ${JSON.stringify(h.path)} must not have a linkTarget`);
    }
    if (h.type !== 'file' && h.size !== 0) fail(`tar: ${h.type} ${JSON.stringify(h.path)} must have size 0, got ${h.size}`);
    if (h.type !== 'file' && body !== undefined) fail(`tar: ${h.type} ${JSON.stringify(h.path)} cannot have a body`);
    if (h.type === 'file') {
      if (body === undefined && h.size !== 0) fail(`tar: file ${JSON.stringify(h.path)} has size ${h.size} but no body`);
      if (body instanceof Uint8Array && body.length !== h.size) {
        fail(`tar: body of ${JSON.stringify(h.path)} has ${body.length} bytes, the header says ${h.size}`);
      }
    }

    // What ustar can hold as is; everything else goes into a pax record (and the ustar field gets a
    // deterministic stand-in: a truncation for strings, zero for numbers).
    const pax: Array<[string, string]> = [];
    const fullName = h.type === 'dir' ? Buffer.from(`${h.path}/`, 'utf8') : pathBytes;
    let split: { prefix: Buffer; name: Buffer } | undefined = isAscii(h.path) ? splitUstar(fullName) : undefined;
    if (split === undefined) {
      pax.push(['path', h.type === 'dir' ? `${h.path}/` : h.path]);
      split = { prefix: EMPTY, name: truncateUtf8(fullName, NAME_MAX) };
    }
    if (link.length > LINKNAME_MAX || !isAscii(h.linkTarget ?? '')) {
      pax.push(['linkpath', h.linkTarget!]);
      link = truncateUtf8(link, LINKNAME_MAX);
    }
    const owner = (value: string, key: 'uname' | 'gname'): Buffer => {
      const b = utf8(value, key);
      if (b.length <= OWNER_NAME_MAX && isAscii(value)) return b;
      pax.push([key, value]);
      return truncateUtf8(b, OWNER_NAME_MAX);
    };
    const uname = owner(h.uname, 'uname');
    const gname = owner(h.gname, 'gname');
    const numeric = (value: number, max: number, key: string): number => {
      if (value <= max) return value;
      pax.push([key, String(value)]);
      return 0;
    };
    const uid = numeric(h.uid, OCTAL7_MAX, 'uid');
    const gid = numeric(h.gid, OCTAL7_MAX, 'gid');
    const size = numeric(h.size, OCTAL11_MAX, 'size');
    const mtime = numeric(h.mtime, OCTAL11_MAX, 'mtime');

    let paxBytes: Buffer | undefined;
    if (pax.length > 0) {
      pax.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
      const records = Buffer.concat(pax.map(([k, v]) => paxRecord(k, v)));
      const paxHeader = encodeHeader({
        name: paxHeaderName(h.path),
        prefix: EMPTY,
        mode: 0o644,
        uid: 0,
        gid: 0,
        size: records.length,
        mtime: Math.min(h.mtime, OCTAL11_MAX),
        typeflag: TYPEFLAG.pax,
        linkname: EMPTY,
        uname: EMPTY,
        gname: EMPTY,
      });
      paxBytes = Buffer.concat([paxHeader, records, Buffer.alloc(padding(records.length))]);
    }
    encodeHeader(
      {
        name: split.name,
        prefix: split.prefix,
        mode: h.mode,
        uid,
        gid,
        size,
        mtime,
        typeflag: TYPEFLAG[h.type],
        linkname: link,
        uname,
        gname,
      },
      this.header,
    );
    return { pax: paxBytes, pathBytes };
  }

  private async writeBody(h: TarEntryHeader, body: TarBody | undefined): Promise<void> {
    if (body instanceof Uint8Array) {
      const w = this.out.write(body);
      if (w !== undefined) await w;
    } else if (body !== undefined && isFileBody(body)) {
      await this.readFileBody(h, body.file);
    } else if (body !== undefined) {
      let seen = 0;
      for await (const chunk of body as AsyncIterable<unknown>) {
        if (!(chunk instanceof Uint8Array)) {
          body.destroy();
          fail(`tar: body of ${JSON.stringify(h.path)} yields ${typeof chunk} chunks, not bytes`, 'do not set an encoding on body streams');
        }
        seen += chunk.length;
        if (seen > h.size) {
          body.destroy();
          fail(`tar: body of ${JSON.stringify(h.path)} has more than the ${h.size} bytes its header says`);
        }
        const w = this.out.write(chunk);
        if (w !== undefined) await w;
      }
      if (seen !== h.size) fail(`tar: body of ${JSON.stringify(h.path)} has ${seen} bytes, the header says ${h.size}`);
    }
    const pad = padding(h.size);
    if (pad > 0) {
      const w = this.out.write(ZEROS.subarray(0, pad));
      if (w !== undefined) await w;
    }
  }

  /**
   * Reads a file body straight into the sink's regions, checking that the file has exactly the
   * header's size, as the stream path does. Where the region has room, each read asks for one byte
   * more than the body still needs: a regular file's short read is its end, so that a file of the
   * right size costs no extra read to prove it ends there (the byte read beyond is never used).
   */
  private async readFileBody(h: TarEntryHeader, file: string): Promise<void> {
    const cannot = (e: unknown): never => {
      throw new DistillError('LAYER_IO', `tar: cannot read the body of ${JSON.stringify(h.path)} from ${file}: ${messageOf(e)}`, { cause: e });
    };
    const fh: FileHandle = await open(file, 'r').catch(cannot);
    try {
      let seen = 0;
      let atEnd = false;
      while (seen < h.size) {
        let space = this.out.space();
        if (!(space instanceof Uint8Array)) space = await space;
        const want = Math.min(space.length, h.size - seen);
        const ask = want < space.length ? want + 1 : want;
        const { bytesRead } = await fh.read(space, 0, ask, seen).catch(cannot);
        if (bytesRead === 0) break;
        if (bytesRead > want) fail(`tar: body of ${JSON.stringify(h.path)} has more than the ${h.size} bytes its header says`);
        this.out.filled(bytesRead);
        seen += bytesRead;
        atEnd = bytesRead < ask;
      }
      if (seen !== h.size) fail(`tar: body of ${JSON.stringify(h.path)} has ${seen} bytes, the header says ${h.size}`);
      if (!atEnd && (await fh.read(this.oneByte, 0, 1, seen).catch(cannot)).bytesRead > 0) {
        fail(`tar: body of ${JSON.stringify(h.path)} has more than the ${h.size} bytes its header says`);
      }
    } finally {
      await fh.close().catch(() => {});
    }
  }
}

function isFileBody(b: TarBody): b is FileBody {
  return typeof (b as Partial<FileBody>).file === 'string';
}

function padding(size: number): number {
  return (BLOCK - (size % BLOCK)) % BLOCK;
}
