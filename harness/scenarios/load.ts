// Loading a scenario file: YAML with positions, validation (schema plus whole-file
// references), then normalisation into the typed Suite the runner works with.
import { readFile } from 'node:fs/promises';
import { badInput, formatWhere, type Where } from '../common/errors.js';
import { validate, type Issue, type Schema } from '../common/schema.js';
import { parseYaml, type Located, type YamlPath } from '../common/yaml.js';
import { expandSuite } from './expand.js';
import { actionOf, type ActionItem } from './actions.js';
import { checkReferences, resolveCell, suiteSchema } from './schema.js';
import type { Action, Capture, CapsSpec, CaseDef, Expectation, HelperDef, Identity, MatrixDef, Step, Suite, ValueCheck } from './types.js';

const DEFAULT_CASE_TIMEOUT_S = 60;
export const ROOT: Identity = { name: 'root', uid: 0, gid: 0 };
export const NOBODY: Identity = { name: 'nobody', uid: 65534, gid: 65534 };

type Raw = Record<string, unknown>;
const isMap = (v: unknown): v is Raw => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Schema check, then reference checks, so one error lists every problem with its place. */
const fullSchema: Schema<Raw> = {
  describe: suiteSchema.describe,
  check(v, path, out) {
    const issues: Issue[] = [];
    suiteSchema.check(v, path, issues);
    if (issues.length === 0) checkReferences(v as Raw, issues);
    out.push(...issues);
  },
  json: () => suiteSchema.json(),
};

export async function loadSuite(file: string): Promise<Suite> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw badInput(`cannot read scenario file ${file}: ${(err as NodeJS.ErrnoException).code ?? err}`, { where: { file }, hint: 'check the path to the scenario file' });
  }
  return parseSuite(text, file);
}

export function parseSuite(text: string, file: string): Suite {
  const doc = parseYaml(text, file);
  const raw = validate<Raw>(doc, fullSchema, 'scenario file');
  const suite = normalise(raw, doc);
  // Expansion can still find a problem only the expanded list shows: duplicate case names.
  const seen = new Map<string, Where | undefined>();
  for (const c of expandSuite(suite)) {
    if (seen.has(c.name)) {
      const first = seen.get(c.name);
      throw badInput(`two cases are named "${c.name}"${first ? ` (the first at ${formatWhere(first)})` : ''}`, {
        where: c.where ?? { file },
        hint: 'case names identify results and known issues: make each one unique',
      });
    }
    seen.set(c.name, c.where);
  }
  return suite;
}

// ---------------------------------------------------------------------------------------

function str(v: unknown): string {
  return typeof v === 'string' ? v : String(v);
}

export function describeCaps(caps: CapsSpec | undefined): string {
  if (caps === undefined) return '';
  if (caps === 'all') return 'all capabilities';
  if (caps === 'none') return 'no capabilities';
  if (Array.isArray(caps)) return caps.length ? `only ${caps.join(', ')}` : 'no capabilities';
  return `without ${caps.drop.join(', ')}`;
}

function identityOf(v: unknown, named: Record<string, Identity>): Identity {
  if (v === undefined) return ROOT;
  if (typeof v === 'string') return v === 'root' ? ROOT : v === 'nobody' ? NOBODY : named[v]!;
  const o = v as Raw;
  const uid = o.uid as number;
  const id: Identity = { name: '', uid, gid: (o.gid as number | undefined) ?? uid };
  if (o.groups !== undefined) id.groups = o.groups as number[];
  if (o.caps !== undefined) id.caps = o.caps as CapsSpec;
  id.name = (o.description as string | undefined) ?? [`uid ${uid}`, describeCaps(id.caps)].filter(Boolean).join(' ');
  return id;
}

const actionsOf = (v: unknown): Action[] => (v === undefined ? [] : Array.isArray(v) ? v.map((x) => actionOf(x as ActionItem)) : [actionOf(v as ActionItem)]);

function checkOf(v: unknown): ValueCheck {
  return isMap(v) ? { match: str(v.match) } : { equals: str(v) };
}

export function expectationOf(v: unknown): Expectation {
  if (v === undefined || v === 'ok') return { outcome: 'ok' };
  if (v === 'error') return { outcome: 'error' };
  if (v === 'any') return { outcome: 'any' };
  if (typeof v === 'string') return { outcome: 'errno', errno: v };
  const o = v as Raw;
  const e: Expectation = { outcome: 'ok' };
  if (o.errno !== undefined) {
    e.outcome = 'errno';
    e.errno = str(o.errno);
  } else if (o.error === true) e.outcome = 'error';
  else if (o.exit !== undefined) {
    e.outcome = 'exit';
    e.exit = o.exit as number;
  }
  if (o.output !== undefined || o.match !== undefined) {
    e.output = {};
    if (o.output !== undefined) e.output.equals = str(o.output);
    if (o.match !== undefined) e.output.match = str(o.match);
  }
  if (o.values !== undefined) {
    e.values = {};
    for (const [k, x] of Object.entries(o.values as Raw)) e.values[k] = checkOf(x);
  }
  return e;
}

function capturesOf(v: unknown): Capture[] {
  if (!isMap(v)) return [];
  return Object.entries(v).map(([variable, spec]) => (isMap(spec) ? { variable, field: str(spec.field), ...(spec.match !== undefined ? { match: str(spec.match) } : {}) } : { variable, field: str(spec) }));
}

interface Ctx {
  doc: Located;
  identities: Record<string, Identity>;
  helpers: Record<string, HelperDef>;
  timeoutS: number;
}

function stepOf(s: Raw, path: YamlPath, ctx: Ctx): Step {
  const where = ctx.doc.where(path);
  const step: Step = {
    kind: s.sh !== undefined ? 'sh' : 'agent',
    as: identityOf(s.as, ctx.identities),
    pre: actionsOf(s.pre),
    actions: [],
    expect: expectationOf(s.expect),
    capture: capturesOf(s.capture),
    where,
  };
  if (s.name !== undefined) step.name = str(s.name);
  if (s.timeout !== undefined) step.timeoutMs = (s.timeout as number) * 1000;
  if (s.sh !== undefined) step.sh = str(s.sh);
  else if (s.do !== undefined) step.actions = actionsOf(s.do);
  else if (s.spawn !== undefined) {
    const sp = s.spawn;
    const helperName = typeof sp === 'string' ? sp : str((sp as Raw).helper);
    const instance = typeof sp === 'string' ? sp : str((sp as Raw).name ?? helperName);
    const h = ctx.helpers[helperName]!;
    if (s.as === undefined) step.as = h.as;
    step.pre = [...h.pre, ...step.pre];
    step.actions = [...h.actions, { kind: 'spawn', name: instance }];
    step.capture = [{ variable: `${instance}.pid`, field: 'pid' }, ...step.capture];
    if (s.name === undefined) step.name = `start helper ${instance}`;
  } else if (s.stop !== undefined) {
    const inst = str(s.stop);
    step.actions = [{ kind: 'kill', pid: `\${${inst}.pid}`, signal: 'TERM', waitMs: 5000 }];
    if (s.name === undefined) step.name = `stop helper ${inst}`;
  } else {
    step.actions = [actionOf(s as ActionItem)];
  }
  return step;
}

const stepsOf = (v: unknown, path: YamlPath, ctx: Ctx): Step[] => (Array.isArray(v) ? v.map((s, i) => stepOf(s as Raw, [...path, i], ctx)) : []);

const varsOf = (v: unknown): Record<string, string> => Object.fromEntries(Object.entries((v ?? {}) as Raw).map(([k, x]) => [k, str(x)]));
const reqOf = (v: unknown): string[] => (Array.isArray(v) ? v.map(str) : []);

function matrixOf(m: Raw, path: YamlPath, ctx: Ctx): MatrixDef {
  const actors = Object.entries(m.actors as Raw).map(([name, a]) =>
    typeof a === 'string'
      ? { name, as: identityOf(a, ctx.identities), pre: [] as Action[], vars: {} }
      : { name, as: identityOf((a as Raw).as, ctx.identities), pre: actionsOf((a as Raw).pre), vars: varsOf((a as Raw).vars) },
  );
  const actions = Object.entries(m.actions as Raw).map(([name, a]) => ({
    name,
    step: stepOf(a as Raw, [...path, 'actions', name], ctx),
    requires: reqOf((a as Raw).requires),
    vars: varsOf((a as Raw).vars),
  }));
  const targets = Object.entries((m.targets ?? {}) as Raw).map(([name, t]) => ({
    name,
    vars: varsOf((t as Raw).vars),
    setup: stepsOf((t as Raw).setup, [...path, 'targets', name, 'setup'], ctx),
    cleanup: stepsOf((t as Raw).cleanup, [...path, 'targets', name, 'cleanup'], ctx),
    requires: reqOf((t as Raw).requires),
  }));
  const cells: MatrixDef['cells'] = [];
  for (const actor of actors)
    for (const action of actions)
      for (const target of targets.length ? targets.map((t) => t.name) : [undefined]) {
        const cell = resolveCell(m.expect as Raw, actor.name, action.name, target)!;
        cells.push({ actor: actor.name, action: action.name, ...(target !== undefined ? { target } : {}), expect: expectationOf(cell.value), where: ctx.doc.where([...path, 'expect', ...cell.path]) });
      }
  const def: MatrixDef = {
    title: str(m.title),
    requires: reqOf(m.requires),
    vars: varsOf(m.vars),
    actors,
    actions,
    targets,
    setup: stepsOf(m.setup, [...path, 'setup'], ctx),
    cleanup: stepsOf(m.cleanup, [...path, 'cleanup'], ctx),
    cells,
    where: ctx.doc.where(path),
  };
  if (m.name !== undefined) def.nameTemplate = str(m.name);
  if (m.description !== undefined) def.description = str(m.description);
  if (m.timeout !== undefined) def.timeoutMs = (m.timeout as number) * 1000;
  return def;
}

function normalise(raw: Raw, doc: Located): Suite {
  const identities: Record<string, Identity> = {};
  for (const [k, v] of Object.entries((raw.identities ?? {}) as Raw)) identities[k] = { ...identityOf(v, {}), name: (v as Raw).description ? str((v as Raw).description) : k };
  const ctx: Ctx = { doc, identities, helpers: {}, timeoutS: (raw.timeout as number | undefined) ?? DEFAULT_CASE_TIMEOUT_S };
  for (const [k, v] of Object.entries((raw.helpers ?? {}) as Raw)) {
    const h = v as Raw;
    ctx.helpers[k] = { name: k, as: identityOf(h.as, identities), pre: actionsOf(h.pre), actions: actionsOf(h.do), ...(h.description !== undefined ? { description: str(h.description) } : {}) };
  }
  const cases: CaseDef[] = (raw.cases as Raw[]).map((c, i) => {
    const p: YamlPath = ['cases', i];
    if ('matrix' in c) return { kind: 'matrix', def: matrixOf(c.matrix as Raw, [...p, 'matrix'], ctx) };
    const def: Extract<CaseDef, { kind: 'case' }>['def'] = {
      name: str(c.name),
      requires: reqOf(c.requires),
      vars: varsOf(c.vars),
      steps: stepsOf(c.steps, [...p, 'steps'], ctx),
      cleanup: stepsOf(c.cleanup, [...p, 'cleanup'], ctx),
      where: doc.where(p),
    };
    if (c.description !== undefined) def.description = str(c.description);
    if (c.timeout !== undefined) def.timeoutMs = (c.timeout as number) * 1000;
    return { kind: 'case', def };
  });
  const suite: Suite = {
    name: str(raw.name),
    file: doc.file,
    requires: reqOf(raw.requires),
    timeoutMs: ctx.timeoutS * 1000,
    vars: varsOf(raw.vars),
    identities,
    helpers: ctx.helpers,
    setup: stepsOf(raw.setup, ['setup'], ctx),
    cases,
    cleanup: stepsOf(raw.cleanup, ['cleanup'], ctx),
  };
  if (raw.description !== undefined) suite.description = str(raw.description).trim();
  return suite;
}
