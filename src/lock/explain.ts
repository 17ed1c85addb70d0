// Why is a package in an image? The shortest chain from a requested package (of the image or any base
// it extends) through the locks' dependency edges, the image whose layer holds it, and every package
// that depends on it directly.
import type { Lockfile, LockedPackage } from './lockfile.js';

export interface Explanation {
  arch: string;
  package: string;
  version: string;
  /** The image (this one or a base) whose lock holds the package. */
  image: string;
  requested: boolean;
  /** Shortest chain from a requested package to this one (inclusive). */
  chain: string[];
  /** Packages of the image chain that depend on it directly. */
  dependents: string[];
}

/** `chain`: the locks of an image and its bases, in any order. */
export function explain(chain: readonly Lockfile[], pkg: string): Explanation[] {
  const out: Explanation[] = [];
  const arches = [...new Set(chain.flatMap((l) => Object.keys(l.architectures)))].sort();
  const requested = new Set(chain.flatMap((l) => l.requested));
  for (const arch of arches) {
    const byName = new Map<string, { p: LockedPackage; image: string }>();
    for (const l of chain) for (const p of l.architectures[arch]?.packages ?? []) byName.set(p.name, { p, image: l.image });
    const target = byName.get(pkg);
    if (!target) continue;
    const roots = [...requested].filter((r) => byName.has(r)).sort();
    const prev = new Map<string, string | null>(roots.map((r) => [r, null]));
    const queue = [...roots];
    while (queue.length > 0 && !prev.has(pkg)) {
      const n = queue.shift()!;
      for (const d of byName.get(n)?.p.depends ?? []) {
        if (!prev.has(d) && byName.has(d)) {
          prev.set(d, n);
          queue.push(d);
        }
      }
    }
    const path: string[] = [];
    for (let n: string | null | undefined = pkg; n != null; n = prev.get(n)) path.unshift(n);
    out.push({
      arch,
      package: pkg,
      version: target.p.version,
      image: target.image,
      requested: requested.has(pkg),
      chain: prev.has(pkg) ? path : [pkg],
      dependents: [...byName.values()].filter(({ p }) => p.depends.includes(pkg)).map(({ p }) => p.name).sort(),
    });
  }
  return out;
}
