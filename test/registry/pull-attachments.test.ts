// pull = registry source → layout sink, with what is attached to the image: cosign's
// sha256-<hex>.sig tag and an OCI referrer (registered under the referrers fallback tag, as cosign v3
// does on a registry without the referrers API) come into the layout as refs of their own; skopeo
// reads them; pushing the pulled layout elsewhere gives the registry the same attachments back; and a
// pull with attachments off, or a second pull, behaves.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/registry/client.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushLayout } from '../../src/registry/push.js';
import { listReferrers, registerReferrer } from '../../src/registry/referrers.js';
import { readLayoutArtifact } from '../../src/sources/oci-layout.js';
import { hasTool, run } from '../helpers/make-layer.js';
import { makeBigLayout, makeTestLayout, needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

const { skip } = needsRegistry();
let registry: RunningRegistry;
let work: string;
let layout: Awaited<ReturnType<typeof makeTestLayout>>;
let sigTag: string;
let referrer: string;
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

before(async () => {
  if (skip) return;
  work = tempDir('distill-pull-attachments-');
  layout = await makeTestLayout(join(work, 'layout'), work);
  await makeBigLayout(join(work, 'sig'), work, 1024);
  registry = await startRegistry();
  await pushLayout(join(work, 'layout'), `${registry.host}/dev/app`, { refs: ['latest'], tags: { latest: '1.0' } });
  // Any image serves as a signature stand-in: what matters is its tag naming our amd64 manifest.
  sigTag = `sha256-${layout.amd64.slice(7)}.sig`;
  await pushLayout(join(work, 'sig'), `${registry.host}/dev/app`, { refs: ['big'], tags: { big: sigTag } });
  // An OCI referrer of the index: a small artifact manifest with a subject.
  const client = new RegistryClient(registry.host, { access: 'push' });
  try {
    const payload = Buffer.from('{"bundle":"stand-in"}');
    const empty = Buffer.from('{}');
    for (const b of [payload, empty]) await client.uploadBlob('dev/app', { digest: sha(b), size: b.length }, () => Readable.from([b]));
    const indexBytes = readFileSync(join(work, 'layout', 'blobs', 'sha256', layout.index.slice(7)));
    const m = Buffer.from(JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha(empty), size: empty.length },
      layers: [{ mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json', digest: sha(payload), size: payload.length }],
      subject: { mediaType: 'application/vnd.oci.image.index.v1+json', digest: layout.index, size: indexBytes.length },
    }));
    referrer = sha(m);
    await client.putManifest('dev/app', referrer, m, 'application/vnd.oci.image.manifest.v1+json');
    await registerReferrer(client, 'dev/app', layout.index, { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: referrer as `sha256:${string}`, size: m.length, artifactType: 'application/vnd.dev.sigstore.bundle.v0.3+json' });
  } finally {
    await client.close();
  }
});

after(async () => {
  await registry?.stop();
});

const refNames = (dir: string): string[] =>
  JSON.parse(readFileSync(join(dir, 'index.json'), 'utf8')).manifests.map((m: { annotations: Record<string, string> }) => m.annotations['org.opencontainers.image.ref.name']);

test('the signature tag and the referrer come along as refs; skopeo reads them; push gives them back', { skip }, async () => {
  const out = join(work, 'pulled');
  const r = await pullImage(`${registry.host}/dev/app:1.0`, out);
  assert.equal(r.digest, layout.index);
  assert.deepEqual(r.attachments, [sigTag]);
  assert.deepEqual(r.referrers, [referrer]);
  const fallback = `sha256-${layout.index.slice(7)}`;
  assert.deepEqual(refNames(out), ['1.0', fallback, sigTag]);
  // The image's ref is the image; the attachment refs resolve through the layout source too.
  assert.equal((await readLayoutArtifact(out, '1.0')).digest, layout.index);
  const sig = await readLayoutArtifact(out, sigTag);
  assert.equal(sha(readFileSync(join(out, 'blobs', 'sha256', sig.digest.slice(7)))), sig.digest);
  if (hasTool('skopeo')) {
    const raw = await run('skopeo', ['inspect', '--raw', `oci:${out}:${fallback}`]);
    assert.deepEqual(JSON.parse(raw).manifests.map((m: { digest: string }) => m.digest), [referrer]);
  }

  // The pulled layout pushed to another repository: the signature tag and the referrer are there.
  await pushLayout(out, `${registry.host}/prod/app`);
  const client = new RegistryClient(registry.host);
  try {
    assert.deepEqual((await client.listTags('prod/app')).sort(), ['1.0', fallback, sigTag].sort());
    const listed = await listReferrers(client, 'prod/app', layout.index);
    assert.deepEqual(listed.descriptors.map((d) => d.digest), [referrer]);
  } finally {
    await client.close();
  }
});

test('attachments: false pulls the image alone; a second pull downloads nothing', { skip }, async () => {
  const out = join(work, 'alone');
  const r = await pullImage(`${registry.host}/dev/app:1.0`, out, { attachments: false });
  assert.deepEqual([r.attachments, r.referrers], [[], []]);
  assert.deepEqual(refNames(out), ['1.0']);
  assert.equal(r.blobsDownloaded, layout.blobs.length);
  // With attachments: only theirs are new (the signature's config and layer, the referrer's two).
  const again = await pullImage(`${registry.host}/dev/app:1.0`, out);
  assert.equal(again.blobsCached, layout.blobs.length);
  assert.equal(again.blobsDownloaded, 4);
  const third = await pullImage(`${registry.host}/dev/app:1.0`, out);
  assert.equal(third.blobsDownloaded, 0);
  assert.equal(third.bytesDownloaded, 0);
  // Nothing half-written is left behind: every file in blobs/ is a blob named by its digest.
  for (const f of readdirSync(join(out, 'blobs', 'sha256'))) {
    assert.match(f, /^[0-9a-f]{64}$/);
    assert.equal(sha(readFileSync(join(out, 'blobs', 'sha256', f))), `sha256:${f}`);
  }
});
