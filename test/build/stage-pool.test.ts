// Staging in the worker thread (src/build/stage-pool.ts, stage-worker.ts) is the in-process stagePackage
// moved: the same entries and bodies, the same DistillErrors (code, message, hint, cause), the same
// warnings, and one in-memory budget that the worker never overspends.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { stageInWorker } from '../../src/build/stage-pool.js';
import { stageOptionsOf, stagePackage, type StagedPackage, type StageRules } from '../../src/build/stage.js';
import { DistillError } from '../../src/errors.js';
import type { LockedPackage } from '../../src/lock/lockfile.js';
import { craftDeb, craftTar, file, dir, packageControl, type CraftPackage } from '../helpers/craft-deb.js';
import { lockCrafted, staging, type Staging } from '../helpers/stage-debs.js';

const IMAGE: StageRules = { kind: 'image', paths: { keep: [], drop: [], setid: [] } };

const PKG: CraftPackage = {
  name: 'hello',
  files: {
    'usr/bin/hello': Buffer.alloc(3000, 7),
    'usr/lib/hello/small.txt': 'small\n',
    'usr/lib/hello/big.bin': Buffer.alloc(1024 * 1024 + 5, 1), // over 1 MiB: a staging file
    'usr/share/doc/hello/copyright': 'GPL\n',
    'usr/share/man/man1/hello.1': 'dropped by the default rules\n',
    'usr/share/ca-certificates/test/a.crt': 'read by a generator\n',
    'usr/bin/su': { content: 'setuid\n', mode: 0o4755 },
  },
  symlinks: { 'usr/bin/hi': 'hello' },
};

/** What a staged package is, independent of where its bodies live. */
function summary(s: StagedPackage): unknown {
  const bytes = (b: { kind: 'bytes'; data: Buffer } | { kind: 'staged'; path: string }): Buffer => (b.kind === 'bytes' ? b.data : readFileSync(b.path));
  return {
    control: s.control.text,
    fields: s.control.fields.names.map((n) => [n, s.control.fields.get(n)]),
    md5sums: s.control.md5sums,
    entries: s.entries.map((e) => {
      const { body, ...rest } = e;
      if (body === undefined) return rest;
      const data = bytes(body);
      assert.equal(createHash('sha256').update(data).digest('hex'), body.sha256, `${e.path}: the body's sha256`);
      return { ...rest, kind: body.kind, sha256: body.sha256, length: data.length };
    }),
    wanted: [...s.wanted].map(([p, b]) => [p, bytes(b).toString()]),
  };
}

async function both(s: Staging, pkg: LockedPackage, rules = IMAGE): Promise<{ local: StagedPackage; pooled: StagedPackage; warnings: [string[], string[]] }> {
  const warnings: [string[], string[]] = [[], []];
  const memory = () => ({ budget: 64 * 1024 * 1024, used: 0 });
  const local = await stagePackage(pkg, { store: s.store, stageDir: s.stageDir, ...stageOptionsOf(rules), memory: memory(), onWarning: (m) => warnings[0].push(m) });
  const pooled = await stageInWorker(pkg, { store: s.store, stageDir: s.stageDir, rules, memory: memory(), onWarning: (m) => warnings[1].push(m) });
  return { local, pooled, warnings };
}

test('a package staged in the worker is the package staged in process: entries, bodies, control, wanted files, warnings', async () => {
  const s = staging();
  const pkg = await lockCrafted(s, PKG);
  const { local, pooled, warnings } = await both(s, pkg);
  assert.equal(pooled.pkg, pkg, 'the caller gets its own LockedPackage back');
  assert.deepEqual(summary(pooled), summary(local));
  assert.deepEqual(warnings[1], warnings[0]);
  assert.match(warnings[1].join('\n'), /setuid bit removed/);
  const byPath = new Map(pooled.entries.map((e) => [e.path, e]));
  assert.equal(byPath.get('usr/lib/hello/big.bin')?.body?.kind, 'staged', 'over 1 MiB: a staging file');
  const small = byPath.get('usr/lib/hello/small.txt')?.body;
  assert.ok(small?.kind === 'bytes' && Buffer.isBuffer(small.data), 'small bodies arrive as Buffers');
  assert.equal(small.data.toString(), 'small\n');
  assert.ok(!byPath.has('usr/share/man/man1/hello.1'), 'the path rules ran in the worker');
  // A borrowed package's rules cross too: only its globs and its copyright (and directories, which
  // assembly drops), no /usr/share/doc link rule.
  const borrowed = await both(s, pkg, { kind: 'borrow', package: 'hello', globs: ['usr/bin/hello'] });
  assert.deepEqual(summary(borrowed.pooled), summary(borrowed.local));
  assert.deepEqual(borrowed.pooled.entries.filter((e) => e.type !== 'dir').map((e) => e.path).sort(), ['usr/bin/hello', 'usr/share/doc/hello/copyright']);
});

/** The error a promise rejects with. */
async function failure(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  assert.fail('expected a failure');
}

function sameError(pooled: Error, local: Error): void {
  assert.ok(pooled instanceof DistillError && local instanceof DistillError);
  assert.equal(pooled.code, local.code);
  assert.equal(pooled.message, local.message);
  assert.equal(pooled.hint, local.hint);
  const cause = (e: Error) => (e.cause instanceof Error ? e.cause.message : undefined);
  assert.equal(cause(pooled), cause(local));
}

test('errors come back from the worker as the same DistillError: code, message, hint, cause', async () => {
  const s = staging();
  // The lock names another version than the .deb's control file.
  const honest = await lockCrafted(s, { name: 'liar', files: { 'usr/bin/liar': 'x' } });
  const lying: LockedPackage = { ...honest, version: '9.9-9' };
  sameError(await failure(stageInWorker(lying, { store: s.store, stageDir: s.stageDir, rules: IMAGE })), await failure(stagePackage(lying, { store: s.store, stageDir: s.stageDir, ...stageOptionsOf(IMAGE) })));
  // A corrupt xz data member: DEB_MALFORMED wrapping the decoder's DECOMPRESS_FAILED.
  const control = packageControl({ name: 'broken' });
  const bytes = await craftDeb({ control, entries: [dir('./'), file('./a', 'a')], dataCompression: 'xz', dataMember: Buffer.from('\xfd7zXZ\0 definitely not xz', 'latin1') });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await s.store.put({ sha256, size: bytes.length, what: 'broken' }, Readable.from([bytes]));
  const broken: LockedPackage = { name: 'broken', version: '1.0-1', architecture: 'amd64', source: 'broken', sourceVersion: '1.0-1', archive: 'crafted', filename: 'pool/broken_1.0-1_amd64.deb', size: bytes.length, sha256, depends: [] };
  const pooled = await failure(stageInWorker(broken, { store: s.store, stageDir: s.stageDir, rules: IMAGE }));
  sameError(pooled, await failure(stagePackage(broken, { store: s.store, stageDir: s.stageDir, ...stageOptionsOf(IMAGE) })));
  assert.equal((pooled as DistillError).code, 'DEB_MALFORMED');
  // The worker still serves the next package after a failure.
  assert.ok((await stageInWorker(honest, { store: s.store, stageDir: s.stageDir, rules: IMAGE })).entries.length > 0);
});

test('the in-memory budget is shared with the worker and never overspent', async () => {
  const s = staging();
  const files: Record<string, Buffer> = {};
  for (let i = 0; i < 8; i++) files[`usr/lib/data/f${i}`] = Buffer.alloc(100_000, i);
  const pkgs = await Promise.all(['one', 'two'].map((name) => lockCrafted(s, { name, files })));
  const memory = { budget: 500_000, used: 50_000 }; // some of it spent elsewhere already
  const staged = await Promise.all(pkgs.map((p) => stageInWorker(p, { store: s.store, stageDir: s.stageDir, rules: IMAGE, memory })));
  const inMemory = staged.flatMap((p) => p.entries).filter((e) => e.body?.kind === 'bytes' && e.size > 0);
  assert.equal(inMemory.length, 4, '450,000 bytes left: four bodies of 100,000 in memory, the rest to disk');
  assert.equal(memory.used, 450_000);
  for (const p of staged) for (const e of p.entries) if (e.type === 'file' && e.size > 0) assert.ok(e.body, `${e.path} has a body`);
});

test('a package that fails half-way through a file staged to disk leaves no file descriptor open', async (t) => {
  if (!existsSync('/proc/self/fd')) return t.skip('no /proc/self/fd on this system');
  const s = staging();
  const control = packageControl({ name: 'cut' });
  const tar = await craftTar([{ header: { name: './', type: 'directory', mode: 0o755 } }, { header: { name: './big', mode: 0o644 }, body: Buffer.alloc(3_000_000, 5) }]);
  const bytes = await craftDeb({ control, entries: [dir('./')], dataCompression: 'none', dataMember: tar.subarray(0, 2_000_000) });
  const sha256 = createHash('sha256').update(bytes).digest('hex');
  await s.store.put({ sha256, size: bytes.length, what: 'cut' }, Readable.from([bytes]));
  const cut: LockedPackage = { name: 'cut', version: '1.0-1', architecture: 'amd64', source: 'cut', sourceVersion: '1.0-1', archive: 'crafted', filename: 'pool/cut_1.0-1_amd64.deb', size: bytes.length, sha256, depends: [] };
  const before = readdirSync('/proc/self/fd').length;
  const e = await failure(stagePackage(cut, { store: s.store, stageDir: s.stageDir, ...stageOptionsOf(IMAGE) }));
  assert.equal((e as DistillError).code, 'DEB_MALFORMED');
  assert.ok(readdirSync(s.stageDir).length > 0, 'the file was being staged to disk when the package failed');
  // The .deb's own stream closes asynchronously after the failure.
  for (let i = 0; i < 50 && readdirSync('/proc/self/fd').length > before; i++) await new Promise((r) => setTimeout(r, 10));
  const open = readdirSync('/proc/self/fd').map((fd) => { try { return readlinkSync(`/proc/self/fd/${fd}`); } catch { return ''; } });
  assert.ok(!open.some((f) => f.startsWith(s.stageDir)), `a staging file is still open: ${open.join(' ')}`);
  assert.equal(open.length, before);
});
