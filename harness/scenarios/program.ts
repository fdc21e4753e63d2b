// A suite compiled for one run: the commands the guest runs, in order, each with its limit,
// how its result is read and judged, and what it captures. Everything a run decides before
// the guest answers is decided here, once: which cases run (the selection, the shard, the
// kernel's config), every variable known before the run (built-ins, the suite's and the
// case's, with the trial's values), the expectation a step has for those values, the agent
// check, the liveness probe and the reaping of helpers with their limits. Left for the run
// are only values the guest captures. The SSH runner (run.ts) executes a program; the LAVA
// plan (harness/lava/plan.ts) renders it for the guest to execute on its own. A program is
// plain data (JSON).
import { stepCommand, readingOf, type GuestCommand, type Reading } from './agent.js';
import { expandSuite, stepLabel } from './expand.js';
import { expectationFor } from './expect.js';
import { AGENT_PATH } from './names.js';
import { inShard } from './shard.js';
import type { Capture, Case, Expectation, NotRunCause, Step, Suite, SuiteFile } from './types.js';
import { missingRequirements } from './verdicts.js';
import { escapeVars, globMatch, mapStrings, substitute, substituteKnown, varRefs } from './vars.js';
import type { Where } from '../common/errors.js';
import type { KernelConfig } from '../config/kconfig.js';

/** A fixed command of the runner's own (no variables in it) with its limit. */
export interface GuestOp {
  command: GuestCommand;
  limitMs: number;
}

/**
 * One step. Its strings are templates: the only ${name} left in them are values the guest
 * captures (unset until a step captures them), and "$${name}" stands for a literal
 * "${name}", so each is put through substitute() with the captured values before use.
 */
export interface StepOp {
  label: string;
  command: GuestCommand;
  read: Reading;
  expect: Expectation;
  capture: Capture[];
  /** The step's own limit; the case's (or the suite setup's and cleanup's) applies as well. */
  limitMs?: number;
  /** A cleanup step: a captured value it needs that is unset skips it, and a failure does not stop the steps after it. */
  tolerant?: true;
  /** Its stdout is TAP or KTAP: each test point becomes a case (harness/scenarios/tap.ts). */
  tap?: true;
}

export interface CaseProgram {
  index: number;
  name: string;
  requires: string[];
  where?: Where;
  /** No other case may run in another guest while this one runs. */
  alone?: true;
  /** The case's limit, for its steps and again for its cleanup. */
  limitMs: number;
  steps: StepOp[];
  cleanup: StepOp[];
  /** Stops the helpers the case left, after its cleanup. */
  reap: GuestOp;
  /** Why the case does not run: left out by the selection, a requirement the kernel lacks, or a path that cannot take it. */
  skip?: { cause: NotRunCause; detail: string };
}

export interface Program {
  suite: string;
  /** The suite file (a guest gets a suite's files once). */
  file: string;
  /** The suite runs in one guest, whatever the run's parallelism. */
  alone?: true;
  /** The guest agent's path. */
  agent: string;
  /** Asks the agent for its protocol before anything else runs. */
  check: GuestOp;
  /** Asked after a step failed to come back, to tell a slow command from a guest that stopped answering. */
  probe: GuestOp;
  files: SuiteFile[];
  /** The limit of the suite setup, and again of the suite cleanup. */
  limitMs: number;
  setup: StepOp[];
  /** The run's cases in suite order (a shard's only; the others are no part of the run). */
  cases: CaseProgram[];
  cleanup: StepOp[];
  /** Stops every helper left, after the suite cleanup. */
  reap: GuestOp;
}

/** The agent's protocol version the runner speaks (images/agent/README.md). */
export const AGENT_PROTOCOL = 1;
const PROBE_TIMEOUT_MS = 15_000;
const REAP_TIMEOUT_MS = 20_000;

/** Which cases run; the others are "not run" (filtered). */
export type CaseSelection = (c: Pick<Case, 'suite' | 'name' | 'index'>) => boolean;

/** The cases --only's globs name, by name or by suite/name; without globs every case. */
export function selectByOnly(globs: readonly string[] | undefined): CaseSelection {
  return (c) => !globs?.length || globs.some((g) => globMatch(g, c.name) || globMatch(g, `${c.suite}/${c.name}`));
}

export interface CompileOptions {
  /** The kernel's config: a case whose requirements it does not meet is not run. Without it requirements are not checked. */
  kernelConfig?: KernelConfig;
  /** Milliseconds for every case (and for the suite's setup and cleanup), in place of the suite's own. */
  caseTimeoutMs?: number;
  agentPath?: string;
  /** The liveness probe's limit (15 s). */
  probeTimeoutMs?: number;
  select?: CaseSelection;
  /** A shard's cases (suite/name): the others are left out of the program. */
  shard?: ReadonlySet<string>;
}

/**
 * The variables known before the run, as templates, while compiling one block of steps. A
 * value a step captures is unknown from that step on: later references stay for the run.
 */
class Scope {
  constructor(
    private readonly known: Record<string, string> = {},
    private readonly capturedNames = new Set<string>(),
  ) {}

  literal(name: string, value: string): void {
    this.known[name] = escapeVars(value);
  }

  /** A variable defined by the suite or the case: its value with the variables known so far in it. */
  define(name: string, raw: string): void {
    // As the value is written when a variable it names has no value (the loader checked
    // those; a trial's value is not checked); one the run captures stays for the run.
    const resolvable = varRefs(raw).every((r) => Object.hasOwn(this.known, r) || this.capturedNames.has(r));
    this.known[name] = resolvable ? substituteKnown(raw, this.known) : escapeVars(raw);
  }

  /** From here on these are the values a step captured. */
  captured(names: readonly string[]): void {
    for (const n of names) {
      delete this.known[n];
      this.capturedNames.add(n);
    }
  }

  bind<T>(value: T): T {
    return mapStrings(value, (s) => substituteKnown(s, this.known));
  }

  /** A variable's value, when no captured value is part of it. */
  value(name: string): string | undefined {
    const t = this.known[name];
    return t !== undefined && varRefs(t).length === 0 ? substitute(t, {}) : undefined;
  }

  copy(): Scope {
    return new Scope({ ...this.known }, new Set(this.capturedNames));
  }
}

function stepOp(step: Step, scope: Scope, agent: string, tag: string, tolerant: boolean): StepOp {
  const bound = scope.bind(step);
  const byValue = step.expectBy && scope.value(step.expectBy.variable);
  const chosen = bound.expectBy && expectationFor(bound.expectBy, byValue === undefined ? {} : { [bound.expectBy.variable]: byValue });
  const op: StepOp = {
    label: scope.bind(stepLabel(step)),
    command: stepCommand(bound, escapeVars(agent), escapeVars(tag)),
    read: readingOf(bound),
    expect: chosen ?? bound.expect,
    capture: bound.capture,
  };
  if (step.timeoutMs !== undefined) op.limitMs = step.timeoutMs;
  if (tolerant) op.tolerant = true;
  if (step.tap) op.tap = true;
  scope.captured(step.capture.map((c) => c.variable));
  return op;
}

const block = (steps: readonly Step[], scope: Scope, agent: string, tag: string, tolerant: boolean) => steps.map((s) => stepOp(s, scope, agent, tag, tolerant));

const reapOp = (agent: string, tag?: string): GuestOp => ({ command: { argv: [agent, 'reap', ...(tag ? [tag] : [])] }, limitMs: REAP_TIMEOUT_MS });

/** Why a case does not run whatever the guest does: the selection left it out, or the kernel lacks a requirement. */
function skipOf(c: Case, opts: CompileOptions): CaseProgram['skip'] {
  if (opts.select && !opts.select(c)) return { cause: 'filtered', detail: 'not selected by --only' };
  const missing = missingRequirements(c.requires, opts.kernelConfig);
  if (missing.length) return { cause: 'missing-requirement', detail: `requirement not met: ${missing.join('; ')}` };
  return undefined;
}

export function compile(suite: Suite, opts: CompileOptions = {}): Program {
  const agent = opts.agentPath ?? AGENT_PATH;
  const suiteScope = new Scope();
  suiteScope.literal('suite', suite.name);
  suiteScope.literal('agent', agent);
  for (const [k, v] of Object.entries(suite.vars)) suiteScope.define(k, v);
  const limitMs = opts.caseTimeoutMs ?? suite.timeoutMs;
  const setup = block(suite.setup, suiteScope, agent, `${suite.name}.setup`, false);
  const cleanup = block(suite.cleanup, suiteScope.copy(), agent, `${suite.name}.cleanup`, true);
  const cases = expandSuite(suite)
    .filter((c) => inShard(opts.shard, c))
    .map((c): CaseProgram => {
      const scope = suiteScope.copy();
      scope.literal('case', c.name);
      scope.literal('case_index', String(c.index));
      for (const [k, v] of Object.entries(c.vars)) scope.define(k, v);
      const tag = `${suite.name}.${c.index}`;
      const out: CaseProgram = {
        index: c.index,
        name: c.name,
        requires: c.requires,
        limitMs: opts.caseTimeoutMs ?? c.timeoutMs,
        steps: block(c.steps, scope, agent, tag, false),
        cleanup: block(c.cleanup, scope, agent, tag, true),
        reap: reapOp(agent, tag),
      };
      if (c.where) out.where = c.where;
      if (c.alone) out.alone = true;
      const skip = skipOf(c, opts);
      if (skip) out.skip = skip;
      return out;
    });
  const program: Program = {
    suite: suite.name,
    file: suite.file,
    agent,
    check: { command: { argv: [agent, '--version'] }, limitMs: PROBE_TIMEOUT_MS },
    probe: { command: { argv: ['true'] }, limitMs: opts.probeTimeoutMs ?? PROBE_TIMEOUT_MS },
    files: suite.files,
    limitMs,
    setup,
    cases,
    cleanup,
    reap: reapOp(agent),
  };
  if (suite.alone) program.alone = true;
  return program;
}
