// Finished layers, cached by the digest of everything that determines their bytes (distill's layer
// format, architecture, timestamp, the exact .debs, the definition's rules and files, and the key of
// the layer below). A rebuild with nothing changed unpacks and compresses nothing; a base layer built
// for one image is reused by every image built on it. The blob lives in the content-addressed store
// (re-hashed on every cache hit; a corrupt blob is dropped and the layer rebuilt); beside it, a small JSON record holds its digests and its path index,
// which the layers above need for dpkg's conflict rules.
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { pipeline } from 'node:stream/promises';
import { join } from 'node:path';
import { CACHE_HINT, cacheIo, type ContentStore } from '../cas/store.js';
import { isDistillError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { HashingStream, digestHex, sha256Hex, type Digest } from '../digest.js';
import { canonicalJson } from '../json.js';
import type { TreeEntry } from '../rootfs/tree.js';
import { layerDecompressorFor } from '../layer/compression.js';
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
    // ATTACKER-CONTROLLED: a registry cache is as untrusted as the local one — same checks.
    const record: unknown = await this.remote.get(key, this.store);
    if (!isLayerRecord(record)) return undefined;
    const hex = digestHex(record.digest);
    if (!(await this.verifyBlob(hex, record))) return undefined;
    await this.writeRecord(key, record);
    return { ...record, path: this.store.blobPath(hex), source: 'registry cache' };
  }

  private async getLocal(key: string): Promise<(LayerRecord & { path: string; source: LayerSourceKind }) | undefined> {
    const path = this.recordPath(key);
    let record: LayerRecord;
    try {
      const parsed: unknown = JSON.parse(await readFile(path, 'utf8'));
      if (!isLayerRecord(parsed)) throw new Error('not a layer record');
      record = parsed;
    } catch (e) {
      // Missing is a miss; a truncated, foreign or wrong-type entry (a directory) is dropped and rebuilt.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await rm(path, { recursive: true, force: true }).catch(() => {});
      return undefined;
    }
    const hex = digestHex(record.digest);
    // One pass over the blob checks everything the record claims: its digest and size (the store's
    // verify), and — decompressed — its diffId and uncompressed size, which a config will carry.
    if (!(await this.verifyBlob(hex, record))) {
      await rm(path, { force: true }).catch(() => {});
      return undefined;
    }
    return { ...record, path: this.store.blobPath(hex), source: 'local cache' };
  }

  private async writeRecord(key: string, record: LayerRecord): Promise<void> {
    const path = this.recordPath(key);
    try {
      await mkdir(join(this.store.dir, 'layers'), { recursive: true });
      // A wrong-type entry (a directory) is removed first; a file is replaced by the rename.
      if (!(await lstat(path).then((st) => st.isFile(), () => true))) await rm(path, { recursive: true, force: true });
      await writeFileAtomic(path, JSON.stringify(record), { code: 'CACHE_IO', hint: CACHE_HINT });
    } catch (e) {
      throw isDistillError(e) ? e : cacheIo(this.store.dir, e);
    }
  }

  /**
   * Where distill notes that a blob's bytes were seen to decompress to the record's diffId and size.
   * The diffId is a function of the compressed bytes, which are re-hashed on every hit: once a pair was
   * derived (by the layer writer) or checked (one gunzip pass), a hit need only re-hash the blob. A record
   * altered in any of these fields names another pair, whose note does not exist: it is checked in full.
   */
  private pairNote(record: LayerRecord): string {
    return join(this.store.dir, 'layers', 'pairs', sha256Hex(`${record.digest} ${record.size} ${record.diffId} ${record.uncompressedSize}`));
  }

  private async notePair(record: LayerRecord): Promise<void> {
    await mkdir(join(this.store.dir, 'layers', 'pairs'), { recursive: true });
    await writeFile(this.pairNote(record), '');
  }

  private async verifyBlob(hex: string, record: LayerRecord): Promise<boolean> {
    const expected = { sha256: hex, size: record.size, what: `cached layer ${hex.slice(0, 12)}` };
    if (!(await this.store.has(expected))) return false;
    const noted = await lstat(this.pairNote(record)).then((st) => st.isFile(), () => false);
    if (noted) return this.store.verify(expected);
    const ok = await this.inflatesToRecord(hex, record, expected);
    if (ok) await this.notePair(record).catch(() => {}); // only a shortcut: a failed note costs a recheck
    return ok;
  }

  private async inflatesToRecord(hex: string, record: LayerRecord, expected: { sha256: string; size: number; what: string }): Promise<boolean> {
    const plain = new HashingStream();
    try {
      // A stream that fails after the pipeline has already settled (the gunzip refused first) must not
      // surface as an uncaught error: the pipeline has reported the failure once.
      const blob = this.store.open(expected);
      blob.on('error', () => {});
      await pipeline(blob, await layerDecompressorFor(this.store.blobPath(hex)), plain, async (src: AsyncIterable<unknown>) => {
        for await (const _ of src) {
          // hashing only
        }
      });
    } catch {
      // Bytes that do not match their digest are dropped from the store; ones that do but do not
      // inflate belong to another record, and stay.
      await this.store.verify(expected);
      return false;
    }
    return `sha256:${plain.sha256}` === record.diffId && plain.size === record.uncompressedSize;
  }

  /**
   * Move a freshly written layer into the store and record it; returns the stored path. writeLayer
   * hashed the bytes as it wrote and fsynced them, so the file is renamed in, not read again.
   */
  async put(key: string, layerFile: string, record: LayerRecord): Promise<string> {
    const hex = digestHex(record.digest);
    const path = await this.store.adopt({ sha256: hex, size: record.size, what: `layer ${hex.slice(0, 12)}` }, layerFile);
    await this.writeRecord(key, record);
    // The writer derived the diffId from these very bytes: the pair is known good.
    await this.notePair(record).catch(() => {});
    await this.remote?.put(key, path, record);
    return path;
  }

  /** Share a layer found in the local cache with the remote one too (a no-op when it is there). */
  async share(key: string, path: string, record: LayerRecord): Promise<void> {
    await this.remote?.put(key, path, record);
  }
}

const isDigest = (x: unknown): x is Digest => typeof x === 'string' && /^sha256:[0-9a-f]{64}$/.test(x);
const isCount = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) >= 0;

/** A record read from the cache directory is untrusted until every field has the shape written. */
function isLayerRecord(x: unknown): x is LayerRecord {
  const r = x as Partial<LayerRecord> | null;
  if (r === null || typeof r !== 'object' || !isDigest(r.digest) || !isDigest(r.diffId) || !isCount(r.size) || !isCount(r.uncompressedSize)) return false;
  if (!Array.isArray(r.entries)) return false;
  return r.entries.every((e) =>
    Array.isArray(e) && e.length === 8 && typeof e[0] === 'string' && ['file', 'dir', 'symlink', 'hardlink'].includes(e[1] as string)
    && isCount(e[2]) && isCount(e[3]) && isCount(e[4]) && isCount(e[5]) && typeof e[6] === 'string' && typeof e[7] === 'string');
}
