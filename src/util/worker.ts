// What every worker_threads pool of distill does with a worker it starts (the gzip pool, the staging
// pool): a worker that errors or exits is lost — `lost` runs (the pool drops it, fails its jobs and
// spawns a replacement for what is queued) — and an idle worker never keeps the process alive.
import type { Worker } from 'node:worker_threads';

export function superviseWorker(worker: Worker, lost: (cause: unknown) => void): void {
  worker.on('error', lost);
  worker.on('exit', (code) => lost(new Error(`exit code ${code}`)));
  worker.unref();
}
