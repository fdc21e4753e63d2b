// JUnit XML, the common denominator of CI dashboards: a testsuite per scenario suite.
// failed, unexpectedly passed, flaky -> <failure>; a kernel crash -> <error>; not run and
// expected failures -> <skipped>. A run error becomes an erroring "(run)" test case.
import type { CaseResult } from '../scenarios/index.js';
import { effectiveStatus, exitCodeFor } from './status.js';
import { patchTitle } from './summary.js';
import type { RunResults } from './types.js';

// XML 1.0 allows tab, newline, carriage return and characters from space on.
const INVALID_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;

export function xmlEscape(s: string): string {
  return s.replace(INVALID_XML, '?').replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;').replace(/'/g, '&apos;');
}

const attr = (name: string, v: string | number) => ` ${name}="${xmlEscape(String(v))}"`;
const time = (s: number) => s.toFixed(3);

function details(c: CaseResult): string {
  const parts: string[] = [];
  if (c.failure) {
    parts.push(`${c.failure.step}`, `expected: ${c.failure.expected}`, `actual:   ${c.failure.actual}`);
    if (c.failure.command) parts.push(`command:  ${c.failure.command}`);
    if (c.failure.output) parts.push(c.failure.output);
  }
  if (c.runs) parts.push(`runs: ${c.runs.join(', ')}`);
  if (c.knownIssue) parts.push(`known issue: ${c.knownIssue.reason}${c.knownIssue.finding ? ` (${c.knownIssue.finding})` : ''}`);
  if (c.where) parts.push(`at ${c.where}`);
  for (const w of c.warnings ?? []) parts.push(`kernel warning${w.knownIssue ? ` (known: ${w.knownIssue.reason})` : ''}: ${w.kind}: ${w.text}`, 'console:', w.excerpt);
  return parts.join('\n');
}

function testcase(c: CaseResult, classname: string): string {
  const open = `    <testcase${attr('classname', classname)}${attr('name', c.name)}${attr('time', time(c.seconds))}`;
  const body = (tag: string, type: string, message: string, text: string) =>
    `${open}>\n      <${tag}${attr('type', type)}${attr('message', message)}${text ? `>${xmlEscape(text)}</${tag}>` : '/>'}\n    </testcase>`;
  switch (c.verdict) {
    case 'passed':
      return `${open}/>`;
    case 'not-run':
      return `${open}>\n      <skipped${attr('message', `not run: ${c.reason ?? ''}`)}/>\n    </testcase>`;
    case 'expected-failure':
      return `${open}>\n      <skipped${attr('message', `expected failure: ${c.reason ?? ''}`)}/>\n    </testcase>`;
    case 'failed':
      if (c.crash) return body('error', 'kernel-crash', c.reason ?? `the kernel crashed: ${c.crash.reason}`, [details(c), 'console:', c.crash.excerpt].filter(Boolean).join('\n'));
      return body('failure', !c.failure && c.warnings?.some((w) => !w.knownIssue) ? 'kernel-warning' : 'failed', c.reason ?? 'failed', details(c));
    case 'unexpectedly-passed':
      return body('failure', 'unexpected-pass', c.reason ?? 'passed although a known issue says it fails', details(c));
    case 'flaky':
      return body('failure', 'flaky', c.reason ?? 'outcome varied between runs', details(c));
  }
}

export function toJunit(r: RunResults): string {
  const groups = new Map<string, CaseResult[]>();
  for (const c of r.cases) {
    if (!groups.has(c.suite)) groups.set(c.suite, []);
    groups.get(c.suite)!.push(c);
  }
  const count = (cs: CaseResult[]) => ({
    tests: cs.length,
    failures: cs.filter((c) => (c.verdict === 'failed' && !c.crash) || c.verdict === 'unexpectedly-passed' || c.verdict === 'flaky').length,
    errors: cs.filter((c) => c.verdict === 'failed' && c.crash).length,
    skipped: cs.filter((c) => c.verdict === 'not-run' || c.verdict === 'expected-failure').length,
    time: cs.reduce((s, c) => s + c.seconds, 0),
  });
  const props = [
    ...Object.entries(r.kernel).filter(([, v]) => v !== undefined).map(([k, v]) => [`kernel.${k}`, String(v)]),
    ...(r.patches ?? []).map((p, i) => [`patch.${i + 1}`, patchTitle(p)]),
    ['status', effectiveStatus(r)],
    ['exit_code', String(exitCodeFor(r))],
    ...r.phases.map((p) => [`phase.${p.phase}`, `${p.status} ${p.seconds.toFixed(1)}s`]),
  ];
  const properties = ['    <properties>', ...props.map(([k, v]) => `      <property${attr('name', k!)}${attr('value', v!)}/>`), '    </properties>'];
  const suites: string[] = [];
  const totals = count(r.cases);
  for (const [name, cs] of groups) {
    const n = count(cs);
    suites.push(
      `  <testsuite${attr('name', name)}${attr('tests', n.tests)}${attr('failures', n.failures)}${attr('errors', n.errors)}${attr('skipped', n.skipped)}${attr('time', time(n.time))}>`,
      ...properties,
      ...cs.map((c) => testcase(c, `${r.trial}.${name}`)),
      '  </testsuite>',
    );
  }
  if (r.error) {
    totals.tests++;
    totals.errors++;
    suites.push(
      `  <testsuite${attr('name', 'ktrial')}${attr('tests', 1)}${attr('failures', 0)}${attr('errors', 1)}${attr('skipped', 0)}${attr('time', time(0))}>`,
      ...properties,
      `    <testcase${attr('classname', `${r.trial}.ktrial`)}${attr('name', '(run)')}${attr('time', time(0))}>`,
      `      <error${attr('type', r.error.class)}${attr('message', r.error.message)}>${xmlEscape([r.error.message, r.error.hint ? `what to do: ${r.error.hint}` : '', r.error.excerpt ?? ''].filter(Boolean).join('\n'))}</error>`,
      '    </testcase>',
      '  </testsuite>',
    );
  }
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites${attr('name', r.trial)}${attr('tests', totals.tests)}${attr('failures', totals.failures)}${attr('errors', totals.errors)}${attr('skipped', totals.skipped)}${attr('time', time(r.seconds ?? totals.time))}>`,
    ...suites,
    '</testsuites>',
    '',
  ].join('\n');
}
