// Starting and stopping QEMU. Every QEMU ktrial starts is tracked by pid in a process-wide
// set and killed on every way out: Vm.close(), an aborted run, process exit, and (through
// the kernel's parent-death signal, set with setpriv) even when Node itself is killed.
// QEMU is spawned directly rather than through proc.ts because the run needs its pid and
// its console stream while it lives, not only its result.
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { which } from '../common/hosttools.js';

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

let setprivPath: string | undefined | null = null;

/** Start QEMU. stdout carries the serial console; stdin is closed. */
export async function startQemu(binary: string, args: readonly string[], onStdout: (chunk: Buffer) => void): Promise<QemuProcess> {
  installExitHook();
  if (setprivPath === null) setprivPath = await which('setpriv');
  const [cmd, argv] = setprivPath ? [setprivPath, ['--pdeathsig', 'KILL', binary, ...args]] : [binary, [...args]];
  const child = spawn(cmd, argv, { stdio: ['ignore', 'pipe', 'pipe'], detached: false });
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
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', () => resolve());
    child.once('error', (e) => reject(e));
  });
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
