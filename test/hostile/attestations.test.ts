// Hostile catalogue, class 3: signatures, DSSE envelopes, Sigstore bundles and keys, as `verify`,
// `verify-attestation` and `rebuild` meet them. The parsers are driven directly with a catalogue of
// junk (the registry plumbing around them is covered by test/sign and test/hostile/registry*): every
// input ends in a DistillError with its own code — never a TypeError, RangeError or INTERNAL — and
// the PEM reader stays linear on a megabyte of BEGIN lines.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { decodeEnvelope, signEnvelope, verifyEnvelope } from '../../src/attest/dsse.js';
import { DistillError } from '../../src/errors.js';
import { signBundle, verifyBundle } from '../../src/sign/bundle.js';
import { generateKeyPair, loadPrivateKey, loadPublicKey } from '../../src/sign/keys.js';
import { simpleSigningPayload, parseSimpleSigningPayload } from '../../src/sign/simple-signing.js';
import { signBytes } from '../../src/sign/signer.js';
import { checkSimpleSignature, signatureBytes } from '../../src/sign/verify.js';

const pair = generateKeyPair('pw', { scryptN: 32768 });
const key = loadPrivateKey(pair.privatePem, 'pw', 'cosign.key');
const pub = loadPublicKey(pair.publicPem, 'cosign.pub');
const DIGEST = `sha256:${'1'.repeat(64)}`;

function refuses(fn: () => unknown, codes: RegExp, what: string): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof DistillError, `${what}: threw ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
    assert.match(e.code, codes, `${what}: ${e.code} ${e.message}`);
    assert.notEqual(e.code, 'INTERNAL');
    return;
  }
  assert.fail(`${what}: accepted`);
}

const junkJson = [
  '', 'null', '[]', '"x"', '1e999', '{', '\ufeff{}', '{"a":1,"a":2}',
  '['.repeat(100_000) + ']'.repeat(100_000),
  '{"__proto__":{"polluted":1},"constructor":{"prototype":{"polluted":1}}}',
  JSON.stringify({ payloadType: 1, payload: [], signatures: 'x' }),
  JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: 'not base64!!', signatures: [{ sig: 'AA==' }] }),
  JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: 'e30=', signatures: [] }),
  JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: 'e30=', signatures: [null, 1, { sig: null }, { sig: '%%%' }] }),
  JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: 'e30=', signatures: [{ sig: 'A'.repeat(4 * 1024 * 1024) }] }),
];

test('DSSE envelopes: junk, wrong types, bad base64, signatures of the wrong thing', () => {
  for (const j of junkJson) refuses(() => verifyEnvelope(Buffer.from(j), pub), /^ATTESTATION_INVALID$/, `envelope ${j.slice(0, 40)}`);
  for (const j of junkJson.slice(0, 8)) refuses(() => decodeEnvelope(Buffer.from(j)), /^ATTESTATION_INVALID$/, `decode ${j.slice(0, 40)}`);
  // Signed by us but with another payloadType than the one claimed: PAE binds the type.
  const env = JSON.parse(signEnvelope('application/vnd.in-toto+json', Buffer.from('{}'), key.privateKey).toString());
  env.payloadType = 'text/plain';
  refuses(() => verifyEnvelope(Buffer.from(JSON.stringify(env)), pub), /^ATTESTATION_INVALID$/, 'payloadType swapped');
  // A signature over the bare payload (not PAE) does not count.
  const bare = { payloadType: 'application/vnd.in-toto+json', payload: Buffer.from('{}').toString('base64'), signatures: [{ sig: signBytes(key.privateKey, Buffer.from('{}')).toString('base64') }] };
  refuses(() => verifyEnvelope(Buffer.from(JSON.stringify(bare)), pub), /^ATTESTATION_INVALID$/, 'signature over the bare payload');
  assert.equal(({} as any).polluted, undefined);
});

test('Sigstore bundles: wrong versions, junk, no envelope, a message signature, another key', () => {
  const good = JSON.parse(signBundle('application/vnd.in-toto+json', Buffer.from('{}'), key.privateKey).toString());
  const variants: [string, unknown][] = [
    ['v0.1', { ...good, mediaType: 'application/vnd.dev.sigstore.bundle+json;version=0.1' }],
    ['v9', { ...good, mediaType: 'application/vnd.dev.sigstore.bundle.v9+json' }],
    ['no mediaType', { ...good, mediaType: undefined }],
    ['a mediaType object', { ...good, mediaType: { toString: 1 } }],
    ['no envelope', { ...good, dsseEnvelope: undefined }],
    ['an envelope list', { ...good, dsseEnvelope: [] }],
    ['a message signature', { ...good, dsseEnvelope: undefined, messageSignature: { signature: 'AA==' } }],
    ['signatures null', { ...good, dsseEnvelope: { ...good.dsseEnvelope, signatures: null } }],
    ['payload not base64', { ...good, dsseEnvelope: { ...good.dsseEnvelope, payload: '***' } }],
  ];
  for (const [what, b] of variants) refuses(() => verifyBundle(Buffer.from(JSON.stringify(b)), pub), /^ATTESTATION_INVALID$/, `bundle ${what}`);
  for (const j of junkJson) refuses(() => verifyBundle(Buffer.from(j), pub), /^ATTESTATION_INVALID$/, `bundle ${j.slice(0, 40)}`);
  const other = loadPublicKey(generateKeyPair('x', { scryptN: 32768 }).publicPem, 'other.pub');
  refuses(() => verifyBundle(Buffer.from(JSON.stringify(good)), other), /^ATTESTATION_INVALID$/, 'another key');
});

test('cosign simple-signing: junk payloads, a mismatched docker-manifest-digest, bad signature annotations', () => {
  for (const j of [...junkJson, JSON.stringify({ critical: { identity: { 'docker-reference': 'x' }, image: { 'docker-manifest-digest': 1 }, type: 'cosign container image signature' }, optional: null })]) {
    refuses(() => parseSimpleSigningPayload(Buffer.from(j)), /^SIGNATURE_INVALID$/, `payload ${j.slice(0, 40)}`);
  }
  const payload = simpleSigningPayload('reg/app', `sha256:${'2'.repeat(64)}`);
  const signature = signBytes(key.privateKey, payload);
  refuses(() => checkSimpleSignature({ payload, signature, publicKey: pub, digest: DIGEST }), /^SIGNATURE_DIGEST_MISMATCH$/, 'another digest');
  refuses(() => checkSimpleSignature({ payload, signature: Buffer.alloc(0), publicKey: pub, digest: DIGEST }), /^SIGNATURE_INVALID$/, 'an empty signature');
  refuses(() => checkSimpleSignature({ payload, signature: Buffer.alloc(100_000, 0x30), publicKey: pub, digest: DIGEST }), /^SIGNATURE_INVALID$/, 'a 100 kB DER-ish signature');
  for (const a of [undefined, '', 'not base64!', 'AA', 'A-_A']) refuses(() => signatureBytes(a), /^SIGNATURE_INVALID$/, `annotation ${a}`);
});

test('keys: malformed PEM, a private key as the public one, wrong curve, RSA too small, wrong password, absurd scrypt', () => {
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' });
  const dsa = generateKeyPairSync('dsa', { modulusLength: 1024, divisorLength: 160 });
  const cases: [string, () => unknown, RegExp][] = [
    ['empty', () => loadPublicKey('', 'k'), /^KEY_INVALID$/],
    ['binary', () => loadPublicKey('\x00\xff'.repeat(100), 'k'), /^KEY_INVALID$/],
    ['BEGIN with no END', () => loadPublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n', 'k'), /^KEY_INVALID$/],
    ['mismatched END', () => loadPublicKey('-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PRIVATE KEY-----\n', 'k'), /^KEY_INVALID$/],
    ['not base64', () => loadPublicKey('-----BEGIN PUBLIC KEY-----\n!!!!\n-----END PUBLIC KEY-----\n', 'k'), /^KEY_INVALID$/],
    ['base64 of junk', () => loadPublicKey('-----BEGIN PUBLIC KEY-----\nAAAAAAAA\n-----END PUBLIC KEY-----\n', 'k'), /^KEY_INVALID$/],
    ['a private key as public', () => loadPublicKey(pair.privatePem, 'k'), /^KEY_INVALID$/],
    ['secp256k1', () => loadPublicKey(k1.publicKey.export({ type: 'spki', format: 'pem' }) as string, 'k'), /^KEY_(INVALID|UNSUPPORTED)$/],
    ['DSA', () => loadPublicKey(dsa.publicKey.export({ type: 'spki', format: 'pem' }) as string, 'k'), /^KEY_(INVALID|UNSUPPORTED)$/],
    ['secp256k1 private', () => loadPrivateKey(k1.privateKey.export({ type: 'pkcs8', format: 'pem' }) as string, undefined, 'k'), /^KEY_(INVALID|UNSUPPORTED)$/],
    ['wrong password', () => loadPrivateKey(pair.privatePem, 'not the password', 'k'), /^KEY_(PASSWORD|INVALID)$/],
    ['no password', () => loadPrivateKey(pair.privatePem, undefined, 'k'), /^KEY_PASSWORD$/],
    ['legacy PEM headers', () => loadPrivateKey('-----BEGIN EC PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nAAAA\n-----END EC PRIVATE KEY-----\n', 'pw', 'k'), /^KEY_(INVALID|UNSUPPORTED)$/],
  ];
  // An encrypted cosign key whose envelope asks for scrypt N = 2^30 (a 1 TiB derivation) or junk params.
  const body = JSON.parse(Buffer.from(pair.privatePem.split('\n').filter((l) => !l.startsWith('-----')).join(''), 'base64').toString());
  for (const [what, params] of [['N 2^30', { N: 2 ** 30, r: 8, p: 1 }], ['r 1e9', { N: 32768, r: 1e9, p: 1 }], ['N a string', { N: '32768', r: 8, p: 1 }]] as const) {
    const env = { ...body, kdf: { ...body.kdf, params } };
    const pem = `-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\n${Buffer.from(JSON.stringify(env)).toString('base64')}\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n`;
    cases.push([`scrypt ${what}`, () => loadPrivateKey(pem, 'pw', 'k'), /^KEY_(INVALID|UNSUPPORTED)$/]);
  }
  for (const [what, fn, codes] of cases) refuses(fn, codes, `key ${what}`);
});

test('a megabyte of BEGIN lines and no END is refused in linear time (was quadratic: ~30 s)', () => {
  const text = '-----BEGIN A-----\n'.repeat(Math.floor((1 << 20) / 18) - 1);
  const t0 = Date.now();
  refuses(() => loadPublicKey(text, 'k'), /^KEY_INVALID$/, 'BEGIN flood');
  refuses(() => loadPrivateKey(text, undefined, 'k'), /^KEY_INVALID$/, 'BEGIN flood');
  // A hang guard, not a speed target: the quadratic reader took ~30 s here.
  assert.ok(Date.now() - t0 < 5000, `${Date.now() - t0} ms`);
});
