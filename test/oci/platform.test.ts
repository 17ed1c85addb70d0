import { test } from 'node:test';
import assert from 'node:assert/strict';
import { comparePlatforms, debianArchToPlatform, platformString } from '../../src/oci/platform.js';

test('Debian architectures map to OCI platforms', () => {
  const table: Record<string, string> = {
    amd64: 'linux/amd64',
    arm64: 'linux/arm64/v8',
    armhf: 'linux/arm/v7',
    armel: 'linux/arm/v5',
    i386: 'linux/386',
    ppc64el: 'linux/ppc64le',
    s390x: 'linux/s390x',
    riscv64: 'linux/riscv64',
    mips64el: 'linux/mips64le',
    loong64: 'linux/loong64',
  };
  for (const [deb, oci] of Object.entries(table)) assert.equal(platformString(debianArchToPlatform(deb)), oci, deb);
  // No `variant` key at all where there is none (it would be serialised otherwise).
  assert.deepEqual(Object.keys(debianArchToPlatform('amd64')).sort(), ['architecture', 'os']);
});

test('an unknown architecture is OCI_INVALID', () => {
  for (const a of ['x86_64', 'all', 'toString', '']) {
    assert.throws(() => debianArchToPlatform(a), (e: any) => e.code === 'OCI_INVALID', a);
  }
});

test('platforms order by os, architecture, then variant (none first)', () => {
  const ps = ['armhf', 'amd64', 'arm64', 'armel', 's390x'].map(debianArchToPlatform);
  assert.deepEqual(ps.sort(comparePlatforms).map(platformString), [
    'linux/amd64',
    'linux/arm/v5',
    'linux/arm/v7',
    'linux/arm64/v8',
    'linux/s390x',
  ]);
  assert.ok(comparePlatforms({ os: 'linux', architecture: 'arm' }, { os: 'linux', architecture: 'arm', variant: 'v5' }) < 0);
});
