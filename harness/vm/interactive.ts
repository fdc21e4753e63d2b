// What `ktrial boot` does with a guest once it is up: run one command with its output
// streamed and its exit code returned, or give the user an interactive shell.
import type { Vm } from './guest.js';
import { shellLine } from '../common/shell.js';

/**
 * The command line for argv: one argument is taken as a shell command line as is
 * ("ls -l | wc -l"); several are quoted word by word.
 */
export function commandLine(argv: readonly string[]): string {
  return argv.length === 1 ? argv[0]! : shellLine(argv);
}

const SIGNALS: Record<string, number> = { HUP: 1, INT: 2, QUIT: 3, ILL: 4, ABRT: 6, FPE: 8, KILL: 9, SEGV: 11, PIPE: 13, ALRM: 14, TERM: 15 };

function exitStatus(code: number | null | undefined, signal: string | undefined): number {
  if (typeof code === 'number') return code;
  if (signal) return 128 + (SIGNALS[signal.replace(/^SIG/, '')] ?? 1);
  return 255;
}

/**
 * Run one command in the guest with stdout/stderr streamed to ours (and our stdin passed
 * on when it is not a terminal). Resolves with the command's exit status (128+n for a
 * signal, 255 when the connection was lost).
 */
export async function runCommandInGuest(
  vm: Vm,
  argv: readonly string[],
  io: { stdout?: NodeJS.WritableStream; stderr?: NodeJS.WritableStream; /** null: give the command no input. */ stdin?: NodeJS.ReadableStream | null } = {},
): Promise<number> {
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  // Our stdin is passed on only when it is not a terminal (a terminal never ends).
  const input = io.stdin === undefined ? (process.stdin.isTTY ? null : process.stdin) : io.stdin;
  const { stream, exit } = await vm.openChannel(commandLine(argv));
  return new Promise<number>((resolve) => {
    stream.on('data', (d: Buffer) => out.write(d));
    stream.stderr.on('data', (d: Buffer) => err.write(d));
    stream.on('close', () => {
      if (input) input.unpipe(stream);
      resolve(exitStatus(exit()?.code, exit()?.signal));
    });
    if (input) input.pipe(stream);
    else stream.end();
  });
}

/**
 * An interactive login shell in the guest over the run's SSH connection, with a pty sized
 * like our terminal. The local terminal is put in raw mode and restored on every way out.
 * Resolves with the shell's exit status.
 */
export async function interactiveShell(vm: Vm, io: { stdin?: NodeJS.ReadStream; stdout?: NodeJS.WriteStream } = {}): Promise<number> {
  const input = io.stdin ?? process.stdin;
  const output = io.stdout ?? process.stdout;
  const size = () => ({ rows: output.rows || 24, cols: output.columns || 80 });
  const { stream, exit } = await vm.shell({ term: process.env.TERM || 'vt100', ...size() });
  return new Promise<number>((resolve) => {
    const wasRaw = input.isTTY ? input.isRaw : false;
    const onResize = () => {
      const s = size();
      stream.setWindow(s.rows, s.cols, 0, 0);
    };
    const restore = () => {
      output.off('resize', onResize);
      input.unpipe(stream);
      if (input.isTTY) input.setRawMode(wasRaw);
      input.pause();
      process.off('exit', restoreOnExit);
    };
    const restoreOnExit = () => {
      if (input.isTTY) input.setRawMode(wasRaw);
    };
    process.on('exit', restoreOnExit);
    if (input.isTTY) input.setRawMode(true);
    output.on('resize', onResize);
    input.pipe(stream);
    input.resume();
    stream.pipe(output, { end: false });
    stream.stderr.pipe(output, { end: false });
    stream.on('close', () => {
      restore();
      resolve(exitStatus(exit()?.code, exit()?.signal));
    });
  });
}
