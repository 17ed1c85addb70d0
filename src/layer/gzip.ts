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
// No deflate byte comes from node:zlib, not even behind a guard (only the CRC-32 may: deflate.ts says
// why): Node bundles Chromium's zlib fork and has changed its output within major lines (some of it
// with an unchanged version string, some only on one OS); its maintainers promise only that output
// round-trips. libdeflate in wasm is also faster per core than node:zlib here (see test/bench/gzip.ts),
// and pako (the previous deflate) ~3× slower.
//
// Workers: one process-wide worker_threads pool, grown on demand to the largest `workers` asked for,
// started lazily and unref'd whenever idle, so it never keeps the process alive. Blocks come from a
// process-wide pool of SharedArrayBuffers (the input, then room for the output): the writer fills one in
// place (block-sink.ts), a worker reads it and writes the deflate beside it, and the output goes to the
// file from there — no copy beyond the one into the wasm memory, no buffer allocated per block. Each
// stream keeps at most `workers + 1` blocks compressing or waiting for output, plus the one it is filling
// and a full one not yet known not to be the last, so memory stays at a few blocks whatever the layer
// size; `workers: 0` compresses inline on the calling thread.
import { availableParallelism } from 'node:os';
import { Transform, type TransformCallback } from 'node:stream';
import { Worker } from 'node:worker_threads';
import { DistillError, messageOf } from '../errors.js';
import { SinkWriter, type BlockSink } from './block-sink.js';
import { MAX_LEVEL, MIN_LEVEL, maxDeflatedSize } from './deflate.js';
import { GZIP_WORKER_TAG, WINDOW, crc32Combine, runBlockJob, type BlockJob, type BlockReply } from './gzip-worker.js';
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

type BlockResult = { n: number; crc: number };

interface PendingJob {
  job: BlockJob;
  resolve: (r: BlockResult) => void;
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

  run(job: Omit<BlockJob, 'id'>): Promise<BlockResult> {
    return new Promise((resolve, reject) => {
      if (this.closed) {
        reject(new DistillError('LAYER_IO', 'gzip: the worker pool was shut down'));
        return;
      }
      this.queue.push({ job: { ...job, id: this.nextId++ }, resolve, reject });
      this.dispatch();
    });
  }

  /** Starts idle workers up to the pool's size now, so that their start-up is not on the first layer's path. */
  warm(): void {
    while (!this.closed && this.slots.length < this.size) this.spawn();
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
      slot.worker.postMessage(p.job); // the block is shared memory: nothing is copied or transferred
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
        else p.resolve({ n: reply.n, crc: reply.crc });
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

/**
 * Starts the shared pool's workers ahead of the first block (a build calls this when it knows layers
 * will be written, while packages are still being unpacked): a worker's start — a Node isolate, the
 * module, the wasm compiled — took 90–340 ms to its first block on a busy machine, on the path of the
 * first layer. Idle workers never keep the process alive. `workers: 0` starts none.
 */
export function startGzipWorkers(opts: GzipOptions = {}): void {
  const { workers } = resolveOptions(opts);
  if (workers > 0) sharedPool(workers).warm();
}

/** Terminates the shared worker pool (blocks still in flight fail); the next gzip starts a new one. */
export async function shutdownGzipWorkers(): Promise<void> {
  const p = pool;
  pool = undefined;
  spareBlocks.clear();
  await p?.shutdown();
}

// ---- the block pool ----

const HEADER_SIZE = 10;
const TRAILER_SIZE = 8;
/**
 * Spare blocks kept per block size once no stream is open; while streams are open every block
 * released is kept for reuse (at most the streams' peak need: 15 for java's five layers), since a
 * dropped SharedArrayBuffer is not external memory to V8 and may linger until some later collection.
 */
const SPARE_BLOCKS = 6;

/**
 * One block's memory, shared with the gzip workers: the input at [0, size), then room for the gzip
 * header, the raw deflate at [outOffset, outOffset + outCap), and room for the trailer — so a block's
 * output goes to the file as one contiguous view, header and trailer included, without a copy.
 */
class Block {
  readonly sab: SharedArrayBuffer;
  readonly bytes: Uint8Array;
  readonly input: Uint8Array;
  readonly outOffset: number;
  readonly outCap: number;

  constructor(readonly size: number) {
    this.outCap = maxDeflatedSize(size);
    this.outOffset = size + HEADER_SIZE;
    this.sab = new SharedArrayBuffer(this.outOffset + this.outCap + TRAILER_SIZE);
    this.bytes = new Uint8Array(this.sab);
    this.input = this.bytes.subarray(0, size);
  }
}

const spareBlocks = new Map<number, Block[]>();
let blocksMade = 0;
let blocksInUse = 0;
let openStreams = 0;

function streamOpened(): void {
  openStreams++;
}

function streamClosed(): void {
  openStreams--;
  if (openStreams === 0) for (const list of spareBlocks.values()) list.length = Math.min(list.length, SPARE_BLOCKS);
}

function takeBlock(size: number): Block {
  blocksInUse++;
  const spare = spareBlocks.get(size)?.pop();
  if (spare !== undefined) return spare;
  blocksMade++;
  return new Block(size);
}

/** Back to the pool. Only the bytes a later stream writes into a block are ever read from it. */
function returnBlock(b: Block): void {
  blocksInUse--;
  let list = spareBlocks.get(b.size);
  if (list === undefined) spareBlocks.set(b.size, (list = []));
  if (openStreams > 0 || list.length < SPARE_BLOCKS) list.push(b);
}

/** Never reused: a block whose job failed (its worker may have died while reading it). */
function dropBlock(_b: Block): void {
  blocksInUse--;
}

/** The block pool's counters (for tests): blocks ever made, in use now, spare (of one block size, or all), and streams open. */
export function gzipBlockPool(blockSize?: number): { made: number; inUse: number; spare: number; open: number } {
  let spare = 0;
  for (const [size, list] of spareBlocks) if (blockSize === undefined || size === blockSize) spare += list.length;
  return { made: blocksMade, inUse: blocksInUse, spare, open: openStreams };
}

// ---- the stream ----

interface Pending {
  block: Block;
  length: number;
  last: boolean;
  settled: boolean;
  n: number;
  crc: number;
  error: unknown;
}

/**
 * distill's gzip as a BlockSink (see block-sink.ts): the writer fills blocks of the pool in place; each
 * full block goes to a worker (or is compressed inline) and its output — framed with the header before
 * the first block and the trailer after the last — is passed to `output` in order, one call per block,
 * awaited before the block is reused. At most `workers + 1` blocks are compressing or waiting for
 * `output`, plus the one being filled and a full one not yet known not to be the last.
 */
export class GzipWriter implements BlockSink {
  private readonly level: number;
  private readonly blockSize: number;
  private readonly workers: number;
  private readonly maxInFlight: number;
  private current: Block | undefined;
  private filled = 0;
  /**
   * A full block, handed on only once a byte beyond it exists: whether a block is the last one — the
   * only thing besides its content that changes its bytes — never depends on how the input came.
   */
  private held: Block | undefined;
  private readonly queue: Pending[] = [];
  private crc = 0;
  private total = 0;
  private headerSent = false;
  private failed = false;
  private failure: unknown;
  private finished = false;
  private pumping = false;
  private waiters: Array<() => void> = [];

  constructor(
    opts: GzipOptions,
    private readonly output: (bytes: Uint8Array) => void | Promise<void>,
  ) {
    const o = resolveOptions(opts);
    this.level = o.level;
    this.blockSize = o.blockSize;
    this.workers = o.workers;
    this.maxInFlight = o.workers + 1;
    streamOpened();
  }

  next(used: number): Uint8Array | Promise<Uint8Array> {
    this.check();
    this.take(used);
    if (this.current !== undefined) return this.current.input.subarray(this.filled);
    if (this.queue.length < this.maxInFlight) return this.fresh();
    return this.room().then(() => this.fresh());
  }

  async end(used: number): Promise<void> {
    this.check();
    this.take(used);
    if (this.held !== undefined) {
      if (this.current !== undefined) returnBlock(this.current);
      this.current = undefined;
      const last = this.held;
      this.held = undefined;
      this.submit(last, this.blockSize, true);
    } else {
      const length = this.current === undefined ? 0 : this.filled;
      const last = this.current ?? takeBlock(this.blockSize);
      this.current = undefined;
      this.submit(last, length, true);
    }
    try {
      await this.settled();
      this.check();
      this.finished = true;
    } finally {
      this.close();
    }
  }

  /** Stops: nothing more is output once this resolves, and every block is back in the pool. */
  async abort(): Promise<void> {
    if (this.finished) return;
    this.fail(new DistillError('LAYER_IO', 'gzip: the stream was aborted'));
    for (const b of [this.current, this.held]) if (b !== undefined) returnBlock(b);
    this.current = undefined;
    this.held = undefined;
    await this.settled();
    this.close();
  }

  private closed = false;

  /** Counted out of the open streams once, whichever way it ends (end, or abort once settled). */
  private close(): void {
    if (this.closed) return;
    this.closed = true;
    streamClosed();
  }

  private check(): void {
    if (this.failed) throw this.failure;
    if (this.finished) throw new DistillError('LAYER_IO', 'gzip: the stream has ended');
  }

  private take(used: number): void {
    if (used === 0) return;
    if (this.current === undefined || !Number.isInteger(used) || used < 0 || used > this.blockSize - this.filled) {
      throw new RangeError(`gzip: ${used} bytes used is outside the region given`);
    }
    if (this.held !== undefined) {
      const full = this.held;
      this.held = undefined;
      this.submit(full, this.blockSize, false);
    }
    this.filled += used;
    if (this.filled === this.blockSize) {
      this.held = this.current;
      this.current = undefined;
    }
  }

  private fresh(): Uint8Array {
    this.check();
    this.current = takeBlock(this.blockSize);
    this.filled = 0;
    return this.current.input;
  }

  private async room(): Promise<void> {
    while (this.queue.length >= this.maxInFlight) {
      await this.changed();
      this.check();
    }
  }

  /** Resolves once nothing is queued and no output is in progress. */
  private async settled(): Promise<void> {
    while (this.queue.length > 0 || this.pumping) await this.changed();
  }

  private changed(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  private fail(e: unknown): void {
    if (!this.failed) {
      this.failed = true;
      this.failure = e;
    }
    this.notify();
  }

  private submit(block: Block, length: number, last: boolean): void {
    this.total += length;
    const p: Pending = { block, length, last, settled: false, n: 0, crc: 0, error: undefined };
    this.queue.push(p);
    const job = { level: this.level, last, sab: block.sab, length, outOffset: block.outOffset, outCap: block.outCap };
    if (this.workers === 0) {
      try {
        const r = runBlockJob({ ...job, id: 0 });
        p.n = r.n;
        p.crc = r.crc;
      } catch (e) {
        p.error = new DistillError('LAYER_IO', `gzip: compressing a block failed: ${messageOf(e)}`, { cause: e });
      }
      p.settled = true;
      this.pump();
      return;
    }
    sharedPool(this.workers)
      .run(job)
      .then(
        (r) => {
          p.n = r.n;
          p.crc = r.crc;
        },
        (e: unknown) => {
          p.error = e;
        },
      )
      .then(() => {
        p.settled = true;
        this.pump();
      });
  }

  /** Outputs settled blocks from the head of the queue, in order, one at a time. */
  private pump(): void {
    if (this.pumping) return;
    this.pumping = true;
    void this.drain();
  }

  private async drain(): Promise<void> {
    try {
      while (this.queue.length > 0 && this.queue[0]!.settled) {
        const p = this.queue[0]!;
        if (p.error !== undefined) this.fail(p.error);
        if (!this.failed) {
          try {
            await this.output(this.frame(p));
          } catch (e) {
            this.fail(e);
          }
        }
        this.queue.shift();
        if (p.error === undefined) returnBlock(p.block);
        else dropBlock(p.block);
        this.notify();
      }
    } finally {
      this.pumping = false;
      this.notify();
    }
  }

  /** The block's output as it goes into the file: [header] raw deflate [trailer]. */
  private frame(p: Pending): Uint8Array {
    const b = p.block.bytes;
    let start = p.block.outOffset;
    let end = start + p.n;
    this.crc = crc32Combine(this.crc, p.crc, p.length); // crc32 of nothing is 0, so the first block needs no case
    if (!this.headerSent) {
      this.headerSent = true;
      start -= HEADER_SIZE;
      b.set(gzipHeader(this.level), start);
    }
    if (p.last) {
      writeUInt32LE(b, end, this.crc);
      writeUInt32LE(b, end + 4, this.total % 2 ** 32); // ISIZE: the input length modulo 2^32
      end += TRAILER_SIZE;
    }
    return b.subarray(start, end);
  }
}

function writeUInt32LE(b: Uint8Array, at: number, v: number): void {
  b[at] = v & 0xff;
  b[at + 1] = (v >>> 8) & 0xff;
  b[at + 2] = (v >>> 16) & 0xff;
  b[at + 3] = (v >>> 24) & 0xff;
}

/** The Transform face of GzipWriter (tools and tests): input is copied into blocks, output copied out. */
class GzipTransform extends Transform {
  private readonly gz: GzipWriter;
  private readonly writer: SinkWriter;

  constructor(opts: GzipOptions) {
    super();
    this.gz = new GzipWriter(opts, (bytes) => {
      this.push(Buffer.from(bytes)); // a copy: the block is reused once this returns
    });
    this.writer = new SinkWriter(this.gz);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!(chunk instanceof Uint8Array)) {
      cb(new DistillError('LAYER_IO', 'gzip: input chunks must be bytes'));
      return;
    }
    let r: void | Promise<void>;
    try {
      r = this.writer.write(chunk);
    } catch (e) {
      cb(e as Error);
      return;
    }
    if (r === undefined) cb();
    else r.then(() => cb(), cb);
  }

  override _flush(cb: TransformCallback): void {
    this.writer.end().then(() => cb(), cb);
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.gz.abort().then(
      () => cb(err),
      () => cb(err),
    );
  }
}

/** A gzip stream with distill's fixed, reproducible output (see the file comment). */
export function createGzip(opts: GzipOptions = {}): Transform {
  return new GzipTransform(opts);
}
