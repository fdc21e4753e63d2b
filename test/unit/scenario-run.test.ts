// The runner against a scripted guest: variables captured and used, a kernel crash ending
// the run, timeouts, a guest that stops answering, requirements, setup and cleanup, helper
// reaping, known issues (expected failure, unexpected pass) and repeats (flaky).
import t from 'tap';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { KtrialError } from '../../harness/common/errors.js';
import { parseSuite, withTrialVars } from '../../harness/scenarios/load.js';
import { runSuite, runSuiteRepeated } from '../../harness/scenarios/run.js';
import type { CaseResult, GuestExec, GuestSource } from '../../harness/scenarios/types.js';
import { applyKnownIssues, casesNotRun, mergeRepeats, unmatchedIssueNotes } from '../../harness/scenarios/verdicts.js';
import { GuestPool } from '../../harness/vm/pool.js';
import type { Vm } from '../../harness/vm/guest.js';

type Reply = { stdout?: string; exitCode?: number; stderr?: string; crash?: { reason: string; excerpt: string } } | 'hang';

/** A guest whose agent answers by script. The final line's index is the number of actions. */
class FakeGuest implements GuestExec {
  readonly commands: string[] = [];
  private crash: { reason: string; excerpt: string } | undefined;
  dead = false;
  /** How many hung commands ran into their timeout. */
  timeoutsFired = 0;
  constructor(private readonly reply: (cmd: string) => Reply) {}

  async exec(command: string, opts: { timeoutMs: number }) {
    this.commands.push(command);
    const hang = () =>
      new Promise<never>((_, rej) =>
        setTimeout(() => {
          this.timeoutsFired++;
          rej(new Error(`timed out after ${opts.timeoutMs} ms`));
        }, opts.timeoutMs).unref(),
      );
    if (this.dead) return hang();
    if (command.endsWith(' --version')) return { exitCode: 0, stdout: '{"agent":"ktrial-agent","protocol":1}\n', stderr: '', durationMs: 1 };
    if (/ reap( |$)/.test(command) || command === 'true') return { exitCode: 0, stdout: '{"action":"reap","index":1,"stage":"action","ok":true,"output":"0","killed":[]}\n', stderr: '', durationMs: 1 };
    const r = this.reply(command);
    if (r === 'hang') return hang();
    if (r.crash) this.crash = r.crash;
    return { exitCode: r.exitCode ?? 0, stdout: r.stdout ?? '', stderr: r.stderr ?? '', durationMs: 1 };
  }

  kernelCrash() {
    const c = this.crash;
    this.crash = undefined;
    return c;
  }
}

const n = (cmd: string) => cmd.split(' -- ').length;
const ok = (cmd: string, extra: Record<string, unknown> = {}): Exclude<Reply, 'hang'> => ({ stdout: `${JSON.stringify({ action: 'x', index: n(cmd), stage: 'action', ok: true, ...extra })}\n` });
const errno = (cmd: string, e: string): Exclude<Reply, 'hang'> => ({ exitCode: 1, stdout: `${JSON.stringify({ action: 'x', index: n(cmd), stage: 'action', ok: false, errno: e, syscall: 'x', message: e })}\n` });

const verdicts = (rs: CaseResult[]) => rs.map((r) => [r.name, r.verdict]);

t.test('captured values flow into later steps, and cleanup and reaping run', async (t) => {
  const s = parseSuite(
    `name: v
setup:
  - gethostname:
    capture: {host: output}
cases:
  - name: one
    steps:
      - read: /proc/self/container
        capture: {node: {field: output, match: "node_(\\\\d+)"}}
      - write: {path: "/c/node_\${node}/tasks", data: self}
    cleanup:
      - sethostname: "\${host}"
`,
    'v.yaml',
  );
  const g = new FakeGuest((cmd) => (cmd.endsWith('gethostname') ? ok(cmd, { output: 'vm\n' }) : cmd.includes('read /proc/self/container') ? ok(cmd, { output: '/node_42\n' }) : ok(cmd)));
  const rs = await runSuite(s, g);
  t.same(verdicts(rs), [['one', 'passed']]);
  t.ok(g.commands.includes('/usr/bin/ktrial-agent --tag v.1 write /c/node_42/tasks self'), 'the captured group is substituted');
  t.ok(g.commands.includes('/usr/bin/ktrial-agent --tag v.1 sethostname vm'), 'setup captures reach case cleanup');
  t.ok(g.commands.includes('/usr/bin/ktrial-agent reap v.1'), "the case's helpers are reaped");
  t.equal(g.commands[g.commands.length - 1], '/usr/bin/ktrial-agent reap', 'all helpers are reaped at the end');
  t.same(rs[0]!.steps.map((x) => [x.phase, x.index, x.passed]), [
    ['steps', 1, true],
    ['steps', 2, true],
    ['cleanup', 1, true],
  ]);
});

t.test("a per-variable expectation is chosen when the step runs, by the variable's value", async (t) => {
  const text = `name: v
vars: {fs: container}
cases:
  - name: mount
    steps:
      - mount: {type: "\${fs}", target: /c}
        expect: {by: fs, when: {container: ok, cgroup: EBUSY}}
`;
  const busy = (cmd: string) => (cmd.includes(' mount ') ? errno(cmd, 'EBUSY') : ok(cmd));
  const byDefault = await runSuite(parseSuite(text, 'v.yaml'), new FakeGuest(busy));
  t.same(verdicts(byDefault), [['mount', 'failed']], 'the default value expects ok');
  t.match(byDefault[0]!.reason, /expected ok, got EBUSY/);
  const g = new FakeGuest(busy);
  const [cgroup] = withTrialVars([parseSuite(text, 'v.yaml')], { fs: 'cgroup' }, () => undefined);
  t.same(verdicts(await runSuite(cgroup!, g)), [['mount', 'passed']], 'the trial\'s value expects EBUSY');
  t.ok(g.commands.some((c) => c.endsWith(' mount cgroup cgroup /c')), "the trial's value is substituted in the step");
});

const three = `name: c
timeout: 2
cases:
  - name: first
    steps: [{unshare: uts}]
  - name: second
    steps: [{unshare: ipc}]
    cleanup: [{gethostname: }]
  - name: third
    steps: [{unshare: net}]
  - name: fourth
    requires: [CONFIG_PID_NS]
    steps: [{unshare: pid}]
`;

t.test('a kernel crash fails its case with the console excerpt; the rest are not run', async (t) => {
  const g = new FakeGuest((cmd) => (cmd.includes('unshare ipc') ? { ...ok(cmd), crash: { reason: 'Oops: NULL pointer dereference', excerpt: 'BUG: unable to handle\nCall Trace: x' } } : ok(cmd)));
  const rs = await runSuite(parseSuite(three, 'c.yaml'), g);
  t.same(verdicts(rs), [
    ['first', 'passed'],
    ['second', 'failed'],
    ['third', 'not-run'],
    ['fourth', 'not-run'],
  ]);
  t.same(rs[1]!.crash, { reason: 'Oops: NULL pointer dereference', excerpt: 'BUG: unable to handle\nCall Trace: x' });
  t.equal(rs[1]!.reason, 'the kernel crashed: Oops: NULL pointer dereference');
  t.same(rs[2]!.notRun, { cause: 'kernel-crashed', detail: 'the kernel crashed in case 2 ("second"): Oops: NULL pointer dereference' });
  t.notOk(g.commands.some((c) => c.includes('gethostname') || c.endsWith('reap c.2')), 'nothing more runs in a crashed kernel');
});

t.test('a step without a result in time fails its case; the next case runs', async (t) => {
  const g = new FakeGuest((cmd) => (cmd.includes('unshare ipc') ? 'hang' : ok(cmd)));
  const rs = await runSuite(parseSuite(three, 'c.yaml'), g);
  t.same(verdicts(rs), [
    ['first', 'passed'],
    ['second', 'failed'],
    ['third', 'passed'],
    ['fourth', 'passed'],
  ]);
  t.match(rs[1]!.failure, { expected: 'ok', actual: 'no result within 2 s (case timeout)' });
  t.ok(g.commands.includes('/usr/bin/ktrial-agent --tag c.2 gethostname'), 'cleanup runs after a timeout');
});

t.test("a run's case timeout replaces the suite's own, for every case", async (t) => {
  const g = new FakeGuest((cmd) => (cmd.includes('unshare ipc') ? 'hang' : ok(cmd)));
  const rs = await runSuite(parseSuite(three.replace('timeout: 2', 'timeout: 3000'), 'c.yaml'), g, { caseTimeoutMs: 1000 });
  t.same(verdicts(rs), [
    ['first', 'passed'],
    ['second', 'failed'],
    ['third', 'passed'],
    ['fourth', 'passed'],
  ]);
  t.match(rs[1]!.failure, { expected: 'ok', actual: 'no result within 1 s (case timeout)' }, 'the suite said 3000 s; the run says 1 s');
});

t.test('a guest that stops answering ends the run: the rest are not run', async (t) => {
  const g = new FakeGuest((cmd) => {
    if (cmd.includes('unshare ipc')) {
      g.dead = true;
      return 'hang';
    }
    return ok(cmd);
  });
  const rs = await runSuite(parseSuite(three.replace('timeout: 2', 'timeout: 1'), 'c.yaml'), g, { probeTimeoutMs: 300 });
  t.same(verdicts(rs), [
    ['first', 'passed'],
    ['second', 'failed'],
    ['third', 'not-run'],
    ['fourth', 'not-run'],
  ]);
  t.match(rs[1]!.failure!.actual, /^the guest stopped answering after no result within 1 s/);
  t.equal(rs[2]!.notRun!.cause, 'guest-lost');
});

t.test('requirements: not run with the reason; negations; no config means no check', async (t) => {
  const g = new FakeGuest((cmd) => ok(cmd));
  const rs = await runSuite(parseSuite(three, 'c.yaml'), g, { kernelConfig: new KernelConfig([['CONFIG_UTS_NS', 'y']]) });
  t.same(rs[3]!.notRun, { cause: 'missing-requirement', detail: 'requirement not met: CONFIG_PID_NS is not set' });
  t.equal(rs[3]!.reason, 'requirement not met: CONFIG_PID_NS is not set');
  const neg = parseSuite(`name: n\ncases:\n  - name: a\n    requires: [CONFIG_PID_NS=n, CONFIG_HZ=250]\n    steps: [{unshare: pid}]\n`, 'n.yaml');
  const r2 = await runSuite(neg, g, { kernelConfig: new KernelConfig([['PID_NS', 'y'], ['CONFIG_HZ', '1000']]) });
  t.equal(r2[0]!.reason, 'requirement not met: CONFIG_PID_NS is set (=y); the case needs a kernel without it; CONFIG_HZ is =1000, not =250');
  const r3 = await runSuite(neg, g, { kernelConfig: new KernelConfig([['CONFIG_PID_NS', 'n'], ['CONFIG_HZ', '250']]) });
  t.equal(r3[0]!.verdict, 'passed');
  t.equal((await runSuite(neg, g))[0]!.verdict, 'passed');
});

t.test('a failed setup reports itself and leaves every case not run', async (t) => {
  const s = parseSuite(`name: s\nsetup:\n  - mkdir: /c\ncases:\n  - name: a\n    steps: [{unshare: uts}]\ncleanup:\n  - rmdir: /c\n`, 's.yaml');
  const g = new FakeGuest((cmd) => (cmd.includes('mkdir') ? errno(cmd, 'EEXIST') : ok(cmd)));
  const rs = await runSuite(s, g);
  t.same(verdicts(rs), [
    ['(setup)', 'failed'],
    ['a', 'not-run'],
  ]);
  t.equal(rs[0]!.kind, 'setup');
  t.match(rs[0]!.failure, { step: 'setup step 1: mkdir /c', expected: 'ok', actual: 'EEXIST (x: EEXIST)' });
  t.equal(rs[1]!.notRun!.cause, 'setup-failed');
  t.ok(g.commands.some((c) => c.endsWith('rmdir /c')), 'suite cleanup still runs');
});

t.test('a failing cleanup step fails the case; an unset variable skips the cleanup step', async (t) => {
  const s = parseSuite(
    `name: k\ncases:\n  - name: a\n    steps:\n      - unshare: uts\n      - read: /x\n        capture: {v: output}\n    cleanup:\n      - rmdir: "/c/\${v}"\n      - rmdir: /c\n`,
    'k.yaml',
  );
  const g = new FakeGuest((cmd) => (cmd.includes('unshare') ? errno(cmd, 'EPERM') : cmd.endsWith('rmdir /c') ? errno(cmd, 'EBUSY') : ok(cmd)));
  const rs = await runSuite(s, g);
  t.equal(rs[0]!.verdict, 'failed');
  t.match(rs[0]!.failure, { step: 'step 1: unshare uts', expected: 'ok' });
  t.same(rs[0]!.steps.map((x) => [x.phase, x.passed, x.actual]), [
    ['steps', false, 'EPERM (x: EPERM)'],
    ['cleanup', true, 'skipped: variable ${v} has no value (the step that sets it did not run or did not capture it)'],
    ['cleanup', false, 'EBUSY (x: EBUSY)'],
  ]);
});

t.test('case variables use case_index and earlier variables; chmod and {pid} reach the agent', async (t) => {
  const s = parseSuite(
    `name: ix\nvars:\n  top: /c\ncases:\n  - name: a\n    vars: {dir: "\${top}/a_\${case_index}", tasks: "\${dir}/tasks"}\n    steps:\n      - chmod: {path: "\${tasks}", mode: "0666"}\n      - mkdir: /c/node_{pid}\n  - name: b\n    vars: {dir: "\${top}/a_\${case_index}"}\n    steps: [{rmdir: "\${dir}"}]\n`,
    'ix.yaml',
  );
  const g = new FakeGuest((cmd) => ok(cmd));
  await runSuite(s, g);
  t.ok(g.commands.includes('/usr/bin/ktrial-agent --tag ix.1 chmod /c/a_1/tasks 0666'));
  t.ok(g.commands.includes("/usr/bin/ktrial-agent --tag ix.1 mkdir '/c/node_{pid}'"));
  t.ok(g.commands.includes('/usr/bin/ktrial-agent --tag ix.2 rmdir /c/a_2'));
});

t.test('an interrupt stops the run at once: the case in progress and the rest are not run', async (t) => {
  const ac = new AbortController();
  const g = new FakeGuest((cmd) => {
    if (cmd.includes('unshare ipc')) {
      setTimeout(() => ac.abort(), 20);
      return 'hang';
    }
    return ok(cmd);
  });
  const rs = await runSuite(parseSuite(three.replace('timeout: 2', 'timeout: 30'), 'c.yaml'), g, { signal: ac.signal });
  t.equal(g.timeoutsFired, 0, 'the run ended without waiting for the hung step to time out');
  t.same(verdicts(rs), [
    ['first', 'passed'],
    ['second', 'not-run'],
    ['third', 'not-run'],
    ['fourth', 'not-run'],
  ]);
  t.same(rs.slice(1).map((r) => r.notRun?.cause), ['interrupted', 'interrupted', 'interrupted']);
  t.notOk(g.commands.some((c) => c.includes('gethostname') || c === 'true' || c.endsWith(' reap')), 'no cleanup, probe or reaping after the interrupt');
});

t.test('a guest without a working agent is a host problem', async (t) => {
  const g: GuestExec = { exec: async () => ({ exitCode: 127, stdout: '', stderr: 'not found', durationMs: 1 }), kernelCrash: () => undefined };
  const err = await runSuite(parseSuite(three, 'c.yaml'), g).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof KtrialError && err.cls === 'host', 'a host failure');
  t.match((err as Error).message, /no working scenario agent at \/usr\/bin\/ktrial-agent \(exit 127: not found\)/);
});

t.test('known issues: expected failure, unexpected pass, unmatched entries', async (t) => {
  const g = new FakeGuest((cmd) => (cmd.includes('unshare uts') || cmd.includes('unshare net') ? errno(cmd, 'EPERM') : ok(cmd)));
  const issues = [
    { case: 'first', reason: 'uts is refused', finding: 'FINDINGS.md#uts' },
    { case: 'c/sec*', reason: 'ipc used to fail' },
    { case: 'nothing like this', reason: 'stale' },
  ];
  const rs = await runSuite(parseSuite(three, 'c.yaml'), g, { knownIssues: issues });
  t.same(verdicts(rs), [
    ['first', 'expected-failure'],
    ['second', 'unexpectedly-passed'],
    ['third', 'failed'],
    ['fourth', 'passed'],
  ]);
  t.same(rs[0]!.knownIssue, issues[0]);
  t.equal(rs[0]!.reason, 'uts is refused');
  t.equal(rs[1]!.reason, 'expected to fail (ipc used to fail) but passed');
  t.same(applyKnownIssues(rs, issues).unmatched, [issues[2]]);
  // Per suite an issue for another suite is unmatched too; the run's notes name only the
  // issues that matched no case at all.
  const other = [{ suite: 'other', name: 'nothing like this', index: 1, kind: 'case' as const, verdict: 'passed' as const, seconds: 0, steps: [] }];
  t.same(unmatchedIssueNotes(issues, rs), ['known issue "nothing like this" matched no case of this run: is it stale or misspelt?']);
  t.same(unmatchedIssueNotes(issues, [...rs, ...other]), [], 'a case of another suite matches it');
});

t.test('repeats: a case whose outcome varies is flaky; a known issue covers it', async (t) => {
  let calls = 0;
  const g = new FakeGuest((cmd) => (cmd.includes('unshare ipc') && calls++ % 2 === 1 ? errno(cmd, 'EBUSY') : ok(cmd)));
  const rs = await runSuiteRepeated(parseSuite(three, 'c.yaml'), g, 3);
  t.same(verdicts(rs), [
    ['first', 'passed'],
    ['second', 'flaky'],
    ['third', 'passed'],
    ['fourth', 'passed'],
  ]);
  t.same(rs[1]!.runs, ['passed', 'failed', 'passed']);
  t.equal(rs[1]!.reason, 'passed 2 of 3 runs; when it failed: step 1: unshare ipc: expected ok, got EBUSY (x: EBUSY)');
  const known = applyKnownIssues(rs, [{ case: 'second', reason: 'EBUSY now and then' }]).cases[1]!;
  t.equal(known.verdict, 'expected-failure');
  t.match(known.reason, /^EBUSY now and then \(intermittent: passed 2 of 3 runs/);
});

t.test('merging repeats: consistent outcomes stay; not-run runs are left out', async (t) => {
  const base = { suite: 's', index: 1, kind: 'case' as const, steps: [], seconds: 1 };
  const a = (verdict: CaseResult['verdict'], name = 'a'): CaseResult => ({ ...base, name, verdict });
  t.same(mergeRepeats([[a('failed')], [a('failed')]]).map((c) => [c.verdict, c.runs]), [['failed', ['failed', 'failed']]]);
  t.same(mergeRepeats([[a('passed')], [a('not-run')]]).map((c) => c.verdict), ['passed']);
  t.same(mergeRepeats([[a('not-run')], [a('not-run')]]).map((c) => c.verdict), ['not-run']);
});

t.test('every case "not run", e.g. when the kernel did not boot', async (t) => {
  const rs = casesNotRun(parseSuite(three, 'c.yaml'), 'boot-failed', 'the kernel did not boot');
  t.same(rs.map((r) => [r.index, r.verdict, r.notRun?.cause, r.where]), [
    [1, 'not-run', 'boot-failed', 'c.yaml:4'],
    [2, 'not-run', 'boot-failed', 'c.yaml:6'],
    [3, 'not-run', 'boot-failed', 'c.yaml:9'],
    [4, 'not-run', 'boot-failed', 'c.yaml:11'],
  ]);
});

t.test('a crash seen before the suite starts runs nothing', async (t) => {
  const g = new FakeGuest((cmd) => ok(cmd));
  (g as unknown as { crash: unknown }).crash = { reason: 'panic', excerpt: 'Kernel panic' };
  const rs = await runSuite(parseSuite(three, 'c.yaml'), g);
  t.same(verdicts(rs)[0], ['(setup)', 'failed']);
  t.equal(rs[1]!.notRun!.cause, 'kernel-crashed');
  t.same(g.commands, []);
});

/**
 * A pool of scripted guests as the run's pool lends them: an idle guest again, a new one
 * while fewer than `jobs` are out, a replacement for a lost one while `maxReboots` lasts.
 */
function scriptedPool(make: () => FakeGuest, jobs: number, maxReboots: number) {
  const booted: FakeGuest[] = [];
  const idle: { guest: FakeGuest; boot: number }[] = [];
  let losses = 0;
  let reboots = 0;
  const source: GuestSource = {
    jobs,
    async acquire() {
      const i = idle.shift();
      if (i) return i;
      if (losses > reboots) {
        if (reboots >= maxReboots) return { refused: `no reboot left (--max-reboots ${maxReboots})`, cause: 'guest-lost' };
        reboots++;
      }
      booted.push(make());
      return { guest: booted.at(-1)!, boot: booted.length };
    },
    async release(lease, lost) {
      if (lost) losses++;
      else idle.push(lease as { guest: FakeGuest; boot: number });
    },
  };
  return { source, booted };
}

const six = `name: p
timeout: 2
setup: [{sethostname: ready}]
cases:
${['a', 'b', 'c', 'd', 'e', 'f'].map((n) => `  - name: ${n}\n    steps: [{sh: "echo ${n}"}]\n`).join('')}`;

const slowOk = (cmd: string): Reply => ok(cmd);

t.test('two guests: each runs the setup once, cases are dealt out, results come in suite order with the serial verdicts', async (t) => {
  const fails = (cmd: string): Reply => (cmd.includes('echo c') ? { exitCode: 1 } : slowOk(cmd));
  const serial = await runSuite(parseSuite(six, 'p.yaml'), new FakeGuest(fails));
  const { source, booted } = scriptedPool(() => new FakeGuest(fails), 2, 0);
  const parallel = await runSuite(parseSuite(six, 'p.yaml'), source);
  t.same(verdicts(parallel), verdicts(serial), 'the same verdicts in the same order');
  t.equal(booted.length, 2, 'two guests');
  for (const g of booted) t.equal(g.commands.filter((c) => c.includes('sethostname')).length, 1, 'each guest ran the setup once');
  t.same(new Set(parallel.map((r) => r.boot)), new Set([1, 2]), 'both guests ran cases');
});

t.test('--jobs 3: a guest that fails to boot beside the first leaves the others to run every case', async (t) => {
  // The run's pool, its boots stand-ins: boot 2 fails, boots 1 and 3 answer.
  const guests = new Map<Vm, FakeGuest>();
  const pool = new GuestPool(
    {
      async create(boot) {
        if (boot === 2) throw new Error('no SSH connection to the guest before the boot deadline');
        const g = new FakeGuest((cmd) => ok(cmd));
        const vm = { timings: {}, close: async () => {} } as unknown as Vm;
        guests.set(vm, g);
        return vm;
      },
    },
    '/nonexistent',
    3,
    0,
  );
  const first = await pool.bootSideBySide(3);
  t.equal(first.boot, 1, 'the first guest is up');
  t.match(pool.boots[1]?.ended, /^boot failed: no SSH connection/, 'boot 2 failed and says why');
  // The runner sees the pool's guests as a run does: a refusal when the pool boots no more.
  const vms = new Map<FakeGuest, Vm>();
  const source: GuestSource = {
    jobs: pool.jobs,
    async acquire() {
      const lease = await pool.acquire();
      if ('refused' in lease) return { refused: lease.refused, cause: 'guest-lost' };
      const g = guests.get(lease.vm)!;
      vms.set(g, lease.vm);
      return { guest: g, boot: lease.boot };
    },
    release: (lease, lost) => pool.release({ vm: vms.get(lease.guest as FakeGuest)!, boot: lease.boot }, lost),
  };
  const rs = await runSuite(parseSuite(six, 'p.yaml'), source);
  t.same(verdicts(rs), ['a', 'b', 'c', 'd', 'e', 'f'].map((n) => [n, 'passed']), 'every case ran and passed');
  t.same(new Set(rs.map((r) => r.boot)), new Set([1, 3]), 'on the two guests that booted');
  t.equal(pool.boots.length, 3, 'no guest was booted after the failed one');
  await pool.close();
});

t.test('a case that must run alone runs while no other guest runs a case', async (t) => {
  // Each case's step takes 20 ms; the lone case must never overlap another case's step.
  let running = 0;
  let overlaps = 0;
  class SlowGuest extends FakeGuest {
    override async exec(command: string, opts: { timeoutMs: number }) {
      if (!command.includes('echo')) return super.exec(command, opts);
      running++;
      if (running > 1 && command.includes('echo c')) overlaps++;
      await new Promise((r) => setTimeout(r, 20));
      if (running > 1 && command.includes('echo c')) overlaps++;
      running--;
      return super.exec(command, opts);
    }
  }
  const alone = six.replace('  - name: c\n', '  - name: c\n    alone: true\n');
  const { source } = scriptedPool(() => new SlowGuest(ok), 2, 0);
  const rs = await runSuite(parseSuite(alone, 'p.yaml'), source);
  t.equal(rs.filter((r) => r.verdict === 'passed').length, 6);
  t.equal(overlaps, 0, 'no other step ran while the lone case ran');
  const { source: free } = scriptedPool(() => new SlowGuest(ok), 2, 0);
  await runSuite(parseSuite(six, 'p.yaml'), free);
  t.ok(overlaps > 0, 'without alone, cases do overlap (so the check above can fail)');
  const { source: one, booted } = scriptedPool(() => new SlowGuest(ok), 2, 0);
  await runSuite(parseSuite(`alone: true\n${six}`, 'p.yaml'), one);
  t.equal(booted.length, 1, 'a suite that must run alone gets one guest');
});

t.test('recovery: a crash fails its case; a fresh guest runs the setup and the rest', async (t) => {
  const crashOnce = (g: { crashed: boolean }) => (cmd: string): Reply => {
    if (cmd.includes('echo c') && !g.crashed) {
      g.crashed = true;
      return { ...ok(cmd), crash: { reason: 'panic: sysrq', excerpt: 'Kernel panic' } };
    }
    return ok(cmd);
  };
  const state = { crashed: false };
  const { source, booted } = scriptedPool(() => new FakeGuest(crashOnce(state)), 1, 3);
  const rs = await runSuite(parseSuite(six, 'p.yaml'), source);
  t.same(rs.map((r) => [r.name, r.verdict, r.boot]), [
    ['a', 'passed', 1],
    ['b', 'passed', 1],
    ['c', 'failed', 1],
    ['d', 'passed', 2],
    ['e', 'passed', 2],
    ['f', 'passed', 2],
  ]);
  t.equal(booted[1]!.commands.filter((c) => c.includes('sethostname')).length, 1, 'the fresh guest ran the setup');
  t.notOk(booted[0]!.commands.some((c) => c.includes('echo d')), 'nothing more ran on the crashed guest');

  const none = scriptedPool(() => new FakeGuest(crashOnce({ crashed: false })), 1, 0);
  const rs0 = await runSuite(parseSuite(six, 'p.yaml'), none.source);
  t.same(rs0.map((r) => r.verdict), ['passed', 'passed', 'failed', 'not-run', 'not-run', 'not-run'], 'no reboot allowed: the rest is not run');
  t.equal(rs0[3]!.notRun?.cause, 'kernel-crashed');
  t.match(rs0[3]!.reason, /no reboot left \(--max-reboots 0\)/);
});

/** A suite whose setup sets the hostname and whose three cases read it. */
const isoSuite = () =>
  parseSuite(
    `name: iso
setup:
  - sethostname: vm
cases:
  - {name: one, steps: [{gethostname: null}]}
  - {name: two, steps: [{gethostname: null}]}
  - {name: three, steps: [{gethostname: null}]}
`,
    'iso.yaml',
  );

/** The guest, able to be saved and restored (--isolate snapshot), each save and restore noted in `events`. */
const withStates = (g: FakeGuest, events: string[]): GuestExec =>
  Object.assign(g, {
    saveState: async () => void events.push('save'),
    restoreState: async () => void events.push('restore'),
  });

t.test('isolate snapshot: the guest is saved once after setup and restored before every case after the first', async (t) => {
  const events: string[] = [];
  const g = new FakeGuest((cmd) => {
    if (cmd.includes('sethostname')) events.push('setup');
    if (cmd.includes('gethostname')) events.push('case');
    return ok(cmd, { output: 'vm\n' });
  });
  const guest = withStates(g, events);
  const s = isoSuite();
  const rs = await runSuite(s, guest, { isolate: 'snapshot' });
  t.same(verdicts(rs), [['one', 'passed'], ['two', 'passed'], ['three', 'passed']]);
  t.same(events, ['setup', 'save', 'case', 'restore', 'case', 'restore', 'case']);
  const plain: string[] = [];
  const g2 = new FakeGuest((cmd) => ok(cmd));
  await runSuite(s, withStates(g2, plain));
  t.same(plain, [], 'without isolate nothing is saved or restored');
  await t.rejects(runSuite(s, new FakeGuest((cmd) => ok(cmd)), { isolate: 'snapshot' }), KtrialError, 'a guest that cannot be saved is refused, not run without isolation');
});

t.test('isolate snapshot: a crash in the setup, before there is a snapshot, stops the suite as it does without isolate', async (t) => {
  const s = isoSuite();
  /** A guest whose kernel crashes during the setup's step, and that records saves and restores. */
  const crashingSetup = (events: string[]) => withStates(new FakeGuest((cmd) => (cmd.includes('sethostname') ? { ...ok(cmd), crash: { reason: 'panic: sysrq', excerpt: 'Kernel panic' } } : ok(cmd))), events);
  const events: string[] = [];
  const isolated = await runSuite(s, crashingSetup(events), { isolate: 'snapshot' });
  const plain = await runSuite(s, crashingSetup([]));
  const outcome = (rs: CaseResult[]) => rs.map((r) => [r.name, r.verdict, r.notRun?.cause, r.reason]);
  t.same(outcome(isolated).map(([name, verdict, cause]) => [name, verdict, cause]), [
    ['(setup)', 'failed', undefined],
    ['one', 'not-run', 'kernel-crashed'],
    ['two', 'not-run', 'kernel-crashed'],
    ['three', 'not-run', 'kernel-crashed'],
  ]);
  t.same(outcome(isolated), outcome(plain), 'the same verdicts and reasons as without isolate');
  t.same(events, [], 'nothing was saved or restored');
});
