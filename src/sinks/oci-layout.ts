// The OCI image-layout sink (image-spec image-layout.md): `oci-layout`, `index.json` and
// `blobs/sha256/<hex>` in a directory, readable by skopeo (`oci:DIR:REF`), umoci, crane, buildah and
// containerd. Creates the layout or updates one in place.
//
// Each blob is written once, through the one content store (cas/store.ts, in its layout form): one
// already present is re-hashed and kept when it matches, replaced when it does not. New bytes go to a
// temp file beside their final path, are checked against their descriptor while they stream (a layer
// is never read into memory), fsynced and renamed into place, so a blob path only ever holds the bytes
// its name promises. Children are written before their parents
// (layers, configs, manifests, indexes) and index.json last, so a crash at any point leaves a layout
// whose index.json references only complete blobs.
import { mkdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { ContentStore } from '../cas/store.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { type Blob, type Descriptor, descriptorJson, goJson, hexOf, invalid } from '../oci/descriptor.js';
import { type BuiltImage, checkBuiltImage, parseJson } from '../oci/image.js';
import { type BuiltIndex, checkBuiltIndex } from '../oci/index.js';
import { ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX } from '../oci/media-types.js';
import { type Artifact, type Layer, imagesOf, isImageIndex, topDescriptor } from '../oci/model.js';
import { cmp } from '../oci/platform.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { forEachLimit } from '../util/limit.js';

export type { BuiltImage, LayerSource } from '../oci/image.js';
export type { BuiltIndex } from '../oci/index.js';

export interface LayoutRef {
  /** The `org.opencontainers.image.ref.name`, e.g. "latest" for an index, "latest-amd64" for one platform. */
  name: string;
  target: BuiltIndex | BuiltImage;
}

export const OCI_LAYOUT_FILE = 'oci-layout';
export const OCI_LAYOUT_VERSION = '1.0.0';
/** Local layer files copied at once (each is a kernel copy, a hash and an fsync). */
const LOCAL_COPIES = 3;
/** Configs, manifests and indexes written at once (each a small write, an fsync and a rename). */
const SMALL_BLOBS = 8;
/** index.json is read whole; a layout's index is a few KiB, this is generous. */
const INDEX_JSON_CAP = 16 * 1024 * 1024;

export async function writeOciLayout(dir: string, refs: LayoutRef[]): Promise<void> {
  await writeLayoutRefs(dir, refs, {});
}

/**
 * writeOciLayout, for a build's own staged layout (sinks/build-outputs.ts): `copied` names layer blobs
 * already copied into `dir` and checked against their digest by this same write (EarlyLayerCopies),
 * which are not read a second time.
 */
export async function writeLayoutRefs(dir: string, refs: LayoutRef[], opts: { copied?: ReadonlySet<string> }): Promise<void> {
  const names = new Set<string>();
  for (const r of refs) {
    checkRefName(r.name);
    if (names.has(r.name)) throw invalid(`OCI layout: the ref ${JSON.stringify(r.name)} is given twice`);
    names.add(r.name);
    if ('index' in r.target) checkBuiltIndex(r.target, `ref ${r.name}`);
    else checkBuiltImage(r.target, `ref ${r.name}`);
  }

  await writeLayoutArtifacts(dir, refs.map((r) => ({ name: r.name, artifact: r.target })), opts.copied ? { copied: opts.copied } : {});
}

/** One ref of index.json naming an image or index of the model (from any source). */
export interface LayoutArtifactRef {
  name: string;
  artifact: Artifact;
}

export interface LayoutSinkOptions {
  /** Blobs written at once (default 1: the build's layers are local files). */
  concurrency?: number;
  /**
   * Whether a failed blob write may be tried again from a fresh `open()` (a source whose stream can
   * break mid-way, as a registry's can); at most `attempts` times in all (default 3).
   */
  retryable?: (e: unknown) => boolean;
  attempts?: number;
  /** Called for each blob: before its bytes flow, as they flow, and when it is in place. */
  onBlob?: (event: LayoutBlobEvent) => void;
  /** Layer digests whose blobs this write already put in place, checked (see writeLayoutRefs). */
  copied?: ReadonlySet<string>;
}

export type LayoutBlobEvent =
  | { type: 'start'; descriptor: Descriptor }
  | { type: 'bytes'; descriptor: Descriptor; bytes: number }
  | { type: 'done'; descriptor: Descriptor; present: boolean };

/**
 * Write images and indexes of the model, from any source, under the given ref names: every blob
 * once (layers, configs, manifests, indexes — children before parents), index.json last. OCI and
 * Docker schema 2 documents alike are written byte for byte, so every digest is the source's.
 * Foreign layers (descriptors with `urls`) are not the layout's to hold and are left out, as
 * skopeo and containerd leave them.
 */
export async function writeLayoutArtifacts(dir: string, refs: LayoutArtifactRef[], opts: LayoutSinkOptions = {}): Promise<void> {
  const names = new Set<string>();
  for (const r of refs) {
    checkRefName(r.name);
    if (names.has(r.name)) throw invalid(`OCI layout: the ref ${JSON.stringify(r.name)} is given twice`);
    names.add(r.name);
  }
  const blobsDir = join(dir, 'blobs', 'sha256');
  await io(`create ${blobsDir}`, () => mkdir(blobsDir, { recursive: true }));
  await ensureLayoutFile(dir);
  const existing = await readIndexJson(dir);

  // Every blob once, children before parents.
  const layers = new Map<string, Layer>();
  const configs = new Map<string, Blob>();
  const manifests = new Map<string, Blob>();
  const indexes = new Map<string, Blob>();
  for (const r of refs) {
    if (isImageIndex(r.artifact)) indexes.set(r.artifact.index.descriptor.digest, r.artifact.index);
    for (const img of imagesOf(r.artifact)) {
      for (const l of img.layers) {
        if (!Array.isArray((l.descriptor as { urls?: unknown }).urls)) layers.set(l.descriptor.digest, l);
      }
      configs.set(img.config.descriptor.digest, img.config);
      manifests.set(img.manifest.descriptor.digest, img.manifest);
    }
  }
  const store = new ContentStore(dir, { layout: true });
  await store.sweep(); // temporaries a killed run left beside their blobs
  const attempts = Math.max(1, opts.attempts ?? 3);
  const put = async (d: Descriptor, open: () => Readable): Promise<void> => {
    for (let attempt = 1; ; attempt++) {
      try {
        const present = await putBlob(store, d, open, opts.onBlob);
        opts.onBlob?.({ type: 'done', descriptor: d, present });
        return;
      } catch (e) {
        if (attempt >= attempts || opts.retryable?.(e) !== true) throw e;
      }
    }
  };
  // Local files (a build's layers) are copied by the kernel a few at once, so that one's fsync waits
  // while the next is copied and hashed; streamed layers go one at a time unless asked otherwise.
  const todo = [...layers.values()].filter((l) => !opts.copied?.has(l.descriptor.digest));
  const local = todo.filter((l) => l.file !== undefined);
  const streamed = todo.filter((l) => l.file === undefined);
  // A failure is thrown once everything in flight has settled (nothing then writes into a directory
  // being discarded).
  const settled = await Promise.allSettled([
    forEachLimit(local, opts.concurrency ?? LOCAL_COPIES, (l) => copyBlob(store, l.descriptor, l.file!, opts.onBlob)),
    forEachLimit(streamed, opts.concurrency ?? 1, (l) => put(l.descriptor, () => l.open())),
  ]);
  for (const r of settled) if (r.status === 'rejected') throw r.reason;
  // Children before parents: configs and manifests (side by side), then the indexes naming them.
  await forEachLimit([...configs.values(), ...manifests.values()], SMALL_BLOBS, (b) => put(b.descriptor, () => Readable.from([b.bytes])));
  await forEachLimit([...indexes.values()], SMALL_BLOBS, (b) => put(b.descriptor, () => Readable.from([b.bytes])));

  // index.json: entries for other ref names (and unnamed ones) are kept as they were; ours replace
  // any of the same name. Sorted by ref name, then digest, so the file depends only on its set of
  // entries; written in the same Go byte form as every other OCI document (oci/descriptor.ts).
  const kept = existing.manifests.filter((m) => !names.has(refNameOf(m) ?? ''));
  const ours = refs.map((r) => refDescriptor(r));
  const entries = [...kept, ...ours].sort(
    (a, b) => cmp(refNameOf(a) ?? '', refNameOf(b) ?? '') || cmp(String(a['digest']), String(b['digest'])),
  );
  const { schemaVersion: _v, mediaType: _t, ...rest } = existing.rest;
  const indexJson = { schemaVersion: 2, mediaType: MEDIA_TYPE_INDEX, manifests: entries, ...rest };
  await putFile(join(dir, 'index.json'), Buffer.from(goJson(indexJson), 'utf8'));
}

function refDescriptor(r: LayoutArtifactRef): Record<string, unknown> {
  const target = topDescriptor(r.artifact);
  const d: Descriptor = {
    ...target,
    annotations: { ...target.annotations, [ANNOTATION_REF_NAME]: r.name },
  };
  // A single-platform entry carries its platform, as docker save's index.json does.
  if (!isImageIndex(r.artifact) && r.artifact.platform !== undefined) d.platform = r.artifact.platform;
  return descriptorJson(d);
}

function refNameOf(m: Record<string, unknown>): string | undefined {
  const a = m['annotations'];
  if (a === null || typeof a !== 'object') return undefined;
  const n = (a as Record<string, unknown>)[ANNOTATION_REF_NAME];
  return typeof n === 'string' ? n : undefined;
}

// image-layout.md's grammar for ref.name: components of alphanumerics joined by - . _ : @ + or --,
// separated by /.
const COMPONENT = '[A-Za-z0-9]+(?:(?:[-._:@+]|--)[A-Za-z0-9]+)*';
const REF_NAME = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);

export function checkRefName(name: string): void {
  if (typeof name !== 'string' || !REF_NAME.test(name)) {
    throw invalid(`OCI layout: ${JSON.stringify(name)} is not a valid ref name`, 'use letters, digits and - . _ : @ +, e.g. latest-amd64');
  }
}

async function ensureLayoutFile(dir: string): Promise<void> {
  const path = join(dir, OCI_LAYOUT_FILE);
  let text: string;
  try {
    text = await readCapped(path, 4096);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw ioError(`read ${path}`, e);
    await putFile(path, Buffer.from(goJson({ imageLayoutVersion: OCI_LAYOUT_VERSION }), 'utf8'));
    return;
  }
  const v = (parseJson(Buffer.from(text), path) as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  if (v !== OCI_LAYOUT_VERSION) {
    throw invalid(`${path}: imageLayoutVersion ${JSON.stringify(v)}, expected "${OCI_LAYOUT_VERSION}"`, 'write to an empty directory');
  }
}

interface ExistingIndex {
  manifests: Record<string, unknown>[];
  /** Other top-level fields (annotations, …), kept. */
  rest: Record<string, unknown>;
}

async function readIndexJson(dir: string): Promise<ExistingIndex> {
  const path = join(dir, 'index.json');
  let text: string;
  try {
    text = await readCapped(path, INDEX_JSON_CAP);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { manifests: [], rest: {} };
    throw ioError(`read ${path}`, e);
  }
  const parsed = parseJson(Buffer.from(text), path) as Record<string, unknown> | null;
  const manifests = parsed?.['manifests'];
  if (parsed === null || typeof parsed !== 'object' || parsed['schemaVersion'] !== 2 || !Array.isArray(manifests) ||
      manifests.some((m) => m === null || typeof m !== 'object' || Array.isArray(m))) {
    throw invalid(`${path}: not an OCI image index`, 'the directory is not an OCI layout or index.json is damaged; write to an empty directory');
  }
  const { manifests: _, ...rest } = parsed;
  return { manifests: manifests as Record<string, unknown>[], rest };
}

async function readCapped(path: string, cap: number): Promise<string> {
  const st = await stat(path);
  if (st.size > cap) throw invalid(`${path}: ${st.size} bytes, more than the ${cap} expected`);
  return readFile(path, 'utf8');
}

/**
 * Write one blob unless an identical one is there (re-hashed, never trusted; then true); `open` is only
 * called when bytes are needed. The layout's blobs go through the one content store (cas/store.ts).
 */
async function putBlob(store: ContentStore, d: Descriptor, open: () => Readable, onBlob?: LayoutSinkOptions['onBlob']): Promise<boolean> {
  const hex = hexOf(d.digest, 'blob');
  const counted = (): Readable => {
    onBlob?.({ type: 'start', descriptor: d });
    if (onBlob === undefined) return open();
    let seen = 0;
    const count = new Transform({
      transform(chunk: Buffer, _enc, cb: TransformCallback) {
        seen += chunk.length;
        onBlob({ type: 'bytes', descriptor: d, bytes: seen });
        cb(null, chunk);
      },
    });
    const src = open();
    src.on('error', (e) => count.destroy(e));
    return src.pipe(count);
  };
  let stored;
  try {
    stored = await store.putStream(counted, { sha256: hex, size: d.size, what: d.digest });
  } catch (e) {
    if (isDistillError(e, 'BLOB_SIZE_MISMATCH') || isDistillError(e, 'BLOB_DIGEST_MISMATCH')) {
      throw invalid(`blob ${d.digest}: the bytes do not match the descriptor: ${e.message}`, 'the layer file changed after it was built, or its descriptor is wrong; rebuild', e);
    }
    if (e instanceof DistillError) throw e;
    throw new DistillError('LAYER_IO', `cannot write blob ${d.digest} to ${store.dir}: ${messageOf(e)}`, { cause: e });
  }
  return !stored.written;
}

/** A build's layer file copied into a layout directory ahead of writeLayoutRefs (the same copy, check and errors as copyBlob's). */
export async function copyLayerFile(dir: string, blob: { digest: string; size: number }, file: string): Promise<void> {
  await copyChecked(new ContentStore(dir, { layout: true }), blob, file);
}

/**
 * A layer that is a local file (a build's own): copied by the kernel, then hashed in place (store.copyIn)
 * — the same check as putBlob's stream, without the bytes passing through JS.
 */
async function copyBlob(store: ContentStore, d: Descriptor, file: string, onBlob?: LayoutSinkOptions['onBlob']): Promise<void> {
  onBlob?.({ type: 'start', descriptor: d });
  const written = await copyChecked(store, d, file);
  if (written) onBlob?.({ type: 'bytes', descriptor: d, bytes: d.size });
  onBlob?.({ type: 'done', descriptor: d, present: !written });
}

/** store.copyIn with the layout's errors; true if the blob was written (false: an identical one was there). */
async function copyChecked(store: ContentStore, d: { digest: string; size: number }, file: string): Promise<boolean> {
  const hex = hexOf(d.digest, 'blob');
  try {
    return (await store.copyIn({ sha256: hex, size: d.size, what: d.digest }, file)).written;
  } catch (e) {
    if (isDistillError(e, 'BLOB_SIZE_MISMATCH') || isDistillError(e, 'BLOB_DIGEST_MISMATCH')) {
      throw invalid(`blob ${d.digest}: the bytes do not match the descriptor: ${e.message}`, 'the layer file changed after it was built, or its descriptor is wrong; rebuild', e);
    }
    if (e instanceof DistillError) throw e;
    throw new DistillError('LAYER_IO', `cannot write blob ${d.digest} to ${store.dir}: ${messageOf(e)}`, { cause: e });
  }
}

/** A small file (oci-layout, index.json) via temp + fsync + rename. */
async function putFile(path: string, bytes: Buffer): Promise<void> {
  await writeFileAtomic(path, bytes);
}

async function io<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw ioError(what, e);
  }
}

function ioError(what: string, e: unknown): DistillError {
  return e instanceof DistillError ? e : new DistillError('LAYER_IO', `cannot ${what}: ${messageOf(e)}`, { cause: e });
}
