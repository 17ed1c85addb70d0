// Hostile catalogue, class 2: a registry that answers with lies, against the CLI (`inspect`, as a
// user meets it) and the client. test/registry/transport.test.ts covers caps, redirect loops, bounded
// retries and token size; this file adds what the catalogue names beyond them: manifests that are
// not JSON / nested a million deep / carry __proto__ keys, wrong Content-Type, Content-Length longer
// than the body, an index nested in an index or naming 30k manifests, token endpoints answering
// garbage, HTML or an unusable token, unterminated WWW-Authenticate quotes and a body that trickles
// forever. Every server is on 127.0.0.1, every run bounded (a child killed after 30 s).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../src/registry/client.js';
import { assertRefused, cli, spawnCli } from './helpers.js';

type Handler = (req: IncomingMessage, res: ServerResponse, port: number) => void;

async function serve(handler: Handler): Promise<{ host: string; close(): Promise<void> }> {
  let port = 0;
  const server: Server = createServer((req, res) => {
    res.on('error', () => {});
    if (req.url === '/v2/' || req.url === '/v2') return void res.writeHead(200).end();
    handler(req, res, port);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  port = (server.address() as AddressInfo).port;
  return {
    host: `127.0.0.1:${port}`,
    close: () => new Promise<void>((r) => {
      server.closeAllConnections();
      server.close(() => r());
    }),
  };
}

const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const OCI_INDEX = 'application/vnd.oci.image.index.v1+json';

/** A registry serving `body` (with an honest digest header) for every manifest GET/HEAD. */
function manifestServer(body: Buffer | string, type: string, extra: Record<string, string> = {}): Handler {
  const b = Buffer.from(body);
  return (req, res) => {
    if (/\/manifests\//.test(req.url ?? '')) {
      res.writeHead(200, { 'content-type': type, 'docker-content-digest': sha(b), 'content-length': String(b.length), ...extra });
      return void (req.method === 'HEAD' ? res.end() : res.end(b));
    }
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
  };
}

async function inspectRefused(handler: Handler, code: string, what: string): Promise<void> {
  const reg = await serve(handler);
  try {
    const r = await spawnCli(['inspect', `${reg.host}/app:latest`], { killAfterMs: 30_000 });
    assert.equal(r.killed, false, `${what}: inspect still running after 30 s`);
    assertRefused(r, code, what);
  } finally {
    await reg.close();
  }
}

const cfg = { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha('{}'), size: 2 };

test('manifests that are not JSON, nested a million deep, the wrong shape, or of another Content-Type', async () => {
  const cases: [string, Buffer | string, string, string][] = [
    ['not JSON', '<html>hello</html>', OCI_MANIFEST, '(?:REGISTRY_PROTOCOL|OCI_INVALID)'],
    ['nested a million deep', '['.repeat(1_000_000) + ']'.repeat(1_000_000), OCI_MANIFEST, '(?:REGISTRY_PROTOCOL|OCI_INVALID)'],
    ['layers not a list', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: { a: 1 } }), OCI_MANIFEST, '(?:REGISTRY_PROTOCOL|OCI_INVALID)'],
    ['a config descriptor with `..`', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { ...cfg, digest: 'sha256:../../x' }, layers: [] }), OCI_MANIFEST, '(?:REGISTRY_PROTOCOL|OCI_INVALID)'],
    ['text/html', JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [] }), 'text/html', '(?:REGISTRY_PROTOCOL|OCI_INVALID|REGISTRY_NOT_FOUND)'],
    ['a schema 1 manifest', JSON.stringify({ schemaVersion: 1, name: 'app', tag: 'latest', fsLayers: [] }), 'application/vnd.docker.distribution.manifest.v1+prettyjws', '(?:REGISTRY_PROTOCOL|OCI_INVALID)'],
  ];
  for (const [what, body, type, code] of cases) await inspectRefused(manifestServer(body, type), code, `manifest ${what}`);
});

test('a manifest with __proto__ and constructor keys alters no prototype', async () => {
  const body = `{"schemaVersion":2,"mediaType":"${OCI_MANIFEST}","__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"yes"}},"config":${JSON.stringify(cfg)},"layers":[],"annotations":{"__proto__":"x"}}`;
  const reg = await serve(manifestServer(body, OCI_MANIFEST));
  try {
    // In process, so that a polluted prototype would be seen here.
    await cli(['inspect', `${reg.host}/app:latest`]);
    assert.equal(({} as any).polluted, undefined, 'Object.prototype was polluted');
    assert.equal((Object.prototype as any).polluted, undefined);
  } finally {
    await reg.close();
  }
});

test('an index nesting an index, and an index naming 30k manifests, end in a code quickly', async () => {
  const child = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
  const nested = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [{ mediaType: OCI_INDEX, digest: sha(child), size: child.length }] });
  await inspectRefused((req, res) => {
    const b = Buffer.from(req.url?.endsWith(sha(child)) ? child : nested);
    res.writeHead(200, { 'content-type': OCI_INDEX, 'docker-content-digest': sha(b) }).end(b);
  }, '(?:REGISTRY_PROTOCOL|OCI_INVALID)', 'nested index');
  // 30k entries (within the manifest cap), every one 404: one failure ends it, not 30k requests.
  const many = JSON.stringify({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: Array.from({ length: 30_000 }, (_, i) => ({ mediaType: OCI_MANIFEST, digest: sha(String(i)), size: 10, platform: { os: 'linux', architecture: 'amd64' } })) });
  let gets = 0;
  await inspectRefused((req, res) => {
    if (req.url?.endsWith('/latest')) return void res.writeHead(200, { 'content-type': OCI_INDEX, 'docker-content-digest': sha(many) }).end(many);
    gets++;
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"MANIFEST_UNKNOWN"}]}');
  }, '[A-Z_]+', '30k manifests');
  assert.ok(gets < 1000, `${gets} manifest requests for one failing index`);
});

test('a Content-Length longer than the body, then the connection closed: retried, then a code', async () => {
  await inspectRefused((_req, res) => {
    res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': '500', 'docker-content-digest': sha('x') });
    res.write('{"schemaVersion":2');
    setTimeout(() => res.socket?.destroy(), 20);
  }, '[A-Z_]+', 'short body');
});

test('token endpoints answering garbage, HTML, a token with a newline, or an unterminated challenge', async () => {
  const tokenCases: [string, (res: ServerResponse) => void][] = [
    ['garbage', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token": ')],
    ['HTML', (res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<html>login</html>')],
    ['a token with a newline', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":"abc\\r\\nX-Evil: 1"}')],
    ['no token', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"expires_in":-5}')],
    ['a token of the wrong type', (res) => res.writeHead(200, { 'content-type': 'application/json' }).end('{"token":{"a":1}}')],
  ];
  for (const [what, answer] of tokenCases) {
    await inspectRefused((req, res, port) => {
      if (req.url?.startsWith('/token')) return answer(res);
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${port}/token",service="x"` }).end();
    }, '(?:REGISTRY_AUTH|REGISTRY_PROTOCOL)', `token ${what}`);
  }
  for (const [what, header] of [
    ['an unterminated quote', 'Bearer realm="http://127.0.0.1:1/token,service="x'],
    ['64 KiB (undici refuses the headers: a network failure)', `Bearer realm="${'a'.repeat(64 * 1024)}"`],
    // The first challenge is used: its realm (port 1) refuses the connection.
    ['200 challenges', Array.from({ length: 200 }, (_, i) => `Bearer realm="http://127.0.0.1:1/t${i}"`).join(', ')],
    ['a file:// realm', 'Bearer realm="file:///etc/passwd"'],
  ] as const) {
    await inspectRefused((_req, res) => res.writeHead(401, { 'www-authenticate': header }).end(), what.startsWith('200') ? 'FETCH_FAILED' : what.startsWith('64 KiB') ? 'FETCH_FAILED' : '(?:REGISTRY_AUTH|REGISTRY_PROTOCOL)', `WWW-Authenticate ${what}`);
  }
});

test('a manifest body that trickles a byte at a time ends at the time limit, not never', async () => {
  const body = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: cfg, layers: [] }));
  const timers = new Set<NodeJS.Timeout>();
  const reg = await serve((_req, res) => {
    res.writeHead(200, { 'content-type': OCI_MANIFEST, 'content-length': String(body.length), 'docker-content-digest': sha(body) });
    let i = 0;
    // One byte every 100 ms: never idle for the timeout, done only after ~10 s.
    const t = setInterval(() => {
      if (i < body.length && !res.destroyed) res.write(body.subarray(i, ++i));
      else {
        clearInterval(t);
        res.end();
      }
    }, 100);
    timers.add(t);
  });
  const client = new RegistryClient(reg.host, { timeoutMs: 1000, retry: { attempts: 2, baseDelayMs: 1, maxDelayMs: 5 } });
  const t0 = Date.now();
  try {
    await assert.rejects(client.getManifest('app', 'latest'), (e: any) => typeof e.code === 'string' && e.code !== 'INTERNAL');
    assert.ok(Date.now() - t0 < 6000, `the trickle was read for ${Date.now() - t0} ms with a 1 s timeout`);
  } finally {
    for (const t of timers) clearInterval(t);
    await client.close();
    await reg.close();
  }
});
