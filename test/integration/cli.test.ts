// What README.md promises of the command line, checked through bin/ktrial.js with real
// kernels, a real QEMU and real SSH: `boot -- CMD` and `boot --shell` (driven in tmux as a
// person would), QEMU ending with ktrial on SIGINT, SIGTERM and SIGKILL, `doctor` naming a
// missing tool, the KVM probe falling back to TCG and saying why, a build error, a guest
// whose SSH never comes up, and --bisect's abort code.
// Kernel-side cases use the 6.1 smoke trial, which every machine can build.
import t from 'tap';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { ktrial } from '../helpers/cli.js';
import { alive, pathWithout } from '../helpers/proc.js';
import { privateCache } from '../helpers/cache.js';
import { repoPath } from '../../harness/common/paths.js';
import type { RunResults } from '../../harness/report/index.js';

const SMOKE61 = repoPath('configs', 'trials', 'smoke-debian-6.1.yaml');
const fixture = (...p: string[]) => repoPath('test', 'fixtures', ...p);
const tmp = (name: string) => mkdtemp(join(tmpdir(), `ktrial-cli-${name}-`));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function results(out: string): Promise<RunResults> {
  return JSON.parse(await readFile(join(out, 'results.json'), 'utf8')) as RunResults;
}

/** QEMU's pid as the progress output states it ("qemu pid N"). */
function qemuPid(text: string): number | undefined {
  const m = /qemu pid (\d+)/.exec(text);
  return m ? Number(m[1]) : undefined;
}

/** QEMU processes whose command line mentions `dir` (the run's output directory). */
async function qemusUsing(dir: string): Promise<string[]> {
  const ps = await execa('ps', ['-eo', 'pid=,args='], { reject: false });
  return ps.stdout.split('\n').filter((l) => l.includes('qemu-system') && l.includes(dir));
}

/**
 * The kernel release a bzImage carries, read from its x86 boot header (the boot protocol's
 * kernel_version field at 0x20e points at "RELEASE (user@host) #N ..."), not from ktrial.
 */
async function bzImageRelease(bzImage: string): Promise<string> {
  const b = await readFile(bzImage);
  if (b.toString('latin1', 0x202, 0x206) !== 'HdrS') throw new Error(`${bzImage} has no x86 boot header`);
  const at = 0x200 + b.readUInt16LE(0x20e);
  const text = b.toString('latin1', at, b.indexOf(0, at));
  return text.split(' ')[0]!;
}

/** Poll `check` every 250 ms until it gives a value or `ms` pass; undefined on timeout. */
async function waitFor<T>(check: () => Promise<T | undefined>, ms: number): Promise<T | undefined> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) return undefined;
    await sleep(250);
  }
}

// What some tests need from the host, decided before they are declared so that a test
// that cannot run here is reported skipped, with the reason.
const TMUX_MISSING = (await execa('tmux', ['-V'], { reject: false })).exitCode === 0 ? false : 'tmux is not installed (Debian package tmux; `npx ktrial setup` installs it)';
const DOCTOR_TOOL = 'xz';
const doctorToolAt = (await execa('sh', ['-c', `command -v ${DOCTOR_TOOL}`], { reject: false })).stdout.trim();
const doctorToolOwner = doctorToolAt ? await execa('dpkg', ['-S', doctorToolAt], { reject: false }) : undefined;
const NO_DPKG_OWNER = doctorToolOwner?.exitCode === 0 ? false : `cannot tell which Debian package holds ${DOCTOR_TOOL} here (dpkg -S ${doctorToolAt || DOCTOR_TOOL})`;
// In a private mount namespace, /dev becomes an overlay (tmpfs upper layer) whose kvm is
// the given file bind-mounted, whether or not the host has a /dev/kvm; then $@ runs.
const FAKE_KVM_NS = [
  'set -e; fake=$1; shift; layers=$(mktemp -d)',
  'mount -t tmpfs tmpfs "$layers"; mkdir "$layers/upper" "$layers/work" "$layers/host"',
  'mount --rbind /dev "$layers/host"',
  'mount -t overlay overlay -o "lowerdir=/dev,upperdir=$layers/upper,workdir=$layers/work" /dev',
  'for sub in pts shm; do mount --rbind "$layers/host/$sub" "/dev/$sub"; done',
  'rm -f /dev/kvm; : > /dev/kvm; mount --bind "$fake" /dev/kvm',
  'exec "$@"',
].join('\n');
const fakeKvmTry = await execa('unshare', ['-m', 'sh', '-c', FAKE_KVM_NS, 'sh', '/dev/null', 'test', '-c', '/dev/kvm'], { reject: false });
const NO_FAKE_KVM = fakeKvmTry.exitCode === 0 ? false : `cannot put a fake /dev/kvm in a private mount namespace here (needs root and overlayfs): ${fakeKvmTry.stderr.trim()}`;

t.test('boot -- CMD exits with the guest command\'s code and prints its output; no QEMU is left', async (t) => {
  const out = await tmp('boot-cmd');
  const uname = await ktrial(['boot', SMOKE61, '--out', out, '--', 'uname', '-r']);
  if (!t.equal(uname.code, 0, 'uname -r exits 0')) t.comment(uname.stderr);
  t.equal(uname.stdout.trim(), await bzImageRelease(join(out, 'bzImage')), 'stdout is the guest\'s uname -r: the release in the booted bzImage');
  const pid = qemuPid(uname.stderr);
  t.ok(pid, 'the progress output names QEMU\'s pid');
  if (pid) t.notOk(alive(pid), 'that QEMU is gone');

  const seven = await ktrial(['boot', SMOKE61, '--out', out, '--', 'sh', '-c', 'echo to-stdout; echo to-stderr >&2; exit 7']);
  t.equal(seven.code, 7, 'sh -c \'exit 7\' gives 7');
  // (execa strips the final newline)
  t.equal(seven.stdout, 'to-stdout', 'the command\'s stdout, and nothing else, is on stdout');
  t.match(seven.stderr, /^to-stderr$/m, 'its stderr is on stderr');

  const yes = await ktrial(['boot', SMOKE61, '--out', out, '--', 'true']);
  t.equal(yes.code, 0, 'true gives 0');
  t.equal(yes.stdout, '', 'true prints nothing');

  const no = await ktrial(['boot', SMOKE61, '--out', out, '--', 'false']);
  t.equal(no.code, 1, 'false gives 1');

  const killed = await ktrial(['boot', SMOKE61, '--out', out, '--', 'sh', '-c', 'kill -KILL $$']);
  t.equal(killed.code, 128 + 9, 'a command killed by SIGKILL gives 137, as a shell reports it');
  for (const r of [seven, yes, no, killed]) {
    const p = qemuPid(r.stderr);
    t.ok(p !== undefined && !alive(p), `QEMU ${p} is gone`);
  }
  t.same(await qemusUsing(out), [], 'no QEMU process refers to the output directory');
});

/** `boot -- CMD`, sent `signal` once the command has started in the guest (it said so). */
async function bootAndSignal(signal: NodeJS.Signals) {
  const out = await tmp('boot-signal');
  const child = execa('node', [repoPath('bin', 'ktrial.js'), 'boot', SMOKE61, '--out', out, '--', 'sh', '-c', 'echo started; exec sleep 1000'], { reject: false, cwd: repoPath() });
  let stderr = '';
  let sent = false;
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  child.stdout?.on('data', (d: Buffer) => {
    if (!sent && d.toString().includes('started')) {
      sent = true;
      child.kill(signal);
    }
  });
  // Bounded: should the signal never be sent or not be acted on, the run is stopped here.
  const guard = setTimeout(() => child.kill('SIGKILL'), 900_000);
  const r = await child;
  clearTimeout(guard);
  return { out, r, stderr, sent };
}

for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  t.test(`${signal} while boot -- CMD runs ends with 130 and leaves no QEMU`, async (t) => {
    const { out, r, stderr, sent } = await bootAndSignal(signal);
    t.ok(sent, 'the command started in the guest and the signal was sent');
    t.equal(r.exitCode, 130, 'interrupted: 130, not the lost command\'s 255');
    t.match(stderr, /interrupted/);
    const pid = qemuPid(stderr);
    t.ok(pid !== undefined && !alive(pid), `QEMU ${pid} is gone`);
    t.same(await qemusUsing(out), [], 'no QEMU process refers to the output directory');
  });
}

t.test('SIGKILL of ktrial, which cleans nothing up itself, still ends its QEMU (the parent-death signal)', async (t) => {
  const { out, r, stderr, sent } = await bootAndSignal('SIGKILL');
  t.ok(sent, 'the command started in the guest and ktrial was killed');
  t.equal(r.signal, 'SIGKILL', 'ktrial died of the signal');
  const pid = qemuPid(stderr);
  t.ok(pid, 'the progress output named QEMU\'s pid');
  // Should it outlive ktrial, it is not left running after the test.
  t.teardown(() => {
    if (pid !== undefined && alive(pid)) process.kill(pid, 'SIGKILL');
  });
  // The kernel delivers the signal as ktrial dies; QEMU is then reaped by init.
  const gone = await waitFor(async () => (pid !== undefined && !alive(pid) ? true : undefined), 30_000);
  t.equal(gone, true, `QEMU ${pid} is gone`);
  t.same(await qemusUsing(out), [], 'no QEMU process refers to the output directory');
});

t.test('boot --shell in tmux: a prompt, uname -r shows the release, exit ends it and QEMU', { skip: TMUX_MISSING }, async (t) => {
  const out = await tmp('shell');
  // A server of its own, on a socket in a directory of its own.
  const sock = join(await tmp('tmux'), 'sock');
  const tmux = (...args: string[]) => execa('tmux', ['-S', sock, '-f', '/dev/null', ...args], { reject: false });
  t.teardown(async () => {
    await tmux('kill-server');
  });
  // The pane stays after the command ends, so its exit status can be read.
  // ktrial's exit status is written by the pane's shell once ktrial has ended: tmux's own
  // #{pane_dead_status} is filled in only after it reaps the process, or not at all.
  const statusFile = join(await tmp('status'), 'exit');
  const command = `node ${repoPath('bin', 'ktrial.js')} boot ${SMOKE61} --shell --out ${out}; echo $? > ${statusFile}`;
  const started = await tmux('new-session', '-d', '-s', 'k', '-x', '150', '-y', '50', '-c', repoPath(), command, ';', 'set-option', '-g', 'remain-on-exit', 'on');
  if (!t.equal(started.exitCode, 0, 'tmux started')) t.comment(started.stderr);
  const screen = async () => (await tmux('capture-pane', '-p', '-J', '-S', '-', '-t', 'k')).stdout;
  const dead = async () => (await tmux('display-message', '-p', '-t', 'k', '#{pane_dead} #{pane_dead_status}')).stdout.trim();

  // The image's /etc/profile sets PS1='ktrial:\w\$ ' (# for root).
  const prompt = await waitFor(async () => (/^ktrial:\S*# ?$/m.test(await screen()) ? true : (await dead()).startsWith('1') ? false : undefined), 900_000);
  if (!t.equal(prompt, true, 'the guest shell shows its prompt')) {
    t.comment(await screen());
    return;
  }
  await tmux('send-keys', '-t', 'k', 'uname -r', 'Enter');
  const release = await bzImageRelease(join(out, 'bzImage'));
  const escaped = release.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const shown = await waitFor(async () => (new RegExp(`^ktrial:\\S*# uname -r\\n${escaped}$`, 'm').test(await screen()) ? true : undefined), 60_000);
  t.equal(shown, true, `uname -r prints the booted kernel's release (${release})`);

  await tmux('send-keys', '-t', 'k', 'exit', 'Enter');
  const ended = await waitFor(async () => {
    const text = await readFile(statusFile, 'utf8').catch(() => '');
    return text.endsWith('\n') ? text.trim() : undefined;
  }, 120_000);
  t.equal(ended, '0', 'ktrial ended with the shell\'s exit status 0');
  const text = await screen();
  const pid = qemuPid(text);
  t.ok(pid, 'the progress output names QEMU\'s pid');
  if (pid) t.notOk(alive(pid), 'that QEMU is gone');
  t.same(await qemusUsing(out), [], 'no QEMU process refers to the output directory');
});

t.test('doctor names a missing tool with its Debian package and exits 4', { skip: NO_DPKG_OWNER }, async (t) => {
  const tool = DOCTOR_TOOL;
  // dpkg -S says "xz-utils: /usr/bin/xz": the package, from dpkg, not from ktrial.
  const pkg = doctorToolOwner!.stdout.split(':')[0]!.trim();

  const full = await ktrial(['doctor']);
  t.equal(full.code, 0, 'with the usual PATH every tool is present');
  t.match(full.stdout, new RegExp(`^ok +${tool} +${pkg} `, 'm'));

  const bin = await pathWithout((name) => name === tool);
  const r = await ktrial(['doctor'], { PATH: bin });
  t.equal(r.code, 4, 'a missing tool is a host-side problem');
  t.match(r.stdout, new RegExp(`^MISSING +${tool} +${pkg} `, 'm'), 'the tool is MISSING, with its package');
  t.equal((r.stdout.match(/^MISSING/gm) ?? []).length, 1, 'nothing else is missing');
  t.match(r.stdout, new RegExp(`^1 missing\\. Install: sudo apt-get install -y ${pkg}\\b`, 'm'), 'the install line names the package');
});

t.test('KTRIAL_ACCEL=tcg forces TCG and the run says so', async (t) => {
  const out = await tmp('accel');
  const forced = await ktrial(['run', SMOKE61, '--only', 'a hostname set in a new UTS namespace is not seen outside', '--out', out], { KTRIAL_ACCEL: 'tcg' });
  if (!t.equal(forced.code, 0, 'the run passes')) t.comment(forced.stderr);
  t.match(forced.stderr, /vm: accelerator tcg \(KTRIAL_ACCEL=tcg\)/, 'the progress output gives the accelerator and why');
  t.notMatch(forced.stderr, /probing KVM/, 'no probe runs when the accelerator is forced');
  t.equal((await results(out)).kernel.accelerator, 'tcg', 'results.json records the accelerator');
});

t.test('a /dev/kvm that is not KVM: the probe falls back to TCG, says why and caches the verdict', { skip: NO_FAKE_KVM }, async (t) => {
  // A private mount namespace whose /dev/kvm is an empty file: it exists and is readable
  // and writable, so ktrial probes it, but QEMU cannot use it as KVM. A fresh file each
  // time has a fresh identity, so the per-host verdict is not in the cache yet.
  const fake = join(await tmp('fakekvm'), 'kvm');
  await writeFile(fake, '');
  // The verdict goes to a cache of this test's own, so the shared one never holds it.
  const cache = await privateCache();
  const inNs = (outDir: string) =>
    execa('unshare', ['-m', 'sh', '-c', FAKE_KVM_NS, 'sh', fake, 'node', repoPath('bin', 'ktrial.js'), 'boot', SMOKE61, '--out', outDir, '--', 'true'], {
      reject: false,
      cwd: repoPath(),
      env: { KTRIAL_ACCEL: '', KTRIAL_CACHE: cache },
    });
  const first = await inNs(await tmp('accel-probe'));
  if (!t.equal(first.exitCode, 0, 'the guest boots all the same')) t.comment(first.stderr);
  t.match(first.stderr, /accelerator: probing KVM/, 'ktrial probes KVM');
  t.match(first.stderr, /vm: accelerator tcg \(QEMU refused -accel kvm: [^\n]*failed to initialize kvm[^\n]*; using TCG, probe took [\d.]+ s\)/, 'it falls back to TCG with QEMU\'s refusal as the reason');
  t.match(first.stderr, /guest up \(tcg\)/);

  const second = await inNs(await tmp('accel-cached'));
  t.equal(second.exitCode, 0);
  t.notMatch(second.stderr, /probing KVM/, 'the verdict is not probed again');
  t.match(second.stderr, /vm: accelerator tcg \(QEMU refused -accel kvm: [^\n]*; using TCG, cached verdict\)/, 'the cached verdict keeps its reason');
});

t.test('a build error ends the run with exit 3 and the compiler\'s error line', async (t) => {
  const patchFile = fixture('patches', 'build-error-6.1.patch');
  // Where the compiler must point: the added line that uses the undeclared name, counted
  // from the hunk header of the fixture patch.
  const lines = (await readFile(patchFile, 'utf8')).split('\n');
  const hunk = lines.findIndex((l) => l.startsWith('@@ '));
  let newLine = Number(/\+(\d+)/.exec(lines[hunk]!)![1]);
  let bad = 0;
  for (const l of lines.slice(hunk + 1)) {
    if (l.startsWith('+') && l.includes('ktrial_fixture_undeclared')) {
      bad = newLine;
      break;
    }
    if (!l.startsWith('-')) newLine++;
  }
  t.ok(bad > 0, 'the fixture adds a line using an undeclared name');
  const errorLine = new RegExp(`init/version\\.c:${bad}:\\d+: error: [^\\n]*ktrial_fixture_undeclared[^\\n]*undeclared`);

  const out = await tmp('build-error');
  const r = await ktrial(['run', fixture('trials', 'build-error-6.1.yaml'), '--out', out]);
  t.equal(r.code, 3, 'a build error is a kernel-side failure');
  t.match(r.stderr, /kernel error: the kernel build failed: /);
  t.match(r.stderr, errorLine, 'stderr has the compiler\'s error line');
  const res = await results(out);
  t.equal(res.status, 'kernel');
  t.match(res.error?.message, errorLine, 'results.json has it too');
  t.ok(res.phases.some((p) => p.phase === 'build' && p.status === 'failed'), 'the build phase failed');
  t.ok(res.cases.length > 0 && res.cases.every((c) => c.verdict === 'not-run'), 'no case ran');
  const log = await readFile(join(out, 'build.log'), 'utf8');
  t.match(log, errorLine, 'the build log has the same line from the compiler');

  const bisect = await ktrial(['run', fixture('trials', 'build-error-6.1.yaml'), '--out', out, '--bisect']);
  t.equal(bisect.code, 125, 'under --bisect a commit that does not build is skipped');
});

t.test('a guest whose SSH never comes up ends in exit 3 with the console tail', async (t) => {
  // busybox sh as init: the kernel boots, but no sshd ever starts. loglevel=6 keeps the
  // kernel's "Run /bin/sh as init process" (an info line) off the console, so ktrial
  // cannot tell at once that another init runs and has to wait for the boot deadline.
  const out = await tmp('no-ssh');
  const r = await ktrial(['run', SMOKE61, '--cmdline', 'loglevel=6 rdinit=/bin/sh', '--timeout-boot', '40', '--out', out]);
  t.equal(r.code, 3, 'a kernel-side failure');
  t.match(r.stderr, /kernel error: no SSH connection to the guest before the boot deadline: /);
  const res = await results(out);
  t.equal(res.error?.class, 'kernel');
  t.match(res.error?.message, /^no SSH connection to the guest before the boot deadline: the kernel \(6\.1[^)]*\) booted but ktrial's init never reported "userland up"/);
  const console = await readFile(join(out, 'console.log'), 'utf8');
  // busybox sh on the console, as PID 1 without a controlling terminal, says so.
  t.match(console, /can't access tty; job control turned off/, 'busybox sh ran as init');
  t.match(res.error?.excerpt, /can't access tty; job control turned off/, 'the console tail is in results.json');
  t.match(r.stderr, /\| [^\n]*can't access tty; job control turned off/, 'and in the message on stderr');
  t.ok(res.cases.length > 0 && res.cases.every((c) => c.notRun?.cause === 'boot-failed'), 'every case is not run: boot failed');
  t.same(await qemusUsing(out), [], 'no QEMU process refers to the output directory');
});

t.test('--bisect turns bad options and bad input into 128 (abort)', async (t) => {
  const out = await tmp('bisect-abort');
  const repeat = await ktrial(['run', SMOKE61, '--bisect', '--repeat', 'x', '--out', out]);
  t.equal(repeat.code, 128, 'a bad --repeat aborts the bisection');
  t.match(repeat.stderr, /--repeat takes a whole number/);
  const plain = await ktrial(['run', SMOKE61, '--repeat', 'x', '--out', out]);
  t.equal(plain.code, 2, 'without --bisect the same is bad input, 2');

  const malformed = await ktrial(['run', fixture('trials', 'malformed.yaml'), '--bisect']);
  t.equal(malformed.code, 128, 'a malformed trial aborts the bisection');
  t.match(malformed.stderr, /malformed\.yaml:4:\d+: malformed YAML/);

  const unknown = await ktrial(['run', SMOKE61, '--bisect', '--no-such-option']);
  t.equal(unknown.code, 128, 'an unknown option aborts the bisection');
  t.match(unknown.stderr, /no-such-option/);

  const kconfig = await ktrial(['run', SMOKE61, '--bisect', '--kconfig-add', 'NOT_A_CONFIG', '--out', out]);
  t.equal(kconfig.code, 128, 'a malformed --kconfig-add aborts the bisection');
  t.match(kconfig.stderr, /--kconfig-add takes CONFIG_X=value/);

  const suite = await ktrial(['run', SMOKE61, '--bisect', '--suite', fixture('scenarios', 'does-not-exist.yaml'), '--out', out]);
  t.equal(suite.code, 128, 'a suite file that does not exist aborts the bisection');
  t.match(suite.stderr, /does-not-exist\.yaml/);
});
