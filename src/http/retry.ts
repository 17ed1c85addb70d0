// The one retry policy: exponential backoff with full jitter, Retry-After honoured, for transient
// failures only (connection resets, 408, 429, 5xx). Retries wrap a whole operation (request + read +
// verify), never a half-consumed stream, so a retried download starts clean.
import { DistillError } from '../errors.js';

export interface RetryPolicy {
  /** Total attempts, including the first. */
  attempts: number;
  baseDelayMs: number;
  maxDelayMs: number;
}

export const defaultRetryPolicy: RetryPolicy = { attempts: 4, baseDelayMs: 250, maxDelayMs: 10_000 };

/** Thrown for failures worth another attempt; `retryAfterMs` comes from a Retry-After header. */
export class TransientError extends DistillError {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
    cause?: unknown,
    hint = 'the mirror or network failed; retry later or use another mirror',
  ) {
    super('FETCH_FAILED', message, { cause, hint });
  }
}

const TRANSIENT_CODES = new Set(['ECONNRESET', 'ECONNREFUSED', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'UND_ERR_SOCKET', 'UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CLOSED']);

export function isTransient(e: unknown): boolean {
  if (e instanceof TransientError) return true;
  const code = (e as { code?: unknown } | null)?.code;
  return typeof code === 'string' && TRANSIENT_CODES.has(code);
}

export function isTransientStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
}

/** Retry-After: delta-seconds or an HTTP date (RFC 9110 §10.2.3); capped by the policy. */
export function parseRetryAfter(value: string | undefined, now: number): number | undefined {
  if (value === undefined) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const t = Date.parse(value);
  return Number.isNaN(t) ? undefined : Math.max(0, t - now);
}

export function backoffDelay(policy: RetryPolicy, attempt: number, retryAfterMs: number | undefined, random: () => number): number {
  if (retryAfterMs !== undefined) return Math.min(retryAfterMs, policy.maxDelayMs);
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (attempt - 1));
  return Math.floor(random() * ceiling);
}

export interface RetryHooks {
  onRetry?: (attempt: number, delayMs: number, error: unknown) => void;
  sleep?: (ms: number) => Promise<void>;
  random?: () => number;
}

export async function withRetry<T>(policy: RetryPolicy, op: (attempt: number) => Promise<T>, hooks: RetryHooks = {}): Promise<T> {
  const sleep = hooks.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  for (let attempt = 1; ; attempt++) {
    try {
      return await op(attempt);
    } catch (e) {
      if (!isTransient(e) || attempt >= policy.attempts) throw e;
      const delay = backoffDelay(policy, attempt, e instanceof TransientError ? e.retryAfterMs : undefined, hooks.random ?? Math.random);
      hooks.onRetry?.(attempt, delay, e);
      await sleep(delay);
    }
  }
}
