// Failure handling, provoked for real: crashes, hangs, broken boots, interrupts, parallel
// runs, repeats, missing host tools, unwritable and full caches, bad input. Kernel-side
// cases use the cached smoke kernels (6.1 always; 2.6.20 when ktrial knows a tree).
import t from 'tap';
import { mkdtemp, readdir, readFile, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { alive, pathWithout } from '../helpers/proc.js';
import { sourceSkip } from '../helpers/trees.js';
import { repoPath } from '../../harness/common/paths.js';
import { cacheRoot, lockOwner } from '../../harness/common/cache.js';
import type { KernelManifest } from '../../harness/kernel/pipeline.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const SMOKE2620 = repoPath('configs', 'trials', 'smoke-2.6.20.yaml');
const fixture = (...p: string[]) => repoPath('test', 'fixtures', ...p);
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-fail-${name}-`));


async function results(out: string): Promise<RunResults> {
  return JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
}

const byName = (r: RunResults, name: string) => r.cases.find((c) => c.name === name);

/** Start ktrial, send `signal` once a stderr line matches `when`, and wait for it to end. */
async function interruptWhen(args: string[], when: RegExp, signal: NodeJS.Signals, delayMs = 0, env: Record<string, string> = {}) {
  const child = execa('node', [repoPath('bin', 'ktrial.js'), ...args], { reject: false, env, cwd: repoPath() });
  let sent = false;
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => {
    stderr += d.toString();
    if (!sent && when.test(stderr)) {
      sent = true;
      setTimeout(() => child.kill(signal), delayMs);
    }
  });
  const r = await child;
  return { code: r.exitCode, stderr, signalled: sent, pid: child.pid };
}

/**
 * Kernel cache entries added since `before` that the refused build could have left: a
 * complete entry built with `option`, or a temporary entry or lock whose process is gone.
 * Other kernels may be built beside the tests, so an entry that is merely new proves nothing.
 */
async function kernelsAddedWith(before: string[], option: string): Promise<string[]> {
  const dir = join(cacheRoot(), 'kernels');
  const left: string[] = [];
  for (const k of (await readdir(dir)).filter((k) => !before.includes(k))) {
    const tmpOf = /\.tmp-(\d+)$/.exec(k)?.[1];
    if (tmpOf !== undefined || k.endsWith('.lock')) {
      const owner = tmpOf !== undefined ? Number(tmpOf) : await lockOwner(join(dir, k));
      if (owner === undefined || !alive(owner)) left.push(k);
      continue;
    }
    const m = await readFile(join(dir, k, 'manifest.json'), 'utf8').then((x) => JSON.parse(x) as KernelManifest, () => undefined);
    if (!m || option in m.config.options) left.push(k);
  }
  return left;
}

// --max-reboots 0: without a fresh guest the rest is not run (recovery.test.ts has the reboots).
t.test('a kernel crash during a case fails it with the console excerpt; the rest is not run', async (t) => {
  const out = await tmp('crash');
  const r = await ktrial(['run', SMOKE61, '--suite', fixture('scenarios', 'crash.yaml'), '--max-reboots', '0', '--out', out]);
  t.equal(r.code, 3, 'kernel-side exit code');
  const res = await results(out);
  t.equal(byName(res, 'before the crash')?.verdict, 'passed');
  t.equal(byName(res, 'the crash')?.verdict, 'failed');
  t.match(byName(res, 'the crash')?.crash?.excerpt, /sysrq/i, 'the excerpt shows the crash');
  t.equal(byName(res, 'after the crash')?.verdict, 'not-run');
  t.equal(byName(res, 'after the crash')?.notRun?.cause, 'kernel-crashed');
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});

t.test('a guest that resets during a case: that case fails as the guest lost, the rest is not run', async (t) => {
  // sysrq b resets the guest without a console message; QEMU (-no-reboot) exits, and the
  // SSH channel closes under the command without an exit status.
  const out = await tmp('reset');
  const r = await ktrial(['run', SMOKE61, '--suite', fixture('scenarios', 'guest-lost.yaml'), '--max-reboots', '0', '--out', out]);
  t.equal(r.code, 3, 'kernel-side exit code');
  const res = await results(out);
  t.equal(byName(res, 'before the reset')?.verdict, 'passed');
  t.equal(byName(res, 'the reset')?.verdict, 'failed');
  t.match(byName(res, 'the reset')?.lost, /stopped answering/, 'the case says the guest was lost');
  t.equal(byName(res, 'after the reset')?.notRun?.cause, 'guest-lost', 'the case after it is not run');
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});

t.test('a command that outlives its case timeout fails that case only', async (t) => {
  const out = await tmp('timeout');
  // The suite gives a case 5 s; --timeout-case gives every case 3 s instead.
  const r = await ktrial(['run', SMOKE61, '--suite', fixture('scenarios', 'hang.yaml'), '--timeout-case', '3', '--out', out]);
  t.equal(r.code, 1, 'some case not as expected');
  const res = await results(out);
  t.equal(byName(res, 'a step that hangs')?.verdict, 'failed');
  t.match(byName(res, 'a step that hangs')?.reason, /no result within 3 s \(case timeout\)/, '--timeout-case set the case timeout in seconds');
  t.equal(byName(res, 'after the hang')?.verdict, 'passed', 'the guest is still usable afterwards');
});

t.test('a guest that stops answering ends the run as a kernel-side failure', { skip: await sourceSkip('smoke-2.6.20') }, async (t) => {
  // 2.6.20 has no real-time throttling: a spinning FIFO task starves sshd for good.
  const out = await tmp('hung');
  const r = await ktrial(['run', SMOKE2620, '--suite', fixture('scenarios', 'hung-guest.yaml'), '--max-reboots', '0', '--out', out]);
  t.equal(r.code, 3);
  const res = await results(out);
  t.match(byName(res, 'the hang')?.lost, /stopped answering/);
  t.equal(byName(res, 'after the hang')?.notRun?.cause, 'guest-lost');
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
});

t.test('a broken init fails the boot at once with the console excerpt', async (t) => {
  const out = await tmp('init');
  const r = await ktrial(['run', SMOKE61, '--cmdline', 'rdinit=/nonexistent', '--timeout-boot', '300', '--out', out]);
  t.equal(r.code, 3);
  const res = await results(out);
  t.equal(res.error?.class, 'kernel');
  // The console showed the failure: the boot ends on it, not on the deadline.
  t.match(res.error?.message, /^the kernel did not start ktrial's \/init but \/bin\/sh, after trying \/sbin\/init, \/etc\/init, \/bin\/init .*before SSH came up/, 'the init the kernel fell back to is named');
  t.notMatch(res.error?.message, /boot deadline/, 'the run did not wait for the boot deadline');
  t.match(r.stderr, /before SSH came up/, 'the user is told');
  t.match(res.error?.excerpt, /Run \/sbin\/init as init process/, 'the console excerpt shows the kernel falling back');
  t.ok(res.cases.length > 0 && res.cases.every((c) => c.notRun?.cause === 'boot-failed'), 'every case is not run: boot failed');
  t.ok(res.phases.find((p) => p.phase === 'boot' && p.status === 'failed'), 'the boot phase failed');
});

t.test('SIGTERM during the scenarios stops the run, writes the reports and leaves no QEMU', async (t) => {
  const out = await tmp('sigterm');
  const r = await interruptWhen(['run', SMOKE61, '--suite', fixture('scenarios', 'hang.yaml'), '--out', out], /scenarios hang: started/, 'SIGTERM', 1000);
  t.ok(r.signalled, 'the run reached the scenarios and was signalled there');
  t.equal(r.code, 130);
  const res = await results(out);
  t.equal(res.status, 'interrupted');
  t.notOk(alive(Number(res.kernel.qemuPid)), 'QEMU is gone');
  t.ok(res.cases.some((c) => c.notRun?.cause === 'interrupted'), 'unfinished cases are not run: interrupted');
});

t.test('SIGINT during a build keeps nothing half-written, and the next run works', async (t) => {
  const out = await tmp('sigint');
  const r = await interruptWhen(['build', SMOKE61, '--kconfig-add', 'CONFIG_LOG_BUF_SHIFT=15', '--out', out], /build: started/, 'SIGINT', 3000);
  t.ok(r.signalled, 'the build started and was signalled');
  t.equal(r.code, 130);
  // Only the interrupted process's own leftovers count: other builds may run beside the tests.
  const own = async (kind: string, leftover: RegExp) => {
    const names = (await readdir(join(cacheRoot(), kind))).filter((n) => leftover.test(n));
    const owners = await Promise.all(names.map((n) => lockOwner(join(cacheRoot(), kind, n))));
    return names.filter((n, i) => n.endsWith(`-${r.pid}`) || owners[i] === r.pid);
  };
  t.same(await own('kernels', /\.tmp-\d+$|\.lock$/), [], 'no temporary kernel entry or lock of the interrupted build');
  t.same(await own('worktrees', /\.inuse$|\.staging-\d+$|\.tmp-\d+$/), [], 'the work tree is released');
  const again = await ktrial(['build', SMOKE61, '--out', out]);
  t.equal(again.code, 0, 'the next run works');
});

t.test('--timeout-build S stops a build that takes longer: a kernel-side failure naming the limit', async (t) => {
  // The SIGINT test's option: a config no run completes, so this is never a cache hit, and
  // even a make with nothing to compile walks the 6.1 tree for longer than a second.
  const r = await ktrial(['build', SMOKE61, '--kconfig-add', 'CONFIG_LOG_BUF_SHIFT=15', '--timeout-build', '1', '--out', await tmp('build-timeout')]);
  t.equal(r.code, 3, 'kernel-side exit code');
  t.match(r.stderr, /build: started/, 'the build started');
  t.match(r.stderr, /the kernel build did not finish within 1s/);
  t.match(r.stderr, /--timeout-build/, 'the hint names the option');
});

t.test('two runs at once do not collide', async (t) => {
  const [a, b] = [await tmp('para-a'), await tmp('para-b')];
  const [ra, rb] = await Promise.all([ktrial(['run', SMOKE61, '--out', a]), ktrial(['run', SMOKE61, '--out', b])]);
  t.equal(ra.code, 0);
  t.equal(rb.code, 0);
  const [xa, xb] = [await results(a), await results(b)];
  t.not(xa.kernel.qemuPid, xb.kernel.qemuPid, 'each run has its own QEMU');
  t.equal(xa.status, 'ok');
  t.equal(xb.status, 'ok');
});

t.test('three repeats give the same verdicts', async (t) => {
  const out = await tmp('repeat');
  const r = await ktrial(['run', SMOKE61, '--repeat', '3', '--out', out]);
  t.equal(r.code, 0);
  const res = await results(out);
  t.equal(res.cases.filter((c) => c.verdict === 'flaky').length, 0, 'no flaky case');
  t.ok(res.cases.filter((c) => c.verdict === 'passed').every((c) => c.runs?.length === 3), 'every passed case ran three times');
});

t.test('a missing QEMU is a host-side failure that names the package', async (t) => {
  const bin = await pathWithout((name) => name.startsWith('qemu-system'));
  const r = await ktrial(['run', SMOKE61, '--out', await tmp('noqemu')], { PATH: bin });
  t.equal(r.code, 4);
  t.match(r.stderr, /needs host tools that are missing: qemu-system-x86_64 \(package qemu-system-x86\)/);
  t.match(r.stderr, /apt-get install -y qemu-system-x86\s/);
});

t.test('a compiler that is not installed is named with its package', async (t) => {
  const r = await ktrial(['build', SMOKE61, '--cc', 'gcc-99']);
  t.equal(r.code, 2);
  t.match(r.stderr, /gcc-99.*not installed.*apt-get install -y gcc-99/s);
});

t.test('an unwritable cache is a host-side failure', async (t) => {
  const r = await ktrial(['build', SMOKE61], { KTRIAL_CACHE: '/proc/ktrial-cache' });
  t.equal(r.code, 4);
  t.match(r.stderr, /not writable/);
});

/** A 1 MiB tmpfs to fill, or why none can be mounted here (it needs root). */
async function smallTmpfs(): Promise<{ dir: string; mnt: string; skip: string | false }> {
  const dir = await tmp('full');
  const mnt = join(dir, 'cache');
  await mkdir(mnt);
  const m = await execa('mount', ['-t', 'tmpfs', '-o', 'size=1m', 'tmpfs', mnt], { reject: false });
  if (m.exitCode === 0) return { dir, mnt, skip: false };
  await rm(dir, { recursive: true, force: true });
  return { dir, mnt, skip: `cannot mount a small tmpfs here (${m.stderr.trim()}); run the tests as root` };
}

const full = await smallTmpfs();
t.test('a full cache fails cleanly and keeps nothing half-written', { skip: full.skip }, async (t) => {
  const { dir, mnt } = full;
  try {
    const r = await ktrial(['build', SMOKE61, '--out', join(dir, 'out')], { KTRIAL_CACHE: mnt });
    t.equal(r.code, 4);
    t.match(r.stderr, /ENOSPC|No space left/);
    // The sources directory exists (the unpack began in this cache) and holds neither a
    // half-unpacked temporary directory nor an entry that claims to be complete.
    t.same(await readdir(join(mnt, 'sources')), [], 'the unpack was started and left nothing behind');
  } finally {
    await execa('umount', [mnt], { reject: false });
    await rm(dir, { recursive: true, force: true });
  }
});

t.test('a required option that kconfig drops is named with the dependency that dropped it', async (t) => {
  const before = await readdir(join(cacheRoot(), 'kernels'));
  const r = await ktrial(['build', SMOKE61, '--kconfig-add', 'CONFIG_SYSVIPC=n', '--out', await tmp('dropped')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /CONFIG_IPC_NS: wanted y \(\S+ require\), got n\. CONFIG_IPC_NS depends on \(SYSVIPC \|\| POSIX_MQUEUE\) \(its `depends on` at init\/Kconfig:\d+\); CONFIG_SYSVIPC is not set \(--kconfig-add asks for n\)/);
  t.same(await kernelsAddedWith(before, 'CONFIG_SYSVIPC'), [], 'no kernel was added to the cache');
});

t.test('an option asked for with --kconfig-add that kconfig drops is bad input, with the `if` block and the fix', async (t) => {
  const before = await readdir(join(cacheRoot(), 'kernels'));
  const r = await ktrial(['build', SMOKE61, '--kconfig-add', 'CONFIG_LKDTM=y', '--kconfig-add', 'CONFIG_DEBUG_FS=y', '--out', await tmp('lkdtm')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /CONFIG_LKDTM: wanted y \(--kconfig-add\), got n\. CONFIG_LKDTM depends on RUNTIME_TESTING_MENU \(the `if` block at lib\/Kconfig\.debug:\d+\); CONFIG_RUNTIME_TESTING_MENU is not set/);
  t.match(r.stderr, /add --kconfig-add CONFIG_RUNTIME_TESTING_MENU=y/);
  t.same(await kernelsAddedWith(before, 'CONFIG_LKDTM'), [], 'no kernel was added to the cache');
});

t.test('malformed YAML is bad input with file and line', async (t) => {
  const r = await ktrial(['run', fixture('trials', 'malformed.yaml')]);
  t.equal(r.code, 2);
  t.match(r.stderr, /malformed\.yaml:4:\d+: malformed YAML/);
});
