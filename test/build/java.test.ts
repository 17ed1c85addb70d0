// The java image (OpenJDK 21 JRE, amd64 in the test snapshot): the JVM starts, and its default trust
// store — the JRE's lib/security/cacerts, a link to /etc/ssl/certs/java/cacerts that distill
// generates since the ca-certificates-java postinst never runs — loads every CA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { runIn, unpack, whyCannotRunArch } from '../helpers/image-run.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();

test('java -version runs and the default trust store loads every CA, as root and as nonroot', { skip: snap === undefined ? NO_SNAPSHOT : whyCannotRunArch('amd64') }, async () => {
  const out = tempDir('distill-java-');
  const r = await buildImage(join(repoRoot, 'images', 'java', 'image.yaml'), {
    cacheDir: tempDir('distill-java-cache-'),
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    outDir: out,
    variants: ['latest', 'nonroot'],
  });
  assert.deepEqual(r.variants.map((v) => v.manifests.map((m) => m.arch)), [['amd64'], ['amd64']]);
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
  const nonroot = unpack(out, 'nonroot-amd64');
  const n = runIn(nonroot, ['/usr/bin/java', '-XshowSettings:properties', '-version'], { uid: 65532 });
  assert.equal(n.code, 0, n.stderr);
  assert.match(n.stderr, /user\.home = \/home\/nonroot|user\.name = nonroot/);
});
