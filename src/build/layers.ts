// The layers of one image chain for one architecture: one layer per image (the base's first, so a base
// layer is byte-identical in every image built on it), plus the debug layer (BusyBox at /busybox).
// Planning (plan.ts) keys every layer and looks it up in the layer cache; the misses start unpacking at
// once; assembly (assemble.ts) then builds each missing layer's tree in chain order — each layer's
// conflict checks need the layers below — with the generators of src/rootfs/generate/, and writes it.
import { join } from 'node:path';
import type { ContentStore } from '../cas/store.js';
import type { Variant } from '../definition/types.js';
import type { OnProgress } from '../events.js';
import { layerSuffix, type LayerCompression } from '../layer/compression.js';
import { startGzipWorkers, type GzipOptions } from '../layer/gzip.js';
import type { LayerResult } from '../layer/write-layer.js';
import type { LockedImage } from '../lock/load.js';
import type { LockedPackage } from '../lock/lockfile.js';
import type { LayerChanges } from '../provenance/sbom.js';
import type { LayerTree, TreeEntry } from '../rootfs/tree.js';
import { assembleDebugLayer, assembleImageLayer, CertificateSource, prefetch, Slots, stageAll, writeTree, type AssemblyContext } from './assemble.js';
import { entriesOf, indexOf, LayerCache, type LayerSourceKind, type RemoteLayerCache } from './layer-cache.js';
import { planDebugLayer, planImageLayers, type LayerHit } from './plan.js';
import type { StagedPackage } from './stage.js';

export { Slots } from './assemble.js';
export { layerTimestamp } from './plan.js';

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
  /** Called with each layer as soon as its blob is complete in the content store (see BuildOptions.onLayerBlob). */
  onLayerBlob?: (blob: LayerBlob) => void;
}

/** A layer blob complete in the content store: its digest, size and file. */
export interface LayerBlob {
  digest: string;
  size: number;
  path: string;
}

/** The history entry of an image's layer (in the config; the join recomputes it from the locks). */
export function imageLayerCreatedBy(li: LockedImage, pkgs: readonly LockedPackage[]): string {
  return `distill: ${li.definition.name} packages ${pkgs.map((p) => p.name).join(' ')}`;
}

export function debugLayerCreatedBy(pkgs: readonly LockedPackage[]): string {
  return `distill: debug layer ${pkgs.map((p) => p.name).join(' ')} at /busybox`;
}

export async function buildChainLayers(chain: readonly LockedImage[], arch: string, opts: LayerBuildOptions): Promise<ChainLayers> {
  const ctx: AssemblyContext = {
    store: opts.store,
    stageDir: opts.stageDir,
    slots: opts.slots ?? new Slots(opts.concurrency ?? 2),
    memory: opts.memory ?? { budget: 128 * 1024 * 1024, used: 0 },
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  };
  const cache = opts.noCache ? undefined : new LayerCache(opts.store, opts.remoteCache);
  const writer = new LayerWriter(opts, cache, arch);
  const planOpts = { ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}), ...(opts.compression ? { compression: opts.compression } : {}), ...(cache ? { cache } : {}) };
  // Pass 1: every layer's key and cache lookup; each miss queues its packages for unpacking, and they
  // start once the whole chain is planned, largest first (see Slots), so that xz runs while earlier
  // layers compress.
  const staging = new Map<number, () => Promise<StagedPackage[]>>();
  const release = ctx.slots.hold();
  let plans: Awaited<ReturnType<typeof planImageLayers>>;
  try {
    plans = await planImageLayers(chain, arch, planOpts, (p) => staging.set(p.index, prefetch(p.pkgs, p.borrowed, ctx, p.li)));
  } finally {
    release();
  }
  // Layers will be written: the gzip workers start now, while the packages unpack, not at the first block.
  if (plans.some((p) => !p.hit) && (opts.compression ?? 'gzip') === 'gzip') startGzipWorkers(opts.gzip);
  // Pass 2: assemble in order (each layer's conflict checks need the layers below); each layer is
  // written (tar, compression) while the next one is assembled, so layers compress side by side. The
  // bytes of a layer depend on its tree alone, never on what else is being written. On a failure, let
  // the unpacking and writing already under way finish before the caller removes its directories.
  const certificates = CertificateSource.forChain(chain, arch, ctx);
  const lower = new Map<string, TreeEntry>();
  const layers: Promise<BuiltLayer>[] = [];
  let debug: Promise<BuiltLayer> | undefined;
  const settle = <T>(p: Promise<T>): Promise<T> => {
    p.catch(() => {}); // awaited below; never unhandled in between
    return p;
  };
  try {
    for (const plan of plans) {
      const { li, pkgs, key, mtime } = plan;
      const createdBy = imageLayerCreatedBy(li, pkgs);
      if (plan.hit) {
        layers.push(settle(writer.reuse(plan.hit, key, li.definition.name, mtime, createdBy, pkgs)));
        for (const e of entriesOf(plan.hit)) lower.set(e.path, e);
      } else {
        const started = performance.now();
        const staged = await staging.get(plan.index)!();
        // Once assembled, the layer's bodies are held by its tree alone, and freed when it is written.
        staging.delete(plan.index);
        const tree = await assembleImageLayer({ li, arch, staged, lower, mtime, isRoot: plan.isRoot, accountsChanged: plan.accountsChanged, certificates }, ctx);
        layers.push(settle(writer.write(tree, `layer-${plan.index}-${arch}`, key, li.definition.name, mtime, createdBy, pkgs, started)));
        for (const e of tree.values()) lower.set(e.path, withoutBytes(e));
      }
      // The debug layer sits on the image that locks it, built against that image's tree only: every
      // image built on it then shares the same debug layer bytes.
      if (li.lock.architectures[arch]?.debug && opts.variants.some((v) => v.startsWith('debug'))) {
        const d = await planDebugLayer(li, arch, key, planOpts);
        const image = `${li.definition.name} (debug)`;
        const createdByDebug = debugLayerCreatedBy(d.pkgs);
        if (d.hit) debug = settle(writer.reuse(d.hit, d.key, image, d.mtime, createdByDebug, d.pkgs));
        else {
          const tree = await assembleDebugLayer(li, d.pkgs, await stageAll(d.pkgs, ctx, li), new Map(lower), d.mtime);
          debug = settle(writer.write(tree, `debug-${arch}`, d.key, image, d.mtime, createdByDebug, d.pkgs));
        }
      }
    }
    const written = await Promise.all(layers);
    const debugLayer = await debug;
    return { arch, layers: written, ...(debugLayer ? { debug: debugLayer } : {}) };
  } catch (e) {
    await Promise.allSettled([...staging.values()].map((s) => s()));
    await Promise.allSettled([...layers, ...(debug ? [debug] : [])]);
    throw e;
  }
}

/**
 * A lower layer's entry as the layers above need it: conflict checks compare size and sha256, never
 * bytes. Dropping in-memory bodies here lets a written layer's files be freed while the layers above
 * are still assembled and written (java's peak RSS), as a cached layer's entries never had them.
 */
function withoutBytes(e: TreeEntry): TreeEntry {
  return e.body?.kind === 'bytes' ? { ...e, body: { kind: 'bytes', data: NO_BYTES, sha256: e.body.sha256 } } : e;
}
const NO_BYTES = Buffer.alloc(0);

/** Writes assembled trees as layer blobs and takes cached ones, recording both in the cache and the progress. */
class LayerWriter {
  constructor(
    private readonly opts: LayerBuildOptions,
    private readonly cache: LayerCache | undefined,
    private readonly arch: string,
  ) {}

  /** A BuiltLayer's compression field: set only for zstd, so gzip layers look as they always have. */
  private compressed(): { compression?: LayerCompression } {
    return this.opts.compression === 'zstd' ? { compression: 'zstd' } : {};
  }

  /** A layer from the cache. History and names come from this build's plan, never from whichever image first cached it. */
  async reuse(hit: LayerHit, key: string, image: string, mtime: number, createdBy: string, pkgs: LockedPackage[]): Promise<BuiltLayer> {
    if (hit.source === 'local cache') await this.cache!.share(key, hit.path, hit);
    const { entries: _e, ...found } = hit;
    this.opts.onLayerBlob?.({ digest: hit.digest, size: hit.size, path: hit.path });
    this.opts.onProgress?.({ type: 'layer-written', image, arch: this.arch, digest: hit.digest, size: hit.size, uncompressedSize: hit.uncompressedSize, seconds: 0, source: hit.source });
    return { ...found, image, createdBy, createdAt: mtime, packages: pkgs, ...this.compressed() };
  }

  /**
   * Write a tree (named `<name>.tar.gz` or `.tar.zst` in outDir), then move it into the layer cache, or
   * without one into the content store (the model's blobs must outlive the build's work directory).
   */
  async write(tree: LayerTree, name: string, key: string, image: string, mtime: number, createdBy: string, pkgs: LockedPackage[], started?: number): Promise<BuiltLayer> {
    const compression = this.opts.compression ?? 'gzip';
    const file = join(this.opts.outDir, `${name}${layerSuffix(compression)}`);
    const result = await writeTree(tree, file, mtime, this.opts.gzip, compression);
    const path = this.cache
      ? await this.cache.put(key, file, { digest: result.digest, diffId: result.diffId, size: result.size, uncompressedSize: result.uncompressedSize, entries: indexOf(tree.values()) })
      : await this.opts.store.adopt({ sha256: result.digest.slice('sha256:'.length), size: result.size, what: `layer ${result.digest}` }, file);
    this.opts.onLayerBlob?.({ digest: result.digest, size: result.size, path });
    const seconds = started === undefined ? 0 : (performance.now() - started) / 1000;
    this.opts.onProgress?.({ type: 'layer-written', image, arch: this.arch, digest: result.digest, size: result.size, uncompressedSize: result.uncompressedSize, seconds, source: 'built' });
    return { ...result, path, image, createdAt: mtime, createdBy, packages: pkgs, source: 'built', ...this.compressed() };
  }
}
