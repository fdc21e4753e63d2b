// The page of `ktrial compare --html` in a real headless Chromium: the grid renders, the
// "changes only" filter hides the unchanged cases, and a cell opens on its details. The
// runs are the recorded fixtures (test/fixtures/compare/README.md): first vs second has 9
// cases, 6 of them changed.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { execa } from 'execa';
import t from 'tap';
import { repoPath } from '../../harness/common/paths.js';
import { chromiumMissing, HeadlessPage } from '../helpers/chromium.js';

const missing = await chromiumMissing();

t.test('the compare page in headless Chromium', { skip: missing }, async (t) => {
  const page = join(t.testdir(), 'compare.html');
  const fixture = (name: string) => repoPath('test', 'fixtures', 'compare', `${name}.results.json`);
  await execa('node', [repoPath('bin', 'ktrial.js'), 'compare', fixture('first'), fixture('second'), '--html', page], { reject: false });

  const browser = await HeadlessPage.open();
  t.teardown(() => browser.close());
  await browser.navigate(pathToFileURL(page).href);

  const visibleRows = `[...document.querySelectorAll('tbody tr')].filter((r) => getComputedStyle(r).display !== 'none').length`;
  t.equal(await browser.evaluate<number>(`document.querySelectorAll('tbody tr').length`), 9, 'one row per case');
  t.equal(await browser.evaluate<number>(`document.querySelectorAll('thead th').length`), 2 + 2, 'suite, case and one column per run');
  t.equal(await browser.evaluate<number>(visibleRows), 9, 'every row shown at first');
  t.equal(
    await browser.evaluate<string>(`getComputedStyle(document.querySelector('td.c-regression')).backgroundColor`),
    await browser.evaluate<string>(`getComputedStyle(document.querySelector('td.v-failed')).backgroundColor`),
    'the regressed cell is coloured as a failure',
  );
  t.not(
    await browser.evaluate<string>(`getComputedStyle(document.querySelector('td.v-passed')).backgroundColor`),
    await browser.evaluate<string>(`getComputedStyle(document.querySelector('td.v-failed')).backgroundColor`),
    'passed and failed differ in colour',
  );

  await browser.evaluate(`document.getElementById('changes-only').click()`);
  t.equal(await browser.evaluate<number>(visibleRows), 6, 'changes only: the 3 unchanged cases are hidden');
  t.equal(await browser.evaluate<string>(`document.getElementById('shown').textContent`), '6 of 9 cases');
  await browser.evaluate(`document.getElementById('changes-only').click()`);
  t.equal(await browser.evaluate<number>(visibleRows), 9, 'and shown again');

  const cell = `document.querySelector('td.c-regression details')`;
  t.equal(await browser.evaluate<boolean>(`${cell}.open`), false, 'a cell starts closed');
  t.equal(await browser.evaluate<boolean>(`${cell}.querySelector('pre.actual').checkVisibility()`), false, 'its details hidden');
  await browser.evaluate(`${cell}.querySelector('summary').click()`);
  t.equal(await browser.evaluate<boolean>(`${cell}.open`), true, 'a click opens it');
  t.equal(await browser.evaluate<boolean>(`${cell}.querySelector('pre.actual').checkVisibility()`), true, 'its actual value shown');
  t.equal(await browser.evaluate<string>(`${cell}.querySelector('pre.actual').textContent`), 'exit 0, output "ktrial.compare=second"');
  t.equal(await browser.evaluate<string>(`${cell}.querySelector('pre.expected').textContent`), 'ok, output "ktrial.compare=first"');
});
