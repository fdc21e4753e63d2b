// A series patch by patch. --each-patch: the kernel's own rule is that every patch of a
// series builds, boots and breaks nothing, so the trial runs after each patch (rows FROM-1
// .. N, row 0 the series' base), each row a run directory of its own built incrementally in
// the one work tree, then a table: applies, builds (the first compiler error), boots, the
// verdict counts and what changed from the row before as `ktrial compare` classes it.
// --first-bad: when the whole series fails where its base passed, bisection over the rows
// finds the first patch that fails, as git bisect would, a row that cannot be built or
// patched counting as skip.
import { join, resolve } from 'node:path';
import { badInput, renderFailure } from './common/errors.js';
import type { StageContext } from './common/context.js';
import { writeOwnFile } from './common/paths.js';
import { Progress } from './common/progress.js';
import { caseKey, classify, compareRuns, loadRun, toCompareHtml, type LoadedRun } from './compare/index.js';
import { loadPatchList, type PatchFile } from './patch/series.js';
import { BISECT, bisectVerdict, EXIT_CODES, exitCodeFor, UNTESTABLE_PHASES, type RunResults } from './report/index.js';
import { countVerdicts } from './scenarios/index.js';
import { planRun, type RunOptions, type RunPlan } from './runplan.js';
import { runTrial } from './trialrun.js';

export const EACH_PATCH_FILES = { table: 'each-patch.txt', json: 'each-patch.json', html: 'each-patch.html' } as const;

/** One row of the table: the run after the first `upto` patches. */
export interface PatchRow {
  upto: number;
  /** The row's own patch (none for the base). */
  patch?: { subject?: string; file: string; sha256: string };
  dir: string;
  applies: boolean;
  builds: boolean;
  /** Why it did not build: the first compiler error, or that an earlier patch broke the build. */
  buildProblem?: string;
  boots: boolean;
  counts: ReturnType<typeof countVerdicts>;
  /** Cases against the row before: regressions and fixes, by name. */
  regressions: string[];
  fixes: string[];
  exitCode: number;
  /** Whether the row's kernel came from the cache (a row built in this run is one build). */
  cached: boolean;
  error?: string;
}

interface SeriesRun {
  plan: RunPlan;
  patches: PatchFile[];
  root: string;
}

/** The series of a plan (the trial's patches and --patch's), each row's run going under the plan's output directory. */
async function seriesOf(plan: RunPlan, ctx: StageContext): Promise<SeriesRun> {
  if (plan.given) throw badInput('--each-patch and --first-bad build the kernel after each patch, and --kernel/--build-dir skip the build', { hint: 'drop --kernel/--build-dir' });
  if (plan.upto !== undefined) throw badInput('--upto picks one row; --each-patch and --first-bad make every row themselves', { hint: 'drop --upto' });
  const { patches } = await loadPatchList(plan.patches.map((p) => p.path));
  if (!patches.length) throw badInput(`the trial ${plan.trial.name} has no patches, and no --patch was given: there is nothing to take patch by patch`, { hint: 'give the series with --patch PATH (a format-patch directory, an mbox, a quilt directory)' });
  ctx.progress.info(`series: ${patches.length} patch${patches.length === 1 ? '' : 'es'} on ${plan.trial.name}`);
  return { plan, patches, root: plan.outDir };
}

/** Run the trial after the first `upto` patches, into root/patch-<upto>, quietly but for its summary. */
async function runRow(s: SeriesRun, options: RunOptions, upto: number, ctx: StageContext, previous: { row: PatchRow; results: RunResults } | undefined, say: (text: string) => void): Promise<{ row: PatchRow; results: RunResults }> {
  const dir = join(s.root, `patch-${upto}`);
  const plan = await planRun(s.plan.rerun.trialFile, { ...options, out: dir, upto: String(upto) }, s.plan.trialChosen);
  const progress = new Progress();
  progress.verbosity = ctx.progress.verbosity === 'verbose' ? 'verbose' : 'quiet';
  const patch = upto ? s.patches[upto - 1]! : undefined;
  ctx.progress.info(`row ${upto}${patch ? `: ${patch.subject ?? patch.file}` : ': the base, before the first patch'} -> ${dir}`);
  const results = await runTrial(plan, { ...ctx, progress });
  if (results.error) say(`  row ${upto}: ${renderFailure(results.error.class, results.error.message.split('\n')[0]!, {})}\n`);
  const failed = results.phases.find((p) => p.status === 'failed')?.phase;
  // The phases whose failure leaves no kernel to test, and the source the build never got.
  const builds = !(failed && (UNTESTABLE_PHASES.has(failed) || failed === 'source'));
  const compiler = failed === 'build' ? /the kernel build failed: (.*)/.exec(results.error?.message ?? '')?.[1] : undefined;
  const earlierBroke = !builds && previous && !previous.row.builds && previous.row.applies;
  const { regressions, fixes } = previous ? changesFrom(previous.results, results) : { regressions: [], fixes: [] };
  const row: PatchRow = {
    upto,
    ...(patch ? { patch: { ...(patch.subject ? { subject: patch.subject } : {}), file: patch.file, sha256: patch.sha256 } } : {}),
    dir,
    applies: failed !== 'patch',
    builds,
    ...(!builds && failed !== 'patch' ? { buildProblem: earlierBroke ? `not built (an earlier patch broke the build${compiler ? `: ${compiler}` : ''})` : compiler ?? results.error?.message.split('\n')[0] ?? 'not built' } : {}),
    boots: builds && failed !== 'boot',
    counts: countVerdicts(results.cases.filter((c) => c.kind === 'case')),
    regressions,
    fixes,
    exitCode: exitCodeFor(results),
    cached: results.kernel.cached === true,
    ...(results.error ? { error: results.error.message.split('\n')[0]! } : {}),
  };
  return { row, results };
}

/** The cases that regressed and were fixed from one row to a later one, as `ktrial compare` classes them. */
function changesFrom(before: RunResults, after: RunResults): { regressions: string[]; fixes: string[] } {
  const old = new Map(before.cases.map((c) => [caseKey(c), c]));
  const regressions: string[] = [];
  const fixes: string[] = [];
  for (const c of after.cases) {
    const standing = classify(old.get(caseKey(c)), c);
    if (standing === 'regression') regressions.push(c.name);
    if (standing === 'fix') fixes.push(c.name);
  }
  return { regressions, fixes };
}

const yesNo = (b: boolean) => (b ? 'yes' : 'NO');

/** The table, one line a row. */
export function eachPatchTable(rows: readonly PatchRow[]): string {
  const out = ['row  patch                                                   applies builds boots  passed failed not-run  changes'];
  for (const r of rows) {
    const title = r.patch ? (r.patch.subject ?? r.patch.file) : '(the base)';
    const changes = [r.regressions.length ? `${r.regressions.length} regression${r.regressions.length > 1 ? 's' : ''}: ${r.regressions.join('; ')}` : '', r.fixes.length ? `${r.fixes.length} fix${r.fixes.length > 1 ? 'es' : ''}: ${r.fixes.join('; ')}` : ''].filter(Boolean).join('; ') || (r.upto ? 'none' : '-');
    const n = r.counts;
    out.push(
      `${String(r.upto).padStart(3)}  ${title.slice(0, 55).padEnd(55)} ${yesNo(r.applies).padEnd(7)} ${(r.applies ? yesNo(r.builds) : '-').padEnd(6)} ${(r.builds ? yesNo(r.boots) : '-').padEnd(5)} ${String(n.passed + n['expected-failure']).padStart(6)} ${String(n.failed + n['unexpectedly-passed'] + n.flaky).padStart(6)} ${String(n['not-run']).padStart(7)}  ${changes}`,
    );
    if (r.buildProblem) out.push(`     ${r.buildProblem}`);
    else if (r.error && r.builds) out.push(`     ${r.error}`);
  }
  return `${out.join('\n')}\n`;
}

async function writeTable(root: string, rows: readonly PatchRow[], extra: Record<string, unknown> = {}): Promise<string> {
  const text = eachPatchTable(rows);
  await writeOwnFile(join(root, EACH_PATCH_FILES.table), text);
  await writeOwnFile(join(root, EACH_PATCH_FILES.json), `${JSON.stringify({ format: 'ktrial-each-patch/1', ...extra, rows }, null, 2)}\n`);
  const runs: LoadedRun[] = [];
  for (const r of rows) runs.push({ ...(await loadRun(r.dir)), label: r.upto ? `patch ${r.upto}: ${r.patch?.subject ?? r.patch?.file}` : 'the base' });
  await writeOwnFile(join(root, EACH_PATCH_FILES.html), toCompareHtml(compareRuns(runs)));
  return text;
}

/** `ktrial run TRIAL --each-patch [FROM]`; returns the exit code: the worst row's, and 1 for a regression. */
export async function runEachPatch(plan: RunPlan, options: RunOptions, from: number, ctx: StageContext, say: (text: string) => void): Promise<number> {
  const s = await seriesOf(plan, ctx);
  if (from < 1 || from > s.patches.length) throw badInput(`--each-patch ${from}: the series has ${s.patches.length} patches`, { hint: `start at a patch from 1 to ${s.patches.length}` });
  const done: { row: PatchRow; results: RunResults }[] = [];
  for (let upto = from - 1; upto <= s.patches.length && !ctx.signal.aborted; upto++) done.push(await runRow(s, options, upto, ctx, done.at(-1), say));
  const rows = done.map((d) => d.row);
  if (ctx.signal.aborted) return EXIT_CODES.interrupted;
  say(await writeTable(s.root, rows));
  say(`each patch: ${resolve(s.root)}/{${Object.values(EACH_PATCH_FILES).join(',')}} and a run directory per row (patch-K)\n`);
  const regressed = rows.some((r) => r.regressions.length > 0);
  return Math.max(...rows.map((r) => r.exitCode), regressed ? EXIT_CODES.unexpected : EXIT_CODES.ok);
}

/**
 * `ktrial run TRIAL --first-bad`: the base and the whole series first; when the base is good
 * and the series bad, bisection over the rows between. Exits as --bisect does for the first
 * bad patch's row: 1 when one was found (it is bad), 0 when the series is good, 125 when
 * the base itself cannot be tested, 128 for a host problem.
 */
export async function runFirstBad(plan: RunPlan, options: RunOptions, ctx: StageContext, say: (text: string) => void): Promise<number> {
  const s = await seriesOf(plan, ctx);
  const probed = new Map<number, { row: PatchRow; results: RunResults; verdict: keyof typeof BISECT }>();
  const probe = async (upto: number) => {
    let p = probed.get(upto);
    if (!p) {
      const { row, results } = await runRow(s, options, upto, ctx, undefined, say);
      p = { row, results, verdict: bisectVerdict(results) };
      probed.set(upto, p);
      ctx.progress.info(`row ${upto}: ${p.verdict}`);
    }
    return p.verdict;
  };
  const finish = async (found: number | undefined, why: string, code: number) => {
    // Each row's changes are against the row probed before it in series order.
    const ordered = [...probed.values()].sort((a, b) => a.row.upto - b.row.upto);
    const rows = ordered.map((p, i) => (i ? { ...p.row, ...changesFrom(ordered[i - 1]!.results, p.results) } : p.row));
    const builds = rows.filter((r) => !r.cached && r.applies).length;
    await writeTable(s.root, rows, { firstBad: found ?? null, builds, verdicts: Object.fromEntries([...probed].map(([k, v]) => [k, v.verdict])) });
    const p = found !== undefined ? s.patches[found - 1]! : undefined;
    say(`${eachPatchTable(rows)}first bad: ${p ? `patch ${found}: ${p.subject ?? p.file} (${p.sha256.slice(0, 12)})` : 'none'}: ${why}\n`);
    if (found !== undefined) {
      const r = rows.find((x) => x.upto === found)!;
      say(`  it ${r.regressions.length ? `breaks ${r.regressions.join('; ')}` : r.error ? r.error : `changes the verdicts (${r.counts.failed} failed)`}; its run is ${r.dir}\n`);
    }
    say(`bisection: ${rows.length} row${rows.length === 1 ? '' : 's'} run, ${builds} kernel${builds === 1 ? '' : 's'} built (the others from the cache): ${resolve(s.root)}/${EACH_PATCH_FILES.table}\n`);
    return code;
  };
  const n = s.patches.length;
  if (ctx.signal.aborted) return EXIT_CODES.interrupted;
  const base = await probe(0);
  if (base === 'abort') return finish(undefined, 'the base run met a host problem', BISECT.abort);
  if (base !== 'good') return finish(undefined, `the base itself is ${base === 'bad' ? 'bad' : 'not testable'}: there is no good row to start from`, BISECT.skip);
  const all = await probe(n);
  if (all === 'good') return finish(undefined, 'the whole series is good', BISECT.good);
  if (all === 'abort') return finish(undefined, 'the run of the whole series met a host problem', BISECT.abort);
  // good < first bad <= bad; a row that cannot be tested (skip) is stepped over, as git bisect does.
  let good = 0;
  let bad = all === 'bad' ? n : n + 1;
  const skipped = new Set<number>(all === 'skip' ? [n] : []);
  while (bad - good > 1 && !ctx.signal.aborted) {
    const mid = Math.ceil((good + bad) / 2);
    const candidates = [mid, ...Array.from({ length: bad - good - 1 }, (_, i) => good + 1 + i).filter((k) => k !== mid).sort((a, b) => Math.abs(a - mid) - Math.abs(b - mid))].filter((k) => !skipped.has(k));
    if (!candidates.length) break;
    const k = candidates[0]!;
    const v = await probe(k);
    if (v === 'abort') return finish(undefined, `row ${k} met a host problem`, BISECT.abort);
    if (v === 'good') good = k;
    else if (v === 'bad') bad = k;
    else skipped.add(k);
  }
  if (ctx.signal.aborted) return EXIT_CODES.interrupted;
  if (bad > n) return finish(undefined, 'no row after the base could be tested', BISECT.skip);
  const between = Array.from({ length: bad - good - 1 }, (_, i) => good + 1 + i);
  const why = between.length ? `patches ${between.join(', ')} before it could not be tested, so the first bad one is among patches ${[...between, bad].join(', ')}` : `row ${good} is good and row ${bad} is bad`;
  return finish(bad, why, BISECT.bad);
}
