// A team's own base image: `distill init --from`, then packages, files of its own (inline, from the
// repository, symlinks, directories) with modes and owners, accounts, path rules — locked and built.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, lstatSync, readFileSync, readlinkSync, statSync, writeFileSync, appendFileSync, existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { scaffoldImage } from '../../src/definition/scaffold.js';
import { lockImages } from '../../src/lock/lock.js';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors, systemKeyring } from '../helpers/paths.js';
import { removeUnpacked, runIn, unpack, whyCannotRun } from '../helpers/image-run.js';

after(removeUnpacked);
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();

test('init refuses bad names, unknown bases and overwriting', async () => {
  const images = join(tempDir('distill-init-'), 'images');
  cpSync(join(repoRoot, 'images'), images, { recursive: true });
  await assert.rejects(scaffoldImage(images, 'Bad Name', 'static'), (e: any) => e.code === 'USAGE');
  await assert.rejects(scaffoldImage(images, 'x1', 'nope'), (e: any) => e.code === 'DEFINITION_NOT_FOUND');
  const f = await scaffoldImage(images, 'myapp', 'base');
  assert.match(readFileSync(f, 'utf8'), /^extends: base$/m);
  await assert.rejects(scaffoldImage(images, 'myapp', 'base'), (e: any) => e.code === 'USAGE');
});

test('a custom image on base: own files, accounts and path rules, built and run', { skip: snap === undefined ? NO_SNAPSHOT : whyCannotRun() }, async () => {
  const images = join(tempDir('distill-custom-'), 'images');
  cpSync(join(repoRoot, 'images'), images, { recursive: true });
  const file = await scaffoldImage(images, 'myapp', 'base');
  writeFileSync(join(images, 'myapp', 'hello.sh'), '#!/busybox/sh\necho hello from a file\n');
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^packages: \[\].*$/m, 'packages: [libexpat1]'));
  appendFileSync(
    file,
    [
      'accounts:',
      '  users:',
      '    - {name: root, uid: 0, gid: 0}',
      '    - {name: app, uid: 1000, gid: 1000, home: /srv/app}',
      '  groups:',
      '    - {name: root, gid: 0}',
      '    - {name: app, gid: 1000}',
      'files:',
      '  - {path: /etc/myapp/config.toml, content: "arch = \\"${arch}\\"\\n", mode: "0640", uid: 1000, gid: 1000}',
      '  - {path: /usr/local/bin/hello, source: hello.sh, mode: "0755"}',
      '  - {path: /usr/local/bin/ssl, symlink: /usr/bin/openssl}',
      '  - {path: /var/lib/myapp, directory: true, mode: "0700", uid: 1000, gid: 1000}',
      'paths:',
      '  drop: [usr/lib/*/libexpatw.so*]   # rules apply to this image\'s own packages',
      'config:',
      '  entrypoint: [/usr/local/bin/ssl]',
      '  cmd: [version]',
      '  env: {MYAPP_ARCH: "${arch}"}',
      '',
    ].join('\n'),
  );
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const cacheDir = tempDir('distill-custom-cache-');
  await lockImages([file], { cacheDir, mirrors, allowExpired: true, keyring: systemKeyring });
  const out = tempDir('distill-custom-out-');
  const r = await buildImage(file, { cacheDir, mirrors, outDir: out, platforms: ['amd64'], variants: ['latest', 'debug'] });
  assert.deepEqual(r.variants.map((v) => v.variant), ['latest', 'debug']);
  const root = unpack(out, 'latest-amd64');
  assert.equal(readFileSync(join(root, 'etc', 'myapp', 'config.toml'), 'utf8'), 'arch = "amd64"\n');
  const st = statSync(join(root, 'etc', 'myapp', 'config.toml'));
  assert.equal(st.mode & 0o7777, 0o640);
  assert.equal(st.uid, 1000);
  assert.equal(statSync(join(root, 'var', 'lib', 'myapp')).mode & 0o7777, 0o700);
  assert.equal(readlinkSync(join(root, 'usr', 'local', 'bin', 'ssl')), '/usr/bin/openssl');
  assert.equal(statSync(join(root, 'srv', 'app')).uid, 1000);
  assert.match(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), /^app:x:1000:1000:app:\/srv\/app:\/sbin\/nologin$/m);
  assert.ok(!existsSync(join(root, 'usr', 'lib', 'x86_64-linux-gnu', 'libexpatw.so.1')), 'the drop rule applies');
  assert.ok(existsSync(join(root, 'usr', 'lib', 'x86_64-linux-gnu', 'libexpat.so.1')));
  assert.ok(existsSync(join(root, 'var', 'lib', 'dpkg', 'status.d', 'libexpat1')));
  assert.ok(lstatSync(join(root, 'usr', 'local', 'bin', 'hello')).mode & 0o100);
  const run = runIn(root, ['/usr/local/bin/ssl', 'version']);
  assert.equal(run.code, 0, run.stderr);
  const debug = runIn(unpack(out, 'debug-amd64'), ['/usr/local/bin/hello']);
  assert.equal(debug.stdout, 'hello from a file\n', debug.stderr);
});

test('files from a URL pinned by sha256 and from tarballs; a wrong pin and a hostile tarball are refused', { skip: snap === undefined ? NO_SNAPSHOT : whyCannotRun() }, async () => {
  const { execFileSync } = await import('node:child_process');
  const { createHash } = await import('node:crypto');
  const { mkdirSync } = await import('node:fs');
  const dir = tempDir('distill-urlfiles-');
  const images = join(dir, 'images');
  cpSync(join(repoRoot, 'images'), images, { recursive: true });
  // A tarball with a nested tree and an executable, and a plain file served from a file:// URL — both
  // beside the definition: a file:// url is confined to its directory like a source.
  const file = await scaffoldImage(images, 'withurls', 'static');
  const here = dirname(file);
  mkdirSync(join(dir, 'tree', 'bin'), { recursive: true });
  writeFileSync(join(dir, 'tree', 'bin', 'tool'), '#!/busybox/sh\necho tool ran\n', { mode: 0o755 });
  writeFileSync(join(dir, 'tree', 'README'), 'docs\n');
  execFileSync('tar', ['-czf', join(here, 'tree.tar.gz'), '--owner=0', '--group=0', '-C', join(dir, 'tree'), '.']);
  writeFileSync(join(here, 'blob.txt'), 'from a url\n');
  const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
  appendFileSync(file, [
    'files:',
    `  - {path: /opt/tool, url: "file://${join(here, 'tree.tar.gz')}", sha256: "${sha(join(here, 'tree.tar.gz'))}", extract: true}`,
    `  - {path: /etc/blob.txt, url: "file://${join(here, 'blob.txt')}", sha256: "${sha(join(here, 'blob.txt'))}"}`,
    '',
  ].join('\n'));
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const cacheDir = tempDir('distill-urlfiles-cache-');
  await lockImages([file], { cacheDir, mirrors, allowExpired: true, keyring: systemKeyring });
  const out = tempDir('distill-urlfiles-out-');
  await buildImage(file, { cacheDir, mirrors, outDir: out, platforms: ['amd64'], variants: ['debug'] });
  const root = unpack(out, 'debug-amd64');
  assert.equal(readFileSync(join(root, 'etc', 'blob.txt'), 'utf8'), 'from a url\n');
  assert.equal(readFileSync(join(root, 'opt', 'tool', 'README'), 'utf8'), 'docs\n');
  const r = runIn(root, ['/opt/tool/bin/tool']);
  assert.equal(r.stdout, 'tool ran\n', r.stderr);

  // A pin that does not match what the URL serves.
  writeFileSync(file, readFileSync(file, 'utf8').replace(sha(join(here, 'blob.txt')), '0'.repeat(64)));
  await lockImages([file], { cacheDir, mirrors, allowExpired: true, keyring: systemKeyring });
  await assert.rejects(buildImage(file, { cacheDir, mirrors, outDir: out, platforms: ['amd64'], variants: ['latest'] }), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');

  // A tarball that climbs out of its directory.
  const evil = join(here, 'evil.tar');
  execFileSync('tar', ['-cf', evil, '-C', join(dir, 'tree'), '--transform', 's,^\\./README,../../etc/shadow,', './README']);
  writeFileSync(file, readFileSync(file, 'utf8').replace(/^  - \{path: \/etc\/blob\.txt.*$/m, `  - {path: /opt/evil, url: "file://${evil}", sha256: "${sha(evil)}", extract: true}`));
  await lockImages([file], { cacheDir, mirrors, allowExpired: true, keyring: systemKeyring });
  await assert.rejects(buildImage(file, { cacheDir, mirrors, outDir: out, platforms: ['amd64'], variants: ['latest'] }), (e: any) => e.code === 'UNSAFE_ENTRY');
});
