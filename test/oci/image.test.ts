import { test } from 'node:test';
import assert from 'node:assert/strict';
import { sha256Hex, toDigest, type Digest } from '../../src/digest.js';
import { imageConfig, imageManifest, type ImageConfigInput } from '../../src/oci/image.js';
import { imageIndex } from '../../src/oci/index.js';
import type { Descriptor } from '../../src/oci/descriptor.js';
import { debianArchToPlatform } from '../../src/oci/platform.js';

const d = (c: string): Digest => toDigest(c.repeat(64));
const input: ImageConfigInput = {
  platform: debianArchToPlatform('arm64'),
  created: '1970-01-01T00:00:00Z',
  env: ['PATH=/usr/bin:/bin', 'SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt'],
  user: '65532',
  workingDir: '/home/nonroot',
  entrypoint: ['/usr/bin/python3'],
  labels: { 'org.example': 'x' },
  diffIds: [d('a'), d('b')],
  history: [
    { created: '1970-01-01T00:00:00Z', createdBy: 'layer one' },
    { created: '1970-01-01T00:00:00Z', createdBy: 'ENV', emptyLayer: true, comment: 'no layer' },
    { created: '1970-01-01T00:00:00Z', createdBy: 'layer two', emptyLayer: false },
  ],
};

test('config: the exact bytes Go writes for the image-spec types, described by their own digest', () => {
  const blob = imageConfig(input);
  // Golden: any change to these bytes changes every image digest distill produces. Key order is the
  // image-spec v1.1 Go struct order (see src/oci/descriptor.ts).
  const expected =
    '{"created":"1970-01-01T00:00:00Z","architecture":"arm64","os":"linux","variant":"v8",' +
    '"config":{"User":"65532","Env":["PATH=/usr/bin:/bin","SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"],' +
    '"Entrypoint":["/usr/bin/python3"],"WorkingDir":"/home/nonroot","Labels":{"org.example":"x"}},' +
    `"rootfs":{"type":"layers","diff_ids":["${d('a')}","${d('b')}"]},` +
    '"history":[{"created":"1970-01-01T00:00:00Z","created_by":"layer one"},' +
    '{"created":"1970-01-01T00:00:00Z","created_by":"ENV","comment":"no layer","empty_layer":true},' +
    '{"created":"1970-01-01T00:00:00Z","created_by":"layer two"}]}';
  assert.equal(blob.bytes.toString(), expected);
  assert.equal(blob.descriptor.mediaType, 'application/vnd.oci.image.config.v1+json');
  assert.equal(blob.descriptor.digest, toDigest(sha256Hex(blob.bytes)));
  assert.equal(blob.descriptor.size, blob.bytes.length);
  // Same input, same bytes — however the input object was assembled.
  const shuffled = Object.fromEntries(Object.entries(input).reverse()) as unknown as ImageConfigInput;
  assert.deepEqual(imageConfig({ ...shuffled, labels: { ...input.labels } }).bytes, blob.bytes);
});

test('config: Go\'s escaping, sorted maps and time form, so a Go re-marshal gives the same bytes', () => {
  const c = imageConfig({
    ...input,
    created: '2025-06-01T12:00:00.500000+00:00',
    env: ['A=<b> & c\u2028'],
    labels: { z: '1', a: '2', 'é': '3', B: '4' },
  }).bytes.toString();
  assert.ok(c.startsWith('{"created":"2025-06-01T12:00:00.5Z",'), c);
  assert.ok(c.includes('"Env":["A=\\u003cb\\u003e \\u0026 c\\u2028"]'), c);
  assert.ok(c.includes('"Labels":{"B":"4","a":"2","z":"1","é":"3"}'), c);
  assert.equal(JSON.parse(c).config.Env[0], 'A=<b> & c\u2028');
});

test('config: empty and optional fields are left out, as Go\'s omitempty does', () => {
  const { entrypoint: _e, labels: _l, ...rest } = input;
  const c = JSON.parse(
    imageConfig({ ...rest, platform: debianArchToPlatform('amd64'), user: '', workingDir: '', env: [], cmd: [], labels: {}, history: [], diffIds: [] }).bytes.toString(),
  );
  assert.deepEqual(c.config, {});
  assert.equal('variant' in c, false);
  assert.equal('history' in c, false);
  assert.deepEqual(c.rootfs, { type: 'layers', diff_ids: [] });
});

test('config: bad input is OCI_INVALID', () => {
  const bad: Partial<ImageConfigInput>[] = [
    { created: '2025-01-01 00:00:00' },
    { created: 'yesterday' },
    { env: ['NOEQUALS'] },
    { env: ['A=1', 'A=2'] },
    { diffIds: ['sha256:xyz' as Digest, d('b')] },
    { history: [{ created: input.created, createdBy: 'only one layer' }] },
    { platform: { os: 'linux', architecture: '' } },
  ];
  for (const b of bad) {
    assert.throws(() => imageConfig({ ...input, ...b }), (e: any) => e.code === 'OCI_INVALID', JSON.stringify(b));
  }
});

const layer = (c: string): Descriptor => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: d(c), size: 10 });

test('manifest: schemaVersion, mediaType, descriptors and annotations as given', () => {
  const config = imageConfig(input);
  const annotations = {
    'org.opencontainers.image.created': '2025-06-01T00:00:00Z',
    'org.opencontainers.image.source': 'https://example.org/distill',
    'org.opencontainers.image.revision': 'abc123',
    'org.opencontainers.image.base.name': 'distill/static:latest',
    'org.opencontainers.image.base.digest': d('c'),
  };
  const m = imageManifest(config.descriptor, [layer('a'), layer('b')], annotations);
  assert.equal(m.descriptor.mediaType, 'application/vnd.oci.image.manifest.v1+json');
  assert.equal(m.descriptor.digest, toDigest(sha256Hex(m.bytes)));
  assert.equal(
    m.bytes.toString(),
    `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"${config.descriptor.digest}","size":${config.descriptor.size}},"layers":[` +
      `{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"${d('a')}","size":10},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"${d('b')}","size":10}],` +
      `"annotations":{"org.opencontainers.image.base.digest":"${d('c')}","org.opencontainers.image.base.name":"distill/static:latest","org.opencontainers.image.created":"2025-06-01T00:00:00Z","org.opencontainers.image.revision":"abc123","org.opencontainers.image.source":"https://example.org/distill"}}`,
  );
  assert.deepEqual(JSON.parse(m.bytes.toString()), {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: config.descriptor,
    layers: [layer('a'), layer('b')],
    annotations,
  });
  assert.equal('annotations' in JSON.parse(imageManifest(config.descriptor, [layer('a')], {}).bytes.toString()), false);
});

test('manifest: a wrong config or layer media type, or a bad digest, is OCI_INVALID', () => {
  const config = imageConfig(input).descriptor;
  const cases: [Descriptor, Descriptor[]][] = [
    [{ ...config, mediaType: 'application/json' }, [layer('a')]],
    [config, [{ ...layer('a'), mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip' }]],
    [config, [{ ...layer('a'), digest: 'sha256:ABC' as Digest }]],
    [config, [{ ...layer('a'), size: -1 }]],
  ];
  for (const [c, ls] of cases) assert.throws(() => imageManifest(c, ls), (e: any) => e.code === 'OCI_INVALID');
});

test('index: entries sorted by platform then digest, whatever the input order', () => {
  const entry = (c: string, arch: string): Descriptor => ({
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: d(c),
    size: 100,
    platform: debianArchToPlatform(arch),
  });
  const entries = [entry('1', 's390x'), entry('2', 'arm64'), entry('3', 'armhf'), entry('4', 'amd64'), entry('5', 'armel')];
  const a = imageIndex(entries);
  const b = imageIndex([...entries].reverse());
  assert.deepEqual(a.bytes, b.bytes);
  assert.equal(a.descriptor.mediaType, 'application/vnd.oci.image.index.v1+json');
  const parsed = JSON.parse(a.bytes.toString());
  assert.equal(parsed.schemaVersion, 2);
  assert.equal(parsed.mediaType, 'application/vnd.oci.image.index.v1+json');
  assert.deepEqual(
    parsed.manifests.map((m: any) => `${m.platform.architecture}${m.platform.variant ?? ''}`),
    ['amd64', 'armv5', 'armv7', 'arm64v8', 's390x'],
  );
  assert.deepEqual(JSON.parse(imageIndex(entries, { 'org.opencontainers.image.created': 'x' }).bytes.toString()).annotations, {
    'org.opencontainers.image.created': 'x',
  });
});

test('index: two manifests for one platform, or one manifest twice, is OCI_INVALID', () => {
  const m = (c: string): Descriptor => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d(c), size: 1, platform: debianArchToPlatform('amd64') });
  assert.throws(() => imageIndex([m('1'), m('2')]), (e: any) => e.code === 'OCI_INVALID');
  const { platform: _p, ...noPlatform } = m('1');
  assert.throws(() => imageIndex([noPlatform, noPlatform]), (e: any) => e.code === 'OCI_INVALID');
});
