// `ktrial run T1 T2 --out DIR`, for real: the subject kernel and its control (both cached
// after their first build) run the namespaces suite, each into DIR/<trial>, and the
// comparison lands in DIR. Which cases changed is worked out here from the two runs'
// own results.json, not from the comparison.
import t from 'tap';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { CompareDoc } from '../../harness/compare/index.js';
import type { RunResults } from '../../harness/report/index.js';
import type { CaseResult } from '../../harness/scenarios/index.js';

const SEED = 'ns-container-2.6.20';
const CONTROL = 'ns-container-control-2.6.20';
const trialFile = (name: string) => repoPath('configs', 'trials', `${name}.yaml`);
const OUT = repoPath('out', 'test', 'multirun');
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
