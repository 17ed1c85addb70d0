// Hostile catalogue, class 6: the JSON and YAML distill parses from outside, beyond what locks.test.ts
// and definitions.test.ts cover — values that are objects where strings belong ({"toString":1} makes
// String(), template strings and RegExp.test throw a TypeError), `__proto__`/`constructor` keys that
// must not reach any object's prototype, numbers beyond what a size or time can be, YAML merge keys,
// and the environment: XDG_CACHE_HOME pointing at a file, DISTILL_* and SOURCE_DATE_EPOCH junk.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeTestLayout } from '../helpers/registry.js';
import { APP, LIBAPP, assertRefused, cli, makeWorld, mustLock, readLockOf, simpleDefinition, spawnCli, writeLockOf, type World } from './helpers.js';

let w: World;
let image: string;
let good: string;
let layout: string;
const BOMB = { toString: 1, valueOf: 1 };

before(async () => {
  w = await makeWorld([APP, LIBAPP], 'distill-hostile-parsers-');
  image = w.define('app', simpleDefinition(['app']));
  await mustLock(w, image);
  good = readFileSync(join(image, 'image.lock.json'), 'utf8');
  layout = join(w.dir, 'layout');
  await makeTestLayout(layout, w.dir);
});
after(() => rmSync(w.dir, { recursive: true, force: true }));

function noPollution(what: string): void {
  for (const probe of [{}, [], Object.create(null) === null ? {} : new Object()]) {
    assert.equal((probe as any).polluted, undefined, `${what}: a prototype was polluted`);
  }
  assert.equal((Object.prototype as any).polluted, undefined, what);
}

test('a lock whose fields are {"toString":1}, or carry __proto__ keys, is LOCK_INVALID and pollutes nothing', async () => {
  const edits: [string, (l: any) => void][] = [
    ['lockfileVersion', (l) => (l.lockfileVersion = BOMB)],
    ['definition.sha256', (l) => (l.definition.sha256 = BOMB)],
    ['a package sha256', (l) => (l.architectures.amd64.packages[0].sha256 = BOMB)],
    ['a package name', (l) => (l.architectures.amd64.packages[0].name = BOMB)],
    ['a package size 1e308', (l) => (l.architectures.amd64.packages[0].size = 1e308)],
    ['a source inRelease sha256', (l) => { for (const s of Object.values(l.sources) as any[]) s.inRelease.sha256 = BOMB; }],
  ];
  for (const [what, edit] of edits) {
    const lock = JSON.parse(good);
    edit(lock);
    writeLockOf(image, lock);
    assertRefused(await cli(['build', image, '--out', join(w.dir, 'out'), ...w.flags]), 'LOCK_INVALID', what);
    assertRefused(await cli(['diff', join(image, 'image.lock.json'), join(image, 'image.lock.json')]), 'LOCK_INVALID', `diff: ${what}`);
  }
  // __proto__ / constructor keys written into the lock text (JSON.stringify would drop them).
  const text = good.replace('{', '{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},');
  writeFileSync(join(image, 'image.lock.json'), text);
  await cli(['build', image, '--out', join(w.dir, 'out2'), ...w.flags]);
  await cli(['diff', join(image, 'image.lock.json'), join(image, 'image.lock.json')]);
  noPollution('lock');
  writeFileSync(join(image, 'image.lock.json'), good);
});

test('a definition with __proto__, constructor and merge keys, huge numbers: refused or read as data, polluting nothing', async () => {
  const cases: [string, string][] = [
    ['__proto__ key', simpleDefinition(['app'], '__proto__:\n  polluted: yes\n')],
    ['constructor.prototype', simpleDefinition(['app'], 'constructor:\n  prototype:\n    polluted: yes\n')],
    ['a merge key from an anchor', `base: &b\n  polluted: yes\n<<: *b\n${simpleDefinition(['app'])}`],
    ['a uid of 1e400', simpleDefinition(['app'], 'user: 1e400\n')],
    ['a file mode of 2^64', simpleDefinition(['app'], 'files:\n  - path: /x\n    content: x\n    mode: 18446744073709551616\n')],
  ];
  // A file:// url with a host names no local path (fileURLToPath throws a TypeError): refused as invalid.
  const hosted = w.define('def-file-host', simpleDefinition(['app'], 'files:\n  - path: /x\n    url: file://evil.example/etc/passwd\n    sha256: "' + 'a'.repeat(64) + '"\n'));
  assertRefused(await cli(['lock', hosted, ...w.flags]), 'DEFINITION_INVALID', 'file:// url with a host');
  for (const [what, yaml] of cases) {
    const d = w.define(`def-${what.replace(/\W+/g, '-')}`, yaml);
    const r = await cli(['lock', d, ...w.flags]);
    if (r.code !== 0) assertRefused(r, '(?:DEFINITION_INVALID|DEFINITION_SYNTAX)', what);
    noPollution(what);
  }
});

test('a layout whose descriptors carry {"toString":1} platforms or sizes is OCI_INVALID', async () => {
  const edits: [string, (e: any) => void][] = [
    ['platform.os', (e) => (e.platform = { os: BOMB, architecture: 'amd64' })],
    ['platform a list', (e) => (e.platform = ['linux', 'amd64'])],
    ['size', (e) => (e.size = BOMB)],
    ['digest', (e) => (e.digest = BOMB)],
    ['mediaType', (e) => (e.mediaType = BOMB)],
  ];
  for (const [what, edit] of edits) {
    const d = join(w.dir, `layout-${what.replace(/\W+/g, '-')}`);
    cpSync(layout, d, { recursive: true });
    const idx = JSON.parse(readFileSync(join(d, 'index.json'), 'utf8'));
    for (const e of idx.manifests) edit(e);
    writeFileSync(join(d, 'index.json'), JSON.stringify(idx));
    assertRefused(await cli(['inspect', `${d}:latest-amd64`]), 'OCI_INVALID', what);
    assertRefused(await cli(['inspect', d, '--json']), 'OCI_INVALID', `${what} (all refs)`);
  }
});

test('a provenance whose subject digest is {"toString":1} is PROVENANCE_INVALID', async () => {
  const p = join(w.dir, 'prov.json');
  writeFileSync(p, JSON.stringify({ predicateType: 'https://slsa.dev/provenance/v1', subject: [{ name: 'x', digest: { sha256: BOMB } }] }));
  assertRefused(await cli(['rebuild', `${layout}:latest-amd64`, '--provenance', p]), 'PROVENANCE_INVALID', 'subject toString bomb');
  assertRefused(await cli(['diff', p, p]), 'PROVENANCE_INVALID', 'diff: subject toString bomb');
});

test('the environment: XDG_CACHE_HOME a file, SOURCE_DATE_EPOCH and DISTILL_MIRROR_* junk', async () => {
  const file = join(w.dir, 'a-file');
  writeFileSync(file, 'x');
  // The compile cache and the default cache live under XDG_CACHE_HOME: a file there costs the cache, not the command.
  const r = await spawnCli(['inspect', `${layout}:latest-amd64`], { env: { XDG_CACHE_HOME: file }, killAfterMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  assertRefused(await cli(['lock', image, '--keyring', w.archive.key.keyringPath, '--mirror', `debian=${w.archive.url('debian')}`], { XDG_CACHE_HOME: file }), 'CACHE_IO', 'XDG_CACHE_HOME a file');
  for (const epoch of ['yesterday', '-1', '1e9', '99999999999999999999', '9000000000000000']) {
    assertRefused(await cli(['build', image, '--out', join(w.dir, 'o'), ...w.flags], { SOURCE_DATE_EPOCH: epoch }), 'USAGE', `SOURCE_DATE_EPOCH=${epoch}`);
  }
  for (const url of ['ftp://x/debian', 'not a url', 'file://../../etc', 'http://user:pw@127.0.0.1:1/']) {
    const r2 = await cli(['lock', image, '--keyring', w.archive.key.keyringPath, '--cache', w.cache], { DISTILL_MIRROR_DEBIAN: url });
    assert.notEqual(r2.code, 0, `DISTILL_MIRROR_DEBIAN=${url} was accepted`);
    assertRefused(r2, '[A-Z_]+', `DISTILL_MIRROR_DEBIAN=${url}`);
  }
  writeFileSync(join(image, 'image.lock.json'), good);
  assert.equal(readLockOf(image).lockfileVersion, 1);
});
