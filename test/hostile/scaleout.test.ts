// Hostile catalogue: scale-out input. The join (`distill index`) reads what workers pushed — every
// byte is the registry's. A registry answering a worker's tag with `null`, a list, or a manifest whose
// config blob is not JSON must give a coded error (REGISTRY_PROTOCOL / PLATFORM_MISMATCH), never a
// TypeError or SyntaxError; nothing is tagged. Against a small HTTP server on 127.0.0.1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DistillError } from '../../src/errors.js';
import { joinPlatforms } from '../../src/scaleout/join.js';
import { repoRoot } from '../helpers/paths.js';

const def = join(repoRoot, 'images', 'static', 'image.yaml');
const sha = (b: Buffer | string): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

async function withRegistry(manifest: string, config: string, fn: (host: string, puts: string[]) => Promise<void>): Promise<void> {
  const puts: string[] = [];
  const server: Server = createServer((req, res) => {
    res.on('error', () => {});
    const url = req.url ?? '';
    if (req.method !== 'GET' && req.method !== 'HEAD') puts.push(`${req.method} ${url}`);
    if (url === '/v2/' || url === '/v2') return void res.writeHead(200).end();
    if (/\/manifests\//.test(url)) return void res.writeHead(200, { 'content-type': OCI_MANIFEST, 'docker-content-digest': sha(manifest) }).end(req.method === 'HEAD' ? undefined : manifest);
    if (url.endsWith(`/blobs/${sha(config)}`)) return void res.writeHead(200, { 'content-length': String(Buffer.byteLength(config)) }).end(req.method === 'HEAD' ? undefined : config);
    res.writeHead(404, { 'content-type': 'application/json' }).end('{"errors":[{"code":"NOT_FOUND"}]}');
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  try {
    await fn(`127.0.0.1:${(server.address() as AddressInfo).port}`, puts);
  } finally {
    server.closeAllConnections();
    await new Promise<void>((r) => server.close(() => r()));
  }
}

test('a worker tag answering null, a list, or a manifest whose config is not JSON: a code, and nothing written', async () => {
  const cases: [string, string, string, RegExp][] = [
    ['null', 'null', '{}', /^REGISTRY_PROTOCOL$/],
    ['a list', '[1,2]', '{}', /^REGISTRY_PROTOCOL$/],
    ...(['not json', 'null', '[]', '{"rootfs":"x"}'] as const).map((cfg): [string, string, string, RegExp] => [
      `config ${cfg}`,
      JSON.stringify({ schemaVersion: 2, mediaType: OCI_MANIFEST, config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(cfg), size: Buffer.byteLength(cfg) }, layers: [] }),
      cfg,
      /^PLATFORM_MISMATCH$/,
    ]),
  ];
  for (const [what, manifest, config, code] of cases) {
    await withRegistry(manifest, config, async (host, puts) => {
      await assert.rejects(joinPlatforms(def, `${host}/distill/static`, { variants: ['latest'], retry: { attempts: 1, baseDelayMs: 1, maxDelayMs: 1 } }), (e: unknown) => {
        assert.ok(e instanceof DistillError, `${what}: ${(e as Error)?.constructor?.name}: ${(e as Error)?.message}`);
        assert.match(e.code, code, `${what}: ${e.code} ${e.message}`);
        return true;
      });
      assert.deepEqual(puts, [], `${what}: the join wrote to the registry`);
    });
  }
});
