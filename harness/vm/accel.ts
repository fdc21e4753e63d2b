// Which accelerator QEMU should use. /dev/kvm existing is not enough: on some hosts it is a
// backend on which ordinary kernels hang silently. So KVM is probed once per host (per
// QEMU version and /dev/kvm identity) by booting the kernel under test with -accel kvm and
// no userland: a kernel that reaches its end-of-boot panic ("no init") within the probe
// time has run fine under KVM. Otherwise ktrial uses TCG. The verdict is cached.
import { access, constants, mkdir, readFile, stat, writeFile, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheRoot } from '../common/cache.js';
import { hashValue, shortHash } from '../common/hash.js';
import type { StageContext } from '../common/context.js';
import { classifyLine, cleanLine } from './console.js';
import { qemuFd, qemuVersion, startQemu, stopQemu } from './qemu.js';
import { confinementFor, sandboxArgs } from './confine.js';

export type Accel = 'kvm' | 'tcg';

export interface AccelVerdict {
  accel: Accel;
  /** Why: "probe booted in 1.2 s", "no /dev/kvm", "probe saw no kernel output in 10 s", "KTRIAL_ACCEL=tcg". */
  reason: string;
  /** How long the probe took (0 when no probe ran). */
  probeMs: number;
  /** True when the verdict came from the per-host cache. */
  cached: boolean;
}

export const PROBE_TIMEOUT_MS = 10_000;

/** QEMU's arguments for the accelerator (KVM with the host's CPU model). */
export const accelArgs = (accel: Accel): string[] => (accel === 'kvm' ? ['-accel', 'kvm', '-cpu', 'host'] : ['-accel', 'tcg']);

async function kvmIdentity(): Promise<{ present: boolean; usable: boolean; id: string }> {
  try {
    const st = await stat('/dev/kvm');
    let usable = true;
    try {
      await access('/dev/kvm', constants.R_OK | constants.W_OK);
    } catch {
      usable = false;
    }
    return { present: true, usable, id: `${st.rdev}:${st.ino}:${st.ctimeMs}` };
  } catch {
    return { present: false, usable: false, id: 'none' };
  }
}

/**
 * Boot `kernel` under KVM with no initramfs and watch the console. Success: the kernel
 * gets to the end of its boot (a panic for want of a root/init, or running init).
 */
export async function probeKvm(qemu: string, kernel: string, timeoutMs = PROBE_TIMEOUT_MS): Promise<{ ok: boolean; reason: string; ms: number; console: string; conclusive: boolean }> {
  const t0 = Date.now();
  let text = '';
  let partial = '';
  let sawBanner = false;
  let sawEnd = false;
  let resolveEnd: () => void = () => {};
  const ended = new Promise<void>((r) => (resolveEnd = r));
  const onChunk = (d: Buffer) => {
    if (text.length < 256 * 1024) text += d.toString('utf8');
    const lines = (partial + d.toString('utf8')).split('\n');
    partial = lines.pop() ?? '';
    for (const l of lines) {
      for (const ev of classifyLine(cleanLine(l), 0)) {
        if (ev.kind === 'banner') sawBanner = true;
        if (ev.kind === 'panic' || ev.kind === 'run-init' || ev.kind === 'no-init') {
          sawEnd = true;
          resolveEnd();
        }
      }
    }
  };
  const args = [
    '-accel', 'kvm', '-cpu', 'host', '-machine', 'pc', '-m', '256', '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-chardev', 'stdio,id=con0,signal=off', '-serial', 'chardev:con0',
    '-kernel', `/dev/fd/${qemuFd(0)}`,
    '-append', 'console=ttyS0 earlyprintk=serial,ttyS0,115200 panic=-1 root=/dev/ktrial-probe-none',
  ];
  let q;
  try {
    // Probed as the guests will run: confined the same way.
    const confined = await confinementFor(qemu);
    q = await startQemu(qemu, [...sandboxArgs(confined.sandbox), ...args], onChunk, { files: [kernel], ...(confined.user ? { user: confined.user } : {}) });
  } catch (err) {
    return { ok: false, reason: `cannot start QEMU for the KVM probe: ${(err as Error).message}`, ms: Date.now() - t0, console: '', conclusive: false };
  }
  const timeout = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), timeoutMs).unref());
  const r = await Promise.race([ended.then(() => 'end' as const), q.exited.then(() => 'exit' as const), timeout]);
  await stopQemu(q, 500);
  const ms = Date.now() - t0;
  if (sawEnd) return { ok: true, reason: `a kernel booted under KVM to the end of its boot in ${(ms / 1000).toFixed(1)} s`, ms, console: text, conclusive: true };
  if (r === 'exit') {
    const err = q.stderr().trim().split('\n').slice(-3).join(' ');
    return { ok: false, reason: `QEMU refused -accel kvm${err ? `: ${err}` : ''}`, ms, console: text, conclusive: true };
  }
  return {
    ok: false,
    reason: sawBanner ? `under KVM the kernel started but did not finish booting in ${timeoutMs / 1000} s` : `under KVM the kernel printed nothing in ${timeoutMs / 1000} s`,
    ms,
    console: text,
    // A kernel that starts and then hangs may be at fault itself: decide for this run only.
    conclusive: !sawBanner,
  };
}

/** Decide the accelerator: KTRIAL_ACCEL overrides; else the cached verdict; else probe. */
export async function chooseAccel(qemu: string, kernel: string, ctx: StageContext): Promise<AccelVerdict> {
  const forced = process.env.KTRIAL_ACCEL;
  if (forced === 'kvm' || forced === 'tcg') return { accel: forced, reason: `KTRIAL_ACCEL=${forced}`, probeMs: 0, cached: false };
  const kvm = await kvmIdentity();
  if (!kvm.present) return { accel: 'tcg', reason: 'no /dev/kvm on this host', probeMs: 0, cached: false };
  if (!kvm.usable) return { accel: 'tcg', reason: '/dev/kvm is not readable and writable by this user', probeMs: 0, cached: false };
  const version = await qemuVersion(qemu);
  const key = shortHash(hashValue({ qemu: version, kvm: kvm.id }));
  const dir = join(cacheRoot(), 'accel');
  const file = join(dir, `${key}.json`);
  try {
    const v = JSON.parse(await readFile(file, 'utf8')) as AccelVerdict;
    if (v.accel === 'kvm' || v.accel === 'tcg') return { ...v, cached: true };
  } catch {
    // no verdict yet
  }
  ctx.progress.info(`accelerator: probing KVM (up to ${PROBE_TIMEOUT_MS / 1000} s, once per host)`);
  const p = await probeKvm(qemu, kernel);
  const verdict: AccelVerdict = { accel: p.ok ? 'kvm' : 'tcg', reason: p.ok ? p.reason : `${p.reason}; using TCG`, probeMs: p.ms, cached: false };
  if (!p.conclusive) return verdict;
  await mkdir(dir, { recursive: true });
  const tmp = `${file}.tmp-${process.pid}`;
  await writeFile(tmp, `${JSON.stringify({ ...verdict, qemu: version, decidedAt: new Date().toISOString() }, null, 2)}\n`);
  await rename(tmp, file);
  return verdict;
}
