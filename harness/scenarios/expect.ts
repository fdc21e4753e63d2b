// Judging an observation against an expectation, and describing both in words for the
// report ("expected EPERM, got ok"); captures read values out of a passing result.
import type { Observation } from './agent.js';
import type { Capture, Expectation, Step, ValueCheck } from './types.js';
import { fieldAt, valueText } from './vars.js';

export interface Judgement {
  passed: boolean;
  expected: string;
  actual: string;
}

/** Output as compared: one trailing newline removed (files and commands usually end in one). */
export const normaliseOutput = (s: string) => s.replace(/\r?\n$/, '');

const show = (s: string, max = 160) => {
  const j = JSON.stringify(s);
  return j.length > max ? `${j.slice(0, max - 4)}..."` : j;
};

function describeCheck(c: ValueCheck): string {
  const parts: string[] = [];
  if (c.equals !== undefined) parts.push(show(c.equals));
  if (c.match !== undefined) parts.push(`matching /${c.match}/`);
  return parts.join(' and ');
}

function checkPasses(c: ValueCheck, actual: string | undefined): boolean {
  if (actual === undefined) return false;
  if (c.equals !== undefined && actual !== c.equals) return false;
  if (c.match !== undefined && !new RegExp(c.match).test(actual)) return false;
  return true;
}

export function describeExpectation(e: Expectation): string {
  let head: string;
  switch (e.outcome) {
    case 'ok':
      head = 'ok';
      break;
    case 'errno':
      head = e.errno!;
      break;
    case 'error':
      head = 'any error';
      break;
    case 'exit':
      head = `exit ${e.exit}`;
      break;
    case 'any':
      head = 'any outcome';
      break;
  }
  const details: string[] = [];
  if (e.output) details.push(`output ${describeCheck(e.output)}`);
  for (const [k, c] of Object.entries(e.values ?? {})) details.push(`${k} ${describeCheck(c)}`);
  return [head, ...details].join(', ');
}

function describeActual(obs: Observation, e: Expectation): string {
  switch (obs.kind) {
    case 'problem':
      return obs.problem;
    case 'sh': {
      const out = normaliseOutput(obs.stdout);
      const withOut = e.output !== undefined || (out !== '' && out.length <= 80);
      return `exit ${obs.exitCode}${withOut ? `, output ${show(out)}` : ''}`;
    }
    case 'final': {
      const l = obs.line;
      if (!l.ok) return `${l.errno ?? 'error'}${l.syscall || l.message ? ` (${[l.syscall, l.message].filter(Boolean).join(': ')})` : ''}`;
      const parts = ['ok'];
      const out = typeof l.output === 'string' ? normaliseOutput(l.output) : undefined;
      if (out !== undefined && (e.output !== undefined || out.length <= 80)) parts.push(`output ${show(out)}`);
      for (const k of Object.keys(e.values ?? {})) {
        const v = valueText(fieldAt(l, k));
        parts.push(`${k} ${v === undefined ? 'absent' : show(v)}`);
      }
      return parts.join(', ');
    }
  }
}

/** The expectation a per-variable step has for the variable's value, if any. */
export function expectationFor(by: NonNullable<Step['expectBy']>, vars: Readonly<Record<string, string>>): Expectation | undefined {
  const value = vars[by.variable];
  return (value !== undefined ? by.when[value] : undefined) ?? by.when['*'];
}

export function judge(e: Expectation, obs: Observation): Judgement {
  const expected = describeExpectation(e);
  const actual = describeActual(obs, e);
  let passed = false;
  if (obs.kind === 'sh') {
    const code = e.outcome === 'exit' ? e.exit! : 0;
    passed = e.outcome === 'any' || ((e.outcome === 'ok' || e.outcome === 'exit') && obs.exitCode === code && (!e.output || checkPasses(e.output, normaliseOutput(obs.stdout))));
  } else if (obs.kind === 'final') {
    const l = obs.line;
    if (e.outcome === 'errno') passed = !l.ok && l.errno === e.errno;
    else if (e.outcome === 'error') passed = !l.ok;
    else if (e.outcome === 'any') passed = true;
    else if (e.outcome === 'ok') {
      passed = l.ok;
      if (passed && e.output) passed = checkPasses(e.output, typeof l.output === 'string' ? normaliseOutput(l.output) : undefined);
      for (const [k, c] of Object.entries(e.values ?? {})) if (passed) passed = checkPasses(c, valueText(fieldAt(l, k)));
    }
  }
  return { passed, expected, actual };
}

/** Values for the step's captures, or why one could not be taken. */
export function captureValues(captures: readonly Capture[], obs: Observation): { vars: Record<string, string> } | { error: string } {
  const vars: Record<string, string> = {};
  for (const c of captures) {
    let v: string | undefined;
    if (obs.kind === 'sh') {
      const fields: Record<string, string> = { stdout: obs.stdout, stderr: obs.stderr, output: normaliseOutput(obs.stdout), exit: String(obs.exitCode) };
      v = fields[c.field];
    } else if (obs.kind === 'final') {
      v = valueText(fieldAt(obs.line, c.field));
      if (c.field === 'output' && v !== undefined) v = normaliseOutput(v);
    }
    if (v === undefined) return { error: `cannot capture \${${c.variable}}: the result has no field "${c.field}"` };
    if (c.match !== undefined) {
      const m = new RegExp(c.match).exec(v);
      if (!m) return { error: `cannot capture \${${c.variable}}: ${show(v)} does not match /${c.match}/` };
      v = m[1] ?? m[0];
    }
    vars[c.variable] = v;
  }
  return { vars };
}
