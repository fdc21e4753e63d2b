// The comparison stage, after the reports: results.json of several runs -> how each case
// changed against the first run, as a summary, Markdown, JSON ('ktrial-compare/1') or an
// HTML page.
import { writeFile } from 'node:fs/promises';
import { badInput } from '../common/errors.js';
import { compareRuns } from './compare.js';
import { toCompareJson } from './format.js';
import { toCompareHtml } from './html.js';
import { loadRun } from './load.js';
import { toCompareMarkdown, toCompareSummary } from './text.js';

export { caseKey, classify, cellOf, compareRuns } from './compare.js';
export { loadRun, type LoadedRun } from './load.js';
export { toCompareHtml, toCompareMarkdown, toCompareSummary };
export { CLASS_MEANINGS, COMPARE_CLASSES, COMPARE_FORMAT, compareJsonSchemaText, toCompareJson, compareSchema, type CompareClass, type CompareDoc } from './format.js';

export interface CompareOptions {
  markdown?: boolean;
  json?: boolean;
  /** Also write the HTML page here. */
  html?: string;
}

/** `ktrial compare`: prints the comparison and returns the exit code (1 with regressions). */
export async function compareCommand(given: readonly string[], opts: CompareOptions, out: (text: string) => void): Promise<number> {
  if (given.length < 2) throw badInput('compare needs at least two runs: the baseline first', { hint: 'ktrial compare out/before out/after   (output directories or results.json files)' });
  if (opts.markdown && opts.json) throw badInput('compare takes --markdown or --json, not both');
  const runs = [];
  for (const g of given) runs.push(await loadRun(g));
  const doc = compareRuns(runs);
  if (opts.html) await writeFile(opts.html, toCompareHtml(doc));
  out(opts.json ? toCompareJson(doc) : opts.markdown ? toCompareMarkdown(doc) : toCompareSummary(doc));
  return doc.exitCode;
}
