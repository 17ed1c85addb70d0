// OCI images from built layers: one config and manifest per image of the chain, variant and
// architecture (the bases' manifests are made too, for the base.digest annotation), and one index per
// variant across architectures. Variants differ only in their config and the debug layer, as the
// variant table (definition/variants.ts) says.
import { createReadStream } from 'node:fs';
import { substituteArch, substituteVersions, type Variant } from '../definition/types.js';
import { DEBUG_PATH, DEBUG_SHELL, variantSpec } from '../definition/variants.js';
import { DistillError } from '../errors.js';
import type { Digest } from '../digest.js';
import type { LockedImage } from '../lock/load.js';
import { imageConfig, imageManifest, type BuiltImage, type LayerSource } from '../oci/image.js';
import { imageIndex, type BuiltIndex } from '../oci/index.js';
import {
  ANNOTATION_BASE_DIGEST,
  ANNOTATION_BASE_NAME,
  ANNOTATION_CREATED,
  ANNOTATION_REVISION,
  ANNOTATION_SOURCE,
  MEDIA_TYPE_LAYER_GZIP,
  MEDIA_TYPE_LAYER_ZSTD,
} from '../oci/media-types.js';
import { debianArchToPlatform } from '../oci/platform.js';
import { rfc3339 } from '../lock/time.js';
import type { BuiltLayer, ChainLayers } from './layers.js';
import { layerTimestamp } from './layers.js';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
export const SSL_CERT_FILE = '/etc/ssl/certs/ca-certificates.crt';

export interface ImageAnnotations {
  source?: string;
  revision?: string;
  /**
   * Where the base images are published: PREFIX/<base image name> (build --base-repository). A base
   * definition's own `repository` is used when this is not given.
   */
  baseRepository?: string;
}

/**
 * org.opencontainers.image.base.name for an image built on `base` (image-spec annotations: "fully
 * qualified reference"): the repository where the base is published, with the variant as tag — or
 * undefined when nothing says where that is. Never the push destination: an image's digest must not
 * depend on where it is pushed, and a bare "cc:latest" names nothing a consumer can pull.
 */
/** A fully qualified repository without tag or digest: a registry host (with a dot or a port, or localhost), then a path. */
export const QUALIFIED_REPOSITORY = /^(localhost|[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+|[A-Za-z0-9.-]+:[0-9]+)(:[0-9]+)?(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)+$/;

export function baseName(base: { name: string; repository?: string }, variant: string, annotations: ImageAnnotations): string | undefined {
  const repository = annotations.baseRepository !== undefined ? `${annotations.baseRepository.replace(/\/+$/, '')}/${base.name}` : base.repository;
  return repository === undefined ? undefined : `${repository}:${variant}`;
}

function layerSource(l: BuiltLayer): LayerSource {
  return {
    // image-spec 1.1 media-types.md: tar+gzip, or tar+zstd for build --compression zstd.
    descriptor: { mediaType: l.compression === 'zstd' ? MEDIA_TYPE_LAYER_ZSTD : MEDIA_TYPE_LAYER_GZIP, digest: l.digest, size: l.size },
    open: () => createReadStream(l.path),
    file: l.path,
  };
}

/** The image of chain[upto] for one variant and architecture. */
export function makeImage(
  chain: readonly LockedImage[],
  upto: number,
  layers: ChainLayers,
  variant: Variant,
  sourceDateEpoch: number | undefined,
  annotations: ImageAnnotations,
  baseDigest: Digest | undefined,
): BuiltImage {
  const li = chain[upto]!;
  const def = li.definition;
  const arch = layers.arch;
  const spec = variantSpec(variant);
  const debug = spec.debug;
  const own = layers.layers.slice(0, upto + 1);
  const all = debug && layers.debug ? [...own, layers.debug] : own;
  const created = rfc3339(new Date(layerTimestamp(li, sourceDateEpoch) * 1000));
  const versionOf = (pkg: string): string | undefined =>
    chain.slice(0, upto + 1).flatMap((c) => c.lock.architectures[arch]?.packages ?? []).find((p) => p.name === pkg)?.version;
  const sub = (s: string): string =>
    substituteVersions(substituteArch(s, arch), versionOf, (pkg) => {
      throw new DistillError('BUILD_FAILED', `${def.name} (${arch}): the config names the version of ${pkg}, which the image does not install`, { hint: 'use ${version:PKG} or ${java-version:PKG} with a package of the image' });
    });
  // PATH and SSL_CERT_FILE come first; a definition may set its own (debug variants still add /busybox).
  const path = def.config.env['PATH'] !== undefined ? sub(def.config.env['PATH']) : DEFAULT_PATH;
  const env = [
    `PATH=${path}${debug ? `:${DEBUG_PATH}` : ''}`,
    `SSL_CERT_FILE=${def.config.env['SSL_CERT_FILE'] !== undefined ? sub(def.config.env['SSL_CERT_FILE']) : SSL_CERT_FILE}`,
    ...Object.entries(def.config.env)
      .filter(([k]) => k !== 'PATH' && k !== 'SSL_CERT_FILE')
      .map(([k, v]) => `${k}=${sub(v)}`),
  ];
  const platform = debianArchToPlatform(arch);
  // As distroless's: a debug variant keeps the image's own entrypoint (python3, nodejs, java) and cmd;
  // an image without one (static, base, cc) gets the shell. `--entrypoint /busybox/sh` always works.
  const keepsEntrypoint = def.config.entrypoint !== undefined;
  const entrypoint = debug && !keepsEntrypoint ? [...DEBUG_SHELL] : def.config.entrypoint?.map(sub);
  const config = imageConfig({
    platform,
    created,
    env,
    user: spec.user,
    workingDir: spec.workdir ?? sub(def.config.workdir ?? '/'),
    ...(entrypoint ? { entrypoint } : {}),
    ...((!debug || keepsEntrypoint) && def.config.cmd ? { cmd: def.config.cmd.map(sub) } : {}),
    ...(Object.keys(def.config.labels).length ? { labels: Object.fromEntries(Object.entries(def.config.labels).map(([k, v]) => [k, sub(v)])) } : {}),
    diffIds: all.map((l) => l.diffId),
    history: all.map((l) => ({ created: rfc3339(new Date(Number(l.createdAt) * 1000)), createdBy: l.createdBy })),
  });
  const manifest = imageManifest(config.descriptor, all.map((l) => layerSource(l).descriptor), {
    [ANNOTATION_CREATED]: created,
    ...(annotations.source ? { [ANNOTATION_SOURCE]: annotations.source } : {}),
    ...(annotations.revision ? { [ANNOTATION_REVISION]: annotations.revision } : {}),
    ...(upto > 0 && baseDigest ? { [ANNOTATION_BASE_DIGEST]: baseDigest } : {}),
    ...(upto > 0 && baseDigest && baseName(chain[upto - 1]!.definition, variant, annotations) !== undefined ? { [ANNOTATION_BASE_NAME]: baseName(chain[upto - 1]!.definition, variant, annotations)! } : {}),
  });
  return { manifest, config, layers: all.map(layerSource), platform };
}

export interface VariantImages {
  variant: Variant;
  index: BuiltIndex;
  /** arch → the top image's single-platform image. */
  images: Map<string, BuiltImage>;
}

export function makeVariants(
  chain: readonly LockedImage[],
  perArch: readonly ChainLayers[],
  variants: readonly Variant[],
  sourceDateEpoch: number | undefined,
  annotations: ImageAnnotations,
): VariantImages[] {
  const out: VariantImages[] = [];
  for (const variant of variants) {
    const images = new Map<string, BuiltImage>();
    for (const layers of perArch) {
      let baseDigest: Digest | undefined;
      let top: BuiltImage | undefined;
      for (let i = 0; i < chain.length; i++) {
        top = makeImage(chain, i, layers, variant, sourceDateEpoch, annotations, baseDigest);
        baseDigest = top.manifest.descriptor.digest;
      }
      images.set(layers.arch, top!);
    }
    const sorted = [...images.values()];
    const index = imageIndex(sorted.map((img) => ({ ...img.manifest.descriptor, platform: img.platform })));
    out.push({ variant, index: { index, images: sorted }, images });
  }
  return out;
}
