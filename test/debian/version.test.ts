// Tests for src/debian/version.ts: dpkg version parsing, comparison and relations, against explicit
// expectations (dpkg's own lib/dpkg/t/t-version.c cases and deb-version(7) examples) and, when `dpkg` is
// installed, against `dpkg --compare-versions` itself on ~200 tricky pairs.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';
import { isDistillError } from '../../src/errors.js';
import {
  compareVersions,
  formatVersion,
  isValidVersion,
  parseVersion,
  versionSatisfies,
  type DebVersion,
} from '../../src/debian/version.js';

const V = (epoch: number, upstream: string, revision: string): DebVersion => ({ epoch, upstream, revision });

function throwsInvalid(s: string): void {
  assert.throws(
    () => parseVersion(s, 'Version of pkg'),
    (e: unknown) => isDistillError(e, 'VERSION_INVALID') && e.message.startsWith('Version of pkg: '),
    `expected ${JSON.stringify(s)} to be rejected`,
  );
}

describe('parseVersion', () => {
  it('splits epoch, upstream and revision as dpkg (t-version.c)', () => {
    const cases: [string, DebVersion][] = [
      ['0', V(0, '0', '')],
      ['0:0', V(0, '0', '')],
      ['0:0-0', V(0, '0', '0')],
      ['0:0.0-0.0', V(0, '0.0', '0.0')],
      ['1:0', V(1, '0', '')],
      ['5:1', V(5, '1', '')],
      // multiple hyphens: the revision starts after the LAST one
      ['0:0-0-0', V(0, '0-0', '0')],
      ['0:0-0-0-0', V(0, '0-0-0', '0')],
      ['1-2-3', V(0, '1-2', '3')],
      // multiple colons: the epoch ends at the FIRST one
      ['0:0:0-0', V(0, '0:0', '0')],
      ['0:0:0:0-0', V(0, '0:0:0', '0')],
      ['0:0:0-0-0', V(0, '0:0-0', '0')],
      ['0:0-0:0-0', V(0, '0-0:0', '0')],
      // every character allowed in upstream, then in revision
      ['0:09azAZ.-+~:-0', V(0, '09azAZ.-+~:', '0')],
      ['0:0-azAZ09.+~', V(0, '0', 'azAZ09.+~')],
      // leading and trailing blanks are trimmed
      ['  \t0:0-1', V(0, '0', '1')],
      ['0:0-1\t  ', V(0, '0', '1')],
      ['\t  0:0-1  \t', V(0, '0', '1')],
      // real-world shapes
      ['2.41-12', V(0, '2.41', '12')],
      ['1:2.39.5-1+deb12u2', V(1, '2.39.5', '1+deb12u2')],
      ['3.13.5-2', V(0, '3.13.5', '2')],
      ['2.0.0~rc1+dfsg-1~bpo12+1', V(0, '2.0.0~rc1+dfsg', '1~bpo12+1')],
      ['007', V(0, '007', '')],
      ['01:1', V(1, '1', '')],
      ['2147483647:1', V(2147483647, '1', '')],
    ];
    for (const [s, want] of cases) assert.deepEqual(parseVersion(s), want, s);
  });

  it('rejects what dpkg reports as an error', () => {
    for (const s of [
      '', // version string is empty
      '  ',
      '\t',
      '0:', // nothing after colon
      '1:',
      '0:0 0-1', // embedded spaces
      '1.0 1',
      '-1:0-1', // negative epoch
      '999999999999999999999999:0-1', // huge epoch
      '2147483648:1',
      '99999999999:1',
      'a:0-0', // epoch not a number
      'A:0-0',
      '1a:0',
      ':1.0', // epoch empty
      '-0', // version number empty
      '0:-0',
      '-',
      '1.0-', // revision number empty
      '1:1.0-',
      '1.0-a:b', // the first ':' ends a non-numeric epoch
    ]) {
      throwsInvalid(s);
    }
  });

  it("rejects what dpkg's strict parser refuses (dpkg only warns when reading its status file)", () => {
    throwsInvalid('0:abc3-0'); // upstream not starting with a digit
    throwsInvalid('abc');
    throwsInvalid('~1');
    for (const c of "!#@$%&/|\\<>()[]{};,_=*^'") throwsInvalid(`0:0${c}-0`); // invalid in upstream
    throwsInvalid('0:0-0:0'); // ':' in revision
    for (const c of "!#@$%&/|\\<>()[]{}:;,_=*^'") throwsInvalid(`0:0-0${c}`); // invalid in revision
    throwsInvalid('1.0\n');
    throwsInvalid('1.0é');
    throwsInvalid('1.0-1\u0000');
  });

  it('is stricter than dpkg on the epoch: digits only (dpkg uses strtol, which also takes a sign)', () => {
    throwsInvalid('+1:0');
    throwsInvalid('\n1:0');
    throwsInvalid(' 1 :0');
  });

  it('never throws anything but DistillError, and is linear on long input', () => {
    const inputs: unknown[] = [undefined, null, 5, {}, '9'.repeat(200_000), `1:${'a-'.repeat(100_000)}1`, ':'.repeat(100_000)];
    for (const s of inputs) {
      try {
        parseVersion(s as string);
      } catch (e) {
        assert.ok(isDistillError(e, 'VERSION_INVALID'), String(e));
        assert.ok((e as Error).message.length < 400, 'message stays short');
      }
    }
  });

  it('isValidVersion', () => {
    assert.equal(isValidVersion('1.0-1'), true);
    assert.equal(isValidVersion('1.0-'), false);
  });
});

describe('formatVersion', () => {
  it('prints as dpkg does, round-tripping through parseVersion', () => {
    const cases: [string, string][] = [
      ['0:1.0', '1.0'],
      ['1:1.0-1', '1:1.0-1'],
      ['1.0-0', '1.0-0'],
      ['0:1:2', '0:1:2'], // epoch kept: "1:2" would re-parse with epoch 1
      ['1-2-3', '1-2-3'],
      ['  2.0 ', '2.0'],
    ];
    for (const [s, want] of cases) {
      assert.equal(formatVersion(parseVersion(s)), want);
      assert.deepEqual(parseVersion(formatVersion(parseVersion(s))), parseVersion(s));
    }
  });
});

// [a, b, sign of compare(a, b)]: expectations written out by hand, independent of dpkg.
const table: [string, string, number][] = [
  ['1.0', '1.0', 0],
  ['1.0', '1.0-0', 0], // an absent revision compares like "0"
  ['1.0', '1.0-00', 0],
  ['0:1.0', '1.0', 0],
  ['00:1.0', '1.0', 0],
  ['1.0-0', '1.0-1', -1],
  ['1.0', '1.0-1', -1],
  ['1:1.0', '2.0', 1], // epoch first
  ['1:0.1', '0:99', 1],
  ['2:1', '10:1', -1], // epochs are numbers
  ['1.0~rc1', '1.0', -1], // '~' sorts before the end
  ['1.0~~', '1.0~', -1],
  ['1.0~~a', '1.0~~', 1],
  ['1.0~', '1.0', -1],
  ['1.0~~', '1.0~~a', -1],
  ['1.0~rc1-1', '1.0-1', -1],
  ['1.0+b1', '1.0', 1], // '+' after the end
  ['1.0.1', '1.0', 1],
  ['1.0a', '1.0', 1], // a letter after the end
  ['1.0a', '1.0+', -1], // letters before non-letters
  ['1.0a', '1.0.', -1],
  ['1.0Z', '1.0a', -1], // ASCII order among letters
  ['1.0+', '1.0.', -1], // ASCII order among non-letters: '+' (43) < '.' (46)
  ['1.01', '1.1', 0], // leading zeros are ignored
  ['1.001', '1.1', 0],
  ['1.010', '1.1', 1],
  ['1.2', '1.10', -1], // digit runs compare numerically
  ['1.00000000000000000000001', '1.1', 0],
  ['1.99999999999999999999999', '1.100000000000000000000000', -1],
  ['1.18446744073709551616', '1.18446744073709551615', 1], // past 2^64
  ['9007199254740993', '9007199254740992', 1], // past Number.MAX_SAFE_INTEGER
  ['1-2-3', '1-2-4', -1],
  ['1-2-3', '1-3', 1], // upstream "1-2" vs "1": after the common "1", '-' (order 301) beats the end
  ['2.30-1', '2.4-1', 1],
  ['1.0-1ubuntu1', '1.0-1', 1],
  ['1.0-1~bpo12+1', '1.0-1', -1],
  ['1.0-1+deb12u1', '1.0-1', 1],
  ['3.0.13-1~deb12u1', '3.0.13-1', -1],
  ['1:2.39.5-1+deb12u2', '1:2.39.5-1', 1],
  ['2.36-9+deb12u10', '2.36-9+deb12u9', 1],
  ['0:09azAZ.-+~:-0', '0:09azAZ.-+~:-0', 0],
];

describe('compareVersions', () => {
  it("dpkg_version_compare on objects (t-version.c)", () => {
    assert.equal(compareVersions(V(0, '', ''), V(0, '', '')), 0);
    assert.notEqual(compareVersions(V(1, '', ''), V(2, '', '')), 0);
    assert.notEqual(compareVersions(V(0, '1', '1'), V(0, '2', '1')), 0);
    assert.notEqual(compareVersions(V(0, '1', '1'), V(0, '1', '2')), 0);
    assert.equal(compareVersions(V(0, '0', '0'), V(0, '0', '0')), 0);
    assert.equal(compareVersions(V(0, '0', '00'), V(0, '00', '0')), 0);
    assert.equal(compareVersions(V(1, '2', '3'), V(1, '2', '3')), 0);
    assert.equal(compareVersions(V(0, '0', '0'), V(1, '0', '0')), -1);
    assert.equal(compareVersions(V(1, '0', '0'), V(0, '0', '0')), 1);
    assert.equal(compareVersions(V(0, 'a', '0'), V(0, 'b', '0')), -1);
    assert.equal(compareVersions(V(0, 'b', '0'), V(0, 'a', '0')), 1);
    assert.equal(compareVersions(V(0, '0', 'a'), V(0, '0', 'b')), -1);
    assert.equal(compareVersions(V(0, '0', 'b'), V(0, '0', 'a')), 1);
  });


  it('orders strings as dpkg (explicit expectations)', () => {
    for (const [a, b, want] of table) {
      assert.equal(compareVersions(a, b), want, `${a} vs ${b}`);
      assert.equal(compareVersions(b, a), 0 - want, `${b} vs ${a}`);
    }
  });

  it("verrevcmp's character order: '~' < end < letters < non-letters", () => {
    const sorted = ['1~~', '1~~a', '1~', '1', '1A', '1Z', '1a', '1z', '1+', '1.'].map((u) => V(0, u, ''));
    for (let i = 0; i + 1 < sorted.length; i++) {
      assert.equal(compareVersions(sorted[i]!, sorted[i + 1]!), -1, `${sorted[i]!.upstream} < ${sorted[i + 1]!.upstream}`);
    }
  });

  it('rejects invalid strings with VERSION_INVALID', () => {
    assert.throws(() => compareVersions('1.0-', '1.0'), (e: unknown) => isDistillError(e, 'VERSION_INVALID'));
    assert.throws(() => compareVersions('1.0', ''), (e: unknown) => isDistillError(e, 'VERSION_INVALID'));
  });

  it('is linear on very long digit runs and long alternations', () => {
    const a = `1.${'0'.repeat(300_000)}1`;
    const b = `1.${'0'.repeat(299_999)}1`;
    assert.equal(compareVersions(a, b), 0);
    assert.equal(compareVersions(`1.${'9'.repeat(300_000)}`, `1.${'9'.repeat(299_999)}`), 1);
    assert.equal(compareVersions('1' + 'a1'.repeat(100_000), '1' + 'a1'.repeat(100_000) + '~'), 1);
  });
});

describe('versionSatisfies', () => {
  it('applies each relation (t-version.c dpkg_version_relate)', () => {
    const ops = ['<<', '<=', '=', '>=', '>>'] as const;
    const expect: Record<string, boolean[]> = {
      // candidate, version: results for << <= = >= >>
      '1-1 1-1': [false, true, true, true, false],
      '1-1 2-1': [true, true, false, false, false],
      '2-1 1-1': [false, false, false, true, true],
      '2.36-9 2.34': [false, false, false, true, true],
      '1.0~rc1 1.0': [true, true, false, false, false],
      '1.0 1.0-0': [false, true, true, true, false],
    };
    for (const [pair, results] of Object.entries(expect)) {
      const [cand, ver] = pair.split(' ') as [string, string];
      ops.forEach((op, k) => assert.equal(versionSatisfies(cand, op, ver), results[k], `${cand} ${op} ${ver}`));
    }
  });
});

// ---- cross-check against dpkg itself ----

const hasDpkg = spawnSync('dpkg', ['--version'], { stdio: 'ignore' }).status === 0;
const NO_DPKG = 'dpkg is not installed on this machine: the cross-check against dpkg --compare-versions is skipped';

/** A small deterministic PRNG (mulberry32), so the generated pairs are the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function trickyPairs(): [string, string][] {
  const hand: [string, string][] = table
    .filter(([a, b]) => isValidVersion(a) && isValidVersion(b))
    .map(([a, b]) => [a, b]);
  hand.push(
    ['1.0', '1.0-0'],
    ['0:1.0', '1.0'],
    ['1:1.0', '1.0'],
    ['1:0', '0:1'],
    ['1.0~', '1.0~~'],
    ['1.0~~~', '1.0~~'],
    ['1~~', '1~'],
    ['1.0+~', '1.0+'],
    ['1.0.~', '1.0.'],
    ['1.0a~', '1.0a'],
    ['1.0-1~', '1.0-1'],
    ['1.0-~', '1.0-0'],
    ['1.00000000000000000000001', '1.00000000000000000000002'],
    ['1.00000000000000000000001', '1.1'],
    ['123456789012345678901234567890', '123456789012345678901234567891'],
    ['99999999999999999999999999999', '100000000000000000000000000000'],
    ['1-2-3', '1-2-3'],
    ['1-2-3', '1.2-3'],
    ['1-2-3', '1:2-3'],
    ['1:2:3', '1:2.3'],
    ['0:0-0-0', '0-0-0'],
    ['0', '00'],
    ['0', '0-0'],
    ['0.0', '0'],
    ['0.0', '0.'],
    ['1.0a', '1.0A'],
    ['1.0a', '1.0+'],
    ['1.0a', '1.0~'],
    ['1.0.a', '1.0a'],
    ['1.0+a', '1.0.a'],
    ['1.0-a', '1.0-A'],
    ['1.0-1a', '1.0-1.'],
    ['2.6.32-5', '2.6.32-5.1'],
    ['1.2.3', '1.2.3.0'],
    ['1.2.3', '1.2.3-0.0'],
    ['4.19.0-1+b1', '4.19.0-1'],
    ['4.19.0-1', '4.19.0-1+b1~'],
    ['1:1', '2147483647:0'],
    ['2147483647:1', '2147483647:1.0'],
    ['10:1', '9:99'],
  );

  const rnd = prng(20250601);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const pieces = ['0', '1', '9', '01', '00', '10', '.', '.', '+', '~', '~~', 'a', 'z', 'A', 'Z', 'rc', 'dfsg', '-', ':'];
  const revs = ['', '0', '1', '00', '1.1', '1a', '1+b1', '1~bpo1', '~', 'a', '0~', '2+deb12u1'];
  const gen = (): string => {
    let up = pick(['0', '1', '2', '10', '1.0', '01']);
    const n = Math.floor(rnd() * 5);
    for (let k = 0; k < n; k++) up += pick(pieces);
    const epoch = pick(['', '', '', '0:', '1:', '10:', '01:']);
    const rev = pick(revs);
    return `${epoch}${up}${rev === '' ? '' : `-${rev}`}`;
  };
  const mutate = (v: string): string => {
    switch (Math.floor(rnd() * 7)) {
      case 0:
        return v + pick(['~', '+', '.', 'a', '0', '1', '~~']);
      case 1:
        return v.replace(/\d+/, (d) => `0${d}`);
      case 2:
        return v.length > 1 ? v.slice(0, -1) : v;
      case 3:
        return v.includes('-') ? `${v}~` : `${v}-0`;
      case 4:
        return v.includes(':') ? v.replace(/^\d+:/, '') : `0:${v}`;
      case 5:
        return v.replace(/[a-z]/, (c) => c.toUpperCase());
      default:
        return gen();
    }
  };
  const out = hand.filter(([a, b]) => isValidVersion(a) && isValidVersion(b));
  const seen = new Set(out.map(([a, b]) => `${a} ${b}`));
  for (let guard = 0; out.length < 200 && guard < 10_000; guard++) {
    const a = gen();
    const b = mutate(a);
    if (!isValidVersion(a) || !isValidVersion(b) || seen.has(`${a} ${b}`)) continue;
    seen.add(`${a} ${b}`);
    out.push([a, b]);
  }
  return out;
}

/** One shell runs dpkg for every pair (two execs at most each): ~0.5 s for 200 pairs. */
function dpkgCompare(pairs: readonly [string, string][]): number[] {
  const script =
    'while read -r a b; do ' +
    'if dpkg --compare-versions "$a" lt "$b"; then echo -1; ' +
    'elif dpkg --compare-versions "$a" eq "$b"; then echo 0; else echo 1; fi; done';
  const r = spawnSync('sh', ['-c', script], { input: pairs.map(([a, b]) => `${a} ${b}\n`).join(''), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'dpkg printed warnings: a pair is not a clean version');
  return r.stdout.trim().split('\n').map(Number);
}

/** dpkg's verdict on a version: 'ok', 'warn' (accepted by --compare-versions with a warning) or 'error'. */
function dpkgValidity(versions: readonly string[]): string[] {
  const script =
    'while IFS= read -r v; do out=$(dpkg --compare-versions "$v" eq "$v" 2>&1); rc=$?; ' +
    'if [ $rc -ne 0 ]; then echo error; elif [ -n "$out" ]; then echo warn; else echo ok; fi; done';
  const r = spawnSync('sh', ['-c', script], { input: versions.map((v) => `${v}\n`).join(''), encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n');
}

describe('cross-check with dpkg', () => {
  it('compareVersions agrees with dpkg --compare-versions on ~200 tricky pairs', { skip: hasDpkg ? false : NO_DPKG }, () => {
    const pairs = trickyPairs();
    assert.ok(pairs.length >= 190, `only ${pairs.length} pairs`);
    const theirs = dpkgCompare(pairs);
    assert.equal(theirs.length, pairs.length);
    const mismatches = pairs
      .map(([a, b], k) => ({ a, b, ours: compareVersions(a, b), dpkg: theirs[k] }))
      .filter((m) => m.ours !== m.dpkg);
    assert.deepEqual(mismatches, []);
    for (const [a, b] of pairs) assert.equal(compareVersions(b, a), 0 - compareVersions(a, b), `antisymmetry ${a} ${b}`);
  });

  it('parseVersion accepts exactly what dpkg accepts without complaint', { skip: hasDpkg ? false : NO_DPKG }, () => {
    // dpkg would read a leading '-' as an option, and a newline ends a line here: those stay out.
    const versions = [
      '1.0', '1:1.0-1', '0:0', '1-2-3', '0:0:0-0', '0:09azAZ.-+~:-0', '0:0-azAZ09.+~', ' 1.0 ', '\t1.0',
      '2147483647:1', '2147483648:1', '99999999999999999999:1', '1:', ':1', 'a:1', '1a:1', '1.0-', '1:-1',
      '1.0 1', 'abc', '0:abc3-0', '1.0_1', '1.0-1_1', '1.0-a:b', '1.0-1:1', '~1', '1.0é', '1.0(1)', '01:1',
      '1.0-~', '1.0~-1', '1..0', '1.0-1.', '1.0-.', '1!', '1:2:3', '1-', '0:0-0:0',
    ];
    const theirs = dpkgValidity(versions);
    assert.equal(theirs.length, versions.length);
    const mismatches = versions
      .map((v, k) => ({ v, ours: isValidVersion(v) ? 'ok' : 'rejected', dpkg: theirs[k] }))
      .filter((m) => (m.ours === 'ok') !== (m.dpkg === 'ok'));
    assert.deepEqual(mismatches, []);
  });
});
