import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envName, parseMirrorFlags, readAptSources, resolveMirror } from '../../src/debian/mirrors.js';
import { tempDir } from '../helpers/tmp.js';

test('precedence: flag, then environment, then definition, then apt sources', () => {
  const apt = [{ uri: 'http://apt.example.invalid/debian', suites: ['trixie'], components: ['main'], file: 'x' }];
  const env = { DISTILL_MIRROR_DEBIAN: 'file:///env/debian' };
  assert.deepEqual(resolveMirror('debian', 'trixie', 'https://def.example.invalid/debian', { flags: { debian: 'file:///flag/debian' }, env, aptSources: apt }), { url: 'file:///flag/debian', from: 'flag' });
  assert.deepEqual(resolveMirror('debian', 'trixie', 'https://def.example.invalid/debian', { env, aptSources: apt }), { url: 'file:///env/debian', from: 'env' });
  assert.deepEqual(resolveMirror('debian', 'trixie', 'https://def.example.invalid/debian/', { aptSources: apt }), { url: 'https://def.example.invalid/debian', from: 'definition' });
  assert.deepEqual(resolveMirror('debian', 'trixie', undefined, { aptSources: apt }), { url: 'http://apt.example.invalid/debian', from: 'apt' });
});

test('no mirror anywhere is MIRROR_NOT_CONFIGURED and says how to give one', () => {
  assert.throws(
    () => resolveMirror('debian-security', 'trixie-security', undefined, { aptSources: [] }),
    (e: any) => e.code === 'MIRROR_NOT_CONFIGURED' && /DISTILL_MIRROR_DEBIAN_SECURITY/.test(e.hint),
  );
});

test('env names and flag parsing', () => {
  assert.equal(envName('debian-security'), 'DISTILL_MIRROR_DEBIAN_SECURITY');
  assert.deepEqual(parseMirrorFlags(['debian=file:///a/debian/', 'x=http://h.invalid/x']), { debian: 'file:///a/debian', x: 'http://h.invalid/x' });
  assert.throws(() => parseMirrorFlags(['debian']), (e: any) => e.code === 'USAGE');
  assert.throws(() => parseMirrorFlags(['debian=ftp://h/x']), (e: any) => e.code === 'MIRROR_INVALID');
});

test('host apt sources: one-line and deb822 formats, matched by archive root name', () => {
  const dir = tempDir('distill-apt-');
  mkdirSync(join(dir, 'sources.list.d'));
  writeFileSync(join(dir, 'sources.list'), '# comment\ndeb [arch=amd64] http://one.invalid/debian bookworm main\ndeb-src http://one.invalid/debian bookworm main\n');
  writeFileSync(
    join(dir, 'sources.list.d', 'debian.sources'),
    'Types: deb\nURIs: http://two.invalid/debian-security\nSuites: trixie-security\nComponents: main\n\nTypes: deb\nEnabled: no\nURIs: http://off.invalid/debian\nSuites: trixie\nComponents: main\n',
  );
  const entries = readAptSources(dir);
  assert.deepEqual(entries.map((e) => e.uri), ['http://one.invalid/debian', 'http://two.invalid/debian-security']);
  assert.equal(resolveMirror('debian', 'trixie', undefined, { aptSources: entries }).url, 'http://one.invalid/debian');
  assert.equal(resolveMirror('debian-security', 'trixie-security', undefined, { aptSources: entries }).url, 'http://two.invalid/debian-security');
});
