// A whole trial run: trial -> kernel -> image -> VM -> scenarios -> results -> reports.
// Each stage is its own module; this file only chains them, turns a stage's failure into
// the run's status, marks what could not run as "not run" with the reason, and always
// writes the reports and stops the VM.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { StageContext } from './common/context.js';
import { formatWhere, Interrupted, KtrialError } from './common/errors.js';
import { repoPath } from './common/paths.js';
import { ktrialRevision } from './common/revision.js';
import { buildGuestImage, type ExtraProgram } from './image/index.js';
import { traceCrash } from './kernel/crashtrace.js';
import { givenKernel } from './kernel/given.js';
import { buildKernel, exportKernel, type KernelArtifacts } from './kernel/pipeline.js';
import { overallStatus, writeReports, type RunResults } from './report/index.js';
import { buildSelftests } from './image/selftests.js';
import { casesNotRun, expandSuite, inShard, loadSuitesWithVars, runSuiteRepeated, selectByOnly, shardOf, suiteSelftests, unmatchedIssueNotes, type CaseResult, type GuestExec, type GuestSource, type KernelCrash, type NotRunCause, type Suite } from './scenarios/index.js';
import { runNetwork, type RunPlan } from './runplan.js';
import type { NetworkAccess } from './common/network.js';
import { exactSourceArgument } from './source/source.js';
import { eraNamed, optionsWithImplied } from './eras/eras.js';
import { bootGuest, createVm, FATAL_KINDS, GuestPool, guestAccess, WARNING_KINDS, type ConsoleEvent, type GuestAccess, type PoolLease, type Vm, type VmRequest } from './vm/index.js';

/** The scenario agent travels in every guest image. */
export const AGENT_PROGRAM: ExtraProgram = { name: 'ktrial-agent', sources: ['images/agent/agent.c'], installPath: '/usr/bin/ktrial-agent' };

function rerunCommand(plan: RunPlan, cc: string, source: string | undefined): string[] {
  return ['npx', 'ktrial', 'run', plan.rerun.trialFile, ...plan.rerun.options, ...(cc ? ['--cc', cc] : []), ...(source ? ['--source', source] : [])];
}

/** The plan's kernel, built or taken from the cache, and copied into the output directory. */
export async function kernelFor(plan: RunPlan, ctx: StageContext): Promise<KernelArtifacts> {
  if (plan.given) return ctx.progress.phase('kernel', () => givenKernel(plan.given!, plan.outDir, plan.config.fragments));
  const kernel = await buildKernel(plan, ctx);
  await exportKernel(kernel, plan.outDir);
  return kernel;
}

/** Boot a built kernel with the guest image (built or cached first); the caller closes the VM. */
export async function bootKernel(kernel: KernelArtifacts, plan: RunPlan, ctx: StageContext, more: { consoleLog?: string; access?: GuestAccess; network?: NetworkAccess } = {}): Promise<Vm> {
  const { consoleLog } = more;
  const access = more.access ?? (await guestAccess(await buildImage(ctx), plan.outDir));
  return bootGuest(
    access,
    {
      runDir: plan.outDir,
      ...(consoleLog ? { consoleLog } : {}),
      kernel: kernel.bzImage,
      kernelConfig: kernel.options,
      memoryMiB: plan.trial.guest.memoryMiB,
      cpus: plan.cpus,
      cmdlineExtra: [...(eraNamed(kernel.manifest.source.era)?.bootArgs ?? []), ...(plan.cmdline ? [plan.cmdline] : [])],
      bootTimeoutMs: plan.timeouts.bootS * 1000,
      network: more.network ?? runNetwork(plan, []).access,
      ...(plan.echoConsole ? { onConsoleLine: (l: string) => process.stderr.write(`  console| ${l}\n`) } : {}),
    },
    ctx,
  );
}

/**
 * The run's guests as the scenario runner sees them: the pool's guests, each behind its
 * guestExec; a boot that fails after the first is a refusal (the cases left are not run
 * with its reason), not the run's error.
 */
function guestSource(pool: GuestPool, plan: RunPlan, ctx: StageContext): GuestSource {
  const execs = new Map<GuestExec, PoolLease>();
  return {
    jobs: pool.jobs,
    async acquire() {
      try {
        const lease = await pool.acquire();
        if ('refused' in lease) return { refused: lease.refused, cause: 'guest-lost' };
        const known = [...execs].find(([, l]) => l.vm === lease.vm);
        if (known) return { guest: known[0], boot: lease.boot };
        const guest = guestExec(lease.vm, plan.isolate === 'snapshot' ? poolStates(pool, lease, plan.outDir, ctx) : undefined);
        execs.set(guest, lease);
        ctx.progress.info(`vm: boot ${lease.boot} (${pool.boots[lease.boot - 1]!.why}) is up`);
        return { guest, boot: lease.boot };
      } catch (err) {
        if (ctx.signal.aborted) return { refused: 'the run was interrupted', cause: 'interrupted' };
        const message = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        ctx.progress.info(`vm: a fresh guest did not boot: ${message}`);
        return { refused: `a fresh guest did not boot: ${message}`, cause: 'boot-failed' };
      }
    },
    release: (lease, lost) => pool.release(execs.get(lease.guest)!, lost),
  };
}

/** Guests to boot up front: as many as --jobs allows and the largest suite can keep busy. */
function guestsWanted(suites: readonly Suite[], jobs: number, shard: Set<string> | undefined): number {
  const busy = suites.map((s) => (s.alone ? 1 : expandSuite(s).filter((c) => !shard || inShard(shard, c)).length));
  return Math.max(1, Math.min(jobs, Math.max(0, ...busy)));
}

/** Where each crash's report is on the console of the guest it happened in. */
const crashReports = new WeakMap<KernelCrash, () => string[]>();

/** Saving a guest and putting a restored copy in its place (--isolate snapshot). */
export interface GuestStates {
  save(vm: Vm): Promise<void>;
  /** Close this guest and return a fresh one started from its last save. */
  restore(vm: Vm): Promise<Vm>;
}

/**
 * Guest states kept in the output directory, one file per boot; restored guests write
 * their consoles to restored/console-<boot>.<n>.log and join the pool in their
 * predecessor's place.
 */
function poolStates(pool: GuestPool, lease: PoolLease, runDir: string, ctx: StageContext): GuestStates {
  let saved: VmRequest | undefined;
  let restores = 0;
  return {
    async save(vm) {
      saved = await vm.saveState(join(runDir, `guest-${lease.boot}.state`));
      pool.keepFile(saved.restore!.stateFile);
    },
    async restore(vm) {
      await vm.close(0);
      await mkdir(join(runDir, 'restored'), { recursive: true });
      const next = await createVm({ ...saved!, consoleLog: join(runDir, 'restored', `console-${lease.boot}.${++restores}.log`) }, ctx);
      pool.replace(lease, next);
      return next;
    },
  };
}

/**
 * The scenario runner's view of the VM. Warnings (the kernel goes on after them) are kept
 * for the runner, which judges them with the case they happened in.
 */
export function guestExec(first: Vm, states?: GuestStates): GuestExec {
  let vm = first;
  let mark = vm.console.mark();
  const warnings: ConsoleEvent[] = [];
  return {
    ...(states
      ? {
          saveState: () => states.save(vm),
          async restoreState() {
            vm = await states.restore(vm);
            mark = vm.console.mark();
          },
        }
      : {}),
    copy: (hostPath, guestPath, mode) => vm.copy(hostPath, guestPath, mode),
    async exec(command, opts) {
      const r = await vm.run(command, { timeoutMs: opts.timeoutMs });
      // The runner tells a slow command from a lost guest by its own probe; a timed-out
      // command is not a result.
      if (r.timedOut) throw new Error(`no result within ${opts.timeoutMs} ms`);
      // No exit status and no signal: the channel closed under the command (the guest reset
      // or the connection dropped). Not a result either; the runner's probe tells which.
      if (r.exitCode === null && r.signal === undefined) throw new Error('the command ended without an exit status (the SSH connection closed under it)');
      return { exitCode: r.exitCode ?? (r.timedOut ? 124 : 128), stdout: r.stdout, stderr: r.stderr, durationMs: r.durationMs };
    },
    kernelCrash() {
      const problems = vm.console.problemsSince(mark);
      mark = vm.console.mark();
      warnings.push(...problems.filter((p) => WARNING_KINDS.has(p.kind)));
      const first = problems.find((p) => FATAL_KINDS.has(p.kind));
      if (!first) return undefined;
      const crash = { reason: `${first.kind}: ${first.text}`, excerpt: vm.console.excerpt(first.line, 3, 15), consoleLine: first.line + 1 };
      // The trace is read once the suite is over (the report may still be printing), from
      // the console of the guest that crashed, which recovery may have closed by then.
      const console = vm.console;
      crashReports.set(crash, () => console.linesSince(first.line));
      return crash;
    },
    kernelWarnings() {
      // Excerpts are cut when the case is judged, so a report printed over a while is whole.
      return warnings.splice(0).map((w) => ({ kind: w.kind, text: w.text, excerpt: vm.console.excerpt(w.line, 3, 60) }));
    },
  };
}

export const buildImage = (ctx: StageContext) => buildGuestImage({ extraPrograms: [{ ...AGENT_PROGRAM, sources: AGENT_PROGRAM.sources.map((s) => repoPath(s)) }] }, ctx);

/** Cases with requirements that ran on a kernel whose config is unknown: marked, and the run says why. */
/**
 * Cases run on a kernel whose config is unknown: the ones that ran and have requirements are
 * marked as not judged against them (new objects; the runner's results stay as returned), with the
 * note that says so.
 */
export function requirementsUnjudged(cases: readonly CaseResult[], why: string): { cases: CaseResult[]; note?: string } {
  const marks = (c: CaseResult) => c.kind === 'case' && !!c.requires?.length && c.verdict !== 'not-run';
  const n = cases.filter(marks).length;
  return { cases: cases.map((c) => (marks(c) ? { ...c, requirementsUnjudged: true } : c)), ...(n ? { note: `requirements not judged for ${n} case(s), which ran regardless: ${why}` } : {}) };
}

function causeFor(err: unknown): { cause: NotRunCause; cls: NonNullable<RunResults['error']>['class'] } {
  if (err instanceof Interrupted) return { cause: 'interrupted', cls: 'interrupted' };
  if (err instanceof KtrialError) return { cause: err.cls === 'kernel' ? 'boot-failed' : 'setup-failed', cls: err.cls };
  return { cause: 'setup-failed', cls: 'host' };
}

/** The plan's suites, loaded and validated, with the trial's (and --var's) variables. */
export async function planSuites(plan: RunPlan): Promise<Suite[]> {
  return loadSuitesWithVars(plan.suites, plan.vars, (v) => plan.varsWhere[v]);
}

export async function runTrial(plan: RunPlan, ctx: StageContext): Promise<RunResults> {
  const started = Date.now();
  const results: RunResults = { trial: plan.trial.name, kernel: {}, phases: ctx.progress.phases, cases: [], status: 'ok', startedAt: new Date(started).toISOString() };
  const rerun = { command: rerunCommand(plan, plan.cc, plan.source), ktrial: await ktrialRevision() };
  results.rerun = rerun;
  if (plan.trialChosen) results.notes = [plan.trialChosen];
  // Suites are validated before anything is built.
  const suites = await planSuites(plan);
  if (plan.shard) results.shard = shardOf(suites, plan.shard);
  const shard = results.shard ? new Set(results.shard.cases) : undefined;
  /** Suites whose cases are in the results. */
  const reported = new Set<string>();
  let pool: GuestPool | undefined;
  try {
    const kernel = await kernelFor(plan, ctx);
    results.kernel = kernelInfo(kernel, plan);
    const patches = appliedPatches(kernel);
    if (patches.length) results.patches = patches;
    rerun.command = rerunCommand(plan, kernel.manifest.toolchain.cc, (kernel.manifest.source.origin && exactSourceArgument(kernel.manifest.source.origin)) ?? plan.source);
    const selftests = await buildSelftests(suites.flatMap(suiteSelftests), kernel.manifest.kernelRelease, ctx);
    const image = await buildImage(ctx);
    const access = await guestAccess(image, plan.outDir);
    const network = runNetwork(plan, suites);
    if (network.access === 'outbound') ctx.progress.info(`vm: the guests may reach beyond themselves: outbound network, as ${network.by} asks`);
    const guests = new GuestPool({ create: (_boot, consoleLog) => bootKernel(kernel, plan, ctx, { consoleLog, access, network: network.access }) }, plan.outDir, plan.jobs, plan.maxReboots);
    pool = guests;
    results.guests = guests.boots;
    // The first guest boots in its own phase, and its failure is the run's; the other
    // guests --jobs lets a suite use boot beside it (GuestPool.bootSideBySide). Recovery
    // boots happen while the suites run.
    const { vm } = await ctx.progress.phase('boot', () => guests.bootSideBySide(guestsWanted(suites, plan.jobs, shard)));
    results.kernel.accelerator = vm.accel;
    results.kernel.cpus = plan.cpus;
    results.kernel.qemuPid = vm.pid;
    results.confinement = { ...vm.confinement, networkBy: network.by };
    if (vm.kernelVersion) results.kernel.release = vm.kernelVersion;
    const source = guestSource(guests, plan, ctx);
    const { caseS } = plan.timeouts;
    for (const suite of suites) {
      if (shard && !expandSuite(suite).some((c) => inShard(shard, c))) continue;
      const cases = await ctx.progress.phase(`scenarios ${suite.name}`, ({ status }) =>
        runSuiteRepeated(suite, source, plan.repeat, {
          ...(kernel.unjudged ? {} : { kernelConfig: optionsWithImplied(kernel.manifest.source.era, kernel.options) }),
          knownIssues: plan.trial.expectedFailures,
          ...(plan.only ? { select: selectByOnly(plan.only) } : {}),
          ...(shard ? { shard } : {}),
          ...(caseS !== undefined ? { caseTimeoutMs: caseS * 1000 } : {}),
          ...(plan.isolate ? { isolate: plan.isolate } : {}),
          signal: ctx.signal,
          selftests,
          onCase: (c: CaseResult) => status(`last: ${c.name} ${c.verdict}`),
          log: (l: string) => ctx.progress.info(l),
        }),
      );
      // A crashed case gets its decoded trace in a copy of its crash record.
      const traced = await Promise.all(
        cases.map(async (c) => {
          const report = c.crash && crashReports.get(c.crash);
          return report && c.crash ? { ...c, crash: { ...c.crash, ...(await traceCrash(report(), kernel.vmlinux, kernel.manifest.build.tree)) } } : c;
        }),
      );
      const judged = kernel.unjudged ? requirementsUnjudged(traced, kernel.unjudged) : { cases: traced };
      if (judged.note) (results.notes ??= []).push(judged.note);
      results.cases.push(...judged.cases);
      reported.add(suite.name);
    }
    if (guests.eventful) (results.notes ??= []).push(`guests: ${guests.describe()}`);
  } catch (err) {
    const { cause, cls } = causeFor(err);
    const where = err instanceof KtrialError && err.where ? `${formatWhere(err.where)}: ` : '';
    results.error = {
      class: cls,
      message: `${where}${err instanceof Error ? err.message : String(err)}`,
      ...(err instanceof KtrialError && err.hint ? { hint: err.hint } : {}),
      ...(err instanceof KtrialError && err.excerpt ? { excerpt: err.excerpt } : {}),
    };
    for (const s of suites.filter((s) => !reported.has(s.name))) {
      results.cases.push(...casesNotRun(s, cause, results.error.message.split('\n')[0]!, shard));
      reported.add(s.name);
    }
  } finally {
    if (pool) await ctx.progress.phase('shutdown', () => pool!.close());
  }
  // The runner stops quietly on an interrupt; the run as a whole was interrupted.
  if (ctx.signal.aborted && !results.error) results.error = { class: 'interrupted', message: `interrupted by ${ctx.signal.reason instanceof Interrupted ? ctx.signal.reason.signal : 'a signal'}` };
  // The suites left did not run: an interrupt came between suites.
  for (const s of suites.filter((s) => !reported.has(s.name))) results.cases.push(...casesNotRun(s, 'interrupted', results.error?.message ?? 'the run was interrupted', shard));
  // A shard's known issues may name cases of other shards: they are judged against every case.
  return finishRun(plan, results, started, shard ? [...results.cases, ...suites.flatMap(expandSuite)] : results.cases);
}

/** The kernel's patches beyond the compat series, as the results record them. */
export const appliedPatches = (kernel: KernelArtifacts): NonNullable<RunResults['patches']> =>
  kernel.manifest.patches
    .filter((p) => !p.compat)
    // Kernels cached before --patch existed record no `from`: their patches were the trial's.
    .map((p) => ({ file: p.patch, ...(p.subject ? { subject: p.subject } : {}), sha256: p.sha256, from: p.from === '--patch' ? ('--patch' as const) : ('trial' as const) }));

/** What the results say of a built kernel. */
export const kernelInfo = (kernel: KernelArtifacts, plan: RunPlan): RunResults['kernel'] => ({
  release: kernel.manifest.kernelRelease,
  arch: 'x86_64',
  source: kernel.manifest.source.id,
  config: kernel.manifest.config.finalSha256,
  compiler: kernel.manifest.toolchain.ccVersion,
  cached: kernel.cacheHit,
  ...(plan.given ? { given: plan.given.buildDir ? 'build-dir' : 'bzImage', bzImage: kernel.manifest.bzImageSha256, configFrom: kernel.manifest.config.base } : {}),
});

/**
 * A run's last words: notes on known issues that matched none of `issueCases` (the run's
 * cases by default), status, time, the reports.
 */
export async function finishRun(plan: RunPlan, results: RunResults, started: number, issueCases: Parameters<typeof unmatchedIssueNotes>[1] = results.cases): Promise<RunResults> {
  const stale = unmatchedIssueNotes(plan.trial.expectedFailures, issueCases);
  if (stale.length) (results.notes ??= []).push(...stale);
  results.status = overallStatus(results.cases, results.error);
  results.seconds = (Date.now() - started) / 1000;
  await writeReports(plan.outDir, results);
  return results;
}
