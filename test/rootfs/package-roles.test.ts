// The package table: what distill knows about particular packages, asked by name, never written inline.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { generatorsFor, isReadByGenerator, needsSupplyFromElsewhere, PACKAGE_ROLES, roleOf, shipsEntry, supplierOf } from '../../src/rootfs/package-roles.js';
import type { FsEntry } from '../../src/rootfs/entry.js';

const entry = (path: string, type: FsEntry['type'] = 'file'): FsEntry => ({ path, type, mode: 0o644, uid: 0, gid: 0, uname: 'root', gname: 'root', size: 0, mtime: 0 });

test('roles by exact name or prefix; unknown packages have none and ship everything the rules keep', () => {
  assert.equal(roleOf('ca-certificates')?.supplies, 'certificates');
  assert.equal(roleOf('ca-certificates-java')?.supplies, undefined, 'a longer name is another package');
  assert.deepEqual(roleOf('openjdk-25-jre-headless')?.generates, ['java-cacerts']);
  assert.equal(roleOf('libopenjdk'), undefined, 'a prefix matches from the start only');
  assert.equal(roleOf('python3'), undefined);
  assert.equal(shipsEntry('python3', entry('usr/share/ca-certificates/x.crt')), true);
  assert.equal(isReadByGenerator('python3', 'usr/share/ca-certificates/x.crt'), false);
  assert.ok(PACKAGE_ROLES.length >= 4);
});

test('what generators read, and what ships', () => {
  assert.equal(isReadByGenerator('ca-certificates', 'usr/share/ca-certificates/mozilla/X.crt'), true);
  assert.equal(isReadByGenerator('ca-certificates', 'usr/sbin/update-ca-certificates'), false);
  assert.equal(isReadByGenerator('busybox-static', 'usr/bin/busybox'), true);
  assert.equal(isReadByGenerator('busybox-static', 'usr/bin/busybox-helper'), false);
  assert.equal(shipsEntry('ca-certificates', entry('usr/share/doc/ca-certificates/copyright')), true);
  assert.equal(shipsEntry('ca-certificates', entry('usr/share/ca-certificates/mozilla/X.crt')), false);
  assert.equal(shipsEntry('ca-certificates', entry('usr/share/ca-certificates', 'dir')), false);
  assert.equal(shipsEntry('ca-certificates', entry('etc/ca-certificates', 'dir')), true);
  assert.equal(shipsEntry('ca-certificates', entry('etc/ca-certificates.conf')), false);
});

test('generators per layer, once each, in a fixed order; inputs from elsewhere; the supplier', () => {
  assert.deepEqual(generatorsFor(['openjdk-21-jre-headless', 'ca-certificates-java', 'ca-certificates']), ['ca-bundle', 'java-cacerts']);
  assert.deepEqual(generatorsFor(['libc6']), []);
  assert.equal(needsSupplyFromElsewhere(['ca-certificates'], 'certificates'), false);
  assert.equal(needsSupplyFromElsewhere(['ca-certificates-java'], 'certificates'), true);
  assert.equal(needsSupplyFromElsewhere(['busybox-static'], 'busybox'), false);
  assert.equal(supplierOf([{ name: 'libc6' }, { name: 'ca-certificates' }, { name: 'busybox-static' }], 'certificates')?.name, 'ca-certificates');
  assert.equal(supplierOf([{ name: 'libc6' }], 'busybox'), undefined);
});
