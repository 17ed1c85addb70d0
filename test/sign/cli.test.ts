// The signing flow as a maintainer runs it, through the CLI against a real registry: a key pair,
// `build --push --sign-key`, `verify`, the imgpkg promotion (copy dev → prod keeps the signature;
// only prod is signed again with e2e-tests-passed=True), attestations and triangulate.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
const work = tempDir('distill-sign-cli-');
let registry: RunningRegistry;

async function cli(args: string[], env: Record<string, string> = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work, COSIGN_PASSWORD: 'correct horse', ...env } });
  return { code, stdout, stderr };
}

before(async () => {
  if (skip) return;
  registry = await startRegistry();
});
after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('generate-key-pair, build --push --sign-key, verify, copy to prod, sign prod, attest, triangulate', { skip }, async () => {
  const g = await cli(['generate-key-pair', '--dir', work]);
  assert.equal(g.code, 0, g.stderr);
  assert.equal(statSync(join(work, 'cosign.key')).mode & 0o777, 0o600);
  const again = await cli(['generate-key-pair', '--dir', work]);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /\[KEY_EXISTS\]/);

  const dev = `${registry.host}/dev/static`;
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--variant', 'latest', '--push', dev, '--sign-key', join(work, 'cosign.key'), '--json', '--cache', join(work, 'cache'),
    ...Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`])]);
  assert.equal(b.code, 0, b.stderr);
  const built = JSON.parse(b.stdout);
  const index = built.variants[0].index as string;
  assert.equal(built.signed.length, 3, 'the index and both platform manifests');

  const ok = await cli(['verify', `${dev}:latest`, '--key', join(work, 'cosign.pub')]);
  assert.equal(ok.code, 0, ok.stderr);
  assert.equal(JSON.parse(ok.stdout)[0].critical.image['docker-manifest-digest'], index);
  const amd64 = await cli(['verify', `${dev}:latest-amd64`, '--key', join(work, 'cosign.pub')]);
  assert.equal(amd64.code, 0, amd64.stderr);

  // A wrong key fails, with its own code.
  mkdirSync(join(work, 'other'), { recursive: true });
  assert.equal((await cli(['generate-key-pair', '--dir', join(work, 'other')])).code, 0);
  const wrong = await cli(['verify', `${dev}:latest`, '--key', join(work, 'other', 'cosign.pub')]);
  assert.equal(wrong.code, 1);
  assert.match(wrong.stderr, /\[SIGNATURE_INVALID\]/);

  // Promotion: copy keeps the signature; only prod carries e2e-tests-passed=True.
  const prod = `${registry.host}/prod/static`;
  const c = await cli(['copy', `${dev}:latest`, `${prod}:latest`]);
  assert.equal(c.code, 0, c.stderr);
  assert.equal((await cli(['verify', `${prod}:latest`, '--key', join(work, 'cosign.pub')])).code, 0, 'the copied signature verifies at the destination');
  const s = await cli(['sign', `${prod}:latest`, '--key', join(work, 'cosign.key'), '-a', 'e2e-tests-passed=True']);
  assert.equal(s.code, 0, s.stderr);
  assert.equal((await cli(['verify', `${prod}:latest`, '--key', join(work, 'cosign.pub'), '-a', 'e2e-tests-passed=True'])).code, 0);
  const devAnn = await cli(['verify', `${dev}:latest`, '--key', join(work, 'cosign.pub'), '-a', 'e2e-tests-passed=True']);
  assert.equal(devAnn.code, 1);
  assert.match(devAnn.stderr, /\[SIGNATURE_ANNOTATION_MISMATCH\]/);

  // Attestation and triangulate.
  writeFileSync(join(work, 'predicate.json'), JSON.stringify({ buildDefinition: { buildType: 'https://example.invalid/t', externalParameters: {} }, runDetails: { builder: { id: 'https://example.invalid/b' } } }));
  const a = await cli(['attest', `${prod}:latest`, '--key', join(work, 'cosign.key'), '--type', 'slsaprovenance1', '--predicate', join(work, 'predicate.json')]);
  assert.equal(a.code, 0, a.stderr);
  const va = await cli(['verify-attestation', `${prod}:latest`, '--key', join(work, 'cosign.pub'), '--type', 'slsaprovenance1']);
  assert.equal(va.code, 0, va.stderr);
  assert.equal(JSON.parse(va.stdout.trim().split('\n')[0]!).predicateType, 'https://slsa.dev/provenance/v1');
  const t = await cli(['triangulate', `${prod}:latest`, '--type', 'attestation']);
  assert.equal(t.code, 0, t.stderr);
  assert.equal(t.stdout.trim(), `${prod}:sha256-${index.slice(7)}.att`);
  const none = await cli(['verify', `${registry.host}/prod/nothing:latest`, '--key', join(work, 'cosign.pub')]);
  assert.equal(none.code, 1);
});

test('build --push --sign-key --format bundle --sbom-format cyclonedx: cosign v3 bundles only; verify and verify-attestation read them', { skip }, async () => {
  const dir = join(work, 'bundle-keys');
  mkdirSync(dir, { recursive: true });
  assert.equal((await cli(['generate-key-pair', '--dir', dir])).code, 0);
  const repo = `${registry.host}/v3/static`;
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--variant', 'latest', '--platform', 'amd64', '--push', repo, '--sign-key', join(dir, 'cosign.key'),
    '--format', 'bundle', '--sbom-format', 'cyclonedx', '--organization', 'Example Corp', '--json', '--cache', join(work, 'cache'),
    ...Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`])]);
  assert.equal(b.code, 0, b.stderr);
  const built = JSON.parse(b.stdout);
  assert.ok(built.signed.every((s: { bundle?: { via: string } }) => s.bundle?.via === 'tag'), 'fallback tag on distribution 2.8');
  assert.deepEqual(built.attested.map((a: { predicateType: string }) => a.predicateType).sort(), ['https://cyclonedx.org/bom', 'https://slsa.dev/provenance/v1']);
  const platform = built.variants[0].manifests[0].digest as string;

  const v = await cli(['verify', `${repo}:latest`, '--key', join(dir, 'cosign.pub')]);
  assert.equal(v.code, 0, v.stderr);
  assert.equal(JSON.parse(v.stdout)[0].predicateType, 'https://sigstore.dev/cosign/sign/v1');
  const prov = await cli(['verify-attestation', `${repo}:latest`, '--key', join(dir, 'cosign.pub'), '--type', 'slsaprovenance1']);
  assert.equal(prov.code, 0, prov.stderr);
  const deps = JSON.parse(prov.stdout.trim().split('\n')[0]!).predicate.buildDefinition.resolvedDependencies as { uri: string }[];
  assert.ok(deps.some((d) => d.uri === 'distill:archive/debian/dists/trixie/InRelease'));
  const bom = await cli(['verify-attestation', `${repo}@${platform}`, '--key', join(dir, 'cosign.pub'), '--type', 'cyclonedx']);
  assert.equal(bom.code, 0, bom.stderr);
  const cdx = JSON.parse(bom.stdout.trim().split('\n')[0]!).predicate;
  assert.equal(cdx.specVersion, '1.6');
  assert.deepEqual(cdx.metadata.supplier, { name: 'Example Corp' });
  // Nothing in the classic tags: an SPDX attestation was not asked for, and no .sig exists.
  const spdx = await cli(['verify-attestation', `${repo}@${platform}`, '--key', join(dir, 'cosign.pub'), '--type', 'spdxjson']);
  assert.equal(spdx.code, 1);
  assert.match(spdx.stderr, /\[ATTESTATION_NONE\]/);
  const bad = await cli(['sign', `${repo}:latest`, '--key', join(dir, 'cosign.key'), '--format', 'tags']);
  assert.notEqual(bad.code, 0, 'an unknown --format is a usage error');
});
