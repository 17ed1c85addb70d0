// Debian architecture names → OCI platforms (image-index.md `platform`; architecture and variant
// values as Go's GOARCH/GOARM, which containerd's platform matcher normalises to).
import { DistillError } from '../errors.js';

export interface Platform {
  architecture: string;
  os: string;
  variant?: string;
}

const DEBIAN_TO_OCI: Readonly<Record<string, { architecture: string; variant?: string }>> = {
  amd64: { architecture: 'amd64' },
  // containerd normalises arm64 to variant v8; distroless and Docker Hub publish it that way.
  arm64: { architecture: 'arm64', variant: 'v8' },
  armhf: { architecture: 'arm', variant: 'v7' },
  armel: { architecture: 'arm', variant: 'v5' },
  i386: { architecture: '386' },
  ppc64el: { architecture: 'ppc64le' },
  s390x: { architecture: 's390x' },
  riscv64: { architecture: 'riscv64' },
  mips64el: { architecture: 'mips64le' },
  loong64: { architecture: 'loong64' },
};

export const DEBIAN_ARCHITECTURES: readonly string[] = Object.keys(DEBIAN_TO_OCI).sort();

export function debianArchToPlatform(arch: string): Platform {
  const p = Object.hasOwn(DEBIAN_TO_OCI, arch) ? DEBIAN_TO_OCI[arch] : undefined;
  if (p === undefined) {
    throw new DistillError('OCI_INVALID', `no OCI platform for the Debian architecture ${JSON.stringify(arch)}`, {
      hint: `use one of ${DEBIAN_ARCHITECTURES.join(', ')}`,
    });
  }
  return p.variant === undefined
    ? { architecture: p.architecture, os: 'linux' }
    : { architecture: p.architecture, os: 'linux', variant: p.variant };
}

/** `linux/arm64/v8`, as docker and skopeo print platforms. */
export function platformString(p: Platform): string {
  return p.variant === undefined ? `${p.os}/${p.architecture}` : `${p.os}/${p.architecture}/${p.variant}`;
}

/** Orders by os, then architecture, then variant (none first); plain code-unit comparison, no locale. */
export function comparePlatforms(a: Platform, b: Platform): number {
  return cmp(a.os, b.os) || cmp(a.architecture, b.architecture) || cmp(a.variant ?? '', b.variant ?? '');
}

export function cmp(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * Whether `p` is the platform `wanted` names (os/arch[/variant], as --platform takes it); arm64
 * without a variant is v8, as the runtimes read it.
 */
export function platformMatches(wanted: string, p: Platform): boolean {
  const [os, arch, variant] = wanted.split('/');
  if (os !== p.os || arch !== p.architecture) return false;
  return variant === undefined || variant === (p.variant ?? (p.architecture === 'arm64' ? 'v8' : undefined));
}
