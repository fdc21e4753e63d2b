// ktrial compare on real runs' results.json: test/fixtures/compare/ (README.md there says
// how each was recorded) and the report fixtures in test/fixtures/reports/. Every expected
// class below was read off the recorded files by hand, case by case.
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import type { Issue } from '../../harness/common/schema.js';
import { repoPath } from '../../harness/common/paths.js';
import { classify, compareJsonSchemaText, compareRuns, compareSchema, loadRun, toCompareHtml, toCompareMarkdown, toCompareSummary, type CompareDoc } from '../../harness/compare/index.js';
import type { CaseResult } from '../../harness/scenarios/index.js';

const compareFixture = (name: string) => repoPath('test', 'fixtures', 'compare', `${name}.results.json`);
const reportFixture = (name: string) => repoPath('test', 'fixtures', 'reports', `${name}.input.json`);
const KTRIAL = repoPath('bin', 'ktrial.js');

async function compareFiles(...paths: string[]): Promise<CompareDoc> {
  const runs = [];
  for (const p of paths) runs.push(await loadRun(p));
  return compareRuns(runs);
}

/** "suite / name" -> class against the baseline, for the later run at position `run`. */
const classesOf = (doc: CompareDoc, run = 1) => Object.fromEntries(doc.cases.map((c) => [`${c.suite} / ${c.name}`, c.classes[run - 1]]));

t.test('first vs second run: one case of every class', async (t) => {
  const doc = await compareFiles(compareFixture('first'), compareFixture('second'));
  t.same(classesOf(doc), {
    'compare / the hostname can be read': 'unchanged', // passed, passed
    'compare / the guest has a hostname it does not have': 'unchanged', // failed, failed; actual ok, output "ktrial" in both
    'compare / the kernel was booted for the first run': 'regression', // passed, failed
    'compare / the kernel was booted for the second run': 'fix', // failed, passed
    'compare / the kernel was booted for a third run': 'changed-actual', // failed, failed; ...=first, then ...=second
    'compare / a directory in /tmp is created once per boot': 'flaky', // passed, flaky (--repeat 2)
    'compare / the kernel lists its modules': 'unchanged', // not run in both (CONFIG_MODULES)
    'only-first / a case only the first run has': 'gone',
    'only-second / a case only the second run has': 'new',
  });
  t.same(doc.comparisons[0]!.counts, { regression: 1, fix: 1, 'changed-actual': 1, flaky: 1, 'not-run': 0, new: 1, gone: 1, unchanged: 3 });
  t.equal(doc.regressions, 1);
  t.equal(doc.exitCode, 1);
  const third = doc.cases.find((c) => c.name === 'the kernel was booted for a third run')!;
  t.same(
    third.cells.map((c) => c.actual),
    ['exit 0, output "ktrial.compare=first"', 'exit 0, output "ktrial.compare=second"'],
    'the changed actual values, as recorded',
  );
  t.same(doc.cases.find((c) => c.suite === 'only-second')!.cells[0], { verdict: 'missing' });
});

t.test('a third run: each later run is compared with the baseline, not with the run before it', async (t) => {
  const doc = await compareFiles(compareFixture('first'), compareFixture('second'), compareFixture('only'));
  t.equal(doc.runs.length, 3);
  t.same(classesOf(doc, 2), {
    // not selected by --only in the third run, ran in the first
    'compare / the hostname can be read': 'not-run',
    'compare / the guest has a hostname it does not have': 'not-run',
    'compare / a directory in /tmp is created once per boot': 'not-run',
    // selected, same command line word as the first run: same verdicts and values
    'compare / the kernel was booted for the first run': 'unchanged',
    'compare / the kernel was booted for the second run': 'unchanged',
    'compare / the kernel was booted for a third run': 'unchanged',
    'compare / the kernel lists its modules': 'unchanged', // not run in both
    'only-first / a case only the first run has': 'gone',
    'only-second / a case only the second run has': 'absent', // in neither the first nor the third
  });
  t.equal(doc.comparisons[1]!.counts.regression, 0);
  t.equal(doc.regressions, 1, 'the second run still has its regression');
});

t.test('a case only the second of three runs has is in no class of the third run: summary, HTML and JSON', async (t) => {
  // Counted by hand from the fixtures: first has 8 cases, second 8 (7 shared with first,
  // plus only-second's), only 7 (all of them first's, only-first's missing).
  const secondCounts = { regression: 1, fix: 1, 'changed-actual': 1, flaky: 1, 'not-run': 0, new: 1, gone: 1, unchanged: 3 };
  // hostname read, guest hostname, mkdir: not selected by --only; the three "booted" cases
  // and the modules case (not run in both): unchanged; only-first's case: gone.
  const onlyCounts = { regression: 0, fix: 0, 'changed-actual': 0, flaky: 0, 'not-run': 3, new: 0, gone: 1, unchanged: 4 };
  const runs = ['first.results.json', 'second.results.json', 'only.results.json'];
  const dir = t.testdir();
  const page = join(dir, 'page.html');
  const node = (...args: string[]) => execa('node', [KTRIAL, 'compare', ...runs, ...args], { cwd: repoPath('test', 'fixtures', 'compare'), reject: false });

  const summary = (await node('--html', page)).stdout;
  t.match(summary, /\nsecond\.results\.json against the baseline: 1 regression, 1 fix, 1 changed-actual, 1 flaky, 1 new, 1 gone, 3 unchanged\n/);
  t.match(summary, /\nonly\.results\.json against the baseline: 3 not-run, 1 gone, 4 unchanged\n/);
  const third = summary.slice(summary.indexOf('only.results.json against the baseline'));
  t.equal(third.split('\n').filter((l) => l.startsWith('  ')).length, 4, 'the third run lists its 3 not-run cases and the gone one');
  t.notMatch(third, /only-second/, 'and not the case it shares with nothing');

  const html = await readFile(page, 'utf8');
  t.match(html, '<li>second.results.json: 1 regression, 1 fix, 1 changed-actual, 1 flaky, 1 new, 1 gone, 3 unchanged</li>');
  t.match(html, '<li>only.results.json: 3 not-run, 1 gone, 4 unchanged</li>');
  t.match(html, /<td>a case only the second run has<\/td><td class="cell v-missing">missing<\/td><td class="cell v-passed c-new" .*<\/td><td class="cell v-missing">missing<\/td><\/tr>/, 'its third cell is missing, unmarked');

  const doc = JSON.parse((await node('--json')).stdout) as CompareDoc;
  t.same(doc.comparisons, [
    { run: 1, counts: secondCounts },
    { run: 2, counts: onlyCounts },
  ]);
  t.same(doc.cases.find((c) => c.suite === 'only-second')!.classes, ['new', 'absent']);
});

t.test('two passing runs of the same trial: nothing changed', async (t) => {
  const doc = await compareFiles(reportFixture('all-passed'), compareFixture('smoke-again'));
  t.equal(doc.cases.length, 24);
  t.same(doc.comparisons[0]!.counts, { regression: 0, fix: 0, 'changed-actual': 0, flaky: 0, 'not-run': 0, new: 0, gone: 0, unchanged: 24 });
  t.equal(doc.exitCode, 0);
});

t.test('a run whose kernel did not boot is no regression: its cases were not run', async (t) => {
  const down = await compareFiles(reportFixture('all-passed'), reportFixture('boot-failed'));
  // 23 ran in all-passed; the 24th (needs a kernel without PID namespaces) was not run in either
  t.same(down.comparisons[0]!.counts, { regression: 0, fix: 0, 'changed-actual': 0, flaky: 0, 'not-run': 23, new: 0, gone: 0, unchanged: 1 });
  t.equal(down.exitCode, 0);
  t.match(down.runs[1], { status: 'kernel', exitCode: 3 }, 'the run says why it has no results');
  const up = await compareFiles(reportFixture('boot-failed'), reportFixture('all-passed'));
  t.equal(up.comparisons[0]!.counts['not-run'], 23, 'nor is booting again a fix');
  t.equal(up.comparisons[0]!.counts.fix, 0);
});

t.test('runs of different suites share no case: every case is gone or new', async (t) => {
  const doc = await compareFiles(reportFixture('mixed'), reportFixture('all-passed'));
  t.equal(doc.comparisons[0]!.counts.gone, 9); // mixed: 6 cases of suite mixed, 3 of crash
  t.equal(doc.comparisons[0]!.counts.new, 24);
  t.equal(doc.cases.length, 33);
});

t.test('the classes of the verdicts in between, on the mixed run\'s own cases', async (t) => {
  const { results } = await loadRun(reportFixture('mixed'));
  const byName = (name: string): CaseResult => results.cases.find((c) => c.name === name)!;
  const passed = byName('the hostname can be read');
  const failed = byName('the hostname is the one this case wrongly expects');
  const expectedFailure = byName('an unprivileged user sets the hostname');
  const unexpectedPass = byName('uid 0 without CAP_SYS_ADMIN cannot set the hostname');
  const notRunMissingOption = byName('the kernel lists its modules');
  const notRunCrash = byName('after the crash');
  t.equal(classify(expectedFailure, failed), 'regression', 'an expected failure counts as expected');
  t.equal(classify(failed, expectedFailure), 'fix');
  t.equal(classify(unexpectedPass, failed), 'changed-actual', 'not as expected on both sides');
  t.equal(classify(passed, expectedFailure), 'changed-actual', 'as expected on both sides, another verdict');
  t.equal(classify(notRunMissingOption, failed), 'not-run', 'not run for a missing option is as expected, yet never a regression');
  t.equal(classify(passed, notRunCrash), 'not-run');
  t.equal(classify(notRunCrash, notRunMissingOption), 'unchanged');
});

t.test('the summary counts each class and lists every changed case', async (t) => {
  const text = toCompareSummary(await compareFiles(compareFixture('first'), compareFixture('second')));
  t.match(text, /against the baseline: 1 regression, 1 fix, 1 changed-actual, 1 flaky, 1 new, 1 gone, 3 unchanged\n/);
  const listed = text.split('\n').filter((l) => l.startsWith('  '));
  t.equal(listed.length, 6, 'the six changed cases, not the three unchanged ones');
  t.ok(listed.some((l) => /^ {2}regression +compare: the kernel was booted for the first run: passed -> failed \(exit 0, output "ktrial.compare=second"\)$/.test(l)), 'the regression with its new actual value');
  t.ok(listed.some((l) => l.includes('changed-actual') && l.includes('"ktrial.compare=first" -> exit 0, output "ktrial.compare=second"')), 'the changed actual value, before and after');
  t.match(text, /result: 1 regression\(s\) \(exit 1\)\n$/);
});

t.test('--markdown: a table of case x run', async (t) => {
  const lines = toCompareMarkdown(await compareFiles(compareFixture('first'), compareFixture('second'))).split('\n');
  const rows = lines.filter((l) => l.startsWith('| '));
  t.equal(rows.length, 1 + 1 + 9, 'a header, the separator and one row per case');
  t.ok(rows.includes('| compare | the kernel was booted for the first run | passed | **failed** (regression) |'));
  t.ok(rows.includes('| only-first | a case only the first run has | passed | **missing** (gone) |'));
  t.ok(rows.includes('| compare | the hostname can be read | passed | passed |'));
  t.ok(rows.includes('| compare | a directory in /tmp is created once per boot | passed | **flaky** |'), 'a flaky cell is not labelled twice');
});

t.test('--json follows the shipped schema', async (t) => {
  const doc = JSON.parse(JSON.stringify(await compareFiles(compareFixture('first'), compareFixture('second'), compareFixture('only')))) as unknown;
  const issues: Issue[] = [];
  compareSchema.check(doc, [], issues);
  t.same(issues, [], 'no schema problems');
  t.equal(await readFile(repoPath('configs', 'schema', 'compare.schema.json'), 'utf8'), compareJsonSchemaText(), 'regenerate with: node dist/harness/write-schemas.js');
  const broken: Issue[] = [];
  compareSchema.check({ ...(doc as object), format: 'ktrial-compare/2' }, [], broken);
  t.equal(broken.length, 1, 'and the schema does reject a wrong format');
});

t.test('the HTML page is self-contained and has one row per case', async (t) => {
  const html = toCompareHtml(await compareFiles(compareFixture('first'), compareFixture('second')));
  t.notMatch(html, /<link|<script [^>]*src=|<img|https?:\/\//, 'no external assets or addresses');
  t.equal(html.match(/<tr data-changed=/g)?.length, 9);
  t.equal(html.match(/<tr data-changed="true"/g)?.length, 6);
  t.match(html, /class="cell v-failed c-regression"/);
});

t.test('ktrial compare: exit codes and bad input', async (t) => {
  const dir = t.testdir();
  const runDir = join(dir, 'run');
  await execa('mkdir', [runDir]);
  await copyFile(compareFixture('second'), join(runDir, 'results.json'));
  const node = (...args: string[]) => execa('node', [KTRIAL, 'compare', ...args], { reject: false });

  const regressed = await node(compareFixture('first'), runDir);
  t.equal(regressed.exitCode, 1, 'a regression: exit 1 (the later run given as its output directory)');
  t.match(regressed.stdout, /1 regression/);
  t.equal((await node(compareFixture('first'), compareFixture('only'))).exitCode, 0, 'no regression: exit 0');

  const missing = await node(compareFixture('first'), join(dir, 'nowhere'));
  t.equal(missing.exitCode, 2);
  t.match(missing.stderr, `${join(dir, 'nowhere')}: no such file or directory`);

  const future = join(dir, 'future.json');
  await writeFile(future, (await readFile(compareFixture('first'), 'utf8')).replace('"ktrial-results/1"', '"ktrial-results/2"'));
  const mismatch = await node(compareFixture('first'), future);
  t.equal(mismatch.exitCode, 2);
  t.match(mismatch.stderr, `${future}: format "ktrial-results/2", but this ktrial reads ktrial-results/1`);

  const notResults = await node(compareFixture('first'), repoPath('package.json'));
  t.equal(notResults.exitCode, 2);
  t.match(notResults.stderr, `${repoPath('package.json')}: not a ktrial results.json`);

  const emptyDir = await node(compareFixture('first'), dir);
  t.equal(emptyDir.exitCode, 2, 'a directory without results.json');
  t.match(emptyDir.stderr, `${join(dir, 'results.json')}: cannot be read (ENOENT)`);

  t.equal((await node(compareFixture('first'))).exitCode, 2, 'one run is not a comparison');
  const json = await node(compareFixture('first'), compareFixture('second'), '--json');
  t.equal((JSON.parse(json.stdout) as CompareDoc).format, 'ktrial-compare/1');
  const html = join(dir, 'page.html');
  await node(compareFixture('first'), compareFixture('second'), '--html', html);
  t.match(await readFile(html, 'utf8'), /^<!DOCTYPE html>/);
});
