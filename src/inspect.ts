// `distill inspect`: what an image holds, from any source (an OCI layout's refs, an image archive's,
// or a registry reference read in place — no temporary layout) — platforms, digests, sizes and layers, and the
// Debian packages in each image with their installed sizes, largest first, read from
// /var/lib/dpkg/status.d as scanners read it. Layer bytes are verified against their digests and their
// tars against the config's diffIds while they stream (oci/read-layer.ts); contents are untrusted: status.d files are read under a size cap
// and parsed with the deb822 parser, nothing else is kept.
import { parseDeb822 } from './debian/deb822.js';
import { DistillError, messageOf } from './errors.js';
import { type Artifact, type Layer, imagesOf, topDescriptor } from './oci/model.js';
import { readLayer } from './oci/read-layer.js';
import { readBody } from './tar/reader.js';
import { platformString } from './oci/platform.js';
import { RegistryClient, type RegistryOptions } from './registry/client.js';
import { parseReference } from './registry/reference.js';
import { readRegistryArtifact } from './registry/source.js';
import { openSource, parseSourceSpec, type SourceSpec } from './source.js';
import { archiveRefs } from './sources/archive.js';
import { layoutRefs, readLayoutArtifact } from './sources/oci-layout.js';

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

const STATUS_CAP = 1024 * 1024;
const TAR_LAYER = /(^application\/vnd\.oci\.image\.layer\.v1\.tar|^application\/vnd\.docker\.image\.rootfs\.diff\.tar)/;

/**
 * Packages recorded in a layer's status.d (later layers override earlier ones by name). The layer is
 * read through oci/read-layer.ts: its bytes checked against its digest, its tar against the config's
 * diffId, the tar itself by the hardened reader.
 */
async function layerPackages(layer: Layer, into: Map<string, InspectedPackage>): Promise<void> {
  await readLayer(layer, async (entry, body) => {
    const name = entry.name.replace(/^\.?\//, '');
    const m = /^var\/lib\/dpkg\/status\.d\/([^/]+)$/.exec(name);
    if (!m || m[1]!.endsWith('.md5sums') || entry.type !== 'file' || entry.size > STATUS_CAP) return;
    const bytes = await readBody(body(), STATUS_CAP, () => new Error('over the cap'));
    try {
      const p = parseDeb822(bytes.toString('utf8'), name)[0];
      const pkg = p?.get('Package');
      if (p && pkg) {
        into.set(pkg, { name: pkg, version: p.get('Version') ?? '', architecture: p.get('Architecture') ?? '', installedSize: Number(p.get('Installed-Size') ?? 0) || 0 });
      }
    } catch {
      // a status.d file that does not parse is not a package record
    }
  });
}

/** What one image or index holds, from whichever source produced it. */
export async function inspectArtifact(name: string, artifact: Artifact, opts: { packages?: boolean } = {}): Promise<InspectedRef> {
  const top = topDescriptor(artifact);
  const images: InspectedImage[] = [];
  for (const img of imagesOf(artifact)) {
    const packages = new Map<string, InspectedPackage>();
    if (opts.packages !== false) {
      for (const l of img.layers) {
        if (!TAR_LAYER.test(l.descriptor.mediaType)) continue;
        await layerPackages(l, packages).catch((e: unknown) => {
          throw e instanceof DistillError ? e : new DistillError('OCI_INVALID', `${name}: layer ${l.descriptor.digest} cannot be read: ${messageOf(e)}`, { cause: e });
        });
      }
    }
    const layers = img.layers.map((l) => ({ digest: l.descriptor.digest, size: l.descriptor.size, mediaType: l.descriptor.mediaType }));
    images.push({
      platform: img.platform !== undefined ? platformString(img.platform) : '',
      digest: img.manifest.descriptor.digest,
      config: img.config.descriptor.digest,
      size: layers.reduce((n, l) => n + l.size, 0),
      layers,
      packages: [...packages.values()].sort((a, b) => b.installedSize - a.installedSize || (a.name < b.name ? -1 : 1)),
    });
  }
  return { name, digest: top.digest, mediaType: top.mediaType, images };
}

/** Every ref of an OCI layout (or just `ref`). */
export async function inspectLayout(dir: string, opts: { ref?: string; packages?: boolean } = {}): Promise<InspectedRef[]> {
  const refs = opts.ref !== undefined ? [opts.ref] : await layoutRefs(dir);
  const out: InspectedRef[] = [];
  for (const ref of refs) {
    const { artifact } = await readLayoutArtifact(dir, ref).catch((e: unknown) => {
      if (opts.ref !== undefined && e instanceof DistillError && /has no ref/.test(e.message)) {
        throw new DistillError('OCI_INVALID', `${dir} has no ref ${opts.ref}`, { hint: 'run distill inspect on the directory to list its refs' });
      }
      throw e;
    });
    out.push(await inspectArtifact(ref, artifact, opts));
  }
  return out;
}

/** An image in a registry, read in place: manifests and configs fetched, layers streamed once each. */
export async function inspectImage(reference: string, opts: RegistryOptions & { packages?: boolean } = {}): Promise<InspectedRef> {
  const r = parseReference(reference);
  const client = new RegistryClient(r.registry, { ...opts, access: 'pull' });
  try {
    const { artifact } = await readRegistryArtifact(client, r.repository, r.digest ?? r.tag ?? 'latest');
    return await inspectArtifact(reference, artifact, opts);
  } finally {
    await client.close();
  }
}

/**
 * Whatever `target` names (see source.ts): every ref of a layout or OCI archive unless one is named
 * (`ref`, or DIR:REF / oci-archive:FILE:REF), the image a docker archive holds, a registry image.
 */
export async function inspectSource(target: string | SourceSpec, opts: RegistryOptions & { ref?: string; packages?: boolean } = {}): Promise<InspectedRef[]> {
  const spec = typeof target === 'string' ? parseSourceSpec(target) : target;
  if (spec.transport === 'oci') {
    const ref = spec.ref ?? opts.ref;
    return inspectLayout(spec.dir, { ...opts, ...(ref !== undefined ? { ref } : {}) });
  }
  if (spec.transport === 'docker') return [await inspectImage(spec.reference, opts)];
  const selection = spec.selection ?? opts.ref;
  if (selection === undefined && spec.transport !== 'docker-archive') {
    // Every ref of an OCI archive (a bare file without index.json is a docker archive: one image).
    const refs = await archiveRefs(spec.file);
    if (refs.length > 0) {
      const out: InspectedRef[] = [];
      for (const ref of refs) {
        const s = await openSource({ transport: 'oci-archive', file: spec.file, selection: ref });
        out.push(await inspectArtifact(ref, s.artifact, opts));
      }
      return out;
    }
  }
  const s = await openSource({ ...spec, ...(selection !== undefined ? { selection } : {}) }, opts);
  return [await inspectArtifact(s.name, s.artifact, opts)];
}
