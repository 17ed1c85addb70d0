// Pushing an OCI layout to a registry, as go-containerregistry's remote package writes it down
// (pkg/v1/remote/README.md) over the OCI distribution spec 1.1 push API: for every ref name in the
// layout's index.json, the whole graph it names (index → manifests → config + layers). Blobs first —
// each one HEAD → cross-repository mount (only from the repositories the caller names) → upload —
// with bounded concurrency; then manifests by digest, children before the indexes that list them;
// then the tags, last: a tag is written only once everything it references is in the registry, so
// a push that fails or is killed part-way never leaves a tag pointing at something missing.
//
// The layout is read, never trusted: index.json and every manifest are size-capped and checked
// against their descriptors before they are parsed, and blob bytes are verified while they upload.
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, toDigest } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { noProgress } from '../events.js';
import { type Descriptor, validateDescriptor } from '../oci/descriptor.js';
import { ANNOTATION_REF_NAME } from '../oci/media-types.js';
import {
  MANIFEST_CAP,
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  RegistryClient,
  type RegistryOptions,
} from './client.js';
import { isValidTag, parseReference } from './reference.js';
import { forEachLimit } from './sink.js';

export interface PushOptions extends RegistryOptions {
  /** Only these ref names of the layout (default: every named entry of index.json). */
  refs?: string[];
  /** The tag for each ref name (default: the ref name itself, or the tag in `repository` when one ref is pushed). */
  tags?: Record<string, string> | ((refName: string) => string);
  /** Blobs in flight at once (default 4). */
  concurrency?: number;
  /** Repositories on the same registry to try mounting blobs from before uploading them. */
  mountFrom?: string[];
}

export interface PushedRef {
  ref: string;
  tag: string;
  digest: string;
  /** registry/repository:tag@digest */
  reference: string;
}

export interface PushResult {
  pushed: PushedRef[];
  /** Bytes of the blobs that were uploaded (0 when the registry had every blob). */
  bytesUploaded: number;
  blobsUploaded: number;
  blobsMounted: number;
  /** Blobs the registry already had (HEAD hits). */
  blobsSkipped: number;
  manifestsPushed: number;
  manifestsSkipped: number;
}

/** index.json is a few KiB; this is generous. */
const INDEX_JSON_CAP = 16 * 1024 * 1024;
/** Index → index → manifest nesting deeper than this is not an image. */
const DEPTH_MAX = 8;
const INDEX_TYPES = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
const MANIFEST_TYPES = new Set([MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]);

export async function pushLayout(layoutDir: string, repository: string, opts: PushOptions = {}): Promise<PushResult> {
  const target = parseReference(repository);
  if (target.digest !== undefined) {
    throw new DistillError('REFERENCE_INVALID', `push to ${target.toString()}: a push target cannot name a digest`, {
      hint: 'name a repository (and optionally a tag), e.g. 127.0.0.1:5000/distill/static',
    });
  }
  const graph = await readLayoutGraph(layoutDir, opts.refs);
  const tagOf = (ref: string): string => {
    const t = typeof opts.tags === 'function' ? opts.tags(ref) : opts.tags?.[ref] ?? (graph.roots.length === 1 && target.tag !== undefined ? target.tag : ref);
    if (typeof t !== 'string' || !isValidTag(t)) {
      throw new DistillError('REFERENCE_INVALID', `the ref ${JSON.stringify(ref)} would be pushed as the tag ${JSON.stringify(t)}, which is not a valid tag`, {
        hint: 'pass a tag for it (tags are up to 128 letters, digits, _ . and -)',
      });
    }
    return t;
  };
  // Every tag is known before anything is sent: a bad one must not fail the push half-way.
  const tags = graph.roots.map((r) => ({ ...r, tag: tagOf(r.ref) }));

  const emit = opts.onProgress ?? noProgress;
  const repo = target.repository;
  const client = new RegistryClient(target.registry, { ...opts, access: 'push' });
  const result: PushResult = { pushed: [], bytesUploaded: 0, blobsUploaded: 0, blobsMounted: 0, blobsSkipped: 0, manifestsPushed: 0, manifestsSkipped: 0 };
  try {
    // 1. Blobs: configs and layers.
    await forEachLimit([...graph.blobs.values()], opts.concurrency ?? 4, async (b) => {
      const present = await client.headBlob(repo, b.digest);
      if (present !== undefined && (present.size === b.size || present.size < 0)) {
        result.blobsSkipped++;
        emit({ type: 'blob-pushed', repository: repo, digest: b.digest, size: b.size, outcome: 'exists' });
        return;
      }
      emit({ type: 'blob-push-start', repository: repo, digest: b.digest, size: b.size });
      let lastReported = 0;
      const r = await client.uploadBlob(repo, b, () => createReadStream(b.path), {
        ...(opts.mountFrom !== undefined ? { mountFrom: opts.mountFrom } : {}),
        onBytes: (n) => {
          if (n - lastReported >= 1024 * 1024 || n === b.size) {
            lastReported = n;
            emit({ type: 'blob-push-progress', repository: repo, digest: b.digest, bytes: n, total: b.size });
          }
        },
      });
      if (r.outcome === 'mounted') {
        result.blobsMounted++;
        emit({ type: 'blob-pushed', repository: repo, digest: b.digest, size: b.size, outcome: 'mounted', ...(r.from !== undefined ? { from: r.from } : {}) });
      } else {
        result.blobsUploaded++;
        result.bytesUploaded += b.size;
        emit({ type: 'blob-pushed', repository: repo, digest: b.digest, size: b.size, outcome: 'uploaded' });
      }
    });

    // 2. Manifests by digest, deepest first (an index only after every manifest it lists).
    const byDepth = [...graph.manifests.values()].sort((a, b) => b.depth - a.depth);
    const depths = [...new Set(byDepth.map((m) => m.depth))];
    for (const d of depths) {
      await forEachLimit(byDepth.filter((m) => m.depth === d), opts.concurrency ?? 4, async (m) => {
        const have = await client.headManifest(repo, m.digest);
        if (have !== undefined) {
          result.manifestsSkipped++;
          emit({ type: 'manifest-pushed', repository: repo, digest: m.digest, reference: m.digest, existed: true });
          return;
        }
        await client.putManifest(repo, m.digest, m.bytes, m.mediaType);
        result.manifestsPushed++;
        emit({ type: 'manifest-pushed', repository: repo, digest: m.digest, reference: m.digest, existed: false });
      });
    }

    // 3. Tags, last.
    for (const t of tags) {
      const m = graph.manifests.get(t.digest)!;
      await client.putManifest(repo, t.tag, m.bytes, m.mediaType);
      emit({ type: 'manifest-pushed', repository: repo, digest: t.digest, reference: t.tag, existed: false });
      result.pushed.push({ ref: t.ref, tag: t.tag, digest: t.digest, reference: `${target.registry}/${repo}:${t.tag}@${t.digest}` });
    }
  } finally {
    await client.close();
  }
  return result;
}

// ---- reading the layout ----

interface LayoutBlob {
  digest: string;
  size: number;
  path: string;
}

interface LayoutManifest {
  digest: string;
  mediaType: string;
  bytes: Buffer;
  /** 0 for a ref's root; children are deeper. */
  depth: number;
}

interface LayoutGraph {
  roots: { ref: string; digest: string }[];
  blobs: Map<string, LayoutBlob>;
  manifests: Map<string, LayoutManifest>;
}

/** Everything the chosen refs reach, checked: manifests against their digests, blob files by size. */
export async function readLayoutGraph(dir: string, only: string[] | undefined): Promise<LayoutGraph> {
  const indexPath = join(dir, 'index.json');
  const index = parseJsonObject(await readCapped(indexPath, INDEX_JSON_CAP), indexPath);
  if (index['schemaVersion'] !== 2 || !Array.isArray(index['manifests'])) throw invalid(`${indexPath} is not an OCI image index`);
  const entries = index['manifests'] as unknown[];
  const named = new Map<string, Descriptor>();
  for (const [i, e] of entries.entries()) {
    if (e === null || typeof e !== 'object') throw invalid(`${indexPath}: manifests[${i}] is not an object`);
    const d = e as Descriptor;
    const name = d.annotations?.[ANNOTATION_REF_NAME];
    if (typeof name !== 'string') continue;
    validateDescriptor(d, `${indexPath} ${name}`);
    if (named.has(name)) throw invalid(`${indexPath}: the ref ${JSON.stringify(name)} is listed twice`);
    named.set(name, d);
  }
  const chosen = only ?? [...named.keys()].sort();
  if (chosen.length === 0) throw invalid(`${indexPath} names no refs (no ${ANNOTATION_REF_NAME} annotations): nothing to push`);
  const graph: LayoutGraph = { roots: [], blobs: new Map(), manifests: new Map() };
  for (const ref of chosen) {
    const d = named.get(ref);
    if (d === undefined) {
      throw new DistillError('OCI_INVALID', `${dir} has no ref ${JSON.stringify(ref)}`, {
        hint: `the layout's refs are ${[...named.keys()].sort().join(', ') || '(none)'}`,
      });
    }
    graph.roots.push({ ref, digest: d.digest });
    await walk(dir, d, 0, graph);
  }
  return graph;
}

async function walk(dir: string, d: Descriptor, depth: number, graph: LayoutGraph): Promise<void> {
  if (depth > DEPTH_MAX) throw invalid(`${dir}: manifests nested deeper than ${DEPTH_MAX}`);
  const known = graph.manifests.get(d.digest);
  if (known !== undefined) {
    // Children must stay deeper than every parent: a deeper sighting pushes its subtree down too.
    if (depth > known.depth) {
      known.depth = depth;
      await descend(dir, known, graph);
    }
    return;
  }
  if (!INDEX_TYPES.has(d.mediaType) && !MANIFEST_TYPES.has(d.mediaType)) {
    throw invalid(`${dir}: ${d.digest} has the media type ${d.mediaType}, which is neither an image manifest nor an index`);
  }
  if (d.size > MANIFEST_CAP) throw invalid(`${dir}: the manifest ${d.digest} is ${d.size} bytes, more than registries accept`);
  const bytes = await readCapped(blobPath(dir, d.digest), MANIFEST_CAP);
  if (bytes.length !== d.size || toDigest(sha256Hex(bytes)) !== d.digest) {
    throw invalid(`${dir}: the blob ${d.digest} does not match its descriptor (damaged layout?)`);
  }
  const parsed = parseJsonObject(bytes, `manifest ${d.digest}`);
  const declared = parsed['mediaType'];
  if (declared !== undefined && declared !== d.mediaType) {
    throw invalid(`${dir}: ${d.digest} is described as ${d.mediaType} but says it is ${String(declared)}`);
  }
  const m: LayoutManifest = { digest: d.digest, mediaType: d.mediaType, bytes, depth };
  graph.manifests.set(d.digest, m);
  await descend(dir, m, graph);
}

async function descend(dir: string, m: LayoutManifest, graph: LayoutGraph): Promise<void> {
  const parsed = parseJsonObject(m.bytes, `manifest ${m.digest}`);
  if (INDEX_TYPES.has(m.mediaType)) {
    const children = parsed['manifests'];
    if (!Array.isArray(children)) throw invalid(`${dir}: the index ${m.digest} has no manifests list`);
    for (const [i, c] of children.entries()) {
      validateDescriptor(c as Descriptor, `index ${m.digest} manifests[${i}]`);
      await walk(dir, c as Descriptor, m.depth + 1, graph);
    }
    return;
  }
  const config = parsed['config'] as Descriptor | undefined;
  const layers = parsed['layers'];
  if (config === undefined || !Array.isArray(layers)) throw invalid(`${dir}: the manifest ${m.digest} lacks a config or layers`);
  validateDescriptor(config, `manifest ${m.digest} config`);
  await addBlob(dir, config, graph, false);
  for (const [i, l] of (layers as Descriptor[]).entries()) {
    validateDescriptor(l, `manifest ${m.digest} layers[${i}]`);
    // A foreign layer (urls set, e.g. Windows base layers) may be absent by design; it is not ours to push.
    const foreign = Array.isArray((l as { urls?: unknown }).urls);
    await addBlob(dir, l, graph, foreign);
  }
}

async function addBlob(dir: string, d: Descriptor, graph: LayoutGraph, mayBeAbsent: boolean): Promise<void> {
  if (graph.blobs.has(d.digest)) return;
  const path = blobPath(dir, d.digest);
  let size: number;
  try {
    const st = await stat(path);
    if (!st.isFile()) throw new Error('not a file');
    size = st.size;
  } catch (e) {
    if (mayBeAbsent) return;
    throw invalid(`${dir}: the blob ${d.digest} is missing (${messageOf(e)}); the layout is incomplete`);
  }
  if (size !== d.size) throw invalid(`${dir}: the blob ${d.digest} is ${size} bytes, its descriptor says ${d.size}`);
  graph.blobs.set(d.digest, { digest: d.digest, size: d.size, path });
}

function blobPath(dir: string, digest: string): string {
  return join(dir, 'blobs', 'sha256', digest.slice('sha256:'.length));
}

async function readCapped(path: string, cap: number): Promise<Buffer> {
  try {
    const st = await stat(path);
    if (st.size > cap) throw invalid(`${path}: ${st.size} bytes, more than the ${cap} expected`);
    return await readFile(path);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw invalid(`cannot read ${path}: ${messageOf(e)}`);
  }
}

function parseJsonObject(bytes: Buffer, what: string): Record<string, unknown> {
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
  return new DistillError('OCI_INVALID', message, { hint: 'push a complete OCI layout, e.g. one written by distill build --out' });
}

export { forEachLimit };
