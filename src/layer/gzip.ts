// Deterministic, parallel gzip (RFC 1952) for layer blobs, pigz's scheme with libdeflate as the deflate.
//
// The input is cut into fixed blocks (default 1 MiB). Each block is raw-deflated on its own by libdeflate
// compiled to WebAssembly (src/layer/deflate.ts) and ends with a sync flush (the last block: a final
// block), so the concatenation is one valid deflate stream in one gzip member. The bytes therefore depend
// only on the committed libdeflate.wasm, the level and the block size — not on the number of workers, on
// how the input was chunked, on the host, on the Node version or on Node's zlib. A golden test pins them
// (test/layer/gzip.test.ts).
//
// The header is written here, fixed: 1f 8b 08 (deflate), FLG 0 (no name, comment, extra or header CRC),
// MTIME 0, XFL 2 at levels ≥ 8, 4 at level 1, else 0 (as libdeflate's gzip writer sets it), OS 3
// ("Unix") on every host — what `gzip -n` writes; Node's zlib would write the host's OS byte.
//
// node:zlib is not used, not even behind a guard: Node bundles Chromium's zlib fork and has changed its
// output within major lines (some of it with an unchanged version string, some only on one OS); its
// maintainers promise only that output round-trips. libdeflate in wasm is also faster per core than
// node:zlib here (see test/bench/gzip.ts), and pako (the previous deflate) ~3× slower.
//
// Workers: one process-wide worker_threads pool, grown on demand to the largest `workers` asked for,
// started lazily and unref'd whenever idle, so it never keeps the process alive. Each stream keeps at
// most `workers + 1` blocks in flight plus the one it is filling, so memory stays at a few blocks
// whatever the layer size; `workers: 0` compresses inline on the calling thread.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { DistillError, messageOf } from '../errors.js';
import { MAX_LEVEL, MIN_LEVEL } from './deflate.js';
import {
  GZIP_WORKER_TAG,
  WINDOW,
  compressBlock,
  crc32Combine,
  type BlockJob,
  type BlockReply,
  type CompressedBlock,
} from './gzip-worker.js';
import { superviseWorker } from '../util/worker.js';

export interface GzipOptions {
  /** libdeflate level 1–12; default 6. Part of the output's identity. */
  level?: number;
  /** Uncompressed bytes per block, 32 KiB–64 MiB; default 1 MiB. Part of the output's identity. */
  blockSize?: number;
  /** Blocks compressed at once in worker threads; default os.availableParallelism(); 0 = inline. Never changes the bytes. */
  workers?: number;
}

// 5, not zlib's 6: on the layers of python3 and java it writes fewer bytes than GNU `gzip -n -6` (the native
// pipeline's; -0.8 % on both) for 7–18 % less CPU than libdeflate's 6 (README, "Compression level").
export const DEFAULT_LEVEL = 5;
export const DEFAULT_BLOCK_SIZE = 1024 * 1024;
const MIN_BLOCK_SIZE = WINDOW;
const MAX_BLOCK_SIZE = 64 * 1024 * 1024;
const MAX_WORKERS = 64;

/** The 10-byte gzip header for a level (see the file comment). */
export function gzipHeader(level: number): Buffer {
  const xfl = level >= 8 ? 2 : level < 2 ? 4 : 0;
  return Buffer.from([0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, xfl, 0x03]);
}

function gzipTrailer(crc: number, size: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeUInt32LE(crc >>> 0, 0);
  b.writeUInt32LE(size % 2 ** 32, 4); // ISIZE: the input length modulo 2^32
  return b;
}

function resolveOptions(opts: GzipOptions): { level: number; blockSize: number; workers: number } {
  const level = opts.level ?? DEFAULT_LEVEL;
  const blockSize = opts.blockSize ?? DEFAULT_BLOCK_SIZE;
  const workers = opts.workers ?? availableParallelism();
  if (!Number.isInteger(level) || level < MIN_LEVEL || level > MAX_LEVEL) {
    throw new DistillError('USAGE', `gzip level must be an integer ${MIN_LEVEL}–${MAX_LEVEL}, got ${level}`);
  }
  if (!Number.isInteger(blockSize) || blockSize < MIN_BLOCK_SIZE || blockSize > MAX_BLOCK_SIZE) {
    throw new DistillError('USAGE', `gzip block size must be an integer ${MIN_BLOCK_SIZE}–${MAX_BLOCK_SIZE}, got ${blockSize}`);
  }
  if (!Number.isInteger(workers) || workers < 0 || workers > MAX_WORKERS) {
    throw new DistillError('USAGE', `gzip workers must be an integer 0–${MAX_WORKERS}, got ${workers}`);
  }
  return { level, blockSize, workers };
}

// ---- the worker pool ----

/** A compressed block, and its input buffer back from the worker for reuse. */
type PooledResult = CompressedBlock & { spare?: Uint8Array };

interface PendingJob {
  job: BlockJob;
  resolve: (r: PooledResult) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  current: PendingJob | undefined;
}

class GzipPool {
  private readonly slots: Slot[] = [];
  private readonly queue: PendingJob[] = [];
  private size = 0;
  private nextId = 1;
  private closed = false;

  grow(size: number): void {
    this.size = Math.max(this.size, size);
  }

  run(level: number, block: Uint8Array, last: boolean): Promise<PooledResult> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new DistillError('LAYER_IO', 'gzip: the worker pool was shut down'));
        return;
      }
      this.queue.push({ job: { id: this.nextId++, level, last, block }, resolve, reject });
      this.dispatch();
    });
  }

  async shutdown(): Promise<void> {
    this.closed = true;
    const gone = new DistillError('LAYER_IO', 'gzip: the worker pool was shut down while compressing');
    for (const p of this.queue.splice(0)) p.reject(gone);
    await Promise.all(
      this.slots.splice(0).map((s) => {
        s.current?.reject(gone);
        s.current = undefined;
        return s.worker.terminate();
      }),
    );
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      let slot = this.slots.find((s) => s.current === undefined);
      if (slot === undefined) {
        if (this.slots.length >= this.size) return;
        slot = this.spawn();
      }
      const p = this.queue.shift()!;
      slot.current = p;
      slot.worker.ref(); // busy: the process must wait for this block
      // The block's memory moves to the worker (no copy); it was allocated for this alone.
      slot.worker.postMessage(p.job, [p.job.block.buffer as ArrayBuffer]);
    }
  }

  private spawn(): Slot {
    // execArgv: [] — the worker needs no flags, and some of the parent's break it (`--input-type`, `-e`).
    const worker = new Worker(new URL('./gzip-worker.js', import.meta.url), { workerData: GZIP_WORKER_TAG, execArgv: [] });
    const slot: Slot = { worker, current: undefined };
    worker.on('message', (reply: BlockReply) => {
      const p = slot.current;
      slot.current = undefined;
      if (p !== undefined && p.job.id === reply.id) {
        if ('error' in reply) p.reject(new DistillError('LAYER_IO', `gzip: compressing a block failed: ${reply.error}`));
        else p.resolve({ data: reply.data, crc: reply.crc, spare: reply.block });
      }
      worker.unref(); // idle: never keep the process alive
      this.dispatch();
    });
    const lost = (cause: unknown): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      slot.current?.reject(new DistillError('LAYER_IO', `gzip: a worker thread died: ${messageOf(cause)}`, { cause }));
      slot.current = undefined;
      this.dispatch(); // a replacement is spawned for whatever is queued
    };
    superviseWorker(worker, lost);
    this.slots.push(slot);
    return slot;
  }
}

let pool: GzipPool | undefined;

function sharedPool(workers: number): GzipPool {
  pool ??= new GzipPool();
  pool.grow(workers);
  return pool;
}

/** Terminates the shared worker pool (blocks still in flight fail); the next gzip starts a new one. */
export async function shutdownGzipWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  await p?.shutdown();
}

// ---- the stream ----

interface InFlight {
  promise: Promise<PooledResult>;
  result: PooledResult | undefined;
  length: number;
}

class BlockGzip extends Transform {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly workers: number;
  private readonly maxInFlight: number;
  /**
   * The block being filled. Input is copied in as it arrives, so a caller may reuse its buffers once a
   * write has completed (the tar side hashes a chunk when it is written: a later change must not reach
   * the gzip only). Whole blocks go to a worker by transfer, without another copy.
   */
  private current: Uint8Array | undefined;
  private filled = 0;
  private readonly inFlight: InFlight[] = [];
  /**
   * Block buffers back from the workers (or from inline compression), reused for the next blocks:
   * without this every block leaves 1 MiB of garbage in two isolates, which V8 collects late.
   */
  private readonly spares: Uint8Array[] = [];
  private crc = 0;
  private total = 0;
  private headerSent = false;

  constructor(opts: GzipOptions) {
    super();
    const o = resolveOptions(opts);
    this.level = o.level;
    this.blockSize = o.blockSize;
    this.workers = o.workers;
    this.maxInFlight = o.workers + 1;
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!(chunk instanceof Uint8Array)) {
      cb(new DistillError('LAYER_IO', 'gzip: input chunks must be bytes'));
      return;
    }
    // A full block is handed on only once a byte beyond it exists, so whether a block is the last one —
    // the only thing besides its content that changes its bytes — never depends on the input's chunking.
    const fits = this.current !== undefined && this.blockSize - this.filled >= chunk.length;
    if (fits) {
      this.current!.set(chunk, this.filled);
      this.filled += chunk.length;
      cb();
      return;
    }
    this.consume(chunk).then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    (async () => {
      const last = this.current === undefined ? new Uint8Array(0) : this.current.subarray(0, this.filled);
      this.current = undefined;
      await this.submit(last, true);
      while (this.inFlight.length > 0) await this.emitHead();
      if (!this.headerSent) this.pushOut(Buffer.alloc(0));
      this.push(gzipTrailer(this.crc, this.total));
    })().then(() => cb(), cb);
  }

  private async consume(chunk: Uint8Array): Promise<void> {
    let at = 0;
    while (at < chunk.length) {
      if (this.current !== undefined && this.filled === this.blockSize) {
        const full = this.current;
        this.current = undefined;
        await this.submit(full, false);
      }
      if (this.current === undefined) {
        this.current = this.spares.pop() ?? new Uint8Array(this.blockSize); // every byte is overwritten before use
        this.filled = 0;
      }
      const n = Math.min(this.blockSize - this.filled, chunk.length - at);
      this.current.set(chunk.subarray(at, at + n), this.filled);
      this.filled += n;
      at += n;
    }
  }

  private async submit(block: Uint8Array, last: boolean): Promise<void> {
    this.total += block.length;
    if (this.workers === 0) {
      const r = compressBlock(block, this.level, last);
      if (!last) this.spares.push(block);
      this.accept(r, block.length);
      return;
    }
    const length = block.length;
    const entry: InFlight = { promise: sharedPool(this.workers).run(this.level, block, last), result: undefined, length };
    entry.promise.then(
      (r) => {
        entry.result = r;
      },
      () => {}, // observed (and thrown) by emitHead, in order
    );
    this.inFlight.push(entry);
    while (this.inFlight.length >= this.maxInFlight) await this.emitHead();
    while (this.inFlight[0]?.result !== undefined) await this.emitHead();
  }

  private async emitHead(): Promise<void> {
    const head = this.inFlight[0]!;
    const r = await head.promise;
    this.inFlight.shift();
    const spare = r.spare;
    if (spare !== undefined && spare.byteOffset === 0 && spare.length === this.blockSize && this.spares.length < 2) {
      this.spares.push(spare);
    }
    this.accept(r, head.length);
  }

  private accept(r: CompressedBlock, length: number): void {
    this.crc = crc32Combine(this.crc, r.crc, length); // crc32 of nothing is 0, so the first block needs no case
    this.pushOut(Buffer.from(r.data.buffer, r.data.byteOffset, r.data.length));
  }

  private pushOut(data: Buffer): void {
    if (!this.headerSent) {
      this.headerSent = true;
      this.push(Buffer.concat([gzipHeader(this.level), data]));
    } else if (data.length > 0) {
      this.push(data);
    }
  }
}

/** A gzip stream with distill's fixed, reproducible output (see the file comment). */
export function createGzip(opts: GzipOptions = {}): Transform {
  return new BlockGzip(opts);
}
