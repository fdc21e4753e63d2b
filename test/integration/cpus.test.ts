// Guest CPUs: --cpus N boots a guest that sees N processors (counted by the guest kernel),
// results.json records it, and a kernel without CONFIG_SMP is refused before it boots.
import t from 'tap';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const trial = (n: string) => repoPath('configs', 'trials', `${n}.yaml`);
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-cpus-${name}-`));
const COUNT = ['--', 'grep', '-c', '^processor', '/proc/cpuinfo'];

t.test('6.1 smoke kernel with two CPUs: the guest sees two, results.json says so', async (t) => {
  const boot = await ktrial(['boot', trial('smoke-debian-6.1'), '--cpus', '2', '--out', await tmp('boot'), ...COUNT]);
  if (boot.code !== 0) t.comment(boot.stderr.slice(-3000));
  t.equal(boot.code, 0);
  t.equal(boot.stdout.trim(), '2', 'the guest kernel counts two processors');
  const out = await tmp('run');
  const run = await ktrial(['run', trial('smoke-debian-6.1'), '--cpus', '2', '--only', 'unshare UTS as root', '--out', out]);
  t.equal(run.code, 0);
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.equal(res.kernel.cpus, 2, 'results.json records the guest CPUs');
  t.ok(res.rerun?.command.join(' ').includes('--cpus 2'), 'and the re-run line repeats them');
});

t.test('2.6.20: more than one CPU needs CONFIG_SMP; with it the guest sees them', { skip: await sourceSkip('smoke-2.6.20') }, async (t) => {
  // The smoke kernel with a config that says it was built without SMP: what is judged is the config.
  const built = await tmp('built');
  t.equal((await ktrial(['build', trial('smoke-2.6.20'), '--out', built, '-q'])).code, 0, 'the smoke kernel builds');
  const config = await readFile(join(built, 'config'), 'utf8');
  t.match(config, /^CONFIG_SMP=y$/m, 'with CONFIG_SMP');
  const uniprocessor = join(built, 'config-without-smp');
  await writeFile(uniprocessor, config.replace(/^CONFIG_SMP=y$/m, '# CONFIG_SMP is not set'));
  const refused = await ktrial(['boot', trial('smoke-2.6.20'), '--kernel', join(built, 'bzImage'), '--config', uniprocessor, '--cpus', '2', '--out', await tmp('nosmp'), ...COUNT]);
  t.equal(refused.code, 2, 'bad input');
  t.match(refused.stderr, /2 guest CPUs were asked for, but the kernel's config lacks CONFIG_SMP/);
  t.match(refused.stderr, /CONFIG_SMP=y/, 'and says how to get it');
  const smp = await ktrial(['boot', trial('smoke-2.6.20'), '--cpus', '2', '--out', await tmp('smp'), ...COUNT]);
  if (smp.code !== 0) t.comment(smp.stderr.slice(-3000));
  t.equal(smp.code, 0);
  t.equal(smp.stdout.trim(), '2', 'the 2.6.20 guest counts two processors');
});
