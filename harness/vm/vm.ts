// The VM stage: boot a kernel with the guest image in QEMU and wait until the guest answers
// SSH, failing fast on a panic, an oops or init dying; the running guest is guest.ts's. The
// shape follows syzkaller's small VM interface.
import { randomBytes } from 'node:crypto';
import { access, constants, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from 'ssh2';
import { hostFailure, kernelFailure, badInput, KtrialError } from '../common/errors.js';
import { requireTools } from '../common/hosttools.js';
import type { StageContext } from '../common/context.js';
import { accelArgs, chooseAccel, type Accel } from './accel.js';
import { FATAL_KINDS, summarize } from './console.js';
import { ConsoleWatch, type TimedEvent } from './consolewatch.js';
import { checkCpus, chooseDevices } from './devices.js';
import { KernelConfig } from '../config/kconfig.js';
import { freePort, qemuFd, startQemu, stopQemu, type QemuProcess } from './qemu.js';
import { confinementFor, netdevOption, sandboxArgs, userName, type Confinement, type NetworkAccess } from './confine.js';
import { connectOnce, execOn, SshConnectError } from './ssh.js';
import { connectQmp, type QmpClient } from './qmp.js';
import { writeOwnFile } from '../common/paths.js';
import { FATAL_SETTLE_MS, makeVm, sleep, type BootTimings, type LinkKick, type SilentBoot, type Vm } from './guest.js';

export type { ExecOptions, ExecResult } from './ssh.js';

export interface VmRequest {
  /** The kernel image (bzImage). */
  kernel: string;
  /** The initramfs to boot: normally writeRunOverlay()'s output (base image + run key). */
  initramfs: string;
  /** The image's host key (GuestImage.hostKeyPublic); the only key the client accepts. */
  hostKeyPublic: string;
  /** The run's client private key (OpenSSH); its public half must be in the initramfs. */
  clientPrivateKey: string;
  /** The kernel's .config (path or parsed); it decides which devices QEMU provides. */
  kernelConfig: string | KernelConfig;
  memoryMiB?: number;
  cpus?: number;
  /** Extra kernel command line words. */
  cmdlineExtra?: string | string[];
  /** Add oops=panic to the kernel command line (default false). */
  oopsPanic?: boolean;
  /** How long QEMU may take from start to a working SSH connection. */
  bootTimeoutMs: number;
  /** Where the serial console is written (kept after the VM is gone). */
  consoleLog: string;
  /** Called with every console line as it arrives (e.g. to echo it). */
  onConsoleLine?: (line: string) => void;
  /** Force an accelerator instead of probing. */
  accel?: Accel;
  qemuBinary?: string;
  /**
   * Resume a guest from a state file (Vm.saveState) instead of booting: QEMU starts with the
   * same devices and loads the state; the guest carries the token it was booted with.
   */
  restore?: { stateFile: string; token: string };
  /** What the guest's network reaches (confined unless a run asks for outbound). */
  network?: NetworkAccess;
}

const DEFAULT_MEMORY_MIB = 512;
/** First handshake budget; it doubles (up to 8x) each time a handshake times out after sshd started. */
const HANDSHAKE_TIMEOUT_MS = 700;
const POLL_INTERVAL_MS = 250;
const PORT_TRIES = 5;
/**
 * A guest whose sshd started this long ago and has completed no handshake since is taken
 * for silent (a few boots of 2.6.20 under TCG on a loaded host end that way: the link is up,
 * dropbear never sees a connection): its QEMU is stopped and a fresh QEMU boots in its
 * place. A healthy guest completes a handshake within seconds of sshd starting (2.6.20
 * under TCG at a host load of 17 to 21: 1.5 to 2.8 s over 8 boots).
 */
const SILENT_AFTER_SSHD_MS = 40_000;
/**
 * A silent guest's link is taken down and up again (QMP set_link) before its QEMU is given
 * up: the NIC then raises a link-change interrupt and QEMU hands it the packets it held.
 * This long is allowed for a handshake after that.
 */
const SILENT_AFTER_KICK_MS = 15_000;
const LINK_DOWN_MS = 500;
const SILENT_ATTEMPTS_SHOWN = 20;
/** What QEMU can tell of a silent guest: its interrupt controllers and lines, its NIC, its CPU. */
const SILENT_STATE_COMMANDS = ['info status', 'info pic', 'info irq', 'info network', 'info registers'];
/**
 * Fresh QEMUs after a silent one; each gets a full boot deadline of its own. Two, since
 * silent boots can come in a row on a busy host (two of 2.6.24 once, within a minute).
 */
const SILENT_RETRIES = 2;

/** The console log a silent attempt leaves behind: console.log -> console.attempt-1.log. */
export const attemptLogName = (consoleLog: string, attempt: number) => consoleLog.replace(/(\.log)?$/, `.attempt-${attempt}$1`);

/** Where a silent guest's QEMU state is written: console.log -> console.silent-state.txt. */
const silentStateName = (consoleLog: string) => consoleLog.replace(/(\.log)?$/, '.silent-state.txt');

/** The files QEMU reads, in the order of their descriptors (qemuFd). */
const launchFiles = (req: VmRequest): string[] => [req.kernel, req.initramfs, ...(req.restore ? [req.restore.stateFile] : [])];

function qemuArgs(req: VmRequest, accel: Accel, port: number, token: string, devices: ReturnType<typeof chooseDevices>, qmpSocket: string, sandbox: boolean): string[] {
  const extra = Array.isArray(req.cmdlineExtra) ? req.cmdlineExtra : req.cmdlineExtra ? req.cmdlineExtra.split(/\s+/).filter(Boolean) : [];
  // panic=1, not -1: 2.6-era kernels only reboot (and so, with -no-reboot, end QEMU) on a positive timeout.
  const cmdline = ['console=ttyS0', 'panic=1', ...(req.oopsPanic ? ['oops=panic'] : []), `ktrial.token=${token}`, ...extra].join(' ');
  return [
    ...accelArgs(accel),
    '-machine', 'pc',
    '-m', String(req.memoryMiB ?? DEFAULT_MEMORY_MIB),
    // One CPU per socket: the BIOS's MP table lists one processor per socket, and a kernel
    // without ACPI (every ktrial guest) finds its CPUs there; QEMU's default puts them all
    // in one socket, and such a guest then sees one.
    '-smp', `${req.cpus ?? 1},sockets=${req.cpus ?? 1},cores=1,threads=1`,
    '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
    '-chardev', 'stdio,id=con0,signal=off', '-serial', 'chardev:con0',
    ...sandboxArgs(sandbox),
    '-kernel', `/dev/fd/${qemuFd(0)}`,
    '-initrd', `/dev/fd/${qemuFd(1)}`,
    '-append', cmdline,
    '-netdev', netdevOption(port, req.network ?? 'confined'),
    '-device', `${devices.nic},netdev=net0`,
    ...devices.extra.flatMap((d) => ['-device', d]),
    '-qmp', `unix:${qmpSocket},server=on,wait=off`,
    ...(req.restore ? ['-incoming', `fd:${qemuFd(2)}`] : []),
  ];
}

const portRace = (stderr: string) => /Could not set up host forwarding rule|Address already in use/i.test(stderr);

async function mustExist(path: string, what: string): Promise<void> {
  try {
    await access(path, constants.R_OK);
  } catch (err) {
    throw badInput(`${what} ${path} cannot be read (${(err as NodeJS.ErrnoException).code ?? err})`);
  }
}

/** Boot a guest and return it once SSH works and the guest proved it is the one we booted. */
export async function createVm(req: VmRequest, ctx: StageContext): Promise<Vm> {
  const qemuBin = req.qemuBinary ?? 'qemu-system-x86_64';
  if (qemuBin.includes('/')) {
    await access(qemuBin, constants.X_OK).catch(() => {
      throw badInput(`the QEMU binary ${qemuBin} is not an executable file`);
    });
  } else await requireTools([qemuBin], 'booting a guest');
  await mustExist(req.kernel, 'the kernel image');
  await mustExist(req.initramfs, 'the initramfs');
  if (req.restore) await mustExist(req.restore.stateFile, 'the saved guest state');
  const cfg = typeof req.kernelConfig === 'string' ? await KernelConfig.load(req.kernelConfig) : req.kernelConfig;
  checkCpus(cfg, req.cpus ?? 1);
  const devices = chooseDevices(cfg);
  const confined = await confinementFor(qemuBin);
  const verdict = req.accel ? { accel: req.accel, reason: 'requested', probeMs: 0, cached: false } : await chooseAccel(qemuBin, req.kernel, ctx);
  ctx.progress.info(`vm: accelerator ${verdict.accel} (${verdict.reason}${verdict.cached ? ', cached verdict' : verdict.probeMs ? `, probe took ${(verdict.probeMs / 1000).toFixed(1)} s` : ''}); devices: ${devices.notes.join(', ')}`);
  const token = req.restore?.token ?? randomBytes(16).toString('hex');
  // Unix socket paths are short (108 bytes): the QMP socket lives in the temp directory.
  const qmpSocket = join(tmpdir(), `ktrial-qmp-${randomBytes(8).toString('hex')}.sock`);
  let console = new ConsoleWatch(req.consoleLog, req.onConsoleLine);

  let q: QemuProcess | undefined;
  let port = 0;
  const onAbort = () => {
    if (q && !q.hasExited()) {
      try {
        process.kill(q.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  };
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Error('aborted');
    let t0 = Date.now();
    let deadline = t0 + req.bootTimeoutMs;
    let client: Client | undefined;
    let attempts = 0;
    const attemptLog: AttemptLog = [];
    const silentBoots: SilentBoot[] = [];
    let linkKick: LinkKick | undefined;
    for (let tryNo = 1; ; tryNo++) {
      port = await freePort();
      const feed = console;
      q = await startQemu(qemuBin, qemuArgs(req, verdict.accel, port, token, devices, qmpSocket, confined.sandbox), (d) => feed.feed(d), { files: launchFiles(req), ...(confined.user ? { user: confined.user } : {}) });
      if (req.restore) await resumeRestored(q, qmpSocket, req.restore.stateFile, deadline);
      const stateFile = silentStateName(req.consoleLog);
      const res = await waitForSsh(q, console, {
        port,
        hostKeyPublic: req.hostKeyPublic,
        privateKey: req.clientPrivateKey,
        deadline,
        signal: ctx.signal,
        log: attemptLog,
        qmpSocket,
        stateFile,
        onSilent: (m) => ctx.progress.info(`vm: ${m}`),
      });
      attempts += res.attempts;
      if (res.outcome === 'connected') {
        client = res.client;
        linkKick = res.linkKick;
        if (linkKick) ctx.progress.info(`vm: the silent guest answered after its link was taken down and up`);
        break;
      }
      if (res.outcome === 'port-race') {
        if (tryNo < PORT_TRIES) {
          ctx.progress.info(`vm: port ${port} was taken before QEMU could bind it; retrying with another`);
          continue;
        }
        throw hostFailure(`QEMU could not bind a free port for the guest's SSH ${PORT_TRIES} times in a row (the last was ${port})`, { excerpt: q.stderr().trim() || undefined, hint: 'another program takes ports on 127.0.0.1 as fast as they are freed; find it with `ss -ltnp`' });
      }
      if (res.outcome === 'silent' && silentBoots.length < SILENT_RETRIES && !ctx.signal.aborted) {
        // Keep the silent boot's console under its own name and boot a fresh QEMU.
        await stopQemu(q, 0);
        console.flush();
        await console.close();
        const kept = attemptLogName(req.consoleLog, silentBoots.length + 1);
        await rename(req.consoleLog, kept);
        const keptState = silentStateName(kept);
        const state = res.linkKick.state ? await rename(res.linkKick.state, keptState).then(() => keptState) : undefined;
        silentBoots.push({ console: kept, ...(state ? { state } : {}), reason: res.error.message, afterMs: Date.now() - t0 });
        ctx.progress.info(`vm: ${res.error.message}; booting a fresh QEMU (the silent boot's console is ${kept})`);
        console = new ConsoleWatch(req.consoleLog, req.onConsoleLine);
        t0 = Date.now();
        deadline = t0 + req.bootTimeoutMs;
        continue;
      }
      if (silentBoots.length) res.error.message += ` (after ${silentBoots.length} silent boot${silentBoots.length > 1 ? 's' : ''} before it: ${silentBoots.map((b) => b.console).join(', ')})`;
      throw res.error;
    }
    const sshReadyMs = Date.now() - t0;

    // Make sure the guest that answered is the one we booted (not a stale QEMU on the port).
    const tok = await execOn(client, 'cat /run/ktrial/token', { timeoutMs: 10_000 });
    if (tok.exitCode !== 0 || tok.stdout.trim() !== token) {
      client.end();
      throw hostFailure(`the guest answering on 127.0.0.1:${port} is not the one this run booted (token mismatch)`, {
        hint: 'another QEMU (perhaps left over from an earlier run) holds the port; list them with `pgrep -a qemu-system` and stop the stale one',
      });
    }
    const first = (k: TimedEvent['kind']) => console.events.find((e) => e.kind === k)?.atMs;
    const timings: BootTimings = { sshReadyMs, sshAttempts: attempts, attemptLog, ...(silentBoots.length ? { silentBoots } : {}), ...(linkKick ? { linkKick } : {}) };
    const b = first('banner');
    if (b !== undefined) timings.bannerMs = b;
    const u = first('userland-up');
    if (u !== undefined) timings.userlandMs = u;
    const s = first('sshd-started');
    if (s !== undefined) timings.sshdMs = s;
    ctx.progress.info(`vm: guest up in ${(sshReadyMs / 1000).toFixed(1)} s (${verdict.accel}, ssh port ${port}, qemu pid ${q.pid})`);
    const confinement: Confinement = { network: req.network ?? 'confined', sandbox: confined.sandbox, user: userName(confined.user) };
    return makeVm(q, client, console, { accel: verdict.accel, accelReason: verdict.reason, port, token, timings, qmpSocket, request: req, confinement, qemuUser: confined.user }, ctx, onAbort);
  } catch (err) {
    ctx.signal.removeEventListener('abort', onAbort);
    if (q) await stopQemu(q, 500);
    await rm(qmpSocket, { force: true });
    await console.close();
    if (ctx.signal.aborted && ctx.signal.reason instanceof Error) throw ctx.signal.reason;
    throw err;
  }
}

/**
 * A guest saved while paused comes back paused (QEMU carries the run state across): wait
 * for QEMU to load the state, then let the guest go on.
 */
async function resumeRestored(q: QemuProcess, qmpSocket: string, stateFile: string, deadline: number): Promise<void> {
  let qmp: QmpClient | undefined;
  while (!qmp) {
    if (q.hasExited()) throw hostFailure(`QEMU exited while loading the saved guest state ${stateFile}`, { excerpt: q.stderr().trim() || undefined });
    qmp = await connectQmp(qmpSocket, 1000).catch(() => undefined);
    if (!qmp) await sleep(20);
  }
  try {
    for (;;) {
      const st = await qmp.execute<{ status: string; running: boolean }>('query-status');
      if (st.running) return;
      if (st.status !== 'inmigrate') break;
      if (Date.now() > deadline) throw hostFailure(`QEMU did not finish loading the saved guest state ${stateFile} before the boot deadline`);
      await sleep(20);
    }
    await qmp.execute('cont');
  } catch (err) {
    if (err instanceof KtrialError) throw err;
    await Promise.race([q.exited, sleep(500)]);
    throw hostFailure(`QEMU could not resume the saved guest state ${stateFile}: ${(err as Error).message}`, { excerpt: q.stderr().trim() || undefined });
  } finally {
    qmp.close();
  }
}

/** How waiting for SSH ended: connected, QEMU lost the race for its port, a silent guest, or a failure. */
type WaitResult = { attempts: number } & (
  | { outcome: 'connected'; client: Client; linkKick?: LinkKick }
  | { outcome: 'port-race' }
  /** sshd started long ago and no handshake completed since, not even after a link kick: worth a fresh QEMU. */
  | { outcome: 'silent'; error: KtrialError; linkKick: LinkKick }
  | { outcome: 'failed'; error: KtrialError }
);

type AttemptLog = BootTimings['attemptLog'];

/** Poll for a completed SSH handshake while watching the console and QEMU. */
async function waitForSsh(
  q: QemuProcess,
  console: ConsoleWatch,
  o: {
    port: number;
    hostKeyPublic: string;
    privateKey: string;
    deadline: number;
    signal: AbortSignal;
    log: AttemptLog;
    qmpSocket: string;
    /** Where a silent guest's QEMU state is written. */
    stateFile: string;
    onSilent: (message: string) => void;
  },
): Promise<WaitResult> {
  let fatal: TimedEvent | undefined = console.events.find((e) => FATAL_KINDS.has(e.kind));
  let wake: () => void = () => {};
  let kick: () => void = () => {};
  const off = console.on((e) => {
    if (!fatal && (FATAL_KINDS.has(e.kind) || e.kind === 'power-off' || e.kind === 'restart' || foreignInit(e))) {
      fatal = e;
      wake();
    }
    // Moments when a fresh attempt can succeed where a pending one may hang: a SYN sent
    // while sshd was not listening, or while the link was down, is only retried by
    // QEMU's user-net stack after seconds.
    if (e.kind === 'sshd-started' || e.kind === 'link-up') kick();
  });
  const exited = q.exited.then(() => 'exit' as const);
  let attempts = 0;
  let slowAttempts = 0;
  let linkKick: LinkKick | undefined;
  try {
    for (;;) {
      if (o.signal.aborted) return { attempts, outcome: 'failed', error: hostFailure('interrupted while the guest was booting') };
      if (fatal) return { attempts, outcome: 'failed', error: await fatalError(fatal, q, console) };
      if (q.hasExited()) {
        console.flush();
        if (portRace(q.stderr())) return { attempts, outcome: 'port-race' };
        const f = console.events.find((e) => FATAL_KINDS.has(e.kind) || e.kind === 'power-off');
        if (f) return { attempts, outcome: 'failed', error: await fatalError(f, q, console) };
        return { attempts, outcome: 'failed', error: exitedError(q, console) };
      }
      const left = o.deadline - Date.now();
      if (left <= 0) return { attempts, outcome: 'failed', error: timeoutError(console) };
      const sshd = console.events.find((x) => x.kind === 'sshd-started');
      if (sshd && !linkKick && console.elapsedMs() - sshd.atMs > SILENT_AFTER_SSHD_MS) {
        o.onSilent(`the guest is silent ${SILENT_AFTER_SSHD_MS / 1000} s after sshd started; writing QEMU's view of it to ${o.stateFile} and taking its link down and up`);
        linkKick = { ...(await kickSilentGuest(o.qmpSocket, o.stateFile, o.log.slice(-SILENT_ATTEMPTS_SHOWN))), afterSshdMs: console.elapsedMs() - sshd.atMs };
        continue;
      }
      if (sshd && linkKick && console.elapsedMs() - sshd.atMs > linkKick.afterSshdMs + SILENT_AFTER_KICK_MS) {
        const state = linkKick.state ? `QEMU's view of it is in ${linkKick.state}` : `QEMU's view of it could not be read: ${linkKick.problem}`;
        return {
          attempts,
          outcome: 'silent',
          linkKick,
          error: kernelFailure(
            `the guest is silent: sshd started ${(sshd.atMs / 1000).toFixed(1)} s after QEMU did, and no SSH handshake completed in the ${SILENT_AFTER_SSHD_MS / 1000} s since, nor in the ${SILENT_AFTER_KICK_MS / 1000} s after its link was taken down and up`,
            { excerpt: console.tail(30), hint: `the full console log is ${console.path}; ${state}` },
          ),
        };
      }
      attempts++;
      // Short attempts while the guest comes up, longer ones if handshakes keep timing out
      // (a slow or busy host).
      const budget = Math.min(HANDSHAKE_TIMEOUT_MS * 2 ** Math.min(slowAttempts, 3), Math.max(500, left));
      const attempt = connectOnce({ host: '127.0.0.1', port: o.port, hostKeyPublic: o.hostKeyPublic, privateKey: o.privateKey }, budget);
      const fatalSeen = new Promise<'fatal'>((r) => (wake = () => r('fatal')));
      const kicked = new Promise<'kick'>((r) => (kick = () => r('kick')));
      const startedAt = console.elapsedMs();
      const r = await Promise.race([attempt.then((c) => ({ c }), (e: unknown) => ({ e })), exited, fatalSeen, kicked]);
      o.log.push({ atMs: startedAt, ms: console.elapsedMs() - startedAt, outcome: typeof r !== 'object' ? `abandoned (${r})` : 'c' in r ? 'connected' : (r.e as Error).message });
      if (typeof r === 'object' && 'c' in r) return { attempts, outcome: 'connected', client: r.c, ...(linkKick ? { linkKick } : {}) };
      if (typeof r !== 'object') {
        // QEMU exited, the console reported a failure, or sshd just started: drop this
        // attempt when it settles.
        attempt.then((c) => c.end(), () => {});
        continue;
      }
      const e = r.e;
      if (e instanceof SshConnectError && e.timedOut && console.events.some((x) => x.kind === 'sshd-started')) slowAttempts++;
      if (e instanceof SshConnectError && e.clientUnusable) return { attempts, outcome: 'failed', error: hostFailure(e.message, { hint: 'a bug of ktrial: please report it with this message' }) };
      if (e instanceof SshConnectError && e.keyRefused) {
        return {
          attempts,
          outcome: 'failed',
          error: hostFailure(`the guest's SSH server on 127.0.0.1:${o.port} refused this run's client key: the initramfs the guest booted does not carry it`, {
            hint: 'another ktrial process may have rewritten the run directory\'s initramfs.cpio while this guest was starting; give each run its own --out directory',
          }),
        };
      }
      if (e instanceof SshConnectError && e.hostKeyMismatch) {
        return {
          attempts,
          outcome: 'failed',
          error: hostFailure(`the SSH server on 127.0.0.1:${o.port} presented a host key other than the guest image's`, {
            hint: 'another machine or a stale QEMU answers on that port; stop it and retry',
          }),
        };
      }
      // A refused or reset connection comes back at once: pause before the next one. After
      // a timeout, try again straight away.
      if (!(e instanceof SshConnectError && e.timedOut)) await Promise.race([sleep(POLL_INTERVAL_MS), fatalSeen, exited]);
    }
  } finally {
    off();
  }
}

/**
 * Write QEMU's view of a silent guest to stateFile, then take the guest's link down and up.
 * Neither may end the boot: what failed is reported instead.
 */
async function kickSilentGuest(qmpSocket: string, stateFile: string, lastAttempts: AttemptLog): Promise<Omit<LinkKick, 'afterSshdMs'>> {
  let qmp: QmpClient | undefined;
  let state: string | undefined;
  try {
    qmp = await connectQmp(qmpSocket, 2000);
    const parts = [`== the last SSH attempts (ms after QEMU started, how long, how each ended)\n${lastAttempts.map((a) => `${a.atMs} +${a.ms} ${a.outcome}`).join('\n')}\n`];
    for (const command of SILENT_STATE_COMMANDS) {
      const out = await qmp.execute<string>('human-monitor-command', { 'command-line': command }).catch((e: Error) => `(failed: ${e.message})\n`);
      parts.push(`== ${command}\n${out}`);
    }
    await writeOwnFile(stateFile, parts.join('\n'));
    state = stateFile;
    await qmp.execute('set_link', { name: 'net0', up: false });
    await sleep(LINK_DOWN_MS);
    await qmp.execute('set_link', { name: 'net0', up: true });
    return { state, kicked: true };
  } catch (err) {
    return { ...(state ? { state } : {}), kicked: false, problem: (err as Error).message };
  } finally {
    qmp?.close();
  }
}

/** The guest image's init; a kernel that runs anything else has not found our initramfs' /init. */
export const GUEST_INIT = '/init';

/** "Run /sbin/init as init process": the kernel fell back to another init. */
const foreignInit = (e: TimedEvent) => e.kind === 'run-init' && e.detail !== undefined && e.detail.startsWith('/') && e.detail !== GUEST_INIT;

async function fatalError(ev: TimedEvent, q: QemuProcess, console: ConsoleWatch): Promise<KtrialError> {
  // Let the rest of the report (call trace, panic line) arrive, or QEMU exit (panic=-1).
  await Promise.race([q.exited, sleep(FATAL_SETTLE_MS)]);
  console.flush();
  // The kernel announces each init it tries and falls back to the next when one fails: the
  // last one announced is the one that runs.
  const tried = console.events.filter(foreignInit).map((e) => e.detail!);
  const ran = tried.at(-1) ?? ev.detail ?? 'another program';
  const fellBack = tried.length > 1 ? `, after trying ${tried.slice(0, -1).join(', ')}` : '';
  const what: Record<string, string> = {
    panic: 'the kernel panicked',
    oops: 'the kernel oopsed',
    'init-killed': 'init died (the kernel reports "Attempted to kill init")',
    'no-init': 'the kernel could not start init',
    'init-fatal': 'the guest init failed',
    'sshd-gave-up': 'the guest SSH server keeps dying',
    'run-init': `the kernel did not start ktrial's ${GUEST_INIT} but ${ran}${fellBack} (an rdinit= or init= option, or an initramfs the kernel could not unpack?)`,
    'power-off': 'the guest powered off',
    restart: 'the guest restarted',
  };
  const s = summarize(console.events);
  const detail = ev.detail && ev.kind !== 'run-init' ? `: ${ev.detail}` : '';
  return kernelFailure(`${what[ev.kind] ?? ev.kind} before SSH came up, ${(ev.atMs / 1000).toFixed(1)} s after QEMU started${detail}`, {
    excerpt: console.excerpt(ev.line),
    hint: `the full console log is ${console.path}${s.kernelVersion ? ` (kernel ${s.kernelVersion})` : ''}`,
  });
}

function exitedError(q: QemuProcess, console: ConsoleWatch): KtrialError {
  const err = q.stderr().trim();
  const s = summarize(console.events);
  if (!s.kernelVersion) {
    return hostFailure(`QEMU exited before the kernel printed anything${err ? `: ${err.split('\n').slice(-3).join(' / ')}` : ''}`, {
      excerpt: err || console.tail(20),
      hint: 'check the kernel image and the QEMU installation (run `npx ktrial doctor`)',
    });
  }
  return kernelFailure('QEMU exited before SSH came up', { excerpt: console.tail(30), hint: `the full console log is ${console.path}` });
}

function timeoutError(console: ConsoleWatch): KtrialError {
  const s = summarize(console.events);
  const seen = !s.kernelVersion
    ? 'the kernel printed nothing on the console (is CONFIG_SERIAL_8250_CONSOLE set? is the accelerator working?)'
    : !s.reachedUserland
      ? `the kernel (${s.kernelVersion}) booted but ktrial's init never reported "userland up"`
      : !s.sshdStarted
        ? 'init came up but never started sshd'
        : 'sshd started but no SSH handshake completed (is the NIC driver built in and the link up?)';
  return kernelFailure(`no SSH connection to the guest before the boot deadline: ${seen}`, {
    excerpt: console.tail(30),
    hint: `the full console log is ${console.path}; a slow host may need a longer boot timeout`,
  });
}
