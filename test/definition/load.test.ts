import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { imageSchema, loadDefinition } from '../../src/definition/load.js';
import { unsupportedKeywords } from '../../src/definition/schema.js';
import { findDefinitions } from '../../src/definition/find.js';
import { javaVersion, substituteVersions } from '../../src/definition/types.js';
import { repoRoot } from '../helpers/paths.js';
import { baseName } from '../../src/build/images.js';
import { tempDir } from '../helpers/tmp.js';

function images(files: Record<string, string>): string {
  const root = tempDir('distill-def-');
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(root, name), { recursive: true });
    writeFileSync(join(root, name, 'image.yaml'), text);
  }
  return root;
}

const SOURCES = 'sources:\n  debian:\n    suite: trixie\n';

test('the shipped schema uses only keywords the validator implements', () => {
  assert.deepEqual(unsupportedKeywords(imageSchema()), []);
});

test('a misspelled field names file, line and field, and suggests the right one', async () => {
  const root = images({ app: `${SOURCES}architectures: [amd64]\npakages:\n  - libc6\n` });
  await assert.rejects(loadDefinition(join(root, 'app', 'image.yaml')), (e: any) => {
    assert.equal(e.code, 'DEFINITION_INVALID');
    assert.match(e.message, /app\/image\.yaml:5: pakages: unknown field "pakages" — did you mean "packages"\?/);
    return true;
  });
});

test('wrong types and bad names are reported at their own line', async () => {
  const root = images({ app: `${SOURCES}architectures: amd64\npackages:\n  - libc6\n  - Bad_Name\n` });
  await assert.rejects(loadDefinition(join(root, 'app', 'image.yaml')), (e: any) => {
    assert.equal(e.code, 'DEFINITION_INVALID');
    assert.match(e.message, /:4: architectures: expected an array, got a string/);
    assert.match(e.message, /:7: packages\[1\]: "Bad_Name" does not match/);
    return true;
  });
});

test('YAML syntax errors and duplicate keys are DEFINITION_SYNTAX with a position', async () => {
  const root = images({ a1: `${SOURCES}packages: [libc6\n`, a2: `${SOURCES}packages: [a1]\npackages: [b2]\n` });
  await assert.rejects(loadDefinition(join(root, 'a1', 'image.yaml')), (e: any) => e.code === 'DEFINITION_SYNTAX' && /image\.yaml:\d+:\d+:/.test(e.message));
  await assert.rejects(loadDefinition(join(root, 'a2', 'image.yaml')), (e: any) => e.code === 'DEFINITION_SYNTAX');
});

test('extends: sources and architectures are inherited, excludes carry over unless requested by name', async () => {
  const root = images({
    base: `${SOURCES}architectures: [amd64, arm64]\npackages: [base-files]\nexclude: [debconf, openssl]\n`,
    child: 'extends: base\npackages: [openssl]\n',
    narrow: 'extends: child\narchitectures: [amd64]\npackages: [python3]\nexclude: [perl-base]\n',
  });
  const child = await loadDefinition(join(root, 'child', 'image.yaml'));
  assert.equal(child.name, 'child');
  assert.deepEqual(child.architectures, ['amd64', 'arm64']);
  assert.deepEqual([...child.sources.keys()], ['debian']);
  assert.deepEqual(child.exclude, ['debconf']);
  assert.equal(child.base?.name, 'base');
  const narrow = await loadDefinition(join(root, 'narrow', 'image.yaml'));
  assert.deepEqual(narrow.architectures, ['amd64']);
  assert.deepEqual(narrow.exclude, ['debconf', 'perl-base']);
});

test('extends: a cycle, a missing base and an architecture the base lacks are errors', async () => {
  const root = images({
    one: `extends: two\n${SOURCES}packages: [aa]\n`,
    two: `extends: one\n${SOURCES}packages: [bb]\n`,
    orphan: 'extends: nowhere\npackages: [aa]\n',
    base: `${SOURCES}architectures: [amd64]\npackages: [aa]\n`,
    wide: 'extends: base\narchitectures: [amd64, riscv64]\npackages: [bb]\n',
  });
  await assert.rejects(loadDefinition(join(root, 'one', 'image.yaml')), (e: any) => e.code === 'DEFINITION_CYCLE');
  await assert.rejects(loadDefinition(join(root, 'orphan', 'image.yaml')), (e: any) => e.code === 'DEFINITION_NOT_FOUND');
  await assert.rejects(loadDefinition(join(root, 'wide', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /riscv64/.test(e.message));
});

test('the checksum is of the file bytes: any edit makes a lock stale', async () => {
  const root = images({ app: `${SOURCES}architectures: [amd64]\npackages: [libc6]\n` });
  const f = join(root, 'app', 'image.yaml');
  const a = await loadDefinition(f);
  writeFileSync(f, readFileSync(f, 'utf8') + '# a comment\n');
  const b = await loadDefinition(f);
  assert.notEqual(a.sha256, b.sha256);
});

test('the standard images all load, and a directory of images expands sorted', async () => {
  const files = await findDefinitions([join(repoRoot, 'images')]);
  assert.deepEqual(files.map((f) => f.split('/').slice(-2, -1)[0]), ['base', 'base-nossl', 'cc', 'java', 'nodejs', 'python3', 'static']);
  for (const f of files) await loadDefinition(f);
});

test('own files: paths must be normalised, sources must stay inside the definition directory', async () => {
  const root = images({
    up: `${SOURCES}architectures: [amd64]\npackages: [aa]\nfiles:\n  - {path: /etc/hostcopy, source: /etc/hostname}\n`,
    dots: `${SOURCES}architectures: [amd64]\npackages: [aa]\nfiles:\n  - {path: /../../escape, content: x}\n`,
    ok: `${SOURCES}architectures: [amd64]\npackages: [aa]\nfiles:\n  - {path: /etc/app, source: app.conf}\n`,
  });
  writeFileSync(join(root, 'ok', 'app.conf'), 'x');
  await assert.rejects(loadDefinition(join(root, 'up', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /outside the definition's directory/.test(e.message));
  await assert.rejects(loadDefinition(join(root, 'dots', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /normalised/.test(e.message));
  assert.equal((await loadDefinition(join(root, 'ok', 'image.yaml'))).files[0]!.source, join(root, 'ok', 'app.conf'));
  writeFileSync(join(root, 'ok', 'dev.yaml'), `${SOURCES}architectures: [amd64]\npackages: [aa]\n`);
  await assert.rejects(loadDefinition(join(root, 'ok', 'dev.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /image\.yaml/.test(e.message));
});

test('repository: where an image is published, fully qualified, naming its children\'s base.name', async () => {
  const root = images({
    app: `${SOURCES}architectures: [amd64]\nrepository: registry.example/distill/app\npackages: [libc6]\n`,
    bare: `${SOURCES}architectures: [amd64]\nrepository: app\npackages: [libc6]\n`,
  });
  const def = await loadDefinition(join(root, 'app', 'image.yaml'));
  assert.equal(def.repository, 'registry.example/distill/app');
  assert.equal(baseName(def, 'nonroot', {}), 'registry.example/distill/app:nonroot');
  assert.equal(baseName(def, 'latest', { baseRepository: 'mirror.example:5000/base/' }), 'mirror.example:5000/base/app:latest', '--base-repository wins');
  assert.equal(baseName({ name: 'app' }, 'latest', {}), undefined, 'nothing says where: no base.name');
  await assert.rejects(loadDefinition(join(root, 'bare', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /repository/.test(e.message));
});

test('borrow: files of a package that is not installed; normalised globs, never a package the image installs', async () => {
  const ok = images({ app: `${SOURCES}architectures: [amd64]\npackages: [libc6]\nborrow:\n  - package: libc-bin\n    paths: [/usr/lib/locale/C.utf8/**]\n` });
  const def = await loadDefinition(join(ok, 'app', 'image.yaml'));
  assert.deepEqual(def.borrow, [{ package: 'libc-bin', paths: ['/usr/lib/locale/C.utf8/**'] }]);
  const installed = images({ app: `${SOURCES}architectures: [amd64]\npackages: [libc-bin]\nborrow:\n  - {package: libc-bin, paths: [usr/lib/x]}\n` });
  await assert.rejects(loadDefinition(join(installed, 'app', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /also installed/.test(e.message));
  const climbing = images({ app: `${SOURCES}architectures: [amd64]\npackages: [libc6]\nborrow:\n  - {package: libc-bin, paths: [usr/../etc/shadow]}\n` });
  await assert.rejects(loadDefinition(join(climbing, 'app', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID' && /not normalised/.test(e.message));
  const noPaths = images({ app: `${SOURCES}architectures: [amd64]\npackages: [libc6]\nborrow:\n  - {package: libc-bin}\n` });
  await assert.rejects(loadDefinition(join(noPaths, 'app', 'image.yaml')), (e: any) => e.code === 'DEFINITION_INVALID');
});

test('${java-version:PKG} reads the Java version from an OpenJDK package version as distroless does; ${version:PKG} the Debian version', () => {
  assert.equal(javaVersion('21.0.13.1+2-1~deb13u1'), '21.0.13.1');
  assert.equal(javaVersion('21.0.5+11-1~deb12u1'), '21.0.5');
  assert.equal(javaVersion('17.0.2.0+8-1'), '17.0.2');
  const versions: Record<string, string> = { 'openjdk-21-jre-headless': '21.0.13.1+2-1~deb13u1' };
  const never = (pkg: string): never => { throw new Error(`no ${pkg}`); };
  assert.equal(substituteVersions('v=${java-version:openjdk-21-jre-headless} d=${version:openjdk-21-jre-headless} ${arch}', (p) => versions[p], never), 'v=21.0.13.1 d=21.0.13.1+2-1~deb13u1 ${arch}');
  assert.throws(() => substituteVersions('${version:nodejs}', (p) => versions[p], never), /no nodejs/);
});
