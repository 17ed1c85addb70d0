// The committed libdeflate.wasm: it is the file build.sh makes from pinned sources, and the gzip it
// produces (many sync-flushed blocks in one member) is read by independent decoders — GNU gzip, Python's
// zlib-based gzip module and BusyBox's own inflate. Go's compress/gzip reads it in the image tests
// (skopeo and umoci unpack every built layer).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { DEFLATE_WASM_SHA256, DEFLATE_WASM_URL } from '../../src/layer/deflate.js';
import { createGzip, shutdownGzipWorkers } from '../../src/layer/gzip.js';
import { repoRoot } from '../helpers/paths.js';

const sha = (b: Uint8Array): string => createHash('sha256').update(b).digest('hex');
const has = (cmd: string, args: string[]): boolean => spawnSync(cmd, args).status === 0;

test('the committed libdeflate.wasm is the one the golden outputs were recorded with', () => {
  assert.equal(sha(readFileSync(DEFLATE_WASM_URL)), DEFLATE_WASM_SHA256);
});

/** Why the wasm cannot be rebuilt here, or undefined when it can. */
function toolchainMissing(): string | undefined {
  const clang = spawnSync('clang', ['--version'], { encoding: 'utf8' });
  if (clang.status !== 0) return 'clang is not installed (apt-get install clang lld wasi-libc)';
  if (!clang.stdout.startsWith('Debian clang version 14.0.6')) return `the pinned compiler is Debian clang 14.0.6, found: ${clang.stdout.split('\n')[0]}`;
  if (!has('wasm-ld', ['--version']) && !has('wasm-ld-14', ['--version'])) return 'wasm-ld is not installed (apt-get install lld)';
  if (!existsSync('/usr/lib/wasm32-wasi/libc.a')) return 'wasi-libc is not installed (apt-get install wasi-libc)';
  if (!has('patch', ['--version'])) return 'patch is not installed';
  return undefined;
}

const missing = toolchainMissing();
test('wasm/libdeflate/build.sh rebuilds the committed .wasm byte for byte', { skip: missing }, (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'distill-wasm-'));
  try {
    const out = join(dir, 'libdeflate.wasm');
    const r = spawnSync('sh', [join(repoRoot, 'wasm', 'libdeflate', 'build.sh'), out], { encoding: 'utf8', timeout: 300_000 });
    if (r.status === 3) {
      // No Debian mirror reachable for the pinned source: nothing was compared.
      t.skip(r.stderr.trim());
      return;
    }
    assert.equal(r.status, 0, r.stderr);
    assert.equal(sha(readFileSync(out)), sha(readFileSync(DEFLATE_WASM_URL)), 'the rebuilt .wasm differs from the committed one');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

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
