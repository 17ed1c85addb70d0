// Temp directories for tests, removed when the test file's process exits — whether its tests passed,
// failed or threw — so that `npm test` leaves nothing in the temp directory (node --test runs every
// file in its own process). Tests that mount something inside one must unmount it themselves.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const made: string[] = [];
let hooked = false;

/** A fresh directory under the system temp dir, named `<prefix>XXXXXX`; removed at process exit. */
export function tempDir(prefix = 'distill-test-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  made.push(dir);
  if (!hooked) {
    hooked = true;
    process.once('exit', removeAll);
    // A test run stopped with Ctrl-C still cleans up.
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      process.once(sig, () => {
        removeAll();
        process.exit(130);
      });
    }
  }
  return dir;
}

/** Remove one now (and forget it). */
export function removeTempDir(dir: string): void {
  rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  const i = made.indexOf(dir);
  if (i >= 0) made.splice(i, 1);
}

function removeAll(): void {
  for (const d of made.splice(0)) {
    try {
      rmSync(d, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // a mount left inside, or a read-only subtree: nothing more to do at exit
    }
  }
}
