// The crash-trace frame parser, on consoles recorded from real guests
// (test/fixtures/crashes/README.md says how each was recorded). The expected frames were
// read off the recordings by hand.
import t from 'tap';
import { readFile } from 'node:fs/promises';
import { formatFrame, parseAddr2line, parseCrashFrames } from '../../harness/kernel/crashtrace.js';
import { repoPath } from '../../harness/common/paths.js';

const fixture = async (n: string) => (await readFile(repoPath('test', 'fixtures', 'crashes', n), 'utf8')).split('\n');

t.test('2.6.20: "[<address>] function+offset/size" frames, from the first call trace on', async (t) => {
  const lines = await fixture('linux-2.6.20-sysrq-show-state.log');
  const from = lines.findIndex((l) => l.includes('SysRq : Show State'));
  t.ok(from > 0, 'the recording has the show-state report');
  const frames = parseCrashFrames(lines.slice(from));
  t.same(
    frames.map((f) => [f.address, f.function, f.offset]),
    [
      ['0xffffffff80237ba1', 'remove_wait_queue', '+0x11/0x50'],
      ['0xffffffff80209dfe', 'system_call', '+0x7e/0x83'],
      ['0xffffffff8023020d', 'sys_rt_sigsuspend', '+0xbd/0xe0'],
      ['0xffffffff8020a107', 'ptregscall_common', '+0x67/0xb0'],
    ],
    'the four frames of init, ending at the blank line after them',
  );
  t.notOk(frames.some((f) => f.ip || f.unreliable), 'no faulting instruction and no "?" in a task dump');
});

t.test('a 2.6.20 oops: the RIP line, then the call trace', async (t) => {
  const lines = await fixture('linux-2.6.20-oops-devmem.log');
  const from = lines.findIndex((l) => l.includes('Unable to handle kernel'));
  const frames = parseCrashFrames(lines.slice(from));
  t.same(
    frames.map((f) => [f.ip ?? false, f.address, f.function, f.offset]),
    [
      [true, '0xffffffff802864d0', 'sys_sync', '+0x0/0x60'],
      [false, '0xffffffff80209dfe', 'system_call', '+0x7e/0x83'],
    ],
  );
});

t.test('6.1 without CONFIG_KALLSYMS: bare addresses, "?" marks, <TASK> skipped', async (t) => {
  const frames = parseCrashFrames(await fixture('linux-6.1-nokallsyms-panic.excerpt'));
  t.equal(frames.length, 12);
  t.same(frames[0], { text: '? 0xffffffff812bf50c', unreliable: true, address: '0xffffffff812bf50c' });
  t.equal(frames[11]!.address, '0xffffffff814000af');
  t.notOk(frames.some((f) => f.function), 'no function names without kallsyms');
});

t.test('lines with no call trace give no frames; printk timestamps are ignored', async (t) => {
  const lines = await fixture('linux-6.1-nokallsyms-panic.excerpt');
  t.same(parseCrashFrames(lines.slice(0, 5)), []);
  const stamped = lines.map((l) => `[   12.345678] ${l}`);
  t.equal(parseCrashFrames(stamped).length, 12);
});

t.test('addr2line -f -i -a output: inlined functions innermost first, unknown lines left out', async (t) => {
  const out = parseAddr2line(
    ['0xffffffff812bf50b', 'sysrq_handle_crash', '/tree/drivers/tty/sysrq.c:153', '0xffffffff812bbd3e', 'memcpy', '/tree/include/x.h:12 (discriminator 3)', 'outer_fn', '/tree/lib/y.c:40', '0xffffffff81000000', '??', '??:0', ''].join('\n'),
  );
  t.same(out.get(0xffffffff812bf50bn), [{ function: 'sysrq_handle_crash', file: '/tree/drivers/tty/sysrq.c', line: 153 }]);
  t.same(out.get(0xffffffff812bbd3en), [
    { function: 'memcpy', file: '/tree/include/x.h', line: 12 },
    { function: 'outer_fn', file: '/tree/lib/y.c', line: 40 },
  ]);
  t.same(out.get(0xffffffff81000000n), [{ function: '??' }]);
});

t.test('a frame for the summary', async (t) => {
  t.equal(formatFrame({ text: '', ip: true, function: 'f', offset: '+0x1/0x2', file: 'a/b.c', line: 3 }), 'at f+0x1/0x2 (a/b.c:3)');
  t.equal(formatFrame({ text: '', unreliable: true, address: '0xffffffff81000000' }), '? 0xffffffff81000000');
});
