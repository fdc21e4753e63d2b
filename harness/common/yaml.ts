// YAML loading that remembers where every key and value came from, so that validation
// errors can name file:line:column. js-yaml's event stream carries source offsets.
import { readFile } from 'node:fs/promises';
import { load, parseEvents, getScalarValue, EVENT_ID, SCALAR_STYLE, YAMLException, type Event } from 'js-yaml';
import { badInput, type Where } from './errors.js';

export type YamlPath = (string | number)[];

export interface Located<T = unknown> {
  file: string;
  value: T;
  /** Where the value at `path` starts (for a mapping key, pass keyOnly to get the key's place). */
  where(path: YamlPath, keyOnly?: boolean): Where;
}

const pathKey = (p: YamlPath) => JSON.stringify(p);

function lineCol(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let last = -1;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text.charCodeAt(i) === 10) {
      line++;
      last = i;
    }
  }
  return { line, column: offset - last };
}

interface Frame {
  kind: 'map' | 'seq';
  path: YamlPath;
  index: number;
  pendingKey: string | undefined;
}

function positions(text: string, file: string): { values: Map<string, number>; keys: Map<string, number> } {
  const values = new Map<string, number>();
  const keys = new Map<string, number>();
  const events: Event[] = parseEvents(text, { filename: file });
  const stack: Frame[] = [];
  const startOf = (e: Event): number => {
    // A quoted scalar's value starts after its quote; point at the quote.
    if (e.type === EVENT_ID.SCALAR) return e.style === SCALAR_STYLE.SINGLE_QUOTED || e.style === SCALAR_STYLE.DOUBLE_QUOTED ? e.valueStart - 1 : e.valueStart;
    if (e.type === EVENT_ID.MAPPING || e.type === EVENT_ID.SEQUENCE) return e.start;
    return -1;
  };
  // Where the next node in the current collection lives; undefined when it is a mapping key.
  const slot = (): YamlPath | undefined => {
    const top = stack[stack.length - 1];
    if (!top) return [];
    if (top.kind === 'seq') return [...top.path, top.index++];
    if (top.pendingKey === undefined) return undefined;
    const p = [...top.path, top.pendingKey];
    top.pendingKey = undefined;
    return p;
  };
  for (const e of events) {
    if (e.type === EVENT_ID.DOCUMENT) continue;
    if (e.type === EVENT_ID.POP) {
      stack.pop();
      continue;
    }
    const path = slot();
    if (path === undefined) {
      const top = stack[stack.length - 1]!;
      const key = e.type === EVENT_ID.SCALAR ? getScalarValue(text, e) : '?';
      top.pendingKey = key;
      keys.set(pathKey([...top.path, key]), startOf(e));
      continue;
    }
    const off = startOf(e);
    if (off >= 0 && !values.has(pathKey(path))) values.set(pathKey(path), off);
    if (e.type === EVENT_ID.MAPPING) stack.push({ kind: 'map', path, index: 0, pendingKey: undefined });
    if (e.type === EVENT_ID.SEQUENCE) stack.push({ kind: 'seq', path, index: 0, pendingKey: undefined });
  }
  return { values, keys };
}

export function parseYaml(text: string, file: string): Located {
  let value: unknown;
  let pos: ReturnType<typeof positions>;
  try {
    value = load(text, { filename: file });
    pos = positions(text, file);
  } catch (err) {
    if (err instanceof YAMLException) {
      const mark = err.mark;
      const reason = err.reason || err.message.split('\n')[0];
      throw badInput(`malformed YAML: ${reason}`, {
        where: mark ? { file, line: mark.line + 1, column: mark.column + 1 } : { file },
        hint: 'fix the YAML syntax at that place (indentation, a missing colon or quote)',
      });
    }
    throw err;
  }
  return {
    file,
    value,
    where(path, keyOnly = false) {
      // Fall back to the nearest enclosing node that has a known place.
      for (let p = [...path]; ; p = p.slice(0, -1)) {
        const off = (keyOnly && p.length === path.length ? pos.keys : pos.values).get(pathKey(p)) ?? pos.keys.get(pathKey(p));
        if (off !== undefined) return { file, ...lineCol(text, off) };
        if (p.length === 0) return { file };
      }
    },
  };
}

/** Read and parse a YAML file; `what` names it in the message when it cannot be read. */
export async function loadYamlFile(file: string, what = '', hint = 'check the path; relative paths in a trial are relative to the trial file'): Promise<Located> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw badInput(`cannot read ${what ? `${what} ` : ''}${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, { where: { file }, hint });
  }
  return parseYaml(text, file);
}
