// ktrial's command line. Each command runs the stages it needs in order; every failure is
// turned into one message and one exit code by its class.
import { parseArgs } from 'node:util';
import { join, resolve } from 'node:path';
import { EXIT, exitCodeFor, Interrupted, KtrialError } from './common/errors.js';
import { HOST_FILES, HOST_TOOLS, SETUP_PACKAGES, which } from './common/hosttools.js';
import { Progress } from './common/progress.js';
import { run } from './common/proc.js';
import { access } from 'node:fs/promises';
import type { StageContext } from './common/context.js';
import { loadTrial } from './trial/trial.js';
import { buildKernel, exportKernel } from './kernel/pipeline.js';

const USAGE = `usage: ktrial <command> [options]

commands:
  build TRIAL [--source PATH|URL|REPO@REF|debian:PKG] [--cc gcc-N] [--out DIR] [--timeout-build S]
        build the trial's kernel (cached by its inputs) into DIR (default out/<trial>)
  doctor
        list the host tools ktrial uses and which are missing
  setup
        install every Debian package ktrial uses (as root)

exit codes: 0 all as expected, 1 some case not as expected, 2 bad input,
            3 kernel-side failure, 4 host-side failure, 130 interrupted`;

interface Common {
  source?: string;
  cc?: string;
  out?: string;
  'timeout-build'?: string;
}

function numberOpt(v: string | undefined, name: string): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new KtrialError('bad-input', `--${name} takes a whole number of seconds, got "${v}"`);
  return n;
}

async function cmdBuild(args: string[], ctx: StageContext): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: { source: { type: 'string' }, cc: { type: 'string' }, out: { type: 'string' }, 'timeout-build': { type: 'string' } },
  });
  const opts = values as Common;
  if (positionals.length !== 1) throw new KtrialError('bad-input', 'build takes one trial file', { hint: 'ktrial build configs/trials/<trial>.yaml' });
  const trial = await loadTrial(positionals[0]!);
  if (opts.cc) trial.cc = opts.cc;
  const outDir = resolve(opts.out ?? join('out', trial.name));
  const timeout = numberOpt(opts['timeout-build'], 'timeout-build');
  const k = await buildKernel(trial, { outDir, ...(opts.source ? { sourceOverride: opts.source } : {}), ...(timeout ? { buildTimeoutS: timeout } : {}) }, ctx);
  await exportKernel(k, outDir);
  ctx.progress.info(`kernel ${k.manifest.kernelRelease} ${k.cacheHit ? '(cached)' : `built in ${k.manifest.build.seconds.toFixed(0)}s, ${k.manifest.build.warnings} warnings`}: ${join(outDir, 'bzImage')}`);
  return EXIT.ok;
}

async function cmdDoctor(): Promise<number> {
  let missing = 0;
  const pkgs = new Set<string>();
  for (const t of HOST_TOOLS) {
    const at = await which(t.command);
    if (!at) {
      missing++;
      pkgs.add(t.pkg);
    }
    process.stdout.write(`${at ? 'ok     ' : 'MISSING'} ${t.command.padEnd(20)} ${t.pkg.padEnd(18)} ${t.usedFor}\n`);
  }
  for (const f of HOST_FILES) {
    const ok = await access(f.path).then(() => true, () => false);
    if (!ok) {
      missing++;
      pkgs.add(f.pkg);
    }
    process.stdout.write(`${ok ? 'ok     ' : 'MISSING'} ${f.path.padEnd(20)} ${f.pkg.padEnd(18)} ${f.usedFor}\n`);
  }
  if (missing) {
    process.stdout.write(`\n${missing} missing. Install: sudo apt-get install -y ${[...pkgs].join(' ')}   (or: sudo npx ktrial setup)\n`);
    return EXIT.host;
  }
  process.stdout.write('\nall host tools are present\n');
  return EXIT.ok;
}

async function cmdSetup(ctx: StageContext): Promise<number> {
  if (process.getuid?.() !== 0) throw new KtrialError('host', 'setup installs Debian packages and must run as root', { hint: `sudo npx ktrial setup, or install them yourself: apt-get install -y ${SETUP_PACKAGES.join(' ')}` });
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  ctx.progress.info('apt-get update');
  await run('apt-get', ['update'], { env, signal: ctx.signal, onLine: () => {} });
  ctx.progress.info(`apt-get install ${SETUP_PACKAGES.join(' ')}`);
  const r = await run('apt-get', ['install', '-y', '--no-install-recommends', ...SETUP_PACKAGES], { env, signal: ctx.signal });
  if (r.exitCode !== 0) throw new KtrialError('host', `apt-get install failed (exit ${r.exitCode})`, { excerpt: r.all.trim().split('\n').slice(-10).join('\n') });
  return cmdDoctor();
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const controller = new AbortController();
  let signals = 0;
  const onSignal = (sig: NodeJS.Signals) => {
    signals++;
    if (signals > 1) process.exit(EXIT.interrupted);
    process.stderr.write(`\nktrial: ${sig} received, stopping and cleaning up (send again to quit at once)\n`);
    controller.abort(new Interrupted(sig));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const ctx: StageContext = { progress: new Progress(), signal: controller.signal };
  try {
    switch (command) {
      case 'build':
        return await cmdBuild(rest, ctx);
      case 'doctor':
        return await cmdDoctor();
      case 'setup':
        return await cmdSetup(ctx);
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        process.stdout.write(`${USAGE}\n`);
        return command === undefined ? EXIT.badInput : EXIT.ok;
      default:
        process.stderr.write(`ktrial: unknown command "${command}"\n${USAGE}\n`);
        return EXIT.badInput;
    }
  } catch (err) {
    if (err instanceof Interrupted || controller.signal.aborted) {
      process.stderr.write(`ktrial: interrupted; nothing half-written was kept\n`);
      return EXIT.interrupted;
    }
    if (err instanceof KtrialError) {
      process.stderr.write(`${err.render()}\n`);
      return exitCodeFor(err.cls);
    }
    if (err instanceof TypeError && (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      process.stderr.write(`ktrial: ${err.message}\n${USAGE}\n`);
      return EXIT.badInput;
    }
    process.stderr.write(`ktrial: internal error: ${err instanceof Error ? err.stack : String(err)}\n`);
    return EXIT.host;
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}
