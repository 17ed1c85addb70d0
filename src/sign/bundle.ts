// Sigstore bundles v0.3 (sigstore/protobuf-specs sigstore_bundle.proto, JSON mapping) signed with a key,
// as cosign v3 writes them for `sign` and `attest` with --key: a DSSE envelope (in-toto statement, the
// signature over PAE) and, as verification material, a public-key hint — no certificate, no
// transparency-log entry, no timestamp (key-signed, offline: cosign verifies them with --key and
// --insecure-ignore-tlog). An image signature is the statement whose predicateType is
// https://sigstore.dev/cosign/sign/v1, subject the image digest, predicate {} (cosign v3).
//
// Reading: the bundle is attacker-controlled. Only v0.3 media types with a DSSE envelope are read;
// the payload returned is exactly the bytes whose PAE signature verified with the given key.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';
import { parseJsonObject } from '../json.js';
import { DistillError } from '../errors.js';
import { goJson } from '../oci/descriptor.js';
import { MEDIA_TYPE_SIGSTORE_BUNDLE_V03 } from '../oci/media-types.js';
import { decodeAnyBase64, pae } from './pae.js';
import { base64Std, signBytes, verifyBytes } from './signer.js';

export const BUNDLE_V03_MEDIA_TYPE = MEDIA_TYPE_SIGSTORE_BUNDLE_V03;
/** The predicate type of a cosign v3 image signature. */
export const COSIGN_SIGN_PREDICATE = 'https://sigstore.dev/cosign/sign/v1';

/** The public-key hint: base64 of the SHA-256 of the key's DER SubjectPublicKeyInfo (a lookup hint only). */
export function keyHint(publicKey: KeyObject): string {
  return base64Std(createHash('sha256').update(createPublicKey(publicKey).export({ type: 'spki', format: 'der' })).digest());
}

/** A bundle holding `payload` (of `payloadType`) signed by `privateKey` over PAE. */
export function signBundle(payloadType: string, payload: Buffer, privateKey: KeyObject): Buffer {
  const sig = signBytes(privateKey, pae(payloadType, payload));
  return Buffer.from(goJson({
    mediaType: BUNDLE_V03_MEDIA_TYPE,
    verificationMaterial: { publicKey: { hint: keyHint(privateKey) }, tlogEntries: [], timestampVerificationData: {} },
    dsseEnvelope: { payload: base64Std(payload), payloadType, signatures: [{ sig: base64Std(sig), keyid: '' }] },
  }), 'utf8');
}

/**
 * The payload of a v0.3 DSSE bundle one of whose signatures verifies over PAE with `publicKey`, or
 * ATTESTATION_INVALID. Message-signature bundles (cosign sign-blob) carry no statement and are refused.
 */
export function verifyBundle(bytes: Buffer, publicKey: KeyObject): { payloadType: string; payload: Buffer } {
  const b = parseJsonObject(bytes, invalid);
  if (b['mediaType'] !== BUNDLE_V03_MEDIA_TYPE) throw invalid(`media type ${(JSON.stringify(b['mediaType']) ?? 'none').slice(0, 80)}, not ${BUNDLE_V03_MEDIA_TYPE}`);
  const env = b['dsseEnvelope'] as Record<string, unknown> | undefined;
  if (typeof env !== 'object' || env === null || Array.isArray(env)) throw invalid('no dsseEnvelope (a message-signature bundle names no image)');
  if (typeof env['payloadType'] !== 'string' || typeof env['payload'] !== 'string') throw invalid('the envelope has no payload or payloadType');
  const payload = decodeAnyBase64(env['payload']);
  if (payload === undefined) throw invalid('the payload is not base64');
  const sigs = env['signatures'];
  if (!Array.isArray(sigs) || sigs.length === 0) throw invalid('the envelope has no signatures');
  const message = pae(env['payloadType'], payload);
  const ok = sigs.some((s: unknown) => {
    const raw = (s as { sig?: unknown } | null)?.sig;
    const sig = typeof raw === 'string' ? decodeAnyBase64(raw) : undefined;
    return sig !== undefined && verifyBytes(publicKey, message, sig);
  });
  if (!ok) {
    throw new DistillError('ATTESTATION_INVALID', 'no signature of the bundle\'s DSSE envelope verifies with the public key (over PAE)', {
      hint: 'the bundle was made with another key, or altered',
    });
  }
  return { payloadType: env['payloadType'], payload };
}

function invalid(message: string, cause?: unknown): DistillError {
  return new DistillError('ATTESTATION_INVALID', `invalid Sigstore bundle: ${message}`, cause === undefined ? {} : { cause });
}
