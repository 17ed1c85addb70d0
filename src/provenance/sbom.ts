// An SPDX 2.3 JSON SBOM for one image and platform, made for vulnerability scanners: one package for
// the image (the document DESCRIBES it), which CONTAINS the operating system (from the image's own
// os-release), which CONTAINS one package per Debian package present in the image — read from
// /var/lib/dpkg/status.d in the image's own layers, as scanners read it — with the .deb's sha256 and
// pool path from the locks, a purl naming distribution and source package, the supplier from
// Maintainer, the copyright file's text and its declared licence, and DEPENDS_ON relationships.
// Everything comes from the inputs (no clock, no random UUID) and is sorted: the same inputs give the
// same bytes.
//
// What the readers need (checked in test/provenance/sbom.test.ts by reading the document as they do):
//  - syft/grype (syft/format/common/spdxhelpers): the distribution from the first purl with a
//    `distro` qualifier ("debian-13" → ID debian, VERSION_ID 13) and each package's source from the
//    `upstream` qualifier ("<name>[@<version>]"); without them grype knows no distro and matches no
//    CVE keyed by source package (glibc, openssl, zlib, xz-utils, python3.13).
//  - Trivy (pkg/sbom/spdx): the OS is the package whose SPDXID starts "SPDXRef-OperatingSystem"
//    (name = family, version = release); its OS packages are those it has relationships to; a
//    package's source is sourceInfo "built package from: <name> <version>" — exactly that form.
//
// Decisions (SPDX 2.3 §6, §7, §10, §11; purl spec "Characters and encoding"):
//  - downloadLocation must be NONE, NOASSERTION, a URL or a VCS location (§7.7). The lock records a
//    pool path but, by design, no mirror URL: downloadLocation is NOASSERTION, the pool path is in the
//    comment, the .deb's base name in packageFileName; sourceInfo is Trivy's source form.
//  - documentNamespace must be a URI unique to the document and without '#' (§6.5): it is
//    https://distill.dev/spdx/<image>/<manifest digest hex>/<16 hex of the sha256 of the document
//    without its namespace> — derived from the digest, and different whenever the content differs
//    (another variant sharing a manifest, another distill version), never random.
//  - purl versions and qualifier values are percent-encoded as the current purl spec says: everything
//    outside [A-Za-z0-9.-_~] is encoded except ':' (which must NOT be), so an epoch stays "1:2.3", '+'
//    becomes %2B and the '@' in upstream %40. Qualifiers are sorted by key (arch, distro, upstream).
//    `upstream` is given only when the source's name or version differs from the binary's.
//  - licenseDeclared is the SPDX expression of a machine-readable (DEP-5) debian/copyright
//    (licenses.ts), licenseConcluded stays NOASSERTION (nobody here concluded anything), and
//    NOASSERTION is declared only where the copyright file is free text or absent (licenseComments
//    says which). LicenseRefs are defined once in hasExtractedLicensingInfos. copyrightText is the whole
//    copyright file, as distroless does; a package without one in the image (its doc directory is a
//    link in the .deb, which distill does not keep) gets the file of a present package built from the
//    same source name and version — the one the link pointed to, since a Debian copyright file belongs
//    to the source — with a comment.
//  - The image's supplier and an "Organization:" creator come from `organization` when given.
//  - A package in status.d but in none of the locks given is still listed (it is in the image), with
//    no checksum and a comment saying so; a lock entry for a package absent from the image is
//    ignored; a status.d version or architecture that contradicts the lock entry is GENERATE_FAILED.
//  - Layer contents are untrusted: entries are only read from the tar stream, by the hardened tar
//    reader (tar/reader.ts; nothing touches the host filesystem), symlinks and hardlinks are never
//    followed (a linked copyright file counts as absent: NOASSERTION; a linked os-release as absent:
//    no OS package, no distro qualifier),
//    status.d, copyright and os-release files over 1 MiB are skipped, paths with '..' are ignored,
//    os-release ID/VERSION_ID must match os-release(5)'s character set, and whiteouts (.wh.<name>,
//    .wh..wh..opq) apply as in the OCI image spec.
//  - The bytes are prettyStableJson (sorted keys, 2-space indent, trailing newline): readable and
//    diffable; the same object in canonical form is one canonicalJson() call away.
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import { createGunzip } from 'node:zlib';
import { createUnzstd } from '../layer/zstd.js';
import type { Readable } from 'node:stream';
import { parseDeb822, type Paragraph } from '../debian/deb822.js';
import { type TarEntryType, readTar } from '../tar/reader.js';
import { isSha256Hex, sha256Hex } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { canonicalJson, prettyStableJson } from '../json.js';
import { parseOsRelease } from '../rootfs/os-release.js';
import { declaredLicense, unifyExtracted, type DeclaredLicense } from './licenses.js';

export interface SbomInput {
  /** The image's name, e.g. 'python3'. */
  image: string;
  /** 'latest', 'nonroot', … */
  variant: string;
  platform: { os: string; architecture: string; variant?: string };
  /** sha256:… of the image manifest: the SBOM describes this. */
  manifestDigest: string;
  /** RFC 3339: the build timestamp, not the wall clock (fractions of a second are dropped). */
  created: string;
  /** Paths of the image's layers (.tar.gz, or plain tar), bottom first. */
  layers: string[];
  /** From the locks: the .deb's sha256 and pool path per package. */
  packages: { name: string; version: string; architecture: string; sha256: string; filename: string; source?: string }[];
  /** distill's version: creationInfo.creators gets "Tool: distill-<v>". */
  toolVersion: string;
  /**
   * The organisation that publishes the image: the image package's supplier and an
   * "Organization: …" creator of the document (else NOASSERTION and the tool alone).
   */
  organization?: string;
}

/** How many Debian packages have a declared licence (the rest are NOASSERTION). */
export interface LicenseCoverage {
  packages: number;
  declared: number;
  /** Names of the packages whose licence could not be determined. */
  undetermined: string[];
}

export interface SpdxChecksum {
  algorithm: string;
  checksumValue: string;
}

export interface SpdxExternalRef {
  referenceCategory: string;
  referenceType: string;
  referenceLocator: string;
  comment?: string;
}

export interface SpdxPackage {
  SPDXID: string;
  name: string;
  versionInfo?: string;
  supplier?: string;
  downloadLocation: string;
  filesAnalyzed?: boolean;
  checksums?: SpdxChecksum[];
  externalRefs?: SpdxExternalRef[];
  licenseConcluded?: string;
  licenseDeclared?: string;
  licenseComments?: string;
  copyrightText?: string;
  primaryPackagePurpose?: string;
  packageFileName?: string;
  sourceInfo?: string;
  summary?: string;
  description?: string;
  homepage?: string;
  comment?: string;
}

export interface SpdxRelationship {
  spdxElementId: string;
  relationshipType: string;
  relatedSpdxElement: string;
}

export interface SpdxDocument {
  spdxVersion: 'SPDX-2.3';
  dataLicense: 'CC0-1.0';
  SPDXID: 'SPDXRef-DOCUMENT';
  name: string;
  documentNamespace: string;
  creationInfo: { created: string; creators: string[] };
  packages: SpdxPackage[];
  relationships: SpdxRelationship[];
  hasExtractedLicensingInfos?: { licenseId: string; extractedText: string; name: string }[];
}

export const IMAGE_SPDXID = 'SPDXRef-Image';
/**
 * Trivy tells the operating system from the other packages by this SPDXID prefix
 * ("SPDXRef-OperatingSystem-…", trivy pkg/sbom/spdx), others by primaryPackagePurpose OPERATING-SYSTEM.
 */
export const OS_SPDXID_PREFIX = 'SPDXRef-OperatingSystem-';
/** Trivy's sourceInfo form for a binary package: "built package from: <source> <source version>". */
export const SOURCE_INFO_PREFIX = 'built package from: ';
const NAMESPACE_BASE = 'https://distill.dev/spdx/';
const NOASSERTION = 'NOASSERTION';
/** status.d paragraphs and copyright files larger than this are not read. */
export const SBOM_FILE_CAP = 1024 * 1024;

const STATUS_RE = /^var\/lib\/dpkg\/status\.d\/([^/]+)$/;
const COPYRIGHT_RE = /^usr\/share\/doc\/([^/]+)\/copyright$/;
/** os-release(5): /etc/os-release, else /usr/lib/os-release (base-files makes the first a link to the second). */
const OS_RELEASE = ['etc/os-release', 'usr/lib/os-release'];
/** Entries whose replacement by a non-directory hides tracked files under them. */
const ANCESTOR_RE = /^(?:etc|usr\/lib|var|var\/lib|var\/lib\/dpkg|var\/lib\/dpkg\/status\.d|usr|usr\/share|usr\/share\/doc|usr\/share\/doc\/[^/]+)$/;

function fail(message: string, cause?: unknown): never {
  throw new DistillError('GENERATE_FAILED', `SBOM: ${message}`, {
    ...(cause !== undefined ? { cause } : {}),
    hint: 'build the image again from its locks and pass the same locks and layers to the SBOM',
  });
}

// ——— reading the layers ———

/** A tracked path's state after a layer: a regular file's bytes, or something that cannot be read. */
type Found = { kind: 'file'; data: Buffer } | { kind: 'unreadable'; why: string };

export interface LayerChanges {
  set: Map<string, Found>;
  /** Paths removed with everything under them (whiteouts, non-directories over directories). */
  removed: string[];
  /** Directories whose lower contents go (opaque whiteouts). */
  opaque: string[];
}

/** A tar entry name as an image path ("usr/bin/x"), or undefined when it climbs out ('..'). */
function imagePath(name: string): string | undefined {
  const parts = name.split('/').filter((c) => c !== '' && c !== '.');
  if (parts.some((c) => c === '..')) return undefined;
  return parts.join('/');
}

const tracked = (p: string): boolean => (STATUS_RE.test(p) && !p.endsWith('.md5sums')) || COPYRIGHT_RE.test(p) || OS_RELEASE.includes(p);

async function openLayer(path: string): Promise<Readable> {
  const fh = await open(path, 'r');
  let magic: Buffer;
  try {
    magic = Buffer.alloc(4);
    await fh.read(magic, 0, 4, 0);
  } finally {
    await fh.close();
  }
  const raw = createReadStream(path);
  if (magic[0] === 0x1f && magic[1] === 0x8b) {
    const gunzip = createGunzip();
    raw.on('error', (e) => gunzip.destroy(e));
    return raw.pipe(gunzip);
  }
  if (magic.readUInt32LE(0) === 0xfd2fb528) {
    // build --compression zstd: read with the same pinned zstd (window capped; the blob may be hostile).
    const unzstd = createUnzstd();
    raw.on('error', (e) => unzstd.destroy(e));
    return raw.pipe(unzstd);
  }
  return raw; // an uncompressed tar
}

/** tar-stream's names for the types (what the SBOM's comments have always said). */
const TAR_TYPE_NAMES: Partial<Record<TarEntryType, string>> = { dir: 'directory', hardlink: 'link', 'char-device': 'character-device', contiguous: 'contiguous-file' };

/**
 * The tracked files and whiteouts of one layer file, read by the one hardened tar reader. The paths
 * are the build's own blobs in the content store, whose digests and diffIds the layer cache checks on
 * every hit; the reader still treats the tar as hostile (structure, sizes, caps).
 */
async function readLayer(path: string): Promise<LayerChanges> {
  const changes: LayerChanges = { set: new Map(), removed: [], opaque: [] };
  const malformed = (message: string, cause?: unknown): DistillError => {
    try {
      fail(message, cause);
    } catch (e) {
      return e as DistillError;
    }
  };
  await readTar(await openLayer(path), { what: `layer ${path}`, malformed }, async (entry, body) => {
    const p = imagePath(entry.name);
    const base = p?.slice(p.lastIndexOf('/') + 1);
    if (p === undefined || p === '' || base === undefined) return;
    const dir = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    if (base === '.wh..wh..opq') {
      changes.opaque.push(dir);
    } else if (base.startsWith('.wh.')) {
      changes.removed.push(dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`);
    } else {
      if (entry.type !== 'dir' && ANCESTOR_RE.test(p)) changes.removed.push(p);
      if (tracked(p)) {
        const size = entry.size;
        if (entry.type !== 'file') {
          changes.set.set(p, { kind: 'unreadable', why: `a ${TAR_TYPE_NAMES[entry.type] ?? entry.type} entry (links are not followed)` });
        } else if (size > SBOM_FILE_CAP) {
          changes.set.set(p, { kind: 'unreadable', why: `${size} bytes, over the ${SBOM_FILE_CAP}-byte cap` });
        } else {
          const chunks: Buffer[] = [];
          let n = 0;
          for await (const c of body()) {
            n += (c as Buffer).length;
            if (n <= SBOM_FILE_CAP) chunks.push(c as Buffer);
          }
          changes.set.set(p, n <= SBOM_FILE_CAP ? { kind: 'file', data: Buffer.concat(chunks) } : { kind: 'unreadable', why: 'over the size cap' });
        }
      }
    }
  });
  return changes;
}

/**
 * What readLayer would read back from a layer, recorded from the entries as the layer writer adds them,
 * so that a fresh build need not decompress and parse its own layers again (a layer taken from the
 * layer cache is still read from its file). It applies readLayer's rules to the same names, types and
 * bytes, so both give the same SBOM (test/provenance/sbom.test.ts checks this on a real build).
 */
export class LayerChangesRecorder {
  readonly changes: LayerChanges = { set: new Map(), removed: [], opaque: [] };

  /** Whether add() needs this file's bytes (a tracked file within the cap); all others are added without. */
  wantsBody(path: string, type: 'file' | 'dir' | 'symlink' | 'hardlink', size: number): boolean {
    const p = imagePath(path);
    return p !== undefined && type === 'file' && tracked(p) && size <= SBOM_FILE_CAP;
  }

  /** One entry as written to the layer, in order; `data` is the body when wantsBody() said so. */
  add(path: string, type: 'file' | 'dir' | 'symlink' | 'hardlink', size: number, data?: Buffer): void {
    const p = imagePath(path);
    const base = p?.slice(p.lastIndexOf('/') + 1);
    if (p === undefined || p === '' || base === undefined) return;
    const dir = p.includes('/') ? p.slice(0, p.lastIndexOf('/')) : '';
    const changes = this.changes;
    if (base === '.wh..wh..opq') changes.opaque.push(dir);
    else if (base.startsWith('.wh.')) changes.removed.push(dir === '' ? base.slice(4) : `${dir}/${base.slice(4)}`);
    else {
      if (type !== 'dir' && ANCESTOR_RE.test(p)) changes.removed.push(p);
      if (!tracked(p)) return;
      // tar-stream's names for the types, as readLayer reports them.
      const tarType = type === 'dir' ? 'directory' : type === 'hardlink' ? 'link' : type;
      if (type !== 'file') changes.set.set(p, { kind: 'unreadable', why: `a ${tarType} entry (links are not followed)` });
      else if (size > SBOM_FILE_CAP) changes.set.set(p, { kind: 'unreadable', why: `${size} bytes, over the ${SBOM_FILE_CAP}-byte cap` });
      else if (data === undefined || data.length !== size) throw new Error(`internal: the SBOM recorder needs the ${size} bytes of ${p}`);
      else changes.set.set(p, { kind: 'file', data });
    }
  }
}

/** What the layer writer recorded for a layer file (see LayerChangesRecorder). */
export type RecordedLayers = ReadonlyMap<string, LayerChanges>;

/** The tracked files of the image: each layer's changes applied over the ones below, as a runtime would. */
/** What the SBOM reads from an image's layers; scan once and pass it to several buildSbom calls. */
export type ScannedLayers = Map<string, Found>;

/** `recorded`: changes the layer writer recorded, by layer path; other layers are read from their files. */
export function scanLayers(layers: readonly string[], recorded?: RecordedLayers): Promise<ScannedLayers> {
  return imageFiles(layers, recorded);
}

async function imageFiles(layers: readonly string[], recorded?: RecordedLayers): Promise<Map<string, Found>> {
  const state = new Map<string, Found>();
  for (const layer of layers) {
    let changes: LayerChanges;
    try {
      changes = recorded?.get(layer) ?? (await readLayer(layer));
    } catch (e) {
      if (e instanceof DistillError) throw e;
      fail(`layer ${layer} cannot be read: ${messageOf(e)}`, e);
    }
    for (const key of [...state.keys()]) {
      const gone = changes.removed.some((r) => key === r || key.startsWith(`${r}/`))
        || changes.opaque.some((d) => d === '' || key.startsWith(`${d}/`));
      if (gone) state.delete(key);
    }
    for (const [k, v] of changes.set) state.set(k, v);
  }
  return state;
}

// ——— status.d ———

interface Installed {
  name: string;
  version: string;
  architecture: string;
  paragraph: Paragraph;
}

/** The packages status.d records: one paragraph per file; a file that does not parse is not a record. */
function installedPackages(files: ReadonlyMap<string, Found>): Map<string, Installed> {
  const out = new Map<string, Installed>();
  for (const path of [...files.keys()].sort()) {
    const f = files.get(path)!;
    if (!STATUS_RE.test(path) || f.kind !== 'file') continue;
    let p: Paragraph | undefined;
    try {
      p = parseDeb822(f.data.toString('utf8'), path)[0];
    } catch {
      continue;
    }
    const name = p?.get('Package')?.trim();
    if (!p || !name) continue;
    // As dpkg-query and syft read status.d: a Status naming deinstall or purge is not installed.
    if (/\b(?:deinstall|purge)\b/.test(p.get('Status') ?? '')) continue;
    if (out.has(name)) continue; // first in path order: deterministic
    out.set(name, { name, version: (p.get('Version') ?? '').trim(), architecture: (p.get('Architecture') ?? '').trim(), paragraph: p });
  }
  return out;
}

/** Names in a relationship field, per comma group its alternatives in order (versions, qualifiers dropped). */
function relationNames(field: string | undefined): string[][] {
  if (field === undefined) return [];
  return field.split(',').map((group) =>
    group.split('|').map((alt) => /^\s*([A-Za-z0-9][A-Za-z0-9+.-]*)/.exec(alt)?.[1]?.toLowerCase()).filter((n): n is string => n !== undefined),
  ).filter((g) => g.length > 0);
}

/** The source package (Policy §5.6.1: Source is "name" or "name (version)"; absent = the binary's own). */
function sourcePackage(pkg: Installed): { name: string; version: string } {
  const m = /^\s*([a-z0-9][a-z0-9+.-]*)(?:\s*\(\s*([^()\s]+)\s*\))?\s*$/.exec(pkg.paragraph.get('Source') ?? '');
  return m ? { name: m[1]!, version: m[2] ?? pkg.version } : { name: pkg.name, version: pkg.version };
}

function sourceOf(pkg: Installed): string {
  const s = sourcePackage(pkg);
  return `${s.name} ${s.version}`;
}

function commentOf(poolPath: string | undefined, copyrightFrom: string | undefined): { comment: string } | undefined {
  const parts = [
    poolPath !== undefined ? `retrieved as ${poolPath} from a Debian archive` : 'recorded in the image\'s status.d but in none of the locks given: no .deb checksum',
    ...(copyrightFrom !== undefined ? [`copyrightText is the copyright file of ${copyrightFrom}, built from the same source package: the image has none of this package's own`] : []),
  ];
  return parts.length > 0 ? { comment: parts.join('; ') } : undefined;
}

/** ID and VERSION_ID of the image's os-release (a regular file only: links are not followed). */
function osReleaseOf(files: ReadonlyMap<string, Found>): { id: string; versionId: string; prettyName?: string; path: string } | undefined {
  for (const path of OS_RELEASE) {
    const f = files.get(path);
    if (f?.kind !== 'file') continue;
    const fields = parseOsRelease(f.data.toString('utf8'));
    const id = fields.get('ID')?.trim().toLowerCase();
    const versionId = fields.get('VERSION_ID')?.trim();
    // os-release(5): ID is [a-z0-9._-]; VERSION_ID likewise (plus no spaces). Anything else is not trusted.
    if (!id || !/^[a-z0-9._-]+$/.test(id) || !versionId || !/^[A-Za-z0-9._~-]+$/.test(versionId)) return undefined;
    const pretty = oneLine(fields.get('PRETTY_NAME') ?? '');
    return { id, versionId, ...(pretty ? { prettyName: pretty } : {}), path: `/${path}` };
  }
  return undefined;
}

// ——— SPDX fields ———

/** purl percent-encoding: all but [A-Za-z0-9.-_~] and ':' (purl spec, "Characters and encoding"). */
export function purlEncode(s: string): string {
  let out = '';
  for (const b of Buffer.from(s, 'utf8')) {
    const c = String.fromCharCode(b);
    out += /[A-Za-z0-9._~:-]/.test(c) ? c : `%${b.toString(16).toUpperCase().padStart(2, '0')}`;
  }
  return out;
}

/**
 * A Debian package's purl (purl-spec types "deb"): qualifiers sorted by key, values percent-encoded.
 * `distro` is "<ID>-<VERSION_ID>" from os-release (syft and grype take the distribution from it);
 * `upstream` is the source package, "<name>[@<version>]", given only when it differs from the binary's
 * name or version (syft reads it as the dpkg Source and Source version; grype matches CVEs on it).
 */
export function debPurl(name: string, version: string, arch: string, opts: { distro?: string; upstream?: { name: string; version?: string }; namespace?: string } = {}): string {
  const q = [`arch=${purlEncode(arch)}`];
  if (opts.distro) q.push(`distro=${purlEncode(opts.distro)}`);
  if (opts.upstream) q.push(`upstream=${purlEncode(opts.upstream.version ? `${opts.upstream.name}@${opts.upstream.version}` : opts.upstream.name)}`);
  return `pkg:deb/${purlEncode(opts.namespace ?? 'debian')}/${purlEncode(name.toLowerCase())}@${purlEncode(version)}?${q.join('&')}`;
}

export function ociPurl(image: string, digest: string, arch: string): string {
  return `pkg:oci/${purlEncode(image.toLowerCase())}@${purlEncode(digest)}?arch=${purlEncode(arch)}`;
}

function oneLine(s: string): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, ' ').replace(/\s+/g, ' ').trim();
}

const ORGANIZATION = /\b(?:team|maintainers?|group|project|developers|packagers|list|debian|ubuntu|community|foundation|consortium)\b/i;

/** Maintainer "Name <email>" → "Organization: Name (email)" or "Person: Name (email)" (SPDX §7.5). */
export function supplierOf(maintainer: string | undefined): string {
  if (maintainer === undefined) return NOASSERTION;
  const m = /^(.*?)\s*<([^<>]*)>\s*$/.exec(oneLine(maintainer));
  const name = oneLine((m ? m[1]! : oneLine(maintainer)).replace(/[()]/g, ''));
  const email = m ? oneLine(m[2]!.replace(/[()]/g, '')) : '';
  if (name === '' && email === '') return NOASSERTION;
  const org = ORGANIZATION.test(name) || /@lists\.|^team\+|@tracker\.debian\.org$/i.test(email);
  return `${org ? 'Organization' : 'Person'}: ${name || email}${email ? ` (${email})` : ''}`;
}

function normaliseCreated(created: string): string {
  const ms = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:\d\d)$/i.test(created) ? Date.parse(created) : NaN;
  if (Number.isNaN(ms)) fail(`created ${JSON.stringify(created)} is not an RFC 3339 timestamp`);
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace('.000Z', 'Z');
}

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

function httpUrl(s: string | undefined): string | undefined {
  const v = s?.trim();
  if (!v || /\s/.test(v) || !/^https?:\/\//i.test(v)) return undefined;
  try {
    new URL(v);
    return v;
  } catch {
    return undefined;
  }
}

/** Sanitised SPDX ids (SPDXRef-[A-Za-z0-9.-]+) for package names, collisions numbered in name order. */
function packageIds(names: readonly string[]): Map<string, string> {
  const out = new Map<string, string>();
  const used = new Set<string>();
  for (const name of [...names].sort(cmp)) {
    const base = `SPDXRef-Package-deb-${name.replace(/[^A-Za-z0-9.-]/g, '-')}`;
    let id = base;
    for (let i = 2; used.has(id); i++) id = `${base}-${i}`;
    used.add(id);
    out.set(name, id);
  }
  return out;
}

// ——— the document ———

export async function buildSbom(input: SbomInput, scanned?: ScannedLayers): Promise<{ json: string; document: SpdxDocument; licenseCoverage: LicenseCoverage }> {
  const digestMatch = /^sha256:([0-9a-f]{64})$/.exec(input.manifestDigest);
  if (!digestMatch) fail(`manifest digest ${JSON.stringify(input.manifestDigest)} is not sha256:<64 hex>`);
  const digestHex = digestMatch[1]!;
  if (!input.image || !input.variant || !input.platform.os || !input.platform.architecture) fail('image, variant and platform are required');
  if (!input.toolVersion || /\s/.test(input.toolVersion)) fail(`tool version ${JSON.stringify(input.toolVersion)} is empty or has spaces`);
  for (const p of input.packages) {
    if (!isSha256Hex(p.sha256)) fail(`lock entry ${p.name} has no sha256`);
  }
  const created = normaliseCreated(input.created);
  const platform = [input.platform.os, input.platform.architecture, input.platform.variant].filter(Boolean).join('/');

  const files = scanned ?? (await imageFiles(input.layers));
  const installed = installedPackages(files);
  const names = [...installed.keys()].sort(cmp);
  const ids = packageIds(names);
  const os = osReleaseOf(files);
  const distro = os ? `${os.id}-${os.versionId}` : undefined;
  const organization = input.organization !== undefined ? oneLine(input.organization.replace(/[()]/g, '')) : '';

  // Which present package a relation name means: the package itself, else (sorted) its providers.
  const providers = new Map<string, string[]>();
  for (const name of names) {
    for (const group of relationNames(installed.get(name)!.paragraph.get('Provides'))) {
      for (const v of group) if (!installed.has(v)) providers.set(v, [...(providers.get(v) ?? []), name]);
    }
  }
  const resolve = (n: string): string | undefined => (installed.has(n) ? n : providers.get(n)?.[0]);
  const copyrightOf = (n: string): string | undefined => {
    const f = files.get(`usr/share/doc/${n}/copyright`);
    return f?.kind === 'file' && f.data.length > 0 ? f.data.toString('utf8') : undefined;
  };

  const packages: SpdxPackage[] = [];
  const relationships: SpdxRelationship[] = [
    { spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: IMAGE_SPDXID },
  ];
  packages.push({
    SPDXID: IMAGE_SPDXID,
    name: input.image,
    versionInfo: input.manifestDigest,
    supplier: organization !== '' ? `Organization: ${organization}` : NOASSERTION,
    downloadLocation: NOASSERTION,
    filesAnalyzed: false,
    primaryPackagePurpose: 'CONTAINER',
    checksums: [{ algorithm: 'SHA256', checksumValue: digestHex }],
    externalRefs: [{ referenceCategory: 'PACKAGE-MANAGER', referenceType: 'purl', referenceLocator: ociPurl(input.image, input.manifestDigest, input.platform.architecture) }],
    licenseConcluded: NOASSERTION,
    licenseDeclared: NOASSERTION,
    copyrightText: NOASSERTION,
    comment: `${input.image}:${input.variant} for ${platform}, built by distill ${input.toolVersion}`,
  });
  // The distribution, as Trivy and the SPDX spec model it: an OPERATING-SYSTEM package the image
  // contains, which contains the Debian packages (Trivy takes its OS packages from this relationship).
  const osId = os ? `${OS_SPDXID_PREFIX}${os.id.replace(/[^A-Za-z0-9.-]/g, '-')}` : undefined;
  if (os && osId) {
    packages.push({
      SPDXID: osId,
      name: os.id,
      versionInfo: os.versionId,
      supplier: NOASSERTION,
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      primaryPackagePurpose: 'OPERATING-SYSTEM',
      licenseConcluded: NOASSERTION,
      licenseDeclared: NOASSERTION,
      copyrightText: NOASSERTION,
      ...(os.prettyName ? { description: os.prettyName } : {}),
      comment: `from the image's ${os.path}`,
    });
    relationships.push({ spdxElementId: IMAGE_SPDXID, relationshipType: 'CONTAINS', relatedSpdxElement: osId });
  }
  const parent = osId ?? IMAGE_SPDXID;

  const declared = new Map<string, DeclaredLicense>();
  const undetermined: string[] = [];
  for (const name of names) {
    const pkg = installed.get(name)!;
    const id = ids.get(name)!;
    const same = input.packages.filter((l) => l.name === name);
    const locked = same.filter((l) => l.version === pkg.version && l.architecture === pkg.architecture);
    if (same.length > 0 && locked.length === 0) {
      fail(`the image holds ${name} ${pkg.version} (${pkg.architecture}) but the locks pin ${same.map((l) => `${l.version} (${l.architecture})`).join(', ')}`);
    }
    if (new Set(locked.map((l) => `${l.sha256} ${l.filename}`)).size > 1) fail(`the locks pin ${name} ${pkg.version} twice, as different .debs`);
    const lock = locked[0];
    const own = copyrightOf(name);
    // No file of its own: in the .deb, /usr/share/doc/<pkg> is then a link to the doc directory of a
    // package built from the same source (Policy §12.5), which the image does not keep — and a
    // Debian copyright file is the source package's. Take that sibling's, and say so.
    const sibling = own === undefined ? names.find((n) => n !== name && sourceOf(installed.get(n)!) === sourceOf(pkg) && copyrightOf(n) !== undefined) : undefined;
    const copyright = own ?? (sibling !== undefined ? copyrightOf(sibling)! : undefined);
    const license = copyright !== undefined ? declaredLicense(copyright) : undefined;
    if (license) declared.set(name, license);
    else undetermined.push(name);
    const src = sourcePackage(pkg);
    const summary = oneLine((pkg.paragraph.get('Description') ?? '').split('\n')[0] ?? '');
    const homepage = httpUrl(pkg.paragraph.get('Homepage'));
    const upstream = src.name !== name || src.version !== pkg.version ? { name: src.name, ...(src.version !== pkg.version ? { version: src.version } : {}) } : undefined;
    packages.push({
      SPDXID: id,
      name,
      versionInfo: pkg.version,
      supplier: supplierOf(pkg.paragraph.get('Maintainer')),
      downloadLocation: NOASSERTION,
      filesAnalyzed: false,
      ...(lock ? { checksums: [{ algorithm: 'SHA256', checksumValue: lock.sha256 }] } : {}),
      externalRefs: [{
        referenceCategory: 'PACKAGE-MANAGER',
        referenceType: 'purl',
        referenceLocator: debPurl(name, pkg.version, pkg.architecture, { ...(distro ? { distro, namespace: os!.id } : {}), ...(upstream ? { upstream } : {}) }),
      }],
      licenseConcluded: NOASSERTION,
      licenseDeclared: license?.expression ?? NOASSERTION,
      ...(license === undefined ? { licenseComments: copyright === undefined ? 'no copyright file in the image' : 'debian/copyright is not machine-readable (DEP-5)' } : {}),
      copyrightText: copyright ?? NOASSERTION,
      primaryPackagePurpose: 'LIBRARY',
      ...(lock ? { packageFileName: lock.filename.slice(lock.filename.lastIndexOf('/') + 1) } : {}),
      sourceInfo: `${SOURCE_INFO_PREFIX}${src.name} ${src.version}`,
      ...(summary ? { summary } : {}),
      ...(homepage ? { homepage } : {}),
      ...(commentOf(lock?.filename, sibling) ?? {}),
    });
    relationships.push({ spdxElementId: parent, relationshipType: 'CONTAINS', relatedSpdxElement: id });
    const deps = new Set<string>();
    for (const field of ['Pre-Depends', 'Depends']) {
      for (const group of relationNames(pkg.paragraph.get(field))) {
        // Alternatives: the first one present (apt's choice when several are).
        for (const alt of group) {
          const target = resolve(alt);
          if (target !== undefined) {
            if (target !== name) deps.add(target);
            break;
          }
        }
      }
    }
    for (const d of deps) relationships.push({ spdxElementId: id, relationshipType: 'DEPENDS_ON', relatedSpdxElement: ids.get(d)! });
  }

  // LicenseRefs: one definition per distinct (name, text) in the document.
  const { rename, infos } = unifyExtracted([...declared.values()].map((d) => d.extracted));
  for (const p of packages) {
    const d = declared.get(p.name);
    if (d === undefined || p.SPDXID === IMAGE_SPDXID || p.SPDXID === osId) continue;
    let e = d.expression;
    for (const x of d.extracted) e = e.replace(new RegExp(`(^|[ (])${x.licenseId.replace(/\./g, '\\.')}(?=$|[ )])`, 'g'), `$1${rename(x)}`);
    p.licenseDeclared = e;
  }

  const [image, ...rest] = packages;
  const sortedPackages = [image!, ...rest.sort((a, b) => cmp(a.SPDXID.startsWith(OS_SPDXID_PREFIX) ? '' : a.name, b.SPDXID.startsWith(OS_SPDXID_PREFIX) ? '' : b.name) || cmp(a.SPDXID, b.SPDXID))];
  relationships.sort((a, b) => cmp(a.spdxElementId, b.spdxElementId) || cmp(a.relationshipType, b.relationshipType) || cmp(a.relatedSpdxElement, b.relatedSpdxElement));

  const body = {
    spdxVersion: 'SPDX-2.3' as const,
    dataLicense: 'CC0-1.0' as const,
    SPDXID: 'SPDXRef-DOCUMENT' as const,
    name: `${input.image}:${input.variant} ${platform}`,
    creationInfo: { created, creators: [...(organization !== '' ? [`Organization: ${organization}`] : []), `Tool: distill-${input.toolVersion}`] },
    packages: sortedPackages,
    relationships,
    ...(infos.length > 0 ? { hasExtractedLicensingInfos: infos } : {}),
  };
  const contentId = sha256Hex(canonicalJson(body)).slice(0, 16);
  const document: SpdxDocument = {
    ...body,
    documentNamespace: `${NAMESPACE_BASE}${encodeURIComponent(input.image)}/${digestHex}/${contentId}`,
  };
  const problems = validateSbom(document);
  if (problems.length > 0) fail(`the document is not valid SPDX 2.3: ${problems.join('; ')}`);
  const licenseCoverage: LicenseCoverage = { packages: names.length, declared: declared.size, undetermined };
  return { json: prettyStableJson(document), document, licenseCoverage };
}

/** Licence coverage of a document (its Debian packages with a declared licence), e.g. one read from a cache. */
export function licenseCoverageOf(doc: SpdxDocument): LicenseCoverage {
  const debs = doc.packages.filter((p) => p.externalRefs?.some((r) => r.referenceType === 'purl' && r.referenceLocator.startsWith('pkg:deb/')));
  const undetermined = debs.filter((p) => p.licenseDeclared === undefined || p.licenseDeclared === NOASSERTION).map((p) => p.name);
  return { packages: debs.length, declared: debs.length - undetermined.length, undetermined };
}

// ——— validation ———

const DATE_RE = /^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T(([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]|23:59:60)Z$/;
const SPDXID_RE = /^SPDXRef-[A-Za-z0-9.-]+$/;
const CHECKSUM_HEX_LENGTH: Readonly<Record<string, number | undefined>> = {
  SHA1: 40, SHA224: 56, SHA256: 64, SHA384: 96, SHA512: 128, 'SHA3-256': 64, 'SHA3-384': 96, 'SHA3-512': 128,
  'BLAKE2b-256': 64, 'BLAKE2b-384': 96, 'BLAKE2b-512': 128, BLAKE3: undefined, MD2: 32, MD4: 32, MD5: 32, MD6: undefined, ADLER32: 8,
};
const REFERENCE_CATEGORIES = new Set(['OTHER', 'PERSISTENT-ID', 'PERSISTENT_ID', 'SECURITY', 'PACKAGE-MANAGER', 'PACKAGE_MANAGER']);
const PURPOSES = new Set(['OTHER', 'INSTALL', 'ARCHIVE', 'FIRMWARE', 'APPLICATION', 'FRAMEWORK', 'LIBRARY', 'CONTAINER', 'SOURCE', 'DEVICE', 'OPERATING-SYSTEM', 'FILE']);
const RELATIONSHIP_TYPES = new Set([
  'VARIANT_OF', 'COPY_OF', 'PATCH_FOR', 'TEST_DEPENDENCY_OF', 'CONTAINED_BY', 'DATA_FILE_OF', 'OPTIONAL_COMPONENT_OF', 'ANCESTOR_OF',
  'GENERATES', 'CONTAINS', 'OPTIONAL_DEPENDENCY_OF', 'FILE_ADDED', 'REQUIREMENT_DESCRIPTION_FOR', 'DEV_DEPENDENCY_OF', 'DEPENDENCY_OF',
  'BUILD_DEPENDENCY_OF', 'DESCRIBES', 'PREREQUISITE_FOR', 'HAS_PREREQUISITE', 'PROVIDED_DEPENDENCY_OF', 'DYNAMIC_LINK', 'DESCRIBED_BY',
  'METAFILE_OF', 'DEPENDENCY_MANIFEST_OF', 'PATCH_APPLIED', 'RUNTIME_DEPENDENCY_OF', 'TEST_OF', 'TEST_TOOL_OF', 'DEPENDS_ON',
  'SPECIFICATION_FOR', 'FILE_MODIFIED', 'DISTRIBUTION_ARTIFACT', 'AMENDS', 'DOCUMENTATION_OF', 'GENERATED_FROM', 'STATIC_LINK', 'OTHER',
  'BUILD_TOOL_OF', 'TEST_CASE_OF', 'PACKAGE_OF', 'DESCENDANT_OF', 'FILE_DELETED', 'EXPANDED_FROM_ARCHIVE', 'DEV_TOOL_OF', 'EXAMPLE_OF',
]);
const DOCUMENT_KEYS = new Set([
  '$schema', 'SPDXID', 'annotations', 'comment', 'creationInfo', 'dataLicense', 'externalDocumentRefs', 'hasExtractedLicensingInfos', 'name',
  'revieweds', 'spdxVersion', 'documentNamespace', 'documentDescribes', 'packages', 'files', 'snippets', 'relationships',
]);
const PACKAGE_KEYS = new Set([
  'SPDXID', 'annotations', 'attributionTexts', 'builtDate', 'checksums', 'comment', 'copyrightText', 'description', 'downloadLocation',
  'externalRefs', 'filesAnalyzed', 'hasFiles', 'homepage', 'licenseComments', 'licenseConcluded', 'licenseDeclared', 'licenseInfoFromFiles',
  'name', 'originator', 'packageFileName', 'packageVerificationCode', 'primaryPackagePurpose', 'releaseDate', 'sourceInfo', 'summary',
  'supplier', 'validUntilDate', 'versionInfo',
]);
/** §7.7: NONE | NOASSERTION | [vcs+]URL[@revision][#subpath]. */
const DOWNLOAD_RE = /^(?:NONE|NOASSERTION|(?:(?:git|hg|svn|bzr)\+)?[A-Za-z][A-Za-z0-9+.-]*:\/\/\S+)$/;
/** §7.5/§7.6/§6.8: agents. */
const AGENT_RE = /^(?:NOASSERTION|(?:Person|Organization): \S.*)$/;
const CREATOR_RE = /^(?:Person|Organization|Tool): \S.*$/;

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const nonEmpty = (v: unknown): v is string => typeof v === 'string' && v.trim() !== '';

/**
 * The problems that make `doc` something other than a valid SPDX 2.3 JSON document (required fields,
 * identifiers, enumerations, dates, checksums, dangling or missing relationships); [] when valid.
 * Covers what the SPDX 2.3 JSON schema and the spec's mandatory fields say about documents, packages
 * and relationships; files and snippets are only checked for their ids.
 */
export function validateSbom(doc: unknown): string[] {
  const problems: string[] = [];
  const bad = (where: string, what: string): void => void problems.push(`${where}: ${what}`);
  if (!isObj(doc)) return ['the document is not a JSON object'];
  for (const k of Object.keys(doc)) if (!DOCUMENT_KEYS.has(k)) bad(k, 'not an SPDX 2.3 document property');
  if (doc['spdxVersion'] !== 'SPDX-2.3') bad('spdxVersion', `must be "SPDX-2.3", is ${JSON.stringify(doc['spdxVersion'])}`);
  if (doc['dataLicense'] !== 'CC0-1.0') bad('dataLicense', `must be "CC0-1.0", is ${JSON.stringify(doc['dataLicense'])}`);
  if (doc['SPDXID'] !== 'SPDXRef-DOCUMENT') bad('SPDXID', `must be "SPDXRef-DOCUMENT", is ${JSON.stringify(doc['SPDXID'])}`);
  if (!nonEmpty(doc['name'])) bad('name', 'missing or empty');
  const ns = doc['documentNamespace'];
  if (!nonEmpty(ns)) bad('documentNamespace', 'missing or empty');
  else if (ns.includes('#') || /\s/.test(ns) || !/^[A-Za-z][A-Za-z0-9+.-]*:\S+$/.test(ns)) bad('documentNamespace', `${JSON.stringify(ns)} is not an absolute URI without '#'`);
  const ci = doc['creationInfo'];
  if (!isObj(ci)) bad('creationInfo', 'missing');
  else {
    if (typeof ci['created'] !== 'string' || !DATE_RE.test(ci['created']) || Number.isNaN(Date.parse(ci['created']))) bad('creationInfo.created', `${JSON.stringify(ci['created'])} is not YYYY-MM-DDThh:mm:ssZ`);
    const creators = ci['creators'];
    if (!Array.isArray(creators) || creators.length === 0) bad('creationInfo.creators', 'must list at least one creator');
    else creators.forEach((c, i) => { if (typeof c !== 'string' || !CREATOR_RE.test(c)) bad(`creationInfo.creators[${i}]`, `${JSON.stringify(c)} is not "Person: …", "Organization: …" or "Tool: …"`); });
  }

  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  const addId = (where: string, id: unknown): void => {
    if (typeof id !== 'string' || !SPDXID_RE.test(id)) bad(`${where}.SPDXID`, `${JSON.stringify(id)} is not SPDXRef-[A-Za-z0-9.-]+`);
    else if (ids.has(id)) bad(`${where}.SPDXID`, `duplicate SPDXID ${id}`);
    else ids.add(id);
  };
  const packages = doc['packages'];
  if (packages !== undefined && !Array.isArray(packages)) bad('packages', 'not an array');
  (Array.isArray(packages) ? packages : []).forEach((p: unknown, i) => {
    const at = `packages[${i}]`;
    if (!isObj(p)) return bad(at, 'not an object');
    for (const k of Object.keys(p)) if (!PACKAGE_KEYS.has(k)) bad(`${at}.${k}`, 'not an SPDX 2.3 package property');
    addId(at, p['SPDXID']);
    if (!nonEmpty(p['name'])) bad(`${at}.name`, 'missing or empty');
    if (typeof p['downloadLocation'] !== 'string' || !DOWNLOAD_RE.test(p['downloadLocation'])) bad(`${at}.downloadLocation`, `${JSON.stringify(p['downloadLocation'])} is not NONE, NOASSERTION or a URL`);
    if (p['filesAnalyzed'] !== undefined && typeof p['filesAnalyzed'] !== 'boolean') bad(`${at}.filesAnalyzed`, 'not a boolean');
    if (p['filesAnalyzed'] === false) {
      for (const k of ['hasFiles', 'packageVerificationCode', 'licenseInfoFromFiles']) if (p[k] !== undefined) bad(`${at}.${k}`, 'not allowed when filesAnalyzed is false');
    }
    for (const k of ['versionInfo', 'copyrightText', 'licenseConcluded', 'licenseDeclared', 'sourceInfo', 'summary', 'comment', 'packageFileName', 'homepage']) {
      if (p[k] !== undefined && typeof p[k] !== 'string') bad(`${at}.${k}`, 'not a string');
    }
    for (const k of ['licenseConcluded', 'licenseDeclared']) if (p[k] !== undefined && !nonEmpty(p[k])) bad(`${at}.${k}`, 'empty');
    for (const k of ['supplier', 'originator']) if (p[k] !== undefined && (typeof p[k] !== 'string' || !AGENT_RE.test(p[k] as string))) bad(`${at}.${k}`, `${JSON.stringify(p[k])} is not NOASSERTION, "Person: …" or "Organization: …"`);
    for (const k of ['builtDate', 'releaseDate', 'validUntilDate']) if (p[k] !== undefined && (typeof p[k] !== 'string' || !DATE_RE.test(p[k] as string))) bad(`${at}.${k}`, 'not YYYY-MM-DDThh:mm:ssZ');
    if (p['primaryPackagePurpose'] !== undefined && !PURPOSES.has(String(p['primaryPackagePurpose']))) bad(`${at}.primaryPackagePurpose`, `${JSON.stringify(p['primaryPackagePurpose'])} is not a package purpose`);
    if (p['homepage'] !== undefined && typeof p['homepage'] === 'string' && !/^(?:NONE|NOASSERTION|[A-Za-z][A-Za-z0-9+.-]*:\/\/\S+)$/.test(p['homepage'])) bad(`${at}.homepage`, 'not NONE, NOASSERTION or a URL');
    const checksums = p['checksums'];
    if (checksums !== undefined && !Array.isArray(checksums)) bad(`${at}.checksums`, 'not an array');
    (Array.isArray(checksums) ? checksums : []).forEach((c: unknown, j) => {
      const cat = `${at}.checksums[${j}]`;
      if (!isObj(c)) return bad(cat, 'not an object');
      const alg = c['algorithm'];
      if (typeof alg !== 'string' || !Object.hasOwn(CHECKSUM_HEX_LENGTH, alg)) return bad(`${cat}.algorithm`, `${JSON.stringify(alg)} is not an SPDX checksum algorithm`);
      const v = c['checksumValue'];
      const len = CHECKSUM_HEX_LENGTH[alg];
      if (typeof v !== 'string' || !/^[0-9a-f]+$/.test(v) || (len !== undefined && v.length !== len)) bad(`${cat}.checksumValue`, `not a lower-case hex ${alg} value`);
    });
    const refs = p['externalRefs'];
    if (refs !== undefined && !Array.isArray(refs)) bad(`${at}.externalRefs`, 'not an array');
    (Array.isArray(refs) ? refs : []).forEach((r: unknown, j) => {
      const rat = `${at}.externalRefs[${j}]`;
      if (!isObj(r)) return bad(rat, 'not an object');
      if (!REFERENCE_CATEGORIES.has(String(r['referenceCategory']))) bad(`${rat}.referenceCategory`, `${JSON.stringify(r['referenceCategory'])} is not a reference category`);
      if (!nonEmpty(r['referenceType'])) bad(`${rat}.referenceType`, 'missing');
      const loc = r['referenceLocator'];
      if (!nonEmpty(loc) || /\s/.test(loc)) bad(`${rat}.referenceLocator`, 'missing, or has spaces');
      else if (r['referenceType'] === 'purl' && !/^pkg:[A-Za-z.+-][A-Za-z0-9.+-]*\/\S+$/.test(loc)) bad(`${rat}.referenceLocator`, `${JSON.stringify(loc)} is not a purl`);
    });
  });
  for (const [kind, list] of [['files', doc['files']], ['snippets', doc['snippets']]] as const) {
    if (list !== undefined && !Array.isArray(list)) bad(kind, 'not an array');
    (Array.isArray(list) ? list : []).forEach((f: unknown, i) => addId(`${kind}[${i}]`, isObj(f) ? f['SPDXID'] : undefined));
  }

  const refOk = (id: unknown, related: boolean): boolean =>
    typeof id === 'string' && (ids.has(id) || /^DocumentRef-[A-Za-z0-9.+-]+:SPDXRef-[A-Za-z0-9.-]+$/.test(id) || (related && (id === 'NONE' || id === 'NOASSERTION')));
  let describes = Array.isArray(doc['documentDescribes']) && doc['documentDescribes'].length > 0;
  (Array.isArray(doc['documentDescribes']) ? doc['documentDescribes'] : []).forEach((d: unknown, i) => {
    if (!refOk(d, false)) bad(`documentDescribes[${i}]`, `${JSON.stringify(d)} names no element of the document`);
  });
  const rels = doc['relationships'];
  if (rels !== undefined && !Array.isArray(rels)) bad('relationships', 'not an array');
  (Array.isArray(rels) ? rels : []).forEach((r: unknown, i) => {
    const at = `relationships[${i}]`;
    if (!isObj(r)) return bad(at, 'not an object');
    if (!RELATIONSHIP_TYPES.has(String(r['relationshipType']))) bad(`${at}.relationshipType`, `${JSON.stringify(r['relationshipType'])} is not a relationship type`);
    if (!refOk(r['spdxElementId'], false)) bad(`${at}.spdxElementId`, `${JSON.stringify(r['spdxElementId'])} names no element of the document`);
    if (!refOk(r['relatedSpdxElement'], true)) bad(`${at}.relatedSpdxElement`, `${JSON.stringify(r['relatedSpdxElement'])} names no element of the document`);
    if ((r['spdxElementId'] === 'SPDXRef-DOCUMENT' && r['relationshipType'] === 'DESCRIBES') || (r['relatedSpdxElement'] === 'SPDXRef-DOCUMENT' && r['relationshipType'] === 'DESCRIBED_BY')) describes = true;
  });
  if (!describes) bad('relationships', 'the document DESCRIBES nothing (no SPDXRef-DOCUMENT DESCRIBES relationship or documentDescribes)');
  // Every LicenseRef an expression uses is defined once in hasExtractedLicensingInfos (SPDX 2.3 §10.1).
  const defined = new Set<string>();
  const extracted = doc['hasExtractedLicensingInfos'];
  if (extracted !== undefined && !Array.isArray(extracted)) bad('hasExtractedLicensingInfos', 'not an array');
  (Array.isArray(extracted) ? extracted : []).forEach((x: unknown, i) => {
    const at = `hasExtractedLicensingInfos[${i}]`;
    if (!isObj(x)) return bad(at, 'not an object');
    if (typeof x['licenseId'] !== 'string' || !/^LicenseRef-[A-Za-z0-9.-]+$/.test(x['licenseId'])) bad(`${at}.licenseId`, `${JSON.stringify(x['licenseId'])} is not LicenseRef-[A-Za-z0-9.-]+`);
    else if (defined.has(x['licenseId'])) bad(`${at}.licenseId`, `${x['licenseId']} defined twice`);
    else defined.add(x['licenseId']);
    if (!nonEmpty(x['extractedText'])) bad(`${at}.extractedText`, 'missing or empty');
  });
  (Array.isArray(packages) ? packages : []).forEach((p: unknown, i) => {
    if (!isObj(p)) return;
    for (const k of ['licenseConcluded', 'licenseDeclared']) {
      const v = p[k];
      if (typeof v !== 'string') continue;
      for (const ref of v.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) if (!defined.has(ref)) bad(`packages[${i}].${k}`, `${ref} is not defined in hasExtractedLicensingInfos`);
    }
  });
  return problems;
}
