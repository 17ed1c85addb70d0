// OCI content descriptors (image-spec descriptor.md) and JSON blobs. A JSON blob is serialised exactly
// once, as canonical JSON, and its descriptor is computed from those bytes: the bytes are what is
// hashed, written and pushed, so nothing downstream re-serialises and drifts from its digest.
import { isSha256Hex, sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError } from '../errors.js';
import { canonicalJson } from '../json.js';
import type { Platform } from './platform.js';

export type { Platform } from './platform.js';

export interface Descriptor {
  mediaType: string;
  digest: Digest;
  size: number;
  annotations?: Record<string, string>;
  platform?: Platform;
  artifactType?: string;
}

/** A small JSON blob (config, manifest, index) with the exact bytes its descriptor describes. */
export interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

export function isDigest(s: unknown): s is Digest {
  return typeof s === 'string' && s.startsWith('sha256:') && isSha256Hex(s.slice('sha256:'.length));
}

/** The hex part of a digest, or OCI_INVALID naming `what`. */
export function hexOf(d: string, what: string): string {
  if (!isDigest(d)) throw invalid(`${what}: ${JSON.stringify(d)} is not a sha256 digest`);
  return d.slice('sha256:'.length);
}

/** Serialise `value` once (canonical JSON) and describe those bytes. */
export function jsonBlob(mediaType: string, value: unknown): Blob {
  const bytes = Buffer.from(canonicalJson(value), 'utf8');
  return { descriptor: { mediaType, digest: toDigest(sha256Hex(bytes)), size: bytes.length }, bytes };
}

/** The descriptor as it is embedded in a manifest or index: only the fields that are set. */
export function descriptorJson(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  if (d.artifactType !== undefined) out['artifactType'] = d.artifactType;
  if (d.platform !== undefined) {
    const p: Record<string, string> = { architecture: d.platform.architecture, os: d.platform.os };
    if (d.platform.variant !== undefined) p['variant'] = d.platform.variant;
    out['platform'] = p;
  }
  const annotations = nonEmpty(d.annotations, 'descriptor annotations');
  if (annotations !== undefined) out['annotations'] = annotations;
  return out;
}

export function validateDescriptor(d: Descriptor, what: string): void {
  if (typeof d.mediaType !== 'string' || !MEDIA_TYPE.test(d.mediaType)) {
    throw invalid(`${what}: ${JSON.stringify(d.mediaType)} is not a media type`);
  }
  hexOf(d.digest, what);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${what}: size ${d.size} is not a byte count`);
}

/** A blob whose bytes do not match its descriptor is a bug upstream; refuse to write or embed it. */
export function checkBlob(b: Blob, what: string): void {
  validateDescriptor(b.descriptor, what);
  if (b.bytes.length !== b.descriptor.size || toDigest(sha256Hex(b.bytes)) !== b.descriptor.digest) {
    throw invalid(`${what}: its bytes do not match its descriptor ${b.descriptor.digest} (${b.descriptor.size} bytes)`);
  }
}

/**
 * A string map (annotations, labels) checked for string values, or undefined when absent or empty:
 * image-spec says an empty annotations map should be left out rather than written as {}.
 */
export function nonEmpty(m: Record<string, string> | undefined, what: string): Record<string, string> | undefined {
  if (m === undefined) return undefined;
  const keys = Object.keys(m);
  for (const k of keys) {
    if (k === '') throw invalid(`${what}: an empty key`);
    if (typeof m[k] !== 'string') throw invalid(`${what}: the value of ${JSON.stringify(k)} is not a string`);
  }
  return keys.length === 0 ? undefined : { ...m };
}

export function invalid(message: string, hint?: string, cause?: unknown): DistillError {
  return new DistillError('OCI_INVALID', message, {
    ...(hint === undefined ? {} : { hint }),
    ...(cause === undefined ? {} : { cause }),
  });
}

// RFC 6838 type/subtype with an optional +suffix, as image-spec's descriptor.md requires.
const MEDIA_TYPE = /^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}\/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}$/;
