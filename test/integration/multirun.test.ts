// `ktrial run T1 T2 --out DIR`, for real: the subject kernel and its control (both cached
// after their first build) run the namespaces suite, each into DIR/<trial>, and the
// comparison lands in DIR. Which cases changed is worked out here from the two runs'
// own results.json, not from the comparison. The exit code of several runs is the highest
// of theirs (2, 3, 4), an interrupt's 130 compares nothing, and without --out the runs go
// to ./out/<trial>.
import t from 'tap';
import { access, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { pathWithout } from '../helpers/proc.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { CompareDoc } from '../../harness/compare/index.js';
import type { RunResults } from '../../harness/report/index.js';
import type { CaseResult } from '../../harness/scenarios/index.js';

const SEED = 'ns-container-2.6.20';
const CONTROL = 'ns-container-control-2.6.20';
const trialFile = (name: string) => repoPath('configs', 'trials', `${name}.yaml`);
const OUT = repoPath('out', 'test', 'multirun');
const SMOKE61 = trialFile('smoke-debian-6.1');
const readJson = async <T>(...p: string[]) => JSON.parse(await readFile(join(...p), 'utf8')) as T;

/** A case's outcome as the run recorded it: its verdict and every step's actual value. */
const outcome = (c: CaseResult) => `${c.verdict}\n${c.steps.map((s) => s.actual).join('\n')}`;

t.test('two kernels in one command: each run in its directory, then their comparison', { skip: await sourceSkip(SEED) }, async (t) => {
  await rm(OUT, { recursive: true, force: true });
  const r = await ktrial(['run', trialFile(SEED), trialFile(CONTROL), '--suite', repoPath('test', 'scenarios', 'namespaces.yaml'), '--out', OUT]);
  const seed = await readJson<RunResults & { exitCode: number }>(OUT, SEED, 'results.json');
  const control = await readJson<RunResults & { exitCode: number }>(OUT, CONTROL, 'results.json');
  t.equal(seed.trial, SEED, 'the first trial ran into DIR/<its name>');
  t.equal(control.trial, CONTROL, 'the second trial ran into DIR/<its name>');
  t.not(seed.kernel.config, control.kernel.config, 'two different kernels');
  const doc = await readJson<CompareDoc>(OUT, 'compare.json');
  t.same(doc.runs.map((x) => x.trial), [SEED, CONTROL], 'the first trial is the baseline');
  t.equal(r.code, Math.max(seed.exitCode, control.exitCode, doc.exitCode), 'the exit code is the worst of the runs and the comparison');
  t.equal(r.code, 0, `both kernels meet the namespaces suite${r.code ? `: ${r.stderr.slice(-2000)}` : ''}`);

  const byKey = new Map(control.cases.map((c) => [`${c.suite}/${c.name}`, c]));
  const differing = seed.cases.filter((c) => byKey.has(`${c.suite}/${c.name}`) && outcome(c) !== outcome(byKey.get(`${c.suite}/${c.name}`)!)).map((c) => `${c.suite}/${c.name}`);
  const changed = doc.cases.filter((c) => c.classes[0] !== 'unchanged').map((c) => `${c.suite}/${c.name}`);
  t.same(changed, differing, 'the comparison marks exactly the cases whose verdict or actual values differ between the two runs');
  t.equal(doc.cases.length, seed.cases.length, 'every case of the suite is compared');

  const summary = await readFile(join(OUT, 'compare.txt'), 'utf8');
  t.match(summary, new RegExp(`baseline: ${SEED}`), 'compare.txt names the baseline');
  t.ok(r.stdout.includes(summary), 'the comparison summary is printed');
  t.match(await readFile(join(OUT, 'compare.md'), 'utf8'), /^\| suite \| case \|/m, 'compare.md holds the table');
  t.match(await readFile(join(OUT, 'compare.html'), 'utf8'), /<table>/, 'compare.html holds the grid');
  t.match(r.stdout, /result: every case as expected \(exit 0\)[\s\S]*result: every case as expected \(exit 0\)/, "both runs' summaries are printed");
});

t.test('several trials: what one trial only can do is refused, before anything is built', async (t) => {
  // Under --bisect, wrong arguments abort the bisection (128) instead of exiting 2.
  for (const [opt, code] of [[['--json'], 2], [['--bisect'], 128], [['--shard', '1/2'], 2]] as const) {
    const r = await ktrial(['run', trialFile(SEED), trialFile(CONTROL), ...opt]);
    t.equal(r.code, code, `${opt[0]} with two trials is a usage error (exit ${code})`);
    t.match(r.stderr, new RegExp(`${opt[0]} takes one trial, got 2`));
  }
  const twice = await ktrial(['run', trialFile(SEED), trialFile(SEED), '--out', join(OUT, 'twice')]);
  t.equal(twice.code, 2, 'a trial given twice is bad input');
  t.match(twice.stderr, /trial "ns-container-2\.6\.20" is given twice/);
});

/**
 * Trials that end as bad input in their source stage, after every trial was validated: a
 * tarball that is not the one they pin. They build nothing and write nothing to the cache.
 */
async function badSourceTrials(...names: string[]): Promise<string[]> {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-multirun-bad-'));
  await writeFile(join(dir, 'linux.tar.gz'), 'not the pinned tarball');
  return Promise.all(
    names.map(async (name) => {
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, `name: ${name}\nsource:\n  tarball: linux.tar.gz\n  sha256: ${'ab'.repeat(32)}\nconfig:\n  base: tinyconfig\n`);
      return file;
    }),
  );
}

const exists = (p: string) => access(p).then(() => true, () => false);

t.test('several trials exit with the highest of their codes: 2, 3 and 4; without --out they go to ./out', async (t) => {
  const [bad, worse] = await badSourceTrials('bad-source', 'bad-source-too');
  // From a directory of its own, so that the default ./out is this test's.
  const cwd = await mkdtemp(join(tmpdir(), 'ktrial-multirun-cwd-'));
  const both = await ktrial(['run', bad!, worse!], {}, undefined, cwd);
  t.equal(both.code, 2, 'two runs that ended as bad input: 2');
  t.equal((await readJson<{ exitCode: number }>(cwd, 'out', 'bad-source', 'results.json')).exitCode, 2, 'each run in ./out/<trial>');
  t.ok(await exists(join(cwd, 'out', 'compare.txt')), 'the comparison in ./out');

  // An init that does not exist: the 6.1 kernel boots and fails at once, a kernel-side failure.
  const kernel = await ktrial(['run', bad!, SMOKE61, '--cmdline', 'rdinit=/nonexistent', '--out', join(cwd, 'kernel')]);
  t.equal((await readJson<{ exitCode: number }>(cwd, 'kernel', 'smoke-debian-6.1', 'results.json')).exitCode, 3, 'the 6.1 run ended kernel-side');
  t.equal(kernel.code, 3, 'bad input, then a kernel-side failure: 3');

  const bin = await pathWithout((name) => name.startsWith('qemu-system'));
  const host = await ktrial(['run', SMOKE61, bad!, '--out', join(cwd, 'host')], { PATH: bin });
  t.equal((await readJson<{ exitCode: number }>(cwd, 'host', 'smoke-debian-6.1', 'results.json')).exitCode, 4, 'without QEMU the 6.1 run is a host-side failure');
  t.equal(host.code, 4, 'a host-side failure, then bad input: 4');
});

t.test('several trials, interrupted during the first: 130, the later trials not run, nothing compared', async (t) => {
  const [bad] = await badSourceTrials('bad-source');
  const out = await mkdtemp(join(tmpdir(), 'ktrial-multirun-int-'));
  const child = execa('node', [repoPath('bin', 'ktrial.js'), 'run', SMOKE61, bad!, '--out', out], { reject: false, cwd: repoPath() });
  let stderr = '';
  let sent = false;
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sent && /boot: started/.test(stderr)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  const r = await child;
  t.ok(sent, 'the first trial was booting when the signal came');
  t.equal(r.exitCode, 130);
  t.equal((await readJson<{ status: string }>(out, 'smoke-debian-6.1', 'results.json')).status, 'interrupted', 'the first run wrote its reports');
  t.notOk(await exists(join(out, 'bad-source', 'results.json')), 'the second trial did not run');
  t.notOk(await exists(join(out, 'compare.txt')), 'nothing was compared');
});
