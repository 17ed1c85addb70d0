// Helpers for the signing tests, written independently of src/sign: keys, pushing the small test image,
// reading and hand-writing attachment manifests with the plain registry client, and checking
// signatures with the openssl command line (a second implementation of ECDSA-SHA256 over DER).
import { spawnSync } from 'node:child_process';
import { createHash, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { RegistryClient } from '../../src/registry/client.js';
import { pushLayout } from '../../src/registry/push.js';
import { makeTestLayout } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

export interface KeyPair {
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function ecKeyPair(): KeyPair {
  return generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
}

export function digestOf(b: Buffer | string): string {
  return `sha256:${createHash('sha256').update(b).digest('hex')}`;
}

/** The test layout (`latest`: a two-platform index; `latest-amd64`), made once per work dir. */
export async function testLayout(work: string): Promise<{ dir: string; index: string; amd64: string }> {
  const dir = join(work, 'layout');
  const r = await makeTestLayout(dir, work);
  return { dir, index: r.index, amd64: r.amd64 };
}

/** Push the layout to host/repository (tags latest, latest-amd64). */
export async function pushTo(layoutDir: string, host: string, repository: string): Promise<void> {
  await pushLayout(layoutDir, `${host}/${repository}`);
}

/** Whether openssl (the CLI) verifies `sig` (DER) over `data` with the PKIX PEM public key. */
export function opensslVerifies(publicKey: KeyObject, data: Buffer, sig: Buffer): { ok: boolean; output: string } {
  const dir = tempDir('distill-openssl-');
  try {
    writeFileSync(join(dir, 'pub.pem'), publicKey.export({ type: 'spki', format: 'pem' }));
    writeFileSync(join(dir, 'sig.der'), sig);
    writeFileSync(join(dir, 'data'), data);
    const r = spawnSync('openssl', ['dgst', '-sha256', '-verify', join(dir, 'pub.pem'), '-signature', join(dir, 'sig.der'), join(dir, 'data')], { encoding: 'utf8' });
    return { ok: r.status === 0 && r.stdout.includes('Verified OK'), output: `${r.stdout}${r.stderr}` };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export function hasOpenssl(): boolean {
  return spawnSync('openssl', ['version'], { stdio: 'ignore' }).status === 0;
}

export interface RawLayer {
  mediaType: string;
  payload: Buffer;
  annotations?: Record<string, string>;
}

/**
 * Write a hand-made attachment manifest (blobs, a `{}` config, the manifest PUT with `manifestMediaType`
 * as its content type and `mediaType` field) — for tampered and foreign-shaped signatures.
 */
export async function putRawAttachment(
  host: string,
  repository: string,
  tag: string,
  layers: RawLayer[],
  kind: 'oci' | 'docker' = 'oci',
): Promise<void> {
  const client = new RegistryClient(host, { access: 'push' });
  try {
    const config = Buffer.from('{}');
    const blobs = [config, ...layers.map((l) => l.payload)];
    for (const b of blobs) {
      await client.uploadBlob(repository, { digest: digestOf(b), size: b.length }, () => Readable.from([b], { objectMode: false }));
    }
    const manifestType = kind === 'oci' ? 'application/vnd.oci.image.manifest.v1+json' : 'application/vnd.docker.distribution.manifest.v2+json';
    const configType = kind === 'oci' ? 'application/vnd.oci.image.config.v1+json' : 'application/vnd.docker.container.image.v1+json';
    const manifest = {
      schemaVersion: 2,
      mediaType: manifestType,
      config: { mediaType: configType, size: config.length, digest: digestOf(config) },
      layers: layers.map((l) => ({ mediaType: l.mediaType, size: l.payload.length, digest: digestOf(l.payload), ...(l.annotations ? { annotations: l.annotations } : {}) })),
    };
    await client.putManifest(repository, tag, Buffer.from(JSON.stringify(manifest)), manifestType);
  } finally {
    await client.close();
  }
}

export interface StoredLayer {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  payload: Buffer;
}

/** An attachment manifest as stored: its media type, raw JSON, and every layer with its blob. */
export async function readStored(host: string, repository: string, tag: string): Promise<{ mediaType: string; manifest: Record<string, unknown>; layers: StoredLayer[]; config: Buffer }> {
  const client = new RegistryClient(host);
  const dir = tempDir('distill-stored-');
  try {
    const m = await client.getManifest(repository, tag);
    const manifest = JSON.parse(m.bytes.toString('utf8')) as { config: { digest: string; size: number }; layers: Omit<StoredLayer, 'payload'>[] };
    const fetch = async (digest: string, size: number): Promise<Buffer> => {
      const file = join(dir, digest.slice(7));
      await client.downloadBlob(repository, { digest, size }, file);
      return readFileSync(file);
    };
    const layers: StoredLayer[] = [];
    for (const l of manifest.layers) layers.push({ ...l, payload: await fetch(l.digest, l.size) });
    return { mediaType: m.mediaType, manifest: manifest as unknown as Record<string, unknown>, layers, config: await fetch(manifest.config.digest, manifest.config.size) };
  } finally {
    await client.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

/** The digests an index lists. */
export async function indexChildren(host: string, repository: string, reference: string): Promise<string[]> {
  const client = new RegistryClient(host);
  try {
    const m = await client.getManifest(repository, reference);
    return (JSON.parse(m.bytes.toString('utf8')) as { manifests: { digest: string }[] }).manifests.map((d) => d.digest);
  } finally {
    await client.close();
  }
}

export async function tagsOf(host: string, repository: string): Promise<string[]> {
  const client = new RegistryClient(host);
  try {
    return (await client.listTags(repository)).sort();
  } finally {
    await client.close();
  }
}
