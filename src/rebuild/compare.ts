// The comparison half of `distill rebuild`: two images, each an image of the model (oci/model.ts) from
// any source — a registry read in place, an OCI layout, an archive — or an image manifest in an OCI
// layout on disk named by its digest, and whether they are the same image — and when they
// are not, exactly where they part: the manifest fields, the config fields (a deep JSON diff: object
// keys sorted, arrays by index), which layers, and every differing file of the first differing layer.
//
// Layers are never held in memory: each side's blob is streamed through its digest check, decompressed,
// hashed (the tar's sha256, measured rather than taken from the config) and read entry by entry, and
// only each entry's metadata is kept — type, size, mode, owner, mtime, link target and the sha256 of its
// content, hashed as it streams past. Layer content is untrusted: the number of entries, the length of
// every name kept and the total kept are bounded (the hardened tar reader, tar/reader.ts, caps a pax or
// long-name header at 4 MiB and refuses what it refuses for .debs), and anything past a bound is
// OCI_INVALID rather than a partial answer.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { Compression } from '../compress/decompress.js';
import { type Digest, sha256Hex, toDigest } from '../digest.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { hexOf } from '../oci/descriptor.js';
import type { Image, Layer } from '../oci/model.js';
import { readLayer } from '../oci/read-layer.js';
import type { TarEntry, TarEntryType } from '../tar/reader.js';

/** Either kind of side: a layout's manifest, or an image of the model. */
export type AnySide = ImageSide | ModelImageSide;

export interface ImageSide {
  /** An OCI image layout. */
  dir: string;
  /** An image manifest in it (not an index: pick a platform's manifest first). */
  manifestDigest: string;
}

export interface ModelImageSide {
  /** An image from any source; its layers stream from there (verified by the source as they flow). */
  image: Image;
  /** Names the side in messages (e.g. the registry reference, or oci:DIR:REF). */
  name: string;
}

export type FileField =
  | 'missing'
  | 'extra'
  | 'type'
  | 'size'
  | 'mode'
  | 'uid'
  | 'gid'
  | 'uname'
  | 'gname'
  | 'mtime'
  | 'linkTarget'
  | 'content';

/**
 * One difference of one path. `missing`: in the expected layer only (actual is ''); `extra`: in the
 * actual layer only (expected is ''); both then describe the entry. Otherwise the field's two values:
 * type (`file`, `directory`, `symlink`, `link` for a hard link, devices with major,minor), size in
 * bytes, mode in octal (`0755`), uid/gid in decimal, mtime as RFC 3339 UTC, content as `sha256:<hex>`.
 */
export interface FileDiff {
  path: string;
  field: FileField;
  expected: string;
  actual: string;
}

/** `field` is a JSON path from the document's root: `created`, `config.Env[1]`, `rootfs.diff_ids[2]`,
 * `config.Labels["org.example.x"]`; a value absent on one side is `undefined`. */
export interface ConfigDiff {
  field: string;
  expected: unknown;
  actual: unknown;
}

export interface LayerComparison {
  /** 0-based, bottom layer first. */
  index: number;
  /** The layer's digest, '' when this side has no layer at this index. */
  expected: string;
  actual: string;
  same: boolean;
  /** rootfs.diff_ids[index] of each config, when it has one. */
  diffIdExpected?: string;
  diffIdActual?: string;
}

export interface LayerDiff {
  index: number;
  expected: string;
  actual: string;
  /** Every differing path (up to maxFileDiffs), sorted by path, fields in a fixed order per path. */
  files: FileDiff[];
  /** Differences found beyond maxFileDiffs, not listed. */
  omittedFiles: number;
  /** The uncompressed tars are identical; only the compressed bytes differ. */
  compressionOnly: boolean;
  /** sha256 of each side's uncompressed tar as read (absent for a side without this layer). */
  tarExpected?: string;
  tarActual?: string;
  /**
   * What the file list cannot show: the same files in another order, differing tar encodings (entry
   * names written as ./x, pax records such as xattrs, header formats, padding), duplicate entries, a
   * config diff_id that does not match the layer's tar, a layer one side lacks.
   */
  notes: string[];
}

export interface ImageComparison {
  identical: boolean;
  /** Manifest digests, and the manifests' differing fields other than the config's and layers'
   * digest and size (which `config` and `layers` report): annotations, media types, … */
  manifest: { expected: string; actual: string; diffs: ConfigDiff[] };
  config: { expected: string; actual: string; diffs: ConfigDiff[] };
  layers: LayerComparison[];
  /** The first layer whose digest differs (its 0-based index), with every differing file in it. */
  firstDifferingLayer?: LayerDiff;
}

export interface CompareOptions {
  /** At most this many FileDiffs are listed (default 1000); the rest are counted in omittedFiles. */
  maxFileDiffs?: number;
  /** Entries per layer tar before the layer is refused as OCI_INVALID (default 1,000,000). */
  maxEntries?: number;
}

const JSON_CAP = 4 * 1024 * 1024;
const DEFAULT_MAX_FILE_DIFFS = 1000;
const DEFAULT_MAX_ENTRIES = 1_000_000;
/** A path or link target longer than this is not a real file system's (Linux PATH_MAX is 4096). */
const NAME_CAP = 16 * 1024;
/** Characters of metadata kept per layer (names, owners, pax records): bounds memory for hostile tars. */
const METADATA_CAP = 256 * 1024 * 1024;
/** pax keys that become an entry field (or are tar framing); any other record is compared as encoding. */
const PAX_FIELDS = new Set(['path', 'linkpath', 'size', 'mtime', 'uid', 'gid', 'uname', 'gname']);

// ---------------------------------------------------------------------------------------------------
// Reading the two images

interface Descriptorish {
  mediaType?: unknown;
  digest?: unknown;
  size?: unknown;
}

interface SideImage {
  side: AnySide;
  /** The side's name in messages: its layout directory, or the model image's name. */
  name: string;
  /** A layer's compressed bytes, for a model side; a layout side's are read from its blob path. */
  openLayer?: (index: number) => Readable;
  manifestDigest: string;
  manifest: Record<string, unknown>;
  configDigest: string;
  config: unknown;
  layers: { digest: string; size: number; mediaType: string }[];
  diffIds: unknown[];
}

function invalid(message: string, hint?: string, cause?: unknown): DistillError {
  return new DistillError('OCI_INVALID', message, {
    ...(hint === undefined ? {} : { hint }),
    ...(cause === undefined ? {} : { cause }),
  });
}

function blobPath(dir: string, digest: string, what: string): string {
  return join(dir, 'blobs', 'sha256', hexOf(digest, what));
}

/** A small JSON blob, read whole under a cap and checked against its digest. */
async function readJsonBlob(dir: string, digest: string, what: string): Promise<unknown> {
  const path = blobPath(dir, digest, what);
  let bytes: Buffer;
  try {
    const st = await stat(path);
    if (st.size > JSON_CAP) throw invalid(`${dir}: ${what} ${digest} is ${st.size} bytes, more than the ${JSON_CAP} a manifest or config may be`);
    bytes = await readFile(path);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw invalid(`${dir}: ${what} ${digest} cannot be read: ${messageOf(e)}`, 'is this a complete OCI layout? pull or build the image into it again', e);
  }
  if (toDigest(sha256Hex(bytes)) !== digest) {
    throw invalid(`${dir}: ${what} blob ${digest} does not match its digest`, 'the layout is damaged; pull or build the image into it again');
  }
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw invalid(`${dir}: ${what} ${digest} is not JSON`, undefined, e);
  }
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

async function readSide(side: AnySide, label: string): Promise<SideImage> {
  if ('image' in side) return modelSide(side, label);
  const manifest = await readJsonBlob(side.dir, side.manifestDigest, `${label} manifest`);
  if (!isObject(manifest)) throw invalid(`${side.dir}: ${label} manifest ${side.manifestDigest} is not a JSON object`);
  if (Array.isArray(manifest['manifests'])) {
    throw invalid(
      `${side.dir}: ${side.manifestDigest} is an image index, not an image manifest`,
      'compare one platform: pass the digest of the manifest the index lists for it',
    );
  }
  const cfg = manifest['config'] as Descriptorish | undefined;
  const layersRaw = manifest['layers'];
  if (!isObject(cfg) || typeof cfg.digest !== 'string' || !Array.isArray(layersRaw)) {
    throw invalid(`${side.dir}: ${label} manifest ${side.manifestDigest} has no config or no layers list`);
  }
  const layers = layersRaw.map((l: unknown, i) => {
    const d = l as Descriptorish;
    if (!isObject(d) || typeof d.digest !== 'string' || typeof d.mediaType !== 'string' || typeof d.size !== 'number' || !Number.isSafeInteger(d.size) || d.size < 0) {
      throw invalid(`${side.dir}: ${label} manifest ${side.manifestDigest}: layers[${i}] is not a layer descriptor`);
    }
    hexOf(d.digest, `${label} layers[${i}]`);
    return { digest: d.digest, size: d.size, mediaType: d.mediaType };
  });
  const config = await readJsonBlob(side.dir, cfg.digest, `${label} config`);
  const rootfs = isObject(config) ? config['rootfs'] : undefined;
  const diffIds = isObject(rootfs) && Array.isArray(rootfs['diff_ids']) ? (rootfs['diff_ids'] as unknown[]) : [];
  return { side, name: side.dir, manifestDigest: side.manifestDigest, manifest, configDigest: cfg.digest, config, layers, diffIds };
}

/** A side from the model: its documents are already read and checked by the source that gave them. */
function modelSide(side: ModelImageSide, label: string): SideImage {
  const img = side.image;
  const parse = (bytes: Buffer, what: string): unknown => {
    try {
      return JSON.parse(bytes.toString('utf8')) as unknown;
    } catch (e) {
      throw invalid(`${side.name}: ${label} ${what} is not JSON`, undefined, e);
    }
  };
  const manifest = parse(img.manifest.bytes, 'manifest');
  if (!isObject(manifest)) throw invalid(`${side.name}: ${label} manifest ${img.manifest.descriptor.digest} is not a JSON object`);
  const config = parse(img.config.bytes, 'config');
  const rootfs = isObject(config) ? config['rootfs'] : undefined;
  const diffIds = isObject(rootfs) && Array.isArray(rootfs['diff_ids']) ? (rootfs['diff_ids'] as unknown[]) : [];
  return {
    side,
    name: side.name,
    openLayer: (i) => img.layers[i]!.open(),
    manifestDigest: img.manifest.descriptor.digest,
    manifest,
    configDigest: img.config.descriptor.digest,
    config,
    layers: img.layers.map((l) => ({ digest: l.descriptor.digest, size: l.descriptor.size, mediaType: l.descriptor.mediaType })),
    diffIds,
  };
}

// ---------------------------------------------------------------------------------------------------
// Deep JSON diff

const IDENT = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function childPath(path: string, key: string): string {
  if (IDENT.test(key)) return path === '' ? key : `${path}.${key}`;
  return `${path}[${JSON.stringify(key)}]`;
}

function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((v, i) => sameJson(v, b[i]));
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    if (ka.length !== Object.keys(b).length) return false;
    return ka.every((k) => Object.hasOwn(b, k) && sameJson(a[k], b[k]));
  }
  return false;
}

/**
 * Every leaf where `a` and `b` differ: objects by key (sorted, own keys only — JSON may hold a
 * "__proto__" key), arrays by index; a value absent on one side is undefined there.
 */
export function diffJson(a: unknown, b: unknown, path = '', out: ConfigDiff[] = []): ConfigDiff[] {
  if (isObject(a) && isObject(b)) {
    const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])].sort();
    for (const k of keys) {
      diffJson(Object.hasOwn(a, k) ? a[k] : undefined, Object.hasOwn(b, k) ? b[k] : undefined, childPath(path, k), out);
    }
  } else if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.max(a.length, b.length); i++) diffJson(a[i], b[i], `${path}[${i}]`, out);
  } else if (!sameJson(a, b)) {
    out.push({ field: path === '' ? '(root)' : path, expected: a, actual: b });
  }
  return out;
}

/** The manifest diff without what the config and layer comparisons report. */
function manifestDiffs(a: Record<string, unknown>, b: Record<string, unknown>): ConfigDiff[] {
  return diffJson(a, b).filter((d) => !/^(config|layers\[\d+\])\.(digest|size)$/.test(d.field));
}

// ---------------------------------------------------------------------------------------------------
// Reading one layer

interface Entry {
  type: string;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** Decimal seconds as written (pax may carry a fraction). */
  mtime: string;
  linkTarget: string;
  /** sha256:<hex> of a regular file's content, '' otherwise. */
  content: string;
  /** How the entry is encoded beyond its fields (raw name, other pax records), when it is unusual. */
  encoding?: string;
}

interface LayerScan {
  entries: Map<string, Entry>;
  /** Paths in the order first seen. */
  order: string[];
  duplicates: number;
  /** sha256:<hex> of the uncompressed tar. */
  tarDigest: string;
}

function compressionOf(mediaType: string, what: string): Compression {
  if (/[.+]gzip$/.test(mediaType)) return 'gzip';
  if (/[.+]zstd$/.test(mediaType)) return 'zstd';
  if (/\.tar$/.test(mediaType)) return 'none';
  throw invalid(`${what}: media type ${mediaType} is not a tar layer`, 'only tar, tar+gzip and tar+zstd layers can be compared');
}

/** Strip ./ and / from the front and / from the end, as an extractor resolves a member name. */
function normalisePath(name: string): string {
  let p = name;
  for (;;) {
    if (p.startsWith('./')) p = p.slice(2);
    else if (p.startsWith('/')) p = p.slice(1);
    else break;
  }
  while (p.endsWith('/')) p = p.slice(0, -1);
  return p === '' || p === '.' ? '.' : p;
}

/** A pax time without trailing fractional zeros, so 5.10 and 5.1 (and 5.0 and 5) compare equal. */
function decimalSeconds(s: string): string {
  if (!s.includes('.')) return s;
  return s.replace(/0+$/, '').replace(/\.$/, '');
}

/** The tar reader's type as tar-stream names it (what compare has always reported), devices with their numbers. */
const TAR_TYPE_NAMES: Record<TarEntryType, string> = {
  file: 'file',
  dir: 'directory',
  symlink: 'symlink',
  hardlink: 'link',
  'char-device': 'character-device',
  'block-device': 'block-device',
  fifo: 'fifo',
  socket: 'socket',
  contiguous: 'contiguous-file',
  unknown: 'unknown',
};

function typeOf(e: TarEntry): string {
  const t = TAR_TYPE_NAMES[e.type];
  return e.type === 'char-device' || e.type === 'block-device' ? `${t} ${e.devmajor ?? 0},${e.devminor ?? 0}` : t;
}

/**
 * One layer's entries, read through oci/read-layer.ts: its blob checked against its digest, the tar
 * hashed (its diffId, measured and returned rather than checked: a config naming another tar is a
 * finding to report), the tar read by the hardened reader. `open` reads the blob from any source;
 * without it, from the layout `dir`.
 */
async function scanLayer(dir: string, layer: { digest: string; size: number; mediaType: string }, what: string, maxEntries: number, open?: () => Readable): Promise<LayerScan> {
  const path = open === undefined ? blobPath(dir, layer.digest, what) : undefined;
  compressionOf(layer.mediaType, what);
  const entries = new Map<string, Entry>();
  const order: string[] = [];
  let duplicates = 0;
  let kept = 0;
  const keep = (s: string, label: string, name: string): string => {
    if (s.length > NAME_CAP) throw invalid(`${what} ${layer.digest}: the ${label} of ${JSON.stringify(name.slice(0, 200))}… is ${s.length} characters long`, 'the layer is malformed or hostile');
    kept += s.length;
    return s;
  };
  const model: Layer = { descriptor: { mediaType: layer.mediaType, digest: layer.digest as Digest, size: layer.size }, open: open ?? (() => createReadStream(path!)) };
  let read;
  try {
    read = await readLayer(
      model,
      async (t, body) => {
        const name = keep(t.name, 'name', t.name);
        const p = normalisePath(name);
        const pax = t.pax;
        const isFile = t.type === 'file' || t.type === 'contiguous';
        let content = '';
        if (isFile) {
          const hash = createHash('sha256');
          for await (const chunk of body()) hash.update(chunk as Buffer);
          content = `sha256:${hash.digest('hex')}`;
        }
        const paxMtime = pax?.['mtime'];
        const extras = pax ? Object.keys(pax).filter((k) => !PAX_FIELDS.has(k)).sort() : [];
        const canonicalName = t.type === 'dir' ? `${p}/` : p;
        const encodingParts: string[] = [];
        if (name !== canonicalName) encodingParts.push(`name ${JSON.stringify(name)}`);
        for (const k of extras) encodingParts.push(`${k}=${pax![k]}`);
        let encoding = encodingParts.length === 0 ? undefined : encodingParts.join('; ');
        if (encoding !== undefined && encoding.length > 512) encoding = `sha256:${sha256Hex(encoding)}`;
        const e: Entry = {
          type: typeOf(t),
          size: t.size,
          mode: t.mode,
          uid: t.uid,
          gid: t.gid,
          uname: keep(t.uname, 'uname', name),
          gname: keep(t.gname, 'gname', name),
          mtime: paxMtime !== undefined && /^-?\d+(\.\d+)?$/.test(paxMtime) ? decimalSeconds(paxMtime) : String(t.mtime),
          linkTarget: keep(t.linkname ?? '', 'link target', name),
          content,
          ...(encoding === undefined ? {} : { encoding: keep(encoding, 'pax records', name) }),
        };
        if (kept > METADATA_CAP) throw invalid(`${what} ${layer.digest}: more than ${METADATA_CAP} characters of names and headers`, 'the layer is malformed or hostile');
        if (entries.has(p)) duplicates++;
        else order.push(p);
        entries.set(p, e); // a later entry replaces an earlier one, as extraction does
      },
      // Old (v7) headers have no magic; they are still tar, and comparing them is harmless.
      { what: `${what} ${layer.digest}`, verifyDiffId: false, allowUnknownFormat: true, maxEntries },
    );
  } catch (e) {
    if (isDistillError(e, 'BLOB_SIZE_MISMATCH') || isDistillError(e, 'BLOB_DIGEST_MISMATCH')) {
      throw invalid(`${dir}: layer blob ${layer.digest} is damaged: ${e.message}`, 'pull or build the image into the layout again', e);
    }
    if (e instanceof DistillError) throw e;
    const missing = (e as NodeJS.ErrnoException).code === 'ENOENT';
    // A corrupt stream usually fails in gunzip or the tar reader before the blob's digest is checked
    // at its end: say whether the blob is damaged or was a bad layer all along.
    if (!missing && !(await blobIntact(path, layer.digest, open))) {
      throw invalid(`${dir}: layer blob ${layer.digest} is damaged: its bytes do not match its digest`, 'pull or build the image into the layout again', e);
    }
    throw invalid(
      `${dir}: ${what} ${layer.digest} cannot be read${missing ? ' (the blob is missing)' : ''}: ${messageOf(e)}`,
      missing ? 'is this a complete OCI layout? pull or build the image into it again' : 'the layer is not a valid (compressed) tar',
      e,
    );
  }
  return { entries, order, duplicates, tarDigest: read.diffId };
}

async function blobIntact(path: string | undefined, digest: string, open?: () => Readable): Promise<boolean> {
  try {
    const h = createHash('sha256');
    for await (const chunk of open?.() ?? createReadStream(path!)) h.update(chunk as Buffer);
    return `sha256:${h.digest('hex')}` === digest;
  } catch {
    return false;
  }
}

// ---------------------------------------------------------------------------------------------------
// Comparing two layers' entries

function modeString(m: number): string {
  return m.toString(8).padStart(4, '0');
}

/** RFC 3339 UTC for decimal seconds; the decimal as written when it does not fit a Date. */
function timeString(secs: string): string {
  const m = /^(-?\d+)(?:\.(\d+))?$/.exec(secs);
  const whole = m ? Number(m[1]) : NaN;
  const d = new Date(whole * 1000);
  if (!m || !Number.isSafeInteger(whole) || Number.isNaN(d.getTime())) return `${secs}s`;
  const iso = d.toISOString().replace(/\.000Z$/, '');
  return m[2] ? `${iso}.${m[2]}Z` : `${iso}Z`;
}

function describe(e: Entry): string {
  const parts = [e.type, modeString(e.mode), `${e.uid}:${e.gid}`];
  if (e.type === 'file' || e.type === 'contiguous-file') parts.push(`${e.size} bytes`, e.content);
  if (e.linkTarget !== '') parts.push(`→ ${e.linkTarget}`);
  return parts.join(' ');
}

function entryDiffs(path: string, a: Entry, b: Entry): FileDiff[] {
  const out: FileDiff[] = [];
  const add = (field: FileField, x: string, y: string): void => {
    if (x !== y) out.push({ path, field, expected: x, actual: y });
  };
  add('type', a.type, b.type);
  add('size', String(a.size), String(b.size));
  add('mode', modeString(a.mode), modeString(b.mode));
  add('uid', String(a.uid), String(b.uid));
  add('gid', String(a.gid), String(b.gid));
  add('uname', a.uname, b.uname);
  add('gname', a.gname, b.gname);
  if (a.mtime !== b.mtime) out.push({ path, field: 'mtime', expected: timeString(a.mtime), actual: timeString(b.mtime) });
  add('linkTarget', a.linkTarget, b.linkTarget);
  add('content', a.content, b.content);
  return out;
}

const EMPTY_SCAN: LayerScan = { entries: new Map(), order: [], duplicates: 0, tarDigest: '' };

function compareScans(a: LayerScan, b: LayerScan, max: number): { files: FileDiff[]; omitted: number; encoding: string[] } {
  const paths = [...new Set([...a.entries.keys(), ...b.entries.keys()])].sort(byBytes);
  const files: FileDiff[] = [];
  const encoding: string[] = [];
  let omitted = 0;
  const push = (d: FileDiff): void => {
    if (files.length < max) files.push(d);
    else omitted++;
  };
  for (const p of paths) {
    const x = a.entries.get(p);
    const y = b.entries.get(p);
    if (x !== undefined && y !== undefined) {
      for (const d of entryDiffs(p, x, y)) push(d);
      if (x.encoding !== y.encoding) encoding.push(p);
    } else if (x !== undefined) {
      push({ path: p, field: 'missing', expected: describe(x), actual: '' });
    } else if (y !== undefined) {
      push({ path: p, field: 'extra', expected: '', actual: describe(y) });
    }
  }
  return { files, omitted, encoding };
}

function byBytes(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

// ---------------------------------------------------------------------------------------------------
// The comparison

export async function compareImages(expected: AnySide, actual: AnySide, opts: CompareOptions = {}): Promise<ImageComparison> {
  const maxFileDiffs = opts.maxFileDiffs ?? DEFAULT_MAX_FILE_DIFFS;
  const maxEntries = opts.maxEntries ?? DEFAULT_MAX_ENTRIES;
  const [a, b] = await Promise.all([readSide(expected, 'expected'), readSide(actual, 'actual')]);
  const identical = a.manifestDigest === b.manifestDigest;

  const n = Math.max(a.layers.length, b.layers.length);
  const layers: LayerComparison[] = [];
  for (let i = 0; i < n; i++) {
    const x = a.layers[i]?.digest ?? '';
    const y = b.layers[i]?.digest ?? '';
    const l: LayerComparison = { index: i, expected: x, actual: y, same: x !== '' && x === y };
    if (typeof a.diffIds[i] === 'string') l.diffIdExpected = a.diffIds[i] as string;
    if (typeof b.diffIds[i] === 'string') l.diffIdActual = b.diffIds[i] as string;
    layers.push(l);
  }

  const result: ImageComparison = {
    identical,
    manifest: { expected: a.manifestDigest, actual: b.manifestDigest, diffs: identical ? [] : manifestDiffs(a.manifest, b.manifest) },
    config: { expected: a.configDigest, actual: b.configDigest, diffs: a.configDigest === b.configDigest ? [] : diffJson(a.config, b.config) },
    layers,
  };

  // The first layer whose *contents* differ: layers that differ only in their compression are noted
  // and passed over, so the report always reaches the files (if any layer's files differ).
  const compressedOnly: number[] = [];
  for (const first of identical ? [] : layers.filter((l) => !l.same)) {
    const i = first.index;
    const la = a.layers[i];
    const lb = b.layers[i];
    const [sa, sb] = await Promise.all([
      la ? scanLayer(a.name, la, `expected layer ${i}`, maxEntries, a.openLayer && (() => a.openLayer!(i))) : EMPTY_SCAN,
      lb ? scanLayer(b.name, lb, `actual layer ${i}`, maxEntries, b.openLayer && (() => b.openLayer!(i))) : EMPTY_SCAN,
    ]);
    const compressionOnly = la !== undefined && lb !== undefined && sa.tarDigest === sb.tarDigest;
    const isLast = first === layers.filter((l) => !l.same).at(-1);
    if (compressionOnly && !isLast) {
      compressedOnly.push(i);
      continue;
    }
    const { files, omitted, encoding } = compressionOnly ? { files: [], omitted: 0, encoding: [] } : compareScans(sa, sb, maxFileDiffs);
    const notes: string[] = compressedOnly.map((k) => `layer ${k} differs only in its compression (same tar)`);
    if (!la) notes.push(`the expected image has no layer ${i} (it has ${a.layers.length})`);
    if (!lb) notes.push(`the actual image has no layer ${i} (it has ${b.layers.length})`);
    for (const [side, l, s, diffId] of [['expected', la, sa, first.diffIdExpected], ['actual', lb, sb, first.diffIdActual]] as const) {
      if (l !== undefined && diffId !== undefined && diffId !== s.tarDigest) {
        notes.push(`the ${side} config gives diff_id ${diffId} for this layer, but its tar is ${s.tarDigest}`);
      }
      if (s.duplicates > 0) notes.push(`the ${side} layer has ${s.duplicates} entries whose path appears earlier too (the last one is compared)`);
    }
    if (!compressionOnly && la && lb) {
      if (encoding.length > 0) {
        const shown = encoding.slice(0, 5).join(', ');
        notes.push(`${encoding.length} entries are encoded differently (entry names such as ./x, or pax records such as xattrs): ${shown}${encoding.length > 5 ? ', …' : ''}`);
      }
      const sameOrder = sa.order.length === sb.order.length && sa.order.every((p, k) => p === sb.order[k]);
      if (!sameOrder && sa.entries.size === sb.entries.size && files.length === 0 && omitted === 0) {
        notes.push('the tars hold the same entries in a different order');
      } else if (sameOrder && files.length === 0 && omitted === 0 && encoding.length === 0 && sa.duplicates === 0 && sb.duplicates === 0) {
        notes.push('every entry is the same; the tars differ only in framing (header format, checksum form, or padding)');
      }
    }
    result.firstDifferingLayer = {
      index: i,
      expected: first.expected,
      actual: first.actual,
      files,
      omittedFiles: omitted,
      compressionOnly,
      ...(la ? { tarExpected: sa.tarDigest } : {}),
      ...(lb ? { tarActual: sb.tarDigest } : {}),
      notes,
    };
    break;
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------
// Human-readable

function short(d: string): string {
  const m = /^sha256:([0-9a-f]{64})$/.exec(d);
  return m ? `sha256:${m[1]!.slice(0, 12)}…` : d;
}

function value(v: unknown): string {
  if (v === undefined) return '(absent)';
  const s = JSON.stringify(v);
  return s.length > 200 ? `${s.slice(0, 200)}…` : s;
}

function fileValue(field: FileField, v: string): string {
  return field === 'content' ? short(v) : v === '' ? '(empty)' : v;
}

/**
 * A report people read: "identical …" on the first line when the images are the same, else the
 * manifest and config digests with their differing fields, every layer (numbered from 0, bottom
 * first) and, for the first differing layer, each differing path on its own line.
 */
export function formatComparison(c: ImageComparison, labels: { expected: string; actual: string }): string {
  const E = labels.expected;
  const A = labels.actual;
  if (c.identical) {
    return `identical: ${E} and ${A} are the same image, manifest ${c.manifest.expected} (${c.layers.length} ${c.layers.length === 1 ? 'layer' : 'layers'})\n`;
  }
  const out: string[] = [];
  const differing = c.layers.filter((l) => !l.same).length;
  out.push(`different: ${E} has manifest ${c.manifest.expected}, ${A} has ${c.manifest.actual}`);
  for (const d of c.manifest.diffs) out.push(`  manifest ${d.field}: ${value(d.expected)} ≠ ${value(d.actual)}`);
  if (c.config.expected === c.config.actual) out.push(`config: same (${c.config.expected})`);
  else {
    out.push(`config: ${c.config.expected} ≠ ${c.config.actual}`);
    for (const d of c.config.diffs) out.push(`  ${d.field}: ${value(d.expected)} ≠ ${value(d.actual)}`);
  }
  out.push(`layers (numbered from 0, bottom first): ${differing} of ${c.layers.length} differ`);
  for (const l of c.layers) {
    if (l.same) out.push(`  layer ${l.index}: same (${l.expected})`);
    else out.push(`  layer ${l.index}: ${l.expected === '' ? '(none)' : l.expected} ≠ ${l.actual === '' ? '(none)' : l.actual}`);
  }
  const f = c.firstDifferingLayer;
  if (f !== undefined) {
    const total = new Set(f.files.map((d) => d.path)).size;
    if (f.compressionOnly) {
      out.push(`layer ${f.index} differs only in its compression: both hold the same tar ${f.tarExpected ?? ''}`);
    } else {
      const count = f.omittedFiles > 0
        ? `${f.files.length + f.omittedFiles} differences, the first ${f.files.length} (in ${total} paths) listed`
        : `${total} ${total === 1 ? 'path' : 'paths'}`;
      out.push(`layer ${f.index} (${f.expected === '' ? 'none' : short(f.expected)} ≠ ${f.actual === '' ? 'none' : short(f.actual)}) is the first that differs: ${count}`);
      const byPath = new Map<string, FileDiff[]>();
      for (const d of f.files) {
        const list = byPath.get(d.path);
        if (list) list.push(d);
        else byPath.set(d.path, [d]);
      }
      for (const [path, ds] of byPath) {
        const parts = ds.map((d) =>
          d.field === 'missing' ? `missing from ${A} (${E} has ${d.expected})`
          : d.field === 'extra' ? `only in ${A} (${d.actual})`
          : `${d.field} ${fileValue(d.field, d.expected)} ≠ ${fileValue(d.field, d.actual)}`);
        out.push(`  ${path}: ${parts.join('; ')}`);
      }
      if (f.omittedFiles > 0) out.push(`  … and ${f.omittedFiles} more differences not listed`);
    }
    for (const n of f.notes) out.push(`  note: ${n}`);
  }
  return out.join('\n') + '\n';
}
