// The WebAssembly modules distill commits (wasm/libdeflate.wasm, wasm/zstd.wasm, wasm/xz.wasm): compiled once per
// thread, instantiated with no imports (they need none: no clock, no file system, no randomness — so
// their output depends only on their bytes and their input).
import { readFileSync } from 'node:fs';

// Node's WebAssembly global, typed here: this project compiles without the DOM lib, and @types/node 20
// does not declare it.
declare namespace WebAssembly {
  class Module {
    constructor(bytes: Uint8Array);
  }
  class Instance {
    constructor(module: Module, imports: object);
    readonly exports: object;
  }
}

/** A wasm module's linear memory, as its exports name it. */
export interface WasmMemory {
  readonly buffer: ArrayBuffer;
}

const compiled = new Map<string, WebAssembly.Module>();

/** A fresh instance of the module at `url` (a wasm instance is single-threaded: one per user). */
export function instantiate<Exports>(url: URL): Exports {
  let m = compiled.get(url.href);
  if (m === undefined) {
    m = new WebAssembly.Module(readFileSync(url));
    compiled.set(url.href, m);
  }
  return new WebAssembly.Instance(m, {}).exports as unknown as Exports;
}
