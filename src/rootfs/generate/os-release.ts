// /usr/lib/os-release (os-release(5), freedesktop.org): base-files' own file, unchanged unless asked.
//
// Decision: distroless replaces Debian's file with its own (PRETTY_NAME="Distroless", its project URLs,
// no VERSION_CODENAME). distill keeps the one base-files ships, byte for byte, because
//  - it is accurate for the exact point release (VERSION_ID="13", VERSION_CODENAME=trixie,
//    DEBIAN_VERSION_FULL=13.x), and updates itself with every base-files update;
//  - scanners choose the vulnerability database from it: grype and syft read ID and VERSION_ID
//    (Trivy reads /etc/debian_version for Debian, also from base-files), and several tools special-case
//    PRETTY_NAME="Distroless" as an OS of its own, which has misrouted package lookups (e.g. to a
//    "distroless" purl namespace) — an image that says exactly what Debian says needs no such case;
//  - /etc/os-release is already a relative symlink to ../usr/lib/os-release in base-files.
// Branding, if wanted, goes in fields os-release(5) reserves for it — VARIANT="distill",
// VARIANT_ID=distill, or HOME_URL — through `fields`; the fields that identify the distribution
// (ID, ID_LIKE, VERSION_ID, VERSION_CODENAME) cannot be overridden.
import { DistillError } from '../../errors.js';

export interface OsReleaseOptions {
  /**
   * Fields to set: an existing `KEY=` line is replaced where it stands, a new key is appended, in the
   * order given. Values are written double-quoted with os-release(5)'s backslash escapes.
   */
  fields?: Record<string, string>;
}

/** Fields that scanners use to pick a vulnerability database: never changed. */
const IDENTITY = new Set(['ID', 'ID_LIKE', 'VERSION_ID', 'VERSION_CODENAME']);
const KEY = /^[A-Z][A-Z0-9_]*$/;
const ASSIGNMENT = /^([A-Za-z_][A-Za-z0-9_]*)=(.*)$/;

function fail(message: string, hint: string): never {
  throw new DistillError('GENERATE_FAILED', message, { hint });
}

/** os-release(5) quoting: double quotes, with `\`, `"`, `$` and backtick escaped. */
function quote(value: string): string {
  return `"${value.replace(/[\\"$`]/g, (c) => '\\' + c)}"`;
}

/** Undo quote() (and single quotes, and bare values) — enough to read base-files' file. */
function unquote(raw: string): string {
  const v = raw.trim();
  if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) return v.slice(1, -1).replace(/\\([\\"$`])/g, '$1');
  if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) return v.slice(1, -1);
  return v;
}

/** The assignments of an os-release file (comments and blank lines skipped; the last one wins). */
export function parseOsRelease(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = ASSIGNMENT.exec(line.replace(/\r$/, ''));
    if (m) out.set(m[1]!, unquote(m[2]!));
  }
  return out;
}

/**
 * The contents of /usr/lib/os-release: `baseFilesOsRelease` (the file from the base-files .deb) with
 * `opts.fields` applied; without fields, the input unchanged. GENERATE_FAILED if the input has no ID,
 * or a field name is not os-release(5)-style, is an identity field, or a value has control characters.
 */
export function osRelease(baseFilesOsRelease: string, opts: OsReleaseOptions = {}): string {
  const current = parseOsRelease(baseFilesOsRelease);
  if (!current.get('ID')) {
    fail('the os-release file from base-files has no ID field', 'Check that the base-files package is Debian\'s own; distill keeps its /usr/lib/os-release.');
  }
  const fields = Object.entries(opts.fields ?? {});
  if (fields.length === 0) return baseFilesOsRelease;

  const pending = new Map<string, string>();
  for (const [key, value] of fields) {
    if (!KEY.test(key)) fail(`os-release field name ${JSON.stringify(key)} is not upper-case letters, digits and "_"`, 'Use a name such as VARIANT, VARIANT_ID or HOME_URL.');
    if (IDENTITY.has(key)) fail(`os-release field ${key} identifies the distribution and is kept as Debian ships it`, 'Scanners pick their vulnerability data from it; use VARIANT or VARIANT_ID to name the image.');
    if (typeof value !== 'string' || /[\x00-\x1f\x7f]/.test(value)) fail(`os-release field ${key} has a line break or control character`, 'Give a single-line value.');
    pending.set(key, quote(value));
  }

  const lines = baseFilesOsRelease.split('\n');
  if (lines[lines.length - 1] === '') lines.pop(); // the final newline; one is always written back
  const replaced = new Set<string>();
  const out: string[] = [];
  for (const line of lines) {
    const m = ASSIGNMENT.exec(line.replace(/\r$/, ''));
    const key = m?.[1];
    if (key !== undefined && pending.has(key)) {
      if (replaced.has(key)) continue; // a repeated assignment: the first one now carries the value
      replaced.add(key);
      out.push(`${key}=${pending.get(key)!}`);
    } else {
      out.push(line);
    }
  }
  for (const [key, value] of pending) if (!replaced.has(key)) out.push(`${key}=${value}`);
  return out.join('\n') + '\n';
}
