// The lockfile (images/<name>/image.lock.json): everything a build needs, pinned — per source the
// suite, Release date and InRelease sha256; per architecture every .deb with its pool path, size,
// sha256 and dependency edges; the definition's checksum (and the base image lock's) so that a stale
// lock is detected, as apko does. Written with sorted keys, 2-space indent and a trailing newline:
// relocking unchanged inputs gives a byte-identical file. No mirror URL is recorded.
import { readFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { isSha256Hex, sha256Hex } from '../digest.js';
import { DistillError } from '../errors.js';
import { SAFE_POOL_PATH } from '../debian/packages-index.js';
import type { ImageDefinition } from '../definition/types.js';

export const LOCKFILE_VERSION = 1;
export const LOCK_NAME = 'image.lock.json';

export interface LockedPackage {
  name: string;
  version: string;
  architecture: string;
  source: string;
  sourceVersion: string;
  /** The definition's source (archive) it comes from; its pool path is relative to that archive's root. */
  archive: string;
  filename: string;
  size: number;
  sha256: string;
  /** Packages chosen for its Depends/Pre-Depends (in this lock or the base image's). */
  depends: string[];
}

export interface LockedSource {
  suite: string;
  components: string[];
  /** The Release's Date, RFC 3339. */
  date: string;
  validUntil?: string;
  inRelease: { sha256: string; size: number };
  /** Fingerprints of the keys whose signatures on InRelease verified. */
  signedBy: string[];
}

export interface Lockfile {
  lockfileVersion: number;
  image: string;
  definition: { file: string; sha256: string };
  base?: { image: string; lock: string; sha256: string };
  /** The build timestamp input: the newest Release date of the sources (SOURCE_DATE_EPOCH overrides it). */
  timestamp: string;
  requested: string[];
  exclude: string[];
  sources: Record<string, LockedSource>;
  /** Per architecture: the image's own closure, and the debug variants' packages when it defines them. */
  architectures: Record<string, { packages: LockedPackage[]; debug?: LockedPackage[] }>;
}

export function lockPathFor(definitionFile: string): string {
  return resolve(dirname(definitionFile), LOCK_NAME);
}

/**
 * The file's bytes: keys in a fixed, readable order (not alphabetical — `name` and `version` lead each
 * package), packages sorted by name, 2-space indent, trailing newline.
 */
export function serializeLock(lock: Lockfile): string {
  const ordered = {
    lockfileVersion: lock.lockfileVersion,
    image: lock.image,
    definition: { file: lock.definition.file, sha256: lock.definition.sha256 },
    ...(lock.base ? { base: { image: lock.base.image, lock: lock.base.lock, sha256: lock.base.sha256 } } : {}),
    timestamp: lock.timestamp,
    requested: [...lock.requested].sort(),
    exclude: [...lock.exclude].sort(),
    sources: Object.fromEntries(
      Object.keys(lock.sources).sort().map((k) => {
        const s = lock.sources[k]!;
        return [k, {
          suite: s.suite,
          components: s.components,
          date: s.date,
          ...(s.validUntil !== undefined ? { validUntil: s.validUntil } : {}),
          inRelease: { sha256: s.inRelease.sha256, size: s.inRelease.size },
          signedBy: [...s.signedBy].sort(),
        }];
      }),
    ),
    architectures: Object.fromEntries(
      Object.keys(lock.architectures).sort().map((a) => [a, {
        packages: orderPackages(lock.architectures[a]!.packages),
        ...(lock.architectures[a]!.debug ? { debug: orderPackages(lock.architectures[a]!.debug!) } : {}),
      }]),
    ),
  };
  return JSON.stringify(ordered, null, 2) + '\n';
}

function orderPackages(list: readonly LockedPackage[]) {
  return [...list]
          .sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0))
          .map((p) => ({
            name: p.name,
            version: p.version,
            architecture: p.architecture,
            source: p.source,
            sourceVersion: p.sourceVersion,
            archive: p.archive,
            filename: p.filename,
            size: p.size,
            sha256: p.sha256,
            depends: [...p.depends].sort(),
          }));
}

export async function readLock(path: string): Promise<{ lock: Lockfile; sha256: string }> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new DistillError('LOCK_NOT_FOUND', `no lockfile at ${path}`, { cause: e, hint: 'run `distill lock` on the definition first' });
  }
  return { lock: parseLock(bytes, path), sha256: sha256Hex(bytes) };
}

/** A lockfile's bytes, checked as readLock checks them; `what` names it in errors (a path, a provenance entry). */
export function parseLock(bytes: Buffer | string, what: string): Lockfile {
  let value: unknown;
  try {
    value = JSON.parse(typeof bytes === 'string' ? bytes : bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('LOCK_INVALID', `${what}: not JSON: ${(e as Error).message}`, { cause: e, hint: 'run `distill lock` to rewrite it' });
  }
  checkLockShape(value, what);
  return value;
}

function fail(path: string, what: string): never {
  throw new DistillError('LOCK_INVALID', `${path}: ${what}`, { hint: 'run `distill lock` to rewrite it' });
}

function checkLockShape(v: unknown, path: string): asserts v is Lockfile {
  const o = v as Partial<Lockfile> | null;
  if (o === null || typeof o !== 'object') fail(path, 'not an object');
  if (o.lockfileVersion !== LOCKFILE_VERSION) fail(path, `unsupported lockfileVersion ${String(o.lockfileVersion)} (this distill reads ${LOCKFILE_VERSION})`);
  // The timestamp becomes every mtime: only an explicit UTC form, never one read in the local zone.
  if (typeof o.image !== 'string' || typeof o.timestamp !== 'string' || !/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(o.timestamp) || Number.isNaN(Date.parse(o.timestamp))) {
    fail(path, 'missing image, or a timestamp not of the form YYYY-MM-DDThh:mm:ssZ');
  }
  if (!o.definition || !isSha256Hex(String(o.definition.sha256))) fail(path, 'missing definition checksum');
  if (!o.sources || typeof o.sources !== 'object') fail(path, 'missing sources');
  if (!o.architectures || typeof o.architectures !== 'object') fail(path, 'missing architectures');
  for (const [arch, a] of Object.entries(o.architectures)) {
    if (!Array.isArray(a?.packages)) fail(path, `architecture ${arch} has no package list`);
    if (a.debug !== undefined && !Array.isArray(a.debug)) fail(path, `architecture ${arch}: debug is not a package list`);
    const seen = new Set<string>();
    for (const p of [...a.packages, ...(a.debug ?? [])]) {
      if (typeof p?.name !== 'string' || typeof p.version !== 'string' || typeof p.filename !== 'string' || !Number.isSafeInteger(p.size) || !isSha256Hex(String(p.sha256))) {
        fail(path, `${arch}: malformed package entry ${JSON.stringify(p?.name)}`);
      }
      // The pool path becomes a URL path: refuse anything that could leave the archive root.
      if (!SAFE_POOL_PATH.test(p.filename) || p.filename.split('/').some((c) => c === '' || c === '.' || c === '..')) fail(path, `${arch}: unsafe filename ${JSON.stringify(p.filename)}`);
      if (!(p.archive in o.sources)) fail(path, `${arch}: ${p.name} comes from unknown source ${JSON.stringify(p.archive)}`);
      if (seen.has(p.name)) fail(path, `${arch}: ${p.name} appears twice`);
      seen.add(p.name);
    }
  }
}

/**
 * Refuse a lock that no longer matches its definition (or whose base image was relocked since).
 * Returns the lock for chaining.
 */
export async function assertFresh(def: ImageDefinition, lock: Lockfile, lockPath: string): Promise<Lockfile> {
  if (lock.definition.sha256 !== def.sha256) {
    throw new DistillError('LOCK_STALE', `${lockPath} is stale: ${def.file} changed since it was locked`, {
      hint: `run \`distill lock ${def.file}\``,
    });
  }
  if (def.base) {
    const basePath = lockPathFor(def.base.file);
    const { sha256 } = await readLock(basePath);
    if (lock.base?.sha256 !== sha256) {
      throw new DistillError('LOCK_STALE', `${lockPath} is stale: the base image's lock ${basePath} changed since it was locked`, {
        hint: `run \`distill lock ${def.file}\``,
      });
    }
  }
  return lock;
}
