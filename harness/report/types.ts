// What a finished trial run hands to the reporters. Plain data: results.json is this
// object (plus counts and the exit code), so other tools can read it back.
import type { FailureClass } from '../common/errors.js';
import type { PhaseRecord } from '../common/progress.js';
import type { CaseResult, ShardRecord } from '../scenarios/index.js';
import type { BootRecord } from '../vm/pool.js';
import type { Confinement } from '../vm/confine.js';
import type { RunStatus } from './status.js';

export const RESULTS_FORMAT = 'ktrial-results/1';

export interface KernelInfo {
  /** e.g. "2.6.20" or "6.1.0-ktrial" (uname -r in the guest, or from the build). */
  release?: string;
  arch?: string;
  /** Free-form facts worth keeping with the results: patch series, config hash, accelerator. */
  [fact: string]: string | number | boolean | undefined;
}

/** One patch of the kernel under test: its file, its mail's subject, its content hash, who gave it. */
export interface AppliedPatchRecord {
  file: string;
  subject?: string;
  sha256: string;
  from: 'trial' | '--patch';
}

export interface RunResults {
  trial: string;
  kernel: KernelInfo;
  phases: PhaseRecord[];
  cases: CaseResult[];
  status: RunStatus;
  /** Why the run stopped short (boot failure, host problem, bad trial file). */
  error?: { class: FailureClass | 'interrupted'; message: string; hint?: string; excerpt?: string };
  /** ISO time the run started. */
  startedAt?: string;
  seconds?: number;
  /** Things worth a look that are not failures (e.g. a known issue that matched no case). */
  notes?: string[];
  /** The patches the kernel carries beyond its era's compat series, in the order applied. */
  patches?: AppliedPatchRecord[];
  /** What the guests' network and their QEMU could reach, and who chose the network (networkBy). */
  confinement?: Confinement & { networkBy: string };
  /** Every guest booted, in order: its console log, why it was booted, how it ended. */
  guests?: BootRecord[];
  /** How to repeat this run: the command (source pinned once it is known) and the ktrial it needs. */
  rerun?: { command: string[]; ktrial: string };
  /** A run of one shard (--shard I/N): which shard, the suites it was cut from, its cases. */
  shard?: ShardRecord;
  /** Results joined by `ktrial merge`: each shard's output directory and how it ended. */
  mergedFrom?: { dir: string; shard: string; status: RunStatus; exitCode: number; seconds?: number; startedAt?: string }[];
}
