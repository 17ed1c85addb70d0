// Docker Engine, for real: a private dockerd (test/helpers/docker.ts) loads distill's docker archive,
// runs python3 as a distroless user would (root, nonroot, the debug shell), shows in `docker inspect`
// exactly the config distill wrote, and pulls the multi-arch index distill pushed to a loopback
// registry (docker treats 127.0.0.0/8 as an insecure registry by default: plain HTTP, no flag) —
// the amd64 image by the index digest, and arm64 under qemu-user-static when binfmt has it.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { sha256Hex, toDigest } from '../../src/digest.js';
import { inspectSource } from '../../src/inspect.js';
import { openSource } from '../../src/source.js';
import { tempDir } from '../helpers/tmp.js';
import { startDocker, whyNoDocker, DOCKER_RUN_LIMITS, type RunningDocker } from '../helpers/docker.js';
import { NO_SNAPSHOT, snapshotDir } from '../helpers/paths.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import {
  ARCHES, PYTHON_CHECK, PYTHON_FOREIGN_CHECK, VARIANTS, buildRuntimeImages, expectedCheck, expectedForeignCheck, nativeArch, pushRuntimeImages, whyNoForeignArch,
  type RuntimeImages,
} from '../helpers/runtime-images.js';

const snap = snapshotDir();
const native = nativeArch();
// Known before anything starts: the test option. Known only once the daemon starts (or not): `unusable`.
const skip: string | false = snap === undefined ? NO_SNAPSHOT : whyNoDocker() || (native === undefined && `no image is built for this machine's architecture (${process.arch})`);
const registrySkip = needsRegistry().skip;
let unusable: string | undefined;
let images: RuntimeImages;
let engine: RunningDocker | undefined;
let registry: RunningRegistry | undefined;

before(async () => {
  if (skip) return;
  const [built, started] = await Promise.all([
    buildRuntimeImages(snap!),
    startDocker().catch((e: Error) => e.message),
  ]);
  images = built;
  if (typeof started === 'string') unusable = started;
  else engine = started;
  if (!registrySkip) {
    registry = await startRegistry();
    await pushRuntimeImages(images, `${registry.host}/distill/python3`);
  }
});

after(async () => {
  await engine?.stop();
  await registry?.stop();
});

/** `docker …`, asserting success. */
function docker(...args: string[]): string {
  const r = engine!.docker(args);
  assert.equal(r.status, 0, `docker ${args.join(' ')}: ${r.stderr}${r.error ? ` ${r.error.message}` : ''}`);
  return r.stdout;
}

const run = (...args: string[]): string => docker('run', '--rm', '--network', 'none', ...DOCKER_RUN_LIMITS, ...args);

test('docker load reads the archive: every <variant>-<arch> tag, each image ID the config digest distill wrote', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  const out = docker('load', '-i', images.archive);
  const loaded = out.trim().split('\n').map((l) => l.replace(/^Loaded image: /, '')).sort();
  const tags = VARIANTS.flatMap((v) => ARCHES.map((a) => `distill/python3:${v}-${a}`)).sort();
  assert.deepEqual(loaded, tags, out);
  for (const v of VARIANTS) {
    for (const a of ARCHES) {
      const [info] = JSON.parse(docker('image', 'inspect', `distill/python3:${v}-${a}`));
      const c = images.config(v, a);
      assert.equal(info.Id, c.digest, `${v}-${a}`);
      assert.deepEqual([info.Architecture, info.Os, info.Variant], [c.json.architecture, c.json.os, c.json.variant], `${v}-${a}`);
    }
  }
});

test('docker inspect shows the config distill wrote: Entrypoint, Cmd, Env, User, WorkingDir, Labels', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  for (const v of VARIANTS) {
    for (const a of ARCHES) {
      const [info] = JSON.parse(docker('image', 'inspect', `distill/python3:${v}-${a}`));
      const ours = images.config(v, a).json.config;
      // Docker shows a field the config leaves out as null.
      for (const k of ['Entrypoint', 'Cmd', 'Env', 'Labels'] as const) assert.deepEqual(info.Config[k], ours[k] ?? null, `${v}-${a} ${k}`);
      for (const k of ['User', 'WorkingDir'] as const) assert.equal(info.Config[k], ours[k] ?? '', `${v}-${a} ${k}`);
    }
  }
  // And what distroless sets: root / nonroot users, python3 as the entrypoint, the debug PATH.
  const cfg = (v: string) => JSON.parse(docker('image', 'inspect', '--format', '{{json .Config}}', `distill/python3:${v}-${native}`));
  assert.deepEqual([cfg('latest').User, cfg('latest').WorkingDir, cfg('latest').Entrypoint], ['0', '/', ['/usr/bin/python3.13']]);
  assert.deepEqual([cfg('nonroot').User, cfg('nonroot').WorkingDir], ['65532', '/home/nonroot']);
  assert.ok(cfg('debug').Env.includes('PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox'));
});

test('docker run python3: TLS default context, zoneinfo, /etc/passwd, HOME/PATH/SSL_CERT_FILE/LANG and the workdir, as root', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  assert.equal(run(`distill/python3:latest-${native}`, '-c', PYTHON_CHECK), expectedCheck('latest', native!));
});

test('docker run python3 nonroot: uid and gid 65532, HOME /home/nonroot, and it may write there', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  assert.equal(run(`distill/python3:nonroot-${native}`, '-c', PYTHON_CHECK), expectedCheck('nonroot', native!));
  assert.equal(run(`distill/python3:nonroot-${native}`, '-c', 'import os; open("/home/nonroot/x", "w").write("ok"); print(open("/home/nonroot/x").read(), os.stat("/home/nonroot").st_uid)'), 'ok 65532\n');
});

test('docker run debug: --entrypoint sh is BusyBox\'s shell on PATH; the image\'s own entrypoint is python3', { skip }, (t) => {
  if (unusable) return t.skip(unusable);
  const sh = run('--entrypoint', 'sh', `distill/python3:debug-${native}`, '-c', 'which sh; id -u; busybox | head -1; python3 -c "print(40 + 2)"');
  assert.match(sh, /^\/busybox\/sh\n0\nBusyBox v1\.\d+\.\d+ .*\n42\n$/);
  assert.equal(run(`distill/python3:debug-${native}`, '-c', 'import os; print(os.path.exists("/busybox/sh"))'), 'True\n');
});

test('docker save of a loaded image reads back in distill (docker-archive:): distill\'s config, its packages from the layers Docker re-tarred', { skip }, async (t) => {
  if (unusable) return t.skip(unusable);
  const saved = join(tempDir('distill-docker-save-'), 'saved.tar');
  docker('save', '-o', saved, `distill/python3:nonroot-${native}`);
  const opened = await openSource(`docker-archive:${saved}`);
  try {
    const a = opened.artifact;
    assert.ok(!('images' in a), 'one image');
    if ('images' in a) return;
    assert.equal(toDigest(sha256Hex(a.config.bytes)), images.config('nonroot', native!).digest);
    assert.equal(a.platform?.architecture, native);
  } finally {
    await opened.close();
  }
  // Docker saves each layer as the plain tar it unpacked: inspect reads every one, checks it against
  // the config's diff ID, and finds the packages distill recorded.
  const [ref] = await inspectSource(`docker-archive:${saved}`, { packages: true });
  const pkgs = new Set(ref!.images[0]!.packages?.map((p) => p.name));
  for (const p of ['libc6', 'libssl3t64', 'python3.13-minimal', 'tzdata', 'ca-certificates']) assert.ok(pkgs.has(p), `${p} in ${[...pkgs].join(' ')}`);
});

test('docker pull of the multi-arch index distill pushed: this platform\'s image, RepoDigests = the index digest, and it runs', { skip: skip || registrySkip }, (t) => {
  if (unusable) return t.skip(unusable);
  // Start from an empty image store, so every layer really comes from the registry.
  const ids = docker('images', '-aq').trim().split('\n').filter(Boolean);
  if (ids.length > 0) docker('rmi', '-f', ...new Set(ids));
  assert.equal(docker('images', '-aq').trim(), '');
  const repo = `${registry!.host}/distill/python3`;
  for (const v of ['latest', 'nonroot'] as const) {
    const out = docker('pull', `${repo}:${v}`);
    assert.match(out, new RegExp(`Digest: ${images.index(v)}`), out);
    const [info] = JSON.parse(docker('image', 'inspect', `${repo}:${v}`));
    assert.deepEqual(info.RepoDigests, [`${repo}@${images.index(v)}`]);
    assert.equal(info.Id, images.config(v, native!).digest);
    assert.equal(info.Architecture, native);
    assert.equal(run(`${repo}@${images.index(v)}`, '-c', PYTHON_CHECK), expectedCheck(v, native!));
  }
});

const foreign = ARCHES.find((a) => a !== native) ?? 'arm64';
test(`docker pull --platform of the other architecture (${foreign}) from the same index, run under qemu-user-static`, { skip: skip || registrySkip || whyNoForeignArch(foreign) }, (t) => {
  if (unusable) return t.skip(unusable);
  const repo = `${registry!.host}/distill/python3`;
  // Docker keeps one image per digest reference and never moves one ("Image ID for digest … changed,
  // cannot update"): the native image pulled above holds repo@<index digest> until it is removed.
  const native = images.config('nonroot', nativeArch()!).digest;
  if (engine!.docker(['image', 'inspect', native]).status === 0) docker('rmi', '-f', native);
  docker('pull', '--platform', `linux/${foreign}`, `${repo}:nonroot`);
  const [info] = JSON.parse(docker('image', 'inspect', `${repo}:nonroot`));
  assert.equal(info.Id, images.config('nonroot', foreign).digest);
  assert.equal(info.Architecture, foreign);
  assert.deepEqual(info.RepoDigests, [`${repo}@${images.index('nonroot')}`]);
  assert.equal(run('--platform', `linux/${foreign}`, `${repo}:nonroot`, '-c', PYTHON_FOREIGN_CHECK), expectedForeignCheck('nonroot', foreign));
});
