// sha256 digests: the `sha256:<hex>` form used by OCI and the lockfile, and streaming verification
// (size and digest checked while bytes flow, as containerd's content store does). node:crypto is used
// for hashing: the bytes equal @noble/hashes' and it is ~7x faster here (shared/docs/perf.md).
import { createHash, type Hash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { DistillError } from './errors.js';

/** A lowercase hex sha256, 64 characters. */
export type Sha256Hex = string;
/** `sha256:<hex>` — the OCI digest form. */
export type Digest = `sha256:${string}`;

const HEX64 = /^[0-9a-f]{64}$/;

// Takes unknown: callers pass fields of untrusted JSON, and RegExp.test(x) would call x.toString() —
// a TypeError for {"toString":1}.
export function isSha256Hex(s: unknown): s is string {
  return typeof s === 'string' && HEX64.test(s);
}

export function sha256Hex(data: Uint8Array | string): Sha256Hex {
  return createHash('sha256').update(data).digest('hex');
}

export function toDigest(hex: Sha256Hex): Digest {
  return `sha256:${hex}`;
}

export function digestHex(d: string): Sha256Hex {
  const m = /^sha256:([0-9a-f]{64})$/.exec(d);
  if (!m) throw new DistillError('LOCK_INVALID', `not a sha256 digest: ${JSON.stringify(d)}`);
  return m[1]!;
}

/** For content pinned by digest only (a definition's URL without a size): at most this many bytes. */
export const UNKNOWN_SIZE_CAP = 4 * 1024 ** 3;

export interface Expected {
  /** Exact byte count, or -1 when only the digest is pinned (then capped at UNKNOWN_SIZE_CAP). */
  size: number;
  sha256: Sha256Hex;
  /** Names the content in errors: a pool path, a URL, a blob. */
  what: string;
  /** The hint of a mismatch, when the content is not a mirror's (a layout's blob, …). */
  hint?: string;
}

/**
 * A pass-through stream that counts and hashes; it fails the moment more than `expected.size` bytes
 * arrive, and at the end on a short read or a digest mismatch. The bytes it passes are untrusted until
 * it has ended without error.
 */
export class VerifyingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  private seen = 0;

  constructor(private readonly expected: Expected) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    const limit = this.expected.size < 0 ? UNKNOWN_SIZE_CAP : this.expected.size;
    if (this.seen > limit) {
      cb(
        new DistillError(
          'BLOB_SIZE_MISMATCH',
          `${this.expected.what}: more than the expected ${limit} bytes`,
          { hint: this.expected.hint ?? 'the mirror serves different content than the lock pins; relock or check the mirror' },
        ),
      );
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expected.size >= 0 && this.seen !== this.expected.size) {
      cb(
        new DistillError(
          'BLOB_SIZE_MISMATCH',
          `${this.expected.what}: got ${this.seen} bytes, expected ${this.expected.size}`,
          { hint: this.expected.hint ?? 'the download was cut short or the content changed; retry, or relock if the mirror changed' },
        ),
      );
      return;
    }
    const got = this.hash.digest('hex');
    if (got !== this.expected.sha256) {
      cb(
        new DistillError(
          'BLOB_DIGEST_MISMATCH',
          `${this.expected.what}: sha256 ${got} does not match the expected ${this.expected.sha256}`,
          { hint: this.expected.hint ?? 'the content was altered or the lock is wrong; do not use it — check the mirror or relock' },
        ),
      );
      return;
    }
    cb();
  }
}

/** A pass-through stream that hashes and counts, for content whose digest is learnt, not checked. */
export class HashingStream extends Transform {
  private readonly hash: Hash = createHash('sha256');
  size = 0;
  private hex: Sha256Hex | undefined;

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.size += chunk.length;
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    this.hex = this.hash.digest('hex');
    cb();
  }

  /** Available once the stream has flushed. */
  get sha256(): Sha256Hex {
    if (this.hex === undefined) throw new Error('HashingStream: digest read before the end of the stream');
    return this.hex;
  }
}
