// What the user sees while a run goes on: which phase runs, for how long, and its outcome.
// Phase timings are also collected for results.json and the benchmark.

/** The phases of a run, in order; each scenario suite is a phase of its own. */
export type PhaseName = 'source' | 'patch' | 'config' | 'build' | 'kernel' | 'guest image' | 'boot' | `scenarios ${string}` | 'shutdown';

export interface PhaseRecord {
  phase: PhaseName;
  status: 'ok' | 'failed' | 'cached' | 'skipped';
  seconds: number;
  detail?: string;
}

export type Sink = (line: string) => void;

/** quiet: no progress at all (the summary and errors still show); verbose: every status change of a phase as it happens. */
export type Verbosity = 'quiet' | 'normal' | 'verbose';

export class Progress {
  readonly phases: PhaseRecord[] = [];
  private readonly t0 = Date.now();
  verbosity: Verbosity = 'normal';

  constructor(
    private readonly sink: Sink = (l) => process.stderr.write(`${l}\n`),
    private readonly heartbeatMs = 15_000,
  ) {}

  /** Record a phase that did not run here (e.g. served whole from the cache). */
  record(rec: PhaseRecord): void {
    this.phases.push(rec);
  }

  info(msg: string): void {
    if (this.verbosity === 'quiet') return;
    this.sink(`[ktrial ${this.clock()}] ${msg}`);
  }

  private clock(): string {
    const s = Math.floor((Date.now() - this.t0) / 1000);
    return `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
  }

  /**
   * Run one phase. `status` lets a phase report what it saw while it runs and `share` how
   * much of it is done, as an estimate from 0 to 1 (the heartbeat prints both); the phase
   * may return 'cached' through `markCached`.
   */
  async phase<T>(name: PhaseName, fn: (ctl: PhaseControl) => Promise<T>): Promise<T> {
    const start = Date.now();
    let status = '';
    let share: number | undefined;
    let cached: string | undefined | false = false;
    this.info(`${name}: started`);
    const timer = setInterval(() => this.info(`${name}: ${phaseLine((Date.now() - start) / 1000, share)}${status ? `, ${status}` : ''}`), this.heartbeatMs);
    timer.unref();
    try {
      const out = await fn({
        status: (s) => {
          if (this.verbosity === 'verbose' && s !== status) this.info(`${name}: ${s}`);
          status = s;
        },
        markCached: (d) => {
          cached = d ?? '';
        },
        share: (f) => {
          share = f;
        },
      });
      const seconds = (Date.now() - start) / 1000;
      const rec: PhaseRecord = { phase: name, status: cached === false ? 'ok' : 'cached', seconds };
      if (typeof cached === 'string' && cached) rec.detail = cached;
      this.phases.push(rec);
      this.info(`${name}: ${rec.status === 'cached' ? 'cache hit' : 'done'} in ${fmtSeconds(seconds)}${rec.detail ? ` (${rec.detail})` : ''}`);
      return out;
    } catch (err) {
      const seconds = (Date.now() - start) / 1000;
      this.phases.push({ phase: name, status: 'failed', seconds, detail: err instanceof Error ? err.message.split('\n')[0] ?? '' : String(err) });
      this.info(`${name}: FAILED after ${fmtSeconds(seconds)}`);
      throw err;
    } finally {
      clearInterval(timer);
    }
  }
}

export interface PhaseControl {
  status(s: string): void;
  share(fraction: number | undefined): void;
  markCached(detail?: string): void;
}

/** "1m30s elapsed", and with an estimated share done "1m30s elapsed, ~42% done, about 2m04s left". */
export function phaseLine(elapsedS: number, share: number | undefined): string {
  const elapsed = `${fmtSeconds(elapsedS)} elapsed`;
  if (share === undefined) return elapsed;
  const pct = Math.floor(share * 100);
  // Too early for the rate to say anything about the time left.
  if (share < 0.05 || share >= 1) return `${elapsed}, ~${pct}% done`;
  return `${elapsed}, ~${pct}% done, about ${fmtSeconds((elapsedS * (1 - share)) / share)} left`;
}

export function fmtSeconds(s: number): string {
  if (s < 60) return `${s.toFixed(1)}s`;
  return `${Math.floor(s / 60)}m${String(Math.round(s % 60)).padStart(2, '0')}s`;
}
