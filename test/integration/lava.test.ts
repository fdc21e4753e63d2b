// A trial as a LAVA job, run here with Debian's lava-run: the suites run in the guest on
// their own, and the verdicts read back from lava-run's log equal those of `ktrial run` on
// the same kernel, case by case. Skipped, with the reason, without lava-run (npm run setup
// installs it), without root (lava-run needs it) or without the 2.6.20 source.
import t, { type Test } from 'tap';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import { which } from '../../harness/common/hosttools.js';
import type { RunResults } from '../../harness/report/index.js';

const lavaSkip = !(await which('lava-run')) ? 'lava-run is not installed (npm run setup installs lava-dispatcher)' : process.getuid?.() !== 0 ? 'lava-run must run as root' : false;

async function results(command: 'run' | 'lava', trial: string, out: string, extra: string[] = []): Promise<RunResults> {
  const r = await ktrial([command, repoPath('configs', 'trials', `${trial}.yaml`), '--out', out, ...extra]);
  if (r.code > 1) throw new Error(`ktrial ${command} ${trial} exited ${r.code}: ${r.stderr.slice(-3000)}`);
  return JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
}

const verdicts = (r: RunResults) => r.cases.map((c) => `${c.suite}/${c.index} ${c.name}: ${c.verdict}`);

async function sameVerdicts(t: Test, trial: string): Promise<void> {
  const out = repoPath('out', 'test', `lava-${trial}`);
  const viaLava = await results('lava', trial, join(out, 'lava'), ['--run']);
  const viaSsh = await results('run', trial, join(out, 'run'));
  t.equal(viaLava.kernel.runner, 'lava');
  t.match(String(viaLava.kernel.lavaJobId), /^ktrial-\d+-\d+$/);
  t.match(await readFile(join(out, 'lava', 'lava.log'), 'utf8'), /"lvl": "results"/, 'lava-run\'s log is kept beside the reports');
  t.same(verdicts(viaLava), verdicts(viaSsh), 'the same cases with the same verdicts');
  t.same(viaLava.notes ?? [], [], 'the guest told LAVA what the host judged');
  t.ok(viaLava.cases.filter((c) => c.verdict === 'passed').length > 10);
  t.equal(viaLava.cases.filter((c) => c.notRun?.cause === 'not-in-guest').length, 0, 'every case ran in the guest');
}

t.test('namespaces on the 6.1 smoke kernel: LAVA and SSH agree', { skip: lavaSkip }, async (t) => {
  await sameVerdicts(t, 'smoke-debian-6.1');
  // The lab's way: the job names the lab's URLs, its log is read back with --ingest.
  const out = repoPath('out', 'test', 'lava-smoke-debian-6.1');
  const ingested = await results('lava', 'smoke-debian-6.1', join(out, 'ingest'), ['--ingest', join(out, 'lava', 'lava.log'), '--artifact-url', 'https://lab.example/ktrial/smoke/']);
  const run = JSON.parse(await readFile(join(out, 'run', 'results.json'), 'utf8')) as RunResults;
  t.same(verdicts(ingested), verdicts(run), '--ingest of the kept log gives the same verdicts');
  const job = await readFile(join(out, 'ingest', 'lava-job.yaml'), 'utf8');
  t.match(job, /url: https:\/\/lab\.example\/ktrial\/smoke\/ramdisk\.cpio/);
  t.notMatch(job, /file:\/\//, 'the lab\'s job names no local file');
});

t.test('ns-container on the 2.6.20 subject kernel: LAVA and SSH agree', { skip: lavaSkip || (await sourceSkip('ns-container-2.6.20')) }, async (t) => {
  await sameVerdicts(t, 'ns-container-2.6.20');
});
