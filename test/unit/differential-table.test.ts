// test/scenarios/DIFFERENTIAL.md, the subject's differential table, came from real runs of
// the ns-container suite on the three kernels: its commands are the ones that make it, its
// case set is the suite's, and each column's expected failures are those its trial lists.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { repoPath } from '../../harness/common/paths.js';
import { expandSuite } from '../../harness/scenarios/expand.js';
import { loadSuite } from '../../harness/scenarios/load.js';
import { findKnownIssue } from '../../harness/scenarios/verdicts.js';
import { loadTrial } from '../../harness/trial/trial.js';

const COLUMNS = [
  { trial: 'ns-container-2.6.20', kernel: '2.6.20' },
  { trial: 'ns-container-control-2.6.20', kernel: '2.6.20' },
  { trial: 'ns-cgroup-2.6.24', kernel: '2.6.24' },
];

const text = await readFile(repoPath('test', 'scenarios', 'DIFFERENTIAL.md'), 'utf8');
const suite = await loadSuite(repoPath('test', 'scenarios', 'ns-container.yaml'));
const caseNames = expandSuite(suite).map((c) => c.name);

/** The table's rows: case name and one verdict per run (markup and class removed). */
const rows = [...text.matchAll(/^\| ns-container \| (.+) \| ([^|]+) \| ([^|]+) \| ([^|]+) \|$/gm)].map((m) => ({
  name: m[1]!.replace(/\\\|/g, '|'),
  verdicts: [m[2]!, m[3]!, m[4]!].map((c) => c.trim().replace(/^\*\*([a-z-]+)\*\*.*$/, '$1').replace(/ \(.*\)$/, '')),
}));

t.test('the commands that made it: one run of the ns-container suite per kernel, then compare --markdown', async (t) => {
  const commands = text.slice(text.indexOf('```'), text.indexOf('```', text.indexOf('```') + 3));
  for (const { trial } of COLUMNS) t.match(commands, new RegExp(`ktrial\\.js run configs/trials/${trial}\\.yaml .*--out out/differential/${trial}\\b`), `${trial} is run`);
  t.match(commands, /--suite test\/scenarios\/ns-container\.yaml/, "the control kernel runs the ns-container suite, not its own");
  t.match(commands, new RegExp(`compare ${COLUMNS.map((c) => `out/differential/${c.trial}`).join(' ')} --markdown`), 'compared in this order, the seed first');
});

t.test("the table's runs are the three kernels, each with every case of the suite", async (t) => {
  for (const [i, { trial, kernel }] of COLUMNS.entries()) {
    t.match(text, new RegExp(`\`out/differential/${trial}\` \\(${trial}, kernel ${kernel.replace(/\./g, '\\.')}, [^\\n]*, ${caseNames.length} cases\\)`), `run ${i + 1}: ${trial} on ${kernel}`);
  }
  t.same(rows.map((r) => r.name), caseNames, "the table's cases are the suite's, in its order");
  const verdicts = ['passed', 'failed', 'not-run', 'expected-failure', 'unexpectedly-passed', 'flaky'];
  for (const r of rows) t.ok(r.verdicts.every((v) => verdicts.includes(v)), `${r.name}: a verdict in every column`);
  for (let col = 0; col < COLUMNS.length; col++) t.notOk(rows.every((r) => r.verdicts[col] === 'not-run'), `column ${col + 1} ran`);
});

t.test("each column's expected failures are exactly those its trial lists", async (t) => {
  for (const [col, { trial }] of COLUMNS.entries()) {
    const issues = (await loadTrial(repoPath('configs', 'trials', `${trial}.yaml`))).expectedFailures;
    const listed = rows.filter((r) => findKnownIssue({ suite: 'ns-container', name: r.name }, issues)).map((r) => r.name);
    const shown = rows.filter((r) => r.verdicts[col] === 'expected-failure').map((r) => r.name);
    t.same(shown, listed, trial);
  }
});
