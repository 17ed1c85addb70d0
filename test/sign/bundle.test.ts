// Sigstore bundle v0.3 referrers (cosign v3's default) on Debian's docker-registry, which has no
// referrers API: the fallback index under `sha256-<hex>` as go-containerregistry keeps it, the referrer
// manifest as cosign's BUNDLE_SPEC describes it, and every bundle parsed by @sigstore/bundle and
// verified by @sigstore/verify (sigstore-js) with public-key trust material and no log or timestamp —
// an implementation that shares nothing with distill's. verify / verify-attestation read bundles and
// classic tags alike; --format both writes both; a bundle by another key or about another image fails.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bundleFromJSON } from '@sigstore/bundle';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';
import { attestImage, verifyAttestation } from '../../src/attest/attest.js';
import { copyImage } from '../../src/copy.js';
import { isDistillError } from '../../src/errors.js';
import { signImage } from '../../src/sign/sign.js';
import { verifyImage } from '../../src/sign/verify.js';
import { signBundle } from '../../src/sign/bundle.js';
import { writeBundle } from '../../src/sign/bundle-store.js';
import { makeStatement } from '../../src/provenance/statement.js';
import { RegistryClient } from '../../src/registry/client.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { ecKeyPair, pushTo, tagsOf, testLayout, type KeyPair } from './helpers.js';

const { skip } = needsRegistry();
const BUNDLE = 'application/vnd.dev.sigstore.bundle.v0.3+json';
const SIGN = 'https://sigstore.dev/cosign/sign/v1';
const SLSA1 = 'https://slsa.dev/provenance/v1';
let registry: RunningRegistry;
let work: string;
let layout: { dir: string; index: string; amd64: string };
const key = ecKeyPair();
const other = ecKeyPair();

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  work = mkdtempSync(join(tmpdir(), 'distill-bundle-'));
  layout = await testLayout(work);
});
after(async () => {
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function repo(name: string): Promise<string> {
  await pushTo(layout.dir, registry.host, `distill/${name}`);
  return `${registry.host}/distill/${name}`;
}

/** Plain HTTP to the registry, written here (not distill's client). */
async function get(path: string, accept = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json'): Promise<{ status: number; body: Buffer }> {
  const res = await fetch(`http://${registry.host}${path}`, { headers: { accept } });
  return { status: res.status, body: Buffer.from(await res.arrayBuffer()) };
}

interface Referrer { manifest: Record<string, any>; bundle: Buffer }

/** The bundles that the fallback index of `digest` lists, read by hand. */
async function fallbackBundles(repository: string, digest: string): Promise<{ index: Record<string, any>; referrers: Referrer[] }> {
  const idx = await get(`/v2/${repository}/manifests/sha256-${digest.slice(7)}`);
  assert.equal(idx.status, 200, 'the fallback tag exists');
  const index = JSON.parse(idx.body.toString('utf8')) as Record<string, any>;
  assert.equal(index['mediaType'], 'application/vnd.oci.image.index.v1+json');
  const referrers: Referrer[] = [];
  for (const d of index['manifests'] as Record<string, any>[]) {
    assert.equal(d['artifactType'], BUNDLE);
    const m = await get(`/v2/${repository}/manifests/${d['digest']}`);
    assert.equal(createHash('sha256').update(m.body).digest('hex'), (d['digest'] as string).slice(7));
    const manifest = JSON.parse(m.body.toString('utf8')) as Record<string, any>;
    const layer = manifest['layers'][0];
    const blob = await get(`/v2/${repository}/blobs/${layer.digest}`, '*/*');
    referrers.push({ manifest, bundle: blob.body });
  }
  return { index, referrers };
}

/** sigstore-js: parse the bundle and verify it with the public key as trust material (no tlog, no timestamps). */
function sigstoreVerifies(bundleBytes: Buffer, pair: KeyPair): { ok: boolean; error?: string; statement?: Record<string, any> } {
  const bundle = bundleFromJSON(JSON.parse(bundleBytes.toString('utf8')));
  const der = pair.publicKey.export({ type: 'spki', format: 'der' });
  const hint = (bundle.verificationMaterial.content as { $case: string; publicKey: { hint: string } }).publicKey.hint;
  const root = { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1', tlogs: [], certificateAuthorities: [], ctlogs: [], timestampAuthorities: [] };
  const trust = toTrustMaterial(root as never, { [hint]: { rawBytes: der, keyDetails: 5 /* PKIX_ECDSA_P256_SHA_256 */ } as never });
  try {
    new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 }).verify(toSignedEntity(bundle));
    const env = bundle.content.$case === 'dsseEnvelope' ? bundle.content.dsseEnvelope : undefined;
    return { ok: true, ...(env ? { statement: JSON.parse(Buffer.from(env.payload).toString('utf8')) as Record<string, any> } : {}) };
  } catch (e) {
    return { ok: false, error: (e as Error).message };
  }
}

test('sign --format bundle: referrers in the fallback index, verified by sigstore-js and distill verify', { skip }, async () => {
  const ref = await repo('bundle-sign');
  const repository = 'distill/bundle-sign';
  const signed = await signImage(`${ref}:latest`, { privateKey: key.privateKey, recursive: true, format: 'bundle' });
  assert.equal(signed.length, 3, 'the index and both platform manifests');
  assert.ok(signed.every((s) => s.bundle?.via === 'tag'), 'distribution 2.8 has no referrers API: the fallback tag');
  // The registry really has no referrers API, and distill wrote no classic tag.
  assert.equal((await get(`/v2/${repository}/referrers/${layout.index}`)).status, 404);
  assert.equal((await tagsOf(registry.host, repository)).some((t) => t.endsWith('.sig')), false);

  for (const s of signed) {
    const { index, referrers } = await fallbackBundles(repository, s.digest);
    assert.equal(referrers.length, 1);
    const entry = index['manifests'][0];
    assert.equal(entry['annotations']['dev.sigstore.bundle.content'], 'dsse-envelope');
    assert.equal(entry['annotations']['dev.sigstore.bundle.predicateType'], SIGN);
    const { manifest, bundle } = referrers[0]!;
    assert.equal(manifest['artifactType'], BUNDLE);
    assert.equal(manifest['subject']['digest'], s.digest, 'subject = the image');
    assert.deepEqual(manifest['config'], { mediaType: 'application/vnd.oci.empty.v1+json', digest: 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a', size: 2 });
    assert.equal(manifest['layers'][0].mediaType, BUNDLE);
    assert.match(manifest['layers'][0].annotations['org.opencontainers.image.title'], /^sha256-[0-9a-f]{64}\.sigstore\.json$/);
    const parsed = JSON.parse(bundle.toString('utf8')) as Record<string, any>;
    assert.equal(parsed['mediaType'], BUNDLE);
    assert.deepEqual(parsed['verificationMaterial']['tlogEntries'], [], 'key-signed: no tlog entry');
    const v = sigstoreVerifies(bundle, key);
    assert.ok(v.ok, v.error);
    assert.equal(v.statement!['predicateType'], SIGN);
    assert.deepEqual(v.statement!['subject'].map((x: { digest: { sha256: string } }) => x.digest.sha256), [s.digest.slice(7)]);
    assert.equal(sigstoreVerifies(bundle, other).ok, false, 'another key: sigstore-js refuses');
  }
  const verified = await verifyImage(`${ref}:latest`, { publicKey: key.publicKey });
  assert.equal(verified.digest, layout.index);
  assert.equal(verified.signatures.length, 1);
  await assert.rejects(verifyImage(`${ref}:latest`, { publicKey: other.publicKey }), (e) => isDistillError(e, 'SIGNATURE_INVALID'));

  // Signing again adds a second referrer to the index (ECDSA signatures differ); both verify.
  await signImage(`${ref}@${layout.amd64}`, { privateKey: key.privateKey, format: 'bundle' });
  assert.equal((await fallbackBundles(repository, layout.amd64)).referrers.length, 2);
  assert.equal((await verifyImage(`${ref}@${layout.amd64}`, { publicKey: key.publicKey })).signatures.length, 2);
});

test('--format both: the classic .sig tag and a bundle; verify reads both', { skip }, async () => {
  const ref = await repo('bundle-both');
  await signImage(`${ref}:latest-amd64`, { privateKey: key.privateKey, format: 'both' });
  assert.ok((await tagsOf(registry.host, 'distill/bundle-both')).includes(`sha256-${layout.amd64.slice(7)}.sig`));
  const r = await verifyImage(`${ref}:latest-amd64`, { publicKey: key.publicKey });
  assert.equal(r.signatures.length, 2);
  // A validly signed bundle whose statement is about another image (amd64), attached to the index: refused.
  const client = new RegistryClient(registry.host, {});
  try {
    const statement = makeStatement(`${registry.host}/distill/bundle-both`, layout.amd64, SIGN, {});
    const index = await client.getManifest('distill/bundle-both', layout.index);
    await writeBundle(client, 'distill/bundle-both', { mediaType: index.mediaType, digest: index.digest, size: index.bytes.length }, signBundle('application/vnd.in-toto+json', statement, key.privateKey), SIGN, { created: '2026-12-04T00:00:00Z' });
  } finally {
    await client.close();
  }
  await assert.rejects(verifyImage(`${ref}:latest`, { publicKey: key.publicKey }), (e) => isDistillError(e, 'SIGNATURE_INVALID') && /not about/.test(e.message));
});

test('attest --format bundle: provenance as a bundle referrer, verify-attestation reads it, --replace in the fallback index', { skip }, async () => {
  const ref = await repo('bundle-attest');
  const repository = 'distill/bundle-attest';
  const predicate = { buildDefinition: { buildType: 'https://distill.dev/buildtypes/image/v1', externalParameters: { image: 'static' } }, runDetails: { builder: { id: 'https://distill.dev/builders/cli' } } };
  const a = await attestImage(`${ref}@${layout.amd64}`, { privateKey: key.privateKey, predicateType: 'slsaprovenance1', predicate, format: 'bundle' });
  assert.equal(a.bundle?.via, 'tag');
  assert.equal((await tagsOf(registry.host, repository)).some((t) => t.endsWith('.att')), false, 'no classic tag');
  const { index, referrers } = await fallbackBundles(repository, layout.amd64);
  assert.equal(index['manifests'][0]['annotations']['dev.sigstore.bundle.predicateType'], SLSA1);
  const v = sigstoreVerifies(referrers[0]!.bundle, key);
  assert.ok(v.ok, v.error);
  assert.equal(v.statement!['predicateType'], SLSA1);
  assert.deepEqual(v.statement!['predicate'], predicate);

  const r = await verifyAttestation(`${ref}@${layout.amd64}`, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' });
  assert.equal(r.statements.length, 1);
  await assert.rejects(verifyAttestation(`${ref}@${layout.amd64}`, { publicKey: other.publicKey, predicateType: 'slsaprovenance1' }), (e) => isDistillError(e, 'ATTESTATION_INVALID'));
  await assert.rejects(verifyAttestation(`${ref}@${layout.amd64}`, { publicKey: key.publicKey, predicateType: 'spdxjson' }), (e) => isDistillError(e, 'ATTESTATION_NONE'));

  // An SPDX bundle beside it; then --replace: the earlier provenance leaves the index, the SBOM stays.
  await attestImage(`${ref}@${layout.amd64}`, { privateKey: key.privateKey, predicateType: 'spdxjson', predicate: { spdxVersion: 'SPDX-2.3' }, format: 'bundle' });
  await attestImage(`${ref}@${layout.amd64}`, { privateKey: key.privateKey, predicateType: 'slsaprovenance1', predicate: { ...predicate, v: 2 }, format: 'bundle', replace: true });
  const after = await fallbackBundles(repository, layout.amd64);
  assert.deepEqual(after.index['manifests'].map((m: Record<string, any>) => m['annotations']['dev.sigstore.bundle.predicateType']).sort(), [SLSA1, 'https://spdx.dev/Document']);
  const latest = await verifyAttestation(`${ref}@${layout.amd64}`, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' });
  assert.deepEqual(latest.statements.map((s) => (s.predicate as { v?: number }).v), [2]);
  // --format both: a classic .att too, and verify-attestation returns both statements.
  await attestImage(`${ref}@${layout.amd64}`, { privateKey: key.privateKey, predicateType: 'cyclonedx', predicate: { bomFormat: 'CycloneDX', specVersion: '1.6' }, format: 'both' });
  assert.ok((await tagsOf(registry.host, repository)).includes(`sha256-${layout.amd64.slice(7)}.att`));
  assert.equal((await verifyAttestation(`${ref}@${layout.amd64}`, { publicKey: key.publicKey, predicateType: 'cyclonedx' })).statements.length, 2);
});

test('copy carries the bundle referrers: the destination\'s fallback index is rebuilt and the signatures verify there', { skip }, async () => {
  const ref = await repo('bundle-dev');
  await signImage(`${ref}:latest`, { privateKey: key.privateKey, recursive: true, format: 'bundle' });
  await attestImage(`${ref}@${layout.amd64}`, { privateKey: key.privateKey, predicateType: 'spdxjson', predicate: { spdxVersion: 'SPDX-2.3' }, format: 'bundle' });
  const prod = `${registry.host}/distill/bundle-prod`;
  const c = await copyImage(`${ref}:latest`, `${prod}:latest`);
  assert.equal(c.referrers.length, 4, 'three signatures and one attestation');
  assert.equal((await verifyImage(`${prod}:latest`, { publicKey: key.publicKey })).digest, layout.index);
  assert.equal((await verifyImage(`${prod}@${layout.amd64}`, { publicKey: key.publicKey })).signatures.length, 1);
  assert.equal((await verifyAttestation(`${prod}@${layout.amd64}`, { publicKey: key.publicKey, predicateType: 'spdxjson' })).statements.length, 1);
  const { referrers } = await fallbackBundles('distill/bundle-prod', layout.amd64);
  assert.equal(referrers.length, 2);
  for (const r of referrers) assert.ok(sigstoreVerifies(r.bundle, key).ok, 'sigstore-js verifies the copied bundles');
});
