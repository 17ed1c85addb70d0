// Attestations against a real docker-registry on loopback: the stored `.att` layer and DSSE envelope
// checked by hand, the envelope's signature checked with the openssl CLI over PAE bytes rebuilt here
// from the DSSE spec, --replace, and the refusals (no attestation, another type, another key, and a
// signature over the raw payload instead of PAE).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { attestImage, verifyAttestation } from '../../src/attest/attest.js';
import { isDistillError, type DistillError } from '../../src/errors.js';
import { signBytes } from '../../src/sign/signer.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { ecKeyPair, hasOpenssl, opensslVerifies, pushTo, putRawAttachment, readStored, testLayout } from './helpers.js';
import { tempDir } from '../helpers/tmp.js';

const { skip } = needsRegistry();
const DSSE = 'application/vnd.dsse.envelope.v1+json';
const SLSA1 = 'https://slsa.dev/provenance/v1';
const SPDX = 'https://spdx.dev/Document';
let registry: RunningRegistry;
let work: string;
let layout: { dir: string; index: string; amd64: string };
const key = ecKeyPair();

const attTag = (digest: string): string => `sha256-${digest.slice(7)}.att`;

function provenance(invocation: string): object {
  return {
    buildDefinition: { buildType: 'https://distill.dev/build/v1', externalParameters: { image: 'static' } },
    runDetails: { builder: { id: 'https://distill.dev/builder' }, metadata: { invocationID: invocation } },
  };
}

async function repo(name: string): Promise<string> {
  await pushTo(layout.dir, registry.host, `distill/${name}`);
  return `${registry.host}/distill/${name}`;
}

async function refusal(p: Promise<unknown>): Promise<DistillError> {
  try {
    await p;
  } catch (e) {
    if (isDistillError(e)) return e;
    throw e;
  }
  assert.fail('expected a refusal');
}

/** PAE from protocol.md, written out here independently of src/attest/dsse.ts. */
function paeBytes(type: string, body: Buffer): Buffer {
  return Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${body.length} `), body]);
}

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  work = tempDir('distill-attest-');
  layout = await testLayout(work);
});

after(async () => {
  await registry?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

test('attest → verify-attestation; the layer, envelope and statement are what cosign writes; openssl verifies PAE', { skip }, async () => {
  const image = await repo('att');
  const r = await attestImage(`${image}:latest`, { privateKey: key.privateKey, predicateType: 'slsaprovenance1', predicate: provenance('run-1') });
  assert.deepEqual(r, { digest: layout.index, tag: attTag(layout.index), reference: `${image}:${attTag(layout.index)}`, predicateType: SLSA1, replaced: 0 });

  const stored = await readStored(registry.host, 'distill/att', attTag(layout.index));
  assert.equal(stored.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(stored.layers.length, 1);
  const layer = stored.layers[0]!;
  assert.equal(layer.mediaType, DSSE);
  assert.deepEqual(layer.annotations, { 'dev.cosignproject.cosign/signature': '', predicateType: SLSA1 });
  const env = JSON.parse(layer.payload.toString()) as { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
  assert.equal(env.payloadType, 'application/vnd.in-toto+json');
  assert.equal(env.signatures.length, 1);
  assert.equal(env.signatures[0]!.keyid, '');
  const statementBytes = Buffer.from(env.payload, 'base64');
  const statement = JSON.parse(statementBytes.toString()) as Record<string, unknown>;
  assert.deepEqual(statement, {
    _type: 'https://in-toto.io/Statement/v1',
    subject: [{ name: `${registry.host}/distill/att`, digest: { sha256: layout.index.slice(7) } }],
    predicateType: SLSA1,
    // cosign's spelling fix: invocationID → invocationId.
    predicate: { buildDefinition: { buildType: 'https://distill.dev/build/v1', externalParameters: { image: 'static' } }, runDetails: { builder: { id: 'https://distill.dev/builder' }, metadata: { invocationId: 'run-1' } } },
  });
  if (hasOpenssl()) {
    const sig = Buffer.from(env.signatures[0]!.sig, 'base64');
    const overPae = opensslVerifies(key.publicKey, paeBytes(env.payloadType, statementBytes), sig);
    assert.ok(overPae.ok, overPae.output);
    assert.ok(!opensslVerifies(key.publicKey, statementBytes, sig).ok, 'the signature is not over the bare payload');
  }

  const v = await verifyAttestation(`${image}:latest`, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' });
  assert.equal(v.digest, layout.index);
  assert.equal(v.statements.length, 1);
  assert.deepEqual(v.statements[0], statement);
  // The URI works as well as the short name; slsaprovenance (v0.2) is another type.
  assert.equal((await verifyAttestation(`${image}:latest`, { publicKey: key.publicKey, predicateType: SLSA1 })).statements.length, 1);
  assert.equal((await refusal(verifyAttestation(`${image}:latest`, { publicKey: key.publicKey, predicateType: 'slsaprovenance' }))).code, 'ATTESTATION_NONE');
  assert.equal((await refusal(verifyAttestation(`${image}:latest`, { publicKey: ecKeyPair().publicKey, predicateType: 'slsaprovenance1' }))).code, 'ATTESTATION_INVALID');
});

test('attestations append; --replace drops the earlier ones of the same type only', { skip }, async () => {
  const image = await repo('replace');
  const tag = attTag(layout.amd64);
  const ref = `${image}:latest-amd64`;
  await attestImage(ref, { privateKey: key.privateKey, predicateType: 'slsaprovenance1', predicate: provenance('run-1') });
  await attestImage(ref, { privateKey: key.privateKey, predicateType: 'spdxjson', predicate: { spdxVersion: 'SPDX-2.3', name: 'static' } });
  await attestImage(ref, { privateKey: key.privateKey, predicateType: 'slsaprovenance1', predicate: provenance('run-2') });
  let stored = await readStored(registry.host, 'distill/replace', tag);
  assert.deepEqual(stored.layers.map((l) => l.annotations!['predicateType']), [SLSA1, SPDX, SLSA1]);
  assert.equal((await verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' })).statements.length, 2);

  const r = await attestImage(ref, { privateKey: key.privateKey, predicateType: 'slsaprovenance1', predicate: provenance('run-3'), replace: true });
  assert.equal(r.replaced, 2);
  stored = await readStored(registry.host, 'distill/replace', tag);
  assert.deepEqual(stored.layers.map((l) => l.annotations!['predicateType']), [SPDX, SLSA1]);
  const v = await verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' });
  assert.deepEqual(v.statements.map((s) => (s.predicate as { runDetails: { metadata: { invocationId: string } } }).runDetails.metadata.invocationId), ['run-3']);
  const sbom = await verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'spdxjson' });
  assert.equal((sbom.statements[0]!.predicate as { spdxVersion: string }).spdxVersion, 'SPDX-2.3');
});

test('an envelope signed over the raw payload instead of PAE is refused; no .att is ATTESTATION_NONE', { skip }, async () => {
  const image = await repo('raw');
  const ref = `${image}:latest-amd64`;
  assert.equal((await refusal(verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' }))).code, 'ATTESTATION_NONE');

  const statement = Buffer.from(
    JSON.stringify({ _type: 'https://in-toto.io/Statement/v1', subject: [{ name: `${registry.host}/distill/raw`, digest: { sha256: layout.amd64.slice(7) } }], predicateType: SLSA1, predicate: provenance('raw') }),
  );
  const envelope = (sig: Buffer): Buffer =>
    Buffer.from(JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: statement.toString('base64'), signatures: [{ keyid: '', sig: sig.toString('base64') }] }));
  const layer = (sig: Buffer) => ({ mediaType: DSSE, payload: envelope(sig), annotations: { predicateType: SLSA1, 'dev.cosignproject.cosign/signature': '' } });

  await putRawAttachment(registry.host, 'distill/raw', attTag(layout.amd64), [layer(signBytes(key.privateKey, statement))]);
  const e = await refusal(verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' }));
  assert.equal(e.code, 'ATTESTATION_INVALID');
  assert.match(e.message, /PAE/);

  // The same hand-made envelope signed over PAE is accepted: only the signed bytes differ.
  await putRawAttachment(registry.host, 'distill/raw', attTag(layout.amd64), [layer(signBytes(key.privateKey, paeBytes('application/vnd.in-toto+json', statement)))]);
  assert.equal((await verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' })).statements.length, 1);

  // A valid envelope whose statement names another digest (copied from the index) is refused.
  const other = Buffer.from(statement.toString().replace(layout.amd64.slice(7), layout.index.slice(7)));
  const otherEnv = Buffer.from(
    JSON.stringify({ payloadType: 'application/vnd.in-toto+json', payload: other.toString('base64'), signatures: [{ keyid: '', sig: signBytes(key.privateKey, paeBytes('application/vnd.in-toto+json', other)).toString('base64') }] }),
  );
  await putRawAttachment(registry.host, 'distill/raw', attTag(layout.amd64), [{ mediaType: DSSE, payload: otherEnv, annotations: { predicateType: SLSA1 } }]);
  assert.equal((await refusal(verifyAttestation(ref, { publicKey: key.publicKey, predicateType: 'slsaprovenance1' }))).code, 'ATTESTATION_INVALID');
});
