// Assembling one layer: its packages staged from the cache → one tree with dpkg's conflict rules →
// generated files (src/rootfs/generate/, chosen by the package table src/rootfs/package-roles.ts) →
// the definition's own files → sorted entries → a deterministic tar (writeTree). Every header field
// comes from the entry and the layer's timestamp, never from the host.
import { readFile } from 'node:fs/promises';
import type { ContentStore } from '../cas/store.js';
import { parseRelations } from '../debian/relations.js';
import { DistillError } from '../errors.js';
import type { OnProgress } from '../events.js';
import type { LayerCompression } from '../layer/compression.js';
import type { GzipOptions } from '../layer/gzip.js';
import { writeLayer, type LayerResult } from '../layer/write-layer.js';
import type { LockedImage } from '../lock/load.js';
import type { LockedPackage } from '../lock/lockfile.js';
import { LayerChangesRecorder, type LayerChanges } from '../provenance/sbom.js';
import { pathFilter } from '../rootfs/filter.js';
import { accountEntries } from '../rootfs/generate/accounts.js';
import { BUSYBOX_OWNER, busyboxEntries } from '../rootfs/generate/busybox.js';
import { CERTS_DIR, caBundleEntries, type CaCertificateFile } from '../rootfs/generate/ca-bundle.js';
import { statusEntries, type InstalledPackageRecord } from '../rootfs/generate/dpkg-status.js';
import { javaCacertsEntries } from '../rootfs/generate/java-cacerts.js';
import { systemEntries } from '../rootfs/generate/system-files.js';
import { generatorsFor, roleOf, shipsEntry, supplierOf, type PackageGenerator } from '../rootfs/package-roles.js';
import { LayerTree, mergedUsrPath, type Body, type TreeEntry } from '../rootfs/tree.js';
import { ownFiles } from './own-files.js';
import type { StagedPackage, StageRules } from './stage.js';
import { stageInWorker } from './stage-pool.js';

/**
 * A limit on packages unpacked at once, shared by every layer of a build. Waiting work runs largest
 * first (`weight`, the .deb's size: a proxy for its decompression time; ties in arrival order), so the
 * longest unpacking starts early and does not end up alone at the tail while the other core idles —
 * the classic longest-processing-time-first schedule. `hold()` queues without starting anything until
 * released, so that a whole chain's packages can be ordered before the first one starts.
 */
export class Slots {
  private free: number;
  private holds = 0;
  private arrivals = 0;
  private readonly waiting: { weight: number; seq: number; start: () => void }[] = [];
  constructor(n: number) {
    if (!Number.isInteger(n) || n < 1) throw new DistillError('USAGE', `concurrency ${n} is not a whole number ≥ 1`, { hint: 'e.g. --concurrency 2' });
    this.free = n;
  }

  /** Queue without starting until the returned release is called (idempotent). */
  hold(): () => void {
    this.holds++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds--;
      this.dispatch();
    };
  }

  async run<T>(fn: () => Promise<T>, weight = 0): Promise<T> {
    await new Promise<void>((start) => {
      const seq = this.arrivals++;
      // Sorted insert: heavier first, then first come first served.
      let i = this.waiting.length;
      while (i > 0 && (this.waiting[i - 1]!.weight < weight || (this.waiting[i - 1]!.weight === weight && this.waiting[i - 1]!.seq > seq))) i--;
      this.waiting.splice(i, 0, { weight, seq, start });
      this.dispatch();
    });
    try {
      return await fn();
    } finally {
      this.free++;
      this.dispatch();
    }
  }

  private dispatch(): void {
    while (this.holds === 0 && this.free > 0 && this.waiting.length > 0) {
      this.free--;
      this.waiting.shift()!.start();
    }
  }
}

/** What staging and assembly share across the layers of a build. */
export interface AssemblyContext {
  store: ContentStore;
  /** Where staged file bodies go (removed by the caller). */
  stageDir: string;
  /** The limit on packages unpacked at once. */
  slots: Slots;
  /** In-memory budget for small file bodies (see stage.ts), shared by the chain. */
  memory?: { budget: number; used: number };
  onProgress?: OnProgress;
}

/** Stage packages (and borrowed ones) of an image with its path rules, at most `slots` at a time, in the staging workers. */
export function stageAll(pkgs: readonly LockedPackage[], ctx: AssemblyContext, li: LockedImage, borrowed: readonly LockedPackage[] = []): Promise<StagedPackage[]> {
  const warn = (m: string): void => ctx.onProgress?.({ type: 'warning', message: m });
  const isBorrowed = new Set(borrowed);
  const { setid } = li.definition.paths;
  const rulesOf = (pkg: LockedPackage): StageRules =>
    isBorrowed.has(pkg)
      ? { kind: 'borrow', package: pkg.name, globs: li.definition.borrow.find((b) => b.package === pkg.name)?.paths ?? [], setid }
      : { kind: 'image', paths: li.definition.paths };
  return Promise.all(
    [...pkgs, ...borrowed].map((pkg) =>
      ctx.slots.run(
        () =>
          stageInWorker(pkg, {
            store: ctx.store,
            stageDir: ctx.stageDir,
            rules: rulesOf(pkg),
            ...(ctx.memory ? { memory: ctx.memory } : {}),
            onWarning: warn,
          }),
        pkg.size,
      ),
    ),
  );
}

/** A staged body's bytes, whole. */
function bodyBytes(b: Body): Promise<Buffer> {
  return b.kind === 'bytes' ? Promise.resolve(b.data) : readFile(b.path);
}

/** Start unpacking now, consume later; a failure is kept for whoever awaits it (never unhandled). */
export function prefetch(pkgs: readonly LockedPackage[], borrowed: readonly LockedPackage[], ctx: AssemblyContext, li: LockedImage): () => Promise<StagedPackage[]> {
  const p = stageAll(pkgs, ctx, li, borrowed);
  p.catch(() => {});
  return () => p;
}

/** The certificate files a staged package supplies (ca-certificates' /usr/share/ca-certificates), sorted by path. */
export async function certificatesOf(staged: StagedPackage): Promise<CaCertificateFile[]> {
  const certs: CaCertificateFile[] = [];
  for (const [path, body] of [...staged.wanted].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    if (path.startsWith(CERTS_DIR)) certs.push({ path, pem: (await bodyBytes(body)).toString('utf8') });
  }
  return certs;
}

/**
 * The chain's CA certificates, for the bundle and Java's trust store: those of the supplier's layer
 * when it was assembled in this build, else the supplier staged on first need (its layer may be cached).
 */
export class CertificateSource {
  private certs: CaCertificateFile[] | undefined;
  constructor(
    private readonly supplier: LockedPackage | undefined,
    private readonly ctx: AssemblyContext,
  ) {}

  /** The chain's certificate supplier (ca-certificates) for one architecture, if any. */
  static forChain(chain: readonly LockedImage[], arch: string, ctx: AssemblyContext): CertificateSource {
    return new CertificateSource(supplierOf(chain.flatMap((li) => li.lock.architectures[arch]?.packages ?? []), 'certificates'), ctx);
  }

  /** The certificates of a supplier staged in a layer being assembled (the first such wins). */
  note(certs: CaCertificateFile[]): void {
    this.certs ??= certs;
  }

  async get(li: LockedImage): Promise<CaCertificateFile[]> {
    if (this.certs === undefined) {
      if (this.supplier === undefined) {
        throw new DistillError('BUILD_FAILED', `${li.definition.name}: a Java runtime needs the CA certificates, but no image in its chain has ca-certificates`, { hint: 'build it on static (or add ca-certificates)' });
      }
      this.certs = await certificatesOf((await stageAll([this.supplier], this.ctx, li))[0]!);
    }
    return this.certs;
  }
}

/** The generators' bodies: each turns the chain's certificates into its layer's entries. */
const CERTIFICATE_GENERATORS: Record<PackageGenerator, (certs: readonly CaCertificateFile[], mtime: number) => TreeEntry[]> = {
  'ca-bundle': caBundleEntries,
  'java-cacerts': javaCacertsEntries,
};

export function replacesOf(staged: readonly StagedPackage[]): (a: string, b: string) => boolean {
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
export function orderHardlinks(entries: TreeEntry[]): TreeEntry[] {
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

/** Drop directories that the rules drop (man, doc, locale, …) and that nothing kept lies under. */
export function pruneDirectories(tree: LayerTree, keepDir: (p: string) => boolean): void {
  const needed = new Set<string>();
  for (const e of tree.values()) {
    if (e.type === 'dir') continue;
    for (let i = e.path.lastIndexOf('/'); i > 0; i = e.path.lastIndexOf('/', i - 1)) needed.add(e.path.slice(0, i));
  }
  for (const e of [...tree.values()]) {
    if (e.type === 'dir' && !needed.has(e.path) && !keepDir(e.path)) tree.delete(e.path);
  }
}

/** Whether an md5sums path (as the .deb names it) is a package's file in the image: this layer or below. */
export function shippedIn(tree: LayerTree, lower: ReadonlyMap<string, TreeEntry>): (path: string) => boolean {
  return (path) => {
    const p = mergedUsrPath(path);
    const e = tree.get(p) ?? lower.get(p);
    return e !== undefined && (e.type === 'file' || e.type === 'hardlink') && !e.owner.startsWith('distill:');
  };
}

/** What status.d records of a staged package: its control file and md5sums as the .deb has them. */
export function statusInput(s: StagedPackage): InstalledPackageRecord {
  return { control: s.control.text, ...(s.control.md5sums !== undefined ? { md5sums: s.control.md5sums } : {}) };
}

export interface ImageLayerInput {
  li: LockedImage;
  arch: string;
  /** The layer's packages (and borrowed ones), staged. */
  staged: StagedPackage[];
  /** Every entry of the layers below, by path. */
  lower: ReadonlyMap<string, TreeEntry>;
  mtime: number;
  /** The root image's layer gets the system files. */
  isRoot: boolean;
  /** This layer writes /etc/passwd, /etc/group and homes. */
  accountsChanged: boolean;
  certificates: CertificateSource;
}

/** One image's layer tree: its packages, the generated files, its own files. */
export async function assembleImageLayer(input: ImageLayerInput, ctx: AssemblyContext): Promise<LayerTree> {
  const { li, arch, staged, lower, mtime } = input;
  const tree = new LayerTree({
    mergedUsr: true,
    replaces: replacesOf(staged),
    lower,
    onWarning: (m) => ctx.onProgress?.({ type: 'warning', message: `${li.definition.name} (${arch}): ${m}` }),
  });
  for (const s of [...staged].sort((a, b) => (a.pkg.name < b.pkg.name ? -1 : 1))) {
    if (roleOf(s.pkg.name)?.supplies === 'certificates') input.certificates.note(await certificatesOf(s));
    const borrowed = li.definition.borrow.some((b) => b.package === s.pkg.name);
    for (const e of s.entries) if (shipsEntry(s.pkg.name, e) && (!borrowed || e.type !== 'dir')) tree.add(e);
  }
  const generated: TreeEntry[] = [];
  const exists = (p: string): boolean => tree.has(p.replace(/^\/+/, '')) || lower.has(p.replace(/^\/+/, ''));
  if (input.isRoot) generated.push(...systemEntries(mtime));
  if (input.accountsChanged) generated.push(...accountEntries(li.definition.accounts, mtime, exists));
  for (const g of generatorsFor(staged.map((s) => s.pkg.name))) generated.push(...CERTIFICATE_GENERATORS[g](await input.certificates.get(li), mtime));
  const own = await ownFiles(li, arch, mtime, ctx);
  // md5sums list only the packages' files the image has: not those a generated file or one of the
  // definition's own replaces below (base-files' nsswitch.conf, say), or `md5sum -c` would fail.
  const replaced = new Set([...generated.filter((g) => g.type !== 'dir'), ...own].map((e) => mergedUsrPath(e.path)));
  const shipped = shippedIn(tree, lower);
  generated.push(...statusEntries(staged.map(statusInput), mtime, (p) => !replaced.has(mergedUsrPath(p)) && shipped(p)));
  // Generated files replace whatever a package (or a base image) has at that path; generated
  // directories (homes) leave an existing one as it is, as useradd -m does.
  for (const g of generated) tree.add(g, { replace: g.type !== 'dir' || !lower.has(g.path) });
  // The definition's own files, directories included, win over everything else.
  for (const f of own) tree.add(f, { replace: true });
  pruneDirectories(tree, pathFilter(li.definition.paths).keepDir);
  tree.addMissingParents(`distill:${li.definition.name}`, mtime);
  return tree;
}

/** The debug layer's tree: BusyBox at /busybox (binary and applet links), its copyright, its status.d. */
export async function assembleDebugLayer(owner: LockedImage, pkgs: readonly LockedPackage[], staged: readonly StagedPackage[], lower: ReadonlyMap<string, TreeEntry>, mtime: number): Promise<LayerTree> {
  const tree = new LayerTree({ mergedUsr: true, replaces: () => false, lower });
  const bb = staged.flatMap((s) => (roleOf(s.pkg.name)?.supplies === 'busybox' ? [...s.wanted] : []))[0];
  if (!bb) {
    throw new DistillError('BUILD_FAILED', `${owner.definition.name}: the debug packages (${pkgs.map((p) => p.name).join(', ')}) ship no bin/busybox`, { hint: 'debug.packages should be [busybox-static]' });
  }
  for (const e of busyboxEntries(await bodyBytes(bb[1]), bb[0], mtime)) tree.add(e);
  for (const s of staged) for (const e of s.entries) if (e.path.startsWith('usr/share/doc/')) tree.add(e);
  for (const g of statusEntries(staged.map(statusInput), mtime, shippedIn(tree, new Map()))) tree.add(g);
  tree.addMissingParents(BUSYBOX_OWNER, mtime);
  return tree;
}

/** Write a tree as one layer blob; what the SBOM reads of it is recorded on the way. */
export async function writeTree(tree: LayerTree, file: string, mtime: number, gzip: GzipOptions | undefined, compression: LayerCompression): Promise<LayerResult & { sbomChanges: LayerChanges }> {
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
          const data = e.body !== undefined ? await bodyBytes(e.body) : undefined;
          recorder.add(e.path, e.type, header.size, data);
        } else recorder.add(e.path, e.type, header.size);
        if (e.type !== 'file') await tar.add(header);
        else if (e.body?.kind === 'bytes') await tar.add(header, e.body.data);
        // Staged bodies are the large files (java's 130 MB jimage): read straight into the compressor's blocks.
        else if (e.body?.kind === 'staged') await tar.add(header, { file: e.body.path });
        else throw new Error(`internal: file ${e.path} has no body`);
      }
    },
    gzip,
    compression,
  );
  return { ...result, sbomChanges: recorder.changes };
}
