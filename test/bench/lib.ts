// Helpers for the benchmark: summary statistics, host load, child processes that are
// always cleaned up, and plain-text tables.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';

export interface Stats {
  n: number;
  median: number;
  min: number;
  max: number;
}

export function stats(values: readonly number[]): Stats | null {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return null;
  const mid = Math.floor(v.length / 2);
  const median = v.length % 2 ? v[mid]! : (v[mid - 1]! + v[mid]!) / 2;
  return { n: v.length, median, min: v[0]!, max: v[v.length - 1]! };
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

// ---------------------------------------------------------------------------------------
// Host load

export interface LoadSnapshot {
  at: string;
  /** 1, 5 and 15 minute load averages. */
  loadavg: [number, number, number];
  /** `uptime` as printed. */
  uptime: string;
}

export async function loadSnapshot(): Promise<LoadSnapshot> {
  const l = loadavg();
  const r = await capture('uptime', []);
  return { at: new Date().toISOString(), loadavg: [round(l[0]!, 2), round(l[1]!, 2), round(l[2]!, 2)], uptime: r.stdout.trim() };
}

export interface LoadDuring {
  samples: number;
  /** Mean and maximum of the 1-minute load average while the measurement ran. */
  load1Mean: number;
  load1Max: number;
  /** Mean count of runnable tasks (the 4th field of /proc/loadavg), an instantaneous figure. */
  runnableMean: number;
}

/** Samples /proc/loadavg once a second until stopped. */
export class LoadSampler {
  private load1: number[] = [];
  private runnable: number[] = [];
  private timer: NodeJS.Timeout | undefined;

  start(): this {
    this.sample();
    this.timer = setInterval(() => this.sample(), 1000);
    this.timer.unref();
    return this;
  }

  private sample(): void {
    try {
      const f = readFileSync('/proc/loadavg', 'utf8').trim().split(/\s+/);
      this.load1.push(Number(f[0]));
      const run = /^(\d+)\//.exec(f[3] ?? '');
      if (run) this.runnable.push(Number(run[1]));
    } catch {
      // not Linux: no samples
    }
  }

  stop(): LoadDuring {
    if (this.timer) clearInterval(this.timer);
    this.sample();
    const mean = (a: number[]) => (a.length ? a.reduce((s, x) => s + x, 0) / a.length : NaN);
    return { samples: this.load1.length, load1Mean: round(mean(this.load1), 2), load1Max: round(Math.max(...this.load1), 2), runnableMean: round(mean(this.runnable), 2) };
  }
}

export const round = (x: number, d = 3) => (Number.isFinite(x) ? Math.round(x * 10 ** d) / 10 ** d : x);

// ---------------------------------------------------------------------------------------
// Child processes: every one the benchmark starts is tracked and killed on every way out.

const children = new Set<ChildProcess>();

export function track(c: ChildProcess): ChildProcess {
  children.add(c);
  c.once('exit', () => children.delete(c));
  return c;
}

/** SIGKILL every tracked child that still runs (synchronous: safe in 'exit' handlers). */
export function killTracked(signal: NodeJS.Signals = 'SIGKILL'): void {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null && c.pid) {
      try {
        process.kill(c.pid, signal);
      } catch {
        // gone
      }
    }
  }
}

export function trackedCount(): number {
  return children.size;
}

export interface Captured {
  code: number | null;
  stdout: string;
  stderr: string;
  ms: number;
}

/** Run a program to completion and capture its output; timed from spawn to exit. */
export function capture(cmd: string, args: readonly string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; timeoutMs?: number } = {}): Promise<Captured> {
  return new Promise((resolve) => {
    const t0 = performance.now();
    const c = track(spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(opts.env ? { env: opts.env } : {}), ...(opts.cwd ? { cwd: opts.cwd } : {}) }));
    let out = '';
    let err = '';
    c.stdout!.on('data', (d: Buffer) => (out += d.toString('utf8')));
    c.stderr!.on('data', (d: Buffer) => (err += d.toString('utf8')));
    const timer = opts.timeoutMs ? setTimeout(() => c.kill('SIGKILL'), opts.timeoutMs) : undefined;
    c.on('error', (e) => {
      if (timer) clearTimeout(timer);
      resolve({ code: 127, stdout: out, stderr: `${err}${e.message}`, ms: performance.now() - t0 });
    });
    c.on('close', (code) => {
      if (timer) clearTimeout(timer);
      resolve({ code, stdout: out, stderr: err, ms: performance.now() - t0 });
    });
  });
}

// ---------------------------------------------------------------------------------------
// Tables

export function table(header: string[], rows: string[][], rightAlignFrom = 1): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const fmt = (r: string[]) => r.map((c, i) => (i >= rightAlignFrom ? (c ?? '').padStart(widths[i]!) : (c ?? '').padEnd(widths[i]!))).join('  ').trimEnd();
  return [fmt(header), widths.map((w) => '-'.repeat(w)).join('  '), ...rows.map(fmt)].join('\n');
}

/** A number for a table: fixed decimals, or "-" when absent. */
export function num(x: number | undefined | null, d = 2): string {
  return x === undefined || x === null || !Number.isFinite(x) ? '-' : x.toFixed(d);
}

// ---------------------------------------------------------------------------------------
// Results: one file per section

export const SECTIONS = ['cold', 'incremental', 'warm', 'boot', 'step', 'restore', 'jobs', 'recovery'] as const;
export type Section = (typeof SECTIONS)[number];

/** The run's keys each section's file holds; the warm block (warm, boot, step, restore) shares warmBlocks. */
const SECTION_KEYS: Record<Section, string[]> = {
  cold: ['cold'],
  incremental: ['incremental'],
  warm: ['warm', 'memory', 'warmBlocks'],
  boot: ['boot', 'baselineCommand', 'warmBlocks'],
  step: ['steps', 'warmBlocks'],
  restore: ['restore', 'warmBlocks'],
  jobs: ['jobs'],
  recovery: ['recovery'],
};

/** A warm block that was not reported keeps each section's samples under this key. */
const BLOCK_KEY: Partial<Record<Section, string>> = { warm: 'warm', boot: 'boot', step: 'steps', restore: 'restore' };

/** The keys every section's file repeats: the run, the machine and commit, the options, the load. */
const RUN_KEYS = ['startedAt', 'finishedAt', 'seconds', 'complete', 'machine', 'options', 'sources', 'accelerators', 'loads', 'primingRuns', 'failures', 'workDir'];

export const BENCH_FORMAT = 'ktrial-bench/2';

/**
 * One section's results file, from the run's whole document: the run's facts, that
 * section's samples and figures, the unreported warm blocks' samples of it and its targets.
 */
export function sectionDoc(run: Record<string, unknown>, section: Section): Record<string, unknown> {
  const doc: Record<string, unknown> = { format: BENCH_FORMAT, section };
  for (const k of [...RUN_KEYS, ...SECTION_KEYS[section]]) if (run[k] !== undefined) doc[k] = run[k];
  const blockKey = BLOCK_KEY[section];
  const others = run.otherBlocks as Record<string, unknown>[] | undefined;
  if (blockKey && others?.length) doc.otherBlocks = others.map((b) => ({ attempt: b.attempt, [blockKey]: b[blockKey] }));
  const targets = run.targets as { section?: string }[] | undefined;
  if (targets) doc.targets = targets.filter((t) => t.section === section);
  return doc;
}
