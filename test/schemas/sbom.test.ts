// The SBOMs of real python3 (latest, debug) and java (latest) builds from the frozen snapshot against
// SPDX 2.3's schema constraints and spec rules as spdx.ts re-states them (the official files are not
// installable here: see there), every licence expression through spdx-expression-parse, every purl
// through the purl spec's parser, documentNamespace unique across documents; their CycloneDX twins
// against the official CycloneDX 1.6 schema. Each rule is also shown to reject a broken copy.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { cyclonedx16Problems } from '../helpers/schemas.js';
import { tempDir } from '../helpers/tmp.js';
import { spdx23Problems } from './spdx.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
type Json = Record<string, any>;
const work = tempDir('distill-schemas-sbom-');
const docs = new Map<string, Json>();
const boms = new Map<string, Json>();

before(async () => {
  if (skip) return;
  const cacheDir = join(work, 'cache');
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  for (const [image, variants] of [['python3', ['latest', 'debug']], ['java', ['latest']]] as const) {
    const out = join(work, image);
    await buildImage(join(repoRoot, 'images', image, 'image.yaml'), { cacheDir, mirrors, outDir: out, variants, platforms: ['amd64'] });
    for (const f of readdirSync(join(out, 'attestations'))) {
      const doc = JSON.parse(readFileSync(join(out, 'attestations', f), 'utf8')) as Json;
      if (f.endsWith('.spdx.json')) docs.set(`${image}/${f}`, doc);
      if (f.endsWith('.cdx.json')) boms.set(`${image}/${f}`, doc);
    }
  }
});

test('SPDX 2.3: every SBOM of python3 and java valid (schema constraints, clauses 6–11, Annex D and F)', { skip }, () => {
  assert.deepEqual([...docs.keys()].sort(), ['java/sbom-latest-amd64.spdx.json', 'python3/sbom-debug-amd64.spdx.json', 'python3/sbom-latest-amd64.spdx.json']);
  for (const [name, doc] of docs) {
    assert.deepEqual(spdx23Problems(doc), [], name);
    // Every Debian package is there with a purl and its .deb's SHA256; the image DESCRIBES-d.
    const debs = (doc['packages'] as Json[]).filter((p) => String(p['SPDXID']).startsWith('SPDXRef-Package-deb-'));
    assert.ok(debs.length > 20, `${name}: ${debs.length} packages`);
    for (const p of debs) {
      assert.ok((p['externalRefs'] as Json[]).some((r) => r['referenceType'] === 'purl' && String(r['referenceLocator']).startsWith('pkg:deb/debian/')), `${name} ${p['name']}: purl`);
      assert.ok((p['checksums'] as Json[]).some((c) => c['algorithm'] === 'SHA256'), `${name} ${p['name']}: sha256`);
    }
  }
});

test('SPDX 2.3: documentNamespace is unique to each document (clause 6.5)', { skip }, () => {
  const namespaces = [...docs.values()].map((d) => d['documentNamespace'] as string);
  assert.equal(new Set(namespaces).size, namespaces.length, namespaces.join('\n'));
});

test('CycloneDX 1.6: every BOM of python3 and java valid against the official schema', { skip }, () => {
  assert.equal(boms.size, 3);
  for (const [name, bom] of boms) assert.deepEqual(cyclonedx16Problems(bom), [], name);
  const serials = [...boms.values()].map((b) => b['serialNumber'] as string);
  assert.equal(new Set(serials).size, serials.length, 'serialNumber differs between BOMs');
});

test('each SPDX rule rejects a broken copy (the validator can fail)', { skip }, () => {
  const doc = docs.get('python3/sbom-latest-amd64.spdx.json')!;
  const broken = (edit: (d: Json) => void): string[] => { const c = structuredClone(doc); edit(c); return spdx23Problems(c); };
  const deb = (d: Json): Json => (d['packages'] as Json[]).find((p) => p['name'] === 'libc6')!;
  const cases: [string, (d: Json) => void][] = [
    ['spdxVersion 2.2', (d) => { d['spdxVersion'] = 'SPDX-2.2'; }],
    ['no documentNamespace', (d) => { delete d['documentNamespace']; }],
    ['namespace with #', (d) => { d['documentNamespace'] += '#x'; }],
    ['created with an offset', (d) => { d['creationInfo']['created'] = '2026-11-20T00:12:42+01:00'; }],
    ['creator without a type', (d) => { d['creationInfo']['creators'] = ['distill']; }],
    ['unknown document property', (d) => { d['creator'] = 'x'; }],
    ['package without downloadLocation', (d) => { delete deb(d)['downloadLocation']; }],
    ['bad SPDXID', (d) => { deb(d)['SPDXID'] = 'SPDXRef-libc6_amd64'; }],
    ['repeated SPDXID', (d) => { deb(d)['SPDXID'] = 'SPDXRef-Image'; }],
    ['OPERATING_SYSTEM', (d) => { deb(d)['primaryPackagePurpose'] = 'OPERATING_SYSTEM'; }],
    ['filesAnalyzed omitted', (d) => { delete deb(d)['filesAnalyzed']; }],
    ['checksum upper-case', (d) => { deb(d)['checksums'][0]['checksumValue'] = String(deb(d)['checksums'][0]['checksumValue']).toUpperCase(); }],
    ['checksum algorithm', (d) => { deb(d)['checksums'][0]['algorithm'] = 'SHA-256'; }],
    ['licence expression', (d) => { deb(d)['licenseDeclared'] = 'GPL-2+ or LGPL'; }],
    ['undeclared LicenseRef', (d) => { deb(d)['licenseDeclared'] = 'LicenseRef-nowhere'; }],
    ['supplier syntax', (d) => { deb(d)['supplier'] = 'GNU Libc Maintainers'; }],
    ['purl category', (d) => { deb(d)['externalRefs'][0]['referenceCategory'] = 'PACKAGE MANAGER'; }],
    ['purl without scheme', (d) => { deb(d)['externalRefs'][0]['referenceLocator'] = 'deb/debian/libc6@2.41'; }],
    ['relationship type', (d) => { d['relationships'][0]['relationshipType'] = 'HAS'; }],
    ['dangling relationship', (d) => { d['relationships'].push({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-nothing' }); }],
    ['describes nothing', (d) => { d['relationships'] = (d['relationships'] as Json[]).filter((r) => r['relationshipType'] !== 'DESCRIBES'); }],
  ];
  for (const [what, edit] of cases) assert.notDeepEqual(broken(edit), [], `${what} is rejected`);
});
