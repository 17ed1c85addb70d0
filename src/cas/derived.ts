// Derived entries (SBOMs, …) cached by the key of their inputs. The bytes live in the content store
// as a blob; the record `<kind>/<key>.json` holds only their digest and size. A read verifies the blob
// against the record (the store rehashes it), so a truncated, altered or wrong-type entry is a miss —
// dropped and rebuilt by the caller — never bytes copied into an output.
import { lstat, mkdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { isSha256Hex, sha256Hex } from '../digest.js';
import { parseJsonObject } from '../json.js';
import { isDistillError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { CACHE_HINT, type ContentStore, cacheIo } from './store.js';

/** Records are tiny; anything larger is not one. */
const RECORD_CAP = 4096;

export class DerivedCache {
  constructor(
    private readonly store: ContentStore,
    private readonly kind: string,
  ) {}

  private recordPath(key: string): string {
    if (!isSha256Hex(key)) throw new Error(`derived cache key is not a sha256: ${key}`);
    return join(this.store.dir, this.kind, `${key}.json`);
  }

  async get(key: string): Promise<Buffer | undefined> {
    const path = this.recordPath(key);
    let record: { sha256?: unknown; size?: unknown };
    try {
      const bytes = await readFile(path);
      if (bytes.length > RECORD_CAP) throw new Error('oversized record');
      record = parseJsonObject(bytes, (m) => new Error(m));
    } catch (e) {
      // Missing is a plain miss; a directory, a truncated or foreign file is dropped.
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') await rm(path, { recursive: true, force: true }).catch(() => {});
      return undefined;
    }
    const { sha256, size } = record;
    if (typeof sha256 !== 'string' || !isSha256Hex(sha256) || !Number.isSafeInteger(size) || (size as number) < 0) {
      await rm(path, { force: true }).catch(() => {});
      return undefined;
    }
    // Derived entries are small (an SBOM is a few MB): read once, checked in memory.
    const bytes = await readFile(this.store.blobPath(sha256)).catch(() => undefined);
    if (bytes === undefined || bytes.length !== size || sha256Hex(bytes) !== sha256) {
      // A blob of another size may be intact and another entry's: only the record is dropped.
      if (bytes !== undefined && bytes.length === size) await this.store.remove(sha256);
      await rm(path, { force: true }).catch(() => {});
      return undefined;
    }
    return bytes;
  }

  async put(key: string, bytes: string | Buffer): Promise<void> {
    const data = Buffer.from(bytes);
    const sha256 = sha256Hex(data);
    await this.store.put({ sha256, size: data.length, what: `${this.kind} ${key.slice(0, 12)}` }, Readable.from([data]));
    const path = this.recordPath(key);
    try {
      await mkdir(join(this.store.dir, this.kind), { recursive: true });
      // A wrong-type entry (a directory) where the record belongs is replaced; a file is replaced by rename.
      if (!(await lstat(path).then((st) => st.isFile(), () => true))) await rm(path, { recursive: true, force: true });
      await writeFileAtomic(path, JSON.stringify({ sha256, size: data.length }), { code: 'CACHE_IO', hint: CACHE_HINT });
    } catch (e) {
      throw isDistillError(e) ? e : cacheIo(this.store.dir, e);
    }
  }
}
