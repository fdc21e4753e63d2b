// Running host programs. Every child gets the run's abort signal, so an interrupt stops
// builds and QEMU alike; output can be teed to a log file as it arrives.
import { createWriteStream, type WriteStream } from 'node:fs';
import { execa, type ResultPromise } from 'execa';
import { hostFailure } from './errors.js';

export interface RunOpts {
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string;
  signal?: AbortSignal;
  /** Append stdout+stderr to this file as they arrive. */
  logFile?: string;
  onLine?: (line: string) => void;
  timeoutMs?: number;
}

export interface RunResult {
  exitCode: number;
  stdout: string;
  stderr: string;
  /** stdout and stderr interleaved as they arrived. */
  all: string;
}

export async function run(cmd: string, args: readonly string[], opts: RunOpts = {}): Promise<RunResult> {
  let log: WriteStream | undefined;
  if (opts.logFile) log = createWriteStream(opts.logFile, { flags: 'a' });
  const child: ResultPromise = execa(cmd, args, {
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    input: opts.input,
    reject: false,
    all: true,
    stripFinalNewline: false,
    ...(opts.signal ? { cancelSignal: opts.signal, forceKillAfterDelay: 3000 } : {}),
    ...(opts.timeoutMs ? { timeout: opts.timeoutMs } : {}),
    maxBuffer: 512 * 1024 * 1024,
  });
  if (log || opts.onLine) {
    let partial = '';
    child.all?.on('data', (chunk: Buffer) => {
      log?.write(chunk);
      if (opts.onLine) {
        const text = partial + chunk.toString('utf8');
        const lines = text.split('\n');
        partial = lines.pop() ?? '';
        for (const l of lines) opts.onLine(l);
      }
    });
  }
  const r = await child;
  if (log) await new Promise<void>((res) => log!.end(res));
  if ((r as { code?: string }).code === 'ENOENT') {
    throw hostFailure(`cannot run ${cmd}: not found`, { hint: 'run `npx ktrial doctor` to see which host tools are missing and how to install them' });
  }
  if (opts.signal?.aborted) throw opts.signal.reason instanceof Error ? opts.signal.reason : new Error('aborted');
  return {
    exitCode: typeof r.exitCode === 'number' ? r.exitCode : 128,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    all: String(r.all ?? ''),
  };
}

/** Run and require exit 0; the error carries the command's last output lines. */
export async function runOk(cmd: string, args: readonly string[], opts: RunOpts = {}, what = `${cmd} ${args.join(' ')}`): Promise<RunResult> {
  const r = await run(cmd, args, opts);
  if (r.exitCode !== 0) {
    throw hostFailure(`${what} failed with exit code ${r.exitCode}`, { excerpt: tail(r.all, 20) });
  }
  return r;
}

export function tail(text: string, n: number): string {
  const lines = text.trimEnd().split('\n');
  return lines.slice(-n).join('\n');
}
