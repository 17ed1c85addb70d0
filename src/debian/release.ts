// The Release file of a Debian archive suite (https://wiki.debian.org/DebianRepository/Format):
// verified from InRelease by OpenPGP, then read for its date, validity window and the SHA256 of each
// index. Only the signed text is ever parsed. Valid-Until is honoured as apt does
// (Acquire::Check-Valid-Until); `allowExpired` is apt's check-valid-until=no, for snapshot mirrors.
import { DistillError } from '../errors.js';
import { sha256Hex } from '../digest.js';
import { parseDeb822 } from './deb822.js';
import { verifyCleartext, type Keyring } from './openpgp/index.js';

export interface ReleaseIndexEntry {
  path: string; // relative to dists/<suite>/
  size: number;
  sha256: string;
}

export interface Release {
  suite: string;
  codename: string | undefined;
  date: Date;
  dateText: string;
  validUntil: Date | undefined;
  architectures: string[];
  components: string[];
  /** "No-Support-for-Architecture-all: Packages": arch:all packages are also in every binary-<arch> index. */
  archAllInArchIndexes: boolean;
  files: Map<string, ReleaseIndexEntry>;
  /** sha256 and size of the InRelease bytes as fetched, recorded in the lock. */
  inRelease: { sha256: string; size: number };
  /** Fingerprints of the keys whose signatures verified, sorted. */
  signers: string[];
  /** The first good signer, for messages: "user id (fingerprint)". */
  signer: string;
}

export interface ReadReleaseOptions {
  keyring: Keyring;
  allowExpired: boolean;
  now: Date;
  /** Names the file in errors, e.g. "debian trixie InRelease". */
  what: string;
}

export function readInRelease(bytes: Uint8Array, opts: ReadReleaseOptions): Release {
  const verified = verifyCleartext(bytes, opts.keyring, opts.what, { now: opts.now });
  const signer = verified.signers[0];
  const paragraphs = parseDeb822(verified.signedText, opts.what);
  const p = paragraphs[0];
  if (p === undefined || paragraphs.length !== 1) {
    throw new DistillError('RELEASE_INVALID', `${opts.what}: expected one Release paragraph, found ${paragraphs.length}`);
  }
  const dateText = p.get('Date');
  const date = dateText === undefined ? undefined : parseReleaseDate(dateText);
  if (dateText === undefined || date === undefined) {
    throw new DistillError('RELEASE_INVALID', `${opts.what}: missing or unreadable Date field (${JSON.stringify(dateText)})`);
  }
  const vuText = p.get('Valid-Until');
  const validUntil = vuText === undefined ? undefined : parseReleaseDate(vuText);
  if (vuText !== undefined && validUntil === undefined) {
    throw new DistillError('RELEASE_INVALID', `${opts.what}: unreadable Valid-Until ${JSON.stringify(vuText)}`);
  }
  if (validUntil !== undefined && !opts.allowExpired && opts.now.getTime() > validUntil.getTime()) {
    throw new DistillError('RELEASE_EXPIRED', `${opts.what} expired on ${validUntil.toISOString()} (Valid-Until)`, {
      hint: 'the mirror is stale or this is a snapshot: use a fresh mirror, or pass --allow-expired for a snapshot you trust',
    });
  }
  // A Release dated in the future is what apt calls "not valid yet"; tolerate a little clock skew.
  if (!opts.allowExpired && date.getTime() - opts.now.getTime() > 24 * 3600 * 1000) {
    throw new DistillError('RELEASE_INVALID', `${opts.what} is dated ${date.toISOString()}, in the future`, {
      hint: "check this machine's clock",
    });
  }
  const files = new Map<string, ReleaseIndexEntry>();
  const sums = p.get('SHA256');
  if (sums === undefined) {
    throw new DistillError('RELEASE_INVALID', `${opts.what}: no SHA256 section (MD5/SHA1-only archives are refused)`);
  }
  for (const line of sums.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const m = /^([0-9a-f]{64})\s+(\d+)\s+(\S+)$/.exec(t);
    if (!m) throw new DistillError('RELEASE_INVALID', `${opts.what}: malformed SHA256 line ${JSON.stringify(t)}`);
    files.set(m[3]!, { path: m[3]!, size: Number(m[2]), sha256: m[1]! });
  }
  const suite = p.get('Suite') ?? p.get('Codename');
  if (suite === undefined) throw new DistillError('RELEASE_INVALID', `${opts.what}: neither Suite nor Codename`);
  return {
    suite,
    codename: p.get('Codename'),
    date,
    dateText,
    validUntil,
    architectures: (p.get('Architectures') ?? '').split(/\s+/).filter(Boolean),
    components: (p.get('Components') ?? '').split(/\s+/).filter(Boolean),
    archAllInArchIndexes: /(^|\s)Packages(\s|$)/.test(p.get('No-Support-for-Architecture-all') ?? ''),
    files,
    inRelease: { sha256: sha256Hex(bytes), size: bytes.length },
    signers: [...new Set(verified.signers.map((x) => x.fingerprint))].sort(),
    signer: signer === undefined ? '' : `${signer.userId} (${signer.fingerprint})`,
  };
}

const MONTHS: Record<string, number> = {
  jan: 0, feb: 1, mar: 2, apr: 3, may: 4, jun: 5, jul: 6, aug: 7, sep: 8, oct: 9, nov: 10, dec: 11,
};

/**
 * RFC 2822 dates as the archive writes them ("Sat, 12 Sep 2026 07:55:41 UTC"); apt also accepts
 * numeric zones and "GMT". Returns undefined rather than guessing.
 */
export function parseReleaseDate(s: string): Date | undefined {
  const m = /^(?:[A-Za-z]{3},\s+)?(\d{1,2})\s+([A-Za-z]{3})\s+(\d{4})\s+(\d{2}):(\d{2}):(\d{2})\s+(UTC|GMT|Z|[+-]\d{4})$/.exec(s.trim());
  if (!m) return undefined;
  const month = MONTHS[m[2]!.toLowerCase()];
  if (month === undefined) return undefined;
  let t = Date.UTC(Number(m[3]), month, Number(m[1]), Number(m[4]), Number(m[5]), Number(m[6]));
  const zone = m[7]!;
  if (zone.startsWith('+') || zone.startsWith('-')) {
    const sign = zone.startsWith('-') ? -1 : 1;
    t -= sign * (Number(zone.slice(1, 3)) * 60 + Number(zone.slice(3, 5))) * 60_000;
  }
  return new Date(t);
}
