// Crafted packages staged exactly as the build stages a locked .deb: the bytes go into a content store,
// a LockedPackage pins them, and stagePackage reads them back through the sanitiser, the path rules and
// the package table (the files generators read are kept aside). What the generator and assembly tests
// start from, without the Debian snapshot.
import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { ContentStore } from '../../src/cas/store.js';
import type { ImageDefinition } from '../../src/definition/types.js';
import type { LockedImage } from '../../src/lock/load.js';
import type { Lockfile, LockedPackage } from '../../src/lock/lockfile.js';
import { pathFilter, type PathRules } from '../../src/rootfs/filter.js';
import { isReadByGenerator } from '../../src/rootfs/package-roles.js';
import { stagePackage, type StagedPackage } from '../../src/build/stage.js';
import { craftPackage, type CraftPackage } from './craft-deb.js';
import { TEST_ROOT_A, TEST_ROOT_B } from './certs.js';
import { tempDir } from './tmp.js';

export interface Staging {
  store: ContentStore;
  stageDir: string;
}

/** A fresh store and staging directory (removed at exit). */
export function staging(): Staging {
  const dir = tempDir('distill-stage-');
  mkdirSync(join(dir, 'stage'));
  return { store: new ContentStore(join(dir, 'cache')), stageDir: join(dir, 'stage') };
}

/** Put a crafted package's .deb into the store; the LockedPackage that pins it. */
export async function lockCrafted(s: Staging, p: CraftPackage): Promise<LockedPackage> {
  const bytes = await craftPackage(p);
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  const version = p.version ?? '1.0-1';
  const architecture = p.architecture ?? 'amd64';
  await s.store.put({ sha256, size: bytes.length, what: p.name }, Readable.from([bytes]));
  return { name: p.name, version, architecture, source: p.name, sourceVersion: version, archive: 'crafted', filename: `pool/${p.name}_${version}_${architecture}.deb`, size: bytes.length, sha256, depends: [] };
}

/** Craft, store and stage packages as the build does (default path rules unless given). */
export async function stageCrafted(s: Staging, packages: readonly CraftPackage[], rules?: PathRules): Promise<StagedPackage[]> {
  const filter = pathFilter(rules);
  const out: StagedPackage[] = [];
  for (const p of packages) {
    out.push(await stagePackage(await lockCrafted(s, p), { store: s.store, stageDir: s.stageDir, filter, want: isReadByGenerator }));
  }
  return out;
}

export interface SyntheticImageSpec {
  name: string;
  packages?: LockedPackage[];
  debug?: LockedPackage[];
  accounts?: ImageDefinition['accounts'];
  files?: ImageDefinition['files'];
  paths?: Partial<ImageDefinition['paths']>;
  borrow?: ImageDefinition['borrow'];
  base?: ImageDefinition;
  arch?: string;
  timestamp?: string;
}

/**
 * A locked image made by hand, with what layer planning and assembly read of one (its definition's
 * name, rules, accounts and files; its lock's packages and timestamp) — for tests below the
 * definition and lock loaders.
 */
export function syntheticImage(spec: SyntheticImageSpec): LockedImage {
  const definition = {
    name: spec.name,
    file: `/nonexistent/${spec.name}/image.yaml`,
    sha256: '0'.repeat(64),
    ...(spec.base ? { base: spec.base } : {}),
    sources: new Map(),
    architectures: [spec.arch ?? 'amd64'],
    packages: (spec.packages ?? []).map((p) => p.name),
    exclude: [],
    ownExclude: [],
    config: { env: {}, labels: {} },
    ...(spec.accounts ? { accounts: spec.accounts } : {}),
    files: spec.files ?? [],
    paths: { keep: [], drop: [], setid: [], ...spec.paths },
    variants: ['latest'],
    borrow: spec.borrow ?? [],
    debugPackages: (spec.debug ?? []).map((p) => p.name),
    ownsDebug: spec.debug !== undefined,
  } as ImageDefinition;
  const lock = {
    lockfileVersion: 1,
    image: spec.name,
    definition: { file: 'image.yaml', sha256: '0'.repeat(64) },
    timestamp: spec.timestamp ?? '2025-06-01T12:00:00Z',
    requested: [],
    exclude: [],
    sources: {},
    architectures: { [spec.arch ?? 'amd64']: { packages: spec.packages ?? [], ...(spec.debug ? { debug: spec.debug } : {}) } },
  } as unknown as Lockfile;
  return { definition, lock, lockPath: `/nonexistent/${spec.name}/image.lock.json`, lockSha256: '0'.repeat(64) };
}

/**
 * Crafted stand-ins for the packages the package table names, shaped like Debian's: ca-certificates
 * with two certificates (one without a final newline, one whose name needs Java's alias mapping), its
 * update script and documentation; busybox-static with an applet table in its binary.
 */
export const CRAFTED_CA_CERTIFICATES: CraftPackage = {
  name: 'ca-certificates',
  version: '20250419',
  architecture: 'all',
  files: {
    'usr/share/ca-certificates/mozilla/B_Root.crt': TEST_ROOT_B.trimEnd(),
    'usr/share/ca-certificates/mozilla/A Root (2).crt': TEST_ROOT_A,
    'usr/sbin/update-ca-certificates': '#!/bin/sh\n',
    'etc/ca-certificates/update.d/.placeholder': '',
    'usr/share/doc/ca-certificates/copyright': 'MPL-2.0\n',
    'usr/share/doc/ca-certificates/README.Debian': 'readme\n',
  },
  directories: { 'usr/local/share/ca-certificates': 0o755 },
};

/** BusyBox's applet table: sorted NUL-separated names starting "[", "[["; 'busybox' itself is not a link. */
export const CRAFTED_APPLETS = ['[', '[[', 'ash', 'busybox', 'cat', 'ls', 'sh'];

export const CRAFTED_BUSYBOX: CraftPackage = {
  name: 'busybox-static',
  version: '1:1.37.0-6',
  files: {
    'bin/busybox': { content: Buffer.concat([Buffer.from('\x7fELF fake busybox\0'), Buffer.from(CRAFTED_APPLETS.join('\0') + '\0\0', 'latin1'), Buffer.from('tail')]), mode: 0o755 },
    'usr/share/doc/busybox-static/copyright': 'GPL-2\n',
    'usr/share/man/man1/busybox.1.gz': 'man',
  },
};
