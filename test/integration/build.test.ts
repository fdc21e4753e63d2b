// Real kernel builds through the command line. The 6.1 smoke kernel builds on any machine
// (Debian's linux-source-6.1); 2.6.20 is skipped, with the reason, when no 2.6.20 source can
// be had here.
import t from 'tap';
import { appendFile, mkdtemp, readFile, rm, stat, unlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { localTree, sourceSkip } from '../helpers/trees.js';
import { expectPinnedIdentity } from '../helpers/bzimage.js';
import { repoPath } from '../../harness/common/paths.js';
import type { KernelManifest } from '../../harness/kernel/pipeline.js';

const trial = (n: string) => repoPath('configs', 'trials', `${n}.yaml`);

async function buildTwice(name: string, extra: string[] = []) {
  const out = repoPath('out', 'test', `${name}${extra.join('')}`);
  const first = await ktrial(['build', trial(name), '--out', out, ...extra]);
  const bzImage = await stat(join(out, 'bzImage')).catch(() => undefined);
  const manifest = first.code === 0 ? (JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as KernelManifest) : undefined;
  const second = await ktrial(['build', trial(name), '--out', out, ...extra]);
  return { first, second, bzImage, manifest, out };
}

t.test('Debian 6.1 smoke kernel', async (t) => {
  const r = await buildTwice('smoke-debian-6.1');
  t.equal(r.first.code, 0, 'builds');
  if (r.first.code !== 0) t.comment(r.first.stderr.slice(-3000));
  t.ok(r.bzImage && r.bzImage.size > 500_000, 'leaves a bzImage');
  t.match(r.manifest?.kernelRelease, /^6\.1\./, 'the manifest names the 6.1 release');
  t.equal(r.manifest?.patches.length, 0, 'no compat series for a modern kernel');
  t.equal(r.second.code, 0);
  t.match(r.second.stderr, /kernel: cache hit/, 'the second run is a cache hit');
  t.notMatch(r.second.stderr, /build: started/, 'and builds nothing');
});

t.test('2.6.20 smoke kernel with gcc-12 and gcc-11', { skip: await sourceSkip('smoke-2.6.20') }, async (t) => {
  for (const cc of ['gcc-12', 'gcc-11']) {
    const r = await buildTwice('smoke-2.6.20', ['--cc', cc]);
    t.equal(r.first.code, 0, `builds with ${cc}`);
    if (r.first.code !== 0) t.comment(r.first.stderr.slice(-3000));
    t.equal(r.manifest?.kernelRelease, '2.6.20');
    t.ok(r.manifest?.patches.some((p) => p.compat), `the compat series is applied with ${cc}`);
    t.equal(r.manifest?.toolchain.cc, cc);
    t.match(r.second.stderr, /kernel: cache hit/, `the second ${cc} run is a cache hit`);
    if (r.bzImage) await expectPinnedIdentity(t, join(r.out, 'bzImage'), '2.6.20', cc);
  }
});

const local = await localTree('smoke-2.6.20');
t.test('a local tree edited between builds: one work tree, only what changed is rebuilt', { skip: local.skip }, async (t) => {
  const tree = local.dir;
  // A copy to edit, and a cache of its own so its work tree does not stay behind.
  const copy = await mkdtemp(join(tmpdir(), 'ktrial-tree-'));
  const cache = await mkdtemp(join(tmpdir(), 'ktrial-tree-cache-'));
  t.teardown(async () => {
    await rm(copy, { recursive: true, force: true });
    await rm(cache, { recursive: true, force: true });
  });
  await execa('cp', ['-a', `${tree}/.`, copy]);
  const out = await mkdtemp(join(tmpdir(), 'ktrial-tree-out-'));
  t.teardown(() => rm(out, { recursive: true, force: true }));
  const build = async () => {
    const r = await ktrial(['build', trial('smoke-2.6.20'), '--source', copy, '--out', out], { KTRIAL_CACHE: cache });
    if (r.code !== 0) t.comment(r.stderr.slice(-3000));
    const m = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as KernelManifest;
    return { ...r, objects: m.build.objects, bzImage: m.bzImageSha256 };
  };
  const first = await build();
  t.equal(first.code, 0, 'the tree builds');
  await appendFile(join(copy, 'kernel', 'panic.c'), '\nstatic const char ktrial_edit[] __attribute__((used)) = "edited";\n');
  const second = await build();
  t.equal(second.code, 0, 'the edited tree builds');
  t.notMatch(second.stderr, /creating a work tree/, 'in the same work tree');
  t.match(second.stderr, /work tree: 1 file\(s\) changed in .* copied in, 0 removed/, 'the one edited file is copied in');
  t.ok(second.objects < 10 && first.objects > 300, `only what the edit touched is compiled (${second.objects} objects, against ${first.objects} at first)`);
  t.not(second.bzImage, first.bzImage, 'and the kernel changed');
  await unlink(join(copy, 'Documentation', '00-INDEX'));
  const third = await build();
  t.equal(third.code, 0);
  t.match(third.stderr, /work tree: 0 file\(s\) changed in .* copied in, 1 removed/, 'a file removed from the tree is removed from the work tree');
});
