// The scenario model: a Suite as loaded from YAML, the Cases it expands to, and the
// results the runner hands to the reporters. Everything here is plain data (JSON-safe).
import type { CrashFrame } from '../kernel/crashtrace.js';
import type { Where } from '../common/errors.js';
import type { Action } from './actions.js';

/** Capabilities of an identity: every one it has, none, exactly these, or all but these. */
export type CapsSpec = 'all' | 'none' | string[] | { drop: string[] };

export interface Identity {
  /** A short readable name: the identity's key in `identities`, or one derived from it. */
  name: string;
  uid: number;
  gid: number;
  /** Supplementary groups; undefined leaves them as they are for root, empty otherwise. */
  groups?: number[];
  /** Undefined: what the uid implies (all for 0, none otherwise). */
  caps?: CapsSpec;
}

export type { Action, ActionKind } from './actions.js';

/** A value expected in the result: equal to a string, or matching a regular expression. */
export interface ValueCheck {
  equals?: string;
  match?: string;
}

export interface Expectation {
  /** ok: the final action succeeded (sh: exit 0); errno: it failed with `errno`;
   *  error: it failed with any errno; exit: the shell command exited with `exit`;
   *  any: it ran, whatever the outcome (for cleanup that may find nothing to do). */
  outcome: 'ok' | 'errno' | 'error' | 'exit' | 'any';
  errno?: string;
  exit?: number;
  /** The result's "output" (sh: stdout), one trailing newline removed. */
  output?: ValueCheck;
  /** Other result fields by dotted path (e.g. child.pid, child.reads.0.output). */
  values?: Record<string, ValueCheck>;
}

export interface Capture {
  /** Variable name, used later as ${var}. */
  variable: string;
  /** Dotted path into the final action's result (sh: stdout, output, exit). */
  field: string;
  /** Optional regular expression; its first group (or the whole match) is captured. */
  match?: string;
}

export interface Step {
  /** What the step checks, as written in the file; reports fall back to stepLabel(). */
  name?: string;
  kind: 'agent' | 'sh';
  /** A sh step whose stdout is TAP or KTAP: each test point becomes a case (harness/scenarios/tap.ts). */
  tap?: true;
  as: Identity;
  /** Run as root with every capability before the identity is taken on. */
  pre: Action[];
  /** Run in one agent process, in order; the expectation is about the last one. */
  actions: Action[];
  sh?: string;
  /** The expectation; with expectBy, the one for the suite's default value of its variable. */
  expect: Expectation;
  /** Set where kernels are meant to differ: the expectation per value of a suite variable
   *  ("*" for any other value), chosen when the step runs. */
  expectBy?: { variable: string; when: Record<string, Expectation> };
  capture: Capture[];
  timeoutMs?: number;
  /** How the agent runs the actions: workers started at once, repeats, a timer, a thread. */
  load?: Load;
  where?: Where;
}

/** The agent's load options (images/agent/README.md, "Load"). */
export interface Load {
  /** This many workers run the actions, started at once. */
  workers?: number;
  /** One worker per value (comma-separated), each with {each} replaced by its value. */
  each?: string;
  /** Each worker runs the actions this many times; {iter} is the round, from 0. */
  repeat?: number;
  /** SIGALRM every this many microseconds while the workers run. */
  timer?: number;
  /** The actions run once, in a thread other than the leader; {tid} is its id. */
  thread?: boolean;
}

export interface HelperDef {
  name: string;
  description?: string;
  as: Identity;
  pre: Action[];
  /** Done in the agent before the helper forks off (e.g. unshare uts, sethostname x). */
  actions: Action[];
}

/** One runnable case, after matrix expansion. */
export interface Case {
  suite: string;
  /** 1-based position in the suite. */
  index: number;
  name: string;
  description?: string;
  /** Kernel config requirements: CONFIG_X (=y), CONFIG_X=value, CONFIG_X=n (not set). */
  requires: string[];
  timeoutMs: number;
  vars: Record<string, string>;
  steps: Step[];
  cleanup: Step[];
  where?: Where;
  matrix?: { title: string; actor: string; action: string; target?: string };
  /** No other case may run in another guest while this one runs. */
  alone?: boolean;
}

export interface MatrixDef {
  title: string;
  nameTemplate?: string;
  description?: string;
  requires: string[];
  timeoutMs?: number;
  /** Variables of every cell (before the actor's, action's and target's). */
  vars: Record<string, string>;
  actors: { name: string; as: Identity; pre: Action[]; vars: Record<string, string> }[];
  actions: { name: string; step: Step; requires: string[]; vars: Record<string, string> }[];
  targets: { name: string; vars: Record<string, string>; setup: Step[]; cleanup: Step[]; requires: string[] }[];
  setup: Step[];
  cleanup: Step[];
  /** The expected outcome of every cell, with the place in the file it came from. */
  cells: { actor: string; action: string; target?: string; expect: Expectation; where?: Where }[];
  where?: Where;
}

export type CaseDef = { kind: 'case'; def: Omit<Case, 'suite' | 'index' | 'timeoutMs'> & { timeoutMs?: number } } | { kind: 'matrix'; def: MatrixDef };

/** A file put into the guest once per guest, before the suite's setup. */
export interface SuiteFile {
  /** A host file (absolute, resolved against the suite file), or a program images/recipes/selftests.yaml builds. */
  from: { path: string } | { selftest: string };
  dest: string;
  mode: number;
  where?: Where;
}

export interface Suite {
  name: string;
  description?: string;
  file: string;
  /** As written: an entry may be a suite variable (${name}), replaced on expansion. */
  requires: string[];
  /** Default per-case timeout. */
  timeoutMs: number;
  vars: Record<string, string>;
  identities: Record<string, Identity>;
  helpers: Record<string, HelperDef>;
  files: SuiteFile[];
  setup: Step[];
  cases: CaseDef[];
  cleanup: Step[];
  /** The suite runs in one guest, whatever the run's parallelism. */
  alone?: boolean;
  /** The suite asks for outbound network (where it says so); unset, the guest's network is confined. */
  network?: { access: 'outbound'; where: Where };
}

// ---------------------------------------------------------------------------------------
// Results

export type Verdict = 'passed' | 'failed' | 'not-run' | 'expected-failure' | 'unexpectedly-passed' | 'flaky';

export type NotRunCause =
  | 'missing-requirement'
  | 'kernel-crashed'
  | 'boot-failed'
  | 'setup-failed'
  | 'guest-lost'
  | 'interrupted'
  | 'filtered'
  /** A TAP test point with a SKIP directive: the test itself found it could not run. */
  | 'skipped'
  /** The in-guest (LAVA) path cannot run or judge the case; the reason says what it lacks. */
  | 'not-in-guest';

export interface StepResult {
  phase: 'setup' | 'steps' | 'cleanup';
  /** 1-based within its phase. */
  index: number;
  name: string;
  command: string;
  expected: string;
  actual: string;
  passed: boolean;
  durationMs: number;
  exitCode?: number;
  /** Kept for failed steps only, trimmed. */
  stdout?: string;
  stderr?: string;
}

export interface KnownIssue {
  /** A case name, or a glob (* and ?) matched against "name" and "suite/name". */
  case: string;
  reason: string;
  /**
   * A regular expression: the entry is about kernel warnings, not about the case's outcome.
   * A warning whose console line it matches, in a case that `case` names, is known: it is
   * kept on the case but does not fail it.
   */
  warning?: string;
  /** Where the analysis lives (e.g. test/scenarios/FINDINGS.md#eexist-on-pid-reuse). */
  finding?: string;
}

export interface CaseResult {
  suite: string;
  name: string;
  /** 1-based position in the suite; 0 for the suite's setup, -1 for its cleanup. */
  index: number;
  kind: 'case' | 'setup' | 'cleanup';
  verdict: Verdict;
  seconds: number;
  /** One line: why it failed, why it did not run, or the known issue's reason. */
  reason?: string;
  notRun?: { cause: NotRunCause; detail: string };
  /** The first step that did not go as expected, expected and actual side by side. */
  failure?: { step: string; command: string; expected: string; actual: string; output?: string };
  crash?: KernelCrash;
  /** Kernel warnings the console showed during this case (the guest lived on); one not known fails the case. */
  warnings?: KernelWarning[];
  /** The case has requirements that could not be checked (the kernel's config is unknown); it ran regardless. */
  requirementsUnjudged?: true;
  /** Set when the guest stopped answering during this case (a hung or vanished guest). */
  lost?: string;
  /** After this case crashed or lost its guest, a copy restored from the suite's snapshot took its place (--isolate snapshot): no reboot, no second setup. */
  restoredFromSnapshot?: true;
  knownIssue?: KnownIssue;
  /** With repeats: the verdict of each run, in order. */
  runs?: ('passed' | 'failed' | 'not-run')[];
  steps: StepResult[];
  requires?: string[];
  /** file:line of the case (or the matrix cell's expectation). */
  where?: string;
  /** Which boot of the run's guests ran it (1 is the first; more with --jobs or after a crash). */
  boot?: number;
}

/** A report after which the kernel went on: a WARN_ON, a non-fatal "BUG:", lockdep, slab corruption. */
export interface KernelWarning {
  /** The console event's kind: warning, bug, lockdep or slab-corruption. */
  kind: string;
  /** The console line that starts the report. */
  text: string;
  excerpt: string;
  /** The trial's known issue that lists it; then it does not fail the case. */
  knownIssue?: KnownIssue;
}

/** What the runner needs from a booted guest. harness/vm provides it. */
export interface GuestExec {
  /** Upload a host file to an absolute guest path with this mode (needed by suites with files). */
  copy?(hostPath: string, guestPath: string, mode: number): Promise<void>;
  exec(command: string, opts: { timeoutMs: number }): Promise<{ exitCode: number; stdout: string; stderr: string; durationMs: number }>;
  /** A panic or oops the console has shown since the last call, if any. */
  kernelCrash(): KernelCrash | undefined;
  /** The warnings the console has shown since the last call (the kernel went on after them). */
  kernelWarnings?(): Omit<KernelWarning, 'knownIssue'>[];
  /** Save the whole guest as it is now (--isolate snapshot), replacing an earlier save. */
  saveState?(): Promise<void>;
  /** Put a fresh guest in place of this one, started from the saved state. */
  restoreState?(): Promise<void>;
}

/** A kernel crash seen on the console while a case ran. */
export interface KernelCrash {
  reason: string;
  excerpt: string;
  /** The 1-based line of console.log where the crash report starts. */
  consoleLine?: number;
  /** The crash's stack trace, decoded against the kernel's vmlinux when it was kept. */
  frames?: CrashFrame[];
  /** Why the frames have no file:line, when they have none. */
  decodeNote?: string;
}

/** A guest lent to a suite: what runs commands on it, and which boot of the run it is (1, 2, ...). */
export interface GuestLease {
  guest: GuestExec;
  boot: number;
}

/** Where a suite's cases get their guests: one guest, or the run's pool (recovery, --jobs). */
export interface GuestSource {
  /** How many guests may run cases at once. */
  readonly jobs: number;
  /** An idle guest or a fresh one; or why none can be had (no reboot left, a boot failed). */
  acquire(): Promise<GuestLease | { refused: string; cause: NotRunCause }>;
  /** The lease ends; with `lost` (the kernel crashed or the guest stopped answering) the guest is closed. */
  release(lease: GuestLease, lost?: string): Promise<void>;
}
