// What a variant is, in one table (distroless's four flavours of every image). The build (images'
// configs, the debug layer), the publish step (tags, layout ref names, docker archive names), the
// scale-out join and the CLI all read it from here rather than each spelling `startsWith('debug')`.
//   latest         user 0,      workdir / (or the definition's), the definition's entrypoint
//   nonroot        user 65532,  workdir /home/nonroot
//   debug          latest  + BusyBox layer, PATH + /busybox; the image's entrypoint, else ["/busybox/sh"]
//   debug-nonroot  nonroot + BusyBox layer, PATH + /busybox; the image's entrypoint, else ["/busybox/sh"]
import { DistillError } from '../errors.js';
import { ALL_VARIANTS, type Variant } from './types.js';

/** distroless's nonroot user and group (its /etc/passwd entry is written by rootfs/generate/accounts.ts). */
export const NONROOT_UID = 65532;
/** The debug variants' shell, when the image has no entrypoint of its own. */
export const DEBUG_SHELL: readonly string[] = Object.freeze(['/busybox/sh']);
/** Where the debug layer puts BusyBox and its applets; appended to PATH. */
export const DEBUG_PATH = '/busybox';

export interface VariantSpec {
  readonly name: Variant;
  /** Carries the BusyBox layer; PATH gains /busybox; no entrypoint → the BusyBox shell. */
  readonly debug: boolean;
  /** Runs as NONROOT_UID in /home/nonroot. */
  readonly nonroot: boolean;
  /** The config's User. */
  readonly user: string;
  /** The config's WorkingDir; undefined: the definition's (default /). */
  readonly workdir?: string;
}

export const VARIANTS: Readonly<Record<Variant, VariantSpec>> = Object.freeze({
  latest: { name: 'latest', debug: false, nonroot: false, user: '0' },
  nonroot: { name: 'nonroot', debug: false, nonroot: true, user: String(NONROOT_UID), workdir: '/home/nonroot' },
  debug: { name: 'debug', debug: true, nonroot: false, user: '0' },
  'debug-nonroot': { name: 'debug-nonroot', debug: true, nonroot: true, user: String(NONROOT_UID), workdir: '/home/nonroot' },
});

export function variantSpec(v: Variant): VariantSpec {
  return VARIANTS[v];
}

export function isVariant(v: string): v is Variant {
  return (ALL_VARIANTS as readonly string[]).includes(v);
}

/** Whether any of these variants needs the debug layer. */
export function needsDebugLayer(variants: readonly Variant[]): boolean {
  return variants.some((v) => VARIANTS[v].debug);
}

/** `--variant a,b --variant c` → checked variants (USAGE for an unknown one). */
export function parseVariants(flags: readonly string[]): Variant[] {
  const out: Variant[] = [];
  for (const v of flags.flatMap((f) => f.split(','))) {
    if (!isVariant(v)) throw new DistillError('USAGE', `--variant ${v}: unknown variant`, { hint: ALL_VARIANTS.join(', ') });
    if (!out.includes(v)) out.push(v);
  }
  return out;
}

// ---- names: one spelling for the layout, the registry and the docker archive ----

/** A variant's multi-arch index: layout ref name and registry tag (`latest`). */
export const variantTag = (variant: Variant | string): string => variant;
/** One platform's image: layout ref name and registry tag (`latest-amd64`); what a scale-out worker pushes and the join reads. */
export const platformTag = (variant: Variant | string, arch: string): string => `${variant}-${arch}`;
/** The `docker load` name of a build's image (`distill/python3:latest-amd64`, or the index's `distill/python3:latest`). */
export const archiveTag = (image: string, variant: Variant | string, arch?: string): string => `distill/${image}:${arch === undefined ? variantTag(variant) : platformTag(variant, arch)}`;
