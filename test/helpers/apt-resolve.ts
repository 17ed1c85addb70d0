// apt as an oracle for tests: resolve what `apt-get install --no-install-recommends` would install from
// given sources into an empty system, entirely inside workDir. Nothing of the host's apt is read or
// written: APT_CONFIG points Dir::Etc (so apt.conf, apt.conf.d, preferences, trusted keys, sources) and
// Dir::State / Dir::Cache / Dir::Log / the dpkg status file at folders in workDir, so the host's
// apt.conf.d (proxies, Post-Invoke hooks, pins) does not apply and its lists are not touched.
import { spawn } from 'node:child_process';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

export interface AptSource {
  /** The archive root URL, e.g. file:///tmp/x/debian */
  url: string;
  suite: string;
  components: string[];
}

export interface AptResolveOptions {
  sources: AptSource[];
  /** signed-by= for every source (binary .gpg or armored .asc). */
  keyring: string;
  /** The only architecture apt knows: native, and no foreign ones. */
  arch: string;
  packages: string[];
  /**
   * Names to treat as already installed: written into the dpkg status file as "install ok installed"
   * with their candidate Version, Architecture, Multi-Arch and Provides but no Depends/Pre-Depends,
   * so apt neither installs them nor follows their dependencies (pruning). A name that is not a real
   * package (purely virtual) is written as an installed package of that name, version 0.
   */
  exclude?: string[];
  /** Acquire::Check-Valid-Until=false, for a Release whose Valid-Until has passed. */
  allowExpired?: boolean;
  /** [trusted=yes] instead of checking signatures (for unsigned archives). */
  trusted?: boolean;
  workDir: string;
  /**
   * Reuse the lists (and apt's source-package cache, which depends only on them) of an earlier call
   * with the same workDir and sources: no second `apt-get update`. The status file is still rewritten
   * per call and the binary package cache stays off, so excludes never go stale.
   */
  reuseLists?: boolean;
}

export interface AptChoice {
  version: string;
  arch: string;
}

interface Out {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(cmd: string, args: string[], env: NodeJS.ProcessEnv): Promise<Out> {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s: string) => (stdout += s));
    child.stderr.on('data', (s: string) => (stderr += s));
    child.on('error', rej);
    child.on('close', (code) => res({ code: code ?? -1, stdout, stderr }));
  });
}

let available: Promise<boolean> | undefined;

/** Whether apt-get and apt-cache run here. */
export function aptAvailable(): Promise<boolean> {
  available ??= (async () => {
    try {
      const env = { PATH: process.env['PATH'] ?? '/usr/bin:/bin', LC_ALL: 'C' };
      const [a, b] = await Promise.all([exec('apt-get', ['--version'], env), exec('apt-cache', ['--version'], env)]);
      return a.code === 0 && b.code === 0;
    } catch {
      return false;
    }
  })();
  return available;
}

function quote(s: string): string {
  if (/["\n]/.test(s)) throw new Error(`cannot put ${JSON.stringify(s)} in an apt configuration`);
  return `"${s}"`;
}

/** The apt configuration, APT_CONFIG-file syntax; every path is inside `wd`. */
function aptConf(wd: string, opts: AptResolveOptions): string {
  const lines: [string, string][] = [
    ['Dir::Etc', `${wd}/etc/`],
    ['Dir::Etc::main', 'apt.conf'],
    ['Dir::Etc::parts', 'apt.conf.d/'],
    ['Dir::Etc::sourcelist', 'sources.list'],
    ['Dir::Etc::sourceparts', 'sources.list.d/'],
    ['Dir::Etc::preferences', 'preferences'],
    ['Dir::Etc::preferencesparts', 'preferences.d/'],
    ['Dir::Etc::trusted', 'trusted.gpg'],
    ['Dir::Etc::trustedparts', 'trusted.gpg.d/'],
    ['Dir::Etc::netrc', 'auth.conf'],
    ['Dir::Etc::netrcparts', 'auth.conf.d/'],
    ['Dir::State', `${wd}/state/`],
    ['Dir::State::lists', 'lists/'],
    ['Dir::State::extended_states', 'extended_states'],
    ['Dir::State::status', `${wd}/dpkg/status`],
    ['Dir::Cache', `${wd}/cache/`],
    ['Dir::Cache::archives', 'archives/'],
    // No binary caches: apt builds them in memory each run, so a rewritten status file is never stale.
    ['Dir::Cache::pkgcache', ''],
    ['Dir::Cache::srcpkgcache', opts.reuseLists ? `${wd}/cache/srcpkgcache.bin` : ''],
    ['Dir::Log', `${wd}/log/`],
    ['Dir::Media::MountPath', `${wd}/media/`],
    ['Debug::NoLocking', 'true'],
    // file: URIs in a private temp folder are unreadable to _apt; stay root rather than warn.
    ['APT::Sandbox::User', 'root'],
    ['APT::Architecture', opts.arch],
    ['APT::Install-Recommends', 'false'],
    ['APT::Install-Suggests', 'false'],
    ['APT::Get::List-Cleanup', 'false'],
    ['APT::Get::Assume-Yes', 'true'],
    ['Acquire::Languages', 'none'],
    ['Acquire::PDiffs', 'false'],
    ['Acquire::IndexTargets::deb::Contents-deb::DefaultEnabled', 'false'],
    ['Acquire::Check-Valid-Until', opts.allowExpired ? 'false' : 'true'],
  ];
  return (
    lines.map(([k, v]) => `${k} ${quote(v)};\n`).join('') +
    // A list, so apt does not ask dpkg for foreign architectures.
    `APT::Architectures { ${quote(opts.arch)}; };\n`
  );
}

/** The dpkg status paragraph for an excluded package: installed, with no dependencies. */
function statusParagraph(fields: Map<string, string>, name: string): string {
  const out = [
    `Package: ${name}`,
    'Status: install ok installed',
    `Priority: ${fields.get('Priority') ?? 'optional'}`,
    `Section: ${fields.get('Section') ?? 'misc'}`,
    'Maintainer: excluded <excluded@example.invalid>',
    `Architecture: ${fields.get('Architecture') ?? 'all'}`,
  ];
  const ma = fields.get('Multi-Arch');
  if (ma) out.push(`Multi-Arch: ${ma}`);
  out.push(`Version: ${fields.get('Version') ?? '0'}`);
  const provides = fields.get('Provides');
  if (provides) out.push(`Provides: ${provides}`);
  out.push(`Description: excluded from resolution (pruned)`);
  return `${out.join('\n')}\n`;
}

function parseParagraphs(text: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  for (const para of text.split(/\n\s*\n/)) {
    const m = new Map<string, string>();
    let last: string | undefined;
    for (const line of para.split('\n')) {
      if (/^\s/.test(line) && last) m.set(last, `${m.get(last)}\n${line}`);
      else {
        const i = line.indexOf(':');
        if (i > 0) {
          last = line.slice(0, i);
          m.set(last, line.slice(i + 1).trim());
        }
      }
    }
    if (m.has('Package')) out.push(m);
  }
  return out;
}

// "Inst name (version release[, release…] [arch])", optionally "Inst name [oldversion] (…)" and
// trailing "[]" notes.
const INST = /^Inst (\S+)(?: \[[^\]]*\])? \((\S+) .*\[([^\]\s]+)\]\)/;

export function parseInstLines(stdout: string): Map<string, AptChoice> {
  const chosen = new Map<string, AptChoice>();
  for (const line of stdout.split('\n')) {
    const m = INST.exec(line);
    if (m) chosen.set(m[1]!, { version: m[2]!, arch: m[3]! });
  }
  return chosen;
}

export interface AptSimulation {
  /** name -> the version and architecture apt would install. */
  chosen: Map<string, AptChoice>;
  /** apt's "W:" lines from update and install (none on a well-formed archive). */
  warnings: string[];
  updateOutput: string;
  installOutput: string;
}

/**
 * Runs `apt-get update` and `apt-get install -s --no-install-recommends <packages>` against the
 * sources with an empty dpkg status (plus `exclude` as installed) and returns name -> chosen version
 * and architecture. Throws with apt's output when apt fails (unsatisfiable, bad signature, expired…).
 */
export async function aptResolve(opts: AptResolveOptions): Promise<Map<string, AptChoice>> {
  return (await aptSimulate(opts)).chosen;
}

/** aptResolve, also returning apt's warnings and output. */
export async function aptSimulate(opts: AptResolveOptions): Promise<AptSimulation> {
  const wd = resolve(opts.workDir);
  for (const d of [
    'etc/apt.conf.d',
    'etc/sources.list.d',
    'etc/preferences.d',
    'etc/trusted.gpg.d',
    'etc/auth.conf.d',
    'state/lists/partial',
    'cache/archives/partial',
    'log',
    'media',
    'dpkg/updates',
    'tmp',
  ])
    await mkdir(join(wd, d), { recursive: true });
  const confPath = join(wd, 'apt.conf');
  await writeFile(confPath, aptConf(wd, opts));
  const sourceOpts = opts.trusted ? '[trusted=yes]' : `[signed-by=${resolve(opts.keyring)}]`;
  await writeFile(
    join(wd, 'etc', 'sources.list'),
    opts.sources.map((s) => `deb ${sourceOpts} ${s.url} ${s.suite} ${s.components.join(' ')}\n`).join(''),
  );
  const statusPath = join(wd, 'dpkg', 'status');
  await writeFile(statusPath, '');

  const env: NodeJS.ProcessEnv = {
    PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: wd,
    // apt's own temporary files (apt.conf.*, apt.sig.*, the gpgv home) go here too.
    TMPDIR: join(wd, 'tmp'),
    LC_ALL: 'C',
    DEBIAN_FRONTEND: 'noninteractive',
    APT_CONFIG: confPath,
  };
  const fail = (what: string, r: Out): never => {
    throw new Error(`${what} failed (exit ${r.code}):\n${r.stdout}${r.stderr}`);
  };

  const haveLists = opts.reuseLists === true && (await readdir(join(wd, 'state', 'lists'))).some((f) => f.endsWith('_Packages') || f.includes('_Packages.'));
  const update = haveLists ? { code: 0, stdout: '', stderr: '' } : await exec('apt-get', ['-q', 'update'], env);
  if (update.code !== 0 || /^(E|Err):/m.test(update.stderr + update.stdout)) fail('apt-get update', update);

  const exclude = [...new Set(opts.exclude ?? [])];
  if (exclude.length > 0) {
    // --no-all-versions: only the candidate, the version apt would install. apt-cache prints the
    // records it finds even when some names are purely virtual (and then exits 100).
    const show = await exec('apt-cache', ['show', '--no-all-versions', ...exclude], env);
    const found = new Map(parseParagraphs(show.stdout).map((m) => [m.get('Package'), m]));
    const paragraphs = exclude.map((name) =>
      statusParagraph(found.get(name) ?? new Map([['Architecture', opts.arch]]), name),
    );
    await writeFile(statusPath, paragraphs.join('\n'));
  }

  const install = await exec(
    'apt-get',
    ['-q', '-s', 'install', '--no-install-recommends', ...opts.packages],
    env,
  );
  if (install.code !== 0 || /^E:/m.test(install.stderr)) fail(`apt-get install -s ${opts.packages.join(' ')}`, install);
  const updateOutput = update.stdout + update.stderr;
  const installOutput = install.stdout + install.stderr;
  const warnings = `${updateOutput}\n${installOutput}`.split('\n').filter((l) => l.startsWith('W:'));
  return { chosen: parseInstLines(install.stdout), warnings, updateOutput, installOutput };
}
