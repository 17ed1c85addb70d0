// Signing and verifying bytes as cosign does with a key pair (sigstore/sigstore LoadSignerVerifier with
// crypto.SHA256): ECDSA (any curve) over SHA-256 with an ASN.1 DER `SEQUENCE{r,s}` signature — never
// raw IEEE-P1363 r||s, which openssl and older verifiers refuse — RSA PKCS#1 v1.5 over SHA-256, and
// pure Ed25519. Both simple signing (the payload) and DSSE (the PAE bytes) sign through here.
// SHA-256 for every curve: containers/image verifies with a hard-coded SHA-256
// (sigstoreHarcodedHashAlgorithm), so a P-384 signature over SHA-384 would not verify there.
import { createPublicKey, sign, verify, type KeyObject } from 'node:crypto';
import { DistillError } from '../errors.js';

/** The signature over `data`: DER for ECDSA, as cosign emits it. */
export function signBytes(privateKey: KeyObject, data: Uint8Array): Buffer {
  if (privateKey.type !== 'private') {
    throw new DistillError('KEY_INVALID', `signing needs a private key, got a ${privateKey.type} key`);
  }
  switch (privateKey.asymmetricKeyType) {
    case 'ec':
      return sign('sha256', data, { key: privateKey, dsaEncoding: 'der' });
    case 'rsa':
      return sign('sha256', data, privateKey);
    case 'ed25519':
      return sign(null, data, privateKey);
    default:
      throw new DistillError('KEY_UNSUPPORTED', `cannot sign with a ${String(privateKey.asymmetricKeyType)} key`, {
        hint: 'use an ECDSA (P-256, as cosign generate-key-pair makes), RSA or Ed25519 key',
      });
  }
}

/** Whether `signature` (untrusted bytes) is a valid signature over `data`; malformed input is false, not an error. */
export function verifyBytes(publicKey: KeyObject, data: Uint8Array, signature: Uint8Array): boolean {
  try {
    switch (publicKey.asymmetricKeyType) {
      case 'ec':
        return verify('sha256', data, { key: publicKey, dsaEncoding: 'der' }, signature);
      case 'rsa':
        return verify('sha256', data, publicKey, signature);
      case 'ed25519':
        return verify(null, data, publicKey, signature);
      default:
        return false;
    }
  } catch {
    return false;
  }
}

/** The public half of a private key (what a signer checks its own earlier signatures with). */
export function publicKeyOf(privateKey: KeyObject): KeyObject {
  return createPublicKey(privateKey);
}

/** Base64 exactly as Go's base64.StdEncoding writes it: standard alphabet, padded. */
export function base64Std(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('base64');
}

const STD_BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decode standard padded base64 only (Go's base64.StdEncoding, which containers/image uses for the
 * signature annotation): URL-safe characters, missing padding or stray characters give undefined.
 * Node's own decoder silently accepts all of those, so it is not used alone.
 */
export function decodeStdBase64(s: string): Buffer | undefined {
  if (typeof s !== 'string' || !STD_BASE64.test(s)) return undefined;
  return Buffer.from(s, 'base64');
}
