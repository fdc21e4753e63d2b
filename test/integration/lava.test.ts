// A trial as a LAVA job, run here with Debian's lava-run: the suites run in the guest on
// their own, and the verdicts read back from lava-run's log equal those of `ktrial run` on
// the same kernel, case by case (on 2.6.20, for the cases the job is cut to with --only).
// Skipped, with the reason, without lava-run (npm run setup installs it), without root
// (lava-run needs it) or without the 2.6.20 source.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import { which } from '../../harness/common/hosttools.js';
import type { RunResults } from '../../harness/report/index.js';

const lavaSkip = !(await which('lava-run')) ? 'lava-run is not installed (npm run setup installs lava-dispatcher)' : process.getuid?.() !== 0 ? 'lava-run must run as root' : false;

async function lavaResults(trial: string, out: string, extra: string[] = []): Promise<RunResults> {
  const r = await ktrial(['lava', repoPath('configs', 'trials', `${trial}.yaml`), '--out', out, ...extra]);
  if (r.code > 1) throw new Error(`ktrial lava ${trial} exited ${r.code}: ${r.stderr.slice(-3000)}`);
  return JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
}

const verdicts = (r: RunResults) => r.cases.map((c) => `${c.suite}/${c.index} ${c.name}: ${c.verdict}`);

/**
 * The LAVA job's verdicts against the trial's plain SSH run. With `prefixes`, the job runs
 * only the cases whose names start with one of them (--only PREFIX*): those must agree
 * with the SSH run, and every other case is reported as filtered out.
 */
async function sameVerdicts(t: Test, trial: string, prefixes: string[] = []): Promise<void> {
  const out = repoPath('out', 'test', `lava-${trial}`);
  const viaLava = await lavaResults(trial, join(out, 'lava'), ['--run', ...prefixes.flatMap((p) => ['--only', `${p}*`])]);
  const viaSsh = (await referenceRun(trial)).results;
  const chosen = (c: RunResults['cases'][number]) => !prefixes.length || prefixes.some((p) => c.name.startsWith(p));
  t.equal(viaLava.kernel.runner, 'lava');
  t.match(String(viaLava.kernel.lavaJobId), /^ktrial-\d+-\d+$/);
  t.match(await readFile(join(out, 'lava', 'lava.log'), 'utf8'), /"lvl": "results"/, 'lava-run\'s log is kept beside the reports');
  const inJob = (r: RunResults) => ({ ...r, cases: r.cases.filter((c) => c.kind !== 'case' || chosen(c)) });
  t.same(verdicts(inJob(viaLava)), verdicts(inJob(viaSsh)), 'the same cases with the same verdicts');
  const left = viaLava.cases.filter((c) => c.kind === 'case' && !chosen(c));
  t.same(left.filter((c) => c.notRun?.cause !== 'filtered').map((c) => c.name), [], `the ${left.length} cases --only left out are reported as filtered`);
  t.same(viaLava.notes ?? [], [], 'the guest told LAVA what the host judged');
  t.ok(viaLava.cases.filter((c) => c.verdict === 'passed').length > 10);
  t.equal(viaLava.cases.filter((c) => c.notRun?.cause === 'not-in-guest').length, 0, 'every case ran in the guest');
}

t.test('namespaces on the 6.1 smoke kernel: LAVA and SSH agree', { skip: lavaSkip }, async (t) => {
  await sameVerdicts(t, 'smoke-debian-6.1');
  // The lab's way: the job names the lab's URLs, its log is read back with --ingest.
  const out = repoPath('out', 'test', 'lava-smoke-debian-6.1');
  const ingested = await lavaResults('smoke-debian-6.1', join(out, 'ingest'), ['--ingest', join(out, 'lava', 'lava.log'), '--artifact-url', 'https://lab.example/ktrial/smoke/']);
  t.same(verdicts(ingested), verdicts((await referenceRun('smoke-debian-6.1')).results), '--ingest of the kept log gives the same verdicts');
  const job = await readFile(join(out, 'ingest', 'lava-job.yaml'), 'utf8');
  t.match(job, /url: https:\/\/lab\.example\/ktrial\/smoke\/ramdisk\.cpio/);
  t.notMatch(job, /file:\/\//, 'the lab\'s job names no local file');
});

// The clone cases (one of them an expected failure tied to a finding) and the unbound case,
// which remounts the hierarchy: the subject's actions and its known issue, through LAVA.
t.test('ns-container on the 2.6.20 subject kernel: LAVA and SSH agree on the clone and unbound cases', { skip: lavaSkip || (await sourceSkip('ns-container-2.6.20')) }, async (t) => {
  await sameVerdicts(t, 'ns-container-2.6.20', ['clone: ', 'unbound: ']);
});
