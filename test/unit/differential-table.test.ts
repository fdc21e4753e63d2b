// test/scenarios/DIFFERENTIAL.md, the subject's differential table, came from real runs of
// the ns-container suite on the three kernels: its commands are the ones that make it, its
// case set is the suite's, and each column's expected failures are those its trial lists.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { repoPath } from '../../harness/common/paths.js';
import { expandSuite } from '../../harness/scenarios/expand.js';
import { loadSuite } from '../../harness/scenarios/load.js';
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

// Read off each trial's expected-failures by hand: how many entries it has and the cases they
// name (ns-cgroup-2.6.24's "clone: CLONE_NEW* makes node_<child pid> ..." names three).
const FAILED_CLONE_LEAVES_NO_NODE = 'clone: a clone that fails after its namespaces were copied leaves no node';
const EXPECTED_FAILURES: Record<string, { entries: number; cases: string[] }> = {
  'ns-container-2.6.20': { entries: 1, cases: [FAILED_CLONE_LEAVES_NO_NODE] },
  'ns-container-control-2.6.20': { entries: 0, cases: [] },
  'ns-cgroup-2.6.24': {
    entries: 6,
    cases: [
      "clone: CLONE_NEWUTS makes node_<child pid> below the parent's container and starts the child there",
      "clone: CLONE_NEWIPC makes node_<child pid> below the parent's container and starts the child there",
      "clone: CLONE_NEWNS makes node_<child pid> below the parent's container and starts the child there",
      'clone: repeated clones from one parent each get their own node',
      'clone: from the root container the node is made at the top',
      'clone: a CLONE_NEWUTS child of a task in node_<pid> gets node_<pid>/node_<child pid>',
      'clone: the node stays, empty, after the child exits',
      FAILED_CLONE_LEAVES_NO_NODE,
    ],
  },
};

t.test("each column's expected failures are exactly those its trial lists", async (t) => {
  for (const [col, { trial }] of COLUMNS.entries()) {
    const expected = EXPECTED_FAILURES[trial]!;
    t.equal((await loadTrial(repoPath('configs', 'trials', `${trial}.yaml`))).expectedFailures.length, expected.entries, `${trial}: the entries counted here are still all it lists`);
    t.same(rows.filter((r) => r.verdicts[col] === 'expected-failure').map((r) => r.name), expected.cases, trial);
  }
});
