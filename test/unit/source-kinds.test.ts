// The source stage on small stand-in trees that read as a 2.6.20 kernel: a git repository at
// a ref (from --source REPO@REF and from a trial's `git:`), and a .tar.bz2 given with
// --source, checked against the trial's pin. The commits and checksums expected come from
// git and sha256sum, not from ktrial. The command-line cases stop in the source or patch
// stage, before any build, in a cache of their own.
import t from 'tap';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { KtrialError } from '../../harness/common/errors.js';
import { repoPath } from '../../harness/common/paths.js';
import { Progress } from '../../harness/common/progress.js';
import { resolveSource, type SourceSpec } from '../../harness/source/source.js';
import { loadTrial } from '../../harness/trial/trial.js';
import { ktrial } from '../helpers/cli.js';
import { useCache } from '../helpers/cache.js';

const SMOKE20 = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');
const root = await mkdtemp(join(tmpdir(), 'ktrial-source-kinds-'));
useCache(t, join(root, 'cache'));
const ctx = { progress: new Progress(() => {}), signal: new AbortController().signal };
// A source name of its own: KTRIAL_SOURCE_<NAME> set for other tests must not stand in for it.
const NAME = 'ktrial-source-kinds-test';
const failure = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e as KtrialError);

/** A tree that reads as Linux 2.6.20, with kernel/marker.c saying `marker`. */
async function tree(dir: string, marker: string): Promise<string> {
  await mkdir(join(dir, 'kernel'), { recursive: true });
  await writeFile(join(dir, 'Makefile'), 'VERSION = 2\nPATCHLEVEL = 6\nSUBLEVEL = 20\nEXTRAVERSION =\n');
  await writeFile(join(dir, 'kernel', 'marker.c'), `${marker}\n`);
  return dir;
}

// A repository with two commits: the first tagged v1, the second on the branch.
const repo = await tree(join(root, 'repo'), 'first');
const git = (...args: string[]) => execa('git', ['-C', repo, '-c', 'user.name=t', '-c', 'user.email=t@example.invalid', ...args]);
await git('init', '-q', '-b', 'main');
await git('add', '-A');
await git('commit', '-q', '-m', 'first');
await git('tag', 'v1');
await writeFile(join(repo, 'kernel', 'marker.c'), 'second\n');
await git('commit', '-q', '-am', 'second');
const commitOf = async (ref: string) => (await git('rev-parse', `${ref}^{commit}`)).stdout.trim();

t.test('--source REPO@REF: the tree at that ref, identified by its commit', async (t) => {
  const trialSpec: SourceSpec = { kind: 'path', name: NAME, path: '/nonexistent' };
  const src = await resolveSource(trialSpec, `${repo}@v1`, ctx);
  t.equal(src.spec.kind, 'git', 'REPO@REF is a git source');
  t.equal(src.id, `git:${await commitOf('v1')}`, 'its identity is the commit v1 names');
  t.equal(await readFile(join(src.dir, 'kernel', 'marker.c'), 'utf8'), 'first\n', 'the files as that commit has them, not the branch\'s');
  t.equal(src.version.sub, 20);
  const err = await failure(resolveSource(trialSpec, `${repo}@no-such-ref`, ctx));
  t.ok(err instanceof KtrialError && err.cls === 'bad-input', 'an unknown ref is bad input');
  t.match(err?.message, /git ref no-such-ref is not a commit in /);
});

t.test("a trial's git: and ref: name the source", async (t) => {
  const dir = join(root, 'trial-git');
  await mkdir(dir);
  const file = join(dir, 'git.yaml');
  await writeFile(file, `name: git\nsource:\n  name: ${NAME}\n  git: ../repo\n  ref: main\nconfig:\n  base: tinyconfig\n`);
  const trial = await loadTrial(file);
  const src = await resolveSource(trial.source, undefined, ctx);
  t.equal(src.id, `git:${await commitOf('main')}`, 'the branch\'s commit, the repository relative to the trial file');
  t.equal(await readFile(join(src.dir, 'kernel', 'marker.c'), 'utf8'), 'second\n');
});

t.test('--source x.tar.bz2 is unpacked when it matches the trial\'s pin, refused when it does not', async (t) => {
  const pinned = join(root, 'pinned.tar.bz2');
  await tree(join(root, 'bz', 'linux-2.6.20'), 'bzip2');
  await execa('tar', ['-cjf', pinned, '-C', join(root, 'bz'), 'linux-2.6.20']);
  const pin = (await execa('sha256sum', [pinned])).stdout.split(' ')[0]!;
  const trialSpec: SourceSpec = { kind: 'tarball', name: NAME, tarball: 'https://example.invalid/linux-2.6.20.tar.bz2', sha256: pin };
  const src = await resolveSource(trialSpec, pinned, ctx);
  t.equal(src.id, `sha256:${pin}`);
  t.equal(await readFile(join(src.dir, 'kernel', 'marker.c'), 'utf8'), 'bzip2\n', 'unpacked, its top directory dropped');
  const other = join(root, 'other.tar.bz2');
  await execa('tar', ['-cjf', other, '-C', root, 'repo/Makefile']);
  const err = await failure(resolveSource(trialSpec, other, ctx));
  t.ok(err instanceof KtrialError && err.cls === 'bad-input', 'a tarball that is not the pinned one is bad input');
  t.match(err?.message, `checksum mismatch for ${other}: sha256 is `);
  t.match(err?.message, `the trial pins ${pin}`);
});

t.test('on the command line: a .tar.bz2 is checked against the trial\'s pin, REPO@REF is read as git', async (t) => {
  const env = { KTRIAL_CACHE: join(root, 'cli-cache') };
  const pin = /^\s*sha256:\s*([0-9a-f]{64})$/m.exec(await readFile(SMOKE20, 'utf8'))![1]!;
  const small = join(root, 'linux-2.6.20.tar.bz2');
  await execa('tar', ['-cjf', small, '-C', root, 'repo/Makefile']);
  const tarball = await ktrial(['build', SMOKE20, '--source', small, '--out', join(root, 'out-tar')], env);
  t.equal(tarball.code, 2, 'bad input');
  t.match(tarball.stderr, `checksum mismatch for ${small}: sha256 is `);
  t.match(tarball.stderr, `the trial pins ${pin}`);

  const r = await ktrial(['build', SMOKE20, '--source', `${repo}@v1`, '--out', join(root, 'out-git')], env);
  t.match(r.stderr, `source: git ${repo} @ v1 (from --source)`, 'the source is the repository at v1');
  // The stand-in tree has none of the files the 2.6.20 compat series patches.
  t.equal(r.code, 2);
  t.match(r.stderr, /does not apply/);
  t.notMatch(r.stderr, /build: started/);
});
