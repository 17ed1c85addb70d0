import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { PackageRecord } from '../../src/debian/packages-index.js';
import { buildUniverse, resolve } from '../../src/debian/resolve.js';

function pkg(name: string, version: string, fields: Partial<PackageRecord> = {}): PackageRecord {
  return {
    name, version, architecture: 'amd64', source: name, sourceVersion: version, multiArch: 'no', essential: false, priority: 'optional',
    depends: '', preDepends: '', provides: '', conflicts: '', breaks: '',
    filename: `pool/main/${name[0]}/${name}/${name}_${version}_amd64.deb`, size: 1, sha256: 'a'.repeat(64), archive: 'debian',
    ...fields,
  };
}

function closure(records: PackageRecord[], requested: string[], extra: { exclude?: string[]; installed?: Map<string, any> } = {}) {
  const universe = buildUniverse(records, 'amd64', ['debian', 'debian-security']);
  const r = resolve({ universe, requested, exclude: extra.exclude ?? [], image: 'test', ...(extra.installed ? { installed: extra.installed } : {}) });
  return Object.fromEntries([...r.packages].map(([n, p]) => [n, `${p.record.version}${p.depends.length ? ' → ' + p.depends.join(',') : ''}`]));
}

test('the highest version across sources is the candidate; other architectures are ignored', () => {
  const got = closure(
    [pkg('libc6', '2.41-12'), pkg('libc6', '2.41-12+deb13u4', { archive: 'debian-security' }), pkg('libc6', '9.9', { architecture: 'arm64' }), pkg('app', '1', { depends: 'libc6 (>= 2.41)' })],
    ['app'],
  );
  assert.deepEqual(got, { app: '1 → libc6', libc6: '2.41-12+deb13u4' });
});

test('alternatives: the first installable one, unless a later one is already chosen', () => {
  const recs = [
    pkg('aa', '1', { depends: 'mawk | gawk' }),
    pkg('bb', '1', { depends: 'gawk | mawk' }),
    pkg('mawk', '1'),
    pkg('gawk', '1'),
    pkg('cc', '1', { depends: 'missing | mawk' }),
  ];
  assert.deepEqual(closure(recs, ['aa']), { aa: '1 → mawk', mawk: '1' });
  assert.deepEqual(closure(recs, ['cc']), { cc: '1 → mawk', mawk: '1' });
  // aa is resolved first and chooses mawk; bb's group is then already satisfied by mawk.
  assert.deepEqual(closure(recs, ['aa', 'bb']), { aa: '1 → mawk', bb: '1 → mawk', mawk: '1' });
});

test('virtual packages, versioned Provides and provider preference', () => {
  const recs = [
    pkg('app', '1', { depends: 'awk, libfoo-api (>= 2)' }),
    pkg('original-awk', '1', { provides: 'awk', priority: 'optional' }),
    pkg('mawk', '1', { provides: 'awk', priority: 'required' }),
    pkg('foo1', '1', { provides: 'libfoo-api (= 1)' }),
    pkg('foo2', '1', { provides: 'libfoo-api (= 2.5)' }),
  ];
  assert.deepEqual(closure(recs, ['app']), { app: '1 → foo2,mawk', foo2: '1', mawk: '1' });
  // An unversioned Provides never satisfies a versioned dependency.
  assert.throws(() => closure([pkg('xx', '1', { depends: 'vv (>= 1)' }), pkg('pp', '1', { provides: 'vv' })], ['xx']), (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE');
});

test('an unsatisfiable dependency names the chain that required it', () => {
  const recs = [pkg('top', '1', { depends: 'mid' }), pkg('mid', '1', { depends: 'leaf (>= 2)' }), pkg('leaf', '1.5')];
  assert.throws(
    () => closure(recs, ['top']),
    (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE' && e.message.includes('top → mid') && e.message.includes('leaf (>= 2)') && e.message.includes('1.5'),
  );
});

test('unknown requested packages suggest close names; virtual ones name their providers', () => {
  const recs = [pkg('python3.13-minimal', '1'), pkg('python3.13', '1'), pkg('mawk', '1', { provides: 'awk' })];
  assert.throws(() => closure(recs, ['python3.13-minimall']), (e: any) => e.code === 'PACKAGE_UNKNOWN' && e.message.includes('did you mean "python3.13-minimal"'));
  assert.throws(() => closure(recs, ['awk']), (e: any) => e.code === 'PACKAGE_UNKNOWN' && e.message.includes('mawk'));
});

test('Pre-Depends are followed; Recommends are not; Essential is not added implicitly', () => {
  const recs = [
    pkg('app', '1', { preDepends: 'libc6', depends: '' }),
    pkg('libc6', '1'),
    pkg('dash', '1', { essential: true, priority: 'required' }),
  ];
  assert.deepEqual(closure(recs, ['app']), { app: '1 → libc6', libc6: '1' });
});

test('exclude prunes a package and what only it pulled in, and satisfies dependencies on it', () => {
  const recs = [
    pkg('tzdata', '1', { depends: 'debconf (>= 0.5) | debconf-2.0' }),
    pkg('debconf', '1', { preDepends: 'perl-base', provides: 'debconf-2.0' }),
    pkg('perl-base', '1'),
    pkg('other', '1', { depends: 'debconf-2.0, perl-base' }),
  ];
  assert.deepEqual(closure(recs, ['tzdata']), { debconf: '1 → perl-base', 'perl-base': '1', tzdata: '1 → debconf' });
  assert.deepEqual(closure(recs, ['tzdata'], { exclude: ['debconf'] }), { tzdata: '1' });
  // perl-base stays when something else needs it directly.
  assert.deepEqual(closure(recs, ['tzdata', 'other'], { exclude: ['debconf'] }), { other: '1 → perl-base', 'perl-base': '1', tzdata: '1' });
});

test('a base image closure counts as installed and is not repeated', () => {
  const recs = [pkg('libc6', '2'), pkg('python', '1', { depends: 'libc6 (>= 2), libffi' }), pkg('libffi', '1', { depends: 'libc6' })];
  const installed = new Map([['libc6', { name: 'libc6', version: '2', architecture: 'amd64' }]]);
  assert.deepEqual(closure(recs, ['python'], { installed }), { libffi: '1 → libc6', python: '1 → libc6,libffi' });
});

test('architecture qualifiers: :any needs Multi-Arch allowed; arch restrictions apply', () => {
  const recs = [
    pkg('tool', '1', { depends: 'python3:any (>= 3.11), foo [arm64], bar [!arm64]' }),
    pkg('python3', '3.13', { multiArch: 'allowed' }),
    pkg('foo', '1'),
    pkg('bar', '1'),
    pkg('strict', '1', { depends: 'libonly:any' }),
    pkg('libonly', '1'),
  ];
  assert.deepEqual(closure(recs, ['tool']), { bar: '1', python3: '3.13', tool: '1 → bar,python3' });
  assert.throws(() => closure(recs, ['strict']), (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE');
});

test('Conflicts between chosen packages are an error', () => {
  const recs = [pkg('aa', '1', { depends: 'bb, cc' }), pkg('bb', '1', { conflicts: 'cc' }), pkg('cc', '1')];
  assert.throws(() => closure(recs, ['aa']), (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE' && /Conflicts cc/.test(e.message));
});

test('requesting an excluded package is a definition error', () => {
  assert.throws(() => closure([pkg('aa', '1')], ['aa'], { exclude: ['aa'] }), (e: any) => e.code === 'DEFINITION_INVALID');
});

test('a malformed Provides in an unrelated package does not break resolution; in a chosen one it is an error', () => {
  const recs = [pkg('app', '1', { depends: 'libok' }), pkg('libok', '1'), pkg('junk', '1', { provides: 'BAD NAME ((' })];
  assert.deepEqual(closure(recs, ['app']), { app: '1 → libok', libok: '1' });
  assert.throws(() => closure([pkg('app', '1', { depends: 'libok (>= ' }), pkg('libok', '1')], ['app']), (e: any) => e.code === 'RELATION_INVALID' && /app/.test(e.message));
});

test('a base image whose version no longer fits is an error, not a second copy; conflicts with it count', () => {
  const recs = [pkg('libfoo', '2.0'), pkg('app', '1', { depends: 'libfoo (>= 2)' }), pkg('rival', '1', { conflicts: 'libfoo' })];
  const installed = new Map([['libfoo', { name: 'libfoo', version: '1.0', architecture: 'amd64' }]]);
  assert.throws(() => closure(recs, ['app'], { installed }), (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE' && /base image has libfoo 1\.0/.test(e.message) && /relock/.test(e.hint));
  assert.throws(() => closure(recs, ['rival'], { installed }), (e: any) => e.code === 'DEPENDENCY_UNSATISFIABLE' && /Conflicts libfoo/.test(e.message));
});
