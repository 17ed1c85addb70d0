// The worker_threads entry that stages packages (stage.ts) off the main thread, and the messages it
// exchanges with the pool (stage-pool.ts). Everything a package costs before assembly — reading the
// .deb, checking its sha256, decompressing (liblzma in wasm, or an `xz -dc` child), the hardened tar
// reader, the sanitiser, hashing each body — runs here; the main thread only assembles and writes
// layers. In-memory bodies come back in the arenas they were written into, transferred (no copy).
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { ContentStore } from '../cas/store.js';
import { Paragraph } from '../debian/deb822.js';
import { DistillError, type ErrorCode } from '../errors.js';
import type { LockedPackage } from '../lock/lockfile.js';
import type { DebControl } from '../rootfs/deb.js';
import type { Body, TreeEntry } from '../rootfs/tree.js';
import { stageOptionsOf, stagePackage, type StagedPackage, type StageRules } from './stage.js';

/** The workerData that tells this module it was started as a staging worker. */
export const STAGE_WORKER_TAG = 'distill-stage-worker/1';

export interface StageJob {
  id: number;
  pkg: LockedPackage;
  storeDir: string;
  stageDir: string;
  rules: StageRules;
  /** The shared in-memory budget: [budget, used] in bytes (absent: every body goes to disk). */
  budget?: SharedArrayBuffer;
}

/** A DebControl as data (its Paragraph is a class: rebuilt on arrival). */
export interface WireControl {
  text: string;
  line: number;
  fields: [string, string][];
  md5sums?: string;
  conffiles?: string;
}

/** An error as data: a DistillError comes back with the same code, message, hint and cause chain. */
export interface WireError {
  message: string;
  code?: string;
  hint?: string;
  distill: boolean;
  cause?: WireError;
}

export type StageReply =
  | { id: number; warning: string }
  | { id: number; control: WireControl; entries: TreeEntry[]; wanted: [string, Body][] }
  | { id: number; error: WireError };

export function toWireError(e: unknown, depth = 0): WireError {
  if (e instanceof DistillError) {
    return {
      message: e.message,
      code: e.code,
      ...(e.hint !== undefined ? { hint: e.hint } : {}),
      distill: true,
      ...(e.cause !== undefined && depth < 8 ? { cause: toWireError(e.cause, depth + 1) } : {}),
    };
  }
  const code = (e as { code?: unknown } | null)?.code;
  return {
    message: e instanceof Error ? e.message : String(e),
    distill: false,
    ...(typeof code === 'string' ? { code } : {}),
    ...(e instanceof Error && e.cause !== undefined && depth < 8 ? { cause: toWireError(e.cause, depth + 1) } : {}),
  };
}

export function fromWireError(w: WireError): Error {
  const cause = w.cause ? fromWireError(w.cause) : undefined;
  if (w.distill) return new DistillError(w.code as ErrorCode, w.message, { ...(w.hint !== undefined ? { hint: w.hint } : {}), ...(cause ? { cause } : {}) });
  const e = new Error(w.message, cause ? { cause } : undefined);
  if (w.code !== undefined) Object.assign(e, { code: w.code });
  return e;
}

export function toWireControl(c: DebControl): WireControl {
  return {
    text: c.text,
    line: c.fields.line,
    fields: c.fields.names.map((n) => [n, c.fields.get(n)!]),
    ...(c.md5sums !== undefined ? { md5sums: c.md5sums } : {}),
    ...(c.conffiles !== undefined ? { conffiles: c.conffiles } : {}),
  };
}

export function fromWireControl(w: WireControl): DebControl {
  const fields = new Paragraph(w.line);
  for (const [n, v] of w.fields) fields.set(n, v);
  return { text: w.text, fields, ...(w.md5sums !== undefined ? { md5sums: w.md5sums } : {}), ...(w.conffiles !== undefined ? { conffiles: w.conffiles } : {}) };
}

/** A reservation against the shared budget: first come, first served, never past the budget. */
function reserver(sab: SharedArrayBuffer): (bytes: number) => boolean {
  const a = new BigInt64Array(sab);
  return (bytes) => {
    const n = BigInt(bytes);
    for (;;) {
      const used = Atomics.load(a, 1);
      if (used + n > Atomics.load(a, 0)) return false;
      if (Atomics.compareExchange(a, 1, used, used + n) === used) return true;
    }
  };
}

async function runJob(job: StageJob, post: (r: StageReply, transfer?: ArrayBuffer[]) => void): Promise<void> {
  const arenas: ArrayBuffer[] = [];
  let staged: StagedPackage;
  try {
    staged = await stagePackage(job.pkg, {
      store: new ContentStore(job.storeDir),
      stageDir: job.stageDir,
      ...stageOptionsOf(job.rules),
      ...(job.budget ? { reserve: reserver(job.budget) } : {}),
      arenas,
      onWarning: (warning) => post({ id: job.id, warning }),
    });
  } catch (e) {
    post({ id: job.id, error: toWireError(e) });
    return;
  }
  post({ id: job.id, control: toWireControl(staged.control), entries: staged.entries, wanted: [...staged.wanted] }, arenas);
}

if (!isMainThread && workerData === STAGE_WORKER_TAG && parentPort !== null) {
  const port = parentPort;
  const post = (r: StageReply, transfer: ArrayBuffer[] = []): void => port.postMessage(r, transfer);
  port.on('message', (job: StageJob) => {
    void runJob(job, post);
  });
}
