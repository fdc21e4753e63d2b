// Pure .config handling: parse, and merge fragments in order with their origins (why an
// option is gone is explain.ts, from the Kconfig language in kconfig-lang.ts).
// KernelConfig is how every later stage reads a kernel's options.
import { readFile } from 'node:fs/promises';
import { badInput } from '../common/errors.js';

export interface Origin {
  file: string;
  line: number;
}

export interface Setting {
  symbol: string;
  /** 'y', 'm', 'n' (unset), a number or a quoted string as written in .config. */
  value: string;
  origin: Origin;
}

/** Parse .config or fragment text: `CONFIG_X=v` and `# CONFIG_X is not set` lines. */
export function parseConfig(text: string, file: string): Setting[] {
  const out: Setting[] = [];
  text.split('\n').forEach((line, i) => {
    const set = /^\s*(CONFIG_[A-Za-z0-9_]+)=(.*)$/.exec(line);
    if (set) out.push({ symbol: set[1]!, value: set[2]!.trim(), origin: { file, line: i + 1 } });
    const unset = /^\s*#\s*(CONFIG_[A-Za-z0-9_]+) is not set/.exec(line);
    if (unset) out.push({ symbol: unset[1]!, value: 'n', origin: { file, line: i + 1 } });
  });
  return out;
}

export function configMap(settings: Setting[]): Map<string, string> {
  return new Map(settings.map((s) => [s.symbol, s.value]));
}

const withPrefix = (option: string) => `CONFIG_${option.replace(/^CONFIG_/, '')}`;

/**
 * A kernel's options as the later stages read them: those that are set, each with its value
 * (y, m, a number, or a string without its quotes). Absent and "n" both mean not set; an
 * option may be named with or without its CONFIG_ prefix.
 */
export class KernelConfig {
  private readonly values = new Map<string, string>();

  /** Entries in order, later ones winning; a value "n" unsets the option. */
  constructor(entries: Iterable<readonly [string, string]>) {
    for (const [option, value] of entries) {
      if (value === 'n') this.values.delete(withPrefix(option));
      else this.values.set(withPrefix(option), value.replace(/^"(.*)"$/, '$1'));
    }
  }

  static parse(text: string, file = '.config'): KernelConfig {
    return new KernelConfig(parseConfig(text, file).map((s) => [s.symbol, s.value]));
  }

  static async load(file: string): Promise<KernelConfig> {
    try {
      return KernelConfig.parse(await readFile(file, 'utf8'), file);
    } catch (err) {
      throw badInput(`cannot read the kernel config ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, { hint: 'pass the .config the kernel was built with' });
    }
  }

  /** The option's value, or undefined when it is not set. */
  get(option: string): string | undefined {
    return this.values.get(withPrefix(option));
  }

  /** This config with `options` added where it sets nothing (options built in without a symbol). */
  withDefaults(options: Readonly<Record<string, string>>): KernelConfig {
    return new KernelConfig([...Object.entries(options), ...this.values]);
  }
}

/**
 * What a trial (`require:`) or a suite (`requires:`) asks of a kernel option, in one syntax:
 * CONFIG_X (built in, =y), CONFIG_X=value, or CONFIG_X=n (not set).
 */
export interface Requirement {
  symbol: string;
  /** As written, quotes included: "n" means not set. */
  value: string;
}

export const REQUIREMENT_PATTERN = /^CONFIG_[A-Za-z0-9_]+(=.+)?$/;
export const REQUIREMENT_SYNTAX = 'CONFIG_X (=y), CONFIG_X=value, or CONFIG_X=n (not set)';

export function parseRequirement(text: string): Requirement {
  const eq = text.indexOf('=');
  return eq < 0 ? { symbol: text, value: 'y' } : { symbol: text.slice(0, eq), value: text.slice(eq + 1) };
}

/** How `config` falls short of the requirement, or undefined when it meets it. */
export function unmetRequirement(r: Requirement, config: KernelConfig): string | undefined {
  const have = config.get(r.symbol);
  if (r.value === 'n') return have === undefined ? undefined : `${r.symbol} is set (=${have}); the case needs a kernel without it`;
  if (have === r.value.replace(/^"(.*)"$/, '$1')) return undefined;
  return have === undefined ? `${r.symbol} is not set` : `${r.symbol} is =${have}, not =${r.value}`;
}

export interface Conflict {
  symbol: string;
  earlier: Setting;
  later: Setting;
}

export interface MergeResult {
  /** The requested settings, later ones winning. */
  requested: Map<string, Setting>;
  conflicts: Conflict[];
}

/** Merge layers in order (fragments, then inline options); report values that change. */
export function mergeLayers(layers: Setting[][]): MergeResult {
  const requested = new Map<string, Setting>();
  const conflicts: Conflict[] = [];
  for (const layer of layers) {
    for (const s of layer) {
      const prev = requested.get(s.symbol);
      if (prev && prev.value !== s.value) conflicts.push({ symbol: s.symbol, earlier: prev, later: s });
      requested.set(s.symbol, s);
    }
  }
  return { requested, conflicts };
}

const line = (symbol: string, value: string) => (value === 'n' ? `# ${symbol} is not set` : `${symbol}=${value}`);

/**
 * Apply requested settings to a .config text: a symbol's existing line is replaced in place
 * (appending after a `# X is not set` line would be ignored by oldconfig), new ones appended.
 */
export function applySettings(base: string, requested: Iterable<Setting>): string {
  const want = new Map<string, string>();
  for (const s of requested) want.set(s.symbol, s.value);
  const done = new Set<string>();
  const lines = base.split('\n').map((l) => {
    const m = /^(CONFIG_[A-Za-z0-9_]+)=/.exec(l) ?? /^# (CONFIG_[A-Za-z0-9_]+) is not set/.exec(l);
    if (!m || !want.has(m[1]!)) return l;
    done.add(m[1]!);
    return line(m[1]!, want.get(m[1]!)!);
  });
  while (lines.length && lines[lines.length - 1] === '') lines.pop();
  for (const [sym, v] of want) if (!done.has(sym)) lines.push(line(sym, v));
  return `${lines.join('\n')}\n`;
}
