// Reporters against golden files in test/fixtures/reports/. To accept a deliberate change
// in the output, run with KTRIAL_UPDATE_GOLDEN=1 and review the diff.
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import t, { type Test } from 'tap';
import { load } from 'js-yaml';
import { Parser } from 'tap-parser';
import type { PhaseRecord } from '../../harness/common/progress.js';
import { BISECT, bisectVerdict, exitCodeFor, overallStatus, toJunit, toResultsJson, toSummary, toTap, type RunResults } from '../../harness/report/index.js';

const dir = fileURLToPath(new URL('../../../test/fixtures/reports/', import.meta.url));
const update = process.env.KTRIAL_UPDATE_GOLDEN === '1';

async function input(name: string): Promise<RunResults> {
  return JSON.parse(await readFile(`${dir}${name}.input.json`, 'utf8')) as RunResults;
}

async function golden(t: Test, file: string, actual: string): Promise<void> {
  const path = `${dir}${file}`;
  if (update) await writeFile(path, actual);
  const expected = await readFile(path, 'utf8').catch(() => '(missing golden file: run with KTRIAL_UPDATE_GOLDEN=1)');
  t.equal(actual, expected, file);
}

const reporters: [string, (r: RunResults) => string][] = [
  ['results.json', toResultsJson],
  ['tap', toTap],
  ['junit.xml', toJunit],
  ['summary.txt', toSummary],
];

for (const name of ['mixed', 'boot-failed', 'all-passed']) {
  t.test(`${name}: every reporter matches its golden file`, async (t) => {
    const r = await input(name);
    for (const [ext, fn] of reporters) await golden(t, `${name}.${ext}`, fn(r));
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
    t.equal(doc.exitCode, exitCodeFor(r));
  });
}

t.test('exit codes', async (t) => {
  const mixed = await input('mixed');
  t.equal(exitCodeFor(mixed), 3, 'a kernel crash during a case is a kernel failure');
  t.equal(exitCodeFor(await input('boot-failed')), 3, 'a boot failure is a kernel failure');
  t.equal(exitCodeFor(await input('all-passed')), 0, 'passed, expected failures and missing requirements are as expected');

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
