// Caches of a test's own: pointing this process at one, or a fresh one seeded from the shared cache.
import type { Test } from 'tap';
import { cp, mkdir, mkdtemp, readdir, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../../harness/common/cache.js';

/** Point ktrial's cache (KTRIAL_CACHE) at `dir` in this process until `t` ends. */
export function useCache(t: Pick<Test, 'teardown'>, dir: string): void {
  const saved = process.env.KTRIAL_CACHE;
  process.env.KTRIAL_CACHE = dir;
  t.teardown(() => {
    if (saved === undefined) delete process.env.KTRIAL_CACHE;
    else process.env.KTRIAL_CACHE = saved;
  });
}

/** Small entries a run needs besides the kernel, copied from the shared cache. */
const COPIED = ['guest-sources', 'guest-userland', 'guest-image'];
/** Large entries a run only reads once built (unpacked sources, kernels), linked one by one. */
const LINKED = ['sources', 'kernels'];

/**
 * A fresh cache directory seeded from the shared cache: `copy` kinds (by default the guest
 * image's) are copied, and each entry of `link` kinds is a symlink to the shared entry.
 */
export async function privateCache(opts: { copy?: readonly string[]; link?: readonly string[] } = {}): Promise<string> {
  const cache = await mkdtemp(join(tmpdir(), 'ktrial-private-cache-'));
  for (const kind of opts.copy ?? COPIED) {
    if (await stat(join(cacheRoot(), kind)).catch(() => undefined)) await cp(join(cacheRoot(), kind), join(cache, kind), { recursive: true });
  }
  for (const kind of opts.link ?? LINKED) {
    await mkdir(join(cache, kind), { recursive: true });
    for (const entry of await readdir(join(cacheRoot(), kind)).catch(() => [])) {
      if (/\.(lock|tmp-\d+)$/.test(entry)) continue;
      await symlink(join(cacheRoot(), kind, entry), join(cache, kind, entry));
    }
  }
  return cache;
}
