// The committed libdeflate.wasm: it is the file build.sh makes from pinned sources, and the gzip it
// produces (many sync-flushed blocks in one member) is read by independent decoders — GNU gzip, Python's
// zlib-based gzip module and BusyBox's own inflate. Go's compress/gzip reads it in the image tests
// (skopeo and umoci unpack every built layer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFLATE_WASM_SHA256, DEFLATE_WASM_URL } from '../../src/layer/deflate.js';
import { createGzip, shutdownGzipWorkers } from '../../src/layer/gzip.js';
import { testWasmRebuild } from '../helpers/wasm-rebuild.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');

test('the committed libdeflate.wasm is the one the golden outputs were recorded with', () => {
  assert.equal(sha(readFileSync(DEFLATE_WASM_URL)), DEFLATE_WASM_SHA256);
});

testWasmRebuild('libdeflate', DEFLATE_WASM_URL, [{ cmd: 'patch', why: 'patch is not installed' }]);

/** Text-like runs, incompressible noise and zero runs, so blocks of every deflate type occur. */
function mixed(size: number): Buffer {
  const out = Buffer.alloc(size);
  let x = 12345;
  for (let at = 0; at < size; ) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    const kind = x % 3;
    const n = Math.min(size - at, 1000 + (x >>> 20));
    for (let i = 0; i < n; i++) {
      x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
      out[at + i] = kind === 0 ? 0x61 + ((x >>> 24) % 6) : kind === 1 ? x >>> 24 : 0;
    }
    at += n;
  }
  return out;
}

test('many sync-flushed blocks in one member: gzip, Python and BusyBox read them', async (t) => {
  const data = mixed(3 * 1024 * 1024 + 333);
  const parts: Buffer[] = [];
  try {
    await pipeline(Readable.from([data]), createGzip({ blockSize: 64 * 1024, workers: 2 }), async (src: AsyncIterable<Buffer>) => {
      for await (const c of src) parts.push(c);
    });
  } finally {
    await shutdownGzipWorkers();
  }
  const gz = Buffer.concat(parts);
  const decoders: [string, string, string[]][] = [
    ['GNU gzip', 'gzip', ['-dc']],
    ['Python gzip', existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3', ['-c', 'import gzip,sys; sys.stdout.buffer.write(gzip.decompress(sys.stdin.buffer.read()))']],
    ['BusyBox gunzip', 'busybox', ['gunzip', '-c']],
  ];
  for (const [name, cmd, args] of decoders) {
    const r = spawnSync(cmd, args, { input: gz, maxBuffer: 64 * 1024 * 1024 });
    if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
      t.diagnostic(`${name}: ${cmd} is not installed, not checked`);
      continue;
    }
    assert.equal(r.status, 0, `${name}: ${r.stderr?.toString()}`);
    assert.ok(r.stdout.equals(data), `${name} read different bytes`);
  }
  const tcheck = spawnSync('gzip', ['-t'], { input: gz });
  if (tcheck.error === undefined) assert.equal(tcheck.status, 0, `gzip -t: ${tcheck.stderr?.toString()}`);
  // One member: the trailer is at the very end and nothing follows it.
  assert.equal(gz.readUInt32LE(gz.length - 4), data.length);
});
