// ktrial lava: a trial as a LAVA job (job.ts), its suites as an in-guest plan (plan.ts), run
// locally with lava-run or read back from a lab's log (ingest.ts) into ktrial's reports.
import { copyFile, mkdir, readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hostFailure } from '../common/errors.js';
import { requireTools } from '../common/hosttools.js';
import { run } from '../common/proc.js';
import type { StageContext } from '../common/context.js';
import { optionsWithImplied, eraNamed } from '../eras/eras.js';
import type { RunResults } from '../report/index.js';
import { compile, selectByOnly, type Suite } from '../scenarios/index.js';
import { appliedPatches, buildImage, finishRun, planSuites, kernelFor, kernelInfo, requirementsUnjudged } from '../trialrun.js';
import { chooseDevices } from '../vm/devices.js';
import type { RunPlan } from '../runplan.js';
import type { KernelArtifacts } from '../kernel/pipeline.js';
import { judgeSuite, lavaDisagreements, parseLavaLog } from './ingest.js';
import { definitionName, deviceDictionary, jobDefinition } from './job.js';
import { runNetwork } from '../runplan.js';
import { writeOwnFile } from '../common/paths.js';
import { lavaCaseId, planScript, planSuite, type SuitePlan } from './plan.js';

export const LAVA_FILES = { job: 'lava-job.yaml', localJob: 'lava-job.local.yaml', device: 'lava-device.yaml', dispatcher: 'lava-dispatcher.yaml', plan: 'ktrial-plan.sh', ramdisk: 'ramdisk.cpio', kernel: 'bzImage', log: 'lava.log', jobId: 'lava-job-id' } as const;

interface Prepared {
  kernel: KernelArtifacts;
  suites: Suite[];
  plans: SuitePlan[];
}

async function prepare(plan: RunPlan, ctx: StageContext): Promise<Prepared> {
  const suites = await planSuites(plan);
  const kernel = await kernelFor(plan, ctx);
  // A kernel whose config is unknown runs every case, as `run` does; the results say the requirements were not judged.
  const kernelConfig = kernel.unjudged ? undefined : optionsWithImplied(kernel.manifest.source.era, kernel.options);
  const caseTimeoutMs = plan.timeouts.caseS !== undefined ? plan.timeouts.caseS * 1000 : undefined;
  // The programs the SSH runner would execute; the plan is written from them, and the log is judged by running them.
  const plans = suites.map((s) => planSuite(compile(s, { ...(kernelConfig ? { kernelConfig } : {}), ...(caseTimeoutMs !== undefined ? { caseTimeoutMs } : {}), ...(plan.only ? { select: selectByOnly(plan.only) } : {}) })));
  return { kernel, suites, plans };
}

/**
 * Write the job, device dictionary, plan and artifacts into plan.outDir; returns the job file.
 * With artifactUrl the job names the lab's copies, and a twin naming the files here
 * (lava-job.local.yaml) is what this host validates and runs: lava-run reaches every URL.
 */
export async function writeLavaJob(plan: RunPlan, p: Prepared, artifactUrl: string | undefined, ctx: StageContext): Promise<string> {
  const out = plan.outDir;
  const image = await buildImage(ctx);
  await mkdir(out, { recursive: true });
  await copyFile(image.initramfs, join(out, LAVA_FILES.ramdisk));
  // A built kernel is in DIR already; one given with --kernel is copied beside the job.
  if (resolve(p.kernel.bzImage) !== resolve(out, LAVA_FILES.kernel)) await copyFile(p.kernel.bzImage, join(out, LAVA_FILES.kernel));
  await writeOwnFile(join(out, LAVA_FILES.plan), planScript(p.plans));
  const caseSeconds = p.plans.flatMap((s) => s.program.cases).reduce((n, c) => n + (c.skip?.cause === 'filtered' ? 0 : c.limitMs / 1000), 0);
  const job = (url: (f: string) => string) => jobDefinition({
    trial: plan.trial.name,
    kernelUrl: url(LAVA_FILES.kernel),
    ramdiskUrl: url(LAVA_FILES.ramdisk),
    planUrl: url(LAVA_FILES.plan),
    cmdline: [...(eraNamed(p.kernel.manifest.source.era)?.bootArgs ?? []), ...(plan.cmdline ? [plan.cmdline] : [])],
    suites: p.suites.map((s) => s.name),
    bootTimeoutS: plan.timeouts.bootS,
    testTimeoutS: caseSeconds + 60 * p.suites.length,
  });
  const dev = chooseDevices(p.kernel.options);
  const local = (f: string) => pathToFileURL(resolve(out, f)).href;
  await writeOwnFile(join(out, LAVA_FILES.job), job(artifactUrl ? (f) => `${artifactUrl.replace(/\/$/, '')}/${f}` : local));
  if (artifactUrl) await writeOwnFile(join(out, LAVA_FILES.localJob), job(local));
  await writeOwnFile(join(out, LAVA_FILES.device), deviceDictionary({ memoryMiB: plan.trial.guest.memoryMiB, cpus: plan.cpus, devices: [...dev.extra, `${dev.nic},netdev=net0`], network: runNetwork(plan, p.suites).access }));
  // lava-run needs the address of the dispatcher only when the host has no default route.
  await writeOwnFile(join(out, LAVA_FILES.dispatcher), 'dispatcher_ip: 127.0.0.1\n');
  return join(out, artifactUrl ? LAVA_FILES.localJob : LAVA_FILES.job);
}

async function lavaRunArgs(out: string): Promise<string[]> {
  const route = await run('ip', ['route', 'show', 'default']);
  return ['--device', join(out, LAVA_FILES.device), ...(route.exitCode === 0 && route.stdout.trim() ? [] : ['--dispatcher', join(out, LAVA_FILES.dispatcher)])];
}

/** lava-run --validate on a written job; a refusal is a host failure with lava-run's words. */
export async function validateJob(out: string, job: string, ctx: StageContext): Promise<void> {
  await requireTools(['lava-run'], 'lava');
  const id = `ktrial-validate-${process.pid}-${Date.now()}`;
  const r = await run('lava-run', ['--validate', '--job-id', id, '--output-dir', join(out, 'lava-validate'), ...(await lavaRunArgs(out)), job], { signal: ctx.signal });
  if (r.exitCode !== 0) throw hostFailure(`lava-run --validate refused ${job} (exit ${r.exitCode})`, { excerpt: r.all.trim().split('\n').slice(-15).join('\n') });
}

/** Run the written job with lava-run; its stdout is the log. Returns the log file and job id. */
async function runJob(out: string, job: string, ctx: StageContext): Promise<{ log: string; jobId: string }> {
  const jobId = `ktrial-${Date.now()}-${process.pid}`;
  const log = join(out, LAVA_FILES.log);
  await writeOwnFile(join(out, LAVA_FILES.jobId), `${jobId}\n`);
  const args = ['--job-id', jobId, '--output-dir', join(out, 'lava-output'), ...(await lavaRunArgs(out)), job];
  const r = await ctx.progress.phase('scenarios (lava-run)', () => run('lava-run', args, { signal: ctx.signal }));
  // lava-run writes its log lines to stderr.
  await writeOwnFile(log, r.all);
  if (r.exitCode !== 0) throw hostFailure(`lava-run failed (exit ${r.exitCode}); its log: ${log}`, { excerpt: r.stderr.trim().split('\n').slice(-15).join('\n') });
  return { log, jobId };
}

/** Verdicts from a LAVA log, judged by the host's runner, as ktrial's reports in plan.outDir. */
export async function ingestLog(plan: RunPlan, p: Prepared, logFile: string, jobId: string | undefined, started: number, ctx: StageContext): Promise<RunResults> {
  const log = parseLavaLog(await readFile(logFile, 'utf8'));
  const results: RunResults = {
    trial: plan.trial.name,
    kernel: { ...kernelInfo(p.kernel, plan), runner: 'lava', lavaLog: logFile, ...(jobId ? { lavaJobId: jobId } : {}) },
    phases: ctx.progress.phases,
    cases: [],
    status: 'ok',
    startedAt: new Date(started).toISOString(),
  };
  const patches = appliedPatches(p.kernel);
  if (patches.length) results.patches = patches;
  for (const s of p.plans) results.cases.push(...(await judgeSuite(s, log.suites.get(s.program.suite), { knownIssues: plan.trial.expectedFailures })));
  if (p.kernel.unjudged) {
    const judged = requirementsUnjudged(results.cases, p.kernel.unjudged);
    results.cases = judged.cases;
    if (judged.note) (results.notes ??= []).push(judged.note);
  }
  const disagree = lavaDisagreements(results.cases, log.results, definitionName, lavaCaseId);
  if (disagree.length) (results.notes ??= []).push(...disagree);
  if (log.jobResult && log.jobResult !== 'pass') (results.notes ??= []).push(`the LAVA job's own result: ${log.jobResult}`);
  return finishRun(plan, results, started);
}

export interface LavaOptions {
  artifactUrl?: string;
  run?: boolean;
  ingest?: string;
}

/** ktrial lava: write (and validate) the job; with run or ingest, also the reports. */
export async function lavaTrial(plan: RunPlan, opts: LavaOptions, ctx: StageContext): Promise<RunResults | undefined> {
  const started = Date.now();
  const p = await prepare(plan, ctx);
  const job = await writeLavaJob(plan, p, opts.artifactUrl, ctx);
  if (opts.ingest) return ingestLog(plan, p, resolve(opts.ingest), undefined, started, ctx);
  await validateJob(plan.outDir, job, ctx);
  if (!opts.run) {
    ctx.progress.info(`LAVA job: ${join(plan.outDir, LAVA_FILES.job)}`);
    return undefined;
  }
  const { log, jobId } = await runJob(plan.outDir, job, ctx);
  return ingestLog(plan, p, log, jobId, started, ctx);
}
