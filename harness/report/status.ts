// Every status a run can end in, its exit code, and the exit codes of `git bisect run`;
// a run's status derived from its cases, its error and its phases. The command line and
// every report take their codes from here.
import type { FailureClass } from '../common/errors.js';
import type { PhaseName } from '../common/progress.js';
import type { CaseResult } from '../scenarios/index.js';
import { isAsExpected } from '../scenarios/index.js';
import type { RunResults } from './types.js';

/** ok: every case as expected; unexpected: some case not; the others name a failure class. */
export type RunStatus = 'ok' | 'unexpected' | FailureClass | 'interrupted';

/**
 * 0 every case as expected; 1 some case not as expected (failed, unexpectedly passed,
 * flaky, or not run for a reason other than a missing requirement); 2 bad input; 3 the
 * kernel failed (did not boot, or crashed during a case); 4 a host problem; 130 interrupted.
 */
export const EXIT_CODES = { ok: 0, unexpected: 1, 'bad-input': 2, kernel: 3, host: 4, interrupted: 130 } as const satisfies Record<RunStatus, number>;

/** `git bisect run`'s exit codes: 125 skips a commit, 128 and above stop the bisection. */
export const BISECT = { good: 0, bad: 1, skip: 125, abort: 128 } as const;

/** What the cases and the run error say about the run as a whole. */
export function overallStatus(cases: readonly CaseResult[], error?: RunResults['error']): RunStatus {
  if (error) return error.class;
  // A crash or a guest that stopped answering is the kernel's failure, not a case's.
  if (cases.some((c) => c.crash || c.lost)) return 'kernel';
  return cases.every(isAsExpected) ? 'ok' : 'unexpected';
}

/** The status a report states: the recorded failure class, else what the cases show. */
export function effectiveStatus(r: RunResults): RunStatus {
  if (r.status !== 'ok' && r.status !== 'unexpected') return r.status;
  return overallStatus(r.cases, r.error);
}

/** The run's exit code: its status's. */
export function exitCodeFor(r: RunResults): number {
  return EXIT_CODES[effectiveStatus(r)];
}

/** Phases whose failure means this commit cannot be tested, not that it is bad. */
export const UNTESTABLE_PHASES: ReadonlySet<PhaseName> = new Set<PhaseName>(['patch', 'config', 'build']);

/**
 * The run as a `git bisect run` verdict: good when every case is as expected; bad when a
 * case is not, or the kernel did not boot or crashed; skip when this commit's kernel could
 * not be patched, configured or built; abort for a host problem, an interrupt or bad input
 * elsewhere, which no other commit would fix.
 */
export function bisectVerdict(r: RunResults): keyof typeof BISECT {
  const status = effectiveStatus(r);
  if (status === 'ok') return 'good';
  if (status === 'unexpected') return 'bad';
  const failed = r.phases.find((p) => p.status === 'failed')?.phase;
  if ((status === 'kernel' || status === 'bad-input') && failed && UNTESTABLE_PHASES.has(failed)) return 'skip';
  if (status === 'kernel') return 'bad';
  return 'abort';
}
