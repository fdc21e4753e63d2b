// A crash's stack trace read from the console and decoded against the kernel's vmlinux:
// each frame as function+offset and file:line. The parser knows the trace formats of every
// era ktrial boots: 2.6's " [<ffffffff8021d037>] migration_thread+0x2e7/0x360", today's
// " ? sysrq_handle_crash+0x16/0x20 [mod]" and, without CONFIG_KALLSYMS, " 0xffffffff812bf50c".
// Decoding uses nm (a symbol's address, chosen by the size the trace states) and addr2line.
import { run } from '../common/proc.js';

export interface CrashFrame {
  /** The frame as the console printed it, trimmed. */
  text: string;
  /** The instruction pointer at the fault ("RIP:"/"EIP:" line), not a return address. */
  ip?: true;
  /** Marked "?" by the unwinder: a stale address found on the stack. */
  unreliable?: true;
  address?: string;
  function?: string;
  /** "+0x16/0x20": offset in the function and its size, as printed. */
  offset?: string;
  module?: string;
  /** From the vmlinux's debug information, relative to the kernel tree when it can be. */
  file?: string;
  line?: number;
  /** The functions inlined at this address, innermost first, each with its file:line. */
  inlined?: { function: string; file: string; line: number }[];
}

const HEX_ADDR = '(?:0x)?[0-9a-f]{8,16}';
const SYMBOL = '[A-Za-z_.$][\\w.$]*';
// "func+0x16/0x20 [mod]" or a bare address; 2.6 prefixes "[<address>]".
const FRAME_BODY = new RegExp(`^(?:\\[<(${HEX_ADDR})>\\]\\s*)?(?:(${SYMBOL})\\+(0x[0-9a-f]+)/(0x[0-9a-f]+)(?:\\s+\\[(\\w+)\\])?|(0x[0-9a-f]{8,16}))\\s*$`);
const IP_LINE = /^(?:RIP|EIP|IP|PC):\s*(?:[0-9a-f]{4}:)?(?:\[<[0-9a-f]+>\]\s*)?(.*)$/;
const TRACE_MARKER = /^<\/?(?:TASK|IRQ|NMI|EOI|#DF|SOFTIRQ|ENTRY_TRAMPOLINE)>$/;

function parseFrame(text: string): CrashFrame | undefined {
  let body = text.trim();
  const frame: CrashFrame = { text: body };
  // 2.6 puts the interrupt markers on the frame's own line (" <IRQ>  [<...>] ...").
  body = body.replace(/^(?:<\/?[A-Z#]+>\s*)+/, '');
  if (body.startsWith('? ')) {
    frame.unreliable = true;
    body = body.slice(2).trim();
  }
  const m = FRAME_BODY.exec(body);
  if (!m) return undefined;
  const addr = m[1] ?? m[6];
  if (addr) frame.address = `0x${addr.replace(/^0x/, '')}`;
  if (m[2]) {
    frame.function = m[2];
    frame.offset = `+${m[3]}/${m[4]}`;
  }
  if (m[5]) frame.module = m[5];
  return frame;
}

/**
 * The frames of the first crash report in these console lines (printk timestamps removed):
 * the faulting instruction, if printed, then the first call trace, through interrupt
 * markers, up to the first line that is not a frame.
 */
export function parseCrashFrames(lines: readonly string[]): CrashFrame[] {
  const frames: CrashFrame[] = [];
  const clean = lines.map((l) => l.replace(/\r/g, '').replace(/^\s*\[\s*\d+\.\d+\]\s?/, ''));
  const traceAt = clean.findIndex((l) => /^\s*Call Trace:/.test(l));
  const ipScanEnd = traceAt < 0 ? clean.length : traceAt;
  for (const l of clean.slice(0, ipScanEnd)) {
    const m = IP_LINE.exec(l.trim());
    const f = m && parseFrame(m[1]!);
    if (f) {
      frames.push({ ...f, text: l.trim(), ip: true });
      break;
    }
  }
  if (traceAt < 0) return frames;
  // 2.6.20 may print the first frame on the "Call Trace:" line itself.
  const first = parseFrame(clean[traceAt]!.replace(/^\s*Call Trace:/, ''));
  if (first) frames.push(first);
  for (const l of clean.slice(traceAt + 1)) {
    const t = l.trim();
    if (TRACE_MARKER.test(t)) continue;
    const f = parseFrame(t);
    if (!f) break;
    frames.push(f);
  }
  return frames;
}

interface SymbolInfo {
  address: bigint;
  size: bigint;
}

/** Function symbols of a vmlinux by name (static functions may share a name). */
async function readSymbols(vmlinux: string): Promise<Map<string, SymbolInfo[]>> {
  const r = await run('nm', ['-S', '--defined-only', vmlinux]);
  if (r.exitCode !== 0) throw new Error(`nm ${vmlinux} failed: ${r.stderr.trim()}`);
  const out = new Map<string, SymbolInfo[]>();
  for (const line of r.stdout.split('\n')) {
    const m = /^([0-9a-f]+) ([0-9a-f]+ )?[tTwW] (\S+)$/.exec(line);
    if (!m) continue;
    const list = out.get(m[3]!) ?? [];
    list.push({ address: BigInt(`0x${m[1]}`), size: m[2] ? BigInt(`0x${m[2].trim()}`) : -1n });
    out.set(m[3]!, list);
  }
  return out;
}

/** The address a frame stands for: printed, or its function's address plus the offset. */
function frameAddress(f: CrashFrame, symbols: Map<string, SymbolInfo[]>): bigint | undefined {
  if (f.address) return BigInt(f.address);
  if (!f.function || !f.offset) return undefined;
  const [, off, size] = /^\+(0x[0-9a-f]+)\/(0x[0-9a-f]+)$/.exec(f.offset) ?? [];
  const candidates = symbols.get(f.function) ?? [];
  const sym = candidates.find((s) => s.size === BigInt(size!)) ?? (candidates.length === 1 ? candidates[0] : undefined);
  return sym ? sym.address + BigInt(off!) : undefined;
}

/**
 * Each frame with function, offset and file:line from the vmlinux's symbols and debug
 * information. Frames in modules are left as printed (only vmlinux is kept). A return
 * address points after its call, so its line is looked up one byte earlier, as debuggers do.
 */
export async function decodeFrames(frames: readonly CrashFrame[], vmlinux: string, treeDir?: string): Promise<CrashFrame[]> {
  const symbols = await readSymbols(vmlinux);
  const wanted = frames.map((f) => (f.module ? undefined : frameAddress(f, symbols)));
  const lookups = wanted.map((a, i) => (a === undefined ? undefined : frames[i]!.ip ? a : a - 1n));
  const addrs = lookups.filter((a): a is bigint => a !== undefined);
  if (!addrs.length) return [...frames];
  const r = await run('addr2line', ['-e', vmlinux, '-f', '-i', '-a', ...addrs.map((a) => `0x${a.toString(16)}`)]);
  if (r.exitCode !== 0) throw new Error(`addr2line on ${vmlinux} failed: ${r.stderr.trim()}`);
  const answers = parseAddr2line(r.stdout);
  return frames.map((f, i) => {
    const a = lookups[i];
    const chain = a === undefined ? undefined : answers.get(a);
    const out: CrashFrame = { ...f };
    if (wanted[i] !== undefined && !out.address) out.address = `0x${wanted[i]!.toString(16)}`;
    if (!chain?.length) return out;
    // addr2line lists the innermost inlined function first and the real function last.
    const outer = chain[chain.length - 1]!;
    if (!out.function && outer.function !== '??') out.function = outer.function;
    if (outer.file) {
      out.file = relativeToTree(outer.file, treeDir);
      out.line = outer.line;
    }
    const inner = chain.slice(0, -1).filter((c) => c.file);
    if (inner.length) out.inlined = inner.map((c) => ({ function: c.function, file: relativeToTree(c.file!, treeDir), line: c.line! }));
    return out;
  });
}

interface Location {
  function: string;
  file?: string;
  line?: number;
}

/** addr2line -f -i -a output: "0xADDR" then function/file:line pairs, innermost first. */
export function parseAddr2line(stdout: string): Map<bigint, Location[]> {
  const out = new Map<bigint, Location[]>();
  let current: Location[] | undefined;
  const lines = stdout.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i]!;
    if (/^0x[0-9a-f]+$/.test(l)) {
      current = [];
      out.set(BigInt(l), current);
      continue;
    }
    if (!current || !l) continue;
    const where = lines[++i] ?? '';
    const m = /^(.*):(\d+)(?: \(discriminator \d+\))?$/.exec(where);
    const loc: Location = { function: l };
    if (m && m[1] !== '??') {
      loc.file = m[1]!;
      loc.line = Number(m[2]);
    }
    current.push(loc);
  }
  return out;
}

/** A path addr2line printed, relative to the kernel tree when it lies inside it. */
export function relativeToTree(file: string, treeDir: string | undefined): string {
  if (treeDir && file.startsWith(`${treeDir.replace(/\/$/, '')}/`)) return file.slice(treeDir.replace(/\/$/, '').length + 1);
  return file;
}

/** One frame for a summary: "sysrq_handle_crash+0x16/0x20 (drivers/tty/sysrq.c:153)". */
export function formatFrame(f: CrashFrame): string {
  const name = f.function ? `${f.function}${f.offset ?? ''}` : (f.address ?? f.text);
  const where = f.file ? ` (${f.file}:${f.line})` : '';
  const inl = f.inlined?.length ? ` [inlined: ${f.inlined.map((i) => `${i.function} ${i.file}:${i.line}`).join(', ')}]` : '';
  return `${f.ip ? 'at ' : ''}${f.unreliable ? '? ' : ''}${name}${f.module ? ` [${f.module}]` : ''}${where}${inl}`;
}

/**
 * A crash's frames from the console lines that follow its first report line, decoded when
 * the kernel's vmlinux is at hand; otherwise as printed, with the reason there is no file:line.
 */
export async function traceCrash(lines: readonly string[], vmlinux: string | undefined, treeDir?: string): Promise<{ frames: CrashFrame[]; decodeNote?: string }> {
  const frames = parseCrashFrames(lines.slice(0, 300));
  if (!frames.length) return { frames, decodeNote: 'no stack trace on the console' };
  if (!vmlinux) return { frames, decodeNote: 'no vmlinux was kept with this kernel (cached before ktrial kept it): frames as printed' };
  try {
    const decoded = await decodeFrames(frames, vmlinux, treeDir);
    return decoded.some((f) => f.file) ? { frames: decoded } : { frames: decoded, decodeNote: 'the vmlinux has no debug information (CONFIG_DEBUG_INFO): functions only' };
  } catch (err) {
    return { frames, decodeNote: `decoding failed: ${err instanceof Error ? err.message : String(err)}` };
  }
}
