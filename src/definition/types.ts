// The image definition as distill uses it, after validation and defaults.

export interface SourceSpec {
  suite: string;
  components: string[];
  /** A default mirror URL from the definition; flags and environment override it. */
  mirror?: string;
}

export type Variant = 'latest' | 'nonroot' | 'debug' | 'debug-nonroot';
export const ALL_VARIANTS: readonly Variant[] = ['latest', 'nonroot', 'debug', 'debug-nonroot'];

export interface ImageConfigSpec {
  entrypoint?: string[];
  cmd?: string[];
  env: Record<string, string>;
  workdir?: string;
  labels: Record<string, string>;
}

export interface UserSpec {
  name: string;
  uid: number;
  gid: number;
  home?: string;
  shell?: string;
}

export interface FileSpec {
  path: string;
  content?: string;
  /** Absolute path of a file beside the definition. */
  source?: string;
  /** A URL pinned by sha256 (size optional). */
  url?: string;
  sha256?: string;
  size?: number;
  /** source/url is a tarball to unpack under `path`. */
  extract?: boolean;
  symlink?: string;
  directory?: boolean;
  mode?: number;
  /** Default 0 (for an extracted tarball: the tarball's own owners). */
  uid?: number;
  gid?: number;
}

export interface ImageDefinition {
  /** The image's name: its directory under images/. */
  name: string;
  /** Absolute path of image.yaml. */
  file: string;
  /** sha256 of the file's bytes: a lock made from other bytes is stale. */
  sha256: string;
  description?: string;
  /** Where this image is published (registry/repository, no tag): its children's base.name. */
  repository?: string;
  /** The parent definition, loaded, when `extends` is set. */
  base?: ImageDefinition;
  /** Own sources merged over the parent's, in definition order (parent's first). */
  sources: Map<string, SourceSpec>;
  architectures: string[];
  /** Own top-level packages (the parent's are in `base`). */
  packages: string[];
  /** Own excludes plus the parent's, less the parent's that this image requests by name. */
  exclude: string[];
  /** The excludes written in this definition itself. */
  ownExclude: string[];
  /** Merged over the base's: fields override, env and labels merge. */
  config: ImageConfigSpec;
  /** This image's accounts, else the base's; undefined = distroless defaults. */
  accounts?: { users: UserSpec[]; groups: { name: string; gid: number }[] };
  /** This image's own files (the base's are in the base's layer). */
  files: FileSpec[];
  /** Path rules: the base's plus this image's. */
  paths: { keep: string[]; drop: string[]; setid: string[] };
  variants: Variant[];
  /** Packages of which only some files are shipped in this image's layer (not installed, no dependencies). */
  borrow: { package: string; paths: string[] }[];
  /** Packages of the debug variants' layer, locked by the image that lists them. */
  debugPackages: string[];
  /** True when this definition itself lists debug packages (its lock holds them). */
  ownsDebug: boolean;
}

/** `${arch}` in a definition's strings (config, file paths, contents, symlink targets) → the Debian architecture. */
export function substituteArch(s: string, arch: string): string {
  return s.replaceAll('${arch}', arch);
}

/**
 * `${version:PKG}` (the locked Debian version of PKG) and `${java-version:PKG}` (the Java version an
 * OpenJDK package's `java -version` prints, read from its Debian version as distroless does: epoch,
 * build and Debian revision dropped, and a fourth component only when it is not 0 — 21.0.13.1+2-1 →
 * 21.0.13.1, 21.0.5+11-1 → 21.0.5) in a definition's config strings. `versionOf` gives the locked
 * version or undefined; an unknown package is the caller's error.
 */
export function substituteVersions(s: string, versionOf: (pkg: string) => string | undefined, onMissing: (pkg: string) => never): string {
  return s.replace(/\$\{(version|java-version):([a-z0-9][a-z0-9+.-]+)\}/g, (_m, kind: string, pkg: string) => {
    const v = versionOf(pkg) ?? onMissing(pkg);
    return kind === 'version' ? v : javaVersion(v);
  });
}

export function javaVersion(debianVersion: string): string {
  const upstream = debianVersion.replace(/^\d+:/, '').split(/[+~-]/)[0]!;
  const parts = upstream.split('.');
  return parts.length >= 4 && parts[3] !== '0' ? parts.slice(0, 4).join('.') : parts.slice(0, 3).join('.');
}
