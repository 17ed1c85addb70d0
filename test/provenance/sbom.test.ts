// The SPDX 2.3 SBOM: from hand-made layers (overrides, whiteouts, links, oversized files, relations,
// purl encoding, a lock that contradicts the image) and from a real static image built from its
// committed lock against the frozen snapshot (identical bytes twice, every locked package with its
// purl and .deb sha256, tzdata's copyright text, consistent relationships); and the validator on a
// broken document. spdx-tools (Python) validates too when it is installed.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import * as tar from 'tar-stream';
import { buildSbom, debPurl, ociPurl, purlEncode, supplierOf, validateSbom, type SbomInput, type SpdxDocument, type SpdxPackage } from '../../src/provenance/sbom.js';
import { ATTESTATIONS_DIR, buildImage, sbomFile, type BuildResult } from '../../src/build.js';
import { ContentStore } from '../../src/cas/store.js';
import { isDistillError } from '../../src/errors.js';
import { loadLockChain } from '../../src/lock/load.js';
import { readLock, type LockedPackage } from '../../src/lock/lockfile.js';
import { DISTILL_VERSION } from '../../src/version.js';
import { NO_SNAPSHOT, repoRoot, snapshotDir, snapshotMirrors } from '../helpers/paths.js';
import { parsePurl, syftView, trivyView } from '../helpers/scanner-readers.js';
import { cyclonedx16Problems, spdxExpressionProblem } from '../helpers/schemas.js';
import { cyclonedxFromSpdx } from '../../src/provenance/cyclonedx.js';
import { tempDir } from '../helpers/tmp.js';

const work = tempDir('distill-sbom-');
const DIGEST = `sha256:${'ab'.repeat(32)}`;
const sha = (c: string): string => c.repeat(64);

interface E { name: string; data?: string | Buffer; type?: 'file' | 'symlink' | 'link' | 'directory'; linkname?: string }

async function layer(file: string, entries: E[], gzip = true): Promise<string> {
  const pack = tar.pack();
  const chunks: Buffer[] = [];
  const done = new Promise<void>((res, rej) => {
    pack.on('data', (c: unknown) => chunks.push(c as Buffer));
    pack.on('end', res);
    pack.on('error', rej);
  });
  for (const e of entries) {
    if (e.type === 'symlink' || e.type === 'link' || e.type === 'directory') {
      pack.entry({ name: e.name, type: e.type, ...(e.linkname ? { linkname: e.linkname } : {}), mtime: new Date(0) });
    } else {
      pack.entry({ name: e.name, mtime: new Date(0) }, typeof e.data === 'string' ? Buffer.from(e.data) : e.data ?? Buffer.alloc(0));
    }
  }
  pack.finalize();
  await done;
  const path = join(work, file);
  writeFileSync(path, gzip ? gzipSync(Buffer.concat(chunks)) : Buffer.concat(chunks));
  return path;
}

const S = './var/lib/dpkg/status.d/';
const D = './usr/share/doc/';
const ALPHA_COPYRIGHT = [
  'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
  'Upstream-Name: alpha',
  '',
  'Files: *',
  'Copyright: 2021 Alpha',
  'License: GPL-2+ or Artistic, and BSD-3-clause~Alpha',
  '',
  'Files: lib/*',
  'Copyright: 2021 Lib',
  'License: Alpha-Permissive',
  '',
  'License: Alpha-Permissive',
  ' You may do anything with lib.',
  '',
].join('\n');

let layers: string[];
before(async () => {
  layers = [
    await layer('l1.tar.gz', [
      { name: './var/lib/dpkg/status.d/', type: 'directory' },
      { name: './usr/lib/os-release', data: 'PRETTY_NAME="Debian GNU/Linux 13 (trixie)"\nNAME="Debian GNU/Linux"\nVERSION_ID="13"\nVERSION_CODENAME=trixie\nID=debian\n' },
      { name: './etc/os-release', type: 'symlink', linkname: '../usr/lib/os-release' },
      {
        name: `${S}alpha`,
        data: 'Package: alpha\nVersion: 1:2.0+dfsg-1\nArchitecture: amd64\nMaintainer: Debian Alpha Maintainers <pkg-alpha@lists.alioth.debian.org>\n'
          + 'Pre-Depends: gamma:any\nDepends: beta (>= 1) | gamma, libstdc++6 (>= 4), absent-pkg, virt-thing\nSource: alpha-src (2.0+dfsg-1)\n'
          + 'Homepage: https://alpha.example/\nDescription: the alpha tool\n Longer text.\n',
      },
      { name: `${S}alpha.md5sums`, data: '0123456789abcdef0123456789abcdef  usr/bin/alpha\n' },
      { name: `${D}alpha/copyright`, data: 'Copyright 2020 Alpha\n' },
      { name: `${S}alpha-data`, data: 'Package: alpha-data\nVersion: 2.0+dfsg-1\nArchitecture: all\nSource: alpha-src (2.0+dfsg-1)\n' },
      { name: `${S}alpha-doc`, data: 'Package: alpha-doc\nVersion: 2.0+dfsg-1\nArchitecture: all\nSource: alpha-src (2.0+dfsg-2)\n' },
      { name: `${S}beta`, data: 'Package: beta\nVersion: 1.0\nArchitecture: all\nMaintainer: Jane Doe <jane@example.org>\n' },
      { name: `${D}beta/copyright`, type: 'symlink', linkname: '../alpha/copyright' },
      { name: `${S}gamma`, data: 'Package: gamma\nVersion: 3\nArchitecture: amd64\n' },
      { name: `${D}gamma/copyright`, data: 'Copyright gamma\n' },
      { name: `${S}libstdc++6`, data: 'Package: libstdc++6\nVersion: 14.2.0-19\nArchitecture: amd64\nMaintainer: Debian GCC Maintainers <debian-gcc@lists.debian.org>\nProvides: virt-thing\n' },
      { name: `${D}libstdc++6/copyright`, data: Buffer.alloc(1024 * 1024 + 1, 0x41) },
      { name: './var/lib/dpkg/status.d/../status.d/evil', data: 'Package: evil\nVersion: 1\nArchitecture: amd64\n' },
    ]),
    await layer('l2.tar', [
      { name: `${S}.wh.gamma` },
      { name: `${S}beta`, data: 'Package: beta\nVersion: 1.1\nArchitecture: all\nMaintainer: Jane Doe <jane@example.org>\n' },
      { name: `${S}delta`, data: 'Package: delta\nVersion: 0.1\nArchitecture: amd64\nStatus: deinstall ok config-files\n' },
      { name: `${S}extra`, data: 'Package: extra\nVersion: 1\nArchitecture: amd64\nDepends: alpha\n' },
      { name: `${D}alpha/copyright`, data: ALPHA_COPYRIGHT },
      { name: `${D}extra/copyright`, type: 'link', linkname: 'usr/share/doc/alpha/copyright' },
    ], false),
  ];
});

function input(over: Partial<SbomInput> = {}): SbomInput {
  return {
    image: 'demo',
    variant: 'latest',
    platform: { os: 'linux', architecture: 'amd64' },
    manifestDigest: DIGEST,
    created: '2026-11-20T00:12:42Z',
    layers,
    packages: [
      { name: 'alpha', version: '1:2.0+dfsg-1', architecture: 'amd64', sha256: sha('1'), filename: 'pool/main/a/alpha-src/alpha_2.0+dfsg-1_amd64.deb', source: 'alpha-src' },
      { name: 'alpha-data', version: '2.0+dfsg-1', architecture: 'all', sha256: sha('5'), filename: 'pool/main/a/alpha-src/alpha-data_2.0+dfsg-1_all.deb' },
      { name: 'alpha-doc', version: '2.0+dfsg-1', architecture: 'all', sha256: sha('6'), filename: 'pool/main/a/alpha-src/alpha-doc_2.0+dfsg-1_all.deb' },
      { name: 'beta', version: '1.1', architecture: 'all', sha256: sha('2'), filename: 'pool/main/b/beta/beta_1.1_all.deb' },
      { name: 'gamma', version: '3', architecture: 'amd64', sha256: sha('3'), filename: 'pool/main/g/gamma/gamma_3_amd64.deb' },
      { name: 'libstdc++6', version: '14.2.0-19', architecture: 'amd64', sha256: sha('4'), filename: 'pool/main/g/gcc-14/libstdc++6_14.2.0-19_amd64.deb' },
    ],
    toolVersion: '0.1.0',
    ...over,
  };
}

const pkgNamed = (doc: SpdxDocument, name: string): SpdxPackage | undefined => doc.packages.find((p) => p.name === name && p.SPDXID !== 'SPDXRef-Image');
const purlOf = (p: SpdxPackage | undefined): string | undefined => p?.externalRefs?.find((r) => r.referenceType === 'purl')?.referenceLocator;

function assertConsistent(doc: SpdxDocument): void {
  const ids = new Set(['SPDXRef-DOCUMENT', ...doc.packages.map((p) => p.SPDXID)]);
  assert.equal(ids.size, doc.packages.length + 1, 'SPDXIDs are unique');
  for (const r of doc.relationships) {
    assert.ok(ids.has(r.spdxElementId), `${r.spdxElementId} exists`);
    assert.ok(ids.has(r.relatedSpdxElement), `${r.relatedSpdxElement} exists`);
  }
  assert.deepEqual(doc.relationships.filter((r) => r.relationshipType === 'DESCRIBES'), [{ spdxElementId: 'SPDXRef-DOCUMENT', relationshipType: 'DESCRIBES', relatedSpdxElement: 'SPDXRef-Image' }]);
  // The image contains the operating system, which contains every Debian package.
  const os = doc.packages.filter((p) => p.primaryPackagePurpose === 'OPERATING-SYSTEM');
  assert.equal(os.length, 1, 'one operating-system package');
  assert.ok(os[0]!.SPDXID.startsWith('SPDXRef-OperatingSystem-'), 'Trivy finds the OS by this SPDXID prefix');
  const inImage = doc.relationships.filter((r) => r.spdxElementId === 'SPDXRef-Image' && r.relationshipType === 'CONTAINS').map((r) => r.relatedSpdxElement);
  assert.deepEqual(inImage, [os[0]!.SPDXID]);
  const contained = doc.relationships.filter((r) => r.spdxElementId === os[0]!.SPDXID && r.relationshipType === 'CONTAINS').map((r) => r.relatedSpdxElement).sort();
  assert.deepEqual(contained, doc.packages.filter((p) => p.SPDXID !== 'SPDXRef-Image' && p !== os[0]).map((p) => p.SPDXID).sort());
  // Every LicenseRef used is defined, once.
  const defined = (doc.hasExtractedLicensingInfos ?? []).map((x) => x.licenseId);
  assert.equal(new Set(defined).size, defined.length);
  for (const p of doc.packages) for (const ref of p.licenseDeclared?.match(/LicenseRef-[A-Za-z0-9.-]+/g) ?? []) assert.ok(defined.includes(ref), `${p.name}: ${ref} defined`);
  const key = (r: SpdxDocument['relationships'][number]): string => `${r.spdxElementId}\u0000${r.relationshipType}\u0000${r.relatedSpdxElement}`;
  const keys = doc.relationships.map(key);
  assert.deepEqual(keys, [...keys].sort(), 'relationships are sorted');
  assert.equal(new Set(keys).size, keys.length, 'no relationship twice');
}

/**
 * Read the document as syft/grype and Trivy do: both must find Debian 13 and, for every Debian package,
 * the source package and version that status.d records (Source:, else the package itself).
 */
function assertScannersResolve(doc: SpdxDocument, expected?: Map<string, { source: string; sourceVersion: string }>): void {
  const debs = doc.packages.filter((p) => purlOf(p)?.startsWith('pkg:deb/'));
  assert.ok(debs.length > 0);
  for (const view of [syftView(doc), trivyView(doc)]) {
    assert.equal(view.distro, 'debian 13');
    assert.deepEqual([...view.packages.keys()].sort(), debs.map((p) => p.name).sort(), 'every Debian package is an OS package');
    for (const p of debs) {
      const got = view.packages.get(p.name)!;
      assert.equal(got.version, p.versionInfo);
      const want = expected?.get(p.name);
      if (want) assert.deepEqual({ source: got.source, sourceVersion: got.sourceVersion }, want, p.name);
    }
  }
  // Both readers agree on every package.
  assert.deepEqual(syftView(doc).packages, trivyView(doc).packages);
}

/**
 * The CycloneDX 1.6 BOM derived from `doc`: valid against the official schema, byte-identical when
 * derived again, the same packages with the same purls, hashes and licences, the OS component depending
 * on every Debian package; and every SPDX licence expression parses with the SPDX lists.
 */
function assertCycloneDx(doc: SpdxDocument): void {
  for (const p of doc.packages) {
    for (const e of [p.licenseDeclared, p.licenseConcluded]) {
      if (e !== undefined && e !== 'NOASSERTION' && e !== 'NONE') assert.equal(spdxExpressionProblem(e), undefined, p.name);
    }
  }
  const { json, bom } = cyclonedxFromSpdx(doc);
  assert.deepEqual(cyclonedx16Problems(JSON.parse(json)), [], 'valid CycloneDX 1.6');
  assert.notDeepEqual(cyclonedx16Problems({ ...bom, components: [{ type: 'bogus', name: 'x' }] }), [], 'the schema check can fail');
  assert.notDeepEqual(cyclonedx16Problems({ ...bom, serialNumber: 'nope' }), [], 'the schema check can fail');
  assert.equal(cyclonedxFromSpdx(structuredClone(doc)).json, json, 'deterministic');
  assert.match(bom.serialNumber, /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
  assert.equal((bom.metadata['component'] as { type: string }).type, 'container');
  const libs = bom.components.filter((c) => c['type'] === 'library');
  const debs = doc.packages.filter((p) => purlOf(p)?.startsWith('pkg:deb/'));
  assert.deepEqual(libs.map((c) => c['purl']).sort(), debs.map((p) => purlOf(p)).sort());
  for (const p of debs) {
    const c = libs.find((x) => x['purl'] === purlOf(p))!;
    assert.equal(c['version'], p.versionInfo);
    const sha = p.checksums?.[0]?.checksumValue;
    assert.deepEqual(c['hashes'], sha ? [{ alg: 'SHA-256', content: sha }] : undefined);
    assert.deepEqual(c['licenses'], p.licenseDeclared !== 'NOASSERTION' ? [{ expression: p.licenseDeclared }] : undefined);
    const props = new Map((c['properties'] as { name: string; value: string }[]).map((x) => [x.name, x.value]));
    assert.equal(`built package from: ${props.get('aquasecurity:trivy:SrcName')} ${props.get('aquasecurity:trivy:SrcVersion')}`, p.sourceInfo);
  }
  const os = bom.components.filter((c) => c['type'] === 'operating-system');
  assert.equal(os.length, 1);
  const osDeps = bom.dependencies.find((d) => d.ref === os[0]!['bom-ref'])!;
  assert.deepEqual(osDeps.dependsOn, debs.map((p) => purlOf(p)!).sort());
  const refs = new Set([String((bom.metadata['component'] as Record<string, unknown>)['bom-ref']), ...bom.components.map((c) => String(c['bom-ref']))]);
  assert.equal(refs.size, bom.components.length + 1, 'bom-refs are unique');
  for (const d of bom.dependencies) for (const r of [d.ref, ...d.dependsOn]) assert.ok(refs.has(r), `${r} is a bom-ref`);
}

/** spdx-tools (Python), when installed: it must find nothing wrong. */
function spdxToolsProblems(json: string): string[] | undefined {
  if (spawnSync('/usr/bin/python3', ['-c', 'import spdx_tools'], { encoding: 'utf8' }).status !== 0) return undefined;
  const file = join(tempDir('distill-spdx-'), 'sbom.spdx.json');
  writeFileSync(file, json);
  const r = spawnSync('/usr/bin/python3', ['-c', [
    'import sys',
    'from spdx_tools.spdx.parser.parse_anything import parse_file',
    'from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document',
    'msgs = validate_full_spdx_document(parse_file(sys.argv[1]))',
    'print("\\n".join(m.validation_message for m in msgs))',
  ].join('\n'), file], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter((l) => l.trim() !== '');
}

test('purls: the version percent-encoded as the purl spec says (":" kept, "+" as %2B), qualifiers sorted', () => {
  assert.equal(purlEncode('1:2.0+dfsg-1~deb13u1'), '1:2.0%2Bdfsg-1~deb13u1');
  assert.equal(debPurl('libstdc++6', '14.2.0-19', 'amd64'), 'pkg:deb/debian/libstdc%2B%2B6@14.2.0-19?arch=amd64');
  assert.equal(
    debPurl('libc6', '2.41-12+deb13u4', 'amd64', { distro: 'debian-13', upstream: { name: 'glibc' } }),
    'pkg:deb/debian/libc6@2.41-12%2Bdeb13u4?arch=amd64&distro=debian-13&upstream=glibc',
  );
  assert.equal(
    debPurl('libcap2', '1:2.75-10+deb13u1+b3', 'arm64', { distro: 'debian-13', upstream: { name: 'libcap2', version: '1:2.75-10+deb13u1' } }),
    'pkg:deb/debian/libcap2@1:2.75-10%2Bdeb13u1%2Bb3?arch=arm64&distro=debian-13&upstream=libcap2%401:2.75-10%2Bdeb13u1',
  );
  const parsed = parsePurl(debPurl('libcap2', '1:2.75-10+deb13u1+b3', 'arm64', { distro: 'debian-13', upstream: { name: 'libcap2', version: '1:2.75-10+deb13u1' } }));
  assert.equal(parsed.version, '1:2.75-10+deb13u1+b3');
  assert.equal(parsed.qualifiers.get('upstream'), 'libcap2@1:2.75-10+deb13u1');
  assert.equal(debPurl('tzdata', '2026c-0+deb13u1', 'all'), 'pkg:deb/debian/tzdata@2026c-0%2Bdeb13u1?arch=all');
  assert.equal(ociPurl('python3', DIGEST, 'arm64'), `pkg:oci/python3@${DIGEST}?arch=arm64`);
});

test('suppliers: Maintainer as an Organization or a Person', () => {
  assert.equal(supplierOf('Debian Python Team <team+python@tracker.debian.org>'), 'Organization: Debian Python Team (team+python@tracker.debian.org)');
  assert.equal(supplierOf('GNU Libc Maintainers <debian-glibc@lists.debian.org>'), 'Organization: GNU Libc Maintainers (debian-glibc@lists.debian.org)');
  assert.equal(supplierOf('Santiago Vila <sanvila@debian.org>'), 'Person: Santiago Vila (sanvila@debian.org)');
  assert.equal(supplierOf('Mr (Evil)\n Name <a@b>'), 'Person: Mr Evil Name (a@b)');
  assert.equal(supplierOf(undefined), 'NOASSERTION');
});

test('hand-made layers: what is present, overrides, whiteouts, links and caps, relations', async () => {
  const { json, document: doc } = await buildSbom(input());
  assert.deepEqual(validateSbom(doc), []);
  assert.deepEqual(JSON.parse(json), doc);
  assert.ok(json.endsWith('}\n'));
  assert.equal(doc.name, 'demo:latest linux/amd64');
  assert.deepEqual(doc.creationInfo, { created: '2026-11-20T00:12:42Z', creators: ['Tool: distill-0.1.0'] });
  assert.equal(doc.packages[0]!.supplier, 'NOASSERTION', 'no organisation given');
  assert.match(doc.documentNamespace, new RegExp(`^https://distill\\.dev/spdx/demo/${'ab'.repeat(32)}/[0-9a-f]{16}$`));
  // gamma whited out, delta deinstalled, evil's path climbs: none of them; extra is in no lock.
  assert.deepEqual(doc.packages.map((p) => p.name), ['demo', 'debian', 'alpha', 'alpha-data', 'alpha-doc', 'beta', 'extra', 'libstdc++6']);
  const os = doc.packages[1]!;
  assert.deepEqual([os.SPDXID, os.versionInfo, os.primaryPackagePurpose, os.description], ['SPDXRef-OperatingSystem-debian', '13', 'OPERATING-SYSTEM', 'Debian GNU/Linux 13 (trixie)']);

  const image = doc.packages[0]!;
  assert.equal(image.SPDXID, 'SPDXRef-Image');
  assert.equal(image.versionInfo, DIGEST);
  assert.equal(image.primaryPackagePurpose, 'CONTAINER');
  assert.equal(purlOf(image), `pkg:oci/demo@${DIGEST}?arch=amd64`);

  const alpha = pkgNamed(doc, 'alpha')!;
  assert.equal(alpha.SPDXID, 'SPDXRef-Package-deb-alpha');
  assert.equal(alpha.versionInfo, '1:2.0+dfsg-1');
  assert.equal(purlOf(alpha), 'pkg:deb/debian/alpha@1:2.0%2Bdfsg-1?arch=amd64&distro=debian-13&upstream=alpha-src%402.0%2Bdfsg-1');
  assert.deepEqual(alpha.checksums, [{ algorithm: 'SHA256', checksumValue: sha('1') }]);
  assert.equal(alpha.downloadLocation, 'NOASSERTION');
  assert.equal(alpha.packageFileName, 'alpha_2.0+dfsg-1_amd64.deb');
  assert.match(alpha.comment!, /retrieved as pool\/main\/a\/alpha-src\/alpha_2\.0\+dfsg-1_amd64\.deb/);
  assert.equal(alpha.sourceInfo, 'built package from: alpha-src 2.0+dfsg-1', 'Trivy\'s form');
  assert.equal(alpha.supplier, 'Organization: Debian Alpha Maintainers (pkg-alpha@lists.alioth.debian.org)');
  assert.equal(alpha.copyrightText, ALPHA_COPYRIGHT, 'the later layer\'s copyright file wins');
  assert.equal(alpha.summary, 'the alpha tool');
  assert.equal(alpha.homepage, 'https://alpha.example/');
  assert.equal(alpha.filesAnalyzed, false);
  assert.equal(alpha.licenseDeclared, '((GPL-2.0-or-later OR Artistic-1.0-Perl) AND BSD-3-Clause) AND LicenseRef-Alpha-Permissive');
  assert.equal(alpha.licenseConcluded, 'NOASSERTION', 'declared, not concluded');
  assert.deepEqual(doc.hasExtractedLicensingInfos, [{ licenseId: 'LicenseRef-Alpha-Permissive', name: 'Alpha-Permissive', extractedText: 'You may do anything with lib.' }]);

  // No copyright file of its own: a present package's from the same source name and version, said so.
  const data = pkgNamed(doc, 'alpha-data')!;
  assert.equal(data.copyrightText, ALPHA_COPYRIGHT);
  assert.equal(data.licenseDeclared, alpha.licenseDeclared, 'the sibling\'s licence too');
  assert.equal(purlOf(data), 'pkg:deb/debian/alpha-data@2.0%2Bdfsg-1?arch=all&distro=debian-13&upstream=alpha-src', 'same version: no @version');
  assert.match(data.comment!, /copyright file of alpha, built from the same source package/);
  assert.equal(pkgNamed(doc, 'alpha-doc')!.copyrightText, 'NOASSERTION', 'another source version is another copyright file');

  const beta = pkgNamed(doc, 'beta')!;
  assert.equal(beta.versionInfo, '1.1', 'the later layer\'s status.d wins');
  assert.equal(beta.supplier, 'Person: Jane Doe (jane@example.org)');
  assert.equal(beta.copyrightText, 'NOASSERTION', 'a symlinked copyright file is not followed');
  assert.equal(purlOf(beta), 'pkg:deb/debian/beta@1.1?arch=all&distro=debian-13', 'its own source: no upstream');
  assert.equal(beta.sourceInfo, 'built package from: beta 1.1');
  assert.equal(beta.licenseDeclared, 'NOASSERTION');
  assert.match(beta.licenseComments!, /no copyright file/);

  const extra = pkgNamed(doc, 'extra')!;
  assert.equal(extra.checksums, undefined);
  assert.equal(extra.copyrightText, 'NOASSERTION', 'a hardlinked copyright file is not followed');
  assert.match(extra.comment!, /none of the locks/);

  const libstdcxx = pkgNamed(doc, 'libstdc++6')!;
  assert.equal(libstdcxx.SPDXID, 'SPDXRef-Package-deb-libstdc--6');
  assert.equal(libstdcxx.copyrightText, 'NOASSERTION', 'a copyright file over 1 MiB is not read');

  const deps = doc.relationships.filter((r) => r.relationshipType === 'DEPENDS_ON').map((r) => `${r.spdxElementId} → ${r.relatedSpdxElement}`);
  assert.deepEqual(deps, [
    'SPDXRef-Package-deb-alpha → SPDXRef-Package-deb-beta', // beta | gamma: the present one
    'SPDXRef-Package-deb-alpha → SPDXRef-Package-deb-libstdc--6', // by name, and as virt-thing's provider
    'SPDXRef-Package-deb-extra → SPDXRef-Package-deb-alpha',
  ]);
  assertConsistent(doc);

  const again = await buildSbom(input({ packages: [...input().packages].reverse() }));
  assert.equal(again.json, json, 'the order of the lock entries does not matter');
  const later = await buildSbom(input({ created: '2026-11-20T01:12:42.250+01:00' }));
  assert.equal(later.document.creationInfo.created, '2026-11-20T00:12:42Z', 'RFC 3339 offsets and fractions normalised');
  const other = await buildSbom(input({ variant: 'nonroot' }));
  assert.notEqual(other.document.documentNamespace, doc.documentNamespace, 'another document, another namespace');
  assertScannersResolve(doc);
  assertCycloneDx(doc);
  const tools = spdxToolsProblems(json);
  if (tools !== undefined) assert.deepEqual(tools, []);

  const org = await buildSbom(input({ organization: 'Example Corp' }));
  assert.deepEqual(org.document.creationInfo.creators, ['Organization: Example Corp', 'Tool: distill-0.1.0']);
  assert.equal(org.document.packages[0]!.supplier, 'Organization: Example Corp');
  assert.deepEqual(org.licenseCoverage, { packages: 6, declared: 2, undetermined: ['alpha-doc', 'beta', 'extra', 'libstdc++6'] });
});

test('an image without os-release: no OS package, no distro qualifier, packages directly in the image', async () => {
  const bare = await layer('bare.tar', [
    { name: `${S}zeta`, data: 'Package: zeta\nVersion: 1\nArchitecture: amd64\n' },
  ], false);
  const { document: doc } = await buildSbom(input({ layers: [bare], packages: [] }));
  assert.deepEqual(validateSbom(doc), []);
  assert.equal(doc.packages.some((p) => p.primaryPackagePurpose === 'OPERATING-SYSTEM'), false);
  assert.equal(purlOf(pkgNamed(doc, 'zeta')), 'pkg:deb/debian/zeta@1?arch=amd64');
  assert.ok(doc.relationships.some((r) => r.spdxElementId === 'SPDXRef-Image' && r.relationshipType === 'CONTAINS' && r.relatedSpdxElement === 'SPDXRef-Package-deb-zeta'));
});

test('a lock that contradicts the image, or bad inputs, is GENERATE_FAILED', async () => {
  const stale = input();
  stale.packages = stale.packages.map((p) => (p.name === 'beta' ? { ...p, version: '1.0' } : p));
  await assert.rejects(buildSbom(stale), (e) => isDistillError(e, 'GENERATE_FAILED') && /beta 1\.1 \(all\) but the locks pin 1\.0/.test(e.message));
  await assert.rejects(buildSbom(input({ manifestDigest: 'sha256:xyz' })), (e) => isDistillError(e, 'GENERATE_FAILED'));
  await assert.rejects(buildSbom(input({ created: 'yesterday' })), (e) => isDistillError(e, 'GENERATE_FAILED'));
  await assert.rejects(buildSbom(input({ layers: [join(work, 'missing.tar.gz')] })), (e) => isDistillError(e, 'GENERATE_FAILED'));
});

test('validateSbom reports a broken document', async () => {
  const { document } = await buildSbom(input());
  const broken = structuredClone(document) as unknown as Record<string, unknown> & { packages: Record<string, unknown>[]; relationships: Record<string, unknown>[] };
  delete broken['spdxVersion'];
  broken.packages[5]!['SPDXID'] = broken.packages[2]!['SPDXID'];
  broken.packages[2]!['checksums'] = [{ algorithm: 'SHA256', checksumValue: 'abc' }];
  broken.packages[2]!['downloadLocation'] = 'pool/main/a/alpha/alpha.deb';
  broken.packages[3]!['licenseDeclared'] = 'MIT AND LicenseRef-Nowhere';
  broken.relationships.push({ spdxElementId: 'SPDXRef-Image', relationshipType: 'CONTAINS', relatedSpdxElement: 'SPDXRef-Nowhere' });
  broken['creationInfo'] = { created: '2026-11-20 00:12', creators: [] };
  const problems = validateSbom(broken);
  const has = (re: RegExp): boolean => problems.some((p) => re.test(p));
  assert.ok(has(/^spdxVersion: /), problems.join('\n'));
  assert.ok(has(/duplicate SPDXID SPDXRef-Package-deb-alpha/), problems.join('\n'));
  assert.ok(has(/checksums\[0\]\.checksumValue/), problems.join('\n'));
  assert.ok(has(/downloadLocation/), problems.join('\n'));
  assert.ok(has(/SPDXRef-Nowhere/), problems.join('\n'));
  assert.ok(has(/creationInfo\.created/) && has(/creationInfo\.creators/), problems.join('\n'));
  assert.ok(has(/LicenseRef-Nowhere is not defined/), problems.join('\n'));
  assert.deepEqual(validateSbom({ spdxVersion: 'SPDX-2.3' }).filter((p) => /^(dataLicense|SPDXID|name|documentNamespace|creationInfo|relationships):/.test(p)).length, 6);
  assert.deepEqual(validateSbom('nope'), ['the document is not a JSON object']);
});

// ——— a real image ———

const snap = snapshotDir();
const skip = snap === undefined ? NO_SNAPSHOT : false;
const cache = tempDir('distill-sbom-cache-');
after(() => {
  rmSync(work, { recursive: true, force: true });
  rmSync(cache, { recursive: true, force: true });
});

const sourcesOf = (locked: LockedPackage[]): Map<string, { source: string; sourceVersion: string }> =>
  new Map(locked.map((p) => [p.name, { source: p.source, sourceVersion: p.sourceVersion }]));

test('the static image: every locked package, its purl and .deb sha256, tzdata\'s copyright; identical bytes twice', { skip }, async (t) => {
  const out = join(work, 'static');
  const result: BuildResult = await buildImage(join(repoRoot, 'images', 'static', 'image.yaml'), {
    cacheDir: cache,
    mirrors: { flags: snapshotMirrors(snap!), aptSources: [] },
    outDir: out,
    variants: ['latest'],
    platforms: ['amd64'],
  });
  const m = result.variants[0]!.manifests[0]!;
  assert.deepEqual(result.sboms, [{ variant: 'latest', arch: 'amd64', files: ['attestations/sbom-latest-amd64.spdx.json', 'attestations/sbom-latest-amd64.cdx.json'], licenses: { packages: 6, declared: 6, undetermined: [] } }]);
  // The build writes both SBOMs by default, the CycloneDX one derived from the SPDX one.
  const writtenSpdx = readFileSync(join(out, 'attestations', 'sbom-latest-amd64.spdx.json'), 'utf8');
  assert.equal(readFileSync(join(out, 'attestations', 'sbom-latest-amd64.cdx.json'), 'utf8'), cyclonedxFromSpdx(JSON.parse(writtenSpdx) as SpdxDocument).json);
  const { lock } = await readLock(join(repoRoot, 'images', 'static', 'image.lock.json'));
  const locked: LockedPackage[] = lock.architectures['amd64']!.packages;
  const sbomInput: SbomInput = {
    image: result.image,
    variant: result.variants[0]!.variant,
    platform: { os: 'linux', architecture: 'amd64' },
    manifestDigest: m.digest,
    created: lock.timestamp,
    layers: m.layers.map((l) => join(out, 'blobs', 'sha256', l.digest.slice('sha256:'.length))),
    // The debug packages too: they are not in this variant's layers and must not appear.
    packages: [...locked, ...(lock.architectures['amd64']!.debug ?? [])].map((p) => ({ name: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256, filename: p.filename, source: p.source })),
    toolVersion: DISTILL_VERSION,
  };
  const first = await buildSbom(sbomInput);
  const second = await buildSbom(sbomInput);
  assert.equal(second.json, first.json, 'byte-identical for identical inputs');
  const doc = first.document;
  assert.deepEqual(validateSbom(doc), []);
  assertConsistent(doc);
  assert.equal(doc.name, 'static:latest linux/amd64');
  assert.equal(doc.creationInfo.created, lock.timestamp);
  assert.deepEqual(doc.creationInfo.creators, [`Tool: distill-${DISTILL_VERSION}`]);
  assert.ok(doc.documentNamespace.startsWith(`https://distill.dev/spdx/static/${m.digest.slice(7)}/`));
  assert.equal(doc.packages[0]!.versionInfo, m.digest);

  assert.deepEqual(doc.packages.slice(2).map((p) => p.name), locked.map((p) => p.name).sort(), 'exactly the locked packages (no busybox-static)');
  for (const p of locked) {
    const s = pkgNamed(doc, p.name)!;
    assert.equal(s.versionInfo, p.version);
    assert.match(purlOf(s)!, new RegExp(`^pkg:deb/debian/${p.name}@${p.version.replace(/\+/g, '%2B')}\\?arch=${p.architecture}&distro=debian-13(&upstream=|$)`));
    assert.deepEqual(s.checksums, [{ algorithm: 'SHA256', checksumValue: p.sha256 }]);
    assert.equal(s.packageFileName, p.filename.slice(p.filename.lastIndexOf('/') + 1));
    assert.ok(s.comment?.includes(p.filename), `${p.name}: the pool path`);
    assert.equal(s.sourceInfo, `built package from: ${p.source} ${p.sourceVersion}`);
    assert.match(s.supplier!, /^(Person|Organization): /);
    assert.notEqual(s.copyrightText, 'NOASSERTION', `${p.name} ships its copyright file`);
  }
  assertScannersResolve(doc, sourcesOf(locked));
  assertCycloneDx(doc);
  t.diagnostic(`static licences: ${first.licenseCoverage.declared}/${first.licenseCoverage.packages} declared; undetermined: ${first.licenseCoverage.undetermined.join(' ') || 'none'}`);
  assert.equal(first.licenseCoverage.declared, first.licenseCoverage.packages, 'every package of static has a DEP-5 copyright file');
  assert.equal(pkgNamed(doc, 'tzdata')!.licenseDeclared, 'LicenseRef-public-domain');
  assert.equal(pkgNamed(doc, 'base-files')!.licenseDeclared?.includes('GPL-2.0-or-later'), true);
  const tz = pkgNamed(doc, 'tzdata')!;
  assert.match(tz.copyrightText!, /^Format: https?:\/\/www\.debian\.org\/doc\/packaging-manuals\/copyright-format\/1\.0\//);
  assert.match(tz.copyrightText!, /Source: https:\/\/www\.iana\.org\/time-zones\n/);
  assert.match(tz.copyrightText!, /public domain/i);
  // Byte for byte the file in the .deb, when dpkg-deb can say.
  const deb = new ContentStore(cache).blobPath(locked.find((p) => p.name === 'tzdata')!.sha256);
  const fromDeb = spawnSync('sh', ['-c', 'dpkg-deb --fsys-tarfile "$1" | tar -xOf - ./usr/share/doc/tzdata/copyright', 'sh', deb], { encoding: 'utf8' });
  if (fromDeb.status === 0) assert.equal(tz.copyrightText, fromDeb.stdout);
  // tzdata-legacy Depends on tzdata.
  assert.ok(doc.relationships.some((r) => r.spdxElementId === 'SPDXRef-Package-deb-tzdata-legacy' && r.relationshipType === 'DEPENDS_ON' && r.relatedSpdxElement === 'SPDXRef-Package-deb-tzdata'));
  const tools = spdxToolsProblems(first.json);
  if (tools !== undefined) assert.deepEqual(tools, []);
});

test('the cc image: packages whose doc directory is a link get their source sibling\'s copyright; dependencies across layers', { skip }, async (t) => {
  const out = join(work, 'cc');
  const definition = join(repoRoot, 'images', 'cc', 'image.yaml');
  const result = await buildImage(definition, { cacheDir: cache, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] }, outDir: out, variants: ['latest'], platforms: ['amd64'], sbomFormats: ['cyclonedx'], organization: 'Example Corp' });
  assert.equal(existsSync(join(out, 'attestations', 'sbom-latest-amd64.spdx.json')), false, '--sbom-format cyclonedx: no SPDX file');
  const written = JSON.parse(readFileSync(join(out, 'attestations', 'sbom-latest-amd64.cdx.json'), 'utf8')) as Record<string, any>;
  assert.deepEqual(cyclonedx16Problems(written), []);
  assert.deepEqual(written['metadata']['supplier'], { name: 'Example Corp' });
  const chain = await loadLockChain(definition);
  const locked = chain.flatMap((li) => li.lock.architectures['amd64']!.packages);
  const m = result.variants[0]!.manifests[0]!;
  const { json, document: doc, licenseCoverage } = await buildSbom({
    image: 'cc',
    variant: 'latest',
    platform: { os: 'linux', architecture: 'amd64' },
    manifestDigest: m.digest,
    created: chain[chain.length - 1]!.lock.timestamp,
    layers: m.layers.map((l) => join(out, 'blobs', 'sha256', l.digest.slice('sha256:'.length))),
    packages: locked,
    toolVersion: DISTILL_VERSION,
  });
  assert.deepEqual(validateSbom(doc), []);
  assertConsistent(doc);
  assert.deepEqual(doc.packages.slice(2).map((p) => p.name), locked.map((p) => p.name).sort());
  for (const p of doc.packages.slice(2)) assert.notEqual(p.copyrightText, 'NOASSERTION', `${p.name} has a copyright text`);
  assertScannersResolve(doc, sourcesOf(locked));
  assertCycloneDx(doc);
  t.diagnostic(`cc licences: ${licenseCoverage.declared}/${licenseCoverage.packages} declared; undetermined: ${licenseCoverage.undetermined.join(' ') || 'none'}`);
  // glibc, OpenSSL: CVEs are keyed by these source packages.
  assert.match(purlOf(pkgNamed(doc, 'libc6'))!, /&upstream=glibc$/);
  assert.match(purlOf(pkgNamed(doc, 'libssl3t64'))!, /&upstream=openssl$/);
  assert.match(pkgNamed(doc, 'libssl3t64')!.licenseDeclared!, /(^| )Apache-2\.0$/);
  const base = pkgNamed(doc, 'gcc-14-base')!;
  for (const name of ['libgcc-s1', 'libstdc++6', 'libgomp1']) {
    const p = pkgNamed(doc, name)!;
    assert.equal(p.copyrightText, base.copyrightText, `${name}: gcc-14-base's copyright`);
    assert.match(p.comment!, /gcc-14-base/);
  }
  const dependsOn = (from: string, to: string): boolean => doc.relationships.some((r) => r.spdxElementId === `SPDXRef-Package-deb-${from}` && r.relationshipType === 'DEPENDS_ON' && r.relatedSpdxElement === `SPDXRef-Package-deb-${to}`);
  assert.ok(dependsOn('libstdc--6', 'libgcc-s1'));
  assert.ok(dependsOn('libstdc--6', 'libc6'), 'into a base image\'s layer');
  assert.ok(dependsOn('libc6', 'libgcc-s1'));
  const tools = spdxToolsProblems(json);
  if (tools !== undefined) assert.deepEqual(tools, []);
});

test('a fresh build\'s SBOMs, taken from what the layer writer recorded, equal a scan of the written layers', { skip }, async () => {
  // A cache of its own: every layer is written by this build (none comes from the layer cache).
  const freshCache = mkdtempSync(join(tmpdir(), 'distill-sbom-fresh-'));
  const out = join(work, 'static-fresh');
  try {
    const definition = join(repoRoot, 'images', 'static', 'image.yaml');
    const result = await buildImage(definition, { cacheDir: freshCache, mirrors: { flags: snapshotMirrors(snap!), aptSources: [] }, outDir: out, variants: ['latest', 'debug'], platforms: ['amd64'] });
    const { lock } = await readLock(join(repoRoot, 'images', 'static', 'image.lock.json'));
    const packages = [...lock.architectures['amd64']!.packages, ...(lock.architectures['amd64']!.debug ?? [])].map((p) => ({ name: p.name, version: p.version, architecture: p.architecture, sha256: p.sha256, filename: p.filename, source: p.source }));
    assert.equal(result.variants.length, 2);
    for (const v of result.variants) {
      const m = v.manifests[0]!;
      const written = readFileSync(join(out, ATTESTATIONS_DIR, sbomFile(v.variant, m.arch)), 'utf8');
      const scanned = await buildSbom({
        image: result.image,
        variant: v.variant,
        platform: { os: 'linux', architecture: 'amd64' },
        manifestDigest: m.digest,
        created: JSON.parse(written).creationInfo.created,
        layers: m.layers.map((l) => join(out, 'blobs', 'sha256', l.digest.slice('sha256:'.length))),
        packages,
        toolVersion: DISTILL_VERSION,
      });
      assert.equal(written, scanned.json, `${v.variant}: the recorded and the scanned SBOM differ`);
    }
  } finally {
    rmSync(freshCache, { recursive: true, force: true });
  }
});
