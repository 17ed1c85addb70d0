// Hostile suite, class 3: .debs and indexes are hostile. An entry beneath a symlink — shipped by
// another package, by the same one, or by a base image, pointing anywhere — is UNSAFE_ENTRY: unpacked
// by a runtime it would land wherever the link points (usr/share/x -> /etc plus usr/share/x/passwd
// overwrote /etc/passwd). A Packages line of 64 MiB is refused quickly, in bounded memory.
import { before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { Deb822Parser, MAX_LINE_BYTES, parseDeb822 } from '../../src/debian/deb822.js';
import { isDistillError } from '../../src/errors.js';
import { craftDeb, dir, file, symlink } from '../helpers/craft-deb.js';
import { APP, LIBAPP, assertRefused, cli, controlFor, makeWorld, mustLock, simpleDefinition, swapDeb, type World } from './helpers.js';

let w: World;

const LINKER = { name: 'linker', version: '1', architecture: 'amd64', files: { 'usr/share/doc/linker/copyright': 'c\n' } };
const PAYLOAD = { name: 'payload', version: '1', architecture: 'amd64', files: { 'usr/share/doc/payload/copyright': 'c\n' } };

before(async () => {
  w = await makeWorld([APP, LIBAPP, LINKER, PAYLOAD], 'distill-hostile-deb-');
});

/** Lock `packages` as image `name`, swap in crafted .debs, build: refused with UNSAFE_ENTRY, no output. */
async function refusedBuild(name: string, packages: string[], debs: Record<string, Buffer>, extra = ''): Promise<string> {
  const image = w.define(name, simpleDefinition(packages, extra));
  await mustLock(w, image);
  for (const [pkg, bytes] of Object.entries(debs)) swapDeb(w, image, pkg, bytes);
  const out = join(w.dir, `out-${name}`);
  const r = await cli(['build', image, '--out', out, ...w.flags]);
  assertRefused(r, 'UNSAFE_ENTRY', name);
  assert.equal(existsSync(out), false, 'no output appeared');
  return r.stderr;
}

const linker = (target: string) => craftDeb({ control: controlFor('linker'), entries: [dir('./'), dir('./usr/'), dir('./usr/share/'), symlink('./usr/share/x', target)] });
const payload = () => craftDeb({ control: controlFor('payload'), entries: [file('./usr/share/x/passwd', 'root::0:0:root:/root:/bin/sh\n')] });

test("another package's absolute symlink: usr/share/x -> /etc and usr/share/x/passwd", async () => {
  const err = await refusedBuild('abs', ['linker', 'payload'], { linker: await linker('/etc'), payload: await payload() });
  assert.match(err, /usr\/share\/x\/passwd \(payload\) lies beneath usr\/share\/x, which linker ships as a symlink to \/etc/);
});

test("another package's relative symlink climbing to /etc", async () => {
  await refusedBuild('rel', ['linker', 'payload'], { linker: await linker('../../etc'), payload: await payload() });
});

test('a symlink to a directory inside the image is refused just the same (the link decides where bytes land)', async () => {
  await refusedBuild('inside', ['linker', 'payload'], { linker: await linker('doc'), payload: await payload() });
});

test('its own symlink: a package shipping x -> /etc and then x/passwd', async () => {
  const own = await craftDeb({ control: controlFor('payload'), entries: [dir('./usr/'), dir('./usr/share/'), symlink('./usr/share/x', '/etc'), file('./usr/share/x/passwd', 'evil\n')] });
  await refusedBuild('own', ['payload'], { payload: own });
});

test('an entry beneath a symlink in the base image', async () => {
  const base = w.define('lower', simpleDefinition(['linker']));
  await mustLock(w, base);
  swapDeb(w, base, 'linker', await linker('/etc'));
  await refusedBuild('upper', ['payload'], { payload: await payload() }, 'extends: lower\n');
});

test('a symlink component in a path beneath a file (usr/bin/app/x) is refused too', async () => {
  const p = await craftDeb({ control: controlFor('payload'), entries: [file('./usr/bin/app/x', 'x\n')] });
  await refusedBuild('under-file', ['app', 'payload'], { payload: p });
});

test('a 64 MiB Packages line is refused at the line cap, in linear time (fed in 64 KiB chunks)', { timeout: 60_000 }, () => {
  const parser = new Deb822Parser('Packages', () => {});
  parser.push('Package: a\nDescription: ');
  const chunk = 'x'.repeat(64 * 1024);
  let fed = 0;
  assert.throws(() => {
    for (; fed < 64 * 1024 * 1024; fed += chunk.length) parser.push(chunk);
  }, (e: unknown) => isDistillError(e, 'INDEX_MALFORMED') && /longer than/.test((e as Error).message));
  assert.ok(fed <= MAX_LINE_BYTES + chunk.length, 'refused as soon as the line passed the cap');
});

test('a long line within the cap, split anywhere, parses the same as in one piece', () => {
  const text = `Package: a\nDescription: ${'y'.repeat(3 * 1024 * 1024)}\n continued\n\nPackage: b\r\nVersion: 1\r\n`;
  const whole = parseDeb822(text, 'x');
  const got: string[] = [];
  const parser = new Deb822Parser('x', (p) => got.push(`${p.get('Package')}|${p.get('Description')?.length ?? ''}|${p.get('Version') ?? ''}`));
  for (let i = 0; i < text.length; i += 70_001) parser.push(text.slice(i, i + 70_001));
  parser.end();
  assert.deepEqual(got, whole.map((p) => `${p.get('Package')}|${p.get('Description')?.length ?? ''}|${p.get('Version') ?? ''}`));
  assert.equal(got.length, 2);
});
