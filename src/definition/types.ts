// The image definition as distill uses it, after validation and defaults.

export interface SourceSpec {
  suite: string;
  components: string[];
  /** A default mirror URL from the definition; flags and environment override it. */
  mirror?: string;
}

export interface ImageDefinition {
  /** The image's name: its directory under images/. */
  name: string;
  /** Absolute path of image.yaml. */
  file: string;
  /** sha256 of the file's bytes: a lock made from other bytes is stale. */
  sha256: string;
  description?: string;
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
}
