// Signature verification: the cryptographic check of one signature packet against one key
// (`checkSignature`, used for InRelease signatures and for the self-signatures of a keyring), and the
// policy deciding whether a clearsigned InRelease is trusted (`verifyCleartext`), modelled on apt's
// gpgv method: signatures by keys outside the keyring are ignored, a signature by a known key that
// does not verify is fatal, signatures by expired or revoked keys and weak signatures do not count,
// and at least one good signature is required.
//
// Follows RFC 4880 §5.2.4 (computing signatures, the left-16-bit quick check), §5.2.3 and RFC 9580
// §5.2.3–§5.2.4 (v4/v6 signatures, v6 salt), RFC 9580 §5.2.3.7 (critical subpackets), §5.5.5
// (algorithm-specific fields: RSA PKCS#1 v1.5, ECDSA, EdDSA legacy, Ed25519), §9.5 (weak hashes),
// §12.6 (EdDSA signs the hash digest).
//
// Attacker-controlled input: the InRelease file and its signature packets come from the network;
// the keyring is trusted local configuration.
import { createHash, createPublicKey, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { DistillError, messageOf } from '../../errors.js';
import { parseCleartext } from './cleartext.js';
import type { Keyring, PublicKey } from './keyring.js';
import {
  algorithmName,
  hashInfo,
  hashName,
  keyPacketOf,
  OpenPgpFormatError,
  parseSignaturePacket,
  PK,
  SIG,
  signatureTrailer,
  splitPackets,
  TAG,
  type KeyPacket,
  type SignaturePacket,
} from './packets.js';

// ---------------------------------------------------------------------------------------------------
// The cryptographic check of one signature.

export type CheckResult =
  | { ok: true }
  /** The signature does not verify: quick check or the public-key operation failed, or it does not fit the key. */
  | { ok: false; bad: true; why: string }
  /** The signature cannot be checked here: an unsupported or weak algorithm, version or encoding. */
  | { ok: false; bad: false; why: string };

const keyObjects = new WeakMap<KeyPacket, KeyObject>();

function b64url(b: Uint8Array): string {
  return Buffer.from(b.buffer, b.byteOffset, b.byteLength).toString('base64url');
}

function keyObjectOf(key: KeyPacket): KeyObject | undefined {
  let k = keyObjects.get(key);
  if (k) return k;
  const m = key.material;
  switch (m.kind) {
    case 'rsa':
      k = createPublicKey({ key: { kty: 'RSA', n: b64url(m.n), e: b64url(m.e) }, format: 'jwk' });
      break;
    case 'ecdsa':
      k = createPublicKey({ key: { kty: 'EC', crv: m.curve, x: b64url(m.x), y: b64url(m.y) }, format: 'jwk' });
      break;
    case 'ed25519':
      k = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: b64url(m.publicKey) }, format: 'jwk' });
      break;
    default:
      return undefined;
  }
  keyObjects.set(key, k);
  return k;
}

/** Left-pads a big-endian integer to `size` bytes; undefined when it does not fit. */
function padTo(v: Uint8Array, size: number): Buffer | undefined {
  if (v.length > size) return undefined;
  const out = Buffer.alloc(size);
  out.set(v, size - v.length);
  return out;
}

/** The smallest RSA modulus accepted, in bits; smaller keys count as weak. */
const MIN_RSA_BITS = 2048;

function bitLength(v: Uint8Array): number {
  if (v.length === 0) return 0;
  return (v.length - 1) * 8 + (32 - Math.clz32(v[0]!));
}

/**
 * Checks `sig` over `data` (the hashed content, before the signature's trailer) with `key`.
 * `selfSignature` relaxes the weak-algorithm policy for the self-signatures of a keyring (local,
 * trusted input, where older keys carry SHA-1 bindings): SHA-1 and short RSA keys are then admitted.
 * Signatures over downloaded content never get it.
 */
export function checkSignature(sig: SignaturePacket, key: KeyPacket, data: readonly Uint8Array[], opts: { selfSignature?: boolean } = {}): CheckResult {
  if (sig.version !== 4 && sig.version !== 6) return { ok: false, bad: false, why: `v${sig.version} signatures are not supported` };
  // RFC 9580 §5.2.3 / §5.5.2.3: v6 signatures are made by v6 keys and v4 signatures by v4 keys.
  if (sig.version !== key.version) return { ok: false, bad: true, why: `a v${sig.version} signature cannot be made by a v${key.version} key` };
  const isRsaSign = (a: number): boolean => a === PK.rsa || a === PK.rsaSign;
  const sameFamily = (a: number, b: number): boolean => a === b || (isRsaSign(a) && isRsaSign(b));
  if (!sameFamily(sig.pkAlgorithm, key.algorithm)) return { ok: false, bad: true, why: `the signature algorithm (${algorithmName(sig.pkAlgorithm)}) is not the key's (${algorithmName(key.algorithm)})` };

  const h = hashInfo(sig.hashAlgorithm);
  const sha1Allowed = opts.selfSignature === true && h?.name === 'SHA1';
  if (!h || !h.node || (h.weak && !sha1Allowed)) return { ok: false, bad: false, why: `hash algorithm ${hashName(sig.hashAlgorithm)} is ${h?.weak ? 'weak' : 'not supported'}` };
  if (sig.version === 6 && sig.salt?.length !== h.saltSize) return { ok: false, bad: true, why: `the v6 signature's salt is not ${h.saltSize} bytes for ${h.name}` };
  const keyObject = keyObjectOf(key);
  if (!keyObject) return { ok: false, bad: false, why: `keys of this kind are not supported (${key.material.kind === 'unsupported' ? key.material.why : key.material.kind})` };

  // RFC 9580 §5.2.4: [v6: salt] || data || the signature's hashed header || trailer.
  const parts: Uint8Array[] = [];
  if (sig.version === 6) parts.push(sig.salt!);
  parts.push(...data, ...signatureTrailer(sig));
  const hash = createHash(h.node);
  for (const p of parts) hash.update(p);
  const digest = hash.digest();
  // The quick check: the first two bytes of the digest travel in the packet.
  if (digest[0] !== sig.left16[0] || digest[1] !== sig.left16[1]) return { ok: false, bad: true, why: 'the digest does not match (quick check)' };

  const m = key.material;
  let good: boolean;
  try {
    switch (m.kind) {
      case 'rsa': {
        if (bitLength(m.n) < MIN_RSA_BITS && !opts.selfSignature) return { ok: false, bad: false, why: `the RSA key has only ${bitLength(m.n)} bits (fewer than ${MIN_RSA_BITS} is weak)` };
        // PKCS#1 v1.5 over the same bytes: node:crypto hashes them again and checks the DigestInfo.
        const s = padTo(sig.values[0]!, m.n.length);
        if (!s) return { ok: false, bad: true, why: 'the RSA signature is longer than the modulus' };
        good = cryptoVerify(h.node, Buffer.concat(parts), keyObject, s);
        break;
      }
      case 'ecdsa': {
        const [r0, s0] = sig.values;
        const r = padTo(r0!, m.size);
        const s = padTo(s0!, m.size);
        if (!r || !s) return { ok: false, bad: true, why: 'the ECDSA signature values are too long' };
        // ECDSA signs the digest (truncated to the curve order): node:crypto recomputes it from the data.
        good = cryptoVerify(h.node, Buffer.concat(parts), { key: keyObject, dsaEncoding: 'ieee-p1363' }, Buffer.concat([r, s]));
        break;
      }
      case 'ed25519': {
        // RFC 9580 §5.2.3.3 / §12.6: EdDSA signs the hash digest, not the data.
        let native: Buffer | undefined;
        if (sig.pkAlgorithm === PK.eddsaLegacy) {
          const r = padTo(sig.values[0]!, 32);
          const s = padTo(sig.values[1]!, 32);
          native = r && s ? Buffer.concat([r, s]) : undefined;
        } else native = Buffer.from(sig.values[0]!);
        if (!native) return { ok: false, bad: true, why: 'the EdDSA signature values are too long' };
        good = cryptoVerify(null, digest, keyObject, native);
        break;
      }
      default:
        return { ok: false, bad: false, why: 'unsupported key' };
    }
  } catch (e) {
    return { ok: false, bad: true, why: `the signature could not be checked: ${messageOf(e)}` };
  }
  return good ? { ok: true } : { ok: false, bad: true, why: 'the signature does not verify' };
}

// ---------------------------------------------------------------------------------------------------
// Verifying a clearsigned InRelease against a keyring.

export interface Signer {
  /** The key that made the signature (a subkey, or the primary key itself). */
  fingerprint: string;
  primaryFingerprint: string;
  /** The primary key's first (primary) user ID, or '' if it has none. */
  userId: string;
  algorithm: string;
  hash: string;
  created: Date;
}

export interface VerifiedCleartext {
  /** Exactly the signed content (see ClearsignedParts.signedText): the only part a caller may use. */
  signedText: string;
  /** The good signatures, in the order they appear. */
  signers: Signer[];
}

const MALFORMED_HINT = 'the file is damaged or was altered in transit; fetch it again, and try another mirror if it persists';

function describeKey(k: PublicKey): string {
  const uid = k.userIds[0];
  const sub = k.isSubkey ? ` (subkey of ${k.primaryFingerprint})` : '';
  return `${k.fingerprint}${sub}${uid ? ` "${uid}"` : ''}`;
}

function isoDate(d: Date): string {
  return d.toISOString().replace(/\.000Z$/, 'Z');
}

/** The most signatures one file may carry; Debian uses two or three. */
const MAX_SIGNATURES = 32;

/**
 * Verifies a clearsigned file (Debian's InRelease) against `keyring`. `what` names the file in errors.
 * Returns the signed text and the good signatures, or throws a DistillError: SIGNATURE_MALFORMED,
 * SIGNATURE_BAD, SIGNATURE_UNKNOWN_KEY or SIGNATURE_WEAK.
 */
export function verifyCleartext(input: Uint8Array | string, keyring: Keyring, what: string, opts: { now?: Date } = {}): VerifiedCleartext {
  const now = opts.now ?? new Date();
  const malformed = (e: unknown): DistillError =>
    new DistillError('SIGNATURE_MALFORMED', `${what}: not a well-formed clearsigned file: ${messageOf(e)}`, { cause: e, hint: MALFORMED_HINT });

  // Attacker-controlled from here on.
  let parts: ReturnType<typeof parseCleartext>;
  let sigs: SignaturePacket[];
  try {
    parts = parseCleartext(input);
    const packets = splitPackets(parts.signature, 'signature block');
    if (packets.length > MAX_SIGNATURES) throw new OpenPgpFormatError(`${packets.length} packets in the signature block (at most ${MAX_SIGNATURES})`);
    sigs = packets.map((p) => {
      if (p.tag !== TAG.signature) throw new OpenPgpFormatError(`the signature block holds a packet of type ${p.tag}, not a signature`);
      const s = parseSignaturePacket(p.body);
      if (s.type !== -1 && s.type !== SIG.text) {
        // RFC 4880 §7: the signatures of a cleartext message are text signatures (0x01).
        throw new OpenPgpFormatError(`signature of type 0x${s.type.toString(16).padStart(2, '0')}, not a text signature (0x01)`);
      }
      if (parts.hashHeaders && s.hashAlgorithm >= 0 && !parts.hashHeaders.includes(hashName(s.hashAlgorithm))) {
        // gpg's "signature digest conflict in message": the Hash header must name the digest used.
        throw new OpenPgpFormatError(`a ${hashName(s.hashAlgorithm)} signature under "Hash: ${parts.hashHeaders.join(', ')}"`);
      }
      return s;
    });
  } catch (e) {
    if (e instanceof OpenPgpFormatError) throw malformed(e);
    throw e;
  }
  if (sigs.length === 0) throw malformed(new Error('the signature block holds no signature'));

  const signers: Signer[] = [];
  const unknown: string[] = [];
  const weak: string[] = [];
  const notGood: string[] = [];

  for (const sig of sigs) {
    if (sig.version !== 3 && sig.version !== 4 && sig.version !== 6) {
      weak.push(`a v${sig.version} signature (not supported)`);
      continue;
    }
    const issuer = sig.issuerFingerprint ?? sig.issuerKeyId;
    const candidates = keyring.keys.filter((k) =>
      sig.issuerFingerprint !== undefined ? k.fingerprint === sig.issuerFingerprint : sig.issuerKeyId !== undefined && k.keyId === sig.issuerKeyId,
    );
    if (candidates.length === 0) {
      unknown.push(issuer ?? '(a signature naming no issuer)');
      continue;
    }
    const first = candidates[0]!;
    const h = hashInfo(sig.hashAlgorithm);
    if (sig.version === 3 || h?.weak) {
      weak.push(`${sig.version === 3 ? 'a v3' : `a ${hashName(sig.hashAlgorithm)}`} signature by ${describeKey(first)}`);
      continue;
    }
    if (sig.unknownCritical.length > 0) {
      notGood.push(`the signature by ${describeKey(first)} has unknown critical subpackets (${sig.unknownCritical.join(', ')})`);
      continue;
    }

    let verifiedBy: PublicKey | undefined;
    let bad: { key: PublicKey; why: string } | undefined;
    let unsupportedWhy: string | undefined;
    for (const k of candidates) {
      const packet = keyPacketOf(k);
      if (!packet) {
        unsupportedWhy = 'the keyring entry was not read by readKeyring';
        continue;
      }
      const r = checkSignature(sig, packet, [parts.hashInput]);
      if (r.ok) {
        verifiedBy = k;
        break;
      }
      if (r.bad) bad = { key: k, why: r.why };
      else unsupportedWhy = r.why;
    }
    if (!verifiedBy) {
      if (bad) {
        // A known key, and the signature is wrong: the content is not what the key holder signed.
        throw new DistillError('SIGNATURE_BAD', `${what}: BAD signature by key ${describeKey(bad.key)}: ${bad.why}`, {
          hint: 'the content does not match its signature: the mirror is corrupt or compromised; do not use it — fetch again or use another mirror',
        });
      }
      weak.push(`a signature by ${describeKey(first)} that cannot be checked: ${unsupportedWhy}`);
      continue;
    }

    // Cryptographically good; now whether it counts (gpgv's EXPKEYSIG, REVKEYSIG, EXPSIG and time checks).
    const k = verifiedBy;
    const created = sig.created!;
    const reasons: string[] = [];
    if (!k.canSign) reasons.push('the key is not valid for signing');
    if (k.revoked) reasons.push('the key has been revoked');
    if (created < k.created) reasons.push(`the signature (${isoDate(created)}) predates the key (${isoDate(k.created)})`);
    if (k.expires && k.expires <= created) reasons.push(`the key had expired (${isoDate(k.expires)}) when the signature was made (${isoDate(created)})`);
    else if (k.expires && k.expires <= now) reasons.push(`the key expired on ${isoDate(k.expires)}`);
    if (sig.expiresAfter) {
      const sigExpires = new Date(created.getTime() + sig.expiresAfter * 1000);
      if (sigExpires <= now) reasons.push(`the signature expired on ${isoDate(sigExpires)}`);
    }
    // A signature dated in the future is not refused, as gpgv does not refuse it: whether the Release
    // file is already valid is decided from its Date field by the caller, with its clock-skew allowance.
    if (reasons.length > 0) {
      notGood.push(`the signature by ${describeKey(k)} does not count: ${reasons.join('; ')}`);
      continue;
    }
    signers.push({
      fingerprint: k.fingerprint,
      primaryFingerprint: k.primaryFingerprint,
      userId: k.userIds[0] ?? '',
      algorithm: k.algorithm,
      hash: hashName(sig.hashAlgorithm),
      created,
    });
  }

  if (signers.length > 0) return { signedText: parts.signedText, signers };

  const also = (lists: string[][]): string => {
    const rest = lists.flat();
    return rest.length > 0 ? ` (also: ${rest.join('; ')})` : '';
  };
  if (unknown.length > 0) {
    throw new DistillError(
      'SIGNATURE_UNKNOWN_KEY',
      `${what}: no good signature; signed by key${unknown.length > 1 ? 's' : ''} not in ${keyring.source}: ${unknown.join(', ')}${also([notGood, weak])}`,
      { hint: `pass --keyring with a keyring that holds key ${unknown.join(' or ')} (for Debian: a current debian-archive-keyring)` },
    );
  }
  if (notGood.length === 0) {
    throw new DistillError('SIGNATURE_WEAK', `${what}: no acceptable signature: only ${weak.join('; ')}`, {
      hint: 'the repository signs with an algorithm distill refuses (SHA-1, MD5, v3 signatures, short RSA keys or an unsupported one); have it re-signed with SHA-256 or stronger',
    });
  }
  throw new DistillError('SIGNATURE_BAD', `${what}: no good signature: ${notGood.join('; ')}${also([weak])}`, {
    hint: 'the signing key has expired, was revoked or is not valid for signing, or the clock is wrong; update the keyring (e.g. debian-archive-keyring) and pass it with --keyring, or check the system time',
  });
}
