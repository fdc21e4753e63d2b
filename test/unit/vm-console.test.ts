import t from 'tap';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { classifyLine, cleanLine, excerptAround, parseConsole, summarize, type ConsoleEvent } from '../../harness/vm/console.js';

// dist/test/unit -> repository root
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const fixture = (name: string) => readFileSync(join(root, 'test', 'fixtures', 'console', name), 'utf8').split('\n');
const kinds = (evs: ConsoleEvent[]) => evs.map((e) => e.kind);

t.test('normal 2.6.20 boot: banner, userland, sshd, halt; no problems', async (t) => {
  const lines = fixture('linux-2.6.20-boot.log');
  const evs = parseConsole(lines);
  const s = summarize(evs);
  t.equal(s.kernelVersion, '2.6.20');
  t.equal(s.boots, 1);
  t.ok(s.reachedUserland);
  t.ok(s.sshdStarted);
  t.ok(s.poweredOff, 'the halt at the end is seen');
  t.same(s.problems, []);
  t.equal(s.firstFatal, undefined);
  const order = kinds(evs).filter((k) => ['banner', 'run-init', 'userland-up', 'network-up', 'sshd-started', 'init-shutdown', 'power-off'].includes(k));
  t.same(order, ['banner', 'run-init', 'userland-up', 'network-up', 'sshd-started', 'init-shutdown', 'power-off']);
  t.equal(evs.find((e) => e.kind === 'network-up')?.detail, 'eth0 10.0.2.15');
});

t.test('normal 6.1 boot: same story with printk-style lines', async (t) => {
  const evs = parseConsole(fixture('linux-6.1-boot.log'));
  const s = summarize(evs);
  t.equal(s.kernelVersion, '6.1.192');
  t.ok(s.reachedUserland);
  t.ok(s.sshdStarted);
  t.ok(s.poweredOff);
  t.same(s.problems, []);
  t.equal(evs.find((e) => e.kind === 'run-init' && e.detail)?.detail, '/init');
});

t.test('2.6.20 with no init in the initramfs: panic for want of a root fs', async (t) => {
  const lines = fixture('linux-2.6.20-panic-no-root.log');
  const evs = parseConsole(lines);
  const s = summarize(evs);
  t.equal(s.firstFatal?.kind, 'panic');
  t.match(s.firstFatal?.detail, /VFS: Unable to mount root fs/);
  t.ok(evs.some((e) => e.kind === 'no-init'), 'also reported as "no init"');
  t.notOk(s.reachedUserland);
  const ex = excerptAround(lines, s.firstFatal!.line);
  t.match(ex, /Kernel panic - not syncing: VFS: Unable to mount root fs/);
  t.match(ex, /No filesystem could mount root/, 'the excerpt has the lines before the panic');
});

t.test('PID 1 exits: "Attempted to kill init" on 2.6.20 and 6.1, with the call trace', async (t) => {
  for (const name of ['linux-2.6.20-init-exits.log', 'linux-6.1-init-exits.log']) {
    const lines = fixture(name);
    const evs = parseConsole(lines);
    const s = summarize(evs);
    t.equal(s.firstFatal?.kind, 'panic', name);
    t.ok(evs.some((e) => e.kind === 'init-killed'), `${name}: init-killed`);
    t.notOk(s.reachedUserland, name);
  }
  const evs61 = parseConsole(fixture('linux-6.1-init-exits.log'));
  t.ok(evs61.some((e) => e.kind === 'call-trace'));
  t.equal(evs61.find((e) => e.kind === 'run-init' && e.detail)?.detail, '/bin/false');
});

t.test('our init fails: the FATAL marker is fatal and carries its message', async (t) => {
  const evs = parseConsole(fixture('linux-6.1-init-fatal.log'));
  const s = summarize(evs);
  t.equal(s.firstFatal?.kind, 'init-fatal');
  t.match(s.firstFatal?.detail, /no network interface/);
  t.ok(s.reachedUserland);
  t.notOk(s.sshdStarted);
});

t.test('a kernel falling back to another init is visible (run-init with its program)', async (t) => {
  const evs = parseConsole(fixture('linux-6.1-wrong-init.log'));
  const progs = evs.filter((e) => e.kind === 'run-init' && e.detail).map((e) => e.detail);
  t.ok(progs.includes('/sbin/init'));
  t.notOk(progs.includes('/init'));
});

// Single lines in the shapes other kernels print them (the fixtures above cannot hold
// every kind of report, e.g. an oops needs a broken kernel).
t.test('line shapes of oops, BUG, WARNING and lockdep reports', async (t) => {
  const k = (line: string) => kinds(classifyLine(cleanLine(line), 0));
  t.same(k('Unable to handle kernel NULL pointer dereference at 0000000000000000 RIP: '), ['oops']);
  t.same(k('Oops: 0002 [1] SMP '), ['oops']);
  t.same(k('[   12.345678] BUG: kernel NULL pointer dereference, address: 0000000000000008'), ['oops']);
  t.same(k('[   12.345678] Oops: 0000 [#1] PREEMPT SMP NOPTI'), ['oops']);
  t.same(k('[    3.1] kernel BUG at kernel/container.c:123!'), ['oops']);
  t.same(k('general protection fault: 0000 [#1] SMP'), ['oops']);
  t.same(k('BUG: warning at kernel/fork.c:1661/sys_unshare()'), ['warning']);
  t.same(k('[    5.000000] WARNING: CPU: 0 PID: 1 at kernel/nsproxy.c:80 copy_namespaces+0x10/0x20'), ['warning']);
  t.same(k('[    5.000000] BUG: sleeping function called from invalid context at mm/slab.c:3034'), ['bug']);
  t.same(k('BUG: soft lockup detected on CPU#0!'), ['bug']);
  t.same(k('[ INFO: possible circular locking dependency detected ]'), ['lockdep']);
  t.same(k('[    1.0] WARNING: possible circular locking dependency detected'), ['lockdep']);
  t.same(k('Call Trace:'), ['call-trace']);
  t.same(k(' [<ffffffff80213f1c>] show_trace+0x34/0x47'), []);
  t.same(k('Kernel panic - not syncing: Attempted to kill init!'), ['panic', 'init-killed']);
  t.same(k('Linux version 2.6.20 (root@host) (gcc version 11.3.0) #1 SMP'), ['banner']);
  t.same(k('ktrial-init: sshd exited: killed by signal 9'), ['sshd-exited']);
  t.same(k('ktrial-init: sshd keeps dying; not restarting it'), ['sshd-gave-up']);
  t.same(k('e1000: eth0: e1000_watchdog: NIC Link is Up 1000 Mbps Full Duplex'), ['link-up']);
  t.equal(classifyLine('ADDRCONF(NETDEV_CHANGE): eth0: link becomes ready', 0)[0]?.detail, 'eth0');
  t.same(k('reboot: Power down'), ['power-off']);
  t.same(k('Power down.\r'), ['power-off']);
  t.same(k('ordinary line mentioning nothing'), []);
});

t.test('a second banner means the guest restarted', async (t) => {
  const lines = [...fixture('linux-2.6.20-boot.log').slice(0, 20), ...fixture('linux-2.6.20-boot.log').slice(0, 5)];
  t.equal(summarize(parseConsole(lines)).boots, 2);
});
