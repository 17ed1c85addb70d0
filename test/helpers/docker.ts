// A private Docker Engine for a test: dockerd with its own data root, exec root, pid file, config file
// and unix socket in a temp directory (so nothing of the host's Docker is read or touched), no
// iptables, no bridge (containers run with --network none), its own managed containerd under the exec
// root. overlay2 when the kernel and the temp filesystem allow it, else vfs. The docker CLI is run
// against it with DOCKER_HOST and a private DOCKER_CONFIG. See test/helpers/daemon.ts for the
// bounded start/stop and the clean-up on exit.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Daemon, daemonDir, startDaemon, unixGetOk, whyNoDaemon } from './daemon.js';

export interface RunningDocker {
  daemon: Daemon;
  /** overlay2 or vfs. */
  storageDriver: string;
  /** The daemon's version, e.g. "20.10.24+dfsg1". */
  serverVersion: string;
  /**
   * Run the docker CLI against this daemon (bounded: `timeoutMs`, default 120 s; then SIGKILL, since
   * `docker run` passes SIGTERM on to the container, whose PID 1 may ignore it).
   */
  docker(args: string[], timeoutMs?: number): SpawnSyncReturns<string>;
  stop(): Promise<void>;
}

/**
 * The sandboxes these tests run in forbid raising rlimits, and runc then fails to apply Docker's
 * defaults: every `docker run` passes these (harmless where limits may be raised).
 */
export const DOCKER_RUN_LIMITS = ['--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=1024:1024'];

export function whyNoDocker(): string | false {
  return whyNoDaemon(['dockerd', 'docker', 'containerd', 'runc']);
}

/** Start a private dockerd; throws saying why it could not (the caller skips with that). */
export async function startDocker(): Promise<RunningDocker> {
  const failures: string[] = [];
  for (const driver of ['overlay2', 'vfs']) {
    const dir = daemonDir('distill-dockerd-');
    const sock = join(dir, 'docker.sock');
    mkdirSync(join(dir, 'cli'));
    writeFileSync(join(dir, 'daemon.json'), '{}\n');
    let daemon: Daemon;
    try {
      daemon = await startDaemon('dockerd', dir, [
        'dockerd',
        '--config-file', join(dir, 'daemon.json'),
        '--data-root', join(dir, 'data'),
        '--exec-root', join(dir, 'exec'),
        '--pidfile', join(dir, 'docker.pid'),
        '-H', `unix://${sock}`,
        '--iptables=false', '--ip-forward=false', '--ip-masq=false', '--bridge=none',
        '--storage-driver', driver,
        '--log-level', 'warn',
      ], () => unixGetOk(sock, '/_ping'), 45_000, {
        runcRoots: [join(dir, 'exec', 'runtime-runc')],
        shimAddress: join(dir, 'exec', 'containerd', 'containerd.sock'),
      });
    } catch (e) {
      failures.push(`${driver}: ${(e as Error).message}`);
      continue;
    }
    const env = { ...process.env, DOCKER_HOST: `unix://${sock}`, DOCKER_CONFIG: join(dir, 'cli'), DOCKER_CLI_HINTS: 'false' };
    const docker = (args: string[], timeoutMs = 120_000): SpawnSyncReturns<string> =>
      spawnSync('docker', args, { env, encoding: 'utf8', timeout: timeoutMs, killSignal: 'SIGKILL', maxBuffer: 64 << 20 });
    const info = docker(['info', '--format', '{{.Driver}} {{.ServerVersion}}'], 30_000);
    const [storageDriver, serverVersion] = info.stdout.trim().split(' ');
    if (info.status !== 0 || storageDriver !== driver) {
      failures.push(`${driver}: docker info: ${info.stderr.trim() || info.stdout.trim()}`);
      await daemon.stop();
      continue;
    }
    return { daemon, storageDriver, serverVersion: serverVersion ?? '', docker, stop: () => daemon.stop() };
  }
  throw new Error(`cannot start a private dockerd here: ${failures.join(' | ')}`);
}
