// Hostile suite, class 2: a lock is untrusted text. Malformed fields, broken chains and locks that
// name other bytes than the .deb they pin are LOCK_INVALID / BLOB_SIZE_MISMATCH before anything is
// written; an intact cached blob is never deleted because a lock got its size wrong.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { craftDeb, file } from '../helpers/craft-deb.js';
import { APP, LIBAPP, assertRefused, cli, controlFor, makeWorld, mustBuild, mustLock, readLockOf, simpleDefinition, snapshot, swapDeb, withoutProvenance, writeLockOf, type World } from './helpers.js';

let w: World;
let image: string;
let good: string;
let out: string;
let built: Map<string, string>;

before(async () => {
  w = await makeWorld([APP, LIBAPP, { name: 'other', version: '9.9-1', architecture: 'amd64', files: { 'usr/bin/other': 'x\n' } }], 'distill-hostile-lock-');
  image = w.define('app', simpleDefinition(['app']));
  await mustLock(w, image);
  good = readFileSync(join(image, 'image.lock.json'), 'utf8');
  out = join(w.dir, 'out');
  await mustBuild(w, image, out);
  built = snapshot(out);
});

/** Each edit of a good lock is refused with `code`, and the previous output stays exactly as it was. */
async function refuses(edit: (lock: any) => void, code = 'LOCK_INVALID', what = ''): Promise<void> {
  const lock = JSON.parse(good);
  edit(lock);
  writeLockOf(image, lock);
  try {
    const r = await cli(['build', image, '--out', out, ...w.flags]);
    assertRefused(r, code, what);
    assert.deepEqual(snapshot(out), built, `the previous output changed (${what})`);
  } finally {
    writeFileSync(join(image, 'image.lock.json'), good);
  }
}

const pkg = (lock: any, name: string) => lock.architectures.amd64.packages.find((p: any) => p.name === name);

test('malformed fields: sizes, digests, names, versions, architectures, pool paths', async () => {
  const cases: [string, (l: any) => void][] = [
    ['size 0', (l) => (pkg(l, 'app').size = 0)],
    ['negative size', (l) => (pkg(l, 'app').size = -5)],
    ['fractional size', (l) => (pkg(l, 'app').size = 10.5)],
    ['size as a string', (l) => (pkg(l, 'app').size = '100')],
    ['short sha256', (l) => (pkg(l, 'app').sha256 = 'abc')],
    ['upper-case sha256', (l) => (pkg(l, 'app').sha256 = pkg(l, 'app').sha256.toUpperCase())],
    ['name with upper case', (l) => (pkg(l, 'app').name = 'App')],
    ['name with a slash', (l) => (pkg(l, 'app').name = 'a/../b')],
    ['version with a space', (l) => (pkg(l, 'app').version = '1.0 -1')],
    ['empty version', (l) => (pkg(l, 'app').version = '')],
    ['foreign architecture', (l) => (pkg(l, 'app').architecture = 'arm64')],
    ['pool path climbing out', (l) => (pkg(l, 'app').filename = 'pool/../../etc/passwd')],
    ['depends not a list', (l) => (pkg(l, 'app').depends = 'libapp')],
    ['packages not a list', (l) => (l.architectures.amd64.packages = {})],
    ['a package that is null', (l) => l.architectures.amd64.packages.push(null)],
    ['requested not a list', (l) => (l.requested = 'app')],
    ['source without inRelease', (l) => delete l.sources.debian.inRelease],
    ['local-time timestamp', (l) => (l.timestamp = '2025-06-01T12:00:00')],
  ];
  for (const [what, edit] of cases) await refuses(edit, 'LOCK_INVALID', what);
});

test('structure: duplicates, a dependency missing from the chain, a requested package missing', async () => {
  await refuses((l) => l.architectures.amd64.packages.push({ ...pkg(l, 'app') }), 'LOCK_INVALID', 'duplicate');
  await refuses((l) => (l.architectures.amd64.packages = l.architectures.amd64.packages.filter((p: any) => p.name !== 'libapp')), 'LOCK_INVALID', 'dependency missing');
  await refuses((l) => (pkg(l, 'app').depends = ['libapp', 'ghost']), 'LOCK_INVALID', 'depends on a ghost');
  // requested is the definition's list: changing it makes the lock stale, dropping the package invalid.
  await refuses((l) => (l.architectures.amd64.packages = l.architectures.amd64.packages.filter((p: any) => p.name !== 'app')), 'LOCK_INVALID', 'requested missing');
  await refuses((l) => (l.requested = ['app', 'libapp']), 'LOCK_STALE', 'requested differs');
});

test('a truncated or non-JSON lock is LOCK_INVALID', async () => {
  for (const text of [good.slice(0, good.length / 2), '{"lockfileVersion": 1, "image": ', '\u0000\u0001', '[]', 'null']) {
    writeFileSync(join(image, 'image.lock.json'), text);
    try {
      assertRefused(await cli(['build', image, '--out', out, ...w.flags]), 'LOCK_INVALID', JSON.stringify(text.slice(0, 30)));
    } finally {
      writeFileSync(join(image, 'image.lock.json'), good);
    }
  }
  assert.deepEqual(snapshot(out), built);
});

test('a .deb whose control names another package, version or architecture than its lock entry is refused before staging', async () => {
  for (const [what, control] of [
    ['another package', controlFor('other', '9.9-1')],
    ['another version', controlFor('app', '0.9-1')],
    ['another architecture', controlFor('app', '1.0-1', 'arm64')],
  ] as const) {
    swapDeb(w, image, 'app', await craftDeb({ control, entries: [file('usr/bin/app', 'impostor\n')] }));
    try {
      const r = await cli(['build', image, '--out', out, ...w.flags]);
      assertRefused(r, 'LOCK_INVALID', what);
      assert.match(r.stderr, /control file says/);
      assert.deepEqual(snapshot(out), built);
    } finally {
      writeFileSync(join(image, 'image.lock.json'), good);
    }
  }
});

test('a lock entry with a wrong size is refused and never deletes the intact cached blob', async () => {
  const lock = readLockOf(image);
  const app = pkg(lock, 'app');
  const blob = join(w.cache, 'blobs', 'sha256', app.sha256);
  assert.ok(existsSync(blob));
  const bytes = readFileSync(blob);
  for (const size of [app.size + 1, app.size - 1]) {
    await refuses((l) => (pkg(l, 'app').size = size), 'BLOB_SIZE_MISMATCH', `size ${size}`);
    assert.ok(readFileSync(blob).equals(bytes), 'the intact blob is still in the cache');
  }
  // And the good lock builds again from the cache, byte-identical.
  const again = join(w.dir, 'again');
  await mustBuild(w, image, again);
  assert.deepEqual(withoutProvenance(snapshot(again)), withoutProvenance(built));
});
