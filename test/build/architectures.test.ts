// The four architectures the frozen snapshot does not hold — armhf (linux/arm/v7), ppc64el
// (linux/ppc64le), s390x and riscv64 — against the live Debian mirror of the host's apt sources (or
// DISTILL_MIRROR_DEBIAN / DISTILL_MIRROR_DEBIAN_SECURITY): a temporary copy of the standard
// definitions is locked for those architectures, python3 (latest and debug) is built for each, and run
// under qemu-user-static: `import ssl` with the CA bundle and the C.utf8 locale, the debug shell.
// nodejs and java must lock for every one of them (Debian builds both there).
// An architecture whose .debs the mirror does not serve (some mirrors answer 404 for files their index
// names) is skipped, naming the file; without a reachable mirror everything skips, saying why.
// Bounded: one lock (4 architectures' indexes), static debug and python3 (latest, debug) only — about
// a minute here.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildImage, type BuildResult } from '../../src/build.js';
import { resolveMirror } from '../../src/debian/mirrors.js';
import { isDistillError, messageOf } from '../../src/errors.js';
import { findDefinitions } from '../../src/definition/find.js';
import { lockImages, type LockResult } from '../../src/lock/lock.js';
import { repoRoot, systemKeyring } from '../helpers/paths.js';
import { imageConfigOf, removeUnpacked, runAsConfigured, runIn, unpack, whyCannotRunArch } from '../helpers/image-run.js';

const ARCHES = { armhf: 'linux/arm/v7', ppc64el: 'linux/ppc64le', riscv64: 'linux/riscv64', s390x: 'linux/s390x' } as const;
const UNAME = { armhf: 'armv7l', ppc64el: 'ppc64le', riscv64: 'riscv64', s390x: 's390x' } as const;

const work = mkdtempSync(join(tmpdir(), 'distill-arches-'));
const cache = join(work, 'cache');
const images = join(work, 'images');
const mirrors = { env: process.env };
let why: string | false = false;
let locks: LockResult[] = [];
const built = new Map<string, BuildResult | string>();

/** Error text without the mirror's URL (no host name in test output either). */
function withoutHosts(text: string): string {
  return text.replace(/\b[a-z]+:\/\/[^/\s]+/g, '<mirror>');
}

async function reachable(): Promise<string | false> {
  let url: string;
  try {
    url = resolveMirror('debian', 'trixie', undefined, mirrors).url;
  } catch (e) {
    return `no Debian mirror configured (host apt sources or DISTILL_MIRROR_DEBIAN): ${messageOf(e)}`;
  }
  if (url.startsWith('file:')) return false;
  try {
    const r = await fetch(`${url}/dists/trixie/InRelease`, { method: 'HEAD', signal: AbortSignal.timeout(10_000) });
    return r.ok ? false : `the Debian mirror of the host's apt sources answers ${r.status} for dists/trixie/InRelease`;
  } catch (e) {
    return `the Debian mirror of the host's apt sources cannot be reached: ${withoutHosts(messageOf(e))}`;
  }
}

before(async () => {
  why = existsKeyring() || (await reachable());
  if (why) return;
  cpSync(join(repoRoot, 'images'), images, { recursive: true });
  for (const f of ['image.lock.json']) for (const n of ['static', 'base-nossl', 'base', 'cc', 'python3', 'nodejs', 'java']) rmSync(join(images, n, f), { force: true });
  const def = join(images, 'static', 'image.yaml');
  const text = readFileSync(def, 'utf8');
  const edited = text.replace(/^architectures: .*$/m, `architectures: [${Object.keys(ARCHES).join(', ')}]`);
  assert.notEqual(edited, text, 'static/image.yaml lists its architectures on one line');
  writeFileSync(def, edited);
  try {
    locks = await lockImages(await findDefinitions([images]), { cacheDir: cache, mirrors, keyring: systemKeyring });
  } catch (e) {
    why = `locking against the live mirror failed: ${withoutHosts(messageOf(e))}`;
    return;
  }
  for (const arch of Object.keys(ARCHES)) {
    for (const [image, variants] of [['static', ['debug']], ['python3', ['latest', 'debug']]] as const) {
      try {
        built.set(`${image}-${arch}`, await buildImage(join(images, image, 'image.yaml'), { cacheDir: cache, mirrors, outDir: join(work, image), variants: [...variants], platforms: [arch] }));
      } catch (e) {
        if (!isDistillError(e) || (e.code !== 'NOT_FOUND_IN_MIRROR' && e.code !== 'FETCH_FAILED')) throw e;
        const file = /pool\/\S+?\.deb/.exec(messageOf(e))?.[0];
        built.set(`${image}-${arch}`, `the mirror does not serve ${file ?? 'a .deb of the lock'} (${e.code}); ${image} on ${arch} not tested`);
      }
    }
  }
});

after(() => {
  removeUnpacked();
  rmSync(work, { recursive: true, force: true });
});

function existsKeyring(): string | false {
  try {
    readFileSync(systemKeyring);
    return false;
  } catch {
    return `${systemKeyring} is missing (apt-get install debian-archive-keyring)`;
  }
}

test('every standard image, nodejs and java included, locks for armhf, ppc64el, riscv64 and s390x', async (t) => {
  if (why) return t.skip(why);
  assert.equal(locks.length, 7);
  for (const r of locks) assert.deepEqual(Object.keys(r.lock.architectures), Object.keys(ARCHES), r.lock.image);
});

for (const [arch, platform] of Object.entries(ARCHES) as [keyof typeof ARCHES, string][]) {
  test(`static debug on ${arch} (${platform}): platform fields; the BusyBox shell runs under qemu with one /busybox link per applet`, async (t) => {
    if (why) return t.skip(why);
    const r = built.get(`static-${arch}`)!;
    if (typeof r === 'string') return t.skip(r);
    const out = join(work, 'static');
    assert.deepEqual(r.variants[0]!.manifests.map((m) => m.platform), [platform]);
    const cfg = JSON.parse(readFileSync(join(out, 'blobs', 'sha256', r.variants[0]!.manifests[0]!.config.slice(7)), 'utf8'));
    assert.deepEqual([cfg.os, cfg.architecture, cfg.variant].filter((x) => x !== undefined), platform.split('/'));
    const cannot = whyCannotRunArch(arch);
    if (cannot) return t.skip(cannot);
    // The applet links come from the binary's own table (big-endian s390x too): the set the binary lists.
    const sh = runIn(unpack(out, `debug-${arch}`), ['/busybox/sh', '-c', 'echo $((6 * 7)) $(uname -m); ls /busybox | grep -vx busybox | sort | md5sum; busybox --list | grep -vx busybox | sort | md5sum']);
    assert.equal(sh.code, 0, sh.stderr);
    const [answer, links, listed] = sh.stdout.trim().split('\n');
    assert.equal(answer, `42 ${UNAME[arch]}`);
    assert.equal(links, listed, 'one /busybox link per applet of the binary');
  });

  test(`python3 on ${arch} (${platform}): platform fields, import ssl with the CA bundle and the C.utf8 locale, the debug shell — under qemu`, async (t) => {
    if (why) return t.skip(why);
    const r = built.get(`python3-${arch}`)!;
    if (typeof r === 'string') return t.skip(r);
    const out = join(work, 'python3');
    for (const v of r.variants) assert.deepEqual(v.manifests.map((m) => m.platform), [platform]);
    const [os, architecture, variant] = platform.split('/');
    const cfg = JSON.parse(readFileSync(join(out, 'blobs', 'sha256', r.variants[0]!.manifests[0]!.config.slice(7)), 'utf8'));
    assert.deepEqual([cfg.os, cfg.architecture, cfg.variant], [os, architecture, variant]);
    const cannot = whyCannotRunArch(arch);
    if (cannot) return t.skip(cannot);
    const config = imageConfigOf(out, `latest-${arch}`);
    const py = runAsConfigured(unpack(out, `latest-${arch}`), config, {
      cmd: ['-c', 'import locale, ssl; c = ssl.create_default_context(); print(len(c.get_ca_certs()) > 100, locale.setlocale(locale.LC_ALL, ""), ssl.OPENSSL_VERSION.split()[0])'],
    });
    assert.equal(py.code, 0, py.stderr);
    assert.equal(py.stdout, 'True C.UTF-8 OpenSSL\n');
    const sh = runIn(unpack(out, `debug-${arch}`), ['/busybox/sh', '-c', 'echo $((6 * 7)) $(uname -m); python3 -c "print(1)"']);
    assert.equal(sh.code, 0, sh.stderr);
    assert.equal(sh.stdout, `42 ${UNAME[arch]}\n1\n`);
  });
}
