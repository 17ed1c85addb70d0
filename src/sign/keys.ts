// cosign key pair files: generate, encrypt, write, load. Spec: ../shared/docs/formats.md §a ("Key pair
// files"), i.e. what sigstore/cosign `generate-key-pair` writes and `LoadPrivateKey` reads, with the
// envelope of secure-systems-lab/go-securesystemslib `encrypted`:
//   cosign.pub  PEM "PUBLIC KEY", DER SubjectPublicKeyInfo.
//   cosign.key  PEM "ENCRYPTED SIGSTORE PRIVATE KEY" (or, read only, the older "ENCRYPTED COSIGN PRIVATE
//               KEY") around compact JSON {"kdf":{"name":"scrypt","params":{"N","r","p"},"salt"},
//               "cipher":{"name":"nacl/secretbox","nonce"},"ciphertext"}; the secretbox key is
//               scrypt(password, salt, N, r, p, 32) and the plaintext is the PKCS#8 DER private key.
// Plain PEM private keys (PKCS#8, SEC1, PKCS#1 — what `cosign import-key-pair` accepts) load too.
//
// Key files are attacker-controlled input only in a weak sense (a tampered file), but they are parsed
// defensively: size cap, strict base64, only the three scrypt parameter sets cosign accepts (an
// arbitrary N would be a memory/CPU bomb), fixed nonce size. Private key bytes never leave this module
// except into the key file, encrypted; buffers that held them in plaintext are zeroed when done.
import { createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, scryptSync, type KeyObject } from 'node:crypto';
import { lstat, open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DistillError, messageOf } from '../errors.js';
import { NONCE_BYTES, secretboxOpen, secretboxSeal } from './secretbox.js';
import { writeAtomic } from '../util/atomic-write.js';
import { readRegularFile } from '../util/regular-file.js';

export type KeyAlgorithm = 'ecdsa-p256' | 'ecdsa-p384' | 'ecdsa-p521' | 'rsa' | 'ed25519';

export interface SigningKey {
  privateKey: KeyObject;
  publicKey: KeyObject;
  algorithm: KeyAlgorithm;
}

/** The scrypt N values cosign's reader accepts, each with r=8, p=1: legacy, standard (written), OWASP. */
export type ScryptN = 32768 | 65536 | 131072;
const SCRYPT_N: readonly number[] = [32768, 65536, 131072];
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const DEFAULT_SCRYPT_N: ScryptN = 65536;
const SALT_BYTES = 32;

const SIGSTORE_LABEL = 'ENCRYPTED SIGSTORE PRIVATE KEY';
const COSIGN_LABEL = 'ENCRYPTED COSIGN PRIVATE KEY';
/** Key files are a few kilobytes at most; anything far larger is not a key. */
const MAX_PEM_CHARS = 1 << 20;

// ---------------------------------------------------------------------------------------------------
// Generating and encrypting

/** A new ECDSA P-256 key pair (cosign's default), the private key encrypted under `password`. */
export function generateKeyPair(password: string, opts: { scryptN?: ScryptN } = {}): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privatePem: encryptPrivateKey(privateKey, password, opts),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** The `ENCRYPTED SIGSTORE PRIVATE KEY` PEM of a private key (also what an import re-encrypts to). */
export function encryptPrivateKey(privateKey: KeyObject, password: string, opts: { scryptN?: ScryptN } = {}): string {
  const n = opts.scryptN ?? DEFAULT_SCRYPT_N;
  if (!SCRYPT_N.includes(n)) throw new RangeError(`scrypt N must be one of ${SCRYPT_N.join(', ')}`);
  algorithmOf(privateKey, 'the key');
  const salt = randomBytes(SALT_BYTES);
  const nonce = randomBytes(NONCE_BYTES);
  const der = privateKey.export({ type: 'pkcs8', format: 'der' });
  const boxKey = deriveKey(password, salt, n);
  try {
    const ciphertext = secretboxSeal(der, nonce, boxKey);
    // Member order and compact form as Go's encoding/json emits the go-securesystemslib structs;
    // []byte fields are standard padded base64.
    const json = JSON.stringify({
      kdf: { name: 'scrypt', params: { N: n, r: SCRYPT_R, p: SCRYPT_P }, salt: salt.toString('base64') },
      cipher: { name: 'nacl/secretbox', nonce: nonce.toString('base64') },
      ciphertext: ciphertext.toString('base64'),
    });
    return pemEncode(SIGSTORE_LABEL, Buffer.from(json, 'utf8'));
  } finally {
    der.fill(0);
    boxKey.fill(0);
  }
}

function deriveKey(password: string, salt: Buffer, n: number): Buffer {
  const pw = Buffer.from(password, 'utf8'); // Go hands scrypt the password's bytes as typed
  try {
    return scryptSync(pw, salt, 32, { N: n, r: SCRYPT_R, p: SCRYPT_P, maxmem: 128 * n * SCRYPT_R * 2 });
  } finally {
    pw.fill(0);
  }
}

// ---------------------------------------------------------------------------------------------------
// Loading

/**
 * A private key from PEM text: cosign's encrypted formats (needs `password`), or a plain PKCS#8
 * `PRIVATE KEY`, SEC1 `EC PRIVATE KEY` or PKCS#1 `RSA PRIVATE KEY`. `what` names the file in messages.
 */
export function loadPrivateKey(pem: string, password: string | undefined, what: string): SigningKey {
  const block = readPem(pem, what);
  try {
    return privateKeyFromBlock(block, password, what);
  } finally {
    block.der.fill(0); // for the plain formats, the private key itself
  }
}

function privateKeyFromBlock(block: { label: string; der: Buffer }, password: string | undefined, what: string): SigningKey {
  switch (block.label) {
    case SIGSTORE_LABEL:
    case COSIGN_LABEL:
      return decryptPrivateKey(block.der, password, what);
    case 'PRIVATE KEY':
      return signingKey(parseDer(block.der, 'pkcs8', what), what);
    case 'EC PRIVATE KEY':
      return signingKey(parseDer(block.der, 'sec1', what), what);
    case 'RSA PRIVATE KEY':
      return signingKey(parseDer(block.der, 'pkcs1', what), what);
    case 'PUBLIC KEY':
      throw new DistillError('KEY_INVALID', `${what} holds a public key; signing needs the private key`, {
        hint: 'Pass the private key file (cosign.key), not cosign.pub.',
      });
    case 'ENCRYPTED PRIVATE KEY':
      throw new DistillError('KEY_UNSUPPORTED', `${what} is a password-protected PKCS#8 key (ENCRYPTED PRIVATE KEY), which cosign does not read`, {
        hint: 'Decrypt it with `openssl pkcs8 -in KEY -out PLAIN.pem`, import PLAIN.pem, then delete the plain copy.',
      });
    default:
      throw new DistillError('KEY_UNSUPPORTED', `${what}: PEM type "${block.label}" is not a supported private key`, {
        hint: `Use a cosign key (${SIGSTORE_LABEL}) or a plain PRIVATE KEY, EC PRIVATE KEY or RSA PRIVATE KEY PEM file.`,
      });
  }
}

/** A public key from PEM text: one `PUBLIC KEY` block (PKIX SubjectPublicKeyInfo), like cosign.pub. */
export function loadPublicKey(pem: string, what: string): KeyObject {
  const block = readPem(pem, what);
  if (block.label !== 'PUBLIC KEY') {
    block.der.fill(0); // it may be a private key given by mistake
    throw new DistillError('KEY_INVALID', `${what}: expected a PEM "PUBLIC KEY" block, found "${block.label}"`, {
      hint: 'Pass the public key file of the pair (cosign.pub, PEM "PUBLIC KEY").',
    });
  }
  let key: KeyObject;
  try {
    key = createPublicKey({ key: block.der, format: 'der', type: 'spki' });
  } catch (e) {
    throw new DistillError('KEY_INVALID', `${what} is not a valid PKIX public key: ${messageOf(e)}`, {
      cause: e,
      hint: 'The file may be truncated or corrupted; copy cosign.pub again.',
    });
  }
  algorithmOf(key, what);
  return key;
}

/** Open cosign's envelope: JSON → checks → scrypt → secretbox → PKCS#8. */
function decryptPrivateKey(body: Buffer, password: string | undefined, what: string): SigningKey {
  const env = parseEnvelope(body, what);
  if (password === undefined) {
    throw new DistillError('KEY_PASSWORD', `${what} is encrypted and no password was given`, {
      hint: 'Set COSIGN_PASSWORD (it may be empty), or run on a terminal to be asked for it.',
    });
  }
  const boxKey = deriveKey(password, env.salt, env.n);
  const plain = secretboxOpen(env.ciphertext, env.nonce, boxKey);
  boxKey.fill(0);
  if (plain === undefined) {
    throw new DistillError('KEY_PASSWORD', `wrong password for ${what}`, {
      hint: 'The key did not decrypt (its authentication failed): check the password or COSIGN_PASSWORD. A modified key file fails the same way.',
    });
  }
  try {
    let key: KeyObject;
    try {
      key = createPrivateKey({ key: plain, format: 'der', type: 'pkcs8' });
    } catch (e) {
      // cosign (x509.ParsePKCS8PrivateKey) refuses anything else, including the SEC1 key among its own
      // test vectors; say which it is when we can tell.
      const sec1 = parses(plain, 'sec1');
      throw new DistillError(
        'KEY_INVALID',
        sec1
          ? `${what} decrypts to a SEC1 "EC PRIVATE KEY", not PKCS#8; cosign refuses such keys and so does distill`
          : `${what} decrypts to something that is not a PKCS#8 private key`,
        { cause: e, hint: 'Generate a new key pair, or import the plain PEM key so that it is re-encrypted as PKCS#8.' },
      );
    }
    return signingKey(key, what);
  } finally {
    plain.fill(0);
  }
}

interface Envelope {
  n: number;
  salt: Buffer;
  nonce: Buffer;
  ciphertext: Buffer;
}

/** The JSON document inside an encrypted key PEM, validated before any scrypt work is done. */
function parseEnvelope(body: Buffer, what: string): Envelope {
  const invalid = (why: string, cause?: unknown): never => {
    throw new DistillError('KEY_INVALID', `${what} is not a valid encrypted cosign key: ${why}`, {
      cause,
      hint: 'The file may be truncated or corrupted; restore it from where the key pair was made.',
    });
  };
  let doc: unknown;
  try {
    doc = JSON.parse(body.toString('utf8'));
  } catch (e) {
    return invalid('its body is not JSON', e);
  }
  const kdf = member(doc, 'kdf');
  const params = member(kdf, 'params');
  const cipher = member(doc, 'cipher');
  if (!isObject(kdf) || !isObject(cipher)) invalid('it has no "kdf" and "cipher" objects');
  const kdfName = member(kdf, 'name');
  const cipherName = member(cipher, 'name');
  if (kdfName !== 'scrypt') {
    throw new DistillError('KEY_UNSUPPORTED', `${what}: unsupported key derivation ${JSON.stringify(kdfName)} (only "scrypt")`, {
      hint: 'Re-create or re-import the key with cosign or distill.',
    });
  }
  if (cipherName !== 'nacl/secretbox') {
    throw new DistillError('KEY_UNSUPPORTED', `${what}: unsupported cipher ${JSON.stringify(cipherName)} (only "nacl/secretbox")`, {
      hint: 'Re-create or re-import the key with cosign or distill.',
    });
  }
  const n = member(params, 'N');
  const r = member(params, 'r');
  const p = member(params, 'p');
  if (typeof n !== 'number' || !SCRYPT_N.includes(n) || r !== SCRYPT_R || p !== SCRYPT_P) {
    throw new DistillError('KEY_UNSUPPORTED', `${what}: unsupported scrypt parameters (N=${String(n)}, r=${String(r)}, p=${String(p)})`, {
      hint: 'cosign reads only N=32768, 65536 or 131072 with r=8, p=1; re-create the key with cosign or distill.',
    });
  }
  const bytes = (v: unknown, name: string): Buffer => {
    if (typeof v !== 'string' || !isStdBase64(v)) return invalid(`${name} is not base64`);
    return Buffer.from(v, 'base64');
  };
  const salt = bytes(member(kdf, 'salt'), 'kdf.salt');
  const nonce = bytes(member(cipher, 'nonce'), 'cipher.nonce');
  const ciphertext = bytes(member(doc, 'ciphertext'), 'ciphertext');
  if (nonce.length !== NONCE_BYTES) invalid(`the nonce is ${nonce.length} bytes, not ${NONCE_BYTES}`);
  return { n, salt, nonce, ciphertext };
}

function isObject(o: unknown): o is Record<string, unknown> {
  return typeof o === 'object' && o !== null && !Array.isArray(o);
}

function member(o: unknown, name: string): unknown {
  return isObject(o) ? o[name] : undefined;
}

function parseDer(der: Buffer, type: 'pkcs8' | 'sec1' | 'pkcs1', what: string): KeyObject {
  try {
    return createPrivateKey({ key: der, format: 'der', type });
  } catch (e) {
    throw new DistillError('KEY_INVALID', `${what} is not a valid ${type.toUpperCase()} private key: ${messageOf(e)}`, {
      cause: e,
      hint: 'The file may be truncated or corrupted.',
    });
  }
}

function parses(der: Buffer, type: 'sec1'): boolean {
  try {
    createPrivateKey({ key: der, format: 'der', type });
    return true;
  } catch {
    return false;
  }
}

function signingKey(privateKey: KeyObject, what: string): SigningKey {
  const algorithm = algorithmOf(privateKey, what);
  return { privateKey, publicKey: createPublicKey(privateKey), algorithm };
}

/** The algorithms cosign signs with: ECDSA on the NIST curves, RSA (≥ 2048 bits), Ed25519. */
function algorithmOf(key: KeyObject, what: string): KeyAlgorithm {
  const type = key.asymmetricKeyType;
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    switch (details.namedCurve) {
      case 'prime256v1':
        return 'ecdsa-p256';
      case 'secp384r1':
        return 'ecdsa-p384';
      case 'secp521r1':
        return 'ecdsa-p521';
    }
    throw unsupported(`${what}: ECDSA curve ${details.namedCurve ?? '(unknown)'} is not supported (P-256, P-384, P-521 are)`);
  }
  if (type === 'rsa') {
    if ((details.modulusLength ?? 0) < 2048) throw unsupported(`${what}: RSA keys must be at least 2048 bits, this one has ${details.modulusLength ?? '?'}`);
    return 'rsa';
  }
  if (type === 'ed25519') return 'ed25519';
  throw unsupported(`${what}: ${type ?? 'unknown'} keys are not supported (ECDSA P-256/P-384/P-521, RSA, Ed25519 are)`);
}

function unsupported(message: string): DistillError {
  return new DistillError('KEY_UNSUPPORTED', message, { hint: 'Use an ECDSA P-256/P-384/P-521, RSA (2048 bits or more) or Ed25519 key; generate-key-pair makes ECDSA P-256.' });
}

// ---------------------------------------------------------------------------------------------------
// PEM

/**
 * The first PEM block of a text (Go's pem.Decode skips text before it), skipping an `EC PARAMETERS`
 * block (what `openssl ecparam -genkey` puts before the key). Strict base64; RFC 1421 headers
 * (OpenSSL's legacy `Proc-Type: 4,ENCRYPTED`) are refused.
 */
function readPem(text: string, what: string): { label: string; der: Buffer } {
  const invalid = (why: string): never => {
    throw new DistillError('KEY_INVALID', `${what} is not a PEM key file: ${why}`, {
      hint: 'Key files are PEM text (-----BEGIN … -----); check that the right file was given.',
    });
  };
  if (text.length > MAX_PEM_CHARS) invalid(`it is larger than ${MAX_PEM_CHARS} bytes`);
  // Linear: one regex with a lazy body and an END after it retried the whole rest of the text from
  // every BEGIN, so a file of 50k BEGIN lines and no END took ~30 s (quadratic). Each BEGIN is found
  // once, and its body ends at the first END after it.
  const begin = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n/g;
  for (let m = begin.exec(text); m; m = begin.exec(text)) {
    const label = m[1]!;
    const endAt = text.indexOf('-----END ', begin.lastIndex);
    if (endAt < 0) break;
    const endMatch = /^-----END ([A-Z0-9 ]+)-----/.exec(text.slice(endAt, endAt + 128));
    if (endMatch === null) invalid(`the ${label} block has no well-formed END line`);
    const end = endMatch![1]!;
    const body = text.slice(begin.lastIndex, endAt);
    begin.lastIndex = endAt + endMatch![0].length;
    if (label === 'EC PARAMETERS') continue;
    if (end !== label) invalid(`BEGIN ${label} is closed by END ${end}`);
    if (body.includes(':')) {
      throw new DistillError('KEY_UNSUPPORTED', `${what}: PEM headers (legacy OpenSSL encryption) are not supported`, {
        hint: 'Convert the key to unencrypted PKCS#8 with `openssl pkcs8 -topk8 -nocrypt`, import it, then delete the plain copy.',
      });
    }
    const b64 = body.replace(/\s+/g, '');
    if (!isStdBase64(b64) || b64.length === 0) invalid(`the ${label} block is not base64`);
    return { label, der: Buffer.from(b64, 'base64') };
  }
  return invalid('no -----BEGIN … ----- block');
}

function pemEncode(label: string, der: Buffer): string {
  const b64 = der.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 64) lines.push(b64.slice(i, i + 64));
  return `-----BEGIN ${label}-----\n${lines.join('\n')}\n-----END ${label}-----\n`;
}

/** Standard, padded base64 (Go's encoding/base64.StdEncoding, strict as encoding/json reads []byte). */
function isStdBase64(s: string): boolean {
  return s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s);
}

// ---------------------------------------------------------------------------------------------------
// Files and the password

/**
 * Generate a key pair and write `<prefix>.key` (mode 0600) and `<prefix>.pub` (0644) into `dir`.
 * Existing files are never replaced unless `force`; then they are replaced atomically (temp + rename).
 */
export async function writeKeyPair(
  dir: string,
  password: string,
  opts: { force?: boolean; prefix?: string; scryptN?: ScryptN } = {},
): Promise<{ privateKeyPath: string; publicKeyPath: string }> {
  const prefix = opts.prefix ?? 'cosign';
  const privateKeyPath = join(dir, `${prefix}.key`);
  const publicKeyPath = join(dir, `${prefix}.pub`);
  if (!opts.force) {
    // Fail before the scrypt work; the 'wx' opens below still guard against a race.
    for (const p of [privateKeyPath, publicKeyPath]) if (await exists(p)) throw keyExists(p);
  }
  const { privatePem, publicPem } = generateKeyPair(password, opts.scryptN ? { scryptN: opts.scryptN } : {});
  try {
    await writePair(privateKeyPath, privatePem, publicKeyPath, publicPem, opts.force === true);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new DistillError('KEY_IO', `cannot write the key pair in ${dir}: ${(e as Error).message}`, { cause: e, hint: 'check that the directory exists and is writable' });
  }
  return { privateKeyPath, publicKeyPath };
}

async function writePair(privateKeyPath: string, privatePem: string, publicKeyPath: string, publicPem: string, force: boolean): Promise<void> {
  if (force) {
    await replaceFile(privateKeyPath, privatePem, 0o600);
    await replaceFile(publicKeyPath, publicPem, 0o644);
  } else {
    await createFile(privateKeyPath, privatePem, 0o600);
    try {
      await createFile(publicKeyPath, publicPem, 0o644);
    } catch (e) {
      await rm(privateKeyPath, { force: true }); // no half pair: the private key we just made is useless alone
      throw e;
    }
  }
}

/** Create a new file (O_EXCL: never follows or replaces anything), write, fsync. */
async function createFile(path: string, text: string, mode: number): Promise<void> {
  let fh;
  try {
    fh = await open(path, 'wx', mode);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'EEXIST') throw keyExists(path);
    throw e;
  }
  try {
    await fh.writeFile(text);
    await fh.sync();
  } catch (e) {
    await fh.close();
    await rm(path, { force: true });
    throw e;
  }
  await fh.close();
}

/**
 * Replace a file atomically with the one atomic-write helper: a new temp file beside it (O_EXCL, the
 * final mode from the start — a private key is never readable by others, even as a temp file), fsync,
 * rename over it.
 */
async function replaceFile(path: string, text: string, mode: number): Promise<void> {
  await writeAtomic(path, (tmp: string) => createFile(tmp, text, mode), { code: 'KEY_IO', hint: 'check that the directory exists and is writable' });
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw e;
  }
}

function keyExists(path: string): DistillError {
  return new DistillError('KEY_EXISTS', `${path} already exists`, {
    hint: 'Pass --force to replace the key pair (the old private key is then lost), or write the new pair elsewhere.',
  });
}

/**
 * The password from the environment, as cosign reads it: COSIGN_PASSWORD when it is set, even to the
 * empty string (the empty password); undefined when unset (the CLI then asks on a terminal).
 */
export function passwordFrom(env: Record<string, string | undefined>): string | undefined {
  return env['COSIGN_PASSWORD'];
}

/**
 * A key file named on the command line, as text: a PEM is a few hundred bytes, so at most 1 MiB, and a
 * FIFO or a device is refused unread rather than waited on or read without end (util/regular-file.ts).
 */
export async function readKeyFile(path: string): Promise<string> {
  return (await readRegularFile(path, 1024 * 1024)).toString('utf8');
}
