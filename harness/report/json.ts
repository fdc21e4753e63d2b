// results.json: the whole run as data, with counts and the exit code spelled out.
import { countVerdicts } from '../scenarios/index.js';
import { effectiveStatus, exitCodeFor } from './status.js';
import { RESULTS_FORMAT, type RunResults } from './types.js';

export function toResultsJson(r: RunResults): string {
  const doc = {
    format: RESULTS_FORMAT,
    trial: r.trial,
    status: effectiveStatus(r),
    exitCode: exitCodeFor(r),
    ...(r.startedAt !== undefined ? { startedAt: r.startedAt } : {}),
    ...(r.seconds !== undefined ? { seconds: r.seconds } : {}),
    kernel: r.kernel,
    ...(r.patches?.length ? { patches: r.patches } : {}),
    ...(r.confinement ? { confinement: r.confinement } : {}),
    counts: countVerdicts(r.cases),
    phases: r.phases,
    ...(r.guests?.length ? { guests: r.guests } : {}),
    ...(r.error ? { error: r.error } : {}),
    ...(r.notes?.length ? { notes: r.notes } : {}),
    ...(r.rerun ? { rerun: r.rerun } : {}),
    ...(r.shard ? { shard: r.shard } : {}),
    ...(r.mergedFrom ? { mergedFrom: r.mergedFrom } : {}),
    cases: r.cases,
  };
  return `${JSON.stringify(doc, null, 2)}\n`;
}
