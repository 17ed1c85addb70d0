// The one timestamp format of locks, configs and SBOMs: RFC 3339 in UTC, whole seconds. Its own module
// so that a build (which only formats times) does not load the resolver and OpenPGP code of lock.ts.

export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
