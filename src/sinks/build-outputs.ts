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
import { copyLayerFile, writeLayoutRefs, type LayoutRef } from './oci-layout.js';
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

/**
 * A layout's staging directory made before the build ends, its layer blobs copied in as the build
 * completes them (buildAndPublish: a layer's copy, hash and fsync then overlap the layers still being
 * written and the images, SBOMs and provenance being made, instead of all following them). Each copy
 * is store.copyIn, the same temp → verify → fsync → rename as the layout sink's own; writeBuildOutputs
 * then finishes this directory and does not read those blobs again.
 */
export class EarlyLayerCopies {
  private staged: StagedOutput | undefined;
  private readonly inFlight: Promise<void>[] = [];
  private failure: { error: unknown } | undefined;
  /** Digests copied into the staging directory and checked. */
  readonly copied = new Set<string>();
  private taken = false;

  constructor(readonly target: string) {}

  /** Makes the staging directory (seeded with the existing layout's files, as writeBuildOutputs would). */
  async open(): Promise<void> {
    this.staged ??= await stageDirectory(this.target);
  }

  /** Starts copying one layer blob (the content store's file) in; a failure is reported by take(). */
  copy(blob: { digest: string; size: number; path: string }): void {
    const dir = this.staged?.path;
    if (dir === undefined || this.taken) return;
    const p = copyLayerFile(dir, blob, blob.path).then(
      () => {
        this.copied.add(blob.digest);
      },
      (e: unknown) => {
        this.failure ??= { error: e };
      },
    );
    this.inFlight.push(p);
  }

  /** Once every copy has settled: the staging directory to finish (the first failure is thrown). */
  async take(): Promise<StagedOutput> {
    this.taken = true;
    await Promise.all(this.inFlight);
    if (this.failure !== undefined) throw this.failure.error;
    const staged = this.staged;
    if (staged === undefined) throw new Error('internal: the early layout was not opened');
    this.staged = undefined; // writeBuildOutputs's from here: committed or discarded there
    return staged;
  }

  /** Removes the staging directory unless writeBuildOutputs took it (never throws). */
  async discard(): Promise<void> {
    this.taken = true;
    await Promise.all(this.inFlight);
    await this.staged?.discard();
    this.staged = undefined;
  }
}

export async function writeBuildOutputs(o: BuildOutputs, t: OutputTargets, early?: EarlyLayerCopies): Promise<void> {
  let layout: StagedOutput | undefined;
  let archive: StagedOutput | undefined;
  try {
    if (t.layout !== undefined) {
      const prepared = early !== undefined && early.target === t.layout;
      layout = prepared ? await early.take() : await stageDirectory(t.layout);
      const dir = layout.path;
      // The images and the attestation files beside them are independent files of the staged
      // directory: written side by side (each its own fsync); a failure is thrown once both settled.
      const written = await Promise.allSettled([
        writeLayoutRefs(dir, layoutRefsOf(o), prepared ? { copied: early.copied } : {}),
        forEachLimit(o.files, 4, (f) => writeStagedFile(join(dir, f.path), f.data)),
      ]);
      for (const w of written) if (w.status === 'rejected') throw w.reason;
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
