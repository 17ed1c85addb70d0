// The registry transport against small HTTP servers on 127.0.0.1 that behave exactly as each case
// needs: the token cache (one token per realm/service/scope for a whole command, also under
// concurrency), the retry policy (bounded, only for transient failures), redirects (blob GETs sent
// to storage on another host get no Authorization header; too many hops are refused) and the size
// caps on every body the registry writes (the client stops reading at the cap).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../src/registry/client.js';
import { CAPS } from '../../src/registry/transport.js';

type Handler = (req: IncomingMessage, res: ServerResponse, port: number) => void;

interface Fake {
  port: number;
  host: string;
  /** Every request: method, path, Authorization header ('-' when none). */
  log: { method: string; path: string; auth: string }[];
  close(): Promise<void>;
}

async function serve(handler: Handler): Promise<Fake> {
  const log: Fake['log'] = [];
  let port = 0;
  const server: Server = createServer((req, res) => {
    log.push({ method: req.method ?? '', path: req.url ?? '', auth: req.headers.authorization ?? '-' });
    res.on('error', () => {});
    handler(req, res, port);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
  return {
    port,
    host: `127.0.0.1:${port}`,
    log,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const fast = { attempts: 3, baseDelayMs: 1, maxDelayMs: 5 };
const manifest = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/vnd.oci.image.manifest.v1+json', config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'0'.repeat(64)}`, size: 2 }, layers: [] }));
const digestOf = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;

/** A registry behind bearer auth whose token service (same server, /token) counts its requests. */
function bearerRegistry(tokens: string[]): Handler {
  return (req, res, port) => {
    const url = new URL(req.url ?? '/', 'http://x');
    if (url.pathname === '/token') {
      tokens.push(url.searchParams.getAll('scope').join(' '));
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: `t${tokens.length}`, expires_in: 300 }));
      return;
    }
    if (req.headers.authorization === undefined) {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="fake"` }).end();
      return;
    }
    if (url.pathname.includes('/manifests/')) {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'docker-content-digest': digestOf(manifest) }).end(manifest);
      return;
    }
    res.writeHead(404).end();
  };
}

test('one token per realm, service and scope serves every operation of a client, also concurrent ones', async () => {
  const tokens: string[] = [];
  const reg = await serve(bearerRegistry(tokens));
  const client = new RegistryClient(reg.host, { retry: fast });
  try {
    await Promise.all([client.getManifest('app', 'latest'), client.getManifest('app', 'latest'), client.headBlob('app', `sha256:${'1'.repeat(64)}`)]);
    await client.getManifest('app', 'v2');
    await client.headManifest('app', 'v3');
    assert.deepEqual(tokens, ['repository:app:pull'], 'one token for the one scope');
    await client.getManifest('other', 'latest');
    assert.deepEqual(tokens, ['repository:app:pull', 'repository:other:pull'], 'another repository is another scope');
    assert.equal(client.transport.tokenRequests, 2);
    // Every request after the first 401 carried the token.
    assert.ok(reg.log.filter((l) => !l.path.startsWith('/token') && l.path !== '/v2/').every((l) => l.auth.startsWith('Bearer t')));
  } finally {
    await client.close();
    await reg.close();
  }
});

test('retries are bounded by the policy and only for transient failures', async () => {
  const reg = await serve((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end();
    if (req.url?.includes('/manifests/busy')) return void res.writeHead(503, { 'content-type': 'application/json' }).end('{"errors":[{"code":"UNAVAILABLE","message":"busy"}]}');
    if (req.url?.includes('/manifests/slow')) return void res.writeHead(429, { 'retry-after': '0' }).end();
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN","message":"no"}]}');
  });
  const retries: number[] = [];
  const client = new RegistryClient(reg.host, { retry: fast, onProgress: (e) => { if (e.type === 'retry') retries.push(e.attempt); } });
  try {
    await assert.rejects(client.getManifest('app', 'busy'), (e: any) => e.code === 'FETCH_FAILED' && /503/.test(e.message));
    assert.equal(reg.log.filter((l) => l.path.includes('/busy')).length, fast.attempts, 'exactly the policy\'s attempts');
    assert.deepEqual(retries, [1, 2]);
    await assert.rejects(client.getManifest('app', 'slow'), (e: any) => e.code === 'FETCH_FAILED');
    assert.equal(reg.log.filter((l) => l.path.includes('/slow')).length, fast.attempts);
    await assert.rejects(client.getManifest('app', 'gone'), (e: any) => e.code === 'REGISTRY_NOT_FOUND');
    assert.equal(reg.log.filter((l) => l.path.includes('/gone')).length, 1, 'a 404 is not retried');
  } finally {
    await client.close();
    await reg.close();
  }
});

test('a blob GET redirected to storage on another host is followed without the Authorization header', async () => {
  const blob = Buffer.from('the layer bytes\n'.repeat(1000));
  const digest = digestOf(blob);
  const storage = await serve((_req, res) => void res.writeHead(200, { 'content-length': String(blob.length) }).end(blob));
  const reg = await serve((req, res) => {
    if (req.headers.authorization === undefined) return void res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' }).end();
    if (req.url === '/v2/') return void res.writeHead(200).end();
    if (req.url?.includes('/blobs/')) return void res.writeHead(307, { location: `http://${storage.host}/data?sig=abc` }).end();
    res.writeHead(404).end();
  });
  const client = new RegistryClient(reg.host, { retry: fast, credentials: { username: 'alice', password: 's3cret' } });
  try {
    const chunks: Buffer[] = [];
    for await (const c of await client.openBlob('app', { digest, size: blob.length })) chunks.push(c as Buffer);
    assert.ok(Buffer.concat(chunks).equals(blob));
    assert.ok(reg.log.some((l) => l.path.includes('/blobs/') && l.auth.startsWith('Basic ')), 'the registry got the credentials');
    assert.ok(storage.log.length >= 1);
    assert.ok(storage.log.every((l) => l.auth === '-'), `credentials leaked to storage: ${storage.log.map((l) => l.auth).join(', ')}`);
  } finally {
    await client.close();
    await reg.close();
    await storage.close();
  }
});

test('redirects are bounded, and a redirect loop is a protocol error', async () => {
  const reg = await serve((req, res, port) => {
    if (req.url === '/v2/') return void res.writeHead(200).end();
    res.writeHead(302, { location: `http://127.0.0.1:${port}${req.url}x` }).end();
  });
  const client = new RegistryClient(reg.host, { retry: fast });
  try {
    await assert.rejects(client.openBlob('app', { digest: `sha256:${'2'.repeat(64)}`, size: 1 }), (e: any) => e.code === 'REGISTRY_PROTOCOL' && /redirects/.test(e.message));
    assert.ok(reg.log.length <= 8, `${reg.log.length} requests`);
  } finally {
    await client.close();
    await reg.close();
  }
});

/** Serves `bytes` of filler to every non-ping request and counts what it managed to write. */
async function flood(bytes: number, headers: Record<string, string>, status = 200): Promise<Fake & { written: () => number }> {
  let written = 0;
  const chunk = Buffer.alloc(64 * 1024, 0x20);
  const fake = await serve((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end();
    res.writeHead(status, headers);
    let left = bytes;
    const pump = (): void => {
      while (left > 0) {
        const n = Math.min(left, chunk.length);
        left -= n;
        written += n;
        if (!res.write(chunk.subarray(0, n))) return void res.once('drain', pump);
      }
      res.end();
    };
    pump();
  });
  return { ...fake, written: () => written };
}

test('size caps: manifests, tag lists, referrers and error bodies stop being read at their cap', async () => {
  const big = 64 * 1024 * 1024;
  const cases: [string, (c: RegistryClient) => Promise<unknown>, Record<string, string>, number][] = [
    ['a manifest', (c) => c.getManifest('app', 'latest'), { 'content-type': 'application/vnd.oci.image.manifest.v1+json' }, 200],
    ['a tag list page', (c) => c.listTags('app'), { 'content-type': 'application/json' }, 200],
    ['a referrers index', (c) => c.getReferrers('app', `sha256:${'3'.repeat(64)}`), { 'content-type': 'application/vnd.oci.image.index.v1+json' }, 200],
  ];
  for (const [what, op, headers, status] of cases) {
    const reg = await flood(big, headers, status);
    const client = new RegistryClient(reg.host, { retry: fast });
    try {
      await assert.rejects(op(client), (e: any) => e.code === 'RESPONSE_TOO_LARGE', what);
      assert.ok(reg.written() < big, `${what}: the client read all ${big} bytes`);
    } finally {
      await client.close();
      await reg.close();
    }
  }
  // A declared length over the cap is refused before reading anything.
  const declared = await serve((req, res) => {
    if (req.url === '/v2/') return void res.writeHead(200).end();
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': String(CAPS.manifest + 1) });
    res.write('{');
  });
  const c2 = new RegistryClient(declared.host, { retry: fast });
  try {
    await assert.rejects(c2.getManifest('app', 'latest'), (e: any) => e.code === 'RESPONSE_TOO_LARGE');
  } finally {
    await c2.close();
    await declared.close();
  }
  // An error body is read only up to its cap: the failure is still reported, as what it is.
  const errors = await flood(big, { 'content-type': 'application/json' }, 400);
  const c3 = new RegistryClient(errors.host, { retry: fast });
  try {
    await assert.rejects(c3.getManifest('app', 'latest'), (e: any) => e.code === 'REGISTRY_PROTOCOL' && /HTTP 400/.test(e.message));
    assert.ok(errors.written() < big);
  } finally {
    await c3.close();
    await errors.close();
  }
});

test('a blob body longer than its descriptor is cut at the size and refused', async () => {
  const big = 64 * 1024 * 1024;
  const reg = await flood(big, { 'content-type': 'application/octet-stream' });
  const client = new RegistryClient(reg.host, { retry: fast });
  try {
    const s = await client.openBlob('app', { digest: `sha256:${'4'.repeat(64)}`, size: 1000 });
    await assert.rejects((async () => {
      for await (const _ of s) { /* drain */ }
    })(), (e: any) => e.code === 'REGISTRY_DIGEST_MISMATCH');
    assert.ok(reg.written() < big, 'the client read on past the descriptor\'s size');
  } finally {
    await client.close();
    await reg.close();
  }
});

test('a token response over its cap is refused', async () => {
  const reg = await serve((req, res, port) => {
    if (req.url?.startsWith('/token')) {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(`{"token":"${'a'.repeat(2 * 1024 * 1024)}"}`);
      return;
    }
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="fake"` }).end();
  });
  const client = new RegistryClient(reg.host, { retry: fast });
  try {
    await assert.rejects(client.getManifest('app', 'latest'), (e: any) => e.code === 'RESPONSE_TOO_LARGE');
  } finally {
    await client.close();
    await reg.close();
  }
});

test('a blob that drips a byte at a time is cut below the low-speed limit and retried, then refused', async () => {
  const blob = Buffer.alloc(4096, 3);
  let gets = 0;
  const reg = await serve((req, res) => {
    if (req.url === '/v2/' || req.url === '/v2') return void res.writeHead(200).end();
    gets++;
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': String(blob.length) });
    let i = 0;
    const t = setInterval(() => (i < blob.length ? res.write(blob.subarray(i, ++i)) : clearInterval(t)), 20);
    res.on('close', () => clearInterval(t));
    setTimeout(() => res.destroy(), 3000).unref(); // bounded even without the guard
  });
  const client = new RegistryClient(reg.host, { retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 }, lowSpeed: { bytes: 1024, windowMs: 300 } });
  try {
    const t0 = Date.now();
    await assert.rejects(
      (async () => {
        for await (const _ of await client.openBlob('app', { digest: digestOf(blob), size: blob.length })) { /* drain */ }
      })(),
      (e: any) => e.code === 'FETCH_FAILED' && /the registry sent under 1024 bytes in 0\.3 s/.test(e.message),
    );
    assert.ok(Date.now() - t0 < 2500, 'cut by the limit, not by the server hanging up');
    assert.ok(gets >= 1);
  } finally {
    await client.close();
    await reg.close();
  }
});
