// DSSE v1 envelopes (secure-systems-lab/dsse: envelope.md, protocol.md), as cosign attest writes them:
// `{"payloadType":…,"payload":<base64>,"signatures":[{"keyid":"","sig":<base64>}]}`, standard padded
// base64 (Go's []byte encoding), the signature over PAE(payloadType, payload) — never over the payload
// alone, so a signature made for one payload type cannot be replayed as another.
//
// Reading: the envelope is attacker-controlled. Base64 may be standard or URL-safe, padded or not (the
// spec requires accepting both); `keyid` is an unauthenticated hint and is ignored; the payload returned
// is exactly the bytes the signature was checked over.
import { parseJsonObject } from '../json.js';
import type { KeyObject } from 'node:crypto';
import { DistillError } from '../errors.js';
import { goJson } from '../oci/descriptor.js';
import { base64Std, signBytes, verifyBytes } from '../sign/signer.js';
import { decodeAnyBase64, pae } from '../sign/pae.js';

export { decodeAnyBase64, pae };

export const DSSE_MEDIA_TYPE = 'application/vnd.dsse.envelope.v1+json';
export const IN_TOTO_PAYLOAD_TYPE = 'application/vnd.in-toto+json';

/** A signed envelope's bytes: one signature by `privateKey` over PAE. */
export function signEnvelope(payloadType: string, payload: Buffer, privateKey: KeyObject, keyid = ''): Buffer {
  const sig = signBytes(privateKey, pae(payloadType, payload));
  return Buffer.from(goJson({ payloadType, payload: base64Std(payload), signatures: [{ keyid, sig: base64Std(sig) }] }), 'utf8');
}

export interface DecodedEnvelope {
  payloadType: string;
  /** Not yet authenticated. */
  payload: Buffer;
  signatures: { keyid: string; sig: Buffer }[];
}

/** Parse an envelope without checking any signature (for bookkeeping such as --replace, never for trust). */
export function decodeEnvelope(bytes: Buffer): DecodedEnvelope {
  const o = parseJsonObject(bytes, invalid);
  if (typeof o['payloadType'] !== 'string') throw invalid('payloadType is not a string');
  if (typeof o['payload'] !== 'string') throw invalid('payload is not a string');
  const payload = decodeAnyBase64(o['payload']);
  if (payload === undefined) throw invalid('payload is not base64');
  const list = o['signatures'];
  if (!Array.isArray(list) || list.length === 0) throw invalid('no signatures');
  const signatures = list.map((s: unknown, i) => {
    const so = (typeof s === 'object' && s !== null ? s : {}) as Record<string, unknown>;
    const sig = typeof so['sig'] === 'string' ? decodeAnyBase64(so['sig']) : undefined;
    if (sig === undefined) throw invalid(`signatures[${i}].sig is not base64`);
    return { keyid: typeof so['keyid'] === 'string' ? so['keyid'] : '', sig };
  });
  return { payloadType: o['payloadType'], payload, signatures };
}

/**
 * The payload of an envelope one of whose signatures verifies over PAE with `publicKey`, or
 * ATTESTATION_INVALID. A signature over the bare payload does not count.
 */
export function verifyEnvelope(bytes: Buffer, publicKey: KeyObject): { payloadType: string; payload: Buffer } {
  const env = decodeEnvelope(bytes);
  const message = pae(env.payloadType, env.payload);
  if (!env.signatures.some((s) => verifyBytes(publicKey, message, s.sig))) {
    throw new DistillError('ATTESTATION_INVALID', 'no signature of the DSSE envelope verifies with the public key (over PAE)', {
      hint: 'the attestation was made with another key, or altered',
    });
  }
  return { payloadType: env.payloadType, payload: env.payload };
}

function invalid(message: string, cause?: unknown): DistillError {
  return new DistillError('ATTESTATION_INVALID', `invalid DSSE envelope: ${message}`, cause === undefined ? {} : { cause });
}
