// Streaming copy between real registries (distribution, `docker-registry`): registry → registry blob
// by blob with no layout on disk; digests kept; the cosign attachment tags of the index and of each
// platform manifest come along; on one registry every blob is mounted (0 bytes uploaded); a second
// copy sends nothing.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { copyImage } from '../../src/copy.js';
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
