// Reading and writing cosign's attachment manifests (`sha256-<hex>.sig` / `.att`) in a registry, the
// classic tag scheme of shared/docs/formats.md (b, c): one OCI image manifest per tag, one layer per
// signature or attestation (the payload blob, uncompressed: digest == diffID), the signature in the
// layer's annotations, and a config nobody reads. What we write is what cosign (go-containerregistry's
// mutate.AppendLayers on empty.Image) writes, byte for byte given the same layers: its "empty image"
// config with one zero-time history entry and one diff_id per layer, and its descriptor field order
// (mediaType, size, digest — go-containerregistry's v1.Descriptor, not image-spec's order).
//
// Writes go blobs first, then the manifest PUT to the tag with the OCI content type — containers/image
// accepts nothing else — so the tag never names a missing blob. There is no locking: two signers
// appending at once race, and the last writer wins (as with cosign).
//
// Everything read from the registry is untrusted: manifests are size-capped and hashed by the client,
// layer descriptors validated, payload blobs size-capped before download and verified as they stream.
import { Readable } from 'node:stream';
import { sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError, isDistillError } from '../errors.js';
import { parseJsonObject } from '../json.js';
import { goJson, goMap, validateDescriptor, type Descriptor } from '../oci/descriptor.js';
import { MEDIA_TYPE_CONFIG } from '../oci/media-types.js';
import {
  MANIFEST_ACCEPT,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  type FetchedManifest,
  type RegistryClient,
} from '../registry/client.js';
import type { ImageReference } from '../registry/reference.js';

/** The layer annotation holding the base64 signature (`""` on attestation layers: the envelope holds it). */
export const SIGNATURE_ANNOTATION = 'dev.cosignproject.cosign/signature';
/** containers/image reads at most this much of a signature payload (iolimits.MaxSignatureBodySize). */
export const SIGNATURE_PAYLOAD_CAP = 4 * 1024 * 1024;
/** DSSE envelopes carry whole SBOMs; cosign's default attachment cap is larger still (128 MiB). */
export const ATTESTATION_PAYLOAD_CAP = 64 * 1024 * 1024;

/** go-containerregistry's zero time.Time, as the empty image's config carries it. */
const GO_ZERO_TIME = '0001-01-01T00:00:00Z';
const INDEX_TYPES = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
/**
 * What an attachment tag may be served as: every manifest type, so that a wrong one is reported as
 * wrong (the verifier's SIGNATURE_MEDIA_TYPE) rather than as an unreadable response.
 */
const ATTACHMENT_ACCEPT = [
  ...MANIFEST_ACCEPT,
  'application/vnd.oci.artifact.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.v1+prettyjws',
  'application/vnd.docker.distribution.manifest.v1+json',
];

export interface AttachmentManifest {
  tag: string;
  digest: Digest;
  /** As served; containers/image only accepts MEDIA_TYPE_OCI_MANIFEST. */
  mediaType: string;
  layers: Descriptor[];
}

/** A layer to write: its descriptor, and its payload when the blob may not be in the repository yet. */
export interface AttachmentLayer {
  descriptor: Descriptor;
  payload?: Buffer;
}

/** The manifest a reference names (tag, else digest, else `latest`), hashed and checked by the client. */
export function resolveImage(client: RegistryClient, ref: ImageReference): Promise<FetchedManifest> {
  return client.getManifest(ref.repository, ref.digest ?? ref.tag ?? 'latest');
}

export function isIndex(mediaType: string): boolean {
  return INDEX_TYPES.has(mediaType);
}

/** The manifests an index lists (descriptors validated; the bytes are untrusted registry content). */
export function indexChildren(bytes: Buffer, what: string): Descriptor[] {
  const doc = parseObject(bytes, what);
  const list = doc['manifests'];
  if (!Array.isArray(list)) throw protocol(`${what}: an index without a manifests list`);
  return list.map((d: unknown, i) => checkedDescriptor(d, `${what} manifests[${i}]`));
}

/** The attachment manifest under `tag`, or undefined when there is none. */
export async function readAttachment(client: RegistryClient, repository: string, tag: string): Promise<AttachmentManifest | undefined> {
  let m: FetchedManifest;
  try {
    m = await client.getManifest(repository, tag, ATTACHMENT_ACCEPT);
  } catch (e) {
    if (isDistillError(e, 'REGISTRY_NOT_FOUND')) return undefined;
    throw e;
  }
  const what = `${client.registry}/${repository}:${tag}`;
  if (isIndex(m.mediaType)) return { tag, digest: m.digest, mediaType: m.mediaType, layers: [] };
  const doc = parseObject(m.bytes, what);
  const layers = doc['layers'] ?? [];
  if (!Array.isArray(layers)) throw protocol(`${what}: "layers" is not a list`);
  return { tag, digest: m.digest, mediaType: m.mediaType, layers: layers.map((l: unknown, i) => checkedDescriptor(l, `${what} layers[${i}]`)) };
}

/**
 * A layer's blob, whole, in memory: at most `cap` bytes (checked against the descriptor before any
 * byte is fetched), verified against the descriptor's digest and size while it streams.
 */
export async function readPayload(client: RegistryClient, repository: string, layer: Descriptor, cap: number): Promise<Buffer> {
  if (layer.size > cap) {
    throw new DistillError('RESPONSE_TOO_LARGE', `the attachment layer ${layer.digest} is ${layer.size} bytes, more than the ${cap} read`);
  }
  // Read straight into memory (no temp file): the stream checks size and digest as it flows and fails
  // at its end on a mismatch; a body cut mid-way is read again from the start, as a download is.
  const ref = { digest: layer.digest, size: layer.size };
  return client.transport.retrying(`read the attachment layer ${layer.digest}`, async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of await client.openBlob(repository, ref)) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  });
}

/** A payload as an uncompressed attachment layer. */
export function payloadLayer(mediaType: string, payload: Buffer, annotations: Record<string, string>): AttachmentLayer {
  return { descriptor: { mediaType, digest: toDigest(sha256Hex(payload)), size: payload.length, annotations }, payload };
}

/** The attachment manifest and its config for these layers, as cosign writes them. */
export function attachmentManifest(layers: Descriptor[]): { manifest: Buffer; config: Buffer } {
  const config = Buffer.from(
    goJson({
      architecture: '',
      created: GO_ZERO_TIME,
      history: layers.map(() => ({ created: GO_ZERO_TIME })),
      os: '',
      rootfs: { type: 'layers', diff_ids: layers.map((l) => l.digest) },
      config: {},
    }),
    'utf8',
  );
  const manifest = Buffer.from(
    goJson({
      schemaVersion: 2,
      mediaType: MEDIA_TYPE_OCI_MANIFEST,
      config: { mediaType: MEDIA_TYPE_CONFIG, size: config.length, digest: toDigest(sha256Hex(config)) },
      layers: layers.map((l) => {
        const annotations = goMap(l.annotations, `attachment layer ${l.digest} annotations`);
        return { mediaType: l.mediaType, size: l.size, digest: l.digest, ...(annotations === undefined ? {} : { annotations }) };
      }),
    }),
    'utf8',
  );
  return { manifest, config };
}

/**
 * Write the attachment manifest under `tag`: every new payload blob, then the config, then the manifest
 * (PUT to the tag with the OCI content type). Layers without a payload must already be in the repository
 * (they come from the manifest being replaced). Returns the manifest's digest.
 */
export async function writeAttachment(client: RegistryClient, repository: string, tag: string, layers: AttachmentLayer[]): Promise<Digest> {
  const { manifest, config } = attachmentManifest(layers.map((l) => l.descriptor));
  const blobs = [
    ...layers.filter((l) => l.payload !== undefined).map((l) => ({ digest: l.descriptor.digest, bytes: l.payload! })),
    { digest: toDigest(sha256Hex(config)), bytes: config },
  ];
  for (const b of blobs) {
    if (toDigest(sha256Hex(b.bytes)) !== b.digest) throw new DistillError('OCI_INVALID', `attachment blob ${b.digest}: its bytes do not match`);
    const have = await client.headBlob(repository, b.digest);
    if (have !== undefined && (have.size === b.bytes.length || have.size < 0)) continue;
    await client.uploadBlob(repository, { digest: b.digest, size: b.bytes.length }, () => Readable.from([b.bytes], { objectMode: false }));
  }
  return client.putManifest(repository, tag, manifest, MEDIA_TYPE_OCI_MANIFEST);
}

// ---- parsing untrusted registry JSON ----

function parseObject(bytes: Buffer, what: string): Record<string, unknown> {
  return parseJsonObject(bytes, (m, cause) => protocol(`${what}: ${m}`, cause));
}

function checkedDescriptor(v: unknown, what: string): Descriptor {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) throw protocol(`${what}: not a descriptor`);
  const d = v as Descriptor;
  try {
    validateDescriptor(d, what);
  } catch (e) {
    throw protocol(`${what}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const out: Descriptor = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.annotations !== undefined && d.annotations !== null) {
    if (typeof d.annotations !== 'object' || Array.isArray(d.annotations) || Object.values(d.annotations).some((x) => typeof x !== 'string')) {
      throw protocol(`${what}: annotations must map strings to strings`);
    }
    out.annotations = { ...d.annotations };
  }
  if (d.platform !== undefined) out.platform = d.platform;
  return out;
}

function protocol(message: string, cause?: unknown): DistillError {
  return new DistillError('REGISTRY_PROTOCOL', message, { hint: 'the registry holds a malformed attachment manifest', ...(cause === undefined ? {} : { cause }) });
}
