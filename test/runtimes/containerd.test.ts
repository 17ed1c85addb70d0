// containerd, for real: a private containerd (test/helpers/containerd.ts) imports distill's archive
// through both of its halves — the OCI layout (index.json, what `ctr images import` reads first) and,
// with index.json taken out, the docker manifest.json — for this host's platform and for all, pulls the
// multi-arch index distill pushed to a loopback registry over plain HTTP, and runs python3 from each
// with `ctr run` as a distroless user would: root, nonroot, the debug shell, and arm64 under
// qemu-user-static when binfmt has it. Each part in a namespace of its own.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startContainerd, whyNoContainerd, type RunningContainerd } from '../helpers/containerd.js';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import {
  ARCHES, PYTHON_CHECK, PYTHON_FOREIGN_CHECK, VARIANTS, buildRuntimeImages, expectedCheck, expectedForeignCheck, nativeArch, pushRuntimeImages, whyNoForeignArch,
  type RuntimeImages,
} from '../helpers/runtime-images.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const native = nativeArch();
// Known before anything starts: the test option. Known only once the daemon starts (or not): `unusable`.
const skip: string | false = snap === undefined ? NO_SNAPSHOT : whyNoContainerd() || (native === undefined && `no image is built for this machine's architecture (${process.arch})`);
const registrySkip = needsRegistry().skip;
let unusable: string | undefined;
let images: RuntimeImages;
let daemon: RunningContainerd | undefined;
let registry: RunningRegistry | undefined;

before(async () => {
  if (skip) return;
  const [built, started] = await Promise.all([
    buildRuntimeImages(snap!),
    startContainerd().catch((e: Error) => e.message),
  ]);
  images = built;
  if (typeof started === 'string') unusable = started;
  else daemon = started;
  if (!registrySkip) {
    registry = await startRegistry();
    await pushRuntimeImages(images, `${registry.host}/distill/python3`);
  }
});

after(async () => {
  await daemon?.stop();
  await registry?.stop();
});

/** `ctr …` in a namespace, asserting success. */
function ctr(ns: string, args: string[]): string {
  const r = daemon!.ctr(ns, args);
  assert.equal(r.status, 0, `ctr ${args.join(' ').slice(0, 200)}: ${r.stdout.slice(-500)}${r.stderr}${r.error ? ` ${r.error.message}` : ''}`);
  return r.stdout;
}

/** `ctr images ls` (or `check`) as ref → [type, digest, the whole line]. */
function listing(ns: string, what: 'ls' | 'check'): Map<string, { type: string; digest: string; line: string }> {
  const lines = ctr(ns, ['images', what]).trim().split('\n').slice(1);
  return new Map(lines.map((l) => {
    const [ref, type, digest] = l.split(/\s+/);
    return [ref!, { type: type!, digest: digest!, line: l }];
  }));
}

let runs = 0;
/**
 * `ctr run --rm IMAGE ID ARGS…` (a fresh container id each time). ctr's arguments replace the image's
 * entrypoint and cmd, so these name the program; the config's Env, User and WorkingDir apply. (ctr
 * never closes a container's stdin, so a script cannot be piped to the entrypoint.) A container left
 * running by a failure is killed.
 */
function run(ns: string, ref: string, args: string[], platform?: string): string {
  const id = `distill-test-${process.pid}-${++runs}`;
  const flags = ['--runc-root', daemon!.runcRoot, '--fifo-dir', daemon!.fifoDir, ...(platform !== undefined ? ['--platform', platform] : [])];
  const r = daemon!.ctr(ns, ['run', '--rm', ...flags, ref, id, ...args]);
  if (r.status !== 0) {
    daemon!.ctr(ns, ['tasks', 'kill', '-s', 'SIGKILL', id], { timeoutMs: 10_000 });
    daemon!.ctr(ns, ['tasks', 'delete', '-f', id], { timeoutMs: 10_000 });
    daemon!.ctr(ns, ['containers', 'delete', id], { timeoutMs: 10_000 });
  }
  assert.equal(r.status, 0, `ctr run ${ref} ${args.join(' ').slice(0, 100)}: ${r.stdout.slice(-500)}${r.stderr}${r.error ? ` ${r.error.message}` : ''}`);
  return r.stdout;
}

const python = (script: string): string[] => ['/usr/bin/python3', '-c', script];

/** Every image distill named in the archive, as containerd names it, with the digest it must have. */
function archiveNames(): Map<string, { type: string; digest: string }> {
  const names = new Map<string, { type: string; digest: string }>();
  for (const v of VARIANTS) {
    names.set(`docker.io/distill/python3:${v}`, { type: 'application/vnd.oci.image.index.v1+json', digest: images.index(v) });
    for (const a of ARCHES) names.set(`docker.io/distill/python3:${v}-${a}`, { type: 'application/vnd.oci.image.manifest.v1+json', digest: images.manifest(v, a) });
  }
  return names;
}

test('ctr images import (this platform only, the default) reads the archive\'s index.json: every name distill wrote, its digest, complete and unpacked', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  // Before the fix in sinks/docker-archive.ts this failed on the arm64-named images:
  // "ctr: failed to resolve rootfs: content digest sha256:<arm64 config>: not found".
  ctr('import', ['images', 'import', images.archive]);
  const ls = listing('import', 'ls');
  const want = archiveNames();
  assert.deepEqual([...ls.keys()].sort(), [...want.keys()].sort());
  for (const [ref, w] of want) assert.deepEqual([ls.get(ref)!.type, ls.get(ref)!.digest], [w.type, w.digest], ref);
  for (const [ref, c] of listing('import', 'check')) assert.match(c.line, /\scomplete \(\d+\/\d+\)\s.*\strue$/, `${ref}: ${c.line}`);
  assert.equal(run('import', 'docker.io/distill/python3:latest', python(PYTHON_CHECK)), expectedCheck('latest', native!));
});

test('containerd makes the container spec from distill\'s config: Entrypoint + Cmd, Env, User, WorkingDir', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  for (const v of VARIANTS) {
    const id = `distill-spec-${v}`;
    ctr('import', ['containers', 'create', `docker.io/distill/python3:${v}`, id]);
    try {
      const spec = JSON.parse(ctr('import', ['containers', 'info', '--spec', id]));
      const config = images.config(v, native!).json.config;
      assert.deepEqual(spec.process.args, [...(config.Entrypoint ?? []), ...(config.Cmd ?? [])], v);
      for (const e of config.Env ?? []) assert.ok(spec.process.env.includes(e), `${v}: ${e} not in ${spec.process.env}`);
      assert.equal(String(spec.process.user.uid), config.User, v);
      assert.equal(spec.process.cwd, config.WorkingDir, v);
    } finally {
      ctr('import', ['containers', 'delete', id]);
    }
  }
});

test('ctr run of the imported images: python3 as root and as nonroot (65532, may write its home), the debug variant\'s BusyBox shell', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  assert.equal(run('import', `docker.io/distill/python3:nonroot-${native}`, python(PYTHON_CHECK)), expectedCheck('nonroot', native!));
  assert.equal(run('import', 'docker.io/distill/python3:nonroot', python('import os; open("/home/nonroot/x", "w").write("ok"); print(open("/home/nonroot/x").read(), os.getuid())')), 'ok 65532\n');
  const sh = run('import', 'docker.io/distill/python3:debug', ['sh', '-c', 'which sh; id -u; echo $PATH; python3 -c "print(40 + 2)"']);
  assert.equal(sh, '/busybox/sh\n0\n/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox\n42\n');
});

test('ctr images import --all-platforms: every blob of the archive in the content store, every image complete', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  ctr('import-all', ['images', 'import', '--all-platforms', images.archive]);
  const ls = listing('import-all', 'ls');
  for (const [ref, w] of archiveNames()) assert.equal(ls.get(ref)?.digest, w.digest, ref);
  const content = new Set(ctr('import-all', ['content', 'ls', '-q']).trim().split('\n'));
  const blobs = readdirSync(join(images.layout, 'blobs', 'sha256')).map((h) => `sha256:${h}`);
  // The layout also holds what only a layout carries (SBOM and provenance attachments are not blobs
  // of any image): every blob an image of the archive names must be there.
  const named = new Set<string>();
  for (const v of VARIANTS) {
    named.add(images.index(v));
    for (const a of ARCHES) {
      named.add(images.manifest(v, a));
      named.add(images.config(v, a).digest);
    }
  }
  for (const d of named) assert.ok(content.has(d), `${d} is not in the content store`);
  assert.ok(blobs.filter((b) => content.has(b)).length >= named.size);
  for (const [ref, c] of listing('import-all', 'check')) assert.match(c.line, /\scomplete \(\d+\/\d+\)/, `${ref}: ${c.line}`);
});

test('ctr images import of the archive\'s docker half (manifest.json, index.json taken out): each RepoTag, the same config and layers, and it runs', { skip: skip || (spawnSync('tar', ['--version']).status !== 0 && 'GNU tar is not installed') }, (t) => {
  if (unusable) return t.skip(unusable);
  const docker = join(tempDir('distill-ctr-docker-'), 'docker-only.tar');
  copyFileSync(images.archive, docker);
  // -b 1: GNU tar 1.34's --delete, reading in 10 KiB records, drops the members after the deleted one
  // when the archive ends in a short record — as Go's archive/tar (docker save) and distill write them.
  const del = spawnSync('tar', ['-b', '1', '--delete', '-f', docker, 'index.json', 'oci-layout'], { encoding: 'utf8' });
  assert.equal(del.status, 0, del.stderr);
  // --all-platforms: from a manifest.json containerd builds an index of its own, giving each image the
  // platform of its config, and then (like any pre-25 `docker save` of a foreign image) fails
  // unpacking the arm64 images whose content that platform filter left out. The archive's own
  // index.json (the tests above) names them without a platform, so there a plain import works.
  ctr('docker-v1', ['images', 'import', '--all-platforms', docker]);
  const ls = listing('docker-v1', 'ls');
  assert.deepEqual([...ls.keys()].sort(), VARIANTS.flatMap((v) => ARCHES.map((a) => `docker.io/distill/python3:${v}-${a}`)).sort());
  // containerd makes a Docker schema 2 manifest of its own from manifest.json; the config is ours.
  for (const v of VARIANTS) {
    for (const a of ARCHES) {
      const ref = `docker.io/distill/python3:${v}-${a}`;
      const manifest = JSON.parse(ctr('docker-v1', ['content', 'get', ls.get(ref)!.digest]));
      assert.equal(manifest.config.digest, images.config(v, a).digest, ref);
    }
  }
  assert.equal(run('docker-v1', `docker.io/distill/python3:latest-${native}`, python(PYTHON_CHECK)), expectedCheck('latest', native!));
});

test('ctr images pull --plain-http of the multi-arch index distill pushed: the index digest distill reported, this platform unpacked, and it runs', { skip: skip || registrySkip }, (t) => {
  if (unusable) return t.skip(unusable);
  const repo = `${registry!.host}/distill/python3`;
  for (const v of ['latest', 'nonroot'] as const) {
    ctr('pull', ['images', 'pull', '--plain-http', `${repo}:${v}`]);
    const entry = listing('pull', 'ls').get(`${repo}:${v}`);
    assert.deepEqual([entry?.type, entry?.digest], ['application/vnd.oci.image.index.v1+json', images.index(v)]);
    assert.match(entry!.line, /linux\/amd64,linux\/arm64\/v8/);
    assert.match(listing('pull', 'check').get(`${repo}:${v}`)!.line, /\scomplete \(\d+\/\d+\)\s.*\strue$/);
    assert.equal(run('pull', `${repo}:${v}`, python(PYTHON_CHECK)), expectedCheck(v, native!));
  }
});

test('--compression zstd: ctr images import of the archive and ctr run (containerd reads tar+zstd layers)', { skip }, async (t) => {
  if (unusable) return t.skip(unusable);
  const tar = join(tempDir('distill-ctr-zstd-'), 'python3-zstd.tar');
  const z = await buildImage(join(repoRoot, 'images', 'python3', 'image.yaml'), {
    cacheDir: images.cacheDir,
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    tarFile: tar,
    variants: ['latest'],
    platforms: [native!],
    compression: 'zstd',
  });
  ctr('zstd', ['images', 'import', tar]);
  const manifest = JSON.parse(ctr('zstd', ['content', 'get', z.variants[0]!.manifests[0]!.digest]));
  assert.deepEqual([...new Set(manifest.layers.map((l: { mediaType: string }) => l.mediaType))], ['application/vnd.oci.image.layer.v1.tar+zstd']);
  assert.equal(listing('zstd', 'ls').get(`docker.io/distill/python3:latest-${native}`)?.digest, z.variants[0]!.manifests[0]!.digest);
  assert.equal(run('zstd', `docker.io/distill/python3:latest-${native}`, python(PYTHON_CHECK)), expectedCheck('latest', native!));
});

const foreign = ARCHES.find((a) => a !== native) ?? 'arm64';
test(`ctr images pull --platform linux/${foreign} of the same index, ctr run --platform under qemu-user-static`, { skip: skip || registrySkip || whyNoForeignArch(foreign) }, (t) => {
  if (unusable) return t.skip(unusable);
  const repo = `${registry!.host}/distill/python3`;
  ctr('pull-foreign', ['images', 'pull', '--plain-http', '--platform', `linux/${foreign}`, `${repo}:nonroot`]);
  assert.equal(listing('pull-foreign', 'ls').get(`${repo}:nonroot`)?.digest, images.index('nonroot'));
  assert.equal(run('pull-foreign', `${repo}:nonroot`, python(PYTHON_FOREIGN_CHECK), `linux/${foreign}`), expectedForeignCheck('nonroot', foreign));
});

test('a default ctr images export (this platform only) is named as a single-platform export; append --platform reads it', { skip }, async (t) => {
  if (unusable) return t.skip(unusable);
  ctr('export', ['images', 'import', '--all-platforms', images.archive]);
  const out = join(tempDir('distill-ctr-export-'), 'exported.tar');
  // Without --all-platforms ctr writes the whole index but only this machine's manifest and blobs.
  ctr('export', ['images', 'export', out, 'docker.io/distill/python3:latest']);
  const { openSource } = await import('../../src/source.js');
  const { appendImage } = await import('../../src/append.js');
  await assert.rejects(openSource(out), (e: any) => e.code === 'OCI_INVALID' && /single-platform export/.test(e.message) && e.message.includes(`it holds: linux/${native}`));
  const app = tempDir('distill-ctr-export-app-');
  const { writeFileSync } = await import('node:fs');
  writeFileSync(join(app, 'main.py'), 'print("appended")\n');
  const r = await appendImage(out, { layers: [`${app}:/app`], platforms: [`linux/${native}`], out: join(tempDir('distill-ctr-export-out-'), 'layout') });
  assert.equal(r.manifests.length, 1);
  assert.equal(r.manifests[0]!.platform?.architecture, native);
  assert.equal(r.base.digest, images.index('latest'), 'the base is the exported index, as ctr wrote it');
});
