// Real kernel builds through the command line. The 6.1 smoke kernel builds on any machine
// (Debian's linux-source-6.1); 2.6.20 is skipped, with the reason, when no 2.6.20 source can
// be had here.
import t from 'tap';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { sourceSkip } from '../helpers/trees.js';
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
    t.ok(r.bzImage, `a bzImage is left with ${cc}`);
    await expectPinnedIdentity(t, join(r.out, 'bzImage'), '2.6.20', cc);
  }
});
