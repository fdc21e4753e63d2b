// Reading a LAVA job's log back: lava-run's stdout (one YAML flow mapping per line) or a
// lab's job log (the same mappings as a YAML list). The guest's KT* console lines carry the
// raw result of every command the plan ran; the host's own scenario runner executes the
// suite's program, the one the plan was written from, against them (harness/scenarios/run.ts
// with a recorded GuestExec), so verdicts come from the same code as `ktrial run`'s.
// lava-test-case results are read too (what the lab's UI shows).
import { load } from 'js-yaml';
import { shellLine } from '../common/shell.js';
import { runProgram } from '../scenarios/run.js';
import { notRunResult, whereText } from '../scenarios/verdicts.js';
import type { CaseResult, GuestExec, KnownIssue } from '../scenarios/types.js';
import type { SuitePlan } from './plan.js';

export interface GuestRecord {
  command: string;
  stdout: string;
  stderr: string;
  exitCode: number;
  timedOut: boolean;
}

export interface LavaCaseResult {
  definition: string;
  case: string;
  result: string;
  measurement?: number;
  units?: string;
}

export interface SuiteRecords {
  records: GuestRecord[];
  /** Where each case's records start (KTCASE): its LAVA id's index, or "cleanup". */
  starts: { key: string; at: number }[];
}

export interface LavaLog {
  /** Records per suite, by the name the guest announced (KTSUITE). */
  suites: Map<string, SuiteRecords>;
  results: LavaCaseResult[];
  /** The job's own outcome line, if present ("job" case of the lava definition). */
  jobResult?: string;
}

/** One log line as a mapping, or undefined for anything else. */
function entry(line: string): Record<string, unknown> | undefined {
  const t = line.replace(/^- /, '').trim();
  if (!t.startsWith('{')) return undefined;
  try {
    const v = load(t);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

const b64 = (parts: string[] | undefined) => Buffer.from((parts ?? []).join(''), 'base64').toString('utf8');

/** The command of a record: a script as run (c), or a command's words, each ended by a NUL (a). */
function recordedCommand(script: string[] | undefined, words: string[] | undefined): string {
  return words ? shellLine(b64(words).split('\0').slice(0, -1)) : b64(script);
}

export function parseLavaLog(text: string): LavaLog {
  const out: LavaLog = { suites: new Map(), results: [] };
  let current: SuiteRecords | undefined;
  let parts = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const e = entry(line);
    if (!e) continue;
    if (e.lvl === 'results' && e.msg && typeof e.msg === 'object') {
      const m = e.msg as Record<string, unknown>;
      if (m.definition === 'lava' && m.case === 'job') out.jobResult = String(m.result);
      if (typeof m.case !== 'string' || typeof m.definition !== 'string' || m.definition === 'lava') continue;
      out.results.push({ definition: m.definition, case: m.case, result: String(m.result), ...(m.measurement !== undefined ? { measurement: Number(m.measurement) } : {}), ...(m.units !== undefined ? { units: String(m.units) } : {}) });
      continue;
    }
    if (e.lvl !== 'target' || typeof e.msg !== 'string') continue;
    const words = e.msg.trim().split(' ');
    switch (words[0]) {
      case 'KTSUITE':
        current = { records: [], starts: [] };
        out.suites.set(words.slice(2).join(' '), current);
        parts = new Map();
        break;
      case 'KTCASE':
        if (current && words.length === 3) current.starts.push({ key: words[2]!.split('_')[0]!, at: Number(words[1]) });
        break;
      case 'KTREC':
        if (words.length === 4) {
          const key = `${words[1]} ${words[2]}`;
          parts.set(key, [...(parts.get(key) ?? []), words[3]!]);
        }
        break;
      case 'KTEND':
        if (current && words.length === 4) {
          const seq = words[1]!;
          current.records.push({ command: recordedCommand(parts.get(`${seq} c`), parts.get(`${seq} a`)), stdout: b64(parts.get(`${seq} o`)), stderr: b64(parts.get(`${seq} e`)), exitCode: Number(words[2]), timedOut: words[3] === '1' });
          for (const k of ['c', 'a', 'o', 'e']) parts.delete(`${seq} ${k}`);
        }
        break;
    }
  }
  return out;
}

/**
 * A GuestExec answering from the guest's records in order. A command the guest did not run
 * (the two judgements parted, or the record ends) fails every command until the case is
 * over; the next case starts again at its own records.
 */
class Replay implements GuestExec {
  private pos = 0;
  private probeOk = false;
  ended: string | undefined;
  /** Cases whose records did not match, with why. */
  readonly diverged = new Map<number, string>();

  constructor(private readonly suite: SuiteRecords) {}

  private get records() {
    return this.suite.records;
  }

  /** Called as each case is over: note a divergence, and go to the records after the case. */
  caseDone(index: number): void {
    if (this.ended !== undefined) this.diverged.set(index, this.ended);
    this.ended = undefined;
    this.probeOk = false;
    const i = this.suite.starts.findIndex((s) => s.key === String(index));
    if (i >= 0) this.pos = this.suite.starts[i + 1]?.at ?? this.records.length;
  }

  async exec(command: string): Promise<{ exitCode: number; stdout: string; stderr: string; durationMs: number }> {
    // The runner's liveness probe after a failed command: the guest went on, so it answered.
    if (command === 'true' && (this.probeOk || this.ended !== undefined)) {
      this.probeOk = false;
      return { exitCode: 0, stdout: '', stderr: '', durationMs: 0 };
    }
    if (this.ended === undefined) {
      const r = this.records[this.pos];
      if (!r) this.ended = `the LAVA log has no record of "${command}" (the in-guest run ended early)`;
      else if (r.command !== command) this.ended = `the in-guest run diverged from the host's judgement: the guest ran "${r.command}" where the host expected "${command}"`;
      else {
        this.pos++;
        if (r.timedOut) {
          this.probeOk = true;
          throw new Error('no result within the step\'s time in the guest');
        }
        return { exitCode: r.exitCode, stdout: r.stdout, stderr: r.stderr, durationMs: 0 };
      }
    }
    throw new Error(this.ended);
  }

  kernelCrash(): undefined {
    return undefined;
  }
}

/** The guest's verdict as lava-test-case gave it, against the host's judgement of its records. */
export function lavaDisagreements(cases: readonly CaseResult[], results: readonly LavaCaseResult[], definitionOf: (suite: string) => string, idOf: (c: CaseResult) => string): string[] {
  const notes: string[] = [];
  for (const c of cases) {
    if (c.kind !== 'case' || c.verdict === 'not-run') continue;
    const l = results.find((r) => r.definition.replace(/^\d+_/, '') === definitionOf(c.suite) && r.case === idOf(c));
    // Known issues are the host's reading; the guest reports the raw outcome.
    const raw = c.verdict === 'passed' || c.verdict === 'unexpectedly-passed' ? 'pass' : 'fail';
    if (!l) notes.push(`${c.suite}/${c.name}: no lava-test-case result in the LAVA log`);
    else if (l.result !== raw) notes.push(`${c.suite}/${c.name}: the guest told LAVA "${l.result}", the host's judgement of its records is ${c.verdict}`);
  }
  return notes;
}

/** The verdicts of one suite from its guest records, judged by running the plan's program on them. */
export async function judgeSuite(plan: SuitePlan, records: SuiteRecords | undefined, opts: { knownIssues?: readonly KnownIssue[] }): Promise<CaseResult[]> {
  const { program } = plan;
  if (!records || plan.unsupported !== undefined) {
    return program.cases.map((c) =>
      notRunResult({ suite: program.suite, name: c.name, index: c.index, requires: c.requires, ...(c.where ? { where: whereText(c.where) } : {}) }, c.skip?.cause ?? 'guest-lost', c.skip?.detail ?? 'the LAVA log has no record of this suite (the job ended before it ran)'),
    );
  }
  const replay = new Replay(records);
  const results = await runProgram(program, replay, { ...(opts.knownIssues ? { knownIssues: opts.knownIssues } : {}), onCase: (r) => r.kind === 'case' && replay.caseDone(r.index) });
  return results.map((r) => {
    // Where the records part from the host's run, the case is not judged.
    const why = r.kind === 'case' ? replay.diverged.get(r.index) : undefined;
    if (why !== undefined) return notRunResult({ suite: r.suite, name: r.name, index: r.index, ...(r.requires ? { requires: r.requires } : {}), ...(r.where ? { where: r.where } : {}) }, 'not-in-guest', why);
    return r;
  });
}
