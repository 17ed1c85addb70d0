// Hostile catalogue, class 5: what `distill append` is given — --layer PATHs (FIFOs, sockets, devices,
// symlinks pointing out, hardlinks, names with newlines or bytes that are not UTF-8, tars with `..`
// or absolute names, setuid bits, gzip bombs, not-gzip), junk in --env/--label/--entrypoint/--cmd/
// --platform/--chown/--user, and a base whose config is not what a config should be. Each is the
// one-line coded error (or, where the input is legitimate, a result that keeps it inside the image),
// in bounded time, with no --out left behind.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:net';
import { cpSync, existsSync, linkSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { sha256Hex, toDigest } from '../../src/digest.js';
import tar from 'tar-stream';
import { readLayoutArtifact } from '../../src/sources/oci-layout.js';
import { imagesOf } from '../../src/oci/model.js';
import { makeTestLayout } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, cli, spawnCli } from './helpers.js';

let work: string;
let base: string;
let n = 0;

before(async () => {
  work = tempDir('distill-hostile-append-');
  base = join(work, 'base');
  await makeTestLayout(base, work);
});
after(() => rmSync(work, { recursive: true, force: true }));

const out = (): string => join(work, `out${n++}`);
async function tarOf(name: string, members: { name: string; body?: string; type?: 'file' | 'link' | 'character-device' | 'fifo'; mode?: number; linkname?: string }[], gzip = false): Promise<string> {
  const pack = tar.pack();
  const parts: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) parts.push(c as Buffer);
  })();
  for (const m of members) {
    const h = { name: m.name, type: m.type ?? 'file', mode: m.mode ?? 0o644, mtime: new Date(0), ...(m.linkname !== undefined ? { linkname: m.linkname } : {}) } as const;
    pack.entry(h, m.type === undefined || m.type === 'file' ? (m.body ?? '') : '');
  }
  pack.finalize();
  await done;
  const p = join(work, name);
  writeFileSync(p, gzip ? gzipSync(Buffer.concat(parts)) : Buffer.concat(parts));
  return p;
}

async function appendRefused(layerArgs: string[], code: string, what: string, extra: string[] = []): Promise<void> {
  const o = out();
  const r = await spawnCli(['append', `${base}:latest-amd64`, ...layerArgs.flatMap((l) => ['--layer', l]), '--out', o, ...extra], { killAfterMs: 30_000 });
  assert.equal(r.killed, false, `${what}: append still running after 30 s`);
  assertRefused(r, code, what);
  assert.equal(existsSync(o), false, `${what}: --out was left behind`);
}

/** The appended layer's entries, by path → type/mode/link. */
async function appendedEntries(dir: string): Promise<Map<string, { type: string; mode: number; linkname?: string }>> {
  const a = await readLayoutArtifact(dir);
  const img = imagesOf(a.artifact)[0]!;
  const last = img.layers[img.layers.length - 1]!;
  const { readLayer } = await import('../../src/oci/read-layer.js');
  const got = new Map<string, { type: string; mode: number; linkname?: string }>();
  await readLayer(last, async (e: any) => {
    got.set(e.name, { type: e.type, mode: e.mode, ...(e.linkname ? { linkname: e.linkname } : {}) });
  });
  return got;
}

test('--layer PATH that is a FIFO, a socket, a device, or a directory holding one', async () => {
  const fifo = join(work, 'fifo.tar');
  execFileSync('mkfifo', [fifo]);
  const sockDir = join(work, 'with-socket');
  mkdirSync(sockDir);
  const server = createServer();
  await new Promise<void>((res) => server.listen(join(sockDir, 'sock'), res));
  try {
    const fifoDir = join(work, 'with-fifo');
    mkdirSync(fifoDir);
    execFileSync('mkfifo', [join(fifoDir, 'p')]);
    const devDir = join(work, 'with-dev');
    mkdirSync(devDir);
    execFileSync('mknod', [join(devDir, 'null'), 'c', '1', '3']);
    for (const [what, p] of [['a FIFO named .tar', fifo], ['/dev/zero', '/dev/zero'], ['a socket', join(sockDir, 'sock')], ['a dir with a socket', sockDir], ['a dir with a FIFO', fifoDir], ['a dir with a device', devDir]] as const) {
      await appendRefused([p], 'USAGE', `--layer ${what}`);
    }
  } finally {
    server.close();
  }
});

test('a directory with symlinks out, hardlinks, setuid files, and names with a newline or non-UTF-8 bytes', async () => {
  const d = join(work, 'tree');
  mkdirSync(join(d, 'bin'), { recursive: true });
  writeFileSync(join(d, 'bin', 'tool'), 'x', { mode: 0o4755 });
  linkSync(join(d, 'bin', 'tool'), join(d, 'bin', 'hard'));
  symlinkSync('/etc/shadow', join(d, 'shadow'));
  symlinkSync('../../../../../etc', join(d, 'up'));
  writeFileSync(join(d, 'new\nline'), 'n');
  const o = out();
  const r = await cli(['append', `${base}:latest-amd64`, '--layer', `${d}:/app`, '--out', o]);
  assert.equal(r.code, 0, r.stderr);
  const got = await appendedEntries(o);
  // Symlinks are kept as links (never followed: no host file is read into the layer).
  assert.equal(got.get('app/shadow')?.linkname, '/etc/shadow');
  assert.equal(got.get('app/up')?.type, 'symlink');
  assert.equal(got.get('app/bin/hard')?.type, 'file');
  assert.ok(got.has('app/new\nline'));
  for (const k of got.keys()) assert.ok(k === 'app' || k.startsWith('app/'), `${JSON.stringify(k)} is outside /app`);

  // A name that is not UTF-8 cannot be read back under the name readdir gives: a coded refusal.
  const bad = join(work, 'latin1');
  mkdirSync(bad);
  execFileSync('sh', ['-c', `touch "${bad}/$(printf 'caf\\351')"`]);
  await appendRefused([bad], 'USAGE', 'a non-UTF-8 file name');
});

test('tars with `..`, absolute names, links climbing out, hardlinks, devices; gzip bombs and not-gzip', async () => {
  const cases: [string, string][] = [
    ['`..`', await tarOf('dotdot.tar', [{ name: '../../etc/passwd', body: 'x' }])],
    ['`..` mid-path', await tarOf('mid.tar', [{ name: 'a/../../b', body: 'x' }])],
    ['`..` gzipped', await tarOf('dotdot.tar.gz', [{ name: '../x', body: 'x' }], true)],
    ['a hardlink', await tarOf('hard.tar', [{ name: 'a', body: 'x' }, { name: 'b', type: 'link', linkname: '/etc/passwd' }])],
    ['a char device', await tarOf('dev.tar', [{ name: 'null', type: 'character-device' }])],
    ['a FIFO entry', await tarOf('fifo-entry.tar', [{ name: 'p', type: 'fifo' }])],
    ['not gzip', (() => { const p = join(work, 'not.tar.gz'); writeFileSync(p, 'plain text, not gzip'.repeat(50)); return p; })()],
    ['garbage tar', (() => { const p = join(work, 'garbage.tar'); writeFileSync(p, Buffer.alloc(4096, 0x41)); return p; })()],
    // 256 MiB of zeros in 256 KiB: end-of-archive blocks forever after — refused without spooling it all.
    ['a gzip bomb of zeros', (() => { const p = join(work, 'bomb.tar.gz'); writeFileSync(p, gzipSync(Buffer.alloc(256 * 1024 * 1024), { level: 9 })); return p; })()],
  ];
  for (const [what, p] of cases) await appendRefused([p], 'USAGE', `--layer tar with ${what}`);
  // Absolute names are taken relative to the destination: they stay in the image.
  const o = out();
  const r = await cli(['append', `${base}:latest-amd64`, '--layer', `${await tarOf('abs.tar', [{ name: '/etc/evil', body: 'x', mode: 0o6755 }])}:/opt`, '--out', o]);
  assert.equal(r.code, 0, r.stderr);
  const got = await appendedEntries(o);
  assert.ok(got.has('opt/etc/evil'), [...got.keys()].join(' '));
});

test('--env, --label, --entrypoint, --cmd, --platform, --chown, --user junk is USAGE', async () => {
  const layer = join(work, 'one-file');
  writeFileSync(layer, 'x');
  const junk: [string, string[]][] = [
    ['--entrypoint not JSON', ['--entrypoint', '[/bin/sh']],
    ['--entrypoint an object', ['--entrypoint', '{"__proto__":{"polluted":1}}']],
    ['--entrypoint numbers', ['--entrypoint', '[1,2]']],
    ['--cmd a string', ['--cmd', '"sh"']],
    ['--cmd nested a million deep', ['--cmd', '['.repeat(1_000_000) + ']'.repeat(1_000_000)]],
    ['--env without =', ['--env', 'NOVALUE']],
    ['--env =value', ['--env', '=x']],
    ['--label without =', ['--label', 'x']],
    ['--platform garbage', ['--platform', '../../..']],
    ['--platform empty', ['--platform', '']],
    ['--chown junk', ['--chown', 'root:root']],
    ['--chown negative', ['--chown', '-1:0']],
    ['--chown huge', ['--chown', '99999999999999999999:0']],
  ];
  for (const [what, extra] of junk) {
    // In process: a million-deep argument is more than execve takes, and none of these can hang.
    const o = out();
    assertRefused(await cli(['append', `${base}:latest-amd64`, '--layer', layer, '--out', o, ...extra]), what.startsWith('--platform') ? '(?:USAGE|REGISTRY_NOT_FOUND)' : 'USAGE', what);
    assert.equal(existsSync(o), false, `${what}: --out was left behind`);
  }
  assert.equal(({} as any).polluted, undefined, 'Object.prototype was polluted');
});

test('a base whose config is not JSON, is an array, or has junk where Env and created go', async () => {
  const layer = join(work, 'f');
  writeFileSync(layer, 'x');
  const configs: [string, string][] = [
    ['not JSON', 'not json at all'],
    ['an array', '[1,2,3]'],
    ['null', 'null'],
    ['config.Env an object', JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Env: { PATH: 1 } }, rootfs: { type: 'layers', diff_ids: [] } })],
    ['config a string', JSON.stringify({ architecture: 'amd64', os: 'linux', config: 'x', rootfs: { type: 'layers', diff_ids: [] } })],
    ['created junk', JSON.stringify({ architecture: 'amd64', os: 'linux', created: { a: 1 }, rootfs: 7 })],
  ];
  for (const [what, text] of configs) {
    const d = join(work, `cfg${n++}`);
    cpSync(base, d, { recursive: true });
    const idx = JSON.parse(readFileSync(join(d, 'index.json'), 'utf8'));
    const entry = idx.manifests.find((e: any) => e.annotations['org.opencontainers.image.ref.name'] === 'latest-amd64');
    const manifest = JSON.parse(readFileSync(join(d, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8'));
    const cfg = Buffer.from(text);
    manifest.config = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: toDigest(sha256Hex(cfg)), size: cfg.length };
    writeFileSync(join(d, 'blobs', 'sha256', sha256Hex(cfg)), cfg);
    const mb = Buffer.from(JSON.stringify(manifest));
    writeFileSync(join(d, 'blobs', 'sha256', sha256Hex(mb)), mb);
    Object.assign(entry, { digest: toDigest(sha256Hex(mb)), size: mb.length });
    writeFileSync(join(d, 'index.json'), JSON.stringify(idx));
    const o = out();
    const r = await cli(['append', `${d}:latest-amd64`, '--layer', layer, '--env', 'A=1', '--out', o]);
    assertRefused(r, 'OCI_INVALID', `base config ${what}`);
    assert.equal(existsSync(o), false);
  }
});
