// `distill inspect`: what an OCI layout (or a pulled image) holds — each ref's platforms, digests,
// sizes and layers, and the Debian packages in each image with their installed sizes, largest first,
// read from /var/lib/dpkg/status.d as scanners read it. Layer contents are untrusted: status.d files
// are read under a size cap and parsed with the deb822 parser, nothing else is kept.
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { layerDecompressorFor } from './layer/compression.js';
import * as tar from 'tar-stream';
import { parseDeb822 } from './debian/deb822.js';
import { digestHex } from './digest.js';
import { DistillError, messageOf } from './errors.js';
import { ANNOTATION_REF_NAME, MEDIA_TYPE_INDEX } from './oci/media-types.js';

export interface InspectedPackage {
  name: string;
  version: string;
  architecture: string;
  /** KiB, from Installed-Size (what the package occupies before distill's filtering). */
  installedSize: number;
}

export interface InspectedImage {
  platform: string;
  digest: string;
  config: string;
  /** Compressed bytes of all layers. */
  size: number;
  layers: { digest: string; size: number; mediaType: string }[];
  packages: InspectedPackage[];
}

export interface InspectedRef {
  name: string;
  digest: string;
  mediaType: string;
  images: InspectedImage[];
}

const JSON_CAP = 4 * 1024 * 1024;
const STATUS_CAP = 1024 * 1024;

interface Desc {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Record<string, string>;
  platform?: { os: string; architecture: string; variant?: string };
}

async function readJsonBlob(dir: string, d: Desc): Promise<any> {
  if (d.size > JSON_CAP) throw new DistillError('OCI_INVALID', `${d.digest}: ${d.size} bytes is too large for a manifest`);
  try {
    return JSON.parse(await readFile(join(dir, 'blobs', 'sha256', digestHex(d.digest)), 'utf8'));
  } catch (e) {
    throw new DistillError('OCI_INVALID', `${dir}: blob ${d.digest} is missing or not JSON: ${messageOf(e)}`, { cause: e, hint: 'is this a complete OCI layout?' });
  }
}

/** Packages recorded in a gzip or zstd layer's status.d (later layers override earlier ones by name). */
async function layerPackages(path: string, into: Map<string, InspectedPackage>): Promise<void> {
  const extract = tar.extract();
  const raw = createReadStream(path);
  const src = raw.pipe(await layerDecompressorFor(path));
  raw.on('error', (e) => src.destroy(e));
  src.on('error', (e) => extract.destroy(e));
  src.pipe(extract as unknown as NodeJS.WritableStream);
  for await (const entry of extract) {
    const name = entry.header.name.replace(/^\.?\//, '');
    const m = /^var\/lib\/dpkg\/status\.d\/([^/]+)$/.exec(name);
    if (m && !m[1]!.endsWith('.md5sums') && entry.header.type === 'file' && (entry.header.size ?? 0) <= STATUS_CAP) {
      const chunks: Buffer[] = [];
      for await (const c of entry) chunks.push(c as Buffer);
      try {
        const p = parseDeb822(Buffer.concat(chunks).toString('utf8'), name)[0];
        const pkg = p?.get('Package');
        if (p && pkg) {
          into.set(pkg, { name: pkg, version: p.get('Version') ?? '', architecture: p.get('Architecture') ?? '', installedSize: Number(p.get('Installed-Size') ?? 0) || 0 });
        }
      } catch {
        // a status.d file that does not parse is not a package record
      }
    } else {
      entry.resume();
    }
  }
}

export async function inspectLayout(dir: string, opts: { ref?: string; packages?: boolean } = {}): Promise<InspectedRef[]> {
  let index: { manifests?: Desc[] };
  try {
    index = JSON.parse(await readFile(join(dir, 'index.json'), 'utf8'));
  } catch (e) {
    throw new DistillError('OCI_INVALID', `${dir} is not an OCI layout (no readable index.json)`, { cause: e, hint: 'pass a directory written by distill build --out or distill pull' });
  }
  const out: InspectedRef[] = [];
  for (const d of index.manifests ?? []) {
    const name = d.annotations?.[ANNOTATION_REF_NAME] ?? d.digest;
    if (opts.ref !== undefined && name !== opts.ref) continue;
    const manifests: Desc[] = d.mediaType === MEDIA_TYPE_INDEX || d.mediaType === 'application/vnd.docker.distribution.manifest.list.v2+json'
      ? ((await readJsonBlob(dir, d)).manifests ?? [])
      : [d];
    const images: InspectedImage[] = [];
    for (const m of manifests) {
      const manifest = await readJsonBlob(dir, m);
      const config = await readJsonBlob(dir, manifest.config);
      const layers = (manifest.layers ?? []) as Desc[];
      const packages = new Map<string, InspectedPackage>();
      if (opts.packages !== false) {
        for (const l of layers) {
          if (!/gzip/.test(l.mediaType)) continue;
          await layerPackages(join(dir, 'blobs', 'sha256', digestHex(l.digest)), packages).catch((e: unknown) => {
            throw new DistillError('OCI_INVALID', `${dir}: layer ${l.digest} cannot be read: ${messageOf(e)}`, { cause: e });
          });
        }
      }
      images.push({
        platform: [config.os, config.architecture, config.variant].filter(Boolean).join('/'),
        digest: m.digest,
        config: manifest.config.digest,
        size: layers.reduce((n, l) => n + l.size, 0),
        layers: layers.map((l) => ({ digest: l.digest, size: l.size, mediaType: l.mediaType })),
        packages: [...packages.values()].sort((a, b) => b.installedSize - a.installedSize || (a.name < b.name ? -1 : 1)),
      });
    }
    out.push({ name, digest: d.digest, mediaType: d.mediaType, images });
  }
  if (opts.ref !== undefined && out.length === 0) {
    throw new DistillError('OCI_INVALID', `${dir} has no ref ${opts.ref}`, { hint: 'run distill inspect on the directory to list its refs' });
  }
  return out;
}
