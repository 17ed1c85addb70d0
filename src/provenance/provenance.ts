// SLSA provenance v1 (https://slsa.dev/spec/v1.0/provenance) for a distill build, as an in-toto
// Statement v1. It records everything a consumer needs to rebuild the image without a checkout — the
// definitions and locks inline (with their digests), the variants, platforms and timestamp, distill's
// version and every setting that can change bytes — and every .deb as a resolved dependency.
// startedOn/finishedOn/invocationId describe this run only; nothing in the images depends on them.
import { sha256Hex } from '../digest.js';
import type { LockedImage } from '../lock/load.js';
import { DISTILL_VERSION, LAYER_FORMAT } from '../version.js';
import { SLSA_PROVENANCE_V1, STATEMENT_V1, type ResourceDescriptor } from './statement.js';
import { debPurl } from './sbom.js';

/**
 * distill's build type: what externalParameters, internalParameters and resolvedDependencies mean, with
 * their JSON schema and a complete example — docs/buildtypes/image/v1.md in this repository, published
 * at this URI (the URI's path is the document's path under docs/).
 */
export const DISTILL_BUILD_TYPE = 'https://distill.dev/buildtypes/image/v1';
export const DISTILL_BUILDER_ID = 'https://distill.dev/builders/cli';

export interface ProvenanceInput {
  chain: readonly LockedImage[];
  /** The definition and lock texts, exactly as read (the digests are over these bytes). */
  texts: { definition: string; lock: string }[];
  subjects: { name: string; digest: string }[];
  variants: readonly string[];
  platforms: readonly string[];
  sourceDateEpoch?: number;
  source?: { repository?: string; revision?: string };
  /** build --base-repository: where the base images are published (it names them in base.name). */
  baseRepository?: string;
  /** "<ID>-<VERSION_ID>" of the built images' os-release (the purls' distro qualifier), when known. */
  distro?: string;
  settings: Record<string, unknown>;
  invocationId: string;
  startedOn: Date;
  finishedOn: Date;
}

export interface ProvenanceExternalParameters {
  image: string;
  definitions: { image: string; path: string; content: string; digest: { sha256: string } }[];
  locks: { image: string; path: string; content: string; digest: { sha256: string } }[];
  variants: string[];
  platforms: string[];
  sourceDateEpoch?: number;
  source?: { repository?: string; revision?: string };
  baseRepository?: string;
}

function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

export function buildProvenance(input: ProvenanceInput): object {
  const top = input.chain[input.chain.length - 1]!;
  const definitions = input.chain.map((li, i) => ({
    image: li.definition.name,
    path: `images/${li.definition.name}/image.yaml`,
    content: input.texts[i]!.definition,
    digest: { sha256: sha256Hex(input.texts[i]!.definition) },
  }));
  const locks = input.chain.map((li, i) => ({
    image: li.definition.name,
    path: `images/${li.definition.name}/image.lock.json`,
    content: input.texts[i]!.lock,
    digest: { sha256: sha256Hex(input.texts[i]!.lock) },
  }));
  // Every .deb, named by its purl (purl-spec type deb, as the SBOMs name it) with its sha256; the pool
  // path, archive and suite as annotations (no mirror URL: the lock records none, by design).
  const debs = new Map<string, ResourceDescriptor>();
  // The signed InRelease of every archive the locks resolved from: digest and the fingerprints of the
  // keys whose signatures verified when the lock was made — the root of trust of every .deb digest.
  const releases = new Map<string, ResourceDescriptor>();
  for (const li of input.chain) {
    for (const [name, src] of Object.entries(li.lock.sources)) {
      const path = `dists/${src.suite}/InRelease`;
      releases.set(`${name} ${src.inRelease.sha256}`, {
        uri: `distill:archive/${name}/${path}`,
        name: `${name}/${path}`,
        digest: { sha256: src.inRelease.sha256 },
        mediaType: 'text/plain',
        annotations: {
          archive: name,
          suite: src.suite,
          components: [...src.components],
          date: src.date,
          ...(src.validUntil !== undefined ? { validUntil: src.validUntil } : {}),
          size: src.inRelease.size,
          signedBy: [...src.signedBy].sort(),
        },
      } as ResourceDescriptor);
    }
    for (const [arch, a] of Object.entries(li.lock.architectures)) {
      if (!input.platforms.includes(arch)) continue;
      for (const p of [...a.packages, ...(a.borrow ?? []), ...(a.debug ?? [])]) {
        const upstream = p.source !== p.name || p.sourceVersion !== p.version
          ? { name: p.source, ...(p.sourceVersion !== p.version ? { version: p.sourceVersion } : {}) }
          : undefined;
        debs.set(p.sha256, {
          uri: debPurl(p.name, p.version, p.architecture, { ...(input.distro ? { distro: input.distro } : {}), ...(upstream ? { upstream } : {}) }),
          name: p.name,
          digest: { sha256: p.sha256 },
          annotations: { version: p.version, architecture: p.architecture, archive: p.archive, suite: li.lock.sources[p.archive]?.suite ?? '', filename: p.filename },
        } as ResourceDescriptor);
      }
    }
  }
  const externalParameters: ProvenanceExternalParameters = {
    image: top.definition.name,
    definitions,
    locks,
    variants: [...input.variants],
    platforms: [...input.platforms],
    ...(input.sourceDateEpoch !== undefined ? { sourceDateEpoch: input.sourceDateEpoch } : {}),
    ...(input.source && (input.source.repository || input.source.revision) ? { source: input.source } : {}),
    ...(input.baseRepository !== undefined ? { baseRepository: input.baseRepository } : {}),
  };
  return {
    _type: STATEMENT_V1,
    subject: [...input.subjects].sort((a, b) => (a.name < b.name ? -1 : 1)).map((s) => ({ name: s.name, digest: { sha256: s.digest.replace(/^sha256:/, '') } })),
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: DISTILL_BUILD_TYPE,
        externalParameters,
        internalParameters: { distill: DISTILL_VERSION, layerFormat: LAYER_FORMAT, ...input.settings },
        resolvedDependencies: [
          ...definitions.map((d) => ({ uri: `distill:${d.path}`, name: d.path, digest: d.digest })),
          ...locks.map((l) => ({ uri: `distill:${l.path}`, name: l.path, digest: l.digest })),
          ...[...releases.values()].sort((a, b) => ((a.name ?? '') < (b.name ?? '') ? -1 : 1)),
          ...[...debs.values()].sort((a, b) => ((a.uri as string) < (b.uri as string) ? -1 : (a.uri as string) > (b.uri as string) ? 1 : 0)),
        ],
      },
      runDetails: {
        builder: { id: DISTILL_BUILDER_ID, version: { distill: DISTILL_VERSION } },
        metadata: { invocationId: input.invocationId, startedOn: rfc3339(input.startedOn), finishedOn: rfc3339(input.finishedOn) },
      },
    },
  };
}

/** SLSA v1's field rules for what distill writes: required fields, RFC 3339 times, digest maps. */
export function validateProvenance(statement: unknown): string[] {
  const problems: string[] = [];
  const s = statement as Record<string, any> | null;
  const hex = /^[0-9a-f]{64}$/;
  const time = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/;
  if (!s || typeof s !== 'object') return ['not an object'];
  if (s['_type'] !== STATEMENT_V1) problems.push('_type is not in-toto Statement v1');
  if (!Array.isArray(s['subject']) || s['subject'].length === 0) problems.push('no subject');
  for (const [i, sub] of (s['subject'] ?? []).entries()) {
    if (!sub?.digest || typeof sub.digest !== 'object' || Object.keys(sub.digest).length === 0) problems.push(`subject[${i}] has no digest`);
    if (sub?.digest?.sha256 !== undefined && !hex.test(sub.digest.sha256)) problems.push(`subject[${i}].digest.sha256 is not 64 hex`);
  }
  if (s['predicateType'] !== SLSA_PROVENANCE_V1) problems.push('predicateType is not SLSA provenance v1');
  const p = s['predicate'];
  const bd = p?.buildDefinition;
  if (typeof bd?.buildType !== 'string' || !/^[a-z]+:/.test(bd.buildType)) problems.push('buildDefinition.buildType is not a URI');
  if (!bd?.externalParameters || typeof bd.externalParameters !== 'object') problems.push('buildDefinition.externalParameters missing');
  for (const [i, d] of (bd?.resolvedDependencies ?? []).entries()) {
    if (d.uri === undefined && d.digest === undefined && d.content === undefined) problems.push(`resolvedDependencies[${i}] has none of uri, digest, content`);
    for (const [alg, v] of Object.entries(d.digest ?? {})) if (alg === 'sha256' && !hex.test(String(v))) problems.push(`resolvedDependencies[${i}].digest.sha256 is not 64 hex`);
  }
  const rd = p?.runDetails;
  if (typeof rd?.builder?.id !== 'string' || !/^[a-z]+:/.test(rd.builder.id)) problems.push('runDetails.builder.id is not a URI');
  for (const k of ['startedOn', 'finishedOn']) {
    const v = rd?.metadata?.[k];
    if (v !== undefined && !time.test(v)) problems.push(`runDetails.metadata.${k} is not RFC 3339 UTC`);
  }
  return problems;
}
