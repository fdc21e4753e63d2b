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
