import { test } from 'node:test';
import assert from 'node:assert/strict';
import { globToRegExp, pathFilter } from '../../src/rootfs/filter.js';

test('globs: * stays in one component, ** crosses them, ? is one character', () => {
  assert.ok(globToRegExp('usr/share/doc/*/copyright').test('usr/share/doc/libc6/copyright'));
  assert.ok(!globToRegExp('usr/share/doc/*/copyright').test('usr/share/doc/a/b/copyright'));
  assert.ok(globToRegExp('/usr/**/*.pyc').test('usr/lib/python3.13/__pycache__/x.cpython-313.pyc'));
  assert.ok(globToRegExp('usr/**/x').test('usr/x'));
  assert.ok(globToRegExp('lib?').test('lib6'));
  assert.ok(!globToRegExp('a.b').test('aXb'), 'dots are literal');
});

test('defaults drop docs, manuals and translations, keep copyright and C.utf8', () => {
  const f = pathFilter();
  assert.equal(f.keepFile('usr/share/doc/libc6/changelog.Debian.gz'), false);
  assert.equal(f.keepFile('usr/share/doc/libc6/copyright'), true);
  assert.equal(f.keepFile('usr/share/man/man1/ls.1.gz'), false);
  assert.equal(f.keepFile('usr/share/locale/de/LC_MESSAGES/libc.mo'), false);
  assert.equal(f.keepFile('usr/lib/locale/C.utf8/LC_CTYPE'), true);
  assert.equal(f.keepFile('usr/lib/x86_64-linux-gnu/libc.so.6'), true);
  assert.equal(f.keepDir('usr/share/man'), false);
  assert.equal(f.keepDir('usr/share'), true);
});

test("an image's rules take precedence: its keep over its drop over the defaults", () => {
  const f = pathFilter({ keep: ['usr/share/man/man1/ls.1.gz'], drop: ['usr/lib/*/gconv/**', 'usr/share/doc/*/copyright'] });
  assert.equal(f.keepFile('usr/share/man/man1/ls.1.gz'), true);
  assert.equal(f.keepFile('usr/lib/x86_64-linux-gnu/gconv/UTF-16.so'), false);
  assert.equal(f.keepFile('usr/share/doc/libc6/copyright'), false);
});
