// Debian changelogs (debian/changelog, installed as /usr/share/doc/<pkg>/changelog.Debian.gz), read as
// deb-changelog(5) and dpkg's Dpkg::Changelog::Debian parser read them: newest entry first, each a
// header line `source (version) distribution(s); urgency=…`, change lines indented by two spaces, and
// a trailer ` -- Maintainer <email>  date`. What is wanted is a range, as apt-listchanges and
// `dpkg-parsechangelog --since` take it: the entries newer than the version an image had, up to the
// version it gets; reading stops at the first entry at or below the old version.
//
// ATTACKER-CONTROLLED INPUT: the bytes come from inside a .deb. Lines are split in bytes and decoded
// one at a time (invalid UTF-8 is read as Latin-1 and noted, as old changelogs were written in it);
// every line, entry and the number of entries is capped; a line that is neither header, change,
// trailer nor blank is noted and skipped. Nothing here throws on content: the result says whether it
// is complete and what was wrong.
import { compareVersions, isValidVersion } from './version.js';

export interface ChangelogEntry {
  source: string;
  version: string;
  distributions: string[];
  urgency?: string;
  /** The trailer's `Name <email>`. */
  maintainer?: string;
  /** The trailer's date, as written (RFC 2822). */
  date?: string;
  /** The change lines, without the two leading spaces, joined by '\n'. */
  changes: string;
  /** CVE identifiers the entry names, upper-case, sorted by year then number. */
  cves: string[];
  /** Debian bug numbers closed (deb-changelog(5)'s Closes: pattern), ascending. */
  bugs: number[];
}

export interface ChangelogLimits {
  /** Entries kept; default 500. */
  maxEntries?: number;
  /** Bytes of one entry's change text; default 256 KiB. */
  maxEntryBytes?: number;
  /** Bytes of one line; default 16 KiB (longer lines are cut). */
  maxLineBytes?: number;
}

export interface ChangelogRangeResult {
  entries: ChangelogEntry[];
  /** Union of the entries' CVE identifiers, sorted. */
  cves: string[];
  /** False when a limit cut the range short or the text ended before reaching the old version. */
  complete: boolean;
  /** True when an entry at or below the old version was reached (the range is bounded). */
  reachedOld: boolean;
  warnings: string[];
}

const HEADER = /^(\w[-+0-9a-z.]*) \(([^() \t]+)\)((?:\s+[-+0-9a-z./]+)+);(.*?)\s*$/i;
const TRAILER = /^ -- (.*?<[^>]*>)\s*(.*?)\s*$/;
const CVE = /\bCVE-(\d{4})-(\d{4,8})\b/gi;
// deb-changelog(5) / Debian policy 4.4: /closes:\s*(?:bug)?\#?\s?\d+(?:,\s*(?:bug)?\#?\s?\d+)*/i
const CLOSES = /closes:\s*(?:bug)?#?\s?\d+(?:,\s*(?:bug)?#?\s?\d+)*/gi;
const WARNINGS_MAX = 20;

export function cvesIn(text: string): string[] {
  const found = new Map<string, [number, number]>();
  for (const m of text.matchAll(CVE)) found.set(`CVE-${m[1]}-${m[2]}`, [Number(m[1]), Number(m[2])]);
  return sortCves(found);
}

function sortCves(found: Map<string, [number, number]>): string[] {
  return [...found.entries()].sort((a, b) => a[1][0] - b[1][0] || a[1][1] - b[1][1]).map(([k]) => k);
}

export function sortCveIds(ids: Iterable<string>): string[] {
  const m = new Map<string, [number, number]>();
  for (const id of ids) {
    const x = /^CVE-(\d+)-(\d+)$/.exec(id);
    if (x) m.set(id, [Number(x[1]), Number(x[2])]);
  }
  return sortCves(m);
}

function bugsIn(text: string): number[] {
  const out = new Set<number>();
  for (const m of text.matchAll(CLOSES)) for (const n of m[0].matchAll(/\d+/g)) out.add(Number(n[0]));
  return [...out].filter((n) => Number.isSafeInteger(n)).sort((a, b) => a - b);
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/**
 * Reads the entries of a changelog in (after, upTo] from a byte stream pushed in chunks. `push`
 * answers false once the range is complete (the caller may stop reading); `end` finishes the result.
 */
export class ChangelogRangeReader {
  private readonly maxEntries: number;
  private readonly maxEntryBytes: number;
  private readonly maxLineBytes: number;
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private lineCut = false;
  private current: { entry: Omit<ChangelogEntry, 'changes' | 'cves' | 'bugs'>; lines: string[]; bytes: number; keep: boolean } | undefined;
  private done = false;
  private readonly result: ChangelogRangeResult = { entries: [], cves: [], complete: true, reachedOld: false, warnings: [] };
  private latin1Noted = false;
  private lineNo = 0;

  constructor(
    private readonly after: string,
    private readonly upTo: string,
    private readonly what: string,
    limits: ChangelogLimits = {},
  ) {
    this.maxEntries = limits.maxEntries ?? 500;
    this.maxEntryBytes = limits.maxEntryBytes ?? 256 * 1024;
    this.maxLineBytes = limits.maxLineBytes ?? 16 * 1024;
  }

  get finished(): boolean {
    return this.done;
  }

  push(chunk: Buffer): boolean {
    let start = 0;
    while (!this.done) {
      const nl = chunk.indexOf(0x0a, start);
      const piece = chunk.subarray(start, nl < 0 ? chunk.length : nl);
      this.addPiece(piece);
      if (nl < 0) break;
      this.flushLine();
      start = nl + 1;
    }
    return !this.done;
  }

  end(): ChangelogRangeResult {
    if (!this.done && (this.pendingBytes > 0 || this.lineCut)) this.flushLine();
    if (!this.done) {
      this.closeEntry();
      // The text ended without reaching the old version: every entry in it is newer, but older ones
      // may be missing (a changelog trimmed by the packager, or the old version is not in it).
      if (!this.result.reachedOld && this.result.entries.length > 0) this.note(`${this.what}: the changelog ends before version ${this.after}`);
    }
    this.done = true;
    const all = new Map<string, [number, number]>();
    for (const e of this.result.entries) for (const c of e.cves) all.set(c, c.split('-').slice(1).map(Number) as [number, number]);
    this.result.cves = sortCves(all);
    return this.result;
  }

  /** Stop early, marking the result incomplete (a byte cap was hit by the caller). */
  truncate(reason: string): void {
    if (this.done) return;
    // What was read of the current line counts (a bomb is often one endless line).
    if (this.pendingBytes > 0 || this.lineCut) this.flushLine();
    if (this.done) return;
    this.closeEntry();
    this.result.complete = false;
    this.note(`${this.what}: ${reason}`);
    this.done = true;
  }

  private addPiece(piece: Buffer): void {
    if (piece.length === 0) return;
    const room = this.maxLineBytes - this.pendingBytes;
    if (room <= 0) {
      this.lineCut = true;
      return;
    }
    const kept = piece.length > room ? piece.subarray(0, room) : piece;
    if (kept.length < piece.length) this.lineCut = true;
    this.pending.push(Buffer.from(kept));
    this.pendingBytes += kept.length;
  }

  private flushLine(): void {
    const bytes = this.pending.length === 1 ? this.pending[0]! : Buffer.concat(this.pending);
    this.pending = [];
    this.pendingBytes = 0;
    this.lineNo++;
    if (this.lineCut) {
      this.lineCut = false;
      this.note(`${this.what}: line ${this.lineNo} is longer than ${this.maxLineBytes} bytes (cut)`);
    }
    let text: string;
    try {
      text = UTF8.decode(bytes);
    } catch {
      text = bytes.toString('latin1');
      if (!this.latin1Noted) {
        this.latin1Noted = true;
        this.note(`${this.what}: line ${this.lineNo} is not valid UTF-8 (read as Latin-1)`);
      }
    }
    this.line(text.replace(/\r$/, ''));
  }

  private line(text: string): void {
    const h = HEADER.exec(text);
    if (h) {
      this.closeEntry();
      if (this.done) return;
      this.openEntry(h[1]!, h[2]!, h[3]!, h[4]!);
      return;
    }
    // dpkg stops parsing where the old-format part of a changelog begins.
    if (/^Old Changelog:\s*$/i.test(text) || /^(?:Local variables:|vim:|# )/i.test(text)) {
      if (/^Old Changelog/i.test(text)) {
        this.closeEntry();
        if (!this.done) this.finishAtEnd();
      }
      return;
    }
    const t = TRAILER.exec(text);
    if (t && this.current) {
      this.current.entry.maintainer = t[1]!;
      if (t[2]) this.current.entry.date = t[2];
      this.closeEntry();
      return;
    }
    if (text.trim() === '') {
      if (this.current?.keep && this.current.lines.length > 0) this.addLine('');
      return;
    }
    if (/^\s/.test(text) && this.current) {
      this.addLine(text.replace(/^ {2}/, ''));
      return;
    }
    this.note(`${this.what}: line ${this.lineNo} is not part of a changelog entry (skipped)`);
  }

  private openEntry(source: string, version: string, dists: string, rest: string): void {
    if (!isValidVersion(version)) {
      this.note(`${this.what}: line ${this.lineNo}: entry version ${JSON.stringify(version.slice(0, 80))} is not a Debian version (skipped)`);
      this.current = { entry: { source, version, distributions: [] }, lines: [], bytes: 0, keep: false };
      return;
    }
    if (compareVersions(version, this.after) <= 0) {
      this.result.reachedOld = true;
      this.done = true;
      return;
    }
    const keep = compareVersions(version, this.upTo) <= 0;
    if (!keep) this.note(`${this.what}: entry ${version} is newer than ${this.upTo} (skipped)`);
    if (keep && this.result.entries.length >= this.maxEntries) {
      this.result.complete = false;
      this.note(`${this.what}: more than ${this.maxEntries} entries in the range (the rest are not shown)`);
      this.done = true;
      return;
    }
    const urgency = /(?:^|[\s,])urgency=([^\s,]+)/i.exec(rest)?.[1];
    this.current = {
      entry: { source, version, distributions: dists.trim().split(/\s+/), ...(urgency ? { urgency: urgency.toLowerCase() } : {}) },
      lines: [],
      bytes: 0,
      keep,
    };
  }

  private addLine(text: string): void {
    const c = this.current!;
    if (!c.keep) return;
    const size = Buffer.byteLength(text) + 1;
    if (c.bytes + size > this.maxEntryBytes) {
      if (c.bytes <= this.maxEntryBytes) {
        c.lines.push('[…]');
        this.result.complete = false;
        this.note(`${this.what}: entry ${c.entry.version} is longer than ${this.maxEntryBytes} bytes (cut)`);
      }
      c.bytes = this.maxEntryBytes + 1;
      return;
    }
    c.bytes += size;
    c.lines.push(text);
  }

  private closeEntry(): void {
    const c = this.current;
    this.current = undefined;
    if (!c?.keep) return;
    while (c.lines.length > 0 && c.lines[c.lines.length - 1] === '') c.lines.pop();
    const changes = c.lines.join('\n');
    this.result.entries.push({ ...c.entry, changes, cves: cvesIn(changes), bugs: bugsIn(changes) });
  }

  private finishAtEnd(): void {
    this.done = true;
    if (!this.result.reachedOld && this.result.entries.length > 0) this.note(`${this.what}: the changelog ends before version ${this.after}`);
  }

  private note(message: string): void {
    if (this.result.warnings.length < WARNINGS_MAX) this.result.warnings.push(message);
    else if (this.result.warnings.length === WARNINGS_MAX) this.result.warnings.push('(further warnings omitted)');
  }
}

/** The entries of `text` in (after, upTo]. */
export function changelogRange(text: string | Buffer, after: string, upTo: string, what = 'changelog', limits: ChangelogLimits = {}): ChangelogRangeResult {
  const r = new ChangelogRangeReader(after, upTo, what, limits);
  r.push(typeof text === 'string' ? Buffer.from(text, 'utf8') : text);
  return r.end();
}
