// `inspect` reads images from any source through the model: a layout's refs and a registry image read
// in place (no temporary layout) give the same digests, platforms and layers; a damaged layer blob is
// detected while it streams rather than read as if intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isDistillError } from '../../src/errors.js';
import { inspectImage, inspectLayout } from '../../src/inspect.js';
import { pushLayout } from '../../src/registry/push.js';
import { makeTestLayout, needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';

const { skip } = needsRegistry();
let registry: RunningRegistry | undefined;
const work = mkdtempSync(join(tmpdir(), 'distill-inspect-test-'));
let layout: Awaited<ReturnType<typeof makeTestLayout>>;

before(async () => {
  layout = await makeTestLayout(join(work, 'layout'), work);
  if (!skip) registry = await startRegistry();
});

after(async () => {
  await registry?.stop();
  rmSync(work, { recursive: true, force: true });
});

test('a layout and the same image in a registry inspect alike', { skip }, async () => {
  const local = await inspectLayout(join(work, 'layout'), { ref: 'latest' });
  assert.equal(local.length, 1);
  assert.equal(local[0]!.digest, layout.index);
  await pushLayout(join(work, 'layout'), `${registry!.host}/distill/inspect`, { refs: ['latest'] });
  const remote = await inspectImage(`${registry!.host}/distill/inspect:latest`);
  assert.equal(remote.digest, layout.index);
  assert.deepEqual(remote.images, local[0]!.images);
  assert.deepEqual(remote.images.map((i) => i.platform).sort(), ['linux/amd64', 'linux/arm64/v8']);
});

test('inspect lists every ref of a layout; a damaged layer blob fails with its digest named', async () => {
  const all = await inspectLayout(join(work, 'layout'));
  assert.deepEqual(all.map((r) => r.name), ['latest', 'latest-amd64']);
  const layer = all[1]!.images[0]!.layers[0]!;
  writeFileSync(join(work, 'layout', 'blobs', 'sha256', layer.digest.slice(7)), 'not the layer');
  await assert.rejects(inspectLayout(join(work, 'layout'), { ref: 'latest-amd64' }), (e) => isDistillError(e) && e.message.includes(layer.digest));
});
