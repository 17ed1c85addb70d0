// Why is a package in the closure? The shortest chain from a requested package through the lock's
// dependency edges, and every package that depends on it directly.
import type { Lockfile } from './lockfile.js';

export interface Explanation {
  arch: string;
  package: string;
  version: string;
  requested: boolean;
  /** Shortest chain from a requested package to this one (inclusive). */
  chain: string[];
  /** Packages in this lock that depend on it directly. */
  dependents: string[];
}

export function explain(lock: Lockfile, pkg: string): Explanation[] {
  const out: Explanation[] = [];
  for (const arch of Object.keys(lock.architectures).sort()) {
    const pkgs = lock.architectures[arch]!.packages;
    const byName = new Map(pkgs.map((p) => [p.name, p]));
    const target = byName.get(pkg);
    if (!target) continue;
    const roots = lock.requested.filter((r) => byName.has(r));
    const prev = new Map<string, string | null>(roots.map((r) => [r, null]));
    const queue = [...roots];
    while (queue.length > 0 && !prev.has(pkg)) {
      const n = queue.shift()!;
      for (const d of byName.get(n)?.depends ?? []) {
        if (!prev.has(d) && byName.has(d)) {
          prev.set(d, n);
          queue.push(d);
        }
      }
    }
    const chain: string[] = [];
    for (let n: string | null | undefined = pkg; n != null; n = prev.get(n)) chain.unshift(n);
    out.push({
      arch,
      package: pkg,
      version: target.version,
      requested: lock.requested.includes(pkg),
      chain: prev.has(pkg) ? chain : [pkg],
      dependents: pkgs.filter((p) => p.depends.includes(pkg)).map((p) => p.name).sort(),
    });
  }
  return out;
}
