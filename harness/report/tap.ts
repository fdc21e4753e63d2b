// TAP version 14: one test point per case, YAML diagnostics for anything not passed.
// Not run -> "ok # SKIP reason"; expected failure -> "not ok # TODO reason"; an unexpected
// pass or a flaky case is "not ok" (it needs attention); a run error ends with "Bail out!".
import type { CaseResult } from '../scenarios/index.js';
import { effectiveStatus, exitCodeFor } from './status.js';
import { caseTitle, fmtSeconds, oneLine, yamlLines } from './text.js';
import { patchTitle } from './summary.js';
import type { RunResults } from './types.js';

const escapeDesc = (s: string) => oneLine(s).replace(/\\/g, '\\\\').replace(/#/g, '\\#');
const directiveText = (s: string) => oneLine(s);

function diagnostics(c: CaseResult): Record<string, unknown> {
  const d: Record<string, unknown> = { verdict: c.verdict };
  if (c.reason) d.reason = c.reason;
  if (c.failure) {
    d.step = c.failure.step;
    d.expected = c.failure.expected;
    d.actual = c.failure.actual;
    if (c.failure.command) d.command = c.failure.command;
    if (c.failure.output) d.output = c.failure.output;
  }
  if (c.crash) d.crash = { reason: c.crash.reason, console: c.crash.excerpt };
  if (c.warnings?.length) d.warnings = c.warnings.map((w) => ({ kind: w.kind, text: w.text, console: w.excerpt, ...(w.knownIssue ? { known_issue: w.knownIssue.reason } : {}) }));
  if (c.knownIssue) d.known_issue = { case: c.knownIssue.case, reason: c.knownIssue.reason, ...(c.knownIssue.finding ? { finding: c.knownIssue.finding } : {}) };
  if (c.runs) d.runs = c.runs;
  if (c.where) d.at = c.where;
  d.seconds = c.seconds;
  return d;
}

function point(n: number, c: CaseResult): string[] {
  const desc = escapeDesc(caseTitle(c));
  switch (c.verdict) {
    case 'passed':
      return [`ok ${n} - ${desc}`];
    case 'not-run':
      return [`ok ${n} - ${desc} # SKIP ${directiveText(c.reason ?? 'not run')}`];
    case 'expected-failure':
      return [`not ok ${n} - ${desc} # TODO ${directiveText(c.reason ?? 'known issue')}`, ...block(c)];
    default:
      return [`not ok ${n} - ${desc}`, ...block(c)];
  }
}

const block = (c: CaseResult) => ['  ---', ...yamlLines(diagnostics(c), '  '), '  ...'];

export function toTap(r: RunResults): string {
  const lines = ['TAP version 14'];
  const k = r.kernel;
  lines.push(`# ktrial trial ${r.trial}${k.release ? `: kernel ${k.release}${k.arch ? ` (${k.arch})` : ''}` : ''}`);
  r.patches?.forEach((p, i) => lines.push(`# patch ${i + 1}: ${oneLine(patchTitle(p))}`));
  if (r.phases.length) lines.push(`# phases: ${r.phases.map((p) => `${p.phase} ${fmtSeconds(p.seconds)}${p.status === 'ok' ? '' : ` (${p.status})`}`).join(', ')}`);
  lines.push(`1..${r.cases.length}`);
  r.cases.forEach((c, i) => lines.push(...point(i + 1, c)));
  for (const note of r.notes ?? []) lines.push(`# note: ${oneLine(note)}`);
  lines.push(`# status: ${effectiveStatus(r)} (exit ${exitCodeFor(r)})`);
  if (r.error) lines.push(`Bail out! ${oneLine(`${r.error.class}: ${r.error.message}`)}`);
  return `${lines.join('\n')}\n`;
}
