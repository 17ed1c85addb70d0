// Crafts .deb files for tests, including hostile ones no honest tool would write: any tar entry
// (device nodes, '..' paths, raw headers with lying sizes or typeflags, entries after the end-of-archive
// marker), any ar member list (wrong order, bad header fields, lying sizes) and any compression.
// Formats: deb(5) on ar(5) ("!<arch>\n", 60-byte member headers, data padded to an even length with
// '\n'), written by hand; tar members are POSIX ustar/pax written with tar-stream's pack, plus hand-made
// 512-byte header blocks for what pack refuses to write. gzip is node:zlib; xz and zstd are the binaries.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd';
export type PackHeader = Parameters<tar.Pack['entry']>[0];

/** One tar item: an entry written by tar-stream's pack, or bytes inserted verbatim. */
export type TarItem = { header: PackHeader; body?: string | Buffer } | { raw: Buffer };

const FIXED_MTIME = new Date('2025-06-01T12:00:00Z');

/** The bytes tar-stream's pack writes for one entry (header(s), data, padding), without the end marker. */
export async function packEntry(header: PackHeader, body?: string | Buffer): Promise<Buffer> {
  const p = tar.pack();
  const chunks: Buffer[] = [];
  p.on('data', (c: unknown) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  const h: PackHeader = { mtime: FIXED_MTIME, uname: 'root', gname: 'root', ...header };
  const isFile = (h.type ?? 'file') === 'file' || h.type === 'contiguous-file';
  if (isFile) p.entry(h, body ?? '');
  else p.entry(h);
  p.finalize();
  await done;
  const all = Buffer.concat(chunks);
  return all.subarray(0, all.length - 1024);
}

export interface RawHeaderFields {
  /** A Buffer writes bytes that are not UTF-8. */
  name: string | Buffer;
  /** One character: '0' file, '1' hardlink, '2' symlink, '5' dir, 'L', 'K', 'x', 'g', 'S', … */
  typeflag: string;
  size?: number;
  mode?: number;
  uid?: number;
  gid?: number;
  mtime?: number;
  linkname?: string;
  uname?: string;
  gname?: string;
  prefix?: string;
}

/** One 512-byte ustar header block with a correct checksum, whatever its fields say. */
export function rawHeader(f: RawHeaderFields): Buffer {
  const b = Buffer.alloc(512);
  const str = (s: string | Buffer, off: number, len: number) => {
    const bytes = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
    if (bytes.length > len) throw new Error(`craft-deb: ${JSON.stringify(s)} does not fit ${len} bytes`);
    bytes.copy(b, off);
  };
  const oct = (n: number, off: number, len: number) => str(n.toString(8).padStart(len - 1, '0'), off, len - 1);
  str(f.name, 0, 100);
  oct(f.mode ?? 0o644, 100, 8);
  oct(f.uid ?? 0, 108, 8);
  oct(f.gid ?? 0, 116, 8);
  oct(f.size ?? 0, 124, 12);
  oct(f.mtime ?? Math.floor(FIXED_MTIME.getTime() / 1000), 136, 12);
  b.write(f.typeflag, 156, 'latin1');
  if (f.linkname) str(f.linkname, 157, 100);
  b.write('ustar\0', 257, 'latin1');
  b.write('00', 263, 'latin1');
  str(f.uname ?? 'root', 265, 32);
  str(f.gname ?? 'root', 297, 32);
  oct(0, 329, 8);
  oct(0, 337, 8);
  if (f.prefix) str(f.prefix, 345, 155);
  b.fill(0x20, 148, 156);
  let sum = 0;
  for (const x of b) sum += x;
  b.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 'latin1');
  return b;
}

/** A raw header followed by its data, padded to a block. */
export function rawEntry(f: RawHeaderFields, body: string | Buffer = Buffer.alloc(0)): Buffer {
  const data = typeof body === 'string' ? Buffer.from(body) : body;
  return Buffer.concat([rawHeader({ size: data.length, ...f }), data, Buffer.alloc((512 - (data.length % 512)) % 512)]);
}

/** A GNU long-name ('L') or long-link ('K') record, to be followed by the entry it names. */
export function gnuLong(kind: 'L' | 'K', value: string): Buffer {
  return rawEntry({ name: '././@LongLink', typeflag: kind }, Buffer.from(value + '\0'));
}

/** The two zero blocks that end a tar archive. */
export const END_OF_ARCHIVE = Buffer.alloc(1024);

export async function craftTar(items: TarItem[], opts: { endMarker?: boolean } = {}): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (const item of items) parts.push('raw' in item ? item.raw : await packEntry(item.header, item.body));
  if (opts.endMarker ?? true) parts.push(END_OF_ARCHIVE);
  return Buffer.concat(parts);
}

export function compress(data: Buffer, kind: Compression): Buffer {
  switch (kind) {
    case 'none':
      return data;
    case 'gzip':
      return gzipSync(data);
    case 'xz':
    case 'zstd': {
      const r = spawnSync(kind, ['-c', '-q'], { input: data, maxBuffer: 1 << 30 });
      if (r.status !== 0) throw new Error(`craft-deb: ${kind} failed: ${String(r.stderr)}`);
      return r.stdout;
    }
  }
}

export const SUFFIX: Record<Compression, string> = { none: '', gzip: '.gz', xz: '.xz', zstd: '.zst' };

export interface ArMember {
  name: string;
  data: Buffer;
  /** Raw header field text replacing the honest one (padded to the field width unless longer). */
  fields?: Partial<Record<'name' | 'date' | 'uid' | 'gid' | 'mode' | 'size' | 'fmag', string>>;
  /** The padding byte after odd-sized data; default '\n'. null: none. */
  pad?: string | null;
}

/** An ar(5) archive, written by hand as dpkg-deb does (no '/' after names, fixed owner and date). */
export function arArchive(members: ArMember[], magic = '!<arch>\n'): Buffer {
  const parts: Buffer[] = [Buffer.from(magic, 'latin1')];
  for (const m of members) {
    const f = m.fields ?? {};
    const field = (v: string, width: number) => (v.length >= width ? v : v.padEnd(width, ' '));
    const header =
      field(f.name ?? m.name, 16) +
      field(f.date ?? '0', 12) +
      field(f.uid ?? '0', 6) +
      field(f.gid ?? '0', 6) +
      field(f.mode ?? '100644', 8) +
      field(f.size ?? String(m.data.length), 10) +
      (f.fmag ?? '`\n');
    parts.push(Buffer.from(header, 'latin1'), m.data);
    if (m.data.length % 2 === 1 && m.pad !== null) parts.push(Buffer.from(m.pad ?? '\n', 'latin1'));
  }
  return Buffer.concat(parts);
}

export const DEFAULT_CONTROL = 'Package: crafted\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: Test <test@example.invalid>\nDescription: a crafted package\n';

export interface CraftDebOptions {
  /** data.tar items; ignored when dataTar is given. */
  entries?: TarItem[];
  /** The uncompressed data.tar exactly. */
  dataTar?: Buffer;
  /** Replace the compressed data member's bytes (e.g. with corrupt ones). */
  dataMember?: Buffer;
  dataCompression?: Compression;
  /** Member name override, e.g. 'data.tar.bz2'. */
  dataName?: string;
  control?: string;
  /** More control.tar files (md5sums, conffiles, postinst, …). */
  controlFiles?: Record<string, string>;
  controlCompression?: Compression;
  controlName?: string;
  debianBinary?: string;
  /** Rewrite the member list before the ar archive is written (reorder, drop, add, corrupt fields). */
  members?: (members: ArMember[]) => ArMember[];
}

export async function craftDeb(o: CraftDebOptions = {}): Promise<Buffer> {
  const cc = o.controlCompression ?? 'gzip';
  const dc = o.dataCompression ?? 'gzip';
  const controlItems: TarItem[] = [{ header: { name: './', type: 'directory', mode: 0o755 } }];
  controlItems.push({ header: { name: './control', mode: 0o644 }, body: o.control ?? DEFAULT_CONTROL });
  for (const [name, text] of Object.entries(o.controlFiles ?? {})) {
    controlItems.push({ header: { name: `./${name}`, mode: /^(pre|post)(inst|rm)$/.test(name) ? 0o755 : 0o644 }, body: text });
  }
  const controlTar = await craftTar(controlItems);
  const dataTar = o.dataTar ?? (await craftTar(o.entries ?? []));
  let members: ArMember[] = [
    { name: 'debian-binary', data: Buffer.from(o.debianBinary ?? '2.0\n', 'latin1') },
    { name: o.controlName ?? `control.tar${SUFFIX[cc]}`, data: compress(controlTar, cc) },
    { name: o.dataName ?? `data.tar${SUFFIX[dc]}`, data: o.dataMember ?? compress(dataTar, dc) },
  ];
  if (o.members) members = o.members(members);
  return arArchive(members);
}

/** Shorthands for data.tar items. */
export const dir = (name: string, mode = 0o755): TarItem => ({ header: { name, type: 'directory', mode } });
export const file = (name: string, body: string | Buffer, mode = 0o644, extra: Partial<PackHeader> = {}): TarItem => ({
  header: { name, mode, ...extra },
  body,
});
export const symlink = (name: string, linkname: string): TarItem => ({ header: { name, type: 'symlink', linkname, mode: 0o777 } });
export const hardlink = (name: string, linkname: string, mode = 0o644): TarItem => ({ header: { name, type: 'link', linkname, mode } });

/** An honest package, as dpkg-deb would build it: the shape the build's generators read. */
export interface CraftPackage {
  name: string;
  version?: string;
  architecture?: string;
  /** Paths in data.tar, e.g. 'usr/bin/hello'; default mode 0755 under …/bin/, else 0644. */
  files?: Record<string, string | Buffer | { content: string | Buffer; mode?: number }>;
  /** path → target */
  symlinks?: Record<string, string>;
  /** path → target (a path in the same package) */
  hardlinks?: Record<string, string>;
  /** Directories with a mode of their own (parents of other paths are made 0755 anyway). */
  directories?: Record<string, number>;
  /** More control fields in order (Replaces, Depends, Multi-Arch, …). */
  fields?: Record<string, string>;
  /** Write DEBIAN/md5sums for the files (default true), as dpkg-deb's callers do. */
  md5sums?: boolean;
  dataCompression?: Compression;
}

/** The control file craftPackage writes for a package. */
export function packageControl(p: CraftPackage): string {
  const extra = Object.entries(p.fields ?? {}).map(([k, v]) => `${k}: ${v}\n`).join('');
  return `Package: ${p.name}\nVersion: ${p.version ?? '1.0-1'}\nArchitecture: ${p.architecture ?? 'amd64'}\nMaintainer: Test <test@example.invalid>\n${extra}Description: ${p.name} (crafted)\n`;
}

/**
 * A .deb of an honest package: './', then every directory (parents 0755), file and symlink in path
 * order, then hardlinks (after their targets), all root-owned, and md5sums for the files — what the
 * build stages from a real Debian package, made in a few lines.
 */
export async function craftPackage(p: CraftPackage): Promise<Buffer> {
  const files = Object.entries(p.files ?? {}).map(([path, spec]) => {
    const o = typeof spec === 'string' || Buffer.isBuffer(spec) ? { content: spec } : spec;
    const body = typeof o.content === 'string' ? Buffer.from(o.content) : o.content;
    return { path, body, mode: o.mode ?? (/(^|\/)s?bin\//.test(path) ? 0o755 : 0o644) };
  });
  const links = [...Object.entries(p.symlinks ?? {}).map(([path, target]) => ({ path, target, kind: 'symlink' as const })), ...Object.entries(p.hardlinks ?? {}).map(([path, target]) => ({ path, target, kind: 'hardlink' as const }))];
  const dirs = new Map<string, number>();
  for (const path of [...files.map((f) => f.path), ...links.map((l) => l.path), ...Object.keys(p.directories ?? {})]) {
    const parts = path.split('/');
    for (let i = 1; i < parts.length; i++) dirs.set(parts.slice(0, i).join('/'), 0o755);
  }
  for (const [path, mode] of Object.entries(p.directories ?? {})) dirs.set(path, mode);
  const items: { path: string; item: TarItem }[] = [
    ...[...dirs].map(([d, mode]) => ({ path: d, item: dir(`./${d}/`, mode) })),
    ...files.map((f) => ({ path: f.path, item: file(`./${f.path}`, f.body, f.mode) })),
    ...links.filter((l) => l.kind === 'symlink').map((l) => ({ path: l.path, item: symlink(`./${l.path}`, l.target) })),
  ].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  // Hardlinks last: a tar names a link's target before the link, as dpkg-deb writes them.
  items.push(...links.filter((l) => l.kind === 'hardlink').map((l) => ({ path: l.path, item: hardlink(`./${l.path}`, `./${l.target}`) })));
  const md5sums = files
    .sort((a, b) => (a.path < b.path ? -1 : 1))
    .map((f) => `${createHash('md5').update(f.body).digest('hex')}  ${f.path}\n`)
    .join('');
  return craftDeb({
    control: packageControl(p),
    entries: [dir('./'), ...items.map((i) => i.item)],
    ...(p.md5sums !== false && md5sums !== '' ? { controlFiles: { md5sums } } : {}),
    ...(p.dataCompression ? { dataCompression: p.dataCompression } : {}),
  });
}
