// Pulling an image from a registry (OCI distribution spec 1.1 pull API) into an OCI image layout
// (image-spec image-layout.md), readable by skopeo (`oci:DIR:REF`), umoci and distill itself. OCI and
// Docker schema 2 manifests and indexes are accepted and written as they are (their bytes are what
// their digests name). With `platforms`, an index is narrowed to the matching entries: the layout
// then holds a new index (same fields, fewer manifests) whose digest differs from the registry's —
// both are reported.
//
// Writing follows the layout sink's rules (sinks/oci-layout.ts): every blob verified while it
// streams into a temp file beside its final path, fsynced, renamed; blobs already present are
// re-hashed and kept when they match; index.json last, keeping other refs' entries.
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { sha256Hex, toDigest } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { noProgress } from '../events.js';
import { type Descriptor, goJson, validateDescriptor } from '../oci/descriptor.js';
import { ANNOTATION_REF_NAME } from '../oci/media-types.js';
import { type Platform, cmp, debianArchToPlatform, platformString } from '../oci/platform.js';
import { OCI_LAYOUT_FILE, OCI_LAYOUT_VERSION, checkRefName } from '../sinks/oci-layout.js';
import {
  MEDIA_TYPE_DOCKER_MANIFEST,
  MEDIA_TYPE_DOCKER_MANIFEST_LIST,
  MEDIA_TYPE_OCI_INDEX,
  MEDIA_TYPE_OCI_MANIFEST,
  RegistryClient,
  type RegistryOptions,
} from './client.js';
import { forEachLimit } from './sink.js';
import { fileMatches, writeAtomic } from '../util/atomic-write.js';
import { parseReference } from './reference.js';

export interface PullOptions extends RegistryOptions {
  /** Only these platforms of an index: 'linux/amd64', 'linux/arm64/v8', a Debian architecture ('arm64'), or a Platform. */
  platforms?: (string | Platform)[];
  /** The ref name in index.json (default: the tag, else the digest). */
  refName?: string;
  /** Blobs downloaded at once (default 4). */
  concurrency?: number;
}

export interface PullResult {
  /** registry/repository[:tag]@digest that was pulled. */
  reference: string;
  refName: string;
  /** The digest index.json names: the registry's, or the narrowed index's when `platforms` dropped entries. */
  digest: string;
  /** The digest of what the registry served for the reference. */
  sourceDigest: string;
  mediaType: string;
  /** The image manifests written. */
  manifests: { digest: string; platform?: Platform }[];
  bytesDownloaded: number;
  blobsDownloaded: number;
  /** Blobs already in the layout (verified). */
  blobsCached: number;
}

const INDEX_TYPES = new Set([MEDIA_TYPE_OCI_INDEX, MEDIA_TYPE_DOCKER_MANIFEST_LIST]);
const MANIFEST_TYPES = new Set([MEDIA_TYPE_OCI_MANIFEST, MEDIA_TYPE_DOCKER_MANIFEST]);
const INDEX_JSON_CAP = 16 * 1024 * 1024;
const CONFIG_CAP = 8 * 1024 * 1024;
const DEPTH_MAX = 4;

export async function pullImage(ref: string, outDir: string, opts: PullOptions = {}): Promise<PullResult> {
  const parsed = parseReference(ref);
  const reference = parsed.digest ?? parsed.tag ?? 'latest';
  const refName = opts.refName ?? parsed.tag ?? parsed.digest ?? 'latest';
  checkRefName(refName);
  const wanted = opts.platforms?.map(toPlatform);
  const emit = opts.onProgress ?? noProgress;
  const repo = parsed.repository;
  const client = new RegistryClient(parsed.registry, { ...opts, access: 'pull' });

  const manifests = new Map<string, { bytes: Buffer; mediaType: string }>();
  const blobs = new Map<string, Descriptor>();
  const images: { digest: string; platform?: Platform; config: Descriptor }[] = [];
  const result: PullResult = {
    reference: '',
    refName,
    digest: '',
    sourceDigest: '',
    mediaType: '',
    manifests: [],
    bytesDownloaded: 0,
    blobsDownloaded: 0,
    blobsCached: 0,
  };
  try {
    const root = await client.getManifest(repo, reference);
    result.sourceDigest = root.digest;
    result.mediaType = root.mediaType;
    result.reference = `${parsed.registry}/${repo}${parsed.tag !== undefined ? `:${parsed.tag}` : ''}@${root.digest}`;
    let rootBytes = root.bytes;

    const visitImage = (digest: string, bytes: Buffer, platform: Platform | undefined): void => {
      const m = jsonObject(bytes, `manifest ${digest}`);
      const config = m['config'] as Descriptor | undefined;
      const layers = m['layers'];
      if (config === undefined || !Array.isArray(layers)) throw protocol(`manifest ${digest} lacks a config or layers`);
      validateDescriptor(config, `manifest ${digest} config`);
      blobs.set(config.digest, config);
      for (const [i, l] of (layers as Descriptor[]).entries()) {
        validateDescriptor(l, `manifest ${digest} layers[${i}]`);
        if (Array.isArray((l as { urls?: unknown }).urls)) continue; // foreign layer: not served by this registry
        blobs.set(l.digest, l);
      }
      images.push({ digest, config, ...(platform !== undefined ? { platform } : {}) });
    };

    const visitIndex = async (digest: string, bytes: Buffer, depth: number, filter: boolean): Promise<Buffer> => {
      if (depth > DEPTH_MAX) throw protocol(`indexes nested deeper than ${DEPTH_MAX}`);
      const idx = jsonObject(bytes, `index ${digest}`);
      const list = idx['manifests'];
      if (!Array.isArray(list)) throw protocol(`index ${digest} has no manifests list`);
      const entries = list as Descriptor[];
      entries.forEach((e, i) => validateDescriptor(e, `index ${digest} manifests[${i}]`));
      const kept = filter && wanted !== undefined ? entries.filter((e) => e.platform !== undefined && wanted.some((w) => matches(w, e.platform!))) : entries;
      if (kept.length === 0) {
        const have = entries.map((e) => (e.platform ? platformString(e.platform) : '(no platform)')).join(', ');
        throw new DistillError('REGISTRY_NOT_FOUND', `${parsed.toString()} has no manifest for ${wanted!.map(platformString).join(', ')}`, {
          hint: `it has: ${have || 'nothing'}`,
        });
      }
      for (const e of kept) {
        if (manifests.has(e.digest)) continue;
        const child = await client.getManifest(repo, e.digest);
        if (child.bytes.length !== e.size) throw protocol(`manifest ${e.digest} is ${child.bytes.length} bytes, the index says ${e.size}`);
        manifests.set(e.digest, { bytes: child.bytes, mediaType: child.mediaType });
        if (INDEX_TYPES.has(child.mediaType)) await visitIndex(e.digest, child.bytes, depth + 1, false);
        else visitImage(e.digest, child.bytes, e.platform);
      }
      if (kept.length === entries.length) return bytes;
      // Narrowed: the same document with fewer entries, in Go's byte form like every other OCI document we write.
      return Buffer.from(goJson({ ...idx, manifests: kept }), 'utf8');
    };

    if (INDEX_TYPES.has(root.mediaType)) {
      rootBytes = await visitIndex(root.digest, root.bytes, 0, true);
    } else if (MANIFEST_TYPES.has(root.mediaType)) {
      visitImage(root.digest, root.bytes, undefined);
    } else {
      throw protocol(`${parsed.toString()} is a ${root.mediaType}, not an image or index`);
    }
    const rootDigest = rootBytes === root.bytes ? root.digest : toDigest(sha256Hex(rootBytes));
    result.digest = rootDigest;
    manifests.set(rootDigest, { bytes: rootBytes, mediaType: root.mediaType });

    // The layout: blobs (configs, layers), then manifests, then index.json.
    const blobsDir = join(outDir, 'blobs', 'sha256');
    await io(`create ${blobsDir}`, () => mkdir(blobsDir, { recursive: true }));
    await ensureLayoutFile(outDir);
    await forEachLimit([...blobs.values()], opts.concurrency ?? 4, async (d) => {
      const final = join(blobsDir, d.digest.slice('sha256:'.length));
      if (await blobMatches(final, d)) {
        result.blobsCached++;
        emit({ type: 'download-done', what: d.digest, bytes: d.size, cached: true });
        return;
      }
      emit({ type: 'download-start', what: d.digest, bytes: d.size });
      let last = 0;
      await intoPlace(final, async (tmp) => {
        await client.downloadBlob(repo, d, tmp, (n) => {
          if (n - last >= 1024 * 1024 || n === d.size) {
            last = n;
            emit({ type: 'download-progress', what: d.digest, bytes: n, total: d.size });
          }
        });
      });
      result.blobsDownloaded++;
      result.bytesDownloaded += d.size;
      emit({ type: 'download-done', what: d.digest, bytes: d.size, cached: false });
    });
    for (const [digest, m] of manifests) {
      await intoPlace(join(blobsDir, digest.slice('sha256:'.length)), (tmp) => writeFile(tmp, m.bytes));
    }

    // A single image's entry carries its platform, as the layout sink writes it.
    let platform: Platform | undefined;
    if (MANIFEST_TYPES.has(root.mediaType)) {
      platform = await configPlatform(join(blobsDir, images[0]!.config.digest.slice('sha256:'.length)));
      if (wanted !== undefined && (platform === undefined || !wanted.some((w) => matches(w, platform!)))) {
        throw new DistillError('REGISTRY_NOT_FOUND', `${parsed.toString()} is a single image for ${platform ? platformString(platform) : 'no platform'}, not ${wanted.map(platformString).join(', ')}`);
      }
    }
    const entry: Record<string, unknown> = { mediaType: root.mediaType, digest: rootDigest, size: rootBytes.length, annotations: { [ANNOTATION_REF_NAME]: refName } };
    if (platform !== undefined) entry['platform'] = platform.variant ? { architecture: platform.architecture, os: platform.os, variant: platform.variant } : { architecture: platform.architecture, os: platform.os };
    await writeIndexJson(outDir, refName, entry);
    result.manifests = images.map((i) => ({ digest: i.digest, ...(i.platform ?? platform ? { platform: (i.platform ?? platform)! } : {}) }));
    return result;
  } finally {
    await client.close();
  }
}

// ---- platforms ----

function toPlatform(p: string | Platform): Platform {
  if (typeof p !== 'string') return p;
  const parts = p.split('/');
  if (parts.length === 1) {
    try {
      return debianArchToPlatform(p);
    } catch {
      return { os: 'linux', architecture: p };
    }
  }
  if (parts.length > 3 || parts.some((x) => x === '')) {
    throw new DistillError('USAGE', `${JSON.stringify(p)} is not a platform`, { hint: 'write platforms as os/arch[/variant], e.g. linux/arm64/v8' });
  }
  return parts[2] !== undefined ? { os: parts[0]!, architecture: parts[1]!, variant: parts[2] } : { os: parts[0]!, architecture: parts[1]! };
}

/** containerd's rule, simplified: os and architecture equal; a wanted variant must match (arm64's missing variant is v8). */
function matches(wanted: Platform, have: Platform): boolean {
  if (wanted.os !== have.os || wanted.architecture !== have.architecture) return false;
  if (wanted.variant === undefined) return true;
  const v = have.variant ?? (have.architecture === 'arm64' ? 'v8' : undefined);
  return v === wanted.variant;
}

async function configPlatform(path: string): Promise<Platform | undefined> {
  try {
    const st = await stat(path);
    if (st.size > CONFIG_CAP) return undefined;
    const c = JSON.parse(await readFile(path, 'utf8')) as { os?: unknown; architecture?: unknown; variant?: unknown };
    if (typeof c.os !== 'string' || typeof c.architecture !== 'string') return undefined;
    return typeof c.variant === 'string' && c.variant !== '' ? { os: c.os, architecture: c.architecture, variant: c.variant } : { os: c.os, architecture: c.architecture };
  } catch {
    return undefined;
  }
}

// ---- writing the layout ----

/** Write via a temp file beside `final`, fsync, rename: `final` only ever holds complete bytes. */
const intoPlace = writeAtomic;

function blobMatches(path: string, d: Descriptor): Promise<boolean> {
  return fileMatches(path, { size: d.size, sha256: d.digest.slice('sha256:'.length) });
}

async function ensureLayoutFile(dir: string): Promise<void> {
  const path = join(dir, OCI_LAYOUT_FILE);
  let text: string | undefined;
  try {
    const st = await stat(path);
    if (st.size > 4096) throw new DistillError('OCI_INVALID', `${path} is not an OCI layout file`);
    text = await readFile(path, 'utf8');
  } catch (e) {
    if (e instanceof DistillError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DistillError('LAYER_IO', `cannot read ${path}: ${messageOf(e)}`, { cause: e });
  }
  if (text === undefined) {
    await intoPlace(path, (tmp) => writeFile(tmp, goJson({ imageLayoutVersion: OCI_LAYOUT_VERSION })));
    return;
  }
  let v: unknown;
  try {
    v = (JSON.parse(text) as { imageLayoutVersion?: unknown } | null)?.imageLayoutVersion;
  } catch {
    v = undefined;
  }
  if (v !== OCI_LAYOUT_VERSION) {
    throw new DistillError('OCI_INVALID', `${path}: not an OCI layout of version ${OCI_LAYOUT_VERSION}`, { hint: 'pull into an empty directory' });
  }
}

/** index.json with our entry replacing any of the same ref name; others kept; sorted by ref name, then digest. */
async function writeIndexJson(dir: string, refName: string, entry: Record<string, unknown>): Promise<void> {
  const path = join(dir, 'index.json');
  let existing: Record<string, unknown> = {};
  try {
    const st = await stat(path);
    if (st.size > INDEX_JSON_CAP) throw new DistillError('OCI_INVALID', `${path} is larger than ${INDEX_JSON_CAP} bytes`);
    existing = jsonObject(await readFile(path), path, 'OCI_INVALID');
  } catch (e) {
    if (e instanceof DistillError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw new DistillError('LAYER_IO', `cannot read ${path}: ${messageOf(e)}`, { cause: e });
  }
  const old = existing['manifests'];
  if (old !== undefined && !Array.isArray(old)) throw new DistillError('OCI_INVALID', `${path}: not an OCI image index`, { hint: 'pull into an empty directory' });
  const nameOf = (m: unknown): string => {
    const a = (m as { annotations?: Record<string, unknown> } | null)?.annotations;
    const n = a?.[ANNOTATION_REF_NAME];
    return typeof n === 'string' ? n : '';
  };
  const kept = ((old ?? []) as unknown[]).filter((m) => nameOf(m) !== refName);
  const entries = [...kept, entry].sort((a, b) => cmp(nameOf(a), nameOf(b)) || cmp(String((a as { digest?: unknown }).digest), String((b as { digest?: unknown }).digest)));
  const { schemaVersion: _v, mediaType: _t, manifests: _m, ...rest } = existing;
  const index = { schemaVersion: 2, mediaType: MEDIA_TYPE_OCI_INDEX, manifests: entries, ...rest };
  await intoPlace(path, (tmp) => writeFile(tmp, goJson(index)));
}

function jsonObject(bytes: Buffer, what: string, code: 'REGISTRY_PROTOCOL' | 'OCI_INVALID' = 'REGISTRY_PROTOCOL'): Record<string, unknown> {
  let v: unknown;
  try {
    v = JSON.parse(bytes.toString('utf8'));
  } catch (e) {
    throw new DistillError(code, `${what}: not JSON`, { cause: e });
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) throw new DistillError(code, `${what}: not a JSON object`);
  return v as Record<string, unknown>;
}

function protocol(message: string): DistillError {
  return new DistillError('REGISTRY_PROTOCOL', message, { hint: 'the registry serves something that is not a well-formed image' });
}

async function io<T>(what: string, f: () => Promise<T>): Promise<T> {
  try {
    return await f();
  } catch (e) {
    throw new DistillError('LAYER_IO', `cannot ${what}: ${messageOf(e)}`, { cause: e });
  }
}
