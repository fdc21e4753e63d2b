// `ktrial run T1.yaml T2.yaml ...`: each trial run in turn (kernels shared through the
// cache), each into its own directory under --out, then the comparison of the runs with
// the first as the baseline, written beside them. The exit code is the worst of the runs'
// and the comparison's, so a regression against the first trial fails the command.
import { writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { badInput, renderFailure } from './common/errors.js';
import type { StageContext } from './common/context.js';
import { Progress } from './common/progress.js';
import { compareRuns, loadRun, toCompareHtml, toCompareJson, toCompareMarkdown, toCompareSummary, type LoadedRun } from './compare/index.js';
import { EXIT_CODES, exitCodeFor, toSummary } from './report/index.js';
import { planRun, type RunOptions, type RunPlan } from './runplan.js';
import { runTrial } from './trialrun.js';
import { loadTrial } from './trial/trial.js';

/** The comparison's files in the output directory. */
export const COMPARE_FILES = { summary: 'compare.txt', markdown: 'compare.md', json: 'compare.json', html: 'compare.html' } as const;

/** Runs every trial, then compares them; returns the exit code. `say` prints to the user. */
export async function runTrials(trialFiles: readonly string[], options: RunOptions, ctx: StageContext, say: (text: string) => void): Promise<number> {
  const root = resolve(options.out ?? 'out');
  // Every trial is planned (and so validated) before anything is built.
  const plans: RunPlan[] = [];
  for (const file of trialFiles) {
    const { name } = await loadTrial(file);
    const twice = plans.find((p) => p.trial.name === name);
    if (twice) throw badInput(`${file}: trial "${name}" is given twice (also ${twice.rerun.trialFile}); each trial's outputs go to ${join(root, name)}`, { hint: 'give each trial once' });
    plans.push(await planRun(file, { ...options, out: join(root, name) }));
  }
  const codes: number[] = [];
  for (const plan of plans) {
    if (ctx.signal.aborted) break;
    const progress = new Progress();
    progress.verbosity = ctx.progress.verbosity;
    progress.info(`trial ${plan.trial.name} -> ${plan.outDir}`);
    const results = await runTrial(plan, { ...ctx, progress });
    say(toSummary(results));
    if (results.error) process.stderr.write(`${renderFailure(results.error.class, results.error.message, results.error)}\n`);
    codes.push(exitCodeFor(results));
  }
  // An interrupted run leaves nothing to compare.
  if (ctx.signal.aborted) return EXIT_CODES.interrupted;
  const runs: LoadedRun[] = [];
  for (const plan of plans) runs.push({ ...(await loadRun(plan.outDir)), label: plan.trial.name });
  const doc = compareRuns(runs);
  const summary = toCompareSummary(doc);
  await writeFile(join(root, COMPARE_FILES.summary), summary);
  await writeFile(join(root, COMPARE_FILES.markdown), toCompareMarkdown(doc));
  await writeFile(join(root, COMPARE_FILES.json), toCompareJson(doc));
  await writeFile(join(root, COMPARE_FILES.html), toCompareHtml(doc));
  say(`\n${summary}`);
  say(`comparison: ${root}/{${Object.values(COMPARE_FILES).join(',')}}\n`);
  return Math.max(...codes, doc.exitCode);
}
