// Reporters: pure functions from RunResults to results.json, TAP 14, JUnit XML and a
// short summary; writeReports puts the files in a directory.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { toResultsJson } from './json.js';
import { toJunit } from './junit.js';
import { toSummary } from './summary.js';
import { toTap } from './tap.js';
import { writeOwnFile } from '../common/paths.js';
import type { RunResults } from './types.js';

export { toResultsJson, toJunit, toSummary, toTap };
export { BISECT, bisectVerdict, UNTESTABLE_PHASES, EXIT_CODES, exitCodeFor, overallStatus, effectiveStatus, type RunStatus } from './status.js';
export { RESULTS_FORMAT, type RunResults, type KernelInfo } from './types.js';

export const REPORT_FILES = { json: 'results.json', tap: 'results.tap', junit: 'junit.xml', summary: 'summary.txt' } as const;

/** Write every report into dir; returns the paths written. */
export async function writeReports(dir: string, r: RunResults): Promise<string[]> {
  await mkdir(dir, { recursive: true });
  const files: [string, string][] = [
    [REPORT_FILES.json, toResultsJson(r)],
    [REPORT_FILES.tap, toTap(r)],
    [REPORT_FILES.junit, toJunit(r)],
    [REPORT_FILES.summary, toSummary(r)],
  ];
  const paths: string[] = [];
  for (const [name, text] of files) {
    const p = join(dir, name);
    await writeOwnFile(p, text);
    paths.push(p);
  }
  return paths;
}
