// Stage 3: patched tree + config spec -> the final .config. The base target, fragments and
// inline options are merged in order, completed by the kernel's own kconfig without
// questions, and every required option is checked in the result.
import { readFile, stat, utimes, writeFile } from 'node:fs/promises';
import { join, relative } from 'node:path';
import type { StageContext } from '../common/context.js';
import { badInput, kernelFailure } from '../common/errors.js';
import { sha256 } from '../common/hash.js';
import { run } from '../common/proc.js';
import type { KernelEra } from '../eras/eras.js';
import type { ConfigSpec } from '../trial/trial.js';
import { makeVars, type Toolchain } from '../kernel/toolchain.js';
import { applySettings, configMap, mergeLayers, parseConfig, type Conflict, type Setting } from './kconfig.js';
import { indexKconfig } from './kconfig-lang.js';
import { explainMismatches, type Mismatch, type Request } from './explain.js';

/** What the config stage hands on: the final .config and what happened on the way. */
export interface FinalConfig {
  /** The final .config text. */
  text: string;
  sha256: string;
  values: Map<string, string>;
  conflicts: Conflict[];
  /** Options of best-effort fragments that kconfig dropped or changed (warnings). */
  dropped: Mismatch[];
}

/** The tree's Kconfig, read from the file kconfig starts at. */
async function treeKconfig(tree: string, era: KernelEra) {
  const exists = (f: string) => stat(join(tree, f)).then(() => true, () => false);
  // SRCARCH is x86 from 2.6.24 on; 2.6.20-2.6.23 have arch/x86_64 and no top-level Kconfig.
  const srcarch = (await exists('arch/x86/Kconfig')) ? 'x86' : era.makeArch;
  return indexKconfig({
    root: (await exists('Kconfig')) ? 'Kconfig' : `arch/${srcarch}/Kconfig`,
    vars: { SRCARCH: srcarch, ARCH: era.makeArch },
    read: (f) => readFile(join(tree, f), 'utf8').catch(() => undefined),
  });
}

function sameSettings(a: string, b: string): boolean {
  const [x, y] = [configMap(parseConfig(a, 'a')), configMap(parseConfig(b, 'b'))];
  return x.size === y.size && [...x].every(([k, v]) => y.get(k) === v);
}

export async function configure(tree: string, era: KernelEra, tc: Toolchain, spec: ConfigSpec, trialFile: string, ctx: StageContext, logFile: string): Promise<FinalConfig> {
  if (!spec.baseFile && !era.baseTargets.includes(spec.base)) {
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
  // Older kconfig has no olddefconfig: answer every new question with its default.
  const complete = () => (era.configCompletion === 'olddefconfig' ? make('olddefconfig') : make('oldconfig', '\n'.repeat(50_000)));

  if (spec.baseFile) {
    const base = await readFile(spec.baseFile, 'utf8').catch(() => {
      throw badInput(`--config ${spec.baseFile}: no such file`);
    });
    await writeFile(dotConfig, base);
    // The file may come from another version or lack options: kconfig completes it first.
    await complete();
  } else await make(spec.base);
  const trialRel = relative(process.cwd(), trialFile);
  const layers: Setting[][] = [];
  for (const f of spec.fragments) layers.push(parseConfig(await readFile(f, 'utf8'), relative(process.cwd(), f)));
  layers.push(Object.entries(spec.options).map(([symbol, value]) => ({ symbol, value, origin: { file: trialRel, line: spec.optionLines[symbol] ?? 0 } })));
  const merged = mergeLayers(layers);
  for (const c of merged.conflicts) {
    ctx.progress.info(`config: ${c.symbol} is ${c.earlier.value} at ${c.earlier.origin.file}:${c.earlier.origin.line} and ${c.later.value} at ${c.later.origin.file}:${c.later.origin.line}; the later wins`);
  }
  await writeFile(dotConfig, applySettings(await readFile(dotConfig, 'utf8'), merged.requested.values()));
  await complete();

  const text = await readFile(dotConfig, 'utf8');
  const values = configMap(parseConfig(text, '.config'));
  // An inline option without a line in the trial came from --kconfig-add.
  const originOf = (s: Setting) => (s.origin.file === trialRel && !s.origin.line ? '--kconfig-add' : `${s.origin.file}:${s.origin.line}`);
  const asked = new Map<string, Request>([...merged.requested.values()].map((s) => [s.symbol, { symbol: s.symbol, value: s.value, origin: originOf(s) }]));
  const required: Request[] = spec.require.map((r) => ({ ...r, origin: `${trialRel} require` }));
  const requiredSyms = new Set(spec.require.map((r) => r.symbol));
  const bestEffort = new Set(spec.bestEffort.map((f) => relative(process.cwd(), f)));
  const requested = [...merged.requested.values()].filter((s) => !requiredSyms.has(s.symbol));
  const strict = requested.filter((s) => !bestEffort.has(s.origin.file)).map((s) => asked.get(s.symbol)!);
  const loose = requested.filter((s) => bestEffort.has(s.origin.file)).map((s) => asked.get(s.symbol)!);
  // Reading the tree's Kconfig takes about a second on 6.1: only when something needs explaining.
  const kidx = [...required, ...strict, ...loose].some((r) => (values.get(r.symbol) ?? 'n') !== r.value) ? await treeKconfig(tree, era) : new Map();
  const bad = explainMismatches([...required, ...strict], values, kidx, asked);
  if (bad.length) throw mismatchError(bad, trialFile);
  const dropped = explainMismatches(loose, values, kidx, asked);
  for (const d of dropped) ctx.progress.info(`config: warning: ${d.symbol}=${d.value} (${d.origin}, best-effort) became ${d.actual}. ${d.reason}`);

  // An unchanged result keeps the old file and timestamp, so make does not rebuild for
  // nothing. Settings are compared, not text: old kconfig writes the date into .config.
  if (before !== undefined && beforeStat && sameSettings(before, text)) {
    await writeFile(dotConfig, before);
    await utimes(dotConfig, beforeStat.atime, beforeStat.mtime);
    return { text: before, sha256: sha256(before), values, conflicts: merged.conflicts, dropped };
  }
  return { text, sha256: sha256(text), values, conflicts: merged.conflicts, dropped };
}

/** Options asked for by name that Kconfig dropped or changed: bad input, with the reason and the fix. */
function mismatchError(bad: Mismatch[], trialFile: string) {
  const fixes = [...new Set(bad.flatMap((m) => m.fixes))];
  const fromFragment = bad.some((m) => /\.config:\d+$/.test(m.origin));
  return badInput(`config option${bad.length > 1 ? 's' : ''} not as asked in the final .config:\n${bad.map((m) => `  ${m.symbol}: wanted ${m.value} (${m.origin}), got ${m.actual}. ${m.reason}`).join('\n')}`, {
    where: { file: trialFile },
    hint: [
      fixes.length ? `add ${fixes.map((f) => `--kconfig-add ${f}`).join(' ')} (or the same in a fragment)` : 'enable what the options above depend on, or drop them',
      ...(fromFragment ? ['a fragment meant for kernels that lack some of its options can be marked `best-effort: true` in the trial'] : []),
      'nothing was built',
    ].join('; '),
  });
}
