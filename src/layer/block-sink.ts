// The in-place byte interface between the tar writer and a layer compressor. The compressor hands out
// regions of its own memory (for gzip: the free tail of a 1 MiB block of its pool, see gzip.ts) and the
// writer fills them: a header is copied in, a staged file is read straight into the block. Per layer
// that is one copy of the bytes and no buffer allocated per chunk — fresh 1 MiB buffers per read and per
// compressed block were a third of the main thread's time in garbage collection while java's 240 MB
// layer was written.
import type { Hash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import type { Transform } from 'node:stream';

export interface BlockSink {
  /**
   * Takes the first `used` bytes of the region given last (0 on the first call) and gives the next
   * region to fill, at least 1 byte long. Call it only when more bytes are coming. A region belongs to
   * the caller until its next call, and only the bytes it reports as `used` are ever read.
   */
  next(used: number): Uint8Array | Promise<Uint8Array>;
  /** Takes the first `used` bytes of the last region as the end of the data; resolves once all output is out. */
  end(used: number): Promise<void>;
  /** Gives up (no further calls); resolves once nothing more will be output. */
  abort(): Promise<void>;
}

const EMPTY = new Uint8Array(0);

/** Writes into a BlockSink by copying, or in place (space/filled); `written` counts the bytes taken. */
export class SinkWriter {
  private region: Uint8Array = EMPTY;
  private pos = 0;
  private taken = 0;

  constructor(private readonly sink: BlockSink) {}

  /** Bytes written so far. */
  get written(): number {
    return this.taken + this.pos;
  }

  /** Copies `src` in; returns a promise only when it had to wait for a region. `src` may be reused once it returns or resolves. */
  write(src: Uint8Array): void | Promise<void> {
    if (src.length <= this.region.length - this.pos) {
      this.region.set(src, this.pos);
      this.pos += src.length;
      return;
    }
    return this.writeSlow(src);
  }

  private async writeSlow(src: Uint8Array): Promise<void> {
    let at = 0;
    for (;;) {
      const n = Math.min(src.length - at, this.region.length - this.pos);
      this.region.set(n === src.length ? src : src.subarray(at, at + n), this.pos);
      this.pos += n;
      at += n;
      if (at === src.length) return;
      await this.more();
    }
  }

  /** The free part of the current region, at least 1 byte, to fill in place; then call filled(). */
  space(): Uint8Array | Promise<Uint8Array> {
    if (this.pos < this.region.length) return this.region.subarray(this.pos);
    return this.more().then(() => this.region.subarray(this.pos));
  }

  /** `n` bytes of the last space() were filled. */
  filled(n: number): void {
    if (!Number.isInteger(n) || n < 0 || this.pos + n > this.region.length) throw new RangeError(`filled(${n}) is outside the region`);
    this.pos += n;
  }

  /** The end of the data. */
  end(): Promise<void> {
    const used = this.take();
    return this.sink.end(used);
  }

  private take(): number {
    const used = this.pos;
    this.taken += used;
    this.pos = 0;
    this.region = EMPTY;
    return used;
  }

  private async more(): Promise<void> {
    this.region = await this.sink.next(this.take());
  }
}

/**
 * A BlockSink over a chunk function (the tar writer's original interface, kept for tests and tools):
 * regions are fresh zero-filled buffers whose filled part is handed over, the function awaited.
 */
export class ChunkSink implements BlockSink {
  private region: Buffer | undefined;

  constructor(
    private readonly fn: (chunk: Buffer) => void | Promise<void>,
    private readonly size = 64 * 1024,
  ) {}

  async next(used: number): Promise<Uint8Array> {
    await this.hand(used);
    return (this.region = Buffer.alloc(this.size));
  }

  async end(used: number): Promise<void> {
    await this.hand(used);
  }

  async abort(): Promise<void> {
    this.region = undefined;
  }

  private async hand(used: number): Promise<void> {
    const r = this.region;
    this.region = undefined;
    if (r !== undefined && used > 0) await this.fn(used === r.length ? r : r.subarray(0, used));
  }
}

/** Passes a BlockSink's bytes on, hashing them first (a layer's diffId) and counting them. */
export class HashingSink implements BlockSink {
  private region: Uint8Array = EMPTY;
  /** Bytes taken so far. */
  size = 0;

  constructor(
    private readonly inner: BlockSink,
    private readonly hash: Hash,
  ) {}

  next(used: number): Uint8Array | Promise<Uint8Array> {
    // Hashed before the inner sink takes them: from then on the region may be reused.
    this.take(used);
    const r = this.inner.next(used);
    if (r instanceof Uint8Array) return (this.region = r);
    return r.then((b) => (this.region = b));
  }

  end(used: number): Promise<void> {
    this.take(used);
    return this.inner.end(used);
  }

  abort(): Promise<void> {
    this.region = EMPTY;
    return this.inner.abort();
  }

  private take(used: number): void {
    if (used === 0) return;
    this.hash.update(used === this.region.length ? this.region : this.region.subarray(0, used));
    this.size += used;
    this.region = EMPTY;
  }
}

/**
 * A BlockSink in front of a compressing Transform stream (zstd): each region is a fresh buffer written
 * to the stream (which may hold it until it is compressed), its output passed to `output` in order.
 */
export class StreamSink implements BlockSink {
  private region: Buffer | undefined;
  private readonly done: Promise<void>;

  constructor(
    private readonly stream: Transform,
    output: (bytes: Uint8Array) => Promise<void>,
    private readonly size = 256 * 1024,
  ) {
    this.done = pipeline(stream, async (source: AsyncIterable<Buffer>) => {
      for await (const chunk of source) await output(chunk);
    });
    this.done.catch(() => {}); // observed by end(), abort() and the waits for 'drain'
  }

  async next(used: number): Promise<Uint8Array> {
    await this.hand(used);
    return (this.region = Buffer.alloc(this.size));
  }

  async end(used: number): Promise<void> {
    await this.hand(used);
    this.stream.end();
    await this.done;
  }

  async abort(): Promise<void> {
    this.region = undefined;
    this.stream.destroy();
    await this.done.catch(() => {});
  }

  private async hand(used: number): Promise<void> {
    const r = this.region;
    this.region = undefined;
    if (r === undefined || used === 0) return;
    if (this.stream.write(r.subarray(0, used))) return;
    // Wait for room; a failure of the compressing or writing side meanwhile ends the wait.
    await new Promise<void>((resolve, reject) => {
      this.stream.once('drain', resolve);
      this.done.then(() => reject(new Error('the compressor ended before taking all input')), reject);
    });
  }
}
