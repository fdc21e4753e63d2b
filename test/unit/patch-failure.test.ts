// A patch that does not apply stops the run before any build, names the patch, the file
// and the hunk, and leaves no kernel in the cache. Uses a small stand-in tree with real
// `patch`, so it needs no kernel source.
import t from 'tap';
import { mkdtemp, mkdir, writeFile, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';

async function fakeTree(root: string): Promise<string> {
  const tree = join(root, 'linux');
  await mkdir(join(tree, 'kernel'), { recursive: true });
  await writeFile(join(tree, 'Makefile'), 'VERSION = 6\nPATCHLEVEL = 1\nSUBLEVEL = 0\nEXTRAVERSION =\n');
  await writeFile(join(tree, 'kernel', 'fork.c'), 'one\ntwo\nthree\nfour\nfive\n');
  return tree;
}

t.test('a patch whose hunk does not match is reported with file and hunk', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-patchfail-'));
  const tree = await fakeTree(root);
  await mkdir(join(root, 'series'));
  await writeFile(join(root, 'series', 'series'), 'good.patch\nbad.patch\n');
  await writeFile(join(root, 'series', 'good.patch'), '--- a/kernel/fork.c\n+++ b/kernel/fork.c\n@@ -1,3 +1,3 @@\n one\n-two\n+TWO\n three\n');
  await writeFile(join(root, 'series', 'bad.patch'), '--- a/kernel/fork.c\n+++ b/kernel/fork.c\n@@ -3,3 +3,3 @@\n three\n-not here\n+x\n five\n');
  await writeFile(
    join(root, 'trial.yaml'),
    `name: patchfail\nsource:\n  path: ${tree}\npatches:\n  - series\nconfig:\n  base: tinyconfig\n`,
  );
  const cache = join(root, 'cache');
  const r = await ktrial(['build', join(root, 'trial.yaml'), '--out', join(root, 'out')], { KTRIAL_CACHE: cache });
  t.equal(r.code, 2, 'bad-input exit code');
  t.match(r.stderr, /bad\.patch .*does not apply: hunk #1 \(at line 3\) of kernel\/fork\.c/);
  t.match(r.stderr, /series:2/, 'names the series line');
  t.notMatch(r.stderr, /build: started/);
  t.same(await readdir(join(cache, 'kernels')).catch(() => []), [], 'no kernel entry in the cache');
  const worktrees = await readdir(join(cache, 'worktrees'));
  t.notOk(worktrees.some((w) => w.includes('.tmp-') || w.includes('.staging-')), 'nothing half-written left behind');
});

t.test('a tree that is not a kernel is refused', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-notkernel-'));
  await mkdir(join(root, 'empty'));
  await writeFile(join(root, 'trial.yaml'), `name: notkernel\nsource:\n  path: empty\nconfig:\n  base: tinyconfig\n`);
  const r = await ktrial(['build', join(root, 'trial.yaml')], { KTRIAL_CACHE: join(root, 'cache') });
  t.equal(r.code, 2);
  t.match(r.stderr, /is not a kernel tree: it has no top-level Makefile/);
});

t.test('a tarball whose checksum differs from the pin is refused', async (t) => {
  const root = await mkdtemp(join(tmpdir(), 'ktrial-sum-'));
  await writeFile(join(root, 'linux.tar.gz'), 'not really a tarball');
  await writeFile(join(root, 'trial.yaml'), `name: sum\nsource:\n  tarball: linux.tar.gz\n  sha256: ${'ab'.repeat(32)}\nconfig:\n  base: tinyconfig\n`);
  const r = await ktrial(['build', join(root, 'trial.yaml')], { KTRIAL_CACHE: join(root, 'cache') });
  t.equal(r.code, 2);
  t.match(r.stderr, /checksum mismatch for .*linux\.tar\.gz: sha256 is [0-9a-f]{64}, the trial pins (ab){32}/);
  t.same(await readdir(join(root, 'cache', 'sources')).catch(() => []), [], 'nothing unpacked');
});
