// The standard images, built from the committed locks against the frozen snapshot, must run:
// unpacked by umoci and chrooted into, on amd64 and (through qemu-user-static) arm64 — and every
// layout must be accepted by skopeo.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, type BuildResult } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { runIn, unpack, whyCannotRun, whyCannotRunArch } from '../helpers/image-run.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const cache = tempDir('distill-build-cache-');
const out = tempDir('distill-build-out-');
const built = new Map<string, BuildResult>();
const layout = (name: string): string => join(out, name);

before(async () => {
  if (skip) return;
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  for (const [name, variants] of [
    ['static', undefined],
    ['base', ['latest'] as const],
    ['cc', ['latest'] as const],
    ['python3', undefined],
    ['nodejs', ['latest', 'debug'] as const],
  ] as const) {
    built.set(name, await buildImage(join(repoRoot, 'images', name, 'image.yaml'), {
      cacheDir: cache,
      mirrors,
      outDir: layout(name),
      ...(variants ? { variants: [...variants] } : {}),
      ...(name === 'static' ? { tarFile: join(out, 'static.tar') } : {}),
    }));
  }
});

test('skopeo accepts every ref of every layout and sees our digests', { skip: skip || (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0 && 'skopeo is not installed') }, () => {
  for (const [name, result] of built) {
    for (const v of result.variants) {
      const raw = spawnSync('skopeo', ['inspect', '--raw', `oci:${layout(name)}:${v.variant}`], { encoding: 'utf8' });
      assert.equal(raw.status, 0, raw.stderr);
      assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, v.index, `${name}:${v.variant} index bytes`);
      for (const m of v.manifests) {
        const r = spawnSync('skopeo', ['inspect', `oci:${layout(name)}:${v.variant}-${m.arch}`], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        const info = JSON.parse(r.stdout);
        assert.equal(info.Digest, m.digest);
        assert.equal(info.Architecture, m.arch);
        assert.deepEqual(info.Layers, m.layers.map((l) => l.digest));
      }
    }
  }
  const d = spawnSync('skopeo', ['inspect', `docker-archive:${join(out, 'static.tar')}:distill/static:latest-amd64`], { encoding: 'utf8' });
  assert.equal(d.status, 0, d.stderr);
  assert.equal(JSON.parse(d.stdout).Architecture, 'amd64');
});


test('base layers are shared byte for byte by every image built on them', { skip }, () => {
  const staticLayer = built.get('static')!.variants.find((v) => v.variant === 'latest')!.manifests.find((m) => m.arch === 'amd64')!.layers[0]!;
  const py = built.get('python3')!.variants.find((v) => v.variant === 'latest')!.manifests.find((m) => m.arch === 'amd64')!;
  const cc = built.get('cc')!.variants[0]!.manifests.find((m) => m.arch === 'amd64')!;
  assert.equal(py.layers[0]!.digest, staticLayer.digest);
  assert.deepEqual(py.layers.slice(0, 4).map((l) => l.digest), cc.layers.map((l) => l.digest));
  assert.deepEqual(py.layers.map((l) => l.image), ['static', 'base-nossl', 'base', 'cc', 'python3']);
});

test('python3 is smaller, compressed, than distroless\'s ≈50 MB', { skip }, () => {
  const py = built.get('python3')!.variants.find((v) => v.variant === 'latest')!.manifests.find((m) => m.arch === 'amd64')!;
  const size = py.layers.reduce((n, l) => n + l.size, 0);
  assert.ok(size < 50e6, `python3 latest amd64 is ${size} bytes compressed`);
});

test('static has accounts, time zones and the CA bundle, and no libc', { skip: skip || whyCannotRun() }, () => {
  const root = unpack(layout('static'), 'latest-amd64');
  assert.match(readFileSync(join(root, 'etc', 'passwd'), 'utf8'), /^root:x:0:0:root:\/root:\/sbin\/nologin\nnobody:x:65534:65534:nobody:\/nonexistent:\/sbin\/nologin\nnonroot:x:65532:65532:nonroot:\/home\/nonroot:\/sbin\/nologin\n$/);
  assert.ok(existsSync(join(root, 'usr', 'share', 'zoneinfo', 'Europe', 'Paris')));
  const bundle = readFileSync(join(root, 'etc', 'ssl', 'certs', 'ca-certificates.crt'), 'utf8');
  assert.ok((bundle.match(/BEGIN CERTIFICATE/g) ?? []).length > 100);
  assert.ok(!existsSync(join(root, 'usr', 'lib', 'x86_64-linux-gnu', 'libc.so.6')));
  assert.equal(statSync(join(root, 'tmp')).mode & 0o7777, 0o1777);
  assert.equal(statSync(join(root, 'home', 'nonroot')).uid, 65532);
  assert.ok(existsSync(join(root, 'var', 'lib', 'dpkg', 'status.d', 'tzdata')));
  assert.ok(!existsSync(join(root, 'usr', 'share', 'man')), 'man pages are dropped');
  assert.ok(existsSync(join(root, 'usr', 'share', 'doc', 'tzdata', 'copyright')), 'copyright is kept');
});

for (const arch of ['amd64', 'arm64']) {
  const why = skip || whyCannotRunArch(arch);
  test(`python3 (${arch}) runs: ssl, sqlite3, json, zlib, ctypes, decimal and a default SSL context`, { skip: why }, () => {
    const root = unpack(layout('python3'), `latest-${arch}`);
    const r = runIn(root, ['/usr/bin/python3.13', '-c', 'import ssl, sqlite3, json, zlib, ctypes, decimal, os; c = ssl.create_default_context(); print(len(c.get_ca_certs()), os.getuid())']);
    assert.equal(r.code, 0, r.stderr);
    const [certs, uid] = r.stdout.trim().split(' ').map(Number);
    assert.ok(certs! > 100, `CA bundle loaded: ${r.stdout}`);
    assert.equal(uid, 0);
  });
  test(`python3 nonroot and debug variants (${arch})`, { skip: why }, () => {
    const nonroot = unpack(layout('python3'), `nonroot-${arch}`);
    const r = runIn(nonroot, ['/usr/bin/python3', '-c', 'import os; open("/home/nonroot/x", "w").write("ok"); print(os.getuid())'], { uid: 65532 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), '65532');
    const debug = unpack(layout('python3'), `debug-nonroot-${arch}`);
    const d = runIn(debug, ['/busybox/sh', '-c', 'id -u && ls /busybox/sh && python3 -c "print(40 + 2)"'], { uid: 65532 });
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.stdout, '65532\n/busybox/sh\n42\n');
  });
  test(`base's openssl and nodejs run (${arch})`, { skip: why }, () => {
    const base = runIn(unpack(layout('base'), `latest-${arch}`), ['/usr/bin/openssl', 'version']);
    assert.equal(base.code, 0, base.stderr);
    assert.match(base.stdout, /^OpenSSL 3\./);
    const node = runIn(unpack(layout('nodejs'), `latest-${arch}`), ['/usr/bin/node', '-e', 'const tls = require("tls"); tls.createSecureContext(); console.log(process.version, tls.rootCertificates.length > 100)']);
    assert.equal(node.code, 0, node.stderr);
    assert.match(node.stdout, /^v20\.\d+\.\d+ true\n$/);
  });
}

test('static debug: /busybox/sh runs', { skip: skip || whyCannotRun() }, () => {
  const r = runIn(unpack(layout('static'), 'debug-amd64'), ['/busybox/sh', '-c', 'echo hello; ls /etc/passwd']);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'hello\n/etc/passwd\n');
});
