// The in-process .xz decoder (liblzma in wasm) and the size rule that picks it or `xz -dc`: both paths
// decode what xz wrote, refuse truncated, corrupt and trailing-garbage input with DECOMPRESS_FAILED, and
// the committed wasm/xz.wasm is what wasm/xz/build.sh makes from the pinned source.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { decompressor } from '../../src/compress/decompress.js';
import { createXzDecoder } from '../../src/compress/xz.js';
import { XZ_WASM_SHA256, XZ_WASM_URL } from '../../src/compress/xz-wasm.js';
import { testWasmRebuild } from '../helpers/wasm-rebuild.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const haveXz = spawnSync('xz', ['--version']).status === 0;
const data = Buffer.concat([randomBytes(300_000), Buffer.alloc(2_000_000, 'distill ')]);
const packed = haveXz ? (spawnSync('xz', ['-c', '-6'], { input: data, maxBuffer: 1 << 26 }).stdout as Buffer) : Buffer.alloc(0);

async function decode(input: Buffer, inlineMax: number, chunk = 10_000): Promise<Buffer> {
  const parts: Buffer[] = [];
  for (let at = 0; at < input.length; at += chunk) parts.push(input.subarray(at, at + chunk));
  let spawned = 0;
  const d = createXzDecoder('test', () => {
    spawned++;
    return decompressor('xz', 'test (xz -dc)');
  }, inlineMax);
  const out: Buffer[] = [];
  for await (const c of Readable.from(parts).pipe(d)) out.push(c as Buffer);
  assert.equal(spawned, input.length > inlineMax ? 1 : 0, 'the size rule picks the decoder');
  return Buffer.concat(out);
}

test('the committed xz.wasm is the one this code was checked with', () => {
  assert.equal(sha(readFileSync(XZ_WASM_URL)), XZ_WASM_SHA256);
});

for (const [name, inlineMax] of [['in process (wasm)', Infinity], ['xz -dc', 0]] as const) {
  test(`${name}: decodes what xz wrote, in any chunking`, { skip: !haveXz && 'xz is not installed' }, async () => {
    assert.ok((await decode(packed, inlineMax)).equals(data));
    // Two concatenated streams read as one, as `xz -dc` does.
    assert.ok((await decode(Buffer.concat([packed, packed]), inlineMax, 65_536)).equals(Buffer.concat([data, data])));
  });

  test(`${name}: truncated, corrupt and trailing garbage are DECOMPRESS_FAILED, not a short clean end`, { skip: !haveXz && 'xz is not installed' }, async () => {
    const isFailure = (e: any): boolean => e.code === 'DECOMPRESS_FAILED';
    await assert.rejects(decode(packed.subarray(0, packed.length - 10), inlineMax), isFailure);
    await assert.rejects(decode(packed.subarray(0, 200), inlineMax), isFailure);
    const corrupt = Buffer.from(packed);
    corrupt[Math.floor(corrupt.length / 2)]! ^= 0x55;
    await assert.rejects(decode(corrupt, inlineMax), isFailure);
    await assert.rejects(decode(Buffer.concat([packed, Buffer.from('garbage!')]), inlineMax), isFailure);
    await assert.rejects(decode(Buffer.from('not xz at all'), inlineMax), isFailure);
  });
}

test('in process: a small stream that expands enormously is produced only as fast as it is read', { skip: !haveXz && 'xz is not installed' }, async () => {
  // 256 MiB of zeros in a few tens of KiB.
  const bomb = spawnSync('sh', ['-c', 'head -c 268435456 /dev/zero | xz -c -9'], { maxBuffer: 1 << 26 }).stdout as Buffer;
  assert.ok(bomb.length < 100_000);
  const d = createXzDecoder('bomb', () => assert.fail('not spawned'), Infinity);
  Readable.from([bomb]).pipe(d);
  let got = 0;
  for await (const c of d) {
    got += (c as Buffer).length;
    if (got > 4 * 1024 * 1024) break; // stop reading: the decoder must not run ahead meanwhile
  }
  const rss = process.memoryUsage().arrayBuffers;
  assert.ok(rss < 128 * 1024 * 1024, `decoded bytes were buffered: ${rss}`);
  d.destroy();
});

testWasmRebuild('xz', XZ_WASM_URL, [{ cmd: 'xz', why: 'xz is not installed (the source tarball is .tar.xz)' }]);
