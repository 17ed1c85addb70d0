// build ≠ publish: buildImage returns the images as the model (blobs in the content store, nothing
// written anywhere), and one publish() call writes an OCI layout with its attestations, a docker
// archive, pushes to a real registry (`docker-registry` on 127.0.0.1, behind a counting proxy) from
// the store, and signs and attests every variant — all with one registry client: the registry is
// pinged once for the whole publish, not once per signature or attestation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync } from 'node:crypto';
import { chmodSync, existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { verifyAttestation } from '../../src/attest/attest.js';
import { buildImage } from '../../src/build.js';
import type { ProgressEvent } from '../../src/events.js';
import { buildAndPublish, publish } from '../../src/publish.js';
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

test('buildAndPublish into a layout: each layer is copied in as the build completes it; the layout is what publish() writes, and a failed build leaves nothing beside it', { skip: snap === undefined ? NO_SNAPSHOT : false }, async () => {
  const work = tempDir('distill-publish-early-');
  try {
    const cacheDir = join(work, 'cache');
    const mirrors = { flags: snapshotMirrors(snap!), aptSources: [] };
    const layout = join(work, 'out');
    const blobs: { digest: string; path: string }[] = [];
    const events: ProgressEvent[] = [];
    const r = await buildAndPublish(def, {
      cacheDir,
      mirrors,
      platforms: ['amd64'],
      variants: ['latest', 'debug'],
      noLayerCache: true,
      publish: { layout },
      onLayerBlob: (b) => blobs.push(b),
      onProgress: (e) => events.push(e),
    });
    // Every layer of the images, each once, from the content store, before the images were made.
    const layers = [...new Set(r.variants.flatMap((v) => v.manifests.flatMap((m) => m.layers.map((l) => l.digest))))].sort();
    assert.deepEqual(blobs.map((b) => b.digest).sort(), layers);
    for (const b of blobs) assert.ok(b.path.startsWith(join(cacheDir, 'blobs', 'sha256')), b.path);
    assert.ok(events.findIndex((e) => e.type === 'image-written') > events.findLastIndex((e) => e.type === 'layer-written'));
    // The same layout as publish() of the same build writes: the same blobs, the same index.json.
    const again = join(work, 'again');
    await publish(await buildImage(def, { cacheDir, mirrors, platforms: ['amd64'], variants: ['latest', 'debug'], noLayerCache: true }), { layout: again });
    assert.deepEqual(readdirSync(join(layout, 'blobs', 'sha256')).sort(), readdirSync(join(again, 'blobs', 'sha256')).sort());
    assert.equal(readFileSync(join(layout, 'index.json'), 'utf8'), readFileSync(join(again, 'index.json'), 'utf8'));
    for (const name of readdirSync(join(layout, 'blobs', 'sha256'))) {
      assert.equal(createHash('sha256').update(readFileSync(join(layout, 'blobs', 'sha256', name))).digest('hex'), name);
    }
    assert.deepEqual(readdirSync(work).sort(), ['again', 'cache', 'out'], 'no staging directory is left beside the layouts');

    // A build that fails once its layers are under way (a cached .deb damaged, no mirror to fetch it
    // again from): the existing layout is untouched and its staging directory is gone.
    const before = readFileSync(join(layout, 'index.json'), 'utf8');
    const deb = readdirSync(join(cacheDir, 'blobs', 'sha256')).map((n) => join(cacheDir, 'blobs', 'sha256', n)).find((p) => readFileSync(p).subarray(0, 8).toString('latin1') === '!<arch>\n')!;
    chmodSync(deb, 0o644);
    const bytes = readFileSync(deb);
    bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
    writeFileSync(deb, bytes);
    const nowhere = pathToFileURL(join(work, 'no-mirror')).href;
    await assert.rejects(buildAndPublish(def, {
      cacheDir,
      mirrors: { flags: { debian: nowhere, 'debian-security': nowhere }, aptSources: [] },
      platforms: ['amd64'],
      variants: ['latest'],
      noLayerCache: true,
      publish: { layout },
    }));
    assert.equal(readFileSync(join(layout, 'index.json'), 'utf8'), before);
    assert.deepEqual(readdirSync(work).sort(), ['again', 'cache', 'out'], 'the failed build left no staging directory');
  } finally {
    removeTempDir(work);
  }
});
