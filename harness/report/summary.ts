// The short human summary printed at the end of a run: what ran, what did not go as
// expected (expected and actual side by side), and why cases did not run.
import type { CaseResult } from '../scenarios/index.js';
import { countVerdicts, isAsExpected } from '../scenarios/index.js';
import { effectiveStatus, exitCodeFor } from './status.js';
import { shellLine } from '../common/shell.js';
import { caseTitle, fmtSeconds } from './text.js';
import { formatFrame } from '../kernel/crashtrace.js';
import type { RunResults } from './types.js';

const EXCERPT_LINES = 12;
const TRACE_FRAMES = 16;

function failureLines(c: CaseResult): string[] {
  const out: string[] = [];
  if (c.failure) {
    out.push(`  ${c.failure.step}`, `    expected: ${c.failure.expected}`, `    actual:   ${c.failure.actual}`);
  }
  // The start of a console excerpt matters most: the report's first line and frames.
  const excerpt = (text: string) => {
    const lines = text.trimEnd().split('\n');
    out.push('  console:', ...lines.slice(0, EXCERPT_LINES).map((l) => `    | ${l}`));
    if (lines.length > EXCERPT_LINES) out.push(`    | ... ${lines.length - EXCERPT_LINES} more line(s) in results.json and console.log`);
  };
  if (c.crash) {
    if (!c.failure) out.push(`  the kernel crashed: ${c.crash.reason}`);
    excerpt(c.crash.excerpt);
    const frames = c.crash.frames ?? [];
    if (frames.length) {
      out.push(`  stack trace${c.crash.consoleLine ? ` (console.log line ${c.crash.consoleLine})` : ''}${c.crash.decodeNote ? `: ${c.crash.decodeNote}` : ''}:`);
      out.push(...frames.slice(0, TRACE_FRAMES).map((f) => `    ${formatFrame(f)}`));
      if (frames.length > TRACE_FRAMES) out.push(`    ... ${frames.length - TRACE_FRAMES} more frame(s) in results.json`);
    }
  }
  const unknownWarnings = (c.warnings ?? []).filter((w) => !w.knownIssue);
  for (const w of unknownWarnings) {
    out.push(`  the kernel warned: ${w.kind}: ${w.text}`);
    excerpt(w.excerpt);
  }
  if (!c.failure && !c.crash && !unknownWarnings.length && c.reason) out.push(`  ${c.reason}`);
  if (c.restoredFromSnapshot) out.push(`  the suite went on on a copy of the guest restored from its snapshot (--isolate snapshot)`);
  if (c.requirementsUnjudged) out.push(`  its requirements (${c.requires?.join(', ')}) were not checked: the kernel's config is unknown (give --config)`);
  return out;
}

/** A patch in one line: its subject (or file), its hash's start, and --patch when the command line gave it. */
export const patchTitle = (p: NonNullable<RunResults['patches']>[number]): string => `${p.subject ?? p.file} (${p.sha256.slice(0, 12)}${p.from === '--patch' ? ', --patch' : ''})`;

/** What the guests and their QEMU could reach, in one line. */
export function confinementLine(c: NonNullable<RunResults['confinement']>): string {
  const net = c.network === 'confined' ? 'network confined (nothing but its forwarded SSH port)' : `network OUTBOUND allowed (${c.networkBy} asked for it)`;
  return `guest: ${net}; QEMU ${c.sandbox ? 'in its seccomp sandbox' : 'without a seccomp sandbox (this QEMU has none)'}, as ${c.user}`;
}

export function toSummary(r: RunResults): string {
  const out: string[] = [];
  const k = r.kernel;
  const facts = [k.arch, k.accelerator ? `accelerator ${k.accelerator}` : undefined].filter(Boolean).join(', ');
  out.push(`ktrial ${r.trial}${k.release ? `: kernel ${k.release}${facts ? ` (${facts})` : ''}` : ''}`);
  if (r.patches?.length) out.push(`patches: ${r.patches.length}: ${r.patches.map(patchTitle).join('; ')}`);
  if (r.confinement) out.push(confinementLine(r.confinement));
  if (r.phases.length) out.push(`phases: ${r.phases.map((p) => `${p.phase} ${fmtSeconds(p.seconds)}${p.status === 'ok' ? '' : ` (${p.status})`}`).join(', ')}`);
  const real = r.cases.filter((c) => c.kind === 'case');
  const n = countVerdicts(real);
  const parts = [
    `${n.passed} passed`,
    n.failed ? `${n.failed} failed` : '',
    n['expected-failure'] ? `${n['expected-failure']} expected failure${n['expected-failure'] > 1 ? 's' : ''}` : '',
    n['unexpectedly-passed'] ? `${n['unexpectedly-passed']} unexpectedly passed` : '',
    n.flaky ? `${n.flaky} flaky` : '',
    n['not-run'] ? `${n['not-run']} not run` : '',
  ].filter(Boolean);
  out.push(`cases: ${n.total} (${parts.join(', ')})`);
  if (r.shard) out.push(`shard ${r.shard.index}/${r.shard.count}: ${r.shard.cases.length} of the ${r.shard.suites.reduce((s, x) => s + x.cases, 0)} cases; the others belong to the other shards (ktrial merge joins them)`);
  if (r.mergedFrom) out.push(`merged from ${r.mergedFrom.length} shards: ${r.mergedFrom.map((m) => `${m.shard} ${m.dir} (${m.status}, exit ${m.exitCode})`).join('; ')}`);

  for (const c of r.cases) {
    const where = c.where ? ` (${c.where})` : '';
    switch (c.verdict) {
      case 'failed':
        out.push(`${c.crash ? 'CRASHED' : 'FAILED'} ${caseTitle(c)}${where}`, ...failureLines(c));
        break;
      case 'unexpectedly-passed':
        out.push(`UNEXPECTEDLY PASSED ${caseTitle(c)}${where}`, `  known issue: ${c.knownIssue?.reason ?? ''}${c.knownIssue?.finding ? ` (${c.knownIssue.finding})` : ''}`, '  if it is fixed, remove it from the known issues');
        break;
      case 'flaky':
        out.push(`FLAKY ${caseTitle(c)}${where}: ${c.runs?.join(', ') ?? ''}`, ...failureLines(c));
        break;
      case 'expected-failure':
        out.push(`expected failure ${caseTitle(c)}: ${c.knownIssue?.reason ?? c.reason ?? ''}${c.knownIssue?.finding ? ` (${c.knownIssue.finding})` : ''}`);
        break;
      default:
        break;
    }
  }

  const notRun = new Map<string, number>();
  for (const c of r.cases) if (c.verdict === 'not-run') notRun.set(c.reason ?? 'not run', (notRun.get(c.reason ?? 'not run') ?? 0) + 1);
  if (notRun.size) {
    out.push('not run:');
    for (const [reason, count] of notRun) out.push(`  ${count} case${count > 1 ? 's' : ''}: ${reason}`);
  }
  for (const note of r.notes ?? []) out.push(`note: ${note}`);
  if (r.error) {
    out.push(`${r.error.class} error: ${r.error.message}`);
    if (r.error.excerpt) out.push(...r.error.excerpt.trimEnd().split('\n').slice(-EXCERPT_LINES).map((l) => `  | ${l}`));
    if (r.error.hint) out.push(`  what to do: ${r.error.hint}`);
  }
  const code = exitCodeFor(r);
  const status = effectiveStatus(r);
  const verdict =
    status === 'ok'
      ? 'every case as expected'
      : status === 'unexpected'
        ? `${r.cases.filter((c) => !isAsExpected(c)).length} case(s) not as expected`
        : status === 'kernel'
          ? 'the kernel failed'
          : status === 'host'
            ? 'a host problem stopped the run'
            : status === 'bad-input'
              ? 'the trial input is not valid'
              : 'interrupted';
  if (r.rerun) out.push(`re-run: ${shellLine(r.rerun.command)}   (ktrial ${r.rerun.ktrial})`);
  out.push(`result: ${verdict} (exit ${code})`);
  return `${out.join('\n')}\n`;
}
