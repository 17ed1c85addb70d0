// Loading images/<name>/image.yaml: YAML → validated against image.schema.json (errors name file,
// line and field) → ImageDefinition with defaults and the `extends` chain resolved.
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { readFile, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { LineCounter, parseDocument, isMap, isSeq, visit, type Node } from 'yaml';
import { sha256Hex } from '../digest.js';
import { DistillError, messageOf } from '../errors.js';
import { validate, type Schema, type SchemaIssue } from './schema.js';
import { ALL_VARIANTS, type FileSpec, type ImageDefinition, type SourceSpec, type Variant } from './types.js';

/** Definitions are short, hand-written files: anything larger is refused unread. */
export const MAX_DEFINITION_BYTES = 1024 * 1024;
/**
 * YAML aliases may be used (a list shared by two images' fields), but each one expands in toJS: a few
 * nested anchors make an alias bomb (billions of nodes from a few hundred bytes). A definition may hold
 * this many alias nodes, and their expansion is capped by the yaml library's maxAliasCount.
 */
export const MAX_DEFINITION_ALIASES = 100;

let schemaCache: Schema | undefined;
export function imageSchema(): Schema {
  if (schemaCache === undefined) {
    schemaCache = JSON.parse(readFileSync(new URL('../../../src/definition/image.schema.json', import.meta.url), 'utf8')) as Schema;
  }
  return schemaCache;
}

interface RawDefinition {
  description?: string;
  repository?: string;
  extends?: string;
  sources?: Record<string, { suite: string; components?: string[]; mirror?: string }>;
  architectures?: string[];
  packages?: string[];
  exclude?: string[];
  config?: { entrypoint?: string[]; cmd?: string[]; env?: Record<string, string>; workdir?: string; labels?: Record<string, string> };
  accounts?: { users?: { name: string; uid: number; gid: number; home?: string; shell?: string }[]; groups?: { name: string; gid: number }[] };
  files?: { path: string; content?: string; source?: string; url?: string; sha256?: string; size?: number; extract?: boolean; symlink?: string; directory?: boolean; mode?: string; uid?: number; gid?: number }[];
  paths?: { keep?: string[]; drop?: string[]; setid?: string[] };
  variants?: Variant[];
  borrow?: { package: string; paths: string[] }[];
  debug?: { packages?: string[] };
}

/** Resolve a definition argument: a file, or a directory holding image.yaml. */
export async function definitionPath(arg: string): Promise<string> {
  const p = resolve(arg);
  try {
    const st = await stat(p);
    return st.isDirectory() ? join(p, 'image.yaml') : p;
  } catch (e) {
    throw new DistillError('DEFINITION_NOT_FOUND', `no image definition at ${arg}`, {
      cause: e,
      hint: 'pass images/<name>/image.yaml or its directory',
    });
  }
}

export async function loadDefinition(file: string, chain: string[] = []): Promise<ImageDefinition> {
  const abs = resolve(file);
  // The lock lives beside the definition as image.lock.json and the image is named after the
  // directory: one definition per directory, named image.yaml, keeps locks from overwriting each other.
  if (basename(abs) !== 'image.yaml') {
    throw new DistillError('DEFINITION_INVALID', `${abs}: an image definition must be named image.yaml (one image per directory)`, {
      hint: 'move it to images/<name>/image.yaml',
    });
  }
  if (chain.includes(abs)) {
    throw new DistillError('DEFINITION_CYCLE', `extends cycle: ${[...chain, abs].join(' → ')}`, { hint: 'remove one of the extends' });
  }
  let bytes: Buffer;
  try {
    // Untrusted text: refuse an absurd file before reading it whole.
    const st = await stat(abs);
    if (!st.isFile()) {
      throw new DistillError('DEFINITION_INVALID', `${abs} is not a regular file`, { hint: 'pass images/<name>/image.yaml or its directory' });
    }
    if (st.size > MAX_DEFINITION_BYTES) {
      throw new DistillError('DEFINITION_INVALID', `${abs} is ${st.size} bytes; a definition may be at most ${MAX_DEFINITION_BYTES}`, {
        hint: 'an image definition is a short YAML file; check that this is the right file',
      });
    }
    bytes = await readFile(abs);
  } catch (e) {
    if (e instanceof DistillError) throw e;
    throw new DistillError('DEFINITION_NOT_FOUND', `cannot read image definition ${abs}: ${(e as Error).message}`, {
      cause: e,
      hint: chain.length > 0 ? `fix the extends in ${chain[chain.length - 1]}` : 'check the path',
    });
  }
  const raw = parseAndValidate(bytes.toString('utf8'), abs);
  const base = raw.extends === undefined ? undefined : await loadDefinition(extendsPath(abs, raw.extends), [...chain, abs]);

  const sources = new Map<string, SourceSpec>(base?.sources ?? []);
  for (const [name, s] of Object.entries(raw.sources ?? {})) {
    const spec: SourceSpec = { suite: s.suite, components: s.components ?? ['main'], ...(s.mirror !== undefined ? { mirror: s.mirror } : {}) };
    const inherited = sources.get(name);
    if (inherited && (inherited.suite !== spec.suite || inherited.components.join() !== spec.components.join())) {
      throw new DistillError('DEFINITION_INVALID', `${abs}: source "${name}" differs from the one in ${base!.file}`, {
        hint: 'an image shares its base image\'s archives; give this archive another name',
      });
    }
    sources.set(name, spec);
  }
  if (sources.size === 0) {
    throw new DistillError('DEFINITION_INVALID', `${abs}: no sources`, { hint: 'add sources: {debian: {suite: trixie}}' });
  }
  const architectures = raw.architectures ?? base?.architectures;
  if (architectures === undefined) {
    throw new DistillError('DEFINITION_INVALID', `${abs}: no architectures`, { hint: 'add architectures: [amd64, arm64]' });
  }
  if (base) {
    const extra = architectures.filter((a) => !base.architectures.includes(a));
    if (extra.length > 0) {
      throw new DistillError('DEFINITION_INVALID', `${abs}: architectures ${extra.join(', ')} are not built by the base image ${base.name}`, {
        hint: `list only architectures of ${base.file}`,
      });
    }
  }
  const packages = raw.packages ?? [];
  if (packages.length === 0 && base === undefined) {
    throw new DistillError('DEFINITION_INVALID', `${abs}: no packages`, { hint: 'list at least one package' });
  }
  const defDir = dirname(abs);
  const files: FileSpec[] = (raw.files ?? []).map((f, i) => {
    const where = `${abs}: files[${i}] (${f.path})`;
    const parts = f.path.slice(1).split('/');
    if (!f.path.startsWith('/') || parts.some((c) => c === '' || c === '.' || c === '..')) {
      throw new DistillError('DEFINITION_INVALID', `${where}: the path must be absolute and normalised (no "..", ".", "//" or trailing "/")`);
    }
    // A source is read from the definition's own directory only: building someone else's definition
    // must not copy this machine's files (~/.ssh, /etc/…) into an image.
    // A file:// url is a source by another name and is confined the same way (its sha256 pin is no
    // protection: the contents of /etc/hostname or a public key are easy to know).
    if (f.source !== undefined) confine(defDir, resolve(defDir, f.source), `${where}: source ${f.source}`);
    if (f.url !== undefined) {
      let url: URL;
      try {
        url = new URL(f.url);
      } catch {
        throw new DistillError('DEFINITION_INVALID', `${where}: url ${JSON.stringify(f.url)} is not an absolute URL`, { hint: 'use https://… (or file:// for a file beside image.yaml)' });
      }
      if (url.protocol === 'file:') confine(defDir, filePathOf(url, where, f.url), `${where}: url ${f.url}`);
      else if (url.protocol !== 'https:' && url.protocol !== 'http:') {
        throw new DistillError('DEFINITION_INVALID', `${where}: url scheme ${url.protocol} is not supported`, { hint: 'use https:// (or file:// for a file beside image.yaml)' });
      }
    }
    const kinds = [f.content !== undefined, f.source !== undefined, f.url !== undefined, f.symlink !== undefined, f.directory === true].filter(Boolean).length;
    if (kinds !== 1) {
      throw new DistillError('DEFINITION_INVALID', `${abs}: files[${i}] (${f.path}): give exactly one of content, source, url, symlink or directory: true`);
    }
    if (f.url !== undefined && f.sha256 === undefined) {
      throw new DistillError('DEFINITION_INVALID', `${abs}: files[${i}] (${f.path}): a url needs its sha256`, { hint: 'pin it: sha256sum the file and add sha256: <hex>' });
    }
    if (f.extract && f.source === undefined && f.url === undefined) {
      throw new DistillError('DEFINITION_INVALID', `${abs}: files[${i}] (${f.path}): extract applies to a source or url tarball`);
    }
    return {
      path: f.path,
      ...(f.content !== undefined ? { content: f.content } : {}),
      ...(f.source !== undefined ? { source: resolve(dirname(abs), f.source) } : {}),
      ...(f.url !== undefined ? { url: f.url, sha256: f.sha256!, ...(f.size !== undefined ? { size: f.size } : {}) } : {}),
      ...(f.extract ? { extract: true } : {}),
      ...(f.symlink !== undefined ? { symlink: f.symlink } : {}),
      ...(f.directory ? { directory: true } : {}),
      ...(f.mode !== undefined ? { mode: parseInt(f.mode, 8) } : {}),
      ...(f.uid !== undefined ? { uid: f.uid } : {}),
      ...(f.gid !== undefined ? { gid: f.gid } : {}),
    };
  });
  const borrow = (raw.borrow ?? []).map((b, i) => {
    if (packages.includes(b.package) || (raw.borrow ?? []).findIndex((o) => o.package === b.package) !== i) {
      throw new DistillError('DEFINITION_INVALID', `${abs}: borrow[${i}] (${b.package}): the package is also installed or borrowed twice`, {
        hint: 'borrow a package once, and only one that the image does not install',
      });
    }
    for (const g of b.paths) {
      if (g.replace(/^\/+/, '').split('/').some((c) => c === '' || c === '.' || c === '..')) {
        throw new DistillError('DEFINITION_INVALID', `${abs}: borrow[${i}] (${b.package}): the path ${JSON.stringify(g)} is not normalised (no "..", ".", "//" or trailing "/")`);
      }
    }
    return { package: b.package, paths: [...b.paths] };
  });
  const accounts = raw.accounts
    ? {
        users: raw.accounts.users ?? [],
        groups: raw.accounts.groups ?? [],
      }
    : base?.accounts;
  return {
    name: basename(dirname(abs)),
    file: abs,
    sha256: sha256Hex(bytes),
    ...(raw.description !== undefined ? { description: raw.description } : {}),
    ...(raw.repository !== undefined ? { repository: raw.repository } : {}),
    ...(base ? { base } : {}),
    sources,
    architectures: [...architectures],
    packages: [...packages],
    // A base's excludes carry over, except for packages this image asks for by name (static excludes
    // openssl, needed only by ca-certificates' maintainer script; base asks for openssl itself).
    exclude: [...new Set([...(base?.exclude ?? []).filter((e) => !packages.includes(e)), ...(raw.exclude ?? [])])].sort(),
    ownExclude: [...(raw.exclude ?? [])].sort(),
    config: {
      ...(raw.config?.entrypoint ?? base?.config.entrypoint ? { entrypoint: raw.config?.entrypoint ?? base!.config.entrypoint! } : {}),
      ...(raw.config?.cmd ?? base?.config.cmd ? { cmd: raw.config?.cmd ?? base!.config.cmd! } : {}),
      ...(raw.config?.workdir ?? base?.config.workdir ? { workdir: raw.config?.workdir ?? base!.config.workdir! } : {}),
      env: { ...(base?.config.env ?? {}), ...(raw.config?.env ?? {}) },
      labels: { ...(base?.config.labels ?? {}), ...(raw.config?.labels ?? {}) },
    },
    ...(accounts ? { accounts } : {}),
    files,
    paths: {
      keep: [...(base?.paths.keep ?? []), ...(raw.paths?.keep ?? [])],
      drop: [...(base?.paths.drop ?? []), ...(raw.paths?.drop ?? [])],
      setid: [...(base?.paths.setid ?? []), ...(raw.paths?.setid ?? [])],
    },
    variants: raw.variants ?? base?.variants ?? [...ALL_VARIANTS],
    borrow,
    debugPackages: raw.debug?.packages ?? base?.debugPackages ?? [],
    ownsDebug: raw.debug?.packages !== undefined,
  };
}

/** A file a definition names must lie inside its directory once symlinks are resolved. */
function confine(defDir: string, path: string, what: string): void {
  let real = path;
  try {
    real = realpathSync(path);
  } catch {
    // Missing: the lexical path is checked (reading it later fails with its own error).
  }
  let realDir = defDir;
  try {
    realDir = realpathSync(defDir);
  } catch {
    // unreachable in practice: the definition was just read from it
  }
  if (!real.startsWith(realDir + sep) && !(real === path && path.startsWith(defDir + sep))) {
    throw new DistillError('DEFINITION_INVALID', `${what} is outside the definition's directory ${defDir}`, {
      hint: 'copy the file next to image.yaml (or into a folder below it)',
    });
  }
}

/** A file:// URL's path; one with a host (file://evil/x) or an encoded slash is no local path (fileURLToPath throws a TypeError). */
function filePathOf(url: URL, where: string, given: string): string {
  try {
    return fileURLToPath(url);
  } catch (e) {
    throw new DistillError('DEFINITION_INVALID', `${where}: url ${JSON.stringify(given)} is not a local file URL: ${messageOf(e)}`, { cause: e, hint: 'use file:///path (no host) for a file beside image.yaml' });
  }
}

/** The image.yaml an `extends: ref` in definition `from` names (rebuild confines it: see rebuild.ts). */
export function extendsPath(from: string, ref: string): string {
  if (ref.endsWith('.yaml') || ref.endsWith('.yml') || ref.includes('/')) {
    const p = resolve(dirname(from), ref);
    return p.endsWith('.yaml') || p.endsWith('.yml') ? p : join(p, 'image.yaml');
  }
  return resolve(dirname(from), '..', ref, 'image.yaml');
}

/** Parse YAML and validate against the schema; every problem is reported with file:line. */
export function parseAndValidate(text: string, file: string): RawDefinition {
  const lc = new LineCounter();
  const syntax = (message: string, cause?: unknown): DistillError =>
    new DistillError('DEFINITION_SYNTAX', `${file}: ${message}`, { cause, hint: 'fix the YAML syntax' });
  let doc: ReturnType<typeof parseDocument>;
  try {
    doc = parseDocument(text, { lineCounter: lc, uniqueKeys: true, prettyErrors: false });
  } catch (e) {
    // The parser recurses on nesting: thousands of nested brackets exhaust the stack.
    throw syntax(`cannot parse: ${messageOf(e)}`, e);
  }
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    const pos = lc.linePos(e.pos[0]);
    throw new DistillError('DEFINITION_SYNTAX', `${file}:${pos.line}:${pos.col}: ${e.message.split('\n')[0]}`, {
      hint: 'fix the YAML syntax',
    });
  }
  let aliases = 0;
  visit(doc, {
    Alias: () => {
      aliases += 1;
      return aliases > MAX_DEFINITION_ALIASES ? visit.BREAK : undefined;
    },
  });
  if (aliases > MAX_DEFINITION_ALIASES) throw syntax(`more than ${MAX_DEFINITION_ALIASES} YAML aliases (an alias bomb?)`);
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_DEFINITION_ALIASES });
  } catch (e) {
    // yaml refuses an alias whose expansion exceeds maxAliasCount nodes ("resource exhaustion").
    throw syntax(`YAML aliases expand too far: ${messageOf(e)}`, e);
  }
  const issues = validate(imageSchema(), value ?? {});
  if (issues.length > 0) {
    const lines = issues.map((i) => `${file}:${lineOf(doc.contents, i, lc)}: ${fieldName(i.path)}: ${i.message}`);
    throw new DistillError('DEFINITION_INVALID', lines.join('\n'), { hint: 'see the schema in src/definition/image.schema.json and README "Image definitions"' });
  }
  return (value ?? {}) as RawDefinition;
}

function fieldName(path: (string | number)[]): string {
  if (path.length === 0) return '(top level)';
  return path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join('');
}

function lineOf(root: Node | null, issue: SchemaIssue, lc: LineCounter): number {
  let node: Node | null | undefined = root;
  let keyNode: Node | undefined;
  for (const p of issue.path) {
    if (isMap(node)) {
      const pair = node.items.find((it) => (it.key as { value?: unknown } | null)?.value === p);
      if (!pair) break;
      keyNode = pair.key as Node;
      node = pair.value as Node | null;
    } else if (isSeq(node) && typeof p === 'number') {
      keyNode = undefined;
      node = node.items[p] as Node | undefined;
    } else break;
  }
  const target = issue.atKey && keyNode ? keyNode : (node ?? keyNode);
  const offset = target?.range?.[0];
  return offset === undefined ? 1 : lc.linePos(offset).line;
}
