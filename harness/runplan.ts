// A run's plan: the trial as its file says it, with every command-line override resolved
// once. Every stage reads the plan; the loaded Trial is never edited.
import { availableParallelism } from 'node:os';
import { join, resolve } from 'node:path';
import { ensureWritableDir } from './common/cache.js';
import { badInput, formatWhere, type Where } from './common/errors.js';
import { NETWORK_ACCESS, type NetworkAccess } from './common/network.js';
import type { GivenKernelSpec } from './kernel/given.js';
import { loadTrial, type ConfigSpec, type Trial } from './trial/trial.js';
import { repoPath } from './common/paths.js';
import { eraFor, versionString } from './eras/eras.js';
import { versionOfArgument } from './source/source.js';
import { parseShard, type Shard } from './scenarios/index.js';

/** The command-line options of run, boot and build, as given. */
export interface RunOptions {
  source?: string;
  cc?: string;
  out?: string;
  'kconfig-add'?: string[];
  cmdline?: string;
  cpus?: string;
  'timeout-build'?: string;
  'timeout-boot'?: string;
  'timeout-case'?: string;
  console?: boolean;
  suite?: string[];
  only?: string[];
  repeat?: string;
  shard?: string;
  var?: string[];
  kernel?: string;
  'build-dir'?: string;
  config?: string;
  jobs?: string;
  isolate?: string;
  'max-reboots'?: string;
  network?: string;
  patch?: string[];
  upto?: string;
}

/** What the guest's network reaches, and who said so: --network, the trial, a suite, or the default. */
export interface NetworkChoice {
  access: NetworkAccess;
  by: string;
}

export interface RunPlan {
  trial: Trial;
  /** Where outputs and reports go. */
  outDir: string;
  /** --source: another copy of the trial's source, used in its place. */
  source?: string;
  cc: string;
  /** The patch series applied after the era's compat series: the trial's, then --patch's (absolute paths). */
  patches: { path: string; from: 'trial' | '--patch' }[];
  /** --upto K: only the first K patches of that series are applied (the compat series always is). */
  upto?: number;
  /** The trial's config, with --kconfig-add's options after its own; --config's file as its base. */
  config: ConfigSpec;
  /** --kernel or --build-dir: a kernel built elsewhere, booted as it is (with --config's file, if given). */
  given?: GivenKernelSpec;
  /** More kernel command line: the trial's, then --cmdline's. */
  cmdline: string;
  /** Guest CPUs: --cpus, else the trial's. */
  cpus: number;
  /** The scenario suite files: --suite's, else the trial's. */
  suites: string[];
  /** Suite variables: the trial's, then --var's. */
  vars: Record<string, string>;
  /** Where each variable the trial sets stands in its file (none for --var's), for messages. */
  varsWhere: Record<string, Where>;
  /** Only the cases matching these globs. */
  only?: string[];
  /** Run every suite this many times; a case whose outcome varies is flaky. */
  repeat: number;
  /** --shard I/N: only this shard's cases run (harness/scenarios/shard.ts says which). */
  shard?: Shard;
  /** Seconds; caseS, when set, replaces every suite's own per-case timeout. */
  timeouts: { buildS: number; bootS: number; caseS?: number };
  /** Guests running cases at once (--jobs, else the trial's; auto is the host's cores). */
  jobs: number;
  /** Lost guests the run may replace with fresh boots (--max-reboots, else the trial's). */
  maxReboots: number;
  /** --isolate snapshot: every case starts from the guest as saved after the suite setup. */
  isolate?: 'snapshot';
  /** Echo the guest console to the terminal. */
  echoConsole: boolean;
  /** Set when no trial file was given: which trial stood in, and why. */
  trialChosen?: string;
  /** --network, else the trial's guest.network; unset, the suites decide (runNetwork). */
  network?: NetworkChoice;
  /**
   * The trial file as given and the options that shaped the run, for the re-run command;
   * not --source, --cc or --out: the run adds the exact source and compiler it used.
   */
  rerun: { trialFile: string; options: string[] };
}

/**
 * The plan of a run without a trial file: --source names the tree, and the trial its era
 * names (eras.ts defaultTrial) gives the config and suites; --patch and --suite go on top.
 */
export async function planDefaultRun(options: RunOptions): Promise<RunPlan> {
  if (!options.source) throw badInput('without a trial file, --source names the tree to test', { hint: 'e.g. ktrial run --source ~/linux --patch 0001-fix.patch (or give a trial file)' });
  const version = await versionOfArgument(options.source);
  if (!version) throw badInput(`cannot tell the kernel version of --source ${options.source} without fetching it`, { hint: 'give a tree, a linux-X.Y tarball, REPO@REF or debian:linux-source-X.Y, or a trial file' });
  const era = eraFor(version);
  if (!era?.defaultTrial) throw badInput(`no default trial for kernel ${versionString(version)}${era ? ` (era ${era.name})` : ''}`, { hint: 'write a trial file for it (README: Trial files) and give it to run' });
  const trialFile = repoPath('configs', 'trials', `${era.defaultTrial}.yaml`);
  return planRun(trialFile, options, `no trial file given: the defaults for kernel ${versionString(version)} (era ${era.name}) are configs/trials/${era.defaultTrial}.yaml, its config and suites`);
}

export async function planRun(trialFile: string, options: RunOptions, trialChosen?: string): Promise<RunPlan> {
  const trial = await loadTrial(trialFile);
  const config = { ...trial.config, options: { ...trial.config.options }, optionLines: { ...trial.config.optionLines } };
  for (const add of options['kconfig-add'] ?? []) {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(add);
    if (!m) throw badInput(`--kconfig-add takes CONFIG_X=value, got "${add}"`, { hint: 'e.g. --kconfig-add CONFIG_PROVE_LOCKING=y (n unsets it)' });
    config.options[m[1]!] = m[2]!;
    // No trial line: the option is the command line's now, and messages say so.
    delete config.optionLines[m[1]!];
  }
  const given = options.kernel || options['build-dir'] ? givenSpec(options) : undefined;
  if (options.config && !given) config.baseFile = resolve(options.config);
  const vars = { ...trial.vars };
  const varsWhere = { ...trial.varsWhere };
  for (const v of options.var ?? []) {
    const m = /^([A-Za-z_][A-Za-z0-9_.-]*)=(.*)$/.exec(v);
    if (!m) throw badInput(`--var takes NAME=VALUE, got "${v}"`, { hint: 'e.g. --var proc_file=cgroup (a variable the suites declare under vars)' });
    vars[m[1]!] = m[2]!;
    delete varsWhere[m[1]!];
  }
  const shard = options.shard !== undefined ? parseShard(options.shard) : undefined;
  const outDir = resolve(options.out ?? join('out', shard ? `${trial.name}.shard-${shard.index}-of-${shard.count}` : trial.name));
  await ensureWritableDir(outDir, 'the output directory');
  const repeat = wholeNumber(options.repeat, 'repeat') ?? 1;
  // An empty timeout is no override, as in the re-run line.
  const timeout = (name: 'timeout-build' | 'timeout-boot' | 'timeout-case') => (options[name] ? wholeNumber(options[name], name) : undefined);
  const buildS = timeout('timeout-build') ?? trial.timeouts.buildS;
  const bootS = timeout('timeout-boot') ?? trial.timeouts.bootS;
  const caseS = timeout('timeout-case') ?? trial.timeouts.caseS;
  return {
    trial,
    outDir,
    ...(options.source ? { source: options.source } : {}),
    cc: options.cc || trial.cc,
    patches: [...trial.patches.map((path) => ({ path, from: 'trial' as const })), ...(options.patch ?? []).map((p) => ({ path: resolve(p), from: '--patch' as const }))],
    config,
    ...(options.upto !== undefined ? { upto: count(options.upto, 'upto') } : {}),
    ...(given ? { given } : {}),
    cmdline: [trial.guest.cmdline, options.cmdline].filter(Boolean).join(' '),
    cpus: options.cpus ? wholeNumber(options.cpus, 'cpus', 'CPUs')! : trial.guest.cpus,
    suites: options.suite ? options.suite.map((f) => resolve(f)) : trial.scenarios,
    vars,
    varsWhere,
    ...(options.only ? { only: options.only } : {}),
    repeat,
    ...(shard ? { shard } : {}),
    timeouts: { buildS, bootS, ...(caseS !== undefined ? { caseS } : {}) },
    jobs: jobsCount(options.jobs ?? trial.jobs),
    maxReboots: options['max-reboots'] !== undefined ? count(options['max-reboots'], 'max-reboots') : trial.maxReboots,
    ...(isolationOf(options.isolate) ? { isolate: 'snapshot' as const } : {}),
    echoConsole: !!options.console,
    ...(trialChosen ? { trialChosen } : {}),
    ...(networkChoice(options.network, trial) ?? {}),
    rerun: { trialFile, options: rerunOptions(options) },
  };
}

function networkChoice(flag: string | undefined, trial: Trial): { network: NetworkChoice } | undefined {
  if (flag !== undefined) {
    if (!(NETWORK_ACCESS as readonly string[]).includes(flag)) throw badInput(`--network takes ${NETWORK_ACCESS.join(' or ')}, got "${flag}"`, { hint: 'outbound lets the guest reach beyond itself; confined (the default) keeps it to the SSH port ktrial forwards' });
    return { network: { access: flag as NetworkAccess, by: `--network ${flag}` } };
  }
  const n = trial.guest.network;
  return n ? { network: { access: n.access, by: `the trial (${formatWhere(n.where)})` } } : undefined;
}

/**
 * The network a run's guests get: the plan's choice, else outbound when a suite asks for it,
 * else confined. Never outbound unless someone asked.
 */
export function runNetwork(plan: Pick<RunPlan, 'network'>, suites: readonly { name: string; network?: { access: 'outbound'; where: Where } }[]): NetworkChoice {
  if (plan.network) return plan.network;
  const asks = suites.find((s) => s.network);
  if (asks) return { access: 'outbound', by: `suite ${asks.name} (${formatWhere(asks.network!.where)})` };
  return { access: 'confined', by: 'the default' };
}

/** A kernel built elsewhere; the options that shape a build have nothing to act on. */
function givenSpec(options: RunOptions): GivenKernelSpec {
  if (options.kernel && options['build-dir']) throw badInput('--kernel and --build-dir both name the kernel: give one');
  for (const o of ['source', 'cc', 'kconfig-add', 'timeout-build', 'patch', 'upto'] as const) {
    if (options[o]?.length) throw badInput(`--${o} shapes a kernel build, and --${options.kernel ? 'kernel' : 'build-dir'} skips the build`, { hint: `drop --${o}, or build the kernel with ktrial (without --${options.kernel ? 'kernel' : 'build-dir'})` });
  }
  return {
    ...(options.kernel ? { bzImage: resolve(options.kernel) } : {}),
    ...(options['build-dir'] ? { buildDir: resolve(options['build-dir']) } : {}),
    ...(options.config ? { config: resolve(options.config) } : {}),
  };
}

function wholeNumber(v: string | undefined, name: string, unit = 'seconds'): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw badInput(`--${name} takes a whole number of ${unit}, got "${v}"`);
  return n;
}

function isolationOf(v: string | undefined): boolean {
  if (v === undefined) return false;
  if (v !== 'snapshot') throw badInput(`--isolate takes "snapshot", got "${v}"`, { hint: 'with --isolate snapshot every case starts from the guest as it was right after the suite setup' });
  return true;
}

function jobsCount(v: string | number): number {
  if (v === 'auto') return availableParallelism();
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw badInput(`--jobs takes a whole number of guests or auto, got "${v}"`);
  return n;
}

function count(v: string, name: string): number {
  const n = Number(v);
  if (!/^\d+$/.test(v) || !Number.isInteger(n)) throw badInput(`--${name} takes a whole number (0 or more), got "${v}"`);
  return n;
}

/** The options of a run that shape its result, as command-line words (for the re-run line). */
function rerunOptions(options: RunOptions): string[] {
  const out: string[] = [];
  if (options.kernel) out.push('--kernel', resolve(options.kernel));
  if (options['build-dir']) out.push('--build-dir', resolve(options['build-dir']));
  if (options.config) out.push('--config', resolve(options.config));
  for (const p of options.patch ?? []) out.push('--patch', resolve(p));
  if (options.upto !== undefined) out.push('--upto', options.upto);
  for (const a of options['kconfig-add'] ?? []) out.push('--kconfig-add', a);
  if (options.cmdline) out.push('--cmdline', options.cmdline);
  if (options.cpus) out.push('--cpus', options.cpus);
  for (const f of options.suite ?? []) out.push('--suite', f);
  for (const v of options.var ?? []) out.push('--var', v);
  for (const g of options.only ?? []) out.push('--only', g);
  if (options.repeat) out.push('--repeat', options.repeat);
  if (options.shard) out.push('--shard', options.shard);
  if (options.jobs) out.push('--jobs', options.jobs);
  if (options.isolate) out.push('--isolate', options.isolate);
  if (options['max-reboots'] !== undefined) out.push('--max-reboots', options['max-reboots']);
  if (options.network) out.push('--network', options.network);
  for (const k of ['timeout-build', 'timeout-boot', 'timeout-case'] as const) if (options[k]) out.push(`--${k}`, options[k]);
  return out;
}
