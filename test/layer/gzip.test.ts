import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { gunzipSync } from 'node:zlib';
import { createGzip, DEFAULT_LEVEL, GzipWriter, gzipBlockPool, gzipHeader, shutdownGzipWorkers, type GzipOptions } from '../../src/layer/gzip.js';
import { SinkWriter } from '../../src/layer/block-sink.js';
import { deflateBound, maxDeflatedSize, nodeCrc32Agrees } from '../../src/layer/deflate.js';
import * as zlib from 'node:zlib';
import { compressBlock, crc32, crc32Combine } from '../../src/layer/gzip-worker.js';

after(() => shutdownGzipWorkers());

const hasGzip = spawnSync('gzip', ['--version']).status === 0;

/** Layer-like bytes, the same on every machine: text with repeats, some noise, some zero runs. */
function generate(size: number, seed = 1): Buffer {
  const words = ['usr/lib/', 'python3.13/', 'def ', 'return ', 'self.', '__init__', '(', ')', ':\n    ', 'import ', 'ELF', '\0\0\0\0'];
  const out = Buffer.alloc(size);
  let x = seed >>> 0;
  let at = 0;
  while (at < size) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    if (x % 7 === 0) at += out.write(String.fromCharCode(32 + ((x >>> 9) % 95)), at, 'latin1');
    else at += out.write(words[(x >>> 16) % words.length]!, at, 'latin1');
  }
  return out;
}

/** Gzips `data` fed in pieces of the given sizes (cycled), collecting the output. */
async function gz(data: Buffer, opts: GzipOptions, pieces: number[] = [65536]): Promise<Buffer> {
  const out: Buffer[] = [];
  function* chunks(): Generator<Buffer> {
    let at = 0;
    for (let i = 0; at < data.length; i++) {
      const n = pieces[i % pieces.length]!;
      yield data.subarray(at, at + n);
      at += n;
    }
  }
  await pipeline(Readable.from(chunks()), createGzip(opts), async (source: AsyncIterable<Buffer>) => {
    for await (const c of source) out.push(c);
  });
  return Buffer.concat(out);
}

const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

function gunzipWithGnu(b: Buffer): Buffer {
  const r = spawnSync('gzip', ['-dc'], { input: b, maxBuffer: 256 * 1024 * 1024 });
  assert.equal(r.status, 0, r.stderr?.toString());
  return r.stdout;
}

test('crc32 matches the check value and combines like zlib', () => {
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
  assert.equal(crc32(Buffer.alloc(0)), 0);
  const data = generate(100_003, 7);
  for (const cut of [0, 1, 7, 8, 9, 4096, 50_000, 100_003]) {
    const a = data.subarray(0, cut);
    const b = data.subarray(cut);
    assert.equal(crc32Combine(crc32(a), crc32(b), b.length), crc32(data), `cut at ${cut}`);
    assert.equal(crc32(b, crc32(a)), crc32(data));
  }
});

test('node:zlib\'s crc32 is used for the checksum only where it agrees with ours', () => {
  const hasNodeCrc = typeof (zlib as { crc32?: unknown }).crc32 === 'function';
  assert.equal(nodeCrc32Agrees((b) => crc32(b)), hasNodeCrc);
  assert.equal(nodeCrc32Agrees((b) => (b.length === 4096 ? crc32(b) ^ 1 : crc32(b))), false, 'one disagreement is enough to keep ours');
});

test('the header is fixed: no name, mtime 0, XFL by level, OS 3', () => {
  assert.equal(gzipHeader(6).toString('hex'), '1f8b0800000000000003');
  assert.equal(gzipHeader(9).toString('hex'), '1f8b0800000000000203');
  assert.equal(gzipHeader(12).toString('hex'), '1f8b0800000000000203');
  assert.equal(gzipHeader(1).toString('hex'), '1f8b0800000000000403');
});

test('empty input gives the one fixed empty gzip', async () => {
  for (const workers of [0, 2]) {
    const out = await gz(Buffer.alloc(0), { workers });
    // libdeflate writes one empty final stored block for empty input.
    assert.equal(out.toString('hex'), '1f8b0800000000000003' + '010000ffff' + '00000000' + '00000000');
    assert.equal(gunzipSync(out).length, 0);
  }
});

test('round-trips through node:zlib and gzip -dc, and gzip -t passes', async () => {
  const data = generate(1024 * 1024 + 17);
  for (const level of [1, 6, 9, 12]) {
    const out = await gz(data, { level, workers: 2 });
    assert.ok(gunzipSync(out).equals(data), `level ${level}`);
    if (hasGzip) {
      assert.ok(gunzipWithGnu(out).equals(data), `gzip -dc, level ${level}`);
      const t = spawnSync('gzip', ['-t'], { input: out });
      assert.equal(t.status, 0, t.stderr?.toString());
    }
  }
  // Incompressible input: libdeflate stores blocks, and a stored block may be followed by the sync flush.
  const noise = Buffer.alloc(200_000);
  for (let i = 0, x = 9; i < noise.length; i++) noise[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  const stored = await gz(noise, { blockSize: 65536, workers: 0 });
  assert.ok(gunzipSync(stored).equals(noise), 'stored blocks');
  if (hasGzip) assert.ok(gunzipWithGnu(stored).equals(noise), 'stored blocks, gzip -dc');
});

test('bytes are the same for workers 0, 1, 2 and 4 and for any input chunking', async () => {
  const data = generate(400 * 1024 + 12_345, 3);
  const opts = { blockSize: 64 * 1024 };
  const reference = await gz(data, { ...opts, workers: 0 }, [data.length]);
  assert.ok(gunzipSync(reference).equals(data));
  for (const workers of [0, 1, 2, 4]) {
    for (const pieces of [[data.length], [65536], [1000], [1, 65535, 65537, 7], [131_072 + 1]]) {
      const out = await gz(data, { ...opts, workers }, pieces);
      assert.ok(out.equals(reference), `workers ${workers}, pieces ${pieces.join(',')}`);
    }
  }
});

test('input of exactly one block, and one byte over', async () => {
  const blockSize = 64 * 1024;
  const data = generate(blockSize + 1, 5);
  const one = await gz(data.subarray(0, blockSize), { blockSize, workers: 1 }, [1000]);
  // one block, finished: header, the block's raw deflate, trailer — nothing else
  const block = compressBlock(data.subarray(0, blockSize), DEFAULT_LEVEL, true);
  assert.ok(one.subarray(10, one.length - 8).equals(Buffer.from(block.data)));
  assert.ok(gunzipSync(one).equals(data.subarray(0, blockSize)));
  const over = await gz(data, { blockSize, workers: 1 });
  const first = compressBlock(data.subarray(0, blockSize), DEFAULT_LEVEL, false);
  // a sync flush: the stream stays open and ends byte-aligned with an empty stored block
  assert.equal(Buffer.from(first.data.subarray(-4)).toString('hex'), '0000ffff');
  const second = compressBlock(data.subarray(blockSize), DEFAULT_LEVEL, true);
  assert.ok(over.subarray(10, over.length - 8).equals(Buffer.concat([first.data, second.data])));
  assert.ok(gunzipSync(over).equals(data));
  if (hasGzip) assert.ok(gunzipWithGnu(over).equals(data));
  assert.equal(over.readUInt32LE(over.length - 8), crc32(data));
  assert.equal(over.readUInt32LE(over.length - 4), data.length);
});

test('deterministic across runs', async () => {
  const data = generate(700_000, 11);
  const a = await gz(data, { workers: 2, blockSize: 128 * 1024 });
  const b = await gz(data, { workers: 2, blockSize: 128 * 1024 }, [333]);
  assert.ok(a.equals(b));
});

// If this fails, wasm/libdeflate.wasm (or the block scheme) changed: every layer digest distill produces
// changes with it. Update the constants only on purpose (bump LAYER_FORMAT, re-record
// reproducibility/digests.json) and say so in the commit.
test('golden: libdeflate 1.14 wasm, 1 MiB blocks — sha256 of the gzip of the fixed 3 MiB input, at the default level (5) and at 6', async () => {
  const data = generate(3 * 1024 * 1024, 42);
  assert.equal(sha(data), '0ccdd0de9b88f50ad69f1981c6079319e943309c5171b7c030aea225317a9cc7', 'the input generator changed, not the deflate');
  assert.equal(DEFAULT_LEVEL, 5, 'the default level is part of every layer digest');
  const out = await gz(data, {});
  assert.ok(gunzipSync(out).equals(data));
  assert.deepEqual(
    { size: out.length, sha256: sha(out) },
    { size: 673_872, sha256: 'de6b6aea8920fe971fddbf4d6b37ecccfa9418bc5a760cf12d1fbe3ad810aa85' },
  );
  const six = await gz(data, { level: 6 });
  assert.deepEqual(
    { size: six.length, sha256: sha(six) },
    { size: 645_647, sha256: '6b0eea3c64836de4d6ad0e268a74a63b4cfcde7ad1ff2be14a3ffd61d109ae80' },
  );
});

test('invalid options are refused', () => {
  for (const opts of [{ level: 13 }, { level: 0 }, { level: -1 }, { level: 1.5 }, { blockSize: 1000 }, { blockSize: 2 ** 30 }, { workers: -1 }, { workers: 1.5 }]) {
    assert.throws(() => createGzip(opts), (e: any) => e.code === 'USAGE', JSON.stringify(opts));
  }
});

test('the worker pool does not keep a process alive', () => {
  const url = new URL('../../src/layer/gzip.js', import.meta.url).href;
  const script = `
    import { createGzip } from ${JSON.stringify(url)};
    const gz = createGzip({ workers: 2, blockSize: 65536 });
    let n = 0;
    gz.on('data', (c) => { n += c.length; });
    gz.on('end', () => { console.log('done', n); });
    gz.end(Buffer.alloc(300000, 97));
  `;
  const t0 = Date.now();
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /^done \d+/);
  assert.ok(Date.now() - t0 < 10_000);
  // nor do workers started ahead of any block (startGzipWorkers), idle or used
  const warm = `
    import { createGzip, startGzipWorkers } from ${JSON.stringify(url)};
    startGzipWorkers({ workers: 2 });
    if (process.argv[1] === 'use') createGzip({ workers: 2 }).on('data', () => {}).on('end', () => console.log('used')).end(Buffer.alloc(3000000, 98));
    else console.log('idle');
  `;
  for (const mode of ['idle', 'use']) {
    const w = spawnSync(process.execPath, ['--input-type=module', '-e', warm, mode], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(w.status, 0, w.stderr);
    assert.equal(w.stdout.trim(), mode === 'use' ? 'used' : 'idle');
  }
});

/** The gzip of `data` built from compressBlock (fresh buffers, no pool): what any block scheme run must give. */
function expectedGzip(data: Buffer, blockSize: number, level = DEFAULT_LEVEL): Buffer {
  const parts: Buffer[] = [gzipHeader(level)];
  let at = 0;
  do {
    const end = Math.min(at + blockSize, data.length);
    parts.push(Buffer.from(compressBlock(data.subarray(at, end), level, end === data.length).data));
    at = end;
  } while (at < data.length);
  const trailer = Buffer.alloc(8);
  trailer.writeUInt32LE(crc32(data), 0);
  trailer.writeUInt32LE(data.length % 2 ** 32, 4);
  parts.push(trailer);
  return Buffer.concat(parts);
}

test('the output region of a block holds any deflate libdeflate can write', () => {
  for (const n of [0, 1, 32 * 1024, 1024 * 1024, 1024 * 1024 + 1, 64 * 1024 * 1024]) {
    assert.ok(maxDeflatedSize(n) >= deflateBound(n), `${n}: ${maxDeflatedSize(n)} < ${deflateBound(n)}`);
  }
});

test('pooled blocks are reused, and a reused block never carries bytes of its last use', async () => {
  const blockSize = 64 * 1024;
  // Incompressible input fills every block's input and most of its output region first...
  const noise = Buffer.alloc(6 * blockSize + 100);
  for (let i = 0, x = 5; i < noise.length; i++) noise[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  for (const workers of [0, 2]) {
    assert.ok((await gz(noise, { blockSize, workers })).equals(expectedGzip(noise, blockSize)), `noise, workers ${workers}`);
    const made = gzipBlockPool().made;
    // ...then short and compressible blocks, at every end position, come out as from fresh memory.
    for (const size of [0, 1, 1000, blockSize - 1, blockSize, blockSize + 1, 3 * blockSize + 17]) {
      const data = generate(size, size + 1);
      const out = await gz(data, { blockSize, workers }, [777]);
      assert.ok(out.equals(expectedGzip(data, blockSize)), `${size} bytes after noise, workers ${workers}`);
      assert.ok(gunzipSync(out).equals(data));
    }
    assert.equal(gzipBlockPool().made, made, 'no new block was needed: the pool was reused');
    assert.equal(gzipBlockPool().inUse, 0);
  }
  // With no stream open, only a few spare blocks are kept.
  const many = await Promise.all([1, 2, 3, 4].map((seed) => gz(generate(5 * blockSize, seed), { blockSize, workers: 2 })));
  assert.equal(many.length, 4);
  assert.deepEqual([gzipBlockPool().open, gzipBlockPool().inUse], [0, 0]);
  assert.ok(gzipBlockPool(blockSize).spare <= 6, `${gzipBlockPool(blockSize).spare} spare blocks`);
});

test('a failing output stops the stream, and every block goes back to the pool', async () => {
  const blockSize = 64 * 1024;
  const data = generate(10 * blockSize, 9);
  for (const workers of [0, 2]) {
    const boom = new Error('disk full');
    let calls = 0;
    const w = new GzipWriter({ blockSize, workers }, async () => {
      if (++calls === 2) throw boom;
      await new Promise((r) => setTimeout(r, 1));
    });
    const sink = new SinkWriter(w);
    await assert.rejects(
      (async () => {
        for (let at = 0; at < data.length; at += 10_000) await sink.write(data.subarray(at, at + 10_000));
        await sink.end();
      })(),
      (e) => e === boom,
    );
    await w.abort();
    assert.equal(calls, 2, 'nothing is output after the failure');
    assert.deepEqual([gzipBlockPool().inUse, gzipBlockPool().open], [0, 0], `workers ${workers}`);
    // and an aborted stream outputs nothing more either
    let after = 0;
    const v = new GzipWriter({ blockSize, workers }, () => {
      after++;
    });
    const vs = new SinkWriter(v);
    await vs.write(data.subarray(0, 3 * blockSize + 5));
    await v.abort();
    const seen = after;
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(after, seen);
    assert.equal(gzipBlockPool().inUse, 0);
    await assert.rejects(Promise.resolve().then(() => v.next(0)), /aborted/);
  }
});

test('blocks in flight when the worker pool shuts down are failed and freed, never reused', async () => {
  const blockSize = 1024 * 1024; // several ms per block
  const data = generate(3 * blockSize, 4);
  // One worker: right after two blocks and a byte, the first block is in the worker (it was handed on
  // a moment ago). On a very busy machine it may finish before the shutdown; then try again.
  let caught = 0;
  for (let attempt = 0; attempt < 5 && caught === 0; attempt++) {
    const w = new GzipWriter({ blockSize, workers: 1 }, () => {});
    const sink = new SinkWriter(w);
    await sink.write(data.subarray(0, 2 * blockSize + 1));
    await shutdownGzipWorkers();
    try {
      await sink.write(data.subarray(2 * blockSize + 1));
      await sink.end();
    } catch (e: any) {
      assert.equal(e.code, 'LAYER_IO');
      assert.match(e.message, /shut down/);
      caught++;
    }
    await w.abort();
    assert.deepEqual([gzipBlockPool().inUse, gzipBlockPool().open], [0, 0]);
  }
  assert.equal(caught, 1, 'a shutdown caught a block in flight');
  // a new stream starts a new pool and gives the right bytes
  const out = await gz(data, { blockSize, workers: 2 });
  assert.ok(out.equals(expectedGzip(data, blockSize)));
});
