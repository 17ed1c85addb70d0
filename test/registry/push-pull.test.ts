// Push and pull against a real registry (distribution 2.8, `docker-registry`), checked by skopeo:
// the digests it sees are ours, `skopeo copy` can read what we pushed, a re-push sends no blob
// bytes, a pull gives back the same digests, and bad input fails with the right code.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { isDistillError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushLayout } from '../../src/registry/push.js';
import { hasTool, run } from '../helpers/make-layer.js';
import { makeTestLayout, needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

const { skip } = needsRegistry();
const noSkopeo = hasTool('skopeo') ? false : 'skopeo is not installed';
let registry: RunningRegistry;
let work: string;
let layoutDir: string;
let layout: Awaited<ReturnType<typeof makeTestLayout>>;
const sha = (b: string | Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

before(async () => {
  if (skip) return;
  work = tempDir('distill-registry-test-');
  layoutDir = join(work, 'layout');
  layout = await makeTestLayout(layoutDir, work);
  registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('push a layout: every ref tagged, skopeo sees our digests and can copy the image', { skip }, async () => {
  const events: ProgressEvent[] = [];
  const r = await pushLayout(layoutDir, `${registry.host}/distill/test`, { onProgress: (e) => events.push(e) });
  assert.deepEqual(
    r.pushed.map((p) => [p.ref, p.tag, p.digest]),
    [
      ['latest', 'latest', layout.index],
      ['latest-amd64', 'latest-amd64', layout.amd64],
    ],
  );
  assert.equal(r.blobsUploaded, layout.blobs.length);
  assert.equal(r.blobsSkipped, 0);
  assert.ok(r.bytesUploaded > 0);
  assert.equal(r.manifestsPushed, 3);
  // Progress: one outcome per blob; tags are the last two events.
  assert.equal(events.filter((e) => e.type === 'blob-pushed').length, layout.blobs.length);
  assert.deepEqual(events.slice(-2).map((e) => (e.type === 'manifest-pushed' ? e.reference : e.type)), ['latest', 'latest-amd64']);

  if (noSkopeo) return;
  const raw = await run('skopeo', ['inspect', '--tls-verify=false', '--raw', `docker://${registry.host}/distill/test:latest`]);
  assert.equal(sha(raw), layout.index);
  const info = JSON.parse(await run('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/distill/test:latest-amd64`]));
  assert.equal(info.Digest, layout.amd64);
  assert.equal(info.Architecture, 'amd64');
  const manifest = JSON.parse(readFileSync(join(layoutDir, 'blobs', 'sha256', layout.amd64.slice(7)), 'utf8'));
  assert.deepEqual(info.Layers, manifest.layers.map((l: { digest: string }) => l.digest));

  const copied = join(work, 'skopeo-copy');
  await run('skopeo', ['copy', '--all', '--src-tls-verify=false', `docker://${registry.host}/distill/test:latest`, `oci:${copied}:x`]);
  assert.equal(sha(await run('skopeo', ['inspect', '--raw', `oci:${copied}:x`])), layout.index);
});

test('a re-push of an unchanged layout sends no blob bytes', { skip }, async () => {
  const r = await pushLayout(layoutDir, `${registry.host}/distill/test`);
  assert.equal(r.bytesUploaded, 0);
  assert.equal(r.blobsUploaded, 0);
  assert.equal(r.blobsSkipped, layout.blobs.length);
  assert.equal(r.manifestsSkipped, 3);
  assert.deepEqual(r.pushed.map((p) => p.digest), [layout.index, layout.amd64]);
});

test('pull gives back a layout with the same digests', { skip }, async () => {
  const out = join(work, 'pulled');
  const r = await pullImage(`${registry.host}/distill/test:latest`, out);
  assert.equal(r.digest, layout.index);
  assert.equal(r.sourceDigest, layout.index);
  assert.equal(r.refName, 'latest');
  assert.equal(r.manifests.length, 2);
  assert.equal(r.blobsDownloaded, layout.blobs.length);
  for (const b of [...layout.blobs, layout.index, layout.amd64]) {
    const p = join(out, 'blobs', 'sha256', b.slice(7));
    assert.ok(existsSync(p), b);
    assert.equal(sha(readFileSync(p)), b);
  }
  const index = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8'));
  assert.deepEqual(index.manifests.map((m: { digest: string }) => m.digest), [layout.index]);
  assert.equal(index.manifests[0].annotations['org.opencontainers.image.ref.name'], 'latest');
  if (!noSkopeo) assert.equal(sha(await run('skopeo', ['inspect', '--raw', `oci:${out}:latest`])), layout.index);

  // Pulling again into the same layout downloads nothing; a single-platform tag gets its own ref.
  const again = await pullImage(`${registry.host}/distill/test:latest`, out);
  assert.equal(again.blobsDownloaded, 0);
  assert.equal(again.blobsCached, layout.blobs.length);
  const one = await pullImage(`${registry.host}/distill/test:latest-amd64`, out);
  assert.equal(one.digest, layout.amd64);
  assert.deepEqual(one.manifests, [{ digest: layout.amd64, platform: { os: 'linux', architecture: 'amd64' } }]);
  const names = JSON.parse(readFileSync(join(out, 'index.json'), 'utf8')).manifests.map((m: any) => m.annotations['org.opencontainers.image.ref.name']);
  assert.deepEqual(names, ['latest', 'latest-amd64']);
  if (!noSkopeo) assert.equal(JSON.parse(await run('skopeo', ['inspect', `oci:${out}:latest-amd64`])).Digest, layout.amd64);
});

test('pull by digest, and with a platform filter (the narrowed index keeps only that platform)', { skip }, async () => {
  const out = join(work, 'pulled-arm64');
  const r = await pullImage(`${registry.host}/distill/test@${layout.index}`, out, { platforms: ['linux/arm64'] });
  assert.equal(r.sourceDigest, layout.index);
  assert.notEqual(r.digest, layout.index);
  assert.equal(r.refName, layout.index);
  assert.equal(r.manifests.length, 1);
  assert.deepEqual(r.manifests[0]!.platform, { architecture: 'arm64', os: 'linux', variant: 'v8' });
  const narrowed = JSON.parse(readFileSync(join(out, 'blobs', 'sha256', r.digest.slice(7)), 'utf8'));
  assert.deepEqual(narrowed.manifests.map((m: { digest: string }) => m.digest), [r.manifests[0]!.digest]);
  if (!noSkopeo) {
    const info = JSON.parse(await run('skopeo', ['inspect', '--override-arch', 'arm64', `oci:${out}:${layout.index}`]));
    assert.equal(info.Architecture, 'arm64');
  }
  await assert.rejects(pullImage(`${registry.host}/distill/test:latest`, join(work, 'none'), { platforms: ['linux/s390x'] }), (e) => isDistillError(e, 'REGISTRY_NOT_FOUND'));
});

test('large blobs go up in PATCH chunks; blobs mount from another repository', { skip }, async () => {
  const events: ProgressEvent[] = [];
  const chunked = await pushLayout(layoutDir, `${registry.host}/distill/chunked`, { monolithicMax: 100, chunkSize: 150, onProgress: (e) => events.push(e) });
  assert.equal(chunked.blobsUploaded, layout.blobs.length);
  const out = join(work, 'pulled-chunked');
  assert.equal((await pullImage(`${registry.host}/distill/chunked:latest`, out)).digest, layout.index);
  assert.ok(events.some((e) => e.type === 'blob-push-progress'));

  const mounted = await pushLayout(layoutDir, `${registry.host}/distill/mounted`, { mountFrom: ['distill/nothing-here', 'distill/test'] });
  assert.equal(mounted.blobsMounted, layout.blobs.length);
  assert.equal(mounted.bytesUploaded, 0);
  // From a repository that lacks the blobs, the registry opens an upload session instead (202): we upload.
  const fallback = await pushLayout(layoutDir, `${registry.host}/distill/fallback`, { mountFrom: ['distill/nothing-here'] });
  assert.equal(fallback.blobsMounted, 0);
  assert.equal(fallback.blobsUploaded, layout.blobs.length);
});

test('a damaged local blob is refused and nothing is tagged', { skip }, async () => {
  const damaged = join(work, 'damaged');
  cpSync(layoutDir, damaged, { recursive: true });
  const victim = join(damaged, 'blobs', 'sha256', layout.blobs[1]!.slice(7));
  const bytes = readFileSync(victim);
  bytes.writeUInt8(bytes.readUInt8(bytes.length - 1) ^ 0xff, bytes.length - 1);
  rmSync(victim, { force: true });
  writeFileSync(victim, bytes);
  await assert.rejects(pushLayout(damaged, `${registry.host}/distill/damaged`), (e) => isDistillError(e, 'BLOB_DIGEST_MISMATCH'));
  const client = new RegistryClient(registry.host);
  try {
    await assert.rejects(client.listTags('distill/damaged'), (e) => isDistillError(e, 'REGISTRY_NOT_FOUND'));
  } finally {
    await client.close();
  }
});

test('bad input: unknown repository, unknown tag, malformed references', { skip }, async () => {
  await assert.rejects(pullImage(`${registry.host}/distill/no-such-repo:latest`, join(work, 'x')), (e) => isDistillError(e, 'REGISTRY_NOT_FOUND'));
  await assert.rejects(pullImage(`${registry.host}/distill/test:no-such-tag`, join(work, 'x')), (e) => isDistillError(e, 'REGISTRY_NOT_FOUND'));
  await assert.rejects(pullImage(`${registry.host}/Distill/Test:latest`, join(work, 'x')), (e) => isDistillError(e, 'REFERENCE_INVALID'));
  await assert.rejects(pushLayout(layoutDir, `${registry.host}/distill/test@sha256:${'0'.repeat(64)}`), (e) => isDistillError(e, 'REFERENCE_INVALID'));
  await assert.rejects(pushLayout(layoutDir, `${registry.host}/distill/x`, { tags: { latest: 'bad tag' } }), (e) => isDistillError(e, 'REFERENCE_INVALID'));
  await assert.rejects(pushLayout(layoutDir, `${registry.host}/distill/x`, { refs: ['nope'] }), (e) => isDistillError(e, 'OCI_INVALID'));
  // A tag in the target names the one ref pushed.
  const r = await pushLayout(layoutDir, `${registry.host}/distill/renamed:v1`, { refs: ['latest-amd64'] });
  assert.deepEqual(r.pushed.map((p) => [p.ref, p.tag]), [['latest-amd64', 'v1']]);
  const client = new RegistryClient(registry.host);
  try {
    assert.deepEqual(await client.listTags('distill/renamed'), ['v1']);
  } finally {
    await client.close();
  }
});
