import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LayerTree, mergedUsrPath, type TreeEntry } from '../../src/rootfs/tree.js';

function file(path: string, owner: string, sha = 'a', extra: Partial<TreeEntry> = {}): TreeEntry {
  return { path, type: 'file', mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 1, mtime: 0, owner, body: { kind: 'bytes', data: Buffer.from('x'), sha256: sha }, ...extra };
}
function dir(path: string, owner: string, mode = 0o755): TreeEntry {
  return { path, type: 'dir', mode, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime: 0, owner };
}

const tree = (lower?: Map<string, TreeEntry>, replaces: [string, string][] = []) =>
  new LayerTree({ mergedUsr: true, replaces: (a, b) => replaces.some(([x, y]) => x === a && y === b), ...(lower ? { lower } : {}) });

test('merged /usr: paths under bin, sbin and lib* move under usr/, the top-level links stay', () => {
  assert.equal(mergedUsrPath('lib64/ld-linux-x86-64.so.2'), 'usr/lib64/ld-linux-x86-64.so.2');
  assert.equal(mergedUsrPath('bin/sh'), 'usr/bin/sh');
  assert.equal(mergedUsrPath('bin'), 'bin');
  assert.equal(mergedUsrPath('library/x'), 'library/x');
  const t = tree();
  t.add(file('sbin/ldconfig', 'libc-bin'));
  t.add({ ...file('bin/link', 'x'), type: 'hardlink', size: 0, linkTarget: 'sbin/ldconfig' });
  assert.ok(t.has('usr/sbin/ldconfig'));
  assert.equal(t.get('usr/bin/link')!.linkTarget, 'usr/sbin/ldconfig');
});

test('a file shipped twice differently is PATH_CONFLICT naming both packages; identical copies merge', () => {
  const t = tree();
  t.add(file('usr/bin/tool', 'pkg-a', 'one'));
  assert.equal(t.add(file('usr/bin/tool', 'pkg-b', 'one')), false);
  assert.throws(() => t.add(file('usr/bin/tool', 'pkg-c', 'two')), (e: any) => e.code === 'PATH_CONFLICT' && /pkg-a/.test(e.message) && /pkg-c/.test(e.message));
});

test('Replaces lets the replacing package win; directories merge, first mode kept with a warning', () => {
  const warnings: string[] = [];
  const t = new LayerTree({ mergedUsr: true, replaces: (a, b) => a === 'new' && b === 'old', onWarning: (m) => warnings.push(m) });
  t.add(file('usr/share/x', 'old', 'one'));
  t.add(file('usr/share/x', 'new', 'two'));
  assert.equal(t.get('usr/share/x')!.owner, 'new');
  t.add(file('usr/share/y', 'new', 'three'));
  assert.equal(t.add(file('usr/share/y', 'old', 'four')), false, 'Replaces holds whichever package comes first');
  assert.equal(t.get('usr/share/y')!.owner, 'new');
  t.add(dir('usr/share', 'old'));
  t.add(dir('usr/share', 'new', 0o775));
  assert.equal(t.get('usr/share')!.mode, 0o755);
  assert.equal(warnings.length, 1);
});

test('a path in a base layer conflicts the same way; a generated file replaces it', () => {
  const lower = new Map([['etc/passwd', file('etc/passwd', 'distill:accounts', 'base')], ['usr', dir('usr', 'base-files')]]);
  const t = tree(lower);
  assert.equal(t.add(dir('usr', 'libc6')), false, 'a directory already in the base is not repeated');
  assert.throws(() => t.add(file('etc/passwd', 'evil-pkg', 'other')), (e: any) => e.code === 'PATH_CONFLICT' && /in a base image/.test(e.message));
  assert.equal(t.add(file('etc/passwd', 'distill:accounts', 'mine'), { replace: true }), true);
});

test('sorted() orders by UTF-8 bytes (a-b before a/b) and addMissingParents fills gaps once', () => {
  const t = tree();
  t.add(file('a/b', 'p'));
  t.add(file('a-b', 'p'));
  t.add(file('z/y/x', 'p'));
  t.addMissingParents('distill:test', 0);
  assert.deepEqual(t.sorted().map((e) => e.path), ['a', 'a-b', 'a/b', 'z', 'z/y', 'z/y/x']);
});
