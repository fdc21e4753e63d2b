// The in-guest plan: every suite turned into the exact commands the SSH runner
// (harness/scenarios/run.ts) would send, in its order, as calls to images/lava/runner.sh.
// Values captured in the guest stay @KTV@name@ markers until the guest fills them in; the
// guest judges each step only to steer (harness/lava/ingest.ts re-judges with the host's code).
import { readFileSync } from 'node:fs';
import { repoPath } from '../common/paths.js';
import { shellQuote } from '../common/shell.js';
import { stepCommand } from '../scenarios/agent.js';
import { actionCount } from '../scenarios/agent.js';
import { expandSuite, isPlainRoot } from '../scenarios/expand.js';
import { AGENT_PATH } from '../scenarios/names.js';
import { selectedByOnly } from '../scenarios/run.js';
import { missingRequirements } from '../scenarios/verdicts.js';
import { substitute, substituteDeep, UnsetVariable } from '../scenarios/vars.js';
import type { KernelConfig } from '../config/kconfig.js';
import type { Case, Step, Suite } from '../scenarios/types.js';

/** The SSH runner's fixed commands and limits (run.ts): agent check, helper reaping. */
export const AGENT_CHECK = `${AGENT_PATH} --version`;
const PROBE_S = 15;
const REAP_S = 20;
export const reapCommand = (tag?: string) => `${AGENT_PATH} reap${tag ? ` ${tag}` : ''}`;

const marker = (name: string) => `@KTV@${name}@`;

/** LAVA's name of a case: its index and a slug of its name (LAVA takes [-_.a-zA-Z0-9]). */
export function lavaCaseId(c: Pick<Case, 'index' | 'name'>): string {
  return `${c.index}_${c.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80)}`;
}

/** Why the guest cannot judge a step as the host would, if it cannot. */
function unsupported(step: Step): string | undefined {
  const texts: string[] = [];
  const regexes: string[] = [];
  const e = step.expect;
  for (const c of [e.output, ...Object.values(e.values ?? {})]) {
    if (c?.equals !== undefined) texts.push(c.equals);
    if (c?.match !== undefined) regexes.push(c.match);
  }
  if (step.tap) return 'a tap step (the in-guest path does not read TAP)';
  if (step.capture.some((c) => c.match !== undefined)) return 'a capture with "match" (the guest\'s awk has no match groups)';
  if ([...texts, ...regexes].some((t) => t.includes('\t'))) return 'an expected value with a tab (the guest\'s judge splits on tabs)';
  // JavaScript regular expressions the guest's POSIX ERE would read differently.
  const notEre = regexes.find((r) => /\\[dDsSwWbB]|\(\?|[*+?}]\?/.test(r));
  if (notEre !== undefined) return `the regular expression /${notEre}/ is not a POSIX ERE`;
  return undefined;
}

/** The judge spec images/lava/judge.awk reads: kind, count, outcome, argument, checks, captures. */
function judgeSpec(step: Step): string {
  const e = step.expect;
  const plainSh = step.kind === 'sh' && step.pre.length === 0 && isPlainRoot(step.as);
  const head = plainSh ? ['sh', '0'] : step.kind === 'sh' ? ['shw', String(step.pre.length)] : ['agent', String(actionCount(step))];
  const fields = [...head, e.outcome, e.outcome === 'errno' ? e.errno! : e.outcome === 'exit' ? String(e.exit) : '-'];
  const checks: [string, { equals?: string; match?: string }][] = [...(e.output ? [['output', e.output] as [string, typeof e.output]] : []), ...Object.entries(e.values ?? {})];
  for (const [field, c] of checks) {
    if (c.equals !== undefined) fields.push('c', field, 'eq', c.equals);
    if (c.match !== undefined) fields.push('c', field, 're', c.match);
  }
  for (const c of step.capture) fields.push('v', c.variable, c.field);
  return fields.join('\t');
}

/** Every variable a step list captures (spawn's NAME.pid included). */
const capturedIn = (steps: readonly Step[]) => steps.flatMap((s) => s.capture.map((c) => c.variable));

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

/** One step as a plan line, or why the guest cannot take it. */
function stepLine(step: Step, vars: Record<string, string>, tag: string, limitMs: number, tolerant: boolean): { line: string } | { unsupported: string } {
  const why = unsupported(step);
  if (why) return { unsupported: why };
  let s: Step;
  try {
    s = substituteDeep(step, vars);
  } catch (err) {
    if (!(err instanceof UnsetVariable)) throw err;
    // As the SSH runner: an unset variable fails a step and skips a cleanup step.
    return { line: tolerant ? '' : 'kt_failed=1' };
  }
  const limit = seconds(Math.min(limitMs, s.timeoutMs ?? Infinity));
  return { line: ['kt_step', String(limit), shellQuote(stepCommand(s, AGENT_PATH, tag)), shellQuote(judgeSpec(s)), ...(tolerant ? ['t'] : [])].join(' ') };
}

export interface PlannedCase {
  suite: string;
  index: number;
  name: string;
  /** Why the case does not run in the guest (requirement not met, or beyond the in-guest path). */
  skipped?: { cause: 'missing-requirement' | 'not-in-guest'; detail: string };
}

export interface SuitePlan {
  script: string;
  cases: PlannedCase[];
  /** Set when the suite's setup or cleanup is beyond the in-guest path: no case runs. */
  unsupported?: string;
}

function withDefaults(vars: Record<string, string>, extra: Record<string, string>): Record<string, string> {
  const out = { ...vars };
  for (const [k, v] of Object.entries(extra)) {
    try {
      out[k] = substitute(v, out);
    } catch {
      out[k] = v;
    }
  }
  return out;
}

/** The plan lines of one suite, following SuiteRun.run() step for step. */
export function planSuite(suite: Suite, opts: { kernelConfig?: KernelConfig; caseTimeoutMs?: number; only?: readonly string[] }): SuitePlan {
  // A case --only leaves out is not in the job; the host's judging reports it as filtered.
  const cases = expandSuite(suite).filter((c) => selectedByOnly(opts.only, c));
  const captured = new Set([...capturedIn(suite.setup), ...capturedIn(suite.cleanup), ...cases.flatMap((c) => [...capturedIn(c.steps), ...capturedIn(c.cleanup)])]);
  const markers = Object.fromEntries([...captured].map((n) => [n, marker(n)]));
  const globals = { ...withDefaults({ suite: suite.name, agent: AGENT_PATH }, suite.vars), ...markers };
  const suiteLimit = opts.caseTimeoutMs ?? suite.timeoutMs;
  const lines: string[] = [`kt_suite ${shellQuote(suite.name)}`, `kt_exec ${PROBE_S} ${shellQuote(AGENT_CHECK)}`];
  const planned: PlannedCase[] = [];

  const block = (steps: readonly Step[], vars: Record<string, string>, tag: string, limitMs: number, tolerant: boolean): string[] | string => {
    const out: string[] = [];
    for (const st of steps) {
      const l = stepLine(st, vars, tag, limitMs, tolerant);
      if ('unsupported' in l) return l.unsupported;
      if (l.line) out.push(l.line);
    }
    return out;
  };

  const setup = block(suite.setup, globals, `${suite.name}.setup`, suiteLimit, false);
  const cleanup = block(suite.cleanup, globals, `${suite.name}.cleanup`, suiteLimit, true);
  const suiteWhy = suite.files.length
    ? 'the suite\'s files go into the guest over SSH, which the in-guest path does not have'
    : typeof setup === 'string'
      ? `suite setup: ${setup}`
      : typeof cleanup === 'string'
        ? `suite cleanup: ${cleanup}`
        : undefined;
  if (suiteWhy !== undefined || typeof setup === 'string' || typeof cleanup === 'string') {
    for (const c of cases) planned.push({ suite: suite.name, index: c.index, name: c.name, skipped: { cause: 'not-in-guest', detail: suiteWhy! } });
    return { script: '', cases: planned, unsupported: suiteWhy! };
  }
  lines.push(...setup, `kt_case_id=setup; kt_case_end`, 'if [ $kt_failed -eq 0 ]; then', ':');
  for (const c of cases) {
    const id = lavaCaseId(c);
    const missing = missingRequirements(c.requires, opts.kernelConfig);
    if (missing.length) {
      planned.push({ suite: suite.name, index: c.index, name: c.name, skipped: { cause: 'missing-requirement', detail: `requirement not met: ${missing.join('; ')}` } });
      lines.push(`kt_skip ${shellQuote(id)}`);
      continue;
    }
    const vars = withDefaults({ ...globals, case: c.name, case_index: String(c.index) }, c.vars);
    Object.assign(vars, markers);
    const tag = `${suite.name}.${c.index}`;
    const limit = opts.caseTimeoutMs ?? c.timeoutMs;
    const steps = block(c.steps, vars, tag, limit, false);
    const clean = block(c.cleanup, vars, tag, limit, true);
    if (typeof steps === 'string' || typeof clean === 'string') {
      planned.push({ suite: suite.name, index: c.index, name: c.name, skipped: { cause: 'not-in-guest', detail: `the in-guest path cannot judge this case: ${typeof steps === 'string' ? steps : clean}` } });
      lines.push(`kt_skip ${shellQuote(id)}`);
      continue;
    }
    planned.push({ suite: suite.name, index: c.index, name: c.name });
    lines.push(`kt_case ${shellQuote(id)}`, ...steps, ...clean, `kt_exec ${REAP_S} ${shellQuote(reapCommand(tag))}`, 'kt_case_end');
  }
  lines.push('fi', 'kt_suite_cleanup', ...cleanup, `kt_exec ${REAP_S} ${shellQuote(reapCommand())}`);
  return { script: lines.join('\n'), cases: planned };
}

/** The whole plan file: the runner, its judge, then each suite as a function named by its position. */
export function planScript(suites: readonly SuitePlan[]): string {
  const runner = readFileSync(repoPath('images', 'lava', 'runner.sh'), 'utf8');
  const judge = readFileSync(repoPath('images', 'lava', 'judge.awk'), 'utf8');
  const parts = [
    '#!/bin/sh',
    runner.trimEnd(),
    'mkdir -p $KT',
    `cat > $KT/judge.awk <<'KTRIAL_JUDGE'\n${judge.trimEnd()}\nKTRIAL_JUDGE`,
    // Kernel messages would break the record lines; a crash still shows (KERN_EMERG).
    'dmesg -n 1 2>/dev/null',
    ...suites.map((s, i) => `kt_suite_${i + 1}() {\n${s.script || ':'}\n}`),
    'case "$1" in',
    ...suites.map((_s, i) => `${i + 1}) kt_suite_${i + 1} ;;`),
    '*) echo "usage: $0 SUITE-NUMBER" >&2; exit 2 ;;',
    'esac',
  ];
  return `${parts.join('\n')}\n`;
}
