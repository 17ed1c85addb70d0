// The SLSA provenance of a real build (base-nossl on static, from the committed locks and the frozen
// snapshot) against its build type's own document (docs/buildtypes/image/v1.md, which the buildType
// URI names): externalParameters valid against the schema printed there, every .deb a purl with its
// sha256, every InRelease with its digest and signers; and org.opencontainers.image.base.name: left
// out unless the definition or --base-repository says where the base is published, fully qualified
// then, and never a function of where the image is pushed.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import { buildImage } from '../../src/build.js';
import { isDistillError } from '../../src/errors.js';
import { loadLockChain } from '../../src/lock/load.js';
import { DISTILL_BUILD_TYPE, validateProvenance } from '../../src/provenance/provenance.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { parsePurl } from '../helpers/scanner-readers.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const work = mkdtempSync(join(tmpdir(), 'distill-provenance-'));
after(() => rmSync(work, { recursive: true, force: true }));

const DOC = join(repoRoot, 'docs', 'buildtypes', 'image', 'v1.md');
const BASE_NAME = 'org.opencontainers.image.base.name';
const BASE_DIGEST = 'org.opencontainers.image.base.digest';

/** The JSON Schema of externalParameters, as the build type's document prints it. */
function documentedSchema(): object {
  const md = readFileSync(DOC, 'utf8');
  const block = /JSON Schema \(draft 2020-12\):\s*```json\n([\s\S]*?)```/.exec(md);
  assert.ok(block, 'the document prints the externalParameters schema');
  return JSON.parse(block[1]!) as object;
}

test('the buildType URI names the document in this repository; its complete example is valid', () => {
  const path = new URL(DISTILL_BUILD_TYPE).pathname;
  assert.equal(join(repoRoot, 'docs', `${path}.md`), DOC);
  assert.ok(existsSync(DOC));
  const block = /## Complete example[\s\S]*?```json\n([\s\S]*?)```/.exec(readFileSync(DOC, 'utf8'));
  assert.ok(block);
  const example = JSON.parse(block[1]!) as Record<string, any>;
  assert.deepEqual(validateProvenance(example), []);
  assert.equal(example['predicate'].buildDefinition.buildType, DISTILL_BUILD_TYPE);
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(documentedSchema());
  assert.ok(validate(example['predicate'].buildDefinition.externalParameters), JSON.stringify(validate.errors));
  const deps = example['predicate'].buildDefinition.resolvedDependencies as { uri: string }[];
  assert.ok(deps.some((d) => d.uri.endsWith('/InRelease')) && deps.some((d) => d.uri.startsWith('pkg:deb/debian/')));
});

test('provenance of a build: documented parameters, .debs as purls, InRelease files with signers; base.name', { skip }, async () => {
  const definition = join(repoRoot, 'images', 'base-nossl', 'image.yaml');
  const cacheDir = join(work, 'cache');
  const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
  const build = (out: string, baseRepository?: string) =>
    buildImage(definition, { cacheDir, mirrors, outDir: join(work, out), variants: ['latest'], platforms: ['amd64'], annotations: baseRepository ? { baseRepository } : {} });
  const plain = await build('plain');
  const prov = JSON.parse(readFileSync(join(work, 'plain', 'attestations', 'provenance.intoto.json'), 'utf8')) as Record<string, any>;
  assert.deepEqual(validateProvenance(prov), []);
  const bd = prov['predicate'].buildDefinition;
  assert.equal(bd.buildType, DISTILL_BUILD_TYPE);
  const validate = new Ajv2020({ strict: false, allErrors: true }).compile(documentedSchema());
  assert.ok(validate(bd.externalParameters), JSON.stringify(validate.errors));

  const chain = await loadLockChain(definition);
  const deps = bd.resolvedDependencies as { uri: string; name: string; digest: { sha256: string }; annotations?: Record<string, any>; mediaType?: string }[];
  // Every archive's InRelease, with the digest and signers the lock recorded.
  for (const li of chain) {
    for (const [archive, src] of Object.entries(li.lock.sources)) {
      const d = deps.find((x) => x.uri === `distill:archive/${archive}/dists/${src.suite}/InRelease`);
      assert.ok(d, `${archive} InRelease`);
      assert.equal(d.digest.sha256, src.inRelease.sha256);
      assert.deepEqual(d.annotations!['signedBy'], [...src.signedBy].sort());
      assert.ok((d.annotations!['signedBy'] as string[]).every((f) => /^[0-9A-F]{40}$/.test(f)));
    }
  }
  // Every .deb of amd64, as a purl with the distribution and source package, and its sha256.
  const debs = deps.filter((x) => x.uri.startsWith('pkg:'));
  const locked = chain.flatMap((li) => [...li.lock.architectures['amd64']!.packages, ...(li.lock.architectures['amd64']!.debug ?? [])]);
  assert.deepEqual(debs.map((d) => d.digest.sha256).sort(), [...new Set(locked.map((p) => p.sha256))].sort());
  for (const d of debs) {
    const purl = parsePurl(d.uri);
    const p = locked.find((l) => l.sha256 === d.digest.sha256)!;
    assert.deepEqual([purl.type, purl.namespace, purl.name, purl.version], ['deb', 'debian', p.name, p.version]);
    assert.equal(purl.qualifiers.get('arch'), p.architecture);
    assert.equal(purl.qualifiers.get('distro'), 'debian-13');
    const upstream = purl.qualifiers.get('upstream');
    if (p.source === p.name && p.sourceVersion === p.version) assert.equal(upstream, undefined, p.name);
    else assert.equal(upstream, p.sourceVersion === p.version ? p.source : `${p.source}@${p.sourceVersion}`, p.name);
    assert.equal(d.annotations!['filename'], p.filename);
  }
  assert.ok(debs.some((d) => d.uri.includes('&upstream=glibc')), 'libc6 names glibc');

  // base.name: nothing says where static is published → left out; base.digest stays.
  const manifest = (out: string, digest: string) => JSON.parse(readFileSync(join(work, out, 'blobs', 'sha256', digest.slice(7)), 'utf8')) as { annotations: Record<string, string> };
  const m = manifest('plain', plain.variants[0]!.manifests[0]!.digest);
  assert.equal(m.annotations[BASE_NAME], undefined);
  assert.match(m.annotations[BASE_DIGEST]!, /^sha256:[0-9a-f]{64}$/);
  // --base-repository: fully qualified, recorded in the provenance (a rebuild gives the same digest).
  const named = await build('named', 'registry.example/distill');
  const n = manifest('named', named.variants[0]!.manifests[0]!.digest);
  assert.equal(n.annotations[BASE_NAME], 'registry.example/distill/static:latest');
  assert.equal(n.annotations[BASE_DIGEST], m.annotations[BASE_DIGEST]);
  assert.notEqual(named.variants[0]!.manifests[0]!.digest, plain.variants[0]!.manifests[0]!.digest);
  const namedProv = JSON.parse(readFileSync(join(work, 'named', 'attestations', 'provenance.intoto.json'), 'utf8')) as Record<string, any>;
  assert.equal(namedProv['predicate'].buildDefinition.externalParameters.baseRepository, 'registry.example/distill');
  await assert.rejects(build('bad', 'cc'), (e) => isDistillError(e, 'USAGE') && /fully qualified/.test(e.message));
});
