// Running a suite's program (program.ts) in booted guests: on each guest setup, cases
// (steps, cleanup, helper reaping) with a per-case deadline, suite cleanup. A kernel crash fails the case it
// happened in, and so does a guest that stops answering; the cases left go to another
// guest when the source lends one, else they are "not run".
import { hostFailure } from '../common/errors.js';
import { commandLine, interpret, type ExecResult } from './agent.js';
import { captureValues, describeExpectation, judge } from './expect.js';
import { AGENT_PROTOCOL, compile, type CaseProgram, type CompileOptions, type GuestOp, type Program, type StepOp } from './program.js';
import type { Case, CaseResult, GuestExec, GuestSource, KernelCrash, KnownIssue, NotRunCause, StepResult, Suite } from './types.js';
import { applyKnownIssues, mergeRepeats, notRunResult, whereText, withWarnings } from './verdicts.js';
import { substituteDeep, UnsetVariable } from './vars.js';
import { flattenPoints, parseTap, pointVerdict, streamProblems, type TapStream } from './tap.js';

/** A case for each test point of a tap step's stream, named CASE/POINT[/SUBPOINT...]. */
export function tapCases(c: Pick<Case, 'suite' | 'name' | 'index' | 'where'>, stream: TapStream): CaseResult[] {
  return flattenPoints(stream).map(({ path, point }) => {
    const base = { suite: c.suite, name: [c.name, ...path].join('/'), index: c.index, ...(c.where ? { where: whereText(c.where) } : {}) };
    const verdict = pointVerdict(point);
    const reason = point.directive?.reason;
    if (verdict === 'skipped') return notRunResult(base, 'skipped', `skipped by the test: ${reason || 'no reason given'}`);
    const r: CaseResult = { ...base, kind: 'case', verdict, seconds: 0, steps: [] };
    if (verdict === 'failed') {
      const output = point.diagnostics.join('\n').trim();
      r.failure = { step: `test point ${point.number} (output line ${point.line})`, command: '', expected: 'ok', actual: point.directive ? `not ok # ${point.directive.kind} ${reason}`.trim() : 'not ok', ...(output ? { output: trim(output) } : {}) };
      r.reason = `test point ${point.number}: ${r.failure.actual}${output ? ` (${output.split('\n').at(-1)})` : ''}`;
    } else if (reason) r.reason = `${point.directive!.kind}: ${reason}`;
    return r;
  });
}

/** How a program runs. */
export interface ExecOptions {
  /** Expected failures for this trial. */
  knownIssues?: readonly KnownIssue[];
  signal?: AbortSignal;
  /** Called as each case finishes. */
  onCase?: (result: CaseResult) => void;
  /**
   * "snapshot": the guest is saved right after the suite setup and every case after the
   * first starts on a fresh guest restored from that save, so no case sees another's traces.
   */
  isolate?: 'snapshot';
  /** One line per event worth telling the user. */
  log?: (line: string) => void;
  /** Host paths of the programs images/recipes/selftests.yaml built, by name, for the suite's files. */
  selftests?: Readonly<Record<string, string>>;
}

/** How a suite is compiled (program.ts: the selection, requirements, limits), and how its program runs. */
export type RunOptions = CompileOptions & ExecOptions;

const OUTPUT_KEEP = 4000;
/** How long after its own timeout an exec may take before the runner stops waiting. */
const EXEC_GRACE_MS = 5_000;

type ExecOutcome = { kind: 'done'; r: ExecResult } | { kind: 'timeout' } | { kind: 'error'; message: string };

async function execBounded(guest: GuestExec, command: string, timeoutMs: number, signal?: AbortSignal): Promise<ExecOutcome> {
  const start = Date.now();
  if (signal?.aborted) return { kind: 'error', message: 'interrupted' };
  let timer: NodeJS.Timeout | undefined;
  let onAbort: (() => void) | undefined;
  const late = new Promise<ExecOutcome>((res) => {
    timer = setTimeout(() => res({ kind: 'timeout' }), timeoutMs + EXEC_GRACE_MS);
    onAbort = () => res({ kind: 'error', message: 'interrupted' });
    signal?.addEventListener('abort', onAbort, { once: true });
  });
  const run = guest.exec(command, { timeoutMs }).then(
    (r): ExecOutcome => ({ kind: 'done', r }),
    (err: unknown): ExecOutcome => (Date.now() - start >= timeoutMs - 50 ? { kind: 'timeout' } : { kind: 'error', message: err instanceof Error ? err.message : String(err) }),
  );
  try {
    return await Promise.race([run, late]);
  } finally {
    clearTimeout(timer);
    if (onAbort) signal?.removeEventListener('abort', onAbort);
  }
}

const trim = (s: string) => (s.length > OUTPUT_KEEP ? `${s.slice(0, OUTPUT_KEEP)}\n... (${s.length - OUTPUT_KEEP} more characters)` : s);
const secs = (ms: number) => Math.round(ms) / 1000;

/** When a case, setup or cleanup must be done by, and its whole budget (named in messages). */
interface Deadline {
  at: number;
  totalMs: number;
}

const deadlineIn = (from: number, totalMs: number): Deadline => ({ at: from + totalMs, totalMs });

interface StepRun {
  result: StepResult;
  /** A tap step's stream, when the program ran to the end. */
  tap?: TapStream;
  vars?: Record<string, string>;
  crash?: KernelCrash;
  lost?: string;
}

/** Suite files (by suite file) each guest already has. */
const filesIn = new WeakMap<GuestExec, Set<string>>();

/** One suite on one guest: setup once, then the cases it is given, then cleanup. */
class GuestSuiteRun {
  private crashed: { index: number; name: string; reason: string; detail?: string } | undefined;
  private lost: string | undefined;

  /** The values the suite setup captured. */
  private readonly captured: Record<string, string> = {};

  constructor(
    private readonly program: Program,
    private readonly guest: GuestExec,
    private readonly opts: RunOptions,
    /** Which boot of the run this guest is, when the guests come from a pool. */
    private readonly boot?: number,
  ) {}

  private log(line: string): void {
    this.opts.log?.(line);
  }

  private halted(): boolean {
    return this.crashed !== undefined || this.lost !== undefined || this.aborted();
  }

  private aborted(): boolean {
    return this.opts.signal?.aborted === true;
  }

  /** Run one step with the values captured so far; never throws for anything the guest does. */
  private async step(op: StepOp, phase: StepResult['phase'], index: number, captured: Record<string, string>, deadline: Deadline): Promise<StepRun> {
    const started = Date.now();
    let s: StepOp;
    try {
      s = substituteDeep(op, captured);
    } catch (err) {
      if (!(err instanceof UnsetVariable)) throw err;
      const base = { phase, index, name: op.label, command: '', expected: 'ok', durationMs: 0 };
      if (op.tolerant) return { result: { ...base, actual: `skipped: ${err.message}`, passed: true } };
      return { result: { ...base, actual: err.message, passed: false } };
    }
    const base = { phase, index, name: s.label };
    const command = commandLine(s.command);
    const expected = describeExpectation(s.expect);
    const remaining = deadline.at - Date.now();
    const stepLimit = s.limitMs ?? Infinity;
    const limit = Math.min(remaining, stepLimit);
    if (limit <= 0) return { result: { ...base, command, expected, actual: 'not started: the case ran out of time', passed: false, durationMs: 0 } };

    const out = await execBounded(this.guest, command, limit, this.opts.signal);
    const durationMs = Date.now() - started;
    if (this.aborted()) return { result: { ...base, command, expected, actual: 'interrupted', passed: false, durationMs } };
    const fail = (actual: string, extra: Partial<StepResult> = {}): StepResult => ({ ...base, command, expected, actual, passed: false, durationMs, ...extra });

    let crash = this.guest.kernelCrash();
    if (out.kind !== 'done') {
      const why = out.kind === 'timeout' ? `no result within ${secs(stepLimit <= remaining ? stepLimit : deadline.totalMs)} s (${stepLimit <= remaining ? 'step' : 'case'} timeout)` : `the guest command failed: ${out.message}`;
      let lost: string | undefined;
      if (!crash) {
        const probe = await this.exec(this.program.probe);
        crash = this.guest.kernelCrash();
        if (probe.kind !== 'done') lost = `the guest stopped answering after ${why}`;
      }
      if (crash) return { result: fail(`kernel crashed: ${crash.reason}`), crash };
      return { result: fail(lost ?? why), ...(lost ? { lost } : {}) };
    }
    const r = out.r;
    const io = { exitCode: r.exitCode, stdout: trim(r.stdout), stderr: trim(r.stderr) };
    if (crash) return { result: fail(`kernel crashed: ${crash.reason}`, io), crash };
    const obs = interpret(s.read, r);
    const j = judge(s.expect, obs);
    if (!j.passed) return { result: fail(j.actual, io) };
    if (s.tap) {
      const tap = parseTap(r.stdout);
      const problems = streamProblems(tap);
      const ran = { ...base, command, expected: 'a complete TAP stream', durationMs, exitCode: r.exitCode };
      if (problems.length) return { result: { ...ran, actual: `${problems.join('; ')} (exit ${r.exitCode})`, passed: false, stdout: io.stdout, stderr: io.stderr }, tap };
      // Test programs often print a failure's details on stderr (kselftest_harness does): kept with the step.
      const failedPoint = flattenPoints(tap).some(({ point }) => pointVerdict(point) === 'failed');
      return { result: { ...ran, actual: `${tap.points.length} test points (exit ${r.exitCode})`, passed: true, ...(failedPoint && io.stderr ? { stderr: io.stderr } : {}) }, tap };
    }
    const cap = captureValues(s.capture, obs);
    if ('error' in cap) return { result: fail(cap.error, io) };
    return { result: { ...base, command, expected: j.expected, actual: j.actual, passed: true, durationMs, exitCode: r.exitCode }, vars: cap.vars };
  }

  /** Steps in order until one is not as expected (cleanup steps go on); captures extend `captured`. */
  private async steps(list: readonly StepOp[], phase: StepResult['phase'], captured: Record<string, string>, deadline: Deadline, results: StepResult[], taps: TapStream[] = []): Promise<StepRun | undefined> {
    for (let i = 0; i < list.length; i++) {
      if (this.aborted()) return undefined;
      const run = await this.step(list[i]!, phase, i + 1, captured, deadline);
      results.push(run.result);
      if (run.tap) taps.push(run.tap);
      if (run.vars) Object.assign(captured, run.vars);
      if (run.crash || run.lost) return run;
      if (!run.result.passed && !list[i]!.tolerant) return run;
    }
    return undefined;
  }

  private exec(op: GuestOp, signal?: AbortSignal): Promise<ExecOutcome> {
    return execBounded(this.guest, commandLine(op.command), op.limitMs, signal);
  }

  private failureOf(r: StepResult): NonNullable<CaseResult['failure']> {
    const what = r.phase === 'steps' ? `step ${r.index}` : `${r.phase} step ${r.index}`;
    const output = [r.stdout ? `stdout:\n${r.stdout}` : '', r.stderr ? `stderr:\n${r.stderr}` : ''].filter(Boolean).join('\n');
    return { step: `${what}: ${r.name}`, command: r.command, expected: r.expected, actual: r.actual, ...(output ? { output } : {}) };
  }

  /** Stop the helpers of a case, or (without one) all that are left. */
  private async reap(op: GuestOp, c?: CaseProgram): Promise<void> {
    if (this.halted()) return;
    const whose = c ? `${this.program.suite}.${c.index}` : undefined;
    const out = await this.exec(op, this.opts.signal);
    if (out.kind !== 'done' || out.r.exitCode !== 0) this.log(`could not stop the helpers of ${whose ?? 'the suite'}: ${out.kind === 'done' ? `exit ${out.r.exitCode}` : out.kind}`);
    const crash = this.guest.kernelCrash();
    if (crash) this.crashed = { index: 0, name: `stopping helpers (${whose ?? 'suite'})`, reason: crash.reason };
  }

  /** The case, then a case for each test point its tap steps reported. */
  private async runCase(c: CaseProgram): Promise<CaseResult[]> {
    const started = Date.now();
    // The case's captures are its own; it starts from the setup's.
    const captured = { ...this.captured };
    const steps: StepResult[] = [];
    const taps: TapStream[] = [];
    const stop = await this.steps(c.steps, 'steps', captured, deadlineIn(started, c.limitMs), steps, taps);
    let cleanupStop: StepRun | undefined;
    if (!stop?.crash && !stop?.lost && !this.aborted()) {
      cleanupStop = await this.steps(c.cleanup, 'cleanup', captured, deadlineIn(Date.now(), c.limitMs), steps);
      if (!cleanupStop?.crash && !cleanupStop?.lost) await this.reap(c.reap, c);
    }
    const result: CaseResult = { ...caseBase(this.program, c), kind: 'case', verdict: 'passed', seconds: secs(Date.now() - started), steps };
    const crash = stop?.crash ?? cleanupStop?.crash;
    const lost = stop?.lost ?? cleanupStop?.lost;
    if (crash) this.crashed = { index: c.index, name: c.name, reason: crash.reason };
    if (lost) this.lost = `${lost} (in case ${c.index} "${c.name}")`;
    const bad = steps.find((s) => !s.passed);
    if (this.aborted() && !crash) return [{ ...result, verdict: 'not-run', reason: 'the run was interrupted during this case', notRun: { cause: 'interrupted', detail: 'the run was interrupted during this case' } }];
    const points = taps.flatMap((t) => tapCases({ ...c, suite: this.program.suite }, t));
    const wholeSkip = taps.find((t) => t.plan?.skip !== undefined && t.points.length === 0);
    if (wholeSkip && !bad && !crash && !lost) return [notRunResult(result, 'skipped', `the test program skipped itself: ${wholeSkip.plan!.skip || 'no reason given'}`)];
    if (bad || crash || lost) {
      result.verdict = 'failed';
      if (bad) {
        result.failure = this.failureOf(bad);
        result.reason = `${result.failure.step}: expected ${bad.expected}, got ${bad.actual}`;
      }
      if (crash) {
        result.crash = crash;
        result.reason = `the kernel crashed: ${crash.reason}`;
      }
      if (lost && !crash) result.lost = lost;
    }
    return [this.withWarnings(result), ...points];
  }

  /** The result with the kernel warnings seen since the last one was judged. */
  private withWarnings(result: CaseResult): CaseResult {
    return withWarnings(result, this.guest.kernelWarnings?.() ?? [], this.opts.knownIssues ?? []);
  }

  private pseudo(kind: 'setup' | 'cleanup', steps: StepResult[], stop: StepRun | undefined, seconds: number): CaseResult {
    const bad = steps.find((s) => !s.passed);
    const r: CaseResult = { suite: this.program.suite, name: `(${kind})`, index: kind === 'setup' ? 0 : -1, kind, verdict: bad || stop?.crash || stop?.lost ? 'failed' : 'passed', seconds, steps };
    if (bad) {
      r.failure = this.failureOf(bad);
      r.reason = `${r.failure.step}: expected ${bad.expected}, got ${bad.actual}`;
    }
    if (stop?.crash) {
      r.crash = stop.crash;
      r.reason = `the kernel crashed: ${stop.crash.reason}`;
    }
    return this.withWarnings(r);
  }

  /** Why this guest can run no more cases: the kernel crashed, or the guest stopped answering. */
  haltCause(): { cause: 'kernel-crashed' | 'guest-lost'; detail: string } | undefined {
    if (this.crashed) {
      return { cause: 'kernel-crashed', detail: this.crashed.detail ?? (this.crashed.index > 0 ? `the kernel crashed in case ${this.crashed.index} ("${this.crashed.name}"): ${this.crashed.reason}` : `the kernel crashed during ${this.crashed.name}: ${this.crashed.reason}`) };
    }
    if (this.lost) return { cause: 'guest-lost', detail: this.lost };
    return undefined;
  }

  /** Whether this guest can take no more cases. */
  isHalted(): boolean {
    return this.halted();
  }

  /**
   * Check the agent, copy the suite's files and run the suite setup on this guest. The
   * setup's pseudo-case comes back when it did not pass (a failure, or only a warning);
   * `stopped` says no case may run.
   */
  async begin(): Promise<{ stopped: boolean; result?: CaseResult }> {
    const before = this.guest.kernelCrash();
    if (before) {
      this.crashed = { index: 0, name: 'suite setup', reason: before.reason, detail: `the kernel had crashed before the suite started: ${before.reason}` };
      return { stopped: true, result: { suite: this.program.suite, name: '(setup)', index: 0, kind: 'setup', verdict: 'failed', seconds: 0, steps: [], crash: before, reason: `the kernel had crashed before the suite started: ${before.reason}`, ...this.bootField() } };
    }
    await this.checkAgent();
    const t0 = Date.now();
    const setupSteps: StepResult[] = [];
    const copyFailed = this.needsFiles() ? await this.putFiles(setupSteps) : undefined;
    const setupStop = copyFailed ?? (await this.steps(this.program.setup, 'setup', this.captured, deadlineIn(t0, this.program.limitMs), setupSteps));
    if (!copyFailed) filesIn.set(this.guest, new Set([...(filesIn.get(this.guest) ?? []), this.program.file]));
    if (setupStop?.crash) this.crashed = { index: 0, name: 'suite setup', reason: setupStop.crash.reason };
    if (setupStop?.lost) this.lost = setupStop.lost;
    if (!setupStop && this.opts.isolate === 'snapshot') await this.save();
    // A warning during setup is the setup's, not the first case's; cases still run.
    const judged = { ...this.pseudo('setup', setupSteps, setupStop, secs(Date.now() - t0)), ...this.bootField() };
    return { stopped: setupStop !== undefined, ...(setupStop || judged.verdict !== 'passed' ? { result: judged } : {}) };
  }

  /** The case and the cases of its test points, each marked with this guest's boot. */
  async case(c: CaseProgram): Promise<CaseResult[]> {
    // The first case after the save runs on the guest that was saved; each later one on a restored copy.
    if (this.saved === 'used') await this.restore();
    if (this.saved) this.saved = 'used';
    const results = (await this.runCase(c)).map((r): CaseResult => ({ ...r, ...this.bootField() }));
    const halt = this.haltCause();
    if (halt && this.saved && !this.aborted()) {
      // The suite's snapshot replaces a crashed or lost guest at the cost of a restore,
      // not of a reboot and a second setup; it counts against no reboot budget.
      this.crashed = undefined;
      this.lost = undefined;
      await this.restore();
      this.opts.log?.(`${this.program.suite}: a copy of the guest restored from the suite's snapshot replaces the one lost in case ${c.index} ("${c.name}")`);
      for (const r of results) if (r.crash || r.lost) r.restoredFromSnapshot = true;
    }
    return results;
  }

  /** Whether the guest was saved after setup, and whether a case has run since. */
  private saved: 'fresh' | 'used' | undefined;

  private async save(): Promise<void> {
    if (!this.guest.saveState) throw hostFailure('--isolate snapshot needs guests that can be saved and restored (a QEMU guest of ktrial run)');
    await this.guest.saveState();
    this.saved = 'fresh';
  }

  private async restore(): Promise<void> {
    await this.guest.restoreState!();
    // A restored guest has none of the helpers or files a later suite setup may have changed: it is the saved one.
    this.saved = 'fresh';
  }

  /** The suite cleanup on this guest (skipped once it halted): its pseudo-case when it did not pass. */
  async end(): Promise<CaseResult | undefined> {
    const out: CaseResult[] = [];
    await this.cleanup((r) => out.push({ ...r, ...this.bootField() }));
    return out[0];
  }

  /** The suite's files go into a guest once, before its first setup of this suite. */
  private needsFiles(): boolean {
    return this.program.files.length > 0 && !filesIn.get(this.guest)?.has(this.program.file);
  }

  private bootField(): { boot?: number } {
    return this.boot !== undefined ? { boot: this.boot } : {};
  }

  private async cleanup(emit: (r: CaseResult) => void): Promise<void> {
    if (this.halted()) return;
    const t0 = Date.now();
    const steps: StepResult[] = [];
    const stop = await this.steps(this.program.cleanup, 'cleanup', { ...this.captured }, deadlineIn(t0, this.program.limitMs), steps);
    if (!stop?.crash && !stop?.lost) await this.reap(this.program.reap);
    const r = this.pseudo('cleanup', steps, stop, secs(Date.now() - t0));
    if (stop?.crash) this.crashed = { index: -1, name: 'suite cleanup', reason: stop.crash.reason };
    if (r.verdict !== 'passed') emit(r);
  }

  /** Copy the suite's files into the guest, one setup step each; the failed one, if any. */
  private async putFiles(results: StepResult[]): Promise<StepRun | undefined> {
    for (const [i, f] of this.program.files.entries()) {
      const started = Date.now();
      const what = 'path' in f.from ? f.from.path : `selftest ${f.from.selftest}`;
      const host = 'path' in f.from ? f.from.path : this.opts.selftests?.[f.from.selftest];
      const base = { phase: 'setup' as const, index: i + 1, name: `copy ${what} to ${f.dest}`, command: `copy ${host ?? what} to ${f.dest} (mode ${f.mode.toString(8)})`, expected: 'copied' };
      try {
        if (host === undefined) throw new Error(`${what} was not built for this run`);
        if (!this.guest.copy) throw new Error('this guest cannot receive files');
        await this.guest.copy(host, f.dest, f.mode);
        results.push({ ...base, actual: 'copied', passed: true, durationMs: Date.now() - started });
      } catch (err) {
        const result = { ...base, actual: err instanceof Error ? err.message.split('\n')[0]! : String(err), passed: false, durationMs: Date.now() - started };
        results.push(result);
        return { result };
      }
    }
    return undefined;
  }

  private async checkAgent(): Promise<void> {
    const out = await this.exec(this.program.check, this.opts.signal);
    const ok = out.kind === 'done' && out.r.exitCode === 0 && new RegExp(`"protocol":${AGENT_PROTOCOL}\\b`).test(out.r.stdout);
    if (!ok) {
      const detail = out.kind === 'done' ? `exit ${out.r.exitCode}: ${(out.r.stderr || out.r.stdout).trim().slice(0, 300)}` : out.kind === 'timeout' ? 'no answer' : out.message;
      throw hostFailure(`the guest has no working scenario agent at ${this.program.agent} (${detail})`, {
        hint: 'the guest image must include images/agent built with musl-gcc -static; rebuild the image',
      });
    }
  }
}

/** What every result of a case says of it. */
const caseBase = (p: Program, c: CaseProgram) => ({ suite: p.suite, name: c.name, index: c.index, requires: c.requires, ...(c.where ? { where: whereText(c.where) } : {}) });

/** One guest as a source: lent again and again until it is lost, never replaced. */
function oneGuest(guest: GuestExec): GuestSource {
  let lost = false;
  return {
    jobs: 1,
    acquire: async () => (lost ? { refused: '', cause: 'guest-lost' } : { guest, boot: 1 }),
    release: async (_lease, why) => {
      if (why) lost = true;
    },
  };
}

const sourceOf = (g: GuestExec | GuestSource): GuestSource => ('acquire' in g ? g : oneGuest(g));

/**
 * Run a suite once on the guests a source lends. Each guest runs the suite setup once and
 * then takes cases in suite order as it frees up (up to `source.jobs` guests at once; one
 * for a suite or while a case that must run alone). A guest that crashes or stops answering
 * fails its case and is given back as lost; the worker then asks for another guest (the
 * source decides whether a fresh one may be booted). Results come back in suite order.
 */
async function runOnce(program: Program, source: GuestSource, opts: RunOptions): Promise<CaseResult[]> {
  const cases = program.cases;
  const results: CaseResult[] = [];
  const emit = (r: CaseResult) => {
    results.push(r);
    opts.onCase?.(r);
    opts.log?.(`${program.suite} ${r.index > 0 ? `${r.index}/${cases.length}` : r.kind} ${r.name}: ${r.verdict}${r.reason ? ` (${r.reason})` : ''}${r.boot !== undefined && r.boot > 1 ? ` [boot ${r.boot}]` : ''}`);
  };
  const queue: CaseProgram[] = [];
  for (const c of cases) {
    // A case that needs no guest to be judged "not run" (an interrupted run's are "interrupted").
    if (c.skip && !opts.signal?.aborted) emit(notRunResult(caseBase(program, c), c.skip.cause, c.skip.detail));
    else queue.push(c);
  }
  /** Set when no guest may run more cases: the setup failed or crashed. */
  let stopped: { cause: NotRunCause; detail: string } | undefined;
  /** The last guest lost, and why the source would not give another. */
  let loss: { cause: NotRunCause; detail: string } | undefined;
  let refusal: { refused: string; cause: NotRunCause } | undefined;
  let setupReported = false;
  let cleanupReported = false;
  let inFlight = 0;
  let aloneRunning = false;
  const waiters: (() => void)[] = [];
  const changed = () => waiters.splice(0).forEach((w) => w());
  const over = () => stopped !== undefined || opts.signal?.aborted === true || queue.length === 0;

  const next = async (): Promise<CaseProgram | undefined> => {
    for (;;) {
      if (over()) return undefined;
      const head = queue[0]!;
      if (!aloneRunning && (!head.alone || inFlight === 0)) {
        queue.shift();
        inFlight++;
        if (head.alone) aloneRunning = true;
        return head;
      }
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  const finished = (c: CaseProgram) => {
    inFlight--;
    if (c.alone) aloneRunning = false;
    changed();
  };

  const worker = async () => {
    while (!over()) {
      const lease = await source.acquire();
      if ('refused' in lease) {
        refusal = lease;
        return;
      }
      const run = new GuestSuiteRun(program, lease.guest, opts, lease.boot);
      let lost: string | undefined;
      try {
        const setup = await run.begin();
        if (setup.result && !setupReported) emit(setup.result);
        if (setup.result) setupReported = true;
        if (setup.stopped) {
          stopped = run.haltCause() ?? { cause: 'setup-failed', detail: `suite setup failed: ${setup.result?.reason}` };
          changed();
        } else {
          for (let c = await next(); c; c = run.isHalted() ? undefined : await next()) {
            try {
              for (const r of await run.case(c)) emit(r);
            } finally {
              finished(c);
            }
            if (run.isHalted()) break;
          }
        }
        const cleanup = await run.end();
        if (cleanup && !cleanupReported) emit(cleanup);
        if (cleanup) cleanupReported = true;
        const halt = run.haltCause();
        if (halt) {
          if (!stopped) loss = halt;
          lost = halt.detail;
        }
      } finally {
        await source.release(lease, lost);
        changed();
      }
    }
  };
  const jobs = program.alone ? 1 : Math.max(1, Math.min(source.jobs, queue.length));
  const settled = await Promise.allSettled(Array.from({ length: jobs }, () => worker()));
  const failed = settled.find((s): s is PromiseRejectedResult => s.status === 'rejected');
  if (failed) throw failed.reason;

  // A refusal names the loss it could not replace; a single guest's refusal says nothing more than the loss.
  const leftCause = stopped ?? (opts.signal?.aborted ? { cause: 'interrupted' as const, detail: 'the run was interrupted' } : { cause: loss?.cause ?? refusal?.cause ?? 'guest-lost', detail: refusal?.refused || loss?.detail || 'no guest' });
  for (const c of queue) emit(notRunResult(caseBase(program, c), leftCause!.cause, leftCause!.detail));
  const rank = (r: CaseResult) => (r.kind === 'setup' ? -Infinity : r.kind === 'cleanup' ? Infinity : r.index);
  return results.sort((a, b) => rank(a) - rank(b));
}

/** Run a compiled suite once, in one guest or on a source's guests. Known issues, if given, are applied. */
export async function runProgram(program: Program, guest: GuestExec | GuestSource, opts: ExecOptions = {}): Promise<CaseResult[]> {
  const results = await runOnce(program, sourceOf(guest), opts);
  return opts.knownIssues ? applyKnownIssues(results, opts.knownIssues).cases : results;
}

/** Run every case of the suite once, in one guest or on a source's guests. Known issues, if given, are applied. */
export const runSuite = (suite: Suite, guest: GuestExec | GuestSource, opts: RunOptions = {}): Promise<CaseResult[]> => runProgram(compile(suite, opts), guest, opts);

/**
 * Run the suite `repeat` times and merge: a case whose outcome varies is "flaky". Stops
 * early once a case could not run because the kernel crashed or the guest was lost.
 */
export async function runSuiteRepeated(suite: Suite, guest: GuestExec | GuestSource, repeat: number, opts: RunOptions = {}): Promise<CaseResult[]> {
  const source = sourceOf(guest);
  const program = compile(suite, opts);
  const runs: CaseResult[][] = [];
  for (let i = 0; i < Math.max(1, repeat); i++) {
    opts.log?.(`${suite.name}: run ${i + 1} of ${repeat}`);
    const r = await runOnce(program, source, opts);
    runs.push(r);
    if (r.some((c) => c.notRun?.cause === 'kernel-crashed' || c.notRun?.cause === 'guest-lost') || opts.signal?.aborted) break;
  }
  const merged = mergeRepeats(runs);
  return opts.knownIssues ? applyKnownIssues(merged, opts.knownIssues).cases : merged;
}
