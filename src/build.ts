// `distill build`: from a fresh lock (and its bases'), the .debs in the cache, and nothing else, to
// OCI images — every variant, every architecture — as the image model (an ImageIndex per variant, its
// Images, their SBOMs and the build's SLSA provenance), every blob in the content store. Writing them
// anywhere is publish's (src/publish.ts: layout, archive, registry, signatures); `outDir`/`tarFile`
// here are a shorthand for its local sinks (sinks/build-outputs.ts), kept for library callers.
// The one module that knows every build stage: definition → lock → cache → rootfs → layers → images.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchDebs } from './fetch/debs.js';
import { ContentStore, cacheIo } from './cas/store.js';
import { DerivedCache } from './cas/derived.js';
import { checkOutputTargets, writeBuildOutputs, type BuildOutputs } from './sinks/build-outputs.js';
import type { MirrorInputs } from './debian/mirrors.js';
import { ALL_VARIANTS, type Variant } from './definition/types.js';
import { needsDebugLayer, variantSpec } from './definition/variants.js';
import type { Digest } from './digest.js';
import { DistillError } from './errors.js';
import { DEFLATE_IMPLEMENTATION } from './layer/deflate.js';
import { DEFAULT_BLOCK_SIZE, DEFAULT_LEVEL } from './layer/gzip.js';
import { LAYER_COMPRESSIONS, type LayerCompression } from './layer/compression.js';
import { ZSTD_IMPLEMENTATION, ZSTD_LEVEL } from './layer/zstd.js';
import type { OnProgress } from './events.js';
import { loadLockChain, readChainTexts } from './lock/load.js';
import { debianArchToPlatform, platformString } from './oci/platform.js';
import type { BuiltImage } from './oci/image.js';
import type { BuiltIndex } from './oci/index.js';
import { makeVariants, QUALIFIED_REPOSITORY, type ImageAnnotations } from './build/images.js';
import { buildProvenance } from './provenance/provenance.js';
import { cyclonedxFromSpdx } from './provenance/cyclonedx.js';
import { buildSbom, licenseCoverageOf, scanLayers, type LayerChanges, type ScannedLayers, type SpdxDocument } from './provenance/sbom.js';
import { sha256Hex } from './digest.js';
import { canonicalJson } from './json.js';
import { checkSourceDateEpoch, rfc3339 } from './lock/time.js';
import { DISTILL_VERSION } from './version.js';
import { buildChainLayers, layerTimestamp, type ChainLayers, type LayerBlob } from './build/layers.js';
import type { RemoteLayerCache } from './build/layer-cache.js';
import { prestartStageWorker } from './build/stage-pool.js';

export interface BuildOptions {
  cacheDir: string;
  /** Where to fetch .debs missing from the cache. */
  mirrors?: MirrorInputs;
  /** Also write an OCI layout here (publish()'s `layout`, checked before any work). */
  outDir?: string;
  /** Also write a docker archive (docker/podman load) here (publish()'s `archive`). */
  tarFile?: string;
  /**
   * Called once the definition and locks are read and the options checked, before any fetch or
   * build work: a caller's own checks of where the result will go (publish's targets).
   */
  beforeWork?: () => Promise<void>;
  /** Narrow the definition's variants. */
  variants?: readonly Variant[];
  /** Narrow the architectures: Debian names (amd64) or OCI platforms (linux/arm64/v8). */
  platforms?: readonly string[];
  /** SOURCE_DATE_EPOCH: the one timestamp of the build; default each lock's own. */
  sourceDateEpoch?: number;
  /** Packages unpacked at once. */
  concurrency?: number;
  /** gzip worker threads (0 = inline); the bytes do not depend on it. */
  gzipWorkers?: number;
  /** Layer compression: gzip (default) or zstd (OCI tar+zstd). Part of the layers' cache keys and the provenance. */
  compression?: LayerCompression;
  annotations?: ImageAnnotations;
  onProgress?: OnProgress;
  /** Neither reuse nor record finished layers (the layer cache lives in cacheDir). */
  noLayerCache?: boolean;
  /** Who publishes the image: the SBOMs' supplier of the image and an Organization creator. */
  organization?: string;
  /** Which SBOMs to write beside each image (default both). */
  sbomFormats?: readonly SbomFormat[];
  /** A layer cache shared through a registry (build --cache-repo), after the local one. */
  remoteLayerCache?: RemoteLayerCache;
  /**
   * Called with each layer (built or taken from a cache) as soon as its blob is complete in the
   * content store, while the rest of the build goes on: to start copying or sending it early
   * (buildAndPublish copies a layout's layers in this way). It must not throw; the blob is the
   * build's and must not be changed.
   */
  onLayerBlob?: (blob: LayerBlob) => void;
}

export type SbomFormat = 'spdx' | 'cyclonedx';

export interface BuiltManifest {
  arch: string;
  platform: string;
  digest: Digest;
  config: Digest;
  layers: { digest: Digest; diffId: Digest; size: number; image: string }[];
}

/** What a build made, as JSON: digests, SBOM coverage, the provenance. */
export interface BuildResult {
  image: string;
  variants: { variant: Variant; index: Digest; manifests: BuiltManifest[] }[];
  /** The SLSA provenance statement of this build (published as <layout>/attestations/provenance.intoto.json and attested with a key). */
  provenance?: object;
  /** The SBOMs (published in <layout>/attestations), with their licence coverage. */
  sboms?: { variant: Variant; arch: string; files: string[]; licenses: { packages: number; declared: number; undetermined: string[] } }[];
  /**
   * The images themselves (the model; blobs in the content store), for publish(). Not enumerable:
   * the result stays a JSON summary.
   */
  readonly model: BuildModel;
}

/** One variant of a build: its multi-platform index and each platform's image. */
export interface BuiltVariant {
  variant: Variant;
  index: BuiltIndex;
  /** arch → the platform image (the index's images, by Debian architecture). */
  images: ReadonlyMap<string, BuiltImage>;
}

export interface BuiltSbom {
  variant: Variant;
  arch: string;
  format: SbomFormat;
  /** Its name under attestations/ in a layout. */
  file: string;
  json: string;
}

/** The build's images as the image model, with what is attested about them. */
export interface BuildModel {
  image: string;
  variants: readonly BuiltVariant[];
  /** Every SBOM, per variant, platform and format. */
  sboms: readonly BuiltSbom[];
  /** The SLSA provenance statement ({_type, subject, predicateType, predicate}). */
  provenance: { subject: { name: string; digest: { sha256: string } }[]; predicate: object };
  /** The images' timestamp, in seconds (the docker archive's mtimes). */
  created: number;
}

/** A build's local outputs: the images and, beside them in a layout, attestations/ (provenance, SBOMs). */
export function buildOutputs(m: BuildModel): BuildOutputs {
  return {
    image: m.image,
    variants: m.variants,
    created: m.created,
    files: [
      ...m.sboms.map((s) => ({ path: join(ATTESTATIONS_DIR, s.file), data: s.json })),
      { path: join(ATTESTATIONS_DIR, PROVENANCE_FILE), data: JSON.stringify(m.provenance, null, 2) + '\n' },
    ],
  };
}

export const ATTESTATIONS_DIR = 'attestations';
/** Every setting that can change bytes, as the provenance records them (the join records the same). */
export const BUILD_SETTINGS = { gzip: { level: DEFAULT_LEVEL, blockSize: DEFAULT_BLOCK_SIZE, implementation: DEFLATE_IMPLEMENTATION }, mergedUsr: true, tarFormat: 'ustar+pax, no record padding' };
/** The settings of a build with this compression: gzip's are BUILD_SETTINGS, unchanged; zstd's name zstd instead. */
export function buildSettings(compression: LayerCompression = 'gzip'): Record<string, unknown> {
  if (compression === 'gzip') return BUILD_SETTINGS;
  const { gzip: _g, ...rest } = BUILD_SETTINGS;
  return { compression: 'zstd', zstd: { level: ZSTD_LEVEL, implementation: ZSTD_IMPLEMENTATION }, ...rest };
}
/**
 * Bumped whenever what an SBOM holds changes within one distill version (2: OS package, distro and
 * upstream qualifiers, DEP-5 licences), so that a cache filled by an earlier build is not served.
 */
const SBOM_GENERATION = 2;
export const PROVENANCE_FILE = 'provenance.intoto.json';
export const sbomFile = (variant: string, arch: string): string => `sbom-${variant}-${arch}.spdx.json`;
export const cyclonedxFile = (variant: string, arch: string): string => `sbom-${variant}-${arch}.cdx.json`;

export async function buildImage(definitionFile: string, opts: BuildOptions): Promise<BuildResult> {
  const targets = { ...(opts.outDir !== undefined ? { layout: opts.outDir } : {}), ...(opts.tarFile !== undefined ? { archive: opts.tarFile } : {}) };
  const result = await build(definitionFile, {
    ...opts,
    // Outputs that exist as the wrong kind of thing are refused before any work is done.
    beforeWork: async () => {
      await checkOutputTargets(targets);
      await opts.beforeWork?.();
    },
  });
  if (targets.layout !== undefined || targets.archive !== undefined) await writeBuildOutputs(buildOutputs(result.model), targets);
  return result;
}

async function build(definitionFile: string, opts: BuildOptions): Promise<BuildResult> {
  if (opts.sourceDateEpoch !== undefined) checkSourceDateEpoch(opts.sourceDateEpoch);
  const startedOn = new Date();
  if (opts.annotations?.baseRepository !== undefined && !QUALIFIED_REPOSITORY.test(opts.annotations.baseRepository.replace(/\/+$/, ''))) {
    throw new DistillError('USAGE', `--base-repository ${JSON.stringify(opts.annotations.baseRepository)} is not a fully qualified repository`, {
      hint: 'name the registry and the path the base images are pushed under, e.g. registry.example/distill (no tag)',
    });
  }
  if (opts.compression !== undefined && !LAYER_COMPRESSIONS.includes(opts.compression)) {
    throw new DistillError('USAGE', `--compression ${JSON.stringify(opts.compression)} is not a layer compression distill writes`, { hint: `use ${LAYER_COMPRESSIONS.join(' or ')}` });
  }
  // A build that will unpack packages starts its staging worker now, while the locks are read and the
  // cache checked (a layer-cache build may need none: it starts one on its first miss).
  if (opts.noLayerCache) prestartStageWorker();
  const chain = await loadLockChain(definitionFile);
  const texts = await readChainTexts(chain, 'build');
  const top = chain[chain.length - 1]!;
  const def = top.definition;
  const arches = selectArchitectures(Object.keys(top.lock.architectures).sort(), opts.platforms);
  const variants = ALL_VARIANTS.filter((v) => def.variants.includes(v) && (opts.variants === undefined || opts.variants.includes(v)));
  if (variants.length === 0) {
    throw new DistillError('USAGE', `${def.name} builds none of the variants asked for (it has ${def.variants.join(', ')})`, { hint: 'check --variant' });
  }
  if (needsDebugLayer(variants) && !chain.some((li) => arches.every((a) => li.lock.architectures[a]?.debug))) {
    throw new DistillError('BUILD_FAILED', `${def.name}: the debug variants need debug packages, but no image in its chain locks any`, {
      hint: 'add `debug: {packages: [busybox-static]}` to the root image definition and relock, or build --variant latest,nonroot',
    });
  }
  await opts.beforeWork?.();
  const store = new ContentStore(opts.cacheDir);
  await store.prepare();
  const fetchAll = (cached: 'verify' | 'on-read') =>
    fetchDebs(store, chain.map((li) => li.lock), {
      architectures: arches,
      cached,
      ...(opts.mirrors ? { mirrors: opts.mirrors } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
  // A cached .deb is not hashed here: staging reads it through store.open, which hashes it as it flows
  // and fails the package unless every byte matches the lock's sha256 — nothing of it reaches a layer
  // before that. (Rehashing them all first cost java ~0.1 s of main thread before any staging began.)
  const deferred = (await fetchAll('on-read')).deferred ?? [];
  const work = join(opts.cacheDir, 'build', randomBytes(6).toString('hex'));
  const sbomCache = new DerivedCache(store, 'sboms');
  const stageDir = join(work, 'stage');
  const layerDir = join(work, 'layers');
  await mkdir(stageDir, { recursive: true }).catch((e: unknown) => { throw cacheIo(opts.cacheDir, e); });
  await mkdir(layerDir, { recursive: true }).catch((e: unknown) => { throw cacheIo(opts.cacheDir, e); });
  let cleanup: Promise<void> | undefined;
  try {
    const buildAll = async (): Promise<ChainLayers[]> => {
      const perArch: ChainLayers[] = [];
      for (const arch of arches) {
        perArch.push(
          await buildChainLayers(chain, arch, {
            store,
            stageDir,
            outDir: layerDir,
            variants,
            ...(opts.noLayerCache ? { noCache: true } : {}),
            ...(opts.remoteLayerCache ? { remoteCache: opts.remoteLayerCache } : {}),
            ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
            ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
            ...(opts.gzipWorkers !== undefined ? { gzip: { workers: opts.gzipWorkers } } : {}),
            ...(opts.compression !== undefined ? { compression: opts.compression } : {}),
            ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
            ...(opts.onLayerBlob ? { onLayerBlob: opts.onLayerBlob } : {}),
          }),
        );
        // The next architecture stages afresh; after the last, the whole work directory goes at once (below).
        if (arch !== arches[arches.length - 1]) {
          await rm(stageDir, { recursive: true, force: true }).catch(() => {});
          await mkdir(stageDir, { recursive: true });
        }
      }
      return perArch;
    };
    let perArch: ChainLayers[];
    try {
      perArch = await buildAll();
    } catch (e) {
      // A cached .deb damaged on disk fails its staging with whatever its damage causes first (a digest
      // mismatch, a malformed archive, a control file not the lock's). Those taken unhashed are checked
      // now: a corrupt one is removed (store.verify), fetched again (verified) and the layers built once
      // more, as if the corrupt entry had been found up front. If they are all intact, the error is the
      // build's own.
      let corrupt = false;
      for (const d of deferred) if (!(await store.verify(d))) corrupt = true;
      if (!corrupt) throw e;
      await fetchAll('verify');
      for (const dir of [stageDir, layerDir]) {
        await rm(dir, { recursive: true, force: true }).catch(() => {});
        await mkdir(dir, { recursive: true }).catch((err: unknown) => { throw cacheIo(opts.cacheDir, err); });
      }
      perArch = await buildAll();
    }
    // Every layer is in the layer cache or (--no-layer-cache) the content store by now, each moved
    // there as it was written (LayerWriter): the model's blobs outlive this build's work directory.
    // Nothing in the work directory is needed any more (the staged files — java's are hundreds of MB —
    // and the emptied layer directory): it is removed while the images, SBOMs and provenance are made.
    cleanup = rm(work, { recursive: true, force: true }).catch(() => {});
    const built = makeVariants(chain, perArch, variants, opts.sourceDateEpoch, opts.annotations ?? {});
    const result: Omit<BuildResult, 'model'> = {
      image: def.name,
      variants: built.map((v) => ({
        variant: v.variant,
        index: v.index.index.descriptor.digest,
        manifests: [...v.images].map(([arch, img]) => {
          const layers = perArch.find((p) => p.arch === arch)!;
          const used = [...layers.layers, ...(layers.debug ? [layers.debug] : [])];
          return {
            arch,
            platform: platformString(debianArchToPlatform(arch)),
            digest: img.manifest.descriptor.digest,
            config: img.config.descriptor.digest,
            layers: img.layers.map((l) => {
              const b = used.find((u) => u.digest === l.descriptor.digest)!;
              return { digest: b.digest, diffId: b.diffId, size: b.size, image: b.image };
            }),
          };
        }),
      })),
    };
    for (const v of result.variants) for (const m of v.manifests) opts.onProgress?.({ type: 'image-written', image: def.name, variant: v.variant, arch: m.arch, digest: m.digest });
    // The distribution the images hold (os-release, as the SBOMs read it): the provenance's purls name it.
    let distro: string | undefined;
    const sboms: BuiltSbom[] = [];
    // Cache writes (two fsynced files each) complete while the rest is made; awaited before returning.
    const stored: Promise<void>[] = [];
    {
      // An SPDX SBOM per variant and platform, read from the layers themselves (what is really there).
      // It depends only on the manifest (and so its layers) and the inputs in its key: a rebuild with
      // nothing changed takes it from the cache; variants with the same layers share one scan.
      const scans = new Map<string, Promise<ScannedLayers>>();
      // Layers written by this build carry what the SBOM reads from them; cached ones are read again.
      const recorded = new Map<string, LayerChanges>();
      for (const l of perArch.flatMap((p) => [...p.layers, ...(p.debug ? [p.debug] : [])])) if (l.sbomChanges) recorded.set(l.path, l.sbomChanges);
      for (const v of result.variants) {
        for (const m of v.manifests) {
          const layers = perArch.find((p) => p.arch === m.arch)!;
          const paths = [...layers.layers.map((l) => l.path), ...(variantSpec(v.variant).debug && layers.debug ? [layers.debug.path] : [])];
          const packages = chain.flatMap((li) => [...(li.lock.architectures[m.arch]?.packages ?? []), ...(li.lock.architectures[m.arch]?.borrow ?? []), ...(li.lock.architectures[m.arch]?.debug ?? [])]);
          const key = sha256Hex(canonicalJson({ distill: DISTILL_VERSION, sbom: SBOM_GENERATION, image: def.name, variant: v.variant, manifest: m.digest, packages: packages.map((p) => [p.name, p.sha256]), organization: opts.organization ?? null }));
          const formats = opts.sbomFormats ?? ['spdx', 'cyclonedx'];
          const target = join(ATTESTATIONS_DIR, sbomFile(v.variant, m.arch));
          // The CycloneDX BOM is a function of the SPDX document: derived, never cached separately.
          const write = async (json: string): Promise<void> => {
            const doc = JSON.parse(json) as SpdxDocument;
            const os = doc.packages.find((p) => p.primaryPackagePurpose === 'OPERATING-SYSTEM');
            if (os?.versionInfo) distro ??= `${os.name}-${os.versionInfo}`;
            if (formats.includes('spdx')) sboms.push({ variant: v.variant, arch: m.arch, format: 'spdx', file: sbomFile(v.variant, m.arch), json });
            if (formats.includes('cyclonedx')) sboms.push({ variant: v.variant, arch: m.arch, format: 'cyclonedx', file: cyclonedxFile(v.variant, m.arch), json: cyclonedxFromSpdx(doc).json });
            const c = licenseCoverageOf(doc);
            (result.sboms ??= []).push({
              variant: v.variant,
              arch: m.arch,
              files: formats.map((f) => join(ATTESTATIONS_DIR, f === 'spdx' ? sbomFile(v.variant, m.arch) : cyclonedxFile(v.variant, m.arch))),
              licenses: { packages: c.packages, declared: c.declared, undetermined: c.undetermined },
            });
            opts.onProgress?.({ type: 'sbom-written', image: def.name, variant: v.variant, arch: m.arch, file: target, packages: c.packages, licenses: c.declared, undetermined: c.undetermined });
          };
          const hit = await sbomCache.get(key);
          if (hit !== undefined) {
            await write(hit.toString('utf8'));
            continue;
          }
          const scanKey = paths.join('\0');
          if (!scans.has(scanKey)) scans.set(scanKey, scanLayers(paths, recorded));
          const { json } = await buildSbom({
            image: def.name,
            variant: v.variant,
            platform: debianArchToPlatform(m.arch),
            manifestDigest: m.digest,
            created: rfc3339(new Date(layerTimestamp(top, opts.sourceDateEpoch) * 1000)),
            layers: paths,
            packages,
            toolVersion: DISTILL_VERSION,
            ...(opts.organization !== undefined ? { organization: opts.organization } : {}),
          }, await scans.get(scanKey)!);
          await write(json);
          const put = sbomCache.put(key, json);
          put.catch(() => {}); // awaited below; never unhandled in between
          stored.push(put);
        }
      }
    }
    result.provenance = buildProvenance({
      chain,
      texts,
      subjects: result.variants.flatMap((v) => [{ name: `${def.name}:${v.variant}`, digest: v.index }, ...v.manifests.map((m) => ({ name: `${def.name}:${v.variant}-${m.arch}`, digest: m.digest }))]),
      variants,
      platforms: arches,
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(opts.annotations?.source || opts.annotations?.revision ? { source: { ...(opts.annotations.source ? { repository: opts.annotations.source } : {}), ...(opts.annotations.revision ? { revision: opts.annotations.revision } : {}) } } : {}),
      ...(opts.annotations?.baseRepository !== undefined ? { baseRepository: opts.annotations.baseRepository } : {}),
      ...(distro !== undefined ? { distro } : {}),
      settings: buildSettings(opts.compression),
      invocationId: randomUUID(),
      startedOn,
      finishedOn: new Date(),
    });
    await Promise.all(stored);
    const model: BuildModel = {
      image: def.name,
      variants: built,
      sboms,
      provenance: result.provenance as BuildModel['provenance'],
      created: layerTimestamp(top, opts.sourceDateEpoch),
    };
    Object.defineProperty(result, 'model', { value: model, enumerable: false });
    return result as BuildResult;
  } finally {
    // Cleanup never replaces the build's own error.
    await (cleanup ?? rm(work, { recursive: true, force: true }).catch(() => {}));
  }
}

function selectArchitectures(available: string[], wanted: readonly string[] | undefined): string[] {
  if (wanted === undefined || wanted.length === 0) return available;
  const out: string[] = [];
  for (const w of wanted) {
    const match = available.find((a) => a === w || platformString(debianArchToPlatform(a)) === w || platformString(debianArchToPlatform(a)).startsWith(`${w}/`));
    if (match === undefined) {
      throw new DistillError('USAGE', `--platform ${w}: the image is locked for ${available.join(', ')} only`, { hint: 'use a Debian architecture name such as amd64 or an OCI platform such as linux/arm64/v8' });
    }
    if (!out.includes(match)) out.push(match);
  }
  return out.sort();
}
