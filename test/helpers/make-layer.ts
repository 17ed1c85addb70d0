// Small real layers and images for the OCI and sink tests: a .tar.gz made with tar-stream (every
// header field explicit: uid/gid 0, mtime 0, sorted entries) and zlib, written to disk, and images
// and indexes built from them with src/oci. Deliberately independent of the real layer writer.
// Also how those tests run the real container tools (skopeo, umoci, podman), skipping only when one
// is not installed.
import { execFile, spawnSync } from 'node:child_process';
import { createReadStream } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { sha256Hex, toDigest, type Digest } from '../../src/digest.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { type BuiltImage, type LayerSource, imageConfig, imageManifest } from '../../src/oci/image.js';
import { type BuiltIndex, imageIndex } from '../../src/oci/index.js';
import { MEDIA_TYPE_LAYER_GZIP } from '../../src/oci/media-types.js';
import { debianArchToPlatform } from '../../src/oci/platform.js';

export interface TestLayer extends LayerSource {
  diffId: Digest;
  path: string;
}

const EPOCH = new Date(0);

/** A gzip layer holding `files` (path → content), with parent directories, written to dir/name. */
export async function makeLayer(dir: string, name: string, files: Record<string, string>): Promise<TestLayer> {
  const dirs = new Set<string>();
  for (const p of Object.keys(files)) {
    const segs = p.split('/');
    for (let i = 1; i < segs.length; i++) dirs.add(segs.slice(0, i).join('/') + '/');
  }
  const entries = [...dirs, ...Object.keys(files)].sort();
  const pack = tar.pack();
  const collected: Buffer[] = [];
  const done = (async () => {
    for await (const c of pack) collected.push(c as Buffer);
  })();
  for (const e of entries) {
    const common = { uid: 0, gid: 0, uname: '', gname: '', mtime: EPOCH };
    if (e.endsWith('/')) pack.entry({ ...common, name: e, type: 'directory', mode: 0o755 });
    else pack.entry({ ...common, name: e, type: 'file', mode: 0o644 }, files[e]!);
  }
  pack.finalize();
  await done;
  const tarBytes = Buffer.concat(collected);
  const gz = gzipSync(tarBytes, { level: 9 });
  const path = join(dir, name);
  await writeFile(path, gz);
  const descriptor: Descriptor = { mediaType: MEDIA_TYPE_LAYER_GZIP, digest: toDigest(sha256Hex(gz)), size: gz.length };
  return { descriptor, diffId: toDigest(sha256Hex(tarBytes)), path, open: () => createReadStream(path) };
}

export const CREATED = '2025-06-01T12:00:00Z';

/** A two-layer image for a Debian architecture; file contents name the architecture. */
export type TestImage = BuiltImage & { testLayers: TestLayer[] };

export async function makeImage(dir: string, debArch: string): Promise<TestImage> {
  const base = await makeLayer(dir, `${debArch}-base.tar.gz`, {
    'etc/os-release': `ID=distill-test\nARCH=${debArch}\n`,
    'etc/passwd': 'root:x:0:0:root:/root:/sbin/nologin\n',
  });
  const app = await makeLayer(dir, `${debArch}-app.tar.gz`, { 'usr/bin/hello': `#!hello ${debArch}\n` });
  const platform = debianArchToPlatform(debArch);
  const config = imageConfig({
    platform,
    created: CREATED,
    env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
    user: '0',
    workingDir: '/',
    entrypoint: ['/usr/bin/hello'],
    labels: { 'org.example.arch': debArch },
    diffIds: [base.diffId, app.diffId],
    history: [
      { created: CREATED, createdBy: 'distill: base files' },
      { created: CREATED, createdBy: 'distill: hello' },
    ],
  });
  const layers = [base, app];
  const manifest = imageManifest(
    config.descriptor,
    layers.map((l) => l.descriptor),
    { 'org.opencontainers.image.created': CREATED },
  );
  return { manifest, config, layers, platform, testLayers: layers };
}

/** A two-platform index (amd64, arm64) of two-layer images. */
export async function makeIndex(dir: string): Promise<BuiltIndex & { images: TestImage[] }> {
  // arm64 first on purpose: the index must sort it after amd64.
  const images = [await makeImage(dir, 'arm64'), await makeImage(dir, 'amd64')];
  const index = imageIndex(images.map((i) => ({ ...i.manifest.descriptor, platform: i.platform })));
  return { index, images };
}

// ---- the real tools ----

const exec = promisify(execFile);

export function hasTool(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', name], { stdio: 'ignore' }).status === 0;
}

/** A test option: run, or skip naming the missing tools. */
export function needs(...tools: string[]): { skip: string | false } {
  const missing = tools.filter((t) => !hasTool(t));
  return { skip: missing.length === 0 ? false : `${missing.join(', ')} not installed` };
}

/** Run a tool and return its stdout; a failure's message carries its stderr. */
export async function run(cmd: string, args: string[]): Promise<string> {
  try {
    const { stdout } = await exec(cmd, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' });
    return stdout;
  } catch (e) {
    const err = e as { stderr?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.message}`);
  }
}

/** Every entry of a .tar.gz as tar-stream reads it, in archive order: header and whole body. */
export async function readTarGz(gz: Buffer): Promise<{ header: tar.Header; body: Buffer }[]> {
  const out: { header: tar.Header; body: Buffer }[] = [];
  const x = tar.extract();
  const done = new Promise<void>((resolve, reject) => {
    x.on('entry', (header, stream, next) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: unknown) => chunks.push(c as Buffer));
      stream.on('end', () => {
        out.push({ header, body: Buffer.concat(chunks) });
        next();
      });
    });
    x.on('finish', resolve);
    x.on('error', reject);
  });
  x.end(gunzipSync(gz));
  await done;
  return out;
}
