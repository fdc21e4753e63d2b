// A local 2.6.20 tree, edited as a developer edits it: one work tree, into which each build
// copies only the files that changed. Then, in the same tree, a real `git bisect run` with
// `ktrial run --bisect` over commits of which one breaks unshare(CLONE_NEWUTS): git must land
// on that commit, and every step must build incrementally in that one work tree.
import t from 'tap';
import { appendFile, cp, mkdtemp, readFile, rm, stat, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { cacheRoot } from '../../harness/common/cache.js';
import { repoPath } from '../../harness/common/paths.js';
import { ktrial } from '../helpers/cli.js';
import { localTree } from '../helpers/trees.js';
import { Progress } from '../../harness/common/progress.js';
import { buildImage } from '../../harness/trialrun.js';
import type { KernelManifest } from '../../harness/kernel/pipeline.js';

const SMOKE20 = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');

/** Cache entries a run needs besides the kernel; copied so the test does not rebuild them. */
const SEED = ['guest-sources', 'guest-userland', 'guest-image', 'accel'];

const local = await localTree('smoke-2.6.20');
t.test('a local tree edited between builds, then bisected: one work tree, only what changed is rebuilt', { skip: local.skip }, async (t) => {
  const repo = await mkdtemp(join(tmpdir(), 'ktrial-bisect-tree-'));
  const cache = await mkdtemp(join(tmpdir(), 'ktrial-bisect-cache-'));
  const out = await mkdtemp(join(tmpdir(), 'ktrial-bisect-out-'));
  t.teardown(async () => {
    for (const d of [repo, cache, out]) await rm(d, { recursive: true, force: true });
  });
  // The guest image every run needs is built once in the usual cache (later tests use it
  // too), then copied into this test's own cache, which keeps its work tree from staying behind.
  await buildImage({ progress: new Progress(() => {}), signal: new AbortController().signal });
  for (const k of SEED) if (await stat(join(cacheRoot(), k)).catch(() => undefined)) await cp(join(cacheRoot(), k), join(cache, k), { recursive: true });
  await execa('cp', ['-a', `${local.dir}/.`, repo]);
  await rm(join(repo, '.git'), { recursive: true, force: true });

  const build = async () => {
    const r = await ktrial(['build', SMOKE20, '--source', repo, '--out', out], { KTRIAL_CACHE: cache });
    if (r.code !== 0) t.comment(r.stderr.slice(-3000));
    const m = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as KernelManifest;
    return { ...r, objects: m.build.objects, bzImage: m.bzImageSha256 };
  };
  const first = await build();
  t.equal(first.code, 0, 'the tree builds');
  t.match(first.stderr, /creating a work tree/, 'in a new work tree');
  await appendFile(join(repo, 'kernel', 'panic.c'), '\nstatic const char ktrial_edit[] __attribute__((used)) = "edited";\n');
  const second = await build();
  t.equal(second.code, 0, 'the edited tree builds');
  t.notMatch(second.stderr, /creating a work tree/, 'in the same work tree');
  t.match(second.stderr, /work tree: 1 file\(s\) changed in .* copied in, 0 removed/, 'the one edited file is copied in');
  t.ok(second.objects < 10 && first.objects > 300, `only what the edit touched is compiled (${second.objects} objects, against ${first.objects} at first)`);
  t.not(second.bzImage, first.bzImage, 'and the kernel changed');
  await unlink(join(repo, 'Documentation', '00-INDEX'));
  const third = await build();
  t.equal(third.code, 0);
  t.match(third.stderr, /work tree: 0 file\(s\) changed in .* copied in, 1 removed/, 'a file removed from the tree is removed from the work tree');

  const git = (...args: string[]) => execa('git', ['-c', 'user.name=ktrial', '-c', 'user.email=ktrial@localhost', '-C', repo, ...args]);
  const commit = async (message: string) => {
    await git('add', '-A');
    await git('commit', '-q', '-m', message);
    return (await git('rev-parse', 'HEAD')).stdout.trim();
  };
  const note = (n: number) => appendFile(join(repo, 'Documentation', 'ktrial-bisect.txt'), `step ${n}\n`);
  await git('init', '-q');
  // A kernel tree's first commit leaves enough loose objects for git to start a detached
  // `gc --auto`, which would still be writing .git/objects when the teardown removes the tree.
  await git('config', 'gc.auto', '0');
  const good = await commit('the edited 2.6.20');
  await note(1);
  await commit('a harmless change');
  const fork = join(repo, 'kernel', 'fork.c');
  const text = await readFile(fork, 'utf8');
  const entry = 'asmlinkage long sys_unshare(unsigned long unshare_flags)\n{\n\tint err = 0;\n';
  t.ok(text.includes(entry), 'kernel/fork.c has the sys_unshare this test edits');
  await writeFile(fork, text.replace(entry, `${entry}\n\tif (unshare_flags & CLONE_NEWUTS)\n\t\treturn -EINVAL;\n`));
  const culprit = await commit('unshare: refuse CLONE_NEWUTS');
  await note(2);
  await commit('another harmless change');
  await note(3);
  const bad = await commit('and another');

  await git('bisect', 'start', bad, good);
  const r = await execa(
    'git',
    ['-C', repo, 'bisect', 'run', 'node', repoPath('bin', 'ktrial.js'), 'run', SMOKE20, '--source', repo, '--only', 'unshare UTS as root', '--out', out, '--bisect'],
    { env: { KTRIAL_CACHE: cache }, all: true, reject: false, cwd: repoPath() },
  );
  const log = String(r.all);
  if (r.exitCode !== 0) t.comment(log.slice(-4000));
  t.equal(r.exitCode, 0, 'git bisect run finishes');
  t.match(log, new RegExp(`${culprit} is the first bad commit`), 'and names the commit that broke unshare(CLONE_NEWUTS)');
  const verdicts = [...log.matchAll(/git bisect: (\w+) \(exit (\d+)\)/g)].map((m) => m[1]);
  t.ok(verdicts.includes('good') && verdicts.includes('bad'), `ktrial judged commits both ways (${verdicts.join(', ')})`);
  t.notMatch(log, /creating a work tree/, 'the bisection used the tree\'s one work tree');
  t.ok(verdicts.length >= 2 && (log.match(/work tree: \d+ file\(s\) changed/g)?.length ?? 0) >= 1, 'and brought it up to date file by file');
});
