// What distill knows about particular Debian packages, in one table: which of their files a generator
// reads (kept aside whatever the path rules keep), which of their own entries ship, and which generated
// files their presence in a layer makes — the work their maintainer scripts would do, which never run.
// The build (planning, assembly, the debug layer) asks this table; no package name is written elsewhere.
import type { FsEntry } from './entry.js';
import { CERTS_DIR } from './generate/ca-bundle.js';

/** The generators a package can make run in its layer (see src/rootfs/generate/). */
export type PackageGenerator = 'ca-bundle' | 'java-cacerts';

/** What a package can supply to the generators. */
export type PackageSupply = 'certificates' | 'busybox';

export interface PackageRole {
  /** The packages it applies to: one name, or every name with this prefix. */
  match: { name: string } | { prefix: string };
  /** Image paths (merged /usr) of files a generator reads, kept aside whatever the path rules keep. */
  reads?: (path: string) => boolean;
  /** Which of the package's own entries ship (default: every entry the path rules keep). */
  ships?: (entry: FsEntry) => boolean;
  /** What its read files are to the generators. */
  supplies?: PackageSupply;
  /** Generated files its presence in a layer writes into that layer. */
  generates?: readonly PackageGenerator[];
}

/** Generators' inputs that come from a package elsewhere in the image chain. */
export const GENERATOR_INPUTS: Readonly<Record<PackageGenerator, PackageSupply>> = Object.freeze({
  'ca-bundle': 'certificates',
  'java-cacerts': 'certificates',
});

const BUSYBOX_BINARY = /(^|\/)bin\/busybox$/;
const CERTS_DIR_ITSELF = CERTS_DIR.slice(0, -1);

export const PACKAGE_ROLES: readonly PackageRole[] = Object.freeze([
  {
    // Installed for its certificates only (distroless does the same): the bundle is generated from
    // them; the certificate files, the update script and its hooks are not shipped — its directories
    // (outside the certificate tree) and its documentation are.
    match: { name: 'ca-certificates' },
    reads: (p: string) => p.startsWith(CERTS_DIR),
    ships: (e: FsEntry) => (e.type === 'dir' ? !e.path.startsWith(CERTS_DIR_ITSELF) : e.path.startsWith('usr/share/doc/')),
    supplies: 'certificates',
    generates: ['ca-bundle'],
  },
  // Java's trust store sits beside the JRE; ca-certificates-java's postinst would write it.
  { match: { name: 'ca-certificates-java' }, generates: ['java-cacerts'] },
  { match: { prefix: 'openjdk-' }, generates: ['java-cacerts'] },
  // The debug layer's BusyBox: the static binary, whose applet table names the links.
  { match: { name: 'busybox-static' }, reads: (p: string) => BUSYBOX_BINARY.test(p), supplies: 'busybox' },
] satisfies PackageRole[]);

/** The role of a package, if it has one (the first that matches). */
export function roleOf(name: string, roles: readonly PackageRole[] = PACKAGE_ROLES): PackageRole | undefined {
  return roles.find((r) => ('name' in r.match ? r.match.name === name : name.startsWith(r.match.prefix)));
}

/** Whether a generator reads this file of this package (staging keeps it aside). */
export function isReadByGenerator(name: string, path: string): boolean {
  return roleOf(name)?.reads?.(path) ?? false;
}

/** Whether this entry of this package ships in its layer. */
export function shipsEntry(name: string, entry: FsEntry): boolean {
  return roleOf(name)?.ships?.(entry) ?? true;
}

/** The generators the packages of a layer make run there, each once, in the table's order. */
export function generatorsFor(names: readonly string[]): PackageGenerator[] {
  const wanted = new Set(names.flatMap((n) => roleOf(n)?.generates ?? []));
  const order: PackageGenerator[] = ['ca-bundle', 'java-cacerts'];
  return order.filter((g) => wanted.has(g));
}

/**
 * Whether a layer of these packages needs an input supplied by a package that is not among them
 * (Java's trust store in the JRE's layer reads the certificates of ca-certificates in a base's):
 * the supplier's bytes then belong in the layer's cache key.
 */
export function needsSupplyFromElsewhere(names: readonly string[], supply: PackageSupply): boolean {
  return names.some((n) => {
    const role = roleOf(n);
    return role?.supplies !== supply && (role?.generates ?? []).some((g) => GENERATOR_INPUTS[g] === supply);
  });
}

/** The first package of a list that supplies this input. */
export function supplierOf<T extends { name: string }>(pkgs: readonly T[], supply: PackageSupply): T | undefined {
  return pkgs.find((p) => roleOf(p.name)?.supplies === supply);
}
