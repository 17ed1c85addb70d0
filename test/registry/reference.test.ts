// Image references, with the edge cases of distribution's reference_test.go / normalize_test.go and
// containers/image's docker/reference tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { isDistillError } from '../../src/errors.js';
import { apiHost, parseReference, withTagAndDigest } from '../../src/registry/reference.js';

const D = `sha256:${'ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff'}`;

function parts(s: string): [string, string, string | undefined, string | undefined] {
  const r = parseReference(s);
  return [r.registry, r.repository, r.tag, r.digest];
}

test('normalisation: Docker Hub, library/, registries with ports, localhost', () => {
  const cases: [string, [string, string, string | undefined, string | undefined]][] = [
    ['debian', ['docker.io', 'library/debian', undefined, undefined]],
    ['debian:trixie', ['docker.io', 'library/debian', 'trixie', undefined]],
    ['library/debian', ['docker.io', 'library/debian', undefined, undefined]],
    ['docker.io/debian', ['docker.io', 'library/debian', undefined, undefined]],
    ['index.docker.io/debian', ['docker.io', 'library/debian', undefined, undefined]],
    ['index.docker.io/docker/docker', ['docker.io', 'docker/docker', undefined, undefined]],
    ['fooo/bar', ['docker.io', 'fooo/bar', undefined, undefined]],
    ['other/library', ['docker.io', 'other/library', undefined, undefined]],
    ['ubuntu-12.04-base', ['docker.io', 'library/ubuntu-12.04-base', undefined, undefined]],
    ['127.0.0.1:5000/docker/docker', ['127.0.0.1:5000', 'docker/docker', undefined, undefined]],
    ['127.0.0.1:8000/privatebase', ['127.0.0.1:8000', 'privatebase', undefined, undefined]],
    ['localhost/foo', ['localhost', 'foo', undefined, undefined]],
    ['localhost:5000/foo/bar:v1', ['localhost:5000', 'foo/bar', 'v1', undefined]],
    ['example.com/private/moonbase', ['example.com', 'private/moonbase', undefined, undefined]],
    ['example.com:8000/privatebasee', ['example.com:8000', 'privatebasee', undefined, undefined]],
    // A name without a slash is never a registry, even with a dot or a colon: that colon is a tag.
    ['test.com:tag', ['docker.io', 'library/test.com', 'tag', undefined]],
    ['test.com:5000', ['docker.io', 'library/test.com', '5000', undefined]],
    ['test.com/repo:tag', ['test.com', 'repo', 'tag', undefined]],
    ['test:5000/repo', ['test:5000', 'repo', undefined, undefined]],
    [`test:5000/repo@${D}`, ['test:5000', 'repo', undefined, D]],
    [`test:5000/repo:tag@${D}`, ['test:5000', 'repo', 'tag', D]],
    ['foo/foo_bar.com:8080', ['docker.io', 'foo/foo_bar.com', '8080', undefined]],
    ['sub-dom1.foo.com/bar/baz/quux:some-long-tag', ['sub-dom1.foo.com', 'bar/baz/quux', 'some-long-tag', undefined]],
    ['b.gcr.io/test.example.com/my-app:test.example.com', ['b.gcr.io', 'test.example.com/my-app', 'test.example.com', undefined]],
    ['xn--n3h.com/myimage:xn--n3h.com', ['xn--n3h.com', 'myimage', 'xn--n3h.com', undefined]],
    ['192.168.1.1:5/repo', ['192.168.1.1:5', 'repo', undefined, undefined]],
    ['[2001:db8::1]:5000/repo:tag', ['[2001:db8::1]:5000', 'repo', 'tag', undefined]],
    ['lowercase:Uppercase', ['docker.io', 'library/lowercase', 'Uppercase', undefined]],
    // Separators: one . or _, two _, any number of -.
    ['docker---rules/docker', ['docker.io', 'docker---rules/docker', undefined, undefined]],
    ['dock__er/docker', ['docker.io', 'dock__er/docker', undefined, undefined]],
    ['d/docker', ['docker.io', 'd/docker', undefined, undefined]],
    ['docker.io/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', ['docker.io', 'library/1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a', undefined, undefined]],
    [`a:${'x'.repeat(128)}`, ['docker.io', 'library/a', 'x'.repeat(128), undefined]],
  ];
  for (const [input, want] of cases) assert.deepEqual(parts(input), want, input);
});

test('toString is the fully qualified form; apiHost maps docker.io', () => {
  assert.equal(parseReference('debian:trixie').toString(), 'docker.io/library/debian:trixie');
  assert.equal(parseReference(`127.0.0.1:5000/x@${D}`).toString(), `127.0.0.1:5000/x@${D}`);
  assert.equal(apiHost(parseReference('debian').registry), 'registry-1.docker.io');
  assert.equal(apiHost(parseReference('quay.io/x/y').registry), 'quay.io');
  assert.equal(withTagAndDigest(parseReference('a/b:c'), 'd', undefined).toString(), 'docker.io/a/b:d');
});

test('invalid references are REFERENCE_INVALID, upper case with a clear message', () => {
  const invalid = [
    '',
    ':justtag',
    `@${D}`,
    'https://github.com/docker/docker',
    '-docker',
    '-docker/docker',
    'docker-/docker',
    '-docker-/docker',
    'docker///docker',
    'docker.io/docker///docker',
    'docker/',
    '____/____',
    '_docker/_docker',
    'dock..er/docker',
    'dock_.er/docker',
    'dock-.er/docker',
    'dock___er/docker',
    'aa/asdf$$^/aa',
    'foo:',
    'foo:-tag',
    'foo:.tag',
    `a:${'x'.repeat(129)}`,
    'repo@sha256:ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff',
    `validname@invaliddigest:${'f'.repeat(64)}`,
    `repo@sha512:${'f'.repeat(128)}`,
    `repo@sha256:${'F'.repeat(64)}`,
    '1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a',
    `${'a/'.repeat(128)}a:tag`,
    'this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255_this_is_not_a_valid_namespace_because_its_lenth_is_greater_than_255/docker',
    '-foo.com/bar',
    'foo.com:port/bar',
    'foo\n/bar',
  ];
  for (const s of invalid) assert.throws(() => parseReference(s), (e) => isDistillError(e, 'REFERENCE_INVALID'), JSON.stringify(s));

  for (const s of ['Uppercase:tag', 'docker/Docker', 'docker.io/docker/Docker', 'Foo/bar', '127.0.0.1:5000/Distill/Static']) {
    assert.throws(
      () => parseReference(s),
      (e) => isDistillError(e, 'REFERENCE_INVALID') && /must be lower case/.test(e.message) && /use [a-z0-9/.]+/.test(e.hint ?? ''),
      s,
    );
  }
});
