// The JKS keystore against the JDK: keytool lists it and checks its integrity digest, a wrong password
// is refused, the JSSE default TrustManager (javax.net.ssl.trustStore) sees every certificate; and
// against a keystore Java itself wrote (this host's Debian cacerts): same aliases, and the same bytes
// when its entries are written back in its order with its dates.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { caBundle, type CaCertificateFile } from '../../../src/rootfs/generate/ca-bundle.js';
import {
  debianJavaAlias,
  debianJavaTrustedCertificates,
  javaCacerts,
  javaModifiedUtf8,
  jksKeystore,
  pemCertificateToDer,
  type JksEntry,
} from '../../../src/rootfs/generate/java-cacerts.js';
import { NO_SNAPSHOT } from '../../helpers/paths.js';
import { extractDeb, hasTool, listFiles, snapshotDeb, tempDir } from './helpers.js';
import { JAVA_CACERTS_PATH, javaCacertsEntries } from '../../../src/rootfs/generate/java-cacerts.js';
import { certificatesOf } from '../../../src/build/assemble.js';
import { generatorsFor, needsSupplyFromElsewhere } from '../../../src/rootfs/package-roles.js';
import { TEST_ROOT_A, TEST_ROOT_B } from '../../helpers/certs.js';
import { CRAFTED_CA_CERTIFICATES, stageCrafted, staging } from '../../helpers/stage-debs.js';

const failed = (e: unknown) => (e as { code?: string }).code === 'GENERATE_FAILED';
const BUILD_TIME = new Date(Date.UTC(2026, 8, 12, 7, 55, 41));
const NO_JDK = 'a JDK (keytool and java 11 or later) is not installed on this machine';

/** A JKS reader written from the format description, independent of the writer. */
function readJks(bytes: Buffer, password = 'changeit'): JksEntry[] {
  let o = 0;
  const u32 = () => ((o += 4), bytes.readUInt32BE(o - 4));
  const utf = () => {
    const n = bytes.readUInt16BE(o);
    o += 2 + n;
    return bytes.subarray(o - n, o).toString('utf8'); // fine for BMP text without U+0000
  };
  assert.equal(u32(), 0xfeedfeed);
  assert.equal(u32(), 2);
  const n = u32();
  const out: JksEntry[] = [];
  for (let i = 0; i < n; i++) {
    assert.equal(u32(), 2, 'trusted certificate entry');
    const alias = utf();
    const created = new Date(Number(bytes.readBigInt64BE(o)));
    o += 8;
    assert.equal(utf(), 'X.509');
    const len = u32();
    out.push({ alias, created, der: bytes.subarray(o, o + len) });
    o += len;
  }
  const pw = Buffer.from(password, 'utf16le').swap16();
  const digest = createHash('sha1').update(pw).update('Mighty Aphrodite').update(bytes.subarray(0, o)).digest();
  assert.ok(digest.equals(bytes.subarray(o)), 'integrity digest');
  return out;
}

const MAIN_JAVA = String.raw`
import java.io.File;
import java.security.KeyStore;
import javax.net.ssl.*;

public class Main {
  public static void main(String[] args) throws Exception {
    TrustManagerFactory tmf = TrustManagerFactory.getInstance(TrustManagerFactory.getDefaultAlgorithm());
    tmf.init((KeyStore) null); // the default trust store: -Djavax.net.ssl.trustStore
    X509TrustManager tm = null;
    for (TrustManager t : tmf.getTrustManagers()) if (t instanceof X509TrustManager) tm = (X509TrustManager) t;
    SSLContext ctx = SSLContext.getInstance("TLS");
    ctx.init(null, new TrustManager[] { tm }, null);
    System.out.println("issuers=" + tm.getAcceptedIssuers().length);
    KeyStore ks = KeyStore.getInstance(new File(args[0]), "changeit".toCharArray());
    System.out.println("type=" + ks.getType());
    System.out.println("size=" + ks.size());
    System.out.println("netlock=" + ks.isCertificateEntry("debian:netlock_arany_=class_gold=_f\u0151tan\u00fas\u00edtv\u00e1ny.pem"));
    System.out.println("isrg=" + ks.isCertificateEntry("DEBIAN:ISRG_ROOT_X1.PEM"));
  }
}
`;

const ISRG_ROOT_X2 = `-----BEGIN CERTIFICATE-----
MIICGzCCAaGgAwIBAgIQQdKd0XLq7qeAwSxs6S+HUjAKBggqhkjOPQQDAzBPMQsw
CQYDVQQGEwJVUzEpMCcGA1UEChMgSW50ZXJuZXQgU2VjdXJpdHkgUmVzZWFyY2gg
R3JvdXAxFTATBgNVBAMTDElTUkcgUm9vdCBYMjAeFw0yMDA5MDQwMDAwMDBaFw00
MDA5MTcxNjAwMDBaME8xCzAJBgNVBAYTAlVTMSkwJwYDVQQKEyBJbnRlcm5ldCBT
ZWN1cml0eSBSZXNlYXJjaCBHcm91cDEVMBMGA1UEAxMMSVNSRyBSb290IFgyMHYw
EAYHKoZIzj0CAQYFK4EEACIDYgAEzZvVn4CDCuwJSvMWSj5cz3es3mcFDR0HttwW
+1qLFNvicWDEukWVEYmO6gbf9yoWHKS5xcUy4APgHoIYOIvXRdgKam7mAHf7AlF9
ItgKbppbd9/w+kHsOdx1ymgHDB/qo0IwQDAOBgNVHQ8BAf8EBAMCAQYwDwYDVR0T
AQH/BAUwAwEB/zAdBgNVHQ4EFgQUfEKWrt5LSDv6kviejM9ti6lyN5UwCgYIKoZI
zj0EAwMDaAAwZQIwe3lORlCEwkSHRhtFcP9Ymd70/aTSVaYgLXTWNLxBo1BfASdW
tL4ndQavEi51mI38AjEAi/V3bNTIZargCyzuFJ0nN6T5U6VR5CmD1/iQMVtCnwr1
/q4AaOeMSQ+2b1tbFfLn
-----END CERTIFICATE-----
`;

/** Run a command to completion without blocking the event loop (so several can run at once). */
function spawnAsync(cmd: string, args: string[], cwd: string): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { cwd, env: { ...process.env, LC_ALL: 'C.UTF-8' } });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

function snapshotCaFiles(dir: string): CaCertificateFile[] | undefined {
  const deb = snapshotDeb('ca-certificates', 'all');
  if (!deb) return undefined;
  extractDeb(deb, dir);
  return listFiles(dir, 'usr/share').map((p) => ({ path: './' + p, pem: readFileSync(join(dir, p), 'latin1') }));
}

test('keytool and JSSE load the keystore made from the snapshot\'s ca-certificates', async (t) => {
  if (!hasTool('dpkg-deb')) return t.skip('dpkg-deb is not installed on this machine');
  if (!hasTool('keytool', ['-help']) || !hasTool('java', ['-version'])) return t.skip(NO_JDK);
  const { dir, cleanup } = tempDir('cacerts');
  try {
    const files = snapshotCaFiles(join(dir, 'root'));
    if (!files) return t.skip(NO_SNAPSHOT);
    const entries = debianJavaTrustedCertificates(files);
    const n = entries.length;
    assert.equal(n, caBundle(files).split('-----BEGIN CERTIFICATE-----').length - 1, 'one entry per bundled certificate');
    const ks = javaCacerts(entries, { created: BUILD_TIME });
    assert.ok(ks.equals(javaCacerts([...entries].reverse(), { created: BUILD_TIME })), 'input order does not matter');
    const store = join(dir, 'cacerts');
    writeFileSync(store, ks);

    writeFileSync(join(dir, 'Main.java'), MAIN_JAVA);
    // Three JVMs at once (quick-start flags: these are short runs).
    const fast = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];
    const [list, wrong, java] = await Promise.all([
      spawnAsync('keytool', [...fast.map((f) => '-J' + f), '-list', '-keystore', store, '-storepass', 'changeit'], dir),
      spawnAsync('keytool', [...fast.map((f) => '-J' + f), '-list', '-keystore', store, '-storepass', 'wrongpass'], dir),
      spawnAsync('java', [...fast, `-Djavax.net.ssl.trustStore=${store}`, '-Djavax.net.ssl.trustStorePassword=changeit', join(dir, 'Main.java'), store], dir),
    ]);
    assert.equal(list.status, 0, list.stderr + list.stdout);
    assert.match(list.stdout, /Keystore type: JKS/);
    assert.match(list.stdout, new RegExp(`Your keystore contains ${n} entries`));
    assert.equal(list.stdout.match(/trustedCertEntry/g)?.length, n);
    assert.match(list.stdout, /debian:isrg_root_x1\.pem, Sep 12, 2026, trustedCertEntry/);

    assert.notEqual(wrong.status, 0);
    assert.match(wrong.stdout + wrong.stderr, /password was incorrect|tampered/);

    assert.equal(java.status, 0, java.stderr);
    assert.deepEqual(java.stdout.trim().split('\n'), [`issuers=${n}`, 'type=JKS', `size=${n}`, 'netlock=true', 'isrg=true']);
  } finally {
    cleanup();
  }
});

test('a keystore Java wrote (this host\'s Debian cacerts) is reproduced byte for byte, with Debian\'s aliases', (t) => {
  const hostStore = '/etc/ssl/certs/java/cacerts';
  if (!existsSync(hostStore) || readFileSync(hostStore).readUInt32BE(0) !== 0xfeedfeed) return t.skip('this host has no JKS /etc/ssl/certs/java/cacerts');
  const bytes = readFileSync(hostStore);
  const entries = readJks(bytes);
  assert.ok(jksKeystore(entries).equals(bytes), 'writing the host entries back in their order gives other bytes');

  // The aliases and certificates ca-certificates-java made are the ones derived from the CA files.
  const files: CaCertificateFile[] = [];
  for (const dir of ['usr/share/ca-certificates', 'usr/local/share/ca-certificates']) {
    if (existsSync('/' + dir)) for (const p of listFiles('/', dir)) files.push({ path: p, pem: readFileSync('/' + p, 'latin1') });
  }
  const derived = new Map(debianJavaTrustedCertificates(files).map((e) => [e.alias, e.der.toString('hex')]));
  // Entries that ca-certificates-java made are "debian:…"; an administrator's `keytool -importcert`
  // adds others, for certificates that may also be in the CA files under their Debian alias.
  const debian = entries.filter((e) => e.alias.startsWith('debian:'));
  const others = entries.length - debian.length;
  if (debian.length + others < derived.size || debian.length < derived.size - others) {
    return t.skip('this host\'s cacerts and CA files disagree (local changes since the last update)');
  }
  for (const e of debian) assert.equal(derived.get(e.alias), e.der.toString('hex'), e.alias);
  assert.ok(debian.length >= 100, `only ${debian.length} Debian entries`);
});

test('aliases, modified UTF-8, PEM decoding and refusals', () => {
  assert.equal(debianJavaAlias('/usr/share/ca-certificates/mozilla/NetLock_Arany_=Class_Gold=_Főtanúsítvány.crt'), 'debian:netlock_arany_=class_gold=_főtanúsítvány.pem');
  assert.equal(debianJavaAlias('local/My CA (test), v2.crt'), 'debian:my_ca_=test=__v2.pem');
  assert.deepEqual([...javaModifiedUtf8('a\u0000ő')], [0, 5, 0x61, 0xc0, 0x80, 0xc5, 0x91]);
  assert.deepEqual([...javaModifiedUtf8('😀')], [0, 6, 0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80]);
  assert.throws(() => javaModifiedUtf8('x'.repeat(65536)), failed);

  // ISRG Root X2, as the ca-certificates package ships it (leading text before the block is skipped, as
  // Java's CertificateFactory skips it).
  const der = pemCertificateToDer('# ISRG Root X2\n' + ISRG_ROOT_X2);
  assert.equal(createHash('sha256').update(der).digest('hex'), '69729b8e15a86efc177a57afb7171dfc64add28c2fca8cf1507e34453ccb1470');
  assert.equal(new X509Certificate(der).subject, 'C=US\nO=Internet Security Research Group\nCN=ISRG Root X2');
  assert.throws(() => pemCertificateToDer(ISRG_ROOT_X2.replace('/q4AaOeMSQ+2b1tbFfLn\n', '')), failed); // truncated
  assert.throws(() => pemCertificateToDer('no certificate here'), failed);
  assert.throws(() => pemCertificateToDer('-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n'), failed); // DER, not X.509
  assert.throws(() => javaCacerts([{ alias: 'A', der: Buffer.from([0x30, 0]) }, { alias: 'a', der: Buffer.from([0x30, 0]) }], { created: BUILD_TIME }), failed);
  assert.throws(() => javaCacerts([{ alias: '', der: Buffer.from([0x30, 0]) }], { created: BUILD_TIME }), failed);
  assert.throws(() => javaCacerts([{ alias: 'a', der: Buffer.from([0x30, 0]) }], { created: new Date(Number.NaN) }), failed);
});

test('generator, on a crafted ca-certificates .deb: a JKS of its certificates with Debian\'s aliases, dated at the layer\'s timestamp', async () => {
  // Which layers get it: the JRE's and ca-certificates-java's, reading certificates from elsewhere.
  assert.deepEqual(generatorsFor(['openjdk-21-jre-headless', 'libc6']), ['java-cacerts']);
  assert.deepEqual(generatorsFor(['ca-certificates-java']), ['java-cacerts']);
  assert.equal(needsSupplyFromElsewhere(['openjdk-17-jre-headless'], 'certificates'), true);
  assert.equal(needsSupplyFromElsewhere(['ca-certificates', 'libc6'], 'certificates'), false);
  const [ca] = await stageCrafted(staging(), [CRAFTED_CA_CERTIFICATES]);
  const mtime = 1_750_000_000;
  const [store, ...more] = javaCacertsEntries(await certificatesOf(ca!), mtime);
  assert.equal(more.length, 0);
  assert.equal(store!.path, JAVA_CACERTS_PATH);
  assert.deepEqual([store!.mode, store!.uid, store!.gid, store!.mtime, store!.owner], [0o644, 0, 0, mtime, 'distill:java-cacerts']);
  const body = store!.body;
  const entries = readJks(body?.kind === 'bytes' ? body.data : Buffer.alloc(0));
  assert.deepEqual(entries.map((e) => e.alias), ['debian:a_root_=2=.pem', 'debian:b_root.pem']);
  assert.ok(entries.every((e) => e.created.getTime() === mtime * 1000));
  assert.ok(entries[0]!.der.equals(new X509Certificate(TEST_ROOT_A).raw));
  assert.ok(entries[1]!.der.equals(new X509Certificate(TEST_ROOT_B).raw));
});
