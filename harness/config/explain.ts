// Why an option the user asked for is not in the final .config, told from Kconfig: the
// unmet dependency (with the `depends on`, `if`, `menu` or `choice` it comes from), followed
// down to the first symbol the user can set, and the setting that would fix it.
import { conditionFrom, dependencies, evaluate, exprText, promptConditions, type Condition, type Definition, type Expr, type KconfigIndex, type KconfigSymbol, type Tri } from './kconfig-lang.js';

/** An option asked for by name: in a fragment, the trial's options, --kconfig-add or require. */
export interface Request {
  symbol: string;
  value: string;
  /** Where it was asked for, e.g. "--kconfig-add", "configs/fragments/x.config:3". */
  origin: string;
}

export interface Mismatch extends Request {
  actual: string;
  reason: string;
  /** Settings that would fix it, e.g. "CONFIG_RUNTIME_TESTING_MENU=y". */
  fixes: string[];
}

type Leaf = { on: string } | { off: string } | { text: string };

/** Check requests against the final config and explain each one that does not hold. */
export function explainMismatches(requests: Request[], values: Map<string, string>, index: KconfigIndex, asked: Map<string, Request>): Mismatch[] {
  const out: Mismatch[] = [];
  for (const r of requests) {
    const actual = values.get(r.symbol) ?? 'n';
    if (actual === r.value) continue;
    const why = new Why(values, index, asked);
    why.top(r.symbol, r.value, actual);
    out.push({ ...r, actual, reason: why.parts.join('; '), fixes: [...new Set(why.fixes)] });
  }
  return out;
}

const MAX_DEPTH = 8;

class Why {
  readonly parts: string[] = [];
  readonly fixes: string[] = [];
  private readonly seen = new Set<string>();

  constructor(
    private readonly values: Map<string, string>,
    private readonly index: KconfigIndex,
    private readonly asked: Map<string, Request>,
  ) {}

  top(symbol: string, wanted: string, actual: string): void {
    if (!this.index.has(symbol)) {
      this.parts.push(`${symbol} does not exist in this kernel's Kconfig`);
      return;
    }
    if (wanted === 'n') return this.off(symbol, 0);
    if (wanted === 'm' && actual === 'y') return this.forcedY(symbol);
    if (this.on(symbol, wanted, 0)) return;
    const def = this.definition(this.index.get(symbol)!);
    this.parts.push(
      actual === 'n' || /^[ym]$/.test(wanted)
        ? `Kconfig (${def.file}:${def.line}) shows nothing unmet that can be evaluated here; a toolchain test ($(...)) in its dependencies may have failed`
        : `kconfig made it ${actual}: ${wanted} is outside what Kconfig (${def.file}:${def.line}) allows`,
    );
  }

  /** The definition that decides: the first with a prompt (one the user can set). */
  private definition(s: KconfigSymbol): Definition {
    return s.definitions.find((d) => d.prompt !== undefined) ?? s.definitions[0]!;
  }

  private eval(e: Expr): Tri {
    return evaluate(e, this.values, this.index);
  }

  private isSet(symbol: string): boolean {
    return (this.values.get(symbol) ?? 'n') !== 'n';
  }

  private askedNote(symbol: string): string {
    const a = this.asked.get(symbol);
    return a ? ` (${a.origin} asks for ${a.value})` : '';
  }

  /** Why `symbol` is below `wanted`; false when Kconfig shows no reason. */
  private on(symbol: string, wanted: string, depth: number): boolean {
    this.seen.add(symbol);
    const s = this.index.get(symbol);
    if (!s) return false;
    const def = this.definition(s);
    const found = this.blocked(s, def, wanted, depth);
    // Below the option asked for, a symbol with a prompt must be set too, once what blocks it is fixed.
    if (depth > 0 && def.prompt !== undefined) this.fixes.push(`${symbol}=${wanted}`);
    return found || depth > 0;
  }

  /** What keeps the user's value for `def` from counting: dependencies, no prompt, a hidden prompt, another choice entry. */
  private blocked(s: KconfigSymbol, def: Definition, wanted: string, depth: number): boolean {
    const need: Tri = wanted === 'm' || !/^[ym]$/.test(wanted) ? 1 : 2;
    const unmet = dependencies(def).filter((c) => this.eval(c.expr) < need);
    if (unmet.length) {
      this.parts.push(`${s.symbol} depends on ${describe(unmet)}`);
      this.leaves(unmet, need, depth);
      return true;
    }
    if (def.prompt === undefined) {
      this.selectedOnly(s, depth);
      return true;
    }
    const hidden = promptConditions(def).filter((c) => this.eval(c.expr) === 0);
    if (hidden.length) {
      this.parts.push(`${s.symbol}'s prompt is shown only if ${describe(hidden)}`);
      this.leaves(hidden, 1, depth);
      return true;
    }
    const chosen = def.choice?.members.find((m) => m !== s.symbol && this.values.get(m) === 'y');
    if (def.choice && chosen) {
      this.parts.push(`${s.symbol} is an entry of the choice "${def.choice.title}" at ${def.choice.file}:${def.choice.line}, and ${chosen} is the one chosen${this.askedNote(chosen)}`);
      return true;
    }
    return false;
  }

  /** Say which parts of unmet conditions are off, and follow the ones to change. */
  private leaves(conds: Condition[], need: Tri, depth: number): void {
    const all: Leaf[] = [];
    const follow: Leaf[] = [];
    for (const c of conds) {
      const l = this.unmetLeaves(c.expr, need);
      all.push(...l.all);
      follow.push(...l.follow);
    }
    this.parts.push(
      all
        .map((l) => {
          if ('text' in l) return `${l.text} does not hold`;
          if ('off' in l) return `${l.off} is set${this.askedNote(l.off)}`;
          if (!this.index.has(l.on)) return `${l.on} does not exist in this kernel's Kconfig`;
          return `${l.on} is ${this.values.get(l.on) === 'm' ? 'm' : 'not set'}${this.askedNote(l.on)}`;
        })
        .join(', '),
    );
    if (depth >= MAX_DEPTH) return;
    for (const l of follow) {
      if ('on' in l && this.index.has(l.on) && !this.seen.has(l.on)) this.on(l.on, 'y', depth + 1);
      if ('off' in l && !this.seen.has(l.off)) this.off(l.off, depth + 1);
    }
  }

  /** The symbols that keep `e` below `need`: all of them, and those worth changing (one alternative of an `||`). */
  private unmetLeaves(e: Expr, need: Tri): { all: Leaf[]; follow: Leaf[] } {
    switch (e.kind) {
      case 'word': {
        const l = /^[A-Za-z0-9_]+$/.test(e.name) && !/^[ymn]$/.test(e.name) ? [{ on: `CONFIG_${e.name}` }] : [{ text: e.name }];
        return { all: l, follow: l };
      }
      case 'not': {
        const l = e.arg.kind === 'word' ? [{ off: `CONFIG_${e.arg.name}` }] : [{ text: exprText(e) }];
        return { all: l, follow: l };
      }
      case 'and': {
        const parts = [e.left, e.right].filter((x) => this.eval(x) < need).map((x) => this.unmetLeaves(x, need));
        return { all: parts.flatMap((p) => p.all), follow: parts.flatMap((p) => p.follow) };
      }
      case 'or': {
        const parts = [e.left, e.right].map((x) => this.unmetLeaves(x, need));
        // Change one alternative: the first whose symbols all exist in this kernel.
        const usable = parts.find((p) => p.follow.every((l) => !('on' in l) || this.index.has(l.on))) ?? parts[0]!;
        return { all: parts.flatMap((p) => p.all), follow: usable.follow };
      }
      default:
        return { all: [{ text: exprText(e) }], follow: [] };
    }
  }

  /** A symbol without a prompt is on only when something selects it. */
  private selectedOnly(s: KconfigSymbol, depth: number): void {
    const by = s.selectedBy.filter((x) => this.index.has(x.symbol));
    if (!by.length) {
      this.parts.push(`${s.symbol} has no prompt, and nothing selects it: only its default sets it`);
      return;
    }
    const names = by.map((x) => x.symbol);
    this.parts.push(`${s.symbol} has no prompt: it is set only when selected, by ${names.length > 4 ? `${names.slice(0, 4).join(', ')} and ${names.length - 4} more` : names.join(', ')}`);
    const settable = by.find((x) => this.settable(x.symbol));
    if (settable) {
      this.fixes.push(`${settable.symbol}=y`);
      return;
    }
    const next = by.find((x) => !this.seen.has(x.symbol));
    if (!next || depth >= MAX_DEPTH) return;
    this.parts.push(`${next.symbol} is not set`);
    this.on(next.symbol, 'y', depth + 1);
  }

  /** Whether the user can set `symbol` to y now: a prompt shown, dependencies met. */
  private settable(symbol: string): boolean {
    const s = this.index.get(symbol);
    if (!s) return false;
    const def = this.definition(s);
    return def.prompt !== undefined && [...dependencies(def), ...promptConditions(def)].every((c) => this.eval(c.expr) === 2);
  }

  /** Why `symbol` is set although n was asked for. */
  private off(symbol: string, depth: number): void {
    this.seen.add(symbol);
    const s = this.index.get(symbol);
    if (!s) return;
    const selectors = s.selectedBy.filter((x) => this.isSet(x.symbol) && (!x.cond || this.eval(x.cond) > 0));
    if (selectors.length) {
      this.parts.push(`${symbol} is selected by ${selectors.map((x) => `${x.symbol} (${x.at})${this.askedNote(x.symbol)}`).join(', ')}`);
      for (const x of selectors) {
        if (this.index.get(x.symbol)?.definitions.some((d) => d.prompt !== undefined)) this.fixes.push(`${x.symbol}=n`);
        else if (!this.seen.has(x.symbol) && depth < MAX_DEPTH) this.off(x.symbol, depth + 1);
      }
      return;
    }
    const def = this.definition(s);
    if (def.choice && !def.choice.optional) {
      this.parts.push(`${symbol} is the chosen entry of the choice "${def.choice.title}" at ${def.choice.file}:${def.choice.line}, which must have one`);
      const other = def.choice.members.find((m) => m !== symbol && this.settable(m));
      if (other) this.fixes.push(`${other}=y`);
      return;
    }
    if (def.prompt === undefined) {
      this.parts.push(`${symbol} has no prompt, so its default (${def.file}:${def.line}) decides`);
      return;
    }
    const hidden = promptConditions(def).filter((c) => this.eval(c.expr) === 0);
    if (hidden.length) {
      this.parts.push(`${symbol}'s prompt is shown only if ${describe(hidden)}, so its default (${def.file}:${def.line}) decides`);
      this.leaves(hidden, 1, depth);
      return;
    }
    this.parts.push(`Kconfig (${def.file}:${def.line}) shows nothing that keeps it set`);
  }

  /** Wanted m, got y: modules are off, or a select forces y. */
  private forcedY(symbol: string): void {
    if (!this.isSet('CONFIG_MODULES')) {
      this.parts.push(`CONFIG_MODULES is not set, so ${symbol} can only be y or n`);
      this.fixes.push('CONFIG_MODULES=y');
      return;
    }
    const s = this.index.get(symbol)!;
    const selectors = s.selectedBy.filter((x) => this.values.get(x.symbol) === 'y');
    this.parts.push(selectors.length ? `${symbol} is selected by ${selectors.map((x) => `${x.symbol} (${x.at})`).join(', ')}, which are y` : `Kconfig (${this.definition(s).file}:${this.definition(s).line}) shows nothing that forces y`);
  }
}

function describe(conds: Condition[]): string {
  return conds.map((c) => `${c.text} (${conditionFrom(c)})`).join(' and on ');
}
