// A guest that boots but hears no connection (here: its link taken down through QMP by a
// stand-in on PATH that then runs the real QEMU) is caught once sshd has long started with no
// handshake: QEMU's view of it is written beside the console, its link is taken down and up,
// and the guest that answers then runs the suite.
import t from 'tap';
import { access, mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { ktrial } from '../helpers/cli.js';
import { alive } from '../helpers/proc.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const STAND_IN = repoPath('test', 'fixtures', 'qemu');
const exists = (p: string) => access(p).then(() => true, () => false);

t.test('a silent guest: its state is kept, its link taken down and up, and it runs the suite', async (t) => {
  const out = await mkdtemp(join(tmpdir(), 'ktrial-silent-'));
  const r = await ktrial(['run', SMOKE61, '--suite', repoPath('test', 'fixtures', 'scenarios', 'silent.yaml'), '--out', out], {
    PATH: `${STAND_IN}${delimiter}${process.env.PATH}`,
  });
  t.equal(r.code, 0, r.stderr.slice(-2000));
  const res = JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
  t.same(res.cases.filter((c) => c.kind === 'case').map((c) => [c.name, c.verdict]), [['answers', 'passed']]);
  t.equal(res.guests?.length, 1, 'the same guest: no reboot, no fresh QEMU');
  const kick = res.guests?.[0]?.linkKick;
  t.ok(kick, 'the boot records the link kick');
  t.equal(kick?.state, 'console.silent-state.txt');
  const state = await readFile(join(out, 'console.silent-state.txt'), 'utf8');
  t.match(state, /Timed out while waiting for handshake/, 'the attempts before the kick found no guest answering');
  for (const section of ['the last SSH attempts', 'info pic', 'info irq', 'info network', 'info registers']) t.match(state, `== ${section}`, `the state has ${section}`);
  t.match(state, /EIP=|RIP=/, "QEMU answered with the guest CPU's registers");
  t.match(await readFile(join(out, 'summary.txt'), 'utf8'), /answered once its link was taken down and up/);
  t.ok(await exists(join(out, 'console.log')));
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});
