// Boots real kernels with the real guest image and drives them over SSH.
//
// Kernels come from environment variables (each a directory holding bzImage and .config,
// or the path of a bzImage with its .config beside it):
//   KTRIAL_TEST_KERNEL_2620    a 2.6.20 kernel built with configs/fragments/guest-2.6.config
//   KTRIAL_TEST_KERNEL_MODERN  a modern kernel built with configs/fragments/guest-modern.config
// or, without them, from the build pipeline: the smoke trials' kernels (cached after the
// first build; 2.6.20 is skipped, with the reason, when no 2.6.20 source can be had). The guest image is built
// (or taken from the cache, KTRIAL_CACHE) on first use; a cold build takes a few minutes.
// The image includes the scenario agent, images/agent/agent.c (KTRIAL_TEST_AGENT=0: without).
import t from 'tap';
import { access, mkdtemp, readFile, stat } from 'node:fs/promises';
import { randomBytes, createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { PassThrough } from 'node:stream';
import { buildGuestImage, writeRunOverlay, type GuestImage } from '../../harness/image/index.js';
import { createVm, generateClientKey, liveGuestPids, runCommandInGuest, type Vm } from '../../harness/vm/index.js';
import { KtrialError } from '../../harness/common/errors.js';
import { Progress } from '../../harness/common/progress.js';
import { repoPath } from '../../harness/common/paths.js';
import { planRun } from '../../harness/runplan.js';
import { buildKernel } from '../../harness/kernel/pipeline.js';
import { sourceSkip } from '../helpers/trees.js';

const exists = (p: string) => access(p).then(() => true, () => false);
const withAgent = process.env.KTRIAL_TEST_AGENT !== '0';

async function resolveKernel(value: string | undefined): Promise<{ kernel: string; config: string } | string> {
  if (!value) return 'not set';
  let dir = value;
  let kernel = '';
  if ((await stat(value).catch(() => undefined))?.isDirectory()) {
    for (const k of ['bzImage', 'arch/x86/boot/bzImage', 'arch/x86_64/boot/bzImage']) {
      if (await exists(join(value, k))) {
        kernel = join(value, k);
        break;
      }
    }
  } else {
    kernel = value;
    dir = dirname(value);
  }
  if (!kernel || !(await exists(kernel))) return `no bzImage at ${value}`;
  for (const c of [join(dir, '.config'), join(dir, 'config'), `${kernel}.config`, join(dir, '..', '..', '..', '.config')]) {
    if (await exists(c)) return { kernel, config: c };
  }
  return `no .config beside ${basename(kernel)} in ${dir}`;
}

const HOW = 'set KTRIAL_TEST_KERNEL_2620 / KTRIAL_TEST_KERNEL_MODERN to a directory holding bzImage and .config (built with configs/fragments/guest-2.6.config or guest-modern.config)';

const progress = new Progress(process.env.KTRIAL_TEST_VERBOSE ? undefined : () => {});
const ctx = { progress, signal: new AbortController().signal };

let imagePromise: Promise<GuestImage> | undefined;
async function image(): Promise<GuestImage> {
  // The scenario agent goes in like in a real run (KTRIAL_TEST_AGENT=0 leaves it out).
  const extraPrograms = withAgent ? [{ name: 'ktrial-agent', sources: ['images/agent/agent.c'], installPath: '/usr/bin/ktrial-agent' }] : [];
  imagePromise ??= buildGuestImage({ extraPrograms }, ctx);
  return imagePromise;
}

async function boot(k: { kernel: string; config: string }, dir: string, extra: Partial<Parameters<typeof createVm>[0]> = {}): Promise<Vm> {
  const img = await image();
  const key = generateClientKey();
  const initramfs = await writeRunOverlay(img, key.publicKey, dir);
  return createVm(
    {
      kernel: k.kernel,
      initramfs,
      hostKeyPublic: img.hostKeyPublic,
      clientPrivateKey: key.privateKey,
      kernelConfig: k.config,
      memoryMiB: 256,
      bootTimeoutMs: 120_000,
      consoleLog: join(dir, 'console.log'),
      ...extra,
    },
    ctx,
  );
}

const pidAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/** The smoke trial's kernel from the pipeline (a cache hit after the first build). */
async function pipelineKernel(trialName: string): Promise<{ kernel: string; config: string } | string> {
  const skip = await sourceSkip(trialName);
  if (skip) return skip;
  const plan = await planRun(repoPath('configs', 'trials', `${trialName}.yaml`), { out: await mkdtemp(join(tmpdir(), 'ktrial-vm-build-')) });
  const k = await buildKernel(plan, ctx);
  return { kernel: k.bzImage, config: k.config };
}

const kernels: [string, string | undefined, RegExp, string][] = [
  ['2.6.20', process.env.KTRIAL_TEST_KERNEL_2620, /^2\.6\.20/, 'smoke-2.6.20'],
  ['modern', process.env.KTRIAL_TEST_KERNEL_MODERN, /^[3-9]\.|^\d{2}\./, 'smoke-debian-6.1'],
];

for (const [label, env, release, trialName] of kernels) {
  const resolved = env ? await resolveKernel(env) : await pipelineKernel(trialName);
  const skip = typeof resolved === 'string' ? `${label} kernel ${resolved}: ${HOW}` : false;
  t.test(`${label} kernel: boot, commands over one SSH connection, upload, shutdown`, { skip }, async (t) => {
    const k = resolved as { kernel: string; config: string };
    const dir = await mkdtemp(join(tmpdir(), `ktrial-vm-${label}-`));
    const vm = await boot(k, dir);
    t.teardown(() => vm.close());
    t.comment(`${label}: SSH ready ${vm.timings.sshReadyMs} ms after QEMU started (${vm.accel}); banner ${vm.timings.bannerMs} ms, init ${vm.timings.userlandMs} ms, sshd ${vm.timings.sshdMs} ms`);

    const uname = await vm.run('uname -r', { timeoutMs: 20_000 });
    t.equal(uname.exitCode, 0);
    t.match(uname.stdout.trim(), release);
    t.equal(vm.kernelVersion, uname.stdout.trim());

    const r = await vm.run('echo to-out; echo to-err >&2; exit 7', { timeoutMs: 20_000 });
    t.same([r.exitCode, r.stdout, r.stderr, r.timedOut], [7, 'to-out\n', 'to-err\n', false]);
    t.equal((await vm.run('false', { timeoutMs: 20_000 })).exitCode, 1);
    t.equal((await vm.run('cat', { timeoutMs: 20_000, stdin: 'fed on stdin' })).stdout, 'fed on stdin');

    // Ten commands in a row on the one connection; their latency is the benchmark's business.
    const codes: (number | null)[] = [];
    for (let i = 0; i < 10; i++) codes.push((await vm.run(`exit ${i}`, { timeoutMs: 20_000 })).exitCode);
    t.same(codes, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9], 'ten commands in a row on the reused connection, each with its own exit code');

    const slow = await vm.run('sleep 30; echo never', { timeoutMs: 1500 });
    t.equal(slow.timedOut, true, 'the command timed out');
    t.equal(slow.exitCode, null);
    t.equal(slow.stdout, '', 'the command was stopped before it printed');
    const left = await vm.run('ps | grep -c "[s]leep 30"', { timeoutMs: 20_000 });
    t.equal(left.stdout.trim(), '0', 'the timed-out command and its children are gone');
    t.equal((await vm.run('echo still here', { timeoutMs: 20_000 })).stdout, 'still here\n', 'the connection survives a timeout');

    const parallel = await Promise.all(Array.from({ length: 8 }, (_, i) => vm.run(`echo ${i}`, { timeoutMs: 30_000 })));
    t.same(
      parallel.map((p) => p.stdout.trim()),
      ['0', '1', '2', '3', '4', '5', '6', '7'],
      'eight commands at once on one connection',
    );

    const blob = randomBytes(1024 * 1024 + 3);
    await vm.copy(blob, '/tmp/up/blob.bin', 0o640);
    const sum = await vm.run('sha256sum /tmp/up/blob.bin; stat -c %a /tmp/up/blob.bin', { timeoutMs: 30_000 });
    t.equal(sum.stdout.split(/\s+/)[0], createHash('sha256').update(blob).digest('hex'), 'uploaded bytes arrive intact');
    t.equal(sum.stdout.trim().split('\n')[1], '640');

    const token = await vm.run('cat /run/ktrial/token', { timeoutMs: 20_000 });
    t.equal(token.stdout.trim(), vm.token);
    const agent = await vm.run('if [ -x /usr/bin/ktrial-agent ]; then /usr/bin/ktrial-agent --version; else echo absent; fi', { timeoutMs: 20_000 });
    if (withAgent) t.match(JSON.parse(agent.stdout), { agent: 'ktrial-agent', protocol: Number }, 'the scenario agent is in the image and runs');
    else t.equal(agent.stdout.trim(), 'absent', 'KTRIAL_TEST_AGENT=0 leaves the agent out');
    const version = await vm.run('cat /proc/version', { timeoutMs: 20_000 });
    t.match(version.stdout, /\(ktrial@ktrial\).* #1 .*Thu Jan {1,2}1 00:00:00 UTC 1970/, 'the kernel carries the pinned build identity, not the host\'s');
    const banner = await vm.run('busybox | head -n 1', { timeoutMs: 20_000 });
    t.match(banner.stdout, /\(1970-01-01 00:00:00 [A-Z]+\)/, 'busybox carries the recipe\'s fixed build date, so rebuilds are byte-for-byte equal');

    const out = new PassThrough();
    const err = new PassThrough();
    let outText = '';
    out.on('data', (d: Buffer) => (outText += d.toString()));
    const code = await runCommandInGuest(vm, ['sh', '-c', 'echo streamed; exit 5'], { stdout: out, stderr: err, stdin: null });
    t.equal(code, 5);
    t.equal(outText, 'streamed\n');

    const pid = vm.pid;
    await vm.close();
    t.notOk(pidAlive(pid), 'QEMU is gone after close()');
    t.notOk(liveGuestPids().includes(pid));
    const log = await readFile(join(dir, 'console.log'), 'utf8');
    t.match(log, /ktrial-init: sshd started/, 'the console log is kept');
    t.match(log, /ktrial-init: powering off/);
    await t.rejects(vm.run('true', { timeoutMs: 1000 }), KtrialError, 'a closed VM refuses commands');
  });

  t.test(`${label} kernel: a saved guest state starts identical guests`, { skip }, async (t) => {
    const k = resolved as { kernel: string; config: string };
    const dir = await mkdtemp(join(tmpdir(), `ktrial-vm-${label}-state-`));
    const vm = await boot(k, dir);
    t.teardown(() => vm.close());
    const marker = randomBytes(8).toString('hex');
    await vm.run(`echo ${marker} > /tmp/saved; sleep 1000 >/dev/null 2>&1 & echo $! > /tmp/sleeper`, { timeoutMs: 20_000 });
    const saved = await vm.saveState(join(dir, 'guest.state'));
    t.ok((await stat(join(dir, 'guest.state'))).size > 0, 'the state file is written');
    t.notOk(await exists(join(dir, 'guest.state.partial')), 'no partial state file is left');
    const after = await vm.run('cat /tmp/saved; echo changed > /tmp/saved; kill $(cat /tmp/sleeper)', { timeoutMs: 20_000 });
    t.equal(after.stdout.trim(), marker, 'the saved guest goes on running after the save');
    await vm.close();
    for (const n of [1, 2]) {
      const restored = await createVm({ ...saved, consoleLog: join(dir, `console-restored-${n}.log`) }, ctx);
      try {
        const r = await restored.run('cat /tmp/saved; kill -0 $(cat /tmp/sleeper) && echo sleeper-alive; cat /run/ktrial/token', { timeoutMs: 20_000 });
        t.same(r.stdout.trim().split('\n'), [marker, 'sleeper-alive', vm.token], `restore ${n}: files, processes and the boot token are as they were saved, not as changed after`);
        await restored.run('echo changed-again > /tmp/saved', { timeoutMs: 20_000 });
        t.not(restored.pid, vm.pid, 'a QEMU of its own');
      } finally {
        await restored.close();
      }
    }
    await t.rejects(createVm({ ...saved, restore: { ...saved.restore!, stateFile: join(dir, 'missing.state') }, consoleLog: join(dir, 'console-missing.log'), bootTimeoutMs: 20_000 }, ctx), KtrialError, 'a missing state file is an error, not a hang');
  });

  t.test(`${label} kernel: a broken init fails fast with a console excerpt`, { skip }, async (t) => {
    const k = resolved as { kernel: string; config: string };
    const dir = await mkdtemp(join(tmpdir(), `ktrial-vm-${label}-broken-`));
    try {
      await boot(k, dir, { cmdlineExtra: 'rdinit=/nonexistent', bootTimeoutMs: 120_000 });
      t.fail('the boot should have failed');
    } catch (err) {
      t.ok(err instanceof KtrialError, 'a KtrialError');
      const e = err as KtrialError;
      t.equal(e.cls, 'kernel');
      // Failing fast means failing on what the console showed, not on the boot deadline.
      t.match(e.message, /^the kernel (could not start init|panicked|did not start ktrial's \/init but \S+) .*before SSH came up/, 'the console\'s failure ends the boot');
      t.notMatch(e.message, /boot deadline/);
      t.ok((e.excerpt ?? '').split('\n').length >= 5, 'with a console excerpt');
    }
    t.same(liveGuestPids(), [], 'no QEMU left running');
  });
}

t.test('no QEMU started by these tests survives', async (t) => {
  t.same(liveGuestPids(), []);
});
