// A registry behind a fault-injecting proxy: connection resets, 500/503, 429 with Retry-After, a
// stalled response and lost responses are retried (whole operations, uploads in new sessions) and the
// push still ends with the same digests; a push killed part-way never leaves a tag pointing at
// something missing; a registry that lies about digests or sends an oversized manifest is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { isDistillError } from '../../src/errors.js';
import type { ProgressEvent } from '../../src/events.js';
import { MEDIA_TYPE_OCI_INDEX, RegistryClient } from '../../src/registry/client.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushLayout } from '../../src/registry/push.js';
import { makeBigLayout, makeTestLayout, needsRegistry, startFaultProxy, startRegistry, type FaultProxy, type RunningRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

const { skip } = needsRegistry();
let registry: RunningRegistry;
let proxy: FaultProxy;
let direct: RegistryClient;
let work: string;
let layoutDir: string;
let layout: Awaited<ReturnType<typeof makeTestLayout>>;
const fast = { attempts: 4, baseDelayMs: 10, maxDelayMs: 2000 };

before(async () => {
  if (skip) return;
  work = tempDir('distill-faults-test-');
  layoutDir = join(work, 'layout');
  layout = await makeTestLayout(layoutDir, work);
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.port);
  direct = new RegistryClient(registry.host);
});

after(async () => {
  await direct?.close();
  await proxy?.stop();
  await registry?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

const BLOB_HEAD = /\/blobs\/sha256:/;
const UPLOAD = /\/blobs\/uploads\//;
const MANIFEST_BY_DIGEST = /\/manifests\/sha256:/;
const TAG = /\/manifests\/latest/;

test('resets, 500/503, 429 + Retry-After, a stall and lost responses: the push finishes with the same digests', { skip }, async () => {
  proxy.log.length = 0;
  proxy.rules = [
    { method: 'HEAD', path: BLOB_HEAD, fault: { kind: 'reset' }, times: 2 },
    { method: 'POST', path: UPLOAD, fault: { kind: 'status', status: 503 }, times: 1 },
    { method: 'PUT', path: UPLOAD, fault: { kind: 'status', status: 500 }, times: 1 },
    // The registry stores this blob, but we never hear so: the retry must cope with "already there".
    { method: 'PUT', path: UPLOAD, fault: { kind: 'drop-response' }, times: 1 },
    { method: 'HEAD', path: MANIFEST_BY_DIGEST, fault: { kind: 'stall' }, times: 1 },
    { method: 'PUT', path: MANIFEST_BY_DIGEST, fault: { kind: 'status', status: 429, retryAfter: '1' }, times: 1 },
    { method: 'PUT', path: TAG, fault: { kind: 'drop-response' }, times: 1 },
  ];
  const events: ProgressEvent[] = [];
  const started = Date.now();
  const r = await pushLayout(layoutDir, `${proxy.host}/distill/faulty`, { retry: fast, timeoutMs: 1000, onProgress: (e) => events.push(e) });
  const seconds = (Date.now() - started) / 1000;
  assert.deepEqual(r.pushed.map((p) => p.digest), [layout.index, layout.amd64]);
  assert.deepEqual(proxy.rules.map((x) => x.times), proxy.rules.map(() => 0), 'every fault was injected');
  const retries = events.filter((e): e is Extract<ProgressEvent, { type: 'retry' }> => e.type === 'retry');
  assert.ok(retries.length >= 8, `${retries.length} retries`);
  assert.ok(retries.some((e) => e.delayMs === 1000 && /429/.test(e.reason)), 'Retry-After: 1 was honoured');
  assert.ok(retries.some((e) => /timeout/i.test(e.reason)), 'the stall hit the client timeout');
  assert.ok(seconds >= 1 && seconds < 10, `${seconds} s`);
  // What the registry holds, asked directly: the same tags, digests and blobs.
  for (const [tag, digest] of [['latest', layout.index], ['latest-amd64', layout.amd64]]) {
    assert.equal((await direct.getManifest('distill/faulty', tag!)).digest, digest);
  }
  for (const b of layout.blobs) assert.ok(await direct.headBlob('distill/faulty', b), b);
});

test('a chunked upload broken mid-way restarts in a new session (with relative Locations)', { skip }, async () => {
  proxy.log.length = 0;
  proxy.rules = [
    { method: 'PATCH', path: UPLOAD, fault: { kind: 'reset' }, times: 1 },
    { method: 'PATCH', path: UPLOAD, fault: { kind: 'drop-response' }, times: 1 },
    { method: 'PATCH', path: UPLOAD, fault: { kind: 'status', status: 502 }, times: 1 },
  ];
  proxy.relativeLocations = true;
  const r = await pushLayout(layoutDir, `${proxy.host}/distill/chunky`, { retry: fast, monolithicMax: 100, chunkSize: 200, concurrency: 1 }).finally(() => {
    proxy.relativeLocations = false;
  });
  assert.deepEqual(r.pushed.map((p) => p.digest), [layout.index, layout.amd64]);
  assert.deepEqual(proxy.rules.map((x) => x.times), [0, 0, 0]);
  const posts = proxy.log.filter((l) => l.method === 'POST').length;
  assert.equal(posts, layout.blobs.length + 3, 'one new upload session per broken upload');
  assert.ok(proxy.log.filter((l) => l.method === 'PATCH').length > layout.blobs.length, 'several chunks per blob');
});

test('a 9 MiB layer goes up in two streamed PATCHes of at most 8 MiB, and comes back intact', { skip }, async () => {
  const dir = join(work, 'big-layout');
  const big = await makeBigLayout(dir, work, 9 * 1024 * 1024);
  proxy.rules = [];
  proxy.log.length = 0;
  const events: ProgressEvent[] = [];
  const r = await pushLayout(dir, `${proxy.host}/distill/big`, { onProgress: (e) => events.push(e) });
  assert.deepEqual(r.pushed.map((p) => p.digest), [big.manifest]);
  assert.equal(r.bytesUploaded > big.size, true);
  assert.equal(proxy.log.filter((l) => l.method === 'PATCH').length, 2);
  const progress = events.filter((e) => e.type === 'blob-push-progress' && e.digest === big.layer).length;
  assert.ok(progress >= 9, `${progress} progress events`);
  const pulled = await pullImage(`${proxy.host}/distill/big:big`, join(work, 'big-pulled'));
  assert.equal(pulled.digest, big.manifest);
  assert.equal(pulled.bytesDownloaded > big.size, true);
});

test('a pull through resets and 503s still verifies every blob', { skip }, async () => {
  proxy.rules = [
    { method: 'GET', path: /\/manifests\//, fault: { kind: 'status', status: 503 }, times: 1 },
    { method: 'GET', path: BLOB_HEAD, fault: { kind: 'reset' }, times: 2 },
  ];
  const r = await pullImage(`${proxy.host}/distill/faulty:latest`, join(work, 'pulled'), { retry: fast });
  assert.equal(r.digest, layout.index);
  assert.equal(r.blobsDownloaded, layout.blobs.length);
  assert.deepEqual(proxy.rules.map((x) => x.times), [0, 0]);
});

test('a push killed after N requests never leaves a tag pointing at a missing blob', { skip }, async () => {
  // How many requests a clean push takes.
  proxy.rules = [];
  proxy.killAfter = undefined;
  proxy.log.length = 0;
  await pushLayout(layoutDir, `${proxy.host}/distill/count`, { concurrency: 1 });
  const total = proxy.log.length;
  const cuts = [...new Set([1, 3, 6, 10, Math.floor(total / 2), total - 3, total - 2, total - 1])].filter((n) => n > 0 && n < total);
  let tagged = 0;
  for (const n of cuts) {
    const repo = `distill/killed-${n}`;
    proxy.log.length = 0;
    proxy.killAfter = n;
    await assert.rejects(pushLayout(layoutDir, `${proxy.host}/${repo}`, { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 }, concurrency: 1 }));
    proxy.killAfter = undefined;
    tagged += await assertConsistent(repo);
  }
  // Killed just before the last tag, the first one is there (and complete): the check is not vacuous.
  assert.ok(tagged >= 1, `${tagged} tags survived ${cuts.join(', ')}`);
});

/** Every tag in `repo` names a manifest whose whole graph is present (asked of the registry directly). Returns the tag count. */
async function assertConsistent(repo: string): Promise<number> {
  let tags: string[];
  try {
    tags = await direct.listTags(repo);
  } catch (e) {
    if (isDistillError(e, 'REGISTRY_NOT_FOUND')) return 0;
    throw e;
  }
  for (const tag of tags) {
    const m = await direct.getManifest(repo, tag);
    const manifests = [m];
    if (m.mediaType === MEDIA_TYPE_OCI_INDEX) {
      for (const c of JSON.parse(m.bytes.toString()).manifests as { digest: string }[]) manifests.push(await direct.getManifest(repo, c.digest));
    }
    for (const x of manifests.slice(m.mediaType === MEDIA_TYPE_OCI_INDEX ? 1 : 0)) {
      const parsed = JSON.parse(x.bytes.toString()) as { config: { digest: string }; layers: { digest: string }[] };
      for (const b of [parsed.config, ...parsed.layers]) assert.ok(await direct.headBlob(repo, b.digest), `${repo}:${tag} → missing ${b.digest}`);
    }
  }
  return tags.length;
}

test('a registry that reports another Docker-Content-Digest is refused', { skip }, async () => {
  const liar = `sha256:${'0'.repeat(64)}`;
  proxy.rules = [{ method: 'PUT', path: UPLOAD, fault: { kind: 'rewrite-digest', digest: liar }, times: 1 }];
  await assert.rejects(pushLayout(layoutDir, `${proxy.host}/distill/lied-to`, { retry: fast }), (e) => isDistillError(e, 'REGISTRY_DIGEST_MISMATCH'));
  await assertConsistent('distill/lied-to');
  assert.equal(proxy.rules[0]!.times, 0);

  proxy.rules = [{ method: 'GET', path: TAG, fault: { kind: 'rewrite-digest', digest: liar }, times: 1 }];
  await assert.rejects(pullImage(`${proxy.host}/distill/faulty:latest`, join(work, 'lied'), { retry: fast }), (e) => isDistillError(e, 'REGISTRY_DIGEST_MISMATCH'));
});

test('an oversized manifest response is cut off at the cap', { skip }, async () => {
  proxy.rules = [{ method: 'GET', path: TAG, fault: { kind: 'oversize', bytes: 6 * 1024 * 1024 }, times: 1 }];
  await assert.rejects(pullImage(`${proxy.host}/distill/faulty:latest`, join(work, 'big'), { retry: fast }), (e) => isDistillError(e, 'RESPONSE_TOO_LARGE'));
  assert.equal(proxy.rules[0]!.times, 0);
});
