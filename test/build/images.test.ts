// The standard images, built from the committed locks against the frozen snapshot, must run:
// unpacked by umoci and chrooted into, on amd64 and (through qemu-user-static) arm64 — and every
// layout must be accepted by skopeo.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuildResult } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { imageConfigOf, removeUnpacked, runAsConfigured, runIn, unpack, whyCannotRun, whyCannotRunArch } from '../helpers/image-run.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const cache = mkdtempSync(join(tmpdir(), 'distill-build-cache-'));
const out = mkdtempSync(join(tmpdir(), 'distill-build-out-'));
const built = new Map<string, BuildResult>();
const layout = (name: string): string => join(out, name);

before(async () => {
  if (skip) return;
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  for (const [name, variants] of [
    ['static', undefined],
    ['base', ['latest', 'debug'] as const],
    ['cc', ['latest', 'debug'] as const],
    ['python3', undefined],
    ['nodejs', ['latest', 'debug'] as const],
  ] as const) {
    built.set(name, await buildImage(join(repoRoot, 'images', name, 'image.yaml'), {
      cacheDir: cache,
      mirrors,
      outDir: layout(name),
      ...(variants ? { variants: [...variants] } : {}),
      ...(name === 'static' || name === 'python3' ? { tarFile: join(out, `${name}.tar`) } : {}),
    }));
  }
});

after(() => {
  removeUnpacked();
  rmSync(cache, { recursive: true, force: true });
  rmSync(out, { recursive: true, force: true });
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

// ---- what distroless's own image tests check, run inside the built images ----

const PY_VERSION = /^Python 3\.13\.\d+\n$/;

test('python3: /usr/bin/python and /usr/bin/python3 run python3.13 in every variant', { skip: skip || whyCannotRun() }, () => {
  for (const variant of ['latest', 'nonroot', 'debug', 'debug-nonroot']) {
    const root = unpack(layout('python3'), `${variant}-amd64`);
    const uid = variant.includes('nonroot') ? 65532 : 0;
    for (const bin of ['/usr/bin/python', '/usr/bin/python3']) {
      const r = runIn(root, [bin, '--version'], { uid });
      assert.equal(r.code, 0, `${variant} ${bin}: ${r.stderr}`);
      assert.match(r.stdout, PY_VERSION, `${variant} ${bin}`);
    }
  }
});

for (const arch of ['amd64', 'arm64']) {
  test(`python3 (${arch}): the C.utf8 locale loads under the image's LANG, UTF-8 file names and output work, no shell`, { skip: skip || whyCannotRunArch(arch) }, () => {
    const root = unpack(layout('python3'), `latest-${arch}`);
    const config = imageConfigOf(layout('python3'), `latest-${arch}`);
    assert.ok(config.Env?.includes('LANG=C.UTF-8'), `config env: ${config.Env}`);
    const r = runAsConfigured(root, config, {
      cmd: ['-c', [
        'import locale, os, subprocess, sys',
        'print(locale.setlocale(locale.LC_ALL, ""), sys.getfilesystemencoding(), sys.stdout.encoding)',
        'open("/tmp/h\\xe9llo.txt", "w").write("\\xe9")',
        'print(os.listdir("/tmp"), open("/tmp/h\\xe9llo.txt").read())',
        // No /bin/sh: a shell command fails (OSError natively, exit 127 under qemu-user).
        'try:\n  print("a shell ran" if subprocess.call("true", shell=True) == 0 else "no shell")\nexcept OSError: print("no shell")',
      ].join('\n')],
    });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, "C.UTF-8 utf-8 utf-8\n['héllo.txt'] é\nno shell\n");
  });
}

test('python3: every module of the standard library the image ships imports', { skip: skip || whyCannotRun() }, () => {
  const root = unpack(layout('python3'), 'latest-amd64');
  // Our own walk, skipping what distroless's check skips too: modules that only load on Windows or
  // iOS, need libraries the image does not ship (dbm.gnu, turtle's tkinter), exit when imported, or
  // are CPython's own test suite.
  const script = [
    'import pkgutil, sys',
    'skip = {"asyncio.windows_events", "asyncio.windows_utils", "ctypes.wintypes", "encodings.mbcs", "encodings.oem",',
    '        "encodings.cp65001", "multiprocessing.popen_spawn_win32", "_pyrepl.windows_console", "winreg", "_ios_support",',
    '        "_pyrepl._minimal_curses", "_distutils_system_mod", "unittest.__main__", "venv.__main__", "dbm.gnu", "turtle",',
    '        "lib2to3", "test"}',
    'def onerror(name): raise SystemExit(f"cannot walk {name}")',
    'n = 0',
    'for m in pkgutil.walk_packages(onerror=onerror):',
    '    if m.name in skip or m.name.split(".")[0] in skip: continue',
    '    __import__(m.name); n += 1',
    'print(n)',
  ].join('\n');
  const r = runIn(root, ['/usr/bin/python3', '-c', script], { env: { LANG: 'C.UTF-8' } });
  assert.equal(r.code, 0, r.stderr.slice(-2000));
  assert.ok(Number(r.stdout.trim().split('\n').pop()) > 500, `modules imported: ${r.stdout.slice(-200)}`);
});

test('nodejs: node runs and handles UTF-8 file names; corepack, npm and npx are not shipped', { skip: skip || whyCannotRun() }, () => {
  const root = unpack(layout('nodejs'), 'latest-amd64');
  for (const absent of ['usr/bin/corepack', 'usr/share/nodejs/corepack', 'usr/bin/npm', 'usr/bin/npx', 'usr/share/nodejs/npm', 'usr/lib/node_modules/npm', 'var/lib/dpkg/status.d/node-corepack']) {
    assert.ok(!existsSync(join(root, absent)), `${absent} is shipped`);
  }
  const config = imageConfigOf(layout('nodejs'), 'latest-amd64');
  const r = runAsConfigured(root, config, {
    cmd: ['-e', 'const fs = require("fs"); fs.writeFileSync("/tmp/h\\u00e9llo.txt", "\\u00e9"); console.log(fs.readdirSync("/tmp").join(), fs.readFileSync("/tmp/h\\u00e9llo.txt", "utf8"), process.versions.node.split(".")[0])'],
  });
  assert.equal(r.code, 0, r.stderr);
  assert.equal(r.stdout, 'héllo.txt é 20\n');
});

test('debug variants: static, base and cc start /busybox/sh; python3 and nodejs keep their entrypoint, and --entrypoint /busybox/sh gives a shell', { skip: skip || whyCannotRun() }, () => {
  for (const name of ['static', 'base', 'cc']) {
    const config = imageConfigOf(layout(name), 'debug-amd64');
    assert.deepEqual(config.Entrypoint, ['/busybox/sh'], name);
    const r = runAsConfigured(unpack(layout(name), 'debug-amd64'), config, { cmd: ['-c', 'echo $PATH'] });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /:\/busybox\n$/);
  }
  // FROM python3:debug + CMD ["/app/app.py"] runs the app; as a runtime would, with the config's env.
  const py = imageConfigOf(layout('python3'), 'debug-amd64');
  assert.deepEqual(py.Entrypoint, ['/usr/bin/python3.13']);
  const root = unpack(layout('python3'), 'debug-amd64');
  mkdirSync(join(root, 'app'));
  writeFileSync(join(root, 'app', 'app.py'), 'import os\nprint("app", os.environ["LANG"])\n');
  const app = runAsConfigured(root, py, { cmd: ['/app/app.py'] });
  assert.equal(app.code, 0, app.stderr);
  assert.equal(app.stdout, 'app C.UTF-8\n');
  const sh = runAsConfigured(root, py, { entrypoint: ['/busybox/sh', '-c', 'python /app/app.py && busybox | head -1'] });
  assert.equal(sh.code, 0, sh.stderr);
  assert.match(sh.stdout, /^app C\.UTF-8\nBusyBox v1\.37\.0/);
  const node = imageConfigOf(layout('nodejs'), 'debug-amd64');
  assert.deepEqual(node.Entrypoint, ['/usr/bin/node']);
  const n = runAsConfigured(unpack(layout('nodejs'), 'debug-amd64'), node, { cmd: ['-e', 'console.log(require("fs").existsSync("/busybox/sh"))'] });
  assert.equal(n.code, 0, n.stderr);
  assert.equal(n.stdout, 'true\n');
});

for (const name of ['python3', 'nodejs']) {
  test(`${name}: every status.d md5sums line names a shipped file with that content, and /usr/share/doc/<pkg>/copyright resolves for every package`, { skip: skip || whyCannotRun() }, () => {
    const root = unpack(layout(name), 'debug-amd64');
    const status = join(root, 'var', 'lib', 'dpkg', 'status.d');
    const pkgs = readdirSync(status).filter((f) => !f.endsWith('.md5sums'));
    assert.ok(pkgs.includes('libstdc++6') && pkgs.includes('busybox-static'), pkgs.join());
    // BusyBox's md5sum, inside the image: every listed file exists and matches.
    const r = runIn(root, ['/busybox/sh', '-c', 'cd / && cat /var/lib/dpkg/status.d/*.md5sums | md5sum -c - | grep -cv ": OK$"; for p in $(ls /var/lib/dpkg/status.d | grep -v "\\.md5sums$"); do [ -e /usr/share/doc/$p/copyright ] || echo "no copyright: $p"; done']);
    assert.equal(r.stdout, '0\n', r.stderr);
    assert.ok(!readFileSync(join(status, 'ca-certificates.md5sums'), 'utf8').includes('usr/share/ca-certificates/'));
  });
}

test('--tar: the archive names each variant\'s multi-arch index too (oci-archive:…:latest), and docker-archive still reads it', { skip: skip || (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0 && 'skopeo is not installed') }, () => {
  const tar = join(out, 'python3.tar');
  for (const v of built.get('python3')!.variants) {
    const raw = spawnSync('skopeo', ['inspect', '--raw', `oci-archive:${tar}:${v.variant}`], { encoding: 'utf8', maxBuffer: 1 << 24 });
    assert.equal(raw.status, 0, raw.stderr);
    assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, v.index, `${v.variant} index`);
    const arm = spawnSync('skopeo', ['--override-arch', 'arm64', 'inspect', `oci-archive:${tar}:${v.variant}`], { encoding: 'utf8' });
    assert.equal(arm.status, 0, arm.stderr);
    // skopeo's Digest is the index's (the ref's); the platform chosen from it shows in Architecture and Layers.
    assert.equal(JSON.parse(arm.stdout).Architecture, 'arm64');
    assert.deepEqual(JSON.parse(arm.stdout).Layers, v.manifests.find((m) => m.arch === 'arm64')!.layers.map((l) => l.digest));
  }
  const d = spawnSync('skopeo', ['inspect', `docker-archive:${tar}:distill/python3:debug-arm64`], { encoding: 'utf8' });
  assert.equal(d.status, 0, d.stderr);
  assert.equal(JSON.parse(d.stdout).Architecture, 'arm64');
});

test('podman pulls oci-archive:python3.tar:latest and runs the debug variant with its python entrypoint', { skip: skip || (spawnSync('sh', ['-c', 'command -v podman && command -v runc']).status !== 0 && 'podman or runc is not installed') || whyCannotRun() }, () => {
  const store = mkdtempSync(join(tmpdir(), 'distill-podman-'));
  // A private store (vfs, no daemon) so that nothing of the host's podman is touched; runc and the
  // ulimits are what podman needs on this kind of machine.
  const podman = (...args: string[]) => spawnSync('podman', ['--root', join(store, 'root'), '--runroot', join(store, 'run'), '--storage-driver', 'vfs', '--runtime', 'runc', ...args], { encoding: 'utf8', timeout: 120_000 });
  try {
    const tar = join(out, 'python3.tar');
    const pull = podman('pull', '-q', `oci-archive:${tar}:latest`);
    assert.equal(pull.status, 0, pull.stderr);
    const latest = built.get('python3')!.variants.find((v) => v.variant === 'latest')!;
    const img = podman('image', 'inspect', '--format', '{{.Digest}}', 'docker.io/distill/python3:latest');
    assert.equal(img.stdout.trim(), latest.index, img.stderr); // podman records the multi-arch index it pulled
    const run = podman('run', '--rm', '--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024', `oci-archive:${tar}:debug`, '-c', 'import os; print(os.path.exists("/busybox/sh"), os.environ["LANG"])');
    assert.equal(run.status, 0, run.stderr);
    assert.equal(run.stdout, 'True C.UTF-8\n');
  } finally {
    podman('rmi', '-a', '-f');
    rmSync(store, { recursive: true, force: true });
  }
});
