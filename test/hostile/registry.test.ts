// Hostile suite, class 6: registry failures end in a code. Through the fault proxy, as the CLI meets
// them: 5xx on every upload, connections cut on every request, a wrong digest, an oversized response
// on pull — each is the one-line coded error with a hint once retries give up, and a pull leaves no
// layout that looks complete. A push cut while tagging leaves no tag pointing at a missing blob, and a
// re-run completes.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { isDistillError } from '../../src/errors.js';
import { MEDIA_TYPE_OCI_INDEX, RegistryClient } from '../../src/registry/client.js';
import { makeTestLayout, needsRegistry, startFaultProxy, startRegistry, type FaultProxy, type RunningRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, cli, spawnCli } from './helpers.js';

const { skip } = needsRegistry();
let registry: RunningRegistry;
let proxy: FaultProxy;
let direct: RegistryClient;
let work: string;
let layoutDir: string;

before(async () => {
  if (skip) return;
  work = tempDir('distill-hostile-reg-');
  layoutDir = join(work, 'layout');
  await makeTestLayout(layoutDir, work);
  registry = await startRegistry();
  proxy = await startFaultProxy(registry.port);
  direct = new RegistryClient(registry.host);
  // A clean image to pull through the faults.
  const r = await cli(['push', layoutDir, `${registry.host}/hostile/clean`]);
  assert.equal(r.code, 0, r.stderr);
});

after(async () => {
  await direct?.close();
  await proxy?.stop();
  await registry?.stop();
});

const forever = 1_000_000;

test('5xx on every upload: a coded error after the retries, and no tag', { skip }, async () => {
  proxy.rules = [{ method: 'POST', path: /\/blobs\/uploads\//, fault: { kind: 'status', status: 503 }, times: forever }, { method: 'PUT', path: /\/blobs\/uploads\//, fault: { kind: 'status', status: 500 }, times: forever }];
  try {
    const r = await cli(['push', layoutDir, `${proxy.host}/hostile/fivexx`]);
    assertRefused(r, 'FETCH_FAILED', '5xx forever');
    assert.match(r.stderr, /50[03]/);
  } finally {
    proxy.rules = [];
  }
  assert.equal(await tagCount('hostile/fivexx'), 0);
});

test('every connection cut: a coded error', { skip }, async () => {
  proxy.rules = [{ fault: { kind: 'reset' }, times: forever }];
  try {
    assertRefused(await cli(['push', layoutDir, `${proxy.host}/hostile/cut`]), '[A-Z_]+', 'push, cut');
    const out = join(work, 'pull-cut');
    assertRefused(await cli(['pull', `${proxy.host}/hostile/clean:latest`, '--out', out]), '[A-Z_]+', 'pull, cut');
    assert.equal(existsSync(join(out, 'index.json')), false, 'no layout that looks complete');
  } finally {
    proxy.rules = [];
  }
});

test('a wrong digest on pull, and an oversized manifest: coded, and no layout that looks complete', { skip }, async () => {
  const liar = `sha256:${'0'.repeat(64)}`;
  for (const [fault, code] of [[{ kind: 'rewrite-digest', digest: liar }, 'REGISTRY_DIGEST_MISMATCH'], [{ kind: 'oversize', bytes: 6 * 1024 * 1024 }, 'RESPONSE_TOO_LARGE']] as const) {
    proxy.rules = [{ method: 'GET', path: /\/manifests\/latest/, fault, times: forever }];
    const out = join(work, `pull-${fault.kind}`);
    try {
      assertRefused(await cli(['pull', `${proxy.host}/hostile/clean:latest`, '--out', out]), code, fault.kind);
    } finally {
      proxy.rules = [];
    }
    assert.equal(existsSync(join(out, 'index.json')), false, 'no layout that looks complete');
  }
});

test('a push cut while tagging leaves no tag pointing at a missing blob; the re-run completes', { skip }, async () => {
  proxy.rules = [{ method: 'PUT', path: /\/manifests\/latest(-amd64)?$/, fault: { kind: 'reset' }, times: forever }];
  try {
    assertRefused(await cli(['push', layoutDir, `${proxy.host}/hostile/tagging`]), '[A-Z_]+', 'cut while tagging');
  } finally {
    proxy.rules = [];
  }
  await assertConsistent('hostile/tagging');
  const r = await cli(['push', layoutDir, `${proxy.host}/hostile/tagging`]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await assertConsistent('hostile/tagging'), 2);
});

test('a push SIGKILLed at several points leaves no dangling tag; the next push completes', { skip }, async () => {
  const repo = `${registry.host}/hostile/killed`;
  for (const ms of [60, 150, 300, 500]) {
    const r = await spawnCli(['push', layoutDir, repo], { killAfterMs: ms });
    await assertConsistent('hostile/killed');
    if (!r.killed) break;
  }
  const r = await cli(['push', layoutDir, repo]);
  assert.equal(r.code, 0, r.stderr);
  assert.equal(await assertConsistent('hostile/killed'), 2);
});

async function tagCount(repo: string): Promise<number> {
  try {
    return (await direct.listTags(repo)).length;
  } catch (e) {
    if (isDistillError(e, 'REGISTRY_NOT_FOUND')) return 0;
    throw e;
  }
}

/** Every tag names a manifest whose whole graph is present. Returns the tag count. */
async function assertConsistent(repo: string): Promise<number> {
  if ((await tagCount(repo)) === 0) return 0;
  const tags = await direct.listTags(repo);
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
