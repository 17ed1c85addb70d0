// A locked .deb → the entries it contributes to a layer. The .deb is read streaming from the store
// (its sha256 re-checked as it flows), unsafe entries are refused by the sanitiser, runtime filtering
// drops docs and translations, and each kept file's bytes are staged to disk (hashed on the way) so
// that the layer can later be written in sorted order without holding anything in memory.
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { ContentStore } from '../cas/store.js';
import { HashingStream, sha256Hex } from '../digest.js';
import { DistillError } from '../errors.js';
import { readDeb, type DebControl } from '../rootfs/deb.js';
import type { LockedPackage } from '../lock/lockfile.js';
import type { PathFilter } from '../rootfs/filter.js';
import { mergedUsrPath, type TreeEntry } from '../rootfs/tree.js';

export interface StagedPackage {
  pkg: LockedPackage;
  control: DebControl;
  /** Kept entries; files carry a staged body. */
  entries: TreeEntry[];
  /** Files the generators need even when filtering drops them (e.g. CA certificates), path → staged body. */
  wanted: Map<string, string>;
}

export interface StageOptions {
  store: ContentStore;
  stageDir: string;
  filter: PathFilter;
  /** Paths whose content a generator reads (kept aside whether or not the filter keeps them). */
  want?: (pkg: string, path: string) => boolean;
  allowSetid?: (path: string) => boolean;
  /** Keep /usr/share/doc/<pkg> symlinks whatever the filter says (default true). */
  docLinks?: boolean;
  onWarning?: (message: string) => void;
  /**
   * Small files are kept in memory instead of a staging file (thousands of tiny files — time zones,
   * Python modules — cost far more as files than as buffers). Bounded: once `budget.bytes` is spent,
   * everything goes to disk. Shared by every package of a build.
   */
  memory?: { budget: number; used: number };
}

const DOC_LINK = /^usr\/share\/doc\/[^/]+$/;

/** Files up to this size are read into memory where no budget bounds the total (definition files). */
export const SMALL_FILE = 256 * 1024;

/**
 * Package files up to this size stay in memory while the shared budget lasts: with 8 MiB, python3's
 * whole layer (57 MB) stays off disk — staging to disk and reading back cost ~0.4 s of its main
 * thread — while java's largest files (the 130 MB jimage, libjvm) still go to disk (peak RSS ~205 MiB).
 */
export const BUDGETED_FILE = 8 * 1024 * 1024;

let counter = 0;

export async function stagePackage(pkg: LockedPackage, opts: StageOptions): Promise<StagedPackage> {
  const what = `${pkg.name} ${pkg.version} (${pkg.filename})`;
  let control: DebControl | undefined;
  const entries: TreeEntry[] = [];
  const wanted = new Map<string, string>();
  // The stored blob must have the lock's size before a byte of it is read (store.open checks the
  // digest as it streams, which only concludes at the end).
  await opts.store.assertSize({ size: pkg.size, sha256: pkg.sha256, what });
  await readDeb(
    opts.store.open({ size: pkg.size, sha256: pkg.sha256, what: pkg.filename }),
    what,
    {
      control: (c) => {
        // The .deb's own word on what it is must be the lock's, before any of its files is staged:
        // a lock pinning another package's (or version's) bytes under this name is refused.
        for (const [field, want] of [['Package', pkg.name], ['Version', pkg.version], ['Architecture', pkg.architecture]] as const) {
          const got = c.fields.get(field);
          if (got !== want) {
            throw new DistillError('LOCK_INVALID', `${what}: the .deb's control file says ${field}: ${got ?? '(none)'}, the lock says ${want}`, {
              hint: 'the lock does not describe this .deb; run `distill lock` to rewrite it',
            });
          }
        }
        control = c;
      },
      entry: async (e, body) => {
        // Rules are written for the merged-/usr layout the image has (usr/lib/…, not lib/…).
        const imagePath = mergedUsrPath(e.path);
        // /usr/share/doc/<pkg> as a link (libstdc++6 → gcc-14-base) stays, so that
        // /usr/share/doc/<pkg>/copyright resolves for every package, where syft reads licences.
        const keep = e.type === 'dir' || opts.filter.keepFile(imagePath) || (e.type === 'symlink' && DOC_LINK.test(imagePath) && opts.docLinks !== false);
        const want = e.type === 'file' && (opts.want?.(pkg.name, imagePath) ?? false);
        if (!keep && !want) return; // readDeb discards the unread body
        let staged: { path: string; sha256: string } | undefined;
        let inMemory: Buffer | undefined;
        const mem = opts.memory;
        if (e.type === 'file' && body && !want && mem && e.size <= BUDGETED_FILE && mem.used + e.size <= mem.budget) {
          const chunks: Buffer[] = [];
          for await (const c of body) chunks.push(c as Buffer);
          inMemory = Buffer.concat(chunks);
          mem.used += inMemory.length;
        } else if (e.type === 'file' && body) {
          const path = join(opts.stageDir, `${nextStageName()}`);
          const hash = new HashingStream();
          await pipeline(body, hash, createWriteStream(path, { mode: 0o600 }));
          staged = { path, sha256: hash.sha256 };
          if (want) wanted.set(imagePath, path);
        }
        if (keep && inMemory) {
          entries.push({ ...e, owner: pkg.name, body: { kind: 'bytes', data: inMemory, sha256: sha256Hex(inMemory) } });
        } else if (keep) entries.push({ ...e, owner: pkg.name, ...(staged ? { body: { kind: 'staged', path: staged.path, sha256: staged.sha256 } } : {}) });
      },
    },
    { size: pkg.size, ...(opts.allowSetid ? { allowSetid: opts.allowSetid } : {}), ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) },
  );
  if (control === undefined) throw new Error(`${what}: no control information`); // readDeb guarantees it
  return { pkg, control, entries, wanted };
}

function nextStageName(): string {
  counter += 1;
  return `s${counter.toString(36)}`;
}
