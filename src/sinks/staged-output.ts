// Outputs appear whole or not at all. A build writes its OCI layout (with provenance and SBOMs) and
// its docker archive beside the target, under a temporary name in the same directory, and renames
// them into place only when everything succeeded: after a failure the previous output is untouched
// and nothing new looks complete. A layout that already exists is the starting point (the layout sink
// updates one in place, keeping other refs): its files are hard-linked into the staging directory —
// blobs are immutable and every writer replaces a file by rename, so the old layout never changes.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { access, copyFile, link, lstat, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { DistillError, messageOf } from '../errors.js';
import { fsyncFile } from '../util/atomic-write.js';

/** Temp names: `.<target>.distill-<hex>`, hidden, and recognisably ours for a later sweep. */
export function stagingName(target: string): string {
  const abs = resolve(target);
  return join(dirname(abs), `.${basename(abs)}.distill-${randomBytes(6).toString('hex')}`);
}

function outputError(what: string, target: string, e: unknown): DistillError {
  const code = (e as NodeJS.ErrnoException | undefined)?.code;
  const hint =
    code === 'ENOSPC' ? 'the disk is full; free space or write elsewhere'
    : code === 'EACCES' || code === 'EPERM' || code === 'EROFS' ? `make ${dirname(resolve(target))} writable, or write elsewhere`
    : 'check the output path';
  return new DistillError('OUTPUT_IO', `cannot ${what} ${target}: ${messageOf(e)}`, { cause: e, hint });
}

/** Staging left by a killed run is removed once nobody can still be writing it. */
const STALE_MS = 60 * 60 * 1000;

async function sweepStale(target: string): Promise<void> {
  const abs = resolve(target);
  const prefix = `.${basename(abs)}.distill-`;
  const names = await readdir(dirname(abs)).catch(() => [] as string[]);
  for (const n of names) {
    if (!n.startsWith(prefix)) continue;
    const p = join(dirname(abs), n);
    const st = await lstat(p).catch(() => undefined);
    if (st !== undefined && Date.now() - st.mtimeMs > STALE_MS) await rm(p, { recursive: true, force: true }).catch(() => {});
  }
}

/**
 * Refuse an output path that exists as the wrong kind of thing, before any work is done; sweep the
 * staging a killed run left beside it.
 */
export async function checkOutputTarget(target: string, kind: 'dir' | 'file'): Promise<void> {
  const parent = dirname(resolve(target));
  let st;
  try {
    st = await lstat(target);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw outputError('use', target, e);
    // A missing directory is made (`--out out/python3` on a fresh checkout, as `mkdir -p` would); a
    // path through a file, or where no directory may be made, is refused before any work.
    try {
      await mkdir(parent, { recursive: true });
    } catch (err) {
      throw outputError('use', target, err);
    }
    const p = await lstat(parent).catch(() => undefined);
    if (p === undefined || !p.isDirectory()) {
      throw new DistillError('OUTPUT_IO', `cannot write ${target}: ${parent} is not a directory`, { hint: 'pass a path whose directories exist or can be made' });
    }
  }
  // The output is staged beside the target: its directory must take new entries (EROFS and EACCES
  // show here, before the build's work, rather than after it).
  try {
    await access(parent, constants.W_OK | constants.X_OK);
  } catch (e) {
    throw outputError('write', target, e);
  }
  await sweepStale(target);
  if (st === undefined) return;
  if (kind === 'dir' && !st.isDirectory()) {
    throw new DistillError('OUTPUT_IO', `${target} exists and is not a directory`, { hint: 'pass a directory (new or an existing OCI layout) to --out' });
  }
  if (kind === 'file' && !st.isFile()) {
    throw new DistillError('OUTPUT_IO', `${target} exists and is not a regular file`, { hint: 'pass a file path to --tar' });
  }
}

export interface StagedOutput {
  /** Where to write. */
  readonly path: string;
  /** Move the staged output over the target. */
  commit(): Promise<void>;
  /** Remove the staged output (the target is left as it was). Never throws. */
  discard(): Promise<void>;
}

/** A staging directory for `target`, seeded with the existing layout's files (hard links). */
export async function stageDirectory(target: string): Promise<StagedOutput> {
  const staging = stagingName(target);
  try {
    await mkdir(staging);
    if (await isDir(target)) await linkTree(target, staging);
  } catch (e) {
    await rm(staging, { recursive: true, force: true }).catch(() => {});
    throw outputError('prepare', target, e);
  }
  return {
    path: staging,
    commit: async () => {
      const old = (await isDir(target)) ? stagingName(target) : undefined;
      try {
        if (old !== undefined) await rename(target, old);
        await rename(staging, target);
      } catch (e) {
        // Put the previous output back if it was moved aside.
        if (old !== undefined) await rename(old, target).catch(() => {});
        await rm(staging, { recursive: true, force: true }).catch(() => {});
        throw outputError('replace', target, e);
      }
      if (old !== undefined) await rm(old, { recursive: true, force: true }).catch(() => {});
    },
    discard: () => rm(staging, { recursive: true, force: true }).catch(() => {}),
  };
}

/** A staging file beside `target`, renamed over it on commit. */
export function stageFile(target: string): StagedOutput {
  const staging = stagingName(target);
  return {
    path: staging,
    commit: async () => {
      try {
        await rename(staging, target);
      } catch (e) {
        await rm(staging, { force: true }).catch(() => {});
        throw outputError('write', target, e);
      }
    },
    discard: () => rm(staging, { force: true }).catch(() => {}),
  };
}

/**
 * Write a file inside a staging directory. The path may be a hard link to the previous output's file:
 * it is unlinked first, so the previous output never sees the new bytes.
 */
export async function writeStagedFile(path: string, data: string | Buffer): Promise<void> {
  try {
    await mkdir(dirname(path), { recursive: true });
    await rm(path, { force: true });
    // The staging directory is renamed into place whole; its files are fsynced first, as every write is.
    await writeFile(path, data, { flag: 'wx' });
    await fsyncFile(path);
  } catch (e) {
    throw outputError('write', path, e);
  }
}

async function isDir(p: string): Promise<boolean> {
  try {
    return (await lstat(p)).isDirectory();
  } catch {
    return false;
  }
}

async function linkTree(from: string, to: string): Promise<void> {
  for (const e of await readdir(from, { withFileTypes: true })) {
    const src = join(from, e.name);
    const dst = join(to, e.name);
    if (e.isDirectory()) {
      await mkdir(dst);
      await linkTree(src, dst);
    } else if (e.isFile()) {
      await link(src, dst).catch(() => copyFile(src, dst));
    }
    // Anything else (links, sockets) in an output directory is not part of a layout: not carried over.
  }
}
