// The OpenPGP verifier against real Debian InRelease files and keyrings (when the snapshot and
// /usr/share/keyrings are present), against keys and signatures made by the real gpg binary in a
// throwaway GNUPGHOME (when gpg is installed), and against hand-built v6 packets (node:crypto).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, randomBytes, sign as cryptoSign } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { after, test, type TestContext } from 'node:test';
import { crc24 } from '../../src/debian/openpgp/armor.js';
import { readKeyring, verifyCleartext, type Keyring } from '../../src/debian/openpgp/index.js';
import { parseSignaturePacket, splitPackets } from '../../src/debian/openpgp/packets.js';
import { GpgHome, gpgAvailable, NO_GPG } from '../helpers/gpg.js';
import { NO_SNAPSHOT, snapshotDir, systemKeyring } from '../helpers/paths.js';

// ---------------------------------------------------------------------------------------------------
// Helpers

const code = (c: string) => (e: unknown) => {
  assert.equal((e as { code?: string }).code, c, `expected ${c}, got: ${String(e)}`);
  assert.ok((e as { hint?: string }).hint, 'errors carry a hint');
  return true;
};

/** The trusted inputs of the real-data tests, or undefined with the reason they are missing. */
function real(t: TestContext): { snap: string; keyring: Keyring } | undefined {
  const snap = snapshotDir();
  if (!snap) {
    t.skip(NO_SNAPSHOT);
    return undefined;
  }
  if (!existsSync(systemKeyring)) {
    t.skip(`${systemKeyring} is not present (install debian-archive-keyring)`);
    return undefined;
  }
  systemKeys ??= readKeyring(readFileSync(systemKeyring), systemKeyring);
  return { snap, keyring: systemKeys };
}
let systemKeys: Keyring | undefined;

const trixie = (snap: string) => join(snap, 'debian', 'dists', 'trixie', 'InRelease');
const trixieSecurity = (snap: string) => join(snap, 'debian-security', 'dists', 'trixie-security', 'InRelease');

/** Replaces the base64 body of the signature block (keeping the armor lines), without a checksum. */
function withSignatureBytes(clearsigned: string, f: (sig: Buffer) => Buffer): string {
  const m = /(-----BEGIN PGP SIGNATURE-----\r?\n(?:.+\r?\n)*\r?\n)([\s\S]*?)(-----END PGP SIGNATURE-----)/.exec(clearsigned)!;
  const body = m[2]!.split('\n').filter((l) => l && !l.startsWith('='));
  const sig = f(Buffer.from(body.join(''), 'base64'));
  const b64 = sig.toString('base64').replace(/.{1,64}/g, '$&\n');
  return clearsigned.replace(m[0], `${m[1]}${b64}${m[3]}`);
}

// ---------------------------------------------------------------------------------------------------
// gpg-made keys, shared by the tests (created on first use, one GNUPGHOME for the file)

const DAY = 86400_000;

interface GpgFixture {
  gpg: GpgHome;
  ed: string;
  rsa: string;
  ec: string;
  primary: string;
  sub: string;
  /** Expires one day after its creation, ten days ago; `expiringMsg` was signed an hour after creation. */
  expiring: string;
  expiringMsg: string;
  expiringCreated: Date;
  /** Never expired, then (by a newer self-signature) expired before `lapsedMsg` was signed. */
  lapsed: string;
  lapsedMsg: string;
  lapsedSigned: Date;
  revoked: string;
  revokedMsg: string;
}

let fixture: GpgFixture | undefined;

function gpgFixture(t: TestContext): GpgFixture | undefined {
  if (!gpgAvailable()) {
    t.skip(NO_GPG);
    return undefined;
  }
  if (fixture) return fixture;
  const gpg = new GpgHome();
  const ed = gpg.genKey('Ed <ed@example.invalid>', 'ed25519', 'sign');
  const rsa = gpg.genKey('Rsa <rsa@example.invalid>', 'rsa3072', 'sign');
  const ec = gpg.genKey('Ec <ec@example.invalid>', 'nistp256', 'sign');
  const primary = gpg.genKey('Sub <sub@example.invalid>', 'ed25519', 'cert');
  const sub = gpg.addSubkey(primary, 'ed25519', 'sign');

  const now = Date.now();
  const expiringCreated = new Date(Math.floor((now - 10 * DAY) / 1000) * 1000);
  const expiring = gpg.genKey('Expiring <exp@example.invalid>', 'ed25519', 'sign', '1d', expiringCreated);
  const expiringMsg = gpg.clearsign('Origin: expiring\n', expiring, { at: new Date(expiringCreated.getTime() + 3600_000) });

  const lapsedCreated = new Date(now - 20 * DAY);
  const lapsed = gpg.genKey('Lapsed <lapsed@example.invalid>', 'ed25519', 'sign', 'never', lapsedCreated);
  const lapsedSigned = new Date(Math.floor((lapsedCreated.getTime() + 5 * DAY) / 1000) * 1000);
  const lapsedMsg = gpg.clearsign('Origin: lapsed\n', lapsed, { at: lapsedSigned });
  gpg.setExpire(lapsed, '1d', new Date(lapsedCreated.getTime() + 3600_000)); // a newer self-signature: expires on day 1

  const revoked = gpg.genKey('Revoked <rev@example.invalid>', 'ed25519', 'sign');
  const revokedMsg = gpg.clearsign('Origin: revoked\n', revoked);
  gpg.revoke(revoked);

  fixture = { gpg, ed, rsa, ec, primary, sub, expiring, expiringMsg, expiringCreated, lapsed, lapsedMsg, lapsedSigned, revoked, revokedMsg };
  return fixture;
}

after(() => fixture?.gpg.close());

function keyringOf(f: GpgFixture, fprs: string[], armor = false): Keyring {
  return readKeyring(f.gpg.exportKeys(fprs, armor), 'test keyring');
}

const RELEASE = 'Origin: Test\nLabel: Test\nSuite: stable\nSHA256:\n 0123456789abcdef  1234 main/binary-amd64/Packages\n';

// ---------------------------------------------------------------------------------------------------
// Real Debian data

test('the real trixie InRelease verifies: RSA subkeys and the EdDSA release key', (t) => {
  const r = real(t);
  if (!r) return;
  const bytes = readFileSync(trixie(r.snap));
  const v = verifyCleartext(bytes, r.keyring, 'trixie/InRelease');
  assert.deepEqual(
    v.signers.map((s) => [s.fingerprint, s.primaryFingerprint, s.algorithm, s.hash]),
    [
      ['4CB50190207B4758A3F73A796ED0E7B82643E131', 'B8B80B5B623EAB6AD8775C45B7C5D7D6350947F8', 'rsa', 'SHA256'],
      ['B8E5F13176D2A7A75220028078DBA3BC47EF2265', '04B54C3CDCA79751B16BC6B5225629DF75B188BD', 'rsa', 'SHA256'],
      ['41587F7DB8C774BCCF131416762F67A0B2C39DE4', '41587F7DB8C774BCCF131416762F67A0B2C39DE4', 'eddsa', 'SHA256'],
    ],
  );
  assert.equal(v.signers[2]!.userId, 'Debian Stable Release Key (13/trixie) <debian-release@lists.debian.org>');
  assert.ok(v.signedText.startsWith('Origin: Debian\nLabel: Debian\n'));
  assert.ok(v.signedText.endsWith('\n') && !v.signedText.endsWith('\n\n'));
  assert.ok(!/-----|PGP|Hash: SHA256/.test(v.signedText), 'no armor in the signed text');
  // Byte for byte what gpgv itself outputs as the signed content.
  const gpgv = spawnSync('gpgv', ['--keyring', systemKeyring, '--output', '-', trixie(r.snap)], { maxBuffer: 1 << 24 });
  if (gpgv.status === 0) assert.equal(v.signedText, gpgv.stdout.toString('utf8'));
});

test('the real trixie-security InRelease verifies with two RSA signatures, one by the bookworm key', (t) => {
  const r = real(t);
  if (!r) return;
  const v = verifyCleartext(readFileSync(trixieSecurity(r.snap)), r.keyring, 'trixie-security/InRelease');
  assert.deepEqual(
    v.signers.map((s) => [s.fingerprint, s.primaryFingerprint]),
    [
      ['B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8', '05AB90340C0C5E797F44A8C8254CF3B5AEC0A8F0'],
      ['89C87ACEA5DD6B8E6A7068808E9F831205B4BA95', '5E04A1E3223A19A20706E20F9904613D4CCE68C6'],
    ],
  );
  assert.ok(v.signedText.startsWith('Origin: Debian\nLabel: Debian-Security\n'));
});

test('the real keyring: primaries, subkeys bound with back-signatures, expiry, algorithms', (t) => {
  const r = real(t);
  if (!r) return;
  const { keys } = r.keyring;
  const trixieRelease = keys.find((k) => k.fingerprint === '41587F7DB8C774BCCF131416762F67A0B2C39DE4')!;
  assert.equal(trixieRelease.algorithm, 'eddsa');
  assert.equal(trixieRelease.keyId, '762F67A0B2C39DE4');
  assert.equal(trixieRelease.isSubkey, false);
  assert.equal(trixieRelease.canSign, true);
  assert.equal(trixieRelease.expires?.toISOString(), '2033-03-22T18:56:21.000Z');
  const sub = keys.find((k) => k.fingerprint === 'B8E5F13176D2A7A75220028078DBA3BC47EF2265')!;
  assert.deepEqual([sub.isSubkey, sub.canSign, sub.revoked, sub.primaryFingerprint], [true, true, false, '04B54C3CDCA79751B16BC6B5225629DF75B188BD']);
  assert.deepEqual(sub.userIds, ['Debian Archive Automatic Signing Key (13/trixie) <ftpmaster@debian.org>']);
  for (const k of keys) assert.match(k.fingerprint, /^[0-9A-F]{40}$/);
  // As `gpg --list-keys` shows it: 9 primary keys, 6 of them with a signing subkey.
  assert.equal(keys.filter((k) => !k.isSubkey).length, 9);
  assert.equal(keys.filter((k) => k.isSubkey).length, 6);
});

test('one changed byte in the signed text of the real InRelease is SIGNATURE_BAD', (t) => {
  const r = real(t);
  if (!r) return;
  const text = readFileSync(trixie(r.snap), 'latin1').replace('Version: 13.', 'Version: 18.');
  assert.throws(() => verifyCleartext(Buffer.from(text, 'latin1'), r.keyring, 'trixie/InRelease'), code('SIGNATURE_BAD'));
});

test('a changed byte in a real signature value fails the real check, not just the quick check', (t) => {
  const r = real(t);
  if (!r) return;
  const text = readFileSync(trixieSecurity(r.snap), 'latin1');
  // The last byte of the block is the end of the second RSA signature's value.
  const tampered = withSignatureBytes(text, (sig) => {
    sig.writeUInt8(sig.readUInt8(sig.length - 1) ^ 0x01, sig.length - 1);
    return sig;
  });
  assert.throws(() => verifyCleartext(tampered, r.keyring, 'trixie-security/InRelease'), (e: any) => code('SIGNATURE_BAD')(e) && !/quick check/.test(e.message));
});

test('signatures by keys outside the keyring are ignored; with none good it is SIGNATURE_UNKNOWN_KEY', (t) => {
  const r = real(t);
  if (!r) return;
  const dir = dirname(systemKeyring);
  const bookwormSecurity = join(dir, 'debian-archive-bookworm-security-automatic.gpg');
  const trixieStable = join(dir, 'debian-archive-trixie-stable.gpg');
  if (!existsSync(bookwormSecurity) || !existsSync(trixieStable)) return t.skip(`the per-release keyrings beside ${systemKeyring} are not present`);
  const input = readFileSync(trixieSecurity(r.snap));
  const one = verifyCleartext(input, readKeyring(readFileSync(bookwormSecurity), bookwormSecurity), 'x');
  assert.deepEqual(one.signers.map((s) => s.fingerprint), ['B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8']);
  assert.throws(
    () => verifyCleartext(input, readKeyring(readFileSync(trixieStable), trixieStable), 'trixie-security/InRelease'),
    (e: any) =>
      code('SIGNATURE_UNKNOWN_KEY')(e) &&
      e.message.includes('B0CAB9266E8C3929798B3EEEBDE6D2B9216EC7A8') &&
      e.message.includes('89C87ACEA5DD6B8E6A7068808E9F831205B4BA95') &&
      /--keyring/.test(e.hint),
  );
});

test('real keys expired at "now" make the real InRelease fail', (t) => {
  const r = real(t);
  if (!r) return;
  // In 2036 every key that signed trixie-security has expired (2031 and 2035).
  assert.throws(() => verifyCleartext(readFileSync(trixieSecurity(r.snap)), r.keyring, 'x', { now: new Date('2036-01-01T00:00:00Z') }), code('SIGNATURE_BAD'));
});

// ---------------------------------------------------------------------------------------------------
// gpg-made signatures

test('EdDSA (legacy), RSA and ECDSA P-256 signatures made by gpg verify', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.ed, f.rsa, f.ec]);
  for (const [fpr, algorithm] of [
    [f.ed, 'eddsa'],
    [f.rsa, 'rsa'],
    [f.ec, 'ecdsa'],
  ] as const) {
    const v = verifyCleartext(f.gpg.clearsign(RELEASE, fpr), keyring, algorithm);
    assert.equal(v.signedText, RELEASE);
    assert.deepEqual(v.signers.map((s) => [s.fingerprint, s.algorithm, s.hash]), [[fpr, algorithm, 'SHA256']]);
  }
  const v = verifyCleartext(f.gpg.clearsign(RELEASE, f.rsa, { digest: 'SHA512' }), keyring, 'rsa');
  assert.equal(v.signers[0]!.hash, 'SHA512');
});

test('two signatures in one block: both count; one by an unknown key is ignored', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const msg = f.gpg.run(['--local-user', f.ed, '--local-user', f.rsa, '--digest-algo', 'SHA256', '--clearsign'], RELEASE).toString();
  assert.deepEqual(verifyCleartext(msg, keyringOf(f, [f.ed, f.rsa]), 'x').signers.map((s) => s.fingerprint).sort(), [f.ed, f.rsa].sort());
  assert.deepEqual(verifyCleartext(msg, keyringOf(f, [f.rsa]), 'x').signers.map((s) => s.fingerprint), [f.rsa]);
});

test('a signature by a signing subkey verifies and names its primary', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.primary]);
  const [p, s] = [keyring.keys.find((k) => k.fingerprint === f.primary)!, keyring.keys.find((k) => k.fingerprint === f.sub)!];
  assert.deepEqual([p.isSubkey, p.canSign], [false, false], 'a certify-only primary');
  assert.deepEqual([s.isSubkey, s.canSign, s.primaryFingerprint], [true, true, f.primary]);
  const v = verifyCleartext(f.gpg.clearsign(RELEASE, `${f.sub}!`), keyring, 'x');
  assert.deepEqual(v.signers.map((x) => [x.fingerprint, x.primaryFingerprint, x.userId]), [[f.sub, f.primary, 'Sub <sub@example.invalid>']]);
});

test('a signing subkey without its primary-key back-signature cannot sign', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  // gpg puts the embedded 0x19 back-signature in the unhashed area of the subkey binding, so it can be
  // dropped without breaking the binding itself.
  const stripped = splitPackets(f.gpg.exportKeys([f.primary]), 'export').map((p) => {
    const body = Buffer.from(p.body);
    if (p.tag !== 2) return packet(p.tag, body);
    const sig = parseSignaturePacket(body);
    if (sig.type !== 0x18) return packet(p.tag, body);
    const at = sig.hashedHeader.length;
    const unhashedLen = body.readUInt16BE(at);
    const kept = Buffer.concat(sig.unhashed.filter((s) => s.type !== 32).map((s) => subpacket(s.type | (s.critical ? 0x80 : 0), Buffer.from(s.body))));
    assert.ok(kept.length < unhashedLen, 'the back-signature was in the unhashed area');
    return packet(2, Buffer.concat([body.subarray(0, at), Buffer.from([kept.length >> 8, kept.length & 0xff]), kept, body.subarray(at + 2 + unhashedLen)]));
  });
  const keyring = readKeyring(Buffer.concat(stripped), 'stripped');
  const sub = keyring.keys.find((k) => k.fingerprint === f.sub)!;
  assert.deepEqual([sub.isSubkey, sub.canSign], [true, false], 'still bound, but not for signing');
  assert.throws(() => verifyCleartext(f.gpg.clearsign(RELEASE, `${f.sub}!`), keyring, 'x'), (e: any) => code('SIGNATURE_BAD')(e) && /not valid for signing/.test(e.message));
});

test('a keyring without the signing key: SIGNATURE_UNKNOWN_KEY naming the key', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  assert.throws(
    () => verifyCleartext(f.gpg.clearsign(RELEASE, f.ed), keyringOf(f, [f.rsa]), 'x'),
    (e: any) => code('SIGNATURE_UNKNOWN_KEY')(e) && e.message.includes(f.ed),
  );
});

test('one changed byte of a gpg-signed text is SIGNATURE_BAD', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.ed, f.rsa]);
  for (const fpr of [f.ed, f.rsa]) {
    const msg = f.gpg.clearsign(RELEASE, fpr).replace('Suite: stable', 'Suite: stabke');
    assert.throws(() => verifyCleartext(msg, keyring, 'x'), code('SIGNATURE_BAD'));
  }
});

test('SHA-1 only is SIGNATURE_WEAK', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  assert.throws(() => verifyCleartext(f.gpg.clearsign(RELEASE, f.rsa, { digest: 'SHA1' }), keyringOf(f, [f.rsa]), 'x'), code('SIGNATURE_WEAK'));
});

test('a key expired at "now" is not good; it was good while valid', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.expiring]);
  const k = keyring.keys[0]!;
  assert.equal(k.expires?.getTime(), f.expiringCreated.getTime() + DAY);
  const v = verifyCleartext(f.expiringMsg, keyring, 'x', { now: new Date(f.expiringCreated.getTime() + 2 * 3600_000) });
  assert.deepEqual(v.signers.map((s) => s.fingerprint), [f.expiring]);
  assert.throws(() => verifyCleartext(f.expiringMsg, keyring, 'x'), (e: any) => code('SIGNATURE_BAD')(e) && /expired/.test(e.message));
});

test('a key that had expired when it signed is not good, whatever "now" is', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.lapsed]);
  assert.throws(
    () => verifyCleartext(f.lapsedMsg, keyring, 'x', { now: new Date(f.lapsedSigned.getTime() + 60_000) }),
    (e: any) => code('SIGNATURE_BAD')(e) && /when the signature was made/.test(e.message),
  );
});

test('a revoked key is not good', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.revoked]);
  assert.equal(keyring.keys[0]!.revoked, true);
  assert.throws(() => verifyCleartext(f.revokedMsg, keyring, 'x'), (e: any) => code('SIGNATURE_BAD')(e) && /revoked/.test(e.message));
});

test('dash-escaped lines round-trip, including armor-looking ones', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const text = '-----BEGIN PGP SIGNATURE-----\n- item\n--\n-\nFrom me\n-----END PGP SIGNATURE-----\nlast\n';
  const msg = f.gpg.clearsign(text, f.ed);
  assert.match(msg, /^- -----BEGIN PGP SIGNATURE-----$/m);
  assert.equal(verifyCleartext(msg, keyringOf(f, [f.ed]), 'x').signedText, text);
});

test('text mode: trailing spaces and tabs are not signed and not handed on; CRLF is the same text', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.ed]);
  const msg = f.gpg.clearsign('Origin: x  \nLabel:\ty\t \n\nend \n', f.ed);
  const want = 'Origin: x\nLabel:\ty\n\nend\n';
  assert.equal(verifyCleartext(msg, keyring, 'x').signedText, want);
  // Whitespace added after signing is still outside the signature and still not handed on.
  assert.equal(verifyCleartext(msg.replace('end', 'end \t'), keyring, 'x').signedText, want);
  assert.equal(verifyCleartext(msg.replace(/\n/g, '\r\n'), keyring, 'x').signedText, want);
  // Empty lines are content.
  assert.equal(verifyCleartext(f.gpg.clearsign('a\n\n\nb\n\n', f.ed), keyring, 'x').signedText, 'a\n\n\nb\n\n');
});

test('armored keyrings, several certificates concatenated, binary or armored', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const armored = Buffer.concat([f.gpg.exportKeys([f.ed], true), Buffer.from('\nsome text between blocks\n'), f.gpg.exportKeys([f.rsa], true)]);
  const k1 = readKeyring(armored, 'armored');
  assert.deepEqual(k1.keys.map((k) => k.fingerprint).sort(), [f.ed, f.rsa].sort());
  assert.equal(verifyCleartext(f.gpg.clearsign(RELEASE, f.rsa), k1, 'x').signers[0]!.fingerprint, f.rsa);
  const binary = Buffer.concat([f.gpg.exportKeys([f.ed]), f.gpg.exportKeys([f.rsa]), f.gpg.exportKeys([f.ed])]);
  assert.equal(readKeyring(binary, 'binary').keys.length, 2, 'a repeated certificate is merged');
});

test('malformed clearsigned files are SIGNATURE_MALFORMED', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const keyring = keyringOf(f, [f.ed]);
  const good = f.gpg.clearsign(RELEASE, f.ed);
  assert.equal(verifyCleartext(`\n \n${good}\n\n`, keyring, 'x').signedText, RELEASE, 'whitespace around is fine');
  const cases: Record<string, string> = {
    'text after END': `${good}Origin: evil\n`,
    'text before BEGIN': `Origin: evil\n${good}`,
    'a second signed message': `${good}${good}`,
    'an unsigned file': RELEASE,
    'no blank line after the headers': good.replace('Hash: SHA256\n\n', 'Hash: SHA256\n'),
    'a header other than Hash': good.replace('Hash: SHA256\n', 'Hash: SHA256\nComment: x\n'),
    'a Hash header that is not the digest used': good.replace('Hash: SHA256', 'Hash: SHA512'),
    'a line with a leading dash not escaped': good.replace('Label: Test', '-Label: Test'),
    'a nested signed message': good.replace('Label: Test\n', '-----BEGIN PGP SIGNED MESSAGE-----\n'),
    'malformed base64': good.replace(/(-----BEGIN PGP SIGNATURE-----\n\n.{10})./, '$1*'),
    'a wrong CRC24': good.replace(/^=.{4}$/m, '=AAAA'),
    'a truncated signature (CRC checked)': good.replace(/(-----BEGIN PGP SIGNATURE-----\n\n.{64}\n).*\n/, '$1'),
    'a truncated signature (no CRC)': withSignatureBytes(good, (sig) => sig.subarray(0, sig.length - 6)),
    'garbage for a signature': withSignatureBytes(good, () => Buffer.from('this is not an OpenPGP packet')),
    'a key packet for a signature': withSignatureBytes(good, () => f.gpg.exportKeys([f.ed])),
    'no END line': good.replace('-----END PGP SIGNATURE-----', ''),
  };
  for (const [what, input] of Object.entries(cases)) {
    assert.throws(() => verifyCleartext(input, keyring, what), code('SIGNATURE_MALFORMED'), what);
  }
});

test('CRC24 agrees with the checksum gpg writes', (t) => {
  const f = gpgFixture(t);
  if (!f) return;
  const m = /-----BEGIN PGP SIGNATURE-----\n\n([\s\S]*?)\n=(.{4})\n-----END/.exec(f.gpg.clearsign(RELEASE, f.rsa))!;
  const crc = crc24(Buffer.from(m[1]!.replace(/\n/g, ''), 'base64'));
  assert.equal(Buffer.from([crc >> 16, (crc >> 8) & 0xff, crc & 0xff]).toString('base64'), m[2]);
});

test('invalid keyrings are KEYRING_INVALID naming the source', (t) => {
  const bad = (bytes: Uint8Array) => assert.throws(() => readKeyring(bytes, '/etc/some.gpg'), (e: any) => code('KEYRING_INVALID')(e) && e.message.includes('/etc/some.gpg'));
  bad(new Uint8Array(0));
  bad(Buffer.from('not a keyring\n'));
  bad(Buffer.from('-----BEGIN PGP PUBLIC KEY BLOCK-----\n\nAAAA\n=AAAA\n-----END PGP PUBLIC KEY BLOCK-----\n'));
  if (existsSync(systemKeyring)) bad(readFileSync(systemKeyring).subarray(0, 600));
  else t.diagnostic(`${systemKeyring} absent: truncated-keyring case not run`);
});

// ---------------------------------------------------------------------------------------------------
// v6 (RFC 9580) packets, built here with node:crypto since gpg 2.2 cannot make them

function u32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}
function packet(tag: number, body: Buffer): Buffer {
  const n = body.length;
  const len = n < 192 ? Buffer.from([n]) : n < 8384 ? Buffer.from([((n - 192) >> 8) + 192, (n - 192) & 0xff]) : Buffer.concat([Buffer.from([255]), u32(n)]);
  return Buffer.concat([Buffer.from([0xc0 | tag]), len, body]);
}
function subpacket(type: number, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from([body.length + 1, type]), body]);
}

function v6Fixture(extraHashed: Buffer = Buffer.alloc(0)) {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x!, 'base64url');
  const created = Math.floor(Date.now() / 1000) - 3600;
  const keyBody = Buffer.concat([Buffer.from([6]), u32(created), Buffer.from([27]), u32(32), raw]);
  const keyHashed = Buffer.concat([Buffer.from([0x9b]), u32(keyBody.length), keyBody]);
  const fp = createHash('sha256').update(keyHashed).digest();
  const sign = (type: number, data: Buffer, extra: Buffer): Buffer => {
    const subs = Buffer.concat([subpacket(2, u32(created + 60)), subpacket(33, Buffer.concat([Buffer.from([6]), fp])), extra]);
    const header = Buffer.concat([Buffer.from([6, type, 27, 8]), u32(subs.length), subs]);
    const salt = randomBytes(16);
    const digest = createHash('sha256').update(salt).update(data).update(header).update(Buffer.concat([Buffer.from([6, 0xff]), u32(header.length)])).digest();
    return Buffer.concat([header, u32(0), digest.subarray(0, 2), Buffer.from([16]), salt, cryptoSign(null, digest, privateKey)]);
  };
  const cert = Buffer.concat([packet(6, keyBody), packet(2, sign(0x1f, keyHashed, subpacket(27, Buffer.from([0x03]))))]);
  const text = 'Origin: v6\nLabel: - dashed\n';
  const sig = packet(2, sign(0x01, Buffer.from('Origin: v6\r\nLabel: - dashed'), extraHashed));
  const msg = `-----BEGIN PGP SIGNED MESSAGE-----\n\nOrigin: v6\nLabel: - dashed\n-----BEGIN PGP SIGNATURE-----\n\n${sig.toString('base64')}\n-----END PGP SIGNATURE-----\n`;
  return { cert, msg, text, fingerprint: fp.toString('hex').toUpperCase() };
}

test('v6 Ed25519 keys and salted v6 signatures (RFC 9580) verify', () => {
  const v6 = v6Fixture();
  const keyring = readKeyring(v6.cert, 'v6');
  assert.deepEqual(
    keyring.keys.map((k) => [k.fingerprint, k.keyId, k.algorithm, k.userIds.length, k.canSign]),
    [[v6.fingerprint, v6.fingerprint.slice(0, 16), 'ed25519', 0, true]],
  );
  const v = verifyCleartext(v6.msg, keyring, 'v6');
  assert.equal(v.signedText, v6.text);
  assert.deepEqual(v.signers.map((s) => [s.fingerprint, s.algorithm, s.hash]), [[v6.fingerprint, 'ed25519', 'SHA256']]);
  assert.throws(() => verifyCleartext(v6.msg.replace('Origin: v6', 'Origin: v7'), keyring, 'v6'), code('SIGNATURE_BAD'));
});

test('a signature with an unknown critical subpacket does not count', () => {
  const v6 = v6Fixture(subpacket(0x80 | 100, Buffer.from('x')));
  assert.throws(() => verifyCleartext(v6.msg, readKeyring(v6.cert, 'v6'), 'v6'), (e: any) => code('SIGNATURE_BAD')(e) && /critical/.test(e.message));
  // The same subpacket type without the critical bit is ignored.
  const ok = v6Fixture(subpacket(100, Buffer.from('x')));
  assert.equal(verifyCleartext(ok.msg, readKeyring(ok.cert, 'v6'), 'v6').signers.length, 1);
});

// ---------------------------------------------------------------------------------------------------
// Hand-built v4 certificates for policies gpg is too slow (or unwilling) to exercise

function mpi(b: Buffer): Buffer {
  let i = 0;
  while (i < b.length - 1 && b[i] === 0) i++;
  const v = b.subarray(i);
  const bits = (v.length - 1) * 8 + (32 - Math.clz32(v[0]!));
  return Buffer.concat([Buffer.from([bits >> 8, bits & 0xff]), v]);
}

/** A v4 certificate (key, user ID, self-certification) and a clearsigned message; `signValues` makes the algorithm-specific signature fields. */
function v4Fixture(algorithm: number, material: Buffer, signValues: (toSign: Buffer) => Buffer) {
  const created = Math.floor(Date.now() / 1000) - 3600;
  const keyBody = Buffer.concat([Buffer.from([4]), u32(created), Buffer.from([algorithm]), material]);
  const keyHashed = Buffer.concat([Buffer.from([0x99, keyBody.length >> 8, keyBody.length & 0xff]), keyBody]);
  const fp = createHash('sha1').update(keyHashed).digest();
  const sign = (type: number, data: Buffer): Buffer => {
    const subs = Buffer.concat([subpacket(2, u32(created + 60)), subpacket(33, Buffer.concat([Buffer.from([4]), fp]))]);
    const header = Buffer.concat([Buffer.from([4, type, algorithm, 8, subs.length >> 8, subs.length & 0xff]), subs]);
    const toSign = Buffer.concat([data, header, Buffer.from([4, 0xff]), u32(header.length)]);
    const digest = createHash('sha256').update(toSign).digest();
    return Buffer.concat([header, Buffer.from([0, 0]), digest.subarray(0, 2), signValues(toSign)]);
  };
  const uid = Buffer.from('Hand <hand@example.invalid>');
  const cert = Buffer.concat([
    packet(6, keyBody),
    packet(13, uid),
    packet(2, sign(0x13, Buffer.concat([keyHashed, Buffer.from([0xb4]), u32(uid.length), uid]))),
  ]);
  const sig = packet(2, sign(0x01, Buffer.from('Origin: hand')));
  const msg = `-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA256\n\nOrigin: hand\n-----BEGIN PGP SIGNATURE-----\n\n${sig.toString('base64')}\n-----END PGP SIGNATURE-----\n`;
  return { cert, msg, fingerprint: fp.toString('hex').toUpperCase() };
}

test('a short RSA key reads from the keyring, but its signatures are SIGNATURE_WEAK', () => {
  const { publicKey, privateKey } = generateKeyPairSync('rsa', { modulusLength: 1024 });
  const jwk = publicKey.export({ format: 'jwk' });
  const material = Buffer.concat([mpi(Buffer.from(jwk.n!, 'base64url')), mpi(Buffer.from(jwk.e!, 'base64url'))]);
  const h = v4Fixture(1, material, (toSign) => mpi(cryptoSign('sha256', toSign, privateKey)));
  const keyring = readKeyring(h.cert, 'hand');
  assert.deepEqual(keyring.keys.map((k) => [k.fingerprint, k.algorithm, k.canSign, k.userIds]), [[h.fingerprint, 'rsa', true, ['Hand <hand@example.invalid>']]]);
  assert.throws(() => verifyCleartext(h.msg, keyring, 'x'), (e: any) => code('SIGNATURE_WEAK')(e) && /1024 bits/.test(e.message));
});

test('a key of an unsupported algorithm (DSA) is listed, unable to sign; its signatures are SIGNATURE_WEAK', () => {
  const dummy = mpi(randomBytes(32));
  const h = v4Fixture(17, Buffer.concat([dummy, dummy, dummy, dummy]), () => Buffer.concat([dummy, dummy]));
  const keyring = readKeyring(h.cert, 'hand');
  assert.deepEqual(keyring.keys.map((k) => [k.fingerprint, k.algorithm, k.canSign]), [[h.fingerprint, 'dsa', false]]);
  assert.throws(() => verifyCleartext(h.msg, keyring, 'x'), (e: any) => code('SIGNATURE_WEAK')(e) && /dsa/.test(e.message));
});
