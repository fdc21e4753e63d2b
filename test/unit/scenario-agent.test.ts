// The real agent on this host: it builds warning-free with musl-gcc -static, its actions
// and failures come back as the protocol says, and the namespaces suite passes through the
// runner with the host standing in for a guest (needs root; skipped otherwise). Each
// command runs in a throwaway UTS namespace so the host's own hostname is never touched.
import { execFile, execFileSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { KernelConfig } from '../../harness/config/kconfig.js';
import { loadSuite } from '../../harness/scenarios/load.js';
import { runSuite } from '../../harness/scenarios/run.js';
import type { GuestExec } from '../../harness/scenarios/types.js';

const root = fileURLToPath(new URL('../../../', import.meta.url));
const can = (cmd: string, args: string[]) => {
  try {
    execFileSync(cmd, args, { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
};
const haveMusl = can('musl-gcc', ['--version']);
const isRoot = process.getuid?.() === 0;
const canUnshare = isRoot && can('unshare', ['-u', 'true']);

const dir = await mkdtemp(join(tmpdir(), 'ktrial-agent-'));
const agent = join(dir, 'ktrial-agent');
const state = join(dir, 'state');
t.teardown(async () => {
  if (canUnshare) await run([agent, '--state', state, 'reap']);
  await rm(dir, { recursive: true, force: true });
});

function run(argv: string[], env: Record<string, string> = {}): Promise<{ code: number; lines: Record<string, unknown>[]; stdout: string; stderr: string }> {
  return new Promise((res) =>
    execFile(argv[0]!, argv.slice(1), { env: { ...process.env, ...env } }, (err, stdout, stderr) => {
      const code = err ? (typeof err.code === 'number' ? err.code : 128) : 0;
      const lines = stdout
        .split('\n')
        .filter((l) => l.startsWith('{'))
        .map((l) => JSON.parse(l) as Record<string, unknown>);
      res({ code, lines, stdout, stderr });
    }),
  );
}

t.test('the agent builds with musl-gcc -static -O2 -Wall, without warnings', { skip: haveMusl ? false : 'musl-gcc is not installed' }, async (t) => {
  const r = await run(['musl-gcc', '-static', '-O2', '-Wall', '-Wextra', '-o', agent, join(root, 'images/agent/agent.c')]);
  t.equal(r.code, 0, 'compiles');
  t.equal(r.stderr, '', 'no warnings');
  const file = execFileSync('file', [agent]).toString();
  t.match(file, /statically linked/);
  const v = await run([agent, '--version']);
  t.same(v.lines, [{ agent: 'ktrial-agent', protocol: 1 }]);
});

t.test('argument errors are the agent\'s own, before anything is done', { skip: haveMusl ? false : 'musl-gcc is not installed' }, async (t) => {
  for (const argv of [['bogus'], ['unshare', 'utz'], ['--caps', 'CAP_NOPE', 'id'], ['id', '--', 'pre', 'id'], ['pre', 'exec', '/bin/true'], ['pre', 'id']]) {
    const r = await run([agent, ...argv]);
    t.equal(r.code, 2, `${argv.join(' ')}: exit 2`);
    t.equal(r.lines.length, 1);
    t.equal(r.lines[0]!.agent_error, 'usage', `${argv.join(' ')}: ${String(r.lines[0]!.message)}`);
  }
});

t.test('load: workers started together, values per worker, repeats, a timer, a thread', { skip: haveMusl ? false : 'musl-gcc is not installed' }, async (t) => {
  const d = join(dir, 'load');
  const w = await run([agent, '--workers', '4', '--repeat', '3', 'mkdir', `${d}{iter}`]);
  t.equal(w.code, 0);
  t.same(
    w.lines.map((l) => [l.action, l.index, l.ok, l.workers, l.repeat, l.runs, l.output, l.counts]),
    [['mkdir', 1, true, 4, 3, 12, 'ok=3 EEXIST=9', { ok: 3, EEXIST: 9 }]],
    'one line with the counts: each of the three names made once, by one of the four workers',
  );
  const e = await run([agent, '--each', 'a,b', 'mkdir', `${d}-{each}`, '--', 'rmdir', `${d}-{each}`, '--', 'rmdir', `${d}-{each}`]);
  t.same(
    e.lines.map((l) => l.output),
    ['ok=2', 'ok=2', 'ok=0 ENOENT=2'],
    'a worker per value, {each} replaced',
  );
  const stop = await run([agent, '--repeat', '2', 'rmdir', `${d}-none`, '--', 'mkdir', `${d}-never`]);
  t.same(
    stop.lines.map((l) => l.output),
    ['ok=0 ENOENT=2', 'ok=0 not-run=2'],
    'a failed action skips the rest of its round',
  );
  const timer = await run([agent, '--timer', '1000', '--repeat', '50', 'sleep', '2']);
  t.match(timer.lines[0], { output: 'ok=50' }, 'sleeps go on through the signals');
  t.ok(Number(timer.lines[0]!.signals) > 0, `the timer's signals arrived (${String(timer.lines[0]!.signals)})`);
  const th = await run([agent, '--thread', 'readlink', '/proc/self/task/{tid}/exe', '--', 'id']);
  t.equal(th.code, 0);
  t.not(th.lines[0]!.tid, th.lines[0]!.self, 'the actions ran in a thread other than the leader');
  t.equal(th.lines[1]!.tid, th.lines[0]!.tid, 'every line names that thread');
  t.equal(th.lines[0]!.path, `/proc/self/task/${String(th.lines[0]!.tid)}/exe`, '{tid} is its id');
  const bad = await run([agent, '--thread', '--repeat', '2', 'id']);
  t.equal(bad.code, 2, '--thread runs once: not with --repeat');
});

t.test('actions as root: results, errnos and the failing system call', { skip: !haveMusl ? 'musl-gcc is not installed' : !isRoot ? 'needs root' : false }, async (t) => {
  const d = join(dir, 'x');
  const r = await run([agent, 'mkdir', d, '--', 'write', join(d, 'f'), 'self', '--create', '--', 'read', join(d, 'f'), '--', 'exists', join(d, 'nope'), '--', 'rmdir', d]);
  t.equal(r.code, 1, 'the last action failed');
  t.same(
    r.lines.map((l) => [l.action, l.index, l.ok, l.errno]),
    [
      ['mkdir', 1, true, undefined],
      ['write', 2, true, undefined],
      ['read', 3, true, undefined],
      ['exists', 4, true, undefined],
      ['rmdir', 5, false, 'ENOTEMPTY'],
    ],
  );
  t.equal(r.lines[2]!.output, r.lines[1]!.data, 'self is the agent\'s pid, read back');
  t.equal(r.lines[3]!.output, 'false');
  t.match(r.lines[4], { syscall: 'rmdir', errnum: 39, path: d });
  const missing = await run([agent, 'write', join(dir, 'none', 'tasks'), '1']);
  t.match(missing.lines[0], { ok: false, errno: 'ENOENT', syscall: 'open' });
});

t.test('identity: uid, gid, capabilities; refusals are EPERM', { skip: !haveMusl ? 'musl-gcc is not installed' : !canUnshare ? 'needs root and unshare' : false }, async (t) => {
  const user = await run([agent, '--uid', '1000', '--gid', '1000', 'id', '--', 'unshare', 'uts']);
  t.match(user.lines[0], { uid: 1000, euid: 1000, gid: 1000, groups: [], cap_eff: '0x0' });
  t.match(user.lines[1], { action: 'unshare', ok: false, errno: 'EPERM' });
  const nosys = await run([agent, '--caps', '-CAP_SYS_ADMIN', 'id', '--', 'unshare', 'uts']);
  t.equal(nosys.lines[0]!.uid, 0);
  t.notOk((nosys.lines[0]!.caps as string[]).includes('CAP_SYS_ADMIN'));
  t.ok((nosys.lines[0]!.caps as string[]).includes('CAP_NET_ADMIN'), 'only CAP_SYS_ADMIN is dropped');
  t.match(nosys.lines[1], { ok: false, errno: 'EPERM' });
  const kept = await run([agent, '--uid', '1000', '--gid', '1000', '--caps', 'CAP_SYS_ADMIN', 'id', '--', 'unshare', 'uts', '--', 'sethostname', 'kept']);
  t.match(kept.lines[0], { uid: 1000, caps: ['CAP_SYS_ADMIN'] });
  t.match(kept.lines[2], { action: 'sethostname', ok: true, output: 'kept' });
  const pre = await run([agent, '--uid', '1000', 'pre', 'unshare', 'uts', '--', 'pre', 'sethostname', 'pre-set', '--', 'gethostname']);
  t.same(
    pre.lines.map((l) => [l.stage, l.ok, l.output]),
    [
      ['pre', true, undefined],
      ['pre', true, 'pre-set'],
      ['action', true, 'pre-set'],
    ],
    'pre-steps run as root, before the identity change',
  );
  const preFail = await run([agent, 'pre', 'read', join(dir, 'none'), '--', 'id']);
  t.equal(preFail.code, 3);
  t.match(preFail.lines, [{ stage: 'pre', ok: false, errno: 'ENOENT' }]);
});

t.test('clone reports what the child sees; held helpers outlive the command and are reaped', { skip: !haveMusl ? 'musl-gcc is not installed' : !canUnshare ? 'needs root and unshare' : false }, async (t) => {
  const c = await run([agent, 'clone', 'uts', '--hostname', '--read', '/proc/self/comm']);
  t.match(c.lines[0], { action: 'clone', ok: true, output: 'ktrial-agent\n', exit_status: 0, child: { reads: [{ path: '/proc/self/comm', ok: true }] } });
  const env = { KTRIAL_AGENT_STATE: state };
  const s = await run([agent, '--tag', 'T', 'unshare', 'uts', '--', 'sethostname', 'held', '--', 'spawn', 'h'], env);
  t.equal(s.code, 0, 'the command returns although the helper lives on');
  const pid = s.lines[2]!.pid as number;
  t.ok(pid > 0);
  const h = await run([agent, 'helpers'], env);
  t.match(h.lines[0], { helpers: [{ pid, tag: 'T', name: 'h' }] });
  const reaped = await run([agent, 'reap', 'T'], env);
  t.same(reaped.lines[0]!.killed, [pid]);
  t.match((await run([agent, 'helpers'], env)).lines[0], { output: '0' });
});

/** The host as a guest: each command in its own UTS namespace. */
const hostGuest: GuestExec = {
  exec: (command, opts) =>
    new Promise((res) => {
      const t0 = Date.now();
      execFile('unshare', ['-u', '/bin/sh', '-c', command], { timeout: opts.timeoutMs, env: { ...process.env, KTRIAL_AGENT_STATE: state } }, (err, stdout, stderr) =>
        res({ exitCode: err ? (typeof err.code === 'number' ? err.code : 128) : 0, stdout, stderr, durationMs: Date.now() - t0 }),
      );
    }),
  kernelCrash: () => undefined,
};

t.test('the namespaces suite passes on this host through the runner', { skip: !haveMusl ? 'musl-gcc is not installed' : !canUnshare ? 'needs root and unshare' : false }, async (t) => {
  const suite = await loadSuite(join(root, 'test/scenarios/namespaces.yaml'));
  const kernelConfig = new KernelConfig(Object.entries({ CONFIG_UTS_NS: 'y', CONFIG_IPC_NS: 'y', CONFIG_PID_NS: 'y', CONFIG_NET_NS: 'y', CONFIG_USER_NS: 'y' }));
  const results = await runSuite(suite, hostGuest, { agentPath: agent, kernelConfig });
  const bad = results.filter((r) => r.verdict !== 'passed' && r.notRun?.cause !== 'missing-requirement');
  t.same(
    bad.map((r) => `${r.name}: ${r.reason}`),
    [],
    'every case passes or is not run for a missing requirement',
  );
  t.same(
    results.filter((r) => r.verdict === 'not-run').map((r) => r.name),
    ['without PID namespaces CLONE_NEWPID is refused'],
  );
  // The same suite on a kernel like 2.6.20: only UTS and IPC namespaces.
  const old = await runSuite(suite, hostGuest, { agentPath: agent, kernelConfig: new KernelConfig(Object.entries({ CONFIG_UTS_NS: 'y', CONFIG_IPC_NS: 'y' })) });
  t.same(
    old.filter((r) => r.verdict === 'not-run').map((r) => r.name),
    ['unshare PID as root', 'unshare NET as root', 'unshare USER as root', 'an unprivileged user may unshare UTS inside a new user namespace'],
  );
});
