// Dependency resolution for one architecture, modelled on apt's default behaviour (apt-pkg depcache
// MarkInstall) so that a lock holds what `apt-get install --no-install-recommends` would install:
// - one candidate per package name: the highest version across all sources (apt's default pin 500);
// - the requested packages are marked first, then each one's Depends and Pre-Depends are satisfied
//   level by level: a group already satisfied by a marked package is left alone, otherwise its first
//   alternative with a candidate that fits (version relation, architecture qualifier) is chosen;
// - a virtual package is satisfied by its providers (versioned Provides for versioned relations),
//   ordered as apt's CompareProviders: essential first, then Priority, then name;
// - Recommends and Suggests are ignored; Essential packages are not added unless something needs them;
// - packages in `installed` (a base image's closure) and in `exclude` count as present and are not
//   traversed — excluding a package prunes it and whatever only it pulled in.
// Conflicts and Breaks between chosen packages are errors. Fields come from the signed index but are
// still treated as untrusted text: parse errors name the package.
import { DistillError } from '../errors.js';
import { didYouMean } from '../util/suggest.js';
import type { PackageRecord } from './packages-index.js';
import { parseProvides, parseRelations, relationAppliesToArch, formatRelation, type Relation, type Alternatives } from './relations.js';
import { compareVersions, versionSatisfies } from './version.js';

export interface Universe {
  arch: string;
  /** The candidate of each package name. */
  candidates: Map<string, PackageRecord>;
  /** virtual name → candidates providing it, with the provided version if any. */
  providers: Map<string, { pkg: PackageRecord; version: string | undefined }[]>;
}

/** Choose candidates from every record seen for `arch` (records of other architectures are ignored). */
export function buildUniverse(records: Iterable<PackageRecord>, arch: string, archiveOrder: readonly string[]): Universe {
  const rank = new Map(archiveOrder.map((a, i) => [a, i]));
  const candidates = new Map<string, PackageRecord>();
  for (const r of records) {
    if (r.architecture !== arch && r.architecture !== 'all') continue;
    const cur = candidates.get(r.name);
    if (cur === undefined) {
      candidates.set(r.name, r);
      continue;
    }
    const c = compareVersions(r.version, cur.version);
    // Equal versions: the source listed first in the definition wins, then the arch-specific record.
    if (c > 0 || (c === 0 && ((rank.get(r.archive) ?? 99) < (rank.get(cur.archive) ?? 99) || (r.archive === cur.archive && cur.architecture === 'all' && r.architecture !== 'all')))) {
      candidates.set(r.name, r);
    }
  }
  const providers = new Map<string, { pkg: PackageRecord; version: string | undefined }[]>();
  for (const pkg of candidates.values()) {
    if (pkg.provides === '') continue;
    let provided: ReturnType<typeof parseProvides>;
    try {
      provided = parseProvides(pkg.provides, `Provides of ${pkg.name} ${pkg.version}`);
    } catch {
      // One malformed index entry must not break every lock; the package simply provides nothing
      // (and if it is ever chosen, its own fields are parsed strictly and the error names it).
      continue;
    }
    for (const p of provided) {
      let list = providers.get(p.name);
      if (list === undefined) providers.set(p.name, (list = []));
      list.push({ pkg, version: p.version });
    }
  }
  return { arch, candidates, providers };
}

export interface ResolvedPackage {
  record: PackageRecord;
  /** Names of the packages chosen for its Depends/Pre-Depends (in this closure or the base's). */
  depends: string[];
  /** The package that first pulled it in; undefined for requested ones. */
  via: string | undefined;
}

export interface Resolution {
  arch: string;
  packages: Map<string, ResolvedPackage>;
  /** Excludes that removed something, and those that matched nothing. */
  excludedUsed: string[];
  excludedUnused: string[];
}

export interface ResolveInput {
  universe: Universe;
  requested: readonly string[];
  exclude: readonly string[];
  /** A base image's closure: present, not part of this closure, not traversed. */
  installed?: ReadonlyMap<string, { name: string; version: string; architecture: string; provides?: string; multiArch?: string }>;
  /** Names the image in errors. */
  image: string;
}

interface Present {
  name: string;
  version: string;
  architecture: string;
  multiArch: string;
  provides: { name: string; version?: string | undefined }[];
}

const PRIORITY_RANK: Record<string, number> = { required: 1, important: 2, standard: 3, optional: 4, extra: 5 };

export function resolve(input: ResolveInput): Resolution {
  const { universe } = input;
  const arch = universe.arch;
  const excluded = new Set(input.exclude);
  const excludedUsed = new Set<string>();
  const marked = new Map<string, ResolvedPackage>();
  // Everything that counts as present, by name and by provided name.
  const present = new Map<string, Present>();
  const presentProviders = new Map<string, Present[]>();
  const addPresent = (p: Present): void => {
    present.set(p.name, p);
    for (const pr of p.provides) {
      let l = presentProviders.get(pr.name);
      if (!l) presentProviders.set(pr.name, (l = []));
      l.push(p);
    }
  };
  const presentOf = (r: PackageRecord): Present => ({
    name: r.name,
    version: r.version,
    architecture: r.architecture,
    multiArch: r.multiArch,
    provides: r.provides === '' ? [] : parseProvides(r.provides, `Provides of ${r.name}`),
  });
  for (const b of input.installed?.values() ?? []) {
    addPresent({
      name: b.name,
      version: b.version,
      architecture: b.architecture,
      multiArch: b.multiArch ?? 'no',
      provides: b.provides ? parseProvides(b.provides, `Provides of ${b.name}`) : [],
    });
  }
  const installedNames = new Set(present.keys());
  for (const name of excluded) {
    const c = universe.candidates.get(name);
    if (c && !present.has(name)) addPresent(presentOf(c));
  }

  const archOk = (rel: Relation, p: { architecture: string; multiArch: string }): boolean => {
    const q = rel.archQualifier;
    if (q === undefined || q === 'native') return p.architecture === arch || p.architecture === 'all';
    if (q === 'any') return p.multiArch === 'allowed';
    return p.architecture === q;
  };

  /** The present package satisfying `rel`, if any. */
  const satisfiedBy = (rel: Relation): string | undefined => {
    const p = present.get(rel.name);
    if (p && archOk(rel, p) && (rel.op === undefined || versionSatisfies(p.version, rel.op, rel.version!))) return p.name;
    for (const prov of presentProviders.get(rel.name) ?? []) {
      if (rel.archQualifier === 'any' && prov.multiArch !== 'allowed' && prov.multiArch !== 'foreign') continue;
      const v = prov.provides.find((x) => x.name === rel.name)?.version;
      if (rel.op === undefined || (v !== undefined && versionSatisfies(v, rel.op, rel.version!))) return prov.name;
    }
    return undefined;
  };

  /** Candidates that could satisfy `rel`, best first (apt: the real package, else CompareProviders). */
  const candidatesFor = (rel: Relation): PackageRecord[] => {
    const real = universe.candidates.get(rel.name);
    if (real && archOk(rel, real) && (rel.op === undefined || versionSatisfies(real.version, rel.op, rel.version!))) return [real];
    const provs = (universe.providers.get(rel.name) ?? [])
      .filter((p) => rel.op === undefined || (p.version !== undefined && versionSatisfies(p.version, rel.op, rel.version!)))
      .filter((p) => rel.archQualifier !== 'any' || p.pkg.multiArch === 'allowed' || p.pkg.multiArch === 'foreign')
      .map((p) => p.pkg);
    return provs.sort(
      (a, b) =>
        Number(b.essential) - Number(a.essential) ||
        (PRIORITY_RANK[a.priority] ?? 6) - (PRIORITY_RANK[b.priority] ?? 6) ||
        (a.name < b.name ? -1 : a.name > b.name ? 1 : 0),
    );
  };

  const chainOf = (name: string | undefined): string[] => {
    const chain: string[] = [];
    for (let n = name, guard = 0; n !== undefined && guard < 10_000; guard++) {
      chain.push(n);
      n = marked.get(n)?.via;
    }
    return chain;
  };

  const mark = (r: PackageRecord, via: string | undefined): void => {
    marked.set(r.name, { record: r, depends: [], via });
    addPresent(presentOf(r));
  };

  // apt-get install marks every requested package before resolving any dependency.
  for (const name of input.requested) {
    if (excluded.has(name)) {
      throw new DistillError('DEFINITION_INVALID', `${input.image}: ${name} is both requested and excluded`, { hint: 'remove it from one of the lists' });
    }
    if (installedNames.has(name)) continue; // already in the base image
    const r = universe.candidates.get(name);
    if (r === undefined) {
      const provs = universe.providers.get(name);
      throw new DistillError('PACKAGE_UNKNOWN', provs && provs.length > 0
        ? `${input.image} (${arch}): ${name} is a virtual package provided by ${provs.map((p) => p.pkg.name).sort().join(', ')}`
        : `${input.image} (${arch}): no package named ${name} in any source${didYouMean(name, universe.candidates.keys())}`, {
        hint: provs && provs.length > 0 ? 'list the provider you want' : 'check the name and the definition\'s sources',
      });
    }
    mark(r, undefined);
  }

  // Level by level, as apt 2.x's MarkInstall: choose for every dependency group of a package, then descend.
  let level = [...marked.values()].map((m) => m.record);
  for (let depth = 0; level.length > 0; depth++) {
    if (depth > 100_000) throw new Error('resolver: runaway resolution');
    const next: PackageRecord[] = [];
    for (const pkg of level) {
      const node = marked.get(pkg.name)!;
      const groups: Alternatives[] = [
        ...(pkg.depends === '' ? [] : parseRelations(pkg.depends, `Depends of ${pkg.name} ${pkg.version}`)),
        ...(pkg.preDepends === '' ? [] : parseRelations(pkg.preDepends, `Pre-Depends of ${pkg.name} ${pkg.version}`)),
      ];
      for (const group of groups) {
        const alts = group.filter((rel) => relationAppliesToArch(rel, arch));
        if (alts.length === 0) continue;
        let chosen: string | undefined;
        for (const rel of alts) {
          chosen = satisfiedBy(rel);
          if (chosen !== undefined) break;
        }
        if (chosen === undefined) {
          for (const rel of alts) {
            const c = candidatesFor(rel)[0];
            if (c !== undefined && installedNames.has(c.name)) {
              // The base image has this package, but not a version that fits: adding a second copy
              // in this layer would put two versions of one package in the image.
              const have = present.get(c.name)!;
              throw new DistillError(
                'DEPENDENCY_UNSATISFIABLE',
                `${input.image} (${arch}): ${pkg.name} needs ${formatRelation(rel)}, but the base image has ${have.name} ${have.version} (the archive now has ${c.version})`,
                { hint: 'relock the base image (distill lock images/) so both use the same archive state' },
              );
            }
            if (c !== undefined) {
              mark(c, pkg.name);
              next.push(c);
              chosen = c.name;
              break;
            }
          }
        }
        if (chosen === undefined) throw unsatisfiable(input.image, arch, alts, pkg, chainOf(pkg.name), universe);
        if (excluded.has(chosen)) excludedUsed.add(chosen);
        else if (chosen !== pkg.name && !node.depends.includes(chosen)) node.depends.push(chosen);
      }
    }
    level = next;
  }

  checkConflicts(marked, arch, input.image, input.installed);
  for (const m of marked.values()) m.depends.sort();
  return {
    arch,
    packages: new Map([...marked.entries()].sort((a, b) => (a[0] < b[0] ? -1 : 1))),
    excludedUsed: [...excludedUsed].sort(),
    excludedUnused: [...excluded].filter((e) => !excludedUsed.has(e)).sort(),
  };
}

function unsatisfiable(image: string, arch: string, alts: Relation[], pkg: PackageRecord, chain: string[], universe: Universe): DistillError {
  const why = alts
    .map((rel) => {
      const real = universe.candidates.get(rel.name);
      if (real) return `${formatRelation(rel)}: the candidate is ${real.version} (${real.architecture}, from ${real.archive})`;
      if (universe.providers.has(rel.name)) return `${formatRelation(rel)}: no provider fits`;
      return `${formatRelation(rel)}: not in any source`;
    })
    .join('; ');
  return new DistillError(
    'DEPENDENCY_UNSATISFIABLE',
    `${image} (${arch}): unsatisfiable dependency ${alts.map(formatRelation).join(' | ')} of ${pkg.name} ${pkg.version}, required by ${[...chain].reverse().join(' → ')} — ${why}`,
    { hint: 'add a source that has it, exclude the package that needs it, or change the requested packages' },
  );
}

function checkConflicts(marked: Map<string, ResolvedPackage>, arch: string, image: string, installed: ResolveInput['installed']): void {
  const provided = new Map<string, { name: string; version: string | undefined }[]>();
  for (const { record } of marked.values()) {
    if (record.provides === '') continue;
    for (const p of parseProvides(record.provides, `Provides of ${record.name}`)) {
      let l = provided.get(p.name);
      if (!l) provided.set(p.name, (l = []));
      l.push({ name: record.name, version: p.version });
    }
  }
  for (const { record } of marked.values()) {
    for (const [field, text] of [['Conflicts', record.conflicts], ['Breaks', record.breaks]] as const) {
      if (text === '') continue;
      for (const group of parseRelations(text, `${field} of ${record.name}`, { alternatives: false })) {
        for (const rel of group) {
          if (!relationAppliesToArch(rel, arch)) continue;
          // Against this closure and the base image's (whose own Conflicts/Breaks the lock does not keep).
          const other = marked.get(rel.name)?.record ?? installed?.get(rel.name);
          const hit =
            other && other.name !== record.name && (rel.op === undefined || versionSatisfies(other.version, rel.op, rel.version!))
              ? other.name
              : rel.op === undefined
                ? provided.get(rel.name)?.find((p) => p.name !== record.name)?.name
                : undefined;
          if (hit !== undefined) {
            throw new DistillError('DEPENDENCY_UNSATISFIABLE', `${image} (${arch}): ${record.name} ${field} ${formatRelation(rel)}, but ${hit} is in the closure`, {
              hint: 'exclude one of them or request a different alternative explicitly',
            });
          }
        }
      }
    }
  }
}
