// The image matrix of a directory of definitions, for the pipeline generators: each image with the
// image it extends, its architectures and variants, in an order where every base comes before the
// images built on it. The generators turn this into an engine's jobs; they never read files.
import { relative, dirname, sep } from 'node:path';
import { findDefinitions } from '../definition/find.js';
import { loadDefinition } from '../definition/load.js';
import type { Variant } from '../definition/types.js';
import { DistillError } from '../errors.js';

export interface MatrixImage {
  name: string;
  /** The definition's directory, relative to the root the pipeline runs in, with / separators. */
  path: string;
  /** The image it extends, when that image is in the matrix too. */
  base?: string;
  architectures: string[];
  variants: Variant[];
}

export interface ImageMatrix {
  images: MatrixImage[];
}

/** Definitions under `dir` (a directory of image directories, or one image), paths relative to `root`. */
export async function imageMatrix(dir: string, root: string): Promise<ImageMatrix> {
  const files = await findDefinitions([dir]);
  const defs = await Promise.all(files.map((f) => loadDefinition(f)));
  const byName = new Map(defs.map((d) => [d.name, d]));
  if (byName.size !== defs.length) throw new DistillError('DEFINITION_INVALID', `${dir}: two definitions share an image name`, { hint: 'one directory per image' });
  const images: MatrixImage[] = [];
  const placed = new Set<string>();
  const place = (name: string): void => {
    if (placed.has(name)) return;
    const d = byName.get(name)!;
    // loadDefinition already refused extends cycles; a base outside `dir` is built elsewhere.
    if (d.base && byName.has(d.base.name)) place(d.base.name);
    placed.add(name);
    const rel = relative(root, dirname(d.file)).split(sep).join('/');
    if (rel.startsWith('..') || rel === '') {
      throw new DistillError('USAGE', `${d.file} is not inside ${root}, where the pipeline checks out its sources`, { hint: 'run distill pipeline from the repository root' });
    }
    images.push({
      name,
      path: rel,
      ...(d.base && byName.has(d.base.name) ? { base: d.base.name } : {}),
      architectures: [...d.architectures].sort(),
      variants: [...d.variants],
    });
  };
  for (const d of [...defs].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) place(d.name);
  return { images };
}

/** The image names as they appear in job and task names: lower-case letters, digits and hyphens. */
export function jobName(...parts: string[]): string {
  const s = parts.join('-').toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/-+/g, '-').replace(/^-|-$/g, '');
  if (s.length > 63) {
    throw new DistillError('USAGE', `the task name ${s} is longer than the 63 characters Kubernetes allows`, { hint: 'use a shorter image name' });
  }
  return s;
}
