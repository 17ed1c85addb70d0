// One image locked against a signed synthetic archive (debian, trixie, amd64) in `work`: the setup the
// cached-.deb tests share — the archive, the mirrors that point at it and the definition, locked.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { lockImages } from '../../src/lock/lock.js';
import { makeArchive, makeKey, type SynthArchive, type SynthPackage } from './synthetic-archive.js';

export interface LockedSynthImage {
  archive: SynthArchive;
  mirrors: { flags: Record<string, string>; aptSources: [] };
  /** work/images/one/image.yaml, locked (its lock beside it; the cache is work/cache). */
  definition: string;
}

export async function lockedSynthImage(work: string, packages: SynthPackage[], yaml: string): Promise<LockedSynthImage> {
  const key = await makeKey(join(work, 'key'));
  const archive = await makeArchive(join(work, 'mirror'), [{ archiveName: 'debian', suite: 'trixie', architectures: ['amd64'], packages }], { key });
  const mirrors = { flags: { debian: archive.url('debian') }, aptSources: [] as [] };
  mkdirSync(join(work, 'images', 'one'), { recursive: true });
  const definition = join(work, 'images', 'one', 'image.yaml');
  writeFileSync(definition, yaml);
  await lockImages([definition], { cacheDir: join(work, 'cache'), keyring: key.keyringPath, mirrors, now: new Date('2025-07-01T00:00:00Z') });
  return { archive, mirrors, definition };
}
