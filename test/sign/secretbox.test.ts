// XSalsa20-Poly1305 secretbox against the published vectors of "Cryptography in NaCl" (D. J. Bernstein,
// §§ 7–9; the same bytes are libsodium's test/default/core1, stream3, onetimeauth and secretbox tests),
// against PyNaCl (libsodium) for many lengths, round trips, and tampering.
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { test } from 'node:test';
import { hsalsa20, poly1305, secretboxOpen, secretboxSeal, xsalsa20Xor } from '../../src/sign/secretbox.js';
import { NO_PYTHON_CRYPTO, pythonCrypto, pythonSecretbox } from '../helpers/python-crypto.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

// The NaCl paper's example: Alice and Bob's Curve25519 shared secret, the key HSalsa20 derives from it
// ("firstkey"), the 24-byte nonce, the 131-byte message and the box.
const shared = hex('4a5d9d5ba4ce2de1728e3bf480350f25 e07e21c947d19e3376f09b3c1e161742');
const firstkey = hex('1b27556473e985d462cd51197a9a46c7 6009549eac6474f206c4ee0844f68389');
const nonce = hex('69696ee955b62b73cd62bda875fc73d6 8219e0036b7a0b37');
const message = hex(`
  be075fc53c81f2d5cf141316ebeb0c7b 5228c52a4c62cbd44b66849b64244ffc e5ecbaaf33bd751a1ac728d45e6c6129
  6cdc3c01233561f41db66cce314adb31 0e3be8250c46f06dceea3a7fa1348057 e2f6556ad6b1318a024a838f21af1fde
  048977eb48f59ffd4924ca1c60902e52 f0a089bc76897040e082f93776384864 5e0705`);
const polyKey = hex('eea6a7251c1e72916d11c2cb214d3c25 2539121d8e234e652d651fa4c8cff880');
const tag = hex('f3ffc7703f9400e52a7dfb4b3d3305d9');
const ciphertext = hex(`
  8e993b9f48681273c29650ba32fc76ce 48332ea7164d96a4476fb8c531a1186a c0dfc17c98dce87b4da7f011ec48c972
  71d2c20f9b928fe2270d6fb863d51738 b48eeee314a7cc8ab932164548e526ae 90224368517acfeabd6bb3732bc0e9da
  99832b61ca01b6de56244a9e88d5f9b3 7973f622a43d14a6599b1f654cb45a74 e355a5`);

test('HSalsa20: the shared secret becomes firstkey (NaCl core1)', () => {
  assert.equal(hsalsa20(shared, Buffer.alloc(16)).toString('hex'), firstkey.toString('hex'));
});

test('XSalsa20: the first 32 keystream bytes are the one-time Poly1305 key (NaCl stream3)', () => {
  const z = Buffer.alloc(32);
  xsalsa20Xor(z, nonce, firstkey);
  assert.equal(z.toString('hex'), polyKey.toString('hex'));
});

test('Poly1305: the NaCl onetimeauth vector and the 2^130-5 wrap-around case (poly1305-donna)', () => {
  assert.equal(poly1305(ciphertext, polyKey).toString('hex'), tag.toString('hex'));
  const wrapKey = Buffer.alloc(32);
  wrapKey[0] = 2;
  assert.equal(poly1305(Buffer.alloc(16, 0xff), wrapKey).toString('hex'), '03' + '00'.repeat(15));
  assert.equal(poly1305(Buffer.alloc(0), polyKey).toString('hex'), polyKey.subarray(16).toString('hex'), 'empty message: tag = s');
});

test('secretbox: the NaCl paper box, sealed and opened', () => {
  const box = secretboxSeal(message, nonce, firstkey);
  assert.equal(box.toString('hex'), Buffer.concat([tag, ciphertext]).toString('hex'));
  assert.deepEqual(secretboxOpen(box, nonce, firstkey), message);
});

test('secretbox: round trips at block boundaries; wrong key or nonce does not open', () => {
  for (const len of [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 1000]) {
    const key = randomBytes(32);
    const n = randomBytes(24);
    const m = randomBytes(len);
    const box = secretboxSeal(m, n, key);
    assert.equal(box.length, 16 + len);
    assert.deepEqual(secretboxOpen(box, n, key), m, `length ${len}`);
    assert.equal(secretboxOpen(box, randomBytes(24), key), undefined);
    assert.equal(secretboxOpen(box, n, randomBytes(32)), undefined);
  }
});

test('secretbox: any one flipped bit, in the tag or the ciphertext, fails authentication', () => {
  const box = secretboxSeal(message, nonce, firstkey);
  for (let byte = 0; byte < box.length; byte++) {
    const bit = byte % 8;
    const bad = Buffer.from(box);
    bad[byte]! ^= 1 << bit;
    assert.equal(secretboxOpen(bad, nonce, firstkey), undefined, `byte ${byte} bit ${bit}`);
  }
  assert.equal(secretboxOpen(box.subarray(0, box.length - 1), nonce, firstkey), undefined, 'truncated');
  assert.equal(secretboxOpen(box.subarray(0, 15), nonce, firstkey), undefined, 'shorter than a tag');
  assert.equal(secretboxOpen(Buffer.concat([box, Buffer.of(0)]), nonce, firstkey), undefined, 'extended');
});

test('secretbox: wrong key or nonce sizes are programming errors', () => {
  assert.throws(() => secretboxSeal(message, nonce.subarray(0, 23), firstkey), RangeError);
  assert.throws(() => secretboxOpen(message, nonce, firstkey.subarray(0, 16)), RangeError);
});

test('secretbox: byte-identical to PyNaCl (libsodium) for many lengths', (t) => {
  const py = pythonCrypto();
  if (!py) return t.skip(NO_PYTHON_CRYPTO);
  const cases = [0, 1, 16, 31, 32, 33, 64, 100, 255, 256, 1024, 4097].map((len) => ({
    key: randomBytes(32).toString('hex'),
    nonce: randomBytes(24).toString('hex'),
    message: randomBytes(len).toString('hex'),
  }));
  const theirs = pythonSecretbox(py, cases);
  cases.forEach((c, i) => {
    const ours = secretboxSeal(hex(c.message), hex(c.nonce), hex(c.key));
    assert.equal(ours.toString('hex'), theirs[i], `length ${c.message.length / 2}`);
  });
});
