// Planning a chain's layers: what each layer is made of, the key of everything that determines its
// bytes, and whether the layer cache already has it. A key depends only on the inputs and on the key of
// the layer below, so every key of a chain is known before a single package is unpacked — and the
// layers the cache misses can all start unpacking at once.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { DistillError } from '../errors.js';
import type { LayerCompression } from '../layer/compression.js';
import type { LockedImage } from '../lock/load.js';
import type { LockedPackage } from '../lock/lockfile.js';
import { needsSupplyFromElsewhere, supplierOf } from '../rootfs/package-roles.js';
import { layerKey, type LayerCache, type LayerRecord, type LayerSourceKind } from './layer-cache.js';

/** A layer the cache has: its record, its blob's path, and which cache it came from. */
export type LayerHit = LayerRecord & { path: string; source: LayerSourceKind };

export interface ImageLayerPlan {
  li: LockedImage;
  /** Position in the chain: 0 is the root image. */
  index: number;
  pkgs: LockedPackage[];
  /** Packages some of whose files this image borrows (see the definition's `borrow:`). */
  borrowed: LockedPackage[];
  key: string;
  /** The layer's timestamp (seconds): every mtime in it. */
  mtime: number;
  /** The root image's layer: system files and accounts. */
  isRoot: boolean;
  /** Whether this layer writes /etc/passwd and /etc/group (the root's, or an image that changes them). */
  accountsChanged: boolean;
  hit?: LayerHit;
}

export interface DebugLayerPlan {
  /** The image whose lock has the debug packages; the layer sits on its layer. */
  owner: LockedImage;
  pkgs: LockedPackage[];
  key: string;
  mtime: number;
  hit?: LayerHit;
}

export interface PlanOptions {
  /** SOURCE_DATE_EPOCH; else each layer takes its own lock's timestamp. */
  sourceDateEpoch?: number;
  compression?: LayerCompression;
  /** Absent: nothing is looked up (every layer is built). */
  cache?: LayerCache;
}

export function layerTimestamp(li: LockedImage, sourceDateEpoch: number | undefined): number {
  return sourceDateEpoch ?? Math.floor(Date.parse(li.lock.timestamp) / 1000);
}

/** Absent for gzip, so the keys of gzip layers cached before zstd existed still match. */
function compressionKey(compression: LayerCompression | undefined): { compression?: 'zstd' } {
  return compression === 'zstd' ? { compression: 'zstd' } : {};
}

/**
 * The chain's image layers, base first, each with its key and (when the cache has it) its hit.
 * `onMiss` is called as soon as a layer is known to need building, before the next one is looked up.
 */
export async function planImageLayers(chain: readonly LockedImage[], arch: string, opts: PlanOptions, onMiss?: (plan: ImageLayerPlan) => void): Promise<ImageLayerPlan[]> {
  // The package that supplies the certificates (ca-certificates), wherever it is in the chain: a layer
  // that generates from them (Java's trust store) has its bytes in its key.
  const certSupplier = supplierOf(chain.flatMap((li) => li.lock.architectures[arch]?.packages ?? []), 'certificates');
  const plans: ImageLayerPlan[] = [];
  let lowerKey = '';
  for (let i = 0; i < chain.length; i++) {
    const li = chain[i]!;
    const pkgs = li.lock.architectures[arch]?.packages;
    if (pkgs === undefined) {
      throw new DistillError('LOCK_INVALID', `${li.lockPath} has no ${arch} packages`, { hint: `add ${arch} to the architectures of ${li.definition.file} and relock` });
    }
    const mtime = layerTimestamp(li, opts.sourceDateEpoch);
    const accountsChanged = i === 0 || li.definition.accounts !== li.definition.base?.accounts;
    const borrowed = li.lock.architectures[arch]?.borrow ?? [];
    const needsCerts = needsSupplyFromElsewhere(pkgs.map((p) => p.name), 'certificates');
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
      certs: needsCerts ? (certSupplier?.sha256 ?? null) : null,
      ...compressionKey(opts.compression),
    });
    lowerKey = key;
    const hit = await opts.cache?.get(key);
    const plan: ImageLayerPlan = { li, index: i, pkgs, borrowed, key, mtime, isRoot: i === 0, accountsChanged, ...(hit ? { hit } : {}) };
    if (!hit) onMiss?.(plan);
    plans.push(plan);
  }
  return plans;
}

/** The debug layer (BusyBox) of the image whose lock has debug packages, keyed on that image's layer. */
export async function planDebugLayer(owner: LockedImage, arch: string, ownerKey: string, opts: PlanOptions): Promise<DebugLayerPlan> {
  const pkgs = owner.lock.architectures[arch]!.debug!;
  const mtime = layerTimestamp(owner, opts.sourceDateEpoch);
  const key = layerKey({ kind: 'debug', arch, mtime, lower: ownerKey, packages: pkgs.map((p) => [p.name, p.sha256]), ...compressionKey(opts.compression) });
  const hit = await opts.cache?.get(key);
  return { owner, pkgs, key, mtime, ...(hit ? { hit } : {}) };
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
export async function filesKey(li: LockedImage): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const f of li.definition.files) {
    const { source, ...rest } = f;
    out.push(source === undefined ? rest : { ...rest, source: await hashFile(source) });
  }
  return out;
}
