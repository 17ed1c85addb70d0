// Where the test fixtures live: the repository root and the frozen Debian snapshot (../shared beside
// the checkout, or DISTILL_SNAPSHOT). Absent on a user's fresh clone: tests that need it skip, saying why.
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

/** The repository root (tests run from dist/test/…). */
export const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export function snapshotDir(): string | undefined {
  const candidates = [process.env['DISTILL_SNAPSHOT'], join(repoRoot, '..', 'shared', 'debian-snapshot')];
  for (const c of candidates) {
    if (c && existsSync(join(c, 'debian', 'dists', 'trixie', 'InRelease'))) return resolve(c);
  }
  return undefined;
}

export const NO_SNAPSHOT =
  'the frozen Debian snapshot (../shared/debian-snapshot or $DISTILL_SNAPSHOT) is not present on this machine';

/** `--mirror` values for the snapshot's two archives. */
export function snapshotMirrors(dir: string): Record<string, string> {
  return {
    debian: pathToFileURL(join(dir, 'debian')).href,
    'debian-security': pathToFileURL(join(dir, 'debian-security')).href,
  };
}

export const systemKeyring = '/usr/share/keyrings/debian-archive-keyring.gpg';
