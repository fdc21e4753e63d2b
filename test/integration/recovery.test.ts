// Recovery and parallel guests, for real: a case that panics the kernel and one that hangs
// the guest each fail alone while a fresh guest runs the cases after them; --max-reboots 0
// leaves those cases "not run" as a single guest does; the subject suite with --jobs 2 gives
// the serial run's verdicts case by case.
import t from 'tap';
import { access, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { alive } from '../helpers/proc.js';
import { referenceRun } from '../helpers/reference.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const SUBJECT = repoPath('configs', 'trials', 'ns-container-2.6.20.yaml');
const fixture = (name: string) => repoPath('test', 'fixtures', 'scenarios', name);
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-recover-${name}-`));
const results = async (out: string) => JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
const exists = (p: string) => access(p).then(() => true, () => false);
const verdicts = (r: RunResults) => r.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict, c.boot]);

for (const [what, suite, broken, mark] of [
  ['panics the kernel', 'recover-crash.yaml', 'the crash', 'crash'],
  ['hangs the guest', 'recover-hang.yaml', 'the hang', 'lost'],
] as const) {
  t.test(`a case that ${what} fails alone; a fresh guest runs the suite setup and the cases after it`, async (t) => {
    const out = await tmp(mark);
    const r = await ktrial(['run', SMOKE61, '--suite', fixture(suite), '--out', out]);
    t.equal(r.code, 3, 'a crash or a lost guest is still a kernel-side failure');
    const res = await results(out);
    t.same(verdicts(res), [
      ['one', 'passed', 1],
      ['two', 'passed', 1],
      [broken, 'failed', 1],
      ['four', 'passed', 2],
      ['five', 'passed', 2],
      ['six', 'passed', 2],
    ], 'five verdicts plus the broken case; the ones after it ran on boot 2 (whose setup set the hostname they check)');
    const bad = res.cases.find((c) => c.name === broken)!;
    if (mark === 'crash') t.match(bad.crash?.excerpt, /sysrq/i, 'the excerpt shows the crash');
    else t.match(bad.lost, /stopped answering/, 'the case says the guest was lost');
    t.equal(res.guests?.length, 2, 'two boots recorded');
    t.match(res.guests?.[1]?.why, /boot 1 was lost/);
    t.match(res.guests?.[0]?.ended, /^lost: /);
    t.ok(await exists(join(out, 'console.log')), 'the first boot kept its console');
    t.ok(await exists(join(out, 'console-2.log')), 'the second boot has its own console');
    t.match(await readFile(join(out, 'summary.txt'), 'utf8'), /2 guests booted \(1 reboot of --max-reboots 3\)/);
    t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
  });
}

t.test('--max-reboots 0: the cases after a crash are not run, as with one guest', async (t) => {
  const out = await tmp('noreboot');
  const r = await ktrial(['run', SMOKE61, '--suite', fixture('recover-crash.yaml'), '--max-reboots', '0', '--out', out]);
  t.equal(r.code, 3);
  const res = await results(out);
  t.same(verdicts(res).map(([n, v]) => [n, v]), [
    ['one', 'passed'],
    ['two', 'passed'],
    ['the crash', 'failed'],
    ['four', 'not-run'],
    ['five', 'not-run'],
    ['six', 'not-run'],
  ]);
  t.equal(res.cases.find((c) => c.name === 'four')?.notRun?.cause, 'kernel-crashed');
  t.match(res.cases.find((c) => c.name === 'four')?.reason, /no reboot left \(--max-reboots 0\)/);
  t.equal(res.guests?.length, 1, 'one boot');
  t.notOk(await exists(join(out, 'console-2.log')));
});

t.test('the subject suite with --jobs 2 gives the serial verdicts, case by case', { skip: await sourceSkip('ns-container-2.6.20') }, async (t) => {
  const parallelOut = await tmp('jobs2');
  const serial = await referenceRun('ns-container-2.6.20');
  const parallel = await ktrial(['run', SUBJECT, '--jobs', '2', '--out', parallelOut]);
  t.equal(parallel.code, serial.code, 'the same exit code');
  const a = serial.results;
  const b = await results(parallelOut);
  const key = (r: RunResults) => r.cases.map((c) => [c.suite, c.index, c.name, c.verdict]);
  t.same(key(b), key(a), 'the same cases in the same order with the same verdicts');
  t.ok(a.cases.length > 100, `${a.cases.length} cases`);
  t.same(new Set(b.cases.map((c) => c.boot).filter((x) => x !== undefined)), new Set([1, 2]), 'both guests ran cases');
  t.equal(b.guests?.length, 2);
});

t.test('--isolate snapshot: a crash is recovered from the suite snapshot, without a reboot or a second setup', async (t) => {
  const out = await tmp('snapshot');
  const r = await ktrial(['run', SMOKE61, '--suite', fixture('recover-crash.yaml'), '--isolate', 'snapshot', '--out', out]);
  t.equal(r.code, 3, 'the crash is still a kernel-side failure');
  const res = await results(out);
  t.same(verdicts(res), [
    ['one', 'passed', 1],
    ['two', 'passed', 1],
    ['the crash', 'failed', 1],
    ['four', 'passed', 1],
    ['five', 'passed', 1],
    ['six', 'passed', 1],
  ], 'the cases after the crash ran on a restored copy of boot 1, which has the hostname its setup set');
  const crashed = res.cases.find((c) => c.name === 'the crash')!;
  t.match(crashed.crash?.excerpt, /sysrq/i, 'the crash is reported with its excerpt');
  t.equal(crashed.restoredFromSnapshot, true, 'the crashed case says a restored copy took over');
  t.equal(res.guests?.length, 1, 'one boot: no reboot');
  t.notOk(await exists(join(out, 'console-2.log')), 'no second boot console');
  t.match(await readFile(join(out, 'summary.txt'), 'utf8'), /restored from its snapshot/);
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});
