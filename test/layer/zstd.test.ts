// The committed zstd.wasm: it is the file wasm/zstd/build.sh makes from pinned sources; its frames do not
// depend on how the input was chunked; the zstd CLI (Debian's, the reference decoder) reads them; and
// the decompressor that checks cached layers reads them back and refuses damaged or truncated ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';
import { createUnzstd, createZstd, ZSTD_MAGIC, ZSTD_WASM_SHA256, ZSTD_WASM_URL } from '../../src/layer/zstd.js';
import { layerDecompressorFor } from '../../src/layer/compression.js';
import { testWasmRebuild } from '../helpers/wasm-rebuild.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args).status === 0;

async function run(t: Transform, chunks: Uint8Array[]): Promise<Buffer> {
  const parts: Buffer[] = [];
  await pipeline(Readable.from(chunks), t, async (src: AsyncIterable<Buffer>) => {
    for await (const c of src) parts.push(c);
  });
  return Buffer.concat(parts);
}

/** Text-like runs, incompressible noise and zero runs. */
function mixed(size: number, seed = 12345): Buffer {
  const out = Buffer.alloc(size);
  let x = seed;
  for (let at = 0; at < size; ) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const kind = x % 3;
    const n = Math.min(size - at, 1000 + (x >>> 18));
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      out[at + i] = kind === 0 ? 0x61 + ((x >>> 24) % 6) : kind === 1 ? x >>> 24 : 0;
    }
    at += n;
  }
  return out;
}

/** `data` cut into pieces of pseudo-random sizes (1 byte to 300 KiB). */
function chop(data: Buffer, seed: number): Buffer[] {
  const out: Buffer[] = [];
  let x = seed;
  for (let at = 0; at < data.length; ) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const n = x % 7 === 0 ? 1 : 1 + (x % (300 * 1024));
    out.push(data.subarray(at, at + n));
    at += n;
  }
  return out;
}

test('the committed zstd.wasm is the one the golden output was recorded with', () => {
  assert.equal(sha(readFileSync(ZSTD_WASM_URL)), ZSTD_WASM_SHA256);
});

testWasmRebuild('zstd', ZSTD_WASM_URL, [{ cmd: 'xz', why: 'xz is not installed' }], 600_000);

test('golden: a fixed input compresses to fixed bytes, whatever the chunking', async () => {
  const data = mixed(5 * 1024 * 1024 + 777);
  const whole = await run(createZstd(), [data]);
  assert.ok(whole.subarray(0, 4).equals(ZSTD_MAGIC));
  assert.equal(sha(whole), '15adeee9435766a5da798b1672ec847934f254afed3046ae55ac1346d2b3a1f6');
  for (const seed of [1, 2, 3]) {
    const chunked = await run(createZstd(), chop(data, seed));
    assert.equal(sha(chunked), sha(whole), `chunking ${seed} changed the bytes`);
  }
  const tiny = await run(createZstd(), chop(data.subarray(0, 200_000), 9).flatMap((c) => [...c].map((b) => Buffer.from([b]))).slice(0, 20_000));
  assert.equal(sha(tiny), sha(await run(createZstd(), [data.subarray(0, 20_000)])), 'byte-by-byte input changed the bytes');
});

test('the zstd CLI reads the frames, with their checksum; our decompressor reads them back', async (t) => {
  const data = mixed(3 * 1024 * 1024 + 5, 777);
  const z = await run(createZstd(), chop(data, 4));
  const empty = await run(createZstd(), []);
  if (!has('zstd', ['--version'])) t.diagnostic('zstd is not installed: the CLI check is skipped');
  else {
    const r = spawnSync('zstd', ['-dc'], { input: z, maxBuffer: 64 * 1024 * 1024 });
    assert.equal(r.status, 0, r.stderr.toString());
    assert.ok(r.stdout.equals(data), 'zstd -d read different bytes');
    const e = spawnSync('zstd', ['-dc'], { input: empty });
    assert.equal(e.status, 0, e.stderr.toString());
    assert.equal(e.stdout.length, 0);
    // A content checksum is present (frame header descriptor bit 2) and checked by the CLI.
    assert.equal(z[4]! & 0x04, 0x04);
  }
  assert.ok((await run(createUnzstd(), chop(z, 5))).equals(data));
  assert.equal((await run(createUnzstd(), [empty])).length, 0);
});

test('damaged and truncated frames are refused', async () => {
  const data = mixed(600 * 1024, 3);
  const z = await run(createZstd(), [data]);
  await assert.rejects(run(createUnzstd(), [z.subarray(0, z.length - 10)]), /ends inside a frame/);
  const bad = Buffer.from(z);
  bad[bad.length - 2]! ^= 0xff; // the checksum
  await assert.rejects(run(createUnzstd(), [bad]), /not valid zstd/);
  await assert.rejects(run(createUnzstd(), [Buffer.from('not zstd at all, just text')]), /not valid zstd/);
});

test('a layer blob is decompressed as what its bytes are, gzip or zstd', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-zstd-'));
  try {
    const data = mixed(100_000, 8);
    writeFileSync(join(dir, 'z'), await run(createZstd(), [data]));
    writeFileSync(join(dir, 'g'), spawnSync('gzip', ['-c'], { input: data }).stdout);
    for (const f of ['z', 'g']) assert.ok((await run(await layerDecompressorFor(join(dir, f)), [readFileSync(join(dir, f))])).equals(data), f);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
