// in-toto Statement v1 (in-toto/attestation spec/v1/statement.md): `_type`, `subject` (resource
// descriptors with a digest), `predicateType` (a URI) and `predicate` (an object), for one image: the
// subject is `{"name":"<registry>/<repo>","digest":{"sha256":"<hex>"}}` as cosign attest writes it.
// Also cosign's `--type` short names for predicate URIs (cosign's PredicateTypeMap).
import { parseJsonObject } from '../json.js';
import { DistillError } from '../errors.js';
import { goJson } from '../oci/descriptor.js';

export const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';
/** What cosign and in-toto-golang still write; accepted when reading. */
export const STATEMENT_V01 = 'https://in-toto.io/Statement/v0.1';

export const SLSA_PROVENANCE_V1 = 'https://slsa.dev/provenance/v1';
export const SLSA_PROVENANCE_V02 = 'https://slsa.dev/provenance/v0.2';
export const SPDX_DOCUMENT = 'https://spdx.dev/Document';

/** cosign attest --type NAME → predicate URI. Beware: `slsaprovenance` is v0.2, `slsaprovenance1` is v1. */
export const PREDICATE_TYPES: Readonly<Record<string, string>> = Object.freeze({
  custom: 'https://cosign.sigstore.dev/attestation/v1',
  slsaprovenance: SLSA_PROVENANCE_V02,
  slsaprovenance02: SLSA_PROVENANCE_V02,
  slsaprovenance1: SLSA_PROVENANCE_V1,
  spdx: SPDX_DOCUMENT,
  spdxjson: SPDX_DOCUMENT,
  cyclonedx: 'https://cyclonedx.org/bom',
  link: 'https://in-toto.io/Link/v1',
  vuln: 'https://cosign.sigstore.dev/attestation/vuln/v1',
  openvex: 'https://openvex.dev/ns',
});

export interface ResourceDescriptor {
  name?: string;
  digest: Record<string, string>;
  [field: string]: unknown;
}

export interface Statement {
  _type: string;
  subject: ResourceDescriptor[];
  predicateType: string;
  predicate: Record<string, unknown>;
}

/** A cosign short name mapped to its URI; anything else must already be an absolute URI. */
export function predicateTypeUri(type: string): string {
  if (Object.hasOwn(PREDICATE_TYPES, type)) return PREDICATE_TYPES[type]!;
  let ok = false;
  try {
    ok = /^[a-z][a-z0-9+.-]*:/i.test(type) && new URL(type).protocol !== '';
  } catch {
    ok = false;
  }
  if (!ok) {
    throw new DistillError('USAGE', `predicate type ${JSON.stringify(type)} is neither a cosign type name nor a URI`, {
      hint: `use one of ${Object.keys(PREDICATE_TYPES).join(', ')}, or a URI such as ${SLSA_PROVENANCE_V1}`,
    });
  }
  return type;
}

/** The statement bytes for one image digest (Go's byte form: keys in spec order, <>& escaped). */
export function makeStatement(subjectName: string, digest: string, predicateType: string, predicate: object, extraSubjects: readonly { name: string; digest: string }[] = []): Buffer {
  const m = /^sha256:([0-9a-f]{64})$/.exec(digest);
  if (m === null) throw new DistillError('USAGE', `${JSON.stringify(digest)} is not a sha256 digest`);
  if (typeof predicate !== 'object' || predicate === null || Array.isArray(predicate)) {
    throw new DistillError('USAGE', 'the predicate must be a JSON object');
  }
  const statement: Statement = {
    _type: STATEMENT_V1,
    // The attested image first, then any others the predicate is about (a build's every index and
    // platform manifest, so that a verifier can tell which variant a digest is).
    subject: [
      { name: subjectName, digest: { sha256: m[1]! } },
      ...extraSubjects.map((x) => {
        const e = /^sha256:([0-9a-f]{64})$/.exec(x.digest);
        if (e === null) throw new DistillError('USAGE', `${JSON.stringify(x.digest)} is not a sha256 digest`);
        return { name: x.name, digest: { sha256: e[1]! } };
      }),
    ],
    predicateType,
    predicate: predicate as Record<string, unknown>,
  };
  return Buffer.from(goJson(statement), 'utf8');
}

/** Parse statement bytes (already authenticated by the envelope); unknown fields are kept and ignored. */
export function parseStatement(bytes: Buffer): Statement {
  const s = parseJsonObject(bytes, invalid);
  if (s['_type'] !== STATEMENT_V1 && s['_type'] !== STATEMENT_V01) throw invalid(`_type ${JSON.stringify(s['_type'])} is not an in-toto Statement`);
  if (typeof s['predicateType'] !== 'string' || s['predicateType'] === '') throw invalid('predicateType is missing');
  const subject = s['subject'];
  if (!Array.isArray(subject) || subject.length === 0) throw invalid('subject is empty');
  for (const [i, r] of subject.entries()) {
    const d = (r as { digest?: unknown } | null)?.digest;
    if (typeof d !== 'object' || d === null || Array.isArray(d) || Object.values(d).some((x) => typeof x !== 'string')) {
      throw invalid(`subject[${i}].digest is not a map of digests`);
    }
  }
  const predicate = s['predicate'] ?? {};
  if (typeof predicate !== 'object' || predicate === null || Array.isArray(predicate)) throw invalid('predicate is not an object');
  return { ...(s as unknown as Statement), predicate: predicate as Record<string, unknown> };
}

/** Whether the statement's subject names this sha256 digest. */
export function statementCovers(statement: Statement, digest: string): boolean {
  const hex = digest.replace(/^sha256:/, '');
  return statement.subject.some((r) => r.digest['sha256'] === hex);
}

function invalid(message: string, cause?: unknown): DistillError {
  return new DistillError('ATTESTATION_INVALID', `invalid in-toto statement: ${message}`, cause === undefined ? {} : { cause });
}
