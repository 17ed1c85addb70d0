// NaCl secretbox (XSalsa20-Poly1305), the cipher of cosign's encrypted private keys: Go's
// golang.org/x/crypto/nacl/secretbox.Seal/Open, byte for byte the layout of libsodium's
// crypto_secretbox_easy (16-byte Poly1305 tag, then the ciphertext). node:crypto has no Salsa20; the
// primitives come from @noble/ciphers (audited, constant-time Poly1305, no dependencies), which follows
// "Cryptography in NaCl" §9: the first 32 bytes of the XSalsa20 keystream are the one-time Poly1305
// key, the message is encrypted from byte 32 on, the tag authenticates the ciphertext.
// Tested against the vectors of that paper (test/sign/secretbox.test.ts) and against PyNaCl (libsodium).
import { hsalsa, xsalsa20, xsalsa20poly1305 } from '@noble/ciphers/salsa';
import { poly1305 as noblePoly1305 } from '@noble/ciphers/_poly1305';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;

/** secretbox.Seal: tag (16 bytes) || XSalsa20(message). */
export function secretboxSeal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  checkSizes(nonce, key);
  return Buffer.from(xsalsa20poly1305(key, nonce).encrypt(message));
}

/** secretbox.Open: the message, or undefined when the tag does not authenticate (wrong key, tampering). */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer | undefined {
  checkSizes(nonce, key);
  if (box.length < TAG_BYTES) return undefined;
  try {
    // noble compares the tag in constant time and throws when it does not authenticate.
    return Buffer.from(xsalsa20poly1305(key, nonce).decrypt(box));
  } catch {
    return undefined;
  }
}

function checkSizes(nonce: Uint8Array, key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new RangeError(`secretbox key must be ${KEY_BYTES} bytes, not ${key.length}`);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`secretbox nonce must be ${NONCE_BYTES} bytes, not ${nonce.length}`);
}

// ——— the primitives, exposed for the NaCl paper's per-step vectors ———

/** "expand 32-byte k", the Salsa20 constant, as little-endian words. */
const SIGMA = new Uint32Array(new Uint8Array(Buffer.from('expand 32-byte k', 'ascii')).buffer.slice(0));

/** HSalsa20(key, 16-byte input) → 32 bytes (XSalsa20's subkey derivation). */
export function hsalsa20(key: Uint8Array, input16: Uint8Array): Buffer {
  if (key.length !== 32 || input16.length !== 16) throw new RangeError('hsalsa20 takes a 32-byte key and a 16-byte input');
  const words = (b: Uint8Array): Uint32Array => new Uint32Array(new Uint8Array(b).buffer.slice(0));
  const out = new Uint32Array(8);
  hsalsa(SIGMA, words(key), words(input16), out);
  return Buffer.from(out.buffer);
}

/** XSalsa20 keystream XORed into `data` in place. */
export function xsalsa20Xor(data: Uint8Array, nonce: Uint8Array, key: Uint8Array): void {
  checkSizes(nonce, key);
  data.set(xsalsa20(key, nonce, data));
}

/** Poly1305 one-time authenticator of `message` under a 32-byte key. */
export function poly1305(message: Uint8Array, key: Uint8Array): Buffer {
  return Buffer.from(noblePoly1305(message, key));
}
