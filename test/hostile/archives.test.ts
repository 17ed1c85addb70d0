// Hostile image archives through the CLI (inspect, copy, rebuild): every one refused with a one-line
// `distill: … [OCI_INVALID]` and a hint, no stack trace, and nothing written beside the archive — the
// archive source reads in place and never extracts (test/sources/archive.test.ts covers each check).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tarHeader } from '../../src/sinks/docker-archive.js';
import { tempDir } from '../helpers/tmp.js';
import { assertRefused, cli } from './helpers.js';

const work = tempDir('distill-hostile-archives-');

function tar(name: string, members: [string, string | Buffer][]): string {
  const parts: Buffer[] = [];
  for (const [n, data] of members) {
    const b = Buffer.from(data);
    parts.push(tarHeader({ name: n, mode: 0o644, size: b.length, mtime: 0, type: '0' }), b, Buffer.alloc((512 - (b.length % 512)) % 512));
  }
  parts.push(Buffer.alloc(1024));
  const p = join(work, name);
  writeFileSync(p, Buffer.concat(parts));
  return p;
}

const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [`sha256:${'1'.repeat(64)}`] } });
const cases: [string, string][] = [
  ['climbs', tar('climbs.tar', [['manifest.json', '[]'], ['../../escape', 'x']])],
  ['points outside', tar('outside.tar', [['manifest.json', JSON.stringify([{ Config: '../../../etc/passwd', RepoTags: [], Layers: [] }])]])],
  ['absolute layer', tar('absolute.tar', [['manifest.json', JSON.stringify([{ Config: 'c.json', RepoTags: [], Layers: ['/etc/shadow'] }])], ['c.json', config]])],
  ['oversized JSON', tar('oversized.tar', [['manifest.json', Buffer.alloc(17 * 1024 * 1024, 0x20)]])],
  ['not a tar', (() => { const p = join(work, 'not.tar'); writeFileSync(p, 'hello, this is not a tar archive'.repeat(40)); return p; })()],
];

test('inspect refuses hostile archives with a coded one-line error', async () => {
  for (const [what, file] of cases) {
    assertRefused(await cli(['inspect', `docker-archive:${file}`]), 'OCI_INVALID', what);
    assertRefused(await cli(['inspect', file]), 'OCI_INVALID', `${what} (bare path)`);
  }
});

test('copy and rebuild refuse them too, before any network or build', async () => {
  for (const [what, file] of cases) {
    assertRefused(await cli(['copy', `docker-archive:${file}`, '127.0.0.1:1/x/y:1']), 'OCI_INVALID', `copy, ${what}`);
    const prov = join(work, 'provenance.json');
    writeFileSync(prov, '{}');
    const r = await cli(['rebuild', file, '--provenance', prov]);
    assertRefused(r, 'OCI_INVALID', `rebuild, ${what}`);
  }
  // Nothing was extracted next to the archives.
  assert.deepEqual(readdirSync(work).filter((n) => !n.endsWith('.tar') && n !== 'provenance.json'), []);
});
