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

/** Checks a provenance statement before anything from it is used (it came from the publisher). */
export function checkProvenance(s: unknown, mustCover: string | undefined): ProvenanceStatement {
  const st = s as ProvenanceStatement;
  if (st?.predicateType !== SLSA_PROVENANCE_V1) throw invalid(`not SLSA provenance v1 (predicateType ${JSON.stringify(st?.predicateType)})`);
  if (st.predicate?.buildDefinition?.buildType !== DISTILL_BUILD_TYPE) throw invalid(`not a distill build (buildType ${JSON.stringify(st.predicate?.buildDefinition?.buildType)})`);
  const ext = st.predicate.buildDefinition.externalParameters;
  if (!ext || !Array.isArray(ext.definitions) || !Array.isArray(ext.locks) || ext.definitions.length === 0 || ext.definitions.length !== ext.locks.length) {
    throw invalid('its externalParameters do not carry the definitions and locks');
  }
  for (const d of [...ext.definitions, ...ext.locks]) {
    if (typeof d.content !== 'string' || sha256Hex(d.content) !== d.digest?.sha256) {
      throw new DistillError('PROVENANCE_MISMATCH', `the provenance's inline ${d.path} does not match its recorded digest ${d.digest?.sha256}`, { hint: 'the provenance was altered; do not trust this image' });
    }
    if (!/^[a-z0-9][a-z0-9._-]*$/.test(d.image)) throw invalid(`bad image name ${JSON.stringify(d.image)}`);
  }
  if (mustCover !== undefined && !st.subject.some((x) => `sha256:${x.digest?.sha256}` === mustCover)) {
    throw new DistillError('PROVENANCE_MISMATCH', `the provenance's subjects do not include ${mustCover}`, { hint: 'this provenance is for another image; do not trust it for this one' });
  }
  return st;
}

export async function rebuild(target: string, opts: RebuildOptions): Promise<RebuildResult> {
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'distill-rebuild-'));
  try {
    let statement: ProvenanceStatement;
    let registryTarget: { registry: string; repository: string; tag?: string; digest: string; covered: boolean } | undefined;
    if (existsSync(target) && statSync(target).isDirectory()) {
      let raw: unknown;
      try {
        raw = JSON.parse(await readFile(join(target, ATTESTATIONS_DIR, PROVENANCE_FILE), 'utf8'));
      } catch (e) {
        throw new DistillError('PROVENANCE_INVALID', `${target} has no readable ${ATTESTATIONS_DIR}/${PROVENANCE_FILE}`, { cause: e, hint: 'rebuild a layout written by distill build --out' });
      }
      statement = checkProvenance(raw, undefined);
    } else {
      if (opts.publicKey === undefined) throw new DistillError('USAGE', "rebuilding a registry image needs the publisher's public key", { hint: 'pass --key cosign.pub' });
      const ref = parseReference(target);
      // Only a provenance signed by the publisher's key, about exactly this digest, is used.
      const verified = await verifyAttestation(target, { ...opts, publicKey: opts.publicKey, predicateType: SLSA_PROVENANCE_V1, anySubject: true });
      const covers = (st: unknown): boolean => (st as ProvenanceStatement).subject?.some((x) => `sha256:${x.digest?.sha256}` === verified.digest) ?? false;
      const covering = verified.statements.filter(covers);
      statement = checkProvenance(covering[covering.length - 1] ?? verified.statements[verified.statements.length - 1], undefined);
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
      annotations: { ...(ext.source?.repository ? { source: ext.source.repository } : {}), ...(ext.source?.revision ? { revision: ext.source.revision } : {}) },
      ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
    });
    const rebuilt = new Map<string, string>();
    for (const v of result.variants) {
      rebuilt.set(`${ext.image}:${v.variant}`, v.index);
      for (const m of v.manifests) rebuilt.set(`${ext.image}:${v.variant}-${m.arch}`, m.digest);
    }
    const subjects: RebuiltManifest[] = [];
    const lines: string[] = [];
    if (registryTarget === undefined) {
      // A layout's own provenance names every index and manifest it holds.
      for (const s of [...statement.subject].sort((a, b) => (a.name < b.name ? -1 : 1))) {
        const published = `sha256:${s.digest.sha256}`;
        const mine = rebuilt.get(s.name) ?? '(not rebuilt)';
        const entry: RebuiltManifest = { name: s.name, published, rebuilt: mine, identical: mine === published };
        if (!entry.identical && /-[a-z0-9]+$/.test(s.name) && rebuilt.has(s.name)) {
          entry.comparison = await compareImages({ dir: target, manifestDigest: published }, { dir: out, manifestDigest: mine });
          lines.push(`${s.name}: published ${published}, rebuilt ${mine}\n${formatComparison(entry.comparison, { expected: 'published', actual: 'rebuilt' })}`);
        } else if (!entry.identical) lines.push(`${s.name}: published ${published}, rebuilt ${mine}`);
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
        const variant = t.tag !== undefined && ext.variants.includes(t.tag) ? t.tag : 'latest';
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
    const identical = subjects.every((s) => s.identical);
    return { identical, image: ext.image, subjects, report: identical ? `identical: ${subjects.map((s) => `${s.name} ${s.published}`).join(', ')} rebuilt bit for bit` : lines.join('\n') };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
