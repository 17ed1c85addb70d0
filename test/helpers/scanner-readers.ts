// How vulnerability scanners read an SPDX document, re-stated from their sources so that tests can ask
// "what would syft/grype and Trivy make of this SBOM?" without the Go binaries:
//  - syft (syft/format/common/spdxhelpers/to_syft_model.go): the distribution comes from the first
//    purl with a `distro` qualifier, split on '-' into ID and VERSION_ID; a deb package's dpkg Source and
//    Source version come from the purl's `upstream` qualifier, split on the first '@'; grype then matches
//    Debian CVEs on the source name (the binary's own name when there is no upstream).
//  - Trivy (pkg/sbom/spdx/unmarshal.go, pkg/sbom/io/decode.go): the OS is the package whose SPDXID
//    (after "SPDXRef-") starts with "OperatingSystem" — family = its name, release = its version; its OS
//    packages are the packages it has relationships to; a package's source is sourceInfo
//    "built package from: <name> <version>" cut at the first space, else the binary's own name and version.
// The purl parser follows the purl spec's "How to parse a purl string" and shares no code with distill.

export interface Purl {
  type: string;
  namespace: string;
  name: string;
  version: string;
  qualifiers: Map<string, string>;
}

/** purl spec, "How to parse": right to left — subpath, qualifiers, scheme, type, version, name, namespace. */
export function parsePurl(s: string): Purl {
  let rest = s;
  const hash = rest.indexOf('#');
  if (hash >= 0) rest = rest.slice(0, hash);
  const qualifiers = new Map<string, string>();
  const q = rest.indexOf('?');
  if (q >= 0) {
    for (const pair of rest.slice(q + 1).split('&')) {
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new Error(`purl ${s}: bad qualifier ${pair}`);
      const key = pair.slice(0, eq).toLowerCase();
      if (qualifiers.has(key)) throw new Error(`purl ${s}: duplicate qualifier ${key}`);
      qualifiers.set(key, decodeURIComponent(pair.slice(eq + 1)));
    }
    rest = rest.slice(0, q);
  }
  if (!rest.startsWith('pkg:')) throw new Error(`purl ${s}: no pkg: scheme`);
  rest = rest.slice(4).replace(/^\/+/, '');
  const slash = rest.indexOf('/');
  if (slash <= 0) throw new Error(`purl ${s}: no type`);
  const type = rest.slice(0, slash).toLowerCase();
  rest = rest.slice(slash + 1);
  let version = '';
  const at = rest.lastIndexOf('@');
  if (at >= 0) {
    version = decodeURIComponent(rest.slice(at + 1));
    rest = rest.slice(0, at);
  }
  const parts = rest.split('/').filter((p) => p !== '');
  const name = decodeURIComponent(parts.pop() ?? '');
  const namespace = parts.map(decodeURIComponent).join('/');
  return { type, namespace, name, version, qualifiers };
}

interface SpdxLike {
  packages: { SPDXID: string; name: string; versionInfo?: string; sourceInfo?: string; externalRefs?: { referenceCategory: string; referenceType: string; referenceLocator: string }[] }[];
  relationships: { spdxElementId: string; relationshipType: string; relatedSpdxElement: string }[];
}

export interface ScannerView {
  /** "debian 13", or undefined when the reader finds no distribution. */
  distro: string | undefined;
  /** Per binary package name: the source package and version the reader would match CVEs on. */
  packages: Map<string, { source: string; sourceVersion: string; version: string }>;
}

const purlOf = (p: SpdxLike['packages'][number]): string | undefined =>
  p.externalRefs?.find((r) => (r.referenceCategory === 'PACKAGE-MANAGER' || r.referenceCategory === 'PACKAGE_MANAGER') && r.referenceType === 'purl')?.referenceLocator;

/** syft's SPDX decoder (what grype matches on when given `sbom:file.spdx.json`). */
export function syftView(doc: SpdxLike): ScannerView {
  let distro: string | undefined;
  const packages: ScannerView['packages'] = new Map();
  for (const p of doc.packages) {
    const s = purlOf(p);
    if (s === undefined) continue;
    const purl = parsePurl(s);
    const d = purl.qualifiers.get('distro');
    if (distro === undefined && d) {
      const [id, versionId] = d.split('-');
      distro = `${id} ${versionId ?? ''}`.trim();
    }
    if (purl.type !== 'deb') continue;
    const upstream = purl.qualifiers.get('upstream') ?? '';
    const cut = upstream.indexOf('@');
    const source = cut >= 0 ? upstream.slice(0, cut) : upstream;
    const sourceVersion = cut >= 0 ? upstream.slice(cut + 1) : '';
    // grype's dpkg matcher: the source name when there is one, with the source version when given.
    packages.set(p.name, { source: source || p.name, sourceVersion: sourceVersion || (p.versionInfo ?? ''), version: p.versionInfo ?? '' });
  }
  return { distro, packages };
}

/** Trivy's SPDX decoder. */
export function trivyView(doc: SpdxLike): ScannerView {
  const os = doc.packages.filter((p) => p.SPDXID.replace(/^SPDXRef-/, '').startsWith('OperatingSystem'));
  if (os.length > 1) throw new Error('multiple OS components are not supported');
  const packages: ScannerView['packages'] = new Map();
  const osPkg = os[0];
  const distro = osPkg ? `${osPkg.name} ${osPkg.versionInfo ?? ''}`.trim() : undefined;
  const children = new Set(doc.relationships.filter((r) => osPkg && r.spdxElementId === osPkg.SPDXID && r.relationshipType !== 'DESCRIBES').map((r) => r.relatedSpdxElement));
  for (const p of doc.packages) {
    if (!children.has(p.SPDXID)) continue;
    const s = purlOf(p);
    if (s === undefined || parsePurl(s).type !== 'deb') continue;
    let source = '';
    let sourceVersion = '';
    const prefix = 'built package from: ';
    if (p.sourceInfo?.startsWith(prefix)) {
      const v = p.sourceInfo.slice(prefix.length);
      const sp = v.indexOf(' ');
      source = sp >= 0 ? v.slice(0, sp) : v;
      sourceVersion = sp >= 0 ? v.slice(sp + 1) : '';
    }
    packages.set(p.name, { source: source || p.name, sourceVersion: sourceVersion || (p.versionInfo ?? ''), version: p.versionInfo ?? '' });
  }
  return { distro, packages };
}
