// The image index (image-spec image-index.md): one manifest per platform.
//
// Entries are sorted — by platform (os, architecture, variant), then digest, entries without a
// platform last — so the index digest depends only on the set of images, never on the order the
// per-architecture builds finished or the architectures were listed in (apko sorts for the same
// reason). Order carries no meaning for readers: containerd, docker and podman pick the best
// platform match, not the first entry.
import {
  type Blob,
  type Descriptor,
  checkBlob,
  descriptorJson,
  goMap,
  invalid,
  jsonBlob,
  validateDescriptor,
} from './descriptor.js';
import { type BuiltImage, checkBuiltImage, parseJson } from './image.js';
import { MEDIA_TYPE_INDEX } from './media-types.js';
import { cmp, comparePlatforms, platformString } from './platform.js';

export function imageIndex(manifests: Descriptor[], annotations?: Record<string, string>): Blob {
  const seenDigests = new Set<string>();
  const seenPlatforms = new Set<string>();
  for (const [i, m] of manifests.entries()) {
    validateDescriptor(m, `index manifests[${i}]`);
    if (seenDigests.has(m.digest)) throw invalid(`index: ${m.digest} is listed twice`);
    seenDigests.add(m.digest);
    if (m.platform !== undefined) {
      const p = platformString(m.platform);
      // Two images for one platform would leave the pick to each reader's tie-break: a build bug.
      if (seenPlatforms.has(p)) throw invalid(`index: two manifests for the platform ${p}`);
      seenPlatforms.add(p);
    }
  }
  const sorted = [...manifests].sort(compareEntries);
  // Index: schemaVersion, mediaType, artifactType, manifests, subject, annotations.
  const index: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_INDEX,
    manifests: sorted.map(descriptorJson),
  };
  const a = goMap(annotations, 'index annotations');
  if (a !== undefined) index['annotations'] = a;
  return jsonBlob(MEDIA_TYPE_INDEX, index);
}

function compareEntries(a: Descriptor, b: Descriptor): number {
  if (a.platform !== undefined && b.platform !== undefined) {
    const c = comparePlatforms(a.platform, b.platform);
    if (c !== 0) return c;
  } else if (a.platform !== undefined) {
    return -1;
  } else if (b.platform !== undefined) {
    return 1;
  }
  return cmp(a.digest, b.digest);
}

/** A multi-platform image: the index blob and every image it lists. */
export interface BuiltIndex {
  index: Blob;
  images: BuiltImage[];
}

/** Sinks call this first: the index lists exactly the images given, each of them consistent. */
export function checkBuiltIndex(idx: BuiltIndex, what: string): void {
  checkBlob(idx.index, `${what} index`);
  if (idx.index.descriptor.mediaType !== MEDIA_TYPE_INDEX) {
    throw invalid(`${what}: index media type ${idx.index.descriptor.mediaType}, expected ${MEDIA_TYPE_INDEX}`);
  }
  const parsed = parseJson(idx.index.bytes, `${what} index`) as { manifests?: Descriptor[] };
  const listed = (Array.isArray(parsed.manifests) ? parsed.manifests : []).map((m) => `${m.digest}/${m.size}`).sort();
  const given = idx.images.map((i) => `${i.manifest.descriptor.digest}/${i.manifest.descriptor.size}`).sort();
  if (listed.join() !== given.join()) {
    throw invalid(`${what}: the index lists other manifests than the images given`);
  }
  for (const [i, img] of idx.images.entries()) checkBuiltImage(img, `${what} image ${i}`);
}
