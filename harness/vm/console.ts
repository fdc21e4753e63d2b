// Reading a guest's serial console: a pure function from console lines to events (kernel
// banner, panic, oops, BUG, warnings, call traces, init's death, our init's markers,
// power-off). It is used live while a guest boots and runs, and on saved logs.

export type ConsoleEventKind =
  /** "Linux version X ..." (a second banner means the guest rebooted). */
  | 'banner'
  /** "Kernel panic - not syncing: ..." */
  | 'panic'
  /** An oops: "Oops: ...", "Unable to handle kernel ...", "general protection fault", "kernel BUG at". */
  | 'oops'
  /** "BUG: ..." reports that are not warnings (soft lockup, sleeping in atomic, ...). */
  | 'bug'
  /** WARN_ON and friends: "WARNING: ... at", 2.6's "BUG: warning at". */
  | 'warning'
  /** Lock dependency and RCU checker reports. */
  | 'lockdep'
  /** Slab debugging found a corrupted object ("Slab corruption", "slab error in", SLUB's "BUG cache (...): ..."). */
  | 'slab-corruption'
  /** "Call Trace:" */
  | 'call-trace'
  /** "Attempted to kill init" (PID 1 died). */
  | 'init-killed'
  /** The kernel could not start init at all (no init, bad rdinit=). */
  | 'no-init'
  /** The kernel is about to run init ("Freeing unused kernel memory"; "Run /init as init process", detail: the program). */
  | 'run-init'
  /** A network link came up ("link becomes ready", e1000's "NIC Link is Up"). */
  | 'link-up'
  /** Our init's markers ("ktrial-init: ..."), see images/init/init.c. */
  | 'userland-up'
  | 'network-up'
  | 'sshd-started'
  | 'sshd-exited'
  | 'sshd-gave-up'
  | 'init-fatal'
  | 'init-shutdown'
  /** The kernel finished a power-off, halt or restart ("reboot: Power down", "Power down.", "System halted."). */
  | 'power-off'
  | 'restart';

export interface ConsoleEvent {
  kind: ConsoleEventKind;
  /** 0-based index of the line in the console log. */
  line: number;
  /** The line, without a printk timestamp. */
  text: string;
  /** Kernel version for 'banner', the reason for 'panic', the message for init markers. */
  detail?: string;
}

/** Kinds that mean the guest kernel or our init is broken; fatal before SSH is up. */
export const FATAL_KINDS: ReadonlySet<ConsoleEventKind> = new Set(['panic', 'oops', 'init-killed', 'no-init', 'init-fatal', 'sshd-gave-up']);

/**
 * Kinds after which the kernel goes on: a WARN_ON, a non-fatal "BUG:" (soft lockup, sleeping
 * in atomic context), a lockdep report, slab corruption. They fail the case they appear in
 * and the run goes on.
 */
export const WARNING_KINDS: ReadonlySet<ConsoleEventKind> = new Set(['warning', 'bug', 'lockdep', 'slab-corruption']);

/** Kinds a scenario runner should treat as a kernel problem found during a run. */
export const PROBLEM_KINDS: ReadonlySet<ConsoleEventKind> = new Set(['panic', 'oops', ...WARNING_KINDS, 'init-killed', 'no-init', 'init-fatal']);

interface Rule {
  kind: ConsoleEventKind;
  re: RegExp;
  /** Which capture group becomes the detail. */
  detail?: number;
}

// Order matters: the first rule that matches a line decides its kind, except that a panic
// line also yields 'init-killed' / 'no-init' when it names that cause.
const RULES: Rule[] = [
  { kind: 'init-fatal', re: /ktrial-init: FATAL: (.*)$/, detail: 1 },
  { kind: 'userland-up', re: /ktrial-init: userland up/ },
  { kind: 'network-up', re: /ktrial-init: network up (.*)$/, detail: 1 },
  { kind: 'sshd-started', re: /ktrial-init: sshd started(.*)$/, detail: 1 },
  { kind: 'sshd-gave-up', re: /ktrial-init: sshd keeps dying/ },
  { kind: 'sshd-exited', re: /ktrial-init: sshd exited: (.*)$/, detail: 1 },
  { kind: 'init-shutdown', re: /ktrial-init: (powering off|rebooting)/, detail: 1 },
  { kind: 'banner', re: /Linux version (\S+)/, detail: 1 },
  { kind: 'panic', re: /Kernel panic - not syncing: ?(.*)$/, detail: 1 },
  { kind: 'oops', re: /(Oops: [0-9a-fx]+.*|Oops\b.*\[#?\d+\].*)$/, detail: 1 },
  { kind: 'oops', re: /(Unable to handle kernel (?:NULL pointer dereference|paging request).*)$/, detail: 1 },
  { kind: 'oops', re: /(BUG: (?:unable to handle (?:kernel|page fault)|kernel NULL pointer dereference).*)$/, detail: 1 },
  { kind: 'oops', re: /(general protection fault.*)$/, detail: 1 },
  { kind: 'oops', re: /(kernel BUG at \S+)/, detail: 1 },
  // WARN_ON in 2.6 kernels: "BUG: warning at FILE:LINE/FUNC()", later "BUG: at FILE:LINE FUNC()" (2.6.20).
  { kind: 'warning', re: /(BUG: (?:warning )?at \S+:\d+.*)$/, detail: 1 },
  { kind: 'warning', re: /(WARNING: (?:CPU: \d+ PID: \d+ )?at .*|WARNING: at .*)$/, detail: 1 },
  { kind: 'lockdep', re: /(possible (?:circular|recursive) locking dependency detected|inconsistent lock state|possible irq lock inversion dependency detected|suspicious RCU usage|INFO: trying to register non-static key|BUG: held lock freed!?|bad unlock balance detected!?)/, detail: 1 },
  { kind: 'slab-corruption', re: /(Slab corruption.*|slab error in \S+\(\).*|BUG \S+ \((?:Not tainted|Tainted: [^)]*)\): .*)$/, detail: 1 },
  { kind: 'bug', re: /(BUG: .*)$/, detail: 1 },
  { kind: 'call-trace', re: /^\s*Call Trace:/ },
  { kind: 'no-init', re: /(No (?:working )?init found.*|Failed to execute \S+.*)$/, detail: 1 },
  { kind: 'run-init', re: /Run (\S+) as init process/, detail: 1 },
  { kind: 'run-init', re: /Freeing unused kernel (?:image )?(?:\(initmem\) )?memory/ },
  { kind: 'link-up', re: /(?:(\S+): link becomes ready|NIC Link is Up)/, detail: 1 },
  { kind: 'power-off', re: /(reboot: Power down|^\s*Power down\.?\s*$|System halted\.?|reboot: System halted)/, detail: 1 },
  { kind: 'restart', re: /(reboot: Restarting system|^\s*Restarting system\.?\s*$)/, detail: 1 },
];

/** Strip the printk timestamp ("[    1.234567] ") and carriage returns. */
export function cleanLine(raw: string): string {
  return raw.replace(/\r/g, '').replace(/^\s*\[\s*\d+\.\d+\]\s?/, '');
}

/** Classify one line (already cleaned); returns zero, one or two events. */
export function classifyLine(text: string, line: number): ConsoleEvent[] {
  for (const r of RULES) {
    const m = r.re.exec(text);
    if (!m) continue;
    const ev: ConsoleEvent = { kind: r.kind, line, text };
    const d = r.detail !== undefined ? m[r.detail] : undefined;
    if (d !== undefined && d.trim() !== '') ev.detail = d.trim();
    const out = [ev];
    if (r.kind === 'panic') {
      if (/Attempted to kill init/.test(text)) out.push({ kind: 'init-killed', line, text });
      else if (/No (?:working )?init found|Unable to mount root fs|VFS: Unable to mount/.test(text)) out.push({ kind: 'no-init', line, text });
    }
    return out;
  }
  return [];
}

/** Parse a whole console log. */
export function parseConsole(lines: readonly string[]): ConsoleEvent[] {
  const out: ConsoleEvent[] = [];
  lines.forEach((raw, i) => out.push(...classifyLine(cleanLine(raw), i)));
  return out;
}

/** A summary of a console log: what a report or a failure message needs. */
export interface ConsoleSummary {
  kernelVersion?: string;
  /** How many times the kernel booted (more than one: it restarted). */
  boots: number;
  reachedUserland: boolean;
  sshdStarted: boolean;
  /** The first fatal event, if any. */
  firstFatal?: ConsoleEvent;
  problems: ConsoleEvent[];
  poweredOff: boolean;
}

export function summarize(events: readonly ConsoleEvent[]): ConsoleSummary {
  const banners = events.filter((e) => e.kind === 'banner');
  const s: ConsoleSummary = {
    boots: banners.length,
    reachedUserland: events.some((e) => e.kind === 'userland-up'),
    sshdStarted: events.some((e) => e.kind === 'sshd-started'),
    problems: events.filter((e) => PROBLEM_KINDS.has(e.kind)),
    poweredOff: events.some((e) => e.kind === 'power-off'),
  };
  const v = banners[0]?.detail;
  if (v !== undefined) s.kernelVersion = v;
  const f = events.find((e) => FATAL_KINDS.has(e.kind));
  if (f) s.firstFatal = f;
  return s;
}

/**
 * Lines around a failure: from a little before the event (the start of its report, if a
 * "cut here" or oops line is close) to some lines after it.
 */
export function excerptAround(lines: readonly string[], index: number, before = 12, after = 40): string {
  let start = Math.max(0, index - before);
  for (let i = index; i >= Math.max(0, index - 60); i--) {
    if (/-{5,}\[ cut here \]-{5,}|^\s*(?:\[\s*\d+\.\d+\]\s*)?(?:Oops|BUG:|Unable to handle kernel|general protection fault|WARNING:)/.test(lines[i] ?? '')) {
      start = Math.min(start, i);
      break;
    }
  }
  const end = Math.min(lines.length, index + after + 1);
  return lines
    .slice(start, end)
    .map((l) => l.replace(/\r/g, ''))
    .join('\n');
}

export function tailLines(lines: readonly string[], n: number): string {
  return lines
    .slice(-n)
    .map((l) => l.replace(/\r/g, ''))
    .join('\n');
}
