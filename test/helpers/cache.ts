// A cache of a test's own, for runs whose cache entries must not reach the shared cache.
import { cp, mkdir, mkdtemp, readdir, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cacheRoot } from '../../harness/common/cache.js';

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
