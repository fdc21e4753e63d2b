// The scenario runner's view of the VM (trialrun's guestExec): what counts as a result.
import t from 'tap';
import { guestExec } from '../../harness/trialrun.js';
import type { Vm } from '../../harness/vm/index.js';
import type { ExecResult } from '../../harness/vm/ssh.js';

function fakeVm(r: ExecResult): Vm {
  return { run: async () => r, console: { mark: () => 0, problemsSince: () => [] } } as unknown as Vm;
}

t.test('a command the channel closed under (no exit status, no signal) is not a result', async (t) => {
  const g = guestExec(fakeVm({ exitCode: null, stdout: '', stderr: '', durationMs: 5, timedOut: false }));
  await t.rejects(g.exec('x', { timeoutMs: 1000 }), /without an exit status/, 'the runner probes the guest instead of judging exit 128');
});

t.test('a command killed by a signal, or one that exited, is a result', async (t) => {
  const killed = await guestExec(fakeVm({ exitCode: null, signal: 'SEGV', stdout: '', stderr: '', durationMs: 5, timedOut: false })).exec('x', { timeoutMs: 1000 });
  t.equal(killed.exitCode, 128);
  const exited = await guestExec(fakeVm({ exitCode: 3, stdout: 'o', stderr: '', durationMs: 5, timedOut: false })).exec('x', { timeoutMs: 1000 });
  t.same([exited.exitCode, exited.stdout], [3, 'o']);
});

t.test('a timed-out command is not a result', async (t) => {
  await t.rejects(guestExec(fakeVm({ exitCode: null, stdout: '', stderr: '', durationMs: 5, timedOut: true })).exec('x', { timeoutMs: 1000 }), /no result within 1000 ms/);
});
