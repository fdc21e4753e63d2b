// Compares runs case by case (keyed by suite and name), each later run against the first.
// Following SQUAD, only a case that ran on both sides can be a regression or a fix: a
// case missing or not run on either side is new, gone or not-run instead. A case missing on
// both sides (one only a third run has) is not compared at all.
import { isAsExpected, type CaseResult } from '../scenarios/index.js';
import { ABSENT, COMPARE_CLASSES, COMPARE_FORMAT, type CompareCell, type CompareClass, type CompareDoc, type CompareRun, type PairStanding } from './format.js';
import type { LoadedRun } from './load.js';

/** A case's identity across runs: its suite and its name. */
export const caseKey = (c: Pick<CaseResult, 'suite' | 'name'>) => `${c.suite}\u0000${c.name}`;

/** How `later` stands against `base` (undefined: the run has no such case). */
export function classify(base: CaseResult | undefined, later: CaseResult | undefined): PairStanding {
  if (!base || !later) return base ? 'gone' : later ? 'new' : ABSENT;
  if (base.verdict === 'flaky' || later.verdict === 'flaky') return 'flaky';
  const notRun = [base, later].filter((c) => c.verdict === 'not-run').length;
  if (notRun === 2) return 'unchanged';
  if (notRun === 1) return 'not-run';
  const wasExpected = isAsExpected(base);
  if (wasExpected !== isAsExpected(later)) return wasExpected ? 'regression' : 'fix';
  return base.verdict !== later.verdict || decidingActual(base) !== decidingActual(later) ? 'changed-actual' : 'unchanged';
}

/** The failing step and its actual outcome, or every step's actual when none failed. */
function decidingActual(c: CaseResult): string {
  const cell = cellOf(c);
  return `${cell.step ?? ''}\n${cell.actual ?? ''}`;
}

const stepLines = (c: CaseResult, field: 'expected' | 'actual') => c.steps.map((s) => `${s.name}: ${s[field]}`).join('\n');

export function cellOf(c: CaseResult | undefined): CompareCell {
  if (!c) return { verdict: 'missing' };
  const f = c.failure;
  const excerpt = c.crash?.excerpt ?? c.warnings?.find((w) => !w.knownIssue)?.excerpt ?? f?.output;
  return {
    verdict: c.verdict,
    ...(c.reason ? { reason: c.reason } : c.notRun ? { reason: c.notRun.detail } : {}),
    ...(f ? { step: f.step, expected: f.expected, actual: f.actual } : c.steps.length ? { expected: stepLines(c, 'expected'), actual: stepLines(c, 'actual') } : {}),
    ...(excerpt ? { excerpt } : {}),
  };
}

function runInfo(r: LoadedRun): CompareRun {
  const res = r.results;
  return {
    label: r.label,
    path: r.path,
    trial: res.trial,
    status: res.status,
    ...(typeof res.exitCode === 'number' ? { exitCode: res.exitCode } : {}),
    ...(res.startedAt ? { startedAt: res.startedAt } : {}),
    ...(res.kernel?.release ? { kernel: res.kernel.release } : {}),
    ...(res.error ? { error: res.error.message } : {}),
    cases: res.cases.length,
  };
}

export function compareRuns(runs: readonly LoadedRun[]): CompareDoc {
  const byRun = runs.map((r) => new Map(r.results.cases.map((c) => [caseKey(c), c])));
  // Every case once: the baseline's order, then each later run's new cases in its order.
  const keys = [...new Set(runs.flatMap((r) => r.results.cases.map(caseKey)))];
  const cases = keys.map((k) => {
    const [suite = '', name = ''] = k.split('\u0000');
    const [base, ...later] = byRun.map((m) => m.get(k));
    return { suite, name, cells: byRun.map((m) => cellOf(m.get(k))), classes: later.map((l) => classify(base, l)) };
  });
  const comparisons = runs.slice(1).map((_, i) => {
    const counts = Object.fromEntries(COMPARE_CLASSES.map((cls) => [cls, cases.filter((c) => c.classes[i] === cls).length])) as Record<CompareClass, number>;
    return { run: i + 1, counts };
  });
  const regressions = comparisons.reduce((n, c) => n + c.counts.regression, 0);
  return { format: COMPARE_FORMAT, runs: runs.map(runInfo), comparisons, cases, regressions, exitCode: regressions > 0 ? 1 : 0 };
}
