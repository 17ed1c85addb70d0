// A container daemon (dockerd, containerd) started privately by a test: its own directory for every
// path it writes (data, state, sockets), its own process group, output to a log file in that directory.
// Every wait is bounded. Whoever starts one stops it; and when the test process exits — its tests
// passed, failed or threw — every daemon still running is killed with its whole process group, the
// shims it left behind (found by the daemon's own directory in their command line), anything still
// mounted under the directory is lazily unmounted, and the directory is removed.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface Daemon {
  /** The daemon's private directory (short: unix socket paths must stay under 108 bytes). */
  dir: string;
  child: ChildProcess;
  /** runc state directories (`<root>/<namespace>/<id>/state.json`) of the containers it runs. */
  runcRoots: string[];
  /** The containerd address its shims were started with (their sockets are named after it). */
  shimAddress?: string;
  /** The last few KiB of its log, for error messages. */
  log(): string;
  /** SIGTERM, then (after `graceMs`) SIGKILL of its group and shims; unmount and remove `dir`. */
  stop(graceMs?: number): Promise<void>;
}

const live = new Set<Daemon>();
process.once('exit', () => {
  for (const d of live) killAndClean(d);
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.once(sig, () => {
    for (const d of live) killAndClean(d);
    process.exit(130);
  });
}

export function hasCommand(name: string): boolean {
  return spawnSync('sh', ['-c', 'command -v "$0"', name], { stdio: 'ignore' }).status === 0;
}

/** Why daemons cannot run here at all (not root, or a command missing), else false. */
export function whyNoDaemon(commands: string[]): string | false {
  if (process.getuid?.() !== 0) return 'container daemons need root (they mount filesystems and create namespaces)';
  const missing = commands.filter((c) => !hasCommand(c));
  return missing.length > 0 ? `not installed: ${missing.join(', ')} (.ci/run installs them)` : false;
}

/** A fresh private directory for a daemon, under the system temp dir. */
export function daemonDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/**
 * Start `argv` in `dir` and wait (at most `timeoutMs`) until `ready()` says yes. On failure the
 * daemon is killed, and the error says why (its exit status and the tail of its log).
 */
export async function startDaemon(
  name: string,
  dir: string,
  argv: string[],
  ready: () => Promise<boolean>,
  timeoutMs = 30_000,
  containers: { runcRoots: string[]; shimAddress: string } = { runcRoots: [], shimAddress: '' },
): Promise<Daemon> {
  const logFile = join(dir, 'daemon.log');
  const fd = openSync(logFile, 'a');
  // Its own process group, so that it and every process it forks can be killed as one.
  const child = spawn(argv[0]!, argv.slice(1), { cwd: dir, detached: true, stdio: ['ignore', fd, fd] });
  closeSync(fd);
  let exited: string | undefined;
  const exit = new Promise<void>((resolve) => {
    child.once('exit', (code, signal) => {
      exited = signal !== null ? `killed by ${signal}` : `exited with status ${code}`;
      resolve();
    });
    child.once('error', (e) => {
      exited = `could not be started: ${e.message}`;
      resolve();
    });
  });
  const log = (): string => {
    try {
      return readFileSync(logFile, 'utf8').slice(-3000);
    } catch {
      return '';
    }
  };
  const daemon: Daemon = {
    dir,
    child,
    runcRoots: containers.runcRoots,
    ...(containers.shimAddress !== '' ? { shimAddress: containers.shimAddress } : {}),
    log,
    stop: async (graceMs = 15_000) => {
      if (exited === undefined) {
        child.kill('SIGTERM');
        const t = setTimeout(() => killGroup(child), graceMs);
        await exit;
        clearTimeout(t);
      }
      killAndClean(daemon);
    },
  };
  live.add(daemon);
  const deadline = Date.now() + timeoutMs;
  while (exited === undefined && Date.now() < deadline) {
    if (await ready().catch(() => false)) return daemon;
    await new Promise((r) => setTimeout(r, 200));
  }
  const why = exited ?? `was not ready after ${timeoutMs / 1000} s`;
  const tail = log();
  killAndClean(daemon);
  throw new Error(`${name} ${why}: ${tail.trim().split('\n').slice(-8).join('\n')}`);
}

/** GET `path` over a unix socket; true on a 2xx answer. */
export function unixGetOk(socketPath: string, path: string): Promise<boolean> {
  if (!existsSync(socketPath)) return Promise.resolve(false);
  return new Promise((resolve) => {
    const req = request({ socketPath, path, timeout: 2000 }, (res) => {
      res.resume();
      resolve((res.statusCode ?? 0) >= 200 && (res.statusCode ?? 0) < 300);
    });
    req.on('error', () => resolve(false));
    req.on('timeout', () => req.destroy());
    req.end();
  });
}

function killGroup(child: ChildProcess): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // already gone
  }
}

/** Processes (shims, a daemon's own containerd) whose command line names `dir`: ours, by construction. */
function processesUsing(dir: string): number[] {
  const pids: number[] = [];
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, 'latin1').includes(dir)) pids.push(Number(p));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

function mountsUnder(dir: string): string[] {
  let text = '';
  try {
    text = readFileSync('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const points = text
    .split('\n')
    .map((l) => l.split(' ')[4]?.replace(/\\040/g, ' '))
    .filter((p): p is string => p !== undefined && (p === dir || p.startsWith(`${dir}/`)));
  // Deepest first.
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Every container runc still has state for under `roots`: its namespace, id and init process. */
function leftContainers(roots: string[]): { ns: string; id: string; pid: number }[] {
  const found: { ns: string; id: string; pid: number }[] = [];
  for (const root of roots) {
    let namespaces: string[] = [];
    try {
      namespaces = readdirSync(root);
    } catch {
      continue;
    }
    for (const ns of namespaces) {
      let ids: string[] = [];
      try {
        ids = readdirSync(join(root, ns));
      } catch {
        continue;
      }
      for (const id of ids) {
        try {
          const pid = (JSON.parse(readFileSync(join(root, ns, id, 'state.json'), 'utf8')) as { init_process_pid?: unknown }).init_process_pid;
          if (typeof pid === 'number' && pid > 1) found.push({ ns, id, pid });
        } catch {
          // not a container, or gone meanwhile
        }
      }
    }
  }
  return found;
}

/**
 * Where containerd 1.6's runc shim of a container listens: /run/containerd/s/<sha256 of
 * "<containerd address>/<namespace>/<id>">, whatever containerd's own state directory (the shim
 * removes it when it exits normally; a killed one leaves it).
 */
function shimSocket(address: string, ns: string, id: string): string {
  return join('/run/containerd/s', createHash('sha256').update(join(address, ns, id)).digest('hex'));
}

function killAndClean(d: Daemon): void {
  live.delete(d);
  // Containers a cut-off test left running first (a daemon's shutdown leaves them to their shims),
  // then the daemon's group, then the shims.
  const left = leftContainers(d.runcRoots);
  for (const { pid } of left) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  killGroup(d.child);
  for (const pid of processesUsing(d.dir)) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  for (const m of mountsUnder(d.dir)) spawnSync('umount', ['-l', m], { stdio: 'ignore', timeout: 10_000 });
  if (d.shimAddress !== undefined) for (const { ns, id } of left) rmSync(shimSocket(d.shimAddress, ns, id), { force: true });
  try {
    rmSync(d.dir, { recursive: true, force: true, maxRetries: 3 });
  } catch {
    // a mount that would not go: nothing more to do
  }
}
