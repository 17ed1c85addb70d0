// A CycloneDX 1.6 JSON BOM (https://cyclonedx.org/docs/1.6/json/) with the same contents as the SPDX
// document of an image — derived from it, so the two never disagree and the CycloneDX bytes depend only
// on the SPDX document's: the image is metadata.component (type container), the distribution an
// operating-system component that depends on every Debian package, each package a library component
// with its purl (distro and upstream qualifiers), the .deb's SHA-256, its declared licence expression,
// its supplier (from Maintainer), and Trivy's source-package properties; DEPENDS_ON becomes dependencies.
//
// Decisions:
//  - serialNumber is a urn:uuid derived from the SHA-256 of the SPDX document (RFC 4122 version-5
//    layout, no clock, no randomness): the same image and inputs give the same bytes.
//  - copyright texts are not repeated here (CycloneDX `copyright` is a short notice; the SPDX document
//    carries the full files); LicenseRef texts likewise stay in the SPDX document.
//  - Trivy reads a component's source package from the properties aquasecurity:trivy:SrcName and
//    aquasecurity:trivy:SrcVersion, syft from the purl's upstream qualifier: both are given.
import { sha256Hex } from '../digest.js';
import { canonicalJson, prettyStableJson } from '../json.js';
import { IMAGE_SPDXID, OS_SPDXID_PREFIX, SOURCE_INFO_PREFIX, type SpdxDocument, type SpdxPackage } from './sbom.js';

export const CYCLONEDX_MEDIA_TYPE = 'application/vnd.cyclonedx+json';

interface OrganizationalEntity {
  name: string;
  contact?: { email: string }[];
}

/** "Organization: Name (email)" / "Person: Name (email)" → a CycloneDX organizationalEntity. */
function entityOf(agent: string | undefined): OrganizationalEntity | undefined {
  const m = /^(?:Organization|Person): (.*?)(?: \(([^()]*)\))?$/.exec(agent ?? '');
  if (!m || m[1] === '') return undefined;
  const email = m[2] !== undefined && /^[^\s@]+@[^\s@]+$/.test(m[2]) ? m[2] : undefined;
  return { name: m[1]!, ...(email ? { contact: [{ email }] } : {}) };
}

const purlOf = (p: SpdxPackage): string | undefined => p.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator;

/** A version-5-shaped UUID from bytes of a hash (deterministic, RFC 4122 §4.3 layout). */
function uuidFrom(hex: string): string {
  const b = Buffer.from(hex.slice(0, 32), 'hex');
  b[6] = (b[6]! & 0x0f) | 0x50;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

export interface CycloneDxBom {
  bomFormat: 'CycloneDX';
  specVersion: '1.6';
  serialNumber: string;
  version: 1;
  metadata: Record<string, unknown>;
  components: Record<string, unknown>[];
  dependencies: { ref: string; dependsOn: string[] }[];
}

export function cyclonedxFromSpdx(spdx: SpdxDocument): { json: string; bom: CycloneDxBom } {
  const image = spdx.packages.find((p) => p.SPDXID === IMAGE_SPDXID);
  if (image === undefined) throw new Error('the SPDX document has no image package');
  const refs = new Map<string, string>();
  for (const p of spdx.packages) {
    const purl = purlOf(p);
    refs.set(p.SPDXID, p.SPDXID === IMAGE_SPDXID || p.SPDXID.startsWith(OS_SPDXID_PREFIX) || purl === undefined ? p.SPDXID : purl);
  }
  const toolVersion = spdx.creationInfo.creators.find((c) => c.startsWith('Tool: distill-'))?.slice('Tool: distill-'.length) ?? '';
  const organization = spdx.creationInfo.creators.find((c) => c.startsWith('Organization: '))?.slice('Organization: '.length);
  const hash = (p: SpdxPackage): { hashes: { alg: string; content: string }[] } | undefined => {
    const sha = p.checksums?.find((c) => c.algorithm === 'SHA256');
    return sha ? { hashes: [{ alg: 'SHA-256', content: sha.checksumValue }] } : undefined;
  };

  const components: Record<string, unknown>[] = [];
  for (const p of spdx.packages) {
    if (p.SPDXID === IMAGE_SPDXID) continue;
    if (p.primaryPackagePurpose === 'OPERATING-SYSTEM') {
      components.push({
        'bom-ref': refs.get(p.SPDXID),
        type: 'operating-system',
        name: p.name,
        ...(p.versionInfo ? { version: p.versionInfo } : {}),
        ...(p.description ? { description: p.description } : {}),
      });
      continue;
    }
    const purl = purlOf(p);
    const supplier = entityOf(p.supplier);
    const source = p.sourceInfo?.startsWith(SOURCE_INFO_PREFIX) ? p.sourceInfo.slice(SOURCE_INFO_PREFIX.length) : undefined;
    const [srcName, srcVersion] = source !== undefined ? [source.slice(0, source.indexOf(' ')), source.slice(source.indexOf(' ') + 1)] : [];
    const license = p.licenseDeclared && p.licenseDeclared !== 'NOASSERTION' && p.licenseDeclared !== 'NONE' ? p.licenseDeclared : undefined;
    components.push({
      'bom-ref': refs.get(p.SPDXID),
      type: 'library',
      ...(supplier ? { supplier } : {}),
      name: p.name,
      ...(p.versionInfo ? { version: p.versionInfo } : {}),
      ...(p.summary ? { description: p.summary } : {}),
      ...(hash(p) ?? {}),
      ...(license ? { licenses: [{ expression: license }] } : {}),
      ...(purl ? { purl } : {}),
      ...(p.homepage ? { externalReferences: [{ type: 'website', url: p.homepage }] } : {}),
      properties: [
        ...(srcName ? [{ name: 'aquasecurity:trivy:SrcName', value: srcName }, { name: 'aquasecurity:trivy:SrcVersion', value: srcVersion }] : []),
        ...(p.packageFileName ? [{ name: 'distill:deb:filename', value: p.packageFileName }] : []),
      ],
    });
  }

  const dependsOn = new Map<string, Set<string>>();
  for (const r of spdx.relationships) {
    if (r.spdxElementId === 'SPDXRef-DOCUMENT') continue;
    const from = refs.get(r.spdxElementId);
    const to = refs.get(r.relatedSpdxElement);
    if (from === undefined || to === undefined) continue;
    if (r.relationshipType === 'DEPENDS_ON' || r.relationshipType === 'CONTAINS') {
      if (!dependsOn.has(from)) dependsOn.set(from, new Set());
      dependsOn.get(from)!.add(to);
    }
  }
  const dependencies = [...refs.values()].sort().map((ref) => ({ ref, dependsOn: [...(dependsOn.get(ref) ?? [])].sort() }));

  const imageSupplier = entityOf(image.supplier);
  const bom: CycloneDxBom = {
    bomFormat: 'CycloneDX',
    specVersion: '1.6',
    serialNumber: `urn:uuid:${uuidFrom(sha256Hex(canonicalJson(spdx)))}`,
    version: 1,
    metadata: {
      timestamp: spdx.creationInfo.created,
      tools: { components: [{ type: 'application', name: 'distill', ...(toolVersion ? { version: toolVersion } : {}) }] },
      component: {
        'bom-ref': refs.get(IMAGE_SPDXID),
        type: 'container',
        ...(imageSupplier ? { supplier: imageSupplier } : {}),
        name: image.name,
        ...(image.versionInfo ? { version: image.versionInfo } : {}),
        ...(image.comment ? { description: image.comment } : {}),
        ...(hash(image) ?? {}),
        ...(purlOf(image) ? { purl: purlOf(image) } : {}),
      },
      ...(organization ? { supplier: { name: organization } } : {}),
    },
    components,
    dependencies,
  };
  return { json: prettyStableJson(bom), bom };
}
