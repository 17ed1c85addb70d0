// The OCI image layout as an image source (image-spec image-layout.md): a ref of index.json resolved
// to the model's Image or ImageIndex. The layout is read, never trusted — index.json, manifests and
// configs are size-capped and checked against the digests that name them before they are parsed, and
// a layer's bytes are verified while they stream out (a damaged blob fails the read, never passes).
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { VerifyingStream, sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { type Blob, type Descriptor, hexOf, validateDescriptor } from '../oci/descriptor.js';
import { ANNOTATION_REF_NAME } from '../oci/media-types.js';
import type { Artifact, Image, Layer } from '../oci/model.js';
import type { Platform } from '../oci/platform.js';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
/** index.json, manifests and configs are a few KiB; these caps are generous. */
const INDEX_JSON_CAP = 16 * 1024 * 1024;
const DOCUMENT_CAP = 8 * 1024 * 1024;

export interface LayoutArtifact {
  artifact: Artifact;
  /** The digest index.json names for the ref. */
  digest: Digest;
  ref: string;
}

/** The ref names of a layout's index.json, sorted. */
export async function layoutRefs(dir: string): Promise<string[]> {
  return [...(await namedEntries(dir)).keys()].sort();
}

/** Resolve `ref` (default: the layout's only ref) to the model. */
export async function readLayoutArtifact(dir: string, ref?: string): Promise<LayoutArtifact> {
  const named = await namedEntries(dir);
  const names = [...named.keys()].sort();
  const chosen = ref ?? (names.length === 1 ? names[0]! : undefined);
  if (chosen === undefined) {
    throw new DistillError('USAGE', `${dir} holds ${names.length === 0 ? 'no named refs' : `the refs ${names.join(', ')}`}: say which`, { hint: `write ${dir}:REF, e.g. ${dir}:${names[0] ?? 'latest'}` });
  }
  const d = named.get(chosen);
  if (d === undefined) throw new DistillError('OCI_INVALID', `${dir} has no ref ${JSON.stringify(chosen)}`, { hint: `its refs are ${names.join(', ') || '(none)'}` });
  const top = await readDocument(dir, d);
  if (INDEX_TYPES.has(d.mediaType)) {
    const list = parseObject(top.bytes, `index ${d.digest}`)['manifests'];
    if (!Array.isArray(list)) throw invalid(`${dir}: the index ${d.digest} has no manifests list`);
    const images: Image[] = [];
    for (const [i, e] of (list as Descriptor[]).entries()) {
      validateDescriptor(e, `index ${d.digest} manifests[${i}]`);
      if (!MANIFEST_TYPES.has(e.mediaType)) throw invalid(`${dir}: the index ${d.digest} lists ${e.digest} of type ${e.mediaType}; nested indexes are not supported`);
      images.push(await readImage(dir, await readDocument(dir, e), e.platform));
    }
    return { artifact: { index: top, images }, digest: d.digest, ref: chosen };
  }
  if (!MANIFEST_TYPES.has(d.mediaType)) throw invalid(`${dir}: the ref ${chosen} is a ${d.mediaType}, not an image or index`);
  return { artifact: await readImage(dir, top, d.platform), digest: d.digest, ref: chosen };
}

async function readImage(dir: string, manifest: Blob, platform: Platform | undefined): Promise<Image> {
  const what = `manifest ${manifest.descriptor.digest}`;
  const m = parseObject(manifest.bytes, what);
  const config = m['config'] as Descriptor | undefined;
  const layers = m['layers'];
  if (config === undefined || !Array.isArray(layers)) throw invalid(`${dir}: ${what} lacks a config or layers`);
  validateDescriptor(config, `${what} config`);
  const configBlob = await readDocument(dir, config);
  let diffIds: unknown[] = [];
  let fromConfig: Platform | undefined;
  try {
    const c = JSON.parse(configBlob.bytes.toString('utf8')) as { rootfs?: { diff_ids?: unknown }; os?: unknown; architecture?: unknown; variant?: unknown };
    if (Array.isArray(c.rootfs?.diff_ids)) diffIds = c.rootfs.diff_ids;
    if (typeof c.os === 'string' && typeof c.architecture === 'string') {
      fromConfig = typeof c.variant === 'string' && c.variant !== '' ? { os: c.os, architecture: c.architecture, variant: c.variant } : { os: c.os, architecture: c.architecture };
    }
  } catch {
    // not an image config (an artifact's); it has no diff_ids to offer
  }
  const out: Layer[] = (layers as Descriptor[]).map((l, i) => {
    validateDescriptor(l, `${what} layers[${i}]`);
    const id = diffIds[i];
    return {
      descriptor: l,
      ...(typeof id === 'string' && /^sha256:[0-9a-f]{64}$/.test(id) ? { diffId: id as Digest } : {}),
      open: () => openBlob(dir, l),
    };
  });
  const p = platform ?? fromConfig;
  return { manifest, config: configBlob, layers: out, ...(p !== undefined ? { platform: p } : {}) };
}

/** A blob's bytes, verified as they stream. */
export function openBlob(dir: string, d: Descriptor): Readable {
  const hex = hexOf(d.digest, 'blob');
  const v = new VerifyingStream({ size: d.size, sha256: hex, what: `${dir}: blob ${d.digest}` });
  const src = createReadStream(join(dir, 'blobs', 'sha256', hex));
  src.on('error', (e) => v.destroy(new DistillError('OCI_INVALID', `${dir}: cannot read the blob ${d.digest}: ${messageOf(e)}`, { cause: e, hint: 'the layout is incomplete' })));
  v.on('close', () => src.destroy());
  return src.pipe(v);
}

async function readDocument(dir: string, d: Descriptor): Promise<Blob> {
  if (d.size > DOCUMENT_CAP) throw invalid(`${dir}: ${d.digest} is ${d.size} bytes, more than a manifest or config may be`);
  const bytes = await readCapped(join(dir, 'blobs', 'sha256', hexOf(d.digest, 'blob')), DOCUMENT_CAP);
  if (bytes.length !== d.size || toDigest(sha256Hex(bytes)) !== d.digest) throw invalid(`${dir}: the blob ${d.digest} does not match its descriptor (damaged layout?)`);
  return { descriptor: d, bytes };
}

async function namedEntries(dir: string): Promise<Map<string, Descriptor>> {
  const path = join(dir, 'index.json');
  const index = parseObject(await readCapped(path, INDEX_JSON_CAP), path);
  if (index['schemaVersion'] !== 2 || !Array.isArray(index['manifests'])) throw invalid(`${path} is not an OCI image index`);
  const named = new Map<string, Descriptor>();
  for (const [i, e] of (index['manifests'] as unknown[]).entries()) {
    if (e === null || typeof e !== 'object') throw invalid(`${path}: manifests[${i}] is not an object`);
    const d = e as Descriptor;
    const name = d.annotations?.[ANNOTATION_REF_NAME];
    if (typeof name !== 'string') continue;
    validateDescriptor(d, `${path} ${name}`);
    if (named.has(name)) throw invalid(`${path}: the ref ${JSON.stringify(name)} is listed twice`);
    named.set(name, d);
  }
  return named;
}

async function readCapped(path: string, cap: number): Promise<Buffer> {
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a file');
    if (st.size > cap) throw invalid(`${path}: ${st.size} bytes, more than the ${cap} expected`);
    return await readFile(path);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw invalid(`cannot read ${path}: ${messageOf(e)}`);
  }
}

function parseObject(bytes: Buffer, what: string): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError('OCI_INVALID', `${what}: not JSON`, { cause: e });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw invalid(`${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function invalid(message: string): DistillError {
  return new DistillError('OCI_INVALID', message, { hint: 'give a complete OCI layout, e.g. one written by distill build --out or distill pull' });
}
