// Keyrings: reading a file of OpenPGP certificates (binary as /usr/share/keyrings/*.gpg, or
// ASCII-armored "PUBLIC KEY BLOCK"s, possibly several concatenated) into the keys that may sign, with
// what gpgv would conclude about each: bound to its primary by a verified self-signature, expiry
// from the self-signature, revoked or not, signing-capable or not.
//
// Follows RFC 4880 §11.1 (transferable public keys), §5.2.1 (signature types), §5.2.3.6 (key
// expiration), §5.2.3.21 (key flags), §5.2.3.26 (embedded primary-key binding signatures), §12.1
// (key structures) and RFC 9580 §10.1 (transferable public keys, v6 keys certified by a direct-key
// signature). Certifications by other keys are not checked: every key in the keyring is trusted as
// such, as apt trusts its keyrings.
//
// The keyring is trusted local configuration, not network input; it is still parsed defensively.
import { DistillError, messageOf } from '../../errors.js';
import { readAllArmorBlocks } from './armor.js';
import {
  algorithmCanSign,
  algorithmName,
  attachKeyPacket,
  keyHashInput,
  OpenPgpFormatError,
  parseKeyPacket,
  parseSignaturePacket,
  SIG,
  splitPackets,
  TAG,
  userIdHashInput,
  type KeyPacket,
  type Packet,
  type SignaturePacket,
} from './packets.js';
import { checkSignature } from './verify.js';

export interface PublicKey {
  /** Upper-case hex. */
  fingerprint: string;
  /** Upper-case hex, 16 digits (the last 16 of a v4 fingerprint; the first 16 of a v6 one). */
  keyId: string;
  algorithm: 'rsa' | 'eddsa' | 'ed25519' | 'ecdsa' | string;
  created: Date;
  /** For a subkey: the earlier of its own expiry and its primary key's. */
  expires?: Date;
  /** For a subkey: true if it or its primary key is revoked. */
  revoked: boolean;
  /** The primary key's user IDs with a valid self-certification, the primary user ID first. */
  userIds: string[];
  primaryFingerprint: string;
  isSubkey: boolean;
  /** Allowed to make data signatures: key flags (or, without flags, the algorithm), and for a subkey a valid back-signature. */
  canSign: boolean;
}

export interface Keyring {
  keys: readonly PublicKey[];
  /** Where it was read from, for messages. */
  source: string;
}

interface RawComponent {
  sigs: SignaturePacket[];
}
interface RawUserId extends RawComponent {
  bytes: Uint8Array;
}
interface RawSubkey extends RawComponent {
  key: KeyPacket;
}
interface RawCert {
  primary: KeyPacket;
  /** Signatures directly on the primary key: direct-key signatures and key revocations. */
  direct: SignaturePacket[];
  userIds: Map<string, RawUserId>;
  subkeys: Map<string, RawSubkey>;
}

const KEYRING_HINT = 'pass a keyring of OpenPGP public keys: binary (as /usr/share/keyrings/*.gpg, or `gpg --export KEY`) or armored (`gpg --export --armor KEY`)';

/** Reads a keyring; throws DistillError KEYRING_INVALID naming `source`. */
export function readKeyring(bytes: Uint8Array, source: string): Keyring {
  const invalid = (msg: string, cause?: unknown): DistillError =>
    new DistillError('KEYRING_INVALID', `keyring ${source}: ${msg}`, { hint: KEYRING_HINT, ...(cause === undefined ? {} : { cause }) });

  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length === 0) throw invalid('the file is empty');
  if (buf.length >= 12 && buf.subarray(8, 12).toString('latin1') === 'KBXf') {
    throw invalid('this is a GnuPG keybox (pubring.kbx), not a keyring; export the keys with `gpg --export KEY > FILE.gpg`');
  }

  const certs = new Map<string, RawCert>();
  try {
    const text = buf.toString('latin1');
    if (/^\s*-----BEGIN PGP /.test(text)) {
      const blocks = readAllArmorBlocks(text, 'PUBLIC KEY BLOCK');
      if (blocks.length === 0) throw new OpenPgpFormatError('armored, but holds no PUBLIC KEY BLOCK');
      for (const b of blocks) collect(splitPackets(b.data, 'armored key block'), certs);
    } else collect(splitPackets(buf, 'keyring'), certs);
  } catch (e) {
    if (e instanceof OpenPgpFormatError) throw invalid(messageOf(e), e);
    throw e;
  }
  if (certs.size === 0) throw invalid('holds no OpenPGP public key this verifier can read (v4 or v6)');

  const keys: PublicKey[] = [];
  for (const cert of certs.values()) keys.push(...evaluate(cert));
  if (keys.length === 0) throw invalid('holds no usable key: none has a valid self-signature');
  return { keys, source };
}

/** Groups packets into certificates (RFC 4880 §11.1), merging repeated certificates by fingerprint. */
function collect(packets: Packet[], certs: Map<string, RawCert>): void {
  let cert: RawCert | undefined;
  let skipping = false; // inside a certificate of a key version that is not supported
  let target: SignaturePacket[] | undefined; // where signatures go; undefined: ignored
  const need = (p: Packet): RawCert => {
    if (!cert) throw new OpenPgpFormatError(`packet of type ${p.tag} at offset ${p.offset} comes before any public key`);
    return cert;
  };

  for (const p of packets) {
    switch (p.tag) {
      case TAG.publicKey: {
        const key = parseKeyPacket(p.body);
        if (!key) {
          cert = undefined;
          skipping = true;
          target = undefined;
          break;
        }
        skipping = false;
        cert = certs.get(key.fingerprint);
        if (!cert) {
          cert = { primary: key, direct: [], userIds: new Map(), subkeys: new Map() };
          certs.set(key.fingerprint, cert);
        }
        target = cert.direct;
        break;
      }
      case TAG.userId: {
        if (skipping) break;
        const c = need(p);
        const id = Buffer.from(p.body).toString('hex');
        let u = c.userIds.get(id);
        if (!u) c.userIds.set(id, (u = { bytes: p.body, sigs: [] }));
        target = u.sigs;
        break;
      }
      case TAG.publicSubkey: {
        if (skipping) break;
        const c = need(p);
        const key = parseKeyPacket(p.body);
        if (!key) {
          target = undefined;
          break;
        }
        let s = c.subkeys.get(key.fingerprint);
        if (!s) c.subkeys.set(key.fingerprint, (s = { key, sigs: [] }));
        target = s.sigs;
        break;
      }
      case TAG.signature: {
        if (skipping) break;
        need(p);
        if (!target) break;
        try {
          target.push(parseSignaturePacket(p.body));
        } catch (e) {
          // A signature this parser cannot read cannot be a valid self-signature: ignored, as gpg does.
          if (!(e instanceof OpenPgpFormatError)) throw e;
        }
        break;
      }
      case TAG.userAttribute:
        if (skipping) break;
        need(p);
        target = undefined; // photo IDs and their signatures are of no use here
        break;
      case TAG.trust:
      case TAG.marker:
        break;
      case TAG.secretKey:
      case TAG.secretSubkey:
        throw new OpenPgpFormatError('holds secret key material; give the public keys only (`gpg --export`, not --export-secret-keys)');
      default:
        if (p.tag >= 60 && p.tag <= 63) break; // private/experimental packets
        throw new OpenPgpFormatError(`unexpected packet of type ${p.tag} at offset ${p.offset}`);
    }
  }
}

function issuedBy(sig: SignaturePacket, key: KeyPacket): boolean {
  return (sig.issuerFingerprint === undefined || sig.issuerFingerprint === key.fingerprint) && (sig.issuerKeyId === undefined || sig.issuerKeyId === key.keyId);
}

/** A self-signature of one of `types`, made by `signer`, that verifies over `data`. */
function validSelfSigs(sigs: SignaturePacket[], types: readonly number[], signer: KeyPacket, data: Uint8Array[]): SignaturePacket[] {
  return sigs.filter(
    (s) =>
      types.includes(s.type) &&
      issuedBy(s, signer) &&
      s.unknownCritical.length === 0 &&
      s.created !== undefined &&
      s.created >= signer.created &&
      // SHA-1 is admitted for self-signatures, which older keys carry; the keyring is local, trusted input.
      checkSignature(s, signer, data, { selfSignature: true }).ok,
  );
}

function newest(sigs: SignaturePacket[]): SignaturePacket | undefined {
  let best: SignaturePacket | undefined;
  for (const s of sigs) if (!best || s.created! > best.created!) best = s;
  return best;
}

function expiry(key: KeyPacket, after: number | undefined): Date | undefined {
  return after ? new Date(key.created.getTime() + after * 1000) : undefined;
}

function earlier(a: Date | undefined, b: Date | undefined): Date | undefined {
  if (!a) return b;
  if (!b) return a;
  return a < b ? a : b;
}

const utf8 = new TextDecoder('utf-8');

/** What gpgv would make of one certificate: its primary key and its subkeys, or nothing if unbound. */
function evaluate(cert: RawCert): PublicKey[] {
  const primary = cert.primary;
  const primaryData = keyHashInput(primary);

  if (primary.material.kind === 'unsupported') {
    // A key of an algorithm this verifier cannot check (DSA, Ed448, a brainpool curve…): its
    // self-signatures cannot be verified, so nothing it says about itself or its subkeys is used. It
    // is still listed, unable to sign, so that its signatures are reported as unsupported rather than
    // as made by a key missing from the keyring.
    const key: PublicKey = {
      fingerprint: primary.fingerprint,
      keyId: primary.keyId,
      algorithm: algorithmName(primary.algorithm),
      created: primary.created,
      revoked: false,
      userIds: [],
      primaryFingerprint: primary.fingerprint,
      isSubkey: false,
      canSign: false,
    };
    attachKeyPacket(key, primary);
    return [key];
  }

  const revoked = validSelfSigs(cert.direct, [SIG.keyRevocation], primary, primaryData).length > 0;
  const direct = newest(validSelfSigs(cert.direct, [SIG.directKey], primary, primaryData));

  const userIds: { id: string; cert: SignaturePacket }[] = [];
  for (const u of cert.userIds.values()) {
    const data = [...primaryData, ...userIdHashInput(u.bytes)];
    const certification = newest(validSelfSigs(u.sigs, [0x10, 0x11, 0x12, 0x13], primary, data));
    if (!certification) continue;
    const revocation = newest(validSelfSigs(u.sigs, [SIG.certRevocation], primary, data));
    if (revocation && revocation.created! >= certification.created!) continue;
    userIds.push({ id: utf8.decode(u.bytes), cert: certification });
  }
  // The primary key's properties come from its newest self-certification (RFC 4880 §5.2.3.3), or from
  // its direct-key signature when it has no user ID (as v6 certificates may); a property the former
  // lacks is taken from the latter.
  const self = newest(userIds.map((u) => u.cert)) ?? direct;
  if (!self) return []; // not bound to anything: gpg refuses such a key too
  const keyExpiresAfter = self.keyExpiresAfter ?? direct?.keyExpiresAfter;
  const keyFlags = self.keyFlags ?? direct?.keyFlags;
  userIds.sort((a, b) => Number(b.cert.primaryUserId) - Number(a.cert.primaryUserId));
  const ids = userIds.map((u) => u.id);
  const primaryExpires = expiry(primary, keyExpiresAfter);

  const primaryKey: PublicKey = {
    fingerprint: primary.fingerprint,
    keyId: primary.keyId,
    algorithm: algorithmName(primary.algorithm),
    created: primary.created,
    ...(primaryExpires ? { expires: primaryExpires } : {}),
    revoked,
    userIds: ids,
    primaryFingerprint: primary.fingerprint,
    isSubkey: false,
    canSign: keyFlags !== undefined ? (keyFlags & 0x02) !== 0 : algorithmCanSign(primary.algorithm),
  };
  attachKeyPacket(primaryKey, primary);
  const out = [primaryKey];

  for (const s of cert.subkeys.values()) {
    const data = [...primaryData, ...keyHashInput(s.key)];
    // A subkey counts only with a valid binding signature by its primary (RFC 4880 §5.2.1, 0x18).
    const binding = newest(validSelfSigs(s.sigs, [SIG.subkeyBinding], primary, data));
    if (!binding) continue;
    const subRevoked = validSelfSigs(s.sigs, [SIG.subkeyRevocation], primary, data).length > 0;
    let canSign = binding.keyFlags !== undefined ? (binding.keyFlags & 0x02) !== 0 : algorithmCanSign(s.key.algorithm);
    if (canSign) {
      // RFC 4880 §11.1 / RFC 9580 §10.1: a signing subkey must cross-certify its primary with an
      // embedded primary-key binding signature (0x19) made by the subkey; without one, anyone could
      // claim another's signing subkey. gpg refuses such subkeys for signing, and so does this.
      canSign = binding.embedded.some((body) => {
        try {
          return validSelfSigs([parseSignaturePacket(body)], [SIG.primaryKeyBinding], s.key, data).length > 0;
        } catch (e) {
          if (e instanceof OpenPgpFormatError) return false;
          throw e;
        }
      });
    }
    const subExpires = earlier(expiry(s.key, binding.keyExpiresAfter), primaryExpires);
    const sub: PublicKey = {
      fingerprint: s.key.fingerprint,
      keyId: s.key.keyId,
      algorithm: algorithmName(s.key.algorithm),
      created: s.key.created,
      ...(subExpires ? { expires: subExpires } : {}),
      revoked: revoked || subRevoked,
      userIds: ids,
      primaryFingerprint: primary.fingerprint,
      isSubkey: true,
      canSign,
    };
    attachKeyPacket(sub, s.key);
    out.push(sub);
  }
  return out;
}
