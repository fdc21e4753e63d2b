// Suites parameterised per kernel: a trial's vars replace the defaults its suites declare,
// requirements and per-variable expectations follow them, and every mistake is bad input
// at its place (the trial's line, or the suite's).
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { KtrialError } from '../../harness/common/errors.js';
import { repoPath } from '../../harness/common/paths.js';
import { expandSuite } from '../../harness/scenarios/expand.js';
import { loadSuite, parseSuite, withTrialVars } from '../../harness/scenarios/load.js';
import { loadTrial } from '../../harness/trial/trial.js';
import { planRun } from '../../harness/runplan.js';
import { ktrial } from '../helpers/cli.js';

const suiteText = `name: s
requires: ["\${ns_option}", CONFIG_X]
vars:
  fs: container
  ns_option: CONFIG_CONTAINER_NS
cases:
  - name: mount
    steps:
      - mount: {type: "\${fs}", target: /c}
        expect: {by: fs, when: {container: ok, cgroup: EBUSY}}
      - sh: cat /proc/self/\${fs}
        expect: {by: fs, when: {container: {output: "a"}, "*": {match: "^b"}}}
`;

/** A trial file beside a suite file, in a new directory; returns the trial's path. */
async function trialWith(vars: string, suite = suiteText): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-vars-'));
  await writeFile(join(dir, 's.yaml'), suite);
  const trial = join(dir, 't.yaml');
  await writeFile(trial, `name: t\nsource: {path: .}\nconfig: {base: allnoconfig}\nscenarios: [s.yaml]\n${vars}`);
  return trial;
}

async function suitesOf(trialFile: string) {
  const trial = await loadTrial(trialFile);
  const loaded = [];
  for (const f of trial.scenarios) loaded.push(await loadSuite(f));
  return withTrialVars(loaded, trial.vars, (v) => trial.varsWhere[v]);
}

const failure = async (p: Promise<unknown>) => {
  const err = await p.then(() => undefined, (e: unknown) => e);
  if (!(err instanceof KtrialError)) throw new Error(`expected bad input, got ${String(err)}`);
  return err;
};

t.test('without trial vars the suite runs on its defaults', async (t) => {
  const [suite] = await suitesOf(await trialWith(''));
  const [c] = expandSuite(suite!);
  t.same(c!.requires, ['CONFIG_CONTAINER_NS', 'CONFIG_X'], 'requirements take the default value');
  t.same(c!.steps[0]!.expect, { outcome: 'ok' }, 'the expectation for the default value');
  t.same(c!.steps[1]!.expect, { outcome: 'ok', output: { equals: 'a' } });
});

t.test("a trial's vars replace the defaults: requirements and per-variable expectations follow", async (t) => {
  const [suite] = await suitesOf(await trialWith('vars:\n  fs: cgroup\n  ns_option: CONFIG_CGROUP_NS\n'));
  t.equal(suite!.vars.fs, 'cgroup');
  const [c] = expandSuite(suite!);
  t.same(c!.requires, ['CONFIG_CGROUP_NS', 'CONFIG_X']);
  // The runner chooses the expectation when the step runs (scenario-run.test.ts runs it).
  t.same(c!.steps[0]!.expectBy?.when.cgroup, { outcome: 'errno', errno: 'EBUSY' });
  t.same(c!.steps[1]!.expectBy?.when['*'], { outcome: 'ok', output: { match: '^b' } });
});

t.test('trial vars are typed: a list or a bad name is reported at its line', async (t) => {
  const err = await failure(loadTrial(await trialWith('vars:\n  fs: [cgroup]\n  "bad name": x\n')));
  t.match(err.message, /t\.yaml:6:7: expected .*string/);
  t.match(err.message, /t\.yaml:7:3: key "bad name" does not match/);
  const numbers = await loadTrial(await trialWith('vars:\n  fs: 3\n  ns_option: true\n'));
  t.same(numbers.vars, { fs: '3', ns_option: 'true' }, 'numbers and booleans become strings');
});

t.test('a variable no suite declares is bad input at the trial line', async (t) => {
  const err = await failure(suitesOf(await trialWith('vars:\n  fs: cgroup\n  proc_fil: cgroup\n')));
  t.equal(err.where?.line, 7);
  t.match(err.message, /the trial sets variable "proc_fil", which none of the suites declares \(theirs: fs, ns_option\)/);
});

t.test('a value that makes a requirement malformed is bad input at the trial line', async (t) => {
  const err = await failure(suitesOf(await trialWith('vars:\n  ns_option: CGROUP_NS\n')));
  t.equal(err.where?.line, 6);
  t.match(err.message, /makes the requirement "\$\{ns_option\}" of .*s\.yaml read "CGROUP_NS"/);
});

t.test('a value a per-variable expectation has no entry for is bad input at the trial line', async (t) => {
  const err = await failure(suitesOf(await trialWith('vars:\n  fs: cgroupfs\n')));
  t.equal(err.where?.line, 6);
  t.match(err.message, /no expectation for fs = "cgroupfs" \(the step at .*s\.yaml:9:9\): its expect\.when has "container", "cgroup"/);
});

t.test('in the suite: expect.by and requirements name suite variables, and the default has an expectation', async (t) => {
  const load = (text: string) => {
    try {
      parseSuite(text, 's.yaml');
    } catch (err) {
      return (err as KtrialError).message;
    }
    return '';
  };
  const noVar = load(`name: s\nrequires: ["\${nope}"]\ncases:\n  - name: a\n    vars: {d: x}\n    steps:\n      - unshare: uts\n        expect: {by: d, when: {x: ok}}\n`);
  t.match(noVar, /s\.yaml:2:12: the requirement's variable "nope" is not a variable of the suite \(it has no vars\)/);
  t.match(noVar, /s\.yaml:8:22: the expectation's variable "d" is not a variable of the suite/, "a case's variable is not the suite's");
  const noDefault = load(`name: s\nvars: {fs: container}\ncases:\n  - name: a\n    steps:\n      - unshare: uts\n        expect: {by: fs, when: {cgroup: EBUSY}}\n`);
  t.match(noDefault, /no expectation for fs = "container" \(the step at s\.yaml:6:9\)/);
  const shErrno = load(`name: s\nvars: {fs: container}\ncases:\n  - name: a\n    steps:\n      - sh: "true"\n        expect: {by: fs, when: {container: EPERM}}\n`);
  t.match(shErrno, /s\.yaml:7:44: a sh step is judged by its exit status/);
});

t.test('the shipped ns-container suite serves 2.6.20 by default and 2.6.24 through the trial', async (t) => {
  const seed = await suitesOf(repoPath('configs', 'trials', 'ns-container-2.6.20.yaml'));
  const v24 = await suitesOf(repoPath('configs', 'trials', 'ns-cgroup-2.6.24.yaml'));
  const [a, b] = [expandSuite(seed[0]!), expandSuite(v24[0]!)];
  t.same(a.map((c) => c.name), b.map((c) => c.name), 'the same cases on both kernels');
  t.same(a[0]!.requires, ['CONFIG_CONTAINERS', 'CONFIG_CONTAINER_NS']);
  t.same(b[0]!.requires, ['CONFIG_CGROUPS', 'CONFIG_CGROUP_NS']);
  t.same(seed[0]!.setup[2]!.actions, [{ kind: 'mount', type: '${hierarchy_fs}', source: 'ktrial', target: '/c', options: '${subsystems}' }]);
  t.equal(v24[0]!.vars.hierarchy_fs, 'cgroup');
  t.equal(v24[0]!.vars.proc_file, 'cgroup');
});

t.test('run --var sets a variable after the trial\'s, shows in the re-run line, and is checked like the trial\'s', async (t) => {
  const trial = await trialWith('vars:\n  fs: cgroup\n');
  const out = join(await mkdtemp(join(tmpdir(), 'ktrial-vars-out-')), 'o');
  const plan = await planRun(trial, { out, var: ['ns_option=CONFIG_CGROUP_NS', 'fs=container'] });
  t.same(plan.vars, { fs: 'container', ns_option: 'CONFIG_CGROUP_NS' }, '--var comes after the trial');
  t.same(Object.keys(plan.varsWhere), [], 'a variable set by --var has no place in the trial');
  t.same(plan.rerun.options, ['--var', 'ns_option=CONFIG_CGROUP_NS', '--var', 'fs=container']);
  t.match((await failure(planRun(trial, { out, var: ['fs'] }))).message, /--var takes NAME=VALUE, got "fs"/);
  const plan2 = await planRun(trial, { out, var: ['proc=x'] });
  const err = await failure((async () => withTrialVars([await loadSuite(plan2.suites[0]!)], plan2.vars, (v) => plan2.varsWhere[v]))());
  t.match(err.message, /--var sets variable "proc", which none of the suites declares/);
});

t.test('ktrial run --var reaches the suites: a value no `when` covers and a name no suite declares are bad input, before anything is built', async (t) => {
  const out = join(await mkdtemp(join(tmpdir(), 'ktrial-vars-cli-')), 'o');
  const value = await ktrial(['run', repoPath('configs', 'trials', 'ns-container-2.6.20.yaml'), '--var', 'hierarchy_fs=bogus', '--out', out]);
  t.equal(value.code, 2);
  t.match(value.stderr, /no expectation for hierarchy_fs = "bogus" \(the step at \S+ns-container\.yaml:\d+:\d+\): its expect\.when has "container", "cgroup"/, "the suite's step saw the command line's value");
  t.notMatch(value.stderr, /source: /, 'no source was looked at');
  const name = await ktrial(['run', repoPath('configs', 'trials', 'smoke-debian-6.1.yaml'), '--var', 'nosuch=1', '--out', out]);
  t.equal(name.code, 2);
  t.match(name.stderr, /--var sets variable "nosuch", which none of the suites declares/);
});
