// The running guest: commands over one reused SSH connection (each in its own process
// group, so a timeout kills all it started), uploads, raw channels for `ktrial boot`, and a
// clean power-off. createVm() (vm.ts) boots QEMU and hands the connection over to makeVm().
import { randomBytes } from 'node:crypto';
import { chown, readFile, rename, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import type { Client, ClientChannel } from 'ssh2';
import { badInput, hostFailure, kernelFailure, type KtrialError } from '../common/errors.js';
import type { StageContext } from '../common/context.js';
import { shellQuote } from '../common/shell.js';
import type { Accel } from './accel.js';
import { FATAL_KINDS, summarize } from './console.js';
import type { ConsoleWatch } from './consolewatch.js';
import { connectQmp } from './qmp.js';
import { stopQemu, type QemuProcess } from './qemu.js';
import type { Confinement, QemuUser } from './confine.js';
import { execOn, type ExecOptions, type ExecResult } from './ssh.js';
import { ownFileStream } from '../common/paths.js';
import type { VmRequest } from './vm.js';

/** After a fatal console event, how long to keep reading so the excerpt has the whole report. */
export const FATAL_SETTLE_MS = 1500;

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Bytes per second QEMU may write a saved state at: no limit worth the name. */
const MIGRATION_BANDWIDTH = 16 * 1024 ** 3;

export interface BootTimings {
  /** QEMU start to the kernel banner, to our init's first marker, to sshd start, to SSH ready (ms). */
  bannerMs?: number;
  userlandMs?: number;
  sshdMs?: number;
  sshReadyMs: number;
  /** SSH connection attempts until one succeeded. */
  sshAttempts: number;
  /** Each attempt: when it started (ms after QEMU start), how long it took, how it ended. */
  attemptLog: { atMs: number; ms: number; outcome: string }[];
  /** Earlier QEMUs of this boot that went silent and were replaced (the timings above are the last one's). */
  silentBoots?: SilentBoot[];
  /** The guest went silent and its link was taken down and up, after which it answered. */
  linkKick?: LinkKick;
}

/** A QEMU given up on as silent: where its console (and QEMU's view of it) was kept, why, and after how long. */
export interface SilentBoot {
  console: string;
  state?: string;
  reason: string;
  afterMs: number;
}

/** What was done to a silent guest before giving it up: its state read, its link taken down and up. */
export interface LinkKick {
  /** How long after sshd started. */
  afterSshdMs: number;
  /** Where QEMU's view of the silent guest was written, when it could be read. */
  state?: string;
  kicked: boolean;
  /** Why the state or the kick failed. */
  problem?: string;
}

export interface Vm {
  /** Run a shell command line in the guest (as root, via /bin/sh -c). */
  run(cmd: string, opts: ExecOptions): Promise<ExecResult>;
  /** Upload a file (host path or bytes) to guestPath with the given mode (default 0644). */
  copy(src: string | Buffer, guestPath: string, mode?: number): Promise<void>;
  readonly console: ConsoleWatch;
  readonly accel: Accel;
  readonly accelReason: string;
  readonly sshPort: number;
  /** QEMU's pid. */
  readonly pid: number;
  readonly token: string;
  readonly kernelVersion: string | undefined;
  readonly timings: BootTimings;
  /** What the guest's network and its QEMU could reach. */
  readonly confinement: Confinement;
  /** A raw channel running `command`, without run()'s process group and timeout (for `ktrial boot -- CMD`). */
  openChannel(command: string): Promise<GuestChannel>;
  /** An interactive login shell on a pty of this size (for `ktrial boot --shell`). */
  shell(pty: { term: string; rows: number; cols: number }): Promise<GuestChannel>;
  /**
   * Save the whole guest (memory and devices) to a file, to start identical guests from
   * later: the result is this guest's request with `restore` set, for createVm(). The guest
   * is paused while it is written, then goes on.
   */
  saveState(file: string): Promise<VmRequest>;
  /** True while QEMU runs and the SSH connection is open. */
  alive(): boolean;
  /** Power the guest off (poweroff over SSH), wait for QEMU, kill it after a grace period. */
  close(graceMs?: number): Promise<void>;
}

/** A raw channel and how its command ended, once the guest said so. */
export interface GuestChannel {
  stream: ClientChannel;
  exit(): { code: number | null; signal?: string } | undefined;
}

/**
 * The exit status is recorded from the moment the channel opens: a short command's output,
 * exit status and close can arrive in one read, before the caller (after an await) could
 * listen for them; the data waits in the stream, an 'exit' event would be lost.
 */
export function guestChannel(stream: ClientChannel): GuestChannel {
  let ended: { code: number | null; signal?: string } | undefined;
  stream.once('exit', (code: number | null, signal?: string) => (ended = { code, ...(signal ? { signal } : {}) }));
  return { stream, exit: () => ended };
}

/**
 * The shell line that runs `cmd` (shell text: a sh step's script, or a command line whose
 * words shellLine quoted) in a session of its own that records its pid in pidFile (a path
 * of ktrial's own, plain characters only). `cmd` reaches the inner shell as one literal
 * argument, evaluated there once.
 */
export const inOwnSession = (cmd: string, pidFile: string): string =>
  `exec setsid /bin/sh -c 'trap "rm -f ${pidFile}" EXIT; echo $$ > ${pidFile}; eval "$1"' ktrial-exec ${shellQuote(cmd)}`;

/** The shell line that writes its stdin to guestPath (making its directory) with this mode. */
export function copyCommand(guestPath: string, mode: number): string {
  const p = shellQuote(guestPath);
  const dir = shellQuote(guestPath.replace(/\/[^/]*$/, '') || '/');
  return `mkdir -p ${dir} && cat > ${p} && chmod ${mode.toString(8)} ${p}`;
}

export function makeVm(
  q: QemuProcess,
  client: Client,
  console: ConsoleWatch,
  info: { accel: Accel; accelReason: string; port: number; token: string; timings: BootTimings; qmpSocket: string; request: VmRequest; confinement: Confinement; qemuUser: QemuUser | undefined },
  ctx: StageContext,
  onAbort: () => void,
): Vm {
  let sshOpen = true;
  let closed = false;
  let execSeq = 0;
  client.on('close', () => (sshOpen = false));
  client.on('error', () => (sshOpen = false));

  const lostError = async (cmd: string, cause: unknown): Promise<KtrialError> => {
    await Promise.race([q.exited, sleep(FATAL_SETTLE_MS)]);
    console.flush();
    const fatal = console.events.find((e) => FATAL_KINDS.has(e.kind));
    if (fatal) {
      return kernelFailure(`the guest crashed while running \`${cmd}\`${fatal.detail ? `: ${fatal.detail}` : ''}`, {
        excerpt: console.excerpt(fatal.line),
        hint: `the full console log is ${console.path}`,
        cause,
      });
    }
    return kernelFailure(`the SSH connection to the guest was lost while running \`${cmd}\`${q.hasExited() ? ' (QEMU exited)' : ''}`, {
      excerpt: console.tail(30),
      hint: `the full console log is ${console.path}`,
      cause,
    });
  };

  const vm: Vm = {
    console,
    accel: info.accel,
    accelReason: info.accelReason,
    sshPort: info.port,
    pid: q.pid,
    token: info.token,
    kernelVersion: summarize(console.events).kernelVersion,
    timings: info.timings,
    confinement: info.confinement,
    openChannel: (command) => new Promise((resolve, reject) => client.exec(command, (e, ch) => (e ? reject(e) : resolve(guestChannel(ch))))),
    shell: (pty) => new Promise((resolve, reject) => client.shell({ ...pty, height: 0, width: 0 }, (e, ch) => (e ? reject(e) : resolve(guestChannel(ch))))),
    alive: () => sshOpen && !q.hasExited() && !closed,
    async saveState(file) {
      if (closed || q.hasExited()) throw hostFailure('cannot save the state of a guest that is gone');
      const partial = `${file}.partial`;
      const sink = await stateSink(partial, info.qemuUser);
      const qmp = await connectQmp(info.qmpSocket);
      try {
        // Paused first, so the state is written in one pass instead of chasing a live guest;
        // QEMU's default migration speed limit (32 MiB/s) would make that pass slow.
        await qmp.execute('stop');
        await qmp.execute('migrate-set-parameters', { 'max-bandwidth': MIGRATION_BANDWIDTH });
        await qmp.execute('migrate', { uri: `unix:${sink.socket}` });
        for (;;) {
          const m = await qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate');
          if (m.status === 'completed') break;
          if (m.status === 'failed' || m.status === 'cancelled') throw hostFailure(`saving the guest's state failed: ${m['error-desc'] ?? m.status}`);
          await sleep(20);
        }
        await sink.written;
        await rename(partial, file);
        return { ...info.request, restore: { stateFile: file, token: info.token } };
      } finally {
        await qmp.execute('cont').catch(() => undefined);
        qmp.close();
        await sink.close();
        await rm(partial, { force: true });
      }
    },
    async run(cmd, opts) {
      if (closed) throw hostFailure('this VM has been closed');
      if (!sshOpen || q.hasExited()) throw await lostError(cmd, undefined);
      // The command runs in its own session (setsid keeps the pid, so pgid = pid), and
      // records that pid, so a timeout can kill its whole process group, not just the shell.
      const pidFile = `/run/ktrial/exec.${++execSeq}.pid`;
      const wrapped = inOwnSession(cmd, pidFile);
      const onTimeout = async () => {
        await execOn(client, `p=$(cat ${pidFile} 2>/dev/null) && kill -KILL -$p 2>/dev/null; rm -f ${pidFile}`, { timeoutMs: 5000 });
      };
      try {
        return await execOn(client, wrapped, { ...opts, onTimeout: opts.onTimeout ?? onTimeout });
      } catch (err) {
        if (!sshOpen || q.hasExited()) throw await lostError(cmd, err);
        throw hostFailure(`cannot run \`${cmd}\` in the guest: ${(err as Error).message}`, { cause: err });
      }
    },
    async copy(src, guestPath, mode = 0o644) {
      if (!guestPath.startsWith('/')) throw badInput(`guest path ${guestPath} must be absolute`);
      const data = typeof src === 'string' ? await readFile(src) : src;
      const cmd = copyCommand(guestPath, mode);
      const r = await vm.run(cmd, { timeoutMs: 30_000 + Math.ceil(data.length / 100_000) * 1000, stdin: data });
      if (r.timedOut || r.exitCode !== 0) {
        throw hostFailure(`copying ${typeof src === 'string' ? src : `${data.length} bytes`} to the guest's ${guestPath} failed${r.timedOut ? ' (timed out)' : ` (exit ${r.exitCode})`}`, { excerpt: r.stderr.trim() || undefined });
      }
    },
    async close(graceMs = 10_000) {
      if (closed) return;
      closed = true;
      ctx.signal.removeEventListener('abort', onAbort);
      if (!q.hasExited()) {
        if (sshOpen) {
          // poweroff signals init, which kills dropbear; the channel then just drops.
          await execOn(client, 'poweroff', { timeoutMs: 3000 }).catch(() => undefined);
        }
        const off = await Promise.race([
          q.exited.then(() => 'exit' as const),
          console.waitFor((e) => e.kind === 'power-off' || e.kind === 'restart', graceMs).then((e) => (e ? ('halted' as const) : ('timeout' as const))),
        ]);
        // A kernel without ACPI halts instead of ending QEMU; once it says so, QEMU can go.
        await stopQemu(q, off === 'exit' ? 0 : 1000);
      }
      client.end();
      client.destroy();
      await rm(info.qmpSocket, { force: true });
      console.flush();
      await console.close();
    },
  };
  return vm;
}

/**
 * Where QEMU writes a saved state: a Unix socket ktrial listens on (QEMU's sandbox lets it
 * start no program, and as its own user it may not write the run directory), whose one
 * connection is copied into `file`.
 */
async function stateSink(file: string, user: QemuUser | undefined): Promise<{ socket: string; written: Promise<void>; close(): Promise<void> }> {
  const socket = join(tmpdir(), `ktrial-state-${randomBytes(8).toString('hex')}.sock`);
  let accepted = false;
  let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const written = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
  written.catch(() => undefined);
  const server = createServer((conn) => {
    if (accepted) return conn.destroy();
    accepted = true;
    try {
      pipeline(conn, ownFileStream(file)).then(settle!.resolve, settle!.reject);
    } catch (err) {
      conn.destroy();
      settle!.reject(err as Error);
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(socket, () => resolve());
  });
  if (user) await chown(socket, user.uid, user.gid);
  return {
    socket,
    written,
    close: async () => {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(socket, { force: true });
    },
  };
}
