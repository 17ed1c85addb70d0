// The shared `xz -dc` processes: the container parser that gives each member's decoded size (valid,
// lying, padded, multi-stream, truncated input), and one process decoding several members in turn —
// with bad members among them, which fail as a child of their own would, while every other member
// still comes out whole and exact.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { crc32, separatorStream, xzDecodedSize, SEPARATOR_DECODED } from '../../src/compress/xz-format.js';
import { XzPool } from '../../src/compress/xz-pool.js';
import { createXzDecoder } from '../../src/compress/xz.js';
import { decompressor } from '../../src/compress/decompress.js';

const haveXz = spawnSync('xz', ['--version']).status === 0;
const skip = !haveXz && 'xz is not installed';
const xz = (data: Buffer, ...args: string[]): Buffer => spawnSync('xz', ['-c', ...args], { input: data, maxBuffer: 1 << 28 }).stdout as Buffer;
const sample = (n: number): Buffer => Buffer.concat([randomBytes(n / 2), Buffer.alloc(n / 2, 'distill ')]);

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** Rewrites the first Index record's Uncompressed Size (a one- or more-byte VLI) and fixes the CRC32s, so only xz's own check can tell. */
function lyingIndex(member: Buffer, delta: number): Buffer {
  const b = Buffer.from(member);
  const footer = b.length - 12;
  const indexSize = (b.readUInt32LE(footer + 4) + 1) * 4;
  const index = footer - indexSize;
  // Indicator, count (1 byte for < 128 records), then the record: unpadded VLI, uncompressed VLI.
  let at = index + 2;
  while (b[at]! & 0x80) at++;
  at++;
  const start = at;
  let v = 0;
  for (let i = 0; ; i++) {
    v += (b[at]! & 0x7f) * 2 ** (7 * i);
    if (!(b[at++]! & 0x80)) break;
  }
  // Same VLI length: change the low 7 bits.
  const nv = v + delta;
  assert.equal(Math.floor(nv / 128), Math.floor(v / 128), 'the test keeps the VLI length');
  b[start] = (b[start]! & 0x80) | (nv & 0x7f);
  b.writeUInt32LE(crc32(b, index, footer - 4), footer - 4);
  return b;
}

test('xzDecodedSize: what xz wrote, padded, concatenated, in any check and block layout', { skip }, () => {
  const data = sample(400_000);
  for (const args of [[], ['-9e'], ['--check=none'], ['--check=sha256'], ['--check=crc32'], ['-T2', '--block-size=65536']]) {
    const x = xz(data, ...args);
    assert.equal(xzDecodedSize(x), data.length, args.join(' '));
    assert.equal(xzDecodedSize(Buffer.concat([x, Buffer.alloc(12)])), data.length, 'trailing Stream Padding');
    assert.equal(xzDecodedSize(Buffer.concat([x, Buffer.alloc(8), x, Buffer.alloc(4)])), 2 * data.length, 'two Streams with padding');
  }
  assert.equal(xzDecodedSize(xz(Buffer.alloc(0))), 0, 'an empty Stream (no Blocks)');
  const sep = separatorStream(randomBytes(32));
  assert.equal(xzDecodedSize(sep), SEPARATOR_DECODED);
  // xz itself reads the separator as what it says.
  assert.equal((spawnSync('xz', ['-dc'], { input: sep }).stdout as Buffer).length, SEPARATOR_DECODED);
});

test('xzDecodedSize: anything it cannot account for byte by byte is refused', { skip }, () => {
  const x = xz(sample(100_000));
  const refused = (b: Buffer, why: string): void => assert.equal(xzDecodedSize(b), undefined, why);
  refused(Buffer.alloc(0), 'empty');
  refused(Buffer.from('not xz at all, not at all'), 'not xz');
  for (const cut of [1, 4, 12, 13, 24, x.length - 40, x.length - 12]) refused(x.subarray(0, x.length - cut), `truncated by ${cut}`);
  refused(x.subarray(12), 'no Stream Header');
  refused(Buffer.concat([x, Buffer.from('garbage!')]), 'trailing garbage');
  refused(Buffer.concat([x, Buffer.alloc(3)]), 'padding not a multiple of four');
  refused(Buffer.concat([Buffer.alloc(4), x]), 'padding before the first Stream');
  refused(Buffer.concat([Buffer.from('junk'), x]), 'junk before the Stream');
  refused(Buffer.concat([x, Buffer.from('junk'), x]), 'junk between Streams');
  for (const at of [2, 7, 9, x.length - 2, x.length - 5, x.length - 9, x.length - 14]) {
    const b = Buffer.from(x);
    b[at]! ^= 0x01;
    refused(b, `byte ${at} flipped (a CRC32 or magic of the container)`);
  }
  // An unknown check type in both header and footer (CRCs fixed): xz only warns, so not here.
  const odd = Buffer.from(x);
  odd[7] = 0x02;
  odd.writeUInt32LE(crc32(odd, 6, 8), 8);
  odd[odd.length - 3] = 0x02;
  odd.writeUInt32LE(crc32(odd, odd.length - 8, odd.length - 2), odd.length - 12);
  refused(odd, 'unknown check type');
  // An Index that lies about the decoded size parses (its CRC32 is right): xz and the pool catch it.
  assert.equal(xzDecodedSize(lyingIndex(x, 1)), 100_001);
});

test('one shared process decodes members in turn; bad ones among them fail like a child of their own, the rest come out exact', { skip }, async () => {
  const pool = new XzPool(1);
  const datas = [sample(200_000), sample(3_000_000), Buffer.alloc(0), sample(10), sample(100_000), sample(500_000), sample(64_000)];
  const members = datas.map((d) => xz(d));
  const corrupt = Buffer.from(members[1]!);
  corrupt[Math.floor(corrupt.length / 2)]! ^= 0x55; // a Block's data: the container still parses
  const liesLow = lyingIndex(members[4]!, -1);
  const liesHigh = lyingIndex(members[5]!, +1);
  const feed: [string, Buffer, Buffer | undefined][] = [
    ['m0', members[0]!, datas[0]],
    ['corrupt', corrupt, undefined],
    ['m2', members[2]!, datas[2]],
    ['m3', members[3]!, datas[3]],
    ['lies low', liesLow, undefined],
    ['m1', members[1]!, datas[1]],
    ['lies high', liesHigh, undefined],
    ['m6', members[6]!, datas[6]],
    ['m0 again', members[0]!, datas[0]],
  ];
  const fallbacks: string[] = [];
  const runs = feed.map(([what, member, want]) => {
    const size = xzDecodedSize(member);
    assert.notEqual(size, undefined, what);
    const out = pool.decode(what, member, size!, () => {
      fallbacks.push(what);
      return Readable.from([]);
    });
    return collect(out).then(
      (got) => ({ what, got, want }),
      (e: any) => ({ what, error: e, want }),
    );
  });
  for (const r of await Promise.all(runs)) {
    if (r.want === undefined) {
      assert.ok('error' in r, `${r.what} must fail`);
      assert.equal(r.error.code, 'DECOMPRESS_FAILED', r.what);
      assert.match(r.error.message, new RegExp(`^${r.what}: xz`), r.what);
    } else {
      assert.ok(!('error' in r), `${r.what}: ${'error' in r ? r.error.message : ''}`);
      assert.ok(r.got!.equals(r.want), `${r.what}: exact output`);
    }
  }
  assert.deepEqual(fallbacks, []);
  // A corrupt Block is reported with xz's own words, as `xz -dc` alone reports it.
  const alone = spawnSync('xz', ['-dc', '-q'], { input: corrupt, maxBuffer: 1 << 28 });
  const err = (await runs[1]!) as { error: Error };
  assert.equal(err.error.message, `corrupt: xz exited ${alone.status}: ${String(alone.stderr).trim()}`);
});

test('a consumer that stops reading, or goes away, holds up no other member for good', { skip }, async () => {
  const pool = new XzPool(1);
  const big = sample(4_000_000);
  const small = sample(50_000);
  const a = pool.decode('a', xz(big), big.length, () => assert.fail('no fallback'));
  const b = pool.decode('b', xz(small), small.length, () => assert.fail('no fallback'));
  // Read a little of a, then drop it: b still comes out whole.
  for await (const c of a) {
    assert.ok((c as Buffer).length > 0);
    break;
  }
  assert.ok((await collect(b)).equals(small));
});

test('an xz that holds more output back than the separator pushes out still delivers every member (once its input is ended)', { skip }, async () => {
  // dd with 1 MiB full blocks stands for an xz built with larger buffers.
  const pool = new XzPool(1, ['-c', 'xz -dc -q -T1 | dd bs=1M iflag=fullblock status=none'], 'sh');
  const datas = [sample(30_000), sample(20_000), sample(40_000)];
  const outs = datas.map((d, i) => collect(pool.decode(`m${i}`, xz(d), d.length, () => assert.fail('no fallback'))));
  const got = await Promise.all(outs);
  got.forEach((g, i) => assert.ok(g.equals(datas[i]!), `m${i}`));
  // And the pool goes on with a fresh process.
  const more = sample(10_000);
  assert.ok((await collect(pool.decode('after', xz(more), more.length, () => assert.fail('no fallback')))).equals(more));
});

test('without an xz to start, members are decoded by the fallback', async () => {
  const pool = new XzPool(2);
  // No xz on the PATH the child would be started with.
  const orig = process.env.PATH;
  process.env.PATH = '/nonexistent';
  try {
    const data = Buffer.from('hello');
    const out = pool.decode('x', Buffer.from('whatever'), 5, () => Readable.from([data]));
    assert.ok((await collect(out)).equals(data));
    assert.equal(pool.available, false);
  } finally {
    process.env.PATH = orig;
  }
});

test('createXzDecoder with the pool: small and mid-sized members go through it, in any chunking; what it does not take goes the old way', { skip }, async () => {
  const pool = new XzPool(2);
  let spawnedAll = 0;
  const run = async (input: Buffer, chunk: number): Promise<{ out: Buffer; spawned: number }> => {
    let spawned = 0;
    const parts: Buffer[] = [];
    for (let at = 0; at < input.length; at += chunk) parts.push(input.subarray(at, at + chunk));
    const d = createXzDecoder('t', () => {
      spawned++;
      spawnedAll++;
      return decompressor('xz', 't (xz -dc)');
    }, 1000, { pool, max: 2_000_000 });
    return { out: await collect(Readable.from(parts).pipe(d)), spawned };
  };
  const data = sample(1_000_000);
  const x = xz(data);
  assert.ok(x.length > 1000 && x.length < 2_000_000);
  const r = await run(x, 7_000);
  assert.ok(r.out.equals(data));
  assert.equal(r.spawned, 0);
  // Trailing garbage: the pool does not take it; held past inlineMax, it goes to a child of its own.
  const before = spawnedAll;
  await assert.rejects(run(Buffer.concat([x, Buffer.from('garbage!')]), 65_536), (e: any) => e.code === 'DECOMPRESS_FAILED');
  assert.equal(spawnedAll, before + 1);
});

test('a small member that expands enormously is produced only as fast as it is read', { skip }, async () => {
  // 256 MiB of zeros in a few tens of KiB: the process is paused while the reader is.
  const bomb = spawnSync('sh', ['-c', 'head -c 268435456 /dev/zero | xz -c -9'], { maxBuffer: 1 << 26 }).stdout as Buffer;
  const size = xzDecodedSize(bomb);
  assert.equal(size, 268435456);
  const pool = new XzPool(1);
  const out = pool.decode('bomb', bomb, size!, () => assert.fail('no fallback'));
  let got = 0;
  for await (const c of out) {
    got += (c as Buffer).length;
    if (got > 4 * 1024 * 1024) break;
  }
  await new Promise((r) => setTimeout(r, 200)); // were it not paused, xz would run ahead meanwhile
  assert.ok(process.memoryUsage().arrayBuffers < 128 * 1024 * 1024, 'decoded bytes were buffered');
});
