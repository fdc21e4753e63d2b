// Stage 4: configured tree -> bzImage. make runs with the pinned build variables, its
// whole output goes to the build log, and a failure is summarised by its first error.
import { copyFile, readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import type { StageContext } from '../common/context.js';
import { kernelFailure } from '../common/errors.js';
import { run } from '../common/proc.js';
import type { KernelEra } from '../eras/eras.js';
import type { PhaseControl } from '../common/progress.js';
import { describeFailure, summariseBuildLog, type BuildSummary } from './buildlog.js';
import { BuildCounter } from './buildstats.js';
import { makeVars, type Toolchain } from './toolchain.js';

/** Variables that make a build independent of who, where and when. */
export const PINNED_BUILD_ENV = {
  KBUILD_BUILD_TIMESTAMP: 'Thu Jan  1 00:00:00 UTC 1970',
  KBUILD_BUILD_USER: 'ktrial',
  KBUILD_BUILD_HOST: 'ktrial',
  KBUILD_BUILD_VERSION: '1',
  LC_ALL: 'C',
  TZ: 'UTC',
};

export interface BuildResult {
  summary: BuildSummary;
  makeArgs: string[];
  seconds: number;
}

/** expectedObjects: what a full build of this tree and config compiles, when known, for the share done. */
export async function makeKernel(tree: string, era: KernelEra, tc: Toolchain, outDir: string, logFile: string, timeoutS: number, ctx: StageContext, ctl: Pick<PhaseControl, 'status' | 'share'>, expectedObjects?: number): Promise<BuildResult> {
  const jobs = Math.max(1, cpus().length);
  const makeArgs = [...makeVars(era, tc), `-j${jobs}`, 'bzImage'];
  const counter = new BuildCounter(expectedObjects);
  const t0 = Date.now();
  const r = await run('make', makeArgs, {
    cwd: tree,
    env: PINNED_BUILD_ENV,
    signal: ctx.signal,
    logFile,
    timeoutMs: timeoutS * 1000,
    onLine: (l) => {
      const seen = counter.line(l);
      if (!seen) return;
      if (seen.share !== undefined) ctl.share(seen.share);
      ctl.status(seen.status);
    },
  });
  const summary = summariseBuildLog(await readFile(logFile, 'utf8'));
  const seconds = (Date.now() - t0) / 1000;
  if (r.exitCode !== 0) {
    const timedOut = seconds >= timeoutS;
    throw kernelFailure(timedOut ? `the kernel build did not finish within ${timeoutS}s` : `the kernel build failed: ${describeFailure(summary)}`, {
      excerpt: r.all.trim().split('\n').filter((l) => !/^\s+(CC|AS|LD|HOSTCC|GEN|CHK|UPD)\s/.test(l)).slice(-12).join('\n'),
      hint: timedOut ? 'raise timeouts.build in the trial or --timeout-build' : `the full log is ${logFile}`,
    });
  }
  await copyFile(join(tree, era.bzImage), join(outDir, 'bzImage'));
  await copyFile(join(tree, '.config'), join(outDir, 'config'));
  // Kept for decoding crash traces (addresses to function and file:line); not part of the cache key.
  await copyFile(join(tree, 'vmlinux'), join(outDir, 'vmlinux'));
  return { summary, makeArgs, seconds };
}
