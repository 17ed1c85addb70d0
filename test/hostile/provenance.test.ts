// Hostile catalogue, class 4: provenance given to `rebuild` (and `diff`): an unsigned statement from
// a layout, --provenance, or an attacker who controls a registry's attestation. Missing or mistyped
// fields, a wrong buildType, null entries, absurd counts, image names that climb, and a definition
// whose `extends` reaches out of the rebuild's private directory into the host. Each is the one-line
// coded error, before anything is built, and the rebuild reads nothing of the host's definitions.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DISTILL_BUILD_TYPE } from '../../src/provenance/provenance.js';
import { SLSA_PROVENANCE_V1 } from '../../src/provenance/statement.js';
import { makeTestLayout } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, cli } from './helpers.js';

let work: string;
let layout: string;
let n = 0;

before(async () => {
  work = tempDir('distill-hostile-prov-');
  layout = join(work, 'layout');
  await makeTestLayout(layout, work);
});
after(() => rmSync(work, { recursive: true, force: true }));

const sha = (s: string): string => createHash('sha256').update(s).digest('hex');
const file = (image: string, name: string, content: string) => ({ image, path: `images/${image}/${name}`, content, digest: { sha256: sha(content) } });

function statement(ext: Record<string, unknown>, over: Record<string, unknown> = {}): unknown {
  const def = 'sources:\n  debian:\n    suite: trixie\narchitectures: [amd64]\npackages: [app]\n';
  return {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: 'app:latest-amd64', digest: { sha256: 'a'.repeat(64) } }],
    predicateType: SLSA_PROVENANCE_V1,
    predicate: {
      buildDefinition: {
        buildType: DISTILL_BUILD_TYPE,
        externalParameters: { image: 'app', variants: ['latest'], platforms: ['amd64'], definitions: [file('app', 'image.yaml', def)], locks: [file('app', 'image.lock.json', '{}')], ...ext },
      },
      runDetails: { builder: { id: 'x' } },
    },
    ...over,
  };
}

async function rebuildRefused(prov: unknown, code: string, what: string): Promise<void> {
  const p = join(work, `prov${n++}.json`);
  writeFileSync(p, typeof prov === 'string' ? prov : JSON.stringify(prov));
  const before = readdirSync(tmpdir()).filter((x) => x.startsWith('distill-rebuild-')).length;
  const r = await cli(['rebuild', `${layout}:latest-amd64`, '--provenance', p, '--cache', join(work, 'cache')]);
  assertRefused(r, code, what);
  // The private rebuild directory is gone, also after a refusal.
  assert.ok(readdirSync(tmpdir()).filter((x) => x.startsWith('distill-rebuild-')).length <= before, `${what}: a distill-rebuild-* directory was left`);
}

test('not a statement: null, a list, a string, {}, another predicateType, another buildType, no subject', async () => {
  for (const [what, p] of [
    ['null', 'null'],
    ['a list', '[]'],
    ['a string', '"x"'],
    ['{}', {}],
    ['another predicate type', statement({}, { predicateType: 'https://spdx.dev/Document' })],
    ['no subject', statement({}, { subject: [] })],
    ['a subject with `..`', statement({}, { subject: [{ name: 'x', digest: { sha256: '../../etc/passwd' } }] })],
  ] as [string, unknown][]) {
    await rebuildRefused(p, 'PROVENANCE_INVALID', what);
  }
  const wrongType = statement({}) as any;
  wrongType.predicate.buildDefinition.buildType = 'https://evil.example/build';
  await rebuildRefused(wrongType, 'PROVENANCE_INVALID', 'another buildType');
});

test('externalParameters with null entries, wrong types, climbing names, absurd counts', async () => {
  const cases: [string, Record<string, unknown>, string][] = [
    ['definitions [null]', { definitions: [null], locks: [null] }, 'PROVENANCE_INVALID'],
    ['definitions [1]', { definitions: [1], locks: [2] }, 'PROVENANCE_INVALID'],
    ['a lock entry null', { locks: [null] }, 'PROVENANCE_INVALID'],
    ['the image climbs', { image: '../../etc' }, 'PROVENANCE_INVALID'],
    ['a definition name climbs', { definitions: [file('../x', 'image.yaml', 'x')], locks: [file('../x', 'image.lock.json', '{}')], image: '../x' }, 'PROVENANCE_INVALID'],
    ['variants junk', { variants: [{ __proto__: 1 }] }, 'PROVENANCE_INVALID'],
    ['platforms with a slash', { platforms: ['../amd64'] }, 'PROVENANCE_INVALID'],
    ['100k definitions, none matching its lock', { definitions: Array.from({ length: 100_000 }, () => file('app', 'image.yaml', 'x')), locks: [] }, 'PROVENANCE_INVALID'],
    ['content that does not match its digest', { definitions: [{ ...file('app', 'image.yaml', 'x'), content: 'y' }] }, 'PROVENANCE_MISMATCH'],
    ['sourceDateEpoch junk', { sourceDateEpoch: 'yesterday' }, '(?:PROVENANCE_INVALID|USAGE)'],
    ['sourceDateEpoch negative', { sourceDateEpoch: -1 }, '(?:PROVENANCE_INVALID|USAGE)'],
  ];
  for (const [what, ext, code] of cases) await rebuildRefused(statement(ext), code, what);
  assert.equal(({} as any).polluted, undefined);
});

test('a definition whose extends leaves the rebuild directory is refused, and no host definition is read', async () => {
  // A host definition the attacker wants read (as a base): it must never be reached.
  const host = join(work, 'host-images', 'secret');
  mkdirSync(host, { recursive: true });
  writeFileSync(join(host, 'image.yaml'), 'this: is the host\'s own definition: [\n');
  for (const ext of [`${host}/image.yaml`, `../../../../../../../..${host}`, '/etc/passwd.yaml']) {
    const def = `extends: ${ext}\npackages: [app]\n`;
    await rebuildRefused(statement({ definitions: [file('app', 'image.yaml', def)] }), 'PROVENANCE_INVALID', `extends ${ext}`);
  }
});

test('diff reads the same hostile provenance files with the same codes', async () => {
  for (const [what, ext] of [['definitions [null]', { definitions: [null], locks: [null] }], ['the image climbs', { image: '../../etc' }]] as const) {
    const p = join(work, `dprov${n++}.json`);
    writeFileSync(p, JSON.stringify(statement(ext)));
    assertRefused(await cli(['diff', p, p]), '(?:PROVENANCE_INVALID|LOCK_INVALID)', `diff: ${what}`);
  }
});
