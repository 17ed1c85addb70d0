// NaCl secretbox (XSalsa20-Poly1305), the cipher of cosign's encrypted private keys: Go's
// golang.org/x/crypto/nacl/secretbox.Seal/Open, byte for byte the layout of libsodium's
// crypto_secretbox_easy (16-byte Poly1305 tag, then the ciphertext). node:crypto has no Salsa20, so the
// primitives are written out here after their specifications:
//   Salsa20/20 and HSalsa20 — D. J. Bernstein, "The Salsa20 family of stream ciphers" and
//   "Extending the Salsa20 nonce" (XSalsa20); Poly1305 — "The Poly1305-AES message-authentication code"
//   (RFC 8439 §2.5 for the clamping and block padding); the composition — "Cryptography in NaCl" §9:
//   the first 32 bytes of the XSalsa20 keystream are the one-time Poly1305 key, the message is
//   encrypted with the keystream from byte 32 on, the tag authenticates the ciphertext.
// Tested against the vectors of that paper (test/sign/secretbox.test.ts) and against PyNaCl (libsodium).
//
// Poly1305 uses BigInt arithmetic, which is not constant-time. That is a deliberate trade for
// readability: the only inputs are local key files of a few kilobytes, decrypted by their owner, so
// there is no remote timing oracle; the tag comparison itself is constant-time (timingSafeEqual).
import { timingSafeEqual } from 'node:crypto';

export const KEY_BYTES = 32;
export const NONCE_BYTES = 24;
export const TAG_BYTES = 16;

/** secretbox.Seal: tag (16 bytes) || XSalsa20(message). */
export function secretboxSeal(message: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer {
  checkSizes(nonce, key);
  // Encrypting 32 zero bytes in front of the message yields the Poly1305 key in the same pass.
  const padded = Buffer.alloc(32 + message.length);
  padded.set(message, 32);
  xsalsa20Xor(padded, nonce, key);
  const polyKey = padded.subarray(0, 32);
  const ciphertext = padded.subarray(32);
  const out = Buffer.alloc(TAG_BYTES + ciphertext.length);
  out.set(poly1305(ciphertext, polyKey), 0);
  out.set(ciphertext, TAG_BYTES);
  padded.fill(0);
  return out;
}

/** secretbox.Open: the message, or undefined when the tag does not authenticate (wrong key, tampering). */
export function secretboxOpen(box: Uint8Array, nonce: Uint8Array, key: Uint8Array): Buffer | undefined {
  checkSizes(nonce, key);
  if (box.length < TAG_BYTES) return undefined;
  const tag = box.subarray(0, TAG_BYTES);
  const ciphertext = box.subarray(TAG_BYTES);
  const padded = Buffer.alloc(32 + ciphertext.length);
  padded.set(ciphertext, 32);
  xsalsa20Xor(padded, nonce, key);
  const polyKey = padded.subarray(0, 32);
  const ok = timingSafeEqual(poly1305(ciphertext, polyKey), tag);
  if (!ok) {
    padded.fill(0);
    return undefined;
  }
  const message = Buffer.from(padded.subarray(32));
  padded.fill(0);
  return message;
}

function checkSizes(nonce: Uint8Array, key: Uint8Array): void {
  if (key.length !== KEY_BYTES) throw new RangeError(`secretbox key must be ${KEY_BYTES} bytes, not ${key.length}`);
  if (nonce.length !== NONCE_BYTES) throw new RangeError(`secretbox nonce must be ${NONCE_BYTES} bytes, not ${nonce.length}`);
}

// ---------------------------------------------------------------------------------------------------
// Salsa20 core, HSalsa20, XSalsa20

// "expand 32-byte k", the diagonal constants of the 256-bit-key state.
const SIGMA = [0x61707865, 0x3320646e, 0x79622d32, 0x6b206574] as const;

function rotl(v: number, n: number): number {
  return (v << n) | (v >>> (32 - n));
}

/** The 20 rounds (10 double rounds) of the Salsa20 core, in place on a 16-word state. */
function salsaRounds(x: Uint32Array): void {
  const qr = (a: number, b: number, c: number, d: number): void => {
    x[b]! ^= rotl((x[a]! + x[d]!) | 0, 7);
    x[c]! ^= rotl((x[b]! + x[a]!) | 0, 9);
    x[d]! ^= rotl((x[c]! + x[b]!) | 0, 13);
    x[a]! ^= rotl((x[d]! + x[c]!) | 0, 18);
  };
  for (let i = 0; i < 10; i++) {
    // columns
    qr(0, 4, 8, 12);
    qr(5, 9, 13, 1);
    qr(10, 14, 2, 6);
    qr(15, 3, 7, 11);
    // rows
    qr(0, 1, 2, 3);
    qr(5, 6, 7, 4);
    qr(10, 11, 8, 9);
    qr(15, 12, 13, 14);
  }
}

/** The Salsa20 input matrix: constants on the diagonal, key around them, 16 bytes of input in the middle. */
function initialState(key: Uint8Array, input16: Uint8Array): Uint32Array {
  const k = (i: number) => readLE32(key, i * 4);
  const n = (i: number) => readLE32(input16, i * 4);
  return Uint32Array.of(
    SIGMA[0], k(0), k(1), k(2),
    k(3), SIGMA[1], n(0), n(1),
    n(2), n(3), SIGMA[2], k(4),
    k(5), k(6), k(7), SIGMA[3],
  );
}

/** HSalsa20: the 32-byte subkey for the first 16 nonce bytes (the core without the feed-forward). */
export function hsalsa20(key: Uint8Array, input16: Uint8Array): Buffer {
  const x = initialState(key, input16);
  salsaRounds(x);
  const out = Buffer.alloc(32);
  [0, 5, 10, 15, 6, 7, 8, 9].forEach((w, i) => out.writeUInt32LE(x[w]!, i * 4));
  x.fill(0);
  return out;
}

/** XOR `data` in place with the XSalsa20 keystream for a 24-byte nonce, block counter from 0. */
export function xsalsa20Xor(data: Uint8Array, nonce: Uint8Array, key: Uint8Array): void {
  const subkey = hsalsa20(key, nonce.subarray(0, 16));
  const input = Buffer.alloc(16); // the Salsa20 nonce (8 bytes) then the little-endian block counter
  input.set(nonce.subarray(16, 24), 0);
  const block = Buffer.alloc(64);
  for (let off = 0, counter = 0; off < data.length; off += 64, counter++) {
    input.writeUInt32LE(counter >>> 0, 8);
    input.writeUInt32LE(Math.floor(counter / 2 ** 32), 12);
    const start = initialState(subkey, input);
    const x = Uint32Array.from(start);
    salsaRounds(x);
    for (let i = 0; i < 16; i++) block.writeUInt32LE((x[i]! + start[i]!) >>> 0, i * 4);
    const n = Math.min(64, data.length - off);
    for (let i = 0; i < n; i++) data[off + i]! ^= block[i]!;
    x.fill(0);
    start.fill(0);
  }
  block.fill(0);
  subkey.fill(0);
}

function readLE32(b: Uint8Array, at: number): number {
  return (b[at]! | (b[at + 1]! << 8) | (b[at + 2]! << 16) | (b[at + 3]! << 24)) >>> 0;
}

// ---------------------------------------------------------------------------------------------------
// Poly1305

const P1305 = (1n << 130n) - 5n;
const CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn;

/** Poly1305 one-time authenticator: 16-byte tag of `message` under a 32-byte one-time key (r || s). */
export function poly1305(message: Uint8Array, key: Uint8Array): Buffer {
  if (key.length !== 32) throw new RangeError(`poly1305 key must be 32 bytes, not ${key.length}`);
  const r = leToBigInt(key.subarray(0, 16)) & CLAMP;
  const s = leToBigInt(key.subarray(16, 32));
  let acc = 0n;
  for (let off = 0; off < message.length; off += 16) {
    const chunk = message.subarray(off, Math.min(off + 16, message.length));
    // Each block is read as a little-endian number with a 1 byte appended (2^(8·len)).
    const n = leToBigInt(chunk) + (1n << BigInt(8 * chunk.length));
    acc = ((acc + n) * r) % P1305;
  }
  let t = (acc + s) & ((1n << 128n) - 1n);
  const tag = Buffer.alloc(16);
  for (let i = 0; i < 16; i++, t >>= 8n) tag[i] = Number(t & 0xffn);
  return tag;
}

function leToBigInt(b: Uint8Array): bigint {
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]!);
  return v;
}
