// Combinators on top of harness/common/schema.ts that the scenario schema and its action
// table share.
import { int, oneOf, str, type Issue, type Schema } from '../common/schema.js';
import type { YamlPath } from '../common/yaml.js';

/** base, plus a check that runs only when the base found nothing wrong. */
export function refine<T>(base: Schema<T>, extra: (v: T, path: YamlPath, out: Issue[]) => void, description?: string): Schema<T> {
  return {
    describe: base.describe,
    check(v, path, out) {
      const mine: Issue[] = [];
      base.check(v, path, mine);
      // The base accepted v, so it is a T.
      if (mine.length === 0) extra(v as T, path, mine);
      out.push(...mine);
    },
    json: () => ({ ...base.json(), ...(description ? { description } : {}) }),
  };
}

/** Definitions emitted once under $defs in the JSON Schema and referenced by name. */
export const DEFS = new Map<string, Schema>();
export function named<T>(name: string, s: Schema<T>): Schema<T> {
  DEFS.set(name, s);
  return { describe: s.describe, check: (v, p, o) => s.check(v, p, o), json: () => ({ $ref: `#/$defs/${name}` }) };
}

function editDistance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      d[i]![j] = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length]![b.length]!;
}

export function suggest(word: string, known: readonly string[]): string {
  const best = known.map((k) => ({ k, d: editDistance(word.toUpperCase(), k.toUpperCase()) })).sort((x, y) => x.d - y.d)[0];
  return best && best.d <= 2 ? ` (did you mean ${best.k}?)` : '';
}

export const isMap = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The one key of `keys` that a mapping holds; otherwise an issue and undefined. */
export function exactlyOne(v: object, path: YamlPath, out: Issue[], keys: readonly string[], what: string): string | undefined {
  const present = Object.keys(v).filter((k) => keys.includes(k));
  if (present.length === 1) return present[0];
  if (present.length === 0) out.push({ path, message: `${what} needs one of: ${keys.join(', ')}` });
  else out.push({ path: [...path, present[1]!], atKey: true, message: `${what} has both "${present[0]}" and "${present[1]}"; put several actions in a list under "do"` });
  return undefined;
}

/** A string or a number, read as a string. */
export const scalar = (description?: string): Schema<string | number> => ({ ...oneOf([str(), int()], description), describe: 'a string' });
