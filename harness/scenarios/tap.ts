// Reading the TAP or KTAP a test program prints (kselftest's kselftest.h and
// kselftest_harness.h, KUnit's KTAP, TAP 13/14) into a tree of test points, and the verdict
// each point gets as a case. Nesting is recognised in its three written forms: KTAP/TAP 14
// subtests indented by four spaces before their parent's line, a "# Subtest:" heading, and
// the kselftest runner's streams whose every line carries a "# " prefix.

export type TapDirective = 'skip' | 'todo' | 'xfail' | 'xpass' | 'error';

export interface TapPoint {
  ok: boolean;
  number: number;
  /** As printed, without a leading "- "; may be empty (kselftest's "ok 3 # SKIP why"). */
  description: string;
  directive?: { kind: TapDirective; reason: string };
  /** The diagnostic lines ("# ...") printed since the previous point, without the "#". */
  diagnostics: string[];
  /** Points of a nested stream that belongs to this one (printed before it). */
  subtests: TapStream;
  /** 1-based line of the point in the whole output. */
  line: number;
}

export interface TapStream {
  plan?: { count: number; skip?: string };
  points: TapPoint[];
  bailOut?: string;
  /** What makes the stream incomplete or malformed, one sentence each. */
  problems: string[];
}

interface Line {
  text: string;
  no: number;
}

const POINT_RE = /^(not ok|ok)\b\s*(\d+)?\s*(?:-\s*)?(.*)$/;
const PLAN_RE = /^1\.\.(\d+)\s*(?:#\s*(.*))?$/;
const VERSION_RE = /^K?TAP version \d+$/;
const DIRECTIVES: Record<string, TapDirective> = { skip: 'skip', todo: 'todo', xfail: 'xfail', xpass: 'xpass', error: 'error' };

/** The directive of a point's text: the first unescaped "#" followed by a directive word. */
function splitDirective(rest: string): { description: string; directive?: TapPoint['directive'] } {
  for (let i = 0; i < rest.length; i++) {
    if (rest[i] === '\\') {
      i++;
      continue;
    }
    if (rest[i] !== '#') continue;
    const m = /^#\s*([A-Za-z]+)\b\s*(.*)$/.exec(rest.slice(i));
    const word = m?.[1]?.toLowerCase();
    const kind = word && (DIRECTIVES[word] ?? (word.startsWith('skip') ? 'skip' : undefined));
    if (kind) return { description: unescape(rest.slice(0, i).trim()), directive: { kind, reason: m![2]!.trim() } };
  }
  return { description: unescape(rest.trim()) };
}

const unescape = (s: string) => s.replace(/\\([\\#])/g, '$1');

const indentOf = (s: string) => /^ */.exec(s)![0].length;

/** kselftest_harness prints "#  RUN  fixture.name ..." before a test whose skip line has no name. */
function harnessName(diagnostics: string[]): string | undefined {
  for (let i = diagnostics.length - 1; i >= 0; i--) {
    const m = /^\s*RUN\s+(\S+)\s+\.\.\.\s*$/.exec(diagnostics[i]!);
    if (m) return m[1];
  }
  return undefined;
}

function parseLevel(lines: Line[]): TapStream {
  const stream: TapStream = { points: [], problems: [] };
  let diagnostics: string[] = [];
  let pending: Line[] = [];
  let pendingPrefixed = false;
  let inYaml = false;
  const nested = (): TapStream => {
    const sub = parseLevel(pending.map((l) => ({ no: l.no, text: pendingPrefixed ? l.text.replace(/^# ?/, '') : l.text.slice(4) })));
    pending = [];
    pendingPrefixed = false;
    return sub;
  };
  for (const l of lines) {
    const text = l.text.replace(/\s+$/, '');
    if (inYaml) {
      if (/^\s+\.\.\.$/.test(text)) inYaml = false;
      else stream.points.at(-1)?.diagnostics.push(text.trim());
      continue;
    }
    if (text === '') continue;
    if (pendingPrefixed && text.startsWith('#')) {
      pending.push(l);
      continue;
    }
    if (!pendingPrefixed && indentOf(text) >= 4) {
      pending.push(l);
      continue;
    }
    if (/^\s+---$/.test(text) && stream.points.length) {
      inYaml = true;
      continue;
    }
    const body = text.trimStart();
    if (body.startsWith('#')) {
      const d = body.replace(/^#\s?/, '');
      if (pending.length === 0 && VERSION_RE.test(d.trim())) {
        pendingPrefixed = true;
        pending.push(l);
        continue;
      }
      diagnostics.push(d);
      continue;
    }
    if (VERSION_RE.test(body)) continue;
    const plan = PLAN_RE.exec(body);
    if (plan) {
      if (stream.plan) stream.problems.push(`line ${l.no}: a second plan line "${body}"`);
      else stream.plan = { count: Number(plan[1]), ...(plan[2] && /^skip/i.test(plan[2]) ? { skip: plan[2].replace(/^skip\w*\s*/i, '') } : {}) };
      continue;
    }
    const bail = /^Bail out!\s*(.*)$/.exec(body);
    if (bail) {
      stream.bailOut = bail[1]!.trim() || 'no reason given';
      break;
    }
    const m = POINT_RE.exec(body);
    if (!m) {
      diagnostics.push(body);
      continue;
    }
    const expected = stream.points.length + 1;
    const number = m[2] !== undefined ? Number(m[2]) : expected;
    if (number !== expected) stream.problems.push(`line ${l.no}: test ${number} where test ${expected} was due`);
    const { description, directive } = splitDirective(m[3]!);
    const subtests = pending.length ? nested() : { points: [], problems: [] };
    const point: TapPoint = { ok: m[1] === 'ok', number, description: description || (harnessName(diagnostics) ?? ''), diagnostics, subtests, line: l.no };
    if (directive) point.directive = directive;
    stream.points.push(point);
    diagnostics = [];
  }
  if (pending.length) {
    // A nested stream with no parent line after it: its program stopped before reporting it.
    const orphan = nested();
    stream.problems.push(`line ${pending[0]?.no ?? orphan.points[0]?.line ?? 0}: a nested stream with no result line after it`);
  }
  if (!stream.bailOut) {
    if (!stream.plan && stream.points.length === 0) stream.problems.push('no TAP plan and no test results');
    else if (!stream.plan) stream.problems.push(`no plan line (${stream.points.length} results)`);
    else if (!stream.plan.skip && stream.plan.count !== stream.points.length) stream.problems.push(`the plan announced ${stream.plan.count} tests, ${stream.points.length} reported`);
  }
  return stream;
}

/** Parse a program's whole output. Anything before the first version line is ignored. */
export function parseTap(output: string): TapStream {
  const lines = output.split('\n').map((text, i) => ({ text, no: i + 1 }));
  const start = lines.findIndex((l) => VERSION_RE.test(l.text.trim()));
  return parseLevel(start > 0 ? lines.slice(start) : lines);
}

/** Every problem of the stream and of its nested streams, nested ones named by their parent. */
export function streamProblems(s: TapStream, prefix = ''): string[] {
  const out = s.problems.map((p) => `${prefix}${p}`);
  if (s.bailOut) out.push(`${prefix}Bail out! ${s.bailOut}`);
  for (const p of s.points) out.push(...streamProblems(p.subtests, `${prefix}${pointName(p)}: `));
  return out;
}

export const pointName = (p: TapPoint) => p.description || `test ${p.number}`;

/**
 * A point's verdict: ok passed, not ok failed; SKIP (on either) not run; TODO not ok an
 * expected failure, TODO ok an unexpected pass; kselftest's XFAIL an expected failure, its
 * XPASS an unexpected pass, its "# error" a failure.
 */
export function pointVerdict(p: TapPoint): 'passed' | 'failed' | 'skipped' | 'expected-failure' | 'unexpectedly-passed' {
  switch (p.directive?.kind) {
    case 'skip':
      return 'skipped';
    case 'todo':
      return p.ok ? 'unexpectedly-passed' : 'expected-failure';
    case 'xfail':
      return 'expected-failure';
    case 'xpass':
      return 'unexpectedly-passed';
    case 'error':
      return 'failed';
    default:
      return p.ok ? 'passed' : 'failed';
  }
}

/** Every point, depth first with a parent before its subtests, with its path of names. */
export function flattenPoints(s: TapStream, parent: string[] = []): { path: string[]; point: TapPoint }[] {
  const out: { path: string[]; point: TapPoint }[] = [];
  const seen = new Set<string>();
  for (const p of s.points) {
    let name = pointName(p);
    if (seen.has(name)) name = `${name} (test ${p.number})`;
    seen.add(name);
    const path = [...parent, name];
    out.push({ path, point: p });
    out.push(...flattenPoints(p.subtests, path));
  }
  return out;
}
