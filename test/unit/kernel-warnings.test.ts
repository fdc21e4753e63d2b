// Kernel warnings fail the case they happen in: the console matcher on consoles recorded
// from a real 2.6.20 debug kernel (test/fixtures/console/README.md says how), the runner
// judging them through trialrun's guestExec, and known warnings listed by a trial.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { guestExec } from '../../harness/trialrun.js';
import { excerptAround, FATAL_KINDS, parseConsole, PROBLEM_KINDS, WARNING_KINDS } from '../../harness/vm/console.js';
import type { Vm } from '../../harness/vm/index.js';
import { parseSuite } from '../../harness/scenarios/load.js';
import { runSuite, runSuiteRepeated } from '../../harness/scenarios/run.js';
import type { KnownIssue } from '../../harness/scenarios/types.js';
import { unmatchedIssueNotes } from '../../harness/scenarios/verdicts.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const fixture = (kind: string) => readFileSync(join(root, 'test', 'fixtures', 'console', `linux-2.6.20-debug-${kind}.log`), 'utf8').split('\n');

// What each recording provoked (/proc/ktrial-provoke), and the report line it must yield.
const RECORDED: [string, string, RegExp][] = [
  ['warn', 'warning', /^BUG: at kernel\/ktrial_provoke\.c:\d+ provoke_write\(\)$/],
  ['atomic', 'bug', /^BUG: sleeping function called from invalid context at kernel\/ktrial_provoke\.c:\d+$/],
  ['circular', 'lockdep', /possible circular locking dependency detected/],
  ['irqstate', 'lockdep', /inconsistent lock state/],
  ['lockup', 'bug', /^BUG: soft lockup detected on CPU#\d!$/],
  ['slab', 'slab-corruption', /^Slab corruption: start=[0-9a-f]+, len=64$/],
];

for (const [name, kind, line] of RECORDED) {
  t.test(`2.6.20 debug kernel, ${name}: one ${kind} report, nothing fatal`, async (t) => {
    const lines = fixture(name);
    const evs = parseConsole(lines);
    const warnings = evs.filter((e) => WARNING_KINDS.has(e.kind));
    t.same(
      warnings.map((e) => e.kind),
      [kind],
      'exactly one warning event',
    );
    t.match(warnings[0]!.text, line);
    t.same(
      evs.filter((e) => FATAL_KINDS.has(e.kind)),
      [],
      'the kernel went on',
    );
    t.ok(evs.some((e) => e.kind === 'sshd-started'), 'the recording reached SSH');
    t.match(excerptAround(lines, warnings[0]!.line, 3, 60), /Call Trace:|Redzone:/, 'the excerpt reaches the trace');
  });
}

t.test('the recorded boots of the plain kernels show no warning', async (t) => {
  for (const f of ['linux-2.6.20-boot.log', 'linux-6.1-boot.log']) {
    const lines = readFileSync(join(root, 'test', 'fixtures', 'console', f), 'utf8').split('\n');
    t.same(
      parseConsole(lines).filter((e) => WARNING_KINDS.has(e.kind)),
      [],
      f,
    );
  }
});

t.test('the matcher on report lines of other kernels', async (t) => {
  const kindOf = (l: string) => parseConsole([l]).map((e) => e.kind);
  t.same(kindOf('WARNING: CPU: 1 PID: 77 at kernel/fork.c:1234 copy_process+0x1/0x2'), ['warning']);
  t.same(kindOf('watchdog: BUG: soft lockup - CPU#0 stuck for 22s! [sh:80]'), ['bug']);
  t.same(kindOf('BUG kmalloc-64 (Not tainted): Poison overwritten'), ['slab-corruption']);
  t.same(kindOf("slab error in cache_alloc_debugcheck_after(): cache `size-64': double free, or memory outside object was overwritten"), ['slab-corruption']);
  t.same(kindOf('BUG: unable to handle kernel NULL pointer dereference at 0000000000000000'), ['oops'], 'an oops stays fatal');
  t.ok(PROBLEM_KINDS.has('slab-corruption'));
});

/** A VM whose console grows by a recorded console's lines when a command names it. */
function recordedVm(): { vm: Vm; lines: string[] } {
  const lines: string[] = [];
  const console = {
    mark: () => lines.length,
    problemsSince: (mark: number) => parseConsole(lines).filter((e) => e.line >= mark && PROBLEM_KINDS.has(e.kind)),
    excerpt: (line: number, before?: number, after?: number) => excerptAround(lines, line, before, after),
  };
  const agentLine = (cmd: string) => `${JSON.stringify({ action: 'x', index: cmd.split(' -- ').length, stage: 'action', ok: true })}\n`;
  const vm = {
    console,
    run: async (cmd: string) => {
      if (cmd.endsWith(' --version')) return { exitCode: 0, stdout: '{"agent":"ktrial-agent","protocol":1}\n', stderr: '', durationMs: 1, timedOut: false };
      const provoked = /provoke (\w+)/.exec(cmd)?.[1];
      if (provoked) {
        const rec = fixture(provoked);
        const start = rec.findIndex((l) => WARNING_KINDS.has(parseConsole([l])[0]?.kind as never));
        lines.push(...rec.slice(Math.max(0, start - 5)));
      }
      return { exitCode: 0, stdout: agentLine(cmd), stderr: '', durationMs: 1, timedOut: false };
    },
  } as unknown as Vm;
  return { vm, lines };
}

const suite = parseSuite(
  `name: w
cases:
  - name: circular
    steps:
      - write: {path: /provoke, data: provoke circular}
  - name: quiet
    steps:
      - read: /proc/self/container
  - name: sleeping
    steps:
      - write: {path: /provoke, data: provoke atomic}
`,
  'w.yaml',
);

t.test('a warning fails the case it happened in, with its excerpt; the run goes on', async (t) => {
  const { vm } = recordedVm();
  const rs = await runSuite(suite, guestExec(vm));
  t.same(
    rs.map((r) => [r.name, r.verdict]),
    [
      ['circular', 'failed'],
      ['quiet', 'passed'],
      ['sleeping', 'failed'],
    ],
  );
  t.match(rs[0]!.reason, /^the kernel warned: lockdep: \[ INFO: possible circular locking dependency detected \]/);
  t.equal(rs[0]!.crash, undefined, 'not a crash');
  t.equal(rs[0]!.failure, undefined, 'no step failed');
  t.match(rs[0]!.warnings?.[0]?.excerpt, /sh\/\d+ is trying to acquire lock/);
  t.equal(rs[1]!.warnings, undefined);
  t.match(rs[2]!.reason, /the kernel warned: bug: BUG: sleeping function called from invalid context/);
});

t.test('a warning the trial lists is kept on the case and fails nothing; stale entries are noted', async (t) => {
  const { vm } = recordedVm();
  const issues: KnownIssue[] = [
    { case: 'circular', warning: 'possible circular locking', reason: 'a lock order the core inverts' },
    { case: '*', warning: 'soft lockup', reason: 'never seen here' },
  ];
  const rs = await runSuite(suite, guestExec(vm), { knownIssues: issues });
  t.same(
    rs.map((r) => [r.name, r.verdict]),
    [
      ['circular', 'passed'],
      ['quiet', 'passed'],
      ['sleeping', 'failed'],
    ],
    'the listed warning passes, an unlisted one in another case still fails',
  );
  t.equal(rs[0]!.warnings?.[0]?.knownIssue?.reason, 'a lock order the core inverts');
  t.same(unmatchedIssueNotes(issues, rs), ['known warning /soft lockup/ (cases "*") was not seen in this run: is it stale or misspelt?']);
});

t.test('a case-level known issue is not taken for a warning entry, nor the reverse', async (t) => {
  const { vm } = recordedVm();
  const rs = await runSuite(suite, guestExec(vm), { knownIssues: [{ case: 'sleeping', reason: 'expected to fail' }, { case: 'quiet', warning: 'circular', reason: 'w' }] });
  t.same(
    rs.map((r) => [r.name, r.verdict]),
    [
      ['circular', 'failed'],
      ['quiet', 'passed'],
      ['sleeping', 'expected-failure'],
    ],
  );
});

t.test('repeats: a warning in one run of two makes the case flaky, with the warning as the reason', async (t) => {
  const { vm } = recordedVm();
  let n = 0;
  const g = guestExec(vm);
  const flaky = { ...g, exec: (cmd: string, o: { timeoutMs: number }) => g.exec(cmd.includes('provoke circular') && n++ > 0 ? cmd.replace('provoke circular', 'calm') : cmd, o) };
  const rs = await runSuiteRepeated(parseSuite('name: r\ncases:\n  - name: c\n    steps:\n      - write: {path: /provoke, data: provoke circular}\n', 'r.yaml'), flaky, 2);
  t.equal(rs[0]!.verdict, 'flaky');
  t.match(rs[0]!.reason, /passed 1 of 2 runs; when it failed: the kernel warned: lockdep/);
});
