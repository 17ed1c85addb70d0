// The layers of one image chain for one architecture: one layer per image (the base's first, so a base
// layer is byte-identical in every image built on it), plus the debug layer (BusyBox at /busybox).
// Each layer: its packages staged from the cache → one tree with dpkg's conflict rules → generated
// files → sorted entries → a deterministic tar.gz. Every header field comes from the entry and the
// layer's timestamp, never from the host.
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { readFile, stat } from 'node:fs/promises';
import { fetchBlob } from '../cas/fetch.js';
import { compressionOf } from '../compress/decompress.js';
import { readTarball } from '../rootfs/deb.js';
import { join } from 'node:path';
import type { ContentStore } from '../cas/store.js';
import { parseRelations } from '../debian/relations.js';
import { substituteArch, type Variant } from '../definition/types.js';
import { DistillError } from '../errors.js';
import type { OnProgress } from '../events.js';
import { writeLayer, type LayerResult } from '../layer/write-layer.js';
import type { GzipOptions } from '../layer/gzip.js';
import { layerSuffix, type LayerCompression } from '../layer/compression.js';
import type { LockedImage } from '../lock/load.js';
import type { LockedPackage } from '../lock/lockfile.js';
import { globToRegExp, pathFilter, type PathFilter } from '../rootfs/filter.js';
import { busyboxApplets } from '../rootfs/generate/busybox.js';
import type { CaCertificateFile } from '../rootfs/generate/ca-bundle.js';
import { LayerTree, mergedUsrPath, type TreeEntry } from '../rootfs/tree.js';
import { HashingStream, sha256Hex } from '../digest.js';
import { LayerChangesRecorder, type LayerChanges } from '../provenance/sbom.js';
import { entriesOf, indexOf, layerKey, LayerCache, type LayerRecord, type LayerSourceKind, type RemoteLayerCache } from './layer-cache.js';
import { accountFiles, caBundleFile, dirEntry, fileEntry, javaCacertsFile, statusFiles, symlinkEntry, systemFiles } from './generated.js';
import { SMALL_FILE, stagePackage, type StagedPackage } from './stage.js';

export interface BuiltLayer extends LayerResult {
  /** The image whose layer this is, or `<image> (debug)`. */
  image: string;
  /** The layer's timestamp (seconds): every mtime in it. */
  createdAt: number;
  /** What the config's history says made it. */
  createdBy: string;
  /** Packages in it. */
  packages: LockedPackage[];
  /** How the blob is compressed (absent: gzip). */
  compression?: LayerCompression;
  /** What the SBOM reads from it, recorded while writing it (absent for a layer from the cache). */
  sbomChanges?: LayerChanges;
  /** Written by this build, or taken from the local or the registry layer cache. */
  source?: LayerSourceKind;
}

export interface ChainLayers {
  arch: string;
  /** One per image of the chain, base first. */
  layers: BuiltLayer[];
  /** The debug layer, when some image of the chain locks debug packages. */
  debug?: BuiltLayer;
}

export interface LayerBuildOptions {
  store: ContentStore;
  stageDir: string;
  outDir: string;
  /** SOURCE_DATE_EPOCH; else each layer takes its own lock's timestamp. */
  sourceDateEpoch?: number;
  concurrency?: number;
  gzip?: GzipOptions;
  /** Layer compression (default gzip); part of every layer's cache key. */
  compression?: LayerCompression;
  variants: readonly Variant[];
  onProgress?: OnProgress;
  /** Do not reuse or record finished layers. */
  noCache?: boolean;
  /** A layer cache shared through a registry, consulted after the local one. */
  remoteCache?: RemoteLayerCache;
  /** In-memory budget for small file bodies (see stage.ts); default 128 MiB, shared by the chain. */
  memory?: { budget: number; used: number };
  /** Shared limit on packages unpacked at once (default: `concurrency`, 2). */
  slots?: Slots;
}

/** A BuiltLayer's compression field: set only for zstd, so gzip layers look as they always have. */
function compressed(opts: LayerBuildOptions): { compression?: LayerCompression } {
  return opts.compression === 'zstd' ? { compression: 'zstd' } : {};
}

const CA_DIR = 'usr/share/ca-certificates/';
const BUSYBOX_BINARY = /(^|\/)bin\/busybox$/;

/** Packages whose layer gets Java's trust store; one predicate for the layer's cache key and its contents. */
function isJavaRuntime(name: string): boolean {
  return name === 'ca-certificates-java' || name.startsWith('openjdk-');
}

/** The history entry of an image's layer (in the config; the join recomputes it from the locks). */
export function imageLayerCreatedBy(li: LockedImage, pkgs: readonly LockedPackage[]): string {
  return `distill: ${li.definition.name} packages ${pkgs.map((p) => p.name).join(' ')}`;
}

export function debugLayerCreatedBy(pkgs: readonly LockedPackage[]): string {
  return `distill: debug layer ${pkgs.map((p) => p.name).join(' ')} at /busybox`;
}

export function layerTimestamp(li: LockedImage, sourceDateEpoch: number | undefined): number {
  return sourceDateEpoch ?? Math.floor(Date.parse(li.lock.timestamp) / 1000);
}

/** A FIFO limit on packages unpacked at once, shared by every layer of a build. */
export class Slots {
  private free: number;
  private readonly waiting: (() => void)[] = [];
  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new DistillError('USAGE', `concurrency ${n} is not a whole number ≥ 1`, { hint: 'e.g. --concurrency 2' });
    this.free = n;
  }
  async run<T>(fn: () => Promise<T>): Promise<T> {
    if (this.free > 0) this.free--;
    else await new Promise<void>((r) => this.waiting.push(r));
    try {
      return await fn();
    } finally {
      const next = this.waiting.shift();
      if (next) next();
      else this.free++;
    }
  }
}

/**
 * What ships of a borrowed package: the files matching its globs and its copyright (licences travel
 * with the bytes); no directories of its own (their parents are made root 0755), nothing else.
 */
function borrowFilter(li: LockedImage, name: string): PathFilter {
  const globs = (li.definition.borrow.find((b) => b.package === name)?.paths ?? []).map(globToRegExp);
  const copyright = `usr/share/doc/${name}/copyright`;
  const keep = (p: string): boolean => p === copyright || globs.some((r) => r.test(p));
  return { keepFile: keep, keepDir: () => false };
}

function stageAll(pkgs: readonly LockedPackage[], opts: LayerBuildOptions, li: LockedImage, borrowed: readonly LockedPackage[] = []): Promise<StagedPackage[]> {
  const filter = pathFilter(li.definition.paths);
  const setid = li.definition.paths.setid.map(globToRegExp);
  const warn = (m: string): void => opts.onProgress?.({ type: 'warning', message: m });
  const slots = opts.slots ?? new Slots(opts.concurrency ?? 2);
  const isBorrowed = new Set(borrowed);
  return Promise.all(
    [...pkgs, ...borrowed].map((pkg) =>
      slots.run(() =>
        stagePackage(pkg, {
          store: opts.store,
          stageDir: opts.stageDir,
          filter: isBorrowed.has(pkg) ? borrowFilter(li, pkg.name) : filter,
          ...(isBorrowed.has(pkg) ? { docLinks: false } : {}),
          ...(opts.memory ? { memory: opts.memory } : {}),
          want: (name, path) => (name === 'ca-certificates' && path.startsWith(CA_DIR)) || (name === 'busybox-static' && BUSYBOX_BINARY.test(path)),
          onWarning: warn,
          ...(setid.length ? { allowSetid: (path: string) => setid.some((r) => r.test(mergedUsrPath(path))) } : {}),
        }),
      ),
    ),
  );
}

/** Start unpacking now, consume later; a failure is kept for whoever awaits it (never unhandled). */
function prefetch(pkgs: readonly LockedPackage[], borrowed: readonly LockedPackage[], opts: LayerBuildOptions, li: LockedImage): () => Promise<StagedPackage[]> {
  const p = stageAll(pkgs, opts, li, borrowed);
  p.catch(() => {});
  return () => p;
}

async function certificatesOf(staged: StagedPackage): Promise<CaCertificateFile[]> {
  const certs: CaCertificateFile[] = [];
  for (const [path, file] of [...staged.wanted].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (path.startsWith(CA_DIR)) certs.push({ path, pem: await readFile(file, 'utf8') });
  }
  return certs;
}

function replacesOf(staged: readonly StagedPackage[]): (a: string, b: string) => boolean {
  const map = new Map<string, Set<string>>();
  for (const s of staged) {
    const text = s.control.fields.get('Replaces');
    if (!text) continue;
    const names = new Set(parseRelations(text, `Replaces of ${s.pkg.name}`).flat().map((r) => r.name));
    map.set(s.pkg.name, names);
  }
  return (a, b) => map.get(a)?.has(b) ?? false;
}

/**
 * Hardlinks must follow their target in the archive, but sorting by path can put the link first.
 * Within each group of hardlinked paths, the first in sorted order becomes the file and the others
 * link to it — the same files, written in an order every extractor accepts.
 */
function orderHardlinks(entries: TreeEntry[]): TreeEntry[] {
  const byPath = new Map(entries.map((e) => [e.path, e]));
  const groups = new Map<string, string[]>();
  for (const e of entries) {
    if (e.type !== 'hardlink') continue;
    const target = e.linkTarget!;
    if (!byPath.has(target)) {
      throw new DistillError('UNSAFE_ENTRY', `${e.path} (${e.owner}) is a hardlink to ${target}, which is not in the same layer`, { hint: 'keep the link target with a `paths: {keep: [...]}` rule' });
    }
    let g = groups.get(target);
    if (!g) groups.set(target, (g = [target]));
    g.push(e.path);
  }
  for (const members of groups.values()) {
    members.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    const fileEntry = byPath.get(members.find((m) => byPath.get(m)!.type === 'file')!)!;
    const first = members[0]!;
    for (const m of members) {
      const cur = byPath.get(m)!;
      if (m === first) byPath.set(m, { ...fileEntry, path: m, owner: cur.owner });
      else byPath.set(m, { ...cur, type: 'hardlink', size: 0, linkTarget: first, body: undefined as never });
    }
  }
  return entries.map((e) => {
    const r = byPath.get(e.path)!;
    if (r.type === 'hardlink') {
      const { body: _b, ...rest } = r;
      return rest;
    }
    return r;
  });
}

/** Record a freshly written layer in the cache (moving its blob into the store); its path from then on. */
async function keep(cache: LayerCache | undefined, key: string, file: string, result: LayerResult, tree: LayerTree): Promise<string> {
  if (!cache) return file;
  return cache.put(key, file, { digest: result.digest, diffId: result.diffId, size: result.size, uncompressedSize: result.uncompressedSize, entries: indexOf(tree.values()) });
}

async function writeTree(tree: LayerTree, file: string, mtime: number, gzip: GzipOptions | undefined, compression: LayerCompression): Promise<LayerResult & { sbomChanges: LayerChanges }> {
  const entries = orderHardlinks(tree.sorted());
  // What the SBOM would read back from this layer, taken as it is written (see LayerChangesRecorder).
  const recorder = new LayerChangesRecorder();
  const result = await writeLayer(
    file,
    async (tar) => {
      for (const e of entries) {
        const header = {
          path: e.path,
          type: e.type,
          mode: e.mode,
          uid: e.uid,
          gid: e.gid,
          uname: e.uname,
          gname: e.gname,
          size: e.type === 'file' ? e.size : 0,
          mtime,
          ...(e.linkTarget !== undefined ? { linkTarget: e.linkTarget } : {}),
        };
        if (recorder.wantsBody(e.path, e.type, header.size)) {
          const data = e.body?.kind === 'bytes' ? e.body.data : e.body?.kind === 'staged' ? await readFile(e.body.path) : undefined;
          recorder.add(e.path, e.type, header.size, data);
        } else recorder.add(e.path, e.type, header.size);
        if (e.type !== 'file') await tar.add(header);
        else if (e.body?.kind === 'bytes') await tar.add(header, e.body.data);
        else if (e.body?.kind === 'staged') await tar.add(header, createReadStream(e.body.path));
        else throw new Error(`internal: file ${e.path} has no body`);
      }
    },
    gzip,
    compression,
  );
  return { ...result, sbomChanges: recorder.changes };
}

/** Drop directories that the rules drop (man, doc, locale, …) and that nothing kept lies under. */
function pruneDirectories(tree: LayerTree, keepDir: (p: string) => boolean): void {
  const needed = new Set<string>();
  for (const e of tree.values()) {
    if (e.type === 'dir') continue;
    for (let i = e.path.lastIndexOf('/'); i > 0; i = e.path.lastIndexOf('/', i - 1)) needed.add(e.path.slice(0, i));
  }
  for (const e of [...tree.values()]) {
    if (e.type === 'dir' && !needed.has(e.path) && !keepDir(e.path)) tree.delete(e.path);
  }
}

export async function buildChainLayers(chain: readonly LockedImage[], arch: string, options: LayerBuildOptions): Promise<ChainLayers> {
  const opts: LayerBuildOptions = {
    ...options,
    memory: options.memory ?? { budget: 128 * 1024 * 1024, used: 0 },
    slots: options.slots ?? new Slots(options.concurrency ?? 2),
  };
  const cache = opts.noCache ? undefined : new LayerCache(opts.store, opts.remoteCache);
  const lower = new Map<string, TreeEntry>();
  const layers: BuiltLayer[] = [];
  let certs: CaCertificateFile[] | undefined;
  let lowerKey = '';
  let debug: BuiltLayer | undefined;
  const caPkg = chain.flatMap((li) => li.lock.architectures[arch]?.packages ?? []).find((p) => p.name === 'ca-certificates');
  // CA certificates for the bundle and Java's trust store, staged on first need (their layer may be cached).
  const getCerts = async (li: LockedImage): Promise<CaCertificateFile[]> => {
    if (certs === undefined) {
      if (caPkg === undefined) {
        throw new DistillError('BUILD_FAILED', `${li.definition.name}: a Java runtime needs the CA certificates, but no image in its chain has ca-certificates`, { hint: 'build it on static (or add ca-certificates)' });
      }
      certs = await certificatesOf((await stageAll([caPkg], opts, li))[0]!);
    }
    return certs;
  };
  // Pass 1: every layer's cache key (a key depends only on inputs and the key below), and for each
  // miss, start unpacking its packages at once, so that xz runs while earlier layers compress.
  const plans: { li: LockedImage; pkgs: LockedPackage[]; key: string; mtime: number; accountsChanged: boolean; staged?: () => Promise<StagedPackage[]>; hit?: LayerRecord & { path: string; source: LayerSourceKind } }[] = [];
  for (let i = 0; i < chain.length; i++) {
    const li = chain[i]!;
    const pkgs = li.lock.architectures[arch]?.packages;
    if (pkgs === undefined) {
      throw new DistillError('LOCK_INVALID', `${li.lockPath} has no ${arch} packages`, { hint: `add ${arch} to the architectures of ${li.definition.file} and relock` });
    }
    const mtime = layerTimestamp(li, opts.sourceDateEpoch);
    const accountsChanged = i === 0 || li.definition.accounts !== li.definition.base?.accounts;
    const borrowed = li.lock.architectures[arch]?.borrow ?? [];
    const needsJavaCerts = pkgs.some((p) => isJavaRuntime(p.name));
    const key = layerKey({
      kind: 'image',
      arch,
      mtime,
      lower: lowerKey,
      root: i === 0,
      packages: pkgs.map((p) => [p.name, p.sha256]),
      ...(borrowed.length ? { borrow: borrowed.map((p) => [p.name, p.sha256, li.definition.borrow.find((b) => b.package === p.name)?.paths ?? []]) } : {}),
      paths: li.definition.paths,
      files: await filesKey(li),
      accounts: accountsChanged ? (li.definition.accounts ?? 'default') : null,
      certs: needsJavaCerts ? (caPkg?.sha256 ?? null) : null,
      // Absent for gzip, so the keys of gzip layers cached before zstd existed still match.
      ...(opts.compression === 'zstd' ? { compression: 'zstd' } : {}),
    });
    lowerKey = key;
    const hit = await cache?.get(key);
    plans.push({ li, pkgs, key, mtime, accountsChanged, ...(hit ? { hit } : { staged: prefetch(pkgs, borrowed, opts, li) }) });
  }
  // Pass 2: assemble and write in order (each layer's conflict checks need the layers below). On a
  // failure, let the unpacking already under way finish before the caller removes its directory.
  try {
    await writeLayers();
  } catch (e) {
    await Promise.allSettled(plans.map((p) => p.staged?.()));
    throw e;
  }
  return { arch, layers, ...(debug ? { debug } : {}) };

  async function writeLayers(): Promise<void> {
  for (let i = 0; i < plans.length; i++) {
    const { li, pkgs, key, mtime, accountsChanged, staged, hit } = plans[i]!;
    let built: BuiltLayer;
    const createdBy = imageLayerCreatedBy(li, pkgs);
    if (hit) {
      // History and names come from this build's plan, never from whichever image first cached the layer.
      const { entries: _e, ...found } = hit;
      built = { ...found, image: li.definition.name, createdBy, createdAt: mtime, packages: pkgs, ...compressed(opts) };
      if (hit.source === 'local cache') await cache!.share(key, hit.path, hit);
      for (const e of entriesOf(hit)) lower.set(e.path, e);
      opts.onProgress?.({ type: 'layer-written', image: li.definition.name, arch, digest: hit.digest, size: hit.size, uncompressedSize: hit.uncompressedSize, seconds: 0, source: hit.source });
    } else {
      const started = performance.now();
      const tree = await assembleImageLayer(li, arch, await staged!(), lower, mtime, i === 0, accountsChanged, opts, getCerts, (c) => (certs ??= c));
      const file = join(opts.outDir, `layer-${i}-${arch}${layerSuffix(opts.compression ?? 'gzip')}`);
      const result = await writeTree(tree, file, mtime, opts.gzip, opts.compression ?? 'gzip');
      const path = await keep(cache, key, file, result, tree);
      built = { ...result, path, image: li.definition.name, createdAt: mtime, createdBy, packages: pkgs, source: 'built', ...compressed(opts) };
      for (const e of tree.values()) lower.set(e.path, e);
      opts.onProgress?.({ type: 'layer-written', image: li.definition.name, arch, digest: result.digest, size: result.size, uncompressedSize: result.uncompressedSize, seconds: (performance.now() - started) / 1000, source: 'built' });
    }
    layers.push(built);
    // The debug layer sits on the image that locks it, built against that image's tree only: every
    // image built on it then shares the same debug layer bytes.
    if (li.lock.architectures[arch]?.debug && opts.variants.some((v) => v.startsWith('debug'))) {
      debug = await debugLayer(li, arch, new Map(lower), key, opts, cache);
    }
  }
  }
}

async function assembleImageLayer(
  li: LockedImage,
  arch: string,
  staged: StagedPackage[],
  lower: ReadonlyMap<string, TreeEntry>,
  mtime: number,
  isRoot: boolean,
  accountsChanged: boolean,
  opts: LayerBuildOptions,
  getCerts: (li: LockedImage) => Promise<CaCertificateFile[]>,
  setCerts: (c: CaCertificateFile[]) => void,
): Promise<LayerTree> {
  const tree = new LayerTree({
    mergedUsr: true,
    replaces: replacesOf(staged),
    lower,
    onWarning: (m) => opts.onProgress?.({ type: 'warning', message: `${li.definition.name} (${arch}): ${m}` }),
  });
  for (const s of [...staged].sort((a, b) => (a.pkg.name < b.pkg.name ? -1 : 1))) {
    if (s.pkg.name === 'ca-certificates') {
      // Installed for its certificates only (distroless does the same): the bundle is generated
      // below; the certificate files, the update script and its hooks are not shipped.
      setCerts(await certificatesOf(s));
      for (const e of s.entries) if (e.type === 'dir' ? !e.path.startsWith(CA_DIR.slice(0, -1)) : e.path.startsWith('usr/share/doc/')) tree.add(e);
      continue;
    }
    const borrowed = li.definition.borrow.some((b) => b.package === s.pkg.name);
    for (const e of s.entries) if (!borrowed || e.type !== 'dir') tree.add(e);
  }
  const generated: TreeEntry[] = [];
  const exists = (p: string): boolean => tree.has(p.replace(/^\/+/, '')) || lower.has(p.replace(/^\/+/, ''));
  if (isRoot) generated.push(...systemFiles(mtime));
  if (accountsChanged) generated.push(...accountFiles(li.definition.accounts, mtime, exists));
  if (staged.some((s) => s.pkg.name === 'ca-certificates')) generated.push(caBundleFile(await getCerts(li), mtime));
  if (staged.some((s) => isJavaRuntime(s.pkg.name))) generated.push(javaCacertsFile(await getCerts(li), mtime));
  generated.push(...statusFiles(staged.map(statusInput), mtime, shippedIn(tree, lower)));
  // Generated files replace whatever a package (or a base image) has at that path; generated
  // directories (homes) leave an existing one as it is, as useradd -m does.
  for (const g of generated) tree.add(g, { replace: g.type !== 'dir' || !lower.has(g.path) });
  // The definition's own files, directories included, win over everything else.
  for (const f of await ownFiles(li, arch, mtime, opts)) tree.add(f, { replace: true });
  pruneDirectories(tree, pathFilter(li.definition.paths).keepDir);
  tree.addMissingParents(`distill:${li.definition.name}`, mtime);
  return tree;
}

/** Whether an md5sums path (as the .deb names it) is a package's file in the image: this layer or below. */
function shippedIn(tree: LayerTree, lower: ReadonlyMap<string, TreeEntry>): (path: string) => boolean {
  return (path) => {
    const p = mergedUsrPath(path);
    const e = tree.get(p) ?? lower.get(p);
    return e !== undefined && (e.type === 'file' || e.type === 'hardlink') && !e.owner.startsWith('distill:');
  };
}

function statusInput(s: StagedPackage): { control: string; md5sums?: string } {
  return { control: s.control.text, ...(s.control.md5sums !== undefined ? { md5sums: s.control.md5sums } : {}) };
}

async function hashFile(path: string): Promise<string> {
  const hash = createHash('sha256');
  try {
    for await (const c of createReadStream(path)) hash.update(c as Buffer);
  } catch {
    return 'unreadable'; // the build itself reports it, with the definition's name
  }
  return hash.digest('hex');
}

/** What of the definition's own files goes into the key: their specs, and the bytes of source files. */
async function filesKey(li: LockedImage): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const f of li.definition.files) {
    const { source, ...rest } = f;
    out.push(source === undefined ? rest : { ...rest, source: await hashFile(source) });
  }
  return out;
}

/**
 * The definition's own files: inline text, files beside the definition, URLs pinned by sha256 (fetched
 * into the cache like a .deb), symlinks, directories — and tarballs (from source or url) unpacked under
 * their path through the same sanitiser as a .deb's data.
 */
async function ownFiles(li: LockedImage, arch: string, mtime: number, opts: LayerBuildOptions): Promise<TreeEntry[]> {
  const out: TreeEntry[] = [];
  const owner = `distill:files of ${li.definition.name}`;
  const sub = (s: string): string => substituteArch(s, arch);
  for (const f of li.definition.files) {
    const path = sub(f.path);
    const uid = f.uid ?? 0;
    const gid = f.gid ?? 0;
    if (f.symlink !== undefined) out.push({ ...symlinkEntry(path, sub(f.symlink), owner, mtime), uid, gid });
    else if (f.directory) out.push(dirEntry(path, owner, mtime, f.mode ?? 0o755, uid, gid));
    else if (f.content !== undefined) out.push(fileEntry(path, sub(f.content), owner, mtime, f.mode ?? 0o644, uid, gid));
    else {
      const [file, what] = f.url !== undefined ? [await fetchPinned(f.url, f.sha256!, f.size, opts), f.url] : [f.source!, f.source!];
      if (f.extract) {
        const prefix = path.replace(/^\/+|\/+$/g, '');
        await readTarball(createReadStream(file), compressionOf(new URL(what, 'file:///').pathname.replace(/\.(tgz)$/, '.tar.gz')) ?? 'none', what, async (e, body) => {
          const entry: TreeEntry = { ...e, path: prefix === '' ? e.path : `${prefix}/${e.path}`, owner, ...(f.uid !== undefined ? { uid } : {}), ...(f.gid !== undefined ? { gid } : {}) };
          if (e.type === 'hardlink') entry.linkTarget = prefix === '' ? e.linkTarget! : `${prefix}/${e.linkTarget}`;
          if (body && e.size <= SMALL_FILE) {
            const chunks: Buffer[] = [];
            for await (const c of body) chunks.push(c as Buffer);
            const data = Buffer.concat(chunks);
            entry.body = { kind: 'bytes', data, sha256: sha256Hex(data) };
          } else if (body) {
            // Large files stream to the staging directory, hashed on the way, never held whole.
            const staged = join(opts.stageDir, `own-${randomBytes(8).toString('hex')}`);
            const hash = new HashingStream();
            await pipeline(body, hash, createWriteStream(staged, { mode: 0o600 }));
            entry.body = { kind: 'staged', path: staged, sha256: hash.sha256 };
          }
          out.push(entry);
        });
      } else {
        const size = (await stat(file).catch((e: unknown) => {
          throw new DistillError('DEFINITION_INVALID', `${li.definition.file}: file ${what} for ${path} cannot be read`, { cause: e, hint: 'source paths are relative to the definition' });
        })).size;
        if (size <= SMALL_FILE) out.push(fileEntry(path, await readFile(file), owner, mtime, f.mode ?? 0o644, uid, gid));
        else {
          // Streamed, never held whole: the layer writer reads it from disk, its hash computed on the way.
          const hash = new HashingStream();
          await pipeline(createReadStream(file), hash, async (src: AsyncIterable<unknown>) => {
            for await (const _ of src) {
              // hashing only
            }
          });
          out.push({ ...fileEntry(path, Buffer.alloc(0), owner, mtime, f.mode ?? 0o644, uid, gid), size, body: { kind: 'staged', path: file, sha256: hash.sha256 } });
        }
      }
    }
  }
  return out;
}

/** A definition's URL file, fetched into the store (or found there), verified against its pinned sha256. */
async function fetchPinned(url: string, sha256: string, size: number | undefined, opts: LayerBuildOptions): Promise<string> {
  const { path } = await fetchBlob(opts.store, { sha256, size: size ?? -1, what: url }, url, opts.onProgress ? { onProgress: opts.onProgress } : {});
  return path;
}

/** BusyBox at /busybox: the binary and one symlink per applet, plus its status.d record. */
async function debugLayer(owner: LockedImage, arch: string, lower: ReadonlyMap<string, TreeEntry>, ownerKey: string, opts: LayerBuildOptions, cache: LayerCache | undefined): Promise<BuiltLayer> {
  const pkgs = owner.lock.architectures[arch]!.debug!;
  const mtime = layerTimestamp(owner, opts.sourceDateEpoch);
  const key = layerKey({ kind: 'debug', arch, mtime, lower: ownerKey, packages: pkgs.map((p) => [p.name, p.sha256]), ...(opts.compression === 'zstd' ? { compression: 'zstd' } : {}) });
  const createdBy = debugLayerCreatedBy(pkgs);
  const image = `${owner.definition.name} (debug)`;
  const hit = await cache?.get(key);
  if (hit) {
    if (hit.source === 'local cache') await cache!.share(key, hit.path, hit);
    const { entries: _e, ...found } = hit;
    opts.onProgress?.({ type: 'layer-written', image, arch, digest: hit.digest, size: hit.size, uncompressedSize: hit.uncompressedSize, seconds: 0, source: hit.source });
    return { ...found, image, createdBy, createdAt: mtime, packages: pkgs, ...compressed(opts) };
  }
  const staged = await stageAll(pkgs, opts, owner);
  const tree = new LayerTree({ mergedUsr: true, replaces: () => false, lower });
  const bb = staged.flatMap((s) => [...s.wanted].filter(([p]) => BUSYBOX_BINARY.test(p)))[0];
  if (!bb) {
    throw new DistillError('BUILD_FAILED', `${owner.definition.name}: the debug packages (${pkgs.map((p) => p.name).join(', ')}) ship no bin/busybox`, { hint: 'debug.packages should be [busybox-static]' });
  }
  const binary = await readFile(bb[1]);
  const ownerName = 'distill:debug';
  tree.add(dirEntry('busybox', ownerName, mtime));
  tree.add(fileEntry('busybox/busybox', binary, ownerName, mtime, 0o755));
  for (const applet of busyboxApplets(binary, bb[0])) tree.add(symlinkEntry(`busybox/${applet}`, 'busybox', ownerName, mtime));
  for (const s of staged) for (const e of s.entries) if (e.path.startsWith('usr/share/doc/')) tree.add(e);
  for (const g of statusFiles(staged.map(statusInput), mtime, shippedIn(tree, new Map()))) tree.add(g);
  tree.addMissingParents(ownerName, mtime);
  const file = join(opts.outDir, `debug-${arch}${layerSuffix(opts.compression ?? 'gzip')}`);
  const result = await writeTree(tree, file, mtime, opts.gzip, opts.compression ?? 'gzip');
  const path = await keep(cache, key, file, result, tree);
  opts.onProgress?.({ type: 'layer-written', image, arch, digest: result.digest, size: result.size, uncompressedSize: result.uncompressedSize, seconds: 0, source: 'built' });
  return { ...result, path, image, createdAt: mtime, createdBy, packages: pkgs, source: 'built', ...compressed(opts) };
}
