// The lockfile (images/<name>/image.lock.json): everything a build needs, pinned — per source the
// suite, Release date and InRelease sha256; per architecture every .deb with its pool path, size,
// sha256 and dependency edges; the definition's checksum (and the base image lock's) so that a stale
// lock is detected, as apko does. Written with sorted keys, 2-space indent and a trailing newline:
// relocking unchanged inputs gives a byte-identical file. No mirror URL is recorded.
import { dirname, resolve } from 'node:path';
import { isSha256Hex, sha256Hex } from '../digest.js';
import { isValidVersion } from '../debian/version.js';
import { DistillError } from '../errors.js';
import { SAFE_POOL_PATH } from '../debian/packages-index.js';
import type { ImageDefinition } from '../definition/types.js';
import { readRegularFile } from '../util/regular-file.js';

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
  /**
   * Per architecture: the image's own closure, the packages it borrows files from (pinned alone,
   * without their dependencies), and the debug variants' packages when it defines them.
   */
  architectures: Record<string, { packages: LockedPackage[]; borrow?: LockedPackage[]; debug?: LockedPackage[] }>;
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
        ...(lock.architectures[a]!.borrow ? { borrow: orderPackages(lock.architectures[a]!.borrow!) } : {}),
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

/** A lock of the largest image is well under 1 MiB. */
const LOCK_CAP = 64 * 1024 * 1024;

export async function readLock(path: string): Promise<{ lock: Lockfile; sha256: string }> {
  let bytes: Buffer;
  try {
    // The lock path may name a FIFO or a device (a symlink planted in the image directory): refused
    // unread rather than blocking or reading without end (util/regular-file.ts).
    bytes = await readRegularFile(path, LOCK_CAP);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new DistillError('LOCK_NOT_FOUND', `no lockfile at ${path}`, { cause: e, hint: 'run `distill lock` on the definition first' });
    throw new DistillError('LOCK_INVALID', `cannot read the lockfile ${path}: ${(e as Error).message}`, { cause: e, hint: 'an image.lock.json is a regular file written by distill lock; run it again' });
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

/** Debian Policy §5.6.1 (package names) and §5.6.12 (versions, via parseVersion). */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
const ARCH_NAME = /^[a-z0-9][a-z0-9-]*$/;
const SOURCE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

const isName = (x: unknown): x is string => typeof x === 'string' && x.length <= 255 && PACKAGE_NAME.test(x);
const isNameList = (x: unknown): x is string[] => Array.isArray(x) && x.every(isName);
const isPositiveSize = (x: unknown): x is number => Number.isSafeInteger(x) && (x as number) > 0;
const isUtcTime = (x: unknown): x is string => typeof x === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/.test(x) && !Number.isNaN(Date.parse(x));

// ATTACKER-CONTROLLED INPUT: a lock arrives in a pull request as easily as a definition. Every field a
// build uses is checked here, strictly, so that nothing downstream meets a shape it did not expect.
function checkLockShape(v: unknown, path: string): asserts v is Lockfile {
  const o = v as Partial<Lockfile> | null;
  if (o === null || typeof o !== 'object' || Array.isArray(o)) fail(path, 'not an object');
  if (o.lockfileVersion !== LOCKFILE_VERSION) fail(path, `unsupported lockfileVersion ${(JSON.stringify(o.lockfileVersion) ?? 'undefined').slice(0, 40)} (this distill reads ${LOCKFILE_VERSION})`);
  // The timestamp becomes every mtime: only an explicit UTC form, never one read in the local zone.
  if (typeof o.image !== 'string' || !isUtcTime(o.timestamp)) {
    fail(path, 'missing image, or a timestamp not of the form YYYY-MM-DDThh:mm:ssZ');
  }
  if (!o.definition || typeof o.definition !== 'object' || !isSha256Hex(o.definition.sha256)) fail(path, 'missing definition checksum');
  if (o.base !== undefined && (typeof o.base !== 'object' || o.base === null || typeof o.base.image !== 'string' || typeof o.base.lock !== 'string' || !isSha256Hex(o.base.sha256))) {
    fail(path, 'malformed base');
  }
  if (!isNameList(o.requested)) fail(path, 'requested is not a list of package names');
  if (!isNameList(o.exclude)) fail(path, 'exclude is not a list of package names');
  if (!o.sources || typeof o.sources !== 'object' || Array.isArray(o.sources)) fail(path, 'missing sources');
  for (const [name, s] of Object.entries(o.sources)) {
    if (!s || typeof s !== 'object' || typeof s.suite !== 'string' || !Array.isArray(s.components) || !s.components.every((c) => typeof c === 'string')
      || !isUtcTime(s.date) || (s.validUntil !== undefined && !isUtcTime(s.validUntil))
      || !s.inRelease || !isSha256Hex(s.inRelease.sha256) || !isPositiveSize(s.inRelease.size)
      || !Array.isArray(s.signedBy) || !s.signedBy.every((f) => typeof f === 'string')) {
      fail(path, `source ${JSON.stringify(name)} is malformed`);
    }
  }
  if (!o.architectures || typeof o.architectures !== 'object' || Array.isArray(o.architectures)) fail(path, 'missing architectures');
  for (const [arch, a] of Object.entries(o.architectures)) {
    if (!ARCH_NAME.test(arch)) fail(path, `unknown architecture ${JSON.stringify(arch)}`);
    if (!Array.isArray(a?.packages)) fail(path, `architecture ${arch} has no package list`);
    if (a.debug !== undefined && !Array.isArray(a.debug)) fail(path, `architecture ${arch}: debug is not a package list`);
    if (a.borrow !== undefined && !Array.isArray(a.borrow)) fail(path, `architecture ${arch}: borrow is not a package list`);
    const seen = new Set<string>();
    for (const p of [...a.packages, ...(a.borrow ?? []), ...(a.debug ?? [])] as unknown[]) {
      const q = p as Partial<LockedPackage> | null;
      const name = JSON.stringify(q?.name);
      if (q === null || typeof q !== 'object' || !isName(q.name)) fail(path, `${arch}: a package entry without a valid name (${name})`);
      if (typeof q.version !== 'string' || !isValidVersion(q.version)) fail(path, `${arch}: ${q.name}: invalid version ${JSON.stringify(q.version)}`);
      if (q.architecture !== arch && q.architecture !== 'all') fail(path, `${arch}: ${q.name}: architecture ${JSON.stringify(q.architecture)} is neither ${arch} nor all`);
      if (typeof q.source !== 'string' || !SOURCE_NAME.test(q.source) || typeof q.sourceVersion !== 'string' || !isValidVersion(q.sourceVersion)) {
        fail(path, `${arch}: ${q.name}: invalid source or sourceVersion`);
      }
      if (!isPositiveSize(q.size)) fail(path, `${arch}: ${q.name}: size ${JSON.stringify(q.size)} is not a positive integer`);
      if (!isSha256Hex(q.sha256)) fail(path, `${arch}: ${q.name}: sha256 is not 64 lowercase hex digits`);
      if (!isNameList(q.depends)) fail(path, `${arch}: ${q.name}: depends is not a list of package names`);
      // The pool path becomes a URL path: refuse anything that could leave the archive root.
      if (typeof q.filename !== 'string' || !SAFE_POOL_PATH.test(q.filename) || q.filename.split('/').some((c) => c === '' || c === '.' || c === '..')) {
        fail(path, `${arch}: unsafe filename ${JSON.stringify(q.filename)}`);
      }
      if (typeof q.archive !== 'string' || !Object.hasOwn(o.sources, q.archive)) fail(path, `${arch}: ${q.name} comes from unknown source ${JSON.stringify(q.archive)}`);
      if (seen.has(q.name)) fail(path, `${arch}: ${q.name} appears twice`);
      seen.add(q.name);
    }
  }
}

/**
 * What the shape cannot say: a lock chain (outermost base first) must be closed — every package a
 * locked package depends on, and every package the definition requests, is locked in the image or a
 * base below it.
 */
export function checkLockChain(chain: readonly { lock: Lockfile; lockPath: string }[]): void {
  const below = new Map<string, Set<string>>();
  for (const { lock, lockPath } of chain) {
    for (const [arch, a] of Object.entries(lock.architectures)) {
      const installed = new Set(below.get(arch) ?? []);
      for (const p of a.packages) installed.add(p.name);
      for (const r of lock.requested) if (!installed.has(r)) fail(lockPath, `${arch}: requested package ${r} is not locked`);
      const withDebug = new Set(installed);
      for (const p of a.debug ?? []) withDebug.add(p.name);
      for (const p of a.packages) for (const d of p.depends) if (!installed.has(d)) fail(lockPath, `${arch}: ${p.name} depends on ${d}, which is not locked`);
      for (const p of a.debug ?? []) for (const d of p.depends) if (!withDebug.has(d)) fail(lockPath, `${arch}: ${p.name} (debug) depends on ${d}, which is not locked`);
      below.set(arch, installed);
    }
  }
}

/**
 * Refuse a lock that no longer matches its definition (or whose base image was relocked since).
 * Returns the lock for chaining.
 */
export async function assertFresh(def: ImageDefinition, lock: Lockfile, lockPath: string): Promise<Lockfile> {
  if (lock.definition.sha256 !== def.sha256 || lock.requested.join() !== [...def.packages].sort().join()) {
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
