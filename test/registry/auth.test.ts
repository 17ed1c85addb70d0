// Authentication: the WWW-Authenticate parser on hostile input, where credentials come from, and real
// registries behind htpasswd Basic auth and behind Docker token auth (a token issuer run here). Errors
// name the credentials tried and never print a secret.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { DistillError, isDistillError } from '../../src/errors.js';
import { Authenticator, isLoopbackHost, parseChallenges } from '../../src/registry/auth.js';
import { RegistryClient } from '../../src/registry/client.js';
import { describeCredential, resolveCredentials } from '../../src/registry/credentials.js';
import { pullImage } from '../../src/registry/pull.js';
import { pushLayout } from '../../src/registry/push.js';
import { hasTool, needs } from '../helpers/make-layer.js';
import { htpasswdLine, makeTestLayout, needsRegistry, startFaultProxy, startRegistry, type RunningRegistry } from '../helpers/registry.js';
import { tempDir } from '../helpers/tmp.js';

const { skip } = needsRegistry();
const work = tempDir('distill-auth-test-');
after(() => rmSync(work, { recursive: true, force: true }));

/** The rejection is `code`, its message names `mentions`, and it never contains `secret`. */
function failsWith(code: string, mentions: string, secret: string) {
  return (e: unknown): boolean => {
    assert.ok(e instanceof DistillError, String(e));
    assert.equal(e.code, code, e.message);
    assert.match(e.message, new RegExp(mentions.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')));
    assert.ok(!e.message.includes(secret) && !(e.hint ?? '').includes(secret), `secret in: ${e.message}`);
    return true;
  };
}

describe('WWW-Authenticate (RFC 7235)', () => {
  test('Docker Hub and distribution challenges', () => {
    assert.deepEqual(parseChallenges('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/debian:pull"'), [
      { scheme: 'bearer', params: { realm: 'https://auth.docker.io/token', service: 'registry.docker.io', scope: 'repository:library/debian:pull' } },
    ]);
    assert.deepEqual(parseChallenges('Basic realm="basic-realm"'), [{ scheme: 'basic', params: { realm: 'basic-realm' } }]);
    // Several challenges, odd spacing, tokens as values, escapes, case-insensitive names.
    assert.deepEqual(parseChallenges('Basic realm="a, b",  Bearer REALM = "https://x/t" , service=reg, scope="repository:a:pull repository:b:pull",error="insufficient_scope"'), [
      { scheme: 'basic', params: { realm: 'a, b' } },
      { scheme: 'bearer', params: { realm: 'https://x/t', service: 'reg', scope: 'repository:a:pull repository:b:pull', error: 'insufficient_scope' } },
    ]);
    assert.deepEqual(parseChallenges('Bearer realm="say \\"hi\\"\\\\"'), [{ scheme: 'bearer', params: { realm: 'say "hi"\\' } }]);
    assert.deepEqual(parseChallenges('Negotiate abc+/==, Basic realm=x'), [
      { scheme: 'negotiate', params: {}, token68: 'abc+/==' },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    assert.deepEqual(parseChallenges('Bearer'), [{ scheme: 'bearer', params: {} }]);
    const [proto] = parseChallenges('Bearer __proto__="x", realm="r"');
    assert.equal(Object.getPrototypeOf(proto!.params), Object.prototype);
    assert.equal(Object.getOwnPropertyDescriptor(proto!.params, '__proto__')?.value, 'x');
  });

  test('malformed or hostile headers are refused, not guessed at', () => {
    for (const h of [
      'Bearer realm="unterminated',
      'Bearer realm="a",realm="b"', // which one? neither
      'Bearer realm="a\nb"',
      'Bearer realm="x" service="y"', // missing comma
      'Bearer realm=,service=x', // token68 "realm=", then a scheme followed by '='
      '"quoted-scheme"',
      `Bearer realm="${'x'.repeat(20_000)}"`,
      `Bearer ${Array.from({ length: 40 }, (_, i) => `p${i}=v`).join(',')}`,
    ]) {
      assert.throws(() => parseChallenges(h), (e) => isDistillError(e, 'REGISTRY_PROTOCOL'), JSON.stringify(h.slice(0, 60)));
    }
  });
});

describe('transport security', () => {
  test('plain http only for loopback registries or with insecure', async () => {
    const scheme = (host: string, insecure = false): string => {
      const c = new RegistryClient(host, { insecure });
      void c.close();
      return c.base.protocol;
    };
    assert.equal(scheme('127.0.0.1:5000'), 'http:');
    assert.equal(scheme('127.1.2.3'), 'http:');
    assert.equal(scheme('localhost:5000'), 'http:');
    assert.equal(scheme('[::1]:5000'), 'http:');
    assert.equal(scheme('docker.io'), 'https:');
    assert.equal(scheme('127.0.0.1.nip.io'), 'https:');
    assert.equal(scheme('10.0.0.1:5000'), 'https:');
    assert.equal(scheme('registry.internal:5000', true), 'http:');
    assert.ok(isLoopbackHost('127.255.255.255') && !isLoopbackHost('127.256.0.1') && !isLoopbackHost('128.0.0.1'));
  });

  test('token realms: http(s) URLs without userinfo; plain http only where the registry itself is plain', () => {
    const auth = (allowHttpRealm: boolean): Authenticator =>
      new Authenticator({ registry: 'r.example', credential: async () => undefined, dispatcher: undefined as never, timeoutMs: 1000, userAgent: 't', allowHttpRealm });
    assert.equal(auth(false).learn('Bearer realm="https://auth.example/token",service="r"'), true);
    for (const realm of ['http://auth.example/token', 'ftp://auth.example/', 'https://user:pw@auth.example/', 'not a url', '']) {
      assert.throws(() => auth(false).learn(`Bearer realm="${realm}"`), (e) => isDistillError(e, 'REGISTRY_PROTOCOL'), realm);
    }
    assert.equal(auth(false).learn('Bearer realm="http://127.0.0.1:1/token"'), true);
    assert.equal(auth(true).learn('Bearer realm="http://auth.example/token"'), true);
  });
});

describe('credentials', () => {
  const home = join(work, 'home');
  const docker = join(home, '.docker');
  const bin = join(work, 'bin');
  mkdirSync(docker, { recursive: true });
  mkdirSync(bin, { recursive: true });
  const b64 = (s: string): string => Buffer.from(s).toString('base64');
  // A credential helper as docker-credential-helpers writes them: the server on stdin, JSON out.
  writeFileSync(
    join(bin, 'docker-credential-fake'),
    '#!/bin/sh\nread server\ncase "$server" in\n  helped.example) echo \'{"ServerURL":"helped.example","Username":"carol","Secret":"helper-secret"}\' ;;\n' +
      '  token.example) echo \'{"Username":"<token>","Secret":"refresh-me"}\' ;;\n  *) echo "credentials not found in native keychain"; exit 1 ;;\nesac\n',
  );
  chmodSync(join(bin, 'docker-credential-fake'), 0o755);
  writeFileSync(
    join(docker, 'config.json'),
    JSON.stringify({
      auths: {
        'https://index.docker.io/v1/': { auth: b64('hubuser:hub-secret') },
        'file.example:5000': { auth: b64('dave:pa:ss') },
        'http://schemed.example/v2/': { auth: b64('erin:e-secret') },
        'idtoken.example': { auth: b64('frank:'), identitytoken: 'frank-refresh' },
        'fallback.example': { auth: b64('gina:g-secret') },
      },
      credHelpers: { 'helped.example': 'fake', 'token.example': 'fake', 'fallback.example': 'fake', 'gone.example': 'not-installed' },
    }),
  );
  const env = { PATH: bin };

  test('explicit options win, then the environment record, then ~/.docker/config.json', async () => {
    assert.deepEqual(await resolveCredentials('file.example:5000', { username: 'alice', password: 'a-secret', explicitSource: '--username', env, home }), {
      username: 'alice',
      password: 'a-secret',
      source: '--username',
    });
    assert.deepEqual(await resolveCredentials('file.example:5000', { env: { ...env, DISTILL_REGISTRY_USERNAME: 'bob', DISTILL_REGISTRY_PASSWORD: 'b-secret' }, home }), {
      username: 'bob',
      password: 'b-secret',
      source: 'DISTILL_REGISTRY_USERNAME',
    });
    assert.deepEqual(await resolveCredentials('file.example:5000', { env, home }), { username: 'dave', password: 'pa:ss', source: '~/.docker/config.json' });
    assert.deepEqual(await resolveCredentials('docker.io', { env, home }), { username: 'hubuser', password: 'hub-secret', source: '~/.docker/config.json' });
    assert.deepEqual(await resolveCredentials('schemed.example', { env, home }), { username: 'erin', password: 'e-secret', source: '~/.docker/config.json' });
    assert.deepEqual(await resolveCredentials('idtoken.example', { env, home }), { username: 'frank', identityToken: 'frank-refresh', source: '~/.docker/config.json' });
    assert.equal(await resolveCredentials('unknown.example', { env, home }), undefined);
    assert.equal(await resolveCredentials('file.example:5000', { env, home, dockerConfig: false }), undefined);
    // DOCKER_CONFIG in the record moves the file.
    assert.equal(await resolveCredentials('file.example:5000', { env: { ...env, DOCKER_CONFIG: join(work, 'nowhere') }, home }), undefined);
    await assert.rejects(resolveCredentials('x.example', { username: 'alice' }), (e) => isDistillError(e, 'USAGE'));
  });

  test('credential helpers: run with the host on stdin; "not found" and a missing helper fall back to auths', async () => {
    assert.deepEqual(await resolveCredentials('helped.example', { env, home }), { username: 'carol', password: 'helper-secret', source: 'docker-credential-fake' });
    assert.deepEqual(await resolveCredentials('token.example', { env, home }), { username: '<token>', identityToken: 'refresh-me', source: 'docker-credential-fake' });
    assert.deepEqual(await resolveCredentials('fallback.example', { env, home }), { username: 'gina', password: 'g-secret', source: '~/.docker/config.json' });
    assert.equal(await resolveCredentials('gone.example', { env, home }), undefined);
  });

  test('descriptions name the user and the source, never the secret', () => {
    assert.equal(describeCredential(undefined), 'no credentials');
    assert.equal(describeCredential({ username: 'alice', password: 'p', source: '~/.docker/config.json' }), 'user alice from ~/.docker/config.json');
    assert.equal(describeCredential({ username: '<token>', identityToken: 't', source: 'docker-credential-fake' }), 'an identity token from docker-credential-fake');
  });
});

describe('a registry behind Basic auth (htpasswd)', { skip: skip || (!hasTool('htpasswd') && !hasTool('perl') && 'neither htpasswd (apache2-utils) nor perl is installed') }, () => {
  let registry: RunningRegistry;
  let layoutDir: string;
  before(async () => {
    layoutDir = join(work, 'layout-basic');
    await makeTestLayout(layoutDir, work);
    registry = await startRegistry({ kind: 'htpasswd', users: { alice: 'secret' } });
  });
  after(async () => registry?.stop());

  test('the htpasswd fallback (bcrypt via perl) makes lines the registry accepts', async () => {
    const line = htpasswdLine('zoe', 'z-secret', false);
    assert.match(line, /^zoe:\$2b\$10\$[./A-Za-z0-9]{53}\n$/);
    const other = await startRegistry({ kind: 'htpasswd', users: {}, lines: [line] });
    try {
      const r = await pushLayout(layoutDir, `${other.host}/distill/fallback`, { credentials: { username: 'zoe', password: 'z-secret' } });
      assert.equal(r.pushed.length, 2);
    } finally {
      await other.stop();
    }
  });

  test('the right password pushes and pulls', async () => {
    const credentials = { username: 'alice', password: 'secret', explicitSource: '--username' };
    const r = await pushLayout(layoutDir, `${registry.host}/distill/basic`, { credentials });
    assert.equal(r.pushed.length, 2);
    const p = await pullImage(`${registry.host}/distill/basic:latest`, join(work, 'pulled-basic'), { credentials });
    assert.equal(p.digest, r.pushed[0]!.digest);
  });

  test('credentials from a Docker config file work too', async () => {
    const dir = join(work, 'basic-config');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ auths: { [registry.host]: { auth: Buffer.from('alice:secret').toString('base64') } } }));
    const r = await pushLayout(layoutDir, `${registry.host}/distill/basic`, { credentials: { env: { DOCKER_CONFIG: dir } } });
    assert.equal(r.bytesUploaded, 0);
  });

  test('a blob redirected to another origin is fetched without our credentials', async () => {
    const seen: (string | undefined)[] = [];
    const storage = createServer((req, res) => {
      seen.push(req.headers.authorization);
      const hex = /sha256:([0-9a-f]{64})$/.exec(req.url ?? '')?.[1];
      try {
        res.writeHead(200).end(readFileSync(join(layoutDir, 'blobs', 'sha256', hex ?? 'none')));
      } catch {
        res.writeHead(404).end();
      }
    });
    await new Promise<void>((r) => storage.listen(0, '127.0.0.1', r));
    const proxy = await startFaultProxy(registry.port, [
      { method: 'GET', path: /\/blobs\/sha256:/, fault: { kind: 'redirect', origin: `http://127.0.0.1:${(storage.address() as AddressInfo).port}` }, times: 100 },
    ]);
    try {
      const credentials = { username: 'alice', password: 'secret' };
      const p = await pullImage(`${proxy.host}/distill/basic:latest`, join(work, 'pulled-redirected'), { credentials });
      assert.equal(p.blobsDownloaded, 6);
      assert.equal(seen.length, 6);
      assert.deepEqual(seen, seen.map(() => undefined), 'no Authorization header went to the other origin');
    } finally {
      await proxy.stop();
      storage.closeAllConnections();
      await new Promise((r) => storage.close(r));
    }
  });

  test('a wrong password fails with REGISTRY_AUTH naming the user, not the password', async () => {
    await assert.rejects(
      pushLayout(layoutDir, `${registry.host}/distill/basic`, { credentials: { username: 'alice', password: 'wrong-password', explicitSource: '--username' } }),
      failsWith('REGISTRY_AUTH', 'user alice from --username', 'wrong-password'),
    );
    await assert.rejects(
      pullImage(`${registry.host}/distill/basic:latest`, join(work, 'never'), { credentials: { dockerConfig: false } }),
      failsWith('REGISTRY_AUTH', 'no credentials', 'secret'),
    );
  });
});

describe('a registry behind Docker token auth', { skip: skip || needs('openssl').skip }, () => {
  let registry: RunningRegistry;
  let layoutDir: string;
  before(async () => {
    layoutDir = join(work, 'layout-token');
    await makeTestLayout(layoutDir, work);
    registry = await startRegistry({
      kind: 'token',
      users: { alice: { password: 'secret', actions: ['pull', 'push'] }, bob: { password: 'bob-secret', actions: ['pull'] } },
    });
  });
  after(async () => registry?.stop());

  test('alice pushes with one pull,push token; a mount asks for the source too; bob and anonymous are refused', async () => {
    const alice = { credentials: { username: 'alice', password: 'secret', explicitSource: '--username' } };
    const r = await pushLayout(layoutDir, `${registry.host}/distill/token`, alice);
    assert.equal(r.pushed.length, 2);
    const asked = registry.token!.requests;
    assert.ok(asked.length >= 1 && asked.length <= 2, `token requests: ${JSON.stringify(asked)}`);
    assert.deepEqual(asked[0], { user: 'alice', scopes: ['repository:distill/token:pull,push'] });

    asked.length = 0;
    const m = await pushLayout(layoutDir, `${registry.host}/distill/token-copy`, { ...alice, mountFrom: ['distill/token'] });
    assert.equal(m.blobsMounted, 6);
    assert.ok(
      asked.some((a) => a.scopes.includes('repository:distill/token:pull') && a.scopes.includes('repository:distill/token-copy:pull,push')),
      JSON.stringify(asked),
    );

    const p = await pullImage(`${registry.host}/distill/token:latest`, join(work, 'pulled-token'), { credentials: { username: 'bob', password: 'bob-secret' } });
    assert.equal(p.digest, r.pushed[0]!.digest);
    await assert.rejects(
      pushLayout(layoutDir, `${registry.host}/distill/bobs`, { credentials: { username: 'bob', password: 'bob-secret', explicitSource: '--username' } }),
      failsWith('REGISTRY_DENIED', 'user bob from --username', 'bob-secret'),
    );
    await assert.rejects(
      pullImage(`${registry.host}/distill/token:latest`, join(work, 'never'), { credentials: { dockerConfig: false } }),
      failsWith('REGISTRY_AUTH', 'no credentials', 'secret'),
    );
    await assert.rejects(
      pullImage(`${registry.host}/distill/token:latest`, join(work, 'never'), { credentials: { env: { DISTILL_REGISTRY_USERNAME: 'alice', DISTILL_REGISTRY_PASSWORD: 'not-it' } } }),
      failsWith('REGISTRY_AUTH', 'user alice from DISTILL_REGISTRY_USERNAME', 'not-it'),
    );
  });

  test('a token that stops working mid-push is renewed: a buffered request is re-sent, a streamed upload restarts', async () => {
    const proxy = await startFaultProxy(registry.port);
    try {
      const t = registry.token!;
      const challenge = `Bearer realm="${t.realm}",service="${t.service}",scope="repository:distill/renewed:pull,push",error="invalid_token"`;
      proxy.rules = [
        { method: 'PUT', path: /\/blobs\/uploads\//, fault: { kind: 'status', status: 401, wwwAuthenticate: challenge }, times: 1 },
        { method: 'PUT', path: /\/manifests\/sha256:/, fault: { kind: 'status', status: 401, wwwAuthenticate: challenge }, times: 1 },
      ];
      t.requests.length = 0;
      const r = await pushLayout(layoutDir, `${proxy.host}/distill/renewed`, {
        credentials: { username: 'alice', password: 'secret' },
        retry: { attempts: 3, baseDelayMs: 10, maxDelayMs: 100 },
      });
      assert.equal(r.pushed.length, 2);
      assert.deepEqual(proxy.rules.map((x) => x.times), [0, 0]);
      assert.ok(t.requests.length >= 3, `${t.requests.length} token requests`);
      assert.ok(t.requests.every((q) => q.user === 'alice'));
    } finally {
      await proxy.stop();
    }
  });
});
