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
import { fetchSmall, openUrl } from '../../src/http/open.js';
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

// A slow-loris mirror: one byte every 20 ms never leaves the socket idle, so no idle timeout fires.
const drip = (_: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-length': body.length });
  let i = 0;
  // Bounded: after 3 s the drip hangs up, so without the guard the test fails in seconds (a reset is
  // retried into FETCH_FAILED without the low-speed message) instead of running for hours.
  const start = Date.now();
  const t = setInterval(() => {
    if (res.destroyed) return clearInterval(t);
    if (Date.now() - start > 3000) {
      clearInterval(t);
      return res.destroy();
    }
    res.write(body.subarray(i, ++i));
  }, 20);
  res.on('close', () => clearInterval(t));
};

test('a server that drips bytes is cut below the low-speed limit, retried, then FETCH_FAILED; nothing is stored', { timeout: 30_000 }, async () => {
  const srv = await serve([drip]);
  try {
    const store = new ContentStore(tempDir('distill-http-'));
    const lowSpeed = { bytes: 1024, windowMs: 300 };
    const t = Date.now();
    await assert.rejects(
      fetchBlob(store, expected, srv.url, { retry: { attempts: 2, baseDelayMs: 10, maxDelayMs: 20 }, lowSpeed }),
      (e: any) => e.code === 'FETCH_FAILED' && /the server sent under 1024 bytes in 0\.3 s/.test(e.message),
    );
    assert.equal(srv.requests(), 2, 'cut, retried once, cut again');
    assert.ok(Date.now() - t < 5000, 'bounded by the limit, not by the body');
    assert.equal(await store.has(expected), false);
    // The same for a small file read whole (InRelease).
    await assert.rejects(fetchSmall(srv.url, 1 << 20, 'InRelease', lowSpeed), (e: any) => e.code === 'FETCH_FAILED' && /under 1024 bytes/.test(e.message));
  } finally {
    await srv.close();
  }
});

test('a reader that stops reading is not the server being slow: the limit counts only time it waits', async () => {
  const srv = await serve([ok]);
  try {
    const { body: b } = await openUrl(srv.url, 'x', { bytes: 64 * 1024, windowMs: 100 });
    // The first chunk fills the guard's buffer; nothing reads for five windows.
    await new Promise((r) => setTimeout(r, 550));
    const parts: Buffer[] = [];
    for await (const c of b) parts.push(c as Buffer);
    assert.deepEqual(Buffer.concat(parts), body);
  } finally {
    await srv.close();
  }
});

test('a redirect loop stops after five redirects with its own message; one redirect is followed', async () => {
  let n = 0;
  const loop = await serve([(req, res) => { n++; res.writeHead(302, { location: `${req.url}x` }); res.end(); }]);
  const moved = await serve([
    (req, res) => {
      if (req.url!.startsWith('/moved')) ok(req, res);
      else res.writeHead(301, { location: `/moved${req.url}` }).end();
    },
  ]);
  try {
    await assert.rejects(fetchSmall(loop.url, 1 << 20, 'InRelease'), (e: any) => e.code === 'FETCH_FAILED' && /more than 5 redirects \(the last HTTP 302\)/.test(e.message) && /loop/.test(e.hint));
    assert.equal(n, 6, 'the first request and five redirects, then no more');
    assert.deepEqual(await fetchSmall(moved.url, 1 << 20, 'x'), body);
  } finally {
    await loop.close();
    await moved.close();
  }
});

test('a body the server has sent whole is not cut however long the reader waits before reading it', async () => {
  const small = body.subarray(0, 1000);
  const srv = await serve([(_req, res) => { res.writeHead(200, { 'content-length': small.length }); res.end(small); }]);
  try {
    const { body: b } = await openUrl(srv.url, 'x', { bytes: 64 * 1024, windowMs: 100 });
    let failed: unknown;
    b.on('error', (e) => (failed = e));
    // The reader is busy elsewhere for five windows; the server sent everything at once.
    await new Promise((r) => setTimeout(r, 550));
    assert.equal(failed, undefined);
    const parts: Buffer[] = [];
    for await (const c of b) parts.push(c as Buffer);
    assert.deepEqual(Buffer.concat(parts), small);
  } finally {
    await srv.close();
  }
});

test('a 3xx undici does not follow (no Location, 304) is its HTTP status, not "more than 5 redirects"', async () => {
  const srv = await serve([
    (_req, res) => { res.writeHead(302); res.end(); },
    (_req, res) => { res.writeHead(304); res.end(); },
  ]);
  try {
    for (const status of [302, 304]) {
      await assert.rejects(fetchSmall(srv.url, 1 << 20, 'InRelease'), (e: any) => e.code === 'FETCH_FAILED' && e.message.endsWith(`HTTP ${status}`) && !/redirects/.test(e.message));
    }
  } finally {
    await srv.close();
  }
});
