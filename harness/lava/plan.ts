// The in-guest plan: a suite's program (harness/scenarios/program.ts), the one the SSH
// runner executes, written out as calls to images/lava/runner.sh. Every value goes to the
// runner as a word of its own, so the guest's shell reads none of them as shell text; values
// captured in the guest stay @KTV@name@ markers in their word until the guest fills them in.
// The guest judges each step (images/lava/judge.awk, from the judging data of the program)
// only to steer; harness/lava/ingest.ts judges the records by running the same program.
import { readFileSync } from 'node:fs';
import { repoPath } from '../common/paths.js';
import { shellLine } from '../common/shell.js';
import type { GuestCommand, Reading } from '../scenarios/agent.js';
import type { CaseProgram, GuestOp, Program, StepOp } from '../scenarios/program.js';
import { stringsIn, substituteDeep, varRefs } from '../scenarios/vars.js';
import type { Case } from '../scenarios/types.js';

const MARKER = '@KTV@';
const marker = (name: string) => `${MARKER}${name}@`;

/** LAVA's name of a case: its index and a slug of its name (LAVA takes [-_.a-zA-Z0-9]). */
export function lavaCaseId(c: Pick<Case, 'index' | 'name'>): string {
  return `${c.index}_${c.name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '').slice(0, 80)}`;
}

/** Why the guest cannot judge a step as the host would, if it cannot. */
function unsupported(op: StepOp): string | undefined {
  const e = op.expect;
  const regexes = [e.output, ...Object.values(e.values ?? {})].flatMap((c) => (c?.match !== undefined ? [c.match] : []));
  if (op.tap) return 'a tap step (the in-guest path does not read TAP)';
  if (op.capture.some((c) => c.match !== undefined)) return 'a capture with "match" (the guest\'s awk has no match groups)';
  // JavaScript regular expressions the guest's POSIX ERE would read differently.
  const notEre = regexes.find((r) => /\\[dDsSwWbB]|\(\?|[*+?}]\?/.test(r));
  if (notEre !== undefined) return `the regular expression /${notEre}/ is not a POSIX ERE`;
  if (stringsIn([op.command, op.expect, op.capture]).some((s) => s.includes(MARKER))) return `a value holds "${MARKER}", which marks captured values in the in-guest plan`;
  return undefined;
}

/** The words of a command for kt_exec and kt_step: sh SCRIPT, or argv WORD... */
const commandWords = (c: GuestCommand): string[] => ('script' in c ? ['sh', c.script] : ['argv', ...c.argv]);

const readingWords = (r: Reading): string[] => (r.kind === 'sh' ? ['sh', '0'] : r.kind === 'sh-in-agent' ? ['sh-in-agent', String(r.pre)] : ['agent', String(r.results)]);

/** The step's judging data, as images/lava/judge.awk reads it: reading, count, outcome, argument, checks, captures. */
function judgeWords(op: StepOp): string[] {
  const e = op.expect;
  const words = [...readingWords(op.read), e.outcome, e.outcome === 'errno' ? e.errno! : e.outcome === 'exit' ? String(e.exit) : '-'];
  for (const [field, c] of [...(e.output ? [['output', e.output] as const] : []), ...Object.entries(e.values ?? {})]) {
    if (c.equals !== undefined) words.push('c', field, 'eq', c.equals);
    if (c.match !== undefined) words.push('c', field, 're', c.match);
  }
  for (const c of op.capture) words.push('v', c.variable, c.field);
  return words;
}

const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

const execLine = (op: GuestOp) => shellLine(['kt_exec', String(seconds(op.limitMs)), ...commandWords(op.command)]);

/** One step as a plan line (within a case or suite limit of limitMs), or why the guest cannot take it. */
function stepLine(op: StepOp, limitMs: number): { line: string } | { unsupported: string } {
  const why = unsupported(op);
  if (why) return { unsupported: why };
  // Every reference left is to a value captured in the guest.
  const s = substituteDeep(op, Object.fromEntries(stringsIn(op).flatMap(varRefs).map((n) => [n, marker(n)])));
  const judging = judgeWords(s);
  return { line: shellLine(['kt_step', s.tolerant ? 't' : '-', String(seconds(Math.min(limitMs, s.limitMs ?? Infinity))), String(judging.length), ...judging, ...commandWords(s.command)]) };
}

/** Plan lines for steps, or why the guest cannot take one of them. */
function stepLines(ops: readonly StepOp[], limitMs: number): string[] | string {
  const out: string[] = [];
  for (const op of ops) {
    const l = stepLine(op, limitMs);
    if ('unsupported' in l) return l.unsupported;
    out.push(l.line);
  }
  return out;
}

export interface SuitePlan {
  script: string;
  /** The program as the guest runs it: a case it cannot take is not run (not-in-guest), with why. */
  program: Program;
  /** Set when the suite's setup or cleanup is beyond the in-guest path: no case runs. */
  unsupported?: string;
}

const notInGuest = (c: CaseProgram, detail: string): CaseProgram => ({ ...c, skip: { cause: 'not-in-guest', detail } });

/** The plan of one suite: its program's commands in the order the SSH runner sends them. */
export function planSuite(program: Program): SuitePlan {
  const setup = stepLines(program.setup, program.limitMs);
  const cleanup = stepLines(program.cleanup, program.limitMs);
  const suiteWhy = program.files.length
    ? 'the suite\'s files go into the guest over SSH, which the in-guest path does not have'
    : typeof setup === 'string'
      ? `suite setup: ${setup}`
      : typeof cleanup === 'string'
        ? `suite cleanup: ${cleanup}`
        : undefined;
  if (suiteWhy !== undefined || typeof setup === 'string' || typeof cleanup === 'string') {
    return { script: '', program: { ...program, cases: program.cases.map((c) => (c.skip ? c : notInGuest(c, suiteWhy!))) }, unsupported: suiteWhy! };
  }
  const lines: string[] = [shellLine(['kt_suite', program.suite]), execLine(program.check), ...setup, 'kt_case_id=setup; kt_case_end', 'if [ $kt_failed -eq 0 ]; then', ':'];
  const cases: CaseProgram[] = [];
  for (const c of program.cases) {
    // A case the selection leaves out is not in the job; the host's judging reports it as filtered.
    if (c.skip?.cause === 'filtered') {
      cases.push(c);
      continue;
    }
    const id = lavaCaseId(c);
    const steps = c.skip ? [] : stepLines(c.steps, c.limitMs);
    const clean = c.skip ? [] : stepLines(c.cleanup, c.limitMs);
    const why = typeof steps === 'string' ? steps : typeof clean === 'string' ? clean : undefined;
    if (c.skip || why !== undefined) {
      cases.push(why !== undefined ? notInGuest(c, `the in-guest path cannot judge this case: ${why}`) : c);
      lines.push(shellLine(['kt_skip', id]));
      continue;
    }
    cases.push(c);
    lines.push(shellLine(['kt_case', id]), ...(steps as string[]), ...(clean as string[]), execLine(c.reap), 'kt_case_end');
  }
  lines.push('fi', 'kt_suite_cleanup', ...cleanup, execLine(program.reap));
  return { script: lines.join('\n'), program: { ...program, cases } };
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
