// Kernel selftests for the guest (images/recipes/selftests.yaml): each program is compiled
// from the tools/testing/selftests of the Debian linux-source package the recipe gives the
// kernel under test, with musl-gcc -static, once
// per (package version, recipe entry, toolchain), into the cache under guest-selftests/.
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { badInput } from '../common/errors.js';
import { cached } from '../common/cache.js';
import { hashValue, shortHash } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import type { StageContext } from '../common/context.js';
import { resolveSource } from '../source/source.js';
import { compareVersions, parseVersion } from '../eras/eras.js';
import { compileStatic } from './image.js';
import { loadSelftestRecipe, loadUserlandRecipe } from './recipe.js';
import { toolchainFacts, uapiDir } from './userland.js';

/** Bump when the way selftests are built changes, so old cache entries are not reused. */
const SELFTEST_BUILDER = 1;

/** The names the recipe builds, for checking a suite's `files:` before anything is built. */
export async function selftestNames(): Promise<string[]> {
  return Object.keys((await loadSelftestRecipe()).recipe.programs);
}

/** The package a kernel's selftests come from: the newest series the kernel has reached, else the oldest. */
export function selftestPackageFor(packages: readonly string[], release: string): string {
  const series = (pkg: string) => parseVersion(pkg.slice('linux-source-'.length));
  const sorted = [...packages].sort((a, b) => compareVersions(series(a), series(b)));
  const kernel = parseVersion(release);
  return sorted.filter((p) => compareVersions(series(p), kernel) <= 0).pop() ?? sorted[0]!;
}

/** Build (or take from the cache) the named selftests for a kernel release; their host paths by name. */
export async function buildSelftests(names: readonly string[], release: string, ctx: StageContext): Promise<Record<string, string>> {
  if (names.length === 0) return {};
  const { recipe, file } = await loadSelftestRecipe();
  for (const n of names) if (!recipe.programs[n]) throw badInput(`no selftest "${n}" in ${file} (it builds: ${Object.keys(recipe.programs).join(', ')})`);
  await requireTools(['musl-gcc'], 'building kernel selftests');
  const pkg = selftestPackageFor(recipe.packages, release);
  const tree = await resolveSource({ kind: 'debian', name: pkg, pkg }, undefined, ctx);
  const toolchain = await toolchainFacts();
  const userland = (await loadUserlandRecipe()).recipe;
  const out: Record<string, string> = {};
  for (const name of [...new Set(names)]) {
    const program = recipe.programs[name]!;
    const key = hashValue({ builder: SELFTEST_BUILDER, source: tree.id, program, uapi: userland.uapi_headers, toolchain });
    const entry = await cached('guest-selftests', `${name}-${shortHash(key)}`, async (tmp) => {
      ctx.progress.info(`guest selftests: compiling ${name} from ${pkg} (${tree.id})`);
      const uapi = join(tmp, 'uapi-include');
      await uapiDir(userland, uapi);
      const cflags = ['-O2', ...(program.include ?? []).map((d) => `-I${join(tree.dir, d)}`), '-idirafter', uapi, ...(program.cflags ?? [])];
      await compileStatic(program.sources.map((s) => join(tree.dir, s)), cflags, join(tmp, name), ctx, `selftest ${name}`);
      await rm(uapi, { recursive: true });
    });
    out[name] = join(entry.dir, name);
  }
  return out;
}
