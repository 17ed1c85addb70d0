// The image model every source and sink shares (go-containerregistry pkg/v1's Layer, Image and
// ImageIndex, as plain immutable data): small JSON documents are Blobs — their exact bytes with the
// descriptor computed from them, never re-serialised — and layers are descriptors with a way to
// stream their bytes. A source (OCI layout, registry, the build) produces these; a sink (OCI layout,
// docker archive, registry) consumes them. Nothing here does I/O: `open` belongs to the source.
import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import { decompress, type Compression } from '../compress/decompress.js';
import { type Blob, type Descriptor, invalid } from './descriptor.js';
import { MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_LAYER_TAR, MEDIA_TYPE_LAYER_ZSTD } from './media-types.js';
import type { Platform } from './platform.js';

export type { Blob, Descriptor } from './descriptor.js';

/**
 * A layer: `descriptor.digest` names the compressed blob, `diffId` (when the source knows it, from
 * the config) the uncompressed tar. `open()` streams the compressed bytes; sources verify them against
 * the descriptor as they flow, so a consumer never sees unchecked bytes end without an error.
 */
export interface Layer {
  readonly descriptor: Descriptor;
  readonly diffId?: Digest;
  open(): Readable;
  /** A local file holding exactly these bytes, when there is one (see LayerSource.file). */
  readonly file?: string;
}

/** One platform's image: its manifest and config as bytes, its layers bottom first. */
export interface Image {
  readonly manifest: Blob;
  readonly config: Blob;
  readonly layers: readonly Layer[];
  /** From the index entry or the config; absent only when neither says. */
  readonly platform?: Platform;
}

/** A multi-platform image: the index document and the images it lists, in its order. */
export interface ImageIndex {
  readonly index: Blob;
  readonly images: readonly Image[];
}

export type Artifact = Image | ImageIndex;

export function isImageIndex(a: Artifact): a is ImageIndex {
  return (a as ImageIndex).index !== undefined;
}

/** The descriptor of the document at the top of an artifact. */
export function topDescriptor(a: Artifact): Descriptor {
  return isImageIndex(a) ? a.index.descriptor : a.manifest.descriptor;
}

/** Every image an artifact holds (one for an image). */
export function imagesOf(a: Artifact): readonly Image[] {
  return isImageIndex(a) ? a.images : [a];
}

/** Every distinct layer of an artifact, by digest, in first-seen order. */
export function layersOf(a: Artifact): Layer[] {
  const seen = new Map<string, Layer>();
  for (const img of imagesOf(a)) for (const l of img.layers) if (!seen.has(l.descriptor.digest)) seen.set(l.descriptor.digest, l);
  return [...seen.values()];
}

/** How a layer's blob is compressed, from its media type (OCI and Docker names). */
export function layerCompression(mediaType: string): Compression {
  if (mediaType === MEDIA_TYPE_LAYER_TAR || mediaType === 'application/vnd.docker.image.rootfs.diff.tar') return 'none';
  if (mediaType === MEDIA_TYPE_LAYER_GZIP || mediaType === 'application/vnd.docker.image.rootfs.diff.tar.gzip') return 'gzip';
  if (mediaType === MEDIA_TYPE_LAYER_ZSTD) return 'zstd';
  throw invalid(`layer media type ${mediaType} is not a tar layer`);
}

/**
 * The layer's uncompressed tar (its diffId's bytes), streamed — checked only as far as the source
 * checks its compressed bytes, and not against the diffId: to read a layer's entries use readLayer
 * (oci/read-layer.ts), which checks both.
 */
export function openUncompressed(layer: Layer): Readable {
  return decompress(layer.open(), layerCompression(layer.descriptor.mediaType), `layer ${layer.descriptor.digest}`);
}
