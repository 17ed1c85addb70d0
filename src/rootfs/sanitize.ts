// The safety policy for filesystem entries read out of a package: what distill accepts, rewrites or
// refuses before an entry reaches a root filesystem. readDeb applies it to every data.tar member.
// Entry kinds and fields are those of a POSIX ustar/pax archive (typeflags '0'..'7'); the policy itself
// is format-agnostic: it sees one RawEntry per archive member, in archive order.
//
// ATTACKER-CONTROLLED INPUT: every field of a RawEntry comes from inside a .deb. Even after the .deb's
// sha256 has been checked against the signed chain, its paths and link targets are treated as hostile:
// a signed package is not a promise that it cannot name /etc/shadow.
//
// The rules (each refusal is a DistillError UNSAFE_ENTRY naming the package and the path):
// - paths: NUL or control characters, invalid UTF-8 (U+FFFD after decoding), an absolute path (after
//   dropping one leading './', the form dpkg-deb writes), any '..' component, a component longer than
//   255 bytes or a path longer than 4095 bytes (neither can exist on Linux) → refused. '.' and empty
//   components and a trailing '/' are normalised away; the root entry ('.', './') is skipped silently.
// - owner names (uname, gname): NUL or control characters → refused.
// - entry types: char/block devices, fifos, sockets, contiguous files ('7', which dpkg also refuses) and
//   unknown typeflags → refused. Only files, directories, symlinks and hardlinks exist in an image.
// - symlinks: an absolute target is legitimate inside an image (/etc/alternatives/awk) and kept as
//   stored; a relative target that climbs above the root from the link's own directory → refused.
// - hardlinks: the target must name a regular file seen earlier in the same package → else refused.
//   A hardlink shares its target's inode, so it takes the target's (sanitised) mode.
// - sizes: a file over maxEntrySize, or a package whose files add up to more than maxTotalSize →
//   refused; a non-file with a non-zero size (parsers disagree on whether data follows) → refused.
// - nesting: an entry under a path this package made a non-directory (a file or a symlink) → refused:
//   no archive of a real tree has one, and following a symlink inside the package would let it write
//   where its own listing does not say it writes.
// - duplicates: the same path twice is allowed only with the same type (the later entry wins, with a
//   warning); a different type, or replacing a file a hardlink already points at → refused.
// - setuid/setgid on files and hardlinks → stripped with a warning unless allowSetid(path) says yes
//   (util-linux's su is setuid root in Debian; a container image should not carry it by default). On
//   directories the bits are kept: setgid there means group inheritance, and Linux ignores setuid.
// - world-writable files, and world-writable directories without the sticky bit → kept, with a warning.
//   Rewriting Debian's modes silently would make the image differ from what dpkg installs; Debian
//   policy (and lintian) already forbid such files, so one appearing is worth a loud message, not a
//   different filesystem. /tmp-style 1777 directories are normal and silent.
import { DistillError } from '../errors.js';
import type { TarEntry, TarEntryType } from '../tar/reader.js';
import { PERMISSION_BITS, SETGID, SETUID, STICKY, normalisePath, parentOf, type EntryType, type FsEntry } from './entry.js';
import { Where } from '../util/where.js';

export interface SanitizeOptions {
  /** Largest accepted file, in bytes; default 2 GiB. A larger one is refused as an absurd size. */
  maxEntrySize?: number;
  /** Largest accepted sum of file sizes in one package; default 8 GiB. */
  maxTotalSize?: number;
  /** Which paths may keep setuid/setgid bits; default none. Receives the normalised path. */
  allowSetid?: (path: string) => boolean;
  /** Receives one line per rewritten or suspicious entry. */
  onWarning?: (message: string) => void;
}

export const DEFAULT_MAX_ENTRY_SIZE = 2 * 1024 ** 3;
export const DEFAULT_MAX_TOTAL_SIZE = 8 * 1024 ** 3;
/**
 * Paths one package may name — its entries' and the parent directories they imply — and their length in
 * all (a real one: a few 100,000 paths, tens of MB).
 */
const MAX_PATHS = 2_000_000;
const MAX_PATH_CHARS = 256 * 1024 * 1024;
/** Linux limits: PATH_MAX counts the terminating NUL; NAME_MAX is one component. */
const PATH_MAX_BYTES = 4095;
const NAME_MAX_BYTES = 255;

/**
 * One archive member as the tar reader states it (decoded, not yet trusted), and its kinds: only
 * file, dir, symlink and hardlink survive sanitising; only PERMISSION_BITS of its mode are kept.
 */
export type RawEntry = TarEntry;
export type RawEntryType = TarEntryType;

interface Seen {
  type: EntryType;
  /** false for a directory only implied by a deeper entry's path. */
  explicit: boolean;
  /** Sanitised mode, for files (hardlinks share it). */
  mode: number;
  /** A hardlink points at this file: replacing it would leave the link's meaning ambiguous. */
  linked?: boolean;
}

/** Applies the policy to one package's entries, in archive order (duplicates and hardlinks need history). */
export class EntrySanitizer {
  private readonly seen = new Map<string, Seen>();
  /** The length of every path in `seen`, together (MAX_PATH_CHARS). */
  private pathChars = 0;
  private total = 0;
  private readonly maxEntrySize: number;
  private readonly maxTotalSize: number;

  /** `what` names the package in every message (a file name or pool path). */
  constructor(
    readonly what: string,
    private readonly opts: SanitizeOptions = {},
  ) {
    this.maxEntrySize = opts.maxEntrySize ?? DEFAULT_MAX_ENTRY_SIZE;
    this.maxTotalSize = opts.maxTotalSize ?? DEFAULT_MAX_TOTAL_SIZE;
  }

  /** The entry to install, `undefined` for one to skip silently (the root), or a thrown UNSAFE_ENTRY. */
  sanitize(raw: RawEntry): FsEntry | undefined {
    // Only messages need it: built when first put in one.
    const where = new Where(this.what, raw.name, show);
    const path = archivePath(raw.name, where, 'path');
    if (path === '') {
      if (raw.type === 'dir') return undefined;
      throw unsafe(`${where}: a ${raw.type} entry for the root directory itself`);
    }
    const type = acceptedType(raw, where);

    const size = raw.size;
    if (type !== 'file' && size !== 0) {
      throw unsafe(`${where}: a ${type === 'dir' ? 'directory' : type} entry with ${size} bytes of data (only regular files carry data)`);
    }
    if (type === 'file') {
      if (size > this.maxEntrySize) {
        throw unsafe(`${where}: absurd size ${size} bytes (the limit is ${this.maxEntrySize})`, 'raise maxEntrySize only if this package really ships such a file');
      }
      this.total += size;
      if (this.total > this.maxTotalSize) {
        throw unsafe(`${where}: the package's files add up to more than ${this.maxTotalSize} bytes`, 'raise maxTotalSize only if this package is really that large');
      }
    }

    // Nothing may sit under a path this package made a file, symlink or hardlink. Every path in `seen`
    // has its ancestors there too, as directories (they are added with it, and a later entry cannot make
    // one anything else: it would appear twice with another type), so the walk stops at the first one
    // seen — an entry costs its new components, not its depth (a 4 KiB path has 2,048 of them).
    for (let p = parentOf(path); p !== ''; p = parentOf(p)) {
      const s = this.seen.get(p);
      if (s === undefined) continue;
      if (s.type !== 'dir') throw unsafe(`${where}: lies under ${show(p)}, which this package made a ${s.type}`);
      break;
    }
    const before = this.seen.get(path);
    if (before !== undefined && before.type !== type) {
      throw unsafe(`${where}: appears twice, as a ${before.explicit ? before.type : 'directory (implied by deeper paths)'} and as a ${type}`);
    }
    if (before?.linked) throw unsafe(`${where}: appears twice, and a hardlink already points at the first one`);
    if (before !== undefined && before.explicit) this.warn(`${where}: appears twice in the package; the later entry wins`);

    // Owner names go into the layer as they are (a pax record when long); a NUL or control character
    // (possible in a pax uname/gname) is no user's name, and the layer writer would refuse it later
    // without naming the package.
    if (!plainOwner(raw.uname) || !plainOwner(raw.gname)) {
      throw unsafe(`${where}: owner name ${show(plainOwner(raw.uname) ? raw.gname : raw.uname)} contains a NUL or control character`);
    }

    let mode = raw.mode & PERMISSION_BITS;
    let linkTarget: string | undefined;
    switch (type) {
      case 'symlink':
        linkTarget = symlinkTarget(raw.linkname, path, where);
        break;
      case 'hardlink': {
        linkTarget = archivePath(raw.linkname ?? '', where, 'hardlink target');
        const target = linkTarget === '' ? undefined : this.seen.get(linkTarget);
        if (target === undefined || target.type !== 'file') {
          throw unsafe(`${where}: hardlink to ${show(raw.linkname ?? '')}, which is not a regular file earlier in this package`);
        }
        mode = target.mode;
        target.linked = true;
        break;
      }
      case 'file':
        if ((mode & (SETUID | SETGID)) !== 0 && !(this.opts.allowSetid?.(path) ?? false)) {
          this.warn(`${where}: ${setidWord(mode)} bit removed (mode ${octal(mode)} → ${octal(mode & ~(SETUID | SETGID))}); keep it with "paths: {setid: [<path>]}" in the definition if the image needs it`);
          mode &= ~(SETUID | SETGID);
        }
        if ((mode & 0o002) !== 0) this.warn(`${where}: world-writable file (mode ${octal(mode)}), kept as packaged`);
        break;
      case 'dir':
        if ((mode & 0o002) !== 0 && (mode & STICKY) === 0) {
          this.warn(`${where}: world-writable directory without the sticky bit (mode ${octal(mode)}), kept as packaged`);
        }
        break;
    }

    if (before === undefined) this.pathChars += path.length;
    this.seen.set(path, { type, explicit: true, mode });
    for (let p = parentOf(path); p !== '' && !this.seen.has(p); p = parentOf(p)) {
      this.seen.set(p, { type: 'dir', explicit: false, mode: 0 });
      this.pathChars += p.length;
    }
    // A deep path may imply thousands of directories, each held (and hashed) here and made in the image.
    if (this.seen.size > MAX_PATHS || this.pathChars > MAX_PATH_CHARS) {
      throw unsafe(`${where}: the package names more than ${MAX_PATHS} paths or ${MAX_PATH_CHARS} characters of them (entries and the directories they imply)`);
    }

    const entry: FsEntry = {
      path,
      type,
      mode,
      uid: raw.uid,
      gid: raw.gid,
      uname: raw.uname,
      gname: raw.gname,
      size: type === 'file' ? size : 0,
      mtime: raw.mtime,
    };
    if (linkTarget !== undefined) entry.linkTarget = linkTarget;
    return entry;
  }

  private warn(message: string): void {
    this.opts.onWarning?.(message);
  }
}

function acceptedType(raw: RawEntry, where: Where): EntryType {
  switch (raw.type) {
    case 'file':
    case 'dir':
    case 'symlink':
    case 'hardlink':
      return raw.type;
    case 'char-device':
    case 'block-device':
      throw unsafe(`${where}: a device node (${raw.type}); images carry no device nodes (the runtime provides /dev)`);
    case 'fifo':
    case 'socket':
      throw unsafe(`${where}: a ${raw.type}; only files, directories and links are installed`);
    case 'contiguous':
      throw unsafe(`${where}: a contiguous-file entry (typeflag '7'), which dpkg refuses too`);
    case 'unknown':
      throw unsafe(`${where}: unsupported entry type ${raw.typeflag === undefined ? '' : show(raw.typeflag) + ' '}(only files, directories and links are installed)`);
  }
}

/**
 * An archive member name (or hardlink target) as a normalised path, '' for the root. dpkg-deb writes
 * './usr/bin/x'; one leading './' is dropped, and what remains must be relative and free of '..'.
 */
function archivePath(raw: string, where: Where, what: string): string {
  const simple = simplePath(raw);
  if (simple !== undefined) return simple;
  checkText(raw, where, what);
  if (raw === '') throw unsafe(`${where}: empty ${what}`);
  const rest = raw.startsWith('./') ? raw.slice(2) : raw;
  if (rest.startsWith('/')) throw unsafe(`${where}: absolute ${what} ${show(raw)}`);
  if (rest.split('/').includes('..')) throw unsafe(`${where}: ${what} ${show(raw)} has a '..' component`);
  const path = normalisePath(rest);
  if (path === undefined) return ''; // only '.', '', '/' components left: the root
  if (Buffer.byteLength(path) > PATH_MAX_BYTES) throw unsafe(`${where}: ${what} longer than ${PATH_MAX_BYTES} bytes`);
  for (const c of path.split('/')) {
    if (Buffer.byteLength(c) > NAME_MAX_BYTES) throw unsafe(`${where}: a ${what} component longer than ${NAME_MAX_BYTES} bytes`);
  }
  return path;
}

/**
 * archivePath's answer for the common case, in one pass: printable ASCII, an optional leading './' and
 * trailing '/', components neither empty nor '.' or '..', within the Linux limits (ASCII: a character
 * is a byte). `undefined` for anything else, which then takes the full rules above.
 */
function simplePath(raw: string): string | undefined {
  const start = raw.startsWith('./') ? 2 : 0;
  let end = raw.length;
  if (end > start && raw.charCodeAt(end - 1) === 0x2f) end--;
  if (end === start || end - start > PATH_MAX_BYTES) return undefined;
  let from = start;
  for (let i = start; i <= end; i++) {
    const c = i < end ? raw.charCodeAt(i) : 0x2f;
    if (c === 0x2f) {
      const len = i - from;
      if (len === 0 || len > NAME_MAX_BYTES) return undefined;
      if (raw.charCodeAt(from) === 0x2e && (len === 1 || (len === 2 && raw.charCodeAt(from + 1) === 0x2e))) return undefined;
      from = i + 1;
    } else if (c < 0x20 || c > 0x7e) {
      return undefined;
    }
  }
  return start === 0 && end === raw.length ? raw : raw.slice(start, end);
}

/** A symlink target, kept as stored; refused if relative and climbing above the root from the link's directory. */
function symlinkTarget(raw: string | undefined, path: string, where: Where): string {
  if (raw === undefined || raw === '') throw unsafe(`${where}: symlink with an empty target`);
  checkText(raw, where, 'symlink target');
  if (Buffer.byteLength(raw) > PATH_MAX_BYTES) throw unsafe(`${where}: symlink target longer than ${PATH_MAX_BYTES} bytes`);
  if (raw.startsWith('/')) return raw;
  const dir = parentOf(path);
  let depth = dir === '' ? 0 : dir.split('/').length;
  for (const c of raw.split('/')) {
    if (c === '' || c === '.') continue;
    if (c === '..') {
      depth--;
      if (depth < 0) throw unsafe(`${where}: symlink target ${show(raw)} climbs above the root`);
    } else {
      depth++;
    }
  }
  return raw;
}

/** An owner name without NUL, C0 controls or DEL (a ustar field cannot hold NUL; a pax record can). */
function plainOwner(s: string): boolean {
  // eslint-disable-next-line no-control-regex
  return !/[\u0000-\u001f\u007f]/.test(s);
}

/** NUL, C0 controls and DEL never appear in a real package's paths; U+FFFD marks bytes that were not UTF-8. */
function checkText(s: string, where: Where, what: string): void {
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u001f\u007f]/.test(s)) throw unsafe(`${where}: ${what} contains a NUL or control character`);
  if (s.includes('\ufffd')) throw unsafe(`${where}: ${what} is not valid UTF-8`);
}

function unsafe(message: string, hint?: string): DistillError {
  return new DistillError('UNSAFE_ENTRY', message, {
    hint: hint ?? 'the package contains an entry distill will not install; it is corrupt or hostile — check where it came from',
  });
}

function setidWord(mode: number): string {
  if ((mode & SETUID) !== 0 && (mode & SETGID) !== 0) return 'setuid and setgid';
  return (mode & SETUID) !== 0 ? 'setuid' : 'setgid';
}

function octal(mode: number): string {
  return '0' + mode.toString(8).padStart(3, '0');
}

/** A name for messages: quoted and escaped (it may hold anything), cut at 200 characters. */
function show(s: string): string {
  const q = JSON.stringify(s.length > 200 ? s.slice(0, 200) + '…' : s);
  return q;
}
