// One content store, one atomic-write helper, one tar reader (issue 10, item 1) — checked on the
// source, so a new writer or reader cannot quietly grow its own copy: temp + rename lives in
// cas/store.ts and util/atomic-write.ts, and tars are parsed only by tar/reader.ts's own parser
// (tar-stream is a devDependency: tests craft archives with it, the library never imports it).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { relative } from 'node:path';
import { code, files, src } from '../helpers/source-code.js';

/**
 * Where a rename of a file into place may appear. Besides the two helpers: output staging renames whole
 * directories (its files are written and fsynced inside them), and the layer writer hashes as it writes
 * and hands its file to the store's adopt().
 */
const RENAMERS = new Set(['cas/store.ts', 'util/atomic-write.ts', 'sinks/staged-output.ts', 'layer/write-layer.ts']);

test('temp + rename is written once: the content store and the atomic-write helper', () => {
  for (const f of files(src)) {
    const rel = relative(src, f);
    if (RENAMERS.has(rel)) continue;
    const renames = /import\s*\{[^}]*\brename(Sync)?\b[^}]*\}\s*from\s*['"](node:)?fs(\/promises)?['"]/.test(code(f)) || /\bfs\w*\.rename(Sync)?\s*\(/.test(code(f));
    assert.ok(!renames, `${rel} renames a file itself; use ContentStore.putStream (blobs) or writeAtomic (other files)`);
  }
});

test('tar archives are read by the one hardened reader; the library never imports tar-stream (a devDependency)', () => {
  for (const f of files(src)) {
    const rel = relative(src, f);
    assert.ok(!/from\s*['"]tar-stream['"]|import\(\s*['"]tar-stream['"]/.test(code(f)), `${rel} imports tar-stream, which is only a devDependency; use readTar (tar/reader.ts) or readLayer (oci/read-layer.ts)`);
  }
});
