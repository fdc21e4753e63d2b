// Reporters against golden files in test/fixtures/reports/. The inputs are real runs'
// results.json (test/fixtures/reports/README.md says how each was recorded). This test
// only reads the goldens: to accept a deliberate change in the output, run
// `npm run update-goldens` and review the diff.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { load } from 'js-yaml';
import { Parser } from 'tap-parser';
import type { PhaseRecord } from '../../harness/common/progress.js';
import { countVerdicts } from '../../harness/scenarios/verdicts.js';
import { BISECT, bisectVerdict, exitCodeFor, overallStatus, toJunit, toResultsJson, toSummary, toTap, type RunResults } from '../../harness/report/index.js';
import { REPORTERS, REPORT_INPUTS, goldenPath, readInput as input, readRecorded } from '../helpers/report-fixtures.js';

// Each input's exit code by README.md's "Exit codes" (0 every case as expected, 3 a
// kernel-side failure: did not boot, or crashed), as test/fixtures/reports/README.md
// records the recording run's own exit.
const EXPECTED_EXIT: Record<(typeof REPORT_INPUTS)[number], number> = {
  'all-passed': 0, // passed, or not run for a missing option
  'boot-failed': 3, // the kernel did not boot
  mixed: 3, // a case crashed the kernel
  recovered: 3, // a case crashed the kernel, the others passed on a fresh guest
};

for (const name of REPORT_INPUTS) {
  t.test(`${name}: every reporter matches its golden file`, async (t) => {
    const r = await input(name);
    for (const [suffix, fn] of REPORTERS) {
      const expected = await readFile(goldenPath(name, suffix), 'utf8').catch(() => `(missing golden file ${name}.${suffix}: npm run update-goldens)`);
      t.equal(fn(r), expected, `${name}.${suffix}`);
    }
  });

  t.test(`${name}: what the recorded run wrote agrees with what the reporters derive`, async (t) => {
    const { results, recorded } = await readRecorded(name);
    t.equal(recorded.exitCode, EXPECTED_EXIT[name], 'the exit code the run recorded');
    t.equal(exitCodeFor(results), EXPECTED_EXIT[name], 'the exit code derived from its cases and error');
    t.same(recorded.counts, countVerdicts(results.cases), 'counts');
  });

  t.test(`${name}: the TAP output parses as TAP 14`, async (t) => {
    const r = await input(name);
    const result = await new Promise<{ ok: boolean; count: number; failures: unknown[]; bailout: unknown }>((res) => {
      const p = new Parser((final) => res(final as never));
      p.end(toTap(r));
    });
    t.equal(result.count, r.cases.length, 'one test point per case');
    t.equal(Boolean(result.bailout), Boolean(r.error), 'bails out exactly when the run had an error');
    const parseErrors = (result.failures as { tapError?: string }[]).filter((f) => f.tapError);
    t.same(parseErrors, [], 'no TAP syntax errors');
    // Every diagnostics block is YAML that reads back to the case's own values.
    const blocks = [...toTap(r).matchAll(/\n  ---\n([\s\S]*?)\n  \.\.\.\n/g)].map((m) => load(m[1]!) as Record<string, unknown>);
    const notPassed = r.cases.filter((c) => c.verdict !== 'passed' && c.verdict !== 'not-run');
    t.equal(blocks.length, notPassed.length, 'a diagnostics block for each case that did not simply pass or skip');
    blocks.forEach((b, i) => {
      const c = notPassed[i]!;
      t.equal(b.verdict, c.verdict);
      if (c.failure) t.same([b.expected, b.actual, b.output], [c.failure.expected, c.failure.actual, c.failure.output], `${c.name}: expected/actual read back`);
      if (c.crash) t.equal((b.crash as { console: string }).console, c.crash.excerpt, `${c.name}: console excerpt reads back`);
    });
  });

  t.test(`${name}: results.json round-trips`, async (t) => {
    const r = await input(name);
    const doc = JSON.parse(toResultsJson(r)) as { cases: unknown[]; exitCode: number; format: string };
    t.equal(doc.format, 'ktrial-results/1');
    t.same(doc.cases, r.cases);
    t.equal(doc.exitCode, EXPECTED_EXIT[name]);
  });
}

t.test('the recorded inputs cover what their names say', async (t) => {
  const mixed = await input('mixed');
  t.same(new Set(mixed.cases.map((c) => c.verdict)), new Set(['passed', 'failed', 'expected-failure', 'unexpectedly-passed', 'flaky', 'not-run']), 'mixed: every verdict');
  t.ok(mixed.cases.some((c) => c.crash), 'mixed: a kernel crash');
  t.same(new Set(mixed.cases.filter((c) => c.verdict === 'not-run').map((c) => c.notRun?.cause)), new Set(['missing-requirement', 'kernel-crashed']), 'mixed: not run for a missing option and after the crash');
  t.ok(mixed.notes?.length, 'mixed: a note');
  const boot = await input('boot-failed');
  t.equal(boot.error?.class, 'kernel', 'boot-failed: a kernel error');
  t.ok(boot.cases.length && boot.cases.every((c) => c.notRun?.cause === 'boot-failed'), 'boot-failed: every case not run');
  const all = await input('all-passed');
  t.ok(all.cases.every((c) => c.verdict === 'passed' || c.notRun?.cause === 'missing-requirement'), 'all-passed: passed, or not run for a missing option');
});

t.test('exit codes', async (t) => {
  const mixed = await input('mixed');
  t.equal(exitCodeFor(mixed), 3, 'a kernel crash during a case is a kernel failure');
  t.equal(exitCodeFor(await input('boot-failed')), 3, 'a boot failure is a kernel failure');
  t.equal(exitCodeFor(await input('all-passed')), 0, 'passed, and not run for a missing requirement, are as expected');

  const noCrash = mixed.cases.filter((c) => !c.crash && c.notRun?.cause !== 'kernel-crashed');
  t.equal(exitCodeFor({ ...mixed, status: 'ok', cases: noCrash }), 1, 'a failed case makes 1 even when the status says ok');
  t.equal(overallStatus(noCrash), 'unexpected');
  const onlyGood = noCrash.filter((c) => ['passed', 'expected-failure', 'not-run'].includes(c.verdict));
  t.equal(exitCodeFor({ ...mixed, status: 'ok', cases: onlyGood }), 0);
  t.equal(exitCodeFor({ ...mixed, status: 'ok', cases: [...onlyGood, { ...onlyGood[0]!, verdict: 'unexpectedly-passed' }] }), 1, 'an unexpected pass needs attention');
  t.equal(exitCodeFor({ ...mixed, status: 'ok', cases: [...onlyGood, { ...onlyGood[0]!, verdict: 'flaky' }] }), 1, 'a flaky case needs attention');
  const setupFailed = { ...onlyGood[0]!, verdict: 'not-run' as const, notRun: { cause: 'setup-failed' as const, detail: 'x' } };
  t.equal(exitCodeFor({ ...mixed, status: 'ok', cases: [setupFailed] }), 1, 'not run because setup failed is not as expected');
  t.equal(exitCodeFor({ ...mixed, status: 'host', cases: [] }), 4);
  t.equal(exitCodeFor({ ...mixed, status: 'bad-input', cases: [] }), 2);
  t.equal(exitCodeFor({ ...mixed, status: 'interrupted', cases: [] }), 130);
  t.equal(overallStatus([], { class: 'host', message: 'x' }), 'host');
});

t.test('JUnit output escapes XML and has no invalid characters', async (t) => {
  const r = await input('all-passed');
  r.cases[0]!.name = 'bell \u0007 and <tag> & "q"';
  const xml = toJunit(r);
  t.notMatch(xml, /[\u0000-\u0008\u000b\u000c\u000e-\u001f]/);
  t.match(xml, /name="bell \? and &lt;tag&gt; &amp; &quot;q&quot;"/);
});

t.test('TAP escapes # and \\ in case names, and a reason in a directive stays on one line', async (t) => {
  const r = await input('all-passed');
  const passed = r.cases.find((c) => c.verdict === 'passed')!;
  passed.name = 'hostname with a # and a \\ in "quotes"';
  const skipped = r.cases.find((c) => c.verdict === 'not-run')!;
  skipped.reason = 'two\nlines';
  const names: string[] = [];
  const skips: unknown[] = [];
  await new Promise<void>((res) => {
    const p = new Parser(() => res());
    p.on('assert', (a: { name: string; skip: unknown }) => {
      names.push(a.name);
      if (a.skip) skips.push(a.skip);
    });
    p.end(toTap(r));
  });
  t.ok(names.includes(`${passed.suite}: hostname with a # and a \\ in "quotes"`), 'the name reads back whole');
  t.same(skips, r.cases.filter((c) => c.verdict === 'not-run').map((c) => (c === skipped ? 'two lines' : c.reason)), 'SKIP reasons read back');
});

t.test('the summary shows the start of a long crash excerpt', async (t) => {
  const r = await input('mixed');
  const crashed = r.cases.find((c) => c.crash)!;
  crashed.crash!.excerpt = Array.from({ length: 30 }, (_, i) => (i === 0 ? 'Kernel panic - not syncing: x' : `frame ${i}`)).join('\n');
  const text = toSummary(r);
  t.match(text, /\| Kernel panic - not syncing: x\n/);
  t.match(text, /\| frame 11\n +\| \.\.\. 18 more line\(s\) in results\.json and console\.log\n/);
  t.notMatch(text, /frame 12\b/);
});

t.test('git bisect verdicts: good, bad, skip an untestable commit, abort on what no commit fixes', async (t) => {
  t.equal(bisectVerdict(await input('all-passed')), 'good');
  t.equal(bisectVerdict(await input('mixed')), 'bad', 'a case not as expected');
  t.equal(bisectVerdict(await input('boot-failed')), 'bad', 'a kernel that does not boot');
  const failedIn = (phase: string, cls: NonNullable<RunResults['error']>['class']): RunResults => ({
    trial: 'x',
    kernel: {},
    phases: (phase === 'source' ? [] : [{ phase: 'source', status: 'ok', seconds: 1 }]).concat([{ phase, status: 'failed', seconds: 1 }]) as PhaseRecord[],
    cases: [],
    status: cls,
    error: { class: cls, message: 'm' },
  });
  t.equal(bisectVerdict(failedIn('build', 'kernel')), 'skip', 'a build failure skips the commit');
  t.equal(bisectVerdict(failedIn('patch', 'bad-input')), 'skip', 'a patch that does not apply at this commit');
  t.equal(bisectVerdict(failedIn('config', 'bad-input')), 'skip', 'a required option this commit drops');
  t.equal(bisectVerdict(failedIn('source', 'bad-input')), 'abort', 'a source that is not a tree');
  t.equal(bisectVerdict(failedIn('boot', 'host')), 'abort', 'QEMU could not start');
  t.equal(bisectVerdict({ ...failedIn('build', 'interrupted') }), 'abort', 'interrupted');
  t.same(BISECT, { good: 0, bad: 1, skip: 125, abort: 128 });
});
