// Reads a binary package (.deb) in one streaming pass, never holding the data member in memory.
// Formats: deb(5) — an ar(5) archive whose members are, in this order, `debian-binary` ("2.x\n"),
// `control.tar[.gz|.xz|.zst]`, `data.tar[.gz|.xz|.zst]`, with `_`-prefixed members (optional,
// non-critical) skipped wherever they appear, as dpkg-deb does; the two tar members are POSIX ustar
// with GNU long names ('L'/'K') and pax extended headers ('x'), read with tar-stream. Every data.tar
// entry goes through the sanitising policy in rootfs/sanitize.ts before a handler sees it.
//
// ATTACKER-CONTROLLED INPUT: every byte of a .deb is untrusted until its sha256 has been checked against
// the signed chain — and the caller may be checking it while this reads — so headers, sizes, names and
// compressed streams are all validated here, and even a verified package's *paths* are hostile (see
// sanitize.ts). Entries handed to the `entry` handler before an error are not a package: a caller must
// treat a rejected readDeb as "nothing was read".
//
// Where tar readers disagree, this one refuses rather than picks: the archive ends at the first zero
// block (as in dpkg and GNU tar) and any entry after it is an error, not ignored; pax global headers
// ('g', which dpkg refuses and tar-stream applies only sometimes) and GNU sparse files are refused.
import { Readable, Transform, type TransformCallback } from 'node:stream';
import * as tar from 'tar-stream';
import { decompressor, type Compression } from '../compress/decompress.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import type { FsEntry } from './entry.js';
import { EntrySanitizer, type RawEntry, type RawEntryType, type SanitizeOptions } from './sanitize.js';
import { parseDeb822, type Paragraph } from '../debian/deb822.js';

export interface DebControl {
  /** The control file, exactly (UTF-8). */
  text: string;
  fields: Paragraph;
  md5sums?: string;
  conffiles?: string;
}

export interface ReadDebHandlers {
  /** Called once, after control.tar has been read and before any data.tar entry. */
  control?: (c: DebControl) => void | Promise<void>;
  /**
   * Called for each data.tar entry in archive order; `body` (files only) must be fully consumed or the
   * returned promise awaited before the next entry is read. What is left of an unconsumed body once the
   * promise settles is discarded. The body must not be destroyed while it is still wanted.
   */
  entry?: (e: FsEntry, body: Readable | undefined) => Promise<void>;
}

export interface ReadDebOptions extends SanitizeOptions {
  /**
   * The .deb's size when known (a lock pins it): then an ar member claiming more bytes than remain is
   * refused before any of it is read. Without it, the shortfall is found when the input ends.
   */
  size?: number;
}

const AR_MAGIC = '!<arch>\n';
const AR_HEADER = 60;
/** debian-binary is "2.0\n" in practice; dpkg-deb's own buffer is smaller than this. */
const DEBIAN_BINARY_MAX = 1024;
/** control, md5sums and conffiles are held in memory; md5sums of the largest Debian packages is a few MB. */
const CONTROL_FILE_MAX = 64 * 1024 * 1024;
const BLOCK = 512;
/** tar-stream's own limit on one long-name or pax header. */
const LONG_HEADER_MAX = 4 * 1024 * 1024;

interface ArMember {
  name: string;
  size: number;
  /** Offset of the member's data in the .deb. */
  offset: number;
}

/**
 * Read a .deb from `input` (consumed to its end), calling `handlers.control` then `handlers.entry` for
 * each data.tar entry. `what` names the package in errors. Errors: DEB_MALFORMED (bad or truncated
 * archive, members out of order, corrupt compressed data), DEB_UNSUPPORTED_COMPRESSION, UNSAFE_ENTRY,
 * TOOL_MISSING (no xz/zstd binary); errors of `input` and of the handlers propagate unchanged. On
 * error, `input` is destroyed.
 */
export async function readDeb(input: Readable, what: string, handlers: ReadDebHandlers, opts: ReadDebOptions = {}): Promise<void> {
  const src = new ByteSource(input);
  const passThrough = new WeakSet<object>();
  let member = 'the ar header';
  try {
    const magic = await src.read(AR_MAGIC.length);
    if (magic.toString('latin1') !== AR_MAGIC) {
      throw malformed(what, magic.length < AR_MAGIC.length ? 'too short to be a .deb' : 'not an ar archive (deb(5) packages start with "!<arch>\\n")');
    }

    const first = await readMemberHeader(src, what, opts.size);
    if (first === undefined || first.name !== 'debian-binary') {
      throw malformed(what, `the first member must be debian-binary, found ${first === undefined ? 'nothing' : JSON.stringify(first.name)}`);
    }
    member = first.name;
    if (first.size > DEBIAN_BINARY_MAX) throw malformed(what, `debian-binary is ${first.size} bytes`);
    const version = (await readMemberData(src, first, what)).toString('latin1');
    // deb(5): the first line is the format version; readers accept any 2.x and ignore later lines.
    if (!/^2\.[0-9]+\n/.test(version)) {
      throw malformed(what, `unsupported package format ${JSON.stringify(version.slice(0, 20))} in debian-binary (expected "2.x\\n")`);
    }

    let control: DebControl | undefined;
    let dataDone = false;
    for (;;) {
      const h = await readMemberHeader(src, what, opts.size);
      if (h === undefined) break;
      member = h.name;
      if (h.name.startsWith('_')) {
        // deb(5): members starting with '_' are optional and may be skipped by readers that do not know them.
        await skipMember(src, h, what);
        continue;
      }
      if (control === undefined && h.name.startsWith('control.tar')) {
        const kind = memberCompression(h.name, 'control.tar', what);
        control = await readControlMember(src, h, kind, what);
        if (handlers.control) {
          try {
            await handlers.control(control);
          } catch (e) {
            if (typeof e === 'object' && e !== null) passThrough.add(e);
            throw e;
          }
        }
        continue;
      }
      if (control !== undefined && !dataDone && h.name.startsWith('data.tar')) {
        const kind = memberCompression(h.name, 'data.tar', what);
        await readDataMember(src, h, kind, what, handlers, opts, passThrough);
        dataDone = true;
        continue;
      }
      const expected = control === undefined ? 'control.tar' : dataDone ? 'the end of the archive' : 'data.tar';
      throw malformed(what, `unexpected member ${JSON.stringify(h.name)} where ${expected} should be`);
    }
    if (control === undefined || !dataDone) {
      throw malformed(what, `the archive ends before its ${control === undefined ? 'control.tar' : 'data.tar'} member (truncated?)`);
    }
  } catch (e) {
    src.abort();
    if (src.inputError !== undefined && e === src.inputError) throw e;
    if (typeof e === 'object' && e !== null && passThrough.has(e)) throw e;
    if (isDistillError(e)) {
      if (e.code !== 'DECOMPRESS_FAILED') throw e;
      throw malformed(what, `${member}: ${e.message}`, e);
    }
    throw malformed(what, `${member}: ${messageOf(e)}`, e);
  }
}

// ---------------------------------------------------------------------------------------------------
// ar(5): "!<arch>\n", then per member a 60-byte header — name[16] (space-padded; GNU ar ends it with
// '/'), date[12], uid[6], gid[6] (decimal), mode[8] (octal), size[10] (decimal), "`\n" — then `size`
// bytes and one '\n' of padding when size is odd.

async function readMemberHeader(src: ByteSource, what: string, total: number | undefined): Promise<ArMember | undefined> {
  const at = src.position;
  const h = await src.read(AR_HEADER);
  if (h.length === 0) return undefined;
  if (h.length < AR_HEADER) throw malformed(what, `the archive ends inside an ar member header at offset ${at} (truncated)`);
  const field = (start: number, len: number) => h.toString('latin1', start, start + len);
  if (field(58, 2) !== '`\n') throw malformed(what, `bad ar member header at offset ${at} (no "\`\\n" terminator)`);
  let name = field(0, 16).replace(/ +$/, '');
  if (name.endsWith('/') && name.length > 1) name = name.slice(0, -1);
  if (!/^[\x21-\x7e]+$/.test(name)) throw malformed(what, `bad ar member name ${JSON.stringify(field(0, 16))} at offset ${at}`);
  const numeric = (start: number, len: number, digits: RegExp, label: string): string => {
    const v = field(start, len);
    if (!digits.test(v)) throw malformed(what, `ar member ${JSON.stringify(name)}: bad ${label} field ${JSON.stringify(v)}`);
    return v.trimEnd();
  };
  numeric(16, 12, /^[0-9]+ *$/, 'date');
  numeric(28, 6, /^[0-9]+ *$/, 'uid');
  numeric(34, 6, /^[0-9]+ *$/, 'gid');
  numeric(40, 8, /^[0-7]+ *$/, 'mode');
  const size = Number(numeric(48, 10, /^[0-9]+ *$/, 'size'));
  const offset = src.position;
  if (total !== undefined && offset + size + (size & 1) > total) {
    throw malformed(what, `ar member ${JSON.stringify(name)} claims ${size} bytes but only ${Math.max(0, total - offset)} remain`);
  }
  return { name, size, offset };
}

async function readMemberData(src: ByteSource, m: ArMember, what: string): Promise<Buffer> {
  const data = await src.read(m.size);
  if (data.length < m.size) throw truncated(what, m, data.length);
  await readPadding(src, m, what);
  return data;
}

async function skipMember(src: ByteSource, m: ArMember, what: string): Promise<void> {
  for await (const chunk of src.take(m.size, (got) => truncated(what, m, got))) void chunk;
  await readPadding(src, m, what);
}

async function readPadding(src: ByteSource, m: ArMember, what: string): Promise<void> {
  if ((m.size & 1) === 0) return;
  const pad = await src.read(1);
  if (pad.length === 0) throw malformed(what, `the archive ends after member ${JSON.stringify(m.name)} without its padding byte (truncated)`);
  if (pad[0] !== 0x0a) throw malformed(what, `member ${JSON.stringify(m.name)} is followed by a padding byte other than "\\n"`);
}

function memberCompression(name: string, base: 'control.tar' | 'data.tar', what: string): Compression {
  const ext = name.slice(base.length);
  switch (ext) {
    case '':
      return 'none';
    case '.gz':
      return 'gzip';
    case '.xz':
      return 'xz';
    case '.zst':
      return 'zstd';
  }
  throw new DistillError('DEB_UNSUPPORTED_COMPRESSION', `${what}: member ${JSON.stringify(name)} uses a compression distill does not read`, {
    hint: `distill reads ${base}, ${base}.gz, ${base}.xz and ${base}.zst (bzip2 and lzma members are obsolete in Debian)`,
  });
}

// ---------------------------------------------------------------------------------------------------
// control.tar: only ./control, ./md5sums and ./conffiles are read; maintainer scripts and everything
// else are drained unread (distill runs no maintainer scripts).

const CONTROL_FILES = new Set(['control', 'md5sums', 'conffiles']);

async function readControlMember(src: ByteSource, m: ArMember, kind: Compression, what: string): Promise<DebControl> {
  const files = new Map<string, string>();
  await readTarMember(src, m, kind, what, async (header, entry, tap) => {
    tap.entered(entry.offset, dataLength(header));
    const name = header.name.replace(/^\.\//, '').replace(/\/+$/, '');
    if (!CONTROL_FILES.has(name)) {
      await drainEntry(entry);
      return;
    }
    if (header.type !== 'file') throw malformed(what, `${m.name}: ${name} is a ${header.type ?? 'unknown entry'}, not a regular file`);
    if (files.has(name)) throw malformed(what, `${m.name}: ${name} appears twice`);
    const size = header.size ?? 0;
    if (size > CONTROL_FILE_MAX) throw malformed(what, `${m.name}: ${name} is ${size} bytes (the limit is ${CONTROL_FILE_MAX})`);
    const chunks: Buffer[] = [];
    for await (const c of entry) chunks.push(c as Buffer);
    const bytes = Buffer.concat(chunks);
    let text: string;
    try {
      text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
    } catch {
      throw malformed(what, `${m.name}: ${name} is not valid UTF-8`);
    }
    files.set(name, text);
  });
  const text = files.get('control');
  if (text === undefined) throw malformed(what, `${m.name} has no control file`);
  let paragraphs: Paragraph[];
  try {
    paragraphs = parseDeb822(text, `${what}: control`);
  } catch (e) {
    throw malformed(what, `control file: ${messageOf(e)}`, e);
  }
  const fields = paragraphs[0];
  if (paragraphs.length !== 1 || fields === undefined) {
    throw malformed(what, `the control file holds ${paragraphs.length} paragraphs, expected 1`);
  }
  for (const f of ['Package', 'Version', 'Architecture']) {
    if (!fields.get(f)) throw malformed(what, `the control file has no ${f} field`);
  }
  const out: DebControl = { text, fields };
  const md5sums = files.get('md5sums');
  const conffiles = files.get('conffiles');
  if (md5sums !== undefined) out.md5sums = md5sums;
  if (conffiles !== undefined) out.conffiles = conffiles;
  return out;
}

// ---------------------------------------------------------------------------------------------------
// data.tar: each entry is decoded (tar-stream plus the pax fields it leaves alone), sanitised, handed on.

async function readDataMember(
  src: ByteSource,
  m: ArMember,
  kind: Compression,
  what: string,
  handlers: ReadDebHandlers,
  opts: SanitizeOptions,
  passThrough: WeakSet<object>,
): Promise<void> {
  await readTarMember(src, m, kind, what, sanitisedEntries(what, handlers, opts, passThrough));
}

/** Each tar entry decoded, sanitised and handed to `handlers.entry` with its body. */
function sanitisedEntries(what: string, handlers: ReadDebHandlers, opts: SanitizeOptions, passThrough: WeakSet<object>): OnTarEntry {
  const sanitizer = new EntrySanitizer(what, opts);
  return async (header, entry, tap) => {
    const typeflag = tap.typeflag;
    tap.entered(entry.offset, dataLength(header));
    const raw = rawEntry(header, typeflag, `${what}: ${JSON.stringify(header.name)}`, opts);
    const fsEntry = sanitizer.sanitize(raw);
    if (fsEntry === undefined || handlers.entry === undefined) {
      await drainEntry(entry);
      return;
    }
    const body = fsEntry.type === 'file' ? new EntryBody(entry) : undefined;
    try {
      await handlers.entry(fsEntry, body?.readable);
    } catch (e) {
      // The handler's own error propagates unchanged; the archive's error, rethrown through the body, does not.
      if (typeof e === 'object' && e !== null && e !== body?.error) passThrough.add(e);
      throw e;
    }
    if (body !== undefined) await body.drain();
    else await drainEntry(entry);
  };
}

/**
 * A plain (optionally compressed) tarball — a definition's own files — read with the same decoder and
 * the same sanitiser as a .deb's data.tar: it is attacker-controlled input just the same.
 */
export async function readTarball(
  input: Readable,
  kind: Compression,
  what: string,
  entry: NonNullable<ReadDebHandlers['entry']>,
  opts: SanitizeOptions = {},
): Promise<void> {
  const passThrough = new WeakSet<object>();
  try {
    await readTarFrom(input, kind, what, 'tarball', sanitisedEntries(what, { entry }, opts, passThrough));
  } catch (e) {
    input.destroy();
    if (isDistillError(e) || passThrough.has(e as object)) throw e;
    throw malformed(what, messageOf(e), e);
  }
}

const TYPES: Record<string, RawEntryType> = {
  file: 'file',
  link: 'hardlink',
  symlink: 'symlink',
  directory: 'dir',
  'character-device': 'char-device',
  'block-device': 'block-device',
  fifo: 'fifo',
  'contiguous-file': 'contiguous',
};

/** A tar-stream header as a RawEntry: numbers checked, pax uid/gid/uname/gname/mtime applied. */
function rawEntry(header: tar.Header, typeflag: number | undefined, where: string, opts: SanitizeOptions): RawEntry {
  const bad = (field: string, v: unknown) => malformedEntry(`${where}: bad ${field} ${JSON.stringify(String(v))}`);
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
          if (k.startsWith('GNU.sparse.')) throw malformedEntry(`${where}: a GNU sparse file (pax ${k}), which distill does not read`);
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
  const raw: RawEntry = {
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
  return raw;
}

// ---------------------------------------------------------------------------------------------------
// One tar member of the ar archive, streamed: member bytes → decompressor → TarBoundary → tar-stream.

/** tar-stream's entry stream (a streamx Readable with the header and the header's offset). */
type TarEntry = tar.Extract extends AsyncIterable<infer S> ? S : never;

type OnTarEntry = (header: tar.Header, entry: TarEntry, tap: TarBoundary) => Promise<void>;

async function readTarMember(src: ByteSource, m: ArMember, kind: Compression, what: string, onEntry: OnTarEntry): Promise<void> {
  await readTarFrom(Readable.from(src.take(m.size, (got) => truncated(what, m, got)), { objectMode: false }), kind, what, m.name, onEntry);
  await readPadding(src, m, what);
}

async function readTarFrom(source: Readable, kind: Compression, what: string, member: string, onEntry: OnTarEntry): Promise<void> {
  const label = `${what} (${member})`;
  const decoder = decompressor(kind, label);
  const tap = new TarBoundary(what, member);
  const extract = tar.extract();
  let failure: { error: unknown } | undefined;
  const fail = (e: unknown): void => {
    failure ??= { error: e };
    source.destroy();
    decoder.destroy();
    tap.destroy();
    extract.destroy(e instanceof Error ? e : new Error(String(e)));
  };
  source.on('error', fail);
  decoder.on('error', fail);
  tap.on('error', fail);
  extract.on('error', fail);
  source.pipe(decoder).pipe(tap).pipe(extract as unknown as NodeJS.WritableStream);
  try {
    for await (const entry of extract) {
      await onEntry(entry.header, entry, tap);
    }
    tap.ended();
    // The decompressed stream can only have ended after the whole input went in; anything else means
    // the compressed stream stopped short of its end.
    if (!source.readableEnded) throw malformed(what, `${member}: data after the end of the compressed stream`);
  } catch (e) {
    fail(e);
  }
  if (failure !== undefined) throw failure.error;
}

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
    private readonly what: string,
    private readonly member: string,
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
    return malformed(this.what, `${this.member}: ${message}`);
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

// ---------------------------------------------------------------------------------------------------
// Entry bodies.

/** Read and discard an entry's data (tar-stream waits for it before the next header). */
function drainEntry(entry: TarEntry): Promise<void> {
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

  constructor(private readonly entry: TarEntry) {
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

// ---------------------------------------------------------------------------------------------------
// The input, read in order: exact-length reads for headers, a chunk generator for member data.

class ByteSource {
  private readonly it: AsyncIterator<unknown>;
  private buf: Buffer = Buffer.alloc(0);
  private eof = false;
  /** Bytes handed out so far (the offset in the .deb). */
  position = 0;
  /** The input's own error, which propagates unchanged. */
  inputError: unknown;

  constructor(private readonly input: Readable) {
    this.it = input[Symbol.asyncIterator]();
  }

  private async more(): Promise<boolean> {
    if (this.eof) return false;
    let r: IteratorResult<unknown>;
    try {
      r = await this.it.next();
    } catch (e) {
      this.inputError = e;
      throw e;
    }
    if (r.done) {
      this.eof = true;
      return false;
    }
    const c = r.value;
    if (!Buffer.isBuffer(c)) throw new TypeError('readDeb: the input must be a byte stream (no encoding set)');
    this.buf = this.buf.length === 0 ? c : Buffer.concat([this.buf, c]);
    return true;
  }

  /** `n` bytes, fewer only where the input ends. */
  async read(n: number): Promise<Buffer> {
    while (this.buf.length < n && (await this.more()));
    const out = this.buf.subarray(0, Math.min(n, this.buf.length));
    this.buf = this.buf.subarray(out.length);
    this.position += out.length;
    return out;
  }

  /** Exactly `n` bytes as chunks; `short(got)` is thrown if the input ends first. */
  async *take(n: number, short: (got: number) => Error): AsyncGenerator<Buffer> {
    let left = n;
    while (left > 0) {
      if (this.buf.length === 0 && !(await this.more())) throw short(n - left);
      const c = this.buf.subarray(0, Math.min(left, this.buf.length));
      this.buf = this.buf.subarray(c.length);
      left -= c.length;
      this.position += c.length;
      yield c;
    }
  }

  /** Stop reading: the input is destroyed (a pending read settles). */
  abort(): void {
    this.input.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------

function malformed(what: string, message: string, cause?: unknown): DistillError {
  return new DistillError('DEB_MALFORMED', `${what}: ${message}`, {
    cause,
    hint: 'the .deb is corrupt, truncated or not a Debian package; fetch it again and check its sha256 against the lock',
  });
}

function malformedEntry(message: string): DistillError {
  return new DistillError('DEB_MALFORMED', message, {
    hint: 'the .deb is corrupt, truncated or not a Debian package; fetch it again and check its sha256 against the lock',
  });
}

function truncated(what: string, m: ArMember, got: number): DistillError {
  return malformed(what, `the archive ends ${got} bytes into member ${JSON.stringify(m.name)}, which claims ${m.size} (truncated)`);
}
