import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { ContentStore } from '../../src/cas/store.js';
import { fetchBlob } from '../../src/cas/fetch.js';
import { sha256Hex } from '../../src/digest.js';
import { tempDir } from '../helpers/tmp.js';

const data = Buffer.from('hello, distill\n'.repeat(1000));
const expected = { size: data.length, sha256: sha256Hex(data), what: 'hello.deb' };

function chunks(b: Buffer): Readable {
  return Readable.from([b.subarray(0, 100), b.subarray(100)]);
}

test('put verifies while streaming and renames into place read-only', async () => {
  const store = new ContentStore(tempDir('distill-cas-'));
  const path = await store.put(expected, chunks(data));
  assert.deepEqual(readFileSync(path), data);
  assert.equal(await store.has(expected), true);
  assert.equal(await store.verify(expected), true);
});

test('a wrong digest or size stores nothing and leaves no temp file', async () => {
  const dir = tempDir('distill-cas-');
  const store = new ContentStore(dir);
  const bad = Buffer.from(data);
  bad[5] = 0x41;
  await assert.rejects(store.put(expected, chunks(bad)), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');
  await assert.rejects(store.put(expected, chunks(data.subarray(1))), (e: any) => e.code === 'BLOB_SIZE_MISMATCH');
  await assert.rejects(store.put(expected, chunks(Buffer.concat([data, Buffer.from('x')]))), (e: any) => e.code === 'BLOB_SIZE_MISMATCH');
  assert.equal(existsSync(store.blobPath(expected.sha256)), false);
  assert.deepEqual(readdirSync(join(dir, 'ingest')), []);
});

test('a corrupt cache entry is detected, removed and fetched again', async () => {
  const dir = tempDir('distill-cas-');
  const src = join(dir, 'src.deb');
  writeFileSync(src, data);
  const store = new ContentStore(join(dir, 'cache'));
  const first = await fetchBlob(store, expected, pathToFileURL(src).href);
  assert.equal(first.cached, false);
  assert.equal((await fetchBlob(store, expected, pathToFileURL(src).href)).cached, true);
  // Corrupt the cached blob in place (same size, one byte changed).
  chmodSync(first.path, 0o644);
  const corrupt = Buffer.from(data);
  corrupt[0] = 0x00;
  writeFileSync(first.path, corrupt);
  const again = await fetchBlob(store, expected, pathToFileURL(src).href);
  assert.equal(again.cached, false, 'a corrupt entry must not count as a hit');
  assert.deepEqual(readFileSync(again.path), data);
});

test('reading a blob that was corrupted on disk fails instead of returning bad bytes', async () => {
  const store = new ContentStore(tempDir('distill-cas-'));
  const path = await store.put(expected, chunks(data));
  chmodSync(path, 0o644);
  writeFileSync(path, Buffer.concat([data.subarray(0, 10), Buffer.from('X'), data.subarray(11)]));
  await assert.rejects(async () => {
    for await (const _ of store.open(expected)) {
      // drain
    }
  }, (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');
});

test('a missing file in a file:// mirror is NOT_FOUND_IN_MIRROR', async () => {
  const dir = tempDir('distill-cas-');
  const store = new ContentStore(join(dir, 'cache'));
  await assert.rejects(fetchBlob(store, expected, pathToFileURL(join(dir, 'absent.deb')).href), (e: any) => e.code === 'NOT_FOUND_IN_MIRROR');
});

test('adopt renames a file distill wrote into place read-only; a wrong size is refused and stores nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-cas-'));
  try {
    const store = new ContentStore(dir);
    const file = join(dir, 'layer.tar.gz');
    writeFileSync(file, data);
    const path = await store.adopt(expected, file);
    assert.equal(existsSync(file), false, 'moved, not copied');
    assert.deepEqual(readFileSync(path), data);
    assert.equal(await store.verify(expected), true);
    const short = join(dir, 'short.tar.gz');
    writeFileSync(short, data.subarray(1));
    const other = { ...expected, sha256: sha256Hex(Buffer.from('other')) };
    await assert.rejects(store.adopt(other, short), (e: any) => e.code === 'CACHE_IO');
    assert.equal(await store.has(other), false);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
