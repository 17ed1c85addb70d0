// A private containerd for a test: its own root, state and gRPC/ttrpc sockets in a temp directory, a
// minimal config (CRI off: no CNI, no Kubernetes), overlayfs when its snapshotter loads here, else
// native. `ctr` runs against it in a namespace of the test's own. See test/helpers/daemon.ts for the
// bounded start/stop and the clean-up on exit.
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Daemon, daemonDir, startDaemon, whyNoDaemon } from './daemon.js';

export interface RunningContainerd {
  daemon: Daemon;
  address: string;
  /** overlayfs or native. */
  snapshotter: string;
  /** `ctr run --runc-root`: runc's state directory (else runc writes under /run/containerd/runc/<namespace>). */
  runcRoot: string;
  /** `ctr run --fifo-dir`: the containers' stdio FIFOs (else under /run/containerd/fifo). */
  fifoDir: string;
  /** The daemon's version, e.g. "1.6.20~ds1". */
  serverVersion: string;
  /** Run `ctr` against this daemon in `namespace` (bounded: `timeoutMs`, default 120 s), `input` on its stdin. */
  ctr(namespace: string, args: string[], opts?: { timeoutMs?: number; input?: string }): SpawnSyncReturns<string>;
  stop(): Promise<void>;
}

export function whyNoContainerd(): string | false {
  return whyNoDaemon(['containerd', 'ctr', 'containerd-shim-runc-v2', 'runc']);
}

export async function startContainerd(): Promise<RunningContainerd> {
  const dir = daemonDir('distill-ctrd-');
  const address = join(dir, 'c.sock');
  const config = join(dir, 'config.toml');
  writeFileSync(
    config,
    [
      'version = 2',
      `root = "${join(dir, 'root')}"`,
      `state = "${join(dir, 'state')}"`,
      'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
      '[grpc]',
      `  address = "${address}"`,
      '[ttrpc]',
      `  address = "${address}.ttrpc"`,
      '[debug]',
      '  address = ""',
      '[metrics]',
      '  address = ""',
      '',
    ].join('\n'),
  );
  const env = { ...process.env };
  delete env['CONTAINERD_ADDRESS'];
  delete env['CONTAINERD_NAMESPACE'];
  const raw = (args: string[], timeoutMs = 120_000): SpawnSyncReturns<string> =>
    spawnSync('ctr', ['--address', address, ...args], { env, encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 << 20 });
  // containerd answers gRPC only; `ctr version` is the readiness probe (the socket alone is not).
  const daemon = await startDaemon('containerd', dir, ['containerd', '--config', config, '--log-level', 'warn'], async () =>
    existsSync(address) && raw(['version'], 5000).status === 0,
  30_000, { runcRoots: [join(dir, 'runc')], shimAddress: address });
  const version = /Server:\s*\n\s*Version:\s*(\S+)/.exec(raw(['version'], 10_000).stdout)?.[1] ?? '';
  // overlayfs when the kernel and the temp filesystem support it (its plugin reports "ok"), else native.
  const plugins = raw(['plugins', 'ls'], 10_000).stdout;
  const snapshotter = /io\.containerd\.snapshotter\.v1\s+overlayfs\s+\S+\s+ok/.test(plugins) ? 'overlayfs' : 'native';
  const ctr = (namespace: string, args: string[], opts: { timeoutMs?: number; input?: string } = {}): SpawnSyncReturns<string> =>
    spawnSync('ctr', ['--address', address, '--namespace', namespace, ...args], {
      env: { ...env, CONTAINERD_SNAPSHOTTER: snapshotter },
      encoding: 'utf8',
      timeout: opts.timeoutMs ?? 120_000,
      // SIGKILL: `ctr run` forwards SIGTERM to the container, whose PID 1 ignores it, and would never exit.
      killSignal: 'SIGKILL',
      maxBuffer: 64 << 20,
      input: opts.input ?? '',
    });
  return { daemon, address, snapshotter, runcRoot: join(dir, 'runc'), fifoDir: join(dir, 'fifo'), serverVersion: version, ctr, stop: () => daemon.stop() };
}
