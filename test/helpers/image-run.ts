// Running what distill built, as a container runtime would: unpack a layout ref with umoci, then
// chroot into the rootfs with /proc mounted (the JVM and $ORIGIN lookups need it) as a given user.
// arm64 rootfs run through qemu-user-static when the kernel has it registered (binfmt_misc).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export function whyCannotRun(): string | false {
  if (process.getuid?.() !== 0) return 'running images needs root (chroot, mount)';
  for (const tool of ['umoci', 'chroot', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return false;
}

export function whyCannotRunArch(arch: string): string | false {
  const base = whyCannotRun();
  if (base) return base;
  if (arch === 'amd64' && process.arch === 'x64') return false;
  const name = arch === 'arm64' ? 'qemu-aarch64' : `qemu-${arch}`;
  const f = `/proc/sys/fs/binfmt_misc/${name}`;
  if (!existsSync(f) || !readFileSync(f, 'utf8').startsWith('enabled')) {
    return `${arch} binaries cannot run here: qemu-user-static is not registered in binfmt_misc (see .ci/run)`;
  }
  return false;
}

/** umoci unpack of `layout:ref`; returns the rootfs path. */
export function unpack(layout: string, ref: string): string {
  const bundle = join(tempDir('distill-run-'), 'bundle');
  const r = spawnSync('umoci', ['unpack', '--image', `${layout}:${ref}`, bundle], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`umoci unpack ${layout}:${ref} failed: ${r.stderr}`);
  return join(bundle, 'rootfs');
}

export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run argv inside rootfs as uid:gid, with /proc mounted for the duration; bounded to 120 s. */
export function runIn(rootfs: string, argv: string[], opts: { uid?: number; env?: Record<string, string> } = {}): RunResult {
  const proc = join(rootfs, 'proc');
  const mounted = spawnSync('mount', ['-t', 'proc', 'proc', proc]).status === 0;
  try {
    const uid = opts.uid ?? 0;
    const r = spawnSync('chroot', [`--userspec=${uid}:${uid}`, rootfs, ...argv], {
      encoding: 'utf8',
      timeout: 120_000,
      env: { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:/busybox', SSL_CERT_FILE: '/etc/ssl/certs/ca-certificates.crt', HOME: '/', ...opts.env },
    });
    return { code: r.status ?? -1, stdout: r.stdout ?? '', stderr: (r.stderr ?? '') + (r.error ? String(r.error) : '') };
  } finally {
    if (mounted) spawnSync('umount', [proc]);
  }
}
