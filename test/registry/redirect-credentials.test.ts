// A registry that redirects to another host which then asks for authentication must not get the
// user's password sent there (the other host's challenge is not trusted to name a token realm).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { RegistryClient } from '../../src/registry/client.js';

function listen(s: Server): Promise<number> {
  return new Promise((r) => s.listen(0, '127.0.0.1', () => r((s.address() as AddressInfo).port)));
}

test('a 401 from a redirect target is refused; no credentials reach it', async () => {
  const seenByOther: string[] = [];
  const other = createServer((req, res) => {
    seenByOther.push(`${req.url} ${req.headers.authorization ?? '-'}`);
    res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${(other.address() as AddressInfo).port}/token",service="evil"` });
    res.end();
  });
  const otherPort = await listen(other);
  const registry = createServer((req, res) => {
    if (req.url === '/v2/') {
      res.writeHead(200);
      res.end();
      return;
    }
    res.writeHead(307, { location: `http://127.0.0.1:${otherPort}/m` });
    res.end();
  });
  const port = await listen(registry);
  const client = new RegistryClient(`127.0.0.1:${port}`, { credentials: { username: 'alice', password: 's3cret' }, retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } });
  try {
    await assert.rejects(client.getManifest('x', 'latest'), (e: any) => e.code === 'REGISTRY_AUTH' && !/s3cret/.test(e.message));
    assert.ok(seenByOther.length >= 1);
    assert.ok(seenByOther.every((l) => l.endsWith(' -')), `credentials leaked: ${seenByOther.join(', ')}`);
    assert.ok(!seenByOther.some((l) => l.startsWith('/token')), 'the other host\'s token realm was never asked');
  } finally {
    await client.close();
    registry.closeAllConnections();
    other.closeAllConnections();
    registry.close();
    other.close();
  }
});
