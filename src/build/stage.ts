// A locked .deb → the entries it contributes to a layer. The .deb is read streaming from the store
// (its sha256 re-checked as it flows), unsafe entries are refused by the sanitiser, runtime filtering
// drops docs and translations, and each kept file's bytes are kept in memory (within a shared budget)
// or staged to disk, hashed on the way, so that the layer can later be written in sorted order.
// A build runs this in worker threads (stage-pool.ts, stage-worker.ts): what it is told is then a
// StageRules description rather than functions, and its in-memory bodies live in a few large arenas
// that move to the main thread without a copy.
import { closeSync, openSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { threadId } from 'node:worker_threads';
import * as crypto from 'node:crypto';
import { createHash } from 'node:crypto';
import { cacheIo, type ContentStore } from '../cas/store.js';
import { DistillError } from '../errors.js';
import { readDeb, type DebControl } from '../rootfs/deb.js';
import type { TarBodySink } from '../tar/reader.js';
import type { LockedPackage } from '../lock/lockfile.js';
import { globToRegExp, pathFilter, type PathFilter, type PathRules } from '../rootfs/filter.js';
import { isReadByGenerator } from '../rootfs/package-roles.js';
import { mergedUsrPath, type Body, type TreeEntry } from '../rootfs/tree.js';

export interface StagedPackage {
  pkg: LockedPackage;
  control: DebControl;
  /** Kept entries; files carry a staged body. */
  entries: TreeEntry[];
  /** Files the generators need even when filtering drops them (e.g. CA certificates), path → body. */
  wanted: Map<string, Body>;
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
  /** The budget as a reservation (the worker's shared counter); takes precedence over `memory`. */
  reserve?: (bytes: number) => boolean;
  /** Receives every arena the in-memory bodies were placed in (the worker transfers them). */
  arenas?: ArrayBuffer[];
}

/**
 * What a package is staged with, as data (it crosses to a worker thread): an image's path rules, or
 * the globs of a borrowed package. The generators' wants (package-roles.ts) apply to both.
 */
export type StageRules =
  | { kind: 'image'; paths: PathRules & { setid?: readonly string[] } }
  | { kind: 'borrow'; package: string; globs: readonly string[]; setid?: readonly string[] };

const DOC_LINK = /^usr\/share\/doc\/[^/]+$/;

/** Files up to this size are read into memory where no budget bounds the total (definition files). */
export const SMALL_FILE = 256 * 1024;

/**
 * Package files up to this size stay in memory while the shared budget lasts. What costs as a staging
 * file is a file's count, not its bytes (thousands of small Python modules and time zones: ~0.4 s of
 * main-thread time when python3 staged everything to disk), so the large ones go to disk: with 1 MiB
 * java's peak RSS is ~15 MiB lower than with 8 MiB (its 1–8 MiB libraries no longer wait in memory for
 * their layer) and python3 writes its 8 files over 1 MiB (23 MB) to disk, which costs nothing measurable.
 */
export const BUDGETED_FILE = 1024 * 1024;

/**
 * In-memory bodies are placed back to back in arenas, the first of a package small and each next one
 * twice the last, up to ARENA_MAX: a package's unused tail stays under half of what it holds. Bodies
 * above OWN_BUFFER get a buffer of their own (no tail at all).
 */
const ARENA_MIN = 64 * 1024;
const ARENA_MAX = 1024 * 1024;
const OWN_BUFFER = 64 * 1024;

/** Bytes per read of a .deb. */
const DEB_READ = 512 * 1024;

/**
 * What ships of a borrowed package: the files matching its globs and its copyright (licences travel
 * with the bytes); no directories of its own (their parents are made root 0755), nothing else.
 */
export function borrowFilter(name: string, globs: readonly string[]): PathFilter {
  const res = globs.map(globToRegExp);
  const copyright = `usr/share/doc/${name}/copyright`;
  const keep = (p: string): boolean => p === copyright || res.some((r) => r.test(p));
  return { keepFile: keep, keepDir: () => false };
}

/** StageOptions from a StageRules description. */
export function stageOptionsOf(rules: StageRules): Pick<StageOptions, 'filter' | 'want' | 'allowSetid' | 'docLinks'> {
  const setid = (rules.kind === 'image' ? (rules.paths.setid ?? []) : (rules.setid ?? [])).map(globToRegExp);
  return {
    filter: rules.kind === 'image' ? pathFilter(rules.paths) : borrowFilter(rules.package, rules.globs),
    want: isReadByGenerator,
    ...(rules.kind === 'borrow' ? { docLinks: false } : {}),
    ...(setid.length ? { allowSetid: (path: string) => setid.some((r) => r.test(mergedUsrPath(path))) } : {}),
  };
}

let counter = 0;

export async function stagePackage(pkg: LockedPackage, opts: StageOptions): Promise<StagedPackage> {
  const what = `${pkg.name} ${pkg.version} (${pkg.filename})`;
  let control: DebControl | undefined;
  const entries: TreeEntry[] = [];
  const wanted = new Map<string, Body>();
  const mem = opts.memory;
  const reserve =
    opts.reserve ??
    (mem
      ? (n: number): boolean => {
          if (mem.used + n > mem.budget) return false;
          mem.used += n;
          return true;
        }
      : undefined);
  const arena = new Arena(opts.arenas);
  /** The staging file being written, closed here if the package fails half-way through it. */
  let open: FileBody | undefined;
  // The stored blob must have the lock's size before a byte of it is read (store.open checks the
  // digest as it streams, which only concludes at the end).
  await opts.store.assertSize({ size: pkg.size, sha256: pkg.sha256, what });
  try {
    await readDeb(
      // Large reads: every chunk costs a trip through each stream below (digest, ar, xz, tar).
      opts.store.open({ size: pkg.size, sha256: pkg.sha256, what: pkg.filename }, { highWaterMark: DEB_READ }),
      what,
      {
        control: (c) => {
          // The .deb's own word on what it is must be the lock's, before any of its files is staged:
          // a lock pinning another package's (or version's) bytes under this name is refused.
          for (const [field, want] of [['Package', pkg.name], ['Version', pkg.version], ['Architecture', pkg.architecture]] as const) {
            const got = c.fields.get(field);
            if (got !== want) {
              // `got` is the .deb's word (attacker-controlled): quoted unless plainly printable, so no
              // escape sequence or line break of it reaches the terminal.
              const said = got === undefined ? '(none)' : /^[\x20-\x7e]*$/.test(got) ? got : JSON.stringify(got).replace(/[^\x20-\x7e]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
              throw new DistillError('LOCK_INVALID', `${what}: the .deb's control file says ${field}: ${said}, the lock says ${want}`, {
                hint: 'the lock does not describe this .deb; run `distill lock` to rewrite it',
              });
            }
          }
          control = c;
        },
        entrySync: (e) => {
          // Rules are written for the merged-/usr layout the image has (usr/lib/…, not lib/…).
          const imagePath = mergedUsrPath(e.path);
          // /usr/share/doc/<pkg> as a link (libstdc++6 → gcc-14-base) stays, so that
          // /usr/share/doc/<pkg>/copyright resolves for every package, where syft reads licences.
          const keep = e.type === 'dir' || opts.filter.keepFile(imagePath) || (e.type === 'symlink' && DOC_LINK.test(imagePath) && opts.docLinks !== false);
          const want = e.type === 'file' && (opts.want?.(pkg.name, imagePath) ?? false);
          if (!keep && !want) return undefined; // readDeb skips the unread body
          const entry = e as TreeEntry;
          entry.owner = pkg.name;
          if (e.type !== 'file') {
            if (keep) entries.push(entry);
            return undefined;
          }
          const done = (staged: Body): void => {
            if (want) wanted.set(imagePath, staged);
            if (keep) {
              entry.body = staged;
              entries.push(entry);
            }
          };
          if (e.size <= BUDGETED_FILE && reserve?.(e.size)) {
            // Straight into its place in an arena: one copy out of the decompressed stream, hashed whole.
            return new ArenaBody(e.path, arena.take(e.size), done);
          }
          // A plain file: the staging file is this thread's, written through (a worker thread blocks no one).
          const body = new FileBody(join(opts.stageDir, nextStageName()), done);
          open = body;
          return body;
        },
      },
      { size: pkg.size, ...(opts.allowSetid ? { allowSetid: opts.allowSetid } : {}), ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) },
    );
  } finally {
    open?.close();
  }
  if (control === undefined) throw new Error(`${what}: no control information`); // readDeb guarantees it
  return { pkg, control, entries, wanted };
}

/** A body copied into its arena slice as it arrives; hashed once, whole, at its end. */
class ArenaBody implements TarBodySink {
  private at = 0;
  constructor(
    private readonly path: string,
    private readonly into: Buffer,
    private readonly done: (b: Body) => void,
  ) {}

  data(c: Buffer): void {
    if (this.at + c.length > this.into.length) throw new Error(`internal: ${this.path} has more than its ${this.into.length} bytes`);
    this.into.set(c, this.at);
    this.at += c.length;
  }

  end(): void {
    if (this.at !== this.into.length) throw new Error(`internal: ${this.path} has ${this.at} of its ${this.into.length} bytes`);
    this.done({ kind: 'bytes', data: this.into, sha256: sha256Hex(this.into) });
  }
}

/** A body written through to a staging file, hashed on the way. */
class FileBody implements TarBodySink {
  private fd: number | undefined;
  private readonly hash = createHash('sha256');
  constructor(
    private readonly path: string,
    private readonly done: (b: Body) => void,
  ) {
    try {
      this.fd = openSync(path, 'wx', 0o600);
    } catch (e) {
      throw cacheIo(dirname(path), e); // a full disk or a missing work directory is no bug of distill's
    }
  }

  data(c: Buffer): void {
    this.hash.update(c);
    try {
      for (let off = 0; off < c.length; ) off += writeSync(this.fd!, c, off);
    } catch (e) {
      throw cacheIo(dirname(this.path), e);
    }
  }

  end(): void {
    this.close();
    this.done({ kind: 'staged', path: this.path, sha256: this.hash.digest('hex') });
  }

  close(): void {
    if (this.fd === undefined) return;
    const fd = this.fd;
    this.fd = undefined;
    closeSync(fd);
  }
}

/** One-shot sha256 (crypto.hash, Node >= 20.12, skips the Hash object; createHash before). */
const oneShot = (crypto as { hash?: (alg: string, data: Buffer, enc: 'hex') => string }).hash;
function sha256Hex(data: Buffer): string {
  return oneShot !== undefined ? oneShot('sha256', data, 'hex') : createHash('sha256').update(data).digest('hex');
}

/**
 * Bodies placed back to back in large buffers: thousands of small files cost one allocation (and one
 * transfer to the main thread) per megabyte instead of one each. A view keeps its whole arena alive,
 * which is no loss: a package's bodies live until its layer is written.
 */
class Arena {
  private current: Buffer | undefined;
  private used = 0;
  private next = ARENA_MIN;
  constructor(private readonly out: ArrayBuffer[] | undefined) {}

  take(n: number): Buffer {
    if (n > OWN_BUFFER) return this.fresh(n);
    if (this.current === undefined || this.current.length - this.used < n) {
      this.current = this.fresh(this.next);
      this.next = Math.min(ARENA_MAX, this.next * 2);
      this.used = 0;
    }
    const b = this.current.subarray(this.used, this.used + n);
    this.used += n;
    return b;
  }

  private fresh(n: number): Buffer {
    // Never from Buffer's shared pool: an arena must own its ArrayBuffer to be transferred.
    const b = Buffer.allocUnsafeSlow(n);
    this.out?.push(b.buffer as ArrayBuffer);
    return b;
  }
}

function nextStageName(): string {
  counter += 1;
  // Worker threads stage into one directory: the thread's id keeps their names apart.
  return `s${threadId.toString(36)}-${counter.toString(36)}`;
}
