// `distill rebuild` takes the published image from wherever it is — an OCI layout (all refs, or one),
// a `distill build --tar` archive (as an OCI archive or by docker tag, with the provenance given
// beside it), a legacy docker archive — and reads it in place: nothing is copied into a temporary
// layout, the private directory it builds in is gone afterwards, and the layout it read is untouched.
// With a registry, the published image is read in place too (no pull): see the watch in the last test.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cpSync, readdirSync, readFileSync, statSync, watch, writeFileSync, type FSWatcher } from 'node:fs';
import { join, relative } from 'node:path';
import { main } from '../../src/cli/main.js';
import { diffImages } from '../../src/diff/diff.js';
import type { ProgressEvent } from '../../src/events.js';
import { rebuild } from '../../src/rebuild.js';
import { loadPublicKey } from '../../src/sign/keys.js';
import { hasTool, run } from '../helpers/make-layer.js';
import { needsRegistry, startRegistry } from '../helpers/registry.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const work = tempDir('distill-rebuild-sources-');
const out = join(work, 'layout');
const tar = join(work, 'static.tar');
const prov = join(out, 'attestations', 'provenance.intoto.json');
const mirrors = (): { flags: Record<string, string>; aptSources: [] } => ({ flags: snapshotMirrors(snap!), aptSources: [] });
const mirrorArgs = (): string[] => Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: work, COSIGN_PASSWORD: 'pw' } });
  return { code, stdout, stderr };
}

/** Every file under `dir` with its size and sha256: a layout "untouched" has the same listing. */
function listing(dir: string): string[] {
  const walk = (d: string): string[] => readdirSync(d).flatMap((n) => {
    const p = join(d, n);
    return statSync(p).isDirectory() ? walk(p) : [`${relative(dir, p)} ${createHash('sha256').update(readFileSync(p)).digest('hex')}`];
  });
  return walk(dir).sort();
}

/** What appears in `dir` (recursively) while `f` runs, by path relative to it. */
async function watching<T>(dir: string, f: () => Promise<T>): Promise<{ value: T; seen: Set<string> }> {
  const seen = new Set<string>();
  const w: FSWatcher = watch(dir, { recursive: true }, (_e, name) => {
    if (name) seen.add(name.toString());
  });
  try {
    return { value: await f(), seen };
  } finally {
    w.close();
  }
}

/** The entries made at the top of the rebuild's private directory. */
function topNames(seen: Set<string>): Set<string> {
  return new Set([...seen].map((p) => p.split('/')[1]).filter((x): x is string => x !== undefined));
}

/** Paths that are (part of) an OCI layout — its oci-layout marker or index.json, or a staged one. */
function layoutFiles(seen: Set<string>): string[] {
  return [...seen].filter((p) => /(^|\/)(oci-layout|index\.json)$|(^|\/)\.[^/]*\.distill-[0-9a-f]+(\/|$)/.test(p));
}

/** Watches the rebuild's private directory and the build's cache at once. */
async function watchingBoth<T>(scratch: string, cache: string, f: () => Promise<T>): Promise<{ value: T; seen: Set<string>; cached: Set<string> }> {
  const inCache = await watching(cache, () => watching(scratch, f));
  return { value: inCache.value.value, seen: inCache.value.seen, cached: inCache.seen };
}

before(async () => {
  if (skip) return;
  const b = await cli(['build', join(repoRoot, 'images', 'static'), '--out', out, '--tar', tar, '--platform', 'amd64', '--cache', join(work, 'cache'), ...mirrorArgs()]);
  assert.equal(b.code, 0, b.stderr);
});

test('a layout, read in place: identical; the private directory is gone and the layout untouched', { skip }, async () => {
  const scratch = tempDir('distill-rebuild-scratch-');
  const before = listing(out);
  const { value: r, seen, cached } = await watchingBoth(scratch, join(work, 'cache'), () => rebuild(out, { cacheDir: join(work, 'cache'), mirrors: mirrors(), workDir: scratch }));
  assert.equal(r.identical, true, r.report);
  assert.equal(r.subjects.length, 4 * 2);
  assert.deepEqual(readdirSync(scratch), [], 'nothing is left in the work directory');
  // The only things made were the definitions — no copy of the published image, and no layout of
  // the rebuilt one: it is compared as the build's model, its blobs in the cache's store.
  const tops = topNames(seen);
  assert.deepEqual([...tops].sort(), ['images']);
  assert.deepEqual(layoutFiles(seen), [], 'no layout in the work directory');
  assert.ok([...cached].some((p) => p.startsWith('build/')), 'the build worked in the watched cache');
  assert.deepEqual(layoutFiles(cached), [], 'no layout in the cache');
  assert.deepEqual(listing(out), before, 'the layout read is not written to');

  // One ref of it.
  const one = await rebuild(`oci:${out}:nonroot-amd64`, { cacheDir: join(work, 'cache'), mirrors: mirrors() });
  assert.equal(one.identical, true, one.report);
  assert.deepEqual(one.subjects.map((s) => s.name), ['static:nonroot-amd64']);
});

test('the --tar archive: every ref as an OCI archive, one by docker tag; it needs the provenance beside it', { skip }, async () => {
  const all = await rebuild(tar, { cacheDir: join(work, 'cache'), mirrors: mirrors(), provenance: prov });
  assert.equal(all.identical, true, all.report);
  assert.equal(all.subjects.length, 4 * 2);
  const tagged = await rebuild(`docker-archive:${tar}:distill/static:debug-amd64`, { cacheDir: join(work, 'cache'), mirrors: mirrors(), provenance: prov });
  assert.equal(tagged.identical, true, tagged.report);
  assert.deepEqual(tagged.subjects.map((s) => s.name), ['static:debug-amd64']);
  await assert.rejects(rebuild(tar, { cacheDir: join(work, 'cache'), mirrors: mirrors() }), (e: any) => e.code === 'USAGE' && /--provenance/.test(e.hint));
  // Through the CLI, as a user types it.
  const c = await cli(['rebuild', `oci-archive:${tar}:latest-amd64`, '--provenance', prov, '--cache', join(work, 'cache'), ...mirrorArgs()]);
  assert.equal(c.code, 0, c.stderr);
  assert.match(c.stdout, /^identical: static:latest-amd64 sha256:/);
});

test('a legacy docker archive of the image (skopeo\'s, uncompressed layers): other digests, and the report says the files are the same', { skip: skip || (hasTool('skopeo') ? false : 'skopeo is not installed') }, async () => {
  const legacy = join(work, 'legacy.tar');
  await run('skopeo', ['copy', `oci:${out}:latest-amd64`, `docker-archive:${legacy}:distill/static:latest-amd64`]);
  const r = await rebuild(legacy, { cacheDir: join(work, 'cache'), mirrors: mirrors(), provenance: prov });
  assert.equal(r.identical, false);
  const s = r.subjects[0]!;
  assert.equal(s.name, 'static:latest-amd64');
  assert.ok(s.comparison, r.report);
  // Same config; every layer holds the same tar, only not gzip-compressed.
  assert.equal(s.comparison!.config.expected, s.comparison!.config.actual);
  assert.equal(s.comparison!.firstDifferingLayer?.compressionOnly, true, r.report);
  assert.match(r.report, /differs only in its compression/);
});

test('distill diff reads a layout through its source: one ref of it, checked against the provenance; an archive has no locks to read', { skip }, async () => {
  const opts = { cacheDir: join(work, 'cache'), mirrors: mirrors(), changelogs: false };
  const same = await diffImages(`oci:${out}:latest-amd64`, out, opts);
  assert.equal(same.summary.changed, false);
  assert.deepEqual(same.warnings, []);
  // A layout whose ref names an image its provenance does not (an annotation added after the build):
  // said, not silently trusted.
  const moved = join(work, 'layout-moved');
  cpSync(out, moved, { recursive: true });
  const index = JSON.parse(readFileSync(join(moved, 'index.json'), 'utf8'));
  const entry = index.manifests.find((m: any) => m.annotations['org.opencontainers.image.ref.name'] === 'latest-amd64');
  const manifest = JSON.parse(readFileSync(join(moved, 'blobs', 'sha256', entry.digest.slice(7)), 'utf8'));
  manifest.annotations = { ...manifest.annotations, 'org.example.altered': 'yes' };
  const bytes = Buffer.from(JSON.stringify(manifest));
  const hex = createHash('sha256').update(bytes).digest('hex');
  writeFileSync(join(moved, 'blobs', 'sha256', hex), bytes);
  Object.assign(entry, { digest: `sha256:${hex}`, size: bytes.length });
  writeFileSync(join(moved, 'index.json'), JSON.stringify(index));
  const warned = await diffImages(`oci:${moved}:latest-amd64`, out, opts);
  assert.equal(warned.summary.changed, false);
  assert.equal(warned.warnings.length, 1, warned.warnings.join('\n'));
  assert.match(warned.warnings[0]!, new RegExp(`sha256:${hex}, which its provenance does not name`));
  assert.deepEqual((await diffImages(`oci:${moved}:debug-amd64`, out, opts)).warnings, []);
  await assert.rejects(diffImages(`${tar}:latest`, out, opts), (e: any) => e.code === 'USAGE' && /no provenance/.test(e.message));
  await assert.rejects(diffImages(`docker-archive:${tar}:distill/static:latest-amd64`, out, opts), (e: any) => e.code === 'USAGE');
});

test('a registry image is read in place: no layout of it is written, nothing is left behind', { skip: skip || needsRegistry().skip }, async () => {
  const registry = await startRegistry();
  try {
    assert.equal((await cli(['generate-key-pair', '--dir', work])).code, 0);
    const repo = `${registry.host}/distill/static`;
    const b = await cli(['build', join(repoRoot, 'images', 'static'), '--platform', 'amd64', '--push', repo, '--sign-key', join(work, 'cosign.key'), '--cache', join(work, 'cache'), ...mirrorArgs()]);
    assert.equal(b.code, 0, b.stderr);
    const publicKey = loadPublicKey(readFileSync(join(work, 'cosign.pub'), 'utf8'), 'cosign.pub');
    const scratch = tempDir('distill-rebuild-scratch-');
    const events: ProgressEvent[] = [];
    const { value: r, seen, cached } = await watchingBoth(scratch, join(work, 'cache'), () => rebuild(`${repo}:nonroot`, { cacheDir: join(work, 'cache'), mirrors: mirrors(), workDir: scratch, publicKey, onProgress: (e) => events.push(e) }));
    assert.equal(r.identical, true, r.report);
    assert.deepEqual(readdirSync(scratch), []);
    const tops = topNames(seen);
    assert.deepEqual([...tops].sort(), ['images']);
    assert.deepEqual(layoutFiles(seen), [], 'no layout in the work directory');
    assert.deepEqual(layoutFiles(cached), [], 'no layout in the cache');
    assert.equal(events.filter((e) => e.type === 'download-start' && /^sha256:/.test(e.what)).length, 0, 'no blob of the published image was downloaded to disk');
  } finally {
    await registry.stop();
  }
});
