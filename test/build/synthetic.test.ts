// The whole build path without the Debian snapshot: a tiny synthetic archive (signed by a throw-away
// key) with stand-ins for base-files, libc6, ca-certificates, a JRE and busybox-static, two image
// definitions (a root image and one built on it, with accounts and files of its own), locked and built
// into an OCI layout whose layers the test reads back: the packages' files, merged /usr, the runtime
// filter, and every generated file — passwd/group, homes, nsswitch.conf, /tmp, status.d with md5sums of
// shipped files only, the CA bundle, Java's trust store, BusyBox in the debug layer. Built again
// with the layer cache warm (base layer cached, the JRE's layer staged anew) and without it: the same
// digests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { before, test } from 'node:test';
import { buildImage, type BuildResult } from '../../src/build.js';
import { lockImages } from '../../src/lock/lock.js';
import { TEST_ROOT_A, TEST_ROOT_B } from '../helpers/certs.js';
import { readTarGz } from '../helpers/make-layer.js';
import { CRAFTED_APPLETS } from '../helpers/stage-debs.js';
import { makeArchive, makeKey, type SynthArchive, type SynthKey, type SynthPackage } from '../helpers/synthetic-archive.js';
import { tempDir } from '../helpers/tmp.js';

const haveGpg = spawnSync('gpg', ['--version']).status === 0;
const skip = haveGpg ? false : 'gpg is not installed (apt-get install gnupg): the synthetic archive is signed with it';

const BUSYBOX = Buffer.concat([Buffer.from('\x7fELF fake static busybox\0'), Buffer.from(CRAFTED_APPLETS.join('\0') + '\0\0', 'latin1')]);
const JVM = 'usr/lib/jvm/java-21-openjdk-amd64';

const PACKAGES: SynthPackage[] = [
  {
    name: 'base-files',
    version: '13.8+deb13u7',
    architecture: 'amd64',
    essential: true,
    files: { 'etc/debian_version': '13.8\n', 'usr/lib/os-release': 'ID=debian\nVERSION_ID="13"\n', 'etc/nsswitch.conf': 'base-files own\n', 'usr/share/doc/base-files/copyright': 'GPL\n', 'usr/share/doc/base-files/README': 'dropped\n' },
    symlinks: { 'etc/os-release': '../usr/lib/os-release', bin: 'usr/bin', lib: 'usr/lib', sbin: 'usr/sbin' },
  },
  {
    name: 'ca-certificates',
    version: '20250419',
    architecture: 'all',
    files: {
      'usr/share/ca-certificates/mozilla/B_Root.crt': TEST_ROOT_B,
      'usr/share/ca-certificates/mozilla/A Root (2).crt': TEST_ROOT_A,
      'usr/sbin/update-ca-certificates': '#!/bin/sh\n',
      'usr/share/doc/ca-certificates/copyright': 'MPL-2.0\n',
    },
  },
  {
    name: 'libc6',
    version: '2.41-12',
    architecture: 'amd64',
    multiArch: 'same',
    // Shipped under /lib: the image has it under /usr/lib (merged /usr).
    files: { 'lib/x86_64-linux-gnu/libc.so.6': 'fake libc\n', 'usr/share/doc/libc6/copyright': 'LGPL\n', 'usr/share/man/man7/libc.7.gz': 'man' },
  },
  {
    name: 'openjdk-21-jre-headless',
    version: '21.0.8+9-1',
    architecture: 'amd64',
    depends: 'libc6, ca-certificates',
    files: { [`${JVM}/bin/java`]: '#!/bin/sh\necho java\n', 'usr/share/doc/openjdk-21-jre-headless/copyright': 'GPL-2 with CE\n' },
    symlinks: { [`${JVM}/lib/security/cacerts`]: '/etc/ssl/certs/java/cacerts' },
  },
  { name: 'busybox-static', version: '1:1.37.0-6', architecture: 'amd64', files: { 'bin/busybox': BUSYBOX, 'usr/share/doc/busybox-static/copyright': 'GPL-2\n' } },
];

const ROOT_YAML = `sources:
  debian:
    suite: trixie
    components: [main]
architectures: [amd64]
packages: [base-files, ca-certificates]
debug:
  packages: [busybox-static]
`;

const APP_YAML = `extends: root
packages: [openjdk-21-jre-headless]
accounts:
  users:
    - {name: root, uid: 0, gid: 0}
    - {name: app, uid: 1000, gid: 1000, home: /srv/app}
  groups:
    - {name: root, gid: 0}
    - {name: app, gid: 1000}
files:
  - {path: /etc/app/config, content: "arch=\${arch}\\n", mode: "0640", uid: 1000, gid: 1000}
`;

let key: SynthKey;
let archive: SynthArchive;
let work: string;
let mirrors: { flags: Record<string, string>; aptSources: [] };
let first: BuildResult;

before(async () => {
  if (skip) return;
  work = tempDir('distill-synth-build-');
  key = await makeKey(join(work, 'key'));
  archive = await makeArchive(join(work, 'mirror'), [{ archiveName: 'debian', suite: 'trixie', architectures: ['amd64'], packages: PACKAGES }], { key });
  mirrors = { flags: { debian: archive.url('debian') }, aptSources: [] };
  for (const [name, yaml] of [['root', ROOT_YAML], ['app', APP_YAML]] as const) {
    mkdirSync(join(work, 'images', name), { recursive: true });
    writeFileSync(join(work, 'images', name, 'image.yaml'), yaml);
  }
  await lockImages([join(work, 'images', 'root', 'image.yaml'), join(work, 'images', 'app', 'image.yaml')], {
    cacheDir: join(work, 'cache'),
    keyring: key.keyringPath,
    mirrors,
    now: new Date('2025-07-01T00:00:00Z'),
  });
});

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  linkname?: string;
  body: Buffer;
}

function blob(layout: string, digest: string): Buffer {
  const bytes = readFileSync(join(layout, 'blobs', 'sha256', digest.replace(/^sha256:/, '')));
  assert.equal(`sha256:${createHash('sha256').update(bytes).digest('hex')}`, digest, 'blob matches its digest');
  return bytes;
}

async function readLayer(gz: Buffer): Promise<Map<string, Entry>> {
  const out = new Map<string, Entry>();
  for (const { header: h, body } of await readTarGz(gz)) {
    out.set(h.name.replace(/\/$/, ''), { type: h.type ?? 'file', mode: h.mode ?? 0, uid: h.uid ?? -1, gid: h.gid ?? -1, mtime: h.mtime ? h.mtime.getTime() / 1000 : -1, ...(h.linkname ? { linkname: h.linkname } : {}), body });
  }
  return out;
}

/** The layers of one platform image of a layout, by ref name (e.g. latest-amd64), base first. */
async function layersOf(layout: string, ref: string): Promise<Map<string, Entry>[]> {
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const desc = index.manifests.find((m: any) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  assert.ok(desc, `${ref} in index.json`);
  const manifest = JSON.parse(blob(layout, desc.digest).toString());
  return Promise.all(manifest.layers.map((l: any) => readLayer(blob(layout, l.digest))));
}

const text = (e: Entry | undefined): string => e?.body.toString('utf8') ?? '(absent)';
const digests = (r: BuildResult): string[] => r.variants.map((v) => `${v.variant} ${v.index}`);

test('a synthetic archive built end to end: packages, merged /usr, the runtime filter and every generated file', { skip }, async () => {
  const out = join(work, 'out1');
  first = await buildImage(join(work, 'images', 'app', 'image.yaml'), { cacheDir: join(work, 'cache'), mirrors, outDir: out, variants: ['latest', 'debug'] });
  const [root, app, ...rest] = await layersOf(out, 'latest-amd64');
  assert.equal(rest.length, 0, 'one layer per image');
  const mtime = Math.floor(Date.parse(JSON.parse(readFileSync(join(work, 'images', 'root', 'image.lock.json'), 'utf8')).timestamp) / 1000);

  // Root layer: base-files and ca-certificates' files; docs dropped but the copyright.
  assert.equal(text(root!.get('etc/debian_version')), '13.8\n');
  assert.equal(root!.get('etc/os-release')!.linkname, '../usr/lib/os-release');
  assert.equal(text(root!.get('usr/share/doc/base-files/copyright')), 'GPL\n');
  assert.equal(root!.get('usr/share/doc/base-files/README'), undefined);
  // ca-certificates: the bundle in update-ca-certificates' order; no certificate file, no script.
  assert.equal(text(root!.get('etc/ssl/certs/ca-certificates.crt')), TEST_ROOT_A + TEST_ROOT_B);
  assert.deepEqual([...root!.keys()].filter((p) => p.startsWith('usr/share/ca-certificates') || p.includes('update-ca-certificates')), []);
  // System files and distroless's default accounts.
  assert.equal(root!.get('tmp')!.mode, 0o1777);
  assert.match(text(root!.get('etc/nsswitch.conf')), /^hosts: +files dns$/m);
  assert.equal(text(root!.get('etc/passwd')), 'root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n');
  assert.deepEqual([root!.get('home/nonroot')!.mode, root!.get('home/nonroot')!.uid], [0o700, 65532]);
  // status.d: each package's control file, and md5sums listing only what ships.
  assert.match(text(root!.get('var/lib/dpkg/status.d/base-files')), /^Package: base-files\nVersion: 13\.8\+deb13u7\n/);
  const md5 = text(root!.get('var/lib/dpkg/status.d/base-files.md5sums')).split('\n').filter(Boolean).map((l) => l.slice(34)).sort();
  // (nsswitch.conf is distill's now, the README was dropped: neither is base-files' file in the image)
  assert.deepEqual(md5, ['etc/debian_version', 'usr/lib/os-release', 'usr/share/doc/base-files/copyright']);
  assert.deepEqual(text(root!.get('var/lib/dpkg/status.d/ca-certificates.md5sums')).split('\n').filter(Boolean).map((l) => l.slice(34)), ['usr/share/doc/ca-certificates/copyright']);
  // Every entry has the build's timestamp, root owner unless said otherwise.
  assert.ok([...root!.values()].every((e) => e.mtime === mtime && e.uid === (root!.get('home/nonroot') === e ? 65532 : 0)));

  // The app's layer: libc under /usr/lib (merged /usr), the JRE with Java's trust store, its own accounts and file.
  assert.equal(text(app!.get('usr/lib/x86_64-linux-gnu/libc.so.6')), 'fake libc\n');
  assert.equal(app!.get('lib/x86_64-linux-gnu/libc.so.6'), undefined);
  assert.equal(app!.get('usr/share/man/man7/libc.7.gz'), undefined);
  assert.equal(app!.get(`${JVM}/lib/security/cacerts`)!.linkname, '/etc/ssl/certs/java/cacerts');
  const jks = app!.get('etc/ssl/certs/java/cacerts')!.body;
  assert.equal(jks.readUInt32BE(0), 0xfeedfeed);
  assert.equal(jks.readUInt32BE(8), 2, 'one entry per certificate');
  assert.equal(app!.get('etc/ssl/certs/ca-certificates.crt'), undefined, 'the bundle stays in the layer of ca-certificates');
  assert.equal(text(app!.get('etc/passwd')), 'root:x:0:0:root:/root:/sbin/nologin\napp:x:1000:1000:app:/srv/app:/sbin/nologin\n');
  assert.equal(text(app!.get('etc/group')), 'root:x:0:\napp:x:1000:\n');
  assert.deepEqual([app!.get('srv/app')!.mode, app!.get('srv/app')!.uid], [0o700, 1000]);
  const config = app!.get('etc/app/config')!;
  assert.deepEqual([text(config), config.mode, config.uid, config.gid], ['arch=amd64\n', 0o640, 1000, 1000]);
  assert.deepEqual([...app!.keys()].filter((p) => p.startsWith('var/lib/dpkg/status.d/') && !p.endsWith('.md5sums')).sort(), ['var/lib/dpkg/status.d/libc6', 'var/lib/dpkg/status.d/openjdk-21-jre-headless']);
  assert.equal(app!.get('etc/nsswitch.conf'), undefined, 'system files only in the root layer');

  // The debug variant: the same two layers, and BusyBox on top.
  const debug = await layersOf(out, 'debug-amd64');
  assert.equal(debug.length, 3);
  const bb = debug[2]!;
  assert.equal(bb.get('busybox/busybox')!.mode, 0o755);
  assert.ok(bb.get('busybox/busybox')!.body.equals(BUSYBOX));
  assert.deepEqual([...bb.keys()].filter((p) => bb.get(p)!.linkname === 'busybox').sort(), CRAFTED_APPLETS.filter((a) => a !== 'busybox').map((a) => `busybox/${a}`).sort());
  assert.ok(bb.has('var/lib/dpkg/status.d/busybox-static'));
  assert.equal(bb.get('usr/bin/busybox'), undefined);
});

test('the same digests from a warm layer cache (root cached, the JRE layer staged anew) and with no cache at all', { skip }, async () => {
  const cacheDir = join(work, 'cache2');
  // The root image alone first: its layer is cached, so the app's build must stage ca-certificates
  // again for Java's trust store.
  await buildImage(join(work, 'images', 'root', 'image.yaml'), { cacheDir, mirrors, outDir: join(work, 'out-root'), variants: ['latest'] });
  const sources: string[] = [];
  const warm = await buildImage(join(work, 'images', 'app', 'image.yaml'), {
    cacheDir,
    mirrors,
    outDir: join(work, 'out2'),
    variants: ['latest', 'debug'],
    onProgress: (e) => {
      if (e.type === 'layer-written') sources.push(`${e.image} ${e.source}`);
    },
  });
  // The app's layer and the debug layer are written side by side: either may finish first.
  assert.deepEqual([...sources].sort(), ['app built', 'root (debug) built', 'root local cache']);
  assert.deepEqual(digests(warm), digests(first));
  const cold = await buildImage(join(work, 'images', 'app', 'image.yaml'), { cacheDir: join(work, 'cache3'), mirrors, outDir: join(work, 'out3'), variants: ['latest', 'debug'], noLayerCache: true });
  assert.deepEqual(digests(cold), digests(first));
});
