// Reading an image layer's entries — the one way distill looks inside a layer it did not just write
// (inspect, rebuild's compare, the SBOM of a cached or pulled layer). In one streaming pass:
//   blob → sha256 + size checked against the descriptor → decompressed → sha256 of the tar (the
//   diffId) → the hardened tar reader (tar/reader.ts).
// ATTACKER-CONTROLLED INPUT: a layer may come from any registry or layout. Its compressed bytes are
// checked here even when the source checks them too (a Layer is only an interface; the cost is one
// sha256 pass beside the decompressor), and the tar it holds must be the one the config names: a layer
// whose diffId does not match is refused (OCI_INVALID) once the tar has been read — before that the
// caller must treat the entries it saw as provisional, as with any streamed check. A caller that
// reports mismatches rather than refusing them (rebuild's compare) passes `verifyDiffId: false` and
// gets the measured diffId back.
import { createHash } from 'node:crypto';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream';
import { HashingStream, VerifyingStream, toDigest, type Digest } from '../digest.js';
import { decompressor } from '../compress/decompress.js';
import { DistillError, isDistillError, messageOf } from '../errors.js';
import { type OnTarEntry, readTar } from '../tar/reader.js';
import { hexOf } from './descriptor.js';
import { type Layer, layerCompression } from './model.js';

export interface ReadLayerOptions {
  /** Names the layer in messages (default: `layer <digest>`). */
  what?: string;
  /** Refuse a tar whose sha256 is not `layer.diffId` (default true; without a diffId nothing is compared). */
  verifyDiffId?: boolean;
  /** Old (v7) tar headers without the ustar magic (default: refused). */
  allowUnknownFormat?: boolean;
  /** Entries before the layer is refused (the tar reader's default otherwise). */
  maxEntries?: number;
  onWarning?: (message: string) => void;
}

export interface LayerRead {
  /** sha256:<hex> of the uncompressed tar, as read. */
  diffId: Digest;
  /** Bytes of the uncompressed tar. */
  uncompressedSize: number;
}

/**
 * Stream `layer` through its checks into the tar reader, calling `onEntry` for each entry (see
 * tar/reader.ts for the body contract). Errors: BLOB_SIZE_MISMATCH / BLOB_DIGEST_MISMATCH for
 * compressed bytes that are not the descriptor's (also when they fail to decompress first), OCI_INVALID
 * for a layer that is not a (compressed) tar, a malformed or hostile tar, or a diffId mismatch; errors
 * of the source and of `onEntry` propagate unchanged.
 */
export async function readLayer(layer: Layer, onEntry: OnTarEntry, opts: ReadLayerOptions = {}): Promise<LayerRead> {
  const d = layer.descriptor;
  const what = opts.what ?? `layer ${d.digest}`;
  const kind = layerCompression(d.mediaType);
  const expected = { size: d.size, sha256: hexOf(d.digest, what), what };
  const plain = new HashingStream();
  let flowError: unknown;
  let sourceError: unknown;
  const raw = layer.open();
  raw.on('error', (e) => (sourceError ??= e));
  const flowed = new Promise<void>((resolve) => {
    pipeline(raw, new VerifyingStream(expected), decompressor(kind, what), plain, (e) => {
      if (e) flowError ??= e;
      resolve();
    });
  });
  const malformed = (message: string, cause?: unknown): DistillError =>
    new DistillError('OCI_INVALID', message, { cause, hint: 'the layer is malformed or hostile; get the image from a source you trust' });
  /** The handler's own errors (and the flow's, told apart below): the tar reader fills it. */
  const handlerErrors = new WeakSet<object>();
  try {
    await readTar(plain, { what, malformed, ownErrors: handlerErrors, ...(opts.allowUnknownFormat ? { allowUnknownFormat: true } : {}), ...(opts.maxEntries !== undefined ? { maxEntries: opts.maxEntries } : {}), ...(opts.onWarning ? { onWarning: opts.onWarning } : {}) }, onEntry);
    await flowed;
    if (flowError !== undefined) throw flowError;
  } catch (e) {
    plain.destroy();
    await flowed;
    if (isDistillError(e, 'BLOB_SIZE_MISMATCH') || isDistillError(e, 'BLOB_DIGEST_MISMATCH')) throw e;
    if (typeof e === 'object' && e !== null && handlerErrors.has(e) && e !== flowError) throw e;
    if (e === sourceError) throw e; // the source's own failure (a missing file, a broken connection)
    // A damaged blob usually fails in the decompressor or the tar reader before its digest is checked
    // at its end: read it once more to say which it is — damaged bytes, or a bad layer all along.
    if (await damaged(layer)) {
      throw new DistillError('BLOB_DIGEST_MISMATCH', `${what}: its bytes do not match its digest (${messageOf(e)})`, {
        cause: e,
        hint: 'the blob is damaged or was replaced; pull or build the image again',
      });
    }
    if (e instanceof DistillError) throw e;
    throw malformed(`${what} cannot be read: ${messageOf(e)}`, e);
  }
  const diffId = toDigest(plain.sha256);
  if (opts.verifyDiffId !== false && layer.diffId !== undefined && layer.diffId !== diffId) {
    throw new DistillError('OCI_INVALID', `${what}: its tar is ${diffId}, but the image's config names ${layer.diffId} (rootfs.diff_ids)`, {
      hint: 'the image is inconsistent or was tampered with; get it from a source you trust',
    });
  }
  return { diffId, uncompressedSize: plain.size };
}

/** The layer's bytes, read again, are not the descriptor's (a source that checks them says so itself). */
async function damaged(layer: Layer): Promise<boolean> {
  const h = createHash('sha256');
  let size = 0;
  try {
    const src: Readable = layer.open();
    for await (const c of src) {
      size += (c as Buffer).length;
      h.update(c as Buffer);
    }
  } catch (e) {
    return isDistillError(e, 'BLOB_SIZE_MISMATCH') || isDistillError(e, 'BLOB_DIGEST_MISMATCH') || isDistillError(e, 'REGISTRY_DIGEST_MISMATCH');
  }
  return size !== layer.descriptor.size || toDigest(h.digest('hex')) !== layer.descriptor.digest;
}
