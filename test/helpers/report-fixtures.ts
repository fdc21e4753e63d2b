// The report fixtures in test/fixtures/reports/: recorded inputs (a real run's
// results.json) and the golden output of every reporter for each. report.test.ts reads
// them; test/fixtures/reports/update.ts is the only thing that writes the goldens.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { repoPath } from '../../harness/common/paths.js';
import { RESULTS_FORMAT, toJunit, toResultsJson, toSummary, toTap, type RunResults } from '../../harness/report/index.js';

export const REPORTS_DIR = repoPath('test', 'fixtures', 'reports');

/** The recorded inputs, by the name their files start with. */
export const REPORT_INPUTS = ['mixed', 'boot-failed', 'all-passed', 'recovered'] as const;
export type ReportInput = (typeof REPORT_INPUTS)[number];

/** Golden file suffix and the reporter that produces it. */
export const REPORTERS: readonly [string, (r: RunResults) => string][] = [
  ['results.json', toResultsJson],
  ['tap', toTap],
  ['junit.xml', toJunit],
  ['summary.txt', toSummary],
];

/** What toResultsJson adds to a RunResults; the reporters derive it again from the cases. */
export const DERIVED_FIELDS = ['format', 'exitCode', 'counts'] as const;

export const inputPath = (name: string) => join(REPORTS_DIR, `${name}.input.json`);
export const goldenPath = (name: string, suffix: string) => join(REPORTS_DIR, `${name}.${suffix}`);

/** A recorded results.json as the RunResults it was written from, and what it recorded
 *  of the derived fields (to check them against what the reporters compute). */
export async function readRecorded(name: string): Promise<{ results: RunResults; recorded: Record<(typeof DERIVED_FIELDS)[number], unknown> }> {
  const doc = JSON.parse(await readFile(inputPath(name), 'utf8')) as Record<string, unknown>;
  if (doc.format !== RESULTS_FORMAT) throw new Error(`${inputPath(name)}: format ${JSON.stringify(doc.format)}, expected ${RESULTS_FORMAT}`);
  const recorded = { format: doc.format, exitCode: doc.exitCode, counts: doc.counts };
  for (const f of DERIVED_FIELDS) delete doc[f];
  return { results: doc as unknown as RunResults, recorded };
}

export async function readInput(name: string): Promise<RunResults> {
  return (await readRecorded(name)).results;
}
