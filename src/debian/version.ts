// Debian package versions: parse, compare and test `[epoch:]upstream[-revision]` exactly as dpkg does.
// Follows deb-version(7) and dpkg's lib/dpkg/parsehelp.c (parseversion) and lib/dpkg/version.c
// (verrevcmp, dpkg_version_compare, dpkg_version_relate).
//
// Versions come from package indexes, which are attacker-controlled: every failure is a DistillError
// (VERSION_INVALID), and every loop advances through its input, so time is linear in its length.
//
// Parsing is dpkg's *strict* parser (the one dpkg-deb and `dpkg -i` apply to a .deb's control file):
// what dpkg merely warns about when reading its own status file (upstream not starting with a digit,
// characters outside the allowed sets) is an error here, since dpkg would refuse to install such a
// package anyway. Two deliberate differences, both stricter: dpkg reads the epoch with strtol(), so it
// also accepts a sign or leading whitespace there ("+1:0", "\n1:0"); here the epoch is ASCII digits only.

import { DistillError } from '../errors.js';

export interface DebVersion {
  /** 0 when absent; at most 2147483647 (dpkg's INT_MAX limit). */
  epoch: number;
  /** Never empty; may contain ':' (only when an epoch was given) and '-' (only when a revision was). */
  upstream: string;
  /** '' when absent. An absent revision compares equal to "0" (and to "00", …), as in dpkg. */
  revision: string;
}

export type VersionOp = '<<' | '<=' | '=' | '>=' | '>>';

const EPOCH_MAX = 2147483647;
const MESSAGE_TEXT_MAX = 120;

/** Blanks as dpkg's c_isblank(): what parseversion() trims from both ends. */
function isBlank(c: number): boolean {
  return c === 0x20 || c === 0x09;
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
/** ASCII letters only, as dpkg's c_isalpha(). */
function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}

/** The offending text, quoted and escaped, cut short so a hostile index cannot bloat messages. */
export function quoteForMessage(s: string): string {
  const cut = s.length > MESSAGE_TEXT_MAX ? `${s.slice(0, MESSAGE_TEXT_MAX)}…` : s;
  return JSON.stringify(cut);
}

function invalid(s: string, what: string | undefined, reason: string): DistillError {
  return new DistillError(
    'VERSION_INVALID',
    `${what ?? 'version'}: ${quoteForMessage(s)} is not a valid Debian version: ${reason}`,
    {
      hint: 'Debian versions are [epoch:]upstream[-revision] (deb-version(7)); if this came from a package index, the index is malformed',
    },
  );
}

/**
 * Parses `[epoch:]upstream[-revision]` with dpkg's parseversion() rules: leading and trailing blanks are
 * trimmed; the epoch ends at the first ':' and the revision starts after the last '-'.
 * Throws VERSION_INVALID (naming `what`) for anything dpkg rejects or warns about.
 */
export function parseVersion(s: string, what?: string): DebVersion {
  if (typeof s !== 'string') {
    throw new DistillError('VERSION_INVALID', `${what ?? 'version'}: expected a string, got ${typeof s}`);
  }
  let start = 0;
  let end = s.length;
  while (start < end && isBlank(s.charCodeAt(start))) start++;
  while (end > start && isBlank(s.charCodeAt(end - 1))) end--;
  if (start === end) throw invalid(s, what, 'version string is empty');
  for (let i = start; i < end; i++) {
    if (isBlank(s.charCodeAt(i))) throw invalid(s, what, 'version string has embedded spaces');
  }
  let rest = s.slice(start, end);

  let epoch = 0;
  const colon = rest.indexOf(':');
  if (colon >= 0) {
    const e = rest.slice(0, colon);
    if (e === '') throw invalid(s, what, 'epoch in version is empty');
    for (let i = 0; i < e.length; i++) {
      if (!isDigit(e.charCodeAt(i))) {
        throw invalid(s, what, e.charCodeAt(0) === 0x2d ? 'epoch in version is negative' : 'epoch in version is not number');
      }
    }
    // Compare as digit strings first: Number() of a long run would lose precision, not overflow safely.
    const digits = e.replace(/^0+(?=\d)/, '');
    if (digits.length > 10 || Number(digits) > EPOCH_MAX) throw invalid(s, what, 'epoch in version is too big');
    epoch = Number(digits);
    rest = rest.slice(colon + 1);
    if (rest === '') throw invalid(s, what, 'nothing after colon in version number');
  }

  let upstream = rest;
  let revision = '';
  const hyphen = rest.lastIndexOf('-');
  if (hyphen >= 0) {
    upstream = rest.slice(0, hyphen);
    revision = rest.slice(hyphen + 1);
    if (revision === '') throw invalid(s, what, 'revision number is empty');
  }
  if (upstream === '') throw invalid(s, what, 'version number is empty');
  if (!isDigit(upstream.charCodeAt(0))) throw invalid(s, what, 'version number does not start with digit');
  for (let i = 1; i < upstream.length; i++) {
    const c = upstream.charCodeAt(i);
    // '.', '+', '~', '-', ':'
    if (!isDigit(c) && !isAlpha(c) && c !== 0x2e && c !== 0x2b && c !== 0x7e && c !== 0x2d && c !== 0x3a) {
      throw invalid(s, what, `invalid character ${JSON.stringify(upstream[i])} in version number`);
    }
  }
  for (let i = 0; i < revision.length; i++) {
    const c = revision.charCodeAt(i);
    if (!isDigit(c) && !isAlpha(c) && c !== 0x2e && c !== 0x2b && c !== 0x7e) {
      throw invalid(s, what, `invalid character ${JSON.stringify(revision[i])} in revision number`);
    }
  }
  return { epoch, upstream, revision };
}

/** Whether `s` parses (see parseVersion). */
export function isValidVersion(s: string): boolean {
  try {
    parseVersion(s);
    return true;
  } catch {
    return false;
  }
}

/**
 * Back to text, as dpkg prints it (versiondescribe with vdew_nonambig): the epoch only when it is not 0
 * or when the upstream part contains ':' (else the text would re-parse differently); the revision only
 * when not empty.
 */
export function formatVersion(v: DebVersion): string {
  const epoch = v.epoch !== 0 || v.upstream.includes(':') ? `${v.epoch}:` : '';
  return `${epoch}${v.upstream}${v.revision === '' ? '' : `-${v.revision}`}`;
}

/** dpkg's order(): the weight of a non-digit character; 0 for a digit or the end (NaN). */
function order(c: number): number {
  if (Number.isNaN(c) || isDigit(c)) return 0;
  if (isAlpha(c)) return c;
  if (c === 0x7e) return -1; // '~' sorts before everything, even the end
  return c + 256;
}

/**
 * dpkg's verrevcmp(): alternating non-digit runs (compared char by char with order()) and digit runs
 * (compared numerically, as digit strings: no length limit, no floating point).
 */
function verrevcmp(a: string, b: string): number {
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    // Non-digit prefix. charCodeAt past the end is NaN, which order() maps to 0 like dpkg's '\0'.
    while ((i < a.length && !isDigit(a.charCodeAt(i))) || (j < b.length && !isDigit(b.charCodeAt(j)))) {
      const ac = order(a.charCodeAt(i));
      const bc = order(b.charCodeAt(j));
      if (ac !== bc) return ac - bc;
      // Equal weights on a non-digit means both sides are on the same character: both advance.
      i++;
      j++;
    }
    while (a.charCodeAt(i) === 0x30) i++;
    while (b.charCodeAt(j) === 0x30) j++;
    let firstDiff = 0;
    while (isDigit(a.charCodeAt(i)) && isDigit(b.charCodeAt(j))) {
      if (firstDiff === 0) firstDiff = a.charCodeAt(i) - b.charCodeAt(j);
      i++;
      j++;
    }
    if (isDigit(a.charCodeAt(i))) return 1;
    if (isDigit(b.charCodeAt(j))) return -1;
    if (firstDiff !== 0) return firstDiff;
  }
  return 0;
}

function asVersion(v: string | DebVersion, what: string): DebVersion {
  return typeof v === 'string' ? parseVersion(v, what) : v;
}

/**
 * dpkg_version_compare(): epoch numerically, then upstream, then revision with verrevcmp.
 * Returns -1, 0 or 1. Strings are parsed with parseVersion (VERSION_INVALID if invalid); DebVersion
 * objects are compared as given. "1.0" equals "1.0-0" and "0:1.0" (an absent revision is "", which
 * verrevcmp treats like "0").
 */
export function compareVersions(a: string | DebVersion, b: string | DebVersion): number {
  const va = asVersion(a, 'first version compared');
  const vb = asVersion(b, 'second version compared');
  if (va.epoch !== vb.epoch) return va.epoch > vb.epoch ? 1 : -1;
  const r = verrevcmp(va.upstream, vb.upstream) || verrevcmp(va.revision, vb.revision);
  return Math.sign(r);
}

/** dpkg_version_relate(): whether `candidate op version` holds (e.g. "2.36-9" >= "2.34"). */
export function versionSatisfies(candidate: string | DebVersion, op: VersionOp, version: string | DebVersion): boolean {
  const r = compareVersions(candidate, version);
  switch (op) {
    case '<<':
      return r < 0;
    case '<=':
      return r <= 0;
    case '=':
      return r === 0;
    case '>=':
      return r >= 0;
    case '>>':
      return r > 0;
    default:
      throw new DistillError('VERSION_INVALID', `unknown version relation ${quoteForMessage(String(op))}`, {
        hint: 'use one of <<, <=, =, >=, >>',
      });
  }
}
