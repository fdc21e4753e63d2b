// A small schema language: one definition both validates loaded YAML (with file:line:col
// for each problem) and is emitted as JSON Schema for editors, so the two never drift.
import { badInput, formatWhere } from './errors.js';
import type { Located, YamlPath } from './yaml.js';

export interface Issue {
  path: YamlPath;
  message: string;
  /** Point at the key rather than the value (unknown keys). */
  atKey?: boolean;
}

/** A schema for values of type T: check() accepting a value proves it is a T. */
export interface Schema<T = unknown> {
  describe: string;
  check(value: unknown, path: YamlPath, out: Issue[]): void;
  json(): Record<string, unknown>;
  /** Never set: it only carries T, so that validate() can return the checked value's type. */
  readonly valueType?: T;
}

/** The type of the values a schema accepts. */
export type Infer<S> = S extends Schema<infer T> ? T : never;

const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'a list' : typeof v === 'object' ? 'a mapping' : `${typeof v} ${JSON.stringify(v)}`);

/** A value in a message: control characters (a newline, a tab) spelled as escapes, so the message stays one line. */
const shown = (v: string) => v.replace(/[\x00-\x1f\x7f]/g, (c) => JSON.stringify(c).slice(1, -1));

export function str<const E extends string = string>(opts: { enum?: readonly E[]; pattern?: RegExp; description?: string } = {}): Schema<E> {
  return {
    describe: opts.enum ? `one of ${opts.enum.join(', ')}` : 'a string',
    check(v, path, out) {
      if (typeof v !== 'string') return void out.push({ path, message: `expected ${this.describe}, got ${typeName(v)}` });
      if (opts.enum && !opts.enum.some((e) => e === v)) out.push({ path, message: `"${shown(v)}" is not ${this.describe}` });
      if (opts.pattern && !opts.pattern.test(v)) out.push({ path, message: `"${shown(v)}" does not match ${opts.pattern.source}` });
    },
    json() {
      return {
        type: 'string',
        ...(opts.enum ? { enum: [...opts.enum] } : {}),
        ...(opts.pattern ? { pattern: opts.pattern.source } : {}),
        ...(opts.description ? { description: opts.description } : {}),
      };
    },
  };
}

export function int(opts: { min?: number; max?: number; description?: string } = {}): Schema<number> {
  return {
    describe: 'a whole number',
    check(v, path, out) {
      if (typeof v !== 'number' || !Number.isInteger(v)) return void out.push({ path, message: `expected a whole number, got ${typeName(v)}` });
      if (opts.min !== undefined && v < opts.min) out.push({ path, message: `${v} is below the minimum ${opts.min}` });
      if (opts.max !== undefined && v > opts.max) out.push({ path, message: `${v} is above the maximum ${opts.max}` });
    },
    json() {
      return { type: 'integer', ...(opts.min !== undefined ? { minimum: opts.min } : {}), ...(opts.max !== undefined ? { maximum: opts.max } : {}), ...(opts.description ? { description: opts.description } : {}) };
    },
  };
}

export function bool(description?: string): Schema<boolean> {
  return {
    describe: 'true or false',
    check(v, path, out) {
      if (typeof v !== 'boolean') out.push({ path, message: `expected true or false, got ${typeName(v)}` });
    },
    json: () => ({ type: 'boolean', ...(description ? { description } : {}) }),
  };
}

export function list<T>(item: Schema<T>, opts: { minItems?: number; description?: string } = {}): Schema<T[]> {
  return {
    describe: `a list of ${item.describe}`,
    check(v, path, out) {
      if (!Array.isArray(v)) return void out.push({ path, message: `expected ${this.describe}, got ${typeName(v)}` });
      if (opts.minItems !== undefined && v.length < opts.minItems) out.push({ path, message: `needs at least ${opts.minItems} item(s)` });
      v.forEach((x, i) => item.check(x, [...path, i], out));
    },
    json: () => ({ type: 'array', items: item.json(), ...(opts.minItems !== undefined ? { minItems: opts.minItems } : {}), ...(opts.description ? { description: opts.description } : {}) }),
  };
}

export interface Field<T = unknown> {
  schema: Schema<T>;
  required?: boolean;
  description?: string;
}

export type Fields = Record<string, Field | Schema>;
type FieldType<F> = F extends Field<infer T> ? T : Infer<F>;
type RequiredKeys<F extends Fields> = { [K in keyof F]: F[K] extends { required: true } ? K : never }[keyof F];
/** The mapping obj(fields) accepts: required fields are required keys, the others optional. */
export type ObjType<F extends Fields> = { [K in RequiredKeys<F>]: FieldType<F[K]> } & { [K in Exclude<keyof F, RequiredKeys<F>>]?: FieldType<F[K]> } extends infer O
  ? { [K in keyof O]: O[K] }
  : never;

export function obj<const F extends Fields>(fields: F, opts: { description?: string } = {}): Schema<ObjType<F>> {
  const norm: Record<string, Field> = {};
  for (const [k, f] of Object.entries(fields)) norm[k] = 'check' in f ? { schema: f } : f;
  return {
    describe: 'a mapping',
    check(v, path, out) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return void out.push({ path, message: `expected a mapping, got ${typeName(v)}` });
      const rec = v as Record<string, unknown>;
      for (const k of Object.keys(rec)) {
        if (!(k in norm)) out.push({ path: [...path, k], atKey: true, message: `unknown key "${k}" (known keys here: ${Object.keys(norm).join(', ')})` });
      }
      for (const [k, f] of Object.entries(norm)) {
        if (rec[k] === undefined) {
          if (f.required) out.push({ path, message: `missing required key "${k}"${f.description ? ` (${f.description})` : ''}` });
        } else f.schema.check(rec[k], [...path, k], out);
      }
    },
    json() {
      const properties: Record<string, unknown> = {};
      for (const [k, f] of Object.entries(norm)) properties[k] = { ...f.schema.json(), ...(f.description ? { description: f.description } : {}) };
      const required = Object.entries(norm).filter(([, f]) => f.required).map(([k]) => k);
      return { type: 'object', properties, additionalProperties: false, ...(required.length ? { required } : {}), ...(opts.description ? { description: opts.description } : {}) };
    },
  };
}

export function dict<T>(value: Schema<T>, opts: { keyPattern?: RegExp; description?: string } = {}): Schema<Record<string, T>> {
  return {
    describe: `a mapping of ${value.describe}`,
    check(v, path, out) {
      if (v === null || typeof v !== 'object' || Array.isArray(v)) return void out.push({ path, message: `expected ${this.describe}, got ${typeName(v)}` });
      for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
        if (opts.keyPattern && !opts.keyPattern.test(k)) out.push({ path: [...path, k], atKey: true, message: `key "${k}" does not match ${opts.keyPattern.source}` });
        value.check(x, [...path, k], out);
      }
    },
    json: () => ({ type: 'object', additionalProperties: value.json(), ...(opts.keyPattern ? { propertyNames: { pattern: opts.keyPattern.source } } : {}), ...(opts.description ? { description: opts.description } : {}) }),
  };
}

/** The first alternative whose top-level type fits is used, so its errors are the helpful ones. */
export function oneOf<const A extends readonly Schema[]>(alts: A, description?: string): Schema<Infer<A[number]>> {
  return {
    describe: alts.map((a) => a.describe).join(' or '),
    check(v, path, out) {
      let best: Issue[] | undefined;
      for (const a of alts) {
        const issues: Issue[] = [];
        a.check(v, path, issues);
        if (issues.length === 0) return;
        const typeMismatch = issues.some((i) => i.path.length === path.length && /^expected /.test(i.message));
        if (!typeMismatch && !best) best = issues;
      }
      if (best) out.push(...best);
      else out.push({ path, message: `expected ${this.describe}, got ${typeName(v)}` });
    },
    json: () => ({ anyOf: alts.map((a) => a.json()), ...(description ? { description } : {}) }),
  };
}

export const anything: Schema = { describe: 'any value', check() {}, json: () => ({}) };

/** Validate a located document; all problems are reported at once, each with its place. */
export function validate<T>(doc: Located, schema: Schema<T>, what: string): T {
  const issues: Issue[] = [];
  schema.check(doc.value, [], issues);
  if (issues.length === 0) return doc.value as T;
  const lines = issues.map((i) => `${formatWhere(doc.where(i.path, i.atKey))}: ${i.message}`);
  const first = issues[0]!;
  throw badInput(`${what} is not valid (${issues.length} problem${issues.length > 1 ? 's' : ''}):\n${lines.join('\n')}`, {
    where: doc.where(first.path, first.atKey),
    hint: `correct the ${what} at the places listed; the JSON Schema in configs/schema/ lets an editor check it as you type`,
  });
}
