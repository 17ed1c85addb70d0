// Hostile suite, classes 5 and 7 (outputs, flags, the file system, SIGKILL): --out layouts and --tar
// archives are written beside their target and renamed into place only when everything succeeded;
// after a failure or a kill the previous output is untouched and nothing new looks complete. Flags
// given twice, absurd counts and unusable output paths are refused before any work. A lock, build
// killed at any moment leaves the lockfile old or new, the cache consistent, and the next run
// byte-identical to an uninterrupted one.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { tempDir } from '../helpers/tmp.js';
import { APP, LIBAPP, assertRefused, cli, makeWorld, mustBuild, mustLock, simpleDefinition, snapshot, spawnCli, withoutProvenance, type World } from './helpers.js';

let w: World;
let image: string;
let referenceTar: Buffer;

/** 4 MiB that no compressor shrinks much (base64 of a hash chain): a layer that fills a 2 MiB disk. */
function incompressible(bytes: number): string {
  const parts: Buffer[] = [];
  let h = Buffer.from('seed');
  for (let n = 0; n < (bytes * 3) / 4; n += 32) parts.push((h = createHash('sha256').update(h).digest()));
  return Buffer.concat(parts).toString('base64').slice(0, bytes);
}
const BIG = { name: 'big', version: '1', architecture: 'amd64', files: { 'usr/share/big/data': { content: incompressible(4 * 1024 * 1024) } } };

before(async () => {
  w = await makeWorld([APP, LIBAPP, BIG], 'distill-hostile-out-');
  image = w.define('app', simpleDefinition(['app']));
  await mustLock(w, image);
  const out = join(w.dir, 'reference');
  await mustBuild(w, image, out, ['--tar', join(w.dir, 'reference.tar')]);
  referenceTar = readFileSync(join(w.dir, 'reference.tar'));
});

/** No staging directory or temp file left beside an output. */
function noLeftovers(dir: string): void {
  assert.deepEqual(readdirSync(dir).filter((n) => /\.distill-|\.tmp/.test(n)), [], `leftovers in ${dir}`);
}

test('repeatable flags given twice are refused as USAGE, never glued into one path', async () => {
  for (const args of [
    ['lock', image, '--keyring', '/a', '--keyring', '/b'],
    ['build', image, '--out', '/tmp/a', '--out', '/tmp/b'],
    ['build', image, '--out', '/tmp/a', '--tar', '/tmp/a.tar', '--tar', '/tmp/b.tar'],
    ['build', image, '--out', '/tmp/a', '--cache', '/tmp/c1', '--cache', '/tmp/c2'],
    ['pull', '127.0.0.1:1/x:latest', '--out', '/tmp/a', '--out', '/tmp/b'],
  ]) {
    const r = await cli(args);
    assertRefused(r, 'USAGE', args.join(' '));
    assert.equal(r.code, 2);
    assert.doesNotMatch(r.stderr, /\/a,\/b|c1,\/tmp\/c2/, 'no glued path');
  }
  // A repeatable one means both.
  const both = await cli(['build', image, '--out', join(w.dir, 'both'), '--platform', 'amd64', '--platform', 'amd64', ...w.flags]);
  assert.equal(both.code, 0, both.stderr);
});

test('concurrency 0, negative, fractional, absurd or not a number is USAGE', async () => {
  for (const [flag, v] of [['--concurrency', '0'], ['--concurrency', '-3'], ['--concurrency', '1.5'], ['--concurrency', '100000'], ['--concurrency', 'many'], ['--gzip-workers', '-1'], ['--gzip-workers', '1e6']]) {
    const r = await cli(['build', image, '--out', join(w.dir, 'never'), flag!, v!, ...w.flags]);
    assertRefused(r, 'USAGE', `${flag} ${v}`);
    assert.equal(r.code, 2);
  }
  assertRefused(await cli(['fetch', image, '--concurrency', '0', ...w.flags]), 'USAGE', 'fetch');
  assertRefused(await cli(['push', join(w.dir, 'reference'), '127.0.0.1:1/x', '--concurrency', '-1']), 'USAGE', 'push');
  assert.equal(existsSync(join(w.dir, 'never')), false);
});

test('an --out that is a file, a --tar that is a directory, a parent below a file: OUTPUT_IO before any work', async () => {
  const d = tempDir('distill-hostile-outpath-');
  const f = join(d, 'file');
  writeFileSync(f, 'mine');
  assertRefused(await cli(['build', image, '--out', f, ...w.flags]), 'OUTPUT_IO', '--out file');
  assert.equal(readFileSync(f, 'utf8'), 'mine');
  assertRefused(await cli(['build', image, '--tar', d, ...w.flags]), 'OUTPUT_IO', '--tar dir');
  assertRefused(await cli(['build', image, '--out', join(f, 'sub'), ...w.flags]), 'OUTPUT_IO', '--out below a file');
  assertRefused(await cli(['build', image, '--tar', join(f, 'no', 'such', 'x.tar'), ...w.flags]), 'OUTPUT_IO', 'a missing parent below a file');
  noLeftovers(d);
  // Missing directories on the way are made, as the README's `--out out/python3` needs.
  const made = await cli(['build', image, '--out', join(d, 'new', 'nested', 'layout'), ...w.flags]);
  assert.equal(made.code, 0, made.stderr);
  assert.ok(existsSync(join(d, 'new', 'nested', 'layout', 'index.json')));
  noLeftovers(join(d, 'new', 'nested'));
});

/** A small tmpfs (root only): a full disk and a read-only directory, as they really fail. */
function mountTmpfs(t: { skip(m: string): void }, options: string): string | undefined {
  const d = tempDir('distill-hostile-mnt-');
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', options, 'tmpfs', d], { stdio: 'ignore' });
    return d;
  } catch {
    t.skip('cannot mount a tmpfs here (needs root)');
    return undefined;
  }
}

test('a full disk: a clear error, no partial output, the previous output untouched', async (t) => {
  const big = w.define('big', simpleDefinition(['app', 'big']));
  await mustLock(w, big);
  const d = mountTmpfs(t, 'size=2m');
  if (d === undefined) return;
  try {
    // The previous output of the small image fits; the big image's layer does not.
    await mustBuild(w, image, join(d, 'out'));
    const before = snapshot(join(d, 'out'));
    for (const args of [['--out', join(d, 'out')], ['--tar', join(d, 'x.tar')]]) {
      const r = await cli(['build', big, ...args, ...w.flags]);
      assertRefused(r, '(?:OUTPUT_IO|LAYER_IO)', args[0]);
      assert.match(r.stderr, /ENOSPC|no space/i);
    }
    assert.deepEqual(snapshot(join(d, 'out')), before, 'the previous layout is untouched');
    assert.equal(existsSync(join(d, 'x.tar')), false);
    noLeftovers(d);
  } finally {
    execFileSync('umount', [d]);
  }
});

test('an unwritable output directory (read-only mount): a clear error, nothing written', async (t) => {
  const d = mountTmpfs(t, 'ro,size=1m');
  if (d === undefined) return;
  try {
    for (const args of [['--out', join(d, 'out')], ['--tar', join(d, 'x.tar')]]) {
      assertRefused(await cli(['build', image, ...args, ...w.flags]), 'OUTPUT_IO', args[0]);
    }
  } finally {
    execFileSync('umount', [d]);
  }
});

test('a failing build leaves the previous --out and --tar exactly as they were', async () => {
  const out = join(w.dir, 'kept');
  const tar = join(w.dir, 'kept.tar');
  await mustBuild(w, image, out, ['--tar', tar]);
  const before = snapshot(out);
  const tarBefore = readFileSync(tar);
  // The same image, its lock now naming a .deb that is not there: the build fails part-way.
  const lockPath = join(image, 'image.lock.json');
  const good = readFileSync(lockPath, 'utf8');
  const lock = JSON.parse(good);
  lock.architectures.amd64.packages[0].sha256 = 'f'.repeat(64);
  writeFileSync(lockPath, JSON.stringify(lock));
  try {
    const r = await cli(['build', image, '--out', out, '--tar', tar, ...w.flags]);
    assert.notEqual(r.code, 0);
    assert.doesNotMatch(r.stderr, /INTERNAL|^\s+at /m);
  } finally {
    writeFileSync(lockPath, good);
  }
  assert.deepEqual(snapshot(out), before);
  assert.ok(readFileSync(tar).equals(tarBefore));
  noLeftovers(w.dir);
});

test('SIGKILL during build, at several points: the old output stays, the next build is byte-identical', async () => {
  const big = w.define('kill', simpleDefinition(['app', 'big']));
  await mustLock(w, big);
  const out = join(w.dir, 'kill-out');
  const tar = join(w.dir, 'kill.tar');
  await mustBuild(w, image, out, ['--tar', tar]); // a previous output, of another image
  const before = snapshot(out);
  const tarBefore = readFileSync(tar);
  const cache = join(w.dir, 'kill-cache');
  const withoutCache = w.flags.filter((_, i, a) => a[i] !== '--cache' && a[i - 1] !== '--cache');
  const flags = [...withoutCache, '--cache', cache];
  // What the build of `big` writes when nothing interrupts it (its own cache): into a fresh directory,
  // and into a copy of the previous layout (a layout gains blobs; index.json is replaced last).
  const clean = join(w.dir, 'kill-clean');
  const c = await cli(['build', big, '--out', clean, ...withoutCache, '--cache', join(w.dir, 'kill-clean-cache')]);
  assert.equal(c.code, 0, c.stderr);
  const cleanSnapshot = withoutProvenance(snapshot(clean));
  const over = join(w.dir, 'kill-over');
  cpSync(out, over, { recursive: true });
  const o = await cli(['build', big, '--out', over, ...withoutCache, '--cache', join(w.dir, 'kill-clean-cache')]);
  assert.equal(o.code, 0, o.stderr);
  const overSnapshot = withoutProvenance(snapshot(over));
  for (const ms of [50, 250, 600, 1200]) {
    const r = await spawnCli(['build', big, '--out', out, '--tar', tar, ...flags], { killAfterMs: ms });
    if (!r.killed) break; // the build finished before the kill: later points would too
    // A kill can land after the outputs were committed, while the process is still exiting (it
    // writes its code cache then): each output is then the whole new one — never a mix of the two.
    const now = snapshot(out);
    const layoutReplaced = !isDeepStrictEqual(now, before);
    if (layoutReplaced) assert.deepEqual(withoutProvenance(now), overSnapshot, `killed at ${ms} ms: the layout is the old one or the whole new one`);
    const tarReplaced = !readFileSync(tar).equals(tarBefore);
    if (tarReplaced) assert.match(execFileSync('tar', ['-tf', tar], { encoding: 'utf8' }), /^index\.json$/m, `killed at ${ms} ms: the archive is the old one or a whole new one`);
    if (layoutReplaced || tarReplaced) break; // committed: later kills would find it again
  }
  // Whatever the kills left in the cache, the next build completes and matches a clean one.
  const after = join(w.dir, 'kill-after');
  const r = await cli(['build', big, '--out', after, ...flags]);
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(withoutProvenance(snapshot(after)), cleanSnapshot);
});

test('SIGKILL during lock: the lockfile is the old one or the new one, never a torn one', async () => {
  const lockPath = join(image, 'image.lock.json');
  const old = readFileSync(lockPath, 'utf8');
  // A relock with a changed definition gives a new lock; kill it at several points.
  const def = join(image, 'image.yaml');
  const defBefore = readFileSync(def, 'utf8');
  writeFileSync(def, defBefore + '# changed\n');
  try {
    let fresh: string | undefined;
    for (const ms of [30, 150, 400, 800]) {
      const r = await spawnCli(['lock', image, ...w.flags], { killAfterMs: ms });
      const now = readFileSync(lockPath, 'utf8');
      if (now !== old) {
        JSON.parse(now); // whole
        fresh ??= now;
        assert.equal(now, fresh);
      }
      // A kill between the temp file's creation and its rename can leave that hidden temp (nothing
      // runs after SIGKILL to remove it); anything else beside the lock would be a torn write.
      assert.deepEqual(
        readdirSync(image).filter((n) => n !== 'image.yaml' && n !== 'image.lock.json' && !/^\.image\.lock\.json\.[0-9a-f]{12}\.tmp$/.test(n)),
        [],
        'nothing but the atomic writer\'s own temp file beside the lock',
      );
      if (!r.killed) break;
    }
    const r = await cli(['lock', image, ...w.flags]);
    assert.equal(r.code, 0, r.stderr);
    if (fresh !== undefined) assert.equal(readFileSync(lockPath, 'utf8'), fresh);
  } finally {
    writeFileSync(def, defBefore);
    writeFileSync(lockPath, old);
  }
});

test('staging a killed build left beside an output is swept by the next build; a fresh one is left', async () => {
  const d = tempDir('distill-hostile-stale-');
  const stale = join(d, '.out.distill-0123456789ab');
  const fresh = join(d, '.out.distill-ba9876543210');
  mkdirSync(join(stale, 'blobs'), { recursive: true });
  mkdirSync(fresh);
  const old = new Date(Date.now() - 2 * 3600_000);
  utimesSync(stale, old, old);
  const r = await cli(['build', image, '--out', join(d, 'out'), ...w.flags]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(existsSync(stale), false);
  assert.ok(existsSync(fresh), 'a fresh staging directory may belong to a running build');
});

test('the tar archive of a rebuild is byte-identical to the first', async () => {
  const tar = join(w.dir, 'again.tar');
  const r = await cli(['build', image, '--tar', tar, ...w.flags]);
  assert.equal(r.code, 0, r.stderr);
  assert.ok(readFileSync(tar).equals(referenceTar));
});
