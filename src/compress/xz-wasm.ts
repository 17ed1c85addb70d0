// An in-process .xz decoder: liblzma 5.4.1's stream decoder compiled to WebAssembly (wasm/xz.wasm,
// built byte for byte by wasm/xz/build.sh from Debian's xz-utils source, pinned by sha256). Used by
// src/compress/xz.ts for small streams, where starting an `xz -dc` process costs more than decoding.
//
// ATTACKER-CONTROLLED INPUT: the compressed bytes. liblzma checks every block's integrity check and the
// index; its memory limit bounds what a stream may allocate (a dictionary); the caller asks for output a
// slice at a time, so a small input that expands enormously (a decompression bomb) is produced only as
// fast as it is read.
import { instantiate, type WasmMemory } from '../util/wasm.js';

/** The sha256 of wasm/xz.wasm, as wasm/xz/build.sh makes it (checked by test/compress/xz.test.ts). */
export const XZ_WASM_SHA256 = '0203d85ccdacdd93940604f821714d4afeb034cbd7f236f009dfbb9a83b1505d';

/** Where the module is, from dist/src/compress/ (the package ships wasm/ beside dist/). */
export const XZ_WASM_URL = new URL('../../../wasm/xz.wasm', import.meta.url);

/**
 * liblzma's limit on one stream's memory: a dictionary up to 64 MiB (xz -9, the largest preset) and
 * the decoder's own state fit; a stream asking for more is refused (LZMA_MEMLIMIT_ERROR) instead of
 * growing the worker's memory.
 */
const MEMLIMIT = 80 * 1024 * 1024;
/** Compressed bytes handed to liblzma per call, and decoded bytes it may produce per call. */
const IN_BUF = 64 * 1024;
export const OUT_BUF = 256 * 1024;

interface Exports {
  memory: WasmMemory;
  distill_alloc(n: number): number;
  distill_free(p: number): void;
  distill_xz_new(memlimit: number): number;
  distill_xz_run(d: number, inp: number, n: number, out: number, cap: number, finish: number): number;
  distill_xz_in_left(d: number): number;
  distill_xz_out_left(d: number): number;
  distill_xz_end(d: number): void;
}

const LZMA_OK = 0;
const LZMA_STREAM_END = 1;
const LZMA_MESSAGES: Record<number, string> = {
  2: 'the stream has no integrity check',
  3: 'the integrity check type is not supported',
  5: 'out of memory',
  6: `the stream needs more than ${MEMLIMIT / 1024 / 1024} MiB of memory to decode`,
  7: 'not in the .xz format',
  8: 'unsupported compression options',
  9: 'compressed data is corrupt',
  10: 'unexpected end of input (truncated)',
};

/** One wasm instance per thread, with its in and out buffers; every decoder lives in its memory. */
class XzModule {
  readonly e: Exports;
  readonly inPtr: number;
  readonly outPtr: number;
  constructor() {
    this.e = instantiate<Exports>(XZ_WASM_URL);
    this.inPtr = this.e.distill_alloc(IN_BUF);
    this.outPtr = this.e.distill_alloc(OUT_BUF);
    if (this.inPtr === 0 || this.outPtr === 0) throw new Error('xz: out of wasm memory');
  }
}

let module: XzModule | undefined;

/**
 * One streaming decoder. `push` input in any chunking, then `end()`; `decode(limit)` produces up to
 * `limit` bytes (fewer when it needs more input). The decoded bytes are fixed by the .xz format, so they
 * do not depend on the chunking, the limit or the thread.
 */
export class XzDecoder {
  private readonly m: XzModule;
  private handle: number;
  private readonly input: Uint8Array[] = [];
  /** Offset into input[0] already consumed. */
  private at = 0;
  private ended = false;
  done = false;

  constructor() {
    this.m = module ??= new XzModule();
    this.handle = this.m.e.distill_xz_new(MEMLIMIT);
    if (this.handle === 0) throw new Error('xz: cannot start a decoder (out of wasm memory)');
  }

  push(chunk: Uint8Array): void {
    if (chunk.length > 0) this.input.push(chunk);
  }

  end(): void {
    this.ended = true;
  }

  /** Input chunks not yet fully consumed. */
  get pending(): number {
    return this.input.length;
  }

  /**
   * Decodes until `limit` bytes are out, the input runs dry (before end()) or the stream ends. Returns
   * the decoded chunks (copies); throws an Error whose message says what is wrong with the input.
   */
  decode(limit: number): Uint8Array[] {
    const out: Uint8Array[] = [];
    const { e, inPtr, outPtr } = this.m;
    let produced = 0;
    while (!this.done && produced < limit) {
      const head = this.input[0];
      if (head === undefined && !this.ended) break;
      const n = head === undefined ? 0 : Math.min(IN_BUF, head.length - this.at);
      if (n > 0) new Uint8Array(e.memory.buffer, inPtr, n).set(head!.subarray(this.at, this.at + n));
      const finish = this.ended && (this.input.length === 0 || (this.input.length === 1 && this.at + n === head!.length)) ? 1 : 0;
      const cap = Math.min(OUT_BUF, limit - produced);
      const r = e.distill_xz_run(this.handle, inPtr, n, outPtr, cap, finish);
      const used = n - e.distill_xz_in_left(this.handle);
      const made = cap - e.distill_xz_out_left(this.handle);
      if (made > 0) {
        // memory.buffer is read again: the call may have grown (and so replaced) it.
        out.push(new Uint8Array(e.memory.buffer, outPtr, made).slice());
        produced += made;
      }
      if (head !== undefined) {
        this.at += used;
        if (this.at === head.length) {
          this.input.shift();
          this.at = 0;
        }
      }
      if (r === LZMA_STREAM_END) {
        // With LZMA_CONCATENATED liblzma ends only when told the input is finished, and only once all
        // of it has been read as streams (and their padding).
        this.done = true;
        this.close();
        break;
      }
      if (r !== LZMA_OK) {
        this.close();
        throw new Error(LZMA_MESSAGES[r] ?? `liblzma error ${r}`);
      }
      if (used === 0 && made === 0 && !finish) break; // needs input that has not come yet
      if (used === 0 && made === 0 && finish) {
        this.close();
        throw new Error(LZMA_MESSAGES[10]!);
      }
    }
    return out;
  }

  /** Frees the decoder's memory (idempotent). */
  close(): void {
    if (this.handle !== 0) {
      this.m.e.distill_xz_end(this.handle);
      this.handle = 0;
    }
  }
}
