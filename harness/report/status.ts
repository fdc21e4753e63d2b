// The run's overall status and exit code, derived from the cases and any run error.
import { EXIT } from '../common/errors.js';
import type { CaseResult } from '../scenarios/types.js';
import { isAsExpected } from '../scenarios/verdicts.js';
import type { RunResults, RunStatus } from './types.js';

/** What the cases and the run error say about the run as a whole. */
export function overallStatus(cases: readonly CaseResult[], error?: RunResults['error']): RunStatus {
  if (error) return error.class;
  // A crash or a guest that stopped answering is the kernel's failure, not a case's.
  if (cases.some((c) => c.crash || c.lost)) return 'kernel';
  return cases.every(isAsExpected) ? 'ok' : 'unexpected';
}

const CODES: Record<RunStatus, number> = {
  ok: EXIT.ok,
  unexpected: EXIT.unexpected,
  'bad-input': EXIT.badInput,
  kernel: EXIT.kernel,
  host: EXIT.host,
  interrupted: EXIT.interrupted,
};

/** The status a report states: the recorded failure class, else what the cases show. */
export function effectiveStatus(r: RunResults): RunStatus {
  if (r.status !== 'ok' && r.status !== 'unexpected') return r.status;
  return overallStatus(r.cases, r.error);
}

/**
 * 0 every case as expected; 1 some case not as expected (failed, unexpectedly passed,
 * flaky, or not run for a reason other than a missing requirement); 2 bad input; 3 the
 * kernel failed (did not boot, or crashed during a case); 4 a host problem; 130 interrupted.
 */
export function exitCodeFor(r: RunResults): number {
  return CODES[effectiveStatus(r)];
}

/** `git bisect run`'s exit codes: 125 skips a commit, 128 and above stop the bisection. */
export const BISECT = { good: 0, bad: 1, skip: 125, abort: 128 } as const;

/** Phases whose failure means this commit cannot be tested, not that it is bad. */
const UNTESTABLE_PHASES = new Set(['patch', 'config', 'build']);

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
