// Downloads over real HTTP on 127.0.0.1: transient failures (503 with Retry-After, a connection reset
// mid-body, 429) are retried and the blob still lands verified; permanent ones (404) are not retried.
// Every server here is bounded: it serves a fixed script of responses and is closed by the test.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import { ContentStore } from '../../src/cas/store.js';
import { fetchBlob } from '../../src/cas/fetch.js';
import { sha256Hex } from '../../src/digest.js';
import type { ProgressEvent } from '../../src/events.js';
import { tempDir } from '../helpers/tmp.js';

const body = Buffer.alloc(600_000, 7);
for (let i = 0; i < body.length; i += 997) body[i] = i % 251;
const expected = { size: body.length, sha256: sha256Hex(body), what: 'pool/x.deb' };
const fast = { attempts: 4, baseDelayMs: 10, maxDelayMs: 1500 };

async function serve(script: ((req: IncomingMessage, res: ServerResponse) => void)[]) {
  let i = 0;
  const server = createServer((req, res) => {
    const step = script[Math.min(i++, script.length - 1)]!;
    step(req, res);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/pool/x.deb`;
  return { url, requests: () => i, close: () => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()); }) };
}

const ok = (_: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-length': body.length });
  res.end(body);
};

test('503 with Retry-After, then a reset mid-body, then success: the blob lands verified', async () => {
  const srv = await serve([
    (_, res) => {
      res.writeHead(503, { 'retry-after': '1' });
      res.end();
    },
    (_, res) => {
      res.writeHead(200, { 'content-length': body.length });
      res.write(body.subarray(0, 100_000), () => res.socket?.destroy());
    },
    ok,
  ]);
  try {
    const events: ProgressEvent[] = [];
    const store = new ContentStore(tempDir('distill-http-'));
    const t = Date.now();
    const r = await fetchBlob(store, expected, srv.url, { retry: fast, onProgress: (e) => events.push(e) });
    assert.equal(r.cached, false);
    assert.deepEqual(readFileSync(r.path), body);
    assert.equal(srv.requests(), 3);
    const retries = events.filter((e) => e.type === 'retry');
    assert.equal(retries.length, 2);
    assert.equal((retries[0] as { delayMs: number }).delayMs, 1000, 'Retry-After is honoured');
    assert.ok(Date.now() - t >= 1000);
  } finally {
    await srv.close();
  }
});

test('a 404 is NOT_FOUND_IN_MIRROR at once; persistent 429s give up after the policy\'s attempts', async () => {
  const missing = await serve([(_, res) => { res.writeHead(404); res.end(); }]);
  const busy = await serve([(_, res) => { res.writeHead(429); res.end(); }]);
  try {
    const store = new ContentStore(tempDir('distill-http-'));
    await assert.rejects(fetchBlob(store, expected, missing.url, { retry: fast }), (e: any) => e.code === 'NOT_FOUND_IN_MIRROR');
    assert.equal(missing.requests(), 1);
    await assert.rejects(fetchBlob(store, expected, busy.url, { retry: fast }), (e: any) => e.code === 'FETCH_FAILED' && /429/.test(e.message));
    assert.equal(busy.requests(), fast.attempts);
  } finally {
    await missing.close();
    await busy.close();
  }
});

test('a server that sends different bytes is refused, not retried into the cache', async () => {
  const evil = Buffer.from(body);
  evil[12345] = evil[12345]! ^ 1;
  const srv = await serve([(_, res) => { res.writeHead(200, { 'content-length': evil.length }); res.end(evil); }]);
  try {
    const store = new ContentStore(tempDir('distill-http-'));
    await assert.rejects(fetchBlob(store, expected, srv.url, { retry: fast }), (e: any) => e.code === 'BLOB_DIGEST_MISMATCH');
    assert.equal(srv.requests(), 1);
    assert.equal(await store.has(expected), false);
  } finally {
    await srv.close();
  }
});
