// Trial -> source -> patched tree -> config -> kernel, as one cached step. The kernel cache
// key covers every input (source identity, each patch's hash, base target, fragment
// contents, inline options, toolchain versions, era), so an unchanged trial is a cache hit
// that touches no tree; a changed one rebuilds incrementally in the kept work tree.
import { access, copyFile, mkdir, readFile, writeFile, rename } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { cached } from '../common/cache.js';
import type { StageContext } from '../common/context.js';
import { hashValue, sha256, sha256File, shortHash } from '../common/hash.js';
import { requireTools } from '../common/hosttools.js';
import { repoPath, REPO_ROOT, writeOwnFile } from '../common/paths.js';
import { run } from '../common/proc.js';
import { configure } from '../config/configure.js';
import { KernelConfig } from '../config/kconfig.js';
import { compatSeriesFor, versionString } from '../eras/eras.js';
import { applySeries } from '../patch/apply.js';
import { loadPatchList, type Series } from '../patch/series.js';
import { rememberSource, resolveSource, type SourceTree } from '../source/source.js';
import type { RunPlan } from '../runplan.js';
import { makeKernel, PINNED_BUILD_ENV } from './build.js';
import { expectedObjects, recordFullBuild } from './buildstats.js';
import { badInput } from '../common/errors.js';
import { detectToolchain, type Toolchain } from './toolchain.js';

/** Bumped when the way ktrial builds changes in a way the inputs do not show. */
const BUILD_RECIPE = 2;

export interface KernelManifest {
  ktrialBuildRecipe: number;
  cacheKey: string;
  trial: { name: string; file: string; sha256: string };
  /** origin: how the source was obtained; none for a kernel built elsewhere. */
  source: { id: string; version: string; era: string; origin?: SourceTree['origin'] };
  /** from: the era's compat series, the trial's, or --patch; subject: the mail's, for a patch that is a mail. */
  patches: { series: string; patch: string; sha256: string; compat: boolean; from: 'compat' | 'trial' | '--patch'; subject?: string }[];
  config: { base: string; fragments: { file: string; sha256: string }[]; options: Record<string, string>; finalSha256: string };
  toolchain: Toolchain;
  make: { args: string[]; env: Record<string, string> };
  kernelRelease: string;
  bzImageSha256: string;
  /** tree: where it was built, to show decoded crash frames' files relative to the tree. */
  build: { seconds: number; warnings: number; objects: number; tree?: string };
}

export interface KernelArtifacts {
  dir: string;
  bzImage: string;
  config: string;
  /** The unstripped kernel, for decoding crash traces; absent from kernels cached before it was kept. */
  vmlinux?: string;
  buildLog: string;
  manifest: KernelManifest;
  /** The final .config's options. */
  options: KernelConfig;
  /** Set when the kernel's config is not known (a kernel given without one): why requirements cannot be judged. */
  unjudged?: string;
  cacheHit: boolean;
}

/** What the kernel stage reads of a run's plan; the build log goes to outDir while the build runs (kept there when it fails). */
export type KernelPlan = Pick<RunPlan, 'trial' | 'outDir' | 'source' | 'cc' | 'config' | 'timeouts' | 'patches' | 'upto'>;

type SeriesFrom = KernelManifest['patches'][number]['from'];

async function loadAllSeries(src: SourceTree, tc: Toolchain, patches: KernelPlan['patches'], upto: number | undefined): Promise<{ series: Series; from: SeriesFrom }[]> {
  const compat = compatSeriesFor(src.era, tc.gccMajor).map((c) => ({ path: repoPath('kernel-patches', 'compat', c.dir), from: 'compat' as const }));
  const all = [...compat, ...patches];
  const { series } = await loadPatchList(all.map((p) => p.path));
  const out = series.map((s, i) => ({ series: s, from: all[i]!.from }));
  if (upto === undefined) return out;
  const total = out.filter((s) => s.from !== 'compat').reduce((n, s) => n + s.series.patches.length, 0);
  if (upto > total) throw badInput(`--upto ${upto}: the series has ${total} patch${total === 1 ? '' : 'es'}`, { hint: `give a number from 0 to ${total}` });
  let left = upto;
  return out.map((s) => {
    if (s.from === 'compat') return s;
    const kept = s.series.patches.slice(0, left);
    left -= kept.length;
    return { ...s, series: { ...s.series, patches: kept } };
  });
}

export async function buildKernel(plan: KernelPlan, ctx: StageContext): Promise<KernelArtifacts> {
  const { trial, config } = plan;
  await requireTools(['make', 'patch', 'tar', 'perl', 'bc'], 'a kernel build');
  const tc = await detectToolchain(plan.cc);
  const src = await ctx.progress.phase('source', () => resolveSource(trial.source, plan.source, ctx));
  ctx.progress.info(`kernel ${versionString(src.version)} (era ${src.era.name}), compiler ${tc.ccVersion}`);
  const loaded = await loadAllSeries(src, tc, plan.patches, plan.upto);
  const series = loaded.map((l) => l.series);
  for (const s of series) for (const why of s.skipped) ctx.progress.info(`patches: ${s.path}: skipped ${why}`);
  const fragments = await Promise.all(config.fragments.map(async (f) => ({ file: relative(REPO_ROOT, f), sha256: await sha256File(f) })));
  const patches = loaded.flatMap(({ series: s, from }) => s.patches.map((p) => ({ series: relative(REPO_ROOT, s.path), patch: relative(REPO_ROOT, p.file), sha256: p.sha256, compat: from === 'compat', from, ...(p.subject ? { subject: p.subject } : {}) })));
  const keyInputs = {
    recipe: BUILD_RECIPE,
    source: src.id,
    era: src.era.name,
    patches: patches.map((p) => p.sha256),
    config: {
      base: config.baseFile ? { file: await sha256File(config.baseFile) } : config.base,
      fragments: fragments.map((f) => f.sha256),
      options: config.options,
      require: config.require,
      // Which fragments may lose options decides whether a build is accepted at all.
      ...(config.bestEffort.length ? { bestEffort: config.bestEffort.map((f) => relative(REPO_ROOT, f)) } : {}),
    },
    toolchain: tc,
    env: PINNED_BUILD_ENV,
  };
  const key = shortHash(hashValue(keyInputs));
  let built = false;
  const entry = await cached(
    'kernels',
    key,
    async (tmp) => {
      built = true;
      await mkdir(plan.outDir, { recursive: true });
      const buildLog = join(plan.outDir, 'build.log');
      await writeOwnFile(buildLog, `# ktrial build of ${trial.name}: kernel ${versionString(src.version)}, ${tc.ccVersion}\n# compat patches: ${patches.filter((p) => p.compat).map((p) => p.patch).join(', ') || 'none'}\n# trial patches: ${patches.filter((p) => p.from === 'trial').map((p) => p.patch).join(', ') || 'none'}\n# --patch: ${patches.filter((p) => p.from === '--patch').map((p) => p.subject ?? p.patch).join(', ') || 'none'}\n`);
      const tree = await ctx.progress.phase('patch', () => applySeries(src, series, { cc: tc.ccVersion, era: src.era.name }, ctx));
      try {
        for (const a of tree.applied) if (a.notes.length) await writeOwnFile(buildLog, `# ${relative(REPO_ROOT, a.patch)}: ${a.notes.join('; ')}\n`, 'append');
        const cfg = await ctx.progress.phase('config', () => configure(tree.dir, src.era, tc, config, trial.file, ctx, buildLog));
        // A tree without a vmlinux builds in full, so the last full build's count says how far it has got.
        const fullBuild = !(await access(join(tree.dir, 'vmlinux')).then(() => true, () => false));
        const configText = await readFile(join(tree.dir, '.config'), 'utf8');
        const estimate = fullBuild ? await expectedObjects(src.id, configText) : undefined;
        if (estimate) ctx.progress.info(`build: about ${estimate.objects} objects (the last full build of this source, ${estimate.basis})`);
        const result = await ctx.progress.phase('build', (ctl) => makeKernel(tree.dir, src.era, tc, tmp, buildLog, plan.timeouts.buildS, ctx, ctl, estimate?.objects));
        if (fullBuild) await recordFullBuild(src.id, configText, result.summary.compiled);
        const rel = await run('make', [`ARCH=${src.era.makeArch}`, '-s', 'kernelrelease'], { cwd: tree.dir, signal: ctx.signal });
        const manifest: KernelManifest = {
          ktrialBuildRecipe: BUILD_RECIPE,
          cacheKey: key,
          trial: { name: trial.name, file: relative(REPO_ROOT, trial.file), sha256: sha256(await readFile(trial.file)) },
          source: { id: src.id, version: versionString(src.version), era: src.era.name, origin: src.origin },
          patches,
          config: { base: config.baseFile ? `--config ${config.baseFile} (sha256 ${await sha256File(config.baseFile)})` : config.base, fragments, options: config.options, finalSha256: cfg.sha256 },
          toolchain: tc,
          make: { args: result.makeArgs, env: PINNED_BUILD_ENV },
          kernelRelease: rel.stdout.trim().split('\n').pop() ?? '',
          bzImageSha256: await sha256File(join(tmp, 'bzImage')),
          build: { seconds: result.seconds, warnings: result.summary.warnings, objects: result.summary.compiled, tree: tree.dir },
        };
        await writeFile(join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
        await copyFile(buildLog, join(tmp, 'build.log'));
      } finally {
        await tree.release();
      }
    },
    { onWait: (pid) => ctx.progress.info(`waiting for process ${pid}, which is building the same kernel`) },
  );
  if (!built) {
    ctx.progress.info(`kernel: cache hit ${entry.dir}`);
    ctx.progress.record({ phase: 'kernel', status: 'cached', seconds: 0, detail: key });
  }
  await rememberSource(src.spec);
  const manifest = JSON.parse(await readFile(join(entry.dir, 'manifest.json'), 'utf8')) as KernelManifest;
  const configText = await readFile(join(entry.dir, 'config'), 'utf8');
  return {
    dir: entry.dir,
    bzImage: join(entry.dir, 'bzImage'),
    config: join(entry.dir, 'config'),
    ...((await access(join(entry.dir, 'vmlinux')).then(() => true, () => false)) ? { vmlinux: join(entry.dir, 'vmlinux') } : {}),
    buildLog: join(entry.dir, 'build.log'),
    manifest,
    options: KernelConfig.parse(configText, 'config'),
    cacheHit: !built,
  };
}

/** Copy a kernel's artifacts into the user's output directory (atomically per file). */
export async function exportKernel(k: KernelArtifacts, outDir: string): Promise<void> {
  await mkdir(outDir, { recursive: true });
  const files: [string, string][] = [
    [k.bzImage, 'bzImage'],
    [k.config, 'config'],
    [join(k.dir, 'manifest.json'), 'manifest.json'],
  ];
  // After a fresh build the log is already in outDir.
  if (k.cacheHit) files.push([k.buildLog, 'build.log']);
  for (const [from, to] of files) {
    const tmp = join(outDir, `.${to}.tmp-${process.pid}`);
    await copyFile(from, tmp);
    await rename(tmp, join(outDir, to));
  }
}
