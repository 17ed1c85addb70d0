// The shared `xz -dc` processes when things go wrong outside the members: a process killed from
// outside mid-member, and members whose decoded bytes look like the separator that cuts members apart.
// What a user relies on: the member being decoded fails with a coded error or comes out whole, every
// member queued behind it comes out exact, and the pool goes on serving.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import { test } from 'node:test';
import { DistillError } from '../../src/errors.js';
import { SEPARATOR_ZEROS, separatorStream, xzDecodedSize } from '../../src/compress/xz-format.js';
import { XzPool } from '../../src/compress/xz-pool.js';

const haveXz = spawnSync('xz', ['--version']).status === 0 && spawnSync('pgrep', ['--version']).status === 0;
const skip = !haveXz && 'xz or pgrep is not installed';
const xz = (data: Buffer): Buffer => spawnSync('xz', ['-c', '-0'], { input: data, maxBuffer: 1 << 28 }).stdout as Buffer;
const noise = (n: number, seed = 'n'): Buffer => {
  const parts: Buffer[] = [];
  for (let i = 0; parts.length * 32 < n; i++) parts.push(createHash('sha256').update(`${seed}${i}`).digest());
  return Buffer.concat(parts).subarray(0, n);
};

async function collect(r: Readable): Promise<Buffer> {
  const out: Buffer[] = [];
  for await (const c of r) out.push(c as Buffer);
  return Buffer.concat(out);
}

/** This process's own xz children (started by the pool under test). */
function xzChildren(): number[] {
  const r = spawnSync('pgrep', ['-P', String(process.pid), '-x', 'xz'], { encoding: 'utf8' });
  return r.stdout.split('\n').filter(Boolean).map(Number);
}

function decode(pool: XzPool, what: string, member: Buffer): Readable {
  const size = xzDecodedSize(member);
  assert.notEqual(size, undefined, what);
  return pool.decode(what, member, size!, () => assert.fail(`${what}: no fallback`));
}

test('an xz process killed from outside mid-member: that member fails (DECOMPRESS_FAILED) or comes out whole, the ones behind it exact, and the pool goes on', { skip, timeout: 30_000 }, async () => {
  const pool = new XzPool(1);
  const a = noise(2_000_000, 'a');
  const b = noise(300_000, 'b');
  const ra = decode(pool, 'a', xz(a));
  const rb = collect(decode(pool, 'b', xz(b)));
  const it = ra[Symbol.asyncIterator]();
  const first = await it.next(); // a is being decoded, its reader holds it back
  assert.ok(!first.done);
  const pids = xzChildren();
  assert.equal(pids.length, 1, 'one process');
  process.kill(pids[0]!, 'SIGKILL');
  const rest: Buffer[] = [first.value as Buffer];
  const outcome = await (async () => {
    for (;;) {
      const r = await it.next();
      if (r.done) return 'whole';
      rest.push(r.value as Buffer);
    }
  })().catch((e: unknown) => e);
  if (outcome === 'whole') assert.ok(Buffer.concat(rest).equals(a), 'a, whole and exact');
  else assert.ok(outcome instanceof DistillError && outcome.code === 'DECOMPRESS_FAILED' && /^a: xz stopped \(SIGKILL\)/.test(outcome.message), String(outcome));
  assert.ok((await rb).equals(b), 'b, queued behind a, comes out exact');
  const c = noise(50_000, 'c');
  assert.ok((await collect(decode(pool, 'c', xz(c)))).equals(c), 'the pool serves the next member');
});

test('members whose decoded bytes are, or end like, a separator come out exact (the pool counts bytes, it does not search for markers)', { skip, timeout: 30_000 }, async () => {
  const pool = new XzPool(1);
  const marker = randomBytes(32);
  const lookalikes = [
    Buffer.concat([marker, Buffer.alloc(SEPARATOR_ZEROS)]), // what a separator decodes to
    Buffer.concat([noise(10_000), marker, Buffer.alloc(SEPARATOR_ZEROS), noise(100)]),
    Buffer.alloc(SEPARATOR_ZEROS * 3), // zeros, as the separator's tail
    Buffer.alloc(0),
  ];
  // A member that is itself a separator Stream, and one that is two of them.
  const asMembers: [string, Buffer, Buffer][] = [
    ...lookalikes.map((d, i): [string, Buffer, Buffer] => [`lookalike ${i}`, xz(d), d]),
    ['a separator Stream', separatorStream(marker), Buffer.concat([marker, Buffer.alloc(SEPARATOR_ZEROS)])],
    ['two separator Streams', Buffer.concat([separatorStream(marker), separatorStream(marker)]), Buffer.concat([marker, Buffer.alloc(SEPARATOR_ZEROS), marker, Buffer.alloc(SEPARATOR_ZEROS)])],
  ];
  const outs = asMembers.map(([what, member]) => collect(decode(pool, what, member)));
  const got = await Promise.all(outs);
  asMembers.forEach(([what, , want], i) => assert.ok(got[i]!.equals(want), what));
});
