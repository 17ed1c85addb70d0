// A small synthetic Debian archive for tests, built from scratch: its own OpenPGP key (gpg in a
// throw-away GNUPGHOME), its own tiny but real .debs (ar + control.tar + data.tar, as dpkg-deb writes
// them), and a mirror layout like Debian's (pool/, dists/<suite>/InRelease, Release, Release.gpg,
// <component>/binary-<arch>/Packages.{xz,gz}). The bytes of a .deb are deterministic (fixed mtimes,
// root owner, sorted members), so test runs are reproducible; signatures are not (gpg stamps the time).
//
// gpg needs gpg-agent for every secret-key operation; each function here that runs gpg kills the agent
// of the home it used before returning (`gpgconf --kill all`), so no process outlives a call.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { tempDir } from './tmp.js';

export interface SynthPackage {
  name: string;
  version: string;
  /** 'amd64' | 'arm64' | 'all' | … */
  architecture: string;
  depends?: string;
  preDepends?: string;
  recommends?: string;
  suggests?: string;
  provides?: string;
  replaces?: string;
  breaks?: string;
  conflicts?: string;
  multiArch?: 'same' | 'foreign' | 'allowed';
  essential?: boolean;
  /** Default 'optional'. */
  priority?: string;
  /** Default 'misc'. */
  section?: string;
  /** Source package, "src" or "src (version)"; the pool folder is named after it. Default: the package name. */
  source?: string;
  /** Default "Synthetic Maintainers <synthetic@example.invalid>". */
  maintainer?: string;
  /** The short description (first line). Default "<name> (synthetic test package)". */
  description?: string;
  /** The component the package lives in; default: the suite's first component. */
  component?: string;
  /** Paths inside the package's data.tar, e.g. 'usr/bin/hello'. Default mode 0755 under …/bin/ or …/sbin/, else 0644. */
  files?: Record<string, string | Buffer | { content: string | Buffer; mode?: number }>;
  /** path -> target */
  symlinks?: Record<string, string>;
  /** Extra members of control.tar (postinst, conffiles, triggers, …); maintainer scripts default to mode 0755. */
  controlFiles?: Record<string, string | { content: string; mode?: number }>;
  /** For data.tar and control.tar; default xz. */
  compression?: 'xz' | 'gzip' | 'none' | 'zstd';
  /** In KiB; default computed as dpkg-gencontrol does (file sizes rounded up to KiB, 1 per directory/symlink). */
  installedSize?: number;
  /** More control fields (Homepage, Built-Using, Protected, Tag, X-Anything…), placed where Debian puts them. */
  extraFields?: Record<string, string>;
}

export interface SynthSuite {
  /** Folder under root, e.g. 'debian' or 'debian-security'. */
  archiveName: string;
  /** e.g. 'trixie'; also the folder under dists/. */
  suite: string;
  /** Default: suite. */
  codename?: string;
  /** Default ['main']. */
  components?: string[];
  /** e.g. ['amd64', 'arm64']; 'all' is added to the Release's Architectures as Debian does. */
  architectures: string[];
  packages: SynthPackage[];
  /** Default 2025-06-01T12:00:00Z (fixed, so the Release is reproducible). */
  date?: Date;
  validUntil?: Date;
  /**
   * Write 'No-Support-for-Architecture-all: Packages' and put arch:all packages into every
   * binary-<arch>/Packages as well as binary-all/Packages, as Debian does. Default true; when false,
   * arch:all packages are only in binary-all/Packages.
   */
  noSupportForArchAll?: boolean;
  /** Which Packages files to write; default ['xz']. The uncompressed Packages is listed in the Release in any case, as Debian does. */
  indexCompression?: ('xz' | 'gz' | 'none')[];
  /** Release fields; defaults derived from archiveName: 'debian-security' → Origin Debian, Label Debian-Security. */
  origin?: string;
  label?: string;
  /**
   * 'debian' (default) or 'debian-security', whose Release differs as the real one does: no MD5Sum
   * section, Architectures without 'all' and no No-Support-for-Architecture-all (arch:all packages are
   * still in every binary-<arch>/Packages and in binary-all/Packages), Components 'updates/main' while
   * the index paths stay 'main/…'.
   */
  style?: 'debian' | 'debian-security';
  /** Release 'Version:' field, omitted by default. */
  version?: string;
  description?: string;
}

export interface SynthKey {
  gnupgHome: string;
  fingerprint: string;
  /** Binary export (`gpg --export`), usable by gpgv --keyring and apt's signed-by. */
  keyringPath: string;
  /** ASCII-armored export, ends in .asc. */
  armoredKeyringPath: string;
}

export interface SynthArchive {
  /** The folder holding one folder per archive name. */
  root: string;
  /** file:// URL of that archive root (no trailing slash). */
  url(archiveName: string): string;
  key: SynthKey;
  /** The .deb of package pkg for arch; `version` is needed only when several versions are in the archive. */
  debPath(archiveName: string, pkg: string, arch: string, version?: string): string;
}

// ---------------------------------------------------------------------------------------------------
// processes

interface RunResult {
  stdout: Buffer;
  stderr: string;
  code: number;
}

function runRaw(
  cmd: string,
  args: string[],
  opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<RunResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: opts.env ?? { ...process.env, LC_ALL: 'C' },
      cwd: opts.cwd,
    });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (s: string) => {
      if (err.length < 65536) err += s;
    });
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ stdout: Buffer.concat(out), stderr: err, code: code ?? -1 }));
    child.stdin.on('error', () => {
      /* the child may exit without reading all input; its exit code tells */
    });
    child.stdin.end(opts.input ?? '');
  });
}

async function run(
  cmd: string,
  args: string[],
  opts: { input?: Buffer | string; env?: NodeJS.ProcessEnv; cwd?: string } = {},
): Promise<Buffer> {
  const r = await runRaw(cmd, args, opts);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

// ---------------------------------------------------------------------------------------------------
// hashing, compression

function hashHex(algo: 'md5' | 'sha256', data: Uint8Array | string): string {
  return createHash(algo).update(data).digest('hex');
}

async function compress(data: Buffer, kind: 'xz' | 'gzip' | 'zstd' | 'none'): Promise<Buffer> {
  switch (kind) {
    case 'none':
      return data;
    case 'gzip':
      // node's gzip header has mtime 0 and no name: deterministic.
      return gzipSync(data, { level: 9 });
    case 'xz':
      // -T1: the single-threaded encoder's output depends only on the input and the level.
      return run('xz', ['--format=xz', '--check=crc64', '-6', '-T1', '-c', '-q'], { input: data });
    case 'zstd':
      return run('zstd', ['-q', '-c', '-19', '--no-progress'], { input: data });
  }
}

const EXT = { xz: '.xz', gzip: '.gz', zstd: '.zst', none: '' } as const;

// ---------------------------------------------------------------------------------------------------
// .deb

/** Every member of every .deb carries this mtime (2025-01-01T00:00:00Z), as with SOURCE_DATE_EPOCH. */
const DEB_MTIME = 1735689600;

interface TarItem {
  /** Without the leading './'; '' is the root; directories end in '/'. */
  path: string;
  type: 'file' | 'directory' | 'symlink';
  mode: number;
  content?: Buffer;
  target?: string;
}

async function makeTar(items: TarItem[]): Promise<Buffer> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const collected = (async () => {
    for await (const c of pack) chunks.push(c as Buffer);
  })();
  for (const it of items) {
    const header: Partial<tar.Header> & { name: string } = {
      name: `./${it.path}`,
      mode: it.mode,
      uid: 0,
      gid: 0,
      uname: 'root',
      gname: 'root',
      mtime: new Date(DEB_MTIME * 1000),
      type: it.type,
    };
    if (it.type === 'symlink') header.linkname = it.target ?? '';
    await new Promise<void>((res, rej) => {
      const done = (e?: Error | null): void => (e ? rej(e) : res());
      if (it.type === 'file') pack.entry(header, it.content ?? Buffer.alloc(0), done);
      else pack.entry(header, done);
    });
  }
  pack.finalize();
  await collected;
  return Buffer.concat(chunks);
}

function arMember(name: string, data: Buffer): Buffer {
  const field = (s: string, w: number): string => {
    if (s.length > w) throw new Error(`ar field too long: ${s}`);
    return s.padEnd(w, ' ');
  };
  const header =
    field(name, 16) +
    field(String(DEB_MTIME), 12) +
    field('0', 6) +
    field('0', 6) +
    field('100644', 8) +
    field(String(data.length), 10) +
    '`\n';
  const parts = [Buffer.from(header, 'latin1'), data];
  if (data.length % 2 === 1) parts.push(Buffer.from('\n'));
  return Buffer.concat(parts);
}

/** Normalises a data path: no leading './' or '/', no trailing '/'. */
function cleanPath(p: string): string {
  const c = p.replace(/^\.?\/+/, '').replace(/\/+$/, '');
  if (!c || c.split('/').some((s) => s === '' || s === '.' || s === '..')) throw new Error(`bad path in package: ${p}`);
  return c;
}

function defaultFileMode(path: string): number {
  return /(^|\/)s?bin\//.test(path) ? 0o755 : 0o644;
}

// dpkg's field order for a binary package's control file (Dpkg::Control::FieldsCore, CTRL_PKG_DEB).
const DEB_CONTROL_ORDER = [
  'Package', 'Package-Type', 'Source', 'Version', 'Kernel-Version', 'Built-For-Profiles', 'Auto-Built-Package',
  'Architecture', 'Subarchitecture', 'Installer-Menu-Item', 'Build-Essential', 'Essential', 'Protected', 'Origin',
  'Bugs', 'Maintainer', 'Installed-Size', 'Pre-Depends', 'Depends', 'Recommends', 'Suggests', 'Enhances',
  'Conflicts', 'Breaks', 'Replaces', 'Provides', 'Built-Using', 'Static-Built-Using', 'Section', 'Priority',
  'Multi-Arch', 'Homepage', 'Description', 'Tag', 'Task',
];

// The order of fields in Debian's Packages indices (as written by dak; measured on trixie's).
// '*' is where fields not named here go.
const PACKAGES_ORDER = [
  'Package', 'Source', 'Version', 'Essential', 'Protected', 'Build-Essential', 'Installed-Size', 'Maintainer',
  'Architecture', 'Replaces', 'Provides', 'Depends', 'Pre-Depends', 'Recommends', 'Suggests', 'Enhances',
  'Conflicts', 'Breaks', 'Description', 'Multi-Arch', 'Homepage', 'Built-Using', 'Static-Built-Using',
  'Description-md5', '*', 'Tag', 'Section', 'Priority', 'Filename', 'Size', 'MD5sum', 'SHA256',
];

type Fields = [string, string][];

function orderFields(fields: Fields, order: string[]): Fields {
  const lower = order.map((f) => f.toLowerCase());
  const star = lower.indexOf('*');
  const rank = (name: string): number => {
    const i = lower.indexOf(name.toLowerCase());
    return i >= 0 ? i : star >= 0 ? star : order.length;
  };
  return fields
    .map((f, i) => ({ f, i, r: rank(f[0]) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.f);
}

function formatParagraph(fields: Fields): string {
  return fields.map(([k, v]) => `${k}: ${v}\n`).join('');
}

function sourceName(pkg: SynthPackage): string {
  return (pkg.source ?? pkg.name).trim().split(/\s+/)[0]!;
}

function versionNoEpoch(v: string): string {
  return v.replace(/^\d+:/, '');
}

function poolPrefix(source: string): string {
  return source.startsWith('lib') && source.length > 3 ? source.slice(0, 4) : source.slice(0, 1);
}

function longDescription(pkg: SynthPackage): string {
  const short = pkg.description ?? `${pkg.name} (synthetic test package)`;
  return `${short}\n This package was generated by distill's test helpers; it is not a real Debian package.`;
}

interface BuiltDeb {
  bytes: Buffer;
  /** The control file's fields, in its order. */
  control: Fields;
}

async function buildDebBytes(pkg: SynthPackage): Promise<BuiltDeb> {
  const compression = pkg.compression ?? 'xz';
  // data.tar: every parent directory, then sorted by path as dpkg-deb does with --root-owner-group.
  const entries = new Map<string, TarItem>();
  const addParents = (p: string): void => {
    const parts = p.split('/');
    for (let i = 1; i < parts.length; i++) {
      const d = `${parts.slice(0, i).join('/')}/`;
      if (!entries.has(d)) entries.set(d, { path: d, type: 'directory', mode: 0o755 });
    }
  };
  entries.set('', { path: '', type: 'directory', mode: 0o755 });
  for (const [raw, spec] of Object.entries(pkg.files ?? {})) {
    const p = cleanPath(raw);
    addParents(p);
    const content = typeof spec === 'string' || Buffer.isBuffer(spec) ? spec : spec.content;
    const mode = typeof spec === 'string' || Buffer.isBuffer(spec) ? defaultFileMode(p) : (spec.mode ?? defaultFileMode(p));
    entries.set(p, { path: p, type: 'file', mode, content: typeof content === 'string' ? Buffer.from(content, 'utf8') : content });
  }
  for (const [raw, target] of Object.entries(pkg.symlinks ?? {})) {
    const p = cleanPath(raw);
    if (entries.has(p)) throw new Error(`${pkg.name}: ${p} is both a file and a symlink`);
    addParents(p);
    entries.set(p, { path: p, type: 'symlink', mode: 0o777, target });
  }
  const dataItems = [...entries.values()].sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  let installedSize = 0;
  for (const it of dataItems) {
    if (it.path === '') continue;
    installedSize += it.type === 'file' ? Math.ceil((it.content?.length ?? 0) / 1024) : 1;
  }

  const fields: Fields = [['Package', pkg.name]];
  if (pkg.source !== undefined && pkg.source.trim() !== pkg.name) fields.push(['Source', pkg.source.trim()]);
  fields.push(['Version', pkg.version], ['Architecture', pkg.architecture]);
  if (pkg.essential) fields.push(['Essential', 'yes']);
  fields.push(
    ['Maintainer', pkg.maintainer ?? 'Synthetic Maintainers <synthetic@example.invalid>'],
    ['Installed-Size', String(pkg.installedSize ?? installedSize)],
  );
  const rel: [string, string | undefined][] = [
    ['Pre-Depends', pkg.preDepends],
    ['Depends', pkg.depends],
    ['Recommends', pkg.recommends],
    ['Suggests', pkg.suggests],
    ['Conflicts', pkg.conflicts],
    ['Breaks', pkg.breaks],
    ['Replaces', pkg.replaces],
    ['Provides', pkg.provides],
  ];
  for (const [k, v] of rel) if (v !== undefined && v.trim() !== '') fields.push([k, v.trim()]);
  fields.push(['Section', pkg.section ?? 'misc'], ['Priority', pkg.priority ?? 'optional']);
  if (pkg.multiArch) fields.push(['Multi-Arch', pkg.multiArch]);
  fields.push(['Description', longDescription(pkg)]);
  for (const [k, v] of Object.entries(pkg.extraFields ?? {})) {
    if (fields.some(([f]) => f.toLowerCase() === k.toLowerCase())) throw new Error(`${pkg.name}: field ${k} given twice`);
    fields.push([k, v]);
  }
  // Known fields go to dpkg's place; others keep their order after them, as dpkg does.
  const control = orderFields(fields, [...DEB_CONTROL_ORDER, '*']);

  const files = dataItems.filter((it) => it.type === 'file');
  const controlItems: TarItem[] = [
    { path: '', type: 'directory', mode: 0o755 },
    { path: 'control', type: 'file', mode: 0o644, content: Buffer.from(formatParagraph(control), 'utf8') },
  ];
  if (files.length > 0) {
    const md5sums = files.map((f) => `${hashHex('md5', f.content ?? Buffer.alloc(0))}  ${f.path}\n`).join('');
    controlItems.push({ path: 'md5sums', type: 'file', mode: 0o644, content: Buffer.from(md5sums, 'utf8') });
  }
  for (const [raw, spec] of Object.entries(pkg.controlFiles ?? {})) {
    const p = cleanPath(raw);
    if (p === 'control' || p === 'md5sums' || p.includes('/')) throw new Error(`${pkg.name}: bad control member ${raw}`);
    const script = ['preinst', 'postinst', 'prerm', 'postrm', 'config'].includes(p);
    const content = typeof spec === 'string' ? spec : spec.content;
    const mode = (typeof spec === 'string' ? undefined : spec.mode) ?? (script ? 0o755 : 0o644);
    controlItems.push({ path: p, type: 'file', mode, content: Buffer.from(content, 'utf8') });
  }
  controlItems.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

  const [controlTar, dataTar] = await Promise.all([
    makeTar(controlItems).then((t) => compress(t, compression)),
    makeTar(dataItems).then((t) => compress(t, compression)),
  ]);
  const bytes = Buffer.concat([
    Buffer.from('!<arch>\n', 'latin1'),
    arMember('debian-binary', Buffer.from('2.0\n')),
    arMember(`control.tar${EXT[compression]}`, controlTar),
    arMember(`data.tar${EXT[compression]}`, dataTar),
  ]);
  return { bytes, control };
}

/**
 * Writes a real .deb: an ar archive with debian-binary "2.0\n", control.tar.<c> (control, md5sums and
 * any controlFiles) and data.tar.<c>, with fixed mtimes and root owner, so the same package gives the
 * same bytes on every run (with the same xz/zstd).
 */
export async function buildDeb(pkg: SynthPackage, outFile: string): Promise<{ size: number; sha256: string }> {
  const { bytes } = await buildDebBytes(pkg);
  await mkdir(dirname(outFile), { recursive: true });
  await writeFile(outFile, bytes);
  return { size: bytes.length, sha256: hashHex('sha256', bytes) };
}

// ---------------------------------------------------------------------------------------------------
// keys

function gpgBase(home: string): string[] {
  return ['--homedir', home, '--batch', '--no-tty', '--pinentry-mode', 'loopback', '--passphrase', ''];
}

async function killAgent(home: string): Promise<void> {
  await runRaw('gpgconf', ['--homedir', home, '--kill', 'all']).catch(() => undefined);
}

/** A GNUPGHOME whose agent socket path fits in a sockaddr_un (108 bytes); else a short temp folder. */
async function gnupgHomeIn(preferred: string): Promise<string> {
  if (resolve(preferred, 'S.gpg-agent.browser').length < 100) {
    await mkdir(preferred, { recursive: true, mode: 0o700 });
    return resolve(preferred);
  }
  return tempDir('synth-gpg-');
}

async function fingerprintOf(home: string): Promise<string> {
  const out = (await run('gpg', [...gpgBase(home), '--with-colons', '--list-secret-keys'])).toString('utf8');
  const lines = out.split('\n');
  const sec = lines.findIndex((l) => l.startsWith('sec:'));
  const fpr = lines.slice(sec + 1).find((l) => l.startsWith('fpr:'));
  const fp = fpr?.split(':')[9];
  if (sec < 0 || !fp) throw new Error(`no secret key in ${home}`);
  return fp;
}

/**
 * Makes an OpenPGP signing key in `<dir>/gnupg` and exports its public part to `<dir>/key.gpg` and
 * `<dir>/key.asc`. `expires` is gpg's expiry ('never', '1y', '2020-01-01', …; default never);
 * `created` back-dates the key (gpg --faked-system-time), so an already-expired key can be made.
 */
export async function makeKey(
  dir: string,
  opts: { algo?: 'ed25519' | 'rsa3072'; name?: string; expires?: string; created?: Date } = {},
): Promise<SynthKey> {
  await mkdir(dir, { recursive: true });
  const home = await gnupgHomeIn(join(dir, 'gnupg'));
  const name = opts.name ?? 'Synthetic Archive Signing Key <archive@example.invalid>';
  try {
    const faked = opts.created ? ['--faked-system-time', `${Math.floor(opts.created.getTime() / 1000)}!`] : [];
    await run('gpg', [
      ...gpgBase(home),
      ...faked,
      '--quick-gen-key',
      name,
      opts.algo ?? 'ed25519',
      'sign',
      opts.expires ?? 'never',
    ]);
    const fingerprint = await fingerprintOf(home);
    const keyringPath = resolve(dir, 'key.gpg');
    const armoredKeyringPath = resolve(dir, 'key.asc');
    await writeFile(keyringPath, await run('gpg', [...gpgBase(home), '--export', fingerprint]));
    await writeFile(armoredKeyringPath, await run('gpg', [...gpgBase(home), '--armor', '--export', fingerprint]));
    return { gnupgHome: home, fingerprint, keyringPath, armoredKeyringPath };
  } finally {
    await killAgent(home);
  }
}

/** Signs `release` as InRelease (clearsigned) and Release.gpg (detached, armored) with every signer. */
async function signRelease(releasePath: string, signers: SynthKey[], scratch: string, signedAt?: Date): Promise<void> {
  const homes = [...new Set(signers.map((s) => s.gnupgHome))];
  let home = homes[0]!;
  let combined: string | undefined;
  const used = new Set<string>(homes);
  try {
    if (homes.length > 1) {
      // The signers' secret keys live in different homes: gather them in one, so a single gpg run
      // makes one InRelease with several signatures, as Debian's has.
      combined = await gnupgHomeIn(join(scratch, `gnupg-${Date.now()}-${process.pid}`));
      used.add(combined);
      for (const h of homes) {
        const secret = await run('gpg', [...gpgBase(h), '--export-secret-keys']);
        await run('gpg', [...gpgBase(combined), '--import'], { input: secret });
      }
      home = combined;
    }
    const users = signers.flatMap((s) => ['--local-user', `${s.fingerprint}!`]);
    const dir = dirname(releasePath);
    const faked = signedAt ? ['--faked-system-time', `${Math.floor(signedAt.getTime() / 1000)}!`] : [];
    const common = [...gpgBase(home), ...faked, '--yes', '--digest-algo', 'SHA256', ...users];
    await run('gpg', [...common, '--clearsign', '--output', join(dir, 'InRelease'), releasePath]);
    await run('gpg', [...common, '--armor', '--detach-sign', '--output', join(dir, 'Release.gpg'), releasePath]);
  } finally {
    for (const h of used) await killAgent(h);
    if (combined) await rm(combined, { recursive: true, force: true });
  }
}

// ---------------------------------------------------------------------------------------------------
// archive

/** RFC 2822 in UTC, as Debian writes it: "Sat, 12 Sep 2026 07:55:41 UTC". */
export function releaseDate(d: Date): string {
  return d.toUTCString().replace(/GMT$/, 'UTC');
}

function defaultLabel(archiveName: string): string {
  return archiveName
    .split('-')
    .map((w) => (w ? w[0]!.toUpperCase() + w.slice(1) : w))
    .join('-');
}

interface PoolEntry {
  archiveName: string;
  pkg: SynthPackage;
  filename: string; // relative to the archive root
  bytes: Buffer;
  control: Fields;
  md5: string;
  sha256: string;
}

/**
 * Writes `<dir>/<archiveName>/{pool,dists}` for every suite and signs each suite's Release with the
 * key (made in `<dir>/_key` unless given) or with all `signers` (one InRelease with several
 * signatures). With `unsigned`, no InRelease or Release.gpg is written (a key is still returned,
 * unused). `signedAt` back-dates the signatures (gpg --faked-system-time), e.g. to sign with a key
 * that has expired since (made with makeKey's `created` and `expires`).
 */
export async function makeArchive(
  dir: string,
  suites: SynthSuite[],
  opts: { key?: SynthKey; signers?: SynthKey[]; unsigned?: boolean; signedAt?: Date } = {},
): Promise<SynthArchive> {
  const root = resolve(dir);
  await mkdir(root, { recursive: true });
  const key = opts.key ?? opts.signers?.[0] ?? (await makeKey(join(root, '_key')));
  const signers = opts.signers && opts.signers.length > 0 ? opts.signers : [key];

  // Build every .deb once; the same package in two suites of one archive shares its pool file.
  const pool = new Map<string, PoolEntry>(); // `${archiveName}/${filename}`
  const byPkg = new Map<string, PoolEntry[]>(); // `${archiveName}\0${name}\0${arch}`
  const suiteEntries: PoolEntry[][] = [];
  for (const s of suites) {
    const components = s.components ?? ['main'];
    const list: PoolEntry[] = [];
    for (const pkg of s.packages) {
      const component = pkg.component ?? components[0]!;
      if (!components.includes(component)) throw new Error(`${pkg.name}: component ${component} not in suite ${s.suite}`);
      if (pkg.architecture !== 'all' && !s.architectures.includes(pkg.architecture))
        throw new Error(`${pkg.name}: architecture ${pkg.architecture} not in suite ${s.suite}`);
      const src = sourceName(pkg);
      const filename = `pool/${component}/${poolPrefix(src)}/${src}/${pkg.name}_${versionNoEpoch(pkg.version)}_${pkg.architecture}.deb`;
      const id = `${s.archiveName}/${filename}`;
      const built = await buildDebBytes(pkg);
      const prior = pool.get(id);
      if (prior) {
        if (!prior.bytes.equals(built.bytes)) throw new Error(`${id}: two different packages would share this pool file`);
        list.push(prior);
        continue;
      }
      const entry: PoolEntry = {
        archiveName: s.archiveName,
        pkg,
        filename,
        bytes: built.bytes,
        control: built.control,
        md5: hashHex('md5', built.bytes),
        sha256: hashHex('sha256', built.bytes),
      };
      pool.set(id, entry);
      const k = `${s.archiveName}\0${pkg.name}\0${pkg.architecture}`;
      byPkg.set(k, [...(byPkg.get(k) ?? []), entry]);
      const out = join(root, s.archiveName, filename);
      await mkdir(dirname(out), { recursive: true });
      await writeFile(out, built.bytes);
      list.push(entry);
    }
    suiteEntries.push(list);
  }

  for (const [i, s] of suites.entries()) {
    const entries = suiteEntries[i]!;
    const components = s.components ?? ['main'];
    const security = s.style === 'debian-security';
    // debian-security puts arch:all packages into every binary-<arch> too, without saying so.
    const noAll = security || (s.noSupportForArchAll ?? true);
    const compressions = s.indexCompression ?? ['xz'];
    const distDir = join(root, s.archiveName, 'dists', s.suite);
    await mkdir(distDir, { recursive: true });
    const indexArchs = ['all', ...s.architectures.filter((a) => a !== 'all')];
    // path relative to dists/<suite>/ -> bytes (the uncompressed Packages is listed even when not written)
    const listed: { path: string; bytes: Buffer }[] = [];
    for (const component of components) {
      for (const arch of indexArchs) {
        const members = entries
          .filter((e) => (e.pkg.component ?? components[0]) === component)
          .filter((e) => e.pkg.architecture === arch || (noAll && arch !== 'all' && e.pkg.architecture === 'all'))
          .sort((a, b) => (a.pkg.name < b.pkg.name ? -1 : a.pkg.name > b.pkg.name ? 1 : 0));
        // Each paragraph ends with a blank line, the last one too, as in Debian's.
        const text = members.map((e) => `${formatParagraph(packagesFields(e))}\n`).join('');
        const plain = Buffer.from(text, 'utf8');
        const rel = `${component}/binary-${arch}/Packages`;
        await mkdir(join(distDir, component, `binary-${arch}`), { recursive: true });
        listed.push({ path: rel, bytes: plain });
        for (const c of compressions) {
          const bytes = c === 'none' ? plain : await compress(plain, c === 'gz' ? 'gzip' : 'xz');
          const p = c === 'none' ? rel : `${rel}.${c}`;
          await writeFile(join(distDir, p), bytes);
          if (c !== 'none') listed.push({ path: p, bytes });
        }
      }
    }
    listed.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));

    const label = s.label ?? defaultLabel(s.archiveName);
    const head: Fields = [
      ['Origin', s.origin ?? label.split('-')[0]!],
      ['Label', label],
      ['Suite', s.suite],
    ];
    if (s.version !== undefined) head.push(['Version', s.version]);
    head.push(['Codename', s.codename ?? s.suite], ['Date', releaseDate(s.date ?? new Date('2025-06-01T12:00:00Z'))]);
    if (s.validUntil) head.push(['Valid-Until', releaseDate(s.validUntil)]);
    head.push(['Acquire-By-Hash', 'no']);
    if (noAll && !security) head.push(['No-Support-for-Architecture-all', 'Packages']);
    head.push(
      ['Architectures', (security ? s.architectures : indexArchs).join(' ')],
      ['Components', (security ? components.map((c) => `updates/${c}`) : components).join(' ')],
      ['Description', s.description ?? `${label} ${s.suite} (synthetic test archive)`],
    );
    const width = Math.max(...listed.map((l) => String(l.bytes.length).length));
    const section = (algo: 'md5' | 'sha256'): string =>
      listed.map((l) => ` ${hashHex(algo, l.bytes)} ${String(l.bytes.length).padStart(width)} ${l.path}\n`).join('');
    const release = `${formatParagraph(head)}${security ? '' : `MD5Sum:\n${section('md5')}`}SHA256:\n${section('sha256')}`;
    const releasePath = join(distDir, 'Release');
    await writeFile(releasePath, release);
    if (!opts.unsigned) await signRelease(releasePath, signers, join(root, '_key'), opts.signedAt);
  }

  return {
    root,
    key,
    url: (archiveName) => pathToFileURL(join(root, archiveName)).href,
    debPath(archiveName, pkg, arch, version) {
      const all = byPkg.get(`${archiveName}\0${pkg}\0${arch}`) ?? [];
      const found = version === undefined ? all : all.filter((e) => e.pkg.version === version);
      if (found.length !== 1)
        throw new Error(
          `${archiveName}: ${found.length === 0 ? 'no' : 'several'} .deb for ${pkg} ${version ?? ''} ${arch}`,
        );
      return join(root, archiveName, found[0]!.filename);
    },
  };
}

/** The Packages paragraph of a pool entry: the control's fields in dak's order, short description. */
function packagesFields(e: PoolEntry): Fields {
  const fields: Fields = [];
  for (const [k, v] of e.control) {
    if (k === 'Description') {
      fields.push([k, v.split('\n')[0]!], ['Description-md5', hashHex('md5', `${v}\n`)]);
    } else fields.push([k, v]);
  }
  fields.push(['Filename', e.filename], ['Size', String(e.bytes.length)], ['MD5sum', e.md5], ['SHA256', e.sha256]);
  return orderFields(fields, PACKAGES_ORDER);
}

