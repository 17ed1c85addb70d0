// zstd (RFC 8878) for layer blobs (`build --compression zstd`), by zstd 1.5.4 compiled to WebAssembly.
//
// wasm/zstd.wasm is built byte for byte by wasm/zstd/build.sh from Debian bookworm's zstd source package
// (pinned by sha256) and a small shim, with Debian bookworm's clang 14, lld and wasi-libc;
// test/layer/zstd.test.ts rebuilds it and compares when that toolchain is present. It is single-threaded,
// imports nothing, and reads no clock, environment or CPU feature, so its bytes depend only on the
// committed .wasm and the input — never on the host, Node or the thread.
//
// One frame per layer, at fixed parameters (shim.c): level 3 (zstd's default), a content checksum, no
// content size, no dictionary ID. Data goes in with ZSTD_e_continue only and the frame ends with one
// ZSTD_e_end call on empty input, so zstd alone decides where blocks fall: the output does not depend on
// how the input was chunked. Compression runs on the calling thread (zstd level 3 is several times
// faster than the gzip path per core, so one stream needs no pool); the worker count cannot change it.
//
// The decompressor (createUnzstd) checks cached layers; its window is capped at 128 MiB (input may be
// hostile).
import { instantiate, type WasmMemory } from '../util/wasm.js';
import { Transform, type TransformCallback } from 'node:stream';
import { DistillError } from '../errors.js';

/** The compressor's identity, as recorded in provenance and in the layer cache key. */
export const ZSTD_IMPLEMENTATION = 'zstd 1.5.4 (wasm, level 3, checksum, single-threaded)';
/** The sha256 of wasm/zstd.wasm that the golden test was recorded with. */
export const ZSTD_WASM_SHA256 = '806bbb178cd9b68d948a650f68edb46483e643da7272eaa6dd52704fcf891cb6';
export const ZSTD_LEVEL = 3;
/** The first bytes of every zstd frame (RFC 8878 §3.1.1). */
export const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Where the module is, from dist/src/layer/ (the package ships wasm/ beside dist/). */
export const ZSTD_WASM_URL = new URL('../../../wasm/zstd.wasm', import.meta.url);

interface Exports {
  memory: WasmMemory;
  distill_alloc(n: number): number;
  distill_free(p: number): void;
  distill_zstd_create(level: number): number;
  distill_zstd_destroy(c: number): void;
  distill_zstd_compress(c: number, inp: number, n: number, out: number, cap: number, pos: number, end: number): number;
  distill_zstd_is_error(r: number): number;
  distill_zstd_out_size(): number;
  distill_unzstd_create(): number;
  distill_unzstd_destroy(d: number): void;
  distill_unzstd(d: number, inp: number, n: number, out: number, cap: number, pos: number): number;
}

/** Input is copied into wasm memory this much at a time. */
const IN_CAP = 128 * 1024;

/**
 * One wasm instance per stream: its memory holds one context and its buffers, and is dropped with the
 * stream (a few MiB at level 3), so no state outlives a layer or is shared between streams.
 */
class Wasm {
  readonly e: Exports;
  readonly inPtr: number;
  readonly outPtr: number;
  readonly outCap: number;
  readonly posPtr: number;

  constructor() {
    this.e = instantiate<Exports>(ZSTD_WASM_URL);
    this.outCap = this.e.distill_zstd_out_size();
    this.inPtr = this.e.distill_alloc(IN_CAP);
    this.outPtr = this.e.distill_alloc(this.outCap);
    this.posPtr = this.e.distill_alloc(8);
    if (this.inPtr === 0 || this.outPtr === 0 || this.posPtr === 0) throw new Error('zstd: out of wasm memory');
  }

  /** Input and output positions (size_t is 32-bit in wasm32). */
  pos(): Uint32Array {
    return new Uint32Array(this.e.memory.buffer, this.posPtr, 2);
  }

  load(chunk: Uint8Array): void {
    new Uint8Array(this.e.memory.buffer, this.inPtr, chunk.length).set(chunk);
  }

  output(n: number): Buffer {
    // memory.buffer is read again: a call may have grown (and so replaced) it.
    return Buffer.from(new Uint8Array(this.e.memory.buffer, this.outPtr, n).slice().buffer);
  }
}

class ZstdCompress extends Transform {
  private readonly w = new Wasm();
  private readonly ctx: number;

  constructor() {
    super();
    this.ctx = this.w.e.distill_zstd_create(ZSTD_LEVEL);
    if (this.ctx === 0) throw new Error('zstd: cannot create a compression context');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (!(chunk instanceof Uint8Array)) {
      cb(new DistillError('LAYER_IO', 'zstd: input chunks must be bytes'));
      return;
    }
    try {
      for (let at = 0; at < chunk.length; at += IN_CAP) this.run(chunk.subarray(at, Math.min(chunk.length, at + IN_CAP)), false);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.run(new Uint8Array(0), true);
      this.w.e.distill_zstd_destroy(this.ctx);
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  /** Feeds `piece` (≤ IN_CAP) until consumed — or, at the end, until the frame is complete. */
  private run(piece: Uint8Array, end: boolean): void {
    const { e } = this.w;
    this.w.load(piece);
    this.w.pos().set([0, 0]);
    for (;;) {
      const r = e.distill_zstd_compress(this.ctx, this.w.inPtr, piece.length, this.w.outPtr, this.w.outCap, this.w.posPtr, end ? 1 : 0) >>> 0;
      if (e.distill_zstd_is_error(r)) throw new DistillError('LAYER_IO', `zstd: compressing failed (error ${-r >>> 0})`);
      const [inPos, outPos] = this.w.pos();
      if (outPos! > 0) this.push(this.w.output(outPos!));
      this.w.pos()[1] = 0;
      if (end ? r === 0 : inPos === piece.length) return;
    }
  }
}

/** A zstd stream with distill's fixed, reproducible output (see the file comment). */
export function createZstd(): Transform {
  return new ZstdCompress();
}

class ZstdDecompress extends Transform {
  private readonly w = new Wasm();
  private readonly ctx: number;
  /** zstd's last result: 0 exactly when the input so far ends at a frame's end. */
  private last = 1;

  constructor() {
    super();
    this.ctx = this.w.e.distill_unzstd_create();
    if (this.ctx === 0) throw new Error('zstd: cannot create a decompression context');
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      for (let at = 0; at < chunk.length; at += IN_CAP) this.run(chunk.subarray(at, Math.min(chunk.length, at + IN_CAP)));
      cb();
    } catch (e) {
      cb(e as Error);
    }
  }

  override _flush(cb: TransformCallback): void {
    this.w.e.distill_unzstd_destroy(this.ctx);
    cb(this.last === 0 ? null : new DistillError('LAYER_IO', 'zstd: the input ends inside a frame'));
  }

  private run(piece: Uint8Array): void {
    const { e } = this.w;
    this.w.load(piece);
    this.w.pos().set([0, 0]);
    for (;;) {
      const r = e.distill_unzstd(this.ctx, this.w.inPtr, piece.length, this.w.outPtr, this.w.outCap, this.w.posPtr) >>> 0;
      if (e.distill_zstd_is_error(r)) throw new DistillError('LAYER_IO', `zstd: the input is not valid zstd (error ${-r >>> 0})`);
      this.last = r;
      const [inPos, outPos] = this.w.pos();
      if (outPos! > 0) this.push(this.w.output(outPos!));
      this.w.pos()[1] = 0;
      // All input consumed and the output buffer not full: nothing more comes out of this piece.
      if (inPos === piece.length && outPos! < this.w.outCap) return;
    }
  }
}

/** Decompresses zstd frames (one or more, concatenated); fails on invalid or truncated input. */
export function createUnzstd(): Transform {
  return new ZstdDecompress();
}
