// Reads a binary package (.deb) in one streaming pass, never holding the data member in memory.
// Formats: deb(5) — an ar(5) archive whose members are, in this order, `debian-binary` ("2.x\n"),
// `control.tar[.gz|.xz|.zst]`, `data.tar[.gz|.xz|.zst]`, with `_`-prefixed members (optional,
// non-critical) skipped wherever they appear, as dpkg-deb does; the two tar members are POSIX ustar
// with GNU long names ('L'/'K') and pax extended headers ('x'), read by the one hardened tar reader
// (tar/reader.ts). Every data.tar entry goes through the sanitising policy in rootfs/sanitize.ts before
// a handler sees it.
//
// ATTACKER-CONTROLLED INPUT: every byte of a .deb is untrusted until its sha256 has been checked against
// the signed chain — and the caller may be checking it while this reads — so headers, sizes, names and
// compressed streams are all validated here, and even a verified package's *paths* are hostile (see
// sanitize.ts). Entries handed to the `entry` handler before an error are not a package: a caller must
// treat a rejected readDeb as "nothing was read".
//
// Where tar readers disagree, the tar reader refuses rather than picks (tar/reader.ts says how).
import { Readable } from 'node:stream';
import type { Compression } from '../compress/decompress.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import type { FsEntry } from './entry.js';
import { EntrySanitizer, type SanitizeOptions } from './sanitize.js';
import { type OnTarEntry, type OnTarEntrySync, type ReadTarOptions, type TarBodySink, readTar, readTarSync } from '../tar/reader.js';
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
  /**
   * The synchronous form of `entry` (used instead of it when given): return a sink for a file's
   * bytes, which arrive as views valid only during each `data` call, or undefined to skip the body.
   * No stream or promise per entry — for a caller that stages tens of thousands of files.
   */
  entrySync?: (e: FsEntry) => TarBodySink | undefined;
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
/**
 * control, md5sums and conffiles are held in memory; md5sums of the largest Debian packages is a few MB.
 * Every other control.tar entry (maintainer scripts, symbols, triggers) is skipped unread but still
 * decoded, and no sanitiser bounds them: each is held to this size too, and all of them together to
 * CONTROL_TAR_MAX, or a small compressed member could declare and decode terabytes.
 */
const CONTROL_FILE_MAX = 64 * 1024 * 1024;
const CONTROL_TAR_MAX = 256 * 1024 * 1024;
/** Entries in control.tar (a real one has a handful). */
const CONTROL_TAR_ENTRIES = 100_000;
/**
 * Entries in data.tar (or a definition's tarball). Every directory is kept whatever the path rules say,
 * and each entry kept costs ~300 bytes in the staging worker and again on the main thread it is sent to:
 * the tar reader's default (10,000,000, for image layers) would let one package of directory headers
 * — a few hundred MB of xz — exhaust the heap. The largest Debian packages have a few hundred thousand.
 */
const DATA_TAR_ENTRIES = 1_000_000;

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
      // The decompressor already names the package and member (the tar reader gives it that prefix).
      const own = `${what}: ${member}: `;
      throw malformed(what, `${member}: ${e.message.startsWith(own) ? e.message.slice(own.length) : e.message}`, e);
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
  const member = memberStream(src, m, what);
  let total = 0;
  await readTarSync(member, { ...tarOptions(what, m.name, kind, {}, undefined), maxEntries: CONTROL_TAR_ENTRIES }, (entry) => {
    const name = entry.name.replace(/^\.\//, '').replace(/\/+$/, '');
    total += entry.size;
    if (entry.size > CONTROL_FILE_MAX || total > CONTROL_TAR_MAX) {
      const limit = entry.size > CONTROL_FILE_MAX ? `the limit is ${CONTROL_FILE_MAX}` : `control.tar's entries add up to more than ${CONTROL_TAR_MAX}`;
      throw malformed(what, `${m.name}: ${JSON.stringify(entry.name.slice(0, 200))} is ${entry.size} bytes (${limit})`);
    }
    // Readers disagree on whether data follows a non-file's header with a size: GNU tar skips it after
    // a symlink or a fifo but not after a hardlink or a directory, Python's tarfile never does, this
    // one (as tar-stream) always does except after a directory — so a control file hidden in such
    // "data" would be seen by some readers and not others. data.tar's sanitiser refuses these too.
    if (entry.type !== 'file' && entry.size !== 0) throw malformed(what, `${m.name}: ${JSON.stringify(entry.name.slice(0, 200))} is a ${entry.type} with ${entry.size} bytes of data`);
    if (!CONTROL_FILES.has(name)) return undefined; // skipped unread
    if (entry.type !== 'file') throw malformed(what, `${m.name}: ${name} is a ${entry.type}, not a regular file`);
    if (files.has(name)) throw malformed(what, `${m.name}: ${name} appears twice`);
    const tooBig = () => malformed(what, `${m.name}: ${name} is ${entry.size} bytes (the limit is ${CONTROL_FILE_MAX})`);
    if (entry.size > CONTROL_FILE_MAX) throw tooBig();
    const chunks: Buffer[] = [];
    let n = 0;
    return {
      data: (c) => {
        n += c.length;
        if (n > CONTROL_FILE_MAX) throw tooBig();
        chunks.push(Buffer.from(c)); // a view of the stream: copied to be kept
      },
      end: () => {
        let text: string;
        try {
          text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(Buffer.concat(chunks));
        } catch {
          throw malformed(what, `${m.name}: ${name} is not valid UTF-8`);
        }
        files.set(name, text);
      },
    };
  });
  await readPadding(src, m, what);
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
// data.tar: each entry is decoded by the tar reader (tar/reader.ts), sanitised, handed on.

async function readDataMember(
  src: ByteSource,
  m: ArMember,
  kind: Compression,
  what: string,
  handlers: ReadDebHandlers,
  opts: SanitizeOptions,
  passThrough: WeakSet<object>,
): Promise<void> {
  if (handlers.entrySync !== undefined) {
    const member = memberStream(src, m, what);
    await readTarSync(member, tarOptions(what, m.name, kind, opts, passThrough), sanitisedEntriesSync(what, handlers.entrySync, opts));
    await readPadding(src, m, what);
    return;
  }
  await readTarMember(src, m, kind, what, opts, passThrough, sanitisedEntries(what, handlers, opts));
}

/** Each tar entry sanitised and handed to a synchronous handler. */
function sanitisedEntriesSync(what: string, entry: NonNullable<ReadDebHandlers['entrySync']>, opts: SanitizeOptions): OnTarEntrySync {
  const sanitizer = new EntrySanitizer(what, opts);
  return (raw) => {
    const fsEntry = sanitizer.sanitize(raw);
    if (fsEntry === undefined) return undefined; // skipped unread
    const sink = entry(fsEntry);
    return fsEntry.type === 'file' ? sink : undefined;
  };
}

/** Each tar entry sanitised and handed to `handlers.entry` with its body. */
function sanitisedEntries(what: string, handlers: ReadDebHandlers, opts: SanitizeOptions): OnTarEntry {
  const sanitizer = new EntrySanitizer(what, opts);
  return async (raw, body) => {
    const fsEntry = sanitizer.sanitize(raw);
    if (fsEntry === undefined || handlers.entry === undefined) return; // drained unread
    await handlers.entry(fsEntry, fsEntry.type === 'file' ? body() : undefined);
  };
}

/**
 * A plain (optionally compressed) tarball — a definition's own files — read with the same tar reader
 * and the same sanitiser as a .deb's data.tar: it is attacker-controlled input just the same.
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
    await readTar(input, tarOptions(what, 'tarball', kind, opts, passThrough), sanitisedEntries(what, { entry }, opts));
  } catch (e) {
    input.destroy();
    if (isDistillError(e) || passThrough.has(e as object)) throw e;
    throw malformed(what, messageOf(e), e);
  }
}

function tarOptions(what: string, member: string, kind: Compression, opts: SanitizeOptions, ownErrors: WeakSet<object> | undefined): ReadTarOptions {
  return {
    what,
    member,
    compression: kind,
    maxEntries: DATA_TAR_ENTRIES,
    malformed: (message, cause) => malformedEntry(message, cause),
    ...(opts.onWarning !== undefined ? { onWarning: opts.onWarning } : {}),
    ...(ownErrors !== undefined ? { ownErrors } : {}),
  };
}

// ---------------------------------------------------------------------------------------------------
// One tar member of the ar archive, streamed: member bytes → tar/reader.ts (decompressor, then distill's TarParser).

async function readTarMember(src: ByteSource, m: ArMember, kind: Compression, what: string, opts: SanitizeOptions, ownErrors: WeakSet<object> | undefined, onEntry: OnTarEntry): Promise<void> {
  const member = memberStream(src, m, what);
  await readTar(member, tarOptions(what, m.name, kind, opts, ownErrors), onEntry);
  await readPadding(src, m, what);
}

function memberStream(src: ByteSource, m: ArMember, what: string): Readable {
  return Readable.from(src.take(m.size, (got) => truncated(what, m, got)), { objectMode: false });
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

function malformedEntry(message: string, cause?: unknown): DistillError {
  return new DistillError('DEB_MALFORMED', message, {
    cause,
    hint: 'the .deb is corrupt, truncated or not a Debian package; fetch it again and check its sha256 against the lock',
  });
}

function truncated(what: string, m: ArMember, got: number): DistillError {
  return malformed(what, `the archive ends ${got} bytes into member ${JSON.stringify(m.name)}, which claims ${m.size} (truncated)`);
}
