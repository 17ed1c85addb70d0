/**
 * Run `fn` over `items`, at most `limit` at once (at least one); the first failure stops new work and
 * is thrown once the calls in flight have settled, so nothing is left running behind the error.
 */
export async function forEachLimit<T>(items: readonly T[], limit: number, fn: (item: T, index: number) => Promise<void>): Promise<void> {
  let next = 0;
  let failed: { e: unknown } | undefined;
  const worker = async (): Promise<void> => {
    while (failed === undefined && next < items.length) {
      const k = next++;
      try {
        await fn(items[k]!, k);
      } catch (e) {
        failed ??= { e };
      }
    }
  };
  await Promise.all(Array.from({ length: Math.max(1, Math.min(limit, items.length)) }, worker));
  if (failed !== undefined) throw failed.e;
}
