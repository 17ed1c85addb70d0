// The standard images through a real registry, as users meet them: `distill build --push` of every
// image (every variant and platform), skopeo agreeing on every digest, `distill pull` giving back the
// same digests, `distill inspect` listing packages, and `distill copy` carrying cosign attachment tags
// to another repository with their digests intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync } from 'node:fs';
import { Readable } from 'node:stream';
import { join } from 'node:path';
import { main } from '../../src/cli/main.js';
import { RegistryClient } from '../../src/registry/client.js';
import { needsRegistry, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

const snap = snapshotDir();
const skip = needsRegistry().skip || (snap === undefined ? NO_SNAPSHOT : false);
let registry: RunningRegistry;
const cache = tempDir('distill-std-cache-');
const IMAGES = ['static', 'base-nossl', 'base', 'cc', 'python3', 'nodejs', 'java'];
const built = new Map<string, { variants: { variant: string; index: string; manifests: { arch: string; digest: string }[] }[] }>();

async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await main(args, { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: { HOME: cache } });
  return { code, stdout, stderr };
}

const mirrorArgs = (): string[] => Object.entries(snapshotMirrors(snap!)).flatMap(([k, v]) => ['--mirror', `${k}=${v}`]);

before(async () => {
  if (skip) return;
  registry = await startRegistry();
  for (const image of IMAGES) {
    const r = await cli(['build', join(repoRoot, 'images', image), '--push', `${registry.host}/distill/${image}`, '--json', '--cache', cache, ...mirrorArgs()]);
    assert.equal(r.code, 0, r.stderr);
    built.set(image, JSON.parse(r.stdout));
  }
});

after(async () => {
  await registry?.stop();
  rmSync(cache, { recursive: true, force: true });
});

test('every standard image, variant and platform is in the registry with our digests (skopeo agrees)', { skip }, () => {
  for (const [image, result] of built) {
    for (const v of result.variants) {
      const raw = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/distill/${image}:${v.variant}`], { encoding: 'utf8' });
      assert.equal(raw.status, 0, raw.stderr);
      assert.equal(`sha256:${createHash('sha256').update(raw.stdout).digest('hex')}`, v.index, `${image}:${v.variant}`);
      for (const m of v.manifests) {
        const r = spawnSync('skopeo', ['inspect', '--tls-verify=false', `docker://${registry.host}/distill/${image}:${v.variant}-${m.arch}`], { encoding: 'utf8' });
        assert.equal(r.status, 0, r.stderr);
        assert.equal(JSON.parse(r.stdout).Digest, m.digest, `${image}:${v.variant}-${m.arch}`);
      }
    }
  }
});

test('an unchanged re-push sends no blob bytes', { skip }, async () => {
  const r = await cli(['build', join(repoRoot, 'images', 'python3'), '--push', `${registry.host}/distill/python3`, '--json', '--cache', cache, ...mirrorArgs()]);
  assert.equal(r.code, 0, r.stderr);
  const out = JSON.parse(r.stdout);
  assert.equal(out.pushed.bytesUploaded, 0);
  assert.equal(out.pushed.blobsUploaded, 0);
});

test('pull gives back the same digests; inspect lists the packages, largest first', { skip }, async () => {
  const dir = tempDir('distill-std-pull-');
  const p = await cli(['pull', `${registry.host}/distill/python3:nonroot`, '--out', dir, '--json']);
  assert.equal(p.code, 0, p.stderr);
  const pulled = JSON.parse(p.stdout);
  const nonroot = built.get('python3')!.variants.find((v) => v.variant === 'nonroot')!;
  assert.equal(pulled.digest, nonroot.index);
  assert.deepEqual(pulled.manifests.map((m: { digest: string }) => m.digest).sort(), nonroot.manifests.map((m) => m.digest).sort());
  const i = await cli(['inspect', dir, '--json']);
  assert.equal(i.code, 0, i.stderr);
  const refs = JSON.parse(i.stdout);
  const amd64 = refs[0].images.find((img: { platform: string }) => img.platform === 'linux/amd64');
  assert.ok(amd64.packages.length >= 25);
  assert.equal(amd64.packages[0].name, 'libc6', 'largest installed package first');
  const remote = await cli(['inspect', `${registry.host}/distill/static:latest`]);
  assert.equal(remote.code, 0, remote.stderr);
  assert.match(remote.stdout, /tzdata\s+2026c-0\+deb13u1/);
});

test('copy to another repository keeps every digest and the cosign attachment tags', { skip }, async () => {
  const digest = built.get('static')!.variants.find((v) => v.variant === 'latest')!.index;
  // A stand-in for a cosign signature: an OCI manifest with one simplesigning layer, tagged as cosign tags it.
  const client = new RegistryClient(registry.host, { access: 'push' });
  try {
    const payload = Buffer.from(JSON.stringify({ critical: { identity: { 'docker-reference': `${registry.host}/distill/static` }, image: { 'docker-manifest-digest': digest }, type: 'cosign container image signature' }, optional: null }));
    const pd = `sha256:${createHash('sha256').update(payload).digest('hex')}`;
    await client.uploadBlob('distill/static', { digest: pd, size: payload.length }, () => Readable.from([payload]));
    const cfg = Buffer.from('{}');
    const cd = `sha256:${createHash('sha256').update(cfg).digest('hex')}`;
    await client.uploadBlob('distill/static', { digest: cd, size: cfg.length }, () => Readable.from([cfg]));
    const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: cd, size: cfg.length }, layers: [{ mediaType: 'application/vnd.dev.cosign.simplesigning.v1+json', digest: pd, size: payload.length, annotations: { 'dev.cosignproject.cosign/signature': 'MEUCIQ==' } }] }));
    await client.putManifest('distill/static', `sha256-${digest.slice(7)}.sig`, manifest, 'application/vnd.oci.image.manifest.v1+json');
  } finally {
    await client.close();
  }
  const c = await cli(['copy', `${registry.host}/distill/static:latest`, `${registry.host}/prod/static:latest`, '--json']);
  assert.equal(c.code, 0, c.stderr);
  const copied = JSON.parse(c.stdout);
  assert.equal(copied.digest, digest);
  assert.deepEqual(copied.attachments, [`sha256-${digest.slice(7)}.sig`]);
  for (const tag of ['latest', `sha256-${digest.slice(7)}.sig`]) {
    const a = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/distill/static:${tag}`], { encoding: 'utf8' });
    const b = spawnSync('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${registry.host}/prod/static:${tag}`], { encoding: 'utf8' });
    assert.equal(b.status, 0, b.stderr);
    assert.equal(b.stdout, a.stdout, `${tag} is byte-identical after the copy`);
  }
});
