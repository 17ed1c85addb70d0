// build ≠ publish: buildImage returns the images as the model (blobs in the content store, nothing
// written anywhere), and one publish() call writes an OCI layout with its attestations, a docker
// archive, pushes to a real registry (`docker-registry` on 127.0.0.1, behind a counting proxy) from
// the store, and signs and attests every variant — all with one registry client: the registry is
// pinged once for the whole publish, not once per signature or attestation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { verifyAttestation } from '../../src/attest/attest.js';
import { buildImage } from '../../src/build.js';
import type { ProgressEvent } from '../../src/events.js';
import { publish } from '../../src/publish.js';
import { RegistryClient } from '../../src/registry/client.js';
import { verifyImage } from '../../src/sign/verify.js';
import { readLayoutArtifact } from '../../src/sources/oci-layout.js';
import { isImageIndex } from '../../src/oci/model.js';
import { hasTool, run } from '../helpers/make-layer.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { needsRegistry, startFaultProxy, startRegistry } from '../helpers/registry.js';
import { removeTempDir, tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
const def = join(repoRoot, 'images', 'static', 'image.yaml');

test('publish(build): layout + archive + registry + signer from one build result, one registry client', { skip }, async () => {
  const work = tempDir('distill-publish-');
  const registry = await startRegistry();
  const proxy = await startFaultProxy(registry.port);
  try {
    const cacheDir = join(work, 'cache');
    // --no-layer-cache: the layers the build wrote must still be there for publish (in the store),
    // though the build's own work directory is gone.
    const built = await buildImage(def, { cacheDir, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] }, platforms: ['amd64'], variants: ['latest', 'nonroot'], noLayerCache: true });
    assert.deepEqual(readdirSync(join(cacheDir, 'build')), [], 'the build leaves no work directory behind');
    assert.deepEqual(built.model.variants.map((v) => v.variant), ['latest', 'nonroot']);
    assert.equal(built.model.variants[0]!.index.index.descriptor.digest, built.variants[0]!.index);
    assert.ok(!('model' in JSON.parse(JSON.stringify(built))), 'the result stays a JSON summary');
    assert.deepEqual(built.model.sboms.map((s) => `${s.variant}/${s.format}`), ['latest/spdx', 'latest/cyclonedx', 'nonroot/spdx', 'nonroot/cyclonedx']);

    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const layout = join(work, 'out');
    const archive = join(work, 'static.tar');
    const repo = `${proxy.host}/distill/static`;
    const events: ProgressEvent[] = [];
    proxy.log.length = 0;
    const r = await publish(built, { layout, archive, registry: { repository: repo }, signer: { privateKey }, onProgress: (e) => events.push(e) });

    // One client for the push, 2 recursive signatures (index + image each) and 2 × (provenance + 2 SBOMs).
    assert.equal(proxy.log.filter((l) => l.method === 'GET' && l.path === '/v2/').length, 1, 'one ping for the whole publish');
    assert.deepEqual(r.pushed!.pushed.map((p) => [p.tag, p.digest]), [
      ['latest', built.variants[0]!.index],
      ['latest-amd64', built.variants[0]!.manifests[0]!.digest],
      ['nonroot', built.variants[1]!.index],
      ['nonroot-amd64', built.variants[1]!.manifests[0]!.digest],
    ]);
    assert.equal(r.signed.length, 4);
    assert.equal(r.attested.length, 6);
    assert.deepEqual([...new Set(r.attested.map((a) => a.predicateType))].length, 3, 'provenance, SPDX and CycloneDX');
    // The tags come last: after every blob and manifest.
    const pushes = events.filter((e) => e.type === 'manifest-pushed' || e.type === 'blob-pushed');
    const firstTag = pushes.findIndex((e) => e.type === 'manifest-pushed' && !e.reference.startsWith('sha256:'));
    assert.ok(pushes.slice(firstTag).every((e) => e.type === 'manifest-pushed' && !e.reference.startsWith('sha256:')));

    // The registry holds what the build made, and the signatures and attestations verify.
    for (const v of built.variants) {
      const signed = await verifyImage(`${registry.host}/distill/static:${v.variant}`, { publicKey });
      assert.equal(signed.digest, v.index);
      const prov = await verifyAttestation(`${registry.host}/distill/static@${v.index}`, { publicKey, predicateType: 'slsaprovenance1' });
      assert.equal(prov.statements.length, 1);
      const sbom = await verifyAttestation(`${registry.host}/distill/static@${v.manifests[0]!.digest}`, { publicKey, predicateType: 'spdxjson' });
      assert.equal(sbom.statements.length, 1);
    }
    const direct = new RegistryClient(registry.host);
    try {
      const tags = await direct.listTags('distill/static');
      for (const t of ['latest', 'latest-amd64', 'nonroot', 'nonroot-amd64']) assert.ok(tags.includes(t), t);
    } finally {
      await direct.close();
    }

    // The layout: both variants and their platform images, with the attestations beside them.
    const latest = await readLayoutArtifact(layout, 'latest');
    assert.equal(latest.digest, built.variants[0]!.index);
    assert.ok(isImageIndex(latest.artifact));
    for (const f of ['provenance.intoto.json', 'sbom-latest-amd64.spdx.json', 'sbom-nonroot-amd64.cdx.json']) assert.ok(existsSync(join(layout, 'attestations', f)), f);
    assert.deepEqual(JSON.parse(readFileSync(join(layout, 'attestations', 'provenance.intoto.json'), 'utf8')), built.provenance);

    // The archive: docker load's names, and the same image digest.
    assert.ok(existsSync(archive));
    if (hasTool('skopeo')) {
      const info = JSON.parse(await run('skopeo', ['inspect', `docker-archive:${archive}:distill/static:nonroot-amd64`]));
      assert.equal(info.Architecture, 'amd64');
    }

    // A second publish of the same result to the same repository sends no blob bytes.
    const again = await publish(built, { registry: { repository: repo } });
    assert.equal(again.pushed!.bytesUploaded, 0);
  } finally {
    await proxy.stop();
    await registry.stop();
    removeTempDir(work);
  }
});
