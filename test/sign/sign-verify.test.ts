// Signing and verifying against a real docker-registry on loopback: what is stored is checked
// independently (the raw manifest and blobs, the signature with the openssl CLI), every refusal has its
// own error code, re-signing does not pile up layers, --recursive covers an index and its platforms,
// and skopeo (containers/image) finds our signature where it looks for one.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { isDistillError, type DistillError } from '../../src/errors.js';
import { signBytes } from '../../src/sign/signer.js';
import { signImage } from '../../src/sign/sign.js';
import { simpleSigningPayload } from '../../src/sign/simple-signing.js';
import { triangulate } from '../../src/sign/triangulate.js';
import { verifyImage } from '../../src/sign/verify.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { digestOf, ecKeyPair, hasOpenssl, indexChildren, opensslVerifies, pushTo, putRawAttachment, readStored, tagsOf, testLayout } from './helpers.js';
import { tempDir } from '../helpers/tmp.js';

const { skip } = needsRegistry();
const SIMPLE = 'application/vnd.dev.cosign.simplesigning.v1+json';
const SIG_KEY = 'dev.cosignproject.cosign/signature';
let registry: RunningRegistry;
let work: string;
let layout: { dir: string; index: string; amd64: string };
const keyA = ecKeyPair();
const keyB = ecKeyPair();

const sigTag = (digest: string): string => `sha256-${digest.slice(7)}.sig`;

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

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  work = tempDir('distill-sign-');
  layout = await testLayout(work);
});

after(async () => {
  await registry?.stop();
  if (work !== undefined) rmSync(work, { recursive: true, force: true });
});

test('sign → verify; the stored manifest, payload and signature are what cosign writes, and openssl agrees', { skip }, async () => {
  const image = await repo('basic');
  const signed = await signImage(`${image}:latest-amd64`, { privateKey: keyA.privateKey });
  assert.deepEqual(signed, [{ digest: layout.amd64, tag: sigTag(layout.amd64), reference: `${image}:${sigTag(layout.amd64)}`, added: true }]);

  const v = await verifyImage(`${image}:latest-amd64`, { publicKey: keyA.publicKey });
  assert.equal(v.digest, layout.amd64);
  assert.equal(v.signatures.length, 1);
  assert.equal(v.signatures[0]!.dockerReference, `${registry.host}/distill/basic`, 'the repository, no tag');
  assert.equal(v.signatures[0]!.optional, null);

  const stored = await readStored(registry.host, 'distill/basic', sigTag(layout.amd64));
  assert.equal(stored.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(stored.layers.length, 1);
  const layer = stored.layers[0]!;
  assert.equal(layer.mediaType, SIMPLE);
  assert.deepEqual(Object.keys(layer.annotations ?? {}), [SIG_KEY]);
  assert.equal(
    layer.payload.toString(),
    `{"critical":{"identity":{"docker-reference":"${registry.host}/distill/basic"},"image":{"docker-manifest-digest":"${layout.amd64}"},"type":"cosign container image signature"},"optional":null}`,
  );
  assert.equal(layer.digest, digestOf(layer.payload), 'uncompressed: digest == diffID');
  const config = JSON.parse(stored.config.toString()) as { rootfs: { diff_ids: string[] } };
  assert.deepEqual(config.rootfs.diff_ids, [layer.digest]);
  const b64 = layer.annotations![SIG_KEY]!;
  assert.match(b64, /^[A-Za-z0-9+/]+={0,2}$/, 'standard base64');
  if (hasOpenssl()) {
    const r = opensslVerifies(keyA.publicKey, layer.payload, Buffer.from(b64, 'base64'));
    assert.ok(r.ok, r.output);
  }
  // The image itself is untouched; the .sig tag sits beside it.
  assert.deepEqual(await tagsOf(registry.host, 'distill/basic'), ['latest', 'latest-amd64', sigTag(layout.amd64)].sort());
  // By digest too, and cosign triangulate's answer names the same tag.
  assert.equal((await verifyImage(`${image}@${layout.amd64}`, { publicKey: keyA.publicKey })).digest, layout.amd64);
  assert.equal(await triangulate(`${image}:latest-amd64`), `${image}:${sigTag(layout.amd64)}`);
  assert.equal(await triangulate(`${image}:latest`, 'attestation'), `${image}:sha256-${layout.index.slice(7)}.att`);
  assert.equal(await triangulate(`${image}:latest`, 'digest'), `${image}@${layout.index}`);
});

test('signing twice adds no layer; a second key adds one; any verifying layer suffices', { skip }, async () => {
  const image = await repo('twice');
  await signImage(`${image}:latest`, { privateKey: keyA.privateKey });
  const again = await signImage(`${image}:latest`, { privateKey: keyA.privateKey });
  assert.equal(again[0]!.added, false);
  assert.equal((await readStored(registry.host, 'distill/twice', sigTag(layout.index))).layers.length, 1);

  const b = await signImage(`${image}:latest`, { privateKey: keyB.privateKey });
  assert.equal(b[0]!.added, true);
  const stored = await readStored(registry.host, 'distill/twice', sigTag(layout.index));
  assert.equal(stored.layers.length, 2);
  assert.equal(stored.layers[0]!.digest, stored.layers[1]!.digest, 'same payload, two signatures');
  for (const k of [keyA, keyB]) {
    const v = await verifyImage(`${image}:latest`, { publicKey: k.publicKey });
    assert.equal(v.signatures.length, 1);
    if (hasOpenssl()) {
      const verdicts = stored.layers.map((l) => opensslVerifies(k.publicKey, l.payload, Buffer.from(l.annotations![SIG_KEY]!, 'base64')).ok);
      assert.deepEqual(verdicts.filter(Boolean).length, 1, 'openssl: each key verifies exactly one layer');
    }
  }
  // Re-signing with key B (now second) is still recognised as a duplicate.
  assert.equal((await signImage(`${image}:latest`, { privateKey: keyB.privateKey }))[0]!.added, false);
  assert.equal(await refusal(verifyImage(`${image}:latest`, { publicKey: ecKeyPair().publicKey })).then((e) => e.code), 'SIGNATURE_INVALID');
});

test('required annotations must be signed (cosign verify -a)', { skip }, async () => {
  const plain = await repo('plain');
  await signImage(`${plain}:latest-amd64`, { privateKey: keyA.privateKey });
  const e = await refusal(verifyImage(`${plain}:latest-amd64`, { publicKey: keyA.publicKey, annotations: { 'e2e-tests-passed': 'True' } }));
  assert.equal(e.code, 'SIGNATURE_ANNOTATION_MISMATCH');

  const annotated = await repo('annotated');
  await signImage(`${annotated}:latest-amd64`, { privateKey: keyA.privateKey, annotations: { 'e2e-tests-passed': 'True' } });
  const v = await verifyImage(`${annotated}:latest-amd64`, { publicKey: keyA.publicKey, annotations: { 'e2e-tests-passed': 'True' } });
  assert.deepEqual(v.signatures[0]!.optional, { 'e2e-tests-passed': 'True' });
  assert.equal((await refusal(verifyImage(`${annotated}:latest-amd64`, { publicKey: keyA.publicKey, annotations: { 'e2e-tests-passed': 'False' } }))).code, 'SIGNATURE_ANNOTATION_MISMATCH');
  // A different annotation set is a different signature, so it is appended, not a duplicate.
  assert.equal((await signImage(`${annotated}:latest-amd64`, { privateKey: keyA.privateKey }))[0]!.added, true);
});

test('each refusal has its own code', { skip }, async () => {
  const img = await repo('refuse');
  const ref = `${img}:latest-amd64`;
  const tag = sigTag(layout.amd64);
  const repository = 'distill/refuse';

  // No .sig tag at all.
  assert.equal((await refusal(verifyImage(ref, { publicKey: keyA.publicKey }))).code, 'SIGNATURE_NONE');

  // A wrong key.
  await signImage(ref, { privateKey: keyA.privateKey });
  assert.equal((await refusal(verifyImage(ref, { publicKey: keyB.publicKey }))).code, 'SIGNATURE_INVALID');
  const good = (await readStored(registry.host, repository, tag)).layers[0]!;

  // One changed payload byte, under the original signature.
  const changed = Buffer.from(good.payload.toString().replace('cosign container image signature', 'cosign container image signaturE'));
  assert.equal(changed.length, good.payload.length);
  await putRawAttachment(registry.host, repository, tag, [{ mediaType: SIMPLE, payload: changed, annotations: good.annotations! }]);
  assert.equal((await refusal(verifyImage(ref, { publicKey: keyA.publicKey }))).code, 'SIGNATURE_INVALID');

  // A valid signature, but over another image's digest (copied from the index's).
  const other = simpleSigningPayload(`${registry.host}/${repository}`, layout.index);
  await putRawAttachment(registry.host, repository, tag, [{ mediaType: SIMPLE, payload: other, annotations: { [SIG_KEY]: signBytes(keyA.privateKey, other).toString('base64') } }]);
  assert.equal((await refusal(verifyImage(ref, { publicKey: keyA.publicKey }))).code, 'SIGNATURE_DIGEST_MISMATCH');

  // The original, valid layer in a manifest with Docker media types (COSIGN_DOCKER_MEDIA_TYPES=1).
  await putRawAttachment(registry.host, repository, tag, [{ mediaType: SIMPLE, payload: good.payload, annotations: good.annotations! }], 'docker');
  assert.equal((await refusal(verifyImage(ref, { publicKey: keyA.publicKey }))).code, 'SIGNATURE_MEDIA_TYPE');

  // The same, back in OCI form, verifies again: the hand-made `{}` config is accepted.
  await putRawAttachment(registry.host, repository, tag, [{ mediaType: SIMPLE, payload: good.payload, annotations: good.annotations! }]);
  assert.equal((await verifyImage(ref, { publicKey: keyA.publicKey })).signatures.length, 1);

  // URL-safe base64 in the annotation (a signature that has '+' or '/', so the two forms differ).
  let der: Buffer;
  do der = signBytes(keyA.privateKey, good.payload);
  while (!/[+/]/.test(der.toString('base64')));
  await putRawAttachment(registry.host, repository, tag, [{ mediaType: SIMPLE, payload: good.payload, annotations: { [SIG_KEY]: der.toString('base64url') } }]);
  const e = await refusal(verifyImage(ref, { publicKey: keyA.publicKey }));
  assert.equal(e.code, 'SIGNATURE_INVALID');
  assert.match(e.message, /base64/);

  // Only non-signature layers: nothing to verify.
  await putRawAttachment(registry.host, repository, tag, [{ mediaType: 'application/vnd.example.other', payload: Buffer.from('x') }]);
  assert.equal((await refusal(verifyImage(ref, { publicKey: keyA.publicKey }))).code, 'SIGNATURE_NONE');
});

test('--recursive signs the index and every platform manifest', { skip }, async () => {
  const image = await repo('recursive');
  const children = await indexChildren(registry.host, 'distill/recursive', 'latest');
  assert.equal(children.length, 2);
  const signed = await signImage(`${image}:latest`, { privateKey: keyA.privateKey, recursive: true });
  assert.deepEqual(signed.map((s) => s.digest), [layout.index, ...children]);
  for (const d of [layout.index, ...children]) {
    const v = await verifyImage(`${image}@${d}`, { publicKey: keyA.publicKey });
    assert.equal(v.signatures[0]!.manifestDigest, d);
  }
  // Without --recursive only the index is signed.
  const flat = await repo('flat');
  assert.deepEqual((await signImage(`${flat}:latest`, { privateKey: keyA.privateKey })).map((s) => s.digest), [layout.index]);
  assert.equal((await refusal(verifyImage(`${flat}@${children[0]!}`, { publicKey: keyA.publicKey }))).code, 'SIGNATURE_NONE');
});

// containers/image looks for `sha256-<hex>.sig` only with use-sigstore-attachments, and only accepts OCI
// manifests with simplesigning layers. Debian bookworm's skopeo 1.9.3 then stops with "Debian-local
// change: sigstore disabled" instead of verifying: that error proves it found our signature (an
// unsigned image gives "no signature" instead). A skopeo that really verifies (trixie's 1.18) must accept it.
test('skopeo finds (or, where it can, verifies) our signature', { skip }, async (t) => {
  if (spawnSync('skopeo', ['--version'], { stdio: 'ignore' }).status !== 0) {
    t.skip('skopeo is not installed');
    return;
  }
  const signed = await repo('skopeo-signed');
  await repo('skopeo-unsigned');
  await repo('skopeo-docker');
  await signImage(`${signed}:latest-amd64`, { privateKey: keyA.privateKey });
  // Our own signature layer, in a Docker-typed manifest: containers/image must refuse it as we do.
  const ours = (await readStored(registry.host, 'distill/skopeo-signed', sigTag(layout.amd64))).layers[0]!;
  await putRawAttachment(registry.host, 'distill/skopeo-docker', sigTag(layout.amd64), [{ mediaType: SIMPLE, payload: ours.payload, annotations: ours.annotations! }], 'docker');
  const dir = join(work, 'skopeo');
  mkdirSync(join(dir, 'registries.d'), { recursive: true });
  writeFileSync(join(dir, 'cosign.pub'), keyA.publicKey.export({ type: 'spki', format: 'pem' }));
  const requirement = [{ type: 'sigstoreSigned', keyPath: join(dir, 'cosign.pub'), signedIdentity: { type: 'matchRepository' } }];
  writeFileSync(
    join(dir, 'policy.json'),
    JSON.stringify({
      default: [{ type: 'reject' }],
      transports: { docker: Object.fromEntries(['signed', 'unsigned', 'docker'].map((n) => [`${registry.host}/distill/skopeo-${n}`, requirement])) },
    }),
  );
  writeFileSync(join(dir, 'registries.d', 'distill.yaml'), `docker:\n  ${registry.host}:\n    use-sigstore-attachments: true\n`);
  const copy = (name: string) =>
    spawnSync(
      'skopeo',
      ['--policy', join(dir, 'policy.json'), '--registries.d', join(dir, 'registries.d'), 'copy', '--src-tls-verify=false', `docker://${registry.host}/distill/${name}:latest-amd64`, `dir:${mkdtempSync(join(dir, `${name}-`))}`],
      { encoding: 'utf8', timeout: 20_000 },
    );
  const s = copy('skopeo-signed');
  if (s.status !== 0 && /unknown policy requirement type|use-sigstore-attachments/i.test(s.stderr)) {
    t.skip(`this skopeo does not know sigstoreSigned: ${s.stderr.trim().slice(0, 200)}`);
    return;
  }
  const u = copy('skopeo-unsigned');
  t.diagnostic(`signed: ${s.stderr.trim().slice(-200)}`);
  t.diagnostic(`unsigned: ${u.stderr.trim().slice(-200)}`);
  assert.notEqual(u.status, 0, 'an unsigned image is refused');
  assert.doesNotMatch(u.stderr, /sigstore disabled/, 'the unsigned image fails before any signature is checked');
  assert.match(u.stderr, /signature/i, u.stderr);
  const d = copy('skopeo-docker');
  t.diagnostic(`docker media types: ${d.stderr.trim().slice(-200)}`);
  assert.notEqual(d.status, 0);
  assert.match(d.stderr, /unexpected MIME type for sigstore attachment manifest/, d.stderr);
  if (s.status === 0) {
    t.diagnostic('skopeo verified the signature');
    return;
  }
  assert.match(s.stderr, /Debian-local change: sigstore disabled/, `skopeo did not get as far as our signature: ${s.stderr}`);
  t.diagnostic('skopeo found our signature; this Debian build cannot verify sigstore signatures ("sigstore disabled")');
});
