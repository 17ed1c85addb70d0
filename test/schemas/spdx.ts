// SPDX 2.3 JSON, checked as the SPDX project's JSON schema and its validator (spdx-tools) check it.
// Neither is published where tests may take it from: no npm package ships spdx-schema.json 2.3 (the
// SPDX file in @cyclonedx/cdxgen is SPDX 3.0.1's), and spdx-tools (pyspdxtools) is not packaged in
// Debian bookworm (test/provenance/sbom.test.ts runs it when it is installed). So the schema's
// constraints (spdx-spec schemas/spdx-schema.json for 2.3: required properties, additionalProperties
// false, enums, date and SPDXID patterns) and the spec's rules a schema cannot state (clauses named in
// the messages) are re-stated here, by ajv and by code — nothing of either file is copied.
import { Ajv } from 'ajv';
import { parsePurl } from '../helpers/scanner-readers.js';
import { spdxExpressionProblem } from '../helpers/schemas.js';

type Json = Record<string, any>;

const DATE = '^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z$';
const SPDXID = '^SPDXRef-[a-zA-Z0-9.-]+$';
const str = { type: 'string' } as const;
const CHECKSUM_ALGORITHMS = ['SHA1', 'SHA224', 'SHA256', 'SHA384', 'SHA512', 'SHA3-256', 'SHA3-384', 'SHA3-512', 'BLAKE2b-256', 'BLAKE2b-384', 'BLAKE2b-512', 'BLAKE3', 'MD2', 'MD4', 'MD5', 'MD6', 'ADLER32'];
const PURPOSES = ['OTHER', 'INSTALL', 'ARCHIVE', 'FIRMWARE', 'APPLICATION', 'FRAMEWORK', 'LIBRARY', 'CONTAINER', 'SOURCE', 'DEVICE', 'OPERATING-SYSTEM', 'FILE'];
const CATEGORIES = ['OTHER', 'PERSISTENT-ID', 'PERSISTENT_ID', 'SECURITY', 'PACKAGE-MANAGER', 'PACKAGE_MANAGER'];
/** Clause 11.1, Table 68: the relationship types of SPDX 2.3. */
const RELATIONSHIPS = [
  'DESCRIBES', 'DESCRIBED_BY', 'CONTAINS', 'CONTAINED_BY', 'DEPENDS_ON', 'DEPENDENCY_OF', 'DEPENDENCY_MANIFEST_OF',
  'BUILD_DEPENDENCY_OF', 'DEV_DEPENDENCY_OF', 'OPTIONAL_DEPENDENCY_OF', 'PROVIDED_DEPENDENCY_OF', 'TEST_DEPENDENCY_OF',
  'RUNTIME_DEPENDENCY_OF', 'EXAMPLE_OF', 'GENERATES', 'GENERATED_FROM', 'ANCESTOR_OF', 'DESCENDANT_OF', 'VARIANT_OF',
  'DISTRIBUTION_ARTIFACT', 'PATCH_FOR', 'PATCH_APPLIED', 'COPY_OF', 'FILE_ADDED', 'FILE_DELETED', 'FILE_MODIFIED',
  'EXPANDED_FROM_ARCHIVE', 'DYNAMIC_LINK', 'STATIC_LINK', 'DATA_FILE_OF', 'TEST_CASE_OF', 'BUILD_TOOL_OF', 'DEV_TOOL_OF',
  'TEST_OF', 'TEST_TOOL_OF', 'DOCUMENTATION_OF', 'OPTIONAL_COMPONENT_OF', 'METAFILE_OF', 'PACKAGE_OF', 'AMENDS',
  'PREREQUISITE_FOR', 'HAS_PREREQUISITE', 'REQUIREMENT_DESCRIPTION_FOR', 'SPECIFICATION_FOR', 'OTHER',
];

const checksum = { type: 'object', required: ['algorithm', 'checksumValue'], additionalProperties: false, properties: { algorithm: { enum: CHECKSUM_ALGORITHMS }, checksumValue: { type: 'string', pattern: '^[0-9a-fA-F]+$' } } };
const annotation = { type: 'object', required: ['annotationDate', 'annotationType', 'annotator', 'comment'], additionalProperties: false, properties: { annotationDate: { type: 'string', pattern: DATE }, annotationType: { enum: ['OTHER', 'REVIEW'] }, annotator: str, comment: str } };
const strings = { type: 'array', items: str };

/** The document's shape: clauses 6 (creation information), 7 (packages), 10 (other licensing), 11 (relationships). */
const SCHEMA = {
  type: 'object',
  required: ['spdxVersion', 'dataLicense', 'SPDXID', 'name', 'documentNamespace', 'creationInfo'],
  additionalProperties: false,
  properties: {
    $schema: str, SPDXID: { const: 'SPDXRef-DOCUMENT' }, spdxVersion: { const: 'SPDX-2.3' }, dataLicense: { const: 'CC0-1.0' },
    name: str, documentNamespace: str, comment: str, annotations: { type: 'array', items: annotation },
    documentDescribes: strings,
    creationInfo: { type: 'object', required: ['created', 'creators'], additionalProperties: false, properties: { comment: str, created: { type: 'string', pattern: DATE }, creators: { type: 'array', minItems: 1, items: { type: 'string', pattern: '^(Person|Organization|Tool): .+' } }, licenseListVersion: { type: 'string', pattern: '^[0-9]+\\.[0-9]+$' } } },
    externalDocumentRefs: { type: 'array', items: { type: 'object', required: ['checksum', 'externalDocumentId', 'spdxDocument'], additionalProperties: false, properties: { checksum, externalDocumentId: str, spdxDocument: str } } },
    hasExtractedLicensingInfos: { type: 'array', items: { type: 'object', required: ['extractedText', 'licenseId'], additionalProperties: false, properties: { comment: str, crossRefs: { type: 'array' }, extractedText: str, licenseId: { type: 'string', pattern: '^LicenseRef-[a-zA-Z0-9.-]+$' }, name: str, seeAlsos: strings } } },
    packages: {
      type: 'array',
      items: {
        type: 'object', required: ['SPDXID', 'name', 'downloadLocation'], additionalProperties: false,
        properties: {
          SPDXID: { type: 'string', pattern: SPDXID }, annotations: { type: 'array', items: annotation }, attributionTexts: strings,
          builtDate: { type: 'string', pattern: DATE }, releaseDate: { type: 'string', pattern: DATE }, validUntilDate: { type: 'string', pattern: DATE },
          checksums: { type: 'array', items: checksum }, comment: str, copyrightText: str, description: str, downloadLocation: str,
          externalRefs: { type: 'array', items: { type: 'object', required: ['referenceCategory', 'referenceLocator', 'referenceType'], additionalProperties: false, properties: { comment: str, referenceCategory: { enum: CATEGORIES }, referenceLocator: str, referenceType: str } } },
          filesAnalyzed: { type: 'boolean' }, hasFiles: strings, homepage: str, licenseComments: str, licenseConcluded: str, licenseDeclared: str,
          licenseInfoFromFiles: strings, name: str, originator: str, packageFileName: str,
          packageVerificationCode: { type: 'object', required: ['packageVerificationCodeValue'], additionalProperties: false, properties: { packageVerificationCodeExcludedFiles: strings, packageVerificationCodeValue: str } },
          primaryPackagePurpose: { enum: PURPOSES }, sourceInfo: str, summary: str, supplier: str, versionInfo: str,
        },
      },
    },
    files: { type: 'array' },
    snippets: { type: 'array' },
    relationships: { type: 'array', items: { type: 'object', required: ['spdxElementId', 'relatedSpdxElement', 'relationshipType'], additionalProperties: false, properties: { spdxElementId: str, relatedSpdxElement: str, relationshipType: { enum: RELATIONSHIPS }, comment: str } } },
  },
};

const ajv = new Ajv({ strict: true, allErrors: true });
const validateShape = ajv.compile(SCHEMA);

/** Clause 7.5/7.6 and 6.8: agent syntax ("Person: …", "Organization: …", or NOASSERTION where allowed). */
const AGENT = /^(NOASSERTION|(Person|Organization): [^\n]+)$/;
/** Clause 7.7: a download location is NONE, NOASSERTION or a URL / VCS locator. */
const DOWNLOAD = /^(NONE|NOASSERTION|(((git|hg|svn|bzr)\+)?(https?|ftp|sftp|ssh|git|svn|file):\/\/|git\+git@)\S+)$/;

/** Every problem of `doc` as an SPDX 2.3 JSON document; [] when it is valid. */
export function spdx23Problems(doc: unknown): string[] {
  const out: string[] = [];
  if (!validateShape(doc)) out.push(...(validateShape.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`));
  if (doc === null || typeof doc !== 'object') return out;
  const d = doc as Json;
  // 6.5: an absolute URI, unique to this document, without a "#" part.
  if (typeof d['documentNamespace'] !== 'string' || !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(d['documentNamespace']) || d['documentNamespace'].includes('#')) {
    out.push(`documentNamespace ${d['documentNamespace']}: not an absolute URI without "#" (clause 6.5)`);
  }
  const packages = (Array.isArray(d['packages']) ? d['packages'] : []) as Json[];
  const ids = new Set<string>(['SPDXRef-DOCUMENT']);
  const refs = new Set(((d['hasExtractedLicensingInfos'] ?? []) as Json[]).map((l) => l['licenseId'] as string));
  if (refs.size !== ((d['hasExtractedLicensingInfos'] ?? []) as Json[]).length) out.push('hasExtractedLicensingInfos: a licenseId is repeated (clause 10.1)');
  for (const p of packages) {
    const where = `package ${p['SPDXID']}`;
    // 7.2: unique within the document.
    if (ids.has(p['SPDXID'])) out.push(`${where}: SPDXID repeated (clause 7.2)`);
    ids.add(p['SPDXID']);
    if (typeof p['downloadLocation'] === 'string' && !DOWNLOAD.test(p['downloadLocation'])) out.push(`${where}: downloadLocation ${p['downloadLocation']} (clause 7.7)`);
    for (const k of ['supplier', 'originator'] as const) if (p[k] !== undefined && !AGENT.test(p[k])) out.push(`${where}: ${k} ${p[k]} is not "Person: …", "Organization: …" or NOASSERTION (clause 7.5/7.6)`);
    // 7.8/7.9: filesAnalyzed defaults to true, and then a verification code is required.
    if (p['filesAnalyzed'] !== false && p['packageVerificationCode'] === undefined) out.push(`${where}: filesAnalyzed is true (or omitted) but there is no packageVerificationCode (clause 7.9)`);
    if (p['filesAnalyzed'] === false && (p['packageVerificationCode'] !== undefined || p['hasFiles'] !== undefined)) out.push(`${where}: filesAnalyzed false with files (clause 7.8)`);
    // 7.10: checksum values are lower-case hex of the algorithm's length; an algorithm at most once.
    const algs = new Set<string>();
    for (const c of (p['checksums'] ?? []) as Json[]) {
      const len = ({ SHA1: 40, SHA224: 56, SHA256: 64, SHA384: 96, SHA512: 128, MD5: 32 } as Record<string, number>)[c['algorithm']];
      if (len !== undefined && !new RegExp(`^[0-9a-f]{${len}}$`).test(c['checksumValue'])) out.push(`${where}: ${c['algorithm']} ${c['checksumValue']} is not ${len} lower-case hex digits (clause 7.10)`);
      if (algs.has(c['algorithm'])) out.push(`${where}: ${c['algorithm']} given twice`);
      algs.add(c['algorithm']);
    }
    // 7.13/7.15: licence expressions (Annex D), NONE or NOASSERTION; every LicenseRef declared (10.1).
    for (const k of ['licenseConcluded', 'licenseDeclared'] as const) {
      const e = p[k] as string | undefined;
      if (e === undefined || e === 'NONE' || e === 'NOASSERTION') continue;
      const problem = spdxExpressionProblem(e);
      if (problem) out.push(`${where}: ${k} ${problem} (Annex D)`);
      for (const ref of e.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) if (!refs.has(ref)) out.push(`${where}: ${k} uses ${ref}, not in hasExtractedLicensingInfos (clause 10.1)`);
    }
    // 7.21 and Annex F: a purl locator is a valid purl (no spaces); its category is PACKAGE-MANAGER.
    for (const r of (p['externalRefs'] ?? []) as Json[]) {
      if (/\s/.test(r['referenceLocator'])) out.push(`${where}: referenceLocator has spaces (clause 7.21)`);
      if (r['referenceType'] === 'purl') {
        if (r['referenceCategory'] !== 'PACKAGE-MANAGER' && r['referenceCategory'] !== 'PACKAGE_MANAGER') out.push(`${where}: a purl's category is PACKAGE-MANAGER (Annex F)`);
        try {
          const purl = parsePurl(r['referenceLocator']);
          if (!/^[a-z][a-z0-9.+-]*$/.test(purl.type) || purl.name === '') out.push(`${where}: purl ${r['referenceLocator']} has no type or name`);
        } catch (e) {
          out.push(`${where}: ${(e as Error).message}`);
        }
      }
    }
  }
  // 11: both ends of a relationship are elements of this document (or NONE / NOASSERTION on the right).
  const rels = (Array.isArray(d['relationships']) ? d['relationships'] : []) as Json[];
  for (const r of rels) {
    if (!ids.has(r['spdxElementId'])) out.push(`relationship ${r['spdxElementId']} ${r['relationshipType']} ${r['relatedSpdxElement']}: unknown spdxElementId (clause 11.1)`);
    if (!ids.has(r['relatedSpdxElement']) && r['relatedSpdxElement'] !== 'NONE' && r['relatedSpdxElement'] !== 'NOASSERTION' && !String(r['relatedSpdxElement']).startsWith('DocumentRef-')) {
      out.push(`relationship ${r['spdxElementId']} ${r['relationshipType']} ${r['relatedSpdxElement']}: unknown relatedSpdxElement (clause 11.1)`);
    }
  }
  // 6.1 / 11: the document DESCRIBES at least one element.
  if (!rels.some((r) => r['spdxElementId'] === 'SPDXRef-DOCUMENT' && r['relationshipType'] === 'DESCRIBES') && !(d['documentDescribes'] as unknown[] | undefined)?.length) {
    out.push('the document DESCRIBES nothing (clause 6 / 11)');
  }
  const seen = new Set<string>();
  for (const r of rels) {
    const key = `${r['spdxElementId']} ${r['relationshipType']} ${r['relatedSpdxElement']}`;
    if (seen.has(key)) out.push(`relationship ${key} repeated`);
    seen.add(key);
  }
  return out;
}
