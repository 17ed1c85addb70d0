// The pool of staging workers (stage-worker.ts): packages are read, decompressed, parsed, filtered and
// hashed there, so the main thread only assembles and writes layers. One process-wide pool, grown on
// demand (a worker per two packages staged at once — the build's Slots bound that, 2 by default), unref'd
// whenever idle so it never keeps the process alive. The shared in-memory budget for file bodies is a
// SharedArrayBuffer every worker reserves from atomically, mirrored into the caller's `{budget, used}`.
import { Worker } from 'node:worker_threads';
import type { ContentStore } from '../cas/store.js';
import { DistillError, messageOf } from '../errors.js';
import type { LockedPackage } from '../lock/lockfile.js';
import type { Body, TreeEntry } from '../rootfs/tree.js';
import type { StagedPackage, StageRules } from './stage.js';
import { fromWireControl, fromWireError, STAGE_WORKER_TAG, type StageJob, type StageReply } from './stage-worker.js';
import { superviseWorker } from '../util/worker.js';

export interface PooledStageOptions {
  store: ContentStore;
  stageDir: string;
  rules: StageRules;
  /** The build's budget for in-memory bodies (see stage.ts); `used` is kept current. */
  memory?: { budget: number; used: number };
  onWarning?: (message: string) => void;
}

/**
 * Packages one worker stages at once before another worker starts. Each worker is a V8 heap, a liblzma
 * instance and a malloc arena (java's peak RSS grew by ~40 MiB with a second one), and most of a job
 * is waiting on `xz -dc`, so with the default `--concurrency 2` one worker serves both; a higher
 * concurrency (the build's Slots bound the jobs in flight) gets a worker per two.
 */
const JOBS_PER_WORKER = 2;
const MAX_WORKERS = 8;

const YOUNG_GENERATION_MB = 6;

interface Pending {
  job: StageJob;
  pkg: LockedPackage;
  memory: { budget: number; used: number } | undefined;
  onWarning: ((m: string) => void) | undefined;
  resolve: (s: StagedPackage) => void;
  reject: (e: unknown) => void;
}

interface Slot {
  worker: Worker;
  /** Jobs running in it, by id (a worker stages several packages at once: most of a job is waiting on xz). */
  jobs: Map<number, Pending>;
}

/** The shared counter behind a `{budget, used}` object: [budget, used], and the `used` last mirrored. */
interface SharedBudget {
  sab: SharedArrayBuffer;
  a: BigInt64Array;
  seen: number;
}

const budgets = new WeakMap<object, SharedBudget>();

/** The counter for `memory`, brought up to date with it (its `used` may have been changed by others). */
function sharedBudget(memory: { budget: number; used: number }): SharedBudget {
  let b = budgets.get(memory);
  if (b === undefined) {
    const sab = new SharedArrayBuffer(16);
    b = { sab, a: new BigInt64Array(sab), seen: 0 };
    budgets.set(memory, b);
  }
  Atomics.store(b.a, 0, BigInt(memory.budget));
  if (memory.used !== b.seen) Atomics.add(b.a, 1, BigInt(memory.used - b.seen));
  mirror(memory, b);
  return b;
}

function mirror(memory: { used: number }, b: SharedBudget): void {
  memory.used = Number(Atomics.load(b.a, 1));
  b.seen = memory.used;
}

class StagePool {
  private readonly slots: Slot[] = [];
  private readonly queue: Pending[] = [];
  private nextId = 1;

  run(pkg: LockedPackage, opts: PooledStageOptions): Promise<StagedPackage> {
    return new Promise((resolve, reject) => {
      const job: StageJob = { id: this.nextId++, pkg, storeDir: opts.store.dir, stageDir: opts.stageDir, rules: opts.rules };
      this.queue.push({ job, pkg, memory: opts.memory, onWarning: opts.onWarning, resolve, reject });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      // The least busy worker; a new one when every worker has its share.
      let slot = this.slots.reduce<Slot | undefined>((a, s) => (a === undefined || s.jobs.size < a.jobs.size ? s : a), undefined);
      if (slot === undefined || (slot.jobs.size >= JOBS_PER_WORKER && this.slots.length < MAX_WORKERS)) slot = this.spawn();
      const p = this.queue.shift()!;
      if (p.memory) p.job.budget = sharedBudget(p.memory).sab;
      slot.jobs.set(p.job.id, p);
      slot.worker.ref(); // busy: the process must wait for this package
      slot.worker.postMessage(p.job);
    }
  }

  /** One idle worker now, if there is none: its start-up (a V8 isolate, its modules) overlaps the caller's work. */
  prestart(): void {
    if (this.slots.length > 0) return;
    this.spawn().worker.unref(); // idle: never keeps the process alive
  }

  private spawn(): Slot {
    // execArgv: [] — the worker needs no flags, and some of the parent's break it (`--input-type`, `-e`).
    // A small young generation: a worker's garbage is short-lived stream chunks, and V8 would otherwise
    // grow it to tens of MiB (java's peak RSS is the limit here, not scavenges).
    const worker = new Worker(new URL('./stage-worker.js', import.meta.url), { workerData: STAGE_WORKER_TAG, execArgv: [], resourceLimits: { maxYoungGenerationSizeMb: YOUNG_GENERATION_MB } });
    const slot: Slot = { worker, jobs: new Map() };
    worker.on('message', (reply: StageReply) => {
      const p = slot.jobs.get(reply.id);
      if (p === undefined) return;
      if ('warning' in reply) {
        p.onWarning?.(reply.warning);
        return;
      }
      slot.jobs.delete(reply.id);
      if (slot.jobs.size === 0) worker.unref(); // idle: never keep the process alive
      if (p.memory) mirror(p.memory, budgets.get(p.memory)!);
      if ('error' in reply) p.reject(fromWireError(reply.error));
      else {
        try {
          p.resolve({ pkg: p.pkg, control: fromWireControl(reply.control), entries: reply.entries.map(arrived), wanted: new Map(reply.wanted.map(([path, body]) => [path, bodyArrived(body)])) });
        } catch (e) {
          p.reject(e);
        }
      }
      this.dispatch();
    });
    const lost = (cause: unknown): void => {
      const i = this.slots.indexOf(slot);
      if (i < 0) return;
      this.slots.splice(i, 1);
      for (const p of slot.jobs.values()) {
        p.reject(new DistillError('BUILD_FAILED', `${p.pkg.name} ${p.pkg.version}: the thread staging it died: ${messageOf(cause)}`, { cause }));
      }
      slot.jobs.clear();
      this.dispatch(); // a replacement is spawned for whatever is queued
    };
    superviseWorker(worker, lost);
    this.slots.push(slot);
    return slot;
  }
}

/** A body's bytes arrive as a plain Uint8Array over a transferred arena: a Buffer view of it, no copy. */
function arrived(e: TreeEntry): TreeEntry {
  if (e.body !== undefined) e.body = bodyArrived(e.body);
  return e;
}

function bodyArrived(b: Body): Body {
  if (b.kind !== 'bytes' || Buffer.isBuffer(b.data)) return b;
  const u = b.data as Uint8Array;
  return { kind: 'bytes', data: Buffer.from(u.buffer, u.byteOffset, u.byteLength), sha256: b.sha256 };
}

let pool: StagePool | undefined;

/** Stage one package in the shared worker pool; errors are the DistillErrors stagePackage throws. */
export function stageInWorker(pkg: LockedPackage, opts: PooledStageOptions): Promise<StagedPackage> {
  pool ??= new StagePool();
  return pool.run(pkg, opts);
}

/**
 * Start a staging worker ahead of the first package (a cold build calls this before it reads its locks):
 * the ~50 ms a worker takes to start then overlaps the main thread's own start instead of following it.
 */
export function prestartStageWorker(): void {
  pool ??= new StagePool();
  pool.prestart();
}
