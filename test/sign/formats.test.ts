// The byte formats on their own (shared/docs/formats.md b, c): the simple-signing payload exactly as
// cosign writes it and parsed as strictly as containers/image parses it, DSSE PAE and envelopes, the
// in-toto statement, cosign's predicate type names and attachment names — no registry involved.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync, sign } from 'node:crypto';
import { DSSE_MEDIA_TYPE, IN_TOTO_PAYLOAD_TYPE, decodeAnyBase64, pae, signEnvelope, verifyEnvelope } from '../../src/attest/dsse.js';
import { STATEMENT_V1, makeStatement, parseStatement, predicateTypeUri, statementCovers } from '../../src/provenance/statement.js';
import { isDistillError } from '../../src/errors.js';
import { parseReference } from '../../src/registry/reference.js';
import { attachmentManifest } from '../../src/sign/signature-store.js';
import { base64Std, decodeStdBase64, signBytes } from '../../src/sign/signer.js';
import { assertNoDuplicateKeys, parseSimpleSigningPayload, simpleSigningPayload } from '../../src/sign/simple-signing.js';
import { attachmentTag, triangulateDigest } from '../../src/sign/triangulate.js';
import { checkSimpleSignature, signatureBytes } from '../../src/sign/verify.js';
import { ecKeyPair, hasOpenssl, opensslVerifies } from './helpers.js';

const D = `sha256:${'ab'.repeat(32)}`;
const OTHER = `sha256:${'cd'.repeat(32)}`;
const code = (c: string) => (e: unknown) => isDistillError(e) && e.code === c;

test('the simple-signing payload is byte for byte what cosign writes', () => {
  assert.equal(
    simpleSigningPayload('127.0.0.1:5000/distill/static', D).toString(),
    `{"critical":{"identity":{"docker-reference":"127.0.0.1:5000/distill/static"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`,
  );
  // Annotations: Go map order (sorted bytes), Go's HTML escaping.
  assert.equal(
    simpleSigningPayload('r/x', D, { z: '1', 'e2e-tests-passed': 'True', a: '<&>' }).toString(),
    `{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":{"a":"\\u003c\\u0026\\u003e","e2e-tests-passed":"True","z":"1"}}`,
  );
  assert.match(simpleSigningPayload('r/x', D, {}).toString(), /"optional":null}$/);
  assert.throws(() => simpleSigningPayload('r/x', 'sha256:12'), code('USAGE'));
  assert.throws(() => simpleSigningPayload('r/x', D, { a: '\ud800' }), code('USAGE'));
});

test('payloads are parsed as strictly as containers/image parses them', () => {
  const good = simpleSigningPayload('r/x', D, { k: 'v' });
  assert.deepEqual(parseSimpleSigningPayload(good), { dockerReference: 'r/x', manifestDigest: D, optional: { k: 'v' } });
  // Any byte-exact JSON is fine: pretty-printed with a trailing newline is accepted.
  const pretty = Buffer.from(JSON.stringify(JSON.parse(good.toString()), null, 2) + '\n');
  assert.equal(parseSimpleSigningPayload(pretty).manifestDigest, D);
  const crit = `"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"}`;
  const refused: [string, string][] = [
    ['missing optional', `{${crit}}`],
    ['an extra top-level key', `{${crit},"optional":null,"extra":1}`],
    ['a duplicate top-level key', `{${crit},"optional":null,"optional":{}}`],
    ['a duplicate key spelt with an escape', `{${crit},"optional":null,"\\u006fptional":null}`],
    ['a duplicate nested key', `{"critical":{"identity":{"docker-reference":"r/x","docker-reference":"evil/x"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`],
    ['an extra critical key', `{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature","x":1},"optional":null}`],
    ['a wrong type', `{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}"},"type":"atomic container signature"},"optional":null}`],
    ['an extra image key', `{"critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}","x":""},"type":"cosign container image signature"},"optional":null}`],
    ['optional as a list', `{${crit},"optional":[]}`],
    ['a fractional timestamp', `{${crit},"optional":{"timestamp":1.5}}`],
    ['a numeric creator', `{${crit},"optional":{"creator":1}}`],
    ['a non-string docker-reference', `{"critical":{"identity":{"docker-reference":1},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`],
    ['not JSON', `{${crit},"optional":null`],
    ['upper-case key (Go would match it case-insensitively)', `{"Critical":{"identity":{"docker-reference":"r/x"},"image":{"docker-manifest-digest":"${D}"},"type":"cosign container image signature"},"optional":null}`],
  ];
  for (const [why, text] of refused) {
    assert.throws(() => parseSimpleSigningPayload(Buffer.from(text)), code('SIGNATURE_INVALID'), why);
  }
  assert.doesNotThrow(() => parseSimpleSigningPayload(Buffer.from(`{${crit},"optional":{"creator":"me","timestamp":1700000000,"x":[{"a":1},{"a":2}]}}`)));
  // The duplicate check itself: strings containing braces, quotes and commas do not confuse it.
  assert.doesNotThrow(() => assertNoDuplicateKeys('{"a":"{\\"a\\":1,","b":[{"a":1},{"a":2}],"c":{"a":{"a":1}}}'));
  assert.throws(() => assertNoDuplicateKeys('[{"a":1,"b":{},"a":2}]'), code('SIGNATURE_INVALID'));
});

test('signature checks: DER only, standard base64 only, digest and annotations', () => {
  const { privateKey, publicKey } = ecKeyPair();
  const payload = simpleSigningPayload('r/x', D, { 'e2e-tests-passed': 'True' });
  const der = signBytes(privateKey, payload);
  assert.equal(der[0], 0x30, 'an ASN.1 SEQUENCE');
  const ok = checkSimpleSignature({ payload, signature: der, publicKey, digest: D, annotations: { 'e2e-tests-passed': 'True' } });
  assert.equal(ok.manifestDigest, D);
  assert.throws(() => checkSimpleSignature({ payload, signature: der, publicKey, digest: OTHER }), code('SIGNATURE_DIGEST_MISMATCH'));
  assert.throws(() => checkSimpleSignature({ payload, signature: der, publicKey, digest: D, annotations: { 'e2e-tests-passed': 'true' } }), code('SIGNATURE_ANNOTATION_MISMATCH'));
  assert.throws(() => checkSimpleSignature({ payload, signature: der, publicKey, digest: D, annotations: { other: 'x' } }), code('SIGNATURE_ANNOTATION_MISMATCH'));
  assert.throws(() => checkSimpleSignature({ payload, signature: der, publicKey: ecKeyPair().publicKey, digest: D }), code('SIGNATURE_INVALID'));
  const p1363 = sign('sha256', payload, { key: privateKey, dsaEncoding: 'ieee-p1363' });
  assert.throws(() => checkSimpleSignature({ payload, signature: p1363, publicKey, digest: D }), code('SIGNATURE_INVALID'), 'raw r||s is not accepted');
  const changed = Buffer.from(payload);
  changed[changed.length - 3]! ^= 1;
  assert.throws(() => checkSimpleSignature({ payload: changed, signature: der, publicKey, digest: D }), code('SIGNATURE_INVALID'));

  const b64 = base64Std(der);
  assert.deepEqual(signatureBytes(b64), der);
  // DER signatures are 70–72 bytes: only lengths that need padding can show that unpadded input is refused.
  assert.deepEqual(decodeStdBase64(b64.replace(/=+$/, '')), b64.endsWith('=') ? undefined : der, 'unpadded is refused');
  assert.equal(decodeStdBase64('YWJjZA'), undefined, 'unpadded is refused');
  assert.equal(decodeStdBase64('ab-_'), undefined);
  assert.equal(decodeStdBase64(' YWJj'), undefined);
  assert.throws(() => signatureBytes('ab-_'), code('SIGNATURE_INVALID'));
  assert.throws(() => signatureBytes(undefined), code('SIGNATURE_INVALID'));
});

test('openssl verifies our ECDSA-SHA256 DER signatures', { skip: hasOpenssl() ? false : 'openssl is not installed' }, () => {
  const { privateKey, publicKey } = ecKeyPair();
  const payload = simpleSigningPayload('r/x', D);
  assert.ok(opensslVerifies(publicKey, payload, signBytes(privateKey, payload)).ok);
  assert.ok(!opensslVerifies(publicKey, Buffer.concat([payload, Buffer.from(' ')]), signBytes(privateKey, payload)).ok);
});

test('RSA and Ed25519 keys sign and verify too', () => {
  for (const pair of [generateKeyPairSync('rsa', { modulusLength: 2048 }), generateKeyPairSync('ed25519')]) {
    const payload = simpleSigningPayload('r/x', D);
    const sig = signBytes(pair.privateKey, payload);
    assert.equal(checkSimpleSignature({ payload, signature: sig, publicKey: pair.publicKey, digest: D }).manifestDigest, D);
  }
});

test('PAE matches the DSSE spec; envelopes verify over PAE only', () => {
  // protocol.md's example.
  assert.equal(pae('http://example.com/HelloWorld', Buffer.from('hello world')).toString(), 'DSSEv1 29 http://example.com/HelloWorld 11 hello world');
  // Lengths are byte counts, not characters.
  assert.equal(pae('t', Buffer.from('é')).toString('latin1'), 'DSSEv1 1 t 2 ' + Buffer.from('é').toString('latin1'));

  const { privateKey, publicKey } = ecKeyPair();
  const payload = Buffer.from('{"_type":"https://in-toto.io/Statement/v1"}');
  const env = signEnvelope(IN_TOTO_PAYLOAD_TYPE, payload, privateKey);
  const parsed = JSON.parse(env.toString()) as { payloadType: string; payload: string; signatures: { keyid: string; sig: string }[] };
  assert.deepEqual(Object.keys(parsed), ['payloadType', 'payload', 'signatures']);
  assert.deepEqual(Object.keys(parsed.signatures[0]!), ['keyid', 'sig']);
  assert.equal(parsed.signatures[0]!.keyid, '');
  assert.equal(parsed.payload, payload.toString('base64'));
  assert.deepEqual(verifyEnvelope(env, publicKey).payload, payload);

  // URL-safe, unpadded base64 is read too (the spec requires accepting both).
  const urlSafe = JSON.stringify({ ...parsed, payload: payload.toString('base64url'), signatures: [{ keyid: 'hint', sig: Buffer.from(parsed.signatures[0]!.sig, 'base64').toString('base64url') }] });
  assert.deepEqual(verifyEnvelope(Buffer.from(urlSafe), publicKey).payload, payload);

  // A signature over the raw payload (not PAE) is refused.
  const raw = JSON.stringify({ ...parsed, signatures: [{ keyid: '', sig: signBytes(privateKey, payload).toString('base64') }] });
  assert.throws(() => verifyEnvelope(Buffer.from(raw), publicKey), code('ATTESTATION_INVALID'));
  // Another payload type under the same signature is refused.
  assert.throws(() => verifyEnvelope(Buffer.from(JSON.stringify({ ...parsed, payloadType: 'text/plain' })), publicKey), code('ATTESTATION_INVALID'));
  assert.throws(() => verifyEnvelope(env, ecKeyPair().publicKey), code('ATTESTATION_INVALID'));
  assert.throws(() => verifyEnvelope(Buffer.from(JSON.stringify({ ...parsed, signatures: [] })), publicKey), code('ATTESTATION_INVALID'));
  assert.equal(decodeAnyBase64('a'), undefined);
  assert.equal(decodeAnyBase64('ab!c'), undefined);
  assert.equal(DSSE_MEDIA_TYPE, 'application/vnd.dsse.envelope.v1+json');
});

test('in-toto statements and cosign predicate type names', () => {
  const st = makeStatement('127.0.0.1:5000/distill/static', D, 'https://slsa.dev/provenance/v1', { buildDefinition: { buildType: 'https://x/<y>' } });
  assert.equal(
    st.toString(),
    `{"_type":"${STATEMENT_V1}","subject":[{"name":"127.0.0.1:5000/distill/static","digest":{"sha256":"${'ab'.repeat(32)}"}}],"predicateType":"https://slsa.dev/provenance/v1","predicate":{"buildDefinition":{"buildType":"https://x/\\u003cy\\u003e"}}}`,
  );
  const parsed = parseStatement(st);
  assert.ok(statementCovers(parsed, D));
  assert.ok(!statementCovers(parsed, OTHER));
  assert.throws(() => parseStatement(Buffer.from('{"_type":"x","subject":[],"predicateType":"p"}')), code('ATTESTATION_INVALID'));
  assert.equal(parseStatement(Buffer.from(`{"_type":"https://in-toto.io/Statement/v0.1","subject":[{"digest":{"sha256":"${'ab'.repeat(32)}"}}],"predicateType":"p","predicate":{}}`)).predicateType, 'p');

  assert.equal(predicateTypeUri('slsaprovenance1'), 'https://slsa.dev/provenance/v1');
  assert.equal(predicateTypeUri('slsaprovenance'), 'https://slsa.dev/provenance/v0.2', 'beware: slsaprovenance is v0.2');
  assert.equal(predicateTypeUri('slsaprovenance02'), 'https://slsa.dev/provenance/v0.2');
  assert.equal(predicateTypeUri('spdxjson'), 'https://spdx.dev/Document');
  assert.equal(predicateTypeUri('spdx'), 'https://spdx.dev/Document');
  assert.equal(predicateTypeUri('cyclonedx'), 'https://cyclonedx.org/bom');
  assert.equal(predicateTypeUri('custom'), 'https://cosign.sigstore.dev/attestation/v1');
  assert.equal(predicateTypeUri('https://example.com/p/v1'), 'https://example.com/p/v1');
  assert.throws(() => predicateTypeUri('provenance'), code('USAGE'));
  assert.throws(() => predicateTypeUri('toString'), code('USAGE'));
});

test('attachment names are what cosign triangulate prints', () => {
  const ref = parseReference('127.0.0.1:5000/distill/static:latest');
  const hex = 'ab'.repeat(32);
  assert.equal(attachmentTag(D, 'sig'), `sha256-${hex}.sig`);
  assert.equal(triangulateDigest(ref, D, 'signature'), `127.0.0.1:5000/distill/static:sha256-${hex}.sig`);
  assert.equal(triangulateDigest(ref, D, 'attestation'), `127.0.0.1:5000/distill/static:sha256-${hex}.att`);
  assert.equal(triangulateDigest(ref, D, 'sbom'), `127.0.0.1:5000/distill/static:sha256-${hex}.sbom`);
  assert.equal(triangulateDigest(ref, D, 'digest'), `127.0.0.1:5000/distill/static@${D}`);
  // go-containerregistry names Docker Hub index.docker.io.
  assert.equal(triangulateDigest(parseReference('debian'), D, 'signature'), `index.docker.io/library/debian:sha256-${hex}.sig`);
});

test('the attachment manifest and config are go-containerregistry\'s bytes', () => {
  const layer = { mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: D as `sha256:${string}`, size: 233, annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' } };
  const { manifest, config } = attachmentManifest([layer]);
  assert.equal(
    config.toString(),
    `{"architecture":"","created":"0001-01-01T00:00:00Z","history":[{"created":"0001-01-01T00:00:00Z"}],"os":"","rootfs":{"type":"layers","diff_ids":["${D}"]},"config":{}}`,
  );
  const m = JSON.parse(manifest.toString()) as { layers: Record<string, unknown>[] };
  assert.match(manifest.toString(), /^\{"schemaVersion":2,"mediaType":"application\/vnd.oci.image.manifest.v1\+json","config":\{"mediaType":"application\/vnd.oci.image.config.v1\+json","size":\d+,"digest":"sha256:[0-9a-f]{64}"\},"layers":\[/);
  assert.deepEqual(Object.keys(m.layers[0]!), ['mediaType', 'size', 'digest', 'annotations']);
});
