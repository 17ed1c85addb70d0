// OCI content descriptors (image-spec descriptor.md) and JSON blobs. A JSON blob is serialised exactly
// once and its descriptor is computed from those bytes: the bytes are what is hashed, written and
// pushed, so nothing downstream re-serialises and drifts from its digest.
//
// The byte form: what Go's encoding/json writes for the image-spec v1.1 Go types — keys in struct
// field order, omitempty fields left out, map keys sorted, `<` `>` `&` U+2028 U+2029 escaped — rather
// than canonical (sorted-key) JSON. Both are deterministic; this one is also a fixed point of the Go
// tools. containers/image re-marshals the config when it converts a docker-archive image to OCI
// (`skopeo copy docker-archive:… oci:…`, podman): with sorted keys the config digest, and so the
// image ID and manifest digest, changed on the way (seen with skopeo 1.9); with Go's order the
// re-marshalled bytes are ours. It is also the form of every manifest and index written by Go tools
// built on the image-spec types (containerd, buildkit, skopeo), so ours compare with theirs byte for
// byte. Builders below create objects in field order; maps go through `goMap`.
import { isSha256Hex, sha256Hex, toDigest, type Digest } from '../digest.js';
import { DistillError } from '../errors.js';
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

/** Serialise `value` once (see the header: Go's byte form) and describe those bytes. */
export function jsonBlob(mediaType: string, value: object): Blob {
  const bytes = Buffer.from(goJson(value), 'utf8');
  return { descriptor: { mediaType, digest: toDigest(sha256Hex(bytes)), size: bytes.length }, bytes };
}

/**
 * JSON as Go's json.Marshal writes it, for objects built with their keys in struct field order and
 * maps already sorted (`goMap`). JSON.stringify keeps insertion order and escapes quotes, backslashes
 * and control characters as Go ≥ 1.22 does; Go also escapes these five, which can only occur inside
 * strings, so replacing them in the output is safe.
 */
export function goJson(value: object): string {
  return JSON.stringify(value).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** A string map with its keys in Go's order (bytewise UTF-8), or undefined when absent or empty (omitempty). */
export function goMap(m: Record<string, string> | undefined, what: string): Record<string, string> | undefined {
  const checked = nonEmpty(m, what);
  if (checked === undefined) return undefined;
  const keys = Object.keys(checked).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
  return Object.fromEntries(keys.map((k) => [k, checked[k]!]));
}

/** image-spec v1.1 Platform: architecture, os, os.version, os.features, variant. */
export function platformJson(p: Platform): Record<string, unknown> {
  const out: Record<string, unknown> = { architecture: p.architecture, os: p.os };
  if (p.variant !== undefined && p.variant !== '') out['variant'] = p.variant;
  return out;
}

/**
 * The descriptor as it is embedded in a manifest or index. image-spec v1.1 Descriptor field order:
 * mediaType, digest, size, urls, annotations, data, platform, artifactType.
 */
export function descriptorJson(d: Descriptor): Record<string, unknown> {
  const out: Record<string, unknown> = { mediaType: d.mediaType, digest: d.digest, size: d.size };
  const annotations = goMap(d.annotations, 'descriptor annotations');
  if (annotations !== undefined) out['annotations'] = annotations;
  if (d.platform !== undefined) out['platform'] = platformJson(d.platform);
  if (d.artifactType !== undefined && d.artifactType !== '') out['artifactType'] = d.artifactType;
  return out;
}

export function validateDescriptor(d: Descriptor, what: string): void {
  if (typeof d.mediaType !== 'string' || !MEDIA_TYPE.test(d.mediaType)) {
    throw invalid(`${what}: ${JSON.stringify(d.mediaType)} is not a media type`);
  }
  hexOf(d.digest, what);
  if (!Number.isSafeInteger(d.size) || d.size < 0) throw invalid(`${what}: size ${JSON.stringify(d.size)} is not a byte count`);
  // image-spec descriptor.md: platform.os and platform.architecture are strings, variant a string if
  // present. ATTACKER-CONTROLLED (a layout's index, a registry's index): an object there reached
  // template strings and String() in messages and output ({"toString":1} throws a TypeError).
  const p = d.platform as unknown;
  if (p !== undefined) {
    const o = p as Record<string, unknown> | null;
    if (o === null || typeof o !== 'object' || Array.isArray(o) || typeof o['os'] !== 'string' || typeof o['architecture'] !== 'string' || (o['variant'] !== undefined && typeof o['variant'] !== 'string')) {
      throw invalid(`${what}: its platform is not {os, architecture[, variant]} strings`);
    }
  }
}

/** A blob whose bytes do not match its descriptor is a bug upstream; refuse to write or embed it. */
export function checkBlob(b: Blob, what: string): void {
  validateDescriptor(b.descriptor, what);
  if (b.bytes.length !== b.descriptor.size || toDigest(sha256Hex(b.bytes)) !== b.descriptor.digest) {
    throw invalid(`${what}: its bytes do not match its descriptor ${b.descriptor.digest} (${b.descriptor.size} bytes)`);
  }
}

/**
 * A string map (annotations, labels) checked for string values, or undefined when absent or empty
 * (the Go types' omitempty leaves an empty map out rather than writing {}).
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
