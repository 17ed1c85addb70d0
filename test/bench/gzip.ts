// Benchmark of the layer gzip choices on one ~50 MB layer-like tar, all in one run so the figures compare
// as ratios (the machines are noisy): pako single-thread (the previous deflate, the baseline), distill's
// block gzip (libdeflate in wasm) inline and with 1/2 workers, node:zlib level 6 single thread (fast but
// not a stable format), GNU `gzip -n -6`, and the CRC-32 speed.
//
// The input is the trixie python3 closure from the frozen snapshot unpacked with `dpkg-deb -x` and written
// with distill's TarWriter; without the snapshot or dpkg-deb, up to 50 MB of /usr/lib; without that,
// generated text.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync, rmSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { gzip as pakoGzip } from 'pako';
import { createGzip, shutdownGzipWorkers, DEFAULT_BLOCK_SIZE, DEFAULT_LEVEL } from '../../src/layer/gzip.js';
import { createZstd } from '../../src/layer/zstd.js';
import { crc32 } from '../../src/layer/gzip-worker.js';
import { TarWriter, type TarEntryHeader } from '../../src/layer/tar-writer.js';
import { snapshotDir } from '../helpers/paths.js';
import { tempDir } from '../helpers/tmp.js';

/** The python3 closure of the snapshot (amd64), as package-name prefixes of pool files. */
const PYTHON3_SET = [
  'base-files_', 'ca-certificates_', 'gcc-14-base_', 'libbz2-1.0_', 'libc6_', 'libcrypt1_', 'libdb5.3t64_',
  'libexpat1_', 'libffi8_', 'libgcc-s1_', 'liblzma5_', 'libncursesw6_', 'libpython3.13-minimal_',
  'libpython3.13-stdlib_', 'libreadline8t64_', 'libsqlite3-0_', 'libssl3t64_', 'libstdc++6_', 'libtinfo6_',
  'libuuid1_', 'libzstd1_', 'media-types_', 'netbase_', 'openssl-provider-legacy_', 'openssl_',
  'python3.13-minimal_', 'readline-common_', 'tzdata_', 'zlib1g_',
];

function findDebs(dir: string, out: string[] = []): string[] {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) findDebs(p, out);
    else if (e.name.endsWith('_amd64.deb') || e.name.endsWith('_all.deb')) out.push(p);
  }
  return out;
}

/**
 * A directory tree as a tar: ownership 0/0, one fixed mtime, hardlinks kept, capped at `maxBytes` of file
 * content. Entries are sorted by the bytes of the whole path — not walk order: 'a-b' comes between 'a'
 * and 'a/b', which is what TarWriter requires.
 */
async function treeToTar(root: string, maxBytes: number): Promise<Buffer> {
  const found: Array<{ path: string; st: Stats }> = [];
  const walk = (rel: string): void => {
    for (const name of readdirSync(join(root, rel))) {
      const path = rel === '' ? name : `${rel}/${name}`;
      try {
        const st = lstatSync(join(root, path));
        found.push({ path, st });
        if (st.isDirectory()) walk(path);
      } catch {
        // unreadable: skip
      }
    }
  };
  walk('');
  found.sort((a, b) => Buffer.compare(Buffer.from(a.path), Buffer.from(b.path)));
  const chunks: Buffer[] = [];
  const tar = new TarWriter((c) => {
    chunks.push(c);
  });
  const inodes = new Map<string, string>();
  let total = 0;
  for (const { path, st } of found) {
    if (total >= maxBytes) break;
    const base = { path, mode: st.mode & 0o7777, uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: 1_700_000_000, size: 0 };
    const key = `${st.dev}:${st.ino}`;
    if (st.isDirectory()) {
      await tar.add({ ...base, type: 'dir' });
    } else if (st.isSymbolicLink()) {
      await tar.add({ ...base, type: 'symlink', linkTarget: readlinkSync(join(root, path)) });
    } else if (st.isFile()) {
      const first = inodes.get(key);
      if (st.nlink > 1 && first !== undefined) {
        await tar.add({ ...base, type: 'hardlink', linkTarget: first } satisfies TarEntryHeader);
        continue;
      }
      let body: Buffer;
      try {
        body = readFileSync(join(root, path));
      } catch {
        continue;
      }
      if (st.nlink > 1) inodes.set(key, path);
      total += body.length;
      await tar.add({ ...base, type: 'file', size: body.length }, body);
    }
  }
  await tar.finish();
  return Buffer.concat(chunks);
}

function generated(size: number): Buffer {
  const words = ['import', 'def', 'return', 'self', 'None', 'class', '(', ')', ':', '\n    ', 'value', 'path', '0x7f', 'lib'];
  const out = Buffer.alloc(size);
  let x = 12345;
  let at = 0;
  while (at < size) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const w = x % 5 === 0 ? String.fromCharCode(33 + (x >>> 16) % 90) : words[(x >>> 8) % words.length]!;
    at += out.write(w + ' ', at);
  }
  return out;
}

/** The benchmark input and where it came from. */
export async function layerLikeInput(): Promise<{ data: Buffer; what: string }> {
  const snap = snapshotDir();
  if (snap !== undefined && spawnSync('dpkg-deb', ['--version']).status === 0) {
    const debs = findDebs(snap).filter((p) => PYTHON3_SET.some((n) => p.split('/').pop()!.startsWith(n)));
    const dir = tempDir('distill-bench-');
    try {
      for (const deb of debs) {
        const r = spawnSync('dpkg-deb', ['-x', deb, dir]);
        if (r.status !== 0) throw new Error(`dpkg-deb -x ${deb}: ${r.stderr}`);
      }
      return { data: await treeToTar(dir, Infinity), what: `python3 closure of the snapshot (${debs.length} debs) as a tar` };
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  try {
    return { data: await treeToTar('/usr/lib', 50e6), what: '50 MB of /usr/lib as a tar' };
  } catch {
    return { data: generated(50e6), what: 'generated text' };
  }
}

async function viaStream(data: Buffer, workers: number, blockSize = DEFAULT_BLOCK_SIZE, level = DEFAULT_LEVEL): Promise<Buffer> {
  const out: Buffer[] = [];
  const gz = createGzip({ workers, blockSize, level });
  const done = (async () => {
    for await (const c of gz) out.push(c as Buffer);
  })();
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunked(data, 64 * 1024)).pipe(gz).on('error', reject);
    gz.on('end', resolve).on('error', reject);
  });
  await done;
  return Buffer.concat(out);
}

function* chunked(data: Buffer, size: number): Generator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

async function viaZstd(data: Buffer): Promise<Buffer> {
  const out: Buffer[] = [];
  const z = createZstd();
  const done = (async () => {
    for await (const c of z) out.push(c as Buffer);
  })();
  await new Promise<void>((resolve, reject) => {
    Readable.from(chunked(data, 64 * 1024)).pipe(z).on('error', reject);
    z.on('end', resolve).on('error', reject);
  });
  await done;
  return Buffer.concat(out);
}

function viaGnuGzip(data: Buffer, argv: string[] = ['gzip', '-n', '-6', '-c']): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const p = spawn(argv[0]!, argv.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
    const out: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => out.push(c));
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve(Buffer.concat(out)) : reject(new Error(`${argv[0]} exited ${code}`))));
    p.stdin.end(data);
  });
}

const RUNS = 2;

export async function benchGzip(): Promise<string[]> {
  const { data, what } = await layerLikeInput();
  const mb = data.length / 1e6;
  const lines = [
    `gzip: input ${what}: ${mb.toFixed(1)} MB, level ${DEFAULT_LEVEL} (baselines: 6), block ${DEFAULT_BLOCK_SIZE / 1024} KiB; ` +
      `each method warmed up on the first 8 MB (JIT, worker start), then best of ${RUNS} runs`,
  ];
  const warm = data.subarray(0, 8e6);
  // Wall time, and this process's CPU time (all its threads; not child processes): on a shared machine
  // the CPU time of the in-process methods moves far less than their wall time.
  const rows: Array<{ name: string; s: number; cpu: number | undefined; size: number; note?: string }> = [];
  const time = async (name: string, f: (input: Buffer) => Buffer | Promise<Buffer>, note?: (b: Buffer) => string, child = false): Promise<Buffer> => {
    await f(warm);
    let s = Infinity;
    let cpu = Infinity;
    let b: Buffer = Buffer.alloc(0);
    for (let i = 0; i < RUNS; i++) {
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      b = await f(data);
      s = Math.min(s, (performance.now() - t0) / 1000);
      const c = process.cpuUsage(c0);
      cpu = Math.min(cpu, (c.user + c.system) / 1e6);
    }
    rows.push({ name, s, cpu: child ? undefined : cpu, size: b.length, ...(note ? { note: note(b) } : {}) });
    return b;
  };
  const sha = (b: Buffer): string => createHash('sha256').update(b).digest('hex').slice(0, 12);

  const pakoSingle = await time('pako 3 gzip, single thread', (d) => Buffer.from(pakoGzip(d, { level: 6 })));
  const inline = await time('distill block gzip, inline (workers 0)', (d) => viaStream(d, 0), sha);
  await shutdownGzipWorkers();
  await time('distill block gzip, 1 worker', (d) => viaStream(d, 1), sha);
  await shutdownGzipWorkers();
  await time('distill block gzip, 2 workers', (d) => viaStream(d, 2), sha);
  await time('  same, 256 KiB blocks', (d) => viaStream(d, 2, 256 * 1024), sha);
  await time('  same, 4 MiB blocks', (d) => viaStream(d, 2, 4 * 1024 * 1024), sha);
  // The default level's reason: the smallest CPU whose output is no larger than GNU gzip -6's.
  for (const level of [4, 5, 6].filter((l) => l !== DEFAULT_LEVEL)) await time(`  same, level ${level} (inline)`, (d) => viaStream(d, 0, DEFAULT_BLOCK_SIZE, level), sha);
  await shutdownGzipWorkers();
  await time('node:zlib gzipSync, single thread', (d) => gzipSync(d, { level: 6 }));
  if (spawnSync('gzip', ['--version']).status === 0) await time('GNU gzip -n -6 (child process)', (d) => viaGnuGzip(d), undefined, true);
  // build --compression zstd: one frame, level 3, on the calling thread; and Debian's native zstd CLI.
  const ours = await time('distill zstd -3 (wasm, calling thread)', viaZstd, sha);
  if (spawnSync('zstd', ['--version']).status === 0) {
    await time('zstd -3 -T1 (Debian CLI, child process)', (d) => viaGnuGzip(d, ['zstd', '-3', '-T1', '-q', '-c']), (b) => `${sha(b)}${b.equals(ours) ? ' (= distill)' : ''}`, true);
  }

  const base = rows[0]!;
  lines.push(`  ${'method'.padEnd(45)} ${'wall'.padStart(8)} ${'MB/s'.padStart(6)} ${'×pako'.padStart(6)}  ${'CPU'.padStart(7)} ${'×pako'.padStart(6)}  size`);
  for (const r of rows) {
    const cpu = r.cpu === undefined ? `${'—'.padStart(7)} ${''.padStart(6)}` : `${r.cpu.toFixed(2).padStart(5)} s ${('×' + (base.cpu! / r.cpu).toFixed(2)).padStart(6)}`;
    lines.push(
      `  ${r.name.padEnd(45)} ${r.s.toFixed(2).padStart(6)} s ${(mb / r.s).toFixed(1).padStart(6)} ${('×' + (base.s / r.s).toFixed(2)).padStart(6)}  ${cpu}  ` +
        `${((100 * r.size) / data.length).toFixed(2)} %${r.note ? `  sha256 ${r.note}` : ''}`,
    );
  }

  lines.push(
    `  libdeflate (1 MiB independent blocks) vs pako (one stream): ` +
      `${(((inline.length - pakoSingle.length) / pakoSingle.length) * 100).toFixed(2)} % size`,
  );

  crc32(warm);
  const t0 = performance.now();
  crc32(data);
  const crcS = (performance.now() - t0) / 1000;
  lines.push(`  crc32 (slicing-by-8, JS) ${(mb / crcS).toFixed(0)} MB/s`);
  return lines;
}
