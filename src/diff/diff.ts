// `distill diff OLD NEW`: per image and architecture, the packages added, removed, upgraded and
// downgraded between two sides (dpkg version order, deb-version(7)), and for every upgrade the Debian
// changelog entries between the two versions with the CVE identifiers they name. The result is a
// stable JSON document (DIFF_SCHEMA_VERSION; README "distill diff") that the text and Markdown
// renderings are made from.
import { ContentStore } from '../cas/store.js';
import { sortCveIds } from '../debian/changelog.js';
import type { MirrorInputs } from '../debian/mirrors.js';
import { compareVersions } from '../debian/version.js';
import { DistillError, isDistillError } from '../errors.js';
import type { OnProgress } from '../events.js';
import type { Lockfile } from '../lock/lockfile.js';
import { ChangelogReader, type ChangelogLimitsOptions, type ChangelogReport, type SidePackage } from './changelogs.js';
import { readSide, type DiffSide, type ReadSideOptions, type SideImage } from './sides.js';

export const DIFF_SCHEMA_VERSION = 1;

export interface DiffPackage {
  name: string;
  /** The package's own architecture (an image's amd64 closure holds amd64 and all packages). */
  architecture: string;
  version: string;
  source: string;
  sourceVersion: string;
  /** Only in the debug variants (the debug layer), not in the image itself. */
  debugOnly?: true;
}

export interface DiffVersionChange {
  name: string;
  architecture: string;
  source: string;
  oldVersion: string;
  newVersion: string;
  oldSourceVersion: string;
  newSourceVersion: string;
  /** When the package moved to another source package. */
  oldSource?: string;
  debugOnly?: true;
  /** Upgrades only. */
  changelog?: ChangelogReport;
}

export interface ArchDiff {
  arch: string;
  added: DiffPackage[];
  removed: DiffPackage[];
  upgraded: DiffVersionChange[];
  downgraded: DiffVersionChange[];
  /** Packages present on both sides at the same version. */
  unchanged: number;
  /** CVE identifiers named by the upgrades' changelog entries. */
  cves: string[];
}

export interface ImageDiff {
  image: string;
  /** added/removed: the image is on one side only. */
  status: 'changed' | 'unchanged' | 'added' | 'removed';
  architectures: ArchDiff[];
}

export interface DiffResult {
  schemaVersion: number;
  old: string;
  new: string;
  images: ImageDiff[];
  summary: { added: number; removed: number; upgraded: number; downgraded: number; cves: string[]; changed: boolean };
  warnings: string[];
}

export interface DiffOptions extends ReadSideOptions {
  cacheDir: string;
  mirrors?: MirrorInputs;
  /** Read changelogs of upgrades (default true); false reports versions only, with no .deb read. */
  changelogs?: boolean;
  limits?: ChangelogLimitsOptions;
  onProgress?: OnProgress;
}

/** Diff two sides named on the command line (see readSide for what each may be). */
export async function diffImages(oldSpec: string, newSpec: string, opts: DiffOptions): Promise<DiffResult> {
  const [a, b] = [await readSide(oldSpec, opts), await readSide(newSpec, opts)];
  return diffSides(a, b, opts);
}

/** One image per side (a single image each, whatever their names) or images matched by name. */
export async function diffSides(a: DiffSide, b: DiffSide, opts: DiffOptions): Promise<DiffResult> {
  const pairs: { image: string; old?: SideImage; new?: SideImage }[] = [];
  if (a.images.length === 1 && b.images.length === 1) {
    const name = a.images[0]!.image === b.images[0]!.image ? b.images[0]!.image : `${a.images[0]!.image} → ${b.images[0]!.image}`;
    pairs.push({ image: name, old: a.images[0]!, new: b.images[0]! });
  } else {
    const names = [...new Set([...a.images, ...b.images].map((i) => i.image))].sort();
    for (const n of names) {
      const o = a.images.find((i) => i.image === n);
      const w = b.images.find((i) => i.image === n);
      pairs.push({ image: n, ...(o ? { old: o } : {}), ...(w ? { new: w } : {}) });
    }
  }
  const reader = opts.changelogs === false ? undefined : new ChangelogReader({
    store: new ContentStore(opts.cacheDir),
    mirrors: opts.mirrors ?? {},
    ...(opts.limits ? { limits: opts.limits } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const images: ImageDiff[] = [];
  for (const p of pairs) images.push(await diffImage(p.image, p.old, p.new, reader));
  const warnings = [...a.warnings, ...b.warnings];
  for (const img of images) {
    for (const ad of img.architectures) {
      for (const u of ad.upgraded) {
        const w = u.changelog?.error ? [`${img.image} ${ad.arch}: ${u.name}: changelog unavailable: ${u.changelog.error.message} [${u.changelog.error.code}]`] : [];
        warnings.push(...w);
      }
    }
  }
  const all = images.flatMap((i) => i.architectures);
  const summary = {
    added: all.reduce((n, x) => n + x.added.length, 0),
    removed: all.reduce((n, x) => n + x.removed.length, 0),
    upgraded: all.reduce((n, x) => n + x.upgraded.length, 0),
    downgraded: all.reduce((n, x) => n + x.downgraded.length, 0),
    cves: sortCveIds(new Set(all.flatMap((x) => x.cves))),
    changed: false,
  };
  summary.changed = summary.added + summary.removed + summary.upgraded + summary.downgraded > 0;
  for (const w of warnings) opts.onProgress?.({ type: 'warning', message: w });
  return { schemaVersion: DIFF_SCHEMA_VERSION, old: a.label, new: b.label, images, summary, warnings: [...new Set(warnings)] };
}

/** Diff lock chains directly (for `distill lock --check`): images matched by name. */
export async function diffLockChains(
  oldImages: { image: string; chain: Lockfile[] }[],
  newImages: { image: string; chain: Lockfile[] }[],
  labels: { old: string; new: string },
  opts: DiffOptions,
): Promise<DiffResult> {
  const side = (label: string, images: { image: string; chain: Lockfile[] }[]): DiffSide => ({ label, kind: 'locks', images, warnings: [] });
  const a = side(labels.old, oldImages);
  const b = side(labels.new, newImages);
  // Matched by name even when there is one of each: a lock check never pairs different images.
  if (oldImages.length === 1 && newImages.length === 1 && oldImages[0]!.image !== newImages[0]!.image) {
    throw new DistillError('USAGE', `cannot compare the locks of ${oldImages[0]!.image} and ${newImages[0]!.image}`);
  }
  return diffSides(a, b, opts);
}

/** Per architecture: name → package (with its suite), the chain's layers and the debug layer merged. */
function packagesOf(img: SideImage | undefined): Map<string, Map<string, SidePackage & { debugOnly: boolean }>> {
  const out = new Map<string, Map<string, SidePackage & { debugOnly: boolean }>>();
  if (img === undefined) return out;
  const top = img.chain[img.chain.length - 1]!;
  const arches = new Set(img.chain.flatMap((l) => Object.keys(l.architectures)));
  for (const arch of arches) {
    if (img.platforms !== undefined && !img.platforms.includes(arch)) continue;
    const m = new Map<string, SidePackage & { debugOnly: boolean }>();
    for (const l of img.chain) {
      for (const p of l.architectures[arch]?.packages ?? []) m.set(p.name, { pkg: p, suite: l.sources[p.archive]?.suite ?? '', debugOnly: false });
    }
    for (const p of top.architectures[arch]?.debug ?? []) {
      if (!m.has(p.name)) m.set(p.name, { pkg: p, suite: top.sources[p.archive]?.suite ?? '', debugOnly: true });
    }
    out.set(arch, m);
  }
  return out;
}

function pkgOf(sp: SidePackage & { debugOnly: boolean }): DiffPackage {
  const p = sp.pkg;
  return { name: p.name, architecture: p.architecture, version: p.version, source: p.source ?? p.name, sourceVersion: p.sourceVersion ?? p.version, ...(sp.debugOnly ? { debugOnly: true as const } : {}) };
}

/** dpkg order; a version the lock holds but dpkg would not parse sorts by text, and is never a crash. */
function compare(a: string, b: string): number {
  try {
    return compareVersions(a, b);
  } catch (e) {
    if (!isDistillError(e, 'VERSION_INVALID')) throw e;
    return a < b ? -1 : a > b ? 1 : 0;
  }
}

async function diffImage(image: string, oldImg: SideImage | undefined, newImg: SideImage | undefined, reader: ChangelogReader | undefined): Promise<ImageDiff> {
  const olds = packagesOf(oldImg);
  const news = packagesOf(newImg);
  const arches = [...new Set([...olds.keys(), ...news.keys()])].sort();
  const architectures: ArchDiff[] = [];
  for (const arch of arches) {
    const o = olds.get(arch) ?? new Map();
    const n = news.get(arch) ?? new Map();
    const d: ArchDiff = { arch, added: [], removed: [], upgraded: [], downgraded: [], unchanged: 0, cves: [] };
    const names = [...new Set([...o.keys(), ...n.keys()])].sort();
    for (const name of names) {
      const a = o.get(name);
      const b = n.get(name);
      if (a === undefined) {
        d.added.push(pkgOf(b!));
        continue;
      }
      if (b === undefined) {
        d.removed.push(pkgOf(a));
        continue;
      }
      const pa = pkgOf(a);
      const pb = pkgOf(b);
      const c = compare(pa.version, pb.version);
      if (c === 0) {
        d.unchanged++;
        continue;
      }
      const change: DiffVersionChange = {
        name,
        architecture: pb.architecture,
        source: pb.source,
        oldVersion: pa.version,
        newVersion: pb.version,
        oldSourceVersion: pa.sourceVersion,
        newSourceVersion: pb.sourceVersion,
        ...(pa.source !== pb.source ? { oldSource: pa.source } : {}),
        ...(pb.debugOnly ? { debugOnly: true as const } : {}),
      };
      if (c < 0) {
        change.changelog = reader
          ? await reader.read(b, { oldVersion: pa.version, newVersion: pb.version, oldSourceVersion: pa.sourceVersion, newSourceVersion: pb.sourceVersion }, n)
          : { status: 'skipped', files: [], entries: [], cves: [], warnings: [] };
        d.upgraded.push(change);
      } else {
        d.downgraded.push(change);
      }
    }
    d.cves = sortCveIds(new Set(d.upgraded.flatMap((u) => u.changelog?.cves ?? [])));
    architectures.push(d);
  }
  const changed = architectures.some((x) => x.added.length + x.removed.length + x.upgraded.length + x.downgraded.length > 0);
  const status = oldImg === undefined ? 'added' : newImg === undefined ? 'removed' : changed ? 'changed' : 'unchanged';
  return { image, status, architectures };
}

