// Stage 3: patched tree + config spec -> the final .config. The base target, fragments and
// inline options are merged in order, completed by the kernel's own kconfig without
// questions, and every required option is checked in the result.
import { readdir, readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { StageContext } from '../common/context.js';
import { badInput, kernelFailure } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import { run } from '../common/proc.js';
import type { KernelEra } from '../eras/eras.js';
import type { ConfigSpec } from '../trial/trial.js';
import { makeVars, type Toolchain } from '../kernel/toolchain.js';
import { applySettings, checkRequired, configMap, indexKconfig, mergeLayers, parseConfig, type Conflict, type MissingOption, type Setting } from './kconfig.js';

/** What the config stage hands on: the final .config and what happened on the way. */
export interface FinalConfig {
  /** The final .config text. */
  text: string;
  sha256: string;
  values: Map<string, string>;
  conflicts: Conflict[];
  /** Options a fragment or the trial asked for that kconfig changed (not required, so a warning). */
  dropped: MissingOption[];
}

async function kconfigFiles(tree: string): Promise<{ file: string; text: string }[]> {
  const out: { file: string; text: string }[] = [];
  async function walk(rel: string): Promise<void> {
    for (const e of await readdir(join(tree, rel), { withFileTypes: true })) {
      if (e.name.startsWith('.')) continue;
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        if (r !== 'Documentation' && r !== 'tools') await walk(r);
      } else if (e.name.startsWith('Kconfig')) out.push({ file: r, text: await readFile(join(tree, r), 'utf8') });
    }
  }
  await walk('');
  return out;
}

function sameSettings(a: string, b: string): boolean {
  const [x, y] = [configMap(parseConfig(a, 'a')), configMap(parseConfig(b, 'b'))];
  return x.size === y.size && [...x].every(([k, v]) => y.get(k) === v);
}

export async function configure(tree: string, era: KernelEra, tc: Toolchain, spec: ConfigSpec, trialFile: string, ctx: StageContext, logFile: string): Promise<FinalConfig> {
  if (!era.baseTargets.includes(spec.base)) {
    throw badInput(`config base "${spec.base}" does not exist in kernels of era ${era.name}`, {
      where: { file: trialFile },
      hint: `use one of: ${era.baseTargets.join(', ')}`,
    });
  }
  const dotConfig = join(tree, '.config');
  const before = await readFile(dotConfig, 'utf8').catch(() => undefined);
  const beforeStat = await stat(dotConfig).catch(() => undefined);
  const vars = makeVars(era, tc);
  const make = async (target: string, input?: string) => {
    const r = await run('make', [...vars, target], { cwd: tree, signal: ctx.signal, logFile, ...(input !== undefined ? { input } : {}) });
    if (r.exitCode !== 0) throw kernelFailure(`make ${target} failed (exit ${r.exitCode})`, { excerpt: r.all.trim().split('\n').slice(-15).join('\n'), hint: `see ${logFile}` });
  };

  await make(spec.base);
  const layers: Setting[][] = [];
  for (const f of spec.fragments) layers.push(parseConfig(await readFile(f, 'utf8'), relative(process.cwd(), f)));
  layers.push(Object.entries(spec.options).map(([symbol, value]) => ({ symbol, value, origin: { file: relative(process.cwd(), trialFile), line: spec.optionLines[symbol] ?? 0 } })));
  const merged = mergeLayers(layers);
  for (const c of merged.conflicts) {
    ctx.progress.info(`config: ${c.symbol} is ${c.earlier.value} at ${c.earlier.origin.file}:${c.earlier.origin.line} and ${c.later.value} at ${c.later.origin.file}:${c.later.origin.line}; the later wins`);
  }
  await writeFile(dotConfig, applySettings(await readFile(dotConfig, 'utf8'), merged.requested.values()));
  if (era.configCompletion === 'olddefconfig') await make('olddefconfig');
  // Older kconfig has no olddefconfig: answer every new question with its default.
  else await make('oldconfig', '\n'.repeat(50_000));

  const text = await readFile(dotConfig, 'utf8');
  const values = configMap(parseConfig(text, '.config'));
  const requested = [...merged.requested.values()].map((s) => ({ symbol: s.symbol, value: s.value }));
  const needKconfig = [...spec.require, ...requested].some((r) => (values.get(r.symbol) ?? 'n') !== r.value);
  const kidx = needKconfig ? indexKconfig(await kconfigFiles(tree)) : new Map();
  const missing = checkRequired(spec.require, values, kidx);
  if (missing.length) {
    throw badInput(`required config option${missing.length > 1 ? 's' : ''} not in the final .config:\n${missing.map((m) => `  ${m.symbol}: wanted ${m.wanted}, got ${m.actual}. ${m.reason}`).join('\n')}`, {
      where: { file: trialFile },
      hint: 'enable the dependencies named above in a fragment (or drop the requirement); nothing was built',
    });
  }
  const requiredSyms = new Set(spec.require.map((r) => r.symbol));
  const dropped = checkRequired(requested.filter((r) => !requiredSyms.has(r.symbol)), values, kidx);
  for (const d of dropped) ctx.progress.info(`config: warning: ${d.symbol}=${d.wanted} was requested but the final value is ${d.actual}. ${d.reason}`);

  // An unchanged result keeps the old file and timestamp, so make does not rebuild for
  // nothing. Settings are compared, not text: old kconfig writes the date into .config.
  if (before !== undefined && beforeStat && sameSettings(before, text)) {
    await writeFile(dotConfig, before);
    await utimes(dotConfig, beforeStat.atime, beforeStat.mtime);
    return { text: before, sha256: sha256(before), values, conflicts: merged.conflicts, dropped };
  }
  return { text, sha256: sha256(text), values, conflicts: merged.conflicts, dropped };
}
