// The Kconfig language, as far as explaining a config needs it: which symbols exist, what
// each depends on (its own `depends on`, and every enclosing `if`, `menu` and `choice`,
// across `source`d files), whether the user can set it (a prompt, `visible if`), and which
// symbols `select` it. Help text is skipped by indentation, as kconfig's lexer does, so a
// help line that reads like Kconfig is never taken for it.

export type Expr =
  /** A symbol, or a constant word (y, m, n, a number). */
  | { kind: 'word'; name: string }
  | { kind: 'string'; value: string }
  /** `$(...)`, expanded by kconfig's preprocessor (a toolchain test); its value is unknown here. */
  | { kind: 'macro'; text: string }
  | { kind: 'not'; arg: Expr }
  | { kind: 'and' | 'or'; left: Expr; right: Expr }
  | { kind: 'cmp'; op: string; left: Expr; right: Expr };

/** A condition on an entry, with where it comes from for messages. */
export interface Condition {
  expr: Expr;
  text: string;
  /** The entry's own `depends on` or prompt `if` line (file:line), or the enclosing block that sets it. */
  origin: { kind: 'depends' | 'prompt'; at: string } | { kind: 'block'; block: Block };
}

/** Where a condition comes from, e.g. "the `if` block at lib/Kconfig.debug:2060". */
export function conditionFrom(c: Condition): string {
  const o = c.origin;
  if (o.kind !== 'block') return o.kind === 'depends' ? `its \`depends on\` at ${o.at}` : `its prompt's \`if\` at ${o.at}`;
  const b = o.block;
  return b.kind === 'if' ? `the \`if\` block at ${b.file}:${b.line}` : `the ${b.kind} "${b.title}" at ${b.file}:${b.line}`;
}

/** An enclosing `if`, `menu` or `choice`: its conditions apply to every entry inside. */
export interface Block {
  kind: 'if' | 'menu' | 'choice';
  file: string;
  line: number;
  title: string;
  depends: Condition[];
  /** `visible if` of a menu: hides the prompts inside without changing dependencies. */
  visibleIf: Condition[];
  /** Entries of a choice. */
  members: string[];
  /** A choice that may have no entry chosen. */
  optional: boolean;
}

/** One `config`/`menuconfig` entry; a symbol may be defined in several places. */
export interface Definition {
  symbol: string;
  file: string;
  line: number;
  type?: string;
  /** The prompt's own `if`, when it has one, is kept in promptIf. */
  prompt?: string;
  promptIf?: Condition;
  depends: Condition[];
  /** Enclosing blocks, outermost first. */
  blocks: Block[];
  /** The choice this entry is one of. */
  choice?: Block;
  selects: { symbol: string; cond?: Expr }[];
}

export interface Selector {
  symbol: string;
  cond?: Expr;
  /** Where the select line is. */
  at: string;
}

export interface KconfigSymbol {
  symbol: string;
  definitions: Definition[];
  selectedBy: Selector[];
}

export type KconfigIndex = Map<string, KconfigSymbol>;

const sym = (name: string) => `CONFIG_${name}`;

/** Every condition an entry's value depends on: enclosing blocks, then its own. */
export function dependencies(def: Definition): Condition[] {
  return [...def.blocks.flatMap((b) => b.depends), ...def.depends];
}

/** Conditions that decide whether the user sees the entry's prompt, beyond its dependencies. */
export function promptConditions(def: Definition): Condition[] {
  return [...def.blocks.flatMap((b) => b.visibleIf), ...(def.promptIf ? [def.promptIf] : [])];
}

// ---- expressions

function tokenize(text: string): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (/\s/.test(c)) i++;
    else if (text.startsWith('$(', i)) {
      let depth = 0;
      let j = i;
      for (; j < text.length; j++) {
        if (text[j] === '(') depth++;
        else if (text[j] === ')' && --depth === 0) break;
      }
      out.push(text.slice(i, j + 1));
      i = j + 1;
    } else if (c === '"' || c === "'") {
      const j = text.indexOf(c, i + 1);
      const end = j < 0 ? text.length : j + 1;
      out.push(text.slice(i, end));
      i = end;
    } else {
      const op = /^(&&|\|\||!=|<=|>=|[()!=<>])/.exec(text.slice(i));
      const word = op ? undefined : /^[^\s()!=<>&|"']+/.exec(text.slice(i));
      const t = op?.[0] ?? word?.[0] ?? c;
      out.push(t);
      i += t.length;
    }
  }
  return out;
}

/** Parse a Kconfig expression; what cannot be parsed becomes an unknown term. */
export function parseExpr(text: string): Expr {
  const toks = tokenize(text);
  let p = 0;
  const peek = () => toks[p];
  function primary(): Expr {
    const t = toks[p++];
    if (t === undefined) throw new Error('expression ends early');
    if (t === '!') return { kind: 'not', arg: primary() };
    if (t === '(') {
      const e = or();
      if (toks[p++] !== ')') throw new Error('unbalanced parenthesis');
      return e;
    }
    const left = atom(t);
    const op = peek();
    if (op && /^(=|!=|<|<=|>|>=)$/.test(op)) {
      p++;
      const r = toks[p++];
      if (r === undefined) throw new Error('comparison ends early');
      return { kind: 'cmp', op, left, right: atom(r) };
    }
    return left;
  }
  /** A left-associative chain of `operand op operand ...`. */
  const chain = (kind: 'and' | 'or', op: string, operand: () => Expr) => (): Expr => {
    let e = operand();
    while (peek() === op) {
      p++;
      e = { kind, left: e, right: operand() };
    }
    return e;
  };
  const or = chain('or', '||', chain('and', '&&', primary));
  try {
    const e = or();
    if (p !== toks.length) throw new Error('trailing tokens');
    return e;
  } catch {
    return { kind: 'macro', text };
  }
}

function atom(t: string): Expr {
  if (t.startsWith('$(')) return { kind: 'macro', text: t };
  if (t.startsWith('"') || t.startsWith("'")) return { kind: 'string', value: t.slice(1, -1) };
  return { kind: 'word', name: t };
}

export function exprText(e: Expr): string {
  switch (e.kind) {
    case 'word':
      return e.name;
    case 'string':
      return `"${e.value}"`;
    case 'macro':
      return e.text;
    case 'not':
      return e.arg.kind === 'word' ? `!${exprText(e.arg)}` : `!(${exprText(e.arg)})`;
    case 'cmp':
      return `${exprText(e.left)} ${e.op} ${exprText(e.right)}`;
    case 'and':
    case 'or': {
      const sub = (x: Expr) => (x.kind === 'or' && e.kind === 'and' ? `(${exprText(x)})` : exprText(x));
      return `${sub(e.left)} ${e.kind === 'and' ? '&&' : '||'} ${sub(e.right)}`;
    }
  }
}

/** Tristate values as kconfig computes them: n 0, m 1, y 2. */
export type Tri = 0 | 1 | 2;

/**
 * Evaluate an expression against a final .config. Symbols absent from it are n; words that
 * name no symbol are constants. A `$(...)` test counts as met: kconfig already ran it, and
 * only what the user can change is worth explaining.
 */
export function evaluate(e: Expr, values: Map<string, string>, index: KconfigIndex): Tri {
  switch (e.kind) {
    case 'macro':
      return 2;
    case 'string':
      return 0;
    case 'word': {
      const v = wordValue(e.name, values, index);
      return v === 'y' ? 2 : v === 'm' ? 1 : 0;
    }
    case 'not':
      return (2 - evaluate(e.arg, values, index)) as Tri;
    case 'and':
      return Math.min(evaluate(e.left, values, index), evaluate(e.right, values, index)) as Tri;
    case 'or':
      return Math.max(evaluate(e.left, values, index), evaluate(e.right, values, index)) as Tri;
    case 'cmp': {
      const [a, b] = [operandValue(e.left, values, index), operandValue(e.right, values, index)];
      if (a === undefined || b === undefined) return 2;
      const [x, y] = [Number(a), Number(b)];
      const c = a !== '' && b !== '' && !Number.isNaN(x) && !Number.isNaN(y) ? Math.sign(x - y) : a.localeCompare(b);
      const holds = { '=': c === 0, '!=': c !== 0, '<': c < 0, '<=': c <= 0, '>': c > 0, '>=': c >= 0 }[e.op] ?? true;
      return holds ? 2 : 0;
    }
  }
}

function wordValue(name: string, values: Map<string, string>, index: KconfigIndex): string {
  if (name === 'y' || name === 'm' || name === 'n') return name;
  const v = values.get(sym(name));
  if (v !== undefined) return v.replace(/^"(.*)"$/, '$1');
  return index.has(sym(name)) ? 'n' : name;
}

function operandValue(e: Expr, values: Map<string, string>, index: KconfigIndex): string | undefined {
  if (e.kind === 'word') return wordValue(e.name, values, index);
  if (e.kind === 'string') return e.value;
  return undefined;
}

// ---- files

/** Column of the first non-blank character, tabs to the next multiple of 8 (kconfig's rule). */
function indentOf(line: string): number {
  let col = 0;
  for (const c of line) {
    if (c === '\t') col = (col & ~7) + 8;
    else if (c === ' ') col++;
    else break;
  }
  return col;
}

/** The line without a `#` comment (outside quotes). */
function stripComment(line: string): string {
  let quote = '';
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = '';
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '#') return line.slice(0, i);
  }
  return line;
}

const unquote = (s: string) => s.trim().replace(/^"(.*)"$/, '$1').replace(/^'(.*)'$/, '$1');

/** `"prompt" [if cond]` */
function promptAndCond(rest: string): { prompt?: string; cond?: string } {
  const m = /^("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')\s*(?:if\s+(.+))?$/.exec(rest.trim());
  if (!m) return {};
  return { prompt: unquote(m[1]!), ...(m[2] ? { cond: m[2].trim() } : {}) };
}

export interface KconfigSource {
  /** The first file kconfig reads, relative to the tree: `Kconfig` in recent kernels, `arch/<arch>/Kconfig` in old ones. */
  root: string;
  /** Values for `$(NAME)` and `$NAME` in `source` lines: SRCARCH, ARCH. */
  vars: Record<string, string>;
  /** A file's text by its path relative to the tree; undefined when it does not exist. */
  read(file: string): Promise<string | undefined>;
}

/** Read a kernel's Kconfig from its root, following `source` lines, into an index of its symbols. */
export async function indexKconfig(src: KconfigSource): Promise<KconfigIndex> {
  const index: KconfigIndex = new Map();
  const selects: { from: string; to: string; cond?: Expr; at: string }[] = [];
  const stack: Block[] = [];
  const reading = new Set<string>();

  const expand = (path: string) => path.replace(/\$\((\w+)\)|\$(\w+)/g, (all, a: string | undefined, b: string | undefined) => src.vars[(a ?? b)!] ?? all);

  async function parseFile(file: string): Promise<void> {
    const text = await src.read(file);
    if (text === undefined || reading.has(file)) return;
    reading.add(file);
    const raw = text.split('\n');
    // The entry or block that attribute lines (depends on, select, prompt, ...) belong to.
    let cur: { def: Definition } | { block: Block } | undefined;
    let helpIndent: number | undefined;
    let inHelp = false;
    for (let i = 0; i < raw.length; i++) {
      const lineNo = i + 1;
      let line = raw[i]!;
      if (inHelp) {
        if (line.trim() === '') continue;
        const ind = indentOf(line);
        // Help ends at a line starting in column 0 or indented less than its first line.
        if (ind > 0 && (helpIndent === undefined || ind >= helpIndent)) {
          helpIndent ??= ind;
          continue;
        }
        inHelp = false;
      }
      while (line.endsWith('\\') && i + 1 < raw.length) line = line.slice(0, -1) + raw[++i]!;
      const l = stripComment(line).trim();
      if (!l) continue;
      const where = `${file}:${lineNo}`;
      const kw = /^(\S+)\s*(.*)$/.exec(l)!;
      const [word, rest] = [kw[1]!, kw[2]!];
      const cond = (text: string, origin: Condition['origin']): Condition => ({ expr: parseExpr(text), text: text.trim(), origin });
      switch (word) {
        case 'config':
        case 'menuconfig': {
          const symbol = sym(rest.trim());
          const def: Definition = { symbol, file, line: lineNo, depends: [], blocks: [...stack], selects: [] };
          const entry = index.get(symbol) ?? { symbol, definitions: [], selectedBy: [] };
          entry.definitions.push(def);
          index.set(symbol, entry);
          // Entries of a choice may sit inside `if` blocks within it, not inside a menu.
          const choice = [...stack].reverse().find((b) => b.kind !== 'if');
          if (choice?.kind === 'choice') {
            def.choice = choice;
            choice.members.push(symbol);
          }
          cur = { def };
          break;
        }
        case 'menu':
        case 'choice':
        case 'if': {
          const block: Block = {
            kind: word,
            file,
            line: lineNo,
            title: word === 'if' ? rest.trim() : unquote(rest),
            depends: [],
            visibleIf: [],
            members: [],
            optional: false,
          };
          if (word === 'if') block.depends.push(cond(rest, { kind: 'block', block }));
          stack.push(block);
          cur = word === 'if' ? undefined : { block };
          break;
        }
        case 'endmenu':
        case 'endchoice':
        case 'endif': {
          const kind = word.slice(3);
          const at = stack.map((b) => b.kind).lastIndexOf(kind as Block['kind']);
          if (at >= 0) stack.length = at;
          cur = undefined;
          break;
        }
        case 'source':
        case 'rsource':
        case 'osource':
        case 'orsource': {
          const path = expand(unquote(rest));
          cur = undefined;
          await parseFile(word.startsWith('r') || word.startsWith('or') ? `${file.replace(/[^/]*$/, '')}${path}` : path);
          break;
        }
        case 'comment':
        case 'mainmenu':
          cur = undefined;
          break;
        case 'help':
        case '---help---':
          inHelp = true;
          helpIndent = undefined;
          break;
        default:
          if (cur) attribute(cur, word, rest, where, cond);
      }
    }
    reading.delete(file);
  }

  function attribute(cur: { def: Definition } | { block: Block }, word: string, rest: string, where: string, cond: (text: string, origin: Condition['origin']) => Condition): void {
    if (word === 'depends' || word === 'visible') {
      const m = word === 'depends' ? /^(?:on\s+)?(.+)$/.exec(rest) : /^if\s+(.+)$/.exec(rest);
      if (!m) return;
      if ('def' in cur) {
        if (word === 'depends') cur.def.depends.push(cond(m[1]!, { kind: 'depends', at: where }));
        return;
      }
      const block = cur.block;
      (word === 'depends' ? block.depends : block.visibleIf).push(cond(m[1]!, { kind: 'block', block }));
      return;
    }
    if ('block' in cur) {
      if (/^(prompt|bool|boolean|tristate)$/.test(word)) cur.block.title = promptAndCond(rest).prompt ?? cur.block.title;
      else if (word === 'optional') cur.block.optional = true;
      return;
    }
    const def = cur.def;
    if (/^(bool|boolean|tristate|string|int|hex|prompt)$/.test(word)) {
      if (word !== 'prompt') def.type = word === 'boolean' ? 'bool' : word;
      const p = promptAndCond(rest);
      if (p.prompt !== undefined) {
        def.prompt = p.prompt;
        if (p.cond) def.promptIf = cond(p.cond, { kind: 'prompt', at: where });
      }
    } else if (word === 'def_bool' || word === 'def_tristate') def.type = word.slice(4);
    else if (word === 'select') {
      const m = /^(\w+)\s*(?:if\s+(.+))?$/.exec(rest);
      if (m) selects.push({ from: def.symbol, to: sym(m[1]!), ...(m[2] ? { cond: parseExpr(m[2]) } : {}), at: where });
    }
  }

  await parseFile(src.root);
  for (const s of selects) index.get(s.to)?.selectedBy.push({ symbol: s.from, ...(s.cond ? { cond: s.cond } : {}), at: s.at });
  return index;
}
