// Raw deflate (RFC 1951) of one gzip block, by libdeflate 1.14 compiled to WebAssembly.
//
// wasm/libdeflate.wasm is built byte for byte by wasm/libdeflate/build.sh from Debian's libdeflate
// source package (pinned by sha256), a small patch and shim, with Debian bookworm's clang 14, lld and
// wasi-libc; test/layer/deflate-wasm.test.ts rebuilds it and compares when that toolchain is present.
// WebAssembly's integer semantics, including the 128-bit integer SIMD the compiler uses (-msimd128;
// Node ≥ 16.4), are the same on every host, and the module reads no clock, no environment and no CPU
// feature, so a block's bytes depend only on the committed .wasm, the level and
// the block — never on Node's zlib, the CPU or the thread it runs on. It has no imports at all.
//
// The patch lets a block end with a sync flush (the last deflate block non-final, then an empty stored
// block, byte-aligned: zlib's Z_SYNC_FLUSH), so independently compressed blocks concatenate into one
// deflate stream and one gzip member. libdeflate has no preset dictionary, so each block starts with an
// empty window (pigz --independent); at 1 MiB blocks that costs well under 1 % of size.
import { instantiate, type WasmMemory } from '../util/wasm.js';

/** The compressor's identity, as recorded in provenance and in the layer cache key. */
export const DEFLATE_IMPLEMENTATION = 'libdeflate 1.14 (wasm, distill sync-flush patch)';
/** The sha256 of wasm/libdeflate.wasm that the golden tests were recorded with. */
export const DEFLATE_WASM_SHA256 = '4760e2620fdd85bd07c4292a59778487f604a7241a6a0c1d873e5c820c68e5e7';
export const MIN_LEVEL = 1;
export const MAX_LEVEL = 12;

interface Exports {
  memory: WasmMemory;
  distill_alloc(n: number): number;
  distill_free(p: number): void;
  distill_deflate_bound(n: number): number;
  distill_deflate(level: number, inp: number, n: number, out: number, cap: number, last: number): number;
  distill_crc32(crc: number, p: number, n: number): number;
}

/** Where the module is, from dist/src/layer/ (the package ships wasm/ beside dist/). */
export const DEFLATE_WASM_URL = new URL('../../../wasm/libdeflate.wasm', import.meta.url);

/** One instance per thread (a wasm instance is single-threaded), with buffers reused between blocks. */
class Deflater {
  private readonly e: Exports;
  private inPtr = 0;
  private inCap = 0;
  private outPtr = 0;
  private outCap = 0;

  constructor() {
    this.e = instantiate<Exports>(DEFLATE_WASM_URL);
  }

  private reserve(n: number): void {
    if (n > this.inCap || this.inPtr === 0) {
      if (this.inPtr !== 0) this.e.distill_free(this.inPtr);
      this.inCap = Math.max(n, 64 * 1024);
      this.inPtr = this.e.distill_alloc(this.inCap);
      if (this.outPtr !== 0) this.e.distill_free(this.outPtr);
      this.outCap = this.e.distill_deflate_bound(this.inCap);
      this.outPtr = this.e.distill_alloc(this.outCap);
      if (this.inPtr === 0 || this.outPtr === 0) throw new Error('libdeflate: out of wasm memory');
    }
  }

  deflate(block: Uint8Array, level: number, last: boolean): { data: Uint8Array; crc: number } {
    this.reserve(block.length);
    new Uint8Array(this.e.memory.buffer, this.inPtr, block.length).set(block);
    const crc = this.e.distill_crc32(0, this.inPtr, block.length) >>> 0;
    const n = this.e.distill_deflate(level, this.inPtr, block.length, this.outPtr, this.outCap, last ? 1 : 0);
    if (n === 0) throw new Error(`libdeflate: compressing ${block.length} bytes at level ${level} failed`);
    // memory.buffer is read again: the call may have grown (and so replaced) it.
    return { data: new Uint8Array(this.e.memory.buffer, this.outPtr, n).slice(), crc };
  }
}

let deflater: Deflater | undefined;

/**
 * Raw-deflates `block` at `level` (1–12). With `last` false the stream stays open, ending byte-aligned
 * with a sync flush; with `last` true it ends with a final block. Also returns the block's CRC-32.
 */
export function deflateBlock(block: Uint8Array, level: number, last: boolean): { data: Uint8Array; crc: number } {
  deflater ??= new Deflater();
  return deflater.deflate(block, level, last);
}
