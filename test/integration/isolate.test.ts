// --isolate snapshot, for real on the 6.1 smoke kernel: a suite whose cases leave traces for
// the next one fails on one shared guest and passes when every case starts from the guest
// saved after setup; the namespaces suite gives the same verdicts either way.
import t from 'tap';
import { access, mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { alive } from '../helpers/proc.js';
import { referenceRun } from '../helpers/reference.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const ISOLATE = repoPath('test', 'fixtures', 'scenarios', 'isolate.yaml');
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-isolate-${name}-`));
const results = async (out: string) => JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
const verdicts = (r: RunResults) => r.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict]);
const exists = (p: string) => access(p).then(() => true, () => false);

t.test('cases that leave traces: seen on one shared guest, not under --isolate snapshot', async (t) => {
  const shared = await tmp('shared');
  const r1 = await ktrial(['run', SMOKE61, '--suite', ISOLATE, '--out', shared]);
  t.equal(r1.code, 1, 'on one guest the later cases see the first one\'s traces');
  t.same(verdicts(await results(shared)), [
    ['first leaves a file and a hostname', 'passed'],
    ['second sees only what setup made', 'failed'],
    ['third sees only what setup made', 'failed'],
  ]);

  const isolated = await tmp('snapshot');
  const r2 = await ktrial(['run', SMOKE61, '--suite', ISOLATE, '--isolate', 'snapshot', '--out', isolated]);
  t.equal(r2.code, 0, r2.stderr);
  const res = await results(isolated);
  t.same(verdicts(res), [
    ['first leaves a file and a hostname', 'passed'],
    ['second sees only what setup made', 'passed'],
    ['third sees only what setup made', 'passed'],
  ], 'each case after the first starts from the guest as setup left it');
  t.same((await readdir(join(isolated, 'restored'))).sort(), ['console-1.1.log', 'console-1.2.log'], 'one restored guest per case after the first, each with its console');
  t.notOk((await readdir(isolated)).some((f) => f.endsWith('.state') || f.endsWith('.partial')), 'the saved state is removed at the end');
  t.match(res.rerun?.command.join(' '), / --isolate snapshot /, 'the re-run line repeats the option');
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});

t.test('the namespaces suite gives the same verdicts with --isolate snapshot', async (t) => {
  const isolated = await tmp('ns-snapshot');
  const a = await referenceRun('smoke-debian-6.1');
  const b = await ktrial(['run', SMOKE61, '--isolate', 'snapshot', '--out', isolated]);
  t.equal(b.code, a.code, 'the same exit code');
  const va = verdicts(a.results);
  t.ok(va.length > 10, `${va.length} cases`);
  t.same(verdicts(await results(isolated)), va, 'case by case, the same verdicts');
  t.ok(await exists(join(isolated, 'restored')), 'the cases ran on restored guests');
});

t.test('--isolate takes only snapshot', async (t) => {
  const r = await ktrial(['run', SMOKE61, '--isolate', 'fork', '--out', await tmp('bad')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /--isolate takes "snapshot", got "fork"/);
});
