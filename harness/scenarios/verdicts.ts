// Verdicts beyond a single run: requirements, known issues (expected failures and
// unexpected passes), merging repeated runs (flaky cases), and "not run" for every case.
import { expandSuite } from './expand.js';
import type { CaseResult, KernelWarning, KnownIssue, NotRunCause, Suite, Verdict } from './types.js';
import { globMatch } from './vars.js';
import { inShard } from './shard.js';
import { parseRequirement, unmetRequirement, type KernelConfig } from '../config/kconfig.js';

/** Why the kernel does not meet these requirements (empty when it does). */
export function missingRequirements(requires: readonly string[], config: KernelConfig | undefined): string[] {
  if (!config) return [];
  return requires.flatMap((r) => unmetRequirement(parseRequirement(r), config) ?? []);
}

export function notRunResult(base: Pick<CaseResult, 'suite' | 'name' | 'index'> & Partial<CaseResult>, cause: NotRunCause, detail: string): CaseResult {
  return { kind: 'case', steps: [], seconds: 0, ...base, verdict: 'not-run', reason: detail, notRun: { cause, detail } };
}

/** Every case of a suite (of a shard, given its cases) as "not run", e.g. when the kernel did not boot. */
export function casesNotRun(suite: Suite, cause: NotRunCause, detail: string, shard?: ReadonlySet<string>): CaseResult[] {
  return expandSuite(suite).filter((c) => inShard(shard, c)).map((c) => notRunResult({ suite: c.suite, name: c.name, index: c.index, requires: c.requires, ...(c.where ? { where: whereText(c.where) } : {}) }, cause, detail));
}

export const whereText = (w: { file: string; line?: number }) => (w.line !== undefined ? `${w.file}:${w.line}` : w.file);

/** Causes of "not run" that are no cause for concern; a TAP SKIP is a test finding its requirement missing. */
const BENIGN_NOT_RUN: readonly NotRunCause[] = ['missing-requirement', 'filtered', 'skipped'];

/** The case went as the trial said it would. */
export function isAsExpected(c: CaseResult): boolean {
  if (c.verdict === 'passed' || c.verdict === 'expected-failure') return true;
  if (c.verdict === 'not-run') return c.notRun !== undefined && BENIGN_NOT_RUN.includes(c.notRun.cause);
  return false;
}

export function countVerdicts(cases: readonly CaseResult[]): Record<Verdict, number> & { total: number } {
  const n = { total: cases.length, passed: 0, failed: 0, 'not-run': 0, 'expected-failure': 0, 'unexpectedly-passed': 0, flaky: 0 };
  for (const c of cases) n[c.verdict]++;
  return n;
}

const namesCase = (i: KnownIssue, c: Pick<CaseResult, 'suite' | 'name'>) => i.case === c.name || i.case === `${c.suite}/${c.name}` || globMatch(i.case, c.name) || globMatch(i.case, `${c.suite}/${c.name}`);

/** The known issue that says this case fails (entries about warnings are not). */
export function findKnownIssue(c: Pick<CaseResult, 'suite' | 'name'>, issues: readonly KnownIssue[]): KnownIssue | undefined {
  return issues.find((i) => i.warning === undefined && namesCase(i, c));
}

/** The known issue that lists this kernel warning, seen in this case. */
export function findKnownWarning(c: Pick<CaseResult, 'suite' | 'name'>, text: string, issues: readonly KnownIssue[]): KnownIssue | undefined {
  return issues.find((i) => i.warning !== undefined && namesCase(i, c) && new RegExp(i.warning).test(text));
}

/**
 * A case's verdict with the warnings seen during it: an unknown warning fails a case that
 * otherwise passed, with a reason of its own; a known one is kept and fails nothing.
 */
export function withWarnings(result: CaseResult, seen: readonly Omit<KernelWarning, 'knownIssue'>[], issues: readonly KnownIssue[]): CaseResult {
  if (!seen.length) return result;
  const warnings = seen.map((w): KernelWarning => {
    const issue = findKnownWarning(result, w.text, issues);
    return issue ? { ...w, knownIssue: issue } : { ...w };
  });
  const unknown = warnings.filter((w) => !w.knownIssue);
  const out: CaseResult = { ...result, warnings };
  if (unknown.length && result.verdict === 'passed') {
    const more = unknown.length > 1 ? ` (and ${unknown.length - 1} more)` : '';
    out.verdict = 'failed';
    out.reason = `the kernel warned: ${unknown[0]!.kind}: ${unknown[0]!.text}${more}`;
  }
  return out;
}

/**
 * Known issues turn a failure into an "expected failure" and a pass into "unexpectedly
 * passed" (the issue may be fixed: the list should be updated). Also returns the issues
 * that matched no case, since a stale entry hides nothing and should be removed.
 */
export function applyKnownIssues(cases: readonly CaseResult[], issues: readonly KnownIssue[]): { cases: CaseResult[]; unmatched: KnownIssue[] } {
  const used = new Set<KnownIssue>();
  const out = cases.map((c) => {
    const issue = findKnownIssue(c, issues);
    if (!issue) return c;
    used.add(issue);
    if (c.verdict === 'failed' || c.verdict === 'flaky') {
      const how = c.verdict === 'flaky' ? ` (intermittent: ${c.reason ?? 'outcome varied between runs'})` : '';
      return { ...c, verdict: 'expected-failure' as const, knownIssue: issue, reason: `${issue.reason}${how}` };
    }
    if (c.verdict === 'passed') return { ...c, verdict: 'unexpectedly-passed' as const, knownIssue: issue, reason: `expected to fail (${issue.reason}) but passed` };
    return c;
  });
  return { cases: out, unmatched: issues.filter((i) => !used.has(i)) };
}

/**
 * A note for every known issue that matched no case of the whole run (issues are applied
 * per suite, so only the run as a whole can tell): such an entry hides nothing and is
 * probably stale or misspelt.
 */
export function unmatchedIssueNotes(issues: readonly KnownIssue[], cases: readonly Pick<CaseResult, 'suite' | 'name' | 'warnings'>[]): string[] {
  const matched = (i: KnownIssue) => (i.warning === undefined ? cases.some((c) => findKnownIssue(c, [i])) : cases.some((c) => c.warnings?.some((w) => w.knownIssue?.case === i.case && w.knownIssue.warning === i.warning)));
  return issues
    .filter((i) => !matched(i))
    .map((i) => (i.warning === undefined ? `known issue "${i.case}" matched no case of this run: is it stale or misspelt?` : `known warning /${i.warning}/ (cases "${i.case}") was not seen in this run: is it stale or misspelt?`));
}

/**
 * Merge the results of running a suite several times. A case that passed in some runs and
 * failed in others is "flaky"; runs where it did not run are left out of the count.
 */
export function mergeRepeats(runs: readonly (readonly CaseResult[])[]): CaseResult[] {
  const key = (c: CaseResult) => `${c.suite}\u0000${c.kind}\u0000${c.name}`;
  const order: string[] = [];
  const byKey = new Map<string, CaseResult[]>();
  for (const run of runs)
    for (const c of run) {
      const k = key(c);
      if (!byKey.has(k)) {
        byKey.set(k, []);
        order.push(k);
      }
      byKey.get(k)!.push(c);
    }
  return order.map((k) => {
    const all = byKey.get(k)!;
    const runsV = all.map((c) => (c.verdict === 'passed' ? 'passed' : c.verdict === 'not-run' ? 'not-run' : 'failed') as 'passed' | 'failed' | 'not-run');
    const ran = all.filter((c) => c.verdict !== 'not-run');
    if (ran.length === 0) return { ...all[0]!, runs: runsV };
    const failed = ran.filter((c) => c.verdict !== 'passed');
    const seconds = Math.round((ran.reduce((s, c) => s + c.seconds, 0) / ran.length) * 1000) / 1000;
    if (failed.length === 0) return { ...ran[ran.length - 1]!, seconds, runs: runsV };
    if (failed.length === ran.length) return { ...failed[0]!, seconds, runs: runsV };
    const first = failed[0]!;
    const passes = ran.length - failed.length;
    return { ...first, verdict: 'flaky' as const, seconds, runs: runsV, reason: `passed ${passes} of ${ran.length} runs${first.reason ? `; when it failed: ${first.reason}` : ''}` };
  });
}
