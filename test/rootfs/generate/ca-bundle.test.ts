// The CA bundle against the real update-ca-certificates from the snapshot's ca-certificates .deb, run
// on an extracted tree after building /etc/ca-certificates.conf with the package's own debconf `config`
// and `postinst` pipelines; and against this host's bundle (same script, the host's package).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { bundledCertificates, caBundle, type CaCertificateFile } from '../../../src/rootfs/generate/ca-bundle.js';
import { CA_BUNDLE_PATH, caBundleEntries } from '../../../src/rootfs/generate/ca-bundle.js';
import { certificatesOf } from '../../../src/build/assemble.js';
import { shipsEntry } from '../../../src/rootfs/package-roles.js';
import { TEST_ROOT_A, TEST_ROOT_B } from '../../helpers/certs.js';
import { CRAFTED_CA_CERTIFICATES, stageCrafted, staging } from '../../helpers/stage-debs.js';
import { NO_SNAPSHOT } from '../../helpers/paths.js';
import { extractDeb, hasTool, listFiles, run, snapshotDeb, tempDir } from './helpers.js';

const failed = (e: unknown) => (e as { code?: string }).code === 'GENERATE_FAILED';

/** /etc/ca-certificates.conf as a first install writes it: debconf `config`, then `postinst configure`. */
const MAKE_CONF = String.raw`
set -e
config="$1"; certsdir="$2"; conf="$3"
CERTS_LIST=$(sed -n 's/^CERTS_LIST="\(.*\)"$/\1/p' "$config")
[ -n "$CERTS_LIST" ] || { echo "no CERTS_LIST in $config" >&2; exit 1; }
cd "$certsdir"
# config: every *.crt found plus the built-in list, sort | uniq; all enabled on a first install
crts=$( (find . -type f -name '*.crt' -print | sed -e 's/^\.\///'; \
         echo "$CERTS_LIST" | tr ',' '\n' | sed -e 's/^[[:space:]]*//') | sort | uniq)
CERTS_AVAILABLE=""
for crt in $crts; do
  if test "$CERTS_AVAILABLE" = ""; then CERTS_AVAILABLE="$crt"; else CERTS_AVAILABLE="$CERTS_AVAILABLE, $crt"; fi
done
CERTS_ENABLED="$CERTS_AVAILABLE"
# postinst, "new file" branch
echo "# generated for the test" > "$conf"
(echo $CERTS_ENABLED | tr ',' '\n'; echo $CERTS_AVAILABLE | tr ',' '\n') | \
  sed -e 's/^[[:space:]]*//' | sort | uniq -c | \
  sed -e 's/^[[:space:]]*2[[:space:]]*//' -e 's/^[[:space:]]*1[[:space:]]*/!/' >> "$conf"
`;

function readTree(root: string, under: string): CaCertificateFile[] {
  return listFiles(root, under).map((p) => ({ path: './' + p, pem: readFileSync(join(root, p), 'latin1') }));
}

function needTools(t: TestContext): boolean {
  for (const tool of [['dpkg-deb', ['--version']], ['openssl', ['version']], ['sh', ['-c', 'true']]] as const) {
    if (!hasTool(tool[0], [...tool[1]])) {
      t.skip(`${tool[0]} is not installed on this machine`);
      return false;
    }
  }
  return true;
}

test('byte-identical to update-ca-certificates on the snapshot\'s ca-certificates, with local certs', (t) => {
  const deb = snapshotDeb('ca-certificates', 'all');
  if (!deb) return t.skip(NO_SNAPSHOT);
  if (!needTools(t)) return;
  const { dir, cleanup } = tempDir('ca-bundle');
  try {
    const root = join(dir, 'root');
    const control = join(dir, 'control');
    extractDeb(deb, root, control);
    const certsdir = join(root, 'usr/share/ca-certificates');
    const some = listFiles(certsdir).find((p) => p.startsWith('mozilla/'))!;
    const pem = readFileSync(join(certsdir, some), 'latin1');
    // Extra files that exercise the rules: bytewise order (lower case after upper, UTF-8 after ASCII),
    // a file without a final newline (sed '$a\'), local certificates after the package's.
    writeFileSync(join(certsdir, 'mozilla/a_lower_case_first.crt'), pem.trimEnd());
    writeFileSync(join(certsdir, 'mozilla/Ärger_Root.crt'), pem);
    const local = join(root, 'usr/local/share/ca-certificates');
    mkdirSync(join(local, 'sub'), { recursive: true });
    writeFileSync(join(local, 'zeta.crt'), pem);
    writeFileSync(join(local, 'sub/Alpha.crt'), pem.trimEnd());
    writeFileSync(join(local, 'ignored.pem'), pem);
    const etc = join(root, 'etc/ssl/certs');
    mkdirSync(etc, { recursive: true });
    const conf = join(root, 'etc/ca-certificates.conf');
    const env = { ...process.env, LC_ALL: 'C.UTF-8', TMPDIR: dir };
    run('sh', ['-c', MAKE_CONF, 'sh', join(control, 'config'), certsdir, conf], { env });
    run('sh', [join(root, 'usr/sbin/update-ca-certificates'), '--certsconf', conf, '--certsdir', certsdir, '--localcertsdir', local, '--etccertsdir', etc, '--hooksdir', ''], { env });
    const expected = readFileSync(join(etc, 'ca-certificates.crt'), 'latin1');

    const files = [...readTree(root, 'usr/share'), ...readTree(root, 'usr/local')]; // copyright etc. included: ignored
    const got = caBundle(files.reverse());
    assert.equal(got.length, expected.length);
    assert.ok(got === expected, 'the bundle differs from update-ca-certificates\' output');
    const order = bundledCertificates(files).map((c) => c.path);
    assert.equal(order.length, listFiles(certsdir).length + 2);
    assert.deepEqual(order.slice(-2), ['/usr/local/share/ca-certificates/sub/Alpha.crt', '/usr/local/share/ca-certificates/zeta.crt']);
    assert.ok(order.indexOf('/usr/share/ca-certificates/mozilla/a_lower_case_first.crt') < order.indexOf('/usr/share/ca-certificates/mozilla/Ärger_Root.crt'));
    assert.ok(order.indexOf('/usr/share/ca-certificates/mozilla/ACCVRAIZ1.crt') < order.indexOf('/usr/share/ca-certificates/mozilla/AC_RAIZ_FNMT-RCM.crt'));
  } finally {
    cleanup();
  }
});

test('the host\'s own bundle (its ca-certificates, its local certs) follows the same rule', (t) => {
  const bundle = '/etc/ssl/certs/ca-certificates.crt';
  const conf = '/etc/ca-certificates.conf';
  if (!existsSync(bundle) || !existsSync(conf) || !existsSync('/usr/share/ca-certificates')) return t.skip('this host has no Debian CA bundle');
  const files = [...readTree('/', 'usr/share/ca-certificates'), ...(existsSync('/usr/local/share/ca-certificates') ? readTree('/', 'usr/local/share/ca-certificates') : [])];
  const listed = readFileSync(conf, 'utf8').split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  const shipped = files.filter((f) => f.path.startsWith('./usr/share/') && f.path.endsWith('.crt')).map((f) => f.path.slice('./usr/share/ca-certificates/'.length));
  if (listed.some((l) => l.startsWith('!')) || [...listed].sort().join('\n') !== [...shipped].sort().join('\n')) {
    return t.skip('this host\'s /etc/ca-certificates.conf deselects or adds certificates');
  }
  assert.ok(caBundle(files) === readFileSync(bundle, 'latin1'), 'the host bundle differs');
});

test('rules: final newline added only when missing, bytewise order, other files ignored, duplicates refused', () => {
  const c = (path: string, pem: string): CaCertificateFile => ({ path, pem });
  assert.equal(
    caBundle([
      c('/usr/share/ca-certificates/mozilla/b.crt', 'B'),
      c('usr/share/ca-certificates/mozilla/B.crt', 'b\n'),
      c('./usr/local/share/ca-certificates/a.crt', 'L'),
      c('usr/share/ca-certificates/mozilla/empty.crt', ''),
      c('usr/share/ca-certificates/mozilla/x.pem', 'ignored'),
      c('usr/share/doc/ca-certificates/copyright', 'ignored'),
      c('etc/ssl/certs/x.crt', 'ignored'),
    ]),
    'b\nB\nL\n',
  );
  assert.equal(caBundle([]), '');
  assert.throws(() => caBundle([c('usr/share/ca-certificates/a.crt', 'x'), c('/usr/share/ca-certificates/a.crt', 'y')]), failed);
  assert.throws(() => caBundle([c('usr/share/ca-certificates/../a.crt', 'x')]), failed);
});

test('generator, on a crafted ca-certificates .deb staged as the build stages it: the bundle, and only docs and directories ship', async () => {
  const [ca] = await stageCrafted(staging(), [CRAFTED_CA_CERTIFICATES]);
  // The certificates are kept aside for the generator, whatever the path rules keep.
  assert.deepEqual([...ca!.wanted.keys()].sort(), ['usr/share/ca-certificates/mozilla/A Root (2).crt', 'usr/share/ca-certificates/mozilla/B_Root.crt']);
  const certs = await certificatesOf(ca!);
  const [bundle, ...more] = caBundleEntries(certs, 1_750_000_000);
  assert.equal(more.length, 0);
  assert.equal(bundle!.path, CA_BUNDLE_PATH);
  assert.deepEqual([bundle!.type, bundle!.mode, bundle!.uid, bundle!.gid, bundle!.uname, bundle!.gname, bundle!.mtime, bundle!.owner], ['file', 0o644, 0, 0, 'root', 'root', 1_750_000_000, 'distill:ca-certificates']);
  // update-ca-certificates' order (bytewise by name: ' ' < '_'), a newline added where the file lacks one.
  const body = bundle!.body;
  const text = body?.kind === 'bytes' ? body.data.toString('utf8') : '';
  assert.equal(text, TEST_ROOT_A + TEST_ROOT_B.trimEnd() + '\n');
  assert.equal(bundle!.size, Buffer.byteLength(text));
  // Of the package itself: its copyright and its directories outside the certificate tree; no
  // certificate, no update script, no README (the path rules drop docs but the copyright).
  const shipped = ca!.entries.filter((e) => shipsEntry('ca-certificates', e)).map((e) => `${e.type} ${e.path}`).sort();
  assert.deepEqual(shipped, [
    'dir etc',
    'dir etc/ca-certificates',
    'dir etc/ca-certificates/update.d',
    'dir usr',
    'dir usr/local',
    'dir usr/local/share',
    'dir usr/share',
    'dir usr/share/doc',
    'dir usr/share/doc/ca-certificates',
    'dir usr/local/share/ca-certificates',
    'dir usr/sbin',
    'file usr/share/doc/ca-certificates/copyright',
  ].sort());
});
