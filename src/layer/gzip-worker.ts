// The block compressor of distill's parallel gzip (src/layer/gzip.ts), and the worker_threads entry that
// runs it. Both the inline path and the workers call `compressBlock`, so the bytes cannot depend on where
// a block was compressed. CRC-32 (ISO-HDLC, the gzip one) is computed per block and joined with
// `crc32Combine` (zlib's algorithm), so the checksum is parallel too.
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { deflateBlock, deflateBlockInto } from './deflate.js';

/** The workerData that tells this module it was started as a gzip worker. */
export const GZIP_WORKER_TAG = 'distill-gzip-worker/3';

/** Deflate's window: the smallest block size allowed. */
export const WINDOW = 32 * 1024;

// ---- CRC-32 (reflected, polynomial 0xEDB88320), slicing-by-8 ----

const CRC_TABLE = (() => {
  const t = new Uint32Array(256 * 8);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  for (let n = 0; n < 256; n++) {
    let c = t[n]!;
    for (let k = 256; k < 256 * 8; k += 256) {
      c = t[c & 0xff]! ^ (c >>> 8);
      t[k + n] = c;
    }
  }
  return t;
})();

/** CRC-32 of `buf`, continuing from `crc` (0 to start). Returns an unsigned 32-bit value. */
export function crc32(buf: Uint8Array, crc = 0): number {
  const t = CRC_TABLE;
  let c = ~crc;
  let i = 0;
  const end8 = buf.length - 7;
  for (; i < end8; i += 8) {
    c ^= buf[i]! | (buf[i + 1]! << 8) | (buf[i + 2]! << 16) | (buf[i + 3]! << 24);
    c =
      t[1792 + (c & 0xff)]! ^
      t[1536 + ((c >>> 8) & 0xff)]! ^
      t[1280 + ((c >>> 16) & 0xff)]! ^
      t[1024 + (c >>> 24)]! ^
      t[768 + buf[i + 4]!]! ^
      t[512 + buf[i + 5]!]! ^
      t[256 + buf[i + 6]!]! ^
      t[buf[i + 7]!]!;
  }
  for (; i < buf.length; i++) c = (c >>> 8) ^ t[(c ^ buf[i]!) & 0xff]!;
  return ~c >>> 0;
}

// crc32_combine from zlib 1.2.12+: multiplication modulo the CRC polynomial, x^(2^n) from a table.
function multModP(a: number, b: number): number {
  let m = 0x80000000;
  let p = 0;
  for (;;) {
    if (a & m) {
      p ^= b;
      if ((a & (m - 1)) === 0) break;
    }
    m >>>= 1;
    b = b & 1 ? (b >>> 1) ^ 0xedb88320 : b >>> 1;
  }
  return p >>> 0;
}

const X2N_TABLE = (() => {
  const t = new Uint32Array(32);
  let p = 0x40000000; // x^1
  t[0] = p;
  for (let n = 1; n < 32; n++) t[n] = p = multModP(p, p);
  return t;
})();

/** CRC-32 of A‖B from crc32(A), crc32(B) and B's length. */
export function crc32Combine(crcA: number, crcB: number, lengthB: number): number {
  let p = 0x80000000; // x^0
  let k = 3; // the length is in bytes: x^(8·len) = x^(2^3·len)
  for (let n = lengthB; n > 0; n = Math.floor(n / 2), k++) {
    if (n % 2 === 1) p = multModP(X2N_TABLE[k & 31]!, p);
  }
  return (multModP(p, crcA) ^ crcB) >>> 0;
}

// ---- the block compressor ----

export interface CompressedBlock {
  /** Raw deflate: byte-aligned, ends with a sync-flush marker, or the final block if `last`. */
  data: Uint8Array;
  /** CRC-32 of the uncompressed block. */
  crc: number;
}

/**
 * Raw-deflates one block with libdeflate (src/layer/deflate.ts), ending with a sync flush or, for the
 * last block, a final block — pigz's scheme with independent blocks (no preset dictionary). The result
 * is a function of the committed .wasm, the level and the exact (block, last) pair, and nothing else.
 */
export function compressBlock(block: Uint8Array, level: number, last: boolean): CompressedBlock {
  return deflateBlock(block, level, last);
}


// ---- the worker ----

/**
 * One block to compress. The block lives in a SharedArrayBuffer of the main thread's block pool
 * (src/layer/gzip.ts): its input is bytes [0, length), and the raw deflate goes to
 * [outOffset, outOffset + outCap). Sharing, not transferring, the memory means no allocation and no
 * external-memory accounting per block in either isolate (transferred ArrayBuffers made V8 collect
 * garbage every few blocks). The main thread does not touch the block until the reply.
 */
export interface BlockJob {
  id: number;
  level: number;
  last: boolean;
  sab: SharedArrayBuffer;
  length: number;
  outOffset: number;
  outCap: number;
}

/** `n` bytes of raw deflate were written at the job's outOffset; `crc` is the input's CRC-32. */
export type BlockReply = { id: number; n: number; crc: number } | { id: number; error: string };

/** Runs one job on this thread (the worker, or the main thread with `workers: 0`). */
export function runBlockJob(job: BlockJob): { n: number; crc: number } {
  const input = new Uint8Array(job.sab, 0, job.length);
  const out = new Uint8Array(job.sab, job.outOffset, job.outCap);
  // deflateBlockInto: compressBlock's bytes, written into `out` rather than a new buffer.
  return deflateBlockInto(input, job.level, job.last, out);
}

if (!isMainThread && workerData === GZIP_WORKER_TAG && parentPort !== null) {
  const port = parentPort;
  // Ready the compressor (the module instantiated, the CRC check run) before the first block arrives.
  deflateBlock(new Uint8Array(0), 1, true);
  port.on('message', (job: BlockJob) => {
    let reply: BlockReply;
    try {
      const r = runBlockJob(job);
      reply = { id: job.id, n: r.n, crc: r.crc };
    } catch (e) {
      reply = { id: job.id, error: e instanceof Error ? e.message : String(e) };
    }
    port.postMessage(reply);
  });
}
