// Finished layers, cached by the digest of everything that determines their bytes (distill's layer
// format, architecture, timestamp, the exact .debs, the definition's rules and files, and the key of
// the layer below). A rebuild with nothing changed unpacks and compresses nothing; a base layer built
// for one image is reused by every image built on it. The blob lives in the content-addressed store
// (re-hashed on every cache hit; a corrupt blob is dropped and the layer rebuilt); beside it, a small JSON record holds its digests and its path index,
// which the layers above need for dpkg's conflict rules.
import { createReadStream } from 'node:fs';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import type { ContentStore } from '../cas/store.js';
import { digestHex, sha256Hex, type Digest } from '../digest.js';
import { canonicalJson } from '../json.js';
import type { TreeEntry } from '../rootfs/tree.js';
import { LAYER_FORMAT, DISTILL_VERSION } from '../version.js';

/**
 * What a cached layer is: its digests and its path index — nothing about the image that first built
 * it (names and history come from each build's own plan, so a cache hit can never change a config).
 */
export interface LayerRecord {
  digest: Digest;
  diffId: Digest;
  size: number;
  uncompressedSize: number;
  /** Path index of the layer: no bodies, only what conflict checks (and Replaces) compare. */
  entries: [path: string, type: string, mode: number, uid: number, gid: number, size: number, contentOrTarget: string, owner: string][];
}

export function layerKey(inputs: Record<string, unknown>): string {
  return sha256Hex(canonicalJson({ format: LAYER_FORMAT, distill: DISTILL_VERSION, ...inputs }));
}

export function indexOf(entries: Iterable<TreeEntry>): LayerRecord['entries'] {
  return [...entries].map((e) => [e.path, e.type, e.mode, e.uid, e.gid, e.size, e.type === 'file' ? (e.body?.sha256 ?? '') : (e.linkTarget ?? ''), e.owner]);
}

export function entriesOf(record: LayerRecord): TreeEntry[] {
  return record.entries.map(([path, type, mode, uid, gid, size, x, owner]) => ({
    path,
    type: type as TreeEntry['type'],
    mode,
    uid,
    gid,
    uname: '',
    gname: '',
    size,
    mtime: 0,
    owner,
    ...(type === 'file' ? { body: { kind: 'bytes' as const, data: Buffer.alloc(0), sha256: x } } : x !== '' ? { linkTarget: x } : {}),
  }));
}

/** Where a layer of a build came from: written by it, or taken from a cache. */
export type LayerSourceKind = 'built' | 'local cache' | 'registry cache';

/**
 * A cache shared beyond this machine (a registry repository: see scaleout/registry-cache.ts), keyed
 * by the same input key. `get` leaves the blob, verified, in the store; both are best-effort for the
 * build (a failing remote is reported by the implementation and the layer built or kept locally).
 */
export interface RemoteLayerCache {
  get(key: string, store: ContentStore): Promise<LayerRecord | undefined>;
  put(key: string, blobPath: string, record: LayerRecord): Promise<void>;
}

export class LayerCache {
  constructor(
    private readonly store: ContentStore,
    private readonly remote?: RemoteLayerCache,
  ) {}

  private recordPath(key: string): string {
    return join(this.store.dir, 'layers', `${key}.json`);
  }

  /**
   * A record whose blob is still in the store and still hashes to its digest. A corrupt blob is
   * removed (and the layer rebuilt), never served.
   */
  async get(key: string): Promise<(LayerRecord & { path: string; source: LayerSourceKind }) | undefined> {
    const local = await this.getLocal(key);
    if (local !== undefined || this.remote === undefined) return local;
    const record = await this.remote.get(key, this.store);
    if (record === undefined) return undefined;
    await this.writeRecord(key, record);
    return { ...record, path: this.store.blobPath(digestHex(record.digest)), source: 'registry cache' };
  }

  private async getLocal(key: string): Promise<(LayerRecord & { path: string; source: LayerSourceKind }) | undefined> {
    let record: LayerRecord;
    try {
      record = JSON.parse(await readFile(this.recordPath(key), 'utf8')) as LayerRecord;
      digestHex(record.digest);
    } catch {
      return undefined;
    }
    const hex = digestHex(record.digest);
    if (!(await this.store.verify({ sha256: hex, size: record.size, what: `cached layer ${hex.slice(0, 12)}` }))) return undefined;
    return { ...record, path: this.store.blobPath(hex), source: 'local cache' };
  }

  private async writeRecord(key: string, record: LayerRecord): Promise<void> {
    await mkdir(join(this.store.dir, 'layers'), { recursive: true });
    const tmp = `${this.recordPath(key)}.${randomBytes(4).toString('hex')}`;
    await writeFile(tmp, JSON.stringify(record));
    await rename(tmp, this.recordPath(key));
  }

  /** Move a freshly written layer into the store (verified) and record it; returns the stored path. */
  async put(key: string, layerFile: string, record: LayerRecord): Promise<string> {
    const hex = digestHex(record.digest);
    const path = await this.store.put({ sha256: hex, size: record.size, what: `layer ${hex.slice(0, 12)}` }, createReadStream(layerFile));
    await this.writeRecord(key, record);
    await this.remote?.put(key, path, record);
    return path;
  }

  /** Share a layer found in the local cache with the remote one too (a no-op when it is there). */
  async share(key: string, path: string, record: LayerRecord): Promise<void> {
    await this.remote?.put(key, path, record);
  }
}
