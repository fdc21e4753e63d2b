// The subject's trials and suites, checked offline: both trials load, their suites load and
// expand, every rule area of the ns container subsystem has cases on both sides (allowed
// and refused), every row of the expected-permission table in test/scenarios/FINDINGS.md
// has a case with the same expected outcome, and each expected failure names a case that
// exists and a finding that is written up.
import { readFile } from 'node:fs/promises';
import t from 'tap';
import { load } from 'js-yaml';
import { repoPath } from '../../harness/common/paths.js';
import { expandSuite } from '../../harness/scenarios/expand.js';
import { loadSuite } from '../../harness/scenarios/load.js';
import type { Case } from '../../harness/scenarios/types.js';
import { findKnownIssue, missingRequirements } from '../../harness/scenarios/verdicts.js';
import { loadTrial, type Trial } from '../../harness/trial/trial.js';
import { KernelConfig } from '../../harness/config/kconfig.js';

const NS_TRIAL = repoPath('configs', 'trials', 'ns-container-2.6.20.yaml');
const CONTROL_TRIAL = repoPath('configs', 'trials', 'ns-container-control-2.6.20.yaml');

/**
 * The cases a suite file holds, counted from its YAML alone (not through ktrial's loader):
 * one per plain case, and one per cell of a matrix (actors x actions x targets).
 */
async function casesInFile(file: string): Promise<number> {
  const doc = load(await readFile(file, 'utf8')) as { cases: Record<string, unknown>[] };
  const size = (v: unknown) => Object.keys((v as object | undefined) ?? {}).length;
  return doc.cases.reduce((n, c) => {
    const m = c.matrix as Record<string, unknown> | undefined;
    return n + (m ? size(m.actors) * size(m.actions) * Math.max(1, size(m.targets)) : 1);
  }, 0);
}

/** The rule areas of the ns suite; a case's area is the part of its name before ": ". */
const AREAS = ['create', 'attach self', 'attach other', 'unshare', 'clone', 'rmdir'];

const areaOf = (c: Case) => c.name.slice(0, c.name.indexOf(': '));

/** Refused side: some step expects the action to fail. Allowed side: none does. */
function sideOf(c: Case): 'allowed' | 'refused' {
  return c.steps.some((s) => s.expect.outcome === 'errno' || s.expect.outcome === 'error') ? 'refused' : 'allowed';
}

/** The decisive outcome of a case: the errno a step expects, or "ok" when none fails. */
function outcomeOf(c: Case): string {
  const failing = c.steps.find((s) => s.expect.outcome === 'errno');
  return failing ? failing.expect.errno! : 'ok';
}

/**
 * The final .config a real build of the trial produced (recorded in test/fixtures/configs/,
 * see the README there), read here without ktrial's parser: the options that are set.
 */
async function configOf(trial: Trial): Promise<Record<string, string>> {
  const text = await readFile(repoPath('test', 'fixtures', 'configs', `${trial.name}.config`), 'utf8');
  return Object.fromEntries([...text.matchAll(/^(CONFIG_\w+)=(.*)$/gm)].map((m) => [m[1]!, m[2]!.replace(/^"(.*)"$/, '$1')]));
}

const missingOn = (requires: readonly string[], config: Record<string, string>) => missingRequirements(requires, new KernelConfig(Object.entries(config)));

async function suitesOf(trial: Trial) {
  const out = [];
  for (const f of trial.scenarios) {
    const suite = await loadSuite(f);
    out.push({ suite, cases: expandSuite(suite) });
  }
  return out;
}

const nsTrial = await loadTrial(NS_TRIAL);
const controlTrial = await loadTrial(CONTROL_TRIAL);
const ns = await suitesOf(nsTrial);
const control = await suitesOf(controlTrial);
const nsCases = ns.flatMap((s) => s.cases);
const controlCases = control.flatMap((s) => s.cases);
const byName = (cases: Case[], name: string) => cases.find((c) => c.name === name);

t.test('both trials build the same kernel and differ only in CONFIG_CONTAINER_NS', async (t) => {
  for (const trial of [nsTrial, controlTrial]) {
    t.equal(trial.source.kind, 'tarball');
    t.equal(trial.source.name, 'linux-2.6.20');
    t.same(
      trial.patches.map((p) => p.slice(repoPath().length + 1)),
      ['kernel-patches/containers-2.6.20', 'kernel-patches/ns-container'],
    );
    t.equal(trial.config.base, 'allnoconfig');
    t.equal(trial.scenarios.length, 1);
  }
  const [nsConfig, controlConfig] = [await configOf(nsTrial), await configOf(controlTrial)];
  t.equal(nsConfig.CONFIG_CONTAINER_NS, 'y', 'the subject kernel has the ns subsystem');
  t.equal(controlConfig.CONFIG_CONTAINER_NS, undefined, 'the control kernel has not');
  t.equal(nsConfig.CONFIG_CONTAINERS, 'y');
  t.equal(controlConfig.CONFIG_CONTAINERS, 'y');
  const differ = Object.keys({ ...nsConfig, ...controlConfig }).filter((k) => nsConfig[k] !== controlConfig[k]);
  t.same(differ, ['CONFIG_CONTAINER_NS'], 'the two kernels differ in that option alone');
  t.match(nsTrial.config.fragments.at(-1), /containers\.config$/);
  t.match(controlTrial.config.fragments.at(-1), /containers-control\.config$/);
  t.same(controlTrial.expectedFailures, [], 'the control expects no failure');
});

t.test('the suites load, expand to the expected number of cases, and run on their trial', async (t) => {
  for (const [trial, suites] of [[nsTrial, ns], [controlTrial, control]] as const) {
    for (const { suite, cases } of suites) {
      t.equal(cases.length, await casesInFile(suite.file), `${suite.name}: one case per plain case and per matrix cell of the file`);
      t.same(new Set(cases.map((c) => c.name)).size, cases.length, `${suite.name}: names are unique`);
      // Nothing in the suite needs an option the trial does not guarantee.
      const config = await configOf(trial);
      const unmet = cases.flatMap((c) => missingOn(c.requires, config).map((m) => `${c.name}: ${m}`));
      t.same(unmet, [], `${suite.name}: every case's requirements hold on ${trial.name}`);
    }
  }
  // FINDINGS.md reports the runs its evidence comes from; it must speak of these suites.
  const findings = await readFile(repoPath('test', 'scenarios', 'FINDINGS.md'), 'utf8');
  const reported = [...findings.matchAll(/configs\/trials\/(ns-container(?:-control)?)-2\.6\.20\.yaml[^(]*\((\d+) cases/g)].map((m) => [m[1], Number(m[2])]);
  t.same(
    reported,
    [...ns, ...control].map(({ suite, cases }) => [suite.name, cases.length]),
    'FINDINGS.md reports runs of as many cases as the suites hold',
  );
  // Each suite is for its own kernel only.
  // (A case's requirements are the suite's with its variables in place.)
  t.same(nsCases[0]!.requires, ['CONFIG_CONTAINERS', 'CONFIG_CONTAINER_NS'], "the ns suite's requirements on its defaults");
  t.not(missingOn(nsCases[0]!.requires, await configOf(controlTrial)).length, 0, 'the ns suite does not run on the control kernel');
  t.not(missingOn(controlCases[0]!.requires, await configOf(nsTrial)).length, 0, 'the control suite does not run on the ns kernel');
});

t.test('every rule area of the ns suite has cases on both sides', async (t) => {
  const names = new Set(nsCases.map(areaOf));
  for (const area of names) t.ok([...AREAS, 'unbound'].includes(area), `"${area}" is a known area`);
  for (const area of AREAS) {
    const cases = nsCases.filter((c) => areaOf(c) === area);
    t.ok(cases.some((c) => sideOf(c) === 'allowed'), `${area}: an allowed case`);
    t.ok(cases.some((c) => sideOf(c) === 'refused'), `${area}: a refused case`);
  }
});

t.test('the edges the patch states or implies each have a case', async (t) => {
  const want: [string, string][] = [
    // creating a container, with and without CAP_SYS_ADMIN, inside and outside one's subtree
    ['create: admin mkdir below-own-container', 'ok'],
    ['create: nocap mkdir below-own-container', 'EPERM'],
    ['create: user-sysadmin mkdir below-own-container', 'ok'],
    ['create: user mkdir below-own-container', 'EPERM'],
    ['create: admin-in-m mkdir in-another-branch', 'EPERM'],
    ['create: admin-in-m mkdir at-the-top', 'EPERM'],
    // attaching oneself
    ['attach self: admin into empty-child', 'ok'],
    ['attach self: admin into grandchild', 'EPERM'],
    ['attach self: admin into sibling', 'EPERM'],
    ['attach self: admin into parent', 'EPERM'],
    ['attach self: admin into non-empty-child', 'EPERM'],
    ['attach self: nocap into empty-child', 'ok'],
    // attaching another task
    ['attach other: admin moves T from-root-into-its-child', 'ok'],
    ['attach other: nocap moves T from-root-into-its-child', 'EPERM'],
    ['attach other: admin-in-m moves T from-m-x-into-its-child', 'ok'],
    ['attach other: admin-in-m moves T from-a-into-its-child', 'EPERM'],
    ['attach other: admin sharing /m/x with T moves T into the empty child /m/x/y', 'ok'],
    ["attach other: admin in /m/x/y cannot move T (in /m/x) into /m/x/z, outside the mover's subtree", 'EPERM'],
    // unshare and clone with each namespace flag 2.6.20 has
    ...(['CLONE_NEWUTS', 'CLONE_NEWIPC', 'CLONE_NEWNS'] as const).flatMap((f): [string, string][] => [
      [`unshare: admin ${f}`, 'ok'],
      [`unshare: nocap ${f}`, 'EPERM'],
      [`clone: admin ${f}`, 'ok'],
      [`clone: nocap ${f}`, 'EPERM'],
      [`unshare: ${f} makes node_<pid> below the caller's container and moves the caller into it`, 'ok'],
      [`clone: ${f} makes node_<child pid> below the parent's container and starts the child there`, 'ok'],
    ]),
    ['clone: repeated clones from one parent each get their own node', 'ok'],
    // error paths
    ['unshare: EEXIST when node_<caller pid> already exists, and no container is made', 'EEXIST'],
    ['unshare: after EEXIST the caller is still in its container', 'ok'],
    ['clone: EEXIST when node_<child pid> already exists, and no container is made', 'EEXIST'],
    ['clone: after EEXIST the parent is still in its container', 'ok'],
    ['clone: a clone that fails after its namespaces were copied leaves no node', 'EPERM'],
    // rmdir
    ['rmdir: admin empty', 'ok'],
    ['rmdir: admin with-a-task', 'EBUSY'],
    ['rmdir: node_<pid> is busy while its task lives', 'EBUSY'],
    ['rmdir: node_<pid> can be removed once its task has exited', 'ok'],
  ];
  for (const [name, outcome] of want) {
    const c = byName(nsCases, name);
    t.ok(c, `case "${name}" exists`);
    if (c) t.equal(outcomeOf(c), outcome, `${name}: ${outcome}`);
  }
});

t.test('the expected-permission table of FINDINGS.md, row by row', async (t) => {
  const findings = await readFile(repoPath('test', 'scenarios', 'FINDINGS.md'), 'utf8');
  // | # | actor | action | expected | source |
  const rows = new Map<number, string>();
  const table = findings.slice(findings.indexOf('## Expected-permission table'), findings.indexOf('**Rows and cases.**'));
  for (const m of table.matchAll(/^\| (\d+) \|[^|\n]*\|[^|\n]*\| ([^|\n]+?) \|/gm)) rows.set(Number(m[1]), m[2]!.trim());
  t.equal(rows.size, 24, 'the table has 24 rows');
  const cases: Record<number, string[]> = {
    1: ['attach self: admin into empty-child'],
    2: ['attach self: admin into grandchild'],
    3: ['attach self: admin into parent', 'attach self: admin into root'],
    4: ['attach self: admin into non-empty-child'],
    5: ['attach self: nocap into empty-child'],
    6: ['attach self: uid 1000 cannot open a 0644 tasks file (EACCES, file mode)'],
    7: ['attach self: user into empty-child'],
    8: ['attach other: admin moves T from-root-into-its-child'],
    9: ['attach other: admin moves T from-root-into-a-grandchild'],
    10: ['attach other: admin moves T from-a-b-back-to-its-parent', 'attach other: admin moves T from-a-b-back-to-the-root'],
    11: ['attach other: nocap moves T from-root-into-its-child'],
    12: ['attach other: admin-in-m moves T from-root-into-its-child'],
    13: ['attach other: admin-in-m moves T from-root-into-the-movers-subtree'],
    14: ['attach other: user moves roots-task'],
    15: ['attach other: user moves own-other-task'],
    16: ['create: nocap mkdir below-own-container'],
    17: ['create: admin-in-m mkdir in-another-branch'],
    18: ['create: admin-in-m mkdir below-own-container'],
    19: ['rmdir: nocap empty'],
    20: ['unshare: from the root container the node is made at the top'],
    21: ['clone: from the root container the node is made at the top'],
    22: ['unshare: EEXIST when node_<caller pid> already exists, and no container is made'],
    23: ['unshare: nocap CLONE_NEWUTS'],
    24: ['rmdir: node_<pid> is busy while its task lives'],
  };
  for (const [row, expected] of rows) {
    const want = /^(E[A-Z]+)/.exec(expected)?.[1] ?? (expected.startsWith('0') ? 'ok' : expected);
    for (const name of cases[row] ?? []) {
      const c = byName(nsCases, name);
      t.ok(c, `row ${row}: case "${name}" exists`);
      if (c) t.equal(outcomeOf(c), want, `row ${row} (${expected}): ${name}`);
    }
    t.ok(cases[row], `row ${row} has a case`);
  }
  // The control: rows 2, 3, 4, 11 and 16 succeed without the ns subsystem.
  for (const name of [
    'attach self: admin into grandchild',
    'attach self: admin into root',
    'attach self: admin into non-empty-child',
    'attach other: nocap moves T from-root-into-its-child',
    'create: nocap mkdir below-own-container',
  ]) {
    const c = byName(controlCases, name);
    t.ok(c, `control: case "${name}" exists`);
    if (c) t.equal(outcomeOf(c), 'ok', `control: ${name}`);
  }
});

// The ns trial's expected-failures entries and the cases each names, read off the trial by hand.
const NS_EXPECTED_FAILURES: Record<string, string[]> = {
  'clone: a clone that fails after its namespaces were copied leaves no node': ['clone: a clone that fails after its namespaces were copied leaves no node'],
};

t.test('expected failures name existing cases and written-up findings', async (t) => {
  const findings = await readFile(repoPath('test', 'scenarios', 'FINDINGS.md'), 'utf8');
  t.same(
    nsTrial.expectedFailures.map((i) => i.case),
    Object.keys(NS_EXPECTED_FAILURES),
    'the entries listed here are the trial\'s',
  );
  for (const issue of nsTrial.expectedFailures) {
    const names = NS_EXPECTED_FAILURES[issue.case] ?? [];
    const matched = nsCases.filter((c) => names.includes(c.name));
    t.equal(matched.length, names.length, `the cases "${issue.case}" names exist`);
    t.same(
      nsCases.filter((c) => findKnownIssue(c, [issue])).map((c) => c.name),
      names,
      'and they are the cases ktrial takes it to name',
    );
    t.match(issue.finding ?? '', /^test\/scenarios\/FINDINGS\.md#F\d+$/, 'the finding is one of FINDINGS.md');
    const id = /#(F\d+)$/.exec(issue.finding ?? '')?.[1];
    t.ok(id && new RegExp(`^## ${id}\\. `, 'm').test(findings), `${id} is a heading of FINDINGS.md`);
    // An expected failure is a case whose expectation the kernel is known to miss: it must
    // be one that can fail, i.e. carry a check beyond "the action succeeded".
    for (const c of matched) t.ok(c.steps.length > 1, `${c.name} checks more than one step`);
  }
});
