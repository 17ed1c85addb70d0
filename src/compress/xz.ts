// .xz decoding, chosen by the stream's size. Starting a child costs a fork of the whole Node process
// (~8–16 ms of the calling thread's CPU at the build's 200+ MiB, and page faults after it), while the
// wasm decoder needs ~1.45× the CPU of the native one per byte. So, where a pool of long-lived `xz -dc`
// processes is given (xz-pool.ts), a member up to `shared.max` bytes whose container parses is decoded
// there; one larger than that gets an `xz -dc` child of its own (several threads for a multi-block
// stream, and it is decoded while it is still being read); without the pool (no xz installed, or a
// member the pool does not take) one up to `inlineMax` is decoded in process by liblzma compiled to
// WebAssembly (xz-wasm.ts). The output is fixed by the format whichever decodes it.
//
// The decision waits for the input: it is held (at most the larger limit) until it either ends or
// grows past the limit (a child, which is then fed what was held).
import { Duplex, type Readable } from 'node:stream';
import { DistillError } from '../errors.js';
import { OUT_BUF, XzDecoder } from './xz-wasm.js';
import { xzDecodedSize, xzUnsupportedCheck } from './xz-format.js';
import type { XzPool } from './xz-pool.js';

/** Compressed streams up to this size are decoded in process when the shared processes cannot. */
export const XZ_INLINE_MAX = 512 * 1024;
/**
 * Compressed streams up to this size are held whole and decoded by the shared processes. Measured on
 * java (alternating runs, loaded machine): 4 MiB saved another ~0.2 s of CPU (no child for java's
 * 15 members of 0.6–2.8 MB) but raised the peak RSS by ~10–15 MiB (held members outlive the worker's
 * small young generation and wait for a full GC), too close to the 256 MiB target; 1 MiB kept it.
 */
export const XZ_SHARED_MAX = 1024 * 1024;

/**
 * A Duplex decoding the .xz written into it: by `shared.pool` when the whole input is at most
 * `shared.max` bytes and parses as .xz, else in process when it is at most `inlineMax` bytes, else
 * through `spawnTool()` (a Duplex around `xz -dc`).
 */
export function createXzDecoder(what: string, spawnTool: () => Duplex, inlineMax = XZ_INLINE_MAX, shared?: { pool: XzPool; max: number }): Duplex {
  const held: Buffer[] = [];
  let heldBytes = 0;
  let child: Duplex | undefined;
  let inner: Readable | undefined;
  const holdMax = shared !== undefined && shared.pool.available ? Math.max(inlineMax, shared.max) : inlineMax;
  const outer: Duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (child !== undefined) {
        forward(child, chunk, cb);
        return;
      }
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes <= holdMax) {
        cb();
        return;
      }
      child = spawnTool();
      inner = relay(child);
      const chunks = held.splice(0);
      const next = (i: number): void => {
        if (i === chunks.length) cb();
        else forward(child!, chunks[i]!, (e) => (e ? cb(e) : next(i + 1)));
      };
      next(0);
    },
    final(cb) {
      if (child !== undefined) {
        child.end();
        cb();
        return;
      }
      let chunks = held.splice(0);
      if (shared !== undefined && shared.pool.available) {
        const member = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const size = xzDecodedSize(member);
        if (size !== undefined) {
          chunks = [];
          inner = relay(shared.pool.decode(what, member, size, () => wasm([member])));
        } else chunks = [member];
      }
      if (inner === undefined) {
        if (heldBytes <= inlineMax && xzUnsupportedCheck(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks))) {
          // liblzma here would decode it unchecked where `xz -dc` (a larger member) refuses it: refused alike.
          cb(new DistillError('DECOMPRESS_FAILED', `${what}: xz: the integrity check type is not supported`, { hint: 'the compressed data is corrupt' }));
          return;
        }
        if (heldBytes <= inlineMax) inner = relay(wasm(chunks));
        else {
          // Held for the pool, which did not take it: a child of its own, as for a larger stream.
          child = spawnTool();
          inner = relay(child);
          for (const c of chunks) child.write(c);
          child.end();
        }
      }
      cb();
    },
    read() {
      inner?.resume();
    },
    destroy(err, cb) {
      inner?.destroy();
      cb(err);
    },
  });
  /** The in-process decoder, given the whole input. */
  function wasm(chunks: Buffer[]): Duplex {
    const d = inlineXz(what);
    for (const c of chunks) d.write(c);
    d.end();
    return d;
  }
  /** Writes into the inner stream, completing once it takes more. */
  function forward(d: Duplex, chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (d.write(chunk)) cb();
    else d.once('drain', () => cb());
  }
  /** The inner stream's output becomes ours, with its backpressure; its failure ours. */
  function relay(d: Readable): Readable {
    d.on('data', (c: Buffer) => {
      if (!outer.push(c)) d.pause();
    });
    d.on('end', () => outer.push(null));
    d.on('error', (e) => outer.destroy(e));
    return d;
  }
  return outer;
}

/** liblzma in wasm on this thread, producing output a slice at a time as it is read. */
function inlineXz(what: string): Duplex {
  let dec: XzDecoder | undefined;
  let wanted = false;
  let writeCb: ((e?: Error | null) => void) | undefined;
  const fail = (e: unknown): void => {
    dec?.close();
    d.destroy(new DistillError('DECOMPRESS_FAILED', `${what}: xz: ${e instanceof Error ? e.message : String(e)}`, { cause: e, hint: 'the compressed data is corrupt or truncated' }));
  };
  const pump = (): void => {
    try {
      dec ??= new XzDecoder();
      while (wanted && !dec.done) {
        const out = dec.decode(OUT_BUF);
        if (out.length === 0) break; // needs input
        for (const c of out) wanted = d.push(Buffer.from(c.buffer, c.byteOffset, c.length));
      }
      if (dec.done) {
        d.push(null);
        return;
      }
    } catch (e) {
      fail(e);
      return;
    }
    // A write completes once the decoder has taken all of it in.
    if (writeCb !== undefined && dec.pending === 0) {
      const cb = writeCb;
      writeCb = undefined;
      cb();
    }
  };
  const d: Duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      try {
        dec ??= new XzDecoder();
      } catch (e) {
        cb(e as Error);
        return;
      }
      dec.push(new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.length));
      writeCb = cb;
      pump();
    },
    final(cb) {
      try {
        dec ??= new XzDecoder();
      } catch (e) {
        cb(e as Error);
        return;
      }
      dec.end();
      cb();
      pump();
    },
    read() {
      wanted = true;
      pump();
    },
    destroy(err, cb) {
      dec?.close();
      cb(err);
    },
  });
  return d;
}
