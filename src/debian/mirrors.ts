// Where each named archive of a definition is fetched from. No mirror host is ever written into the
// repository: the URL comes, in order, from `--mirror NAME=URL`, DISTILL_MIRROR_<NAME>, the source's
// `mirror` in the definition, or the host's apt sources (an entry whose archive root ends in /NAME and
// carries the wanted suite, or — for a suite the host does not use — any entry whose root ends in /NAME).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DistillError } from '../errors.js';
import { parseDeb822 } from './deb822.js';

export interface AptSourceEntry {
  uri: string;
  suites: string[];
  components: string[];
  file: string;
}

export interface MirrorInputs {
  /** From --mirror NAME=URL flags. */
  flags?: Record<string, string>;
  /** The environment to read DISTILL_MIRROR_<NAME> from (the CLI passes process.env). */
  env?: Record<string, string | undefined>;
  /** The host's apt sources; default: read from aptDir. */
  aptSources?: AptSourceEntry[];
  /** Default /etc/apt. */
  aptDir?: string;
}

export function envName(source: string): string {
  return `DISTILL_MIRROR_${source.toUpperCase().replace(/[^A-Z0-9]/g, '_')}`;
}

/** Parse `NAME=URL` flag values. */
export function parseMirrorFlags(values: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const v of values) {
    const i = v.indexOf('=');
    if (i <= 0) {
      throw new DistillError('USAGE', `--mirror ${JSON.stringify(v)}: expected NAME=URL`, { hint: 'e.g. --mirror debian=file:///srv/mirror/debian' });
    }
    out[v.slice(0, i)] = checkUrl(v.slice(i + 1), `--mirror ${v.slice(0, i)}`);
  }
  return out;
}

function checkUrl(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch (e) {
    throw new DistillError('MIRROR_INVALID', `${what}: not a URL: ${JSON.stringify(url)}`, { cause: e, hint: 'give an http://, https:// or file:// URL' });
  }
  if (!['http:', 'https:', 'file:'].includes(u.protocol)) {
    throw new DistillError('MIRROR_INVALID', `${what}: unsupported scheme ${u.protocol}`, { hint: 'give an http://, https:// or file:// URL' });
  }
  return url.replace(/\/+$/, '');
}

export interface ResolvedMirror {
  url: string;
  from: 'flag' | 'env' | 'definition' | 'apt';
}

export function resolveMirror(source: string, suite: string, definitionMirror: string | undefined, inputs: MirrorInputs): ResolvedMirror {
  const flag = inputs.flags?.[source];
  if (flag !== undefined) return { url: flag, from: 'flag' };
  const env = inputs.env?.[envName(source)];
  if (env !== undefined && env !== '') return { url: checkUrl(env, envName(source)), from: 'env' };
  if (definitionMirror !== undefined) return { url: checkUrl(definitionMirror, `mirror of source ${source}`), from: 'definition' };
  const apt = inputs.aptSources ?? readAptSources(inputs.aptDir ?? '/etc/apt');
  const roots = apt.filter((e) => lastSegment(e.uri) === source);
  const exact = roots.find((e) => e.suites.includes(suite));
  const chosen = exact ?? roots[0];
  if (chosen) return { url: checkUrl(chosen.uri, `${chosen.file}`), from: 'apt' };
  throw new DistillError('MIRROR_NOT_CONFIGURED', `no mirror for the archive "${source}" (suite ${suite})`, {
    hint: `pass --mirror ${source}=URL, set ${envName(source)}=URL, or add an apt source whose archive root ends in /${source}`,
  });
}

function lastSegment(uri: string): string {
  try {
    const p = new URL(uri).pathname.replace(/\/+$/, '');
    return p.slice(p.lastIndexOf('/') + 1);
  } catch {
    return '';
  }
}

/** The host's apt sources: one-line sources.list(5) files and deb822 .sources files. */
export function readAptSources(aptDir: string): AptSourceEntry[] {
  const out: AptSourceEntry[] = [];
  const files: string[] = [join(aptDir, 'sources.list')];
  try {
    for (const f of readdirSync(join(aptDir, 'sources.list.d')).sort()) files.push(join(aptDir, 'sources.list.d', f));
  } catch {
    // no sources.list.d
  }
  for (const file of files) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch {
      continue;
    }
    if (file.endsWith('.sources')) {
      try {
        for (const p of parseDeb822(text, file)) {
          if (!/(^|\s)deb(\s|$)/.test(p.get('Types') ?? '') || /^(no|false)$/i.test(p.get('Enabled') ?? '')) continue;
          const suites = (p.get('Suites') ?? '').split(/\s+/).filter(Boolean);
          const components = (p.get('Components') ?? '').split(/\s+/).filter(Boolean);
          for (const uri of (p.get('URIs') ?? '').split(/\s+/).filter(Boolean)) out.push({ uri, suites, components, file });
        }
      } catch {
        // a host file we cannot read is not the user's problem here; other sources may still match
      }
    } else if (file.endsWith('.list') || file.endsWith('sources.list')) {
      for (const raw of text.split('\n')) {
        const line = raw.replace(/#.*/, '').trim();
        const m = /^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+(\S+)\s*(.*)$/.exec(line);
        if (m) out.push({ uri: m[1]!, suites: [m[2]!], components: m[3]!.split(/\s+/).filter(Boolean), file });
      }
    }
  }
  return out;
}
