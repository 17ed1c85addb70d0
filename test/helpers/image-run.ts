// Running what distill built, as a container runtime would: unpack a layout ref with umoci, then
// chroot into the rootfs with /proc mounted (the JVM and $ORIGIN lookups need it) as a given user.
// arm64 rootfs run through qemu-user-static when the kernel has it registered (binfmt_misc).
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './tmp.js';

export function whyCannotRun(): string | false {
  if (process.getuid?.() !== 0) return 'running images needs root (chroot, mount)';
  for (const tool of ['umoci', 'chroot', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`]).status !== 0) return `${tool} is not installed`;
  }
  return false;
}

/** binfmt_misc entry names of qemu-user-static, by Debian architecture. */
export const QEMU_BINFMT: Readonly<Record<string, string>> = {
  arm64: 'qemu-aarch64',
  armhf: 'qemu-arm',
  ppc64el: 'qemu-ppc64le',
  s390x: 'qemu-s390x',
  riscv64: 'qemu-riscv64',
};

export function whyCannotRunArch(arch: string): string | false {
  const base = whyCannotRun();
  if (base) return base;
  if (arch === 'amd64' && process.arch === 'x64') return false;
  const name = QEMU_BINFMT[arch] ?? `qemu-${arch}`;
  const f = `/proc/sys/fs/binfmt_misc/${name}`;
  if (!existsSync(f) || !readFileSync(f, 'utf8').startsWith('enabled')) {
    return `${arch} binaries cannot run here: qemu-user-static is not registered in binfmt_misc (see .ci/run)`;
  }
  return false;
}

const unpacked: string[] = [];

/** Remove every rootfs unpack() made in this process (call from an after() hook). */
export function removeUnpacked(): void {
  for (const d of unpacked.splice(0)) rmSync(d, { recursive: true, force: true });
}

/** umoci unpack of `layout:ref`; returns the rootfs path. */
export function unpack(layout: string, ref: string): string {
  const dir = tempDir('distill-run-');
  unpacked.push(dir);
  const bundle = join(dir, 'bundle');
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

export interface ImageConfig {
  Entrypoint?: string[];
  Cmd?: string[];
  Env?: string[];
  User?: string;
  WorkingDir?: string;
}

/** The OCI image config of `ref` in a layout (index.json → manifest → config), as a runtime reads it. */
export function imageConfigOf(layout: string, ref: string): ImageConfig {
  const blob = (digest: string): any => JSON.parse(readFileSync(join(layout, 'blobs', 'sha256', digest.slice('sha256:'.length)), 'utf8'));
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const desc = index.manifests.find((m: any) => m.annotations?.['org.opencontainers.image.ref.name'] === ref);
  if (!desc) throw new Error(`${layout} has no ref ${ref}`);
  return blob(blob(desc.digest).config.digest).config as ImageConfig;
}

/**
 * Run a container the way `docker run [--entrypoint E] IMAGE [CMD…]` would: the config's entrypoint
 * (or `entrypoint`), then `cmd` or the config's Cmd, with the config's Env and User.
 */
export function runAsConfigured(rootfs: string, config: ImageConfig, opts: { cmd?: string[]; entrypoint?: string[] } = {}): RunResult {
  const argv = [...(opts.entrypoint ?? config.Entrypoint ?? []), ...(opts.cmd ?? (opts.entrypoint ? [] : (config.Cmd ?? [])))];
  const env = Object.fromEntries((config.Env ?? []).map((e) => [e.slice(0, e.indexOf('=')), e.slice(e.indexOf('=') + 1)]));
  return runIn(rootfs, argv, { uid: Number(config.User ?? '0'), env });
}
