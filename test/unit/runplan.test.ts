// A run's plan from a trial file and the command line: the trial's jobs: and max-reboots:,
// --jobs auto as the host's cores, --timeout-build over the trial's timeouts.build, and
// the default output directories (out/<trial>, out/<trial>.shard-I-of-N) under the
// current directory. The expected values come from the trial text written here and from
// nproc, not from ktrial.
import t from 'tap';
import { mkdir, mkdtemp, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { planRun } from '../../harness/runplan.js';

/** A trial file named `name` with `extra` lines, beside a directory standing for its source. */
async function trialFile(name: string, extra: string): Promise<{ dir: string; file: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-plan-'));
  await mkdir(join(dir, 'linux'));
  const file = join(dir, `${name}.yaml`);
  await writeFile(file, `name: ${name}\nsource:\n  path: linux\nconfig:\n  base: tinyconfig\n${extra}`);
  return { dir, file };
}

const isDir = async (p: string) => (await stat(p).catch(() => undefined))?.isDirectory() === true;

t.test("the trial's jobs: and max-reboots: are the run's; --jobs and --max-reboots override them", async (t) => {
  const { file } = await trialFile('keys', 'jobs: 2\nmax-reboots: 5\ntimeouts: {build: 1800, boot: 120}\n');
  const out = join(await mkdtemp(join(tmpdir(), 'ktrial-plan-out-')), 'o');
  const plan = await planRun(file, { out });
  t.equal(plan.jobs, 2, 'jobs: 2');
  t.equal(plan.maxReboots, 5, 'max-reboots: 5');
  t.equal(plan.timeouts.buildS, 1800, 'timeouts.build');
  const over = await planRun(file, { out, jobs: '3', 'max-reboots': '0', 'timeout-build': '7' });
  t.equal(over.jobs, 3, '--jobs 3');
  t.equal(over.maxReboots, 0, '--max-reboots 0');
  t.equal(over.timeouts.buildS, 7, '--timeout-build 7');
  t.same(over.rerun.options, ['--jobs', '3', '--max-reboots', '0', '--timeout-build', '7'], 'the re-run line repeats them');
});

t.test('--jobs auto and jobs: auto are the host\'s cores', async (t) => {
  const cores = Number((await execa('nproc')).stdout.trim());
  t.ok(cores >= 1, `nproc says ${cores}`);
  const out = join(await mkdtemp(join(tmpdir(), 'ktrial-plan-out-')), 'o');
  const { file } = await trialFile('auto', 'jobs: auto\n');
  t.equal((await planRun(file, { out })).jobs, cores, 'jobs: auto');
  const { file: plain } = await trialFile('plain', '');
  t.equal((await planRun(plain, { out })).jobs, 1, 'no jobs: one guest');
  t.equal((await planRun(plain, { out })).maxReboots, 3, 'no max-reboots: 3');
  t.equal((await planRun(plain, { out, jobs: 'auto' })).jobs, cores, '--jobs auto');
});

t.test('without --out a run goes to out/<trial>, a shard to out/<trial>.shard-I-of-N, under the current directory', async (t) => {
  const { file } = await trialFile('where', '');
  const cwd = await mkdtemp(join(tmpdir(), 'ktrial-plan-cwd-'));
  const before = process.cwd();
  process.chdir(cwd);
  t.teardown(() => process.chdir(before));
  const plan = await planRun(file, {});
  t.equal(plan.outDir, join(cwd, 'out', 'where'));
  t.ok(await isDir(join(cwd, 'out', 'where')), 'and it is made');
  const shard = await planRun(file, { shard: '2/3' });
  t.equal(shard.outDir, join(cwd, 'out', 'where.shard-2-of-3'));
});
