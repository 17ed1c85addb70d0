// The distroless package database: /var/lib/dpkg/status.d/<package> (the package's control paragraph,
// deb-control(5)) and /var/lib/dpkg/status.d/<package>.md5sums (deb-md5sums(5), as the .deb ships it).
// There is no /var/lib/dpkg/status: dpkg itself never reads status.d, scanners do.
//
// Who reads it and what they expect (read from their sources):
//  - Trivy (pkg/fanal/analyzer/pkg/dpkg): every file directly in var/lib/dpkg/status.d/ (older versions
//    skip *.md5sums); a paragraph counts as installed unless its Status has "deinstall" or "purge", so
//    an absent Status is installed.
//  - syft/grype (syft/pkg/cataloger/debian): status.d/* as dpkg status files, skipping only a Status
//    containing "deinstall"; a package's files come from the glob status.d/<Package>.* — so the
//    md5sums file must be named after the Package field exactly, with no ":<arch>".
//  - Clair (claircore dpkg DistrolessScanner): every file in status.d; "Status is not considered here.
//    It seems to not be populated in the distroless scheme".
// Decisions:
//  - No Status field is added: distroless adds none, every reader above treats its absence as
//    installed, and the file then stays byte-identical to the control file inside the .deb (what
//    distroless and rules_distroless copy). A control file that itself carries Status or
//    Config-Version (dpkg-database fields, never in a real .deb) is refused, so a package cannot hide
//    itself from scanners with "Status: deinstall ok config-files".
//  - File names are the plain Package name, Multi-Arch: same included (dpkg's own info/ uses
//    "<pkg>:<arch>" for those, but syft's glob would then miss the md5sums). One image holds one
//    architecture, so names cannot collide; if they do, that is GENERATE_FAILED.
import { DistillError, messageOf } from '../../errors.js';
import { parseDeb822 } from '../../debian/deb822.js';
import type { TreeEntry } from '../tree.js';
import { fileEntry } from './entries.js';

export const STATUS_DIR = '/var/lib/dpkg/status.d';

export interface InstalledPackageRecord {
  /** The `control` file from the .deb's control archive. */
  control: string;
  /** The `md5sums` file from the .deb's control archive, if it has one (some packages have none). */
  md5sums?: Buffer | string;
}

export interface StatusDFile {
  /** Absolute path in the image. */
  path: string;
  content: Buffer;
}

/** Debian Policy §5.6.1: lower-case letters, digits, '+', '-', '.'; at least two; alphanumeric first. */
const PACKAGE_NAME = /^[a-z0-9][a-z0-9+.-]+$/;
/** Fields of dpkg's database, never of a .deb's control file. */
const DATABASE_FIELDS = ['Status', 'Config-Version'];
/** deb-md5sums(5): 32 lower-case hex digits, two spaces, a path. */
const MD5SUMS_LINE = /^[0-9a-f]{32}  [^\n]+$/;

function fail(message: string, hint: string, cause?: unknown): never {
  throw new DistillError('GENERATE_FAILED', message, cause === undefined ? { hint } : { hint, cause });
}

/**
 * The status.d paragraph for a package: its control file, unchanged except that blank lines around it
 * are dropped and it ends in exactly one '\n'. GENERATE_FAILED unless it is exactly one paragraph with a
 * valid Package, a Version and an Architecture, and no Status or Config-Version.
 */
export function statusParagraph(controlText: string): string {
  return checkedParagraph(controlText).text;
}

function checkedParagraph(controlText: string): { text: string; name: string } {
  const text = controlText.replace(/^(?:[ \t]*\r?\n)+/, '').replace(/(?:\r?\n[ \t]*)+$/, '') + '\n';
  let paragraphs;
  try {
    paragraphs = parseDeb822(text, 'control');
  } catch (e) {
    fail(`a control file does not parse: ${messageOf(e)}`, 'The package\'s control file is malformed; check the .deb.', e);
  }
  const p = paragraphs[0];
  if (paragraphs.length !== 1 || p === undefined) {
    fail(`a control file has ${paragraphs.length} paragraphs, not 1`, 'A .deb\'s control file is a single paragraph.');
  }
  const name = p.get('Package') ?? '';
  if (!PACKAGE_NAME.test(name)) fail(`a control file has Package ${JSON.stringify(name)}, not a valid package name`, 'Package names are lower-case letters, digits, "+", "-" and "." (Debian Policy 5.6.1).');
  for (const field of ['Version', 'Architecture']) {
    if (!p.get(field)) fail(`the control file of ${name} has no ${field}`, 'Scanners need Package, Version and Architecture.');
  }
  for (const field of DATABASE_FIELDS) {
    if (p.has(field)) fail(`the control file of ${name} has a ${field} field, which belongs to dpkg's database`, 'Remove the field; scanners would read it as the installation state.');
  }
  return { text, name };
}

/** The status.d file name for a package: its Package field, as distroless names it. */
export function statusDName(packageName: string): string {
  if (!PACKAGE_NAME.test(packageName)) fail(`${JSON.stringify(packageName)} is not a valid package name`, 'Package names are lower-case letters, digits, "+", "-" and "." (Debian Policy 5.6.1).');
  return packageName;
}

/** Check an md5sums file's lines (deb-md5sums(5)) and return its bytes unchanged. */
export function checkMd5sums(md5sums: Buffer | string, packageName: string): Buffer {
  const bytes = typeof md5sums === 'string' ? Buffer.from(md5sums, 'utf8') : md5sums;
  const text = bytes.toString('utf8');
  if (text.length === 0) return bytes;
  if (!text.endsWith('\n')) fail(`the md5sums file of ${packageName} does not end in a newline`, 'Check the .deb\'s control archive.');
  const lines = text.slice(0, -1).split('\n');
  const bad = lines.findIndex((l) => !MD5SUMS_LINE.test(l));
  if (bad >= 0) fail(`line ${bad + 1} of the md5sums file of ${packageName} is not "<md5>  <path>"`, 'Check the .deb\'s control archive.');
  return bytes;
}

/**
 * The md5sums lines whose file the image really ships, in their original order and bytes: scanners
 * (syft's file lists, `md5sum -c`) take every line as a file present in the image, and distill drops
 * documentation, the certificate files of ca-certificates, and everything but the borrowed paths of a
 * borrowed package. `shipped` gets the path as written (relative, no leading "/").
 */
export function shippedMd5sums(md5sums: Buffer | string, packageName: string, shipped: (path: string) => boolean): Buffer {
  const bytes = checkMd5sums(md5sums, packageName);
  const text = bytes.toString('utf8');
  if (text.length === 0) return bytes;
  const kept = text.slice(0, -1).split('\n').filter((l) => shipped(l.slice(34).replace(/^\.?\/+/, '')));
  return Buffer.from(kept.length ? kept.join('\n') + '\n' : '', 'utf8');
}

/**
 * Every status.d file for the packages of an image: `<Package>` and, when the .deb has one,
 * `<Package>.md5sums`, sorted by path. GENERATE_FAILED when two packages have the same name.
 */
export function statusDFiles(packages: readonly InstalledPackageRecord[], shipped?: (path: string) => boolean): StatusDFile[] {
  const out: StatusDFile[] = [];
  const seen = new Set<string>();
  for (const pkg of packages) {
    const { text: paragraph, name } = checkedParagraph(pkg.control);
    if (seen.has(name)) fail(`package ${name} is given twice`, 'An image holds one version of each package, for one architecture.');
    seen.add(name);
    out.push({ path: `${STATUS_DIR}/${name}`, content: Buffer.from(paragraph, 'utf8') });
    if (pkg.md5sums !== undefined) out.push({ path: `${STATUS_DIR}/${name}.md5sums`, content: shipped ? shippedMd5sums(pkg.md5sums, name, shipped) : checkMd5sums(pkg.md5sums, name) });
  }
  return out.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
}

/**
 * The status.d generator: statusDFiles() for the packages of one layer, as tree entries; `shipped`
 * says which md5sums paths the image really has (this layer or below).
 */
export function statusEntries(packages: readonly InstalledPackageRecord[], mtime: number, shipped?: (path: string) => boolean): TreeEntry[] {
  return statusDFiles(packages, shipped).map((f) => fileEntry(f.path, f.content, 'distill:dpkg-status', mtime));
}
