// What the runtime tests (test/runtimes/) load, pull and run: python3's latest, nonroot and debug
// variants for amd64 and arm64, built once per test file from the committed lock against the frozen
// snapshot into an OCI layout and a docker archive, plus the script a distroless user's first check
// would be, and what distill's own config says each image is.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildImage, type BuildResult } from '../../src/build.js';
import { publish } from '../../src/publish.js';
import { repoRoot, snapshotMirrors } from './paths.js';
import { QEMU_BINFMT } from './image-run.js';
import { tempDir } from './tmp.js';

export const VARIANTS = ['latest', 'nonroot', 'debug'] as const;
export const ARCHES = ['amd64', 'arm64'] as const;

export interface RuntimeImages {
  built: BuildResult;
  /** The build's cache (its .debs and layers), for another build of the same image. */
  cacheDir: string;
  layout: string;
  /** `distill build --tar`: a docker archive that is an OCI archive too. */
  archive: string;
  /** The variant's multi-arch index digest. */
  index(variant: string): string;
  /** The `<variant>-<arch>` image's manifest digest. */
  manifest(variant: string, arch: string): string;
  /** Its config, as distill wrote it (exact bytes' digest and the parsed JSON). */
  config(variant: string, arch: string): { digest: string; json: ImageConfigJson };
}

export interface ImageConfigJson {
  architecture: string;
  os: string;
  variant?: string;
  config: { User?: string; Env?: string[]; Entrypoint?: string[]; Cmd?: string[]; WorkingDir?: string; Labels?: Record<string, string> };
}

export async function buildRuntimeImages(snapshot: string): Promise<RuntimeImages> {
  const out = tempDir('distill-runtimes-');
  const layout = join(out, 'layout');
  const archive = join(out, 'python3.tar');
  const built = await buildImage(join(repoRoot, 'images', 'python3', 'image.yaml'), {
    cacheDir: join(out, 'cache'),
    mirrors: { flags: snapshotMirrors(snapshot), aptSources: [] },
    outDir: layout,
    tarFile: archive,
    variants: [...VARIANTS],
    platforms: [...ARCHES],
  });
  const variant = (v: string) => {
    const found = built.model.variants.find((x) => x.variant === v);
    if (found === undefined) throw new Error(`no variant ${v}`);
    return found;
  };
  const image = (v: string, arch: string) => {
    const img = variant(v).images.get(arch);
    if (img === undefined) throw new Error(`no ${v}-${arch}`);
    return img;
  };
  return {
    built,
    cacheDir: join(out, 'cache'),
    layout,
    archive,
    index: (v) => variant(v).index.index.descriptor.digest,
    manifest: (v, arch) => image(v, arch).manifest.descriptor.digest,
    config: (v, arch) => {
      const c = image(v, arch).config;
      return { digest: c.descriptor.digest, json: JSON.parse(c.bytes.toString('utf8')) as ImageConfigJson };
    },
  };
}

/** Push every tag of the build to `repository` (a loopback registry), as `distill build --push` does. */
export async function pushRuntimeImages(images: RuntimeImages, repository: string): Promise<void> {
  await publish(images.built, { registry: { repository } });
}

/** The Debian architecture of this machine, when it is one the images are built for. */
export function nativeArch(): string | undefined {
  return process.arch === 'x64' ? 'amd64' : process.arch === 'arm64' ? 'arm64' : undefined;
}

/**
 * Why a container of `arch` cannot run here, else false: a foreign architecture needs
 * qemu-user-static registered in binfmt_misc with the F flag (the interpreter is opened when
 * registered, so it works inside the container's mount namespace too).
 */
export function whyNoForeignArch(arch: string): string | false {
  if (arch === nativeArch()) return false;
  const name = QEMU_BINFMT[arch] ?? `qemu-${arch}`;
  const f = `/proc/sys/fs/binfmt_misc/${name}`;
  if (!existsSync(f)) return `${arch} containers cannot run here: qemu-user-static is not registered in binfmt_misc (see .ci/run)`;
  const entry = readFileSync(f, 'utf8');
  if (!entry.startsWith('enabled')) return `${arch} containers cannot run here: the ${name} binfmt_misc entry is disabled`;
  if (!/^flags: .*F/m.test(entry)) return `${arch} containers cannot run here: ${name} is registered without the F flag, so its interpreter is not found inside a container`;
  return false;
}

/**
 * The first check a distroless python3 user makes: TLS with the default context (the CA bundle via
 * SSL_CERT_FILE / OpenSSL's default path), time zones from tzdata, the user from /etc/passwd, and
 * the environment and directory as distroless sets them. One `key value` line each.
 */
export const PYTHON_CHECK = [
  'import datetime, os, platform, pwd, ssl, zoneinfo',
  'ctx = ssl.create_default_context()',
  'print("cas", len(ctx.get_ca_certs()) > 100)',
  'print("tz", datetime.datetime(2024, 7, 1, tzinfo=zoneinfo.ZoneInfo("Europe/Paris")).utcoffset(), datetime.datetime(2024, 1, 1, tzinfo=zoneinfo.ZoneInfo("America/New_York")).utcoffset())',
  'print("user", os.getuid(), os.getgid(), pwd.getpwuid(os.getuid()).pw_name)',
  'for k in ("HOME", "PATH", "SSL_CERT_FILE", "LANG"): print(k, os.environ.get(k))',
  'print("cwd", os.getcwd())',
  'print("machine", platform.machine())',
].join('\n');

/**
 * Under qemu-user every instruction is emulated: a lighter check for the other architecture — the
 * platform, the user, libssl loading and the CA bundle file present.
 */
export const PYTHON_FOREIGN_CHECK = [
  'import os, platform, pwd, ssl',
  'print(platform.machine(), os.getuid(), pwd.getpwuid(os.getuid()).pw_name, ssl.OPENSSL_VERSION.split()[0], os.path.getsize(os.environ["SSL_CERT_FILE"]) > 100000)',
].join('\n');

export function expectedForeignCheck(variant: 'latest' | 'nonroot', arch: string): string {
  return `${arch === 'amd64' ? 'x86_64' : 'aarch64'} ${variant === 'nonroot' ? '65532 nonroot' : '0 root'} OpenSSL True\n`;
}

const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/** What PYTHON_CHECK prints in a variant's container (`machine` as uname reports the arch). */
export function expectedCheck(variant: 'latest' | 'nonroot', arch: string): string {
  const nonroot = variant === 'nonroot';
  return [
    'cas True',
    'tz 2:00:00 -1 day, 19:00:00',
    nonroot ? 'user 65532 65532 nonroot' : 'user 0 0 root',
    `HOME ${nonroot ? '/home/nonroot' : '/root'}`,
    `PATH ${PATH}`,
    'SSL_CERT_FILE /etc/ssl/certs/ca-certificates.crt',
    'LANG C.UTF-8',
    `cwd ${nonroot ? '/home/nonroot' : '/'}`,
    `machine ${arch === 'amd64' ? 'x86_64' : 'aarch64'}`,
    '',
  ].join('\n');
}
