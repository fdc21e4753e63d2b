// ${variables} in scenario strings, captured values, and dotted paths into agent results.

/** ${name}; $${name} stands for a literal "${name}". Names may contain dots (helper.pid). */
const VAR_RE = /(\$?)\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g;
export const VAR_NAME_RE = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
/** A string that is one ${name} reference and nothing else. */
export const VAR_REF_RE = /^\$\{[A-Za-z_][A-Za-z0-9_.-]*\}$/;

/** The variable names a string refers to (escaped references excluded). */
export function varRefs(s: string): string[] {
  const out: string[] = [];
  for (const m of s.matchAll(VAR_RE)) if (!m[1]) out.push(m[2]!);
  return out;
}

export class UnsetVariable extends Error {
  constructor(readonly variable: string) {
    super(`variable \${${variable}} has no value (the step that sets it did not run or did not capture it)`);
    this.name = 'UnsetVariable';
  }
}

export function substitute(s: string, vars: Readonly<Record<string, string>>): string {
  return s.replace(VAR_RE, (_all, esc: string, name: string) => {
    if (esc) return `\${${name}}`;
    const v = vars[name];
    if (v === undefined) throw new UnsetVariable(name);
    return v;
  });
}

/** A literal as a template: substitute() gives it back unchanged (a "${name}" in it becomes "$${name}"). */
export const escapeVars = (literal: string) => literal.replace(/\$\{([A-Za-z_][A-Za-z0-9_.-]*)\}/g, '$$$${$1}');

/**
 * Substitute the variables `templates` has (its values are templates themselves) and keep
 * every other reference, and every escaped one, for a later substitute().
 */
export function substituteKnown(s: string, templates: Readonly<Record<string, string>>): string {
  return s.replace(VAR_RE, (all, esc: string, name: string) => (!esc && Object.hasOwn(templates, name) ? templates[name]! : all));
}

/** Every string of a plain value passed through f (objects and arrays are copied). */
export function mapStrings<T>(value: T, f: (s: string) => string): T {
  if (typeof value === 'string') return f(value) as T;
  if (Array.isArray(value)) return value.map((v) => mapStrings(v, f)) as T;
  if (value && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(value)) out[k] = mapStrings(v, f);
    return out as T;
  }
  return value;
}

/** Substitute in every string of a plain value (objects and arrays are copied). */
export const substituteDeep = <T>(value: T, vars: Readonly<Record<string, string>>): T => mapStrings(value, (s) => substitute(s, vars));

/** Every string inside a plain value, for reference checks. */
export function stringsIn(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.flatMap(stringsIn);
  if (value && typeof value === 'object') return Object.values(value).flatMap(stringsIn);
  return [];
}

/** Follow a dotted path (numbers index lists) into a parsed JSON value. */
export function fieldAt(value: unknown, path: string): unknown {
  let cur: unknown = value;
  for (const part of path.split('.')) {
    if (cur === null || cur === undefined) return undefined;
    if (Array.isArray(cur)) {
      if (!/^\d+$/.test(part)) return undefined;
      cur = cur[Number(part)];
    } else if (typeof cur === 'object') {
      cur = (cur as Record<string, unknown>)[part];
    } else return undefined;
  }
  return cur;
}

/** A result value as the string expectations and captures compare against. */
export function valueText(v: unknown): string | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || v === null) return String(v);
  return JSON.stringify(v);
}

/** Glob with * (any run of characters) and ? (one character), anchored. */
export function globMatch(pattern: string, text: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '[\\s\\S]*').replace(/\?/g, '[\\s\\S]')}$`);
  return re.test(text);
}
