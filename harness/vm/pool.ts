// A run's guests. The pool itself has syzkaller's shape: create(boot) gives a Vm (run,
// copy, close). GuestPool adds what recovery and --jobs share: an idle guest is lent
// again, a lost one is closed and replaced while the reboot budget lasts, and every boot
// is recorded (its console log, why it was booted, how it ended).
import { rm } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Interrupted } from '../common/errors.js';
import type { Vm } from './guest.js';

export interface VmPool {
  /** Boot guest number `boot` of the run, its console written to `consoleLog`. */
  create(boot: number, consoleLog: string): Promise<Vm>;
}

/** One boot of the run, for results.json and the summary. */
export interface BootRecord {
  boot: number;
  /** The console log's file name in the output directory. */
  console: string;
  /** Why it was booted: the first guest, another guest for --jobs, or the loss it replaces. */
  why: string;
  /** QEMUs of this boot given up on as silent before the one that answered (their consoles kept). */
  silent?: { console: string; state?: string; reason: string }[];
  /** The guest went silent and answered once its link was taken down and up (QEMU's view of it then: state). */
  linkKick?: { afterSshdMs: number; state?: string };
  /** Milliseconds from asking for the guest to its answering SSH (unset for a failed boot). */
  bootMs?: number;
  /** How it ended: "lost: ..." for a guest that crashed or stopped answering, "boot failed: ..."; unset while it was fine. */
  ended?: string;
}

export interface PoolLease {
  vm: Vm;
  boot: number;
}

/** The console log of boot N: console.log for the first, console-N.log after. */
export const consoleLogName = (boot: number) => (boot === 1 ? 'console.log' : `console-${boot}.log`);

export class GuestPool {
  private readonly idle: PoolLease[] = [];
  /** Every guest booted and not yet closed, lent or idle. */
  private readonly live = new Set<Vm>();
  /** Losses not yet replaced: a guest that asks for one of these is a reboot. */
  private readonly unreplaced: string[] = [];
  private reboots = 0;
  private readonly files = new Set<string>();
  private bootFailed: string | undefined;
  readonly boots: BootRecord[] = [];

  constructor(
    private readonly pool: VmPool,
    private readonly runDir: string,
    /** How many guests may run at once (--jobs). */
    readonly jobs: number,
    /** How many lost guests may be replaced in the whole run (--max-reboots). */
    readonly maxReboots: number,
  ) {}

  /** Reboots made so far. */
  get rebootCount(): number {
    return this.reboots;
  }

  /**
   * An idle guest, or a fresh boot: a replacement for a lost guest while the budget lasts,
   * else another guest for --jobs. Returns the refusal when none may be booted; a failed
   * boot throws (the first boot's failure is the run's).
   */
  async acquire(): Promise<PoolLease | { refused: string }> {
    const idle = this.idle.shift();
    if (idle) return idle;
    const loss = this.unreplaced[0];
    if (loss !== undefined) {
      if (this.reboots >= this.maxReboots) return { refused: `${loss}; no reboot left (--max-reboots ${this.maxReboots})` };
      this.unreplaced.shift();
      this.reboots++;
    } else if (this.bootFailed) return { refused: `an earlier boot failed: ${this.bootFailed}` };
    const boot = this.boots.length + 1;
    const record: BootRecord = { boot, console: consoleLogName(boot), why: loss ?? (boot === 1 ? 'the first guest' : `another guest for --jobs ${this.jobs}`) };
    this.boots.push(record);
    const t0 = Date.now();
    try {
      const vm = await this.pool.create(boot, join(this.runDir, record.console));
      record.bootMs = Date.now() - t0;
      this.live.add(vm);
      const t = vm.timings;
      if (t.silentBoots) record.silent = t.silentBoots.map((b) => ({ console: basename(b.console), ...(b.state ? { state: basename(b.state) } : {}), reason: b.reason }));
      if (t.linkKick) record.linkKick = { afterSshdMs: t.linkKick.afterSshdMs, ...(t.linkKick.state ? { state: basename(t.linkKick.state) } : {}) };
      return { vm, boot };
    } catch (err) {
      const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
      record.ended = `boot failed: ${message}`;
      if (!(err instanceof Interrupted)) this.bootFailed = `boot ${boot}: ${message}`;
      throw err;
    }
  }

  /**
   * Boot `count` guests at once and keep them idle for the suites; returns the first. Side
   * by side on the host's cores they take about the time of one boot, where booted later
   * they would take cores from the first guest's cases. The first guest's failure is
   * thrown; another's leaves the rest to do the work (and no more guests are booted for
   * --jobs after it).
   */
  async bootSideBySide(count: number): Promise<PoolLease> {
    const [first, ...more] = await Promise.allSettled(Array.from({ length: Math.max(1, count) }, () => this.acquire()));
    if (first!.status === 'rejected') throw first!.reason;
    if ('refused' in first!.value) throw new Error(first!.value.refused);
    const leases = [first!.value, ...more.flatMap((m) => (m.status === 'fulfilled' && !('refused' in m.value) ? [m.value] : []))];
    for (const lease of leases) await this.release(lease);
    return first!.value;
  }

  /** The lease ends. A lost guest is closed (its QEMU stopped) and counts as a loss to replace. */
  async release(lease: PoolLease, lost?: string): Promise<void> {
    if (!lost) {
      this.idle.push(lease);
      return;
    }
    const record = this.boots.find((b) => b.boot === lease.boot);
    if (record) record.ended = `lost: ${lost}`;
    this.unreplaced.push(`boot ${lease.boot} was lost: ${lost}`);
    this.live.delete(lease.vm);
    await lease.vm.close(2000);
  }

  /** A lent guest's successor takes its place (a guest restored from a saved state): it is closed with the rest. */
  replace(lease: PoolLease, next: Vm): void {
    this.live.delete(lease.vm);
    lease.vm = next;
    this.live.add(next);
  }

  /** A file of the run's guests (a saved state), removed when the pool closes. */
  keepFile(path: string): void {
    this.files.add(path);
  }

  /** Close every guest, idle or lent, and remove the files kept for them. */
  async close(): Promise<void> {
    this.idle.splice(0);
    const all = [...this.live];
    this.live.clear();
    await Promise.all(all.map((vm) => vm.close()));
    await Promise.all([...this.files].map((f) => rm(f, { force: true })));
  }

  /** Whether the summary should say more than that one guest served the run. */
  get eventful(): boolean {
    return this.boots.length > 1 || this.boots.some((b) => b.silent || b.linkKick);
  }

  /** One line for the summary: how many guests were used, and why the extra ones. */
  describe(): string {
    const extra = this.boots.slice(1).map((b) => `boot ${b.boot}: ${b.why}${b.ended?.startsWith('boot failed') ? ` (${b.ended})` : ''}`);
    for (const b of this.boots) {
      for (const s of b.silent ?? []) extra.push(`boot ${b.boot} replaced a silent QEMU (${s.console}): ${s.reason}`);
      if (b.linkKick) extra.push(`boot ${b.boot} was silent ${(b.linkKick.afterSshdMs / 1000).toFixed(0)} s after sshd started and answered once its link was taken down and up`);
    }
    return `${this.boots.length} guest${this.boots.length === 1 ? '' : 's'} booted (${this.reboots} reboot${this.reboots === 1 ? '' : 's'} of --max-reboots ${this.maxReboots})${extra.length ? `; ${extra.join('; ')}` : ''}`;
  }
}
