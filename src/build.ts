// `distill build`: from a fresh lock (and its bases'), the .debs in the cache, and nothing else, to
// OCI images — every variant, every architecture — written to an OCI layout and/or a docker archive.
// The one module that knows every stage: definition → lock → cache → rootfs → layers → images → sinks.
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fetchDebs } from './fetch/debs.js';
import { ContentStore, cacheIo } from './cas/store.js';
import { DerivedCache } from './cas/derived.js';
import { checkOutputTarget, stageDirectory, stageFile, writeStagedFile, type StagedOutput } from './sinks/staged-output.js';
import type { MirrorInputs } from './debian/mirrors.js';
import { ALL_VARIANTS, type Variant } from './definition/types.js';
import type { Digest } from './digest.js';
import { DistillError } from './errors.js';
import type { OnProgress } from './events.js';
import { loadLockChain } from './lock/load.js';
import { debianArchToPlatform, platformString } from './oci/platform.js';
import { writeDockerArchive } from './sinks/docker-archive.js';
import { writeOciLayout, type LayoutRef } from './sinks/oci-layout.js';
import { makeVariants, type ImageAnnotations } from './build/images.js';
import { buildProvenance } from './provenance/provenance.js';
import { buildSbom, scanLayers, type ScannedLayers } from './provenance/sbom.js';
import { sha256Hex } from './digest.js';
import { canonicalJson } from './json.js';
import { rfc3339 } from './lock/lock.js';
import { DISTILL_VERSION } from './version.js';
import { buildChainLayers, layerTimestamp, type ChainLayers } from './build/layers.js';

export interface BuildOptions {
  cacheDir: string;
  /** Where to fetch .debs missing from the cache. */
  mirrors?: MirrorInputs;
  /** Write an OCI layout here. */
  outDir?: string;
  /** Write a docker archive (docker/podman load) here. */
  tarFile?: string;
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
  annotations?: ImageAnnotations;
  onProgress?: OnProgress;
  /** Neither reuse nor record finished layers (the layer cache lives in cacheDir). */
  noLayerCache?: boolean;
}

export interface BuiltManifest {
  arch: string;
  platform: string;
  digest: Digest;
  config: Digest;
  layers: { digest: Digest; diffId: Digest; size: number; image: string }[];
}

export interface BuildResult {
  image: string;
  variants: { variant: Variant; index: Digest; manifests: BuiltManifest[] }[];
  /** The SLSA provenance statement of this build (also written to <out>/attestations/provenance.intoto.json). */
  provenance?: object;
}

export const ATTESTATIONS_DIR = 'attestations';
export const PROVENANCE_FILE = 'provenance.intoto.json';
export const sbomFile = (variant: string, arch: string): string => `sbom-${variant}-${arch}.spdx.json`;

export async function buildImage(definitionFile: string, opts: BuildOptions): Promise<BuildResult> {
  const startedOn = new Date();
  if (opts.outDir === undefined && opts.tarFile === undefined) {
    throw new DistillError('USAGE', 'nowhere to write the image', { hint: 'pass --out DIR (an OCI layout) and/or --tar FILE (a docker archive)' });
  }
  const chain = await loadLockChain(definitionFile);
  // The texts the provenance records, read now — not after minutes of building, when an edit could
  // have slipped in — and checked against the digests the build used.
  const texts = await Promise.all(chain.map(async (li) => ({ definition: await readFile(li.definition.file, 'utf8'), lock: await readFile(li.lockPath, 'utf8') })));
  chain.forEach((li, i) => {
    if (sha256Hex(texts[i]!.definition) !== li.definition.sha256 || sha256Hex(texts[i]!.lock) !== li.lockSha256) {
      throw new DistillError('LOCK_STALE', `${li.definition.file} or its lock changed while the build started`, { hint: 'run the build again' });
    }
  });
  const top = chain[chain.length - 1]!;
  const def = top.definition;
  const arches = selectArchitectures(Object.keys(top.lock.architectures).sort(), opts.platforms);
  const variants = ALL_VARIANTS.filter((v) => def.variants.includes(v) && (opts.variants === undefined || opts.variants.includes(v)));
  if (variants.length === 0) {
    throw new DistillError('USAGE', `${def.name} builds none of the variants asked for (it has ${def.variants.join(', ')})`, { hint: 'check --variant' });
  }
  const needsDebug = variants.some((v) => v.startsWith('debug'));
  if (needsDebug && !chain.some((li) => arches.every((a) => li.lock.architectures[a]?.debug))) {
    throw new DistillError('BUILD_FAILED', `${def.name}: the debug variants need debug packages, but no image in its chain locks any`, {
      hint: 'add `debug: {packages: [busybox-static]}` to the root image definition and relock, or build --variant latest,nonroot',
    });
  }
  // Outputs that exist as the wrong kind of thing are refused before any work is done.
  if (opts.outDir !== undefined) await checkOutputTarget(opts.outDir, 'dir');
  if (opts.tarFile !== undefined) await checkOutputTarget(opts.tarFile, 'file');
  const store = new ContentStore(opts.cacheDir);
  await store.prepare();
  await fetchDebs(store, chain.map((li) => li.lock), {
    architectures: arches,
    ...(opts.mirrors ? { mirrors: opts.mirrors } : {}),
    ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
  });
  const work = join(opts.cacheDir, 'build', randomBytes(6).toString('hex'));
  const sbomCache = new DerivedCache(store, 'sboms');
  const stageDir = join(work, 'stage');
  const layerDir = join(work, 'layers');
  await mkdir(stageDir, { recursive: true }).catch((e: unknown) => { throw cacheIo(opts.cacheDir, e); });
  await mkdir(layerDir, { recursive: true }).catch((e: unknown) => { throw cacheIo(opts.cacheDir, e); });
  // Written beside their targets, renamed into place only when everything below succeeded.
  let outStage: StagedOutput | undefined;
  let tarStage: StagedOutput | undefined;
  try {
    const perArch: ChainLayers[] = [];
    for (const arch of arches) {
      perArch.push(
        await buildChainLayers(chain, arch, {
          store,
          stageDir,
          outDir: layerDir,
          variants,
          ...(opts.noLayerCache ? { noCache: true } : {}),
          ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
          ...(opts.concurrency !== undefined ? { concurrency: opts.concurrency } : {}),
          ...(opts.gzipWorkers !== undefined ? { gzip: { workers: opts.gzipWorkers } } : {}),
          ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        }),
      );
      await rm(stageDir, { recursive: true, force: true }).catch(() => {});
      await mkdir(stageDir, { recursive: true });
    }
    const built = makeVariants(chain, perArch, variants, opts.sourceDateEpoch, opts.annotations ?? {});
    if (opts.outDir !== undefined) {
      outStage = await stageDirectory(opts.outDir);
      const refs: LayoutRef[] = [];
      for (const v of built) {
        refs.push({ name: v.variant, target: v.index });
        for (const [arch, img] of v.images) refs.push({ name: `${v.variant}-${arch}`, target: img });
      }
      await writeOciLayout(outStage.path, refs);
    }
    if (opts.tarFile !== undefined) {
      tarStage = stageFile(opts.tarFile);
      await writeDockerArchive(
        tarStage.path,
        built.flatMap((v) => [...v.images].map(([arch, image]) => ({ image, repoTags: [`distill/${def.name}:${v.variant}-${arch}`] }))),
        { mtime: layerTimestamp(top, opts.sourceDateEpoch) },
      );
    }
    const result: BuildResult = {
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
    result.provenance = buildProvenance({
      chain,
      texts,
      subjects: result.variants.flatMap((v) => [{ name: `${def.name}:${v.variant}`, digest: v.index }, ...v.manifests.map((m) => ({ name: `${def.name}:${v.variant}-${m.arch}`, digest: m.digest }))]),
      variants,
      platforms: arches,
      ...(opts.sourceDateEpoch !== undefined ? { sourceDateEpoch: opts.sourceDateEpoch } : {}),
      ...(opts.annotations?.source || opts.annotations?.revision ? { source: { ...(opts.annotations.source ? { repository: opts.annotations.source } : {}), ...(opts.annotations.revision ? { revision: opts.annotations.revision } : {}) } } : {}),
      settings: { gzip: { level: 6, blockSize: 1024 * 1024, implementation: 'pako 3.0.3' }, mergedUsr: true, tarFormat: 'ustar+pax, no record padding' },
      invocationId: randomUUID(),
      startedOn,
      finishedOn: new Date(),
    });
    if (outStage !== undefined) {
      const outDir = outStage.path;
      await writeStagedFile(join(outDir, ATTESTATIONS_DIR, PROVENANCE_FILE), JSON.stringify(result.provenance, null, 2) + '\n');
      // An SPDX SBOM per variant and platform, read from the layers themselves (what is really there).
      // It depends only on the manifest (and so its layers) and the inputs in its key: a rebuild with
      // nothing changed takes it from the cache; variants with the same layers share one scan.
      const scans = new Map<string, Promise<ScannedLayers>>();
      for (const v of result.variants) {
        for (const m of v.manifests) {
          const layers = perArch.find((p) => p.arch === m.arch)!;
          const paths = [...layers.layers.map((l) => l.path), ...(v.variant.startsWith('debug') && layers.debug ? [layers.debug.path] : [])];
          const packages = chain.flatMap((li) => [...(li.lock.architectures[m.arch]?.packages ?? []), ...(li.lock.architectures[m.arch]?.debug ?? [])]);
          const key = sha256Hex(canonicalJson({ distill: DISTILL_VERSION, image: def.name, variant: v.variant, manifest: m.digest, packages: packages.map((p) => [p.name, p.sha256]) }));
          const target = join(outDir, ATTESTATIONS_DIR, sbomFile(v.variant, m.arch));
          const hit = await sbomCache.get(key);
          if (hit !== undefined) {
            await writeStagedFile(target, hit);
            continue;
          }
          const scanKey = paths.join('\0');
          if (!scans.has(scanKey)) scans.set(scanKey, scanLayers(paths));
          const { json } = await buildSbom({
            image: def.name,
            variant: v.variant,
            platform: debianArchToPlatform(m.arch),
            manifestDigest: m.digest,
            created: rfc3339(new Date(layerTimestamp(top, opts.sourceDateEpoch) * 1000)),
            layers: paths,
            packages,
            toolVersion: DISTILL_VERSION,
          }, await scans.get(scanKey)!);
          await writeStagedFile(target, json);
          await sbomCache.put(key, json);
        }
      }
    }
    // Everything succeeded: the outputs appear now, the archive first (the layout is the larger swap).
    await tarStage?.commit();
    tarStage = undefined;
    await outStage?.commit();
    outStage = undefined;
    return result;
  } finally {
    await tarStage?.discard();
    await outStage?.discard();
    // Cleanup never replaces the build's own error.
    await rm(work, { recursive: true, force: true }).catch(() => {});
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
