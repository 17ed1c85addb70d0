// The java image (OpenJDK 21 JRE, amd64 and arm64 in the test snapshot): the JVM starts, and its
// default trust store — the JRE's lib/security/cacerts, a link to /etc/ssl/certs/java/cacerts that
// distill generates since the ca-certificates-java postinst never runs — loads every CA; the C.utf8
// locale makes Java's file names UTF-8; headless AWT finds the DejaVu fonts; the debug variant keeps
// java as its entrypoint.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuildResult } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { imageConfigOf, removeUnpacked, runAsConfigured, runIn, unpack, whyCannotRunArch } from '../helpers/image-run.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const out = mkdtempSync(join(tmpdir(), 'distill-java-'));
const cache = mkdtempSync(join(tmpdir(), 'distill-java-cache-'));
let result: BuildResult | undefined;

before(async () => {
  if (skip) return;
  result = await buildImage(join(repoRoot, 'images', 'java', 'image.yaml'), {
    cacheDir: cache,
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    outDir: out,
    variants: ['latest', 'nonroot', 'debug'],
  });
});

after(() => {
  removeUnpacked();
  rmSync(out, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

// One program for what distroless's CheckEncoding and CheckLibharfbuzz look at, and a non-ASCII path.
const CHECK = `import java.nio.file.*;
public class Check { public static void main(String[] a) throws Exception {
  System.out.println("sun.jnu.encoding=" + System.getProperty("sun.jnu.encoding") + " file.encoding=" + System.getProperty("file.encoding"));
  Path p = Path.of("/tmp/h\\u00e9llo.txt");
  Files.writeString(p, "\\u00e9");
  System.out.println(p.getFileName() + " " + Files.readString(p));
  var families = java.awt.GraphicsEnvironment.getLocalGraphicsEnvironment().getAvailableFontFamilyNames();
  System.out.println(String.join(",", families));
} }
`;

// Check.class, compiled once by the amd64 image's own JRE (its jdk.compiler module, as the source
// launcher uses it): running the class, not the source, keeps the arm64 run under qemu short.
let compiled: Buffer | undefined;
function checkClass(): Buffer {
  if (compiled) return compiled;
  const root = unpack(out, 'latest-amd64');
  writeFileSync(join(root, 'tmp', 'Check.java'), CHECK);
  writeFileSync(join(root, 'tmp', 'Compile.java'), 'public class Compile { public static void main(String[] a) { System.exit(javax.tools.ToolProvider.getSystemJavaCompiler().run(null, null, null, "-d", "/tmp/classes", "/tmp/Check.java")); } }\n');
  const c = runIn(root, ['/usr/bin/java', '/tmp/Compile.java']);
  assert.equal(c.code, 0, c.stderr);
  return (compiled = readFileSync(join(root, 'tmp', 'classes', 'Check.class')));
}

test('java is built for amd64 and arm64', { skip }, () => {
  assert.deepEqual(result!.variants.map((v) => v.manifests.map((m) => m.arch)), [['amd64', 'arm64'], ['amd64', 'arm64'], ['amd64', 'arm64']]);
});

test('java -version runs and the default trust store loads every CA, as root and as nonroot', { skip: skip || whyCannotRunArch('amd64') }, () => {
  const root = unpack(out, 'latest-amd64');
  const v = runIn(root, ['/usr/bin/java', '-version']);
  assert.equal(v.code, 0, v.stderr);
  assert.match(v.stderr, /openjdk version "21\./);
  writeFileSync(
    join(root, 'tmp', 'Trust.java'),
    `public class Trust { public static void main(String[] a) throws Exception {
      var f = javax.net.ssl.TrustManagerFactory.getInstance(javax.net.ssl.TrustManagerFactory.getDefaultAlgorithm());
      f.init((java.security.KeyStore) null);
      System.out.println(((javax.net.ssl.X509TrustManager) f.getTrustManagers()[0]).getAcceptedIssuers().length);
    } }\n`,
  );
  const t = runIn(root, ['/usr/bin/java', '/tmp/Trust.java']);
  assert.equal(t.code, 0, t.stderr);
  assert.ok(Number(t.stdout.trim()) > 100, `trusted issuers: ${t.stdout}`);
  // distroless's path for the same store (its java config tests check it is a symlink): flags written
  // for those images load the same CAs here.
  assert.equal(readlinkSync(join(root, 'etc', 'ssl', 'certs', 'adoptium', 'cacerts')), '/etc/ssl/certs/java/cacerts');
  const a = runIn(root, ['/usr/bin/java', '-Djavax.net.ssl.trustStore=/etc/ssl/certs/adoptium/cacerts', '/tmp/Trust.java']);
  assert.equal(a.code, 0, a.stderr);
  assert.equal(a.stdout, t.stdout);
  const nonroot = unpack(out, 'nonroot-amd64');
  const n = runIn(nonroot, ['/usr/bin/java', '-XshowSettings:properties', '-version'], { uid: 65532 });
  assert.equal(n.code, 0, n.stderr);
  assert.match(n.stderr, /user\.home = \/home\/nonroot|user\.name = nonroot/);
});

for (const arch of ['amd64', 'arm64']) {
  test(`java (${arch}): JAVA_VERSION is the JRE's version; UTF-8 file names under the image's LANG; headless AWT lists the fonts`, { skip: skip || whyCannotRunArch('amd64') || whyCannotRunArch(arch) }, () => {
    const config = imageConfigOf(out, `latest-${arch}`);
    const root = unpack(out, `latest-${arch}`);
    const env = Object.fromEntries((config.Env ?? []).map((e) => e.split('=', 2) as [string, string]));
    assert.equal(env['LANG'], 'C.UTF-8');
    const v = runAsConfigured(root, config, { entrypoint: ['/usr/bin/java', '-version'] });
    assert.equal(v.code, 0, v.stderr);
    assert.equal(v.stderr.match(/openjdk version "([^"]+)"/)?.[1], env['JAVA_VERSION']);
    mkdirSync(join(root, 'tmp', 'classes'));
    writeFileSync(join(root, 'tmp', 'classes', 'Check.class'), checkClass());
    const r = runAsConfigured(root, config, { entrypoint: ['/usr/bin/java', '-cp', '/tmp/classes', 'Check'] });
    assert.equal(r.code, 0, r.stderr);
    const [enc, file, fonts] = r.stdout.split('\n');
    assert.equal(enc, 'sun.jnu.encoding=UTF-8 file.encoding=UTF-8');
    assert.equal(file, 'héllo.txt é');
    assert.ok(fonts!.split(',').includes('DejaVu Sans'), `font families: ${fonts}`);
  });
}

test('java debug: entrypoint java -jar, BusyBox at /busybox, no javac; package records match the files', { skip: skip || whyCannotRunArch('amd64') }, () => {
  const config = imageConfigOf(out, 'debug-amd64');
  assert.deepEqual(config.Entrypoint, ['/usr/bin/java', '-jar']);
  const root = unpack(out, 'debug-amd64');
  assert.ok(!existsSync(join(root, 'usr', 'lib', 'jvm', 'java-21-openjdk-amd64', 'bin', 'javac')), 'the debug variant is the JRE plus BusyBox');
  assert.ok(!existsSync(join(root, 'bin', 'sh')));
  const r = runAsConfigured(root, config, {
    entrypoint: ['/busybox/sh', '-c', 'java -version 2>&1 | head -1; cd / && cat /var/lib/dpkg/status.d/*.md5sums | md5sum -c - | grep -cv ": OK$"; for p in $(ls /var/lib/dpkg/status.d | grep -v "\\.md5sums$"); do [ -e /usr/share/doc/$p/copyright ] || echo "no copyright: $p"; done'],
  });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /^openjdk version "21\.[^\n]*\n0\n$/);
});
