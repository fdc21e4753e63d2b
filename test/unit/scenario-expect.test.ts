// Expectation matching on the agent's JSON lines: ok, errno, output and values; the agent's
// own problems (bad arguments, failed pre-step or identity change, an earlier action
// failing) never match an expectation; captures read values from a passing result.
import t from 'tap';
import { interpret, readingOf, type ExecResult } from '../../harness/scenarios/agent.js';
import { captureValues, judge } from '../../harness/scenarios/expect.js';
import { expectationOf, ROOT } from '../../harness/scenarios/load.js';
import type { Action, Step } from '../../harness/scenarios/types.js';

const step = (actions: Action[], extra: Partial<Step> = {}): Step => ({ kind: 'agent', as: ROOT, pre: [], actions, expect: { outcome: 'ok' }, capture: [], ...extra });
const run = (stdout: string, exitCode = 0, stderr = ''): ExecResult => ({ exitCode, stdout, stderr, durationMs: 5 });
const line = (index: number, action: string, ok: boolean, extra: Record<string, unknown> = {}, stage = 'action') =>
  JSON.stringify({ action, index, stage, ok, ...(ok ? {} : { errno: 'EPERM', errnum: 1, syscall: action, message: 'Operation not permitted' }), ...extra });

const unshare = step([{ kind: 'unshare', flags: ['uts'] }]);
const verdict = (expect: Parameters<typeof expectationOf>[0], s: Step, r: ExecResult) => judge(expectationOf(expect), interpret(readingOf(s), r));

t.test('ok and errno outcomes of the final action', async (t) => {
  t.same(verdict('ok', unshare, run(`${line(1, 'unshare', true)}\n`)), { passed: true, expected: 'ok', actual: 'ok' });
  t.same(verdict('EPERM', unshare, run(`${line(1, 'unshare', false)}\n`, 1)), { passed: true, expected: 'EPERM', actual: 'EPERM (unshare: Operation not permitted)' });
  t.same(verdict('EPERM', unshare, run(`${line(1, 'unshare', true)}\n`)), { passed: false, expected: 'EPERM', actual: 'ok' });
  t.same(verdict('ok', unshare, run(`${line(1, 'unshare', false)}\n`, 1)), { passed: false, expected: 'ok', actual: 'EPERM (unshare: Operation not permitted)' });
  t.equal(verdict('EBUSY', unshare, run(`${line(1, 'unshare', false)}\n`, 1)).passed, false, 'a different errno does not match');
  t.equal(verdict('error', unshare, run(`${line(1, 'unshare', false)}\n`, 1)).passed, true, '"error" matches any errno');
  t.equal(verdict({ error: true }, unshare, run(`${line(1, 'unshare', true)}\n`)).passed, false);
  t.same(verdict('any', unshare, run(`${line(1, 'unshare', false)}\n`, 1)), { passed: true, expected: 'any outcome', actual: 'EPERM (unshare: Operation not permitted)' });
  t.equal(verdict('any', unshare, run('{"agent_error":"usage","message":"x"}\n', 2)).passed, false, '"any" still needs the action to have run');
});

t.test('output equal or matching; one trailing newline is ignored', async (t) => {
  const read = step([{ kind: 'read', path: '/proc/self/container' }]);
  const r = run(`${line(1, 'read', true, { output: '/node_42\n' })}\n`);
  t.same(verdict({ output: '/node_42' }, read, r), { passed: true, expected: 'ok, output "/node_42"', actual: 'ok, output "/node_42"' });
  t.equal(verdict({ match: '^/node_\\d+$' }, read, r).passed, true);
  t.same(verdict({ output: '/node_7' }, read, r), { passed: false, expected: 'ok, output "/node_7"', actual: 'ok, output "/node_42"' });
  t.equal(verdict({ output: '/node_42', match: '^/x' }, read, r).passed, false, 'both checks must hold');
  t.equal(verdict({ output: 'x' }, read, run(`${line(1, 'read', false)}\n`, 1)).passed, false, 'a failed action has no output');
});

t.test('values by dotted path, numbers and booleans compared as text', async (t) => {
  const clone = step([{ kind: 'clone', flags: ['pid'], read: [], hostname: true, hold: false }]);
  const r = run(`${line(1, 'clone', true, { pid: 321, child: { pid: 1, hostname: 'vm', reads: [{ path: '/a', ok: true, output: 'x' }] }, exit_status: 0 })}\n`);
  t.equal(verdict({ values: { 'child.pid': 1, exit_status: 0 } }, clone, r).passed, true);
  t.equal(verdict({ values: { 'child.reads.0.output': 'x', 'child.hostname': { match: '^v' } } }, clone, r).passed, true);
  const bad = verdict({ values: { 'child.pid': 2, 'child.nothing': 'y' } }, clone, r);
  t.same(bad, { passed: false, expected: 'ok, child.pid "2", child.nothing "y"', actual: 'ok, child.pid "1", child.nothing absent' });
});

t.test('only the last action is judged; an earlier failure is a problem, not a match', async (t) => {
  const chain = step([
    { kind: 'unshare', flags: ['uts'] },
    { kind: 'sethostname', name: 'x' },
  ]);
  t.equal(verdict('ok', chain, run(`${line(1, 'unshare', true)}\n${line(2, 'sethostname', true, { output: 'x' })}\n`)).passed, true);
  const early = verdict('EPERM', chain, run(`${line(1, 'unshare', false)}\n`, 1));
  t.equal(early.passed, false, 'EPERM from the first action is not the EPERM expected from the last');
  t.equal(early.actual, 'action 1 of 2 (unshare) failed with EPERM (unshare: Operation not permitted) before the last action ran');
  t.match(verdict('ok', chain, run(`${line(1, 'unshare', true)}\n`, 137)).actual, /stopped after action 1 of 2 \(unshare\) with exit 137/);
});

t.test('pre-step, identity and argument problems are told apart from the action', async (t) => {
  const withPre = step([{ kind: 'unshare', flags: ['uts'] }], { pre: [{ kind: 'join', dir: '/c/a' }], as: { name: 'user', uid: 1000, gid: 1000 } });
  const pre = verdict('EPERM', withPre, run(`${line(1, 'join', false, {}, 'pre')}\n`, 3));
  t.same([pre.passed, pre.actual], [false, 'pre-step 1 (join) failed with EPERM (join: Operation not permitted)']);
  const ident = verdict('EPERM', withPre, run(`${line(1, 'join', true, {}, 'pre')}\n${JSON.stringify({ action: 'identity', index: 0, stage: 'identity', ok: false, errno: 'EPERM', syscall: 'capset', detail: 'x' })}\n`, 3));
  t.same([ident.passed, ident.actual], [false, 'could not take on the identity user: capset failed with EPERM (x)']);
  const usage = verdict('EINVAL', unshare, run('{"agent_error":"usage","message":"unknown action \\"bogus\\""}\n', 2));
  t.same([usage.passed, usage.actual], [false, 'the agent rejected its arguments: unknown action "bogus"']);
  const missing = verdict('ok', unshare, run('', 127, 'sh: /usr/bin/ktrial-agent: not found\n'));
  t.same([missing.passed, missing.actual], [false, 'the agent could not be run (exit 127): sh: /usr/bin/ktrial-agent: not found']);
  t.match(verdict('ok', unshare, run('Segmentation fault\n', 139)).actual, /unexpected agent output: Segmentation fault/);
});

t.test('shell steps: exit status and stdout; a wrapped shell drops the pre-step lines', async (t) => {
  const sh = step([], { kind: 'sh', sh: 'cat /proc/mounts' });
  t.same(verdict('ok', sh, run('rootfs / rootfs rw 0 0\n')), { passed: true, expected: 'ok', actual: 'exit 0, output "rootfs / rootfs rw 0 0"' });
  t.equal(verdict({ exit: 1 }, sh, run('', 1)).passed, true);
  t.equal(verdict({ exit: 0, match: 'cgroup' }, sh, run('rootfs / rootfs rw 0 0\n')).passed, false);
  const wrapped = step([], { kind: 'sh', sh: 'cat /proc/self/container', pre: [{ kind: 'join', dir: '/c/a' }], as: { name: 'user', uid: 1000, gid: 1000 } });
  t.same(verdict({ output: '/a' }, wrapped, run(`${line(1, 'join', true, {}, 'pre')}\n/a\n`)), { passed: true, expected: 'ok, output "/a"', actual: 'exit 0, output "/a"' });
  t.match(verdict('ok', wrapped, run(`${line(1, 'join', false, {}, 'pre')}\n`, 3)).actual, /^pre-step 1 \(join\) failed with EPERM/);
  t.match(verdict('ok', wrapped, run(`${line(1, 'join', true, {}, 'pre')}\n${line(2, 'exec', false)}\n`, 1)).actual, /^could not start the shell: EPERM/);
});

t.test('captures: fields, output without its newline, regex groups, shell fields', async (t) => {
  const read = step([{ kind: 'read', path: '/proc/self/container' }]);
  const obs = interpret(readingOf(read), run(`${line(1, 'read', true, { output: '/node_42\n', pid: 42 })}\n`));
  t.same(captureValues([{ variable: 'c', field: 'output' }, { variable: 'p', field: 'pid' }], obs), { vars: { c: '/node_42', p: '42' } });
  t.same(captureValues([{ variable: 'n', field: 'output', match: 'node_(\\d+)' }], obs), { vars: { n: '42' } });
  t.same(captureValues([{ variable: 'n', field: 'output', match: '^/n' }], obs), { vars: { n: '/n' } }, 'no group: the whole match');
  t.same(captureValues([{ variable: 'x', field: 'nothing' }], obs), { error: 'cannot capture ${x}: the result has no field "nothing"' });
  t.match(captureValues([{ variable: 'x', field: 'output', match: 'zzz' }], obs), { error: /does not match \/zzz\// });
  const sh = interpret(readingOf(step([], { kind: 'sh', sh: 'hostname' })), run('vm\n'));
  t.same(captureValues([{ variable: 'h', field: 'output' }, { variable: 's', field: 'stdout' }, { variable: 'e', field: 'exit' }], sh), { vars: { h: 'vm', s: 'vm\n', e: '0' } });
});
