// ktrial's command line. Each command runs the stages it needs in order; every failure is
// turned into one message and one exit code by its class.
import { parseArgs } from 'node:util';
import { stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { badInput, Interrupted, KtrialError, renderFailure } from './common/errors.js';
import { SETUP_PACKAGES } from './common/hosttools.js';
import { QEMU_USERS } from './vm/confine.js';
import { Progress } from './common/progress.js';
import { run } from './common/proc.js';
import { gitRevision, packageVersion } from './common/revision.js';
import { commandUsage, UsageError } from './commands/help.js';
import { doctor } from './commands/doctor.js';
import { listCommand } from './commands/list.js';
import { cacheCommand } from './commands/cache.js';
import { mergeCommand } from './commands/merge.js';
import { runTrials } from './multirun.js';
import type { StageContext } from './common/context.js';
import { planDefaultRun, planRun, type RunOptions, type RunPlan } from './runplan.js';
import { bootKernel, kernelFor, runTrial } from './trialrun.js';
import { BISECT, bisectVerdict, EXIT_CODES, exitCodeFor, toResultsJson, toSummary } from './report/index.js';
import { interactiveShell, killAllGuests, runCommandInGuest } from './vm/index.js';
import { compareCommand } from './compare/index.js';
import { guestPathProblem } from './common/paths.js';
import { runEachPatch, runFirstBad } from './eachpatch.js';
import { lavaTrial } from './lava/index.js';

const USAGE = `usage: ktrial <command> [arguments] [options]
       ktrial <command> --help     the usage of one command
       ktrial --version            ktrial's version and commit

commands:
  run TRIAL [TRIAL...]   build (cached), boot, run the trial's scenario suites, give the
                verdict; reports in DIR: results.json, results.tap, junit.xml, summary.txt,
                console.log, build.log, manifest.json. With several trials: each runs into
                DIR/<trial name> (DIR defaults to out), then the runs are compared with the
                first as the baseline (DIR/compare.{txt,md,json,html}); the exit code is
                the worst of the runs' and the comparison's (1 on a regression).
                Without a trial, --source TREE (with --patch PATH...) runs the config and
                suites of the smoke trial of the tree's era (configs/trials/smoke-*); the
                summary says which
  boot TRIAL    boot the trial's kernel with the guest image and run one command
                (-- COMMAND..., exits with its code) or an interactive shell (--shell)
  build TRIAL   build the trial's kernel (cached by its inputs) into DIR
  compare A B [C...]   compare runs (output directories or results.json files) case by
                case against the first: regressions, fixes, changed actual values, flaky,
                new and gone cases; --markdown or --json (ktrial-compare/1) instead of
                the summary, --html FILE for a page with the case x run grid; exits 1
                when a later run has a regression
  merge DIR... [--out DIR]   join the outputs of a run's shards (run --shard I/N) into
                one results.json, TAP, JUnit and summary (default DIR: out/<trial>);
                shards of different kernels, trials or suites, a missing shard or one
                given twice are bad input (exit 2)
  list [TRIAL|SUITE]   without an argument, the trials and scenario suites there are;
                with a trial or a suite file, the cases it would run (suite/name)
  cache ls|du|prune   the cache's entries (kernels with trial, release, source, compiler,
                date, size), its size per kind, or removing old entries (never one in use)
  lava TRIAL    build (cached) and write a LAVA job into DIR (lava-job.yaml, a device
                dictionary for LAVA's qemu device type, the kernel, the guest image and
                the in-guest plan ktrial-plan.sh), checked with lava-run --validate;
                --run runs it here with lava-run, --ingest LOG reads a lab's job log;
                both then write the reports as run does, with lava.log beside them
  doctor        list the host tools ktrial uses and which are missing (--json: as JSON)
  setup         install every Debian package ktrial uses (as root)

options for run, boot and build:
  -q, --quiet           no progress: only the verdict or summary, and errors
  -v, --verbose         more progress: every status change of a phase (each object
                        compiled, each case's verdict) as it happens
  --source SRC          another copy of the trial's source: a tree, a .tar.{gz,bz2,xz}
                        (checked against the trial's sha256), REPO@REF, debian:PKG
  --cc gcc-N            the compiler (default: the trial's)
  --patch PATH          one more patch series, applied after the trial's (repeatable): a
                        patch, an mbox of several (git format-patch --stdout, b4 am), a
                        git format-patch directory or a quilt directory
  --kconfig-add CONFIG_X=V   one more config option, after the trial's (repeatable)
  --config FILE         a full .config as the base of the build (in place of the trial's
                        base target; kconfig completes it, then the fragments go on top);
                        with --kernel, the kernel's config, to judge the suites' requirements
  --kernel BZIMAGE      boot this kernel, built elsewhere, and build nothing; its config is
                        --config's, else the one it carries (CONFIG_IKCONFIG), else unknown:
                        requirements are then not judged (the cases run, marked so)
  --build-dir DIR       boot a tree's own build (make O=DIR): its bzImage, .config and
                        vmlinux (for decoded crash traces); builds nothing
  --out DIR             where outputs and reports go (default out/<trial name>)
  --timeout-build S, --timeout-boot S   override the trial's build and boot timeouts
  --timeout-case S      seconds for every scenario case, in place of the suites' and the
                        trial's per-case timeouts
options for run and boot:
  --cmdline "WORDS"     more kernel command line
  --cpus N              guest CPUs (QEMU -smp; the trial's guest.cpus, default 1); more
                        than one needs a kernel with CONFIG_SMP
  --console             echo the guest's serial console
  --network confined|outbound   what the guest's network reaches: confined (the default)
                        only the SSH port ktrial forwards; outbound lets it reach beyond
                        itself (the trial's guest.network, else outbound if a suite asks)
options for run:
  --json                write results.json to stdout (the summary goes to stderr)
  --suite FILE          run this scenario suite instead of the trial's (repeatable)
  --var NAME=VALUE      set a suite variable, after the trial's vars (repeatable)
  --only GLOB           run only the cases whose name matches (repeatable)
  --repeat N            run every suite N times; a case whose verdict varies is flaky
  --shard I/N           run only the I-th of N shards of the cases (for a CI matrix;
                        default DIR: out/<trial>.shard-I-of-N); ktrial merge joins them
  --jobs N|auto         guests running cases at once (auto: the host's cores; the
                        trial's jobs, default 1); each guest runs a suite's setup once
  --max-reboots N       fresh guests the run may boot to replace ones that crashed or
                        stopped answering (the trial's max-reboots, default 3; 0: the
                        cases after a crash are not run)
  --isolate snapshot    save the guest after each suite's setup and start every case
                        after the first on a fresh guest restored from that save
  --each-patch [FROM]   run after each patch of the series (the trial's and --patch's;
                        from the FROM-th), row 0 the base: a table of applies, builds (the
                        first compiler error), boots, verdicts and the regressions and fixes
                        against the row before; each row is a run directory DIR/patch-K
  --first-bad           when the whole series fails where its base passes, bisect over the
                        series for the first patch that fails (exit codes as --bisect)
  --upto K              apply only the first K patches of the series (a row of --each-patch)
  --bisect              exit as \`git bisect run\` expects: 0 good, 1 bad (a case not as
                        expected, no boot, a crash), 125 skip (the kernel could not be
                        patched, configured or built), 128 abort (host problem, bad input)
options for lava (and --source, --cc, --patch, --kconfig-add, --out, --timeout-*, --cmdline, --cpus, --network):
  --artifact-url BASE   the job's URLs point at BASE/<file> (the lab's artifact server)
                        instead of file:// paths in DIR
  --run                 run the job locally with lava-run (as root) and write the reports
  --ingest LOG          judge a lab's log of the job (the job log as YAML) into the reports
  --only GLOB           the job runs only the cases whose name matches, as for run (repeatable)
options for boot:
  --shell | -- COMMAND...
  --copy SRC:DEST       put the host file SRC at the absolute guest path DEST, with SRC's
                        mode, before the shell or command (repeatable)
options for merge:
  --out DIR             where the merged reports go (default out/<trial>)
  -q, --quiet           only the summary
options for list:
  --only GLOB           only the cases whose name matches, as for run (repeatable)
  --patch PATH          the patches PATH holds, in the order they apply (with a trial,
                        before its cases)
options for cache:
  --older-than DAYS     prune: remove entries completed more than DAYS days ago
  --keep N              prune: keep only the N most recent kernels
options for doctor:
  --json                the tools as JSON: name, package, purpose, present, path

environment: KTRIAL_CACHE (default ~/.cache/ktrial), KTRIAL_SOURCE_<NAME> (a source
for trials whose source is named NAME, e.g. KTRIAL_SOURCE_LINUX_2_6_20), KTRIAL_ACCEL=kvm|tcg
(the accelerator, instead of probing KVM once per host and QEMU version)

exit codes: 0 all as expected, 1 some case not as expected, 2 bad input,
            3 kernel-side failure (patch, build, boot, crash), 4 host-side failure,
            130 interrupted`;

const COMMON_OPTIONS = {
  source: { type: 'string' },
  cc: { type: 'string' },
  out: { type: 'string' },
  'timeout-build': { type: 'string' },
  'timeout-boot': { type: 'string' },
  'timeout-case': { type: 'string' },
  console: { type: 'boolean' },
  'kconfig-add': { type: 'string', multiple: true },
  kernel: { type: 'string' },
  'build-dir': { type: 'string' },
  config: { type: 'string' },
  cmdline: { type: 'string' },
  cpus: { type: 'string' },
  network: { type: 'string' },
  patch: { type: 'string', multiple: true },
  quiet: { type: 'boolean', short: 'q' },
  verbose: { type: 'boolean', short: 'v' },
} as const;

async function planFrom(positionals: string[], options: RunOptions & { quiet?: boolean; verbose?: boolean }, command: string, ctx: StageContext): Promise<RunPlan> {
  if (positionals.length > 1 || (positionals.length === 0 && !options.source)) throw new UsageError(`${command} takes one trial file${positionals.length ? `, got ${positionals.length} arguments` : ', or --source TREE for the defaults of its era'}`, command);
  setVerbosity(options, command, ctx);
  if (positionals.length === 1) return planRun(positionals[0]!, options);
  const plan = await planDefaultRun(options);
  ctx.progress.info(plan.trialChosen!);
  return plan;
}

function setVerbosity(options: { quiet?: boolean; verbose?: boolean }, command: string, ctx: StageContext): void {
  if (options.quiet && options.verbose) throw new UsageError('-q and -v contradict each other', command);
  ctx.progress.verbosity = options.quiet ? 'quiet' : options.verbose ? 'verbose' : 'normal';
}

/** --each-patch takes an optional FROM: given alone it is --each-patch 1. */
const eachPatchFrom = (args: string[]): string[] => args.flatMap((a, i) => (a === '--each-patch' && !/^\d+$/.test(args[i + 1] ?? '') ? ['--each-patch', '1'] : [a]));

async function cmdRun(args: string[], ctx: StageContext): Promise<number> {
  const { values, positionals } = parseArgs({ args: eachPatchFrom(args), allowPositionals: true, options: { ...COMMON_OPTIONS, repeat: { type: 'string' }, jobs: { type: 'string' }, 'max-reboots': { type: 'string' }, isolate: { type: 'string' }, only: { type: 'string', multiple: true }, suite: { type: 'string', multiple: true }, var: { type: 'string', multiple: true }, shard: { type: 'string' }, bisect: { type: 'boolean' }, json: { type: 'boolean' }, upto: { type: 'string' }, 'each-patch': { type: 'string' }, 'first-bad': { type: 'boolean' } } });
  if (positionals.length > 1) {
    for (const one of ['json', 'bisect', 'shard', 'each-patch', 'first-bad'] as const) if (values[one]) throw new UsageError(`--${one} takes one trial, got ${positionals.length}`, 'run');
    setVerbosity(values, 'run', ctx);
    return runTrials(positionals, values, ctx, (text) => process.stdout.write(text));
  }
  const plan = await planFrom(positionals, values, 'run', ctx);
  const series = values['each-patch'] !== undefined ? 'each-patch' : values['first-bad'] ? 'first-bad' : undefined;
  if (series) {
    for (const other of ['each-patch', 'first-bad', 'json', 'bisect', 'shard'] as const) if (other !== series && values[other] !== undefined) throw new UsageError(`--${series} and --${other} exclude each other`, 'run');
    const say = (text: string) => process.stdout.write(text);
    return series === 'each-patch' ? runEachPatch(plan, values, Number(values['each-patch']), ctx, say) : runFirstBad(plan, values, ctx, say);
  }
  const results = await runTrial(plan, ctx);
  // With --json, stdout carries results.json alone, for a script to read.
  const say = (text: string) => (values.json ? process.stderr : process.stdout).write(text);
  if (values.json) process.stdout.write(toResultsJson(results));
  say(toSummary(results));
  if (results.error) process.stderr.write(`${renderFailure(results.error.class, results.error.message, results.error)}\n`);
  if (!values.quiet) say(`reports: ${plan.outDir}/{results.json,results.tap,junit.xml,summary.txt,console.log}\n`);
  if (!values.bisect) return exitCodeFor(results);
  const verdict = bisectVerdict(results);
  say(`git bisect: ${verdict} (exit ${BISECT[verdict]})\n`);
  return BISECT[verdict];
}

/** A --copy SRC:DEST argument: a host file and an absolute guest path, checked before the build. */
async function copyArgument(arg: string): Promise<{ src: string; dest: string; mode: number }> {
  const m = /^(.+):(\/.*[^/])$/.exec(arg);
  if (!m) throw new UsageError(`--copy ${arg}: expected SRC:DEST, a host file and an absolute guest path`, 'boot');
  const destProblem = guestPathProblem(m[2]!);
  if (destProblem) throw new UsageError(`--copy ${arg}: the guest path ${JSON.stringify(m[2])} is refused: ${destProblem}`, 'boot');
  const src = resolve(m[1]!);
  const st = await stat(src).catch(() => undefined);
  if (!st?.isFile()) throw badInput(`--copy ${arg}: ${src} does not exist or is not a regular file`, { hint: 'SRC is a host file, relative to the current directory' });
  return { src, dest: m[2]!, mode: st.mode & 0o7777 };
}

async function cmdBoot(args: string[], ctx: StageContext): Promise<number> {
  const dash = args.indexOf('--');
  const command = dash >= 0 ? args.slice(dash + 1) : [];
  const { values, positionals } = parseArgs({ args: dash >= 0 ? args.slice(0, dash) : args, allowPositionals: true, options: { ...COMMON_OPTIONS, shell: { type: 'boolean' }, copy: { type: 'string', multiple: true } } });
  const plan = await planFrom(positionals, values, 'boot', ctx);
  if (!values.shell && command.length === 0) throw new UsageError('boot needs --shell or -- COMMAND', 'boot');
  const copies = await Promise.all((values.copy ?? []).map(copyArgument));
  const kernel = await kernelFor(plan, ctx);
  const vm = await ctx.progress.phase('boot', () => bootKernel(kernel, plan, ctx));
  try {
    ctx.progress.info(`guest up (${vm.accel}); console log: ${join(plan.outDir, 'console.log')}`);
    for (const c of copies) {
      await vm.copy(c.src, c.dest, c.mode);
      ctx.progress.info(`copied ${c.src} to the guest's ${c.dest}`);
    }
    const code = values.shell ? await interactiveShell(vm) : await runCommandInGuest(vm, command);
    // An interrupt kills QEMU, which ends the command with a lost connection (255): the
    // run was interrupted, and says so with 130.
    if (ctx.signal.aborted) throw ctx.signal.reason instanceof Error ? ctx.signal.reason : new Interrupted('a signal');
    return code;
  } finally {
    await vm.close();
  }
}

async function cmdBuild(args: string[], ctx: StageContext): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: COMMON_OPTIONS });
  const plan = await planFrom(positionals, values, 'build', ctx);
  const k = await kernelFor(plan, ctx);
  ctx.progress.info(`kernel ${k.manifest.kernelRelease} ${k.cacheHit ? '(cached)' : `built in ${k.manifest.build.seconds.toFixed(0)}s, ${k.manifest.build.warnings} warnings`}: ${join(plan.outDir, 'bzImage')}`);
  return EXIT_CODES.ok;
}

async function cmdLava(args: string[], ctx: StageContext): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { ...COMMON_OPTIONS, 'artifact-url': { type: 'string' }, run: { type: 'boolean' }, ingest: { type: 'string' }, only: { type: 'string', multiple: true } } });
  if (values.run && values.ingest) throw new UsageError('--run and --ingest exclude each other: --run makes its own log', 'lava');
  const plan = await planFrom(positionals, values, 'lava', ctx);
  const results = await lavaTrial(plan, { ...(values['artifact-url'] ? { artifactUrl: values['artifact-url'] } : {}), ...(values.run ? { run: true } : {}), ...(values.ingest ? { ingest: values.ingest } : {}) }, ctx);
  if (!results) return EXIT_CODES.ok;
  process.stdout.write(toSummary(results));
  if (!values.quiet) process.stdout.write(`reports: ${plan.outDir}/{results.json,results.tap,junit.xml,summary.txt,lava.log}\n`);
  return exitCodeFor(results);
}

async function cmdCompare(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { markdown: { type: 'boolean' }, json: { type: 'boolean' }, html: { type: 'string' } } });
  return compareCommand(positionals, values, (text) => process.stdout.write(text));
}

async function cmdDoctor(args: string[]): Promise<number> {
  const { values, positionals } = parseArgs({ args, allowPositionals: true, options: { json: { type: 'boolean' } } });
  if (positionals.length) throw new UsageError('doctor takes no arguments', 'doctor');
  return doctor(!!values.json);
}

async function cmdSetup(ctx: StageContext): Promise<number> {
  if (process.getuid?.() !== 0) throw new KtrialError('host', 'setup installs Debian packages and must run as root', { hint: `sudo npx ktrial setup, or install them yourself: apt-get install -y ${SETUP_PACKAGES.join(' ')}` });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  ctx.progress.info('apt-get update');
  await run('apt-get', ['update'], { env, signal: ctx.signal, onLine: () => {} });
  ctx.progress.info(`apt-get install ${SETUP_PACKAGES.join(' ')}`);
  const r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...SETUP_PACKAGES], { env, signal: ctx.signal });
  if (r.exitCode !== 0) throw new KtrialError('host', `apt-get install failed (exit ${r.exitCode})`, { excerpt: r.all.trim().split('\n').slice(-10).join('\n') });
  await ensureQemuUser(ctx);
  return doctor(false);
}

/** The unprivileged user QEMU runs as when ktrial runs as root (vm/confine.ts). */
async function ensureQemuUser(ctx: StageContext): Promise<void> {
  const name = QEMU_USERS[0];
  if ((await run('getent', ['passwd', name])).exitCode === 0) return;
  ctx.progress.info(`useradd --system ${name} (QEMU runs as this user when ktrial runs as root)`);
  const r = await run('useradd', ['--system', '--no-create-home', '--home-dir', '/nonexistent', '--shell', '/usr/sbin/nologin', name]);
  if (r.exitCode !== 0) throw new KtrialError('host', `useradd ${name} failed (exit ${r.exitCode})`, { excerpt: r.all.trim() });
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  // Under `git bisect run`, a failure before the run (bad options, a bad trial file) must
  // stop the bisection, not mark the commit bad.
  const failed = (code: number) => (command === 'run' && rest.includes('--bisect') ? BISECT.abort : code);
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(EXIT_CODES.interrupted);
    process.stderr.write(`\nktrial: ${sig} received, stopping and cleaning up (send again to quit at once)\n`);
    controller.abort(new Interrupted(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: StageContext = { progress: new Progress(), signal: controller.signal };
  try {
    const dash = rest.indexOf('--');
    const own = dash >= 0 ? rest.slice(0, dash) : rest;
    if (command !== undefined && !command.startsWith('-') && (own.includes('--help') || own.includes('-h'))) {
      const help = commandUsage(USAGE, command);
      if (!help) throw new UsageError(`unknown command "${command}"`);
      process.stdout.write(`${help}\n`);
      return EXIT_CODES.ok;
    }
    switch (command) {
      case 'run':
        return await cmdRun(rest, ctx);
      case 'boot':
        return await cmdBoot(rest, ctx);
      case 'build':
        return await cmdBuild(rest, ctx);
      case 'compare':
        return await cmdCompare(rest);
      case 'lava':
        return await cmdLava(rest, ctx);
      case 'doctor':
        return await cmdDoctor(rest);
      case 'merge':
        return await mergeCommand(rest);
      case 'list':
        return await listCommand(rest);
      case 'cache':
        return await cacheCommand(rest);
      case 'setup':
        return await cmdSetup(ctx);
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return EXIT_CODES.ok;
      case '--version':
        process.stdout.write(`ktrial ${await packageVersion()} (${(await gitRevision()) ?? 'not a git checkout'})\n`);
        return EXIT_CODES.ok;
      case undefined:
        throw new UsageError('no command given');
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    if (err instanceof Interrupted || controller.signal.aborted) {
      process.stderr.write(`ktrial: interrupted; nothing half-written was kept\n`);
      return failed(EXIT_CODES.interrupted);
    }
    if (err instanceof KtrialError) {
      process.stderr.write(`${err.render()}\n`);
      return failed(EXIT_CODES[err.cls]);
    }
    const parseError = err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS');
    if (err instanceof UsageError || parseError) {
      const usage = (err instanceof UsageError ? err.command : command) ?? '';
      process.stderr.write(`ktrial: ${err.message}\n\n${commandUsage(USAGE, usage) ?? USAGE}\n`);
      return failed(EXIT_CODES['bad-input']);
    }
    process.stderr.write(`ktrial: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    return failed(EXIT_CODES.host);
  } finally {
    killAllGuests();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
