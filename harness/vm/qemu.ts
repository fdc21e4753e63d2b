// Starting and stopping QEMU. Every QEMU ktrial starts is tracked by pid in a process-wide
// set and killed on every way out: Vm.close(), an aborted run, process exit, and (through
// the kernel's parent-death signal, set with setpriv) even when Node itself is killed.
// QEMU is spawned directly rather than through proc.ts because the run needs its pid and
// its console stream while it lives, not only its result. QEMU opens no file of ktrial's by
// path: the files it reads are opened here and passed as descriptors 3, 4, ..., so a QEMU
// running as its own user (confine.ts) needs no access to ktrial's cache or run directory.
import { spawn, type ChildProcess } from 'node:child_process';
import { open, type FileHandle } from 'node:fs/promises';
import { createServer } from 'node:net';
import { hostFailure } from '../common/errors.js';
import { which } from '../common/hosttools.js';
import type { QemuUser } from './confine.js';

export interface QemuProcess {
  pid: number;
  child: ChildProcess;
  /** Resolves when QEMU has exited. */
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  hasExited(): boolean;
  /** QEMU's own stderr (its error messages, not the guest console). */
  stderr(): string;
}

const live = new Set<QemuProcess>();
let exitHookInstalled = false;

/** Kill every QEMU this process started and that still runs. Synchronous, so it is safe in 'exit' handlers. */
export function killAllGuests(): number {
  let n = 0;
  for (const q of live) {
    if (q.hasExited()) continue;
    try {
      process.kill(q.pid, 'SIGKILL');
      n++;
    } catch {
      // already gone
    }
  }
  return n;
}

/** The pids of QEMU processes started by this process that have not exited yet. */
export function liveGuestPids(): number[] {
  return [...live].filter((q) => !q.hasExited()).map((q) => q.pid);
}

function installExitHook(): void {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  process.on('exit', () => {
    killAllGuests();
  });
}

/** The descriptor QEMU finds the i-th of QemuLaunch.files on. */
export const qemuFd = (i: number): number => 3 + i;

/** How QEMU is started besides its arguments. */
export interface QemuLaunch {
  /** Files opened for reading and passed as descriptors qemuFd(0), qemuFd(1), ... */
  files?: readonly string[];
  /** Run QEMU as this user (ktrial runs as root). */
  user?: QemuUser;
}

/**
 * The command that starts QEMU: through setpriv, which sets the kernel's parent-death
 * signal (QEMU dies with ktrial) and, for a user, drops to its uid, gid and groups first.
 */
export function qemuCommand(binary: string, args: readonly string[], user: QemuUser | undefined, setpriv = 'setpriv'): [string, string[]] {
  const drop = user ? ['--reuid', String(user.uid), '--regid', String(user.gid), ...(user.groups.length ? ['--groups', user.groups.join(',')] : ['--clear-groups'])] : [];
  return [setpriv, [...drop, '--pdeathsig', 'KILL', '--', binary, ...args]];
}

/**
 * QEMU opens /dev/fd/N, which checks the file's own permissions (not its directories'): a
 * QEMU of another user reads a file of ours only when others may read it.
 */
async function mustBeReadableByOthers(h: FileHandle, file: string, user: QemuUser): Promise<void> {
  const { mode } = await h.stat();
  if (mode & 0o004) return;
  throw hostFailure(`QEMU runs as ${user.name} and cannot read ${file} (mode ${(mode & 0o777).toString(8).padStart(4, '0')}): it needs others' read permission`, {
    hint: `ktrial writes its files with the umask in force; run it with umask 022, or chmod o+r ${file}`,
  });
}

let setprivPath: string | undefined | null = null;

/** Start QEMU. stdout carries the serial console; stdin is closed. */
export async function startQemu(binary: string, args: readonly string[], onStdout: (chunk: Buffer) => void, launch: QemuLaunch = {}): Promise<QemuProcess> {
  installExitHook();
  if (setprivPath === null) setprivPath = await which('setpriv');
  if (launch.user && !setprivPath) throw new Error('setpriv (util-linux) is needed to run QEMU as its own user');
  const [cmd, argv] = setprivPath ? qemuCommand(binary, args, launch.user, setprivPath) : [binary, [...args]];
  const handles: FileHandle[] = [];
  let child: ChildProcess;
  try {
    for (const f of launch.files ?? []) {
      const h = await open(f, 'r');
      handles.push(h);
      if (launch.user) await mustBeReadableByOthers(h, f, launch.user);
    }
    child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe', ...handles.map((h) => h.fd)], detached: false });
  } catch (err) {
    await Promise.all(handles.map((h) => h.close()));
    throw err;
  }
  let err = '';
  let done = false;
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.on('exit', (code, signal) => {
      done = true;
      resolve({ code, signal });
    });
    child.on('error', () => {
      done = true;
      resolve({ code: 127, signal: null });
    });
  });
  child.stdout!.on('data', onStdout);
  child.stderr!.on('data', (d: Buffer) => {
    if (err.length < 64 * 1024) err += d.toString('utf8');
  });
  // Every listener is attached before the first await: 'spawn' fires on the next tick.
  const spawned = new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (e) => reject(e));
  });
  try {
    await spawned;
  } finally {
    // QEMU holds its own copies of the descriptors now.
    await Promise.all(handles.map((h) => h.close()));
  }
  const q: QemuProcess = { pid: child.pid!, child, exited, hasExited: () => done, stderr: () => err };
  live.add(q);
  void exited.then(() => live.delete(q));
  return q;
}

/** Ask QEMU to stop (SIGTERM), then SIGKILL after the grace period. */
export async function stopQemu(q: QemuProcess, graceMs = 3000): Promise<void> {
  if (q.hasExited()) return;
  try {
    process.kill(q.pid, 'SIGTERM');
  } catch {
    return;
  }
  const t = new Promise<'timeout'>((r) => setTimeout(() => r('timeout'), graceMs).unref());
  if ((await Promise.race([q.exited, t])) === 'timeout') {
    try {
      process.kill(q.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
    await q.exited;
  }
}

/** A TCP port on 127.0.0.1 that is free right now (QEMU may still lose a race for it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.unref();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const addr = s.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      s.close(() => resolve(port));
    });
  });
}

export async function qemuVersion(binary: string): Promise<string> {
  return new Promise((resolve) => {
    const c = spawn(binary, ['--version'], { stdio: ['ignore', 'pipe', 'ignore'] });
    let out = '';
    c.stdout.on('data', (d: Buffer) => (out += d.toString()));
    c.on('close', () => resolve(out.split('\n')[0]?.trim() || 'unknown'));
    c.on('error', () => resolve('unknown'));
  });
}
