// Guests that boot but hear no connection, made by a stand-in QEMU first on PATH
// (test/fixtures/qemu) that runs the real one with a fault. Both are caught once sshd has
// long started with no handshake, and QEMU's view of the guest is written beside the console.
// - link-down: the link is taken down through QMP at start; taking it down and up again
//   brings the guest back, and that guest runs the suite.
// - silent-once: the first boot's SSH port is forwarded to an address no guest has, so the
//   guest stays silent after its link is kicked too; a fresh QEMU replaces it, its console and
//   state are kept under their own names, and the fresh guest runs the suite.
// The two runs go side by side: each spends most of its time waiting out the silence.
import t, { type Test } from 'tap';
import { access, chmod, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { alive } from '../helpers/proc.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const STAND_IN = repoPath('test', 'fixtures', 'qemu');
const SUITE = repoPath('test', 'fixtures', 'scenarios', 'silent.yaml');
const exists = (p: string) => access(p).then(() => true, () => false);

async function faultyRun(fault: string, env: Record<string, string> = {}) {
  const out = await mkdtemp(join(tmpdir(), `ktrial-silent-${fault}-`));
  const r = await ktrial(['run', SMOKE61, '--suite', SUITE, '--out', out], {
    PATH: `${STAND_IN}${delimiter}${process.env.PATH}`,
    KTRIAL_TEST_QEMU_FAULT: fault,
    ...env,
  });
  return { out, r };
}

const kicked = faultyRun('link-down');
const markDir = await mkdtemp(join(tmpdir(), 'ktrial-silent-mark-'));
// Under root the stand-in runs as QEMU's own user (vm/confine.ts), and writes its mark here.
await chmod(markDir, 0o777);
const replaced = faultyRun('silent-once', { KTRIAL_TEST_QEMU_MARK: join(markDir, 'first-boot-made-silent') });

async function checkState(t: Test, file: string) {
  const state = await readFile(file, 'utf8');
  t.match(state, /Timed out while waiting for handshake/, 'the attempts before the kick found no guest answering');
  for (const section of ['the last SSH attempts', 'info pic', 'info irq', 'info network', 'info registers']) t.match(state, `== ${section}`, `the state has ${section}`);
  t.match(state, /EIP=|RIP=/, "QEMU answered with the guest CPU's registers");
}

t.test('a silent guest: its state is kept, its link taken down and up, and it runs the suite', async (t) => {
  const { out, r } = await kicked;
  t.equal(r.code, 0, r.stderr.slice(-2000));
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.same(res.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict]), [['answers', 'passed']]);
  t.equal(res.guests?.length, 1, 'the same guest: no reboot');
  t.notOk(res.guests?.[0]?.silent, 'and no fresh QEMU');
  const kick = res.guests?.[0]?.linkKick;
  t.ok(kick, 'the boot records the link kick');
  t.equal(kick?.state, 'console.silent-state.txt');
  await checkState(t, join(out, 'console.silent-state.txt'));
  t.match(await readFile(join(out, 'summary.txt'), 'utf8'), /answered once its link was taken down and up/);
  t.ok(await exists(join(out, 'console.log')));
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});

t.test('a guest that stays silent after the kick: a fresh QEMU replaces it and runs the suite', async (t) => {
  const { out, r } = await replaced;
  t.equal(r.code, 0, r.stderr.slice(-2000));
  t.ok(await exists(join(markDir, 'first-boot-made-silent')), 'the stand-in made the first boot silent');
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.same(res.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict]), [['answers', 'passed']], 'the case ran, on the fresh guest');
  t.equal(res.guests?.length, 1, 'one boot of the pool: the replacement is inside it');
  const silent = res.guests?.[0]?.silent ?? [];
  t.same(silent.map((s) => [s.console, s.state]), [['console.attempt-1.log', 'console.attempt-1.silent-state.txt']], 'one silent QEMU, its console and state kept under their own names');
  t.match(silent[0]?.reason, /the guest is silent: sshd started .* nor in the \d+ s after its link was taken down and up/);
  t.notOk(res.guests?.[0]?.linkKick, 'the guest that answered needed no kick');
  await checkState(t, join(out, 'console.attempt-1.silent-state.txt'));
  t.match(await readFile(join(out, 'console.attempt-1.log'), 'utf8'), /Linux version 6\.1/, "the silent QEMU's console is the guest's");
  t.match(await readFile(join(out, 'console.log'), 'utf8'), /Linux version 6\.1/, "the fresh QEMU's console");
  t.notOk(await exists(join(out, 'console.silent-state.txt')), 'the fresh guest was never silent');
  t.match(await readFile(join(out, 'summary.txt'), 'utf8'), /replaced a silent QEMU \(console\.attempt-1\.log\)/);
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});
