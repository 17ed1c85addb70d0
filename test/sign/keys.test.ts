// cosign key pair files (../shared/docs/formats.md §a): the exact envelope distill writes, file modes and
// overwrite rules, and interoperability both ways with an independent implementation — python3 with
// PyNaCl, hashlib.scrypt and pyca/cryptography decrypts distill's keys and writes keys distill must
// load (all three scrypt parameter sets, both PEM labels), with signatures checked by openssl.
// scrypt is the cost here (~0.1–0.5 s per key), so the number of encryptions is kept small.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomBytes, scryptSync, sign, verify, type KeyObject } from 'node:crypto';
import { lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { generateKeyPair, loadPrivateKey, loadPublicKey, passwordFrom, writeKeyPair } from '../../src/sign/keys.js';
import { secretboxSeal } from '../../src/sign/secretbox.js';
import {
  NO_OPENSSL,
  NO_PYTHON_CRYPTO,
  opensslAvailable,
  opensslVerifies,
  pythonCrypto,
  pythonDecryptAndSign,
  pythonEncryptKeys,
} from '../helpers/python-crypto.js';

// ---------------------------------------------------------------------------------------------------
// Helpers

const code = (c: string, message?: RegExp) => (e: unknown) => {
  assert.equal((e as { code?: string }).code, c, `expected ${c}, got: ${String(e)}`);
  assert.ok((e as { hint?: string }).hint, 'errors carry a hint');
  if (message) assert.match((e as Error).message, message);
  return true;
};

const dirs: string[] = [];
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), 'distill-keys-'));
  dirs.push(d);
  return d;
}
after(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const pem = (k: KeyObject) => k.export({ type: 'spki', format: 'pem' }).toString();
const mode = (path: string) => statSync(path).mode & 0o777;

/** A signature by `key` that `pub` verifies (node), proving the pair belongs together. */
function assertPair(priv: KeyObject, pub: KeyObject): void {
  const data = Buffer.from('distill key test');
  const sig = sign(priv.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, priv);
  assert.ok(verify(priv.asymmetricKeyType === 'ed25519' ? null : 'sha256', data, pub, sig));
}

/** An encrypted-key PEM around an arbitrary envelope document (for the refusal tests). */
function envelopePem(doc: unknown, label = 'ENCRYPTED SIGSTORE PRIVATE KEY'): string {
  const b64 = Buffer.from(JSON.stringify(doc)).toString('base64').replace(/(.{64})/g, '$1\n');
  return `-----BEGIN ${label}-----\n${b64}\n-----END ${label}-----\n`;
}

/** Encrypt arbitrary plaintext the way cosign does (node scrypt + distill's secretbox), N=32768. */
function encryptRaw(plaintext: Buffer, password: string): string {
  const salt = randomBytes(32);
  const nonce = randomBytes(24);
  const key = scryptSync(password, salt, 32, { N: 32768, r: 8, p: 1, maxmem: 128 * 32768 * 8 * 2 });
  return envelopePem({
    kdf: { name: 'scrypt', params: { N: 32768, r: 8, p: 1 }, salt: salt.toString('base64') },
    cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
    ciphertext: secretboxSeal(plaintext, nonce, key).toString('base64'),
  });
}

// ---------------------------------------------------------------------------------------------------
// The format distill writes

test('generateKeyPair: the envelope is byte-for-byte the shape Go writes, and loads back', () => {
  const { privatePem, publicPem } = generateKeyPair('correct horse');
  const lines = privatePem.split('\n');
  assert.equal(lines[0], '-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----');
  assert.equal(lines.at(-2), '-----END ENCRYPTED SIGSTORE PRIVATE KEY-----');
  assert.equal(lines.at(-1), '', 'a final newline');
  const body = lines.slice(1, -2);
  body.slice(0, -1).forEach((l) => assert.equal(l.length, 64, 'PEM lines of 64 like Go'));
  const json = Buffer.from(body.join(''), 'base64').toString('utf8');
  assert.match(
    json,
    /^\{"kdf":\{"name":"scrypt","params":\{"N":65536,"r":8,"p":1\},"salt":"[A-Za-z0-9+/]{43}="\},"cipher":\{"name":"nacl\/secretbox","nonce":"[A-Za-z0-9+/]{32}"\},"ciphertext":"[A-Za-z0-9+/]+={0,2}"\}$/,
  );
  assert.match(publicPem, /^-----BEGIN PUBLIC KEY-----\n[\s\S]+\n-----END PUBLIC KEY-----\n$/);
  assert.ok(!privatePem.includes('PRIVATE KEY-----\nMI'), 'no plain DER in the output');

  const key = loadPrivateKey(privatePem, 'correct horse', 'cosign.key');
  assert.equal(key.algorithm, 'ecdsa-p256');
  assert.equal(pem(key.publicKey), publicPem);
  assertPair(key.privateKey, loadPublicKey(publicPem, 'cosign.pub'));

  // The wrong password fails the secretbox authentication; no password at all is asked for first.
  assert.throws(() => loadPrivateKey(privatePem, 'Correct horse', 'cosign.key'), code('KEY_PASSWORD', /^wrong password for cosign\.key$/));
  assert.throws(() => loadPrivateKey(privatePem, undefined, 'cosign.key'), code('KEY_PASSWORD'));
});

test('writeKeyPair: cosign.key is 0600, cosign.pub 0644; never replaced without force; force replaces atomically', async () => {
  const dir = tempDir();
  const { privateKeyPath, publicKeyPath } = await writeKeyPair(dir, '', { scryptN: 32768 });
  assert.equal(privateKeyPath, join(dir, 'cosign.key'));
  assert.equal(publicKeyPath, join(dir, 'cosign.pub'));
  assert.equal(mode(privateKeyPath), 0o600);
  assert.equal(mode(publicKeyPath), 0o644 & ~process.umask());
  const first = readFileSync(privateKeyPath, 'utf8');
  const key = loadPrivateKey(first, '', 'cosign.key'); // the empty password is a password
  assert.equal(pem(key.publicKey), readFileSync(publicKeyPath, 'utf8'));

  await assert.rejects(writeKeyPair(dir, 'x', { scryptN: 32768 }), code('KEY_EXISTS'));
  assert.equal(readFileSync(privateKeyPath, 'utf8'), first, 'untouched');

  // Only the .pub left over (or a symlink as the .key): still refused, and no half pair appears.
  const other = tempDir();
  writeFileSync(join(other, 'release.pub'), 'old');
  await assert.rejects(writeKeyPair(other, 'x', { prefix: 'release', scryptN: 32768 }), code('KEY_EXISTS'));
  assert.deepEqual(readdirSync(other), ['release.pub']);
  symlinkSync(join(other, 'nowhere'), join(other, 'dangling.key'));
  await assert.rejects(writeKeyPair(other, 'x', { prefix: 'dangling', scryptN: 32768 }), code('KEY_EXISTS'));

  // force: new keys, still 0600 even when the old file was world-readable, no temp files left.
  writeFileSync(privateKeyPath, first, { mode: 0o644 });
  execFileSync('chmod', ['0644', privateKeyPath]);
  await writeKeyPair(dir, 'y', { force: true, scryptN: 32768 });
  assert.notEqual(readFileSync(privateKeyPath, 'utf8'), first);
  assert.equal(mode(privateKeyPath), 0o600);
  assert.deepEqual(readdirSync(dir).sort(), ['cosign.key', 'cosign.pub']);

  // force replaces a symlinked key file itself, never the file it points to.
  const target = join(other, 'target');
  writeFileSync(target, 'keep me');
  symlinkSync(target, join(other, 'linked.key'));
  await writeKeyPair(other, 'z', { prefix: 'linked', force: true, scryptN: 32768 });
  assert.equal(readFileSync(target, 'utf8'), 'keep me');
  assert.ok(lstatSync(join(other, 'linked.key')).isFile());
});

// ---------------------------------------------------------------------------------------------------
// Interoperability with an independent implementation

test('a key written by distill: python3 (PyNaCl + hashlib.scrypt + cryptography) decrypts it and its signature verifies with openssl', async (t) => {
  const py = pythonCrypto();
  if (!py) return t.skip(NO_PYTHON_CRYPTO);
  if (!opensslAvailable()) return t.skip(NO_OPENSSL);
  const dir = tempDir();
  const { privateKeyPath, publicKeyPath } = await writeKeyPair(dir, 'pässword 🔑'); // default N=65536; UTF-8 bytes
  const msg = join(dir, 'payload.json');
  writeFileSync(msg, '{"critical":{}}');
  writeFileSync(join(dir, 'payload.sig'), pythonDecryptAndSign(py, privateKeyPath, 'pässword 🔑', msg));
  assert.ok(opensslVerifies(publicKeyPath, msg, join(dir, 'payload.sig')), 'openssl dgst -sha256 -verify cosign.pub');
});

test('keys encrypted by python3 in cosign format (all three scrypt sets, both labels) load, and their signatures verify with openssl', (t) => {
  const py = pythonCrypto();
  if (!py) return t.skip(NO_PYTHON_CRYPTO);
  if (!opensslAvailable()) return t.skip(NO_OPENSSL);
  const specs = [
    { label: 'ENCRYPTED SIGSTORE PRIVATE KEY', n: 32768, curve: 'P-256', algorithm: 'ecdsa-p256' },
    { label: 'ENCRYPTED SIGSTORE PRIVATE KEY', n: 65536, curve: 'P-384', algorithm: 'ecdsa-p384' },
    { label: 'ENCRYPTED SIGSTORE PRIVATE KEY', n: 131072, curve: 'P-521', algorithm: 'ecdsa-p521' },
    { label: 'ENCRYPTED COSIGN PRIVATE KEY', n: 32768, curve: 'P-256', algorithm: 'ecdsa-p256' },
  ] as const;
  const keys = pythonEncryptKeys(py, 'hunter2', specs.map(({ label, n, curve }) => ({ label, n, curve })));
  const dir = tempDir();
  const msg = join(dir, 'payload');
  writeFileSync(msg, randomBytes(100));
  specs.forEach((s, i) => {
    const k = keys[i]!;
    const key = loadPrivateKey(k.privatePem, 'hunter2', 'cosign.key');
    assert.equal(key.algorithm, s.algorithm);
    assert.equal(pem(key.publicKey), k.publicPem);
    writeFileSync(join(dir, `${i}.pub`), k.publicPem);
    writeFileSync(join(dir, `${i}.sig`), sign('sha256', readFileSync(msg), { key: key.privateKey, dsaEncoding: 'der' }));
    assert.ok(opensslVerifies(join(dir, `${i}.pub`), msg, join(dir, `${i}.sig`)), `${s.label} N=${s.n} ${s.curve}`);
  });
});

// ---------------------------------------------------------------------------------------------------
// Refusals

test('encrypted envelope: unsupported scrypt parameters, KDFs and ciphers are refused before any work', () => {
  const doc = (params: object, kdf = 'scrypt', cipher = 'nacl/secretbox') => ({
    kdf: { name: kdf, params, salt: randomBytes(32).toString('base64') },
    cipher: { name: cipher, nonce: randomBytes(24).toString('base64') },
    ciphertext: randomBytes(100).toString('base64'),
  });
  const load = (d: unknown, label?: string) => () => loadPrivateKey(envelopePem(d, label), 'pw', 'cosign.key');
  for (const params of [{ N: 1024, r: 8, p: 1 }, { N: 65536, r: 16, p: 1 }, { N: 65536, r: 8, p: 2 }, { N: 1 << 30, r: 8, p: 1 }, { N: '65536', r: 8, p: 1 }, {}]) {
    assert.throws(load(doc(params)), code('KEY_UNSUPPORTED', /unsupported scrypt parameters/), JSON.stringify(params));
  }
  assert.throws(load(doc({ N: 65536, r: 8, p: 1 }, 'argon2id')), code('KEY_UNSUPPORTED', /key derivation/));
  assert.throws(load(doc({ N: 65536, r: 8, p: 1 }, 'scrypt', 'aes-gcm')), code('KEY_UNSUPPORTED', /cipher/));
  // Malformed envelopes are invalid, not a password problem.
  const short = doc({ N: 32768, r: 8, p: 1 });
  short.cipher.nonce = randomBytes(12).toString('base64');
  assert.throws(load(short), code('KEY_INVALID', /nonce/));
  const unpadded = doc({ N: 32768, r: 8, p: 1 });
  unpadded.kdf.salt = unpadded.kdf.salt.replace(/=+$/, '');
  assert.throws(load(unpadded), code('KEY_INVALID', /salt/));
  assert.throws(() => loadPrivateKey('-----BEGIN ENCRYPTED SIGSTORE PRIVATE KEY-----\nbm90IGpzb24=\n-----END ENCRYPTED SIGSTORE PRIVATE KEY-----\n', 'pw', 'cosign.key'), code('KEY_INVALID', /JSON/));
  assert.throws(load([1, 2, 3]), code('KEY_INVALID', /"kdf"/));
});

test('encrypted envelope: a SEC1 plaintext is refused like cosign does; a tampered ciphertext fails as a wrong password', () => {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const sec1 = privateKey.export({ type: 'sec1', format: 'der' });
  const pemText = encryptRaw(sec1, 'pw');
  assert.throws(() => loadPrivateKey(pemText, 'pw', 'cosign.key'), code('KEY_INVALID', /SEC1/));

  const lines = pemText.split('\n');
  const doc = JSON.parse(Buffer.from(lines.slice(1, -2).join(''), 'base64').toString()) as { ciphertext: string };
  const ct = Buffer.from(doc.ciphertext, 'base64');
  ct[ct.length - 1]! ^= 0x01;
  doc.ciphertext = ct.toString('base64');
  assert.throws(() => loadPrivateKey(envelopePem(doc), 'pw', 'cosign.key'), code('KEY_PASSWORD', /wrong password/));
});

// ---------------------------------------------------------------------------------------------------
// Plain PEM keys (what import-key-pair reads) and public keys

test('plain PEM private keys load: PKCS#8 EC/RSA/Ed25519, SEC1 EC, PKCS#1 RSA', () => {
  const ec256 = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ec384 = generateKeyPairSync('ec', { namedCurve: 'P-384' });
  const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ed = generateKeyPairSync('ed25519');
  const cases = [
    [ec256.privateKey.export({ type: 'pkcs8', format: 'pem' }), 'ecdsa-p256', ec256.publicKey],
    [ec384.privateKey.export({ type: 'sec1', format: 'pem' }), 'ecdsa-p384', ec384.publicKey],
    [rsa.privateKey.export({ type: 'pkcs1', format: 'pem' }), 'rsa', rsa.publicKey],
    [rsa.privateKey.export({ type: 'pkcs8', format: 'pem' }), 'rsa', rsa.publicKey],
    [ed.privateKey.export({ type: 'pkcs8', format: 'pem' }), 'ed25519', ed.publicKey],
  ] as const;
  for (const [text, algorithm, pub] of cases) {
    const key = loadPrivateKey(`some text before the block\n${text.toString()}`, undefined, 'import.pem');
    assert.equal(key.algorithm, algorithm);
    assert.equal(pem(key.publicKey), pem(pub));
    assertPair(key.privateKey, pub);
  }
});

test('plain PEM: openssl ecparam -genkey output (EC PARAMETERS block first) loads', (t) => {
  if (!opensslAvailable()) return t.skip(NO_OPENSSL);
  const text = execFileSync('openssl', ['ecparam', '-name', 'prime256v1', '-genkey'], { encoding: 'utf8' });
  assert.match(text, /BEGIN EC PARAMETERS[\s\S]*BEGIN EC PRIVATE KEY/);
  assert.equal(loadPrivateKey(text, undefined, 'ec.pem').algorithm, 'ecdsa-p256');
});

test('private keys that are not signing keys cosign supports are refused', () => {
  const k1 = generateKeyPairSync('ec', { namedCurve: 'secp256k1' }).privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.throws(() => loadPrivateKey(k1, undefined, 'k1.pem'), code('KEY_UNSUPPORTED', /curve/));
  const rsa1024 = generateKeyPairSync('rsa', { modulusLength: 1024 }).privateKey.export({ type: 'pkcs1', format: 'pem' }).toString();
  assert.throws(() => loadPrivateKey(rsa1024, undefined, 'rsa.pem'), code('KEY_UNSUPPORTED', /2048/));
  const x25519 = generateKeyPairSync('x25519').privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  assert.throws(() => loadPrivateKey(x25519, undefined, 'x.pem'), code('KEY_UNSUPPORTED'));
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const encrypted = privateKey.export({ type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
  assert.throws(() => loadPrivateKey(encrypted, 'pw', 'enc.pem'), code('KEY_UNSUPPORTED', /ENCRYPTED PRIVATE KEY/));
  const legacy = privateKey.export({ type: 'sec1', format: 'pem', cipher: 'aes-256-cbc', passphrase: 'pw' }).toString();
  assert.throws(() => loadPrivateKey(legacy, 'pw', 'legacy.pem'), code('KEY_UNSUPPORTED', /headers/));
  assert.throws(() => loadPrivateKey(pem(publicKey), undefined, 'cosign.pub'), code('KEY_INVALID', /public key/));
  assert.throws(() => loadPrivateKey('-----BEGIN OPENSSH PRIVATE KEY-----\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n', undefined, 'id'), code('KEY_UNSUPPORTED'));
});

test('loadPublicKey: PUBLIC KEY (PKIX) loads; anything else is KEY_INVALID', () => {
  for (const kp of [generateKeyPairSync('ec', { namedCurve: 'P-256' }), generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('ed25519')]) {
    const loaded = loadPublicKey(pem(kp.publicKey), 'cosign.pub');
    assert.equal(loaded.type, 'public');
    assert.deepEqual(loaded.export({ type: 'spki', format: 'der' }), kp.publicKey.export({ type: 'spki', format: 'der' }));
  }
  const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const good = pem(ec.publicKey);
  const bad: [string, RegExp][] = [
    ['', /no -----BEGIN/],
    ['garbage\x00\xff not a key at all', /no -----BEGIN/],
    [ec.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(), /PUBLIC KEY/],
    [good.replace('-----END PUBLIC KEY', '-----END PRIVATE KEY'), /closed by/],
    [good.replace(/\n[A-Za-z0-9+/]{10}/, '\n!!!!!!!!!!'), /base64/],
    [good.replace(/\n.*\n-----END/, '\n-----END'), /not a valid PKIX public key/], // truncated DER
    ['-----BEGIN PUBLIC KEY-----\n' + 'QUFB'.repeat(300_000) + '\n-----END PUBLIC KEY-----\n', /larger than/],
  ];
  for (const [text, message] of bad) assert.throws(() => loadPublicKey(text, 'cosign.pub'), code('KEY_INVALID', message), text.slice(0, 60));
  assert.equal(pem(loadPublicKey(good, 'cosign.pub')), good, 'the key is exactly the file\'s');
});

test('passwordFrom: COSIGN_PASSWORD when set (the empty string is the empty password), else undefined', () => {
  assert.equal(passwordFrom({ COSIGN_PASSWORD: 'secret' }), 'secret');
  assert.equal(passwordFrom({ COSIGN_PASSWORD: '' }), '');
  assert.equal(passwordFrom({}), undefined);
  assert.equal(passwordFrom({ COSIGN_PASSWORD: undefined, OTHER: 'x' }), undefined);
});

test('a key pair that cannot be written is KEY_IO, not an internal error', async () => {
  const { writeKeyPair: write } = await import('../../src/sign/keys.js');
  await assert.rejects(write('/nonexistent-dir/for/keys', 'pw', { scryptN: 32768 }), (e: any) => e.code === 'KEY_IO');
});
