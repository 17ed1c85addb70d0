// The OCI image layout as an image source (image-spec image-layout.md): a ref of index.json resolved
// to the model's Image or ImageIndex. The layout is read, never trusted — index.json, manifests and
// configs are size-capped and checked against the digests that name them before they are parsed, and
// a layer's bytes are verified while they stream out (a damaged blob fails the read, never passes).
import { lstat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { VerifyingStream, sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { parseJsonObject } from '../json.js';
import { type Blob, type Descriptor, hexOf, validateDescriptor } from '../oci/descriptor.js';
import { ANNOTATION_REF_NAME } from '../oci/media-types.js';
import type { Artifact, Image, Layer } from '../oci/model.js';
import { type Platform, platformMatches } from '../oci/platform.js';
import { openRegularFile, readRegularFile } from '../util/regular-file.js';

const INDEX_TYPES = new Set(['application/vnd.oci.image.index.v1+json', 'application/vnd.docker.distribution.manifest.list.v2+json']);
const MANIFEST_TYPES = new Set(['application/vnd.oci.image.manifest.v1+json', 'application/vnd.docker.distribution.manifest.v2+json']);
/** index.json, manifests and configs are a few KiB; these caps are generous. */
const INDEX_JSON_CAP = 16 * 1024 * 1024;
const DOCUMENT_CAP = 8 * 1024 * 1024;

/**
 * Where a layout's files are: a directory, or the members of a tar (an oci-archive, or a docker
 * archive that is also a layout, as Docker ≥ 25 and distill write them). Paths are relative to the
 * layout's root (`index.json`, `blobs/sha256/<hex>`).
 */
export interface LayoutFiles {
  /** Names the layout in messages. */
  readonly name: string;
  /** A small file, whole; more than `cap` bytes is refused. */
  read(path: string, cap: number): Promise<Buffer>;
  /** A blob's bytes, streamed (unverified: openBlob checks them). */
  open(path: string): Readable;
  /** Whether the layout holds `path` at all (to tell a partial export from a damaged layout). */
  has?(path: string): Promise<boolean>;
}

/** The layout in directory `dir`. */
export function directoryFiles(dir: string): LayoutFiles {
  return {
    name: dir,
    read: (path, cap) => readCapped(join(dir, path), cap),
    // A layout is attacker-controlled: a blob that is a FIFO must not hang the read, nor a device
    // stream forever (util/regular-file.ts).
    open: (path) => openRegularFile(join(dir, path)),
    has: (path) => lstat(join(dir, path)).then(() => true, () => false),
  };
}

export interface LayoutArtifact {
  artifact: Artifact;
  /** The digest index.json names for the ref. */
  digest: Digest;
  ref: string;
}

/** The ref names of a layout's index.json, sorted. */
export async function layoutRefs(dir: string | LayoutFiles): Promise<string[]> {
  return [...(await namedEntries(filesOf(dir))).keys()].sort();
}

function filesOf(dir: string | LayoutFiles): LayoutFiles {
  return typeof dir === 'string' ? directoryFiles(dir) : dir;
}

export interface ReadLayoutOptions {
  /** Read only these platforms of an index (os/arch[/variant]); the others need not be in the layout. */
  platforms?: readonly string[];
}

/** Resolve `ref` (default: the layout's only ref) to the model. */
export async function readLayoutArtifact(layout: string | LayoutFiles, ref?: string, opts: ReadLayoutOptions = {}): Promise<LayoutArtifact> {
  const files = filesOf(layout);
  const dir = files.name;
  const named = await namedEntries(files);
  const names = [...named.keys()].sort();
  const chosen = ref ?? (names.length === 1 ? names[0]! : undefined);
  if (chosen === undefined) {
    throw new DistillError('USAGE', `${dir} holds ${names.length === 0 ? 'no named refs' : `the refs ${names.join(', ')}`}: say which`, { hint: `write ${dir}:REF, e.g. ${dir}:${names[0] ?? 'latest'}` });
  }
  const d = named.get(chosen);
  if (d === undefined) throw new DistillError('OCI_INVALID', `${dir} has no ref ${JSON.stringify(chosen)}`, { hint: `its refs are ${names.join(', ') || '(none)'}` });
  return { artifact: await readLayoutDescriptor(files, d, `the ref ${chosen}`, opts), digest: d.digest, ref: chosen };
}

/** The image or index a descriptor of the layout names (an index.json entry, or an index's child). */
export async function readLayoutDescriptor(files: LayoutFiles, d: Descriptor, what: string = d.digest, opts: ReadLayoutOptions = {}): Promise<Artifact> {
  const dir = files.name;
  const top = await readDocument(files, d);
  if (INDEX_TYPES.has(d.mediaType)) {
    const list = parseObject(top.bytes, `index ${d.digest}`)['manifests'];
    if (!Array.isArray(list)) throw invalid(`${dir}: the index ${d.digest} has no manifests list`);
    const images: Image[] = [];
    const absent: Descriptor[] = [];
    for (const [i, e] of (list as Descriptor[]).entries()) {
      validateDescriptor(e, `index ${d.digest} manifests[${i}]`);
      if (!MANIFEST_TYPES.has(e.mediaType)) throw invalid(`${dir}: the index ${d.digest} lists ${e.digest} of type ${e.mediaType}; nested indexes are not supported`);
      const wanted = opts.platforms;
      if (wanted !== undefined && e.platform !== undefined && !wanted.some((w) => platformMatches(w, e.platform!))) continue;
      if (files.has !== undefined && !(await files.has(`blobs/sha256/${hexOf(e.digest, 'blob')}`))) {
        absent.push(e);
        continue;
      }
      images.push(await readImage(files, await readDocument(files, e), e.platform));
    }
    if (absent.length > 0) throw partialExport(dir, d.digest, absent, images);
    return { index: top, images };
  }
  if (!MANIFEST_TYPES.has(d.mediaType)) throw invalid(`${dir}: ${what} is a ${d.mediaType}, not an image or index`);
  return readImage(files, top, d.platform);
}

/** Every entry of index.json (named or not), validated. */
export async function layoutEntries(files: LayoutFiles): Promise<Descriptor[]> {
  const path = join(files.name, 'index.json');
  const index = parseObject(await files.read('index.json', INDEX_JSON_CAP), path);
  if (index['schemaVersion'] !== 2 || !Array.isArray(index['manifests'])) throw invalid(`${path} is not an OCI image index`);
  return (index['manifests'] as unknown[]).map((e, i) => {
    if (e === null || typeof e !== 'object') throw invalid(`${path}: manifests[${i}] is not an object`);
    validateDescriptor(e as Descriptor, `${path} manifests[${i}]`);
    return e as Descriptor;
  });
}

async function readImage(files: LayoutFiles, manifest: Blob, platform: Platform | undefined): Promise<Image> {
  const dir = files.name;
  const what = `manifest ${manifest.descriptor.digest}`;
  const m = parseObject(manifest.bytes, what);
  const config = m['config'] as Descriptor | undefined;
  const layers = m['layers'];
  if (config === undefined || !Array.isArray(layers)) throw invalid(`${dir}: ${what} lacks a config or layers`);
  validateDescriptor(config, `${what} config`);
  const configBlob = await readDocument(files, config);
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
      open: () => openBlob(files, l),
    };
  });
  const p = platform ?? fromConfig;
  return { manifest, config: configBlob, layers: out, ...(p !== undefined ? { platform: p } : {}) };
}

/** A layout's blob that is not what its descriptor says: the layout's fault, not a mirror's or a lock's. */
const LAYOUT_BLOB_HINT = 'the layout is damaged or was altered (a blob differs from the descriptor naming it); do not use it — write it again (distill build --out, distill pull)';

/** A blob's bytes, verified as they stream. */
export function openBlob(layout: string | LayoutFiles, d: Descriptor): Readable {
  const files = filesOf(layout);
  const dir = files.name;
  const hex = hexOf(d.digest, 'blob');
  const v = new VerifyingStream({ size: d.size, sha256: hex, what: `${dir}: blob ${d.digest}`, hint: LAYOUT_BLOB_HINT });
  const src = files.open(`blobs/sha256/${hex}`);
  src.on('error', (e) => v.destroy(new DistillError('OCI_INVALID', `${dir}: cannot read the blob ${d.digest}: ${messageOf(e)}`, { cause: e, hint: 'the layout is incomplete' })));
  v.on('close', () => src.destroy());
  return src.pipe(v);
}

async function readDocument(files: LayoutFiles, d: Descriptor): Promise<Blob> {
  const dir = files.name;
  if (d.size > DOCUMENT_CAP) throw invalid(`${dir}: ${d.digest} is ${d.size} bytes, more than a manifest or config may be`);
  const bytes = await files.read(`blobs/sha256/${hexOf(d.digest, 'blob')}`, DOCUMENT_CAP);
  if (bytes.length !== d.size || toDigest(sha256Hex(bytes)) !== d.digest) throw invalid(`${dir}: the blob ${d.digest} does not match its descriptor (damaged layout?)`);
  return { descriptor: d, bytes };
}

async function namedEntries(files: LayoutFiles): Promise<Map<string, Descriptor>> {
  const path = join(files.name, 'index.json');
  const index = parseObject(await files.read('index.json', INDEX_JSON_CAP), path);
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
    return await readRegularFile(path, cap);
  } catch (e) {
    throw invalid(`cannot read ${path}: ${messageOf(e)}`);
  }
}

function parseObject(bytes: Buffer, what: string): Record<string, unknown> {
  return parseJsonObject(bytes, (m, cause) => invalid(`${what}: ${m}`, cause));
}

/**
 * An index whose platform manifests are only partly in the layout: what `ctr images export` and
 * `docker save` (containerd image store) write for the local platform by default. Said as such,
 * rather than as a missing file, so that the user knows what to export instead.
 */
function partialExport(dir: string, index: string, absent: Descriptor[], present: Image[]): DistillError {
  const name = (p: Platform | undefined, digest: string): string => (p !== undefined ? `${p.os}/${p.architecture}${p.variant !== undefined ? `/${p.variant}` : ''}` : digest);
  const missing = absent.map((e) => name(e.platform, e.digest)).join(', ');
  const held = present.map((i) => name(i.platform, i.manifest.descriptor.digest)).join(', ') || 'none';
  return new DistillError('OCI_INVALID', `${dir}: the index ${index} lists ${missing}, whose manifest${absent.length > 1 ? 's are' : ' is'} not in it (it holds: ${held}) — a single-platform export`, {
    hint: 'append reads just the platforms it holds with --platform; otherwise export every platform (ctr images export --all-platforms) or give a complete layout',
  });
}

function invalid(message: string, cause?: unknown): DistillError {
  return new DistillError('OCI_INVALID', message, { hint: 'give a complete OCI layout, e.g. one written by distill build --out or distill pull', ...(cause === undefined ? {} : { cause }) });
}
