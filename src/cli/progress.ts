// Rendering progress events: one redrawn status line on a TTY, nothing otherwise (warnings always).
import type { ProgressEvent } from '../index.js';
import { eraseLine, terminalSafe, type CliIo } from './io.js';

export function progressRenderer(io: CliIo, enabled: boolean): { onProgress: (e: ProgressEvent) => void; done: () => void } {
  const tty = enabled && io.stderr.isTTY === true;
  let total = 0;
  let done = 0;
  let files = 0;
  let filesDone = 0;
  const inFlight = new Map<string, number>();
  let lastDraw = 0;
  let status = '';
  const draw = (force = false): void => {
    if (!tty) return;
    const now = Date.now();
    if (!force && now - lastDraw < 100) return;
    lastDraw = now;
    const width = Math.max(20, (io.stderr.columns ?? 80) - 1);
    // Escaped before it is cut to the width: a hostile name's escapes (six characters for one) would
    // otherwise wrap the line, and the next erase clears only its last row.
    const shown = terminalSafe(status);
    const line = shown.length > width ? shown.slice(0, width - 1) + '…' : shown;
    eraseLine(io.stderr);
    io.stderr.write(line);
  };
  const mb = (n: number): string => (n / 1e6).toFixed(1);
  const bar = (frac: number): string => {
    const w = 20;
    const f = Math.max(0, Math.min(w, Math.round(frac * w)));
    return `[${'#'.repeat(f)}${'.'.repeat(w - f)}]`;
  };
  const onProgress = (e: ProgressEvent): void => {
    switch (e.type) {
      case 'warning':
        if (tty) eraseLine(io.stderr);
        io.stderr.write(`distill: warning: ${e.message}\n`);
        break;
      case 'download-start':
        files++;
        total += e.bytes;
        inFlight.set(e.what, 0);
        break;
      case 'download-progress': {
        const prev = inFlight.get(e.what) ?? 0;
        done += e.bytes - prev;
        inFlight.set(e.what, e.bytes);
        break;
      }
      case 'download-done':
        if (!e.cached) {
          done += e.bytes - (inFlight.get(e.what) ?? 0);
          filesDone++;
        }
        inFlight.delete(e.what);
        break;
      case 'retry':
        if (tty) eraseLine(io.stderr);
        io.stderr.write(`distill: retrying ${e.what} in ${(e.delayMs / 1000).toFixed(1)}s (attempt ${e.attempt}): ${e.reason}\n`);
        break;
      case 'release-verified':
        status = `verified ${e.source} ${e.suite}`;
        break;
      case 'index-fetched':
        status = `reading ${e.source} ${e.path}`;
        break;
      case 'resolved':
        status = `resolved ${e.image} ${e.arch}: ${e.packages} packages`;
        break;
      case 'lock-written':
      case 'image-written':
        break;
      case 'sbom-written':
        status = `SBOM ${e.image}:${e.variant}-${e.arch}: licences declared for ${e.licenses}/${e.packages} packages`;
        break;
      case 'blob-push-start':
        files++;
        total += e.size;
        inFlight.set(e.digest, 0);
        break;
      case 'blob-push-progress': {
        done += e.bytes - (inFlight.get(e.digest) ?? 0);
        inFlight.set(e.digest, e.bytes);
        break;
      }
      case 'blob-pushed':
        if (inFlight.has(e.digest)) {
          done += e.size - (inFlight.get(e.digest) ?? 0);
          filesDone++;
          inFlight.delete(e.digest);
        }
        break;
      case 'manifest-pushed':
        status = `pushed ${e.repository}:${e.reference}`;
        break;
      case 'layer-written':
        status = `layer ${e.image} ${e.arch}: ${mb(e.size)} MB`;
        break;
    }
    if (files > 0 && (e.type.startsWith('download') || e.type.startsWith('blob-push'))) {
      const verb = e.type.startsWith('download') ? 'downloading' : 'pushing';
      status = `${verb} ${bar(total ? done / total : 1)} ${filesDone}/${files} blobs ${mb(done)}/${mb(total)} MB`;
    }
    draw(e.type === 'download-done');
  };
  return {
    onProgress,
    done: () => {
      if (tty && status !== '') eraseLine(io.stderr);
    },
  };
}
