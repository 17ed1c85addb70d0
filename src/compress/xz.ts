// .xz decoding, chosen by the stream's size: small streams are decoded in process by liblzma compiled to
// WebAssembly (xz-wasm.ts); larger ones by an `xz -dc` child. Measured on java's 60 .debs (README,
// build profile): starting a child costs a fork of the whole Node process — ~8–16 ms of CPU at the
// build's 200+ MiB, paid twice per package (control and data) — while the wasm decoder needs ~1.45× the
// CPU of the native one per byte. Below XZ_INLINE_MAX compressed bytes the fork costs more than the
// wasm's extra, above it the native decoder wins. The output is fixed by the format either way.
//
// The decision waits for the input: it is held (at most XZ_INLINE_MAX bytes) until it either ends
// (inline) or grows past the limit (a child, which is then fed what was held).
import { Duplex } from 'node:stream';
import { DistillError } from '../errors.js';
import { OUT_BUF, XzDecoder } from './xz-wasm.js';

/** Compressed streams up to this size are decoded in process. */
export const XZ_INLINE_MAX = 512 * 1024;

/**
 * A Duplex decoding the .xz written into it: in process when the whole input is at most `inlineMax`
 * bytes, else through `spawnTool()` (a Duplex around `xz -dc`).
 */
export function createXzDecoder(what: string, spawnTool: () => Duplex, inlineMax = XZ_INLINE_MAX): Duplex {
  const held: Buffer[] = [];
  let heldBytes = 0;
  let inner: Duplex | undefined;
  const outer: Duplex = new Duplex({
    write(chunk: Buffer, _enc, cb) {
      if (inner !== undefined) {
        forward(inner, chunk, cb);
        return;
      }
      held.push(chunk);
      heldBytes += chunk.length;
      if (heldBytes <= inlineMax) {
        cb();
        return;
      }
      inner = relay(spawnTool());
      const chunks = held.splice(0);
      const next = (i: number): void => {
        if (i === chunks.length) cb();
        else forward(inner!, chunks[i]!, (e) => (e ? cb(e) : next(i + 1)));
      };
      next(0);
    },
    final(cb) {
      inner ??= relay(inlineXz(what));
      for (const c of held.splice(0)) inner.write(c);
      inner.end();
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
  /** Writes into the inner stream, completing once it takes more. */
  function forward(d: Duplex, chunk: Buffer, cb: (e?: Error | null) => void): void {
    if (d.write(chunk)) cb();
    else d.once('drain', () => cb());
  }
  /** The inner stream's output becomes ours, with its backpressure; its failure ours. */
  function relay(d: Duplex): Duplex {
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
