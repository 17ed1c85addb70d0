// A build's images on disk, whole or not at all: an OCI layout (every variant's index as ref
// `<variant>`, every platform image as `<variant>-<arch>`, the attestation files beside them) and/or a
// docker archive (`distill/<image>:<variant>-<arch>`, and each index as `distill/<image>:<variant>`).
// Both are written under a temporary name beside their target (staged-output.ts) and renamed into
// place only when everything is written — the archive first, the layout (the larger swap) last — so
// after a failure the previous outputs are untouched. Names come from the variant table.
import { join } from 'node:path';
import { archiveTag, platformTag, variantTag } from '../definition/variants.js';
import type { BuiltImage } from '../oci/image.js';
import type { BuiltIndex } from '../oci/index.js';
import { writeDockerArchive } from './docker-archive.js';
import { writeOciLayout, type LayoutRef } from './oci-layout.js';
import { forEachLimit } from '../util/limit.js';
import { checkOutputTarget, stageDirectory, stageFile, writeStagedFile, type StagedOutput } from './staged-output.js';

export interface VariantOutput {
  variant: string;
  index: BuiltIndex;
  /** arch → that platform's image. */
  images: ReadonlyMap<string, BuiltImage>;
}

export interface BuildOutputs {
  /** The image's name (the definition's). */
  image: string;
  variants: readonly VariantOutput[];
  /** The images' timestamp (seconds): every docker archive entry's mtime. */
  created: number;
  /** Files written into the layout beside the images (attestations/…), by relative path. */
  files: readonly { path: string; data: string | Buffer }[];
}

export interface OutputTargets {
  /** An OCI layout directory (created, or updated in place keeping its other refs). */
  layout?: string;
  /** A docker archive file (docker load / podman load). */
  archive?: string;
}

/** Refuse targets that exist as the wrong kind of thing — before any work is done. */
export async function checkOutputTargets(t: OutputTargets): Promise<void> {
  if (t.layout !== undefined) await checkOutputTarget(t.layout, 'dir');
  if (t.archive !== undefined) await checkOutputTarget(t.archive, 'file');
}

/** The layout refs of a build: `<variant>` → its index, `<variant>-<arch>` → each platform image. */
export function layoutRefsOf(o: Pick<BuildOutputs, 'variants'>): LayoutRef[] {
  const refs: LayoutRef[] = [];
  for (const v of o.variants) {
    refs.push({ name: variantTag(v.variant), target: v.index });
    for (const [arch, img] of v.images) refs.push({ name: platformTag(v.variant, arch), target: img });
  }
  return refs;
}

export async function writeBuildOutputs(o: BuildOutputs, t: OutputTargets): Promise<void> {
  let layout: StagedOutput | undefined;
  let archive: StagedOutput | undefined;
  try {
    if (t.layout !== undefined) {
      layout = await stageDirectory(t.layout);
      await writeOciLayout(layout.path, layoutRefsOf(o));
      const dir = layout.path;
      await forEachLimit(o.files, 4, (f) => writeStagedFile(join(dir, f.path), f.data));
    }
    if (t.archive !== undefined) {
      archive = stageFile(t.archive);
      await writeDockerArchive(
        archive.path,
        o.variants.flatMap((v) => [...v.images].map(([arch, image]) => ({ image, repoTags: [archiveTag(o.image, v.variant, arch)] }))),
        { mtime: o.created, indexes: o.variants.map((v) => ({ index: v.index, repoTags: [archiveTag(o.image, v.variant)] })) },
      );
    }
    // Everything is written: the outputs appear now, the archive first (the layout is the larger swap).
    await archive?.commit();
    archive = undefined;
    await layout?.commit();
    layout = undefined;
  } finally {
    await archive?.discard();
    await layout?.discard();
  }
}
