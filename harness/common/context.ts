import type { Progress } from './progress.js';

/** What every stage receives besides its typed input: where to report, and when to stop. */
export interface StageContext {
  progress: Progress;
  /** Aborted on SIGINT/SIGTERM or a deadline; pass it to every child process and wait. */
  signal: AbortSignal;
}
