// `ktrial merge DIR...`: the outputs of the shards of one run (--shard I/N) joined into the
// reports a single run would have written. Shards of different kernels, trials or suites, a
// missing shard and a shard given twice are refused as bad input, naming the problem.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { badInput } from '../common/errors.js';
import { loadRun, type LoadedRun } from '../compare/index.js';
import { exitCodeFor, overallStatus, REPORT_FILES, toSummary, writeReports, type RunResults } from '../report/index.js';
import type { CaseResult, ShardRecord } from '../scenarios/index.js';
import { UsageError } from './help.js';

type ShardRun = LoadedRun & { results: LoadedRun['results'] & { shard: ShardRecord } };

const shardName = (s: ShardRecord) => `${s.index}/${s.count}`;

/** The kernel facts that must agree: a shard of another kernel is another run. */
const KERNEL_FACTS = ['release', 'source', 'config'] as const;

function sameOrRefuse<T>(runs: readonly ShardRun[], what: string, fact: (r: ShardRun) => T): void {
  const first = runs[0]!;
  const text = (r: ShardRun) => JSON.stringify(fact(r)) ?? 'none';
  const other = runs.find((r) => text(r) !== text(first));
  if (other)
    throw badInput(`the shards are of different ${what}: ${first.path} (shard ${shardName(first.results.shard)}) has ${text(first)}, ${other.path} (shard ${shardName(other.results.shard)}) has ${text(other)}`, {
      hint: 'merge the shards of one run: the same trial, kernel and suites, each run with --shard I/N',
    });
}

/** Checks that the runs are the N shards of one run, each once; returns them by index. */
export function checkShards(runs: readonly LoadedRun[]): ShardRun[] {
  if (runs.length === 0) throw badInput('merge needs the output directories of the shards', { hint: 'ktrial merge out/t.shard-1-of-2 out/t.shard-2-of-2 --out out/t' });
  for (const r of runs) if (!r.results.shard) throw badInput(`${r.path} is not the output of a shard: its run had no --shard I/N`, { hint: 'merge joins the outputs of `ktrial run TRIAL --shard I/N` for I = 1..N' });
  const shards = runs as ShardRun[];
  for (const fact of KERNEL_FACTS) sameOrRefuse(shards, `kernels (${fact === 'config' ? 'config hash' : fact})`, (r) => r.results.kernel[fact]);
  sameOrRefuse(shards, 'trials', (r) => r.results.trial);
  sameOrRefuse(shards, 'shard counts', (r) => r.results.shard.count);
  sameOrRefuse(shards, 'suites (name, cases, digest of the case names)', (r) => r.results.shard.suites);
  const count = shards[0]!.results.shard.count;
  const byIndex = new Map<number, ShardRun>();
  for (const r of shards) {
    const twice = byIndex.get(r.results.shard.index);
    if (twice) throw badInput(`shard ${shardName(r.results.shard)} is given twice: ${twice.path} and ${r.path}`, { hint: 'give each shard once' });
    byIndex.set(r.results.shard.index, r);
  }
  const missing = Array.from({ length: count }, (_, i) => i + 1).filter((i) => !byIndex.has(i));
  if (missing.length) throw badInput(`shard${missing.length > 1 ? 's' : ''} ${missing.map((i) => `${i}/${count}`).join(', ')} of ${shards[0]!.results.trial} ${missing.length > 1 ? 'are' : 'is'} missing`, { hint: `give the output directories of all ${count} shards` });
  return [...byIndex.entries()].sort(([a], [b]) => a - b).map(([, r]) => r);
}

/** Where a case goes in a suite: its setup first, the cases by index, its cleanup last. */
const position = (c: CaseResult) => (c.kind === 'setup' ? 0 : c.kind === 'cleanup' ? Number.MAX_SAFE_INTEGER : c.index);

/** The shards' results as one run's: cases in suite order, every shard's error and notes. */
export function mergeShards(runs: readonly LoadedRun[]): RunResults {
  const shards = checkShards(runs);
  const first = shards[0]!.results;
  const suiteOrder = first.shard.suites.map((s) => s.name);
  const cases = shards
    .flatMap((r) => r.results.cases.map((c) => (c.kind === 'case' ? c : { ...c, name: `${c.name} (shard ${shardName(r.results.shard)})` })))
    .sort((a, b) => suiteOrder.indexOf(a.suite) - suiteOrder.indexOf(b.suite) || position(a) - position(b));
  const failed = shards.find((r) => r.results.error);
  const error = failed ? { ...failed.results.error!, message: `shard ${shardName(failed.results.shard)}: ${failed.results.error!.message}` } : undefined;
  const notes = [...new Set(shards.flatMap((r) => r.results.notes ?? []))];
  const { qemuPid: _perShard, ...kernel } = first.kernel;
  const started = shards.map((r) => r.results.startedAt).filter((s): s is string => !!s).sort();
  // The merged run was as confined as its least confined shard.
  const confinement = leastConfined(shards.map((r) => r.results.confinement));
  return {
    trial: first.trial,
    kernel,
    phases: [],
    cases,
    status: overallStatus(cases, error),
    ...(error ? { error } : {}),
    ...(started.length ? { startedAt: started[0] } : {}),
    ...(notes.length ? { notes } : {}),
    ...(confinement ? { confinement } : {}),
    ...(first.patches ? { patches: first.patches } : {}),
    mergedFrom: shards.map((r) => ({
      dir: r.label,
      shard: shardName(r.results.shard),
      status: r.results.status,
      exitCode: r.results.exitCode ?? exitCodeFor(r.results),
      ...(r.results.seconds !== undefined ? { seconds: r.results.seconds } : {}),
      ...(r.results.startedAt ? { startedAt: r.results.startedAt } : {}),
    })),
  };
}

function leastConfined(all: (RunResults['confinement'] | undefined)[]): RunResults['confinement'] {
  const known = all.filter((c): c is NonNullable<typeof c> => !!c);
  return known.find((c) => c.network === 'outbound') ?? known.find((c) => !c.sandbox) ?? known[0];
}

/** `ktrial merge DIR... [--out DIR]`; returns the merged run's exit code. */
export async function mergeCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { out: { type: 'string' }, quiet: { type: 'boolean', short: 'q' } } });
  if (positionals.length === 0) throw new UsageError('merge takes the output directories (or results.json files) of the shards', 'merge');
  const runs: LoadedRun[] = [];
  for (const p of positionals) runs.push(await loadRun(p));
  const merged = mergeShards(runs);
  const outDir = resolve(values.out ?? join('out', merged.trial));
  const clash = runs.find((r) => resolve(r.path) === resolve(outDir, REPORT_FILES.json));
  if (clash) throw badInput(`--out ${outDir} is a shard's own output directory (${clash.label}); merging there would overwrite it`, { hint: 'give another --out' });
  await writeReports(outDir, merged);
  process.stdout.write(toSummary(merged));
  if (!values.quiet) process.stdout.write(`reports: ${outDir}/{${Object.values(REPORT_FILES).join(',')}}\n`);
  return exitCodeFor(merged);
}
