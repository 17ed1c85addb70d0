// `distill rebuild`: anyone can check a published image. Take its SLSA provenance (from a signed
// attestation in a registry — verified against the given key — or from an OCI layout), rebuild every
// recorded variant and platform from the definitions and locks it carries inline (no checkout), and
// compare digests with the published ones. On a mismatch, name the first differing layer and every
// differing file in it, and every differing config field.
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { verifyAttestation } from './attest/attest.js';
import { ATTESTATIONS_DIR, buildImage, PROVENANCE_FILE } from './build.js';
import { isVariant } from './definition/variants.js';
import type { MirrorInputs } from './debian/mirrors.js';
import type { Variant } from './definition/types.js';
import { sha256Hex } from './digest.js';
import { DistillError } from './errors.js';
import type { OnProgress } from './events.js';
import type { ProvenanceExternalParameters } from './provenance/provenance.js';
import { DISTILL_BUILD_TYPE } from './provenance/provenance.js';
import { SLSA_PROVENANCE_V1 } from './provenance/statement.js';
import { compareImages, formatComparison, type ImageComparison } from './rebuild/compare.js';
import type { RegistryOptions } from './registry/client.js';
import { pullImage } from './registry/pull.js';
import { parseReference } from './registry/reference.js';

export interface RebuildOptions extends RegistryOptions {
  cacheDir: string;
  mirrors?: MirrorInputs;
  /** Verifies the provenance attestation of a registry image (required for a reference). */
  publicKey?: KeyObject;
  workDir?: string;
  onProgress?: OnProgress;
}

export interface RebuiltManifest {
  name: string;
  published: string;
  rebuilt: string;
  identical: boolean;
  comparison?: ImageComparison;
}

export interface RebuildResult {
  identical: boolean;
  image: string;
  /** Every subject of the provenance: variants' indexes and platform manifests. */
  subjects: RebuiltManifest[];
  /** Human-readable: "identical", or what differs. */
  report: string;
}

interface ProvenanceStatement {
  subject: { name: string; digest: { sha256: string } }[];
  predicateType: string;
  predicate: { buildDefinition: { buildType: string; externalParameters: ProvenanceExternalParameters } };
}

function invalid(message: string, hint?: string): DistillError {
  return new DistillError('PROVENANCE_INVALID', message, { hint: hint ?? 'the provenance cannot be trusted to rebuild this image' });
}

const NAME = /^[a-z0-9][a-z0-9._-]*$/;

/** Checks a provenance statement before anything from it is used (it came from the publisher). */
export function checkProvenance(s: unknown): ProvenanceStatement {
  const st = s as ProvenanceStatement;
  if (st?.predicateType !== SLSA_PROVENANCE_V1) throw invalid(`not SLSA provenance v1 (predicateType ${JSON.stringify(st?.predicateType)})`);
  if (!Array.isArray(st.subject) || st.subject.length === 0 || !st.subject.every((x) => typeof x?.name === 'string' && /^[0-9a-f]{64}$/.test(String(x?.digest?.sha256)))) {
    throw invalid('its subject is not a non-empty list of named sha256 digests');
  }
  if (st.predicate?.buildDefinition?.buildType !== DISTILL_BUILD_TYPE) throw invalid(`not a distill build (buildType ${JSON.stringify(st.predicate?.buildDefinition?.buildType)})`);
  const ext = st.predicate.buildDefinition.externalParameters;
  if (!ext || !Array.isArray(ext.definitions) || !Array.isArray(ext.locks) || ext.definitions.length === 0 || ext.definitions.length !== ext.locks.length) {
    throw invalid('its externalParameters do not carry the definitions and locks');
  }
  // Names become directory names in the scratch directory: attacker-controlled, so checked.
  if (typeof ext.image !== 'string' || !NAME.test(ext.image) || ext.definitions[ext.definitions.length - 1]?.image !== ext.image) {
    throw invalid(`its image ${JSON.stringify(ext.image)} is not the last of its definitions`);
  }
  if (!Array.isArray(ext.variants) || ext.variants.length === 0 || !ext.variants.every((v) => isVariant(v))) throw invalid('its variants are not distill variants');
  if (!Array.isArray(ext.platforms) || ext.platforms.length === 0 || !ext.platforms.every((p) => typeof p === 'string' && /^[a-z0-9-]+$/.test(p))) throw invalid('its platforms are not Debian architectures');
  ext.definitions.forEach((d, i) => {
    const l = ext.locks[i]!;
    if (typeof d.image !== 'string' || !NAME.test(d.image) || l.image !== d.image) throw invalid(`definition ${i} (${JSON.stringify(d.image)}) and its lock do not name the same image`);
    for (const x of [d, l]) {
      if (typeof x.content !== 'string' || sha256Hex(x.content) !== x.digest?.sha256) {
        throw new DistillError('PROVENANCE_MISMATCH', `the provenance's inline ${x.path} does not match its recorded digest ${x.digest?.sha256}`, { hint: 'the provenance was altered; do not trust this image' });
      }
    }
  });
  return st;
}

/** What a layout holds: ref name → digest, for the refs distill writes (<variant>, <variant>-<arch>). */
async function layoutRefs(dir: string): Promise<Map<string, string>> {
  let index: { manifests?: { digest?: string; annotations?: Record<string, string> }[] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  } catch (e) {
    throw new DistillError('OCI_INVALID', `${dir} has no readable index.json`, { cause: e, hint: 'rebuild a layout written by distill build --out' });
  }
  const refs = new Map<string, string>();
  for (const m of index.manifests ?? []) {
    const name = m.annotations?.['org.opencontainers.image.ref.name'];
    if (name && m.digest && /^sha256:[0-9a-f]{64}$/.test(m.digest)) refs.set(name, m.digest);
  }
  if (refs.size === 0) throw new DistillError('OCI_INVALID', `${dir} names no images`, { hint: 'rebuild a layout written by distill build --out' });
  return refs;
}

export async function rebuild(target: string, opts: RebuildOptions): Promise<RebuildResult> {
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'distill-rebuild-'));
  try {
    let statement: ProvenanceStatement;
    let registryTarget: { registry: string; repository: string; tag?: string; digest: string; covered: boolean } | undefined;
    const forced = target.startsWith('docker://');
    if (forced) target = target.slice('docker://'.length);
    if (!forced && existsSync(target) && statSync(target).isDirectory()) {
      if (opts.publicKey !== undefined) {
        throw new DistillError('USAGE', `${target} is a local directory: a layout's provenance is not signed, so --key would check nothing`, {
          hint: 'rebuild the layout without --key, or write a registry image as docker://REFERENCE',
        });
      }
      let raw: unknown;
      try {
        raw = JSON.parse(await readFile(join(target, ATTESTATIONS_DIR, PROVENANCE_FILE), 'utf8'));
      } catch (e) {
        throw new DistillError('PROVENANCE_INVALID', `${target} has no readable ${ATTESTATIONS_DIR}/${PROVENANCE_FILE}`, { cause: e, hint: 'rebuild a layout written by distill build --out' });
      }
      statement = checkProvenance(raw);
    } else {
      if (opts.publicKey === undefined) throw new DistillError('USAGE', "rebuilding a registry image needs the publisher's public key", { hint: 'pass --key cosign.pub' });
      const ref = parseReference(target);
      // Only a provenance signed by the publisher's key, about exactly this digest, is used.
      const verified = await verifyAttestation(target, { ...opts, publicKey: opts.publicKey, predicateType: SLSA_PROVENANCE_V1, anySubject: true });
      const covers = (st: unknown): boolean => (st as ProvenanceStatement).subject?.some((x) => `sha256:${x.digest?.sha256}` === verified.digest) ?? false;
      const covering = verified.statements.filter(covers);
      statement = checkProvenance(covering[covering.length - 1] ?? verified.statements[verified.statements.length - 1]);
      registryTarget = { registry: ref.registry, repository: ref.repository, ...(ref.tag ? { tag: ref.tag } : {}), digest: verified.digest, covered: covering.length > 0 };
    }
    const ext = statement.predicate.buildDefinition.externalParameters;
    // The definitions and locks, materialised as images/<name>/ exactly as they were.
    const images = join(work, 'images');
    for (let i = 0; i < ext.definitions.length; i++) {
      const d = ext.definitions[i]!;
      await mkdir(join(images, d.image), { recursive: true });
      await writeFile(join(images, d.image, 'image.yaml'), d.content);
      await writeFile(join(images, d.image, 'image.lock.json'), ext.locks[i]!.content);
    }
    const out = join(work, 'rebuilt');
    const result = await buildImage(join(images, ext.image, 'image.yaml'), {
      cacheDir: opts.cacheDir,
      ...(opts.mirrors ? { mirrors: opts.mirrors } : {}),
      outDir: out,
      variants: ext.variants as Variant[],
      platforms: ext.platforms,
      ...(ext.sourceDateEpoch !== undefined ? { sourceDateEpoch: ext.sourceDateEpoch } : {}),
      annotations: {
        ...(ext.source?.repository ? { source: ext.source.repository } : {}),
        ...(ext.source?.revision ? { revision: ext.source.revision } : {}),
        ...(typeof ext.baseRepository === 'string' ? { baseRepository: ext.baseRepository } : {}),
      },
      // A build with --compression zstd records it in the provenance's internal parameters (see buildSettings).
      ...((statement.predicate.buildDefinition as { internalParameters?: { compression?: unknown } }).internalParameters?.compression === 'zstd' ? { compression: 'zstd' as const } : {}),
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    const rebuilt = new Map<string, string>();
    for (const v of result.variants) {
      rebuilt.set(`${ext.image}:${v.variant}`, v.index);
      for (const m of v.manifests) rebuilt.set(`${ext.image}:${v.variant}-${m.arch}`, m.digest);
    }
    const subjects: RebuiltManifest[] = [];
    const lines: string[] = [];
    const platformNames = new Set(result.variants.flatMap((v) => v.manifests.map((m) => `${ext.image}:${v.variant}-${m.arch}`)));
    if (registryTarget === undefined) {
      // What the layout really holds is what is compared — never only what its (unsigned) provenance claims.
      const refs = await layoutRefs(target);
      const claimed = new Map(statement.subject.map((x) => [x.name, `sha256:${x.digest.sha256}`]));
      for (const [name, published] of [...refs].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
        const key = `${ext.image}:${name}`;
        const mine = rebuilt.get(key) ?? '(not rebuilt: the provenance does not record it)';
        const entry: RebuiltManifest = { name: key, published, rebuilt: mine, identical: mine === published };
        if (claimed.get(key) !== published) lines.push(`${key}: the layout holds ${published} but its provenance names ${claimed.get(key) ?? 'nothing'}`);
        if (!entry.identical && platformNames.has(key)) {
          entry.comparison = await compareImages({ dir: target, manifestDigest: published }, { dir: out, manifestDigest: mine });
          lines.push(`${key}: published ${published}, rebuilt ${mine}\n${formatComparison(entry.comparison, { expected: 'published', actual: 'rebuilt' })}`);
        } else if (!entry.identical) lines.push(`${key}: published ${published}, rebuilt ${mine}`);
        if (claimed.get(key) !== published) entry.identical = false;
        subjects.push(entry);
      }
    } else {
      // A registry image: its digest must be one this build produced. When it is not, compare it
      // platform by platform with the variant its tag names (latest when the tag is not a variant).
      const t = registryTarget;
      const match = [...rebuilt].find(([, d]) => d === t.digest);
      if (!t.covered) {
        // A signed provenance, but about another digest: this image is not what it describes (it was
        // altered after the build, or the attestation was copied from another image).
        const named = statement.subject.map((x) => `sha256:${x.digest.sha256}`).join(', ');
        lines.push(`the provenance attached to ${t.digest} names ${named}, not this image: it was altered after the build, or the attestation belongs to another image`);
      }
      if (match && t.covered) subjects.push({ name: match[0], published: t.digest, rebuilt: t.digest, identical: true });
      else {
        // Which variant the published digest claims to be: its name among the signed subjects, else its tag.
        const named = statement.subject.find((x) => `sha256:${x.digest.sha256}` === t.digest)?.name.split(':').pop();
        const variant = named !== undefined && ext.variants.includes(named) ? named : t.tag !== undefined && ext.variants.includes(t.tag) ? t.tag : 'latest';
        const mine = rebuilt.get(`${ext.image}:${variant}`) ?? '(not rebuilt)';
        subjects.push({ name: `${ext.image}:${variant}`, published: t.digest, rebuilt: mine, identical: false });
        lines.push(`${ext.image}:${variant}: published ${t.digest}, rebuilt ${mine}`);
        const dir = join(work, 'published');
        const pulled = await pullImage(`${t.registry}/${t.repository}@${t.digest}`, dir, { ...opts, refName: 'published' });
        for (const m of pulled.manifests) {
          const arch = m.platform?.architecture;
          const mineM = arch === undefined ? undefined : rebuilt.get(`${ext.image}:${variant}-${arch}`);
          if (mineM === undefined) continue;
          const entry: RebuiltManifest = { name: `${ext.image}:${variant}-${arch}`, published: m.digest, rebuilt: mineM, identical: m.digest === mineM };
          if (!entry.identical) {
            entry.comparison = await compareImages({ dir, manifestDigest: m.digest }, { dir: out, manifestDigest: mineM });
            lines.push(`${entry.name}: published ${m.digest}, rebuilt ${mineM}\n${formatComparison(entry.comparison, { expected: 'published', actual: 'rebuilt' })}`);
          }
          subjects.push(entry);
        }
      }
    }
    const identical = subjects.length > 0 && subjects.every((s) => s.identical) && lines.length === 0;
    return { identical, image: ext.image, subjects, report: identical ? `identical: ${subjects.map((s) => `${s.name} ${s.published}`).join(', ')} rebuilt bit for bit` : lines.join('\n') };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
