// `ktrial list`: the trials and suites this checkout has, or the cases a trial or a suite
// would run, selected by --only exactly as `run --only` selects them. Whether a case's
// kernel requirements hold is known only after the build, so every selected case is listed.
import { readdir } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { join, relative, resolve } from 'node:path';
import { badInput, formatWhere, KtrialError } from '../common/errors.js';
import { repoPath } from '../common/paths.js';
import { loadYamlFile } from '../common/yaml.js';
import { expandSuite, findKnownIssue, loadSuite, loadSuitesWithVars, selectByOnly, type KnownIssue, type Suite } from '../scenarios/index.js';
import { loadTrial } from '../trial/trial.js';
import { alignColumns } from './columns.js';
import { UsageError } from './help.js';
import { loadPatchList } from '../patch/series.js';
import { EXIT_CODES } from '../report/index.js';

const TRIALS_DIR = repoPath('configs', 'trials');
const SUITES_DIR = repoPath('test', 'scenarios');

const shown = (file: string) => relative(process.cwd(), file) || file;

async function yamlFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((f) => /\.ya?ml$/.test(f)).sort().map((f) => join(dir, f));
}

/** Every trial in configs/trials/ (name, file, description) and every suite in test/scenarios/ (name, file, cases). */
export async function listCatalogue(): Promise<string> {
  const trials = await Promise.all((await yamlFiles(TRIALS_DIR)).map(async (f) => ({ file: f, trial: await loadTrial(f) })));
  const suites = await Promise.all((await yamlFiles(SUITES_DIR)).map(async (f) => ({ file: f, suite: await loadSuite(f) })));
  return [
    `trials (${shown(TRIALS_DIR)}):`,
    alignColumns(trials.map(({ file, trial }) => ['  ' + trial.name, shown(file), trial.description])),
    '',
    `suites (${shown(SUITES_DIR)}):`,
    alignColumns(suites.map(({ file, suite }) => ['  ' + suite.name, shown(file), `${expandSuite(suite).length} cases`])),
  ].join('\n');
}

export interface Listing {
  /** "suite/name" of each selected case, with "(expected failure)" when the trial expects it to fail. */
  lines: string[];
  selected: number;
  total: number;
}

/** The cases a trial's suites, or one suite file, hold, in run order, selected by --only. */
export async function listCases(file: string, only: readonly string[] | undefined): Promise<Listing> {
  const notTrialOrSuite = (why: string) =>
    badInput(`${file} is neither a trial nor a scenario suite: ${why}`, { hint: 'ktrial list, without an argument, shows the trials and suites there are' });
  const doc = await loadYamlFile(file, 'trial or scenario file', 'give a trial (configs/trials/) or a scenario suite (test/scenarios/)').catch((err: unknown) => {
    // A file that is not YAML at all (a config fragment, a patch) is most likely the wrong file.
    throw err instanceof KtrialError && err.message.startsWith('malformed YAML') ? notTrialOrSuite(`it is not YAML (${err.where ? `${formatWhere(err.where)}: ` : ''}${err.message})`) : err;
  });
  const keys = doc.value !== null && typeof doc.value === 'object' && !Array.isArray(doc.value) ? Object.keys(doc.value) : [];
  let suites: Suite[];
  let knownIssues: readonly KnownIssue[] = [];
  if (keys.includes('cases')) {
    suites = [await loadSuite(file)];
  } else if (keys.includes('source') && keys.includes('scenarios')) {
    const trial = await loadTrial(file);
    suites = await loadSuitesWithVars(trial.scenarios, trial.vars, (v) => trial.varsWhere[v]);
    knownIssues = trial.expectedFailures;
  } else {
    throw notTrialOrSuite('it has neither source: and scenarios: nor cases:');
  }
  const listing: Listing = { lines: [], selected: 0, total: 0 };
  const selected = selectByOnly(only);
  for (const suite of suites) {
    for (const c of expandSuite(suite)) {
      listing.total++;
      if (!selected(c)) continue;
      listing.selected++;
      listing.lines.push(`${c.suite}/${c.name}${findKnownIssue(c, knownIssues) ? '  (expected failure)' : ''}`);
    }
  }
  return listing;
}

/** The patches --patch names, in the order they are applied, and what was skipped. */
async function listPatches(paths: string[]): Promise<number> {
  const { series } = await loadPatchList(paths.map((p) => resolve(p)));
  let n = 0;
  for (const s of series) {
    for (const p of s.patches) process.stdout.write(`${++n}. ${p.subject ?? relative(process.cwd(), p.file)}  (sha256 ${p.sha256.slice(0, 12)}, touches ${p.touches.length} file${p.touches.length === 1 ? '' : 's'})\n`);
    for (const why of s.skipped) process.stderr.write(`${s.path}: skipped ${why}\n`);
  }
  process.stderr.write(`${n} patch${n === 1 ? '' : 'es'}\n`);
  return EXIT_CODES.ok;
}

/** `ktrial list [TRIAL | SUITE] [--only GLOB]... | --patch PATH...`; returns the exit code. */
export async function listCommand(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { only: { type: 'string', multiple: true }, patch: { type: 'string', multiple: true } } });
  if (positionals.length > 1) throw new UsageError(`list takes at most one trial or suite file, got ${positionals.length} arguments`, 'list');
  if (positionals.length === 0) {
    if (values.only) throw new UsageError('--only needs a trial or a suite file', 'list');
    if (values.patch) return listPatches(values.patch);
    process.stdout.write(`${await listCatalogue()}\n`);
    return EXIT_CODES.ok;
  }
  if (values.patch) {
    process.stdout.write("the patches --patch adds after the trial's own:\n");
    await listPatches(values.patch);
  }
  const listing = await listCases(positionals[0]!, values.only);
  process.stdout.write(listing.lines.map((l) => `${l}\n`).join(''));
  process.stderr.write(`${listing.selected} of ${listing.total} cases${values.only ? ' selected by --only' : ''}\n`);
  return EXIT_CODES.ok;
}
