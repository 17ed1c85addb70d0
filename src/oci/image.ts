// An image's config and manifest (image-spec config.md, manifest.md). Both are built from plain data,
// serialised once, and described by the digest of those bytes.
//
// Key order: the image-spec v1.1 Go types' field order, with their omitempty rules (see
// descriptor.ts for why not canonical sorted JSON: Go tools re-marshal configs, and only this form
// survives that unchanged). Field names are Docker's, as the spec adopted them: capitalised
// container-config keys, created_by, empty_layer only when true.
import type { Readable } from 'node:stream';
import type { Digest } from '../digest.js';
import {
  type Blob,
  type Descriptor,
  checkBlob,
  descriptorJson,
  goMap,
  hexOf,
  invalid,
  jsonBlob,
  validateDescriptor,
} from './descriptor.js';
import { LAYER_MEDIA_TYPES, MEDIA_TYPE_CONFIG, MEDIA_TYPE_MANIFEST } from './media-types.js';
import type { Platform } from './platform.js';

export interface HistoryEntry {
  created: string;
  createdBy: string;
  comment?: string;
  /** True for a step that added no layer (ENV, USER, …); such entries have no diff_id. */
  emptyLayer?: boolean;
}

export interface ImageConfigInput {
  platform: Platform;
  /** RFC 3339, e.g. 1970-01-01T00:00:00Z. */
  created: string;
  /** `NAME=value` entries, in the order given. */
  env: string[];
  user: string;
  workingDir: string;
  entrypoint?: string[];
  cmd?: string[];
  labels?: Record<string, string>;
  /** sha256 of each layer's *uncompressed* tar, bottom first. */
  diffIds: Digest[];
  /** Empty, or one entry per layer plus any empty-layer entries, oldest first. */
  history: HistoryEntry[];
}

export function imageConfig(input: ImageConfigInput): Blob {
  const created = goTime(input.created, 'image config created');
  const { architecture, os, variant } = input.platform;
  if (!nonBlank(architecture) || !nonBlank(os)) {
    throw invalid(`image config: platform ${JSON.stringify(input.platform)} needs an architecture and an os`);
  }
  checkEnv(input.env);
  for (const [i, d] of input.diffIds.entries()) hexOf(d, `image config diff_ids[${i}]`);
  checkHistory(input.history, input.diffIds.length);

  // ImageConfig: User, ExposedPorts, Env, Entrypoint, Cmd, Volumes, WorkingDir, Labels, StopSignal —
  // all omitempty, so an empty string or list is left out (and means the same as absent).
  const container: Record<string, unknown> = {};
  if (input.user !== '') container['User'] = input.user;
  if (input.env.length > 0) container['Env'] = strings(input.env, 'Env');
  if (input.entrypoint !== undefined && input.entrypoint.length > 0) container['Entrypoint'] = strings(input.entrypoint, 'Entrypoint');
  if (input.cmd !== undefined && input.cmd.length > 0) container['Cmd'] = strings(input.cmd, 'Cmd');
  if (input.workingDir !== '') container['WorkingDir'] = input.workingDir;
  const labels = goMap(input.labels, 'image config Labels');
  if (labels !== undefined) container['Labels'] = labels;

  // Image: created, author, architecture, os, os.version, os.features, variant, config, rootfs, history.
  const config: Record<string, unknown> = { created, architecture, os };
  if (variant !== undefined && variant !== '') config['variant'] = variant;
  config['config'] = container;
  config['rootfs'] = { type: 'layers', diff_ids: [...input.diffIds] };
  if (input.history.length > 0) {
    config['history'] = input.history.map((h, i) => {
      // History: created, created_by, author, comment, empty_layer (Docker writes it only when true).
      const e: Record<string, unknown> = { created: goTime(h.created, `image config history[${i}].created`) };
      if (h.createdBy !== '') e['created_by'] = h.createdBy;
      if (h.comment !== undefined && h.comment !== '') e['comment'] = h.comment;
      if (h.emptyLayer === true) e['empty_layer'] = true;
      return e;
    });
  }
  return jsonBlob(MEDIA_TYPE_CONFIG, config);
}

/**
 * An image manifest. `annotations` pass through as given (org.opencontainers.image.created, source,
 * revision, base.name, base.digest, …); an empty map is left out.
 */
export function imageManifest(config: Descriptor, layers: Descriptor[], annotations?: Record<string, string>): Blob {
  validateDescriptor(config, 'manifest config');
  if (config.mediaType !== MEDIA_TYPE_CONFIG) {
    throw invalid(`manifest config: media type ${config.mediaType}, expected ${MEDIA_TYPE_CONFIG}`);
  }
  for (const [i, l] of layers.entries()) {
    validateDescriptor(l, `manifest layers[${i}]`);
    if (!LAYER_MEDIA_TYPES.has(l.mediaType)) {
      throw invalid(`manifest layers[${i}]: ${l.mediaType} is not an OCI layer media type`);
    }
  }
  // Manifest: schemaVersion, mediaType, artifactType, config, layers, subject, annotations.
  const manifest: Record<string, unknown> = {
    schemaVersion: 2,
    mediaType: MEDIA_TYPE_MANIFEST,
    config: descriptorJson(config),
    layers: layers.map(descriptorJson),
  };
  const a = goMap(annotations, 'manifest annotations');
  if (a !== undefined) manifest['annotations'] = a;
  return jsonBlob(MEDIA_TYPE_MANIFEST, manifest);
}

/** A layer blob on disk (the build writes .tar.gz files); `open` streams its compressed bytes. */
export interface LayerSource {
  descriptor: Descriptor;
  open(): Readable;
  /** A local file holding exactly these bytes (what open() reads), when there is one: a local sink may copy it in the kernel. */
  file?: string;
}

/** One platform's image, ready for a sink: its manifest and config as bytes, its layers as streams. */
export interface BuiltImage {
  manifest: Blob;
  config: Blob;
  layers: LayerSource[];
  platform: Platform;
}

/**
 * Sinks call this before writing anything: the blobs' bytes match their descriptors, and the manifest
 * names exactly this config and these layers, in this order.
 */
export function checkBuiltImage(img: BuiltImage, what: string): void {
  checkBlob(img.manifest, `${what} manifest`);
  checkBlob(img.config, `${what} config`);
  if (img.manifest.descriptor.mediaType !== MEDIA_TYPE_MANIFEST) {
    throw invalid(`${what}: manifest media type ${img.manifest.descriptor.mediaType}, expected ${MEDIA_TYPE_MANIFEST}`);
  }
  const m = parseJson(img.manifest.bytes, `${what} manifest`) as { config?: Descriptor; layers?: Descriptor[] };
  if (!same(m.config, img.config.descriptor)) {
    throw invalid(`${what}: the manifest's config is not ${img.config.descriptor.digest}`);
  }
  const layers = Array.isArray(m.layers) ? m.layers : [];
  if (layers.length !== img.layers.length || layers.some((l, i) => !same(l, img.layers[i]!.descriptor))) {
    throw invalid(`${what}: the manifest's layers are not the layers given`);
  }
  for (const [i, l] of img.layers.entries()) validateDescriptor(l.descriptor, `${what} layers[${i}]`);
}

export function parseJson(bytes: Buffer, what: string): unknown {
  try {
    return JSON.parse(bytes.toString('utf8')) as unknown;
  } catch (e) {
    throw invalid(`${what}: not JSON`, undefined, e);
  }
}

function same(a: Descriptor | undefined, b: Descriptor): boolean {
  return a !== undefined && a.digest === b.digest && a.size === b.size && a.mediaType === b.mediaType;
}

function checkEnv(env: string[]): void {
  const seen = new Set<string>();
  for (const e of env) {
    const eq = typeof e === 'string' ? e.indexOf('=') : -1;
    if (eq <= 0) throw invalid(`image config Env: ${JSON.stringify(e)} is not NAME=value`);
    const name = e.slice(0, eq);
    // Runtimes disagree on which of two duplicates wins; refuse rather than guess.
    if (seen.has(name)) throw invalid(`image config Env: ${name} is set twice`);
    seen.add(name);
  }
}

function checkHistory(history: HistoryEntry[], layers: number): void {
  if (history.length === 0) return;
  const withLayer = history.filter((h) => h.emptyLayer !== true).length;
  if (withLayer !== layers) {
    // docker history, buildkit and containers/image pair history entries with layers by position.
    throw invalid(`image config: ${withLayer} history entries add a layer but there are ${layers} layers`);
  }
}

function strings(a: string[], what: string): string[] {
  if (!Array.isArray(a) || a.some((s) => typeof s !== 'string')) throw invalid(`image config ${what}: not a list of strings`);
  return [...a];
}

const RFC3339 = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})$/;

/**
 * An RFC 3339 time in the form Go's time.Time marshals to (RFC3339Nano): a zero offset as Z, no
 * trailing zeros in the fraction. Any other form would not survive a Go tool's re-marshal.
 */
export function goTime(s: string, what: string): string {
  const m = typeof s === 'string' ? RFC3339.exec(s) : null;
  if (m === null || Number.isNaN(Date.parse(s))) {
    throw invalid(`${what}: ${JSON.stringify(s)} is not an RFC 3339 time`, 'write times as 2025-01-01T00:00:00Z');
  }
  const fraction = (m[2] ?? '').slice(0, 9).replace(/0+$/, '');
  const zone = m[3] === '+00:00' || m[3] === '-00:00' ? 'Z' : m[3]!;
  return `${m[1]}${fraction === '' ? '' : `.${fraction}`}${zone}`;
}

function nonBlank(s: unknown): boolean {
  return typeof s === 'string' && s !== '';
}
