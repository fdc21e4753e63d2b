// Reads the runs to compare: an output directory (its results.json) or a results.json
// file. Anything else is bad input, named with the file and the reason.
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { badInput } from '../common/errors.js';
import { VERDICTS } from './format.js';
import { RESULTS_FORMAT, REPORT_FILES, type RunResults } from '../report/index.js';

export interface LoadedRun {
  /** The run as given on the command line. */
  label: string;
  /** The results.json read. */
  path: string;
  /** The run's results, with the exit code results.json records. */
  results: RunResults & { exitCode?: number };
}


export async function loadRun(given: string): Promise<LoadedRun> {
  const info = await stat(given).catch(() => undefined);
  if (!info) throw badInput(`${given}: no such file or directory`, { hint: 'give a run output directory (holding results.json) or a results.json file' });
  const path = info.isDirectory() ? join(given, REPORT_FILES.json) : given;
  const text = await readFile(path, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw badInput(`${path}: cannot be read (${e.code ?? e.message})`, { hint: info.isDirectory() ? 'is this a ktrial run output directory? each run writes results.json there' : undefined });
  });
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw badInput(`${path}: not a ktrial results.json: not JSON (${(e as Error).message})`);
  }
  const rec = doc !== null && typeof doc === 'object' && !Array.isArray(doc) ? (doc as Record<string, unknown>) : undefined;
  if (!rec || !('format' in rec)) throw badInput(`${path}: not a ktrial results.json: it has no "format" field`);
  if (rec.format !== RESULTS_FORMAT) throw badInput(`${path}: format ${JSON.stringify(rec.format)}, but this ktrial reads ${RESULTS_FORMAT}`);
  const cases = rec.cases;
  if (typeof rec.trial !== 'string' || !Array.isArray(cases)) throw badInput(`${path}: not a ktrial results.json: "trial" or "cases" is missing`);
  cases.forEach((c: Record<string, unknown>, i) => {
    if (typeof c?.suite !== 'string' || typeof c.name !== 'string' || typeof c.verdict !== 'string' || !(VERDICTS as readonly string[]).includes(c.verdict))
      throw badInput(`${path}: case ${i + 1} lacks a suite, a name or a known verdict`);
  });
  return { label: given, path, results: rec as unknown as LoadedRun['results'] };
}
