// The comparison as text: the summary `ktrial compare` prints, and a Markdown table
// (case x run) for a pull request or a wiki page.
import { COMPARE_CLASSES, isChange, type CompareCell, type CompareClass, type CompareDoc, type CompareRun } from './format.js';

const runLine = (r: CompareRun) =>
  `${r.trial}${r.kernel ? `, kernel ${r.kernel}` : ''}, ${r.status}${r.exitCode !== undefined ? ` (exit ${r.exitCode})` : ''}, ${r.cases} cases${r.error ? `; ${r.error}` : ''}`;

/** "1 regression, 2 fix, 5 unchanged": the classes that occur, in COMPARE_CLASSES order. */
export const countsText = (counts: Record<CompareClass, number>) =>
  COMPARE_CLASSES.filter((c) => counts[c] > 0)
    .map((c) => `${counts[c]} ${c}`)
    .join(', ') || 'no cases';

const oneLine = (s: string | undefined) => (s ?? '').replace(/\n/g, '; ');

function changeText(cls: CompareClass, base: CompareCell, later: CompareCell): string {
  if (cls === 'new') return later.verdict;
  if (cls === 'gone') return base.verdict;
  const verdicts = `${base.verdict} -> ${later.verdict}`;
  if (cls === 'changed-actual' && base.verdict === later.verdict) return `${verdicts}: actual ${oneLine(base.actual)} -> ${oneLine(later.actual)}`;
  const why = later.verdict === 'passed' ? undefined : later.actual ?? later.reason;
  return why ? `${verdicts} (${oneLine(why)})` : verdicts;
}

export function toCompareSummary(doc: CompareDoc): string {
  const [base, ...later] = doc.runs;
  const out = [`baseline: ${base!.label}: ${runLine(base!)}`];
  later.forEach((r, i) => out.push(`run ${i + 2}: ${r.label}: ${runLine(r)}`));
  const width = Math.max(...COMPARE_CLASSES.map((c) => c.length));
  doc.comparisons.forEach(({ run, counts }, i) => {
    out.push('', `${doc.runs[run]!.label} against the baseline: ${countsText(counts)}`);
    for (const c of doc.cases) {
      const cls = c.classes[i];
      if (isChange(cls)) out.push(`  ${cls.padEnd(width)}  ${c.suite}: ${c.name}: ${changeText(cls, c.cells[0]!, c.cells[run]!)}`);
    }
  });
  out.push('', doc.regressions ? `result: ${doc.regressions} regression(s) (exit 1)` : 'result: no regressions (exit 0)');
  return `${out.join('\n')}\n`;
}

const mdEscape = (s: string) => s.replace(/\\/g, '\\\\').replace(/\|/g, '\\|').replace(/\n/g, '<br>');

export function toCompareMarkdown(doc: CompareDoc): string {
  const out = [`Baseline: \`${doc.runs[0]!.label}\` (${runLine(doc.runs[0]!)})`, ''];
  for (const { run, counts } of doc.comparisons) out.push(`- \`${doc.runs[run]!.label}\` (${runLine(doc.runs[run]!)}): ${countsText(counts)}`);
  out.push('', `| suite | case | ${doc.runs.map((r, i) => mdEscape(i === 0 ? `${r.label} (baseline)` : r.label)).join(' | ')} |`);
  out.push(`|${' --- |'.repeat(doc.runs.length + 2)}`);
  for (const c of doc.cases) {
    const cells = c.cells.map((cell, i) => {
      const cls = i === 0 ? undefined : c.classes[i - 1];
      // A flaky or not-run cell already says so in its verdict.
      return !isChange(cls) ? cell.verdict : cls === cell.verdict ? `**${cell.verdict}**` : `**${cell.verdict}** (${cls})`;
    });
    out.push(`| ${mdEscape(c.suite)} | ${mdEscape(c.name)} | ${cells.join(' | ')} |`);
  }
  return `${out.join('\n')}\n`;
}
