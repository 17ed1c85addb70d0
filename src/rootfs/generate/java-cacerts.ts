// /etc/ssl/certs/java/cacerts: a Java KeyStore (JKS) of trusted-certificate entries, written as the
// JDK's sun.security.provider.JavaKeyStore.engineStore writes one, with the aliases Debian's
// ca-certificates-java (20240118, org.debian.security.UpdateCertificates) gives them.
//
// Format (all integers big-endian, strings in java.io.DataOutput.writeUTF's modified UTF-8 with a
// 16-bit byte length):
//   u32 magic 0xFEEDFEED, u32 version 2, u32 entry count, then per entry
//   u32 tag 2 (trusted certificate), utf alias, u64 creation time (ms since the epoch),
//   utf certificate type "X.509", u32 length, the DER certificate;
//   and last, SHA-1(password as UTF-16BE ‖ "Mighty Aphrodite" ‖ every byte before the digest).
//
// Decision: JKS, not PKCS#12. Debian's ca-certificates-java writes JKS (KeyStore.getInstance("JKS");
// its postinst even converts a PKCS#12 cacerts back to JKS), distroless ships JKS, and every JDK since 9
// reads JKS whatever its keystore.type default (keystore.type.compat). JKS is deterministic by
// construction — one SHA-1 over the bytes — where PKCS#12 needs a salted PBMAC, iteration counts and the
// JDK-specific trusted-key-usage attribute, each a way for readers to disagree.
//
// Aliases: ca-certificates-java names an entry "debian:" + the name of the /etc/ssl/certs/*.pem link that
// update-ca-certificates made for the certificate (the .crt basename with ' ' → '_', '(' and ')' → '=',
// ',' → '_', then ".pem"), lower-cased by JavaKeyStore (it looks aliases up lower-cased, too).
// Entries are written sorted by alias (Java writes them in Hashtable order, which no reader relies on),
// all with one creation date — the build's timestamp — so the bytes depend only on the inputs.
import { createHash, X509Certificate } from 'node:crypto';
import { DistillError } from '../../errors.js';
import type { TreeEntry } from '../tree.js';
import { bundledCertificates, type CaCertificateFile } from './ca-bundle.js';
import { fileEntry } from './entries.js';

export const JKS_MAGIC = 0xfeedfeed;
export const JKS_VERSION_2 = 2;
export const JKS_TRUSTED_CERT_TAG = 2;
export const DEFAULT_STOREPASS = 'changeit';
const DIGEST_SALT = 'Mighty Aphrodite';

export interface TrustedCertificate {
  alias: string;
  /** The certificate, DER-encoded. */
  der: Buffer;
}

export interface JksEntry extends TrustedCertificate {
  created: Date;
}

export interface JavaCacertsOptions {
  /** The creation date of every entry: the build timestamp. */
  created: Date;
  /** The store password; Java's and Debian's default "changeit". */
  password?: string;
}

function fail(message: string, hint: string): never {
  throw new DistillError('GENERATE_FAILED', message, { hint });
}

/** java.io.DataOutput.writeUTF: modified UTF-8 (U+0000 as C0 80, UTF-16 surrogates encoded one by one). */
export function javaModifiedUtf8(s: string): Buffer {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x01 && c <= 0x7f) bytes.push(c);
    else if (c <= 0x7ff) bytes.push(0xc0 | (c >> 6), 0x80 | (c & 0x3f));
    else bytes.push(0xe0 | (c >> 12), 0x80 | ((c >> 6) & 0x3f), 0x80 | (c & 0x3f));
  }
  if (bytes.length > 0xffff) fail(`a keystore string is ${bytes.length} bytes long; Java's writeUTF allows 65535`, 'Use a shorter alias.');
  const out = Buffer.alloc(2 + bytes.length);
  out.writeUInt16BE(bytes.length, 0);
  Buffer.from(bytes).copy(out, 2);
  return out;
}

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n >>> 0, 0);
  return b;
}

/**
 * A JKS keystore of trusted-certificate entries, in the order given, with the integrity digest keyed by
 * `password`. The low-level writer: javaCacerts() is the one a build uses.
 */
export function jksKeystore(entries: readonly JksEntry[], password: string = DEFAULT_STOREPASS): Buffer {
  const parts: Buffer[] = [u32(JKS_MAGIC), u32(JKS_VERSION_2), u32(entries.length)];
  const type = javaModifiedUtf8('X.509');
  for (const e of entries) {
    const ms = e.created instanceof Date ? e.created.getTime() : NaN;
    if (!Number.isFinite(ms)) fail(`keystore entry ${JSON.stringify(e.alias)} has an invalid creation date`, 'Pass a valid Date (the build timestamp).');
    if (!Buffer.isBuffer(e.der) || e.der.length === 0) fail(`keystore entry ${JSON.stringify(e.alias)} has no certificate`, 'Pass the DER bytes of the certificate.');
    const date = Buffer.alloc(8);
    date.writeBigInt64BE(BigInt(ms), 0);
    parts.push(u32(JKS_TRUSTED_CERT_TAG), javaModifiedUtf8(e.alias), date, type, u32(e.der.length), e.der);
  }
  const body = Buffer.concat(parts);
  const pw = Buffer.alloc(password.length * 2);
  for (let i = 0; i < password.length; i++) pw.writeUInt16BE(password.charCodeAt(i), i * 2);
  const digest = createHash('sha1').update(pw).update(DIGEST_SALT, 'utf8').update(body).digest();
  return Buffer.concat([body, digest]);
}

/**
 * /etc/ssl/certs/java/cacerts: the certificates as trusted entries, aliases lower-cased as JavaKeyStore
 * stores them, sorted by alias, all created at `opts.created`. GENERATE_FAILED on an empty or duplicate
 * alias or an invalid date.
 */
export function javaCacerts(certsDer: readonly TrustedCertificate[], opts: JavaCacertsOptions): Buffer {
  const entries = certsDer.map((c) => ({ alias: c.alias.toLowerCase(), der: c.der, created: opts.created }));
  const seen = new Set<string>();
  for (const e of entries) {
    if (e.alias.length === 0) fail('a keystore entry has an empty alias', 'Give every certificate an alias.');
    if (seen.has(e.alias)) fail(`keystore alias ${JSON.stringify(e.alias)} is given twice`, 'Aliases are compared lower-cased; make them unique.');
    seen.add(e.alias);
  }
  entries.sort((a, b) => Buffer.compare(Buffer.from(a.alias, 'utf8'), Buffer.from(b.alias, 'utf8')));
  return jksKeystore(entries, opts.password ?? DEFAULT_STOREPASS);
}

/**
 * The alias ca-certificates-java gives a certificate file: "debian:" + the /etc/ssl/certs link name
 * update-ca-certificates makes for it (`basename .crt`, ' ' → '_', '(' ')' → '=', ',' → '_', + ".pem"),
 * lower-cased.
 */
export function debianJavaAlias(certPath: string): string {
  const base = certPath.slice(certPath.lastIndexOf('/') + 1).replace(/\.crt$/, '');
  const link = base.replace(/ /g, '_').replace(/[()]/g, '=').replace(/,/g, '_') + '.pem';
  return ('debian:' + link).toLowerCase();
}

/**
 * The DER bytes of the first certificate in a PEM text (what Java's CertificateFactory reads from a .crt
 * file), checked to parse as X.509. GENERATE_FAILED when there is none or it does not parse.
 */
export function pemCertificateToDer(pem: string, what = 'certificate'): Buffer {
  const m = /-----BEGIN CERTIFICATE-----([A-Za-z0-9+/=\s]*?)-----END CERTIFICATE-----/.exec(pem);
  if (!m) fail(`${what} has no PEM certificate block`, 'The file must contain -----BEGIN CERTIFICATE----- … -----END CERTIFICATE-----.');
  const der = Buffer.from(m[1]!.replace(/\s+/g, ''), 'base64');
  if (derLength(der) !== der.length) fail(`${what} is not one DER SEQUENCE (truncated, or bytes after it)`, 'Check the certificate file; it may be truncated.');
  try {
    new X509Certificate(der);
  } catch (e) {
    throw new DistillError('GENERATE_FAILED', `${what} is not a valid X.509 certificate`, { cause: e, hint: 'Check the certificate file; it may be truncated.' });
  }
  return der;
}

/** The total length of the DER TLV at the start of `der` (a SEQUENCE), or -1. */
function derLength(der: Buffer): number {
  if (der.length < 2 || der[0] !== 0x30) return -1;
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const n = first & 0x7f;
  if (n === 0 || n > 4 || der.length < 2 + n) return -1;
  let len = 0;
  for (let i = 0; i < n; i++) len = len * 256 + der[2 + i]!;
  return 2 + n + len;
}

/**
 * The keystore entries ca-certificates-java would make from the same certificate files the CA bundle is
 * built from (see ca-bundle.ts): one per bundled file, aliased with debianJavaAlias().
 */
export function debianJavaTrustedCertificates(files: readonly CaCertificateFile[]): TrustedCertificate[] {
  return bundledCertificates(files).map((c) => ({ alias: debianJavaAlias(c.path), der: pemCertificateToDer(c.pem, c.path) }));
}

export const JAVA_CACERTS_PATH = 'etc/ssl/certs/java/cacerts';

/**
 * The Java trust store generator: /etc/ssl/certs/java/cacerts from the same certificate files as the
 * CA bundle, every entry created at the layer's timestamp, as a tree entry.
 */
export function javaCacertsEntries(certs: readonly CaCertificateFile[], mtime: number): TreeEntry[] {
  const store = javaCacerts(debianJavaTrustedCertificates(certs), { created: new Date(mtime * 1000) });
  return [fileEntry(JAVA_CACERTS_PATH, store, 'distill:java-cacerts', mtime)];
}
