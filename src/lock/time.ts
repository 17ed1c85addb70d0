// The one timestamp format of locks, configs and SBOMs: RFC 3339 in UTC, whole seconds. Its own module
// so that a build (which only formats times) does not load the resolver and OpenPGP code of lock.ts.

import { DistillError } from '../errors.js';

/** 9999-12-31T23:59:59Z: the last second RFC 3339's four-digit year can write. */
export const EPOCH_MAX = 253402300799;

/**
 * SOURCE_DATE_EPOCH (or a provenance's sourceDateEpoch, attacker-controlled) as the build's one
 * timestamp: whole seconds from 1970 to EPOCH_MAX. Larger values are no date a config can carry (past
 * 275760 `new Date` is invalid and toISOString throws) and overflow tar's mtime; refused up front.
 */
export function checkSourceDateEpoch(seconds: number, what = 'SOURCE_DATE_EPOCH'): number {
  if (!isSourceDateEpoch(seconds)) {
    throw new DistillError('USAGE', `${what} ${seconds} is not a whole number of seconds from 1970 to 9999`, { hint: 'unset it or set it to e.g. $(git log -1 --format=%ct)' });
  }
  return seconds;
}

/** Whether `x` (a flag's value or an attacker's JSON field) is whole seconds from 1970 to EPOCH_MAX. */
export function isSourceDateEpoch(x: unknown): x is number {
  return Number.isSafeInteger(x) && (x as number) >= 0 && (x as number) <= EPOCH_MAX;
}

export function rfc3339(d: Date): string {
  return d.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
