// `distill rebuild`: anyone can check a published image. Take its SLSA provenance (from a signed
// attestation in a registry — verified against the given key — from an OCI layout, or from a file
// given beside an archive), read the published image in place from its source, rebuild every
// recorded variant and platform from the definitions and locks it carries inline (no checkout), and
// compare digests with the published ones. On a mismatch, name the first differing layer and every
// differing file in it, and every differing config field.
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { KeyObject } from 'node:crypto';
import { verifyAttestation } from './attest/attest.js';
import { ATTESTATIONS_DIR, buildImage, PROVENANCE_FILE } from './build.js';
import { extendsPath, parseAndValidate } from './definition/load.js';
import { isVariant, platformTag } from './definition/variants.js';
import type { MirrorInputs } from './debian/mirrors.js';
import type { Variant } from './definition/types.js';
import { sha256Hex } from './digest.js';
import { DistillError } from './errors.js';
import type { OnProgress } from './events.js';
import type { ProvenanceExternalParameters } from './provenance/provenance.js';
import { DISTILL_BUILD_TYPE } from './provenance/provenance.js';
import { SLSA_PROVENANCE_V1 } from './provenance/statement.js';
import { compareImages, formatComparison, type ImageComparison } from './rebuild/compare.js';
import { type Image, imagesOf, isImageIndex, type Artifact } from './oci/model.js';
import type { RegistryOptions } from './registry/client.js';
import { parseReference } from './registry/reference.js';
import { openSource, parseSourceSpec, type SourceSpec } from './source.js';
import { archiveRefs, readArchiveArtifact } from './sources/archive.js';
import { layoutRefs, readLayoutArtifact } from './sources/oci-layout.js';
import { readRegularFile } from './util/regular-file.js';
import { isSourceDateEpoch } from './lock/time.js';

export interface RebuildOptions extends RegistryOptions {
  cacheDir: string;
  mirrors?: MirrorInputs;
  /** Verifies the provenance attestation of a registry image (required for a reference). */
  publicKey?: KeyObject;
  /** Where the rebuild's private directory (the provenance's definitions and locks) goes (default: the system temp directory); it is removed. */
  workDir?: string;
  onProgress?: OnProgress;
  /** A provenance statement file, for a local image that does not carry one (an archive). */
  provenance?: string;
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
  if (!Array.isArray(st.subject) || st.subject.length === 0 || !st.subject.every((x) => typeof x?.name === 'string' && typeof x?.digest?.sha256 === 'string' && /^[0-9a-f]{64}$/.test(x.digest.sha256))) {
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
  // Handed to the build as its one timestamp: a string, a fraction or a negative number would reach tar
  // headers and config dates (attacker-controlled), so it must be whole seconds since the epoch.
  if (ext.sourceDateEpoch !== undefined && !isSourceDateEpoch(ext.sourceDateEpoch)) throw invalid(`its sourceDateEpoch ${JSON.stringify(ext.sourceDateEpoch)} is not whole seconds since 1970`);
  ext.definitions.forEach((d, i) => {
    const l = ext.locks[i]!;
    // Entries are attacker-controlled JSON: null or a number where an object belongs is refused, not crashed on.
    if (d === null || typeof d !== 'object' || l === null || typeof l !== 'object') throw invalid(`definition or lock ${i} is not an object`);
    if (typeof d.image !== 'string' || !NAME.test(d.image) || l.image !== d.image) throw invalid(`definition ${i} (${JSON.stringify(d.image)}) and its lock do not name the same image`);
    for (const x of [d, l]) {
      if (typeof x.content !== 'string' || sha256Hex(x.content) !== x.digest?.sha256) {
        throw new DistillError('PROVENANCE_MISMATCH', `the provenance's inline ${x.path} does not match its recorded digest ${x.digest?.sha256}`, { hint: 'the provenance was altered; do not trust this image' });
      }
    }
  });
  return st;
}

/** Attachment refs a pulled layout carries (cosign tags, referrers): not images the build makes. */
const ATTACHMENT_REF = /^sha256-[0-9a-f]{64}(\.(sig|att|sbom))?$/;

/** A published image held locally (a layout's ref, an archive's image), read through its source. */
interface LocalImage {
  ref: string;
  digest: string;
  artifact: Artifact;
}

/** Every image a local target holds (or just the one it names), skipping attachments. */
async function localImages(spec: Exclude<SourceSpec, { transport: 'docker' }>): Promise<{ images: LocalImage[]; name: string }> {
  const images: LocalImage[] = [];
  if (spec.transport === 'oci') {
    const refs = spec.ref !== undefined ? [spec.ref] : (await layoutRefs(spec.dir)).filter((r) => !ATTACHMENT_REF.test(r));
    for (const ref of refs) {
      const a = await readLayoutArtifact(spec.dir, ref);
      images.push({ ref, digest: a.digest, artifact: a.artifact });
    }
    if (images.length === 0) throw new DistillError('OCI_INVALID', `${spec.dir} names no images`, { hint: 'rebuild a layout written by distill build --out' });
    return { images, name: spec.dir };
  }
  const asLayout = spec.transport === 'oci-archive' || (spec.transport === 'archive' && (await archiveRefs(spec.file)).length > 0);
  if (asLayout) {
    const refs = spec.selection !== undefined ? [spec.selection] : (await archiveRefs(spec.file)).filter((r) => !ATTACHMENT_REF.test(r));
    for (const ref of refs) {
      const a = await readArchiveArtifact(spec.file, { kind: 'oci-archive', selection: ref });
      images.push({ ref, digest: a.digest, artifact: a.artifact });
    }
  } else {
    const a = await readArchiveArtifact(spec.file, { kind: 'docker-archive', ...(spec.selection !== undefined ? { selection: spec.selection } : {}) });
    // distill/<image>:<variant>-<arch> → <variant>-<arch>, the name the provenance gives it.
    const tag = a.selected.startsWith('@') ? 'latest' : a.selected.slice(a.selected.lastIndexOf(':') + 1);
    images.push({ ref: tag, digest: a.digest, artifact: a.artifact });
  }
  if (images.length === 0) throw new DistillError('OCI_INVALID', `${spec.file} names no images`, { hint: 'rebuild an archive written by distill build --tar' });
  return { images, name: spec.file };
}

async function readProvenanceFile(path: string, what: string): Promise<ProvenanceStatement> {
  let raw: unknown;
  try {
    // --provenance or the layout's own file: a FIFO or /dev/zero there must not hang or grow without end.
    raw = JSON.parse((await readRegularFile(path, PROVENANCE_CAP)).toString('utf8'));
  } catch (e) {
    throw new DistillError('PROVENANCE_INVALID', `${what} has no readable ${path}`, { cause: e, hint: 'rebuild a layout written by distill build --out, or pass --provenance FILE' });
  }
  return checkProvenance(raw);
}

const PROVENANCE_CAP = 64 * 1024 * 1024;

/**
 * `target`: a registry reference (`docker://` forces one), an OCI layout (`DIR`, `DIR:REF`,
 * `oci:DIR[:REF]`) or an image archive (`FILE`, `oci-archive:FILE[:REF]`, `docker-archive:FILE[:NAME:TAG]`).
 * The published image is read in place from its source — never copied into a temporary layout.
 */
export async function rebuild(target: string, opts: RebuildOptions): Promise<RebuildResult> {
  const spec = parseSourceSpec(target);
  let statement: ProvenanceStatement;
  let registryTarget: { registry: string; repository: string; tag?: string; digest: string; covered: boolean } | undefined;
  let local: { images: LocalImage[]; name: string } | undefined;
  if (spec.transport !== 'docker') {
    if (opts.publicKey !== undefined) {
      throw new DistillError('USAGE', `${target} is local: a layout's or archive's provenance is not signed, so --key would check nothing`, {
        hint: 'rebuild it without --key, or write a registry image as docker://REFERENCE',
      });
    }
    // What is there to compare comes first: a damaged or hostile layout or archive is refused before anything else.
    local = await localImages(spec);
    if (opts.provenance !== undefined) statement = await readProvenanceFile(opts.provenance, target);
    else if (spec.transport === 'oci') statement = await readProvenanceFile(join(spec.dir, ATTESTATIONS_DIR, PROVENANCE_FILE), spec.dir);
    else {
      throw new DistillError('USAGE', `${target} is an image archive, which carries no provenance`, {
        hint: `pass --provenance FILE (the ${ATTESTATIONS_DIR}/${PROVENANCE_FILE} written beside it by distill build --out, or the statement distill verify-attestation prints)`,
      });
    }
  } else {
    if (opts.publicKey === undefined) throw new DistillError('USAGE', "rebuilding a registry image needs the publisher's public key", { hint: 'pass --key cosign.pub' });
    const ref = parseReference(spec.reference);
    // Only a provenance signed by the publisher's key, about exactly this digest, is used.
    const verified = await verifyAttestation(spec.reference, { ...opts, publicKey: opts.publicKey, predicateType: SLSA_PROVENANCE_V1, anySubject: true });
    const covers = (st: unknown): boolean => (st as ProvenanceStatement).subject?.some((x) => `sha256:${x.digest?.sha256}` === verified.digest) ?? false;
    const covering = verified.statements.filter(covers);
    statement = checkProvenance(covering[covering.length - 1] ?? verified.statements[verified.statements.length - 1]);
    registryTarget = { registry: ref.registry, repository: ref.repository, ...(ref.tag ? { tag: ref.tag } : {}), digest: verified.digest, covered: covering.length > 0 };
  }

  // The rebuild itself: the definitions and locks materialised as images/<name>/ exactly as they
  // were, in a private directory that is removed whatever happens. The rebuilt images are the
  // build's model (blobs in the content store of cacheDir): no layout of them is written anywhere.
  const work = await mkdtemp(join(opts.workDir ?? tmpdir(), 'distill-rebuild-'));
  try {
    const ext = statement.predicate.buildDefinition.externalParameters;
    const images = join(work, 'images');
    for (let i = 0; i < ext.definitions.length; i++) {
      const d = ext.definitions[i]!;
      await mkdir(join(images, d.image), { recursive: true });
      await writeFile(join(images, d.image, 'image.yaml'), d.content);
      await writeFile(join(images, d.image, 'image.lock.json'), ext.locks[i]!.content);
    }
    // ATTACKER-CONTROLLED: a definition's `extends` is a path. The rebuild uses only what the
    // provenance carries, so a base must be one of its own definitions — never a file of this host
    // (`extends: /home/…/image.yaml` or `../../..` would read it into the build).
    const ours = new Set(ext.definitions.map((d) => join(images, d.image, 'image.yaml')));
    for (const d of ext.definitions) {
      const file = join(images, d.image, 'image.yaml');
      const base = parseAndValidate(d.content, file).extends;
      if (base !== undefined && !ours.has(extendsPath(file, base))) {
        throw invalid(`definition ${d.image} extends ${JSON.stringify(base)}, which is not one of the provenance's own definitions`);
      }
    }
    const result = await buildImage(join(images, ext.image, 'image.yaml'), {
      cacheDir: opts.cacheDir,
      ...(opts.mirrors ? { mirrors: opts.mirrors } : {}),
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
    // The rebuilt platform images by ref (<variant>-<arch>), straight from the build's model.
    const rebuiltImages = new Map<string, Image>();
    for (const v of result.model.variants) for (const [arch, image] of v.images) rebuiltImages.set(platformTag(v.variant, arch), image);
    const rebuiltImage = (ref: string): Image => {
      const image = rebuiltImages.get(ref);
      if (image === undefined) throw new DistillError('BUILD_FAILED', `the rebuild made no image ${ref}`, { hint: 'this is a bug in distill rebuild' });
      return image;
    };
    const subjects: RebuiltManifest[] = [];
    const lines: string[] = [];
    const platformNames = new Set(result.variants.flatMap((v) => v.manifests.map((m) => `${ext.image}:${v.variant}-${m.arch}`)));
    if (local !== undefined) {
      // What the layout or archive really holds is what is compared — never only what its (unsigned) provenance claims.
      const claimed = new Map(statement.subject.map((x) => [x.name, `sha256:${x.digest.sha256}`]));
      for (const p of [...local.images].sort((a, b) => (a.ref < b.ref ? -1 : 1))) {
        const key = `${ext.image}:${p.ref}`;
        const published = p.digest;
        const mine = rebuilt.get(key) ?? '(not rebuilt: the provenance does not record it)';
        const entry: RebuiltManifest = { name: key, published, rebuilt: mine, identical: mine === published };
        if (claimed.get(key) !== published) lines.push(`${key}: ${local.name} holds ${published} but its provenance names ${claimed.get(key) ?? 'nothing'}`);
        if (!entry.identical && platformNames.has(key) && !isImageIndex(p.artifact)) {
          entry.comparison = await compareImages({ image: p.artifact, name: local.name }, { image: rebuiltImage(p.ref), name: 'the rebuilt image' });
          lines.push(`${key}: published ${published}, rebuilt ${mine}\n${formatComparison(entry.comparison, { expected: 'published', actual: 'rebuilt' })}`);
        } else if (!entry.identical) lines.push(`${key}: published ${published}, rebuilt ${mine}`);
        if (claimed.get(key) !== published) entry.identical = false;
        subjects.push(entry);
      }
    } else {
      // A registry image: its digest must be one this build produced. When it is not, compare it
      // platform by platform with the variant its tag names (latest when the tag is not a variant).
      const t = registryTarget!;
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
        // The published image read in place: manifests and configs fetched, a layer streamed only
        // when its digest differs from the rebuilt one's, verified as it flows.
        const published = await openSource({ transport: 'docker', reference: `${t.registry}/${t.repository}@${t.digest}` }, opts);
        try {
          for (const img of imagesOf(published.artifact)) {
            const arch = img.platform?.architecture;
            const mineM = arch === undefined ? undefined : rebuilt.get(`${ext.image}:${variant}-${arch}`);
            if (mineM === undefined) continue;
            const digest = img.manifest.descriptor.digest;
            const entry: RebuiltManifest = { name: `${ext.image}:${variant}-${arch}`, published: digest, rebuilt: mineM, identical: digest === mineM };
            if (!entry.identical) {
              entry.comparison = await compareImages({ image: img, name: published.name }, { image: rebuiltImage(`${variant}-${arch}`), name: 'the rebuilt image' });
              lines.push(`${entry.name}: published ${digest}, rebuilt ${mineM}\n${formatComparison(entry.comparison, { expected: 'published', actual: 'rebuilt' })}`);
            }
            subjects.push(entry);
          }
        } finally {
          await published.close();
        }
      }
    }
    const identical = subjects.length > 0 && subjects.every((s) => s.identical) && lines.length === 0;
    return { identical, image: ext.image, subjects, report: identical ? `identical: ${subjects.map((s) => `${s.name} ${s.published}`).join(', ')} rebuilt bit for bit` : lines.join('\n') };
  } finally {
    await rm(work, { recursive: true, force: true }).catch(() => {});
  }
}
