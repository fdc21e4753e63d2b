// ktrial's benchmark (`npm run bench`). Measures, in one run on one machine:
//   1. cold and warm `ktrial run` of the smoke trials, split by phase (from each run's
//      results.json, plus start-up, report and exit times measured around the process);
//   2. boot to SSH-ready under ktrial (createVm) against a bare QEMU + OpenSSH baseline;
//   3. one scenario step on ktrial's reused SSH connection against a fresh `ssh` per step;
//   4. an incremental rebuild after a one-line edit to one patch of a series, against a
//      clean build of the same trial;
//   5. the peak memory of the ktrial process during warm runs;
//   6. starting a guest from a saved state (--isolate snapshot) against a boot to SSH;
//   7. the subject suite on two guests (--jobs 2) against one (--jobs 1);
//   8. recovery after a kernel crash (fresh guest booted and set up) against the first boot.
// It writes test/bench/results/SECTION.json for each section it runs (the other sections'
// files stay as they were) and prints tables. It asserts nothing: targets are
// printed as met or missed, and every ratio is against a baseline from the same run.
import { randomBytes } from 'node:crypto';
import { spawn } from 'node:child_process';
import { Writable } from 'node:stream';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { cpus, totalmem, release, tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { StageContext } from '../../harness/common/context.js';
import { repoPath } from '../../harness/common/paths.js';
import { Progress } from '../../harness/common/progress.js';
import { eraNamed } from '../../harness/eras/eras.js';
import { writeRunOverlay, type GuestImage } from '../../harness/image/index.js';
import { buildKernel, type KernelArtifacts } from '../../harness/kernel/pipeline.js';
import { knownSpec, sourceEnvVar } from '../../harness/source/source.js';
import { loadTrial } from '../../harness/trial/trial.js';
import { planRun } from '../../harness/runplan.js';
import { buildImage } from '../../harness/trialrun.js';
import { accelArgs, chooseAccel, chooseDevices, createVm, generateClientKey, killAllGuests, runCommandInGuest, type AccelVerdict, type DeviceChoice, type Vm, type VmRequest } from '../../harness/vm/index.js';
import { freePort } from '../../harness/vm/qemu.js';
import { capture, killTracked, LoadSampler, loadSnapshot, num, round, sectionDoc, SECTIONS, sleep, stats, table, track, type LoadDuring, type LoadSnapshot, type Section, type Stats } from './lib.js';

// ---------------------------------------------------------------------------------------
// Options

const USAGE = `usage: npm run bench -- [options]

  --cold-runs N         cold runs per smoke trial (empty cache each; default 5)
  --warm-runs N         warm (all cache hits) runs per smoke trial (default 5)
  --boot-runs N         boots per side (ktrial, baseline) per kernel (default 6)
  --steps N             scenario steps per side per kernel (default 30)
  --incremental-runs N  clean build + one-line-edit rebuild pairs (default 5)
  --jobs-runs N         subject suite runs with --jobs 1 and --jobs 2, alternating (pairs; default 3)
  --recovery-runs N     runs of the crash-recovery fixture suite on 6.1 (default 3)
  --quick               small counts (1 cold, 2 warm, 2 boots, 5 steps, 1 of each pair and recovery) to check the script
  --only LIST           sections to run: cold,incremental,warm,boot,step,restore,jobs,recovery (default all)
  --trial NAME          only this smoke trial (smoke-2.6.20 or smoke-debian-6.1); repeatable
  --warm-cache DIR      use this existing ktrial cache for the warm sections instead of
                        keeping the cache of the first cold run
  --max-load X          load average above which warm measurements count as loaded (default: CPUs)
  --load-wait S         wait up to S seconds for the load to fall before warm measurements (default 300)
  --warm-retries N      repeat loaded warm measurements up to N times (default 1)
  --cpu-prof            run warm ktrial processes with node --cpu-prof (profiles kept in the work dir)
  --keep                keep the work directory (caches, logs, consoles)
  --results-dir DIR     where to write the results, one SECTION.json per section run; the
                        files of the sections not run are left as they are (default
                        test/bench/results; test/bench/results-quick with --quick)`;


interface Options {
  coldRuns: number;
  warmRuns: number;
  bootRuns: number;
  steps: number;
  incrementalRuns: number;
  jobsRuns: number;
  recoveryRuns: number;
  quick: boolean;
  only: Set<Section>;
  trials: string[];
  warmCache?: string;
  maxLoad: number;
  loadWaitS: number;
  warmRetries: number;
  cpuProf: boolean;
  keep: boolean;
  resultsDir: string;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      'cold-runs': { type: 'string' },
      'warm-runs': { type: 'string' },
      'boot-runs': { type: 'string' },
      steps: { type: 'string' },
      'incremental-runs': { type: 'string' },
      'jobs-runs': { type: 'string' },
      'recovery-runs': { type: 'string' },
      quick: { type: 'boolean' },
      only: { type: 'string' },
      trial: { type: 'string', multiple: true },
      'warm-cache': { type: 'string' },
      'max-load': { type: 'string' },
      'load-wait': { type: 'string' },
      'warm-retries': { type: 'string' },
      'cpu-prof': { type: 'boolean' },
      keep: { type: 'boolean' },
      'results-dir': { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const int = (v: string | undefined, name: string, dflt: number) => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} takes a whole number, got "${v}"`);
    return n;
  };
  const quick = !!values.quick;
  const only = new Set<Section>();
  for (const s of (values.only ?? SECTIONS.join(',')).split(',').map((x) => x.trim()).filter(Boolean)) {
    if (!(SECTIONS as readonly string[]).includes(s)) throw new Error(`--only: unknown section "${s}" (sections: ${SECTIONS.join(', ')})`);
    only.add(s as Section);
  }
  const trials = values.trial ?? TRIALS.map((t) => t.name);
  for (const t of trials) if (!TRIALS.some((x) => x.name === t)) throw new Error(`--trial: unknown trial "${t}" (${TRIALS.map((x) => x.name).join(', ')})`);
  return {
    coldRuns: int(values['cold-runs'], 'cold-runs', quick ? 1 : 5),
    warmRuns: int(values['warm-runs'], 'warm-runs', quick ? 2 : 5),
    bootRuns: int(values['boot-runs'], 'boot-runs', quick ? 2 : 6),
    steps: int(values.steps, 'steps', quick ? 5 : 30),
    incrementalRuns: int(values['incremental-runs'], 'incremental-runs', quick ? 1 : 5),
    jobsRuns: int(values['jobs-runs'], 'jobs-runs', quick ? 1 : 3),
    recoveryRuns: int(values['recovery-runs'], 'recovery-runs', quick ? 1 : 3),
    quick,
    only,
    trials,
    ...(values['warm-cache'] ? { warmCache: values['warm-cache'] } : {}),
    maxLoad: values['max-load'] ? Number(values['max-load']) : cpus().length,
    loadWaitS: int(values['load-wait'], 'load-wait', quick ? 0 : 300),
    warmRetries: int(values['warm-retries'], 'warm-retries', quick ? 0 : 1),
    cpuProf: !!values['cpu-prof'],
    keep: !!values.keep,
    resultsDir: values['results-dir'] ?? repoPath('test', 'bench', quick ? 'results-quick' : 'results'),
  };
}

// ---------------------------------------------------------------------------------------
// The trials and where their sources come from

interface TrialDef {
  name: string;
  short: string;
  file: string;
}

const TRIALS: TrialDef[] = [
  { name: 'smoke-2.6.20', short: '2.6.20', file: repoPath('configs', 'trials', 'smoke-2.6.20.yaml') },
  { name: 'smoke-debian-6.1', short: '6.1', file: repoPath('configs', 'trials', 'smoke-debian-6.1.yaml') },
];

const SOURCE_2_6_20 = sourceEnvVar('linux-2.6.20');

/** The 2.6.20 tree for empty caches: $KTRIAL_SOURCE_LINUX_2_6_20, else the default cache's record. */
async function source2620(): Promise<string> {
  const env = process.env[SOURCE_2_6_20];
  if (env) return env;
  const saved = process.env.KTRIAL_CACHE;
  delete process.env.KTRIAL_CACHE;
  try {
    const k = await knownSpec('linux-2.6.20');
    if (k?.kind === 'path') return k.path;
    if (k?.kind === 'tarball') return k.tarball;
    if (k?.kind === 'git') return `${k.git}@${k.ref}`;
  } finally {
    if (saved !== undefined) process.env.KTRIAL_CACHE = saved;
  }
  throw new Error(`no 2.6.20 source: set ${SOURCE_2_6_20}=/path/to/linux-2.6.20 (a tree, a tarball or REPO@REF)`);
}

// ---------------------------------------------------------------------------------------
// 1. ktrial runs as a user runs them

/** Columns of the per-phase split, in table order. */
const PHASE_KEYS = ['startup', 'source', 'patch', 'config', 'build', 'image', 'boot', 'scenarios', 'shutdown', 'gaps', 'report', 'exit'] as const;
type PhaseKey = (typeof PHASE_KEYS)[number];

interface RunSample {
  trial: string;
  kind: 'cold' | 'warm' | 'prime' | 'clean' | 'incremental' | 'jobs-1' | 'jobs-2' | 'recovery';
  ok: boolean;
  exitCode: number | null;
  error?: string;
  /** Spawn to exit of the ktrial process (s). */
  wallS: number;
  /** Seconds per phase. startup: spawn to the run's start; gaps: time inside the run outside
   * every recorded phase; report: writing the reports; exit: last report to process exit. */
  phases: Partial<Record<PhaseKey, number>>;
  /** Wall time outside boot and scenarios (s). */
  outsideBootScenariosS?: number;
  /** source + patch + config + build (s). */
  kernelS?: number;
  kernelCached?: boolean;
  imageCached?: boolean;
  /** The accelerator the run's guests used, as ktrial chose it (results.json's kernel.accelerator). */
  accelerator?: string;
  /** Median durationMs of the scenario steps in results.json. */
  stepMedianMs?: number;
  /** The seconds of every case in results.json (setups and cleanups that are listed included). */
  casesS?: number;
  /** Each guest's boot to SSH (results.json's guests[].bootMs; null for a failed boot). */
  guestBootMs?: (number | null)[];
  /** Peak resident memory of the ktrial process (kB). */
  vmHwmKiB?: number;
  load: LoadDuring;
  log: string;
  /** Progress lines with the ms since spawn they arrived at (first warm run of each trial). */
  timeline?: string[];
}

interface ResultsJson {
  startedAt: string;
  seconds: number;
  kernel?: { cached?: boolean; accelerator?: string };
  phases: { phase: string; status: string; seconds: number }[];
  cases: { seconds: number; steps?: { durationMs?: number }[] }[];
  guests?: { bootMs?: number }[];
}

const HWM_HOOK = pathToFileURL(join(import.meta.dirname ?? new URL('.', import.meta.url).pathname, 'hwm.js')).href;

let currentKtrial: import('node:child_process').ChildProcess | undefined;

/** args: more `ktrial run` arguments; okCodes: the exit codes of a run that ran every phase (default 0 and 1). */
async function ktrialRun(o: { trial: string; name: string; kind: RunSample['kind']; cache: string; outDir: string; log: string; cpuProfDir?: string; timeline?: boolean; source: string; args?: string[]; okCodes?: number[] }): Promise<RunSample> {
  const hwmFile = `${o.log}.hwm.json`;
  const env = { ...process.env, KTRIAL_CACHE: o.cache, [SOURCE_2_6_20]: o.source, KTRIAL_BENCH_HWM: hwmFile };
  const nodeArgs = ['--import', HWM_HOOK, ...(o.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${o.cpuProfDir}`] : [])];
  const args = [...nodeArgs, repoPath('bin', 'ktrial.js'), 'run', o.trial, ...(o.args ?? []), '--out', o.outDir];
  const sampler = new LoadSampler().start();
  const lines: string[] = [];
  const t0 = Date.now();
  const p0 = performance.now();
  const code = await new Promise<number | null>((resolve) => {
    const c = track(spawn(process.execPath, args, { cwd: repoPath(), env, stdio: ['ignore', 'pipe', 'pipe'] }));
    currentKtrial = c;
    let partial = '';
    const onData = (d: Buffer) => {
      const at = Math.round(performance.now() - p0);
      const parts = (partial + d.toString('utf8')).split('\n');
      partial = parts.pop() ?? '';
      for (const l of parts) lines.push(`+${String(at).padStart(7)} ms ${l}`);
    };
    c.stdout!.on('data', onData);
    c.stderr!.on('data', onData);
    c.on('error', () => resolve(127));
    c.on('exit', (code) => resolve(code));
  });
  const tExit = t0 + (performance.now() - p0);
  currentKtrial = undefined;
  const load = sampler.stop();
  await writeFile(o.log, `${lines.join('\n')}\n`);
  const sample: RunSample = { trial: o.name, kind: o.kind, ok: false, exitCode: code, wallS: round((tExit - t0) / 1000), phases: {}, load, log: o.log };
  let results: ResultsJson;
  try {
    results = JSON.parse(await readFile(join(o.outDir, 'results.json'), 'utf8')) as ResultsJson;
  } catch {
    sample.error = `no results.json (exit ${code}); last lines:\n${lines.slice(-8).join('\n')}`;
    return sample;
  }
  // 0: all as expected; 1: some case not as expected. Both ran every phase.
  sample.ok = code !== null && (o.okCodes ?? [0, 1]).includes(code);
  if (!sample.ok) sample.error = `exit ${code}; last lines:\n${lines.slice(-8).join('\n')}`;
  const sum = (pred: (p: string) => boolean) => results.phases.filter((p) => pred(p.phase)).reduce((s, p) => s + p.seconds, 0);
  const started = Date.parse(results.startedAt);
  const runEnd = started + results.seconds * 1000;
  let lastReport = runEnd;
  for (const f of ['results.json', 'results.tap', 'junit.xml', 'summary.txt']) {
    const st = await stat(join(o.outDir, f)).catch(() => undefined);
    if (st) lastReport = Math.max(lastReport, st.mtimeMs);
  }
  const inRun = results.phases.reduce((s, p) => s + p.seconds, 0);
  const ph: Partial<Record<PhaseKey, number>> = {
    startup: (started - t0) / 1000,
    source: sum((p) => p === 'source'),
    patch: sum((p) => p === 'patch'),
    config: sum((p) => p === 'config'),
    build: sum((p) => p === 'build'),
    image: sum((p) => p === 'guest image'),
    boot: sum((p) => p === 'boot'),
    scenarios: sum((p) => p.startsWith('scenarios')),
    shutdown: sum((p) => p === 'shutdown'),
    gaps: results.seconds - inRun,
    report: (lastReport - runEnd) / 1000,
    exit: (tExit - lastReport) / 1000,
  };
  for (const k of PHASE_KEYS) if (ph[k] !== undefined) ph[k] = round(ph[k]!);
  sample.phases = ph;
  sample.outsideBootScenariosS = round(sample.wallS - (ph.boot ?? 0) - (ph.scenarios ?? 0));
  sample.kernelS = round((ph.source ?? 0) + (ph.patch ?? 0) + (ph.config ?? 0) + (ph.build ?? 0));
  sample.kernelCached = results.kernel?.cached === true;
  if (results.kernel?.accelerator) sample.accelerator = results.kernel.accelerator;
  sample.imageCached = results.phases.some((p) => p.phase === 'guest image' && p.status === 'cached');
  const stepMs = results.cases.flatMap((c) => (c.steps ?? []).map((s) => s.durationMs)).filter((x): x is number => typeof x === 'number');
  const sm = stats(stepMs);
  if (sm) sample.stepMedianMs = sm.median;
  sample.casesS = round(results.cases.reduce((s, c) => s + c.seconds, 0));
  if (results.guests) sample.guestBootMs = results.guests.map((g) => g.bootMs ?? null);
  try {
    const h = JSON.parse(await readFile(hwmFile, 'utf8')) as { vmHwmKiB: number | null };
    if (h.vmHwmKiB) sample.vmHwmKiB = h.vmHwmKiB;
  } catch {
    // the hook did not run (the process was killed)
  }
  if (o.timeline) sample.timeline = lines.filter((l) => !/\] \S+ \d+\/\d+ /.test(l));
  return sample;
}

function logSample(s: RunSample): void {
  if (!s.ok) {
    say(`  ${s.kind} ${s.trial}: FAILED after ${s.wallS.toFixed(1)} s: ${s.error ?? ''}`);
    return;
  }
  const p = s.phases;
  say(
    `  ${s.kind} ${s.trial}: ${s.wallS.toFixed(1)} s (source ${num(p.source)}, patch ${num(p.patch)}, config ${num(p.config)}, build ${num(p.build)}, image ${num(p.image)}, boot ${num(p.boot)}, scenarios ${num(p.scenarios)}; outside boot+scenarios ${num(s.outsideBootScenariosS)}; ` +
      `kernel ${s.kernelCached ? 'cached' : 'built'}, image ${s.imageCached ? 'cached' : 'built'}; peak RSS ${s.vmHwmKiB ? `${(s.vmHwmKiB / 1024).toFixed(0)} MiB` : '?'}; load1 ${num(s.load.load1Mean)})`,
  );
}

/** A run meant to find everything cached: one that rebuilt the kernel or image is not counted. */
function allHits(s: RunSample): RunSample {
  if (s.ok && !(s.kernelCached && s.imageCached)) {
    s.ok = false;
    s.error = 'not all cache hits (kernel or image was rebuilt), not a warm run';
    say(`  ${s.error}`);
  }
  return s;
}

// ---------------------------------------------------------------------------------------
// 7. The subject suite on two guests against one; 8. recovery after a crash against a boot

const SUBJECT = { name: 'ns-container-2.6.20', file: repoPath('configs', 'trials', 'ns-container-2.6.20.yaml') };
const RECOVER_SUITE = repoPath('test', 'fixtures', 'scenarios', 'recover-crash.yaml');

interface JobsPair {
  jobs1: RunSample;
  jobs2: RunSample;
}

interface RecoveryRun {
  run: RunSample;
  /** The scenarios phase less every case's seconds: from the crashed case's end until the fresh
   * guest had booted and run the suite setup (plus the first guest's setup, which took ms). */
  recoveryS: number | null;
  /** Boot 1 and boot 2 to SSH (s). */
  firstBootS: number | null;
  secondBootS: number | null;
  ratio: number | null;
}

function recoveryOf(run: RunSample): RecoveryRun {
  const boots = run.guestBootMs ?? [];
  if (run.ok && boots.length !== 2) {
    run.ok = false;
    run.error = `${boots.length} guest(s) booted, not 2: the crash was not recovered once`;
  }
  const firstBootS = run.ok && boots[0] ? round(boots[0] / 1000) : null;
  const secondBootS = run.ok && boots[1] ? round(boots[1] / 1000) : null;
  const recoveryS = run.ok && run.phases.scenarios !== undefined && run.casesS !== undefined ? round(run.phases.scenarios - run.casesS) : null;
  return { run, recoveryS, firstBootS, secondBootS, ratio: recoveryS !== null && firstBootS ? round(recoveryS / firstBootS, 3) : null };
}

/** median(a) / median(b), or null without both. */
const ratioOfMedians = (a: Stats | null, b: Stats | null) => (a && b ? round(a.median / b.median, 3) : null);

// ---------------------------------------------------------------------------------------
// Guests for the boot and step measurements: the warm cache's kernel and base image

interface Guest {
  trial: string;
  kernel: KernelArtifacts;
  image: GuestImage;
  bootArgs: string[];
  memoryMiB: number;
  devices: DeviceChoice;
  /** What ktrial's accelerator probe chose for this kernel in this cache: both boot sides use it. */
  accel: AccelVerdict;
}

const silentCtx = (lines: string[]): StageContext => ({ progress: new Progress((l) => lines.push(l), 3_600_000), signal: new AbortController().signal });

async function withCache<T>(cache: string, source: string, fn: () => Promise<T>): Promise<T> {
  const saved = { c: process.env.KTRIAL_CACHE, s: process.env[SOURCE_2_6_20] };
  process.env.KTRIAL_CACHE = cache;
  process.env[SOURCE_2_6_20] = source;
  try {
    return await fn();
  } finally {
    if (saved.c === undefined) delete process.env.KTRIAL_CACHE;
    else process.env.KTRIAL_CACHE = saved.c;
    if (saved.s === undefined) delete process.env[SOURCE_2_6_20];
    else process.env[SOURCE_2_6_20] = saved.s;
  }
}

const QEMU = 'qemu-system-x86_64';

async function prepareGuest(t: TrialDef, cache: string, source: string, work: string): Promise<Guest> {
  return withCache(cache, source, async () => {
    const lines: string[] = [];
    const ctx = silentCtx(lines);
    const plan = await planRun(t.file, { out: join(work, `guest-${t.short}`) });
    const { trial } = plan;
    const kernel = await buildKernel(plan, ctx);
    if (!kernel.cacheHit) say(`  note: the ${t.name} kernel was not in the warm cache and was built now`);
    const image = await buildImage(ctx);
    const bootArgs = [...(eraNamed(kernel.manifest.source.era)?.bootArgs ?? []), ...(trial.guest.cmdline ? trial.guest.cmdline.split(/\s+/) : [])];
    const accel = await chooseAccel(QEMU, kernel.bzImage, ctx);
    return { trial: t.name, kernel, image, bootArgs, memoryMiB: trial.guest.memoryMiB, devices: chooseDevices(kernel.options), accel };
  });
}

// ---------------------------------------------------------------------------------------
// 2. Boot to SSH-ready: ktrial (createVm) against a bare QEMU polled with OpenSSH

interface BootSample {
  side: 'ktrial' | 'baseline';
  ok: boolean;
  ms: number;
  attempts: number;
  error?: string;
  /** ktrial only: the accelerator createVm chose (its probe's verdict). */
  accel?: string;
  /** ktrial only: guest milestones after QEMU start (ms), from its console watch. */
  bannerMs?: number;
  userlandMs?: number;
  sshdMs?: number;
  sshReadyMs?: number;
  /** ktrial only: when the console reported the guest's network link up (ms after QEMU start). */
  linkUpMs?: number;
  /** Each SSH attempt: start (ms after QEMU start), duration, outcome. */
  attemptLog?: { atMs: number; ms: number; outcome: string }[];
}

const BOOT_TIMEOUT_MS = 120_000;
const BASELINE_POLL_MS = 100;

/** What ktrial's own runs ask of createVm for this guest. */
function vmRequest(g: Guest, initramfs: string, clientPrivateKey: string, dir: string): VmRequest {
  return {
    kernel: g.kernel.bzImage,
    initramfs,
    hostKeyPublic: g.image.hostKeyPublic,
    clientPrivateKey,
    kernelConfig: g.kernel.options,
    memoryMiB: g.memoryMiB,
    cmdlineExtra: g.bootArgs,
    bootTimeoutMs: BOOT_TIMEOUT_MS,
    consoleLog: join(dir, 'console.log'),
  };
}

async function ktrialBoot(g: Guest, dir: string, cache: string, source: string): Promise<BootSample> {
  await mkdir(dir, { recursive: true });
  const key = generateClientKey('ktrial-bench');
  const initramfs = await writeRunOverlay(g.image, key.publicKey, dir);
  const lines: string[] = [];
  return withCache(cache, source, async () => {
    let vm: Vm | undefined;
    const t0 = performance.now();
    try {
      vm = await createVm(
        vmRequest(g, initramfs, key.privateKey, dir),
        silentCtx(lines),
      );
      const ms = performance.now() - t0;
      const t = vm.timings;
      const linkUp = vm.console.events.find((e) => e.kind === 'link-up')?.atMs;
      return {
        side: 'ktrial',
        ok: true,
        ms: round(ms, 1),
        attempts: t.sshAttempts,
        accel: vm.accel,
        ...(t.bannerMs !== undefined ? { bannerMs: t.bannerMs } : {}),
        ...(t.userlandMs !== undefined ? { userlandMs: t.userlandMs } : {}),
        ...(t.sshdMs !== undefined ? { sshdMs: t.sshdMs } : {}),
        sshReadyMs: t.sshReadyMs,
        ...(linkUp !== undefined ? { linkUpMs: linkUp } : {}),
        attemptLog: t.attemptLog,
      };
    } catch (err) {
      return { side: 'ktrial', ok: false, ms: round(performance.now() - t0, 1), attempts: 0, error: (err as Error).message.split('\n')[0] ?? '' };
    } finally {
      await writeFile(join(dir, 'ktrial.log'), `${lines.join('\n')}\n`);
      if (vm) await vm.close();
    }
  });
}

function sshArgs(keyFile: string, knownHosts: string, port: number, command: string[]): string[] {
  return [
    '-F', '/dev/null',
    '-i', keyFile,
    '-o', `UserKnownHostsFile=${knownHosts}`,
    '-o', 'GlobalKnownHostsFile=/dev/null',
    '-o', 'StrictHostKeyChecking=yes',
    '-o', 'BatchMode=yes',
    '-o', 'IdentitiesOnly=yes',
    '-o', 'ConnectTimeout=1',
    '-o', 'LogLevel=ERROR',
    '-p', String(port),
    'root@127.0.0.1',
    ...command,
  ];
}

async function sshFiles(dir: string, privateKey: string, hostKeyPublic: string, port: number): Promise<{ keyFile: string; knownHosts: string }> {
  const keyFile = join(dir, 'client_key');
  const knownHosts = join(dir, 'known_hosts');
  await writeFile(keyFile, privateKey.endsWith('\n') ? privateKey : `${privateKey}\n`, { mode: 0o600 });
  await writeFile(knownHosts, `[127.0.0.1]:${port} ${hostKeyPublic}\n`);
  return { keyFile, knownHosts };
}

/** The minimal command line the baseline boots with (recorded in results.json). */
function baselineQemuArgs(g: Guest, initramfs: string, consoleFile: string, port: number, token: string): string[] {
  return [
    ...accelArgs(g.accel.accel),
    '-m', String(g.memoryMiB),
    '-display', 'none',
    '-serial', `file:${consoleFile}`,
    '-no-reboot',
    '-kernel', g.kernel.bzImage,
    '-initrd', initramfs,
    '-append', ['console=ttyS0', 'panic=-1', ...g.bootArgs, `ktrial.token=${token}`].join(' '),
    '-netdev', `user,id=n0,hostfwd=tcp:127.0.0.1:${port}-:22`,
    '-device', `${g.devices.nic},netdev=n0`,
    ...g.devices.extra.flatMap((d) => ['-device', d]),
  ];
}

let baselineCommand: string[] | undefined;

async function baselineBoot(g: Guest, dir: string): Promise<BootSample> {
  await mkdir(dir, { recursive: true });
  const key = generateClientKey('ktrial-bench');
  const initramfs = await writeRunOverlay(g.image, key.publicKey, dir);
  const port = await freePort();
  const { keyFile, knownHosts } = await sshFiles(dir, key.privateKey, g.image.hostKeyPublic, port);
  const args = baselineQemuArgs(g, initramfs, join(dir, 'console.log'), port, randomBytes(16).toString('hex'));
  baselineCommand ??= [QEMU, ...args];
  // setpriv: QEMU dies with the benchmark even if the benchmark is killed outright.
  const t0 = performance.now();
  const q = track(spawn('setpriv', ['--pdeathsig', 'KILL', QEMU, ...args], { stdio: ['ignore', 'ignore', 'pipe'] }));
  let qerr = '';
  q.stderr!.on('data', (d: Buffer) => (qerr += d.toString('utf8')));
  let exited = false;
  const gone = new Promise<void>((r) => q.once('exit', () => ((exited = true), r())));
  let attempts = 0;
  const attemptLog: NonNullable<BootSample['attemptLog']> = [];
  const end = (ok: boolean, error?: string): BootSample => ({ side: 'baseline', ok, ms: round(performance.now() - t0, 1), attempts, attemptLog, ...(error ? { error } : {}) });
  try {
    for (;;) {
      if (exited) return end(false, `QEMU exited: ${qerr.trim().split('\n').pop() ?? ''}`);
      if (performance.now() - t0 > BOOT_TIMEOUT_MS) return end(false, 'no SSH within the boot timeout');
      attempts++;
      const at = performance.now() - t0;
      const r = await capture('ssh', sshArgs(keyFile, knownHosts, port, ['true']), { timeoutMs: 10_000 });
      attemptLog.push({ atMs: Math.round(at), ms: Math.round(r.ms), outcome: r.code === 0 ? 'connected' : `exit ${r.code}: ${r.stderr.trim().split('\n').pop() ?? ''}` });
      if (r.code === 0) return end(true);
      if (/host key|REMOTE HOST IDENTIFICATION/i.test(r.stderr)) return end(false, `host key refused: ${r.stderr.trim()}`);
      await sleep(BASELINE_POLL_MS);
    }
  } finally {
    if (!exited) q.kill('SIGKILL');
    await gone;
  }
}

interface BootResult {
  trial: string;
  samples: BootSample[];
  ktrial: Stats | null;
  baseline: Stats | null;
  /** median(ktrial) / median(baseline). */
  ratio: number | null;
}

async function bootSection(g: Guest, n: number, work: string, cache: string, source: string): Promise<BootResult> {
  const samples: BootSample[] = [];
  for (let i = 0; i < n && !stopping; i++) {
    for (const side of ['ktrial', 'baseline'] as const) {
      const dir = join(work, `boot-${g.trial}-${side}-${i}-${Date.now()}`);
      const s = side === 'ktrial' ? await ktrialBoot(g, dir, cache, source) : await baselineBoot(g, dir);
      samples.push(s);
      say(`  boot ${g.trial} ${side} #${i + 1}: ${s.ok ? `${(s.ms / 1000).toFixed(2)} s, ${s.attempts} SSH attempts${s.sshdMs !== undefined ? ` (sshd started at ${(s.sshdMs / 1000).toFixed(2)} s)` : ''}` : `FAILED: ${s.error}`}`);
    }
  }
  const k = stats(samples.filter((s) => s.ok && s.side === 'ktrial').map((s) => s.ms));
  const b = stats(samples.filter((s) => s.ok && s.side === 'baseline').map((s) => s.ms));
  return { trial: g.trial, samples, ktrial: k, baseline: b, ratio: k && b ? round(k.median / b.median) : null };
}

// ---------------------------------------------------------------------------------------
// 6. A guest started from a saved state (what --isolate snapshot does before every case)
//    against a boot to SSH of the same kernel and image, alternating

interface RestoreResult {
  trial: string;
  /** Boot to SSH ready (createVm), ms. */
  boot: Stats | null;
  /** The previous guest closed, then a fresh QEMU loads the saved state and answers SSH, ms. */
  restore: Stats | null;
  /** median(restore) / median(boot). */
  ratio: number | null;
  stateMiB: number;
  failures: number;
}

async function restoreSection(g: Guest, n: number, work: string, cache: string, source: string): Promise<RestoreResult> {
  const dir = join(work, `restore-${g.trial}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const key = generateClientKey('ktrial-bench');
  const initramfs = await writeRunOverlay(g.image, key.publicKey, dir);
  const lines: string[] = [];
  const boots: number[] = [];
  const restores: number[] = [];
  let failures = 0;
  let stateMiB = 0;
  await withCache(cache, source, async () => {
    const ctx = silentCtx(lines);
    const first = await createVm(vmRequest(g, initramfs, key.privateKey, dir), ctx);
    const saved = await first.saveState(join(dir, 'guest.state'));
    stateMiB = round((await stat(join(dir, 'guest.state'))).size / 1024 ** 2, 1);
    let current: Vm = first;
    try {
      for (let i = 0; i < n && !stopping; i++) {
        const t0 = performance.now();
        await current.close(0);
        try {
          current = await createVm({ ...saved, consoleLog: join(dir, `console-restore-${i}.log`) }, ctx);
          restores.push(performance.now() - t0);
        } catch (err) {
          failures++;
          say(`  restore ${g.trial} #${i + 1}: FAILED: ${(err as Error).message.split('\n')[0]}`);
          continue;
        }
        const b = await ktrialBoot(g, join(dir, `boot-${i}`), cache, source);
        if (b.ok) boots.push(b.ms);
        else failures++;
        say(`  restore ${g.trial} #${i + 1}: ${(restores.at(-1)! / 1000).toFixed(2)} s; boot ${b.ok ? `${(b.ms / 1000).toFixed(2)} s` : `FAILED: ${b.error}`}`);
      }
    } finally {
      await current.close(0);
      await writeFile(join(dir, 'ktrial.log'), `${lines.join('\n')}\n`);
    }
  });
  const bs = stats(boots);
  const rs = stats(restores.map((x) => round(x, 1)));
  return { trial: g.trial, boot: bs, restore: rs, ratio: bs && rs ? round(rs.median / bs.median, 3) : null, stateMiB, failures };
}

// ---------------------------------------------------------------------------------------
// 3. One scenario step: vm.run on the reused connection against a fresh ssh per step

const STEP_COMMAND = '/usr/bin/ktrial-agent gethostname';

interface StepResult {
  trial: string;
  command: string;
  /** vm.run (what scenario steps use), ms. */
  reused: Stats | null;
  /** The same connection without vm.run's process-group wrapper (ssh2 exec), ms. */
  reusedRawExec: Stats | null;
  /** A new `ssh` process per step, ms. */
  freshSsh: Stats | null;
  failures: number;
  error?: string;
  samples: { reused: number[]; reusedRawExec: number[]; freshSsh: number[] };
}

async function stepSection(g: Guest, n: number, work: string, cache: string, source: string): Promise<StepResult> {
  const dir = join(work, `steps-${g.trial}-${Date.now()}`);
  await mkdir(dir, { recursive: true });
  const key = generateClientKey('ktrial-bench');
  const initramfs = await writeRunOverlay(g.image, key.publicKey, dir);
  const lines: string[] = [];
  const res: StepResult = { trial: g.trial, command: STEP_COMMAND, reused: null, reusedRawExec: null, freshSsh: null, failures: 0, samples: { reused: [], reusedRawExec: [], freshSsh: [] } };
  let vm: Vm | undefined;
  try {
    vm = await withCache(cache, source, () =>
      createVm(
        vmRequest(g, initramfs, key.privateKey, dir),
        silentCtx(lines),
      ),
    );
    const { keyFile, knownHosts } = await sshFiles(dir, key.privateKey, g.image.hostKeyPublic, vm.sshPort);
    const fresh = () => capture('ssh', sshArgs(keyFile, knownHosts, vm!.sshPort, [STEP_COMMAND]), { timeoutMs: 30_000 });
    // One of each first, so neither side pays a first-time cost inside the measurement.
    await vm.run(STEP_COMMAND, { timeoutMs: 30_000 });
    // A raw ssh2 exec channel on the same connection, its output dropped.
    const discard = () => new Writable({ write: (_chunk, _enc, done) => done() });
    const rawExec = () => runCommandInGuest(vm!, [STEP_COMMAND], { stdout: discard(), stderr: discard(), stdin: null });
    await rawExec();
    await fresh();
    for (let i = 0; i < n && !stopping; i++) {
      let t = performance.now();
      const a = await vm.run(STEP_COMMAND, { timeoutMs: 30_000 });
      const aMs = performance.now() - t;
      if (a.exitCode === 0) res.samples.reused.push(round(aMs, 2));
      else res.failures++;
      t = performance.now();
      const r = await rawExec();
      const rMs = performance.now() - t;
      if (r === 0) res.samples.reusedRawExec.push(round(rMs, 2));
      else res.failures++;
      const b = await fresh();
      if (b.code === 0) res.samples.freshSsh.push(round(b.ms, 2));
      else {
        res.failures++;
        say(`  step via ssh failed (exit ${b.code}): ${b.stderr.trim().split('\n').pop() ?? ''}`);
      }
    }
  } catch (err) {
    res.failures++;
    res.error = (err as Error).message.split('\n')[0] ?? String(err);
    say(`  steps ${g.trial}: FAILED: ${res.error} (console: ${join(dir, 'console.log')})`);
  } finally {
    await writeFile(join(dir, 'ktrial.log'), `${lines.join('\n')}\n`);
    if (vm) await vm.close();
  }
  res.reused = stats(res.samples.reused);
  res.reusedRawExec = stats(res.samples.reusedRawExec);
  res.freshSsh = stats(res.samples.freshSsh);
  say(`  steps ${g.trial}: vm.run median ${num(res.reused?.median, 1)} ms, raw exec ${num(res.reusedRawExec?.median, 1)} ms, fresh ssh ${num(res.freshSsh?.median, 1)} ms (n=${res.reused?.n ?? 0}/${res.freshSsh?.n ?? 0}, failures ${res.failures})`);
  return res;
}

// ---------------------------------------------------------------------------------------
// 4. Incremental rebuild after a one-line edit to one patch of a temporary series

/** Files every 2.6.20 guest kernel compiles; each small patch appends one definition to one. */
const INCR_FILES = [
  { patch: '01-bench-panic.patch', file: 'kernel/panic.c', sym: 'ktrial_bench_panic' },
  { patch: '02-bench-printk.patch', file: 'kernel/printk.c', sym: 'ktrial_bench_printk' },
  { patch: '03-bench-string.patch', file: 'lib/string.c', sym: 'ktrial_bench_string' },
];
/** The patch that is edited between the clean build and the rebuild. */
const INCR_EDITED = '02-bench-printk.patch';

async function makePatch(tree: string, file: string, sym: string, value: string, dir: string): Promise<string> {
  const orig = await readFile(join(tree, file), 'utf8');
  const a = join(dir, 'a.tmp');
  const b = join(dir, 'b.tmp');
  await writeFile(a, orig);
  await writeFile(b, `${orig}${orig.endsWith('\n') ? '' : '\n'}static const char ${sym}[] __attribute__((used)) = "${value}";\n`);
  const r = await capture('diff', ['-u', '--label', `a/${file}`, '--label', `b/${file}`, a, b]);
  await rm(a);
  await rm(b);
  if (r.code !== 1) throw new Error(`diff -u for ${file} failed (exit ${r.code}): ${r.stderr}`);
  return r.stdout;
}

async function writeIncrementalTrial(tree: string, dir: string): Promise<{ trial: string; edit: () => Promise<{ before: string; after: string }> }> {
  const series = join(dir, 'series-bench');
  await mkdir(series, { recursive: true });
  for (const p of INCR_FILES) await writeFile(join(series, p.patch), await makePatch(tree, p.file, p.sym, 'one', dir));
  await writeFile(join(series, 'series'), `${INCR_FILES.map((p) => p.patch).join('\n')}\n`);
  const smoke = TRIALS[0]!;
  const smokeTrial = await loadTrial(smoke.file);
  const trialFile = join(dir, 'bench-incremental-2.6.20.yaml');
  const yamlList = (xs: string[]) => xs.map((x) => `    - ${JSON.stringify(x)}`).join('\n');
  await writeFile(
    trialFile,
    [
      '# Temporary trial of the benchmark: the 2.6.20 smoke trial plus a three-patch series.',
      'name: bench-incremental-2.6.20',
      'source:',
      '  name: linux-2.6.20',
      `  path: ${JSON.stringify(tree)}`,
      'patches:',
      `  - ${JSON.stringify(series)}`,
      'config:',
      `  base: ${smokeTrial.config.base}`,
      '  fragments:',
      yamlList(smokeTrial.config.fragments),
      '  require:',
      yamlList(smokeTrial.config.require.map((r) => (r.value === 'y' ? r.symbol : `${r.symbol}=${r.value}`))),
      'toolchain:',
      `  cc: ${smokeTrial.cc}`,
      'timeouts:',
      `  build: ${smokeTrial.timeouts.buildS}`,
      `  boot: ${smokeTrial.timeouts.bootS}`,
      `  case: ${smokeTrial.timeouts.caseS}`,
      'scenarios:',
      yamlList(smokeTrial.scenarios),
      '',
    ].join('\n'),
  );
  const edit = async () => {
    const f = join(series, INCR_EDITED);
    const before = await readFile(f, 'utf8');
    const after = before.replace(/= "one";$/m, '= "two";');
    if (after === before) throw new Error(`could not edit ${INCR_EDITED}`);
    await writeFile(f, after);
    const changed = before.split('\n').filter((l, i) => l !== after.split('\n')[i]);
    return { before: changed[0] ?? '', after: after.split('\n')[before.split('\n').indexOf(changed[0] ?? '')] ?? '' };
  };
  return { trial: trialFile, edit };
}

/** Cache kinds copied from the warm cache into the incremental test's otherwise empty cache. */
const SEED_KINDS = ['guest-sources', 'guest-userland', 'guest-image', 'accel'];

interface IncrementalPair {
  clean: RunSample;
  incremental: RunSample;
  edit: { before: string; after: string };
  /** incremental.kernelS / clean.kernelS */
  ratio: number | null;
}

// ---------------------------------------------------------------------------------------
// Output

let quiet = false;
/** Set on SIGINT/SIGTERM: no new measurement starts. */
let stopping = false;
function say(line: string): void {
  if (!quiet) process.stderr.write(`[bench ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
}

function phaseStats(samples: RunSample[]): Record<string, Stats | null> {
  const ok = samples.filter((s) => s.ok);
  const out: Record<string, Stats | null> = {};
  for (const k of PHASE_KEYS) out[k] = stats(ok.map((s) => s.phases[k] ?? NaN));
  out.total = stats(ok.map((s) => s.wallS));
  out.outsideBootScenarios = stats(ok.map((s) => s.outsideBootScenariosS ?? NaN));
  out.kernel = stats(ok.map((s) => s.kernelS ?? NaN));
  out.peakRssMiB = stats(ok.filter((s) => s.vmHwmKiB).map((s) => s.vmHwmKiB! / 1024));
  return out;
}

function phaseTable(groups: { label: string; kind: string; samples: RunSample[] }[]): string {
  const cols = ['startup', 'source', 'patch', 'config', 'build', 'image', 'boot', 'scenarios', 'shutdown', 'gaps', 'report', 'exit', 'total', 'outsideBootScenarios'];
  const head = ['trial', 'kind', 'n', 'stat', ...cols.map((c) => (c === 'outsideBootScenarios' ? 'outside boot+scen' : c))];
  const rows: string[][] = [];
  for (const g of groups) {
    const st = phaseStats(g.samples);
    const n = String(g.samples.filter((s) => s.ok).length) + (g.samples.some((s) => !s.ok) ? ` (+${g.samples.filter((s) => !s.ok).length} failed)` : '');
    for (const which of ['median', 'min', 'max'] as const) {
      rows.push([which === 'median' ? g.label : '', which === 'median' ? g.kind : '', which === 'median' ? n : '', which, ...cols.map((c) => num(st[c]?.[which], c === 'build' || c === 'total' ? 1 : 2))]);
    }
  }
  return table(head, rows, 2);
}

// ---------------------------------------------------------------------------------------
// Main

interface WarmBlock {
  attempt: number;
  loadBefore: LoadSnapshot;
  loadAfter?: LoadSnapshot;
  load?: LoadDuring;
  loaded: boolean;
  warm: RunSample[];
  boot: BootResult[];
  steps: StepResult[];
  restore: RestoreResult[];
}

async function waitForLoad(max: number, waitS: number): Promise<LoadSnapshot> {
  const until = Date.now() + waitS * 1000;
  let snap = await loadSnapshot();
  if (snap.loadavg[0] > max && waitS > 0) say(`load ${snap.loadavg.join(' ')} is above ${max}; waiting up to ${waitS} s for it to fall`);
  while (snap.loadavg[0] > max && Date.now() < until) {
    await sleep(10_000);
    snap = await loadSnapshot();
  }
  return snap;
}

async function machineInfo(): Promise<Record<string, unknown>> {
  const first = async (cmd: string, args: string[]) => (await capture(cmd, args)).stdout.split('\n')[0]?.trim() ?? '';
  const git = await capture('git', ['-C', repoPath(), 'rev-parse', 'HEAD']);
  const dirty = await capture('git', ['-C', repoPath(), 'status', '--porcelain', '--untracked-files=no']);
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memGiB: round(totalmem() / 2 ** 30, 1),
    hostKernel: release(),
    node: process.version,
    qemu: await first(QEMU, ['--version']),
    ssh: (await capture('ssh', ['-V'])).stderr.trim(),
    commit: git.stdout.trim(),
    uncommittedChanges: dirty.stdout.trim() ? dirty.stdout.trim().split('\n') : [],
  };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const started = new Date();
  const work = await mkdtemp(join(tmpdir(), 'ktrial-bench-'));
  const trials = TRIALS.filter((t) => opts.trials.includes(t.name));
  const source = await source2620();
  say(`work directory ${work}; results to ${opts.resultsDir}`);
  const out: Record<string, unknown> = {
    startedAt: started.toISOString(),
    machine: await machineInfo(),
    options: { ...opts, only: [...opts.only] },
    sources: { [SOURCE_2_6_20]: source, 'linux-source-6.1': 'Debian package linux-source-6.1' },
    loads: [] as { section: string; snapshot: LoadSnapshot }[],
  };
  const loads = out.loads as { section: string; snapshot: LoadSnapshot }[];
  const mark = async (section: string) => {
    const s = await loadSnapshot();
    loads.push({ section, snapshot: s });
    say(`${section}: load ${s.loadavg.join(' ')}`);
  };
  const warmCaches = new Map<string, string>();
  if (opts.warmCache) for (const t of trials) warmCaches.set(t.name, opts.warmCache);
  const ownCaches = new Set<string>();

  const runsDir = join(work, 'runs');
  await mkdir(runsDir, { recursive: true });
  let runNo = 0;
  const runOnce = async (t: { name: string; file: string }, kind: RunSample['kind'], cache: string, extra: { timeline?: boolean; cpuProf?: boolean; args?: string[]; okCodes?: number[] } = {}) => {
    if (stopping) throw new Error('stopped by a signal');
    const id = `${String(++runNo).padStart(3, '0')}-${kind}-${t.name}`;
    const s = await ktrialRun({
      trial: t.file,
      name: t.name,
      kind,
      cache,
      outDir: join(runsDir, id),
      log: join(runsDir, `${id}.log`),
      source,
      ...(extra.timeline ? { timeline: true } : {}),
      ...(extra.cpuProf ? { cpuProfDir: join(work, 'cpu-prof', id) } : {}),
      ...(extra.args ? { args: extra.args } : {}),
      ...(extra.okCodes ? { okCodes: extra.okCodes } : {}),
    });
    logSample(s);
    return s;
  };
  const newCache = async (label: string) => {
    const c = await mkdtemp(join(work, `cache-${label}-`));
    ownCaches.add(c);
    return c;
  };
  const dropCache = async (c: string) => {
    if ([...warmCaches.values()].includes(c)) return;
    if (ownCaches.has(c)) await rm(c, { recursive: true, force: true });
  };
  await mkdir(opts.resultsDir, { recursive: true });
  const writeResults = async (complete = false) => {
    out.complete = complete;
    out.finishedAt = new Date().toISOString();
    out.seconds = round((Date.now() - started.getTime()) / 1000, 1);
    for (const section of opts.only) await writeFile(join(opts.resultsDir, `${section}.json`), `${JSON.stringify(sectionDoc(out, section), null, 2)}\n`);
  };

  // 1a. Cold runs, interleaved across trials.
  const cold: RunSample[] = [];
  if (opts.only.has('cold') && opts.coldRuns > 0) {
    await mark('cold: start');
    for (let i = 0; i < opts.coldRuns; i++) {
      for (const t of trials) {
        const cache = await newCache(`cold-${t.short}`);
        say(`cold run ${i + 1}/${opts.coldRuns} of ${t.name} (empty cache ${cache})`);
        const s = await runOnce(t, 'cold', cache);
        cold.push(s);
        out.cold = { samples: cold };
        await writeResults();
        if (s.ok && !warmCaches.has(t.name)) warmCaches.set(t.name, cache);
        else await dropCache(cache);
      }
    }
    await mark('cold: end');
    out.cold = { samples: cold, byTrial: Object.fromEntries(trials.map((t) => [t.name, phaseStats(cold.filter((s) => s.trial === t.name))])) };
    await writeResults();
  }

  // The sections after the cold runs use a warm cache of each trial they need.
  const guestSections = (['warm', 'boot', 'step', 'restore'] as const).some((s) => opts.only.has(s));
  const wanted = trials.filter((t) => guestSections || (t.name === 'smoke-2.6.20' ? opts.only.has('incremental') || opts.only.has('jobs') : opts.only.has('recovery')));
  const primes: RunSample[] = [];
  if (wanted.length) {
    for (const t of wanted) {
      if (warmCaches.has(t.name)) continue;
      const cache = await newCache(`warm-${t.short}`);
      say(`priming a cache for ${t.name} (not counted)`);
      const s = await runOnce(t, 'prime', cache);
      primes.push(s);
      if (!s.ok) throw new Error(`priming run of ${t.name} failed: ${s.error}`);
      warmCaches.set(t.name, cache);
    }
    if (primes.length) out.primingRuns = primes;
  }

  // 4. Incremental rebuild pairs (2.6.20 only), before the warm sections: they build.
  if (opts.only.has('incremental') && opts.incrementalRuns > 0) {
    const warm2620 = warmCaches.get('smoke-2.6.20');
    if (!warm2620) throw new Error('the incremental section needs a 2.6.20 cache to seed the guest image from');
    if (!(await stat(source).catch(() => undefined))?.isDirectory()) throw new Error(`the incremental section needs a 2.6.20 tree (a directory) to write its patches against; ${SOURCE_2_6_20} is ${source}`);
    await mark('incremental: start');
    const pairs: IncrementalPair[] = [];
    for (let i = 0; i < opts.incrementalRuns; i++) {
      const dir = join(work, `incremental-${i}`);
      await mkdir(dir, { recursive: true });
      const { trial, edit } = await writeIncrementalTrial(source, dir);
      const cache = await newCache('incremental');
      for (const k of SEED_KINDS) {
        if (await stat(join(warm2620, k)).catch(() => undefined)) await capture('cp', ['-a', join(warm2620, k), join(cache, k)]);
      }
      const t = { name: 'bench-incremental-2.6.20', file: trial };
      say(`incremental pair ${i + 1}/${opts.incrementalRuns}: clean build (fresh kernel cache)`);
      const clean = await runOnce(t, 'clean', cache);
      const e = await edit();
      say(`incremental pair ${i + 1}/${opts.incrementalRuns}: rebuild after editing ${INCR_EDITED}: "${e.before}" -> "${e.after}"`);
      const incr = await runOnce(t, 'incremental', cache);
      const ratio = clean.ok && incr.ok && clean.kernelS ? round((incr.kernelS ?? NaN) / clean.kernelS) : null;
      pairs.push({ clean, incremental: incr, edit: e, ratio });
      out.incremental = { pairs };
      await writeResults();
      await dropCache(cache);
    }
    await mark('incremental: end');
    const okPairs = pairs.filter((p) => p.ratio !== null);
    const cleanK = stats(okPairs.map((p) => p.clean.kernelS!));
    const incrK = stats(okPairs.map((p) => p.incremental.kernelS!));
    out.incremental = {
      trial: 'bench-incremental-2.6.20 (smoke-2.6.20 + a three-patch series; one added line in the middle patch changed between the builds)',
      seededFromWarmCache: SEED_KINDS,
      pairs,
      clean: phaseStats(okPairs.map((p) => p.clean)),
      incremental: phaseStats(okPairs.map((p) => p.incremental)),
      kernelRatioOfMedians: cleanK && incrK ? round(incrK.median / cleanK.median) : null,
      pairRatios: stats(okPairs.map((p) => p.ratio!)),
    };
    await writeResults();
  }

  // 1b, 2, 3 (and 5, from the warm runs): short measurements, repeated if the host was loaded.
  const blocks: WarmBlock[] = [];
  let reportedBlock: WarmBlock | undefined;
  if (opts.only.has('warm') || opts.only.has('boot') || opts.only.has('step') || opts.only.has('restore')) {
    for (let attempt = 1; attempt <= 1 + opts.warmRetries; attempt++) {
      const loadBefore = await waitForLoad(opts.maxLoad, attempt === 1 ? opts.loadWaitS : Math.max(opts.loadWaitS, 120));
      const block: WarmBlock = { attempt, loadBefore, loaded: false, warm: [], boot: [], steps: [], restore: [] };
      loads.push({ section: `warm block ${attempt}: start`, snapshot: loadBefore });
      say(`warm block ${attempt}: load ${loadBefore.loadavg.join(' ')}`);
      const sampler = new LoadSampler().start();
      if (opts.only.has('warm')) {
        const seen = new Set<string>();
        for (let i = 0; i < opts.warmRuns; i++) {
          for (const t of trials) {
            const first = !seen.has(t.name);
            seen.add(t.name);
            block.warm.push(allHits(await runOnce(t, 'warm', warmCaches.get(t.name)!, { timeline: first, cpuProf: opts.cpuProf })));
          }
        }
      }
      const guests = new Map<string, Guest>();
      if (opts.only.has('boot') || opts.only.has('step') || opts.only.has('restore')) {
        for (const t of trials) guests.set(t.name, await prepareGuest(t, warmCaches.get(t.name)!, source, work));
        out.accelerators = Object.fromEntries([...guests].map(([name, g]) => [name, g.accel]));
      }
      if (opts.only.has('boot')) for (const t of trials) block.boot.push(await bootSection(guests.get(t.name)!, opts.bootRuns, work, warmCaches.get(t.name)!, source));
      if (opts.only.has('step')) for (const t of trials) block.steps.push(await stepSection(guests.get(t.name)!, opts.steps, work, warmCaches.get(t.name)!, source));
      if (opts.only.has('restore')) for (const t of trials) block.restore.push(await restoreSection(guests.get(t.name)!, opts.bootRuns, work, warmCaches.get(t.name)!, source));
      block.load = sampler.stop();
      block.loadAfter = await loadSnapshot();
      loads.push({ section: `warm block ${attempt}: end`, snapshot: block.loadAfter });
      block.loaded = loadBefore.loadavg[0] > opts.maxLoad || block.load.load1Mean > opts.maxLoad + 1;
      blocks.push(block);
      say(`warm block ${attempt}: load during: mean ${block.load.load1Mean}, max ${block.load.load1Max} (${block.loaded ? 'LOADED' : 'ok'})`);
      if (!block.loaded) break;
      if (attempt <= opts.warmRetries) say('the host was loaded during the warm measurements; repeating them');
    }
    // Report the block with the lowest load while it ran.
    const best = [...blocks].sort((a, b) => (a.load?.load1Mean ?? Infinity) - (b.load?.load1Mean ?? Infinity))[0]!;
    reportedBlock = best;
    out.warmBlocks = blocks.map((b) => ({ attempt: b.attempt, loadBefore: b.loadBefore, loadAfter: b.loadAfter, loadDuring: b.load, loaded: b.loaded, reported: b === best }));
    if (opts.only.has('warm')) out.warm = { attempt: best.attempt, samples: best.warm, byTrial: Object.fromEntries(trials.map((t) => [t.name, phaseStats(best.warm.filter((s) => s.trial === t.name))])) };
    if (opts.only.has('boot')) out.boot = best.boot;
    if (opts.only.has('step')) out.steps = best.steps;
    if (opts.only.has('restore')) out.restore = best.restore;
    if (opts.only.has('warm')) out.memory = Object.fromEntries(trials.map((t) => [t.name, { method: 'VmHWM of the ktrial node process, read from /proc/self/status in an exit hook (node --import)', peakMiB: stats(best.warm.filter((s) => s.ok && s.trial === t.name && s.vmHwmKiB).map((s) => s.vmHwmKiB! / 1024)) }]));
    out.otherBlocks = blocks.filter((b) => b !== best).map((b) => ({ attempt: b.attempt, warm: b.warm, boot: b.boot, steps: b.steps, restore: b.restore }));
    if (baselineCommand) out.baselineCommand = baselineCommand.map((a) => a.replace(work, '$WORK'));
  }

  // 7. The subject suite with --jobs 1 and --jobs 2, alternating, in the 2.6.20 cache.
  const jobsPairs: JobsPair[] = [];
  if (opts.only.has('jobs') && opts.jobsRuns > 0) {
    const cache = warmCaches.get('smoke-2.6.20');
    if (!cache) throw new Error('the jobs section runs in the smoke-2.6.20 cache: keep that trial among the --trial ones');
    await mark('jobs: start');
    if (cache !== opts.warmCache) {
      say(`priming the cache for ${SUBJECT.name} (not counted)`);
      primes.push(await runOnce(SUBJECT, 'prime', cache));
    }
    for (let i = 0; i < opts.jobsRuns; i++) {
      say(`jobs pair ${i + 1}/${opts.jobsRuns}: ${SUBJECT.name} with --jobs 1, then --jobs 2`);
      const jobs1 = allHits(await runOnce(SUBJECT, 'jobs-1', cache, { args: ['--jobs', '1'] }));
      const jobs2 = allHits(await runOnce(SUBJECT, 'jobs-2', cache, { args: ['--jobs', '2'] }));
      jobsPairs.push({ jobs1, jobs2 });
      out.jobs = { pairs: jobsPairs };
      await writeResults();
    }
    await mark('jobs: end');
    const ok = jobsPairs.filter((p) => p.jobs1.ok && p.jobs2.ok);
    const scen = { jobs1: stats(ok.map((p) => p.jobs1.phases.scenarios ?? NaN)), jobs2: stats(ok.map((p) => p.jobs2.phases.scenarios ?? NaN)) };
    const wall = { jobs1: stats(ok.map((p) => p.jobs1.wallS)), jobs2: stats(ok.map((p) => p.jobs2.wallS)) };
    out.jobs = { trial: SUBJECT.name, pairs: jobsPairs, scenarios: scen, wall, scenariosRatio: ratioOfMedians(scen.jobs2, scen.jobs1), wallRatio: ratioOfMedians(wall.jobs2, wall.jobs1) };
    await writeResults();
  }

  // 8. The crash-recovery fixture suite on the 6.1 smoke kernel (exit 3: a kernel crash).
  const recoveryRuns: RecoveryRun[] = [];
  if (opts.only.has('recovery') && opts.recoveryRuns > 0) {
    const t = TRIALS[1]!;
    const cache = warmCaches.get(t.name);
    if (!cache) throw new Error(`the recovery section runs in the ${t.name} cache: keep that trial among the --trial ones`);
    await mark('recovery: start');
    for (let i = 0; i < opts.recoveryRuns; i++) {
      say(`recovery run ${i + 1}/${opts.recoveryRuns}: ${t.name} --suite ${RECOVER_SUITE}`);
      const r = recoveryOf(allHits(await runOnce(t, 'recovery', cache, { args: ['--suite', RECOVER_SUITE], okCodes: [3] })));
      recoveryRuns.push(r);
      say(`  recovery ${num(r.recoveryS)} s (boot 2 ${num(r.secondBootS)} s) against boot 1 ${num(r.firstBootS)} s: ${num(r.ratio, 3)}`);
      out.recovery = { runs: recoveryRuns };
      await writeResults();
    }
    await mark('recovery: end');
    const ok = recoveryRuns.filter((r) => r.ratio !== null);
    const recovery = stats(ok.map((r) => r.recoveryS!));
    const firstBoot = stats(ok.map((r) => r.firstBootS!));
    out.recovery = { trial: t.name, suite: 'test/fixtures/scenarios/recover-crash.yaml', runs: recoveryRuns, recoveryS: recovery, firstBootS: firstBoot, secondBootS: stats(ok.map((r) => r.secondBootS ?? NaN)), ratio: ratioOfMedians(recovery, firstBoot) };
    await writeResults();
  }

  const failures = () =>
    [...cold, ...primes, ...blocks.flatMap((b) => b.warm), ...jobsPairs.flatMap((p) => [p.jobs1, p.jobs2]), ...recoveryRuns.map((r) => r.run)].filter((x) => !x.ok).length +
    ((out.incremental as { pairs: IncrementalPair[] } | undefined)?.pairs.filter((p) => !p.clean.ok || !p.incremental.ok).length ?? 0) +
    blocks.flatMap((b) => b.boot.flatMap((r) => r.samples)).filter((x) => !x.ok).length +
    blocks.flatMap((b) => b.steps).reduce((n, x) => n + x.failures, 0) +
    blocks.flatMap((b) => b.restore).reduce((n, x) => n + x.failures, 0);
  out.failures = failures();
  out.workDir = work;

  // Targets
  const targets: { section: Section; target: string; trial: string; value: string; limit: string; met: boolean | null }[] = [];
  const warmOut = out.warm as { samples: RunSample[] } | undefined;
  for (const t of trials) {
    const b = (out.boot as BootResult[] | undefined)?.find((x) => x.trial === t.name);
    if (b) targets.push({ section: 'boot', target: 'boot-to-SSH overhead, median ktrial / median baseline', trial: t.name, value: num(b.ratio, 3), limit: '<= 1.10', met: b.ratio === null ? null : b.ratio <= 1.1 });
    const rs = (out.restore as RestoreResult[] | undefined)?.find((x) => x.trial === t.name);
    if (rs) targets.push({ section: 'restore', target: 'guest from a saved state / boot to SSH, medians', trial: t.name, value: `${num(rs.ratio, 3)} (${num(rs.restore ? rs.restore.median / 1000 : null, 2)} s / ${num(rs.boot ? rs.boot.median / 1000 : null, 2)} s)`, limit: '<= 0.15', met: rs.ratio === null ? null : rs.ratio <= 0.15 });
    const st = (out.steps as StepResult[] | undefined)?.find((x) => x.trial === t.name);
    if (st) targets.push({ section: 'step', target: 'scenario step on the reused connection, median', trial: t.name, value: `${num(st.reused?.median, 1)} ms`, limit: '<= 50 ms', met: st.reused ? st.reused.median <= 50 : null });
    if (warmOut) {
      const o = stats(warmOut.samples.filter((s) => s.ok && s.trial === t.name).map((s) => s.outsideBootScenariosS ?? NaN));
      targets.push({ section: 'warm', target: 'unchanged re-run: wall time outside boot and scenarios, median', trial: t.name, value: `${num(o?.median, 2)} s`, limit: '< 2 s', met: o ? o.median < 2 : null });
    }
  }
  const inc = out.incremental as { kernelRatioOfMedians: number | null } | undefined;
  if (inc) targets.push({ section: 'incremental', target: 'incremental rebuild / clean build (source+patch+config+build), medians', trial: 'bench-incremental-2.6.20', value: num(inc.kernelRatioOfMedians, 3), limit: '<= 0.25', met: inc.kernelRatioOfMedians === null ? null : inc.kernelRatioOfMedians <= 0.25 });
  const jobsOut = out.jobs as { scenarios: Record<'jobs1' | 'jobs2', Stats | null>; wall: Record<'jobs1' | 'jobs2', Stats | null>; scenariosRatio: number | null; wallRatio: number | null } | undefined;
  if (jobsOut?.scenarios) {
    const { scenarios: sc, wall: w } = jobsOut;
    // The extra guests boot in the boot phase, beside the first: the whole run's wall time is the measure.
    targets.push({ section: 'jobs', target: 'subject suite, --jobs 2 / --jobs 1, wall time (scenario phases alone after ;), medians', trial: SUBJECT.name, value: `${num(jobsOut.wallRatio, 3)} (${num(w.jobs2?.median, 1)} s / ${num(w.jobs1?.median, 1)} s); ${num(jobsOut.scenariosRatio, 3)} (${num(sc.jobs2?.median, 1)} s / ${num(sc.jobs1?.median, 1)} s)`, limit: '<= 0.65', met: jobsOut.wallRatio === null ? null : jobsOut.wallRatio <= 0.65 });
  }
  const recOut = out.recovery as { trial: string; recoveryS: Stats | null; firstBootS: Stats | null; ratio: number | null } | undefined;
  if (recOut?.trial) targets.push({ section: 'recovery', target: 'recovery after a crash (case end to boot 2 set up) / boot 1 to SSH, medians', trial: `${recOut.trial} + recover-crash`, value: `${num(recOut.ratio, 3)} (${num(recOut.recoveryS?.median, 2)} s / ${num(recOut.firstBootS?.median, 2)} s)`, limit: '<= 1.2', met: recOut.ratio === null ? null : recOut.ratio <= 1.2 });
  out.targets = targets;
  await writeResults(true);

  // Tables
  const print = (s: string) => process.stdout.write(`${s}\n`);
  const m = out.machine as Record<string, unknown>;
  const accels = Object.entries((out.accelerators as Record<string, AccelVerdict> | undefined) ?? {}).map(([name, v]) => `${name} ${v.accel} (${v.reason})`);
  print(`\nktrial benchmark, ${started.toISOString()}: ${m.cpus} x ${m.cpuModel}, ${m.memGiB} GiB, ${m.qemu}, node ${m.node}, commit ${String(m.commit).slice(0, 12)}`);
  if (accels.length) print(`accelerator, as ktrial's probe chose it (the baseline boots with the same): ${accels.join('; ')}`);
  print(`load averages: ${loads.map((l) => `${l.section} ${l.snapshot.loadavg.join('/')}`).join('; ')}`);
  const groups: { label: string; kind: string; samples: RunSample[] }[] = [];
  for (const t of trials) {
    if (cold.some((s) => s.trial === t.name)) groups.push({ label: t.name, kind: 'cold', samples: cold.filter((s) => s.trial === t.name) });
    if (warmOut?.samples.some((s) => s.trial === t.name)) groups.push({ label: t.name, kind: 'warm', samples: warmOut.samples.filter((s) => s.trial === t.name) });
  }
  const incOut = out.incremental as { pairs: IncrementalPair[] } | undefined;
  if (incOut) {
    groups.push({ label: 'bench-incremental-2.6.20', kind: 'clean', samples: incOut.pairs.map((p) => p.clean) });
    groups.push({ label: 'bench-incremental-2.6.20', kind: 'incr', samples: incOut.pairs.map((p) => p.incremental) });
  }
  if (groups.length) {
    print('\n1/4. ktrial run, seconds per phase (startup: spawn to run start; gaps: inside the run, outside every phase; exit: last report to process exit)');
    print(phaseTable(groups));
  }
  const boots = out.boot as BootResult[] | undefined;
  if (boots?.length) {
    print('\n2. Boot to SSH-ready, seconds (ktrial: createVm until it resolves; baseline: bare QEMU polled with ssh ... true)');
    print(
      table(
        ['kernel', 'side', 'n', 'median', 'min', 'max', 'ratio'],
        boots.flatMap((b) => [
          [b.trial, 'ktrial', String(b.ktrial?.n ?? 0), num((b.ktrial?.median ?? NaN) / 1000), num((b.ktrial?.min ?? NaN) / 1000), num((b.ktrial?.max ?? NaN) / 1000), num(b.ratio, 3)],
          ['', 'baseline', String(b.baseline?.n ?? 0), num((b.baseline?.median ?? NaN) / 1000), num((b.baseline?.min ?? NaN) / 1000), num((b.baseline?.max ?? NaN) / 1000), ''],
        ]),
        2,
      ),
    );
  }
  const steps = out.steps as StepResult[] | undefined;
  if (steps?.length) {
    print(`\n3. One scenario step (${STEP_COMMAND}), ms`);
    print(
      table(
        ['kernel', 'how', 'n', 'median', 'min', 'max'],
        steps.flatMap((s) => [
          [s.trial, 'vm.run, reused connection', String(s.reused?.n ?? 0), num(s.reused?.median, 1), num(s.reused?.min, 1), num(s.reused?.max, 1)],
          ['', 'ssh2 exec, same connection', String(s.reusedRawExec?.n ?? 0), num(s.reusedRawExec?.median, 1), num(s.reusedRawExec?.min, 1), num(s.reusedRawExec?.max, 1)],
          ['', 'fresh ssh process', String(s.freshSsh?.n ?? 0), num(s.freshSsh?.median, 1), num(s.freshSsh?.min, 1), num(s.freshSsh?.max, 1)],
        ]),
        2,
      ),
    );
  }
  const mem = out.memory as Record<string, { peakMiB: Stats | null }> | undefined;
  if (mem) {
    print('\n5. Peak memory of the ktrial process during warm runs (VmHWM, MiB)');
    print(table(['trial', 'n', 'median', 'min', 'max'], Object.entries(mem).map(([k, v]) => [k, String(v.peakMiB?.n ?? 0), num(v.peakMiB?.median, 0), num(v.peakMiB?.min, 0), num(v.peakMiB?.max, 0)]), 1));
  }
  if (incOut) {
    const i = out.incremental as { kernelRatioOfMedians: number | null; pairRatios: Stats | null };
    print(`\n4. Incremental rebuild: kernel phases ${num(i.kernelRatioOfMedians, 3)} x the clean build (ratio of medians; per-pair ratios ${num(i.pairRatios?.median, 3)} median, ${num(i.pairRatios?.min, 3)}-${num(i.pairRatios?.max, 3)}, n=${i.pairRatios?.n ?? 0})`);
  }
  if (jobsPairs.length) {
    print(`\n7. ${SUBJECT.name}, --jobs 1 against --jobs 2, seconds per phase (pairs alternate)`);
    print(phaseTable([{ label: SUBJECT.name, kind: 'jobs 1', samples: jobsPairs.map((p) => p.jobs1) }, { label: SUBJECT.name, kind: 'jobs 2', samples: jobsPairs.map((p) => p.jobs2) }]));
  }
  if (recoveryRuns.length) {
    print('\n8. Recovery after a crash (recover-crash.yaml on 6.1), seconds');
    print(table(['run', 'crash to boot 2 set up', 'boot 2 to SSH', 'boot 1 to SSH', 'ratio'], recoveryRuns.map((r, i) => [String(i + 1), num(r.recoveryS), num(r.secondBootS), num(r.firstBootS), num(r.ratio, 3)]), 1));
  }
  if (targets.length) {
    print('\nTargets');
    print(table(['target', 'trial', 'value', 'limit', 'verdict'], targets.map((t) => [t.target, t.trial, t.value, t.limit, t.met === null ? 'no data' : t.met ? 'met' : 'MISSED']), 2));
  }
  if (reportedBlock?.loaded) print(`\nnote: the host was loaded during the reported warm measurements (load1 mean ${reportedBlock.load?.load1Mean}, max ${reportedBlock.load?.load1Max} on ${cpus().length} CPUs)`);
  print(`\nresults: ${[...opts.only].map((s) => join(opts.resultsDir, `${s}.json`)).join(', ')}`);

  if (opts.keep || opts.cpuProf) say(`work directory kept: ${work}`);
  else if (failures() > 0) {
    // Keep the logs and consoles of what failed; the caches are large and of no use.
    for (const c of ownCaches) await rm(c, { recursive: true, force: true });
    say(`${failures()} measurement(s) failed; their logs and consoles are kept in ${work}`);
  } else await rm(work, { recursive: true, force: true });
}

// Every QEMU the benchmark starts is killed on every way out.
process.on('exit', () => {
  killTracked();
  killAllGuests();
});
for (const sig of ['SIGINT', 'SIGTERM'] as const) {
  process.on(sig, () => {
    quiet = true;
    stopping = true;
    process.stderr.write(`\nbench: ${sig}, stopping\n`);
    if (currentKtrial?.pid) {
      try {
        process.kill(currentKtrial.pid, 'SIGTERM');
      } catch {
        // gone
      }
    }
    setTimeout(() => process.exit(130), currentKtrial ? 5000 : 0).unref();
  });
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`bench: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
