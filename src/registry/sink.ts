// The registry as an image sink, following go-containerregistry's written-down push protocol
// (pkg/v1/remote/README.md) over the OCI distribution spec 1.1 push API: every blob (configs, then
// layers) HEAD → cross-repository mount from the repositories named → upload from the model's
// stream; then image manifests by digest; then the index; the tag last, so a push that stops
// part-way never leaves a tag naming something missing. Bytes are the model's, never re-serialised.
import { Readable } from 'node:stream';
import { noProgress, type OnProgress } from '../events.js';
import type { Descriptor } from '../oci/descriptor.js';
import { type Artifact, type Image, type ImageIndex, imagesOf, isImageIndex, topDescriptor } from '../oci/model.js';
import { forEachLimit } from '../util/limit.js';
import type { RegistryClient } from './client.js';

export interface RegistrySinkOptions {
  /** Write this tag once everything is in (none: only by digest). */
  tag?: string;
  /** Repositories on the same registry to mount blobs from before uploading them. */
  mountFrom?: string[];
  /** Blobs in flight at once (default 4). */
  concurrency?: number;
  onProgress?: OnProgress;
  /** Counters to add to (one object can total a whole command). */
  stats?: PushStats;
}

export interface PushStats {
  bytesUploaded: number;
  blobsUploaded: number;
  blobsMounted: number;
  blobsSkipped: number;
  manifestsPushed: number;
  manifestsSkipped: number;
}

export function emptyStats(): PushStats {
  return { bytesUploaded: 0, blobsUploaded: 0, blobsMounted: 0, blobsSkipped: 0, manifestsPushed: 0, manifestsSkipped: 0 };
}

/** Push an image or index with everything it references; returns the digest of its top document. */
export async function pushArtifact(client: RegistryClient, repository: string, artifact: Artifact, opts: RegistrySinkOptions = {}): Promise<Descriptor> {
  const { tag, ...rest } = opts;
  await pushArtifacts(client, repository, [{ artifact, ...(tag !== undefined ? { tag } : {}) }], rest);
  return topDescriptor(artifact);
}

/** One artifact of a push and the tag it gets (none: by digest only). */
export interface TaggedArtifact {
  artifact: Artifact;
  tag?: string;
}

/**
 * Push several artifacts as one: every blob once (shared layers are HEADed and sent once), then every
 * image manifest, then every index, then the tags in the order given — so no tag is written before
 * everything every tag names is in, and a push stopped at any request leaves no tag naming something
 * missing.
 */
export async function pushArtifacts(client: RegistryClient, repository: string, items: readonly TaggedArtifact[], opts: Omit<RegistrySinkOptions, 'tag'> = {}): Promise<void> {
  const emit = opts.onProgress ?? noProgress;
  const stats = opts.stats ?? emptyStats();
  const repo = repository;
  const images = new Map<string, Image>();
  const indexes = new Map<string, ImageIndex>();
  for (const { artifact } of items) {
    if (isImageIndex(artifact)) indexes.set(artifact.index.descriptor.digest, artifact);
    for (const img of imagesOf(artifact)) images.set(img.manifest.descriptor.digest, img);
  }

  // 1. Blobs, each once: configs, then layers. Foreign layers (urls set) are not the registry's to hold.
  const blobs = new Map<string, { descriptor: Descriptor; open: () => Readable }>();
  for (const img of images.values()) {
    blobs.set(img.config.descriptor.digest, { descriptor: img.config.descriptor, open: () => Readable.from([img.config.bytes]) });
  }
  for (const img of images.values()) {
    for (const l of img.layers) {
      if (Array.isArray((l.descriptor as { urls?: unknown }).urls)) continue;
      if (!blobs.has(l.descriptor.digest)) blobs.set(l.descriptor.digest, { descriptor: l.descriptor, open: () => l.open() });
    }
  }
  // Largest first: the longest transfers start at once and the small ones fill the gaps, so the
  // push ends soon after its biggest blob (longest-processing-time scheduling).
  const order = [...blobs.values()].sort((x, y) => y.descriptor.size - x.descriptor.size);
  await forEachLimit(order, opts.concurrency ?? 4, async ({ descriptor: d, open }) => {
    const present = await client.headBlob(repo, d.digest);
    if (present !== undefined && (present.size === d.size || present.size < 0)) {
      stats.blobsSkipped++;
      emit({ type: 'blob-pushed', repository: repo, digest: d.digest, size: d.size, outcome: 'exists' });
      return;
    }
    emit({ type: 'blob-push-start', repository: repo, digest: d.digest, size: d.size });
    let last = 0;
    const r = await client.uploadBlob(repo, d, open, {
      ...(opts.mountFrom !== undefined ? { mountFrom: opts.mountFrom } : {}),
      onBytes: (n) => {
        if (n - last >= 1024 * 1024 || n === d.size) {
          last = n;
          emit({ type: 'blob-push-progress', repository: repo, digest: d.digest, bytes: n, total: d.size });
        }
      },
    });
    if (r.outcome === 'mounted') {
      stats.blobsMounted++;
      emit({ type: 'blob-pushed', repository: repo, digest: d.digest, size: d.size, outcome: 'mounted', ...(r.from !== undefined ? { from: r.from } : {}) });
    } else {
      stats.blobsUploaded++;
      stats.bytesUploaded += d.size;
      emit({ type: 'blob-pushed', repository: repo, digest: d.digest, size: d.size, outcome: 'uploaded' });
    }
  });

  // 2. Manifests by digest, children before the indexes that list them.
  const putByDigest = async (b: { descriptor: Descriptor; bytes: Buffer }): Promise<void> => {
    const have = await client.headManifest(repo, b.descriptor.digest);
    if (have !== undefined) {
      stats.manifestsSkipped++;
      emit({ type: 'manifest-pushed', repository: repo, digest: b.descriptor.digest, reference: b.descriptor.digest, existed: true });
      return;
    }
    await client.putManifest(repo, b.descriptor.digest, b.bytes, b.descriptor.mediaType);
    stats.manifestsPushed++;
    emit({ type: 'manifest-pushed', repository: repo, digest: b.descriptor.digest, reference: b.descriptor.digest, existed: false });
  };
  await forEachLimit([...images.values()], opts.concurrency ?? 4, (img) => putByDigest(img.manifest));
  await forEachLimit([...indexes.values()], opts.concurrency ?? 4, (idx) => putByDigest(idx.index));

  // 3. The tags, last.
  for (const { artifact, tag } of items) {
    if (tag === undefined) continue;
    const doc = isImageIndex(artifact) ? artifact.index : artifact.manifest;
    await client.putManifest(repo, tag, doc.bytes, doc.descriptor.mediaType);
    emit({ type: 'manifest-pushed', repository: repo, digest: doc.descriptor.digest, reference: tag, existed: false });
  }
}

