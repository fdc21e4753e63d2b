// Three small additions to the scenario language and the agent, made for the ns container
// suites: "try" (an action whose failure does not end the step, so a later action can show
// what the failure left behind), clone's "tls" (a fork that fails late, after the
// namespaces were copied) and the agent's "{child}" (the pid of the task it started last,
// for another task sharing its container). The host side is checked here; the agent's
// side runs the real binary when musl-gcc is there.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { repoPath } from '../../harness/common/paths.js';
import { commandLine, interpret, readingOf, stepCommand } from '../../harness/scenarios/agent.js';
import { expandSuite, stepLabel } from '../../harness/scenarios/expand.js';
import { judge } from '../../harness/scenarios/expect.js';
import { parseSuite } from '../../harness/scenarios/load.js';

const suite = parseSuite(
  `name: s
cases:
  - name: stays
    steps:
      - pre: [{mkdir: "/c/node_{pid}"}]
        do:
          - try: {unshare: uts}
          - read: /proc/self/container
        expect: {match: ":/$"}
  - name: late
    steps:
      - clone: {flags: uts, tls: "0xffff800000000000"}
        expect: EPERM
  - name: child
    steps:
      - do:
          - clone: {flags: none, hold: true}
          - write: {path: /c/a/tasks, data: "{child}"}
`,
  's.yaml',
);
const [stays, late, child] = expandSuite(suite);

t.test('try and tls reach the agent command line', async (t) => {
  t.equal(commandLine(stepCommand(stays!.steps[0]!, '/a', 's.1')), "/a --tag s.1 pre mkdir '/c/node_{pid}' -- try unshare uts -- read /proc/self/container");
  t.equal(commandLine(stepCommand(late!.steps[0]!, '/a', 's.2')), '/a --tag s.2 clone uts --tls 0xffff800000000000');
  t.equal(commandLine(stepCommand(child!.steps[0]!, '/a', 's.3')), "/a --tag s.3 clone none --hold -- write /c/a/tasks '{child}'");
  t.match(stepLabel(stays!.steps[0]!), /^try unshare uts; read \/proc\/self\/container/);
  t.match(stepLabel(late!.steps[0]!), /clone uts \(tls 0xffff800000000000\)/);
});

t.test('a tried action that fails does not stop the step: the last action is judged', async (t) => {
  const stdout = [
    '{"action":"mkdir","index":1,"stage":"pre","ok":true,"self":9}',
    '{"action":"unshare","index":2,"stage":"action","ok":false,"try":true,"self":9,"errno":"EEXIST","errnum":17,"syscall":"unshare"}',
    '{"action":"read","index":3,"stage":"action","ok":true,"self":9,"output":"ns:/"}',
    '',
  ].join('\n');
  const obs = interpret(readingOf(stays!.steps[0]!), { exitCode: 0, stdout, stderr: '', durationMs: 1 });
  t.equal(obs.kind, 'final');
  t.ok(judge(stays!.steps[0]!.expect, obs).passed);
});

t.test('the loader refuses try where it cannot work, and a malformed tls', async (t) => {
  const bad = (text: string) => {
    try {
      parseSuite(text, 'b.yaml');
      return '';
    } catch (err) {
      return (err as Error).message;
    }
  };
  t.match(bad('name: b\ncases:\n  - name: x\n    steps:\n      - pre: [{try: {id: }}]\n        id:\n'), /a pre-step must succeed/);
  t.match(bad('name: b\ncases:\n  - name: x\n    steps:\n      - do: [{try: {try: {id: }}}]\n'), /cannot hold another "try"/);
  t.match(bad('name: b\ncases:\n  - name: x\n    steps:\n      - clone: {flags: uts, tls: "high"}\n'), /b\.yaml:5:34: "high" does not match/, 'the tls address is checked where it stands');
});

// The real agent.
const haveMusl = (() => {
  try {
    execFileSync('musl-gcc', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();

t.test('the agent: try goes on after a failure, {child} names the held task, --tls fails the fork', { skip: !haveMusl && 'musl-gcc is not installed' }, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'ktrial-try-'));
  const agent = join(dir, 'ktrial-agent');
  const state = join(dir, 'state');
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  execFileSync('musl-gcc', ['-static', '-O2', '-Wall', '-o', agent, repoPath('images', 'agent', 'agent.c')]);
  const run = (...argv: string[]) =>
    new Promise<{ code: number; lines: Record<string, unknown>[] }>((res) =>
      execFile(agent, ['--state', state, ...argv], (err, stdout) => {
        const code = err ? (typeof err.code === 'number' ? err.code : 128) : 0;
        res({ code, lines: stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>) });
      }),
    );

  const tried = await run('try', 'mkdir', join(dir, 'no', 'such'), '--', 'mkdir', join(dir, 'made'));
  t.equal(tried.code, 0, 'a failed try does not make the run fail');
  t.match(tried.lines[0], { action: 'mkdir', ok: false, try: true, errno: 'ENOENT' });
  t.match(tried.lines[1], { action: 'mkdir', ok: true });

  const untried = await run('mkdir', join(dir, 'no', 'such'), '--', 'id');
  t.equal(untried.code, 1, 'without try the first failure still ends the run');
  t.equal(untried.lines.length, 1);

  t.equal((await run('pre', 'try', 'id', '--', 'id')).code, 2, 'try on a pre-step is a usage error');

  const held = await run('--tag', 'try-test', 'clone', 'none', '--hold', '--', 'write', join(dir, 'child'), '{child}', '--create');
  t.equal(held.code, 0);
  t.equal(held.lines[1]!.data, String(held.lines[0]!.pid), '{child} is the held task');
  await run('reap', 'try-test');

  const none = await run('write', join(dir, 'x'), '{child}', '--create');
  t.match(none.lines[0], { ok: false, errno: 'ESRCH' }, '{child} before any held task');

  const x86Linux = process.arch === 'x64' && process.platform === 'linux';
  await t.test('a TLS above the user address space fails the fork', { skip: !x86Linux && `0xffff800000000000 is above the user address space on x86-64 Linux, not on ${process.arch} ${process.platform}` }, async (t) => {
    const bad = await run('clone', 'none', '--tls', '0xffff800000000000');
    t.match(bad.lines[0], { action: 'clone', ok: false, errno: 'EPERM' });
  });
  t.equal((await run('clone', 'none', '--tls', 'high')).code, 2, 'a bad --tls is a usage error');
});
