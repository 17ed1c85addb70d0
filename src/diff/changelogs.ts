// The Debian changelog entries an upgrade brings, read from the new .deb: the .deb comes from the
// content-addressed cache, or is fetched and verified against the lock's size and sha256 exactly as a
// build fetches it; then it is streamed through the hardened reader (rootfs/deb.ts) and only
// usr/share/doc/<pkg>/ is looked at:
// - changelog.Debian.gz: the source package's entries, ranged by the source versions;
// - changelog.Debian.<arch>.gz: binNMU entries (Debian policy 12.7: binary-only uploads keep their
//   entry there), ranged by the binary versions;
// - changelog.gz for native packages (no Debian revision), which have no changelog.Debian.gz;
// - usr/share/doc/<pkg> as a symlink to another package's doc dir (libgcc-s1 -> gcc-14-base,
//   libpython3.13-stdlib -> libpython3.13-minimal): that package's .deb, from the same side, is read.
//
// ATTACKER-CONTROLLED INPUT: the gzip members are capped in compressed and decompressed size and the
// text is parsed by a reader that never throws on content. Nothing here fails the diff: a .deb that
// cannot be fetched or read gives a changelog report with the error's code, and the diff goes on.
import { posix } from 'node:path';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { fetchBlob } from '../cas/fetch.js';
import type { ContentStore } from '../cas/store.js';
import { ChangelogRangeReader, sortCveIds, type ChangelogEntry, type ChangelogRangeResult } from '../debian/changelog.js';
import { resolveMirror, type MirrorInputs } from '../debian/mirrors.js';
import { compareVersions, parseVersion } from '../debian/version.js';
import { isDistillError, messageOf } from '../errors.js';
import type { OnProgress } from '../events.js';
import type { LockedPackage } from '../lock/lockfile.js';
import { readDeb } from '../rootfs/deb.js';

/** A package of one side, with the suite its archive had in the lock that pinned it. */
export interface SidePackage {
  pkg: LockedPackage;
  suite: string;
}

export interface ChangelogReport {
  /**
   * ok: read in full; partial: read, but a limit, a malformed part or a missing file cut it short;
   * missing: the .deb has no changelog; unavailable: the .deb could not be had or read; skipped: not asked for.
   */
  status: 'ok' | 'partial' | 'missing' | 'unavailable' | 'skipped';
  /** The files read, as package:path. */
  files: string[];
  /** Newest first. */
  entries: ChangelogEntry[];
  cves: string[];
  warnings: string[];
  error?: { code: string; message: string };
}

export interface ChangelogLimitsOptions {
  /** Largest compressed changelog read; default 8 MiB. */
  maxCompressedBytes?: number;
  /** Decompressed bytes read per changelog; default 32 MiB. */
  maxDecompressedBytes?: number;
  maxEntries?: number;
  maxEntryBytes?: number;
}

export interface ChangelogContext {
  store: ContentStore;
  mirrors: MirrorInputs;
  limits?: ChangelogLimitsOptions;
  onProgress?: OnProgress;
}

export interface UpgradeVersions {
  oldVersion: string;
  newVersion: string;
  oldSourceVersion: string;
  newSourceVersion: string;
}

const DOC = 'usr/share/doc';

/** Reads changelogs with a memo: the same .deb and range (same package in several images) is read once. */
export class ChangelogReader {
  private readonly memo = new Map<string, Promise<ChangelogReport>>();

  constructor(private readonly ctx: ChangelogContext) {}

  read(target: SidePackage, versions: UpgradeVersions, side: ReadonlyMap<string, SidePackage>): Promise<ChangelogReport> {
    const key = [target.pkg.sha256, versions.oldVersion, versions.newVersion, versions.oldSourceVersion, versions.newSourceVersion].join('\0');
    let p = this.memo.get(key);
    if (p === undefined) {
      p = this.readUncached(target, versions, side);
      this.memo.set(key, p);
    }
    return p;
  }

  private async readUncached(target: SidePackage, v: UpgradeVersions, side: ReadonlyMap<string, SidePackage>): Promise<ChangelogReport> {
    const report: ChangelogReport = { status: 'ok', files: [], entries: [], cves: [], warnings: [] };
    try {
      // Checked before any byte is read: a version the reader could not compare is the lock's fault.
      for (const x of [v.oldVersion, v.newVersion, v.oldSourceVersion, v.newSourceVersion]) parseVersion(x, `${target.pkg.name} version`);
      let scan = await this.scan(target, target.pkg.name, v);
      if (scan.redirect !== undefined) {
        const other = side.get(scan.redirect);
        if (other === undefined) {
          report.status = 'missing';
          report.warnings.push(`${target.pkg.name}: ${DOC}/${target.pkg.name} points to ${scan.redirect}'s documentation, and ${scan.redirect} is not in the image`);
          return report;
        }
        scan = await this.scan(other, scan.redirect, v);
        if (scan.redirect !== undefined) {
          report.status = 'missing';
          report.warnings.push(`${other.pkg.name}: its documentation is a symlink again (${scan.redirect}); not followed further`);
          return report;
        }
      }
      report.files = scan.files;
      report.warnings.push(...scan.warnings);
      if (scan.results.length === 0) {
        report.status = 'missing';
        report.warnings.push(`${scan.pkg}: no changelog.Debian.gz in ${DOC}/${scan.doc}/`);
        return report;
      }
      const entries = scan.results.flatMap((r) => r.entries);
      entries.sort((a, b) => compareVersions(b.version, a.version));
      report.entries = entries;
      report.cves = sortCveIds(entries.flatMap((e) => e.cves));
      if (scan.results.some((r) => !r.complete) || scan.partial) report.status = 'partial';
      return report;
    } catch (e) {
      report.status = 'unavailable';
      report.error = { code: isDistillError(e) ? e.code : 'INTERNAL', message: messageOf(e) };
      return report;
    }
  }

  /** The changelogs in one .deb's doc dir `doc`, or where that dir redirects. */
  private async scan(sp: SidePackage, doc: string, v: UpgradeVersions): Promise<{ pkg: string; doc: string; files: string[]; results: ChangelogRangeResult[]; warnings: string[]; partial: boolean; redirect?: string }> {
    const p = sp.pkg;
    const expected = { size: p.size, sha256: p.sha256, what: p.filename };
    if (!(await this.ctx.store.verify(expected))) {
      const mirror = resolveMirror(p.archive, sp.suite, undefined, this.ctx.mirrors).url;
      await fetchBlob(this.ctx.store, expected, `${mirror}/${p.filename}`, this.ctx.onProgress ? { onProgress: this.ctx.onProgress } : {});
    }
    const dir = `${DOC}/${doc}`;
    const native = parseVersion(v.newSourceVersion).revision === '';
    const limits = this.ctx.limits ?? {};
    const maxCompressed = limits.maxCompressedBytes ?? 8 * 1024 * 1024;
    const out = { pkg: p.name, doc, files: [] as string[], results: [] as ChangelogRangeResult[], warnings: [] as string[], partial: false } as {
      pkg: string; doc: string; files: string[]; results: ChangelogRangeResult[]; warnings: string[]; partial: boolean; redirect?: string;
    };
    let linkTarget: string | undefined;
    let nativeLog: { file: string; result: ChangelogRangeResult } | undefined;
    let debianLog = false;
    await readDeb(this.ctx.store.open(expected), p.filename, {
      entry: async (e, body) => {
        if (e.path === dir && e.type === 'symlink') {
          linkTarget = e.linkTarget;
          return;
        }
        if (!e.path.startsWith(`${dir}/`)) return;
        const name = e.path.slice(dir.length + 1);
        const binnmu = /^changelog\.Debian\.[a-z0-9-]+\.gz$/.test(name);
        const wanted = name === 'changelog.Debian.gz' || binnmu || (native && name === 'changelog.gz');
        if (!wanted) return;
        if (e.type === 'symlink') {
          // A changelog that is a symlink into another package's doc dir: read that package's.
          const t = docDirOf(posix.join(posix.dirname(`/${e.path}`), e.linkTarget ?? ''));
          if (t !== undefined && t !== doc) linkTarget = `/${DOC}/${t}`;
          else out.warnings.push(`${p.name}: ${e.path} is a symlink to ${JSON.stringify(e.linkTarget)} (not followed)`);
          return;
        }
        if (e.type !== 'file' || body === undefined) return;
        if (e.size > maxCompressed) {
          out.partial = true;
          out.warnings.push(`${p.name}: ${e.path} is ${e.size} bytes compressed (the limit is ${maxCompressed}; not read)`);
          return;
        }
        const [after, upTo] = binnmu ? [v.oldVersion, v.newVersion] : [v.oldSourceVersion, v.newSourceVersion];
        const result = await readGzipRange(body, after, upTo, `${p.name}:${e.path}`, limits);
        if (name === 'changelog.gz') {
          nativeLog = { file: `${p.name}:${e.path}`, result };
          return;
        }
        if (name === 'changelog.Debian.gz') debianLog = true;
        out.files.push(`${p.name}:${e.path}`);
        out.results.push(result);
        out.warnings.push(...result.warnings);
      },
    }, { size: p.size });
    if (linkTarget !== undefined && out.results.length === 0 && nativeLog === undefined) {
      const t = docDirOf(posix.isAbsolute(linkTarget) ? linkTarget : posix.join(`/${DOC}`, linkTarget));
      if (t !== undefined && t !== doc) out.redirect = t;
      else out.warnings.push(`${p.name}: ${dir} is a symlink to ${JSON.stringify(linkTarget)}, not to another package's documentation`);
    }
    if (!debianLog && nativeLog !== undefined) {
      out.files.push(nativeLog.file);
      out.results.push(nativeLog.result);
      out.warnings.push(...nativeLog.result.warnings);
    }
    out.files.sort();
    return out;
  }
}

/** The package doc dir an absolute path lies in: /usr/share/doc/<X>[/…] → X. */
function docDirOf(abs: string): string | undefined {
  const m = /^\/usr\/share\/doc\/([^/]+)(?:\/.*)?$/.exec(posix.normalize(abs));
  return m && m[1] !== '.' && m[1] !== '..' ? m[1] : undefined;
}

/** Gunzips `body` (capped) into a range reader, stopping as soon as the range is complete. */
async function readGzipRange(body: Readable, after: string, upTo: string, what: string, limits: ChangelogLimitsOptions): Promise<ChangelogRangeResult> {
  const maxOut = limits.maxDecompressedBytes ?? 32 * 1024 * 1024;
  const reader = new ChangelogRangeReader(after, upTo, what, {
    ...(limits.maxEntries !== undefined ? { maxEntries: limits.maxEntries } : {}),
    ...(limits.maxEntryBytes !== undefined ? { maxEntryBytes: limits.maxEntryBytes } : {}),
  });
  const gunzip = createGunzip();
  // The body is the archive's: it is unpiped, never destroyed, when reading stops early.
  const onBodyError = (e: Error): void => void gunzip.destroy(e);
  body.on('error', onBodyError);
  body.pipe(gunzip);
  let seen = 0;
  try {
    for await (const chunk of gunzip) {
      const c = chunk as Buffer;
      seen += c.length;
      if (seen > maxOut) {
        reader.push(c.subarray(0, c.length - (seen - maxOut)));
        reader.truncate(`more than ${maxOut} bytes decompressed (the rest is not read)`);
        break;
      }
      if (!reader.push(c)) break;
    }
  } catch (e) {
    // Corrupt gzip data: what was read before it counts, the rest does not.
    if (!reader.finished) reader.truncate(`not a valid gzip stream (${messageOf(e)})`);
  } finally {
    body.unpipe(gunzip);
    body.off('error', onBodyError);
    gunzip.destroy();
  }
  return reader.end();
}
