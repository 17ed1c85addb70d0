// The registry as an image source (OCI distribution spec 1.1 pull API): a reference resolved to the
// model's Image or ImageIndex. Manifests and configs are small and read whole (size-capped, checked
// against the digests that name them); layers are not read at all until a sink opens them, and then
// they stream from the registry verified as they flow. Docker schema 2 and OCI documents are kept
// byte for byte, so digests (and signatures over them) survive any copy.
import type { Readable } from 'node:stream';
import { sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError, isDistillError } from '../errors.js';
import { parseJsonObject } from '../json.js';
import { type Blob, type Descriptor, descriptorJson, goJson, validateDescriptor } from '../oci/descriptor.js';
import type { Artifact, Image, ImageIndex, Layer } from '../oci/model.js';
import { type Platform, platformString } from '../oci/platform.js';
import { MEDIA_TYPE_DOCKER_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST_LIST, MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_OCI_MANIFEST, type RegistryClient } from './client.js';
import { forEachLimit } from '../util/limit.js';
import { listReferrers, referrersTag } from './referrers.js';

export const INDEX_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
export const MANIFEST_MEDIA_TYPES: ReadonlySet<string> = new Set([MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]);
/** A config is a few KiB; distribution caps manifests at 4 MiB and configs are of the same kind. */
const CONFIG_CAP = 8 * 1024 * 1024;
/** Platform manifests read at once. */
const READ_CONCURRENCY = 8;

export interface RegistryArtifact {
  artifact: Artifact;
  /** The digest the reference resolved to. */
  digest: Digest;
}

export interface ReadRegistryOptions {
  /**
   * Only the index entries this accepts are read; the index is then narrowed to them (the same
   * document with fewer entries, in Go's byte form), so its digest is no longer the registry's —
   * `digest` still names what the reference resolved to. A filter that keeps nothing is
   * REGISTRY_NOT_FOUND. Ignored for a single image.
   */
  select?: (entry: Descriptor) => boolean;
  /** What `select` wants, for the message when nothing matches (e.g. "linux/s390x"). */
  selectWhat?: string;
}

/** Resolve `reference` (a tag or digest) in `repository` to the model, reading only small documents. */
export async function readRegistryArtifact(client: RegistryClient, repository: string, reference: string, opts: ReadRegistryOptions = {}): Promise<RegistryArtifact> {
  const root = await client.getManifest(repository, reference);
  let rootBlob = blobOf(root.bytes, root.mediaType);
  if (INDEX_MEDIA_TYPES.has(root.mediaType)) {
    const idx = jsonObject(root.bytes, `index ${root.digest}`);
    const list = idx['manifests'];
    if (!Array.isArray(list)) throw protocol(`index ${root.digest} has no manifests list`);
    (list as Descriptor[]).forEach((e, i) => validateDescriptor(e, `index ${root.digest} manifests[${i}]`));
    let entries = list as Descriptor[];
    if (opts.select !== undefined) {
      const kept = entries.filter(opts.select);
      if (kept.length === 0) {
        const have = entries.map((e) => (e.platform ? platformString(e.platform) : '(no platform)')).join(', ');
        throw new DistillError('REGISTRY_NOT_FOUND', `${client.registry}/${repository}:${reference} has no manifest for ${opts.selectWhat ?? 'the platforms asked for'}`, { hint: `it has: ${have || 'nothing'}` });
      }
      if (kept.length !== entries.length) {
        rootBlob = blobOf(Buffer.from(goJson({ ...idx, manifests: kept }), 'utf8'), root.mediaType);
        entries = kept;
      }
    }
    for (const e of entries) {
      if (!MANIFEST_MEDIA_TYPES.has(e.mediaType)) {
        throw protocol(`index ${root.digest} lists ${e.digest} of type ${e.mediaType}; nested indexes are not supported`);
      }
    }
    // Every platform's manifest and config at once (a few at a time: the list is the registry's).
    const images: Image[] = new Array<Image>(entries.length);
    await forEachLimit(entries, READ_CONCURRENCY, async (e, k) => {
      const child = await client.getManifest(repository, e.digest);
      if (child.bytes.length !== e.size) throw protocol(`manifest ${e.digest} is ${child.bytes.length} bytes, the index says ${e.size}`);
      images[k] = await readImage(client, repository, blobOf(child.bytes, e.mediaType), e.platform);
    });
    const index: ImageIndex = { index: rootBlob, images };
    return { artifact: index, digest: root.digest };
  }
  if (!MANIFEST_MEDIA_TYPES.has(root.mediaType)) throw protocol(`${repository}:${reference} is a ${root.mediaType}, not an image or index`);
  return { artifact: await readImage(client, repository, rootBlob, undefined), digest: root.digest };
}

/** cosign's attachment tags: `sha256-<hex>.sig`, `.att`, `.sbom` of the digest they belong to. */
export const ATTACHMENT_TAG = /^sha256-([0-9a-f]{64})\.(sig|att|sbom)$/;

export interface RegistryAttachments {
  /** cosign's tags for the subjects, sorted by tag, each read as the model. */
  tags: { tag: string; digest: Digest; artifact: Artifact }[];
  /**
   * The OCI referrers of each subject (cosign v3's Sigstore bundles, SBOMs, …) as an index in the
   * referrers tag schema's form — the `sha256-<hex>` tag's document — with the referrer manifests as
   * its images. Only subjects that have referrers are listed.
   */
  referrers: { subject: Digest; tag: string; index: ImageIndex; descriptors: Descriptor[] }[];
}

/**
 * What is attached to `subjects` (an image's digest and each of its platform manifests'): cosign's
 * tags and the OCI referrers. A registry that does not let us list tags (401/403/404 on the list)
 * has no attachments we can find; anything else that fails is an error.
 */
export async function readAttachments(client: RegistryClient, repository: string, subjects: readonly string[], opts: { artifactType?: string } = {}): Promise<RegistryAttachments> {
  const out: RegistryAttachments = { tags: [], referrers: [] };
  const hexes = new Set(subjects.map((d) => d.slice('sha256:'.length)));
  let tags: string[] = [];
  try {
    tags = await client.listTags(repository);
  } catch (e) {
    if (!isDistillError(e, 'REGISTRY_NOT_FOUND') && !isDistillError(e, 'REGISTRY_DENIED') && !isDistillError(e, 'REGISTRY_AUTH')) throw e;
  }
  for (const t of [...tags].sort()) {
    const m = ATTACHMENT_TAG.exec(t);
    if (!m || !hexes.has(m[1]!)) continue;
    const a = await readRegistryArtifact(client, repository, t);
    out.tags.push({ tag: t, digest: a.digest, artifact: a.artifact });
  }
  for (const subject of subjects) {
    const { descriptors } = await listReferrers(client, repository, subject, opts.artifactType);
    const images: Image[] = [];
    const listed: Descriptor[] = [];
    for (const d of descriptors) {
      // A referrer that is itself an index is rare (none of cosign's, oras's or notation's are) and left out.
      if (!MANIFEST_MEDIA_TYPES.has(d.mediaType)) continue;
      const m = await client.getManifest(repository, d.digest, [d.mediaType]);
      if (m.bytes.length !== d.size) throw protocol(`referrer ${d.digest} is ${m.bytes.length} bytes, the referrers list says ${d.size}`);
      // The fallback tag is anyone's to write: a listed manifest must name this subject itself.
      const named = (jsonObject(m.bytes, `referrer ${d.digest}`)['subject'] as { digest?: unknown } | undefined)?.digest;
      if (named !== subject) throw protocol(`referrer ${d.digest} names another subject (${(JSON.stringify(named) ?? 'none').slice(0, 80)}), not ${subject}`);
      images.push(await readImage(client, repository, blobOf(m.bytes, d.mediaType), undefined));
      listed.push(d);
    }
    if (images.length === 0) continue;
    const index = blobOf(Buffer.from(goJson({ schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: listed.map(descriptorJson) }), 'utf8'), MEDIA_TYPE_OCI_INDEX);
    out.referrers.push({ subject: subject as Digest, tag: referrersTag(subject), index: { index, images }, descriptors: listed });
  }
  return out;
}

async function readImage(client: RegistryClient, repository: string, manifest: Blob, platform: Platform | undefined): Promise<Image> {
  const what = `manifest ${manifest.descriptor.digest}`;
  const m = jsonObject(manifest.bytes, what);
  const config = m['config'] as Descriptor | undefined;
  const layers = m['layers'];
  if (config === undefined || !Array.isArray(layers)) throw protocol(`${what} lacks a config or layers`);
  validateDescriptor(config, `${what} config`);
  if (config.size > CONFIG_CAP) throw protocol(`${what}: its config is ${config.size} bytes, more than ${CONFIG_CAP}`);
  const configBytes = await readAll(await client.openBlob(repository, config));
  const diffIds = diffIdsOf(configBytes);
  const out: Layer[] = [];
  for (const [i, l] of (layers as Descriptor[]).entries()) {
    validateDescriptor(l, `${what} layers[${i}]`);
    const diffId = diffIds[i];
    out.push({
      descriptor: l,
      ...(diffId !== undefined ? { diffId } : {}),
      // Verified as it flows, and marked so: a sink uploading it does not hash the bytes a second time.
      open: () => client.blobStream(repository, l),
    });
  }
  const p = platform ?? platformOf(configBytes);
  return { manifest, config: { descriptor: config, bytes: configBytes }, layers: out, ...(p !== undefined ? { platform: p } : {}) };
}

async function readAll(r: Readable): Promise<Buffer> {
  const parts: Buffer[] = [];
  for await (const c of r) parts.push(c as Buffer);
  return Buffer.concat(parts);
}

function blobOf(bytes: Buffer, mediaType: string): Blob {
  return { descriptor: { mediaType, digest: toDigest(sha256Hex(bytes)), size: bytes.length }, bytes };
}

function diffIdsOf(config: Buffer): (Digest | undefined)[] {
  try {
    const c = JSON.parse(config.toString('utf8')) as { rootfs?: { diff_ids?: unknown } };
    const ids = c.rootfs?.diff_ids;
    return Array.isArray(ids) ? ids.map((d) => (typeof d === 'string' && /^sha256:[0-9a-f]{64}$/.test(d) ? (d as Digest) : undefined)) : [];
  } catch {
    // Not an image config (a cosign signature's config is one; other artifacts need not be).
    return [];
  }
}

export function platformOf(config: Buffer): Platform | undefined {
  try {
    const c = JSON.parse(config.toString('utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string' || c.os === '' || c.architecture === '') return undefined;
    return typeof c.variant === 'string' && c.variant !== '' ? { os: c.os, architecture: c.architecture, variant: c.variant } : { os: c.os, architecture: c.architecture };
  } catch {
    return undefined;
  }
}

function jsonObject(bytes: Buffer, what: string): Record<string, unknown> {
  return parseJsonObject(bytes, (m, cause) => protocol(`${what}: ${m}`, cause));
}

function protocol(message: string, cause?: unknown): DistillError {
  return new DistillError('REGISTRY_PROTOCOL', message, { hint: 'the registry serves something that is not a well-formed image', ...(cause === undefined ? {} : { cause }) });
}
