// Shared by the generator tests: find .debs in the frozen snapshot, extract them with the real
// dpkg-deb into throwaway directories, and check for host tools (tests skip, saying why, without them).
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { snapshotDir } from '../../helpers/paths.js';

const available = new Map<string, boolean>();
/** Whether `cmd` runs (`cmd <args>` exits 0). */
export function hasTool(cmd: string, args: string[] = ['--version']): boolean {
  const key = [cmd, ...args].join(' ');
  let ok = available.get(key);
  if (ok === undefined) {
    ok = spawnSync(cmd, args, { stdio: 'ignore' }).status === 0;
    available.set(key, ok);
  }
  return ok;
}

/** Every .deb of the snapshot (both archives), absolute paths, sorted; [] without the snapshot. */
export function snapshotDebs(): string[] {
  const snap = snapshotDir();
  if (!snap) return [];
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.deb')) out.push(p);
    }
  };
  for (const archive of ['debian', 'debian-security']) walk(join(snap, archive, 'pool'));
  return out.sort();
}

/** The snapshot .deb of a package (`name_` prefix, arch `all` or the given one), or undefined. */
export function snapshotDeb(name: string, arch = 'amd64'): string | undefined {
  return snapshotDebs().find((p) => {
    const base = p.slice(p.lastIndexOf('/') + 1);
    return base.startsWith(name + '_') && (base.endsWith(`_${arch}.deb`) || base.endsWith('_all.deb'));
  });
}

/** A fresh temporary directory; removed by the returned cleanup. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `distill-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

/** Run a command; throw with its stderr when it fails. */
export function run(cmd: string, args: string[], opts: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string } = {}): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, env: opts.env ?? process.env, input: opts.input, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.status ?? r.signal}): ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

/** `dpkg-deb -x deb dir` (data) and, with `control`, `dpkg-deb -e deb control`. */
export function extractDeb(deb: string, dir: string, control?: string): void {
  run('dpkg-deb', ['-x', deb, dir]);
  if (control !== undefined) run('dpkg-deb', ['-e', deb, control]);
}

/** Regular files under `root`, as paths relative to it (no leading "./"), sorted. */
export function listFiles(root: string, under = ''): string[] {
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile()) out.push(relative(root, p));
    }
  };
  walk(join(root, under));
  return out.sort();
}
