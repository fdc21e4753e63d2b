// Compiling a suite into its program: hand-written suites against hand-written programs.
// What is known before the run is in the program (built-ins, the suite's, the case's and
// the trial's variables, the expectation for a trial's value, limits, the agent check and
// reaping); a captured value stays a reference from the step that captures it on; the
// selection and the shard decide which cases run. And a program, as plain data, runs as is.
import t from 'tap';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { parseSuite, withTrialVars } from '../../harness/scenarios/load.js';
import { compile, selectByOnly, type Program } from '../../harness/scenarios/program.js';
import { runProgram } from '../../harness/scenarios/run.js';
import type { GuestExec } from '../../harness/scenarios/types.js';

const SUITE = `name: p
timeout: 10
vars:
  dir: /tmp/d
  mode: old
  lit: "$\${dir}"
setup:
  - gethostname:
    capture: {host: output}
cases:
  - name: one
    vars: {file: "\${dir}/\${case_index}"}
    steps:
      - write: {path: "\${file}", data: "\${host}"}
      - read: "\${file}"
        expect: {by: mode, when: {old: EPERM, new: ok}}
        capture: {host: output}
      - write: {path: "\${lit}", data: "\${host}"}
        timeout: 3
    cleanup:
      - sethostname: "\${host}"
  - name: two
    requires: [CONFIG_NOPE]
    steps:
      - sh: "echo \${dir} \${case}"
cleanup:
  - sethostname: "\${host}"
`;

const A = '/usr/bin/ktrial-agent';
const root = { kind: 'agent', results: 1, as: 'root' } as const;
const ok = { outcome: 'ok' } as const;

/** The program of SUITE as the runner is to execute it, written out by hand. */
const expected = (readExpect: object): Program => ({
  suite: 'p',
  file: 'p.yaml',
  agent: A,
  check: { command: { argv: [A, '--version'] }, limitMs: 15000 },
  probe: { command: { argv: ['true'] }, limitMs: 15000 },
  files: [],
  limitMs: 10000,
  setup: [{ label: 'gethostname', command: { argv: [A, '--tag', 'p.setup', 'gethostname'] }, read: root, expect: ok, capture: [{ variable: 'host', field: 'output' }] }],
  cases: [
    {
      index: 1,
      name: 'one',
      requires: [],
      where: { file: 'p.yaml', line: 11, column: 5 },
      limitMs: 10000,
      steps: [
        { label: 'write "${host}" to /tmp/d/1', command: { argv: [A, '--tag', 'p.1', 'write', '/tmp/d/1', '${host}'] }, read: root, expect: ok, capture: [] },
        { label: 'read /tmp/d/1', command: { argv: [A, '--tag', 'p.1', 'read', '/tmp/d/1'] }, read: root, expect: readExpect as Program['setup'][number]['expect'], capture: [{ variable: 'host', field: 'output' }] },
        { label: 'write "${host}" to $${dir}', command: { argv: [A, '--tag', 'p.1', 'write', '$${dir}', '${host}'] }, read: root, expect: ok, capture: [], limitMs: 3000 },
      ],
      cleanup: [{ label: 'sethostname ${host}', command: { argv: [A, '--tag', 'p.1', 'sethostname', '${host}'] }, read: root, expect: ok, capture: [], tolerant: true }],
      reap: { command: { argv: [A, 'reap', 'p.1'] }, limitMs: 20000 },
    },
    {
      index: 2,
      name: 'two',
      requires: ['CONFIG_NOPE'],
      where: { file: 'p.yaml', line: 22, column: 5 },
      limitMs: 10000,
      steps: [{ label: 'sh: echo /tmp/d two', command: { script: 'echo /tmp/d two' }, read: { kind: 'sh' }, expect: ok, capture: [] }],
      cleanup: [],
      reap: { command: { argv: [A, 'reap', 'p.2'] }, limitMs: 20000 },
    },
  ],
  cleanup: [{ label: 'sethostname ${host}', command: { argv: [A, '--tag', 'p.cleanup', 'sethostname', '${host}'] }, read: root, expect: ok, capture: [], tolerant: true }],
  reap: { command: { argv: [A, 'reap'] }, limitMs: 20000 },
});

const suite = parseSuite(SUITE, 'p.yaml');

t.test('a suite compiles to its program: known values in place, captured ones referenced from their capture on', async (t) => {
  t.same(compile(suite), expected({ outcome: 'errno', errno: 'EPERM' }));
  const viaTrial = withTrialVars([suite], { mode: 'new' }, () => undefined)[0]!;
  t.same(compile(viaTrial), expected(ok), "the trial's value picks the step's expectation");
  const p = compile(suite);
  t.same(JSON.parse(JSON.stringify(p)), p, 'a program is plain data');
});

t.test('the selection, the kernel config and the shard decide which cases run', async (t) => {
  const config = new KernelConfig([['CONFIG_OTHER', 'y']]);
  const skips = (p: Program) => p.cases.map((c) => [c.name, c.skip?.cause]);
  t.same(skips(compile(suite, { kernelConfig: config })), [['one', undefined], ['two', 'missing-requirement']]);
  t.same(compile(suite, { kernelConfig: config }).cases[1]!.skip!.detail, 'requirement not met: CONFIG_NOPE is not set');
  t.same(skips(compile(suite, { select: (c) => c.index === 2 })), [['one', 'filtered'], ['two', undefined]], 'a predicate selects');
  t.same(skips(compile(suite, { select: selectByOnly(['p/tw?']) })), [['one', 'filtered'], ['two', undefined]], '--only globs are one predicate');
  t.same(skips(compile(suite, { shard: new Set(['p/two']) })), [['two', undefined]], 'a case of another shard is no part of the program');
  const timed = compile(suite, { caseTimeoutMs: 5000, agentPath: '/a', probeTimeoutMs: 700 });
  t.same([timed.limitMs, timed.cases[0]!.limitMs, timed.probe.limitMs, timed.check.command, timed.cases[0]!.reap.command], [5000, 5000, 700, { argv: ['/a', '--version'] }, { argv: ['/a', 'reap', 'p.1'] }]);
});

t.test('the runner executes a program as written', async (t) => {
  // By hand, not compiled: a setup capture, a case that uses it, one that is left out.
  const program: Program = {
    suite: 'h',
    file: 'h.yaml',
    agent: '/a',
    check: { command: { argv: ['/a', '--version'] }, limitMs: 1000 },
    probe: { command: { argv: ['true'] }, limitMs: 1000 },
    files: [],
    limitMs: 1000,
    setup: [{ label: 'name', command: { script: 'hostname' }, read: { kind: 'sh' }, expect: ok, capture: [{ variable: 'n', field: 'output' }] }],
    cases: [
      { index: 1, name: 'uses it', requires: [], limitMs: 1000, steps: [{ label: 'x ${n}', command: { argv: ['/a', 'x', "it's ${n}", '$${n}'] }, read: { kind: 'agent', results: 1, as: 'root' }, expect: ok, capture: [] }], cleanup: [], reap: { command: { argv: ['/a', 'reap', 'h.1'] }, limitMs: 1000 } },
      { index: 2, name: 'left out', requires: [], limitMs: 1000, steps: [], cleanup: [], reap: { command: { argv: ['/a', 'reap', 'h.2'] }, limitMs: 1000 }, skip: { cause: 'filtered', detail: 'not selected' } },
    ],
    cleanup: [],
    reap: { command: { argv: ['/a', 'reap'] }, limitMs: 1000 },
  };
  const sent: string[] = [];
  const guest: GuestExec = {
    async exec(command) {
      sent.push(command);
      const stdout = command === '/a --version' ? '{"protocol":1}\n' : command === 'hostname' ? 'vm one\n' : '{"action":"x","index":1,"stage":"action","ok":true}\n';
      return { exitCode: 0, stdout, stderr: '', durationMs: 1 };
    },
    kernelCrash: () => undefined,
  };
  const results = await runProgram(program, guest);
  t.same(sent, ['/a --version', 'hostname', `/a x 'it'\\''s vm one' '\${n}'`, '/a reap h.1', '/a reap']);
  t.same(results.map((r) => [r.name, r.verdict, r.notRun?.detail]), [['uses it', 'passed', undefined], ['left out', 'not-run', 'not selected']]);
  t.equal(results[0]!.steps[0]!.name, 'x vm one');
});
