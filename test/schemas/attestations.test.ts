// What `distill build --push --sign-key --format both` leaves in a registry, read back over plain HTTP
// and checked against the published rules of each format — a real python3 build (latest, amd64 and
// arm64) from the frozen snapshot, pushed to Debian's docker-registry:
//  - every attachment manifest (.sig, .att, the referrers' fallback index and its bundle manifests)
//    against image-spec's schemas and 1.1 rules (validators.ts), incl. artifactType and subject;
//  - simple-signing payloads as containers/image parses them, their signatures by the key (node's
//    crypto, DER ECDSA over the payload bytes);
//  - DSSE envelopes (envelope.md; the signature over PAE), in-toto Statement v1 (subjects naming the
//    signed manifest), SLSA provenance v1 field rules, the CycloneDX predicate against its 1.6 schema;
//  - Sigstore bundles v0.3 by @sigstore/bundle's own validators;
//  - the layout's attestations/provenance.intoto.json as a Statement + SLSA v1.
// Each rule is also shown to reject a broken copy.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createPublicKey, generateKeyPairSync, sign as nodeSign, verify as cryptoVerify, type KeyObject } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { assertBundleLatest, bundleFromJSON, BUNDLE_V03_MEDIA_TYPE } from '@sigstore/bundle';
import { buildAndPublish } from '../../src/publish.js';
import { pullImage } from '../../src/registry/pull.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { cyclonedx16Problems } from '../helpers/schemas.js';
import { tempDir } from '../helpers/tmp.js';
import {
  NO_IMAGE_SPEC, problems, dsseEnvelopeProblems, imageSpecValidators, ociGraphProblems, pae, simpleSigningProblems, slsaProvenanceProblems, statementProblems,
} from './validators.js';
import { spdx23Problems } from './spdx.js';

const snap = snapshotDir();
const v = imageSpecValidators();
const skip = snap === undefined ? NO_SNAPSHOT : v === undefined ? NO_IMAGE_SPEC : needsRegistry().skip;
type Json = Record<string, any>;

const SIMPLE_SIGNING = 'application/vnd.dev.cosign.simplesigning.v1+json';
const DSSE = 'application/vnd.dsse.envelope.v1+json';
const IN_TOTO = 'application/vnd.in-toto+json';
const ACCEPT = 'application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json';

const work = tempDir('distill-schemas-att-');
const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
let registry: RunningRegistry | undefined;
const repo = 'distill/python3';
const blobs = new Map<string, Buffer>();
let tags: Map<string, { digest: string; mediaType: string }>;

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
async function get(path: string, accept = ACCEPT): Promise<{ body: Buffer; type: string }> {
  const res = await fetch(`http://${registry!.host}/v2/${repo}/${path}`, { headers: { accept } });
  assert.equal(res.status, 200, `GET ${path}: ${res.status}`);
  return { body: Buffer.from(await res.arrayBuffer()), type: res.headers.get('content-type') ?? '' };
}

/** Fetch a manifest and (for attachments) everything it references, into `blobs`. */
async function fetchGraph(digest: string, withBlobs: boolean): Promise<void> {
  if (blobs.has(digest)) return;
  const { body } = await get(`manifests/${digest}`);
  blobs.set(digest, body);
  const doc = JSON.parse(body.toString()) as Json;
  for (const m of (doc['manifests'] ?? []) as Json[]) await fetchGraph(m['digest'], withBlobs);
  if (withBlobs) for (const d of [doc['config'], ...((doc['layers'] ?? []) as Json[])].filter(Boolean) as Json[]) {
    if (!blobs.has(d['digest'])) blobs.set(d['digest'], (await get(`blobs/${d['digest']}`, '*/*')).body);
  }
}

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  await buildAndPublish(join(repoRoot, 'images', 'python3', 'image.yaml'), {
    cacheDir: join(work, 'cache'),
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    variants: ['latest'],
    platforms: ['amd64', 'arm64'],
    publish: { layout: join(work, 'layout'), registry: { repository: `${registry.host}/${repo}` }, signer: { privateKey, format: 'both' } },
  });
  const list = JSON.parse((await get('tags/list', 'application/json')).body.toString()) as { tags: string[] };
  tags = new Map();
  for (const t of list.tags.sort()) {
    const { body, type } = await get(`manifests/${t}`);
    tags.set(t, { digest: sha(body), mediaType: type });
    await fetchGraph(sha(body), /^sha256-[a-f0-9]{64}(\.sig|\.att)?$/.test(t));
  }
});
after(async () => { await registry?.stop(); });

const attachments = (suffix: string): [string, { digest: string; mediaType: string }][] =>
  [...tags].filter(([t]) => (suffix === '' ? /^sha256-[a-f0-9]{64}$/.test(t) : t.endsWith(suffix)));
const json = (b: Buffer): Json => JSON.parse(b.toString()) as Json;
const read = (d: string): Buffer => { const b = blobs.get(d); if (!b) throw new Error(`not fetched: ${d}`); return b; };

test('registry: every attachment manifest (.sig, .att, referrers) valid against image-spec, with artifactType and subject', { skip }, () => {
  assert.deepEqual(attachments('.sig').length, 3, [...tags.keys()].join(' '));
  assert.deepEqual(attachments('.att').length, 3);
  assert.deepEqual(attachments('').length, 3, 'a referrers fallback index per signed manifest');
  for (const [tag, { digest, mediaType }] of [...attachments('.sig'), ...attachments('.att'), ...attachments('')]) {
    const cosign = tag.endsWith('.sig') ? new Set([SIMPLE_SIGNING]) : tag.endsWith('.att') ? new Set([DSSE]) : new Set<string>();
    assert.deepEqual(ociGraphProblems(v!, [{ mediaType, digest, size: read(digest).length }], read, undefined, cosign), [], tag);
  }
  // distribution-spec: a manifest is served with the Content-Type it was pushed with, which must be its mediaType.
  for (const [tag, { digest, mediaType }] of tags) assert.equal(json(read(digest))['mediaType'], mediaType, `${tag}: pushed as ${mediaType}`);
  // Each referrer names its subject: the manifest its fallback tag is named after; artifactType is the bundle's.
  for (const [tag, { digest }] of attachments('')) {
    const subject = `sha256:${tag.slice('sha256-'.length)}`;
    for (const m of json(read(digest))['manifests'] as Json[]) {
      const r = json(read(m['digest']));
      assert.equal(r['subject']?.['digest'], subject, tag);
      assert.equal(r['artifactType'], BUNDLE_V03_MEDIA_TYPE);
      assert.equal(m['artifactType'], r['artifactType'], 'the index descriptor repeats artifactType (image-index.md)');
      assert.equal(r['subject']['size'], read(subject).length);
    }
  }
});

test('registry: simple-signing payloads as containers/image parses them, each signature verifying with the key', { skip }, () => {
  let n = 0;
  for (const [tag, { digest }] of attachments('.sig')) {
    const signed = `sha256:${tag.slice('sha256-'.length, -'.sig'.length)}`;
    for (const l of json(read(digest))['layers'] as Json[]) {
      assert.equal(l['mediaType'], SIMPLE_SIGNING);
      const payload = read(l['digest']);
      assert.deepEqual(simpleSigningProblems(json(payload), signed), [], tag);
      const sig = Buffer.from(l['annotations']['dev.cosignproject.cosign/signature'], 'base64');
      assert.ok(cryptoVerify('sha256', payload, publicKey, sig), `${tag}: the signature verifies`);
      n++;
    }
  }
  assert.equal(n, 3);
});

test('registry: DSSE envelopes, in-toto Statements v1, SLSA provenance v1, SPDX 2.3 and CycloneDX 1.6 predicates', { skip }, () => {
  const types = new Map<string, number>();
  for (const [tag, { digest }] of attachments('.att')) {
    const attached = `sha256:${tag.slice('sha256-'.length, -'.att'.length)}`;
    for (const l of json(read(digest))['layers'] as Json[]) {
      assert.equal(l['mediaType'], DSSE);
      const statement = checkEnvelope(tag, json(read(l['digest'])), publicKey);
      assert.equal(l['annotations']['predicateType'], statement['predicateType'], 'the layer annotation names the predicate type');
      assert.ok((statement['subject'] as Json[]).some((s) => `sha256:${s['digest']['sha256']}` === attached), `${tag}: a subject names ${attached}`);
      types.set(statement['predicateType'], (types.get(statement['predicateType']) ?? 0) + 1);
    }
  }
  assert.deepEqual(Object.fromEntries(types), { 'https://slsa.dev/provenance/v1': 1, 'https://spdx.dev/Document': 2, 'https://cyclonedx.org/bom': 2 });
});

/** envelope.md + PAE signature + statement.md + the predicate's own rules; returns the statement. */
function checkEnvelope(where: string, envelope: Json, key: KeyObject): Json {
  assert.deepEqual(dsseEnvelopeProblems(envelope), [], where);
  assert.equal(envelope['payloadType'], IN_TOTO);
  const body = Buffer.from(envelope['payload'], 'base64');
  assert.ok((envelope['signatures'] as Json[]).some((s) => cryptoVerify('sha256', pae(envelope['payloadType'], body), key, Buffer.from(s['sig'], 'base64'))), `${where}: a signature over PAE verifies`);
  const statement = json(body);
  assert.deepEqual(statementProblems(statement), [], where);
  const predicate = statement['predicate'];
  if (statement['predicateType'] === 'https://slsa.dev/provenance/v1') assert.deepEqual(slsaProvenanceProblems(predicate), [], where);
  else if (statement['predicateType'] === 'https://spdx.dev/Document') assert.deepEqual(spdx23Problems(predicate), [], where);
  else if (statement['predicateType'] === 'https://cyclonedx.org/bom') assert.deepEqual(cyclonedx16Problems(predicate), [], where);
  // cosign v3's signature bundles: a statement about the image whose predicate carries nothing of its own.
  else if (statement['predicateType'] === 'https://sigstore.dev/cosign/sign/v1') assert.ok(predicate === undefined || (typeof predicate === 'object' && predicate !== null), where);
  else assert.fail(`${where}: unexpected predicate type ${statement['predicateType']}`);
  return statement;
}

test("registry: Sigstore bundles v0.3 pass @sigstore/bundle's validators; DSSE bundles hold valid statements", { skip }, () => {
  let n = 0;
  for (const [tag, { digest }] of attachments('')) {
    for (const m of json(read(digest))['manifests'] as Json[]) {
      const r = json(read(m['digest']));
      for (const l of r['layers'] as Json[]) {
        assert.equal(l['mediaType'], BUNDLE_V03_MEDIA_TYPE);
        const raw = json(read(l['digest']));
        assert.equal(raw['mediaType'], BUNDLE_V03_MEDIA_TYPE);
        const bundle = bundleFromJSON(raw);
        assert.doesNotThrow(() => assertBundleLatest(bundle), tag);
        if (raw['dsseEnvelope']) {
          const statement = checkEnvelope(tag, { payloadType: raw['dsseEnvelope']['payloadType'], payload: raw['dsseEnvelope']['payload'], signatures: raw['dsseEnvelope']['signatures'] }, publicKey);
          assert.equal(`sha256:${(statement['subject'] as Json[])[0]!['digest']['sha256']}`, r['subject']['digest']);
        } else {
          assert.ok(raw['messageSignature'], `${tag}: a message signature or a DSSE envelope`);
        }
        n++;
      }
    }
  }
  assert.ok(n >= 6, `${n} bundles`);
});

test('layout: attestations/provenance.intoto.json is an in-toto Statement v1 with SLSA provenance v1 naming every built manifest', { skip }, () => {
  const statement = json(readFileSync(join(work, 'layout', 'attestations', 'provenance.intoto.json')));
  assert.deepEqual(statementProblems(statement), []);
  assert.equal(statement['predicateType'], 'https://slsa.dev/provenance/v1');
  assert.deepEqual(slsaProvenanceProblems(statement['predicate']), []);
  const index = json(readFileSync(join(work, 'layout', 'index.json')));
  const built = new Set((index['manifests'] as Json[]).map((m) => m['digest'] as string));
  assert.deepEqual(new Set((statement['subject'] as Json[]).map((s) => `sha256:${s['digest']['sha256']}`)), built);
});

test('distill pull of the signed image: the layout with its .sig/.att refs and referrers valid against image-spec', { skip }, async () => {
  const dir = join(work, 'pulled');
  await pullImage(`${registry!.host}/${repo}:latest`, dir, {});
  const index = json(readFileSync(join(dir, 'index.json')));
  assert.deepEqual(problems(v!.layout, json(readFileSync(join(dir, 'oci-layout')))), []);
  assert.deepEqual(problems(v!.index, index), []);
  const seen = { indexes: 0, manifests: 0, configs: 0, layers: 0 };
  const found = ociGraphProblems(v!, index['manifests'] as Json[], (d) => readFileSync(join(dir, 'blobs', ...(d.split(':') as [string, string]))), seen, new Set([SIMPLE_SIGNING, DSSE]));
  assert.deepEqual(found, []);
  // latest + 3 fallback indexes; 2 platform manifests + 3 .sig + 3 .att + the bundle referrers.
  assert.ok(seen.indexes >= 4 && seen.manifests >= 8, JSON.stringify(seen));
});

test('each rule rejects a broken copy (the validators can fail)', { skip }, () => {
  const statement = json(readFileSync(join(work, 'layout', 'attestations', 'provenance.intoto.json')));
  const broken = (edit: (s: Json) => void): Json => { const c = structuredClone(statement); edit(c); return c; };
  const rejects = (what: string, found: string[]): void => assert.ok(found.length > 0, `${what} is rejected`);
  rejects('_type v0.1', statementProblems(broken((s) => { s['_type'] = 'https://in-toto.io/Statement/v0.1'; })));
  rejects('no subject', statementProblems(broken((s) => { s['subject'] = []; })));
  rejects('subject without digest', statementProblems(broken((s) => { delete s['subject'][0]['digest']; })));
  rejects('upper-case hex', statementProblems(broken((s) => { s['subject'][0]['digest']['sha256'] = String(s['subject'][0]['digest']['sha256']).toUpperCase(); })));
  rejects('predicateType not a URI', statementProblems(broken((s) => { s['predicateType'] = 'slsa provenance'; })));
  const p = (edit: (s: Json) => void): string[] => slsaProvenanceProblems(broken(edit)['predicate']);
  rejects('no buildType', p((s) => { delete s['predicate']['buildDefinition']['buildType']; }));
  rejects('externalParameters not an object', p((s) => { s['predicate']['buildDefinition']['externalParameters'] = 'x'; }));
  rejects('resolved dependency without uri/digest/content', p((s) => { s['predicate']['buildDefinition']['resolvedDependencies'][0] = { name: 'x' }; }));
  rejects('no builder id', p((s) => { delete s['predicate']['runDetails']['builder']['id']; }));
  rejects('invocationID spelling', p((s) => { s['predicate']['runDetails']['metadata']['invocationID'] = 'x'; }));
  rejects('startedOn not UTC', p((s) => { s['predicate']['runDetails']['metadata']['startedOn'] = '2026-01-01T10:00:00+02:00'; }));
  const body = Buffer.from(JSON.stringify(statement));
  const sig = (b: Buffer): string => nodeSign('sha256', b, privateKey).toString('base64');
  const envelope = { payloadType: IN_TOTO, payload: body.toString('base64'), signatures: [{ keyid: '', sig: sig(pae(IN_TOTO, body)) }] };
  assert.deepEqual(dsseEnvelopeProblems(envelope), []);
  assert.doesNotThrow(() => checkEnvelope('made here', envelope, publicKey));
  rejects('envelope extra field', dsseEnvelopeProblems({ ...envelope, payloadType2: 'x' }));
  rejects('envelope without signatures', dsseEnvelopeProblems({ ...envelope, signatures: [] }));
  assert.throws(() => checkEnvelope('raw-payload signature', { ...envelope, signatures: [{ keyid: '', sig: sig(body) }] }, publicKey), /over PAE verifies/);
  assert.throws(() => checkEnvelope('other key', envelope, createPublicKey(generateKeyPairSync('ec', { namedCurve: 'prime256v1' }).privateKey)), /over PAE verifies/);
  const ss = { critical: { identity: { 'docker-reference': 'r/x' }, image: { 'docker-manifest-digest': sha('x') }, type: 'cosign container image signature' }, optional: null };
  assert.deepEqual(simpleSigningProblems(ss, sha('x')), []);
  rejects('simple signing: extra key', simpleSigningProblems({ ...ss, extra: 1 }, sha('x')));
  rejects('simple signing: missing optional', simpleSigningProblems({ critical: ss.critical }, sha('x')));
  rejects('simple signing: other digest', simpleSigningProblems(ss, sha('y')));
  assert.throws(() => assertBundleLatest(bundleFromJSON({ mediaType: BUNDLE_V03_MEDIA_TYPE, verificationMaterial: {}, messageSignature: { signature: '' } })));
});
