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
import * as zlib from 'node:zlib';
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

  /**
   * Whether to take the CRC-32 from node:zlib. A CRC has one right value whatever computes it, so
   * where this Node has zlib.crc32 (20.15+, 22.2+: SIMD, ~2.7× less CPU per byte than the module's) it
   * is used once it has agreed with the module's on inputs of every length class its vector code
   * distinguishes. Only the checksum: no deflate byte ever comes from node:zlib.
   */
  private nodeCrc: boolean | undefined;

  private wasmCrc32(block: Uint8Array): number {
    this.reserve(block.length);
    new Uint8Array(this.e.memory.buffer, this.inPtr, block.length).set(block);
    return this.e.distill_crc32(0, this.inPtr, block.length) >>> 0;
  }

  bound(n: number): number {
    return this.e.distill_deflate_bound(n);
  }

  /** Compresses `block` into the module's output buffer; returns the length there and the CRC-32. */
  private run(block: Uint8Array, level: number, last: boolean): { n: number; crc: number } {
    this.nodeCrc ??= nodeCrc32Agrees((b) => this.wasmCrc32(b)); // before the block is copied in: the check uses the same buffer
    const nodeCrc = this.nodeCrc ? (zlib as unknown as { crc32(b: Uint8Array): number }).crc32(block) >>> 0 : undefined;
    this.reserve(block.length);
    new Uint8Array(this.e.memory.buffer, this.inPtr, block.length).set(block);
    const crc = nodeCrc ?? this.e.distill_crc32(0, this.inPtr, block.length) >>> 0;
    const n = this.e.distill_deflate(level, this.inPtr, block.length, this.outPtr, this.outCap, last ? 1 : 0);
    if (n === 0) throw new Error(`libdeflate: compressing ${block.length} bytes at level ${level} failed`);
    return { n, crc };
  }

  deflate(block: Uint8Array, level: number, last: boolean): { data: Uint8Array; crc: number } {
    const { n, crc } = this.run(block, level, last);
    // memory.buffer is read again: the call may have grown (and so replaced) it.
    return { data: new Uint8Array(this.e.memory.buffer, this.outPtr, n).slice(), crc };
  }

  deflateInto(block: Uint8Array, level: number, last: boolean, out: Uint8Array): { n: number; crc: number } {
    const r = this.run(block, level, last);
    if (r.n > out.length) throw new Error(`libdeflate: ${r.n} compressed bytes do not fit the ${out.length}-byte output region`);
    out.set(new Uint8Array(this.e.memory.buffer, this.outPtr, r.n));
    return r;
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

/**
 * deflateBlock, with the output copied into `out` (which must be large enough: see maxDeflatedSize)
 * instead of a new buffer; returns its length and the block's CRC-32. The same bytes as deflateBlock.
 */
export function deflateBlockInto(block: Uint8Array, level: number, last: boolean, out: Uint8Array): { n: number; crc: number } {
  deflater ??= new Deflater();
  return deflater.deflateInto(block, level, last, out);
}

/** Whether node:zlib's crc32 exists and gives `reference`'s value on lengths 0–300, 4 KiB ± 1, 1 MiB + 3, at odd offsets too. */
export function nodeCrc32Agrees(reference: (b: Uint8Array) => number): boolean {
  const crc32 = (zlib as unknown as { crc32?: (b: Uint8Array) => number }).crc32;
  if (typeof crc32 !== 'function') return false;
  const data = new Uint8Array(1024 * 1024 + 8);
  for (let i = 0, x = 0x9e3779b9; i < data.length; i++) data[i] = (x = (Math.imul(x, 1103515245) + 12345) >>> 0) >>> 24;
  const lengths = [...Array.from({ length: 301 }, (_, i) => i), 4095, 4096, 4097, 65_537, 1024 * 1024 + 3];
  for (const n of lengths) {
    for (const at of n > 4097 ? [0, 5] : [0, 1, 3, 7]) {
      const b = data.subarray(at, at + n);
      if (crc32(b) >>> 0 !== reference(b) >>> 0) return false;
    }
  }
  return true;
}

/** libdeflate's own worst-case size of the raw deflate of `n` bytes, sync flush included (tests check maxDeflatedSize against it). */
export function deflateBound(n: number): number {
  deflater ??= new Deflater();
  return deflater.bound(n);
}

/**
 * A bound on the raw deflate of `n` bytes (with the sync flush), without loading the module:
 * libdeflate's own bound is n + 5 bytes per 5,000-byte block + 1 + end padding, the flush adds 6;
 * this allows n/64 + 1 KiB. Where the output goes only, never what it is.
 */
export function maxDeflatedSize(n: number): number {
  return n + Math.ceil(n / 64) + 1024;
}
