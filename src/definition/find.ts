// Turning command-line arguments into definition files: a file, a directory holding image.yaml, or a
// directory of image directories (images/), sorted by name.
import { existsSync } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DistillError } from '../errors.js';

export async function findDefinitions(args: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const arg of args) {
    const p = resolve(arg);
    const st = await stat(p).catch(() => undefined);
    if (st === undefined) {
      throw new DistillError('DEFINITION_NOT_FOUND', `no image definition at ${arg}`, { hint: 'pass images/<name>/image.yaml, its directory, or images/' });
    }
    // Not a directory (a file, or a FIFO or device loadDefinition refuses with its reason): taken as is.
    if (!st.isDirectory()) out.push(p);
    else if (existsSync(join(p, 'image.yaml'))) out.push(join(p, 'image.yaml'));
    else {
      const entries = await readdir(p, { withFileTypes: true }).catch((e: unknown) => {
        throw new DistillError('DEFINITION_NOT_FOUND', `cannot list ${arg}: ${(e as Error).message}`, { cause: e, hint: 'pass images/<name>/image.yaml, its directory, or images/' });
      });
      const found = entries
        .filter((d) => d.isDirectory() && existsSync(join(p, d.name, 'image.yaml')))
        .map((d) => d.name)
        .sort()
        .map((name) => join(p, name, 'image.yaml'));
      if (found.length === 0) throw new DistillError('DEFINITION_NOT_FOUND', `no image.yaml in ${arg} or its subdirectories`, { hint: 'pass images/<name>/image.yaml, its directory, or images/' });
      out.push(...found);
    }
  }
  return [...new Set(out)];
}
