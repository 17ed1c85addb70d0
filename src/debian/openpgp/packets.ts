// OpenPGP packet syntax: splitting a byte string into packets and parsing the three kinds a signed
// InRelease and a keyring are made of — public keys (and subkeys), user IDs, signatures — plus the
// byte strings each kind contributes to a signature's hash. Parsing only: no trust decision and no
// signature check happens here.
//
// Follows RFC 4880 §3.2 (MPIs), §4.2 (packet headers), §5.2.3 (v4 signatures), §5.2.4 (what is
// hashed), §5.5.2 (v4 keys), §12.2 (fingerprints and key IDs), and RFC 9580 §5.2.3 (v6 signatures
// with a salt), §5.5.2.3 (v6 keys), §5.2.3.7 (subpackets), §5.5.4 (fingerprints), §9 (algorithm IDs).
//
// Attacker-controlled input: the signature packets come from the network (an InRelease file), so
// every length is checked against the bytes actually present before it is used; nothing here
// allocates more than the input's size.
import { createHash } from 'node:crypto';

/** A syntax error in OpenPGP data. Callers turn it into a DistillError with the code of their context. */
export class OpenPgpFormatError extends Error {
  override readonly name = 'OpenPgpFormatError';
}

function fail(message: string): never {
  throw new OpenPgpFormatError(message);
}

// ---------------------------------------------------------------------------------------------------
// A bounds-checked reader.

export class Reader {
  private pos = 0;
  constructor(
    private readonly buf: Uint8Array,
    private readonly what: string,
  ) {}

  get offset(): number {
    return this.pos;
  }
  get remaining(): number {
    return this.buf.length - this.pos;
  }

  private need(n: number): void {
    if (n > this.remaining) fail(`${this.what}: truncated (needs ${n} more bytes at offset ${this.pos}, has ${this.remaining})`);
  }
  u8(): number {
    this.need(1);
    return this.buf[this.pos++]!;
  }
  u16(): number {
    this.need(2);
    const v = (this.buf[this.pos]! << 8) | this.buf[this.pos + 1]!;
    this.pos += 2;
    return v;
  }
  u32(): number {
    this.need(4);
    const b = this.buf;
    const p = this.pos;
    this.pos += 4;
    return ((b[p]! << 24) >>> 0) + (b[p + 1]! << 16) + (b[p + 2]! << 8) + b[p + 3]!;
  }
  bytes(n: number): Uint8Array {
    this.need(n);
    const out = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }
  rest(): Uint8Array {
    return this.bytes(this.remaining);
  }
  /** RFC 4880 §3.2: a two-octet bit count, then the big-endian integer; returned with leading zero bytes removed. */
  mpi(): Uint8Array {
    const bits = this.u16();
    const raw = this.bytes((bits + 7) >> 3);
    let i = 0;
    while (i < raw.length && raw[i] === 0) i++;
    return raw.subarray(i);
  }
  end(): void {
    if (this.remaining !== 0) fail(`${this.what}: ${this.remaining} unexpected trailing bytes`);
  }
}

// ---------------------------------------------------------------------------------------------------
// Packet framing (RFC 4880 §4.2, RFC 9580 §4.2).

export const TAG = {
  signature: 2,
  secretKey: 5,
  publicKey: 6,
  secretSubkey: 7,
  marker: 10,
  trust: 12,
  userId: 13,
  publicSubkey: 14,
  userAttribute: 17,
} as const;

export interface Packet {
  tag: number;
  body: Uint8Array;
  /** Offset of the packet header in the input, for error messages. */
  offset: number;
}

/**
 * Splits a byte string into packets. Both header formats are accepted; partial body lengths and the
 * old format's indeterminate length are refused: they are only allowed for data packets, which
 * neither a keyring nor a detached signature contains.
 */
export function splitPackets(bytes: Uint8Array, what: string): Packet[] {
  const out: Packet[] = [];
  const r = new Reader(bytes, what);
  while (r.remaining > 0) {
    const offset = r.offset;
    const ctb = r.u8();
    if ((ctb & 0x80) === 0) fail(`${what}: not an OpenPGP packet at offset ${offset} (byte 0x${ctb.toString(16).padStart(2, '0')})`);
    let tag: number;
    let len: number;
    if (ctb & 0x40) {
      tag = ctb & 0x3f;
      const o1 = r.u8();
      if (o1 < 192) len = o1;
      else if (o1 < 224) len = ((o1 - 192) << 8) + r.u8() + 192;
      else if (o1 === 255) len = r.u32();
      else fail(`${what}: packet at offset ${offset} uses a partial body length, not allowed here`);
    } else {
      tag = (ctb >> 2) & 0x0f;
      const lt = ctb & 3;
      if (lt === 0) len = r.u8();
      else if (lt === 1) len = r.u16();
      else if (lt === 2) len = r.u32();
      else fail(`${what}: packet at offset ${offset} has an indeterminate length, not allowed here`);
    }
    if (len > r.remaining) fail(`${what}: packet at offset ${offset} claims ${len} bytes, only ${r.remaining} remain`);
    out.push({ tag, body: r.bytes(len), offset });
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------
// Algorithms (RFC 9580 §9.1, §9.2, §9.5).

export const PK = { rsa: 1, rsaEncrypt: 2, rsaSign: 3, elgamal: 16, dsa: 17, ecdh: 18, ecdsa: 19, eddsaLegacy: 22, x25519: 25, x448: 26, ed25519: 27, ed448: 28 } as const;

export function algorithmName(id: number): string {
  switch (id) {
    case 1:
    case 2:
    case 3:
      return 'rsa';
    case 16:
      return 'elgamal';
    case 17:
      return 'dsa';
    case 18:
      return 'ecdh';
    case 19:
      return 'ecdsa';
    case 22:
      return 'eddsa';
    case 25:
      return 'x25519';
    case 26:
      return 'x448';
    case 27:
      return 'ed25519';
    case 28:
      return 'ed448';
    default:
      return `unknown-algorithm-${id}`;
  }
}

export interface HashInfo {
  /** The name in `Hash:` armor headers and in messages: SHA256. */
  name: string;
  /** The node:crypto name; undefined when node:crypto is not used for it here. */
  node: string | undefined;
  /** Broken or deprecated (RFC 9580 §9.5): signatures using it are never accepted as good. */
  weak: boolean;
  /** Salt size of v6 signatures (RFC 9580 §9.5, table 23). */
  saltSize: number;
}

const HASHES: ReadonlyMap<number, HashInfo> = new Map([
  [1, { name: 'MD5', node: undefined, weak: true, saltSize: 0 }],
  [2, { name: 'SHA1', node: 'sha1', weak: true, saltSize: 0 }],
  [3, { name: 'RIPEMD160', node: undefined, weak: true, saltSize: 0 }],
  [8, { name: 'SHA256', node: 'sha256', weak: false, saltSize: 16 }],
  [9, { name: 'SHA384', node: 'sha384', weak: false, saltSize: 24 }],
  [10, { name: 'SHA512', node: 'sha512', weak: false, saltSize: 32 }],
  [11, { name: 'SHA224', node: 'sha224', weak: false, saltSize: 16 }],
  // Defined by RFC 9580 but not supported here: a signature using them is reported as unsupported.
  [12, { name: 'SHA3-256', node: undefined, weak: false, saltSize: 16 }],
  [14, { name: 'SHA3-512', node: undefined, weak: false, saltSize: 32 }],
]);

export function hashInfo(id: number): HashInfo | undefined {
  return HASHES.get(id);
}

/** The names a `Hash:` armor header may carry (RFC 4880 §6.2, RFC 9580 §6.2.2.3). */
export function isKnownHashName(name: string): boolean {
  for (const h of HASHES.values()) if (h.name === name) return true;
  return false;
}

export function hashName(id: number): string {
  return HASHES.get(id)?.name ?? `unknown-hash-${id}`;
}

// ---------------------------------------------------------------------------------------------------
// Public-key packets (RFC 4880 §5.5.2, RFC 9580 §5.5.2).

/** The curves this verifier knows, by the DER body of their OID (RFC 9580 §9.2, table 19). */
const CURVES: ReadonlyMap<string, { name: 'P-256' | 'P-384' | 'P-521' | 'Ed25519Legacy'; size: number }> = new Map([
  ['2a8648ce3d030107', { name: 'P-256', size: 32 }],
  ['2b81040022', { name: 'P-384', size: 48 }],
  ['2b81040023', { name: 'P-521', size: 66 }],
  ['2b06010401da470f01', { name: 'Ed25519Legacy', size: 32 }],
]);

export type KeyMaterial =
  | { kind: 'rsa'; n: Uint8Array; e: Uint8Array }
  | { kind: 'ecdsa'; curve: 'P-256' | 'P-384' | 'P-521'; size: number; x: Uint8Array; y: Uint8Array }
  /** EdDSA with the legacy algorithm ID 22 and curve Ed25519Legacy, or native Ed25519 (27): the 32-byte public key. */
  | { kind: 'ed25519'; publicKey: Uint8Array }
  /** Any other algorithm or curve: the key can be listed but not used to check signatures. */
  | { kind: 'unsupported'; why: string };

export interface KeyPacket {
  version: 4 | 6;
  created: Date;
  algorithm: number;
  material: KeyMaterial;
  /** The whole packet body, as hashed into fingerprints and key signatures. */
  body: Uint8Array;
  /** Upper-case hex. */
  fingerprint: string;
  /** Upper-case hex, 16 digits: the low 64 bits of a v4 fingerprint, the high 64 bits of a v6 one. */
  keyId: string;
}

function hex(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('hex').toUpperCase();
}

/**
 * Parses a public-key or public-subkey packet body. Returns undefined for key versions this verifier
 * does not handle (2, 3, 5): such keys are skipped, as gpg skips v3 keys.
 */
export function parseKeyPacket(body: Uint8Array): KeyPacket | undefined {
  const r = new Reader(body, 'public-key packet');
  const version = r.u8();
  if (version !== 4 && version !== 6) return undefined;
  const created = new Date(r.u32() * 1000);
  const algorithm = r.u8();
  let m: Reader = r;
  if (version === 6) {
    // RFC 9580 §5.5.2.3: a four-octet count of the key material follows.
    const n = r.u32();
    m = new Reader(r.bytes(n), 'v6 public-key material');
    r.end();
  }
  const material = parseKeyMaterial(algorithm, m);
  const fp =
    version === 4
      ? createHash('sha1').update(Uint8Array.of(0x99, body.length >> 8, body.length & 0xff)).update(body).digest()
      : createHash('sha256').update(keyHashPrefix(6, body)).update(body).digest();
  const fingerprint = hex(fp);
  const keyId = version === 4 ? fingerprint.slice(-16) : fingerprint.slice(0, 16);
  return { version, created, algorithm, material, body, fingerprint, keyId };
}

function parseKeyMaterial(algorithm: number, r: Reader): KeyMaterial {
  switch (algorithm) {
    case PK.rsa:
    case PK.rsaSign:
    case PK.rsaEncrypt: {
      const n = r.mpi();
      const e = r.mpi();
      r.end();
      return { kind: 'rsa', n, e };
    }
    case PK.ecdsa:
    case PK.eddsaLegacy: {
      const oidLen = r.u8();
      if (oidLen === 0 || oidLen === 0xff) fail('public-key packet: reserved curve OID length');
      const oid = Buffer.from(r.bytes(oidLen)).toString('hex');
      const point = r.mpi();
      r.end();
      const curve = CURVES.get(oid);
      if (!curve) return { kind: 'unsupported', why: `curve OID ${oid}` };
      if (algorithm === PK.eddsaLegacy) {
        // RFC 9580 §5.5.5.5: the point is the native 32-byte key behind a 0x40 prefix octet.
        if (curve.name !== 'Ed25519Legacy') return { kind: 'unsupported', why: `EdDSA on curve ${curve.name}` };
        if (point.length !== 33 || point[0] !== 0x40) fail('EdDSA public key is not a 0x40-prefixed 32-byte point');
        return { kind: 'ed25519', publicKey: point.subarray(1) };
      }
      if (curve.name === 'Ed25519Legacy') return { kind: 'unsupported', why: 'ECDSA on curve Ed25519' };
      // SEC1 uncompressed point: 0x04 || x || y.
      if (point.length !== 1 + 2 * curve.size || point[0] !== 0x04) fail(`ECDSA public key is not an uncompressed ${curve.name} point`);
      return {
        kind: 'ecdsa',
        curve: curve.name,
        size: curve.size,
        x: point.subarray(1, 1 + curve.size),
        y: point.subarray(1 + curve.size),
      };
    }
    case PK.ed25519: {
      const publicKey = r.bytes(32);
      r.end();
      return { kind: 'ed25519', publicKey };
    }
    default:
      return { kind: 'unsupported', why: `public-key algorithm ${algorithmName(algorithm)}` };
  }
}

const SIGNING_ALGORITHMS: ReadonlySet<number> = new Set([PK.rsa, PK.rsaSign, PK.dsa, PK.ecdsa, PK.eddsaLegacy, PK.ed25519, PK.ed448]);

/** Whether the algorithm is able to make signatures at all (key flags may restrict it further). */
export function algorithmCanSign(algorithm: number): boolean {
  return SIGNING_ALGORITHMS.has(algorithm);
}

// ---------------------------------------------------------------------------------------------------
// Signature packets (RFC 4880 §5.2.3, RFC 9580 §5.2.3).

export const SIG = {
  binary: 0x00,
  text: 0x01,
  certGeneric: 0x10,
  certPositive: 0x13,
  subkeyBinding: 0x18,
  primaryKeyBinding: 0x19,
  directKey: 0x1f,
  keyRevocation: 0x20,
  subkeyRevocation: 0x28,
  certRevocation: 0x30,
} as const;

export interface Subpacket {
  type: number;
  critical: boolean;
  body: Uint8Array;
}

/** Subpacket types (RFC 9580 §5.2.3.7). */
export const SUB = {
  creationTime: 2,
  expirationTime: 3,
  keyExpirationTime: 9,
  issuerKeyId: 16,
  primaryUserId: 25,
  keyFlags: 27,
  embeddedSignature: 32,
  issuerFingerprint: 33,
} as const;

/**
 * Subpacket types whose meaning this verifier either uses or may safely ignore even when marked
 * critical. Any other critical subpacket makes the signature invalid (RFC 9580 §5.2.3.7). Notation
 * data (20), regular expressions (6) and trust signatures (5) are deliberately absent: they carry
 * conditions this verifier cannot honour.
 */
const UNDERSTOOD_SUBPACKETS = new Set([
  2, 3, 4 /* exportable */, 7 /* revocable */, 9, 11 /* preferred ciphers */, 12 /* revocation key */, 16,
  21 /* preferred hashes */, 22 /* preferred compression */, 23 /* key server preferences */,
  24 /* preferred key server */, 25, 26 /* policy URI */, 27, 28 /* signer's user ID */,
  29 /* reason for revocation */, 30 /* features */, 31 /* signature target */, 32, 33,
  34 /* preferred AEAD (draft) */, 35 /* intended recipient */, 39 /* preferred AEAD ciphersuites */,
]);

export interface SignaturePacket {
  version: number;
  type: number;
  pkAlgorithm: number;
  hashAlgorithm: number;
  /** Hashed subpackets: their content is covered by the signature. */
  hashed: Subpacket[];
  /** Unhashed subpackets: NOT covered by the signature; only self-authenticating hints are read from them. */
  unhashed: Subpacket[];
  /** version .. end of the hashed subpackets: the signature's own contribution to its hash (§5.2.4). */
  hashedHeader: Uint8Array;
  left16: Uint8Array;
  /** v6 only: the salt hashed before the data (RFC 9580 §5.2.4). */
  salt: Uint8Array | undefined;
  /** The algorithm-specific signature: MPIs (RSA, ECDSA, EdDSA legacy) or one native string (Ed25519). */
  values: Uint8Array[];
  created: Date | undefined;
  /** Seconds after `created` at which the signature expires; 0 or absent: never. */
  expiresAfter: number | undefined;
  /** Seconds after the key's creation at which the key expires; 0 or absent: never. */
  keyExpiresAfter: number | undefined;
  keyFlags: number | undefined;
  primaryUserId: boolean;
  /** The issuer, as far as the packet says (possibly from unhashed subpackets: a hint, checked by the signature itself). */
  issuerFingerprint: string | undefined;
  issuerKeyId: string | undefined;
  /** Embedded signatures (primary-key binding signatures inside subkey bindings), raw packet bodies. */
  embedded: Uint8Array[];
  /** Critical subpackets of types this verifier does not understand: the signature must not be used. */
  unknownCritical: number[];
}

function parseSubpackets(area: Uint8Array): Subpacket[] {
  const out: Subpacket[] = [];
  const r = new Reader(area, 'signature subpackets');
  while (r.remaining > 0) {
    const o1 = r.u8();
    let len: number;
    if (o1 < 192) len = o1;
    else if (o1 < 255) len = ((o1 - 192) << 8) + r.u8() + 192;
    else len = r.u32();
    if (len === 0) fail('signature subpacket with a zero length');
    const t = r.u8();
    out.push({ type: t & 0x7f, critical: (t & 0x80) !== 0, body: r.bytes(len - 1) });
  }
  return out;
}

/** The expected length of each subpacket body this verifier interprets. */
function checkedBody(s: Subpacket, len: number | ((n: number) => boolean)): Uint8Array {
  const ok = typeof len === 'number' ? s.body.length === len : len(s.body.length);
  if (!ok) fail(`signature subpacket ${s.type} has a malformed length ${s.body.length}`);
  return s.body;
}

function u32be(b: Uint8Array): number {
  return ((b[0]! << 24) >>> 0) + (b[1]! << 16) + (b[2]! << 8) + b[3]!;
}

/**
 * Parses a signature packet body. Versions other than 3, 4 and 6 are returned with only `version`
 * meaningful (callers treat them as unsupported); v3 is parsed enough to name its issuer.
 */
export function parseSignaturePacket(body: Uint8Array): SignaturePacket {
  const r = new Reader(body, 'signature packet');
  const version = r.u8();
  const sig: SignaturePacket = {
    version,
    type: -1,
    pkAlgorithm: -1,
    hashAlgorithm: -1,
    hashed: [],
    unhashed: [],
    hashedHeader: new Uint8Array(0),
    left16: new Uint8Array(2),
    salt: undefined,
    values: [],
    created: undefined,
    expiresAfter: undefined,
    keyExpiresAfter: undefined,
    keyFlags: undefined,
    primaryUserId: false,
    issuerFingerprint: undefined,
    issuerKeyId: undefined,
    embedded: [],
    unknownCritical: [],
  };
  if (version === 3) {
    // RFC 4880 §5.2.2: refused as weak by the caller; parsed only to name the issuer.
    if (r.u8() !== 5) fail('v3 signature: hashed material length is not 5');
    sig.type = r.u8();
    sig.created = new Date(r.u32() * 1000);
    sig.issuerKeyId = hex(r.bytes(8));
    sig.pkAlgorithm = r.u8();
    sig.hashAlgorithm = r.u8();
    return sig;
  }
  if (version !== 4 && version !== 6) return sig;

  sig.type = r.u8();
  sig.pkAlgorithm = r.u8();
  sig.hashAlgorithm = r.u8();
  const hashedLen = version === 4 ? r.u16() : r.u32();
  sig.hashed = parseSubpackets(r.bytes(hashedLen));
  sig.hashedHeader = body.subarray(0, r.offset);
  const unhashedLen = version === 4 ? r.u16() : r.u32();
  sig.unhashed = parseSubpackets(r.bytes(unhashedLen));
  sig.left16 = r.bytes(2);
  if (version === 6) {
    const saltLen = r.u8();
    sig.salt = r.bytes(saltLen);
  }
  sig.values = parseSignatureValues(sig.pkAlgorithm, r);

  for (const [area, isHashed] of [
    [sig.hashed, true],
    [sig.unhashed, false],
  ] as const) {
    for (const s of area) {
      if (s.critical && !UNDERSTOOD_SUBPACKETS.has(s.type)) sig.unknownCritical.push(s.type);
      switch (s.type) {
        case SUB.issuerKeyId:
          sig.issuerKeyId ??= hex(checkedBody(s, 8));
          break;
        case SUB.issuerFingerprint: {
          const b = checkedBody(s, (n) => n >= 1);
          // v4 (20-byte) and v6 (32-byte) fingerprints; others (LibrePGP's v5) are not keys this reads.
          if (!((b[0] === 4 && b.length === 21) || (b[0] === 6 && b.length === 33))) break;
          // A hashed issuer fingerprint wins over an unhashed one.
          if (isHashed || sig.issuerFingerprint === undefined) sig.issuerFingerprint = hex(b.subarray(1));
          break;
        }
        case SUB.embeddedSignature:
          sig.embedded.push(s.body);
          break;
        default:
          if (!isHashed) break; // everything else is trusted only from the hashed area
          switch (s.type) {
            case SUB.creationTime:
              sig.created ??= new Date(u32be(checkedBody(s, 4)) * 1000);
              break;
            case SUB.expirationTime:
              sig.expiresAfter ??= u32be(checkedBody(s, 4));
              break;
            case SUB.keyExpirationTime:
              sig.keyExpiresAfter ??= u32be(checkedBody(s, 4));
              break;
            case SUB.keyFlags:
              sig.keyFlags ??= checkedBody(s, (n) => n >= 1)[0]!;
              break;
            case SUB.primaryUserId:
              sig.primaryUserId = checkedBody(s, 1)[0] !== 0;
              break;
          }
      }
    }
  }
  // RFC 4880 §5.2.3.4 / RFC 9580 §5.2.3.11: the creation time MUST be in the hashed area.
  if (sig.created === undefined) fail('signature has no creation time in its hashed subpackets');
  return sig;
}

function parseSignatureValues(algorithm: number, r: Reader): Uint8Array[] {
  switch (algorithm) {
    case PK.rsa:
    case PK.rsaSign: {
      const v = [r.mpi()];
      r.end();
      return v;
    }
    case PK.dsa:
    case PK.ecdsa:
    case PK.eddsaLegacy: {
      const v = [r.mpi(), r.mpi()];
      r.end();
      return v;
    }
    case PK.ed25519: {
      const v = [r.bytes(64)];
      r.end();
      return v;
    }
    default:
      return [r.rest()];
  }
}

// ---------------------------------------------------------------------------------------------------
// What a signature hashes (RFC 4880 §5.2.4, RFC 9580 §5.2.4).

/** The prefix hashed before a key's body: 0x99 + two-octet length (v4), 0x9B + four-octet length (v6). */
export function keyHashPrefix(version: 4 | 6, body: Uint8Array): Uint8Array {
  const n = body.length;
  return version === 4 ? Uint8Array.of(0x99, (n >> 8) & 0xff, n & 0xff) : Uint8Array.of(0x9b, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
}

/** A key as it is hashed into key signatures. */
export function keyHashInput(key: KeyPacket): Uint8Array[] {
  return [keyHashPrefix(key.version, key.body), key.body];
}

/** A user ID as it is hashed into a certification: 0xB4 + four-octet length + the ID. */
export function userIdHashInput(userId: Uint8Array): Uint8Array[] {
  const n = userId.length;
  return [Uint8Array.of(0xb4, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff), userId];
}

/** The signature's trailer: its hashed header, then version, 0xFF and the header's four-octet length. */
export function signatureTrailer(sig: SignaturePacket): Uint8Array[] {
  const n = sig.hashedHeader.length;
  return [sig.hashedHeader, Uint8Array.of(sig.version, 0xff, (n >>> 24) & 0xff, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)];
}

// ---------------------------------------------------------------------------------------------------
// The key packet behind each PublicKey a keyring hands out. PublicKey stays a plain data object (it
// prints and serialises cleanly); the verifier finds the parsed packet through this WeakMap.

const keyPackets = new WeakMap<object, KeyPacket>();

export function attachKeyPacket(publicKey: object, packet: KeyPacket): void {
  keyPackets.set(publicKey, packet);
}

export function keyPacketOf(publicKey: object): KeyPacket | undefined {
  return keyPackets.get(publicKey);
}
