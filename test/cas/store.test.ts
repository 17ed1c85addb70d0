import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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
  // By digest alone, too.
  await assert.rejects(async () => {
    for await (const _ of store.open(`sha256:${expected.sha256}`)) {
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

// ---- the one store API: putStream, has, hostile digests, concurrency, crash leftovers ----

test('copyIn copies a local file by the kernel and checks it as put does: wrong bytes or size store nothing and leave no temp file', async () => {
  const dir = tempDir('distill-cas-');
  const src = join(tempDir('distill-cas-src-'), 'layer');
  for (const layout of [false, true]) {
    const store = new ContentStore(join(dir, String(layout)), { layout });
    const bad = Buffer.from(data);
    bad[data.length - 1] = 0x41;
    writeFileSync(src, bad);
    await assert.rejects(store.copyIn(expected, src), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');
    writeFileSync(src, data.subarray(1));
    await assert.rejects(store.copyIn(expected, src), (e: any) => e.code === 'BLOB_SIZE_MISMATCH');
    writeFileSync(src, Buffer.concat([data, Buffer.from('x')]));
    await assert.rejects(store.copyIn(expected, src), (e: any) => e.code === 'BLOB_SIZE_MISMATCH');
    assert.equal(existsSync(store.blobPath(expected.sha256)), false);
    const temps = layout ? readdirSync(join(store.dir, 'blobs', 'sha256')) : readdirSync(join(store.dir, 'ingest'));
    assert.deepEqual(temps, [], 'no temporaries left');
    writeFileSync(src, data);
    const stored = await store.copyIn(expected, src);
    assert.equal(stored.written, true);
    assert.deepEqual(readFileSync(stored.path), data);
    assert.equal(statSync(stored.path).mode & 0o777, layout ? 0o644 : 0o444);
    // Already there and intact: nothing written.
    assert.equal((await store.copyIn(expected, src)).written, false);
  }
});

test('concurrent puts of the same digest all succeed and leave one intact blob, no temporaries', async () => {
  const dir = tempDir('distill-cas-');
  const store = new ContentStore(dir);
  const big = Buffer.alloc(3 * 1024 * 1024, 7);
  const e = { size: big.length, sha256: sha256Hex(big), what: 'big' };
  const many = (n: number) => Readable.from((function* () {
    for (let i = 0; i < big.length; i += n) yield big.subarray(i, i + n);
  })());
  const results = await Promise.all(Array.from({ length: 8 }, (_, i) => store.putStream(many(4096 + i * 1000), e)));
  assert.ok(results.every((r) => r.path === store.blobPath(e.sha256) && r.sha256 === e.sha256 && r.size === big.length));
  assert.deepEqual(readFileSync(store.blobPath(e.sha256)), big);
  assert.equal(await store.verify(e), true);
  assert.deepEqual(readdirSync(join(dir, 'ingest')), []);
  // The same in an OCI layout: temporaries beside the blob, none left.
  const layout = new ContentStore(tempDir('distill-layout-'), { layout: true });
  await Promise.all(Array.from({ length: 4 }, () => layout.putStream(() => many(65536), e)));
  assert.deepEqual(readdirSync(join(layout.dir, 'blobs', 'sha256')), [e.sha256]);
});

test('a put of a blob already there and intact reads nothing; a corrupt one is replaced', async () => {
  const store = new ContentStore(tempDir('distill-cas-'));
  await store.put(expected, chunks(data));
  let opened = false;
  const again = await store.putStream(() => {
    opened = true;
    return chunks(data);
  }, expected);
  assert.equal(again.written, false);
  assert.equal(opened, false, 'the source of a present blob is never opened');
  chmodSync(store.blobPath(expected.sha256), 0o644);
  writeFileSync(store.blobPath(expected.sha256), Buffer.concat([Buffer.from('X'), data.subarray(1)]));
  const fixed = await store.putStream(chunks(data), expected);
  assert.equal(fixed.written, true);
  assert.deepEqual(readFileSync(fixed.path), data);
});

test('a put with no expectation learns the digest and names the blob by it', async () => {
  const store = new ContentStore(tempDir('distill-cas-'));
  const r = await store.putStream(chunks(data), { what: 'learnt' });
  assert.deepEqual([r.sha256, r.size, r.written], [expected.sha256, data.length, true]);
  assert.equal(await store.has(`sha256:${expected.sha256}`), true);
  assert.equal(await store.has(expected.sha256), true);
  assert.equal(await store.has(`sha256:${sha256Hex('absent')}`), false);
  // A digest without a size: the digest is checked, the size learnt.
  const d = await new ContentStore(tempDir('distill-cas-')).putStream(chunks(data), { what: 'digest only', sha256: expected.sha256 });
  assert.equal(d.size, data.length);
});

test('a source failing midway leaves nothing: no blob, no temporary', async () => {
  const dir = tempDir('distill-cas-');
  const store = new ContentStore(dir);
  const failing = new Readable({
    read() {
      this.push(data.subarray(0, 100));
      this.destroy(new Error('connection reset'));
    },
  });
  await assert.rejects(store.putStream(failing, expected));
  assert.equal(await store.has(expected), false);
  assert.deepEqual(readdirSync(join(dir, 'ingest')), []);
  const layoutDir = tempDir('distill-layout-');
  const layout = new ContentStore(layoutDir, { layout: true });
  const bad = Buffer.from(data);
  bad[0] = 0;
  await assert.rejects(layout.putStream(chunks(bad), expected), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');
  assert.deepEqual(readdirSync(join(layoutDir, 'blobs', 'sha256')), []);
});

test('hostile digests are refused, never turned into a path: traversal, uppercase, another algorithm, short', async () => {
  const dir = tempDir('distill-cas-');
  const store = new ContentStore(dir);
  const hex = expected.sha256;
  const hostile = [
    '../../../etc/passwd',
    `sha256:../${hex.slice(3)}`,
    `sha256:${hex.toUpperCase()}`,
    hex.toUpperCase(),
    `sha512:${hex}${hex}`,
    `md5:${hex.slice(0, 32)}`,
    `sha256:${hex.slice(1)}`,
    `sha256:${hex}/`,
    `sha256:${hex}\0`,
    `SHA256:${hex}`,
    '',
  ];
  for (const d of hostile) {
    assert.throws(() => store.blobPath(d), (e: any) => e.code === 'OCI_INVALID', d);
    await assert.rejects(store.has(d), (e: any) => e.code === 'OCI_INVALID', d);
    await assert.rejects(store.putStream(chunks(data), { what: 'x', sha256: d, size: data.length }), (e: any) => e.code === 'OCI_INVALID', d);
  }
  assert.equal(existsSync(join(dir, 'blobs')), false, 'nothing was written anywhere');
});

test('crash leftovers are swept once stale, live ones kept: ingest/, temporaries beside blobs, old temp names', async () => {
  const dir = tempDir('distill-cas-');
  const store = new ContentStore(dir);
  await store.put(expected, chunks(data));
  const blobs = join(dir, 'blobs', 'sha256');
  const stale = [join(dir, 'ingest', 'abcdef-0123456789ab'), join(blobs, `.${expected.sha256.slice(0, 16)}.0123456789ab.tmp`), join(dir, 'layers', `${'b'.repeat(64)}.json.tmp-00ff`), join(dir, 'layers', `.${'c'.repeat(64)}.json.0123456789ab.tmp`)];
  for (const p of stale) {
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, 'partial');
  }
  const record = join(dir, 'layers', `${'d'.repeat(64)}.json`);
  writeFileSync(record, '{}');
  const old = Date.now() + 2 * 60 * 60 * 1000; // "now" two hours on: everything above is stale
  assert.equal(await store.sweep(undefined, Date.now()), 0, 'fresh temporaries belong to live writers');
  assert.equal(await store.sweep(undefined, old), stale.length);
  for (const p of stale) assert.equal(existsSync(p), false, p);
  assert.equal(existsSync(record), true, 'records are not temporaries');
  assert.equal(await store.verify(expected), true, 'blobs are never swept');
});
