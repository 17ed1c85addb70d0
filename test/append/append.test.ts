// `distill append`: onto a synthetic layout (no snapshot needed) — base layers untouched, one layer per
// input on every platform, base.name/base.digest, history, provenance with every input's digest,
// same inputs ⇒ same digest, hostile tar paths refused; and end to end: a Python app appended onto
// python3 pulled from a loopback registry, pushed, seen by skopeo, run with umoci + chroot, twice
// with the same digest.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import tar from 'tar-stream';
import { appendImage } from '../../src/append.js';
import { main } from '../../src/cli/main.js';
import { isDistillError } from '../../src/errors.js';
import { readLayoutArtifact } from '../../src/sources/oci-layout.js';
import { imagesOf } from '../../src/oci/model.js';
import { makeTestLayout, needsRegistry, startRegistry } from '../helpers/registry.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { runIn, unpack, whyCannotRun } from '../helpers/image-run.js';

const work = mkdtempSync(join(tmpdir(), 'distill-append-test-'));
after(() => rmSync(work, { recursive: true, force: true }));

function app(dir: string): string {
  mkdirSync(join(dir, 'pkg'), { recursive: true });
  writeFileSync(join(dir, 'main.py'), 'import pkg.greet\nprint(pkg.greet.hello())\n', { mode: 0o644 });
  writeFileSync(join(dir, 'pkg', '__init__.py'), '');
  writeFileSync(join(dir, 'pkg', 'greet.py'), 'def hello():\n    return "hello from an appended layer"\n');
  return dir;
}

async function tarFile(path: string, entries: { name: string; body?: string; type?: 'file' | 'directory' }[]): Promise<void> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) parts.push(c as Buffer);
  })();
  for (const e of entries) pack.entry({ name: e.name, type: e.type ?? 'file', mode: 0o755, mtime: new Date(12345000) }, e.body ?? '');
  pack.finalize();
  await done;
  writeFileSync(path, Buffer.concat(parts));
}

test('append onto a layout index: base layers kept, one new layer per input on every platform, deterministic', async () => {
  const base = join(work, 'base');
  const layout = await makeTestLayout(base, work);
  const src = app(join(work, 'app'));
  const single = join(work, 'VERSION');
  writeFileSync(single, '1.0\n');
  const tarball = join(work, 'extra.tar');
  await tarFile(tarball, [{ name: 'opt/tool', body: '#!/bin/sh\necho tool\n' }]);
  const opts = {
    layers: [`${src}:/app`, `${single}:/etc/app/`, tarball],
    entrypoint: ['/usr/bin/python3', '/app/main.py'],
    env: ['APP_MODE=prod'],
    user: '65532',
    workdir: '/app',
    labels: { 'org.example.team': 'core' },
  };
  const r1 = await appendImage(`${base}:latest`, { ...opts, out: `${join(work, 'out1')}:app`, sourceDateEpoch: 1700000000 });
  const r2 = await appendImage(`${base}:latest`, { ...opts, out: `${join(work, 'out2')}:app`, sourceDateEpoch: 1700000000 });
  assert.equal(r1.digest, r2.digest, 'same inputs, same digest');
  assert.equal(r1.base.digest, layout.index);
  const baseArt = (await readLayoutArtifact(base, 'latest')).artifact;
  const out = await readLayoutArtifact(join(work, 'out1'), 'app');
  assert.equal(out.digest, r1.digest);
  const baseImages = imagesOf(baseArt);
  const outImages = imagesOf(out.artifact);
  assert.equal(outImages.length, baseImages.length);
  for (const [i, img] of outImages.entries()) {
    const b = baseImages[i]!;
    assert.deepEqual(img.platform, b.platform);
    // The base's layers, byte for byte the same descriptors, then ours: the same three on every platform.
    assert.deepEqual(img.layers.slice(0, b.layers.length).map((l) => l.descriptor), b.layers.map((l) => l.descriptor));
    assert.deepEqual(img.layers.slice(b.layers.length).map((l) => l.descriptor.digest), r1.inputs.map((x) => x.layer.digest));
    const m = JSON.parse(img.manifest.bytes.toString());
    assert.equal(m.annotations['org.opencontainers.image.base.digest'], b.manifest.descriptor.digest);
    assert.match(m.annotations['org.opencontainers.image.base.name'], /base:latest$/);
    const c = JSON.parse(img.config.bytes.toString());
    assert.deepEqual(c.config.Entrypoint, opts.entrypoint);
    assert.equal(c.config.Cmd, undefined, 'a new entrypoint resets the base Cmd');
    assert.ok(c.config.Env.includes('APP_MODE=prod'));
    assert.equal(c.config.User, '65532');
    assert.equal(c.config.Labels['org.example.team'], 'core');
    assert.equal(c.created, '2023-11-14T22:13:20Z');
    assert.equal(c.rootfs.diff_ids.length, b.layers.length + 3);
    assert.equal(c.history.filter((h: { empty_layer?: boolean }) => !h.empty_layer).length, c.rootfs.diff_ids.length);
  }
  // Provenance: the base digest and each input's digest (a file's and a tar's sha256).
  const deps = (r1.provenance['buildDefinition'] as { resolvedDependencies: { digest: { sha256: string } }[] }).resolvedDependencies;
  assert.equal(`sha256:${deps[0]!.digest.sha256}`, layout.index);
  assert.equal(deps[2]!.digest.sha256, createHash('sha256').update('1.0\n').digest('hex'));
  assert.equal(deps[3]!.digest.sha256, createHash('sha256').update(readFileSync(tarball)).digest('hex'));
  JSON.parse(readFileSync(join(work, 'out1', 'attestations', 'app.append.provenance.json'), 'utf8'));

  // The appended tar: sorted, 0:0, every mtime the epoch, parents present.
  const layer = outImages[0]!.layers.at(-3)!;
  const { openUncompressed } = await import('../../src/oci/model.js');
  const ex = tar.extract();
  const seen: { name: string; uid: number; mtime: number }[] = [];
  const reading = (async () => {
    for await (const e of ex) {
      seen.push({ name: e.header.name, uid: e.header.uid ?? -1, mtime: (e.header.mtime?.getTime() ?? 0) / 1000 });
      e.resume();
    }
  })();
  openUncompressed(layer).pipe(ex);
  await reading;
  assert.deepEqual(seen.map((s) => s.name), ['app/', 'app/main.py', 'app/pkg/', 'app/pkg/__init__.py', 'app/pkg/greet.py']);
  assert.ok(seen.every((s) => s.uid === 0 && s.mtime === 1700000000));
});

test('append --platform narrows an index; a hostile tar path is refused; exactly one destination', async () => {
  const base = join(work, 'base2');
  await makeTestLayout(base, work);
  const r = await appendImage(`${base}:latest`, { layers: [join(work, 'VERSION')], platforms: ['linux/arm64'], out: join(work, 'out3') });
  assert.equal(r.manifests.length, 1);
  assert.equal(r.manifests[0]!.platform?.architecture, 'arm64');
  const evil = join(work, 'evil.tar');
  await tarFile(evil, [{ name: '../../etc/passwd', body: 'x' }]);
  await assert.rejects(appendImage(`${base}:latest`, { layers: [evil], out: join(work, 'out4') }), (e) => isDistillError(e, 'USAGE'));
  await assert.rejects(appendImage(`${base}:latest`, { layers: [evil] }), (e) => isDistillError(e, 'USAGE'));
});

const snap = snapshotDir();
const e2eSkip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false) || whyCannotRun() || (spawnSync('sh', ['-c', 'command -v skopeo']).status !== 0 ? 'skopeo is not installed' : false);

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work, ...env } });
  return { code, stdout, stderr };
}

test('end to end: a Python app appended onto python3 from a registry, pushed, inspected by skopeo, run; twice the same digest', { skip: e2eSkip }, async () => {
  const registry = await startRegistry();
  const cache = join(work, 'cache');
  const rootfsDirs: string[] = [];
  try {
    const mirrors = Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);
    const b = await cli(['build', join(repoRoot, 'images', 'python3'), '--variant', 'latest', '--push', `${registry.host}/distill/python3`, '--cache', cache, '--json', ...mirrors]);
    assert.equal(b.code, 0, b.stderr);
    const src = app(join(work, 'pyapp'));
    const args = ['append', `${registry.host}/distill/python3:latest`, '--layer', `${src}:/app`, '--entrypoint', '["/usr/bin/python3","/app/main.py"]', '--workdir', '/app', '--json'];
    const a1 = await cli([...args, '--push', `${registry.host}/me/app:1`]);
    assert.equal(a1.code, 0, a1.stderr);
    const a2 = await cli([...args, '--push', `${registry.host}/me/app:2`]);
    assert.equal(a2.code, 0, a2.stderr);
    const r1 = JSON.parse(a1.stdout);
    const r2 = JSON.parse(a2.stdout);
    assert.equal(r1.digest, r2.digest, 'twice ⇒ same digest');
    // Same registry: the base layers were mounted, only our small layer (and configs) went up.
    assert.ok(r1.stats.blobsMounted > 0);

    const raw = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/me/app:1`], { encoding: 'utf8' });
    assert.equal(raw.status, 0, raw.stderr);
    assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, r1.digest);
    const amd64 = r1.manifests.find((m: { platform?: { architecture: string } }) => m.platform?.architecture === 'amd64');
    const info = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/me/app@${amd64.digest}`], { encoding: 'utf8' });
    assert.equal(info.status, 0, info.stderr);
    const seen = JSON.parse(info.stdout);
    assert.equal(seen.Digest, amd64.digest);
    assert.equal(seen.Layers.at(-1), r1.inputs[0].layer.digest, 'our layer on top of the base layers');

    const pulled = join(work, 'pulled');
    const p = await cli(['pull', `${registry.host}/me/app:1`, '--out', pulled, '--platform', 'linux/amd64']);
    assert.equal(p.code, 0, p.stderr);
    const rootfs = unpack(pulled, '1');
    rootfsDirs.push(join(rootfs, '..', '..'));
    const run = runIn(rootfs, ['/usr/bin/python3', '/app/main.py']);
    assert.equal(run.code, 0, run.stderr);
    assert.equal(run.stdout.trim(), 'hello from an appended layer');
  } finally {
    await registry.stop();
    for (const d of rootfsDirs) rmSync(d, { recursive: true, force: true });
  }
});

test('the CLI refuses a missing destination, a non-JSON entrypoint and a bad --chown with one line and a code', async () => {
  const base = join(work, 'base-cli');
  await makeTestLayout(base, work);
  const f = join(work, 'cli-file');
  writeFileSync(f, 'x');
  for (const [extra, code] of [
    [[], 'USAGE'],
    [['--out', join(work, 'o'), '--entrypoint', 'python3 main.py'], 'USAGE'],
    [['--out', join(work, 'o'), '--chown', 'root'], 'USAGE'],
  ] as const) {
    const r = await cli(['append', `${base}:latest`, '--layer', f, ...extra]);
    assert.notEqual(r.code, 0);
    assert.match(r.stderr, new RegExp(`^distill: .*\\[${code}\\]`, 'm'));
    assert.doesNotMatch(r.stderr, /\n\s+at /, 'no stack trace');
  }
  const ok = await cli(['append', `${base}:latest`, '--layer', f, '--out', `${join(work, 'o')}:x`, '--json'], { SOURCE_DATE_EPOCH: '0' });
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout).destination, `${join(work, 'o')}:x`);
});
