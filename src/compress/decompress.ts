// Streaming decompression by file suffix. gzip is node:zlib (decompression output is fixed by the
// format, so zlib's version cannot change it). Node has no xz decoder: streams go to `xz -dc` from
// xz-utils, the fastest measured here (shared/docs/perf.md: 74 MB/s) and on every Debian and Ubuntu
// system — up to XZ_SHARED_MAX through a few long-lived processes, larger ones through a child of their
// own — and to liblzma compiled to wasm, in process, where xz cannot be started (xz.ts says why). zstd uses node:zlib where this Node has it (>= 22.15), else `zstd -dc`.
import { spawn } from 'node:child_process';
import { Duplex, PassThrough, type Readable } from 'node:stream';
import * as zlib from 'node:zlib';
import { DistillError } from '../errors.js';
import { createXzDecoder, XZ_SHARED_MAX } from './xz.js';
import { stderrLine, XzPool } from './xz-pool.js';
import { availableParallelism } from 'node:os';

export type Compression = 'none' | 'gzip' | 'xz' | 'zstd';

/** Threads one xz may use: the cores, at most 4 (each thread holds a block's buffers). */
const XZ_THREADS = Math.max(1, Math.min(4, availableParallelism()));

/**
 * This thread's shared `xz -dc` processes (xz-pool.ts), one per core (at most 4), started when first
 * needed. Single-threaded (a member is at most XZ_SHARED_MAX bytes), and limited to the memory the
 * in-process decoder allows (80 MiB: xz -9's 64 MiB dictionary fits), so a member cannot make a
 * long-lived process grow.
 */
let xzPool: XzPool | undefined;
const sharedXz = (): XzPool => (xzPool ??= new XzPool(XZ_THREADS, ['-dc', '-q', '-T1', '--memlimit-decompress=80MiB']));

export function compressionOf(name: string): Compression | undefined {
  if (name.endsWith('.gz')) return 'gzip';
  if (name.endsWith('.xz')) return 'xz';
  if (name.endsWith('.zst')) return 'zstd';
  if (name.endsWith('.tar') || !/\.[a-z0-9]+$/.test(name)) return 'none';
  return undefined;
}

/** A Duplex that decompresses what is written into it. */
export function decompressor(kind: Compression, what: string): Duplex {
  switch (kind) {
    case 'none':
      return new PassThrough();
    case 'gzip':
      return zlib.createGunzip();
    case 'zstd': {
      const z = zlib as unknown as { createZstdDecompress?: () => Duplex };
      if (typeof z.createZstdDecompress === 'function') return z.createZstdDecompress();
      return toolDecompressor('zstd', ['-dc', '-q'], what, 'zstd');
    }
    case 'xz':
      // Small streams in process (liblzma in wasm), larger ones by `xz -dc` (see xz.ts). -T: xz ≥ 5.4
      // decodes the blocks of a multi-block stream in parallel (openjdk's data.tar.xz has 8: ~2x faster
      // here, the same CPU); a single-block stream, and older xz, decode on one thread.
      // The same memory limit as the shared processes and the in-process decoder (xz -9's 64 MiB
      // dictionary fits): a Stream asking for a larger dictionary fails alike whichever decodes it,
      // rather than make a child of its own fill up to 1.5 GiB (ATTACKER-CONTROLLED: the Block Header).
      return createXzDecoder(what, () => toolDecompressor('xz', ['-dc', '-q', `-T${XZ_THREADS}`, '--memlimit-decompress=80MiB'], what, 'xz-utils'), undefined, { pool: sharedXz(), max: XZ_SHARED_MAX });
  }
}

/** Decompress a readable, returning the decompressed readable; errors on either side propagate. */
export function decompress(input: Readable, kind: Compression, what: string): Readable {
  const d = decompressor(kind, what);
  input.on('error', (e) => d.destroy(e));
  return input.pipe(d);
}

function toolDecompressor(cmd: string, args: string[], what: string, pkg: string): Duplex {
  const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s: string) => {
    if (stderr.length < 4096) stderr += s;
  });
  // The output ends only once the tool has exited 0: a truncated or corrupt input makes xz/zstd print
  // everything it could decode and then fail, and that failure must reach the reader as an error
  // rather than as a clean (short) end of stream.
  let stdoutEnded = false;
  let exit: number | null | undefined;
  const finish = (): void => {
    if (!stdoutEnded || exit === undefined) return;
    if (exit === 0) duplex.push(null);
    else {
      duplex.destroy(
        // xz -q prints no warning; its only one when decoding is a Check ID it does not support.
        new DistillError('DECOMPRESS_FAILED', `${what}: ${cmd} exited ${exit}: ${stderrLine(stderr) || (cmd === 'xz' && exit === 2 ? 'the integrity check type is not supported' : 'corrupt input')}`, {
          hint: 'the compressed data is corrupt or truncated',
        }),
      );
    }
  };
  const duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (child.stdin.write(chunk)) cb();
      else child.stdin.once('drain', () => cb());
    },
    final(cb) {
      child.stdin.end(cb);
    },
    read() {
      child.stdout.resume();
    },
    destroy(err, cb) {
      if (exit === undefined) child.kill();
      cb(err);
    },
  });
  child.stdout.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) child.stdout.pause();
  });
  child.stdout.on('end', () => {
    stdoutEnded = true;
    finish();
  });
  child.on('close', (code) => {
    exit = code;
    finish();
  });
  child.on('error', (e: NodeJS.ErrnoException) => {
    duplex.destroy(
      e.code === 'ENOENT'
        ? new DistillError('TOOL_MISSING', `${cmd} is needed to decompress ${what} but is not installed`, {
            cause: e,
            hint: `install it (apt-get install ${pkg})`,
          })
        : new DistillError('DECOMPRESS_FAILED', `${cmd} failed on ${what}: ${e.message}`, { cause: e }),
    );
  });
  // Writing into a child that died early raises EPIPE; the exit status above reports the real cause.
  child.stdin.on('error', () => {});
  return duplex;
}
