// `distill init`: a new image definition that extends an existing image — the shortest path to a
// custom base (distroless users' most asked-for feature: customising without Bazel).
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DistillError } from '../errors.js';
import { loadDefinition } from './load.js';

export async function scaffoldImage(imagesDir: string, name: string, from: string): Promise<string> {
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(name)) {
    throw new DistillError('USAGE', `image name ${JSON.stringify(name)} is not valid`, { hint: 'use lower-case letters, digits, ".", "_" and "-"' });
  }
  const base = join(imagesDir, from, 'image.yaml');
  if (!existsSync(base)) {
    throw new DistillError('DEFINITION_NOT_FOUND', `no image ${from} in ${imagesDir}`, { hint: 'pass --from one of the images in images/ (static, base, cc, python3, …)' });
  }
  const parent = await loadDefinition(base);
  const file = join(imagesDir, name, 'image.yaml');
  if (existsSync(file)) throw new DistillError('USAGE', `${file} already exists`, { hint: 'choose another name or edit that file' });
  const text = `# ${name}: built on ${from} (${parent.description ?? 'a distill image'}).
# Lock it with \`distill lock ${join(imagesDir, name)}\`, then \`distill build ${join(imagesDir, name)} --out out/${name}\`.
description: ${from} plus my own packages and files.
extends: ${from}
packages: []          # Debian packages to add, resolved with their dependencies
# exclude: []         # packages to prune (and what only they pull in)
# files:
#   - path: /etc/myapp/config.toml
#     content: |
#       key = "value"
#   - path: /usr/local/bin/myapp
#     source: myapp   # a file beside this image.yaml
#     mode: "0755"
# config:
#   entrypoint: [/usr/local/bin/myapp]
#   env: {MYAPP_MODE: production}
`;
  await mkdir(join(imagesDir, name), { recursive: true });
  await writeFile(file, text, { flag: 'wx' });
  await loadDefinition(file); // what we wrote must load
  return file;
}
