// Tests for src/debian/relations.ts: relationship fields (Policy §7.1) parsed as dpkg's f_dependency
// does, with explicit expectations, a garbage-input fuzz, and, when `dpkg-query` is installed, a
// cross-check of what dpkg itself accepts, warns about or rejects.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { isDistillError } from '../../src/errors.js';
import {
  archMatches,
  formatRelation,
  formatRelations,
  parseProvides,
  parseRelations,
  relationAppliesToArch,
  type Alternatives,
  type Relation,
} from '../../src/debian/relations.js';
import { tempDir } from '../helpers/tmp.js';

const W = 'Depends of foo 1.0';

function rejects(field: string, pattern?: RegExp, options?: { alternatives?: boolean }): void {
  assert.throws(
    () => parseRelations(field, W, options),
    (e: unknown) =>
      isDistillError(e, 'RELATION_INVALID') && e.message.startsWith(`${W}: `) && (pattern === undefined || pattern.test(e.message)),
    `expected ${JSON.stringify(field)} to be rejected${pattern ? ` with ${pattern}` : ''}`,
  );
}

describe('parseRelations', () => {
  it('parses real-world Depends fields', () => {
    assert.deepEqual(
      parseRelations(
        'libc6 (>= 2.34), libssl3t64 (>= 3.0.0), python3.13-minimal (= 3.13.5-2), debconf (>= 0.5) | debconf-2.0',
        W,
      ),
      [
        [{ name: 'libc6', op: '>=', version: '2.34' }],
        [{ name: 'libssl3t64', op: '>=', version: '3.0.0' }],
        [{ name: 'python3.13-minimal', op: '=', version: '3.13.5-2' }],
        [{ name: 'debconf', op: '>=', version: '0.5' }, { name: 'debconf-2.0' }],
      ],
    );
    assert.deepEqual(parseRelations('awk | mawk', W), [[{ name: 'awk' }, { name: 'mawk' }]]);
    assert.deepEqual(parseRelations('perl:any', W), [[{ name: 'perl', archQualifier: 'any' }]]);
    assert.deepEqual(parseRelations('python3:any (>= 3.11~)', W), [
      [{ name: 'python3', archQualifier: 'any', op: '>=', version: '3.11~' }],
    ]);
    assert.deepEqual(parseRelations('libgcc-s1 (>= 3.0), libstdc++6 (>= 13.1), zlib1g (>= 1:1.2.0)', W), [
      [{ name: 'libgcc-s1', op: '>=', version: '3.0' }],
      [{ name: 'libstdc++6', op: '>=', version: '13.1' }],
      [{ name: 'zlib1g', op: '>=', version: '1:1.2.0' }],
    ]);
    assert.deepEqual(parseRelations('libc6 (<< 2.42), libc6 (>= 2.41), gcc-14-base:native', W), [
      [{ name: 'libc6', op: '<<', version: '2.42' }],
      [{ name: 'libc6', op: '>=', version: '2.41' }],
      [{ name: 'gcc-14-base', archQualifier: 'native' }],
    ]);
    assert.deepEqual(parseRelations('foo:amd64 (>> 1:2.0-1~bpo12+1)', W), [
      [{ name: 'foo', archQualifier: 'amd64', op: '>>', version: '1:2.0-1~bpo12+1' }],
    ]);
  });

  it('accepts continuation lines and whitespace between any tokens', () => {
    const field = 'libc6 (>= 2.34),\n libssl3t64\n  (>= 3.0.0) ,\n\tdebconf(>=0.5)|debconf-2.0 ,perl:any\t(\t<= 5.40 )';
    assert.deepEqual(parseRelations(field, W), [
      [{ name: 'libc6', op: '>=', version: '2.34' }],
      [{ name: 'libssl3t64', op: '>=', version: '3.0.0' }],
      [{ name: 'debconf', op: '>=', version: '0.5' }, { name: 'debconf-2.0' }],
      [{ name: 'perl', archQualifier: 'any', op: '<=', version: '5.40' }],
    ]);
    assert.deepEqual(parseRelations('  \n aa , bb \r\n', W), [[{ name: 'aa' }], [{ name: 'bb' }]]);
  });

  it('treats an empty field as no relations, as dpkg does', () => {
    assert.deepEqual(parseRelations('', W), []);
    assert.deepEqual(parseRelations(' \n\t ', W), []);
  });

  it("reads the obsolete '<' and '>' as '<=' and '>=', and a bare version as '=' (dpkg warns)", () => {
    assert.deepEqual(parseRelations('aa (< 1), bb (> 2), cc (3), dd (<4)', W), [
      [{ name: 'aa', op: '<=', version: '1' }],
      [{ name: 'bb', op: '>=', version: '2' }],
      [{ name: 'cc', op: '=', version: '3' }],
      [{ name: 'dd', op: '<=', version: '4' }],
    ]);
  });

  it('parses [arch] restrictions and drops <profile> restrictions (source syntax)', () => {
    assert.deepEqual(parseRelations('dd [amd64 arm64], ee (>= 1) [!i386 !armel] <!nocheck> <stage1 cross>, ff <!nodoc>', W), [
      [{ name: 'dd', arches: { negated: false, list: ['amd64', 'arm64'] } }],
      [{ name: 'ee', op: '>=', version: '1', arches: { negated: true, list: ['i386', 'armel'] } }],
      [{ name: 'ff' }],
    ]);
    assert.deepEqual(parseRelations('gg [ linux-any\n ] | hh', W), [
      [{ name: 'gg', arches: { negated: false, list: ['linux-any'] } }, { name: 'hh' }],
    ]);
  });

  it('rejects malformed fields, naming the field and the offending text', () => {
    rejects('aa, , bb', /missing package name/); // dpkg: "missing package name, or garbage…"
    rejects('aa,,bb', /missing package name/);
    rejects('aa, bb,', /missing package name/); // a trailing comma too, like dpkg
    rejects(',aa', /missing package name/);
    rejects('aa |', /missing package name/);
    rejects('| aa', /missing package name/);
    rejects('aa (>= 1', /unterminated/);
    rejects('aa (1', /unterminated/);
    rejects('aa (>= 1 2)', /contains "2" instead of '\)'/);
    rejects('aa (>= 1) (>= 2)', /syntax error after reference to package aa/);
    rejects('aa (>= 1))', /syntax error after reference to package aa/);
    rejects('aa >= 1', /syntax error after reference to package aa/);
    rejects('aa bb', /syntax error after reference to package aa/);
    rejects('aa :any', /syntax error after reference to package aa/);
    rejects('aa (>< 1)', /bad version relationship ></);
    rejects('aa (<> 1)', /bad version relationship <>/);
    rejects('aa (=> 1)', /contains "1" instead of '\)'/); // dpkg: '=' then the version ">"…
    rejects('aa (=>1)', /invalid version ">1"/); // …so "=>" never works
    rejects('aa (== 1)', /contains/);
    rejects('aa (<<< 1)', /contains/);
    rejects('aa (>=)', /invalid version ""/);
    rejects('aa ()', /invalid version ""/);
    rejects('aa (>= 1-)', /invalid version "1-"/);
    rejects('aa (>= 1:)', /invalid version "1:"/);
    rejects('aa (= 1.0_1)', /invalid version/);
    rejects('aa (= a1)', /invalid version/);
    rejects('aa (>= 1.0 (2))', /contains "\(" instead/);
    rejects('aa:', /missing architecture name/);
    rejects('aa:(>= 1)', /missing architecture name/);
    rejects('aa:any:bb', /invalid architecture qualifier "any:bb"/);
    rejects('aa:foo_bar', /invalid architecture qualifier/);
    rejects('aa:ANY', /invalid architecture qualifier/);
    rejects('-aa', /invalid package name "-aa"/);
    rejects('a', /invalid package name "a"/); // Policy: at least two characters
    rejects('AA', /invalid package name "AA"/); // dpkg lower-cases it; Policy forbids it
    rejects('aa_bb', /invalid package name/);
    rejects('aa!', /invalid package name/);
    rejects('aa)', /invalid package name/);
    rejects('aa [amd64', /unterminated architecture restriction/);
    rejects('aa []', /empty architecture restriction/);
    rejects('aa [amd64 !i386]', /mixes negated and plain/); // Policy §7.1 forbids mixing
    rejects('aa [amd_64]', /invalid architecture/);
    rejects('aa [amd64] (>= 1)', /syntax error after reference/);
    rejects('aa <!nocheck', /unterminated build profile/);
    rejects('aa <>', /empty build profile/);
    rejects('aa <no check!>', /invalid build profile "check!"/);
    rejects('aa <!nocheck> [amd64]', /syntax error after reference/);
    rejects('aa | bb', /alternatives \('\|'\) not allowed/, { alternatives: false });
  });

  it('quotes the offending text briefly, even from a huge hostile field', () => {
    const field = `${'aa, '.repeat(50_000)}Bad\u0000Name, ${'bb, '.repeat(50_000)}cc`;
    try {
      parseRelations(field, W);
      assert.fail('should throw');
    } catch (e) {
      assert.ok(isDistillError(e, 'RELATION_INVALID'));
      assert.ok(e.message.length < 600, `message is ${e.message.length} characters`);
      assert.match(e.message, /Bad\\u0000Name/);
      assert.ok(e.hint);
    }
  });

  it('never throws anything but DistillError on garbage, and stays fast', () => {
    let seed = 12345;
    const rnd = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 4294967296;
    };
    const alphabet = ['aa', 'b', '1', ':', 'any', '(', ')', '<', '>', '=', '<<', '>=', ' ', '\n ', ',', '|', '[', ']', '!', '~', '-', '.', '+', 'é', '\u0000'];
    let accepted = 0;
    for (let k = 0; k < 3000; k++) {
      let s = '';
      const n = 1 + Math.floor(rnd() * 14);
      for (let j = 0; j < n; j++) s += alphabet[Math.floor(rnd() * alphabet.length)]!;
      let parsed: Alternatives[];
      try {
        parsed = parseRelations(s, W);
      } catch (e) {
        assert.ok(isDistillError(e, 'RELATION_INVALID'), `${JSON.stringify(s)}: ${String(e)}`);
        continue;
      }
      accepted++;
      // Whatever parses, formats back to text that parses to the same thing.
      assert.deepEqual(parseRelations(formatRelations(parsed), W), parsed, JSON.stringify(s));
    }
    assert.ok(accepted > 50, `only ${accepted} random fields parsed`);
    // Long input parses whole (a quadratic parser would not finish 100k entries within the test's time;
    // speed itself is measured in the bench, never asserted with a clock here).
    const big = Array.from({ length: 100_000 }, (_, i) => `pkg${i} (>= ${i}.0) | alt${i}:any`).join(',\n ');
    assert.equal(parseRelations(big, W).length, 100_000);
    for (const bad of [undefined, null, 42] as unknown[]) {
      assert.throws(() => parseRelations(bad as string, W), (e: unknown) => isDistillError(e, 'RELATION_INVALID'));
    }
  });
});

describe('parseProvides', () => {
  it('parses names and exact versions', () => {
    assert.deepEqual(parseProvides('libssl3 (= 3.5.0-1), foo', 'Provides of libssl3t64'), [
      { name: 'libssl3', version: '3.5.0-1' },
      { name: 'foo' },
    ]);
    assert.deepEqual(parseProvides('awk,\n c-compiler, x-terminal-emulator (=1:2)', 'Provides'), [
      { name: 'awk' },
      { name: 'c-compiler' },
      { name: 'x-terminal-emulator', version: '1:2' },
    ]);
    assert.deepEqual(parseProvides('', 'Provides'), []);
  });

  it('rejects other operators, alternatives, qualifiers and restrictions', () => {
    for (const f of ['foo (>= 1)', 'foo (<< 1)', 'foo (< 1)', 'foo | bar', 'foo:any', 'foo [amd64]', 'foo, , bar']) {
      assert.throws(
        () => parseProvides(f, 'Provides of x'),
        (e: unknown) => isDistillError(e, 'RELATION_INVALID') && e.message.startsWith('Provides of x: '),
        f,
      );
    }
  });
});

describe('formatRelation', () => {
  it('prints canonical spacing', () => {
    assert.equal(formatRelation({ name: 'libc6', op: '>=', version: '2.34' }), 'libc6 (>= 2.34)');
    assert.equal(formatRelation({ name: 'python3', archQualifier: 'any', op: '>=', version: '3.11~' }), 'python3:any (>= 3.11~)');
    assert.equal(formatRelation({ name: 'perl', archQualifier: 'any' }), 'perl:any');
    assert.equal(formatRelation({ name: 'dd', arches: { negated: true, list: ['i386', 'armel'] } }), 'dd [!i386 !armel]');
    const field = 'aa(>=1)|bb:any , cc\n (<<2~) [amd64 arm64] <!nocheck>,dd (< 3)';
    assert.equal(formatRelations(parseRelations(field, W)), 'aa (>= 1) | bb:any, cc (<< 2~) [amd64 arm64], dd (<= 3)');
  });

  it('round-trips', () => {
    const rels: Relation[] = [
      { name: 'libc6' },
      { name: 'libc6', archQualifier: 'amd64', op: '=', version: '1:2.41-12' },
      { name: 'gcc-14', op: '<<', version: '14.3~' , arches: { negated: false, list: ['linux-any'] } },
    ];
    for (const r of rels) assert.deepEqual(parseRelations(formatRelation(r), W), [[r]]);
  });
});

describe('relationAppliesToArch', () => {
  const R = (negated: boolean, ...list: string[]): Relation => ({ name: 'xx', arches: { negated, list } });
  it('applies unrestricted relations everywhere', () => {
    assert.equal(relationAppliesToArch({ name: 'xx' }, 'amd64'), true);
  });
  it('includes listed architectures, or excludes negated ones', () => {
    assert.equal(relationAppliesToArch(R(false, 'amd64', 'arm64'), 'amd64'), true);
    assert.equal(relationAppliesToArch(R(false, 'amd64', 'arm64'), 'i386'), false);
    assert.equal(relationAppliesToArch(R(true, 'i386', 'armel'), 'amd64'), true);
    assert.equal(relationAppliesToArch(R(true, 'i386', 'armel'), 'armel'), false);
  });
  it('resolves wildcards as Dpkg::Arch does', () => {
    assert.equal(relationAppliesToArch(R(false, 'linux-any'), 'arm64'), true);
    assert.equal(relationAppliesToArch(R(false, 'linux-any'), 'hurd-i386'), false);
    assert.equal(relationAppliesToArch(R(false, 'any-arm'), 'armhf'), true);
    assert.equal(relationAppliesToArch(R(false, 'any-arm'), 'arm64'), false);
    assert.equal(relationAppliesToArch(R(false, 'any-amd64'), 'x32'), true);
    assert.equal(relationAppliesToArch(R(true, 'any-i386'), 'hurd-i386'), false);
    assert.equal(relationAppliesToArch(R(true, 'hurd-any'), 'amd64'), true);
    assert.equal(relationAppliesToArch(R(false, 'any'), 'some-new-arch'), true);
    assert.equal(archMatches('some-new-arch', 'some-new-arch'), true);
    assert.equal(archMatches('some-new-arch', 'linux-any'), false);
    assert.equal(archMatches('amd64', 'gnu-linux-any'), true);
    assert.equal(archMatches('amd64', 'musl-linux-any'), false);
    assert.equal(archMatches('amd64', 'any-any-any-any-any'), false);
  });
});

// ---- cross-check against dpkg's own parser (dpkg-query reading a status file) ----

const hasDpkgQuery = spawnSync('dpkg-query', ['--version'], { stdio: 'ignore' }).status === 0;
const NO_DPKG = 'dpkg-query is not installed on this machine: the cross-check against dpkg\'s field parser is skipped';

type Field = 'Depends' | 'Provides' | 'Conflicts';
/** What dpkg does with the field when reading its status file: accept silently, warn, or refuse. */
type DpkgVerdict = 'ok' | 'warn' | 'error';

const crossCases: { field: Field; value: string; dpkg: DpkgVerdict; ours: 'accept' | 'reject' }[] = [
  { field: 'Depends', value: 'libc6 (>= 2.34), libssl3t64 (>= 3.0.0), debconf (>= 0.5) | debconf-2.0', dpkg: 'ok', ours: 'accept' },
  { field: 'Depends', value: 'perl:any, python3:any (>= 3.11~), e2:native, f2:amd64', dpkg: 'ok', ours: 'accept' },
  { field: 'Depends', value: 'aa(>=1)|bb , cc\n (<<2~),\n dd\t(=\t1:2-3)', dpkg: 'ok', ours: 'accept' },
  { field: 'Depends', value: 'aa (< 1), bb (> 2)', dpkg: 'warn', ours: 'accept' },
  { field: 'Depends', value: 'aa (1.0)', dpkg: 'warn', ours: 'accept' },
  { field: 'Provides', value: 'libssl3 (= 3.5.0-1), foo', dpkg: 'ok', ours: 'accept' },
  { field: 'Conflicts', value: 'aa (<< 2), bb:any', dpkg: 'ok', ours: 'accept' },
  { field: 'Depends', value: 'aa, , bb', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa, bb,', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (>= 1', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (>= 1 2)', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (>= 1))', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (>< 1)', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (=> 1)', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (=>1)', dpkg: 'warn', ours: 'reject' }, // strict dpkg (dpkg-deb) refuses
  { field: 'Depends', value: 'aa (>= 1-)', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa (= 1.0_1)', dpkg: 'warn', ours: 'reject' },
  { field: 'Depends', value: 'aa (>=)', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa:', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa:foo_bar', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa bb', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: '-aa', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'aa!', dpkg: 'error', ours: 'reject' },
  { field: 'Depends', value: 'AA, a, aa_bb, cc:ANY', dpkg: 'ok', ours: 'reject' }, // Policy §5.6.1 is stricter than dpkg
  { field: 'Depends', value: 'aa [amd64]', dpkg: 'error', ours: 'accept' }, // source-only syntax, tolerated here
  { field: 'Depends', value: 'aa <!nocheck>', dpkg: 'error', ours: 'accept' },
  { field: 'Provides', value: 'foo | bar', dpkg: 'error', ours: 'reject' },
  { field: 'Provides', value: 'foo (>= 1)', dpkg: 'warn', ours: 'reject' },
  { field: 'Conflicts', value: 'aa | bb', dpkg: 'error', ours: 'reject' },
];

function ourVerdict(field: Field, value: string): 'accept' | 'reject' {
  try {
    if (field === 'Provides') parseProvides(value, field);
    else parseRelations(value, field, { alternatives: field === 'Depends' });
    return 'accept';
  } catch (e) {
    assert.ok(isDistillError(e, 'RELATION_INVALID'));
    return 'reject';
  }
}

/** Runs dpkg-query over a status file holding one package per field; returns its output and verdict. */
function dpkgQuery(dir: string, fields: readonly { field: Field; value: string }[]): { verdict: DpkgVerdict; out: string[] } {
  const stanzas = fields.map(
    ({ field, value }, k) =>
      `Package: pkg${k}\nStatus: install ok installed\nVersion: 1.0\nArchitecture: amd64\nMaintainer: x <x@example.org>\nDescription: x\n${field}: ${value}\n`,
  );
  writeFileSync(join(dir, 'status'), stanzas.join('\n'));
  const r = spawnSync('dpkg-query', [`--admindir=${dir}`, '-W', '-f', '${Depends}${Provides}${Conflicts}\\n', ...fields.map((_, k) => `pkg${k}`)], {
    encoding: 'utf8',
  });
  const verdict: DpkgVerdict = r.status !== 0 ? 'error' : r.stderr.includes('warning') ? 'warn' : 'ok';
  return { verdict, out: r.stdout.split('\n').slice(0, fields.length) };
}

describe('cross-check with dpkg', () => {
  it("agrees with dpkg's parser where intended, and differs only where documented", { skip: hasDpkgQuery ? false : NO_DPKG }, () => {
    const dir = tempDir('distill-relations-');
    try {
      mkdirSync(join(dir, 'updates'));
      mkdirSync(join(dir, 'info'));
      for (const c of crossCases) {
        assert.equal(ourVerdict(c.field, c.value), c.ours, `ours on ${c.field}: ${JSON.stringify(c.value)}`);
        const { verdict, out } = dpkgQuery(dir, [c]);
        assert.equal(verdict, c.dpkg, `dpkg on ${c.field}: ${JSON.stringify(c.value)}`);
        // Where both accept, dpkg's canonical text is ours.
        if (c.ours === 'accept' && c.dpkg !== 'error') {
          const ours = c.field === 'Provides' ? formatRelations(parseProvides(c.value, c.field).map((p) => [p.version === undefined ? { name: p.name } : { name: p.name, op: '=' as const, version: p.version }])) : formatRelations(parseRelations(c.value, c.field));
          assert.equal(out[0], ours, `formatting of ${JSON.stringify(c.value)}`);
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
