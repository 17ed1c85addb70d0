import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readFileSync,
  readlinkSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { TarWriter, type TarEntryHeader } from '../../src/layer/tar-writer.js';
import { tempDir } from '../helpers/tmp.js';

const hasTar = spawnSync('tar', ['--version']).stdout?.toString().includes('GNU tar') ?? false;
const NO_TAR = 'GNU tar is not installed';

interface Entry {
  h: TarEntryHeader;
  body?: string; // latin1-free text; files only
  stream?: boolean; // pass the body as a Readable in small chunks
}

const M = 1_234_567_890;
const root = { uid: 0, gid: 0, uname: 'root', gname: 'root', mtime: M, size: 0 };
const dir = (path: string, mode = 0o755): Entry => ({ h: { ...root, path, type: 'dir', mode } });
const file = (path: string, body: string, extra: Partial<TarEntryHeader> = {}, stream = false): Entry => ({
  h: { ...root, path, type: 'file', mode: 0o644, size: Buffer.byteLength(body), ...extra },
  body,
  stream,
});

const D99 = 'd'.repeat(99);
const E99 = 'e'.repeat(99);
const LONG300 = `${D99}/${E99}/${'f'.repeat(100)}`; // 300 bytes: needs pax
const SPLIT150 = `${'p'.repeat(120)}/${'q'.repeat(29)}`; // 150 bytes: ustar prefix + name
const LONG_TARGET = `../${'t'.repeat(147)}`; // 150 bytes: needs pax linkpath

/** Every kind of entry the writer supports, sorted as the writer requires. */
const CASES: Entry[] = [
  dir('a'),
  file('a/empty', ''),
  file('a/file.txt', 'hello\n', { mode: 0o640, uid: 1000, gid: 1001, uname: 'user', gname: 'grp' }),
  { h: { ...root, path: 'a/hard', type: 'hardlink', mode: 0o640, linkTarget: 'a/file.txt' } },
  { h: { ...root, path: 'a/link', type: 'symlink', mode: 0o777, linkTarget: 'file.txt' } },
  { h: { ...root, path: 'a/longlink', type: 'symlink', mode: 0o777, linkTarget: LONG_TARGET } },
  file('a/setuid', '#!/bin/sh\n', { mode: 0o4755 }),
  file('a/streamed', 'x'.repeat(70_000) + 'end', {}, true),
  file('a/sticky-old', '', { mode: 0o1777, mtime: 0 }),
  file('a/year2100', '512'.repeat(171).slice(0, 512), { mtime: 4_102_444_800 }),
  file('a/z513', 'y'.repeat(513)),
  file('bigid', 'ids\n', { uid: 3_000_000, gid: 4_000_000, uname: 'u'.repeat(40), gname: 'g'.repeat(40) }),
  dir(D99),
  dir(`${D99}/${E99}`),
  file(LONG300, 'long\n'),
  file('n'.repeat(100), 'exactly 100\n'),
  dir('p'.repeat(120)),
  file(SPLIT150, 'split\n'),
  file('x'.repeat(200), 'one long component\n'),
  dir('ünïcødé', 0o700),
  file('ünïcødé/文件.txt', 'unicode ✓\n', { mode: 0o600 }),
];

function sortEntries(entries: Entry[]): Entry[] {
  return [...entries].sort((a, b) => Buffer.compare(Buffer.from(a.h.path), Buffer.from(b.h.path)));
}

async function write(entries: Entry[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  const w = new TarWriter((c) => {
    chunks.push(Buffer.from(c));
  });
  for (const e of entries) {
    if (e.body === undefined) await w.add(e.h);
    else if (e.stream) {
      const b = Buffer.from(e.body);
      const parts: Buffer[] = [];
      for (let i = 0; i < b.length; i += 1000) parts.push(b.subarray(i, i + 1000));
      await w.add(e.h, Readable.from(parts));
    } else await w.add(e.h, Buffer.from(e.body));
  }
  await w.finish();
  return Buffer.concat(chunks);
}

function tmp(): string {
  return tempDir('distill-tar-');
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): { stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { env: { ...process.env, LC_ALL: 'C.UTF-8', TZ: 'UTC', ...env }, encoding: 'utf8' });
  assert.equal(r.status, 0, `${cmd} ${args.join(' ')} failed: ${r.stderr}`);
  return { stdout: r.stdout, stderr: r.stderr };
}

function modeString(e: Entry): string {
  const t = { file: '-', dir: 'd', symlink: 'l', hardlink: 'h' }[e.h.type];
  const m = e.h.mode;
  const rwx = (bits: number, special: boolean, s: string): string =>
    (bits & 4 ? 'r' : '-') + (bits & 2 ? 'w' : '-') + (special ? (bits & 1 ? s : s.toUpperCase()) : bits & 1 ? 'x' : '-');
  return t + rwx(m >> 6, (m & 0o4000) !== 0, 's') + rwx(m >> 3, (m & 0o2000) !== 0, 's') + rwx(m, (m & 0o1000) !== 0, 't');
}

test('output is exactly GNU tar --format=ustar (less its 10240-byte record padding)', { skip: !hasTar && NO_TAR }, async () => {
  // The same tree on disk, archived by GNU tar with every host-dependent field pinned.
  const d = tmp();
  const P = 'p'.repeat(90);
  const SPLIT = `${P}/${'q'.repeat(40)}`; // 'd/' + SPLIT is 133 bytes: ustar prefix + name
  try {
    const r = join(d, 'root');
    mkdirSync(join(r, 'd', P), { recursive: true });
    writeFileSync(join(r, 'd', 'f'), 'hi\n');
    writeFileSync(join(r, 'd', 'empty'), '');
    writeFileSync(join(r, 'd', SPLIT), 'split\n');
    linkSync(join(r, 'd', 'f'), join(r, 'd', 'h'));
    symlinkSync('f', join(r, 'd', 'l'));
    for (const [p, m] of [['d', 0o755], ['d/f', 0o640], ['d/empty', 0o600], [`d/${P}`, 0o711], [`d/${SPLIT}`, 0o644]] as const) {
      chmodSync(join(r, p), m);
    }
    const gnu = join(d, 'gnu.tar');
    run('tar', ['--format=ustar', '--numeric-owner', '--owner=0', '--group=0', '--mtime=@1700000000', '--sort=name', '-C', r, '-cf', gnu, 'd']);
    const base = { uid: 0, gid: 0, uname: '', gname: '', mtime: 1_700_000_000, size: 0 };
    const ours = await write([
      { h: { ...base, path: 'd', type: 'dir', mode: 0o755 } },
      { h: { ...base, path: 'd/empty', type: 'file', mode: 0o600 }, body: '' },
      { h: { ...base, path: 'd/f', type: 'file', mode: 0o640, size: 3 }, body: 'hi\n' },
      { h: { ...base, path: 'd/h', type: 'hardlink', mode: 0o640, linkTarget: 'd/f' } },
      { h: { ...base, path: 'd/l', type: 'symlink', mode: 0o777, linkTarget: 'f' } },
      { h: { ...base, path: `d/${P}`, type: 'dir', mode: 0o711 } },
      { h: { ...base, path: `d/${SPLIT}`, type: 'file', mode: 0o644, size: 6 }, body: 'split\n' },
    ]);
    const theirs = readFileSync(gnu);
    assert.equal(theirs.length % 10240, 0);
    assert.ok(ours.length < theirs.length);
    assert.ok(ours.equals(theirs.subarray(0, ours.length)), 'header bytes differ from GNU tar');
    assert.equal(ours.subarray(7 * 512 + 345, 7 * 512 + 345 + 92).toString(), `d/${P}`, 'the long name used the prefix field');
    assert.ok(theirs.subarray(ours.length).every((b) => b === 0));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('GNU tar lists every case with the right names, modes, owners, sizes, mtimes and link targets', { skip: !hasTar && NO_TAR }, async () => {
  const entries = sortEntries(CASES);
  const d = tmp();
  try {
    const t = join(d, 'x.tar');
    writeFileSync(t, await write(entries));
    const { stdout, stderr } = run('tar', ['--numeric-owner', '--full-time', '--quoting-style=literal', '-tvf', t]);
    assert.equal(stderr, '', 'no warnings (e.g. about the missing record padding)');
    const lines = stdout.trimEnd().split('\n');
    assert.equal(lines.length, entries.length);
    entries.forEach((e, i) => {
      const m = /^(\S+) (\d+)\/(\d+) +(\d+) (\S+ \S+) (.*)$/.exec(lines[i]!);
      assert.ok(m, lines[i]);
      const name = e.h.type === 'dir' ? `${e.h.path}/` : e.h.path;
      const tail =
        e.h.type === 'symlink' ? `${name} -> ${e.h.linkTarget}` : e.h.type === 'hardlink' ? `${name} link to ${e.h.linkTarget}` : name;
      assert.equal(m[6], tail);
      assert.equal(m[1], modeString(e), name);
      assert.equal(Number(m[2]), e.h.uid, name);
      assert.equal(Number(m[3]), e.h.gid, name);
      assert.equal(Number(m[4]), e.h.size, name);
      assert.equal(m[5], new Date(e.h.mtime * 1000).toISOString().replace('T', ' ').slice(0, 19), name);
    });
    // Names come from the headers, never the host's user database.
    const named = run('tar', ['--full-time', '--quoting-style=literal', '-tvf', t]).stdout;
    assert.match(named, new RegExp(`^-rw-r----- user/grp .* a/file.txt$`, 'm'));
    assert.match(named, new RegExp(`^-rw-r--r-- ${'u'.repeat(40)}/${'g'.repeat(40)} .* bigid$`, 'm'));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('GNU tar extracts every case: contents, modes, mtimes, symlinks, hardlinks, long and unicode names', { skip: !hasTar && NO_TAR }, async () => {
  const entries = sortEntries(CASES);
  const d = tmp();
  try {
    const t = join(d, 'x.tar');
    const out = join(d, 'out');
    mkdirSync(out);
    writeFileSync(t, await write(entries));
    run('tar', ['--no-same-owner', '-p', '-xf', t, '-C', out]);
    const inode = new Map<string, number>();
    for (const e of entries) {
      const p = join(out, e.h.path);
      const st = lstatSync(p);
      switch (e.h.type) {
        case 'dir':
          assert.ok(st.isDirectory(), e.h.path);
          break;
        case 'symlink':
          assert.ok(st.isSymbolicLink(), e.h.path);
          assert.equal(readlinkSync(p), e.h.linkTarget);
          continue; // a symlink's own mode and mtime are not restored by tar
        case 'hardlink':
          assert.equal(st.ino, inode.get(e.h.linkTarget!), `${e.h.path} is the same inode as ${e.h.linkTarget}`);
          continue;
        case 'file':
          assert.ok(st.isFile(), e.h.path);
          assert.equal(readFileSync(p, 'utf8'), e.body);
          inode.set(e.h.path, st.ino);
          break;
      }
      assert.equal(st.mode & 0o7777, e.h.mode, `mode of ${e.h.path}`);
      assert.equal(st.mtimeMs / 1000, e.h.mtime, `mtime of ${e.h.path}`);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('tar-stream (a second, independent reader) reads every header the same way', async () => {
  const entries = sortEntries(CASES);
  const bytes = await write(entries);
  const seen: Array<Record<string, unknown>> = [];
  await new Promise<void>((resolve, reject) => {
    const x = extract();
    x.on('entry', (h, stream, next) => {
      const parts: Buffer[] = [];
      stream.on('data', (c: unknown) => {
        parts.push(c as Buffer);
      });
      stream.on('end', () => {
        // tar-stream applies pax path, linkpath and size itself and leaves the other records in `pax`
        const pax = (h.pax ?? {}) as Record<string, string>;
        const ids = {
          ...(pax['uid'] ? { uid: Number(pax['uid']) } : {}),
          ...(pax['gid'] ? { gid: Number(pax['gid']) } : {}),
          ...(pax['uname'] ? { uname: pax['uname'] } : {}),
          ...(pax['gname'] ? { gname: pax['gname'] } : {}),
        };
        seen.push({ ...h, ...ids, body: Buffer.concat(parts).toString('utf8') });
        next();
      });
    });
    x.on('finish', resolve).on('error', reject);
    x.end(bytes);
  });
  assert.equal(seen.length, entries.length);
  entries.forEach((e, i) => {
    const h = seen[i]!;
    const type = { file: 'file', dir: 'directory', symlink: 'symlink', hardlink: 'link' }[e.h.type];
    assert.equal(h['name'], e.h.type === 'dir' ? `${e.h.path}/` : e.h.path);
    assert.equal(h['type'], type);
    assert.equal(h['mode'], e.h.mode);
    assert.equal(h['uid'], e.h.uid);
    assert.equal(h['gid'], e.h.gid);
    assert.equal(h['uname'], e.h.uname);
    assert.equal(h['gname'], e.h.gname);
    assert.equal(h['size'], e.h.size);
    assert.equal((h['mtime'] as Date).getTime(), e.h.mtime * 1000);
    assert.equal(h['linkname'] ?? undefined, e.h.linkTarget);
    assert.equal(h['body'], e.body ?? '');
  });
});

test('layout: pax only where needed, deterministic pax header, two zero blocks and no record padding', async () => {
  const plain = await write([file('a', 'abc')]);
  assert.equal(plain.length, 512 + 512 + 1024, 'header, padded body, end marker: nothing more');
  assert.ok(plain.subarray(1024).every((b) => b === 0));
  assert.equal(plain.subarray(156, 157).toString(), '0');
  assert.equal(plain.subarray(257, 265).toString('latin1'), 'ustar\x0000');
  assert.equal(plain.subarray(100, 108).toString('latin1'), '0000644\0');
  assert.equal(plain.subarray(124, 136).toString('latin1'), '00000000003\0');
  assert.equal(plain.subarray(329, 345).toString('latin1'), '0000000\x000000000\0');
  assert.match(plain.subarray(148, 156).toString('latin1'), /^[0-7]{6}\0 $/);

  const long = await write([file(LONG300, 'z')]);
  assert.equal(long.subarray(156, 157).toString(), 'x');
  assert.equal(long.subarray(0, 100).toString('latin1').replace(/\0+$/, ''), `PaxHeaders/${'f'.repeat(89)}`);
  assert.equal(long.subarray(100, 108).toString('latin1'), '0000644\0');
  assert.equal(long.subarray(136, 148).toString('latin1'), `${M.toString(8).padStart(11, '0')}\0`);
  const rec = `path=${LONG300}\n`;
  const len = rec.length + 1 + String(rec.length + 5).length;
  assert.equal(long.subarray(512, 512 + len).toString('utf8'), `${len} ${rec}`);
  assert.equal(long.subarray(1024 + 156, 1024 + 157).toString(), '0');

  // size ≥ 8 GiB: a pax size record, zeros in the ustar field. (Only the headers are written here.)
  const huge = 8 * 1024 ** 3;
  const got: Buffer[] = [];
  const w = new TarWriter((c) => {
    got.push(Buffer.from(c));
    if (Buffer.concat(got).length >= 1536) throw new Error('enough');
  });
  const body = new Readable({ read() { this.push(Buffer.alloc(65536)); } });
  await assert.rejects(w.add({ ...root, path: 'huge', type: 'file', mode: 0o644, size: huge }, body), /enough/);
  const head = Buffer.concat(got);
  assert.equal(head.subarray(156, 157).toString(), 'x');
  assert.match(head.subarray(512, 1024).toString('latin1'), new RegExp(`^\\d+ size=${huge}\\n\\0+$`));
  assert.equal(head.subarray(1024 + 124, 1024 + 136).toString('latin1'), '00000000000\0');
});

test('identical input gives identical bytes', async () => {
  const a = await write(sortEntries(CASES));
  const b = await write(sortEntries(CASES));
  assert.ok(a.equals(b));
});

test('output does not depend on TZ, umask or locale (writer run in child processes)', async () => {
  const entries = sortEntries(CASES);
  const expected = await write(entries);
  const writerUrl = new URL('../../src/layer/tar-writer.js', import.meta.url).href;
  const script = `
    import { TarWriter } from ${JSON.stringify(writerUrl)};
    import { Readable } from 'node:stream';
    import { readFileSync } from 'node:fs';
    const entries = JSON.parse(readFileSync(process.argv[2], 'utf8'));
    const out = [];
    const w = new TarWriter((c) => { out.push(Buffer.from(c)); });
    for (const e of entries) {
      if (e.body === undefined) await w.add(e.h);
      else if (e.stream) await w.add(e.h, Readable.from([Buffer.from(e.body)]));
      else await w.add(e.h, Buffer.from(e.body));
    }
    await w.finish();
    const env = [process.umask().toString(8), new Date(2024, 0, 1).getTimezoneOffset(), Intl.DateTimeFormat().resolvedOptions().timeZone];
    process.stdout.write(env.join(' ') + ' ' + Buffer.concat(out).toString('base64'));
  `;
  const dir = tmp();
  try {
    const file = join(dir, 'child.mjs');
    writeFileSync(file, script);
    writeFileSync(join(dir, 'entries.json'), JSON.stringify(entries));
    const runs = [['America/New_York', 300, '000', 'C'], ['Pacific/Chatham', -825, '077', 'C.UTF-8'], ['UTC', 0, '022', 'POSIX']] as const;
    for (const [tz, offset, umask, lang] of runs) {
      const r = spawnSync('sh', ['-c', `umask ${umask} && exec "$0" "$1" "$2"`, process.execPath, file, join(dir, 'entries.json')], {
        env: { ...process.env, TZ: tz, LANG: lang, LC_ALL: lang },
        encoding: 'utf8',
        maxBuffer: 64 * 1024 * 1024,
      });
      assert.equal(r.status, 0, r.stderr);
      const [gotUmask, gotOffset, , tarB64] = r.stdout.split(' ');
      assert.equal(Number.parseInt(gotUmask!, 8), Number.parseInt(umask, 8), 'the child really ran with that umask');
      assert.equal(Number(gotOffset), offset, 'and in that time zone');
      assert.ok(Buffer.from(tarB64!, 'base64').equals(expected), `TZ=${tz} umask ${umask} LANG=${lang}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refuses out-of-order, duplicate and unnormalised paths', async () => {
  const bad = async (entries: TarEntryHeader[], re: RegExp): Promise<void> => {
    const w = new TarWriter(() => {});
    await assert.rejects(
      (async () => {
        for (const h of entries) await w.add(h, h.type === 'file' ? Buffer.alloc(h.size) : undefined);
      })(),
      (e: any) => e.code === 'LAYER_IO' && re.test(e.message),
    );
  };
  const f = (path: string): TarEntryHeader => ({ ...root, path, type: 'file', mode: 0o644 });
  await bad([f('b'), f('a')], /out of order/);
  await bad([f('a'), f('a')], /out of order/);
  await bad([f('a/b'), f('a')], /out of order/);
  await bad([f('a/b'), f('a-b')], /out of order/); // '-' (0x2d) sorts before '/' (0x2f)
  for (const p of ['', '/abs', 'trailing/', 'a//b', './a', 'a/./b', 'a/../b', '..', 'nul\0']) {
    await bad([f(p)], /path|NUL/);
  }
  await bad([f('\ud800lone')], /surrogate/);
});

test('refuses headers it cannot write exactly as asked', async () => {
  const one = async (h: TarEntryHeader, body: Buffer | Readable | undefined, re: RegExp): Promise<void> => {
    const w = new TarWriter(() => {});
    await assert.rejects(w.add(h, body), (e: any) => e.code === 'LAYER_IO' && re.test(e.message));
    // and it stays refused
    await assert.rejects(w.add({ ...root, path: 'zzz', type: 'dir', mode: 0o755 }), (e: any) => e.code === 'LAYER_IO');
  };
  const f: TarEntryHeader = { ...root, path: 'f', type: 'file', mode: 0o644, size: 3 };
  await one({ ...f, mode: 0o100644 }, Buffer.from('abc'), /mode/);
  await one({ ...f, mode: -1 }, Buffer.from('abc'), /mode/);
  await one({ ...f, uid: 1.5 }, Buffer.from('abc'), /uid/);
  await one({ ...f, mtime: -1 }, Buffer.from('abc'), /mtime/);
  await one({ ...f, mtime: 1.5 }, Buffer.from('abc'), /mtime/);
  await one(f, Buffer.from('abcd'), /4 bytes/);
  await one(f, undefined, /no body/);
  await one(f, Readable.from([Buffer.from('ab')]), /2 bytes/);
  await one(f, Readable.from([Buffer.from('ab'), Buffer.from('cd')]), /more than/);
  await one({ ...f, size: 0 }, Readable.from([Buffer.from('x')]), /more than/);
  await one({ ...root, path: 'd', type: 'dir', mode: 0o755, size: 1 }, undefined, /size 0/);
  await one({ ...root, path: 'd', type: 'dir', mode: 0o755 }, Buffer.alloc(0), /body/);
  await one({ ...root, path: 'l', type: 'symlink', mode: 0o777 }, undefined, /linkTarget/);
  await one({ ...root, path: 'h', type: 'hardlink', mode: 0o644, linkTarget: 'nowhere' }, undefined, /earlier file/);
  await one({ ...root, path: 'd', type: 'dir', mode: 0o755, linkTarget: 'x' }, undefined, /linkTarget/);
  await one({ ...root, path: 'c', type: 'chardev' as 'file', mode: 0o644 }, undefined, /type/);
});

test('refuses use after finish and overlapping calls', async () => {
  const w = new TarWriter(() => new Promise((r) => setTimeout(r, 5)));
  const first = w.add({ ...root, path: 'a', type: 'dir', mode: 0o755 });
  await assert.rejects(w.add({ ...root, path: 'b', type: 'dir', mode: 0o755 }), /previous call/);
  await first; // the refused call changes nothing
  await w.add({ ...root, path: 'b', type: 'dir', mode: 0o755 });
  const v = new TarWriter(() => {});
  await v.finish();
  await assert.rejects(v.add({ ...root, path: 'a', type: 'dir', mode: 0o755 }), /already finished/);
  assert.equal(v.bytesWritten, 1024);
});

test('a file body is read from its file and must have exactly the header\'s size', async () => {
  const d = tmp();
  try {
    // 65,024 bytes after a 512-byte header end exactly at the end of the first 64 KiB region the
    // writer fills (the read cannot ask for one byte more there); 1,000 bytes leave room after them.
    const cases = [65_024, 1000, 0, 200_000];
    const data = (n: number): Buffer => Buffer.alloc(n, `${n}:`);
    for (const n of cases) writeFileSync(join(d, `ok${n}`), data(n));
    for (const n of cases) {
      const h: TarEntryHeader = { ...root, path: 'f', type: 'file', mode: 0o644, size: n };
      const chunks: Buffer[] = [];
      const w = new TarWriter((c) => {
        chunks.push(Buffer.from(c));
      });
      await w.add(h, { file: join(d, `ok${n}`) });
      await w.finish();
      const expected: Buffer[] = [];
      const v = new TarWriter((c) => {
        expected.push(Buffer.from(c));
      });
      await v.add(h, data(n));
      await v.finish();
      assert.ok(Buffer.concat(chunks).equals(Buffer.concat(expected)), `${n} bytes from a file`);
      // one byte more or less on disk than the header says is refused
      for (const [disk, re] of [[n + 1, /more than/], ...(n > 0 ? [[n - 1, new RegExp(`has ${n - 1} bytes, the header says ${n}`)]] : [])] as Array<[number, RegExp]>) {
        writeFileSync(join(d, 'bad'), data(disk));
        const x = new TarWriter(() => {});
        await assert.rejects(x.add(h, { file: join(d, 'bad') }), (e: any) => e.code === 'LAYER_IO' && re.test(e.message), `${disk} bytes on disk, ${n} in the header`);
      }
    }
    const x = new TarWriter(() => {});
    await assert.rejects(x.add({ ...root, path: 'f', type: 'file', mode: 0o644, size: 1 }, { file: join(d, 'missing') }), (e: any) => e.code === 'LAYER_IO' && /cannot read the body/.test(e.message));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
