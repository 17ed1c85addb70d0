// Independent validators for the JSON distill emits, loaded from where their packages install them
// (nothing is copied into the repository):
//  - OCI image-spec: the JSON schemas of Debian's golang-github-opencontainers-image-spec-dev
//    (image-spec 1.1.0-rc2, bookworm; .ci/run installs it), compiled by ajv. Those files are draft-04
//    and refer to each other by file name through the Go loader's namespace table; here each file is
//    registered under its own file: URL (its nested `id`s dropped) so that the references resolve to
//    the sibling files exactly as that loader resolves them. What rc2's schemas do not state — 1.1's
//    `artifactType` and `subject`, and what image-spec's validator.go checks in code (known media types,
//    digests that parse, platforms) — is checked by `ociRuleProblems` below, from the 1.1 spec text.
//  - The definition schema (src/definition/image.schema.json, draft 2020-12) against JSON Schema's
//    2020-12 meta-schema as ajv ships it.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Ajv, type ValidateFunction } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule as unknown as (a: Ajv | Ajv2020) => void;

/** Where Debian's golang-github-opencontainers-image-spec-dev puts image-spec's schema directory. */
export const IMAGE_SPEC_SCHEMA_DIR = '/usr/share/gocode/src/github.com/opencontainers/image-spec/schema';

export const NO_IMAGE_SPEC =
  `image-spec's JSON schemas are not installed (${IMAGE_SPEC_SCHEMA_DIR}: apt-get install golang-github-opencontainers-image-spec-dev)`;

export interface ImageSpecValidators {
  layout: ValidateFunction;
  index: ValidateFunction;
  manifest: ValidateFunction;
  config: ValidateFunction;
  descriptor: ValidateFunction;
}

/** Drop draft-04's nested `id`s (the Go loader ignores them for resolution too) and `$schema`. */
function strip(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(strip);
  if (node === null || typeof node !== 'object') return node;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(node as Record<string, unknown>)) {
    if ((k === 'id' && typeof v === 'string') || k === '$schema') continue;
    // `properties` maps names to schemas: a property literally named "id" would be kept.
    out[k] = k === 'properties' ? Object.fromEntries(Object.entries(v as Record<string, unknown>).map(([p, s]) => [p, strip(s)])) : strip(v);
  }
  return out;
}

let imageSpec: ImageSpecValidators | undefined;

/** The image-spec schemas compiled, or undefined when the Debian package is not installed. */
export function imageSpecValidators(): ImageSpecValidators | undefined {
  if (imageSpec) return imageSpec;
  if (!existsSync(join(IMAGE_SPEC_SCHEMA_DIR, 'image-manifest-schema.json'))) return undefined;
  const ajv = new Ajv({ strict: false, allErrors: true });
  addFormats(ajv);
  const idOf = (file: string): string => pathToFileURL(join(IMAGE_SPEC_SCHEMA_DIR, file)).href;
  for (const file of readdirSync(IMAGE_SPEC_SCHEMA_DIR).filter((f) => f.endsWith('.json'))) {
    const schema = strip(JSON.parse(readFileSync(join(IMAGE_SPEC_SCHEMA_DIR, file), 'utf8'))) as Record<string, unknown>;
    ajv.addSchema({ ...schema, $id: idOf(file) });
  }
  const get = (file: string): ValidateFunction => ajv.getSchema(idOf(file))!;
  imageSpec = {
    layout: get('image-layout-schema.json'),
    index: get('image-index-schema.json'),
    manifest: get('image-manifest-schema.json'),
    config: get('config-schema.json'),
    descriptor: get('content-descriptor.json'),
  };
  return imageSpec;
}

/** ajv's errors as lines; [] when valid. */
export function problems(validate: ValidateFunction, doc: unknown): string[] {
  if (validate(doc)) return [];
  return (validate.errors ?? []).map((e) => `${e.instancePath || '/'} ${e.message ?? ''} ${JSON.stringify(e.params)}`);
}

let ajv2020: Ajv2020 | undefined;
/** An ajv for draft 2020-12 schemas (its meta-schema included), with the formats of ajv-formats. */
export function draft2020(): Ajv2020 {
  if (!ajv2020) {
    ajv2020 = new Ajv2020({ strict: true, allErrors: true });
    addFormats(ajv2020);
  }
  return ajv2020;
}

// ---------------------------------------------------------------------------------------------------
// OCI image-spec 1.1 rules the rc2 schemas cannot state (spec section in each message).

/** RFC 6838 media type, as image-spec 1.1's defs-descriptor.json states it. */
export const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;

export const MT = {
  index: 'application/vnd.oci.image.index.v1+json',
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  empty: 'application/vnd.oci.empty.v1+json',
  layers: new Set([
    'application/vnd.oci.image.layer.v1.tar',
    'application/vnd.oci.image.layer.v1.tar+gzip',
    'application/vnd.oci.image.layer.v1.tar+zstd',
  ]),
};

/** descriptor.md "Digests": algorithm ":" encoded; sha256 is 64 lower-case hex. */
export function digestProblem(d: unknown): string | undefined {
  if (typeof d !== 'string') return `digest ${String(d)} is not a string`;
  const m = /^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$/.exec(d);
  if (!m) return `digest ${d} does not match descriptor.md's grammar`;
  if (m[1] === 'sha256' && !/^[a-f0-9]{64}$/.test(m[2]!)) return `digest ${d}: sha256 must be 64 lower-case hex (descriptor.md "SHA-256")`;
  if (m[1] === 'sha512' && !/^[a-f0-9]{128}$/.test(m[2]!)) return `digest ${d}: sha512 must be 128 lower-case hex`;
  return undefined;
}

/** RFC 3339 date-time (annotations.md for org.opencontainers.image.created, config.md for created). */
export const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

type Json = Record<string, any>;

/** descriptor.md: properties every descriptor must satisfy beyond the schema. */
export function descriptorProblems(where: string, d: Json): string[] {
  const out: string[] = [];
  const dp = digestProblem(d['digest']);
  if (dp) out.push(`${where}: ${dp}`);
  if (!Number.isSafeInteger(d['size']) || d['size'] < 0) out.push(`${where}: size ${d['size']} is not a non-negative int64`);
  if ('artifactType' in d && !MEDIA_TYPE.test(String(d['artifactType']))) out.push(`${where}: artifactType ${d['artifactType']} is not an RFC 6838 media type (descriptor.md)`);
  if ('data' in d) {
    // descriptor.md "Embedded content": base64 of exactly the content the digest names.
    out.push(`${where}: data is present (distill never embeds content)`);
  }
  out.push(...annotationProblems(where, d['annotations']));
  return out;
}

/** annotations.md: a string-to-string map; org.opencontainers.image.created is RFC 3339. */
export function annotationProblems(where: string, ann: unknown): string[] {
  const out: string[] = [];
  if (ann === undefined) return out;
  if (ann === null || typeof ann !== 'object' || Array.isArray(ann)) return [`${where}: annotations must be a map`];
  for (const [k, v] of Object.entries(ann)) if (typeof v !== 'string') out.push(`${where}: annotation ${k} is not a string (annotations.md)`);
  // annotations.md: org.opencontainers.image.ref.name follows the grammar
  // ref ::= component ("/" component)*, component ::= alphanum (separator alphanum)*, separator ::= [-._:@+] | "--".
  const ref = (ann as Json)['org.opencontainers.image.ref.name'];
  if (ref !== undefined && !/^[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*(?:\/[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*)*$/.test(ref)) {
    out.push(`${where}: org.opencontainers.image.ref.name ${ref} does not match annotations.md's grammar`);
  }
  const created = (ann as Json)['org.opencontainers.image.created'];
  if (created !== undefined && !RFC3339.test(created)) out.push(`${where}: org.opencontainers.image.created ${created} is not RFC 3339 (annotations.md)`);
  return out;
}

/** platform (image-index.md): os and architecture from Go's GOOS/GOARCH lists; variant as the spec's table. */
const GOARCH = new Set(['386', 'amd64', 'arm', 'arm64', 'ppc64le', 'ppc64', 'mips64le', 'mips64', 'mipsle', 'mips', 's390x', 'riscv64', 'loong64', 'wasm']);
const VARIANTS: Record<string, Set<string>> = { arm: new Set(['v6', 'v7', 'v8']), arm64: new Set(['v8']) };
export function platformProblems(where: string, p: Json): string[] {
  const out: string[] = [];
  if (p['os'] !== 'linux') out.push(`${where}: platform.os ${p['os']} (distill builds linux images)`);
  if (!GOARCH.has(p['architecture'])) out.push(`${where}: platform.architecture ${p['architecture']} is not a GOARCH value (image-index.md)`);
  if (p['variant'] !== undefined && !VARIANTS[p['architecture']]?.has(p['variant'])) out.push(`${where}: variant ${p['variant']} is not one the spec lists for ${p['architecture']}`);
  return out;
}

/**
 * Walk an image graph from `roots` (descriptors), reading each blob with `read`, and return every
 * problem: each index, manifest and config against image-spec's schemas, and the rules they cannot
 * state (manifest.md, image-index.md, config.md, descriptor.md of image-spec 1.1). `seen` counts what
 * was checked, so a test can tell that the walk reached everything.
 */
export function ociGraphProblems(
  v: ImageSpecValidators,
  roots: readonly Json[],
  read: (digest: string) => Buffer,
  seen: { indexes: number; manifests: number; configs: number; layers: number } = { indexes: 0, manifests: 0, configs: 0, layers: 0 },
  /**
   * Layer media types accepted besides image layers under an image config: image-spec's validator.go
   * only warns on others, and cosign's .sig/.att manifests (the shape containers/image requires:
   * formats.md b, c) carry simple-signing and DSSE layers under an image config.
   */
  otherLayerTypes: ReadonlySet<string> = new Set(),
): string[] {
  const out: string[] = [];
  const sha256 = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
  const done = new Set<string>();
  const blob = (where: string, d: Json): Buffer | undefined => {
    let b: Buffer;
    try {
      b = read(d['digest']);
    } catch (e) {
      out.push(`${where}: blob ${d['digest']} cannot be read: ${(e as Error).message}`);
      return undefined;
    }
    // descriptor.md "Digests" and "size": the bytes must hash to the digest and have exactly that size.
    if (sha256(b) !== d['digest']) out.push(`${where}: blob does not hash to ${d['digest']}`);
    if (b.length !== d['size']) out.push(`${where}: size ${d['size']} but the blob has ${b.length} bytes`);
    return b;
  };
  const parse = (where: string, b: Buffer): Json | undefined => {
    try {
      return JSON.parse(b.toString('utf8')) as Json;
    } catch (e) {
      out.push(`${where}: not JSON: ${(e as Error).message}`);
      return undefined;
    }
  };
  const visit = (where: string, d: Json): void => {
    out.push(...problems(v.descriptor, d).map((p) => `${where} (descriptor): ${p}`));
    out.push(...descriptorProblems(where, d));
    if (d['platform'] !== undefined) out.push(...platformProblems(where, d['platform']));
    if (done.has(d['digest'])) return;
    done.add(d['digest']);
    const b = blob(where, d);
    if (!b) return;
    const doc = parse(where, b);
    if (!doc) return;
    // manifest.md / image-index.md: `mediaType` SHOULD be used and, when used, MUST equal the
    // descriptor's media type (distill always writes it).
    if (doc['mediaType'] !== d['mediaType']) out.push(`${where}: document mediaType ${doc['mediaType']} but the descriptor says ${d['mediaType']}`);
    if (d['mediaType'] === MT.index) {
      seen.indexes++;
      out.push(...problems(v.index, doc).map((p) => `${where} (index): ${p}`));
      out.push(...artifactProblems(v, where, doc));
      for (const [i, m] of (doc['manifests'] as Json[]).entries()) {
        // image-index.md: manifests are image manifests or indexes (validator.go warns on others).
        if (m['mediaType'] !== MT.manifest && m['mediaType'] !== MT.index) out.push(`${where}/manifests/${i}: unknown media type ${m['mediaType']}`);
        visit(`${where}/manifests/${i}`, m);
      }
    } else if (d['mediaType'] === MT.manifest) {
      seen.manifests++;
      out.push(...problems(v.manifest, doc).map((p) => `${where} (manifest): ${p}`));
      out.push(...artifactProblems(v, where, doc));
      const config = doc['config'] as Json;
      const cb = blob(`${where}/config`, config);
      out.push(...descriptorProblems(`${where}/config`, config));
      if (cb && config['mediaType'] === MT.config) {
        seen.configs++;
        const c = parse(`${where}/config`, cb);
        if (c) out.push(...configProblems(`${where}/config`, v, c, doc['layers'] as Json[], d['platform']));
      } else if (cb && config['mediaType'] === MT.empty && cb.toString() !== '{}') {
        out.push(`${where}/config: the empty descriptor's blob must be {} (manifest.md "Guidance for an Empty Descriptor")`);
      }
      for (const [i, l] of (doc['layers'] as Json[]).entries()) {
        out.push(...problems(v.descriptor, l).map((p) => `${where}/layers/${i} (descriptor): ${p}`));
        out.push(...descriptorProblems(`${where}/layers/${i}`, l));
        const lb = blob(`${where}/layers/${i}`, l);
        if (lb) seen.layers++;
        if (config['mediaType'] === MT.config && !MT.layers.has(l['mediaType']) && !otherLayerTypes.has(l['mediaType'])) out.push(`${where}/layers/${i}: ${l['mediaType']} is not an image layer media type (manifest.md)`);
      }
    } else {
      out.push(`${where}: ${d['mediaType']} is neither an image index nor an image manifest`);
    }
  };
  for (const [i, r] of roots.entries()) visit(`root ${i}${r['annotations']?.['org.opencontainers.image.ref.name'] ? ` (${r['annotations']['org.opencontainers.image.ref.name']})` : ''}`, r);
  return out;
}

/** manifest.md / image-index.md 1.1: artifactType and subject. */
function artifactProblems(v: ImageSpecValidators, where: string, doc: Json): string[] {
  const out: string[] = [];
  if (doc['schemaVersion'] !== 2) out.push(`${where}: schemaVersion must be 2`);
  out.push(...annotationProblems(where, doc['annotations']));
  if ('artifactType' in doc) {
    if (typeof doc['artifactType'] !== 'string' || !MEDIA_TYPE.test(doc['artifactType'])) {
      out.push(`${where}: artifactType ${doc['artifactType']} is not an RFC 6838 media type`);
    }
    // manifest.md: artifactType MUST be set when config.mediaType is the empty value, and an artifact
    // manifest's config SHOULD then be the empty descriptor.
  } else if (doc['config']?.['mediaType'] === MT.empty) {
    out.push(`${where}: config is ${MT.empty} but artifactType is missing (manifest.md: MUST)`);
  }
  if ('subject' in doc) {
    const s = doc['subject'] as Json;
    // 1.1's schemas: subject is a content descriptor.
    out.push(...problems(v.descriptor, s).map((p) => `${where}/subject (descriptor): ${p}`));
    out.push(...descriptorProblems(`${where}/subject`, s));
    if (s['mediaType'] !== MT.manifest && s['mediaType'] !== MT.index) out.push(`${where}/subject: mediaType ${s['mediaType']}`);
  }
  return out;
}

/** config.md rules beyond its schema. */
function configProblems(where: string, v: ImageSpecValidators, c: Json, layers: Json[], platform: Json | undefined): string[] {
  const out = problems(v.config, c).map((p) => `${where} (config): ${p}`);
  // config.md: created and history[].created are RFC 3339 (section 5.6) date-times.
  if (c['created'] !== undefined && !RFC3339.test(c['created'])) out.push(`${where}: created ${c['created']} is not RFC 3339`);
  const diffIds = (c['rootfs']?.['diff_ids'] ?? []) as string[];
  // config.md rootfs.diff_ids: one per layer, in order (the uncompressed layers' digests).
  if (diffIds.length !== layers.length) out.push(`${where}: ${diffIds.length} diff_ids for ${layers.length} layers`);
  for (const d of diffIds) { const p = digestProblem(d); if (p) out.push(`${where}: diff_id ${p}`); }
  // config.md history: one entry per layer plus empty_layer entries.
  const history = (c['history'] ?? []) as Json[];
  if (history.length > 0) {
    const nonEmpty = history.filter((h) => h['empty_layer'] !== true).length;
    if (nonEmpty !== layers.length) out.push(`${where}: ${nonEmpty} non-empty history entries for ${layers.length} layers`);
    for (const h of history) if (h['created'] !== undefined && !RFC3339.test(h['created'])) out.push(`${where}: history created ${h['created']} is not RFC 3339`);
  }
  // image-index.md: the platform named in the index is the config's.
  if (platform) {
    for (const k of ['architecture', 'os', 'variant', 'os.version'] as const) {
      if (platform[k] !== c[k]) out.push(`${where}: platform.${k} ${platform[k]} but the config says ${c[k]}`);
    }
  }
  // config.md: Env entries are VARNAME=VARVALUE.
  for (const e of (c['config']?.['Env'] ?? []) as string[]) if (!/^[^=]+=/.test(e)) out.push(`${where}: Env entry ${e} is not VARNAME=VARVALUE`);
  return out;
}

// ---------------------------------------------------------------------------------------------------
// in-toto Attestation Framework v1 (spec/v1: statement.md, resource_descriptor.md, field_types.md) and
// SLSA Provenance v1 (slsa.dev/spec/v1.0/provenance). No npm or Debian package ships a schema for
// them (in-toto/attestation publishes protobufs only; @sigstore/protobuf-specs has the DSSE envelope
// and the bundle, not the statement), so their field rules are re-stated here, section by section.

const isObject = (x: unknown): x is Json => x !== null && typeof x === 'object' && !Array.isArray(x);
/** field_types.md TypeURI / ResourceURI: an RFC 3986 URI (scheme ":" …). */
const URI = /^[A-Za-z][A-Za-z0-9+.-]*:[^\s]*$/;
/** field_types.md Timestamp: RFC 3339 in UTC ("Z"). */
const UTC_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/;
/** field_types.md DigestSet: algorithm → lower-case hex (for the hex algorithms). */
const HEX_LENGTH: Record<string, number> = { sha256: 64, sha224: 56, sha384: 96, sha512: 128, sha1: 40, md5: 32, sha512_224: 56, sha512_256: 64, sha3_224: 56, sha3_256: 64, sha3_384: 96, sha3_512: 128, gitCommit: 40 };

export function digestSetProblems(where: string, d: unknown): string[] {
  if (!isObject(d) || Object.keys(d).length === 0) return [`${where}: digest must be a non-empty map (DigestSet)`];
  const out: string[] = [];
  for (const [alg, hex] of Object.entries(d)) {
    if (typeof hex !== 'string') { out.push(`${where}: digest.${alg} is not a string`); continue; }
    const n = HEX_LENGTH[alg];
    if (n !== undefined && !new RegExp(`^[a-f0-9]{${n}}$`).test(hex)) out.push(`${where}: digest.${alg} ${hex} is not ${n} lower-case hex digits (field_types.md DigestSet)`);
  }
  return out;
}

/** resource_descriptor.md: at least one of uri, digest, content; typed fields. */
export function resourceDescriptorProblems(where: string, rd: unknown): string[] {
  if (!isObject(rd)) return [`${where}: not an object`];
  const out: string[] = [];
  const known = new Set(['uri', 'digest', 'content', 'name', 'downloadLocation', 'mediaType', 'annotations']);
  for (const k of Object.keys(rd)) if (!known.has(k)) out.push(`${where}: unknown field ${k} (resource_descriptor.md)`);
  if (rd['uri'] === undefined && rd['digest'] === undefined && rd['content'] === undefined) out.push(`${where}: one of uri, digest, content is REQUIRED`);
  for (const k of ['uri', 'downloadLocation'] as const) if (rd[k] !== undefined && (typeof rd[k] !== 'string' || !URI.test(rd[k]))) out.push(`${where}: ${k} ${rd[k]} is not a URI`);
  for (const k of ['name', 'mediaType'] as const) if (rd[k] !== undefined && typeof rd[k] !== 'string') out.push(`${where}: ${k} is not a string`);
  if (rd['content'] !== undefined && (typeof rd['content'] !== 'string' || !/^[A-Za-z0-9+/]*={0,2}$/.test(rd['content']))) out.push(`${where}: content is not base64`);
  if (rd['digest'] !== undefined) out.push(...digestSetProblems(where, rd['digest']));
  if (rd['annotations'] !== undefined && !isObject(rd['annotations'])) out.push(`${where}: annotations must be a map`);
  return out;
}

/** statement.md: _type, subject (each with a digest), predicateType, predicate. */
export function statementProblems(s: unknown): string[] {
  if (!isObject(s)) return ['statement is not an object'];
  const out: string[] = [];
  for (const k of Object.keys(s)) if (!['_type', 'subject', 'predicateType', 'predicate'].includes(k)) out.push(`statement: unknown field ${k}`);
  if (s['_type'] !== 'https://in-toto.io/Statement/v1') out.push(`statement: _type ${s['_type']} is not https://in-toto.io/Statement/v1`);
  if (!Array.isArray(s['subject']) || s['subject'].length === 0) out.push('statement: subject must be a non-empty list');
  else {
    const names = new Set<string>();
    for (const [i, sub] of (s['subject'] as unknown[]).entries()) {
      out.push(...resourceDescriptorProblems(`subject[${i}]`, sub));
      // statement.md: each subject MUST have a digest; names SHOULD be unique.
      if (!isObject(sub) || sub['digest'] === undefined) out.push(`subject[${i}]: digest is REQUIRED`);
      if (isObject(sub) && typeof sub['name'] === 'string') {
        if (names.has(sub['name'])) out.push(`subject[${i}]: name ${sub['name']} repeated`);
        names.add(sub['name']);
      }
    }
  }
  if (typeof s['predicateType'] !== 'string' || !URI.test(s['predicateType'])) out.push(`statement: predicateType ${s['predicateType']} is not a TypeURI`);
  if (s['predicate'] !== undefined && !isObject(s['predicate'])) out.push('statement: predicate must be an object');
  return out;
}

/** SLSA Provenance v1 (slsa.dev/spec/v1.0/provenance): buildDefinition and runDetails. */
export function slsaProvenanceProblems(p: unknown): string[] {
  if (!isObject(p)) return ['predicate is not an object'];
  const out: string[] = [];
  for (const k of Object.keys(p)) if (!['buildDefinition', 'runDetails'].includes(k)) out.push(`predicate: unknown field ${k}`);
  const bd = p['buildDefinition'];
  if (!isObject(bd)) out.push('buildDefinition is REQUIRED');
  else {
    for (const k of Object.keys(bd)) if (!['buildType', 'externalParameters', 'internalParameters', 'resolvedDependencies'].includes(k)) out.push(`buildDefinition: unknown field ${k}`);
    if (typeof bd['buildType'] !== 'string' || !URI.test(bd['buildType'])) out.push(`buildDefinition.buildType ${bd['buildType']} is not a TypeURI (REQUIRED)`);
    if (!isObject(bd['externalParameters'])) out.push('buildDefinition.externalParameters must be an object (REQUIRED)');
    if (bd['internalParameters'] !== undefined && !isObject(bd['internalParameters'])) out.push('buildDefinition.internalParameters must be an object');
    if (bd['resolvedDependencies'] !== undefined) {
      if (!Array.isArray(bd['resolvedDependencies'])) out.push('buildDefinition.resolvedDependencies must be a list');
      else for (const [i, rd] of (bd['resolvedDependencies'] as unknown[]).entries()) out.push(...resourceDescriptorProblems(`resolvedDependencies[${i}]`, rd));
    }
  }
  const rd = p['runDetails'];
  if (!isObject(rd)) out.push('runDetails is REQUIRED');
  else {
    for (const k of Object.keys(rd)) if (!['builder', 'metadata', 'byproducts'].includes(k)) out.push(`runDetails: unknown field ${k}`);
    const b = rd['builder'];
    if (!isObject(b)) out.push('runDetails.builder is REQUIRED');
    else {
      for (const k of Object.keys(b)) if (!['id', 'version', 'builderDependencies'].includes(k)) out.push(`builder: unknown field ${k}`);
      if (typeof b['id'] !== 'string' || !URI.test(b['id'])) out.push(`builder.id ${b['id']} is not a TypeURI (REQUIRED)`);
      if (b['version'] !== undefined && (!isObject(b['version']) || Object.values(b['version']).some((x) => typeof x !== 'string'))) out.push('builder.version must be a map of strings');
      if (b['builderDependencies'] !== undefined) for (const [i, d] of ((b['builderDependencies'] as unknown[]) ?? []).entries()) out.push(...resourceDescriptorProblems(`builderDependencies[${i}]`, d));
    }
    const m = rd['metadata'];
    if (m !== undefined) {
      if (!isObject(m)) out.push('runDetails.metadata must be an object');
      else {
        for (const k of Object.keys(m)) if (!['invocationId', 'startedOn', 'finishedOn'].includes(k)) out.push(`metadata: unknown field ${k} (note the spelling invocationId)`);
        if (m['invocationId'] !== undefined && typeof m['invocationId'] !== 'string') out.push('metadata.invocationId must be a string');
        for (const k of ['startedOn', 'finishedOn'] as const) if (m[k] !== undefined && (typeof m[k] !== 'string' || !UTC_TIMESTAMP.test(m[k]))) out.push(`metadata.${k} ${m[k]} is not an RFC 3339 UTC timestamp`);
        if (typeof m['startedOn'] === 'string' && typeof m['finishedOn'] === 'string' && m['startedOn'] > m['finishedOn']) out.push('metadata: finishedOn before startedOn');
      }
    }
    if (rd['byproducts'] !== undefined) for (const [i, d] of ((rd['byproducts'] as unknown[]) ?? []).entries()) out.push(...resourceDescriptorProblems(`byproducts[${i}]`, d));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// DSSE (secure-systems-lab/dsse envelope.md, protocol.md) and cosign's simple signing payload as
// containers/image parses it (strictly: exactly these keys; formats.md b).

/** envelope.md: payloadType, payload (base64), signatures [{keyid?, sig (base64)}], nothing else. */
export function dsseEnvelopeProblems(e: unknown): string[] {
  if (!isObject(e)) return ['envelope is not an object'];
  const out: string[] = [];
  const b64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
  for (const k of Object.keys(e)) if (!['payloadType', 'payload', 'signatures'].includes(k)) out.push(`envelope: unknown field ${k}`);
  if (typeof e['payloadType'] !== 'string' || e['payloadType'] === '') out.push('envelope: payloadType is REQUIRED');
  if (typeof e['payload'] !== 'string' || !b64.test(e['payload'])) out.push('envelope: payload must be base64');
  if (!Array.isArray(e['signatures']) || e['signatures'].length === 0) out.push('envelope: signatures must be a non-empty list');
  else for (const [i, s] of (e['signatures'] as unknown[]).entries()) {
    if (!isObject(s)) { out.push(`signatures[${i}]: not an object`); continue; }
    for (const k of Object.keys(s)) if (!['keyid', 'sig'].includes(k)) out.push(`signatures[${i}]: unknown field ${k}`);
    if (typeof s['sig'] !== 'string' || s['sig'] === '' || !b64.test(s['sig'])) out.push(`signatures[${i}]: sig must be non-empty base64`);
    if (s['keyid'] !== undefined && typeof s['keyid'] !== 'string') out.push(`signatures[${i}]: keyid must be a string`);
  }
  return out;
}

/** protocol.md: PAE(type, body) = "DSSEv1" SP LEN(type) SP type SP LEN(body) SP body, lengths in bytes. */
export function pae(payloadType: string, body: Buffer): Buffer {
  const t = Buffer.from(payloadType, 'utf8');
  return Buffer.concat([Buffer.from(`DSSEv1 ${t.length} `), t, Buffer.from(` ${body.length} `), body]);
}

/** containers/image's strict simple-signing parser (signature/simplesigning): exact keys, typed values. */
export function simpleSigningProblems(p: unknown, manifestDigest: string): string[] {
  if (!isObject(p)) return ['payload is not an object'];
  const out: string[] = [];
  const exact = (where: string, o: unknown, keys: string[]): o is Json => {
    if (!isObject(o)) { out.push(`${where} is not an object`); return false; }
    const have = Object.keys(o).sort().join(',');
    if (have !== [...keys].sort().join(',')) out.push(`${where} has keys ${have}, want exactly ${keys.join(',')}`);
    return true;
  };
  exact('payload', p, ['critical', 'optional']);
  if (p['optional'] !== null && !isObject(p['optional'])) out.push('optional must be null or an object');
  const c = p['critical'];
  if (exact('critical', c, ['identity', 'image', 'type'])) {
    if (c['type'] !== 'cosign container image signature') out.push(`critical.type ${c['type']}`);
    if (exact('critical.image', c['image'], ['docker-manifest-digest']) && c['image']['docker-manifest-digest'] !== manifestDigest) out.push(`docker-manifest-digest ${c['image']['docker-manifest-digest']} is not ${manifestDigest}`);
    if (exact('critical.identity', c['identity'], ['docker-reference']) && (typeof c['identity']['docker-reference'] !== 'string' || c['identity']['docker-reference'] === '')) out.push('docker-reference must be a non-empty string');
  }
  return out;
}
