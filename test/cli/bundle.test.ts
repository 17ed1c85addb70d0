// The `distill` a user runs is the bundle `npm run build` writes (package.json "bin" →
// dist/src/bundle/distill.js, tools/bundle.mjs), not tsc's dist/src/cli/bin.js that the other CLI tests
// call in-process. These run that file as a process: where it is, that it needs none of the package's
// node_modules, that it finds its worker bundles and .wasm files from where it lies — a build by the
// bundle, copied alone into a bare package directory, writes the digests the library writes — and that
// its compile cache (src/cli/launch.ts) is written, used, and harmless when damaged or unwritable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { accessSync, constants, cpSync, mkdirSync, readFileSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const pkg = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { bin: Record<string, string>; files: string[]; version: string };
const bundle = join(repoRoot, pkg.bin['distill']!);

function run(bin: string, args: string[], cwd?: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', HOME: '/nonexistent', ...env }, ...(cwd ? { cwd } : {}) });
}

test('package.json "bin" is the bundle, executable, with the CLI script and its two worker bundles beside it', () => {
  assert.equal(pkg.bin['distill'], 'dist/src/bundle/distill.js');
  accessSync(bundle, constants.X_OK);
  assert.match(readFileSync(bundle, 'utf8'), /^#!\/usr\/bin\/env node\n/);
  for (const w of ['distill-cli.cjs', 'stage-worker.js', 'gzip-worker.js']) accessSync(join(repoRoot, 'dist', 'src', 'bundle', w), constants.R_OK);
  // Shipped: the bundle lies under a directory package.json "files" publishes.
  assert.ok(pkg.files.some((f) => pkg.bin['distill']!.startsWith(f + '/')), 'the bundle is in "files"');
});

test('the bundle answers --help and --version, and reports bad input in one line with a hint', () => {
  const help = run(bundle, ['--help']);
  assert.equal(help.status, 0, help.stderr);
  for (const c of ['lock', 'build', 'copy', 'sign', 'rebuild']) assert.match(help.stdout, new RegExp(`distill ${c}`));
  const version = run(bundle, ['--version']);
  assert.equal(version.status, 0);
  assert.equal(version.stdout.trim(), pkg.version);
  const bad = run(bundle, ['build', '/nonexistent/image.yaml', '--out', '/nonexistent/out']);
  assert.equal(bad.status, 1, bad.stderr);
  assert.match(bad.stderr, /^distill: .+ \[[A-Z_]+\]\nhint: \S/);
  assert.doesNotMatch(bad.stderr, /^\s+at /m);
});

test('the bundle alone (no node_modules) builds the digests the library builds, its workers found beside it', { skip: snapshotDir() === undefined ? NO_SNAPSHOT : false }, async () => {
  const snap = snapshotDir()!;
  const work = tempDir('distill-bundle-');
  // A bare package: the bundle directory and the files package.json ships at the paths it names.
  const bare = join(work, 'package');
  mkdirSync(join(bare, 'dist', 'src'), { recursive: true });
  cpSync(join(repoRoot, 'dist', 'src', 'bundle'), join(bare, 'dist', 'src', 'bundle'), { recursive: true });
  for (const f of pkg.files.filter((x) => !x.startsWith('dist/'))) cpSync(join(repoRoot, f), join(bare, f), { recursive: true });
  const image = join(work, 'images', 'static');
  cpSync(join(repoRoot, 'images', 'static'), image, { recursive: true });
  const mirrors = snapshotMirrors(snap);
  const flags = ['--variant', 'latest', '--platform', 'amd64', '--no-layer-cache', '--cache', join(work, 'cache'), ...Object.entries(mirrors).flatMap(([k, v]) => ['--mirror', `${k}=${v}`])];
  const r = run(join(bare, 'dist', 'src', 'bundle', 'distill.js'), ['build', image, '--out', join(work, 'cli'), ...flags], work);
  assert.equal(r.status, 0, r.stderr);
  await buildImage(join(image, 'image.yaml'), { cacheDir: join(work, 'cache'), noLayerCache: true, variants: ['latest'], platforms: ['amd64'], mirrors: { flags: mirrors, aptSources: [] }, outDir: join(work, 'lib') });
  assert.equal(readFileSync(join(work, 'cli', 'index.json'), 'utf8'), readFileSync(join(work, 'lib', 'index.json'), 'utf8'));
  assert.deepEqual(readdirSync(join(work, 'cli', 'blobs', 'sha256')).sort(), readdirSync(join(work, 'lib', 'blobs', 'sha256')).sort());
});

test('the compile cache: written after a successful run, used by the next, rewritten when damaged or not ours, never in the way', async () => {
  const cache = tempDir('distill-v8-cache-');
  const env = { XDG_CACHE_HOME: cache };
  const dir = join(cache, 'distill', 'v8');
  const first = run(bundle, ['--version'], undefined, env);
  assert.equal(first.status, 0, first.stderr);
  const files = readdirSync(dir);
  assert.equal(files.length, 1);
  assert.match(files[0]!, /^v\d+\.\d+\.\d+-[a-z0-9]+-[0-9a-f]{16}-help\.bin$/);
  const file = join(dir, files[0]!);
  const written = statSync(file).mtimeMs;
  // Used as it is: the same output, the file not rewritten.
  const second = run(bundle, ['--version'], undefined, env);
  assert.equal(second.stdout, first.stdout);
  assert.equal(statSync(file).mtimeMs, written);
  // Damaged (garbage, or cut short): V8 refuses it, the run is the same, and a good one replaces it.
  const good = readFileSync(file);
  for (const bad of [Buffer.from('not a code cache'), good.subarray(0, good.length >> 1)]) {
    writeFileSync(file, bad);
    const r = run(bundle, ['--version'], undefined, env);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, first.stdout);
    assert.equal(r.stderr, '');
    assert.ok(statSync(file).size > bad.length, 'a whole cache written in place of the damaged one');
  }
  // A file others could have written is not loaded (V8 trusts these bytes): replaced by one of ours.
  const { chmodSync } = await import('node:fs');
  chmodSync(file, 0o666);
  const shared = run(bundle, ['--version'], undefined, env);
  assert.equal(shared.status, 0, shared.stderr);
  assert.equal(statSync(file).mode & 0o777, 0o644);
  // Another command has its own file; a usage error writes none.
  assert.equal(run(bundle, ['lock', '--no-such-flag'], undefined, env).status, 2);
  assert.deepEqual(readdirSync(dir), files);
  // Turned off, or a cache directory that cannot be written: nothing written, nothing said.
  const off = tempDir('distill-v8-off-');
  const r = run(bundle, ['--version'], undefined, { XDG_CACHE_HOME: off, DISTILL_NO_COMPILE_CACHE: '1' });
  assert.equal(r.status, 0);
  assert.deepEqual(readdirSync(off), []);
  const blocked = join(off, 'file');
  writeFileSync(blocked, '');
  const u = run(bundle, ['--version'], undefined, { XDG_CACHE_HOME: blocked });
  assert.equal(u.status, 0);
  assert.equal(u.stderr, '');
});
