// Stage 0: a trial file becomes a validated, resolved Trial. Every path is made absolute
// and checked here, so nothing is built for a trial that names a file that is not there.
import { access } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { badInput, type Where } from '../common/errors.js';
import { parseRequirement } from '../config/kconfig.js';
import { validate } from '../common/schema.js';
import { loadYamlFile, type Located } from '../common/yaml.js';
import { SOURCE_KIND_NAMES, sourceFromTrial, type SourceSpec } from '../source/source.js';
import { trialSchema } from './schema.js';
import type { KnownIssue } from '../scenarios/types.js';
import type { NetworkAccess } from '../common/network.js';

export type { SourceSpec };

export interface ConfigSpec {
  base: string;
  /** A full .config (--config) that replaces the base target: completed by kconfig, then the fragments go on top. */
  baseFile?: string;
  fragments: string[];
  /** Fragments whose options kconfig may drop with only a warning. */
  bestEffort: string[];
  /** Inline options, normalised to .config values ('n' for unset). */
  options: Record<string, string>;
  /** Where each inline option stands, for messages. */
  optionLines: Record<string, number>;
  require: { symbol: string; value: string }[];
}

export interface Trial {
  file: string;
  name: string;
  description: string;
  source: SourceSpec;
  patches: string[];
  config: ConfigSpec;
  cc: string;
  /** network: what the trial file says of it, and where; unset, the suites decide (confined unless one asks for outbound). */
  guest: { memoryMiB: number; cpus: number; cmdline: string; network?: { access: NetworkAccess; where: Where } };
  scenarios: string[];
  /** Suite variables the trial sets (values as strings), in place of the suites' defaults. */
  vars: Record<string, string>;
  /** Where each variable stands in the trial file, for messages. */
  varsWhere: Record<string, Where>;
  expectedFailures: KnownIssue[];
  /** caseS: seconds for every scenario case, in place of the suites' own; unset, the suites decide. */
  timeouts: { buildS: number; bootS: number; caseS?: number };
  /** Guests running cases at once: a number or "auto" (the host's cores). */
  jobs: number | 'auto';
  /** Lost guests a run may replace with fresh ones. */
  maxReboots: number;
}

export const DEFAULT_MAX_REBOOTS = 3;

export const DEFAULT_TIMEOUTS = { buildS: 3600, bootS: 180 };

function optionValue(v: string | number | boolean): string {
  if (v === true) return 'y';
  if (v === false) return 'n';
  return String(v);
}

async function mustExist(doc: Located, path: (string | number)[], abs: string, what: string): Promise<void> {
  try {
    await access(abs);
  } catch {
    throw badInput(`${what} ${abs} does not exist`, { where: doc.where(path), hint: 'fix the path (relative paths are relative to the trial file)' });
  }
}

export async function loadTrial(file: string): Promise<Trial> {
  const abs = resolve(file);
  const doc = await loadYamlFile(abs);
  const raw = validate(doc, trialSchema, 'trial file');
  const dir = dirname(abs);
  const at = (p: string) => resolve(dir, p);

  const kinds = SOURCE_KIND_NAMES.filter((k) => raw.source[k] !== undefined);
  if (kinds.length !== 1) {
    throw badInput(`source must name exactly one of ${SOURCE_KIND_NAMES.join(', ')} (found ${kinds.length ? kinds.join(', ') : 'none'})`, {
      where: doc.where(['source']),
      hint: 'keep one of them; use --source on the command line to point at another copy',
    });
  }
  const s = raw.source;
  const source = sourceFromTrial(kinds[0]!, s, s.name ?? raw.name, dir, (key) => doc.where(['source', key]));
  if (s.sha256 && source.kind !== 'tarball') throw badInput('sha256 pins a tarball; this source has none', { where: doc.where(['source', 'sha256']) });

  const patches = (raw.patches ?? []).map(at);
  for (const [i, p] of patches.entries()) await mustExist(doc, ['patches', i], p, 'patch series');
  const fragmentEntries = (raw.config.fragments ?? []).map((f) => (typeof f === 'string' ? { file: at(f), bestEffort: false } : { file: at(f.file), bestEffort: !!f['best-effort'] }));
  const fragments = fragmentEntries.map((f) => f.file);
  for (const [i, p] of fragments.entries()) await mustExist(doc, ['config', 'fragments', i], p, 'config fragment');
  const scenarios = (raw.scenarios ?? []).map(at);
  for (const [i, p] of scenarios.entries()) await mustExist(doc, ['scenarios', i], p, 'scenario suite');

  const options: Record<string, string> = {};
  const optionLines: Record<string, number> = {};
  for (const [k, v] of Object.entries(raw.config.options ?? {})) {
    options[k] = optionValue(v);
    optionLines[k] = doc.where(['config', 'options', k], true).line ?? 0;
  }
  const require = (raw.config.require ?? []).map(parseRequirement);
  for (const [i, issue] of (raw['expected-failures'] ?? []).entries()) {
    if (issue.warning === undefined) continue;
    try {
      new RegExp(issue.warning);
    } catch (err) {
      throw badInput(`warning is not a regular expression: ${err instanceof Error ? err.message : String(err)}`, { where: doc.where(['expected-failures', i, 'warning']), hint: 'write a JavaScript regular expression matched against the console line, e.g. "possible circular locking"' });
    }
  }
  const vars: Record<string, string> = {};
  const varsWhere: Record<string, Where> = {};
  for (const [k, v] of Object.entries(raw.vars ?? {})) {
    vars[k] = String(v);
    varsWhere[k] = doc.where(['vars', k], true);
  }

  return {
    file: abs,
    name: raw.name,
    description: raw.description ?? '',
    source,
    patches,
    config: { base: raw.config.base, fragments, bestEffort: fragmentEntries.filter((f) => f.bestEffort).map((f) => f.file), options, optionLines, require },
    cc: raw.toolchain?.cc ?? 'gcc',
    guest: {
      memoryMiB: raw.guest?.memory ?? 256,
      cpus: raw.guest?.cpus ?? 1,
      cmdline: raw.guest?.cmdline ?? '',
      ...(raw.guest?.network ? { network: { access: raw.guest.network, where: doc.where(['guest', 'network']) } } : {}),
    },
    scenarios,
    vars,
    varsWhere,
    expectedFailures: raw['expected-failures'] ?? [],
    timeouts: {
      buildS: raw.timeouts?.build ?? DEFAULT_TIMEOUTS.buildS,
      bootS: raw.timeouts?.boot ?? DEFAULT_TIMEOUTS.bootS,
      ...(raw.timeouts?.case !== undefined ? { caseS: raw.timeouts.case } : {}),
    },
    jobs: typeof raw.jobs === 'number' ? raw.jobs : raw.jobs === 'auto' ? 'auto' : 1,
    maxReboots: raw['max-reboots'] ?? DEFAULT_MAX_REBOOTS,
  };
}
