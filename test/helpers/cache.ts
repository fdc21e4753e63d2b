import type { Test } from 'tap';

/** Point ktrial's cache (KTRIAL_CACHE) at `dir` in this process until `t` ends. */
export function useCache(t: Pick<Test, 'teardown'>, dir: string): void {
  const saved = process.env.KTRIAL_CACHE;
  process.env.KTRIAL_CACHE = dir;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KTRIAL_CACHE;
    else process.env.KTRIAL_CACHE = saved;
  });
}
