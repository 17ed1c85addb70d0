// distill's OCI output against OCI image-spec's own JSON schemas (Debian's
// golang-github-opencontainers-image-spec-dev; see validators.ts) and the 1.1 rules they cannot state:
// a real python3 build (latest and debug, amd64 and arm64) from the frozen snapshot, as an OCI layout
// and as a docker archive (which is an OCI layout too, plus docker's manifest.json). Every blob is
// re-hashed, every descriptor's size checked, every config's diff_ids and history counted against its
// layers, every date RFC 3339. Each check is also shown to reject a broken copy.
import { test, before } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { buildImage } from '../../src/build.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';
import { MT, NO_IMAGE_SPEC, imageSpecValidators, ociGraphProblems, problems, type ImageSpecValidators } from './validators.js';

const snap = snapshotDir();
const v = imageSpecValidators();
const skip = snap === undefined ? NO_SNAPSHOT : v === undefined ? NO_IMAGE_SPEC : false;
type Json = Record<string, any>;

const work = tempDir('distill-schemas-oci-');
const layout = join(work, 'layout');
const archive = join(work, 'python3.tar');
const unpacked = join(work, 'archive');

before(async () => {
  if (skip) return;
  await buildImage(join(repoRoot, 'images', 'python3', 'image.yaml'), {
    cacheDir: join(work, 'cache'),
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    outDir: layout,
    tarFile: archive,
    variants: ['latest', 'debug'],
    platforms: ['amd64', 'arm64'],
    sbomFormats: [],
  });
  const t = spawnSync('tar', ['-xf', archive, '-C', work, '--one-top-level=archive'], { encoding: 'utf8' });
  assert.equal(t.status, 0, t.stderr);
});

const json = (file: string): Json => JSON.parse(readFileSync(file, 'utf8')) as Json;
const reader = (dir: string, overlay = new Map<string, Buffer>()) => (digest: string): Buffer =>
  overlay.get(digest) ?? readFileSync(join(dir, 'blobs', ...(digest.split(':') as [string, string])));
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A layout's oci-layout, index.json and every blob the index reaches. */
function layoutProblems(vs: ImageSpecValidators, dir: string, seen = { indexes: 0, manifests: 0, configs: 0, layers: 0 }): string[] {
  const out = problems(vs.layout, json(join(dir, 'oci-layout'))).map((p) => `oci-layout: ${p}`);
  const index = json(join(dir, 'index.json'));
  out.push(...problems(vs.index, index).map((p) => `index.json: ${p}`));
  // image-layout.md: index.json is an image index; its mediaType, when present, is the index's.
  if (index['mediaType'] !== undefined && index['mediaType'] !== MT.index) out.push(`index.json: mediaType ${index['mediaType']}`);
  out.push(...ociGraphProblems(vs, index['manifests'] as Json[], reader(dir), seen));
  return out;
}

test('OCI layout: oci-layout, index.json, every index, manifest, config and descriptor valid against image-spec', { skip }, () => {
  const seen = { indexes: 0, manifests: 0, configs: 0, layers: 0 };
  assert.deepEqual(layoutProblems(v!, layout, seen), []);
  // latest and debug: two indexes, four platform manifests (reached twice: from index.json and their index).
  assert.deepEqual(seen, { indexes: 2, manifests: 4, configs: 4, layers: 4 * 6 - 2 }, 'the walk reached every blob');
  const refs = (json(join(layout, 'index.json'))['manifests'] as Json[]).map((m) => m['annotations']['org.opencontainers.image.ref.name'] as string).sort();
  assert.deepEqual(refs, ['debug', 'debug-amd64', 'debug-arm64', 'latest', 'latest-amd64', 'latest-arm64']);
});

test('docker archive: its OCI side (oci-layout, index.json, blobs) valid against image-spec', { skip }, () => {
  assert.deepEqual(layoutProblems(v!, unpacked), []);
});

test("docker archive: manifest.json as docker's image spec v1.2 and moby's loader read it", { skip }, () => {
  const manifest = json(join(unpacked, 'manifest.json')) as unknown as Json[];
  assert.deepEqual(dockerManifestProblems(unpacked, manifest), []);
  assert.equal(manifest.length, 4);
  // Docker 25+ archives: index.json names the same images, each with its containerd name.
  const names = (json(join(unpacked, 'index.json'))['manifests'] as Json[]).map((m) => m['annotations']?.['io.containerd.image.name']).filter(Boolean).sort();
  assert.ok(manifest.every((m) => (m['RepoTags'] as string[]).every((t) => names.some((n: string) => n.endsWith(`/${t}`) || n === t))), `${JSON.stringify(names)}`);
});

/**
 * docker's image spec v1.2 ("Combined Image JSON + Filesystem Changeset Format", manifest.json) and
 * moby's image/tarexport/load.go: an array of {Config, RepoTags, Layers[, Parent, LayerSources]}; Config
 * is a member whose sha256 is the image ID and whose config is an image JSON; Layers are members, one
 * per rootfs.diff_ids entry, each (decompressed) hashing to its diff ID; RepoTags are name:tag references.
 */
function dockerManifestProblems(dir: string, manifest: Json[]): string[] {
  const out: string[] = [];
  if (!Array.isArray(manifest)) return ['manifest.json is not an array'];
  const member = (p: unknown): string | undefined => {
    if (typeof p !== 'string' || p.startsWith('/') || p.split('/').includes('..')) return undefined;
    return existsSync(join(dir, p)) ? join(dir, p) : undefined;
  };
  for (const [i, m] of manifest.entries()) {
    const where = `manifest.json[${i}]`;
    for (const k of Object.keys(m)) if (!['Config', 'RepoTags', 'Layers', 'Parent', 'LayerSources'].includes(k)) out.push(`${where}: unknown field ${k}`);
    const cfg = member(m['Config']);
    if (!cfg) { out.push(`${where}: Config ${m['Config']} is not a member`); continue; }
    const cb = readFileSync(cfg);
    // load.go: the image ID is the config's digest; a Config named by its digest must match it.
    const named = /sha256[/:]([a-f0-9]{64})(?:\.json)?$/.exec(m['Config']);
    if (named && `sha256:${named[1]}` !== sha(cb)) out.push(`${where}: Config ${m['Config']} does not hash to its name`);
    const config = JSON.parse(cb.toString()) as Json;
    const diffIds = config['rootfs']?.['diff_ids'] as string[] | undefined;
    if (config['rootfs']?.['type'] !== 'layers' || !Array.isArray(diffIds)) { out.push(`${where}: config has no rootfs.diff_ids`); continue; }
    if (!Array.isArray(m['RepoTags']) || !(m['RepoTags'] as unknown[]).every((t) => typeof t === 'string' && /^[a-z0-9]+(?:[._-][a-z0-9]+)*(?:\/[a-z0-9]+(?:[._-][a-z0-9]+)*)*:[\w][\w.-]{0,127}$/.test(t))) {
      out.push(`${where}: RepoTags ${JSON.stringify(m['RepoTags'])} are not name:tag references`);
    }
    const layers = m['Layers'] as unknown[];
    if (!Array.isArray(layers) || layers.length !== diffIds.length) { out.push(`${where}: ${Array.isArray(layers) ? layers.length : 'no'} Layers for ${diffIds.length} diff_ids (load.go: "invalid manifest, layers length mismatch")`); continue; }
    for (const [j, l] of layers.entries()) {
      const f = member(l);
      if (!f) { out.push(`${where}: layer ${String(l)} is not a member`); continue; }
      const raw = readFileSync(f);
      const tarBytes = raw[0] === 0x1f && raw[1] === 0x8b ? gunzipSync(raw) : raw;
      if (sha(tarBytes) !== diffIds[j]) out.push(`${where}: layer ${j} does not hash to diff_id ${diffIds[j]}`);
    }
  }
  return out;
}

test('each check rejects a broken copy (the validators can fail)', { skip }, () => {
  const index = json(join(layout, 'index.json'));
  const roots = index['manifests'] as Json[];
  const amd64 = roots.find((m) => m['annotations']['org.opencontainers.image.ref.name'] === 'latest-amd64')!;
  const manifestBytes = reader(layout)(amd64['digest']);
  const manifest = JSON.parse(manifestBytes.toString()) as Json;
  const config = JSON.parse(reader(layout)(manifest['config']['digest']).toString()) as Json;

  /** Problems of the latest-amd64 graph with the manifest and config replaced as `edit` says. */
  const withEdits = (edit: { manifest?: (m: Json) => void; config?: (c: Json) => void; root?: (d: Json) => void }): string[] => {
    const m = structuredClone(manifest);
    const c = structuredClone(config);
    edit.config?.(c);
    const cb = Buffer.from(JSON.stringify(c));
    if (edit.config) m['config'] = { ...m['config'], digest: sha(cb), size: cb.length };
    edit.manifest?.(m);
    const mb = Buffer.from(JSON.stringify(m));
    const root = { ...amd64, digest: sha(mb), size: mb.length };
    edit.root?.(root);
    return ociGraphProblems(v!, [root], reader(layout, new Map([[sha(cb), cb], [sha(mb), mb]])));
  };
  const rejects = (what: string, found: string[], pattern: RegExp): void => {
    assert.ok(found.some((p) => pattern.test(p)), `${what}: expected a problem matching ${pattern}, got ${JSON.stringify(found)}`);
  };
  assert.deepEqual(withEdits({}), [], 'an unchanged copy is valid');
  rejects('schema: no layers', withEdits({ manifest: (m) => { m['layers'] = []; } }), /\(manifest\).*fewer than 1/);
  rejects('schema: schemaVersion 1', withEdits({ manifest: (m) => { m['schemaVersion'] = 1; } }), /\(manifest\).*schemaVersion|must be >= 2/);
  rejects('schema: config without rootfs', withEdits({ config: (c) => { delete c['rootfs']; } }), /\(config\).*rootfs/);
  rejects('schema: config created not a date-time', withEdits({ config: (c) => { c['created'] = 'yesterday'; } }), /created/);
  rejects('schema: bad digest grammar', withEdits({ manifest: (m) => { m['layers'][0]['digest'] = 'SHA256:abc'; } }), /digest/);
  rejects('schema: annotation not a string', withEdits({ manifest: (m) => { m['annotations'] = { a: 1 }; } }), /annotation|must be string/);
  rejects('rule: diff_ids count', withEdits({ config: (c) => { c['rootfs']['diff_ids'].pop(); } }), /diff_ids for/);
  rejects('rule: history count', withEdits({ config: (c) => { c['history'].push({ created: c['created'], created_by: 'x' }); } }), /non-empty history/);
  rejects('rule: mediaType field', withEdits({ manifest: (m) => { m['mediaType'] = MT.index; } }), /document mediaType/);
  rejects('rule: layer media type', withEdits({ manifest: (m) => { m['layers'][0]['mediaType'] = 'application/vnd.docker.image.rootfs.diff.tar.gzip'; } }), /not an image layer media type/);
  rejects('rule: size', withEdits({ manifest: (m) => { m['layers'][0]['size'] += 1; } }), /but the blob has/);
  rejects('rule: digest of content', withEdits({ root: (d) => { d['digest'] = `sha256:${'0'.repeat(64)}`; } }), /cannot be read|does not hash/);
  rejects('rule: platform vs config', withEdits({ root: (d) => { d['platform'] = { architecture: 'arm64', os: 'linux', variant: 'v8' }; } }), /platform.architecture/);
  rejects('rule: RFC 3339 annotation', withEdits({ manifest: (m) => { m['annotations']['org.opencontainers.image.created'] = '2026-11-20 00:12:42'; } }), /not RFC 3339/);
  rejects('rule: ref.name grammar', withEdits({ root: (d) => { d['annotations'] = { 'org.opencontainers.image.ref.name': 'latest amd64' }; } }), /ref.name/);
  rejects('rule: subject media type', withEdits({ manifest: (m) => { m['subject'] = { mediaType: 'text/plain', digest: amd64['digest'], size: 1 }; } }), /subject: mediaType/);
  rejects('rule: empty config needs artifactType', withEdits({ manifest: (m) => { m['config'] = { mediaType: MT.empty, digest: sha('{}'), size: 2 }; } }), /artifactType is missing|cannot be read/);
  assert.notDeepEqual(problems(v!.layout, { imageLayoutVersion: '2.0.0' }), [], 'oci-layout version');

  const dm = json(join(unpacked, 'manifest.json')) as unknown as Json[];
  const broken = (edit: (m: Json) => void): string[] => { const c = structuredClone(dm); edit(c[0]!); return dockerManifestProblems(unpacked, c); };
  rejects('docker: layers count', broken((m) => { (m['Layers'] as string[]).pop(); }), /layers length mismatch/);
  rejects('docker: layer order', broken((m) => { (m['Layers'] as string[]).reverse(); }), /does not hash to diff_id/);
  rejects('docker: escaping path', broken((m) => { m['Config'] = '../etc/passwd'; }), /not a member/);
  rejects('docker: RepoTags', broken((m) => { m['RepoTags'] = ['Distill/Python3']; }), /RepoTags/);
  rejects('docker: unknown field', broken((m) => { m['config'] = m['Config']; }), /unknown field/);
});
