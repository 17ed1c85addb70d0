// definition → lockfile: verify each archive's InRelease, read its Packages indexes, resolve the
// closure per architecture and write image.lock.json beside the definition. One LockSession shares
// verified Releases and parsed indexes across every image locked in a run.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, relative } from 'node:path';
import { ContentStore } from '../cas/store.js';
import { loadDefinition } from '../definition/load.js';
import type { ImageDefinition, SourceSpec } from '../definition/types.js';
import { resolveMirror, type MirrorInputs } from '../debian/mirrors.js';
import { readKeyring, type Keyring } from '../debian/openpgp/index.js';
import { readPackagesIndex, type PackageRecord } from '../debian/packages-index.js';
import { readInRelease, type Release } from '../debian/release.js';
import { buildUniverse, resolve, type Universe } from '../debian/resolve.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import type { OnProgress } from '../events.js';
import { fetchSmall } from '../http/open.js';
import { defaultRetryPolicy, withRetry } from '../http/retry.js';
import { sha256Hex } from '../digest.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { rfc3339 } from './time.js';
import { assertFresh, LOCKFILE_VERSION, lockPathFor, readLock, serializeLock, type LockedPackage, type Lockfile } from './lockfile.js';

export const DEFAULT_KEYRINGS = ['/usr/share/keyrings/debian-archive-keyring.gpg', '/usr/share/keyrings/debian-archive-keyring.pgp'];
const MAX_INRELEASE_BYTES = 16 * 1024 * 1024;

export interface LockOptions {
  cacheDir: string;
  mirrors?: MirrorInputs;
  /** An OpenPGP keyring file; default the Debian archive keyring when present. */
  keyring?: string;
  /** apt's check-valid-until=no, for snapshot mirrors. */
  allowExpired?: boolean;
  /** The clock for Valid-Until checks. */
  now?: Date;
  onProgress?: OnProgress;
  /** Compute and compare, write nothing (`distill lock --check`). */
  dryRun?: boolean;
}

export interface LockResult {
  definition: ImageDefinition;
  path: string;
  lock: Lockfile;
  /** False when the file already held exactly these bytes. */
  changed: boolean;
}

export async function loadKeyring(path: string | undefined): Promise<Keyring> {
  const candidates = path !== undefined ? [path] : DEFAULT_KEYRINGS;
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) {
    throw new DistillError('KEYRING_NOT_FOUND', path !== undefined ? `keyring ${path} not found` : 'no Debian archive keyring on this machine', {
      hint: path !== undefined ? 'check the --keyring path' : 'install debian-archive-keyring, or pass --keyring FILE',
    });
  }
  return readKeyring(await readFile(found), found);
}

/** Verified Releases and parsed indexes, shared by every image locked in one run. */
export class LockSession {
  private readonly releases = new Map<string, Promise<Release>>();
  private readonly universes = new Map<string, Promise<Universe>>();
  readonly store: ContentStore;
  /** Locks computed in this run but not yet written (written only once every image has locked). */
  readonly pending = new Map<string, { lock: Lockfile; sha256: string }>();
  private keyring: Promise<Keyring> | undefined;

  constructor(private readonly opts: LockOptions) {
    this.store = new ContentStore(opts.cacheDir);
  }

  private getKeyring(): Promise<Keyring> {
    return (this.keyring ??= loadKeyring(this.opts.keyring));
  }

  release(archive: string, spec: SourceSpec, mirror: string): Promise<Release> {
    const key = `${archive}\0${spec.suite}\0${mirror}`;
    let p = this.releases.get(key);
    if (p === undefined) {
      p = this.fetchRelease(archive, spec, mirror);
      this.releases.set(key, p);
    }
    return p;
  }

  private async fetchRelease(archive: string, spec: SourceSpec, mirror: string): Promise<Release> {
    const what = `${archive} ${spec.suite} InRelease`;
    const bytes = await withRetry(defaultRetryPolicy, () => fetchSmall(`${mirror}/dists/${spec.suite}/InRelease`, MAX_INRELEASE_BYTES, what), {
      onRetry: (attempt, delayMs, e) => this.opts.onProgress?.({ type: 'retry', what, attempt, delayMs, reason: messageOf(e) }),
    });
    const release = readInRelease(bytes, {
      keyring: await this.getKeyring(),
      allowExpired: this.opts.allowExpired ?? false,
      now: this.opts.now ?? new Date(),
      what,
    });
    // A correctly signed Release of another suite must not stand in for this one (a replay).
    if (release.suite !== spec.suite && release.codename !== spec.suite) {
      throw new DistillError('RELEASE_INVALID', `${what}: the mirror served the Release of ${release.suite}/${release.codename ?? '?'}`, {
        hint: 'check the suite name and the mirror URL',
      });
    }
    for (const c of spec.components) {
      if (release.components.length > 0 && !release.components.includes(c) && !release.components.some((rc) => rc.endsWith(`/${c}`))) {
        throw new DistillError('RELEASE_MISSING_INDEX', `${what}: the suite has no component ${c} (it has ${release.components.join(', ')})`, {
          hint: 'fix the components of this source in the definition',
        });
      }
    }
    this.opts.onProgress?.({ type: 'release-verified', source: archive, suite: spec.suite, signer: release.signer });
    return release;
  }

  universe(sources: { archive: string; spec: SourceSpec; mirror: string; release: Release }[], arch: string): Promise<Universe> {
    const key = JSON.stringify([arch, sources.map((s) => [s.archive, s.spec.suite, s.spec.components, s.mirror])]);
    let u = this.universes.get(key);
    if (u === undefined) {
      u = (async () => {
        const records: PackageRecord[] = [];
        for (const s of sources) {
          if (s.release.architectures.length > 0 && !s.release.architectures.includes(arch)) {
            throw new DistillError('RELEASE_MISSING_INDEX', `${s.archive} ${s.spec.suite} has no architecture ${arch} (it has ${s.release.architectures.join(', ')})`, {
              hint: 'remove the architecture from the definition or use another suite',
            });
          }
          const arches = s.release.archAllInArchIndexes || !s.release.architectures.includes('all') ? [arch] : [arch, 'all'];
          for (const component of s.spec.components) {
            for (const a of arches) {
              await readPackagesIndex(
                this.store,
                { archive: s.archive, mirror: s.mirror, release: s.release, suite: s.spec.suite, component, arch: a },
                (r) => records.push(r),
                this.opts.onProgress,
              );
            }
          }
        }
        return buildUniverse(records, arch, sources.map((s) => s.archive));
      })();
      this.universes.set(key, u);
    }
    return u;
  }

  async lockOne(def: ImageDefinition): Promise<Lockfile> {
    const sources = [];
    for (const [archive, spec] of def.sources) {
      const mirror = resolveMirror(archive, spec.suite, spec.mirror, this.opts.mirrors ?? {}).url;
      sources.push({ archive, spec, mirror, release: await this.release(archive, spec, mirror) });
    }
    let base: Lockfile['base'];
    let baseLock: Lockfile | undefined;
    // Every ancestor's closure counts as installed: an image's lock holds only what its own layer adds.
    const ancestors: Lockfile[] = [];
    for (let b = def.base, first = true; b !== undefined; b = b.base, first = false) {
      const basePath = lockPathFor(b.file);
      const staged = this.pending.get(basePath);
      const { lock, sha256 } = staged ?? (await readLock(basePath));
      if (!staged) await assertFresh(b, lock, basePath);
      if (first) {
        baseLock = lock;
        base = { image: b.name, lock: relative(dirname(def.file), basePath), sha256 };
      }
      ancestors.push(lock);
    }
    const architectures: Lockfile['architectures'] = {};
    for (const arch of [...def.architectures].sort()) {
      const universe = await this.universe(sources, arch);
      const installed = new Map(
        ancestors.flatMap((a) => a.architectures[arch]?.packages ?? []).map((p) => {
          const c = universe.candidates.get(p.name);
          const same = c !== undefined && c.version === p.version;
          return [p.name, { name: p.name, version: p.version, architecture: p.architecture, ...(same ? { provides: c.provides, multiArch: c.multiArch } : {}) }];
        }),
      );
      const res = resolve({ universe, requested: def.packages, exclude: def.exclude, installed, image: def.name });
      for (const u of res.excludedUnused.filter((x) => def.ownExclude.includes(x))) this.opts.onProgress?.({ type: 'warning', message: `${def.name} (${arch}): exclude ${u} removed nothing` });
      const packages: LockedPackage[] = [...res.packages.values()].map(({ record: r, depends }) => lockedPackage(r, depends));
      architectures[arch] = { packages };
      if (def.borrow.length > 0) {
        // Borrowed packages are pinned alone: only some of their files are shipped, nothing of theirs runs.
        architectures[arch].borrow = def.borrow.map((b) => {
          const r = universe.candidates.get(b.package);
          if (r === undefined) {
            throw new DistillError('PACKAGE_UNKNOWN', `${def.name} (${arch}): borrowed package ${b.package} is not in the archive`, { hint: 'check the name in borrow' });
          }
          if (installed.has(b.package) || res.packages.has(b.package)) {
            throw new DistillError('DEFINITION_INVALID', `${def.name} (${arch}): ${b.package} is borrowed but also installed`, { hint: 'remove it from borrow: the image already ships it whole' });
          }
          return lockedPackage(r, []);
        });
      }
      if (def.ownsDebug && def.debugPackages.length > 0) {
        // The debug layer sits on top of the image: everything below it counts as installed.
        const below = new Map(installed);
        for (const p of packages) below.set(p.name, { name: p.name, version: p.version, architecture: p.architecture });
        const dbg = resolve({ universe, requested: def.debugPackages, exclude: def.exclude, installed: below, image: `${def.name} (debug)` });
        architectures[arch].debug = [...dbg.packages.values()].map(({ record: r, depends }) => lockedPackage(r, depends));
      }
      this.opts.onProgress?.({ type: 'resolved', image: def.name, arch, packages: packages.length });
    }
    const newest = Math.max(...sources.map((s) => s.release.date.getTime()), baseLock ? Date.parse(baseLock.timestamp) : 0);
    const lockedSources: Lockfile['sources'] = {};
    for (const s of sources) {
      lockedSources[s.archive] = {
        suite: s.spec.suite,
        components: s.spec.components,
        date: rfc3339(s.release.date),
        ...(s.release.validUntil ? { validUntil: rfc3339(s.release.validUntil) } : {}),
        inRelease: s.release.inRelease,
        signedBy: s.release.signers,
      };
    }
    return {
      lockfileVersion: LOCKFILE_VERSION,
      image: def.name,
      definition: { file: 'image.yaml', sha256: def.sha256 },
      ...(base ? { base } : {}),
      timestamp: rfc3339(new Date(newest)),
      requested: [...def.packages].sort(),
      exclude: def.exclude,
      sources: lockedSources,
      architectures,
    };
  }
}

function lockedPackage(r: PackageRecord, depends: string[]): LockedPackage {
  return {
    name: r.name,
    version: r.version,
    architecture: r.architecture,
    source: r.source,
    sourceVersion: r.sourceVersion,
    archive: r.archive,
    filename: r.filename,
    size: r.size,
    sha256: r.sha256,
    depends,
  };
}

export { rfc3339 };

/** Order definitions so every base comes before the images extending it; add bases whose lock is missing or stale. */
async function planLocks(files: readonly string[]): Promise<ImageDefinition[]> {
  const defs = await Promise.all(files.map((f) => loadDefinition(f)));
  const explicit = new Set(defs.map((d) => d.file));
  const ordered: ImageDefinition[] = [];
  const seen = new Set<string>();
  const visit = async (def: ImageDefinition): Promise<void> => {
    if (seen.has(def.file)) return;
    seen.add(def.file);
    if (def.base) await visit(def.base);
    // A base is locked too when it was named, when its lock is missing or stale, or when its own base
    // is being relocked in this run (its lock records the base lock's digest).
    const baseRelocked = def.base !== undefined && ordered.some((o) => o.file === def.base!.file);
    if (explicit.has(def.file) || baseRelocked || !(await lockIsFresh(def))) ordered.push(def);
  };
  for (const d of defs) await visit(d);
  return ordered;
}

async function lockIsFresh(def: ImageDefinition): Promise<boolean> {
  try {
    const path = lockPathFor(def.file);
    const { lock } = await readLock(path);
    await assertFresh(def, lock, path);
    return true;
  } catch (e) {
    if (isDistillError(e, 'LOCK_NOT_FOUND') || isDistillError(e, 'LOCK_STALE') || isDistillError(e, 'LOCK_INVALID')) return false;
    throw e;
  }
}

/**
 * Lock each definition (bases first; a base whose lock is missing or stale is locked too). Every lock
 * is computed before any file is written, so a failure leaves every lockfile as it was.
 */
export async function lockImages(files: readonly string[], opts: LockOptions): Promise<LockResult[]> {
  const defs = await planLocks(files);
  const session = new LockSession(opts);
  const computed: { def: ImageDefinition; path: string; lock: Lockfile; text: string }[] = [];
  for (const def of defs) {
    const lock = await session.lockOne(def);
    const text = serializeLock(lock);
    const path = lockPathFor(def.file);
    session.pending.set(path, { lock, sha256: sha256Hex(text) });
    computed.push({ def, path, lock, text });
  }
  const results: LockResult[] = [];
  for (const c of computed) {
    const old = await readFile(c.path, 'utf8').catch(() => undefined);
    const changed = old !== c.text;
    if (changed && !opts.dryRun) {
      await writeFileAtomic(c.path, c.text, { code: 'OUTPUT_IO', hint: 'the lockfile could not be written; check that its directory is writable and has free space' });
    }
    if (!opts.dryRun) opts.onProgress?.({ type: 'lock-written', path: c.path, changed });
    results.push({ definition: c.def, path: c.path, lock: c.lock, changed });
  }
  return results;
}
