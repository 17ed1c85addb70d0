// The registry layer cache (`distill build --cache-repo REPO`): finished layers shared between
// workers that share nothing else. Each layer is stored as one OCI image manifest tagged
// `layer-<input key>` — the key the local layer cache uses (build/layer-cache.ts: distill's layer
// format and version, architecture, timestamp, the exact .debs, the definition's rules and files, the
// key of the layer below) — whose config is the layer's record (digests and path index, media type
// application/vnd.distill.layer-record.v1+json) and whose one layer is the layer blob. Any OCI
// registry stores it; nothing but distill reads it.
//
// Attacker-controlled: everything fetched. On fetch the record must be well formed and agree with the
// manifest's layer descriptor; the blob is verified by size and sha256 while it streams, and its
// uncompressed bytes by the record's diff ID and size, before it enters the local store. What cannot
// be checked without building is that the layer is the one its key describes: whoever can push to the
// cache repository is trusted with that, as with any shared build cache (README, Scale-out).
// Failures are never fatal: a cache that cannot be read or written means the layer is built (or kept
// locally), with a warning; an entry refused on fetch is replaced by the layer built instead.
import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { createHash } from 'node:crypto';
import { layerDecompressorFor } from '../layer/compression.js';
import type { RemoteLayerCache, LayerRecord } from '../build/layer-cache.js';
import type { ContentStore } from '../cas/store.js';
import { sha256Hex, toDigest } from '../digest.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { noProgress, type OnProgress } from '../events.js';
import { canonicalJson } from '../json.js';
import type { Descriptor } from '../oci/descriptor.js';
import { MEDIA_TYPE_LAYER_GZIP, MEDIA_TYPE_MANIFEST } from '../oci/media-types.js';
import { RegistryClient, type RegistryOptions } from '../registry/client.js';
import { parseReference } from '../registry/reference.js';
import { readPayload } from '../sign/signature-store.js';

export const LAYER_RECORD_MEDIA_TYPE = 'application/vnd.distill.layer-record.v1+json';
/** A python3 layer's record is ~300 KB; a JDK's a few MB. */
const RECORD_CAP = 64 * 1024 * 1024;

export const cacheTag = (key: string): string => `layer-${key}`;

export class RegistryLayerCache implements RemoteLayerCache {
  private readonly client: RegistryClient;
  private readonly repo: string;
  private readonly where: string;
  private readonly emit: OnProgress;
  /** Keys whose entry was refused on fetch: the freshly built layer replaces it. */
  private readonly refused = new Set<string>();

  private readonly ownsClient: boolean;

  /** `opts.client`: a client for the repository's registry (push access) to share, left open by close(). */
  constructor(repository: string, opts: RegistryOptions & { client?: RegistryClient } = {}) {
    const ref = parseReference(repository);
    if (ref.tag !== undefined || ref.digest !== undefined) {
      throw new DistillError('REFERENCE_INVALID', `--cache-repo ${repository}: name a repository, without a tag or digest`, { hint: 'e.g. --cache-repo registry.example.com/distill/cache' });
    }
    this.repo = ref.repository;
    this.where = `${ref.registry}/${ref.repository}`;
    this.emit = opts.onProgress ?? noProgress;
    this.ownsClient = opts.client === undefined;
    this.client = opts.client ?? new RegistryClient(ref.registry, { ...opts, access: 'push' });
  }

  async close(): Promise<void> {
    if (this.ownsClient) await this.client.close();
  }

  async get(key: string, store: ContentStore): Promise<LayerRecord | undefined> {
    try {
      const m = await this.client.getManifest(this.repo, cacheTag(key), [MEDIA_TYPE_MANIFEST]).catch((e: unknown) => {
        if (isDistillError(e, 'REGISTRY_NOT_FOUND')) return undefined;
        throw e;
      });
      if (m === undefined) return undefined;
      const manifest = JSON.parse(m.bytes.toString('utf8')) as { config?: Descriptor; layers?: Descriptor[] };
      const config = manifest.config;
      const layer = manifest.layers?.[0];
      if (config?.mediaType !== LAYER_RECORD_MEDIA_TYPE || manifest.layers?.length !== 1 || layer === undefined || layer.mediaType !== MEDIA_TYPE_LAYER_GZIP) {
        throw invalid(`${this.where}:${cacheTag(key)} is not a distill layer-cache entry`);
      }
      const record = parseRecord(await readPayload(this.client, this.repo, config, RECORD_CAP), `${this.where}:${cacheTag(key)}`);
      if (record.digest !== layer.digest || record.size !== layer.size) throw invalid(`${this.where}:${cacheTag(key)}: its record names another blob than its layer`);
      const hex = record.digest.slice('sha256:'.length);
      if (!(await store.has({ sha256: hex, size: record.size }))) {
        // Streamed straight into the content store, verified against the record's digest and size on
        // the way; a blob whose tar is not the record's is dropped again (LayerCache checks it once more).
        const put = await store.putStream(() => this.client.openBlob(this.repo, { digest: record.digest, size: record.size }), {
          sha256: hex,
          size: record.size,
          what: `cached layer ${hex.slice(0, 12)} from ${this.where}`,
        });
        try {
          await checkUncompressed(put.path, record, `${this.where}:${cacheTag(key)}`);
        } catch (e) {
          if (put.written) await store.remove(hex);
          throw e;
        }
      }
      return record;
    } catch (e) {
      if (isDistillError(e, 'LAYER_CACHE_INVALID') || isDistillError(e, 'REGISTRY_DIGEST_MISMATCH')) this.refused.add(key);
      this.emit({ type: 'warning', message: `registry layer cache ${this.where}: ${cacheTag(key).slice(0, 18)}… not used, building the layer: ${messageOf(e)}` });
      return undefined;
    }
  }

  async put(key: string, blobPath: string, record: LayerRecord): Promise<void> {
    try {
      const tag = cacheTag(key);
      if (!this.refused.has(key) && (await this.client.headManifest(this.repo, tag)) !== undefined) return;
      // Only the record's own fields (a local hit carries its path too, which is nobody else's business).
      const recordBytes = Buffer.from(canonicalJson({ digest: record.digest, diffId: record.diffId, size: record.size, uncompressedSize: record.uncompressedSize, entries: record.entries }));
      const configDesc = { mediaType: LAYER_RECORD_MEDIA_TYPE, digest: toDigest(sha256Hex(recordBytes)), size: recordBytes.length };
      const layerDesc = { mediaType: MEDIA_TYPE_LAYER_GZIP, digest: record.digest, size: record.size };
      if ((await this.client.headBlob(this.repo, layerDesc.digest)) === undefined) {
        await this.client.uploadBlob(this.repo, layerDesc, () => createReadStream(blobPath));
      }
      if ((await this.client.headBlob(this.repo, configDesc.digest)) === undefined) {
        await this.client.uploadBlob(this.repo, configDesc, () => Readable.from([recordBytes]));
      }
      const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MEDIA_TYPE_MANIFEST, config: configDesc, layers: [layerDesc], annotations: { 'dev.distill.layer-key': key } }));
      await this.client.putManifest(this.repo, tag, manifest, MEDIA_TYPE_MANIFEST);
    } catch (e) {
      this.emit({ type: 'warning', message: `registry layer cache ${this.where}: could not store a layer (${messageOf(e)}); the build goes on` });
    }
  }
}

function parseRecord(bytes: Buffer, what: string): LayerRecord {
  let r: LayerRecord;
  try {
    r = JSON.parse(bytes.toString('utf8')) as LayerRecord;
  } catch (e) {
    throw invalid(`${what}: the record is not JSON (${messageOf(e)})`);
  }
  const digest = /^sha256:[0-9a-f]{64}$/;
  const ok =
    r !== null && typeof r === 'object' &&
    typeof r.digest === 'string' && digest.test(r.digest) &&
    typeof r.diffId === 'string' && digest.test(r.diffId) &&
    Number.isSafeInteger(r.size) && r.size > 0 &&
    Number.isSafeInteger(r.uncompressedSize) && r.uncompressedSize >= 0 &&
    Array.isArray(r.entries) &&
    r.entries.every((e) => Array.isArray(e) && e.length === 8 && typeof e[0] === 'string' && typeof e[1] === 'string' && [2, 3, 4, 5].every((i) => Number.isSafeInteger(e[i])) && typeof e[6] === 'string' && typeof e[7] === 'string');
  if (!ok) throw invalid(`${what}: the record is malformed`);
  return { digest: r.digest, diffId: r.diffId, size: r.size, uncompressedSize: r.uncompressedSize, entries: r.entries };
}

/** The blob's tar, hashed and counted while it is gunzipped: it must be the record's diff ID and size. */
async function checkUncompressed(file: string, record: LayerRecord, what: string): Promise<void> {
  const hash = createHash('sha256');
  let n = 0;
  try {
    for await (const c of createReadStream(file).pipe(await layerDecompressorFor(file))) {
      hash.update(c as Buffer);
      n += (c as Buffer).length;
    }
  } catch (e) {
    throw invalid(`${what}: the layer does not decompress: ${messageOf(e)}`);
  }
  if (toDigest(hash.digest('hex')) !== record.diffId || n !== record.uncompressedSize) {
    throw invalid(`${what}: the layer's tar is not the record's diff ID ${record.diffId} (${record.uncompressedSize} bytes)`);
  }
}

function invalid(message: string): DistillError {
  return new DistillError('LAYER_CACHE_INVALID', message, { hint: 'the entry is ignored, the layer built and stored in its place' });
}
