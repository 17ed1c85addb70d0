// Streaming copy between real registries (distribution, `docker-registry`): registry → registry blob
// by blob with no layout on disk; digests kept; the cosign attachment tags of the index and of each
// platform manifest come along; on one registry every blob is mounted (0 bytes uploaded); a second
// copy sends nothing; a signed image's .sig tags and Sigstore bundle referrers come along, mounted
// within a registry (0 bytes) and streamed to another.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generateKeyPairSync } from 'node:crypto';
import { copyImage } from '../../src/copy.js';
import { MEDIA_TYPE_SIGSTORE_BUNDLE_V03 } from '../../src/oci/media-types.js';
import { listReferrers } from '../../src/registry/referrers.js';
import { signImage } from '../../src/sign/sign.js';
import { RegistryClient } from '../../src/registry/client.js';
import { pushLayout } from '../../src/registry/push.js';
import { makeBigLayout, makeTestLayout, needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';

const { skip } = needsRegistry();
let a: RunningRegistry;
let b: RunningRegistry;
let work: string;
let layout: Awaited<ReturnType<typeof makeTestLayout>>;
let sigTag: string;

before(async () => {
  if (skip) return;
  work = mkdtempSync(join(tmpdir(), 'distill-copy-test-'));
  layout = await makeTestLayout(join(work, 'layout'), work);
  // Any image serves as an attachment: what matters is its sha256-<hex>.sig tag naming our image.
  await makeBigLayout(join(work, 'sig'), work, 1024);
  a = await startRegistry();
  b = await startRegistry();
  await pushLayout(join(work, 'layout'), `${a.host}/dev/app`, { refs: ['latest'], tags: { latest: '1.0' } });
  sigTag = `sha256-${layout.amd64.slice(7)}.sig`;
  await pushLayout(join(work, 'sig'), `${a.host}/dev/app`, { refs: ['big'], tags: { big: sigTag } });
});

after(async () => {
  await a?.stop();
  await b?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function digestOf(host: string, repo: string, ref: string): Promise<string> {
  const c = new RegistryClient(host);
  try {
    return (await c.getManifest(repo, ref)).digest;
  } finally {
    await c.close();
  }
}

test('copy to another registry streams every blob once, keeps the digest and the attachments; again sends nothing', { skip }, async () => {
  const r = await copyImage(`${a.host}/dev/app:1.0`, `${b.host}/prod/app:1.0`);
  assert.equal(r.digest, layout.index);
  assert.deepEqual(r.attachments, [sigTag]);
  assert.equal(await digestOf(b.host, 'prod/app', '1.0'), layout.index);
  assert.equal(await digestOf(b.host, 'prod/app', sigTag), await digestOf(a.host, 'dev/app', sigTag));
  assert.equal(r.stats.blobsMounted, 0);
  assert.equal(r.stats.blobsUploaded, layout.blobs.length + 2); // + the attachment's config and layer
  const again = await copyImage(`${a.host}/dev/app:1.0`, `${b.host}/prod/app:1.0`);
  assert.equal(again.stats.bytesUploaded, 0);
  assert.equal(again.stats.blobsSkipped, layout.blobs.length + 2);
});

test('copy within a registry mounts every blob: 0 bytes uploaded', { skip }, async () => {
  const r = await copyImage(`${a.host}/dev/app:1.0`, `${a.host}/prod/app:1.0`);
  assert.equal(r.digest, layout.index);
  assert.deepEqual(r.attachments, [sigTag]);
  assert.equal(r.stats.bytesUploaded, 0);
  assert.equal(r.stats.blobsUploaded, 0);
  assert.equal(r.stats.blobsMounted, layout.blobs.length + 2);
  assert.equal(await digestOf(a.host, 'prod/app', '1.0'), layout.index);
});

test('copy without attachments copies only the image', { skip }, async () => {
  const r = await copyImage(`${a.host}/dev/app:1.0`, `${b.host}/other/app:2`, { attachments: false });
  assert.deepEqual(r.attachments, []);
  assert.equal(await digestOf(b.host, 'other/app', '2'), layout.index);
});

test('a signed image (.sig tags and Sigstore bundle referrers) copies with its attachments: mounted within a registry, streamed to another', { skip }, async () => {
  await pushLayout(join(work, 'layout'), `${a.host}/signed/app`, { refs: ['latest'] });
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const signed = await signImage(`${a.host}/signed/app:latest`, { privateKey, recursive: true, format: 'both' });
  assert.equal(signed.length, 3); // the index and its two platform manifests
  const same = await copyImage(`${a.host}/signed/app:latest`, `${a.host}/signed-prod/app:latest`);
  assert.equal(same.attachments.length, 3);
  assert.equal(same.referrers.length, 3);
  assert.equal(same.stats.bytesUploaded, 0, 'a same-registry copy sends no blob bytes');
  assert.equal(same.stats.blobsUploaded, 0);
  assert.ok(same.stats.blobsMounted > layout.blobs.length, 'the attachments\' blobs are mounted too');
  const listed = await listReferrersOf(a.host, 'signed-prod/app', layout.index);
  assert.equal(listed.length, 1);
  const other = await copyImage(`${a.host}/signed/app:latest`, `${b.host}/signed/app:latest`);
  assert.equal(other.referrers.length, 3);
  assert.equal(other.stats.blobsMounted, 0);
  assert.ok(other.stats.blobsUploaded > layout.blobs.length);
  assert.deepEqual(await listReferrersOf(b.host, 'signed/app', layout.index), listed);
});

async function listReferrersOf(host: string, repo: string, subject: string): Promise<string[]> {
  const c = new RegistryClient(host);
  try {
    return (await listReferrers(c, repo, subject, MEDIA_TYPE_SIGSTORE_BUNDLE_V03)).descriptors.map((d) => d.digest);
  } finally {
    await c.close();
  }
}
